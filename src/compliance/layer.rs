//! [`ComplianceStore`]: the protection layer over any store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{mask, Compliance, ComplianceError};
use crate::model::{ReplayLog, SagaSummary, Snapshot, Timestamp};
use crate::store::{
    BadEntry, Capabilities, Health, Listing, LockOutcome, ReindexReport, SagaFilter, SagaPage,
    SagaPageRequest, SnapshotQuery, SnapshotStore, StoreResult,
};

/// Encrypts sensitive values and applies retention on the way in; decrypts
/// and (unless revealed) masks on the way out. Everything else passes
/// through.
#[derive(Debug, Clone)]
pub struct ComplianceStore {
    inner: Arc<dyn SnapshotStore>,
    policy: Arc<Compliance>,
    reveal: bool,
    /// Set on a store opened to reveal: every saga read is audited first.
    audit: Option<Arc<super::RevealAudit>>,
}

impl ComplianceStore {
    /// Wraps `inner` with `policy`; reads are masked.
    pub fn new(inner: Arc<dyn SnapshotStore>, policy: Arc<Compliance>) -> Self {
        ComplianceStore {
            inner,
            policy,
            reveal: false,
            audit: None,
        }
    }

    /// Wraps `inner` with `policy`; reads are revealed, each saga's
    /// reveal recorded in the audit log by `audit` before its values are
    /// handed out (a read fails when the event cannot be written).
    /// Ciphertexts without their key show as `🔒`.
    pub fn revealing(
        inner: Arc<dyn SnapshotStore>,
        policy: Arc<Compliance>,
        audit: Arc<super::RevealAudit>,
    ) -> Self {
        ComplianceStore {
            inner,
            policy,
            reveal: true,
            audit: Some(audit),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<Compliance> {
        &self.policy
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<dyn SnapshotStore> {
        &self.inner
    }

    /// Whether a write changes anything beyond the masked-value check: a
    /// retention rule or a key. With neither (the usual case of a store
    /// opened without `[compliance]`), a snapshot is saved as given,
    /// without a copy.
    fn rewrites(&self) -> bool {
        self.policy.encryption.is_some() || !self.policy.retention.is_empty()
    }

    /// Refuses a snapshot that holds a masked value.
    fn refuse_masked(s: &Snapshot) -> Result<(), ComplianceError> {
        match mask::first_masked(s) {
            Some(path) => Err(ComplianceError::Refused(format!(
                "refusing to write snapshot {} of saga {}: its value at {path} is masked, not \
                 the data (the command read it masked; read it unmasked to write it back)",
                s.snapshot_id, s.saga_id
            ))),
            None => Ok(()),
        }
    }

    /// What a write goes through: refuses masked values, applies
    /// retention, encrypts.
    async fn protect(&self, s: &Snapshot) -> Result<Snapshot, ComplianceError> {
        Self::refuse_masked(s)?;
        let mut s = s.clone();
        self.policy.retention.apply(&mut s);
        if let Some(enc) = &self.policy.encryption {
            let patterns: Vec<_> = self
                .policy
                .sensitive
                .for_saga(&s.saga_name)
                .cloned()
                .collect();
            enc.encrypt_snapshot(&mut s, patterns.iter()).await?;
        }
        Ok(s)
    }

    /// What a read goes through: decrypts (missing keys leave the
    /// ciphertext, shown as 🔒), then masks unless revealed.
    async fn open(&self, mut s: Snapshot) -> Result<Snapshot, ComplianceError> {
        if let Some(enc) = &self.policy.encryption {
            enc.decrypt_snapshot(&mut s).await?;
        }
        if let Some(audit) = &self.audit {
            audit
                .record(self.inner.as_ref(), &self.policy.sensitive, &s)
                .await?;
            mask::lock_ciphertexts(&mut s.context);
        } else if self.policy.mask && !self.reveal {
            mask::mask_snapshot(&self.policy.sensitive, &mut s);
        }
        Ok(s)
    }

    /// A replay log as a read shows it: its override masked unless
    /// revealed (with every saga name's patterns).
    fn open_log(&self, mut log: ReplayLog) -> ReplayLog {
        if self.policy.mask && !self.reveal {
            mask::mask_replay_log(&self.policy.sensitive, &mut log);
        }
        log
    }

    fn open_logs(&self, l: Listing<ReplayLog>) -> Listing<ReplayLog> {
        Listing {
            items: l.items.into_iter().map(|g| self.open_log(g)).collect(),
            ..l
        }
    }

    async fn open_opt(&self, s: Option<Snapshot>) -> StoreResult<Option<Snapshot>> {
        Ok(match s {
            Some(s) => Some(self.open(s).await?),
            None => None,
        })
    }

    /// Opens each item; one that fails becomes an unreadable entry where
    /// it stood, so a listing goes on around it.
    /// A reveal that cannot be audited fails the whole read instead.
    async fn open_listing(&self, l: Listing<Snapshot>) -> StoreResult<Listing<Snapshot>> {
        // Items are moved through, not copied; unreadable entries keep
        // their places (as `Listing::in_order` reads them).
        let Listing {
            items,
            bad,
            next,
            bad_at,
        } = l;
        let mut out = Listing {
            next,
            ..Listing::default()
        };
        let placed = bad_at.len();
        let mut bad = bad.into_iter().enumerate().peekable();
        for (i, s) in items.into_iter().enumerate() {
            while let Some((_, b)) = bad.next_if(|(k, _)| *k < placed && bad_at[*k] <= i) {
                out.push_bad(b);
            }
            let (key, saga_id) = (s.snapshot_id.clone(), s.saga_id.clone());
            match self.open(s).await {
                Ok(s) => out.items.push(s),
                Err(err @ ComplianceError::Refused(_)) if self.audit.is_some() => {
                    return Err(err.into())
                }
                Err(err) => out.push_bad(BadEntry {
                    key,
                    saga_id: Some(saga_id),
                    error: err.to_string(),
                }),
            }
        }
        bad.for_each(|(_, b)| out.push_bad(b));
        Ok(out)
    }

    /// A replay log on its way in: the leaves of its override that any
    /// sensitive pattern covers are encrypted (a log does not say its
    /// saga's name, so every saga name's patterns apply).
    async fn protect_replay(&self, log: &ReplayLog) -> Result<ReplayLog, ComplianceError> {
        let mut log = log.clone();
        if let Some(enc) = &self.policy.encryption {
            let patterns: Vec<_> = self.policy.sensitive.all().cloned().collect();
            enc.encrypt_replay(&mut log, patterns.iter()).await?;
        }
        Ok(log)
    }

    /// A replay log on its way out: its override decrypted where the key
    /// is configured.
    async fn open_replay(&self, mut log: ReplayLog) -> Result<ReplayLog, ComplianceError> {
        if let Some(enc) = &self.policy.encryption {
            enc.decrypt_replay(&mut log).await?;
        }
        Ok(self.open_log(log))
    }

    async fn open_replay_opt(&self, log: Option<ReplayLog>) -> StoreResult<Option<ReplayLog>> {
        Ok(match log {
            Some(l) => Some(self.open_replay(l).await?),
            None => None,
        })
    }

    /// [`ComplianceStore::open_listing`] for replay logs.
    async fn open_replay_listing(&self, l: Listing<ReplayLog>) -> Listing<ReplayLog> {
        if self.policy.encryption.is_none() {
            return self.open_logs(l);
        }
        let mut out = Listing {
            next: l.next.clone(),
            ..Listing::default()
        };
        for e in l.in_order() {
            match e {
                Ok(log) => match self.open_replay(log.clone()).await {
                    Ok(log) => out.items.push(log),
                    Err(err) => out.push_bad(BadEntry {
                        key: log.replay_id.clone(),
                        saga_id: Some(log.original_saga_id.clone()),
                        error: err.to_string(),
                    }),
                },
                Err(b) => out.push_bad(b.clone()),
            }
        }
        out
    }
}

/// A replay log whose override was read masked is not written back.
fn refuse_masked_log(log: &ReplayLog) -> Result<(), ComplianceError> {
    if let Some(Value::Object(m)) = &log.context_override {
        if let Some(path) = mask::first_masked_in(m) {
            return Err(ComplianceError::Refused(format!(
                "refusing to write replay log {} of saga {}: its override at {path} is masked, \
                 not the data (read it unmasked to write it back)",
                log.replay_id, log.original_saga_id
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl SnapshotStore for ComplianceStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn unmasked(&self) -> Option<Arc<dyn SnapshotStore>> {
        Some(Arc::new(ComplianceStore {
            reveal: true,
            audit: None,
            ..self.clone()
        }))
    }
    async fn save_snapshot(&self, s: &Snapshot) -> StoreResult<()> {
        if !self.rewrites() {
            Self::refuse_masked(s)?;
            return self.inner.save_snapshot(s).await;
        }
        let s = self.protect(s).await?;
        self.inner.save_snapshot(&s).await
    }
    async fn save_snapshots(&self, snaps: &[Snapshot]) -> StoreResult<()> {
        if !self.rewrites() {
            for s in snaps {
                Self::refuse_masked(s)?;
            }
            return self.inner.save_snapshots(snaps).await;
        }
        let mut out = Vec::with_capacity(snaps.len());
        for s in snaps {
            out.push(self.protect(s).await?);
        }
        self.inner.save_snapshots(&out).await
    }
    async fn get_snapshot(&self, id: &str) -> StoreResult<Option<Snapshot>> {
        let s = self.inner.get_snapshot(id).await?;
        self.open_opt(s).await
    }
    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let s = self.inner.latest_snapshot(saga_id, step).await?;
        self.open_opt(s).await
    }
    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        let s = self.inner.snapshot_at(saga_id, at).await?;
        self.open_opt(s).await
    }
    async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        let l = self.inner.list_snapshots(saga_id, q).await?;
        self.open_listing(l).await
    }
    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        self.inner.count_snapshots(saga_id).await
    }
    async fn delete_snapshot(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_snapshot(id).await
    }
    async fn delete_saga(&self, id: &str) -> StoreResult<u64> {
        self.inner.delete_saga(id).await
    }
    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        self.inner.delete_expired(now).await
    }
    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        refuse_masked_log(log)?;
        let log = self.protect_replay(log).await?;
        self.inner.save_replay(&log).await
    }
    async fn save_replays(&self, logs: &[ReplayLog]) -> StoreResult<()> {
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            refuse_masked_log(log)?;
            out.push(self.protect_replay(log).await?);
        }
        self.inner.save_replays(&out).await
    }
    async fn delete_replay(&self, id: &str) -> StoreResult<bool> {
        self.inner.delete_replay(id).await
    }
    async fn latest_snapshots_for_step(
        &self,
        saga_ids: &[String],
        step: &str,
    ) -> StoreResult<Listing<Snapshot>> {
        let l = self.inner.latest_snapshots_for_step(saga_ids, step).await?;
        self.open_listing(l).await
    }
    async fn get_replay(&self, id: &str) -> StoreResult<Option<ReplayLog>> {
        let log = self.inner.get_replay(id).await?;
        self.open_replay_opt(log).await
    }
    async fn snapshots_of_sagas(&self, ids: &[String]) -> StoreResult<Listing<Snapshot>> {
        let l = self.inner.snapshots_of_sagas(ids).await?;
        self.open_listing(l).await
    }
    async fn replays_of_sagas(&self, ids: &[String]) -> StoreResult<Listing<ReplayLog>> {
        let l = self.inner.replays_of_sagas(ids).await?;
        Ok(self.open_replay_listing(l).await)
    }
    async fn list_replays(
        &self,
        saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let l = self.inner.list_replays(saga_id, limit).await?;
        Ok(self.open_replay_listing(l).await)
    }
    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        let log = self.inner.replay_producing(new_saga_id).await?;
        self.open_replay_opt(log).await
    }
    async fn list_sagas(&self, f: &SagaFilter, p: &SagaPageRequest) -> StoreResult<SagaPage> {
        self.inner.list_sagas(f, p).await
    }
    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        self.inner.saga_summary(saga_id).await
    }
    async fn count_sagas(&self, f: &SagaFilter) -> StoreResult<u64> {
        self.inner.count_sagas(f).await
    }
    async fn health(&self) -> StoreResult<Health> {
        self.inner.health().await
    }
    async fn try_lock(&self, n: &str, o: &str, t: Duration) -> StoreResult<LockOutcome> {
        self.inner.try_lock(n, o, t).await
    }
    async fn unlock(&self, n: &str, o: &str) -> StoreResult<()> {
        self.inner.unlock(n, o).await
    }
    async fn reindex(&self) -> StoreResult<Option<ReindexReport>> {
        self.inner.reindex().await
    }
    async fn put_meta(&self, kind: &str, key: &str, v: &Value) -> StoreResult<()> {
        self.inner.put_meta(kind, key, v).await
    }
    async fn insert_meta(&self, kind: &str, key: &str, v: &Value) -> StoreResult<bool> {
        self.inner.insert_meta(kind, key, v).await
    }
    async fn get_meta(&self, kind: &str, key: &str) -> StoreResult<Option<Value>> {
        self.inner.get_meta(kind, key).await
    }
    async fn list_meta(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Value)>> {
        self.inner.list_meta(kind, after, limit).await
    }
    async fn delete_meta(&self, kind: &str, key: &str) -> StoreResult<bool> {
        self.inner.delete_meta(kind, key).await
    }
}
