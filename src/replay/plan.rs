//! The replay plan: what a replay from a checkpoint would do, worked out
//! without executing anything. A dry run is this plan; a real replay runs
//! only a plan without errors, and a plan written to a file
//! ([`super::artifact`]) is run exactly as it was shown.
//!
//! The plan is built from the saga's history ([`History`]): which snapshot
//! is the checkpoint, which steps' effects are in force there (skipped),
//! which were undone afterwards (re-run, or skipped on request), and the
//! guards against replaying what should not be replayed (a completed saga,
//! one already replayed successfully, one still running).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::diff::{structural_diff, ChangeKind, PathChange};
use super::effects::{checkpoint_for_step, effects_at, CheckpointPick, Effect, Effects, History};
use super::merge::apply_override;
use super::run::ReplaySpec;
use crate::engine::SagaDefinition;
use crate::model::{short_id, SagaStatus, Snapshot, Timestamp};

/// What kind of problem stops a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanErrorKind {
    /// The step is not one of the saga's steps.
    UnknownStep,
    /// The saga has no snapshot to start from (for the step, or the one
    /// named by `--from-snapshot`).
    NoSnapshot,
    /// No definition is known for the saga's name.
    NoDefinition,
    /// The plan would run a step again that cannot be run again safely: it
    /// is marked `repeatable = false`, or it is not in the definition.
    NotRepeatable,
    /// Guard: the saga completed (`--allow-completed` to replay anyway).
    Completed,
    /// Guard: a replay of the saga already succeeded (`--again`).
    AlreadyReplayed,
    /// Guard: the saga's newest snapshot is not terminal and younger than
    /// the lock TTL: it may still be running (`--force`).
    InProgress,
    /// The checkpoint's context holds values encrypted under a master key
    /// this process does not have: the replay would run on ciphertexts and
    /// write values no key opens in the new saga.
    Sealed,
}

impl PlanErrorKind {
    /// The flag that overrides this error, for the guards.
    pub fn override_flag(self) -> Option<&'static str> {
        match self {
            PlanErrorKind::Completed => Some("--allow-completed"),
            PlanErrorKind::AlreadyReplayed => Some("--again"),
            PlanErrorKind::InProgress => Some("--force"),
            _ => None,
        }
    }

    /// Whether this is one of the guards (a batch skips such a saga rather
    /// than counting it as an error).
    pub fn is_guard(self) -> bool {
        self.override_flag().is_some()
    }
}

/// A problem that stops the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanError {
    /// Which problem it is.
    pub kind: PlanErrorKind,
    /// A sentence for the user, naming the saga or step and what to do.
    pub message: String,
}

/// What a replay does with the effects of steps the original run undid:
/// run them again (the default: the replay needs what they did), or leave
/// them undone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compensated {
    /// Run compensated steps again before the rest.
    #[default]
    Rerun,
    /// Leave compensated steps undone (they are neither run nor
    /// compensated again).
    Skip,
}

impl Compensated {
    /// As written on the command line and in the replay log.
    pub fn as_str(self) -> &'static str {
        match self {
            Compensated::Rerun => "rerun",
            Compensated::Skip => "skip",
        }
    }
}

/// The guards a person chose to override.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allow {
    /// Replay a saga that completed (`--allow-completed`).
    pub completed: bool,
    /// Replay a saga that already has a successful replay (`--again`).
    pub again: bool,
    /// Replay a saga that may still be running (`--force`).
    pub in_progress: bool,
}

/// What the replay does with one step of the definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Not run: its effect is in force at the checkpoint.
    Skip,
    /// Run again: it was completed at the checkpoint, then compensated.
    Rerun,
    /// Not run although it was compensated (`--compensated skip`): its
    /// effect stays undone, and it is not compensated again on failure.
    SkipCompensated,
    /// Run: not completed at the checkpoint.
    Run,
}

