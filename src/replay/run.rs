//! Replays: a dry run (the plan, logged as sagaz logs a dry run) or a real
//! run of the remaining steps under a new saga id, by the engine or by the
//! saga's delegate command, under the replay lock, with a replay-log entry
//! written before anything runs and completed at the end.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::effects::{load_history, History};
use super::lock::{LockError, ReplayLock};
use super::merge::MergeMode;
use super::plan::{build_plan, Allow, Compensated, PlanInput, ReplayPlan};
use super::recover::{abandoned_under_lock, AbandonedReplay};
use super::{find_saga, FindSagaError};
use crate::engine::{Definitions, Engine, Event, RunOutcome, RunRequest, SagaDefinition};
use crate::model::{ReplayLog, ReplayStatus, SagaStatus, Timestamp};
use crate::store::{SnapshotStore, StoreError};

/// What to replay.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplaySpec {
    /// The step to replay from: the checkpoint is the newest snapshot taken
    /// before it ran (see [`super::effects::checkpoint_for_step`]). Ignored
    /// when [`from_snapshot`](Self::from_snapshot) is set.
    pub from_step: String,
    /// The checkpoint exactly: a timeline position (`3`, `#3`, `-1`) or a
    /// snapshot id or unique id prefix.
    #[serde(default)]
    pub from_snapshot: Option<String>,
    /// Top-level keys to merge into the checkpoint's context (empty for none);
    /// recorded as the log's `context_override`.
    pub context_override: Map<String, Value>,
    /// How the override is merged.
    pub merge: MergeMode,
    /// Fail the last step to run on purpose, to test the compensation path.
    pub force_failure: bool,
    /// Re-run steps the original run compensated (default), or leave them
    /// undone.
    #[serde(default)]
    pub compensated: Compensated,
    /// The guards overridden.
    #[serde(default)]
    pub allow: Allow,
}

/// Who, why, and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Recorded as `initiated_by`.
    pub initiated_by: String,
    /// Why the replay is done (e.g. an incident number); recorded as `reason`.
    pub reason: Option<String>,
    /// Only plan and log the replay; nothing is executed and no lock is taken.
    pub dry_run: bool,
    /// Lifetime of the replay lock without renewal; the lock is renewed every
    /// third of it while the replay runs (see [`DEFAULT_LOCK_TTL`](super::DEFAULT_LOCK_TTL)).
    pub lock_ttl: Duration,
    /// Lock owner (see [`super::lock::lock_owner`]).
    pub lock_owner: String,
}

impl ReplayOptions {
    /// A real replay by `identity` (who the log names, and whose lock it
    /// takes), without a reason; set the other fields as needed.
    pub fn new(identity: &str, lock_ttl: Duration) -> Self {
        ReplayOptions {
            initiated_by: identity.to_string(),
            reason: None,
            dry_run: false,
            lock_ttl,
            lock_owner: super::lock::lock_owner(identity),
        }
    }
}

/// What a replay did.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The plan the replay followed (the whole answer of a dry run).
    pub plan: ReplayPlan,
    /// The replay-log entry as saved at the end.
    pub log: ReplayLog,
    /// The run, for real replays.
    pub outcome: Option<RunOutcome>,
}

impl ReplayReport {
    /// Whether the replay's log status is `success` (always so for a dry run
    /// that returned).
    pub fn succeeded(&self) -> bool {
        self.log.replay_status == ReplayStatus::Success
    }
}

/// Why a replay did not happen (nothing was executed).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The saga could not be found from the id or prefix given.
    #[error(transparent)]
    Find(#[from] FindSagaError),
    /// The store failed before the replay started.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The plan has errors (unknown step, no snapshot, no definition).
    #[error("{}", .0.first_error().map(|e| e.message.as_str()).unwrap_or("the replay plan has errors"))]
    Plan(Box<ReplayPlan>),
    /// Another replay of the saga holds its lock.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// An earlier replay of the saga was killed part way: starting over
    /// would run its completed steps again.
    #[error("{}; replaying again would run its completed steps a second time: continue it with `sagascope replay recover {} --resume`, or close it with `sagascope replay recover {} --abandon --reason TEXT` and then replay", .0.describe(), .0.log.original_saga_id, .0.log.original_saga_id)]
    Abandoned(Box<AbandonedReplay>),
    /// An abandoned replay cannot be continued by sagascope.
    #[error("{0}")]
    CannotResume(String),
    /// A plan from a file no longer matches the saga: it gained a snapshot
    /// or a replay, or the plan built now differs.
    #[error("{0}")]
    StalePlan(String),
}

