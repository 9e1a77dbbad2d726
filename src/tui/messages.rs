//! What the App and the background jobs say to each other: the
//! [`Action`]s the App applies, the [`Request`]s it makes, the
//! [`Response`]s that come back, and the one place that decides whether a
//! response is still wanted ([`Tickets`]). Both sides import this module;
//! neither imports the other.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyEvent, MouseEvent};

use super::content::{Rendered, Seg};
use super::keymap::Cmd;
use crate::engine::Event;
use crate::model::{ReplayLog, SagaStatus, SagaSummary, Snapshot, Timestamp};
use crate::replay::{self, ReplayPlan, ReplayReport, ReplaySpec};
use crate::store::{BadEntry, SagaCursor, SagaFilter, SagaPage, SnapshotCursor, StoreError};

/// Everything that can happen.
#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// The clock moved (drives ages, retries and health checks).
    Tick(Timestamp),
    /// Run a named command (the palette, tests).
    Run(Cmd),
    /// A background job finished.
    Data(Box<Response>),
    /// `$EDITOR` returned: the new override text, or why it failed.
    Edited(Result<String, String>),
}

/// The status shown for a timeline row whose snapshot could not be read.
pub const UNREADABLE: &str = "unreadable";

/// One snapshot as the timeline shows it (no context).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub snapshot_id: String,
    pub step_name: String,
    pub step_index: i64,
    pub status: SagaStatus,
    pub created_at: Timestamp,
    /// The error the runtime recorded with this snapshot (the failed
    /// step's, on a saga's final failed or rolled-back snapshot).
    pub error: Option<String>,
    /// The steps whose compensation ran by this snapshot, as recorded.
    pub compensated: Vec<String>,
}

impl Mark {
    pub fn of(s: &Snapshot) -> Mark {
        Mark {
            snapshot_id: s.snapshot_id.clone(),
            step_name: s.step_name.clone(),
            step_index: s.step_index,
            status: s.status.clone(),
            created_at: s.created_at,
            error: s.error_message(),
            compensated: s.compensated_steps(),
        }
    }

    /// A timeline row for an entry that could not be read, standing where
    /// the store found it (its time is its predecessor's: its own may be
    /// what is broken). The detail pane shows the store's error for it.
    pub fn unreadable(b: &BadEntry, at: Timestamp) -> Mark {
        let last = b.key.rsplit(['/', ':']).next().unwrap_or(&b.key);
        let id = last.split('.').next().unwrap_or(last);
        Mark {
            snapshot_id: id.to_string(),
            step_name: format!("unreadable: {}", b.error),
            step_index: -1,
            status: SagaStatus::Other(UNREADABLE.into()),
            created_at: at,
            error: None,
            compensated: Vec::new(),
        }
    }

    /// Whether this row stands for an entry that could not be read.
    pub fn is_unreadable(&self) -> bool {
        matches!(&self.status, SagaStatus::Other(s) if s == UNREADABLE)
    }

    pub fn cursor(&self) -> SnapshotCursor {
        SnapshotCursor {
            created_at: self.created_at,
            snapshot_id: self.snapshot_id.clone(),
        }
    }
}

/// A failed job: the message to show, and whether the store looks gone.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub message: String,
    pub unreachable: bool,
}

impl JobError {
    pub fn msg(m: impl Into<String>) -> Self {
        JobError {
            message: m.into(),
            unreachable: false,
        }
    }
}

impl JobError {
    /// Opening the store failed: an outage of any kind (unreachable,
    /// failing backend, I/O) counts as the store being gone.
    pub fn opening(e: StoreError) -> Self {
        JobError {
            unreachable: e.is_outage(),
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError {
            unreachable: e.is_unreachable(),
            message: e.to_string(),
        }
    }
}

impl From<replay::TimeTravelError> for JobError {
    fn from(e: replay::TimeTravelError) -> Self {
        match e {
            replay::TimeTravelError::Store(s) => s.into(),
            other => JobError::msg(other.to_string()),
        }
    }
}

impl From<replay::FindSagaError> for JobError {
    fn from(e: replay::FindSagaError) -> Self {
        match e {
            replay::FindSagaError::Store(s) => s.into(),
            other => JobError::msg(other.to_string()),
        }
    }
}

pub type JobResult<T> = Result<T, JobError>;

/// What the detail pane asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DetailKey {
    pub snapshot_id: String,
    /// Snapshot to diff against and its label.
    pub against: Option<(String, String)>,
    /// Read unmasked: the saga is revealed (never cached).
    pub revealed: bool,
}

