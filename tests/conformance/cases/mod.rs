//! The cases, one file per operation (`save_get`, `time_travel`,
//! `list_snapshots`, `list_sagas`, `paging`, `delete`, `replay_log`,
//! `values`, `locks`, `whole_store`, `corrupt`); this file holds the macros
//! that turn them into tests and the helpers they share.
//!
//! Every case but those in `whole_store` copes with a store shared with
//! other tests and other processes (server backends): it uses fresh saga
//! ids and a unique saga name or id prefix, never assumes the store is
//! empty, and asserts what a user of the store would notice. The
//! `whole_store` cases list, count and expire across the whole store, so
//! they need the empty store of its own that `store()` gives each test, and
//! say so when they do not get one.
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
            histories_of_many_sagas_equal_one_by_one,
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
            locks_with_sub_second_ttl_lapse,
            whole_store_list_sagas_unfiltered_and_by_one_filter,
            whole_store_delete_expired_and_health_count_exactly,
            meta_put_get_replace_and_delete,
            meta_insert_has_one_winner_among_eight,
            meta_lists_in_key_order_and_pages_with_after_and_limit,
            meta_kinds_are_kept_apart,
            whole_store_meta_records_change_no_listing_or_count,
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
            corrupt_entry_mid_small_page_does_not_end_paging,
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

mod corrupt;
mod delete;
mod list_sagas;
mod list_snapshots;
mod locks;
mod meta;
mod paging;
mod replay_log;
mod save_get;
mod time_travel;
mod values;
mod whole_store;

pub use corrupt::*;
pub use delete::*;
pub use list_sagas::*;
pub use list_snapshots::*;
pub use locks::*;
pub use meta::*;
pub use paging::*;
pub use replay_log::*;
pub use save_get::*;
pub use time_travel::*;
pub use values::*;
pub use whole_store::*;
