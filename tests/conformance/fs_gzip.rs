//! The folder store with `compression=gzip`: every sagaz file gzip, index
//! and replay files still named `.json`. Corrupt entries as in `fs`.

use std::sync::Arc;

use sagascope::store::SnapshotStore;

use crate::cases::CorruptFixture;

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(crate::fs::open("?compression=gzip").await.0)
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let (store, dir) = crate::fs::open("?compression=gzip").await;
    Some(CorruptFixture::new(store, move |s, kind| {
        let dir = dir.clone();
        async move { crate::fs::inject(&dir, &s, kind, true) }
    }))
}

conformance_cases!(corrupt = corrupt_fixture);
