//! Gets, listings and paging of snapshots and replays, and time travel.

use std::collections::{BTreeSet, HashSet};

use futures::StreamExt;
use serde_json::Value;

use crate::model::{ReplayLog, Snapshot, Timestamp};

use super::super::entry;
use super::super::*;
use super::schema::{
    id_ok, parse_marker_name, parse_small, parse_snapshot_marker, salvage_saga_id, Entry, Flavor,
    Pointer, SagazIndex, MARKERS, POINTERS, REPLAYS_BY_NEW, REPLAYS_BY_ORIGINAL,
};
use super::{ObjectStore, PARALLEL};

impl ObjectStore {
    /// Reads one snapshot object given its saga; `Ok(None)` if absent.
    pub(super) async fn read_snapshot(
        &self,
        saga_id: &str,
        snapshot_id: &str,
    ) -> Result<Option<Snapshot>, BadEntry> {
        for ext in self.layout.snapshot_exts() {
            let key = self.layout.snapshot_key(saga_id, snapshot_id, ext);
            let obj = self
                .driver
                .get(&key)
                .await
                .map_err(|e| self.bad_read(&key, Some(saga_id), e))?;
            if let Some(obj) = obj {
                return self
                    .decode_snapshot(&key, Some(saga_id), &obj.bytes)
                    .map(Some);
            }
        }
        Ok(None)
    }

    pub(super) async fn read_pointer(&self, snapshot_id: &str) -> StoreResult<Option<Pointer>> {
        let obj = self
            .driver
            .get(&format!("{POINTERS}{snapshot_id}.json"))
            .await?;
        Ok(obj
            .and_then(|o| parse_small(&o.bytes))
            .and_then(|v| Pointer::from_json(&v)))
    }

    pub(super) async fn read_sagaz_index(&self, saga_id: &str) -> StoreResult<SagazIndex> {
        let key = self.layout.index_key(saga_id);
        let obj = match self.driver.get(&key).await {
            Ok(Some(obj)) => obj,
            Ok(None) => return Ok(SagazIndex::default()),
            // Not a file, or over the cap: named, and the saga's markers
            // still list.
            Err(e @ StoreError::Corrupt { .. }) => {
                return Ok(SagazIndex {
                    bad: vec![self.bad_read(&key, Some(saga_id), e)],
                    ..SagazIndex::default()
                })
            }
            Err(e) => return Err(e),
        };
        let mut out = SagazIndex {
            etag: Some(obj.etag.clone()),
            ..SagazIndex::default()
        };
        match self.layout.index.decode(&obj.bytes) {
            Ok(v) => match v.get("snapshots").and_then(Value::as_array) {
                Some(items) => {
                    for item in items {
                        let id = item.get("snapshot_id").and_then(Value::as_str);
                        let at = item.get("created_at").and_then(Value::as_str);
                        if let (Some(id), Some(at)) = (id, at) {
                            out.entries.push((id.to_string(), at.to_string()));
                        }
                    }
                }
                None => {
                    out.bad
                        .push(self.bad(&key, Some(saga_id), "index has no `snapshots` array"))
                }
            },
            Err(e) => out.bad.push(self.bad(&key, Some(saga_id), e)),
        }
        Ok(out)
    }

