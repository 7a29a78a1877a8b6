//! Dynamic modules in the running daemon: mod_skel used, unloaded (refused while calls hold
//! it), reloaded and loaded again under a SIPp load of 50 concurrent calls; a module written
//! in C, from the dialplan and the console; a module built for another ABI refused with a
//! clear message; a module that panics disabled while the daemon and its calls go on.
//!
//! The conf template `tests/conf/modules` lists mod_skel (found beside the switchyard binary,
//! where the workspace build puts libmod_skel.so) and the C module, whose path
//! (`__C_MODULE__`) each test fills in after compiling core/loader/tests/c_module/hello.c.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use switchyard_e2e::daemon::{copy_tree, read_cdrs, switchyard_bin};
use switchyard_e2e::{
    Daemon, Slot, call_expecting, e2e_dir, sipp_callee, sipp_caller, wait_until, workspace_dir,
};

const T: Duration = Duration::from_secs(25);

/// Compiles a C module of core/loader/tests/c_module into `dir` as `lib<name>.so`, with the
/// system C compiler and only switchyard_module.h: what a vendor does.
fn build_c_module(source: &str, dir: &Path, name: &str, defines: &[&str]) -> PathBuf {
    let out = dir.join(format!("lib{name}.so"));
    let src = workspace_dir()
        .join("core/loader/tests/c_module")
        .join(source);
    let mut cc = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cc.args([
        "-std=c11", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-o",
    ])
    .arg(&out)
    .arg(&src);
    for define in defines {
        cc.arg(format!("-D{define}"));
    }
    let output = cc.output().expect("run the C compiler");
    assert!(
        output.status.success(),
        "compiling {source}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// A daemon from tests/conf/modules with the C module at `c_module`; `edit` may change the
/// conf further.
fn start_daemon(
    slot: Slot,
    c_module: &Path,
    edit: &dyn Fn(&str) -> String,
) -> (Daemon, tempfile::TempDir) {
    let conf = tempfile::Builder::new()
        .prefix("sy-modules-template-")
        .tempdir()
        .expect("tempdir");
    let c_path = c_module.to_str().expect("UTF-8 path").to_owned();
    copy_tree(&e2e_dir().join("conf").join("modules"), conf.path(), &|t| {
        edit(&t.replace("__C_MODULE__", &c_path))
    });
    let template = conf.path().to_str().expect("UTF-8 temp path").to_owned();
    (Daemon::builder(&template).start_with_slot(slot), conf)
}

#[test]
fn skel_is_used_unloaded_reloaded_and_loaded_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let c = build_c_module("hello.c", dir.path(), "c_hello", &[]);
    let (d, _conf) = start_daemon(Slot::acquire(), &c, &|t| t.to_owned());
    let modules = d.ctl_ok("show modules");
    assert!(
        modules.contains("mod_skel 0.1.0 abi 1.0 running"),
        "{modules}"
    );
    assert!(modules.contains("Application skel_say"), "{modules}");

    let mut uas = sipp_callee(&d, "uas_echo", "1001", &["-m", "100"]);
    d.wait_registered("1001", 1, T);
    let mut uac = sipp_caller(
        &d,
        "uac",
        &[],
        "1000",
        "5811",
        switchyard_e2e::LOAD_50_CONCURRENT,
    );
    wait_until(
        T,
        "40 calls up",
        || (d.call_count() >= 40).then_some(()),
        || d.log_tail(),
    );
    // The daemon's log is read by a thread of the harness: wait for the lines, they may
    // trail the console's call count.
    let said = || d.log_lines_with(&["dialplan log", "skel_say"]).len();
    wait_until(
        T,
        "the module's application ran in each call",
        || (said() >= 40).then_some(()),
        || d.log_tail(),
    );

    // Calls hold the module: unload is refused with the count.
    let refused = d.ctl("unload mod_skel").expect_err("in use");
    assert!(refused.contains("in use by"), "{refused}");
    // Reload: new calls get the new instance; running ones finish on theirs.
    let reloaded = d.ctl_ok("reload mod_skel");
    assert!(reloaded.contains("mod_skel reloaded"), "{reloaded}");
    let seen = said();
    wait_until(
        T,
        "5 more calls through the reloaded module",
        || (said() >= seen + 5).then_some(()),
        || d.log_tail(),
    );
    let caller = uac.wait(Duration::from_secs(90));
    assert_eq!(caller.failed, 0, "{}", caller.report);
    assert_eq!(caller.successful, 100, "{}", caller.report);
    uas.wait(Duration::from_secs(30));
    wait_until(
        T,
        "no call left",
        || (d.call_count() == 0).then_some(()),
        || d.log_tail(),
    );

    // Nothing holds it now: unload, and its application is gone from the registry.
    assert!(d.ctl_ok("unload mod_skel").contains("unloaded"));
    assert!(!d.ctl_ok("show modules").contains("mod_skel"));
    assert!(d.ctl("skel").is_err(), "its command went with it");
    assert!(d.ctl_ok("load mod_skel").contains("loaded"));
    let text = d.ctl_ok("skel");
    assert!(
        text.contains("hello from the test conf"),
        "its config is back: {text}"
    );
    // reload takes modules.toml as it is now.
    let file = d.conf_dir().join("modules.toml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("hello from the test conf", "edited greeting");
    std::fs::write(&file, edited).unwrap();
    d.ctl_ok("reload mod_skel");
    let text = d.ctl_ok("skel");
    assert!(text.contains("edited greeting"), "the new config: {text}");
    let cdrs = read_cdrs(&d.db_path()).expect("cdrs");
    assert_eq!(cdrs.len(), 100);
    assert!(
        cdrs.iter().all(|c| c.hangup_cause == "NORMAL_CLEARING"),
        "{cdrs:?}"
    );
}

#[test]
fn the_c_module_works_from_the_dialplan_and_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let c = build_c_module("hello.c", dir.path(), "c_hello", &[]);
    let (d, _conf) = start_daemon(Slot::acquire(), &c, &|t| t.to_owned());
    assert_eq!(d.ctl_ok("c_hello").trim(), "hello from C");
    let help = d.ctl_ok("help");
    assert!(
        help.contains("c_hello (c_hello): c_hello: replies hello from C"),
        "{help}"
    );
    let outcome = call_expecting(
        &d,
        switchyard_e2e::slot::offset::SIPP_UAC,
        "1000",
        "5820",
        &[403],
    );
    assert_eq!(outcome.code, Some(0), "{}", outcome.report);
    let cdrs = d.wait_cdrs(1, T);
    assert_eq!(cdrs[0].hangup_cause, "CALL_REJECTED");
    assert!(
        !d.log_lines_with(&["dialplan log", "hello from C"])
            .is_empty(),
        "{}",
        d.log_tail()
    );
}

#[test]
fn a_module_built_for_another_abi_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let c = build_c_module("hello.c", dir.path(), "c_hello", &[]);
    let marker = dir.path().join("marker");
    let old = build_c_module(
        "refused.c",
        dir.path(),
        "mod_old",
        &[
            "SY_ABI_MAJOR_OVERRIDE=2",
            "MODULE_NAME=\"mod_old\"",
            &format!("MARKER_PATH=\"{}\"", marker.display()),
        ],
    );
    let old_path = old.to_str().unwrap().to_owned();
    let optional =
        format!("\n[[module]]\nname = \"mod_old\"\nrequired = false\npath = \"{old_path}\"\n");
    // Optional: the daemon starts, says why, and the console's load says it again.
    let (d, _conf) = start_daemon(Slot::acquire(), &c, &|t| {
        if t.contains("[[module]]") {
            format!("{t}{optional}")
        } else {
            t.to_owned()
        }
    });
    let expected = "module mod_old was built for ABI 2.x, this switchyard speaks 1.0";
    assert!(d.log().contains(expected), "{}", d.log_tail());
    let refused = d.ctl("load mod_old").expect_err("refused");
    assert!(refused.contains(expected), "{refused}");
    assert!(!marker.exists(), "none of its code ran");
    assert!(
        d.ctl_ok("show modules").contains("mod_skel"),
        "the others are loaded"
    );

    // Required: the daemon refuses to start, naming it (on ports of a slot of its own).
    let slot = Slot::acquire();
    let listen = format!("127.0.0.1:{}", slot.port(60));
    let conf = tempfile::tempdir().unwrap();
    copy_tree(&e2e_dir().join("conf").join("modules"), conf.path(), &|t| {
        let t = t.replace("__C_MODULE__", c.to_str().unwrap());
        let t = t.replace("127.0.0.1:5060", &listen);
        if t.contains("[[module]]") {
            format!("{t}\n[[module]]\nname = \"mod_old\"\npath = \"{old_path}\"\n")
        } else {
            t
        }
    });
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(switchyard_bin())
        .args(["run", "--conf"])
        .arg(conf.path())
        .arg("--data")
        .arg(data.path())
        .output()
        .expect("run switchyard");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!marker.exists());
}

