//! The registrar over raw UDP with digest computed here (RFC 7616 SHA-256 and MD5):
//! challenges, wrong passwords, several bindings, removal of one and of all, persistence
//! across a restart, and blocking of a source that keeps failing.

use std::time::Duration;
use switchyard_e2e::sip::register_request;
use switchyard_e2e::{Daemon, DigestChallenge, SipMessage, UdpPeer};

const T: Duration = Duration::from_secs(3);

/// The daemon's challenges in a 401, by algorithm.
fn challenges(m: &SipMessage) -> Vec<DigestChallenge> {
    m.headers("WWW-Authenticate")
        .iter()
        .filter_map(|v| DigestChallenge::parse(v))
        .collect()
}

struct Registrant {
    peer: UdpPeer,
    user: String,
    call_id: String,
    cseq: u32,
    server_port: u16,
}

impl Registrant {
    fn new(d: &Daemon, user: &str, tag: &str) -> Registrant {
        Registrant {
            peer: UdpPeer::new(d.sip_addr(), None),
            user: user.into(),
            call_id: format!("reg-{user}-{tag}-{}", std::process::id()),
            cseq: 0,
            server_port: d.sip_port(),
        }
    }

    fn send(
        &mut self,
        contact: &str,
        expires: Option<u32>,
        auth: Option<&str>,
    ) -> Option<SipMessage> {
        self.cseq += 1;
        let lp = self.peer.local_port();
        let msg = register_request(
            self.server_port,
            lp,
            &self.user,
            &self.call_id,
            self.cseq,
            contact,
            expires,
            auth,
        );
        self.peer.transact(&msg, T)
    }

    /// Unauthenticated REGISTER (expects a 401), then the authenticated one with the
    /// challenge of `alg`; returns the final answer to the second.
    fn register(
        &mut self,
        pass: &str,
        alg: &str,
        contact: &str,
        expires: Option<u32>,
    ) -> SipMessage {
        let r = self
            .send(contact, expires, None)
            .expect("answer to unauthenticated REGISTER");
        assert_eq!(r.status(), Some(401), "challenge expected:\n{}", r.text);
        let ch = challenges(&r)
            .into_iter()
            .find(|c| c.algorithm.eq_ignore_ascii_case(alg))
            .unwrap_or_else(|| panic!("no {alg} challenge in:\n{}", r.text));
        let uri = format!("sip:127.0.0.1:{}", self.server_port);
        let auth = ch.authorization(&self.user, pass, "REGISTER", &uri);
        self.send(contact, expires, Some(&auth))
            .expect("answer to authenticated REGISTER")
    }
}

fn contact(port: u16, user: &str) -> String {
    format!("<sip:{user}@127.0.0.1:{port}>")
}

fn bindings(d: &Daemon, user: &str) -> usize {
    d.registrations().iter().filter(|u| *u == user).count()
}

#[test]
fn challenge_offers_sha256_and_md5_and_wrong_password_fails() {
    let d = Daemon::start("basic");
    let mut r = Registrant::new(&d, "1002", "a");
    let c = contact(r.peer.local_port(), "1002");
    let first = r.send(&c, Some(600), None).expect("answer");
    assert_eq!(first.status(), Some(401), "{}", first.text);
    let algs: Vec<String> = challenges(&first)
        .iter()
        .map(|c| c.algorithm.to_ascii_uppercase())
        .collect();
    assert!(
        algs.contains(&"SHA-256".to_string()),
        "SHA-256 challenge offered: {algs:?}\n{}",
        first.text
    );
    assert!(
        algs.contains(&"MD5".to_string()),
        "MD5 challenge offered: {algs:?}\n{}",
        first.text
    );
    for ch in challenges(&first) {
        assert!(!ch.realm.is_empty() && !ch.nonce.is_empty(), "{ch:?}");
    }
    let bad = r.register("not-the-password", "MD5", &c, Some(600));
    assert!(
        matches!(bad.status(), Some(401 | 403)),
        "wrong password refused:\n{}",
        bad.text
    );
    assert_eq!(
        bindings(&d, "1002"),
        0,
        "no binding after a failed REGISTER"
    );
    // And the right password works with either algorithm.
    for alg in ["SHA-256", "MD5"] {
        let ok = r.register("pass1002", alg, &c, Some(600));
        assert_eq!(
            ok.status(),
            Some(200),
            "{alg} REGISTER:\n{}\n{}",
            ok.text,
            d.log_tail()
        );
    }
    assert_eq!(bindings(&d, "1002"), 1, "{}", d.registrations_text());
}

