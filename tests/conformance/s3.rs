//! The S3 store against the local S3-compatible server: a fresh bucket per
//! test; corrupt entries are objects written as sagaz writes them (zstd
//! snapshot object with its metadata, plus an entry in sagaz's index
//! object), damaged. `s3_plain` reuses this with `compression=none`.
#![cfg(feature = "s3")]

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use sagascope::model::Snapshot;
use sagascope::store::codec::{to_json_bytes, JsonStyle};
use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

use crate::cases::{CorruptFixture, Corruption};

#[path = "../common/s3env.rs"]
mod s3env;

/// A store in a fresh bucket; `plain` opens it with `compression=none`
/// (plain JSON objects named `.json`, as sagaz writes without zstd).
pub async fn open(plain: bool) -> Option<(Arc<dyn SnapshotStore>, Client, String)> {
    // A bucket per store: moto 5 lists a bucket by walking all its keys and
    // answers 500 when another request deletes one meanwhile, so tests
    // running side by side stay out of each other's buckets.
    let bucket = format!("sagascope-c-{}", crate::common::unique_tag());
    let client = s3env::client_with_bucket(&bucket).await?;
    let prefix = format!("{bucket}/snapshots/");
    let extra = if plain { "&compression=none" } else { "" };
    let url = s3env::url(&bucket, "snapshots/", extra);
    let store = store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .expect("open s3 store");
    Some((store, client, prefix))
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(open(false).await?.0)
}

/// `bucket_prefix` is `{bucket}/{prefix}`; `plain` writes the snapshot as
/// a plain `.json` object, else zstd in a `.json.zst` one.
pub async fn inject(
    client: &Client,
    bucket_prefix: &str,
    s: &Snapshot,
    kind: Corruption,
    plain: bool,
) -> bool {
    if matches!(kind, Corruption::OtherSagasSnapshot | Corruption::NotAValue) {
        // Snapshot objects are keyed by id alone: there is no "wrong
        // saga's key" to hold another saga's snapshot, nor a non-value.
        return false;
    }
    let (bucket, prefix) = bucket_prefix.split_once('/').unwrap();
    let (body, at) = crate::fs::broken_json(s, kind, JsonStyle::Python);
    client
        .put_object()
        .bucket(bucket)
        .key(if plain {
            format!("{prefix}snapshot/{}.json", s.snapshot_id)
        } else {
            format!("{prefix}snapshot/{}.json.zst", s.snapshot_id)
        })
        .body(ByteStream::from(if plain {
            body
        } else {
            zstd::bulk::compress(&body, 3).unwrap()
        }))
        .metadata("saga_id", &s.saga_id)
        .metadata("created_at", &at)
        .send()
        .await
        .unwrap();
    let index_key = format!("{prefix}index/saga/{}.json", s.saga_id);
    let old = match client
        .get_object()
        .bucket(bucket)
        .key(&index_key)
        .send()
        .await
    {
        Ok(out) => {
            Some(serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap())
        }
        Err(_) => None,
    };
    let index = crate::fs::add_to_index(old, &s.saga_id, &s.snapshot_id, &at);
    client
        .put_object()
        .bucket(bucket)
        .key(index_key)
        .body(ByteStream::from(to_json_bytes(&index, JsonStyle::Python)))
        .send()
        .await
        .unwrap();
    true
}

pub async fn corrupt_fixture_with(plain: bool) -> Option<CorruptFixture> {
    let (store, client, prefix) = open(plain).await?;
    Some(CorruptFixture::new(store, move |s, kind| {
        let client = client.clone();
        let prefix = prefix.clone();
        async move { inject(&client, &prefix, &s, kind, plain).await }
    }))
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    corrupt_fixture_with(false).await
}

conformance_cases!(corrupt = corrupt_fixture);
