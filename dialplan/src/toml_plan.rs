//! The TOML front end: the same plan as the XML form ([`crate::xml`]), compiled to the same
//! IR, for engineers who prefer a configuration file to markup, and with Asterisk patterns.
//!
//! ```toml
//! [[context]]
//! name = "default"
//!
//!   # The long form: one table per FreeSWITCH element.
//!   [[context.extension]]
//!   name = "local"
//!   continue = false                       # FreeSWITCH continue="true|false"
//!     [[context.extension.condition]]
//!     field = "destination_number"         # or "${destination_number}"
//!     expression = "^(10\\d\\d)$"          # a regex; its groups are $1..$9
//!     break = "on-false"                   # on-false (default), on-true, always, never
//!     actions = [
//!       { app = "set", data = "dialed=$1", inline = true },
//!       "bridge user/$1",                  # "app data" is short for { app, data }
//!     ]
//!     anti_actions = [ "log DEBUG not a local number" ]
//!       # Nested: evaluated after the actions of a true parent.
//!       [[context.extension.condition.condition]]
//!       wday = "mon-fri"                   # time keys: every one must hold
//!       hour = "9-17"
//!       minute-of-day = "481-1080"
//!       actions = [ "log INFO office hours" ]
//!
//!   # The shorthand: the keys of one condition written on the extension itself. Without a
//!   # field, a pattern tests destination_number.
//!   [[context.extension]]
//!   name = "outbound"
//!   pattern = "_9NXXNXXXXXX"
//!   actions = [ "bridge sofia/gateway/trunk1/$1" ]
//!
//!   # Shorthand and long form together: the shorthand condition comes first.
//!   [[context.extension]]
//!   name = "sales"
//!   pattern = "5000"
//!     [[context.extension.condition]]
//!     wday = "mon-fri"
//!     hour = "9-17"
//!     break = "never"
//!     actions = [ "bridge user/1005" ]
//!     anti_actions = [ "playback closed.wav" ]
//!     [[context.extension.condition]]
//!     actions = [ "hangup NORMAL_CLEARING" ]
//!
//! [[context]]
//! name = "public"
//!   [[context.extension]]
//!   name = "did"
//!   field = "destination_number"
//!   expression = '^\+?1?(8005551000)$'     # a literal string needs no doubled backslashes
//!   actions = [ "transfer 1000 XML default" ]
//! ```
//!
//! | table       | keys                                                                  |
//! |-------------|-----------------------------------------------------------------------|
//! | `context`   | `name`, `extension`                                                   |
//! | `extension` | `name`, `continue`, `condition`, and the keys of one condition        |
//! | `condition` | `field`, `expression` or `pattern`, `break`, `actions`, `anti_actions`, `condition`, time keys |
//! | action      | `app`, `data`, `inline`; or a string `"app data"`                     |
//!
//! Time keys are those of [`crate::timespec::TIME_ATTRIBUTES`] (`year`, `yday`, `mon`, `mday`,
//! `wday`, `hour`, `minute`, `minute-of-day`, `time-of-day`, `date-time`); a value is a
//! FreeSWITCH string (`"mon-fri"`, `"1,3-5"`) or, for a single number, an integer
//! (`year = 2027`). A condition tests a field or a time, not both: nest one in the other.
//!
//! # Patterns
//!
//! `pattern` takes an Asterisk extension ([`crate::pattern`]): `_1XXX`, `_9NXXXXXX.`, or an
//! exact extension such as `9196` or `*98`. The whole number is `$0`; `$1` is what follows the
//! pattern's leading literal digits, as Asterisk's `${EXTEN:n}` strips an access code:
//! `_9NXXXXXX.` gives `$1` = the number without the 9, `_*X` the digit after the star,
//! `_1XXX` the last three digits; an exact extension leaves `$1` empty. Extensions are hunted
//! in the order written, as in FreeSWITCH (not in Asterisk's specificity order).
//!
//! Every problem is collected as a [`Diagnostic`] at the file:line:column of the offending
//! key or value (for a bad pattern or time value, of the very character at fault), so
//! `dialplan check` shows them all at once.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::ir::{
    Action, BreakOn, Compiled, Condition, ConditionTest, Diagnostic, Dialplan, Extension,
    HOLIDAY_ATTRIBUTE, Location, Severity, compiled, merge_context, read_plan_files,
};
use crate::pattern::ExtensionPattern;
use crate::timespec::{TIME_ATTRIBUTES, TimeSpec, TimeSpecError};
use crate::xml::INLINE_APPLICATIONS;

type Item<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<DeString<'i>>;

/// The keys of one condition, which an extension may also carry (the shorthand); the time
/// keys come on top.
const CONDITION_KEYS: [&str; 6] = [
    "field",
    "expression",
    "pattern",
    "break",
    "actions",
    "anti_actions",
];

/// Compiles one TOML document.
pub fn load_str(file: &str, text: &str) -> Result<Compiled, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    builder.add_document(Arc::from(file), text);
    builder.finish()
}