    pub(super) async fn list_markers(&self, saga_id: &str) -> StoreResult<Vec<Entry>> {
        let prefix = format!("{MARKERS}{saga_id}/");
        Ok(self
            .driver
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|l| {
                let (created_at, retention_until, snapshot_id) =
                    parse_snapshot_marker(l.key.strip_prefix(&prefix)?)?;
                Some(Entry {
                    created_at,
                    snapshot_id,
                    marker: Some(l.key.clone()),
                    retention_until,
                })
            })
            .collect())
    }

    /// sagascope's markers merged with sagaz's index, oldest first.
    pub(super) async fn entries(&self, saga_id: &str) -> StoreResult<(Vec<Entry>, SagazIndex)> {
        if !id_ok(saga_id) {
            return Ok((vec![], SagazIndex::default()));
        }
        let (markers, sagaz) =
            futures::try_join!(self.list_markers(saga_id), self.read_sagaz_index(saga_id))?;
        let mut sagaz = sagaz;
        let merged = self.merge(saga_id, markers, &mut sagaz);
        Ok((merged, sagaz))
    }

    /// Reads entries in order, `limit` good snapshots at most, a few
    /// requests in flight.
    pub(super) async fn read_entries(
        &self,
        saga_id: &str,
        entries: Vec<Entry>,
        limit: usize,
        paged: bool,
        keep: impl Fn(&Snapshot) -> bool,
    ) -> Listing<Snapshot> {
        // Reading ahead more than the page needs only wastes requests,
        // unless `keep` may reject some.
        let width = if limit == 1 && entries.len() > 1 {
            4
        } else {
            PARALLEL.min(limit)
        };
        let mut out = Listing::default();
        if limit == 0 {
            return out;
        }
        // A file in this saga's folder that holds another saga's snapshot
        // is bad here, named, not passed over. (On S3 a snapshot object is
        // keyed by id alone: one re-saved under another saga leaves a stale
        // id in the old saga's index, which `keep` passes over.)
        let folder = self.layout.flavor == Flavor::Folder;
        let mut reads = futures::stream::iter(entries)
            .map(|e| async move {
                match self.read_snapshot(saga_id, &e.snapshot_id).await {
                    Ok(Some(s)) if folder && s.saga_id != saga_id => Err(BadEntry {
                        key: self.layout.snapshot_key(saga_id, &e.snapshot_id, ""),
                        saga_id: Some(saga_id.to_string()),
                        error: format!(
                            "filed under saga {saga_id} but holds a snapshot of saga {}",
                            s.saga_id
                        ),
                    }),
                    other => other,
                }
            })
            .buffered(width.max(1));
        // Past the limit, read on to the next kept snapshot: it says a next
        // page exists; bad entries before it belong to that page (see
        // `store::page_in_order`, the same rule).
        let mut pending = Vec::new();
        while let Some(r) = reads.next().await {
            match r {
                Ok(Some(s)) if keep(&s) => {
                    if out.items.len() >= limit {
                        out.next = out.items.last().map(SnapshotCursor::of);
                        return out;
                    }
                    out.items.push(s);
                    if !paged && out.items.len() >= limit {
                        return out;
                    }
                }
                Ok(_) => {}
                Err(b) if out.items.len() >= limit => pending.push(b),
                Err(b) => out.push_bad(b),
            }
        }
        for b in pending {
            out.push_bad(b);
        }
        out
    }

    /// Finds a snapshot without knowing its saga: pointer, direct key (S3),
    /// then a walk of sagaz's saga folders (folder store).
    pub(super) async fn locate(
        &self,
        snapshot_id: &str,
    ) -> StoreResult<Option<(Option<String>, Result<Snapshot, BadEntry>)>> {
        if !id_ok(snapshot_id) {
            return Ok(None);
        }
        let pointer = match self.layout.flavor {
            Flavor::Folder => self.read_pointer(snapshot_id).await?,
            Flavor::S3 => None,
        };
        if let Some(p) = pointer {
            match self.read_snapshot(&p.saga_id, snapshot_id).await {
                Ok(Some(s)) => return Ok(Some((Some(p.saga_id), Ok(s)))),
                Err(b) => return Ok(Some((Some(p.saga_id), Err(b)))),
                Ok(None) => {}
            }
        }
        match self.layout.flavor {
            Flavor::S3 => {
                for ext in self.layout.snapshot_exts() {
                    let key = self.layout.snapshot_key("", snapshot_id, ext);
                    if let Some(obj) = self.driver.get(&key).await? {
                        let r = self.decode_snapshot(&key, None, &obj.bytes);
                        let saga = match &r {
                            Ok(s) => Some(s.saga_id.clone()),
                            Err(_) => salvage_saga_id(&self.layout.data, &obj),
                        };
                        let r = r.map_err(|mut b| {
                            b.saga_id = saga.clone();
                            b
                        });
                        return Ok(Some((saga, r)));
                    }
                }
                Ok(None)
            }
            Flavor::Folder => {
                for saga in self.driver.list_dirs(self.layout.snapshot_dir()).await? {
                    match self.read_snapshot(&saga, snapshot_id).await {
                        Ok(Some(s)) => return Ok(Some((Some(saga), Ok(s)))),
                        Err(b) => return Ok(Some((Some(saga), Err(b)))),
                        Ok(None) => {}
                    }
                }
                Ok(None)
            }
        }
    }

    /// Merges sagascope's markers with sagaz's index; a marker wins for an
    /// id in both. Oldest first. An index entry whose time cannot be read is
    /// named as bad (under its snapshot's key) instead of being dropped.
    pub(super) fn merge(
        &self,
        saga_id: &str,
        markers: Vec<Entry>,
        sagaz: &mut SagazIndex,
    ) -> Vec<Entry> {
        let mut seen: HashSet<String> = markers.iter().map(|e| e.snapshot_id.clone()).collect();
        let mut all: BTreeSet<Entry> = markers.into_iter().collect();
        for (id, at) in &sagaz.entries {
            if !id_ok(id) || !seen.insert(id.clone()) {
                continue;
            }
            match Timestamp::parse(at) {
                Ok(t) => {
                    all.insert(Entry {
                        created_at: t,
                        snapshot_id: id.clone(),
                        marker: None,
                        retention_until: None,
                    });
                }
                Err(e) => {
                    let [ext, _] = self.layout.snapshot_exts();
                    sagaz.bad.push(self.bad(
                        &self.layout.snapshot_key(saga_id, id, ext),
                        Some(saga_id),
                        format!(
                            "sagaz's index {} lists it with {e}",
                            self.layout.index_key(saga_id)
                        ),
                    ));
                }
            }
        }
        all.into_iter().collect()
    }

    pub(super) async fn read_replay(&self, replay_id: &str) -> Result<Option<ReplayLog>, BadEntry> {
        let key = self.layout.replay_key(replay_id);
        let obj = self
            .driver
            .get(&key)
            .await
            .map_err(|e| self.bad_read(&key, None, e))?;
        let Some(obj) = obj else { return Ok(None) };
        // sagaz names compressed replay objects `.json` too: the codec sniffs.
        entry::decode_replay(&self.layout.data, &key, None, &obj.bytes).map(Some)
    }
}

