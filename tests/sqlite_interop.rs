//! A SQLite file shared with other tools: tables made and rows written by
//! Python's stdlib `sqlite3` the way sagaz writes them (FORMATS.md §3 with
//! TEXT columns, without sagascope's extra columns) are read by
//! `SqliteStore`, including rows written while sagascope has the file open;
//! and rows sagascope writes read back in Python as sagaz's values.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use sagascope::model::{ReplayLog, ReplayStatus, SagaStatus, Snapshot, Timestamp};
use sagascope::store::sqlite::SqliteStore;
use sagascope::store::{Order, SagaFilter, SagaPageRequest, SnapshotQuery, SnapshotStore};

/// FORMATS.md §3's DDL with every column type SQLite has (UUID, VARCHAR,
/// JSONB, TIMESTAMPTZ -> TEXT); defaults that need PostgreSQL functions are
/// left out, since sagaz always sends the values.
const CREATE_TABLES: &str = r#"
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.executescript('''
CREATE TABLE IF NOT EXISTS saga_snapshots (
  snapshot_id TEXT PRIMARY KEY,
  saga_id TEXT NOT NULL, saga_name TEXT NOT NULL, step_name TEXT NOT NULL,
  step_index INTEGER NOT NULL, status TEXT NOT NULL,
  context TEXT NOT NULL, completed_steps TEXT NOT NULL,
  created_at TEXT, retention_until TEXT,
  CONSTRAINT idx_saga_snapshots_saga_id_step UNIQUE (saga_id, step_name, created_at));
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_saga_id ON saga_snapshots(saga_id);
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_created_at ON saga_snapshots(created_at);
CREATE INDEX IF NOT EXISTS idx_saga_snapshots_retention ON saga_snapshots(retention_until);
CREATE TABLE IF NOT EXISTS saga_replay_log (
  replay_id TEXT PRIMARY KEY, original_saga_id TEXT NOT NULL,
  new_saga_id TEXT NOT NULL, checkpoint_step TEXT NOT NULL, context_override TEXT,
  initiated_by TEXT NOT NULL, replay_status TEXT NOT NULL, error_message TEXT,
  created_at TEXT, completed_at TEXT);
CREATE INDEX IF NOT EXISTS idx_replay_log_original_saga ON saga_replay_log(original_saga_id);
CREATE INDEX IF NOT EXISTS idx_replay_log_created_at ON saga_replay_log(created_at);
''')
con.commit()
"#;

/// Inserts snapshots as sagaz's PostgreSQL storage builds them
/// (`json.dumps` with its default `ensure_ascii`, `datetime.isoformat()` of
/// aware UTC values) and prints them as `to_dict()` would, as JSON.
///
/// argv: db, then one JSON array of specs
/// `[saga_id, saga_name, step, index, status, µs after base]`.
const INSERT_SNAPSHOTS: &str = r#"
import json, sqlite3, sys, uuid
from datetime import datetime, timedelta, timezone
con = sqlite3.connect(sys.argv[1])
base = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
out = []
for saga_id, saga_name, step, index, status, us in json.loads(sys.argv[2]):
    created = base + timedelta(microseconds=us)
    context = {"order_id": "o-" + saga_id[:8], "note": "caf\u00e9 \U0001F680 \u65e5\u672c",
               "big": 2**53 + 1, "amount": 99.5, "items": [{"sku": "A-1", "qty": 2}],
               "customer": {"name": "Zo\u00eb", "vip": True, "tags": None}, "step": index}
    completed = ["reserve_inventory", "charge_payment", "ship_order"][:min(index, 3)]
    row = dict(snapshot_id=str(uuid.uuid4()), saga_id=saga_id, saga_name=saga_name,
               step_name=step, step_index=index, status=status, context=context,
               completed_steps=completed, external_refs={},
               created_at=created.isoformat(),
               retention_until=(created + timedelta(days=30)).isoformat())
    con.execute(
        "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index,"
        " status, context, completed_steps, created_at, retention_until)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row["snapshot_id"], saga_id, saga_name, step, index, status,
         json.dumps(context), json.dumps(completed), row["created_at"], row["retention_until"]))
    out.append(row)
con.commit()
print(json.dumps(out))
"#;

