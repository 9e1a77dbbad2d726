//! The replay guards and plan files through the built binary, on SQLite,
//! PostgreSQL and Redis: a completed saga is refused by `replay run` and
//! skipped by `batch` unless overridden; `batch --dry-run` then `batch`
//! give the same counts; a plan written with `--plan-out` is applied by
//! `replay apply`, and refused (exit 13) once the saga changed;
//! `--from-snapshot` takes the timeline's numbering.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use cli_world::{namespaced_stores, stderr, store_usable, World};
use serde_json::Value;

fn worlds() -> Vec<(&'static str, World)> {
    let mut out = Vec::new();
    for (backend, url) in namespaced_stores() {
        if url.is_empty() {
            out.push((backend, World::sqlite()));
        } else if store_usable(backend, &url) {
            out.push((backend, World::with_store(&url)));
        }
    }
    out
}

/// The demo's orders: (a rolled-back one, a completed one).
fn demo_orders(w: &World) -> (String, String) {
    w.ok(&["demo", "--no-tui", "--orders", "8", "--trips", "0"]);
    let id = |status: &str| {
        w.sagas(&["--status", status, "--name", "OrderSaga"])[0]["saga_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (id("rolled_back"), id("completed"))
}

/// The fix every replay here makes: from charge_payment, with a valid token.
const FIX: [&str; 4] = [
    "--from-step",
    "charge_payment",
    "--override",
    "payment_token=tok_valid",
];

/// `replay run <saga>` with [`FIX`] and `more` arguments.
fn replay_fixed(w: &World, saga: &str, more: &[&str]) -> String {
    let mut args = vec!["replay", "run", saga];
    args.extend_from_slice(&FIX);
    args.extend_from_slice(more);
    w.ok(&args)
}

fn counts(summary: &Value) -> (u64, u64, u64, u64) {
    let n = |k: &str| summary[k].as_u64().unwrap();
    (n("ok"), n("skipped"), n("failed"), n("errors"))
}

fn last_summary(out: &str) -> Value {
    let line = out.lines().last().unwrap();
    serde_json::from_str::<Value>(line).unwrap()["summary"].clone()
}

#[test]
fn a_completed_saga_is_refused_by_replay_and_skipped_by_batch_unless_overridden() {
    for (backend, w) in worlds() {
        let (_, done) = demo_orders(&w);
        let sagas_before = w.sagas(&[]).len();
        let args = [
            "replay",
            "run",
            done.as_str(),
            "--from-step",
            "charge_payment",
        ];
        // Real run and dry run: exit 9, the message names the flag.
        for dry in [false, true] {
            let mut a = args.to_vec();
            if dry {
                a.push("--dry-run");
            }
            let o = w.run(&a);
            assert_eq!(o.status.code(), Some(9), "{backend} {a:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains("--allow-completed"),
                "{backend}: {}",
                stderr(&o)
            );
            if dry {
                // The refused plan is shown, and not logged.
                let out = String::from_utf8_lossy(&o.stdout);
                assert!(out.contains("nothing was logged"), "{backend}: {out}");
            }
        }
        assert!(w.replays(&done).is_empty(), "{backend}: nothing logged");
        assert_eq!(w.sagas(&[]).len(), sagas_before, "{backend}: nothing ran");
        // A batch skips it, dry or real, saying why.
        let ids = w.dir.path().join("ids.txt");
        std::fs::write(&ids, &done).unwrap();
        for dry in [true, false] {
            let mut a = vec![
                "batch",
                "--ids-from",
                ids.to_str().unwrap(),
                "--from-step",
                "charge_payment",
            ];
            if dry {
                a.push("--dry-run");
            }
            let out = w.ok(&a);
            let s = last_summary(&out);
            assert_eq!(counts(&s), (0, 1, 0, 0), "{backend} dry={dry}: {out}");
            assert!(out.contains("completed"), "{backend}: {out}");
        }
        assert_eq!(w.sagas(&[]).len(), sagas_before, "{backend}: nothing ran");
        // Overridden: it replays, and the log says the guard was overridden.
        let mut a = args.to_vec();
        a.push("--allow-completed");
        w.ok(&a);
        let log = w.replays(&done);
        assert_eq!(log.len(), 1, "{backend}");
        assert_eq!(
            log[0]["guards_overridden"],
            serde_json::json!(["allow_completed"])
        );
    }
}

#[test]
fn batch_dry_run_then_batch_give_the_same_counts() {
    for (backend, w) in worlds() {
        let (failed, done) = demo_orders(&w);
        // One replayed already (skipped), one completed (skipped), the
        // other failed orders ok.
        replay_fixed(&w, &failed, &[]);
        let mut ids: Vec<String> = w
            .sagas(&["--status", "rolled_back", "--name", "OrderSaga"])
            .iter()
            .map(|s| s["saga_id"].as_str().unwrap().to_string())
            .collect();
        ids.push(done.clone());
        let file = w.dir.path().join("ids.txt");
        std::fs::write(&file, ids.join("\n")).unwrap();
        let batch = |dry: bool| {
            let mut a = vec!["batch", "--ids-from", file.to_str().unwrap()];
            a.extend_from_slice(&FIX);
            if dry {
                a.push("--dry-run");
            }
            last_summary(&w.ok(&a))
        };
        let dry = batch(true);
        let real = batch(false);
        let n = ids.len() as u64;
        assert_eq!(counts(&dry), (n - 2, 2, 0, 0), "{backend}: {dry}");
        assert_eq!(counts(&real), counts(&dry), "{backend}: {real}");
        // Run again: everything is skipped now, dry or real.
        assert_eq!(counts(&batch(true)), (0, n, 0, 0), "{backend}");
    }
}

#[test]
fn a_plan_file_is_applied_once_and_refused_after_the_saga_changed() {
    for (backend, w) in worlds() {
        let (failed, _) = demo_orders(&w);
        let plan = w.dir.path().join("plan.json");
        let plan_s = plan.to_str().unwrap();
        let write_plan = || {
            replay_fixed(&w, &failed, &["--dry-run", "--plan-out", plan_s]);
        };
        write_plan();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
        assert_eq!(doc["format"], "sagascope/replay-plan/1");
        assert_eq!(doc["plan"]["steps"][0]["action"], "rerun", "{backend}");
        // A second plan made now, then the first applied: the second is
        // stale (the saga gained a replay), exit 13, nothing runs.
        let second = w.dir.path().join("second.json");
        std::fs::copy(&plan, &second).unwrap();
        let out = w.ok(&[
            "replay", "apply", plan_s, "--reason", "INC-7", "--format", "json",
        ]);
        let r: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["replay_log"]["replay_status"], "success", "{backend}");
        assert_eq!(r["replay_log"]["reason"], "INC-7");
        let sagas = w.sagas(&[]).len();
        let o = w.run(&["replay", "apply", second.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(13), "{backend}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("changed since the plan was written"),
            "{}",
            stderr(&o)
        );
        assert_eq!(w.sagas(&[]).len(), sagas, "{backend}: nothing ran");
        // Not a plan file: a usage error.
        std::fs::write(&second, "{}").unwrap();
        let o = w.run(&["replay", "apply", second.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{backend}: {}", stderr(&o));
    }
}

#[test]
fn from_snapshot_takes_the_timelines_numbering_and_the_plan_says_which() {
    let w = World::sqlite();
    let (failed, _) = demo_orders(&w);
    let snaps = w.snapshots(&failed);
    assert_eq!(snaps.len(), 3);
    for (arg, pos) in [("1", 1), ("#1", 1), ("-1", 2)] {
        let plan = w.json(&[
            "replay",
            "run",
            &failed,
            "--from-snapshot",
            arg,
            "--dry-run",
            "--format",
            "json",
        ]);
        let cp = &plan["plan"]["checkpoint"];
        assert_eq!(cp["position"], pos, "{arg}");
        assert_eq!(cp["snapshot_id"], snaps[pos]["snapshot_id"], "{arg}");
    }
    let table = w.ok(&[
        "replay",
        "run",
        &failed,
        "--from-snapshot",
        "1",
        "--dry-run",
    ]);
    assert!(table.contains("snapshot #1 of 3"), "{table}");
    let o = w.run(&[
        "replay",
        "run",
        &failed,
        "--from-snapshot",
        "9",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("#0–#2"), "{}", stderr(&o));
    // One way of naming the checkpoint at a time.
    let o = w.run(&[
        "replay",
        "run",
        &failed,
        "--from-snapshot",
        "1",
        "--from-step",
        "charge_payment",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_batch_plan_set_is_applied_saga_by_saga_and_a_changed_saga_is_not_replayed() {
    let w = World::sqlite();
    let (failed, done) = demo_orders(&w);
    let ids: Vec<String> = w
        .sagas(&["--status", "rolled_back", "--name", "OrderSaga"])
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap().to_string())
        .collect();
    let file = w.dir.path().join("ids.txt");
    std::fs::write(&file, format!("{}\n{done}\n", ids.join("\n"))).unwrap();
    let set = w.dir.path().join("set.json");
    let mut args = vec!["batch", "--ids-from", file.to_str().unwrap()];
    args.extend_from_slice(&FIX);
    args.extend_from_slice(&["--dry-run", "--plan-out", set.to_str().unwrap()]);
    let out = w.ok(&args);
    assert_eq!(counts(&last_summary(&out)), (ids.len() as u64, 1, 0, 0));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&set).unwrap()).unwrap();
    assert_eq!(doc["format"], "sagascope/replay-plan-set/1");
    assert_eq!(doc["plans"].as_array().unwrap().len(), ids.len());
    assert_eq!(
        doc["left_out"][0]["saga_id"],
        done.as_str(),
        "the completed one"
    );
    // One saga changes before the set is applied: it is not replayed.
    replay_fixed(&w, &failed, &[]);
    let o = w.run(&[
        "replay",
        "apply",
        set.to_str().unwrap(),
        "--reason",
        "INC-9",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s = last_summary(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(counts(&s), (ids.len() as u64 - 1, 0, 0, 1), "{s}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("changed since the plan was written"));
    for id in &ids {
        let real: Vec<Value> = w
            .replays(id)
            .into_iter()
            .filter(|r| r["dry_run"] == false)
            .collect();
        assert_eq!(real.len(), 1, "each saga replayed exactly once: {id}");
    }
}
