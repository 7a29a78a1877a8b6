//! IVR menus as FreeSWITCH's `ivr.conf` defines them, and the checks both front ends share.
//!
//! The TOML ([`crate::toml_menu`]) and XML ([`crate::xml_menu`]) front ends read what was
//! written into a [`RawMenu`]; [`MenuSetBuilder`] turns raw menus into [`Menu`]s, collecting
//! every problem as a [`Diagnostic`] at the file:line:column an engineer wrote it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use regex::Regex;

use crate::Error;

/// The prompt languages shipped under `sounds/` (`sounds/en`, `sounds/zh`).
pub const LANGUAGES: [&str; 2] = ["en", "zh"];

/// FreeSWITCH's defaults (`switch_ivr_menu.c`): 10 s to start, 3 tries of each kind.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_INTER_DIGIT_TIMEOUT_MS: u64 = 2_000;
pub const DEFAULT_MAX_FAILURES: u32 = 3;
pub const DEFAULT_MAX_TIMEOUTS: u32 = 3;

/// Longest digit-len accepted: the engine collects at most 128 digits.
const MAX_DIGIT_LEN: u64 = 128;

/// Menu files are reported the way dialplan files are: file:line:column, severity, message,
/// hint (the dialplan crate's diagnostics).
pub use switchyard_dialplan::ir::{Diagnostic, Location, Severity};

/// One menu, ready to run.
#[derive(Clone, Debug)]
pub struct Menu {
    pub name: String,
    /// The prompt language (`sounds/<language>/`), set on the channel before each prompt.
    pub language: String,
    /// Played the first time the menu is entered.
    pub greet_long: String,
    /// Played when the menu is prompted again (retry, after play-sound, back, top).
    pub greet_short: String,
    pub invalid_sound: Option<String>,
    pub exit_sound: Option<String>,
    /// How long to wait for the first digit after the greeting.
    pub timeout_ms: u64,
    pub inter_digit_timeout_ms: u64,
    /// The failure (a wrong entry) that reaches this count ends the call.
    pub max_failures: u32,
    /// The timeout (no digits) that reaches this count ends the call.
    pub max_timeouts: u32,
    /// The most digits collected for one choice.
    pub digit_len: usize,
    /// In the order written: the first entry that matches wins.
    pub entries: Vec<Entry>,
    pub location: Location,
}

/// Two menus are equal when they behave the same; where they were written does not count.
impl PartialEq for Menu {
    fn eq(&self, other: &Menu) -> bool {
        self.name == other.name
            && self.language == other.language
            && self.greet_long == other.greet_long
            && self.greet_short == other.greet_short
            && self.invalid_sound == other.invalid_sound
            && self.exit_sound == other.exit_sound
            && self.timeout_ms == other.timeout_ms
            && self.inter_digit_timeout_ms == other.inter_digit_timeout_ms
            && self.max_failures == other.max_failures
            && self.max_timeouts == other.max_timeouts
            && self.digit_len == other.digit_len
            && self.entries == other.entries
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub digits: Digits,
    pub action: MenuAction,
    pub location: Location,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.digits == other.digits && self.action == other.action
    }
}

/// What a caller presses to choose an entry.
#[derive(Clone, Debug)]
pub enum Digits {
    /// Exactly these keys, e.g. `1` or `*9`.
    Exact(String),
    /// FreeSWITCH's `/regex/` form; its captures are `$1`.. in an exec-app param.
    Pattern(Regex),
}

