//! Reads: single snapshots, a saga's snapshots in pages, time travel, and
//! the replay log; how an SQLite row's text columns read, and the values
//! bound to statements built at run time.

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::Row;

use super::super::rows::TimeColumn;
use super::super::sql::{
    first_snapshot, one_replay, order_words, replay_listing, snapshot_from_row, snapshot_listing,
    sql, sql_int, SqlRow,
};
use super::conn::db_err;
use super::*;

/// Ids, times and JSON are all text here.
impl SqlRow for SqliteRow {
    const TYPED: bool = false;

    fn id(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }

    fn time(&self, i: usize) -> Result<Option<TimeColumn>, sqlx::Error> {
        Ok(self.opt_text(i)?.map(TimeColumn::Text))
    }

    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get(i)
    }

    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }
}

/// JSON text for a TEXT column: compact, UTF-8, key order kept.
pub(super) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    super::super::sql::json_text(v, "null")
}

/// A bind value for queries built at run time.
#[derive(Clone)]
pub(super) enum Bind {
    Text(String),
    Int(i64),
    Null,
}

pub(super) type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>;

impl Bind {
    /// A statement with `binds` bound in order.
    pub(super) fn bind_all(text: String, binds: Vec<Bind>) -> SqliteQuery<'static> {
        binds
            .into_iter()
            .fold(sqlx::query(sql(text)), |q, b| match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
                Bind::Null => q.bind(None::<String>),
            })
    }

    pub(super) fn opt_text(s: Option<String>) -> Self {
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

impl SqliteStore {
    /// The rows a query selects, each decoded or named as bad, in order.
    pub(super) async fn fetch_rows(
        &self,
        query: String,
        binds: Vec<Bind>,
    ) -> StoreResult<Vec<Result<Snapshot, BadEntry>>> {
        let rows = Bind::bind_all(query, binds)
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(snapshot_from_row).collect())
    }

    pub(super) async fn fetch_snapshots(
        &self,
        query: String,
        binds: Vec<Bind>,
    ) -> StoreResult<Listing<Snapshot>> {
        Ok(snapshot_listing(self.fetch_rows(query, binds).await?))
    }

    pub(super) async fn fetch_one_snapshot(
        &self,
        query: String,
        binds: Vec<Bind>,
    ) -> StoreResult<Option<Snapshot>> {
        first_snapshot(self.fetch_snapshots(query, binds).await?)
    }

    pub(super) async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
        self.fetch_one_snapshot(
            format!(
                "SELECT {} FROM saga_snapshots WHERE snapshot_id = ?",
                self.snap_cols
            ),
            vec![Bind::Text(snapshot_id.into())],
        )
        .await
    }

    pub(super) async fn latest_snapshot(
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

    pub(super) async fn snapshot_at(
        &self,
        saga_id: &str,
        at: Timestamp,
    ) -> StoreResult<Option<Snapshot>> {
        self.fetch_one_snapshot(
            format!(
                "SELECT {} FROM saga_snapshots WHERE saga_id = ? AND created_at <= ? ORDER BY created_at DESC, snapshot_id DESC LIMIT 1",
                self.snap_cols
            ),
            vec![Bind::Text(saga_id.into()), Bind::Text(at.to_isoformat())],
        )
        .await
    }

    pub(super) async fn list_snapshots(
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
        let (cmp, dir) = order_words(q.order);
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
            b.push(Bind::Int(sql_int(rows)));
            b.push(Bind::Int(sql_int(offset)));
            (format!("{text} LIMIT ? OFFSET ?"), b)
        };
        page_in_order(
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

    pub(super) async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM saga_snapshots WHERE saga_id = ?")
            .bind(saga_id)
            .fetch_one(&mut *self.conn().await?)
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }

    pub(super) async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
        let row = sqlx::query(sql(format!(
            "SELECT {} FROM saga_replay_log WHERE replay_id = ?",
            self.replay_cols()
        )))
        .bind(replay_id)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        one_replay(row)
    }

    pub(super) async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let rows = sqlx::query(sql(format!(
            "SELECT {} FROM saga_replay_log WHERE original_saga_id = ? ORDER BY created_at DESC, replay_id DESC LIMIT ?",
            self.replay_cols()
        )))
        .bind(original_saga_id)
        .bind(limit.map_or(-1, sql_int))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        Ok(replay_listing(&rows))
    }

    pub(super) async fn replay_producing(
        &self,
        new_saga_id: &str,
    ) -> StoreResult<Option<ReplayLog>> {
        let row = sqlx::query(sql(format!(
            "SELECT {} FROM saga_replay_log WHERE new_saga_id = ? ORDER BY created_at DESC LIMIT 1",
            self.replay_cols()
        )))
        .bind(new_saga_id)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(db_err)?;
        one_replay(row)
    }
}
