//! The plans that ship: conf/dialplan (XML) and conf/dialplan-toml (the same plan in TOML),
//! and tests/conf/basic/dialplan (the e2e tests' plan). Each call of the table is hunted in
//! both shipped forms, which must agree action for action, and against the actions expected.

use std::path::{Path, PathBuf};

use switchyard_dialplan::LoadedPlan;
use switchyard_dialplan::check::{CheckEnv, check_dir};
use switchyard_dialplan::ir::Severity;
use switchyard_dialplan::matcher::Hunt;
use switchyard_dialplan::vars::Variables;
use switchyard_dialplan::zone::LocalZone;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The [dialplan.globals] of the shipped switchyard.toml, as every call starts with them.
fn shipped_globals() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("conf/switchyard.toml")).unwrap();
    let conf: toml::Table = toml::from_str(&text).unwrap();
    conf["dialplan"]["globals"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn load(rel: &str) -> LoadedPlan {
    let plan = LoadedPlan::load(&repo(rel), None, LocalZone::parse("+08:00").unwrap())
        .unwrap_or_else(|e| panic!("{rel}: {e:#?}"));
    assert!(plan.warnings.is_empty(), "{rel}: {:#?}", plan.warnings);
    plan
}

struct Call {
    context: &'static str,
    destination: &'static str,
    caller: &'static str,
    /// Extra channel variables (the engine's, or those an earlier action left).
    vars: &'static [(&'static str, &'static str)],
    /// Unix seconds.
    at: i64,
    /// "application data", in run order.
    actions: &'static [&'static str],
}

/// 2026-11-24 10:30 in UTC+8, a Tuesday.
const TUESDAY: i64 = 1_795_487_400;
/// 2027-02-06 23:59 in UTC+8, a Saturday in the Spring Festival.
const NIGHT: i64 = 1_801_929_540;

const CALLS: &[Call] = &[
    Call {
        context: "default",
        destination: "1001",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &[
            "set call_timeout=30",
            "set continue_on_fail=true",
            "set hangup_after_bridge=true",
            "bridge user/1001",
            "transfer failed- XML default",
        ],
    },
    Call {
        context: "default",
        destination: "failed-USER_BUSY",
        caller: "1000",
        vars: &[("originate_disposition", "USER_BUSY")],
        at: TUESDAY,
        actions: &[
            "pre_answer",
            "playback tone_stream://busy;loops=4",
            "hangup USER_BUSY",
        ],
    },
    Call {
        context: "default",
        destination: "failed-NO_ANSWER",
        caller: "1000",
        vars: &[],
        at: NIGHT,
        actions: &["pre_answer", "playback no-answer", "hangup NO_ANSWER"],
    },
    Call {
        context: "default",
        destination: "failed-USER_NOT_REGISTERED",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &[
            "pre_answer",
            "playback not-available",
            "hangup USER_NOT_REGISTERED",
        ],
    },
    Call {
        context: "default",
        destination: "9196",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &["answer", "echo"],
    },
    Call {
        context: "default",
        destination: "9197",
        caller: "1002",
        vars: &[],
        at: NIGHT,
        actions: &[
            "answer",
            "playback welcome!please-hold",
            "hangup NORMAL_CLEARING",
        ],
    },
    Call {
        context: "default",
        destination: "9198",
        caller: "1002",
        vars: &[],
        at: TUESDAY,
        actions: &[
            "set language=zh",
            "answer",
            "playback welcome!please-hold",
            "hangup NORMAL_CLEARING",
        ],
    },
    Call {
        context: "default",
        destination: "9199",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &["answer", "tone ringback"],
    },
    Call {
        context: "default",
        destination: "9664",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &["answer", "moh"],
    },
    Call {
        context: "default",
        destination: "3000",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &["answer", "conference 3000"],
    },
    Call {
        context: "default",
        destination: "5000",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &[
            "answer",
            "sleep 500",
            "playback welcome",
            "play_and_get_digits 1 1 3 5000 # enter-digits invalid-option ivr_digit ^[1-3]$",
            "transfer ivr-none XML default",
        ],
    },
    Call {
        context: "default",
        destination: "ivr-2",
        caller: "1000",
        vars: &[("ivr_digit", "2")],
        at: TUESDAY,
        actions: &["transfer 9198 XML default"],
    },
    Call {
        context: "default",
        destination: "ivr-none",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &["playback goodbye", "hangup NORMAL_CLEARING"],
    },
    Call {
        context: "default",
        destination: "902075550123",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &[
            "set effective_caller_id_number=0000000000",
            "set call_timeout=60",
            "set hangup_after_bridge=true",
            "bridge sofia/gateway/provider1/02075550123|sofia/gateway/provider2/02075550123",
        ],
    },
    Call {
        context: "default",
        destination: "913800138000",
        caller: "1001",
        vars: &[("effective_caller_id_number", "+861088886601")],
        at: NIGHT,
        actions: &[
            "set call_timeout=60",
            "set hangup_after_bridge=true",
            "bridge sofia/gateway/provider1/13800138000|sofia/gateway/provider2/13800138000",
        ],
    },
    Call {
        context: "default",
        destination: "1200",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        actions: &[],
    },
    Call {
        context: "default",
        destination: "7002",
        caller: "1001",
        vars: &[],
        at: TUESDAY,
        actions: &[
            "set language=zh",
            "callcenter support_zh",
            "playback all-agents-busy!goodbye",
            "hangup NORMAL_CLEARING",
        ],
    },
    Call {
        context: "default",
        destination: "*2401",
        caller: "1002",
        vars: &[],
        at: TUESDAY,
        actions: &["agent_break 01", "hangup"],
    },
    Call {
        context: "default",
        destination: "*22",
        caller: "1002",
        vars: &[],
        at: TUESDAY,
        actions: &["agent_login", "hangup"],
    },
    Call {
        context: "public",
        destination: "+861088886666",
        caller: "13800138000",
        vars: &[],
        at: TUESDAY,
        actions: &["transfer 5000 XML default"],
    },
    Call {
        context: "public",
        destination: "1088886601",
        caller: "13800138000",
        vars: &[],
        at: NIGHT,
        actions: &["transfer 1001 XML default"],
    },
    // The outside world cannot dial out, nor reach an extension by its number.
    Call {
        context: "public",
        destination: "902075550123",
        caller: "13800138000",
        vars: &[],
        at: TUESDAY,
        actions: &[],
    },
    Call {
        context: "public",
        destination: "1001",
        caller: "13800138000",
        vars: &[],
        at: TUESDAY,
        actions: &[],
    },
];

