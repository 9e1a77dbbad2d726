//! Records beside the snapshots (`put_meta` and friends): round trips,
//! create-only inserts with one winner, key order and paging, deletes,
//! kinds kept apart, and snapshots, sagas and counts untouched by them.

use super::*;

/// A kind no other case (or earlier run) uses.
fn kind(what: &str) -> String {
    format!("{what}-{}", unique_tag())
}

pub async fn meta_put_get_replace_and_delete(store: Arc<dyn SnapshotStore>) {
    let k = kind("job");
    assert_eq!(store.get_meta(&k, "absent").await.unwrap(), None);
    let v1 = json!({"done": 10, "note": "zürich ✓", "nested": {"list": [1, 2.5, null]}});
    store.put_meta(&k, "encrypt", &v1).await.unwrap();
    assert_eq!(store.get_meta(&k, "encrypt").await.unwrap(), Some(v1));
    let v2 = json!({"done": 250});
    store.put_meta(&k, "encrypt", &v2).await.unwrap();
    assert_eq!(
        store.get_meta(&k, "encrypt").await.unwrap(),
        Some(v2.clone()),
        "put_meta replaces a record with the same kind and key"
    );
    assert_eq!(
        store.list_meta(&k, None, 10).await.unwrap(),
        vec![("encrypt".to_string(), v2)],
        "a replaced record is listed once"
    );
    assert!(store.delete_meta(&k, "encrypt").await.unwrap());
    assert_eq!(store.get_meta(&k, "encrypt").await.unwrap(), None);
    assert!(store.list_meta(&k, None, 10).await.unwrap().is_empty());
    assert!(
        !store.delete_meta(&k, "encrypt").await.unwrap(),
        "deleting a record that is gone says so"
    );
}

