//! Reading and changing a saga's history: time travel, context diffs,
//! resolving what a person means by "that snapshot", and replays: dry-run
//! plans, real replays from a checkpoint, batches and the replay lock.

pub mod artifact;
pub mod batch;
pub mod diff;
pub mod effects;
pub mod failures;
pub mod lock;
pub mod merge;
pub mod plan;
pub mod recover;
pub mod run;
pub mod time_travel;
pub mod where_changed;

pub use effects::{effects_at, load_history, Effect, Effects, History};
pub use lock::{lock_name, lock_owner, LockError, ReplayLock, DEFAULT_LOCK_TTL};
pub use merge::{apply_override, build_override, merge_patch, MergeMode, OverrideError};
pub use plan::{
    build_plan, Allow, Compensated, PlanError, PlanErrorKind, PlannedStep, ReplayPlan, StepAction,
};
pub use recover::{
    recover, AbandonedReplay, RecoverAction, RecoverOptions, RecoverReport, Recovered, StillRunning,
};
pub use run::{
    apply_plan, plan_replay, replay, replay_saga, run_plan, ReplayError, ReplayOptions,
    ReplayReport, ReplaySpec,
};

pub use diff::{snapshot_field_changes, structural_diff, unified_diff, ChangeKind, PathChange};
pub use time_travel::{
    changes, resolve_snapshot, resolve_snapshot_noting, state_at, state_at_step, value_at,
    SnapshotRef, TimeTravelError,
};
pub use where_changed::{
    changes_at_path, jump_to_change, parse_path, path_label, value_at_path, ChangeJump,
    PathChanges, Seg, ValueChange, WhereChangedError,
};

use crate::model::SagaSummary;
use crate::store::{SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// Why a saga could not be found from what a person typed.
#[derive(Debug, thiserror::Error)]
pub enum FindSagaError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No saga has this id or id prefix (also for empty input); holds the input
    /// as typed, trimmed.
    #[error("no saga with id or id prefix {0:?} (try `sagascope sagas list`)")]
    NotFound(String),
    /// The prefix matches two or more sagas.
    #[error("{input:?} matches more than one saga ({first}, {second}, …); type more of the id")]
    Ambiguous {
        /// The prefix as typed, trimmed.
        input: String,
        /// The id of one saga it matches.
        first: String,
        /// The id of another saga it matches.
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
    // A saga whose index entry can't be read is named in `bad`, not
    // listed: it is still the saga the person means, rebuilt from its
    // readable snapshots.
    let mut found = page.sagas;
    for b in &page.bad {
        if found.len() >= 2 {
            break;
        }
        let Some(id) = b.saga_id.as_deref() else {
            continue;
        };
        if id.starts_with(input) && !found.iter().any(|s| s.saga_id == id) {
            if let Some(s) = summary_from_snapshots(store, id).await? {
                found.push(s);
            }
        }
    }
    let mut it = found.into_iter();
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

pub use crate::store::summary_from_snapshots;
