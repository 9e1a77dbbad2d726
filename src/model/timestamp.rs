//! Timestamps as sagaz writes them: Python `datetime.isoformat()` on an aware
//! UTC value (`2026-11-22T01:37:29.601111+00:00`, the fraction left out when
//! the microsecond is 0). Reading is lenient (offsets, `Z`, no fraction, naive
//! = UTC, a space instead of `T`); precision is kept to the microsecond.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A UTC instant with microsecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// A timestamp that could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid timestamp {input:?}: expected ISO 8601 such as 2026-01-15T10:30:00Z or 2026-01-15T10:30:00.123456+00:00")]
pub struct TimestampError {
    /// The text that was given.
    pub input: String,
}

impl Timestamp {
    /// The current time, truncated to microseconds.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Wraps a chrono value, dropping anything finer than a microsecond.
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        let nanos = dt.nanosecond();
        let truncated = dt.with_nanosecond(nanos - nanos % 1_000).unwrap_or(dt);
        Timestamp(truncated)
    }

    /// Microseconds since the Unix epoch.
    pub fn from_micros(us: i64) -> Option<Self> {
        DateTime::<Utc>::from_timestamp_micros(us).map(Timestamp)
    }

    /// Microseconds since the Unix epoch.
    pub fn as_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// Float seconds since the epoch, as Python's `datetime.timestamp()`
    /// (the score sagaz puts in its Redis sorted sets).
    pub fn as_epoch_seconds(&self) -> f64 {
        self.as_micros() as f64 / 1_000_000.0
    }

    /// The chrono value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Adds a signed number of microseconds, stopping at the ends of the
    /// representable range (±262,000 years) instead of overflowing.
    pub fn plus_micros(&self, us: i64) -> Self {
        self.checked_plus_micros(us).unwrap_or(Timestamp(if us < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        }))
    }

    /// Adds a signed number of microseconds; `None` past the representable
    /// range.
    pub fn checked_plus_micros(&self, us: i64) -> Option<Self> {
        self.0
            .checked_add_signed(chrono::Duration::microseconds(us))
            .map(Timestamp)
    }

    /// Whether Python's `datetime` (and so sagaz) can hold this instant:
    /// years 1 to 9999, and no leap second (`:60`, which chrono reads and
    /// Python refuses). Only those format as ISO 8601 that reads back.
    pub fn is_in_python_range(&self) -> bool {
        (1..=9999).contains(&chrono::Datelike::year(&self.0)) && self.0.nanosecond() < 1_000_000_000
    }

    /// Python's `isoformat()` for an aware UTC datetime.
    pub fn to_isoformat(&self) -> String {
        let base = self.0.format("%Y-%m-%dT%H:%M:%S");
        let micros = self.0.nanosecond() / 1_000;
        if micros == 0 {
            format!("{base}+00:00")
        } else {
            format!("{base}.{micros:06}+00:00")
        }
    }

    /// RFC 3339 with a `Z` and microseconds, for display.
    pub fn to_rfc3339_z(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Reads ISO 8601 / RFC 3339 in the forms sagaz and common tools write.
    pub fn parse(input: &str) -> Result<Self, TimestampError> {
        Self::parse_any_year(input).and_then(|t| {
            if t.is_in_python_range() {
                Ok(t)
            } else {
                // An offset can move 0001-01-01 or 9999-12-31 out of range.
                Err(TimestampError {
                    input: input.to_string(),
                })
            }
        })
    }

    fn parse_any_year(input: &str) -> Result<Self, TimestampError> {
        let s = input.trim();
        let err = || TimestampError {
            input: input.to_string(),
        };
        if s.len() < 10 || !s.is_ascii() {
            return Err(err());
        }
        // Python's str(datetime) uses a space; RFC 3339 allows it too.
        let normalized: String = if s.as_bytes().get(10) == Some(&b' ') {
            let mut n = s.to_string();
            n.replace_range(10..11, "T");
            n
        } else {
            s.to_string()
        };
        if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
            return Ok(Self::from_datetime(dt.with_timezone(&Utc)));
        }
        // Offsets without a colon (+0000) and other ISO forms.
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
            if let Ok(dt) = DateTime::parse_from_str(&normalized, fmt) {
                return Ok(Self::from_datetime(dt.with_timezone(&Utc)));
            }
        }
        // Naive = UTC.
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(&normalized, fmt) {
                return Ok(Self::from_datetime(dt.and_utc()));
            }
        }
        if normalized.len() == 10 {
            if let Ok(d) = chrono::NaiveDate::parse_from_str(&normalized, "%Y-%m-%d") {
                if let Some(dt) = d.and_hms_opt(0, 0, 0) {
                    return Ok(Self::from_datetime(dt.and_utc()));
                }
            }
        }
        Err(err())
    }
}

