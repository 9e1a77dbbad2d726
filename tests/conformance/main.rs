//! The store conformance suite: the same cases against every backend.
//!
//! # Contract for a backend module
//!
//! Add `mod <backend>;` below (behind `#[cfg(feature = "...")]` when the
//! backend is a feature) and, in `tests/conformance/<backend>.rs`:
//!
//! ```ignore
//! pub async fn store() -> Option<Arc<dyn SnapshotStore>> { ... }
//! conformance_cases!();
//! ```
//!
//! `store()` returns a store to test, or `None` when its server is not
//! answering (decide with `common::backend_available(name, url, reachable)`:
//! in CI that panics, elsewhere it prints a SKIP line). It is called once per
//! test and must give an empty store of the test's own: a fresh key prefix /
//! schema / bucket / directory per call, so other tests and leftovers of
//! earlier runs stay out of it. The `whole_store` cases (unfiltered saga
//! lists, exact counts) rely on that and fail saying so otherwise. Tests run
//! in parallel, possibly alongside other processes using the same server,
//! and every other case copes even with a shared, non-empty store — fresh
//! UUID saga/snapshot/replay ids, a unique saga name or id prefix per case,
//! counts as lower bounds where other data may be counted.
//!
//! `conformance_cases!()` expands to one `#[tokio::test]` per case, named
//! `<backend>::<case>` (`cargo test --test conformance <backend>::`).
//!
//! ## Corrupt entries (optional)
//!
//! A backend that can write a broken entry behind the store's back also
//! defines
//!
//! ```ignore
//! pub async fn corrupt_fixture() -> Option<cases::CorruptFixture> {
//!     let store = /* open the store, keep a raw handle (pool, client, dir) */;
//!     Some(CorruptFixture::new(Arc::new(store), move |snapshot, kind| {
//!         let raw = raw.clone();
//!         async move { /* write `snapshot`, damaged as `kind` says */ true }
//!     }))
//! }
//! conformance_cases!(corrupt = corrupt_fixture);
//! ```
//!
//! instead of `conformance_cases!()` (or invokes `corrupt_cases!(f)` beside
//! it). The injector writes the given snapshot where the store will find it
//! among its saga's entries (same id, saga, time, index membership) but
//! damaged as [`cases::Corruption`] says: invalid JSON, a context that is a
//! JSON array, `step_index` as the text `"one"`, or a `created_at` that is
//! not a time. It returns `false` for damage the backend cannot hold. The
//! cases then check that listings name the bad entry (`bad[].key` contains
//! the snapshot id) and still serve the good ones, that `get_snapshot` of it
//! is `Err(StoreError::Corrupt)` naming it, that `list_sagas` still works,
//! and that the entry can be deleted. A backend that defines no
//! `corrupt_fixture` simply does not run these cases.

#[path = "../common/mod.rs"]
mod common;

#[macro_use]
mod cases;

mod fs;
mod fs_gzip;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod redis_cluster;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "s3")]
mod s3_plain;
mod sqlite;

/// `gzip.compress`, for backends whose files sagaz gzips.
pub fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = vec![];
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}
