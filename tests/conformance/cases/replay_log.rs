//! The replay log: saving, updating in place, batches, listing newest first
//! and finding the replay that produced a saga.

use super::*;

pub async fn replay_log_round_trip_and_update(store: Arc<dyn SnapshotStore>) {
    let original = saga_id();
    let mut log = replay(&original, 0);
    log.context_override = Some(
        json!({"payment_token": "tok_valid", "amount": 9007199254740993u64, "note": "café ☕"}),
    );
    log.extra
        .insert("reason".into(), json!("INC-42: card processor outage"));
    log.extra.insert("dry_run".into(), json!(false));
    store.save_replay(&log).await.unwrap();
    assert_eq!(
        store.get_replay(&log.replay_id).await.unwrap().as_ref(),
        Some(&log)
    );

    let mut done = log.clone();
    done.replay_status = ReplayStatus::Success;
    done.completed_at = Some(log.created_at.plus_micros(1_500_000));
    store.save_replay(&done).await.unwrap();
    let got = store
        .get_replay(&log.replay_id)
        .await
        .unwrap()
        .expect("updated entry");
    assert_eq!(got, done);
    assert_eq!(got.reason(), Some("INC-42: card processor outage"));
    let listed = store.list_replays(&original, None).await.unwrap();
    assert_eq!(
        listed.items,
        vec![done.clone()],
        "updated in place, not added"
    );
    // Saved again without its extra fields: they are gone, not merged.
    let mut plain = done.clone();
    plain.extra = Map::new();
    store.save_replay(&plain).await.unwrap();
    assert_eq!(
        store.get_replay(&log.replay_id).await.unwrap().as_ref(),
        Some(&plain)
    );
    assert_eq!(
        store.replay_producing(&log.new_saga_id).await.unwrap(),
        Some(plain)
    );

    let mut failed = replay(&original, 10);
    failed.replay_status = ReplayStatus::Failed;
    failed.error_message = Some("step charge_payment failed: déclinée".into());
    failed.completed_at = Some(failed.created_at);
    store.save_replay(&failed).await.unwrap();
    assert_eq!(
        store.get_replay(&failed.replay_id).await.unwrap(),
        Some(failed)
    );
    assert_eq!(store.get_replay(&saga_id()).await.unwrap(), None);
}

pub async fn list_replays_newest_first_with_limit(store: Arc<dyn SnapshotStore>) {
    let (original, other) = (saga_id(), saga_id());
    let logs: Vec<_> = (0..5).map(|i| replay(&original, i * 1_000)).collect();
    for l in [&logs[3], &logs[0], &logs[4], &logs[1], &logs[2]] {
        store.save_replay(l).await.unwrap();
    }
    let foreign = replay(&other, 2_500);
    store.save_replay(&foreign).await.unwrap();
    let newest_first: Vec<_> = logs.iter().rev().cloned().collect();
    let all = store.list_replays(&original, None).await.unwrap();
    assert!(all.bad.is_empty());
    assert_eq!(all.items, newest_first);
    assert_eq!(
        store.list_replays(&original, Some(2)).await.unwrap().items,
        newest_first[..2].to_vec()
    );
    assert_eq!(
        store.list_replays(&original, Some(50)).await.unwrap().items,
        newest_first
    );
    assert_eq!(
        store
            .list_replays(&original, Some(usize::MAX))
            .await
            .unwrap()
            .items,
        newest_first
    );
    assert_eq!(
        store.list_replays(&other, None).await.unwrap().items,
        vec![foreign.clone()]
    );
    assert!(store
        .list_replays(&saga_id(), None)
        .await
        .unwrap()
        .items
        .is_empty());
    // The trait lets a backend answer None, but every backend here finds it.
    assert_eq!(
        store.replay_producing(&logs[2].new_saga_id).await.unwrap(),
        Some(logs[2].clone()),
        "the replay that produced a saga is found"
    );
    if let Some(found) = store.replay_producing(&saga_id()).await.unwrap() {
        panic!("replay_producing found {found:?} for a saga no replay produced");
    }
}

/// `save_replays` stores what `save_replay` one by one stores, and updates
/// entries in place.
pub async fn save_replays_batch_equals_individual_saves(store: Arc<dyn SnapshotStore>) {
    let original = saga_id();
    let mut logs: Vec<_> = (0..4).map(|i| replay(&original, i)).collect();
    logs[1].extra.insert("reason".into(), json!("batch"));
    logs[2].context_override = Some(json!({"payment_token": "tok_valid"}));
    store.save_replays(&logs).await.unwrap();
    for l in &logs {
        assert_eq!(
            store.get_replay(&l.replay_id).await.unwrap().as_ref(),
            Some(l)
        );
    }
    logs[0].replay_status = ReplayStatus::Success;
    logs[0].completed_at = Some(logs[0].created_at.plus_micros(5));
    logs[1].extra.clear();
    store.save_replays(&logs[..2]).await.unwrap();
    assert_eq!(
        store.get_replay(&logs[0].replay_id).await.unwrap().as_ref(),
        Some(&logs[0])
    );
    assert_eq!(
        store.get_replay(&logs[1].replay_id).await.unwrap().as_ref(),
        Some(&logs[1])
    );
    assert_eq!(
        store
            .list_replays(&original, None)
            .await
            .unwrap()
            .items
            .len(),
        4
    );
}

/// Deleting one replay-log entry (erasure) removes it from every lookup
/// and leaves the saga's other entries.
pub async fn delete_replay_removes_it_from_every_lookup(store: Arc<dyn SnapshotStore>) {
    let original = saga_id();
    let gone = replay(&original, 0);
    let kept = replay(&original, 10);
    store.save_replay(&gone).await.unwrap();
    store.save_replay(&kept).await.unwrap();
    assert!(store.delete_replay(&gone.replay_id).await.unwrap());
    assert_eq!(store.get_replay(&gone.replay_id).await.unwrap(), None);
    assert_eq!(
        store.replay_producing(&gone.new_saga_id).await.unwrap(),
        None
    );
    let listed = store.list_replays(&original, None).await.unwrap();
    assert_eq!(listed.items, vec![kept.clone()]);
    assert!(listed.bad.is_empty(), "{:?}", listed.bad);
    let batch = store
        .replays_of_sagas(std::slice::from_ref(&original))
        .await
        .unwrap();
    assert_eq!(batch.items, vec![kept.clone()]);
    assert!(
        !store.delete_replay(&gone.replay_id).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(!store.delete_replay(&saga_id()).await.unwrap());
    assert_eq!(
        store.replay_producing(&kept.new_saga_id).await.unwrap(),
        Some(kept)
    );
}
