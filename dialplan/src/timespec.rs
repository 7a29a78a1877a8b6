//! FreeSWITCH time conditions and a holiday calendar.
//!
//! A FreeSWITCH `<condition>` may carry time attributes, all of which must hold
//! (`switch_xml_std_datetime_check` in FreeSWITCH `src/switch_xml.c`):
//!
//! | attribute       | values                           | compared with                      |
//! |-----------------|----------------------------------|------------------------------------|
//! | `year`          | 0-9999                           | the year                           |
//! | `yday`          | 1-366                            | day of the year, 1 = 1 January     |
//! | `mon`           | 1-12                             | the month                          |
//! | `mday`          | 1-31                             | day of the month                   |
//! | `wday`          | 1-7 or `sun`..`sat`              | day of the week, 1 = Sunday        |
//! | `hour`          | 0-23                             | the hour                           |
//! | `minute`        | 0-59                             | the minute                         |
//! | `minute-of-day` | 1-1440                           | `hour * 60 + minute + 1`           |
//! | `time-of-day`   | `08:00-17:30`, `08:00:00-17:30:59` | seconds since midnight, both ends included |
//! | `date-time`     | `2026-12-24 18:00~2026-12-26 08:00` | the local date and time, start included, end excluded |
//!
//! Each value is a comma list. Numeric items are a value or a range `a-b`; where FreeSWITCH
//! never matches a range written high-low, we read it as wrapping round (`hour="22-6"` is
//! 22:00 to 06:59, `wday="fri-mon"` is Friday to Monday), which is what such a range means
//! to the person who wrote it. `time-of-day` wraps the same way (as FreeSWITCH's
//! `switch_tod_cmp` does). Conditions are checked against a [`CivilTime`]: local time,
//! computed from a Unix time and a UTC offset by pure arithmetic (no clock, no tz database).
//!
//! [`Holidays`] is a calendar in TOML (one `[[holiday]]` table per holiday, a single `date`
//! or a `from`/`to` span, `YYYY-MM-DD` for one year or `MM-DD` for every year).

use serde::Deserialize;

/// Every attribute [`TimeSpec::parse`] accepts, in the order of the table above.
pub const TIME_ATTRIBUTES: &[&str] = &[
    "year",
    "yday",
    "mon",
    "mday",
    "wday",
    "hour",
    "minute",
    "minute-of-day",
    "time-of-day",
    "date-time",
];

/// Whether `name` is a time attribute (so a condition can hand exactly those to
/// [`TimeSpec::parse`]).
pub fn is_time_attribute(name: &str) -> bool {
    TIME_ATTRIBUTES.contains(&name)
}

/// Why a time condition or a holiday calendar was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeSpecError {
    #[error(
        "{attribute}=\"{value}\": unknown time condition (hint: use one of year, yday, mon, mday, wday, hour, minute, minute-of-day, time-of-day, date-time)"
    )]
    UnknownAttribute { attribute: String, value: String },
    #[error("{attribute}=\"{value}\": given twice (hint: put all values in one list, e.g. 1-5,7)")]
    Duplicate { attribute: String, value: String },
    #[error("{attribute}=\"{value}\", byte {offset}: {problem} (hint: {hint})")]
    BadValue {
        attribute: String,
        value: String,
        offset: usize,
        problem: String,
        hint: String,
    },
    #[error("holiday calendar: {message}")]
    HolidayToml { message: String },
    #[error("holiday \"{name}\": {problem} (hint: {hint})")]
    BadHoliday {
        name: String,
        problem: String,
        hint: String,
    },
}

/// A local date and time, as the time conditions see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i32,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub mday: u8,
    /// 1-7, 1 = Sunday (FreeSWITCH's `wday`, `tm_wday + 1`).
    pub wday: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-59 (leap seconds do not exist in Unix time).
    pub second: u8,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
/// Low-Level Date Algorithms", `days_from_civil`).
fn days_from_civil(year: i64, month: u32, mday: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(mday) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let mday = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, mday)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

impl CivilTime {
    /// The local time `utc_offset_secs` east of UTC at Unix time `secs`.
    pub fn from_unix(secs: i64, utc_offset_secs: i32) -> CivilTime {
        let local = secs + i64::from(utc_offset_secs);
        let days = local.div_euclid(86_400);
        let of_day = local.rem_euclid(86_400);
        let (year, month, mday) = civil_from_days(days);
        CivilTime {
            year: year as i32,
            month,
            mday,
            // 1970-01-01 was a Thursday: 5 with Sunday = 1.
            wday: ((days + 4).rem_euclid(7) + 1) as u8,
            hour: (of_day / 3600) as u8,
            minute: (of_day / 60 % 60) as u8,
            second: (of_day % 60) as u8,
        }
    }

    /// A local time from its parts; `None` if any part is out of range (30 February, 24:00).
    pub fn from_civil(
        year: i32,
        month: u8,
        mday: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> Option<CivilTime> {
        if !(1..=12).contains(&month)
            || mday == 0
            || mday > days_in_month(i64::from(year), month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let days = days_from_civil(i64::from(year), u32::from(month), u32::from(mday));
        let of_day = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        Some(CivilTime::from_unix(days * 86_400 + of_day, 0))
    }

    /// Day of the year, 1 = 1 January.
    pub fn yday(&self) -> u16 {
        let days = days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.mday),
        );
        (days - days_from_civil(i64::from(self.year), 1, 1) + 1) as u16
    }

    /// Seconds since 1970-01-01 00:00 of this local time read as if it were UTC: a scale on
    /// which two local times compare correctly.
    fn local_seconds(&self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.mday),
        ) * 86_400
            + self.second_of_day()
    }

    fn second_of_day(&self) -> i64 {
        i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }
}

/// Inclusive range; `lo > hi` wraps round the end of the cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    lo: i64,
    hi: i64,
}

impl Span {
    fn contains(self, v: i64) -> bool {
        if self.lo <= self.hi {
            self.lo <= v && v <= self.hi
        } else {
            v >= self.lo || v <= self.hi
        }
    }
}

