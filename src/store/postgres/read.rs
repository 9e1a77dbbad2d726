//! Reads: how a PostgreSQL row's typed columns read, the values bound to
//! statements built at run time, the pieces of statement the operations
//! shared with SQLite (`store::sql`) take from this store, and the batched
//! lookup of each saga's newest snapshot at a step.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Column, Row, TypeInfo};
use uuid::Uuid;

use super::super::rows::TimeColumn;
use super::super::sql::{
    snapshot_listing, snapshot_rows, sql, sql_store_run, Args, Bind, Dialect, SqlRow, SqlStore,
};
use std::time::Duration;

use super::schema::{check_text, uuid_for_read};
use super::*;

impl SqlRow for PgRow {
    const DIALECT: Dialect = Dialect::Postgres;

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
}

pub(super) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Collects `$n` placeholders and their values.
pub(super) type Params = Args;

impl Params {
    /// `text` with every value bound.
    pub(super) fn query(self, text: String) -> PgQuery<'static> {
        self.into_values()
            .into_iter()
            .fold(sqlx::query(sql(text)), |q, b| match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
                Bind::Null => q.bind(None::<String>),
                Bind::Uuid(u) => q.bind(u),
                Bind::Time(t) => q.bind(t),
                Bind::TextList(v) => q.bind(v),
                Bind::UuidList(v) => q.bind(v),
            })
    }
}

impl PostgresStore {
    /// A new, empty [`Params`].
    pub(super) fn params() -> Params {
        Args::new(true)
    }

    /// `text` with every value bound.
    pub(super) fn query(text: String, args: Params) -> PgQuery<'static> {
        args.query(text)
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
        let mut p = Self::params();
        let rows = format!(
            "(SELECT DISTINCT ON (saga_id) * FROM saga_snapshots \
             WHERE saga_id = ANY({}) AND step_name = {} \
             ORDER BY saga_id, created_at DESC, snapshot_id DESC) AS s",
            p.push(Bind::UuidList(ids)),
            p.push(Bind::Text(step.to_string()))
        );
        let text = format!(
            "SELECT {} FROM {} ORDER BY saga_id",
            self.snap_cols(),
            self.snapshot_source(&rows)
        );
        Ok(snapshot_listing(snapshot_rows(self, text, p).await?))
    }
}

impl SqlStore for PostgresStore {
    type Row = PgRow;

    /// Only a UUID can be in sagaz's id columns.
    fn id_arg(id: &str) -> Option<Bind> {
        uuid_for_read(id).map(Bind::Uuid)
    }

    fn time_arg(t: Timestamp) -> Bind {
        Bind::Time(t.as_datetime())
    }

    fn snapshot_cols(&self) -> &str {
        self.snap_cols()
    }

    fn snapshot_table(&self) -> &str {
        self.snap_table()
    }

    fn replay_from(&self) -> &str {
        self.replay_cols()
    }

    fn after_cond(args: &mut Params, cmp: &str, c: &SnapshotCursor) -> String {
        let t = args.push(Bind::Time(c.created_at.as_datetime()));
        match uuid_for_read(&c.snapshot_id) {
            Some(u) => {
                let i = args.push(Bind::Uuid(u));
                format!("(created_at, snapshot_id) {cmp} ({t}, {i})")
            }
            // Not a UUID, so not an id this table holds: compare by time only.
            None => format!("created_at {cmp} {t}"),
        }
    }

    /// JSONB to text costs the server ~5 µs per 1 KB context: pick the rows
    /// first, convert only those (a plan that sorts would convert every row
    /// of the saga before the LIMIT).
    /// The extra fields are joined to the rows picked, after the limit.
    fn snapshots_sql(&self, conds: &str, dir: &str, limit: &str) -> String {
        let rows = format!(
            "(SELECT * FROM saga_snapshots WHERE {conds} \
             ORDER BY created_at {dir}, snapshot_id {dir} {limit}) AS s"
        );
        format!(
            "SELECT {} FROM {} ORDER BY created_at {dir}, snapshot_id {dir}",
            self.snap_cols(),
            self.snapshot_source(&rows)
        )
    }

    /// The server's clock decides expiry, so machines with skewed clocks
    /// agree.
    fn take_lock(
        name: &str,
        owner: &str,
        ttl: Duration,
        _now: Timestamp,
    ) -> StoreResult<(String, Params)> {
        check_text("lock name", name, None)?;
        check_text("lock owner", owner, None)?;
        let ttl_us = ttl.as_micros().min(i64::MAX as u128) as i64;
        let mut p = Self::params();
        let text = format!(
            "INSERT INTO sagascope_locks (name, owner, expires_at) \
             VALUES ({}, {}, clock_timestamp() + {} * interval '1 microsecond') \
             ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
             WHERE sagascope_locks.expires_at < clock_timestamp() OR sagascope_locks.owner = EXCLUDED.owner",
            p.push(Bind::Text(name.to_string())),
            p.push(Bind::Text(owner.to_string())),
            p.push(Bind::Int(ttl_us))
        );
        Ok((text, p))
    }

    fn lock_expiry_column() -> &'static str {
        "expires_at"
    }

    fn lock_until(row: &PgRow, _now: Timestamp) -> Result<Timestamp, sqlx::Error> {
        row.try_get::<DateTime<Utc>, _>(1)
            .map(Timestamp::from_datetime)
    }

    sql_store_run!();
}