impl PartialEq for Digits {
    fn eq(&self, other: &Digits) -> bool {
        match (self, other) {
            (Digits::Exact(a), Digits::Exact(b)) => a == b,
            (Digits::Pattern(a), Digits::Pattern(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl fmt::Display for Digits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digits::Exact(keys) => f.write_str(keys),
            Digits::Pattern(regex) => write!(f, "/{}/", regex.as_str()),
        }
    }
}

/// FreeSWITCH's `menu-*` entry actions, the ones we run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MenuAction {
    /// `menu-exec-app`: leave the menu and run this dialplan application.
    ExecApp { app: String, data: String },
    /// `menu-play-sound`: play the file, then prompt the menu again.
    PlaySound(String),
    /// `menu-sub`: enter another menu; `back` returns here.
    SubMenu(String),
    /// `menu-back`: return to the menu that entered this one.
    Back,
    /// `menu-top`: return to the first menu of the call.
    Top,
    /// `menu-exit`: play the exit sound and hang up.
    Exit,
}

/// The action names accepted, in their short form (`menu-` may prefix any of them).
pub const ACTIONS: [&str; 6] = ["exec-app", "play-sound", "sub-menu", "back", "top", "exit"];

/// A value as written, with where.
#[derive(Clone, Debug)]
pub(crate) struct Written<T> {
    pub value: T,
    pub location: Location,
}

/// A menu as a front end read it, before the shared checks.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawMenu {
    pub name: Option<Written<String>>,
    pub language: Option<Written<String>>,
    pub greet_long: Option<Written<String>>,
    pub greet_short: Option<Written<String>>,
    pub invalid_sound: Option<Written<String>>,
    pub exit_sound: Option<Written<String>>,
    pub timeout: Option<Written<u64>>,
    pub inter_digit_timeout: Option<Written<u64>>,
    pub max_failures: Option<Written<u64>>,
    pub max_timeouts: Option<Written<u64>>,
    pub digit_len: Option<Written<u64>>,
    pub entries: Vec<RawEntry>,
    pub location: Option<Location>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawEntry {
    pub digits: Option<Written<String>>,
    pub action: Option<Written<String>>,
    pub param: Option<Written<String>>,
    pub location: Location,
}

/// The menus of a configuration, by name.
#[derive(Clone, Debug, Default)]
pub struct MenuSet {
    pub menus: BTreeMap<String, Menu>,
    /// What compiled but looks wrong (FreeSWITCH attributes we ignore, ...).
    pub warnings: Vec<Diagnostic>,
}

impl MenuSet {
    /// The menus of one TOML document.
    pub fn from_toml(file: &str, text: &str) -> Result<MenuSet, Error> {
        let mut builder = MenuSetBuilder::default();
        builder.add_toml(file, text);
        builder.finish()
    }

    /// The menus of one FreeSWITCH-style XML document.
    pub fn from_xml(file: &str, text: &str) -> Result<MenuSet, Error> {
        let mut builder = MenuSetBuilder::default();
        builder.add_xml(file, text);
        builder.finish()
    }

    /// Every `*.toml` and `*.xml` file of `dir`, in file-name order. A menu may be defined
    /// in several files only if every definition is the same (so one menu can ship in both
    /// forms); a different one is an error naming both places.
    pub fn load_dir(dir: &Path) -> Result<MenuSet, Error> {
        let read = std::fs::read_dir(dir).map_err(|e| Error::ReadDir {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut files: Vec<_> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("toml" | "xml"))
            })
            .collect();
        files.sort();
        let mut builder = MenuSetBuilder::default();
        for path in files {
            let file = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) if path.extension().is_some_and(|e| e == "xml") => {
                    builder.add_xml(&file, &text)
                }
                Ok(text) => builder.add_toml(&file, &text),
                Err(e) => builder.error(location(&file, 1, 1), format!("cannot read: {e}"), None),
            }
        }
        builder.finish()
    }

    pub fn get(&self, name: &str) -> Option<&Menu> {
        self.menus.get(name)
    }
}

pub(crate) fn location(file: &str, line: u32, column: u32) -> Location {
    Location {
        file: Arc::from(file),
        line,
        column,
    }
}

/// Collects menus from documents of either form, then checks what spans documents
/// (sub-menus that must exist).
#[derive(Default)]
pub struct MenuSetBuilder {
    menus: BTreeMap<String, Menu>,
    diagnostics: Vec<Diagnostic>,
    /// Every menu name written, including menus refused for other errors, so one error
    /// does not cascade into "not defined" errors elsewhere.
    named: std::collections::BTreeSet<String>,
    /// Every sub-menu entry that read well (menu, sub-menu, where), checked in `finish`.
    references: Vec<(String, String, Location)>,
}

impl MenuSetBuilder {
    pub fn add_toml(&mut self, file: &str, text: &str) {
        let raw = crate::toml_menu::read(file, text, &mut self.diagnostics);
        self.add_raw(raw);
    }

    pub fn add_xml(&mut self, file: &str, text: &str) {
        let raw = crate::xml_menu::read(file, text, &mut self.diagnostics);
        self.add_raw(raw);
    }

    fn add_raw(&mut self, raw: Vec<RawMenu>) {
        for raw in raw {
            if let Some(menu) = self.build(raw) {
                match self.menus.get(&menu.name) {
                    Some(first) if *first == menu => {}
                    Some(first) => {
                        let hint = format!("first defined at {}", first.location);
                        self.error(
                            menu.location.clone(),
                            format!("menu {:?} is defined twice, differently", menu.name),
                            Some(hint),
                        );
                    }
                    None => {
                        self.menus.insert(menu.name.clone(), menu);
                    }
                }
            }
        }
    }