/// mod_panic (core/loader/tests/modules/mod_panic): its application panics. Built like the
/// loader tests build it, into the same target directory.
fn mod_panic() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>")
        .to_owned();
    let target = profile
        .parent()
        .expect("<target>")
        .join("loader-fixtures")
        .join("plain");
    let manifest = workspace_dir().join("core/loader/tests/modules/mod_panic/Cargo.toml");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace_dir())
        .args(["build", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target);
    if profile.file_name().is_some_and(|n| n == "release") {
        cargo.arg("--release");
    }
    let output = cargo.output().expect("run cargo");
    assert!(
        output.status.success(),
        "building mod_panic: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    target
        .join(profile.file_name().expect("profile"))
        .join("libmod_panic.so")
}

#[test]
fn a_panicking_module_is_disabled_and_the_daemon_and_its_calls_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let c = build_c_module("hello.c", dir.path(), "c_hello", &[]);
    let panicky = mod_panic();
    let entry = format!(
        "\n[[module]]\nname = \"mod_panic\"\npath = \"{}\"\n",
        panicky.display()
    );
    let extension = "<extension name=\"panics\">\
        <condition field=\"destination_number\" expression=\"^5830$\">\
        <action application=\"panic_now\"/>\
        <action application=\"hangup\" data=\"CALL_REJECTED\"/>\
        </condition></extension>\n  </context>";
    let (d, _conf) = start_daemon(Slot::acquire(), &c, &|t| {
        if t.contains("[[module]]") {
            format!("{t}{entry}")
        } else if t.contains("skel-then-bridge") {
            // The panicking module's extension joins the module test plan.
            t.replace("  </context>", extension)
        } else {
            t.to_owned()
        }
    });
    // The call that makes the module panic: the application is skipped, the plan goes on
    // to its hangup (403), and the module is disabled.
    let first = call_expecting(
        &d,
        switchyard_e2e::slot::offset::SIPP_UAC,
        "1000",
        "5830",
        &[403],
    );
    assert_eq!(first.code, Some(0), "{}", first.report);
    assert!(
        d.log().contains("mod_panic panics in app.run"),
        "{}",
        d.log_tail()
    );
    let modules = d.ctl_ok("show modules");
    assert!(
        modules.contains("mod_panic 0.0.1 abi 1.0 DISABLED"),
        "{modules}"
    );
    // The daemon and the other modules carry on: another call, the C module's command.
    let second = call_expecting(
        &d,
        switchyard_e2e::slot::offset::SIPP_UAC,
        "1000",
        "5830",
        &[403],
    );
    assert_eq!(second.code, Some(0), "{}", second.report);
    assert_eq!(d.ctl_ok("c_hello").trim(), "hello from C");
    assert_eq!(d.wait_cdrs(2, T).len(), 2);
}
