//! The cases. Each takes a store that may be shared with other tests and
//! other processes (server backends), so every case uses fresh saga ids and
//! a unique saga name or id prefix, never assumes the store is empty, and
//! asserts what a user of the store would notice.
//!
//! Ids are UUIDs throughout because sagaz's PostgreSQL tables type them so.
//! Snapshots sharing a `created_at` in one saga always have distinct step
//! names, because sagaz's PostgreSQL table is unique on
//! `(saga_id, step_name, created_at)`.

/// Prints a SKIP line that `cargo test` shows even for a passing test
/// (libtest captures `eprintln!`, not writes to the stderr handle).
macro_rules! skip_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use sagascope::model::{ReplayLog, ReplayStatus, SagaStatus, SagaSummary, Snapshot, Timestamp};
use sagascope::store::{
    LockOutcome, Order, SagaFilter, SagaPageRequest, SnapshotCursor, SnapshotQuery, SnapshotStore,
    StoreError,
};

use crate::common::*;

/// Expands to one `#[tokio::test]` per case for the backend module it is
/// used in (see the contract in `main.rs`). `conformance_cases!(corrupt =
/// fixture)` adds the corrupt-entry cases, run against `fixture().await`.
#[macro_export]
macro_rules! conformance_cases {
    () => {
        conformance_cases!(@cases
            save_then_get_round_trips,
            saving_same_id_replaces,
            save_snapshots_batch_equals_individual_saves,
            batched_latest_for_step_equals_one_by_one,
            save_replays_batch_equals_individual_saves,
            latest_snapshot_overall_and_per_step,
            snapshot_at_time_boundaries,
            snapshot_at_equal_timestamps_breaks_ties_by_id,
            snapshot_at_first_of_ten_thousand_is_step_zero,
            list_orders_oldest_first_and_newest_first,
            list_since_until_are_inclusive,
            list_keyset_paging_has_no_gaps_or_duplicates,
            count_and_delete_snapshot,
            delete_saga_removes_all_its_snapshots,
            delete_expired_removes_only_past_retention,
            replay_log_round_trip_and_update,
            list_replays_newest_first_with_limit,
            list_sagas_newest_activity_first_with_summaries,
            list_sagas_filters_alone_and_combined,
            list_sagas_keyset_paging_with_equal_last_at,
            list_sagas_page_limit_zero_and_huge,
            unicode_names_keys_and_values_round_trip,
            one_megabyte_context_round_trips,
            numbers_and_nesting_round_trip_exactly,
            key_order_kept_when_claimed,
            extra_fields_kept_when_claimed,
            external_refs_kept_when_claimed,
            nul_in_strings_stored_or_refused_whole,
            locks_acquire_hold_renew_expire_release,
            concurrent_try_lock_has_one_winner,
            concurrent_saves_are_all_kept,
            health_names_backend_and_counts,
            list_sagas_pages_through_2500_sagas,
        );
    };
    (corrupt = $fixture:path) => {
        conformance_cases!();
        $crate::corrupt_cases!($fixture);
    };
    (@cases $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(store) = store().await {
                    $crate::cases::$case(store).await;
                }
            }
        )*
    };
}