    pub(crate) fn error(&mut self, location: Location, message: String, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            location,
            message,
            hint,
        });
    }

    /// The menus, or every error found (warnings too) in source order.
    pub fn finish(mut self) -> Result<MenuSet, Error> {
        let missing: Vec<(String, String, Location)> = std::mem::take(&mut self.references)
            .into_iter()
            .filter(|(_, sub, _)| !self.named.contains(sub))
            .collect();
        for (menu, sub, at) in missing {
            let known: Vec<&str> = self.named.iter().map(String::as_str).collect();
            self.error(
                at,
                format!("menu {menu:?}: sub-menu {sub:?} is not defined"),
                Some(format!("defined menus: {}", known.join(", "))),
            );
        }
        self.diagnostics.sort_by(|a, b| {
            (&a.location.file, a.location.line, a.location.column).cmp(&(
                &b.location.file,
                b.location.line,
                b.location.column,
            ))
        });
        if self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
        {
            return Err(Error::Config {
                diagnostics: self.diagnostics,
            });
        }
        Ok(MenuSet {
            menus: self.menus,
            warnings: self.diagnostics,
        })
    }

    /// The shared checks: one raw menu into a [`Menu`], or errors.
    fn build(&mut self, raw: RawMenu) -> Option<Menu> {
        let before = self.error_count();
        let menu_at = raw.location.clone().unwrap_or_else(|| location("?", 1, 1));
        if let Some(name) = &raw.name {
            self.named.insert(name.value.clone());
        }
        let name = match raw.name {
            Some(name) if valid_name(&name.value) => name.value,
            Some(name) => {
                self.error(
                    name.location,
                    format!("bad menu name {:?}", name.value),
                    Some(
                        "use letters, digits, '_' and '-': the name is part of variable names"
                            .into(),
                    ),
                );
                String::new()
            }
            None => {
                self.error(menu_at.clone(), "menu has no name".into(), None);
                String::new()
            }
        };
        let language = match raw.language {
            None => "en".to_owned(),
            Some(l) if LANGUAGES.contains(&l.value.as_str()) => l.value,
            Some(l) => {
                self.error(
                    l.location,
                    format!("unknown language {:?}", l.value),
                    Some(format!("prompts exist for: {}", LANGUAGES.join(", "))),
                );
                String::new()
            }
        };
        let greet_long = match raw.greet_long {
            Some(sound) => self.sound("greet-long", sound),
            None => {
                self.error(
                    menu_at.clone(),
                    format!("menu {name:?} has no greet-long"),
                    Some("greet-long is the prompt played when the menu starts".into()),
                );
                String::new()
            }
        };
        let greet_short = raw
            .greet_short
            .map(|s| self.sound("greet-short", s))
            .unwrap_or_else(|| greet_long.clone());
        let invalid_sound = raw.invalid_sound.map(|s| self.sound("invalid-sound", s));
        let exit_sound = raw.exit_sound.map(|s| self.sound("exit-sound", s));
        let timeout_ms = self.number("timeout", raw.timeout, 1, 600_000, DEFAULT_TIMEOUT_MS);
        let inter_digit_timeout_ms = self.number(
            "inter-digit-timeout",
            raw.inter_digit_timeout,
            1,
            600_000,
            DEFAULT_INTER_DIGIT_TIMEOUT_MS,
        );
        let max_failures = self.number(
            "max-failures",
            raw.max_failures,
            1,
            100,
            DEFAULT_MAX_FAILURES.into(),
        ) as u32;
        let max_timeouts = self.number(
            "max-timeouts",
            raw.max_timeouts,
            1,
            100,
            DEFAULT_MAX_TIMEOUTS.into(),
        ) as u32;
        let explicit_len = raw.digit_len.clone();
        let mut entries: Vec<Entry> = Vec::new();
        for raw_entry in raw.entries {
            if let Some(entry) = self.entry(raw_entry) {
                if let MenuAction::SubMenu(sub) = &entry.action {
                    self.references
                        .push((name.clone(), sub.clone(), entry.location.clone()));
                }
                if let Some(first) = entries.iter().find(|e| e.digits == entry.digits) {
                    let hint = format!("first at {}", first.location);
                    self.error(
                        entry.location.clone(),
                        format!("menu {name:?}: digits {} are used twice", entry.digits),
                        Some(hint),
                    );
                } else {
                    entries.push(entry);
                }
            }
        }
        let longest = entries
            .iter()
            .filter_map(|e| match &e.digits {
                Digits::Exact(keys) => Some(keys.len() as u64),
                Digits::Pattern(_) => None,
            })
            .max()
            .unwrap_or(1);
        let digit_len = match explicit_len {
            Some(len) => {
                let value = self.number("digit-len", Some(len.clone()), 1, MAX_DIGIT_LEN, 1);
                for entry in &entries {
                    if let Digits::Exact(keys) = &entry.digits
                        && keys.len() as u64 > value
                        && value == len.value
                    {
                        self.error(
                            entry.location.clone(),
                            format!(
                                "menu {name:?}: digits {keys} can never be dialled: digit-len is {value}"
                            ),
                            Some("raise digit-len or shorten the digits".into()),
                        );
                    }
                }
                value
            }
            None => {
                // The keys a regex accepts are unknown: only digit-len can make room.
                if let Some(entry) = entries
                    .iter()
                    .find(|e| matches!(e.digits, Digits::Pattern(_)))
                {
                    self.diagnostics.push(warning(
                        entry.location.clone(),
                        format!("menu {name:?}: digit-len is not set, so {} is tried on at most {longest} key(s)", entry.digits),
                        Some("set digit-len to the longest entry the regex accepts".into()),
                    ));
                }
                longest
            }
        };
        if entries.is_empty() && self.error_count() == before {
            self.error(
                menu_at.clone(),
                format!("menu {name:?} has no entries"),
                Some("add [[menu.NAME.entry]] tables (TOML) or <entry/> elements (XML)".into()),
            );
        }
        (self.error_count() == before).then(|| Menu {
            name,
            language,
            greet_long,
            greet_short,
            invalid_sound,
            exit_sound,
            timeout_ms,
            inter_digit_timeout_ms,
            max_failures,
            max_timeouts,
            digit_len: digit_len as usize,
            entries,
            location: menu_at,
        })
    }

    fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// A prompt: one argument of `play_and_get_digits`, so no whitespace.
    fn sound(&mut self, what: &str, sound: Written<String>) -> String {
        if sound.value.is_empty() || sound.value.contains(char::is_whitespace) {
            self.error(
                sound.location,
                format!("{what} {:?} must be one word", sound.value),
                Some("a prompt name of sounds/<language>/ (several joined with '!'), a tone_stream:// or an absolute .wav path".into()),
            );
        }
        sound.value
    }

    fn number(
        &mut self,
        what: &str,
        value: Option<Written<u64>>,
        min: u64,
        max: u64,
        default: u64,
    ) -> u64 {
        match value {
            None => default,
            Some(v) if (min..=max).contains(&v.value) => v.value,
            Some(v) => {
                self.error(
                    v.location,
                    format!("{what} {} is out of range", v.value),
                    Some(format!("{what} goes from {min} to {max}")),
                );
                default
            }
        }
    }

    fn entry(&mut self, raw: RawEntry) -> Option<Entry> {
        let before = self.error_count();
        let digits = match raw.digits {
            None => {
                self.error(raw.location.clone(), "entry has no digits".into(), None);
                None
            }
            Some(d) => self.digits(d),
        };
        let action = match raw.action {
            None => {
                self.error(
                    raw.location.clone(),
                    "entry has no action".into(),
                    Some(format!("one of: {}", ACTIONS.join(", "))),
                );
                None
            }
            Some(action) => self.action(action, raw.param, &raw.location),
        };
        match (digits, action) {
            (Some(digits), Some(action)) if self.error_count() == before => Some(Entry {
                digits,
                action,
                location: raw.location,
            }),
            _ => None,
        }
    }

    fn digits(&mut self, digits: Written<String>) -> Option<Digits> {
        let text = digits.value.as_str();
        if let Some(pattern) = text.strip_prefix('/').and_then(|t| t.strip_suffix('/')) {
            if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                self.error(
                    digits.location,
                    format!("digits regex {text:?} is empty or holds whitespace"),
                    Some("the regex becomes one argument of play_and_get_digits".into()),
                );
                return None;
            }
            return match Regex::new(pattern) {
                Ok(regex) => Some(Digits::Pattern(regex)),
                Err(e) => {
                    let reason = e.to_string();
                    let last = reason.lines().last().unwrap_or_default().trim().to_owned();
                    self.error(
                        digits.location,
                        format!("bad digits regex {text:?}: {last}"),
                        None,
                    );
                    None
                }
            };
        }
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            self.error(
                digits.location,
                format!("bad digits {text:?}"),
                Some("keys 0-9, * and #, or a /regex/".into()),
            );
            return None;
        }
        Some(Digits::Exact(text.to_owned()))
    }

    fn action(
        &mut self,
        action: Written<String>,
        param: Option<Written<String>>,
        entry_at: &Location,
    ) -> Option<MenuAction> {
        let name = action.value.strip_prefix("menu-").unwrap_or(&action.value);
        let param_text = param.as_ref().map(|p| p.value.trim()).unwrap_or_default();
        let param_at = param.as_ref().map_or(entry_at, |p| &p.location).clone();
        let needs_param = |builder: &mut Self, what: &str| {
            if param_text.is_empty() {
                builder.error(
                    param_at.clone(),
                    format!("{name} needs a param: {what}"),
                    None,
                );
                false
            } else {
                true
            }
        };
        match name {
            "exec-app" => needs_param(self, "the application and its data").then(|| {
                let (app, data) = param_text
                    .split_once(char::is_whitespace)
                    .map_or((param_text, ""), |(a, d)| (a, d.trim()));
                MenuAction::ExecApp {
                    app: app.to_owned(),
                    data: data.to_owned(),
                }
            }),
            "play-sound" => needs_param(self, "the sound to play")
                .then(|| MenuAction::PlaySound(param_text.to_owned())),
            "sub-menu" | "sub" => needs_param(self, "the menu to enter")
                .then(|| MenuAction::SubMenu(param_text.to_owned())),
            "back" => Some(MenuAction::Back),
            "top" => Some(MenuAction::Top),
            "exit" => Some(MenuAction::Exit),
            _ => {
                self.error(
                    action.location,
                    format!("unknown action {:?}", action.value),
                    Some(format!(
                        "one of: {} (menu- may prefix them)",
                        ACTIONS.join(", ")
                    )),
                );
                None
            }
        }
    }
}

