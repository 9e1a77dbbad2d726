//! `postgres://user@host/db`: sagaz's own PostgreSQL tables.
//!
//! `saga_snapshots` and `saga_replay_log` are used exactly as sagaz 1.5.0
//! makes them (FORMATS.md §3): created with sagaz's DDL when missing, never
//! altered when present, so sagaz keeps reading and writing the same rows.
//! sagascope adds only things sagaz never looks at:
//!
//! - extra indexes (`CREATE INDEX IF NOT EXISTS sagascope_*`) that make the
//!   saga list an index walk: `(created_at, saga_id)` and
//!   `(status, created_at, saga_id)` to find the newest snapshots first, and
//!   `(saga_id, created_at, snapshot_id)` to check in one probe that no newer
//!   snapshot of the same saga exists. A page of `list_sagas` stops after
//!   `limit` sagas, so its cost does not grow with the table;
//! - `sagascope_replay_extra` (`replay_id` → JSONB) for the replay-log fields
//!   sagaz's table has no column for (`reason`, `dry_run`, `merge`, …);
//! - `sagascope_locks` (name, owner, expiry on the server's clock) for replay
//!   locks that hold across machines and lapse when a holder dies.
//!
//! What sagaz's table cannot hold, and so this backend cannot either (see
//! [`Capabilities`]): context key order (JSONB), `external_refs` and unknown
//! snapshot fields (no column), NUL characters (JSONB and TEXT reject them),
//! ids that are not UUIDs, names longer than the `VARCHAR` limits. Each gives
//! a [`StoreError::Unstorable`] naming the value, never a silent loss.
//!
//! Sessions run with `jit = off`. The saga-list queries are short index
//! walks whose best plan depends on the values bound (a rare or common
//! status, a cursor near either end), so they run as unnamed statements,
//! planned for their values each time; lookups by id use cached plans.
//!
//! URL parameters besides libpq's (`sslmode`, `sslrootcert`, `options`, …,
//! as sqlx parses them): `schema=NAME` puts every table in that schema
//! (created if missing; the tests use one schema per test),
//! `pool_max=N` (default 8) and `connect_timeout=SECONDS` (default 5).

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::model::{ReplayLog, ReplayStatus, SagaStatus, SagaSummary, Snapshot, Timestamp};

use super::lend::{Lender, IDLE_BEFORE_PING};
use super::*;

const BACKEND: &str = "postgres";

/// sagaz's DDL, verbatim apart from `IF NOT EXISTS` on the indexes.
const SAGAZ_SCHEMA: &str = r#"
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
const SAGASCOPE_SCHEMA: &str = r#"
CREATE INDEX IF NOT EXISTS sagascope_snapshots_recent ON saga_snapshots(created_at, saga_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_status_recent ON saga_snapshots(status, created_at, saga_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_saga_time ON saga_snapshots(saga_id, created_at, snapshot_id);
CREATE INDEX IF NOT EXISTS sagascope_snapshots_saga_step_time ON saga_snapshots(saga_id, step_name, created_at, snapshot_id);
CREATE INDEX IF NOT EXISTS sagascope_replay_log_new_saga ON saga_replay_log(new_saga_id);
CREATE TABLE IF NOT EXISTS sagascope_replay_extra (
    replay_id UUID PRIMARY KEY,
    extra JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS sagascope_locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#;

const SNAP_COLS: &str = "snapshot_id, saga_id, saga_name, step_name, step_index, status, context::text, completed_steps::text, created_at, retention_until";

/// Rows per statement in batched writes: big enough to amortise the round
/// trip, small enough to keep each transaction short.
const WRITE_CHUNK: usize = 1000;

/// The PostgreSQL store.
pub struct PostgresStore {
    /// The pool, with one connection kept aside for calls made one at a
    /// time (see `store::lend`).
    pool: Lender<sqlx::Postgres>,
    /// Redacted, for display and errors.
    location: String,
    schema: Option<String>,
    has_replay_extra: bool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.location)
            .field("schema", &self.schema)
            .finish()
    }
}

fn db_err(e: sqlx::Error) -> StoreError {
    match server_message(&e) {
        // The server refused (GRANTs, row security): exit 4, not 3.
        Some((code, message)) if code == "42501" => StoreError::PermissionDenied {
            url: "the PostgreSQL server".into(),
            reason: message,
        },
        Some((_, message)) => StoreError::backend(BACKEND, message),
        None => StoreError::backend(BACKEND, e),
    }
}

/// An error the server sent: its SQLSTATE and a one-line message that ends
/// with the server's own words (sqlx's `Display` appends the line of the
/// *server's C source* that raised it — "at line 334" — which tells the
/// user nothing), with the server's detail and hint when it gave them.
fn server_message(e: &sqlx::Error) -> Option<(String, String)> {
    let sqlx::Error::Database(d) = e else {
        return None;
    };
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    let mut message = format!("server error {code}: {}", d.message());
    if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        for extra in [pg.detail(), pg.hint()].into_iter().flatten() {
            message.push_str("; ");
            message.push_str(extra);
        }
    }
    Some((code, message.replace('\n', " ")))
}

