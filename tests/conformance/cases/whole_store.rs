//! The whole store: health, and what only a store of the test's own can
//! show exactly — unfiltered saga lists and counts, each filter alone,
//! `delete_expired`'s count and health's counts.

use super::*;

pub async fn health_names_backend_and_counts(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    store
        .save_snapshots(&[snap(&id, 0, 0), snap(&id, 1, 10)])
        .await
        .unwrap();
    store.save_replay(&replay(&id, 20)).await.unwrap();
    let h = store.health().await.unwrap();
    assert!(h.reachable);
    assert_eq!(h.backend, store.capabilities().backend);
    // Shared stores hold other tests' data too: at least ours.
    if let Some(n) = h.sagas {
        assert!(n >= 1, "sagas {n}");
    }
    if let Some(n) = h.snapshots {
        assert!(n >= 2, "snapshots {n}");
    }
    if let Some(n) = h.replays {
        assert!(n >= 1, "replays {n}");
    }
    assert!(!h.url.is_empty(), "health names where the store is");
}

/// Fails, saying why, when the store is not the empty one of the test's own
/// that `store()` must give (see `main.rs`).
async fn assert_empty(store: &Arc<dyn SnapshotStore>) {
    assert_eq!(
        store.count_sagas(&SagaFilter::default()).await.unwrap(),
        0,
        "the whole-store cases need an empty store of their own: store() must give one per test"
    );
}

