//! End-to-end, through the built binary: what keeps a user safe from the
//! tool and from the data it shows. Read-only mode refuses every writing
//! command before anything runs; stored text cannot drive the terminal;
//! a mistyped store path is an error, not a new empty store; files that
//! hold contexts are owner-only; the README's relative times parse;
//! conflicting overrides fail loudly.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use cli_world::{stderr, World};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Map, Value};

use sagascope::model::{ReplayLog, ReplayStatus, SagaStatus, Snapshot, Timestamp};
use sagascope::store::{self, OpenOptions, StoreUrl};

/// One test's private world (home dirs and a store URL), recording
/// `test-auditor` in the replay log.
fn world() -> World {
    World::sqlite().with_identity("test-auditor")
}

/// The counts and the definition these tests read off the shared world.
trait Safety {
    fn saga_count(&self) -> usize;
    fn replay_count(&self, saga: &str) -> usize;
    fn side_effect_definition(&self) -> (PathBuf, PathBuf);
}

impl Safety for World {
    fn saga_count(&self) -> usize {
        self.sagas(&[]).len()
    }

    fn replay_count(&self, saga: &str) -> usize {
        self.replays(saga).len()
    }

    /// A definition whose one step writes `side_effect` (so a test can see
    /// whether it ran) and merges `{"done": true}`.
    fn side_effect_definition(&self) -> (PathBuf, PathBuf) {
        let side_effect = self.path("side-effect");
        let def = self.path("touch_saga.toml");
        std::fs::write(
            &def,
            format!(
                r#"name = "TouchSaga"
snapshots = ["before_each_step", "after_each_step"]

[[steps]]
name = "touch"
run = "cat >/dev/null; touch '{}'; echo '{{\"done\": true}}'"
"#,
                side_effect.display()
            ),
        )
        .unwrap();
        (def, side_effect)
    }
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

// ---------------------------------------------------------- file modes

#[test]
fn stores_logs_exports_and_reports_are_created_owner_only() {
    let w = world();
    let (def, _) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    // A writing command may create a missing store: owner-only.
    let nested = w.path("new/dir/store.db");
    let url = format!("sqlite://{}", nested.display());
    let o = w
        .cmd(&["run", "TouchSaga", "--definitions", def])
        .arg("--store")
        .arg(&url)
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    assert_eq!(mode(&w.path("new")), 0o700);
    assert_eq!(mode(&w.path("new/dir")), 0o700);
    assert_eq!(mode(&nested), 0o600);
    // SQLite removes -wal and -shm when the last connection closes; while
    // one is open (the TUI reading during a replay) they have the
    // database file's mode.
    let open = rusqlite::Connection::open(&nested).unwrap();
    open.execute_batch("CREATE TABLE IF NOT EXISTS probe(x); INSERT INTO probe VALUES (1);")
        .unwrap();
    for f in ["store.db-wal", "store.db-shm"] {
        assert_eq!(mode(&w.path("new/dir").join(f)), 0o600, "{f}");
    }
    drop(open);
    w.ok(&["run", "TouchSaga", "--definitions", def]);
    assert_eq!(mode(&w.path("data/sagascope")), 0o700);
    assert_eq!(mode(&w.path("data/sagascope/sagascope.log")), 0o600);
    let export = w.path("out.jsonl");
    w.ok(&["export", "--all", "-o", export.to_str().unwrap()]);
    assert_eq!(mode(&export), 0o600);
    let report = w.path("report.json");
    w.ok(&[
        "batch",
        "--status",
        "completed",
        "--from-step",
        "touch",
        "--definitions",
        def,
        "--dry-run",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(mode(&report), 0o600);
}

#[test]
fn the_default_store_starts_empty_on_a_fresh_machine_owner_only() {
    let w = World::default_store().with_identity("test-auditor");
    let o = w.run(&["sagas", "list"]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end(), "no sagas match");
    let data = w.path("data/sagascope");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("sagascope.db")), 0o600);
    assert_eq!(mode(&data.join("sagascope.log")), 0o600);
}

// ---------------------------------------------------------------- read-only

/// The one message every refused command prints.
fn refused(action: &str, set_by: &str) -> String {
    format!(
        "error: read-only mode (set by {set_by}): {action} writes to the store; nothing was done"
    )
}

#[test]
fn readonly_run_refuses_with_exit_4_before_any_step_runs() {
    let w = world();
    let (def, side_effect) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    // A store with one saga in it, so "nothing changed" is visible.
    w.ok(&["run", "TouchSaga", "--definitions", def]);
    std::fs::remove_file(&side_effect).unwrap();
    assert_eq!(w.saga_count(), 1);

    let o = w.run(&["--readonly", "run", "TouchSaga", "--definitions", def]);
    assert_eq!(code(&o), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end(), refused("`run`", "--readonly"));
    assert!(o.stdout.is_empty());
    assert!(!side_effect.exists(), "the step ran under --readonly");
    assert_eq!(w.saga_count(), 1);
}

#[test]
fn readonly_demo_replay_batch_and_dry_runs_refuse_with_exit_4_and_change_nothing() {
    let w = world();
    let (def, side_effect) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    w.ok(&["run", "TouchSaga", "--definitions", def]);
    std::fs::remove_file(&side_effect).unwrap();
    let list: Value = serde_json::from_str(&w.ok(&["sagas", "list", "--format", "json"])).unwrap();
    let saga = list["sagas"][0]["saga_id"].as_str().unwrap().to_string();
    let replay = [
        "replay",
        "run",
        &saga,
        "--from-step",
        "touch",
        "--definitions",
        def,
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["demo", "--no-tui"], "`demo`"),
        (
            replay.iter().copied().chain(["--dry-run"]).collect(),
            "`replay run --dry-run`",
        ),
        (replay.to_vec(), "`replay run`"),
        (
            vec![
                "batch",
                "--from-step",
                "touch",
                "--definitions",
                def,
                "--dry-run",
            ],
            "`batch --dry-run`",
        ),
        (
            vec!["batch", "--from-step", "touch", "--definitions", def],
            "`batch`",
        ),
        (vec!["gc", "--yes"], "`gc`"),
        (vec!["dev", "seed", "--sagas", "3"], "`dev seed`"),
        (vec!["reindex"], "`reindex`"),
        (
            vec!["hold", "place", "any", "--reason", "r"],
            "`hold place`",
        ),
        (
            vec!["hold", "release", "any", "--reason", "r"],
            "`hold release`",
        ),
    ];
    for (args, action) in cases {
        let mut full = vec!["--readonly"];
        full.extend(&args);
        let o = w.run(&full);
        assert_eq!(code(&o), Some(4), "{args:?}: {}", stderr(&o));
        let why = if action.contains("dry-run") {
            refused(action, "--readonly").replace(
                "writes to the store;",
                "writes to the store (a dry run is recorded in the replay log);",
            )
        } else {
            refused(action, "--readonly")
        };
        assert_eq!(stderr(&o).trim_end(), why, "{args:?}");
    }
    assert!(!side_effect.exists(), "a step ran under --readonly");
    assert!(
        !w.path("data/sagascope/demo").exists(),
        "demo wrote its files under --readonly"
    );
    assert_eq!(w.saga_count(), 1);
    assert_eq!(w.replay_count(&saga), 0);
    // Reading is still allowed.
    w.ok(&["--readonly", "snapshots", &saga]);
}

