//! A snapshot's extra fields on PostgreSQL (`Snapshot::extra`: a failed
//! run's `error` and `compensated_steps`, a replay's `replay_of`, …), kept
//! in sagascope's `sagascope_snapshot_extra` beside sagaz's untouched
//! `saga_snapshots`: every read returns them, every delete takes them
//! along, and a database without the table still opens read-only.
#![cfg(feature = "postgres")]

#[path = "common/mod.rs"]
mod common;

use serde_json::json;
use sqlx::PgPool;

use common::*;
use sagascope::model::{SagaStatus, Snapshot, Timestamp};
use sagascope::store::postgres::PostgresStore;
use sagascope::store::{
    all_snapshots, OpenOptions, Order, SnapshotCursor, SnapshotQuery, SnapshotStore, StoreUrl,
};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

fn schema_url(schema: &str) -> StoreUrl {
    StoreUrl::new(format!("{PG}?schema={schema}"))
}

async fn pg_store() -> Option<PostgresStore> {
    if !backend_available("postgres", PG, tcp_open("127.0.0.1:5432")) {
        return None;
    }
    let url = schema_url(&format!("x_{}", unique_tag()));
    Some(
        PostgresStore::open(&url, &OpenOptions::default())
            .await
            .expect("open postgres"),
    )
}

