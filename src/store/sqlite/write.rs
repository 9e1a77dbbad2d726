//! Saves: snapshots (on the caller's thread when the direct connection is
//! free, see `conn::direct`) and the replay log.

use super::super::sql::{replay_upsert, sql, Bind};
use super::conn::{db_err, direct};
use super::read::{bind_all, json_text};
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
        bind_all(insert.to_string(), binds)
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

    pub(super) async fn delete_replay(&self, replay_id: &str) -> StoreResult<bool> {
        super::super::sql::delete_replay(self, replay_id, None).await
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
}
