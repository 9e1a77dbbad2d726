//! Records beside the snapshots (`sagascope_meta`), shared by the SQL
//! stores the way the rest of `sql` is.

use serde_json::Value;

use super::*;

/// The `sagascope_meta` table is missing: a store opened read-only that
/// sagascope never wrote to has no records beside its snapshots.
fn meta_table_missing(e: &StoreError) -> bool {
    let m = e.to_string();
    m.contains("sagascope_meta") && (m.contains("no such table") || m.contains("does not exist"))
}

fn meta_text(backend: &'static str, kind: &str, key: &str, value: &Value) -> StoreResult<String> {
    if kind.contains('\0') || key.contains('\0') {
        return Err(StoreError::Unstorable {
            what: format!("record {kind:?}/{key:?}"),
            backend,
            reason: "kinds and keys are printable strings without NUL".into(),
        });
    }
    serde_json::to_string(value).map_err(|e| StoreError::Unstorable {
        what: format!("record {kind}/{key}"),
        backend,
        reason: e.to_string(),
    })
}

fn meta_value<R: SqlRow>(kind: &str, key: &str, row: &R, i: usize) -> StoreResult<Value> {
    let bad = |error: String| StoreError::Corrupt {
        entry: BadEntry {
            key: format!("sagascope_meta {kind}/{key}"),
            saga_id: None,
            error,
        },
    };
    let text = row.text(i).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

/// Stores (or replaces) a record beside the snapshots.
pub(in crate::store) async fn put_meta<S: SqlStore>(
    s: &S,
    kind: &str,
    key: &str,
    value: &Value,
) -> StoreResult<()> {
    let text = meta_text(dialect::<S>().backend(), kind, key, value)?;
    let mut a = args::<S>();
    let stmt = format!(
        "INSERT INTO sagascope_meta (kind, key, value) VALUES ({}, {}, {}) \
         ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
        a.push(Bind::Text(kind.to_string())),
        a.push(Bind::Text(key.to_string())),
        a.push(Bind::Text(text))
    );
    s.execute(stmt, a).await.map(drop)
}

/// Stores a record unless one has this kind and key: one statement, so
/// of racing inserters exactly one changes a row.
pub(in crate::store) async fn insert_meta<S: SqlStore>(
    s: &S,
    kind: &str,
    key: &str,
    value: &Value,
) -> StoreResult<bool> {
    let text = meta_text(dialect::<S>().backend(), kind, key, value)?;
    let mut a = args::<S>();
    let stmt = format!(
        "INSERT INTO sagascope_meta (kind, key, value) VALUES ({}, {}, {}) \
         ON CONFLICT (kind, key) DO NOTHING",
        a.push(Bind::Text(kind.to_string())),
        a.push(Bind::Text(key.to_string())),
        a.push(Bind::Text(text))
    );
    Ok(s.execute(stmt, a).await? > 0)
}

pub(in crate::store) async fn get_meta<S: SqlStore>(
    s: &S,
    kind: &str,
    key: &str,
) -> StoreResult<Option<Value>> {
    if kind.contains('\0') || key.contains('\0') {
        return Ok(None);
    }
    let mut a = args::<S>();
    let stmt = format!(
        "SELECT value FROM sagascope_meta WHERE kind = {} AND key = {}",
        a.push(Bind::Text(kind.to_string())),
        a.push(Bind::Text(key.to_string()))
    );
    let rows = match s.fetch_all(stmt, a).await {
        Ok(rows) => rows,
        Err(e) if meta_table_missing(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    match rows.first() {
        Some(row) => meta_value(kind, key, row, 0).map(Some),
        None => Ok(None),
    }
}

/// Records of one kind in key order: the key columns compare bytewise
/// (SQLite's `BINARY`, PostgreSQL's `COLLATE "C"`).
pub(in crate::store) async fn list_meta<S: SqlStore>(
    s: &S,
    kind: &str,
    after: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<(String, Value)>> {
    if limit == 0 || kind.contains('\0') {
        return Ok(Vec::new());
    }
    let mut a = args::<S>();
    let mut stmt = format!(
        "SELECT key, value FROM sagascope_meta WHERE kind = {}",
        a.push(Bind::Text(kind.to_string()))
    );
    if let Some(after) = after {
        stmt = format!(
            "{stmt} AND key > {}",
            a.push(Bind::Text(after.replace('\0', "")))
        );
    }
    stmt = format!(
        "{stmt} ORDER BY key LIMIT {}",
        a.push(Bind::Int(sql_int(limit)))
    );
    let rows = match s.fetch_all(stmt, a).await {
        Ok(rows) => rows,
        Err(e) if meta_table_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let err = |e| driver_err(dialect::<S>().backend(), e);
    rows.iter()
        .map(|row| {
            let key = row.text(0).map_err(err)?;
            let v = meta_value(kind, &key, row, 1)?;
            Ok((key, v))
        })
        .collect()
}

pub(in crate::store) async fn delete_meta<S: SqlStore>(
    s: &S,
    kind: &str,
    key: &str,
) -> StoreResult<bool> {
    if kind.contains('\0') || key.contains('\0') {
        return Ok(false);
    }
    let mut a = args::<S>();
    let stmt = format!(
        "DELETE FROM sagascope_meta WHERE kind = {} AND key = {}",
        a.push(Bind::Text(kind.to_string())),
        a.push(Bind::Text(key.to_string()))
    );
    Ok(s.execute(stmt, a).await? > 0)
}
