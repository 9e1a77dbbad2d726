//! Replays from the TUI: the override editor, the dry-run plan, a replay
//! of the open saga and batch replays of marked sagas, as one state
//! machine ([`ReplayFlow`]), and the panel that shows a plan or a replay's
//! progress.

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, BatchTarget, InputKind, Panel, ReplayTarget, Tone};
use crate::model::short_id;
use crate::replay::batch::{BatchItem, BatchSummary};
use crate::replay::{ReplayPlan, ReplayReport, ReplaySpec};
use crate::tui::editor::{self, Draft, Editor};
use crate::tui::keymap::{Cmd, Key, Scope, READONLY_REFUSAL};
use crate::tui::messages::{JobResult, Request};

/// Where a replay is. One at a time: a second is refused while one is
/// asked for or running, so a target waiting for its confirmation and a
/// running replay cannot both exist.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ReplayFlow {
    /// Nothing asked for.
    #[default]
    Idle,
    /// `R`: waiting for the saga's short id to be typed.
    ConfirmId(ReplayTarget),
    /// The id matched: waiting for the reason (Enter starts the replay).
    Reason(ReplayTarget),
    /// A batch replay of the marked sagas, waiting for their count to be
    /// typed.
    ConfirmBatch {
        targets: Vec<BatchTarget>,
        spec: ReplaySpec,
    },
    /// A replay or batch is running; the panel shows its progress.
    Running,
}

impl ReplayFlow {
    /// The single replay being confirmed, if one is.
    pub fn target(&self) -> Option<&ReplayTarget> {
        match self {
            ReplayFlow::ConfirmId(t) | ReplayFlow::Reason(t) => Some(t),
            _ => None,
        }
    }

    pub fn running(&self) -> bool {
        matches!(self, ReplayFlow::Running)
    }
}

impl App {
    /// Opens the override editor on the snapshot under the cursor, with the
    /// saga's draft if one was kept.
    pub(super) fn open_editor(&mut self) {
        let Some(t) = &self.timeline else {
            self.error("open a saga first");
            return;
        };
        let Some(m) = t.current() else {
            self.error("the saga has no snapshot to replay from");
            return;
        };
        let Some(r) = self
            .detail
            .rendered
            .as_ref()
            .filter(|r| r.snapshot_id == m.snapshot_id)
        else {
            self.error("the snapshot is still loading; try again in a moment");
            return;
        };
        let saga_id = t.saga.saga_id.clone();
        self.batch_from = Some((saga_id.clone(), m.step_name.clone()));
        let draft = self.drafts.get(&saga_id).cloned().unwrap_or_default();
        self.editor = Some(Editor::new(
            saga_id,
            t.saga.saga_name.clone(),
            m.snapshot_id.clone(),
            m.step_name.clone(),
            r.context.clone(),
            draft,
        ));
    }

    fn close_editor(&mut self, keep: bool) {
        if let Some(e) = self.editor.take() {
            if keep {
                let draft = e.draft();
                if draft == Draft::default() {
                    self.drafts.remove(&e.saga_id);
                } else {
                    self.drafts.insert(e.saga_id.clone(), draft);
                    self.info(format!(
                        "override draft kept for saga {} (e reopens it)",
                        short_id(&e.saga_id)
                    ));
                }
            } else {
                self.drafts.remove(&e.saga_id);
                self.info("override draft discarded");
            }
        }
    }

    pub(super) fn on_editor_key(&mut self, k: KeyEvent) {
        let key = Key::from_event(&k);
        let cmd = self.cfg.keymap.lookup(key, &[Scope::Global]);
        match cmd {
            Some(Cmd::Back) => return self.close_editor(true),
            Some(Cmd::EditorDiscard) => return self.close_editor(false),
            Some(Cmd::EditorMerge) => {
                if let Some(e) = self.editor.as_mut() {
                    e.toggle_merge();
                }
                return;
            }
            Some(Cmd::EditorExternal) => {
                self.external_edit = self.editor.as_ref().map(Editor::text);
                return;
            }
            Some(Cmd::EditorFull) => {
                if let Some(e) = self.editor.as_mut() {
                    e.fill_full_context();
                }
                return;
            }
            _ => {}
        }
        if let Some(e) = self.editor.as_mut() {
            if e.area.input(k) {
                e.revalidate();
            }
        }
    }

