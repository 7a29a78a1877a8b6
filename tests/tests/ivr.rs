//! mod_ivr's demo menus (issue 5) driven by real peers: the daemon loads the module from
//! tests/conf/ivr/modules.toml (menus in tests/conf/ivr/ivr/demo.toml, a copy of
//! conf/ivr/demo.toml); 5200 runs `ivr demo` (English prompts), 5201 `ivr demo_zh` (Chinese).
//! A baresip caller (`sndcode`) and a SIPp caller (RFC 2833 pcaps) choose a branch; a caller
//! pressing a wrong key three times hears the invalid prompt after each and then the exit
//! prompt, and the switch hangs up. What callers hear is checked against sounds/<lang>/8000.

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_e2e::dtmf::{rfc2833_pcaps_payload_type, sipp_play_digits};
use switchyard_e2e::media::{
    Heard, best_correlation, wait_wav_seconds, wav_seconds, wav_seconds_so_far,
};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{
    Baresip, BaresipConfig, Cdr, Daemon, require_root, sipp_caller, wait_until, workspace_dir,
};

const T: Duration = Duration::from_secs(10);
/// A faithful copy of a prompt through G.711 correlates above 0.9 (media.rs).
const SAME: f64 = 0.8;
/// How far a prompt may sit from where the test expects it: ±0.5 s at 8 kHz.
const LAG: usize = 4000;

/// The daemon of tests/conf/ivr; baresip 1.0 refuses a 401 holding any non-MD5 challenge.
/// Checks that mod_ivr loaded and read the demo menus from the conf's ivr/ directory.
fn daemon() -> Daemon {
    let d = Daemon::builder("ivr")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start();
    let modules = d.ctl_ok("show modules");
    assert!(modules.contains("mod_ivr 0.1.0"), "{modules}");
    assert!(modules.contains("Application ivr_route"), "{modules}");
    let menus = format!(
        "4 IVR menus from {}: demo, demo_more, demo_more_zh, demo_zh",
        d.conf_dir().join("ivr").display()
    );
    assert!(
        d.log().contains(&menus),
        "the module read tests/conf/ivr/ivr relative to the conf dir\n{}",
        d.log_tail()
    );
    d
}

fn prompt(language: &str, name: &str) -> PathBuf {
    workspace_dir()
        .join("sounds")
        .join(language)
        .join("8000")
        .join(format!("{name}.wav"))
}

/// Waits until `n` log lines hold every one of `parts`.
fn wait_log(d: &Daemon, parts: &[&str], n: usize) {
    wait_until(
        T,
        &format!("{n} log line(s) with {parts:?}"),
        || (d.log_lines_with(parts).len() >= n).then_some(()),
        || d.log_tail(),
    );
}

/// How well the recording from `from` to `to` seconds matches the prompts `names` played
/// one after another.
fn heard_like(heard: &Heard, from: f64, to: f64, language: &str, names: &[&str]) -> f64 {
    let paths: Vec<PathBuf> = names.iter().map(|n| prompt(language, n)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    best_correlation(heard.window(from, to), &Heard::concat(&refs).samples, LAG)
}

/// The length of the prompts `names` played one after another, in seconds.
fn prompts_seconds(language: &str, names: &[&str]) -> f64 {
    names
        .iter()
        .map(|n| wav_seconds(&prompt(language, n)))
        .sum()
}

/// The only CDR, once written, with its DTMF digits: the switch ended the call normally.
fn only_cdr(d: &Daemon) -> (Cdr, Option<String>) {
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs.len(), 1, "one call: {cdrs:?}");
    let cdr = cdrs[0].clone();
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(
        cdr.hangup_side.as_deref(),
        Some("system"),
        "the switch hung up: {cdr:?}"
    );
    assert!(cdr.answer_ms.is_some(), "answered by the menu: {cdr:?}");
    let digits = d.cdr_quality(&cdr.uuid).dtmf_digits;
    (cdr, digits)
}

