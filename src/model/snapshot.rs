//! The snapshot record: sagaz's `SagaSnapshot.to_dict()`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::fields::{Fields, RecordError};
use super::{SagaStatus, Timestamp};

/// The step name sagaz gives the snapshot taken once a saga has completed.
pub const COMPLETED_STEP: &str = "__completed__";

/// One checkpoint of a saga's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The snapshot's own id (a UUID string), unique across the store.
    pub snapshot_id: String,
    /// The saga this snapshot belongs to; all of a saga's snapshots share it.
    pub saga_id: String,
    /// The saga's name as its definition declares it, e.g. `OrderSaga`.
    pub saga_name: String,
    /// The step about to run (before-step capture), just run (after-step), or
    /// [`COMPLETED_STEP`].
    pub step_name: String,
    /// 0-based position of the step; the number of steps for `__completed__`.
    pub step_index: i64,
    /// The saga's status when the snapshot was taken.
    pub status: SagaStatus,
    /// The saga's context (step inputs and outputs) at capture time, keys in
    /// the order they were written.
    pub context: Map<String, Value>,
    /// Names of the steps completed at capture time, in execution order.
    pub completed_steps: Vec<String>,
    /// sagaz's references to outside resources (payment ids and the like);
    /// empty when the store did not keep them (PostgreSQL drops the column).
    pub external_refs: Map<String, Value>,
    /// When the snapshot was taken; snapshots of a saga are ordered by it.
    pub created_at: Timestamp,
    /// When the snapshot may be deleted as expired ([`Snapshot::is_expired_at`]);
    /// `None` keeps it forever.
    pub retention_until: Option<Timestamp>,
    /// Fields written by a newer runtime, kept as they are.
    pub extra: Map<String, Value>,
}

/// sagaz's default retention for snapshots.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;

impl Snapshot {
    /// A new snapshot with a fresh id, taken now, kept for
    /// [`DEFAULT_RETENTION_DAYS`].
    pub fn new(
        saga_id: impl Into<String>,
        saga_name: impl Into<String>,
        step_name: impl Into<String>,
        step_index: i64,
        status: SagaStatus,
        context: Map<String, Value>,
        completed_steps: Vec<String>,
    ) -> Self {
        let created_at = Timestamp::now();
        Snapshot {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga_id.into(),
            saga_name: saga_name.into(),
            step_name: step_name.into(),
            step_index,
            status,
            context,
            completed_steps,
            external_refs: Map::new(),
            created_at,
            retention_until: Some(created_at.plus_micros(DEFAULT_RETENTION_DAYS * 86_400_000_000)),
            extra: Map::new(),
        }
    }

    /// Reads sagaz's dict form. Errors name the field at fault.
    pub fn from_json(value: Value) -> Result<Self, RecordError> {
        let mut f = Fields::from_value(value)?;
        let snap = Snapshot {
            snapshot_id: f.string("snapshot_id")?,
            saga_id: f.string("saga_id")?,
            saga_name: f.string("saga_name")?,
            step_name: f.string("step_name")?,
            step_index: f.int("step_index")?,
            status: SagaStatus::parse(&f.string("status")?),
            context: f.object("context")?,
            completed_steps: f.string_list("completed_steps")?,
            external_refs: f.object_or_empty("external_refs")?,
            created_at: f.timestamp("created_at")?,
            retention_until: f.opt_timestamp("retention_until")?,
            extra: Map::new(),
        };
        Ok(Snapshot {
            extra: f.rest(),
            ..snap
        })
    }

    /// sagaz's dict form, keys in sagaz's order, unknown fields last.
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(11 + self.extra.len());
        m.insert("snapshot_id".into(), self.snapshot_id.clone().into());
        m.insert("saga_id".into(), self.saga_id.clone().into());
        m.insert("saga_name".into(), self.saga_name.clone().into());
        m.insert("step_name".into(), self.step_name.clone().into());
        m.insert("step_index".into(), self.step_index.into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert("context".into(), Value::Object(self.context.clone()));
        m.insert(
            "completed_steps".into(),
            Value::Array(
                self.completed_steps
                    .iter()
                    .cloned()
                    .map(Value::from)
                    .collect(),
            ),
        );
        m.insert(
            "external_refs".into(),
            Value::Object(self.external_refs.clone()),
        );
        m.insert("created_at".into(), self.created_at.to_isoformat().into());
        m.insert(
            "retention_until".into(),
            self.retention_until
                .map(|t| Value::from(t.to_isoformat()))
                .unwrap_or(Value::Null),
        );
        for (k, v) in &self.extra {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }

    /// Whether the snapshot's retention has passed at `now` (`retention_until`
    /// before it; never when `retention_until` is `None`): the test
    /// [`SnapshotStore::delete_expired`](crate::store::SnapshotStore::delete_expired)
    /// applies.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.retention_until.is_some_and(|r| r < now)
    }

