//! The replay-log record: sagaz's `ReplayResult.to_dict()`, plus the fields
//! sagascope adds (kept as extra keys, which sagaz ignores).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::fields::{Fields, RecordError};
use super::{ReplayStatus, Timestamp};

/// One replay (or dry run) started from a saga.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayLog {
    /// This replay's own id (a fresh UUID).
    pub replay_id: String,
    /// The saga the replay started from.
    pub original_saga_id: String,
    /// The id of the saga the replay created (its snapshots are stored under it);
    /// for a dry run, an id nothing was written under.
    pub new_saga_id: String,
    /// The step the replay resumed from, by name.
    pub checkpoint_step: String,
    /// How the replay ended (or [`ReplayStatus::Running`] while it runs).
    pub replay_status: ReplayStatus,
    /// Who started the replay, the configured identity, else the OS user.
    pub initiated_by: String,
    /// sagaz always leaves this null; sagascope records the override.
    pub context_override: Option<Value>,
    /// Why the replay failed or was cancelled; `None` when it succeeded or is still running.
    pub error_message: Option<String>,
    /// When the replay started.
    pub created_at: Timestamp,
    /// When the replay ended; `None` while it is running (or if it never finished).
    pub completed_at: Option<Timestamp>,
    /// Other keys: sagascope writes `reason`, `dry_run`, `merge`; a newer
    /// runtime may write more.
    pub extra: Map<String, Value>,
}

impl ReplayLog {
    /// Reads the dict form. Accepts PostgreSQL sagaz's `status`/`error` keys
    /// for `replay_status`/`error_message`.
    pub fn from_json(value: Value) -> Result<Self, RecordError> {
        let mut f = Fields::from_value(value)?;
        if !f.0.contains_key("replay_status") {
            if let Some(v) = f.0.shift_remove("status") {
                f.0.insert("replay_status".into(), v);
            }
        }
        if !f.0.contains_key("error_message") {
            if let Some(v) = f.0.shift_remove("error") {
                f.0.insert("error_message".into(), v);
            }
        }
        let log = ReplayLog {
            replay_id: f.string("replay_id")?,
            original_saga_id: f.string("original_saga_id")?,
            new_saga_id: f.string("new_saga_id")?,
            checkpoint_step: f.string("checkpoint_step")?,
            replay_status: ReplayStatus::parse(&f.string("replay_status")?),
            initiated_by: f.string("initiated_by")?,
            context_override: f.opt_value("context_override"),
            error_message: f.opt_string("error_message")?,
            created_at: f.timestamp("created_at")?,
            completed_at: f.opt_timestamp("completed_at")?,
            extra: Map::new(),
        };
        Ok(ReplayLog {
            extra: f.rest(),
            ..log
        })
    }

    /// The dict form in sagaz's key order, sagascope's keys after.
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(10 + self.extra.len());
        m.insert("replay_id".into(), self.replay_id.clone().into());
        m.insert(
            "original_saga_id".into(),
            self.original_saga_id.clone().into(),
        );
        m.insert("new_saga_id".into(), self.new_saga_id.clone().into());
        m.insert(
            "checkpoint_step".into(),
            self.checkpoint_step.clone().into(),
        );
        m.insert("replay_status".into(), self.replay_status.as_str().into());
        m.insert("initiated_by".into(), self.initiated_by.clone().into());
        m.insert(
            "context_override".into(),
            self.context_override.clone().unwrap_or(Value::Null),
        );
        m.insert(
            "error_message".into(),
            self.error_message
                .clone()
                .map(Value::from)
                .unwrap_or(Value::Null),
        );
        m.insert("created_at".into(), self.created_at.to_isoformat().into());
        m.insert(
            "completed_at".into(),
            self.completed_at
                .map(|t| Value::from(t.to_isoformat()))
                .unwrap_or(Value::Null),
        );
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }

    /// The reason sagascope recorded, if any.
    pub fn reason(&self) -> Option<&str> {
        self.extra.get("reason").and_then(Value::as_str)
    }

    /// Whether this entry was a dry run (sagascope records it; for sagaz
    /// entries, `completed_at == created_at` on success is the tell).
    pub fn is_dry_run(&self) -> bool {
        match self.extra.get("dry_run").and_then(Value::as_bool) {
            Some(b) => b,
            None => self.completed_at == Some(self.created_at),
        }
    }
}

impl Serialize for ReplayLog {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for ReplayLog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ReplayLog::from_json(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_postgres_status_and_error_keys() {
        let v = json!({
            "replay_id": "r", "original_saga_id": "a", "new_saga_id": "b",
            "checkpoint_step": "charge_payment", "status": "failed",
            "initiated_by": "alice", "context_override": null,
            "error": "card declined", "created_at": "2026-01-01T00:00:00+00:00",
            "completed_at": null
        });
        let r = ReplayLog::from_json(v).unwrap();
        assert_eq!(r.replay_status, ReplayStatus::Failed);
        assert_eq!(r.error_message.as_deref(), Some("card declined"));
        assert!(r.extra.is_empty());
    }

    #[test]
    fn round_trips_with_sagascope_fields() {
        let v = json!({
            "replay_id": "r", "original_saga_id": "a", "new_saga_id": "b",
            "checkpoint_step": "charge_payment", "replay_status": "success",
            "initiated_by": "alice", "context_override": {"payment_token": "tok_valid"},
            "error_message": null, "created_at": "2026-01-01T00:00:00+00:00",
            "completed_at": "2026-01-01T00:00:01.5+00:00", "reason": "INC-42", "dry_run": false
        });
        let r = ReplayLog::from_json(v).unwrap();
        assert_eq!(r.reason(), Some("INC-42"));
        assert!(!r.is_dry_run());
        let back = r.to_json();
        assert_eq!(
            back["completed_at"],
            json!("2026-01-01T00:00:01.500000+00:00")
        );
        assert_eq!(ReplayLog::from_json(back).unwrap(), r);
    }
}