/// A baresip caller (1000, RFC 4733 by `sndcode`) in the menu at `extension`: waits until
/// its recording holds `secs` seconds of the greeting, and returns the recording.
fn baresip_in_the_menu(d: &Daemon, extension: &str, secs: f64) -> (Baresip, PathBuf) {
    let mut a = Baresip::start(BaresipConfig::new(
        "1000",
        d.sip_port(),
        d.slot().port(offset::BARESIP_A),
        1000.0,
        false,
    ));
    d.wait_registered("1000", 1, T);
    a.dial(&format!("sip:{extension}@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    let rec = wait_until(
        T,
        "baresip's recording of the menu",
        || a.heard_wav().filter(|p| wav_seconds_so_far(p).is_some()),
        || a.log(),
    );
    wait_wav_seconds(&rec, secs, T);
    (a, rec)
}

/// baresip calls `extension`, hears the menu's long greeting in `language`, presses `digit`
/// and is transferred to `target`, whose greeting (welcome, please-hold) it hears in
/// `language` before the switch hangs up.
fn baresip_chooses(extension: &str, language: &str, digit: &str, target: &str) {
    let d = daemon();
    let welcome = wav_seconds(&prompt(language, "welcome"));
    // Into press-1-sales: the whole welcome is in the recording, the menu is collecting.
    let (mut a, rec) = baresip_in_the_menu(&d, extension, welcome + 1.0);
    a.send_digits(digit);
    wait_log(
        &d,
        &[
            "digits collected",
            &format!("digits={digit}"),
            "variable=ivr_digits",
        ],
        1,
    );
    // We never hang up: the CALL_CLOSED is the switch's BYE after the target's greeting.
    a.wait_event("CALL_CLOSED", Duration::from_secs(15));
    assert_eq!(
        d.log_lines_with(&["transfer", &format!("extension={target}")])
            .len(),
        1,
        "the menu's choice transfers to {target}\n{}",
        d.log_tail()
    );
    let (cdr, digits) = only_cdr(&d);
    assert_eq!(digits.as_deref(), Some(digit), "{cdr:?}");

    let heard = Heard::read(&rec);
    let (start, end) = heard.loud_span().expect("the caller heard something");
    // The greeting starts with the menu language's welcome, not the other language's.
    let other = if language == "en" { "zh" } else { "en" };
    let greeting = heard_like(
        &heard,
        start - 0.25,
        start + welcome + 0.25,
        language,
        &["welcome"],
    );
    let not_other = heard_like(
        &heard,
        start - 0.25,
        start + welcome + 0.25,
        other,
        &["welcome"],
    );
    // The call ends with the target's greeting, whole.
    let names = ["welcome", "please-hold"];
    let target_len = prompts_seconds(language, &names);
    let last = heard_like(&heard, end - target_len - 0.25, end + 0.1, language, &names);
    eprintln!(
        "{extension} digit {digit}: heard {:.2} s; greeting ~ {language} welcome {greeting:.3} \
         ({other} {not_other:.3}); last {target_len:.2} s ~ {target} greeting {last:.3}",
        heard.seconds()
    );
    assert!(
        greeting >= SAME,
        "the {language} greeting is heard: {greeting:.3}"
    );
    assert!(
        not_other < greeting - 0.2,
        "the greeting is in {language}, not {other}: {greeting:.3} vs {not_other:.3}"
    );
    assert!(
        last >= SAME,
        "the greeting of {target} ends the call: {last:.3}"
    );
    d.wait_calls(0, T);
}

#[test]
fn baresip_digit_1_in_english_reaches_9197() {
    baresip_chooses("5200", "en", "1", "9197");
}

#[test]
fn baresip_digit_2_in_chinese_reaches_9198() {
    baresip_chooses("5201", "zh", "2", "9198");
}

/// A SIPp caller plays SIPp's RFC 2833 pcap of `digit` while the greeting of `extension`
/// plays, then waits for the switch's BYE (ivr_uac_dtmf.xml): the call goes to `target`.
fn sipp_chooses(extension: &str, digit: &str, target: &str) {
    require_root();
    let d = daemon();
    let pt = rfc2833_pcaps_payload_type(digit).to_string();
    let play = sipp_play_digits(digit, 500);
    let mut uac = sipp_caller(
        &d,
        "ivr_uac_dtmf",
        &[("__TE_PT__", &pt), ("__DTMF__", &play)],
        "1000",
        extension,
        &["-m", "1", "-recv_timeout", "15000", "-timeout", "30"],
    );
    // Exit 0 only if the switch sent the BYE: the branch hung up.
    uac.wait(Duration::from_secs(35))
        .assert_ok(1, &d.log_tail());
    let collected = d.log_lines_with(&[
        "digits collected",
        &format!("digits={digit}"),
        "variable=ivr_digits",
    ]);
    assert_eq!(collected.len(), 1, "{}", d.log_tail());
    assert_eq!(
        d.log_lines_with(&["transfer", &format!("extension={target}")])
            .len(),
        1,
        "the menu's choice transfers to {target}\n{}",
        d.log_tail()
    );
    let (cdr, digits) = only_cdr(&d);
    assert_eq!(digits.as_deref(), Some(digit), "{cdr:?}");
    eprintln!(
        "SIPp {extension} digit {digit}: transferred to {target}, {} s, CDR digits {digits:?}",
        cdr.billsec_s
    );
    d.wait_calls(0, T);
}

#[test]
fn sipp_rfc2833_digit_1_in_english_reaches_9197() {
    sipp_chooses("5200", "1", "9197");
}

#[test]
fn sipp_rfc2833_digit_2_in_chinese_reaches_9198() {
    sipp_chooses("5201", "2", "9198");
}

/// Three wrong keys (5): after each the invalid prompt plays; after the first two the short
/// greeting follows, after the third (max-failures) the exit prompt, and the switch hangs up.
#[test]
fn three_wrong_keys_replay_the_invalid_prompt_then_exit() {
    let d = daemon();
    let welcome = wav_seconds(&prompt("en", "welcome"));
    let invalid = wav_seconds(&prompt("en", "invalid-option"));
    let (mut a, rec) = baresip_in_the_menu(&d, "5200", welcome + 1.0);
    // Where in the recording each wrong key was refused (the invalid prompt starts there).
    let mut refused_at = Vec::new();
    for attempt in 1..=3 {
        a.send_digits("5");
        wait_log(&d, &["no valid digits", "digits=5"], attempt);
        let at = wav_seconds_so_far(&rec).expect("the recording goes on");
        refused_at.push(at);
        if attempt < 3 {
            // Past the invalid prompt, 1 s into the short greeting: the menu collects again.
            wait_wav_seconds(&rec, at + invalid + 1.0, T);
        }
    }
    a.wait_event("CALL_CLOSED", Duration::from_secs(15));
    assert!(
        d.log_lines_with(&["digits collected"]).is_empty(),
        "no key was accepted\n{}",
        d.log_tail()
    );
    assert!(
        d.log_lines_with(&["transfer"]).is_empty(),
        "no branch was taken\n{}",
        d.log_tail()
    );
    let (cdr, digits) = only_cdr(&d);
    assert_eq!(digits.as_deref(), Some("555"), "{cdr:?}");

    let heard = Heard::read(&rec);
    let mut report = Vec::new();
    for (i, &at) in refused_at.iter().enumerate() {
        let sorry = heard_like(
            &heard,
            at - 0.3,
            at + invalid + 0.3,
            "en",
            &["invalid-option"],
        );
        assert!(
            sorry >= SAME,
            "the invalid prompt after wrong key {}: {sorry:.3}",
            i + 1
        );
        report.push(format!("invalid {sorry:.3}"));
        if i < 2 {
            // The short greeting (press-1-sales ...), heard until the next key cut it.
            let again = heard_like(
                &heard,
                at + invalid - 0.2,
                at + invalid + 0.9,
                "en",
                &["press-1-sales"],
            );
            assert!(
                again >= SAME,
                "the short greeting after wrong key {}: {again:.3}",
                i + 1
            );
            report.push(format!("short greeting {again:.3}"));
        }
    }
    // Then the exit prompt, the last sound of the call (a playback of its own: it may
    // start a few frames after the invalid prompt, so each is matched alone).
    let (_, end) = heard.loud_span().expect("the caller heard something");
    let goodbye = wav_seconds(&prompt("en", "goodbye"));
    let bye = heard_like(&heard, end - goodbye - 0.25, end + 0.1, "en", &["goodbye"]);
    eprintln!(
        "three wrong keys: heard {:.2} s; refused at {refused_at:.2?} s; {}; goodbye at the end {bye:.3}",
        heard.seconds(),
        report.join(", ")
    );
    assert!(bye >= SAME, "the exit prompt ends the call: {bye:.3}");
    d.wait_calls(0, T);
}
