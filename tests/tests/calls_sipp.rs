//! 100 SIPp calls with G.711 media through the B2BUA: every call succeeds at both ends,
//! every call leaves a CDR with RTP counted on both legs, and no call is left behind.

use std::time::Duration;
use switchyard_e2e::{Daemon, require_root, sipp_callee, sipp_caller};

#[test]
fn hundred_calls_with_media_and_cdrs() {
    require_root();
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-rtp_echo", "-m", "100"]);
    d.wait_registered("1001", 1, Duration::from_secs(5));
    let mut uac = sipp_caller(
        &d,
        "uac_pcap",
        &[],
        "1000",
        "1001",
        &[
            "-r",
            "10",
            "-l",
            "20",
            "-m",
            "100",
            "-d",
            "1500",
            "-recv_timeout",
            "10000",
            "-timeout",
            "90",
        ],
    );
    let caller = uac.wait(Duration::from_secs(100));
    caller.assert_ok(100, &d.log_tail());
    let callee = uas.wait(Duration::from_secs(20));
    callee.assert_ok(100, &d.log_tail());

    let cdrs = d.wait_cdrs(100, Duration::from_secs(10));
    assert_eq!(cdrs.len(), 100, "one CDR per call");
    for c in &cdrs {
        let ctx = format!("{c:?}");
        assert_eq!(c.hangup_cause, "NORMAL_CLEARING", "{ctx}");
        assert_eq!(c.caller, "1000", "{ctx}");
        assert_eq!(c.callee, "1001", "{ctx}");
        assert!(c.billsec_s >= 0 && c.answer_ms.is_some(), "answered: {ctx}");
        assert!(c.end_ms >= c.start_ms, "{ctx}");
        assert!(
            c.rtp_a_in > 0,
            "RTP from the caller reached the switch: {ctx}"
        );
        assert!(
            c.rtp_b_out > 0,
            "the switch relayed it to the callee: {ctx}"
        );
        assert!(
            c.rtp_b_in > 0,
            "the callee's echo reached the switch: {ctx}"
        );
        assert!(
            c.rtp_a_out > 0,
            "the switch relayed the echo to the caller: {ctx}"
        );
    }
    let mut uuids: Vec<&str> = cdrs.iter().map(|c| c.uuid.as_str()).collect();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(uuids.len(), 100, "CDR uuids are unique");
    d.wait_calls(0, Duration::from_secs(5));
    assert!(d.ctl_ok("show calls").starts_with("0 calls"));
}