/// A reveal in force: the saga shown unmasked and why, as recorded in the
/// audit log. What is exported while it holds is exported unmasked, with
/// an audit event of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RevealGrant {
    pub saga_id: String,
    pub saga_name: String,
    pub reason: String,
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportWhat {
    /// Every snapshot of a saga.
    Saga(String),
    /// The state at one snapshot (the Context tab).
    State(String),
    /// One snapshot record as stored (the Raw tab).
    Snapshot(String),
    /// The diff between two snapshots, `old` then `new` (the Diff tab).
    Diff { old: String, new: String },
    /// Records the App already holds (the Replays tab), and how many.
    Records(serde_json::Value, usize),
}

/// The replay log around a saga.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplaysView {
    /// Replays started from this saga, newest first.
    pub replays: Vec<ReplayLog>,
    /// The replay that produced this saga, if it is one.
    pub produced_by: Option<ReplayLog>,
}

/// Requests the App makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Health {
        id: u64,
    },
    SagaPage {
        id: u64,
        filter: SagaFilter,
        after: Option<SagaCursor>,
        limit: usize,
    },
    /// How many sagas match the list's filter (the list title's total).
    CountSagas {
        id: u64,
        filter: SagaFilter,
    },
    Timeline {
        id: u64,
        saga_id: String,
        after: Option<SnapshotCursor>,
    },
    Detail {
        id: u64,
        key: DetailKey,
    },
    AtTime {
        id: u64,
        saga_id: String,
        at: Timestamp,
    },
    WhereChanged {
        id: u64,
        saga_id: String,
        from: SnapshotCursor,
        path: Arc<[Seg]>,
        forward: bool,
    },
    Replays {
        id: u64,
        saga_id: String,
    },
    OpenSaga {
        id: u64,
        input: String,
    },
    Export {
        id: u64,
        what: ExportWhat,
        path: PathBuf,
        /// Export unmasked (the saga is revealed), after writing an audit
        /// event.
        reveal: Option<RevealGrant>,
    },
    /// Reveal a saga: write the audit event (who, which saga and paths,
    /// why); the App shows the saga unmasked only once it is written.
    Reveal {
        id: u64,
        grant: RevealGrant,
    },
    /// A plan only: nothing runs and nothing is written.
    DryRun {
        id: u64,
        saga_id: String,
        saga_name: String,
        spec: ReplaySpec,
        /// Written to the replay log as the CLI's dry run is (`d`); a plan
        /// made only to check the guards before `R` asks for its
        /// confirmation is not.
        log: bool,
        /// Show the plan unmasked (the saga is revealed).
        revealed: bool,
    },
    /// Several sagas from one step with one override; each saga's result
    /// comes back as a `BatchItem`.
    Batch {
        id: u64,
        targets: Vec<(String, Option<String>)>,
        spec: ReplaySpec,
        dry_run: bool,
        /// Recorded as each replay's `reason`.
        reason: Option<String>,
    },
    /// A real replay; engine events come back as `ReplayEvent`s.
    Replay {
        id: u64,
        saga_id: String,
        saga_name: String,
        spec: ReplaySpec,
        reason: Option<String>,
    },
    /// Live: the sagas that passed `filter` and changed since its `since`
    /// (one keyset read from the newest, never a rescan).
    LiveSagas {
        id: u64,
        filter: SagaFilter,
        limit: usize,
    },
    /// Live: the open saga's snapshots after the newest one shown.
    LiveTimeline {
        id: u64,
        saga_id: String,
        after: SnapshotCursor,
    },
    /// The overview page's counts and failure groups, as of `now`.
    Overview {
        id: u64,
        now: Timestamp,
    },
}

/// Where a snapshot jump came from, for the message shown after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Jump {
    pub snapshot_id: String,
    pub note: String,
}

