//! Background work: every store access and every heavy computation runs in
//! a tokio task and reports back as an [`Action::Data`]. One [`Slot`] per
//! kind of request: a new request aborts the one in its slot, and the App
//! drops any response that does not answer the newest request of its slot
//! ([`super::messages::Tickets`]).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::content::{self, Rendered, Seg};
use super::masking::{self, Sensitive};
use super::messages::Action;
pub use super::messages::{
    DetailKey, ExportWhat, JobError, JobResult, Jump, Mark, ReplaysView, Request, Response,
    RevealGrant, Slot, UNREADABLE,
};
use crate::compliance::{audit, mask};
use crate::engine::{Definitions, Event};
use crate::model::Timestamp;
use crate::replay::{self, ReplayOptions, ReplayPlan, ReplayReport, ReplaySpec, SnapshotRef};
use crate::store::{
    self as stores, Order, SagaPageRequest, SnapshotCursor, SnapshotQuery, SnapshotStore,
};

/// Snapshots per timeline page. The store returns whole snapshots, so this
/// bounds the transient memory of a page of 1 MB contexts; only metadata is kept.
pub const TIMELINE_PAGE: usize = 64;

/// Opens the store (again, after a lost connection).
pub type Opener =
    Arc<dyn Fn() -> BoxFuture<'static, Result<Arc<dyn SnapshotStore>, JobError>> + Send + Sync>;

/// A bounded cache by weight, oldest out first.
#[derive(Debug)]
pub struct Cache<V> {
    map: HashMap<DetailKey, (V, usize)>,
    order: VecDeque<DetailKey>,
    weight: usize,
    max_weight: usize,
}

impl<V: Clone> Cache<V> {
    pub fn new(max_weight: usize) -> Self {
        Cache {
            map: HashMap::new(),
            order: VecDeque::new(),
            weight: 0,
            max_weight,
        }
    }

    pub fn get(&self, k: &DetailKey) -> Option<V> {
        self.map.get(k).map(|(v, _)| v.clone())
    }

    pub fn insert(&mut self, k: DetailKey, v: V, w: usize) {
        if let Some((_, old)) = self.map.insert(k.clone(), (v, w)) {
            self.weight -= old;
            self.order.retain(|x| x != &k);
        }
        self.weight += w;
        self.order.push_back(k);
        while self.weight > self.max_weight && self.order.len() > 1 {
            if let Some(old) = self.order.pop_front() {
                if let Some((_, w)) = self.map.remove(&old) {
                    self.weight -= w;
                }
            }
        }
    }

    pub fn weight(&self) -> usize {
        self.weight
    }
}

/// Runs requests in the background.
pub struct Jobs {
    opener: Opener,
    store: Arc<tokio::sync::Mutex<Option<Arc<dyn SnapshotStore>>>>,
    tx: UnboundedSender<Action>,
    running: HashMap<Slot, JoinHandle<()>>,
    cache: Arc<Mutex<Cache<Arc<Rendered>>>>,
    /// The newest detail request: older ones stop before their heavy part
    /// (aborting a task cannot stop a blocking computation already started).
    latest_detail: Arc<AtomicU64>,
    replay_env: Arc<ReplayEnv>,
    /// What plans and replay logs are masked with.
    sensitive: Sensitive,
}

/// What replays need besides the store.
#[derive(Debug, Clone)]
pub struct ReplayEnv {
    pub definitions: Arc<Definitions>,
    /// Recorded as `initiated_by`.
    pub identity: String,
    pub lock_ttl: Duration,
}

impl Default for ReplayEnv {
    fn default() -> Self {
        ReplayEnv {
            definitions: Arc::new(Definitions::new()),
            identity: "sagascope-tui".into(),
            lock_ttl: replay::DEFAULT_LOCK_TTL,
        }
    }
}

/// Detail cache bound: a few dozen rendered snapshots, whatever their size.
const CACHE_BYTES: usize = 24 * 1024 * 1024;

impl Jobs {
    pub fn new(opener: Opener, tx: UnboundedSender<Action>) -> Jobs {
        Jobs {
            opener,
            store: Arc::new(tokio::sync::Mutex::new(None)),
            tx,
            running: HashMap::new(),
            cache: Arc::new(Mutex::new(Cache::new(CACHE_BYTES))),
            latest_detail: Arc::new(AtomicU64::new(0)),
            replay_env: Arc::new(ReplayEnv::default()),
            sensitive: None,
        }
    }

