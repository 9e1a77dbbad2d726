//! Counting and deleting: one snapshot, a whole saga, and what is past its
//! retention.

use super::*;

pub async fn count_and_delete_snapshot(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let snaps: Vec<_> = (0..3).map(|i| snap(&id, i, i * 1_000)).collect();
    store.save_snapshots(&snaps).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 3);
    assert_eq!(store.count_snapshots(&saga_id()).await.unwrap(), 0);
    // Deleting the newest moves the saga's "latest" back one.
    assert!(store.delete_snapshot(&snaps[2].snapshot_id).await.unwrap());
    assert!(
        !store.delete_snapshot(&snaps[2].snapshot_id).await.unwrap(),
        "second delete finds nothing"
    );
    assert!(!store.delete_snapshot(&saga_id()).await.unwrap());
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 2);
    assert_eq!(
        store.get_snapshot(&snaps[2].snapshot_id).await.unwrap(),
        None
    );
    assert_eq!(all_snapshots(&store, &id).await, snaps[..2].to_vec());
    assert_eq!(
        store.latest_snapshot(&id, None).await.unwrap().as_ref(),
        Some(&snaps[1])
    );
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!(sum.snapshot_count, 2);
    assert_eq!(sum.last_at, snaps[1].created_at);
    assert_eq!(sum.latest_step, snaps[1].step_name);
    // Deleting the oldest moves first_at.
    assert!(store.delete_snapshot(&snaps[0].snapshot_id).await.unwrap());
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!((sum.snapshot_count, sum.first_at), (1, snaps[1].created_at));
    // Deleting the last one removes the saga.
    assert!(store.delete_snapshot(&snaps[1].snapshot_id).await.unwrap());
    assert_eq!(store.saga_summary(&id).await.unwrap(), None);
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 0);
}

pub async fn delete_saga_removes_all_its_snapshots(store: Arc<dyn SnapshotStore>) {
    let name = saga_name();
    let (gone, kept) = (saga_id(), saga_id());
    let snaps: Vec<_> = (0..4)
        .map(|i| {
            mk(
                &gone,
                &name,
                &format!("s{i}"),
                i,
                SagaStatus::Executing,
                i * 10,
            )
        })
        .collect();
    store.save_snapshots(&snaps).await.unwrap();
    let other = mk(&kept, &name, "s0", 0, SagaStatus::Executing, 5);
    store.save_snapshot(&other).await.unwrap();
    let log = replay(&gone, 50);
    store.save_replay(&log).await.unwrap();
    assert_eq!(store.count_sagas(&by_name(&name)).await.unwrap(), 2);

    assert_eq!(store.delete_saga(&gone).await.unwrap(), 4);
    assert_eq!(store.count_snapshots(&gone).await.unwrap(), 0);
    assert!(all_snapshots(&store, &gone).await.is_empty());
    assert_eq!(store.latest_snapshot(&gone, None).await.unwrap(), None);
    assert_eq!(
        store.get_snapshot(&snaps[0].snapshot_id).await.unwrap(),
        None
    );
    assert_eq!(store.saga_summary(&gone).await.unwrap(), None);
    let listed = all_sagas(&store, &by_name(&name), 10).await;
    assert_eq!(saga_ids(&listed), vec![kept.as_str()]);
    assert_eq!(store.count_sagas(&by_name(&name)).await.unwrap(), 1);
    // Other sagas and the replay log are left alone.
    assert_eq!(all_snapshots(&store, &kept).await, vec![other]);
    assert_eq!(store.get_replay(&log.replay_id).await.unwrap(), Some(log));
    assert_eq!(
        store.delete_saga(&gone).await.unwrap(),
        0,
        "nothing left to delete"
    );
    assert_eq!(store.delete_saga(&saga_id()).await.unwrap(), 0);
}

pub async fn delete_expired_removes_only_past_retention(store: Arc<dyn SnapshotStore>) {
    // Times in the year 2000, far from every other case's, so a store shared
    // with them loses nothing of theirs.
    let base = Timestamp::parse("2000-01-01T00:00:00+00:00").unwrap();
    let now = base.plus_micros(10 * 86_400_000_000);
    let name = saga_name();
    let (mixed, all_gone) = (saga_id(), saga_id());
    let at = |saga: &str, step: &str, i: i64, retention: Option<Timestamp>| {
        let mut s = mk(saga, &name, step, i, SagaStatus::Executing, 0);
        s.created_at = base.plus_micros(i * 1_000_000);
        s.retention_until = retention;
        s
    };
    let keep_none = at(&mixed, "a", 0, None);
    let keep_future = at(&mixed, "b", 1, Some(now.plus_micros(86_400_000_000)));
    let keep_exact = at(&mixed, "c", 2, Some(now));
    let expired_1us = at(&mixed, "d", 3, Some(now.plus_micros(-1)));
    let expired_newest = at(&mixed, "e", 4, Some(base.plus_micros(86_400_000_000)));
    let gone_a = at(&all_gone, "a", 0, Some(base));
    let gone_b = at(&all_gone, "b", 1, Some(base.plus_micros(1)));
    store
        .save_snapshots(&[
            keep_none.clone(),
            keep_future.clone(),
            keep_exact.clone(),
            expired_1us.clone(),
            expired_newest.clone(),
            gone_a,
            gone_b,
        ])
        .await
        .unwrap();
    let n = store.delete_expired(now).await.unwrap();
    assert!(n >= 4, "deleted {n}, expected at least the 4 expired here");
    assert_eq!(
        all_snapshots(&store, &mixed).await,
        vec![keep_none, keep_future, keep_exact.clone()],
        "None never expires; retention == now is not yet expired"
    );
    assert!(all_snapshots(&store, &all_gone).await.is_empty());
    let sum = store
        .saga_summary(&mixed)
        .await
        .unwrap()
        .expect("saga with kept snapshots");
    assert_eq!(sum.snapshot_count, 3);
    assert_eq!(sum.latest_step, "c");
    assert_eq!(sum.last_at, keep_exact.created_at);
    assert_eq!(store.saga_summary(&all_gone).await.unwrap(), None);
    assert_eq!(
        saga_ids(&all_sagas(&store, &by_name(&name), 10).await),
        vec![mixed.as_str()]
    );
}
