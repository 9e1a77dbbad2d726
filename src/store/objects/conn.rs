//! The storage primitives a backend provides ([`Driver`]: S3 in
//! `conn/s3.rs`, a folder in `conn/fs.rs`), and the health check over them.

pub mod fs;
#[cfg(feature = "s3")]
pub mod s3;

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::model::Timestamp;

use super::super::*;
use super::ObjectStore;

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

/// A short pause that grows with each attempt, with jitter so contending
/// writers spread out.
pub(super) async fn backoff(attempt: u32) {
    let base = 5u64 << attempt.min(5);
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % (base + 1);
    tokio::time::sleep(Duration::from_millis(base.min(200) + jitter.min(200))).await;
}

pub(super) async fn health(this: &ObjectStore) -> StoreResult<Health> {
    let start = Instant::now();
    this.driver.ping().await?;
    let latency = start.elapsed();
    let ids = this.saga_ids().await.ok();
    let snaps = this.driver.list(this.layout.snapshot_dir()).await.ok();
    let replays = this.driver.list(this.layout.replay_dir()).await.ok();
    let size = snaps
        .as_ref()
        .map(|s| s.iter().map(|l| l.size).sum::<u64>());
    Ok(Health {
        backend: this.backend(),
        url: this.location(),
        reachable: true,
        latency,
        sagas: ids.map(|m| m.len() as u64),
        snapshots: snaps.map(|s| s.len() as u64),
        replays: replays.map(|s| s.len() as u64),
        size_bytes: size,
        notes: vec![],
    })
}
