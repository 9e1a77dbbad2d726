//! The SQLite backend: a fresh database file per test; corrupt entries are
//! rows written with raw SQL, as another program might.

use std::sync::Arc;

use sagascope::model::Snapshot;
use sagascope::store::{sqlite::SqliteStore, SnapshotStore};
use sqlx::SqlitePool;

use crate::cases::{CorruptFixture, Corruption};

async fn open() -> SqliteStore {
    // Leaked on purpose: the file must outlive the store, and each test
    // process is short-lived.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    SqliteStore::open_path(dir.path().join("conformance.db"), false)
        .await
        .expect("open sqlite")
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(Arc::new(open().await))
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let store = open().await;
    let pool = store.pool().clone();
    Some(CorruptFixture::new(Arc::new(store), move |s, kind| {
        let pool = pool.clone();
        async move { insert_broken(&pool, &s, kind).await }
    }))
}

/// Inserts `s` into `saga_snapshots` the way sagaz-shaped tools do (only
/// sagaz's columns), damaged as `kind` says.
async fn insert_broken(pool: &SqlitePool, s: &Snapshot, kind: Corruption) -> bool {
    let mut context = serde_json::to_string(&s.context).unwrap();
    let mut created_at = s.created_at.to_isoformat();
    let mut step_index_text = None;
    match kind {
        Corruption::InvalidJson => context = r#"{"order_id": "o-1", "amount": "#.into(),
        Corruption::ContextNotObject => context = r#"[1, 2, 3]"#.into(),
        Corruption::StepIndexNotInteger => step_index_text = Some("one"),
        Corruption::CreatedAtNotATime => created_at = "last tuesday".into(),
        // A row carries its saga id in a column: neither can happen.
        Corruption::OtherSagasSnapshot | Corruption::NotAValue => return false,
    }
    let q = sqlx::query(
        "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, \
         context, completed_steps, created_at, retention_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.snapshot_id)
    .bind(&s.saga_id)
    .bind(&s.saga_name)
    .bind(&s.step_name);
    // Bound as text, "one" stays text in an INTEGER column.
    let q = match step_index_text {
        None => q.bind(s.step_index),
        Some(t) => q.bind(t),
    };
    q.bind(s.status.as_str())
        .bind(context)
        .bind(serde_json::to_string(&s.completed_steps).unwrap())
        .bind(created_at)
        .bind(s.retention_until.map(|t| t.to_isoformat()))
        .execute(pool)
        .await
        .expect("raw insert");
    true
}

conformance_cases!(corrupt = corrupt_fixture);
