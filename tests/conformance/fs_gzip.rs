use std::sync::Arc;

use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    // Leaked on purpose: the folder must outlive the store.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let url = format!("file://{}?compression=gzip", dir.path().display());
    Some(
        store::open(&StoreUrl::new(url), &OpenOptions::default())
            .await
            .expect("open gzip folder store"),
    )
}

conformance_cases!();
