//! `[dialplan]`, `[dialplan.globals]` and the dialplan keys of directory users.

mod common;

use std::path::{Path, PathBuf};

use common::{conf, err_of};
use switchyard_config::{DialplanConfig, load};

fn repo_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn defaults() {
    let dir = conf(&[("switchyard.toml", "")]);
    let c = load(dir.path()).unwrap();
    let d = &c.dialplan;
    assert_eq!(d.dir, PathBuf::from("dialplan"));
    assert_eq!(d.holidays, None);
    assert_eq!(d.timezone, "system");
    assert_eq!(d.default_context, "default");
    assert_eq!(d.public_context, "public");
    assert!(d.globals.is_empty());
    assert_eq!(d.dir_path(dir.path()), dir.path().join("dialplan"));
    assert_eq!(d.holidays_path(dir.path()), None);
}

#[test]
fn shipped_conf_documents_the_defaults_and_its_plan_exists() {
    let shipped = load(&repo_dir("conf")).unwrap();
    assert_eq!(
        DialplanConfig {
            globals: Default::default(),
            ..shipped.dialplan.clone()
        },
        DialplanConfig::default()
    );
    assert!(
        shipped
            .dialplan
            .dir_path(&shipped.conf_dir)
            .join("default.xml")
            .is_file()
    );
    // The shipped globals are the ones the shipped plan reads.
    assert_eq!(shipped.dialplan.globals["default_language"], "en");
}

#[test]
fn every_key_and_the_globals() {
    let dir = conf(&[(
        "switchyard.toml",
        r#"
[recording]
dir = "rec"

[dialplan]
dir = "plan"
holidays = "holidays.toml"
timezone = "Asia/Shanghai"
default_context = "office"
public_context = "from-trunk"

[dialplan.globals]
default_language = "zh"
outbound_caller_id = "+861088886666"
"#,
    )]);
    let c = load(dir.path()).unwrap();
    let d = &c.dialplan;
    assert_eq!(d.dir_path(dir.path()), dir.path().join("plan"));
    assert_eq!(
        d.holidays_path(dir.path()),
        Some(dir.path().join("holidays.toml"))
    );
    assert_eq!(d.timezone, "Asia/Shanghai");
    assert_eq!(
        (d.default_context.as_str(), d.public_context.as_str()),
        ("office", "from-trunk")
    );
    let globals: Vec<(&str, &str)> = d
        .globals
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        globals,
        [
            ("default_language", "zh"),
            ("outbound_caller_id", "+861088886666")
        ]
    );
    for zone in [
        "system",
        "UTC",
        "+08:00",
        "-05:30",
        "+0545",
        "EST5EDT,M3.2.0,M11.1.0",
    ] {
        let text = format!("[dialplan]\ntimezone = {zone:?}\n");
        let dir = conf(&[("switchyard.toml", &text)]);
        assert_eq!(load(dir.path()).unwrap().dialplan.timezone, zone);
    }
}

#[test]
fn bad_dialplan_values_name_file_and_line() {
    for (text, expected) in [
        (
            "[recording]\ndir = \"r\"\n[dialplan]\ndir = \"\"\n",
            ":4: [dialplan] dir must not be empty",
        ),
        (
            "[dialplan]\n\ntimezone = \"+15:00\"\n",
            ":3: [dialplan] timezone \"+15:00\": offset beyond ±14:00",
        ),
        (
            "[dialplan]\ntimezone = \"+8\"\n",
            ":2: [dialplan] timezone \"+8\": not an offset",
        ),
        (
            "[dialplan]\ntimezone = \"Asia Shanghai\"\n",
            ":2: [dialplan] timezone \"Asia Shanghai\": not a zone name",
        ),
        (
            "[dialplan]\ndefault_context = \"my context\"\n",
            ":2: [dialplan] default_context \"my context\": use letters",
        ),
        (
            "[dialplan]\npublic_context = \"\"\n",
            ":2: [dialplan] public_context \"\": use letters",
        ),
        (
            "[dialplan]\nholidays = \"dialplan/holidays.toml\"\n",
            ":2: [dialplan] holidays \"dialplan/holidays.toml\": give a file outside the plan directory",
        ),
        (
            "[dialplan]\ndir = \"./plan\"\nholidays = \"plan/./h.toml\"\n",
            ":3: [dialplan] holidays \"plan/./h.toml\": give a file outside the plan directory",
        ),
        (
            "[dialplan.globals]\nok = \"1\"\n\"bad-name\" = \"x\"\n",
            "[dialplan.globals] \"bad-name\": a variable name is letters, digits and _",
        ),
        (
            "[dialplan.globals]\nx = \"a\\nb\"\n",
            ":2: [dialplan.globals] x: a value is one line",
        ),
        ("[dialplan]\nglobals = { n = 5 }\n", "switchyard.toml:2:"),
        (
            "[dialplan]\ncontext = \"x\"\n",
            "switchyard.toml:2:1: unknown field `context`",
        ),
    ] {
        let err = err_of(&[("switchyard.toml", text)]);
        assert!(err.contains(expected), "{text:?}: {err}");
        assert!(err.contains("switchyard.toml"), "{err}");
    }
}

#[test]
fn users_have_a_context_and_an_outbound_caller_id() {
    let dir = conf(&[
        (
            "switchyard.toml",
            "[dialplan]\ndefault_context = \"office\"\n",
        ),
        ("directory/1000.toml", "password = \"p\"\n"),
        (
            "directory/1001.toml",
            "password = \"p\"\ncontext = \"sales\"\ncaller_id_number = \"+861088886666\"\ncaller_id_name = \"Sales desk\"\n",
        ),
    ]);
    let c = load(dir.path()).unwrap();
    let plain = c.directory.get("1000").unwrap();
    assert_eq!(plain.context, "office");
    assert_eq!(
        (
            plain.caller_id_number.as_deref(),
            plain.caller_id_name.as_deref()
        ),
        (None, None)
    );
    let sales = c.directory.get("1001").unwrap();
    assert_eq!(sales.context, "sales");
    assert_eq!(sales.caller_id_number.as_deref(), Some("+861088886666"));
    assert_eq!(sales.caller_id_name.as_deref(), Some("Sales desk"));
    // Without [dialplan], a user's context is "default".
    let dir = conf(&[
        ("switchyard.toml", ""),
        ("directory/1000.toml", "password = \"p\"\n"),
    ]);
    assert_eq!(
        load(dir.path())
            .unwrap()
            .directory
            .get("1000")
            .unwrap()
            .context,
        "default"
    );
}

#[test]
fn bad_user_dialplan_keys_name_file_and_line() {
    for (user, expected) in [
        (
            "password = \"p\"\ncontext = \"a b\"\n",
            "1000.toml:2: user 1000: context \"a b\"",
        ),
        (
            "password = \"p\"\n\ncaller_id_number = \"555-1234\"\n",
            "1000.toml:3: user 1000: caller_id_number \"555-1234\": use digits",
        ),
        (
            "password = \"p\"\ncaller_id_number = \"+\"\n",
            "1000.toml:2: user 1000: caller_id_number \"+\"",
        ),
        (
            "password = \"p\"\ncaller_id_name = \"say \\\"hi\\\"\"\n",
            "1000.toml:2: user 1000: caller_id_name",
        ),
        (
            "password = \"p\"\ncaller_id_number = 5551234\n",
            "1000.toml:2:20: invalid type: integer",
        ),
    ] {
        let err = err_of(&[("switchyard.toml", ""), ("directory/1000.toml", user)]);
        assert!(err.contains(expected), "{user:?}: {err}");
    }
}
