//! Reads: how an SQLite row's text columns read, the values bound to
//! statements built at run time, and the pieces of statement the operations
//! shared with PostgreSQL (`store::sql`) take from this store.

use std::time::Duration;

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::Row;

use super::super::rows::TimeColumn;
use super::super::sql::{sql, sql_store_run, Args, Bind, Dialect, SqlRow, SqlStore, TextCells};
use super::*;

/// Ids, times and JSON are all text here.
impl SqlRow for SqliteRow {
    const DIALECT: Dialect = Dialect::Sqlite;

    fn id(&self, i: usize) -> Result<String, sqlx::Error> {
        self.text(i)
    }

    fn time(&self, i: usize) -> Result<Option<TimeColumn>, sqlx::Error> {
        Ok(self.opt_text(i)?.map(TimeColumn::Text))
    }

    fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get(i)
    }
}

/// JSON text for a TEXT column: compact, UTF-8, key order kept.
pub(super) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    super::super::sql::json_text(v, "null")
}

/// SQLite's text for a value SQLite has no type for (see [`Bind`]).
fn as_text(b: &Bind) -> Option<String> {
    match b {
        Bind::Uuid(u) => Some(u.to_string()),
        Bind::Time(t) => Some(Timestamp::from_datetime(*t).to_isoformat()),
        Bind::TextList(v) => Some(json_text(v)),
        Bind::UuidList(v) => Some(json_text(v)),
        Bind::Text(_) | Bind::Int(_) | Bind::Null => None,
    }
}

pub(super) type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, SqliteArguments>;

/// A statement with `binds` bound in order.
pub(super) fn bind_all(text: String, binds: Vec<Bind>) -> SqliteQuery<'static> {
    binds.into_iter().fold(sqlx::query(sql(text)), |q, b| {
        if let Some(t) = as_text(&b) {
            return q.bind(t);
        }
        match b {
            Bind::Int(i) => q.bind(i),
            Bind::Text(s) => q.bind(s),
            _ => q.bind(None::<String>),
        }
    })
}

/// The same values for the direct connection (`conn::direct`).
impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
        if let Some(t) = as_text(self) {
            return Ok(ToSqlOutput::Owned(SqlValue::Text(t)));
        }
        Ok(match self {
            Bind::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Bind::Int(i) => ToSqlOutput::Owned(SqlValue::Integer(*i)),
            _ => ToSqlOutput::Owned(SqlValue::Null),
        })
    }
}

impl SqliteStore {
    /// `text` with every value bound.
    pub(super) fn query(text: String, args: Args) -> SqliteQuery<'static> {
        bind_all(text, args.into_values())
    }
}

impl SqlStore for SqliteStore {
    type Row = SqliteRow;

    fn id_arg(id: &str) -> Option<Bind> {
        Some(Bind::Text(id.to_string()))
    }

    /// sagaz's ISO text, which compares as the times do.
    fn time_arg(t: Timestamp) -> Bind {
        Bind::Text(t.to_isoformat())
    }

    fn snapshot_cols(&self) -> &str {
        &self.snap_cols
    }

    fn replay_from(&self) -> &str {
        &self.replay_from
    }

    fn after_cond(args: &mut Args, cmp: &str, c: &SnapshotCursor) -> String {
        let at = c.created_at.to_isoformat();
        format!(
            "(created_at {cmp} {} OR (created_at = {} AND snapshot_id {cmp} {}))",
            args.push(Bind::Text(at.clone())),
            args.push(Bind::Text(at)),
            args.push(Bind::Text(c.snapshot_id.clone()))
        )
    }

    fn snapshots_sql(&self, conds: &str, dir: &str, limit: &str) -> String {
        format!(
            "SELECT {} FROM saga_snapshots WHERE {conds} ORDER BY created_at {dir}, snapshot_id {dir} {limit}",
            self.snap_cols
        )
    }

    /// This machine's clock decides expiry (the locks are for processes
    /// sharing the file).
    fn take_lock(
        name: &str,
        owner: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> StoreResult<(String, Args)> {
        let until = now.plus_micros(ttl.as_micros().min(i64::MAX as u128) as i64);
        let mut a = Args::new(false);
        let text = format!(
            "INSERT INTO sagascope_locks (name, owner, expires_us) VALUES ({}, {}, {}) \
             ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_us = excluded.expires_us \
             WHERE sagascope_locks.expires_us < {} OR sagascope_locks.owner = excluded.owner",
            a.push(Bind::Text(name.to_string())),
            a.push(Bind::Text(owner.to_string())),
            a.push(Bind::Int(until.as_micros())),
            a.push(Bind::Int(now.as_micros()))
        );
        Ok((text, a))
    }

    fn lock_expiry_column() -> &'static str {
        "expires_us"
    }

    fn lock_until(row: &SqliteRow, now: Timestamp) -> Result<Timestamp, sqlx::Error> {
        Ok(Timestamp::from_micros(row.try_get(1)?).unwrap_or(now))
    }

    sql_store_run!();
}
