//! The dialplan IR: what every front end (XML today, TOML next) compiles to and what the
//! matcher walks. It keeps each element's source [`Location`] so `dialplan check` and
//! `dialplan test` can point at the line an engineer wrote.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

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
    /// The caller-supplied civil time falls within every term.
    Time(TimeSpec),
    /// A bare `<condition>`.
    Always,
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

/// The wall-clock facts a time condition looks at, supplied by the caller (no clock is read
/// here). `wday` counts as FreeSWITCH does: 1 = Sunday … 7 = Saturday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    pub year: u32,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub mday: u32,
    /// 1 (Sunday)..=7 (Saturday)
    pub wday: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// A time condition: true when every term holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeSpec {
    pub terms: Vec<TimeTerm>,
}

impl TimeSpec {
    pub fn matches(&self, now: &CivilTime) -> bool {
        self.terms.iter().all(|term| term.matches(now))
    }
}

/// One attribute of a time condition, such as `wday="2-6"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeTerm {
    pub field: TimeField,
    /// True when any span holds.
    pub spans: Vec<Span>,
}

impl TimeTerm {
    pub fn matches(&self, now: &CivilTime) -> bool {
        let value = self.field.value(now);
        self.spans.iter().any(|span| span.contains(value))
    }
}

/// An inclusive range of values; `first > last` wraps around (`hour="22-6"`, `wday="7-1"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first: u32,
    pub last: u32,
}

impl Span {
    pub fn contains(&self, value: u32) -> bool {
        if self.first <= self.last {
            (self.first..=self.last).contains(&value)
        } else {
            value >= self.first || value <= self.last
        }
    }
}

/// The time attributes FreeSWITCH's `<condition>` accepts that this IR models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeField {
    Year,
    Month,
    MonthDay,
    WeekDay,
    Hour,
    Minute,
    /// 1..=1440; 00:00 is minute 1, as in FreeSWITCH.
    MinuteOfDay,
}

const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

impl TimeField {
    pub const ALL: [TimeField; 7] = [
        TimeField::Year,
        TimeField::Month,
        TimeField::MonthDay,
        TimeField::WeekDay,
        TimeField::Hour,
        TimeField::Minute,
        TimeField::MinuteOfDay,
    ];

    /// The XML attribute name.
    pub fn attribute(self) -> &'static str {
        match self {
            TimeField::Year => "year",
            TimeField::Month => "mon",
            TimeField::MonthDay => "mday",
            TimeField::WeekDay => "wday",
            TimeField::Hour => "hour",
            TimeField::Minute => "minute",
            TimeField::MinuteOfDay => "minute-of-day",
        }
    }

    pub fn from_attribute(name: &str) -> Option<TimeField> {
        TimeField::ALL.into_iter().find(|f| f.attribute() == name)
    }

    /// The values the field can take.
    pub fn bounds(self) -> (u32, u32) {
        match self {
            TimeField::Year => (1970, 9999),
            TimeField::Month => (1, 12),
            TimeField::MonthDay => (1, 31),
            TimeField::WeekDay => (1, 7),
            TimeField::Hour => (0, 23),
            TimeField::Minute => (0, 59),
            TimeField::MinuteOfDay => (1, 1440),
        }
    }

    pub fn value(self, now: &CivilTime) -> u32 {
        match self {
            TimeField::Year => now.year,
            TimeField::Month => now.month,
            TimeField::MonthDay => now.mday,
            TimeField::WeekDay => now.wday,
            TimeField::Hour => now.hour,
            TimeField::Minute => now.minute,
            TimeField::MinuteOfDay => now.hour * 60 + now.minute + 1,
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            TimeField::WeekDay => &WEEKDAYS,
            TimeField::Month => &MONTHS,
            _ => &[],
        }
    }

    /// Parses a FreeSWITCH value list: `2-6`, `1,3,5-7`, and for `wday`/`mon` also the
    /// English names (`mon-fri`, `jan`). The error text says what was wrong.
    pub fn parse_spans(self, text: &str) -> Result<Vec<Span>, String> {
        let mut spans = Vec::new();
        for item in text.split(',') {
            let item = item.trim();
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (self.parse_value(a)?, self.parse_value(b)?),
                None => {
                    let v = self.parse_value(item)?;
                    (v, v)
                }
            };
            spans.push(Span { first, last });
        }
        Ok(spans)
    }

    fn parse_value(self, text: &str) -> Result<u32, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if let Some(index) = self.names().iter().position(|n| *n == lower) {
            return Ok(index as u32 + 1);
        }
        let (min, max) = self.bounds();
        match text.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            Ok(v) => Err(format!(
                "{} {v} is out of range {min}-{max}",
                self.attribute()
            )),
            Err(_) => Err(format!(
                "{} value {text:?} is not a number",
                self.attribute()
            )),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(hour: u32, minute: u32, wday: u32) -> CivilTime {
        CivilTime {
            year: 2026,
            month: 11,
            mday: 24,
            wday,
            hour,
            minute,
            second: 0,
        }
    }

    #[test]
    fn spans_parse_lists_ranges_and_names() {
        assert_eq!(
            TimeField::WeekDay.parse_spans("mon-fri").unwrap(),
            vec![Span { first: 2, last: 6 }]
        );
        assert_eq!(
            TimeField::Hour.parse_spans("1, 3-5").unwrap(),
            vec![Span { first: 1, last: 1 }, Span { first: 3, last: 5 }]
        );
        assert_eq!(
            TimeField::Month.parse_spans("Dec").unwrap(),
            vec![Span {
                first: 12,
                last: 12
            }]
        );
        assert_eq!(
            TimeField::Hour.parse_spans("9-24").unwrap_err(),
            "hour 24 is out of range 0-23"
        );
        assert!(TimeField::WeekDay.parse_spans("funday").is_err());
        assert!(TimeField::Hour.parse_spans("").is_err());
    }

    #[test]
    fn wrapping_spans_and_minute_of_day() {
        let night = TimeTerm {
            field: TimeField::Hour,
            spans: TimeField::Hour.parse_spans("22-6").unwrap(),
        };
        assert!(night.matches(&at(23, 0, 3)));
        assert!(night.matches(&at(6, 59, 3)));
        assert!(!night.matches(&at(7, 0, 3)));
        let first_minute = TimeTerm {
            field: TimeField::MinuteOfDay,
            spans: TimeField::MinuteOfDay.parse_spans("1").unwrap(),
        };
        assert!(first_minute.matches(&at(0, 0, 1)));
        assert!(!first_minute.matches(&at(0, 1, 1)));
    }

    #[test]
    fn spec_needs_every_term() {
        let spec = TimeSpec {
            terms: vec![
                TimeTerm {
                    field: TimeField::WeekDay,
                    spans: vec![Span { first: 2, last: 6 }],
                },
                TimeTerm {
                    field: TimeField::Hour,
                    spans: vec![Span { first: 9, last: 17 }],
                },
            ],
        };
        assert!(spec.matches(&at(10, 0, 3)));
        assert!(!spec.matches(&at(10, 0, 1)));
        assert!(!spec.matches(&at(18, 0, 3)));
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
