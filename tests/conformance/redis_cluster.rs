//! The suite against a 3-master Redis Cluster on 127.0.0.1:7000-7002
//! (`.ci/services/redis-cluster.sh`), one fresh key prefix per test. A
//! saga's keys land on different nodes, which is the point.

use std::sync::Arc;

use sagascope::store::{open, OpenOptions, SnapshotStore, StoreUrl};

use crate::common::{backend_available, tcp_open, unique_tag};

/// The cluster the tests use; `SAGASCOPE_TEST_REDIS_CLUSTER` overrides it.
pub fn base_url() -> String {
    std::env::var("SAGASCOPE_TEST_REDIS_CLUSTER")
        .unwrap_or_else(|_| "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002".into())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    let base = base_url();
    if !backend_available("redis-cluster", &base, tcp_open("127.0.0.1:7000")) {
        return None;
    }
    let url = StoreUrl::new(format!("{base}/?prefix=conformance:{}:", unique_tag()));
    Some(
        open(&url, &OpenOptions::default())
            .await
            .expect("open redis cluster"),
    )
}

conformance_cases!();
