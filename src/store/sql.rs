//! What the two SQL backends (SQLite, PostgreSQL) share: statement text
//! built at run time, how a row of `saga_snapshots`, `saga_replay_log` or a
//! saga list becomes a value, and how decoded rows become a listing.
//!
//! The backends differ in how a column is typed — SQLite keeps ids and
//! times as text, PostgreSQL as `UUID` and `TIMESTAMPTZ` — and [`SqlRow`]
//! says how each reads those; everything else about a row is decided here,
//! once for both.

use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, Row};

use super::rows::{snapshot_from_columns, SnapshotColumns, TimeColumn};
use super::{BadEntry, Listing, StoreError, StoreResult};
use crate::model::{ReplayLog, ReplayStatus, SagaStatus, SagaSummary, Snapshot, Timestamp};

/// Statement text built at run time from sagascope's own pieces (column
/// lists, placeholders, table names it checked); values are always bound.
pub(super) fn sql(s: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(s)
}

/// A driver error as the store's backend error.
pub(super) fn driver_err(backend: &'static str, e: sqlx::Error) -> StoreError {
    StoreError::backend(backend, e)
}

/// A row of one SQL backend: the reads whose column types differ.
pub(super) trait SqlRow: Row {
    /// Columns are typed (PostgreSQL): ids are UUIDs, times `timestamptz`,
    /// JSON goes through the codec, and an id the driver can't read is
    /// reported as unreadable. Otherwise (SQLite) every such column is text.
    const TYPED: bool;

    /// An id column, as text.
    fn id(&self, i: usize) -> Result<String, sqlx::Error>;

    /// A time column; `None` when NULL.
    fn time(&self, i: usize) -> Result<Option<TimeColumn>, sqlx::Error>;

    /// An integer column, widened.
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;

    /// A text column that may not be NULL.
    fn text(&self, i: usize) -> Result<String, sqlx::Error>;

    /// A text column that may be NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error>;
}