impl StepAction {
    /// The word the plan shows.
    pub fn label(self) -> &'static str {
        match self {
            StepAction::Skip => "skip",
            StepAction::Rerun => "re-run",
            StepAction::SkipCompensated => "skip",
            StepAction::Run => "run",
        }
    }

    /// Whether the replay executes the step.
    pub fn runs(self) -> bool {
        matches!(self, StepAction::Rerun | StepAction::Run)
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step's name.
    pub step: String,
    /// What the replay does with it.
    pub action: StepAction,
    /// Why, for the user: "in force", "compensated in the original run", ...
    /// Empty for an ordinary `run`.
    pub why: String,
}

/// The checkpoint a replay starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint snapshot's id.
    pub snapshot_id: String,
    /// Its position in the saga's timeline, as `sagascope snapshots` and
    /// the TUI number it (`#N`, unreadable entries counted).
    pub position: usize,
    /// How many entries the timeline has.
    pub timeline_len: usize,
    /// How it was found.
    pub pick: CheckpointPick,
    /// The snapshot's step.
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

impl Checkpoint {
    /// "snapshot #1 of 3 (4d2a…, executing, before charge_payment)".
    pub fn describe(&self) -> String {
        format!(
            "snapshot #{} of {} ({}, {}, {}{})",
            self.position,
            self.timeline_len,
            short_id(&self.snapshot_id),
            self.status,
            if self.status.is_terminal() {
                "at "
            } else {
                "before "
            },
            self.step_name
        )
    }
}

/// What a replay would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayPlan {
    /// The saga replayed from.
    pub original_saga_id: String,
    /// The saga's name, from its snapshots or else from the input; `None`
    /// when neither knew it (then no definition could be looked up).
    pub saga_name: Option<String>,
    /// The step the replay starts from: the one asked for, or with
    /// `--from-snapshot` the first step the checkpoint had not completed.
    pub from_step: String,
    /// The snapshot the replay starts from; `None` when there is none (a
    /// [`PlanErrorKind::NoSnapshot`] error).
    pub checkpoint: Option<Checkpoint>,
    /// How the override is merged into the checkpoint's context.
    pub merge: super::merge::MergeMode,
    /// The override as given (top-level keys; empty for none).
    pub context_override: Map<String, Value>,
    /// The checkpoint's context with the override applied.
    pub merged_context: Map<String, Value>,
    /// How the merged context differs from the checkpoint's.
    pub diff: Vec<PathChange>,
    /// Every step of the definition with what the replay does with it, in
    /// definition order. Empty without a definition (or for a delegate
    /// without steps).
    #[serde(default)]
    pub steps: Vec<PlannedStep>,
    /// What was chosen for compensated steps.
    #[serde(default)]
    pub compensated: Compensated,
    /// The effects at the checkpoint, as derived from the snapshots.
    #[serde(default)]
    pub effects: Effects,
    /// Steps not run (in force, or compensated and left undone), in
    /// definition order.
    pub steps_skipped: Vec<String>,
    /// Steps the replay runs (re-runs included), in order.
    pub steps_to_run: Vec<String>,
    /// Compensations that would run, in order, if the last step failed.
    pub compensations: Vec<String>,
    /// Set when a delegate command performs the replay.
    pub delegate: Option<String>,
    /// Whether the last step to run will be failed on purpose to exercise the
    /// compensations.
    pub force_failure: bool,
    /// Things worth knowing that do not stop the replay: guards overridden,
    /// compensated steps left undone, new override keys, type changes, ...
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

    /// The steps skipped because their effect is in force: the replay's
    /// `completed_steps`, compensated again if it fails.
    pub fn in_force_skipped(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.action == StepAction::Skip)
            .map(|s| s.step.clone())
            .collect()
    }

    /// The steps skipped although compensated (`--compensated skip`).
    pub fn skipped_compensated(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.action == StepAction::SkipCompensated)
            .map(|s| s.step.clone())
            .collect()
    }

    /// Masks what the plan shows of the context (the checkpoint's context
    /// with the override, the override, the diff) for output: the patterns
    /// of the plan's saga name, or of every saga name when it is unknown.
    /// A real run never starts from a masked plan (it plans again,
    /// unmasked, under the lock).
    pub fn mask(&mut self, sensitive: &crate::compliance::SensitivePaths) {
        use crate::compliance::mask;
        let name = self.saga_name.clone();
        let mask_ctx = |ctx: &mut Map<String, Value>| match &name {
            Some(n) => mask::mask_context(sensitive, n, ctx),
            None => mask::mask_any_context(sensitive, ctx),
        };
        mask_ctx(&mut self.merged_context);
        mask_ctx(&mut self.context_override);
        for c in &mut self.diff {
            c.mask(sensitive, name.as_deref());
        }
    }

    /// The planned step of this name.
    pub fn step(&self, name: &str) -> Option<&PlannedStep> {
        self.steps.iter().find(|s| s.step == name)
    }
}