impl Timestamp {
    /// Reads a time a person typed: anything [`Timestamp::parse`] reads,
    /// `now`, or an offset from `now` such as `-2h`, `-90s`, `-1d12h`,
    /// `2h ago`, `+15m` (units `w`, `d`, `h`, `m`, `s`, `ms`).
    pub fn parse_relative(input: &str, now: Timestamp) -> Result<Self, TimestampError> {
        let s = input.trim();
        if s.eq_ignore_ascii_case("now") {
            return Ok(now);
        }
        let (sign, body) = if let Some(rest) = s.strip_suffix("ago") {
            (-1, rest.trim())
        } else if let Some(rest) = s.strip_prefix('-') {
            (-1, rest)
        } else if let Some(rest) = s.strip_prefix('+') {
            (1, rest)
        } else {
            return Self::parse(s);
        };
        let err = || TimestampError {
            input: input.to_string(),
        };
        let mut total_us: i64 = 0;
        let mut digits = String::new();
        let mut chars = body.chars().filter(|c| !c.is_whitespace()).peekable();
        let mut any = false;
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: i64 = digits.parse().map_err(|_| err())?;
            digits.clear();
            let unit_us: i64 = match c {
                'w' => 7 * 86_400_000_000,
                'd' => 86_400_000_000,
                'h' => 3_600_000_000,
                's' => 1_000_000,
                'm' if chars.peek() == Some(&'s') => {
                    chars.next();
                    1_000
                }
                'm' => 60_000_000,
                _ => return Err(err()),
            };
            total_us = n
                .checked_mul(unit_us)
                .and_then(|v| total_us.checked_add(v))
                .ok_or_else(err)?;
            any = true;
        }
        if !digits.is_empty() || !any {
            return Err(err());
        }
        now.checked_plus_micros(sign * total_us)
            .filter(Timestamp::is_in_python_range)
            .ok_or_else(err)
    }
}

