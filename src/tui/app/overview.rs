//! The overview page (`O`, `:overview`): real totals by status, the
//! newest failures grouped by step and error, failures per hour over the
//! last day. Computed in the background from the store's counts, so the
//! page opens at once and fills in; Enter on a group lists its sagas.

use std::sync::Arc;

use crossterm::event::KeyEvent;

use super::{App, Load, Mode, Pane};
use crate::replay::failures::{failure_statuses, Overview};
use crate::tui::keymap::{Cmd, Key, Scope};
use crate::tui::messages::{JobResult, Request};

/// The overview page while it is open.
#[derive(Debug, Clone)]
pub struct OverviewPage {
    /// The last result (kept while a recount runs).
    pub data: Option<Arc<Overview>>,
    pub load: Load,
    /// The selected failure group.
    pub selected: usize,
}

impl App {
    /// Opens the overview (or recounts it) and asks for fresh numbers.
    pub(super) fn open_overview(&mut self) {
        let data = self.overview.take().and_then(|p| p.data);
        self.overview = Some(OverviewPage {
            data,
            load: Load::Loading,
            selected: 0,
        });
        let now = self.now;
        self.ask(|id| Request::Overview { id, now });
    }

    pub(super) fn on_overview(&mut self, result: JobResult<Arc<Overview>>) {
        let load = match result {
            Ok(o) => {
                if let Some(p) = self.overview.as_mut() {
                    p.selected = p.selected.min(o.groups.len().saturating_sub(1));
                    p.data = Some(o);
                }
                Load::Idle
            }
            Err(e) => self.load_failed(e),
        };
        if let Some(p) = self.overview.as_mut() {
            p.load = load;
        }
    }

    /// Keys while the page is open: the list's keys move between groups
    /// and open one; the page's own key, Esc and q close it.
    pub(super) fn on_overview_key(&mut self, k: KeyEvent) {
        self.message = None;
        let key = Key::from_event(&k);
        let Some(cmd) = self.cfg.keymap.lookup(key, &[Scope::List, Scope::Global]) else {
            return;
        };
        let groups = self
            .overview
            .as_ref()
            .and_then(|p| p.data.as_ref())
            .map_or(0, |d| d.groups.len());
        let move_to = |p: &mut OverviewPage, by: i64| {
            let last = groups.saturating_sub(1) as i64;
            p.selected = (p.selected as i64 + by).clamp(0, last.max(0)) as usize;
        };
        match cmd {
            Cmd::Quit | Cmd::Back | Cmd::Overview => self.overview = None,
            Cmd::Refresh => self.open_overview(),
            Cmd::Help => self.mode = Mode::Help { scroll: 0 },
            Cmd::Palette => self.open_input(super::InputKind::Palette, ""),
            Cmd::ListOpen => self.open_group(),
            Cmd::ListDown | Cmd::ListUp | Cmd::ListTop | Cmd::ListBottom => {
                let by = match cmd {
                    Cmd::ListDown => 1,
                    Cmd::ListUp => -1,
                    Cmd::ListTop => i64::MIN / 2,
                    _ => i64::MAX / 2,
                };
                if let Some(p) = self.overview.as_mut() {
                    move_to(p, by);
                }
            }
            Cmd::ListPageDown | Cmd::ListPageUp => {
                let page = self.page() as i64;
                if let Some(p) = self.overview.as_mut() {
                    move_to(
                        p,
                        if cmd == Cmd::ListPageDown {
                            page
                        } else {
                            -page
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Shows the selected group's sagas in the list (the newest first, as
    /// the overview read them); the filter line holds the step and the
    /// failure statuses, so Esc or `/` go on from there.
    fn open_group(&mut self) {
        let Some(p) = &self.overview else {
            return;
        };
        let Some(g) = p.data.as_ref().and_then(|d| d.groups.get(p.selected)) else {
            self.error("no failure group selected");
            return;
        };
        let g = g.clone();
        self.overview = None;
        let failing = failure_statuses();
        let statuses: Vec<&str> = failing.iter().map(|s| s.as_str()).collect();
        let statuses = statuses.join(",");
        self.list.filter_text = format!("status:{statuses} step:{}", g.step);
        self.list.filter = crate::store::SagaFilter::parse_query(&self.list.filter_text, self.now)
            .unwrap_or_default();
        self.list.filter_error = None;
        self.list.group = Some(format!(
            "failed at {}: {}",
            g.step,
            if g.key.is_empty() {
                "(no error recorded)"
            } else {
                g.key.as_str()
            }
        ));
        self.list.sagas = g.sagas;
        self.list.next = None;
        self.list.load = Load::Idle;
        self.list.selected = 0;
        self.list.offset = 0;
        self.list.bad = 0;
        self.focus = Pane::List;
        self.apply_sort(None);
        if let Some(first) = self.list.sagas.first().cloned() {
            if self.timeline.as_ref().map(|t| &t.saga.saga_id) != Some(&first.saga_id) {
                self.open_saga(first);
            }
        }
        self.info(format!(
            "{} saga(s) of this group; Esc shows every saga again",
            self.list.sagas.len()
        ));
    }
}
