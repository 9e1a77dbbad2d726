//! The App state and `update`: every input becomes an [`Action`], and
//! `update` is the only place state changes. Store work is queued as
//! [`Request`]s (drained by the event loop into background jobs) and comes
//! back as `Action::Data`; a response whose id is not the newest asked for
//! is dropped.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::content::{self, Rendered, RowKind, Seg};
use super::editor::{Draft, Editor};
use super::jobs::{DetailKey, ExportWhat, Mark, ReplaysView, Request, Response};
use super::keymap::{Cmd, Key, Keymap, Scope, COMMANDS};
use super::theme::Theme;
use super::view;
use crate::model::{short_id, SagaStatus, SagaSummary, Timestamp};
use crate::store::{SagaCursor, SagaFilter, SnapshotCursor};

/// Sagas per list page.
pub const LIST_PAGE: usize = 100;
/// Load the next page when the selection is this close to the end.
const LIST_PREFETCH: usize = 20;
/// Seconds between health checks while connected.
const HEALTH_EVERY_S: i64 = 5;
/// Longest wait between reconnection attempts: 1, 2, 4, then every 5 s.
/// A check is one cheap request, and an on-call user waiting for a store
/// to come back should see it within seconds (30 s made a restarted Redis
/// look down for 42 s); `C-r` retries at once.
pub const MAX_BACKOFF_S: i64 = 5;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    List,
    Timeline,
    Detail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Context,
    Diff,
    Raw,
    Replays,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Context, Tab::Diff, Tab::Raw, Tab::Replays];
    pub fn title(self) -> &'static str {
        match self {
            Tab::Context => "Context",
            Tab::Diff => "Diff",
            Tab::Raw => "Raw",
            Tab::Replays => "Replays",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Time,
    Name,
    Status,
}

impl Sort {
    pub fn label(self) -> &'static str {
        match self {
            Sort::Time => "time",
            Sort::Name => "name",
            Sort::Status => "status",
        }
    }
}

/// The store connection as the header shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting,
    Connected {
        latency: Duration,
    },
    Disconnected {
        error: String,
        attempt: u32,
        retry_at: Timestamp,
    },
}

/// What a line of input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    Palette,
    Search,
    /// Confirming a replay: the saga's short id, typed.
    ConfirmId,
    /// The replay's reason (optional).
    Reason,
    /// Confirming a batch replay: the number of marked sagas, typed.
    ConfirmBatch,
}

/// How a line of a panel is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Text,
    Dim,
    Ok,
    Bad,
    Warn,
    Run,
}

/// A popup of lines: the dry-run plan or a replay's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub lines: Vec<(Tone, String)>,
    /// A replay is still running (the panel cannot be closed).
    pub running: bool,
    /// The saga a finished replay made (Enter opens it).
    pub new_saga: Option<String>,
    pub scroll: usize,
}

/// A saga in a batch: its id and, when the list knows it, its name.
pub type BatchTarget = (String, Option<String>);

/// What `R` will replay, captured when the prompt opens.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayTarget {
    pub saga_id: String,
    pub saga_name: String,
    pub spec: crate::replay::ReplaySpec,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Input {
        kind: InputKind,
        text: String,
        completion: usize,
    },
    Help {
        scroll: usize,
    },
}

/// Loading state of a pane.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Load {
    #[default]
    Idle,
    Loading,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct ListPane {
    pub sagas: Vec<SagaSummary>,
    pub next: Option<SagaCursor>,
    pub load: Load,
    pub req: u64,
    pub selected: usize,
    pub offset: usize,
    pub filter_text: String,
    pub filter: SagaFilter,
    pub sort: Sort,
    pub bad: usize,
}

#[derive(Debug, Clone)]
pub struct TimelinePane {
    pub saga: SagaSummary,
    pub marks: Vec<Mark>,
    pub complete: bool,
    pub load: Load,
    pub req: u64,
    pub cursor: usize,
    pub offset: usize,
}

impl TimelinePane {
    pub fn current(&self) -> Option<&Mark> {
        self.marks.get(self.cursor)
    }
}

#[derive(Debug, Clone)]
pub struct DetailPane {
    pub tab: Tab,
    pub key: Option<DetailKey>,
    pub rendered: Option<Arc<Rendered>>,
    pub load: Load,
    pub req: u64,
    /// Selected line (in visible lines) and first line shown.
    pub line: usize,
    pub offset: usize,
    pub folded: HashSet<Arc<[Seg]>>,
    pub search: Option<String>,
    pub replays: Option<ReplaysView>,
    pub replays_for: Option<String>,
    pub replays_load: Load,
    pub replays_req: u64,
    pub replay_selected: usize,
}

