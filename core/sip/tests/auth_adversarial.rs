//! Digest verification is fed straight from the network: whatever the header value or the
//! Request-URI, `verify` must answer, never panic, and never let the same header value in twice.

use std::collections::HashSet;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard_sip::auth::{AuthOutcome, DigestChallenger, authorization_for};

const T0: u64 = 1_750_000_000;
const RURI: &str = "sip:2000@switchyard.test";

fn users(name: &str) -> Option<String> {
    (name == "1000").then(|| "pass1000".to_owned())
}

fn challenger() -> DigestChallenger {
    DigestChallenger::new("switchyard.test", [5; 32], Duration::from_secs(300))
}

/// Characters that stress a parser: multi-byte UTF-8 of every length, quoting, separators,
/// control characters, hex digits.
const NASTY: &[char] = &[
    'é', '€', '𝄞', 'ß', '\u{0}', '\u{7f}', '\u{feff}', '"', '\\', ',', '=', ' ', '\t', '\r', '\n',
    ';', ':', '@', '%', '<', '>', 'a', 'F', '0', '9', 'z',
];

fn nasty_char(rng: &mut StdRng) -> char {
    if rng.random_bool(0.8) {
        NASTY[rng.random_range(0..NASTY.len())]
    } else {
        rng.random::<char>()
    }
}

fn char_boundary(s: &str, rng: &mut StdRng) -> usize {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    bounds[rng.random_range(0..bounds.len())]
}

/// One random edit of a header value.
fn mutate(s: &str, rng: &mut StdRng) -> String {
    let mut out = s.to_owned();
    match rng.random_range(0..9) {
        0 => {
            let at = char_boundary(&out, rng);
            out.insert(at, nasty_char(rng));
        }
        1 => {
            let at = char_boundary(&out, rng);
            if let Some(c) = out[at..].chars().next() {
                out.replace_range(at..at + c.len_utf8(), "");
            }
        }
        2 => {
            let at = char_boundary(&out, rng);
            out.truncate(at);
        }
        3 => {
            // A huge run of one character somewhere.
            let at = char_boundary(&out, rng);
            let run: String =
                std::iter::repeat_n(nasty_char(rng), rng.random_range(1..20_000)).collect();
            out.insert_str(at, &run);
        }
        4 => {
            // Empty list elements and empty values.
            let at = char_boundary(&out, rng);
            out.insert_str(
                at,
                [",,,", "x=\"\"", ", =", "=,", "\"\""][rng.random_range(0..5)],
            );
        }
        5 => {
            // Unbalance the quotes.
            if let Some(i) = out.find('"') {
                out.remove(i);
            }
        }
        6 => {
            // Replace one quoted value with something hostile.
            let values = ["é", "", "\\", &"€".repeat(16), &"0".repeat(70), "sip:é@x"];
            let v = values[rng.random_range(0..values.len())];
            if let Some(start) = out.find("=\"").map(|i| i + 2)
                && let Some(len) = out[start..].find('"')
            {
                out.replace_range(start..start + len, v);
            }
        }
        7 => {
            // Same byte length, but a two-byte character somewhere inside a quoted value: what
            // a length check followed by a byte slice falls for.
            let quoted: Vec<(usize, usize)> = out
                .match_indices("=\"")
                .filter_map(|(i, _)| {
                    let start = i + 2;
                    out[start..].find('"').map(|len| (start, len))
                })
                .filter(|&(start, len)| len >= 2 && out[start..start + len].is_ascii())
                .collect();
            if !quoted.is_empty() {
                let (start, len) = quoted[rng.random_range(0..quoted.len())];
                let at = start + rng.random_range(0..len - 1);
                out.replace_range(at..at + 2, "é");
            }
        }
        _ => {
            // Swap two halves.
            let at = char_boundary(&out, rng);
            out = format!("{}{}", &out[at..], &out[..at]);
        }
    }
    out
}

fn random_value(rng: &mut StdRng) -> String {
    let len = rng.random_range(0..200);
    let mut s = String::from(if rng.random_bool(0.7) { "Digest " } else { "" });
    s.extend((0..len).map(|_| nasty_char(rng)));
    s
}

/// Verifies and checks the invariant that holds for any input: a header value is let in at most
/// once, and only for the user whose password was used.
fn check(
    ch: &mut DigestChallenger,
    seen_authorized: &mut HashSet<(String, String)>,
    tally: &mut [usize; 5],
    now: u64,
    ruri: &str,
    value: &str,
) {
    let outcome = ch.verify(now, "INVITE", ruri, value, users);
    let slot = match &outcome {
        AuthOutcome::Authorized { username } => {
            assert_eq!(username, "1000", "{value:?}");
            assert!(
                seen_authorized.insert((ruri.to_owned(), value.to_owned())),
                "authorized twice: {value:?}"
            );
            0
        }
        AuthOutcome::Stale { .. } => 1,
        AuthOutcome::Rejected { .. } => 2,
        AuthOutcome::UnsupportedScheme => 3,
        AuthOutcome::Malformed => 4,
    };
    tally[slot] += 1;
    // Whatever it was, the same value again is never Authorized (replay).
    assert!(
        !matches!(
            ch.verify(now, "INVITE", ruri, value, users),
            AuthOutcome::Authorized { .. }
        ),
        "replay let in: {value:?}"
    );
}

