//! The console: status, errors, hupall, kill <uuid>, graceful shutdown.

use std::time::Duration;
use switchyard_e2e::slot::offset;
use switchyard_e2e::{Daemon, call_expecting, sipp_callee, sipp_caller};

const T: Duration = Duration::from_secs(25);

/// The call UUIDs listed by `show calls` (tokens shaped like a UUID).
fn call_uuids(d: &Daemon) -> Vec<String> {
    let out = d.ctl_ok("show calls");
    out.split(|c: char| c.is_whitespace() || c == ',' || c == '|')
        .filter(|w| w.len() == 36 && w.chars().filter(|c| *c == '-').count() == 4)
        .map(str::to_string)
        .collect()
}

#[test]
fn status_and_unknown_command() {
    let d = Daemon::start("basic");
    let status = d.ctl_ok("status");
    assert!(!status.trim().is_empty(), "status prints something");
    let err = d
        .ctl("bogus")
        .expect_err("an unknown command exits non-zero");
    assert!(!err.trim().is_empty(), "and says why");
    assert_eq!(d.call_count(), 0);
}

#[test]
fn hupall_ends_active_calls() {
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "3"]);
    let mut uac = sipp_caller(
        &d,
        "uac_wait_bye",
        &[],
        "1000",
        "1001",
        &["-m", "3", "-l", "3", "-r", "10", "-timeout", "40"],
    );
    d.wait_calls(3, Duration::from_secs(15));
    d.ctl_ok("hupall");
    uac.wait(T).assert_ok(3, &d.log_tail());
    uas.wait(T).assert_ok(3, &d.log_tail());
    d.wait_calls(0, Duration::from_secs(5));
    let cdrs = d.wait_cdrs(3, Duration::from_secs(5));
    for c in &cdrs {
        assert_eq!(c.hangup_cause, "MANAGER_REQUEST", "{c:?}");
    }
}

#[test]
fn kill_ends_one_call() {
    let d = Daemon::start("basic");
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "2"]);
    let mut uac = sipp_caller(
        &d,
        "uac_wait_bye",
        &[],
        "1000",
        "1001",
        &["-m", "2", "-l", "2", "-r", "10", "-timeout", "40"],
    );
    d.wait_calls(2, Duration::from_secs(15));
    let uuids = call_uuids(&d);
    assert_eq!(
        uuids.len(),
        2,
        "two call UUIDs in `show calls`:\n{}",
        d.ctl_ok("show calls")
    );
    d.ctl_ok(&format!("kill {}", uuids[0]));
    d.wait_calls(1, Duration::from_secs(5));
    assert_eq!(
        call_uuids(&d),
        vec![uuids[1].clone()],
        "the other call is untouched"
    );
    assert!(
        d.ctl("kill 00000000-0000-0000-0000-000000000000").is_err(),
        "kill of an unknown uuid fails"
    );
    d.ctl_ok("hupall");
    uac.wait(T).assert_ok(2, &d.log_tail());
    uas.wait(T).assert_ok(2, &d.log_tail());
    let cdrs = d.wait_cdrs(2, Duration::from_secs(5));
    let killed = cdrs
        .iter()
        .find(|c| c.uuid == uuids[0])
        .expect("CDR of the killed call");
    assert_eq!(killed.hangup_cause, "MANAGER_REQUEST", "{killed:?}");
}

#[test]
fn shutdown_refuses_new_calls_and_exits_when_calls_end() {
    let mut d = Daemon::builder("basic")
        .set("calls.shutdown_grace_secs", "60")
        .start();
    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "1"]);
    // The caller hangs up by itself after 4 s.
    let mut uac = sipp_caller(
        &d,
        "uac",
        &[],
        "1000",
        "1001",
        &["-m", "1", "-d", "4000", "-timeout", "30"],
    );
    d.wait_calls(1, Duration::from_secs(10));
    d.ctl_ok("shutdown");
    call_expecting(&d, offset::SCRATCH, "1000", "1001", &[503]).assert_ok(1, &d.log_tail());
    assert!(
        d.is_running(),
        "still running while a call is up\n{}",
        d.log_tail()
    );
    uac.wait(T).assert_ok(1, &d.log_tail());
    uas.wait(T).assert_ok(1, &d.log_tail());
    let st = d.wait_exit(Duration::from_secs(15));
    assert!(
        st.success(),
        "clean exit after the last call: {st}\n{}",
        d.log_tail()
    );
}
