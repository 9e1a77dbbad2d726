//! Replays from the TUI: the override editor, the dry-run plan, a replay
//! of the open saga and batch replays of marked sagas, as one state
//! machine ([`ReplayFlow`]). Every replay is planned first: a plan a guard
//! refuses (completed, replayed before, maybe still running) is shown with
//! the key that overrides that guard, and only a plan without errors is
//! offered for real. Batches start from a form ([`super::batch_form`]).

use crossterm::event::{KeyCode, KeyEvent};

use super::batch_form::BatchRun;
use super::guards::{allowed, guard_cmd, guard_of, overridden_flags, toggle, GUARDS};
use super::panels::{event_line, plan_panel_with_keys, wrap};
use super::{App, BatchTarget, InputKind, Panel, ReplayTarget, Tone};
use crate::model::short_id;
use crate::replay::batch::{BatchItem, BatchSummary};
use crate::replay::{Allow, PlanErrorKind, ReplayPlan, ReplayReport};
use crate::tui::editor::{self, Draft, Editor};
use crate::tui::keymap::{Cmd, Key, Scope, READONLY_REFUSAL};
use crate::tui::masking;
use crate::tui::messages::{JobResult, Request};

/// Where a replay is. One at a time: a second is refused while one is
/// asked for or running, so a target waiting for its confirmation and a
/// running replay cannot both exist.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ReplayFlow {
    /// Nothing asked for.
    #[default]
    Idle,
    /// `d` (or `R`, or a guard key in the plan) asked for this target's
    /// plan. `then_confirm` (`R`): a plan without errors goes straight to
    /// the confirmation, a refused one is shown. `logged`: the dry run is
    /// written to the replay log, as `d`'s is.
    Planning {
        target: ReplayTarget,
        then_confirm: bool,
        logged: bool,
    },
    /// The plan panel shows this target's plan: a guard key plans again
    /// with that guard overridden, `R` asks for the replay it shows (when
    /// the plan has no errors).
    Planned {
        target: ReplayTarget,
        ok: bool,
        logged: bool,
        /// The guards that refuse the plan.
        refused_by: Vec<PlanErrorKind>,
    },
    /// `R`: waiting for the saga's short id to be typed.
    ConfirmId(ReplayTarget),
    /// The id matched: waiting for the reason (Enter starts the replay).
    Reason(ReplayTarget),
    /// A batch's dry run runs (`running`) or its summary is shown: a guard
    /// key runs it again with that guard overridden, `B` goes on to the
    /// real batch with the same spec.
    BatchPlanned { run: BatchRun, running: bool },
    /// A batch replay of the marked sagas, waiting for their count to be
    /// typed.
    ConfirmBatch(BatchRun),
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
        matches!(
            self,
            ReplayFlow::Running | ReplayFlow::BatchPlanned { running: true, .. }
        )
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
        // A replay merges the override onto the real values: a masked
        // placeholder copied from a masked context is not one.
        let reveal_key = self.cfg.keymap.label(Cmd::Reveal);
        if let Some(why) = masking::masked_override_refusal(&over, Some(&reveal_key)) {
            self.error(why);
            return None;
        }
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
        self.plan(t, false, true);
    }

    /// Asks for a target's plan; the answer opens the plan panel (or, for
    /// `then_confirm`, the confirmation when nothing refuses the replay).
    fn plan(&mut self, target: ReplayTarget, then_confirm: bool, logged: bool) {
        let (saga_id, saga_name, spec) = (
            target.saga_id.clone(),
            target.saga_name.clone(),
            target.spec.clone(),
        );
        let revealed = self.is_revealed(&saga_id);
        self.replay = ReplayFlow::Planning {
            target,
            then_confirm,
            logged,
        };
        self.ask(|id| Request::DryRun {
            id,
            saga_id,
            saga_name,
            spec,
            log: logged,
            revealed,
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
        // The guards first: a refused replay shows its plan and the keys
        // that override it, and asks for no confirmation.
        self.info(format!(
            "checking the replay of {} {} from {}…",
            t.saga_name,
            short_id(&t.saga_id),
            t.spec.from_step
        ));
        self.plan(t, true, false);
    }

    /// The replay's plan has no errors: the confirmation prompt.
    fn ask_confirmation(&mut self, t: ReplayTarget) {
        let overridden = overridden_flags(&t.spec.allow);
        self.info(format!(
            "replay {} {} from {}{}: type {} and Enter to confirm, Esc cancels",
            t.saga_name,
            short_id(&t.saga_id),
            t.spec.from_step,
            if overridden.is_empty() {
                String::new()
            } else {
                format!(" ({overridden})")
            },
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
            lines: {
                let mut lines = vec![(
                    Tone::Run,
                    format!(
                        "starting the replay of {} from {}…",
                        t.saga_id, t.spec.from_step
                    ),
                )];
                let overridden = overridden_flags(&t.spec.allow);
                if !overridden.is_empty() {
                    lines.push((Tone::Warn, format!("guards overridden: {overridden}")));
                }
                lines
            },
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
    pub(super) fn marked_targets(&self) -> Vec<BatchTarget> {
        self.list
            .sagas
            .iter()
            .filter(|s| self.marked.contains(&s.saga_id))
            .map(|s| (s.saga_id.clone(), Some(s.saga_name.clone())))
            .collect()
    }

    /// `b` / `B`: the batch form (see [`super::batch_form`]).
    pub(super) fn batch(&mut self, real: bool) {
        if self.cfg.readonly {
            self.error(READONLY_REFUSAL);
            return;
        }
        self.open_batch_form(real);
    }

    pub(super) fn confirm_batch(&mut self, text: &str) {
        let ReplayFlow::ConfirmBatch(run) = std::mem::take(&mut self.replay) else {
            return;
        };
        if text.trim() == run.targets.len().to_string() {
            self.start_batch(run, false);
        } else {
            self.error(format!(
                "{:?} is not {}: nothing was replayed",
                text.trim(),
                run.targets.len()
            ));
        }
    }

    /// Runs a batch: its dry run (the summary then offers the guard keys
    /// and, for `B`, the real run) or, confirmed, the real run with the
    /// same spec.
    pub(super) fn start_batch(&mut self, run: BatchRun, dry_run: bool) {
        let spec = &run.spec;
        let mut lines = vec![(
            Tone::Text,
            format!(
                "{} saga(s) from {} · compensated steps: {}",
                run.targets.len(),
                spec.from_step,
                spec.compensated.as_str()
            ),
        )];
        // The sagas may be of several names: masked with every name's
        // patterns, as a replay log's override is.
        let mut shown = spec.context_override.clone();
        if let Some(sens) = &self.cfg.sensitive {
            crate::compliance::mask::mask_any_context(sens, &mut shown);
        }
        let over = serde_json::Value::Object(shown).to_string();
        for (i, part) in wrap(&format!("override: {over}"), 100)
            .into_iter()
            .enumerate()
        {
            lines.push((Tone::Text, if i == 0 { part } else { format!("  {part}") }));
        }
        lines.push((
            Tone::Text,
            format!("reason: {}", run.reason.as_deref().unwrap_or("(none)")),
        ));
        let overridden = overridden_flags(&spec.allow);
        if !overridden.is_empty() {
            lines.push((Tone::Warn, format!("guards overridden: {overridden}")));
        }
        self.panel = Some(Panel {
            title: format!(
                " Batch {} · {} saga(s) from {} · merge {} ",
                if dry_run { "dry run" } else { "replay" },
                run.targets.len(),
                spec.from_step,
                spec.merge.as_str()
            ),
            lines,
            running: true,
            new_saga: None,
            scroll: 0,
            replay_offer: false,
        });
        let (targets, spec, reason) = (run.targets.clone(), run.spec.clone(), run.reason.clone());
        self.replay = if dry_run {
            ReplayFlow::BatchPlanned { run, running: true }
        } else {
            ReplayFlow::Running
        };
        self.ask(|id| Request::Batch {
            id,
            targets,
            spec,
            dry_run,
            reason,
        });
    }

    /// A guard key in a plan or batch summary: that guard overridden (or
    /// no longer), and the plan made again.
    fn override_guard(&mut self, kind: PlanErrorKind) {
        let flag = kind.override_flag().unwrap_or_default();
        match std::mem::take(&mut self.replay) {
            ReplayFlow::Planned {
                mut target,
                ok,
                logged,
                refused_by,
            } => {
                if !refused_by.contains(&kind) && !allowed(&target.spec.allow, kind) {
                    self.replay = ReplayFlow::Planned {
                        target,
                        ok,
                        logged,
                        refused_by,
                    };
                    self.error(format!("this plan is not refused by the {flag} guard"));
                    return;
                }
                let on = toggle(&mut target.spec.allow, kind);
                self.info(format!(
                    "{} {flag}: planning again…",
                    if on {
                        "overriding"
                    } else {
                        "no longer overriding"
                    }
                ));
                self.plan(target, false, logged);
            }
            ReplayFlow::BatchPlanned {
                mut run,
                running: false,
            } => {
                let on = toggle(&mut run.spec.allow, kind);
                self.info(format!(
                    "{} {flag}: the dry run again…",
                    if on {
                        "overriding"
                    } else {
                        "no longer overriding"
                    }
                ));
                self.start_batch(run, true);
            }
            other => {
                self.replay = other;
                self.error("guard keys override a refused plan: open one with d, R, b or B");
            }
        }
    }

    /// The panel closed: a plan or batch summary it showed is let go.
    fn panel_closed(&mut self) {
        self.panel = None;
        if matches!(
            self.replay,
            ReplayFlow::Planned { .. } | ReplayFlow::BatchPlanned { running: false, .. }
        ) {
            self.replay = ReplayFlow::Idle;
        }
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
        let batch_replay =
            self.cfg.keymap.lookup(key, &[Scope::List]) == Some(Cmd::ListBatchReplay);
        match (cmd, k.code) {
            (Some(Cmd::Back | Cmd::Quit), _) => {
                if p.running {
                    let done = p.lines.iter().filter(|(t, _)| *t == Tone::Ok).count();
                    self.info(format!(
                        "the replay is still running and cannot be stopped midway: {done} step(s) finished so far, listed above"
                    ));
                } else {
                    self.panel_closed();
                }
            }
            (Some(c), _) if guard_of(c).is_some() => {
                if let Some(kind) = guard_of(c) {
                    self.override_guard(kind);
                }
            }
            (Some(Cmd::Replay), _) => match std::mem::take(&mut self.replay) {
                // The plan's own offer: the same saga, checkpoint, override
                // and overridden guards, for real.
                ReplayFlow::Planned {
                    target, ok: true, ..
                } => {
                    self.panel = None;
                    self.ask_confirmation(target);
                }
                other => {
                    let why = match &other {
                        ReplayFlow::Planned {
                            ok: false,
                            refused_by,
                            ..
                        } if !refused_by.is_empty() => Some(
                            "the plan is refused, so it cannot be replayed: press the key it names to override the guard, or close it (Esc)",
                        ),
                        ReplayFlow::Planned { ok: false, .. } => Some(
                            "the plan has errors, so it cannot be replayed: fix what it names, or close it (Esc)",
                        ),
                        _ => None,
                    };
                    self.replay = other;
                    if let Some(why) = why {
                        self.error(why);
                    }
                }
            },
            _ if batch_replay => match std::mem::take(&mut self.replay) {
                ReplayFlow::BatchPlanned {
                    run,
                    running: false,
                } => {
                    self.panel = None;
                    if run.real {
                        self.info(format!(
                            "replay {} saga(s) from {} as the dry run planned: type {} and Enter to confirm, Esc cancels",
                            run.targets.len(),
                            run.spec.from_step,
                            run.targets.len()
                        ));
                        self.replay = ReplayFlow::ConfirmBatch(run);
                        self.open_input(InputKind::ConfirmBatch, "");
                    } else {
                        self.reopen_batch_form(run);
                    }
                }
                other => self.replay = other,
            },
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
        let flow = std::mem::take(&mut self.replay);
        let ReplayFlow::Planning {
            target,
            then_confirm,
            logged,
        } = flow
        else {
            self.replay = flow;
            return;
        };
        match result {
            Ok(plan) if then_confirm && plan.is_ok() => self.ask_confirmation(target),
            Ok(plan) => {
                // "planning a replay…" is answered by the panel.
                self.message = None;
                if then_confirm {
                    let why = plan
                        .first_error()
                        .map_or("the plan has errors", |e| e.message.as_str());
                    self.error(format!("the replay is refused: {why}"));
                }
                let mut panel = plan_panel_with_keys(&plan, &self.cfg.keymap);
                let overridden = overridden_flags(&target.spec.allow);
                if !overridden.is_empty() {
                    panel
                        .lines
                        .insert(1, (Tone::Warn, format!("guards overridden: {overridden}")));
                }
                self.panel = Some(panel);
                self.replay = ReplayFlow::Planned {
                    target,
                    ok: plan.is_ok(),
                    logged,
                    refused_by: plan
                        .errors
                        .iter()
                        .filter(|e| e.kind.is_guard())
                        .map(|e| e.kind)
                        .collect(),
                };
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
        let dry = matches!(self.replay, ReplayFlow::BatchPlanned { .. });
        let word = match item.result {
            ItemResult::Skipped if dry => "would skip".to_string(),
            r => format!("{r:?}").to_lowercase(),
        };
        let mut text = format!("  {:<10} {}", word, short_id(&item.saga_id));
        match (&item.error, &item.step) {
            (Some(e), Some(step)) => text.push_str(&format!(" {step}: {e}")),
            (Some(e), None) => text.push_str(&format!(": {e}")),
            _ => {}
        }
        if let Some(p) = self.panel.as_mut() {
            p.lines.push((tone, text));
        }
    }

    pub(super) fn on_batch_done(&mut self, summary: &BatchSummary) {
        let planned = match std::mem::take(&mut self.replay) {
            ReplayFlow::BatchPlanned { run, .. } if summary.dry_run => Some(run),
            _ => None,
        };
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
        if let Some(run) = planned {
            let km = &self.cfg.keymap;
            if summary.skipped > 0 || run.spec.allow != Allow::default() {
                let keys: Vec<String> = GUARDS
                    .iter()
                    .filter_map(|k| {
                        let cmd = guard_cmd(*k)?;
                        Some(format!(
                            "{} {}{}",
                            km.label(cmd),
                            k.override_flag()?,
                            if allowed(&run.spec.allow, *k) {
                                " (on)"
                            } else {
                                ""
                            }
                        ))
                    })
                    .collect();
                lines.push((
                    Tone::Warn,
                    format!(
                        "skipped sagas were refused by a guard; to override one, dry-run again with: {}",
                        keys.join(" · ")
                    ),
                ));
            }
            let b = km.label(Cmd::ListBatchReplay);
            lines.push((
                Tone::Dim,
                if run.real {
                    format!(
                        "dry run: nothing was executed · {b} replays these {} saga(s) for real with this plan · Esc closes",
                        run.targets.len()
                    )
                } else {
                    format!(
                        "dry run: nothing was executed · {b} opens this batch as a replay (a reason is required) · Esc closes"
                    )
                },
            ));
            self.replay = ReplayFlow::BatchPlanned {
                run,
                running: false,
            };
        } else {
            lines.push((
                Tone::Dim,
                if summary.dry_run {
                    "dry run: nothing was executed · Esc closes"
                } else {
                    "Esc closes"
                }
                .into(),
            ));
        }
        if !summary.dry_run {
            self.reload_list();
        }
        if let Some(p) = self.panel.as_mut() {
            p.running = false;
            p.lines.extend(lines);
        }
    }
}
