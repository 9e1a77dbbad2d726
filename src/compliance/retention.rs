//! Retention per saga name: `retention_until` set at write time.
//!
//! `[compliance.retention]` maps a saga name (or `*` for every other name)
//! to a period: a whole number and a unit — `s`, `m` (minutes), `h`, `d`,
//! `w`, `y` — or `forever`. A write sets `retention_until = created_at +
//! period` (`forever`: no expiry); a saga name without a rule and no `*`
//! keeps what the writer set (sagaz's 30 days). Years are calendar years
//! (`2026-03-01` + `7y` = `2033-03-01`; 29 February moves to the 28th), so
//! "keep payments seven years" means what an auditor reads it to mean.
//! `gc` deletes by the field, as sagaz's `delete_expired_snapshots` does.

use std::collections::BTreeMap;
use std::fmt;

use chrono::Months;

use super::ComplianceError;
use crate::model::{Snapshot, Timestamp};

/// The longest period a rule may name: past it, `forever` says it better
/// (and the expiry would leave the years Python's `datetime` can hold).
const MAX_YEARS: u64 = 1000;

/// One rule's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Kept forever: `retention_until` is cleared.
    Forever,
    /// A fixed number of microseconds (s, m, h, d, w).
    Micros(i64),
    /// Calendar years.
    Years(u32),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Forever => f.write_str("forever"),
            Period::Years(y) => write!(f, "{y}y"),
            Period::Micros(us) => {
                let s = us / 1_000_000;
                for (unit, secs) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
                    if s % secs == 0 {
                        return write!(f, "{}{unit}", s / secs);
                    }
                }
                write!(f, "{s}s")
            }
        }
    }
}

impl Period {
    /// Reads `30d`, `12h`, `7y`, `forever`; the error says what is wrong
    /// (the caller names the rule).
    pub fn parse(text: &str) -> Result<Period, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("forever") {
            return Ok(Period::Forever);
        }
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let expected =
            "expected a whole number and a unit (s, m, h, d, w, y) such as 30d or 7y, or forever";
        let n: u64 = match num.parse() {
            Ok(n) => n,
            Err(_) => return Err(expected.into()),
        };
        if n == 0 {
            return Err("a period of zero would let gc delete every snapshot as it is written; give a period such as 1d, or forever".into());
        }
        let secs_per = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            "y" => {
                if n > MAX_YEARS {
                    return Err(format!("longer than {MAX_YEARS} years; write forever"));
                }
                return Ok(Period::Years(n as u32));
            }
            _ => return Err(expected.into()),
        };
        let max_secs = MAX_YEARS * 366 * 86_400;
        match n.checked_mul(secs_per) {
            Some(s) if s <= max_secs => Ok(Period::Micros(s as i64 * 1_000_000)),
            _ => Err(format!("longer than {MAX_YEARS} years; write forever")),
        }
    }

    /// When a snapshot taken at `created_at` expires (`None`: never).
    pub fn expiry(&self, created_at: Timestamp) -> Option<Timestamp> {
        match self {
            Period::Forever => None,
            Period::Micros(us) => Some(created_at.plus_micros(*us)),
            Period::Years(y) => Some(
                created_at
                    .as_datetime()
                    .checked_add_months(Months::new(y * 12))
                    .map(Timestamp::from_datetime)
                    // Past chrono's range (year 262,000): as good as never.
                    .unwrap_or_else(|| created_at.plus_micros(i64::MAX)),
            ),
        }
    }
}

/// How long snapshots of each saga name are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionPolicy {
    by_name: BTreeMap<String, Period>,
    others: Option<Period>,
}

impl RetentionPolicy {
    /// Parses `[compliance.retention]`; an error names the rule at fault.
    pub fn from_config(table: &BTreeMap<String, String>) -> Result<Self, ComplianceError> {
        let mut policy = RetentionPolicy::default();
        for (name, text) in table {
            if name.trim().is_empty() {
                return Err(ComplianceError::Config(format!(
                    "[compliance.retention] has a rule with an empty saga name (= {text:?}); name a saga, or \"*\" for every other saga"
                )));
            }
            let period = Period::parse(text).map_err(|why| {
                ComplianceError::Config(format!(
                    "[compliance.retention] {name:?} = {text:?}: {why}"
                ))
            })?;
            if name == "*" {
                policy.others = Some(period);
            } else {
                policy.by_name.insert(name.clone(), period);
            }
        }
        Ok(policy)
    }

