//! End-to-end: the built binary against real stores. The demo leaves
//! failed sagas; a dry run plans and changes nothing but the replay log; a
//! real replay with a corrected token succeeds; bad input is a one-line
//! error with its exit code; a killed replay stays unfinished in the log
//! and its lock expires; two replays of one saga never run at once.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use cli_world::{namespaced_stores, stderr, store_usable, World};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

impl World {
    /// A saga definition with a step that fails, waits for a gate file, or
    /// hangs, depending on the context's `mode`.
    fn slow_definition(&self) -> (PathBuf, PathBuf) {
        let gate = self.dir.path().join("gate");
        let def = self.dir.path().join("slow_saga.toml");
        let text = format!(
            r#"name = "SlowSaga"
snapshots = ["before_each_step", "after_each_step"]

[[steps]]
name = "prepare"
run = "cat >/dev/null; echo '{{\"prepared\": true}}'"
compensate = "cat >/dev/null"

[[steps]]
name = "wait"
run = '''
input=$(cat)
case "$input" in
  *'"mode":"fail"'*) echo "wait failed: mode is fail" >&2; exit 1;;
  *'"mode":"gate"'*) while [ ! -f '{gate}' ]; do sleep 0.1; done;;
  *'"mode":"hang"'*) sleep 120;;
esac
echo '{{"waited": true}}'
'''

[[steps]]
name = "finish"
run = "cat >/dev/null; echo '{{\"finished\": true}}'"
"#,
            gate = gate.display()
        );
        std::fs::write(&def, text).unwrap();
        (def, gate)
    }

    /// Runs SlowSaga so that it fails at `wait`; returns its id.
    fn failed_slow_saga(&self, def: &Path) -> String {
        let o = self.run(&[
            "run",
            "SlowSaga",
            "--context",
            r#"{"mode":"fail","order":7}"#,
            "--definitions",
            def.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "rolled_back");
        v["saga_id"].as_str().unwrap().to_string()
    }
}

/// Polls until `f` returns something (bounded; a hang would be the bug).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..600 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}");
}

fn wait_running(w: &World, saga: &str) -> Value {
    eventually("a running replay in the log", || {
        w.replays(saga)
            .into_iter()
            .find(|r| r["replay_status"] == "running")
    })
}

