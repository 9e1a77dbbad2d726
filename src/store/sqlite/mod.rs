//! `sqlite:///path/to/file.db`: the embedded default store.
//!
//! Tables are named and shaped like sagaz's PostgreSQL ones
//! (`saga_snapshots`, `saga_replay_log`; ids, JSON and timestamps as TEXT in
//! sagaz's ISO form), so any tool can read or write them. They are created if
//! missing and used as they are if present. sagascope adds, beside them:
//!
//! - `sagascope_sagas`, one row per saga (name, newest status and step,
//!   count, first/last time), kept by triggers on `saga_snapshots` — so rows
//!   written by another program are indexed too, and listing sagas never
//!   scans snapshots;
//! - `sagascope_locks`, for replay locks across processes;
//! - `sagascope_replaced`, a scratch table the triggers use to notice rows
//!   that `INSERT OR REPLACE` removed without a delete trigger;
//! - two optional columns, `external_refs` and `extra` (unknown fields),
//!   added only when sagascope creates the table.
//!
//! Snapshot saves go through a connection of their own, used on the
//! caller's thread, with checkpoints on a thread beside it (`conn::direct`);
//! everything else goes through sqlx's pool.
//!
//! Timestamps compare as text. That is exact for the form sagaz and
//! sagascope write (UTC, `+00:00`, 6-digit fraction or none); rows written
//! with other offsets are read correctly but may be ordered by their text.
//!
//! The code is in one file a concern: `url` (the file a URL names), `conn`
//! (pool, the direct connection, errors, health), `schema` (tables and
//! their columns), `read` (how rows read and values bind), `write` (saves)
//! and `index` (the saga index and the saga list). Reads by id, a saga's
//! snapshots, deletes, the replay log's reads and locks are shared with
//! PostgreSQL, in `store::sql`.

mod conn;
mod index;
mod read;
mod schema;
mod url;
mod write;

use std::path::PathBuf;
use std::sync::OnceLock;

use self::conn::direct;
use super::lend::Lender;
use super::sql::impl_sql_store;
use super::*;

pub use self::url::path_from_url;

const BACKEND: &str = "sqlite";

/// The SQLite store.
pub struct SqliteStore {
    /// The pool, with one connection kept aside for calls made one at a
    /// time (see `store::lend`).
    pool: Lender<sqlx::Sqlite>,
    path: PathBuf,
    /// `SELECT` list for snapshots, matching `sql::snapshot_from_row`.
    snap_cols: String,
    has_external_refs: bool,
    has_snapshot_extra: bool,
    has_replay_extra: bool,
    /// The replay-log `SELECT` list and `FROM`, for the columns this table
    /// has.
    replay_from: String,
    /// The snapshot upsert, for the columns this table has.
    insert_sql: String,
    readonly: bool,
    /// Opened by the first save (see `direct`); `None` inside if it could
    /// not be opened.
    direct: OnceLock<Option<direct::DirectWriter>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

// The trait's operations are this folder's inherent methods of the same
// names (see `sql::impl_sql_store`).
impl_sql_store!(SqliteStore, {
    fn capabilities(&self) -> Capabilities {
        let (extra, refs) = (self.has_snapshot_extra, self.has_external_refs);
        sql::capabilities(BACKEND, true, extra, refs, false)
    }

    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
});
