//! The suite against one Redis server on loopback, one fresh key prefix per
//! test.

use std::sync::Arc;

use sagascope::store::{open, OpenOptions, SnapshotStore, StoreUrl};

use crate::common::{backend_available, tcp_open, unique_tag};

/// The server the tests use; `SAGASCOPE_TEST_REDIS` overrides it.
pub fn base_url() -> String {
    std::env::var("SAGASCOPE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    let base = base_url();
    if !backend_available("redis", &base, tcp_open("127.0.0.1:6379")) {
        return None;
    }
    let url = StoreUrl::new(format!("{base}/?prefix=conformance:{}:", unique_tag()));
    Some(
        open(&url, &OpenOptions::default())
            .await
            .expect("open redis"),
    )
}

conformance_cases!();
