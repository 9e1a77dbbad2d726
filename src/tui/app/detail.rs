//! The detail pane: the snapshot under the timeline cursor (context, diff,
//! raw record) and the replay log around the saga; folding, search, tabs.

use std::collections::HashMap;
use std::sync::Arc;

use super::{App, Load, Tab};
use crate::tui::content::{self, Rendered, RowKind};
use crate::tui::messages::{DetailKey, JobResult, ReplaysView, Request};

impl App {
    /// Replays that branched off at each timeline row (row index → count).
    /// Dry runs are not branches: nothing ran.
    pub fn branches(&self) -> HashMap<usize, usize> {
        let mut out = HashMap::new();
        let (Some(t), Some(r)) = (&self.timeline, &self.detail.replays) else {
            return out;
        };
        if self.detail.replays_for.as_deref() != Some(t.saga.saga_id.as_str()) {
            return out;
        }
        for log in &r.replays {
            if log.extra.get("dry_run").and_then(|v| v.as_bool()) == Some(true) {
                continue;
            }
            let by_id = log
                .extra
                .get("checkpoint_snapshot_id")
                .and_then(|v| v.as_str())
                .and_then(|id| t.marks.iter().position(|m| m.snapshot_id == id));
            let row = by_id.or_else(|| {
                t.marks
                    .iter()
                    .rposition(|m| m.step_name == log.checkpoint_step)
            });
            if let Some(i) = row {
                *out.entry(i).or_insert(0) += 1;
            }
        }
        out
    }

    pub(super) fn request_replays(&mut self) {
        let Some(t) = &self.timeline else { return };
        let saga_id = t.saga.saga_id.clone();
        if self.detail.replays_for.as_deref() == Some(saga_id.as_str())
            && self.detail.replays_load != Load::Loading
        {
            return;
        }
        self.detail.replays_load = Load::Loading;
        self.detail.replays_for = Some(saga_id.clone());
        self.detail.replays = None;
        self.ask(|id| Request::Replays { id, saga_id });
    }

    /// Asks for the detail of the snapshot under the cursor (unless it is
    /// what is already shown or asked for).
    pub(super) fn follow_cursor(&mut self) {
        let Some(t) = &self.timeline else { return };
        let Some(m) = t.current() else { return };
        let against = match &self.pin {
            Some(p) if p.snapshot_id != m.snapshot_id => {
                Some((p.snapshot_id.clone(), format!("pinned {}", p.label)))
            }
            _ => t
                .cursor
                .checked_sub(1)
                .and_then(|i| t.marks.get(i))
                .map(|prev| {
                    (
                        prev.snapshot_id.clone(),
                        format!("previous #{} {}", t.cursor - 1, prev.step_name),
                    )
                }),
        };
        let key = DetailKey {
            snapshot_id: m.snapshot_id.clone(),
            against,
            revealed: self.is_revealed(&t.saga.saga_id),
        };
        if self.detail.key.as_ref() == Some(&key) {
            return;
        }
        self.detail.key = Some(key.clone());
        self.detail.load = Load::Loading;
        self.ask(|id| Request::Detail { id, key });
    }

    pub(super) fn set_tab(&mut self, tab: Tab) {
        if self.detail.tab != tab {
            self.detail.tab = tab;
            self.detail.line = 0;
            self.detail.offset = 0;
        }
        if tab == Tab::Replays {
            self.request_replays();
        }
    }

    pub(super) fn linked_saga(&mut self) {
        let Some(t) = &self.timeline else { return };
        let saga_id = t.saga.saga_id.clone();
        match (
            &self.detail.replays,
            self.detail.replays_for.as_deref() == Some(saga_id.as_str()),
        ) {
            (Some(r), true) => {
                if let Some(p) = &r.produced_by {
                    let id = p.original_saga_id.clone();
                    self.open_by_id(id);
                } else if let Some(first) = r.replays.first() {
                    let id = first.new_saga_id.clone();
                    self.open_by_id(id);
                } else {
                    self.error("this saga has no replays and is not a replay");
                }
            }
            _ => {
                self.set_tab(Tab::Replays);
                self.info("loading the replay log; press again to jump");
            }
        }
    }

    /// Number of lines in the detail tab.
    pub fn detail_len(&self) -> usize {
        match self.detail.tab {
            Tab::Replays => self.detail.replays.as_ref().map_or(0, |r| r.replays.len()),
            _ => match &self.detail.rendered {
                None => 0,
                Some(r) => match self.detail.tab {
                    Tab::Context => {
                        if self.detail.folded.is_empty() {
                            r.rows.len()
                        } else {
                            content::visible_rows(&r.rows, &self.detail.folded).len()
                        }
                    }
                    Tab::Diff => r.diff.len(),
                    _ => r.raw.len(),
                },
            },
        }
    }

