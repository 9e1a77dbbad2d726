//! Replays that are safe: plans over timelines really recorded by the
//! engine into a store (rolled back after 1, 2 and 3 steps; failed without
//! compensation; a compensation that itself failed; a replay of a replay),
//! each with the skip / re-run / run lists a person would expect; the
//! guards (completed, replayed before, maybe still running); batch dry runs
//! that predict the real run; plans written to a file and applied, or
//! refused once the saga changed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use sagascope::engine::{
    action, Definitions, Engine, RunRequest, SagaDefinition, SnapshotStrategies, SnapshotStrategy,
    Step,
};
use sagascope::model::{ReplayStatus, SagaStatus};
use sagascope::replay::artifact::PlanFile;
use sagascope::replay::batch::{run_batch, BatchRequest, ItemResult, Selection};
use sagascope::replay::{
    self, Compensated, PlanErrorKind, ReplayError, ReplayOptions, ReplayPlan, ReplaySpec,
    StepAction,
};
use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

type Log = Arc<Mutex<Vec<String>>>;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn SnapshotStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::new(format!("sqlite://{}/r.db", dir.path().display()));
    let s = store::open(&url, &OpenOptions::default()).await.unwrap();
    (dir, s)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A four-step saga `a` → `b` → `c` → `d`. A step fails when the context's
/// `fail_at` names it; a compensation fails when `undo_fails` names its
/// step. Step `a` has no compensation when `a_undoable` is false. Every
/// action and compensation that runs is recorded in `log` as `a`, `undo b`…
fn four_steps(log: Log, a_undoable: bool, strategies: &[SnapshotStrategy]) -> SagaDefinition {
    let step = |name: &'static str, log: Log| {
        action(move |ctx| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(name.to_string());
                if ctx.get("fail_at") == Some(&json!(name)) {
                    return Err(format!("{name} failed"));
                }
                let mut out = Map::new();
                // A new effect each time the step runs (a reservation id).
                let n = log.lock().unwrap().iter().filter(|l| *l == name).count();
                out.insert(format!("{name}_ref"), json!(format!("{name}-{n}")));
                Ok(out)
            }
        })
    };
    let undo = |name: &'static str, log: Log| {
        action(move |ctx| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(format!("undo {name}"));
                if ctx.get("undo_fails") == Some(&json!(name)) {
                    return Err(format!("undo {name} failed"));
                }
                Ok(Map::new())
            }
        })
    };
    let mut a = Step::new("a", step("a", log.clone()));
    if a_undoable {
        a = a.compensate(undo("a", log.clone()));
    }
    SagaDefinition::new("Four")
        .strategies(SnapshotStrategies::of(strategies))
        .step(a)
        .step(Step::new("b", step("b", log.clone())).compensate(undo("b", log.clone())))
        .step(Step::new("c", step("c", log.clone())).compensate(undo("c", log.clone())))
        .step(Step::new("d", step("d", log.clone())).compensate(undo("d", log.clone())))
}

const RECORDED: &[SnapshotStrategy] = &[
    SnapshotStrategy::BeforeEachStep,
    SnapshotStrategy::OnFailure,
    SnapshotStrategy::OnCompletion,
];

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn SnapshotStore>,
    defs: Definitions,
    log: Log,
}

async fn world(a_undoable: bool, strategies: &[SnapshotStrategy]) -> World {
    let (dir, store) = sqlite().await;
    let log: Log = Arc::default();
    let mut defs = Definitions::new();
    defs.insert(four_steps(log.clone(), a_undoable, strategies));
    World {
        _dir: dir,
        store,
        defs,
        log,
    }
}

impl World {
    /// Runs the saga for real, recording its timeline; returns its id.
    async fn run(&self, ctx: Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let def = self.defs.get("Four").unwrap();
        Engine::new(self.store.clone())
            .run(
                &def,
                RunRequest {
                    saga_id: id.clone(),
                    context: obj(ctx),
                    ..RunRequest::default()
                },
                &|_| {},
            )
            .await;
        self.log.lock().unwrap().clear();
        id
    }

