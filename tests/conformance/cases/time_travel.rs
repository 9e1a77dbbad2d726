//! Time travel: `snapshot_at` at, between and around snapshot times.

use super::*;

pub async fn snapshot_at_time_boundaries(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    // Whole second (no fraction in sagaz's text), then microsecond steps.
    let snaps = vec![
        mk(&id, &name, "a", 0, SagaStatus::Executing, 0),
        mk(&id, &name, "b", 1, SagaStatus::Executing, 1),
        mk(&id, &name, "c", 2, SagaStatus::Executing, 2),
        mk(&id, &name, "d", 3, SagaStatus::Executing, 999_999),
        mk(&id, &name, "e", 4, SagaStatus::Completed, 1_000_000),
    ];
    store.save_snapshots(&snaps).await.unwrap();
    let at = |us: i64| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .snapshot_at(&id, t0().plus_micros(us))
                .await
                .unwrap()
                .map(|s| s.step_name)
        }
    };
    assert_eq!(at(-1).await, None, "before the first");
    assert_eq!(at(-86_400_000_000).await, None, "a day before the first");
    assert_eq!(at(0).await.as_deref(), Some("a"), "exactly at the first");
    assert_eq!(at(1).await.as_deref(), Some("b"), "exactly at a later one");
    assert_eq!(at(2).await.as_deref(), Some("c"));
    assert_eq!(at(3).await.as_deref(), Some("c"), "between two");
    assert_eq!(at(999_998).await.as_deref(), Some("c"), "1 µs before d");
    assert_eq!(at(999_999).await.as_deref(), Some("d"));
    assert_eq!(
        at(1_000_000).await.as_deref(),
        Some("e"),
        "exactly at the last"
    );
    assert_eq!(at(1_000_001).await.as_deref(), Some("e"), "after the last");
    assert_eq!(
        at(365 * 86_400_000_000).await.as_deref(),
        Some("e"),
        "long after the last"
    );
    assert_eq!(
        store.snapshot_at(&saga_id(), t0()).await.unwrap(),
        None,
        "unknown saga"
    );
    let full = store.snapshot_at(&id, t0().plus_micros(2)).await.unwrap();
    assert_eq!(
        full.as_ref(),
        Some(&snaps[2]),
        "the whole snapshot comes back"
    );
}

pub async fn snapshot_at_equal_timestamps_breaks_ties_by_id(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    let before = mk(&id, &name, "before", 0, SagaStatus::Executing, 99);
    let ties: Vec<_> = (0..5)
        .map(|i| {
            mk(
                &id,
                &name,
                &format!("tie_{i}"),
                i + 1,
                SagaStatus::Executing,
                100,
            )
        })
        .collect();
    let after = mk(&id, &name, "after", 9, SagaStatus::Completed, 101);
    store.save_snapshot(&after).await.unwrap();
    for s in ties.iter().rev() {
        store.save_snapshot(s).await.unwrap();
    }
    store.save_snapshot(&before).await.unwrap();
    let last_tie = sorted(ties.clone(), Order::Asc).pop().unwrap();
    let got = store.snapshot_at(&id, t0().plus_micros(100)).await.unwrap();
    assert_eq!(
        got.as_ref(),
        Some(&last_tie),
        "ties: the one with the greatest snapshot_id"
    );
    // Consistent with list order: it is the last of the ties oldest-first.
    let asc = all_snapshots(&store, &id).await;
    assert_eq!(asc[5], last_tie);
    assert_eq!(
        store.snapshot_at(&id, t0().plus_micros(99)).await.unwrap(),
        Some(before)
    );
    assert_eq!(
        store.snapshot_at(&id, t0().plus_micros(101)).await.unwrap(),
        Some(after)
    );
    // Asking twice gives the same answer.
    assert_eq!(
        store.snapshot_at(&id, t0().plus_micros(100)).await.unwrap(),
        got
    );
}

pub async fn snapshot_at_first_of_ten_thousand_is_step_zero(store: Arc<dyn SnapshotStore>) {
    const N: i64 = 10_000;
    let id = saga_id();
    let name = saga_name();
    let snaps: Vec<_> = (0..N)
        .map(|i| {
            let mut s = mk(
                &id,
                &name,
                &format!("step_{i}"),
                i,
                SagaStatus::Executing,
                i * 1_000,
            );
            s.context = ctx(json!({"i": i}));
            s
        })
        .collect();
    store.save_snapshots(&snaps).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), N as u64);
    let index_at = |us: i64| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .snapshot_at(&id, t0().plus_micros(us))
                .await
                .unwrap()
                .map(|s| s.step_index)
        }
    };
    assert_eq!(index_at(0).await, Some(0), "at the first snapshot's time");
    assert_eq!(index_at(-1).await, None);
    assert_eq!(index_at(1).await, Some(0));
    assert_eq!(index_at(999).await, Some(0));
    assert_eq!(index_at(1_000).await, Some(1));
    assert_eq!(index_at(5_000_000).await, Some(5_000));
    assert_eq!(index_at(5_000_999).await, Some(5_000));
    assert_eq!(index_at((N - 1) * 1_000).await, Some(N - 1));
    assert_eq!(index_at(N * 1_000_000).await, Some(N - 1));
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!(sum.snapshot_count, N as u64);
    assert_eq!(sum.latest_step_index, N - 1);
    assert_eq!(sum.first_at, t0());
}
