use std::sync::Arc;

use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    // Leaked on purpose: the folder must outlive the store, and each test
    // process is short-lived.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let url = format!("file://{}", dir.path().display());
    Some(
        store::open(&StoreUrl::new(url), &OpenOptions::default())
            .await
            .expect("open folder store"),
    )
}

conformance_cases!();
