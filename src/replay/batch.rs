//! Batch replays: select sagas (by filter or by id), apply one checkpoint
//! step and override to each, dry run or real, with bounded concurrency,
//! and summarize the failures grouped by step and kind of error (see
//! [`failure_groups`]). Sagas already replayed successfully are skipped, so
//! a batch can be re-run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use super::artifact::{LeftOut, PlanFile, PlanSet, PLAN_SET_FORMAT};
use super::effects::load_histories;
use super::failures::error_group_key;
use super::plan::{build_plan, PlanInput, ReplayPlan};
use super::run::{new_log, replay_saga, ReplayError, ReplayOptions, ReplaySpec};
use crate::engine::Definitions;
use crate::model::{ReplayLog, ReplayStatus, Timestamp};
use crate::store::{SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// Which sagas a batch takes.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every saga the filter lists, in the store's list order.
    Filter(SagaFilter),
    /// Exact saga ids (from a file or stdin).
    Ids(Vec<String>),
}

/// A batch.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    /// Which sagas to replay.
    pub selection: Selection,
    /// The checkpoint step and override applied to every saga.
    pub spec: ReplaySpec,
    /// Who, why, dry run or not, and the replay lock settings; shared by every
    /// replay of the batch.
    pub opts: ReplayOptions,
    /// Replays in flight at once (at least 1).
    pub concurrency: usize,
    /// At most this many sagas.
    pub limit: Option<usize>,
}

/// What happened to one saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemResult {
    /// Replayed successfully, or a dry run found no problem.
    Ok,
    /// The replay ran and failed.
    Failed,
    /// Refused by a guard, and why (the error): already replayed
    /// successfully (`--again`), completed (`--allow-completed`), or maybe
    /// still running (`--force`). A dry run skips exactly what the real run
    /// would.
    Skipped,
    /// Another replay of it is running.
    Locked,
    /// An earlier replay of it was killed part way (see `replay::recover`):
    /// not replayed again, so its completed steps do not run twice.
    Abandoned,
    /// It could not be replayed (no definition, no snapshot, store error).
    Error,
}

/// One saga's line in the batch output.
#[derive(Debug, Clone, Serialize)]
pub struct BatchItem {
    /// The saga's id.
    pub saga_id: String,
    /// The saga's name when known, from the filter's listing or the
    /// checkpoint; `None` otherwise (e.g. an id skipped, or without a
    /// checkpoint).
    pub saga_name: Option<String>,
    /// What happened to it.
    pub result: ItemResult,
    /// The step it failed at (or would fail at).
    pub step: Option<String>,
    /// Why it failed, would fail, was locked or could not be replayed; `None`
    /// for [`ItemResult::Ok`] and [`ItemResult::Skipped`].
    pub error: Option<String>,
    /// The replay-log entry written for it (for [`ItemResult::Abandoned`], the
    /// abandoned replay's); `None` when nothing was logged.
    pub replay_id: Option<String>,
    /// The saga the replay created (for [`ItemResult::Skipped`], the one the
    /// earlier successful replay created); `None` for dry runs.
    pub new_saga_id: Option<String>,
    /// Seconds spent on this saga: its replay (or the checks that skipped
    /// it), start to end; in a dry run, its share of the batched round trips
    /// of the sagas planned with it.
    #[serde(default)]
    pub elapsed_secs: f64,
}

impl BatchItem {
    /// An item not yet processed: `ok` until something says otherwise.
    pub fn new(saga_id: String, saga_name: Option<String>) -> Self {
        BatchItem {
            saga_id,
            saga_name,
            result: ItemResult::Ok,
            step: None,
            error: None,
            replay_id: None,
            new_saga_id: None,
            elapsed_secs: 0.0,
        }
    }
}

/// Failures that share a step and a kind of error: error texts that differ
/// only in ids, numbers, uuids and timestamps ("card token for order
/// ord-1012 expired", "… ord-1013 expired") are one group.
#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    /// The step the sagas failed (or would fail) at; `-` when unknown.
    pub step: String,
    /// The error the group shares, as its grouping key: the error text with
    /// ids, numbers, uuids and timestamps replaced by placeholders (`<id>`,
    /// `<n>`, `<uuid>`, `<time>`; see
    /// [`error_group_key`](crate::replay::failures::error_group_key)); empty
    /// when there was no error text. An error without such parts is its own
    /// key, as before grouping normalised them.
    pub error: String,
    /// One real error of the group, as the replay reported it: the error of
    /// the first saga in [`saga_ids`](Self::saga_ids).
    pub example: String,
    /// How many sagas are in the group.
    pub count: usize,
    /// The first few sagas in the group (at most 10).
    pub saga_ids: Vec<String>,
}

