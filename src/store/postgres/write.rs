//! Saves: snapshots, one at a time and batched, and the replay log, each
//! checked against what sagaz's columns hold first.

use super::super::sql::{replay_upsert, sql};
use super::conn::db_err;
use super::schema::{uuid_for_write, SnapshotRow};
use super::*;

/// Rows per statement in batched writes: big enough to amortise the round
/// trip, small enough to keep each transaction short.
const WRITE_CHUNK: usize = 1000;

/// sagaz's snapshot columns, in its order.
const SNAP_INSERT_COLS: &str =
    "snapshot_id, saga_id, saga_name, step_name, step_index, status, context, \
     completed_steps, created_at, retention_until";

/// sagascope's upsert: by id, every other column replaced.
const SNAP_UPSERT: &str = "ON CONFLICT (snapshot_id) DO UPDATE SET saga_id = EXCLUDED.saga_id, \
     saga_name = EXCLUDED.saga_name, step_name = EXCLUDED.step_name, step_index = EXCLUDED.step_index, \
     status = EXCLUDED.status, context = EXCLUDED.context, completed_steps = EXCLUDED.completed_steps, \
     created_at = EXCLUDED.created_at, retention_until = EXCLUDED.retention_until";

impl PostgresStore {
    /// Writes checked rows in one transaction. sagaz's table has two unique
    /// keys: `snapshot_id` (what sagascope replaces by) and
    /// `(saga_id, step_name, created_at)` (what sagaz's upsert replaces by).
    /// A row clashing on the second is removed first, which is what sagaz's
    /// `ON CONFLICT … DO UPDATE SET snapshot_id = …` amounts to.
    async fn write_rows(&self, rows: &[SnapshotRow]) -> StoreResult<()> {
        let mut ids = Vec::with_capacity(rows.len());
        let mut sagas = Vec::with_capacity(rows.len());
        let mut names = Vec::with_capacity(rows.len());
        let mut steps = Vec::with_capacity(rows.len());
        let mut indexes = Vec::with_capacity(rows.len());
        let mut statuses = Vec::with_capacity(rows.len());
        let mut contexts = Vec::with_capacity(rows.len());
        let mut completed = Vec::with_capacity(rows.len());
        let mut created = Vec::with_capacity(rows.len());
        let mut retention = Vec::with_capacity(rows.len());
        let mut extras: Vec<Option<String>> = Vec::with_capacity(rows.len());
        for r in rows {
            ids.push(r.snapshot_id);
            sagas.push(r.saga_id);
            names.push(r.saga_name.clone());
            steps.push(r.step_name.clone());
            indexes.push(r.step_index);
            statuses.push(r.status.clone());
            contexts.push(r.context.clone());
            completed.push(r.completed_steps.clone());
            created.push(r.created_at);
            retention.push(r.retention_until);
            extras.push(r.extra.clone());
        }
        let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
        sqlx::query(
            "DELETE FROM saga_snapshots s USING unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[]) \
             AS t(snapshot_id, saga_id, step_name, created_at) \
             WHERE s.saga_id = t.saga_id AND s.step_name = t.step_name AND s.created_at = t.created_at \
             AND s.snapshot_id <> t.snapshot_id",
        )
        .bind(&ids)
        .bind(&sagas)
        .bind(&steps)
        .bind(&created)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let insert = format!(
            "INSERT INTO saga_snapshots ({SNAP_INSERT_COLS}) \
             SELECT t.snapshot_id, t.saga_id, t.saga_name, t.step_name, t.step_index, t.status, t.context::jsonb, \
             t.completed_steps::jsonb, t.created_at, t.retention_until \
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], \
             $8::text[], $9::timestamptz[], $10::timestamptz[]) \
             AS t(snapshot_id, saga_id, saga_name, step_name, step_index, status, context, completed_steps, \
             created_at, retention_until) {SNAP_UPSERT}"
        );
        // The extra fields in the same statement: written where there are
        // some, removed where there are none (an overwrite may drop them).
        let text = if self.has_snapshot_extra {
            format!(
                "WITH s AS ({insert}), \
                 x AS (INSERT INTO sagascope_snapshot_extra (snapshot_id, extra) \
                 SELECT t.snapshot_id, t.extra::jsonb FROM unnest($1::uuid[], $11::text[]) AS t(snapshot_id, extra) \
                 WHERE t.extra IS NOT NULL ON CONFLICT (snapshot_id) DO UPDATE SET extra = EXCLUDED.extra) \
                 DELETE FROM sagascope_snapshot_extra e USING unnest($1::uuid[], $11::text[]) AS t(snapshot_id, extra) \
                 WHERE t.extra IS NULL AND e.snapshot_id = t.snapshot_id"
            )
        } else {
            insert
        };
        let mut q = sqlx::query(sql(text))
            .bind(&ids)
            .bind(&sagas)
            .bind(&names)
            .bind(&steps)
            .bind(&indexes)
            .bind(&statuses)
            .bind(&contexts)
            .bind(&completed)
            .bind(&created)
            .bind(&retention);
        if self.has_snapshot_extra {
            q = q.bind(&extras);
        }
        q.execute(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    /// Writes with one retry: a concurrent writer can slip a clashing row in
    /// between the delete and the insert.
    async fn write_rows_retrying(&self, rows: &[SnapshotRow]) -> StoreResult<()> {
        match self.write_rows(rows).await {
            Err(StoreError::Backend { message, .. }) if message.contains("duplicate key") => {
                self.write_rows(rows).await.map_err(|e| match e {
                    StoreError::Backend { .. } => StoreError::backend(BACKEND, message),
                    other => other,
                })
            }
            other => other,
        }
    }

    pub(super) async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let row = self.snapshot_row(snapshot)?;
        // The usual case in one statement, so one round trip. A clash on
        // sagaz's other unique key (same saga, step and time, another id)
        // fails it without effect; the transaction below handles that.
        let insert = format!(
            "INSERT INTO saga_snapshots ({SNAP_INSERT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10) {SNAP_UPSERT}"
        );
        // The extra fields ride in the same statement: written when there
        // are some, removed when there are none (an overwrite may drop them).
        let text = match (self.has_snapshot_extra, &row.extra) {
            (false, _) => insert,
            (true, Some(_)) => format!(
                "WITH s AS ({insert} RETURNING snapshot_id) \
                 INSERT INTO sagascope_snapshot_extra (snapshot_id, extra) SELECT snapshot_id, $11::jsonb FROM s \
                 ON CONFLICT (snapshot_id) DO UPDATE SET extra = EXCLUDED.extra"
            ),
            (true, None) => format!(
                "WITH s AS ({insert} RETURNING snapshot_id) \
                 DELETE FROM sagascope_snapshot_extra e USING s WHERE e.snapshot_id = s.snapshot_id"
            ),
        };
        let mut q = sqlx::query(sql(text))
            .bind(row.snapshot_id)
            .bind(row.saga_id)
            .bind(&row.saga_name)
            .bind(&row.step_name)
            .bind(row.step_index)
            .bind(&row.status)
            .bind(&row.context)
            .bind(&row.completed_steps)
            .bind(row.created_at)
            .bind(row.retention_until);
        if self.has_snapshot_extra {
            if let Some(x) = &row.extra {
                q = q.bind(x);
            }
        }
        let r = q.execute(&mut *self.conn().await?).await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "23505") =>
            {
                self.write_rows_retrying(std::slice::from_ref(&row)).await
            }
            Err(e) => Err(db_err(e)),
        }
    }

    pub(super) async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        // Check everything before writing anything.
        let rows = snapshots
            .iter()
            .map(|s| self.snapshot_row(s))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut start = 0;
        while start < rows.len() {
            // One statement cannot touch a row twice: cut the chunk before a
            // repeated key, so later writes still win as they would one by one.
            let mut seen_ids = std::collections::HashSet::new();
            let mut seen_keys = std::collections::HashSet::new();
            let mut end = start;
            while end < rows.len() && end - start < WRITE_CHUNK {
                let r = &rows[end];
                if !seen_ids.insert(r.snapshot_id)
                    || !seen_keys.insert((r.saga_id, r.step_name.clone(), r.created_at))
                {
                    break;
                }
                end += 1;
            }
            self.write_rows_retrying(&rows[start..end]).await?;
            start = end;
        }
        Ok(())
    }

    pub(super) async fn delete_replay(&self, replay_id: &str) -> StoreResult<bool> {
        let extra = self.has_replay_extra.then_some("sagascope_replay_extra");
        super::super::sql::delete_replay(self, replay_id, extra).await
    }

    pub(super) async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        let (replay_id, original, new_saga) = self.check_replay(log)?;
        let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
        sqlx::query(sql(replay_upsert(
            "",
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10)",
            "",
        )))
        .bind(replay_id)
        .bind(original)
        .bind(new_saga)
        .bind(log.checkpoint_step.clone())
        .bind(
            log.context_override
                .as_ref()
                .map(|v| serde_json::to_string(v).unwrap_or_else(|_| "null".into())),
        )
        .bind(log.initiated_by.clone())
        .bind(log.replay_status.as_str().to_string())
        .bind(log.error_message.clone())
        .bind(log.created_at.as_datetime())
        .bind(log.completed_at.map(|t| t.as_datetime()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if self.has_replay_extra {
            if log.extra.is_empty() {
                sqlx::query("DELETE FROM sagascope_replay_extra WHERE replay_id = $1")
                    .bind(replay_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            } else {
                sqlx::query(
                    "INSERT INTO sagascope_replay_extra (replay_id, extra) VALUES ($1, $2::jsonb) \
                     ON CONFLICT (replay_id) DO UPDATE SET extra = EXCLUDED.extra",
                )
                .bind(replay_id)
                .bind(serde_json::to_string(&log.extra).unwrap_or_else(|_| "{}".into()))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn save_replays(&self, logs: &[ReplayLog]) -> StoreResult<()> {
        if logs.len() <= 1 {
            for l in logs {
                self.save_replay(l).await?;
            }
            return Ok(());
        }
        let mut ids = Vec::with_capacity(logs.len());
        let mut originals = Vec::with_capacity(logs.len());
        let mut news = Vec::with_capacity(logs.len());
        let mut steps = Vec::with_capacity(logs.len());
        let mut overrides: Vec<Option<String>> = Vec::with_capacity(logs.len());
        let mut whos = Vec::with_capacity(logs.len());
        let mut statuses = Vec::with_capacity(logs.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(logs.len());
        let mut created = Vec::with_capacity(logs.len());
        let mut completed = Vec::with_capacity(logs.len());
        let mut extra_ids = Vec::new();
        let mut extras = Vec::new();
        let mut no_extra_ids = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(logs.len());
        for log in logs {
            let id = uuid_for_write("replay_id", &log.replay_id)?;
            if !seen.insert(id) {
                // The same entry twice in one statement cannot be upserted:
                // keep the statement to distinct ids, write the rest singly.
                self.save_replay(log).await?;
                continue;
            }
            let (_, original, new_saga) = self.check_replay(log)?;
            ids.push(id);
            originals.push(original);
            news.push(new_saga);
            steps.push(log.checkpoint_step.clone());
            overrides.push(
                log.context_override
                    .as_ref()
                    .map(|v| serde_json::to_string(v).unwrap_or_else(|_| "null".into())),
            );
            whos.push(log.initiated_by.clone());
            statuses.push(log.replay_status.as_str().to_string());
            errors.push(log.error_message.clone());
            created.push(log.created_at.as_datetime());
            completed.push(log.completed_at.map(|t| t.as_datetime()));
            if log.extra.is_empty() {
                no_extra_ids.push(id);
            } else {
                extra_ids.push(id);
                extras.push(serde_json::to_string(&log.extra).unwrap_or_else(|_| "{}".into()));
            }
        }
        let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
        sqlx::query(sql(replay_upsert(
            "",
            "SELECT r, o, n, s, c::jsonb, w, st, e, ca, co FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], \
             $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[]) \
             AS t(r, o, n, s, c, w, st, e, ca, co)",
            "",
        )))
        .bind(&ids)
        .bind(&originals)
        .bind(&news)
        .bind(&steps)
        .bind(&overrides)
        .bind(&whos)
        .bind(&statuses)
        .bind(&errors)
        .bind(&created)
        .bind(&completed)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if self.has_replay_extra {
            if !extra_ids.is_empty() {
                sqlx::query(
                    "INSERT INTO sagascope_replay_extra (replay_id, extra) \
                     SELECT r, x::jsonb FROM UNNEST($1::uuid[], $2::text[]) AS t(r, x) \
                     ON CONFLICT (replay_id) DO UPDATE SET extra = EXCLUDED.extra",
                )
                .bind(&extra_ids)
                .bind(&extras)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            if !no_extra_ids.is_empty() {
                sqlx::query("DELETE FROM sagascope_replay_extra WHERE replay_id = ANY($1)")
                    .bind(&no_extra_ids)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }
}
