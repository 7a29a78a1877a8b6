//! The dialplan IR: what every front end (XML today, TOML next) compiles to and what the
//! matcher walks. It keeps each element's source [`Location`] so `dialplan check` and
//! `dialplan test` can point at the line an engineer wrote.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::timespec::{CivilTime, Holidays, TimeSpec, is_time_attribute};

/// Where an element was written: file, 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A whole plan: contexts by name.
#[derive(Clone, Debug, Default)]
pub struct Dialplan {
    pub contexts: BTreeMap<String, Context>,
}

/// A routing domain (FreeSWITCH `<context>`): a call hunts the extensions of one context.
#[derive(Clone, Debug)]
pub struct Context {
    pub name: String,
    /// In hunting order.
    pub extensions: Vec<Extension>,
    pub location: Location,
}

#[derive(Clone, Debug)]
pub struct Extension {
    pub name: String,
    /// FreeSWITCH `continue="true"`: keep hunting the next extensions after this one matched.
    pub continue_on_match: bool,
    pub conditions: Vec<Condition>,
    pub location: Location,
}

#[derive(Clone, Debug)]
pub struct Condition {
    pub test: ConditionTest,
    pub break_on: BreakOn,
    /// Collected when the test is true.
    pub actions: Vec<Action>,
    /// Collected when the test is false.
    pub anti_actions: Vec<Action>,
    /// Nested conditions, evaluated after this one's actions when it is true.
    pub children: Vec<Condition>,
    pub location: Location,
}

#[derive(Clone, Debug)]
pub enum ConditionTest {
    /// The variable's value (empty when unset) matches the regex; its groups feed `$1`..`$9`.
    Field {
        variable: String,
        regex: regex::Regex,
    },
    /// The caller-supplied local time satisfies `spec` and, when `holiday` is given, falls on
    /// a day of the holiday calendar (`Some(true)`) or off it (`Some(false)`).
    Time {
        spec: TimeSpec,
        holiday: Option<bool>,
    },
    /// A bare `<condition>`.
    Always,
}

/// The condition attribute that tests the holiday calendar (`holiday="yes"` / `"no"`).
pub const HOLIDAY_ATTRIBUTE: &str = "holiday";

/// FreeSWITCH's `switch_true()` / `switch_false()` spellings of a flag.
pub fn parse_flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "enabled" | "active" | "allow" => Some(true),
        "false" | "no" | "off" | "0" | "disabled" | "inactive" | "disallow" => Some(false),
        _ => None,
    }
}

impl ConditionTest {
    /// A time test from `(attribute, value)` pairs: the time attributes of
    /// [`crate::timespec::TIME_ATTRIBUTES`] plus [`HOLIDAY_ATTRIBUTE`]. Every front end builds
    /// its time conditions here, so XML and TOML accept exactly the same spellings. The error
    /// names the attribute and ends with `(hint: ...)`.
    pub fn time(pairs: &[(&str, &str)]) -> Result<ConditionTest, String> {
        let mut holiday = None;
        let mut times = Vec::with_capacity(pairs.len());
        for &(attribute, value) in pairs {
            if attribute != HOLIDAY_ATTRIBUTE {
                times.push((attribute, value));
                continue;
            }
            if holiday.is_some() {
                return Err(format!(
                    "{attribute}=\"{value}\": given twice (hint: test the holiday calendar once per condition)"
                ));
            }
            holiday = Some(parse_flag(value).ok_or_else(|| {
                format!(
                    "{attribute}=\"{value}\": not yes or no (hint: holiday=\"yes\" matches on a day of the holiday calendar, holiday=\"no\" on any other day)"
                )
            })?);
        }
        let spec = TimeSpec::parse(&times).map_err(|e| e.to_string())?;
        Ok(ConditionTest::Time { spec, holiday })
    }

