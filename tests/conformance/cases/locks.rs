//! Locks: acquire, hold, renew, release, expire, and one winner among many.

use super::*;

pub async fn locks_acquire_hold_renew_expire_release(store: Arc<dyn SnapshotStore>) {
    let lock = format!("replay:{}", saga_id());
    let long = Duration::from_secs(30);
    assert_eq!(
        store.try_lock(&lock, "alice", long).await.unwrap(),
        LockOutcome::Acquired
    );
    let before = Timestamp::now();
    match store.try_lock(&lock, "bob", long).await.unwrap() {
        LockOutcome::Held { owner, until } => {
            assert_eq!(owner, "alice");
            assert!(
                until > before,
                "held until {until:?}, which is not in the future"
            );
        }
        other => panic!("bob took alice's lock: {other:?}"),
    }
    assert_eq!(
        store.try_lock(&lock, "alice", long).await.unwrap(),
        LockOutcome::Acquired,
        "renew"
    );
    store.unlock(&lock, "bob").await.unwrap();
    assert!(
        matches!(store.try_lock(&lock, "bob", long).await.unwrap(), LockOutcome::Held { owner, .. } if owner == "alice"),
        "unlock by a non-owner must do nothing"
    );
    store.unlock(&lock, "alice").await.unwrap();
    assert_eq!(
        store.try_lock(&lock, "bob", long).await.unwrap(),
        LockOutcome::Acquired,
        "freed by its owner"
    );
    store.unlock(&lock, "bob").await.unwrap();
    store
        .unlock(&format!("replay:{}", saga_id()), "nobody")
        .await
        .unwrap();

    // Expiry: a lock whose holder went away is taken over after its ttl.
    let short = format!("replay:{}", saga_id());
    assert_eq!(
        store
            .try_lock(&short, "crashed", Duration::from_secs(1))
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        store.try_lock(&short, "next", long).await.unwrap(),
        LockOutcome::Acquired
    );
    assert!(matches!(
        store.try_lock(&short, "crashed", long).await.unwrap(),
        LockOutcome::Held { owner, .. } if owner == "next"
    ));
    store.unlock(&short, "next").await.unwrap();
}

pub async fn concurrent_try_lock_has_one_winner(store: Arc<dyn SnapshotStore>) {
    let lock = format!("replay:{}", saga_id());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let lock = lock.clone();
            tokio::spawn(async move {
                let owner = format!("worker-{i}");
                let got = store
                    .try_lock(&lock, &owner, Duration::from_secs(30))
                    .await
                    .unwrap();
                (owner, got)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut holders = HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            (owner, LockOutcome::Acquired) => winners.push(owner),
            (_, LockOutcome::Held { owner, .. }) => {
                holders.insert(owner);
            }
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert!(
        holders.iter().all(|h| h == &winners[0]),
        "losers saw holders {holders:?}, winner {winners:?}"
    );
    store.unlock(&lock, &winners[0]).await.unwrap();
}

/// Time to live below a second: a 1 ms lock lapses within milliseconds
/// and a 50 ms one well within 300 ms (not rounded up to a second, nor
/// down to "never expires"), and the next owner holds it as usual.
pub async fn locks_with_sub_second_ttl_lapse(store: Arc<dyn SnapshotStore>) {
    let long = Duration::from_secs(30);
    let short = format!("short:{}", saga_id());
    assert_eq!(
        store
            .try_lock(&short, "alice", Duration::from_millis(1))
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store.try_lock(&short, "bob", long).await.unwrap(),
        LockOutcome::Acquired,
        "an expired 1 ms lock can be taken"
    );
    store.unlock(&short, "bob").await.unwrap();

    let name = format!("replay:{}", saga_id());
    assert_eq!(
        store
            .try_lock(&name, "b", Duration::from_millis(50))
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.try_lock(&name, "c", long).await.unwrap(),
        LockOutcome::Acquired,
        "an expired 50 ms lock can be taken"
    );
    assert!(matches!(
        store.try_lock(&name, "b", long).await.unwrap(),
        LockOutcome::Held { owner, .. } if owner == "c"
    ));
    store.unlock(&name, "c").await.unwrap();
    assert_eq!(
        store.try_lock(&name, "b", long).await.unwrap(),
        LockOutcome::Acquired
    );
    store.unlock(&name, "b").await.unwrap();
}
