//! Legal holds on sagas (`put_meta` kind [`KIND`], key = saga id): a held
//! saga is neither erased nor collected by `gc`.
//!
//! Placing a hold clears `retention_until` on every snapshot of the saga,
//! so no deletion by expiry touches it, whoever runs it (`sagascope gc`,
//! sagaz's own cleanup, a server-side TTL). The hold record remembers each
//! snapshot's previous retention, and releasing the hold puts it back.
//! Both write an audit event.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::audit::{self, AuditEvent};
use crate::model::{Snapshot, Timestamp};
use crate::store::{self, SnapshotQuery, SnapshotStore, StoreError};

/// The `put_meta` kind holds are kept under.
pub const KIND: &str = "hold";

/// A legal hold on one saga.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// The saga held.
    pub saga_id: String,
    /// When the hold was placed.
    pub placed_at: Timestamp,
    /// Who placed it.
    pub placed_by: String,
    /// Why, as given.
    pub reason: String,
    /// Each held snapshot's `retention_until` before the hold, restored on
    /// release (by snapshot id; `None` = it had none).
    #[serde(default)]
    pub previous_retention: BTreeMap<String, Option<Timestamp>>,
}

/// What placing or releasing a hold can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The saga has no snapshots in this store.
    #[error("no saga {saga_id} in this store; check the id (`sagascope list`)")]
    NoSuchSaga {
        /// The id asked for.
        saga_id: String,
    },
    /// A hold is already in place.
    #[error(
        "saga {saga_id} is already on legal hold (placed {placed_at} by {placed_by}: {reason})"
    )]
    AlreadyHeld {
        /// The saga.
        saga_id: String,
        /// When the existing hold was placed.
        placed_at: Timestamp,
        /// Who placed it.
        placed_by: String,
        /// Its reason.
        reason: String,
    },
    /// There is no hold to release.
    #[error("saga {saga_id} is not on legal hold; nothing to release (`sagascope hold list`)")]
    NotHeld {
        /// The saga.
        saga_id: String,
    },
    /// A stored hold record could not be read.
    #[error("the hold record of saga {saga_id} cannot be read: {reason}")]
    BadRecord {
        /// The saga.
        saga_id: String,
        /// Why.
        reason: String,
    },
}

fn parse(saga_id: &str, v: serde_json::Value) -> Result<HoldRecord, HoldError> {
    serde_json::from_value(v).map_err(|e| HoldError::BadRecord {
        saga_id: saga_id.to_string(),
        reason: e.to_string(),
    })
}

/// The hold on a saga, if one.
pub async fn get(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<Option<HoldRecord>, HoldError> {
    match store.get_meta(KIND, saga_id).await? {
        Some(v) => parse(saga_id, v).map(Some),
        None => Ok(None),
    }
}

/// Every hold, by saga id.
pub async fn list(store: &dyn SnapshotStore) -> Result<Vec<HoldRecord>, HoldError> {
    const PAGE: usize = 500;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_meta(KIND, after.as_deref(), PAGE).await?;
        let n = page.len();
        for (key, v) in page {
            out.push(parse(&key, v)?);
            after = Some(key);
        }
        if n < PAGE {
            return Ok(out);
        }
    }
}

/// The message erase and gc print when a hold stops them.
pub fn refusal(saga_id: &str, hold: &HoldRecord) -> String {
    format!(
        "saga {saga_id} is on legal hold (placed {} by {}: {}); it cannot be erased or collected \
         until the hold is released (`sagascope hold release {saga_id} --reason …`)",
        hold.placed_at, hold.placed_by, hold.reason
    )
}

