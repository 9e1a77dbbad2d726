//! The engine behind the two object-layout stores, S3 (`conn/s3.rs`) and
//! folder (`conn/fs.rs`): sagaz's layout of one object per snapshot, per-saga index
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
//!
//! # Files
//!
//! `url.rs` reads `s3://` and `file://` URLs; `conn.rs` holds the
//! [`conn::Driver`] trait, with the two drivers under `conn/` (`s3.rs`,
//! `fs.rs`), and the health check; `schema.rs` names the keys and encodes
//! what sagascope keeps; `read.rs` gets and lists; `write.rs` saves,
//! deletes and takes locks; `index.rs` keeps the saga summaries.
//!
//! The drivers live under `conn/` rather than beside this folder: each is
//! only the connection half of a store (its `open` returns an
//! [`ObjectStore`]), and their URL parsing sits with the rest in `url.rs`.
//! `store::s3` and `store::fs` re-export them, so those paths still work.

pub mod conn;
mod index;
mod meta;
mod read;
mod schema;
mod url;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::Snapshot;

use super::*;

pub(crate) use self::conn::{Driver, Listed, Obj, PutMeta};
pub(crate) use self::schema::Layout;
use self::schema::StoredSummary;

/// How many requests one operation keeps in flight.
const PARALLEL: usize = 16;
/// sagaz keeps only the newest 1,000 entries in its index object.
const SAGAZ_INDEX_CAP: usize = 1000;
/// Compare-and-swap attempts before giving up on a contended object.
const CAS_ATTEMPTS: u32 = 200;

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
        super::entry::bad(key, saga_id, error)
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

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, StoredSummary)>> {
        // The cache only saves reads; a poisoned one is still consistent
        // entry by entry.
        self.summaries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

super::forward::impl_store_from_files!(ObjectStore {
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

    async fn put_meta(&self, kind: &str, key: &str, value: &serde_json::Value) -> StoreResult<()> {
        self.meta_put(kind, key, value).await
    }

    async fn insert_meta(
        &self,
        kind: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> StoreResult<bool> {
        self.meta_insert(kind, key, value).await
    }

    async fn get_meta(&self, kind: &str, key: &str) -> StoreResult<Option<serde_json::Value>> {
        self.meta_get(kind, key).await
    }

    async fn list_meta(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, serde_json::Value)>> {
        self.meta_list(kind, after, limit).await
    }

    async fn delete_meta(&self, kind: &str, key: &str) -> StoreResult<bool> {
        self.meta_delete(kind, key).await
    }
});
