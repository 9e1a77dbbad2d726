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

/// Saves the snapshot through the store (so every index holds it), then
/// overwrites its value behind the store's back, as another program or a
/// bad restore might.
pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let (store, prefix) = open_with_prefix().await?;
    let client = redis::Client::open(base_url()).expect("redis client");
    let writer = store.clone();
    Some(CorruptFixture::new(store, move |s, kind| {
        let (client, prefix, writer) = (client.clone(), prefix.clone(), writer.clone());
        async move {
            writer.save_snapshot(&s).await.unwrap();
            let key = format!("{prefix}{}", s.snapshot_id);
            let mut con = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection");
            let mut del = redis::cmd("DEL");
            del.arg(&key);
            let _: i64 = del.query_async(&mut con).await.unwrap();
            if kind == Corruption::NotAValue {
                let mut h = redis::cmd("HSET");
                h.arg(&key).arg("not").arg("a snapshot");
                let _: i64 = h.query_async(&mut con).await.unwrap();
                return true;
            }
            let (body, _) = crate::fs::broken_json(&s, kind, JsonStyle::Python);
            let mut set = redis::cmd("SET");
            set.arg(&key).arg(body);
            let _: () = set.query_async(&mut con).await.unwrap();
            true
        }
    }))
}

conformance_cases!(corrupt = corrupt_fixture);
