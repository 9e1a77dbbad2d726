//! The engine behind the two object-layout stores, S3 (`s3.rs`) and folder
//! (`fs.rs`): sagaz's layout of one object per snapshot, per-saga index
//! objects and replay objects, plus the index objects sagascope keeps
//! beside it so that no write ever has to rewrite a shared object to keep
//! its entry.
//!
//! A [`Driver`] knows how to get, put, conditionally put, delete and list
//! keys (S3 objects or files under a folder); a [`Layout`] knows sagaz's key
//! names and encodings for one backend. Everything else lives here once.
//!
//! What sagascope writes beside sagaz's objects, under `sagascope/` (inside
//! the S3 prefix, or the folder):
//!
//! | key | why |
//! |---|---|
//! | `sagascope/index/{saga_id}/{t}_{r}_{snapshot_id}` | one marker per snapshot; listing the saga's folder **is** its index, in order (`t` is `created_at`, `r` is `retention_until`, each as a 20-digit number that sorts as the time does). Writers never rewrite it, so concurrent writers cannot lose entries; it has no 1,000-entry cap; `delete_expired` finds what is due from one listing |
//! | `sagascope/ids/{snapshot_id}.json` | folder store only: which saga folder a snapshot lives in (`saga_id`, `created_at`, `retention_until`), so `get_snapshot` and deletes need no walk (S3 keys do not contain the saga) |
//! | `sagascope/sagas/{saga_id}.json` | the saga's summary (name, newest status/step, count, first/last time) for browsing without reading snapshots; it records the ETag of sagaz's index it was built against, so a saga sagaz wrote to later is noticed and re-summarised |
//! | `sagascope/replays/{original_saga_id}/{t}_{replay_id}`, `sagascope/replay-new/{new_saga_id}/{t}_{replay_id}` | replay index by original and by produced saga |
//! | `sagascope/locks/{name}.json` | named locks with owner and expiry |
//!
//! sagaz's own index object is still kept up to date on every save, so sagaz
//! reads what sagascope writes — but by compare-and-swap (an S3 conditional
//! write on the ETag, or the folder's OS lock), retried on conflict, so
//! sagascope writers do not lose each other's entries there either. It keeps
//! sagaz's 1,000-entry cap (sagaz's reader expects it); sagascope's markers
//! do not.
//!
//! Reads merge both indexes: sagascope's markers and sagaz's index entries
//! (data sagaz wrote alone has only the latter, and is summarised and
//! indexed for browsing the first time a writable store lists it). A
//! summary records the ETag of sagaz's index it was computed from, so
//! readers can tell a current one from a stale one (see
//! `refresh_summary`).
//!
//! Costs: a new snapshot is two writes on S3 (the object, created only if
//! absent, and its marker; three in a folder, with the id pointer), plus,
//! per saga and batch, one compare-and-swap of sagaz's index and one of the
//! summary. Listing a saga's snapshots is one listing per 1,000 plus one
//! read per snapshot returned. Listing sagas is two listings plus one read
//! per saga whose summary changed since this process last read it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Value};

use crate::model::{ReplayLog, SagaStatus, SagaSummary, Snapshot, Timestamp};

use super::codec::{Codec, Compression, JsonStyle};
use super::*;

/// How many requests one operation keeps in flight.
const PARALLEL: usize = 16;
/// sagaz keeps only the newest 1,000 entries in its index object.
const SAGAZ_INDEX_CAP: usize = 1000;
/// Compare-and-swap attempts before giving up on a contended object.
const CAS_ATTEMPTS: u32 = 200;

/// One object as read.
#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub bytes: Vec<u8>,
    /// Changes whenever the object is rewritten.
    pub etag: String,
    /// User metadata (S3), lower-case names.
    pub meta: Vec<(String, String)>,
}

/// One key as listed.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    /// Relative to the store root (S3 prefix or folder).
    pub key: String,
    pub etag: String,
    pub size: u64,
}

/// Extra attributes for a write (S3 headers; the folder ignores them).
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) struct PutMeta {
    pub metadata: Vec<(&'static str, String)>,
    pub expires: Option<Timestamp>,
    pub content_type: Option<&'static str>,
}

/// Storage primitives of one backend. Keys are relative to the store root
/// and use `/` as separator.
#[async_trait]
pub(crate) trait Driver: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> &'static str;
    /// Redacted.
    fn location(&self) -> String;
    /// Whether conditional writes hold across machines.
    fn distributed(&self) -> bool;
    async fn get(&self, key: &str) -> StoreResult<Option<Obj>>;
    /// Replaces the object atomically (readers see the old or the new one).
    async fn put(&self, key: &str, body: Vec<u8>, meta: &PutMeta) -> StoreResult<()>;
    /// Writes only if the object is absent (`expect = None`) or still has
    /// the ETag given. `Ok(None)` when the precondition failed.
    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        expect: Option<&str>,
        meta: &PutMeta,
    ) -> StoreResult<Option<String>>;
    /// Deletes; absent is fine.
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Deletes only if the object still has this ETag; `false` otherwise.
    async fn delete_if(&self, key: &str, etag: &str) -> StoreResult<bool>;
    /// Every key under `prefix` (which ends with `/`), at any depth,
    /// ascending.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<Listed>>;
    /// The names of the sub-folders directly under `prefix`.
    async fn list_dirs(&self, prefix: &str) -> StoreResult<Vec<String>>;
    /// One cheap round trip.
    async fn ping(&self) -> StoreResult<()>;
}