/// JSON text from a column, parsed as the backend always has.
fn parse_json<R: SqlRow>(text: &str) -> Result<Value, String> {
    if R::TYPED {
        super::codec::Codec::default()
            .parse_json(text.as_bytes())
            .map_err(|e| e.to_string())
    } else {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// A time column as a timestamp (text is parsed).
fn time_value(t: TimeColumn) -> Result<Timestamp, String> {
    match t {
        TimeColumn::Time(t) => Ok(t),
        TimeColumn::Text(s) => Timestamp::parse(&s).map_err(|e| e.to_string()),
    }
}

/// A `saga_snapshots` row selected with the backend's snapshot column list
/// (id, saga, name, step, index, status, context, completed steps, created,
/// retention; SQLite adds `external_refs` and `extra`).
pub(super) fn snapshot_from_row<R: SqlRow>(row: &R) -> Result<Snapshot, BadEntry> {
    let key = row
        .id(0)
        .unwrap_or_else(|_| "<unreadable snapshot_id>".into());
    let saga_id: Option<String> = row.id(1).ok();
    let bad = |e: String| BadEntry {
        key: format!("saga_snapshots/{key}"),
        saga_id: saga_id.clone(),
        error: e,
    };
    let column = |name: &str, e: sqlx::Error| bad(format!("column `{name}`: {e}"));
    let text = |i: usize, name: &str| row.text(i).map_err(|e| column(name, e));
    let opt_text = |i: usize, name: &str| -> Result<Option<String>, BadEntry> {
        if i < row.len() {
            row.opt_text(i).map_err(|e| column(name, e))
        } else {
            Ok(None)
        }
    };
    let time = |i: usize, name: &str| row.time(i).map_err(|e| column(name, e));
    let step_index = row.int(4).map_err(|e| column("step_index", e))?;
    let saga_id = if R::TYPED {
        saga_id.clone()
    } else {
        Some(row.id(1).map_err(|e| column("saga_id", e))?)
    };
    snapshot_from_columns(SnapshotColumns {
        saga_name: text(2, "saga_name")?,
        step_name: text(3, "step_name")?,
        step_index,
        status: text(5, "status")?,
        context: text(6, "context")?,
        completed_steps: text(7, "completed_steps")?,
        created_at: time(8, "created_at")?,
        retention_until: time(9, "retention_until")?,
        external_refs: opt_text(10, "external_refs")?,
        extra: opt_text(11, "extra")?,
        snapshot_id: key.clone(),
        saga_id,
    })
}

/// A `saga_replay_log` row: its ten columns in sagaz's order, then the
/// extra fields' JSON object (or NULL).
pub(super) fn replay_from_row<R: SqlRow>(row: &R) -> Result<ReplayLog, BadEntry> {
    let key = row
        .id(0)
        .unwrap_or_else(|_| "<unreadable replay_id>".into());
    let original: Option<String> = row.id(1).ok();
    let bad = |e: String| BadEntry {
        key: format!("saga_replay_log/{key}"),
        saga_id: original.clone(),
        error: e,
    };
    let text = |i: usize, name: &str| -> Result<Option<String>, BadEntry> {
        row.opt_text(i)
            .map_err(|e| bad(format!("column `{name}`: {e}")))
    };
    let req = |i: usize, name: &str| -> Result<String, BadEntry> {
        text(i, name)?.ok_or_else(|| bad(format!("column `{name}` is NULL")))
    };
    let json = |i: usize, name: &str| -> Result<Option<Value>, BadEntry> {
        text(i, name)?
            .map(|t| parse_json::<R>(&t).map_err(|e| bad(format!("column `{name}`: {e}"))))
            .transpose()
    };
    let time = |i: usize, name: &str| -> Result<Option<Timestamp>, BadEntry> {
        row.time(i)
            .map_err(|e| bad(format!("column `{name}`: {e}")))?
            .map(|t| time_value(t).map_err(|e| bad(format!("column `{name}`: {e}"))))
            .transpose()
    };
    // A typed table reads the new saga's id before anything else.
    let new_saga = if R::TYPED {
        Some(
            row.id(2)
                .map_err(|e| bad(format!("column `new_saga_id`: {e}")))?,
        )
    } else {
        None
    };
    let extra = match json(10, "extra")? {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(bad("column `extra`: expected a JSON object".into())),
    };
    let original_saga_id = if R::TYPED {
        original
            .clone()
            .ok_or_else(|| bad("column `original_saga_id` is unreadable".into()))?
    } else {
        req(1, "original_saga_id")?
    };
    let new_saga_id = match new_saga {
        Some(id) => id,
        None => req(2, "new_saga_id")?,
    };
    Ok(ReplayLog {
        replay_id: key.clone(),
        original_saga_id,
        new_saga_id,
        checkpoint_step: req(3, "checkpoint_step")?,
        context_override: json(4, "context_override")?.filter(|v| !v.is_null()),
        initiated_by: req(5, "initiated_by")?,
        replay_status: ReplayStatus::parse(&req(6, "replay_status")?),
        error_message: text(7, "error_message")?,
        created_at: time(8, "created_at")?
            .ok_or_else(|| bad("column `created_at` is NULL".into()))?,
        completed_at: time(9, "completed_at")?,
        extra,
    })
}

/// A saga-list row: saga id, name, newest status, step and step index,
/// snapshot count, first and last time. A bad one is named
/// `{key_prefix}{saga_id}`.
pub(super) fn summary_from_row<R: SqlRow>(
    row: &R,
    key_prefix: &str,
) -> Result<SagaSummary, BadEntry> {
    let saga_id = row.id(0).unwrap_or_default();
    let bad = |e: String| BadEntry {
        key: format!("{key_prefix}{saga_id}"),
        saga_id: Some(saga_id.clone()),
        error: e,
    };
    let text = |i: usize| row.text(i).map_err(|e| bad(e.to_string()));
    let time = |i: usize| -> Result<Timestamp, BadEntry> {
        let t = if R::TYPED {
            row.time(i)
                .map_err(|e| bad(e.to_string()))?
                .ok_or_else(|| bad("created_at is NULL".into()))?
        } else {
            TimeColumn::Text(text(i)?)
        };
        time_value(t).map_err(bad)
    };
    Ok(SagaSummary {
        saga_id: saga_id.clone(),
        saga_name: text(1)?,
        latest_status: SagaStatus::parse(&text(2)?),
        latest_step: text(3)?,
        latest_step_index: row.int(4).map_err(|e| bad(e.to_string()))?,
        snapshot_count: row.int(5).map_err(|e| bad(e.to_string()))?.max(0) as u64,
        first_at: time(6)?,
        last_at: time(7)?,
    })
}

/// Decoded snapshot rows as a listing, bad ones kept in place.
pub(super) fn snapshot_listing(rows: Vec<Result<Snapshot, BadEntry>>) -> Listing<Snapshot> {
    let mut out = Listing::default();
    for r in rows {
        match r {
            Ok(s) => out.items.push(s),
            Err(b) => out.push_bad(b),
        }
    }
    out
}

/// The one snapshot a lookup selects; a bad row is an error.
pub(super) fn first_snapshot(listing: Listing<Snapshot>) -> StoreResult<Option<Snapshot>> {
    if let Some(b) = listing.bad.into_iter().next() {
        return Err(StoreError::Corrupt { entry: b });
    }
    Ok(listing.items.into_iter().next())
}

/// Replay-log rows as a listing.
pub(super) fn replay_listing<R: SqlRow>(rows: &[R]) -> Listing<ReplayLog> {
    let mut out = Listing::default();
    for r in rows {
        match replay_from_row(r) {
            Ok(l) => out.items.push(l),
            Err(b) => out.bad.push(b),
        }
    }
    out
}

/// The one replay-log entry a lookup selects; a bad row is an error.
pub(super) fn one_replay<R: SqlRow>(row: Option<R>) -> StoreResult<Option<ReplayLog>> {
    row.map(|r| replay_from_row(&r).map_err(|entry| StoreError::Corrupt { entry }))
        .transpose()
}

/// The one saga summary a lookup selects; a bad row is an error.
pub(super) fn one_summary<R: SqlRow>(
    row: Option<R>,
    key_prefix: &str,
) -> StoreResult<Option<SagaSummary>> {
    row.map(|r| summary_from_row(&r, key_prefix).map_err(|entry| StoreError::Corrupt { entry }))
        .transpose()
}

/// JSON text for a column: compact, key order kept.
pub(super) fn json_text<T: serde::Serialize + ?Sized>(v: &T, fallback: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| fallback.into())
}

/// A limit or offset as a bound integer (SQL integers are signed).
pub(super) fn sql_int(n: usize) -> i64 {
    n.min(i64::MAX as usize) as i64
}

/// Keyset-paging pieces for a saga's snapshots in `order`: the comparison
/// that means "after" and the sort direction.
pub(super) fn order_words(order: super::Order) -> (&'static str, &'static str) {
    match order {
        super::Order::Asc => (">", "ASC"),
        super::Order::Desc => ("<", "DESC"),
    }
}

/// The upsert statement of sagaz's replay-log columns (plus `extra_col`),
/// with `values` as its source (a `VALUES (…)` or a `SELECT`).
pub(super) fn replay_upsert(extra_col: &str, values: &str, extra_set: &str) -> String {
    format!(
        "INSERT INTO saga_replay_log (replay_id, original_saga_id, new_saga_id, checkpoint_step, context_override, \
         initiated_by, replay_status, error_message, created_at, completed_at{extra_col}) {values} \
         ON CONFLICT (replay_id) DO UPDATE SET original_saga_id = EXCLUDED.original_saga_id, \
         new_saga_id = EXCLUDED.new_saga_id, checkpoint_step = EXCLUDED.checkpoint_step, \
         context_override = EXCLUDED.context_override, initiated_by = EXCLUDED.initiated_by, \
         replay_status = EXCLUDED.replay_status, error_message = EXCLUDED.error_message, \
         created_at = EXCLUDED.created_at, completed_at = EXCLUDED.completed_at{extra_set}"
    )
}

/// Implements [`SnapshotStore`](super::SnapshotStore) for a SQL store. The
/// operations both SQL stores answer are the store's inherent methods of
/// the same names, in its folder's `read`, `write`, `index` and `conn`
/// files (an inherent method takes precedence over the trait's); `$own`
/// holds the rest: `capabilities`, `location`, and whatever the store
/// answers beyond the trait's defaults.
macro_rules! impl_sql_store {
    ($store:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::SnapshotStore for $store {
            $($own)*

            async fn save_snapshot(
                &self,
                snapshot: &$crate::model::Snapshot,
            ) -> $crate::store::StoreResult<()> {
                self.save_snapshot(snapshot).await
            }

            async fn save_snapshots(
                &self,
                snapshots: &[$crate::model::Snapshot],
            ) -> $crate::store::StoreResult<()> {
                self.save_snapshots(snapshots).await
            }

            async fn get_snapshot(
                &self,
                snapshot_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                self.get_snapshot(snapshot_id).await
            }

            async fn latest_snapshot(
                &self,
                saga_id: &str,
                step: Option<&str>,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                self.latest_snapshot(saga_id, step).await
            }

            async fn snapshot_at(
                &self,
                saga_id: &str,
                at: $crate::model::Timestamp,
            ) -> $crate::store::StoreResult<Option<$crate::model::Snapshot>> {
                self.snapshot_at(saga_id, at).await
            }

            async fn list_snapshots(
                &self,
                saga_id: &str,
                q: &$crate::store::SnapshotQuery,
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::Snapshot>> {
                self.list_snapshots(saga_id, q).await
            }

            async fn count_snapshots(&self, saga_id: &str) -> $crate::store::StoreResult<u64> {
                self.count_snapshots(saga_id).await
            }

            async fn delete_snapshot(&self, snapshot_id: &str) -> $crate::store::StoreResult<bool> {
                self.delete_snapshot(snapshot_id).await
            }

            async fn delete_saga(&self, saga_id: &str) -> $crate::store::StoreResult<u64> {
                self.delete_saga(saga_id).await
            }

            async fn delete_expired(
                &self,
                now: $crate::model::Timestamp,
            ) -> $crate::store::StoreResult<u64> {
                self.delete_expired(now).await
            }

            async fn save_replay(
                &self,
                log: &$crate::model::ReplayLog,
            ) -> $crate::store::StoreResult<()> {
                self.save_replay(log).await
            }

            async fn get_replay(
                &self,
                replay_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::ReplayLog>> {
                self.get_replay(replay_id).await
            }

            async fn list_replays(
                &self,
                original_saga_id: &str,
                limit: Option<usize>,
            ) -> $crate::store::StoreResult<$crate::store::Listing<$crate::model::ReplayLog>> {
                self.list_replays(original_saga_id, limit).await
            }

            async fn replay_producing(
                &self,
                new_saga_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::ReplayLog>> {
                self.replay_producing(new_saga_id).await
            }

            async fn list_sagas(
                &self,
                filter: &$crate::store::SagaFilter,
                page: &$crate::store::SagaPageRequest,
            ) -> $crate::store::StoreResult<$crate::store::SagaPage> {
                self.list_sagas(filter, page).await
            }

            async fn saga_summary(
                &self,
                saga_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::model::SagaSummary>> {
                self.saga_summary(saga_id).await
            }

            async fn count_sagas(
                &self,
                filter: &$crate::store::SagaFilter,
            ) -> $crate::store::StoreResult<u64> {
                self.count_sagas(filter).await
            }

            async fn health(&self) -> $crate::store::StoreResult<$crate::store::Health> {
                self.health().await
            }

            async fn try_lock(
                &self,
                name: &str,
                owner: &str,
                ttl: std::time::Duration,
            ) -> $crate::store::StoreResult<$crate::store::LockOutcome> {
                self.try_lock(name, owner, ttl).await
            }

            async fn unlock(&self, name: &str, owner: &str) -> $crate::store::StoreResult<()> {
                self.unlock(name, owner).await
            }
        }
    };
}
pub(super) use impl_sql_store;