/// Replays a saga named by id or unique id prefix.
pub async fn replay(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    saga: &str,
    spec: &ReplaySpec,
    opts: &ReplayOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<ReplayReport, ReplayError> {
    let summary = find_saga(store.as_ref(), saga).await?;
    replay_saga(
        store,
        defs,
        &summary.saga_id,
        Some(&summary.saga_name),
        spec,
        opts,
        events,
    )
    .await
}

pub(crate) fn new_log(
    plan: &ReplayPlan,
    spec: &ReplaySpec,
    opts: &ReplayOptions,
    status: ReplayStatus,
) -> ReplayLog {
    let mut extra = Map::new();
    extra.insert("dry_run".into(), Value::Bool(opts.dry_run));
    extra.insert("merge".into(), Value::from(spec.merge.as_str()));
    if let Some(r) = &opts.reason {
        extra.insert("reason".into(), Value::from(r.clone()));
    }
    if spec.force_failure {
        extra.insert("force_failure".into(), Value::Bool(true));
    }
    extra.insert("compensated".into(), Value::from(spec.compensated.as_str()));
    let overridden: Vec<Value> = [
        (spec.allow.completed, "allow_completed"),
        (spec.allow.again, "again"),
        (spec.allow.in_progress, "force"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| Value::from(*name))
    .collect();
    if !overridden.is_empty() {
        extra.insert("guards_overridden".into(), Value::Array(overridden));
    }
    let left_undone = plan.skipped_compensated();
    if !left_undone.is_empty() {
        extra.insert("steps_left_undone".into(), Value::from(left_undone));
    }
    if !plan.steps.is_empty() {
        extra.insert(
            "steps_rerun".into(),
            Value::from(
                plan.steps
                    .iter()
                    .filter(|s| s.action == super::plan::StepAction::Rerun)
                    .map(|s| s.step.clone())
                    .collect::<Vec<_>>(),
            ),
        );
    }
    if let Some(n) = &plan.saga_name {
        extra.insert("saga_name".into(), Value::from(n.clone()));
    }
    if let Some(cp) = &plan.checkpoint {
        extra.insert(
            "checkpoint_snapshot_id".into(),
            Value::from(cp.snapshot_id.clone()),
        );
        extra.insert("checkpoint_position".into(), Value::from(cp.position));
    }
    ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: plan.original_saga_id.clone(),
        // A fresh id even for dry runs, as sagaz does.
        new_saga_id: uuid::Uuid::new_v4().to_string(),
        checkpoint_step: plan.from_step.clone(),
        replay_status: status,
        initiated_by: opts.initiated_by.clone(),
        context_override: if spec.context_override.is_empty() {
            None
        } else {
            Some(Value::Object(spec.context_override.clone()))
        },
        error_message: None,
        created_at: Timestamp::now(),
        completed_at: None,
        extra,
    }
}

/// Writes a finished run into its replay-log entry: status, error (with
/// the failing step), outcome and failing step in the extra fields.
pub(crate) fn record_outcome(log: &mut ReplayLog, outcome: &RunOutcome) {
    log.replay_status = if outcome.succeeded() {
        ReplayStatus::Success
    } else {
        ReplayStatus::Failed
    };
    log.error_message = outcome.error.as_ref().map(|e| match &outcome.failed_step {
        Some(s) => format!("{s}: {e}"),
        None => e.clone(),
    });
    log.extra
        .insert("outcome".into(), Value::from(outcome.status.as_str()));
    if let Some(s) = &outcome.failed_step {
        log.extra
            .insert("failed_step".into(), Value::from(s.clone()));
    }
}

/// The plan for replaying a saga by its exact id, from its history as the
/// store has it now: what a dry run shows, what a real run does, what a
/// batch dry run predicts. Reads the timeline and the replay log (plus the
/// timelines of failed replays).
pub async fn plan_replay(
    store: &dyn SnapshotStore,
    defs: &Definitions,
    saga_id: &str,
    saga_name: Option<&str>,
    spec: &ReplaySpec,
    lock_ttl: Duration,
) -> Result<(ReplayPlan, History), StoreError> {
    let history = load_history(store, saga_id).await?;
    let plan = build_plan(
        PlanInput {
            saga_id,
            saga_name,
            spec,
            now: Timestamp::now(),
            lock_ttl,
        },
        &history,
        &|n| defs.get(n),
    );
    Ok((plan, history))
}

/// Replays a saga by its exact id. A dry run reads the saga's history and
/// replay log and writes one log entry.
pub async fn replay_saga(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    saga_id: &str,
    saga_name: Option<&str>,
    spec: &ReplaySpec,
    opts: &ReplayOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<ReplayReport, ReplayError> {
    // The values themselves: the new saga starts from them (a masked read
    // would hand it `•••`, which the protection layer refuses to write).
    let store = &crate::store::unmasked(store);
    let (plan, _) = plan_replay(
        store.as_ref(),
        defs,
        saga_id,
        saga_name,
        spec,
        opts.lock_ttl,
    )
    .await?;
    run_plan(store, defs, plan, spec, opts, events).await
}

/// Runs (or, for a dry run, logs) a plan already built: what
/// [`replay_saga`] does after planning, and what applying a plan file does
/// once it has checked the saga did not change.
pub async fn run_plan(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    plan: ReplayPlan,
    spec: &ReplaySpec,
    opts: &ReplayOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<ReplayReport, ReplayError> {
    run_checked_plan(store, defs, plan, spec, opts, None, events).await
}

/// Applies a plan read from a file ([`super::artifact`]): refuses with
/// [`ReplayError::StalePlan`] when the saga gained a snapshot or a real
/// replay since the plan was written, or when the plan built now would do
/// something else (a changed definition); checked before and again under
/// the replay lock.
pub async fn apply_plan(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    file: &super::artifact::PlanFile,
    opts: &ReplayOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<ReplayReport, ReplayError> {
    let store = &crate::store::unmasked(store);
    let saga_id = &file.plan.original_saga_id;
    let (plan, history) = plan_replay(
        store.as_ref(),
        defs,
        saga_id,
        file.plan.saga_name.as_deref(),
        &file.spec,
        opts.lock_ttl,
    )
    .await?;
    stale_check(file, &plan, &history)?;
    run_checked_plan(store, defs, plan, &file.spec, opts, Some(file), events).await
}

fn stale_check(
    file: &super::artifact::PlanFile,
    plan: &ReplayPlan,
    history: &History,
) -> Result<(), ReplayError> {
    let now = super::artifact::Fingerprint::of(history, &file.fingerprint.checkpoint_snapshot_id);
    let why = file
        .fingerprint
        .changes_to(&now)
        .or_else(|| super::artifact::plan_differs(&file.plan, plan));
    match why {
        Some(why) => Err(ReplayError::StalePlan(format!(
            "saga {} changed since the plan was written ({}): {why}; make a new plan with --dry-run --plan-out",
            plan.original_saga_id, file.created_at
        ))),
        None => Ok(()),
    }
}

async fn run_checked_plan(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    plan: ReplayPlan,
    spec: &ReplaySpec,
    opts: &ReplayOptions,
    file: Option<&super::artifact::PlanFile>,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<ReplayReport, ReplayError> {
    // A real run reads its checkpoint and writes the new saga unmasked;
    // the plan it was given may have been built from masked reads (what a
    // user was shown), so the run starts from the plan rebuilt under the
    // lock below.
    let store = &crate::store::unmasked(store);
    let saga_id = plan.original_saga_id.clone();
    let saga_id = saga_id.as_str();
    // A plan with errors (unknown step, no checkpoint, no definition) is
    // bad input, not a replay: nothing is written, dry run or not, so a
    // typo leaves the replay log as it was.
    if !plan.is_ok() {
        return Err(ReplayError::Plan(Box::new(plan)));
    }
    if opts.dry_run {
        // Logged as sagaz logs a dry run: finished the moment it started.
        let mut log = new_log(&plan, spec, opts, ReplayStatus::Success);
        log.completed_at = Some(log.created_at);
        store.save_replay(&log).await?;
        return Ok(ReplayReport {
            plan,
            log,
            outcome: None,
        });
    }
    let def = match plan.saga_name.as_deref().and_then(|n| defs.get(n)) {
        Some(d) => d,
        None => return Err(ReplayError::Plan(Box::new(plan))),
    };
    let lock = ReplayLock::acquire(store.clone(), saga_id, &opts.lock_owner, opts.lock_ttl).await?;
    // With the lock held no other replay of this saga is alive, so a
    // `running` entry in its log is one whose process died. Starting over
    // would run again what it completed (a second charge): refuse, naming
    // it, until it is resumed or closed (`replay recover`).
    match abandoned_under_lock(store.as_ref(), saga_id).await {
        Ok(mut found) if !found.is_empty() => {
            let _ = lock.release().await;
            return Err(ReplayError::Abandoned(Box::new(found.remove(0))));
        }
        Ok(_) => {}
        Err(e) => {
            let _ = lock.release().await;
            return Err(e.into());
        }
    }
    // The plan again, under the lock: a replay that finished between the
    // plan and the lock (a second operator's) is seen now, so the guards
    // hold however the two raced; and a plan from a file must still be
    // what the saga's history gives.
    let recheck = async {
        let (now, history) = plan_replay(
            store.as_ref(),
            defs,
            saga_id,
            plan.saga_name.as_deref(),
            spec,
            opts.lock_ttl,
        )
        .await?;
        if let Some(f) = file {
            stale_check(f, &now, &history)?;
        }
        if !now.is_ok() {
            return Err(ReplayError::Plan(Box::new(now)));
        }
        if let Some(why) = super::artifact::plan_differs(&plan, &now) {
            return Err(ReplayError::StalePlan(format!(
                "saga {saga_id} changed while the replay was being planned: {why}; plan it again"
            )));
        }
        Ok(now)
    };
    let plan = match recheck.await {
        Ok(now) => now,
        Err(e) => {
            let _ = lock.release().await;
            return Err(e);
        }
    };
    let mut log = new_log(&plan, spec, opts, ReplayStatus::Running);
    log.extra
        .insert("lock_owner".into(), Value::from(opts.lock_owner.clone()));
    // Written before anything runs: a killed replay stays visibly unfinished.
    if let Err(e) = store.save_replay(&log).await {
        let _ = lock.release().await;
        return Err(e.into());
    }
    let outcome = if def.delegate.is_some() {
        run_delegate(&def, &plan, &log, spec, opts, events).await
    } else {
        let mut snapshot_extra = Map::new();
        snapshot_extra.insert("replay_of".into(), Value::from(saga_id.to_string()));
        snapshot_extra.insert("replay_id".into(), Value::from(log.replay_id.clone()));
        Engine::new(store.clone())
            .run(
                &def,
                RunRequest {
                    saga_id: log.new_saga_id.clone(),
                    context: plan.merged_context.clone(),
                    completed_steps: plan.in_force_skipped(),
                    skipped_steps: plan.skipped_compensated(),
                    force_failure: spec.force_failure,
                    snapshot_extra,
                },
                events,
            )
            .await
    };
    log.completed_at = Some(Timestamp::now());
    record_outcome(&mut log, &outcome);
    if lock.was_lost() {
        log.extra.insert(
            "warning".into(),
            Value::from(
                "the replay lock expired while this replay ran; raise engine.lock_ttl_secs",
            ),
        );
    }
    let saved = store.save_replay(&log).await;
    let released = lock.release().await;
    saved?;
    if let Err(e) = released {
        tracing::warn!("releasing replay lock for {saga_id}: {e}");
    }
    Ok(ReplayReport {
        plan,
        log,
        outcome: Some(outcome),
    })
}

/// Hands the replay to the saga's own runtime: the request as JSON on
/// stdin, progress lines on stdout, exit status = outcome.
async fn run_delegate(
    def: &SagaDefinition,
    plan: &ReplayPlan,
    log: &ReplayLog,
    spec: &ReplaySpec,
    opts: &ReplayOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> RunOutcome {
    let request = json!({
        "original_saga_id": plan.original_saga_id,
        "saga_name": def.name,
        "checkpoint_step": plan.from_step,
        "checkpoint_snapshot_id": plan.checkpoint.as_ref().map(|c| c.snapshot_id.clone()),
        "completed_steps": plan.checkpoint.as_ref().map(|c| c.completed_steps.clone()).unwrap_or_default(),
        // What is in force at the checkpoint (skip), what the original run
        // undid (re-run unless --compensated skip): a delegate must not
        // trust `completed_steps` alone.
        "in_force_steps": plan.effects.completed.iter()
            .filter(|f| f.effect != super::effects::Effect::Compensated)
            .map(|f| f.step.clone()).collect::<Vec<_>>(),
        "compensated_steps": plan.effects.completed.iter()
            .filter(|f| f.effect == super::effects::Effect::Compensated)
            .map(|f| f.step.clone()).collect::<Vec<_>>(),
        "compensated_policy": spec.compensated.as_str(),
        "context": plan.merged_context,
        "context_override": spec.context_override,
        "new_saga_id": log.new_saga_id,
        "replay_id": log.replay_id,
        "force_failure": spec.force_failure,
        "initiated_by": opts.initiated_by,
        "reason": opts.reason,
    });
    let mut outcome = RunOutcome {
        saga_id: log.new_saga_id.clone(),
        saga_name: def.name.clone(),
        status: SagaStatus::Completed,
        context: plan.merged_context.clone(),
        completed_steps: Vec::new(),
        failed_step: None,
        error: None,
        compensated_steps: Vec::new(),
        compensation_errors: Vec::new(),
        snapshots_written: 0,
        snapshot_errors: Vec::new(),
    };
    let Some(d) = &def.delegate else {
        return outcome;
    };
    let env = [
        ("SAGASCOPE_SAGA_ID", log.new_saga_id.as_str()),
        ("SAGASCOPE_SAGA_NAME", def.name.as_str()),
        ("SAGASCOPE_REPLAY_ID", log.replay_id.as_str()),
    ];
    let on_line = |l: &str| {
        events(&Event::Progress {
            line: l.to_string(),
        })
    };
    match d
        .command
        .run_json(&request, &env, d.timeout, true, &on_line)
        .await
    {
        Ok(out) => {
            if let Some(Value::Object(c)) = out.get("context") {
                outcome.context = c.clone();
            }
        }
        Err(e) => {
            outcome.status = SagaStatus::Failed;
            outcome.error = Some(e.message);
        }
    }
    outcome
}
