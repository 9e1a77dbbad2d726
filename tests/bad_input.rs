//! Bad input, one table, every backend: each row runs the built binary with
//! one kind of bad input against a store holding the demo's sagas, and
//! asserts the exit code, the one-line message, and that the store holds
//! exactly what it held before (sagas, snapshots and replay log, counted
//! and read through the library, not through the command under test).
//!
//! A row names the class of input it stands for; a defect found by probing
//! gets a row here when it is fixed.

mod common;
#[cfg(feature = "s3")]
#[path = "common/s3env.rs"]
mod s3env;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use sagascope::store::{self, OpenOptions, SagaFilter, SagaPageRequest, SnapshotStore, StoreUrl};

const BIN: &str = env!("CARGO_BIN_EXE_sagascope");

/// One row: what is typed (`{saga}` is a failed demo order's id, `{dir}`
/// the test's private folder), the exit code, a part of the message.
struct Row {
    class: &'static str,
    args: &'static [&'static str],
    exit: i32,
    message: &'static str,
    /// Standard input for the command, when it reads one.
    stdin: Option<&'static [u8]>,
}

const fn row(
    class: &'static str,
    args: &'static [&'static str],
    exit: i32,
    message: &'static str,
) -> Row {
    Row {
        class,
        args,
        exit,
        message,
        stdin: None,
    }
}

/// The table. Exit codes: 2 input, 3 unreachable, 4 read-only, 5 not
/// found, 7 unknown step (README, "Exit codes").
const ROWS: &[Row] = &[
    row(
        "override: invalid JSON",
        &["replay", "run", "{saga}", "--from-step", "charge_payment", "--override-json", "{bad", "--dry-run"],
        2,
        "--override-json: invalid JSON",
    ),
    row(
        "override: JSON that is not an object",
        &["replay", "run", "{saga}", "--from-step", "charge_payment", "--override-json", "[1, 2]", "--dry-run"],
        2,
        "--override-json",
    ),
    row(
        "override: one key given two values",
        &["replay", "run", "{saga}", "--from-step", "charge_payment", "--override", "a=1", "--override-json", "{\"a\": 2}", "--dry-run"],
        2,
        "override key \"a\" is set to 2 by --override-json and to 1 by --override a=1",
    ),
    row(
        "override: not key=value",
        &["replay", "run", "{saga}", "--from-step", "charge_payment", "--override", "no-equals-sign", "--dry-run"],
        2,
        "--override",
    ),
    row(
        "override file: missing",
        &["replay", "run", "{saga}", "--from-step", "charge_payment", "--override-file", "{dir}/nope.json", "--dry-run"],
        2,
        "nope.json",
    ),
    row(
        "override file: invalid JSON",
        &["replay", "run", "{saga}", "--from-step", "charge_payment", "--override-file", "{dir}/broken.json", "--dry-run"],
        2,
        "broken.json",
    ),
    row(
        "replay: unknown step",
        &["replay", "run", "{saga}", "--from-step", "nope", "--dry-run"],
        7,
        "unknown step \"nope\" for saga \"OrderSaga\"; its steps are: reserve_inventory, charge_payment, ship_order",
    ),
    row(
        "replay: unknown saga",
        &["replay", "run", "00000000-dead-beef", "--from-step", "charge_payment", "--dry-run"],
        5,
        "no saga with id or id prefix \"00000000-dead-beef\"",
    ),
    row(
        "saga id: unknown prefix",
        &["snapshots", "zzzz"],
        5,
        "no saga with id or id prefix \"zzzz\"",
    ),
    row(
        "saga id: empty",
        &["snapshots", ""],
        5,
        "no saga with id or id prefix",
    ),
    row(
        "snapshot reference: out of range",
        &["diff", "{saga}", "0", "999"],
        5,
        "has no snapshot matching index 999",
    ),
    row(
        "time: not a time",
        &["replay", "time-travel", "{saga}", "--at", "yesterdayish"],
        2,
        "--at: invalid timestamp \"yesterdayish\"",
    ),
    row(
        "time: before the saga began (relative, as the README writes it)",
        &["replay", "time-travel", "{saga}", "--at", "-3650d"],
        5,
        "has no snapshot at or before",
    ),
    row(
        "filter: unknown status",
        &["sagas", "list", "--status", "bogus"],
        2,
        "unknown status \"bogus\"",
    ),
    row(
        "flag: unknown value",
        &["sagas", "list", "--format", "xml"],
        2,
        "invalid value 'xml' for '--format <FORMAT>'",
    ),
    row(
        "batch: ids file missing",
        &["batch", "--ids-from", "{dir}/nope.txt", "--from-step", "charge_payment", "--dry-run"],
        2,
        "nope.txt",
    ),
    row(
        "read-only: run",
        &["--readonly", "run", "OrderSaga"],
        4,
        "read-only mode (set by --readonly): `run` writes to the store; nothing was done",
    ),
    row(
        "read-only: replay",
        &["--readonly", "replay", "run", "{saga}", "--from-step", "charge_payment"],
        4,
        "read-only mode (set by --readonly)",
    ),
    row(
        "read-only: batch",
        &["--readonly", "batch", "--name", "OrderSaga", "--from-step", "charge_payment"],
        4,
        "read-only mode (set by --readonly)",
    ),
    row(
        "read-only: demo",
        &["--readonly", "demo", "--no-tui"],
        4,
        "read-only mode (set by --readonly)",
    ),
    Row {
        class: "import: not a bundle",
        args: &["import", "-"],
        exit: 2,
        message: "not a sagascope bundle",
        stdin: Some(b"root:x:0:0:root:/root:/bin/bash\n"),
    },
    Row {
        class: "import: empty input",
        args: &["import", "-"],
        exit: 2,
        message: "bundle",
        stdin: Some(b""),
    },
];