    /// Why the saga failed, as the runtime recorded it beside the context:
    /// `error` (a string, or an object's `message`), with each failed
    /// compensation in `compensation_errors` appended. `None` when the
    /// snapshot records neither (every snapshot but a failed saga's last).
    pub fn error_message(&self) -> Option<String> {
        let error = match self.extra.get("error") {
            Some(Value::String(e)) => Some(e.clone()),
            Some(Value::Object(o)) => Some(
                o.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| Value::Object(o.clone()).to_string()),
            ),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let failed: Vec<String> = match self.extra.get("compensation_errors") {
            Some(Value::Object(o)) => o
                .iter()
                .map(|(step, e)| match e.as_str() {
                    Some(e) => format!("{step}: {e}"),
                    None => format!("{step}: {e}"),
                })
                .collect(),
            _ => Vec::new(),
        };
        if failed.is_empty() {
            return error;
        }
        Some(format!(
            "{}compensation failed: {}",
            error.map(|e| format!("{e}; ")).unwrap_or_default(),
            failed.join("; ")
        ))
    }

    /// The steps whose compensation ran, as the runtime recorded them
    /// (`compensated_steps`, in the order they ran); empty when none.
    pub fn compensated_steps(&self) -> Vec<String> {
        self.extra
            .get("compensated_steps")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first 8 characters of the saga id, for display.
    pub fn short_saga_id(&self) -> &str {
        short_id(&self.saga_id)
    }
}

/// The first 8 characters of an id (all of it when shorter).
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

impl Serialize for Snapshot {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Snapshot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Snapshot::from_json(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sagaz_dict() -> Value {
        json!({
            "snapshot_id": "3f1e8a52-8f0e-4a4e-9d0b-4d5b5c8f1a10",
            "saga_id": "9a3c2b1d-0000-4000-8000-000000000001",
            "saga_name": "OrderSaga",
            "step_name": "charge_payment",
            "step_index": 1,
            "status": "executing",
            "context": {"order_id": "o-1", "amount": 9007199254740993u64},
            "completed_steps": ["reserve_inventory"],
            "external_refs": {},
            "created_at": "2026-11-22T01:37:29.601111+00:00",
            "retention_until": "2026-12-22T01:37:29.601105+00:00"
        })
    }

    #[test]
    fn round_trips_sagaz_dict_exactly() {
        let v = sagaz_dict();
        let s = Snapshot::from_json(v.clone()).unwrap();
        assert_eq!(s.to_json(), v);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
    }

    #[test]
    fn keeps_unknown_fields() {
        let mut v = sagaz_dict();
        v["schema_version"] = json!(2);
        let s = Snapshot::from_json(v.clone()).unwrap();
        assert_eq!(s.extra.get("schema_version"), Some(&json!(2)));
        assert_eq!(s.to_json(), v);
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = sagaz_dict();
        v["step_index"] = json!("one");
        let e = Snapshot::from_json(v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field `step_index`: expected integer, found string"
        );
        let mut v = sagaz_dict();
        v.as_object_mut().unwrap().remove("context");
        assert_eq!(
            Snapshot::from_json(v).unwrap_err().to_string(),
            "missing field `context`"
        );
    }

    #[test]
    fn the_error_and_compensations_are_read_from_the_extra_fields() {
        let mut v = sagaz_dict();
        let s = Snapshot::from_json(v.clone()).unwrap();
        assert_eq!(s.error_message(), None);
        assert!(s.compensated_steps().is_empty());
        v["error"] = json!("card token for order ord-1002 has expired");
        v["compensated_steps"] = json!(["reserve_inventory"]);
        let s = Snapshot::from_json(v.clone()).unwrap();
        assert_eq!(
            s.error_message().as_deref(),
            Some("card token for order ord-1002 has expired")
        );
        assert_eq!(s.compensated_steps(), vec!["reserve_inventory"]);
        v["compensation_errors"] = json!({"reserve_inventory": "warehouse down"});
        let s = Snapshot::from_json(v.clone()).unwrap();
        assert_eq!(
            s.error_message().as_deref(),
            Some("card token for order ord-1002 has expired; compensation failed: reserve_inventory: warehouse down")
        );
        v["error"] = json!({"step": "ship", "message": "carrier down"});
        v.as_object_mut().unwrap().remove("compensation_errors");
        let s = Snapshot::from_json(v).unwrap();
        assert_eq!(s.error_message().as_deref(), Some("carrier down"));
    }

    #[test]
    fn missing_external_refs_reads_as_empty() {
        let mut v = sagaz_dict();
        v.as_object_mut().unwrap().remove("external_refs");
        let s = Snapshot::from_json(v).unwrap();
        assert!(s.external_refs.is_empty());
    }
}