#[test]
fn several_contacts_remove_one_remove_all_and_persist_across_restart() {
    let mut d = Daemon::start("basic");
    let base = d.slot().port(switchyard_e2e::slot::offset::SCRATCH);
    let mut r = Registrant::new(&d, "1003", "b");
    for (i, alg) in ["SHA-256", "MD5", "SHA-256"].iter().enumerate() {
        let ok = r.register(
            "pass1003",
            alg,
            &contact(base + i as u16, "1003"),
            Some(600),
        );
        assert_eq!(
            ok.status(),
            Some(200),
            "REGISTER contact {i}:\n{}\n{}",
            ok.text,
            d.log_tail()
        );
    }
    assert_eq!(
        bindings(&d, "1003"),
        3,
        "three contacts: {}",
        d.registrations_text()
    );

    // Expires: 0 on one contact removes exactly that one (RFC 3261 §10.2.2).
    let ok = r.register("pass1003", "MD5", &contact(base + 1, "1003"), Some(0));
    assert_eq!(ok.status(), Some(200), "{}", ok.text);
    assert_eq!(
        bindings(&d, "1003"),
        2,
        "one removed: {}",
        d.registrations_text()
    );
    let text = d.registrations_text();
    assert!(
        !text.contains(&format!("127.0.0.1:{}", base + 1)),
        "the removed contact is gone: {text}"
    );

    // Bindings survive a restart (they are stored in SQLite).
    let mut other = Registrant::new(&d, "1004", "c");
    let ok = other.register(
        "pass1004",
        "SHA-256",
        &contact(base + 10, "1004"),
        Some(600),
    );
    assert_eq!(ok.status(), Some(200), "{}", ok.text);
    d.restart();
    assert_eq!(
        bindings(&d, "1003"),
        2,
        "after restart: {}\n{}",
        d.registrations_text(),
        d.log_tail()
    );
    assert_eq!(
        bindings(&d, "1004"),
        1,
        "after restart: {}",
        d.registrations_text()
    );

    // Contact: * with Expires: 0 removes all of the user's bindings (RFC 3261 §10.2.2).
    let mut r = Registrant::new(&d, "1003", "d");
    let ok = r.register("pass1003", "MD5", "*", Some(0));
    assert_eq!(ok.status(), Some(200), "{}\n{}", ok.text, d.log_tail());
    assert_eq!(
        bindings(&d, "1003"),
        0,
        "all removed: {}",
        d.registrations_text()
    );
    assert_eq!(
        bindings(&d, "1004"),
        1,
        "other users untouched: {}",
        d.registrations_text()
    );
}

#[test]
fn repeated_failures_block_the_source() {
    let d = Daemon::builder("basic")
        .set("auth.max_failures", "5")
        .set("auth.failure_window_secs", "60")
        .set("auth.block_secs", "60")
        .start();
    let mut r = Registrant::new(&d, "1005", "e");
    let c = contact(r.peer.local_port(), "1005");
    let mut blocked_after = None;
    for attempt in 1..=20 {
        let Some(first) = r.send(&c, Some(600), None) else {
            blocked_after = Some(attempt);
            break;
        };
        if first.status() == Some(403) {
            blocked_after = Some(attempt);
            break;
        }
        assert_eq!(first.status(), Some(401), "{}", first.text);
        let ch = challenges(&first).into_iter().next().expect("a challenge");
        let auth = ch.authorization(
            "1005",
            "wrong",
            "REGISTER",
            &format!("sip:127.0.0.1:{}", d.sip_port()),
        );
        match r.send(&c, Some(600), Some(&auth)) {
            None => {
                blocked_after = Some(attempt);
                break;
            }
            Some(m) if m.status() == Some(403) && attempt > 5 => {
                blocked_after = Some(attempt);
                break;
            }
            Some(m) => assert!(matches!(m.status(), Some(401 | 403)), "{}", m.text),
        }
    }
    let n = blocked_after.unwrap_or_else(|| {
        panic!(
            "20 failed attempts never blocked the source\n{}",
            d.log_tail()
        )
    });
    assert!(
        n >= 2,
        "blocked only after failures, not at once (attempt {n})"
    );
    assert!(
        d.log().contains("blocked"),
        "the log says the source was blocked\n{}",
        d.log_tail()
    );
    // Even the right password is not answered now.
    let mut good = Registrant::new(&d, "1005", "f");
    let after = good.send(&c, Some(600), None);
    assert!(
        after.is_none() || after.as_ref().and_then(|m| m.status()) == Some(403),
        "a blocked source gets no service: {after:?}"
    );
    assert_eq!(bindings(&d, "1005"), 0);
}
