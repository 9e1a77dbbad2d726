//! Paging through sagas: keyset cursors with equal times, limits of zero
//! and of `usize::MAX`, and 2,500 sagas.

use super::*;

pub async fn list_sagas_keyset_paging_with_equal_last_at(store: Arc<dyn SnapshotStore>) {
    let name = saga_name();
    // 23 sagas; groups of three share their last activity time.
    let mut all = Vec::new();
    for i in 0..23i64 {
        let id = saga_id();
        let s = mk(
            &id,
            &name,
            "charge_payment",
            1,
            SagaStatus::Executing,
            (i / 3) * 1_000,
        );
        all.push(s.clone());
        store
            .save_snapshots(&[
                mk(
                    &id,
                    &name,
                    "reserve_inventory",
                    0,
                    SagaStatus::Executing,
                    -5,
                ),
                s,
            ])
            .await
            .unwrap();
    }
    all.sort_by(|a, b| (b.created_at, &b.saga_id).cmp(&(a.created_at, &a.saga_id)));
    let want: Vec<&str> = all.iter().map(|s| s.saga_id.as_str()).collect();
    let filter = by_name(&name);
    assert_eq!(store.count_sagas(&filter).await.unwrap(), 23);
    for size in [1usize, 2, 3, 4, 10, 22, 23, 24, 100] {
        let got = all_sagas(&store, &filter, size).await;
        let unique: HashSet<_> = got.iter().map(|s| &s.saga_id).collect();
        assert_eq!(unique.len(), got.len(), "duplicates with page size {size}");
        assert_eq!(
            saga_ids(&got),
            want,
            "gaps or misorder with page size {size}"
        );
    }
    // The last page says there is no next one.
    let first = store.list_sagas(&filter, &page(23)).await.unwrap();
    assert_eq!(first.sagas.len(), 23);
    assert_eq!(first.next, None);
    let p = store.list_sagas(&filter, &page(10)).await.unwrap();
    assert_eq!(p.sagas.len(), 10);
    assert!(p.next.is_some());
}

pub async fn list_sagas_page_limit_zero_and_huge(store: Arc<dyn SnapshotStore>) {
    let name = saga_name();
    let ids: Vec<String> = (0..3).map(|_| saga_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .save_snapshot(&mk(id, &name, "s", 0, SagaStatus::Executing, i as i64))
            .await
            .unwrap();
    }
    let filter = by_name(&name);
    let zero = store.list_sagas(&filter, &page(0)).await.unwrap();
    assert!(zero.sagas.is_empty(), "limit 0 gave {:?}", zero.sagas);
    // "No limit" spelled as the largest limit must not wrap to nothing.
    let huge = store.list_sagas(&filter, &page(usize::MAX)).await.unwrap();
    let want: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(saga_ids(&huge.sagas), want);
    assert_eq!(huge.next, None);
    let big = store
        .list_sagas(&filter, &page(u32::MAX as usize))
        .await
        .unwrap();
    assert_eq!(saga_ids(&big.sagas), want);
}

/// 2,500 sagas: more than any page, script batch or read a backend makes
/// at once. Every page size lists all of them once, counts agree, a status
/// filter pages through its share, and a short id deep in the list is
/// found. (Redis once stopped every listing at 999 sagas.)
pub async fn list_sagas_pages_through_2500_sagas(store: Arc<dyn SnapshotStore>) {
    const N: usize = 2500;
    let name = saga_name();
    let statuses = [
        SagaStatus::Completed,
        SagaStatus::RolledBack,
        SagaStatus::Executing,
    ];
    let snaps: Vec<Snapshot> = (0..N)
        .map(|i| {
            mk(
                &saga_id(),
                &name,
                "step",
                0,
                statuses[i % 3].clone(),
                i as i64 * 1000,
            )
        })
        .collect();
    for chunk in snaps.chunks(500) {
        store.save_snapshots(chunk).await.unwrap();
    }
    let f = by_name(&name);
    assert_eq!(store.count_sagas(&f).await.unwrap(), N as u64);
    let mut newest_first: Vec<&str> = snaps.iter().map(|s| s.saga_id.as_str()).collect();
    newest_first.reverse();
    for limit in [1000usize, 333] {
        let got = all_sagas(&store, &f, limit).await;
        assert_eq!(
            saga_ids(&got),
            newest_first,
            "page size {limit}: every saga once, newest first"
        );
    }
    let rolled = SagaFilter {
        statuses: vec![SagaStatus::RolledBack],
        name: Some(name.clone()),
        ..SagaFilter::default()
    };
    let want = snaps
        .iter()
        .filter(|s| s.status == SagaStatus::RolledBack)
        .count();
    assert_eq!(all_sagas(&store, &rolled, 500).await.len(), want);
    assert_eq!(store.count_sagas(&rolled).await.unwrap(), want as u64);
    // The 2,400th in list order, by a prefix as the list shows ids.
    let deep = &snaps[100].saga_id;
    let found = sagascope::replay::find_saga(store.as_ref(), &deep[..13])
        .await
        .unwrap();
    assert_eq!(&found.saga_id, deep);
}