    /// The sensitive-field patterns the store masks with: plans computed
    /// from unmasked data and replay logs' overrides are masked with them.
    pub fn set_sensitive(&mut self, sensitive: Sensitive) {
        self.sensitive = sensitive;
    }

    /// Definitions and identity for dry runs and replays.
    pub fn set_replay_env(&mut self, env: ReplayEnv) {
        self.replay_env = Arc::new(env);
    }

    /// A store that is already open (tests, benchmarks).
    pub fn with_store(store: Arc<dyn SnapshotStore>, tx: UnboundedSender<Action>) -> Jobs {
        let s = store.clone();
        let opener: Opener = Arc::new(move || {
            let s = s.clone();
            Box::pin(async move { Ok(s) })
        });
        let jobs = Jobs::new(opener, tx);
        if let Ok(mut g) = jobs.store.try_lock() {
            *g = Some(store);
        }
        jobs
    }

    /// Whether any request is still running.
    pub fn busy(&self) -> bool {
        self.running.values().any(|h| !h.is_finished())
    }

    /// Starts a request, aborting the one it replaces.
    pub fn spawn(&mut self, req: Request) {
        let slot = req.slot();
        if let Some(old) = self.running.remove(&slot) {
            old.abort();
        }
        let tx = self.tx.clone();
        let store_slot = self.store.clone();
        let opener = self.opener.clone();
        let cache = self.cache.clone();
        if let Request::Detail { id, .. } = &req {
            self.latest_detail.store(*id, Ordering::SeqCst);
        }
        let latest = self.latest_detail.clone();
        let env = self.replay_env.clone();
        let sensitive = self.sensitive.clone();
        let handle = tokio::spawn(async move {
            let store = {
                let mut g = store_slot.lock().await;
                match &*g {
                    Some(s) => Ok(s.clone()),
                    None => match opener().await {
                        Ok(s) => {
                            *g = Some(s.clone());
                            Ok(s)
                        }
                        Err(e) => Err(e),
                    },
                }
            };
            let response = run(req, store, cache, latest, &env, &sensitive, &tx).await;
            let _ = tx.send(Action::Data(Box::new(response)));
        });
        self.running.insert(slot, handle);
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    req: Request,
    store: Result<Arc<dyn SnapshotStore>, JobError>,
    cache: Arc<Mutex<Cache<Arc<Rendered>>>>,
    latest: Arc<AtomicU64>,
    env: &ReplayEnv,
    sensitive: &Sensitive,
    tx: &UnboundedSender<Action>,
) -> Response {
    // Replays and their plans read the checkpoint unmasked: the override
    // is merged onto the real values, and a masked value is never written
    // into a new saga. What they show is masked again below.
    let replaying = matches!(
        req,
        Request::DryRun { .. } | Request::Batch { .. } | Request::Replay { .. }
    );
    let store = store.map(|s| if replaying { stores::unmasked(&s) } else { s });
    match req {
        Request::DryRun {
            id,
            saga_id,
            saga_name,
            spec,
            log,
            revealed,
        } => Response::Plan {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) if log => dry_run(&s, &saga_id, &saga_name, &spec, env).await,
                Ok(s) => replay::plan_replay(
                    s.as_ref(),
                    &env.definitions,
                    &saga_id,
                    Some(&saga_name),
                    &spec,
                    env.lock_ttl,
                )
                .await
                .map(|(plan, _)| plan)
                .map_err(JobError::from),
            }
            .map(|mut plan| {
                mask::lock_ciphertexts(&mut plan.merged_context);
                if let (Some(sens), false) = (sensitive, revealed) {
                    masking::mask_plan(sens, &saga_name, &mut plan);
                }
                plan
            }),
        },
        Request::Batch {
            id,
            targets,
            spec,
            dry_run,
            reason,
        } => match store {
            Err(e) => Response::BatchDone {
                id,
                summary: failed_batch(&spec, dry_run, targets.len(), &e.message),
            },
            Ok(s) => {
                let req = replay::batch::BatchRequest {
                    selection: replay::batch::Selection::Ids(
                        targets.iter().map(|t| t.0.clone()).collect(),
                    ),
                    spec,
                    opts: ReplayOptions {
                        reason,
                        dry_run,
                        ..ReplayOptions::new(&env.identity, env.lock_ttl)
                    },
                    concurrency: 4,
                    limit: None,
                };
                let on_item = |item: &replay::batch::BatchItem| {
                    let _ = tx.send(Action::Data(Box::new(Response::BatchItem {
                        id,
                        item: item.clone(),
                    })));
                };
                let (summary, _) =
                    replay::batch::run_batch(&s, &env.definitions, &req, targets, &on_item).await;
                Response::BatchDone { id, summary }
            }
        },
        Request::Replay {
            id,
            saga_id,
            saga_name,
            spec,
            reason,
        } => Response::Replayed {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => real_replay(&s, id, &saga_id, &saga_name, &spec, reason, env, tx).await,
            },
        },
        Request::Health { id } => Response::Health {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => {
                    let started = Instant::now();
                    match s.health().await {
                        Ok(h) if h.reachable => {
                            Ok(started.elapsed().min(h.latency.max(started.elapsed())))
                        }
                        Ok(h) => Err(JobError {
                            message: format!("{} is not reachable", h.url),
                            unreachable: true,
                        }),
                        Err(e) => Err(JobError {
                            unreachable: true,
                            ..JobError::from(e)
                        }),
                    }
                }
            },
        },
        Request::SagaPage {
            id,
            filter,
            after,
            limit,
        } => {
            let append = after.is_some();
            let result = match store {
                Err(e) => Err(e),
                Ok(s) => s
                    .list_sagas(&filter, &SagaPageRequest { limit, after })
                    .await
                    .map_err(JobError::from),
            };
            Response::SagaPage { id, append, result }
        }
        Request::LiveSagas { id, filter, limit } => Response::LiveSagas {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => s
                    .list_sagas(&filter, &SagaPageRequest { limit, after: None })
                    .await
                    .map_err(JobError::from),
            },
        },
        Request::LiveTimeline { id, saga_id, after } => {
            let result = match store {
                Err(e) => Err(e),
                Ok(s) => timeline_page(s.as_ref(), &saga_id, Some(after)).await,
            };
            Response::LiveTimeline {
                id,
                saga_id,
                result,
            }
        }
        Request::CountSagas { id, filter } => Response::SagaCount {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => s.count_sagas(&filter).await.map_err(JobError::from),
            },
        },
        Request::Timeline { id, saga_id, after } => {
            let result = match store {
                Err(e) => Err(e),
                Ok(s) => timeline_page(s.as_ref(), &saga_id, after).await,
            };
            Response::Timeline {
                id,
                saga_id,
                result,
            }
        }
        Request::Detail { id, key } => {
            let cached = cache.lock().ok().and_then(|c| c.get(&key));
            let result = match (cached, store) {
                (Some(r), _) => Ok(r),
                (None, Err(e)) => Err(e),
                (None, Ok(s)) if key.revealed => {
                    detail(stores::unmasked(&s).as_ref(), &key, &cache, id, &latest).await
                }
                (None, Ok(s)) => detail(s.as_ref(), &key, &cache, id, &latest).await,
            };
            Response::Detail { id, key, result }
        }
        Request::AtTime { id, saga_id, at } => Response::Jump {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => replay::resolve_snapshot(s.as_ref(), &saga_id, &SnapshotRef::At(at))
                    .await
                    .map(|snap| Jump {
                        note: format!(
                            "state at {}: snapshot taken {}",
                            at.to_rfc3339_z(),
                            snap.created_at.to_rfc3339_z()
                        ),
                        snapshot_id: snap.snapshot_id,
                    })
                    .map_err(JobError::from),
            },
        },
        Request::WhereChanged {
            id,
            saga_id,
            from,
            path,
            forward,
        } => Response::Jump {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => where_changed(s.as_ref(), &saga_id, from, &path, forward).await,
            },
        },
        Request::Replays { id, saga_id } => {
            let result = match store {
                Err(e) => Err(e),
                Ok(s) => replays(s.as_ref(), &saga_id).await,
            }
            .map(|mut v| {
                // Overrides typed for replays hold sensitive values too.
                if let Some(sens) = sensitive {
                    for log in v.replays.iter_mut().chain(v.produced_by.as_mut()) {
                        mask::mask_replay_log(sens, log);
                    }
                }
                v
            });
            Response::Replays {
                id,
                saga_id,
                result,
            }
        }
        Request::OpenSaga { id, input } => Response::OpenSaga {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => replay::find_saga(s.as_ref(), &input)
                    .await
                    .map_err(JobError::from),
            },
        },
        Request::Export {
            id,
            what,
            path,
            reveal,
        } => Response::Exported {
            id,
            result: match (store, reveal) {
                (Err(e), _) => Err(e),
                (Ok(s), None) => export(s.as_ref(), what, path).await,
                (Ok(s), Some(grant)) => {
                    revealed_export(&s, what, path, &grant, env, sensitive).await
                }
            },
        },
        Request::Reveal { id, grant } => Response::Revealed {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => reveal(&s, &grant, env, sensitive, None).await,
            },
            grant,
        },
        Request::Overview { id, now } => Response::Overview {
            id,
            result: match store {
                Err(e) => Err(e),
                Ok(s) => replay::failures::overview(s.as_ref(), now, OVERVIEW_GROUPED)
                    .await
                    .map(Arc::new)
                    .map_err(JobError::from),
            },
        },
    }
}

