//! The replay plan: what a replay from a checkpoint would do, worked out
//! without executing anything. A dry run is this plan; a real replay runs
//! only a plan without errors.

use serde::Serialize;
use serde_json::{Map, Value};

use super::diff::{structural_diff, ChangeKind, PathChange};
use super::merge::{apply_override, MergeMode};
use crate::engine::SagaDefinition;
use crate::model::{SagaStatus, Snapshot, Timestamp};
use crate::store::{SnapshotStore, StoreResult};

/// What kind of problem stops a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanErrorKind {
    /// The step is not one of the saga's steps.
    UnknownStep,
    /// The saga has no snapshot for the step.
    NoSnapshot,
    /// No definition is known for the saga's name.
    NoDefinition,
}

/// A problem that stops the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanError {
    /// Which problem it is.
    pub kind: PlanErrorKind,
    /// A sentence for the user, naming the saga or step and what to do.
    pub message: String,
}

/// The checkpoint a replay starts from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    /// The checkpoint snapshot's id.
    pub snapshot_id: String,
    /// The snapshot's step (the step replayed from).
    pub step_name: String,
    /// The snapshot's 0-based step position.
    pub step_index: i64,
    /// The saga's status when the snapshot was taken.
    pub status: SagaStatus,
    /// When the snapshot was taken.
    pub created_at: Timestamp,
    /// The steps the snapshot lists as completed.
    pub completed_steps: Vec<String>,
}

/// What a replay would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayPlan {
    /// The saga replayed from.
    pub original_saga_id: String,
    /// The saga's name, from the checkpoint or else from the input; `None`
    /// when neither knew it (then no definition could be looked up).
    pub saga_name: Option<String>,
    /// The step the replay starts from.
    pub from_step: String,
    /// The snapshot the replay starts from: the newest one taken for
    /// `from_step`. `None` when the saga has none (a [`PlanErrorKind::NoSnapshot`]
    /// error).
    pub checkpoint: Option<Checkpoint>,
    /// How the override is merged into the checkpoint's context.
    pub merge: MergeMode,
    /// The override as given (top-level keys; empty for none).
    pub context_override: Map<String, Value>,
    /// The checkpoint's context with the override applied.
    pub merged_context: Map<String, Value>,
    /// How the merged context differs from the checkpoint's.
    pub diff: Vec<PathChange>,
    /// Steps not run again: those before `from_step` and any the checkpoint
    /// lists as completed, in definition order. Empty without a definition.
    pub steps_skipped: Vec<String>,
    /// Steps the replay runs, in order. Empty without a definition, or when
    /// every step is completed (then a warning says so).
    pub steps_to_run: Vec<String>,
    /// Compensations that would run, in order, if the last step failed.
    pub compensations: Vec<String>,
    /// Set when a delegate command performs the replay.
    pub delegate: Option<String>,
    /// Whether the last step to run will be failed on purpose to exercise the
    /// compensations.
    pub force_failure: bool,
    /// Things worth knowing that do not stop the replay: new override keys,
    /// type changes, an unfinished earlier replay, ...
    pub warnings: Vec<String>,
    /// Problems that stop the replay; a real replay runs only a plan without
    /// any ([`is_ok`](Self::is_ok)).
    pub errors: Vec<PlanError>,
}

impl ReplayPlan {
    /// Whether the plan has no errors, so the replay can run.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The first error, for a one-line message.
    pub fn first_error(&self) -> Option<&PlanError> {
        self.errors.first()
    }
}

/// What the plan is for.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The saga's exact id.
    pub saga_id: &'a str,
    /// The saga's name when known without the checkpoint (from the list).
    pub saga_name: Option<&'a str>,
    /// The step to replay from.
    pub from_step: &'a str,
    /// Top-level keys to merge into the checkpoint's context.
    pub context_override: &'a Map<String, Value>,
    /// How to merge them.
    pub merge: MergeMode,
    /// Fail the last step to run on purpose, to exercise the compensations.
    pub force_failure: bool,
}

