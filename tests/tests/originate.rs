//! `originate`: the switch calls a registered baresip itself; when it auto-answers, the
//! call's application runs (the echo returns its own tone; a bridge rings a second baresip
//! and the two hear each other). A SIPp callee answering 486 fails the originate with
//! USER_BUSY in the CDR.

use std::time::Duration;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Baresip, BaresipConfig, Daemon, analyze_wav, sipp_callee, wait_until};

const T: Duration = Duration::from_secs(15);

fn ua(d: &Daemon, user: &str, off: u16, hz: f64) -> Baresip {
    Baresip::start(BaresipConfig::new(
        user,
        d.sip_port(),
        d.slot().port(off),
        hz,
        true,
    ))
}

/// baresip 1.0 answers only MD5 challenges (see calls_baresip.rs).
fn daemon() -> Daemon {
    Daemon::builder("basic")
        .set("auth.digest_algorithms", r#"["MD5"]"#)
        .start()
}

#[test]
fn an_originated_echo_returns_the_answering_phones_own_tone() {
    let d = daemon();
    let mut b = ua(&d, "1001", offset::BARESIP_B, 1500.0);
    d.wait_registered("1001", 1, T);

    let uuid = d
        .ctl_ok("originate {origination_caller_id_number=4000}user/1001 &echo()")
        .trim()
        .to_owned();
    assert_eq!(uuid.len(), 36, "the call's uuid at once: {uuid:?}");
    b.wait_event("CALL_ESTABLISHED", T);
    let listing = d.ctl_ok("show calls");
    assert!(
        listing.contains(&format!("{uuid} 4000 -> user/1001")),
        "{listing}"
    );
    let heard = b.wait_new_recording(&[], 3, T);
    d.ctl_ok(&format!("uuid_kill {uuid}"));
    b.wait_event("CALL_CLOSED", T);
    analyze_wav(&heard).assert_tone(1500.0, "the echo returns baresip's own 1.5 kHz");

    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.uuid, uuid, "{cdr:?}");
    assert_eq!(cdr.caller, "4000", "{cdr:?}");
    assert_eq!(cdr.destination, "user/1001", "{cdr:?}");
    assert_eq!(cdr.hangup_cause, "MANAGER_REQUEST", "{cdr:?}");
    assert!(cdr.answer_ms.is_some(), "{cdr:?}");
    assert!(cdr.rtp_a_in > 0 && cdr.rtp_a_out > 0, "{cdr:?}");
    d.wait_calls(0, T);
}

#[test]
fn an_originated_call_bridged_to_a_second_phone_carries_both_tones() {
    let d = daemon();
    let mut a = ua(&d, "1000", offset::BARESIP_A, 1000.0);
    let mut b = ua(&d, "1001", offset::BARESIP_B, 1500.0);
    d.wait_registered("1000", 1, T);
    d.wait_registered("1001", 1, T);

    let uuid = d
        .ctl_ok("originate {origination_caller_id_number=1000}user/1000 &bridge(user/1001)")
        .trim()
        .to_owned();
    a.wait_event("CALL_ESTABLISHED", T);
    b.wait_event("CALL_ESTABLISHED", T);
    wait_until(
        T,
        "the originated call bridged",
        || d.ctl_ok("show calls").contains("bridged").then_some(()),
        || d.log_tail(),
    );
    let a_heard = a.wait_new_recording(&[], 3, T);
    let b_heard = b.wait_new_recording(&[], 3, T);
    b.hangup();
    b.wait_event("CALL_CLOSED", T);
    a.wait_event("CALL_CLOSED", T);
    analyze_wav(&a_heard).assert_tone(1500.0, "the originated phone hears 1001's 1.5 kHz");
    analyze_wav(&b_heard).assert_tone(1000.0, "1001 hears the originated phone's 1 kHz");

    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.uuid, uuid, "{cdr:?}");
    assert_eq!(cdr.destination, "user/1000", "{cdr:?}");
    assert_eq!(cdr.callee, "1001", "{cdr:?}");
    assert_eq!(cdr.hangup_cause, "NORMAL_CLEARING", "{cdr:?}");
    assert_eq!(cdr.b_sip_code, Some(200), "{cdr:?}");
    d.wait_calls(0, T);
}

#[test]
fn a_busy_target_fails_the_originate_with_user_busy() {
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_busy", "1001", &["-m", "1"]);
    d.wait_registered("1001", 1, T);
    let uuid = d.ctl_ok("originate user/1001 &park()").trim().to_owned();
    uas.wait(T).assert_ok(1, &d.log_tail());
    let cdrs = d.wait_cdrs(1, T);
    let cdr = &cdrs[0];
    assert_eq!(cdr.uuid, uuid, "{cdr:?}");
    assert_eq!(cdr.hangup_cause, "USER_BUSY", "{cdr:?}");
    assert_eq!(cdr.a_sip_code, Some(486), "{cdr:?}");
    assert!(cdr.answer_ms.is_none(), "{cdr:?}");
    assert!(
        !d.log_lines_with(&["originate: the target refused", "USER_BUSY"])
            .is_empty(),
        "{}",
        d.log_tail()
    );
    d.wait_calls(0, T);

    // A bad target is refused at once, with no call and no CDR.
    let refused = d.ctl("originate user/1002 &park()").unwrap_err();
    assert!(refused.contains("USER_NOT_REGISTERED"), "{refused}");
    assert_eq!(d.cdrs().len(), 1);
}
