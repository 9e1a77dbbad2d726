#![cfg(feature = "s3")]

use std::sync::Arc;

use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

#[path = "../common/s3env.rs"]
mod s3env;

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    const BUCKET: &str = "sagascope-conformance";
    s3env::client_with_bucket(BUCKET).await?;
    // A fresh prefix per store: tests share the bucket and the server.
    let url = s3env::url(BUCKET, &format!("{}/", crate::common::unique_tag()), "");
    let store = store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .expect("open s3 store");
    Some(store)
}

conformance_cases!();