/// The corrupt-entry cases, for a backend that can write broken entries by
/// raw means: `fixture().await` gives `Option<CorruptFixture>`.
#[macro_export]
macro_rules! corrupt_cases {
    ($fixture:path) => {
        $crate::corrupt_cases!(@cases $fixture;
            corrupt_invalid_json_is_named_not_fatal,
            corrupt_context_not_object_is_named_not_fatal,
            corrupt_step_index_not_integer_is_named_not_fatal,
            corrupt_created_at_not_a_time_is_named_not_fatal,
            corrupt_entry_mid_page_does_not_end_paging,
            corrupt_newest_entry_keeps_the_saga_findable,
            misplaced_entries_are_named_not_skipped,
        );
    };
    (@cases $fixture:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some(fixture) = $fixture().await {
                    $crate::cases::$case(fixture).await;
                }
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Helpers

/// A snapshot of a saga named `name`, `us` microseconds after [`t0`].
fn mk(saga_id: &str, name: &str, step: &str, index: i64, status: SagaStatus, us: i64) -> Snapshot {
    let mut s = Snapshot::new(
        saga_id,
        name,
        step,
        index,
        status,
        ctx(json!({"saga": saga_id, "index": index})),
        vec![],
    );
    s.created_at = t0().plus_micros(us);
    s.retention_until = Some(s.created_at.plus_micros(30 * 86_400_000_000));
    s
}

/// A unique saga name, so list_sagas cases see only their own sagas.
fn saga_name() -> String {
    format!("Saga-{}", unique_tag())
}

/// The order every backend lists a saga's snapshots in.
fn sorted(mut v: Vec<Snapshot>, order: Order) -> Vec<Snapshot> {
    v.sort_by(|a, b| (a.created_at, &a.snapshot_id).cmp(&(b.created_at, &b.snapshot_id)));
    if order == Order::Desc {
        v.reverse();
    }
    v
}

fn ids(v: &[Snapshot]) -> Vec<&str> {
    v.iter().map(|s| s.snapshot_id.as_str()).collect()
}

fn by_name(name: &str) -> SagaFilter {
    SagaFilter {
        name: Some(name.to_string()),
        ..SagaFilter::default()
    }
}

fn page(limit: usize) -> SagaPageRequest {
    SagaPageRequest { limit, after: None }
}

async fn all_snapshots(store: &Arc<dyn SnapshotStore>, saga_id: &str) -> Vec<Snapshot> {
    let l = store
        .list_snapshots(saga_id, &SnapshotQuery::all())
        .await
        .unwrap();
    assert!(l.bad.is_empty(), "unexpected bad entries: {:?}", l.bad);
    l.items
}

/// Every saga matching `filter`, following `next` cursors with pages of
/// `limit`; asserts the pages hold no bad entries.
async fn all_sagas(
    store: &Arc<dyn SnapshotStore>,
    filter: &SagaFilter,
    limit: usize,
) -> Vec<SagaSummary> {
    let mut out = Vec::new();
    let mut req = page(limit);
    for _ in 0..10_000 {
        let p = store.list_sagas(filter, &req).await.unwrap();
        assert!(p.bad.is_empty(), "unexpected bad entries: {:?}", p.bad);
        assert!(
            p.sagas.len() <= limit,
            "page of {} exceeds limit {limit}",
            p.sagas.len()
        );
        out.extend(p.sagas);
        match p.next {
            Some(c) => req.after = Some(c),
            None => return out,
        }
    }
    panic!("list_sagas paging did not end");
}

fn saga_ids(v: &[SagaSummary]) -> Vec<&str> {
    v.iter().map(|s| s.saga_id.as_str()).collect()
}

fn replay(original: &str, us: i64) -> ReplayLog {
    ReplayLog {
        replay_id: saga_id(),
        original_saga_id: original.to_string(),
        new_saga_id: saga_id(),
        checkpoint_step: "charge_payment".into(),
        replay_status: ReplayStatus::Running,
        initiated_by: "alice@example.com".into(),
        context_override: None,
        error_message: None,
        created_at: t0().plus_micros(us),
        completed_at: None,
        extra: Map::new(),
    }
}

// ---------------------------------------------------------------------------
// Saving and reading

pub async fn save_then_get_round_trips(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let mut s = snap(&id, 1, 0);
    s.completed_steps = vec!["reserve_inventory".into()];
    s.retention_until = None;
    store.save_snapshot(&s).await.unwrap();
    let got = store
        .get_snapshot(&s.snapshot_id)
        .await
        .unwrap()
        .expect("saved snapshot is found");
    assert_eq!(got, s);
    assert!(store.get_snapshot(&saga_id()).await.unwrap().is_none());
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 1);
}

pub async fn saving_same_id_replaces(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let a = snap(&id, 0, 0);
    let b = snap(&id, 1, 1_000);
    store.save_snapshots(&[a.clone(), b.clone()]).await.unwrap();
    // Same id again, changed content: replaced, not added.
    let mut a2 = a.clone();
    a2.status = SagaStatus::Failed;
    a2.context.insert("error".into(), json!("card declined"));
    store.save_snapshot(&a2).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 2);
    assert_eq!(
        store.get_snapshot(&a.snapshot_id).await.unwrap(),
        Some(a2.clone())
    );
    assert_eq!(
        all_snapshots(&store, &id).await,
        vec![a2.clone(), b.clone()]
    );
    // Replaced with a later time: listed once, at its new place, and the
    // saga's summary follows.
    let mut a3 = a2.clone();
    a3.created_at = t0().plus_micros(2_000);
    a3.step_name = "ship_order".into();
    a3.step_index = 2;
    store.save_snapshot(&a3).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 2);
    assert_eq!(
        all_snapshots(&store, &id).await,
        vec![b.clone(), a3.clone()]
    );
    let sum = store.saga_summary(&id).await.unwrap().expect("summary");
    assert_eq!(sum.snapshot_count, 2);
    assert_eq!(sum.first_at, b.created_at);
    assert_eq!(sum.last_at, a3.created_at);
    assert_eq!(sum.latest_step, "ship_order");
    assert_eq!(sum.latest_status, SagaStatus::Failed);
    let listed = store
        .list_sagas(
            &SagaFilter {
                id_prefix: Some(id.clone()),
                ..SagaFilter::default()
            },
            &page(10),
        )
        .await
        .unwrap();
    assert_eq!(listed.sagas, vec![sum]);
}