/// Menu names become parts of variable names and action arguments.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(crate) fn warning(location: Location, message: String, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        location,
        message,
        hint,
    }
}

pub(crate) fn error(location: Location, message: String, hint: Option<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        location,
        message,
        hint,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The conf/ivr shipped with the daemon.
    pub(crate) fn conf_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/ivr")
    }

    fn errors(result: Result<MenuSet, Error>) -> Vec<String> {
        match result {
            Ok(set) => panic!("expected errors, got menus {:?}", set.menus.keys()),
            Err(Error::Config { diagnostics }) => {
                diagnostics.iter().map(ToString::to_string).collect()
            }
            Err(other) => panic!("expected config errors, got {other}"),
        }
    }

    #[test]
    fn shipped_toml_and_xml_define_the_same_demo() {
        let dir = conf_dir();
        let toml_text = std::fs::read_to_string(dir.join("demo.toml")).unwrap();
        let xml_text = std::fs::read_to_string(dir.join("demo.xml")).unwrap();
        let from_toml = MenuSet::from_toml("demo.toml", &toml_text).unwrap();
        let from_xml = MenuSet::from_xml("demo.xml", &xml_text).unwrap();
        assert_eq!(
            from_toml.menus.keys().collect::<Vec<_>>(),
            ["demo", "demo_more", "demo_more_zh", "demo_zh"]
        );
        assert_eq!(from_toml.menus, from_xml.menus);
        assert!(from_toml.warnings.is_empty() && from_xml.warnings.is_empty());
        // Loading the directory reads both; identical definitions are accepted.
        let loaded = MenuSet::load_dir(&dir).unwrap();
        assert_eq!(loaded.menus, from_toml.menus);

        let demo = &from_toml.menus["demo"];
        assert_eq!(demo.language, "en");
        assert_eq!(demo.greet_long, "welcome!press-1-sales!press-2-zh");
        assert_eq!(demo.greet_short, "press-1-sales!press-2-zh");
        assert_eq!(demo.invalid_sound.as_deref(), Some("invalid-option"));
        assert_eq!(demo.exit_sound.as_deref(), Some("goodbye"));
        assert_eq!((demo.timeout_ms, demo.inter_digit_timeout_ms), (5000, 2000));
        assert_eq!(
            (demo.max_failures, demo.max_timeouts, demo.digit_len),
            (3, 3, 1)
        );
        let entries: Vec<(String, &MenuAction)> = demo
            .entries
            .iter()
            .map(|e| (e.digits.to_string(), &e.action))
            .collect();
        assert_eq!(
            entries,
            [
                (
                    "1".to_owned(),
                    &MenuAction::ExecApp {
                        app: "transfer".into(),
                        data: "7001 XML default".into()
                    }
                ),
                (
                    "2".to_owned(),
                    &MenuAction::ExecApp {
                        app: "transfer".into(),
                        data: "7002 XML default".into()
                    }
                ),
                ("9".to_owned(), &MenuAction::SubMenu("demo_more".into())),
                ("0".to_owned(), &MenuAction::Exit),
            ]
        );
        assert_eq!(from_toml.menus["demo_zh"].language, "zh");
        assert_eq!(demo.location.line, 7);
        assert_eq!(demo.entries[1].location.line, 24);
        assert_eq!(from_xml.menus["demo"].entries[0].location.line, 17);
    }

    #[test]
    fn every_shipped_prompt_exists_in_its_language() {
        let sounds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sounds");
        let set = MenuSet::load_dir(&conf_dir()).unwrap();
        let mut checked = 0;
        for menu in set.menus.values() {
            let mut sounds_of_menu = vec![&menu.greet_long, &menu.greet_short];
            sounds_of_menu.extend(menu.invalid_sound.iter().chain(&menu.exit_sound));
            for entry in &menu.entries {
                if let MenuAction::PlaySound(sound) = &entry.action {
                    sounds_of_menu.push(sound);
                }
            }
            for prompt in sounds_of_menu.iter().flat_map(|s| s.split('!')) {
                let file = sounds
                    .join(&menu.language)
                    .join("8000")
                    .join(format!("{prompt}.wav"));
                assert!(
                    file.is_file(),
                    "menu {}: {} is missing",
                    menu.name,
                    file.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} prompts checked");
    }

    #[test]
    fn a_regex_entry_without_digit_len_is_warned_about() {
        let text = "[menu.m]\ngreet-long = \"welcome\"\n[[menu.m.entry]]\ndigits = \"/^1[0-9]{3}$/\"\naction = \"exit\"\n";
        let set = MenuSet::from_toml("m.toml", text).unwrap();
        assert_eq!(
            set.warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "m.toml:3:1: warning: menu \"m\": digit-len is not set, so /^1[0-9]{3}$/ is tried on at most 1 key(s) (hint: set digit-len to the longest entry the regex accepts)"
            ]
        );
        let with_len = text.replace("[[menu", "digit-len = 4\n[[menu");
        assert!(
            MenuSet::from_toml("m.toml", &with_len)
                .unwrap()
                .warnings
                .is_empty()
        );
    }

    #[test]
    fn fresh_defaults_are_freeswitchs() {
        let text = "[menu.m]\ngreet-long = \"welcome\"\n[[menu.m.entry]]\ndigits = \"1\"\naction = \"exit\"\n";
        let set = MenuSet::from_toml("m.toml", text).unwrap();
        let m = &set.menus["m"];
        assert_eq!(m.language, "en");
        assert_eq!(
            m.greet_short, "welcome",
            "greet-short falls back to greet-long"
        );
        assert_eq!((m.timeout_ms, m.inter_digit_timeout_ms), (10_000, 2_000));
        assert_eq!((m.max_failures, m.max_timeouts), (3, 3));
        assert_eq!(m.digit_len, 1);
        assert_eq!(
            (m.invalid_sound.as_ref(), m.exit_sound.as_ref()),
            (None, None)
        );
    }

    #[test]
    fn toml_takes_snake_case_keys_and_menu_prefixed_actions() {
        let text = "[menu.m]\ngreet_long = \"welcome\"\nmax_failures = 5\ninter_digit_timeout = 900\n\
                    [[menu.m.entry]]\ndigits = \"12\"\naction = \"menu-play-sound\"\nparam = \"busy\"\n";
        let set = MenuSet::from_toml("m.toml", text).unwrap();
        let m = &set.menus["m"];
        assert_eq!((m.max_failures, m.inter_digit_timeout_ms), (5, 900));
        assert_eq!(m.entries[0].action, MenuAction::PlaySound("busy".into()));
        assert_eq!(m.digit_len, 2, "digit-len defaults to the longest entry");
    }

    #[test]
    fn bad_menus_are_reported_at_their_lines_all_at_once() {
        let text = r#"[menu.main]
greet-long = "welcome"
[[menu.main.entry]]
digits = "1"
action = "say-phrase"
[[menu.main.entry]]
digits = "2"
action = "sub-menu"
param = "nowhere"
[[menu.main.entry]]
digits = "/^(1[0-9]$/"
action = "exit"
[[menu.main.entry]]
digits = "3"
action = "exit"
[[menu.main.entry]]
digits = "3"
action = "top"
"#;
        assert_eq!(
            errors(MenuSet::from_toml("bad.toml", text)),
            [
                "bad.toml:5:10: error: unknown action \"say-phrase\" (hint: one of: exec-app, play-sound, sub-menu, back, top, exit (menu- may prefix them))",
                "bad.toml:6:1: error: menu \"main\": sub-menu \"nowhere\" is not defined (hint: defined menus: main)",
                "bad.toml:11:10: error: bad digits regex \"/^(1[0-9]$/\": error: unclosed group",
                "bad.toml:16:1: error: menu \"main\": digits 3 are used twice (hint: first at bad.toml:13:1)",
            ]
        );
    }

    #[test]
    fn each_bad_value_names_its_place() {
        let cases: [(&str, &str); 12] = [
            (
                "language = \"fr\"",
                "m.toml:3:12: error: unknown language \"fr\" (hint: prompts exist for: en, zh)",
            ),
            (
                "timeout = 0",
                "m.toml:3:11: error: timeout 0 is out of range (hint: timeout goes from 1 to 600000)",
            ),
            (
                "max-failures = 0",
                "m.toml:3:16: error: max-failures 0 is out of range (hint: max-failures goes from 1 to 100)",
            ),
            (
                "digit-len = 200",
                "m.toml:3:13: error: digit-len 200 is out of range (hint: digit-len goes from 1 to 128)",
            ),
            (
                "exit-sound = \"good bye\"",
                "m.toml:3:14: error: exit-sound \"good bye\" must be one word (hint: a prompt name of sounds/<language>/ (several joined with '!'), a tone_stream:// or an absolute .wav path)",
            ),
            (
                "color = \"red\"",
                "m.toml:3:1: error: unknown field `color`, expected one of `language`, `greet-long`, `greet_long`, `greet-short`, `greet_short`, `invalid-sound`, `invalid_sound`, `exit-sound`, `exit_sound`, `timeout`, `inter-digit-timeout`, `inter_digit_timeout`, `max-failures`, `max_failures`, `max-timeouts`, `max_timeouts`, `digit-len`, `digit_len`, `entry`",
            ),
            (
                "timeout = \"5s\"",
                "m.toml:3:11: error: invalid type: string \"5s\", expected u64",
            ),
            (
                "[[menu.m.entry]]\ndigits = \"12\"\naction = \"exit\"",
                "m.toml:8:1: error: menu \"m\": digits 12 can never be dialled: digit-len is 1 (hint: raise digit-len or shorten the digits)",
            ),
            (
                "[[menu.m.entry]]\ndigits = \"1a\"\naction = \"exit\"",
                "m.toml:9:10: error: bad digits \"1a\" (hint: keys 0-9, * and #, or a /regex/)",
            ),
            (
                "[[menu.m.entry]]\ndigits = \"5\"\naction = \"exec-app\"",
                "m.toml:8:1: error: exec-app needs a param: the application and its data",
            ),
            (
                "[[menu.m.entry]]\ndigits = \"/1 2/\"\naction = \"exit\"",
                "m.toml:9:10: error: digits regex \"/1 2/\" is empty or holds whitespace (hint: the regex becomes one argument of play_and_get_digits)",
            ),
            (
                "[[menu.m.entry]]\naction = \"exit\"",
                "m.toml:8:1: error: entry has no digits",
            ),
        ];
        for (line, expected) in cases {
            let digit_len = if line.starts_with("digit-len") {
                ""
            } else {
                "digit-len = 1\n"
            };
            let text = format!(
                "[menu.m]\ngreet-long = \"welcome\"\n{}\n{digit_len}[[menu.m.entry]]\ndigits = \"1\"\naction = \"exit\"\n",
                if line.starts_with("[[") { "" } else { line }
            );
            let text = if line.starts_with("[[") {
                format!("{text}{line}\n")
            } else {
                text
            };
            assert_eq!(
                errors(MenuSet::from_toml("m.toml", &text)),
                [expected],
                "for {line}"
            );
        }
    }

    #[test]
    fn a_menu_without_greeting_entries_or_a_good_name_is_refused() {
        assert_eq!(
            errors(MenuSet::from_toml(
                "m.toml",
                "[menu.m]\nlanguage = \"en\"\n"
            )),
            [
                "m.toml:1:7: error: menu \"m\" has no greet-long (hint: greet-long is the prompt played when the menu starts)",
            ]
        );
        assert_eq!(
            errors(MenuSet::from_toml(
                "m.toml",
                "[menu.m]\ngreet-long = \"welcome\"\n"
            )),
            [
                "m.toml:1:7: error: menu \"m\" has no entries (hint: add [[menu.NAME.entry]] tables (TOML) or <entry/> elements (XML))"
            ]
        );
        assert_eq!(
            errors(MenuSet::from_toml(
                "m.toml",
                "[menu.\"a b\"]\ngreet-long = \"welcome\"\n[[menu.\"a b\".entry]]\ndigits = \"1\"\naction = \"exit\"\n"
            )),
            [
                "m.toml:1:7: error: bad menu name \"a b\" (hint: use letters, digits, '_' and '-': the name is part of variable names)"
            ]
        );
        assert_eq!(
            errors(MenuSet::from_toml("m.toml", "[menu.m\ngreet-long = 1\n")),
            ["m.toml:1:8: error: unclosed table, expected `]`"]
        );
    }

    #[test]
    fn xml_errors_and_ignored_freeswitch_attributes() {
        let text = r##"<configuration name="ivr.conf">
  <menus>
    <menu name="main" greet-long="welcome" confirm-key="#" timeout="5s" colour="red">
      <entry action="menu-say-phrase" digits="1" param="x"/>
      <entry action="menu-exit" digits="2"/>
      <option/>
    </menu>
  </menus>
</configuration>
"##;
        assert_eq!(
            errors(MenuSet::from_xml("ivr.xml", text)),
            [
                "ivr.xml:3:44: warning: attribute \"confirm-key\" is ignored",
                "ivr.xml:3:69: error: timeout \"5s\" is not a number (hint: a whole number (milliseconds for timeouts))",
                "ivr.xml:3:73: error: unknown attribute \"colour\" on <menu> (hint: accepted: name, language, greet-long, greet-short, invalid-sound, exit-sound, timeout, inter-digit-timeout, max-failures, max-timeouts, digit-len)",
                "ivr.xml:4:22: error: unknown action \"menu-say-phrase\" (hint: one of: exec-app, play-sound, sub-menu, back, top, exit (menu- may prefix them))",
                "ivr.xml:6:7: error: unexpected <option> in a menu (hint: a menu holds <entry/> elements)",
            ]
        );
        let good = r#"<menus><menu name="m" greet-long="welcome" tts-engine="flite">
<entry action="menu-top" digits="*"/></menu></menus>"#;
        let set = MenuSet::from_xml("ok.xml", good).unwrap();
        assert_eq!(set.menus["m"].entries[0].action, MenuAction::Top);
        assert_eq!(
            set.warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["ok.xml:1:44: warning: attribute \"tts-engine\" is ignored"]
        );
        assert_eq!(
            errors(MenuSet::from_xml(
                "x.xml",
                "<menus>\n<menu name=\"m\">\n</menus>"
            )),
            ["x.xml:3:1: error: malformed XML: expected 'menu' tag, not 'menus'"]
        );
    }

    #[test]
    fn a_directory_refuses_a_menu_defined_twice_differently() {
        let dir = tempfile::tempdir().unwrap();
        let menu = |sound: &str| {
            format!(
                "[menu.m]\ngreet-long = \"{sound}\"\n[[menu.m.entry]]\ndigits = \"1\"\naction = \"sub-menu\"\nparam = \"sub\"\n"
            )
        };
        std::fs::write(dir.path().join("a.toml"), menu("welcome")).unwrap();
        // The sub-menu lives in another file, of the other form.
        std::fs::write(
            dir.path().join("b.xml"),
            "<menus><menu name=\"sub\" greet-long=\"busy\"><entry action=\"menu-back\" digits=\"8\"/></menu></menus>",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a menu").unwrap();
        let set = MenuSet::load_dir(dir.path()).unwrap();
        assert_eq!(set.menus.keys().collect::<Vec<_>>(), ["m", "sub"]);

        std::fs::write(dir.path().join("c.toml"), menu("goodbye")).unwrap();
        let a = dir.path().join("a.toml").display().to_string();
        let c = dir.path().join("c.toml").display().to_string();
        assert_eq!(
            errors(MenuSet::load_dir(dir.path())),
            [format!(
                "{c}:1:7: error: menu \"m\" is defined twice, differently (hint: first defined at {a}:1:7)"
            )]
        );
        let missing = dir.path().join("missing");
        assert!(matches!(
            MenuSet::load_dir(&missing),
            Err(Error::ReadDir { .. })
        ));
    }
}
