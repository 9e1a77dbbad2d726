//! Reads: single snapshots, a saga's snapshots in pages, time travel, and
//! the replay log; how a PostgreSQL row's typed columns read, and the
//! values bound to statements built at run time.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Column, Row, TypeInfo};
use uuid::Uuid;

use super::super::rows::TimeColumn;
use super::super::sql::{
    first_snapshot, one_replay, order_words, replay_listing, snapshot_from_row, snapshot_listing,
    sql, sql_int, SqlRow,
};
use super::schema::{uuid_for_read, SNAP_COLS};
use super::*;

impl SqlRow for PgRow {
    const TYPED: bool = true;

    fn id(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get::<Uuid, _>(i).map(|u| u.to_string())
    }

    fn time(&self, i: usize) -> Result<Option<TimeColumn>, sqlx::Error> {
        let t = self.try_get::<Option<DateTime<Utc>>, _>(i)?;
        Ok(t.map(|t| TimeColumn::Time(Timestamp::from_datetime(t))))
    }

    /// `INTEGER` columns (sagaz's `step_index`) and `BIGINT` ones (counts).
    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        let is_int4 = self
            .columns()
            .get(i)
            .is_some_and(|c| c.type_info().name() == "INT4");
        if is_int4 {
            self.try_get::<i32, _>(i).map(i64::from)
        } else {
            self.try_get::<i64, _>(i)
        }
    }

    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }
}

/// Bind values for statements built at run time.
#[derive(Clone)]
pub(super) enum Bind {
    Text(String),
    TextList(Vec<String>),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Int(i64),
}

pub(super) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Collects `$n` placeholders and their values.
#[derive(Default, Clone)]
pub(super) struct Params(Vec<Bind>);

impl Params {
    /// Adds a value; returns its placeholder.
    pub(super) fn push(&mut self, b: Bind) -> String {
        self.0.push(b);
        format!("${}", self.0.len())
    }

    /// How many values so far.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The statement with every value bound.
    pub(super) fn query(self, text: String) -> PgQuery<'static> {
        self.0
            .into_iter()
            .fold(sqlx::query(sql(text)), |q, b| match b {
                Bind::Text(s) => q.bind(s),
                Bind::TextList(v) => q.bind(v),
                Bind::Uuid(u) => q.bind(u),
                Bind::Time(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            })
    }
}

impl PostgresStore {
    /// The rows a query selects, each decoded or named as bad, in order.
    async fn fetch_rows(&self, q: PgQuery<'_>) -> StoreResult<Vec<Result<Snapshot, BadEntry>>> {
        let rows = q
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(par_map(&rows, snapshot_from_row))
    }

    async fn fetch_snapshots(&self, q: PgQuery<'_>) -> StoreResult<Listing<Snapshot>> {
        Ok(snapshot_listing(self.fetch_rows(q).await?))
    }

    async fn fetch_one_snapshot(&self, q: PgQuery<'_>) -> StoreResult<Option<Snapshot>> {
        first_snapshot(self.fetch_snapshots(q).await?)
    }