#[test]
fn readonly_from_the_config_cannot_be_turned_off_by_the_environment_or_a_profile() {
    let w = world();
    let (def, side_effect) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    let config = w.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "readonly = true\n[profiles.rw]\nstore = {:?}\nreadonly = false\n",
            &w.store
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let set_by = "`readonly = true` in the config file";
    let o = w
        .cmd(&["--config", config, "run", "TouchSaga", "--definitions", def])
        .env("SAGASCOPE_READONLY", "false")
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end(), refused("`run`", set_by));
    let o = w.run(&[
        "--config",
        config,
        "--profile",
        "rw",
        "run",
        "TouchSaga",
        "--definitions",
        def,
    ]);
    assert_eq!(code(&o), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o).trim_end(), refused("`run`", set_by));
    // And the environment alone is enough.
    let o = w
        .cmd(&["run", "TouchSaga", "--definitions", def])
        .env("SAGASCOPE_READONLY", "1")
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(4), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        refused("`run`", "SAGASCOPE_READONLY")
    );
    assert!(!side_effect.exists());
    let shown = w.ok(&["--config", config, "--profile", "rw", "config", "show"]);
    assert!(
        shown.contains(&format!("# readonly:    true (from {set_by})")),
        "{shown}"
    );
}

// ------------------------------------------------- mistyped store paths

