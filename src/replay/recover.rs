//! Replays whose process died (`kill -9`, a lost machine) before it could
//! finish: their replay-log entry stays `running` and their new saga stops
//! where the process did. Such a replay is *abandoned* once the original
//! saga's replay lock has expired — a live replay renews its lock, so a
//! `running` entry under a lock nobody holds has no process behind it.
//!
//! A new replay of that saga refuses while one is abandoned (starting over
//! would run again the steps it completed — a second charge), naming it and
//! what it did. [`recover`] lists abandoned replays and closes them: resume
//! (continue the same new saga from its newest snapshot, so completed steps
//! are not run again) or abandon (a final log status and a closing snapshot
//! sagaz can read), each recorded in the replay log with who did it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};

use super::lock::{LockError, ReplayLock};
use super::merge::MergeMode;
use super::plan::{Allow, Compensated};
use super::run::{plan_replay, ReplayError, ReplaySpec};
use crate::engine::{Definitions, Engine, Event, RunOutcome, RunRequest};
use crate::model::{ReplayLog, ReplayStatus, SagaStatus, Snapshot, Timestamp};
use crate::store::{SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// A replay whose process is gone, and how far its new saga got.
#[derive(Debug, Clone, Serialize)]
pub struct AbandonedReplay {
    /// Its replay-log entry, still `running`.
    pub log: ReplayLog,
    /// The newest snapshot of the new saga (none: it stopped before its
    /// first snapshot).
    #[serde(skip)]
    pub progress: Option<Snapshot>,
    /// Steps the new saga completed (they are not run again on resume).
    pub completed_steps: Vec<String>,
    /// A step that had started when the process died (its before-step
    /// snapshot is the newest): it may or may not have had its effect.
    pub step_in_doubt: Option<String>,
}

impl AbandonedReplay {
    fn new(log: ReplayLog, progress: Option<Snapshot>) -> Self {
        let completed_steps = progress
            .as_ref()
            .map(|p| p.completed_steps.clone())
            .unwrap_or_default();
        let step_in_doubt = progress
            .as_ref()
            .filter(|p| !p.status.is_terminal() && !p.completed_steps.contains(&p.step_name))
            .map(|p| p.step_name.clone());
        AbandonedReplay {
            log,
            progress,
            completed_steps,
            step_in_doubt,
        }
    }

    /// One line: which replay, whose, and what it did.
    pub fn describe(&self) -> String {
        let l = &self.log;
        let mut s = format!(
            "abandoned replay {} of saga {} (started by {} at {}, its process stopped): its new saga {} completed {}",
            l.replay_id,
            l.original_saga_id,
            l.initiated_by,
            l.created_at.to_isoformat(),
            l.new_saga_id,
            if self.completed_steps.is_empty() {
                "no step".to_string()
            } else {
                self.completed_steps.join(", ")
            }
        );
        if let Some(d) = &self.step_in_doubt {
            s.push_str(&format!(" and had started {d}"));
        }
        s
    }
}

/// The unfinished real replays in a saga's log (`running`, not dry runs).
pub async fn unfinished_replays(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<Vec<ReplayLog>, StoreError> {
    let l = store.list_replays(saga_id, None).await?;
    Ok(l.items
        .into_iter()
        .filter(|r| r.replay_status == ReplayStatus::Running && !r.is_dry_run())
        .collect())
}

/// The abandoned replays of a saga. Only meaningful while the caller holds
/// the saga's replay lock: then no live replay of it exists, so every
/// `running` entry is abandoned.
pub async fn abandoned_under_lock(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<Vec<AbandonedReplay>, StoreError> {
    let mut out = Vec::new();
    for log in unfinished_replays(store, saga_id).await? {
        let progress = store.latest_snapshot(&log.new_saga_id, None).await?;
        out.push(AbandonedReplay::new(log, progress));
    }
    Ok(out)
}

/// What to do with abandoned replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoverAction {
    /// Only list them.
    List,
    /// Continue each from its new saga's newest snapshot.
    Resume,
    /// Close each: log status `cancelled`, new saga `failed`.
    Abandon {
        /// Why, recorded in the log entry (`error_message` and
        /// `recovery_reason`) and in the closing snapshot's `error`.
        reason: String,
    },
}

/// Who recovers, and how.
#[derive(Debug, Clone)]
pub struct RecoverOptions {
    /// List, resume or abandon.
    pub action: RecoverAction,
    /// Recorded as `recovered_by`.
    pub by: String,
    /// Owner of the replay locks taken while recovering (see
    /// [`lock_owner`](super::lock_owner)).
    pub lock_owner: String,
    /// Lifetime of those locks without renewal.
    pub lock_ttl: Duration,
}

/// A replay that still runs: its lock is held, so it is left alone.
#[derive(Debug, Clone, Serialize)]
pub struct StillRunning {
    /// The saga being replayed.
    pub original_saga_id: String,
    /// Its replay-log entries still `running`.
    pub replay_ids: Vec<String>,
    /// Who holds the saga's replay lock.
    pub lock_owner: String,
    /// When that lock expires unless renewed.
    pub lock_until: Timestamp,
}

/// One abandoned replay and what recovery did with it.
#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    /// The abandoned replay as found.
    pub replay: AbandonedReplay,
    /// The log entry as closed (none when only listed or when closing
    /// failed).
    pub closed: Option<ReplayLog>,
    /// The resumed run, when steps ran.
    pub outcome: Option<RunOutcome>,
    /// Why it could not be closed.
    pub error: Option<String>,
}

/// What [`recover`] found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoverReport {
    /// Each abandoned replay found, with what was done to it.
    pub abandoned: Vec<Recovered>,
    /// Sagas whose unfinished replays are alive (their lock is held): left alone.
    pub still_running: Vec<StillRunning>,
}