    /// The saga, its name and the replay spec from the cursor's step with
    /// the saga's override; `None` (and a message) when there is none or
    /// the override is not valid JSON.
    fn replay_spec(&mut self) -> Option<ReplayTarget> {
        let Some(t) = &self.timeline else {
            self.error("open a saga first");
            return None;
        };
        let Some(m) = t.current() else {
            self.error("the saga has no snapshot to replay from");
            return None;
        };
        // The snapshot under the cursor is the checkpoint, exactly.
        let (saga_id, saga_name, step, snapshot_id) = (
            t.saga.saga_id.clone(),
            t.saga.saga_name.clone(),
            m.step_name.clone(),
            m.snapshot_id.clone(),
        );
        let draft = match &self.editor {
            Some(e) if e.saga_id == saga_id => Some(e.draft()),
            _ => self.drafts.get(&saga_id).cloned(),
        };
        let (over, merge) = match draft {
            None => (serde_json::Map::new(), crate::replay::MergeMode::Shallow),
            Some(d) => match editor::validate(&d.lines.join("\n")) {
                Ok(o) => (o, d.merge),
                Err(i) => {
                    self.error(format!(
                        "the override is not valid (line {}, column {}: {}); fix it in the editor (e)",
                        i.line, i.column, i.message
                    ));
                    return None;
                }
            },
        };
        Some(ReplayTarget {
            saga_id,
            saga_name,
            spec: crate::replay::ReplaySpec {
                from_step: step,
                from_snapshot: Some(snapshot_id),
                context_override: over,
                merge,
                ..crate::replay::ReplaySpec::default()
            },
        })
    }

    pub(super) fn dry_run(&mut self) {
        if self.cfg.readonly {
            self.error(READONLY_REFUSAL);
            return;
        }
        let Some(t) = self.replay_spec() else { return };
        self.info(format!(
            "planning a replay of {} {} from {}…",
            t.saga_name,
            short_id(&t.saga_id),
            t.spec.from_step
        ));
        self.ask(|id| Request::DryRun {
            id,
            saga_id: t.saga_id,
            saga_name: t.saga_name,
            spec: t.spec,
        });
    }

    pub(super) fn ask_replay(&mut self) {
        if self.cfg.readonly {
            self.error(READONLY_REFUSAL);
            return;
        }
        if self.replay.running() {
            self.error("a replay is already running");
            return;
        }
        let Some(t) = self.replay_spec() else { return };
        if !self.cfg.definitions.iter().any(|n| n == &t.saga_name) {
            self.error(format!(
                "no definition for {}: add its definition file to engine.definitions (or a folder to engine.definitions_dirs) in the config",
                t.saga_name
            ));
            return;
        }
        self.info(format!(
            "replay {} {} from {}: type {} and Enter to confirm, Esc cancels",
            t.saga_name,
            short_id(&t.saga_id),
            t.spec.from_step,
            short_id(&t.saga_id)
        ));
        self.replay = ReplayFlow::ConfirmId(t);
        self.open_input(InputKind::ConfirmId, "");
    }

    pub(super) fn confirm_id(&mut self, text: &str) {
        let ReplayFlow::ConfirmId(t) = std::mem::take(&mut self.replay) else {
            return;
        };
        let typed = text.trim();
        if !typed.is_empty() && (typed == short_id(&t.saga_id) || typed == t.saga_id) {
            self.replay = ReplayFlow::Reason(t);
            self.info("reason for the replay log (optional), Enter starts the replay");
            self.open_input(InputKind::Reason, "");
        } else {
            let want = short_id(&t.saga_id).to_string();
            self.error(format!("{typed:?} is not {want}: nothing was replayed"));
        }
    }

    pub(super) fn start_replay(&mut self, reason: &str) {
        let ReplayFlow::Reason(t) = std::mem::take(&mut self.replay) else {
            return;
        };
        self.replay = ReplayFlow::Running;
        // The prompts' messages are answered: the panel says what happens.
        self.message = None;
        self.drafts.remove(&t.saga_id);
        self.editor = None;
        self.panel = Some(Panel {
            title: format!(
                " Replay {} {} from {} ",
                t.saga_name,
                short_id(&t.saga_id),
                t.spec.from_step
            ),
            lines: vec![(
                Tone::Run,
                format!(
                    "starting the replay of {} from {}…",
                    t.saga_id, t.spec.from_step
                ),
            )],
            running: true,
            new_saga: None,
            scroll: 0,
            replay_offer: false,
        });
        let reason = reason.trim();
        let reason = (!reason.is_empty()).then(|| reason.to_string());
        self.ask(|id| Request::Replay {
            id,
            saga_id: t.saga_id,
            saga_name: t.saga_name,
            spec: t.spec,
            reason,
        });
    }

