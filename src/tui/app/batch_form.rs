//! The batch form that `b` and `B` open: what a batch replays is typed
//! and seen before anything is planned — the step to start from, the
//! override in full, what to do with steps the original runs compensated,
//! and the reason for the replay log (required for a real batch). Enter
//! validates it and runs the batch's dry run; the real batch, if asked
//! for, uses exactly the spec that dry run used.

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, BatchTarget};
use crate::replay::{Allow, Compensated, MergeMode, ReplaySpec};
use crate::tui::editor;
use crate::tui::keymap::{Cmd, Key, Scope};

/// The form's fields, in the order Tab visits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormField {
    Step,
    Override,
    Compensated,
    Reason,
}

impl FormField {
    const ORDER: [FormField; 4] = [
        FormField::Step,
        FormField::Override,
        FormField::Compensated,
        FormField::Reason,
    ];

    fn moved(self, by: isize) -> FormField {
        let i = Self::ORDER.iter().position(|f| *f == self).unwrap_or(0) as isize;
        let n = Self::ORDER.len() as isize;
        Self::ORDER[((i + by).rem_euclid(n)) as usize]
    }
}

/// An open batch form.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchForm {
    /// `B` (a real batch, after its dry run) or `b` (the dry run only).
    pub real: bool,
    /// The marked sagas, captured when the form opened.
    pub targets: Vec<BatchTarget>,
    pub field: FormField,
    /// The step every saga is replayed from.
    pub step: String,
    /// The override as JSON text (one line; shown wrapped, in full).
    pub over: String,
    pub merge: MergeMode,
    pub compensated: Compensated,
    /// Why: recorded as each replay's reason.
    pub reason: String,
    /// Guards overridden in an earlier dry run of this batch.
    pub allow: Allow,
    /// Where typing goes in the focused text field (a byte offset).
    pub cursor: usize,
    /// Why Enter did not start the dry run.
    pub problem: Option<String>,
}

impl BatchForm {
    /// The focused text field, if the focused field is text.
    fn text_mut(&mut self) -> Option<&mut String> {
        match self.field {
            FormField::Step => Some(&mut self.step),
            FormField::Override => Some(&mut self.over),
            FormField::Reason => Some(&mut self.reason),
            FormField::Compensated => None,
        }
    }

    fn focus(&mut self, field: FormField) {
        self.field = field;
        self.cursor = self.text_mut().map_or(0, |t| t.len());
    }

    /// The override as a JSON object, or where it is not one.
    pub fn parsed_override(&self) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        editor::validate(&self.over).map_err(|i| {
            format!(
                "the override is not valid JSON (column {}: {})",
                i.column, i.message
            )
        })
    }

    /// The batch this form describes, or the first thing wrong with it.
    pub fn to_run(&self) -> Result<BatchRun, String> {
        let step = self.step.trim();
        if step.is_empty() {
            return Err("type the step every saga is replayed from".into());
        }
        let over = self.parsed_override()?;
        if let Some(why) = crate::tui::masking::masked_override_refusal(&over, None) {
            return Err(why);
        }
        let reason = self.reason.trim();
        if self.real && reason.is_empty() {
            return Err(
                "a batch replay needs a reason (it is written to each saga's replay log)".into(),
            );
        }
        Ok(BatchRun {
            targets: self.targets.clone(),
            spec: ReplaySpec {
                from_step: step.to_string(),
                context_override: over,
                merge: self.merge,
                compensated: self.compensated,
                allow: self.allow,
                ..ReplaySpec::default()
            },
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            real: self.real,
        })
    }
}

/// A batch as planned: the sagas, one spec for all of them, and the
/// reason. Its dry run and its real run use this same value, so they
/// skip the same sagas.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRun {
    pub targets: Vec<BatchTarget>,
    pub spec: ReplaySpec,
    pub reason: Option<String>,
    /// Asked for with `B`: after the dry run, `B` confirms the real one.
    pub real: bool,
}

/// An override draft as one line of JSON: compact when it parses, the
/// lines joined otherwise (so what is wrong with it stays visible).
fn one_line(lines: &[String]) -> String {
    let text = lines.join("\n");
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => v.to_string(),
        Err(_) => lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "),
    }
}

