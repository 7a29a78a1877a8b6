//! `dialplan check` on tests/fixtures/broken: every planted mistake is reported at the
//! file, line and column where it was written.

use std::path::Path;

use switchyard_dialplan::check::{CheckEnv, check, check_dir};
use switchyard_dialplan::ir::Severity;
use switchyard_dialplan::xml;

#[test]
fn every_planted_error_is_reported_at_its_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let got: Vec<String> = check_dir(&dir, &CheckEnv::core())
        .iter()
        .map(|d| {
            let file = Path::new(&*d.location.file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!(
                "{file}:{}:{} {level}: {}",
                d.location.line, d.location.column, d.message
            )
        })
        .collect();
    let expected = [
        "10_routes.xml:8:9 error: unknown application \"playbak\"",
        "10_routes.xml:13:7 warning: condition tests variable \"destinaton_number\", which nothing sets",
        "10_routes.xml:20:9 warning: bridge data expands ${dommain}, which nothing sets",
        "10_routes.xml:26:9 error: transfer to context \"operators\", which is not in the plan",
        "10_routes.xml:36:5 warning: extension \"too-late\" is unreachable: \"catch-all\" before it always matches",
        "20_loader.xml:6:45 error: bad regex",
        "20_loader.xml:12:18 error: bad time spec: wday=\"mon-fry\", byte 4: \"fry\" is not a day of the week",
        "20_loader.xml:18:18 error: bad time spec: holiday=\"sometimes\": not yes or no",
        "30_malformed.xml:4:3 error: malformed XML",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, expected) in got.iter().zip(expected) {
        assert!(
            got.starts_with(expected),
            "got {got:?}\nexpected {expected:?}"
        );
    }
}

#[test]
fn hints_name_the_fix() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let diagnostics = check_dir(&dir, &CheckEnv::core());
    let hint = |prefix: &str| {
        diagnostics
            .iter()
            .find(|d| d.message.starts_with(prefix))
            .and_then(|d| d.hint.clone())
            .unwrap_or_else(|| panic!("no hint for {prefix}"))
    };
    assert_eq!(hint("unknown application"), "did you mean \"playback\"?");
    assert!(hint("condition tests").starts_with("did you mean \"destination_number\"?"));
    assert!(hint("extension \"too-late\"").contains("10_routes.xml:30:5"));
    assert!(hint("transfer to context").contains("default, public"));
}

#[test]
fn the_routing_fixture_is_clean_with_its_globals() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan.xml");
    let plan = xml::load_str("plan.xml", &std::fs::read_to_string(path).unwrap())
        .unwrap()
        .plan;
    let globals = ["record_calls", "vm_enabled", "domain", "language"];
    // The fixture leaves messages with `voicemail` and records with `record_session`, which
    // modules register beside the core applications (mod_recorder provides the latter).
    let mut applications = switchyard_dialplan::check::CORE_APPLICATIONS.to_vec();
    applications.extend(["voicemail", "record_session"]);
    let env = CheckEnv {
        globals: &globals,
        applications: &applications,
        ..CheckEnv::core()
    };
    let found: Vec<String> = check(&plan, &env).iter().map(ToString::to_string).collect();
    assert!(found.is_empty(), "{found:#?}");
    // Without the globals, each is reported where it is first read.
    let found = check(
        &plan,
        &CheckEnv {
            applications: &applications,
            ..CheckEnv::core()
        },
    );
    assert!(found.iter().all(|d| d.severity == Severity::Warning));
    assert!(found.iter().any(|d| d.message.contains("\"vm_enabled\"")));
    // Without the modules, each use of their applications is an error.
    let found = check(
        &plan,
        &CheckEnv {
            globals: &globals,
            ..CheckEnv::core()
        },
    );
    assert_eq!(found.len(), 4, "{found:#?}");
    let unknown = |app: &str| {
        found
            .iter()
            .filter(|d| d.message == format!("unknown application \"{app}\""))
            .count()
    };
    assert_eq!(unknown("voicemail"), 3, "{found:#?}");
    assert_eq!(unknown("record_session"), 1, "{found:#?}");
}

#[test]
fn check_dir_reads_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10_default.xml"),
        "<include><context name=\"default\">\n<extension name=\"a\"><condition field=\"destination_number\" expression=\"^1$\">\n<action application=\"playbak\" data=\"x\"/></condition></extension>\n</context></include>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("20_default.toml"),
        "[[context]]\nname = \"default\"\n[[context.extension]]\nname = \"b\"\npattern = \"2\"\nactions = [\"transfer 1 XML publc\", \"bridge sip:1000@x\"]\n",
    )
    .unwrap();
    let got: Vec<String> = check_dir(dir.path(), &CheckEnv::core())
        .iter()
        .map(|d| {
            let file = Path::new(&*d.location.file)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            format!("{file}:{} {}", d.location.line, d.message)
        })
        .collect();
    assert_eq!(
        got,
        [
            "10_default.xml:3 unknown application \"playbak\"",
            "20_default.toml:6 transfer to context \"publc\", which is not in the plan",
            "20_default.toml:6 bridge target \"sip:1000@x\" is not sip:USER@IP[:PORT] (an IPv4 or [IPv6] literal)",
        ]
    );
}