/// What the plan is for.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The saga's exact id.
    pub saga_id: &'a str,
    /// The saga's name when known without its snapshots (from the list).
    pub saga_name: Option<&'a str>,
    /// The checkpoint, override and choices.
    pub spec: &'a ReplaySpec,
    /// The time the guards are checked at.
    pub now: Timestamp,
    /// A non-terminal saga whose newest snapshot is younger than this may
    /// still be running (the replay lock's TTL).
    pub lock_ttl: Duration,
}

/// The checkpoint snapshot for a step as sagaz picks it: the newest
/// snapshot taken for it (`get_latest_snapshot(saga_id, before_step)`).
/// Replays use [`History`] and [`checkpoint_for_step`] instead, which never
/// pick a snapshot taken after the step ran.
pub async fn load_checkpoint(
    store: &dyn crate::store::SnapshotStore,
    saga_id: &str,
    step: &str,
) -> crate::store::StoreResult<Option<Snapshot>> {
    store.latest_snapshot(saga_id, Some(step)).await
}

/// Finds the checkpoint `--from-snapshot` names: a timeline position
/// (`3`, `#3`, `-1` for the newest) or a snapshot id or unique id prefix.
fn exact_checkpoint(h: &History, r: &str) -> Result<usize, String> {
    let r = r.trim();
    let n = h.timeline_len();
    if let Ok(i) = r.trim_start_matches('#').parse::<i64>() {
        let pos = if i < 0 { n as i64 + i } else { i };
        if pos < 0 || pos >= n as i64 {
            return Err(format!(
                "the saga has no snapshot #{i}: its timeline has {n} (#0–#{})",
                n.saturating_sub(1)
            ));
        }
        return h.index_at(pos as usize).ok_or_else(|| {
            format!("snapshot #{pos} cannot be read (see `sagascope snapshots`), so it cannot be a checkpoint")
        });
    }
    let found: Vec<usize> = h
        .timeline
        .iter()
        .enumerate()
        .filter(|(_, s)| s.snapshot_id.starts_with(r))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [i] if !r.is_empty() => Ok(*i),
        [] | [_] => Err(format!(
            "the saga has no snapshot with id or id prefix {r:?}"
        )),
        _ => Err(format!(
            "{r:?} matches {} of the saga's snapshots; type more of the id",
            found.len()
        )),
    }
}