/// A pinned snapshot: diffs compare against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub saga_id: String,
    pub snapshot_id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
}

/// How the App starts.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub store_label: String,
    pub profile: Option<String>,
    pub readonly: bool,
    pub local_time: bool,
    pub keymap: Keymap,
    pub theme: Theme,
    /// Where `x` writes files.
    pub export_dir: PathBuf,
    /// Saga names with a definition (only those can be replayed).
    pub definitions: Vec<String>,
}

/// The whole UI state.
#[derive(Debug)]
pub struct App {
    pub now: Timestamp,
    pub cfg: AppConfig,
    pub conn: Conn,
    last_health: Option<Timestamp>,
    health_req: u64,
    pub focus: Pane,
    pub mode: Mode,
    pub list: ListPane,
    pub timeline: Option<TimelinePane>,
    pub detail: DetailPane,
    pub pin: Option<Pin>,
    pub message: Option<Message>,
    pub size: (u16, u16),
    pub quit: bool,
    next_id: u64,
    outbox: Vec<Request>,
    jump_req: u64,
    open_req: u64,
    export_req: u64,
    /// A snapshot to move to once the timeline has loaded it.
    pending_jump: Option<String>,
    /// The override editor, when open (it takes every key).
    pub editor: Option<Editor>,
    /// Unsaved overrides by saga id, kept until applied or discarded.
    pub drafts: HashMap<String, Draft>,
    /// Text to hand to `$EDITOR`: the event loop suspends the terminal,
    /// runs it, and answers with `Action::Edited`.
    pub external_edit: Option<String>,
    /// The plan or replay popup.
    pub panel: Option<Panel>,
    pub replay_target: Option<ReplayTarget>,
    /// The saga and step the override was last edited for: batches from
    /// the list use that step and that override.
    pub batch_from: Option<(String, String)>,
    /// Sagas marked for a batch (saga ids).
    pub marked: HashSet<String>,
    /// A batch replay waiting for its confirmation.
    pub batch_target: Option<(Vec<BatchTarget>, crate::replay::ReplaySpec)>,
    plan_req: u64,
    replay_req: u64,
}

