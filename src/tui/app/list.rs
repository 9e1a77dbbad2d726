//! The saga list: pages from the store, sorting, the filter (applied as
//! it is typed), moving the selection. The saga in hand is one: the list
//! highlights the open saga, and when that saga is not listed the list
//! says so instead of highlighting another.

use super::{App, Load, Pane, Sort, LIST_PAGE, LIST_PREFETCH};
use crate::store::{SagaFilter, SagaPage};
use crate::tui::layout;
use crate::tui::messages::{JobResult, Request, Slot};
use ratatui::layout::Rect;

impl App {
    pub(super) fn reload_list(&mut self) {
        self.list.group = None;
        self.list.load = Load::Loading;
        self.list_appending = false;
        // The first page brings whatever was waiting above the list, and
        // a live read under the old filter must not add to it.
        self.list.incoming.clear();
        self.list.incoming_more = false;
        self.tickets.forget(Slot::LiveList);
        self.in_flight.remove(&Slot::LiveList);
        self.list.filter_queued = false;
        let filter = self.list.filter.clone();
        self.ask(|id| Request::SagaPage {
            id,
            filter,
            after: None,
            limit: LIST_PAGE,
        });
        // The title's total: the store's count, in the background (a page
        // of 100 says nothing about 20,000).
        self.list.total = None;
        let filter = self.list.filter.clone();
        self.ask(|id| Request::CountSagas { id, filter });
    }

    fn more_list(&mut self) {
        if self.list.load == Load::Loading {
            return;
        }
        if let Some(after) = self.list.next.clone() {
            self.list.load = Load::Loading;
            self.list_appending = true;
            let filter = self.list.filter.clone();
            self.ask(|id| Request::SagaPage {
                id,
                filter,
                after: Some(after),
                limit: LIST_PAGE,
            });
        }
    }

    pub(super) fn apply_sort(&mut self, keep: Option<String>) {
        match self.list.sort {
            Sort::Time => self
                .list
                .sagas
                .sort_by(|a, b| (&b.last_at, &b.saga_id).cmp(&(&a.last_at, &a.saga_id))),
            Sort::Name => self
                .list
                .sagas
                .sort_by(|a, b| (&a.saga_name, &b.last_at).cmp(&(&b.saga_name, &a.last_at))),
            Sort::Status => self.list.sagas.sort_by(|a, b| {
                (!a.latest_status.is_failure(), &a.latest_status, &b.last_at).cmp(&(
                    !b.latest_status.is_failure(),
                    &b.latest_status,
                    &a.last_at,
                ))
            }),
        }
        if let Some(id) = keep {
            if let Some(i) = self.list.sagas.iter().position(|s| s.saga_id == id) {
                self.list.selected = i;
            }
        }
        self.keep_visible();
    }

    /// Parses the filter syntax into a store filter and reloads; a query
    /// that does not parse changes nothing and says why.
    pub fn set_filter(&mut self, text: &str) {
        match SagaFilter::parse_query(text, self.now) {
            Ok(f) => {
                self.list.filter_error = None;
                self.list.filter_text = text.trim().to_string();
                self.list.filter = f;
                self.reload_list();
            }
            Err(e) => {
                self.list.filter_error = None;
                self.error(format!("filter not applied: {e}"));
            }
        }
    }

    /// The filter line changed: a query that parses is applied at once;
    /// one that does not keeps the last good filter and shows why. While a
    /// page is loading the new filter waits for it (one store query at a
    /// time however fast the typing; the newest text wins).
    pub(super) fn filter_typed(&mut self, text: &str) {
        match SagaFilter::parse_query(text, self.now) {
            Ok(f) => {
                self.list.filter_error = None;
                self.list.filter_text = text.trim().to_string();
                if f != self.list.filter {
                    self.list.filter = f;
                    if self.list.load == Load::Loading {
                        self.list.filter_queued = true;
                    } else {
                        self.reload_list();
                    }
                }
            }
            Err(e) => self.list.filter_error = Some(e.to_string()),
        }
    }