#[test]
fn a_missing_sqlite_file_or_folder_is_an_error_for_reading_commands_and_is_not_created() {
    let w = world();
    let gone = w.path("typo/stroe.db");
    let url = format!("sqlite://{}", gone.display());
    for args in [
        vec!["sagas", "list"],
        vec!["snapshots", "abc"],
        vec!["health"],
        vec!["export", "--all", "-o", "/dev/null"],
    ] {
        let o = w.cmd(&args).arg("--store").arg(&url).output().unwrap();
        assert_eq!(code(&o), Some(3), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{} does not exist", gone.display())),
            "{args:?}: {err}"
        );
        assert!(
            !gone.exists() && !w.path("typo").exists(),
            "{args:?} created it"
        );
    }
    let folder = w.path("no-such-folder");
    let o = w
        .cmd(&["sagas", "list"])
        .arg("--store")
        .arg(format!("file://{}", folder.display()))
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{} does not exist", folder.display())));
    assert!(!folder.exists());
}

// ------------------------------------------------------- terminal escapes

/// An OSC title change, a clear-screen CSI, a C1 CSI, DEL and a carriage
/// return: what a hostile saga name, step, context value or reason could
/// hold.
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\r";

async fn seed_evil(store_url: &str) -> String {
    let store = store::open(&StoreUrl::new(store_url), &OpenOptions::default())
        .await
        .unwrap();
    let saga = uuid::Uuid::new_v4().to_string();
    let t0 = Timestamp::parse("2026-03-01T12:00:00Z").unwrap();
    let mut first = Snapshot::new(
        &saga,
        format!("Order{EVIL}Saga"),
        format!("charge{EVIL}"),
        0,
        SagaStatus::parse(&format!("failed{EVIL}")),
        obj(json!({"note": format!("a{EVIL}b"), format!("key{EVIL}"): 1})),
        vec![format!("reserve{EVIL}")],
    );
    first.created_at = t0;
    let mut second = first.clone();
    second.snapshot_id = uuid::Uuid::new_v4().to_string();
    second.step_index = 1;
    second.context = obj(json!({"note": format!("c{EVIL}d"), "city": format!("x{EVIL}")}));
    second.created_at = t0.plus_micros(1_000_000);
    store.save_snapshots(&[first, second]).await.unwrap();
    let mut extra = Map::new();
    extra.insert("reason".into(), Value::from(format!("INC{EVIL}")));
    extra.insert("dry_run".into(), Value::Bool(false));
    store
        .save_replay(&ReplayLog {
            replay_id: uuid::Uuid::new_v4().to_string(),
            original_saga_id: saga.clone(),
            new_saga_id: uuid::Uuid::new_v4().to_string(),
            checkpoint_step: format!("charge{EVIL}"),
            replay_status: ReplayStatus::Other(format!("odd{EVIL}")),
            initiated_by: format!("mallory{EVIL}"),
            context_override: Some(json!({"note": format!("o{EVIL}")})),
            error_message: Some(format!("boom{EVIL}")),
            created_at: t0.plus_micros(2_000_000),
            completed_at: Some(t0.plus_micros(3_000_000)),
            extra,
        })
        .await
        .unwrap();
    saga
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_escape_sequences_never_reach_the_terminal_raw_in_human_output() {
    let w = world();
    let saga = seed_evil(&w.store).await;
    let human: Vec<Vec<&str>> = vec![
        vec!["sagas", "list"],
        vec!["sagas", "list", "--format", "text"],
        vec!["sagas", "show", &saga],
        vec!["snapshots", &saga],
        vec!["diff", &saga, "0", "-1"],
        vec!["diff", &saga, "0", "-1", "--format", "paths"],
        vec!["replay", "history", &saga],
        vec!["replay", "time-travel", &saga, "--step", "-1"],
        vec![
            "replay",
            "time-travel",
            &saga,
            "--step",
            "-1",
            "--format",
            "table",
        ],
        vec![
            "replay",
            "time-travel",
            &saga,
            "--step",
            "0",
            "--key",
            "note",
        ],
        vec!["replay", "list-changes", &saga],
    ];
    for args in human {
        let o = w.run(&args);
        assert_eq!(code(&o), Some(0), "{args:?}: {}", stderr(&o));
        for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            let raw: Vec<char> = text
                .chars()
                .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
                .collect();
            assert!(
                raw.is_empty(),
                "{args:?} wrote raw control characters {raw:?} to {stream}:\n{text}"
            );
        }
        let out = String::from_utf8_lossy(&o.stdout);
        // What was escaped is still shown, visibly.
        assert!(out.contains("pwned"), "{args:?}:\n{out}");
    }
    // JSON keeps the data exactly (serde escapes it).
    let v: Value = serde_json::from_str(&w.ok(&["snapshots", &saga, "--format", "json"])).unwrap();
    assert_eq!(v["saga_name"], format!("Order{EVIL}Saga"));
}