    /// Whether `name` is an attribute [`ConditionTest::time`] accepts.
    pub fn is_time_attribute(name: &str) -> bool {
        name == HOLIDAY_ATTRIBUTE || is_time_attribute(name)
    }
}

/// What a time condition is checked against: the local time and the holiday calendar. Both
/// are parameters (no clock is read), so a hunt is reproducible.
#[derive(Clone, Copy, Debug)]
pub struct HuntEnv<'a> {
    pub now: CivilTime,
    pub holidays: &'a Holidays,
}

static NO_HOLIDAYS: Holidays = Holidays::new();

impl HuntEnv<'static> {
    /// At `now`, with an empty holiday calendar (`holiday="yes"` never holds).
    pub fn at(now: CivilTime) -> HuntEnv<'static> {
        HuntEnv {
            now,
            holidays: &NO_HOLIDAYS,
        }
    }
}

impl HuntEnv<'_> {
    /// Whether a time test holds in this environment.
    pub fn time_holds(&self, spec: &TimeSpec, holiday: Option<bool>) -> bool {
        spec.matches(&self.now)
            && holiday.is_none_or(|want| self.holidays.is_holiday(&self.now).is_some() == want)
    }
}

/// When a condition stops the evaluation of its extension (FreeSWITCH `break=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BreakOn {
    /// Stop at the first false condition: the extension does not match.
    #[default]
    OnFalse,
    /// Stop at the first true condition.
    OnTrue,
    /// Stop after this condition, whatever its result.
    Always,
    /// Go on to the next condition, whatever its result.
    Never,
}

/// One dialplan application call. `data` is a template: `${var}`, `${var:-default}`, `$1`.
#[derive(Clone, Debug)]
pub struct Action {
    pub application: String,
    pub data: String,
    /// Runs during hunting, so later conditions see its effect (FreeSWITCH `inline="true"`).
    pub inline: bool,
    pub location: Location,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A problem found while compiling a plan, with where and, when we can tell, how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{}: {level}: {}", self.location, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// A plan that compiled, with the warnings it raised.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub plan: Dialplan,
    pub warnings: Vec<Diagnostic>,
}

// ----- What every front end shares --------------------------------------------------------

/// The files of a dialplan directory with one of these extensions, in file-name order, each
/// with its text; an unreadable directory or file becomes an error diagnostic.
pub(crate) fn read_plan_files(
    dir: &Path,
    extensions: &[&str],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(Arc<str>, String)> {
    let nowhere = |file: Arc<str>, message: String| Diagnostic {
        severity: Severity::Error,
        location: Location {
            file,
            line: 0,
            column: 0,
        },
        message,
        hint: None,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(nowhere(
                Arc::from(dir.display().to_string()),
                format!("cannot read dialplan directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| extensions.iter().any(|e| ext == *e))
                && p.is_file()
        })
        .collect();
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let file: Arc<str> = Arc::from(path.display().to_string());
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((file, text)),
            Err(e) => diagnostics.push(nowhere(file, format!("cannot read file: {e}"))),
        }
    }
    files
}

/// Adds a context's extensions to the plan: a context written in several places (files)
/// gathers them in that order; an extension name used twice in one context is a warning.
pub(crate) fn merge_context(
    plan: &mut Dialplan,
    name: String,
    location: Location,
    extensions: Vec<Extension>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let context = plan.contexts.entry(name.clone()).or_insert(Context {
        name,
        extensions: Vec::new(),
        location,
    });
    for extension in extensions {
        if let Some(first) = context.extensions.iter().find(|e| e.name == extension.name) {
            diagnostics.push(Diagnostic {
                severity: Severity::Warning,
                location: extension.location.clone(),
                message: format!(
                    "extension {:?} is defined twice in context {:?}",
                    extension.name, context.name
                ),
                hint: Some(format!(
                    "the first is at {}; give each extension its own name",
                    first.location
                )),
            });
        }
        context.extensions.push(extension);
    }
}

/// Diagnostics in source order (the sort is stable: one position keeps discovery order).
pub(crate) fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| a.location.cmp(&b.location));
}

