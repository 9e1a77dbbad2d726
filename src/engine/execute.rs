//! Running a saga: steps in order with retries and timeouts, snapshots
//! captured as the definition's strategies say, compensation in reverse
//! order on failure, and a final snapshot for every outcome.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::definition::{SagaDefinition, Step, StepAction, StepCall, StepError};
use super::wait::SpinThenPark;
use super::Context;
use crate::model::{SagaStatus, Snapshot, COMPLETED_STEP};
use crate::store::SnapshotStore;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The id the run's snapshots are written under (a fresh UUID for a new
    /// saga; a replay's new saga id).
    pub saga_id: String,
    /// The starting context (for a replay, the checkpoint's merged with the
    /// override).
    pub context: Context,
    /// Steps already done (a replay's checkpoint): skipped, and compensated
    /// on failure as sagaz does after `execute_from_snapshot`.
    pub completed_steps: Vec<String>,
    /// Steps not run and not counted as completed: a replay's compensated
    /// steps left undone (`--compensated skip`). They are never compensated.
    pub skipped_steps: Vec<String>,
    /// Fail the last step that would run, without running it, so the
    /// compensation path can be tested.
    pub force_failure: bool,
    /// Keys added to every snapshot this run writes (e.g. `replay_of`).
    pub snapshot_extra: Map<String, Value>,
}

/// Something that happened during a run, for progress display.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A step of the checkpoint's `completed_steps`: not run again.
    StepSkipped {
        /// The step's name.
        step: String,
    },
    /// An attempt of a step began.
    StepStarted {
        /// The step's name.
        step: String,
        /// 1 for the first attempt, 2 for the first retry, ...
        attempt: u32,
    },
    /// A step succeeded; its output is merged into the context.
    StepCompleted {
        /// The step's name.
        step: String,
    },
    /// An attempt of a step failed (sent for each attempt, retries included).
    StepFailed {
        /// The step's name.
        step: String,
        /// Which attempt failed, from 1.
        attempt: u32,
        /// The [`StepError`] message.
        error: String,
    },
    /// A completed step's compensation began (compensations run in reverse
    /// order after a failure).
    Compensating {
        /// The compensated step's name.
        step: String,
    },
    /// A compensation succeeded.
    Compensated {
        /// The compensated step's name.
        step: String,
    },
    /// A compensation failed on its last attempt; the saga ends `failed`.
    CompensationFailed {
        /// The step whose compensation failed.
        step: String,
        /// The [`StepError`] message.
        error: String,
    },
    /// A snapshot could not be saved; the run goes on.
    SnapshotFailed {
        /// The `step_name` the snapshot would have had.
        step: String,
        /// The store's error.
        error: String,
    },
    /// A line a delegate printed.
    Progress {
        /// The line, without its line break.
        line: String,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// The id the run's snapshots were written under.
    pub saga_id: String,
    /// The saga's definition name.
    pub saga_name: String,
    /// `completed` when every step succeeded; `rolled_back` when a step failed
    /// and every compensation succeeded; `failed` otherwise.
    pub status: SagaStatus,
    /// The final context. After a failure it is the context as it was when the
    /// step failed (compensation output is not merged).
    pub context: Context,
    /// The steps completed, the checkpoint's included, in definition order.
    pub completed_steps: Vec<String>,
    /// The step that failed; `None` when the saga completed.
    pub failed_step: Option<String>,
    /// The failed step's error message; `None` when the saga completed.
    pub error: Option<String>,
    /// Steps whose compensation succeeded, in the order they ran (reverse
    /// execution order). Steps without a compensation are not listed.
    pub compensated_steps: Vec<String>,
    /// `(step, error)` for each compensation that failed.
    pub compensation_errors: Vec<(String, String)>,
    /// How many snapshots were saved (0 with capture off).
    pub snapshots_written: usize,
    /// Snapshots that could not be saved (the run goes on, as in sagaz, but
    /// the user is told).
    pub snapshot_errors: Vec<String>,
}

impl RunOutcome {
    /// Whether the saga completed (status `completed`).
    pub fn succeeded(&self) -> bool {
        self.status == SagaStatus::Completed
    }
}

