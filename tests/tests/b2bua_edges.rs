//! B2BUA edge cases driven by SIPp: cancel, busy, unregistered, unknown extension, no
//! answer, hold/unhold re-INVITEs, OPTIONS, BYE outside a dialog, RTP timeout.

use std::time::{Duration, Instant};
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Daemon, UdpPeer, call_expecting, sipp_callee, sipp_caller};

const T: Duration = Duration::from_secs(25);

fn caller_args() -> Vec<&'static str> {
    vec!["-m", "1", "-recv_timeout", "15000", "-timeout", "30"]
}

#[test]
fn caller_cancel_while_ringing() {
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_ring", "1001", &["-m", "1"]);
    let mut uac = sipp_caller(&d, "uac_cancel", &[], "1000", "1001", &caller_args());
    uac.wait(T).assert_ok(1, &d.log_tail());
    // The callee got the CANCEL, answered it and saw the ACK for its 487.
    uas.wait(T).assert_ok(1, &d.log_tail());
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    assert_eq!(cdrs[0].hangup_cause, "ORIGINATOR_CANCEL", "{:?}", cdrs[0]);
    assert_eq!(cdrs[0].a_sip_code, Some(487), "{:?}", cdrs[0]);
    assert!(cdrs[0].answer_ms.is_none(), "{:?}", cdrs[0]);
    d.wait_calls(0, Duration::from_secs(5));
}

#[test]
fn callee_busy_is_passed_back() {
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_busy", "1001", &["-m", "1"]);
    call_expecting(&d, offset::SIPP_UAC, "1000", "1001", &[486]).assert_ok(1, &d.log_tail());
    uas.wait(T).assert_ok(1, &d.log_tail());
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    assert_eq!(cdrs[0].a_sip_code, Some(486), "{:?}", cdrs[0]);
    assert_eq!(cdrs[0].b_sip_code, Some(486), "{:?}", cdrs[0]);
}

#[test]
fn unregistered_user_gets_480_and_unknown_extension_404() {
    let d = Daemon::start("basic");
    call_expecting(&d, offset::SIPP_UAC, "1000", "1002", &[480]).assert_ok(1, &d.log_tail());
    call_expecting(&d, offset::SCRATCH, "1000", "5555", &[404]).assert_ok(1, &d.log_tail());
    d.wait_calls(0, Duration::from_secs(5));
}

#[test]
fn no_answer_times_out() {
    let d = Daemon::builder("basic")
        .set("calls.no_answer_timeout_secs", "3")
        .start();
    let mut uas = sipp_callee(&d, "uas_ring", "1001", &["-m", "1"]);
    let t0 = Instant::now();
    call_expecting(&d, offset::SIPP_UAC, "1000", "1001", &[480, 408]).assert_ok(1, &d.log_tail());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "gave up after {took:?}, before the 3 s timeout"
    );
    assert!(
        took < Duration::from_secs(15),
        "no-answer timeout took {took:?}"
    );
    // The switch cancelled the ringing callee.
    uas.wait(T).assert_ok(1, &d.log_tail());
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    assert!(cdrs[0].answer_ms.is_none(), "{:?}", cdrs[0]);
}

#[test]
fn hold_and_unhold_reinvites_pass_through() {
    let d = Daemon::start("basic");
    // The callee checks that the first re-INVITE puts it on hold (sendonly/inactive).
    let mut uas = sipp_callee(&d, "uas_reinvite", "1001", &["-m", "1"]);
    let mut uac = sipp_caller(&d, "uac_hold", &[], "1000", "1001", &caller_args());
    uac.wait(T).assert_ok(1, &d.log_tail());
    uas.wait(T).assert_ok(1, &d.log_tail());
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    assert_eq!(cdrs[0].hangup_cause, "NORMAL_CLEARING", "{:?}", cdrs[0]);
}

#[test]
fn options_is_answered_and_bye_outside_a_dialog_gets_481() {
    let d = Daemon::start("basic");
    let peer = UdpPeer::new(d.sip_addr(), None);
    let lp = peer.local_port();
    let sp = d.sip_port();
    let options = format!(
        "OPTIONS sip:127.0.0.1:{sp} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bKopt1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=o1\r\nTo: <sip:127.0.0.1:{sp}>\r\n\
         Call-ID: options-{lp}\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"
    );
    let r = peer
        .transact(&options, Duration::from_secs(3))
        .expect("OPTIONS answered");
    assert_eq!(r.status(), Some(200), "{}", r.text);
    let bye = format!(
        "BYE sip:1001@127.0.0.1:{sp} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bKbye1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:1000@127.0.0.1>;tag=nosuch\r\nTo: <sip:1001@127.0.0.1>;tag=nodialog\r\n\
         Call-ID: no-such-dialog-{lp}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let r = peer
        .transact(&bye, Duration::from_secs(3))
        .expect("BYE answered");
    assert_eq!(
        r.status(),
        Some(481),
        "RFC 3261 §15.1.2: BYE without a dialog -> 481\n{}",
        r.text
    );
}

#[test]
fn rtp_timeout_hangs_up_both_sides() {
    let d = Daemon::builder("basic")
        .set("media.rtp_timeout_secs", "3")
        .start();
    // Neither side sends RTP; both must receive a BYE from the switch.
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "1"]);
    let t0 = Instant::now();
    let mut uac = sipp_caller(&d, "uac_wait_bye", &[], "1000", "1001", &caller_args());
    uac.wait(T).assert_ok(1, &d.log_tail());
    uas.wait(T).assert_ok(1, &d.log_tail());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2500),
        "hung up after {took:?}, before the RTP timeout"
    );
    let cdrs = d.wait_cdrs(1, Duration::from_secs(5));
    assert_eq!(cdrs[0].hangup_cause, "MEDIA_TIMEOUT", "{:?}", cdrs[0]);
    assert!(cdrs[0].answer_ms.is_some(), "{:?}", cdrs[0]);
}
