//! The cases. Each takes a fresh, empty store (or one whose other contents
//! cannot collide: tests use fresh saga ids) and asserts what a user of the
//! store would notice.

use std::sync::Arc;

use sagascope::store::{SnapshotQuery, SnapshotStore};

use crate::common::*;

/// Expands to one test per case for the backend module it is used in; the
/// module must define `async fn store() -> Option<Arc<dyn SnapshotStore>>`.
#[macro_export]
macro_rules! conformance_cases {
    () => {
        conformance_cases!(@cases
            save_then_get_round_trips,
            list_orders_oldest_first_and_newest_first,
        );
    };
    (@cases $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = store().await {
                    $crate::cases::$case(store).await;
                }
            }
        )*
    };
}

pub async fn save_then_get_round_trips(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let s = snap(&id, 0, 0);
    store.save_snapshot(&s).await.unwrap();
    let got = store.get_snapshot(&s.snapshot_id).await.unwrap().expect("saved snapshot is found");
    assert_eq!(got, s);
    assert!(store.get_snapshot(&saga_id()).await.unwrap().is_none());
}

pub async fn list_orders_oldest_first_and_newest_first(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let snaps: Vec<_> = (0..5).map(|i| snap(&id, i, i * 1_000)).collect();
    // Saved out of order: the store orders by time, not by arrival.
    for s in snaps.iter().rev() {
        store.save_snapshot(s).await.unwrap();
    }
    let asc = store.list_snapshots(&id, &SnapshotQuery::all()).await.unwrap();
    assert_eq!(asc.items, snaps);
    let desc = store.list_snapshots(&id, &SnapshotQuery::newest(3)).await.unwrap();
    let want: Vec<_> = snaps.iter().rev().take(3).cloned().collect();
    assert_eq!(desc.items, want);
}
