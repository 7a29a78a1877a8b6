//! `switchyard dialplan check` and `switchyard dialplan test` as an engineer runs them, on the
//! dialplan crate's fixtures and the shipped plans.

use std::process::{Command, Output};

use switchyard_e2e::daemon::switchyard_bin;
use switchyard_e2e::workspace_dir;

fn run(args: &[&str]) -> Output {
    Command::new(switchyard_bin())
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .expect("run switchyard")
}

#[test]
fn check_reports_each_planted_error_at_its_line_and_fails() {
    let out = run(&["dialplan", "check", "dialplan/tests/fixtures/broken"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "errors make it fail:\n{text}");
    for needle in [
        "broken/20_loader.xml:12:18: error: bad time spec: wday=\"mon-fry\"",
        "broken/20_loader.xml:18:18: error: bad time spec: holiday=\"sometimes\"",
        "broken/30_malformed.xml:4:3: error: malformed XML",
        "6 errors, 3 warnings",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    for shipped in ["conf/dialplan", "conf/dialplan-toml"] {
        let clean = run(&["dialplan", "check", shipped]);
        let text = String::from_utf8_lossy(&clean.stdout);
        assert!(clean.status.success(), "{shipped}:\n{text}");
        assert!(text.contains("0 errors, 0 warnings"), "{shipped}:\n{text}");
    }
}

#[test]
fn test_prints_the_matching_extension_and_its_actions_with_no_call() {
    // The fixtures hold the same plan in both forms: each form gets a directory of its own.
    let xml_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        workspace_dir().join("dialplan/tests/fixtures/plan.xml"),
        xml_dir.path().join("plan.xml"),
    )
    .unwrap();
    let out = run(&[
        "dialplan",
        "test",
        "9196",
        "--dir",
        xml_dir.path().to_str().unwrap(),
        "--from",
        "1000",
        "--at",
        "2026-11-24 10:00",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("time: 2026-11-24 10:00:00 (Tue)"), "{text}");
    assert!(
        text.contains("plan.xml:37:5): matched") && text.contains("echo ("),
        "{text}"
    );
    assert!(
        text.contains("plan.xml:39:9)\n  2. echo") && text.contains("1. answer ("),
        "{text}"
    );
    // The same call through the TOML form of the plan (a directory holding only plan.toml).
    let toml_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        workspace_dir().join("dialplan/tests/fixtures/plan.toml"),
        toml_dir.path().join("plan.toml"),
    )
    .unwrap();
    let dir = toml_dir.path().to_str().unwrap();
    let toml = run(&[
        "dialplan",
        "test",
        "9196",
        "--dir",
        dir,
        "--from",
        "1000",
        "--at",
        "2026-11-24 10:00",
    ]);
    let toml_text = String::from_utf8_lossy(&toml.stdout);
    assert!(toml.status.success(), "{toml:?}");
    assert!(
        toml_text.contains("echo (") && toml_text.contains("): matched"),
        "{toml_text}"
    );
    assert!(
        toml_text.contains("1. answer (") && toml_text.contains("  2. echo"),
        "{toml_text}"
    );
    let bad = run(&[
        "dialplan",
        "test",
        "1",
        "--dir",
        xml_dir.path().to_str().unwrap(),
        "--at",
        "tomorrow",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD HH:MM"));
}