    pub(super) fn detail_move(&mut self, by: i64) {
        if self.detail.tab == Tab::Replays {
            let n = self.detail_len();
            if n > 0 {
                self.detail.replay_selected =
                    (self.detail.replay_selected as i64 + by).clamp(0, n as i64 - 1) as usize;
            }
            return;
        }
        let n = self.detail_len();
        if n == 0 {
            return;
        }
        self.detail.line = (self.detail.line as i64 + by).clamp(0, n as i64 - 1) as usize;
        self.keep_visible();
    }

    /// The context row under the detail cursor.
    pub fn current_row(&self) -> Option<&content::Row> {
        let r = self.detail.rendered.as_ref()?;
        if self.detail.tab != Tab::Context {
            return None;
        }
        let idx = if self.detail.folded.is_empty() {
            self.detail.line
        } else {
            *content::visible_rows(&r.rows, &self.detail.folded).get(self.detail.line)?
        };
        r.rows.get(idx)
    }

    pub(super) fn fold(&mut self) {
        let Some(row) = self.current_row() else {
            return;
        };
        if row.kind == RowKind::Scalar {
            return;
        }
        let path = row.path.clone();
        if !self.detail.folded.remove(&path) {
            self.detail.folded.insert(path.clone());
        }
        // Keep the cursor on the container's open row.
        if let Some(r) = &self.detail.rendered {
            let vis = content::visible_rows(&r.rows, &self.detail.folded);
            if let Some(i) = vis
                .iter()
                .position(|&i| r.rows[i].path == path && r.rows[i].kind == RowKind::Open)
            {
                self.detail.line = i;
            }
        }
        self.keep_visible();
    }

    pub(super) fn fold_all(&mut self) {
        let Some(r) = self.detail.rendered.clone() else {
            return;
        };
        if self.detail.folded.is_empty() {
            for row in r
                .rows
                .iter()
                .filter(|x| x.kind == RowKind::Open && x.depth == 1)
            {
                self.detail.folded.insert(row.path.clone());
            }
        } else {
            self.detail.folded.clear();
        }
        self.detail.line = 0;
        self.detail.offset = 0;
    }

    /// The text of detail line `i` in the current tab (for search).
    pub fn detail_line_text(&self, i: usize) -> Option<String> {
        let r = self.detail.rendered.as_ref()?;
        match self.detail.tab {
            Tab::Context => {
                let idx = if self.detail.folded.is_empty() {
                    i
                } else {
                    *content::visible_rows(&r.rows, &self.detail.folded).get(i)?
                };
                let row = r.rows.get(idx)?;
                Some(match &row.key {
                    Some(k) => format!("\"{k}\": {}", row.text),
                    None => row.text.clone(),
                })
            }
            Tab::Diff => r.diff.get(i).map(|(_, l)| l.clone()),
            Tab::Raw => r.raw.get(i).cloned(),
            Tab::Replays => None,
        }
    }

    pub(super) fn search(&mut self, forward: bool, include_current: bool) {
        let Some(q) = self.detail.search.clone().map(|q| q.to_lowercase()) else {
            return;
        };
        let n = self.detail_len();
        if n == 0 {
            return;
        }
        let start = self.detail.line;
        for step in 0..n {
            let off = if include_current { step } else { step + 1 };
            let i = if forward {
                (start + off) % n
            } else {
                (start + n - off % n) % n
            };
            if self
                .detail_line_text(i)
                .is_some_and(|t| t.to_lowercase().contains(&q))
            {
                self.detail.line = i;
                self.keep_visible();
                return;
            }
        }
        self.error(format!("no match for {q:?}"));
    }

    /// The rendered snapshot the cursor asked for.
    pub(super) fn on_detail(&mut self, result: JobResult<Arc<Rendered>>) {
        match result {
            Ok(r) => {
                self.detail.rendered = Some(r);
                self.detail.load = Load::Idle;
                let n = self.detail_len();
                if self.detail.line >= n {
                    self.detail.line = n.saturating_sub(1);
                }
                self.keep_visible();
            }
            Err(e) => self.detail.load = self.load_failed(e),
        }
    }

    /// The replay log around the open saga.
    pub(super) fn on_replays(&mut self, result: JobResult<ReplaysView>) {
        match result {
            Ok(v) => {
                self.detail.replays = Some(v);
                self.detail.replays_load = Load::Idle;
            }
            Err(e) => self.detail.replays_load = Load::Failed(e.message),
        }
    }
}
