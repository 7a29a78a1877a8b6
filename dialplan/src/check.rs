//! `switchyard dialplan check`: the mistakes a plan can compile with but would route wrongly.
//!
//! The loaders ([`crate::xml`], the TOML form) already refuse what cannot be read (malformed
//! XML, bad regexes, bad time specs). [`check`] looks at a plan that did compile and reports,
//! each with file:line:column and a hint:
//!
//! - an application that is not in the registry (error; the hint names the nearest one);
//! - a `transfer` to a context the plan does not have (error);
//! - a variable that nothing sets, tested by a condition or expanded by `${...}` in action
//!   data (warning: a variable may still arrive from the directory or a SIP header, so the
//!   hint says how to make it known). `${name:-fallback}` is never reported: it says what
//!   to do when the variable is unset;
//! - an extension that can never be reached because an earlier one in the same context
//!   always matches and does not `continue` (warning at each such extension).

use std::collections::BTreeSet;
use std::path::Path;

use crate::ir::{Action, Condition, ConditionTest, Diagnostic, Dialplan, Extension, Severity};
use crate::timespec::TimeSpec;
use crate::vars::references;
use crate::xml::compile_dir;

/// The core applications of the engine's registry; module applications join them at run
/// time, so a [`CheckEnv`] is built from the live registry where one exists.
pub const CORE_APPLICATIONS: &[&str] = &[
    "answer",
    "pre_answer",
    "ring_ready",
    "playback",
    "play_and_get_digits",
    "read",
    "sleep",
    "bridge",
    "transfer",
    "hangup",
    "set",
    "export",
    "unset",
    "record_session",
    "conference",
    "echo",
    "park",
    "log",
    "moh",
    "tone",
    "voicemail",
];

/// The channel variables the engine sets on every call. A name ending in `*` stands for a
/// family (`sip_h_*`: every SIP header copied onto the channel).
pub const CHANNEL_VARIABLES: &[&str] = &[
    "destination_number",
    "caller_id_number",
    "caller_id_name",
    "effective_caller_id_number",
    "effective_caller_id_name",
    "network_addr",
    "network_port",
    "sip_from_user",
    "sip_from_host",
    "sip_to_user",
    "sip_to_host",
    "sip_req_uri",
    "sip_req_user",
    "sip_user_agent",
    "sip_call_id",
    "sip_h_*",
    "context",
    "uuid",
    "domain_name",
    "user_name",
    "direction",
    "hangup_cause",
    "last_bridge_hangup_cause",
];

/// What a plan is checked against.
#[derive(Clone, Copy, Debug)]
pub struct CheckEnv<'a> {
    /// Every application the registry knows.
    pub applications: &'a [&'a str],
    /// Channel variables the engine sets (`*` at the end: a prefix).
    pub known_variables: &'a [&'a str],
    /// Global variables from conf.
    pub globals: &'a [&'a str],
}

impl CheckEnv<'static> {
    /// The core registry and channel variables, no globals.
    pub fn core() -> CheckEnv<'static> {
        CheckEnv {
            applications: CORE_APPLICATIONS,
            known_variables: CHANNEL_VARIABLES,
            globals: &[],
        }
    }
}

/// Every problem [`check`] finds in `plan`, in source order.
pub fn check(plan: &Dialplan, env: &CheckEnv<'_>) -> Vec<Diagnostic> {
    let mut checker = Checker {
        plan,
        env,
        assigned: BTreeSet::new(),
        out: Vec::new(),
    };
    for context in plan.contexts.values() {
        for extension in &context.extensions {
            walk_actions(&extension.conditions, &mut |action| {
                if let Some(name) = assigned_variable(action) {
                    checker.assigned.insert(name.to_owned());
                }
            });
        }
    }
    for context in plan.contexts.values() {
        let mut catch_all: Option<&Extension> = None;
        for extension in &context.extensions {
            if let Some(first) = catch_all {
                checker.out.push(Diagnostic {
                    severity: Severity::Warning,
                    location: extension.location.clone(),
                    message: format!(
                        "extension {:?} is unreachable: {:?} before it always matches",
                        extension.name, first.name
                    ),
                    hint: Some(format!(
                        "{:?} at {} matches every call and has no continue=\"true\"; move it last or give it a condition",
                        first.name, first.location
                    )),
                });
            } else if always_matches(extension) {
                catch_all = Some(extension);
            }
            checker.conditions(&extension.conditions);
        }
    }
    // Source order reads best; the sort is stable, so one position keeps discovery order.
    checker.out.sort_by(|a, b| a.location.cmp(&b.location));
    checker.out
}

/// `switchyard dialplan check DIR` for an XML plan: what the loader reports (errors
/// included) and then what [`check`] finds in everything that did compile, in source order.
pub fn check_dir(dir: &Path, env: &CheckEnv<'_>) -> Vec<Diagnostic> {
    let (plan, mut diagnostics) = compile_dir(dir);
    diagnostics.extend(check(&plan, env));
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
    diagnostics
}

