//! The time zone that time conditions (`hour`, `wday`, `holiday`...) are read in:
//! `[dialplan] timezone` in switchyard.toml.
//!
//! | setting                     | meaning                                                  |
//! |-----------------------------|----------------------------------------------------------|
//! | `"system"`                  | the machine's zone (`TZ`, else `/etc/localtime`)         |
//! | `"Asia/Shanghai"`           | an IANA zone, with its daylight-saving rules              |
//! | `"+08:00"`, `"-05:30"`, `"UTC"` | a fixed offset from UTC                              |
//! | `"EST5EDT,M3.2.0,M11.1.0"`  | a POSIX TZ string, for a zone the machine's database lacks |
//!
//! The zone is resolved once, when the plan is loaded (jiff reads the IANA database in
//! `/usr/share/zoneinfo`); turning a Unix time into local time is then pure arithmetic on
//! the zone's transitions: no clock is read, so a hunt at a given instant is reproducible.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};

use crate::Error;
use crate::timespec::CivilTime;

/// A resolved `[dialplan] timezone` setting.
#[derive(Clone, Debug)]
pub struct LocalZone {
    setting: String,
    tz: TimeZone,
}

/// ISO 8601 allows offsets up to ±24:00; no civil zone is beyond ±14:00, so a larger one is a
/// typo.
const MAX_OFFSET_HOURS: i32 = 14;

impl LocalZone {
    /// Coordinated Universal Time.
    pub fn utc() -> LocalZone {
        LocalZone {
            setting: "UTC".to_owned(),
            tz: TimeZone::UTC,
        }
    }

    /// Resolves a setting (see the module table). `"system"` reads the machine's zone, so
    /// call it where the daemon loads its configuration.
    pub fn parse(setting: &str) -> Result<LocalZone, Error> {
        let bad = |reason: String| Error::TimeZone {
            setting: setting.to_owned(),
            reason,
        };
        let trimmed = setting.trim();
        let tz = if trimmed.eq_ignore_ascii_case("system") {
            TimeZone::try_system().map_err(|e| {
                bad(format!(
                    "the machine's zone cannot be read ({e}); name one, e.g. \"Asia/Shanghai\""
                ))
            })?
        } else if trimmed.eq_ignore_ascii_case("utc") || trimmed == "Z" {
            TimeZone::UTC
        } else if trimmed.starts_with(['+', '-']) {
            TimeZone::fixed(parse_fixed_offset(trimmed).map_err(bad)?)
        } else if trimmed.is_empty() {
            return Err(bad(
                "empty; write \"system\", an IANA name like \"Asia/Shanghai\" or an offset like \"+08:00\"".to_owned(),
            ));
        } else {
            match TimeZone::get(trimmed) {
                Ok(tz) => tz,
                // Not in the database: a POSIX TZ string (it always has a digit, the offset).
                Err(_) if trimmed.bytes().any(|b| b.is_ascii_digit()) => TimeZone::posix(trimmed)
                    .map_err(|e| {
                    bad(format!("neither an IANA zone nor a POSIX TZ string: {e}"))
                })?,
                Err(e) => {
                    return Err(bad(format!(
                        "not a zone of the IANA database ({e}); e.g. \"Europe/Berlin\", or an offset like \"+01:00\""
                    )));
                }
            }
        };
        Ok(LocalZone {
            setting: trimmed.to_owned(),
            tz,
        })
    }

    /// The setting as written, with the zone it resolved to for `"system"`.
    pub fn describe(&self) -> String {
        match self.tz.iana_name() {
            Some(name) if name != self.setting => format!("{} ({name})", self.setting),
            _ => self.setting.clone(),
        }
    }

    /// The offset from UTC, in seconds east, in force at Unix time `unix_secs`.
    pub fn utc_offset_secs(&self, unix_secs: i64) -> i32 {
        // Beyond jiff's range (years ±9999) the nearest representable instant stands in.
        let instant = Timestamp::from_second(unix_secs).unwrap_or(if unix_secs < 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        });
        self.tz.to_offset(instant).seconds()
    }

    /// The local time at Unix time `unix_secs` in this zone.
    pub fn civil_time(&self, unix_secs: i64) -> CivilTime {
        CivilTime::from_unix(unix_secs, self.utc_offset_secs(unix_secs))
    }
}

