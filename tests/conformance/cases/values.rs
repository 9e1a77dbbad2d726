//! Values: unicode, a megabyte of context, exact numbers, key order, extra
//! fields, external refs and NUL.

use super::*;

pub async fn unicode_names_keys_and_values_round_trip(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = format!("Commande_données_🚀_{}", unique_tag());
    let mut a = mk(&id, &name, "transform_données", 0, SagaStatus::Executing, 0);
    a.context = ctx(json!({
        "clé": "valeur naïve — café",
        "🔑": "🚀🎉👩‍👩‍👧",
        "日本語": "こんにちは世界",
        "עברית": "שלום",
        "combining": "e\u{301} vs é",
        "escapes": "quote \" backslash \\ newline \n tab \t cr \r",
        "separators": "\u{2028}\u{2029}\u{7f}\u{1f}",
        "astral": "\u{1F600}\u{10FFFF}",
        "nested": {"ünïcödé": ["ä", "ö", {"ß": "ẞ"}]}
    }));
    a.completed_steps = vec!["préparer".into(), "🚀".into()];
    let b = mk(
        &id,
        &name,
        "🚀",
        1,
        SagaStatus::Other("en_pause_⏸".into()),
        10,
    );
    store.save_snapshots(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(
        store.get_snapshot(&a.snapshot_id).await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(all_snapshots(&store, &id).await, vec![a.clone(), b.clone()]);
    assert_eq!(
        store
            .latest_snapshot(&id, Some("transform_données"))
            .await
            .unwrap()
            .as_ref(),
        Some(&a)
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("🚀"))
            .await
            .unwrap()
            .as_ref(),
        Some(&b)
    );
    let listed = all_sagas(&store, &by_name(&name), 10).await;
    assert_eq!(saga_ids(&listed), vec![id.as_str()]);
    assert_eq!(listed[0].saga_name, name);
    assert_eq!(listed[0].latest_step, "🚀");
    assert_eq!(
        listed[0].latest_status,
        SagaStatus::Other("en_pause_⏸".into())
    );
    assert_eq!(
        store.saga_summary(&id).await.unwrap().as_ref(),
        Some(&listed[0]),
        "the summary keeps unicode names, steps and statuses"
    );
    let by_step = SagaFilter {
        latest_step: Some("🚀".into()),
        ..by_name(&name)
    };
    assert_eq!(store.count_sagas(&by_step).await.unwrap(), 1);
    let by_status = SagaFilter {
        statuses: vec![SagaStatus::Other("en_pause_⏸".into())],
        ..by_name(&name)
    };
    assert_eq!(store.count_sagas(&by_status).await.unwrap(), 1);
}

pub async fn one_megabyte_context_round_trips(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    let blob: String = "sagascope ✓ données 🚀 "
        .chars()
        .cycle()
        .take(700_000)
        .collect();
    let items: Vec<Value> = (0..5_000)
        .map(|i| json!({"sku": format!("SKU-{i:05}"), "qty": i}))
        .collect();
    s.context = ctx(json!({"blob": blob, "items": items, "after": "the end"}));
    let size = serde_json::to_string(&s.context).unwrap().len();
    assert!(size > 1_000_000, "context is only {size} bytes");
    store.save_snapshot(&s).await.unwrap();
    assert_eq!(
        store.get_snapshot(&s.snapshot_id).await.unwrap().as_ref(),
        Some(&s)
    );
    assert_eq!(
        store.snapshot_at(&id, s.created_at).await.unwrap().as_ref(),
        Some(&s)
    );
    assert_eq!(all_snapshots(&store, &id).await, vec![s]);
}

pub async fn numbers_and_nesting_round_trip_exactly(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    s.context = ctx(json!({
        "two_pow_53_plus_1": 9007199254740993u64,
        "minus_two_pow_53_minus_1": -9007199254740993i64,
        "i64_max": i64::MAX,
        "i64_min": i64::MIN,
        "u64_max": u64::MAX,
        "zero": 0,
        "negative": -42,
        "float": 0.1,
        "float_pi": std::f64::consts::PI,
        "float_neg": -2.5e-8,
        "float_big": 1.7976931348623157e308,
        "float_whole": 3.0,
        "true": true,
        "false": false,
        "null": null,
        "empty_object": {},
        "empty_array": [],
        "empty_string": "",
        "nested": {"a": [1, [2, [3, [4, {"deep": [null, true, 1.5, "x"]}]]]], "b": {"c": {"d": {"e": -1}}}},
        "mixed": [1, "two", 3.5, null, false, {"k": []}, [[]]]
    }));
    store.save_snapshot(&s).await.unwrap();
    let got = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
    assert_eq!(got.context, s.context);
    assert_eq!(
        got.context["two_pow_53_plus_1"].as_u64(),
        Some(9007199254740993)
    );
    assert_eq!(got.context["i64_max"].as_i64(), Some(i64::MAX));
    assert_eq!(got.context["i64_min"].as_i64(), Some(i64::MIN));
    assert_eq!(got.context["u64_max"].as_u64(), Some(u64::MAX));
    assert_eq!(got.context["float"].as_f64(), Some(0.1));
    assert_eq!(got, s);
}

pub async fn key_order_kept_when_claimed(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    s.context = ctx(json!({"zeta": 1, "alpha": 2, "mm": {"z": 1, "a": 2}, "b": 3, "aaaaaaaa": 4}));
    store.save_snapshot(&s).await.unwrap();
    let got = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
    assert_eq!(got.context, s.context, "same keys and values");
    if store.capabilities().preserves_key_order {
        let keys: Vec<_> = got.context.keys().collect();
        assert_eq!(keys, vec!["zeta", "alpha", "mm", "b", "aaaaaaaa"]);
        let inner: Vec<_> = got.context["mm"].as_object().unwrap().keys().collect();
        assert_eq!(inner, vec!["z", "a"]);
    }
}

pub async fn extra_fields_kept_when_claimed(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    s.extra.insert("schema_version".into(), json!(2));
    s.extra
        .insert("trace".into(), json!({"span": "ab12", "sampled": true}));
    store.save_snapshot(&s).await.unwrap();
    let got = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
    if store.capabilities().preserves_extra_fields {
        assert_eq!(got, s);
    } else {
        assert_eq!(
            Snapshot {
                extra: Map::new(),
                ..got
            },
            Snapshot {
                extra: Map::new(),
                ..s
            }
        );
    }
}

pub async fn external_refs_kept_when_claimed(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    s.external_refs =
        ctx(json!({"payment": {"provider": "stripe", "id": "ch_1"}, "big": 9007199254740993u64}));
    store.save_snapshot(&s).await.unwrap();
    let got = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
    if store.capabilities().stores_external_refs {
        assert_eq!(got, s);
    } else {
        let strip = |x: Snapshot| Snapshot {
            external_refs: Map::new(),
            ..x
        };
        assert_eq!(strip(got), strip(s));
    }
}

pub async fn nul_in_strings_stored_or_refused_whole(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    s.context.insert("raw".into(), json!("before\u{0}after"));
    s.context
        .insert("key\u{0}with nul".into(), json!(["\u{0}"]));
    let result = store.save_snapshot(&s).await;
    if store.capabilities().stores_nul_in_strings {
        result.unwrap();
        let got = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
        assert_eq!(got.context["raw"], json!("before\u{0}after"));
        assert_eq!(got, s);
    } else {
        assert!(
            result.is_err(),
            "a backend that cannot store NUL must refuse, not mangle"
        );
        assert_eq!(store.get_snapshot(&s.snapshot_id).await.unwrap(), None);
        assert_eq!(store.count_snapshots(&id).await.unwrap(), 0);
        assert_eq!(store.saga_summary(&id).await.unwrap(), None);
        assert!(all_snapshots(&store, &id).await.is_empty());
    }
}