pub async fn save_snapshots_batch_equals_individual_saves(store: Arc<dyn SnapshotStore>) {
    let (one, many) = (saga_id(), saga_id());
    let name = saga_name();
    let make = |saga: &str| -> Vec<Snapshot> {
        (0..40)
            .map(|i| {
                let mut s = mk(
                    saga,
                    &name,
                    &format!("step_{i}"),
                    i,
                    SagaStatus::Executing,
                    (i / 3) * 10,
                );
                s.context
                    .insert("payload".into(), json!({"i": i, "tags": ["a", "b"]}));
                s
            })
            .collect()
    };
    let singles = make(&one);
    let batch = make(&many);
    for s in &singles {
        store.save_snapshot(s).await.unwrap();
    }
    store.save_snapshots(&batch).await.unwrap();
    store.save_snapshots(&[]).await.unwrap();
    let strip = |v: Vec<Snapshot>| -> Vec<(Timestamp, String, i64, Map<String, Value>)> {
        v.into_iter()
            .map(|s| {
                let mut c = s.context;
                c.remove("saga");
                (s.created_at, s.step_name, s.step_index, c)
            })
            .collect()
    };
    let got_one = all_snapshots(&store, &one).await;
    let got_many = all_snapshots(&store, &many).await;
    assert_eq!(got_many, sorted(batch.clone(), Order::Asc));
    assert_eq!(got_one, sorted(singles, Order::Asc));
    let mut a = strip(got_one);
    let mut b = strip(got_many);
    // Ties are ordered by (random) id, so compare as sets.
    a.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
    b.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
    assert_eq!(a, b);
    for s in &batch {
        assert_eq!(
            store.get_snapshot(&s.snapshot_id).await.unwrap().as_ref(),
            Some(s)
        );
    }
    let (s1, s2) = (
        store.saga_summary(&one).await.unwrap().unwrap(),
        store.saga_summary(&many).await.unwrap().unwrap(),
    );
    assert_eq!(s1.snapshot_count, 40);
    assert_eq!(s2.snapshot_count, 40);
    assert_eq!((s1.first_at, s1.last_at), (s2.first_at, s2.last_at));
}

