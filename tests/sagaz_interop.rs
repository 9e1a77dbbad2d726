//! Interop with sagaz 1.5.0, both ways, against real stores.
//!
//! sagaz → sagascope: `tests/interop/sagaz_interop.py write` runs real sagas
//! with sagaz's own `Saga` and storage classes (failures, compensation, a
//! sagaz dry run and replay, non-ASCII) and dumps what sagaz lists; sagascope
//! must list exactly those sagas with the same snapshots, contexts, order and
//! replay logs.
//!
//! sagascope → sagaz: sagascope imports snapshots and replay logs; sagaz's
//! storage classes read them back equal.
//!
//! Needs a Python with sagaz (`SAGAZ_PYTHON`, or the venv `.ci/services/
//! sagaz.sh` makes at `target/ci/sagaz-venv`) and the servers `.ci/run`
//! starts. Missing pieces skip with a message, and fail under `CI=true`.

/// Prints a SKIP line that `cargo test` shows even for a passing test
/// (libtest captures `eprintln!`, not writes to the stderr handle).
macro_rules! skip_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use sagascope::model::{ReplayLog, ReplayStatus, Timestamp};
use sagascope::seed::{saga_snapshots, SeedSpec};

fn sagaz_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var("SAGAZ_PYTHON").ok().map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci/sagaz-venv/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import sagaz, redis, asyncpg, aioboto3, zstandard"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/sagaz_interop.py")
}

struct Backend {
    name: &'static str,
    /// What the Python side is given.
    py: Value,
    /// The same store for sagascope.
    url: String,
    /// Something that must answer for the test to run.
    probe: &'static str,
}

fn sagascope(url: &str, args: &[&str]) -> std::process::Output {
    let home = std::env::temp_dir().join("sagascope-interop-home");
    let _ = std::fs::create_dir_all(&home);
    Command::new(env!("CARGO_BIN_EXE_sagascope"))
        .arg("--store")
        .arg(url)
        .args(args)
        .env("XDG_CONFIG_HOME", &home)
        .env("XDG_DATA_HOME", &home)
        .env("SAGASCOPE_LOG", "off")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run sagascope")
}

fn ok_json(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "sagascope failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn ts(v: &Value) -> Option<Timestamp> {
    v.as_str().map(|s| Timestamp::parse(s).expect("timestamp"))
}

/// The fields both sides must agree on. Contexts compare as JSON values
/// (key order aside: PostgreSQL's JSONB reorders keys); times as instants.
fn assert_same_snapshot(ours: &Value, theirs: &Value, ctx: &str) {
    let (plain, times) = common::SAGAZ_COLUMNS.split_at(8);
    for &k in plain {
        assert_eq!(ours[k], theirs[k], "{ctx}: field {k}");
    }
    for &k in times {
        assert_eq!(ts(&ours[k]), ts(&theirs[k]), "{ctx}: field {k}");
    }
}

fn assert_same_replay(ours: &Value, theirs: &Value, ctx: &str) {
    let ours = ReplayLog::from_json(ours.clone()).expect("our replay log");
    let theirs = ReplayLog::from_json(theirs.clone()).expect("sagaz replay log");
    assert_eq!(ours.replay_id, theirs.replay_id, "{ctx}");
    assert_eq!(ours.original_saga_id, theirs.original_saga_id, "{ctx}");
    assert_eq!(ours.new_saga_id, theirs.new_saga_id, "{ctx}");
    assert_eq!(ours.checkpoint_step, theirs.checkpoint_step, "{ctx}");
    assert_eq!(ours.replay_status, theirs.replay_status, "{ctx}");
    assert_eq!(ours.initiated_by, theirs.initiated_by, "{ctx}");
    assert_eq!(ours.error_message, theirs.error_message, "{ctx}");
    assert_eq!(ours.created_at, theirs.created_at, "{ctx}");
    assert_eq!(ours.completed_at, theirs.completed_at, "{ctx}");
}