/// Results, sent back as [`Action::Data`] (boxed there, so variant sizes
/// do not matter).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Response {
    Health {
        id: u64,
        result: JobResult<Duration>,
    },
    SagaPage {
        id: u64,
        append: bool,
        result: JobResult<SagaPage>,
    },
    SagaCount {
        id: u64,
        result: JobResult<u64>,
    },
    Timeline {
        id: u64,
        saga_id: String,
        result: JobResult<(Vec<Mark>, Option<SnapshotCursor>)>,
    },
    Detail {
        id: u64,
        key: DetailKey,
        result: JobResult<Arc<Rendered>>,
    },
    Jump {
        id: u64,
        result: JobResult<Jump>,
    },
    Replays {
        id: u64,
        saga_id: String,
        result: JobResult<ReplaysView>,
    },
    OpenSaga {
        id: u64,
        result: JobResult<SagaSummary>,
    },
    Exported {
        id: u64,
        result: JobResult<(PathBuf, usize)>,
    },
    /// The reveal's audit event is written (the sensitive paths it
    /// recorded), or why not.
    Revealed {
        id: u64,
        grant: RevealGrant,
        result: JobResult<Vec<String>>,
    },
    Plan {
        id: u64,
        result: JobResult<ReplayPlan>,
    },
    ReplayEvent {
        id: u64,
        event: Event,
    },
    Replayed {
        id: u64,
        result: JobResult<ReplayReport>,
    },
    BatchItem {
        id: u64,
        item: replay::batch::BatchItem,
    },
    BatchDone {
        id: u64,
        summary: replay::batch::BatchSummary,
    },
    LiveSagas {
        id: u64,
        result: JobResult<SagaPage>,
    },
    LiveTimeline {
        id: u64,
        saga_id: String,
        result: JobResult<(Vec<Mark>, Option<SnapshotCursor>)>,
    },
    Overview {
        id: u64,
        result: JobResult<Arc<replay::failures::Overview>>,
    },
}

/// The kinds of background work: one job runs per slot (a new request
/// aborts the one before it), and only the newest request of a slot is
/// answered into the App.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Health,
    List,
    Count,
    Timeline,
    Detail,
    Jump,
    Replays,
    Open,
    Export,
    Reveal,
    Plan,
    Replay,
    /// Live polls of the saga list (apart from its pages, which they must
    /// not abort).
    LiveList,
    /// Live polls of the open saga's timeline.
    LiveTimeline,
    Overview,
}

impl Request {
    /// The slot this request runs in.
    pub fn slot(&self) -> Slot {
        match self {
            Request::Health { .. } => Slot::Health,
            Request::SagaPage { .. } => Slot::List,
            Request::CountSagas { .. } => Slot::Count,
            Request::Timeline { .. } => Slot::Timeline,
            Request::Detail { .. } => Slot::Detail,
            Request::AtTime { .. } | Request::WhereChanged { .. } => Slot::Jump,
            Request::Replays { .. } => Slot::Replays,
            Request::OpenSaga { .. } => Slot::Open,
            Request::Export { .. } => Slot::Export,
            Request::Reveal { .. } => Slot::Reveal,
            Request::DryRun { .. } => Slot::Plan,
            Request::Replay { .. } | Request::Batch { .. } => Slot::Replay,
            Request::LiveSagas { .. } => Slot::LiveList,
            Request::LiveTimeline { .. } => Slot::LiveTimeline,
            Request::Overview { .. } => Slot::Overview,
        }
    }
}

impl Response {
    /// The slot and request id this response answers.
    pub fn ticket(&self) -> (Slot, u64) {
        match self {
            Response::Health { id, .. } => (Slot::Health, *id),
            Response::SagaPage { id, .. } => (Slot::List, *id),
            Response::SagaCount { id, .. } => (Slot::Count, *id),
            Response::Timeline { id, .. } => (Slot::Timeline, *id),
            Response::Detail { id, .. } => (Slot::Detail, *id),
            Response::Jump { id, .. } => (Slot::Jump, *id),
            Response::Replays { id, .. } => (Slot::Replays, *id),
            Response::OpenSaga { id, .. } => (Slot::Open, *id),
            Response::Exported { id, .. } => (Slot::Export, *id),
            Response::Revealed { id, .. } => (Slot::Reveal, *id),
            Response::Plan { id, .. } => (Slot::Plan, *id),
            Response::ReplayEvent { id, .. }
            | Response::Replayed { id, .. }
            | Response::BatchItem { id, .. }
            | Response::BatchDone { id, .. } => (Slot::Replay, *id),
            Response::LiveSagas { id, .. } => (Slot::LiveList, *id),
            Response::LiveTimeline { id, .. } => (Slot::LiveTimeline, *id),
            Response::Overview { id, .. } => (Slot::Overview, *id),
        }
    }

