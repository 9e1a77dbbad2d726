//! A walk through every store operation, shared by the S3 and folder
//! backend tests (the conformance suite checks the same contract case by
//! case; this checks the operations together on one store, the way the
//! browser and replay use them).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use sagascope::model::{ReplayLog, ReplayStatus, SagaStatus};
use sagascope::store::{
    LockOutcome, Order, SagaFilter, SagaPageRequest, SnapshotCursor, SnapshotQuery, SnapshotStore,
};

use crate::common::*;

pub fn replay(original: &str, at_us: i64) -> ReplayLog {
    ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: original.to_string(),
        new_saga_id: uuid::Uuid::new_v4().to_string(),
        checkpoint_step: "charge_payment".into(),
        replay_status: ReplayStatus::Success,
        initiated_by: "alice".into(),
        context_override: None,
        error_message: None,
        created_at: t0().plus_micros(at_us),
        completed_at: Some(t0().plus_micros(at_us + 10)),
        extra: Default::default(),
    }
}

pub async fn every_operation(store: Arc<dyn SnapshotStore>) {
    let a = saga_id();
    let b = saga_id();
    let snaps_a: Vec<_> = (0..4).map(|i| snap(&a, i, i * 1_000)).collect();
    let mut snaps_b: Vec<_> = (0..2).map(|i| snap(&b, i, 10_000 + i)).collect();
    snaps_b[1].status = SagaStatus::Completed;
    snaps_b[1].step_name = "étape_finale 🚀".into();
    store.save_snapshots(&snaps_a).await.unwrap();
    for s in &snaps_b {
        store.save_snapshot(s).await.unwrap();
    }

    // Reads.
    assert_eq!(store.count_snapshots(&a).await.unwrap(), 4);
    assert_eq!(
        store.latest_snapshot(&a, None).await.unwrap().unwrap(),
        snaps_a[3]
    );
    assert_eq!(
        store
            .latest_snapshot(&a, Some("charge_payment"))
            .await
            .unwrap()
            .unwrap(),
        snaps_a[1]
    );
    assert_eq!(
        store
            .latest_snapshot(&b, Some("étape_finale 🚀"))
            .await
            .unwrap()
            .unwrap(),
        snaps_b[1]
    );
    assert!(store
        .latest_snapshot(&a, Some("nope"))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .snapshot_at(&a, t0().plus_micros(2_500))
            .await
            .unwrap()
            .unwrap(),
        snaps_a[2]
    );
    assert!(store
        .snapshot_at(&a, t0().plus_micros(-1))
        .await
        .unwrap()
        .is_none());
    let page1 = store
        .list_snapshots(
            &a,
            &SnapshotQuery {
                limit: Some(2),
                ..SnapshotQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.items, snaps_a[..2]);
    let page2 = store
        .list_snapshots(
            &a,
            &SnapshotQuery {
                limit: Some(5),
                after: Some(SnapshotCursor::of(&page1.items[1])),
                ..SnapshotQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(page2.items, snaps_a[2..]);
    let ranged = store
        .list_snapshots(
            &a,
            &SnapshotQuery {
                order: Order::Desc,
                since: Some(t0().plus_micros(1_000)),
                until: Some(t0().plus_micros(2_000)),
                ..SnapshotQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(ranged.items, vec![snaps_a[2].clone(), snaps_a[1].clone()]);

    // Sagas.
    let sum_b = store.saga_summary(&b).await.unwrap().unwrap();
    assert_eq!(sum_b.snapshot_count, 2);
    assert_eq!(sum_b.latest_status, SagaStatus::Completed);
    assert_eq!(sum_b.latest_step, "étape_finale 🚀");
    assert_eq!(sum_b.first_at, snaps_b[0].created_at);
    let all = store
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    let ids: Vec<_> = all.sagas.iter().map(|s| s.saga_id.as_str()).collect();
    assert_eq!(ids, vec![b.as_str(), a.as_str()], "newest activity first");
    let first = store
        .list_sagas(
            &SagaFilter::default(),
            &SagaPageRequest {
                limit: 1,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.sagas.len(), 1);
    let second = store
        .list_sagas(
            &SagaFilter::default(),
            &SagaPageRequest {
                limit: 1,
                after: first.next.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(second.sagas[0].saga_id, a);
    assert!(second.next.is_none());
    let completed = SagaFilter {
        statuses: vec![SagaStatus::Completed],
        ..SagaFilter::default()
    };
    assert_eq!(store.count_sagas(&completed).await.unwrap(), 1);
    assert_eq!(store.count_sagas(&SagaFilter::default()).await.unwrap(), 2);

    // Replace: same id, later time: still one snapshot, now the latest.
    let mut moved = snaps_a[0].clone();
    moved.created_at = t0().plus_micros(5_000);
    moved.context.insert("replaced".into(), json!(true));
    store.save_snapshot(&moved).await.unwrap();
    assert_eq!(store.count_snapshots(&a).await.unwrap(), 4);
    assert_eq!(
        store.latest_snapshot(&a, None).await.unwrap().unwrap(),
        moved
    );
    assert_eq!(
        store.saga_summary(&a).await.unwrap().unwrap().first_at,
        snaps_a[1].created_at
    );

    // Replays.
    let r1 = replay(&a, 1);
    let mut r2 = replay(&a, 2);
    store.save_replay(&r1).await.unwrap();
    store.save_replay(&r2).await.unwrap();
    r2.replay_status = ReplayStatus::Failed;
    r2.error_message = Some("card declined".into());
    store.save_replay(&r2).await.unwrap();
    assert_eq!(store.get_replay(&r2.replay_id).await.unwrap().unwrap(), r2);
    let listed = store.list_replays(&a, None).await.unwrap();
    assert_eq!(listed.items, vec![r2.clone(), r1.clone()]);
    assert_eq!(
        store.list_replays(&a, Some(1)).await.unwrap().items,
        vec![r2.clone()]
    );
    assert!(store.list_replays(&b, None).await.unwrap().items.is_empty());
    assert_eq!(
        store
            .replay_producing(&r1.new_saga_id)
            .await
            .unwrap()
            .unwrap(),
        r1
    );

    // Deletes.
    assert!(store
        .delete_snapshot(&snaps_a[1].snapshot_id)
        .await
        .unwrap());
    assert!(!store
        .delete_snapshot(&snaps_a[1].snapshot_id)
        .await
        .unwrap());
    assert!(store
        .get_snapshot(&snaps_a[1].snapshot_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.count_snapshots(&a).await.unwrap(), 3);
    assert_eq!(
        store
            .saga_summary(&a)
            .await
            .unwrap()
            .unwrap()
            .snapshot_count,
        3
    );
    let mut old = snap(&a, 2, 20_000);
    // The others are kept 30 days after t0; this one a day.
    let day = 86_400_000_000;
    old.retention_until = Some(t0().plus_micros(day));
    store.save_snapshot(&old).await.unwrap();
    assert_eq!(
        store
            .delete_expired(t0().plus_micros(2 * day))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .get_snapshot(&old.snapshot_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.delete_saga(&a).await.unwrap(), 3);
    assert_eq!(store.count_snapshots(&a).await.unwrap(), 0);
    assert!(store.saga_summary(&a).await.unwrap().is_none());
    assert_eq!(store.count_sagas(&SagaFilter::default()).await.unwrap(), 1);
    assert!(
        store.get_replay(&r1.replay_id).await.unwrap().is_some(),
        "replays outlive delete_saga"
    );

    // Locks.
    let lock = format!("replay:{b}");
    let ttl = Duration::from_secs(60);
    assert_eq!(
        store.try_lock(&lock, "alice", ttl).await.unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        store.try_lock(&lock, "alice", ttl).await.unwrap(),
        LockOutcome::Acquired
    );
    match store.try_lock(&lock, "bob", ttl).await.unwrap() {
        LockOutcome::Held { owner, .. } => assert_eq!(owner, "alice"),
        other => panic!("bob took alice's lock: {other:?}"),
    }
    store.unlock(&lock, "bob").await.unwrap();
    assert!(matches!(
        store.try_lock(&lock, "bob", ttl).await.unwrap(),
        LockOutcome::Held { .. }
    ));
    store.unlock(&lock, "alice").await.unwrap();
    assert_eq!(
        store.try_lock(&lock, "bob", ttl).await.unwrap(),
        LockOutcome::Acquired
    );
    let short = format!("short:{b}");
    assert_eq!(
        store
            .try_lock(&short, "alice", Duration::from_millis(1))
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store.try_lock(&short, "bob", ttl).await.unwrap(),
        LockOutcome::Acquired,
        "an expired lock can be taken"
    );

    let h = store.health().await.unwrap();
    assert!(h.reachable);
    assert_eq!(h.sagas, Some(1));
    assert_eq!(h.snapshots, Some(2));
    assert_eq!(h.replays, Some(2));
}
