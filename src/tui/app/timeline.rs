//! The timeline: opening a saga (its snapshots page in the background),
//! scrubbing, jumps (time travel, where a value changed), opening a saga by
//! id, refreshing, and exporting what is open.

use std::path::PathBuf;

use super::{App, Load, Pane, Tab, TimelinePane};
use crate::model::{short_id, SagaStatus, SagaSummary, Timestamp};
use crate::store::SnapshotCursor;
use crate::tui::content;
use crate::tui::messages::{ExportWhat, JobResult, Jump, Mark, Request, Slot};

impl App {
    pub(super) fn open_saga(&mut self, saga: SagaSummary) {
        let saga_id = saga.saga_id.clone();
        self.end_reveal_unless(Some(&saga_id));
        self.ask(|id| Request::Timeline {
            id,
            saga_id,
            after: None,
        });
        self.timeline = Some(TimelinePane {
            saga,
            marks: Vec::new(),
            complete: false,
            load: Load::Loading,
            cursor: 0,
            offset: 0,
            follow: false,
        });
        // What the detail pane was loading was for the saga shown before.
        self.tickets.forget(Slot::Detail);
        self.in_flight.remove(&Slot::Detail);
        self.detail.key = None;
        self.detail.rendered = None;
        self.detail.load = Load::Idle;
        self.detail.line = 0;
        self.detail.offset = 0;
        self.detail.replay_selected = 0;
        // Always: the timeline marks where replays branched off.
        self.request_replays();
    }

    /// No saga in hand (the filter matches none): the timeline and the
    /// detail pane empty, and nothing of the last saga's still arrives.
    pub(super) fn close_saga(&mut self) {
        self.end_reveal_unless(None);
        self.timeline = None;
        self.pending_jump = None;
        self.tickets.forget(Slot::Timeline);
        self.tickets.forget(Slot::Detail);
        self.tickets.forget(Slot::Jump);
        self.detail.key = None;
        self.detail.rendered = None;
        self.detail.load = Load::Idle;
        self.detail.line = 0;
        self.detail.offset = 0;
    }

    pub(super) fn apply_pending_jump(&mut self) {
        let Some(target) = self.pending_jump.clone() else {
            return;
        };
        let Some(t) = self.timeline.as_mut() else {
            return;
        };
        if let Some(i) = t.marks.iter().position(|m| m.snapshot_id == target) {
            t.cursor = i;
            self.pending_jump = None;
            self.after_scrub();
        } else if t.complete {
            self.pending_jump = None;
        }
    }

    /// Time travel: `-2h`, `now`, an ISO time.
    pub fn travel(&mut self, input: &str) {
        let Some(saga_id) = self.timeline.as_ref().map(|t| t.saga.saga_id.clone()) else {
            self.error("open a saga first");
            return;
        };
        match Timestamp::parse_relative(input, self.now) {
            Ok(at) => {
                self.ask(|id| Request::AtTime { id, saga_id, at });
            }
            Err(e) => self.error(format!("{e}; or an offset such as -2h")),
        }
    }

    /// Exports what the focused pane shows: the detail tab's content (the
    /// state on Context, the snapshot record on Raw, the diff on Diff, the
    /// replay log on Replays), else the whole saga. The file goes to the
    /// export folder (under the data dir) unless a path is given, and the
    /// footer names it.
    pub(super) fn export(&mut self, path: Option<PathBuf>) {
        let Some(t) = &self.timeline else {
            self.error("nothing to export: open a saga first");
            return;
        };
        let stamp = self.now.as_datetime().format("%Y%m%dT%H%M%SZ");
        let saga = short_id(&t.saga.saga_id).to_string();
        let (what, name) = if self.focus == Pane::Detail {
            let Some(m) = t.current() else {
                self.error("nothing to export: no snapshot selected");
                return;
            };
            let at = t.cursor;
            match self.detail.tab {
                Tab::Context => (
                    ExportWhat::State(m.snapshot_id.clone()),
                    format!("sagascope-state-{saga}-{at}-{stamp}.json"),
                ),
                Tab::Raw => (
                    ExportWhat::Snapshot(m.snapshot_id.clone()),
                    format!("sagascope-snapshot-{saga}-{at}-{stamp}.json"),
                ),
                Tab::Diff => {
                    let against = self
                        .detail
                        .key
                        .as_ref()
                        .filter(|k| k.snapshot_id == m.snapshot_id)
                        .and_then(|k| k.against.clone());
                    let Some((old, _)) = against else {
                        self.error(
                            "nothing to export: no diff here (the first snapshot; pin another with p)",
                        );
                        return;
                    };
                    (
                        ExportWhat::Diff {
                            old,
                            new: m.snapshot_id.clone(),
                        },
                        format!("sagascope-diff-{saga}-{at}-{stamp}.json"),
                    )
                }
                Tab::Replays => {
                    let Some(v) = &self.detail.replays else {
                        self.error("nothing to export: the replay log is still loading");
                        return;
                    };
                    let records: Vec<serde_json::Value> =
                        v.replays.iter().map(|r| r.to_json()).collect();
                    let n = records.len();
                    (
                        ExportWhat::Records(serde_json::Value::Array(records), n),
                        format!("sagascope-replays-{saga}-{stamp}.json"),
                    )
                }
            }
        } else {
            (
                ExportWhat::Saga(t.saga.saga_id.clone()),
                format!("sagascope-saga-{saga}-{stamp}.json"),
            )
        };
        let path = path.unwrap_or_else(|| self.cfg.export_dir.join(name));
        // A revealed saga is exported unmasked, with an audit event of its
        // own; the replay log's overrides are exported masked.
        let reveal = match &what {
            ExportWhat::Records(..) => None,
            _ => self.open_reveal().cloned(),
        };
        self.info(format!(
            "exporting to {}{}…",
            path.display(),
            if reveal.is_some() {
                " (revealed: unmasked, recorded in the audit log)"
            } else {
                ""
            }
        ));
        self.ask(|id| Request::Export {
            id,
            what,
            path,
            reveal,
        });
    }

