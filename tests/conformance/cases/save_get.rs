//! Saving and reading back: round trips, replacing by id, batches, the latest
//! snapshot overall and per step, and writers racing on one saga.

use super::*;

pub async fn save_then_get_round_trips(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 1, 0);
    s.completed_steps = vec!["reserve_inventory".into()];
    s.retention_until = None;
    store.save_snapshot(&s).await.unwrap();
    let got = store
        .get_snapshot(&s.snapshot_id)
        .await
        .unwrap()
        .expect("saved snapshot is found");
    assert_eq!(got, s);
    assert!(store.get_snapshot(&saga_id()).await.unwrap().is_none());
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 1);
}

pub async fn saving_same_id_replaces(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let a = snap(&id, 0, 0);
    let b = snap(&id, 1, 1_000);
    store.save_snapshots(&[a.clone(), b.clone()]).await.unwrap();
    // Same id again, changed content: replaced, not added.
    let mut a2 = a.clone();
    a2.status = SagaStatus::Failed;
    a2.context.insert("error".into(), json!("card declined"));
    store.save_snapshot(&a2).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 2);
    assert_eq!(
        store.get_snapshot(&a.snapshot_id).await.unwrap(),
        Some(a2.clone())
    );
    assert_eq!(
        all_snapshots(&store, &id).await,
        vec![a2.clone(), b.clone()]
    );
    // Replaced with a later time: listed once, at its new place, and the
    // saga's summary follows.
    let mut a3 = a2.clone();
    a3.created_at = t0().plus_micros(2_000);
    a3.step_name = "ship_order".into();
    a3.step_index = 2;
    store.save_snapshot(&a3).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 2);
    assert_eq!(
        all_snapshots(&store, &id).await,
        vec![b.clone(), a3.clone()]
    );
    assert_eq!(
        store.latest_snapshot(&id, None).await.unwrap().as_ref(),
        Some(&a3),
        "moved later, it is the latest"
    );
    let sum = store.saga_summary(&id).await.unwrap().expect("summary");
    assert_eq!(sum.snapshot_count, 2);
    assert_eq!(sum.first_at, b.created_at);
    assert_eq!(sum.last_at, a3.created_at);
    assert_eq!(sum.latest_step, "ship_order");
    assert_eq!(sum.latest_status, SagaStatus::Failed);
    let listed = store
        .list_sagas(
            &SagaFilter {
                id_prefix: Some(id.clone()),
                ..SagaFilter::default()
            },
            &page(10),
        )
        .await
        .unwrap();
    assert_eq!(listed.sagas, vec![sum]);
}

pub async fn save_snapshots_batch_equals_individual_saves(store: Arc<dyn SnapshotStore>) {
    let (one, many) = (saga_id(), saga_id());
    let name = saga_name();
    let make = |saga: &str| -> Vec<Snapshot> {
        (0..40)
            .map(|i| {
                let mut s = mk(
                    saga,
                    &name,
                    &format!("step_{i}"),
                    i,
                    SagaStatus::Executing,
                    (i / 3) * 10,
                );
                s.context
                    .insert("payload".into(), json!({"i": i, "tags": ["a", "b"]}));
                s
            })
            .collect()
    };
    let singles = make(&one);
    let batch = make(&many);
    for s in &singles {
        store.save_snapshot(s).await.unwrap();
    }
    store.save_snapshots(&batch).await.unwrap();
    store.save_snapshots(&[]).await.unwrap();
    let strip = |v: Vec<Snapshot>| -> Vec<(Timestamp, String, i64, Map<String, Value>)> {
        v.into_iter()
            .map(|s| {
                let mut c = s.context;
                c.remove("saga");
                (s.created_at, s.step_name, s.step_index, c)
            })
            .collect()
    };
    let got_one = all_snapshots(&store, &one).await;
    let got_many = all_snapshots(&store, &many).await;
    assert_eq!(got_many, sorted(batch.clone(), Order::Asc));
    assert_eq!(got_one, sorted(singles, Order::Asc));
    let mut a = strip(got_one);
    let mut b = strip(got_many);
    // Ties are ordered by (random) id, so compare as sets.
    a.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
    b.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
    assert_eq!(a, b);
    for s in &batch {
        assert_eq!(
            store.get_snapshot(&s.snapshot_id).await.unwrap().as_ref(),
            Some(s)
        );
    }
    let (s1, s2) = (
        store.saga_summary(&one).await.unwrap().unwrap(),
        store.saga_summary(&many).await.unwrap().unwrap(),
    );
    assert_eq!(s1.snapshot_count, 40);
    assert_eq!(s2.snapshot_count, 40);
    assert_eq!((s1.first_at, s1.last_at), (s2.first_at, s2.last_at));
}