fn query_range(entries: Vec<Entry>, q: &SnapshotQuery) -> Vec<Entry> {
    let mut v: Vec<Entry> = entries
        .into_iter()
        .filter(|e| {
            if q.since.is_some_and(|t| e.created_at < t)
                || q.until.is_some_and(|t| e.created_at > t)
            {
                return false;
            }
            match &q.after {
                None => true,
                Some(c) => {
                    let pos = (&e.created_at, &e.snapshot_id);
                    let cur = (&c.created_at, &c.snapshot_id);
                    match q.order {
                        Order::Asc => pos > cur,
                        Order::Desc => pos < cur,
                    }
                }
            }
        })
        .collect();
    if q.order == Order::Desc {
        v.reverse();
    }
    v
}

pub(super) async fn get_snapshot(
    this: &ObjectStore,
    snapshot_id: &str,
) -> StoreResult<Option<Snapshot>> {
    match this.locate(snapshot_id).await? {
        None => Ok(None),
        Some((_, Ok(s))) => Ok(Some(s)),
        Some((_, Err(entry))) => Err(StoreError::Corrupt { entry }),
    }
}

pub(super) async fn latest_snapshot(
    this: &ObjectStore,
    saga_id: &str,
    step: Option<&str>,
) -> StoreResult<Option<Snapshot>> {
    let (mut entries, _) = this.entries(saga_id).await?;
    entries.reverse();
    let l = this
        .read_entries(saga_id, entries, 1, false, |s| {
            step.is_none_or(|st| s.step_name == st)
        })
        .await;
    match (l.items.into_iter().next(), l.bad.into_iter().next()) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(entry)) if step.is_none() => Err(StoreError::Corrupt { entry }),
        _ => Ok(None),
    }
}

pub(super) async fn snapshot_at(
    this: &ObjectStore,
    saga_id: &str,
    at: Timestamp,
) -> StoreResult<Option<Snapshot>> {
    let (entries, _) = this.entries(saga_id).await?;
    let mut upto: Vec<Entry> = entries.into_iter().filter(|e| e.created_at <= at).collect();
    upto.reverse();
    let l = this
        .read_entries(saga_id, upto, 1, false, |s| s.created_at <= at)
        .await;
    match (l.items.into_iter().next(), l.bad.into_iter().next()) {
        (Some(s), _) => Ok(Some(s)),
        (None, Some(entry)) => Err(StoreError::Corrupt { entry }),
        _ => Ok(None),
    }
}

