//! A CDR is durable once the call has ended: kill -9 right after the caller's BYE is
//! answered and the row is still in the database.

use std::time::Duration;
use switchyard_e2e::daemon::read_cdrs;
use switchyard_e2e::{Daemon, sipp_callee, sipp_caller};

#[test]
fn cdr_survives_kill9_right_after_the_call() {
    let mut d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "1"]);
    let mut uac = sipp_caller(
        &d,
        "uac",
        &[],
        "1000",
        "1001",
        &["-m", "1", "-d", "500", "-timeout", "20"],
    );
    uac.wait(Duration::from_secs(25))
        .assert_ok(1, &d.log_tail());
    // No waiting for the store: the process dies as soon as the caller saw its 200 to BYE.
    d.kill9();
    uas.wait(Duration::from_secs(10));
    let cdrs = read_cdrs(&d.db_path())
        .unwrap_or_else(|e| panic!("reopen DB after kill -9: {e}\n{}", d.log_tail()));
    assert_eq!(
        cdrs.len(),
        1,
        "the CDR of the finished call is durable: {cdrs:?}\n{}",
        d.log_tail()
    );
    let c = &cdrs[0];
    assert_eq!(c.caller, "1000", "{c:?}");
    assert_eq!(c.callee, "1001", "{c:?}");
    assert_eq!(c.destination, "1001", "{c:?}");
    assert_eq!(c.hangup_cause, "NORMAL_CLEARING", "{c:?}");
    assert_eq!(c.hangup_side.as_deref(), Some("caller"), "{c:?}");
    assert!(c.answer_ms.is_some() && c.end_ms >= c.start_ms, "{c:?}");
}
