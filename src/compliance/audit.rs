//! Audit events kept in the store beside the data (`put_meta` kind
//! [`KIND`]): reveals, erasures, encryption runs, key rotations, holds.
//! Every machine that opens the store sees the same events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Timestamp;
use crate::store::{SnapshotStore, StoreResult};

/// The `put_meta` kind audit events are kept under.
pub const KIND: &str = "audit";

/// One audited action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique, and ordered by time: `<micros since epoch, 20 digits>-<uuid>`.
    pub id: String,
    /// When it happened.
    pub at: Timestamp,
    /// Who did it (the configured identity or OS user).
    pub actor: String,
    /// What was done: `reveal`, `erase`, `encrypt`, `keys.rotate`,
    /// `hold.place`, `hold.release`, …
    pub action: String,
    /// The saga concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saga_id: Option<String>,
    /// The context paths concerned (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Why, as the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Anything else the action records (counts, a receipt), never a
    /// sensitive value.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl AuditEvent {
    /// A new event happening now.
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        let at = Timestamp::now();
        AuditEvent {
            id: event_id(at),
            at,
            actor: actor.into(),
            action: action.into(),
            saga_id: None,
            paths: Vec::new(),
            reason: None,
            details: Value::Null,
        }
    }
}

fn event_id(at: Timestamp) -> String {
    let micros = at.as_micros().max(0);
    format!("{micros:020}-{}", uuid::Uuid::new_v4())
}

/// Appends `event` to the store's audit log.
pub async fn append(store: &dyn SnapshotStore, event: &AuditEvent) -> StoreResult<()> {
    let v = serde_json::to_value(event).expect("an audit event serializes");
    store.put_meta(KIND, &event.id, &v).await
}

/// Audit events after `after` (an event id), oldest first, at most `limit`.
/// An entry that is not an event is skipped.
pub async fn list(
    store: &dyn SnapshotStore,
    after: Option<&str>,
    limit: usize,
) -> StoreResult<Vec<AuditEvent>> {
    Ok(store
        .list_meta(KIND, after, limit)
        .await?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value(v).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn events_list_oldest_first_and_page_by_id() {
        let store = MemoryStore::new();
        let mut ids = Vec::new();
        for (i, action) in ["reveal", "erase", "hold.place"].into_iter().enumerate() {
            let mut e = AuditEvent::new("alice", action);
            // Ids order by time even within one microsecond's tick.
            e.id = event_id(Timestamp::from_micros(1_000 + i as i64).unwrap());
            e.saga_id = Some(format!("saga-{i}"));
            e.paths = vec!["customer.email".into()];
            e.reason = Some("ticket 42".into());
            e.details = serde_json::json!({"n": i});
            append(&store, &e).await.unwrap();
            ids.push(e.id.clone());
        }
        // Not an event: skipped, not an error.
        store
            .put_meta(KIND, "zzz-not-an-event", &serde_json::json!([1]))
            .await
            .unwrap();

        let all = list(&store, None, 10).await.unwrap();
        let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["reveal", "erase", "hold.place"]);
        assert_eq!(all[0].paths, ["customer.email"]);
        assert_eq!(all[2].details, serde_json::json!({"n": 2}));

        let rest = list(&store, Some(&ids[0]), 1).await.unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].id, ids[1]);
        assert!(list(&store, Some(&ids[2]), 10).await.unwrap().is_empty());
    }

    #[test]
    fn event_ids_sort_as_their_times() {
        let a = event_id(Timestamp::from_micros(9).unwrap());
        let b = event_id(Timestamp::from_micros(10).unwrap());
        let c = event_id(Timestamp::from_micros(1_795_311_446_293_168).unwrap());
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