fn hunt(plan: &LoadedPlan, call: &Call, globals: &[(String, String)]) -> Hunt {
    let mut vars: Variables = globals.iter().cloned().collect();
    vars.set("destination_number", call.destination);
    vars.set("caller_id_number", call.caller);
    vars.set("context", call.context);
    for (name, value) in call.vars {
        vars.set(*name, *value);
    }
    plan.hunt(call.context, &vars, call.at).unwrap()
}

fn lines(hunt: &Hunt) -> Vec<String> {
    hunt.actions
        .iter()
        .map(|a| {
            format!("{} {}", a.application, a.data)
                .trim_end()
                .to_owned()
        })
        .collect()
}

#[test]
fn both_shipped_forms_route_every_call_alike() {
    let xml = load("conf/dialplan");
    let toml = load("conf/dialplan-toml");
    let globals = shipped_globals();
    for call in CALLS {
        let from_xml = hunt(&xml, call, &globals);
        let from_toml = hunt(&toml, call, &globals);
        let what = format!("{} {} from {}", call.context, call.destination, call.caller);
        assert_eq!(lines(&from_xml), call.actions, "{what}");
        assert_eq!(lines(&from_toml), lines(&from_xml), "{what}");
        let names = |h: &Hunt| {
            h.extensions
                .iter()
                .map(|e| e.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&from_toml), names(&from_xml), "{what}");
        assert_eq!(from_toml.variables, from_xml.variables, "{what}");
        // Every call of the default context starts with the global prompt language.
        if call.context == "default" {
            assert_eq!(from_xml.variables.get("language"), Some("en"), "{what}");
        }
    }
}

#[test]
fn an_existing_language_is_kept() {
    let plan = load("conf/dialplan");
    let call = Call {
        context: "default",
        destination: "9196",
        caller: "1000",
        vars: &[("language", "zh")],
        at: TUESDAY,
        actions: &[],
    };
    let found = hunt(&plan, &call, &shipped_globals());
    assert_eq!(found.variables.get("language"), Some("zh"));
    assert!(found.inline_actions.is_empty());
}