/// Failures the overview reads for their errors (the newest): about a
/// second of single-snapshot reads on a remote store, in the background.
const OVERVIEW_GROUPED: usize = 1000;

/// The summary of a batch that could not start (the store is gone).
fn failed_batch(
    spec: &ReplaySpec,
    dry_run: bool,
    total: usize,
    error: &str,
) -> replay::batch::BatchSummary {
    replay::batch::BatchSummary {
        dry_run,
        from_step: spec.from_step.clone(),
        total,
        ok: 0,
        failed: 0,
        skipped: 0,
        locked: 0,
        abandoned: 0,
        errors: total,
        elapsed_secs: 0.0,
        sagas_per_sec: 0.0,
        failure_groups: vec![replay::batch::FailureGroup {
            step: spec.from_step.clone(),
            error: replay::failures::error_group_key(error),
            example: error.to_string(),
            count: total,
            saga_ids: Vec::new(),
        }],
    }
}

/// A dry run as the CLI's `replay run --dry-run` does it (the same
/// library call), so it is written to the replay log the same way; a plan
/// with errors comes back as the plan (nothing is logged, as in the CLI).
async fn dry_run(
    store: &Arc<dyn SnapshotStore>,
    saga_id: &str,
    saga_name: &str,
    spec: &ReplaySpec,
    env: &ReplayEnv,
) -> JobResult<ReplayPlan> {
    let opts = ReplayOptions {
        dry_run: true,
        ..ReplayOptions::new(&env.identity, env.lock_ttl)
    };
    match replay::replay_saga(
        store,
        &env.definitions,
        saga_id,
        Some(saga_name),
        spec,
        &opts,
        &|_| {},
    )
    .await
    {
        Ok(report) => Ok(report.plan),
        Err(replay::ReplayError::Plan(plan)) => Ok(*plan),
        Err(replay::ReplayError::Store(e)) => Err(JobError::from(e)),
        Err(other) => Err(JobError::msg(other.to_string())),
    }
}