    pub(super) async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
        let Some(id) = uuid_for_read(snapshot_id) else {
            return Ok(None);
        };
        self.fetch_one_snapshot(
            sqlx::query(sql(format!(
                "SELECT {SNAP_COLS} FROM saga_snapshots WHERE snapshot_id = $1"
            )))
            .bind(id),
        )
        .await
    }

    pub(super) async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(None);
        };
        let q = match step {
            Some(st) => sqlx::query(sql(format!(
                "SELECT {SNAP_COLS} FROM saga_snapshots WHERE saga_id = $1 AND step_name = $2 \
                 ORDER BY created_at DESC, snapshot_id DESC LIMIT 1"
            )))
            .bind(id)
            .bind(st.to_string()),
            None => sqlx::query(sql(format!(
                "SELECT {SNAP_COLS} FROM saga_snapshots WHERE saga_id = $1 ORDER BY created_at DESC, snapshot_id DESC LIMIT 1"
            )))
            .bind(id),
        };
        self.fetch_one_snapshot(q).await
    }

    pub(super) async fn snapshot_at(
        &self,
        saga_id: &str,
        at: Timestamp,
    ) -> StoreResult<Option<Snapshot>> {
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(None);
        };
        self.fetch_one_snapshot(
            sqlx::query(sql(format!(
                "SELECT {SNAP_COLS} FROM saga_snapshots WHERE saga_id = $1 AND created_at <= $2 \
                 ORDER BY created_at DESC, snapshot_id DESC LIMIT 1"
            )))
            .bind(id)
            .bind(at.as_datetime()),
        )
        .await
    }

    pub(super) async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(Listing::default());
        };
        let mut p = Params::default();
        let mut conds = vec![format!("saga_id = {}", p.push(Bind::Uuid(id)))];
        if let Some(t) = q.since {
            conds.push(format!(
                "created_at >= {}",
                p.push(Bind::Time(t.as_datetime()))
            ));
        }
        if let Some(t) = q.until {
            conds.push(format!(
                "created_at <= {}",
                p.push(Bind::Time(t.as_datetime()))
            ));
        }
        let (cmp, dir) = order_words(q.order);
        if let Some(c) = &q.after {
            let t = p.push(Bind::Time(c.created_at.as_datetime()));
            match uuid_for_read(&c.snapshot_id) {
                Some(u) => {
                    let i = p.push(Bind::Uuid(u));
                    conds.push(format!("(created_at, snapshot_id) {cmp} ({t}, {i})"));
                }
                // Not a UUID, so not an id this table holds: compare by time only.
                None => conds.push(format!("created_at {cmp} {t}")),
            }
        }
        // JSONB to text costs the server ~5 µs per 1 KB context: pick the
        // rows first, convert only those (a plan that sorts would convert
        // every row of the saga before the LIMIT).
        let text = |limit: String| {
            format!(
                "SELECT {SNAP_COLS} FROM (SELECT * FROM saga_snapshots WHERE {} \
                 ORDER BY created_at {dir}, snapshot_id {dir} {limit}) AS s \
                 ORDER BY created_at {dir}, snapshot_id {dir}",
                conds.join(" AND ")
            )
        };
        let Some(limit) = q.limit else {
            let t = text(String::new());
            return self.fetch_snapshots(p.query(t)).await;
        };
        page_in_order(
            limit,
            |_| true,
            |rows, offset| {
                let mut p = p.clone();
                let l = format!(
                    "LIMIT {} OFFSET {}",
                    p.push(Bind::Int(sql_int(rows))),
                    p.push(Bind::Int(sql_int(offset)))
                );
                let t = text(l);
                async move {
                    Ok(self
                        .fetch_rows(p.query(t))
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
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(0);
        };
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM saga_snapshots WHERE saga_id = $1")
            .bind(id)
            .fetch_one(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(n.max(0) as u64)
    }

    pub(super) async fn latest_snapshots_for_step(
        &self,
        saga_ids: &[String],
        step: &str,
    ) -> StoreResult<Listing<Snapshot>> {
        // One statement for the whole batch; the (saga_id, step_name,
        // created_at) unique index serves it.
        let ids: Vec<Uuid> = saga_ids.iter().filter_map(|s| uuid_for_read(s)).collect();
        if ids.is_empty() {
            return Ok(Listing::default());
        }
        self.fetch_snapshots(
            sqlx::query(sql(format!(
                "SELECT {SNAP_COLS} FROM (SELECT DISTINCT ON (saga_id) * FROM saga_snapshots \
                 WHERE saga_id = ANY($1) AND step_name = $2 \
                 ORDER BY saga_id, created_at DESC, snapshot_id DESC) AS s ORDER BY saga_id"
            )))
            .bind(ids)
            .bind(step.to_string()),
        )
        .await
    }

    pub(super) async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
        let Some(id) = uuid_for_read(replay_id) else {
            return Ok(None);
        };
        let row = sqlx::query(sql(format!(
            "SELECT {} WHERE r.replay_id = $1",
            self.replay_cols()
        )))
        .bind(id)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        one_replay(row)
    }

    pub(super) async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let Some(id) = uuid_for_read(original_saga_id) else {
            return Ok(Listing::default());
        };
        let rows = sqlx::query(sql(format!(
            "SELECT {} WHERE r.original_saga_id = $1 ORDER BY r.created_at DESC, r.replay_id DESC LIMIT $2",
            self.replay_cols()
        )))
        .bind(id)
        .bind(limit.map(sql_int))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        Ok(replay_listing(&rows))
    }

    pub(super) async fn replay_producing(
        &self,
        new_saga_id: &str,
    ) -> StoreResult<Option<ReplayLog>> {
        let Some(id) = uuid_for_read(new_saga_id) else {
            return Ok(None);
        };
        let row = sqlx::query(sql(format!(
            "SELECT {} WHERE r.new_saga_id = $1 ORDER BY r.created_at DESC LIMIT 1",
            self.replay_cols()
        )))
        .bind(id)
        .fetch_optional(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        one_replay(row)
    }
}
