//! The menu state machine, as a chain of expansions: the engine runs dialplan actions, a
//! module application answers `app.run` with the actions to run in its place, and every
//! piece of state lives in channel variables the actions `set`. Nothing is kept here
//! between two calls of [`MenuSet::app_run`], so a reload never strands a caller.
//!
//! - `ivr MENU` (from the dialplan) starts a menu: it sets the prompt language, plays
//!   greet-long while `play_and_get_digits` collects the choice into `ivr_digits`, then
//!   runs `ivr_route MENU`.
//! - `ivr_route MENU` reads `ivr_digits` (and the engine's `read_result`, which tells a
//!   timeout from a wrong entry) and answers with the chosen entry's actions, or with the
//!   prompt again (greet-short), counting failures and timeouts in `ivr_failures_MENU` and
//!   `ivr_timeouts_MENU` until their maximum ends the call. `ivr_stack` holds the menus a
//!   sub-menu was entered from (comma-separated, oldest first) for `back` and `top`.

use std::collections::BTreeMap;

use crate::Error;
use crate::menu::{Digits, Menu, MenuAction, MenuSet};

/// The variable `play_and_get_digits` collects the choice into.
pub const DIGITS_VARIABLE: &str = "ivr_digits";
/// The menus a sub-menu was entered from, oldest first.
pub const STACK_VARIABLE: &str = "ivr_stack";
/// The menu prompting right now.
pub const MENU_VARIABLE: &str = "ivr_menu";
/// Set by the engine's `play_and_get_digits`: success, timeout (no digits) or failure.
const RESULT_VARIABLE: &str = "read_result";
/// Sub-menus nest at most this deep; deeper, the oldest parent is forgotten.
pub const MAX_DEPTH: usize = 16;
/// The cause of every hang-up the menu decides (Q.850 cause 16).
pub const HANGUP_CAUSE: &str = "NORMAL_CLEARING";

/// Dialplan actions, in order: (application, data).
pub type Actions = Vec<(String, String)>;

fn failures_variable(menu: &str) -> String {
    format!("ivr_failures_{menu}")
}

