//! switchyard-e2e: helpers for end-to-end tests of the `switchyard` daemon against real
//! SIP peers (SIPp, baresip) and raw sockets.
//!
//! Every test owns a [`Slot`]: a SIP port block and an RTP port range reserved by an
//! exclusive lock file, so tests run in parallel processes (nextest) without colliding.
//! Synchronisation is always "poll a condition under a deadline" ([`wait_until`]), never a
//! fixed sleep.

#![forbid(unsafe_code)]

pub mod audio;
pub mod baresip;
pub mod daemon;
pub mod dtmf;
pub mod media;
pub mod sip;
pub mod sipp;
pub mod slot;

pub use audio::{ToneReport, analyze_wav, analyze_wav_window, goertzel, write_tone_wav};
pub use baresip::{Baresip, BaresipConfig};
pub use daemon::{Cdr, CdrQuality, Daemon, DaemonBuilder};
pub use sip::{DigestChallenge, SipMessage, UdpPeer, digest_response};
pub use sipp::{Sipp, SippOutcome};
pub use slot::Slot;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The directory of this crate (`tests/`).
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    e2e_dir()
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Polls `probe` every 20 ms until it returns `Some` or `timeout` elapses; panics with
/// `what` (and whatever `context` returns, e.g. the daemon log) on timeout.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Like [`wait_until`] but returns `None` on timeout instead of panicking.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `play_pcap_audio` in SIPp opens a raw socket: the media tests need root. They fail
/// (not skip) when run otherwise, so a green run always means media was exercised.
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(
        uid, "0",
        "this test drives SIPp play_pcap_audio, which needs root (raw sockets): run the e2e tests as root (tests/run does)"
    );
}

/// Last `n` lines of a text, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Registers `user` with a Contact at the slot's UAS port (REGISTER-only SIPp sent from that
/// same port), then starts a SIPp callee there running `tests/sipp/<scenario>.xml`.
pub fn sipp_callee(d: &Daemon, scenario: &str, user: &str, args: &[&str]) -> Sipp {
    use slot::offset;
    let port = d.slot().port(offset::SIPP_UAS);
    let p = port.to_string();
    let mp = d.slot().port(offset::SIPP_UAS_MEDIA).to_string();
    let mut all = vec!["-p", &p, "-mp", &mp];
    all.extend_from_slice(args);
    // The switch sends calls to the address a binding was registered FROM (the flow, as
    // behind NAT), so the REGISTER leaves from the UAS's own port before the UAS binds it.
    sipp::register(d.sip_port(), port, user, port, 3600);
    Sipp::spawn(scenario, None, &all)
}

/// Starts a SIPp caller (`-key caller`, auth `pass<caller>`) on the slot's UAC ports,
/// calling `callee` through the daemon.
pub fn sipp_caller(
    d: &Daemon,
    scenario: &str,
    substitutions: &[(&str, &str)],
    caller: &str,
    callee: &str,
    args: &[&str],
) -> Sipp {
    use slot::offset;
    let p = d.slot().port(offset::SIPP_UAC).to_string();
    let mp = d.slot().port(offset::SIPP_UAC_MEDIA).to_string();
    let pass = format!("pass{caller}");
    let mut all = vec![
        "-p", &p, "-mp", &mp, "-s", callee, "-key", "caller", caller, "-au", caller, "-ap", &pass,
    ];
    all.extend_from_slice(args);
    Sipp::spawn_with(scenario, substitutions, Some(d.sip_port()), &all)
}

/// SIPp caller arguments of the load tests: 100 calls of 3 s, 50 at a time.
pub const LOAD_50_CONCURRENT: &[&str] = &[
    "-r",
    "50",
    "-l",
    "50",
    "-m",
    "100",
    "-d",
    "3000",
    "-recv_timeout",
    "15000",
    "-timeout",
    "90",
];

/// The substitutions for `uac_final.xml`: accept any of `codes` as the final response,
/// with or without a preceding 407 (the last `recv` mandatory, as SIPp requires).
pub fn finals(codes: &[u16]) -> Vec<(String, String)> {
    let block = |label: &str| {
        let mut s = String::new();
        for (i, c) in codes.iter().enumerate() {
            let optional = if i + 1 < codes.len() {
                " optional=\"true\""
            } else {
                ""
            };
            s.push_str(&format!(
                "  <recv response=\"{c}\"{optional} next=\"{label}\"/>\n"
            ));
        }
        s
    };
    vec![
        ("__FINALS1__".into(), block("ack1")),
        ("__FINALS2__".into(), block("ack2")),
    ]
}

/// Runs `uac_final.xml` from the caller port at slot offset `off` and returns the outcome
/// (one call expecting one of `codes`).
pub fn call_expecting(
    d: &Daemon,
    off: u16,
    caller: &str,
    callee: &str,
    codes: &[u16],
) -> SippOutcome {
    let subs = finals(codes);
    let subs: Vec<(&str, &str)> = subs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = d.slot().port(off).to_string();
    let mp = d.slot().port(off + 2).to_string();
    let pass = format!("pass{caller}");
    let mut s = Sipp::spawn_with(
        "uac_final",
        &subs,
        Some(d.sip_port()),
        &[
            "-p",
            &p,
            "-mp",
            &mp,
            "-s",
            callee,
            "-key",
            "caller",
            caller,
            "-au",
            caller,
            "-ap",
            &pass,
            "-m",
            "1",
            "-recv_timeout",
            "15000",
            "-timeout",
            "30",
        ],
    );
    s.wait(Duration::from_secs(35))
}