/// Which sagaz layout: the keys differ between S3 and the folder store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) enum Flavor {
    S3,
    Folder,
}

/// sagaz's key names and encodings for one backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub flavor: Flavor,
    /// Snapshot and replay objects.
    pub data: Codec,
    /// sagaz's index objects.
    pub index: Codec,
}

impl Layout {
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub fn s3(compression: Compression) -> Self {
        Layout {
            flavor: Flavor::S3,
            data: Codec::new(compression, JsonStyle::Python),
            // sagaz's S3 index is always plain JSON.
            index: Codec::new(Compression::None, JsonStyle::Python),
        }
    }

    pub fn folder(compression: Compression) -> Self {
        // sagaz's folder store gzips every file when compression is on.
        let c = Codec::new(compression, JsonStyle::PythonIndent2);
        Layout {
            flavor: Flavor::Folder,
            data: c,
            index: c,
        }
    }

    /// Snapshot file suffixes, the one this store writes first.
    fn snapshot_exts(&self) -> [&'static str; 2] {
        match (self.flavor, self.data.compression) {
            (Flavor::S3, Compression::None) => [".json", ".json.zst"],
            (Flavor::S3, _) => [".json.zst", ".json"],
            (Flavor::Folder, Compression::None) => [".json", ".json.gz"],
            (Flavor::Folder, _) => [".json.gz", ".json"],
        }
    }

    fn snapshot_key(&self, saga_id: &str, snapshot_id: &str, ext: &str) -> String {
        match self.flavor {
            Flavor::S3 => format!("snapshot/{snapshot_id}{ext}"),
            Flavor::Folder => format!("snapshots/{saga_id}/{snapshot_id}{ext}"),
        }
    }

    fn snapshot_dir(&self) -> &'static str {
        match self.flavor {
            Flavor::S3 => "snapshot/",
            Flavor::Folder => "snapshots/",
        }
    }

    fn index_dir(&self) -> &'static str {
        match self.flavor {
            Flavor::S3 => "index/saga/",
            Flavor::Folder => "indexes/",
        }
    }

    fn index_key(&self, saga_id: &str) -> String {
        format!("{}{saga_id}.json", self.index_dir())
    }

    fn replay_dir(&self) -> &'static str {
        match self.flavor {
            Flavor::S3 => "replay/",
            Flavor::Folder => "replays/",
        }
    }

    fn replay_key(&self, replay_id: &str) -> String {
        format!("{}{replay_id}.json", self.replay_dir())
    }
}

const MARKERS: &str = "sagascope/index/";
const POINTERS: &str = "sagascope/ids/";
const SUMMARIES: &str = "sagascope/sagas/";
/// Out of the range [`sortable`] produces, so it never means a time.
const NO_RETENTION: &str = "99999999999999999999";
const REPLAYS_BY_ORIGINAL: &str = "sagascope/replays/";
const REPLAYS_BY_NEW: &str = "sagascope/replay-new/";
const LOCKS: &str = "sagascope/locks/";

/// A timestamp as 20 digits that sort as the instants do (sign bit
/// flipped, so times before 1970 sort first too).
pub(crate) fn sortable(t: Timestamp) -> String {
    format!("{:020}", (t.as_micros() as u64) ^ (1u64 << 63))
}

fn from_sortable(s: &str) -> Option<Timestamp> {
    let n: u64 = s.parse().ok()?;
    Timestamp::from_micros((n ^ (1u64 << 63)) as i64)
}

/// `{t}_{id}` back into its parts.
fn parse_marker_name(name: &str) -> Option<(Timestamp, String)> {
    let (t, id) = name.split_once('_')?;
    Some((from_sortable(t)?, id.to_string()))
}

/// Ids become key segments, so they must not be able to climb out of their
/// folder or split into two segments.
fn check_id(what: &str, id: &str, backend: &'static str) -> StoreResult<()> {
    let bad = id.is_empty()
        || id.len() > 200
        || id.starts_with('.')
        || id
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control());
    if bad {
        return Err(StoreError::Unstorable {
            backend,
            what: format!("{what} {id:?}"),
            reason: "ids become object keys or file names here: use a non-empty id without '/', '\\', control characters or a leading '.'".into(),
        });
    }
    Ok(())
}

fn id_ok(id: &str) -> bool {
    check_id("", id, "").is_ok()
}

/// One entry of a saga's merged index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    created_at: Timestamp,
    snapshot_id: String,
    /// sagascope's marker for it (none for entries only sagaz indexed).
    marker: Option<String>,
    retention_until: Option<Timestamp>,
}