/// Inserts one replay-log row as sagaz does (`context_override` NULL is
/// sagaz's; a JSON value here stands for a tool that records one).
const INSERT_REPLAY: &str = r#"
import json, sqlite3, sys, uuid
from datetime import datetime, timedelta, timezone
con = sqlite3.connect(sys.argv[1])
created = datetime(2026, 3, 1, 12, 0, 10, 250000, tzinfo=timezone.utc)
row = dict(replay_id=str(uuid.uuid4()), original_saga_id=sys.argv[2], new_saga_id=str(uuid.uuid4()),
           checkpoint_step="charge_payment", replay_status="success", initiated_by="ops@example.com",
           context_override={"payment_token": "tok_\u00e9"}, error_message=None,
           created_at=created.isoformat(), completed_at=(created + timedelta(seconds=2)).isoformat())
con.execute(
    "INSERT INTO saga_replay_log (replay_id, original_saga_id, new_saga_id, checkpoint_step,"
    " context_override, initiated_by, replay_status, error_message, created_at, completed_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    (row["replay_id"], row["original_saga_id"], row["new_saga_id"], row["checkpoint_step"],
     json.dumps(row["context_override"]), row["initiated_by"], row["replay_status"], None,
     row["created_at"], row["completed_at"]))
con.commit()
print(json.dumps(row))
"#;

/// Reads a saga's snapshots and a replay the way sagaz's storage does
/// (`json.loads` of the JSON columns) and prints what Python sees.
const READ_BACK: &str = r#"
import json, sqlite3, sys
from datetime import datetime
con = sqlite3.connect(sys.argv[1])
con.row_factory = sqlite3.Row
snaps = []
for r in con.execute("SELECT * FROM saga_snapshots WHERE saga_id = ? ORDER BY created_at", (sys.argv[2],)):
    d = dict(r)
    d["context"] = json.loads(d["context"])
    d["completed_steps"] = json.loads(d["completed_steps"])
    d["step_index_type"] = type(d["step_index"]).__name__
    d["created_at_reparsed"] = datetime.fromisoformat(d["created_at"]).isoformat()
    d["retention_until_reparsed"] = datetime.fromisoformat(d["retention_until"]).isoformat()
    d["created_at_is_utc"] = datetime.fromisoformat(d["created_at"]).utcoffset().total_seconds() == 0
    snaps.append(d)
replays = []
for r in con.execute("SELECT * FROM saga_replay_log WHERE original_saga_id = ?", (sys.argv[2],)):
    d = dict(r)
    d["context_override"] = json.loads(d["context_override"]) if d["context_override"] else None
    d["completed_at_reparsed"] = datetime.fromisoformat(d["completed_at"]).isoformat()
    replays.append(d)
print(json.dumps({"snapshots": snaps, "replays": replays}))
"#;

/// Runs a Python snippet; `None` when there is no python3 (a SKIP outside
/// CI, a failure in CI).
fn python(dir: &Path, name: &str, script: &str, args: &[&str]) -> Option<Value> {
    let path = dir.join(format!("{name}.py"));
    std::fs::write(&path, script).unwrap();
    let out = match Command::new("python3").arg(&path).args(args).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            common::backend_available("python3", "PATH", false);
            return None;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    assert!(
        out.status.success(),
        "{name}.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    Some(if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap()
    })
}

fn base() -> Timestamp {
    Timestamp::parse("2026-03-01T12:00:00+00:00").unwrap()
}

/// Python's `to_dict()` rows as snapshots.
fn snapshots(v: Value) -> Vec<Snapshot> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| Snapshot::from_json(r.clone()).unwrap())
        .collect()
}