    /// The marked sagas in list order, with their names.
    fn marked_targets(&self) -> Vec<BatchTarget> {
        self.list
            .sagas
            .iter()
            .filter(|s| self.marked.contains(&s.saga_id))
            .map(|s| (s.saga_id.clone(), Some(s.saga_name.clone())))
            .collect()
    }

    pub(super) fn batch(&mut self, dry_run: bool) {
        let targets = self.marked_targets();
        if targets.is_empty() {
            self.error("mark sagas first (Space, or M for all that match the filter)");
            return;
        }
        if self.cfg.readonly {
            self.error(READONLY_REFUSAL);
            return;
        }
        if self.replay.running() {
            self.error("a replay is already running");
            return;
        }
        let spec = match self.batch_from.clone() {
            Some((saga_id, step)) => {
                let draft = self.drafts.get(&saga_id).cloned().unwrap_or_default();
                match editor::validate(&draft.lines.join("\n")) {
                    Ok(over) => ReplaySpec {
                        from_step: step,
                        context_override: over,
                        merge: draft.merge,
                        ..ReplaySpec::default()
                    },
                    Err(i) => {
                        self.error(format!(
                            "the override is not valid (line {}, column {}: {}); fix it in the editor (e)",
                            i.line, i.column, i.message
                        ));
                        return;
                    }
                }
            }
            None => match self.replay_spec() {
                Some(t) => t.spec,
                None => return,
            },
        };
        if dry_run {
            self.start_batch(targets, spec, true);
        } else {
            self.info(format!(
                "replay {} saga(s) from {}: type {} and Enter to confirm, Esc cancels",
                targets.len(),
                spec.from_step,
                targets.len()
            ));
            self.replay = ReplayFlow::ConfirmBatch { targets, spec };
            self.open_input(InputKind::ConfirmBatch, "");
        }
    }

    pub(super) fn confirm_batch(&mut self, text: &str) {
        let ReplayFlow::ConfirmBatch { targets, spec } = std::mem::take(&mut self.replay) else {
            return;
        };
        if text.trim() == targets.len().to_string() {
            self.start_batch(targets, spec, false);
        } else {
            self.error(format!(
                "{:?} is not {}: nothing was replayed",
                text.trim(),
                targets.len()
            ));
        }
    }

    fn start_batch(&mut self, targets: Vec<BatchTarget>, spec: ReplaySpec, dry_run: bool) {
        self.replay = ReplayFlow::Running;
        self.panel = Some(Panel {
            title: format!(
                " Batch {} · {} saga(s) from {} · merge {} ",
                if dry_run { "dry run" } else { "replay" },
                targets.len(),
                spec.from_step,
                spec.merge.as_str()
            ),
            lines: vec![(
                Tone::Run,
                format!(
                    "{} saga(s), override keys: {}",
                    targets.len(),
                    spec.context_override.len()
                ),
            )],
            running: true,
            new_saga: None,
            scroll: 0,
            replay_offer: false,
        });
        self.ask(|id| Request::Batch {
            id,
            targets,
            spec,
            dry_run,
        });
    }

    pub(super) fn on_panel_key(&mut self, k: KeyEvent) {
        let key = Key::from_event(&k);
        let cmd = self.cfg.keymap.lookup(key, &[Scope::Global]);
        let Some(p) = self.panel.as_mut() else { return };
        // While a replay runs the panes underneath keep working (scrub,
        // switch sagas); only Esc is kept by the panel.
        if p.running && cmd != Some(Cmd::Back) {
            self.message = None;
            if let Some(cmd) = self.cfg.keymap.lookup(key, self.scopes()) {
                if !matches!(cmd, Cmd::Replay | Cmd::DryRun | Cmd::Edit) {
                    self.run(cmd);
                }
            }
            return;
        }
        match (cmd, k.code) {
            (Some(Cmd::Back | Cmd::Quit), _) => {
                if p.running {
                    let done = p.lines.iter().filter(|(t, _)| *t == Tone::Ok).count();
                    self.info(format!(
                        "the replay is still running and cannot be stopped midway: {done} step(s) finished so far, listed above"
                    ));
                } else {
                    self.panel = None;
                }
            }
            (Some(Cmd::Replay), _) if p.replay_offer => {
                // The plan's own offer: the same saga and step, for real.
                self.panel = None;
                self.run(Cmd::Replay);
            }
            (_, KeyCode::Enter) => {
                if let Some(id) = p.new_saga.clone() {
                    self.panel = None;
                    self.open_by_id(id);
                }
            }
            (_, KeyCode::Char('j') | KeyCode::Down) => p.scroll += 1,
            (_, KeyCode::Char('k') | KeyCode::Up) => p.scroll = p.scroll.saturating_sub(1),
            _ => {}
        }
    }