/// `+HH:MM`, `+HHMM` or `+HH` (and `-`): an offset east (+) or west (-) of UTC.
fn parse_fixed_offset(text: &str) -> Result<Offset, String> {
    let (sign, rest) = text.split_at(1);
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "00"),
    };
    let field = |s: &str| -> Option<i32> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let hint = "write +HH:MM or -HH:MM, e.g. \"+08:00\"";
    let (Some(hours), Some(minutes)) = (field(hours), field(minutes)) else {
        return Err(format!("not an offset ({hint})"));
    };
    if hours > MAX_OFFSET_HOURS || minutes > 59 || (hours == MAX_OFFSET_HOURS && minutes > 0) {
        return Err(format!(
            "offset beyond ±{MAX_OFFSET_HOURS}:00, which no zone uses ({hint})"
        ));
    }
    let seconds = (hours * 3600 + minutes * 60) * if sign == "-" { -1 } else { 1 };
    Offset::from_seconds(seconds).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn utc(year: i32, month: u8, mday: u8, hour: u8, minute: u8) -> i64 {
        let t = CivilTime::from_civil(year, month, mday, hour, minute, 0).unwrap();
        // CivilTime has no inverse; go through jiff's civil arithmetic, which is independent.
        jiff::civil::date(t.year as i16, t.month as i8, t.mday as i8)
            .at(t.hour as i8, t.minute as i8, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
            .as_second()
    }

    fn hm(zone: &LocalZone, secs: i64) -> (u8, u8, u8, u8) {
        let t = zone.civil_time(secs);
        (t.mday, t.hour, t.minute, t.wday)
    }

    /// US Eastern, 2026: DST starts Sunday 8 March at 02:00 EST (07:00 UTC) and ends Sunday
    /// 1 November at 02:00 EDT (06:00 UTC).
    fn check_us_eastern(zone: &LocalZone) {
        let start = utc(2026, 3, 8, 7, 0);
        assert_eq!(hm(zone, start - 1), (8, 1, 59, 1));
        assert_eq!(zone.utc_offset_secs(start - 1), -5 * 3600);
        assert_eq!(hm(zone, start), (8, 3, 0, 1)); // 02:00-02:59 never happens
        assert_eq!(zone.utc_offset_secs(start), -4 * 3600);
        let end = utc(2026, 11, 1, 6, 0);
        assert_eq!(hm(zone, end - 1), (1, 1, 59, 1));
        assert_eq!(hm(zone, end), (1, 1, 0, 1)); // 01:00-01:59 happens twice
        assert_eq!(zone.utc_offset_secs(end), -5 * 3600);
        // A Saturday evening in UTC is still Saturday afternoon in New York.
        assert_eq!(hm(zone, utc(2026, 7, 4, 20, 30)), (4, 16, 30, 7));
    }

    #[test]
    fn posix_rules_cross_a_dst_change() {
        check_us_eastern(&LocalZone::parse("EST5EDT,M3.2.0,M11.1.0").unwrap());
    }

    #[test]
    fn iana_zones_come_from_the_database() {
        let zone = LocalZone::parse("America/New_York").unwrap();
        check_us_eastern(&zone);
        assert_eq!(zone.describe(), "America/New_York");
        // Europe/Berlin 2026: CET to CEST on 29 March at 01:00 UTC.
        let berlin = LocalZone::parse("Europe/Berlin").unwrap();
        assert_eq!(hm(&berlin, utc(2026, 3, 29, 0, 59)), (29, 1, 59, 1));
        assert_eq!(hm(&berlin, utc(2026, 3, 29, 1, 0)), (29, 3, 0, 1));
        // China keeps UTC+8 all year: 16:30 UTC is 00:30 the next day, a Wednesday.
        let shanghai = LocalZone::parse("Asia/Shanghai").unwrap();
        let t = shanghai.civil_time(utc(2026, 11, 24, 16, 30));
        assert_eq!(
            (t.year, t.month, t.mday, t.hour, t.minute, t.wday),
            (2026, 11, 25, 0, 30, 4)
        );
    }

    #[test]
    fn fixed_offsets() {
        for (setting, offset) in [
            ("+08:00", 8 * 3600),
            ("-05:30", -(5 * 3600 + 30 * 60)),
            ("+0545", 5 * 3600 + 45 * 60),
            ("-03", -3 * 3600),
            ("UTC", 0),
            ("utc", 0),
            ("+14:00", 14 * 3600),
        ] {
            let zone = LocalZone::parse(setting).unwrap();
            assert_eq!(zone.utc_offset_secs(0), offset, "{setting}");
            assert_eq!(zone.utc_offset_secs(1_800_000_000), offset, "{setting}");
        }
        let zone = LocalZone::parse("+08:00").unwrap();
        assert_eq!(hm(&zone, utc(2026, 12, 31, 16, 0)).1, 0);
        assert_eq!(zone.civil_time(utc(2026, 12, 31, 16, 0)).year, 2027);
        assert_eq!(
            LocalZone::utc().civil_time(0),
            CivilTime::from_civil(1970, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn bad_settings_say_what_to_write() {
        for (setting, needle) in [
            ("+8:0x", "not an offset"),
            ("+8", "not an offset"),
            ("+15:00", "beyond ±14:00"),
            ("+08:60", "beyond"),
            ("Mars/Olympus_Mons", "not a zone of the IANA database"),
            ("", "empty"),
            ("XYZ1ABC,M13", "neither an IANA zone nor a POSIX TZ string"),
        ] {
            let err = LocalZone::parse(setting).unwrap_err().to_string();
            assert!(err.contains(needle), "{setting:?}: {err}");
            assert!(err.contains(&format!("{setting:?}")), "{err}");
        }
    }

    #[test]
    fn system_zone_resolves() {
        // Whatever the machine's zone is, "system" must resolve to it and read as such.
        let zone = LocalZone::parse("system").unwrap();
        assert!(zone.describe().starts_with("system"), "{}", zone.describe());
        let expected = TimeZone::try_system().unwrap();
        let t = 1_795_485_600;
        assert_eq!(
            zone.utc_offset_secs(t),
            expected
                .to_offset(Timestamp::from_second(t).unwrap())
                .seconds()
        );
    }

    #[test]
    fn instants_beyond_the_calendar_do_not_panic() {
        let zone = LocalZone::parse("Asia/Shanghai").unwrap();
        assert_eq!(zone.utc_offset_secs(i64::MAX), 8 * 3600);
        assert!(zone.civil_time(i64::MIN / 4).hour < 24);
    }
}