// ------------------------------------------------------- relative times

#[test]
fn the_readmes_relative_times_are_accepted() {
    let w = world();
    let (def, _) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    w.ok(&[
        "run",
        "TouchSaga",
        "--definitions",
        def,
        "--context",
        r#"{"customer": {"address": {"city": "Lyon"}}}"#,
    ]);
    let list: Value = serde_json::from_str(&w.ok(&["sagas", "list", "--format", "json"])).unwrap();
    let saga = list["sagas"][0]["saga_id"].as_str().unwrap().to_string();
    // README: `sagas list --status failed --name OrderSaga --since -1d`.
    let out = w.ok(&["sagas", "list", "--since", "-1d", "--format", "jsonl"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = w.ok(&[
        "sagas", "list", "--since", "-1d12h", "--until", "now", "--format", "jsonl",
    ]);
    assert_eq!(out.lines().count(), 1, "{out}");
    // README: `replay time-travel … --at -2h --key customer.address.city`:
    // the saga did not exist two hours ago.
    let o = w.run(&[
        "replay",
        "time-travel",
        &saga,
        "--at",
        "-2h",
        "--key",
        "customer.address.city",
    ]);
    assert_eq!(code(&o), Some(5), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("unexpected argument"),
        "{}",
        stderr(&o)
    );
    let out = w.ok(&[
        "replay",
        "time-travel",
        &saga,
        "--at",
        "now",
        "--key",
        "customer.address.city",
    ]);
    assert_eq!(out, "customer.address.city: Lyon\n");
    // `--after -1h` (list-changes), `--since -1d` (snapshots, batch).
    // (before and after the step, and on completion: three snapshots.)
    let out = w.ok(&[
        "replay",
        "list-changes",
        &saga,
        "--after",
        "-1h",
        "--format",
        "jsonl",
    ]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let out = w.ok(&["snapshots", &saga, "--since", "-1d", "--format", "jsonl"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let o = w.run(&[
        "batch",
        "--status",
        "completed",
        "--since",
        "-1d",
        "--from-step",
        "touch",
        "--definitions",
        def,
        "--dry-run",
    ]);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    // A time that is not one is still a usage error, not a silent "now".
    let o = w.run(&["sagas", "list", "--since", "-2x"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--since"), "{}", stderr(&o));
}

// ------------------------------------------------------ one saga filter

/// `sagas list`, `batch` and `export` take the same filter flags and select
/// the same sagas with them; a list of ids and a filter together is a usage
/// error, not a filter silently dropped.
#[test]
fn sagas_list_batch_and_export_share_one_filter() {
    let w = world();
    let (def, _) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    for _ in 0..3 {
        w.ok(&["run", "TouchSaga", "--definitions", def]);
    }
    let list: Value = serde_json::from_str(&w.ok(&["sagas", "list", "--format", "json"])).unwrap();
    let first = list["sagas"][0]["saga_id"].as_str().unwrap().to_string();
    let prefix = &first[..8];
    let filter = [
        "--status",
        "completed",
        "--name",
        "TouchSaga",
        "--since",
        "-1d",
        "--id-prefix",
        prefix,
    ];
    let mut args = vec!["sagas", "list", "--format", "jsonl"];
    args.extend(filter);
    assert_eq!(w.ok(&args).lines().count(), 1);
    // The same flags on export: one saga in the bundle.
    let bundle = w.path("one.jsonl");
    let mut args = vec!["export", "-o", bundle.to_str().unwrap()];
    args.extend(filter);
    w.ok(&args);
    let text = std::fs::read_to_string(&bundle).unwrap();
    let sagas: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["snapshot"]["saga_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        sagas.into_iter().collect::<Vec<_>>(),
        vec![first.clone()],
        "{text}"
    );
    // And on batch (a dry run over the one saga).
    let mut args = vec![
        "batch",
        "--from-step",
        "touch",
        "--definitions",
        def,
        "--dry-run",
    ];
    args.extend(filter);
    let o = w.run(&args);
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&first[..8]), "{out}");
    // Ids and a filter together: refused before anything runs.
    let ids = w.path("ids.txt");
    std::fs::write(&ids, &first).unwrap();
    let o = w.run(&[
        "batch",
        "--ids-from",
        ids.to_str().unwrap(),
        "--status",
        "failed",
        "--from-step",
        "touch",
        "--definitions",
        def,
        "--dry-run",
    ]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    let o = w.run(&["export", &first, "--status", "failed"]);
    assert_eq!(code(&o), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not both"), "{}", stderr(&o));
}

// ------------------------------------------------------------ overrides

#[test]
fn an_override_key_set_twice_to_different_values_fails_naming_both_and_logs_nothing() {
    let w = world();
    let (def, side_effect) = w.side_effect_definition();
    let def = def.to_str().unwrap();
    w.ok(&["run", "TouchSaga", "--definitions", def]);
    std::fs::remove_file(&side_effect).unwrap();
    let list: Value = serde_json::from_str(&w.ok(&["sagas", "list", "--format", "json"])).unwrap();
    let saga = list["sagas"][0]["saga_id"].as_str().unwrap().to_string();
    let override_file = w.path("override.json");
    std::fs::write(&override_file, r#"{"a": 3}"#).unwrap();
    let cases = [
        (
            vec!["--override", "a=1", "--override-json", r#"{"a":2}"#],
            r#"error: override key "a" is set to 2 by --override-json and to 1 by --override a=1; give it once"#.to_string(),
        ),
        (
            vec!["--override-file", override_file.to_str().unwrap(), "--override-json", r#"{"a":2}"#],
            format!(
                r#"error: override key "a" is set to 3 by --override-file {} and to 2 by --override-json; give it once"#,
                override_file.display()
            ),
        ),
    ];
    for (flags, message) in cases {
        for dry in [true, false] {
            let mut args = vec![
                "replay",
                "run",
                &saga,
                "--from-step",
                "touch",
                "--definitions",
                def,
            ];
            args.extend(&flags);
            if dry {
                args.push("--dry-run");
            }
            let o = w.run(&args);
            assert_eq!(code(&o), Some(2), "{args:?}: {}", stderr(&o));
            assert_eq!(stderr(&o).trim_end(), message);
        }
    }
    // The same value from two sources is no conflict.
    w.ok(&[
        "replay",
        "run",
        &saga,
        "--from-step",
        "touch",
        "--definitions",
        def,
        "--override",
        "a=2",
        "--override-json",
        r#"{"a":2}"#,
        "--dry-run",
        // TouchSaga completed: a replay of it must say so.
        "--allow-completed",
    ]);
    assert!(!side_effect.exists());
    assert_eq!(w.replay_count(&saga), 1);
}

// -------------------------------------------------- PostgreSQL messages

#[test]
fn postgres_errors_end_with_the_servers_message_not_a_source_line() {
    let base = "postgres://postgres@127.0.0.1:5432/test";
    if !common::backend_available("postgres", base, common::tcp_open("127.0.0.1:5432")) {
        return;
    }
    let schema = format!("t_{}", common::unique_tag());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt
        .block_on(sqlx::PgPool::connect(base))
        .expect("connect to PostgreSQL");
    // A table of sagaz's name but not its shape, in a private schema.
    rt.block_on(async {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.saga_snapshots (snapshot_id int)"
        )))
        .execute(&pool)
        .await
    })
    .unwrap();
    let w = world();
    let url = format!("{base}?schema={schema}");
    let o = w
        .cmd(&["sagas", "list"])
        .arg("--store")
        .arg(&url)
        .output()
        .unwrap();
    let _ = rt.block_on(
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&pool),
    );
    assert_eq!(code(&o), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    let first = err.lines().next().unwrap();
    assert!(first.starts_with("error: "), "{err}");
    assert!(!first.contains(" at line "), "{err}");
    assert!(
        first.ends_with("does not exist"),
        "the message should end with the server's words: {err}"
    );
    assert!(first.contains("server error 42703: column"), "{err}");
}

/// What the server refuses (GRANTs) is a permission error, exit 4, in the
/// server's words.
#[test]
fn a_postgres_permission_error_exits_4_with_the_servers_message() {
    let base = "postgres://postgres@127.0.0.1:5432/test";
    if !common::backend_available("postgres", base, common::tcp_open("127.0.0.1:5432")) {
        return;
    }
    let tag = common::unique_tag();
    let (schema, role) = (format!("t_{tag}"), format!("r_{tag}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt
        .block_on(sqlx::PgPool::connect(base))
        .expect("connect to PostgreSQL");
    let exec = |sql: String| rt.block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool));
    // A private schema with sagaz's tables, and a role that may look in
    // the schema but is granted nothing in it.
    let w = world();
    let o = w
        .cmd(&["sagas", "list"])
        .arg("--store")
        .arg(format!("{base}?schema={schema}"))
        .output()
        .unwrap();
    assert_eq!(code(&o), Some(0), "{}", stderr(&o));
    exec(format!(
        "CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {role}"
    ))
    .unwrap();
    let runs: Vec<Output> = [&[][..], &["--readonly"][..]]
        .iter()
        .map(|extra| {
            w.cmd(extra)
                .args(["sagas", "list", "--store"])
                .arg(format!(
                    "postgres://{role}@127.0.0.1:5432/test?schema={schema}"
                ))
                .output()
                .unwrap()
        })
        .collect();
    let _ = exec(format!("DROP SCHEMA {schema} CASCADE"));
    let _ = exec(format!("DROP OWNED BY {role}; DROP ROLE {role}"));
    for o in runs {
        assert_eq!(code(&o), Some(4), "{}", stderr(&o));
        let err = stderr(&o);
        let first = err.lines().next().unwrap();
        assert!(
            first.starts_with("error: permission denied by the PostgreSQL server: server error 42501: permission denied for "),
            "{err}"
        );
        assert!(!first.contains(" at line "), "{err}");
    }
}
