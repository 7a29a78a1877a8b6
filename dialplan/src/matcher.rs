//! Hunting: which extensions of a context match a call and which actions it will run,
//! following FreeSWITCH's mod_dialplan_xml semantics.
//!
//! - Extensions are tried in order; hunting stops at the first that matches unless it has
//!   `continue_on_match`.
//! - Within an extension each condition is tested in turn: a true one contributes its
//!   actions (then its nested conditions are evaluated), a false one its anti-actions. The
//!   break mode decides whether evaluation goes on; the extension matches when the last
//!   condition evaluated was true.
//! - As in FreeSWITCH, actions (and anti-actions) collected before a later condition fails
//!   stay in the list even though that extension does not match.
//! - Inline actions (`set`, `export`, `unset`) run during hunting, so later conditions see
//!   the variables they change. The other actions are expanded in order as the call would run
//!   them: a non-inline `set` changes what `${var}` means for the actions after it.

use crate::ir::{Action, BreakOn, Condition, ConditionTest, Dialplan, HuntEnv, Location};
use crate::vars::{Variables, expand};

/// The outcome of a hunt: what a call would do, without placing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunt {
    /// The extensions that matched, in hunting order.
    pub extensions: Vec<MatchedExtension>,
    /// Every extension tried, in hunting order, matched or not: what `dialplan test` shows.
    pub tried: Vec<TriedExtension>,
    /// The actions the call will run, in order, with their data expanded.
    pub actions: Vec<PlannedAction>,
    /// The inline actions that already ran while hunting, in order.
    pub inline_actions: Vec<PlannedAction>,
    /// The channel variables after the inline actions: what the call starts executing with.
    pub variables: Variables,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedExtension {
    pub name: String,
    pub location: Location,
}

/// One extension hunting tried, and why it matched or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriedExtension {
    pub name: String,
    pub location: Location,
    pub matched: bool,
    /// The last top-level condition evaluated, whose result is the extension's; `None` when
    /// the extension has no condition (it never matches).
    pub decided_by: Option<Decision>,
}

/// A condition's result as hunting saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub location: Location,
    pub holds: bool,
    /// What was tested: `variable="value" =~ /regex/`, `time`, or `always`.
    pub test: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedAction {
    pub application: String,
    /// The data expanded as hunting saw the variables: what `dialplan test` shows.
    pub data: String,
    /// The data as written, and the captures of the condition that produced the action: a
    /// call expands them again when it runs the action, so variables set by earlier actions
    /// (`read`, `play_and_get_digits`, a failed `bridge`) are seen, as in FreeSWITCH.
    pub template: String,
    pub captures: Vec<Option<String>>,
    pub location: Location,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HuntError {
    #[error("context {context:?} is not in the dialplan")]
    UnknownContext { context: String },
}

/// Hunts `context` for a call with these channel variables; time conditions look at
/// `env.now` and `holiday=` conditions at `env.holidays`.
pub fn hunt(
    plan: &Dialplan,
    context: &str,
    vars: &Variables,
    env: &HuntEnv<'_>,
) -> Result<Hunt, HuntError> {
    let ctx = plan
        .contexts
        .get(context)
        .ok_or_else(|| HuntError::UnknownContext {
            context: context.to_owned(),
        })?;
    let mut hunter = Hunter {
        vars: vars.clone(),
        env: *env,
        pending: Vec::new(),
        inline_actions: Vec::new(),
    };
    let mut extensions = Vec::new();
    let mut tried = Vec::new();
    for extension in &ctx.extensions {
        let decided_by = hunter.conditions(&extension.conditions);
        let matched = decided_by.as_ref().is_some_and(|d| d.holds);
        tried.push(TriedExtension {
            name: extension.name.clone(),
            location: extension.location.clone(),
            matched,
            decided_by,
        });
        if matched {
            extensions.push(MatchedExtension {
                name: extension.name.clone(),
                location: extension.location.clone(),
            });
            if !extension.continue_on_match {
                break;
            }
        }
    }
    let mut running = hunter.vars.clone();
    let actions = hunter
        .pending
        .into_iter()
        .map(|pending| {
            let data = expand(&pending.action.data, &running, &pending.captures);
            apply_variable_application(&pending.action.application, &data, &mut running);
            PlannedAction {
                application: pending.action.application.clone(),
                data,
                template: pending.action.data.clone(),
                captures: pending.captures,
                location: pending.action.location.clone(),
            }
        })
        .collect();
    Ok(Hunt {
        extensions,
        tried,
        actions,
        inline_actions: hunter.inline_actions,
        variables: hunter.vars,
    })
}

/// An action collected while hunting, expanded later in execution order.
struct Pending<'p> {
    action: &'p Action,
    captures: Vec<Option<String>>,
}

struct Hunter<'p, 'e> {
    vars: Variables,
    env: HuntEnv<'e>,
    pending: Vec<Pending<'p>>,
    inline_actions: Vec<PlannedAction>,
}