    /// The open saga's row in the loaded list, if it is listed.
    pub fn open_row(&self) -> Option<usize> {
        let t = self.timeline.as_ref()?;
        self.list
            .sagas
            .iter()
            .position(|s| s.saga_id == t.saga.saga_id)
    }

    /// Moves the list selection onto the open saga when it is listed.
    pub(super) fn select_open_saga(&mut self) {
        if let Some(i) = self.open_row() {
            self.list.selected = i;
            self.keep_visible();
        }
    }

    pub(super) fn set_sort(&mut self, s: Sort) {
        self.list.sort = s;
        let keep = self
            .list
            .sagas
            .get(self.list.selected)
            .map(|s| s.saga_id.clone());
        self.apply_sort(keep);
        self.info(format!(
            "sorted by {} (loaded sagas; the store pages newest first)",
            s.label()
        ));
    }

    pub(super) fn list_move(&mut self, by: i64) {
        // Going to the top takes in the sagas waiting above the list.
        if by < 0 && self.list.selected as i64 + by <= 0 && self.has_incoming() {
            self.take_in();
        }
        let n = self.list.sagas.len();
        if n == 0 {
            return;
        }
        let i = (self.list.selected as i64 + by).clamp(0, n as i64 - 1) as usize;
        self.list.selected = i;
        if i + LIST_PREFETCH >= n {
            self.more_list();
        }
        self.keep_visible();
        // The timeline follows the selection, like lazygit's panes.
        if let Some(s) = self.list.sagas.get(i).cloned() {
            if self.timeline.as_ref().map(|t| &t.saga.saga_id) != Some(&s.saga_id) {
                self.open_saga(s);
            }
        }
    }

    /// Lines shown in a pane body (for paging and keeping the cursor in view).
    pub(super) fn page(&self) -> usize {
        let areas = layout::layout(Rect::new(0, 0, self.size.0, self.size.1), self.focus);
        let h = match self.focus {
            Pane::List => areas.list.map(|r| r.height),
            Pane::Timeline => areas.timeline.map(|r| r.height),
            Pane::Detail => areas.detail.map(|r| r.height),
        };
        (h.unwrap_or(10) as usize).saturating_sub(4).max(1)
    }

    /// A page of sagas: replaces the list (a reload) or extends it.
    pub(super) fn on_saga_page(&mut self, append: bool, result: JobResult<SagaPage>) {
        match result {
            // Typed while this page loaded: the page is for an older filter.
            Ok(_) if self.list.filter_queued => self.reload_list(),
            Ok(page) => {
                let keep = if append {
                    self.list
                        .sagas
                        .get(self.list.selected)
                        .map(|s| s.saga_id.clone())
                } else {
                    self.timeline.as_ref().map(|t| t.saga.saga_id.clone())
                };
                if !append {
                    self.list.sagas.clear();
                    self.list.selected = 0;
                    self.list.offset = 0;
                    self.list.bad = 0;
                }
                self.list.bad += page.bad.len();
                self.list.sagas.extend(page.sagas);
                self.list.next = page.next;
                self.list.load = Load::Idle;
                if let Some(w) = page.index_warning {
                    self.error(w);
                }
                if self.list.next.is_none() {
                    self.list.total = Some(self.list.sagas.len() as u64);
                }
                self.apply_sort(keep);
                // Browsing the list, the preview is the highlighted saga: a
                // filter that drops the open saga moves it to the first
                // match (or closes it when nothing matches). From the
                // timeline or detail the open saga stays, and the list
                // title names it.
                let listed = self.open_row().is_some();
                if !append && !listed && (self.timeline.is_none() || self.focus == Pane::List) {
                    match self.list.sagas.first().cloned() {
                        Some(first) => self.open_saga(first),
                        None => self.close_saga(),
                    }
                }
            }
            Err(e) => {
                self.list.filter_queued = false;
                if !append {
                    self.list.total = None;
                }
                self.list.load = self.load_failed(e);
            }
        }
    }
}