/// Runs sagas, writing snapshots to one store (opened once, shared).
#[derive(Debug, Clone)]
pub struct Engine {
    store: Arc<dyn SnapshotStore>,
    capture: bool,
    /// How snapshot saves are waited for (see `engine::wait`).
    wait: Arc<SpinThenPark>,
}

struct Capture<'a> {
    engine: &'a Engine,
    def: &'a SagaDefinition,
    saga_id: &'a str,
    extra: &'a Map<String, Value>,
    events: &'a (dyn Fn(&Event) + Send + Sync),
    written: usize,
    errors: Vec<String>,
}

impl Capture<'_> {
    async fn take(
        &mut self,
        step: &str,
        index: usize,
        status: SagaStatus,
        context: &Context,
        completed: &[String],
        extra: Option<Map<String, Value>>,
    ) {
        if !self.engine.capture {
            return;
        }
        let mut s = Snapshot::new(
            self.saga_id,
            self.def.name.clone(),
            step,
            index as i64,
            status,
            context.clone(),
            completed.to_vec(),
        );
        if !self.extra.is_empty() {
            s.extra = self.extra.clone();
        }
        if let Some(e) = extra {
            s.extra.extend(e);
        }
        match self
            .engine
            .wait
            .wait(self.engine.store.save_snapshot(&s))
            .await
        {
            Ok(()) => self.written += 1,
            Err(e) => {
                let msg = format!("snapshot at {step} not saved: {e}");
                tracing::warn!("{msg}");
                (self.events)(&Event::SnapshotFailed {
                    step: step.to_string(),
                    error: e.to_string(),
                });
                self.errors.push(msg);
            }
        }
    }
}

impl Engine {
    /// An engine that captures snapshots into `store`.
    pub fn new(store: Arc<dyn SnapshotStore>) -> Self {
        Engine {
            store,
            capture: true,
            wait: Arc::default(),
        }
    }

    /// Turns snapshot capture off (benchmarks compare with and without).
    pub fn without_capture(mut self) -> Self {
        self.capture = false;
        self
    }