/// The outcome of a batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    /// Whether the batch was a dry run (nothing executed).
    pub dry_run: bool,
    /// The checkpoint step every saga was replayed from.
    pub from_step: String,
    /// Sagas processed: the sum of the counts below.
    pub total: usize,
    /// Sagas replayed successfully, or whose dry run found no problem ([`ItemResult::Ok`]).
    pub ok: usize,
    /// Sagas whose replay ran and failed ([`ItemResult::Failed`]).
    pub failed: usize,
    /// Sagas a guard refused ([`ItemResult::Skipped`]).
    pub skipped: usize,
    /// Sagas another replay held the lock of ([`ItemResult::Locked`]).
    pub locked: usize,
    /// Sagas with an abandoned replay, left for `replay recover`.
    pub abandoned: usize,
    /// Sagas that could not be replayed at all ([`ItemResult::Error`]).
    pub errors: usize,
    /// Wall-clock time the batch took, in seconds.
    pub elapsed_secs: f64,
    /// [`total`](Self::total) divided by [`elapsed_secs`](Self::elapsed_secs) (0 when no time passed).
    pub sagas_per_sec: f64,
    /// Every saga not ok nor skipped, grouped by step and kind of error
    /// (see [`failure_groups`]), largest group first.
    pub failure_groups: Vec<FailureGroup>,
}

impl BatchSummary {
    /// Any saga that failed, or could not be replayed.
    pub fn has_problems(&self) -> bool {
        self.failed + self.locked + self.abandoned + self.errors > 0
    }
}

/// The sagas a selection names, with their names when the list gives them.
pub async fn select(
    store: &dyn SnapshotStore,
    selection: &Selection,
    limit: Option<usize>,
) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let cap = limit.unwrap_or(usize::MAX);
    match selection {
        Selection::Ids(ids) => Ok(ids.iter().take(cap).map(|i| (i.clone(), None)).collect()),
        Selection::Filter(f) => {
            let mut out = Vec::new();
            let mut page = SagaPageRequest {
                limit: 1000,
                after: None,
            };
            loop {
                let p = store.list_sagas(f, &page).await?;
                for s in p.sagas {
                    if out.len() >= cap {
                        return Ok(out);
                    }
                    out.push((s.saga_id, Some(s.saga_name)));
                }
                match p.next {
                    Some(n) if out.len() < cap => page.after = Some(n),
                    _ => return Ok(out),
                }
            }
        }
    }
}

async fn one(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    req: &BatchRequest,
    saga_id: String,
    saga_name: Option<String>,
) -> BatchItem {
    let mut item = BatchItem::new(saga_id.clone(), saga_name.clone());
    let r = replay_saga(
        store,
        defs,
        &saga_id,
        saga_name.as_deref(),
        &req.spec,
        &req.opts,
        &|_| {},
    )
    .await;
    replay_result(&mut item, r, req.opts.dry_run, &req.spec.from_step);
    item
}

/// A replay's result as a batch item.
fn replay_result(
    item: &mut BatchItem,
    r: Result<super::run::ReplayReport, ReplayError>,
    dry_run: bool,
    from_step: &str,
) {
    match r {
        Ok(rep) => {
            item.saga_name = rep.plan.saga_name.clone();
            item.replay_id = Some(rep.log.replay_id.clone());
            if !dry_run {
                item.new_saga_id = Some(rep.log.new_saga_id.clone());
            }
            if !dry_run && !rep.succeeded() {
                item.result = ItemResult::Failed;
                item.step = rep.outcome.as_ref().and_then(|o| o.failed_step.clone());
                item.error = rep.outcome.as_ref().and_then(|o| o.error.clone());
            }
        }
        Err(ReplayError::Locked(e)) => {
            item.result = ItemResult::Locked;
            item.error = Some(e.to_string());
        }
        Err(ReplayError::Abandoned(a)) => {
            item.result = ItemResult::Abandoned;
            item.new_saga_id = Some(a.log.new_saga_id.clone());
            item.replay_id = Some(a.log.replay_id.clone());
            item.error = Some(ReplayError::Abandoned(a).to_string());
        }
        Err(ReplayError::Plan(p)) => plan_refused(item, &p, from_step),
        Err(e) => {
            item.result = ItemResult::Error;
            item.error = Some(e.to_string());
        }
    }
}