fn sql(s: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(s)
}

fn unstorable(what: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Unstorable {
        backend: BACKEND,
        what: what.into(),
        reason: reason.into(),
    }
}

/// A UUID column value. sagaz's columns are `UUID`, and sagascope gives ids
/// back as text; only the canonical lowercase form survives that trip
/// unchanged, so other spellings are refused rather than silently rewritten.
fn uuid_for_write(what: &str, id: &str) -> StoreResult<Uuid> {
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
fn uuid_for_read(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

fn check_text(what: &str, value: &str, max_chars: Option<usize>) -> StoreResult<()> {
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

fn check_json(what: &str, v: &Value) -> StoreResult<()> {
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
struct SnapshotRow {
    snapshot_id: Uuid,
    saga_id: Uuid,
    saga_name: String,
    step_name: String,
    step_index: i32,
    status: String,
    context: String,
    completed_steps: String,
    created_at: DateTime<Utc>,
    retention_until: Option<DateTime<Utc>>,
}

impl SnapshotRow {
    fn from_snapshot(s: &Snapshot) -> StoreResult<Self> {
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
        })
    }
}

/// Splits a `postgres://` URL into what sqlx understands and sagascope's own
/// parameters.
struct ParsedUrl {
    options: PgConnectOptions,
    schema: Option<String>,
    pool_max: u32,
    connect_timeout: Duration,
}

/// The URL checked as [`open`](super::open) would, without connecting.
pub(crate) fn check_url(url: &StoreUrl) -> StoreResult<()> {
    parse_url(url).map(drop)
}

fn parse_url(url: &StoreUrl) -> StoreResult<ParsedUrl> {
    let invalid = |reason: String| StoreError::InvalidUrl {
        url: url.redacted(),
        reason,
    };
    let mut u = ::url::Url::parse(url.expose()).map_err(|e| invalid(e.to_string()))?;
    let mut schema = None;
    let mut pool_max = 8u32;
    let mut connect_timeout = Duration::from_secs(5);
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "schema" => {
                let ok = !v.is_empty()
                    && v.len() <= 63
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !v.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    return Err(invalid(format!(
                        "schema {v:?}: use letters, digits and _ (at most 63, not starting with a digit)"
                    )));
                }
                schema = Some(v.to_ascii_lowercase());
            }
            "pool_max" => {
                pool_max = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid(format!("pool_max {v:?}: expected a positive integer"))
                })?
            }
            "connect_timeout" => {
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| *n > 0.0 && n.is_finite())
                    .ok_or_else(|| invalid(format!("connect_timeout {v:?}: expected seconds")))?;
                connect_timeout = Duration::from_secs_f64(secs);
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    // sqlx only knows the `postgres`/`postgresql` schemes.
    let mut options = PgConnectOptions::from_str(u.as_str()).map_err(|e| invalid(e.to_string()))?;
    if let Some(s) = &schema {
        options = options.options([("search_path", s.as_str())]);
    }
    // The saga-list queries' best plan depends on their values (a status
    // that is rare or common, a cursor near the start or the end): they run
    // as unnamed statements, planned afresh each time. Lookups by id keep
    // PostgreSQL's cached plans (forcing custom plans on every query cost
    // ~0.1 ms of planning per call).
    options = options.options([("jit", "off")]);
    options = options.application_name("sagascope");
    Ok(ParsedUrl {
        options,
        schema,
        pool_max,
        connect_timeout,
    })
}

