//! The routing-case table: calls (context, destination, caller, variables, time) against
//! tests/fixtures/plan.xml, with the exact extensions that match and actions that run. The
//! table is plain data so the TOML form of the same plan can be held to identical results.

use std::path::Path;

use switchyard_dialplan::explain::explain;
use switchyard_dialplan::ir::{Compiled, Diagnostic, Dialplan, HuntEnv};
use switchyard_dialplan::matcher::hunt;
use switchyard_dialplan::timespec::{CivilTime, Holidays};
use switchyard_dialplan::vars::Variables;
use switchyard_dialplan::{toml_plan, xml};

struct Case {
    name: &'static str,
    context: &'static str,
    destination: &'static str,
    caller: &'static str,
    vars: &'static [(&'static str, &'static str)],
    /// "YYYY-MM-DD HH:MM"; the weekday is derived.
    at: &'static str,
    matched: &'static [&'static str],
    /// "application data", in run order.
    actions: &'static [&'static str],
    /// Inline actions that ran during hunting, "application data".
    inline: &'static [&'static str],
}

const TUESDAY: &str = "2026-11-24 10:30";

const CASES: &[Case] = &[
    Case {
        name: "local extension, voicemail off",
        context: "default",
        destination: "1005",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["local"],
        actions: &[
            "set dialed_extension=1005",
            "bridge user/1005@default.local",
            "hangup NO_ANSWER",
        ],
        inline: &[],
    },
    Case {
        name: "local extension, voicemail on, domain variable",
        context: "default",
        destination: "1010",
        caller: "1000",
        vars: &[("vm_enabled", "true"), ("domain", "pbx.example.com")],
        at: TUESDAY,
        matched: &["local"],
        actions: &[
            "set dialed_extension=1010",
            "bridge user/1010@pbx.example.com",
            "voicemail default pbx.example.com 1010",
        ],
        inline: &[],
    },
    Case {
        name: "empty domain falls back to the default",
        context: "default",
        destination: "1019",
        caller: "1000",
        vars: &[("domain", ""), ("vm_enabled", "TRUE")],
        at: TUESDAY,
        matched: &["local"],
        actions: &[
            "set dialed_extension=1019",
            "bridge user/1019@default.local",
            "hangup NO_ANSWER",
        ],
        inline: &[],
    },
    Case {
        name: "number outside the local range reaches the catch-all",
        context: "default",
        destination: "1020",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["not-found"],
        actions: &["hangup UNALLOCATED_NUMBER"],
        inline: &[],
    },
    Case {
        name: "echo test",
        context: "default",
        destination: "9196",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["echo"],
        actions: &["answer ", "echo "],
        inline: &[],
    },
    Case {
        name: "external caller is tagged and hunting continues",
        context: "default",
        destination: "1001",
        caller: "2125551234",
        vars: &[],
        at: TUESDAY,
        matched: &["tag-caller", "local"],
        actions: &[
            "log INFO external caller 2125551234",
            "set dialed_extension=1001",
            "bridge user/1001@default.local",
            "hangup NO_ANSWER",
        ],
        inline: &["set caller_e164=+12125551234"],
    },
    Case {
        name: "blocked caller in E.164 form",
        context: "default",
        destination: "1001",
        caller: "+16665551234",
        vars: &[],
        at: TUESDAY,
        matched: &["tag-caller", "blocklist"],
        actions: &[
            "log INFO external caller 6665551234",
            "hangup CALL_REJECTED",
        ],
        inline: &["set caller_e164=+16665551234"],
    },
    Case {
        name: "blocked caller in national form: the inline set feeds the blocklist",
        context: "default",
        destination: "9196",
        caller: "6665551234",
        vars: &[],
        at: TUESDAY,
        matched: &["tag-caller", "blocklist"],
        actions: &[
            "log INFO external caller 6665551234",
            "hangup CALL_REJECTED",
        ],
        inline: &["set caller_e164=+16665551234"],
    },
    Case {
        name: "recording continues into the echo extension",
        context: "default",
        destination: "9196",
        caller: "1000",
        vars: &[("record_calls", "yes"), ("uuid", "abc")],
        at: TUESDAY,
        matched: &["record-all", "echo"],
        actions: &["record_session /rec/abc.wav", "answer ", "echo "],
        inline: &[],
    },
    Case {
        name: "three continuing extensions before the local one",
        context: "default",
        destination: "1005",
        caller: "2125551234",
        vars: &[("record_calls", "yes"), ("uuid", "u1")],
        at: TUESDAY,
        matched: &["tag-caller", "record-all", "local"],
        actions: &[
            "log INFO external caller 2125551234",
            "record_session /rec/u1.wav",
            "set dialed_extension=1005",
            "bridge user/1005@default.local",
            "hangup NO_ANSWER",
        ],
        inline: &["set caller_e164=+12125551234"],
    },
    Case {
        name: "sales in business hours",
        context: "default",
        destination: "5000",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["sales"],
        actions: &["bridge user/1005", "hangup NORMAL_CLEARING"],
        inline: &[],
    },
    Case {
        name: "sales on a Sunday: break=never runs on to the hangup",
        context: "default",
        destination: "5000",
        caller: "1000",
        vars: &[],
        at: "2026-11-22 10:30",
        matched: &["sales"],
        actions: &["playback closed.wav", "hangup NORMAL_CLEARING"],
        inline: &[],
    },
    Case {
        name: "sales on a weekday evening",
        context: "default",
        destination: "5000",
        caller: "1000",
        vars: &[],
        at: "2026-11-24 18:00",
        matched: &["sales"],
        actions: &["playback closed.wav", "hangup NORMAL_CLEARING"],
        inline: &[],
    },
    Case {
        name: "sales at 17:59 is still open",
        context: "default",
        destination: "5000",
        caller: "1000",
        vars: &[],
        at: "2026-11-27 17:59",
        matched: &["sales"],
        actions: &["bridge user/1005", "hangup NORMAL_CLEARING"],
        inline: &[],
    },
    Case {
        name: "sales on Christmas: break=on-true stops at the holiday",
        context: "default",
        destination: "5000",
        caller: "1000",
        vars: &[],
        at: "2026-12-25 10:00",
        matched: &["sales"],
        actions: &["playback holiday.wav"],
        inline: &[],
    },
    Case {
        name: "support inside the minute-of-day window",
        context: "default",
        destination: "5001",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["support"],
        actions: &["bridge user/1002"],
        inline: &[],
    },
    Case {
        name: "support at 07:59: nested anti-action, nested break",
        context: "default",
        destination: "5001",
        caller: "1000",
        vars: &[],
        at: "2026-11-24 07:59",
        matched: &["support"],
        actions: &["voicemail default support"],
        inline: &[],
    },
    Case {
        name: "support at 08:00 in 2027 reaches the second nested condition",
        context: "default",
        destination: "5001",
        caller: "1000",
        vars: &[],
        at: "2027-03-02 08:00",
        matched: &["support"],
        actions: &["bridge user/1002", "log INFO new support line"],
        inline: &[],
    },
    Case {
        name: "support at 18:00 is closed",
        context: "default",
        destination: "5001",
        caller: "1000",
        vars: &[],
        at: "2026-11-24 18:00",
        matched: &["support"],
        actions: &["voicemail default support"],
        inline: &[],
    },
    Case {
        name: "break=always stops after a true condition",
        context: "default",
        destination: "75",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["always-break"],
        actions: &["log INFO digit 5"],
        inline: &[],
    },
    Case {
        name: "break=always stops after a false condition too",
        context: "default",
        destination: "712",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["not-found"],
        actions: &["hangup UNALLOCATED_NUMBER"],
        inline: &[],
    },
    Case {
        name: "operator: the boss is put through on-true",
        context: "default",
        destination: "0",
        caller: "1001",
        vars: &[("language", "fr")],
        at: TUESDAY,
        matched: &["operator"],
        actions: &["bridge user/1000"],
        inline: &[],
    },
    Case {
        name: "operator in French, capture from a variable field",
        context: "default",
        destination: "0",
        caller: "1002",
        vars: &[("language", "fr")],
        at: TUESDAY,
        matched: &["operator"],
        actions: &["playback ivr/fr/operator.wav"],
        inline: &[],
    },
    Case {
        name: "operator without a language: anti-action kept, hunting goes on",
        context: "default",
        destination: "0",
        caller: "1002",
        vars: &[],
        at: TUESDAY,
        matched: &["not-found"],
        actions: &["playback ivr/en/operator.wav", "hangup UNALLOCATED_NUMBER"],
        inline: &[],
    },
    Case {
        name: "speed dial 1: inline set seen by the next condition",
        context: "default",
        destination: "*1",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["speed-dial"],
        actions: &["transfer 1000 XML default", "hangup NORMAL_CLEARING"],
        inline: &["set speed_digit=1"],
    },
    Case {
        name: "speed dial 2: anti-action under break=never",
        context: "default",
        destination: "*2",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["speed-dial"],
        actions: &["playback invalid.wav", "hangup NORMAL_CLEARING"],
        inline: &["set speed_digit=2"],
    },
    Case {
        name: "outbound from an internal phone uses the default caller ID and gateway",
        context: "default",
        destination: "912125551234",
        caller: "1000",
        vars: &[],
        at: TUESDAY,
        matched: &["outbound"],
        actions: &[
            "set effective_caller_id_number=+15550000000",
            "bridge sofia/gateway/trunk1/12125551234",
        ],
        inline: &[],
    },
    Case {
        name: "outbound from an external caller via a chosen gateway",
        context: "default",
        destination: "92125551234",
        caller: "3105550000",
        vars: &[("gateway", "trunk2")],
        at: TUESDAY,
        matched: &["tag-caller", "outbound"],
        actions: &[
            "log INFO external caller 3105550000",
            "set effective_caller_id_number=+13105550000",
            "bridge sofia/gateway/trunk2/2125551234",
        ],
        inline: &["set caller_e164=+13105550000"],
    },
    Case {
        name: "inbound DID in the public context",
        context: "public",
        destination: "+18005551000",
        caller: "2125551234",
        vars: &[],
        at: TUESDAY,
        matched: &["did"],
        actions: &[
            "log INFO DID 8005551000 for pbx.example.com",
            "transfer 1000 XML default",
        ],
        inline: &["set domain=pbx.example.com"],
    },
    Case {
        name: "hotline on a yearly holiday",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2026-12-25 10:00",
        matched: &["hotline"],
        actions: &["playback holiday-closed.wav"],
        inline: &[],
    },
    Case {
        name: "hotline inside a holiday span",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2027-02-08 11:00",
        matched: &["hotline"],
        actions: &["playback holiday-closed.wav"],
        inline: &[],
    },
    Case {
        name: "hotline on New Year's Eve night: inside the date-time range",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2026-12-31 23:59",
        matched: &["hotline"],
        actions: &["playback new-year.wav"],
        inline: &[],
    },
    Case {
        name: "hotline at the end of the date-time range, which is excluded",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2027-01-01 08:00",
        matched: &["hotline"],
        actions: &["voicemail default hotline"],
        inline: &[],
    },
    Case {
        name: "hotline at the last minute of the time-of-day range, which is included",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2026-11-24 17:15",
        matched: &["hotline"],
        actions: &["bridge user/1003"],
        inline: &[],
    },
    Case {
        name: "hotline just after the time-of-day range",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2026-11-24 17:16",
        matched: &["hotline"],
        actions: &["voicemail default hotline"],
        inline: &[],
    },
    Case {
        name: "hotline at the start of the time-of-day range",
        context: "default",
        destination: "5002",
        caller: "1000",
        vars: &[],
        at: "2026-11-24 08:30",
        matched: &["hotline"],
        actions: &["bridge user/1003"],
        inline: &[],
    },
    Case {
        name: "unknown DID in the public context matches nothing",
        context: "public",
        destination: "8005559999",
        caller: "2125551234",
        vars: &[],
        at: TUESDAY,
        matched: &[],
        actions: &[],
        inline: &[],
    },
];