/// What a store holds, read through the library: every saga with its
/// snapshots (id and status) and its replay log (id and status).
async fn contents(store: &Arc<dyn SnapshotStore>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut req = SagaPageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let page = store
            .list_sagas(&SagaFilter::default(), &req)
            .await
            .unwrap();
        for s in &page.sagas {
            let all = store::all_snapshots(store.as_ref(), &s.saga_id, store::SnapshotQuery::all())
                .await
                .unwrap();
            for snap in &all.items {
                out.insert(format!(
                    "snapshot {} {} {} {}",
                    s.saga_id,
                    snap.snapshot_id,
                    snap.status.as_str(),
                    serde_json::Value::Object(snap.context.clone())
                ));
            }
            for b in &all.bad {
                out.insert(format!("bad {}", b.key));
            }
            let replays = store.list_replays(&s.saga_id, None).await.unwrap();
            for r in &replays.items {
                out.insert(format!(
                    "replay {} {} {}",
                    r.replay_id,
                    r.replay_status.as_str(),
                    r.initiated_by
                ));
            }
        }
        match page.next {
            Some(n) => req.after = Some(n),
            None => return out,
        }
    }
}

fn sagascope(
    dir: &Path,
    store: &str,
    args: &[String],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args).env("HOME", dir);
    common::isolate(&mut c, dir, "bad-input-table")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c.spawn().expect("run sagascope");
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        let _ = s.write_all(bytes);
    }
    child.wait_with_output().expect("wait for sagascope")
}