/// The numeric attributes: name, lowest, highest, hint.
const NUMERIC: &[(&str, i64, i64, &str)] = &[
    (
        "year",
        0,
        9999,
        "years are written in full, e.g. 2026 or 2026-2027",
    ),
    (
        "yday",
        1,
        366,
        "days of the year are 1-366, e.g. 1-7,359-366",
    ),
    (
        "mon",
        1,
        12,
        "months are 1-12 (1 = January) or jan..dec, e.g. 1-3,12 or nov-feb",
    ),
    (
        "mday",
        1,
        31,
        "days of the month are 1-31, e.g. 1-15 or 25-5 across the month end",
    ),
    (
        "wday",
        1,
        7,
        "days of the week are 1-7 with 1 = Sunday, or sun..sat, e.g. mon-fri or 2-6",
    ),
    (
        "hour",
        0,
        23,
        "hours are 0-23, e.g. 9-17 or 22-6 across midnight",
    ),
    ("minute", 0, 59, "minutes are 0-59, e.g. 0-29"),
    (
        "minute-of-day",
        1,
        1440,
        "minutes of the day are 1-1440 with 1 = 00:00, e.g. 541-1020 for 09:00-16:59",
    ),
];

const TIME_OF_DAY_HINT: &str =
    "write HH:MM-HH:MM or HH:MM:SS-HH:MM:SS, e.g. 08:00-17:30 or 22:00-06:00";
const DATE_TIME_HINT: &str = "write YYYY-MM-DD HH:MM~YYYY-MM-DD HH:MM (seconds optional), e.g. 2026-12-24 18:00~2026-12-26 08:00";

/// A set of time conditions; a time matches when every condition given holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeSpec {
    year: Option<Vec<Span>>,
    yday: Option<Vec<Span>>,
    mon: Option<Vec<Span>>,
    mday: Option<Vec<Span>>,
    wday: Option<Vec<Span>>,
    hour: Option<Vec<Span>>,
    minute: Option<Vec<Span>>,
    minute_of_day: Option<Vec<Span>>,
    /// Seconds of the day, both ends included.
    time_of_day: Option<Vec<Span>>,
    /// Local seconds ([`CivilTime::local_seconds`]), start included, end excluded.
    date_time: Option<Vec<(i64, i64)>>,
}

struct Bad<'a> {
    attribute: &'a str,
    value: &'a str,
    hint: &'a str,
}

impl Bad<'_> {
    fn at(&self, offset: usize, problem: impl Into<String>) -> TimeSpecError {
        TimeSpecError::BadValue {
            attribute: self.attribute.to_owned(),
            value: self.value.to_owned(),
            offset,
            problem: problem.into(),
            hint: self.hint.to_owned(),
        }
    }
}

/// Splits a comma list into (byte offset, trimmed item).
fn items(value: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    value.split(',').map(move |raw| {
        let offset = start + (raw.len() - raw.trim_start().len());
        start += raw.len() + 1;
        (offset, raw.trim())
    })
}

fn weekday(name: &str) -> Option<i64> {
    const DAYS: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    let lower = name.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower.len() >= 3 && d.starts_with(&lower))
        .map(|i| i as i64 + 1)
}

/// `jan`..`dec` or the full English name → 1-12 (the old `mon` spelling engineers use).
fn month(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let lower = name.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| lower.len() >= 3 && m.starts_with(&lower))
        .map(|i| i as i64 + 1)
}

fn parse_numeric(bad: &Bad<'_>, min: i64, max: i64) -> Result<Vec<Span>, TimeSpecError> {
    let number = |offset: usize, text: &str| -> Result<i64, TimeSpecError> {
        let n = if bad.attribute == "wday" && text.bytes().all(|b| b.is_ascii_alphabetic()) {
            weekday(text)
                .ok_or_else(|| bad.at(offset, format!("\"{text}\" is not a day of the week")))?
        } else if bad.attribute == "mon" && text.bytes().all(|b| b.is_ascii_alphabetic()) {
            month(text).ok_or_else(|| bad.at(offset, format!("\"{text}\" is not a month")))?
        } else if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<i64>()
                .map_err(|_| bad.at(offset, format!("{text} is out of range {min}-{max}")))?
        } else if text.is_empty() {
            return Err(bad.at(offset, "missing number"));
        } else {
            return Err(bad.at(offset, format!("\"{text}\" is not a number")));
        };
        if n < min || n > max {
            return Err(bad.at(offset, format!("{n} is out of range {min}-{max}")));
        }
        Ok(n)
    };
    let mut spans = Vec::new();
    for (offset, item) in items(bad.value) {
        let span = match item.split_once('-') {
            Some((lo, hi)) => {
                let hi_offset = offset + lo.len() + 1;
                let hi_trimmed = hi.trim_start();
                Span {
                    lo: number(offset, lo.trim_end())?,
                    hi: number(hi_offset + (hi.len() - hi_trimmed.len()), hi_trimmed)?,
                }
            }
            None => {
                let n = number(offset, item)?;
                Span { lo: n, hi: n }
            }
        };
        spans.push(span);
    }
    Ok(spans)
}

/// `HH:MM` or `HH:MM:SS` at `offset` → seconds of the day.
fn parse_clock(bad: &Bad<'_>, offset: usize, text: &str) -> Result<i64, TimeSpecError> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad.at(offset, format!("\"{text}\" is not a time of day")));
    }
    let field = |i: usize| parts.get(i).map_or(0, |p| p.parse::<i64>().unwrap_or(0));
    let (h, m, s) = (field(0), field(1), field(2));
    if h > 23 || m > 59 || s > 59 {
        return Err(bad.at(
            offset,
            format!("\"{text}\" is out of range 00:00:00-23:59:59"),
        ));
    }
    Ok(h * 3600 + m * 60 + s)
}