fn timeouts_variable(menu: &str) -> String {
    format!("ivr_timeouts_{menu}")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Greeting {
    Long,
    Short,
}

impl MenuSet {
    /// Answers `app.run` for the applications `ivr` and `ivr_route`: the actions the call
    /// runs in their place. `variables` are the call's channel variables.
    pub fn app_run(
        &self,
        app: &str,
        data: &str,
        variables: &BTreeMap<String, String>,
    ) -> Result<Actions, Error> {
        let name = data
            .split_whitespace()
            .next()
            .ok_or_else(|| Error::NoMenuName {
                app: app.to_owned(),
            })?;
        let menu = self.menu(name)?;
        match app {
            "ivr" => Ok(self.start(menu, variables)),
            "ivr_route" => self.route(menu, variables),
            _ => Err(Error::UnknownApplication {
                app: app.to_owned(),
            }),
        }
    }

    fn menu(&self, name: &str) -> Result<&Menu, Error> {
        self.get(name).ok_or_else(|| Error::UnknownMenu {
            menu: name.to_owned(),
        })
    }

    /// `ivr MENU`: a fresh start, forgetting any earlier visit's stack.
    fn start(&self, menu: &Menu, variables: &BTreeMap<String, String>) -> Actions {
        let mut actions = Vec::new();
        if variables.contains_key(STACK_VARIABLE) {
            actions.push(action("unset", STACK_VARIABLE));
        }
        enter(menu, Greeting::Long, variables, &mut actions);
        actions
    }

    fn route(&self, menu: &Menu, variables: &BTreeMap<String, String>) -> Result<Actions, Error> {
        let digits = variables
            .get(DIGITS_VARIABLE)
            .map(String::as_str)
            .filter(|d| !d.is_empty());
        let mut actions = Vec::new();
        let Some(digits) = digits else {
            // The engine sets read_result=failure when digits came but did not match.
            if variables
                .get(RESULT_VARIABLE)
                .is_some_and(|r| r == "failure")
            {
                failure(menu, variables, &mut actions);
            } else {
                timeout(menu, variables, &mut actions);
            }
            return Ok(actions);
        };
        let Some((entry, captures)) = menu
            .entries
            .iter()
            .find_map(|entry| matches(&entry.digits, digits).map(|captures| (entry, captures)))
        else {
            failure(menu, variables, &mut actions);
            return Ok(actions);
        };
        reset_counters(menu, variables, &mut actions);
        match &entry.action {
            MenuAction::ExecApp { app, data } => {
                actions.push(action(app, &substitute(data, &captures)));
            }
            MenuAction::PlaySound(sound) => {
                actions.push(action("playback", sound));
                prompt(menu, Greeting::Short, &mut actions);
            }
            MenuAction::SubMenu(sub) => {
                let sub = self.menu(sub)?;
                let mut stack = stack(variables);
                stack.push(menu.name.as_str());
                if stack.len() > MAX_DEPTH {
                    stack.remove(0);
                }
                actions.push(action(
                    "set",
                    &format!("{STACK_VARIABLE}={}", stack.join(",")),
                ));
                enter(sub, Greeting::Long, variables, &mut actions);
            }
            MenuAction::Back => {
                let mut stack = stack(variables);
                match stack.pop() {
                    Some(parent) => {
                        let parent = self.menu(parent)?;
                        set_stack(&stack, &mut actions);
                        enter(parent, Greeting::Short, variables, &mut actions);
                    }
                    // FreeSWITCH: back in the top menu stays there.
                    None => prompt(menu, Greeting::Short, &mut actions),
                }
            }
            MenuAction::Top => {
                let stack = stack(variables);
                match stack.first() {
                    Some(root) => {
                        let root = self.menu(root)?;
                        actions.push(action("unset", STACK_VARIABLE));
                        enter(root, Greeting::Short, variables, &mut actions);
                    }
                    None => prompt(menu, Greeting::Short, &mut actions),
                }
            }
            MenuAction::Exit => exit(menu, &mut actions),
        }
        Ok(actions)
    }
}

fn action(app: &str, data: &str) -> (String, String) {
    (app.to_owned(), data.to_owned())
}

fn counter(variables: &BTreeMap<String, String>, name: &str) -> u32 {
    variables
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn stack(variables: &BTreeMap<String, String>) -> Vec<&str> {
    variables
        .get(STACK_VARIABLE)
        .map(|s| s.split(',').filter(|m| !m.is_empty()).collect())
        .unwrap_or_default()
}

fn set_stack(stack: &[&str], actions: &mut Actions) {
    if stack.is_empty() {
        actions.push(action("unset", STACK_VARIABLE));
    } else {
        actions.push(action(
            "set",
            &format!("{STACK_VARIABLE}={}", stack.join(",")),
        ));
    }
}

/// Zeroes the menu's counters, only those the call holds non-zero.
fn reset_counters(menu: &Menu, variables: &BTreeMap<String, String>, actions: &mut Actions) {
    for name in [failures_variable(&menu.name), timeouts_variable(&menu.name)] {
        if counter(variables, &name) != 0 {
            actions.push(action("set", &format!("{name}=0")));
        }
    }
}

/// Enters a menu with fresh counters.
fn enter(
    menu: &Menu,
    greeting: Greeting,
    variables: &BTreeMap<String, String>,
    actions: &mut Actions,
) {
    reset_counters(menu, variables, actions);
    prompt(menu, greeting, actions);
}

/// Sets the language, plays the greeting while collecting a choice, then routes it.
fn prompt(menu: &Menu, greeting: Greeting, actions: &mut Actions) {
    let sound = match greeting {
        Greeting::Long => &menu.greet_long,
        Greeting::Short => &menu.greet_short,
    };
    // '#' ends the entry early, unless an entry needs the key itself.
    let terminators = if menu
        .entries
        .iter()
        .any(|e| e.digits.to_string().contains('#'))
    {
        "none"
    } else {
        "#"
    };
    actions.push(action("set", &format!("language={}", menu.language)));
    actions.push(action("set", &format!("{MENU_VARIABLE}={}", menu.name)));
    actions.push(action(
        "play_and_get_digits",
        &format!(
            "1 {} 1 {} {terminators} {sound} silence_stream://0 {DIGITS_VARIABLE} {} {}",
            menu.digit_len,
            menu.timeout_ms,
            digits_regex(menu),
            menu.inter_digit_timeout_ms
        ),
    ));
    actions.push(action("ivr_route", &menu.name));
}

/// One regex accepting exactly the menu's entries, so `play_and_get_digits` tells a wrong
/// entry (read_result=failure) from silence (timeout).
pub fn digits_regex(menu: &Menu) -> String {
    let alternatives: Vec<String> = menu
        .entries
        .iter()
        .map(|e| match &e.digits {
            Digits::Exact(keys) => regex::escape(keys),
            Digits::Pattern(regex) => format!("(?:{})", regex.as_str()),
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// The captures of a match (`$0` the whole entry), or None.
fn matches(digits: &Digits, entered: &str) -> Option<Vec<String>> {
    match digits {
        Digits::Exact(keys) => (keys == entered).then(|| vec![entered.to_owned()]),
        Digits::Pattern(regex) => {
            let captures = regex.captures(entered)?;
            let whole = captures.get(0)?;
            // Like the engine's check: the regex must cover every key pressed.
            (whole.start() == 0 && whole.end() == entered.len()).then(|| {
                captures
                    .iter()
                    .map(|c| c.map_or(String::new(), |c| c.as_str().to_owned()))
                    .collect()
            })
        }
    }
}

/// FreeSWITCH's `$1` in a regex entry's param: the captured keys.
fn substitute(data: &str, captures: &[String]) -> String {
    let mut out = String::with_capacity(data.len());
    let mut chars = data.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$'
            && let Some(n) = chars.peek().and_then(|d| d.to_digit(10))
            && let Some(value) = captures.get(n as usize)
        {
            chars.next();
            out.push_str(value);
        } else {
            out.push(c);
        }
    }
    out
}

/// A wrong entry: the invalid sound, then the menu again, or the end at max-failures.
fn failure(menu: &Menu, variables: &BTreeMap<String, String>, actions: &mut Actions) {
    let name = failures_variable(&menu.name);
    let count = counter(variables, &name) + 1;
    if let Some(sound) = &menu.invalid_sound {
        actions.push(action("playback", sound));
    }
    if count >= menu.max_failures {
        return exit(menu, actions);
    }
    actions.push(action("set", &format!("{name}={count}")));
    prompt(menu, Greeting::Short, actions);
}

/// No digits: the menu again, or the end at max-timeouts.
fn timeout(menu: &Menu, variables: &BTreeMap<String, String>, actions: &mut Actions) {
    let name = timeouts_variable(&menu.name);
    let count = counter(variables, &name) + 1;
    if count >= menu.max_timeouts {
        return exit(menu, actions);
    }
    actions.push(action("set", &format!("{name}={count}")));
    prompt(menu, Greeting::Short, actions);
}

fn exit(menu: &Menu, actions: &mut Actions) {
    if let Some(sound) = &menu.exit_sound {
        actions.push(action("playback", sound));
    }
    actions.push(action("hangup", HANGUP_CAUSE));
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use regex::Regex;

    use super::*;
    use crate::menu::tests::conf_dir;

    fn demo() -> MenuSet {
        MenuSet::load_dir(&conf_dir()).unwrap()
    }

    /// A call as the engine runs it: `set`/`unset` change the variables, module
    /// applications expand in place, `play_and_get_digits` takes the caller's next input
    /// (None: silence) and checks it as the engine does; everything else is logged, and
    /// `hangup` / `transfer` end the menu.
    struct Call<'m> {
        menus: &'m MenuSet,
        variables: BTreeMap<String, String>,
        input: VecDeque<Option<&'static str>>,
        log: Vec<String>,
        ended: bool,
    }

    impl<'m> Call<'m> {
        fn new(menus: &'m MenuSet, input: &[Option<&'static str>]) -> Self {
            Call {
                menus,
                variables: BTreeMap::new(),
                input: input.iter().copied().collect(),
                log: Vec::new(),
                ended: false,
            }
        }

        fn run(&mut self, app: &str, data: &str) -> &[String] {
            let actions = self.menus.app_run(app, data, &self.variables).unwrap();
            for (app, data) in actions {
                assert!(!self.ended, "{app} {data} after the menu ended");
                match app.as_str() {
                    "set" => {
                        let (name, value) = data.split_once('=').unwrap();
                        self.variables.insert(name.into(), value.into());
                    }
                    "unset" => {
                        self.variables.remove(&data);
                    }
                    "play_and_get_digits" => self.collect(&data),
                    "ivr" | "ivr_route" => {
                        self.run(&app, &data);
                    }
                    _ => {
                        self.ended = matches!(app.as_str(), "hangup" | "transfer");
                        self.log.push(format!("{app} {data}"));
                    }
                }
            }
            &self.log
        }

        fn collect(&mut self, data: &str) {
            let args: Vec<&str> = data.split_whitespace().collect();
            let [
                min,
                max,
                "1",
                _timeout,
                _term,
                file,
                "silence_stream://0",
                var,
                regex,
                _digit_timeout,
            ] = args.as_slice()
            else {
                panic!("play_and_get_digits {data}");
            };
            let language = self.variables.get("language").cloned().unwrap_or_default();
            self.log.push(format!("prompt {language}:{file}"));
            self.variables.remove(*var);
            let (min, max): (usize, usize) = (min.parse().unwrap(), max.parse().unwrap());
            let result = match self.input.pop_front().flatten() {
                None => "timeout",
                Some(keys) => {
                    let keys = &keys[..keys.len().min(max)];
                    let valid = Regex::new(regex)
                        .unwrap()
                        .find(keys)
                        .is_some_and(|m| m.start() == 0 && m.end() == keys.len());
                    if valid && keys.len() >= min {
                        self.variables.insert(var.to_string(), keys.into());
                        "success"
                    } else {
                        "failure"
                    }
                }
            };
            self.variables.insert("read_result".into(), result.into());
        }
    }

    const EN_LONG: &str = "prompt en:welcome!press-1-sales!press-2-zh";
    const EN_SHORT: &str = "prompt en:press-1-sales!press-2-zh";

    #[test]
    fn ivr_sets_the_language_and_collects_with_the_menus_own_settings() {
        let menus = demo();
        let actions = menus.app_run("ivr", "demo", &BTreeMap::new()).unwrap();
        let expected: Actions = vec![
            action("set", "language=en"),
            action("set", "ivr_menu=demo"),
            action(
                "play_and_get_digits",
                "1 1 1 5000 # welcome!press-1-sales!press-2-zh silence_stream://0 ivr_digits ^(?:1|2|9|0)$ 2000",
            ),
            action("ivr_route", "demo"),
        ];
        assert_eq!(actions, expected);
        // A stack left from an earlier visit is forgotten, stale counters zeroed.
        let stale: BTreeMap<String, String> =
            [("ivr_stack", "demo"), ("ivr_failures_demo_zh", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let actions = menus.app_run("ivr", "demo_zh", &stale).unwrap();
        assert_eq!(
            actions[..3],
            [
                action("unset", "ivr_stack"),
                action("set", "ivr_failures_demo_zh=0"),
                action("set", "language=zh"),
            ]
        );
    }

    #[test]
    fn the_demo_routes_each_choice_in_english_and_in_chinese() {
        let menus = demo();
        let cases = [
            ("demo", "1", "en", "transfer 7001 XML default"),
            ("demo", "2", "en", "transfer 7002 XML default"),
            ("demo_zh", "1", "zh", "transfer 7001 XML default"),
            ("demo_zh", "2", "zh", "transfer 7002 XML default"),
        ];
        for (menu, keys, language, outcome) in cases {
            let mut call = Call::new(&menus, &[Some(keys)]);
            let log = call.run("ivr", menu);
            assert_eq!(
                log,
                [
                    format!("prompt {language}:welcome!press-1-sales!press-2-zh"),
                    outcome.to_owned()
                ]
            );
        }
        let mut call = Call::new(&menus, &[Some("0")]);
        assert_eq!(
            call.run("ivr", "demo_zh"),
            [
                "prompt zh:welcome!press-1-sales!press-2-zh",
                "playback goodbye",
                "hangup NORMAL_CLEARING",
            ]
        );
        assert_eq!(call.variables["language"], "zh");
    }

    #[test]
    fn wrong_entries_replay_the_invalid_sound_and_end_at_max_failures() {
        let menus = demo();
        let mut call = Call::new(&menus, &[Some("5"), Some("*"), Some("#")]);
        assert_eq!(
            call.run("ivr", "demo"),
            [
                EN_LONG,
                "playback invalid-option",
                EN_SHORT,
                "playback invalid-option",
                EN_SHORT,
                "playback invalid-option",
                "playback goodbye",
                "hangup NORMAL_CLEARING",
            ]
        );
        assert_eq!(call.variables["ivr_failures_demo"], "2");
    }

    #[test]
    fn silence_replays_the_short_greeting_and_ends_at_max_timeouts() {
        let menus = demo();
        let mut call = Call::new(&menus, &[None, None, None]);
        assert_eq!(
            call.run("ivr", "demo"),
            [
                EN_LONG,
                EN_SHORT,
                EN_SHORT,
                "playback goodbye",
                "hangup NORMAL_CLEARING",
            ]
        );
    }

    #[test]
    fn failures_and_timeouts_count_apart_and_a_good_choice_resets_them() {
        let menus = demo();
        // Two of each stay under both maxima.
        let mut call = Call::new(&menus, &[Some("5"), None, Some("5"), None, Some("2")]);
        let log = call.run("ivr", "demo");
        assert_eq!(log.last().unwrap(), "transfer 7002 XML default");
        assert_eq!(log.iter().filter(|l| l.starts_with("prompt")).count(), 5);

        // In the sub-menu: two failures, a good choice (play-sound), two more failures:
        // still prompting, the count started again.
        let input = [
            Some("9"),
            Some("5"),
            Some("5"),
            Some("1"),
            Some("5"),
            Some("5"),
            Some("0"),
        ];
        let mut call = Call::new(&menus, &input);
        assert_eq!(
            call.run("ivr", "demo"),
            [
                EN_LONG,
                "prompt en:enter-digits",
                "playback invalid-option",
                "prompt en:enter-digits",
                "playback invalid-option",
                "prompt en:enter-digits",
                "playback recording-notice",
                "prompt en:enter-digits",
                "playback invalid-option",
                "prompt en:enter-digits",
                "playback invalid-option",
                "prompt en:enter-digits",
                "playback goodbye",
                "hangup NORMAL_CLEARING",
            ]
        );
    }

    #[test]
    fn sub_menu_back_and_top_walk_the_stack() {
        let menus = demo();
        // 9 enters the sub-menu (long greeting), 8 comes back (short), 9 again, 7 to the top.
        let mut call = Call::new(
            &menus,
            &[Some("9"), Some("8"), Some("9"), Some("7"), Some("1")],
        );
        assert_eq!(
            call.run("ivr", "demo"),
            [
                EN_LONG,
                "prompt en:enter-digits",
                EN_SHORT,
                "prompt en:enter-digits",
                EN_SHORT,
                "transfer 7001 XML default",
            ]
        );
        assert!(!call.variables.contains_key("ivr_stack"));

        let text = r#"
[menu.a]
greet-long = "welcome"
greet-short = "busy"
[[menu.a.entry]]
digits = "1"
action = "sub-menu"
param = "b"
[[menu.a.entry]]
digits = "8"
action = "back"
[[menu.a.entry]]
digits = "0"
action = "exec-app"
param = "hangup"
[menu.b]
greet-long = "please-hold"
language = "zh"
[[menu.b.entry]]
digits = "1"
action = "sub-menu"
param = "c"
[[menu.b.entry]]
digits = "8"
action = "back"
[menu.c]
greet-long = "goodbye"
[[menu.c.entry]]
digits = "8"
action = "back"
[[menu.c.entry]]
digits = "7"
action = "top"
"#;
        let menus = MenuSet::from_toml("abc.toml", text).unwrap();
        let input = [
            Some("1"),
            Some("1"),
            Some("8"),
            Some("1"),
            Some("7"),
            Some("1"),
            Some("8"),
            Some("8"),
            Some("0"),
        ];
        let mut call = Call::new(&menus, &input);
        let log = call.run("ivr", "a").to_vec();
        assert_eq!(
            log,
            [
                "prompt en:welcome",
                "prompt zh:please-hold",
                "prompt en:goodbye",
                "prompt zh:please-hold", // back from c: b's short greeting (= its long one)
                "prompt en:goodbye",
                "prompt en:busy", // top from c: a's short greeting
                "prompt zh:please-hold",
                "prompt en:busy", // back from b
                "prompt en:busy", // back in the top menu stays there
                "hangup ",
            ]
        );
        assert!(!call.variables.contains_key("ivr_stack"));
    }

    #[test]
    fn nested_sub_menus_keep_the_newest_parents() {
        let text = "[menu.loop]\ngreet-long = \"welcome\"\n[[menu.loop.entry]]\ndigits = \"1\"\naction = \"sub-menu\"\nparam = \"loop\"\n";
        let menus = MenuSet::from_toml("loop.toml", text).unwrap();
        let input = vec![Some("1"); MAX_DEPTH + 4];
        let mut call = Call::new(&menus, &input);
        call.run("ivr", "loop");
        assert_eq!(call.variables["ivr_stack"].split(',').count(), MAX_DEPTH);
    }

    #[test]
    fn a_regex_entry_passes_its_captures_and_a_hash_entry_turns_off_the_terminator() {
        let text = r##"
[menu.ext]
greet-long = "enter-digits"
digit-len = 4
[[menu.ext.entry]]
digits = "/^(10[01][0-9])$/"
action = "exec-app"
param = "transfer $1 XML features"
[[menu.ext.entry]]
digits = "#"
action = "exit"
"##;
        let menus = MenuSet::from_toml("ext.toml", text).unwrap();
        let actions = menus.app_run("ivr", "ext", &BTreeMap::new()).unwrap();
        assert_eq!(
            actions[2].1,
            r"1 4 1 10000 none enter-digits silence_stream://0 ivr_digits ^(?:(?:^(10[01][0-9])$)|\#)$ 2000"
        );
        let mut call = Call::new(&menus, &[Some("1099"), Some("1005")]);
        assert_eq!(
            call.run("ivr", "ext"),
            [
                "prompt en:enter-digits",
                "prompt en:enter-digits",
                "transfer 1005 XML features",
            ]
        );
        let mut call = Call::new(&menus, &[Some("#")]);
        assert_eq!(
            call.run("ivr", "ext"),
            ["prompt en:enter-digits", "hangup NORMAL_CLEARING"]
        );
    }

    #[test]
    fn digits_no_entry_takes_count_as_a_failure() {
        // What an engine that does not check the regex would hand over.
        let menus = demo();
        let variables: BTreeMap<String, String> = [
            ("ivr_digits".to_owned(), "7".to_owned()),
            ("read_result".to_owned(), "success".to_owned()),
        ]
        .into();
        let actions = menus.app_run("ivr_route", "demo", &variables).unwrap();
        assert_eq!(
            actions[..2],
            [
                action("playback", "invalid-option"),
                action("set", "ivr_failures_demo=1")
            ]
        );
    }

    #[test]
    fn bad_application_data_is_an_error() {
        let menus = demo();
        let none = BTreeMap::new();
        assert_eq!(
            menus
                .app_run("ivr", "nowhere", &none)
                .unwrap_err()
                .to_string(),
            "unknown IVR menu \"nowhere\""
        );
        assert_eq!(
            menus
                .app_run("ivr_route", "  ", &none)
                .unwrap_err()
                .to_string(),
            "ivr_route: which menu? (usage: ivr_route MENU)"
        );
        assert_eq!(
            menus
                .app_run("ivr_play", "demo", &none)
                .unwrap_err()
                .to_string(),
            "mod_ivr runs ivr and ivr_route, not \"ivr_play\""
        );
        // A stack naming a menu a reload removed.
        let gone: BTreeMap<String, String> = [
            ("ivr_stack".to_owned(), "old".to_owned()),
            ("ivr_digits".to_owned(), "8".to_owned()),
        ]
        .into();
        assert!(matches!(
            menus.app_run("ivr_route", "demo_more", &gone),
            Err(Error::UnknownMenu { menu }) if menu == "old"
        ));
    }
}
