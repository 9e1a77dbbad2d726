//! What the two SQL backends (SQLite, PostgreSQL) share: statement text
//! built at run time and its bound values, how a row of `saga_snapshots`,
//! `saga_replay_log` or a saga list becomes a value, the operations both
//! answer alike (reads by id, a saga's snapshots in pages, deletes, the
//! replay log's reads, unlocking), and their `SnapshotStore` impl.
//!
//! The backends differ in how a column is typed — SQLite keeps ids and
//! times as text, PostgreSQL as `UUID` and `TIMESTAMPTZ` — and [`SqlRow`]
//! says how each reads those; [`SqlStore`] says how each binds an id or a
//! time and the few pieces of statement that differ. Everything else about
//! those rows and operations is decided here, once for both.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::rows::{snapshot_from_columns, SnapshotColumns, TimeColumn};
use super::{
    page_in_order, par_map, BadEntry, Capabilities, Health, Listing, LockOutcome, SnapshotCursor,
    SnapshotQuery, StoreError, StoreResult,
};
use crate::model::{ReplayLog, ReplayStatus, SagaStatus, SagaSummary, Snapshot, Timestamp};

mod meta;
mod store_impl;
pub(super) use meta::{delete_meta, get_meta, insert_meta, list_meta, put_meta};
pub(super) use store_impl::impl_sql_store;

/// Statement text built at run time from sagascope's own pieces (column
/// lists, placeholders, table names it checked); values are always bound.
pub(super) fn sql(s: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(s)
}

/// A driver error as the store's backend error.
pub(super) fn driver_err(backend: &'static str, e: sqlx::Error) -> StoreError {
    StoreError::backend(backend, e)
}

/// Which SQL backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub(super) fn backend(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Columns are typed (PostgreSQL): ids are UUIDs, times `timestamptz`,
    /// JSON goes through the codec, and an id the driver can't read is
    /// reported as unreadable. Otherwise (SQLite) every such column is text.
    fn typed(self) -> bool {
        self == Dialect::Postgres
    }

    /// Placeholders are numbered (`$n`, PostgreSQL) rather than `?`.
    fn numbered(self) -> bool {
        self == Dialect::Postgres
    }

    /// Text columns hold the NUL character (SQLite; PostgreSQL's refuse it).
    fn text_holds_nul(self) -> bool {
        self == Dialect::Sqlite
    }
}

/// A row of one SQL backend: the reads whose column types differ.
pub(super) trait SqlRow: Row + TextCells {
    const DIALECT: Dialect;

    /// An id column, as text.
    fn id(&self, i: usize) -> Result<String, sqlx::Error>;

    /// A time column; `None` when NULL.
    fn time(&self, i: usize) -> Result<Option<TimeColumn>, sqlx::Error>;

    /// An integer column, widened.
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
}

/// Text columns, read the same way from any sqlx row.
pub(super) trait TextCells {
    /// A text column that may not be NULL.
    fn text(&self, i: usize) -> Result<String, sqlx::Error>;

    /// A text column that may be NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error>;
}

impl<R> TextCells for R
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, i: usize) -> Result<String, sqlx::Error> {
        self.try_get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(i)
    }
}