    /// The store snapshots are written to.
    pub fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.store
    }

    /// Runs a saga to its end (completed, rolled back or failed).
    pub async fn run(
        &self,
        def: &SagaDefinition,
        req: RunRequest,
        events: &(dyn Fn(&Event) + Send + Sync),
    ) -> RunOutcome {
        let strategies = def.strategies;
        let mut ctx = req.context;
        let mut completed: Vec<String> = Vec::with_capacity(def.steps.len());
        // Keep definition order for the checkpoint's steps.
        for s in &def.steps {
            if req.completed_steps.iter().any(|c| c == &s.name) {
                completed.push(s.name.clone());
            }
        }
        let mut cap = Capture {
            engine: self,
            def,
            saga_id: &req.saga_id,
            extra: &req.snapshot_extra,
            events,
            written: 0,
            errors: Vec::new(),
        };
        let to_run: Vec<usize> = (0..def.steps.len())
            .filter(|&i| {
                !completed.contains(&def.steps[i].name)
                    && !req.skipped_steps.contains(&def.steps[i].name)
            })
            .collect();
        for s in def
            .steps
            .iter()
            .filter(|s| completed.contains(&s.name) || req.skipped_steps.contains(&s.name))
        {
            events(&Event::StepSkipped {
                step: s.name.clone(),
            });
        }
        let last = to_run.last().copied();
        let mut failure: Option<(usize, String)> = None;
        for &i in &to_run {
            let step = &def.steps[i];
            if strategies.before_each_step {
                cap.take(&step.name, i, SagaStatus::Executing, &ctx, &completed, None)
                    .await;
            }
            let result = if req.force_failure && Some(i) == last {
                let e = "forced failure (--force-failure): the step was not run".to_string();
                events(&Event::StepFailed {
                    step: step.name.clone(),
                    attempt: 1,
                    error: e.clone(),
                });
                Err(StepError::new(e))
            } else {
                run_with_retry(def, &req.saga_id, step, &step.action, &ctx, false, events).await
            };
            match result {
                Ok(out) => {
                    ctx.extend(out);
                    completed.push(step.name.clone());
                    events(&Event::StepCompleted {
                        step: step.name.clone(),
                    });
                    if strategies.after_each_step || step.snapshot_after {
                        cap.take(&step.name, i, SagaStatus::Executing, &ctx, &completed, None)
                            .await;
                    }
                }
                Err(e) => {
                    failure = Some((i, e.message));
                    break;
                }
            }
        }
        let Some((failed_index, error)) = failure else {
            if strategies.final_snapshot() {
                cap.take(
                    COMPLETED_STEP,
                    def.steps.len(),
                    SagaStatus::Completed,
                    &ctx,
                    &completed,
                    None,
                )
                .await;
            }
            return RunOutcome {
                saga_id: req.saga_id.clone(),
                saga_name: def.name.clone(),
                status: SagaStatus::Completed,
                context: ctx,
                completed_steps: completed,
                failed_step: None,
                error: None,
                compensated_steps: Vec::new(),
                compensation_errors: Vec::new(),
                snapshots_written: cap.written,
                snapshot_errors: cap.errors,
            };
        };
        // Compensate in reverse order. A compensation's output is not merged:
        // the final snapshot keeps the context as it was when the step
        // failed, so it serves as a checkpoint for a replay of that step.
        let mut compensated = Vec::new();
        let mut comp_errors = Vec::new();
        for name in completed.iter().rev() {
            let Some(step) = def.steps.iter().find(|s| &s.name == name) else {
                continue;
            };
            let Some(comp) = &step.compensation else {
                continue;
            };
            events(&Event::Compensating { step: name.clone() });
            match run_with_retry(def, &req.saga_id, step, comp, &ctx, true, events).await {
                Ok(_) => {
                    events(&Event::Compensated { step: name.clone() });
                    compensated.push(name.clone());
                }
                Err(e) => {
                    events(&Event::CompensationFailed {
                        step: name.clone(),
                        error: e.message.clone(),
                    });
                    comp_errors.push((name.clone(), e.message));
                }
            }
        }
        let status = if comp_errors.is_empty() {
            SagaStatus::RolledBack
        } else {
            SagaStatus::Failed
        };
        let failed_step = def.steps[failed_index].name.clone();
        if strategies.final_snapshot() {
            let mut extra = Map::new();
            extra.insert("error".into(), Value::from(error.clone()));
            extra.insert(
                "compensated_steps".into(),
                Value::Array(compensated.iter().cloned().map(Value::from).collect()),
            );
            if !comp_errors.is_empty() {
                extra.insert(
                    "compensation_errors".into(),
                    Value::Object(
                        comp_errors
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                            .collect(),
                    ),
                );
            }
            cap.take(
                &failed_step,
                failed_index,
                status.clone(),
                &ctx,
                &completed,
                Some(extra),
            )
            .await;
        }
        RunOutcome {
            saga_id: req.saga_id.clone(),
            saga_name: def.name.clone(),
            status,
            context: ctx,
            completed_steps: completed,
            failed_step: Some(failed_step),
            error: Some(error),
            compensated_steps: compensated,
            compensation_errors: comp_errors,
            snapshots_written: cap.written,
            snapshot_errors: cap.errors,
        }
    }
}

async fn run_with_retry(
    def: &SagaDefinition,
    saga_id: &str,
    step: &Step,
    action: &Arc<dyn StepAction>,
    ctx: &Context,
    compensating: bool,
    events: &(dyn Fn(&Event) + Send + Sync),
) -> Result<Context, StepError> {
    let attempts = step.retry.attempts.max(1);
    let mut last_err = StepError::new("not run");
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(step.retry.delay_before(attempt)).await;
        }
        if !compensating {
            events(&Event::StepStarted {
                step: step.name.clone(),
                attempt,
            });
        }
        let call = StepCall {
            saga_id,
            saga_name: &def.name,
            step: &step.name,
            context: ctx,
            compensating,
        };
        let r = match step.timeout {
            Some(t) => match tokio::time::timeout(t, action.run(call)).await {
                Ok(r) => r,
                Err(_) => Err(StepError {
                    message: format!("step {} timed out after {}s", step.name, t.as_secs_f64()),
                    timed_out: true,
                }),
            },
            None => action.run(call).await,
        };
        match r {
            Ok(out) => return Ok(out),
            Err(e) => {
                if !compensating {
                    events(&Event::StepFailed {
                        step: step.name.clone(),
                        attempt,
                        error: e.message.clone(),
                    });
                }
                last_err = e;
            }
        }
    }
    Err(last_err)
}