fn kill(mut child: Child) {
    // SIGKILL on Unix: no cleanup runs in the killed process.
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn demo_leaves_failed_orders_and_replaying_one_with_a_valid_token_succeeds() {
    let w = World::sqlite();
    let out = w.ok(&["demo", "--no-tui", "--orders", "4", "--trips", "2"]);
    assert!(out.contains("rolled back"), "{out}");
    let failed = w.sagas(&["--status", "rolled_back", "--name", "OrderSaga"]);
    assert!(!failed.is_empty(), "the demo must leave failed orders");
    let original = failed[0]["saga_id"].as_str().unwrap().to_string();
    assert_eq!(failed[0]["latest_step"], "charge_payment");
    let before_snaps = w.snapshots(&original);
    let sagas_before = w.sagas(&[]).len();

    // Dry run: a plan, and nothing changes but the replay log.
    let plan = w.json(&[
        "replay",
        "run",
        &original,
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
        "--dry-run",
        "--format",
        "json",
    ]);
    let p = &plan["plan"];
    // The original run released the reservation: the replay reserves
    // again, from the snapshot taken before the charge (not the
    // rolled-back one after it).
    assert_eq!(
        p["steps_to_run"],
        serde_json::json!(["reserve_inventory", "charge_payment", "ship_order"])
    );
    assert_eq!(p["steps_skipped"], serde_json::json!([]));
    assert_eq!(p["steps"][0]["action"], "rerun");
    assert_eq!(p["checkpoint"]["status"], "executing");
    assert_eq!(p["checkpoint"]["step_name"], "charge_payment");
    assert_eq!(p["merged_context"]["payment_token"], "tok_valid");
    assert_eq!(p["diff"][0]["path"], "$.payment_token");
    let table = w.ok(&[
        "replay",
        "run",
        &original,
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
        "--dry-run",
    ]);
    for needle in [
        "re-run reserve_inventory (compensated in the original run)",
        "run    charge_payment",
        "run    ship_order",
        "snapshot #1 of 3",
    ] {
        assert!(table.contains(needle), "{needle:?} not in:\n{table}");
    }
    assert_eq!(
        w.sagas(&[]).len(),
        sagas_before,
        "a dry run must not create sagas"
    );
    assert_eq!(w.snapshots(&original), before_snaps);
    let log = w.replays(&original);
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|r| r["dry_run"] == true && r["replay_status"] == "success"));
    assert!(
        log.iter().all(|r| r["completed_at"] == r["created_at"]),
        "{log:?}"
    );

    // The real replay.
    let o = w.run(&[
        "replay",
        "run",
        &original,
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
        "--reason",
        "customer sent a new card",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["outcome"]["status"], "completed");
    let new_id = r["replay_log"]["new_saga_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, original);

    let snaps = w.snapshots(&new_id);
    let steps: Vec<&str> = snaps
        .iter()
        .map(|s| s["step_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "reserve_inventory",
            "charge_payment",
            "ship_order",
            "__completed__"
        ]
    );
    let last = snaps.last().unwrap();
    assert_eq!(last["status"], "completed");
    assert_eq!(last["context"]["payment_token"], "tok_valid");
    assert!(last["context"]["tracking_number"].is_string());
    // A reservation of its own, not the one the original run released.
    let released = before_snaps.last().unwrap()["context"]["reservation_id"].clone();
    assert!(released.is_string(), "{before_snaps:?}");
    assert!(last["context"]["reservation_id"].is_string());
    assert_ne!(last["context"]["reservation_id"], released);
    assert_eq!(snaps[0]["completed_steps"], serde_json::json!([]));
    assert_eq!(
        snaps[1]["step_index"], 1,
        "replays keep the original step indexes"
    );

    let log = w.replays(&original);
    let real: Vec<&Value> = log.iter().filter(|r| r["dry_run"] == false).collect();
    assert_eq!(real.len(), 1);
    let e = real[0];
    assert_eq!(e["replay_status"], "success");
    assert_eq!(e["initiated_by"], "test-oncall");
    assert_eq!(e["reason"], "customer sent a new card");
    assert_eq!(
        e["context_override"],
        serde_json::json!({"payment_token": "tok_valid"})
    );
    assert_eq!(e["new_saga_id"], new_id.as_str());
    assert_eq!(e["original_saga_id"], original.as_str());
    assert!(e["completed_at"].is_string());
    assert_eq!(
        w.snapshots(&original),
        before_snaps,
        "the original saga is untouched"
    );

    // A second replay would charge a second time: refused (exit 10),
    // naming the first, unless asked for with --again.
    let second = [
        "replay",
        "run",
        original.as_str(),
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
    ];
    let o = w.run(&second);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&new_id) && err.contains("--again"), "{err}");
    assert_eq!(w.sagas(&[]).len(), sagas_before + 1, "nothing ran");
    let mut again = second.to_vec();
    again.push("--again");
    w.ok(&again);
    assert_eq!(w.sagas(&[]).len(), sagas_before + 2);
}

#[test]
fn bad_input_is_a_one_line_error_with_its_exit_code_and_nothing_runs() {
    let w = World::sqlite();
    let (def, _) = w.slow_definition();
    let saga = w.failed_slow_saga(&def);
    let defs = def.to_str().unwrap();
    let sagas_before = w.sagas(&[]).len();

    let cases: [(&[&str], i32, &str); 5] = [
        (&["--override-json", "{not json"], 2, "invalid JSON"),
        (&["--override-json", "[1, 2]"], 2, "must be a JSON object"),
        (&["--override", "novalue"], 2, "expected key=value"),
        (&["--from-step", "refund"], 7, "unknown step \"refund\""),
        (&["--from-step", "finish"], 5, "no snapshot for step"),
    ];
    for (extra, code, needle) in cases {
        let mut args = vec!["replay", "run", saga.as_str(), "--definitions", defs];
        if !extra.contains(&"--from-step") {
            args.extend(["--from-step", "wait"]);
        }
        args.extend_from_slice(extra);
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line, got:\n{err}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }

    // A saga whose name has no definition.
    w.ok(&["dev", "seed", "--sagas", "1", "--snapshots", "2"]);
    let seeded = w
        .sagas(&[])
        .into_iter()
        .find(|s| s["saga_name"] != "SlowSaga")
        .unwrap();
    let sid = seeded["saga_id"].as_str().unwrap();
    let step = w.snapshots(sid)[0]["step_name"]
        .as_str()
        .unwrap()
        .to_string();
    let o = w.run(&[
        "replay",
        "run",
        sid,
        "--from-step",
        &step,
        "--definitions",
        defs,
    ]);
    assert_eq!(o.status.code(), Some(8), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end().lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no definition for saga"),
        "{}",
        stderr(&o)
    );

    // Nothing ran: no new saga, and no real replay was logged.
    assert_eq!(w.sagas(&[]).len(), sagas_before + 1);
    assert!(w.replays(&saga).is_empty());
    assert!(w.replays(sid).is_empty());
}