#[allow(clippy::too_many_arguments)]
async fn real_replay(
    store: &Arc<dyn SnapshotStore>,
    id: u64,
    saga_id: &str,
    saga_name: &str,
    spec: &ReplaySpec,
    reason: Option<String>,
    env: &ReplayEnv,
    tx: &UnboundedSender<Action>,
) -> JobResult<ReplayReport> {
    let opts = ReplayOptions {
        reason,
        ..ReplayOptions::new(&env.identity, env.lock_ttl)
    };
    let events = |e: &Event| {
        let _ = tx.send(Action::Data(Box::new(Response::ReplayEvent {
            id,
            event: e.clone(),
        })));
    };
    replay::replay_saga(
        store,
        &env.definitions,
        saga_id,
        Some(saga_name),
        spec,
        &opts,
        &events,
    )
    .await
    .map_err(|e| match e {
        replay::ReplayError::Store(s) => JobError::from(s),
        other => JobError::msg(other.to_string()),
    })
}

/// Memory one read of the timeline may take in contexts (which it drops at
/// once, keeping metadata): reads shrink for sagas of big contexts (sagaz
/// contexts of 10 MB exist; 64 of them at once took the TUI past 800 MB)
/// and stay at a whole page for ordinary ones.
const TIMELINE_READ_BUDGET: usize = 16 * 1024 * 1024;

