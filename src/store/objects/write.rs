//! Saves, deletes, expiry (gc), the replay log and locks.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::model::{ReplayLog, Snapshot, Timestamp};

use super::super::*;
use super::conn::backoff;
use super::schema::{
    ascii_meta, check_id, compact, id_ok, marker_key, parse_small, parse_snapshot_marker, sortable,
    Flavor, Pointer, MARKERS, POINTERS, REPLAYS_BY_NEW, REPLAYS_BY_ORIGINAL,
};
use super::{ObjectStore, PutMeta, CAS_ATTEMPTS, PARALLEL, SAGAZ_INDEX_CAP};

impl ObjectStore {
    /// Writes one snapshot's object and sagascope's per-snapshot keys.
    /// Returns the saga it moved out of, if it moved.
    ///
    /// A new snapshot costs two writes on S3 (the object, created only if
    /// absent, and its marker); only a replaced one costs a read of what it
    /// replaces, to clean up the old marker.
    pub(super) async fn write_one(&self, s: &Snapshot) -> StoreResult<Option<String>> {
        let [ext, other_ext] = self.layout.snapshot_exts();
        let key = self.layout.snapshot_key(&s.saga_id, &s.snapshot_id, ext);
        let body = self.layout.data.encode(&s.to_json());
        let meta = self.snapshot_meta(s);
        let pointer = Pointer {
            saga_id: s.saga_id.clone(),
            created_at: s.created_at,
            retention_until: s.retention_until,
        };
        let old: Option<Pointer> = match self.layout.flavor {
            Flavor::S3 => {
                if self
                    .driver
                    .put_if(&key, body.clone(), None, &meta)
                    .await?
                    .is_some()
                {
                    None
                } else {
                    let old = self.driver.get(&key).await?.and_then(|o| {
                        let v = self.layout.data.decode(&o.bytes).ok()?;
                        let old = Snapshot::from_json(v).ok()?;
                        Some(Pointer {
                            saga_id: old.saga_id,
                            created_at: old.created_at,
                            retention_until: old.retention_until,
                        })
                    });
                    self.driver.put(&key, body, &meta).await?;
                    // Whatever it was, drop a copy under the other suffix.
                    let other = self
                        .layout
                        .snapshot_key(&s.saga_id, &s.snapshot_id, other_ext);
                    self.driver.delete(&other).await?;
                    old
                }
            }
            Flavor::Folder => {
                // Local reads are cheap, and a read-then-write needs no lock.
                let old = self.read_pointer(&s.snapshot_id).await?;
                self.driver.put(&key, body, &meta).await?;
                let pkey = format!("{POINTERS}{}.json", s.snapshot_id);
                self.driver
                    .put(&pkey, compact(&pointer.to_json()), &PutMeta::default())
                    .await?;
                if old.is_some() {
                    let other = self
                        .layout
                        .snapshot_key(&s.saga_id, &s.snapshot_id, other_ext);
                    self.driver.delete(&other).await?;
                }
                old
            }
        };
        let marker =
            json!({"snapshot_id": s.snapshot_id, "created_at": s.created_at.to_isoformat()});
        let new_marker = marker_key(&s.saga_id, s.created_at, s.retention_until, &s.snapshot_id);
        self.driver
            .put(&new_marker, compact(&marker), &PutMeta::default())
            .await?;
        let Some(old) = old else { return Ok(None) };
        let old_marker = marker_key(
            &old.saga_id,
            old.created_at,
            old.retention_until,
            &s.snapshot_id,
        );
        if old_marker != new_marker {
            self.driver.delete(&old_marker).await?;
        }
        if old.saga_id == s.saga_id {
            return Ok(None);
        }
        if self.layout.flavor == Flavor::Folder {
            for e in self.layout.snapshot_exts() {
                self.driver
                    .delete(&self.layout.snapshot_key(&old.saga_id, &s.snapshot_id, e))
                    .await?;
            }
        }
        Ok(Some(old.saga_id))
    }