fn plan() -> Dialplan {
    fixture("plan.xml", xml::load_str)
}

/// The same plan in TOML: every case must give the same result through it.
fn toml_plan() -> Dialplan {
    fixture("plan.toml", toml_plan::load_str)
}

fn fixture(name: &str, load: fn(&str, &str) -> Result<Compiled, Vec<Diagnostic>>) -> Dialplan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let compiled = load(&path.display().to_string(), &text).unwrap_or_else(|errs| {
        panic!("fixture plan {name} does not compile: {errs:#?}");
    });
    assert!(compiled.warnings.is_empty(), "{:#?}", compiled.warnings);
    compiled.plan
}

/// The holiday calendar every case hunts with.
fn holidays() -> Holidays {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/holidays.toml");
    Holidays::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// "YYYY-MM-DD HH:MM" as a local time.
fn civil(text: &str) -> CivilTime {
    let num = |range: std::ops::Range<usize>| text[range].parse::<u8>().unwrap();
    CivilTime::from_civil(
        text[0..4].parse().unwrap(),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        0,
    )
    .unwrap()
}

#[test]
fn civil_helper_derives_the_weekday() {
    assert_eq!(civil("2026-11-24 00:00").wday, 3); // a Tuesday
    assert_eq!(civil("2026-11-22 00:00").wday, 1); // a Sunday
    assert_eq!(civil("2026-12-25 00:00").wday, 6); // a Friday
    assert_eq!(civil("2024-02-29 00:00").wday, 5); // a Thursday
}

#[test]
fn routing_cases() {
    let plans = [("plan.xml", plan()), ("plan.toml", toml_plan())];
    let holidays = holidays();
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for case in CASES {
        let mut vars: Variables = case.vars.iter().copied().collect();
        vars.set("destination_number", case.destination);
        vars.set("caller_id_number", case.caller);
        let env = HuntEnv {
            now: civil(case.at),
            holidays: &holidays,
        };
        let mut outcomes = Vec::new();
        for (form, plan) in &plans {
            let result = hunt(plan, case.context, &vars, &env).unwrap();
            let matched: Vec<&str> = result.extensions.iter().map(|e| e.name.as_str()).collect();
            let actions: Vec<String> = result
                .actions
                .iter()
                .map(|a| format!("{} {}", a.application, a.data))
                .collect();
            let inline: Vec<String> = result
                .inline_actions
                .iter()
                .map(|a| format!("{} {}", a.application, a.data))
                .collect();
            if matched != case.matched || actions != case.actions || inline != case.inline {
                failures.push(format!(
                    "{} ({form}):\n  matched {matched:?}, expected {:?}\n  actions {actions:?}\n  expected {:?}\n  inline {inline:?}, expected {:?}",
                    case.name, case.matched, case.actions, case.inline
                ));
            }
            let matched: Vec<String> = matched.into_iter().map(str::to_owned).collect();
            outcomes.push((matched, actions, inline, result.variables));
        }
        // Identical down to the variables the call starts executing with.
        if outcomes[0] != outcomes[1] {
            failures.push(format!(
                "{}: plan.xml and plan.toml differ:\n  {:?}\n  {:?}",
                case.name, outcomes[0], outcomes[1]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn actions_point_at_their_source_lines() {
    let plan = plan();
    let vars: Variables = [("destination_number", "9196"), ("caller_id_number", "1000")]
        .into_iter()
        .collect();
    let result = hunt(&plan, "default", &vars, &HuntEnv::at(civil(TUESDAY))).unwrap();
    assert!(result.extensions[0].location.file.ends_with("plan.xml"));
    assert_eq!(result.extensions[0].location.line, 37);
    let lines: Vec<u32> = result.actions.iter().map(|a| a.location.line).collect();
    assert_eq!(lines, [39, 40]);
}

/// `dialplan test` prints what the case table expects, for every case.
#[test]
fn explain_agrees_with_the_case_table() {
    let plan = plan();
    let holidays = holidays();
    for case in CASES {
        let mut vars: Variables = case.vars.iter().copied().collect();
        vars.set("destination_number", case.destination);
        vars.set("caller_id_number", case.caller);
        let env = HuntEnv {
            now: civil(case.at),
            holidays: &holidays,
        };
        let text = explain(&plan, case.context, &vars, &env).unwrap();
        let (hunting, actions) = text.split_once("\nactions:\n").unwrap();
        let printed: Vec<&str> = actions
            .lines()
            .filter(|l| *l != "  (none)")
            .map(|l| {
                let l = l.trim_start().split_once(". ").unwrap().1;
                &l[..l.rfind(" (").unwrap()]
            })
            .collect();
        let expected: Vec<&str> = case.actions.iter().map(|a| a.trim_end()).collect();
        assert_eq!(printed, expected, "{}:\n{text}", case.name);
        for name in case.matched {
            let prefix = format!("  {name} (");
            assert!(
                hunting
                    .lines()
                    .any(|l| l.starts_with(&prefix) && l.contains("): matched, ")),
                "{}:\n{text}",
                case.name
            );
        }
    }
}

#[test]
fn explain_prints_the_echo_case_exactly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan.xml");
    let plan = xml::load_str("plan.xml", &std::fs::read_to_string(path).unwrap())
        .unwrap()
        .plan;
    let vars: Variables = [("destination_number", "9196"), ("caller_id_number", "1000")]
        .into_iter()
        .collect();
    let env = HuntEnv {
        now: civil(TUESDAY),
        holidays: &holidays(),
    };
    let text = explain(&plan, "default", &vars, &env).unwrap();
    let expected = r#"context: default
time: 2026-11-24 10:30:00 (Tue)
variables:
  caller_id_number="1000"
  destination_number="9196"
extensions tried:
  tag-caller (plan.xml:7:5): no match, decided by caller_id_number="1000" !~ /^(\+?1)?(\d{10})$/ at plan.xml:8:7
  record-all (plan.xml:14:5): no match, decided by record_calls="" !~ /^yes$/ at plan.xml:15:7
  blocklist (plan.xml:20:5): no match, decided by caller_e164="" !~ /^\+16665551234$/ at plan.xml:21:7
  local (plan.xml:26:5): no match, decided by destination_number="9196" !~ /^(10[01]\d)$/ at plan.xml:27:7
  echo (plan.xml:37:5): matched, decided by destination_number="9196" =~ /^9196$/ at plan.xml:38:7
  (hunting stopped at "echo": it matched without continue="true")
inline actions run while hunting:
  (none)
actions:
  1. answer (plan.xml:39:9)
  2. echo (plan.xml:40:9)
"#;
    assert_eq!(text, expected);
}
