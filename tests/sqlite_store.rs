//! The SQLite store's own file handling: saves while another connection
//! holds the write lock, and files left by earlier sagascope versions.

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use sqlx::{Connection, Row, SqliteConnection};

use sagascope::store::sqlite::SqliteStore;
use sagascope::store::SnapshotStore;

async fn raw(path: &std::path::Path) -> SqliteConnection {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    SqliteConnection::connect_with(&opts).await.unwrap()
}

async fn names(conn: &mut SqliteConnection, kind: &str) -> Vec<String> {
    sqlx::query("SELECT name FROM sqlite_master WHERE type = ? AND tbl_name = 'saga_snapshots' ORDER BY name")
        .bind(kind)
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_waits_for_another_writer_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let store = SqliteStore::open_path(path.clone(), false).await.unwrap();
    let saga = common::saga_id();
    store
        .save_snapshot(&common::snap(&saga, 0, 0))
        .await
        .unwrap();

    // Another program takes the write lock and keeps it for a while.
    let mut other = raw(&path).await;
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let store = std::sync::Arc::new(store);
    let saving = tokio::spawn({
        let (store, saga) = (store.clone(), saga.clone());
        async move { store.save_snapshot(&common::snap(&saga, 1, 1_000)).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !saving.is_finished(),
        "the save must wait for the lock, not fail or skip"
    );
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    saving
        .await
        .unwrap()
        .expect("the save succeeds once the lock is free");

    assert_eq!(store.count_snapshots(&saga).await.unwrap(), 2);
    let summary = store.saga_summary(&saga).await.unwrap().unwrap();
    assert_eq!((summary.snapshot_count, summary.latest_step_index), (2, 1));
    // Saves after the wait take the quick path again and still count.
    store
        .save_snapshot(&common::snap(&saga, 2, 2_000))
        .await
        .unwrap();
    assert_eq!(common::summary_count(&*store, &saga).await, 3);
}

/// A file made by an earlier version: sagascope's columns, its old
/// single insert trigger and the two single-column indexes it no longer
/// keeps. Opening it swaps the triggers and drops the indexes; a table
/// another program made keeps its indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_from_an_earlier_version_gets_the_new_triggers() {
    let dir = tempfile::tempdir().unwrap();
    for (file, made_by_sagascope) in [("old.db", true), ("foreign.db", false)] {
        let path = dir.path().join(file);
        let mut conn = raw(&path).await;
        let own_cols = if made_by_sagascope {
            ", external_refs TEXT, extra TEXT"
        } else {
            ""
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE saga_snapshots (snapshot_id TEXT PRIMARY KEY, saga_id TEXT NOT NULL,
                saga_name TEXT NOT NULL, step_name TEXT NOT NULL, step_index INTEGER NOT NULL,
                status TEXT NOT NULL, context TEXT NOT NULL, completed_steps TEXT NOT NULL,
                created_at TEXT NOT NULL, retention_until TEXT{own_cols});
             CREATE INDEX idx_saga_snapshots_saga_id ON saga_snapshots(saga_id);
             CREATE INDEX idx_saga_snapshots_created_at ON saga_snapshots(created_at);
             CREATE TABLE old_trigger_fired (n INTEGER);
             CREATE TRIGGER sagascope_snapshots_ai2 AFTER INSERT ON saga_snapshots BEGIN
                 INSERT INTO old_trigger_fired VALUES (1);
             END;
             CREATE TRIGGER sagascope_snapshots_bi BEFORE INSERT ON saga_snapshots BEGIN
                 INSERT INTO old_trigger_fired VALUES (2);
             END;"
        )))
        .execute(&mut conn)
        .await
        .unwrap();

        let store = SqliteStore::open_path(path.clone(), false).await.unwrap();
        let saga = common::saga_id();
        for i in 0..3 {
            store
                .save_snapshot(&common::snap(&saga, i, i * 1_000))
                .await
                .unwrap();
        }
        let fired: i64 = sqlx::query_scalar("SELECT count(*) FROM old_trigger_fired")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(fired, 0, "{file}: the old triggers are gone");
        assert_eq!(
            names(&mut conn, "trigger").await,
            [
                "sagascope_snapshots_ad",
                "sagascope_snapshots_ai_one",
                "sagascope_snapshots_ai_recount",
                "sagascope_snapshots_au2",
                "sagascope_snapshots_bi2"
            ],
            "{file}"
        );
        let indexes = names(&mut conn, "index").await;
        let old_kept = indexes.iter().any(|n| n == "idx_saga_snapshots_saga_id")
            && indexes.iter().any(|n| n == "idx_saga_snapshots_created_at");
        assert_eq!(old_kept, !made_by_sagascope, "{file}: {indexes:?}");
        let summary = store.saga_summary(&saga).await.unwrap().unwrap();
        assert_eq!(
            (summary.snapshot_count, summary.latest_step_index),
            (3, 2),
            "{file}"
        );
    }
}

/// Back-to-back saves must not grow the write-ahead log without end: the
/// store checkpoints beside the writer and starts the log over once it is
/// long. Without that, 3,000 saves leave a log of ~130 MB here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_saves_keep_the_write_ahead_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = SqliteStore::open_path(path.clone(), false).await.unwrap();
    let wal = dir.path().join("wal.db-wal");
    let mut largest = 0;
    for run in 0..150 {
        let saga = common::saga_id();
        for i in 0..20 {
            let mut s = common::snap(&saga, i, run * 100 + i);
            s.context.insert("padding".into(), "x".repeat(900).into());
            store.save_snapshot(&s).await.unwrap();
        }
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
    }
    assert_eq!(store.health().await.unwrap().snapshots, Some(3_000));
    assert!(largest < 80 << 20, "the WAL reached {} MiB", largest >> 20);
}

/// A library user may drop the store after the runtime it was used on is
/// gone (the bench binaries do): that must close it quietly, not panic.
#[test]
fn a_store_dropped_after_its_runtime_closes_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(async {
        let store = SqliteStore::open_path(dir.path().join("late.db"), false)
            .await
            .unwrap();
        let saga = common::saga_id();
        store
            .save_snapshot(&common::snap(&saga, 0, 0))
            .await
            .unwrap();
        // A read through the pool keeps a connection aside.
        assert_eq!(store.count_snapshots(&saga).await.unwrap(), 1);
        store
    });
    drop(rt);
    drop(store);
    // The file is intact for the next opener.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let again = SqliteStore::open_path(dir.path().join("late.db"), true)
            .await
            .unwrap();
        assert_eq!(again.health().await.unwrap().snapshots, Some(1));
    });
}