pub async fn latest_snapshot_overall_and_per_step(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    // charge_payment ran twice (a retry loop): the newest one wins.
    let snaps = [
        mk(&id, &name, "reserve_inventory", 0, SagaStatus::Executing, 0),
        mk(&id, &name, "charge_payment", 1, SagaStatus::Executing, 10),
        mk(
            &id,
            &name,
            "charge_payment",
            1,
            SagaStatus::Compensating,
            20,
        ),
        mk(&id, &name, "ship_order", 2, SagaStatus::Executing, 30),
    ];
    for s in snaps.iter().rev() {
        store.save_snapshot(s).await.unwrap();
    }
    assert_eq!(
        store.latest_snapshot(&id, None).await.unwrap().as_ref(),
        Some(&snaps[3])
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("charge_payment"))
            .await
            .unwrap()
            .as_ref(),
        Some(&snaps[2])
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("reserve_inventory"))
            .await
            .unwrap()
            .as_ref(),
        Some(&snaps[0])
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("no_such_step"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.latest_snapshot(&saga_id(), None).await.unwrap(), None);
    assert_eq!(
        store
            .latest_snapshot(&saga_id(), Some("charge_payment"))
            .await
            .unwrap(),
        None
    );
    // Two newest at the same microsecond: the one listed last wins.
    let t = 40;
    let tie = vec![
        mk(&id, &name, "notify", 3, SagaStatus::Executing, t),
        mk(&id, &name, "__completed__", 4, SagaStatus::Completed, t),
    ];
    store.save_snapshots(&tie).await.unwrap();
    let newest = sorted(tie, Order::Desc).remove(0);
    assert_eq!(
        store.latest_snapshot(&id, None).await.unwrap(),
        Some(newest.clone())
    );
    assert_eq!(
        store
            .list_snapshots(&id, &SnapshotQuery::newest(1))
            .await
            .unwrap()
            .items,
        vec![newest]
    );
}

/// `latest_snapshots_for_step` (batch dry runs use it) answers what
/// `latest_snapshot(saga, Some(step))` answers for each saga, and leaves out
/// sagas with no snapshot for the step.
pub async fn batched_latest_for_step_equals_one_by_one(store: Arc<dyn SnapshotStore>) {
    let ids: Vec<String> = (0..5).map(|_| saga_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        // Saga n has n+1 snapshots: saga 0 never reached step 1.
        let snaps: Vec<_> = (0..=n as i64).map(|i| snap(id, i, i * 1_000)).collect();
        store.save_snapshots(&snaps).await.unwrap();
    }
    let step = snap(&ids[0], 1, 0).step_name;
    let mut asked = ids.clone();
    asked.push(saga_id()); // unknown saga
    let got = store
        .latest_snapshots_for_step(&asked, &step)
        .await
        .unwrap();
    assert!(got.bad.is_empty());
    let mut want = Vec::new();
    for id in &ids {
        if let Some(s) = store.latest_snapshot(id, Some(&step)).await.unwrap() {
            want.push(s);
        }
    }
    let key = |s: &sagascope::model::Snapshot| s.saga_id.clone();
    let mut got = got.items;
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(want.len(), 4, "sagas 1..4 reached the step");
    assert_eq!(got, want);
    assert!(store
        .latest_snapshots_for_step(&[], &step)
        .await
        .unwrap()
        .items
        .is_empty());
}

pub async fn histories_of_many_sagas_equal_one_by_one(store: Arc<dyn SnapshotStore>) {
    let ids: Vec<String> = (0..4).map(|_| saga_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        // Saga n has n snapshots and n replays: saga 0 has none.
        let snaps: Vec<_> = (0..n as i64).map(|i| snap(id, i, i * 1_000)).collect();
        store.save_snapshots(&snaps).await.unwrap();
        for k in 0..n as i64 {
            store.save_replay(&replay(id, k * 1_000)).await.unwrap();
        }
    }
    let mut asked = ids.clone();
    asked.push(saga_id()); // unknown saga
    let snaps = store.snapshots_of_sagas(&asked).await.unwrap();
    let replays = store.replays_of_sagas(&asked).await.unwrap();
    assert!(snaps.bad.is_empty() && replays.bad.is_empty());
    for id in &ids {
        let one = store
            .list_snapshots(id, &SnapshotQuery::all())
            .await
            .unwrap();
        let many: Vec<_> = snaps
            .items
            .iter()
            .filter(|s| &s.saga_id == id)
            .cloned()
            .collect();
        assert_eq!(many, one.items, "snapshots of {id}, oldest first");
        let one = store.list_replays(id, None).await.unwrap();
        let many: Vec<_> = replays
            .items
            .iter()
            .filter(|r| &r.original_saga_id == id)
            .cloned()
            .collect();
        assert_eq!(many, one.items, "replays of {id}, newest first");
    }
    assert_eq!(snaps.items.len(), 6);
    assert_eq!(replays.items.len(), 6);
    assert!(store
        .snapshots_of_sagas(&[])
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store.replays_of_sagas(&[]).await.unwrap().items.is_empty());
}

pub async fn concurrent_saves_are_all_kept(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    let tasks: Vec<_> = (0..8i64)
        .map(|t| {
            let store = store.clone();
            let (id, name) = (id.clone(), name.clone());
            tokio::spawn(async move {
                for i in 0..25i64 {
                    let n = t * 25 + i;
                    let s = mk(
                        &id,
                        &name,
                        &format!("step_{n}"),
                        n,
                        SagaStatus::Executing,
                        n,
                    );
                    if i % 5 == 0 {
                        store.save_snapshots(&[s]).await.unwrap();
                    } else {
                        store.save_snapshot(&s).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 200);
    let listed = all_snapshots(&store, &id).await;
    let indexes: Vec<i64> = listed.iter().map(|s| s.step_index).collect();
    assert_eq!(indexes, (0..200).collect::<Vec<_>>());
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!(sum.snapshot_count, 200);
    assert_eq!(
        (sum.latest_step_index, sum.first_at, sum.last_at),
        (199, t0(), t0().plus_micros(199))
    );
}