/// Where a snapshot lives (`sagascope/ids/{id}.json`).
#[derive(Debug, Clone, PartialEq)]
struct Pointer {
    saga_id: String,
    created_at: Timestamp,
    retention_until: Option<Timestamp>,
}

impl Pointer {
    fn to_json(&self) -> Value {
        json!({
            "saga_id": self.saga_id,
            "created_at": self.created_at.to_isoformat(),
            "retention_until": self.retention_until.map(|t| t.to_isoformat()),
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(Pointer {
            saga_id: v.get("saga_id")?.as_str()?.to_string(),
            created_at: Timestamp::parse(v.get("created_at")?.as_str()?).ok()?,
            retention_until: v
                .get("retention_until")
                .and_then(Value::as_str)
                .and_then(|s| Timestamp::parse(s).ok()),
        })
    }
}

/// The saga summary object, with what it was built from.
#[derive(Debug, Clone, PartialEq)]
struct StoredSummary {
    summary: SagaSummary,
    latest_snapshot_id: String,
    /// ETag of sagaz's index when the summary was computed (`None`: there
    /// was none).
    sagaz_etag: Option<String>,
}

impl StoredSummary {
    fn to_json(&self) -> Value {
        let s = &self.summary;
        json!({
            "saga_id": s.saga_id,
            "saga_name": s.saga_name,
            "latest_status": s.latest_status.as_str(),
            "latest_step": s.latest_step,
            "latest_step_index": s.latest_step_index,
            "latest_snapshot_id": self.latest_snapshot_id,
            "snapshot_count": s.snapshot_count,
            "first_at": s.first_at.to_isoformat(),
            "last_at": s.last_at.to_isoformat(),
            "sagaz_index_etag": self.sagaz_etag,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let t = |k: &str| s(k).and_then(|x| Timestamp::parse(&x).ok());
        Some(StoredSummary {
            summary: SagaSummary {
                saga_id: s("saga_id")?,
                saga_name: s("saga_name")?,
                latest_status: SagaStatus::parse(&s("latest_status")?),
                latest_step: s("latest_step")?,
                latest_step_index: v.get("latest_step_index")?.as_i64()?,
                snapshot_count: v.get("snapshot_count")?.as_u64()?,
                first_at: t("first_at")?,
                last_at: t("last_at")?,
            },
            latest_snapshot_id: s("latest_snapshot_id")?,
            sagaz_etag: s("sagaz_index_etag"),
        })
    }
}

/// sagaz's index object, as read.
#[derive(Debug, Default)]
struct SagazIndex {
    etag: Option<String>,
    /// In the object's order (newest first when sagaz wrote it).
    entries: Vec<(String, String)>,
    bad: Vec<BadEntry>,
}

/// A store over sagaz's object layout (S3 or folder); see the module docs.
#[derive(Debug)]
pub struct ObjectStore {
    driver: Arc<dyn Driver>,
    layout: Layout,
    readonly: bool,
    /// Summaries read before, by saga, with the summary object's ETag: a
    /// saga list re-reads only the summaries whose ETag changed.
    summaries: Mutex<HashMap<String, (String, StoredSummary)>>,
}

fn compact(v: &Value) -> Vec<u8> {
    super::codec::to_json_bytes(v, JsonStyle::Compact)
}

fn parse_small(bytes: &[u8]) -> Option<Value> {
    Codec::default().decode(bytes).ok()
}

/// A short pause that grows with each attempt, with jitter so contending
/// writers spread out.
async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(5);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (base + 1);
    tokio::time::sleep(Duration::from_millis(base.min(200) + jitter.min(200))).await;
}

impl ObjectStore {
    pub(crate) fn new(driver: Arc<dyn Driver>, layout: Layout, readonly: bool) -> Self {
        ObjectStore {
            driver,
            layout,
            readonly,
            summaries: Mutex::new(HashMap::new()),
        }
    }

    fn backend(&self) -> &'static str {
        self.driver.backend()
    }

    fn bad(&self, key: &str, saga_id: Option<&str>, error: impl std::fmt::Display) -> BadEntry {
        BadEntry {
            key: key.to_string(),
            saga_id: saga_id.map(str::to_string),
            error: error.to_string(),
        }
    }

    /// A failed read of `key` as that entry's error. A driver that
    /// refused the entry itself (not a regular file, over the size cap)
    /// says why in a `Corrupt` error; its reason is the entry's.
    fn bad_read(&self, key: &str, saga_id: Option<&str>, e: StoreError) -> BadEntry {
        match e {
            StoreError::Corrupt { entry } => self.bad(key, saga_id, entry.error),
            other => self.bad(key, saga_id, other),
        }
    }

    fn contention(&self, key: &str) -> StoreError {
        StoreError::backend(
            self.backend(),
            format!("{key} kept changing under {CAS_ATTEMPTS} compare-and-swap attempts; too many concurrent writers, try again"),
        )
    }

    // ---------- snapshots: reading ----------

    /// Reads one snapshot object given its saga; `Ok(None)` if absent.
    async fn read_snapshot(
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

    fn decode_snapshot(
        &self,
        key: &str,
        saga_id: Option<&str>,
        bytes: &[u8],
    ) -> Result<Snapshot, BadEntry> {
        let v = self
            .layout
            .data
            .decode(bytes)
            .map_err(|e| self.bad(key, saga_id, e))?;
        Snapshot::from_json(v).map_err(|e| self.bad(key, saga_id, e))
    }

    async fn read_pointer(&self, snapshot_id: &str) -> StoreResult<Option<Pointer>> {
        let obj = self
            .driver
            .get(&format!("{POINTERS}{snapshot_id}.json"))
            .await?;
        Ok(obj
            .and_then(|o| parse_small(&o.bytes))
            .and_then(|v| Pointer::from_json(&v)))
    }

    async fn read_sagaz_index(&self, saga_id: &str) -> StoreResult<SagazIndex> {
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

    async fn list_markers(&self, saga_id: &str) -> StoreResult<Vec<Entry>> {
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
    async fn entries(&self, saga_id: &str) -> StoreResult<(Vec<Entry>, SagazIndex)> {
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
    async fn read_entries(
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
    async fn locate(
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
    fn merge(&self, saga_id: &str, markers: Vec<Entry>, sagaz: &mut SagazIndex) -> Vec<Entry> {
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

    // ---------- snapshots: writing ----------

    fn snapshot_meta(&self, s: &Snapshot) -> PutMeta {
        PutMeta {
            metadata: vec![
                ("saga_id", ascii_meta(&s.saga_id)),
                ("saga_name", ascii_meta(&s.saga_name)),
                ("step_name", ascii_meta(&s.step_name)),
                ("created_at", s.created_at.to_isoformat()),
            ],
            expires: s.retention_until,
            content_type: None,
        }
    }

    /// Writes one snapshot's object and sagascope's per-snapshot keys.
    /// Returns the saga it moved out of, if it moved.
    ///
    /// A new snapshot costs two writes on S3 (the object, created only if
    /// absent, and its marker); only a replaced one costs a read of what it
    /// replaces, to clean up the old marker.
    async fn write_one(&self, s: &Snapshot) -> StoreResult<Option<String>> {
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
    async fn update_sagaz_index(
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

    /// Recomputes a saga's summary from both indexes and stores it with
    /// one compare-and-swap (deleting it when the saga has no snapshots
    /// left). Returns the summary, also when read-only or when the swap lost.
    ///
    /// One attempt is enough because a summary can always be checked: it
    /// records the ETag of sagaz's index it was computed from, and sagaz's
    /// index is read *before* the markers are listed. Every writer adds its
    /// marker before it updates sagaz's index, so a summary whose ETag is
    /// the index's current one has seen every marker; one whose ETag is
    /// older (a lost race, a crash, or sagaz writing alone) is recomputed by
    /// the next reader or writer.
    async fn refresh_summary(
        &self,
        saga_id: &str,
        known: &[Snapshot],
    ) -> StoreResult<Option<StoredSummary>> {
        let key = format!("{SUMMARIES}{saga_id}.json");
        let current = self.driver.get(&key).await?;
        let old = current
            .as_ref()
            .and_then(|o| parse_small(&o.bytes))
            .and_then(|v| StoredSummary::from_json(&v));
        let mut sagaz = self.read_sagaz_index(saga_id).await?;
        let markers = self.list_markers(saga_id).await?;
        let entries = self.merge(saga_id, markers, &mut sagaz);
        let computed = self
            .compute_summary(saga_id, &entries, sagaz.etag.clone(), old.as_ref(), known)
            .await?;
        if self.readonly {
            return Ok(computed);
        }
        match (&computed, &current) {
            (None, None) => {}
            (None, Some(obj)) => {
                self.driver.delete_if(&key, &obj.etag).await?;
            }
            (Some(c), Some(_)) if old.as_ref() == Some(c) => {}
            (Some(c), cur) => {
                self.driver
                    .put_if(
                        &key,
                        compact(&c.to_json()),
                        cur.as_ref().map(|o| o.etag.as_str()),
                        &PutMeta::default(),
                    )
                    .await?;
            }
        }
        Ok(computed)
    }

    async fn compute_summary(
        &self,
        saga_id: &str,
        entries: &[Entry],
        sagaz_etag: Option<String>,
        old: Option<&StoredSummary>,
        known: &[Snapshot],
    ) -> StoreResult<Option<StoredSummary>> {
        let (Some(first), Some(_)) = (entries.first(), entries.last()) else {
            return Ok(None);
        };
        // The newest readable snapshot gives name, status and step; the
        // caller's own snapshots and the old summary save a read.
        for e in entries.iter().rev() {
            let latest = if let Some(s) = known
                .iter()
                .find(|s| s.snapshot_id == e.snapshot_id && s.saga_id == saga_id)
            {
                Some(s.clone())
            } else if let Some(o) = old.filter(|o| {
                o.latest_snapshot_id == e.snapshot_id && o.summary.last_at == e.created_at
            }) {
                return Ok(Some(StoredSummary {
                    summary: SagaSummary {
                        snapshot_count: entries.len() as u64,
                        first_at: first.created_at,
                        ..o.summary.clone()
                    },
                    latest_snapshot_id: e.snapshot_id.clone(),
                    sagaz_etag,
                }));
            } else {
                self.read_snapshot(saga_id, &e.snapshot_id)
                    .await
                    .ok()
                    .flatten()
            };
            if let Some(s) = latest {
                return Ok(Some(StoredSummary {
                    summary: SagaSummary {
                        saga_id: saga_id.to_string(),
                        saga_name: s.saga_name,
                        latest_status: s.status,
                        latest_step: s.step_name,
                        latest_step_index: s.step_index,
                        snapshot_count: entries.len() as u64,
                        first_at: first.created_at,
                        last_at: e.created_at,
                    },
                    latest_snapshot_id: e.snapshot_id.clone(),
                    sagaz_etag,
                }));
            }
        }
        Ok(None)
    }

    async fn save_batch(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
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
    async fn remove_snapshot_keys(
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

    // ---------- sagas ----------

    /// Every saga id with a summary or a sagaz index, with the ETags of its
    /// sagaz index and of its summary (either may be absent).
    async fn saga_ids(&self) -> StoreResult<BTreeMap<String, (Option<String>, Option<String>)>> {
        let (summaries, indexes) = futures::try_join!(
            self.driver.list(SUMMARIES),
            self.driver.list(self.layout.index_dir())
        )?;
        let mut out: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
        for l in indexes {
            if let Some(id) = l
                .key
                .strip_prefix(self.layout.index_dir())
                .and_then(|k| k.strip_suffix(".json"))
            {
                if !id.contains('/') {
                    out.entry(id.to_string()).or_default().0 = Some(l.etag);
                }
            }
        }
        for l in summaries {
            if let Some(id) = l
                .key
                .strip_prefix(SUMMARIES)
                .and_then(|k| k.strip_suffix(".json"))
            {
                if !id.contains('/') {
                    out.entry(id.to_string()).or_default().1 = Some(l.etag);
                }
            }
        }
        Ok(out)
    }

    /// One saga's summary: the stored one when it is current (from memory
    /// when its ETag has not changed), else recomputed and stored (unless
    /// read-only). The flag says it had to be recomputed.
    async fn summary_of(
        &self,
        saga_id: &str,
        sagaz_etag: Option<&str>,
        summary_etag: Option<&str>,
    ) -> Result<(Option<SagaSummary>, bool), BadEntry> {
        let key = format!("{SUMMARIES}{saga_id}.json");
        let to_bad = |e: StoreError| self.bad_read(&key, Some(saga_id), e);
        if let Some(etag) = summary_etag {
            let cached = self
                .cache()
                .get(saga_id)
                .filter(|(e, s)| e == etag && s.sagaz_etag.as_deref() == sagaz_etag)
                .map(|(_, s)| s.summary.clone());
            if let Some(s) = cached {
                return Ok((Some(s), false));
            }
            if let Some(obj) = self.driver.get(&key).await.map_err(to_bad)? {
                let stored = parse_small(&obj.bytes).and_then(|v| StoredSummary::from_json(&v));
                if let Some(stored) = stored {
                    let current = stored.sagaz_etag.as_deref() == sagaz_etag;
                    let summary = stored.summary.clone();
                    self.cache().insert(saga_id.to_string(), (obj.etag, stored));
                    if current {
                        return Ok((Some(summary), false));
                    }
                }
            }
        }
        let computed = self.refresh_summary(saga_id, &[]).await.map_err(to_bad)?;
        Ok((computed.map(|c| c.summary), true))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, StoredSummary)>> {
        // The cache only saves reads; a poisoned one is still consistent
        // entry by entry.
        self.summaries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every saga's summary, bad ones named, and how many had to be
    /// recomputed.
    async fn all_summaries(&self) -> StoreResult<(Vec<SagaSummary>, Vec<BadEntry>, usize)> {
        let ids = self.saga_ids().await?;
        let results: Vec<Result<(Option<SagaSummary>, bool), BadEntry>> =
            futures::stream::iter(ids)
                .map(|(id, (sagaz, summary))| async move {
                    self.summary_of(&id, sagaz.as_deref(), summary.as_deref())
                        .await
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut out = (vec![], vec![], 0);
        for r in results {
            match r {
                Ok((s, recomputed)) => {
                    out.0.extend(s);
                    out.2 += usize::from(recomputed);
                }
                Err(b) => out.1.push(b),
            }
        }
        Ok(out)
    }

    // ---------- replays ----------

    async fn read_replay(&self, replay_id: &str) -> Result<Option<ReplayLog>, BadEntry> {
        let key = self.layout.replay_key(replay_id);
        let obj = self
            .driver
            .get(&key)
            .await
            .map_err(|e| self.bad_read(&key, None, e))?;
        let Some(obj) = obj else { return Ok(None) };
        // sagaz names compressed replay objects `.json` too: sniff.
        let v = self
            .layout
            .data
            .decode(&obj.bytes)
            .map_err(|e| self.bad(&key, None, e))?;
        ReplayLog::from_json(v)
            .map(Some)
            .map_err(|e| self.bad(&key, None, e))
    }

    fn lock_key(&self, name: &str) -> String {
        format!("{LOCKS}{}.json", encode_segment(name))
    }
}

/// `sagascope/index/{saga}/{created_at}_{retention_until}_{id}`: the
/// retention is in the name so `delete_expired` needs a listing only.
fn marker_key(
    saga_id: &str,
    t: Timestamp,
    retention: Option<Timestamp>,
    snapshot_id: &str,
) -> String {
    let r = retention.map_or_else(|| NO_RETENTION.to_string(), sortable);
    format!("{MARKERS}{saga_id}/{}_{r}_{snapshot_id}", sortable(t))
}

fn parse_snapshot_marker(name: &str) -> Option<(Timestamp, Option<Timestamp>, String)> {
    let (t, rest) = name.split_once('_')?;
    let (r, id) = rest.split_once('_')?;
    let retention = if r == NO_RETENTION {
        None
    } else {
        Some(from_sortable(r)?)
    };
    Some((from_sortable(t)?, retention, id.to_string()))
}

/// The saga of an object that does not decode: sagaz's `saga_id`
/// metadata, else the `"saga_id": "..."` text near the start of the body.
fn salvage_saga_id(codec: &Codec, obj: &Obj) -> Option<String> {
    if let Some((_, v)) = obj.meta.iter().find(|(k, _)| k == "saga_id") {
        return Some(v.clone()).filter(|v| id_ok(v));
    }
    super::codec::salvage_string_field(codec, &obj.bytes, "saga_id").filter(|v| id_ok(v))
}

/// S3 user metadata must be ASCII (sagaz fails on anything else): other
/// characters are percent-encoded as UTF-8. The object body has the truth.
pub(crate) fn ascii_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_control() && c != '%' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A lock name as one safe key segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    out
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

#[async_trait]
impl SnapshotStore for ObjectStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: self.backend(),
            preserves_key_order: true,
            preserves_extra_fields: true,
            stores_external_refs: true,
            stores_nul_in_strings: true,
            indexed_saga_list: true,
            distributed_locks: self.driver.distributed(),
        }
    }

    fn location(&self) -> String {
        self.driver.location()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        self.save_batch(std::slice::from_ref(snapshot)).await
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        for chunk in snapshots.chunks(1000) {
            self.save_batch(chunk).await?;
        }
        Ok(())
    }

    async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
        match self.locate(snapshot_id).await? {
            None => Ok(None),
            Some((_, Ok(s))) => Ok(Some(s)),
            Some((_, Err(entry))) => Err(StoreError::Corrupt { entry }),
        }
    }

    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let (mut entries, _) = self.entries(saga_id).await?;
        entries.reverse();
        let l = self
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

    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        let (entries, _) = self.entries(saga_id).await?;
        let mut upto: Vec<Entry> = entries.into_iter().filter(|e| e.created_at <= at).collect();
        upto.reverse();
        let l = self
            .read_entries(saga_id, upto, 1, false, |s| s.created_at <= at)
            .await;
        match (l.items.into_iter().next(), l.bad.into_iter().next()) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(entry)) => Err(StoreError::Corrupt { entry }),
            _ => Ok(None),
        }
    }

    async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        let (entries, sagaz) = self.entries(saga_id).await?;
        let picked = query_range(entries, q);
        let mut out = self
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

    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        Ok(self.entries(saga_id).await?.0.len() as u64)
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool> {
        let pointer = match self.layout.flavor {
            Flavor::Folder if id_ok(snapshot_id) => self.read_pointer(snapshot_id).await?,
            _ => None,
        };
        let found = self.locate(snapshot_id).await?;
        let saga = match (&found, &pointer) {
            (Some((_, Ok(s))), _) => Some(s.saga_id.clone()),
            (Some((saga, Err(_))), p) => saga.clone().or(p.as_ref().map(|p| p.saga_id.clone())),
            (None, Some(p)) => Some(p.saga_id.clone()),
            (None, None) => return Ok(false),
        };
        let saga = saga.unwrap_or_default();
        self.remove_snapshot_keys(&saga, snapshot_id, None).await?;
        if id_ok(&saga) {
            self.update_sagaz_index(&saga, &[], &HashSet::from([snapshot_id.to_string()]))
                .await?;
            self.refresh_summary(&saga, &[]).await?;
        }
        Ok(found.is_some())
    }

    async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64> {
        if !id_ok(saga_id) {
            return Ok(0);
        }
        let (entries, _) = self.entries(saga_id).await?;
        let n = entries.len() as u64;
        futures::stream::iter(entries)
            .map(|e| async move {
                if self.layout.flavor == Flavor::Folder {
                    // A pointer to another saga means the id was re-saved
                    // there: only this saga's marker goes.
                    let p = self.read_pointer(&e.snapshot_id).await?;
                    if p.is_some_and(|p| p.saga_id != saga_id) {
                        if let Some(m) = &e.marker {
                            self.driver.delete(m).await?;
                        }
                        return Ok(());
                    }
                }
                self.remove_snapshot_keys(
                    saga_id,
                    &e.snapshot_id,
                    Some(e.marker.into_iter().collect()),
                )
                .await
            })
            .buffer_unordered(PARALLEL)
            .try_collect::<Vec<()>>()
            .await?;
        self.driver.delete(&self.layout.index_key(saga_id)).await?;
        // Anything written meanwhile stays indexed: recompute rather than
        // delete the summary blindly.
        self.refresh_summary(saga_id, &[]).await?;
        Ok(n)
    }

    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        // Markers carry the retention: one listing finds what is due.
        let markers = self.driver.list(MARKERS).await?;
        let mut covered: HashSet<String> = HashSet::new();
        let mut due: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for l in &markers {
            let Some((saga, name)) = l.key.strip_prefix(MARKERS).and_then(|k| k.split_once('/'))
            else {
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
                        self.remove_snapshot_keys(&saga, &id, Some(vec![marker]))
                            .await
                    }
                })
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<()>>()
                .await?;
            let ids: HashSet<String> = items.into_iter().map(|(id, _)| id).collect();
            deleted += ids.len() as u64;
            self.update_sagaz_index(&saga, &[], &ids).await?;
            self.refresh_summary(&saga, &[]).await?;
        }
        // Snapshots sagaz wrote alone have no marker: read those.
        let objects = self.driver.list(self.layout.snapshot_dir()).await?;
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
            if let Some((_, Ok(s))) = self.locate(&id).await? {
                if s.is_expired_at(now) && self.delete_snapshot(&id).await? {
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        check_id("replay_id", &log.replay_id, self.backend())?;
        check_id("original_saga_id", &log.original_saga_id, self.backend())?;
        check_id("new_saga_id", &log.new_saga_id, self.backend())?;
        let meta = PutMeta {
            metadata: vec![
                ("original_saga_id", ascii_meta(&log.original_saga_id)),
                ("created_at", log.created_at.to_isoformat()),
            ],
            ..PutMeta::default()
        };
        self.driver
            .put(
                &self.layout.replay_key(&log.replay_id),
                self.layout.data.encode(&log.to_json()),
                &meta,
            )
            .await?;
        let t = sortable(log.created_at);
        let body = compact(&json!({"replay_id": log.replay_id}));
        self.driver
            .put(
                &format!(
                    "{REPLAYS_BY_ORIGINAL}{}/{t}_{}",
                    log.original_saga_id, log.replay_id
                ),
                body.clone(),
                &PutMeta::default(),
            )
            .await?;
        self.driver
            .put(
                &format!("{REPLAYS_BY_NEW}{}/{t}_{}", log.new_saga_id, log.replay_id),
                body,
                &PutMeta::default(),
            )
            .await
    }

    async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
        if !id_ok(replay_id) {
            return Ok(None);
        }
        self.read_replay(replay_id)
            .await
            .map_err(|entry| StoreError::Corrupt { entry })
    }

    async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let mut out = Listing::default();
        if !id_ok(original_saga_id) {
            return Ok(out);
        }
        let (objects, indexed) = futures::try_join!(
            self.driver.list(self.layout.replay_dir()),
            self.driver.list(REPLAYS_BY_ORIGINAL)
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
                .strip_prefix(self.layout.replay_dir())
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
            .map(|id| async move { self.read_replay(&id).await })
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
        out.items
            .sort_by(|a, b| (b.created_at, &b.replay_id).cmp(&(a.created_at, &a.replay_id)));
        out.items.truncate(limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        if !id_ok(new_saga_id) {
            return Ok(None);
        }
        let prefix = format!("{REPLAYS_BY_NEW}{new_saga_id}/");
        let listed = self.driver.list(&prefix).await?;
        for l in listed.iter().rev() {
            if let Some((_, id)) = l.key.strip_prefix(&prefix).and_then(parse_marker_name) {
                match self.read_replay(&id).await {
                    Ok(Some(log)) if log.new_saga_id == new_saga_id => return Ok(Some(log)),
                    Ok(_) => {}
                    Err(entry) => return Err(StoreError::Corrupt { entry }),
                }
            }
        }
        Ok(None)
    }

    async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage> {
        let (mut all, bad, recomputed) = self.all_summaries().await?;
        all.retain(|s| filter.matches(s) && page.after.as_ref().is_none_or(|c| c.precedes(s)));
        all.sort_by(|a, b| (&b.last_at, &b.saga_id).cmp(&(&a.last_at, &a.saga_id)));
        let more = all.len() > page.limit;
        all.truncate(page.limit);
        let next = if more {
            all.last().map(SagaCursor::of)
        } else {
            None
        };
        Ok(SagaPage {
            sagas: all,
            next,
            bad,
            index_warning: (self.readonly && recomputed > 0).then(|| {
                format!(
                    "{recomputed} saga(s) have no current sagascope summary (written or changed by sagaz); \
                     they were summarised from their newest snapshots. Open the store once without \
                     --readonly to index them"
                )
            }),
        })
    }

    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        if !id_ok(saga_id) {
            return Ok(None);
        }
        let sagaz_etag = self
            .driver
            .get(&self.layout.index_key(saga_id))
            .await?
            .map(|o| o.etag);
        let summary_etag = self
            .driver
            .get(&format!("{SUMMARIES}{saga_id}.json"))
            .await?
            .map(|o| o.etag);
        self.summary_of(saga_id, sagaz_etag.as_deref(), summary_etag.as_deref())
            .await
            .map(|(s, _)| s)
            .map_err(|entry| StoreError::Corrupt { entry })
    }

    async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64> {
        let (all, _, _) = self.all_summaries().await?;
        Ok(all.iter().filter(|s| filter.matches(s)).count() as u64)
    }

    async fn health(&self) -> StoreResult<Health> {
        let start = Instant::now();
        self.driver.ping().await?;
        let latency = start.elapsed();
        let ids = self.saga_ids().await.ok();
        let snaps = self.driver.list(self.layout.snapshot_dir()).await.ok();
        let replays = self.driver.list(self.layout.replay_dir()).await.ok();
        let size = snaps
            .as_ref()
            .map(|s| s.iter().map(|l| l.size).sum::<u64>());
        Ok(Health {
            backend: self.backend(),
            url: self.location(),
            reachable: true,
            latency,
            sagas: ids.map(|m| m.len() as u64),
            snapshots: snaps.map(|s| s.len() as u64),
            replays: replays.map(|s| s.len() as u64),
            size_bytes: size,
            notes: vec![],
        })
    }

    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome> {
        let key = self.lock_key(name);
        for attempt in 0..CAS_ATTEMPTS {
            let now = Timestamp::now();
            let until = now.plus_micros(ttl.as_micros().min(i64::MAX as u128) as i64);
            let body = compact(&json!({"owner": owner, "until": until.to_isoformat()}));
            let current = self.driver.get(&key).await?;
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
            if self
                .driver
                .put_if(&key, body, expect, &PutMeta::default())
                .await?
                .is_some()
            {
                return Ok(LockOutcome::Acquired);
            }
            backoff(attempt.min(3)).await;
        }
        Err(self.contention(&key))
    }

    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        let key = self.lock_key(name);
        for attempt in 0..CAS_ATTEMPTS {
            let Some(obj) = self.driver.get(&key).await? else {
                return Ok(());
            };
            let holder = parse_small(&obj.bytes)
                .and_then(|v| v.get("owner").and_then(Value::as_str).map(str::to_string));
            if holder.as_deref() != Some(owner) {
                return Ok(());
            }
            if self.driver.delete_if(&key, &obj.etag).await? {
                return Ok(());
            }
            backoff(attempt.min(3)).await;
        }
        Err(self.contention(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_times_sort_like_instants() {
        let a = Timestamp::parse("1969-12-31T23:59:59+00:00").unwrap();
        let b = Timestamp::parse("2026-03-01T12:00:00+00:00").unwrap();
        let c = b.plus_micros(1);
        assert!(sortable(a) < sortable(b) && sortable(b) < sortable(c));
        assert_eq!(sortable(b).len(), 20);
        assert_eq!(from_sortable(&sortable(a)), Some(a));
        assert_eq!(
            parse_marker_name(&format!("{}_abc_d", sortable(c))),
            Some((c, "abc_d".into()))
        );
    }

    #[test]
    fn snapshot_markers_carry_time_retention_and_id() {
        let t = Timestamp::parse("2026-03-01T12:00:00+00:00").unwrap();
        let r = t.plus_micros(5);
        let key = marker_key("saga", t, Some(r), "a_b");
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(
            parse_snapshot_marker(name),
            Some((t, Some(r), "a_b".into()))
        );
        let key = marker_key("saga", t, None, "x");
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(parse_snapshot_marker(name), Some((t, None, "x".into())));
    }

    #[test]
    fn metadata_is_ascii_and_reversible_by_eye() {
        assert_eq!(ascii_meta("transform_données"), "transform_donn%C3%A9es");
        assert_eq!(ascii_meta("100%"), "100%25");
        assert!(ascii_meta("🚀 go").is_ascii());
    }

    #[test]
    fn ids_that_escape_their_folder_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "a\\b", "a\0"] {
            assert!(check_id("saga_id", bad, "file").is_err(), "{bad:?}");
        }
        assert!(check_id("saga_id", "9a3c2b1d-0000-4000-8000-000000000001", "file").is_ok());
        assert_eq!(encode_segment("replay:saga/1"), "replay%3Asaga%2F1");
    }
}
