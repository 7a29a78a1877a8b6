//! The routing-case table: calls (context, destination, caller, variables, time) against
//! tests/fixtures/plan.xml, with the exact extensions that match and actions that run. The
//! table is plain data so the TOML form of the same plan can be held to identical results.

use std::path::Path;

use switchyard_dialplan::ir::{CivilTime, Dialplan};
use switchyard_dialplan::matcher::hunt;
use switchyard_dialplan::vars::Variables;
use switchyard_dialplan::xml;

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
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plan.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let compiled = xml::load_str(&path.display().to_string(), &text).unwrap_or_else(|errs| {
        panic!("fixture plan does not compile: {errs:#?}");
    });
    assert!(compiled.warnings.is_empty(), "{:#?}", compiled.warnings);
    compiled.plan
}

/// "YYYY-MM-DD HH:MM" with its weekday (1 = Sunday), by Sakamoto's method.
fn civil(text: &str) -> CivilTime {
    let num = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap();
    let (year, month, mday) = (num(0..4), num(5..7), num(8..10));
    const OFFSETS: [u32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if month < 3 { year - 1 } else { year };
    let wday = (y + y / 4 - y / 100 + y / 400 + OFFSETS[month as usize - 1] + mday) % 7 + 1;
    CivilTime {
        year,
        month,
        mday,
        wday,
        hour: num(11..13),
        minute: num(14..16),
        second: 0,
    }
}

#[test]
fn weekday_helper_is_right() {
    assert_eq!(civil("2026-11-24 00:00").wday, 3); // a Tuesday
    assert_eq!(civil("2026-11-22 00:00").wday, 1); // a Sunday
    assert_eq!(civil("2026-12-25 00:00").wday, 6); // a Friday
    assert_eq!(civil("2024-02-29 00:00").wday, 5); // a Thursday
}

#[test]
fn routing_cases() {
    let plan = plan();
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for case in CASES {
        let mut vars: Variables = case.vars.iter().copied().collect();
        vars.set("destination_number", case.destination);
        vars.set("caller_id_number", case.caller);
        let result = hunt(&plan, case.context, &vars, civil(case.at)).unwrap();
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
                "{}:\n  matched {matched:?}, expected {:?}\n  actions {actions:?}\n  expected {:?}\n  inline {inline:?}, expected {:?}",
                case.name, case.matched, case.actions, case.inline
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
    let result = hunt(&plan, "default", &vars, civil(TUESDAY)).unwrap();
    assert!(result.extensions[0].location.file.ends_with("plan.xml"));
    assert_eq!(result.extensions[0].location.line, 37);
    let lines: Vec<u32> = result.actions.iter().map(|a| a.location.line).collect();
    assert_eq!(lines, [39, 40]);
}
