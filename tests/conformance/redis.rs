//! The suite against one Redis server on loopback, one fresh key prefix per
//! test.

use std::sync::Arc;

use sagascope::store::{open, OpenOptions, SnapshotStore, StoreUrl};

use sagascope::store::codec::JsonStyle;

use crate::cases::{CorruptFixture, Corruption};
use crate::common::{backend_available, tcp_open, unique_tag};

/// The server the tests use; `SAGASCOPE_TEST_REDIS` overrides it.
pub fn base_url() -> String {
    std::env::var("SAGASCOPE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(open_with_prefix().await?.0)
}

async fn open_with_prefix() -> Option<(Arc<dyn SnapshotStore>, String)> {
    let base = base_url();
    if !backend_available("redis", &base, tcp_open("127.0.0.1:6379")) {
        return None;
    }
    let prefix = format!("conformance:{}:", unique_tag());
    let url = StoreUrl::new(format!("{base}/?prefix={prefix}"));
    Some((
        open(&url, &OpenOptions::default())
            .await
            .expect("open redis"),
        prefix,
    ))
}

/// A raw connection to the server (or cluster) behind a store, for writing
/// behind its back.
#[derive(Clone)]
pub enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn q<T: redis::FromRedisValue>(&self, c: &redis::Cmd) -> T {
        match self.clone() {
            Raw::Single(mut x) => c.query_async(&mut x).await.unwrap(),
            Raw::Cluster(mut x) => c.query_async(&mut x).await.unwrap(),
        }
    }
}

/// Saves the snapshot through the store (so every index holds it), then
/// overwrites its value behind the store's back, as another program or a
/// bad restore might.
pub fn fixture(store: Arc<dyn SnapshotStore>, raw: Raw, prefix: String) -> CorruptFixture {
    let writer = store.clone();
    CorruptFixture::new(store, move |s, kind| {
        let (raw, prefix, writer) = (raw.clone(), prefix.clone(), writer.clone());
        async move {
            writer.save_snapshot(&s).await.unwrap();
            let key = format!("{prefix}{}", s.snapshot_id);
            raw.q::<i64>(redis::cmd("DEL").arg(&key)).await;
            if kind == Corruption::NotAValue {
                raw.q::<i64>(redis::cmd("HSET").arg(&key).arg("not").arg("a snapshot"))
                    .await;
                return true;
            }
            let (body, _) = crate::fs::broken_json(&s, kind, JsonStyle::Python);
            raw.q::<()>(redis::cmd("SET").arg(&key).arg(body)).await;
            true
        }
    })
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let (store, prefix) = open_with_prefix().await?;
    let client = redis::Client::open(base_url()).expect("redis client");
    let con = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    Some(fixture(store, Raw::Single(con), prefix))
}

conformance_cases!(corrupt = corrupt_fixture);
