//! `switchyard dialplan test`: what a call would do, in words, with no call placed.
//!
//! The text lists the input the hunt saw (context, local time, holiday, channel variables),
//! every extension tried with the condition that decided it, the inline actions that ran
//! while hunting, then every action the call would run with its data expanded. Each line
//! that comes from the plan ends with the file:line:column it was written at. The output is
//! deterministic: variables print in name order, everything else in hunting order.

use std::fmt::Write;

use crate::ir::{Dialplan, HuntEnv};
use crate::matcher::{HuntError, PlannedAction, hunt};
use crate::vars::Variables;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Hunts `context` for a call with `vars` in `env` and describes the result.
pub fn explain(
    plan: &Dialplan,
    context: &str,
    vars: &Variables,
    env: &HuntEnv<'_>,
) -> Result<String, HuntError> {
    let result = hunt(plan, context, vars, env)?;
    let mut out = String::new();
    let now = env.now;
    let weekday = WEEKDAYS[usize::from(now.wday.clamp(1, 7) - 1)];
    // Writing to a String cannot fail.
    let _ = writeln!(out, "context: {context}");
    let _ = writeln!(
        out,
        "time: {:04}-{:02}-{:02} {:02}:{:02}:{:02} ({weekday}){}",
        now.year,
        now.month,
        now.mday,
        now.hour,
        now.minute,
        now.second,
        match env.holidays.is_holiday(&now) {
            Some(name) => format!(", holiday: {name}"),
            None => String::new(),
        }
    );
    out.push_str("variables:\n");
    for (name, value) in vars.iter() {
        let _ = writeln!(out, "  {name}={value:?}");
    }
    out.push_str("extensions tried:\n");
    for tried in &result.tried {
        let verdict = if tried.matched { "matched" } else { "no match" };
        let _ = write!(out, "  {} ({}): {verdict}", tried.name, tried.location);
        match &tried.decided_by {
            Some(decision) => {
                let _ = writeln!(
                    out,
                    ", decided by {} at {}",
                    decision.test, decision.location
                );
            }
            None => out.push_str(", it has no condition\n"),
        }
    }
    if result.tried.len() < plan.contexts[context].extensions.len() {
        let _ = writeln!(
            out,
            "  (hunting stopped at {:?}: it matched without continue=\"true\")",
            result.tried.last().map_or("", |t| t.name.as_str())
        );
    }
    out.push_str("inline actions run while hunting:\n");
    list(&mut out, &result.inline_actions);
    out.push_str("actions:\n");
    list(&mut out, &result.actions);
    Ok(out)
}

fn list(out: &mut String, actions: &[PlannedAction]) {
    if actions.is_empty() {
        out.push_str("  (none)\n");
    }
    for (n, action) in actions.iter().enumerate() {
        let _ = write!(out, "  {}. {}", n + 1, action.application);
        if !action.data.is_empty() {
            let _ = write!(out, " {}", action.data);
        }
        let _ = writeln!(out, " ({})", action.location);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timespec::{CivilTime, Holidays};
    use crate::xml::load_str;

    const PLAN: &str = r#"<include><context name="default">
<extension name="tag" continue="true">
  <condition field="caller_id_number" expression="^(\d{10})$">
    <action application="set" data="caller_e164=+1$1" inline="true"/>
  </condition>
</extension>
<extension name="closed">
  <condition field="destination_number" expression="^5000$"/>
  <condition holiday="yes">
    <action application="playback" data="closed.wav"/>
  </condition>
</extension>
<extension name="sales">
  <condition field="destination_number" expression="^(5000)$">
    <action application="set" data="target=user/$1@${domain:-pbx.local}"/>
    <action application="bridge" data="${target}"/>
  </condition>
</extension>
<extension name="empty"/>
</context></include>"#;

    #[test]
    fn explains_a_hunt_exactly() {
        let plan = load_str("plan.xml", PLAN).unwrap().plan;
        let holidays =
            Holidays::parse("[[holiday]]\nname = \"Boxing Day\"\ndate = \"12-26\"\n").unwrap();
        let vars: Variables = [
            ("destination_number", "5000"),
            ("caller_id_number", "2125551234"),
        ]
        .into_iter()
        .collect();
        let env = HuntEnv {
            now: CivilTime::from_civil(2026, 11, 24, 10, 30, 0).unwrap(),
            holidays: &holidays,
        };
        let text = explain(&plan, "default", &vars, &env).unwrap();
        let expected = r#"context: default
time: 2026-11-24 10:30:00 (Tue)
variables:
  caller_id_number="2125551234"
  destination_number="5000"
extensions tried:
  tag (plan.xml:2:1): matched, decided by caller_id_number="2125551234" =~ /^(\d{10})$/ at plan.xml:3:3
  closed (plan.xml:7:1): no match, decided by time does not match at plan.xml:9:3
  sales (plan.xml:13:1): matched, decided by destination_number="5000" =~ /^(5000)$/ at plan.xml:14:3
  (hunting stopped at "sales": it matched without continue="true")
inline actions run while hunting:
  1. set caller_e164=+12125551234 (plan.xml:4:5)
actions:
  1. set target=user/5000@pbx.local (plan.xml:15:5)
  2. bridge user/5000@pbx.local (plan.xml:16:5)
"#;
        assert_eq!(text, expected);

        let boxing_day = HuntEnv {
            now: CivilTime::from_civil(2026, 12, 26, 9, 0, 0).unwrap(),
            holidays: &holidays,
        };
        let text = explain(&plan, "default", &vars, &boxing_day).unwrap();
        assert!(
            text.contains("time: 2026-12-26 09:00:00 (Sat), holiday: Boxing Day\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "closed (plan.xml:7:1): matched, decided by time matches at plan.xml:9:3\n"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("actions:\n  1. playback closed.wav (plan.xml:10:5)\n"),
            "{text}"
        );

        let nobody: Variables = [("destination_number", "1")].into_iter().collect();
        let text = explain(&plan, "default", &nobody, &env).unwrap();
        assert!(
            text.contains("  empty (plan.xml:19:1): no match, it has no condition\n"),
            "{text}"
        );
        assert!(
            text.ends_with("inline actions run while hunting:\n  (none)\nactions:\n  (none)\n"),
            "{text}"
        );
    }

    #[test]
    fn unknown_context_is_an_error() {
        let plan = load_str("plan.xml", PLAN).unwrap().plan;
        let env = HuntEnv::at(CivilTime::from_civil(2026, 11, 24, 10, 30, 0).unwrap());
        assert!(explain(&plan, "nope", &Variables::new(), &env).is_err());
    }
}
