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
pub use time_travel::{resolve_snapshot, state_at, state_at_step, changes, value_at, SnapshotRef, TimeTravelError};

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
pub async fn find_saga(store: &dyn SnapshotStore, id_or_prefix: &str) -> Result<SagaSummary, FindSagaError> {
    let input = id_or_prefix.trim();
    if input.is_empty() {
        return Err(FindSagaError::NotFound(String::new()));
    }
    if let Some(s) = store.saga_summary(input).await? {
        return Ok(s);
    }
    let filter = SagaFilter {
        id_prefix: Some(input.to_string()),
        ..SagaFilter::default()
    };
    let page = store.list_sagas(&filter, &SagaPageRequest { limit: 2, after: None }).await?;
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