/// Runs the whole table against one store: seeds the demo, then every row.
async fn run_table(store_url: String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), b"{\"payment_token\": ").unwrap();
    let seed = sagascope(
        dir.path(),
        &store_url,
        &[
            "demo".into(),
            "--no-tui".into(),
            "--orders".into(),
            "4".into(),
            "--trips".into(),
            "1".into(),
        ],
        None,
    );
    assert!(
        seed.status.success(),
        "demo on {store_url}: {}",
        String::from_utf8_lossy(&seed.stderr)
    );
    let store = store::open(&StoreUrl::new(store_url.clone()), &OpenOptions::default())
        .await
        .unwrap();
    let failed = store
        .list_sagas(
            &SagaFilter {
                statuses: vec![sagascope::model::SagaStatus::RolledBack],
                name: Some("OrderSaga".into()),
                ..SagaFilter::default()
            },
            &SagaPageRequest {
                limit: 1,
                after: None,
            },
        )
        .await
        .unwrap()
        .sagas
        .into_iter()
        .next()
        .expect("the demo leaves a rolled-back order")
        .saga_id;
    let before = contents(&store).await;
    assert!(!before.is_empty());
    let mut problems = Vec::new();
    for r in ROWS {
        let args: Vec<String> = r
            .args
            .iter()
            .map(|a| {
                a.replace("{saga}", &failed)
                    .replace("{dir}", &dir.path().display().to_string())
            })
            .collect();
        let out = sagascope(dir.path(), &store_url, &args, r.stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code().unwrap_or(-1);
        if code != r.exit || !stderr.contains(r.message) {
            problems.push(format!(
                "{}: exit {code} (want {}), stderr: {}",
                r.class,
                r.exit,
                stderr.trim()
            ));
            continue;
        }
        // One clear line (clap's own usage errors add a hint and a blank line).
        if !stderr.starts_with("error: ") {
            problems.push(format!("{}: not an error line: {stderr}", r.class));
        }
        if stderr.contains("panicked") || stderr.contains("stack backtrace") {
            problems.push(format!("{}: panic: {stderr}", r.class));
        }
        let after = contents(&store).await;
        if after != before {
            let added: Vec<_> = after.difference(&before).take(3).collect();
            let removed: Vec<_> = before.difference(&after).take(3).collect();
            problems.push(format!(
                "{}: the store changed: added {added:?}, removed {removed:?}",
                r.class
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} rows failed on {}:\n{}",
        problems.len(),
        ROWS.len(),
        store::redact(&store_url),
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    run_table(format!("sqlite://{}/bad.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table_folder() {
    let dir = tempfile::tempdir().unwrap();
    run_table(format!("file://{}/store", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table_postgres() {
    let base = std::env::var("SAGASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if !common::backend_available("postgres", &base, common::tcp_open("127.0.0.1:5432")) {
        return;
    }
    run_table(format!("{base}?schema=bad_input_{}", common::unique_tag())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table_redis() {
    let base =
        std::env::var("SAGASCOPE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if !common::backend_available("redis", &base, common::tcp_open("127.0.0.1:6379")) {
        return;
    }
    run_table(format!(
        "{base}/?prefix=bad_input:{}:",
        common::unique_tag()
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table_redis_cluster() {
    let base = std::env::var("SAGASCOPE_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into());
    if !common::backend_available("redis-cluster", &base, common::tcp_open("127.0.0.1:7000")) {
        return;
    }
    run_table(format!(
        "{base}/?prefix=bad_input:{}:",
        common::unique_tag()
    ))
    .await;
}

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table_s3() {
    const BUCKET: &str = "sagascope-bad-input";
    if s3env::client_with_bucket(BUCKET).await.is_none() {
        return;
    }
    // The binary reads the same test credentials from its environment.
    run_table(s3env::url(
        BUCKET,
        &format!("t{}/", common::unique_tag()),
        "",
    ))
    .await;
}

/// A store that can't be reached, or a URL that names none: exit 3 or 2,
/// one line, and the password never printed.
#[test]
fn unreachable_or_invalid_stores_are_one_line_errors_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, i32, &str)] = &[
        ("redis://:hunter2@127.0.0.1:1", 3, "cannot reach redis://"),
        (
            "postgres://u:hunter2@127.0.0.1:1/db",
            3,
            "cannot reach postgres://",
        ),
        ("foo://x", 2, "unknown scheme \"foo\""),
        ("sqlite:///nonexistent-dir/x.db", 3, "does not exist"),
    ];
    for (url, exit, message) in cases {
        let out = sagascope(dir.path(), url, &["sagas".into(), "list".into()], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*exit), "{url}: {stderr}");
        assert!(stderr.contains(message), "{url}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "{url}: password printed: {stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
    }
}