#[test]
fn random_and_mutated_headers_never_panic_nor_replay() {
    let mut rng = StdRng::seed_from_u64(0x5157_a7d1);
    let mut ch = challenger();
    let mut seen = HashSet::new();
    let mut tally = [0usize; 5];
    let ruris = [
        RURI,
        "sip:switchyard.test",
        "sip:é@x",
        "",
        "tel:+1555",
        "sip:%ZZ@[::1]:99999",
    ];
    for round in 0..3_000u32 {
        // One challenge in ten has expired by the time it is answered.
        let issued = if round % 10 == 0 {
            T0 - 1_000
        } else {
            T0 + u64::from(round % 50)
        };
        let valid = authorization_for(
            &ch.challenges(issued, false)[round as usize % 2],
            "INVITE",
            RURI,
            "1000",
            "pass1000",
            "c0ffee",
            1 + round % 3,
        )
        .unwrap();
        let mut value = valid.clone();
        for _ in 0..rng.random_range(1..4) {
            value = mutate(&value, &mut rng);
        }
        let ruri = ruris[rng.random_range(0..ruris.len())];
        check(&mut ch, &mut seen, &mut tally, T0 + 60, ruri, &value);
        check(
            &mut ch,
            &mut seen,
            &mut tally,
            T0 + 60,
            &mutate(RURI, &mut rng),
            &valid,
        );
        check(
            &mut ch,
            &mut seen,
            &mut tally,
            T0 + 60,
            RURI,
            &random_value(&mut rng),
        );
    }
    // The corpus reached every branch of the verifier, the accepting one included.
    assert!(tally.iter().all(|&n| n > 0), "{tally:?}");
}

#[test]
fn adversarial_corpus() {
    let mut ch = challenger();
    let good_nonce = {
        let c = &ch.challenges(T0, false)[0];
        let start = c.find("nonce=\"").unwrap() + 7;
        c[start..start + 64].to_owned()
    };
    // A 48-byte nonce (the old layout) and a 64-byte one with 'é' across byte 16 / 32.
    let old_straddle = format!("{}é{}", "0".repeat(15), "0".repeat(31));
    let new_straddle_16 = format!("{}é{}", &good_nonce[..15], &good_nonce[17..]);
    let new_straddle_32 = format!("{}é{}", &good_nonce[..31], &good_nonce[33..]);
    let params = |nonce: &str| {
        format!(
            r#"Digest username="1000", realm="switchyard.test", nonce="{nonce}", uri="{RURI}", response="{}", qop=auth, nc=00000001, cnonce="x", algorithm=SHA-256"#,
            "0".repeat(64)
        )
    };
    for nonce in [&old_straddle, &new_straddle_16, &new_straddle_32] {
        assert_eq!(
            ch.verify(T0, "INVITE", RURI, &params(nonce), users),
            AuthOutcome::Rejected {
                username: Some("1000".into()),
                reason: "nonce not issued by us"
            },
            "{nonce}"
        );
    }
    let huge = "x".repeat(1 << 20);
    let many_params: String = (0..20_000).map(|i| format!("p{i}=1,")).collect();
    let corpus = [
        String::new(),
        " ".to_owned(),
        "Digest".to_owned(),
        "Digest ".to_owned(),
        "Digest ,,,,,,".to_owned(),
        "Digest =".to_owned(),
        "Digest a=".to_owned(),
        "Digest a=\"".to_owned(),
        "Digest a=\"\\".to_owned(),
        "Digest a=\"\\\"".to_owned(),
        "Digest \"\"\"\"".to_owned(),
        "Digest username=\"é".to_owned(),
        "Digest é=é".to_owned(),
        "Dígest username=\"1000\"".to_owned(),
        "€€€€".to_owned(),
        "\u{0}\u{0}".to_owned(),
        format!("Digest username=\"{huge}\""),
        format!("Digest {many_params}"),
        format!("Digest {huge}"),
        params("").to_owned(),
        params(&"é".repeat(32)),
        params(&"0".repeat(64)),
        params(&good_nonce).replace("nc=00000001", "nc=ffffffff"),
        params(&good_nonce).replace("nc=00000001", "nc=0000000é"),
        params(&good_nonce).replace("algorithm=SHA-256", "algorithm=é-sess"),
        params(&good_nonce).replace("algorithm=SHA-256", "algorithm=\"SHA-256-séss\""),
        params(&good_nonce).replace("algorithm=SHA-256", "algorithm=-sess"),
        params(&good_nonce).replace(RURI, "sip:é@x"),
        params(&good_nonce).replace(RURI, ""),
        params(&good_nonce).replace(RURI, "sip:"),
        params(&good_nonce).replace(RURI, "sip:@"),
        params(&good_nonce).replace(RURI, "tel:"),
        params(&good_nonce).replace("response=\"", "response=\"é"),
    ];
    for value in &corpus {
        let outcome = ch.verify(T0, "INVITE", RURI, value, users);
        assert!(
            !matches!(outcome, AuthOutcome::Authorized { .. }),
            "{outcome:?} for {:?}",
            value.chars().take(120).collect::<String>()
        );
        // And with a hostile Request-URI.
        let outcome = ch.verify(T0, "INVITE", "sip:\u{0}é@[", value, users);
        assert!(!matches!(outcome, AuthOutcome::Authorized { .. }));
    }
}
