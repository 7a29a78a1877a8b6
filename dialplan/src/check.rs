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
//!   always matches and does not `continue` (warning at each such extension);
//! - a `bridge` target that is not `user/ID[@DOMAIN]`, `sofia/gateway/NAME/NUMBER` or
//!   `gateway/NAME/NUMBER` (error); a user the directory lacks (warning: users come and go
//!   with a reload) or a gateway `gateways.toml` lacks (error), when the [`CheckEnv`] lists
//!   them;
//! - a `play_and_get_digits` or `read` with the wrong number of arguments (warning).

use std::collections::BTreeSet;
use std::path::Path;

use crate::ir::{Action, Condition, ConditionTest, Diagnostic, Dialplan, Extension, Severity};
use crate::plan::compile_plan_dir;
use crate::timespec::TimeSpec;
use crate::vars::references;

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
    "log",
    "conference",
    "echo",
    "park",
    "moh",
    "tone",
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
    "originate_disposition",
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
    /// The directory's user ids; `None`: `user/ID` bridge targets are not looked up.
    pub users: Option<&'a [&'a str]>,
    /// The gateway names of gateways.toml; `None`: gateway targets are not looked up.
    pub gateways: Option<&'a [&'a str]>,
}

impl CheckEnv<'static> {
    /// The core registry and channel variables, no globals.
    pub fn core() -> CheckEnv<'static> {
        CheckEnv {
            applications: CORE_APPLICATIONS,
            known_variables: CHANNEL_VARIABLES,
            globals: &[],
            users: None,
            gateways: None,
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

/// `switchyard dialplan check DIR` for a plan directory (`*.xml` and `*.toml`): what the
/// loader reports (errors included) and then what [`check`] finds in everything that did
/// compile, in source order.
pub fn check_dir(dir: &Path, env: &CheckEnv<'_>) -> Vec<Diagnostic> {
    let (plan, mut diagnostics) = compile_plan_dir(dir);
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
        match application {
            "bridge" => self.bridge(action),
            "play_and_get_digits" => self.argument_count(action, 9..=10, PLAY_AND_GET_DIGITS),
            "read" => self.argument_count(action, 6..=6, READ),
            _ => {}
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

    fn bridge(&mut self, action: &Action) {
        for target in bridge_targets(&action.data) {
            let problem = match parse_target(target) {
                Err(problem) => Some((Severity::Error, problem, BRIDGE_FORMS.to_owned())),
                Ok(Target::User(id)) if !id.contains('$') => self
                    .env
                    .users
                    .filter(|users| !users.contains(&id))
                    .map(|users| {
                        (
                            Severity::Warning,
                            format!("bridge to user {id:?}, who is not in the directory"),
                            match nearest(id, users.iter().copied()) {
                                Some(near) => format!("did you mean user/{near}?"),
                                None => format!("add conf/directory/{id}.toml (`switchyard user add {id}`)"),
                            },
                        )
                    }),
                Ok(Target::Gateway(name)) if !name.contains('$') => self
                    .env
                    .gateways
                    .filter(|gateways| !gateways.contains(&name))
                    .map(|gateways| {
                        (
                            Severity::Error,
                            format!("bridge through gateway {name:?}, which gateways.toml does not define"),
                            match nearest(name, gateways.iter().copied()) {
                                Some(near) => format!("did you mean {near:?}?"),
                                None if gateways.is_empty() => "define it as [gateway.NAME] in conf/gateways.toml".to_owned(),
                                None => format!("the gateways are: {}", gateways.join(", ")),
                            },
                        )
                    }),
                Ok(_) => None,
            };
            if let Some((severity, message, hint)) = problem {
                self.out.push(Diagnostic {
                    severity,
                    location: action.location.clone(),
                    message,
                    hint: Some(hint),
                });
            }
        }
    }

    fn argument_count(
        &mut self,
        action: &Action,
        expected: std::ops::RangeInclusive<usize>,
        usage: &str,
    ) {
        let count = action.data.split_whitespace().count();
        if !expected.contains(&count) {
            self.out.push(Diagnostic {
                severity: Severity::Warning,
                location: action.location.clone(),
                message: format!(
                    "{} takes {} arguments, not {count}",
                    action.application,
                    if expected.start() == expected.end() {
                        expected.start().to_string()
                    } else {
                        format!("{} to {}", expected.start(), expected.end())
                    }
                ),
                hint: Some(format!("{} {usage}", action.application)),
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

/// The argument lists FreeSWITCH's mod_dptools takes, as the hints show them.
const PLAY_AND_GET_DIGITS: &str =
    "MIN MAX TRIES TIMEOUT_MS TERMINATORS FILE INVALID_FILE VAR REGEX [DIGIT_TIMEOUT_MS]";
const READ: &str = "MIN MAX FILE VAR TIMEOUT_MS TERMINATORS";
const BRIDGE_FORMS: &str = "a target is user/ID[@DOMAIN], sofia/gateway/NAME/NUMBER, gateway/NAME/NUMBER or [sofia/internal/]sip:USER@IP[:PORT]; `,` rings targets at once, `|` tries them in turn";

/// A bridge target, as far as `check` needs it.
#[derive(Debug, PartialEq, Eq)]
enum Target<'d> {
    User(&'d str),
    Gateway(&'d str),
    /// A literal SIP URI rung directly (`sip:USER@IP:PORT`).
    Uri,
    /// Wholly from a variable: known only when the call runs.
    Computed,
}

/// The targets of bridge data: the leading `{var=value,...}` dropped, then split on `|`
/// (groups tried in turn) and `,` (targets rung at once); a `[var=value]` prefix of one
/// target is dropped too.
fn bridge_targets(data: &str) -> Vec<&str> {
    let mut rest = data.trim();
    if rest.starts_with('{')
        && let Some(end) = rest.find('}')
    {
        rest = &rest[end + 1..];
    }
    split_outside_brackets(rest)
        .into_iter()
        .map(|t| {
            let t = t.trim();
            match t.strip_prefix('[').and_then(|t| t.split_once(']')) {
                Some((_, target)) => target.trim(),
                None => t,
            }
        })
        .collect()
}

/// `rest` split on `|` and `,`, but not inside `[...]`, `{...}` or `${...}`.
fn split_outside_brackets(rest: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            '|' | ',' if depth == 0 => {
                parts.push(&rest[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&rest[start..]);
    parts
}

/// What one target names, or why it is not a target.
fn parse_target(target: &str) -> Result<Target<'_>, String> {
    if target.starts_with('$') {
        return Ok(Target::Computed);
    }
    let word = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    if let Some(user) = target.strip_prefix("user/") {
        let id = user.split_once('@').map_or(user, |(id, _)| id);
        return if word(id) {
            Ok(Target::User(id))
        } else {
            Err(format!("bridge target {target:?} names no user"))
        };
    }
    if let Some(rest) = target
        .strip_prefix("sofia/gateway/")
        .or_else(|| target.strip_prefix("gateway/"))
    {
        return match rest.split_once('/') {
            Some((name, number)) if word(name) && word(number) => Ok(Target::Gateway(name)),
            _ => Err(format!(
                "bridge target {target:?} needs a gateway and a number: gateway/NAME/NUMBER"
            )),
        };
    }
    if let Some(uri) = target
        .strip_prefix("sofia/internal/")
        .unwrap_or(target)
        .strip_prefix("sip:")
    {
        // The engine rings an IP literal only (no DNS): a name is refused here already.
        return match uri.split_once('@') {
            Some((user, host)) if word(user) && (host.contains('$') || ip_host(host)) => {
                Ok(Target::Uri)
            }
            _ => Err(format!(
                "bridge target {target:?} is not sip:USER@IP[:PORT] (an IPv4 or [IPv6] literal)"
            )),
        };
    }
    if target.is_empty() {
        return Err("bridge with an empty target".to_owned());
    }
    Err(format!(
        "bridge target {target:?} is not a target the switch can ring"
    ))
}

/// `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT`.
fn ip_host(host: &str) -> bool {
    use std::net::{IpAddr, SocketAddr};
    host.parse::<SocketAddr>().is_ok()
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<IpAddr>().is_ok())
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
    fn bridge_targets_split_as_the_engine_reads_them() {
        assert_eq!(
            bridge_targets(
                "{call_timeout=20,a=b}user/1001,[leg_timeout=5,x=y]user/1002@example.com|sofia/gateway/gw1/$1"
            ),
            ["user/1001", "user/1002@example.com", "sofia/gateway/gw1/$1"]
        );
        assert_eq!(bridge_targets("${target}"), ["${target}"]);
        assert_eq!(parse_target("user/1001@d"), Ok(Target::User("1001")));
        assert_eq!(parse_target("gateway/gw/123"), Ok(Target::Gateway("gw")));
        assert_eq!(
            parse_target("sofia/gateway/gw/$1"),
            Ok(Target::Gateway("gw"))
        );
        assert_eq!(parse_target("${x}"), Ok(Target::Computed));
        assert!(
            parse_target("sofia/gateway/gw")
                .unwrap_err()
                .contains("gateway/NAME/NUMBER")
        );
        assert!(parse_target("user/").unwrap_err().contains("names no user"));
        assert!(
            parse_target("sofia/internal/1000@x")
                .unwrap_err()
                .contains("not a target")
        );
        assert!(parse_target("").unwrap_err().contains("empty"));
        for uri in [
            "sip:agent1@127.0.0.1:5090",
            "sofia/internal/sip:agent1@127.0.0.1",
            "sip:agent1@[::1]:5090",
            "sip:${agent}@127.0.0.1:5090",
        ] {
            assert_eq!(parse_target(uri), Ok(Target::Uri), "{uri}");
        }
        for bad in ["sip:agent1@example.com", "sip:@127.0.0.1", "sip:127.0.0.1"] {
            assert!(
                parse_target(bad).unwrap_err().contains("sip:USER@IP"),
                "{bad}"
            );
        }
    }

    #[test]
    fn bridge_targets_are_looked_up_when_the_env_lists_them() {
        let body = r#"<extension name="a"><condition field="destination_number" expression="^(\d+)$">
                 <action application="bridge" data="{call_timeout=5}user/1001,user/1009|gateway/provider1/$1|sofia/gateway/provder2/$1"/>
                 <action application="bridge" data="user/$1|sofia/internal/$1"/>
               </condition></extension>"#;
        let text = format!("<include><context name=\"default\">{body}</context></include>");
        let plan = load_str("t.xml", &text).unwrap().plan;
        let found = |env: &CheckEnv| -> Vec<String> {
            check(&plan, env).iter().map(ToString::to_string).collect()
        };
        // Without a directory or gateways, only the syntax is checked.
        assert_eq!(
            found(&CheckEnv::core()),
            [
                "t.xml:3:18: error: bridge target \"sofia/internal/$1\" is not a target the switch can ring (hint: a target is user/ID[@DOMAIN], sofia/gateway/NAME/NUMBER, gateway/NAME/NUMBER or [sofia/internal/]sip:USER@IP[:PORT]; `,` rings targets at once, `|` tries them in turn)"
            ]
        );
        let users = ["1000", "1001", "1002"];
        let gateways = ["provider1", "provider2"];
        let env = CheckEnv {
            users: Some(&users),
            gateways: Some(&gateways),
            ..CheckEnv::core()
        };
        let got = found(&env);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(
            got[0],
            "t.xml:2:18: warning: bridge to user \"1009\", who is not in the directory (hint: did you mean user/1000?)"
        );
        assert_eq!(
            got[1],
            "t.xml:2:18: error: bridge through gateway \"provder2\", which gateways.toml does not define (hint: did you mean \"provider2\"?)"
        );
        let none: [&str; 0] = [];
        let env = CheckEnv {
            users: Some(&none),
            gateways: Some(&none),
            ..CheckEnv::core()
        };
        let got = found(&env);
        assert!(
            got.iter()
                .any(|d| d.contains("hint: add conf/directory/1001.toml")),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|d| d.contains("hint: define it as [gateway.NAME]")),
            "{got:#?}"
        );
    }

    #[test]
    fn digit_collection_argument_counts() {
        let got = diagnostics(
            r#"<extension name="a"><condition field="destination_number" expression="^1$">
                 <action application="play_and_get_digits" data="1 1 3 5000 # ivr-menu invalid-option digit ^[1-3]$"/>
                 <action application="play_and_get_digits" data="1 1 3 5000 # ivr-menu invalid-option digit ^[1-3]$ 2000"/>
                 <action application="play_and_get_digits" data="1 1 3 5000 # ivr-menu digit"/>
                 <action application="read" data="1 4 prompt pin 5000 #"/>
                 <action application="read" data="1 4 prompt pin"/>
               </condition></extension>"#,
        );
        assert_eq!(
            got,
            [
                "t.xml:4:18: warning: play_and_get_digits takes 9 to 10 arguments, not 7 (hint: play_and_get_digits MIN MAX TRIES TIMEOUT_MS TERMINATORS FILE INVALID_FILE VAR REGEX [DIGIT_TIMEOUT_MS])",
                "t.xml:6:18: warning: read takes 6 arguments, not 4 (hint: read MIN MAX FILE VAR TIMEOUT_MS TERMINATORS)",
            ]
        );
    }

    #[test]
    fn core_applications_are_the_engine_contract() {
        let contract = "answer pre_answer ring_ready playback play_and_get_digits read sleep bridge transfer hangup set export unset log conference echo park moh tone";
        assert_eq!(CORE_APPLICATIONS.join(" "), contract);
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