/// Bind values for statements built at run time.
#[derive(Clone)]
enum Bind {
    Text(String),
    TextList(Vec<String>),
    Uuid(Uuid),
    Time(DateTime<Utc>),
    Int(i64),
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl Bind {
    fn apply(self, q: PgQuery<'_>) -> PgQuery<'_> {
        match self {
            Bind::Text(s) => q.bind(s),
            Bind::TextList(v) => q.bind(v),
            Bind::Uuid(u) => q.bind(u),
            Bind::Time(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        }
    }
}

/// Collects `$n` placeholders and their values.
#[derive(Default, Clone)]
struct Params(Vec<Bind>);

impl Params {
    fn push(&mut self, b: Bind) -> String {
        self.0.push(b);
        format!("${}", self.0.len())
    }

    fn query(self, text: String) -> PgQuery<'static> {
        let mut q = sqlx::query(sql(text));
        for b in self.0 {
            q = b.apply(q);
        }
        q
    }
}

/// LIKE pattern for "starts with", with the wildcards escaped.
fn like_prefix(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 1);
    for c in p.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Newest snapshots per saga that pass `filter`, as a `WHERE` body over
/// `saga_snapshots AS s`. The `NOT EXISTS` probe keeps only each saga's
/// newest row (by `created_at`, ties by `snapshot_id`, as everywhere).
fn newest_per_saga_where(
    filter: &SagaFilter,
    after: Option<&SagaCursor>,
    p: &mut Params,
) -> Option<String> {
    let mut conds: Vec<String> = Vec::new();
    match filter.statuses.len() {
        0 => {}
        1 => conds.push(format!(
            "s.status = {}",
            p.push(Bind::Text(filter.statuses[0].as_str().into()))
        )),
        _ => conds.push(format!(
            "s.status = ANY({})",
            p.push(Bind::TextList(
                filter
                    .statuses
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect()
            ))
        )),
    }
    if let Some(n) = &filter.name {
        conds.push(format!("s.saga_name = {}", p.push(Bind::Text(n.clone()))));
    }
    if let Some(st) = &filter.latest_step {
        conds.push(format!("s.step_name = {}", p.push(Bind::Text(st.clone()))));
    }
    if let Some(t) = filter.since {
        conds.push(format!(
            "s.created_at >= {}",
            p.push(Bind::Time(t.as_datetime()))
        ));
    }
    if let Some(t) = filter.until {
        conds.push(format!(
            "s.created_at <= {}",
            p.push(Bind::Time(t.as_datetime()))
        ));
    }
    if let Some(prefix) = &filter.id_prefix {
        conds.push(format!(
            "s.saga_id::text LIKE {}",
            p.push(Bind::Text(like_prefix(&prefix.to_ascii_lowercase())))
        ));
    }
    if let Some(c) = after {
        // A cursor naming a non-UUID saga cannot come from this store.
        let id = uuid_for_read(&c.saga_id)?;
        let t = p.push(Bind::Time(c.last_at.as_datetime()));
        let i = p.push(Bind::Uuid(id));
        conds.push(format!("(s.created_at, s.saga_id) < ({t}, {i})"));
    }
    conds.push(
        "NOT EXISTS (SELECT 1 FROM saga_snapshots n WHERE n.saga_id = s.saga_id \
         AND (n.created_at, n.snapshot_id) > (s.created_at, s.snapshot_id))"
            .into(),
    );
    Some(conds.join(" AND "))
}

/// The saga-list query (used by `list_sagas`, `saga_summary` and the
/// EXPLAIN test). Returns `None` when nothing can match.
pub fn saga_list_sql(
    filter: &SagaFilter,
    after: Option<&SagaCursor>,
    limit: i64,
) -> Option<(String, usize)> {
    let mut p = Params::default();
    let cond = newest_per_saga_where(filter, after, &mut p)?;
    let lim = p.push(Bind::Int(limit));
    let n = p.0.len();
    Some((saga_list_text(&cond, &lim), n))
}

fn saga_list_text(cond: &str, lim: &str) -> String {
    format!(
        "SELECT p.saga_id, p.saga_name, p.status, p.step_name, p.step_index, c.n, c.first_at, p.created_at \
         FROM (SELECT s.saga_id, s.saga_name, s.status, s.step_name, s.step_index, s.created_at \
               FROM saga_snapshots s WHERE {cond} \
               ORDER BY s.created_at DESC, s.saga_id DESC LIMIT {lim}) p \
         CROSS JOIN LATERAL (SELECT count(*) AS n, min(x.created_at) AS first_at \
               FROM saga_snapshots x WHERE x.saga_id = p.saga_id) c \
         ORDER BY p.created_at DESC, p.saga_id DESC"
    )
}

impl PostgresStore {
    /// Connects, and creates sagaz's tables (and sagascope's) when missing.
    pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Self> {
        let parsed = parse_url(url)?;
        let location = url.redacted();
        let port = parsed.options.get_port();
        let pool = PgPoolOptions::new()
            // sqlx pings a pooled connection before each use by default: a
            // second round trip on every call. Only connections idle for a
            // while (that a server restart or a firewall may have cut) are
            // pinged here; a hot one goes straight to its query.
            .test_before_acquire(false)
            .after_connect(move |_conn, _meta| {
                Box::pin(async move {
                    nodelay::set_on_sockets_to(port);
                    Ok(())
                })
            })
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .max_connections(parsed.pool_max)
            .min_connections(0)
            .acquire_timeout(parsed.connect_timeout)
            .connect_with(parsed.options)
            .await
            .map_err(|e| StoreError::Unreachable {
                url: location.clone(),
                reason: short_reason(&e),
            })?;
        let mut store = PostgresStore {
            pool: Lender::new(pool),
            location,
            schema: parsed.schema,
            has_replay_extra: false,
        };
        store.prepare_schema(opts.readonly).await?;
        Ok(store)
    }

    async fn prepare_schema(&mut self, readonly: bool) -> StoreResult<()> {
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
            sqlx::raw_sql(SAGAZ_SCHEMA)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::raw_sql(SAGASCOPE_SCHEMA)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        }
        let found: (bool, bool) = sqlx::query_as(
            "SELECT to_regclass('saga_snapshots') IS NOT NULL, to_regclass('sagascope_replay_extra') IS NOT NULL",
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
        Ok(())
    }

    /// A connection for one query (see `store::lend`).
    async fn conn(&self) -> StoreResult<super::lend::Lent<'_, sqlx::Postgres>> {
        self.pool.conn().await.map_err(db_err)
    }

    /// `db_err`, noting a broken connection so that it is not used again.
    fn lost(&self, e: sqlx::Error) -> StoreError {
        self.pool.note(&e);
        db_err(e)
    }

    /// The connection pool, for tools that need raw access (tests, benches).
    pub fn pool(&self) -> &PgPool {
        self.pool.pool()
    }

    /// The schema given with `schema=`, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// `EXPLAIN (ANALYZE, FORMAT TEXT)` of the saga-list query for a filter,
    /// to check that browsing walks indexes.
    pub async fn explain_list_sagas(
        &self,
        filter: &SagaFilter,
        limit: usize,
    ) -> StoreResult<String> {
        let mut p = Params::default();
        let Some(cond) = newest_per_saga_where(filter, None, &mut p) else {
            return Ok(String::new());
        };
        let lim = p.push(Bind::Int(limit.min(i64::MAX as usize) as i64));
        let rows = p
            .query(format!(
                "EXPLAIN (ANALYZE, COSTS OFF) {}",
                saga_list_text(&cond, &lim)
            ))
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    fn snapshot_from_row(row: &PgRow) -> Result<Snapshot, BadEntry> {
        use super::rows::{snapshot_from_columns, SnapshotColumns, TimeColumn};
        let key = row
            .try_get::<Uuid, _>(0)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "<unreadable snapshot_id>".into());
        let saga_id: Option<String> = row.try_get::<Uuid, _>(1).ok().map(|u| u.to_string());
        let bad = |e: String| BadEntry {
            key: format!("saga_snapshots/{key}"),
            saga_id: saga_id.clone(),
            error: e,
        };
        let text = |i: usize, name: &str| -> Result<String, BadEntry> {
            row.try_get::<String, _>(i)
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let time = |i: usize, name: &str| -> Result<Option<TimeColumn>, BadEntry> {
            row.try_get::<Option<DateTime<Utc>>, _>(i)
                .map(|t| t.map(|t| TimeColumn::Time(Timestamp::from_datetime(t))))
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let step_index: i32 = row
            .try_get(4)
            .map_err(|e| bad(format!("column `step_index`: {e}")))?;
        snapshot_from_columns(SnapshotColumns {
            saga_name: text(2, "saga_name")?,
            step_name: text(3, "step_name")?,
            step_index: step_index.into(),
            status: text(5, "status")?,
            context: text(6, "context")?,
            completed_steps: text(7, "completed_steps")?,
            created_at: time(8, "created_at")?,
            retention_until: time(9, "retention_until")?,
            // sagaz's table has neither column.
            external_refs: None,
            extra: None,
            snapshot_id: key.clone(),
            saga_id: saga_id.clone(),
        })
    }

    fn replay_cols(&self) -> &'static str {
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

    fn replay_from_row(row: &PgRow) -> Result<ReplayLog, BadEntry> {
        let key = row
            .try_get::<Uuid, _>(0)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| "<unreadable replay_id>".into());
        let original: Option<String> = row.try_get::<Uuid, _>(1).ok().map(|u| u.to_string());
        let bad = |e: String| BadEntry {
            key: format!("saga_replay_log/{key}"),
            saga_id: original.clone(),
            error: e,
        };
        let text = |i: usize, name: &str| -> Result<Option<String>, BadEntry> {
            row.try_get::<Option<String>, _>(i)
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let req = |i: usize, name: &str| -> Result<String, BadEntry> {
            text(i, name)?.ok_or_else(|| bad(format!("column `{name}` is NULL")))
        };
        let json = |i: usize, name: &str| -> Result<Option<Value>, BadEntry> {
            text(i, name)?
                .map(|t| {
                    codec::Codec::default()
                        .parse_json(t.as_bytes())
                        .map_err(|e| bad(format!("column `{name}`: {e}")))
                })
                .transpose()
        };
        let time = |i: usize, name: &str| -> Result<Option<Timestamp>, BadEntry> {
            row.try_get::<Option<DateTime<Utc>>, _>(i)
                .map(|t| t.map(Timestamp::from_datetime))
                .map_err(|e| bad(format!("column `{name}`: {e}")))
        };
        let new_saga: Uuid = row
            .try_get(2)
            .map_err(|e| bad(format!("column `new_saga_id`: {e}")))?;
        let extra = match json(10, "extra")? {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad("column `extra`: expected a JSON object".into())),
        };
        Ok(ReplayLog {
            replay_id: key.clone(),
            original_saga_id: original
                .clone()
                .ok_or_else(|| bad("column `original_saga_id` is unreadable".into()))?,
            new_saga_id: new_saga.to_string(),
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

    /// Checks a replay-log entry against what sagaz's table can hold;
    /// returns its replay, original and new saga ids.
    fn check_replay(&self, log: &ReplayLog) -> StoreResult<(Uuid, Uuid, Uuid)> {
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

    /// The rows a query selects, each decoded or named as bad, in order.
    async fn fetch_rows(&self, q: PgQuery<'_>) -> StoreResult<Vec<Result<Snapshot, BadEntry>>> {
        let rows = q
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(par_map(&rows, Self::snapshot_from_row))
    }

    async fn fetch_snapshots(&self, q: PgQuery<'_>) -> StoreResult<Listing<Snapshot>> {
        let mut out = Listing::default();
        for r in self.fetch_rows(q).await? {
            match r {
                Ok(s) => out.items.push(s),
                Err(b) => out.push_bad(b),
            }
        }
        Ok(out)
    }

    async fn fetch_one_snapshot(&self, q: PgQuery<'_>) -> StoreResult<Option<Snapshot>> {
        let listing = self.fetch_snapshots(q).await?;
        if let Some(b) = listing.bad.into_iter().next() {
            return Err(StoreError::Corrupt { entry: b });
        }
        Ok(listing.items.into_iter().next())
    }

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
        sqlx::query(
            "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, context, \
             completed_steps, created_at, retention_until) \
             SELECT t.snapshot_id, t.saga_id, t.saga_name, t.step_name, t.step_index, t.status, t.context::jsonb, \
             t.completed_steps::jsonb, t.created_at, t.retention_until \
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[], \
             $8::text[], $9::timestamptz[], $10::timestamptz[]) \
             AS t(snapshot_id, saga_id, saga_name, step_name, step_index, status, context, completed_steps, \
             created_at, retention_until) \
             ON CONFLICT (snapshot_id) DO UPDATE SET saga_id = EXCLUDED.saga_id, saga_name = EXCLUDED.saga_name, \
             step_name = EXCLUDED.step_name, step_index = EXCLUDED.step_index, status = EXCLUDED.status, \
             context = EXCLUDED.context, completed_steps = EXCLUDED.completed_steps, \
             created_at = EXCLUDED.created_at, retention_until = EXCLUDED.retention_until",
        )
        .bind(&ids)
        .bind(&sagas)
        .bind(&names)
        .bind(&steps)
        .bind(&indexes)
        .bind(&statuses)
        .bind(&contexts)
        .bind(&completed)
        .bind(&created)
        .bind(&retention)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
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

    fn summary_from_row(row: &PgRow) -> Result<SagaSummary, BadEntry> {
        let saga_id = row
            .try_get::<Uuid, _>(0)
            .map(|u| u.to_string())
            .unwrap_or_default();
        let bad = |e: String| BadEntry {
            key: format!("saga_snapshots/saga:{saga_id}"),
            saga_id: Some(saga_id.clone()),
            error: e,
        };
        let text = |i: usize| row.try_get::<String, _>(i).map_err(|e| bad(e.to_string()));
        let time = |i: usize| -> Result<Timestamp, BadEntry> {
            row.try_get::<Option<DateTime<Utc>>, _>(i)
                .map_err(|e| bad(e.to_string()))?
                .map(Timestamp::from_datetime)
                .ok_or_else(|| bad("created_at is NULL".into()))
        };
        Ok(SagaSummary {
            saga_id: saga_id.clone(),
            saga_name: text(1)?,
            latest_status: SagaStatus::parse(&text(2)?),
            latest_step: text(3)?,
            latest_step_index: row
                .try_get::<i32, _>(4)
                .map_err(|e| bad(e.to_string()))?
                .into(),
            snapshot_count: row
                .try_get::<i64, _>(5)
                .map_err(|e| bad(e.to_string()))?
                .max(0) as u64,
            first_at: time(6)?,
            last_at: time(7)?,
        })
    }
}

/// sqlx 0.9.0 stopped setting `TCP_NODELAY` on its sockets (upstream issue
/// transact-rs/sqlx#4335, no release with the fix yet). With TLS, rustls
/// sends a query as several small records, and Nagle's algorithm holds each
/// after the first until the server's delayed ACK: ~40 ms stalls, seen here
/// on a third of the calls of some runs. sqlx gives no access to its socket,
/// so once a connection is made this finds the process's TCP sockets to the
/// server's port and sets the option on them (harmless on any other one).
/// The TLS handshake itself, before that, still pays one stall per
/// connection; the pool keeps connections, so that is once per connection.
mod nodelay {
    #[cfg(unix)]
    pub fn set_on_sockets_to(port: u16) {
        use std::mem::{size_of, zeroed};
        let dir = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd"));
        let Ok(dir) = dir else { return };
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<libc::c_int>().ok())
            else {
                continue;
            };
            // SAFETY: plain socket calls on a descriptor number this process
            // holds (one that closed meanwhile just fails with EBADF); every
            // buffer is sized and owned here.
            unsafe {
                let mut addr: libc::sockaddr_storage = zeroed();
                let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                if libc::getpeername(fd, (&raw mut addr).cast(), &mut len) != 0 {
                    continue;
                }
                let peer_port = match libc::c_int::from(addr.ss_family) {
                    libc::AF_INET => {
                        u16::from_be((*(&raw const addr).cast::<libc::sockaddr_in>()).sin_port)
                    }
                    libc::AF_INET6 => {
                        u16::from_be((*(&raw const addr).cast::<libc::sockaddr_in6>()).sin6_port)
                    }
                    _ => continue,
                };
                if peer_port != port {
                    continue;
                }
                let one: libc::c_int = 1;
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }

    #[cfg(not(unix))]
    pub fn set_on_sockets_to(_port: u16) {}
}

/// The first line of a connection error, without the driver's chain.
fn short_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => {
            "timed out connecting (is the server running and the host/port right?)".into()
        }
        other => server_message(other)
            .map(|(_, m)| m)
            .unwrap_or_else(|| other.to_string())
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

#[async_trait]
impl SnapshotStore for PostgresStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: BACKEND,
            preserves_key_order: false,
            preserves_extra_fields: false,
            stores_external_refs: false,
            stores_nul_in_strings: false,
            indexed_saga_list: true,
            distributed_locks: true,
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        let row = SnapshotRow::from_snapshot(snapshot)?;
        // The usual case in one statement, so one round trip. A clash on
        // sagaz's other unique key (same saga, step and time, another id)
        // fails it without effect; the transaction below handles that.
        let r = sqlx::query(
            "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, context, \
             completed_steps, created_at, retention_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10) \
             ON CONFLICT (snapshot_id) DO UPDATE SET saga_id = EXCLUDED.saga_id, saga_name = EXCLUDED.saga_name, \
             step_name = EXCLUDED.step_name, step_index = EXCLUDED.step_index, status = EXCLUDED.status, \
             context = EXCLUDED.context, completed_steps = EXCLUDED.completed_steps, \
             created_at = EXCLUDED.created_at, retention_until = EXCLUDED.retention_until",
        )
        .bind(row.snapshot_id)
        .bind(row.saga_id)
        .bind(&row.saga_name)
        .bind(&row.step_name)
        .bind(row.step_index)
        .bind(&row.status)
        .bind(&row.context)
        .bind(&row.completed_steps)
        .bind(row.created_at)
        .bind(row.retention_until)
        .execute(&mut *self.conn().await?)
        .await;
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

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        // Check everything before writing anything.
        let rows = snapshots
            .iter()
            .map(SnapshotRow::from_snapshot)
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

    async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
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

    async fn latest_snapshot(
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

    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
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

    async fn list_snapshots(
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
        let (cmp, dir) = match q.order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
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
        super::page_in_order(
            limit,
            |_| true,
            |rows, offset| {
                let mut p = p.clone();
                let l = format!(
                    "LIMIT {} OFFSET {}",
                    p.push(Bind::Int(rows.min(i64::MAX as usize) as i64)),
                    p.push(Bind::Int(offset.min(i64::MAX as usize) as i64))
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

    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
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

    async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool> {
        let Some(id) = uuid_for_read(snapshot_id) else {
            return Ok(false);
        };
        let r = sqlx::query("DELETE FROM saga_snapshots WHERE snapshot_id = $1")
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64> {
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(0);
        };
        let r = sqlx::query("DELETE FROM saga_snapshots WHERE saga_id = $1")
            .bind(id)
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(r.rows_affected())
    }

    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        // sagaz's own delete_expired_snapshots statement.
        let r = sqlx::query(
            "DELETE FROM saga_snapshots WHERE retention_until IS NOT NULL AND retention_until < $1",
        )
        .bind(now.as_datetime())
        .execute(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        Ok(r.rows_affected())
    }

    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        let (replay_id, original, new_saga) = self.check_replay(log)?;
        let mut tx = self.pool.pool().begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO saga_replay_log (replay_id, original_saga_id, new_saga_id, checkpoint_step, context_override, \
             initiated_by, replay_status, error_message, created_at, completed_at) \
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10) \
             ON CONFLICT (replay_id) DO UPDATE SET original_saga_id = EXCLUDED.original_saga_id, \
             new_saga_id = EXCLUDED.new_saga_id, checkpoint_step = EXCLUDED.checkpoint_step, \
             context_override = EXCLUDED.context_override, initiated_by = EXCLUDED.initiated_by, \
             replay_status = EXCLUDED.replay_status, error_message = EXCLUDED.error_message, \
             created_at = EXCLUDED.created_at, completed_at = EXCLUDED.completed_at",
        )
        .bind(replay_id)
        .bind(original)
        .bind(new_saga)
        .bind(log.checkpoint_step.clone())
        .bind(log.context_override.as_ref().map(|v| serde_json::to_string(v).unwrap_or_else(|_| "null".into())))
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

    async fn latest_snapshots_for_step(
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

    async fn save_replays(&self, logs: &[ReplayLog]) -> StoreResult<()> {
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
        sqlx::query(
            "INSERT INTO saga_replay_log (replay_id, original_saga_id, new_saga_id, checkpoint_step, context_override, \
             initiated_by, replay_status, error_message, created_at, completed_at) \
             SELECT r, o, n, s, c::jsonb, w, st, e, ca, co FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[]) \
             AS t(r, o, n, s, c, w, st, e, ca, co) \
             ON CONFLICT (replay_id) DO UPDATE SET original_saga_id = EXCLUDED.original_saga_id, \
             new_saga_id = EXCLUDED.new_saga_id, checkpoint_step = EXCLUDED.checkpoint_step, \
             context_override = EXCLUDED.context_override, initiated_by = EXCLUDED.initiated_by, \
             replay_status = EXCLUDED.replay_status, error_message = EXCLUDED.error_message, \
             created_at = EXCLUDED.created_at, completed_at = EXCLUDED.completed_at",
        )
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

    async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
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
        row.map(|r| Self::replay_from_row(&r).map_err(|entry| StoreError::Corrupt { entry }))
            .transpose()
    }

    async fn list_replays(
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
        .bind(limit.map(|n| n.min(i64::MAX as usize) as i64))
        .fetch_all(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        let mut out = Listing::default();
        for r in &rows {
            match Self::replay_from_row(r) {
                Ok(l) => out.items.push(l),
                Err(b) => out.bad.push(b),
            }
        }
        Ok(out)
    }

    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
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
        row.map(|r| Self::replay_from_row(&r).map_err(|entry| StoreError::Corrupt { entry }))
            .transpose()
    }

    async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage> {
        let mut p = Params::default();
        let Some(cond) = newest_per_saga_where(filter, page.after.as_ref(), &mut p) else {
            return Ok(SagaPage::default());
        };
        let lim = p.push(Bind::Int(
            (page.limit.min(i64::MAX as usize - 1) as i64) + 1,
        ));
        let rows = p
            .query(saga_list_text(&cond, &lim))
            // Unnamed, so planned for these values every time (see parse_url).
            .persistent(false)
            .fetch_all(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        let more = rows.len() > page.limit;
        let mut out = SagaPage::default();
        for row in rows.iter().take(page.limit) {
            match Self::summary_from_row(row) {
                Ok(s) => out.sagas.push(s),
                Err(b) => out.bad.push(b),
            }
        }
        if more && page.limit > 0 {
            // From the raw row, so a bad row never makes paging repeat or skip.
            if let Some(row) = rows.get(page.limit - 1) {
                let id: Option<Uuid> = row.try_get(0).ok();
                let at: Option<DateTime<Utc>> = row.try_get(7).ok();
                if let (Some(id), Some(at)) = (id, at) {
                    out.next = Some(SagaCursor {
                        last_at: Timestamp::from_datetime(at),
                        saga_id: id.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        let Some(id) = uuid_for_read(saga_id) else {
            return Ok(None);
        };
        let mut p = Params::default();
        let Some(cond) = newest_per_saga_where(&SagaFilter::default(), None, &mut p) else {
            return Ok(None);
        };
        let cond = format!("s.saga_id = {} AND {cond}", p.push(Bind::Uuid(id)));
        let lim = p.push(Bind::Int(1));
        let row = p
            .query(saga_list_text(&cond, &lim))
            .fetch_optional(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        row.map(|r| Self::summary_from_row(&r).map_err(|entry| StoreError::Corrupt { entry }))
            .transpose()
    }

    async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64> {
        let mut p = Params::default();
        let Some(cond) = newest_per_saga_where(filter, None, &mut p) else {
            return Ok(0);
        };
        let row = p
            .query(format!(
                "SELECT count(*) FROM saga_snapshots s WHERE {cond}"
            ))
            .persistent(false)
            .fetch_one(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(row.try_get::<i64, _>(0).map_err(db_err)?.max(0) as u64)
    }

    async fn health(&self) -> StoreResult<Health> {
        let start = Instant::now();
        sqlx::query("SELECT 1")
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|e| {
                // A restarted server leaves the kept connection dead: retire
                // it, or every later check (the TUI's reconnect, C-r) would
                // fail on it too.
                self.pool.note(&e);
                StoreError::Unreachable {
                    url: self.location.clone(),
                    reason: short_reason(&e),
                }
            })?;
        let latency = start.elapsed();
        // Planner estimates: exact counts would scan the tables.
        let estimate = |table: &'static str| async move {
            sqlx::query_scalar::<_, f32>(sql(format!(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass('{table}')"
            )))
            .fetch_optional(&mut *self.conn().await.ok()?)
            .await
            .ok()
            .flatten()
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64)
        };
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT pg_total_relation_size('saga_snapshots') + pg_total_relation_size('saga_replay_log')",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
        .ok();
        let mut notes = vec!["snapshot and replay counts are planner estimates".to_string()];
        if let Some(s) = &self.schema {
            notes.push(format!("schema {s}"));
        }
        Ok(Health {
            backend: BACKEND,
            url: self.location.clone(),
            reachable: true,
            latency,
            sagas: None,
            snapshots: estimate("saga_snapshots").await,
            replays: estimate("saga_replay_log").await,
            size_bytes: size.map(|n| n.max(0) as u64),
            notes,
        })
    }

    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome> {
        check_text("lock name", name, None)?;
        check_text("lock owner", owner, None)?;
        let ttl_us = ttl.as_micros().min(i64::MAX as u128) as i64;
        // The server's clock decides expiry, so machines with skewed clocks agree.
        let taken = sqlx::query(
            "INSERT INTO sagascope_locks (name, owner, expires_at) \
             VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond') \
             ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
             WHERE sagascope_locks.expires_at < clock_timestamp() OR sagascope_locks.owner = EXCLUDED.owner",
        )
        .bind(name.to_string())
        .bind(owner.to_string())
        .bind(ttl_us)
        .execute(&mut *self.conn().await?)
        .await
        .map_err(|e| self.lost(e))?;
        if taken.rows_affected() > 0 {
            return Ok(LockOutcome::Acquired);
        }
        let row: Option<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT owner, expires_at FROM sagascope_locks WHERE name = $1")
                .bind(name.to_string())
                .fetch_optional(&mut *self.conn().await?)
                .await
                .map_err(|e| self.lost(e))?;
        match row {
            Some((owner, until)) => Ok(LockOutcome::Held {
                owner,
                until: Timestamp::from_datetime(until),
            }),
            // Released between the two statements: try once more.
            None => Box::pin(self.try_lock(name, owner, ttl)).await,
        }
    }

    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        if name.contains('\0') || owner.contains('\0') {
            return Ok(());
        }
        sqlx::query("DELETE FROM sagascope_locks WHERE name = $1 AND owner = $2")
            .bind(name.to_string())
            .bind(owner.to_string())
            .execute(&mut *self.conn().await?)
            .await
            .map_err(|e| self.lost(e))?;
        Ok(())
    }
}
