//! The records sagascope reads and writes, shaped as sagaz shapes them
//! (see FORMATS.md): snapshots, replay-log entries, and the derived views
//! time travel returns.

mod fields;
mod replay_log;
mod snapshot;
mod status;
mod timestamp;

pub use fields::RecordError;
pub use replay_log::ReplayLog;
pub use snapshot::{short_id, Snapshot, COMPLETED_STEP, DEFAULT_RETENTION_DAYS};
pub use status::{ReplayStatus, SagaStatus};
pub use timestamp::{Timestamp, TimestampError};

use serde::Serialize;
use serde_json::{Map, Value};

/// A saga as the browser lists it, derived from its snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SagaSummary {
    pub saga_id: String,
    pub saga_name: String,
    /// Status of the newest snapshot.
    pub latest_status: SagaStatus,
    pub latest_step: String,
    pub latest_step_index: i64,
    pub snapshot_count: u64,
    pub first_at: Timestamp,
    pub last_at: Timestamp,
}

/// sagaz's `HistoricalState`: the saga as it was at a time. Serializes
/// with sagaz's `to_dict` keys first, then the snapshot it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoricalState {
    pub saga_id: String,
    pub saga_name: String,
    pub timestamp: Timestamp,
    pub status: SagaStatus,
    pub context: Map<String, Value>,
    pub completed_steps: Vec<String>,
    pub current_step: String,
    pub step_index: i64,
    /// The snapshot the answer comes from.
    pub snapshot_id: String,
    pub snapshot_created_at: Timestamp,
}

impl HistoricalState {
    pub fn from_snapshot(s: Snapshot, as_of: Timestamp) -> Self {
        HistoricalState {
            saga_id: s.saga_id,
            saga_name: s.saga_name,
            timestamp: as_of,
            status: s.status,
            context: s.context,
            completed_steps: s.completed_steps,
            current_step: s.step_name,
            step_index: s.step_index,
            snapshot_id: s.snapshot_id,
            snapshot_created_at: s.created_at,
        }
    }
}

/// One snapshot as a change in a saga's history (sagaz's
/// `list_state_changes` entry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChange {
    pub snapshot_id: String,
    pub step_name: String,
    pub step_index: i64,
    pub status: SagaStatus,
    pub created_at: Timestamp,
    pub completed_steps: Vec<String>,
    /// Context keys that differ from the previous snapshot in the range
    /// (all keys for the first one).
    pub changed_keys: Vec<String>,
}

/// The JSON type name of a value ("object", "array", ...), for messages.
pub fn fields_type_name(v: &Value) -> &'static str {
    fields::type_name(v)
}

/// Roughly how many bytes a context holds as JSON text, without
/// serializing it: what paging by memory (a saga of 10 MB contexts) needs.
pub fn context_bytes(m: &serde_json::Map<String, Value>) -> usize {
    m.iter()
        .map(|(k, v)| k.len() + 4 + value_bytes(v))
        .sum::<usize>()
        + 2
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 2,
        Value::Array(a) => a.iter().map(value_bytes).sum::<usize>() + 2,
        Value::Object(m) => context_bytes(m),
        _ => 8,
    }
}