/// What a plan with errors makes of a batch item: a saga a guard refuses
/// (completed, already replayed, maybe still running) is skipped, and says
/// why; any other error (no definition, unknown step, no checkpoint, a
/// step that must not run again) is an error. The same for dry and real
/// runs, so a dry run's counts are the real run's.
fn plan_refused(item: &mut BatchItem, plan: &ReplayPlan, from_step: &str) {
    item.saga_name = plan.saga_name.clone();
    let first = plan.first_error();
    item.error = first.map(|e| e.message.clone());
    if first.is_some_and(|e| e.kind.is_guard()) && plan.errors.iter().all(|e| e.kind.is_guard()) {
        item.result = ItemResult::Skipped;
    } else {
        item.result = ItemResult::Error;
        item.step = Some(from_step.to_string());
    }
}

/// Dry-run logs are written this many at a time (one statement each).
const DRY_RUN_CHUNK: usize = 250;

/// Dry runs of a chunk of sagas: the same plans their real runs would
/// build, from the same histories and guards, read for the whole chunk at
/// once ([`load_histories`]: three reads on the SQL stores).
async fn dry_run_chunk(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    req: &BatchRequest,
    chunk: Vec<(String, Option<String>)>,
    keep_plans: bool,
) -> Vec<(BatchItem, Option<ReplayLog>, Option<PlanFile>)> {
    let started = Instant::now();
    let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
    let mut histories = match load_histories(store.as_ref(), &ids).await {
        Ok(h) => h,
        Err(e) => {
            return chunk
                .into_iter()
                .map(|(id, name)| {
                    let mut item = BatchItem::new(id, name);
                    item.result = ItemResult::Error;
                    item.error = Some(e.to_string());
                    (item, None, None)
                })
                .collect()
        }
    };
    let now = Timestamp::now();
    let share = |n: usize| started.elapsed().as_secs_f64() / n.max(1) as f64;
    let n = chunk.len();
    let mut out = Vec::with_capacity(n);
    for (saga_id, saga_name) in chunk {
        let mut item = BatchItem::new(saga_id.clone(), saga_name.clone());
        let history = histories.remove(&saga_id).unwrap_or_default();
        let plan = build_plan(
            PlanInput {
                saga_id: &saga_id,
                saga_name: saga_name.as_deref(),
                spec: &req.spec,
                now,
                lock_ttl: req.opts.lock_ttl,
            },
            &history,
            &|n| defs.get(n),
        );
        if !plan.is_ok() {
            plan_refused(&mut item, &plan, &req.spec.from_step);
            out.push((item, None, None));
            continue;
        }
        item.saga_name = plan.saga_name.clone();
        let mut log = new_log(&plan, &req.spec, &req.opts, ReplayStatus::Success);
        log.completed_at = Some(log.created_at);
        item.replay_id = Some(log.replay_id.clone());
        let file = keep_plans
            .then(|| {
                PlanFile::new(
                    &req.spec,
                    &plan,
                    &history,
                    &req.opts.initiated_by,
                    Some(log.replay_id.clone()),
                )
            })
            .flatten();
        out.push((item, Some(log), file));
    }
    let each = share(n);
    for (item, _, _) in &mut out {
        item.elapsed_secs = each;
    }
    out
}

/// Writes a chunk's dry-run log entries; a chunk the store refuses turns
/// its items into errors.
async fn save_dry_runs(
    store: &Arc<dyn SnapshotStore>,
    chunk: Vec<(BatchItem, Option<ReplayLog>, Option<PlanFile>)>,
) -> Vec<(BatchItem, Option<PlanFile>)> {
    let logs: Vec<ReplayLog> = chunk.iter().filter_map(|(_, l, _)| l.clone()).collect();
    let saved = if logs.is_empty() {
        Ok(())
    } else {
        store.save_replays(&logs).await
    };
    chunk
        .into_iter()
        .map(|(mut item, log, plan)| {
            if let (Err(e), Some(_)) = (&saved, log) {
                item.result = ItemResult::Error;
                item.error = Some(e.to_string());
                item.replay_id = None;
                return (item, None);
            }
            (item, plan)
        })
        .collect()
}

