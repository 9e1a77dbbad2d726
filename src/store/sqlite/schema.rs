//! The tables: sagaz-shaped `saga_snapshots` and `saga_replay_log` (with
//! sagascope's optional columns), `sagascope_locks`, made when missing; the
//! columns a table has, and the statements and values that fit them.

use sqlx::Row;

use super::super::sql::sql;
use super::super::sql::Bind;
use super::conn::db_err;
use super::index::{triggers_sql, SUMMARY_REBUILD, SUMMARY_TABLE};
use super::read::json_text;
use super::*;

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
CREATE TABLE IF NOT EXISTS sagascope_meta (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
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

impl SqliteStore {
    async fn columns(&self, table: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(sql(format!("PRAGMA table_info({table})")))
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name").map_err(db_err))
            .collect()
    }

    pub(super) async fn prepare_schema(&mut self, readonly: bool) -> StoreResult<()> {
        let had_summary: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'sagascope_sagas'",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        if !readonly {
            let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
            let script = format!("{SCHEMA}{SUMMARY_TABLE}{}", triggers_sql());
            sqlx::raw_sql(sql(script))
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
                .execute(&mut *self.conn().await?)
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
        self.replay_from = format!(
            "r.replay_id, r.original_saga_id, r.new_saga_id, r.checkpoint_step, r.context_override, r.initiated_by, \
             r.replay_status, r.error_message, r.created_at, r.completed_at, {} FROM saga_replay_log r",
            if self.has_replay_extra { "r.extra" } else { "NULL" }
        );
        self.insert_sql = self.insert_snapshot_sql();
        Ok(())
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
    pub(super) fn snapshot_binds(&self, s: &Snapshot) -> Vec<Bind> {
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
}
