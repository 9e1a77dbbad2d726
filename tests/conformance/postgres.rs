//! The suite against PostgreSQL on loopback, one fresh schema per test.

use std::sync::Arc;

use sagascope::store::{open, OpenOptions, SnapshotStore, StoreUrl};

use crate::common::{backend_available, tcp_open, unique_tag};

/// The server the tests use; `SAGASCOPE_TEST_POSTGRES` overrides it.
pub fn base_url() -> String {
    std::env::var("SAGASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    let base = base_url();
    if !backend_available("postgres", &base, tcp_open("127.0.0.1:5432")) {
        return None;
    }
    let url = StoreUrl::new(format!(
        "{base}?schema=conformance_{}&pool_max=4",
        unique_tag()
    ));
    Some(
        open(&url, &OpenOptions::default())
            .await
            .expect("open postgres"),
    )
}

conformance_cases!();