impl<'p> Hunter<'p, '_> {
    /// Evaluates a list of conditions under their break modes; the list holds when the last
    /// one evaluated was true, which the returned decision describes.
    fn conditions(&mut self, conditions: &'p [Condition]) -> Option<Decision> {
        let mut last = None;
        for condition in conditions {
            let (holds, captures) = self.test(&condition.test);
            last = Some(Decision {
                location: condition.location.clone(),
                holds,
                test: self.describe(&condition.test, holds),
            });
            if holds {
                self.collect(&condition.actions, &captures);
                if !condition.children.is_empty() {
                    self.conditions(&condition.children);
                }
                if matches!(condition.break_on, BreakOn::OnTrue | BreakOn::Always) {
                    break;
                }
            } else {
                self.collect(&condition.anti_actions, &captures);
                if matches!(condition.break_on, BreakOn::OnFalse | BreakOn::Always) {
                    break;
                }
            }
        }
        last
    }

    /// The test in the words `dialplan test` prints, with the value it saw.
    fn describe(&self, test: &ConditionTest, holds: bool) -> String {
        match test {
            ConditionTest::Always => "always".to_owned(),
            ConditionTest::Time { .. } if holds => "time matches".to_owned(),
            ConditionTest::Time { .. } => "time does not match".to_owned(),
            ConditionTest::Field { variable, regex } => format!(
                "{variable}={:?} {} /{}/",
                self.vars.get(variable).unwrap_or_default(),
                if holds { "=~" } else { "!~" },
                regex.as_str()
            ),
        }
    }

    fn test(&self, test: &ConditionTest) -> (bool, Vec<Option<String>>) {
        match test {
            ConditionTest::Always => (true, Vec::new()),
            ConditionTest::Time { spec, holiday } => {
                (self.env.time_holds(spec, *holiday), Vec::new())
            }
            ConditionTest::Field { variable, regex } => {
                let value = self.vars.get(variable).unwrap_or_default();
                match regex.captures(value) {
                    // FreeSWITCH substitutes `$N` only when the expression has groups.
                    Some(_) if regex.captures_len() == 1 => (true, Vec::new()),
                    Some(caps) => (
                        true,
                        caps.iter()
                            .map(|m| m.map(|m| m.as_str().to_owned()))
                            .collect(),
                    ),
                    None => (false, Vec::new()),
                }
            }
        }
    }

    fn collect(&mut self, actions: &'p [Action], captures: &[Option<String>]) {
        for action in actions {
            if action.inline {
                let data = expand(&action.data, &self.vars, captures);
                apply_variable_application(&action.application, &data, &mut self.vars);
                self.inline_actions.push(PlannedAction {
                    application: action.application.clone(),
                    data,
                    template: action.data.clone(),
                    captures: captures.to_vec(),
                    location: action.location.clone(),
                });
            } else {
                self.pending.push(Pending {
                    action,
                    captures: captures.to_vec(),
                });
            }
        }
    }
}

/// The effect of `set`/`export` (`name=value`; an empty value unsets, as in FreeSWITCH) and
/// `unset` (`name`) on the channel variables. Other applications leave them alone.
pub fn apply_variable_application(application: &str, data: &str, vars: &mut Variables) {
    match application {
        "set" | "export" => match data.split_once('=') {
            Some((name, value)) if !value.is_empty() => vars.set(name.trim(), value),
            Some((name, _)) => {
                vars.unset(name.trim());
            }
            None => {
                vars.unset(data.trim());
            }
        },
        "unset" => {
            vars.unset(data.trim());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::load_str;

    use crate::timespec::CivilTime;

    fn noon_tuesday() -> HuntEnv<'static> {
        HuntEnv::at(CivilTime::from_civil(2026, 11, 24, 12, 0, 0).unwrap())
    }

    fn run(body: &str, vars: &[(&str, &str)]) -> Hunt {
        let text = format!("<include><context name=\"c\">{body}</context></include>");
        let plan = load_str("t.xml", &text).unwrap().plan;
        let vars: Variables = vars.iter().copied().collect();
        hunt(&plan, "c", &vars, &noon_tuesday()).unwrap()
    }

    fn apps(h: &Hunt) -> Vec<String> {
        h.actions
            .iter()
            .map(|a| format!("{} {}", a.application, a.data))
            .collect()
    }

    #[test]
    fn unknown_context_is_an_error() {
        let plan = Dialplan::default();
        assert_eq!(
            hunt(&plan, "nope", &Variables::new(), &noon_tuesday()).unwrap_err(),
            HuntError::UnknownContext {
                context: "nope".into()
            }
        );
    }

    #[test]
    fn earlier_true_actions_stay_when_a_later_condition_fails() {
        let h = run(
            r#"<extension name="e">
                 <condition field="a" expression="^1$"><action application="log" data="a"/></condition>
                 <condition field="b" expression="^1$"><action application="log" data="b"/>
                   <anti-action application="log" data="not b"/></condition>
               </extension>
               <extension name="f"><condition><action application="log" data="f"/></condition></extension>"#,
            &[("a", "1")],
        );
        assert_eq!(apps(&h), ["log a", "log not b", "log f"]);
        assert_eq!(h.extensions.len(), 1);
        assert_eq!(h.extensions[0].name, "f");
    }

    #[test]
    fn non_inline_set_changes_later_expansion_only() {
        let h = run(
            r#"<extension name="e"><condition>
                 <action application="set" data="x=new"/>
                 <action application="log" data="${x}"/>
               </condition></extension>"#,
            &[("x", "old")],
        );
        assert_eq!(apps(&h), ["set x=new", "log new"]);
        assert_eq!(h.variables.get("x"), Some("old"));
        assert!(h.inline_actions.is_empty());
    }

    #[test]
    fn variable_applications() {
        let mut v: Variables = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
        apply_variable_application("set", "a=", &mut v);
        apply_variable_application("export", "b", &mut v);
        apply_variable_application("unset", "c", &mut v);
        apply_variable_application("set", "d=x=y", &mut v);
        apply_variable_application("bridge", "e=1", &mut v);
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![("d", "x=y")]);
    }
}
