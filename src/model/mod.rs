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
    /// The saga's id as sagaz assigned it (usually a UUID string).
    pub saga_id: String,
    /// The saga's name as its definition declares it, e.g. `OrderSaga` (taken from the newest snapshot).
    pub saga_name: String,
    /// Status of the newest snapshot.
    pub latest_status: SagaStatus,
    /// `step_name` of the newest snapshot: the step about to run or just run, or [`COMPLETED_STEP`] once the saga finished.
    pub latest_step: String,
    /// `step_index` of the newest snapshot (0-based; the number of steps for [`COMPLETED_STEP`]).
    pub latest_step_index: i64,
    /// How many snapshots the store holds for this saga (at least 1: a saga without snapshots is not listed).
    pub snapshot_count: u64,
    /// `created_at` of the oldest snapshot: roughly when the saga started.
    pub first_at: Timestamp,
    /// `created_at` of the newest snapshot: when the saga last changed.
    pub last_at: Timestamp,
}

/// sagaz's `HistoricalState`: the saga as it was at a time. Serializes
/// with sagaz's `to_dict` keys first, then the snapshot it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoricalState {
    /// The saga's id.
    pub saga_id: String,
    /// The saga's name as its definition declares it, e.g. `OrderSaga`.
    pub saga_name: String,
    /// The time that was asked about (not when the snapshot was taken; see [`snapshot_created_at`](Self::snapshot_created_at)).
    pub timestamp: Timestamp,
    /// The saga's status at that time, from the snapshot.
    pub status: SagaStatus,
    /// The saga's context (its step inputs and outputs) at that time, keys in stored order.
    pub context: Map<String, Value>,
    /// Names of the steps that had completed by then, in execution order.
    pub completed_steps: Vec<String>,
    /// The snapshot's `step_name`: the step about to run or just run, or [`COMPLETED_STEP`].
    pub current_step: String,
    /// The snapshot's 0-based `step_index` (the number of steps for [`COMPLETED_STEP`]).
    pub step_index: i64,
    /// The snapshot the answer comes from.
    pub snapshot_id: String,
    /// When the snapshot the answer comes from was taken (at or before [`timestamp`](Self::timestamp)).
    pub snapshot_created_at: Timestamp,
}

impl HistoricalState {
    /// The state snapshot `s` describes, answered for the time `as_of`. Meant
    /// for the newest snapshot taken at or before `as_of`; nothing is checked.
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
    /// The id of the snapshot this change is.
    pub snapshot_id: String,
    /// The snapshot's step: about to run, just run, or [`COMPLETED_STEP`].
    pub step_name: String,
    /// The snapshot's 0-based step position (the number of steps for [`COMPLETED_STEP`]).
    pub step_index: i64,
    /// The saga's status when the snapshot was taken.
    pub status: SagaStatus,
    /// When the snapshot was taken.
    pub created_at: Timestamp,
    /// Names of the steps completed at that point, in execution order.
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
