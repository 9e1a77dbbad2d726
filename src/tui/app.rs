//! The App state and `update`: every input becomes an [`Action`], and
//! `update` is the only place state changes. Store work is queued as
//! [`Request`]s (drained by the event loop into background jobs) and comes
//! back as `Action::Data`; one check ([`Tickets`]) drops any response that
//! is not the newest of its slot.
//!
//! The updates live by feature, each an `impl App` of its own: the saga
//! list, the timeline, the detail pane, the replay flow (with its panel and
//! the override editor), keys and input lines, and the mouse.

mod batch_form;
mod detail;
mod guards;
mod input;
mod keys;
mod line;
mod list;
mod live;
mod mouse;
mod overview;
mod panels;
mod replay;
mod reveal;
mod timeline;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::content::{Rendered, Seg};
use super::editor::{Draft, Editor};
pub use super::keymap::palette_candidates;
use super::keymap::Keymap;
pub use super::layout::Pane;
pub use super::messages::Action;
pub use super::messages::RevealGrant;
use super::messages::{DetailKey, Mark, ReplaysView, Request, Response, Slot, Tickets};
use super::theme::Theme;
use crate::model::{SagaSummary, Timestamp};
use crate::store::{SagaCursor, SagaFilter};
pub use batch_form::{BatchForm, BatchRun, FormField};
pub use guards::overridden_flags;
pub use overview::OverviewPage;
pub use panels::{event_line, plan_panel, plan_panel_with_keys};
pub use replay::ReplayFlow;

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
    /// Why the open saga is revealed (required; recorded in the audit log).
    RevealReason,
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
    /// A dry run's plan that a real replay could follow: `R` in the panel
    /// asks for it.
    pub replay_offer: bool,
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
        /// Where typing goes, a byte offset on a char boundary of `text`.
        cursor: usize,
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
    pub selected: usize,
    pub offset: usize,
    pub filter_text: String,
    pub filter: SagaFilter,
    /// Why the filter being typed is not applied (the last good one is).
    pub filter_error: Option<String>,
    /// The filter text before `/` opened, for Esc to go back to.
    pub filter_before: Option<String>,
    /// A filter typed while a page was loading: it is asked for when that
    /// page arrives, so a burst of typing costs one store query at a time.
    pub filter_queued: bool,
    /// How many sagas match the filter, once the store has counted them.
    pub total: Option<u64>,
    pub sort: Sort,
    pub bad: usize,
    /// Live: sagas that appeared since the list was loaded, waiting above
    /// it (the "N new" marker) until the selection goes to the top.
    pub incoming: Vec<SagaSummary>,
    /// More appeared than one poll reads: taking them in reloads the list.
    pub incoming_more: bool,
    /// Set while the list shows a failure group from the overview (what
    /// the title says instead of the filter); any reload clears it.
    pub group: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TimelinePane {
    pub saga: SagaSummary,
    pub marks: Vec<Mark>,
    pub complete: bool,
    pub load: Load,
    pub cursor: usize,
    pub offset: usize,
    /// `f`: the cursor stays on the newest snapshot as new ones arrive.
    pub follow: bool,
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
    /// Selected line (in visible lines) and first line shown.
    pub line: usize,
    pub offset: usize,
    pub folded: HashSet<Arc<[Seg]>>,
    pub search: Option<String>,
    pub replays: Option<ReplaysView>,
    pub replays_for: Option<String>,
    pub replays_load: Load,
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
    /// How often new sagas and snapshots are looked for; `None`: never.
    pub live: Option<Duration>,
    /// The sensitive-field patterns the store masks with; `None` when it
    /// masks nothing (then there is nothing to reveal).
    pub sensitive: super::masking::Sensitive,
}

/// The whole UI state.
#[derive(Debug)]
pub struct App {
    pub now: Timestamp,
    pub cfg: AppConfig,
    pub conn: Conn,
    last_health: Option<Timestamp>,
    pub focus: Pane,
    pub mode: Mode,
    pub list: ListPane,
    pub timeline: Option<TimelinePane>,
    pub detail: DetailPane,
    pub pin: Option<Pin>,
    pub message: Option<Message>,
    pub size: (u16, u16),
    pub quit: bool,
    /// The newest request of each slot: decides which responses apply.
    tickets: Tickets,
    outbox: Vec<Request>,
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
    /// Where a replay or batch replay is: asked, confirmed, running.
    pub replay: ReplayFlow,
    /// The saga and step the override was last edited for: batches from
    /// the list use that step and that override. (Editor state, not the
    /// replay flow's: it outlives any number of replays.)
    pub batch_from: Option<(String, String)>,
    /// Sagas marked for a batch (saga ids).
    pub marked: HashSet<String>,
    /// Keys (and mouse events behind them) waiting, in arrival order, for
    /// what the first of them acts on to load.
    held: VecDeque<Action>,
    /// When the oldest held key started waiting.
    held_since: Option<Timestamp>,
    /// Slots with a request still unanswered.
    in_flight: HashSet<Slot>,
    /// Whether the list request on its way extends the list (else it
    /// replaces it).
    list_appending: bool,
    /// When the store was last asked for what is new.
    last_live: Option<Timestamp>,
    /// The overview page, when open (it takes the keys).
    pub overview: Option<OverviewPage>,
    /// The batch form `b` / `B` open (it takes the keys).
    pub batch_form: Option<BatchForm>,
    /// The saga shown unmasked, and why (`V`; until the saga is closed or
    /// `V` again).
    pub revealed: Option<RevealGrant>,
    /// The saga whose reveal is being asked for (captured when the reason
    /// prompt opens) or whose audit event is being written.
    reveal_asked: Option<RevealGrant>,
}