/// Works out the plan from the saga's history (already fetched) and the
/// definition (if one is known). Pure: no I/O.
pub fn build_plan(
    input: PlanInput<'_>,
    history: &History,
    lookup: &dyn Fn(&str) -> Option<std::sync::Arc<SagaDefinition>>,
) -> ReplayPlan {
    let spec = input.spec;
    let saga_name = history
        .timeline
        .last()
        .map(|c| c.saga_name.clone())
        .or_else(|| input.saga_name.map(str::to_string));
    let def = saga_name.as_deref().and_then(lookup);
    let mut plan = ReplayPlan {
        original_saga_id: input.saga_id.to_string(),
        saga_name: saga_name.clone(),
        from_step: spec.from_step.clone(),
        checkpoint: None,
        merge: spec.merge,
        context_override: spec.context_override.clone(),
        merged_context: Map::new(),
        diff: Vec::new(),
        steps: Vec::new(),
        compensated: spec.compensated,
        effects: Effects::default(),
        steps_skipped: Vec::new(),
        steps_to_run: Vec::new(),
        compensations: Vec::new(),
        delegate: def
            .as_ref()
            .and_then(|d| d.delegate.as_ref())
            .map(|d| d.command.display()),
        force_failure: spec.force_failure,
        warnings: Vec::new(),
        errors: Vec::new(),
    };
    let err = |plan: &mut ReplayPlan, kind, message: String| {
        plan.errors.push(PlanError { kind, message })
    };
    match (&def, &saga_name) {
        (None, Some(name)) => err(
            &mut plan,
            PlanErrorKind::NoDefinition,
            format!(
                "no definition for saga {name:?}; add its TOML file to `engine.definitions` in the config or pass --definitions FILE"
            ),
        ),
        (None, None) => {}
        (Some(d), _) => {
            if spec.from_snapshot.is_none()
                && !d.steps.is_empty()
                && d.step_index(&spec.from_step).is_none()
            {
                err(
                    &mut plan,
                    PlanErrorKind::UnknownStep,
                    format!(
                        "unknown step {:?} for saga {:?}; its steps are: {}",
                        spec.from_step,
                        d.name,
                        d.step_names().join(", ")
                    ),
                );
            }
        }
    }
    // Which snapshot.
    let found = match &spec.from_snapshot {
        Some(r) => exact_checkpoint(history, r).map(|i| (i, CheckpointPick::Exact)),
        None => checkpoint_for_step(&history.timeline, &spec.from_step, def.as_deref())
            .ok_or_else(|| {
                format!(
                    "saga {} has no snapshot for step {:?} to replay from (see `sagascope snapshots {}`)",
                    input.saga_id,
                    spec.from_step,
                    short_id(input.saga_id)
                )
            }),
    };
    let (idx, pick) = match found {
        Ok(f) => f,
        Err(message) => {
            if !plan
                .errors
                .iter()
                .any(|e| e.kind == PlanErrorKind::UnknownStep)
            {
                err(&mut plan, PlanErrorKind::NoSnapshot, message);
            }
            return plan;
        }
    };
    let cp = &history.timeline[idx];
    if spec.from_snapshot.is_some() {
        // The first step the checkpoint had not completed.
        plan.from_step = def
            .as_ref()
            .and_then(|d| {
                d.steps
                    .iter()
                    .find(|s| !cp.completed_steps.contains(&s.name))
                    .map(|s| s.name.clone())
            })
            .unwrap_or_else(|| cp.step_name.clone());
    }
    plan.checkpoint = Some(Checkpoint {
        snapshot_id: cp.snapshot_id.clone(),
        position: history.position_of(idx),
        timeline_len: history.timeline_len(),
        pick,
        step_name: cp.step_name.clone(),
        step_index: cp.step_index,
        status: cp.status.clone(),
        created_at: cp.created_at,
        completed_steps: cp.completed_steps.clone(),
    });
    if pick == CheckpointPick::LatestForStep {
        plan.warnings.push(format!(
            "no snapshot was taken before {} ran; the checkpoint is the newest one recorded for it (#{}, {}), the state when the saga stopped there",
            spec.from_step,
            history.position_of(idx),
            cp.status
        ));
    }
    let effects = effects_at(&history.timeline, idx, &history.undone);
    context_warnings(&mut plan, cp, spec);
    if let Some(d) = &def {
        decide_steps(&mut plan, d, &effects, spec.compensated);
    }
    if !effects.outcome_recorded
        && effects
            .completed
            .iter()
            .any(|f| f.effect == Effect::InForce)
        && history
            .timeline
            .last()
            .is_some_and(|l| !l.status.is_terminal())
    {
        plan.warnings.push(
            "the snapshots do not record how the original run ended (sagaz writes none when a saga fails): steps it compensated would look in force here — check before replaying".into(),
        );
    }
    plan.effects = effects;
    // A real replay refuses while an earlier one is unfinished. Without
    // the lock a plan cannot tell a live replay from a killed one, so it
    // names both (from the replay log the history already holds).
    if let Some(r) = newest_unfinished(history) {
        plan.warnings.push(format!(
            "replay {} of this saga never finished (still running, or killed: see `sagascope replay recover`); a real replay refuses until it is finished, resumed or closed",
            r.replay_id
        ));
    }
    guards(&mut plan, history, input);
    plan
}

