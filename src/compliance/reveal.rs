//! Revealing masked values: who may, and the audit event every reveal
//! leaves. A store opened to reveal ([`ComplianceStore::revealing`](super::ComplianceStore::revealing))
//! records, before it hands out a saga's values, one `reveal` audit event
//! per saga (and another if a later snapshot of it shows more sensitive
//! paths): who, when, which saga, which paths, why. If the event cannot be
//! written the read fails: nothing is revealed unaudited.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use super::audit::{self, AuditEvent};
use super::{mask, ComplianceError, SensitivePaths};
use crate::model::Snapshot;
use crate::store::{SnapshotStore, StoreError};

/// The permission check for revealing a saga's sensitive values. Access
/// control is not configured yet, so everyone may; once it is, this is
/// where the `reveal` permission is required.
pub fn can_reveal(actor: &str, saga_name: &str) -> Result<(), ComplianceError> {
    let _ = (actor, saga_name);
    Ok(())
}

/// Who reveals and why, and which sagas' paths were audited already.
#[derive(Debug)]
pub struct RevealAudit {
    actor: String,
    reason: String,
    audited: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl RevealAudit {
    /// A reveal by `actor` for `reason` (both recorded with every event).
    pub fn new(actor: impl Into<String>, reason: impl Into<String>) -> Self {
        RevealAudit {
            actor: actor.into(),
            reason: reason.into(),
            audited: Mutex::new(HashMap::new()),
        }
    }

    /// Who reveals.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Checks the permission and records the reveal of `s` (its context
    /// as decrypted, before it is shown) unless the same paths of its saga
    /// were recorded already. A snapshot without sensitive values reveals
    /// nothing and records nothing.
    pub async fn record(
        &self,
        store: &dyn SnapshotStore,
        sensitive: &SensitivePaths,
        s: &Snapshot,
    ) -> Result<(), ComplianceError> {
        let present = mask::sensitive_paths_present(sensitive, &s.saga_name, &s.context);
        if present.is_empty() {
            return Ok(());
        }
        can_reveal(&self.actor, &s.saga_name)?;
        let new = {
            let seen = self.audited.lock().unwrap_or_else(|e| e.into_inner());
            let before = seen.get(&s.saga_id);
            present
                .iter()
                .any(|p| !before.is_some_and(|b| b.contains(p)))
        };
        if !new {
            return Ok(());
        }
        let mut event = AuditEvent::new(self.actor.clone(), "reveal");
        event.saga_id = Some(s.saga_id.clone());
        event.paths = present.clone();
        event.reason = Some(self.reason.clone());
        event.details = serde_json::json!({"saga_name": s.saga_name});
        audit::append(store, &event).await.map_err(|e| {
            ComplianceError::Refused(match e {
                StoreError::Unsupported { .. } => format!(
                    "not revealing saga {}: this store cannot keep audit events ({e}), and \
                     nothing is revealed unaudited",
                    s.saga_id
                ),
                e => format!(
                    "not revealing saga {}: its audit event could not be written ({e})",
                    s.saga_id
                ),
            })
        })?;
        let mut seen = self.audited.lock().unwrap_or_else(|e| e.into_inner());
        seen.entry(s.saga_id.clone()).or_default().extend(present);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::compliance::{Compliance, ComplianceStore};
    use crate::model::{SagaStatus, Snapshot};
    use crate::store::memory::MemoryStore;

    fn policy() -> Arc<Compliance> {
        let table = [("OrderSaga".to_string(), vec!["customer.email".to_string()])]
            .into_iter()
            .collect();
        Arc::new(Compliance {
            sensitive: SensitivePaths::parse(&table).unwrap(),
            mask: true,
            ..Compliance::default()
        })
    }

    fn snap(saga: &str, email: &str) -> Snapshot {
        let ctx = json!({"customer": {"id": "C-1", "email": email}});
        Snapshot::new(
            saga,
            "OrderSaga",
            "charge",
            0,
            SagaStatus::Executing,
            ctx.as_object().unwrap().clone(),
            vec![],
        )
    }

    #[tokio::test]
    async fn reads_are_masked_the_unmasked_handle_has_the_values_and_masks_are_never_written() {
        let inner: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
        let store: Arc<dyn SnapshotStore> = Arc::new(ComplianceStore::new(inner.clone(), policy()));
        let s = snap("s1", "ann@example.com");
        store.save_snapshot(&s).await.unwrap();
        let masked = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
        assert!(mask::is_masked(&masked.context["customer"]["email"]));
        assert_eq!(masked.context["customer"]["id"], "C-1");
        let e = store.save_snapshot(&masked).await.unwrap_err().to_string();
        assert!(e.contains("customer.email") && e.contains("masked"), "{e}");
        assert!(!e.contains("ann@"), "{e}");
        let plain = crate::store::unmasked(&store);
        let v = plain.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
        assert_eq!(v.context["customer"]["email"], "ann@example.com");
        assert!(audit::list(inner.as_ref(), None, 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_revealing_store_audits_each_saga_once_before_handing_out_its_values() {
        let inner: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
        let a = snap("s1", "ann@example.com");
        let b = snap("s2", "bob@example.com");
        inner.save_snapshots(&[a.clone(), b.clone()]).await.unwrap();
        let audit = Arc::new(RevealAudit::new("ops", "ticket 7"));
        let store = ComplianceStore::revealing(inner.clone(), policy(), audit);
        for _ in 0..3 {
            let v = store.get_snapshot(&a.snapshot_id).await.unwrap().unwrap();
            assert_eq!(v.context["customer"]["email"], "ann@example.com");
        }
        store.get_snapshot(&b.snapshot_id).await.unwrap().unwrap();
        let events = audit::list(inner.as_ref(), None, 10).await.unwrap();
        let got: Vec<_> = events
            .iter()
            .map(|e| (e.action.as_str(), e.saga_id.as_deref(), e.paths.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("reveal", Some("s1"), vec!["customer.email".to_string()]),
                ("reveal", Some("s2"), vec!["customer.email".to_string()]),
            ]
        );
        assert!(events
            .iter()
            .all(|e| e.actor == "ops" && e.reason.as_deref() == Some("ticket 7")));
    }

    #[tokio::test]
    async fn a_reveal_the_store_cannot_audit_is_refused() {
        let mem: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
        let a = snap("s1", "ann@example.com");
        mem.save_snapshot(&a).await.unwrap();
        let ro: Arc<dyn SnapshotStore> = Arc::new(crate::store::ReadOnlyStore::new(mem));
        let audit = Arc::new(RevealAudit::new("ops", "why"));
        let store = ComplianceStore::revealing(ro, policy(), audit);
        let e = store
            .get_snapshot(&a.snapshot_id)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not revealing saga s1"), "{e}");
        assert!(!e.contains("ann@"), "{e}");
    }
}
