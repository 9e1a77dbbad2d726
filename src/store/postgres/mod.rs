//! `postgres://user@host/db`: sagaz's own PostgreSQL tables.
//!
//! `saga_snapshots` and `saga_replay_log` are used exactly as sagaz 1.5.0
//! makes them (FORMATS.md §3): created with sagaz's DDL when missing, never
//! altered when present, so sagaz keeps reading and writing the same rows.
//! sagascope adds only things sagaz never looks at:
//!
//! - extra indexes (`CREATE INDEX IF NOT EXISTS sagascope_*`) that make the
//!   saga list an index walk: `(created_at, saga_id)` and
//!   `(status, created_at, saga_id)` to find the newest snapshots first, and
//!   `(saga_id, created_at, snapshot_id)` to check in one probe that no newer
//!   snapshot of the same saga exists. A page of `list_sagas` stops after
//!   `limit` sagas, so its cost does not grow with the table;
//! - `sagascope_snapshot_extra` (`snapshot_id` → JSONB) for a snapshot's
//!   fields beyond sagaz's columns ([`Snapshot::extra`]: a failed run's
//!   `error` and `compensated_steps`, a replay's `replay_of`, …). A row
//!   exists only for a snapshot that has such fields; its foreign key
//!   follows sagaz's row (`ON DELETE CASCADE ON UPDATE CASCADE`), so every
//!   delete — sagascope's, sagaz's `delete_expired_snapshots`, sagaz's
//!   upsert that replaces a row's id — keeps the two tables in step. Reads
//!   join it (`LEFT JOIN … USING (snapshot_id)`) in the same statement;
//!   writes go in the snapshot's statement. A database opened read-only
//!   that has no such table reads without extra fields (and says so in
//!   [`Capabilities`]);
//! - `sagascope_replay_extra` (`replay_id` → JSONB) for the replay-log fields
//!   sagaz's table has no column for (`reason`, `dry_run`, `merge`, …);
//! - `sagascope_locks` (name, owner, expiry on the server's clock) for replay
//!   locks that hold across machines and lapse when a holder dies.
//!
//! What sagaz's table cannot hold, and so this backend cannot either (see
//! [`Capabilities`]): context key order (JSONB), `external_refs` (no
//! column), NUL characters (JSONB and TEXT reject them), ids that are not
//! UUIDs, names longer than the `VARCHAR` limits. Each gives a
//! [`StoreError::Unstorable`] naming the value, never a silent loss.
//!
//! Sessions run with `jit = off`. The saga-list queries are short index
//! walks whose best plan depends on the values bound (a rare or common
//! status, a cursor near either end), so they run as unnamed statements,
//! planned for their values each time; lookups by id use cached plans.
//!
//! URL parameters besides libpq's (`sslmode`, `sslrootcert`, `options`, …,
//! as sqlx parses them): `schema=NAME` puts every table in that schema
//! (created if missing; the tests use one schema per test),
//! `pool_max=N` (default 8) and `connect_timeout=SECONDS` (default 5).

//! The code is in one file a concern: `url` (the URL and its parameters),
//! `conn` (pool, errors, health, `TCP_NODELAY`), `schema` (tables and what
//! their columns hold), `read` (how rows read and values bind), `write`
//! (saves) and `index` (the saga list). Reads by id, a saga's snapshots,
//! deletes, the replay log's reads and locks are shared with SQLite, in
//! `store::sql`.

mod conn;
mod index;
mod read;
mod schema;
mod url;
mod write;

use crate::model::{ReplayLog, Snapshot};

use super::lend::Lender;
use super::sql::impl_sql_store;
use super::*;

pub use self::index::saga_list_sql;
pub(crate) use self::url::check_url;

const BACKEND: &str = "postgres";

/// The PostgreSQL store.
pub struct PostgresStore {
    /// The pool, with one connection kept aside for calls made one at a
    /// time (see `store::lend`).
    pool: Lender<sqlx::Postgres>,
    /// Redacted, for display and errors.
    location: String,
    schema: Option<String>,
    has_replay_extra: bool,
    /// `sagascope_snapshot_extra` exists (made when opened writable).
    has_snapshot_extra: bool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.location)
            .field("schema", &self.schema)
            .finish()
    }
}

// The trait's operations are this folder's inherent methods of the same
// names (see `sql::impl_sql_store`).
impl_sql_store!(PostgresStore, {
    fn capabilities(&self) -> Capabilities {
        sql::capabilities(BACKEND, false, self.has_snapshot_extra, false, true)
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn latest_snapshots_for_step(
        &self,
        saga_ids: &[String],
        step: &str,
    ) -> StoreResult<Listing<Snapshot>> {
        self.latest_snapshots_for_step(saga_ids, step).await
    }

    async fn save_replays(&self, logs: &[ReplayLog]) -> StoreResult<()> {
        self.save_replays(logs).await
    }
});
