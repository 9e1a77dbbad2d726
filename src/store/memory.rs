//! `memory://`: everything in process memory. For tests, demos and library
//! users who want no I/O. Unlike sagaz's in-memory store, snapshots are
//! stored by value, so a later change to a context never rewrites history.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::model::{ReplayLog, SagaSummary, Snapshot, Timestamp};

use super::*;

type Pos = (Timestamp, String);

#[derive(Debug, Default)]
struct Inner {
    snapshots: HashMap<String, Snapshot>,
    /// Per saga, snapshot positions in order.
    by_saga: HashMap<String, BTreeSet<Pos>>,
    replays: HashMap<String, ReplayLog>,
    locks: HashMap<String, (String, Timestamp)>,
    /// Records beside the snapshots, by kind, then key (bytewise order).
    meta: HashMap<String, BTreeMap<String, serde_json::Value>>,
}

impl Inner {
    fn summary(&self, saga_id: &str) -> Option<SagaSummary> {
        let positions = self.by_saga.get(saga_id)?;
        let first = positions.first()?;
        let last = positions.last()?;
        let latest = self.snapshots.get(&last.1)?;
        Some(SagaSummary {
            saga_id: saga_id.to_string(),
            saga_name: latest.saga_name.clone(),
            latest_status: latest.status.clone(),
            latest_step: latest.step_name.clone(),
            latest_step_index: latest.step_index,
            snapshot_count: positions.len() as u64,
            first_at: first.0,
            last_at: last.0,
        })
    }

    fn remove(&mut self, snapshot_id: &str) -> bool {
        let Some(old) = self.snapshots.remove(snapshot_id) else {
            return false;
        };
        if let Some(set) = self.by_saga.get_mut(&old.saga_id) {
            set.remove(&(old.created_at, old.snapshot_id.clone()));
            if set.is_empty() {
                self.by_saga.remove(&old.saga_id);
            }
        }
        true
    }

