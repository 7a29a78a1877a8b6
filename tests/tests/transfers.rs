//! Call transfer against real phones (RFC 3515 REFER, RFC 3891 Replaces, flows of RFC 5589):
//! the callee of a bridged call (the agent) hands its caller over, blind from baresip or
//! attended from a SIPp agent holding a consultation call, and the console's `transfer`.
//! Each time the caller must end up talking with the target: tones checked after the change.

use std::path::{Path, PathBuf};
use std::time::Duration;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{
    Baresip, BaresipConfig, Daemon, analyze_wav_window, sipp_callee, sipp_caller, wait_until,
};

const T: Duration = Duration::from_secs(10);
/// The caller's 1 kHz, the agent's 1.5 kHz, the target's 2 kHz.
const CALLER_HZ: f64 = 1000.0;
const AGENT_HZ: f64 = 1500.0;
const TARGET_HZ: f64 = 2000.0;

/// baresip 1.0 refuses a 401 holding any non-MD5 challenge (see calls_baresip.rs).
fn daemon() -> Daemon {
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

fn ua(d: &Daemon, user: &str, off: u16, hz: f64, auto: bool) -> Baresip {
    let ua = Baresip::start(BaresipConfig::new(
        user,
        d.sip_port(),
        d.slot().port(off),
        hz,
        auto,
    ));
    d.wait_registered(user, 1, T);
    ua
}

/// Seconds of 8 kHz 16-bit mono audio a baresip recording holds so far.
fn recorded_secs(wav: &Path) -> f64 {
    let len = wav.metadata().map_or(0, |m| m.len());
    len.saturating_sub(44) as f64 / 16000.0
}

/// Waits until `wav` holds `secs` seconds of audio.
fn wait_recorded(wav: &Path, secs: f64, d: &Daemon) {
    wait_until(
        T,
        &format!("{secs:.1} s recorded in {}", wav.display()),
        || (recorded_secs(wav) >= secs).then_some(()),
        || d.log_tail(),
    );
}

/// The only recording of a baresip that had one call.
fn only_recording(ua: &Baresip, d: &Daemon) -> PathBuf {
    wait_until(
        T,
        &format!("a recording by baresip {}", ua.cfg.user),
        || {
            let wavs = ua.heard_wavs();
            (wavs.len() == 1).then(|| wavs[0].clone())
        },
        || d.log_tail(),
    )
}

/// The call UUIDs of `show calls` (tokens shaped like a UUID).
fn call_uuids(d: &Daemon) -> Vec<String> {
    d.ctl_ok("show calls")
        .split_whitespace()
        .filter(|w| w.len() == 36 && w.matches('-').count() == 4)
        .map(str::to_owned)
        .collect()
}

/// 1000 (caller) calls 1001 (a baresip agent answering by itself); 1002 (target) answers
/// by itself too. Returns them once the call is up, with the caller's recording.
fn agent_call(d: &Daemon) -> (Baresip, Baresip, Baresip, PathBuf) {
    let mut a = ua(d, "1000", offset::BARESIP_A, CALLER_HZ, false);
    let mut b = ua(d, "1001", offset::BARESIP_B, AGENT_HZ, true);
    let c = ua(d, "1002", offset::BARESIP_C, TARGET_HZ, true);
    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    let a_rec = a.wait_new_recording(&[], 1, T);
    (a, b, c, a_rec)
}

/// After the transfer: the caller and the target hear each other (the caller's recording
/// from `a_mark` seconds on, when the target answered), then the caller hangs up.
fn caller_and_target_talk(d: &Daemon, a: &mut Baresip, c: &mut Baresip, a_rec: &Path, a_mark: f64) {
    let c_rec = only_recording(c, d);
    let c_mark = recorded_secs(&c_rec);
    wait_recorded(&c_rec, c_mark + 3.0, d);
    wait_recorded(a_rec, a_mark + 3.0, d);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    c.wait_event("CALL_CLOSED", T);
    // The WAV headers get their sizes when the calls close. Half a second of margin for
    // the jitter buffers and the switch's change of media.
    analyze_wav_window(&c_rec, c_mark + 0.5, 2.0)
        .assert_tone(CALLER_HZ, "the target hears the caller's 1 kHz");
    analyze_wav_window(a_rec, a_mark + 0.5, 2.0)
        .assert_tone(TARGET_HZ, "the caller hears the target's 2 kHz");
    d.wait_calls(0, T);
}

#[test]
fn blind_transfer_by_a_baresip_agent() {
    let d = daemon();
    let (mut a, mut b, mut c, a_rec) = agent_call(&d);
    b.command("transfer", &format!("sip:1002@127.0.0.1:{}", d.sip_port()));
    c.wait_event("CALL_ESTABLISHED", T);
    let a_mark = recorded_secs(&a_rec);
    // baresip closes its call on the final NOTIFY (sipfrag 200) of its REFER's subscription
    // (RFC 3515 §2.4.5); the switch's BYE follows.
    let closed = b.wait_event("CALL_CLOSED", T);
    assert_eq!(
        closed["param"], "Call transfered",
        "the agent was told the transfer worked: {closed}"
    );
    caller_and_target_talk(&d, &mut a, &mut c, &a_rec, a_mark);
    // Before the transfer the caller heard the agent.
    analyze_wav_window(&a_rec, 0.2, 0.6).assert_tone(AGENT_HZ, "the caller heard the agent first");
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs.len(), 1, "one call, the caller's: {cdrs:?}");
    assert_eq!(cdrs[0].caller, "1000", "{:?}", cdrs[0]);
    assert_eq!(
        cdrs[0].callee, "1002",
        "the CDR names the target: {:?}",
        cdrs[0]
    );
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING", "{:?}", cdrs[0]);
}