    /// Adds and removes entries in sagaz's index object by compare-and-swap.
    pub(super) async fn update_sagaz_index(
        &self,
        saga_id: &str,
        add: &[(String, Timestamp)],
        remove: &HashSet<String>,
    ) -> StoreResult<()> {
        let key = self.layout.index_key(saga_id);
        for attempt in 0..CAS_ATTEMPTS {
            let current = self.driver.get(&key).await?;
            let mut entries: Vec<(String, String)> = match &current {
                Some(obj) => match self.layout.index.decode(&obj.bytes) {
                    Ok(v) => v
                        .get("snapshots")
                        .and_then(Value::as_array)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| {
                                    Some((
                                        i.get("snapshot_id")?.as_str()?.to_string(),
                                        i.get("created_at")?.as_str()?.to_string(),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    // A corrupt index is replaced: sagascope's markers
                    // still hold every entry it wrote.
                    Err(_) => vec![],
                },
                None => vec![],
            };
            let added: HashSet<&str> = add.iter().map(|(id, _)| id.as_str()).collect();
            entries.retain(|(id, _)| !remove.contains(id) && !added.contains(id.as_str()));
            entries.extend(add.iter().map(|(id, t)| (id.clone(), t.to_isoformat())));
            if entries.is_empty() && current.is_none() {
                return Ok(());
            }
            // sagaz sorts by the created_at string, newest first, and keeps
            // 1,000. A stable sort keeps equal strings in arrival order.
            entries.sort_by(|a, b| b.1.cmp(&a.1));
            entries.truncate(SAGAZ_INDEX_CAP);
            let ok = if entries.is_empty() {
                match &current {
                    Some(obj) => self.driver.delete_if(&key, &obj.etag).await?,
                    None => true,
                }
            } else {
                let doc = json!({
                    "saga_id": saga_id,
                    "snapshots": entries.iter().map(|(id, t)| json!({"snapshot_id": id, "created_at": t})).collect::<Vec<_>>(),
                });
                let meta = PutMeta {
                    content_type: Some("application/json"),
                    ..PutMeta::default()
                };
                self.driver
                    .put_if(
                        &key,
                        self.layout.index.encode(&doc),
                        current.as_ref().map(|o| o.etag.as_str()),
                        &meta,
                    )
                    .await?
                    .is_some()
            };
            if ok {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(self.contention(&key))
    }

    pub(super) async fn save_batch(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        for s in snapshots {
            check_id("saga_id", &s.saga_id, self.backend())?;
            check_id("snapshot_id", &s.snapshot_id, self.backend())?;
        }
        // Last write wins within a batch, as it would one by one.
        let mut latest: BTreeMap<&str, &Snapshot> = BTreeMap::new();
        for s in snapshots {
            latest.insert(&s.snapshot_id, s);
        }
        let unique: Vec<Snapshot> = latest.into_values().cloned().collect();
        let moved: Vec<Option<String>> = futures::stream::iter(unique.clone())
            .map(|s| async move { self.write_one(&s).await })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        let mut by_saga: BTreeMap<String, Vec<Snapshot>> = BTreeMap::new();
        for s in &unique {
            by_saga
                .entry(s.saga_id.clone())
                .or_default()
                .push(s.clone());
        }
        let mut removals: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        for (s, from) in unique.iter().zip(moved) {
            if let Some(from) = from {
                removals
                    .entry(from)
                    .or_default()
                    .insert(s.snapshot_id.clone());
            }
        }
        for (saga, removed) in &removals {
            self.update_sagaz_index(saga, &[], removed).await?;
            self.refresh_summary(saga, &[]).await?;
        }
        futures::stream::iter(by_saga)
            .map(|(saga, snaps)| async move {
                let add: Vec<(String, Timestamp)> = snaps
                    .iter()
                    .map(|s| (s.snapshot_id.clone(), s.created_at))
                    .collect();
                self.update_sagaz_index(&saga, &add, &HashSet::new())
                    .await?;
                self.refresh_summary(&saga, &snaps).await?;
                Ok::<_, StoreError>(())
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Deletes a snapshot's objects and sagascope's keys for it (not the
    /// index entries: callers batch those). `markers` are the saga's marker
    /// keys for this id, if the caller listed them.
    pub(super) async fn remove_snapshot_keys(
        &self,
        saga_id: &str,
        snapshot_id: &str,
        markers: Option<Vec<String>>,
    ) -> StoreResult<()> {
        for ext in self.layout.snapshot_exts() {
            self.driver
                .delete(&self.layout.snapshot_key(saga_id, snapshot_id, ext))
                .await?;
        }
        let markers = match markers {
            Some(m) => m,
            None if id_ok(saga_id) => self
                .list_markers(saga_id)
                .await?
                .into_iter()
                .filter(|e| e.snapshot_id == snapshot_id)
                .filter_map(|e| e.marker)
                .collect(),
            None => vec![],
        };
        for m in markers {
            self.driver.delete(&m).await?;
        }
        if self.layout.flavor == Flavor::Folder {
            self.driver
                .delete(&format!("{POINTERS}{snapshot_id}.json"))
                .await?;
        }
        Ok(())
    }
}

pub(super) async fn delete_snapshot(this: &ObjectStore, snapshot_id: &str) -> StoreResult<bool> {
    let pointer = match this.layout.flavor {
        Flavor::Folder if id_ok(snapshot_id) => this.read_pointer(snapshot_id).await?,
        _ => None,
    };
    let found = this.locate(snapshot_id).await?;
    let saga = match (&found, &pointer) {
        (Some((_, Ok(s))), _) => Some(s.saga_id.clone()),
        (Some((saga, Err(_))), p) => saga.clone().or(p.as_ref().map(|p| p.saga_id.clone())),
        (None, Some(p)) => Some(p.saga_id.clone()),
        (None, None) => return Ok(false),
    };
    let saga = saga.unwrap_or_default();
    this.remove_snapshot_keys(&saga, snapshot_id, None).await?;
    if id_ok(&saga) {
        this.update_sagaz_index(&saga, &[], &HashSet::from([snapshot_id.to_string()]))
            .await?;
        this.refresh_summary(&saga, &[]).await?;
    }
    Ok(found.is_some())
}

pub(super) async fn delete_saga(this: &ObjectStore, saga_id: &str) -> StoreResult<u64> {
    if !id_ok(saga_id) {
        return Ok(0);
    }
    let (entries, _) = this.entries(saga_id).await?;
    let n = entries.len() as u64;
    futures::stream::iter(entries)
        .map(|e| async move {
            if this.layout.flavor == Flavor::Folder {
                // A pointer to another saga means the id was re-saved
                // there: only this saga's marker goes.
                let p = this.read_pointer(&e.snapshot_id).await?;
                if p.is_some_and(|p| p.saga_id != saga_id) {
                    if let Some(m) = &e.marker {
                        this.driver.delete(m).await?;
                    }
                    return Ok(());
                }
            }
            this.remove_snapshot_keys(
                saga_id,
                &e.snapshot_id,
                Some(e.marker.into_iter().collect()),
            )
            .await
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;
    this.driver.delete(&this.layout.index_key(saga_id)).await?;
    // Anything written meanwhile stays indexed: recompute rather than
    // delete the summary blindly.
    this.refresh_summary(saga_id, &[]).await?;
    Ok(n)
}

pub(super) async fn delete_expired(this: &ObjectStore, now: Timestamp) -> StoreResult<u64> {
    // Markers carry the retention: one listing finds what is due.
    let markers = this.driver.list(MARKERS).await?;
    let mut covered: HashSet<String> = HashSet::new();
    let mut due: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for l in &markers {
        let Some((saga, name)) = l.key.strip_prefix(MARKERS).and_then(|k| k.split_once('/')) else {
            continue;
        };
        let Some((_, retention, id)) = parse_snapshot_marker(name) else {
            continue;
        };
        covered.insert(id.clone());
        if retention.is_some_and(|r| r < now) {
            due.entry(saga.to_string())
                .or_default()
                .push((id, l.key.clone()));
        }
    }
    let mut deleted = 0u64;
    for (saga, items) in due {
        futures::stream::iter(items.iter().cloned())
            .map(|(id, marker)| {
                let saga = saga.clone();
                async move {
                    this.remove_snapshot_keys(&saga, &id, Some(vec![marker]))
                        .await
                }
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        let ids: HashSet<String> = items.into_iter().map(|(id, _)| id).collect();
        deleted += ids.len() as u64;
        this.update_sagaz_index(&saga, &[], &ids).await?;
        this.refresh_summary(&saga, &[]).await?;
    }
    // Snapshots sagaz wrote alone have no marker: read those.
    let objects = this.driver.list(this.layout.snapshot_dir()).await?;
    let mut unindexed: Vec<String> = vec![];
    for l in objects {
        let name = l.key.rsplit('/').next().unwrap_or_default();
        let id = name
            .strip_suffix(".json.zst")
            .or_else(|| name.strip_suffix(".json.gz"))
            .or_else(|| name.strip_suffix(".json"));
        if let Some(id) = id {
            if !covered.contains(id) {
                unindexed.push(id.to_string());
            }
        }
    }
    for id in unindexed {
        if let Some((_, Ok(s))) = this.locate(&id).await? {
            if s.is_expired_at(now) && this.delete_snapshot(&id).await? {
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}

pub(super) async fn save_replay(this: &ObjectStore, log: &ReplayLog) -> StoreResult<()> {
    check_id("replay_id", &log.replay_id, this.backend())?;
    check_id("original_saga_id", &log.original_saga_id, this.backend())?;
    check_id("new_saga_id", &log.new_saga_id, this.backend())?;
    let meta = PutMeta {
        metadata: vec![
            ("original_saga_id", ascii_meta(&log.original_saga_id)),
            ("created_at", log.created_at.to_isoformat()),
        ],
        ..PutMeta::default()
    };
    this.driver
        .put(
            &this.layout.replay_key(&log.replay_id),
            this.layout.data.encode(&log.to_json()),
            &meta,
        )
        .await?;
    let t = sortable(log.created_at);
    let body = compact(&json!({"replay_id": log.replay_id}));
    this.driver
        .put(
            &format!(
                "{REPLAYS_BY_ORIGINAL}{}/{t}_{}",
                log.original_saga_id, log.replay_id
            ),
            body.clone(),
            &PutMeta::default(),
        )
        .await?;
    this.driver
        .put(
            &format!("{REPLAYS_BY_NEW}{}/{t}_{}", log.new_saga_id, log.replay_id),
            body,
            &PutMeta::default(),
        )
        .await
}

pub(super) async fn delete_replay(this: &ObjectStore, replay_id: &str) -> StoreResult<bool> {
    if !id_ok(replay_id) {
        return Ok(false);
    }
    let key = this.layout.replay_key(replay_id);
    // Its index markers first, named by the log's own fields; a log that
    // cannot be read leaves markers that point at nothing, which readers
    // skip.
    let found = this.read_replay(replay_id).await;
    if let Ok(Some(log)) = &found {
        let t = sortable(log.created_at);
        this.driver
            .delete(&format!(
                "{REPLAYS_BY_ORIGINAL}{}/{t}_{replay_id}",
                log.original_saga_id
            ))
            .await?;
        this.driver
            .delete(&format!(
                "{REPLAYS_BY_NEW}{}/{t}_{replay_id}",
                log.new_saga_id
            ))
            .await?;
    }
    let existed = !matches!(found, Ok(None));
    this.driver.delete(&key).await?;
    Ok(existed)
}

pub(super) async fn try_lock(
    this: &ObjectStore,
    name: &str,
    owner: &str,
    ttl: Duration,
) -> StoreResult<LockOutcome> {
    let key = this.lock_key(name);
    for attempt in 0..CAS_ATTEMPTS {
        let now = Timestamp::now();
        let until = now.plus_micros(ttl.as_micros().min(i64::MAX as u128) as i64);
        let body = compact(&json!({"owner": owner, "until": until.to_isoformat()}));
        let current = this.driver.get(&key).await?;
        let expect = match &current {
            None => None,
            Some(obj) => {
                let held = parse_small(&obj.bytes).and_then(|v| {
                    let o = v.get("owner")?.as_str()?.to_string();
                    let u = Timestamp::parse(v.get("until")?.as_str()?).ok()?;
                    Some((o, u))
                });
                if let Some((o, u)) = held {
                    if o != owner && u > now {
                        return Ok(LockOutcome::Held { owner: o, until: u });
                    }
                }
                Some(obj.etag.as_str())
            }
        };
        if this
            .driver
            .put_if(&key, body, expect, &PutMeta::default())
            .await?
            .is_some()
        {
            return Ok(LockOutcome::Acquired);
        }
        backoff(attempt.min(3)).await;
    }
    Err(this.contention(&key))
}

pub(super) async fn unlock(this: &ObjectStore, name: &str, owner: &str) -> StoreResult<()> {
    let key = this.lock_key(name);
    for attempt in 0..CAS_ATTEMPTS {
        let Some(obj) = this.driver.get(&key).await? else {
            return Ok(());
        };
        let holder = parse_small(&obj.bytes)
            .and_then(|v| v.get("owner").and_then(Value::as_str).map(str::to_string));
        if holder.as_deref() != Some(owner) {
            return Ok(());
        }
        if this.driver.delete_if(&key, &obj.etag).await? {
            return Ok(());
        }
        backoff(attempt.min(3)).await;
    }
    Err(this.contention(&key))
}