/// The checkpoint snapshot for a step: the newest snapshot taken for it
/// (sagaz's `get_latest_snapshot(saga_id, before_step)`). One round trip.
pub async fn load_checkpoint(
    store: &dyn SnapshotStore,
    saga_id: &str,
    step: &str,
) -> StoreResult<Option<Snapshot>> {
    store.latest_snapshot(saga_id, Some(step)).await
}

/// Works out the plan from a checkpoint (already fetched) and the
/// definition (if one is known). Pure: no I/O.
pub fn build_plan(
    input: PlanInput<'_>,
    checkpoint: Option<&Snapshot>,
    lookup: &dyn Fn(&str) -> Option<std::sync::Arc<SagaDefinition>>,
) -> ReplayPlan {
    let saga_name = checkpoint
        .map(|c| c.saga_name.clone())
        .or_else(|| input.saga_name.map(str::to_string));
    let def = saga_name.as_deref().and_then(lookup);
    let mut plan = ReplayPlan {
        original_saga_id: input.saga_id.to_string(),
        saga_name: saga_name.clone(),
        from_step: input.from_step.to_string(),
        checkpoint: checkpoint.map(|c| Checkpoint {
            snapshot_id: c.snapshot_id.clone(),
            step_name: c.step_name.clone(),
            step_index: c.step_index,
            status: c.status.clone(),
            created_at: c.created_at,
            completed_steps: c.completed_steps.clone(),
        }),
        merge: input.merge,
        context_override: input.context_override.clone(),
        merged_context: Map::new(),
        diff: Vec::new(),
        steps_skipped: Vec::new(),
        steps_to_run: Vec::new(),
        compensations: Vec::new(),
        delegate: def
            .as_ref()
            .and_then(|d| d.delegate.as_ref())
            .map(|d| d.command.display()),
        force_failure: input.force_failure,
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    match (&def, &saga_name) {
        (None, Some(name)) => plan.errors.push(PlanError {
            kind: PlanErrorKind::NoDefinition,
            message: format!(
                "no definition for saga {name:?}; add its TOML file to `engine.definitions` in the config or pass --definitions FILE"
            ),
        }),
        (None, None) => {}
        (Some(d), _) => {
            if !d.steps.is_empty() && d.step_index(input.from_step).is_none() {
                plan.errors.push(PlanError {
                    kind: PlanErrorKind::UnknownStep,
                    message: format!(
                        "unknown step {:?} for saga {:?}; its steps are: {}",
                        input.from_step,
                        d.name,
                        d.step_names().join(", ")
                    ),
                });
            }
        }
    }
    let Some(cp) = checkpoint else {
        if !plan
            .errors
            .iter()
            .any(|e| e.kind == PlanErrorKind::UnknownStep)
        {
            plan.errors.push(PlanError {
                kind: PlanErrorKind::NoSnapshot,
                message: format!(
                    "saga {} has no snapshot for step {:?} to replay from (see `sagascope snapshots {}`)",
                    input.saga_id, input.from_step, input.saga_id
                ),
            });
        }
        return plan;
    };
    plan.merged_context = apply_override(&cp.context, input.context_override, input.merge);
    plan.diff = structural_diff(
        &Value::Object(cp.context.clone()),
        &Value::Object(plan.merged_context.clone()),
    );
    for k in input.context_override.keys() {
        if !cp.context.contains_key(k) {
            plan.warnings.push(format!(
                "override key {k:?} is not in the checkpoint's context (it will be added)"
            ));
        }
    }
    for c in &plan.diff {
        if c.kind == ChangeKind::Changed && c.changes_type() {
            let t = |v: &Option<Value>| {
                v.as_ref()
                    .map(crate::model::fields_type_name)
                    .unwrap_or("nothing")
            };
            plan.warnings.push(format!(
                "{} changes type: {} → {}",
                c.path,
                t(&c.old),
                t(&c.new)
            ));
        }
    }
    if let Some(d) = &def {
        if let Some(idx) = d.step_index(input.from_step) {
            for (i, s) in d.steps.iter().enumerate() {
                if i < idx || cp.completed_steps.contains(&s.name) {
                    plan.steps_skipped.push(s.name.clone());
                } else {
                    plan.steps_to_run.push(s.name.clone());
                }
            }
            let missing: Vec<&str> = d.steps[..idx]
                .iter()
                .filter(|s| !cp.completed_steps.contains(&s.name))
                .map(|s| s.name.as_str())
                .collect();
            if !missing.is_empty() {
                plan.warnings.push(format!(
                    "the checkpoint does not list {} as completed; the replay skips {} anyway",
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" }
                ));
            }
            if plan.steps_to_run.is_empty() {
                plan.warnings.push(
                    "nothing to run: every step is already completed at this checkpoint".into(),
                );
            }
            let mut could_complete: Vec<&str> =
                plan.steps_skipped.iter().map(String::as_str).collect();
            if let Some((_, before_last)) = plan.steps_to_run.split_last() {
                could_complete.extend(before_last.iter().map(String::as_str));
            }
            plan.compensations = d
                .steps
                .iter()
                .rev()
                .filter(|s| s.compensation.is_some() && could_complete.contains(&s.name.as_str()))
                .map(|s| s.name.clone())
                .collect();
        }
    }
    if cp.status.is_terminal()
        && cp.status != SagaStatus::Completed
        && cp.step_name != input.from_step
    {
        plan.warnings
            .push(format!("checkpoint status is {}", cp.status));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{action, SagaDefinition, Step};
    use serde_json::json;
    use std::sync::Arc;

    fn order_def() -> Arc<SagaDefinition> {
        let noop = || action(|_c| async { Ok::<_, String>(Map::new()) });
        Arc::new(
            SagaDefinition::new("OrderSaga")
                .step(Step::new("reserve_inventory", noop()).compensate(noop()))
                .step(Step::new("charge_payment", noop()).compensate(noop()))
                .step(Step::new("ship_order", noop())),
        )
    }

    fn checkpoint() -> Snapshot {
        Snapshot::new(
            "s1",
            "OrderSaga",
            "charge_payment",
            1,
            SagaStatus::Executing,
            json!({"payment_token": "expired", "amount": 10})
                .as_object()
                .unwrap()
                .clone(),
            vec!["reserve_inventory".into()],
        )
    }

    fn plan_with(over: Value, step: &str, cp: Option<&Snapshot>, defs: bool) -> ReplayPlan {
        let over = over.as_object().unwrap().clone();
        let def = order_def();
        let lookup = move |n: &str| {
            if defs && n == "OrderSaga" {
                Some(def.clone())
            } else {
                None
            }
        };
        build_plan(
            PlanInput {
                saga_id: "s1",
                saga_name: Some("OrderSaga"),
                from_step: step,
                context_override: &over,
                merge: MergeMode::Shallow,
                force_failure: false,
            },
            cp,
            &lookup,
        )
    }

    #[test]
    fn plan_skips_completed_steps_and_lists_the_rest() {
        let cp = checkpoint();
        let p = plan_with(
            json!({"payment_token": "tok_valid"}),
            "charge_payment",
            Some(&cp),
            true,
        );
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!(p.steps_skipped, vec!["reserve_inventory"]);
        assert_eq!(p.steps_to_run, vec!["charge_payment", "ship_order"]);
        assert_eq!(p.compensations, vec!["charge_payment", "reserve_inventory"]);
        assert_eq!(p.merged_context["payment_token"], json!("tok_valid"));
        assert_eq!(p.diff.len(), 1);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn plan_warns_about_new_keys_and_type_changes() {
        let cp = checkpoint();
        let p = plan_with(
            json!({"amount": "10", "coupon": "X"}),
            "charge_payment",
            Some(&cp),
            true,
        );
        assert!(
            p.warnings.iter().any(|w| w.contains("coupon")),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings.iter().any(|w| w.contains("changes type")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn plan_errors_unknown_step_no_snapshot_no_definition() {
        let cp = checkpoint();
        let p = plan_with(json!({}), "refund", None, true);
        assert_eq!(p.errors[0].kind, PlanErrorKind::UnknownStep);
        assert_eq!(p.errors.len(), 1);
        let p = plan_with(json!({}), "ship_order", None, true);
        assert_eq!(p.errors[0].kind, PlanErrorKind::NoSnapshot);
        let p = plan_with(json!({}), "charge_payment", Some(&cp), false);
        assert_eq!(p.errors[0].kind, PlanErrorKind::NoDefinition);
    }
}