    fn insert(&mut self, s: &Snapshot) {
        self.remove(&s.snapshot_id);
        self.by_saga
            .entry(s.saga_id.clone())
            .or_default()
            .insert((s.created_at, s.snapshot_id.clone()));
        self.snapshots.insert(s.snapshot_id.clone(), s.clone());
    }
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store; everything in it is gone when it is dropped.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner half-updated in a
        // way that matters more than losing the store, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SnapshotStore for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: "memory",
            preserves_key_order: true,
            preserves_extra_fields: true,
            stores_external_refs: true,
            stores_nul_in_strings: true,
            indexed_saga_list: true,
            distributed_locks: false,
        }
    }

    fn location(&self) -> String {
        "memory://".into()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        self.lock().insert(snapshot);
        Ok(())
    }

    async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(snapshot_id).cloned())
    }

    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let g = self.lock();
        let Some(set) = g.by_saga.get(saga_id) else {
            return Ok(None);
        };
        Ok(set
            .iter()
            .rev()
            .filter_map(|(_, id)| g.snapshots.get(id))
            .find(|s| step.is_none_or(|st| s.step_name == st))
            .cloned())
    }

    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        let g = self.lock();
        let Some(set) = g.by_saga.get(saga_id) else {
            return Ok(None);
        };
        // Every id sorts after "", so (at, "\u{10ffff}") bounds all ids at `at`.
        let bound = (at, "\u{10ffff}".to_string());
        Ok(set
            .range(..=bound)
            .next_back()
            .and_then(|(_, id)| g.snapshots.get(id))
            .cloned())
    }

    async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        let g = self.lock();
        let Some(set) = g.by_saga.get(saga_id) else {
            return Ok(Listing::default());
        };
        let limit = q.limit.unwrap_or(usize::MAX);
        let iter: Box<dyn Iterator<Item = &Pos>> = match q.order {
            Order::Asc => Box::new(set.iter()),
            Order::Desc => Box::new(set.iter().rev()),
        };
        let items = iter
            .filter_map(|(_, id)| g.snapshots.get(id))
            .filter(|s| q.admits(s))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        Ok(Listing {
            items,
            ..Listing::default()
        }
        .cut(q.limit))
    }

    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        Ok(self
            .lock()
            .by_saga
            .get(saga_id)
            .map_or(0, |s| s.len() as u64))
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool> {
        Ok(self.lock().remove(snapshot_id))
    }

    async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64> {
        let mut g = self.lock();
        let ids: Vec<String> = g
            .by_saga
            .get(saga_id)
            .map(|s| s.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default();
        for id in &ids {
            g.remove(id);
        }
        Ok(ids.len() as u64)
    }

    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let mut g = self.lock();
        let ids: Vec<String> = g
            .snapshots
            .values()
            .filter(|s| s.is_expired_at(now))
            .map(|s| s.snapshot_id.clone())
            .collect();
        for id in &ids {
            g.remove(id);
        }
        Ok(ids.len() as u64)
    }

    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        self.lock()
            .replays
            .insert(log.replay_id.clone(), log.clone());
        Ok(())
    }

    async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
        Ok(self.lock().replays.get(replay_id).cloned())
    }

    async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let g = self.lock();
        let mut items: Vec<ReplayLog> = g
            .replays
            .values()
            .filter(|r| r.original_saga_id == original_saga_id)
            .cloned()
            .collect();
        super::entry::newest_replays_first(&mut items, limit);
        Ok(Listing {
            items,
            ..Listing::default()
        })
    }

    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        Ok(self
            .lock()
            .replays
            .values()
            .find(|r| r.new_saga_id == new_saga_id)
            .cloned())
    }

    async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage> {
        let g = self.lock();
        let all: Vec<SagaSummary> = g.by_saga.keys().filter_map(|id| g.summary(id)).collect();
        Ok(super::entry::saga_page(all, filter, page))
    }

    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        Ok(self.lock().summary(saga_id))
    }

    async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64> {
        let g = self.lock();
        Ok(g.by_saga
            .keys()
            .filter_map(|id| g.summary(id))
            .filter(|s| filter.matches(s))
            .count() as u64)
    }

    async fn health(&self) -> StoreResult<Health> {
        let start = Instant::now();
        let g = self.lock();
        Ok(Health {
            backend: "memory",
            url: "memory://".into(),
            reachable: true,
            latency: start.elapsed(),
            sagas: Some(g.by_saga.len() as u64),
            snapshots: Some(g.snapshots.len() as u64),
            replays: Some(g.replays.len() as u64),
            size_bytes: None,
            notes: vec!["in-process; nothing is kept after exit".into()],
        })
    }

    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome> {
        let mut g = self.lock();
        let now = Timestamp::now();
        if let Some((holder, until)) = g.locks.get(name) {
            if holder != owner && *until > now {
                return Ok(LockOutcome::Held {
                    owner: holder.clone(),
                    until: *until,
                });
            }
        }
        let until = now.plus_micros(ttl.as_micros() as i64);
        g.locks.insert(name.to_string(), (owner.to_string(), until));
        Ok(LockOutcome::Acquired)
    }

    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        let mut g = self.lock();
        if g.locks.get(name).is_some_and(|(h, _)| h == owner) {
            g.locks.remove(name);
        }
        Ok(())
    }
    async fn put_meta(&self, kind: &str, key: &str, value: &serde_json::Value) -> StoreResult<()> {
        let mut g = self.lock();
        g.meta
            .entry(kind.to_string())
            .or_default()
            .insert(key.to_string(), value.clone());
        Ok(())
    }

    async fn insert_meta(
        &self,
        kind: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> StoreResult<bool> {
        let mut g = self.lock();
        let records = g.meta.entry(kind.to_string()).or_default();
        if records.contains_key(key) {
            return Ok(false);
        }
        records.insert(key.to_string(), value.clone());
        Ok(true)
    }

    async fn get_meta(&self, kind: &str, key: &str) -> StoreResult<Option<serde_json::Value>> {
        Ok(self.lock().meta.get(kind).and_then(|m| m.get(key)).cloned())
    }

    async fn list_meta(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        use std::ops::Bound;
        let g = self.lock();
        let Some(records) = g.meta.get(kind) else {
            return Ok(Vec::new());
        };
        let from = match after {
            Some(a) => Bound::Excluded(a.to_string()),
            None => Bound::Unbounded,
        };
        Ok(records
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn delete_meta(&self, kind: &str, key: &str) -> StoreResult<bool> {
        Ok(self
            .lock()
            .meta
            .get_mut(kind)
            .is_some_and(|m| m.remove(key).is_some()))
    }
}