fn parse_time_of_day(bad: &Bad<'_>) -> Result<Vec<Span>, TimeSpecError> {
    let mut spans = Vec::new();
    for (offset, item) in items(bad.value) {
        let Some((lo, hi)) = item.split_once('-') else {
            return Err(bad.at(offset, format!("\"{item}\" is not a range")));
        };
        spans.push(Span {
            lo: parse_clock(bad, offset, lo)?,
            hi: parse_clock(bad, offset + lo.len() + 1, hi)?,
        });
    }
    Ok(spans)
}

/// `YYYY-MM-DD` → (year, month, mday), checked against the calendar.
fn parse_date(text: &str) -> Option<(i32, u8, u8)> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !digits(0..4)
        || !digits(5..7)
        || !digits(8..10)
    {
        return None;
    }
    let year: i32 = text[0..4].parse().ok()?;
    let month: u8 = text[5..7].parse().ok()?;
    let mday: u8 = text[8..10].parse().ok()?;
    CivilTime::from_civil(year, month, mday, 0, 0, 0).map(|_| (year, month, mday))
}

/// `YYYY-MM-DD HH:MM[:SS]` → local seconds.
fn parse_date_time(bad: &Bad<'_>, offset: usize, text: &str) -> Result<i64, TimeSpecError> {
    let Some((date, clock)) = text.split_once(' ') else {
        return Err(bad.at(offset, format!("\"{text}\" is not a date and time")));
    };
    let (year, month, mday) = parse_date(date)
        .ok_or_else(|| bad.at(offset, format!("\"{date}\" is not a calendar date")))?;
    let clock_offset = offset + date.len() + 1 + (clock.len() - clock.trim_start().len());
    let of_day = parse_clock(bad, clock_offset, clock.trim())?;
    Ok(days_from_civil(i64::from(year), u32::from(month), u32::from(mday)) * 86_400 + of_day)
}

fn parse_date_time_list(bad: &Bad<'_>) -> Result<Vec<(i64, i64)>, TimeSpecError> {
    let mut ranges = Vec::new();
    for (offset, item) in items(bad.value) {
        let Some((start, end)) = item.split_once('~') else {
            return Err(bad.at(
                offset,
                format!("\"{item}\" has no '~' between start and end"),
            ));
        };
        let end_offset = offset + start.len() + 1;
        let end_trimmed = end.trim_start();
        let from = parse_date_time(bad, offset, start.trim_end())?;
        let to = parse_date_time(
            bad,
            end_offset + (end.len() - end_trimmed.len()),
            end_trimmed,
        )?;
        if to <= from {
            return Err(bad.at(end_offset, "the range ends before it starts"));
        }
        ranges.push((from, to));
    }
    Ok(ranges)
}

impl TimeSpec {
    /// Parses `(attribute, value)` pairs, e.g. `[("wday", "mon-fri"), ("hour", "9-17")]`.
    /// Every attribute must be a time attribute ([`TIME_ATTRIBUTES`]); none may repeat.
    /// No pairs gives a spec that matches every time.
    pub fn parse(pairs: &[(&str, &str)]) -> Result<TimeSpec, TimeSpecError> {
        let mut spec = TimeSpec::default();
        for &(attribute, value) in pairs {
            let owned = || (attribute.to_owned(), value.to_owned());
            if let Some(&(_, min, max, hint)) = NUMERIC.iter().find(|(name, ..)| *name == attribute)
            {
                let spans = parse_numeric(
                    &Bad {
                        attribute,
                        value,
                        hint,
                    },
                    min,
                    max,
                )?;
                let slot = match attribute {
                    "year" => &mut spec.year,
                    "yday" => &mut spec.yday,
                    "mon" => &mut spec.mon,
                    "mday" => &mut spec.mday,
                    "wday" => &mut spec.wday,
                    "hour" => &mut spec.hour,
                    "minute" => &mut spec.minute,
                    _ => &mut spec.minute_of_day,
                };
                if slot.replace(spans).is_some() {
                    let (attribute, value) = owned();
                    return Err(TimeSpecError::Duplicate { attribute, value });
                }
            } else if attribute == "time-of-day" {
                let spans = parse_time_of_day(&Bad {
                    attribute,
                    value,
                    hint: TIME_OF_DAY_HINT,
                })?;
                if spec.time_of_day.replace(spans).is_some() {
                    let (attribute, value) = owned();
                    return Err(TimeSpecError::Duplicate { attribute, value });
                }
            } else if attribute == "date-time" {
                let ranges = parse_date_time_list(&Bad {
                    attribute,
                    value,
                    hint: DATE_TIME_HINT,
                })?;
                if spec.date_time.replace(ranges).is_some() {
                    let (attribute, value) = owned();
                    return Err(TimeSpecError::Duplicate { attribute, value });
                }
            } else {
                let (attribute, value) = owned();
                return Err(TimeSpecError::UnknownAttribute { attribute, value });
            }
        }
        Ok(spec)
    }