    /// Whether this is the last response to its request (a replay's
    /// events and a batch's items come before it).
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Response::ReplayEvent { .. } | Response::BatchItem { .. }
        )
    }
}

impl Request {
    /// The id the response will carry.
    pub fn id(&self) -> u64 {
        match self {
            Request::Health { id }
            | Request::SagaPage { id, .. }
            | Request::CountSagas { id, .. }
            | Request::Timeline { id, .. }
            | Request::Detail { id, .. }
            | Request::AtTime { id, .. }
            | Request::WhereChanged { id, .. }
            | Request::Replays { id, .. }
            | Request::OpenSaga { id, .. }
            | Request::Export { id, .. }
            | Request::Reveal { id, .. }
            | Request::DryRun { id, .. }
            | Request::Batch { id, .. }
            | Request::Replay { id, .. }
            | Request::LiveSagas { id, .. }
            | Request::LiveTimeline { id, .. }
            | Request::Overview { id, .. } => *id,
        }
    }
}

impl Slot {
    /// Slots whose request is "running" until its final response (a dry
    /// run, a replay or batch); the others stay answered by their newest
    /// request.
    fn closes(self) -> bool {
        matches!(self, Slot::Plan | Slot::Replay)
    }
}

/// The newest request asked in each slot: the one stale check. A response
/// is applied only if it answers the newest request of its slot; anything
/// older was superseded (the job was aborted, or its answer raced the new
/// request) and is dropped.
#[derive(Debug, Default)]
pub struct Tickets {
    next_id: u64,
    newest: HashMap<Slot, u64>,
}

impl Tickets {
    /// A fresh request id (never 0).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Records `req` as the newest of its slot.
    pub fn issue(&mut self, req: &Request) {
        self.newest.insert(req.slot(), req.id());
    }

    /// Whether `r` answers the newest request of its slot; a final answer
    /// in a slot that closes ([`Slot::Plan`], [`Slot::Replay`]) closes it.
    pub fn accept(&mut self, r: &Response) -> bool {
        let (slot, id) = r.ticket();
        if id == 0 || self.newest.get(&slot) != Some(&id) {
            return false;
        }
        if slot.closes() && r.is_final() {
            self.newest.remove(&slot);
        }
        true
    }

    /// Drops whatever `slot` still waits for (the pane it was for is gone).
    pub fn forget(&mut self, slot: Slot) {
        self.newest.remove(&slot);
    }

    /// The newest request id of `slot`, if one is outstanding or answered.
    pub fn newest(&self, slot: Slot) -> Option<u64> {
        self.newest.get(&slot).copied()
    }

    /// Whether a request of a closing slot is still running.
    pub fn running(&self, slot: Slot) -> bool {
        self.newest.contains_key(&slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(id: u64) -> Response {
        Response::Health {
            id,
            result: Ok(Duration::ZERO),
        }
    }

    #[test]
    fn only_the_newest_request_of_a_slot_is_answered() {
        let mut t = Tickets::default();
        let a = t.next_id();
        t.issue(&Request::Health { id: a });
        let b = t.next_id();
        t.issue(&Request::Health { id: b });
        assert!(!t.accept(&health(a)), "superseded");
        assert!(!t.accept(&health(0)), "never asked");
        assert!(t.accept(&health(b)));
        // An answered slot stays answered by its newest request.
        assert!(t.accept(&health(b)));
        // Slots are independent.
        let c = t.next_id();
        t.issue(&Request::Replays {
            id: c,
            saga_id: "s".into(),
        });
        assert!(t.accept(&health(b)));
        assert_eq!(t.newest(Slot::Replays), Some(c));
    }

    #[test]
    fn a_replay_runs_until_its_final_answer() {
        let mut t = Tickets::default();
        let id = t.next_id();
        t.issue(&Request::Batch {
            id,
            targets: Vec::new(),
            spec: ReplaySpec {
                from_step: "a".into(),
                ..ReplaySpec::default()
            },
            dry_run: true,
            reason: None,
        });
        assert!(t.running(Slot::Replay));
        let event = Response::ReplayEvent {
            id,
            event: Event::StepCompleted { step: "a".into() },
        };
        assert!(t.accept(&event));
        assert!(t.running(Slot::Replay), "events are not the end");
        let done = Response::Replayed {
            id,
            result: Err(JobError::msg("x")),
        };
        assert!(t.accept(&done));
        assert!(!t.running(Slot::Replay));
        assert!(!t.accept(&event), "nothing after the end");
    }
}