/// JSON text from a column, parsed as the backend always has.
fn parse_json<R: SqlRow>(text: &str) -> Result<Value, String> {
    if R::DIALECT.typed() {
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
    let saga_id = if R::DIALECT.typed() {
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
    let new_saga = if R::DIALECT.typed() {
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
    let original_saga_id = if R::DIALECT.typed() {
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
        let t = if R::DIALECT.typed() {
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

/// A value bound to a statement built at run time. SQLite has no UUID,
/// time or array type: there a UUID binds as its text, a time as sagaz's
/// ISO text and a list as its JSON array text.
#[derive(Clone, Debug)]
// Without PostgreSQL only the SQLite variants are built.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(super) enum Bind {
    Text(String),
    Int(i64),
    Null,
    Uuid(Uuid),
    Time(DateTime<Utc>),
    TextList(Vec<String>),
    UuidList(Vec<Uuid>),
}

impl Bind {
    pub(super) fn opt_text(s: Option<String>) -> Self {
        s.map_or(Bind::Null, Bind::Text)
    }
}

/// Values bound to a statement built at run time, and their placeholders:
/// `$1`, `$2`, … (PostgreSQL) or `?` (SQLite).
#[derive(Clone)]
pub(super) struct Args {
    numbered: bool,
    values: Vec<Bind>,
}

impl Args {
    pub(super) fn new(numbered: bool) -> Self {
        Args {
            numbered,
            values: Vec::new(),
        }
    }

    /// Adds a value; returns its placeholder.
    pub(super) fn push(&mut self, value: Bind) -> String {
        self.values.push(value);
        if self.numbered {
            format!("${}", self.values.len())
        } else {
            "?".into()
        }
    }

    /// How many values so far.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    pub(super) fn into_values(self) -> Vec<Bind> {
        self.values
    }
}

/// A SQL store, as far as the operations both answer alike need: how its
/// values bind, a few pieces of statement, and running a statement. The
/// operations themselves are the functions below.
pub(super) trait SqlStore: Sync {
    type Row: SqlRow + Sync;

    /// An id to look up; `None` when no row can have it (then nothing
    /// matches).
    fn id_arg(id: &str) -> Option<Bind>;
    fn time_arg(t: Timestamp) -> Bind;

    /// The snapshot `SELECT` list, as [`snapshot_from_row`] reads it, over
    /// [`SqlStore::snapshot_table`].
    fn snapshot_cols(&self) -> &str;
    /// What snapshots are selected from: `saga_snapshots`, with whatever
    /// the store joins to it (PostgreSQL's extra fields), its columns
    /// still named without a table.
    fn snapshot_table(&self) -> &str {
        "saga_snapshots"
    }
    /// The replay-log `SELECT` list and `FROM`, the table named `r`, as
    /// [`replay_from_row`] reads it.
    fn replay_from(&self) -> &str;
    /// "After cursor `c`" in a saga's snapshot order (`cmp` is `>` or `<`),
    /// its values pushed on `args`.
    fn after_cond(args: &mut Args, cmp: &str, c: &SnapshotCursor) -> String;
    /// A saga's snapshots that pass `conds`, sorted `dir`, with `limit`
    /// (a `LIMIT … OFFSET …` clause, or empty).
    fn snapshots_sql(&self, conds: &str, dir: &str, limit: &str) -> String;

    /// The statement that takes lock `name` for `owner` for `ttl` (from
    /// `now`, when the store keeps the clock) unless another owner holds it
    /// unexpired, with its values: it changes a row when it took the lock.
    fn take_lock(
        name: &str,
        owner: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> StoreResult<(String, Args)>;
    /// The column of `sagascope_locks` that says when a lock lapses.
    fn lock_expiry_column() -> &'static str;
    /// When a held lock lapses, from column 1 of its row.
    fn lock_until(row: &Self::Row, now: Timestamp) -> Result<Timestamp, sqlx::Error>;

    /// How long `SELECT 1` took; the outer error is about getting a
    /// connection, the inner one the statement's.
    fn ping(&self) -> impl Future<Output = StoreResult<Result<Duration, sqlx::Error>>> + Send;
    /// The rows a statement selects.
    fn fetch_all(
        &self,
        text: String,
        args: Args,
    ) -> impl Future<Output = StoreResult<Vec<Self::Row>>> + Send;
    /// How many rows a statement changed.
    fn execute(&self, text: String, args: Args) -> impl Future<Output = StoreResult<u64>> + Send;
}

/// [`SqlStore::ping`], [`SqlStore::fetch_all`] and [`SqlStore::execute`], the same text for
/// each store (generic code over sqlx's databases would need bounds on
/// every caller): `Self::query(text, args)` binds, `self.conn()` lends a
/// connection, `self.lost(e)` reports a driver error.
macro_rules! sql_store_run {
    () => {
        async fn ping(
            &self,
        ) -> $crate::store::StoreResult<Result<std::time::Duration, sqlx::Error>> {
            let start = std::time::Instant::now();
            let mut conn = self.conn().await?;
            let done = sqlx::query("SELECT 1").execute(&mut *conn).await;
            Ok(done.map(|_| start.elapsed()))
        }

        async fn fetch_all(
            &self,
            text: String,
            args: $crate::store::sql::Args,
        ) -> $crate::store::StoreResult<Vec<Self::Row>> {
            Self::query(text, args)
                .fetch_all(&mut *self.conn().await?)
                .await
                .map_err(|e| self.lost(e))
        }

        async fn execute(
            &self,
            text: String,
            args: $crate::store::sql::Args,
        ) -> $crate::store::StoreResult<u64> {
            Self::query(text, args)
                .execute(&mut *self.conn().await?)
                .await
                .map(|r| r.rows_affected())
                .map_err(|e| self.lost(e))
        }
    };
}
pub(super) use sql_store_run;

fn dialect<S: SqlStore>() -> Dialect {
    <S::Row as SqlRow>::DIALECT
}

fn args<S: SqlStore>() -> Args {
    Args::new(dialect::<S>().numbered())
}

/// The snapshots a statement selects, each decoded or named as bad, in order.
pub(super) async fn snapshot_rows<S: SqlStore>(
    s: &S,
    text: String,
    args: Args,
) -> StoreResult<Vec<Result<Snapshot, BadEntry>>> {
    let rows = s.fetch_all(text, args).await?;
    Ok(par_map(&rows, snapshot_from_row))
}

pub(super) async fn get_snapshot<S: SqlStore>(
    s: &S,
    snapshot_id: &str,
) -> StoreResult<Option<Snapshot>> {
    let Some(id) = S::id_arg(snapshot_id) else {
        return Ok(None);
    };
    let mut a = args::<S>();
    let text = format!(
        "SELECT {} FROM {} WHERE snapshot_id = {}",
        s.snapshot_cols(),
        s.snapshot_table(),
        a.push(id)
    );
    first_snapshot(snapshot_listing(snapshot_rows(s, text, a).await?))
}

/// The newest snapshot of a saga that passes `cond` (over `saga_snapshots`'s
/// columns).
async fn newest_where<S: SqlStore>(s: &S, cond: &str, a: Args) -> StoreResult<Option<Snapshot>> {
    let text = format!(
        "SELECT {} FROM {} WHERE {cond} ORDER BY created_at DESC, snapshot_id DESC LIMIT 1",
        s.snapshot_cols(),
        s.snapshot_table()
    );
    first_snapshot(snapshot_listing(snapshot_rows(s, text, a).await?))
}

pub(super) async fn latest_snapshot<S: SqlStore>(
    s: &S,
    saga_id: &str,
    step: Option<&str>,
) -> StoreResult<Option<Snapshot>> {
    let Some(id) = S::id_arg(saga_id) else {
        return Ok(None);
    };
    let mut a = args::<S>();
    let mut cond = format!("saga_id = {}", a.push(id));
    if let Some(st) = step {
        cond = format!(
            "{cond} AND step_name = {}",
            a.push(Bind::Text(st.to_string()))
        );
    }
    newest_where(s, &cond, a).await
}

pub(super) async fn snapshot_at<S: SqlStore>(
    s: &S,
    saga_id: &str,
    at: Timestamp,
) -> StoreResult<Option<Snapshot>> {
    let Some(id) = S::id_arg(saga_id) else {
        return Ok(None);
    };
    let mut a = args::<S>();
    let cond = format!(
        "saga_id = {} AND created_at <= {}",
        a.push(id),
        a.push(S::time_arg(at))
    );
    newest_where(s, &cond, a).await
}

pub(super) async fn list_snapshots<S: SqlStore>(
    s: &S,
    saga_id: &str,
    q: &SnapshotQuery,
) -> StoreResult<Listing<Snapshot>> {
    let Some(id) = S::id_arg(saga_id) else {
        return Ok(Listing::default());
    };
    let mut a = args::<S>();
    let mut conds = vec![format!("saga_id = {}", a.push(id))];
    if let Some(t) = q.since {
        conds.push(format!("created_at >= {}", a.push(S::time_arg(t))));
    }
    if let Some(t) = q.until {
        conds.push(format!("created_at <= {}", a.push(S::time_arg(t))));
    }
    let (cmp, dir) = order_words(q.order);
    if let Some(c) = &q.after {
        conds.push(S::after_cond(&mut a, cmp, c));
    }
    let conds = conds.join(" AND ");
    let Some(limit) = q.limit else {
        let text = s.snapshots_sql(&conds, dir, "");
        return Ok(snapshot_listing(snapshot_rows(s, text, a).await?));
    };
    page_in_order(
        limit,
        |_| true,
        |rows, offset| {
            let mut a = a.clone();
            let l = format!(
                "LIMIT {} OFFSET {}",
                a.push(Bind::Int(sql_int(rows))),
                a.push(Bind::Int(sql_int(offset)))
            );
            let text = s.snapshots_sql(&conds, dir, &l);
            async move {
                let rows = snapshot_rows(s, text, a).await?;
                Ok(rows.into_iter().map(Some).collect())
            }
        },
    )
    .await
}

/// `column IN (…)` over the ids that can exist in this store, their values
/// pushed on `a`; `None` when none can.
fn ids_in<S: SqlStore>(a: &mut Args, column: &str, ids: &[String]) -> Option<String> {
    let binds: Vec<String> = ids
        .iter()
        .filter_map(|id| S::id_arg(id))
        .map(|b| a.push(b))
        .collect();
    (!binds.is_empty()).then(|| format!("{column} IN ({})", binds.join(", ")))
}

/// Every snapshot of these sagas in one statement, in time order (so each
/// saga's own are in order).
pub(super) async fn snapshots_of_sagas<S: SqlStore>(
    s: &S,
    saga_ids: &[String],
) -> StoreResult<Listing<Snapshot>> {
    let mut a = args::<S>();
    let Some(cond) = ids_in::<S>(&mut a, "saga_id", saga_ids) else {
        return Ok(Listing::default());
    };
    let text = s.snapshots_sql(&cond, "ASC", "");
    Ok(snapshot_listing(snapshot_rows(s, text, a).await?))
}

/// The replay logs of these sagas in one statement, newest first.
pub(super) async fn replays_of_sagas<S: SqlStore>(
    s: &S,
    saga_ids: &[String],
) -> StoreResult<Listing<ReplayLog>> {
    let mut a = args::<S>();
    let Some(cond) = ids_in::<S>(&mut a, "r.original_saga_id", saga_ids) else {
        return Ok(Listing::default());
    };
    let text = format!(
        "SELECT {} WHERE {cond} ORDER BY r.created_at DESC, r.replay_id DESC",
        s.replay_from()
    );
    Ok(replay_listing(&s.fetch_all(text, a).await?))
}

pub(super) async fn count_snapshots<S: SqlStore>(s: &S, saga_id: &str) -> StoreResult<u64> {
    let Some(id) = S::id_arg(saga_id) else {
        return Ok(0);
    };
    let mut a = args::<S>();
    let text = format!(
        "SELECT count(*) FROM saga_snapshots WHERE saga_id = {}",
        a.push(id)
    );
    let rows = s.fetch_all(text, a).await?;
    let n = match rows.first() {
        Some(row) => row
            .int(0)
            .map_err(|e| driver_err(dialect::<S>().backend(), e))?,
        None => 0,
    };
    Ok(n.max(0) as u64)
}

/// Deletes the snapshots whose `column` is `id`.
async fn delete_by<S: SqlStore>(s: &S, column: &str, id: &str) -> StoreResult<u64> {
    let Some(id) = S::id_arg(id) else {
        return Ok(0);
    };
    let mut a = args::<S>();
    let text = format!("DELETE FROM saga_snapshots WHERE {column} = {}", a.push(id));
    s.execute(text, a).await
}

pub(super) async fn delete_snapshot<S: SqlStore>(s: &S, snapshot_id: &str) -> StoreResult<bool> {
    Ok(delete_by(s, "snapshot_id", snapshot_id).await? > 0)
}

pub(super) async fn delete_saga<S: SqlStore>(s: &S, saga_id: &str) -> StoreResult<u64> {
    delete_by(s, "saga_id", saga_id).await
}

/// Deletes one replay-log entry, and first its row in `extra_table`
/// (PostgreSQL keeps sagascope's extra fields beside sagaz's table).
pub(super) async fn delete_replay<S: SqlStore>(
    s: &S,
    replay_id: &str,
    extra_table: Option<&str>,
) -> StoreResult<bool> {
    let Some(id) = S::id_arg(replay_id) else {
        return Ok(false);
    };
    if let Some(t) = extra_table {
        let mut a = args::<S>();
        let text = format!("DELETE FROM {t} WHERE replay_id = {}", a.push(id.clone()));
        s.execute(text, a).await?;
    }
    let mut a = args::<S>();
    let text = format!(
        "DELETE FROM saga_replay_log WHERE replay_id = {}",
        a.push(id)
    );
    Ok(s.execute(text, a).await? > 0)
}

/// sagaz's own `delete_expired_snapshots` statement.
pub(super) async fn delete_expired<S: SqlStore>(s: &S, now: Timestamp) -> StoreResult<u64> {
    let mut a = args::<S>();
    let text = format!(
        "DELETE FROM saga_snapshots WHERE retention_until IS NOT NULL AND retention_until < {}",
        a.push(S::time_arg(now))
    );
    s.execute(text, a).await
}

/// The replay-log entry whose `column` is `id` (`tail` orders and limits).
async fn replay_by<S: SqlStore>(
    s: &S,
    column: &str,
    id: &str,
    tail: &str,
) -> StoreResult<Option<ReplayLog>> {
    let Some(id) = S::id_arg(id) else {
        return Ok(None);
    };
    let mut a = args::<S>();
    let text = format!(
        "SELECT {} WHERE {column} = {}{tail}",
        s.replay_from(),
        a.push(id)
    );
    one_replay(s.fetch_all(text, a).await?.into_iter().next())
}

pub(super) async fn get_replay<S: SqlStore>(
    s: &S,
    replay_id: &str,
) -> StoreResult<Option<ReplayLog>> {
    replay_by(s, "r.replay_id", replay_id, "").await
}

pub(super) async fn replay_producing<S: SqlStore>(
    s: &S,
    new_saga_id: &str,
) -> StoreResult<Option<ReplayLog>> {
    replay_by(
        s,
        "r.new_saga_id",
        new_saga_id,
        " ORDER BY r.created_at DESC LIMIT 1",
    )
    .await
}

pub(super) async fn list_replays<S: SqlStore>(
    s: &S,
    original_saga_id: &str,
    limit: Option<usize>,
) -> StoreResult<Listing<ReplayLog>> {
    let Some(id) = S::id_arg(original_saga_id) else {
        return Ok(Listing::default());
    };
    let mut a = args::<S>();
    let mut text = format!(
        "SELECT {} WHERE r.original_saga_id = {} ORDER BY r.created_at DESC, r.replay_id DESC",
        s.replay_from(),
        a.push(id)
    );
    if let Some(n) = limit {
        text = format!("{text} LIMIT {}", a.push(Bind::Int(sql_int(n))));
    }
    Ok(replay_listing(&s.fetch_all(text, a).await?))
}

/// Takes a lock unless another owner holds it unexpired.
pub(super) async fn try_lock<S: SqlStore>(
    s: &S,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> StoreResult<LockOutcome> {
    let err = |e| driver_err(dialect::<S>().backend(), e);
    loop {
        let now = Timestamp::now();
        let (text, a) = S::take_lock(name, owner, ttl, now)?;
        if s.execute(text, a).await? > 0 {
            return Ok(LockOutcome::Acquired);
        }
        let mut a = args::<S>();
        let text = format!(
            "SELECT owner, {} FROM sagascope_locks WHERE name = {}",
            S::lock_expiry_column(),
            a.push(Bind::Text(name.to_string()))
        );
        if let Some(row) = s.fetch_all(text, a).await?.into_iter().next() {
            return Ok(LockOutcome::Held {
                owner: row.text(0).map_err(err)?,
                until: S::lock_until(&row, now).map_err(err)?,
            });
        }
        // Released between the two statements: try once more.
    }
}

pub(super) async fn unlock<S: SqlStore>(s: &S, name: &str, owner: &str) -> StoreResult<()> {
    // No lock can have a name or owner the table cannot hold.
    if !dialect::<S>().text_holds_nul() && (name.contains('\0') || owner.contains('\0')) {
        return Ok(());
    }
    let mut a = args::<S>();
    let text = format!(
        "DELETE FROM sagascope_locks WHERE name = {} AND owner = {}",
        a.push(Bind::Text(name.to_string())),
        a.push(Bind::Text(owner.to_string()))
    );
    s.execute(text, a).await.map(drop)
}

/// What a SQL store keeps. Both index the saga list; `text_json` stores
/// (SQLite) keep JSON as written — key order, NUL characters — where
/// PostgreSQL's JSONB does not.
pub(super) fn capabilities(
    backend: &'static str,
    text_json: bool,
    extra_fields: bool,
    external_refs: bool,
    distributed_locks: bool,
) -> Capabilities {
    Capabilities {
        backend,
        preserves_key_order: text_json,
        preserves_extra_fields: extra_fields,
        stores_external_refs: external_refs,
        stores_nul_in_strings: text_json,
        indexed_saga_list: true,
        distributed_locks,
    }
}

/// A health report of a store that answered in `latency`; the counts and
/// size are the caller's to fill in.
pub(super) fn reachable(backend: &'static str, url: String, latency: Duration) -> Health {
    Health {
        backend,
        url,
        reachable: true,
        latency,
        sagas: None,
        snapshots: None,
        replays: None,
        size_bytes: None,
        notes: Vec::new(),
    }
}