#[test]
fn shipped_plans_check_clean() {
    let globals = shipped_globals();
    let globals: Vec<&str> = globals.iter().map(|(k, _)| k.as_str()).collect();
    let gateways = ["provider1", "provider2"];
    let users = ["1000", "1001", "1002", "1003"];
    // What conf/modules.toml's modules register (mod_ivr's menus, mod_recorder's policy,
    // mod_acd's queues and agent feature codes).
    let mut applications = switchyard_dialplan::check::CORE_APPLICATIONS.to_vec();
    applications.extend(["ivr", "ivr_route"]);
    applications.extend([
        "queue",
        "callcenter",
        "agent_login",
        "agent_logout",
        "agent_break",
        "agent_available",
    ]);
    let env = CheckEnv {
        applications: &applications,
        globals: &globals,
        gateways: Some(&gateways),
        users: Some(&users),
        ..CheckEnv::core()
    };
    for dir in [
        "conf/dialplan",
        "conf/dialplan-toml",
        "tests/conf/basic/dialplan",
    ] {
        let found: Vec<String> = check_dir(&repo(dir), &env)
            .iter()
            // The engine's own tests keep extensions beside the e2e plan, with module
            // applications they register themselves: only the plan itself is held here.
            .filter(|d| !dir.starts_with("tests/") || d.location.file.ends_with("default.xml"))
            .map(ToString::to_string)
            .collect();
        assert!(found.is_empty(), "{dir}: {found:#?}");
    }
    // Without provider2 in gateways.toml, the outbound route is an error in both forms.
    let env = CheckEnv {
        gateways: Some(&gateways[..1]),
        ..env
    };
    for dir in ["conf/dialplan", "conf/dialplan-toml"] {
        let found = check_dir(&repo(dir), &env);
        assert_eq!(found.len(), 1, "{dir}: {found:#?}");
        assert_eq!(found[0].severity, Severity::Error);
        assert!(found[0].message.contains("\"provider2\""), "{}", found[0]);
    }
}

/// The language a playback in `actions` plays in: the last `set language=` before it, else
/// the engine's default, "en" (core/engine/src/switch_script.rs DEFAULT_LANGUAGE).
fn playback_language(actions: &[String]) -> Option<&str> {
    let playback = actions.iter().position(|a| a.starts_with("playback "))?;
    let set = actions[..playback]
        .iter()
        .rev()
        .find_map(|a| a.strip_prefix("set language="));
    Some(set.unwrap_or("en"))
}

/// tests/conf/basic/dialplan: the numbers the end-to-end tests dial (tests/tests/*.rs) and
/// what each must do.
#[test]
fn the_e2e_plan_routes_the_test_numbers() {
    let plan = load("tests/conf/basic/dialplan");
    let run = |destination: &str| {
        let call = Call {
            context: "default",
            destination: Box::leak(destination.to_owned().into_boxed_str()),
            caller: "1000",
            vars: &[],
            at: TUESDAY,
            actions: &[],
        };
        lines(&hunt(&plan, &call, &[]))
    };
    assert_eq!(run("9196"), ["answer", "echo"]);
    assert_eq!(
        run("9197"),
        [
            "answer",
            "playback welcome!please-hold",
            "hangup NORMAL_CLEARING"
        ]
    );
    assert_eq!(
        run("9198"),
        [
            "set language=zh",
            "answer",
            "playback welcome!please-hold",
            "hangup NORMAL_CLEARING"
        ]
    );
    assert_eq!(playback_language(&run("9197")), Some("en"));
    assert_eq!(playback_language(&run("9198")), Some("zh"));
    assert_eq!(playback_language(&run("9196")), None);
    assert_eq!(run("9199"), ["answer", "tone ringback"]);
    assert_eq!(run("9664"), ["answer", "moh"]);
    assert_eq!(run("3000"), ["answer", "conference 3000"]);
    // Every user of tests/conf/basic/directory is reachable by its id; a failed bridge ends
    // the call with its cause (no continue_on_fail).
    let users = std::fs::read_dir(repo("tests/conf/basic/directory")).unwrap();
    let mut count = 0;
    for entry in users {
        let path = entry.unwrap().path();
        let id = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(run(&id), [format!("bridge user/{id}")], "{id}");
        count += 1;
    }
    assert_eq!(count, 12);
    assert!(run("5555").is_empty());
    assert!(run("1012").is_empty());
}