impl App {
    /// `b` / `B`: opens the form on the marked sagas, prefilled with the
    /// step and the draft the override was last edited for (else the
    /// previewed saga's cursor and draft).
    pub(super) fn open_batch_form(&mut self, real: bool) {
        let targets = self.marked_targets();
        if targets.is_empty() {
            self.error("mark sagas first (Space, or M for all that match the filter)");
            return;
        }
        if self.replay.running() {
            self.error("a replay is already running");
            return;
        }
        let cursor_step = self.timeline.as_ref().and_then(|t| {
            t.current()
                .map(|m| (t.saga.saga_id.clone(), m.step_name.clone()))
        });
        // The step the override was last edited at (`e`), else the
        // previewed saga's cursor: moving through the list to mark sagas
        // previews others, whose cursors say nothing about the fix.
        let (draft_saga, step) = match (&self.batch_from, &cursor_step) {
            (Some((saga, step)), _) | (None, Some((saga, step))) => {
                (Some(saga.clone()), step.clone())
            }
            (None, None) => (None, String::new()),
        };
        let draft = draft_saga
            .and_then(|s| self.drafts.get(&s).cloned())
            .or_else(|| {
                self.batch_from
                    .as_ref()
                    .and_then(|(s, _)| self.drafts.get(s).cloned())
            })
            .unwrap_or_default();
        let mut form = BatchForm {
            real,
            targets,
            field: FormField::Step,
            step,
            over: one_line(&draft.lines),
            merge: draft.merge,
            compensated: Compensated::default(),
            reason: String::new(),
            allow: Allow::default(),
            cursor: 0,
            problem: None,
        };
        form.focus(FormField::Step);
        self.message = None;
        self.batch_form = Some(form);
    }

    /// Reopens the form with a planned batch's values, as a real batch
    /// (`B` after a `b` dry run).
    pub(super) fn reopen_batch_form(&mut self, run: BatchRun) {
        let mut form = BatchForm {
            real: true,
            targets: run.targets,
            field: FormField::Reason,
            step: run.spec.from_step,
            over: serde_json::Value::Object(run.spec.context_override).to_string(),
            merge: run.spec.merge,
            compensated: run.spec.compensated,
            reason: run.reason.unwrap_or_default(),
            allow: run.spec.allow,
            cursor: 0,
            problem: None,
        };
        form.focus(FormField::Reason);
        self.batch_form = Some(form);
    }

    pub(super) fn on_batch_form_key(&mut self, k: KeyEvent) {
        let key = Key::from_event(&k);
        let cmd = self.cfg.keymap.lookup(key, &[Scope::Global]);
        let Some(form) = self.batch_form.as_mut() else {
            return;
        };
        match (cmd, k.code) {
            (Some(Cmd::Back), _) => {
                self.batch_form = None;
                self.info("batch cancelled before it started: nothing has run");
            }
            (_, KeyCode::Enter) => match form.to_run() {
                Ok(run) => {
                    self.batch_form = None;
                    self.start_batch(run, true);
                }
                Err(why) => form.problem = Some(why),
            },
            (Some(Cmd::FocusNext), _) | (_, KeyCode::Down) => form.focus(form.field.moved(1)),
            (Some(Cmd::FocusPrev), _) | (_, KeyCode::Up) => form.focus(form.field.moved(-1)),
            (Some(Cmd::EditorMerge), _) => {
                form.merge = match form.merge {
                    MergeMode::Shallow => MergeMode::Patch,
                    MergeMode::Patch => MergeMode::Shallow,
                }
            }
            (_, KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right)
                if form.field == FormField::Compensated =>
            {
                form.compensated = match form.compensated {
                    Compensated::Rerun => Compensated::Skip,
                    Compensated::Skip => Compensated::Rerun,
                }
            }
            _ => {
                let mut cursor = form.cursor;
                if let Some(text) = form.text_mut() {
                    if super::line::edit(text, &mut cursor, &k) == super::line::Edited::Text {
                        form.problem = None;
                    }
                    form.cursor = cursor;
                }
            }
        }
    }
}