impl App {
    /// A new App; queues the first health check and list page.
    pub fn new(cfg: AppConfig, now: Timestamp, size: (u16, u16)) -> App {
        let mut app = App {
            now,
            cfg,
            conn: Conn::Connecting,
            last_health: None,
            focus: Pane::List,
            mode: Mode::Normal,
            list: ListPane {
                sagas: Vec::new(),
                next: None,
                load: Load::Idle,
                selected: 0,
                offset: 0,
                filter_text: String::new(),
                filter: SagaFilter::default(),
                filter_error: None,
                filter_before: None,
                filter_queued: false,
                total: None,
                sort: Sort::Time,
                bad: 0,
                incoming: Vec::new(),
                incoming_more: false,
                group: None,
            },
            timeline: None,
            detail: DetailPane {
                tab: Tab::Context,
                key: None,
                rendered: None,
                load: Load::Idle,
                line: 0,
                offset: 0,
                folded: HashSet::new(),
                search: None,
                replays: None,
                replays_for: None,
                replays_load: Load::Idle,
                replay_selected: 0,
            },
            pin: None,
            message: None,
            size,
            quit: false,
            tickets: Tickets::default(),
            outbox: Vec::new(),
            pending_jump: None,
            editor: None,
            drafts: HashMap::new(),
            external_edit: None,
            panel: None,
            replay: ReplayFlow::Idle,
            marked: HashSet::new(),
            batch_from: None,
            held: VecDeque::new(),
            held_since: None,
            in_flight: HashSet::new(),
            list_appending: false,
            last_live: None,
            overview: None,
            batch_form: None,
            revealed: None,
            reveal_asked: None,
        };
        app.check_health();
        app.reload_list();
        app
    }

    /// Queues a request under a fresh id, as the newest of its slot.
    fn ask(&mut self, make: impl FnOnce(u64) -> Request) {
        let req = make(self.tickets.next_id());
        self.tickets.issue(&req);
        self.in_flight.insert(req.slot());
        self.outbox.push(req);
    }

    /// Requests queued since the last call.
    pub fn take_requests(&mut self) -> Vec<Request> {
        std::mem::take(&mut self.outbox)
    }

    /// The id of the newest request of a slot (tests answer it by hand).
    pub fn newest_request(&self, slot: Slot) -> Option<u64> {
        self.tickets.newest(slot)
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
            || self.tickets.running(Slot::Plan)
            || self.panel.as_ref().is_some_and(|p| p.running)
            || !self.held.is_empty()
            || self
                .overview
                .as_ref()
                .is_some_and(|p| p.load == Load::Loading)
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

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        match action {
            // Keys and clicks in order, each once what it acts on is there.
            Action::Key(_) | Action::Mouse(_) => return self.on_input(action),
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
        // Whatever just happened may be what held keys were waiting for.
        self.release_held();
    }

    /// A background result: dropped unless it answers the newest request
    /// of its slot (the one stale check), else handed to its feature.
    fn on_data(&mut self, r: Response) {
        if !self.tickets.accept(&r) {
            return;
        }
        if r.is_final() {
            self.in_flight.remove(&r.ticket().0);
        }
        match r {
            Response::Health { result, .. } => self.on_health(result),
            Response::SagaPage { append, result, .. } => self.on_saga_page(append, result),
            Response::SagaCount { result, .. } => self.list.total = result.ok(),
            Response::Timeline {
                saga_id, result, ..
            } => self.on_timeline(saga_id, result),
            Response::Detail { result, .. } => self.on_detail(result),
            Response::Jump { result, .. } => self.on_jump(result),
            Response::Replays { result, .. } => self.on_replays(result),
            Response::OpenSaga { result, .. } => self.on_open_saga(result),
            Response::Exported { result, .. } => self.on_exported(result),
            Response::Revealed { grant, result, .. } => self.on_revealed(grant, result),
            Response::Plan { result, .. } => self.on_plan(result),
            Response::ReplayEvent { event, .. } => self.on_replay_event(&event),
            Response::Replayed { result, .. } => self.on_replayed(result),
            Response::BatchItem { item, .. } => self.on_batch_item(&item),
            Response::BatchDone { summary, .. } => self.on_batch_done(&summary),
            Response::LiveSagas { result, .. } => self.on_live_sagas(result),
            Response::LiveTimeline {
                saga_id, result, ..
            } => self.on_live_timeline(saga_id, result),
            Response::Overview { result, .. } => self.on_overview(result),
        }
    }

    // ----- the connection ---------------------------------------------------

    fn check_health(&mut self) {
        self.last_health = Some(self.now);
        self.ask(|id| Request::Health { id });
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
        self.release_stale();
        self.poll_live();
    }

    fn on_health(&mut self, result: super::messages::JobResult<Duration>) {
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

    /// A failed load: the pane says why, and a store that looks gone
    /// starts the reconnect countdown.
    fn load_failed(&mut self, e: super::messages::JobError) -> Load {
        let load = Load::Failed(e.message.clone());
        if e.unreachable {
            self.disconnected(e.message);
        }
        load
    }
}
