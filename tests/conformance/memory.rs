use std::sync::Arc;

use sagascope::store::{memory::MemoryStore, SnapshotStore};

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(Arc::new(MemoryStore::new()))
}

conformance_cases!();
