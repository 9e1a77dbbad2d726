//! The suite against PostgreSQL on loopback, one fresh schema per test.

use std::sync::Arc;

use sagascope::store::{open, OpenOptions, SnapshotStore, StoreUrl};

use crate::cases::{CorruptFixture, Corruption};
use crate::common::{backend_available, tcp_open, unique_tag};

/// The server the tests use; `SAGASCOPE_TEST_POSTGRES` overrides it.
pub fn base_url() -> String {
    std::env::var("SAGASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(open_in_schema().await?.0)
}

async fn open_in_schema() -> Option<(Arc<dyn SnapshotStore>, String)> {
    let base = base_url();
    if !backend_available("postgres", &base, tcp_open("127.0.0.1:5432")) {
        return None;
    }
    let schema = format!("conformance_{}", unique_tag());
    let url = StoreUrl::new(format!("{base}?schema={schema}&pool_max=4"));
    Some((
        open(&url, &OpenOptions::default())
            .await
            .expect("open postgres"),
        schema,
    ))
}

/// Rows written with raw SQL, as another program might. Typed columns
/// (UUID, JSONB, integer, timestamptz) can hold only one kind of damage:
/// a context that is valid JSON but not an object.
pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let (store, schema) = open_in_schema().await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&base_url())
        .await
        .expect("raw postgres pool");
    let writer = store.clone();
    Some(CorruptFixture::new(store, move |s, kind| {
        let (pool, schema, writer) = (pool.clone(), schema.clone(), writer.clone());
        async move {
            if kind != Corruption::ContextNotObject {
                return false;
            }
            writer.save_snapshot(&s).await.unwrap();
            let sql = format!(
                "UPDATE \"{schema}\".saga_snapshots SET context = '[1, 2, 3]'::jsonb \
                 WHERE snapshot_id = $1::uuid"
            );
            let n = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&s.snapshot_id)
                .execute(&pool)
                .await
                .expect("raw update")
                .rows_affected();
            assert_eq!(n, 1, "the damaged row was written");
            true
        }
    }))
}

conformance_cases!(corrupt = corrupt_fixture);