    pub(super) fn refresh(&mut self) {
        self.reload_list();
        if let Some(t) = self.timeline.clone() {
            let cursor = t.current().map(|m| m.snapshot_id.clone());
            self.open_saga(t.saga);
            self.pending_jump = cursor;
        }
    }

    /// Opens a saga by id or unique prefix (the palette's `saga`, links).
    pub(super) fn open_by_id(&mut self, input: String) {
        self.ask(|id| Request::OpenSaga { id, input });
    }

    pub(super) fn scrub_by(&mut self, by: i64) {
        let Some(t) = &self.timeline else { return };
        let n = t.marks.len();
        if n == 0 {
            return;
        }
        let i = (t.cursor as i64 + by).clamp(0, n as i64 - 1) as usize;
        self.scrub_to(i);
    }

    /// Moves the timeline cursor; the detail follows.
    pub fn scrub_to(&mut self, i: usize) {
        let Some(t) = self.timeline.as_mut() else {
            return;
        };
        if t.marks.is_empty() {
            return;
        }
        t.cursor = i.min(t.marks.len() - 1);
        // Stepping back from the newest stops following it.
        if t.cursor + 1 < t.marks.len() {
            t.follow = false;
        }
        self.after_scrub();
    }

    pub(super) fn after_scrub(&mut self) {
        self.keep_visible();
        self.follow_cursor();
    }

    pub(super) fn scrub_event(&mut self, forward: bool) {
        let Some(t) = &self.timeline else { return };
        let is_event = |i: usize| -> bool {
            let m = &t.marks[i];
            m.status.is_failure()
                || m.status == SagaStatus::Compensating
                || i.checked_sub(1)
                    .and_then(|p| t.marks.get(p))
                    .is_some_and(|p| p.status != m.status)
        };
        let found = if forward {
            (t.cursor + 1..t.marks.len()).find(|&i| is_event(i))
        } else {
            (0..t.cursor).rev().find(|&i| is_event(i))
        };
        match found {
            Some(i) => self.scrub_to(i),
            None => self.info(if forward {
                "no later failure or status change"
            } else {
                "no earlier failure or status change"
            }),
        }
    }

    pub(super) fn where_changed(&mut self, forward: bool) {
        let Some(t) = &self.timeline else { return };
        let Some(m) = t.current() else { return };
        let saga_id = t.saga.saga_id.clone();
        let from: SnapshotCursor = m.cursor();
        let path = match self.current_row() {
            Some(r) if !r.path.is_empty() => r.path.clone(),
            _ => {
                self.error("put the cursor on a context value first (Context tab, j/k)");
                return;
            }
        };
        self.info(format!(
            "looking for changes of {}…",
            content::path_label(&path)
        ));
        self.ask(|id| Request::WhereChanged {
            id,
            saga_id,
            from,
            path,
            forward,
        });
    }

    /// A page of the open saga's timeline; the next is asked for at once
    /// (the first page is already scrubbable).
    pub(super) fn on_timeline(
        &mut self,
        saga_id: String,
        result: JobResult<(Vec<Mark>, Option<SnapshotCursor>)>,
    ) {
        let Some(t) = self.timeline.as_mut() else {
            return;
        };
        match result {
            Ok((marks, next)) => {
                let first_page = t.marks.is_empty();
                let follow = t.follow;
                t.marks.extend(marks);
                match next {
                    Some(after) => self.ask(|id| Request::Timeline {
                        id,
                        saga_id,
                        after: Some(after),
                    }),
                    None => {
                        t.complete = true;
                        t.load = Load::Idle;
                    }
                }
                if follow {
                    self.scrub_to(usize::MAX);
                } else if first_page {
                    self.follow_cursor();
                }
                self.apply_pending_jump();
            }
            Err(e) => {
                let load = self.load_failed(e);
                if let Some(t) = self.timeline.as_mut() {
                    t.load = load;
                }
            }
        }
    }

    /// Where a time travel or a where-changed search landed.
    pub(super) fn on_jump(&mut self, result: JobResult<Jump>) {
        match result {
            Ok(j) => {
                self.info(j.note);
                self.pending_jump = Some(j.snapshot_id);
                self.apply_pending_jump();
            }
            Err(e) => self.error(e.message),
        }
    }

    pub(super) fn on_open_saga(&mut self, result: JobResult<SagaSummary>) {
        match result {
            Ok(s) => {
                self.info(format!("opened saga {}", s.saga_id));
                self.open_saga(s);
                self.focus = Pane::Timeline;
                // The list highlights the saga in hand (or, when it is not
                // listed, says which one is open).
                self.select_open_saga();
            }
            Err(e) => self.error(e.message),
        }
    }

    pub(super) fn on_exported(&mut self, result: JobResult<(PathBuf, usize)>) {
        match result {
            Ok((path, n)) => {
                // The home folder as `~`, so the path fits the footer.
                let shown = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .and_then(|h| {
                        path.strip_prefix(h)
                            .ok()
                            .map(|p| format!("~/{}", p.display()))
                    })
                    .unwrap_or_else(|| path.display().to_string());
                self.info(format!("exported {n} record(s) to {shown}"))
            }
            Err(e) => self.error(format!("export failed: {}", e.message)),
        }
    }
}