/// Runs the batch over `targets` (from [`select`]): dry runs plan each saga
/// as its real replay would (same history, same guards) and log the plans
/// in chunks; real runs replay each under its lock.
pub async fn run_batch(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    req: &BatchRequest,
    targets: Vec<(String, Option<String>)>,
    on_item: &(dyn Fn(&BatchItem) + Send + Sync),
) -> (BatchSummary, Vec<BatchItem>) {
    let (summary, items, _) = batch_inner(store, defs, req, targets, false, on_item).await;
    (summary, items)
}

/// A batch dry run that also returns the plans, as a plan set to write
/// for `replay apply` (sagas skipped or not plannable are left out, with
/// why).
pub async fn dry_run_plan_set(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    req: &BatchRequest,
    targets: Vec<(String, Option<String>)>,
    on_item: &(dyn Fn(&BatchItem) + Send + Sync),
) -> (BatchSummary, Vec<BatchItem>, PlanSet) {
    let (summary, items, plans) = batch_inner(store, defs, req, targets, true, on_item).await;
    let left_out = items
        .iter()
        .filter(|i| i.result != ItemResult::Ok)
        .map(|i| LeftOut {
            saga_id: i.saga_id.clone(),
            reason: i.error.clone().unwrap_or_else(|| format!("{:?}", i.result)),
        })
        .collect();
    let set = PlanSet {
        format: PLAN_SET_FORMAT.into(),
        created_at: crate::model::Timestamp::now(),
        created_by: req.opts.initiated_by.clone(),
        plans,
        left_out,
    };
    (summary, items, set)
}

/// Applies every plan of a set ([`super::apply_plan`] each, `concurrency`
/// at a time): a saga that changed since is an error item, not replayed.
pub async fn apply_plan_set(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    set: &PlanSet,
    opts: &ReplayOptions,
    concurrency: usize,
    on_item: &(dyn Fn(&BatchItem) + Send + Sync),
) -> Vec<BatchItem> {
    futures::stream::iter(set.plans.iter())
        .map(|file| async move {
            let mut item = BatchItem::new(
                file.plan.original_saga_id.clone(),
                file.plan.saga_name.clone(),
            );
            let t = Instant::now();
            let r = super::run::apply_plan(store, defs, file, opts, &|_| {}).await;
            replay_result(&mut item, r, false, &file.plan.from_step);
            item.elapsed_secs = t.elapsed().as_secs_f64();
            item
        })
        .buffer_unordered(concurrency.max(1))
        .inspect(|i| on_item(i))
        .collect()
        .await
}

async fn batch_inner(
    store: &Arc<dyn SnapshotStore>,
    defs: &Definitions,
    req: &BatchRequest,
    targets: Vec<(String, Option<String>)>,
    keep_plans: bool,
    on_item: &(dyn Fn(&BatchItem) + Send + Sync),
) -> (BatchSummary, Vec<BatchItem>, Vec<PlanFile>) {
    let started = Instant::now();
    let mut plans = Vec::new();
    let items: Vec<BatchItem> = if req.opts.dry_run {
        let chunks: Vec<Vec<(String, Option<String>)>> =
            targets.chunks(DRY_RUN_CHUNK).map(<[_]>::to_vec).collect();
        // Each chunk is four statements (three reads, one write); a few in
        // flight keep the store busy.
        let done: Vec<(BatchItem, Option<PlanFile>)> = futures::stream::iter(chunks)
            .map(|c| async move {
                let planned = dry_run_chunk(store, defs, req, c, keep_plans).await;
                save_dry_runs(store, planned).await
            })
            .buffer_unordered(req.concurrency.clamp(1, 8))
            .flat_map(futures::stream::iter)
            .inspect(|(i, _)| on_item(i))
            .collect()
            .await;
        done.into_iter()
            .map(|(item, plan)| {
                plans.extend(plan);
                item
            })
            .collect()
    } else {
        futures::stream::iter(targets)
            .map(|(id, name)| async move {
                let t = Instant::now();
                let mut item = one(store, defs, req, id, name).await;
                item.elapsed_secs = t.elapsed().as_secs_f64();
                item
            })
            .buffer_unordered(req.concurrency.max(1))
            .inspect(|i| on_item(i))
            .collect()
            .await
    };
    let summary = summarize(
        &items,
        req.opts.dry_run,
        &req.spec.from_step,
        started.elapsed().as_secs_f64(),
    );
    (summary, items, plans)
}