struct Checker<'p, 'e> {
    plan: &'p Dialplan,
    env: &'e CheckEnv<'e>,
    /// Variables some action of the plan sets.
    assigned: BTreeSet<String>,
    out: Vec<Diagnostic>,
}

impl Checker<'_, '_> {
    fn conditions(&mut self, conditions: &[Condition]) {
        for condition in conditions {
            if let ConditionTest::Field { variable, .. } = &condition.test
                && !self.is_known_variable(variable)
            {
                self.out.push(Diagnostic {
                    severity: Severity::Warning,
                    location: condition.location.clone(),
                    message: format!("condition tests variable {variable:?}, which nothing sets"),
                    hint: Some(self.variable_hint(variable)),
                });
            }
            for action in condition.actions.iter().chain(&condition.anti_actions) {
                self.action(action);
            }
            self.conditions(&condition.children);
        }
    }

    fn action(&mut self, action: &Action) {
        let application = action.application.as_str();
        if !self.env.applications.contains(&application) {
            let hint = match nearest(application, self.env.applications.iter().copied()) {
                Some(near) => format!("did you mean {near:?}?"),
                None => "a module must register it before the plan can use it".to_owned(),
            };
            self.out.push(Diagnostic {
                severity: Severity::Error,
                location: action.location.clone(),
                message: format!("unknown application {application:?}"),
                hint: Some(hint),
            });
        }
        for reference in references(&action.data) {
            if !reference.has_fallback && !self.is_known_variable(reference.name) {
                self.out.push(Diagnostic {
                    severity: Severity::Warning,
                    location: action.location.clone(),
                    message: format!(
                        "{application} data expands ${{{}}}, which nothing sets",
                        reference.name
                    ),
                    hint: Some(self.variable_hint(reference.name)),
                });
            }
        }
        if application == "transfer"
            && let Some(context) = transfer_context(&action.data)
            && !self.plan.contexts.contains_key(context)
        {
            let names = self.plan.contexts.keys().map(String::as_str);
            let hint = match nearest(context, names) {
                Some(near) => format!("did you mean {near:?}?"),
                None => format!(
                    "the plan's contexts are: {}",
                    self.plan
                        .contexts
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.out.push(Diagnostic {
                severity: Severity::Error,
                location: action.location.clone(),
                message: format!("transfer to context {context:?}, which is not in the plan"),
                hint: Some(hint),
            });
        }
    }

    fn is_known_variable(&self, name: &str) -> bool {
        let known = |list: &[&str]| {
            list.iter().any(|k| match k.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => *k == name,
            })
        };
        known(self.env.known_variables) || known(self.env.globals) || self.assigned.contains(name)
    }

    fn variable_hint(&self, name: &str) -> String {
        let candidates = self
            .env
            .known_variables
            .iter()
            .chain(self.env.globals)
            .copied()
            .filter(|k| !k.ends_with('*'))
            .chain(self.assigned.iter().map(String::as_str));
        match nearest(name, candidates) {
            Some(near) => format!(
                "did you mean {near:?}? Otherwise set it first or write ${{{name}:-default}}"
            ),
            None => format!("set it first, declare it as a global, or write ${{{name}:-default}}"),
        }
    }
}

/// Calls `f` on every action and anti-action, nested ones included.
fn walk_actions<'p>(conditions: &'p [Condition], f: &mut impl FnMut(&'p Action)) {
    for condition in conditions {
        condition
            .actions
            .iter()
            .chain(&condition.anti_actions)
            .for_each(&mut *f);
        walk_actions(&condition.children, f);
    }
}

/// The variable an action assigns: `set`/`export` `name=value`, and the digits variable of
/// `read` (`min max sound var timeout terminators`) and `play_and_get_digits` (its 8th
/// argument), as FreeSWITCH's mod_dptools reads them.
fn assigned_variable(action: &Action) -> Option<&str> {
    let name = match action.application.as_str() {
        "set" | "export" => action.data.split_once('=')?.0.trim(),
        "read" => action.data.split_whitespace().nth(3)?,
        "play_and_get_digits" => action.data.split_whitespace().nth(7)?,
        _ => return None,
    };
    (!name.is_empty() && !name.contains('$')).then_some(name)
}

/// The context a `transfer` names: `[-bleg|-both] EXTENSION [DIALPLAN [CONTEXT]]`. `None`
/// when it names none or computes it from a variable.
fn transfer_context(data: &str) -> Option<&str> {
    let mut words = data.split_whitespace().peekable();
    if words.peek().is_some_and(|w| *w == "-bleg" || *w == "-both") {
        words.next();
    }
    let context = words.nth(2)?;
    (!context.contains('$')).then_some(context)
}

/// Whether an extension matches every call: it has conditions, each always true, and it
/// does not continue. This is syntactic: a field regex counts as always true only when it
/// plainly matches anything (`""`, `^`, `.*`, `^.*$`, `^(.*)$`).
fn always_matches(extension: &Extension) -> bool {
    !extension.continue_on_match
        && !extension.conditions.is_empty()
        && extension.conditions.iter().all(|c| match &c.test {
            ConditionTest::Always => true,
            ConditionTest::Time { spec, holiday } => {
                holiday.is_none() && *spec == TimeSpec::default()
            }
            ConditionTest::Field { regex, .. } => is_catch_all(regex.as_str()),
        })
}

fn is_catch_all(pattern: &str) -> bool {
    if matches!(pattern, "" | "^" | "$") {
        return true;
    }
    let body = pattern.strip_prefix('^').unwrap_or(pattern);
    let body = body.strip_suffix('$').unwrap_or(body);
    let body = body
        .strip_prefix("(?:")
        .or_else(|| body.strip_prefix('('))
        .and_then(|b| b.strip_suffix(')'))
        .unwrap_or(body);
    matches!(body, ".*" | ".*?" | "(?s).*" | "(?s:.*)")
}

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
fn nearest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|&(distance, _)| distance <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::load_str;