pub async fn meta_insert_has_one_winner_among_eight(store: Arc<dyn SnapshotStore>) {
    let k = kind("hold");
    let key = saga_id();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let (k, key) = (k.clone(), key.clone());
            tokio::spawn(async move {
                store
                    .insert_meta(&k, &key, &json!({"writer": i}))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners of the same key: {winners:?}");
    let stored = store.get_meta(&k, &key).await.unwrap().unwrap();
    assert_eq!(
        stored,
        json!({"writer": winners[0]}),
        "the record is the winner's"
    );
    assert!(
        !store
            .insert_meta(&k, &key, &json!({"writer": "late"}))
            .await
            .unwrap(),
        "a later insert loses too"
    );
    assert_eq!(store.get_meta(&k, &key).await.unwrap(), Some(stored));
    assert_eq!(store.list_meta(&k, None, 10).await.unwrap().len(), 1);
}

pub async fn meta_lists_in_key_order_and_pages_with_after_and_limit(store: Arc<dyn SnapshotStore>) {
    let k = kind("audit");
    // Audit-style keys (fixed-width time, then an id), inserted out of
    // order, plus keys whose characters an encoding might reorder.
    let mut keys: Vec<String> = (0..250u64)
        .map(|i| format!("{:020}-{:04}", 1_700_000_000_000_000 + (i * 7919) % 250, i))
        .collect();
    keys.extend(["a:b", "a b", "a-b", "a.b", "a~b", "A", "z", "é"].map(String::from));
    for (n, key) in keys.iter().enumerate() {
        store
            .put_meta(&k, key, &json!({"n": n, "key": key}))
            .await
            .unwrap();
    }
    let mut want: Vec<String> = keys.clone();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

    let mut got: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store.list_meta(&k, after.as_deref(), 100).await.unwrap();
        assert!(page.len() <= 100, "a page of {} over limit 100", page.len());
        for (key, v) in &page {
            assert_eq!(v["key"], json!(key), "the value listed is its key's");
        }
        pages += 1;
        let n = page.len();
        if let Some((last, _)) = page.last() {
            after = Some(last.clone());
        }
        got.extend(page.into_iter().map(|(key, _)| key));
        if n < 100 {
            break;
        }
        assert!(pages < 10, "paging did not end");
    }
    assert_eq!(pages, 3, "258 records in pages of 100");
    assert_eq!(got, want, "keys in byte order, none lost or repeated");

    // `after` is exclusive and need not be a stored key.
    let from_a = store.list_meta(&k, Some("a-b"), 2).await.unwrap();
    let keys_of = |v: &[(String, Value)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys_of(&from_a), vec!["a.b", "a:b"]);
    let from_gap = store.list_meta(&k, Some("a0"), 3).await.unwrap();
    assert_eq!(keys_of(&from_gap), vec!["a:b", "a~b", "z"]);
    assert!(store.list_meta(&k, Some("é"), 10).await.unwrap().is_empty());
    assert!(store.list_meta(&k, None, 0).await.unwrap().is_empty());
}

pub async fn meta_kinds_are_kept_apart(store: Arc<dyn SnapshotStore>) {
    let (a, b) = (kind("audit"), kind("hold"));
    let key = saga_id();
    store
        .put_meta(&a, &key, &json!({"kind": "a"}))
        .await
        .unwrap();
    assert_eq!(store.get_meta(&b, &key).await.unwrap(), None);
    assert!(
        store
            .insert_meta(&b, &key, &json!({"kind": "b"}))
            .await
            .unwrap(),
        "the same key in another kind is a new record"
    );
    assert_eq!(
        store.get_meta(&a, &key).await.unwrap(),
        Some(json!({"kind": "a"}))
    );
    assert_eq!(store.list_meta(&a, None, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_meta(&b, None, 10).await.unwrap().len(), 1);
    assert!(store.delete_meta(&a, &key).await.unwrap());
    assert_eq!(
        store.get_meta(&b, &key).await.unwrap(),
        Some(json!({"kind": "b"})),
        "deleting in one kind leaves the other"
    );
    // A kind that is a prefix of another sees none of its records.
    let long = format!("{a}x");
    store.put_meta(&long, "k", &json!(1)).await.unwrap();
    assert!(store.list_meta(&a, None, 10).await.unwrap().is_empty());
}

/// What a user browses (sagas, snapshots, counts, health) is the same
/// before and after records are written beside it, and expiry leaves them.
pub async fn whole_store_meta_records_change_no_listing_or_count(store: Arc<dyn SnapshotStore>) {
    let name = saga_name();
    let sagas: Vec<String> = (0..3).map(|_| saga_id()).collect();
    for (i, id) in sagas.iter().enumerate() {
        for step in 0..4 {
            let s = mk(
                id,
                &name,
                &format!("step{step}"),
                step,
                SagaStatus::Executing,
                (i as i64) * 100 + step,
            );
            store.save_snapshot(&s).await.unwrap();
        }
    }
    let everything = SagaFilter::default();
    let before_sagas = all_sagas(&store, &everything, 50).await;
    let before_count = store.count_sagas(&everything).await.unwrap();
    let before_health = store.health().await.unwrap();
    let mut before_snaps = Vec::new();
    for id in &sagas {
        before_snaps.push((
            all_snapshots(&store, id).await,
            store.count_snapshots(id).await.unwrap(),
        ));
    }

    for kind in ["audit", "hold", "job", "saga", "snapshot", "index"] {
        for id in &sagas {
            store
                .put_meta(kind, id, &json!({"saga_id": id, "kind": kind}))
                .await
                .unwrap();
        }
    }

    assert_eq!(all_sagas(&store, &everything, 50).await, before_sagas);
    assert_eq!(store.count_sagas(&everything).await.unwrap(), before_count);
    assert_eq!(before_count, 3, "the store should be this test's own");
    let after_health = store.health().await.unwrap();
    assert_eq!(
        (
            after_health.sagas,
            after_health.snapshots,
            after_health.replays
        ),
        (
            before_health.sagas,
            before_health.snapshots,
            before_health.replays
        )
    );
    for (id, (snaps, count)) in sagas.iter().zip(&before_snaps) {
        assert_eq!(&all_snapshots(&store, id).await, snaps);
        assert_eq!(store.count_snapshots(id).await.unwrap(), *count);
        assert!(store.list_replays(id, None).await.unwrap().items.is_empty());
    }
    // Nothing beside the snapshots expires or is collected with them.
    let far = t0().plus_micros(10 * 365 * 86_400_000_000);
    assert_eq!(store.delete_expired(far).await.unwrap(), 12);
    for id in &sagas {
        assert_eq!(
            store.get_meta("hold", id).await.unwrap(),
            Some(json!({"saga_id": id, "kind": "hold"}))
        );
    }
    assert_eq!(store.list_meta("audit", None, 100).await.unwrap().len(), 3);
    assert_eq!(store.count_sagas(&everything).await.unwrap(), 0);
}