/// Compiles every `*.toml` file of `dir`, in file-name order, into one plan. A context that
/// appears in several files gathers their extensions in that order.
pub fn load_dir(dir: &Path) -> Result<Compiled, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    for (file, text) in read_plan_files(dir, &["toml"], &mut builder.diagnostics) {
        builder.add_document(file, &text);
    }
    builder.finish()
}

/// One document being read: turns toml's byte spans into line:column.
struct Source<'t> {
    file: Arc<str>,
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> Source<'t> {
    fn new(file: Arc<str>, text: &'t str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Source {
            file,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn at(&self, byte: usize) -> Location {
        let byte = byte.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= byte);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..byte)
            .map_or(1, |s| s.chars().count() + 1);
        Location {
            file: self.file.clone(),
            line: line as u32,
            column: column as u32,
        }
    }

    fn span<T>(&self, item: &Spanned<T>) -> Location {
        self.at(item.span().start)
    }

    /// The location of byte `offset` of a string value, when the value is written without
    /// escapes (so source and value bytes line up); otherwise of the value itself.
    fn inside(&self, span: Range<usize>, value: &str, offset: usize) -> Location {
        let raw = self.text.get(span.clone()).unwrap_or_default();
        let plain = raw.len() >= 2
            && (raw.starts_with('"') || raw.starts_with('\''))
            && !raw.starts_with("\"\"\"")
            && !raw.starts_with("'''")
            && &raw[1..raw.len() - 1] == value;
        if plain && offset <= value.len() {
            self.at(span.start + 1 + offset)
        } else {
            self.at(span.start)
        }
    }
}

/// The TOML type of a value with its article, for messages.
fn kind(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn entry<'v, 'i>(table: &'v DeTable<'i>, name: &str) -> Option<(&'v Key<'i>, &'v Item<'i>)> {
    table.iter().find(|(key, _)| key.get_ref() == name)
}

/// Adds one TOML document to a plan that other documents (of either form) also feed.
pub(crate) fn add_document(
    plan: &mut Dialplan,
    diagnostics: &mut Vec<Diagnostic>,
    file: Arc<str>,
    text: &str,
) {
    let mut builder = Builder {
        plan: std::mem::take(plan),
        diagnostics: std::mem::take(diagnostics),
    };
    builder.add_document(file, text);
    *plan = builder.plan;
    *diagnostics = builder.diagnostics;
}

#[derive(Default)]
struct Builder {
    plan: Dialplan,
    diagnostics: Vec<Diagnostic>,
}

impl Builder {
    fn push(
        &mut self,
        severity: Severity,
        location: Location,
        message: String,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            location,
            message,
            hint,
        });
    }

    fn error(&mut self, location: Location, message: String, hint: Option<String>) {
        self.push(Severity::Error, location, message, hint);
    }

    /// For the errors of pattern.rs and timespec.rs, whose text ends with "(hint: ...)":
    /// the hint goes where every other diagnostic keeps it.
    fn error_with_hint(&mut self, location: Location, text: String) {
        match text
            .strip_suffix(')')
            .and_then(|t| t.rsplit_once(" (hint: "))
        {
            Some((message, hint)) => {
                self.error(location, message.to_owned(), Some(hint.to_owned()))
            }
            None => self.error(location, text, None),
        }
    }

    fn finish(self) -> Result<Compiled, Vec<Diagnostic>> {
        compiled(self.plan, self.diagnostics)
    }

    fn add_document(&mut self, file: Arc<str>, text: &str) {
        let src = Source::new(file, text);
        let (root, errors) = DeTable::parse_recoverable(text);
        if !errors.is_empty() {
            // A document that does not parse is not compiled: what recovery guessed would
            // only add noise to the real errors.
            for e in errors {
                let location = src.at(e.span().map_or(0, |span| span.start));
                self.error(location, format!("malformed TOML: {}", e.message()), None);
            }
            return;
        }
        let root = root.into_inner();
        self.check_keys(&src, &root, &["context"], "the document");
        if let Some((key, value)) = entry(&root, "context") {
            for (location, context) in self.tables(&src, key, value, "context") {
                self.context(&src, location, context);
            }
        }
    }

    /// The tables of an array of tables (`[[key]]` or `key = [{...}]`).
    fn tables<'v, 'i>(
        &mut self,
        src: &Source,
        key: &Key,
        value: &'v Item<'i>,
        header: &str,
    ) -> Vec<(Location, &'v DeTable<'i>)> {
        let name = key.get_ref();
        let Some(array) = value.get_ref().as_array() else {
            self.error(
                src.span(key),
                format!(
                    "{name} must be an array of tables, not {}",
                    kind(value.get_ref())
                ),
                Some(format!(
                    "write [[{header}]] (double brackets), once per {name}"
                )),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for element in array.iter() {
            match element.get_ref().as_table() {
                // An array-of-tables element spans its `[[...]]` header.
                Some(table) => out.push((src.span(element), table)),
                None => self.error(
                    src.span(element),
                    format!(
                        "each {name} must be a table, not {}",
                        kind(element.get_ref())
                    ),
                    Some(format!(
                        "write [[{header}]] (double brackets), once per {name}"
                    )),
                ),
            }
        }
        out
    }

    fn check_keys(&mut self, src: &Source, table: &DeTable, accepted: &[&str], what: &str) {
        for (key, _) in table.iter() {
            let name = key.get_ref().as_ref();
            if accepted.contains(&name) {
                continue;
            }
            // The XML spellings get a pointer to their TOML form.
            let hint = match name {
                "application" if accepted.contains(&"app") => "write app = \"...\"".to_owned(),
                "anti-actions" | "anti_action" | "anti-action"
                    if accepted.contains(&"anti_actions") =>
                {
                    "write anti_actions = [...]".to_owned()
                }
                "action" if accepted.contains(&"actions") => "write actions = [...]".to_owned(),
                _ => format!("{what} accepts: {}", accepted.join(", ")),
            };
            self.error(
                src.span(key),
                format!("unknown key {name:?} in {what}"),
                Some(hint),
            );
        }
    }

    fn string<'v>(&mut self, src: &Source, key: &Key, value: &'v Item) -> Option<&'v str> {
        let text = value.get_ref().as_str();
        if text.is_none() {
            self.error(
                src.span(value),
                format!(
                    "{} must be a string, not {}",
                    key.get_ref(),
                    kind(value.get_ref())
                ),
                None,
            );
        }
        text
    }

    fn boolean(&mut self, src: &Source, key: &Key, value: &Item) -> bool {
        value.get_ref().as_bool().unwrap_or_else(|| {
            self.error(
                src.span(value),
                format!(
                    "{} must be true or false, not {}",
                    key.get_ref(),
                    kind(value.get_ref())
                ),
                None,
            );
            false
        })
    }

    fn required_name(
        &mut self,
        src: &Source,
        table: &DeTable,
        location: &Location,
        what: &str,
    ) -> Option<String> {
        match entry(table, "name") {
            Some((key, value)) => match self.string(src, key, value) {
                Some(name) if !name.trim().is_empty() => Some(name.to_owned()),
                Some(_) => {
                    self.error(src.span(value), format!("{what} name is empty"), None);
                    None
                }
                None => None,
            },
            None => {
                self.error(
                    location.clone(),
                    format!("{what} has no name"),
                    Some("add name = \"...\"".into()),
                );
                None
            }
        }
    }

    fn context(&mut self, src: &Source, location: Location, table: &DeTable) {
        self.check_keys(src, table, &["name", "extension"], "a context");
        let name = self.required_name(src, table, &location, "context");
        let mut extensions = Vec::new();
        if let Some((key, value)) = entry(table, "extension") {
            for (location, extension) in self.tables(src, key, value, "context.extension") {
                extensions.extend(self.extension(src, location, extension));
            }
        }
        let Some(name) = name else { return };
        merge_context(
            &mut self.plan,
            name,
            location,
            extensions,
            &mut self.diagnostics,
        );
    }
}