    /// Leaves a confirmation prompt without replaying.
    pub(super) fn cancel_replay(&mut self) {
        self.replay = ReplayFlow::Idle;
        self.info("replay cancelled before it started: nothing has run and nothing was written");
    }

    pub(super) fn on_plan(&mut self, result: JobResult<ReplayPlan>) {
        match result {
            Ok(plan) => {
                // "planning a replay…" is answered by the panel.
                self.message = None;
                self.panel = Some(plan_panel(&plan));
            }
            Err(e) => self.error(format!("dry run failed: {}", e.message)),
        }
    }

    pub(super) fn on_replay_event(&mut self, event: &crate::engine::Event) {
        if let Some(p) = self.panel.as_mut() {
            p.lines.push(event_line(event));
        }
    }

    pub(super) fn on_replayed(&mut self, result: JobResult<ReplayReport>) {
        self.replay = ReplayFlow::Idle;
        let mut lines = Vec::new();
        let mut new_saga = None;
        match result {
            Ok(report) => {
                let status = report
                    .outcome
                    .as_ref()
                    .map_or("unknown".to_string(), |o| o.status.as_str().to_string());
                let tone = if report.succeeded() {
                    Tone::Ok
                } else {
                    Tone::Bad
                };
                lines.push((Tone::Text, String::new()));
                lines.push((
                    tone,
                    format!(
                        "replay {}: new saga {} is {status}",
                        report.log.replay_status.as_str(),
                        report.log.new_saga_id
                    ),
                ));
                if let Some(e) = &report.log.error_message {
                    lines.push((Tone::Bad, format!("error: {e}")));
                }
                lines.push((Tone::Dim, "Enter opens the new saga · Esc closes".into()));
                new_saga = Some(report.log.new_saga_id.clone());
                // The original's replay log and the list now have the new run.
                self.detail.replays_for = None;
                self.request_replays();
                self.reload_list();
            }
            Err(e) => {
                lines.push((Tone::Bad, format!("the replay did not run: {}", e.message)));
                lines.push((
                    Tone::Dim,
                    "nothing was executed and no saga was created · Esc closes".into(),
                ));
            }
        }
        if let Some(p) = self.panel.as_mut() {
            p.running = false;
            p.new_saga = new_saga;
            p.lines.extend(lines);
        }
    }

    pub(super) fn on_batch_item(&mut self, item: &BatchItem) {
        use crate::replay::batch::ItemResult;
        let tone = match item.result {
            ItemResult::Ok => Tone::Ok,
            ItemResult::Skipped => Tone::Dim,
            ItemResult::Locked | ItemResult::Abandoned => Tone::Warn,
            ItemResult::Failed | ItemResult::Error => Tone::Bad,
        };
        let mut text = format!(
            "  {:<10} {}",
            format!("{:?}", item.result).to_lowercase(),
            short_id(&item.saga_id)
        );
        if let Some(e) = &item.error {
            text.push_str(&format!(" {}: {e}", item.step.as_deref().unwrap_or("")));
        }
        if let Some(p) = self.panel.as_mut() {
            p.lines.push((tone, text));
        }
    }

    pub(super) fn on_batch_done(&mut self, summary: &BatchSummary) {
        self.replay = ReplayFlow::Idle;
        let mut lines = vec![
            (Tone::Text, String::new()),
            (
                if summary.has_problems() {
                    Tone::Bad
                } else {
                    Tone::Ok
                },
                format!(
                    "{} saga(s): ok {} · failed {} · skipped {} · locked {} · errors {}",
                    summary.total,
                    summary.ok,
                    summary.failed,
                    summary.skipped,
                    summary.locked,
                    summary.errors
                ),
            ),
        ];
        if !summary.failure_groups.is_empty() {
            lines.push((Tone::Text, "failures by step and error:".into()));
            for g in &summary.failure_groups {
                lines.push((
                    Tone::Bad,
                    format!("  {} × {}: {}", g.count, g.step, g.error),
                ));
            }
        }
        lines.push((
            Tone::Dim,
            if summary.dry_run {
                "dry run: nothing was executed · Esc closes"
            } else {
                "Esc closes"
            }
            .into(),
        ));
        if !summary.dry_run {
            self.reload_list();
        }
        if let Some(p) = self.panel.as_mut() {
            p.running = false;
            p.lines.extend(lines);
        }
    }
}

