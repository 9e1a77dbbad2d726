//! End-to-end tests of the headless commands, through the built binary
//! against SQLite stores in temp dirs: what a script or an on-call engineer
//! would run.

/// Prints a SKIP line that `cargo test` shows even for a passing test
/// (libtest captures `eprintln!`, not writes to the stderr handle).
macro_rules! skip_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn sagascope(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sagascope"))
        .arg("--store")
        .arg(store)
        .args(args)
        // Never pick up the developer's config, store or log.
        .env("XDG_CONFIG_HOME", isolated_home())
        .env("XDG_DATA_HOME", isolated_home())
        .env_remove("SAGASCOPE_CONFIG")
        .env_remove("SAGASCOPE_STORE")
        .env_remove("SAGASCOPE_PROFILE")
        .env("SAGASCOPE_LOG", "off")
        .output()
        .expect("run sagascope")
}

fn isolated_home() -> std::path::PathBuf {
    let p = std::env::temp_dir().join("sagascope-cli-tests-home");
    let _ = std::fs::create_dir_all(&p);
    p
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn store_in(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("s.db").display())
}

fn first_saga(store: &str, extra: &[&str]) -> Value {
    let mut args = vec!["sagas", "list", "--format", "jsonl", "--limit", "1"];
    args.extend_from_slice(extra);
    let out = ok(&sagascope(store, &args));
    serde_json::from_str(out.lines().next().expect("a saga")).unwrap()
}