#[test]
fn attended_transfer_by_a_sipp_agent() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, CALLER_HZ, false);
    let mut c = ua(&d, "1002", offset::BARESIP_C, TARGET_HZ, true);
    let switch = format!("127.0.0.1:{}", d.sip_port());
    // A UAS has no remote_ip: -key switch names the switch in its URIs. SIPp's digest uri
    // is "sip:" + -auth_uri (by default remote_ip:remote_port), and the switch checks it
    // against the consultation INVITE's Request-URI.
    let args = format!(
        "-m 1 -key caller 1001 -key target 1002 -key switch {switch} -au 1001 -ap pass1001 \
         -auth_uri 1002@{switch} -recv_timeout 15000 -timeout 25"
    );
    let args: Vec<&str> = args.split_whitespace().collect();
    let mut agent = sipp_callee(&d, "xfer_attended_callee", "1001", &args);
    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    // The agent exits once it had its 202, both NOTIFYs and our BYEs on both calls.
    agent
        .wait(Duration::from_secs(15))
        .assert_ok(1, &d.log_tail());
    // The target answered the agent's consultation call.
    c.wait_event("CALL_ESTABLISHED", T);
    let calls = d.ctl_ok("show calls");
    assert!(
        calls.starts_with("1 calls") && calls.contains("(1002) answered"),
        "the caller's call goes on with the target:\n{calls}\n{}",
        d.log_tail()
    );
    let a_rec = only_recording(&a, &d);
    let a_mark = recorded_secs(&a_rec);
    caller_and_target_talk(&d, &mut a, &mut c, &a_rec, a_mark);
    let cdrs = d.wait_cdrs(2, T);
    assert_eq!(cdrs.len(), 2, "{cdrs:?}");
    let consult = cdrs
        .iter()
        .find(|c| c.caller == "1001")
        .unwrap_or_else(|| panic!("the consultation call's CDR: {cdrs:?}"));
    assert_eq!(consult.callee, "1002", "{consult:?}");
    assert_eq!(consult.hangup_cause, "ATTENDED_TRANSFER", "{consult:?}");
    let call = cdrs
        .iter()
        .find(|c| c.caller == "1000")
        .unwrap_or_else(|| panic!("the caller's CDR: {cdrs:?}"));
    assert_eq!(call.callee, "1002", "{call:?}");
    assert_eq!(call.hangup_cause, "NORMAL_CLEARING", "{call:?}");
}

#[test]
fn console_transfer_sends_the_caller_to_an_extension() {
    let d = daemon();
    let (mut a, mut b, mut c, a_rec) = agent_call(&d);
    let uuids = call_uuids(&d);
    assert_eq!(uuids.len(), 1, "{}", d.ctl_ok("show calls"));
    let out = d.ctl_ok(&format!("transfer {} 1002", uuids[0]));
    assert!(out.contains("transferred"), "{out}");
    c.wait_event("CALL_ESTABLISHED", T);
    let a_mark = recorded_secs(&a_rec);
    b.wait_event("CALL_CLOSED", T);
    caller_and_target_talk(&d, &mut a, &mut c, &a_rec, a_mark);
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0].uuid, uuids[0], "the same call: {:?}", cdrs[0]);
    assert_eq!(cdrs[0].callee, "1002", "{:?}", cdrs[0]);
    assert!(
        d.ctl(&format!("transfer {} 1002", uuids[0])).is_err(),
        "a call that ended cannot be transferred"
    );
}

#[test]
fn a_refer_from_the_caller_side_is_declined_and_the_call_goes_on() {
    let d = daemon();
    let mut b = ua(&d, "1001", offset::BARESIP_B, AGENT_HZ, true);
    let args = ["-m", "1", "-key", "target", "1002", "-d", "500"];
    let mut caller = sipp_caller(&d, "xfer_caller_declined", &[], "1000", "1001", &args);
    // 603 to the REFER, then 200 to the caller's BYE in the same dialog.
    caller
        .wait(Duration::from_secs(15))
        .assert_ok(1, &d.log_tail());
    b.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_CLOSED", T);
    d.wait_calls(0, T);
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    assert_eq!(cdrs[0].callee, "1001", "not transferred: {:?}", cdrs[0]);
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING", "{:?}", cdrs[0]);
}
