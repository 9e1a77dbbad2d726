//! The tables: sagaz's DDL and sagascope's additions, made when missing,
//! the snapshot column list, and what sagaz's columns can hold (each value
//! is checked before it is written, so a refusal names the field).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::super::sql::sql;
use super::conn::db_err;
use super::*;

/// sagaz's DDL, verbatim apart from `IF NOT EXISTS` on the indexes.
pub(super) const SAGAZ_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS saga_snapshots (
    snapshot_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    saga_id UUID NOT NULL,
    saga_name VARCHAR(255) NOT NULL,
    step_name VARCHAR(255) NOT NULL,
    step_index INTEGER NOT NULL,
    status VARCHAR(50) NOT NULL,
    context JSONB NOT NULL,
    completed_steps JSONB NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    retention_until TIMESTAMPTZ,
    CONSTRAINT idx_saga_snapshots_saga_id_step UNIQUE (saga_id, step_name, created_at)
);
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_saga_id ON saga_snapshots(saga_id);
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_created_at ON saga_snapshots(created_at);
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_retention ON saga_snapshots(retention_until);
CREATE TABLE IF NOT EXISTS saga_replay_log (
    replay_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    original_saga_id UUID NOT NULL,
    new_saga_id UUID NOT NULL,
    checkpoint_step VARCHAR(255) NOT NULL,
    context_override JSONB,
    initiated_by VARCHAR(255) NOT NULL,
    replay_status VARCHAR(50) NOT NULL,
    error_message TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS idx_replay_log_original_saga ON saga_replay_log(original_saga_id);
CREATE INDEX IF NOT EXISTS idx_replay_log_created_at ON saga_replay_log(created_at);
"#;

/// sagascope's additions; sagaz never reads these.
pub(super) const SAGASCOPE_SCHEMA: &str = r#"
CREATE INDEX IF NOT EXISTS sagascope_snapshots_recent ON saga_snapshots(created_at, saga_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_status_recent ON saga_snapshots(status, created_at, saga_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_saga_time ON saga_snapshots(saga_id, created_at, snapshot_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_saga_step_time ON saga_snapshots(saga_id, step_name, created_at, snapshot_id);
CREATE INDEX IF NOT EXISTS sagascope_replay_log_new_saga ON saga_replay_log(new_saga_id);
CREATE TABLE IF NOT EXISTS sagascope_snapshot_extra (
    snapshot_id UUID PRIMARY KEY REFERENCES saga_snapshots(snapshot_id) ON DELETE CASCADE ON UPDATE CASCADE,
    extra JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS sagascope_replay_extra (
    replay_id UUID PRIMARY KEY,
    extra JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS sagascope_locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sagascope_meta (
    kind TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"#;

/// The snapshot columns as `store::sql` reads them, over `saga_snapshots`
/// alone.
const SNAP_COLS: &str = "snapshot_id, saga_id, saga_name, step_name, step_index, status, context::text, completed_steps::text, created_at, retention_until";
/// The same over `saga_snapshots` joined with `sagascope_snapshot_extra`
/// (named `x`, joined `USING (snapshot_id)` so that the unqualified
/// `snapshot_id` of conditions and orders stays sagaz's column): no
/// `external_refs`, then the extra fields.
const SNAP_COLS_EXTRA: &str = "snapshot_id, saga_id, saga_name, step_name, step_index, status, context::text, completed_steps::text, created_at, retention_until, NULL::text, x.extra::text";
/// What joins the extra fields to a `saga_snapshots` row source.
const SNAP_EXTRA_JOIN: &str = " LEFT JOIN sagascope_snapshot_extra x USING (snapshot_id)";

pub(super) fn unstorable(what: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Unstorable {
        backend: BACKEND,
        what: what.into(),
        reason: reason.into(),
    }
}

/// A UUID column value. sagaz's columns are `UUID`, and sagascope gives ids
/// back as text; only the canonical lowercase form survives that trip
/// unchanged, so other spellings are refused rather than silently rewritten.
pub(super) fn uuid_for_write(what: &str, id: &str) -> StoreResult<Uuid> {
    match Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(u),
        Ok(_) => Err(unstorable(
            format!("{what} {id:?}"),
            "sagaz's table keeps ids as UUID; write it lowercase with hyphens (8-4-4-4-12)",
        )),
        Err(_) => Err(unstorable(
            format!("{what} {id:?}"),
            "sagaz's table keeps ids in UUID columns and this is not a UUID",
        )),
    }
}

/// A UUID to look up: any spelling; `None` when it cannot be one (then
/// nothing can match).
pub(super) fn uuid_for_read(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

pub(super) fn check_text(what: &str, value: &str, max_chars: Option<usize>) -> StoreResult<()> {
    if value.contains('\0') {
        return Err(unstorable(
            what.to_string(),
            "PostgreSQL text cannot hold the NUL character (U+0000)",
        ));
    }
    if let Some(max) = max_chars {
        let n = value.chars().count();
        if n > max {
            return Err(unstorable(
                what.to_string(),
                format!("{n} characters, but sagaz's column is VARCHAR({max})"),
            ));
        }
    }
    Ok(())
}

/// JSONB rejects `\u0000` in strings and keys; find it first so the error
/// names the field instead of being a driver message.
fn nul_path(v: &Value, path: &mut String) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(i, x)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = nul_path(x, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        Value::Object(m) => m.iter().any(|(k, x)| {
            let len = path.len();
            path.push('.');
            path.push_str(&k.replace('\0', "\\u0000"));
            let found = k.contains('\0') || nul_path(x, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    }
}

pub(super) fn check_json(what: &str, v: &Value) -> StoreResult<()> {
    let mut path = what.to_string();
    if nul_path(v, &mut path) {
        return Err(unstorable(
            path,
            "JSONB cannot hold the NUL character (\\u0000) in a string; sagaz's PostgreSQL store rejects it too",
        ));
    }
    Ok(())
}

/// One snapshot converted to column values, checked.
pub(super) struct SnapshotRow {
    pub(super) snapshot_id: Uuid,
    pub(super) saga_id: Uuid,
    pub(super) saga_name: String,
    pub(super) step_name: String,
    pub(super) step_index: i32,
    pub(super) status: String,
    pub(super) context: String,
    pub(super) completed_steps: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) retention_until: Option<DateTime<Utc>>,
    /// The extra fields' JSON object; `None` when there are none.
    pub(super) extra: Option<String>,
}

impl SnapshotRow {
    pub(super) fn from_snapshot(s: &Snapshot) -> StoreResult<Self> {
        let snapshot_id = uuid_for_write("snapshot_id", &s.snapshot_id)?;
        let saga_id = uuid_for_write("saga_id", &s.saga_id)?;
        let name = |f: &str| format!("snapshot {} field `{f}`", s.snapshot_id);
        check_text(&name("saga_name"), &s.saga_name, Some(255))?;
        check_text(&name("step_name"), &s.step_name, Some(255))?;
        check_text(&name("status"), s.status.as_str(), Some(50))?;
        let step_index = i32::try_from(s.step_index).map_err(|_| {
            unstorable(
                name("step_index"),
                format!("{} does not fit sagaz's INTEGER column", s.step_index),
            )
        })?;
        let context = Value::Object(s.context.clone());
        check_json(
            &format!("snapshot {} field context", s.snapshot_id),
            &context,
        )?;
        let steps = Value::Array(s.completed_steps.iter().cloned().map(Value::from).collect());
        check_json(
            &format!("snapshot {} field completed_steps", s.snapshot_id),
            &steps,
        )?;
        let extra = if s.extra.is_empty() {
            None
        } else {
            let extra = Value::Object(s.extra.clone());
            check_json(&format!("snapshot {} extra field", s.snapshot_id), &extra)?;
            Some(serde_json::to_string(&extra).unwrap_or_else(|_| "{}".into()))
        };
        Ok(SnapshotRow {
            snapshot_id,
            saga_id,
            saga_name: s.saga_name.clone(),
            step_name: s.step_name.clone(),
            step_index,
            status: s.status.as_str().to_string(),
            context: serde_json::to_string(&context).unwrap_or_else(|_| "{}".into()),
            completed_steps: serde_json::to_string(&steps).unwrap_or_else(|_| "[]".into()),
            created_at: s.created_at.as_datetime(),
            retention_until: s.retention_until.map(|t| t.as_datetime()),
            extra,
        })
    }
}

impl PostgresStore {
    pub(super) async fn prepare_schema(&mut self, readonly: bool) -> StoreResult<()> {
        if !readonly {
            let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
            // Two processes creating the same tables at once would race on
            // the catalog; the advisory lock makes them take turns.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sagascope schema'))")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if let Some(s) = &self.schema {
                sqlx::query(sql(format!("CREATE SCHEMA IF NOT EXISTS \"{s}\"")))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            sqlx::raw_sql(sql(format!("{SAGAZ_SCHEMA}{SAGASCOPE_SCHEMA}")))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        }
        let found: (bool, bool, bool) = sqlx::query_as(
            "SELECT to_regclass('saga_snapshots') IS NOT NULL, to_regclass('sagascope_replay_extra') IS NOT NULL, \
             to_regclass('sagascope_snapshot_extra') IS NOT NULL",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        if !found.0 {
            return Err(StoreError::Unreachable {
                url: self.location.clone(),
                reason: "no saga_snapshots table here (check the database and schema=); open it once without --readonly to create it".into(),
            });
        }
        self.has_replay_extra = found.1;
        self.has_snapshot_extra = found.2;
        Ok(())
    }

    /// The snapshot `SELECT` list over [`Self::snapshot_source`].
    pub(super) fn snap_cols(&self) -> &'static str {
        if self.has_snapshot_extra {
            SNAP_COLS_EXTRA
        } else {
            SNAP_COLS
        }
    }

    /// `saga_snapshots` with the extra fields joined, when this database
    /// keeps them; read with [`Self::snap_cols`].
    pub(super) fn snap_table(&self) -> &'static str {
        if self.has_snapshot_extra {
            "saga_snapshots LEFT JOIN sagascope_snapshot_extra x USING (snapshot_id)"
        } else {
            "saga_snapshots"
        }
    }

    /// `rows` (a table or a subquery and its name, with the columns of
    /// `saga_snapshots`) with the extra fields joined, when this database
    /// keeps them; read with [`Self::snap_cols`].
    pub(super) fn snapshot_source(&self, rows: &str) -> String {
        if self.has_snapshot_extra {
            format!("{rows}{SNAP_EXTRA_JOIN}")
        } else {
            rows.to_string()
        }
    }

    /// A snapshot as checked column values; its extra fields need
    /// `sagascope_snapshot_extra`.
    pub(super) fn snapshot_row(&self, s: &Snapshot) -> StoreResult<SnapshotRow> {
        let row = SnapshotRow::from_snapshot(s)?;
        if row.extra.is_some() && !self.has_snapshot_extra {
            return Err(unstorable(
                format!("snapshot {} extra fields", s.snapshot_id),
                "this database has no sagascope_snapshot_extra table; open it once without --readonly",
            ));
        }
        Ok(row)
    }

    pub(super) fn replay_cols(&self) -> &'static str {
        if self.has_replay_extra {
            "r.replay_id, r.original_saga_id, r.new_saga_id, r.checkpoint_step, r.context_override::text, r.initiated_by, \
             r.replay_status, r.error_message, r.created_at, r.completed_at, e.extra::text \
             FROM saga_replay_log r LEFT JOIN sagascope_replay_extra e ON e.replay_id = r.replay_id"
        } else {
            "r.replay_id, r.original_saga_id, r.new_saga_id, r.checkpoint_step, r.context_override::text, r.initiated_by, \
             r.replay_status, r.error_message, r.created_at, r.completed_at, NULL::text \
             FROM saga_replay_log r"
        }
    }

    /// Checks a replay-log entry against what sagaz's table can hold;
    /// returns its replay, original and new saga ids.
    pub(super) fn check_replay(&self, log: &ReplayLog) -> StoreResult<(Uuid, Uuid, Uuid)> {
        let replay_id = uuid_for_write("replay_id", &log.replay_id)?;
        let original = uuid_for_write("original_saga_id", &log.original_saga_id)?;
        let new_saga = uuid_for_write("new_saga_id", &log.new_saga_id)?;
        let name = |f: &str| format!("replay {} field `{f}`", log.replay_id);
        check_text(&name("checkpoint_step"), &log.checkpoint_step, Some(255))?;
        check_text(&name("initiated_by"), &log.initiated_by, Some(255))?;
        check_text(&name("replay_status"), log.replay_status.as_str(), Some(50))?;
        if let Some(m) = &log.error_message {
            check_text(&name("error_message"), m, None)?;
        }
        if let Some(v) = &log.context_override {
            check_json(
                &format!("replay {} field context_override", log.replay_id),
                v,
            )?;
        }
        let extra = Value::Object(log.extra.clone());
        check_json(&format!("replay {} extra field", log.replay_id), &extra)?;
        if !log.extra.is_empty() && !self.has_replay_extra {
            return Err(unstorable(
                name("extra"),
                "this database has no sagascope_replay_extra table; open it once without --readonly",
            ));
        }
        Ok((replay_id, original, new_saga))
    }
}
