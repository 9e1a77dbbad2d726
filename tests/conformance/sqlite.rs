use std::sync::Arc;

use sagascope::store::{sqlite::SqliteStore, SnapshotStore};

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    // Leaked on purpose: the file must outlive the store, and each test
    // process is short-lived.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let store = SqliteStore::open_path(dir.path().join("conformance.db"), false)
        .await
        .expect("open sqlite");
    Some(Arc::new(store))
}

conformance_cases!();
