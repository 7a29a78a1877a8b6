//! Transcoding through the switch: a baresip caller that offers only Opus calls a baresip
//! callee limited to PCMA. They share no codec, so the switch answers the caller in Opus and
//! the callee in PCMA and transcodes between them; each must hear the other's tone.

use std::time::Duration;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Baresip, BaresipConfig, Daemon, analyze_wav};

const T: Duration = Duration::from_secs(15);

fn daemon() -> Daemon {
    // baresip 1.0 refuses a 401 holding any non-MD5 challenge (see calls_baresip.rs).
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

/// 1000 (1 kHz, `caller_codecs`) calls 1001 (1.5 kHz, `callee_codecs`, answers by itself).
fn call(d: &Daemon, caller_codecs: &str, callee_codecs: &str) -> (Baresip, Baresip) {
    let port = |off| d.slot().port(off);
    let mut a = Baresip::start(
        BaresipConfig::new("1000", d.sip_port(), port(offset::BARESIP_A), 1000.0, false)
            .codecs(caller_codecs),
    );
    let mut b = Baresip::start(
        BaresipConfig::new("1001", d.sip_port(), port(offset::BARESIP_B), 1500.0, true)
            .codecs(callee_codecs),
    );
    d.wait_registered("1000", 1, T);
    d.wait_registered("1001", 1, T);
    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    (a, b)
}

#[test]
fn opus_caller_and_pcma_callee_hear_each_other() {
    let d = daemon();
    let (mut a, mut b) = call(&d, "opus/48000/2", "pcma");
    let b_rec = b.wait_new_recording(&[], 3, T);
    let a_rec = a.wait_new_recording(&[], 3, T);
    // The media threads publish quality a few times a second; 3 s of audio is plenty.
    let channels = d.ctl_ok("show channels");
    assert!(
        channels.contains("codec opus/48000 terminated")
            && channels.contains("codec PCMA terminated"),
        "both legs terminated, one in Opus and one in PCMA:\n{channels}"
    );
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);
    analyze_wav(&b_rec).assert_tone(1000.0, "the PCMA callee hears the Opus caller's 1 kHz");
    analyze_wav(&a_rec).assert_tone(1500.0, "the Opus caller hears the PCMA callee's 1.5 kHz");
    assert!(
        a.log().to_lowercase().contains("opus"),
        "the caller really spoke Opus:\n{}",
        a.log()
    );
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING", "{:?}", cdrs[0]);
    let quality = d.cdr_quality(&cdrs[0].uuid);
    assert_eq!(quality.transcoded, Some(true), "{quality:?}");
    assert_eq!(
        quality.codec_a.as_deref(),
        Some("opus/48000"),
        "{quality:?}"
    );
    assert_eq!(quality.codec_b.as_deref(), Some("PCMA"), "{quality:?}");
    for mos in [quality.mos_a, quality.mos_b] {
        let mos = mos.unwrap_or_else(|| panic!("a MOS estimate per leg: {quality:?}"));
        assert!(
            mos > 4.0 && mos <= 4.5,
            "a clean local call scores high: {quality:?}"
        );
    }
}

#[test]
fn a_shared_codec_stays_a_pure_relay() {
    let d = daemon();
    let (mut a, mut b) = call(&d, "opus/48000/2,pcma", "pcma");
    let b_rec = b.wait_new_recording(&[], 3, T);
    let channels = d.ctl_ok("show channels");
    assert!(
        channels.matches("codec PCMA relayed").count() == 2,
        "both legs relayed in PCMA:\n{channels}"
    );
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    // The callee's WAV header gets its sizes when its call closes.
    b.wait_event("CALL_CLOSED", T);
    analyze_wav(&b_rec).assert_tone(1000.0, "the callee hears the caller");
    let cdrs = d.wait_cdrs(1, T);
    let quality = d.cdr_quality(&cdrs[0].uuid);
    assert_eq!(quality.transcoded, Some(false), "{quality:?}");
}