pub async fn latest_snapshot_overall_and_per_step(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    // charge_payment ran twice (a retry loop): the newest one wins.
    let snaps = [
        mk(&id, &name, "reserve_inventory", 0, SagaStatus::Executing, 0),
        mk(&id, &name, "charge_payment", 1, SagaStatus::Executing, 10),
        mk(
            &id,
            &name,
            "charge_payment",
            1,
            SagaStatus::Compensating,
            20,
        ),
        mk(&id, &name, "ship_order", 2, SagaStatus::Executing, 30),
    ];
    for s in snaps.iter().rev() {
        store.save_snapshot(s).await.unwrap();
    }
    assert_eq!(
        store.latest_snapshot(&id, None).await.unwrap().as_ref(),
        Some(&snaps[3])
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("charge_payment"))
            .await
            .unwrap()
            .as_ref(),
        Some(&snaps[2])
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("reserve_inventory"))
            .await
            .unwrap()
            .as_ref(),
        Some(&snaps[0])
    );
    assert_eq!(
        store
            .latest_snapshot(&id, Some("no_such_step"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.latest_snapshot(&saga_id(), None).await.unwrap(), None);
    assert_eq!(
        store
            .latest_snapshot(&saga_id(), Some("charge_payment"))
            .await
            .unwrap(),
        None
    );
    // Two newest at the same microsecond: the one listed last wins.
    let t = 40;
    let tie = vec![
        mk(&id, &name, "notify", 3, SagaStatus::Executing, t),
        mk(&id, &name, "__completed__", 4, SagaStatus::Completed, t),
    ];
    store.save_snapshots(&tie).await.unwrap();
    let newest = sorted(tie, Order::Desc).remove(0);
    assert_eq!(
        store.latest_snapshot(&id, None).await.unwrap(),
        Some(newest.clone())
    );
    assert_eq!(
        store
            .list_snapshots(&id, &SnapshotQuery::newest(1))
            .await
            .unwrap()
            .items,
        vec![newest]
    );
}

// ---------------------------------------------------------------------------
// Time travel

pub async fn snapshot_at_time_boundaries(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    // Whole second (no fraction in sagaz's text), then microsecond steps.
    let snaps = vec![
        mk(&id, &name, "a", 0, SagaStatus::Executing, 0),
        mk(&id, &name, "b", 1, SagaStatus::Executing, 1),
        mk(&id, &name, "c", 2, SagaStatus::Executing, 2),
        mk(&id, &name, "d", 3, SagaStatus::Executing, 999_999),
        mk(&id, &name, "e", 4, SagaStatus::Completed, 1_000_000),
    ];
    store.save_snapshots(&snaps).await.unwrap();
    let at = |us: i64| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .snapshot_at(&id, t0().plus_micros(us))
                .await
                .unwrap()
                .map(|s| s.step_name)
        }
    };
    assert_eq!(at(-1).await, None, "before the first");
    assert_eq!(at(-86_400_000_000).await, None, "a day before the first");
    assert_eq!(at(0).await.as_deref(), Some("a"), "exactly at the first");
    assert_eq!(at(1).await.as_deref(), Some("b"), "exactly at a later one");
    assert_eq!(at(2).await.as_deref(), Some("c"));
    assert_eq!(at(3).await.as_deref(), Some("c"), "between two");
    assert_eq!(at(999_998).await.as_deref(), Some("c"), "1 µs before d");
    assert_eq!(at(999_999).await.as_deref(), Some("d"));
    assert_eq!(
        at(1_000_000).await.as_deref(),
        Some("e"),
        "exactly at the last"
    );
    assert_eq!(at(1_000_001).await.as_deref(), Some("e"), "after the last");
    assert_eq!(
        at(365 * 86_400_000_000).await.as_deref(),
        Some("e"),
        "long after the last"
    );
    assert_eq!(
        store.snapshot_at(&saga_id(), t0()).await.unwrap(),
        None,
        "unknown saga"
    );
    let full = store.snapshot_at(&id, t0().plus_micros(2)).await.unwrap();
    assert_eq!(
        full.as_ref(),
        Some(&snaps[2]),
        "the whole snapshot comes back"
    );
}

