//! DTMF against real peers (issue 3): digits reach the switch as RFC 4733 events (SIPp's
//! RFC 2833 pcaps, baresip's `sndcode`) and as in-band tones (a baresip whose microphone is a
//! WAV of DTMF tones), are logged and kept in the CDR; across a bridge whose legs signal DTMF
//! differently the switch converts them, and the far peer must receive them in its own way:
//! SIP INFO at a SIPp callee, telephone-events at a baresip, tones in a baresip's recording.

use std::path::Path;
use std::time::Duration;
use switchyard_e2e::dtmf::{
    DtmfLogLine, DtmfWav, detect_dtmf_wav, dtmf_log_lines, rfc2833_pcaps_payload_type,
    sipp_callee_with, sipp_expect_info_digits, sipp_play_digits, sipp_send_info_digits,
    write_dtmf_wav,
};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{
    Baresip, BaresipConfig, Daemon, Sipp, poll_until, require_root, sipp_caller, tail, wait_until,
};

const T: Duration = Duration::from_secs(10);

/// baresip 1.0 refuses a 401 holding any non-MD5 challenge (see calls_baresip.rs); SIPp
/// answers MD5 as well.
fn daemon() -> Daemon {
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

fn baresip(d: &Daemon, user: &str, off: u16, auto_answer: bool) -> BaresipConfig {
    BaresipConfig::new(user, d.sip_port(), d.slot().port(off), 1000.0, auto_answer)
}

/// Waits until the daemon has logged `n` DTMF digits, and returns them.
fn wait_dtmf_lines(d: &Daemon, n: usize) -> Vec<DtmfLogLine> {
    wait_until(
        T,
        &format!("{n} DTMF digits in the daemon log"),
        || {
            let lines = dtmf_log_lines(&d.log());
            (lines.len() >= n).then_some(lines)
        },
        || d.log_tail(),
    )
}

/// The digits of the log lines, each checked to come from `leg` of call `uuid` by `via`.
fn logged_digits(lines: &[DtmfLogLine], uuid: &str, leg: &str, via: &str) -> String {
    for l in lines {
        assert_eq!(
            (l.uuid.as_str(), l.leg.as_str(), l.via.as_str()),
            (uuid, leg, via),
            "every digit from the {leg} of {uuid} via {via}: {lines:#?}"
        );
    }
    lines.iter().map(|l| l.digit).collect()
}

/// The CDR of the only call, once written, with its DTMF digits.
fn only_cdr_digits(d: &Daemon) -> (String, Option<String>) {
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs.len(), 1, "one call: {cdrs:?}");
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING", "{:?}", cdrs[0]);
    let uuid = cdrs[0].uuid.clone();
    let digits = d.cdr_quality(&uuid).dtmf_digits;
    (uuid, digits)
}

/// A SIPp caller (1000) offering PCMU and telephone-event that plays SIPp's RFC 2833 pcap of
/// each of `digits`, then hangs up.
fn sipp_dtmf_caller(d: &Daemon, callee: &str, digits: &str) -> Sipp {
    let pt = rfc2833_pcaps_payload_type(digits).to_string();
    let play = sipp_play_digits(digits, 500);
    sipp_caller(
        d,
        "uac_dtmf",
        &[("__TE_PT__", &pt), ("__DTMF__", &play)],
        "1000",
        callee,
        &["-m", "1", "-recv_timeout", "10000", "-timeout", "20"],
    )
}

/// A SIPp callee registered as 1010 (DTMF by SIP INFO) that must receive `digits` as INFO.
fn sipp_info_callee(d: &Daemon, digits: &str) -> Sipp {
    let expect = sipp_expect_info_digits(digits);
    let uas = sipp_callee_with(
        d,
        "uas_info_dtmf",
        // baresip and SIPp's pcaps both use 101; the switch's offer carries the caller's number.
        &[("__TE_PT__", "101"), ("__EXPECT__", &expect)],
        "1010",
        &["-m", "1", "-timeout", "25"],
    );
    d.wait_registered("1010", 1, T);
    uas
}

/// A WAV of in-band `digits` (-10 dBFS per tone, 120 ms on, 100 ms off, 1.5 s of silence
/// first so the call is up) in `dir`.
fn dtmf_wav(dir: &Path, digits: &str) -> std::path::PathBuf {
    let wav = dir.join("dtmf.wav");
    write_dtmf_wav(
        &wav,
        digits,
        DtmfWav {
            lead_ms: 1500,
            ..DtmfWav::default()
        },
    );
    wav
}

#[test]
fn rfc4733_events_from_sipp_pcaps_reach_the_cdr() {
    require_root();
    let d = daemon();
    assert_eq!(
        rfc2833_pcaps_payload_type("123"),
        101,
        "SIPp's pcaps use PT 101"
    );
    let mut uac = sipp_dtmf_caller(&d, "9664", "123");
    uac.wait(Duration::from_secs(25))
        .assert_ok(1, &d.log_tail());
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("123"), "{}", d.log_tail());
    let lines = dtmf_log_lines(&d.log());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "rfc4733"), "123");
}

#[test]
fn baresip_sndcode_reaches_the_cdr() {
    let d = daemon();
    let mut a = Baresip::start(baresip(&d, "1000", offset::BARESIP_A, false));
    d.wait_registered("1000", 1, T);
    a.dial(&format!("sip:9664@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    a.send_digits("159#");
    let lines = wait_dtmf_lines(&d, 4);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("159#"), "{}", d.log_tail());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "rfc4733"), "159#");
}

