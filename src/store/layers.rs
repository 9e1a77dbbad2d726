//! Layers that wrap any store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{ReplayLog, SagaSummary, Snapshot, Timestamp};

use super::*;

/// Refuses every write, for auditors (`--readonly`). Reads pass through.
#[derive(Debug)]
pub struct ReadOnlyStore {
    inner: Arc<dyn SnapshotStore>,
}

impl ReadOnlyStore {
    /// Wraps `inner`: reads pass through, every write (and taking a lock)
    /// fails with [`StoreError::PermissionDenied`].
    pub fn new(inner: Arc<dyn SnapshotStore>) -> Self {
        ReadOnlyStore { inner }
    }

    fn refuse<T>(&self) -> StoreResult<T> {
        Err(StoreError::PermissionDenied {
            url: self.inner.location(),
            reason: "the store is open read-only (--readonly or `readonly = true` in the config)"
                .into(),
        })
    }
}

#[async_trait]
impl SnapshotStore for ReadOnlyStore {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn unmasked(&self) -> Option<Arc<dyn SnapshotStore>> {
        self.inner
            .unmasked()
            .map(|s| Arc::new(ReadOnlyStore::new(s)) as Arc<dyn SnapshotStore>)
    }
    async fn save_snapshot(&self, _s: &Snapshot) -> StoreResult<()> {
        self.refuse()
    }
    async fn save_snapshots(&self, _s: &[Snapshot]) -> StoreResult<()> {
        self.refuse()
    }
    async fn get_snapshot(&self, id: &str) -> StoreResult<Option<Snapshot>> {
        self.inner.get_snapshot(id).await
    }
    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        self.inner.latest_snapshot(saga_id, step).await
    }
    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        self.inner.snapshot_at(saga_id, at).await
    }
    async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        self.inner.list_snapshots(saga_id, q).await
    }
    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        self.inner.count_snapshots(saga_id).await
    }
    async fn delete_snapshot(&self, _id: &str) -> StoreResult<bool> {
        self.refuse()
    }
    async fn delete_saga(&self, _id: &str) -> StoreResult<u64> {
        self.refuse()
    }
    async fn delete_expired(&self, _now: Timestamp) -> StoreResult<u64> {
        self.refuse()
    }
    async fn save_replay(&self, _log: &ReplayLog) -> StoreResult<()> {
        self.refuse()
    }
    async fn delete_replay(&self, _id: &str) -> StoreResult<bool> {
        self.refuse()
    }
    async fn save_replays(&self, _logs: &[ReplayLog]) -> StoreResult<()> {
        self.refuse()
    }
    async fn latest_snapshots_for_step(
        &self,
        saga_ids: &[String],
        step: &str,
    ) -> StoreResult<Listing<Snapshot>> {
        self.inner.latest_snapshots_for_step(saga_ids, step).await
    }
    async fn get_replay(&self, id: &str) -> StoreResult<Option<ReplayLog>> {
        self.inner.get_replay(id).await
    }
    async fn snapshots_of_sagas(&self, ids: &[String]) -> StoreResult<Listing<Snapshot>> {
        self.inner.snapshots_of_sagas(ids).await
    }
    async fn replays_of_sagas(&self, ids: &[String]) -> StoreResult<Listing<ReplayLog>> {
        self.inner.replays_of_sagas(ids).await
    }
    async fn list_replays(
        &self,
        saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        self.inner.list_replays(saga_id, limit).await
    }
    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        self.inner.replay_producing(new_saga_id).await
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
        let mut h = self.inner.health().await?;
        h.notes.push("read-only".into());
        Ok(h)
    }
    async fn try_lock(&self, _n: &str, _o: &str, _t: Duration) -> StoreResult<LockOutcome> {
        self.refuse()
    }
    async fn unlock(&self, _n: &str, _o: &str) -> StoreResult<()> {
        self.refuse()
    }
    async fn put_meta(&self, _k: &str, _key: &str, _v: &serde_json::Value) -> StoreResult<()> {
        self.refuse()
    }
    async fn insert_meta(&self, _k: &str, _key: &str, _v: &serde_json::Value) -> StoreResult<bool> {
        self.refuse()
    }
    async fn get_meta(&self, kind: &str, key: &str) -> StoreResult<Option<serde_json::Value>> {
        self.inner.get_meta(kind, key).await
    }
    async fn list_meta(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        self.inner.list_meta(kind, after, limit).await
    }
    async fn delete_meta(&self, _k: &str, _key: &str) -> StoreResult<bool> {
        self.refuse()
    }
    async fn reindex(&self) -> StoreResult<Option<ReindexReport>> {
        Err(StoreError::PermissionDenied {
            url: self.inner.location(),
            reason: "reindex writes sagascope's index; run it without --readonly".into(),
        })
    }
}
