//! Real audio through the switch: two baresip UAs register, call each other through it and
//! each must hear the other's tone; a call to 9196 must return the caller's own tone.

use std::time::Duration;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Baresip, BaresipConfig, Daemon, analyze_wav};

const T: Duration = Duration::from_secs(10);

fn ua(d: &Daemon, user: &str, off: u16, hz: f64, auto: bool) -> Baresip {
    Baresip::start(BaresipConfig::new(
        user,
        d.sip_port(),
        d.slot().port(off),
        hz,
        auto,
    ))
}

/// baresip 1.0's libre aborts the REGISTER with ENOSYS on ANY non-MD5 challenge in the
/// 401 (it does not skip unknown algorithms), so these daemons offer MD5 only.
fn daemon() -> Daemon {
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

#[test]
fn tones_cross_the_switch_both_ways() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, false);
    let mut b = ua(&d, "1001", offset::BARESIP_B, 1500.0, true);
    // baresip registers at start-up, possibly before our ctrl_tcp connection exists, so
    // REGISTER_OK may never reach us: the switch's own view is the reference.
    d.wait_registered("1000", 1, T);
    d.wait_registered("1001", 1, T);

    a.dial(&format!("sip:1001@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    assert_eq!(d.call_count(), 1, "{}", d.log_tail());
    let b_rec = b.wait_new_recording(&[], 3, T);
    let a_rec = a.wait_new_recording(&[], 3, T);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    b.wait_event("CALL_CLOSED", T);
    analyze_wav(&b_rec).assert_tone(1000.0, "callee hears the caller's 1 kHz");
    analyze_wav(&a_rec).assert_tone(1500.0, "caller hears the callee's 1.5 kHz");
    d.wait_calls(0, T);
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING", "{:?}", cdrs[0]);
    assert!(
        cdrs[0].billsec_s >= 2,
        "about 3 s of talk time: {:?}",
        cdrs[0]
    );
}

#[test]
fn echo_extension_returns_own_tone() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0, false);
    d.wait_registered("1000", 1, T);
    a.dial(&format!("sip:9196@127.0.0.1:{}", d.sip_port()));
    a.wait_event("CALL_ESTABLISHED", T);
    let rec = a.wait_new_recording(&[], 3, T);
    a.hangup();
    a.wait_event("CALL_CLOSED", T);
    analyze_wav(&rec).assert_tone(1000.0, "9196 echoes the caller's own 1 kHz");
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs[0].destination, "9196", "{:?}", cdrs[0]);
}