/// The dry-run plan as panel lines.
pub fn plan_panel(plan: &crate::replay::ReplayPlan) -> Panel {
    let mut lines = Vec::new();
    let head = if plan.is_ok() {
        (Tone::Ok, "plan OK: nothing has run".to_string())
    } else {
        (
            Tone::Bad,
            "plan has errors: a replay would not start".to_string(),
        )
    };
    lines.push(head);
    lines.push((
        Tone::Text,
        format!(
            "merge: {} · override keys: {}",
            plan.merge.as_str(),
            plan.context_override.len()
        ),
    ));
    if let Some(cp) = &plan.checkpoint {
        lines.push((Tone::Dim, format!("checkpoint: {}", cp.describe())));
    }
    lines.push((Tone::Text, String::new()));
    lines.push((Tone::Text, "steps:".into()));
    if plan.steps.is_empty() {
        for s in &plan.steps_skipped {
            lines.push((Tone::Dim, format!("  skip    {s}")));
        }
        for s in &plan.steps_to_run {
            lines.push((Tone::Run, format!("  run     {s}")));
        }
    }
    for s in &plan.steps {
        let why = if s.why.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.why)
        };
        let tone = match s.action {
            crate::replay::StepAction::Skip => Tone::Dim,
            crate::replay::StepAction::SkipCompensated => Tone::Warn,
            crate::replay::StepAction::Rerun | crate::replay::StepAction::Run => Tone::Run,
        };
        lines.push((tone, format!("  {:<8}{}{why}", s.action.label(), s.step)));
    }
    if !plan.compensations.is_empty() {
        lines.push((Tone::Text, "compensations that could fire:".into()));
        for s in &plan.compensations {
            lines.push((Tone::Warn, format!("  undo    {s}")));
        }
    }
    lines.push((Tone::Text, "context diff:".into()));
    if plan.diff.is_empty() {
        lines.push((Tone::Dim, "  (no change)".into()));
    }
    for c in &plan.diff {
        let text = match (&c.old, &c.new) {
            (Some(o), Some(n)) => format!("  ~ {}: {o} → {n}", c.path),
            (None, Some(n)) => format!("  + {}: {n}", c.path),
            (Some(o), None) => format!("  - {}: {o}", c.path),
            (None, None) => format!("    {}", c.path),
        };
        lines.push((Tone::Text, text));
    }
    for w in &plan.warnings {
        lines.push((Tone::Warn, format!("warning: {w}")));
    }
    for e in &plan.errors {
        lines.push((Tone::Bad, format!("error: {}", e.message)));
    }
    let replay_offer = plan.is_ok();
    lines.push((
        Tone::Dim,
        if replay_offer {
            "Esc closes · R replays for real"
        } else {
            "Esc closes"
        }
        .into(),
    ));
    Panel {
        title: format!(
            " Dry run · {} from {} ",
            short_id(&plan.original_saga_id),
            plan.from_step
        ),
        lines,
        running: false,
        new_saga: None,
        scroll: 0,
        replay_offer,
    }
}

/// One engine event as a progress line.
pub fn event_line(e: &crate::engine::Event) -> (Tone, String) {
    use crate::engine::Event;
    match e {
        Event::StepSkipped { step } => (Tone::Dim, format!("  skipped      {step}")),
        Event::StepStarted { step, attempt } => (
            Tone::Run,
            format!("  running      {step} (attempt {attempt})"),
        ),
        Event::StepCompleted { step } => (Tone::Ok, format!("  ok           {step}")),
        Event::StepFailed {
            step,
            attempt,
            error,
        } => (
            Tone::Bad,
            format!("  failed       {step} (attempt {attempt}): {error}"),
        ),
        Event::Compensating { step } => (Tone::Warn, format!("  compensating {step}")),
        Event::Compensated { step } => (Tone::Warn, format!("  compensated  {step}")),
        Event::CompensationFailed { step, error } => (
            Tone::Bad,
            format!("  compensation of {step} failed: {error}"),
        ),
        Event::SnapshotFailed { step, error } => (
            Tone::Warn,
            format!("  snapshot after {step} not saved: {error}"),
        ),
        Event::Progress { line } => (Tone::Text, format!("  │ {line}")),
    }
}