/// The outcome of a front end: the plan when nothing is an error, else every diagnostic.
pub(crate) fn compiled(
    plan: Dialplan,
    mut diagnostics: Vec<Diagnostic>,
) -> Result<Compiled, Vec<Diagnostic>> {
    sort_diagnostics(&mut diagnostics);
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        Err(diagnostics)
    } else {
        Ok(Compiled {
            plan,
            warnings: diagnostics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i32, month: u8, mday: u8, hour: u8, minute: u8) -> CivilTime {
        CivilTime::from_civil(year, month, mday, hour, minute, 0).unwrap()
    }

    fn holds(test: &ConditionTest, env: &HuntEnv) -> bool {
        match test {
            ConditionTest::Time { spec, holiday } => env.time_holds(spec, *holiday),
            other => panic!("expected a time test, got {other:?}"),
        }
    }

    #[test]
    fn time_tests_combine_the_spec_and_the_calendar() {
        let calendar =
            Holidays::parse("[[holiday]]\nname = \"Christmas\"\ndate = \"12-25\"\n").unwrap();
        let workday = ConditionTest::time(&[("wday", "mon-fri"), ("holiday", "no")]).unwrap();
        let closed = ConditionTest::time(&[("holiday", "Yes")]).unwrap();
        let christmas_friday = HuntEnv {
            now: at(2026, 12, 25, 10, 0),
            holidays: &calendar,
        };
        let thursday = HuntEnv {
            now: at(2026, 12, 24, 10, 0),
            holidays: &calendar,
        };
        assert!(!holds(&workday, &christmas_friday));
        assert!(holds(&closed, &christmas_friday));
        assert!(holds(&workday, &thursday));
        assert!(!holds(&closed, &thursday));
        // Without a calendar no day is a holiday.
        assert!(holds(&workday, &HuntEnv::at(at(2026, 12, 25, 10, 0))));
        assert!(!holds(&closed, &HuntEnv::at(at(2026, 12, 25, 10, 0))));
        // No pairs at all: a time test that always holds.
        assert!(holds(&ConditionTest::time(&[]).unwrap(), &thursday));
    }

    #[test]
    fn time_test_errors_name_the_attribute_and_hint() {
        let err = ConditionTest::time(&[("holiday", "sometimes")]).unwrap_err();
        assert!(
            err.starts_with("holiday=\"sometimes\": not yes or no (hint: "),
            "{err}"
        );
        let err = ConditionTest::time(&[("holiday", "yes"), ("holiday", "no")]).unwrap_err();
        assert!(err.contains("given twice (hint: "), "{err}");
        let err = ConditionTest::time(&[("hour", "9-25")]).unwrap_err();
        assert!(
            err.starts_with("hour=\"9-25\", byte 2: 25 is out of range 0-23 (hint: "),
            "{err}"
        );
        let err = ConditionTest::time(&[("weekday", "mon")]).unwrap_err();
        assert!(err.contains("unknown time condition (hint: "), "{err}");
        assert!(ConditionTest::is_time_attribute("holiday"));
        assert!(ConditionTest::is_time_attribute("date-time"));
        assert!(!ConditionTest::is_time_attribute("destination_number"));
    }

    #[test]
    fn flags_use_freeswitch_spellings() {
        assert_eq!(parse_flag("TRUE"), Some(true));
        assert_eq!(parse_flag("off"), Some(false));
        assert_eq!(parse_flag("maybe"), None);
    }

    #[test]
    fn diagnostic_display_names_file_line_column() {
        let d = Diagnostic {
            severity: Severity::Error,
            location: Location {
                file: "plan.xml".into(),
                line: 3,
                column: 7,
            },
            message: "bad".into(),
            hint: Some("fix it".into()),
        };
        assert_eq!(d.to_string(), "plan.xml:3:7: error: bad (hint: fix it)");
    }
}
