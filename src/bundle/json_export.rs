//! Plain JSON exports (what the TUI's `x` writes): one saga's snapshots as
//! a JSON array (sagaz's field names), or the state at one snapshot. Not a
//! bundle: nothing reads these back; they are for people and other tools.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::HistoricalState;
use crate::store::{SnapshotQuery, SnapshotStore, StoreError};

/// Why a JSON export failed.
#[derive(Debug, thiserror::Error)]
pub enum JsonExportError {
    /// The store failed while reading the saga.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The snapshot to export was deleted (gc, another operator) since it
    /// was listed.
    #[error("the snapshot is gone from the store")]
    Gone,
    /// The snapshots could not be turned into JSON.
    #[error("{0}")]
    Encode(String),
    /// The export file could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// Every snapshot of a saga, oldest first, as one JSON array; and how many.
pub async fn saga_json(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<(Value, usize), StoreError> {
    let listing = crate::store::all_snapshots(store, saga_id, SnapshotQuery::all()).await?;
    let all: Vec<Value> = listing.items.iter().map(|s| s.to_json()).collect();
    let n = all.len();
    Ok((Value::Array(all), n))
}

/// The state at one snapshot (as `replay time-travel` reports it).
pub async fn state_json(
    store: &dyn SnapshotStore,
    snapshot_id: &str,
) -> Result<Value, JsonExportError> {
    let snap = store
        .get_snapshot(snapshot_id)
        .await?
        .ok_or(JsonExportError::Gone)?;
    let at = snap.created_at;
    let state = HistoricalState::from_snapshot(snap, at);
    serde_json::to_value(&state).map_err(|e| JsonExportError::Encode(e.to_string()))
}

/// Writes `value` pretty-printed to a new owner-only file (contexts may
/// hold personal data), off the async workers.
pub async fn write_json_file(path: &Path, value: &Value) -> Result<(), JsonExportError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| JsonExportError::Encode(e.to_string()))?;
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::files::write_private_file(&p, (text + "\n").as_bytes())
    })
    .await
    .map_err(|e| JsonExportError::Encode(e.to_string()))?
    .map_err(|source| JsonExportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