    fn diagnostics(body: &str) -> Vec<String> {
        let text = format!(
            "<include><context name=\"default\">{body}</context><context name=\"public\"/></include>"
        );
        let plan = load_str("t.xml", &text).unwrap().plan;
        check(&plan, &CheckEnv::core())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_clean_plan_has_nothing_to_report() {
        let got = diagnostics(
            r#"<extension name="a"><condition field="destination_number" expression="^1$">
                 <action application="set" data="x=1"/>
                 <action application="read" data="1 4 prompt.wav pin 5000 #"/>
                 <action application="log" data="${x} ${pin} ${sip_h_X-Foo} ${nowhere:-n}"/>
                 <action application="transfer" data="-bleg 1000 XML public"/>
                 <action application="transfer" data="1000 XML ${target}"/>
                 <anti-action application="export" data="target=public"/>
               </condition></extension>
               <extension name="b" continue="true"><condition/></extension>
               <extension name="c"><condition field="x" expression="^2$"/></extension>"#,
        );
        assert!(got.is_empty(), "{got:#?}");
    }

    #[test]
    fn each_kind_is_reported_with_its_hint() {
        let got = diagnostics(
            r#"<extension name="a"><condition field="destinaton_number" expression="^1$">
                 <action application="playbak" data="${uuid}.wav ${dialed}"/>
                 <action application="transfer" data="1000 XML publik"/>
               </condition></extension>
               <extension name="all"><condition field="destination_number" expression="^(.*)$"/></extension>
               <extension name="late"><condition/></extension>"#,
        );
        assert_eq!(
            got,
            [
                "t.xml:1:54: warning: condition tests variable \"destinaton_number\", which nothing sets (hint: did you mean \"destination_number\"? Otherwise set it first or write ${destinaton_number:-default})",
                "t.xml:2:18: error: unknown application \"playbak\" (hint: did you mean \"playback\"?)",
                "t.xml:2:18: warning: playbak data expands ${dialed}, which nothing sets (hint: set it first, declare it as a global, or write ${dialed:-default})",
                "t.xml:3:18: error: transfer to context \"publik\", which is not in the plan (hint: did you mean \"public\"?)",
                "t.xml:6:16: warning: extension \"late\" is unreachable: \"all\" before it always matches (hint: \"all\" at t.xml:5:16 matches every call and has no continue=\"true\"; move it last or give it a condition)",
            ]
        );
    }

    #[test]
    fn nearest_names_a_likely_typo_only() {
        assert_eq!(
            nearest("playbak", CORE_APPLICATIONS.iter().copied()),
            Some("playback")
        );
        assert_eq!(
            nearest("brige", CORE_APPLICATIONS.iter().copied()),
            Some("bridge")
        );
        assert_eq!(
            nearest("voicemail_x_y_z", CORE_APPLICATIONS.iter().copied()),
            None
        );
    }

    #[test]
    fn catch_all_regexes() {
        for p in ["", "^", ".*", "^.*$", "^(.*)$", "^(?:.*)$", "^.*"] {
            assert!(is_catch_all(p), "{p}");
        }
        for p in ["^$", "^1", "^.+$", "^(.*)1$", "^\\d*$"] {
            assert!(!is_catch_all(p), "{p}");
        }
    }

    #[test]
    fn transfer_contexts() {
        assert_eq!(transfer_context("1000 XML default"), Some("default"));
        assert_eq!(transfer_context("-both 1000 XML other"), Some("other"));
        assert_eq!(transfer_context("1000"), None);
        assert_eq!(transfer_context("1000 XML"), None);
        assert_eq!(transfer_context("1000 XML ${ctx}"), None);
    }
}