pub async fn snapshot_at_equal_timestamps_breaks_ties_by_id(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    let before = mk(&id, &name, "before", 0, SagaStatus::Executing, 99);
    let ties: Vec<_> = (0..5)
        .map(|i| {
            mk(
                &id,
                &name,
                &format!("tie_{i}"),
                i + 1,
                SagaStatus::Executing,
                100,
            )
        })
        .collect();
    let after = mk(&id, &name, "after", 9, SagaStatus::Completed, 101);
    store.save_snapshot(&after).await.unwrap();
    for s in ties.iter().rev() {
        store.save_snapshot(s).await.unwrap();
    }
    store.save_snapshot(&before).await.unwrap();
    let last_tie = sorted(ties.clone(), Order::Asc).pop().unwrap();
    let got = store.snapshot_at(&id, t0().plus_micros(100)).await.unwrap();
    assert_eq!(
        got.as_ref(),
        Some(&last_tie),
        "ties: the one with the greatest snapshot_id"
    );
    // Consistent with list order: it is the last of the ties oldest-first.
    let asc = all_snapshots(&store, &id).await;
    assert_eq!(asc[5], last_tie);
    assert_eq!(
        store.snapshot_at(&id, t0().plus_micros(99)).await.unwrap(),
        Some(before)
    );
    assert_eq!(
        store.snapshot_at(&id, t0().plus_micros(101)).await.unwrap(),
        Some(after)
    );
    // Asking twice gives the same answer.
    assert_eq!(
        store.snapshot_at(&id, t0().plus_micros(100)).await.unwrap(),
        got
    );
}

pub async fn snapshot_at_first_of_ten_thousand_is_step_zero(store: Arc<dyn SnapshotStore>) {
    const N: i64 = 10_000;
    let id = saga_id();
    let name = saga_name();
    let snaps: Vec<_> = (0..N)
        .map(|i| {
            let mut s = mk(
                &id,
                &name,
                &format!("step_{i}"),
                i,
                SagaStatus::Executing,
                i * 1_000,
            );
            s.context = ctx(json!({"i": i}));
            s
        })
        .collect();
    store.save_snapshots(&snaps).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), N as u64);
    let index_at = |us: i64| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .snapshot_at(&id, t0().plus_micros(us))
                .await
                .unwrap()
                .map(|s| s.step_index)
        }
    };
    assert_eq!(index_at(0).await, Some(0), "at the first snapshot's time");
    assert_eq!(index_at(-1).await, None);
    assert_eq!(index_at(1).await, Some(0));
    assert_eq!(index_at(999).await, Some(0));
    assert_eq!(index_at(1_000).await, Some(1));
    assert_eq!(index_at(5_000_000).await, Some(5_000));
    assert_eq!(index_at(5_000_999).await, Some(5_000));
    assert_eq!(index_at((N - 1) * 1_000).await, Some(N - 1));
    assert_eq!(index_at(N * 1_000_000).await, Some(N - 1));
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!(sum.snapshot_count, N as u64);
    assert_eq!(sum.latest_step_index, N - 1);
    assert_eq!(sum.first_at, t0());
}

// ---------------------------------------------------------------------------
// Listing a saga's snapshots

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

// ---------------------------------------------------------------------------
// Counting and deleting

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

// ---------------------------------------------------------------------------
// Replay log

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
    // The trait lets a backend answer None; when it answers, it must be right.
    if let Some(found) = store.replay_producing(&logs[2].new_saga_id).await.unwrap() {
        assert_eq!(found, logs[2]);
    }
    if let Some(found) = store.replay_producing(&saga_id()).await.unwrap() {
        panic!("replay_producing found {found:?} for a saga no replay produced");
    }
}

// ---------------------------------------------------------------------------
// Listing sagas

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

// ---------------------------------------------------------------------------
// Values

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

