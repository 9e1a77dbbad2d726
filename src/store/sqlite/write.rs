//! Saves (on the caller's thread when the direct connection is free, see
//! `conn`), deletes and expiry of snapshots, the replay log, and locks.

use std::time::Duration;

use sqlx::Row;

use super::super::sql::{replay_upsert, sql};
use super::conn::{db_err, direct};
use super::read::{json_text, Bind};
use super::*;

impl SqliteStore {
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
        Bind::bind_all(insert.to_string(), binds)
            .execute(exec)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
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
        let mut conn = self.conn().await?;
        self.insert_binds(&mut *conn, insert, binds).await
    }

    pub(super) async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
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

    pub(super) async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM saga_snapshots WHERE snapshot_id = ?")
            .bind(snapshot_id)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() > 0)
    }

    pub(super) async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM saga_snapshots WHERE saga_id = ?")
            .bind(saga_id)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected())
    }

    pub(super) async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let r = sqlx::query(
            "DELETE FROM saga_snapshots WHERE retention_until IS NOT NULL AND retention_until < ?",
        )
        .bind(now.to_isoformat())
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected())
    }

    pub(super) async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        let stmt = if self.has_replay_extra {
            replay_upsert(
                ", extra",
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ", extra = EXCLUDED.extra",
            )
        } else {
            replay_upsert("", "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "")
        };
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
        q.execute(&mut *self.conn().await?).await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn try_lock(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> StoreResult<LockOutcome> {
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
        .execute(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        if r.rows_affected() > 0 {
            return Ok(LockOutcome::Acquired);
        }
        let row = sqlx::query("SELECT owner, expires_us FROM sagascope_locks WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *self.conn().await?)
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

    pub(super) async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sagascope_locks WHERE name = ? AND owner = ?")
            .bind(name)
            .bind(owner)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