fn run_py(py: &Path, args: &[&str]) {
    let out = Command::new(py)
        .arg(script())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "sagaz side failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn interop(backend: Backend) {
    let reachable = common::tcp_open(backend.probe);
    if !common::backend_available(backend.name, backend.probe, reachable) {
        return;
    }
    let Some(py) = sagaz_python() else {
        assert!(
            !common::backends_required(),
            "sagaz is required in CI: .ci/services/sagaz.sh should have made target/ci/sagaz-venv"
        );
        skip_line!(
            "SKIP {} interop: no Python with sagaz 1.5.0 (set SAGAZ_PYTHON)",
            backend.name
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // sagaz → sagascope.
    let out = dir.path().join("sagaz.json");
    run_py(
        &py,
        &["write", &backend.py.to_string(), out.to_str().unwrap()],
    );
    let sagaz: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    if backend.name.starts_with("redis") {
        // sagaz keeps no saga index in Redis: build sagascope's.
        let r = sagascope(&backend.url, &["reindex"]);
        assert!(
            r.status.success(),
            "reindex: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    let listed = ok_json(sagascope(
        &backend.url,
        &["sagas", "list", "--all", "--format", "json"],
    ));
    let listed: BTreeSet<String> = listed["sagas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = sagaz["sagas"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, snaps)| !snaps.as_array().unwrap().is_empty())
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        listed, expected,
        "{}: sagascope lists exactly sagaz's sagas",
        backend.name
    );
    for (id, snaps) in sagaz["sagas"].as_object().unwrap() {
        let theirs = snaps.as_array().unwrap();
        if theirs.is_empty() {
            continue;
        }
        let ours = ok_json(sagascope(
            &backend.url,
            &["snapshots", id, "--format", "json"],
        ));
        let ours = ours["snapshots"].as_array().unwrap();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{}: saga {id} snapshot count",
            backend.name
        );
        for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
            assert_same_snapshot(o, t, &format!("{} saga {id} #{i}", backend.name));
        }
    }
    for (id, replays) in sagaz["replays"].as_object().unwrap() {
        let theirs = replays.as_array().unwrap();
        let ours = ok_json(sagascope(
            &backend.url,
            &["replay", "history", id, "--format", "json"],
        ));
        let ours = ours["replays"].as_array().unwrap();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{}: replays of {id}",
            backend.name
        );
        for t in theirs {
            let rid = t["replay_id"].as_str().unwrap();
            let o = ours
                .iter()
                .find(|o| o["replay_id"] == rid)
                .expect("replay listed by sagascope");
            assert_same_replay(o, t, &format!("{} replay {rid}", backend.name));
        }
    }

    // sagascope → sagaz: a bundle of generated sagas plus replay logs.
    let spec = SeedSpec {
        start: Timestamp::parse("2026-02-01T00:00:00Z").unwrap(),
        ..SeedSpec::default()
    };
    let seed = common::unique_tag()
        .bytes()
        .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
    let bundle = dir.path().join("bundle.jsonl");
    let mut out =
        sagascope::bundle::BundleWriter::new(std::fs::File::create(&bundle).unwrap()).unwrap();
    let mut ids = Vec::new();
    let mut written = Vec::new();
    for i in 0..4 {
        let (snaps, _) = saga_snapshots(&spec, seed, i);
        ids.push(snaps[0].saga_id.clone());
        for s in &snaps {
            out.write_snapshot(s).unwrap();
        }
        written.push(snaps);
    }
    let replay = ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: ids[0].clone(),
        new_saga_id: uuid::Uuid::new_v4().to_string(),
        checkpoint_step: written[0][1].step_name.clone(),
        replay_status: ReplayStatus::Success,
        initiated_by: "interop".into(),
        context_override: Some(json!({"payment_token": "tok_valid"})),
        error_message: None,
        created_at: Timestamp::parse("2026-02-02T00:00:00.123456Z").unwrap(),
        completed_at: Some(Timestamp::parse("2026-02-02T00:00:01Z").unwrap()),
        extra: serde_json::Map::new(),
    };
    out.write_replay(&replay).unwrap();
    out.finish().unwrap();
    let imp = sagascope(&backend.url, &["import", bundle.to_str().unwrap()]);
    assert!(
        imp.status.success(),
        "import: {}",
        String::from_utf8_lossy(&imp.stderr)
    );
    // Records beside the snapshots (a legal hold and its audit event) and
    // a held saga (its snapshots rewritten with no expiry) must not change
    // what sagaz reads.
    let held = sagascope(
        &backend.url,
        &["hold", "place", &ids[1], "--reason", "interop"],
    );
    assert!(
        held.status.success(),
        "hold place: {}",
        String::from_utf8_lossy(&held.stderr)
    );
    for s in &mut written[1] {
        s.retention_until = None;
    }
    let ids_file = dir.path().join("ids.json");
    std::fs::write(&ids_file, serde_json::to_string(&ids).unwrap()).unwrap();
    let read_out = dir.path().join("read.json");
    run_py(
        &py,
        &[
            "read",
            &backend.py.to_string(),
            ids_file.to_str().unwrap(),
            read_out.to_str().unwrap(),
        ],
    );
    let back: Value = serde_json::from_slice(&std::fs::read(&read_out).unwrap()).unwrap();
    for (id, snaps) in ids.iter().zip(&written) {
        let theirs = back["sagas"][id].as_array().expect("sagaz lists the saga");
        assert_eq!(
            theirs.len(),
            snaps.len(),
            "{}: sagaz reads every snapshot of {id}",
            backend.name
        );
        for (i, (o, t)) in snaps.iter().zip(theirs).enumerate() {
            assert_same_snapshot(
                &o.to_json(),
                t,
                &format!("{} (sagaz reading) saga {id} #{i}", backend.name),
            );
        }
    }
    let theirs = back["replays"][&ids[0]]
        .as_array()
        .expect("sagaz lists the replay");
    assert_eq!(theirs.len(), 1, "{}", backend.name);
    assert_same_replay(
        &replay.to_json(),
        &theirs[0],
        &format!("{} (sagaz reading) replay", backend.name),
    );
    for (sid, found) in back["by_id"].as_object().unwrap() {
        assert_eq!(
            found,
            &json!(true),
            "{}: sagaz get_snapshot({sid})",
            backend.name
        );
    }
}

