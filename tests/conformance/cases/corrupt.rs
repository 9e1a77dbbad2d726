//! Corrupt entries, written behind the store's back by a backend's
//! `corrupt_fixture`: named, never fatal, and never the end of paging.

use super::*;

/// What is wrong with an entry a backend writes by raw means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// The entry (or its context) is not valid JSON.
    InvalidJson,
    /// `context` is a JSON array, not an object.
    ContextNotObject,
    /// `step_index` is the text `"one"`.
    StepIndexNotInteger,
    /// `created_at` is not a timestamp.
    CreatedAtNotATime,
    /// The entry is a valid snapshot, but of another saga (a value copied
    /// to the wrong key or file).
    OtherSagasSnapshot,
    /// The entry is not a value at all (a Redis key of another type, a
    /// directory where a file should be).
    NotAValue,
}

type InjectFn =
    dyn Fn(Snapshot, Corruption) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync;

/// A store plus a way to write broken entries into it behind its back.
pub struct CorruptFixture {
    pub store: Arc<dyn SnapshotStore>,
    inject: Box<InjectFn>,
}

impl CorruptFixture {
    /// `inject(snapshot, kind)` must write `snapshot` (its id, saga, time and
    /// fields) as the store would, but broken as `kind` says, so the store
    /// finds it among the saga's entries. It returns `false` when the backend
    /// cannot hold that kind of damage (that case then checks nothing).
    pub fn new<F, Fut>(store: Arc<dyn SnapshotStore>, inject: F) -> Self
    where
        F: Fn(Snapshot, Corruption) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        CorruptFixture {
            store,
            inject: Box::new(move |s, k| Box::pin(inject(s, k))),
        }
    }
}