/// Counts and failure groups of a batch's items.
pub fn summarize(
    items: &[BatchItem],
    dry_run: bool,
    from_step: &str,
    elapsed: f64,
) -> BatchSummary {
    let count = |r: ItemResult| items.iter().filter(|i| i.result == r).count();
    let failure_groups = failure_groups(items);
    BatchSummary {
        dry_run,
        from_step: from_step.to_string(),
        total: items.len(),
        ok: count(ItemResult::Ok),
        failed: count(ItemResult::Failed),
        skipped: count(ItemResult::Skipped),
        locked: count(ItemResult::Locked),
        abandoned: count(ItemResult::Abandoned),
        errors: count(ItemResult::Error),
        elapsed_secs: elapsed,
        sagas_per_sec: if elapsed > 0.0 {
            items.len() as f64 / elapsed
        } else {
            0.0
        },
        failure_groups,
    }
}

/// Every item neither ok nor skipped, grouped by the step it failed at and
/// the [grouping key](error_group_key) of its error, largest group first
/// (then by step and error, so equal counts keep a stable order). Each group
/// keeps the first item's error as its [`example`](FailureGroup::example).
pub fn failure_groups(items: &[BatchItem]) -> Vec<FailureGroup> {
    let mut groups: BTreeMap<(String, String), FailureGroup> = BTreeMap::new();
    for i in items {
        if matches!(i.result, ItemResult::Ok | ItemResult::Skipped) {
            continue;
        }
        let step = i.step.clone().unwrap_or_else(|| "-".into());
        let example = i.error.clone().unwrap_or_default();
        let error = error_group_key(&example);
        let g = groups
            .entry((step.clone(), error.clone()))
            .or_insert(FailureGroup {
                step,
                error,
                example,
                count: 0,
                saga_ids: Vec::new(),
            });
        g.count += 1;
        if g.saga_ids.len() < 10 {
            g.saga_ids.push(i.saga_id.clone());
        }
    }
    let mut groups: Vec<FailureGroup> = groups.into_values().collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.step.cmp(&b.step))
            .then_with(|| a.error.cmp(&b.error))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(saga_id: &str, result: ItemResult, step: &str, error: &str) -> BatchItem {
        BatchItem {
            saga_id: saga_id.into(),
            saga_name: Some("OrderSaga".into()),
            result,
            step: Some(step.into()),
            error: Some(error.into()),
            replay_id: None,
            new_saga_id: None,
            elapsed_secs: 0.0,
        }
    }

    #[test]
    fn errors_differing_only_in_order_ids_are_one_group_with_a_real_example() {
        let items: Vec<BatchItem> = (0..4)
            .map(|n| {
                item(
                    &format!("saga-{n}"),
                    ItemResult::Failed,
                    "charge_payment",
                    &format!("card token for order ord-101{n} expired"),
                )
            })
            .chain([
                item(
                    "saga-9",
                    ItemResult::Failed,
                    "charge_payment",
                    "card declined",
                ),
                item(
                    "saga-ok",
                    ItemResult::Ok,
                    "charge_payment",
                    "card token for order ord-1 expired",
                ),
                item("saga-skip", ItemResult::Skipped, "charge_payment", "x"),
            ])
            .collect();
        let groups = failure_groups(&items);
        assert_eq!(groups.len(), 2, "{groups:?}");
        let g = &groups[0];
        assert_eq!(g.count, 4);
        assert_eq!(g.step, "charge_payment");
        assert_eq!(
            g.error,
            error_group_key("card token for order ord-1010 expired")
        );
        assert_ne!(
            g.error, g.example,
            "the key has placeholders, the example does not"
        );
        assert_eq!(g.saga_ids[0], "saga-0");
        assert_eq!(g.example, "card token for order ord-1010 expired");
        assert_eq!(g.saga_ids, ["saga-0", "saga-1", "saga-2", "saga-3"]);
        assert_eq!(
            (groups[1].count, groups[1].error.as_str()),
            (1, "card declined")
        );
        assert_eq!(groups[1].example, "card declined");
    }

    #[test]
    fn the_same_error_at_different_steps_stays_apart_and_ties_keep_a_stable_order() {
        let items = [
            item(
                "b",
                ItemResult::Failed,
                "ship_order",
                "timeout after 3 tries",
            ),
            item(
                "a",
                ItemResult::Error,
                "charge_payment",
                "timeout after 5 tries",
            ),
        ];
        let groups = failure_groups(&items);
        let steps: Vec<&str> = groups.iter().map(|g| g.step.as_str()).collect();
        assert_eq!(steps, ["charge_payment", "ship_order"]);
        assert_eq!(groups[0].error, groups[1].error);
        assert_eq!(groups[0].example, "timeout after 5 tries");
    }
}