fn redis(compress: bool) -> Backend {
    let prefix = format!("interop{}:snapshot:", common::unique_tag());
    Backend {
        name: if compress {
            "redis-zstd"
        } else {
            "redis-plain"
        },
        py: json!({"backend": "redis", "url": "redis://127.0.0.1:6379", "prefix": prefix, "compress": compress}),
        url: format!(
            "redis://127.0.0.1:6379?prefix={prefix}&compression={}",
            if compress { "zstd" } else { "none" }
        ),
        probe: "127.0.0.1:6379",
    }
}

fn s3(compress: bool) -> Backend {
    let prefix = format!("interop-{}/", common::unique_tag());
    Backend {
        name: if compress { "s3-zstd" } else { "s3-plain" },
        py: json!({"backend": "s3", "bucket": "sagascope-interop", "prefix": prefix, "endpoint": "http://127.0.0.1:9000", "compress": compress}),
        url: format!(
            "s3://sagascope-interop/{prefix}?endpoint=http://127.0.0.1:9000&path_style=true&region=us-east-1&compression={}",
            if compress { "zstd" } else { "none" }
        ),
        probe: "127.0.0.1:9000",
    }
}

fn folder(gzip: bool) -> Backend {
    let dir = std::env::temp_dir().join(format!("sagascope-interop-{}", common::unique_tag()));
    Backend {
        name: if gzip { "folder-gzip" } else { "folder-plain" },
        py: json!({"backend": "fs", "path": dir, "compress": gzip}),
        url: format!(
            "file://{}?compression={}",
            dir.display(),
            if gzip { "gzip" } else { "none" }
        ),
        probe: "127.0.0.1:6379",
    }
}

#[test]
fn redis_zstd_both_ways() {
    interop(redis(true));
}

#[test]
fn redis_uncompressed_both_ways() {
    interop(redis(false));
}

#[test]
fn postgres_both_ways() {
    let schema = format!("interop_{}", common::unique_tag());
    interop(Backend {
        name: "postgres",
        py: json!({"backend": "postgres", "dsn": "postgresql://postgres@127.0.0.1:5432/test", "schema": schema}),
        url: format!("postgres://postgres@127.0.0.1:5432/test?schema={schema}"),
        probe: "127.0.0.1:5432",
    });
}

#[test]
fn s3_zstd_both_ways() {
    interop(s3(true));
}

#[test]
fn s3_uncompressed_both_ways() {
    interop(s3(false));
}

#[test]
fn folder_plain_both_ways() {
    interop(folder(false));
}

#[test]
fn folder_gzip_both_ways() {
    interop(folder(true));
}
