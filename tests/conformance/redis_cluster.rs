//! The suite against a 3-master Redis Cluster on 127.0.0.1:7000-7002
//! (`.ci/services/redis-cluster.sh`), one fresh key prefix per test. A
//! saga's keys land on different nodes, which is the point. Corrupt entries
//! as in `redis`, written through a cluster connection.

use std::sync::Arc;

use sagascope::store::{open, OpenOptions, SnapshotStore, StoreUrl};

use crate::cases::CorruptFixture;
use crate::common::{backend_available, tcp_open, unique_tag};
use crate::redis::Raw;

/// The cluster the tests use; `SAGASCOPE_TEST_REDIS_CLUSTER` overrides it.
pub fn base_url() -> String {
    std::env::var("SAGASCOPE_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(open_with_prefix().await?.0)
}

async fn open_with_prefix() -> Option<(Arc<dyn SnapshotStore>, String)> {
    let base = base_url();
    if !backend_available("redis-cluster", &base, tcp_open("127.0.0.1:7000")) {
        return None;
    }
    let prefix = format!("conformance:{}:", unique_tag());
    let url = StoreUrl::new(format!("{base}/?prefix={prefix}"));
    Some((
        open(&url, &OpenOptions::default())
            .await
            .expect("open redis cluster"),
        prefix,
    ))
}

/// The cluster's nodes as plain `redis://` URLs.
fn node_urls() -> Vec<String> {
    let base = base_url();
    let hosts = base.split_once("://").map_or(base.as_str(), |(_, h)| h);
    hosts
        .trim_end_matches('/')
        .split(',')
        .map(|h| format!("redis://{h}"))
        .collect()
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let (store, prefix) = open_with_prefix().await?;
    let client = redis::cluster::ClusterClient::new(node_urls()).expect("cluster client");
    let con = client
        .get_async_connection()
        .await
        .expect("cluster connection");
    Some(crate::redis::fixture(store, Raw::Cluster(con), prefix))
}

conformance_cases!(corrupt = corrupt_fixture);