/// The newest replay of the saga still `running` in its log.
fn newest_unfinished(h: &History) -> Option<&crate::model::ReplayLog> {
    h.replays
        .iter()
        .filter(|r| r.replay_status == crate::model::ReplayStatus::Running && !r.is_dry_run())
        .max_by_key(|r| r.created_at)
}

fn context_warnings(plan: &mut ReplayPlan, cp: &Snapshot, spec: &ReplaySpec) {
    plan.merged_context = apply_override(&cp.context, &spec.context_override, spec.merge);
    let mut sealed = Vec::new();
    crate::compliance::paths::visit_leaves_mut(&mut plan.merged_context.clone(), &mut |p, v| {
        if let Some(kid) = v.get("$enc").and(v.get("kid")).and_then(Value::as_str) {
            sealed.push((crate::compliance::paths::render(p), kid.to_string()));
        } else if v.as_str() == Some(crate::compliance::mask::LOCKED) {
            // Read through a masking store: a ciphertext without its key.
            sealed.push((crate::compliance::paths::render(p), String::new()));
        }
    });
    if let Some((path, kid)) = sealed.first() {
        // The master key the data key was wrapped under; read masked, the
        // value no longer says its data key: any of the snapshot's.
        let keys = cp.extra.get("sagascope_keys").and_then(Value::as_object);
        let master = keys
            .and_then(|k| k.get(kid).or_else(|| k.values().next()))
            .and_then(|k| k.get("master"))
            .and_then(Value::as_str);
        let kid = match keys.and_then(|k| {
            k.get(kid)
                .map(|_| kid.clone())
                .or_else(|| k.keys().next().cloned())
        }) {
            Some(k) => k,
            None => kid.clone(),
        };
        let under = match master {
            Some(m) => format!(
                "under key {m} (data key {kid}), which this process does not have: configure \
                 [compliance.encryption.keys.{m}]"
            ),
            None => "under a key this process does not have: configure the key it was \
                     written under ([compliance.encryption.keys])"
                .to_string(),
        };
        plan.errors.push(PlanError {
            kind: PlanErrorKind::Sealed,
            message: format!(
                "the checkpoint holds {} encrypted value(s) (first at {path}) {under}, to \
                 replay it",
                sealed.len()
            ),
        });
    }
    plan.diff = structural_diff(
        &Value::Object(cp.context.clone()),
        &Value::Object(plan.merged_context.clone()),
    );
    for k in spec.context_override.keys() {
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
}

/// Each step of the definition: skipped when in force, re-run (or left
/// undone) when compensated, run otherwise; steps that must not run again
/// are errors.
fn decide_steps(plan: &mut ReplayPlan, d: &SagaDefinition, effects: &Effects, policy: Compensated) {
    for f in &effects.completed {
        if f.effect == Effect::Compensated
            && policy == Compensated::Rerun
            && d.step_index(&f.step).is_none()
            && !d.steps.is_empty()
        {
            plan.errors.push(PlanError {
                kind: PlanErrorKind::NotRepeatable,
                message: format!(
                    "step {:?} was compensated in the original run but the definition of {} has no such step, so it cannot be re-run; pass --compensated skip to leave it undone",
                    f.step, d.name
                ),
            });
        }
    }
    for s in &d.steps {
        let fact = effects.fact(&s.name);
        let by = |f: &super::effects::StepFact| match f.by.as_deref() {
            Some(b) if b.starts_with("replay ") => format!("compensated by {b}"),
            _ => "compensated in the original run".to_string(),
        };
        let (action, why) = match fact.map(|f| (f.effect, f)) {
            Some((Effect::InForce, _)) => (StepAction::Skip, "in force".to_string()),
            // Nothing could undo it: whatever the record says, it stands.
            Some((Effect::Compensated, _)) if s.compensation.is_none() => (
                StepAction::Skip,
                "in force: it has no compensation".to_string(),
            ),
            Some((Effect::CompensationFailed, _)) => {
                plan.warnings.push(format!(
                    "{}'s compensation failed in the original run: its effect may be partly in force; the replay skips it",
                    s.name
                ));
                (
                    StepAction::Skip,
                    "in force: its compensation failed".to_string(),
                )
            }
            Some((Effect::Compensated, f)) => match policy {
                Compensated::Rerun => (StepAction::Rerun, by(f)),
                Compensated::Skip => {
                    plan.warnings.push(format!(
                        "{} was {}; it is left undone (--compensated skip): the steps after it run without its effect",
                        s.name,
                        by(f)
                    ));
                    (
                        StepAction::SkipCompensated,
                        format!("{}; left undone (--compensated skip)", by(f)),
                    )
                }
            },
            None if effects.done_later.contains(&s.name) => (
                StepAction::Run,
                "ran in the original run after this checkpoint and was not compensated".to_string(),
            ),
            None => (StepAction::Run, String::new()),
        };
        if action.runs() && !s.repeatable && (action == StepAction::Rerun || !why.is_empty()) {
            plan.errors.push(PlanError {
                kind: PlanErrorKind::NotRepeatable,
                message: format!(
                    "step {:?} is marked repeatable = false and the replay would run it again ({why}){}",
                    s.name,
                    if action == StepAction::Rerun {
                        "; pass --compensated skip to leave it undone"
                    } else {
                        "; replay from a later checkpoint"
                    }
                ),
            });
        } else if action == StepAction::Run && !why.is_empty() {
            plan.warnings.push(format!(
                "{} {why}: running it again repeats its effect",
                s.name
            ));
        }
        plan.steps.push(PlannedStep {
            step: s.name.clone(),
            action,
            why,
        });
    }
    plan.steps_skipped = plan
        .steps
        .iter()
        .filter(|s| !s.action.runs())
        .map(|s| s.step.clone())
        .collect();
    plan.steps_to_run = plan
        .steps
        .iter()
        .filter(|s| s.action.runs())
        .map(|s| s.step.clone())
        .collect();
    if plan.steps_to_run.is_empty() && !d.steps.is_empty() {
        plan.warnings
            .push("nothing to run: every step is in force at this checkpoint".into());
    }
    // What the engine would compensate if the last step to run failed: the
    // in-force steps it skipped and the steps it ran before the last.
    let mut could_complete: Vec<String> = plan.in_force_skipped();
    if let Some((_, before_last)) = plan.steps_to_run.split_last() {
        could_complete.extend(before_last.iter().cloned());
    }
    plan.compensations = d
        .steps
        .iter()
        .rev()
        .filter(|s| s.compensation.is_some() && could_complete.contains(&s.name))
        .map(|s| s.name.clone())
        .collect();
}

/// The guards: a completed saga, one replayed successfully before, one
/// that may still be running. Each is an error unless overridden, then a
/// warning.
fn guards(plan: &mut ReplayPlan, h: &History, input: PlanInput<'_>) {
    let allow = input.spec.allow;
    let mut guard = |kind: PlanErrorKind, allowed: bool, what: String| {
        let flag = kind.override_flag().unwrap_or_default();
        if allowed {
            plan.warnings
                .push(format!("{what} (replaying anyway: {flag})"));
        } else {
            plan.errors.push(PlanError {
                kind,
                message: format!("{what}; pass {flag} to replay it anyway"),
            });
        }
    };
    if let Some(latest) = h.timeline.last() {
        if latest.status == SagaStatus::Completed {
            guard(
                PlanErrorKind::Completed,
                allow.completed,
                format!(
                    "saga {} completed (its newest snapshot, {}, says so): a replay would do its work a second time",
                    short_id(input.saga_id),
                    latest.created_at
                ),
            );
        }
        let age = input.now.as_micros() - latest.created_at.as_micros();
        if !latest.status.is_terminal()
            && age < input.lock_ttl.as_micros() as i64
            && age > -(input.lock_ttl.as_micros() as i64)
        {
            guard(
                PlanErrorKind::InProgress,
                allow.in_progress,
                format!(
                    "saga {} may still be running: its newest snapshot ({}, {}) is {:.0}s old, less than the lock TTL ({}s)",
                    short_id(input.saga_id),
                    latest.status,
                    latest.step_name,
                    (age.max(0) as f64) / 1e6,
                    input.lock_ttl.as_secs()
                ),
            );
        }
    }
    if let Some(r) = h
        .replays
        .iter()
        .filter(|r| r.replay_status == crate::model::ReplayStatus::Success && !r.is_dry_run())
        .max_by_key(|r| r.created_at)
    {
        guard(
            PlanErrorKind::AlreadyReplayed,
            allow.again,
            format!(
                "saga {} was already replayed successfully: replay {} on {} by {} made saga {}",
                short_id(input.saga_id),
                r.replay_id,
                r.created_at,
                r.initiated_by,
                r.new_saga_id
            ),
        );
    }
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

    fn snap(step: &str, idx: i64, status: SagaStatus, done: &[&str]) -> Snapshot {
        Snapshot::new(
            "s1",
            "OrderSaga",
            step,
            idx,
            status,
            json!({"payment_token": "expired", "amount": 10})
                .as_object()
                .unwrap()
                .clone(),
            done.iter().map(|s| s.to_string()).collect(),
        )
    }

    fn rolled_back_at_charge() -> Vec<Snapshot> {
        let mut rb = snap(
            "charge_payment",
            1,
            SagaStatus::RolledBack,
            &["reserve_inventory"],
        );
        rb.extra.insert("error".into(), json!("card expired"));
        rb.extra
            .insert("compensated_steps".into(), json!(["reserve_inventory"]));
        vec![
            snap("reserve_inventory", 0, SagaStatus::Executing, &[]),
            snap(
                "charge_payment",
                1,
                SagaStatus::Executing,
                &["reserve_inventory"],
            ),
            rb,
        ]
    }

    fn plan_with(spec: ReplaySpec, timeline: Vec<Snapshot>, defs: bool) -> ReplayPlan {
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
                spec: &spec,
                now: Timestamp::now(),
                lock_ttl: Duration::ZERO,
            },
            &History::of(timeline),
            &lookup,
        )
    }

    fn from(step: &str, over: Value) -> ReplaySpec {
        ReplaySpec {
            from_step: step.into(),
            context_override: over.as_object().unwrap().clone(),
            ..ReplaySpec::default()
        }
    }

    #[test]
    fn a_compensated_step_is_rerun_from_the_snapshot_before_the_step() {
        let p = plan_with(
            from("charge_payment", json!({"payment_token": "tok_valid"})),
            rolled_back_at_charge(),
            true,
        );
        assert!(p.is_ok(), "{:?}", p.errors);
        let cp = p.checkpoint.as_ref().unwrap();
        assert_eq!((cp.position, cp.status.clone()), (1, SagaStatus::Executing));
        assert_eq!(p.steps_skipped, Vec::<String>::new());
        assert_eq!(
            p.steps_to_run,
            vec!["reserve_inventory", "charge_payment", "ship_order"]
        );
        assert_eq!(
            p.step("reserve_inventory").unwrap().action,
            StepAction::Rerun
        );
        assert_eq!(p.compensations, vec!["charge_payment", "reserve_inventory"]);
        assert_eq!(p.merged_context["payment_token"], json!("tok_valid"));
    }

    #[test]
    fn compensated_skip_leaves_it_undone_and_never_compensates_it() {
        let mut spec = from("charge_payment", json!({}));
        spec.compensated = Compensated::Skip;
        let p = plan_with(spec, rolled_back_at_charge(), true);
        assert!(p.is_ok(), "{:?}", p.errors);
        assert_eq!(p.steps_skipped, vec!["reserve_inventory"]);
        assert_eq!(p.skipped_compensated(), vec!["reserve_inventory"]);
        assert_eq!(p.compensations, vec!["charge_payment"]);
        assert!(p.warnings.iter().any(|w| w.contains("--compensated skip")));
    }

    #[test]
    fn plan_warns_about_new_keys_and_type_changes() {
        let p = plan_with(
            from("charge_payment", json!({"amount": "10", "coupon": "X"})),
            rolled_back_at_charge(),
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
        let p = plan_with(from("refund", json!({})), vec![], true);
        assert_eq!(p.errors[0].kind, PlanErrorKind::UnknownStep);
        assert_eq!(p.errors.len(), 1);
        let p = plan_with(from("ship_order", json!({})), vec![], true);
        assert_eq!(p.errors[0].kind, PlanErrorKind::NoSnapshot);
        let p = plan_with(
            from("charge_payment", json!({})),
            rolled_back_at_charge(),
            false,
        );
        assert_eq!(p.errors[0].kind, PlanErrorKind::NoDefinition);
    }

    #[test]
    fn from_snapshot_takes_the_position_or_id_given() {
        let t = rolled_back_at_charge();
        let id = t[2].snapshot_id.clone();
        let mut spec = from("", json!({}));
        spec.from_snapshot = Some("#2".into());
        let p = plan_with(spec.clone(), t.clone(), true);
        let cp = p.checkpoint.as_ref().unwrap();
        assert_eq!((cp.position, &cp.snapshot_id), (2, &id));
        assert_eq!(p.from_step, "charge_payment");
        // The rolled-back snapshot itself records the compensation.
        assert_eq!(
            p.step("reserve_inventory").unwrap().action,
            StepAction::Rerun
        );
        spec.from_snapshot = Some(id[..8].to_string());
        assert_eq!(
            plan_with(spec.clone(), t.clone(), true)
                .checkpoint
                .unwrap()
                .position,
            2
        );
        spec.from_snapshot = Some("7".into());
        let p = plan_with(spec, t, true);
        assert_eq!(p.errors[0].kind, PlanErrorKind::NoSnapshot);
        assert!(
            p.errors[0].message.contains("#0–#2"),
            "{}",
            p.errors[0].message
        );
    }

    #[test]
    fn a_completed_saga_is_refused_unless_allowed() {
        let mut t = rolled_back_at_charge();
        t.pop();
        t.push(snap(
            crate::model::COMPLETED_STEP,
            3,
            SagaStatus::Completed,
            &["reserve_inventory", "charge_payment", "ship_order"],
        ));
        let p = plan_with(from("charge_payment", json!({})), t.clone(), true);
        assert_eq!(p.errors[0].kind, PlanErrorKind::Completed);
        assert!(p.errors[0].message.contains("--allow-completed"));
        let mut spec = from("charge_payment", json!({}));
        spec.allow.completed = true;
        let p = plan_with(spec, t, true);
        assert!(p.is_ok(), "{:?}", p.errors);
        assert!(p.warnings.iter().any(|w| w.contains("--allow-completed")));
    }
}
