//! Media taps (issue 5, the module ABI's media fast path): `tap start UUID MODULE` hands a
//! call's audio to a module as 20 ms stereo frames on its `on_frame`, off the signalling and
//! media threads. Here the real mod_skel counts them (its `skel` command shows "frames N")
//! for a SIPp call to music on hold (9664: terminated, audio every 20 ms); the frames stop
//! with `tap stop`, and with the call's end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use switchyard_e2e::daemon::copy_tree;
use switchyard_e2e::{Daemon, Slot, e2e_dir, sipp_caller, wait_until, workspace_dir};

const T: Duration = Duration::from_secs(15);

/// tests/conf/modules: mod_skel, and the C module its dialplan names (built here with the
/// system C compiler, as tests/tests/modules.rs does).
fn start_daemon(dir: &Path) -> (Daemon, tempfile::TempDir) {
    let c_module = dir.join("libc_hello.so");
    let output = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()))
        .args(["-std=c11", "-fPIC", "-shared", "-o"])
        .arg(&c_module)
        .arg(workspace_dir().join("core/loader/tests/c_module/hello.c"))
        .output()
        .expect("run the C compiler");
    assert!(
        output.status.success(),
        "compiling hello.c: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let conf = tempfile::Builder::new()
        .prefix("sy-tap-template-")
        .tempdir()
        .expect("tempdir");
    let c_path = c_module.to_str().expect("UTF-8 path").to_owned();
    copy_tree(&e2e_dir().join("conf").join("modules"), conf.path(), &|t| {
        t.replace("__C_MODULE__", &c_path)
    });
    let template = conf.path().to_str().expect("UTF-8 temp path").to_owned();
    (
        Daemon::builder(&template).start_with_slot(Slot::acquire()),
        conf,
    )
}

/// The frames mod_skel has counted, from its `skel` command ("...; frames N; ...").
fn skel_frames(d: &Daemon) -> u64 {
    let text = d.ctl_ok("skel");
    text.split("; frames ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {text:?}"))
}

/// The count once it has not moved for 300 ms: a frame in flight when the tap ended may
/// still land, none after.
fn settled_frames(d: &Daemon) -> u64 {
    let deadline = Instant::now() + T;
    let mut last = skel_frames(d);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = skel_frames(d);
        if now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "frames keep coming: {now}");
        last = now;
    }
}

#[test]
fn mod_skel_counts_a_tapped_calls_frames_until_stopped_or_hung_up() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _conf) = start_daemon(dir.path());
    assert_eq!(skel_frames(&d), 0);
    let mut uac = sipp_caller(
        &d,
        "uac",
        &[],
        "1000",
        "9664",
        &["-m", "1", "-d", "6000", "-timeout", "60"],
    );
    wait_until(
        T,
        "the call to 9664 up",
        || (d.call_count() == 1).then_some(()),
        || d.log_tail(),
    );
    let uuid = d
        .ctl_ok("show calls")
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("the call's uuid")
        .to_owned();

    let unknown = d
        .ctl(&format!("tap start {uuid} mod_nope"))
        .expect_err("no such module");
    assert!(unknown.contains("not loaded"), "{unknown}");
    assert!(d.ctl("tap start no-such-call mod_skel").is_err());
    let started = d.ctl_ok(&format!("tap start {uuid} mod_skel"));
    assert!(started.contains("tapping"), "{started}");
    let again = d
        .ctl(&format!("tap start {uuid} mod_skel"))
        .expect_err("one tap per call");
    assert!(again.contains("already tapped"), "{again}");
    wait_until(
        T,
        "mod_skel counts half a second of frames",
        || (skel_frames(&d) >= 25).then_some(()),
        || d.log_tail(),
    );

    let stopped = d.ctl_ok(&format!("tap stop {uuid} mod_skel"));
    assert!(stopped.contains("stopped"), "{stopped}");
    let after_stop = settled_frames(&d);
    assert!(after_stop >= 25);
    assert!(d.ctl(&format!("tap stop {uuid} mod_skel")).is_err());

    // Tapped again, then the caller hangs up: the call's end ends the tap.
    d.ctl_ok(&format!("tap start {uuid} mod_skel"));
    wait_until(
        T,
        "frames again",
        || (skel_frames(&d) > after_stop).then_some(()),
        || d.log_tail(),
    );
    uac.wait(Duration::from_secs(60))
        .assert_ok(1, &d.log_tail());
    wait_until(
        T,
        "no call left",
        || (d.call_count() == 0).then_some(()),
        || d.log_tail(),
    );
    let at_end = settled_frames(&d);
    eprintln!("mod_skel: {after_stop} frames in the first tap, {at_end} in all");
    // About 6 s of call, less the time untapped; the count stays put once the call is over.
    assert!(at_end > after_stop + 25, "{at_end}");
    assert_eq!(skel_frames(&d), at_end);
    assert!(d.ctl(&format!("tap stop {uuid} mod_skel")).is_err());
}
