//! The saga filter as a person types it (`status:failed step:charge
//! trip`): the TUI's filter line and the fuzz targets parse it here. Values
//! are read as the CLI's flags read them (`--status`, `--since`), so a
//! query means the same in both.

use crate::model::{SagaStatus, Timestamp};

use super::SagaFilter;

/// The keys a query knows, as the error for an unknown one lists them.
pub const QUERY_KEYS: &str = "status:, step:, name:, id:, since:, until:";

/// Why a filter query was not understood: the word and what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // the fields are the words of the messages
pub enum QueryError {
    /// A `key:` the query does not know.
    #[error("unknown filter key {key:?}; known: {QUERY_KEYS}")]
    UnknownKey { key: String },
    /// `status:` with nothing after it.
    #[error("{key}: needs a value")]
    Empty { key: String },
    /// A status sagaz does not define.
    #[error("status:{value}: {reason}")]
    Status { value: String, reason: String },
    /// A `since:`/`until:` value that is neither a time nor an offset.
    #[error("{key}:{value}: not a time; an ISO time such as 2026-01-15T10:30:00Z, or an offset such as -2h")]
    Time { key: String, value: String },
}

impl SagaFilter {
    /// Parses a filter query, word by word (every word narrows):
    /// `status:a,b` any of those statuses (the ones sagaz defines),
    /// `step:NAME` the step of the newest snapshot (where the saga
    /// stopped), `name:NAME` the exact name, `id:PREFIX`, `since:TIME` /
    /// `until:TIME` newest activity at or after / before a time (an ISO
    /// time or an offset from `now` such as `-2h`, as the CLI's `--since`).
    /// A bare word with a digit, made of hex digits and dashes, is an id
    /// prefix (`4986dd05`); any other bare word is part of the name, ASCII
    /// letters in either case (`trip` finds `TripBookingSaga`). Later words
    /// of one key win. An unknown key or value is an error, never a filter
    /// that silently matches nothing.
    pub fn parse_query(text: &str, now: Timestamp) -> Result<SagaFilter, QueryError> {
        let mut f = SagaFilter::default();
        for word in text.split_whitespace() {
            let Some((key, value)) = word.split_once(':') else {
                if word.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
                    && word.chars().any(|c| c.is_ascii_digit())
                {
                    f.id_prefix = Some(word.to_ascii_lowercase());
                } else {
                    f.name_contains = Some(word.to_string());
                }
                continue;
            };
            let known = ["status", "step", "name", "id", "since", "until"];
            if !known.contains(&key) {
                return Err(QueryError::UnknownKey {
                    key: format!("{key}:"),
                });
            }
            if value.is_empty() {
                return Err(QueryError::Empty {
                    key: key.to_string(),
                });
            }
            match key {
                "status" => {
                    f.statuses.clear();
                    for one in value.split(',').filter(|s| !s.is_empty()) {
                        let s =
                            SagaStatus::parse_known(one).map_err(|reason| QueryError::Status {
                                value: one.to_string(),
                                reason,
                            })?;
                        f.statuses.push(s);
                    }
                }
                "step" => f.latest_step = Some(value.to_string()),
                "name" => f.name = Some(value.to_string()),
                "id" => f.id_prefix = Some(value.to_ascii_lowercase()),
                _ => {
                    let t =
                        Timestamp::parse_relative(value, now).map_err(|_| QueryError::Time {
                            key: key.to_string(),
                            value: value.to_string(),
                        })?;
                    if key == "since" {
                        f.since = Some(t);
                    } else {
                        f.until = Some(t);
                    }
                }
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-15T12:00:00Z").unwrap()
    }

    fn q(text: &str) -> SagaFilter {
        SagaFilter::parse_query(text, now()).unwrap()
    }

    #[test]
    fn a_bare_word_is_part_of_the_name_in_either_case() {
        let f = q("Trip");
        assert_eq!(f.name_contains.as_deref(), Some("Trip"));
        assert_eq!(f.name, None);
        // Letters only, even hex ones: a name, not an id prefix.
        assert_eq!(q("cafe").name_contains.as_deref(), Some("cafe"));
        assert_eq!(q("4986DD05").id_prefix.as_deref(), Some("4986dd05"));
        assert_eq!(q("id:abc").id_prefix.as_deref(), Some("abc"));
        assert_eq!(q("name:OrderSaga").name.as_deref(), Some("OrderSaga"));
    }

    #[test]
    fn status_step_and_times_read_as_the_cli_reads_them() {
        let f = q(
            "status:failed,rolled_back step:charge_payment since:-2h until:2026-01-15T11:00:00Z",
        );
        assert_eq!(f.statuses, vec![SagaStatus::Failed, SagaStatus::RolledBack]);
        assert_eq!(f.latest_step.as_deref(), Some("charge_payment"));
        assert_eq!(f.since, Timestamp::parse("2026-01-15T10:00:00Z").ok());
        assert_eq!(f.until, Timestamp::parse("2026-01-15T11:00:00Z").ok());
        assert_eq!(q("since:now").since, Some(now()));
    }

    #[test]
    fn unknown_keys_and_values_are_errors_that_say_what_is_known() {
        let e = SagaFilter::parse_query("status:bogus", now()).unwrap_err();
        assert!(e.to_string().contains("unknown status \"bogus\""), "{e}");
        assert!(e.to_string().contains("rolled_back"), "{e}");
        let e = SagaFilter::parse_query("colour:red", now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("unknown filter key \"colour:\"; known: {QUERY_KEYS}")
        );
        let e = SagaFilter::parse_query("since:yesterday", now()).unwrap_err();
        assert!(e.to_string().contains("offset such as -2h"), "{e}");
        let e = SagaFilter::parse_query("step:", now()).unwrap_err();
        assert_eq!(e.to_string(), "step: needs a value");
    }

    #[test]
    fn the_name_part_matches_ascii_letters_in_either_case() {
        let t = now();
        let saga = crate::model::SagaSummary {
            saga_id: "4986dd05-0000-4000-8000-000000000000".into(),
            saga_name: "TripBookingSaga".into(),
            latest_status: SagaStatus::Failed,
            latest_step: "book_hotel".into(),
            latest_step_index: 1,
            snapshot_count: 2,
            first_at: t,
            last_at: t,
        };
        for hit in [
            "Trip",
            "trip",
            "BOOKING",
            "saga",
            "4986dd",
            "status:failed trip",
        ] {
            assert!(q(hit).matches(&saga), "{hit}");
        }
        for miss in ["Order", "status:completed trip", "since:+1h"] {
            assert!(!q(miss).matches(&saga), "{miss}");
        }
    }
}
