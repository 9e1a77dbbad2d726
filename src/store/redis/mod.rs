//! `redis://`, `rediss://` and Redis Cluster: sagaz's keys, plus a saga
//! index of sagascope's own so browsing never SCANs.
//!
//! # sagaz's layout (FORMATS.md §2), kept exactly
//!
//! With prefix `P` (default `snapshot:`, URL parameter `prefix=`):
//! `P{snapshot_id}` holds the snapshot JSON (Python `json.dumps` layout), in
//! one zstd frame unless compression is off; `P saga:{saga_id}:index` is a
//! sorted set of snapshot ids scored by `created_at` in float epoch seconds;
//! `P replay:{replay_id}` and `P saga:{saga_id}:replays` are the same for
//! replay logs. Values are read by sniffing the zstd magic, so data written
//! with compression on or off both read. A snapshot key gets a TTL at its
//! `retention_until` (sagaz's `EXPIRE`); one whose retention has already
//! passed is written without a TTL and left to [`SnapshotStore::delete_expired`],
//! so a write is never lost the moment it is made.
//!
//! # sagascope's saga index
//!
//! Keys under the same prefix, which sagaz never reads:
//!
//! - `P sagascope:saga:{saga_id}`: a hash with the saga's newest snapshot
//!   (`last_us`, `snapshot_id`, `saga_name`, `status`, `step`,
//!   `step_index`). It is the authority: it is only replaced by a newer
//!   snapshot (a compare-and-set script on that one key), so concurrent
//!   writers of one saga converge on the newest;
//! - `P sagascope:sagas` and `P sagascope:status:{status}`: sorted sets of
//!   saga ids scored by the newest snapshot's time in integer microseconds
//!   (exact in a double), the orders the saga list walks;
//! - `P sagascope:retention`: `"{snapshot_id} {saga_id}"` scored by
//!   `retention_until`, so `delete_expired` finds expired snapshots without
//!   a scan; `P sagascope:replay-of:{new_saga_id}` for
//!   [`SnapshotStore::replay_producing`];
//! - `P sagascope:index-state`: present once the index covers everything
//!   under the prefix (set by [`RedisStore::reindex`], or by the first write
//!   into a prefix that holds no sagaz data yet).
//!
//! In a Cluster these keys live in different slots, so no script spans them.
//! Every write updates them in steps that are each idempotent (write the
//! snapshot, add it to the saga's set, set the hash if newer, then move the
//! saga in the sorted sets), and every read checks a sorted-set entry
//! against the hash before using it. The limits: a writer that dies between
//! steps, or a delete racing a save of the same saga, can leave a saga
//! listed under an old time or status until its next write or a `reindex`;
//! such entries are skipped (never shown wrong) and repaired when met.
//! Data that sagaz writes after the index was built is not in it: a saga
//! already listed is refreshed when its page is read (its own set shows a
//! newer snapshot), a saga sagaz started since is missing until `reindex`.
//! The list says so (`index_warning`) when the index was never built.
//!
//! As in sagaz, a saga's set keeps the ids of snapshots Redis has expired;
//! reads skip them, and `count_snapshots` (`ZCARD`) still counts them.
//!
//! The first write of a process into a prefix whose index-state marker is
//! missing SCANs once for sagaz keys (to tell a fresh prefix from one that
//! needs `reindex`); after the marker exists, writes check one key.
//!
//! # Round trips
//!
//! Reads are batched: `MGET` for values (the Cluster client splits it by
//! slot), a pipeline (one node) or concurrent commands on the multiplexed
//! connection (Cluster) for the rest, so a page of 50 sagas costs a handful
//! of round trips, not one per snapshot as sagaz's reader does.
//!
//! # URLs
//!
//! `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), and for a
//! Cluster `redis+cluster://host:port,host:port,…` (or `rediss+cluster://`,
//! or any of the single-node forms with `cluster=true`). Parameters:
//! `prefix=` (default `snapshot:`), `compression=zstd|none` (used when
//! [`OpenOptions::compression`] is unset; default zstd like sagaz),
//! `connect_timeout=SECONDS` (default 5). Other parameters go to the driver.
//!
//! # Files
//!
//! `url.rs` reads the URL; `conn.rs` connects (TLS, one server or a
//! Cluster) and carries commands; `schema.rs` names the keys and encodes
//! entries; `read.rs` gets and lists; `write.rs` saves, deletes and takes
//! locks; `index.rs` keeps the saga index and rebuilds it. The Lua scripts
//! are in `scripts/`.

mod conn;
mod index;
mod meta;
mod read;
mod schema;
mod url;
mod write;

use std::sync::atomic::AtomicBool;

use crate::model::Snapshot;

use super::codec::{Codec, Compression};
use super::*;

use self::conn::Conn;
pub(crate) use self::url::check_url;

const BACKEND: &str = "redis";

/// sagaz's default key prefix.
pub const DEFAULT_PREFIX: &str = "snapshot:";

/// Commands per pipeline / keys per MGET.
const BATCH: usize = 500;

/// The Redis store (one server or a Cluster).
pub struct RedisStore {
    conn: Conn,
    location: String,
    prefix: String,
    codec: Codec,
    readonly: bool,
    /// Set once this process has made sure the index-state marker is right.
    marker_checked: AtomicBool,
    /// `SAVE_SINGLE`'s and `RANGE_VALUES`'s hashes for `EVALSHA`, loaded on
    /// first use.
    save_sha: tokio::sync::OnceCell<String>,
    range_sha: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.location)
            .field("prefix", &self.prefix)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .field("compression", &self.codec.compression)
            .finish()
    }
}

impl RedisStore {
    /// The key prefix (sagaz's `key_prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this store talks to a Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// The compression used for writes.
    pub fn compression(&self) -> Compression {
        self.codec.compression
    }
}

super::forward::impl_store_from_files!(RedisStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: BACKEND,
            preserves_key_order: true,
            preserves_extra_fields: true,
            stores_external_refs: true,
            stores_nul_in_strings: true,
            indexed_saga_list: true,
            distributed_locks: true,
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        self.write_snapshots(std::slice::from_ref(snapshot)).await
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        self.write_snapshots(snapshots).await
    }

    async fn reindex(&self) -> StoreResult<Option<ReindexReport>> {
        index::reindex(self).await.map(Some)
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
