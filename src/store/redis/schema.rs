//! Key layout and naming (sagaz's keys and sagascope's beside them) and
//! the encoding of entries.

use std::collections::HashMap;

use crate::model::{ReplayLog, SagaStatus, SagaSummary, Snapshot, Timestamp};

use super::super::entry::{self, IdRule};
use super::super::*;
use super::{RedisStore, BACKEND};

/// Escapes glob characters for `SCAN MATCH`.
pub(super) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The summary fields kept in a saga's hash.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Head {
    pub last_us: i64,
    pub snapshot_id: String,
    pub saga_name: String,
    pub status: String,
    pub step: String,
    pub step_index: i64,
}

impl Head {
    pub(super) fn of(s: &Snapshot) -> Self {
        Head {
            last_us: s.created_at.as_micros(),
            snapshot_id: s.snapshot_id.clone(),
            saga_name: s.saga_name.clone(),
            status: s.status.as_str().to_string(),
            step: s.step_name.clone(),
            step_index: s.step_index,
        }
    }

    pub(super) fn from_hash(h: &HashMap<String, String>) -> Option<Self> {
        Some(Head {
            last_us: h.get("last_us")?.parse().ok()?,
            snapshot_id: h.get("snapshot_id")?.clone(),
            saga_name: h.get("saga_name")?.clone(),
            status: h.get("status")?.clone(),
            step: h.get("step")?.clone(),
            step_index: h.get("step_index")?.parse().ok()?,
        })
    }
}

pub(super) fn micros_of_score(score: f64) -> i64 {
    (score * 1_000_000.0).round() as i64
}

/// Ids become key suffixes under the prefix: refuses those that would
/// collide with sagaz's or sagascope's own keys.
pub(super) fn check_id(what: &str, id: &str) -> StoreResult<()> {
    IdRule::KeySuffix.check(BACKEND, what, id)
}

impl RedisStore {
    // ---- key names -------------------------------------------------------

    /// `P{snapshot_id}`: a snapshot's value (sagaz).
    pub fn snapshot_key(&self, snapshot_id: &str) -> String {
        format!("{}{snapshot_id}", self.prefix)
    }
    /// `P saga:{saga_id}:index`: a saga's snapshots by time (sagaz).
    pub fn saga_index_key(&self, saga_id: &str) -> String {
        format!("{}saga:{saga_id}:index", self.prefix)
    }
    /// `P replay:{replay_id}` (sagaz).
    pub fn replay_key(&self, replay_id: &str) -> String {
        format!("{}replay:{replay_id}", self.prefix)
    }
    /// `P saga:{saga_id}:replays` (sagaz).
    pub fn replay_index_key(&self, saga_id: &str) -> String {
        format!("{}saga:{saga_id}:replays", self.prefix)
    }
    /// sagascope's list of sagas by newest activity.
    pub fn sagas_key(&self) -> String {
        format!("{}sagascope:sagas", self.prefix)
    }
    pub(super) fn status_key(&self, status: &str) -> String {
        format!("{}sagascope:status:{status}", self.prefix)
    }
    pub(super) fn head_key(&self, saga_id: &str) -> String {
        format!("{}sagascope:saga:{saga_id}", self.prefix)
    }
    pub(super) fn retention_key(&self) -> String {
        format!("{}sagascope:retention", self.prefix)
    }
    pub(super) fn replay_of_key(&self, new_saga_id: &str) -> String {
        format!("{}sagascope:replay-of:{new_saga_id}", self.prefix)
    }
    /// Present once the saga index covers everything under the prefix.
    pub fn index_state_key(&self) -> String {
        format!("{}sagascope:index-state", self.prefix)
    }
    pub(super) fn lock_key(&self, name: &str) -> String {
        format!("{}sagascope:lock:{name}", self.prefix)
    }

    // ---- decoding --------------------------------------------------------

    pub(super) fn decode_snapshot(
        &self,
        key: &str,
        saga_hint: Option<&str>,
        raw: &[u8],
    ) -> Result<Snapshot, BadEntry> {
        entry::decode_snapshot(&self.codec, key, saga_hint, raw)
    }

    pub(super) fn decode_replay(
        &self,
        key: &str,
        saga_hint: Option<&str>,
        raw: &[u8],
    ) -> Result<ReplayLog, BadEntry> {
        entry::decode_replay(&self.codec, key, saga_hint, raw)
    }

    pub(super) fn retention_member(s: &Snapshot) -> String {
        format!("{} {}", s.snapshot_id, s.saga_id)
    }

    pub(super) fn summary_of(
        saga_id: &str,
        h: &Head,
        count: u64,
        first_us: Option<i64>,
    ) -> Option<SagaSummary> {
        let last_at = Timestamp::from_micros(h.last_us)?;
        let first_at = first_us
            .and_then(Timestamp::from_micros)
            .filter(|f| *f <= last_at)
            .unwrap_or(last_at);
        Some(SagaSummary {
            saga_id: saga_id.to_string(),
            saga_name: h.saga_name.clone(),
            latest_status: SagaStatus::parse(&h.status),
            latest_step: h.step.clone(),
            latest_step_index: h.step_index,
            snapshot_count: count.max(1),
            first_at,
            last_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escape_keeps_prefixes_literal() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