impl Timestamp {
    /// How long before `now` this was, compactly (`3s`, `5m`, `2h`, `4d`);
    /// a time after `now` reads `in 5m` (a clock ahead of this machine's,
    /// or a saga scheduled ahead), never `0s`. The CLI's tables and the
    /// TUI's list both show ages with this.
    pub fn age_at(&self, now: Timestamp) -> String {
        let us = now.as_micros().saturating_sub(self.as_micros());
        let secs = (us / 1_000_000).unsigned_abs();
        let short = match secs {
            0..=59 => format!("{secs}s"),
            60..=3599 => format!("{}m", secs / 60),
            3600..=86_399 => format!("{}h", secs / 3600),
            _ => format!("{}d", secs / 86_400),
        };
        if us < 0 && secs > 0 {
            format!("in {short}")
        } else {
            short
        }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Self::from_datetime(dt)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_isoformat())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_isoformat())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_isoformat())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_back_from_now_and_says_when_a_time_is_ahead() {
        let now = Timestamp::parse("2026-01-15T12:00:00Z").unwrap();
        let at = |off_s: i64| now.plus_micros(off_s * 1_000_000).age_at(now);
        assert_eq!(at(-3), "3s");
        assert_eq!(at(-300), "5m");
        assert_eq!(at(-7200), "2h");
        assert_eq!(at(-4 * 86_400), "4d");
        assert_eq!(at(0), "0s");
        assert_eq!(at(300), "in 5m");
        assert_eq!(at(3 * 86_400), "in 3d");
    }

    #[test]
    fn writes_python_isoformat() {
        let t = Timestamp::parse("2026-11-22T01:37:29.601111+00:00").unwrap();
        assert_eq!(t.to_isoformat(), "2026-11-22T01:37:29.601111+00:00");
        let t = Timestamp::parse("2026-11-22T01:37:29+00:00").unwrap();
        assert_eq!(t.to_isoformat(), "2026-11-22T01:37:29+00:00");
        let t = Timestamp::parse("2026-11-22T01:37:29.000100Z").unwrap();
        assert_eq!(t.to_isoformat(), "2026-11-22T01:37:29.000100+00:00");
    }

    #[test]
    fn reads_every_form_to_the_same_instant() {
        let want = Timestamp::parse("2026-01-15T10:30:00.5+00:00").unwrap();
        for s in [
            "2026-01-15T10:30:00.500000Z",
            "2026-01-15T11:30:00.5+01:00",
            "2026-01-15 10:30:00.500000+00:00",
            "2026-01-15T10:30:00.5",
            "2026-01-15T10:30:00.500+0000",
            "2026-01-15T10:30:00.500000123Z",
        ] {
            assert_eq!(Timestamp::parse(s).unwrap(), want, "{s}");
        }
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn reads_relative_times() {
        let now = Timestamp::parse("2026-01-15T12:00:00Z").unwrap();
        let at = |s: &str| Timestamp::parse_relative(s, now).unwrap().to_rfc3339_z();
        assert_eq!(at("-2h"), "2026-01-15T10:00:00.000000Z");
        assert_eq!(at("2h ago"), "2026-01-15T10:00:00.000000Z");
        assert_eq!(at("-1d12h"), "2026-01-14T00:00:00.000000Z");
        assert_eq!(at("+15m"), "2026-01-15T12:15:00.000000Z");
        assert_eq!(at("-250ms"), "2026-01-15T11:59:59.750000Z");
        assert_eq!(at("now"), "2026-01-15T12:00:00.000000Z");
        assert_eq!(at("2026-01-15T10:30:00Z"), "2026-01-15T10:30:00.000000Z");
        assert!(Timestamp::parse_relative("-2x", now).is_err());
        assert!(Timestamp::parse_relative("-", now).is_err());
        assert!(Timestamp::parse_relative("-5", now).is_err());
    }

    #[test]
    fn an_offset_past_the_calendar_is_an_error_not_a_panic() {
        let now = Timestamp::parse("2026-01-15T12:00:00Z").unwrap();
        // Fits in i64 microseconds (~268,000 years) but not in a date.
        for s in ["+14000000w", "-14000000w", "-5000000w", "+500000w"] {
            assert!(Timestamp::parse_relative(s, now).is_err(), "{s}");
        }
        assert_eq!(
            now.plus_micros(i64::MAX).as_datetime(),
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        );
    }

    #[test]
    fn only_times_that_format_and_read_back_are_accepted() {
        // UTC year 0 and 10000: Python cannot hold them, and their ISO
        // form would not read back.
        // A leap second (found by fuzzing) wrote `10:30:60.1000000`,
        // seven fraction digits that neither Python nor sagascope read.
        for s in [
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:00-00:01",
            "2026-01-15T10:30:60",
            "2016-12-31T23:59:60.5Z",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
        for s in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let t = Timestamp::parse(s).unwrap();
            assert_eq!(Timestamp::parse(&t.to_isoformat()).unwrap(), t, "{s}");
        }
    }

    #[test]
    fn orders_by_microsecond() {
        let a = Timestamp::parse("2026-01-15T10:30:00.000001Z").unwrap();
        let b = Timestamp::parse("2026-01-15T10:30:00.000002Z").unwrap();
        assert!(a < b);
        assert_eq!(a.plus_micros(1), b);
        assert_eq!(Timestamp::from_micros(a.as_micros()), Some(a));
    }
}