    /// No rule.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty() && self.others.is_none()
    }

    /// The rule for sagas named `saga_name`: its own, else `*`'s.
    pub fn period_for(&self, saga_name: &str) -> Option<Period> {
        self.by_name.get(saga_name).copied().or(self.others)
    }

    /// Sets `s.retention_until` from the rule for its saga name; without a
    /// rule (and no `*`), leaves what the writer set.
    ///
    /// A snapshot written with no expiry (`None`: kept forever, as a legal
    /// hold leaves its saga's snapshots) keeps none: a rule never gives a
    /// held saga its expiry back.
    pub fn apply(&self, s: &mut Snapshot) {
        if s.retention_until.is_none() {
            return;
        }
        if let Some(p) = self.period_for(&s.saga_name) {
            s.retention_until = p.expiry(s.created_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SagaStatus;

    fn policy(rules: &[(&str, &str)]) -> Result<RetentionPolicy, ComplianceError> {
        RetentionPolicy::from_config(
            &rules
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn snap(name: &str, at: &str) -> Snapshot {
        let mut s = Snapshot::new(
            "saga-1",
            name,
            "step",
            0,
            SagaStatus::Executing,
            Default::default(),
            vec![],
        );
        s.created_at = Timestamp::parse(at).unwrap();
        s.retention_until = Some(s.created_at.plus_micros(30 * 86_400_000_000));
        s
    }

    #[test]
    fn a_name_rule_beats_the_star_and_no_rule_keeps_the_writers_value() {
        let p = policy(&[("PaymentSaga", "7y"), ("*", "30d"), ("CartSaga", "12h")]).unwrap();
        let mut pay = snap("PaymentSaga", "2026-03-01T12:00:00+00:00");
        p.apply(&mut pay);
        assert_eq!(
            pay.retention_until,
            Some(Timestamp::parse("2033-03-01T12:00:00+00:00").unwrap())
        );
        let mut cart = snap("CartSaga", "2026-03-01T12:00:00+00:00");
        p.apply(&mut cart);
        assert_eq!(
            cart.retention_until,
            Some(Timestamp::parse("2026-03-02T00:00:00+00:00").unwrap())
        );
        let mut other = snap("TripSaga", "2026-03-01T12:00:00.5+00:00");
        p.apply(&mut other);
        assert_eq!(
            other.retention_until,
            Some(Timestamp::parse("2026-03-31T12:00:00.5+00:00").unwrap())
        );
        // Kept forever (a legal hold clears the expiry): no rule shortens it.
        let mut held = snap("TripSaga", "2026-03-01T12:00:00.5+00:00");
        held.retention_until = None;
        p.apply(&mut held);
        assert_eq!(held.retention_until, None);

        let only_pay = policy(&[("PaymentSaga", "forever")]).unwrap();
        let mut pay = snap("PaymentSaga", "2026-03-01T12:00:00+00:00");
        only_pay.apply(&mut pay);
        assert_eq!(pay.retention_until, None, "forever clears the expiry");
        let mut trip = snap("TripSaga", "2026-03-01T12:00:00+00:00");
        let before = trip.retention_until;
        only_pay.apply(&mut trip);
        assert_eq!(trip.retention_until, before, "no rule: the writer's value");
    }

    #[test]
    fn every_unit_reads_and_years_are_calendar_years() {
        for (text, micros) in [
            ("90s", 90_000_000i64),
            ("15m", 900_000_000),
            ("12h", 43_200_000_000),
            ("30d", 2_592_000_000_000),
            ("2w", 1_209_600_000_000),
        ] {
            assert_eq!(Period::parse(text), Ok(Period::Micros(micros)), "{text}");
            assert_eq!(Period::parse(text).unwrap().to_string(), text);
        }
        let leap = Timestamp::parse("2028-02-29T00:00:00+00:00").unwrap();
        assert_eq!(
            Period::parse("1y").unwrap().expiry(leap),
            Some(Timestamp::parse("2029-02-28T00:00:00+00:00").unwrap())
        );
        assert_eq!(Period::parse(" Forever "), Ok(Period::Forever));
    }

    #[test]
    fn bad_rules_are_config_errors_naming_the_rule() {
        for (name, text, says) in [
            ("PaymentSaga", "7 years", "such as 30d or 7y"),
            ("PaymentSaga", "7", "such as 30d or 7y"),
            ("PaymentSaga", "d", "such as 30d or 7y"),
            ("PaymentSaga", "-1d", "such as 30d or 7y"),
            ("PaymentSaga", "1.5d", "such as 30d or 7y"),
            ("CartSaga", "0h", "zero"),
            ("*", "5000y", "forever"),
            ("*", "99999999999999999999s", "such as 30d or 7y"),
            ("*", "9999999999999w", "forever"),
            ("", "30d", "empty saga name"),
        ] {
            let e = policy(&[(name, text)]).unwrap_err().to_string();
            assert!(e.contains("[compliance.retention]"), "{e}");
            assert!(e.contains(says), "{name} = {text}: {e}");
            if !name.is_empty() {
                assert!(e.contains(name), "{e}");
            }
        }
    }
}