    /// Whether every condition holds at local time `t`.
    pub fn matches(&self, t: &CivilTime) -> bool {
        let any = |spans: &Option<Vec<Span>>, v: i64| {
            spans
                .as_ref()
                .is_none_or(|spans| spans.iter().any(|s| s.contains(v)))
        };
        any(&self.year, i64::from(t.year))
            && any(&self.yday, i64::from(t.yday()))
            && any(&self.mon, i64::from(t.month))
            && any(&self.mday, i64::from(t.mday))
            && any(&self.wday, i64::from(t.wday))
            && any(&self.hour, i64::from(t.hour))
            && any(&self.minute, i64::from(t.minute))
            && any(
                &self.minute_of_day,
                i64::from(t.hour) * 60 + i64::from(t.minute) + 1,
            )
            && any(&self.time_of_day, t.second_of_day())
            && self.date_time.as_ref().is_none_or(|ranges| {
                let now = t.local_seconds();
                ranges.iter().any(|&(from, to)| from <= now && now < to)
            })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    #[serde(default)]
    holiday: Vec<HolidayRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayRow {
    name: String,
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Days {
    /// Days since 1970-01-01, both ends included.
    Dated { first: i64, last: i64 },
    /// `month * 100 + mday`, both ends included; `first > last` wraps over New Year.
    Yearly { first: u16, last: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Holiday {
    name: String,
    days: Days,
}

/// A holiday calendar.
///
/// ```toml
/// [[holiday]]
/// name = "Spring Festival"
/// from = "2027-02-05"
/// to = "2027-02-11"
///
/// [[holiday]]
/// name = "Christmas"
/// date = "12-25"          # every year
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holidays {
    holidays: Vec<Holiday>,
}

const HOLIDAY_HINT: &str = "give date = \"YYYY-MM-DD\" (one year) or \"MM-DD\" (every year), or from = and to = in the same form";

#[derive(Clone, Copy)]
enum Day {
    Dated(i64),
    Yearly(u16),
}

fn parse_day(name: &str, field: &str, text: &str) -> Result<Day, TimeSpecError> {
    if let Some((year, month, mday)) = parse_date(text) {
        return Ok(Day::Dated(days_from_civil(
            i64::from(year),
            u32::from(month),
            u32::from(mday),
        )));
    }
    let b = text.as_bytes();
    if b.len() == 5 && b[2] == b'-' && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit) {
        let month: u8 = text[..2].parse().unwrap_or(0);
        let mday: u8 = text[3..].parse().unwrap_or(0);
        // Any year: 02-29 is a valid every-year date (it falls in leap years only).
        if (1..=12).contains(&month) && mday >= 1 && mday <= days_in_month(2000, month) {
            return Ok(Day::Yearly(u16::from(month) * 100 + u16::from(mday)));
        }
    }
    Err(TimeSpecError::BadHoliday {
        name: name.to_owned(),
        problem: format!("{field} = \"{text}\" is not a calendar date"),
        hint: HOLIDAY_HINT.to_owned(),
    })
}

impl Holidays {
    /// An empty calendar.
    pub const fn new() -> Holidays {
        Holidays {
            holidays: Vec::new(),
        }
    }

    /// Parses a calendar from TOML text (one `[[holiday]]` table per holiday).
    pub fn parse(text: &str) -> Result<Holidays, TimeSpecError> {
        let file: CalendarFile = toml::from_str(text).map_err(|e| TimeSpecError::HolidayToml {
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut holidays = Vec::with_capacity(file.holiday.len());
        for row in file.holiday {
            let bad = |problem: &str| TimeSpecError::BadHoliday {
                name: row.name.clone(),
                problem: problem.to_owned(),
                hint: HOLIDAY_HINT.to_owned(),
            };
            let (first, last) = match (&row.date, &row.from, &row.to) {
                (Some(date), None, None) => {
                    let day = parse_day(&row.name, "date", date)?;
                    (day, day)
                }
                (None, Some(from), Some(to)) => (
                    parse_day(&row.name, "from", from)?,
                    parse_day(&row.name, "to", to)?,
                ),
                (Some(_), _, _) => return Err(bad("has both date and from/to")),
                (None, None, None) => return Err(bad("has no date")),
                (None, _, _) => return Err(bad("needs both from and to")),
            };
            let days = match (first, last) {
                (Day::Dated(first), Day::Dated(last)) if first <= last => {
                    Days::Dated { first, last }
                }
                (Day::Dated(_), Day::Dated(_)) => return Err(bad("to is before from")),
                (Day::Yearly(first), Day::Yearly(last)) => Days::Yearly { first, last },
                _ => return Err(bad("from and to must both have a year or both not")),
            };
            holidays.push(Holiday {
                name: row.name,
                days,
            });
        }
        Ok(Holidays { holidays })
    }

    /// The name of the first holiday (in file order) that `t` falls on.
    pub fn is_holiday(&self, t: &CivilTime) -> Option<&str> {
        let day = days_from_civil(i64::from(t.year), u32::from(t.month), u32::from(t.mday));
        let key = u16::from(t.month) * 100 + u16::from(t.mday);
        self.holidays
            .iter()
            .find(|h| match h.days {
                Days::Dated { first, last } => first <= day && day <= last,
                Days::Yearly { first, last } if first <= last => first <= key && key <= last,
                Days::Yearly { first, last } => key >= first || key <= last,
            })
            .map(|h| h.name.as_str())
    }

    /// How many holidays the calendar holds.
    pub fn len(&self) -> usize {
        self.holidays.len()
    }

    /// Whether the calendar holds no holiday.
    pub fn is_empty(&self) -> bool {
        self.holidays.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i32, month: u8, mday: u8, hour: u8, minute: u8, second: u8) -> CivilTime {
        CivilTime::from_civil(year, month, mday, hour, minute, second).unwrap()
    }

    /// (unix seconds, utc offset, y, m, d, wday (1 = Sunday), h, min, s, yday)
    type KnownDate = (i64, i32, i32, u8, u8, u8, u8, u8, u8, u16);

    #[test]
    fn civil_from_unix_known_dates() {
        // (unix seconds, utc offset, y, m, d, wday (1 = Sunday), h, min, s, yday)
        let table: &[KnownDate] = &[
            (0, 0, 1970, 1, 1, 5, 0, 0, 0, 1),
            (-1, 0, 1969, 12, 31, 4, 23, 59, 59, 365),
            (951_782_400, 0, 2000, 2, 29, 3, 0, 0, 0, 60), // leap year divisible by 400
            (1_709_210_096, 0, 2024, 2, 29, 5, 12, 34, 56, 60),
            (4_107_542_400, 0, 2100, 3, 1, 2, 0, 0, 0, 60), // 2100 is not a leap year
            (-2_203_891_200, 0, 1900, 3, 1, 5, 0, 0, 0, 60), // nor is 1900
            (1_798_135_200, 0, 2026, 12, 24, 5, 18, 0, 0, 358),
            // 2026-12-31 16:00 UTC is already New Year's Day in Beijing (UTC+8)
            (
                1_798_761_600 - 8 * 3600,
                8 * 3600,
                2027,
                1,
                1,
                6,
                0,
                0,
                0,
                1,
            ),
            // and still 31 December in New York (UTC-5)
            (1_798_761_600, -5 * 3600, 2026, 12, 31, 5, 19, 0, 0, 365),
            (1_795_536_000 + 3599, 0, 2026, 11, 24, 3, 16, 59, 59, 328),
        ];
        for &(secs, offset, year, month, mday, wday, hour, minute, second, yday) in table {
            let t = CivilTime::from_unix(secs, offset);
            assert_eq!(
                t,
                CivilTime {
                    year,
                    month,
                    mday,
                    wday,
                    hour,
                    minute,
                    second
                },
                "{secs} {offset}"
            );
            assert_eq!(t.yday(), yday, "{secs}");
            assert_eq!(at(year, month, mday, hour, minute, second), t);
        }
    }

    #[test]
    fn civil_round_trips_every_day_for_800_years() {
        let mut wday = CivilTime::from_unix(days_from_civil(1800, 1, 1) * 86_400, 0).wday;
        for days in days_from_civil(1800, 1, 1)..days_from_civil(2600, 1, 1) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, u32::from(m), u32::from(d)), days);
            assert!(d <= days_in_month(y, m));
            let t = CivilTime::from_unix(days * 86_400, 0);
            assert_eq!(t.wday, wday);
            wday = wday % 7 + 1;
        }
    }

    #[test]
    fn from_civil_rejects_impossible_times() {
        assert!(CivilTime::from_civil(2027, 2, 29, 0, 0, 0).is_none());
        assert!(CivilTime::from_civil(2028, 2, 29, 0, 0, 0).is_some());
        assert!(CivilTime::from_civil(2026, 4, 31, 0, 0, 0).is_none());
        assert!(CivilTime::from_civil(2026, 13, 1, 0, 0, 0).is_none());
        assert!(CivilTime::from_civil(2026, 0, 1, 0, 0, 0).is_none());
        assert!(CivilTime::from_civil(2026, 1, 0, 0, 0, 0).is_none());
        assert!(CivilTime::from_civil(2026, 1, 1, 24, 0, 0).is_none());
        assert!(CivilTime::from_civil(2026, 1, 1, 0, 60, 0).is_none());
        assert!(CivilTime::from_civil(2026, 1, 1, 0, 0, 60).is_none());
    }

    /// (attribute, value, times that match, times that do not)
    type Row = (
        &'static str,
        &'static str,
        &'static [CivilTime],
        &'static [CivilTime],
    );

    const fn t(
        year: i32,
        month: u8,
        mday: u8,
        wday: u8,
        hour: u8,
        minute: u8,
        second: u8,
    ) -> CivilTime {
        CivilTime {
            year,
            month,
            mday,
            wday,
            hour,
            minute,
            second,
        }
    }

    // 2026-11-24 is a Tuesday (wday 3); 2026-11-29 a Sunday (1); 2026-11-28 a Saturday (7).
    const TUE: CivilTime = t(2026, 11, 24, 3, 16, 30, 0);
    const SUN: CivilTime = t(2026, 11, 29, 1, 10, 0, 0);
    const SAT: CivilTime = t(2026, 11, 28, 7, 23, 59, 59);
    const FRI: CivilTime = t(2026, 11, 27, 6, 0, 0, 0);
    const MON: CivilTime = t(2026, 11, 30, 2, 6, 59, 59);

    const ROWS: &[Row] = &[
        ("year", "2026", &[TUE], &[t(2027, 1, 1, 6, 0, 0, 0)]),
        (
            "year",
            "2020-2025,2027",
            &[t(2027, 1, 1, 6, 0, 0, 0), t(2020, 1, 1, 4, 0, 0, 0)],
            &[TUE],
        ),
        ("yday", "328", &[TUE], &[SUN]),
        (
            "yday",
            "360-5",
            &[t(2026, 12, 31, 5, 0, 0, 0), t(2027, 1, 5, 3, 0, 0, 0)],
            &[t(2027, 1, 6, 4, 0, 0, 0), TUE],
        ),
        ("mon", "11", &[TUE], &[t(2026, 12, 1, 3, 0, 0, 0)]),
        (
            "mon",
            "1-3,12",
            &[t(2026, 12, 1, 3, 0, 0, 0), t(2026, 3, 31, 3, 0, 0, 0)],
            &[TUE, t(2026, 4, 1, 4, 0, 0, 0)],
        ),
        (
            "mon",
            "11-2",
            &[TUE, t(2027, 2, 1, 2, 0, 0, 0)],
            &[t(2027, 3, 1, 2, 0, 0, 0), t(2026, 10, 31, 7, 0, 0, 0)],
        ),
        ("mday", "24", &[TUE], &[SUN]),
        (
            "mday",
            "25-5",
            &[SUN, t(2026, 12, 5, 7, 0, 0, 0)],
            &[TUE, t(2026, 12, 6, 1, 0, 0, 0)],
        ),
        ("mday", "31", &[t(2026, 12, 31, 5, 0, 0, 0)], &[MON]),
        ("wday", "3", &[TUE], &[SUN]),
        ("wday", "1", &[SUN], &[TUE, SAT]),
        ("wday", "7", &[SAT], &[SUN]),
        ("wday", "2-6", &[TUE, FRI, MON], &[SAT, SUN]),
        ("wday", "mon-fri", &[TUE, FRI, MON], &[SAT, SUN]),
        ("wday", "Sat,sun", &[SAT, SUN], &[TUE]),
        ("wday", "saturday, Sunday", &[SAT, SUN], &[FRI]),
        ("wday", "fri-mon", &[FRI, SAT, SUN, MON], &[TUE]),
        ("wday", "7-1", &[SAT, SUN], &[FRI, MON]),
        ("hour", "16", &[TUE], &[SUN]),
        ("hour", "9-17", &[TUE, SUN], &[SAT, FRI]),
        ("hour", "22-6", &[SAT, FRI, MON], &[TUE, SUN]),
        ("hour", "0,23", &[SAT, FRI], &[MON]),
        ("minute", "30", &[TUE], &[SUN]),
        ("minute", "0-29", &[SUN, FRI], &[TUE, SAT]),
        ("minute", "55-5", &[SAT, FRI, SUN], &[TUE]),
        // minute-of-day: 1 = 00:00, 1440 = 23:59; 16:30 = 991; 06:59 = 420
        ("minute-of-day", "991", &[TUE], &[SUN]),
        ("minute-of-day", "1", &[FRI], &[MON]),
        ("minute-of-day", "1440", &[SAT], &[FRI]),
        ("minute-of-day", "1380-420", &[SAT, FRI, MON], &[TUE, SUN]),
        ("minute-of-day", "541-1020", &[TUE, SUN], &[MON, SAT]),
        (
            "time-of-day",
            "08:00-17:30",
            &[
                TUE,
                SUN,
                t(2026, 1, 1, 5, 8, 0, 0),
                t(2026, 1, 1, 5, 17, 30, 0),
            ],
            &[
                SAT,
                t(2026, 1, 1, 5, 17, 30, 1),
                t(2026, 1, 1, 5, 7, 59, 59),
            ],
        ),
        (
            "time-of-day",
            "08:00:00-17:30:59",
            &[t(2026, 1, 1, 5, 17, 30, 59)],
            &[t(2026, 1, 1, 5, 17, 31, 0)],
        ),
        (
            "time-of-day",
            "22:00-06:59:59",
            &[SAT, FRI, MON],
            &[TUE, SUN, t(2026, 1, 1, 5, 7, 0, 0)],
        ),
        (
            "time-of-day",
            "09:00-10:00, 16:00-17:00",
            &[TUE, SUN],
            &[SAT],
        ),
        (
            "date-time",
            "2026-12-24 18:00~2026-12-26 08:00",
            &[
                t(2026, 12, 24, 5, 18, 0, 0),
                t(2026, 12, 25, 6, 12, 0, 0),
                t(2026, 12, 26, 7, 7, 59, 59),
            ],
            &[
                t(2026, 12, 24, 5, 17, 59, 59),
                t(2026, 12, 26, 7, 8, 0, 0),
                t(2025, 12, 25, 5, 12, 0, 0),
            ],
        ),
        (
            "date-time",
            "2026-11-24 16:30:00~2026-11-24 16:30:01,2026-12-31 23:00 ~ 2027-01-01 01:00",
            &[
                TUE,
                t(2026, 12, 31, 5, 23, 30, 0),
                t(2027, 1, 1, 6, 0, 59, 0),
            ],
            &[t(2026, 11, 24, 3, 16, 30, 1), t(2027, 1, 1, 6, 1, 0, 0)],
        ),
    ];

    #[test]
    fn attribute_table() {
        for (attribute, value, good, bad) in ROWS {
            let spec = TimeSpec::parse(&[(attribute, value)]).unwrap();
            for time in *good {
                assert!(
                    spec.matches(time),
                    "{attribute}={value} should match {time:?}"
                );
            }
            for time in *bad {
                assert!(
                    !spec.matches(time),
                    "{attribute}={value} should not match {time:?}"
                );
            }
        }
        // The table's hand-written weekdays agree with the calendar.
        for (.., good, bad) in ROWS {
            for time in good.iter().chain(bad.iter()) {
                let computed = at(
                    time.year,
                    time.month,
                    time.mday,
                    time.hour,
                    time.minute,
                    time.second,
                );
                assert_eq!(computed, *time);
            }
        }
    }

    #[test]
    fn month_names() {
        let winter = TimeSpec::parse(&[("mon", "Nov-feb")]).unwrap();
        assert_eq!(winter, TimeSpec::parse(&[("mon", "11-2")]).unwrap());
        assert!(winter.matches(&at(2027, 1, 15, 0, 0, 0)));
        assert!(!winter.matches(&at(2027, 3, 1, 0, 0, 0)));
        assert_eq!(
            TimeSpec::parse(&[("mon", "december")]).unwrap(),
            TimeSpec::parse(&[("mon", "12")]).unwrap()
        );
    }

    #[test]
    fn every_attribute_is_in_the_table() {
        for name in TIME_ATTRIBUTES {
            assert!(ROWS.iter().any(|(a, ..)| a == name), "{name}");
            assert!(is_time_attribute(name));
        }
        assert!(!is_time_attribute("destination_number"));
        assert!(!is_time_attribute("week"));
    }

    #[test]
    fn all_conditions_must_hold() {
        let office =
            TimeSpec::parse(&[("wday", "mon-fri"), ("time-of-day", "09:00-17:00")]).unwrap();
        assert!(office.matches(&TUE)); // Tuesday 16:30
        assert!(!office.matches(&SUN)); // Sunday 10:00
        assert!(!office.matches(&MON)); // Monday 06:59
        let empty = TimeSpec::parse(&[]).unwrap();
        assert!(empty.matches(&TUE) && empty.matches(&SAT));
    }

    #[test]
    fn bad_specs() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "week",
                "1",
                "week=\"1\": unknown time condition (hint: use one of year, yday, mon, mday, wday, hour, minute, minute-of-day, time-of-day, date-time)",
            ),
            (
                "hour",
                "24",
                "hour=\"24\", byte 0: 24 is out of range 0-23 (hint: hours are 0-23, e.g. 9-17 or 22-6 across midnight)",
            ),
            (
                "hour",
                "9-17,x",
                "hour=\"9-17,x\", byte 5: \"x\" is not a number (hint: hours are 0-23, e.g. 9-17 or 22-6 across midnight)",
            ),
            (
                "hour",
                "9-",
                "hour=\"9-\", byte 2: missing number (hint: hours are 0-23, e.g. 9-17 or 22-6 across midnight)",
            ),
            (
                "hour",
                "1,,2",
                "hour=\"1,,2\", byte 2: missing number (hint: hours are 0-23, e.g. 9-17 or 22-6 across midnight)",
            ),
            (
                "hour",
                "99999999999999999999",
                "hour=\"99999999999999999999\", byte 0: 99999999999999999999 is out of range 0-23 (hint: hours are 0-23, e.g. 9-17 or 22-6 across midnight)",
            ),
            (
                "minute",
                "60",
                "minute=\"60\", byte 0: 60 is out of range 0-59 (hint: minutes are 0-59, e.g. 0-29)",
            ),
            (
                "mon",
                "0",
                "mon=\"0\", byte 0: 0 is out of range 1-12 (hint: months are 1-12 (1 = January) or jan..dec, e.g. 1-3,12 or nov-feb)",
            ),
            (
                "mon",
                "1-13",
                "mon=\"1-13\", byte 2: 13 is out of range 1-12 (hint: months are 1-12 (1 = January) or jan..dec, e.g. 1-3,12 or nov-feb)",
            ),
            (
                "mday",
                "32",
                "mday=\"32\", byte 0: 32 is out of range 1-31 (hint: days of the month are 1-31, e.g. 1-15 or 25-5 across the month end)",
            ),
            (
                "yday",
                "367",
                "yday=\"367\", byte 0: 367 is out of range 1-366 (hint: days of the year are 1-366, e.g. 1-7,359-366)",
            ),
            (
                "year",
                "-1",
                "year=\"-1\", byte 0: missing number (hint: years are written in full, e.g. 2026 or 2026-2027)",
            ),
            (
                "wday",
                "0",
                "wday=\"0\", byte 0: 0 is out of range 1-7 (hint: days of the week are 1-7 with 1 = Sunday, or sun..sat, e.g. mon-fri or 2-6)",
            ),
            (
                "wday",
                "mon-fry",
                "wday=\"mon-fry\", byte 4: \"fry\" is not a day of the week (hint: days of the week are 1-7 with 1 = Sunday, or sun..sat, e.g. mon-fri or 2-6)",
            ),
            (
                "mon",
                "decx",
                "mon=\"decx\", byte 0: \"decx\" is not a month (hint: months are 1-12 (1 = January) or jan..dec, e.g. 1-3,12 or nov-feb)",
            ),
            (
                "wday",
                "mo",
                "wday=\"mo\", byte 0: \"mo\" is not a day of the week (hint: days of the week are 1-7 with 1 = Sunday, or sun..sat, e.g. mon-fri or 2-6)",
            ),
            (
                "minute-of-day",
                "0",
                "minute-of-day=\"0\", byte 0: 0 is out of range 1-1440 (hint: minutes of the day are 1-1440 with 1 = 00:00, e.g. 541-1020 for 09:00-16:59)",
            ),
            (
                "minute-of-day",
                "1-1441",
                "minute-of-day=\"1-1441\", byte 2: 1441 is out of range 1-1440 (hint: minutes of the day are 1-1440 with 1 = 00:00, e.g. 541-1020 for 09:00-16:59)",
            ),
            (
                "time-of-day",
                "08:00",
                "time-of-day=\"08:00\", byte 0: \"08:00\" is not a range (hint: write HH:MM-HH:MM or HH:MM:SS-HH:MM:SS, e.g. 08:00-17:30 or 22:00-06:00)",
            ),
            (
                "time-of-day",
                "08:00-25:00",
                "time-of-day=\"08:00-25:00\", byte 6: \"25:00\" is out of range 00:00:00-23:59:59 (hint: write HH:MM-HH:MM or HH:MM:SS-HH:MM:SS, e.g. 08:00-17:30 or 22:00-06:00)",
            ),
            (
                "time-of-day",
                "8:00-17:00",
                "time-of-day=\"8:00-17:00\", byte 0: \"8:00\" is not a time of day (hint: write HH:MM-HH:MM or HH:MM:SS-HH:MM:SS, e.g. 08:00-17:30 or 22:00-06:00)",
            ),
            (
                "time-of-day",
                "08:00-17:00,09:60-10:00",
                "time-of-day=\"08:00-17:00,09:60-10:00\", byte 12: \"09:60\" is out of range 00:00:00-23:59:59 (hint: write HH:MM-HH:MM or HH:MM:SS-HH:MM:SS, e.g. 08:00-17:30 or 22:00-06:00)",
            ),
            (
                "date-time",
                "2026-12-24 18:00",
                "date-time=\"2026-12-24 18:00\", byte 0: \"2026-12-24 18:00\" has no '~' between start and end (hint: write YYYY-MM-DD HH:MM~YYYY-MM-DD HH:MM (seconds optional), e.g. 2026-12-24 18:00~2026-12-26 08:00)",
            ),
            (
                "date-time",
                "2026-12-24 18:00~2026-02-30 08:00",
                "date-time=\"2026-12-24 18:00~2026-02-30 08:00\", byte 17: \"2026-02-30\" is not a calendar date (hint: write YYYY-MM-DD HH:MM~YYYY-MM-DD HH:MM (seconds optional), e.g. 2026-12-24 18:00~2026-12-26 08:00)",
            ),
            (
                "date-time",
                "2026-12-24 18:00~2026-12-26 8:00",
                "date-time=\"2026-12-24 18:00~2026-12-26 8:00\", byte 28: \"8:00\" is not a time of day (hint: write YYYY-MM-DD HH:MM~YYYY-MM-DD HH:MM (seconds optional), e.g. 2026-12-24 18:00~2026-12-26 08:00)",
            ),
            (
                "date-time",
                "2026-12-24~2026-12-26",
                "date-time=\"2026-12-24~2026-12-26\", byte 0: \"2026-12-24\" is not a date and time (hint: write YYYY-MM-DD HH:MM~YYYY-MM-DD HH:MM (seconds optional), e.g. 2026-12-24 18:00~2026-12-26 08:00)",
            ),
            (
                "date-time",
                "2026-12-26 08:00~2026-12-24 18:00",
                "date-time=\"2026-12-26 08:00~2026-12-24 18:00\", byte 17: the range ends before it starts (hint: write YYYY-MM-DD HH:MM~YYYY-MM-DD HH:MM (seconds optional), e.g. 2026-12-24 18:00~2026-12-26 08:00)",
            ),
        ];
        for (attribute, value, message) in cases {
            let err = TimeSpec::parse(&[(attribute, value)]).unwrap_err();
            assert_eq!(err.to_string(), *message, "{attribute}={value}");
        }
        let err = TimeSpec::parse(&[("hour", "9"), ("hour", "10")]).unwrap_err();
        assert_eq!(
            err,
            TimeSpecError::Duplicate {
                attribute: "hour".into(),
                value: "10".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "hour=\"10\": given twice (hint: put all values in one list, e.g. 1-5,7)"
        );
        let err = TimeSpec::parse(&[("mon", "1"), ("mon", "x")]).unwrap_err();
        assert!(
            matches!(err, TimeSpecError::BadValue { offset: 0, .. }),
            "{err}"
        );
        for (attribute, value) in [
            ("time-of-day", "08:00-09:00"),
            ("date-time", "2026-12-24 18:00~2026-12-26 08:00"),
        ] {
            let err = TimeSpec::parse(&[(attribute, value), (attribute, value)]).unwrap_err();
            assert!(matches!(err, TimeSpecError::Duplicate { .. }), "{err}");
        }
    }

    const CALENDAR: &str = r#"
[[holiday]]
name = "Spring Festival"
from = "2027-02-05"
to = "2027-02-11"

[[holiday]]
name = "Lantern Festival"
date = "2027-02-20"

[[holiday]]
name = "Christmas"
date = "12-25"

[[holiday]]
name = "New Year"
from = "12-31"
to = "01-01"

[[holiday]]
name = "Leap Day"
date = "02-29"

[[holiday]]
name = "Christmas again"
date = "2026-12-25"
"#;

    type Ymd = (i32, u8, u8);

    #[test]
    fn holiday_calendar() {
        let holidays = Holidays::parse(CALENDAR).unwrap();
        assert_eq!(holidays.len(), 6);
        assert!(!holidays.is_empty());
        let cases: &[(Ymd, Option<&str>)] = &[
            ((2027, 2, 4), None),
            ((2027, 2, 5), Some("Spring Festival")),
            ((2027, 2, 8), Some("Spring Festival")),
            ((2027, 2, 11), Some("Spring Festival")),
            ((2027, 2, 12), None),
            ((2028, 2, 8), None), // dated holidays do not recur
            ((2027, 2, 20), Some("Lantern Festival")),
            ((2026, 12, 25), Some("Christmas")), // first in file order wins
            ((2031, 12, 25), Some("Christmas")),
            ((2026, 12, 24), None),
            ((2026, 12, 31), Some("New Year")),
            ((2027, 1, 1), Some("New Year")),
            ((2027, 1, 2), None),
            ((2028, 2, 29), Some("Leap Day")),
            ((2027, 3, 1), None),
        ];
        for &((year, month, mday), want) in cases {
            for (hour, minute, second) in [(0, 0, 0), (23, 59, 59)] {
                let time = at(year, month, mday, hour, minute, second);
                assert_eq!(holidays.is_holiday(&time), want, "{time:?}");
            }
        }
        let none = Holidays::parse("").unwrap();
        assert!(none.is_empty());
        assert_eq!(none.is_holiday(&TUE), None);
    }

    #[test]
    fn bad_calendars() {
        let hint = "give date = \"YYYY-MM-DD\" (one year) or \"MM-DD\" (every year), or from = and to = in the same form";
        let cases: &[(&str, String)] = &[
            (
                "[[holiday]]\nname = \"X\"\ndate = \"2027-02-30\"\n",
                format!(
                    "holiday \"X\": date = \"2027-02-30\" is not a calendar date (hint: {hint})"
                ),
            ),
            (
                "[[holiday]]\nname = \"X\"\ndate = \"13-01\"\n",
                format!("holiday \"X\": date = \"13-01\" is not a calendar date (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\ndate = \"02-30\"\n",
                format!("holiday \"X\": date = \"02-30\" is not a calendar date (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\nfrom = \"2027-02-05\"\nto = \"2027-2-11\"\n",
                format!("holiday \"X\": to = \"2027-2-11\" is not a calendar date (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\n",
                format!("holiday \"X\": has no date (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\nfrom = \"2027-02-05\"\n",
                format!("holiday \"X\": needs both from and to (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\ndate = \"12-25\"\nto = \"12-26\"\n",
                format!("holiday \"X\": has both date and from/to (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\nfrom = \"2027-02-11\"\nto = \"2027-02-05\"\n",
                format!("holiday \"X\": to is before from (hint: {hint})"),
            ),
            (
                "[[holiday]]\nname = \"X\"\nfrom = \"12-24\"\nto = \"2027-12-26\"\n",
                format!(
                    "holiday \"X\": from and to must both have a year or both not (hint: {hint})"
                ),
            ),
        ];
        for (text, message) in cases {
            let err = Holidays::parse(text).unwrap_err();
            assert_eq!(err.to_string(), *message, "{text}");
        }
        // TOML syntax and unknown keys are reported by the TOML parser, with line and column.
        let err = Holidays::parse("[[holiday]]\nname = \"X\"\ndat = \"12-25\"\n").unwrap_err();
        let TimeSpecError::HolidayToml { message } = &err else {
            panic!("{err}")
        };
        assert!(
            message.contains("line 3") && message.contains("unknown field `dat`"),
            "{message}"
        );
        let err = Holidays::parse("[[holiday]]\nname = \"X\"\ndate = 12-25\n").unwrap_err();
        let TimeSpecError::HolidayToml { message } = &err else {
            panic!("{err}")
        };
        assert!(message.contains("line 3"), "{message}");
        let err = Holidays::parse("[[holiday]]\ndate = \"12-25\"\n").unwrap_err();
        let TimeSpecError::HolidayToml { message } = &err else {
            panic!("{err}")
        };
        assert!(message.contains("missing field `name`"), "{message}");
    }
}