impl Builder {
    fn extension(
        &mut self,
        src: &Source,
        location: Location,
        table: &DeTable,
    ) -> Option<Extension> {
        let mut accepted = vec!["name", "continue", "condition"];
        accepted.extend(CONDITION_KEYS);
        accepted.extend(TIME_ATTRIBUTES);
        accepted.push(HOLIDAY_ATTRIBUTE);
        self.check_keys(src, table, &accepted, "an extension");
        let name = self.required_name(src, table, &location, "extension");
        let continue_on_match =
            entry(table, "continue").is_some_and(|(key, value)| self.boolean(src, key, value));
        let mut conditions = Vec::new();
        let mut ok = true;
        let shorthand = table.iter().any(|(key, _)| {
            CONDITION_KEYS.contains(&key.get_ref().as_ref())
                || ConditionTest::is_time_attribute(key.get_ref())
        });
        if shorthand {
            match self.condition(src, location.clone(), table, false) {
                Some(condition) => conditions.push(condition),
                None => ok = false,
            }
        }
        if let Some((key, value)) = entry(table, "condition") {
            for (at, condition) in self.tables(src, key, value, "context.extension.condition") {
                match self.condition(src, at, condition, true) {
                    Some(condition) => conditions.push(condition),
                    None => ok = false,
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Extension {
            name: name?,
            continue_on_match,
            conditions,
            location,
        })
    }

    /// One condition from `table`; with `nested` false the table is an extension carrying the
    /// shorthand, whose `condition` key lists its siblings rather than its children.
    fn condition(
        &mut self,
        src: &Source,
        location: Location,
        table: &DeTable,
        nested: bool,
    ) -> Option<Condition> {
        if nested {
            let mut accepted = vec!["condition"];
            accepted.extend(CONDITION_KEYS);
            accepted.extend(TIME_ATTRIBUTES);
            accepted.push(HOLIDAY_ATTRIBUTE);
            self.check_keys(src, table, &accepted, "a condition");
        }
        let mut ok = true;
        let mut break_on = BreakOn::OnFalse;
        if let Some((key, value)) = entry(table, "break") {
            match self.string(src, key, value) {
                Some("on-false") => break_on = BreakOn::OnFalse,
                Some("on-true") => break_on = BreakOn::OnTrue,
                Some("always") => break_on = BreakOn::Always,
                Some("never") => break_on = BreakOn::Never,
                Some(other) => {
                    self.error(
                        src.span(value),
                        format!("unknown break mode {other:?}"),
                        Some("use on-false, on-true, always or never".into()),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        let time = self.time_pairs(src, table, &mut ok);
        let field = entry(table, "field");
        let expression = entry(table, "expression");
        let pattern = entry(table, "pattern");
        if (field.is_some() || expression.is_some() || pattern.is_some()) && !time.is_empty() {
            self.error(
                location.clone(),
                "a condition tests either a field or a time, not both".into(),
                Some("nest the time condition inside the field condition".into()),
            );
            ok = false;
        }
        let test = match (field, expression, pattern) {
            (_, Some(_), Some((key, _))) => {
                self.error(
                    src.span(key),
                    "a condition takes an expression or a pattern, not both".into(),
                    Some("keep one: pattern = \"_1XXX\" or expression = \"^1\\\\d{3}$\"".into()),
                );
                None
            }
            (field, None, Some((key, value))) => {
                let variable = match field {
                    Some((field_key, field_value)) => {
                        self.field_variable(src, field_key, field_value)
                    }
                    // An Asterisk pattern is about the dialled number.
                    None => Some("destination_number".to_owned()),
                };
                let regex = self.pattern(src, key, value);
                field_test(variable, regex)
            }
            (Some((field_key, field_value)), Some((key, value)), None) => {
                let variable = self.field_variable(src, field_key, field_value);
                let regex = self.expression(src, key, value);
                field_test(variable, regex)
            }
            (Some((key, _)), None, None) => {
                self.error(
                    src.span(key),
                    "condition has a field but no expression".into(),
                    Some("add expression = \"^...$\" or pattern = \"_1XXX\"".into()),
                );
                None
            }
            (None, Some((key, _)), None) => {
                self.error(
                    src.span(key),
                    "condition has an expression but no field".into(),
                    Some("add field = \"destination_number\" or field = \"${variable}\"".into()),
                );
                None
            }
            (None, None, None) if time.is_empty() => Some(ConditionTest::Always),
            (None, None, None) if !ok => None,
            (None, None, None) => {
                let pairs: Vec<(&str, &str)> = time
                    .iter()
                    .map(|(attribute, value)| (attribute.as_str(), value.as_str()))
                    .collect();
                match ConditionTest::time(&pairs) {
                    Ok(test) => Some(test),
                    Err(message) => {
                        self.error_with_hint(location.clone(), format!("bad time spec: {message}"));
                        None
                    }
                }
            }
        };
        let actions = self.actions(src, table, "actions", &mut ok);
        let anti_actions = self.actions(src, table, "anti_actions", &mut ok);
        let mut children = Vec::new();
        if nested && let Some((key, value)) = entry(table, "condition") {
            for (at, child) in self.tables(src, key, value, "context.extension.condition.condition")
            {
                match self.condition(src, at, child, true) {
                    Some(condition) => children.push(condition),
                    None => ok = false,
                }
            }
        }
        if !ok {
            return None;
        }
        Some(Condition {
            test: test?,
            break_on,
            actions,
            anti_actions,
            children,
            location,
        })
    }

    /// The time keys of a condition as (attribute, FreeSWITCH value) pairs, each checked on
    /// its own so an error points into the value that is wrong.
    fn time_pairs(
        &mut self,
        src: &Source,
        table: &DeTable,
        ok: &mut bool,
    ) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (key, value) in table.iter() {
            let attribute = key.get_ref().as_ref();
            if !ConditionTest::is_time_attribute(attribute) {
                continue;
            }
            let text = match value.get_ref() {
                DeValue::String(text) => text.to_string(),
                DeValue::Integer(number) => number.as_str().to_owned(),
                DeValue::Boolean(flag) if attribute == HOLIDAY_ATTRIBUTE => {
                    if *flag { "yes" } else { "no" }.to_owned()
                }
                other => {
                    self.error(
                        src.span(value),
                        format!(
                            "{attribute} must be a string such as \"1-5,7\" or a number, not {}",
                            kind(other)
                        ),
                        None,
                    );
                    *ok = false;
                    continue;
                }
            };
            if attribute == HOLIDAY_ATTRIBUTE {
                if let Err(message) = ConditionTest::time(&[(attribute, &text)]) {
                    *ok = false;
                    self.error_with_hint(src.span(value), format!("bad time spec: {message}"));
                    continue;
                }
            } else if let Err(e) = TimeSpec::parse(&[(attribute, &text)]) {
                *ok = false;
                match e {
                    TimeSpecError::BadValue {
                        offset,
                        problem,
                        hint,
                        ..
                    } => self.error(
                        src.inside(value.span(), &text, offset),
                        format!("bad time spec: {attribute} = {text:?}: {problem}"),
                        Some(hint),
                    ),
                    other => {
                        self.error_with_hint(src.span(value), format!("bad time spec: {other}"))
                    }
                }
                continue;
            }
            pairs.push((attribute.to_owned(), text));
        }
        pairs
    }

    /// `field = "destination_number"` and `field = "${destination_number}"` name the same
    /// variable; a template mixing text and variables is not supported.
    fn field_variable(&mut self, src: &Source, key: &Key, value: &Item) -> Option<String> {
        let text = self.string(src, key, value)?;
        let name = match text.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
            Some(inner) => inner,
            None => text,
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if valid {
            Some(name.to_owned())
        } else {
            self.error(
                src.span(value),
                format!("field {text:?} is not a variable name"),
                Some("write a name such as destination_number or ${sip_user_agent}".into()),
            );
            None
        }
    }

    fn expression(&mut self, src: &Source, key: &Key, value: &Item) -> Option<regex::Regex> {
        let text = self.string(src, key, value)?;
        match regex::Regex::new(text) {
            Ok(regex) => Some(regex),
            Err(e) => {
                self.error(
                    src.span(value),
                    format!("bad regex {text:?}: {e}"),
                    Some("the regex crate's syntax: no look-around or back-references".into()),
                );
                None
            }
        }
    }

    fn pattern(&mut self, src: &Source, key: &Key, value: &Item) -> Option<regex::Regex> {
        let text = self.string(src, key, value)?;
        match pattern_regex(text) {
            Ok(regex) => Some(regex),
            Err(e) => {
                let location = match e.offset() {
                    Some(offset) => src.inside(value.span(), text, offset),
                    None => src.span(value),
                };
                self.error_with_hint(location, format!("bad pattern {text:?}: {e}"));
                None
            }
        }
    }

    fn actions(&mut self, src: &Source, table: &DeTable, name: &str, ok: &mut bool) -> Vec<Action> {
        let Some((_, value)) = entry(table, name) else {
            return Vec::new();
        };
        let Some(array) = value.get_ref().as_array() else {
            self.error(
                src.span(value),
                format!("{name} must be an array, not {}", kind(value.get_ref())),
                Some(format!("write {name} = [ \"app data\", {{ app = \"set\", data = \"x=1\", inline = true }} ]")),
            );
            *ok = false;
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in array.iter() {
            match self.action(src, item) {
                Some(action) => out.push(action),
                None => *ok = false,
            }
        }
        out
    }

    fn action(&mut self, src: &Source, item: &Item) -> Option<Action> {
        let location = src.span(item);
        let (application, data, inline) = match item.get_ref() {
            // "app data": the application is the first word.
            DeValue::String(text) => {
                let text = text.trim();
                let (application, data) =
                    text.split_once(char::is_whitespace).unwrap_or((text, ""));
                (application.to_owned(), data.trim_start().to_owned(), false)
            }
            DeValue::Table(table) => {
                self.check_keys(src, table, &["app", "data", "inline"], "an action");
                let application = match entry(table, "app") {
                    Some((key, value)) => self.string(src, key, value)?.trim().to_owned(),
                    None => String::new(),
                };
                let data = match entry(table, "data") {
                    Some((key, value)) => self.string(src, key, value)?.to_owned(),
                    None => String::new(),
                };
                let inline = entry(table, "inline")
                    .is_some_and(|(key, value)| self.boolean(src, key, value));
                (application, data, inline)
            }
            other => {
                self.error(
                    location,
                    format!("an action must be a string or a table, not {}", kind(other)),
                    Some("write \"app data\" or { app = \"...\", data = \"...\" }".into()),
                );
                return None;
            }
        };
        if application.is_empty() {
            self.error(
                location,
                "action has no app".into(),
                Some("add app = \"...\"".into()),
            );
            return None;
        }
        if inline && !INLINE_APPLICATIONS.contains(&application.as_str()) {
            self.error(
                location,
                format!("application {application:?} cannot run inline"),
                Some(format!(
                    "inline is supported for: {}",
                    INLINE_APPLICATIONS.join(", ")
                )),
            );
            return None;
        }
        Some(Action {
            application,
            data,
            inline,
            location,
        })
    }
}

fn field_test(variable: Option<String>, regex: Option<regex::Regex>) -> Option<ConditionTest> {
    Some(ConditionTest::Field {
        variable: variable?,
        regex: regex?,
    })
}

/// The regex of an Asterisk extension as a condition: the whole number is `$0`, and group 1
/// holds what follows the leading literal digits (the `${EXTEN:n}` of Asterisk). The
/// extension is checked whole first, so error offsets count from its `_`.
fn pattern_regex(extension: &str) -> Result<regex::Regex, crate::pattern::PatternError> {
    let parsed = ExtensionPattern::parse(extension)?;
    let Some(body) = extension.strip_prefix('_') else {
        return Ok(with_group(&regex::escape(extension), ""));
    };
    // '-' is Asterisk's eye candy: it matches nothing, so it may sit inside the prefix.
    let split = body
        .find(|c: char| !matches!(c, '0'..='9' | '*' | '#' | '+' | '-'))
        .unwrap_or(body.len());
    let prefix: String = body[..split].chars().filter(|&c| c != '-').collect();
    let rest = &body[split..];
    if rest.is_empty() {
        return Ok(with_group(&regex::escape(&prefix), ""));
    }
    let rest = ExtensionPattern::parse(&format!("_{rest}"))?;
    // pattern.rs documents its regex as `\A...\z` without groups; should that change, the
    // whole number still matches and `$1` becomes all of it.
    Ok(
        match rest
            .regex()
            .as_str()
            .strip_prefix(r"\A")
            .and_then(|r| r.strip_suffix(r"\z"))
        {
            Some(inner) => with_group(&regex::escape(&prefix), inner),
            None => with_group("", parsed.regex().as_str()),
        },
    )
}

fn with_group(prefix: &str, rest: &str) -> regex::Regex {
    regex::Regex::new(&format!(r"\A{prefix}({rest})\z"))
        .expect("escaped literals and pattern.rs fragments form a valid regex")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::HuntEnv;
    use crate::matcher::hunt;
    use crate::timespec::CivilTime;
    use crate::vars::Variables;

    fn errors(text: &str) -> Vec<String> {
        load_str("bad.toml", text)
            .unwrap_err()
            .iter()
            .map(|d| format!("{}:{} {}", d.location.line, d.location.column, d.message))
            .collect()
    }

    /// Hunts context "c" of `text` for `number` on a Tuesday at noon.
    fn dial(text: &str, number: &str) -> Vec<String> {
        let plan = load_str("t.toml", text).unwrap().plan;
        let vars: Variables = [("destination_number", number)].into_iter().collect();
        let now = CivilTime::from_civil(2026, 11, 24, 12, 0, 0).unwrap();
        hunt(&plan, "c", &vars, &HuntEnv::at(now))
            .unwrap()
            .actions
            .iter()
            .map(|a| format!("{} {}", a.application, a.data))
            .collect()
    }

    #[test]
    fn compiles_the_ir_with_locations() {
        let text = r#"[[context]]
name = "default"
  [[context.extension]]
  name = "local"
  continue = true
    [[context.extension.condition]]
    field = "${destination_number}"
    expression = "^(10\\d\\d)$"
    break = "never"
    actions = [ { app = "set", data = "x=$1", inline = true }, "bridge  user/$1" ]
    anti_actions = [ "log no" ]
      [[context.extension.condition.condition]]
      wday = "mon-fri"
      hour = 9
    [[context.extension.condition]]
"#;
        let compiled = load_str("plan.toml", text).unwrap();
        assert!(compiled.warnings.is_empty());
        let context = &compiled.plan.contexts["default"];
        assert_eq!(context.location.to_string(), "plan.toml:1:1");
        let extension = &context.extensions[0];
        assert_eq!(extension.name, "local");
        assert!(extension.continue_on_match);
        assert_eq!(extension.location.to_string(), "plan.toml:3:3");
        let first = &extension.conditions[0];
        assert_eq!(first.location.to_string(), "plan.toml:6:5");
        assert_eq!(first.break_on, BreakOn::Never);
        match &first.test {
            ConditionTest::Field { variable, regex } => {
                assert_eq!(variable, "destination_number");
                assert_eq!(regex.as_str(), "^(10\\d\\d)$");
            }
            other => panic!("expected a field test, got {other:?}"),
        }
        let set = &first.actions[0];
        assert_eq!(
            (set.application.as_str(), set.data.as_str()),
            ("set", "x=$1")
        );
        assert!(set.inline);
        assert_eq!(set.location.to_string(), "plan.toml:10:17");
        let bridge = &first.actions[1];
        assert_eq!(
            (bridge.application.as_str(), bridge.data.as_str()),
            ("bridge", "user/$1")
        );
        assert!(!bridge.inline);
        assert_eq!(bridge.location.column, 64);
        assert_eq!(first.anti_actions[0].data, "no");
        let child = &first.children[0];
        assert!(matches!(
            child.test,
            ConditionTest::Time { holiday: None, .. }
        ));
        assert_eq!(child.location.line, 12);
        assert!(matches!(
            extension.conditions[1].test,
            ConditionTest::Always
        ));
        assert_eq!(extension.conditions[1].break_on, BreakOn::OnFalse);
    }

    #[test]
    fn time_keys_take_numbers_and_the_holiday_flag() {
        let text = r#"[[context]]
name = "c"
  [[context.extension]]
  name = "t"
  year = 2026
  hour = "12"
  holiday = false
  actions = [ "log now" ]
"#;
        assert_eq!(dial(text, "1"), ["log now"]);
        let compiled = load_str("t.toml", text).unwrap();
        let condition = &compiled.plan.contexts["c"].extensions[0].conditions[0];
        assert!(matches!(
            condition.test,
            ConditionTest::Time {
                holiday: Some(false),
                ..
            }
        ));
        let errs = errors(&text.replace("holiday = false", "holiday = \"maybe\""));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("7:13 bad time spec: holiday=\"maybe\": not yes or no"),
            "{errs:?}"
        );
        assert_eq!(
            dial(&text.replace("2026", "2027"), "1"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn patterns_capture_the_number_and_what_follows_the_prefix() {
        let plan = |pattern: &str| {
            format!(
                "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"e\"\npattern = \"{pattern}\"\nactions = [\"log $0|$1\"]\n"
            )
        };
        assert_eq!(
            dial(&plan("_9NXXXXXX."), "95551234567"),
            ["log 95551234567|5551234567"]
        );
        assert_eq!(dial(&plan("_9NXXXXXX."), "9555123"), Vec::<String>::new());
        assert_eq!(dial(&plan("_1-800-NXX"), "1800555"), ["log 1800555|555"]);
        assert_eq!(dial(&plan("_*X"), "*7"), ["log *7|7"]);
        assert_eq!(dial(&plan("_*X"), "*"), Vec::<String>::new());
        assert_eq!(dial(&plan("_X!"), "4"), ["log 4|4"]);
        assert_eq!(dial(&plan("_12"), "12"), ["log 12|"]);
        assert_eq!(dial(&plan("*98"), "*98"), ["log *98|"]);
        assert_eq!(dial(&plan("*98"), "*981"), Vec::<String>::new());
        // A pattern may test another field.
        let text = "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"e\"\nfield = \"caller\"\npattern = \"_NXX\"\nactions = [\"log $1\"]\n";
        assert_eq!(dial(text, "200"), Vec::<String>::new());
    }

    #[test]
    fn malformed_toml_points_at_the_position() {
        let errs = errors("[[context]]\nname = \"a\"\nextension = [\n");
        assert!(!errs.is_empty());
        assert!(
            errs.iter().all(|e| e.contains("malformed TOML")),
            "{errs:?}"
        );
        assert!(
            errs[0].starts_with("4:1 ") || errs[0].starts_with("3:"),
            "{errs:?}"
        );
        let errs = errors("[[context]]\nname = \"a\"\nname = \"b\"\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("3:1 malformed TOML"), "{errs:?}");
    }

    #[test]
    fn collects_every_error_at_its_line_and_column() {
        let text = r#"colour = "red"
[[context]]
  [[context.extension]]
  name = "e"
  continue = "maybe"
  colour = 1
    [[context.extension.condition]]
    field = "destination_number"
    expression = "^(1$"
    break = "sometimes"
    actions = [ { data = "no app" }, { app = "bridge", data = "x", inline = true }, 42, { application = "log" } ]
    anti-action = "x"
    [[context.extension.condition]]
    pattern = "_9N[5-2]X"
    [[context.extension.condition]]
    field = "a"
    [[context.extension.condition]]
    expression = "^1$"
    [[context.extension.condition]]
    hour = "9-25"
    wday = "mon-funday"
    [[context.extension.condition]]
    field = "a"
    expression = "x"
    wday = 1
    [[context.extension.condition]]
    field = "${a}-${b}"
    expression = "x"
    [[context.extension.condition]]
    expression = "x"
    pattern = "_1X"
    [[context.extension.condition]]
    actions = "answer"
    application = "x"
  [[context.extension]]
  pattern = "_1."
[context.bogus]
"#;
        let errs = errors(text);
        let expect = [
            "1:1 unknown key \"colour\" in the document",
            "2:1 context has no name",
            "5:14 continue must be true or false, not a string",
            "6:3 unknown key \"colour\" in an extension",
            "9:18 bad regex",
            "10:13 unknown break mode",
            "11:17 action has no app",
            "11:38 application \"bridge\" cannot run inline",
            "11:85 an action must be a string or a table, not an integer",
            "11:89 action has no app",
            "11:91 unknown key \"application\" in an action",
            "12:5 unknown key \"anti-action\" in a condition",
            "14:20 bad pattern \"_9N[5-2]X\": byte 4: range 5-2 is reversed",
            "16:5 condition has a field but no expression",
            "18:5 condition has an expression but no field",
            "20:15 bad time spec: hour = \"9-25\": 25 is out of range",
            "21:17 bad time spec: wday = \"mon-funday\": ",
            "22:5 a condition tests either a field or a time, not both",
            "27:13 field \"${a}-${b}\" is not a variable name",
            "31:5 a condition takes an expression or a pattern, not both",
            "33:15 actions must be an array, not a string",
            "34:5 unknown key \"application\" in a condition",
            "35:3 extension has no name",
            "37:10 unknown key \"bogus\" in a context",
        ];
        for e in expect {
            assert!(
                errs.iter().any(|got| got.starts_with(e)),
                "missing {e:?} in {errs:#?}"
            );
        }
        assert_eq!(errs.len(), expect.len(), "{errs:#?}");
        let diagnostics = load_str("bad.toml", text).unwrap_err();
        let positions: Vec<(u32, u32)> = diagnostics
            .iter()
            .map(|d| (d.location.line, d.location.column))
            .collect();
        assert!(positions.is_sorted(), "source order: {positions:?}");
        let hint = |prefix: &str| {
            diagnostics
                .iter()
                .find(|d| d.message.starts_with(prefix))
                .and_then(|d| d.hint.clone())
                .unwrap_or_default()
        };
        assert!(
            hint("unknown key \"colour\" in an extension")
                .contains("name, continue, condition, field")
        );
        assert!(
            hint("unknown key \"application\" in a condition").contains("actions, anti_actions")
        );
        assert!(hint("unknown key \"anti-action\"").contains("anti_actions = [...]"));
        assert!(hint("unknown key \"application\" in an action").contains("app = "));
        assert!(hint("bad regex").contains("regex crate"));
        assert_eq!(hint("bad pattern"), "write the lower end first, [2-5]");
        assert!(!hint("bad time spec: wday").is_empty());
        assert!(hint("action has no app").contains("app = "));
    }

    #[test]
    fn contexts_must_be_arrays_of_tables() {
        let errs = errors("[context]\nname = \"c\"\n");
        assert_eq!(
            errs,
            ["1:2 context must be an array of tables, not a table"]
        );
        let diagnostics = load_str("bad.toml", "[context]\nname = \"c\"\n").unwrap_err();
        assert_eq!(
            diagnostics[0].hint.as_deref(),
            Some("write [[context]] (double brackets), once per context")
        );
    }

    #[test]
    fn escaped_values_point_at_the_value() {
        // With an escape the pattern's bytes no longer line up with the source: point at the
        // value's opening quote.
        let errs = errors(
            "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"e\"\npattern = \"_\\u0039[\"\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("5:11 bad pattern \"_9[\""), "{errs:?}");
        // A literal string lines up.
        let errs = errors(
            "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"e\"\npattern = '_9['\n",
        );
        assert!(errs[0].starts_with("5:14 bad pattern"), "{errs:?}");
    }

    #[test]
    fn duplicate_extension_names_warn_across_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("00_a.toml"),
            "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"x\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10_b.toml"),
            "[[context]]\nname = \"c\"\n[[context.extension]]\nname = \"y\"\n[[context.extension]]\nname = \"x\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not = [toml").unwrap();
        let compiled = load_dir(dir.path()).unwrap();
        let names: Vec<_> = compiled.plan.contexts["c"]
            .extensions
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["x", "y", "x"]);
        assert_eq!(compiled.warnings.len(), 1);
        let warning = &compiled.warnings[0];
        assert_eq!(warning.severity, Severity::Warning);
        assert!(warning.location.file.ends_with("10_b.toml"));
        assert_eq!(warning.location.line, 5);
        assert!(warning.hint.as_deref().unwrap().contains("00_a.toml:3:1"));
    }

    #[test]
    fn errors_from_several_files_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "oops = 1\n").unwrap();
        std::fs::write(dir.path().join("b.toml"), "[[context]\n").unwrap();
        let errs = load_dir(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].location.file.ends_with("a.toml"));
        assert!(errs[1].location.file.ends_with("b.toml"));
        assert!(errs[1].message.starts_with("malformed TOML"));
        let missing = load_dir(&dir.path().join("absent")).unwrap_err();
        assert!(
            missing[0]
                .message
                .starts_with("cannot read dialplan directory")
        );
    }

    /// The example of the module documentation compiles and routes as it says.
    #[test]
    fn documented_example_compiles() {
        let source = include_str!("toml_plan.rs");
        let example: String = source
            .lines()
            .skip_while(|line| *line != "//! ```toml")
            .skip(1)
            .take_while(|line| *line != "//! ```")
            .map(|line| {
                format!(
                    "{}\n",
                    line.strip_prefix("//!")
                        .unwrap()
                        .strip_prefix(' ')
                        .unwrap_or("")
                )
            })
            .collect();
        assert!(example.contains("[[context]]"));
        let plan = load_str("doc.toml", &example).unwrap().plan;
        let vars: Variables = [("destination_number", "95552345678")]
            .into_iter()
            .collect();
        let now = CivilTime::from_civil(2026, 11, 24, 12, 0, 0).unwrap();
        let result = hunt(&plan, "default", &vars, &HuntEnv::at(now)).unwrap();
        assert_eq!(result.extensions[0].name, "outbound");
        let apps: Vec<String> = result
            .actions
            .iter()
            .map(|a| format!("{} {}", a.application, a.data))
            .collect();
        // As in FreeSWITCH, the anti-actions of an extension that failed stay in the list.
        assert_eq!(
            apps,
            [
                "log DEBUG not a local number",
                "bridge sofia/gateway/trunk1/5552345678"
            ]
        );
        let vars: Variables = [("destination_number", "1001")].into_iter().collect();
        let result = hunt(&plan, "default", &vars, &HuntEnv::at(now)).unwrap();
        let apps: Vec<String> = result
            .actions
            .iter()
            .map(|a| format!("{} {}", a.application, a.data))
            .collect();
        assert_eq!(apps, ["bridge user/1001", "log INFO office hours"]);
        assert_eq!(result.inline_actions[0].data, "dialed=1001");
    }
}