async fn timeline_page(
    store: &dyn SnapshotStore,
    saga_id: &str,
    after: Option<SnapshotCursor>,
) -> JobResult<(Vec<Mark>, Option<SnapshotCursor>)> {
    let mut after_at = after.as_ref().map(|c| c.created_at);
    let mut query = SnapshotQuery {
        order: Order::Asc,
        // Small first: the next read is sized by what this one held.
        limit: Some(4.min(TIMELINE_PAGE)),
        after,
        ..SnapshotQuery::default()
    };
    let mut marks: Vec<Mark> = Vec::new();
    loop {
        let listing = store.list_snapshots(saga_id, &query).await?;
        let bytes: usize = listing
            .items
            .iter()
            .map(|s| crate::model::context_bytes(&s.context).max(256))
            .sum();
        let per = bytes / listing.items.len().max(1);
        // Contexts are dropped here: the timeline keeps metadata only.
        // Broken entries stand where the store found them, so the
        // numbering is the store's and nothing is hidden.
        for e in listing.in_order() {
            match e {
                Ok(s) => marks.push(Mark::of(s)),
                Err(b) => {
                    let at = marks
                        .last()
                        .map(|m| m.created_at)
                        .or(after_at)
                        .or_else(|| listing.items.first().map(|s| s.created_at))
                        .unwrap_or_else(Timestamp::now);
                    marks.push(Mark::unreadable(b, at));
                }
            }
        }
        drop(listing.items);
        match listing.next {
            Some(next) if marks.len() < TIMELINE_PAGE => {
                after_at = Some(next.created_at);
                query.after = Some(next);
                let room = TIMELINE_PAGE - marks.len();
                query.limit = Some((TIMELINE_READ_BUDGET / per.max(1)).clamp(1, room));
            }
            next => return Ok((marks, next)),
        }
    }
}

async fn detail(
    store: &dyn SnapshotStore,
    key: &DetailKey,
    cache: &Arc<Mutex<Cache<Arc<Rendered>>>>,
    id: u64,
    latest: &Arc<AtomicU64>,
) -> JobResult<Arc<Rendered>> {
    let superseded = || JobError::msg("superseded by a newer request");
    let mut snap = store.get_snapshot(&key.snapshot_id).await?.ok_or_else(|| {
        JobError::msg(format!(
            "snapshot {} is gone from the store (press C-r to reload)",
            key.snapshot_id
        ))
    })?;
    // Revealed or not, a value whose key is not configured shows as 🔒.
    mask::lock_ciphertexts(&mut snap.context);
    let against = match &key.against {
        None => None,
        Some((id, label)) => match store.get_snapshot(id).await? {
            Some(mut s) => {
                mask::lock_ciphertexts(&mut s.context);
                Some((s, label.clone()))
            }
            None => {
                return Err(JobError::msg(format!(
                    "snapshot {id} to compare against is gone from the store"
                )))
            }
        },
    };
    if latest.load(Ordering::SeqCst) != id {
        return Err(superseded());
    }
    // Pretty-printing and diffing a 1 MB context takes a while: off the
    // async workers, and off the draw path entirely.
    let latest_b = latest.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        if latest_b.load(Ordering::SeqCst) != id {
            return None;
        }
        let a = against.as_ref().map(|(s, l)| (s, l.clone()));
        Some(content::render(&snap, a))
    })
    .await
    .map_err(|e| JobError::msg(format!("rendering failed: {e}")))?
    .ok_or_else(superseded)?;
    let rendered = Arc::new(rendered);
    // What a reveal shows is read again for each reveal, and gone from
    // memory once the pane moves on.
    if !key.revealed {
        if let Ok(mut c) = cache.lock() {
            c.insert(key.clone(), rendered.clone(), rendered.weight());
        }
    }
    Ok(rendered)
}