impl App {
    /// A new App; queues the first health check and list page.
    pub fn new(cfg: AppConfig, now: Timestamp, size: (u16, u16)) -> App {
        let mut app = App {
            now,
            cfg,
            conn: Conn::Connecting,
            last_health: None,
            health_req: 0,
            focus: Pane::List,
            mode: Mode::Normal,
            list: ListPane {
                sagas: Vec::new(),
                next: None,
                load: Load::Idle,
                req: 0,
                selected: 0,
                offset: 0,
                filter_text: String::new(),
                filter: SagaFilter::default(),
                sort: Sort::Time,
                bad: 0,
            },
            timeline: None,
            detail: DetailPane {
                tab: Tab::Context,
                key: None,
                rendered: None,
                load: Load::Idle,
                req: 0,
                line: 0,
                offset: 0,
                folded: HashSet::new(),
                search: None,
                replays: None,
                replays_for: None,
                replays_load: Load::Idle,
                replays_req: 0,
                replay_selected: 0,
            },
            pin: None,
            message: None,
            size,
            quit: false,
            next_id: 0,
            outbox: Vec::new(),
            jump_req: 0,
            open_req: 0,
            export_req: 0,
            pending_jump: None,
            editor: None,
            drafts: HashMap::new(),
            external_edit: None,
            panel: None,
            replay_target: None,
            marked: HashSet::new(),
            batch_from: None,
            batch_target: None,
            plan_req: 0,
            replay_req: 0,
        };
        app.check_health();
        app.reload_list();
        app
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Requests queued since the last call.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.outbox)
    }

    /// Whether anything is loading (for tests waiting until idle).
    pub fn loading(&self) -> bool {
        self.list.load == Load::Loading
            || self
                .timeline
                .as_ref()
                .is_some_and(|t| t.load == Load::Loading)
            || self.detail.load == Load::Loading
            || self.detail.replays_load == Load::Loading
            || self.pending_jump.is_some() && self.timeline.as_ref().is_some_and(|t| !t.complete)
            || self.plan_req != 0
            || self.panel.as_ref().is_some_and(|p| p.running)
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: false,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message {
            text: text.into(),
            error: true,
        });
    }

    // ----- requests -------------------------------------------------------

    fn check_health(&mut self) {
        let id = self.id();
        self.health_req = id;
        self.last_health = Some(self.now);
        self.outbox.push(Request::Health { id });
    }

    fn reload_list(&mut self) {
        let id = self.id();
        self.list.req = id;
        self.list.load = Load::Loading;
        self.outbox.push(Request::SagaPage {
            id,
            filter: self.list.filter.clone(),
            after: None,
            limit: LIST_PAGE,
        });
    }

    fn more_list(&mut self) {
        if self.list.load == Load::Loading {
            return;
        }
        if let Some(after) = self.list.next.clone() {
            let id = self.id();
            self.list.req = id;
            self.list.load = Load::Loading;
            self.outbox.push(Request::SagaPage {
                id,
                filter: self.list.filter.clone(),
                after: Some(after),
                limit: LIST_PAGE,
            });
        }
    }

    fn open_saga(&mut self, saga: SagaSummary) {
        let id = self.id();
        self.outbox.push(Request::Timeline {
            id,
            saga_id: saga.saga_id.clone(),
            after: None,
        });
        self.timeline = Some(TimelinePane {
            saga,
            marks: Vec::new(),
            complete: false,
            load: Load::Loading,
            req: id,
            cursor: 0,
            offset: 0,
        });
        self.detail.key = None;
        self.detail.rendered = None;
        self.detail.load = Load::Idle;
        self.detail.line = 0;
        self.detail.offset = 0;
        self.detail.replay_selected = 0;
        // Always: the timeline marks where replays branched off.
        self.request_replays();
    }

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

    fn request_replays(&mut self) {
        let Some(t) = &self.timeline else { return };
        let saga_id = t.saga.saga_id.clone();
        if self.detail.replays_for.as_deref() == Some(saga_id.as_str())
            && self.detail.replays_load != Load::Loading
        {
            return;
        }
        let id = self.id();
        self.detail.replays_req = id;
        self.detail.replays_load = Load::Loading;
        self.detail.replays_for = Some(saga_id.clone());
        self.detail.replays = None;
        self.outbox.push(Request::Replays { id, saga_id });
    }

    /// Asks for the detail of the snapshot under the cursor (unless it is
    /// what is already shown or asked for).
    fn follow_cursor(&mut self) {
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
        };
        if self.detail.key.as_ref() == Some(&key) {
            return;
        }
        let id = self.id();
        self.detail.key = Some(key.clone());
        self.detail.req = id;
        self.detail.load = Load::Loading;
        self.outbox.push(Request::Detail { id, key });
    }

    // ----- update ----------------------------------------------------------

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        match action {
            Action::Key(k) => self.on_key(k),
            Action::Mouse(m) => self.on_mouse(m),
            Action::Resize(w, h) => {
                self.size = (w, h);
                self.keep_visible();
            }
            Action::Tick(now) => self.on_tick(now),
            Action::Run(cmd) => self.run(cmd),
            Action::Data(r) => self.on_data(*r),
            Action::Edited(r) => match (r, self.editor.as_mut()) {
                (Ok(text), Some(e)) => {
                    e.set_text(&text);
                    self.info("override read back from $EDITOR");
                }
                (Err(why), _) => self.error(format!("$EDITOR: {why}")),
                (Ok(_), None) => {}
            },
        }
    }

    fn on_tick(&mut self, now: Timestamp) {
        self.now = now;
        match &self.conn {
            Conn::Disconnected { retry_at, .. } => {
                if now >= *retry_at {
                    self.check_health();
                }
            }
            _ => {
                if self
                    .last_health
                    .is_none_or(|t| now.as_micros() - t.as_micros() >= HEALTH_EVERY_S * 1_000_000)
                {
                    self.check_health();
                }
            }
        }
    }

    fn disconnected(&mut self, error: String) {
        let attempt = match &self.conn {
            Conn::Disconnected { attempt, .. } => attempt + 1,
            _ => 0,
        };
        let wait = (1i64 << attempt.min(3)).min(MAX_BACKOFF_S);
        self.conn = Conn::Disconnected {
            error,
            attempt,
            retry_at: self.now.plus_micros(wait * 1_000_000),
        };
    }

    fn on_data(&mut self, r: Response) {
        match r {
            Response::Health { id, result } => {
                if id != self.health_req {
                    return;
                }
                match result {
                    Ok(latency) => {
                        let was_down = matches!(self.conn, Conn::Disconnected { .. });
                        self.conn = Conn::Connected { latency };
                        if was_down {
                            self.info("reconnected");
                            self.refresh();
                        }
                    }
                    Err(e) => self.disconnected(e.message),
                }
            }
            Response::SagaPage { id, append, result } => {
                if id != self.list.req {
                    return;
                }
                match result {
                    Ok(page) => {
                        let keep = self
                            .list
                            .sagas
                            .get(self.list.selected)
                            .map(|s| s.saga_id.clone());
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
                        self.apply_sort(keep.filter(|_| append));
                        if !append && self.timeline.is_none() {
                            if let Some(first) = self.list.sagas.first().cloned() {
                                self.open_saga(first);
                            }
                        }
                    }
                    Err(e) => {
                        self.list.load = Load::Failed(e.message.clone());
                        if e.unreachable {
                            self.disconnected(e.message);
                        }
                    }
                }
            }
            Response::Timeline {
                id,
                saga_id,
                result,
            } => {
                let Some(t) = self.timeline.as_mut() else {
                    return;
                };
                if id != t.req || t.saga.saga_id != saga_id {
                    return;
                }
                match result {
                    Ok((marks, next)) => {
                        let first_page = t.marks.is_empty();
                        t.marks.extend(marks);
                        match next {
                            Some(after) => {
                                // Keep paging in the background; the first
                                // page is already scrubbable.
                                let nid = self.next_id + 1;
                                self.next_id = nid;
                                t.req = nid;
                                self.outbox.push(Request::Timeline {
                                    id: nid,
                                    saga_id,
                                    after: Some(after),
                                });
                            }
                            None => {
                                t.complete = true;
                                t.load = Load::Idle;
                            }
                        }
                        if first_page {
                            self.follow_cursor();
                        }
                        self.apply_pending_jump();
                    }
                    Err(e) => {
                        t.load = Load::Failed(e.message.clone());
                        if e.unreachable {
                            self.disconnected(e.message);
                        }
                    }
                }
            }
            Response::Detail { id, key, result } => {
                if id != self.detail.req || self.detail.key.as_ref() != Some(&key) {
                    return;
                }
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
                    Err(e) => {
                        self.detail.load = Load::Failed(e.message.clone());
                        if e.unreachable {
                            self.disconnected(e.message);
                        }
                    }
                }
            }
            Response::Jump { id, result } => {
                if id != self.jump_req {
                    return;
                }
                match result {
                    Ok(j) => {
                        self.info(j.note);
                        self.pending_jump = Some(j.snapshot_id);
                        self.apply_pending_jump();
                    }
                    Err(e) => self.error(e.message),
                }
            }
            Response::Replays {
                id,
                saga_id,
                result,
            } => {
                if id != self.detail.replays_req
                    || self.detail.replays_for.as_deref() != Some(saga_id.as_str())
                {
                    return;
                }
                match result {
                    Ok(v) => {
                        self.detail.replays = Some(v);
                        self.detail.replays_load = Load::Idle;
                    }
                    Err(e) => self.detail.replays_load = Load::Failed(e.message),
                }
            }
            Response::OpenSaga { id, result } => {
                if id != self.open_req {
                    return;
                }
                match result {
                    Ok(s) => {
                        self.info(format!("opened saga {}", s.saga_id));
                        self.open_saga(s);
                        self.focus = Pane::Timeline;
                    }
                    Err(e) => self.error(e.message),
                }
            }
            Response::Plan { id, result } => {
                if id != self.plan_req {
                    return;
                }
                self.plan_req = 0;
                match result {
                    Ok(plan) => self.panel = Some(plan_panel(&plan)),
                    Err(e) => self.error(format!("dry run failed: {}", e.message)),
                }
            }
            Response::ReplayEvent { id, event } => {
                if id != self.replay_req {
                    return;
                }
                if let Some(p) = self.panel.as_mut() {
                    p.lines.push(event_line(&event));
                }
            }
            Response::Replayed { id, result } => {
                if id != self.replay_req {
                    return;
                }
                self.replay_req = 0;
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
            Response::BatchItem { id, item } => {
                if id != self.replay_req {
                    return;
                }
                use crate::replay::batch::ItemResult;
                let tone = match item.result {
                    ItemResult::Ok => Tone::Ok,
                    ItemResult::Skipped => Tone::Dim,
                    ItemResult::WouldFail | ItemResult::Locked | ItemResult::Abandoned => {
                        Tone::Warn
                    }
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
            Response::BatchDone { id, summary } => {
                if id != self.replay_req {
                    return;
                }
                self.replay_req = 0;
                let mut lines = vec![
                    (Tone::Text, String::new()),
                    (
                        if summary.has_problems() { Tone::Bad } else { Tone::Ok },
                        format!(
                            "{} saga(s): ok {} · would fail {} · failed {} · skipped {} · locked {} · errors {}",
                            summary.total, summary.ok, summary.would_fail, summary.failed, summary.skipped, summary.locked, summary.errors
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
            Response::Exported { id, result } => {
                if id != self.export_req {
                    return;
                }
                match result {
                    Ok((path, n)) => {
                        self.info(format!("exported {n} record(s) to {}", path.display()))
                    }
                    Err(e) => self.error(format!("export failed: {}", e.message)),
                }
            }
        }
    }

    fn apply_pending_jump(&mut self) {
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

    fn apply_sort(&mut self, keep: Option<String>) {
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

    // ----- keys ------------------------------------------------------------

    fn scopes(&self) -> &'static [Scope] {
        match self.focus {
            Pane::List => &[Scope::List, Scope::Global],
            Pane::Timeline => &[Scope::Timeline, Scope::Global],
            Pane::Detail => &[Scope::Detail, Scope::Timeline, Scope::Global],
        }
    }

    fn on_key(&mut self, k: KeyEvent) {
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
        if self.editor.is_some() && self.mode == Mode::Normal {
            self.on_editor_key(k);
            return;
        }
        match self.mode.clone() {
            Mode::Input {
                kind,
                text,
                completion,
            } => self.on_input_key(kind, text, completion, k),
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

    fn on_input_key(&mut self, kind: InputKind, mut text: String, completion: usize, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                if matches!(
                    kind,
                    InputKind::ConfirmId | InputKind::Reason | InputKind::ConfirmBatch
                ) {
                    self.replay_target = None;
                    self.batch_target = None;
                    self.info("replay cancelled before it started: nothing has run and nothing was written");
                }
            }
            KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.submit(kind, text);
            }
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Input {
                    kind,
                    text,
                    completion: 0,
                };
            }
            KeyCode::Tab if kind == InputKind::Palette => {
                let cands = palette_candidates(&text);
                if let Some(c) = cands.get(completion % cands.len().max(1)) {
                    let rest = text.split_once(' ').map(|(_, r)| r.to_string());
                    text = match rest {
                        Some(r) if !r.is_empty() => format!("{c} {r}"),
                        _ => c.to_string(),
                    };
                }
                self.mode = Mode::Input {
                    kind,
                    text,
                    completion: completion + 1,
                };
            }
            KeyCode::Char(c) if !k.modifiers.contains(KeyModifiers::CONTROL) => {
                text.push(c);
                self.mode = Mode::Input {
                    kind,
                    text,
                    completion: 0,
                };
            }
            _ => {}
        }
    }

    fn submit(&mut self, kind: InputKind, text: String) {
        match kind {
            InputKind::Filter => self.set_filter(&text),
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
        }
    }

    /// Parses the filter syntax into a store filter and reloads.
    pub fn set_filter(&mut self, text: &str) {
        self.list.filter_text = text.trim().to_string();
        self.list.filter = SagaFilter::parse_query(text);
        self.reload_list();
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
            "saga" => {
                let id = self.id();
                self.open_req = id;
                self.outbox.push(Request::OpenSaga {
                    id,
                    input: rest.to_string(),
                });
            }
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

    fn set_sort(&mut self, s: Sort) {
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

    /// Time travel: `-2h`, `now`, an ISO time.
    pub fn travel(&mut self, input: &str) {
        let Some(saga_id) = self.timeline.as_ref().map(|t| t.saga.saga_id.clone()) else {
            self.error("open a saga first");
            return;
        };
        match Timestamp::parse_relative(input, self.now) {
            Ok(at) => {
                let id = self.id();
                self.jump_req = id;
                self.outbox.push(Request::AtTime { id, saga_id, at });
            }
            Err(e) => self.error(format!("{e}; or an offset such as -2h")),
        }
    }

    fn export(&mut self, path: Option<PathBuf>) {
        let Some(t) = &self.timeline else {
            self.error("nothing to export: open a saga first");
            return;
        };
        let stamp = self.now.as_datetime().format("%Y%m%dT%H%M%SZ");
        let (what, name) = if self.focus == Pane::Detail {
            match t.current() {
                Some(m) => (
                    ExportWhat::State(m.snapshot_id.clone()),
                    format!(
                        "sagascope-state-{}-{}-{stamp}.json",
                        short_id(&t.saga.saga_id),
                        t.cursor
                    ),
                ),
                None => return,
            }
        } else {
            (
                ExportWhat::Saga(t.saga.saga_id.clone()),
                format!("sagascope-saga-{}-{stamp}.json", short_id(&t.saga.saga_id)),
            )
        };
        let path = path.unwrap_or_else(|| self.cfg.export_dir.join(name));
        let id = self.id();
        self.export_req = id;
        self.info(format!("exporting to {}…", path.display()));
        self.outbox.push(Request::Export { id, what, path });
    }

    fn refresh(&mut self) {
        self.reload_list();
        if let Some(t) = self.timeline.clone() {
            let cursor = t.current().map(|m| m.snapshot_id.clone());
            self.open_saga(t.saga);
            self.pending_jump = cursor;
        }
    }

    /// Runs a command.
    pub fn run(&mut self, cmd: Cmd) {
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
            Cmd::ListBatchDryRun => self.batch(true),
            Cmd::ListBatchReplay => self.batch(false),
            // Only meaningful inside the editor, which handles them itself.
            Cmd::EditorMerge | Cmd::EditorFull | Cmd::EditorDiscard | Cmd::EditorExternal => {
                self.info("open the override editor first (e)")
            }
            Cmd::Export => self.export(None),
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

    /// Opens the override editor on the snapshot under the cursor, with the
    /// saga's draft if one was kept.
    fn open_editor(&mut self) {
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

    fn on_editor_key(&mut self, k: KeyEvent) {
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
        let (saga_id, saga_name, step) = (
            t.saga.saga_id.clone(),
            t.saga.saga_name.clone(),
            m.step_name.clone(),
        );
        let draft = match &self.editor {
            Some(e) if e.saga_id == saga_id => Some(e.draft()),
            _ => self.drafts.get(&saga_id).cloned(),
        };
        let (over, merge) = match draft {
            None => (serde_json::Map::new(), crate::replay::MergeMode::Shallow),
            Some(d) => match super::editor::validate(&d.lines.join("\n")) {
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
                context_override: over,
                merge,
                force_failure: false,
            },
        })
    }

    fn dry_run(&mut self) {
        let Some(t) = self.replay_spec() else { return };
        let id = self.id();
        self.plan_req = id;
        self.info(format!("planning a replay from {}…", t.spec.from_step));
        self.outbox.push(Request::DryRun {
            id,
            saga_id: t.saga_id,
            saga_name: t.saga_name,
            spec: t.spec,
        });
    }

    fn ask_replay(&mut self) {
        if self.cfg.readonly {
            self.error(
                "read-only mode: replays are not offered (start without --readonly to replay)",
            );
            return;
        }
        if self.replay_req != 0 {
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
        self.replay_target = Some(t);
        self.open_input(InputKind::ConfirmId, "");
    }

    fn confirm_id(&mut self, text: &str) {
        let Some(t) = self.replay_target.as_ref() else {
            return;
        };
        let typed = text.trim();
        if !typed.is_empty() && (typed == short_id(&t.saga_id) || typed == t.saga_id) {
            self.info("reason for the replay log (optional), Enter starts the replay");
            self.open_input(InputKind::Reason, "");
        } else {
            let want = short_id(&t.saga_id).to_string();
            self.replay_target = None;
            self.error(format!("{typed:?} is not {want}: nothing was replayed"));
        }
    }

    fn start_replay(&mut self, reason: &str) {
        let Some(t) = self.replay_target.take() else {
            return;
        };
        let id = self.id();
        self.replay_req = id;
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
        });
        let reason = reason.trim();
        self.outbox.push(Request::Replay {
            id,
            saga_id: t.saga_id,
            saga_name: t.saga_name,
            spec: t.spec,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
        });
    }

    /// The marked sagas in list order, with their names.
    fn marked_targets(&self) -> Vec<(String, Option<String>)> {
        self.list
            .sagas
            .iter()
            .filter(|s| self.marked.contains(&s.saga_id))
            .map(|s| (s.saga_id.clone(), Some(s.saga_name.clone())))
            .collect()
    }

    fn batch(&mut self, dry_run: bool) {
        let targets = self.marked_targets();
        if targets.is_empty() {
            self.error("mark sagas first (Space, or M for all that match the filter)");
            return;
        }
        if !dry_run && self.cfg.readonly {
            self.error(
                "read-only mode: replays are not offered (start without --readonly to replay)",
            );
            return;
        }
        if self.replay_req != 0 {
            self.error("a replay is already running");
            return;
        }
        let spec = match self.batch_from.clone() {
            Some((saga_id, step)) => {
                let draft = self.drafts.get(&saga_id).cloned().unwrap_or_default();
                match super::editor::validate(&draft.lines.join("\n")) {
                    Ok(over) => crate::replay::ReplaySpec {
                        from_step: step,
                        context_override: over,
                        merge: draft.merge,
                        force_failure: false,
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
        let t = ReplayTarget {
            saga_id: String::new(),
            saga_name: String::new(),
            spec,
        };
        if dry_run {
            self.start_batch(targets, t.spec, true);
        } else {
            self.info(format!(
                "replay {} saga(s) from {}: type {} and Enter to confirm, Esc cancels",
                targets.len(),
                t.spec.from_step,
                targets.len()
            ));
            self.batch_target = Some((targets, t.spec));
            self.open_input(InputKind::ConfirmBatch, "");
        }
    }

    fn confirm_batch(&mut self, text: &str) {
        let Some((targets, spec)) = self.batch_target.take() else {
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

    fn start_batch(
        &mut self,
        targets: Vec<(String, Option<String>)>,
        spec: crate::replay::ReplaySpec,
        dry_run: bool,
    ) {
        let id = self.id();
        self.replay_req = id;
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
        });
        self.outbox.push(Request::Batch {
            id,
            targets,
            spec,
            dry_run,
        });
    }

    fn on_panel_key(&mut self, k: KeyEvent) {
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

    fn open_input(&mut self, kind: InputKind, text: &str) {
        self.mode = Mode::Input {
            kind,
            text: text.to_string(),
            completion: 0,
        };
    }

    fn open_by_id(&mut self, saga_id: String) {
        let id = self.id();
        self.open_req = id;
        self.outbox.push(Request::OpenSaga { id, input: saga_id });
    }

    fn linked_saga(&mut self) {
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

    fn set_tab(&mut self, tab: Tab) {
        if self.detail.tab != tab {
            self.detail.tab = tab;
            self.detail.line = 0;
            self.detail.offset = 0;
        }
        if tab == Tab::Replays {
            self.request_replays();
        }
    }

    /// Lines shown in a pane body (for paging and keeping the cursor in view).
    fn page(&self) -> usize {
        let areas = view::layout(Rect::new(0, 0, self.size.0, self.size.1), self.focus);
        let h = match self.focus {
            Pane::List => areas.list.map(|r| r.height),
            Pane::Timeline => areas.timeline.map(|r| r.height),
            Pane::Detail => areas.detail.map(|r| r.height),
        };
        (h.unwrap_or(10) as usize).saturating_sub(4).max(1)
    }

    fn list_move(&mut self, by: i64) {
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

    fn scrub_by(&mut self, by: i64) {
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
        self.after_scrub();
    }

    fn after_scrub(&mut self) {
        self.keep_visible();
        self.follow_cursor();
    }

    fn scrub_event(&mut self, forward: bool) {
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

    fn detail_move(&mut self, by: i64) {
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

    fn fold(&mut self) {
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

    fn fold_all(&mut self) {
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

    fn search(&mut self, forward: bool, include_current: bool) {
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

    fn where_changed(&mut self, forward: bool) {
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
        let id = self.id();
        self.jump_req = id;
        self.info(format!(
            "looking for changes of {}…",
            content::path_label(&path)
        ));
        self.outbox.push(Request::WhereChanged {
            id,
            saga_id,
            from,
            path,
            forward,
        });
    }

    /// Scrolls each pane so its cursor stays in view.
    fn keep_visible(&mut self) {
        let areas = view::layout(Rect::new(0, 0, self.size.0, self.size.1), self.focus);
        let fit = |cursor: usize, offset: &mut usize, height: usize, len: usize| {
            let h = height.max(1);
            if cursor < *offset {
                *offset = cursor;
            } else if cursor >= *offset + h {
                *offset = cursor + 1 - h;
            }
            // No empty space below the end after the pane grew.
            *offset = (*offset).min(len.saturating_sub(h));
        };
        let list_h = areas.list.map_or(10, view::list_body_height) as usize;
        fit(
            self.list.selected,
            &mut self.list.offset,
            list_h,
            self.list.sagas.len(),
        );
        if let Some(t) = self.timeline.as_mut() {
            let h = areas.timeline.map_or(10, view::timeline_body_height) as usize;
            fit(t.cursor, &mut t.offset, h, t.marks.len());
        }
        let dh = areas.detail.map_or(10, view::detail_body_height) as usize;
        let dlen = self.detail_len();
        fit(self.detail.line, &mut self.detail.offset, dh, dlen);
    }

    fn on_mouse(&mut self, m: MouseEvent) {
        if self.mode != Mode::Normal {
            return;
        }
        let areas = view::layout(Rect::new(0, 0, self.size.0, self.size.1), self.focus);
        let inside = |r: Option<Rect>| {
            r.filter(|r| {
                m.column >= r.x
                    && m.column < r.x + r.width
                    && m.row >= r.y
                    && m.row < r.y + r.height
            })
        };
        if let Some(r) = inside(areas.timeline) {
            self.focus = Pane::Timeline;
            match m.kind {
                MouseEventKind::ScrollDown => self.scrub_by(1),
                MouseEventKind::ScrollUp => self.scrub_by(-1),
                MouseEventKind::Down(MouseButton::Left) => {
                    if let Some(t) = &self.timeline {
                        let body = view::timeline_body_top(r);
                        if m.row >= body {
                            let i = t.offset + (m.row - body) as usize;
                            if i < t.marks.len() {
                                self.scrub_to(i);
                            }
                        } else if m.row == body.saturating_sub(1) {
                            // The strip: one column per snapshot around the cursor.
                            let (start, _) =
                                view::strip_window(t, r.width.saturating_sub(2) as usize);
                            let i = start + (m.column.saturating_sub(r.x + 1)) as usize;
                            if i < t.marks.len() {
                                self.scrub_to(i);
                            }
                        }
                    }
                }
                _ => {}
            }
        } else if let Some(r) = inside(areas.list) {
            self.focus = Pane::List;
            match m.kind {
                MouseEventKind::ScrollDown => self.list_move(1),
                MouseEventKind::ScrollUp => self.list_move(-1),
                MouseEventKind::Down(MouseButton::Left) => {
                    let body = view::list_body_top(r);
                    if m.row >= body {
                        let i = self.list.offset + (m.row - body) as usize;
                        if i < self.list.sagas.len() {
                            let by = i as i64 - self.list.selected as i64;
                            self.list_move(by);
                        }
                    }
                }
                _ => {}
            }
        } else if inside(areas.detail).is_some() {
            self.focus = Pane::Detail;
            match m.kind {
                MouseEventKind::ScrollDown => self.detail_move(3),
                MouseEventKind::ScrollUp => self.detail_move(-3),
                _ => {}
            }
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
        lines.push((
            Tone::Dim,
            format!(
                "checkpoint: #{} {} ({}) {}",
                cp.step_index,
                cp.step_name,
                cp.status.as_str(),
                short_id(&cp.snapshot_id)
            ),
        ));
    }
    lines.push((Tone::Text, String::new()));
    lines.push((Tone::Text, "steps:".into()));
    for s in &plan.steps_skipped {
        lines.push((Tone::Dim, format!("  skip    {s}")));
    }
    for s in &plan.steps_to_run {
        lines.push((Tone::Run, format!("  run     {s}")));
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
    lines.push((Tone::Dim, "Esc closes · R replays for real".into()));
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

/// Palette completions for what has been typed so far.
pub fn palette_candidates(text: &str) -> Vec<&'static str> {
    const VERBS: [&str; 6] = ["at", "saga", "sort", "filter", "export", "help"];
    let head = text.split(' ').next().unwrap_or("");
    let mut out: Vec<&'static str> = VERBS
        .iter()
        .copied()
        .filter(|v| v.starts_with(head))
        .collect();
    let names: Vec<&'static str> = COMMANDS
        .iter()
        .map(|d| d.name)
        .filter(|n| n.starts_with(head) && !out.contains(n))
        .collect();
    out.extend(names);
    out
}