#[test]
fn inband_tones_from_baresip_reach_the_cdr() {
    let d = daemon();
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dtmf_wav(dir.path(), "2580");
    // 1011 is an in-band user: the switch listens for tones on its leg.
    let mut a = Baresip::start(baresip(&d, "1011", offset::BARESIP_A, false).source(&wav));
    d.wait_registered("1011", 1, T);
    a.dial(&format!("sip:9664@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    let lines = wait_dtmf_lines(&d, 4);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("2580"), "{}", d.log_tail());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "inband"), "2580");
}

#[test]
fn rfc4733_caller_reaches_an_info_callee_as_sip_info() {
    require_root();
    let d = daemon();
    let mut uas = sipp_info_callee(&d, "123");
    let mut uac = sipp_dtmf_caller(&d, "1010", "123");
    uac.wait(Duration::from_secs(25))
        .assert_ok(1, &d.log_tail());
    // Exit 0 only if the three INFOs came, in order, with the right signals.
    uas.wait(Duration::from_secs(10))
        .assert_ok(1, &d.log_tail());
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("123"), "{}", d.log_tail());
    let lines = dtmf_log_lines(&d.log());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "rfc4733"), "123");
    assert!(
        d.log().contains("terminating media to convert DTMF"),
        "{}",
        d.log_tail()
    );
}

#[test]
fn inband_caller_reaches_an_rfc4733_callee_as_telephone_events() {
    let d = daemon();
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dtmf_wav(dir.path(), "2580");
    let mut a = Baresip::start(baresip(&d, "1011", offset::BARESIP_A, false).source(&wav));
    let mut b = Baresip::start(baresip(&d, "1001", offset::BARESIP_B, true));
    d.wait_registered("1011", 1, T);
    d.wait_registered("1001", 1, T);
    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    assert_eq!(
        b.wait_dtmf_digits(4, T),
        "2580",
        "the callee's telephone-events, in order"
    );
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);
    // The tones were converted, not doubled: the switch silences a detected tone, so what
    // the callee heard holds no digit a tone receiver would accept.
    let heard = b.heard_wav().expect("the callee's recording");
    assert_eq!(
        detect_dtmf_wav(&heard),
        "",
        "no tones reach the callee besides the events"
    );
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("2580"), "{}", d.log_tail());
    let lines = dtmf_log_lines(&d.log());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "inband"), "2580");
}

#[test]
fn sndcode_caller_reaches_an_info_callee_as_sip_info() {
    let d = daemon();
    let mut uas = sipp_info_callee(&d, "159#");
    let mut a = Baresip::start(baresip(&d, "1000", offset::BARESIP_A, false));
    d.wait_registered("1000", 1, T);
    a.dial(&format!("sip:1010@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    a.send_digits("159#");
    // Once the switch has sent the fourth INFO, the callee has it or will have it shortly.
    wait_until(
        T,
        "four INFOs answered by the SIPp callee",
        || (uas.messages().matches("INFO sip:").count() >= 4).then_some(()),
        || format!("{}\n{}", tail(&uas.messages(), 60), d.log_tail()),
    );
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    uas.wait(Duration::from_secs(10))
        .assert_ok(1, &d.log_tail());
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("159#"), "{}", d.log_tail());
    let lines = dtmf_log_lines(&d.log());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "rfc4733"), "159#");
}

#[test]
fn sndcode_caller_reaches_an_inband_callee_as_tones() {
    let d = daemon();
    let mut a = Baresip::start(baresip(&d, "1000", offset::BARESIP_A, false));
    // 1011 is an in-band user: it gets tones in its audio, never telephone-events.
    let mut b = Baresip::start(baresip(&d, "1011", offset::BARESIP_B, true));
    d.wait_registered("1000", 1, T);
    d.wait_registered("1011", 1, T);
    a.dial(&format!("sip:1011@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    // Wait for the callee to record the start of the call before the digits are sent.
    let rec = b.wait_new_recording(&[], 1, T);
    a.send_digits("159#");
    let heard = poll_until(T, || {
        let digits = detect_dtmf_wav(&rec);
        (digits == "159#").then_some(digits)
    });
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);
    assert_eq!(
        heard.as_deref(),
        Some("159#"),
        "the callee's recording holds the digits as tones (now it holds {:?})\n{}",
        detect_dtmf_wav(&rec),
        d.log_tail()
    );
    assert!(
        !b.has_event("CALL_DTMF_START"),
        "an in-band user gets no telephone-events"
    );
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("159#"), "{}", d.log_tail());
    let lines = dtmf_log_lines(&d.log());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "rfc4733"), "159#");
}

#[test]
fn info_caller_reaches_an_rfc4733_callee_as_telephone_events() {
    let d = daemon();
    let mut b = Baresip::start(baresip(&d, "1001", offset::BARESIP_B, true));
    d.wait_registered("1001", 1, T);
    // 1010 signals DTMF by SIP INFO.
    let info = sipp_send_info_digits("7*9", 300);
    let mut uac = sipp_caller(
        &d,
        "uac_dtmf",
        &[("__TE_PT__", "101"), ("__DTMF__", &info)],
        "1010",
        "1001",
        &["-m", "1", "-recv_timeout", "10000", "-timeout", "20"],
    );
    b.wait_event("CALL_ESTABLISHED", T);
    assert_eq!(
        b.wait_dtmf_digits(3, T),
        "7*9",
        "the callee's telephone-events, in order"
    );
    uac.wait(Duration::from_secs(25))
        .assert_ok(1, &d.log_tail());
    b.wait_event("CALL_CLOSED", T);
    let (uuid, digits) = only_cdr_digits(&d);
    assert_eq!(digits.as_deref(), Some("7*9"), "{}", d.log_tail());
    let lines = dtmf_log_lines(&d.log());
    assert_eq!(logged_digits(&lines, &uuid, "caller", "info"), "7*9");
}
