//! The S3 store with `compression=none`: plain JSON snapshot objects named
//! `.json` (sagaz without zstd), a fresh bucket per test. Corrupt entries as
//! in `s3`, written plain.
#![cfg(feature = "s3")]

use std::sync::Arc;

use sagascope::store::SnapshotStore;

use crate::cases::CorruptFixture;

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(crate::s3::open(true).await?.0)
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    crate::s3::corrupt_fixture_with(true).await
}

conformance_cases!(corrupt = corrupt_fixture);