fn python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn time_travel_to_the_first_snapshot_of_a_10000_snapshot_saga_returns_step_0() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&sagascope(
        &store,
        &[
            "dev",
            "seed",
            "--sagas",
            "1",
            "--snapshots",
            "10000",
            "--context-bytes",
            "200",
        ],
    ));
    let saga = first_saga(&store, &[]);
    assert_eq!(saga["snapshot_count"], 10000);
    let id = saga["saga_id"].as_str().unwrap();
    let first = ok(&sagascope(
        &store,
        &["snapshots", id, "--limit", "1", "--format", "jsonl"],
    ));
    let first: Value = serde_json::from_str(first.trim()).unwrap();
    let at = first["created_at"].as_str().unwrap();
    let state: Value = serde_json::from_str(&ok(&sagascope(
        &store,
        &["replay", "time-travel", id, "--at", at, "--format", "json"],
    )))
    .unwrap();
    assert_eq!(state["step_index"], 0);
    assert_eq!(state["snapshot_id"], first["snapshot_id"]);
    // sagaz's HistoricalState keys come first.
    let keys: Vec<&str> = state
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .take(8)
        .collect();
    assert_eq!(
        keys,
        [
            "saga_id",
            "saga_name",
            "timestamp",
            "status",
            "context",
            "completed_steps",
            "current_step",
            "step_index"
        ]
    );
    // And the state at a step in the middle, by index.
    let mid: Value = serde_json::from_str(&ok(&sagascope(
        &store,
        &[
            "replay",
            "time-travel",
            id,
            "--step",
            "5000",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(mid["step_index"], 5000);
}

#[test]
fn corrupt_entries_are_named_and_listing_goes_on() {
    if !python3() {
        assert!(std::env::var("CI").is_err(), "python3 is required in CI");
        skip_line!("SKIP corrupt-entry test: python3 not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&sagascope(
        &store,
        &[
            "dev",
            "seed",
            "--sagas",
            "3",
            "--snapshots",
            "4",
            "--failed-ratio",
            "0",
        ],
    ));
    let saga = first_saga(&store, &[]);
    let id = saga["saga_id"].as_str().unwrap().to_string();
    // Another program writes bad rows into the same saga: invalid JSON, a
    // context that is not an object, a mistyped step_index, a bad time.
    let script = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); saga = sys.argv[2]
rows = [
  ("bad-json-0000", "{not json", "[]", 1, "2026-01-01T00:00:00+00:00"),
  ("bad-ctx-array", "[1, 2]", "[]", 1, "2026-01-01T00:00:01+00:00"),
  ("bad-step-index", "{}", "[]", "one", "2026-01-01T00:00:02+00:00"),
  ("bad-created-at", "{}", "[]", 1, "yesterday-ish"),
]
for sid, ctx, steps, idx, ts in rows:
    db.execute("INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, context, completed_steps, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
               (sid, saga, "OrderSaga", "charge_payment", idx, "executing", ctx, steps, ts))
db.commit()
"#;
    let py = Command::new("python3")
        .args(["-c", script, dir.path().join("s.db").to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );

    let list = sagascope(&store, &["sagas", "list"]);
    ok(&list);
    // Every readable snapshot prints; the exit code says some were not.
    let snaps = sagascope(&store, &["snapshots", &id]);
    assert_eq!(snaps.status.code(), Some(1), "{}", stderr(&snaps));
    let table = String::from_utf8_lossy(&snaps.stdout).into_owned();
    // The good ones, and the broken ones in their places (one whose time
    // is unreadable may sort anywhere).
    let broken = table.matches("(unreadable)").count();
    assert!(broken >= 3, "the broken rows are shown in place:\n{table}");
    assert_eq!(
        table.lines().count(),
        1 + 4 + broken,
        "header + the 4 good snapshots + the broken ones:\n{table}"
    );
    let err = stderr(&snaps);
    for bad in [
        "bad-json-0000",
        "bad-ctx-array",
        "bad-step-index",
        "bad-created-at",
    ] {
        assert!(err.contains(bad), "{bad} not named in:\n{err}");
    }
    let json = sagascope(&store, &["snapshots", &id, "--format", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["snapshots"].as_array().unwrap().len(), 4);
    assert_eq!(json["bad_entries"].as_array().unwrap().len(), 4);
    // Time travel past a bad entry says which entry is bad.
    let tt = sagascope(
        &store,
        &[
            "replay",
            "time-travel",
            &id,
            "--at",
            "2026-01-01T00:00:00.5Z",
        ],
    );
    assert!(!tt.status.success());
    assert!(stderr(&tt).contains("bad-json-0000"), "{}", stderr(&tt));
}

#[test]
fn export_then_import_into_an_empty_store_then_export_gives_the_same_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let a = store_in(&dir.path().join("a"));
    let b = store_in(&dir.path().join("b"));
    ok(&sagascope(
        &a,
        &["dev", "seed", "--sagas", "20", "--snapshots", "5"],
    ));
    let bundle1 = dir.path().join("one.jsonl");
    let bundle2 = dir.path().join("two.jsonl");
    ok(&sagascope(
        &a,
        &["export", "--all", "-o", bundle1.to_str().unwrap()],
    ));
    ok(&sagascope(&b, &["import", bundle1.to_str().unwrap()]));
    // Importing twice changes nothing (idempotent).
    ok(&sagascope(&b, &["import", bundle1.to_str().unwrap()]));
    ok(&sagascope(
        &b,
        &["export", "--all", "-o", bundle2.to_str().unwrap()],
    ));
    let one = std::fs::read(&bundle1).unwrap();
    let two = std::fs::read(&bundle2).unwrap();
    // The header, 100 snapshots, the end line.
    assert_eq!(one.iter().filter(|&&c| c == b'\n').count(), 1 + 100 + 1);
    assert!(one == two, "bundles differ");
}

#[test]
fn migrate_copies_everything_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let a = store_in(&dir.path().join("a"));
    let b = store_in(&dir.path().join("b"));
    ok(&sagascope(
        &a,
        &["dev", "seed", "--sagas", "15", "--snapshots", "3"],
    ));
    for _ in 0..2 {
        let out = sagascope(&a, &["migrate", "--from", &a, "--to", &b, "--verify"]);
        ok(&out);
        assert!(
            stderr(&out).contains("verified: 15 sagas, 45 snapshots, 0 replays, digests equal"),
            "{}",
            stderr(&out)
        );
    }
    let count = |s: &str| -> Value {
        serde_json::from_str(&ok(&sagascope(
            s,
            &["sagas", "list", "--all", "--count", "--format", "json"],
        )))
        .unwrap()
    };
    assert_eq!(count(&b)["total"], 15);
    assert_eq!(count(&a)["sagas"], count(&b)["sagas"]);
}

#[test]
fn rows_written_by_python_sqlite3_are_listed_and_time_travelled() {
    if !python3() {
        assert!(std::env::var("CI").is_err(), "python3 is required in CI");
        skip_line!("SKIP python interop test: python3 not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // A table made by another tool, shaped like sagaz's PostgreSQL one, with
    // sagaz's values: isoformat times (one without a fraction), json.dumps
    // contexts with ASCII escapes.
    let script = r#"
import sqlite3, sys, json, uuid
db = sqlite3.connect(sys.argv[1])
db.execute("""CREATE TABLE saga_snapshots (snapshot_id TEXT PRIMARY KEY, saga_id TEXT NOT NULL,
  saga_name TEXT NOT NULL, step_name TEXT NOT NULL, step_index INTEGER NOT NULL, status TEXT NOT NULL,
  context TEXT NOT NULL, completed_steps TEXT NOT NULL, created_at TEXT, retention_until TEXT)""")
saga = "9a3c2b1d-0000-4000-8000-000000000001"
steps = ["reserve_inventory", "charge_payment", "ship_order"]
times = ["2026-11-22T01:37:29+00:00", "2026-11-22T01:37:29.000001+00:00", "2026-11-22T01:37:30.5+00:00"]
for i, (s, t) in enumerate(zip(steps, times)):
    ctx = {"order_id": "o-1", "city": "Z\u00fcrich", "i": i}
    db.execute("INSERT INTO saga_snapshots VALUES (?,?,?,?,?,?,?,?,?,?)",
      (str(uuid.uuid4()), saga, "OrderSaga", s, i, "executing", json.dumps(ctx), json.dumps(steps[:i]), t, None))
db.commit()
"#;
    let py = Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let store = format!("sqlite://{}", path.display());
    let saga = first_saga(&store, &[]);
    assert_eq!(saga["saga_id"], "9a3c2b1d-0000-4000-8000-000000000001");
    assert_eq!(saga["snapshot_count"], 3);
    assert_eq!(saga["latest_step"], "ship_order");
    let tt = |at: &str| -> Value {
        serde_json::from_str(&ok(&sagascope(
            &store,
            &[
                "replay",
                "time-travel",
                "9a3c",
                "--at",
                at,
                "--format",
                "json",
            ],
        )))
        .unwrap()
    };
    assert_eq!(
        tt("2026-11-22T01:37:29Z")["current_step"],
        "reserve_inventory"
    );
    assert_eq!(
        tt("2026-11-22T01:37:29.000001Z")["current_step"],
        "charge_payment"
    );
    assert_eq!(
        tt("2026-11-22T01:37:30.4999Z")["current_step"],
        "charge_payment"
    );
    assert_eq!(
        tt("2026-11-22T03:00:00+01:00")["current_step"],
        "ship_order"
    );
    assert_eq!(
        tt("2026-11-22T02:37:29.5+01:00")["current_step"],
        "charge_payment"
    );
    assert_eq!(tt("2026-11-22T01:37:30.5Z")["context"]["city"], "Zürich");
}

#[test]
fn errors_are_one_line_with_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&sagascope(&store, &["dev", "seed", "--sagas", "2"]));
    let code = |out: &Output| out.status.code().unwrap_or(-1);
    let unknown = sagascope(&store, &["snapshots", "ffffffff-nope"]);
    assert_eq!(code(&unknown), 5, "{}", stderr(&unknown));
    assert_eq!(stderr(&unknown).lines().count(), 1, "{}", stderr(&unknown));
    let bad_time = sagascope(&store, &["replay", "time-travel", "x", "--at", "yesterday"]);
    assert_eq!(code(&bad_time), 2, "{}", stderr(&bad_time));
    let unreachable = sagascope("sqlite:///proc/nope/s.db", &["sagas", "list"]);
    assert_eq!(code(&unreachable), 3, "{}", stderr(&unreachable));
    let bad_scheme = sagascope("ftp://x", &["sagas", "list"]);
    assert_eq!(code(&bad_scheme), 2, "{}", stderr(&bad_scheme));
    let readonly = Command::new(env!("CARGO_BIN_EXE_sagascope"))
        .args(["--store", &store, "--readonly", "gc", "--yes"])
        .env("XDG_CONFIG_HOME", isolated_home())
        .output()
        .unwrap();
    assert_eq!(code(&readonly), 4, "{}", stderr(&readonly));
    // gc without a terminal and without --yes deletes nothing.
    let unconfirmed = sagascope(&store, &["gc"]);
    assert_eq!(code(&unconfirmed), 2);
}

#[test]
fn where_changed_lists_the_snapshots_where_a_value_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    // One saga of five snapshots that ends failed: `error` appears in the
    // last snapshot only, `order_id` is there from the first.
    ok(&sagascope(
        &store,
        &[
            "dev",
            "seed",
            "--sagas",
            "1",
            "--snapshots",
            "5",
            "--failed-ratio",
            "1",
        ],
    ));
    let saga = first_saga(&store, &[]);
    let id = saga["saga_id"].as_str().unwrap();
    let snaps: Vec<Value> = ok(&sagascope(&store, &["snapshots", id, "--format", "jsonl"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(snaps.len(), 5);

    let out: Value = serde_json::from_str(&ok(&sagascope(
        &store,
        &[
            "where-changed",
            &id[..8],
            "error.message",
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(out["saga_id"], id);
    assert_eq!(out["path"], "$.error.message");
    let changes = out["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!(changes[0]["index"], 4);
    assert_eq!(changes[0]["snapshot_id"], snaps[4]["snapshot_id"]);
    assert_eq!(changes[0]["step_name"], snaps[4]["step_name"]);
    assert_eq!(changes[0]["status"], "failed");
    assert_eq!(changes[0]["old"], Value::Null);
    assert_eq!(changes[0]["new"], "payment token expired");

    // The first snapshot counts as a change from absent.
    let text = ok(&sagascope(&store, &["where-changed", id, "$.order_id"]));
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].starts_with('#') && rows[0].contains("CHANGE"),
        "{text}"
    );
    assert!(rows[1].starts_with("0 "), "{text}");
    assert!(rows[1].contains("(absent) → ord-0000000"), "{text}");
    assert!(
        rows[1].contains(snaps[0]["step_name"].as_str().unwrap()),
        "{text}"
    );

    // A value that never exists: no rows, and says so.
    let none = sagascope(&store, &["where-changed", id, "no.such.key"]);
    assert_eq!(ok(&none), "");
    assert!(
        stderr(&none).contains("$.no.such.key is absent"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn where_changed_on_a_missing_saga_or_a_bad_path_fails_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&sagascope(&store, &["dev", "seed", "--sagas", "2"]));
    let missing = sagascope(&store, &["where-changed", "ffffffff-nope", "order_id"]);
    assert_eq!(missing.status.code(), Some(5), "{}", stderr(&missing));
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("ffffffff-nope"),
        "{}",
        stderr(&missing)
    );
    let id = first_saga(&store, &[])["saga_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bad_path = sagascope(&store, &["where-changed", &id, "items[x]"]);
    assert_eq!(bad_path.status.code(), Some(2), "{}", stderr(&bad_path));
}

#[test]
fn secrets_in_store_urls_never_reach_output() {
    let out = sagascope(
        "postgres://app:hunter2@127.0.0.1:1/sagas",
        &["sagas", "list"],
    );
    assert!(!out.status.success());
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains("hunter2"), "{all}");
    let cfg = Command::new(env!("CARGO_BIN_EXE_sagascope"))
        .args([
            "--store",
            "redis://:hunter2@10.0.0.1:6379/0",
            "config",
            "show",
        ])
        .env("XDG_CONFIG_HOME", isolated_home())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&cfg.stdout);
    assert!(cfg.status.success());
    assert!(
        !shown.contains("hunter2") && shown.contains("redis://:***@10.0.0.1"),
        "{shown}"
    );
}

/// A rollback changes the status, records the error and the compensated
/// steps, and leaves the context as it was: `diff` says so instead of
/// "contexts are equal" and nothing else.
#[test]
fn diff_of_a_rollback_shows_its_status_error_and_compensated_steps() {
    if !python3() {
        assert!(std::env::var("CI").is_err(), "python3 is required in CI");
        skip_line!("SKIP diff_of_a_rollback…: the demo's steps need python3");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    ok(&sagascope(
        &store,
        &["demo", "--no-tui", "--orders", "4", "--trips", "0"],
    ));
    let failed = first_saga(&store, &["--status", "rolled_back"]);
    let id = failed["saga_id"].as_str().unwrap();
    // The snapshot before charge_payment ran, and the rolled-back one.
    let out = sagascope(&store, &["diff", id, "-2", "-1"]);
    let text = ok(&out);
    assert!(
        stderr(&out).contains("contexts are equal"),
        "{}",
        stderr(&out)
    );
    assert!(
        text.starts_with(
            "snapshot fields:\n~ status: \"executing\" -> \"rolled_back\"\n+ error = \"payment declined: card token for order ord-"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("+ compensated_steps = [\"reserve_inventory\"]\n"),
        "{text}"
    );
    let paths = ok(&sagascope(
        &store,
        &["diff", id, "-2", "-1", "--format", "paths"],
    ));
    assert_eq!(paths.lines().count(), 3, "{paths}");
    assert!(paths.starts_with("~ status: "), "{paths}");
    let json: Value = serde_json::from_str(&ok(&sagascope(
        &store,
        &["diff", id, "-2", "-1", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(json["changes"], serde_json::json!([]));
    assert_eq!(json["fields"][0]["path"], "status");
    assert_eq!(json["fields"][0]["old"], "executing");
    assert_eq!(json["fields"][0]["new"], "rolled_back");
    assert_eq!(json["fields"][2]["path"], "compensated_steps");
    // Between two snapshots of the same status nothing is added.
    let text = ok(&sagascope(&store, &["diff", id, "0", "-2"]));
    assert!(!text.contains("snapshot fields"), "{text}");
}