pub(super) async fn list_snapshots(
    this: &ObjectStore,
    saga_id: &str,
    q: &SnapshotQuery,
) -> StoreResult<Listing<Snapshot>> {
    let (entries, sagaz) = this.entries(saga_id).await?;
    let picked = query_range(entries, q);
    let mut out = this
        .read_entries(saga_id, picked, q.limit.unwrap_or(usize::MAX), true, |s| {
            s.saga_id == saga_id && q.admits(s)
        })
        .await;
    // Problems with sagaz's index are the saga's, not a page's: said once.
    if q.after.is_none() {
        out.bad.extend(sagaz.bad);
    }
    Ok(out)
}

pub(super) async fn count_snapshots(this: &ObjectStore, saga_id: &str) -> StoreResult<u64> {
    Ok(this.entries(saga_id).await?.0.len() as u64)
}

pub(super) async fn get_replay(
    this: &ObjectStore,
    replay_id: &str,
) -> StoreResult<Option<ReplayLog>> {
    if !id_ok(replay_id) {
        return Ok(None);
    }
    this.read_replay(replay_id)
        .await
        .map_err(|entry| StoreError::Corrupt { entry })
}

pub(super) async fn list_replays(
    this: &ObjectStore,
    original_saga_id: &str,
    limit: Option<usize>,
) -> StoreResult<Listing<ReplayLog>> {
    let mut out = Listing::default();
    if !id_ok(original_saga_id) {
        return Ok(out);
    }
    let (objects, indexed) = futures::try_join!(
        this.driver.list(this.layout.replay_dir()),
        this.driver.list(REPLAYS_BY_ORIGINAL)
    )?;
    let mut mine: Vec<String> = vec![];
    let mut covered: HashSet<String> = HashSet::new();
    let own_prefix = format!("{REPLAYS_BY_ORIGINAL}{original_saga_id}/");
    for l in &indexed {
        if let Some((_, id)) = l.key.rsplit('/').next().and_then(parse_marker_name) {
            if l.key.starts_with(&own_prefix) {
                mine.push(id.clone());
            }
            covered.insert(id);
        }
    }
    // Replays sagaz wrote have no marker: read them to find their saga.
    for l in &objects {
        if let Some(id) = l
            .key
            .strip_prefix(this.layout.replay_dir())
            .and_then(|k| k.strip_suffix(".json"))
        {
            if !covered.contains(id) && !id.contains('/') {
                mine.push(id.to_string());
            }
        }
    }
    let mut seen = HashSet::new();
    mine.retain(|id| seen.insert(id.clone()));
    let results: Vec<Result<Option<ReplayLog>, BadEntry>> = futures::stream::iter(mine)
        .map(|id| async move { this.read_replay(&id).await })
        .buffered(PARALLEL)
        .collect()
        .await;
    for r in results {
        match r {
            Ok(Some(log)) if log.original_saga_id == original_saga_id => out.items.push(log),
            Ok(_) => {}
            Err(b) => out.bad.push(b),
        }
    }
    entry::newest_replays_first(&mut out.items, limit);
    Ok(out)
}

pub(super) async fn replay_producing(
    this: &ObjectStore,
    new_saga_id: &str,
) -> StoreResult<Option<ReplayLog>> {
    if !id_ok(new_saga_id) {
        return Ok(None);
    }
    let prefix = format!("{REPLAYS_BY_NEW}{new_saga_id}/");
    let listed = this.driver.list(&prefix).await?;
    for l in listed.iter().rev() {
        if let Some((_, id)) = l.key.strip_prefix(&prefix).and_then(parse_marker_name) {
            match this.read_replay(&id).await {
                Ok(Some(log)) if log.new_saga_id == new_saga_id => return Ok(Some(log)),
                Ok(_) => {}
                Err(entry) => return Err(StoreError::Corrupt { entry }),
            }
        }
    }
    Ok(None)
}
