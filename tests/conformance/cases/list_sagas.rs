//! Listing sagas: newest activity first, summaries, and every filter alone
//! and combined.

use super::*;

pub async fn list_sagas_newest_activity_first_with_summaries(store: Arc<dyn SnapshotStore>) {
    let name = saga_name();
    let (a, b, c) = (saga_id(), saga_id(), saga_id());
    let a_snaps = [
        mk(&a, &name, "reserve_inventory", 0, SagaStatus::Executing, 0),
        mk(&a, &name, "charge_payment", 1, SagaStatus::Executing, 100),
        mk(&a, &name, "__completed__", 3, SagaStatus::Completed, 500),
    ];
    let b_snaps = [
        mk(&b, &name, "reserve_inventory", 0, SagaStatus::Executing, 50),
        mk(&b, &name, "charge_payment", 1, SagaStatus::Failed, 900),
    ];
    let c_snaps = vec![mk(
        &c,
        &name,
        "reserve_inventory",
        0,
        SagaStatus::Pending,
        200,
    )];
    // Saved newest-first within each saga, so "latest" must come from time.
    for s in a_snaps
        .iter()
        .rev()
        .chain(b_snaps.iter().rev())
        .chain(&c_snaps)
    {
        store.save_snapshot(s).await.unwrap();
    }
    let listed = all_sagas(&store, &by_name(&name), 50).await;
    assert_eq!(saga_ids(&listed), vec![b.as_str(), a.as_str(), c.as_str()]);
    let want_a = SagaSummary {
        saga_id: a.clone(),
        saga_name: name.clone(),
        latest_status: SagaStatus::Completed,
        latest_step: "__completed__".into(),
        latest_step_index: 3,
        snapshot_count: 3,
        first_at: a_snaps[0].created_at,
        last_at: a_snaps[2].created_at,
    };
    let want_b = SagaSummary {
        saga_id: b.clone(),
        saga_name: name.clone(),
        latest_status: SagaStatus::Failed,
        latest_step: "charge_payment".into(),
        latest_step_index: 1,
        snapshot_count: 2,
        first_at: b_snaps[0].created_at,
        last_at: b_snaps[1].created_at,
    };
    assert_eq!(listed[0], want_b);
    assert_eq!(listed[1], want_a);
    assert_eq!(listed[2].snapshot_count, 1);
    assert_eq!(listed[2].first_at, listed[2].last_at);
    assert_eq!(store.saga_summary(&a).await.unwrap(), Some(want_a));
    assert_eq!(store.saga_summary(&b).await.unwrap(), Some(want_b));
    assert_eq!(store.saga_summary(&saga_id()).await.unwrap(), None);
    assert_eq!(store.count_sagas(&by_name(&name)).await.unwrap(), 3);
    // New activity moves a saga to the top.
    store
        .save_snapshot(&mk(
            &c,
            &name,
            "charge_payment",
            1,
            SagaStatus::Executing,
            1_000,
        ))
        .await
        .unwrap();
    let listed = all_sagas(&store, &by_name(&name), 50).await;
    assert_eq!(saga_ids(&listed), vec![c.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(listed[0].snapshot_count, 2);
    assert_eq!(listed[0].latest_status, SagaStatus::Executing);
}

pub async fn list_sagas_filters_alone_and_combined(store: Arc<dyn SnapshotStore>) {
    let name = saga_name();
    let other_name = saga_name();
    // (id, status, latest step, last activity in µs after t0)
    let spec = [
        (SagaStatus::Completed, "__completed__", 100),
        (SagaStatus::Completed, "__completed__", 200),
        (SagaStatus::Failed, "charge_payment", 300),
        (SagaStatus::RolledBack, "reserve_inventory", 400),
        (SagaStatus::Executing, "charge_payment", 500),
        (
            SagaStatus::Other("paused_by_ops".into()),
            "charge_payment",
            600,
        ),
    ];
    let sagas: Vec<String> = spec.iter().map(|_| saga_id()).collect();
    for (id, (status, step, us)) in sagas.iter().zip(&spec) {
        // An earlier snapshot with a different status and step: filters look
        // at the newest only.
        store
            .save_snapshot(&mk(id, &name, "start", 0, SagaStatus::Executing, 0))
            .await
            .unwrap();
        store
            .save_snapshot(&mk(id, &name, step, 1, status.clone(), *us))
            .await
            .unwrap();
    }
    let stranger = saga_id();
    store
        .save_snapshot(&mk(
            &stranger,
            &other_name,
            "__completed__",
            1,
            SagaStatus::Completed,
            150,
        ))
        .await
        .unwrap();

    let check = |filter: SagaFilter, want: Vec<usize>| {
        let store = store.clone();
        let sagas = sagas.clone();
        async move {
            let want: Vec<&str> = want.iter().map(|&i| sagas[i].as_str()).collect();
            let got = all_sagas(&store, &filter, 2).await;
            assert_eq!(saga_ids(&got), want, "filter {filter:?}");
            assert_eq!(
                store.count_sagas(&filter).await.unwrap(),
                want.len() as u64,
                "count for {filter:?}"
            );
        }
    };
    let named = |f: SagaFilter| SagaFilter {
        name: Some(name.clone()),
        ..f
    };
    let t = |us: i64| Some(t0().plus_micros(us));
    check(named(SagaFilter::default()), vec![5, 4, 3, 2, 1, 0]).await;
    // Another name: only that saga.
    assert_eq!(
        saga_ids(&all_sagas(&store, &by_name(&other_name), 5).await),
        vec![stranger.as_str()]
    );
    assert_eq!(store.count_sagas(&by_name(&other_name)).await.unwrap(), 1);
    check(by_name(&format!("{name}-no-such")), vec![]).await;
    check(
        named(SagaFilter {
            statuses: vec![SagaStatus::Completed],
            ..SagaFilter::default()
        }),
        vec![1, 0],
    )
    .await;
    check(
        named(SagaFilter {
            statuses: vec![SagaStatus::Failed, SagaStatus::RolledBack],
            ..SagaFilter::default()
        }),
        vec![3, 2],
    )
    .await;
    check(
        named(SagaFilter {
            statuses: vec![SagaStatus::Other("paused_by_ops".into())],
            ..SagaFilter::default()
        }),
        vec![5],
    )
    .await;
    check(
        named(SagaFilter {
            statuses: vec![SagaStatus::Pending],
            ..SagaFilter::default()
        }),
        vec![],
    )
    .await;
    check(
        named(SagaFilter {
            latest_step: Some("charge_payment".into()),
            ..SagaFilter::default()
        }),
        vec![5, 4, 2],
    )
    .await;
    check(
        named(SagaFilter {
            latest_step: Some("start".into()),
            ..SagaFilter::default()
        }),
        vec![],
    )
    .await;
    check(
        named(SagaFilter {
            since: t(300),
            ..SagaFilter::default()
        }),
        vec![5, 4, 3, 2],
    )
    .await;
    check(
        named(SagaFilter {
            until: t(300),
            ..SagaFilter::default()
        }),
        vec![2, 1, 0],
    )
    .await;
    check(
        named(SagaFilter {
            since: t(201),
            until: t(499),
            ..SagaFilter::default()
        }),
        vec![3, 2],
    )
    .await;
    for (i, id) in sagas.iter().enumerate() {
        check(
            SagaFilter {
                id_prefix: Some(id.clone()),
                ..SagaFilter::default()
            },
            vec![i],
        )
        .await;
    }
    // Prefixes are plain text, not patterns; the empty prefix matches all.
    for pattern in ["%", "_", "*", ".", "^"] {
        check(
            named(SagaFilter {
                id_prefix: Some(pattern.into()),
                ..SagaFilter::default()
            }),
            vec![],
        )
        .await;
    }
    check(
        named(SagaFilter {
            id_prefix: Some(String::new()),
            ..SagaFilter::default()
        }),
        vec![5, 4, 3, 2, 1, 0],
    )
    .await;
    // A short prefix may match other tests' sagas; with the name it is ours.
    let prefix: String = sagas[4].chars().take(6).collect();
    let want: Vec<usize> = (0..sagas.len())
        .rev()
        .filter(|&i| sagas[i].starts_with(&prefix))
        .collect();
    check(
        named(SagaFilter {
            id_prefix: Some(prefix),
            ..SagaFilter::default()
        }),
        want,
    )
    .await;
    check(
        named(SagaFilter {
            statuses: vec![
                SagaStatus::Failed,
                SagaStatus::Executing,
                SagaStatus::Completed,
            ],
            latest_step: Some("charge_payment".into()),
            since: t(100),
            until: t(499),
            ..SagaFilter::default()
        }),
        vec![2],
    )
    .await;
    check(
        named(SagaFilter {
            statuses: vec![SagaStatus::Completed],
            id_prefix: Some(sagas[0].clone()),
            since: t(100),
            until: t(100),
            ..SagaFilter::default()
        }),
        vec![0],
    )
    .await;
    // Part of the name, ASCII letters in either case (the TUI's filter
    // line): plain text, not a pattern, on every backend.
    let tag = name.trim_start_matches("Saga-").to_string();
    for part in [tag.to_ascii_uppercase(), format!("sAGA-{}", &tag[..6])] {
        check(
            SagaFilter {
                name_contains: Some(part),
                ..SagaFilter::default()
            },
            vec![5, 4, 3, 2, 1, 0],
        )
        .await;
    }
    for wild in ["_", "%", "*", "."] {
        check(
            SagaFilter {
                name_contains: Some(format!("{}{wild}{}", &tag[..3], &tag[4..])),
                ..SagaFilter::default()
            },
            vec![],
        )
        .await;
    }
    check(
        SagaFilter {
            name_contains: Some(tag.clone()),
            statuses: vec![SagaStatus::Failed, SagaStatus::RolledBack],
            ..SagaFilter::default()
        },
        vec![3, 2],
    )
    .await;
    check(
        SagaFilter {
            name: Some(other_name.clone()),
            statuses: vec![SagaStatus::Failed],
            ..SagaFilter::default()
        },
        vec![],
    )
    .await;
}