// ---------------------------------------------------------------------------
// Locks and health

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

pub async fn concurrent_saves_are_all_kept(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    let name = saga_name();
    let tasks: Vec<_> = (0..8i64)
        .map(|t| {
            let store = store.clone();
            let (id, name) = (id.clone(), name.clone());
            tokio::spawn(async move {
                for i in 0..25i64 {
                    let n = t * 25 + i;
                    let s = mk(
                        &id,
                        &name,
                        &format!("step_{n}"),
                        n,
                        SagaStatus::Executing,
                        n,
                    );
                    if i % 5 == 0 {
                        store.save_snapshots(&[s]).await.unwrap();
                    } else {
                        store.save_snapshot(&s).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 200);
    let listed = all_snapshots(&store, &id).await;
    let indexes: Vec<i64> = listed.iter().map(|s| s.step_index).collect();
    assert_eq!(indexes, (0..200).collect::<Vec<_>>());
    let sum = store.saga_summary(&id).await.unwrap().unwrap();
    assert_eq!(sum.snapshot_count, 200);
    assert_eq!(
        (sum.latest_step_index, sum.first_at, sum.last_at),
        (199, t0(), t0().plus_micros(199))
    );
}

pub async fn health_names_backend_and_counts(store: Arc<dyn SnapshotStore>) {
    let id = saga_id();
    store
        .save_snapshots(&[snap(&id, 0, 0), snap(&id, 1, 10)])
        .await
        .unwrap();
    store.save_replay(&replay(&id, 20)).await.unwrap();
    let h = store.health().await.unwrap();
    assert!(h.reachable);
    assert_eq!(h.backend, store.capabilities().backend);
    // Shared stores hold other tests' data too: at least ours.
    if let Some(n) = h.sagas {
        assert!(n >= 1, "sagas {n}");
    }
    if let Some(n) = h.snapshots {
        assert!(n >= 2, "snapshots {n}");
    }
    if let Some(n) = h.replays {
        assert!(n >= 1, "replays {n}");
    }
    assert!(!h.url.is_empty(), "health names where the store is");
}

// ---------------------------------------------------------------------------
// Corrupt entries

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

/// `latest_snapshots_for_step` (batch dry runs use it) answers what
/// `latest_snapshot(saga, Some(step))` answers for each saga, and leaves out
/// sagas with no snapshot for the step.
pub async fn batched_latest_for_step_equals_one_by_one(store: Arc<dyn SnapshotStore>) {
    let ids: Vec<String> = (0..5).map(|_| saga_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        // Saga n has n+1 snapshots: saga 0 never reached step 1.
        let snaps: Vec<_> = (0..=n as i64).map(|i| snap(id, i, i * 1_000)).collect();
        store.save_snapshots(&snaps).await.unwrap();
    }
    let step = snap(&ids[0], 1, 0).step_name;
    let mut asked = ids.clone();
    asked.push(saga_id()); // unknown saga
    let got = store
        .latest_snapshots_for_step(&asked, &step)
        .await
        .unwrap();
    assert!(got.bad.is_empty());
    let mut want = Vec::new();
    for id in &ids {
        if let Some(s) = store.latest_snapshot(id, Some(&step)).await.unwrap() {
            want.push(s);
        }
    }
    let key = |s: &sagascope::model::Snapshot| s.saga_id.clone();
    let mut got = got.items;
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(want.len(), 4, "sagas 1..4 reached the step");
    assert_eq!(got, want);
    assert!(store
        .latest_snapshots_for_step(&[], &step)
        .await
        .unwrap()
        .items
        .is_empty());
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

// ---------------------------------------------------------------------------
// Scale and paging across damage

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
    for kind in [
        Corruption::StepIndexNotInteger,
        Corruption::CreatedAtNotATime,
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
    }
}

/// A value that is not a snapshot of this saga where one should be: named
/// as bad, listing goes on around it.
pub async fn misplaced_entries_are_named_not_skipped(f: CorruptFixture) {
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
    }
}