fn spec(saga: &str, name: &str, step: &str, index: i64, status: &str, us: i64) -> Value {
    json!([saga, name, step, index, status, us])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagaz_shaped_file_from_python_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sagaz.db");
    let db_arg = db.to_str().unwrap();
    if python(dir.path(), "create", CREATE_TABLES, &[db_arg]).is_none() {
        return;
    }
    let (a, b) = (common::saga_id(), common::saga_id());
    let specs = json!([
        spec(&a, "OrderSaga", "reserve_inventory", 0, "executing", 0),
        spec(&a, "OrderSaga", "charge_payment", 1, "executing", 123_456),
        spec(&a, "OrderSaga", "ship_order", 2, "executing", 1_000_001),
        spec(&a, "OrderSaga", "__completed__", 3, "completed", 2_000_000),
        spec(
            &b,
            "Remboursement_données",
            "refund_payment",
            0,
            "executing",
            500_000
        ),
        spec(
            &b,
            "Remboursement_données",
            "notify_customer",
            1,
            "failed",
            5_000_000
        ),
    ]);
    let written = python(
        dir.path(),
        "insert",
        INSERT_SNAPSHOTS,
        &[db_arg, &specs.to_string()],
    )
    .unwrap();
    // sagaz omits the fraction when the microsecond is 0.
    assert_eq!(written[0]["created_at"], json!("2026-03-01T12:00:00+00:00"));
    assert_eq!(
        written[1]["created_at"],
        json!("2026-03-01T12:00:00.123456+00:00")
    );
    let written = snapshots(written);
    let (a_snaps, b_snaps) = (written[..4].to_vec(), written[4..].to_vec());
    let replay_row = python(dir.path(), "replay", INSERT_REPLAY, &[db_arg, &a]).unwrap();

    let store = SqliteStore::open_path(db.clone(), false).await.unwrap();
    let caps = store.capabilities();
    assert!(
        !caps.stores_external_refs,
        "another tool's table has no external_refs column"
    );
    assert!(!caps.preserves_extra_fields);

    // Saga list, indexed from rows that existed before sagascope came.
    let page = store
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    assert!(page.bad.is_empty(), "{:?}", page.bad);
    let ids: Vec<_> = page.sagas.iter().map(|s| s.saga_id.as_str()).collect();
    assert_eq!(ids, vec![b.as_str(), a.as_str()]);
    let sa = &page.sagas[1];
    assert_eq!(sa.saga_name, "OrderSaga");
    assert_eq!(sa.snapshot_count, 4);
    assert_eq!(sa.latest_step, "__completed__");
    assert_eq!(sa.latest_step_index, 3);
    assert_eq!(sa.latest_status, SagaStatus::Completed);
    assert_eq!(
        (sa.first_at, sa.last_at),
        (base(), base().plus_micros(2_000_000))
    );
    let sb = &page.sagas[0];
    assert_eq!(sb.saga_name, "Remboursement_données");
    assert_eq!(sb.latest_status, SagaStatus::Failed);
    let named = SagaFilter {
        name: Some("Remboursement_données".into()),
        ..SagaFilter::default()
    };
    assert_eq!(store.count_sagas(&named).await.unwrap(), 1);

    // Snapshots, in order, equal to what Python wrote (escapes decoded,
    // 2^53+1 exact).
    let listed = store
        .list_snapshots(&a, &SnapshotQuery::all())
        .await
        .unwrap();
    assert!(listed.bad.is_empty(), "{:?}", listed.bad);
    assert_eq!(listed.items, a_snaps);
    assert_eq!(listed.items[0].context["note"], json!("café 🚀 日本"));
    assert_eq!(
        listed.items[0].context["big"].as_u64(),
        Some(9_007_199_254_740_993)
    );
    assert_eq!(listed.items[0].context["customer"]["name"], json!("Zoë"));
    let desc = store
        .list_snapshots(
            &b,
            &SnapshotQuery {
                order: Order::Desc,
                ..SnapshotQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(desc.items, vec![b_snaps[1].clone(), b_snaps[0].clone()]);

    // Time travel over Python's timestamps (with and without fraction).
    let at = |us: i64| {
        let store = &store;
        let a = a.clone();
        async move {
            store
                .snapshot_at(&a, base().plus_micros(us))
                .await
                .unwrap()
                .map(|s| s.step_index)
        }
    };
    assert_eq!(at(-1).await, None);
    assert_eq!(at(0).await, Some(0));
    assert_eq!(at(123_455).await, Some(0));
    assert_eq!(at(123_456).await, Some(1));
    assert_eq!(at(1_000_000).await, Some(1));
    assert_eq!(at(1_000_001).await, Some(2));
    assert_eq!(at(1_999_999).await, Some(2));
    assert_eq!(at(2_000_000).await, Some(3));
    assert_eq!(at(60_000_000).await, Some(3));
    assert_eq!(
        store
            .latest_snapshot(&a, Some("charge_payment"))
            .await
            .unwrap()
            .as_ref(),
        Some(&a_snaps[1])
    );

    // The replay row.
    let want = ReplayLog::from_json(replay_row).unwrap();
    assert_eq!(
        store.get_replay(&want.replay_id).await.unwrap().as_ref(),
        Some(&want)
    );
    assert_eq!(
        store.list_replays(&a, None).await.unwrap().items,
        vec![want.clone()]
    );
    assert_eq!(want.replay_status, ReplayStatus::Success);

    // Rows Python writes while sagascope has the file open are indexed by
    // the triggers sagascope installed.
    let c = common::saga_id();
    let more = json!([
        spec(
            &a,
            "OrderSaga",
            "compensate_shipping",
            2,
            "compensating",
            3_000_000
        ),
        spec(
            &c,
            "OrderSaga",
            "reserve_inventory",
            0,
            "executing",
            4_000_000
        ),
        spec(&c, "OrderSaga", "charge_payment", 1, "executing", 4_000_001),
    ]);
    let later = snapshots(
        python(
            dir.path(),
            "insert_more",
            INSERT_SNAPSHOTS,
            &[db_arg, &more.to_string()],
        )
        .unwrap(),
    );
    let page = store
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    let ids: Vec<_> = page.sagas.iter().map(|s| s.saga_id.as_str()).collect();
    assert_eq!(ids, vec![b.as_str(), c.as_str(), a.as_str()]);
    let sa = store.saga_summary(&a).await.unwrap().unwrap();
    assert_eq!(sa.snapshot_count, 5);
    assert_eq!(sa.latest_status, SagaStatus::Compensating);
    assert_eq!(sa.latest_step, "compensate_shipping");
    let sc = store.saga_summary(&c).await.unwrap().unwrap();
    assert_eq!(
        (sc.snapshot_count, sc.latest_step.as_str()),
        (2, "charge_payment")
    );
    assert_eq!(
        store
            .list_snapshots(&c, &SnapshotQuery::all())
            .await
            .unwrap()
            .items,
        later[1..].to_vec()
    );
    assert_eq!(
        store
            .snapshot_at(&c, base().plus_micros(4_000_000))
            .await
            .unwrap()
            .as_ref(),
        Some(&later[1])
    );
    assert_eq!(
        store
            .snapshot_at(&a, base().plus_micros(3_500_000))
            .await
            .unwrap()
            .as_ref(),
        Some(&later[0])
    );
    let filter = SagaFilter {
        statuses: vec![SagaStatus::Compensating],
        ..SagaFilter::default()
    };
    assert_eq!(store.count_sagas(&filter).await.unwrap(), 1);

    // A second sagascope opening the same file sees the same index.
    let again = SqliteStore::open_path(db.clone(), true).await.unwrap();
    assert_eq!(again.saga_summary(&a).await.unwrap(), Some(sa));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sagascope_writes_read_in_python_as_sagaz_values() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let db_arg = db.to_str().unwrap();
    // Once into a table another tool made, once into sagascope's own.
    for made_by_python in [true, false] {
        if made_by_python && python(dir.path(), "create", CREATE_TABLES, &[db_arg]).is_none() {
            return;
        }
        let path = if made_by_python {
            db.clone()
        } else {
            dir.path().join("own.db")
        };
        let store = SqliteStore::open_path(path.clone(), false).await.unwrap();
        let saga = common::saga_id();
        let mut s0 = common::snap(&saga, 0, 0);
        s0.context = common::ctx(json!({
            "note": "café 🚀 \u{2028} \"quoted\" \\",
            "big": 9007199254740993u64,
            "i64_min": i64::MIN,
            "neg": -5,
            "f": 0.1,
            "nested": {"a": [1, {"b": null}], "ü": true}
        }));
        s0.external_refs = common::ctx(json!({"payment": "ch_1"}));
        let mut s1 = common::snap(&saga, 1, 1_500_001);
        s1.status = SagaStatus::Failed;
        store
            .save_snapshots(&[s0.clone(), s1.clone()])
            .await
            .unwrap();
        let mut log = ReplayLog {
            replay_id: common::saga_id(),
            original_saga_id: saga.clone(),
            new_saga_id: common::saga_id(),
            checkpoint_step: "charge_payment".into(),
            replay_status: ReplayStatus::Success,
            initiated_by: "alice".into(),
            context_override: Some(json!({"payment_token": "tok_valid"})),
            error_message: None,
            created_at: base().plus_micros(3_000_000),
            completed_at: Some(base().plus_micros(4_000_000)),
            extra: Default::default(),
        };
        log.extra.insert("reason".into(), json!("INC-42"));
        store.save_replay(&log).await.unwrap();
        // Let the WAL be visible to another connection (it is after commit;
        // the pause only guards slow file systems).
        tokio::time::sleep(Duration::from_millis(10)).await;

        let read = python(
            dir.path(),
            "read",
            READ_BACK,
            &[path.to_str().unwrap(), &saga],
        )
        .unwrap();
        let rows = read["snapshots"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for (row, s) in rows.iter().zip([&s0, &s1]) {
            assert_eq!(row["snapshot_id"], json!(s.snapshot_id));
            assert_eq!(row["saga_id"], json!(s.saga_id));
            assert_eq!(row["saga_name"], json!(s.saga_name));
            assert_eq!(row["step_name"], json!(s.step_name));
            assert_eq!(row["step_index"], json!(s.step_index));
            assert_eq!(row["step_index_type"], json!("int"));
            assert_eq!(row["status"], json!(s.status.as_str()));
            assert_eq!(row["context"], Value::Object(s.context.clone()));
            assert_eq!(row["completed_steps"], json!(s.completed_steps));
            // sagaz's isoformat text, which Python reads back to itself.
            assert_eq!(row["created_at"], json!(s.created_at.to_isoformat()));
            assert_eq!(row["created_at_reparsed"], row["created_at"]);
            assert_eq!(row["created_at_is_utc"], json!(true));
            assert_eq!(
                row["retention_until_reparsed"],
                json!(s.retention_until.unwrap().to_isoformat())
            );
        }
        assert_eq!(rows[0]["context"]["big"], json!(9007199254740993u64));
        assert_eq!(rows[0]["created_at"], json!("2026-03-01T12:00:00+00:00"));
        assert_eq!(
            rows[1]["created_at"],
            json!("2026-03-01T12:00:01.500001+00:00")
        );
        if made_by_python {
            assert!(
                rows[0].get("external_refs").is_none(),
                "no column was added to another tool's table"
            );
        } else {
            assert_eq!(rows[0]["external_refs"], json!("{\"payment\":\"ch_1\"}"));
        }
        let replays = read["replays"].as_array().unwrap();
        assert_eq!(replays.len(), 1);
        let r = &replays[0];
        assert_eq!(r["replay_id"], json!(log.replay_id));
        assert_eq!(r["new_saga_id"], json!(log.new_saga_id));
        assert_eq!(r["replay_status"], json!("success"));
        assert_eq!(r["initiated_by"], json!("alice"));
        assert_eq!(r["context_override"], json!({"payment_token": "tok_valid"}));
        assert_eq!(r["error_message"], Value::Null);
        assert_eq!(r["created_at"], json!("2026-03-01T12:00:03+00:00"));
        assert_eq!(
            r["completed_at_reparsed"],
            json!("2026-03-01T12:00:04+00:00")
        );
        // And sagascope reads its own rows back unchanged (external_refs and
        // extra fields only where the table has room for them).
        let got = store.get_snapshot(&s0.snapshot_id).await.unwrap().unwrap();
        if made_by_python {
            assert!(got.external_refs.is_empty());
            assert_eq!(got.context, s0.context);
        } else {
            assert_eq!(got, s0);
        }
    }
}

/// Runs statements, given as `[[sql, [params...]], ...]`, in one
/// transaction.
const EXECUTE: &str = r#"
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
for sql, params in json.loads(sys.argv[2]):
    con.execute(sql, params)
con.commit()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_insert_or_replace_and_ignore_keep_the_saga_index_right() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("replace.db");
    let db_arg = db.to_str().unwrap();
    if python(dir.path(), "create", CREATE_TABLES, &[db_arg]).is_none() {
        return;
    }
    let (a, b) = (common::saga_id(), common::saga_id());
    let specs = json!([
        spec(&a, "OrderSaga", "reserve_inventory", 0, "executing", 0),
        spec(&a, "OrderSaga", "charge_payment", 1, "executing", 1_000),
        spec(&a, "OrderSaga", "ship_order", 2, "executing", 2_000),
        spec(&b, "OrderSaga", "reserve_inventory", 0, "executing", 500),
    ]);
    let rows = snapshots(
        python(
            dir.path(),
            "insert",
            INSERT_SNAPSHOTS,
            &[db_arg, &specs.to_string()],
        )
        .unwrap(),
    );
    let store = SqliteStore::open_path(db.clone(), false).await.unwrap();
    assert_eq!(
        store
            .saga_summary(&a)
            .await
            .unwrap()
            .unwrap()
            .snapshot_count,
        3
    );

    let insert = |verb: &str| {
        format!(
            "{verb} INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, \
             context, completed_steps, created_at, retention_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
    };
    let params = |id: &str, saga: &str, step: &str, index: i64, status: &str, at: &str| {
        json!([
            id,
            saga,
            "OrderSaga",
            step,
            index,
            status,
            "{}",
            "[]",
            at,
            null
        ])
    };
    let t = |us: i64| base().plus_micros(us).to_isoformat();
    let newest = &rows[2];
    let statements = json!([
        // Same snapshot_id: the newest snapshot's row is replaced by an
        // older-dated one; SQLite deletes the old row without delete triggers.
        [
            insert("INSERT OR REPLACE"),
            params(
                &newest.snapshot_id,
                &a,
                "ship_order",
                2,
                "failed",
                &t(1_500)
            )
        ],
        // Same (saga_id, step_name, created_at) as sagaz's unique constraint:
        // the row is replaced under a new snapshot_id.
        [
            insert("INSERT OR REPLACE"),
            params(
                &common::saga_id(),
                &a,
                "reserve_inventory",
                0,
                "pending",
                &t(0)
            )
        ],
        // A duplicate that is ignored changes nothing.
        [
            insert("INSERT OR IGNORE"),
            params(
                &rows[1].snapshot_id,
                &a,
                "charge_payment",
                1,
                "executing",
                &t(1_000)
            )
        ],
        // A replace that moves a snapshot to another saga.
        [
            insert("REPLACE"),
            params(
                &rows[1].snapshot_id,
                &b,
                "charge_payment",
                1,
                "executing",
                &t(3_000)
            )
        ],
        // An ignored duplicate, then a plain insert: the note the ignored
        // one left must not turn the plain insert into a miscount.
        [
            insert("INSERT OR IGNORE"),
            params(&newest.snapshot_id, &a, "x", 0, "executing", &t(9_000))
        ],
        [
            insert("INSERT"),
            params(
                &common::saga_id(),
                &a,
                "refund_payment",
                3,
                "compensating",
                &t(2_500)
            )
        ],
    ]);
    python(
        dir.path(),
        "execute",
        EXECUTE,
        &[db_arg, &statements.to_string()],
    )
    .unwrap();

    let listed_a = store
        .list_snapshots(&a, &SnapshotQuery::all())
        .await
        .unwrap()
        .items;
    assert_eq!(listed_a.len(), 3);
    let sa = store.saga_summary(&a).await.unwrap().unwrap();
    assert_eq!(sa.snapshot_count, 3, "count follows replaced rows: {sa:?}");
    assert_eq!(sa.latest_step, "refund_payment");
    assert_eq!(sa.latest_status, SagaStatus::Compensating);
    assert_eq!(sa.last_at, base().plus_micros(2_500));
    assert_eq!(sa.first_at, base());
    let sb = store.saga_summary(&b).await.unwrap().unwrap();
    assert_eq!(sb.snapshot_count, 2, "{sb:?}");
    assert_eq!(
        (sb.latest_step.as_str(), sb.last_at),
        ("charge_payment", base().plus_micros(3_000))
    );
    let all = store
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    let counts: Vec<_> = all
        .sagas
        .iter()
        .map(|s| (s.saga_id.as_str(), s.snapshot_count))
        .collect();
    assert_eq!(counts, vec![(b.as_str(), 2), (a.as_str(), 3)]);
    let h = store.health().await.unwrap();
    assert_eq!((h.sagas, h.snapshots), (Some(2), Some(5)));
}
