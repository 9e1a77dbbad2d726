//! Live: new sagas and snapshots appear without a key. At the configured
//! interval (on the clock's tick) the store gets two keyset reads, never a
//! rescan: the sagas active since the newest one known (the list's filter
//! kept), and the open saga's snapshots after the newest one shown.
//!
//! Sagas already listed update in place; new ones wait above the list
//! behind an "N new" marker, so the selection never moves under the user,
//! until the selection goes to the top (`g`, `k` or the wheel at the top).
//! New snapshots join the open timeline; `f` keeps its cursor on the
//! newest.

use std::collections::HashSet;

use super::{App, Conn, Load};
use crate::model::{SagaSummary, Timestamp};
use crate::store::{SagaPage, SnapshotCursor};
use crate::tui::messages::{JobResult, Mark, Request, Slot};

/// How many of the newest timeline rows a live read is checked against
/// (two timeline pages).
const RECENT_ROWS: usize = 128;

impl App {
    /// On the clock: asks the store what is new, at most once per interval
    /// and never while the last ask is unanswered.
    pub(super) fn poll_live(&mut self) {
        let Some(every) = self.cfg.live else { return };
        if !matches!(self.conn, Conn::Connected { .. }) {
            return;
        }
        let every_us = every.as_micros().min(i64::MAX as u128) as i64;
        if self
            .last_live
            .is_some_and(|t| self.now.as_micros() - t.as_micros() < every_us)
        {
            return;
        }
        self.last_live = Some(self.now);
        if self.list.load != Load::Loading && !self.in_flight.contains(&Slot::LiveList) {
            let mut filter = self.list.filter.clone();
            if let Some(newest) = self.newest_known() {
                filter.since = Some(filter.since.map_or(newest, |s| s.max(newest)));
            }
            self.ask(|id| Request::LiveSagas {
                id,
                filter,
                limit: super::LIST_PAGE,
            });
        }
        let after = self.timeline.as_ref().and_then(|t| {
            if !t.complete || t.load == Load::Loading {
                return None;
            }
            let last = t.marks.iter().rev().find(|m| !m.is_unreadable())?;
            Some((t.saga.saga_id.clone(), last.cursor()))
        });
        if let Some((saga_id, after)) = after {
            if !self.in_flight.contains(&Slot::LiveTimeline) {
                self.ask(|id| Request::LiveTimeline { id, saga_id, after });
            }
        }
    }

    /// The newest activity among the sagas listed or waiting.
    fn newest_known(&self) -> Option<Timestamp> {
        self.list
            .sagas
            .iter()
            .chain(&self.list.incoming)
            .map(|s| s.last_at)
            .max()
    }

    /// Whether sagas are waiting above the list.
    pub fn has_incoming(&self) -> bool {
        !self.list.incoming.is_empty() || self.list.incoming_more
    }

    /// The marker above the list: `3 new`, `100+ new`.
    pub fn incoming_label(&self) -> Option<String> {
        if !self.has_incoming() {
            return None;
        }
        let more = if self.list.incoming_more { "+" } else { "" };
        Some(format!("{}{more} new", self.list.incoming.len()))
    }

    pub(super) fn on_live_sagas(&mut self, result: JobResult<SagaPage>) {
        let page = match result {
            Ok(p) => p,
            Err(e) => {
                if e.unreachable {
                    self.disconnected(e.message);
                }
                return;
            }
        };
        for s in page.sagas {
            if let Some(i) = self.list.sagas.iter().position(|x| x.saga_id == s.saga_id) {
                if self.list.sagas[i] != s {
                    self.saga_changed(&s);
                    self.list.sagas[i] = s;
                }
            } else if let Some(j) = self
                .list
                .incoming
                .iter()
                .position(|x| x.saga_id == s.saga_id)
            {
                self.list.incoming[j] = s;
            } else {
                self.list.incoming.push(s);
            }
        }
        if page.next.is_some() {
            self.list.incoming_more = true;
        }
        // Nothing listed: nothing to keep still, so they show at once.
        if self.list.sagas.is_empty() && self.has_incoming() {
            self.take_in();
            if let Some(first) = self.list.sagas.first().cloned() {
                if self.timeline.is_none() {
                    self.open_saga(first);
                }
            }
        }
    }

    /// The open saga's header follows its summary.
    fn saga_changed(&mut self, s: &SagaSummary) {
        if let Some(t) = self.timeline.as_mut() {
            if t.saga.saga_id == s.saga_id {
                t.saga = s.clone();
            }
        }
    }

    /// Moves the waiting sagas into the list (the selection stays on its
    /// saga); more than a poll could read reloads the list instead.
    pub(super) fn take_in(&mut self) {
        if self.list.incoming_more {
            self.reload_list();
            return;
        }
        let keep = self
            .list
            .sagas
            .get(self.list.selected)
            .map(|s| s.saga_id.clone());
        for s in std::mem::take(&mut self.list.incoming) {
            match self.list.sagas.iter().position(|x| x.saga_id == s.saga_id) {
                Some(i) => self.list.sagas[i] = s,
                None => self.list.sagas.push(s),
            }
        }
        self.apply_sort(keep);
    }

    pub(super) fn on_live_timeline(
        &mut self,
        saga_id: String,
        result: JobResult<(Vec<Mark>, Option<SnapshotCursor>)>,
    ) {
        let (marks, next) = match result {
            Ok(r) => r,
            Err(e) => {
                if e.unreachable {
                    self.disconnected(e.message);
                }
                return;
            }
        };
        let Some(t) = self.timeline.as_mut() else {
            return;
        };
        if t.saga.saga_id != saga_id {
            return;
        }
        // Unreadable rows stand at their predecessor's time: a read after
        // the last readable one meets them again.
        let known: HashSet<&str> = t
            .marks
            .iter()
            .rev()
            .take(RECENT_ROWS)
            .map(|m| m.snapshot_id.as_str())
            .collect();
        let fresh: Vec<Mark> = marks
            .into_iter()
            .filter(|m| !known.contains(m.snapshot_id.as_str()))
            .collect();
        if let Some(m) = fresh.iter().rev().find(|m| !m.is_unreadable()) {
            t.saga.latest_status = m.status.clone();
            t.saga.latest_step = m.step_name.clone();
            t.saga.latest_step_index = m.step_index;
            t.saga.last_at = m.created_at;
        }
        t.saga.snapshot_count += fresh.len() as u64;
        let grew = !fresh.is_empty();
        t.marks.extend(fresh);
        if let Some(after) = next {
            // More than a page arrived: the ordinary paging reads the rest.
            t.complete = false;
            t.load = Load::Loading;
            self.ask(|id| Request::Timeline {
                id,
                saga_id,
                after: Some(after),
            });
        }
        if grew && self.timeline.as_ref().is_some_and(|t| t.follow) {
            self.scrub_to(usize::MAX);
        }
    }

    /// `f`: keep the cursor on the newest snapshot as new ones arrive, or
    /// stop.
    pub(super) fn toggle_follow(&mut self) {
        let Some(t) = self.timeline.as_mut() else {
            self.error("open a saga first");
            return;
        };
        t.follow = !t.follow;
        if !t.follow {
            self.info("stopped following");
            return;
        }
        self.scrub_to(usize::MAX);
        self.info(if self.cfg.live.is_some() {
            "following: the cursor stays on the newest snapshot (f stops)"
        } else {
            "following the loaded snapshots; live updates are off (tui.live_interval_secs)"
        });
    }
}