/// The rows of `sagascope_snapshot_extra`, counted with plain SQL.
async fn extra_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sagascope_snapshot_extra")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The columns of sagaz's table, in order.
async fn sagaz_columns(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'saga_snapshots' ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The final snapshot of a failed run, as the engine writes it.
fn failed(saga: &str, us: i64) -> Snapshot {
    let mut s = snap(saga, 2, us);
    s.status = SagaStatus::Failed;
    s.extra.insert("error".into(), json!("card declined (402)"));
    s.extra.insert(
        "compensated_steps".into(),
        json!(["charge_payment", "reserve_inventory"]),
    );
    s.extra.insert(
        "compensation_errors".into(),
        json!([{"step": "charge_payment", "error": "timeout", "attempts": 3}]),
    );
    s
}

/// A snapshot of a replay, as the engine writes it.
fn replayed(saga: &str, i: i64, us: i64) -> Snapshot {
    let mut s = snap(saga, i, us);
    s.extra.insert("replay_of".into(), json!(saga_id()));
    s.extra
        .insert("replay_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    s
}

async fn has_extra_table(pool: &PgPool) -> bool {
    sqlx::query_scalar("SELECT to_regclass('sagascope_snapshot_extra') IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn forever(mut s: Snapshot) -> Snapshot {
    s.retention_until = None;
    s
}

fn cursor(s: &Snapshot) -> SnapshotCursor {
    SnapshotCursor {
        created_at: s.created_at,
        snapshot_id: s.snapshot_id.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_extra_fields_come_back_on_every_read() {
    let Some(store) = pg_store().await else {
        return;
    };
    assert!(store.capabilities().preserves_extra_fields);
    // One saga saved a snapshot at a time, one in a batch.
    let a = saga_id();
    let a_snaps = vec![snap(&a, 0, 0), replayed(&a, 1, 10), failed(&a, 20)];
    for s in &a_snaps {
        store.save_snapshot(s).await.unwrap();
    }
    let b = saga_id();
    let b_snaps = vec![replayed(&b, 0, 5), snap(&b, 1, 15), failed(&b, 25)];
    store.save_snapshots(&b_snaps).await.unwrap();
    assert_eq!(
        extra_rows(store.pool()).await,
        4,
        "one row a snapshot with extras"
    );

    for s in a_snaps.iter().chain(&b_snaps) {
        let got = store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
        assert_eq!(&got, s, "get_snapshot");
    }
    for (saga, snaps) in [(&a, &a_snaps), (&b, &b_snaps)] {
        let newest = store.latest_snapshot(saga, None).await.unwrap().unwrap();
        assert_eq!(&newest, &snaps[2], "latest_snapshot");
        assert_eq!(newest.extra["error"], json!("card declined (402)"));
        for s in snaps {
            let at_step = store
                .latest_snapshot(saga, Some(&s.step_name))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&at_step, s, "latest_snapshot at a step");
            let at = store
                .snapshot_at(saga, s.created_at)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&at, s, "snapshot_at");
        }
        let all = store
            .list_snapshots(saga, &SnapshotQuery::all())
            .await
            .unwrap();
        assert_eq!(&all.items, snaps, "list_snapshots, all");
        let newest_two = store
            .list_snapshots(saga, &SnapshotQuery::newest(2))
            .await
            .unwrap();
        assert_eq!(newest_two.items, vec![snaps[2].clone(), snaps[1].clone()]);
        let after_first = store
            .list_snapshots(
                saga,
                &SnapshotQuery {
                    order: Order::Asc,
                    limit: Some(1),
                    after: Some(cursor(&snaps[0])),
                    ..SnapshotQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            after_first.items,
            vec![snaps[1].clone()],
            "a page after a cursor"
        );
        let exported = all_snapshots(&store, saga, SnapshotQuery::all())
            .await
            .unwrap();
        assert_eq!(&exported.items, snaps, "all_snapshots (export)");
    }
    // The batched lookup behind replay plans: each saga's newest snapshot
    // at a step, one statement for all sagas.
    let failed_step = a_snaps[2].step_name.clone();
    let at_step = store
        .latest_snapshots_for_step(&[a.clone(), b.clone()], &failed_step)
        .await
        .unwrap();
    let mut want = vec![a_snaps[2].clone(), b_snaps[2].clone()];
    want.sort_by(|x, y| x.saga_id.cmp(&y.saga_id));
    assert_eq!(at_step.items, want, "latest_snapshots_for_step");
    assert_eq!(
        at_step.items[0].extra["compensated_steps"],
        json!(["charge_payment", "reserve_inventory"])
    );

    // A store opened later, read-only, reads them too.
    let ro = PostgresStore::open(
        &schema_url(store.schema().unwrap()),
        &OpenOptions {
            readonly: true,
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(ro.capabilities().preserves_extra_fields);
    let got = ro.get_snapshot(&a_snaps[2].snapshot_id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&a_snaps[2]));

    // Overwriting without extras drops them, one at a time and batched.
    let mut plain_a = a_snaps[2].clone();
    plain_a.extra.clear();
    store.save_snapshot(&plain_a).await.unwrap();
    let mut plain_b = b_snaps[0].clone();
    plain_b.extra.clear();
    let mut more_b = b_snaps[2].clone();
    more_b.extra.insert("attempt".into(), json!(2));
    store
        .save_snapshots(&[plain_b.clone(), more_b.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.get_snapshot(&plain_a.snapshot_id).await.unwrap(),
        Some(plain_a)
    );
    assert_eq!(
        store.get_snapshot(&plain_b.snapshot_id).await.unwrap(),
        Some(plain_b)
    );
    assert_eq!(
        store.get_snapshot(&more_b.snapshot_id).await.unwrap(),
        Some(more_b)
    );
    assert_eq!(extra_rows(store.pool()).await, 2);

    // sagaz's table is as sagaz made it.
    assert_eq!(sagaz_columns(store.pool()).await, common::SAGAZ_COLUMNS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deletes_take_the_extra_fields_along() {
    let Some(store) = pg_store().await else {
        return;
    };
    let pool = store.pool().clone();
    let a = saga_id();
    // Kept until deleted, but for the one that expires below.
    let snaps: Vec<Snapshot> = [
        replayed(&a, 0, 0),
        replayed(&a, 1, 10),
        failed(&a, 20),
        replayed(&a, 0, 30),
    ]
    .into_iter()
    .map(forever)
    .collect();
    store.save_snapshots(&snaps).await.unwrap();
    let b = saga_id();
    store.save_snapshot(&forever(failed(&b, 0))).await.unwrap();
    assert_eq!(extra_rows(&pool).await, 5);

    // One snapshot.
    assert!(store.delete_snapshot(&snaps[0].snapshot_id).await.unwrap());
    assert_eq!(extra_rows(&pool).await, 4);

    // Replaced by a snapshot of the same saga, step and time (sagaz's
    // unique key) under another id and without extras.
    let mut other = snaps[1].clone();
    other.snapshot_id = uuid::Uuid::new_v4().to_string();
    other.extra.clear();
    store.save_snapshot(&other).await.unwrap();
    assert!(store
        .get_snapshot(&snaps[1].snapshot_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(extra_rows(&pool).await, 3);

    // Expired (gc).
    let mut old = snaps[3].clone();
    old.retention_until = Some(Timestamp::parse("2020-01-01T00:00:00+00:00").unwrap());
    store.save_snapshot(&old).await.unwrap();
    assert_eq!(store.delete_expired(Timestamp::now()).await.unwrap(), 1);
    assert_eq!(extra_rows(&pool).await, 2);

    // The whole saga.
    assert_eq!(store.delete_saga(&a).await.unwrap(), 2);
    assert_eq!(
        extra_rows(&pool).await,
        1,
        "only the other saga's row is left"
    );

    // sagaz's own statements: its upsert, which replaces a row's id, still
    // works with sagascope's table beside it, and its delete takes the
    // extra row along.
    let kept = failed(&b, 0);
    let new_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, context, \
         completed_steps, created_at, retention_until) \
         SELECT $1, saga_id, saga_name, step_name, step_index, status, context, completed_steps, created_at, \
         retention_until FROM saga_snapshots WHERE saga_id = $2::uuid \
         ON CONFLICT (saga_id, step_name, created_at) DO UPDATE SET snapshot_id = EXCLUDED.snapshot_id, \
         status = EXCLUDED.status",
    )
    .bind(new_id)
    .bind(&b)
    .execute(&pool)
    .await
    .expect("sagaz's upsert");
    let moved = store
        .get_snapshot(&new_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.extra, kept.extra, "the extras follow sagaz's row");
    sqlx::query("DELETE FROM saga_snapshots WHERE saga_id = $1::uuid")
        .bind(&b)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(extra_rows(&pool).await, 0);
    assert_eq!(sagaz_columns(&pool).await, common::SAGAZ_COLUMNS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_the_extra_table_opens_read_only_and_gets_it_when_writable() {
    if !backend_available("postgres", PG, tcp_open("127.0.0.1:5432")) {
        return;
    }
    // A database sagaz made: its tables only.
    let schema = format!("x_{}", unique_tag());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .after_connect({
            let schema = schema.clone();
            move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
                    )))
                    .execute(conn)
                    .await
                    .map(drop)
                })
            }
        })
        .connect(PG)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE saga_snapshots (
           snapshot_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
           saga_id UUID NOT NULL, saga_name VARCHAR(255) NOT NULL, step_name VARCHAR(255) NOT NULL,
           step_index INTEGER NOT NULL, status VARCHAR(50) NOT NULL,
           context JSONB NOT NULL, completed_steps JSONB NOT NULL,
           created_at TIMESTAMPTZ DEFAULT NOW(), retention_until TIMESTAMPTZ,
           CONSTRAINT idx_saga_snapshots_saga_id_step UNIQUE (saga_id, step_name, created_at));
         CREATE TABLE saga_replay_log (
           replay_id UUID PRIMARY KEY DEFAULT gen_random_uuid(), original_saga_id UUID NOT NULL,
           new_saga_id UUID NOT NULL, checkpoint_step VARCHAR(255) NOT NULL, context_override JSONB,
           initiated_by VARCHAR(255) NOT NULL, replay_status VARCHAR(50) NOT NULL, error_message TEXT,
           created_at TIMESTAMPTZ DEFAULT NOW(), completed_at TIMESTAMPTZ);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let saga = saga_id();
    let snap_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, context, \
         completed_steps, created_at) VALUES ($1, $2::uuid, 'OrderSaga', 'charge_payment', 1, 'failed', \
         '{\"order_id\": \"o-1\"}'::jsonb, '[\"reserve_inventory\"]'::jsonb, '2026-11-22T01:37:29.601111+00:00')",
    )
    .bind(snap_id)
    .bind(&saga)
    .execute(&pool)
    .await
    .unwrap();

    // Read-only: nothing is created, every read works, without extras.
    let readonly = OpenOptions {
        readonly: true,
        ..OpenOptions::default()
    };
    let ro = PostgresStore::open(&schema_url(&schema), &readonly)
        .await
        .expect("a database without sagascope's tables opens read-only");
    assert!(!ro.capabilities().preserves_extra_fields);
    assert!(!has_extra_table(&pool).await);
    let id = snap_id.to_string();
    let got = ro.get_snapshot(&id).await.unwrap().unwrap();
    assert_eq!(got.context["order_id"], json!("o-1"));
    assert!(got.extra.is_empty());
    assert_eq!(
        ro.latest_snapshot(&saga, None).await.unwrap().as_ref(),
        Some(&got)
    );
    assert_eq!(
        ro.latest_snapshot(&saga, Some("charge_payment"))
            .await
            .unwrap()
            .as_ref(),
        Some(&got)
    );
    assert_eq!(
        ro.snapshot_at(&saga, got.created_at)
            .await
            .unwrap()
            .as_ref(),
        Some(&got)
    );
    let listed = ro
        .list_snapshots(&saga, &SnapshotQuery::newest(5))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![got.clone()]);
    let at_step = ro
        .latest_snapshots_for_step(std::slice::from_ref(&saga), "charge_payment")
        .await
        .unwrap();
    assert_eq!(at_step.items, vec![got.clone()]);

    // Writable: the table is made, sagaz's is left as it was.
    let rw = PostgresStore::open(&schema_url(&schema), &OpenOptions::default())
        .await
        .unwrap();
    assert!(rw.capabilities().preserves_extra_fields);
    assert!(has_extra_table(&pool).await);
    assert_eq!(sagaz_columns(&pool).await, common::SAGAZ_COLUMNS);
    let mut with_error = got.clone();
    with_error
        .extra
        .insert("error".into(), json!("card declined (402)"));
    rw.save_snapshot(&with_error).await.unwrap();
    assert_eq!(rw.get_snapshot(&id).await.unwrap(), Some(with_error));
    // sagaz still reads its row as it wrote it.
    let status: String =
        sqlx::query_scalar("SELECT status FROM saga_snapshots WHERE snapshot_id = $1")
            .bind(snap_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
}
