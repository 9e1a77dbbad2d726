//! Keys: what each key does in each state (a popup, the editor, an input
//! line, help, the panes), the input lines and the command palette, and
//! [`App::run`], which carries out a named command.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Conn, InputKind, Mode, Pane, Pin, Sort, Tab};
use crate::model::short_id;
use crate::tui::keymap::{
    palette_candidates, Cmd, Key, Scope, READONLY_REFUSAL, READONLY_REVEAL_REFUSAL,
};

impl App {
    pub(super) fn scopes(&self) -> &'static [Scope] {
        match self.focus {
            Pane::List => &[Scope::List, Scope::Global],
            Pane::Timeline => &[Scope::Timeline, Scope::Global],
            Pane::Detail => &[Scope::Detail, Scope::Timeline, Scope::Global],
        }
    }

    pub(super) fn on_key(&mut self, k: KeyEvent) {
        if k.kind == crossterm::event::KeyEventKind::Release {
            return;
        }
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return;
        }
        if self.panel.is_some() && self.mode == Mode::Normal {
            self.on_panel_key(k);
            return;
        }
        if self.batch_form.is_some() && self.mode == Mode::Normal {
            self.on_batch_form_key(k);
            return;
        }
        if self.editor.is_some() && self.mode == Mode::Normal {
            self.on_editor_key(k);
            return;
        }
        if self.overview.is_some() && self.mode == Mode::Normal {
            self.on_overview_key(k);
            return;
        }
        match self.mode.clone() {
            Mode::Input {
                kind,
                text,
                cursor,
                completion,
            } => self.on_input_key(kind, text, cursor, completion, k),
            Mode::Help { scroll } => {
                let key = Key::from_event(&k);
                let cmd = self.cfg.keymap.lookup(key, &[Scope::Global]);
                match (cmd, k.code) {
                    (Some(Cmd::Quit | Cmd::Back | Cmd::Help), _) => self.mode = Mode::Normal,
                    (_, KeyCode::Char('j') | KeyCode::Down) => {
                        self.mode = Mode::Help { scroll: scroll + 1 }
                    }
                    (_, KeyCode::Char('k') | KeyCode::Up) => {
                        self.mode = Mode::Help {
                            scroll: scroll.saturating_sub(1),
                        }
                    }
                    (_, KeyCode::PageDown) => {
                        self.mode = Mode::Help {
                            scroll: scroll + 10,
                        }
                    }
                    (_, KeyCode::PageUp) => {
                        self.mode = Mode::Help {
                            scroll: scroll.saturating_sub(10),
                        }
                    }
                    _ => {}
                }
            }
            Mode::Normal => {
                self.message = None;
                let key = Key::from_event(&k);
                if let Some(cmd) = self.cfg.keymap.lookup(key, self.scopes()) {
                    self.run(cmd);
                }
            }
        }
    }

    fn on_input_key(
        &mut self,
        kind: InputKind,
        mut text: String,
        mut cursor: usize,
        completion: usize,
        k: KeyEvent,
    ) {
        match k.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                if matches!(
                    kind,
                    InputKind::ConfirmId | InputKind::Reason | InputKind::ConfirmBatch
                ) {
                    self.cancel_replay();
                }
                if kind == InputKind::RevealReason {
                    self.cancel_reveal();
                }
                // The filter was applied as it was typed: Esc puts back
                // the one there was before `/`.
                if kind == InputKind::Filter {
                    self.list.filter_error = None;
                    if let Some(before) = self.list.filter_before.take() {
                        self.filter_typed(&before);
                    }
                }
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.submit(kind, text);
            }
            KeyCode::Tab if kind == InputKind::Palette => {
                let cands = palette_candidates(&text);
                if let Some(c) = cands.get(completion % cands.len().max(1)) {
                    let rest = text.split_once(' ').map(|(_, r)| r.to_string());
                    // The space after the command: the argument comes next.
                    text = match rest {
                        Some(r) if !r.is_empty() => format!("{c} {r}"),
                        _ => format!("{c} "),
                    };
                    cursor = text.len();
                }
                self.mode = Mode::Input {
                    kind,
                    text,
                    cursor,
                    completion: completion + 1,
                };
            }
            _ => {
                let edited = super::line::edit(&mut text, &mut cursor, &k);
                if edited == super::line::Edited::No {
                    return;
                }
                if edited == super::line::Edited::Text && kind == InputKind::Filter {
                    self.filter_typed(&text);
                }
                self.mode = Mode::Input {
                    kind,
                    text,
                    cursor,
                    completion: if edited == super::line::Edited::Text {
                        0
                    } else {
                        completion
                    },
                };
            }
        }
    }

    fn submit(&mut self, kind: InputKind, text: String) {
        match kind {
            InputKind::Filter => {
                self.list.filter_before = None;
                // Typed and applied already; a query in error is said so.
                if let Some(e) = self.list.filter_error.take() {
                    self.error(format!("filter not applied: {e}"));
                } else {
                    self.filter_typed(&text);
                }
            }
            InputKind::Search => {
                let q = text.trim().to_string();
                self.detail.search = if q.is_empty() { None } else { Some(q) };
                if self.detail.search.is_some() {
                    self.search(true, true);
                }
            }
            InputKind::Palette => self.palette(&text),
            InputKind::ConfirmId => self.confirm_id(&text),
            InputKind::Reason => self.start_replay(&text),
            InputKind::ConfirmBatch => self.confirm_batch(&text),
            InputKind::RevealReason => self.reveal_with_reason(&text),
        }
    }

    fn palette(&mut self, text: &str) {
        let text = text.trim();
        let (head, rest) = text
            .split_once(' ')
            .map(|(h, r)| (h, r.trim()))
            .unwrap_or((text, ""));
        match head {
            "" => {}
            "at" => self.travel(rest),
            "saga" => self.open_by_id(rest.to_string()),
            "sort" => match rest {
                "time" => self.set_sort(Sort::Time),
                "name" => self.set_sort(Sort::Name),
                "status" => self.set_sort(Sort::Status),
                _ => self.error("sort by: time, name or status"),
            },
            "filter" => self.set_filter(rest),
            "export" => self.export(if rest.is_empty() {
                None
            } else {
                Some(PathBuf::from(rest))
            }),
            other => match Cmd::by_name(other) {
                Some(cmd) => self.run(cmd),
                None => self.error(format!(
                    "unknown command {other:?} (Tab completes; ? lists them)"
                )),
            },
        }
    }

    /// Runs a command.
    pub fn run(&mut self, cmd: Cmd) {
        if self.cfg.readonly && cmd.writes() {
            self.error(if cmd == Cmd::Reveal {
                READONLY_REVEAL_REFUSAL
            } else {
                READONLY_REFUSAL
            });
            return;
        }
        match cmd {
            Cmd::Quit => self.quit = true,
            Cmd::Back => {
                if self.focus == Pane::Detail && self.detail.search.is_some() {
                    self.detail.search = None;
                } else if self.focus == Pane::List && !self.list.filter_text.is_empty() {
                    self.set_filter("");
                } else if self.focus != Pane::List {
                    self.focus = Pane::List;
                }
            }
            Cmd::Help => self.mode = Mode::Help { scroll: 0 },
            Cmd::Palette => self.open_input(InputKind::Palette, ""),
            Cmd::FocusNext => {
                self.focus = match self.focus {
                    Pane::List => Pane::Timeline,
                    Pane::Timeline => Pane::Detail,
                    Pane::Detail => Pane::List,
                }
            }
            Cmd::FocusPrev => {
                self.focus = match self.focus {
                    Pane::List => Pane::Detail,
                    Pane::Timeline => Pane::List,
                    Pane::Detail => Pane::Timeline,
                }
            }
            Cmd::TabContext => self.set_tab(Tab::Context),
            Cmd::TabDiff => self.set_tab(Tab::Diff),
            Cmd::TabRaw => self.set_tab(Tab::Raw),
            Cmd::TabReplays => self.set_tab(Tab::Replays),
            Cmd::TimeTravel => self.open_input(InputKind::Palette, "at "),
            Cmd::Pin => {
                if let Some(t) = &self.timeline {
                    if let Some(m) = t.current() {
                        let label =
                            format!("{}#{} {}", short_id(&t.saga.saga_id), t.cursor, m.step_name);
                        self.pin = Some(Pin {
                            saga_id: t.saga.saga_id.clone(),
                            snapshot_id: m.snapshot_id.clone(),
                            label: label.clone(),
                        });
                        self.info(format!("pinned {label}: diffs now compare against it"));
                        self.follow_cursor();
                    }
                }
            }
            Cmd::Unpin => {
                if self.pin.take().is_some() {
                    self.info("unpinned: diffs compare against the previous snapshot");
                    self.follow_cursor();
                }
            }
            Cmd::LinkedSaga => self.linked_saga(),
            Cmd::Edit => self.open_editor(),
            Cmd::DryRun => self.dry_run(),
            Cmd::Replay => self.ask_replay(),
            Cmd::Reveal => self.toggle_reveal(),
            // No row is highlighted while the open saga is not listed:
            // marking would hit a saga the screen does not point at.
            Cmd::ListMark if self.timeline.is_some() && self.open_row().is_none() => self.error(
                "no saga highlighted: the open saga is not in this list (j/k picks one to mark)",
            ),
            Cmd::ListMark => {
                if let Some(s) = self.list.sagas.get(self.list.selected) {
                    let id = s.saga_id.clone();
                    if !self.marked.remove(&id) {
                        self.marked.insert(id);
                    }
                    self.list_move(1);
                }
            }
            Cmd::ListMarkAll => {
                let all: Vec<String> = self.list.sagas.iter().map(|s| s.saga_id.clone()).collect();
                if !all.is_empty() && all.iter().all(|id| self.marked.contains(id)) {
                    self.marked.clear();
                    self.info("unmarked all");
                } else {
                    self.marked.extend(all);
                    self.info(format!("{} saga(s) marked", self.marked.len()));
                }
            }
            Cmd::ListBatchDryRun => self.batch(false),
            Cmd::ListBatchReplay => self.batch(true),
            // Only meaningful inside the editor, which handles them itself.
            Cmd::EditorMerge | Cmd::EditorFull | Cmd::EditorDiscard | Cmd::EditorExternal => {
                self.info("open the override editor first (e)")
            }
            // Only meaningful in a plan popup, which handles them itself.
            Cmd::GuardAllowCompleted | Cmd::GuardAgain | Cmd::GuardForce => {
                self.info("guard keys override a refused plan: open one with d, R, b or B first")
            }
            Cmd::Export => self.export(None),
            Cmd::Overview => match self.overview {
                Some(_) => self.overview = None,
                None => self.open_overview(),
            },
            // Disconnected: retry now; reconnecting reloads everything.
            Cmd::Refresh if matches!(self.conn, Conn::Disconnected { .. }) => {
                self.info("retrying the connection…");
                self.check_health();
            }
            Cmd::Refresh => self.refresh(),
            Cmd::ListDown => self.list_move(1),
            Cmd::ListUp => self.list_move(-1),
            Cmd::ListPageDown => self.list_move(self.page() as i64),
            Cmd::ListPageUp => self.list_move(-(self.page() as i64)),
            Cmd::ListTop => self.list_move(i64::MIN / 2),
            Cmd::ListBottom => self.list_move(i64::MAX / 2),
            Cmd::ListOpen => {
                if let Some(s) = self.list.sagas.get(self.list.selected).cloned() {
                    if self.timeline.as_ref().map(|t| &t.saga.saga_id) != Some(&s.saga_id) {
                        self.open_saga(s);
                    }
                    self.focus = Pane::Timeline;
                }
            }
            Cmd::ListFilter => {
                let t = self.list.filter_text.clone();
                self.list.filter_before = Some(t.clone());
                self.list.filter_error = None;
                self.open_input(InputKind::Filter, &t)
            }
            Cmd::ListSort => {
                let next = match self.list.sort {
                    Sort::Time => Sort::Name,
                    Sort::Name => Sort::Status,
                    Sort::Status => Sort::Time,
                };
                self.set_sort(next);
            }
            Cmd::TimelineNext => self.scrub_by(1),
            Cmd::TimelinePrev => self.scrub_by(-1),
            Cmd::TimelinePageDown => self.scrub_by(self.page() as i64),
            Cmd::TimelinePageUp => self.scrub_by(-(self.page() as i64)),
            Cmd::TimelineFirst => self.scrub_to(0),
            Cmd::TimelineLast => self.scrub_to(usize::MAX),
            Cmd::TimelineNextEvent => self.scrub_event(true),
            Cmd::TimelinePrevEvent => self.scrub_event(false),
            Cmd::TimelineBack => self.focus = Pane::List,
            Cmd::TimelineFollow => self.toggle_follow(),
            Cmd::DetailDown => self.detail_move(1),
            Cmd::DetailUp => self.detail_move(-1),
            Cmd::DetailPageDown => self.detail_move(self.page() as i64),
            Cmd::DetailPageUp => self.detail_move(-(self.page() as i64)),
            Cmd::DetailTop => self.detail_move(i64::MIN / 2),
            Cmd::DetailBottom => self.detail_move(i64::MAX / 2),
            Cmd::DetailFold => self.fold(),
            Cmd::DetailFoldAll => self.fold_all(),
            Cmd::DetailSearch => {
                let q = self.detail.search.clone().unwrap_or_default();
                self.open_input(InputKind::Search, &q)
            }
            Cmd::DetailSearchNext => self.search(true, false),
            Cmd::DetailSearchPrev => self.search(false, false),
            Cmd::DetailWhereChanged => self.where_changed(false),
            Cmd::DetailNextChange => self.where_changed(true),
            Cmd::DetailOpen => {
                if self.detail.tab == Tab::Replays {
                    let target = self
                        .detail
                        .replays
                        .as_ref()
                        .and_then(|r| r.replays.get(self.detail.replay_selected))
                        .map(|r| r.new_saga_id.clone());
                    match target {
                        Some(id) => self.open_by_id(id),
                        None => self.error("no replay selected"),
                    }
                }
            }
        }
    }

    pub(super) fn open_input(&mut self, kind: InputKind, text: &str) {
        self.mode = Mode::Input {
            kind,
            text: text.to_string(),
            cursor: text.len(),
            completion: 0,
        };
    }
}
