//! Reading and changing a saga's history: time travel, context diffs,
//! resolving what a person means by "that snapshot", and replays: dry-run
//! plans, real replays from a checkpoint, batches and the replay lock.

pub mod batch;
pub mod diff;
pub mod lock;
pub mod merge;
pub mod plan;
pub mod run;
pub mod time_travel;

pub use lock::{lock_name, lock_owner, LockError, ReplayLock, DEFAULT_LOCK_TTL};
pub use merge::{apply_override, build_override, merge_patch, MergeMode, OverrideError};
pub use plan::{build_plan, PlanError, PlanErrorKind, ReplayPlan};
pub use run::{replay, replay_saga, ReplayError, ReplayOptions, ReplayReport, ReplaySpec};

pub use diff::{structural_diff, unified_diff, ChangeKind, PathChange};
pub use time_travel::{
    changes, resolve_snapshot, resolve_snapshot_noting, state_at, state_at_step, value_at,
    SnapshotRef, TimeTravelError,
};

use crate::model::SagaSummary;
use crate::store::{SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// Why a saga could not be found from what a person typed.
#[derive(Debug, thiserror::Error)]
pub enum FindSagaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no saga with id or id prefix {0:?} (try `sagascope sagas list`)")]
    NotFound(String),
    #[error("{input:?} matches more than one saga ({first}, {second}, …); type more of the id")]
    Ambiguous {
        input: String,
        first: String,
        second: String,
    },
}

/// Finds a saga by its full id or a unique prefix of it (as the short ids
/// the list shows).
pub async fn find_saga(
    store: &dyn SnapshotStore,
    id_or_prefix: &str,
) -> Result<SagaSummary, FindSagaError> {
    let input = id_or_prefix.trim();
    if input.is_empty() {
        return Err(FindSagaError::NotFound(String::new()));
    }
    match store.saga_summary(input).await {
        Ok(Some(s)) => return Ok(s),
        Ok(None) => {}
        // The summary is built from a bad entry: rebuild it from the
        // snapshots that can be read, so the saga stays reachable.
        Err(StoreError::Corrupt { .. }) => {
            if let Some(s) = summary_from_snapshots(store, input).await? {
                return Ok(s);
            }
        }
        Err(e) => return Err(e.into()),
    }
    let filter = SagaFilter {
        id_prefix: Some(input.to_string()),
        ..SagaFilter::default()
    };
    let page = store
        .list_sagas(
            &filter,
            &SagaPageRequest {
                limit: 2,
                after: None,
            },
        )
        .await?;
    let mut it = page.sagas.into_iter();
    match (it.next(), it.next()) {
        (Some(one), None) => Ok(one),
        (Some(a), Some(b)) => Err(FindSagaError::Ambiguous {
            input: input.to_string(),
            first: a.saga_id,
            second: b.saga_id,
        }),
        (None, _) => Err(FindSagaError::NotFound(input.to_string())),
    }
}

/// A saga's summary computed from its readable snapshots (slower than the
/// store's index; used when the index entry itself cannot be read).
pub async fn summary_from_snapshots(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<Option<SagaSummary>, StoreError> {
    use crate::store::{Order, SnapshotQuery};
    // A few from each end, so a bad entry at the very end does not hide
    // the readable ones next to it.
    let ends = |order| SnapshotQuery {
        order,
        limit: Some(16),
        ..SnapshotQuery::default()
    };
    let first = store
        .list_snapshots(saga_id, &ends(Order::Asc))
        .await?
        .items
        .into_iter()
        .next();
    let last = store
        .list_snapshots(saga_id, &ends(Order::Desc))
        .await?
        .items
        .into_iter()
        .next();
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(None);
    };
    Ok(Some(SagaSummary {
        saga_id: last.saga_id.clone(),
        saga_name: last.saga_name.clone(),
        latest_status: last.status.clone(),
        latest_step: last.step_name.clone(),
        latest_step_index: last.step_index,
        snapshot_count: store.count_snapshots(saga_id).await?,
        first_at: first.created_at,
        last_at: last.created_at,
    }))
}