    async fn plan(&self, id: &str, spec: &ReplaySpec) -> ReplayPlan {
        replay::plan_replay(
            self.store.as_ref(),
            &self.defs,
            id,
            None,
            spec,
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .0
    }

    async fn replay(
        &self,
        id: &str,
        spec: &ReplaySpec,
    ) -> Result<replay::ReplayReport, ReplayError> {
        let r = replay::replay(&self.store, &self.defs, id, spec, &opts(false), &|_| {}).await;
        r
    }

    fn ran(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn opts(dry_run: bool) -> ReplayOptions {
    ReplayOptions {
        initiated_by: "oncall".into(),
        reason: Some("INC-1".into()),
        dry_run,
        lock_ttl: Duration::from_secs(30),
        lock_owner: replay::lock_owner("oncall"),
    }
}

fn from(step: &str, over: Value) -> ReplaySpec {
    ReplaySpec {
        from_step: step.into(),
        context_override: obj(over),
        ..ReplaySpec::default()
    }
}

/// The plan's decisions as `(skip, re-run, run)` lists.
/// Asserts that one of the plan's warnings says `text`.
fn assert_warns(p: &ReplayPlan, text: &str) {
    assert!(
        p.warnings.iter().any(|w| w.contains(text)),
        "{:?}",
        p.warnings
    );
}

fn lists(p: &ReplayPlan) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
    let pick = |a: StepAction| {
        p.steps
            .iter()
            .filter(|s| s.action == a)
            .map(|s| s.step.as_str())
            .collect::<Vec<_>>()
    };
    let mut skip = pick(StepAction::Skip);
    skip.extend(pick(StepAction::SkipCompensated));
    (skip, pick(StepAction::Rerun), pick(StepAction::Run))
}

const NONE: Vec<&str> = Vec::new();

#[tokio::test]
async fn rolled_back_after_one_two_and_three_steps_reruns_what_was_undone() {
    let w = world(true, RECORDED).await;
    for (fail_at, rerun, run) in [
        ("b", vec!["a"], vec!["b", "c", "d"]),
        ("c", vec!["a", "b"], vec!["c", "d"]),
        ("d", vec!["a", "b", "c"], vec!["d"]),
    ] {
        let id = w.run(json!({ "fail_at": fail_at })).await;
        let p = w.plan(&id, &from(fail_at, json!({"fail_at": null}))).await;
        assert!(p.is_ok(), "{fail_at}: {:?}", p.errors);
        assert_eq!(
            lists(&p),
            (NONE, rerun.clone(), run.clone()),
            "fail at {fail_at}"
        );
        // The checkpoint is the snapshot taken before the failed step ran,
        // not the rolled-back one after it, and it says which in the
        // timeline's numbering.
        let cp = p.checkpoint.as_ref().unwrap();
        assert_eq!(cp.status, SagaStatus::Executing, "fail at {fail_at}");
        assert_eq!(cp.step_name, fail_at);
        assert_eq!(cp.position, rerun.len(), "before-step snapshots #0..");
        assert!(
            p.steps
                .iter()
                .filter(|s| s.action == StepAction::Rerun)
                .all(|s| s.why == "compensated in the original run"),
            "{:?}",
            p.steps
        );
        // The real run does exactly that: the undone steps again, then
        // the rest, and nothing twice.
        let r = w
            .replay(&id, &from(fail_at, json!({"fail_at": null})))
            .await
            .unwrap();
        assert_eq!(r.log.replay_status, ReplayStatus::Success);
        let mut expected: Vec<String> = rerun.iter().map(|s| s.to_string()).collect();
        expected.extend(run.iter().map(|s| s.to_string()));
        assert_eq!(w.ran(), expected, "fail at {fail_at}");
        // A fresh effect, not the released one.
        let ctx = &r.outcome.as_ref().unwrap().context;
        assert_eq!(ctx["a_ref"], json!("a-1"), "the replay's own reservation");
    }
}

#[tokio::test]
async fn compensated_skip_leaves_the_undone_steps_undone_and_never_compensates_them() {
    let w = world(true, RECORDED).await;
    let id = w.run(json!({"fail_at": "c"})).await;
    let mut spec = from("c", json!({"fail_at": "d"}));
    spec.compensated = Compensated::Skip;
    let p = w.plan(&id, &spec).await;
    assert_eq!(lists(&p), (vec!["a", "b"], NONE, vec!["c", "d"]));
    assert!(
        p.compensations.iter().all(|c| c != "a" && c != "b"),
        "{:?}",
        p.compensations
    );
    let r = w.replay(&id, &spec).await.unwrap();
    assert_eq!(r.log.replay_status, ReplayStatus::Failed);
    // c ran, d failed, c was undone; a and b neither ran nor were undone.
    assert_eq!(w.ran(), ["c", "d", "undo c"]);
    assert_eq!(r.log.extra["compensated"], json!("skip"));
}

#[tokio::test]
async fn a_step_without_compensation_stays_in_force_and_is_skipped() {
    let w = world(false, RECORDED).await;
    let id = w.run(json!({"fail_at": "c"})).await;
    let p = w.plan(&id, &from("c", json!({"fail_at": null}))).await;
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(lists(&p), (vec!["a"], vec!["b"], vec!["c", "d"]));
    assert_eq!(p.step("a").unwrap().why, "in force");
    // If the replay failed at its last step, b (re-run) and a (in force)
    // are what could be compensated; a has nothing to compensate with.
    assert_eq!(p.compensations, ["c", "b"]);
}

#[tokio::test]
async fn a_failure_the_snapshots_do_not_record_is_said_in_the_plan() {
    // sagaz's way: snapshots before each step only, none when it fails
    // (sagascope's engine records the outcome; remove it, as sagaz would
    // never have written it).
    let w = world(true, &[SnapshotStrategy::BeforeEachStep]).await;
    let id = w.run(json!({"fail_at": "c"})).await;
    let last = w.store.latest_snapshot(&id, None).await.unwrap().unwrap();
    assert_eq!(last.status, SagaStatus::RolledBack);
    assert!(w.store.delete_snapshot(&last.snapshot_id).await.unwrap());
    // Its newest snapshot is seconds old and not terminal: it may still be
    // running, as far as anyone can tell.
    let p = w.plan(&id, &from("c", json!({"fail_at": null}))).await;
    assert_eq!(
        p.errors[0].kind,
        PlanErrorKind::InProgress,
        "{:?}",
        p.errors
    );
    let mut spec = from("c", json!({"fail_at": null}));
    spec.allow.in_progress = true;
    let p = w.plan(&id, &spec).await;
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(lists(&p), (vec!["a", "b"], NONE, vec!["c", "d"]));
    assert_warns(&p, "do not record how the original run ended");
}

#[tokio::test]
async fn a_compensation_that_failed_leaves_its_step_in_force() {
    let w = world(true, RECORDED).await;
    let id = w.run(json!({"fail_at": "c", "undo_fails": "b"})).await;
    let latest = w.store.latest_snapshot(&id, None).await.unwrap().unwrap();
    assert_eq!(latest.status, SagaStatus::Failed);
    let p = w
        .plan(
            &id,
            &from("c", json!({"fail_at": null, "undo_fails": null})),
        )
        .await;
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(lists(&p), (vec!["b"], vec!["a"], vec!["c", "d"]));
    assert_eq!(
        p.step("b").unwrap().why,
        "in force: its compensation failed"
    );
    assert_warns(&p, "b's compensation failed");
}

#[tokio::test]
async fn a_replay_of_a_replay_and_a_replay_after_a_failed_one() {
    let w = world(true, RECORDED).await;
    // b's compensation fails in the original run: b stays in force.
    let id = w.run(json!({"fail_at": "c", "undo_fails": "b"})).await;
    // The first replay inherits b, fails at c again, and this time undoes
    // b (its compensation now works) with the rest.
    let spec = from("c", json!({"undo_fails": null}));
    let r1 = w.replay(&id, &spec).await.unwrap();
    assert_eq!(r1.log.replay_status, ReplayStatus::Failed);
    assert_eq!(w.ran(), ["a", "c", "undo a", "undo b"]);
    // Replaying the replay's own saga: both a and b were undone there.
    let p = w
        .plan(&r1.log.new_saga_id, &from("c", json!({"fail_at": null})))
        .await;
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(lists(&p), (NONE, vec!["a", "b"], vec!["c", "d"]));
    // Replaying the original again: its own timeline still says b is in
    // force, but the failed replay undid it.
    let p = w.plan(&id, &from("c", json!({"fail_at": null}))).await;
    assert!(p.is_ok(), "{:?}", p.errors);
    assert_eq!(lists(&p), (NONE, vec!["a", "b"], vec!["c", "d"]));
    assert_eq!(
        p.step("b").unwrap().why,
        format!("compensated by replay {}", r1.log.replay_id)
    );
    let r2 = w
        .replay(&id, &from("c", json!({"fail_at": null})))
        .await
        .unwrap();
    assert_eq!(r2.log.replay_status, ReplayStatus::Success);
    assert_eq!(w.ran(), ["a", "b", "c", "d"]);
}

#[tokio::test]
async fn a_step_marked_not_repeatable_is_an_error_not_a_silent_skip() {
    let (_dir, store) = sqlite().await;
    let log: Log = Arc::default();
    let mut def = four_steps(log.clone(), true, RECORDED);
    def.steps[0].repeatable = false;
    let mut defs = Definitions::new();
    defs.insert(def);
    let w = World {
        _dir,
        store,
        defs,
        log,
    };
    let id = w.run(json!({"fail_at": "c"})).await;
    let p = w.plan(&id, &from("c", json!({"fail_at": null}))).await;
    assert_eq!(
        p.errors[0].kind,
        PlanErrorKind::NotRepeatable,
        "{:?}",
        p.errors
    );
    assert!(p.errors[0].message.contains("--compensated skip"));
    match w.replay(&id, &from("c", json!({"fail_at": null}))).await {
        Err(ReplayError::Plan(p)) => assert_eq!(p.errors[0].kind, PlanErrorKind::NotRepeatable),
        other => panic!("not refused: {other:?}"),
    }
    assert!(w.ran().is_empty(), "nothing ran");
}

#[tokio::test]
async fn guards_refuse_completed_replayed_and_running_sagas_unless_overridden() {
    let w = world(true, RECORDED).await;
    // Completed.
    let done = w.run(json!({})).await;
    let p = w.plan(&done, &from("b", json!({}))).await;
    assert_eq!(p.errors[0].kind, PlanErrorKind::Completed);
    let mut spec = from("b", json!({}));
    spec.allow.completed = true;
    let p = w.plan(&done, &spec).await;
    assert!(p.is_ok(), "{:?}", p.errors);
    assert!(p.warnings.iter().any(|x| x.contains("--allow-completed")));
    // Replayed successfully before.
    let failed = w.run(json!({"fail_at": "c"})).await;
    let first = w
        .replay(&failed, &from("c", json!({"fail_at": null})))
        .await
        .unwrap();
    w.ran();
    match w
        .replay(&failed, &from("c", json!({"fail_at": null})))
        .await
    {
        Err(ReplayError::Plan(p)) => {
            assert_eq!(p.errors[0].kind, PlanErrorKind::AlreadyReplayed);
            assert!(p.errors[0].message.contains(&first.log.new_saga_id));
        }
        other => panic!("a second replay was not refused: {other:?}"),
    }
    assert!(w.ran().is_empty(), "nothing ran a second time");
    let mut again = from("c", json!({"fail_at": null}));
    again.allow.again = true;
    assert!(w.replay(&failed, &again).await.unwrap().succeeded());
    w.ran();
    // Maybe still running: a fresh, non-terminal newest snapshot.
    let running = uuid::Uuid::new_v4().to_string();
    let mut s = sagascope::model::Snapshot::new(
        &running,
        "Four",
        "c",
        2,
        SagaStatus::Executing,
        obj(json!({})),
        vec!["a".into(), "b".into()],
    );
    s.created_at = sagascope::model::Timestamp::now();
    w.store.save_snapshot(&s).await.unwrap();
    let p = w.plan(&running, &from("c", json!({}))).await;
    assert_eq!(
        p.errors[0].kind,
        PlanErrorKind::InProgress,
        "{:?}",
        p.errors
    );
    let mut force = from("c", json!({}));
    force.allow.in_progress = true;
    assert!(w.plan(&running, &force).await.is_ok());
}

#[tokio::test]
async fn a_batch_dry_run_predicts_the_real_run() {
    let w = world(true, RECORDED).await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(w.run(json!({"fail_at": "c"})).await);
    }
    ids.push(w.run(json!({})).await); // completed: skipped
                                      // One already replayed: skipped.
    w.replay(&ids[0], &from("c", json!({"fail_at": null})))
        .await
        .unwrap();
    w.ran();
    let req = |dry_run| BatchRequest {
        selection: Selection::Ids(ids.clone()),
        spec: from("c", json!({"fail_at": null})),
        opts: opts(dry_run),
        concurrency: 4,
        limit: None,
    };
    let counts = |items: &[sagascope::replay::batch::BatchItem]| {
        let c = |r| items.iter().filter(|i| i.result == r).count();
        (
            c(ItemResult::Ok),
            c(ItemResult::Skipped),
            c(ItemResult::Failed),
            c(ItemResult::Error),
        )
    };
    let targets: Vec<(String, Option<String>)> = ids.iter().map(|i| (i.clone(), None)).collect();
    let (_, dry) = run_batch(&w.store, &w.defs, &req(true), targets.clone(), &|_| {}).await;
    assert!(w.ran().is_empty(), "a dry run runs nothing");
    let (_, real) = run_batch(&w.store, &w.defs, &req(false), targets, &|_| {}).await;
    assert_eq!(counts(&dry), (5, 2, 0, 0));
    assert_eq!(counts(&real), counts(&dry));
    // Each of the five re-reserved, re-did b, then ran c and d.
    assert_eq!(w.ran().iter().filter(|s| *s == "a").count(), 5);
}

#[tokio::test]
async fn a_plan_file_is_applied_exactly_and_refused_once_the_saga_changed() {
    let w = world(true, RECORDED).await;
    let write = |id: &str| {
        let id = id.to_string();
        let w = &w;
        async move {
            let spec = from("c", json!({"fail_at": null}));
            let (plan, history) = replay::plan_replay(
                w.store.as_ref(),
                &w.defs,
                &id,
                None,
                &spec,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
            let file = PlanFile::new(&spec, &plan, &history, "oncall", None).unwrap();
            // Through the file format, as `replay apply` reads it.
            let text = serde_json::to_string(&file).unwrap();
            match replay::artifact::parse_plan_document(&text).unwrap() {
                replay::artifact::PlanDocument::One(f) => *f,
                _ => unreachable!(),
            }
        }
    };
    // Unchanged: applied, doing what the plan said.
    let id = w.run(json!({"fail_at": "c"})).await;
    let file = write(&id).await;
    let r = replay::apply_plan(&w.store, &w.defs, &file, &opts(false), &|_| {})
        .await
        .unwrap();
    assert!(r.succeeded());
    assert_eq!(w.ran(), ["a", "b", "c", "d"]);
    assert_eq!(r.plan.steps, file.plan.steps);
    // Applying it again: the saga gained a replay.
    match replay::apply_plan(&w.store, &w.defs, &file, &opts(false), &|_| {}).await {
        Err(ReplayError::StalePlan(why)) => assert!(why.contains("replay"), "{why}"),
        other => panic!("not refused: {other:?}"),
    }
    // A saga that gained a snapshot after the plan was written.
    let id = w.run(json!({"fail_at": "c"})).await;
    let file = write(&id).await;
    let mut extra = w.store.latest_snapshot(&id, None).await.unwrap().unwrap();
    extra.snapshot_id = uuid::Uuid::new_v4().to_string();
    extra.created_at = sagascope::model::Timestamp::now();
    w.store.save_snapshot(&extra).await.unwrap();
    match replay::apply_plan(&w.store, &w.defs, &file, &opts(false), &|_| {}).await {
        Err(ReplayError::StalePlan(why)) => assert!(why.contains("snapshot"), "{why}"),
        other => panic!("not refused: {other:?}"),
    }
    assert!(w.ran().is_empty(), "nothing ran");
}