async fn snapshots_of(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<Vec<Snapshot>, HoldError> {
    Ok(store::all_snapshots(store, saga_id, SnapshotQuery::all())
        .await?
        .items)
}

/// Places a legal hold on a saga: clears the retention of each of its
/// snapshots (remembering it in the record) and writes an audit event.
pub async fn place(
    store: &Arc<dyn SnapshotStore>,
    saga_id: &str,
    actor: &str,
    reason: &str,
) -> Result<HoldRecord, HoldError> {
    let raw = store::unmasked(store);
    let snaps = snapshots_of(raw.as_ref(), saga_id).await?;
    if snaps.is_empty() {
        return Err(HoldError::NoSuchSaga {
            saga_id: saga_id.to_string(),
        });
    }
    let record = HoldRecord {
        saga_id: saga_id.to_string(),
        placed_at: Timestamp::now(),
        placed_by: actor.to_string(),
        reason: reason.to_string(),
        previous_retention: snaps
            .iter()
            .map(|s| (s.snapshot_id.clone(), s.retention_until))
            .collect(),
    };
    let v = serde_json::to_value(&record).map_err(|e| HoldError::BadRecord {
        saga_id: saga_id.to_string(),
        reason: e.to_string(),
    })?;
    // The record first (atomically, one winner), then the snapshots: an
    // interrupted placement leaves a hold whose retentions `reassert`
    // (run by gc) finishes clearing.
    if !store.insert_meta(KIND, saga_id, &v).await? {
        return Err(match get(store.as_ref(), saga_id).await? {
            Some(h) => HoldError::AlreadyHeld {
                saga_id: saga_id.to_string(),
                placed_at: h.placed_at,
                placed_by: h.placed_by,
                reason: h.reason,
            },
            None => HoldError::NotHeld {
                saga_id: saga_id.to_string(),
            },
        });
    }
    let held: Vec<Snapshot> = snaps
        .into_iter()
        .filter(|s| s.retention_until.is_some())
        .map(|mut s| {
            s.retention_until = None;
            s
        })
        .collect();
    raw.save_snapshots(&held).await?;
    let mut ev = AuditEvent::new(actor, "hold.place");
    ev.saga_id = Some(saga_id.to_string());
    ev.reason = Some(reason.to_string());
    ev.details = serde_json::json!({ "snapshots": record.previous_retention.len() });
    audit::append(store.as_ref(), &ev).await?;
    Ok(record)
}

/// Releases a saga's legal hold: puts back each snapshot's previous
/// retention, deletes the record and writes an audit event. Snapshots
/// taken while the hold stood keep the retention they were written with.
pub async fn release(
    store: &Arc<dyn SnapshotStore>,
    saga_id: &str,
    actor: &str,
    reason: &str,
) -> Result<HoldRecord, HoldError> {
    let Some(record) = get(store.as_ref(), saga_id).await? else {
        return Err(HoldError::NotHeld {
            saga_id: saga_id.to_string(),
        });
    };
    let raw = store::unmasked(store);
    let restored: Vec<Snapshot> = snapshots_of(raw.as_ref(), saga_id)
        .await?
        .into_iter()
        .filter_map(|mut s| {
            let prev = record.previous_retention.get(&s.snapshot_id)?;
            (s.retention_until != *prev).then(|| {
                s.retention_until = *prev;
                s
            })
        })
        .collect();
    raw.save_snapshots(&restored).await?;
    store.delete_meta(KIND, saga_id).await?;
    let mut ev = AuditEvent::new(actor, "hold.release");
    ev.saga_id = Some(saga_id.to_string());
    ev.reason = Some(reason.to_string());
    ev.details = serde_json::json!({ "snapshots_restored": restored.len() });
    audit::append(store.as_ref(), &ev).await?;
    Ok(record)
}

/// Clears the retention of every held saga's snapshots that have one again
/// (taken after the hold, or left by an interrupted placement), recording
/// it in the hold so release restores it. Returns the holds in force. Run
/// before anything deletes by expiry.
pub async fn reassert(store: &Arc<dyn SnapshotStore>) -> Result<Vec<HoldRecord>, HoldError> {
    let raw = store::unmasked(store);
    let mut holds = list(store.as_ref()).await?;
    for h in &mut holds {
        let expiring: Vec<Snapshot> = snapshots_of(raw.as_ref(), &h.saga_id)
            .await?
            .into_iter()
            .filter(|s| s.retention_until.is_some())
            .collect();
        if expiring.is_empty() {
            continue;
        }
        for s in &expiring {
            h.previous_retention
                .entry(s.snapshot_id.clone())
                .or_insert(s.retention_until);
        }
        let v = serde_json::to_value(&*h).map_err(|e| HoldError::BadRecord {
            saga_id: h.saga_id.clone(),
            reason: e.to_string(),
        })?;
        store.put_meta(KIND, &h.saga_id, &v).await?;
        let cleared: Vec<Snapshot> = expiring
            .into_iter()
            .map(|mut s| {
                s.retention_until = None;
                s
            })
            .collect();
        raw.save_snapshots(&cleared).await?;
    }
    Ok(holds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SagaStatus;
    use crate::store::memory::MemoryStore;

    fn saga(n: i64) -> Vec<Snapshot> {
        let id = uuid::Uuid::new_v4().to_string();
        (0..n)
            .map(|i| {
                let mut s = Snapshot::new(
                    &id,
                    "Payments",
                    format!("step{i}"),
                    i,
                    SagaStatus::Executing,
                    serde_json::Map::new(),
                    vec![],
                );
                s.created_at = Timestamp::from_micros(1_000_000 * (i + 1)).unwrap();
                s.retention_until = (i != 1).then(|| s.created_at.plus_micros(10));
                s
            })
            .collect()
    }

    #[tokio::test]
    async fn a_hold_survives_expiry_and_release_restores_each_retention() {
        let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
        let held = saga(3);
        let other = saga(2);
        store.save_snapshots(&held).await.unwrap();
        store.save_snapshots(&other).await.unwrap();
        let id = held[0].saga_id.clone();

        let h = place(&store, &id, "alice", "case 7").await.unwrap();
        assert_eq!(h.previous_retention.len(), 3);
        assert_eq!(get(store.as_ref(), &id).await.unwrap(), Some(h.clone()));
        assert!(matches!(
            place(&store, &id, "bob", "again").await,
            Err(HoldError::AlreadyHeld { placed_by, .. }) if placed_by == "alice"
        ));
        let msg = refusal(&id, &h);
        assert!(
            msg.contains(&id) && msg.contains("alice") && msg.contains("case 7"),
            "{msg}"
        );

        // A snapshot written after the hold, with an expiry of its own.
        let mut late = held[2].clone();
        late.snapshot_id = uuid::Uuid::new_v4().to_string();
        late.step_name = "late".into();
        late.retention_until = Some(Timestamp::from_micros(5).unwrap());
        store.save_snapshot(&late).await.unwrap();
        assert_eq!(reassert(&store).await.unwrap().len(), 1);

        let far = Timestamp::from_micros(i64::MAX / 2).unwrap();
        assert_eq!(
            store.delete_expired(far).await.unwrap(),
            1,
            "only the unheld saga's"
        );
        assert_eq!(store.count_snapshots(&id).await.unwrap(), 4);

        release(&store, &id, "alice", "closed").await.unwrap();
        for s in held.iter().chain([&late]) {
            let now = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
            assert_eq!(now.retention_until, s.retention_until, "{}", s.step_name);
        }
        assert!(get(store.as_ref(), &id).await.unwrap().is_none());
        assert!(matches!(
            release(&store, &id, "alice", "twice").await,
            Err(HoldError::NotHeld { .. })
        ));
        let actions: Vec<String> = audit::list(store.as_ref(), None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, ["hold.place", "hold.release"]);
        assert!(matches!(
            place(&store, "no-such-saga", "alice", "x").await,
            Err(HoldError::NoSuchSaga { .. })
        ));
    }
}
