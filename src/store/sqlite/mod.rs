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
//! caller's thread, with checkpoints on a thread beside it (`direct`);
//! everything else goes through sqlx's pool.
//!
//! Timestamps compare as text. That is exact for the form sagaz and
//! sagascope write (UTC, `+00:00`, 6-digit fraction or none); rows written
//! with other offsets are read correctly but may be ordered by their text.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use crate::model::{ReplayLog, ReplayStatus, SagaStatus, SagaSummary, Snapshot, Timestamp};

use super::*;

mod direct;

const BACKEND: &str = "sqlite";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS saga_snapshots (
    snapshot_id TEXT PRIMARY KEY,
    saga_id TEXT NOT NULL,
    saga_name TEXT NOT NULL,
    step_name TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    status TEXT NOT NULL,
    context TEXT NOT NULL,
    completed_steps TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retention_until TEXT,
    external_refs TEXT,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_retention ON saga_snapshots(retention_until);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_saga_time ON saga_snapshots(saga_id, created_at, snapshot_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_saga_step ON saga_snapshots(saga_id, step_name, created_at);

CREATE TABLE IF NOT EXISTS saga_replay_log (
    replay_id TEXT PRIMARY KEY,
    original_saga_id TEXT NOT NULL,
    new_saga_id TEXT NOT NULL,
    checkpoint_step TEXT NOT NULL,
    context_override TEXT,
    initiated_by TEXT NOT NULL,
    replay_status TEXT NOT NULL,
    error_message TEXT,
    created_at TEXT NOT NULL,
    completed_at TEXT,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS idx_replay_log_original_saga ON saga_replay_log(original_saga_id);
CREATE INDEX IF NOT EXISTS idx_replay_log_created_at ON saga_replay_log(created_at);
CREATE INDEX IF NOT EXISTS sagascope_replay_log_new_saga ON saga_replay_log(new_saga_id);

CREATE TABLE IF NOT EXISTS sagascope_locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_us INTEGER NOT NULL
);
"#;

const SUMMARY_TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS sagascope_sagas (
    saga_id TEXT PRIMARY KEY,
    saga_name TEXT NOT NULL,
    latest_status TEXT NOT NULL,
    latest_step TEXT NOT NULL,
    latest_step_index INTEGER NOT NULL,
    latest_snapshot_id TEXT NOT NULL,
    snapshot_count INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sagascope_sagas_recent ON sagascope_sagas(last_at DESC, saga_id DESC);
CREATE INDEX IF NOT EXISTS sagascope_sagas_status ON sagascope_sagas(latest_status, last_at DESC, saga_id DESC);
CREATE INDEX IF NOT EXISTS sagascope_sagas_name ON sagascope_sagas(saga_name, last_at DESC, saga_id DESC);
"#;

/// Indexes earlier versions made on `saga_snapshots` (after sagaz's
/// PostgreSQL ones) that no query uses: every query names a saga, and the
/// composite indexes start with `saga_id`. Each cost every save a page
/// write. Dropped only from tables sagascope created (those with its
/// `external_refs` column); a table another program made keeps its indexes.
const UNUSED_INDEXES: &str = r#"
DROP INDEX IF EXISTS idx_saga_snapshots_saga_id;
DROP INDEX IF EXISTS idx_saga_snapshots_created_at;
"#;

/// Rebuilds summary rows from `saga_snapshots` for the sagas `{cond}` picks.
const SUMMARY_REBUILD: &str = r#"
INSERT OR REPLACE INTO sagascope_sagas (saga_id, saga_name, latest_status, latest_step,
    latest_step_index, latest_snapshot_id, snapshot_count, first_at, last_at)
SELECT s.saga_id, s.saga_name, s.status, s.step_name, s.step_index, s.snapshot_id,
       g.n, g.first_at, s.created_at
FROM (SELECT saga_id, count(*) AS n, min(created_at) AS first_at
      FROM saga_snapshots WHERE {cond} GROUP BY saga_id) AS g
JOIN saga_snapshots AS s ON s.snapshot_id = (
    SELECT x.snapshot_id FROM saga_snapshots AS x WHERE x.saga_id = g.saga_id
    ORDER BY x.created_at DESC, x.snapshot_id DESC LIMIT 1)
"#;

/// The summary row of each saga, kept by triggers so rows other programs
/// write are indexed too.
///
/// `INSERT OR REPLACE` (and `REPLACE`) by another program deletes the row it
/// replaces without firing delete triggers (unless that program turned on
/// `recursive_triggers`), so an after-insert trigger alone would count the
/// replaced row twice and keep its time. The before-insert trigger clears
/// the notes an earlier statement left, then notes the sagas of rows this
/// insert may replace (same `snapshot_id`, or same
/// `(saga_id, step_name, created_at)`, sagaz's unique key). After the
/// insert exactly one of two triggers fires: with no notes, `ai_one`
/// adjusts the saga's row by one; with notes, `ai_recount` recounts the
/// noted sagas from the table. Neither changes whether notes exist, so the
/// order SQLite fires them in doesn't matter.
///
/// Cost, per save (the engine saves before every step): the common path
/// runs two statements and dirties the summary row's pages only. Clearing
/// the notes uses `WHERE 1`: a bare `DELETE FROM` truncates the table,
/// which rewrites its root page even when it is empty. Measured with
/// sagascope's schema (`PRAGMA wal_autocheckpoint=0`, Python's sqlite3):
/// 11.0 WAL frames and 0.10 ms per save, against 14.2 frames and 0.16 ms
/// with the single trigger and two more indexes of earlier versions.
const TRIGGERS: &str = r#"
DROP TRIGGER IF EXISTS sagascope_snapshots_ai;
DROP TRIGGER IF EXISTS sagascope_snapshots_au;
DROP TRIGGER IF EXISTS sagascope_snapshots_bi;
DROP TRIGGER IF EXISTS sagascope_snapshots_ai2;
CREATE TABLE IF NOT EXISTS sagascope_replaced (saga_id TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS sagascope_snapshots_bi2 BEFORE INSERT ON saga_snapshots BEGIN
    DELETE FROM sagascope_replaced WHERE 1;
    INSERT INTO sagascope_replaced (saga_id)
    SELECT saga_id FROM saga_snapshots WHERE snapshot_id = NEW.snapshot_id
    UNION
    SELECT saga_id FROM saga_snapshots
    WHERE saga_id = NEW.saga_id AND step_name = NEW.step_name AND created_at = NEW.created_at;
END;
CREATE TRIGGER IF NOT EXISTS sagascope_snapshots_ai_one AFTER INSERT ON saga_snapshots
WHEN NOT EXISTS (SELECT 1 FROM sagascope_replaced) BEGIN
    INSERT OR IGNORE INTO sagascope_sagas
    SELECT NEW.saga_id, NEW.saga_name, NEW.status, NEW.step_name, NEW.step_index, NEW.snapshot_id,
        0, NEW.created_at, NEW.created_at;
    UPDATE sagascope_sagas SET
        snapshot_count = snapshot_count + 1,
        first_at = min(first_at, NEW.created_at),
        saga_name = CASE WHEN {NEWER} THEN NEW.saga_name ELSE saga_name END,
        latest_status = CASE WHEN {NEWER} THEN NEW.status ELSE latest_status END,
        latest_step = CASE WHEN {NEWER} THEN NEW.step_name ELSE latest_step END,
        latest_step_index = CASE WHEN {NEWER} THEN NEW.step_index ELSE latest_step_index END,
        latest_snapshot_id = CASE WHEN {NEWER} THEN NEW.snapshot_id ELSE latest_snapshot_id END,
        last_at = max(last_at, NEW.created_at)
    WHERE saga_id = NEW.saga_id;
END;
CREATE TRIGGER IF NOT EXISTS sagascope_snapshots_ai_recount AFTER INSERT ON saga_snapshots
WHEN EXISTS (SELECT 1 FROM sagascope_replaced) BEGIN
    INSERT INTO sagascope_replaced (saga_id) VALUES (NEW.saga_id);
    {RECOUNT}
END;
CREATE TRIGGER IF NOT EXISTS sagascope_snapshots_ad AFTER DELETE ON saga_snapshots BEGIN
    UPDATE sagascope_sagas SET snapshot_count = snapshot_count - 1 WHERE saga_id = OLD.saga_id;
    DELETE FROM sagascope_sagas WHERE saga_id = OLD.saga_id AND snapshot_count <= 0;
    UPDATE sagascope_sagas SET
        (saga_name, latest_status, latest_step, latest_step_index, latest_snapshot_id, last_at) =
        (SELECT saga_name, status, step_name, step_index, snapshot_id, created_at
         FROM saga_snapshots WHERE saga_id = OLD.saga_id
         ORDER BY created_at DESC, snapshot_id DESC LIMIT 1)
    WHERE saga_id = OLD.saga_id AND latest_snapshot_id = OLD.snapshot_id;
    UPDATE sagascope_sagas SET
        first_at = (SELECT min(created_at) FROM saga_snapshots WHERE saga_id = OLD.saga_id)
    WHERE saga_id = OLD.saga_id AND first_at = OLD.created_at;
END;
CREATE TRIGGER IF NOT EXISTS sagascope_snapshots_au2 AFTER UPDATE ON saga_snapshots BEGIN
    INSERT INTO sagascope_replaced (saga_id) VALUES (OLD.saga_id), (NEW.saga_id);
    {RECOUNT}
    DELETE FROM sagascope_replaced;
END;
"#;

/// Trigger statements that recount every saga noted in `sagascope_replaced`
/// from `saga_snapshots` (the notes stay; see [`TRIGGERS`]).
const RECOUNT: &str = r#"
    DELETE FROM sagascope_sagas WHERE saga_id IN (SELECT saga_id FROM sagascope_replaced);
    INSERT OR REPLACE INTO sagascope_sagas (saga_id, saga_name, latest_status, latest_step,
        latest_step_index, latest_snapshot_id, snapshot_count, first_at, last_at)
    SELECT s.saga_id, s.saga_name, s.status, s.step_name, s.step_index, s.snapshot_id,
           g.n, g.first_at, s.created_at
    FROM (SELECT saga_id, count(*) AS n, min(created_at) AS first_at
          FROM saga_snapshots WHERE saga_id IN (SELECT saga_id FROM sagascope_replaced)
          GROUP BY saga_id) AS g
    JOIN saga_snapshots AS s ON s.snapshot_id = (
        SELECT x.snapshot_id FROM saga_snapshots AS x WHERE x.saga_id = g.saga_id
        ORDER BY x.created_at DESC, x.snapshot_id DESC LIMIT 1);
"#;

/// [`TRIGGERS`] with its shared pieces filled in.
fn triggers_sql() -> String {
    TRIGGERS
        .replace(
            "{NEWER}",
            "NEW.created_at > last_at OR (NEW.created_at = last_at AND NEW.snapshot_id >= latest_snapshot_id)",
        )
        .replace("{RECOUNT}", RECOUNT)
}

/// The SQLite store.
pub struct SqliteStore {
    /// The pool, with one connection kept aside for calls made one at a
    /// time (see `store::lend`).
    pool: super::lend::Lender<sqlx::Sqlite>,
    path: PathBuf,
    /// `SELECT` list for snapshots, matching [`Self::snapshot_from_row`].
    snap_cols: String,
    has_external_refs: bool,
    has_snapshot_extra: bool,
    has_replay_extra: bool,
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

fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::backend(BACKEND, e)
}

fn sql(s: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(s)
}

/// The file a `sqlite://` URL names.
pub fn path_from_url(url: &StoreUrl) -> StoreResult<PathBuf> {
    let raw = url.expose();
    let rest = raw
        .split_once("://")
        .map(|(_, r)| r)
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() {
        return Err(StoreError::InvalidUrl {
            url: url.redacted(),
            reason: "no file path; use sqlite:///absolute/path.db or sqlite://relative.db".into(),
        });
    }
    Ok(PathBuf::from(rest))
}

impl SqliteStore {
    /// Opens (creating if needed) the database a `sqlite://` URL names.
    pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Self> {
        let path = path_from_url(url)?;
        if (opts.must_exist || opts.readonly) && !path.exists() {
            return Err(StoreError::Unreachable {
                url: url.redacted(),
                reason: format!(
                    "{} does not exist (a command that only reads does not create it; check the path)",
                    path.display()
                ),
            });
        }
        Self::open_path(path, opts.readonly).await
    }

    /// Opens (creating if needed) a database file.
    pub async fn open_path(path: PathBuf, readonly: bool) -> StoreResult<Self> {
        let unreachable = |reason: String| StoreError::Unreachable {
            url: format!("sqlite://{}", path.display()),
            reason,
        };
        if !readonly {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::files::create_private_dir_all(dir)
                    .map_err(|e| unreachable(format!("cannot create {}: {e}", dir.display())))?;
            }
            // Created here, owner-only, before SQLite opens it: SQLite makes
            // the -wal and -shm files with the database file's mode.
            match crate::files::create_new_private_file(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(unreachable(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db_err)?
            .filename(&path)
            .create_if_missing(!readonly)
            .read_only(readonly)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        // A local file needs no liveness ping before each use (sqlx's
        // default costs a trip to the worker thread per use).
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut store = SqliteStore {
            pool: super::lend::Lender::new(pool),
            path,
            snap_cols: String::new(),
            has_external_refs: false,
            has_snapshot_extra: false,
            has_replay_extra: false,
            insert_sql: String::new(),
            readonly,
            direct: OnceLock::new(),
        };
        store.prepare_schema(readonly).await?;
        Ok(store)
    }

    async fn columns(&self, table: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(sql(format!("PRAGMA table_info({table})")))
            .fetch_all(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(db_err))
            .collect()
    }

    async fn prepare_schema(&mut self, readonly: bool) -> StoreResult<()> {
        let had_summary: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'sagascope_sagas'",
        )
        .fetch_one(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        if !readonly {
            let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
            sqlx::raw_sql(SCHEMA)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::raw_sql(SUMMARY_TABLE)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::raw_sql(sql(triggers_sql()))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if !had_summary {
                // The tables may hold rows written before sagascope's index
                // existed (by sagaz-shaped tools): index them once.
                sqlx::query(sql(SUMMARY_REBUILD.replace("{cond}", "1")))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
        } else if !had_summary {
            return Err(StoreError::Unreachable {
                url: self.location(),
                reason: "the database has no sagascope tables yet; open it once without --readonly"
                    .into(),
            });
        }
        let snap_cols = self.columns("saga_snapshots").await?;
        self.has_external_refs = snap_cols.iter().any(|c| c == "external_refs");
        if self.has_external_refs && !readonly {
            sqlx::raw_sql(UNUSED_INDEXES)
                .execute(&mut *self.pool.conn().await.map_err(db_err)?)
                .await
                .map_err(db_err)?;
        }
        self.has_snapshot_extra = snap_cols.iter().any(|c| c == "extra");
        self.has_replay_extra = self
            .columns("saga_replay_log")
            .await?
            .iter()
            .any(|c| c == "extra");
        self.snap_cols = format!(
            "snapshot_id, saga_id, saga_name, step_name, step_index, status, context, completed_steps, created_at, retention_until, {}, {}",
            if self.has_external_refs { "external_refs" } else { "NULL" },
            if self.has_snapshot_extra { "extra" } else { "NULL" },
        );
        self.insert_sql = self.insert_snapshot_sql();
        Ok(())
    }

    /// The connection for saves made on the caller's thread, opened on
    /// first use; `None` when read-only or when it can't be opened (saves
    /// then go through the pool).
    fn direct(&self) -> Option<&direct::DirectWriter> {
        if self.readonly {
            return None;
        }
        self.direct
            .get_or_init(|| match direct::DirectWriter::open(&self.path) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::debug!("sqlite direct connection not opened: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The connection pool, for tools that need raw access (tests, benches).
    pub fn pool(&self) -> &SqlitePool {
        self.pool.pool()
    }

    fn snapshot_from_row(row: &SqliteRow) -> Result<Snapshot, BadEntry> {
        use super::rows::{snapshot_from_columns, SnapshotColumns, TimeColumn};
        let key: String = row
            .try_get(0)
            .unwrap_or_else(|_| "<unreadable snapshot_id>".into());
        let saga_id: Option<String> = row.try_get(1).ok();
        let bad = |e: String| BadEntry {
            key: format!("saga_snapshots/{key}"),
            saga_id: saga_id.clone(),
            error: e,
        };
        let col = |i: usize, name: &str| -> Result<String, BadEntry> {
            row.try_get::<String, _>(i)
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let opt_col = |i: usize, name: &str| -> Result<Option<String>, BadEntry> {
            row.try_get::<Option<String>, _>(i)
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let step_index: i64 = row
            .try_get(4)
            .map_err(|e| bad(format!("column `step_index`: {e}")))?;
        let saga_id = Some(col(1, "saga_id")?);
        snapshot_from_columns(SnapshotColumns {
            saga_name: col(2, "saga_name")?,
            step_name: col(3, "step_name")?,
            step_index,
            status: col(5, "status")?,
            context: col(6, "context")?,
            completed_steps: col(7, "completed_steps")?,
            created_at: opt_col(8, "created_at")?.map(TimeColumn::Text),
            retention_until: opt_col(9, "retention_until")?.map(TimeColumn::Text),
            external_refs: opt_col(10, "external_refs")?,
            extra: opt_col(11, "extra")?,
            snapshot_id: key.clone(),
            saga_id,
        })
    }

    fn replay_from_row(&self, row: &SqliteRow) -> Result<ReplayLog, BadEntry> {
        let key: String = row
            .try_get(0)
            .unwrap_or_else(|_| "<unreadable replay_id>".into());
        let bad = |e: String| BadEntry {
            key: format!("saga_replay_log/{key}"),
            saga_id: row.try_get(1).ok(),
            error: e,
        };
        let col = |i: usize, name: &str| -> Result<Option<String>, BadEntry> {
            row.try_get::<Option<String>, _>(i)
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let req = |i: usize, name: &str| -> Result<String, BadEntry> {
            col(i, name)?.ok_or_else(|| bad(format!("column `{name}` is NULL")))
        };
        let json = |i: usize, name: &str| -> Result<Option<Value>, BadEntry> {
            col(i, name)?
                .map(|t| serde_json::from_str(&t).map_err(|e| bad(format!("column `{name}`: {e}"))))
                .transpose()
        };
        let ts = |i: usize, name: &str| -> Result<Option<Timestamp>, BadEntry> {
            col(i, name)?
                .map(|s| Timestamp::parse(&s).map_err(|e| bad(format!("column `{name}`: {e}"))))
                .transpose()
        };
        let extra = match json(10, "extra")? {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("column `extra`: expected a JSON object".into())),
        };
        Ok(ReplayLog {
            replay_id: key.clone(),
            original_saga_id: req(1, "original_saga_id")?,
            new_saga_id: req(2, "new_saga_id")?,
            checkpoint_step: req(3, "checkpoint_step")?,
            context_override: json(4, "context_override")?.filter(|v| !v.is_null()),
            initiated_by: req(5, "initiated_by")?,
            replay_status: ReplayStatus::parse(&req(6, "replay_status")?),
            error_message: col(7, "error_message")?,
            created_at: ts(8, "created_at")?
                .ok_or_else(|| bad("column `created_at` is NULL".into()))?,
            completed_at: ts(9, "completed_at")?,
            extra,
        })
    }

    fn replay_cols(&self) -> String {
        format!(
            "replay_id, original_saga_id, new_saga_id, checkpoint_step, context_override, initiated_by, replay_status, error_message, created_at, completed_at, {}",
            if self.has_replay_extra { "extra" } else { "NULL" }
        )
    }

    fn insert_snapshot_sql(&self) -> String {
        let mut cols = String::from(
            "snapshot_id, saga_id, saga_name, step_name, step_index, status, context, completed_steps, created_at, retention_until",
        );
        let mut n = 10;
        if self.has_external_refs {
            cols.push_str(", external_refs");
            n += 1;
        }
        if self.has_snapshot_extra {
            cols.push_str(", extra");
            n += 1;
        }
        let marks = vec!["?"; n].join(", ");
        let updates = cols
            .split(", ")
            .filter(|c| *c != "snapshot_id")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("INSERT INTO saga_snapshots ({cols}) VALUES ({marks}) ON CONFLICT(snapshot_id) DO UPDATE SET {updates}")
    }

    /// A snapshot's column values, in [`Self::insert_snapshot_sql`]'s order.
    fn snapshot_binds(&self, s: &Snapshot) -> Vec<Bind> {
        let mut binds = vec![
            Bind::Text(s.snapshot_id.clone()),
            Bind::Text(s.saga_id.clone()),
            Bind::Text(s.saga_name.clone()),
            Bind::Text(s.step_name.clone()),
            Bind::Int(s.step_index),
            Bind::Text(s.status.as_str().into()),
            Bind::Text(json_text(&s.context)),
            Bind::Text(serde_json::to_string(&s.completed_steps).unwrap_or_else(|_| "[]".into())),
            Bind::Text(s.created_at.to_isoformat()),
            Bind::opt_text(s.retention_until.map(|t| t.to_isoformat())),
        ];
        if self.has_external_refs {
            binds.push(Bind::Text(json_text(&s.external_refs)));
        }
        if self.has_snapshot_extra {
            binds.push(Bind::opt_text(
                (!s.extra.is_empty()).then(|| json_text(&s.extra)),
            ));
        }
        binds
    }

    async fn insert_snapshots<'e, E>(&self, exec: E, insert: &str, s: &Snapshot) -> StoreResult<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        self.insert_binds(exec, insert, self.snapshot_binds(s))
            .await
    }

    async fn insert_binds<'e, E>(&self, exec: E, insert: &str, binds: Vec<Bind>) -> StoreResult<()>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        let mut q = sqlx::query(sql(insert.to_string()));
        for b in binds {
            q = b.apply(q);
        }
        q.execute(exec).await.map_err(db_err)?;
        Ok(())
    }

    /// The rows a query selects, each decoded or named as bad, in order.
    async fn fetch_rows(
        &self,
        query: String,
        binds: Vec<Bind>,
    ) -> StoreResult<Vec<Result<Snapshot, BadEntry>>> {
        let mut q = sqlx::query(sql(query));
        for b in binds {
            q = b.apply(q);
        }
        let rows = q
            .fetch_all(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(Self::snapshot_from_row).collect())
    }

    async fn fetch_snapshots(
        &self,
        query: String,
        binds: Vec<Bind>,
    ) -> StoreResult<Listing<Snapshot>> {
        let mut out = Listing::default();
        for r in self.fetch_rows(query, binds).await? {
            match r {
                Ok(s) => out.items.push(s),
                Err(b) => out.push_bad(b),
            }
        }
        Ok(out)
    }

    async fn fetch_one_snapshot(
        &self,
        query: String,
        binds: Vec<Bind>,
    ) -> StoreResult<Option<Snapshot>> {
        let listing = self.fetch_snapshots(query, binds).await?;
        if let Some(b) = listing.bad.into_iter().next() {
            return Err(StoreError::Corrupt { entry: b });
        }
        Ok(listing.items.into_iter().next())
    }

    fn saga_where(filter: &SagaFilter, after: Option<&SagaCursor>) -> (String, Vec<Bind>) {
        let mut conds: Vec<String> = Vec::new();
        let mut binds = Vec::new();
        if !filter.statuses.is_empty() {
            conds.push(format!(
                "latest_status IN ({})",
                vec!["?"; filter.statuses.len()].join(", ")
            ));
            binds.extend(
                filter
                    .statuses
                    .iter()
                    .map(|s| Bind::Text(s.as_str().to_string())),
            );
        }
        if let Some(n) = &filter.name {
            conds.push("saga_name = ?".into());
            binds.push(Bind::Text(n.clone()));
        }
        if let Some(st) = &filter.latest_step {
            conds.push("latest_step = ?".into());
            binds.push(Bind::Text(st.clone()));
        }
        if let Some(t) = filter.since {
            conds.push("last_at >= ?".into());
            binds.push(Bind::Text(t.to_isoformat()));
        }
        if let Some(t) = filter.until {
            conds.push("last_at <= ?".into());
            binds.push(Bind::Text(t.to_isoformat()));
        }
        if let Some(p) = &filter.id_prefix {
            conds.push("substr(saga_id, 1, ?) = ?".into());
            binds.push(Bind::Int(p.chars().count() as i64));
            binds.push(Bind::Text(p.clone()));
        }
        if let Some(c) = after {
            conds.push("(last_at < ? OR (last_at = ? AND saga_id < ?))".into());
            binds.push(Bind::Text(c.last_at.to_isoformat()));
            binds.push(Bind::Text(c.last_at.to_isoformat()));
            binds.push(Bind::Text(c.saga_id.clone()));
        }
        let clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        (clause, binds)
    }

    fn summary_from_row(row: &SqliteRow) -> Result<SagaSummary, BadEntry> {
        let saga_id: String = row.try_get(0).unwrap_or_default();
        let bad = |e: String| BadEntry {
            key: format!("sagascope_sagas/{saga_id}"),
            saga_id: Some(saga_id.clone()),
            error: e,
        };
        let text = |i: usize| row.try_get::<String, _>(i).map_err(|e| bad(e.to_string()));
        let ts = |i: usize| -> Result<Timestamp, BadEntry> {
            Timestamp::parse(&text(i)?).map_err(|e| bad(e.to_string()))
        };
        Ok(SagaSummary {
            saga_id: saga_id.clone(),
            saga_name: text(1)?,
            latest_status: SagaStatus::parse(&text(2)?),
            latest_step: text(3)?,
            latest_step_index: row.try_get(4).map_err(|e| bad(e.to_string()))?,
            snapshot_count: row
                .try_get::<i64, _>(5)
                .map_err(|e| bad(e.to_string()))?
                .max(0) as u64,
            first_at: ts(6)?,
            last_at: ts(7)?,
        })
    }
}

/// JSON text for a TEXT column: compact, UTF-8, key order kept.
fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// A bind value for queries built at run time.
#[derive(Clone)]
enum Bind {
    Text(String),
    Int(i64),
    Null,
}

impl Bind {
    fn apply<'q>(
        self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        match self {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
            Bind::Null => q.bind(None::<String>),
        }
    }

    fn opt_text(s: Option<String>) -> Self {
        s.map_or(Bind::Null, Bind::Text)
    }
}

impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
        Ok(match self {
            Bind::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Bind::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            Bind::Null => ToSqlOutput::Owned(SqlValue::Null),
        })
    }
}

const SUMMARY_COLS: &str =
    "saga_id, saga_name, latest_status, latest_step, latest_step_index, snapshot_count, first_at, last_at";

#[async_trait]
impl SnapshotStore for SqliteStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: BACKEND,
            preserves_key_order: true,
            preserves_extra_fields: self.has_snapshot_extra,
            stores_external_refs: self.has_external_refs,
            stores_nul_in_strings: true,
            indexed_saga_list: true,
            distributed_locks: false,
        }
    }

    fn location(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let insert = &self.insert_sql;
        let binds = self.snapshot_binds(snapshot);
        if let Some(direct) = self.direct() {
            match direct.execute(insert, &binds) {
                direct::Attempt::Done => return Ok(()),
                direct::Attempt::Fallback { why } => {
                    tracing::debug!("sqlite save through the pool: {why}");
                }
            }
        }
        let mut conn = self.pool.conn().await.map_err(db_err)?;
        self.insert_binds(&mut *conn, insert, binds).await
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        let insert = &self.insert_sql;
        // Batches of a few thousand keep each write transaction short, so a
        // reader in another process is never blocked for long.
        for chunk in snapshots.chunks(2000) {
            let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
            for s in chunk {
                self.insert_snapshots(&mut *tx, insert, s).await?;
            }
            tx.commit().await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
        self.fetch_one_snapshot(
            format!(
                "SELECT {} FROM saga_snapshots WHERE snapshot_id = ?",
                self.snap_cols
            ),
            vec![Bind::Text(snapshot_id.into())],
        )
        .await
    }

    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let mut binds = vec![Bind::Text(saga_id.into())];
        let step_cond = match step {
            Some(st) => {
                binds.push(Bind::Text(st.into()));
                "AND step_name = ?"
            }
            None => "",
        };
        self.fetch_one_snapshot(
            format!(
                "SELECT {} FROM saga_snapshots WHERE saga_id = ? {step_cond} ORDER BY created_at DESC, snapshot_id DESC LIMIT 1",
                self.snap_cols
            ),
            binds,
        )
        .await
    }

    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.fetch_one_snapshot(
            format!(
                "SELECT {} FROM saga_snapshots WHERE saga_id = ? AND created_at <= ? ORDER BY created_at DESC, snapshot_id DESC LIMIT 1",
                self.snap_cols
            ),
            vec![Bind::Text(saga_id.into()), Bind::Text(at.to_isoformat())],
        )
        .await
    }

    async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        let mut conds = vec!["saga_id = ?".to_string()];
        let mut binds = vec![Bind::Text(saga_id.into())];
        if let Some(t) = q.since {
            conds.push("created_at >= ?".into());
            binds.push(Bind::Text(t.to_isoformat()));
        }
        if let Some(t) = q.until {
            conds.push("created_at <= ?".into());
            binds.push(Bind::Text(t.to_isoformat()));
        }
        let (cmp, dir) = match q.order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        if let Some(c) = &q.after {
            conds.push(format!(
                "(created_at {cmp} ? OR (created_at = ? AND snapshot_id {cmp} ?))"
            ));
            binds.push(Bind::Text(c.created_at.to_isoformat()));
            binds.push(Bind::Text(c.created_at.to_isoformat()));
            binds.push(Bind::Text(c.snapshot_id.clone()));
        }
        let text = format!(
            "SELECT {} FROM saga_snapshots WHERE {} ORDER BY created_at {dir}, snapshot_id {dir}",
            self.snap_cols,
            conds.join(" AND ")
        );
        let Some(limit) = q.limit else {
            return self.fetch_snapshots(text, binds).await;
        };
        let page = |rows: usize, offset: usize| {
            let mut b = binds.clone();
            b.push(Bind::Int(rows.min(i64::MAX as usize) as i64));
            b.push(Bind::Int(offset.min(i64::MAX as usize) as i64));
            (format!("{text} LIMIT ? OFFSET ?"), b)
        };
        super::page_in_order(
            limit,
            |_| true,
            |rows, offset| {
                let (text, b) = page(rows, offset);
                async move {
                    Ok(self
                        .fetch_rows(text, b)
                        .await?
                        .into_iter()
                        .map(Some)
                        .collect())
                }
            },
        )
        .await
    }

    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM saga_snapshots WHERE saga_id = ?")
            .bind(saga_id)
            .fetch_one(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM saga_snapshots WHERE snapshot_id = ?")
            .bind(snapshot_id)
            .execute(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM saga_snapshots WHERE saga_id = ?")
            .bind(saga_id)
            .execute(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }

    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let r = sqlx::query(
            "DELETE FROM saga_snapshots WHERE retention_until IS NOT NULL AND retention_until < ?",
        )
        .bind(now.to_isoformat())
        .execute(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected())
    }

    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        let (extra_col, extra_mark, extra_set) = if self.has_replay_extra {
            (", extra", ", ?", ", extra = excluded.extra")
        } else {
            ("", "", "")
        };
        let stmt = format!(
            "INSERT INTO saga_replay_log (replay_id, original_saga_id, new_saga_id, checkpoint_step, context_override, initiated_by, replay_status, error_message, created_at, completed_at{extra_col}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?{extra_mark}) \
             ON CONFLICT(replay_id) DO UPDATE SET original_saga_id = excluded.original_saga_id, new_saga_id = excluded.new_saga_id, \
             checkpoint_step = excluded.checkpoint_step, context_override = excluded.context_override, initiated_by = excluded.initiated_by, \
             replay_status = excluded.replay_status, error_message = excluded.error_message, created_at = excluded.created_at, \
             completed_at = excluded.completed_at{extra_set}"
        );
        let mut q = sqlx::query(sql(stmt))
            .bind(&log.replay_id)
            .bind(&log.original_saga_id)
            .bind(&log.new_saga_id)
            .bind(&log.checkpoint_step)
            .bind(log.context_override.as_ref().map(json_text))
            .bind(&log.initiated_by)
            .bind(log.replay_status.as_str())
            .bind(&log.error_message)
            .bind(log.created_at.to_isoformat())
            .bind(log.completed_at.map(|t| t.to_isoformat()));
        if self.has_replay_extra {
            q = q.bind(if log.extra.is_empty() {
                None
            } else {
                Some(json_text(&log.extra))
            });
        }
        q.execute(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
        let row = sqlx::query(sql(format!(
            "SELECT {} FROM saga_replay_log WHERE replay_id = ?",
            self.replay_cols()
        )))
        .bind(replay_id)
        .fetch_optional(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            self.replay_from_row(&r)
                .map_err(|entry| StoreError::Corrupt { entry })
        })
        .transpose()
    }

    async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {} FROM saga_replay_log WHERE original_saga_id = ? ORDER BY created_at DESC, replay_id DESC LIMIT ?",
            self.replay_cols()
        )))
        .bind(original_saga_id)
        .bind(limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64))
        .fetch_all(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        let mut out = Listing::default();
        for r in &rows {
            match self.replay_from_row(r) {
                Ok(l) => out.items.push(l),
                Err(b) => out.bad.push(b),
            }
        }
        Ok(out)
    }

    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        let row = sqlx::query(sql(format!(
            "SELECT {} FROM saga_replay_log WHERE new_saga_id = ? ORDER BY created_at DESC LIMIT 1",
            self.replay_cols()
        )))
        .bind(new_saga_id)
        .fetch_optional(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            self.replay_from_row(&r)
                .map_err(|entry| StoreError::Corrupt { entry })
        })
        .transpose()
    }

    async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage> {
        let (clause, mut binds) = Self::saga_where(filter, page.after.as_ref());
        // One row more than asked says whether there is a next page; the
        // limit is clamped so a huge "no limit" value cannot wrap negative.
        let limit = page.limit.min(i64::MAX as usize - 1);
        binds.push(Bind::Int(limit as i64 + 1));
        let mut q = sqlx::query(sql(format!(
            "SELECT {SUMMARY_COLS} FROM sagascope_sagas {clause} ORDER BY last_at DESC, saga_id DESC LIMIT ?"
        )));
        for b in binds {
            q = b.apply(q);
        }
        let rows = q
            .fetch_all(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        let more = rows.len() > limit;
        let mut out = SagaPage::default();
        for row in rows.iter().take(limit) {
            match Self::summary_from_row(row) {
                Ok(s) => out.sagas.push(s),
                Err(mut b) => {
                    // The index row copies the saga's newest snapshot, so a
                    // damaged newest row once made the whole saga vanish:
                    // list it from its readable snapshots, and say so.
                    if let Some(id) = b.saga_id.clone().filter(|id| !id.is_empty()) {
                        if let Some(s) = super::summary_from_snapshots(self, &id).await? {
                            b.error = format!("{}; listed from its readable snapshots", b.error);
                            if filter.matches(&s) {
                                out.sagas.push(s);
                            }
                        }
                    }
                    out.bad.push(b);
                }
            }
        }
        if more {
            // The cursor comes from the last row even if that row was bad, so
            // paging never repeats or skips. A row whose time is not a time
            // can't be a cursor: the last row before it that has one is, so
            // the next page may repeat a damaged row but never ends early.
            out.next = rows.iter().take(limit).rev().find_map(|row| {
                let last_at = row
                    .try_get::<String, _>(7)
                    .ok()
                    .and_then(|s| Timestamp::parse(&s).ok())?;
                let saga_id: String = row.try_get(0).ok()?;
                Some(SagaCursor { last_at, saga_id })
            });
        }
        Ok(out)
    }

    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        let row = sqlx::query(sql(format!(
            "SELECT {SUMMARY_COLS} FROM sagascope_sagas WHERE saga_id = ?"
        )))
        .bind(saga_id)
        .fetch_optional(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        row.map(|r| Self::summary_from_row(&r).map_err(|entry| StoreError::Corrupt { entry }))
            .transpose()
    }

    async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64> {
        let (clause, binds) = Self::saga_where(filter, None);
        let mut q = sqlx::query(sql(format!(
            "SELECT count(*) FROM sagascope_sagas {clause}"
        )));
        for b in binds {
            q = b.apply(q);
        }
        let row = q
            .fetch_one(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(row.try_get::<i64, _>(0).map_err(db_err)?.max(0) as u64)
    }

    async fn health(&self) -> StoreResult<Health> {
        let start = Instant::now();
        sqlx::query("SELECT 1")
            .execute(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        let latency = start.elapsed();
        let count = |table: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *self.pool.conn().await.ok()?)
                .await
                .ok()
                .map(|n| n.max(0) as u64)
        };
        let pages: Option<i64> = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .ok();
        Ok(Health {
            backend: BACKEND,
            url: self.location(),
            reachable: true,
            latency,
            sagas: count("sagascope_sagas").await,
            snapshots: count("saga_snapshots").await,
            replays: count("saga_replay_log").await,
            size_bytes: pages.map(|n| n.max(0) as u64),
            notes: vec![],
        })
    }

    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome> {
        let now = Timestamp::now();
        let until = now.plus_micros(ttl.as_micros().min(i64::MAX as u128) as i64);
        let r = sqlx::query(
            "INSERT INTO sagascope_locks (name, owner, expires_us) VALUES (?, ?, ?) \
             ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_us = excluded.expires_us \
             WHERE sagascope_locks.expires_us < ? OR sagascope_locks.owner = excluded.owner",
        )
        .bind(name)
        .bind(owner)
        .bind(until.as_micros())
        .bind(now.as_micros())
        .execute(&mut *self.pool.conn().await.map_err(db_err)?)
        .await
        .map_err(db_err)?;
        if r.rows_affected() > 0 {
            return Ok(LockOutcome::Acquired);
        }
        let row = sqlx::query("SELECT owner, expires_us FROM sagascope_locks WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        match row {
            Some(r) => Ok(LockOutcome::Held {
                owner: r.try_get(0).map_err(db_err)?,
                until: Timestamp::from_micros(r.try_get(1).map_err(db_err)?).unwrap_or(now),
            }),
            // Released between the two statements: try once more.
            None => Box::pin(self.try_lock(name, owner, ttl)).await,
        }
    }

    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sagascope_locks WHERE name = ? AND owner = ?")
            .bind(name)
            .bind(owner)
            .execute(&mut *self.pool.conn().await.map_err(db_err)?)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
