//! Listing one saga's snapshots: order, limits, inclusive time ranges and
//! keyset cursors.

use super::*;

pub async fn list_orders_oldest_first_and_newest_first(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let snaps: Vec<_> = (0..5).map(|i| snap(&id, i, i * 1_000)).collect();
    // Saved out of order: the store orders by time, not by arrival.
    for s in snaps.iter().rev() {
        store.save_snapshot(s).await.unwrap();
    }
    let asc = store
        .list_snapshots(&id, &SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(asc.items, snaps);
    assert!(asc.bad.is_empty());
    let desc = store
        .list_snapshots(&id, &SnapshotQuery::newest(3))
        .await
        .unwrap();
    let want: Vec<_> = snaps.iter().rev().take(3).cloned().collect();
    assert_eq!(desc.items, want);
    let all_desc = SnapshotQuery {
        order: Order::Desc,
        ..SnapshotQuery::all()
    };
    let want: Vec<_> = snaps.iter().rev().cloned().collect();
    assert_eq!(
        store.list_snapshots(&id, &all_desc).await.unwrap().items,
        want
    );
    let first2 = SnapshotQuery {
        limit: Some(2),
        ..SnapshotQuery::all()
    };
    assert_eq!(
        store.list_snapshots(&id, &first2).await.unwrap().items,
        snaps[..2].to_vec()
    );
    let more = SnapshotQuery {
        limit: Some(50),
        ..SnapshotQuery::all()
    };
    assert_eq!(store.list_snapshots(&id, &more).await.unwrap().items, snaps);
    // "No limit" spelled as the largest limit must not wrap to nothing.
    let huge = SnapshotQuery {
        limit: Some(usize::MAX),
        order: Order::Desc,
        ..SnapshotQuery::all()
    };
    let want_desc: Vec<_> = snaps.iter().rev().cloned().collect();
    assert_eq!(
        store.list_snapshots(&id, &huge).await.unwrap().items,
        want_desc
    );
    let none = SnapshotQuery {
        limit: Some(0),
        ..SnapshotQuery::all()
    };
    assert_eq!(
        store.list_snapshots(&id, &none).await.unwrap().items,
        vec![],
        "limit 0"
    );
    let unknown = store
        .list_snapshots(&saga_id(), &SnapshotQuery::all())
        .await
        .unwrap();
    assert!(unknown.items.is_empty() && unknown.bad.is_empty());
}

pub async fn list_since_until_are_inclusive(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    let snaps: Vec<_> = (0..10)
        .map(|i| mk(&id, &name, &format!("s{i}"), i, SagaStatus::Executing, i))
        .collect();
    store.save_snapshots(&snaps).await.unwrap();
    let q = |since: Option<i64>, until: Option<i64>, order: Order, limit: Option<usize>| {
        SnapshotQuery {
            order,
            limit,
            since: since.map(|us| t0().plus_micros(us)),
            until: until.map(|us| t0().plus_micros(us)),
            after: None,
        }
    };
    let list = |q: SnapshotQuery| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .list_snapshots(&id, &q)
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|s| s.step_index)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(q(Some(2), Some(5), Order::Asc, None)).await,
        vec![2, 3, 4, 5]
    );
    assert_eq!(
        list(q(Some(2), Some(5), Order::Desc, None)).await,
        vec![5, 4, 3, 2]
    );
    assert_eq!(
        list(q(Some(2), Some(5), Order::Asc, Some(2))).await,
        vec![2, 3]
    );
    assert_eq!(
        list(q(Some(2), Some(5), Order::Desc, Some(2))).await,
        vec![5, 4]
    );
    assert_eq!(
        list(q(Some(7), None, Order::Asc, None)).await,
        vec![7, 8, 9]
    );
    assert_eq!(list(q(None, Some(1), Order::Asc, None)).await, vec![0, 1]);
    assert_eq!(
        list(q(Some(4), Some(4), Order::Asc, None)).await,
        vec![4],
        "since == until"
    );
    assert_eq!(
        list(q(Some(6), Some(5), Order::Asc, None)).await,
        Vec::<i64>::new(),
        "since > until"
    );
    assert_eq!(
        list(q(Some(10), None, Order::Asc, None)).await,
        Vec::<i64>::new(),
        "after the last"
    );
    assert_eq!(
        list(q(None, Some(-1), Order::Desc, None)).await,
        Vec::<i64>::new(),
        "before the first"
    );
    assert_eq!(
        list(q(Some(-5), Some(50), Order::Asc, None)).await,
        (0..10).collect::<Vec<_>>()
    );
}

pub async fn list_keyset_paging_has_no_gaps_or_duplicates(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    // 37 snapshots; runs of up to 4 share a microsecond.
    let snaps: Vec<_> = (0..37)
        .map(|i| {
            mk(
                &id,
                &name,
                &format!("step_{i}"),
                i,
                SagaStatus::Executing,
                (i / 4) * 7 + (i % 5 == 0) as i64,
            )
        })
        .collect();
    store.save_snapshots(&snaps).await.unwrap();
    for order in [Order::Asc, Order::Desc] {
        let full = sorted(snaps.clone(), order);
        let listed = store
            .list_snapshots(
                &id,
                &SnapshotQuery {
                    order,
                    ..SnapshotQuery::all()
                },
            )
            .await
            .unwrap()
            .items;
        assert_eq!(ids(&listed), ids(&full), "{order:?} order");
        for size in [1usize, 4, 5, 36, 37, 100] {
            let mut got: Vec<Snapshot> = Vec::new();
            let mut after: Option<SnapshotCursor> = None;
            let mut pages = 0;
            loop {
                let q = SnapshotQuery {
                    order,
                    limit: Some(size),
                    after: after.clone(),
                    ..SnapshotQuery::all()
                };
                let page = store.list_snapshots(&id, &q).await.unwrap();
                let p = page.items;
                assert!(p.len() <= size);
                pages += 1;
                assert!(
                    pages <= 40,
                    "paging does not end ({order:?}, page size {size})"
                );
                match &page.next {
                    Some(c) => {
                        assert_eq!(p.len(), size, "only a full page has a next");
                        assert_eq!(Some(c), p.last().map(SnapshotCursor::of).as_ref());
                    }
                    None => assert!(p.len() <= size),
                }
                got.extend(p);
                match page.next {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            let unique: HashSet<_> = got.iter().map(|s| &s.snapshot_id).collect();
            assert_eq!(
                unique.len(),
                got.len(),
                "duplicates ({order:?}, page size {size})"
            );
            assert_eq!(
                ids(&got),
                ids(&full),
                "gaps or misorder ({order:?}, page size {size})"
            );
        }
        // A cursor combined with a time range stays inside the range.
        let q = SnapshotQuery {
            order,
            limit: Some(3),
            since: Some(t0().plus_micros(7)),
            until: Some(t0().plus_micros(28)),
            after: Some(SnapshotCursor::of(&full[full.len() / 2])),
        };
        let want: Vec<_> = full[full.len() / 2 + 1..]
            .iter()
            .filter(|s| q.since.unwrap() <= s.created_at && s.created_at <= q.until.unwrap())
            .take(3)
            .cloned()
            .collect();
        assert_eq!(
            ids(&store.list_snapshots(&id, &q).await.unwrap().items),
            ids(&want)
        );
    }
}
