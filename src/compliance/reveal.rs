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
