//! The store conformance suite: the same cases against every backend.
//!
//! Each backend module provides `async fn store() -> Option<Arc<dyn
//! SnapshotStore>>` (None = skipped, see `common::backend_available`) and
//! invokes `conformance_cases!` to get one `#[tokio::test]` per case, named
//! `<backend>::<case>`.

#[path = "../common/mod.rs"]
mod common;

#[macro_use]
mod cases;

mod fs;
mod fs_gzip;
mod memory;
#[cfg(feature = "s3")]
mod s3;
mod sqlite;