/// Three good snapshots with a broken one between the first two: the broken
/// one is named, the good ones are still served.
async fn corrupt_entry_is_named_not_fatal(f: CorruptFixture, kind: Corruption) {
    let store = f.store.clone();
    let id = saga_id();
    let name = saga_name();
    let good = vec![
        mk(&id, &name, "reserve_inventory", 0, SagaStatus::Executing, 0),
        mk(
            &id,
            &name,
            "ship_order",
            2,
            SagaStatus::Executing,
            2_000_000,
        ),
        mk(
            &id,
            &name,
            "__completed__",
            3,
            SagaStatus::Completed,
            4_000_000,
        ),
    ];
    store.save_snapshots(&good).await.unwrap();
    let broken = mk(
        &id,
        &name,
        "charge_payment",
        1,
        SagaStatus::Executing,
        1_000_000,
    );
    if !(f.inject)(broken.clone(), kind).await {
        skip_line!(
            "not applicable: {} cannot hold {kind:?} damage",
            store.capabilities().backend
        );
        return;
    }
    let bad_id = broken.snapshot_id.as_str();

    let listed = store
        .list_snapshots(&id, &SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(
        listed.items, good,
        "the good snapshots are still listed, in order"
    );
    assert_eq!(listed.bad.len(), 1, "one bad entry: {:?}", listed.bad);
    assert!(
        listed.bad[0].key.contains(bad_id),
        "bad entry key {:?} names snapshot {bad_id}",
        listed.bad[0].key
    );
    assert!(!listed.bad[0].error.is_empty());
    let desc = store
        .list_snapshots(&id, &SnapshotQuery::newest(10))
        .await
        .unwrap();
    assert_eq!(desc.items, sorted(good.clone(), Order::Desc));

    match store.get_snapshot(bad_id).await {
        Err(StoreError::Corrupt { entry }) => {
            assert!(
                entry.key.contains(bad_id),
                "error names {:?}, not {bad_id}",
                entry.key
            )
        }
        other => panic!("get_snapshot of a corrupt entry gave {other:?}, expected Err(Corrupt)"),
    }
    for s in &good {
        assert_eq!(
            store.get_snapshot(&s.snapshot_id).await.unwrap().as_ref(),
            Some(s)
        );
    }

    // The saga list still works; the saga is listed, or named as bad when the
    // damage hides its time.
    let filter = SagaFilter {
        id_prefix: Some(id.clone()),
        ..SagaFilter::default()
    };
    let sagas = store.list_sagas(&filter, &page(10)).await.unwrap();
    if kind == Corruption::CreatedAtNotATime {
        let listed = sagas.sagas.iter().any(|s| s.saga_id == id);
        let named = sagas
            .bad
            .iter()
            .any(|b| b.saga_id.as_deref() == Some(id.as_str()) || b.key.contains(&id));
        assert!(
            listed || named,
            "saga neither listed nor named as bad: {sagas:?}"
        );
    } else {
        assert_eq!(saga_ids(&sagas.sagas), vec![id.as_str()], "{sagas:?}");
        let s = &sagas.sagas[0];
        assert_eq!(
            (s.latest_step.as_str(), s.last_at),
            ("__completed__", good[2].created_at)
        );
        assert_eq!(s.first_at, good[0].created_at);
        assert_eq!(
            store.latest_snapshot(&id, None).await.unwrap().as_ref(),
            Some(&good[2])
        );
    }
    store.count_snapshots(&id).await.unwrap();

    // A user can remove the broken entry, after which the saga is clean.
    assert!(
        store.delete_snapshot(bad_id).await.unwrap(),
        "a corrupt entry can be deleted"
    );
    let listed = store
        .list_snapshots(&id, &SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(listed.items, good);
    assert!(listed.bad.is_empty(), "{:?}", listed.bad);
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!((sum.snapshot_count, sum.last_at), (3, good[2].created_at));
}

pub async fn corrupt_invalid_json_is_named_not_fatal(f: CorruptFixture) {
    corrupt_entry_is_named_not_fatal(f, Corruption::InvalidJson).await;
}

pub async fn corrupt_context_not_object_is_named_not_fatal(f: CorruptFixture) {
    corrupt_entry_is_named_not_fatal(f, Corruption::ContextNotObject).await;
}

pub async fn corrupt_step_index_not_integer_is_named_not_fatal(f: CorruptFixture) {
    corrupt_entry_is_named_not_fatal(f, Corruption::StepIndexNotInteger).await;
}

pub async fn corrupt_created_at_not_a_time_is_named_not_fatal(f: CorruptFixture) {
    corrupt_entry_is_named_not_fatal(f, Corruption::CreatedAtNotATime).await;
}

/// Paging a saga's snapshots with `next` cursors: every readable snapshot
/// once, in order, and every unreadable one named once.
async fn snapshot_pages(
    store: &Arc<dyn SnapshotStore>,
    saga_id: &str,
    order: Order,
    size: usize,
) -> (Vec<Snapshot>, Vec<sagascope::store::BadEntry>) {
    let (mut items, mut bad) = (Vec::new(), Vec::new());
    let mut after = None;
    for _ in 0..10_000 {
        let q = SnapshotQuery {
            order,
            limit: Some(size),
            after: after.clone(),
            ..SnapshotQuery::all()
        };
        let page = store.list_snapshots(saga_id, &q).await.unwrap();
        assert!(page.items.len() <= size, "page exceeds its limit");
        items.extend(page.items);
        bad.extend(page.bad);
        match page.next {
            Some(c) => after = Some(c),
            None => return (items, bad),
        }
    }
    panic!("list_snapshots paging did not end");
}

/// 200 snapshots with #100 broken: pages of 64, 33 and 7
/// serve the 199 good ones in order and name the broken one exactly once;
/// time travel to any snapshot after it works. (A short page once ended
/// the TUI timeline at 127 of 200, and Redis failed time travel to the
/// ~19 snapshots after a broken one.)
pub async fn corrupt_entry_mid_page_does_not_end_paging(f: CorruptFixture) {
    let store = f.store.clone();
    let id = saga_id();
    let name = saga_name();
    let all: Vec<Snapshot> = (0..200)
        .map(|i| {
            mk(
                &id,
                &name,
                &format!("step_{i}"),
                i,
                SagaStatus::Executing,
                i * 1000,
            )
        })
        .collect();
    let good: Vec<Snapshot> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 99)
        .map(|(_, s)| s.clone())
        .collect();
    store.save_snapshots(&good).await.unwrap();
    let mut injected = false;
    for kind in [Corruption::InvalidJson, Corruption::ContextNotObject] {
        if (f.inject)(all[99].clone(), kind).await {
            injected = true;
            break;
        }
    }
    if !injected {
        skip_line!("not applicable: this backend cannot hold a broken snapshot");
        return;
    }
    let bad_id = all[99].snapshot_id.as_str();
    // Every page size crosses the broken entry at a different place in its
    // page; each page costs S3 a listing, so few small ones.
    for (order, size) in [
        (Order::Asc, 64usize),
        (Order::Asc, 7),
        (Order::Desc, 64),
        (Order::Desc, 33),
    ] {
        {
            let (items, bad) = snapshot_pages(&store, &id, order, size).await;
            assert_eq!(
                ids(&items),
                ids(&sorted(good.clone(), order)),
                "{order:?}, pages of {size}: every good snapshot, in order"
            );
            assert_eq!(
                bad.len(),
                1,
                "{order:?}, pages of {size}: the broken one named once: {bad:?}"
            );
            assert!(bad[0].key.contains(bad_id), "{:?}", bad[0]);
        }
    }
    for i in [100usize, 101, 110, 118, 150, 199] {
        let at = all[i].created_at;
        assert_eq!(
            store
                .snapshot_at(&id, at)
                .await
                .unwrap()
                .map(|s| s.snapshot_id),
            Some(all[i].snapshot_id.clone()),
            "time travel to snapshot #{i}, after the broken #99"
        );
    }
    let whole = sagascope::store::all_snapshots(store.as_ref(), &id, SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(whole.items.len(), 199);
    assert_eq!(whole.bad.len(), 1);
}

/// The newest snapshot broken (the one a saga's summary is copied from):
/// the saga is still listed (or named) and its short id still finds it.
pub async fn corrupt_newest_entry_keeps_the_saga_findable(f: CorruptFixture) {
    let mut checked = 0;
    for kind in [
        Corruption::StepIndexNotInteger,
        Corruption::CreatedAtNotATime,
        Corruption::ContextNotObject,
        Corruption::InvalidJson,
    ] {
        let store = f.store.clone();
        let id = saga_id();
        let name = saga_name();
        let good = vec![
            mk(&id, &name, "reserve_inventory", 0, SagaStatus::Executing, 0),
            mk(&id, &name, "charge_payment", 1, SagaStatus::Executing, 1000),
        ];
        store.save_snapshots(&good).await.unwrap();
        let newest = mk(&id, &name, "ship_order", 2, SagaStatus::Executing, 2000);
        if !(f.inject)(newest, kind).await {
            continue;
        }
        let filter = SagaFilter {
            id_prefix: Some(id[..13].to_string()),
            ..SagaFilter::default()
        };
        let page = store.list_sagas(&filter, &page(10)).await.unwrap();
        let listed = page.sagas.iter().any(|s| s.saga_id == id);
        let named = page
            .bad
            .iter()
            .any(|b| b.saga_id.as_deref() == Some(id.as_str()));
        assert!(listed || named, "{kind:?}: saga vanished: {page:?}");
        let found = sagascope::replay::find_saga(store.as_ref(), &id[..13])
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: prefix lookup failed: {e}"));
        assert_eq!(found.saga_id, id, "{kind:?}");
        checked += 1;
    }
    if checked == 0 {
        skip_line!("not applicable: this backend cannot hold a broken snapshot");
    }
}

/// A value that is not a snapshot of this saga where one should be: named
/// as bad, listing goes on around it.
pub async fn misplaced_entries_are_named_not_skipped(f: CorruptFixture) {
    let mut checked = 0;
    for kind in [Corruption::OtherSagasSnapshot, Corruption::NotAValue] {
        let store = f.store.clone();
        let id = saga_id();
        let name = saga_name();
        let good = vec![
            mk(&id, &name, "a", 0, SagaStatus::Executing, 0),
            mk(&id, &name, "c", 2, SagaStatus::Completed, 2000),
        ];
        store.save_snapshots(&good).await.unwrap();
        let broken = mk(&id, &name, "b", 1, SagaStatus::Executing, 1000);
        if !(f.inject)(broken.clone(), kind).await {
            continue;
        }
        let listed = store
            .list_snapshots(&id, &SnapshotQuery::all())
            .await
            .unwrap();
        assert_eq!(ids(&listed.items), ids(&good), "{kind:?}");
        assert!(
            listed
                .bad
                .iter()
                .any(|b| b.key.contains(&broken.snapshot_id)),
            "{kind:?}: not named: {:?}",
            listed.bad
        );
        checked += 1;
    }
    if checked == 0 {
        skip_line!("not applicable: this backend keys entries so that none can be misplaced");
    }
}

/// Nine snapshots, one broken: first, in the middle and last of a page of
/// 3 (oldest first; newest first it is last, in the middle and first).
/// Pages of 3 and of 2, both orders, serve the eight good ones in order
/// and name the broken one once; time travel just past it works.
pub async fn corrupt_entry_mid_small_page_does_not_end_paging(f: CorruptFixture) {
    let store = f.store.clone();
    for broken_at in [4usize, 3, 5] {
        let id = saga_id();
        let name = saga_name();
        let all: Vec<Snapshot> = (0..9)
            .map(|i| {
                mk(
                    &id,
                    &name,
                    &format!("step_{i}"),
                    i,
                    SagaStatus::Executing,
                    i * 1000,
                )
            })
            .collect();
        let mut good = all.clone();
        let broken = good.remove(broken_at);
        store.save_snapshots(&good).await.unwrap();
        let mut injected = false;
        for kind in [Corruption::InvalidJson, Corruption::ContextNotObject] {
            if (f.inject)(broken.clone(), kind).await {
                injected = true;
                break;
            }
        }
        if !injected {
            skip_line!("not applicable: this backend cannot hold a broken snapshot");
            return;
        }
        for order in [Order::Asc, Order::Desc] {
            for size in [3usize, 2] {
                let (items, bad) = snapshot_pages(&store, &id, order, size).await;
                assert_eq!(
                    ids(&items),
                    ids(&sorted(good.clone(), order)),
                    "#{broken_at} broken, {order:?}, pages of {size}: every good snapshot, in order"
                );
                assert_eq!(
                    bad.len(),
                    1,
                    "#{broken_at} broken, {order:?}, pages of {size}: named once: {bad:?}"
                );
                assert!(bad[0].key.contains(&broken.snapshot_id), "{:?}", bad[0]);
            }
        }
        let next = &all[broken_at + 1];
        assert_eq!(
            store
                .snapshot_at(&id, next.created_at)
                .await
                .unwrap()
                .as_ref(),
            Some(next),
            "time travel to the snapshot after the broken #{broken_at}"
        );
    }
}
