//! What the stores that are not SQL (Redis, the object layout of S3 and
//! the folder, memory) share about their entries: which ids may become
//! part of a key, how a stored value is decoded into a snapshot or
//! replay-log entry or named as unreadable, and how entries in hand are
//! put in listing order.

use crate::model::{ReplayLog, SagaSummary, Snapshot};

use super::codec::Codec;
use super::{BadEntry, SagaCursor, SagaFilter, SagaPage, SagaPageRequest, StoreError, StoreResult};

/// An unreadable entry, named by where it lives.
pub(crate) fn bad(key: &str, saga_id: Option<&str>, error: impl std::fmt::Display) -> BadEntry {
    BadEntry {
        key: key.to_string(),
        saga_id: saga_id.map(str::to_string),
        error: error.to_string(),
    }
}

/// A stored snapshot value decoded, or named as bad under `key`.
pub(crate) fn decode_snapshot(
    codec: &Codec,
    key: &str,
    saga_id: Option<&str>,
    raw: &[u8],
) -> Result<Snapshot, BadEntry> {
    let v = codec.decode(raw).map_err(|e| bad(key, saga_id, e))?;
    Snapshot::from_json(v).map_err(|e| bad(key, saga_id, e))
}

/// A stored replay-log value decoded, or named as bad under `key`.
pub(crate) fn decode_replay(
    codec: &Codec,
    key: &str,
    saga_id: Option<&str>,
    raw: &[u8],
) -> Result<ReplayLog, BadEntry> {
    let v = codec.decode(raw).map_err(|e| bad(key, saga_id, e))?;
    ReplayLog::from_json(v).map_err(|e| bad(key, saga_id, e))
}

/// Replay-log entries in listing order (newest first, ties by id), at
/// most `limit` of them.
pub(crate) fn newest_replays_first(items: &mut Vec<ReplayLog>, limit: Option<usize>) {
    items.sort_by(|a, b| (b.created_at, &b.replay_id).cmp(&(a.created_at, &a.replay_id)));
    items.truncate(limit.unwrap_or(usize::MAX));
}

/// One page of the saga list from every saga's summary: those `filter`
/// keeps after the page's cursor, newest activity first, `next` set when
/// more follow.
pub(crate) fn saga_page(
    mut all: Vec<SagaSummary>,
    filter: &SagaFilter,
    page: &SagaPageRequest,
) -> SagaPage {
    all.retain(|s| filter.matches(s) && page.after.as_ref().is_none_or(|c| c.precedes(s)));
    all.sort_by(|a, b| (&b.last_at, &b.saga_id).cmp(&(&a.last_at, &a.saga_id)));
    let more = all.len() > page.limit;
    all.truncate(page.limit);
    let next = if more {
        all.last().map(SagaCursor::of)
    } else {
        None
    };
    SagaPage {
        sagas: all,
        next,
        ..SagaPage::default()
    }
}

/// How ids become part of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdRule {
    /// Appended to a key prefix (Redis): must not be empty nor start like
    /// sagaz's or sagascope's own keys under the same prefix.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    KeySuffix,
    /// One segment of an object key or one file name: must not be able to
    /// climb out of its folder or split into two segments.
    PathSegment,
}

impl IdRule {
    /// Whether `id` can be stored under this rule.
    pub(crate) fn admits(self, id: &str) -> bool {
        match self {
            IdRule::KeySuffix => {
                const RESERVED: [&str; 3] = ["saga:", "replay:", "sagascope:"];
                !id.is_empty() && !RESERVED.iter().any(|r| id.starts_with(r))
            }
            IdRule::PathSegment => {
                !(id.is_empty()
                    || id.len() > 200
                    || id.starts_with('.')
                    || id
                        .chars()
                        .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control()))
            }
        }
    }

    fn reason(self) -> &'static str {
        match self {
            IdRule::KeySuffix => {
                "it would collide with sagaz's or sagascope's own keys under the prefix"
            }
            IdRule::PathSegment => {
                "ids become object keys or file names here: use a non-empty id without '/', '\\', control characters or a leading '.'"
            }
        }
    }

    /// `Unstorable` (naming `what` and the id) unless the rule admits `id`.
    pub(crate) fn check(self, backend: &'static str, what: &str, id: &str) -> StoreResult<()> {
        if self.admits(id) {
            return Ok(());
        }
        Err(StoreError::Unstorable {
            backend,
            what: format!("{what} {id:?}"),
            reason: self.reason().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_escape_their_folder_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "a\\b", "a\0"] {
            assert!(
                IdRule::PathSegment.check("file", "saga_id", bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(IdRule::PathSegment
            .check("file", "saga_id", "9a3c2b1d-0000-4000-8000-000000000001")
            .is_ok());
    }

    #[test]
    fn ids_that_collide_with_own_keys_are_refused() {
        for bad in ["", "saga:x", "replay:y", "sagascope:sagas"] {
            assert!(!IdRule::KeySuffix.admits(bad), "{bad:?}");
        }
        assert!(IdRule::KeySuffix.admits("a/b"));
    }
}
