//! How a snapshot row of the SQL backends (SQLite, PostgreSQL) becomes a
//! [`Snapshot`]: each backend reads its columns as text (the JSON columns
//! too), and the checks every row needs — JSON within the codec's limits, a
//! context that is an object, completed steps that are strings, times that
//! read — happen here, once for both, in a function that needs no database
//! (so it can be fuzzed).

use serde_json::{Map, Value};

use super::codec::Codec;
use super::BadEntry;
use crate::model::{SagaStatus, Snapshot, Timestamp};

/// A time column: text (SQLite stores sagaz's ISO strings) or a value the
/// driver already typed (PostgreSQL `timestamptz`).
#[derive(Debug, Clone)]
pub enum TimeColumn {
    /// ISO 8601 text as sagaz writes it.
    Text(String),
    /// A value the driver already converted.
    Time(Timestamp),
}

/// One `saga_snapshots` row as read, before any check.
#[derive(Debug, Clone)]
pub struct SnapshotColumns {
    /// The `snapshot_id` column (the row's key; names the row in errors).
    pub snapshot_id: String,
    /// `None` when the driver could not read it.
    pub saga_id: Option<String>,
    /// The `saga_name` column.
    pub saga_name: String,
    /// The `step_name` column.
    pub step_name: String,
    /// The `step_index` column.
    pub step_index: i64,
    /// The `status` column, as sagaz spells it (unknown values are kept).
    pub status: String,
    /// JSON text.
    pub context: String,
    /// JSON text.
    pub completed_steps: String,
    /// The `created_at` column; `None` (NULL) makes the row a bad entry.
    pub created_at: Option<TimeColumn>,
    /// The `retention_until` column; `None` (NULL) keeps the snapshot forever.
    pub retention_until: Option<TimeColumn>,
    /// JSON text; absent columns (PostgreSQL has neither) are `None`.
    pub external_refs: Option<String>,
    /// sagascope's `extra` column: JSON text of fields a newer runtime wrote;
    /// `None` when absent.
    pub extra: Option<String>,
}

/// Checks a row and builds its snapshot; a row that does not check is a
/// bad entry named `saga_snapshots/{snapshot_id}`.
pub fn snapshot_from_columns(c: SnapshotColumns) -> Result<Snapshot, BadEntry> {
    let bad = |e: String| BadEntry {
        key: format!("saga_snapshots/{}", c.snapshot_id),
        saga_id: c.saga_id.clone(),
        error: e,
    };
    let json = |name: &str, text: &str| -> Result<Value, BadEntry> {
        Codec::default()
            .parse_json(text.as_bytes())
            .map_err(|e| bad(format!("column `{name}`: {e}")))
    };
    let context = match json("context", &c.context)? {
        Value::Object(m) => m,
        other => {
            return Err(bad(format!(
                "column `context`: expected a JSON object, found {}",
                crate::model::fields_type_name(&other)
            )))
        }
    };
    let completed_steps = match json("completed_steps", &c.completed_steps)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad(
                    "column `completed_steps`: expected an array of strings".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("column `completed_steps`: expected a JSON array".into())),
    };
    let time = |name: &str, t: &Option<TimeColumn>| -> Result<Option<Timestamp>, BadEntry> {
        match t {
            None => Ok(None),
            Some(TimeColumn::Time(t)) => Ok(Some(*t)),
            Some(TimeColumn::Text(s)) => Timestamp::parse(s)
                .map(Some)
                .map_err(|e| bad(format!("column `{name}`: {e}"))),
        }
    };
    let created_at = time("created_at", &c.created_at)?
        .ok_or_else(|| bad("column `created_at` is NULL".into()))?;
    let retention_until = time("retention_until", &c.retention_until)?;
    let object = |name: &str, text: &Option<String>| -> Result<Map<String, Value>, BadEntry> {
        match text {
            None => Ok(Map::new()),
            Some(t) => match json(name, t)? {
                Value::Object(m) => Ok(m),
                _ => Err(bad(format!("column `{name}`: expected a JSON object"))),
            },
        }
    };
    let external_refs = object("external_refs", &c.external_refs)?;
    let extra = object("extra", &c.extra)?;
    let saga_id = c
        .saga_id
        .clone()
        .ok_or_else(|| bad("column `saga_id` is unreadable".into()))?;
    Ok(Snapshot {
        snapshot_id: c.snapshot_id,
        saga_id,
        saga_name: c.saga_name,
        step_name: c.step_name,
        step_index: c.step_index,
        status: SagaStatus::parse(&c.status),
        context,
        completed_steps,
        created_at,
        retention_until,
        external_refs,
        extra,
    })
}