/// With no filter, `list_sagas` and `count_sagas` cover the whole store,
/// newest activity first, with keyset paging; each filter works alone (no
/// saga name to narrow it); deleting a snapshot or a saga shows in the
/// unfiltered list and in every filter.
pub async fn whole_store_list_sagas_unfiltered_and_by_one_filter(store: Arc<dyn SnapshotStore>) {
    assert_empty(&store).await;
    // Five sagas; saga i's newest snapshot is at i ms, so the list order is 4..0.
    let ids: Vec<String> = (0..5).map(|_| saga_id()).collect();
    let mut all = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let base = i as i64 * 1_000;
        let name = if i % 2 == 0 {
            "OrderSaga"
        } else {
            "RefundSaga"
        };
        let status = if i == 1 || i == 3 {
            SagaStatus::Failed
        } else {
            SagaStatus::Executing
        };
        let mut first = snap(id, 0, base - 500);
        first.saga_name = name.into();
        let mut last = snap(id, 1, base);
        last.saga_name = name.into();
        last.status = status;
        all.push(first);
        all.push(last);
    }
    store.save_snapshots(&all).await.unwrap();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    let everything = SagaFilter::default();

    let p = store.list_sagas(&everything, &page(10)).await.unwrap();
    assert!(p.index_warning.is_none(), "{:?}", p.index_warning);
    assert!(p.bad.is_empty(), "{:?}", p.bad);
    assert_eq!(saga_ids(&p.sagas), want, "newest activity first");
    assert!(p.next.is_none());
    let s0 = p.sagas.last().unwrap();
    assert_eq!(s0.snapshot_count, 2);
    assert_eq!(s0.first_at, t0().plus_micros(-500));
    assert_eq!(s0.last_at, t0());
    assert_eq!(s0.latest_step, "charge_payment");
    assert_eq!(s0.latest_step_index, 1);
    assert_eq!(s0.saga_name, "OrderSaga");
    assert_eq!(store.count_sagas(&everything).await.unwrap(), 5);
    // Keyset paging over the whole store: no repeats, no gaps.
    for size in [1usize, 2] {
        assert_eq!(
            saga_ids(&all_sagas(&store, &everything, size).await),
            want,
            "pages of {size}"
        );
    }
    let first = store.list_sagas(&everything, &page(4)).await.unwrap();
    assert_eq!(first.sagas.len(), 4);
    let last = store
        .list_sagas(
            &everything,
            &SagaPageRequest {
                limit: 4,
                after: first.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(saga_ids(&last.sagas), vec![ids[0].as_str()]);
    assert!(last.next.is_none());

    // Each filter alone.
    let failed = SagaFilter {
        statuses: vec![SagaStatus::Failed],
        ..SagaFilter::default()
    };
    let p = store.list_sagas(&failed, &page(10)).await.unwrap();
    assert_eq!(saga_ids(&p.sagas), vec![ids[3].as_str(), ids[1].as_str()]);
    assert_eq!(store.count_sagas(&failed).await.unwrap(), 2);
    let p = store.list_sagas(&failed, &page(1)).await.unwrap();
    assert_eq!(saga_ids(&p.sagas), vec![ids[3].as_str()]);
    let p2 = store
        .list_sagas(
            &failed,
            &SagaPageRequest {
                limit: 1,
                after: p.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(saga_ids(&p2.sagas), vec![ids[1].as_str()]);
    assert!(p2.next.is_none(), "the page that ends the list says so");
    let two = SagaFilter {
        statuses: vec![SagaStatus::Failed, SagaStatus::Executing],
        ..SagaFilter::default()
    };
    assert_eq!(saga_ids(&all_sagas(&store, &two, 10).await), want);
    let completed = SagaFilter {
        statuses: vec![SagaStatus::Completed],
        ..SagaFilter::default()
    };
    assert_eq!(store.count_sagas(&completed).await.unwrap(), 0);
    let refunds = by_name("RefundSaga");
    assert_eq!(store.count_sagas(&refunds).await.unwrap(), 2);
    assert_eq!(
        saga_ids(&all_sagas(&store, &refunds, 10).await),
        vec![ids[3].as_str(), ids[1].as_str()]
    );
    let by_prefix = SagaFilter {
        id_prefix: Some(ids[2][..8].to_string()),
        ..SagaFilter::default()
    };
    assert_eq!(
        saga_ids(&all_sagas(&store, &by_prefix, 10).await),
        vec![ids[2].as_str()]
    );
    let window = SagaFilter {
        since: Some(t0().plus_micros(1_000)),
        until: Some(t0().plus_micros(3_000)),
        ..SagaFilter::default()
    };
    assert_eq!(
        saga_ids(&all_sagas(&store, &window, 10).await),
        vec![ids[3].as_str(), ids[2].as_str(), ids[1].as_str()]
    );
    let step = SagaFilter {
        latest_step: Some("charge_payment".into()),
        ..SagaFilter::default()
    };
    assert_eq!(store.count_sagas(&step).await.unwrap(), 5);

    // Deleting saga 4's newest snapshot: its 3.5 ms one is still the
    // newest activity in the store.
    let id = &ids[4];
    let latest = store.latest_snapshot(id, None).await.unwrap().unwrap();
    assert!(store.delete_snapshot(&latest.snapshot_id).await.unwrap());
    let s = store.saga_summary(id).await.unwrap().unwrap();
    assert_eq!((s.snapshot_count, s.latest_step_index), (1, 0));
    let p = store.list_sagas(&everything, &page(10)).await.unwrap();
    assert_eq!(p.sagas.iter().position(|s| &s.saga_id == id), Some(0));
    assert_eq!(p.sagas[0].last_at, t0().plus_micros(3_500));
    // Deleting a saga removes it from the list and from every filter.
    assert_eq!(store.delete_saga(&ids[3]).await.unwrap(), 2);
    assert_eq!(store.count_sagas(&failed).await.unwrap(), 1);
    assert_eq!(store.count_sagas(&refunds).await.unwrap(), 1);
    assert!(store.saga_summary(&ids[3]).await.unwrap().is_none());
    let left: Vec<&str> = [4, 2, 1, 0].iter().map(|&i| ids[i].as_str()).collect();
    assert_eq!(saga_ids(&all_sagas(&store, &everything, 10).await), left);
    assert_eq!(store.count_sagas(&everything).await.unwrap(), 4);
}

/// Backends whose health counts what they hold (no estimate, no "not
/// known"): memory, SQLite, folders and S3.
const COUNTS_IN_HEALTH: [&str; 4] = ["memory", "sqlite", "file", "s3"];

/// On a store of its own, `delete_expired` answers exactly how many
/// snapshots it removed, and health counts sagas, snapshots and replays
/// exactly (replays outlive `delete_saga`), unless the backend does not
/// know a count or its notes say the counts are estimates.
pub async fn whole_store_delete_expired_and_health_count_exactly(store: Arc<dyn SnapshotStore>) {
    assert_empty(&store).await;
    let (a, b) = (saga_id(), saga_id());
    let snaps_a: Vec<_> = (0..3).map(|i| snap(&a, i, i * 1_000)).collect();
    let snaps_b: Vec<_> = (0..2).map(|i| snap(&b, i, 10_000 + i)).collect();
    store.save_snapshots(&snaps_a).await.unwrap();
    store.save_snapshots(&snaps_b).await.unwrap();
    // The others are kept 30 days after t0; this one a day.
    let day = 86_400_000_000;
    let mut old = snap(&a, 2, 20_000);
    old.step_name = "expiring".into();
    old.retention_until = Some(t0().plus_micros(day));
    store.save_snapshot(&old).await.unwrap();
    assert_eq!(
        store
            .delete_expired(t0().plus_micros(2 * day))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_snapshot(&old.snapshot_id).await.unwrap(), None);
    assert_eq!(
        store
            .delete_expired(t0().plus_micros(2 * day))
            .await
            .unwrap(),
        0,
        "nothing left to expire"
    );
    let (r1, r2) = (replay(&a, 1), replay(&a, 2));
    store.save_replays(&[r1.clone(), r2]).await.unwrap();
    assert_eq!(store.delete_saga(&a).await.unwrap(), 3);
    assert_eq!(store.count_sagas(&SagaFilter::default()).await.unwrap(), 1);
    assert_eq!(store.get_replay(&r1.replay_id).await.unwrap(), Some(r1));

    let h = store.health().await.unwrap();
    assert!(h.reachable);
    assert!(!h.url.is_empty());
    let backend = store.capabilities().backend;
    if COUNTS_IN_HEALTH.contains(&backend) {
        assert!(
            h.sagas.is_some() && h.snapshots.is_some() && h.replays.is_some(),
            "{backend} counts everything: {h:?}"
        );
    }
    let estimated = h.notes.iter().any(|n| n.contains("estimate"));
    for (what, got, want) in [
        ("sagas", h.sagas, 1),
        ("snapshots", h.snapshots, 2),
        ("replays", h.replays, 2),
    ] {
        if let (Some(n), false) = (got, estimated) {
            assert_eq!(n, want, "{what} in {h:?}");
        }
    }
}