impl World {
    /// A saga definition whose `charge_payment` appends a line to a file
    /// (a side effect to count) and whose `wait` fails, or waits for the
    /// gate file, as the context's `mode` says.
    fn charging_definition(&self) -> (PathBuf, PathBuf) {
        let gate = self.dir.path().join("charge-gate");
        let effects = self.dir.path().join("charges.log");
        let def = self.dir.path().join("charging_saga.toml");
        let text = format!(
            r#"name = "ChargingSaga"
snapshots = ["before_each_step", "after_each_step"]

[[steps]]
name = "reserve"
run = "cat >/dev/null; echo '{{\"reserved\": true}}'"
compensate = "cat >/dev/null"

[[steps]]
name = "charge_payment"
run = "cat >/dev/null; echo charged >> '{effects}'; echo '{{\"charged\": true}}'"
compensate = "cat >/dev/null; echo refunded >> '{effects}'"

[[steps]]
name = "wait"
run = '''
input=$(cat)
case "$input" in
  *'"mode":"fail"'*) echo "wait failed: mode is fail" >&2; exit 1;;
  *'"mode":"gate"'*) while [ ! -f '{gate}' ] && [ -d '{dir}' ]; do sleep 0.1; done;;
esac
echo '{{"waited": true}}'
'''

[[steps]]
name = "finish"
run = "cat >/dev/null; echo '{{\"finished\": true}}'"
"#,
            gate = gate.display(),
            // A killed replay's step is orphaned: it ends with the test's dir.
            dir = self.dir.path().display(),
            effects = effects.display()
        );
        std::fs::write(&def, text).unwrap();
        (def, gate)
    }