/// The jump to where the value at `path` last changed (back) or next
/// changes (forward), with the note shown after it.
async fn where_changed(
    store: &dyn SnapshotStore,
    saga_id: &str,
    from: SnapshotCursor,
    path: &[Seg],
    forward: bool,
) -> JobResult<Jump> {
    let label = content::path_label(path);
    let (snapshot_id, note) =
        match replay::jump_to_change(store, saga_id, &from, path, forward).await {
            Ok(replay::ChangeJump::ChangesNext(id)) => (id, format!("{label} changes next here")),
            Ok(replay::ChangeJump::LastChanged(id)) => (id, format!("{label} last changed here")),
            Ok(replay::ChangeJump::SinceFirst(id)) => (
                id,
                format!("{label} has had this value since the first snapshot"),
            ),
            Err(replay::WhereChangedError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(JobError::msg(e.to_string())),
        };
    Ok(Jump { snapshot_id, note })
}

async fn replays(store: &dyn SnapshotStore, saga_id: &str) -> JobResult<ReplaysView> {
    let listing = store.list_replays(saga_id, Some(200)).await?;
    let produced_by = store.replay_producing(saga_id).await?;
    Ok(ReplaysView {
        replays: listing.items,
        produced_by,
    })
}

/// A snapshot by id, or an error saying it is gone.
async fn get(store: &dyn SnapshotStore, snapshot_id: &str) -> JobResult<crate::model::Snapshot> {
    store
        .get_snapshot(snapshot_id)
        .await?
        .ok_or_else(|| JobError::msg(format!("snapshot {snapshot_id} is no longer in the store")))
}

async fn export(
    store: &dyn SnapshotStore,
    what: ExportWhat,
    path: PathBuf,
) -> JobResult<(PathBuf, usize)> {
    use crate::bundle::json_export::{self, JsonExportError};
    let msg = |e: JsonExportError| match e {
        JsonExportError::Store(s) => JobError::from(s),
        other => JobError::msg(other.to_string()),
    };
    let (value, count) = match what {
        ExportWhat::State(snapshot_id) => (
            json_export::state_json(store, &snapshot_id)
                .await
                .map_err(msg)?,
            1,
        ),
        ExportWhat::Saga(saga_id) => json_export::saga_json(store, &saga_id).await?,
        ExportWhat::Snapshot(snapshot_id) => (get(store, &snapshot_id).await?.to_json(), 1),
        ExportWhat::Diff { old, new } => {
            let (a, b) = (get(store, &old).await?, get(store, &new).await?);
            (replay::diff::diff_json(&a, &b), 1)
        }
        ExportWhat::Records(value, n) => (value, n),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_private_dir_all(dir)
            .map_err(|e| JobError::msg(format!("cannot create {}: {e}", dir.display())))?;
    }
    json_export::write_json_file(&path, &value)
        .await
        .map_err(msg)?;
    Ok((path, count))
}

/// Writes the audit event of a reveal of `grant`'s saga: who (the
/// identity), the saga, the sensitive paths its newest snapshot holds (the
/// saga's patterns when it has none readable), why, and `details`. The
/// reveal happens only once this is written.
async fn reveal(
    store: &Arc<dyn SnapshotStore>,
    grant: &RevealGrant,
    env: &ReplayEnv,
    sensitive: &Sensitive,
    details: Option<serde_json::Value>,
) -> JobResult<Vec<String>> {
    // The permission first (every actor may until access control is
    // configured): a refused reveal writes nothing and shows nothing.
    crate::compliance::reveal::can_reveal(&env.identity, &grant.saga_name).map_err(|e| {
        JobError::msg(format!(
            "{} may not reveal saga {}: {e}",
            env.identity, grant.saga_id
        ))
    })?;
    let mut paths = Vec::new();
    if let Some(sens) = sensitive {
        let raw = stores::unmasked(store);
        if let Ok(Some(s)) = raw.latest_snapshot(&grant.saga_id, None).await {
            paths = mask::sensitive_paths_present(sens, &grant.saga_name, &s.context);
        }
        if paths.is_empty() {
            paths = sens
                .for_saga(&grant.saga_name)
                .map(|p| p.to_string())
                .collect();
        }
    }
    let mut event = audit::AuditEvent::new(env.identity.clone(), "reveal");
    event.saga_id = Some(grant.saga_id.clone());
    event.paths = paths.clone();
    event.reason = Some(grant.reason.clone());
    event.details = details.unwrap_or(serde_json::Value::Null);
    audit::append(store.as_ref(), &event).await.map_err(|e| {
        JobError::msg(format!(
            "the audit event for revealing saga {} could not be written ({e})",
            grant.saga_id
        ))
    })?;
    Ok(paths)
}

/// An export of a revealed saga: unmasked, after an audit event of its own
/// (the file leaves the screen); nothing is written without the event.
async fn revealed_export(
    store: &Arc<dyn SnapshotStore>,
    what: ExportWhat,
    path: PathBuf,
    grant: &RevealGrant,
    env: &ReplayEnv,
    sensitive: &Sensitive,
) -> JobResult<(PathBuf, usize)> {
    let details = serde_json::json!({"export": path.display().to_string()});
    reveal(store, grant, env, sensitive, Some(details))
        .await
        .map_err(|e| JobError::msg(format!("not exported: {}", e.message)))?;
    export(stores::unmasked(store).as_ref(), what, path).await
}