/// Every saga id in the store (recovery without named sagas scans all: a
/// rare, explicit operation, so one replay-log listing per saga is fine).
async fn all_saga_ids(store: &dyn SnapshotStore) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    let mut req = SagaPageRequest {
        limit: 1000,
        after: None,
    };
    loop {
        let page = store.list_sagas(&SagaFilter::default(), &req).await?;
        ids.extend(page.sagas.into_iter().map(|s| s.saga_id));
        match page.next {
            Some(n) => req.after = Some(n),
            None => return Ok(ids),
        }
    }
}

/// Lists the abandoned replays of the named sagas (all sagas when `None`)
/// and, as `opts.action` says, resumes or abandons them. Each saga is
/// handled under its replay lock; a saga whose lock is held is reported in
/// `still_running` and never touched.
pub async fn recover(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    sagas: Option<Vec<String>>,
    opts: &RecoverOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<RecoverReport, ReplayError> {
    // Resuming writes the replay's saga on from its last snapshot and
    // rewrites its log entry: both from the values, not their masks.
    let store = &crate::store::unmasked(store);
    let ids = match sagas {
        Some(ids) => ids,
        None => all_saga_ids(store.as_ref()).await?,
    };
    // Only sagas with a `running` entry need the lock.
    let found: Vec<Result<(String, bool), StoreError>> = futures::stream::iter(ids)
        .map(|id| async move {
            let n = unfinished_replays(store.as_ref(), &id).await?.len();
            Ok::<_, StoreError>((id, n > 0))
        })
        .buffered(16)
        .collect()
        .await;
    let mut report = RecoverReport::default();
    for f in found {
        let (saga_id, unfinished) = f?;
        if !unfinished {
            continue;
        }
        let lock =
            match ReplayLock::acquire(store.clone(), &saga_id, &opts.lock_owner, opts.lock_ttl)
                .await
            {
                Ok(l) => l,
                Err(LockError::Held { owner, until, .. }) => {
                    let running = unfinished_replays(store.as_ref(), &saga_id).await?;
                    report.still_running.push(StillRunning {
                        original_saga_id: saga_id,
                        replay_ids: running.into_iter().map(|r| r.replay_id).collect(),
                        lock_owner: owner,
                        lock_until: until,
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
        let result = recover_saga(store, defs, &saga_id, opts, events, &mut report).await;
        let released = lock.release().await;
        result?;
        if let Err(e) = released {
            tracing::warn!("releasing replay lock for {saga_id}: {e}");
        }
    }
    Ok(report)
}

async fn recover_saga(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    saga_id: &str,
    opts: &RecoverOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
    report: &mut RecoverReport,
) -> Result<(), ReplayError> {
    for replay in abandoned_under_lock(store.as_ref(), saga_id).await? {
        let mut item = Recovered {
            replay,
            closed: None,
            outcome: None,
            error: None,
        };
        match &opts.action {
            RecoverAction::List => {}
            RecoverAction::Abandon { reason } => {
                item.closed = Some(abandon(store.as_ref(), &item.replay, reason, &opts.by).await?);
            }
            RecoverAction::Resume => match resume(store, defs, &item.replay, opts, events).await {
                Ok((log, outcome)) => {
                    item.closed = Some(log);
                    item.outcome = outcome;
                }
                Err(ReplayError::Store(e)) => return Err(e.into()),
                Err(e) => item.error = Some(e.to_string()),
            },
        }
        report.abandoned.push(item);
    }
    Ok(())
}

fn audit(log: &mut ReplayLog, how: &str, by: &str) {
    log.extra.insert("recovery".into(), Value::from(how));
    log.extra.insert("recovered_by".into(), Value::from(by));
    log.extra.insert(
        "recovered_at".into(),
        Value::from(Timestamp::now().to_isoformat()),
    );
}

/// Closes an abandoned replay: the log entry becomes `cancelled` (a status
/// sagaz defines) with the reason, and the new saga gets a closing snapshot
/// with status `failed` — it stopped with its completed steps neither
/// finished nor compensated, which is what `failed` means to sagaz.
async fn abandon(
    store: &dyn SnapshotStore,
    a: &AbandonedReplay,
    reason: &str,
    by: &str,
) -> Result<ReplayLog, ReplayError> {
    if let Some(p) = a.progress.as_ref().filter(|p| !p.status.is_terminal()) {
        let mut closing = Snapshot::new(
            p.saga_id.clone(),
            p.saga_name.clone(),
            p.step_name.clone(),
            p.step_index,
            SagaStatus::Failed,
            p.context.clone(),
            p.completed_steps.clone(),
        );
        closing.extra = p.extra.clone();
        closing.extra.insert(
            "error".into(),
            Value::from(format!("replay abandoned by {by}: {reason}")),
        );
        store.save_snapshot(&closing).await?;
    }
    let mut log = a.log.clone();
    log.replay_status = ReplayStatus::Cancelled;
    log.completed_at = Some(Timestamp::now());
    log.error_message = Some(format!("abandoned: {reason}"));
    audit(&mut log, "abandoned", by);
    log.extra
        .insert("recovery_reason".into(), Value::from(reason.to_string()));
    store.save_replay(&log).await?;
    Ok(log)
}

/// Continues an abandoned replay under its own new saga id: from the new
/// saga's newest snapshot (its completed steps are skipped), or from the
/// checkpoint as the replay started when it stopped before any snapshot.
async fn resume(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    a: &AbandonedReplay,
    opts: &RecoverOptions,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<(ReplayLog, Option<RunOutcome>), ReplayError> {
    let mut log = a.log.clone();
    let force_failure = log
        .extra
        .get("force_failure")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut snapshot_extra = Map::new();
    snapshot_extra.insert(
        "replay_of".into(),
        Value::from(log.original_saga_id.clone()),
    );
    snapshot_extra.insert("replay_id".into(), Value::from(log.replay_id.clone()));
    let outcome = match &a.progress {
        // It ran to its end; only the log entry was not closed.
        Some(p) if p.status.is_terminal() => {
            log.replay_status = if p.status == SagaStatus::Completed {
                ReplayStatus::Success
            } else {
                ReplayStatus::Failed
            };
            log.extra
                .insert("outcome".into(), Value::from(p.status.as_str()));
            None
        }
        progress => {
            let (context, completed, name) = match progress {
                Some(p) => (
                    p.context.clone(),
                    p.completed_steps.clone(),
                    p.saga_name.clone(),
                ),
                None => {
                    let context_override = match &log.context_override {
                        Some(Value::Object(m)) => m.clone(),
                        _ => Map::new(),
                    };
                    let merge = match log.extra.get("merge").and_then(Value::as_str) {
                        Some("patch") => MergeMode::Patch,
                        _ => MergeMode::Shallow,
                    };
                    let compensated = match log.extra.get("compensated").and_then(Value::as_str) {
                        Some("skip") => Compensated::Skip,
                        _ => Compensated::Rerun,
                    };
                    // The checkpoint the replay started from, exactly; the
                    // guards were passed (or overridden) when it started.
                    let spec = ReplaySpec {
                        from_step: log.checkpoint_step.clone(),
                        from_snapshot: log
                            .extra
                            .get("checkpoint_snapshot_id")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        context_override,
                        merge,
                        force_failure,
                        compensated,
                        allow: Allow {
                            completed: true,
                            again: true,
                            in_progress: true,
                        },
                    };
                    let (plan, _) = plan_replay(
                        store.as_ref(),
                        defs,
                        &log.original_saga_id,
                        log.extra.get("saga_name").and_then(Value::as_str),
                        &spec,
                        Duration::ZERO,
                    )
                    .await?;
                    if !plan.is_ok() {
                        return Err(ReplayError::Plan(Box::new(plan)));
                    }
                    let name = plan.saga_name.clone().unwrap_or_default();
                    (plan.merged_context.clone(), plan.in_force_skipped(), name)
                }
            };
            // Compensated steps the replay left undone (--compensated skip)
            // stay undone when it is continued.
            let left_undone: Vec<String> = match log.extra.get("steps_left_undone") {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            let Some(def) = defs.get(&name) else {
                return Err(ReplayError::CannotResume(format!(
                    "no definition for saga {name:?} to continue replay {} with (see --definitions)",
                    log.replay_id
                )));
            };
            if def.delegate.is_some() || def.steps.is_empty() {
                return Err(ReplayError::CannotResume(format!(
                    "replay {} ran in {name}'s own runtime (a delegate); sagascope cannot continue it: close it with --abandon",
                    log.replay_id
                )));
            }
            if let Some(p) = progress {
                log.extra.insert(
                    "resumed_from_snapshot".into(),
                    Value::from(p.snapshot_id.clone()),
                );
            }
            let outcome = Engine::new(store.clone())
                .run(
                    &def,
                    RunRequest {
                        saga_id: log.new_saga_id.clone(),
                        context,
                        completed_steps: completed,
                        skipped_steps: left_undone,
                        force_failure,
                        snapshot_extra,
                    },
                    events,
                )
                .await;
            super::run::record_outcome(&mut log, &outcome);
            Some(outcome)
        }
    };
    log.completed_at = Some(Timestamp::now());
    audit(&mut log, "resumed", &opts.by);
    store.save_replay(&log).await?;
    Ok((log, outcome))
}