    /// How many times `charge_payment` ran.
    fn charges(&self) -> usize {
        let p = self.dir.path().join("charges.log");
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "charged")
            .count()
    }

    /// Runs ChargingSaga so that it fails at `wait` (after charging and
    /// refunding once); returns its id.
    fn failed_charging_saga(&self, def: &Path) -> String {
        let o = self.run(&[
            "run",
            "ChargingSaga",
            "--context",
            r#"{"mode":"fail"}"#,
            "--definitions",
            def.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "rolled_back");
        v["saga_id"].as_str().unwrap().to_string()
    }

    /// Starts a replay of `saga` from `charge_payment` (its checkpoint is
    /// the snapshot before the charge; `reserve`, undone by the original
    /// run, is reserved again first) that charges, then
    /// blocks at `wait`; kills it (SIGKILL) once its snapshot before `wait`
    /// is saved. Returns the killed replay's log entry.
    fn kill_9_after_the_charge(&self, saga: &str, def: &Path) -> Value {
        let child = self
            .cmd(&[
                "replay",
                "run",
                saga,
                "--from-step",
                "charge_payment",
                "--override",
                "mode=gate",
                "--definitions",
                def.to_str().unwrap(),
                "--lock-ttl",
                "1",
                "--reason",
                "will be killed",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let running = wait_running(self, saga);
        let new_id = running["new_saga_id"].as_str().unwrap().to_string();
        eventually("the snapshot before `wait`", || {
            let s = self.snapshots(&new_id);
            (s.last().is_some_and(|l| l["step_name"] == "wait")).then_some(())
        });
        kill(child);
        running
    }
}

/// Retries `args` while the killed replay's lock is still held (exit 6,
/// "being replayed"); returns the first other outcome.
fn once_the_lock_expired(w: &World, args: &[&str]) -> Output {
    eventually("the killed replay's lock to expire", || {
        let o = w.run(args);
        if o.status.code() == Some(6) && stderr(&o).contains("being replayed") {
            return None;
        }
        Some(o)
    })
}

#[test]
fn kill_9_mid_replay_then_a_rerun_refuses_instead_of_charging_again_and_recover_resumes_it() {
    for (backend, url) in namespaced_stores() {
        let w = if url.is_empty() {
            World::sqlite()
        } else {
            if !store_usable(backend, &url) {
                continue;
            }
            World::with_store(&url)
        };
        let (def, gate) = w.charging_definition();
        let defs = def.to_str().unwrap();
        let saga = w.failed_charging_saga(&def);
        assert_eq!(w.charges(), 1);
        let killed = w.kill_9_after_the_charge(&saga, &def);
        let replay_id = killed["replay_id"].as_str().unwrap().to_string();
        let new_id = killed["new_saga_id"].as_str().unwrap().to_string();
        assert_eq!(w.charges(), 2, "{backend}: the killed replay charged");
        let log = w.replays(&saga);
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["replay_status"], "running");
        assert!(log[0]["completed_at"].is_null());

        // Re-running the replay once the lock expired must not charge a
        // third time: it refuses and says what the killed one did.
        let o = once_the_lock_expired(
            &w,
            &[
                "replay",
                "run",
                &saga,
                "--from-step",
                "charge_payment",
                "--override",
                "mode=ok",
                "--definitions",
                defs,
            ],
        );
        assert_eq!(o.status.code(), Some(6), "{backend}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{backend}: {err}");
        for needle in [
            format!("abandoned replay {replay_id}"),
            format!("new saga {new_id} completed reserve, charge_payment and had started wait"),
            format!("sagascope replay recover {saga} --resume"),
        ] {
            assert!(err.contains(&needle), "{backend}: {needle:?} not in {err}");
        }
        // So does a batch.
        let ids = w.dir.path().join("ids.txt");
        std::fs::write(&ids, &saga).unwrap();
        let o = w.run(&[
            "batch",
            "--ids-from",
            ids.to_str().unwrap(),
            "--from-step",
            "charge_payment",
            "--override",
            "mode=ok",
            "--definitions",
            defs,
        ]);
        assert_eq!(o.status.code(), Some(1), "{backend}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let item: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(item["result"], "abandoned", "{backend}: {out}");
        assert_eq!(w.charges(), 2, "{backend}: nothing charged again");
        assert_eq!(w.replays(&saga).len(), 1, "{backend}: no new replay logged");
        // A dry run predicts the refusal.
        let plan = w.json(&[
            "replay",
            "run",
            &saga,
            "--from-step",
            "charge_payment",
            "--dry-run",
            "--definitions",
            defs,
            "--format",
            "json",
        ]);
        let warnings = plan["plan"]["warnings"].to_string();
        assert!(
            warnings.contains(&format!("replay {replay_id} of this saga never finished")),
            "{backend}: {warnings}"
        );
        let real = |w: &World| -> Vec<Value> {
            w.replays(&saga)
                .into_iter()
                .filter(|r| r["dry_run"] == false)
                .collect()
        };

        // `replay recover` lists it, then resumes it under the same new saga.
        let listed = w.ok(&["replay", "recover"]);
        assert!(
            listed.contains(&format!("abandoned replay {replay_id}")),
            "{backend}: {listed}"
        );
        assert_eq!(real(&w)[0]["replay_status"], "running");
        std::fs::write(&gate, "open").unwrap();
        let resumed = w.ok(&["replay", "recover", "--resume", "--definitions", defs]);
        assert!(
            resumed.contains(&format!("resumed: replay {replay_id} is now success")),
            "{backend}: {resumed}"
        );
        assert_eq!(
            w.charges(),
            2,
            "{backend}: the resumed replay did not charge again"
        );
        let log = real(&w);
        assert_eq!(log.len(), 1, "{backend}: {log:?}");
        assert_eq!(log[0]["replay_status"], "success");
        assert_eq!(log[0]["recovery"], "resumed");
        assert_eq!(log[0]["recovered_by"], "test-oncall");
        assert_eq!(log[0]["initiated_by"], "test-oncall");
        assert!(log[0]["completed_at"].is_string());
        let snaps = w.snapshots(&new_id);
        let steps: Vec<&str> = snaps
            .iter()
            .map(|s| s["step_name"].as_str().unwrap())
            .collect();
        // reserve again (the original run released it), before and after
        // charge_payment, before wait (killed), then the resumed run: wait
        // again, finish, completed.
        assert_eq!(
            steps,
            [
                "reserve",
                "reserve",
                "charge_payment",
                "charge_payment",
                "wait",
                "wait",
                "wait",
                "finish",
                "finish",
                "__completed__"
            ],
            "{backend}"
        );
        let last = snaps.last().unwrap();
        assert_eq!(last["status"], "completed");
        assert_eq!(last["context"]["charged"], true);
        assert_eq!(w.ok(&["replay", "recover"]).trim(), "no abandoned replays");
    }
}

#[test]
fn recover_abandon_closes_a_killed_replay_and_never_touches_a_running_one() {
    let w = World::sqlite();
    let (def, gate) = w.charging_definition();
    let defs = def.to_str().unwrap();
    let saga = w.failed_charging_saga(&def);
    let killed = w.kill_9_after_the_charge(&saga, &def);
    let new_id = killed["new_saga_id"].as_str().unwrap().to_string();

    // Without a reason, abandoning is a usage error; read-only refuses.
    let o = w.run(&["replay", "recover", "--abandon"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = w.run(&[
        "--readonly",
        "replay",
        "recover",
        "--abandon",
        "--reason",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let out = eventually("the killed replay's lock to expire", || {
        let out = w.ok(&[
            "replay",
            "recover",
            &saga,
            "--abandon",
            "--reason",
            "INC-7 refunded by hand",
        ]);
        (!out.contains("still running")).then_some(out)
    });
    assert!(out.contains("closed as abandoned"), "{out}");
    let log = w.replays(&saga);
    assert_eq!(log[0]["replay_status"], "cancelled");
    assert_eq!(log[0]["recovery"], "abandoned");
    assert_eq!(log[0]["recovered_by"], "test-oncall");
    assert_eq!(log[0]["recovery_reason"], "INC-7 refunded by hand");
    assert!(log[0]["completed_at"].is_string());
    let last = w.snapshots(&new_id).last().unwrap().clone();
    assert_eq!(last["status"], "failed", "the new saga is closed");
    assert!(last["error"].as_str().unwrap().contains("INC-7"), "{last}");

    // Now a replay may run again; while it runs (its lock held), recovery
    // leaves it alone.
    let child = w
        .cmd(&[
            "replay",
            "run",
            &saga,
            "--from-step",
            "charge_payment",
            "--override",
            "mode=gate",
            "--definitions",
            defs,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = wait_running(&w, &saga);
    let out = w.ok(&["replay", "recover", "--abandon", "--reason", "no"]);
    assert!(out.contains("still running"), "{out}");
    assert!(
        out.contains(running["replay_id"].as_str().unwrap()),
        "{out}"
    );
    std::fs::write(&gate, "open").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = w.replays(&saga);
    assert!(
        log.iter().any(|r| r["replay_status"] == "success"),
        "{log:?}"
    );
}

/// The stores the lock test runs against. PostgreSQL and Redis backends
/// may not be built into this binary yet: exactly that error skips them.
fn lock_test_stores() -> Vec<(&'static str, String)> {
    vec![
        ("sqlite", String::new()),
        ("postgres", "postgres://postgres@127.0.0.1:5432/test".into()),
        ("redis", "redis://127.0.0.1:6379".into()),
    ]
}

#[test]
fn two_replays_of_one_saga_never_run_at_once() {
    for (backend, url) in lock_test_stores() {
        let w = if url.is_empty() {
            World::sqlite()
        } else {
            if !store_usable(backend, &url) {
                continue;
            }
            World::with_store(&url)
        };
        let (def, gate) = w.slow_definition();
        let defs = def.to_str().unwrap();
        let saga = w.failed_slow_saga(&def);
        let args = [
            "replay",
            "run",
            saga.as_str(),
            "--from-step",
            "wait",
            "--override",
            "mode=gate",
            "--definitions",
            defs,
        ];
        let first = w
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_running(&w, &saga);
        // The first holds the lock until the gate opens: the second must
        // refuse, not wait and not run.
        let second = w.run(&args);
        assert_eq!(
            second.status.code(),
            Some(6),
            "{backend}: {}",
            stderr(&second)
        );
        let err = stderr(&second);
        assert_eq!(err.trim_end().lines().count(), 1, "{backend}: {err}");
        assert!(
            err.contains("is being replayed by test-oncall@"),
            "{backend}: {err}"
        );
        std::fs::write(&gate, "open").unwrap();
        let first = first.wait_with_output().unwrap();
        assert_eq!(
            first.status.code(),
            Some(0),
            "{backend}: {}",
            stderr(&first)
        );
        let log = w.replays(&saga);
        assert_eq!(log.len(), 1, "{backend}: exactly one replay ran: {log:?}");
        assert_eq!(log[0]["replay_status"], "success");
    }
}

#[test]
fn batch_dry_run_then_real_then_rerun_skips_what_succeeded() {
    let w = World::sqlite();
    w.ok(&["demo", "--no-tui", "--orders", "8", "--trips", "0"]);
    let failed = w.sagas(&["--status", "rolled_back", "--name", "OrderSaga"]);
    assert_eq!(failed.len(), 2, "orders 1 and 5 have expired tokens");
    let report = w.dir.path().join("report.json");
    let common = [
        "batch",
        "--name",
        "OrderSaga",
        "--step",
        "charge_payment",
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
    ];
    let mut dry = common.to_vec();
    dry.extend(["--dry-run", "--report", report.to_str().unwrap()]);
    let out = w.ok(&dry);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two items and a summary when piped: {out}");
    let summary = &lines[2]["summary"];
    assert_eq!(summary["ok"], 2);
    assert_eq!(summary["dry_run"], true);
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["items"].as_array().unwrap().len(), 2);
    assert_eq!(w.sagas(&[]).len(), 8, "a dry-run batch creates no saga");

    let out = w.ok(&common);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["summary"]["ok"], 2, "{out}");
    assert_eq!(w.sagas(&[]).len(), 10);

    let out = w.ok(&common);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["summary"]["skipped"], 2, "{out}");
    assert_eq!(w.sagas(&[]).len(), 10);

    // A forced failure groups failures by step and error and exits 1.
    let failed_ids: Vec<String> = failed
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap().to_string())
        .collect();
    let ids = w.dir.path().join("ids.txt");
    std::fs::write(&ids, failed_ids.join("\n")).unwrap();
    let o = w.run(&[
        "batch",
        "--ids-from",
        ids.to_str().unwrap(),
        "--from-step",
        "charge_payment",
        "--dry-run",
        "--override",
        "payment_token=tok_valid",
        "--definitions",
        "/nonexistent-dir-for-test",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a missing definitions path is a usage error: {}",
        stderr(&o)
    );
}

/// With no identity configured and no `$USER` (cron, systemd units,
/// containers), a replay is still attributed to the OS account.
#[cfg(unix)]
#[test]
fn a_replay_without_a_configured_identity_names_the_os_account() {
    let w = World::sqlite();
    let (def, _) = w.slow_definition();
    let saga = w.failed_slow_saga(&def);
    let mut c = w.cmd(&[
        "replay",
        "run",
        &saga,
        "--from-step",
        "wait",
        "--definitions",
        def.to_str().unwrap(),
        "--dry-run",
    ]);
    for var in ["SAGASCOPE_IDENTITY", "USER", "USERNAME", "LOGNAME"] {
        c.env_remove(var);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let id = Command::new("id").arg("-un").output().unwrap();
    let expected = if id.status.success() {
        String::from_utf8(id.stdout).unwrap().trim().to_string()
    } else {
        let uid = Command::new("id").arg("-u").output().unwrap();
        format!("uid:{}", String::from_utf8(uid.stdout).unwrap().trim())
    };
    let replays = w.replays(&saga);
    assert_eq!(replays.len(), 1, "{replays:?}");
    assert_eq!(replays[0]["initiated_by"], expected.as_str());
}
