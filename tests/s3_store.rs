//! The S3 store against a real S3-compatible server (moto, started by
//! `.ci/services/s3.sh`): the exact objects sagaz would write, reading a
//! bucket sagaz laid out, corrupt objects, and eight concurrent writers.
#![cfg(feature = "s3")]

mod common;
#[path = "common/replays.rs"]
mod replays;
#[path = "common/s3env.rs"]
mod s3env;
#[path = "common/sagaz_text.rs"]
mod sagaz_text;

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde_json::Value;

use sagascope::model::{SagaStatus, Timestamp};
use sagascope::store::codec::{to_json_bytes, Codec, JsonStyle};
use sagascope::store::{
    self, OpenOptions, SagaFilter, SagaPageRequest, SnapshotQuery, SnapshotStore, StoreError,
    StoreUrl,
};

use common::*;
use sagaz_text::*;

const BUCKET: &str = "sagascope-s3-store";

/// A client and a fresh prefix in the test bucket, or `None` when the
/// server is not running outside CI.
async fn setup() -> Option<(Client, String)> {
    let client = s3env::client_with_bucket(BUCKET).await?;
    Some((client, format!("t-{}/", unique_tag())))
}

async fn open(prefix: &str, extra: &str) -> Arc<dyn SnapshotStore> {
    store::open(
        &StoreUrl::new(s3env::url(BUCKET, prefix, extra)),
        &OpenOptions::default(),
    )
    .await
    .unwrap()
}

async fn get(client: &Client, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn put(client: &Client, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

async fn keys(client: &Client, prefix: &str) -> Vec<String> {
    let mut pages = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut out = vec![];
    while let Some(p) = pages.next().await {
        out.extend(
            p.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    out
}

fn unzstd(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
    zstd::decode_all(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_sagaz_objects_exactly() {
    let Some((client, prefix)) = setup().await else {
        return;
    };
    let store = open(&prefix, "").await;
    let saga = saga_id();
    let a = snap(&saga, 0, 0);
    let mut b = snap(&saga, 1, 1_500);
    // sagaz itself cannot store this step (non-ASCII S3 metadata).
    b.step_name = "transform_données".into();
    store.save_snapshot(&a).await.unwrap();
    store.save_snapshot(&b).await.unwrap();

    let sagaz_keys: Vec<String> = keys(&client, &prefix)
        .await
        .into_iter()
        .filter(|k| !k.starts_with(&format!("{prefix}sagascope/")))
        .collect();
    let mut want = vec![
        format!("{prefix}index/saga/{saga}.json"),
        format!("{prefix}snapshot/{}.json.zst", a.snapshot_id),
        format!("{prefix}snapshot/{}.json.zst", b.snapshot_id),
    ];
    want.sort();
    assert_eq!(sagaz_keys, want);

    let key = format!("{prefix}snapshot/{}.json.zst", b.snapshot_id);
    let body = unzstd(&get(&client, &key).await);
    assert_eq!(body, to_json_bytes(&b.to_json(), JsonStyle::Python));
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("\"step_name\": \"transform_donn\\u00e9es\""));
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("saga_id").map(String::as_str), Some(saga.as_str()));
    assert_eq!(meta.get("saga_name").map(String::as_str), Some("OrderSaga"));
    assert_eq!(
        meta.get("step_name").map(String::as_str),
        Some("transform_donn%C3%A9es")
    );
    assert_eq!(meta.get("created_at"), Some(&b.created_at.to_isoformat()));
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    let expires = head.expires_string().unwrap_or_default();
    assert!(
        expires.contains("Mar 2026"),
        "Expires from retention_until: {expires:?}"
    );

    let index_key = format!("{prefix}index/saga/{saga}.json");
    let index = String::from_utf8(get(&client, &index_key).await).unwrap();
    let want = index_json(
        &saga,
        &[
            (&b.snapshot_id, &b.created_at.to_isoformat()),
            (&a.snapshot_id, &a.created_at.to_isoformat()),
        ],
        false,
    );
    assert_eq!(index, want, "sagaz's index: plain json.dumps, newest first");
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(&index_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));

    let r = replays::replay(&saga, 5);
    store.save_replay(&r).await.unwrap();
    let raw = get(&client, &format!("{prefix}replay/{}.json", r.replay_id)).await;
    assert_eq!(
        unzstd(&raw),
        to_json_bytes(&r.to_json(), JsonStyle::Python),
        "zstd inside a .json name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_none_writes_plain_json_objects() {
    let Some((client, prefix)) = setup().await else {
        return;
    };
    let store = open(&prefix, "&compression=none&sse=none").await;
    let s = snap(&saga_id(), 0, 0);
    store.save_snapshot(&s).await.unwrap();
    let key = format!("{prefix}snapshot/{}.json", s.snapshot_id);
    assert_eq!(
        get(&client, &key).await,
        to_json_bytes(&s.to_json(), JsonStyle::Python)
    );
    let head = client
        .head_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert!(head.server_side_encryption().is_none());
    // A zstd store reads it.
    assert_eq!(
        open(&prefix, "")
            .await
            .get_snapshot(&s.snapshot_id)
            .await
            .unwrap()
            .unwrap(),
        s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_bucket_sagaz_laid_out() {
    let Some((client, prefix)) = setup().await else {
        return;
    };
    let saga = saga_id();
    let snaps = [
        SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "reserve_inventory",
            step_index: 0,
            status: "executing",
            created_at: "2026-11-22T01:37:29+00:00",
        },
        SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "charge_payment",
            step_index: 1,
            status: "executing",
            created_at: "2026-11-22T01:37:29.601111+00:00",
        },
        SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "__completed__",
            step_index: 2,
            status: "completed",
            created_at: "2026-11-22T01:37:30.000002+00:00",
        },
    ];
    // Two compressed objects and one from a sagaz run with compression off.
    for (i, s) in snaps.iter().enumerate() {
        let text = snapshot_json(s, false);
        let (key, body) = if i == 1 {
            (
                format!("{prefix}snapshot/{}.json", s.snapshot_id),
                text.into_bytes(),
            )
        } else {
            (
                format!("{prefix}snapshot/{}.json.zst", s.snapshot_id),
                zstd(text.as_bytes()),
            )
        };
        put(&client, &key, body).await;
    }
    let newest_first: Vec<(&str, &str)> = snaps
        .iter()
        .rev()
        .map(|s| (s.snapshot_id.as_str(), s.created_at))
        .collect();
    put(
        &client,
        &format!("{prefix}index/saga/{saga}.json"),
        index_json(&saga, &newest_first, false).into_bytes(),
    )
    .await;
    let replay_id = uuid::Uuid::new_v4().to_string();
    let other_replay = uuid::Uuid::new_v4().to_string();
    put(
        &client,
        &format!("{prefix}replay/{replay_id}.json"),
        zstd(replay_json(&replay_id, &saga, &saga_id(), false).as_bytes()),
    )
    .await;
    put(
        &client,
        &format!("{prefix}replay/{other_replay}.json"),
        replay_json(&other_replay, &saga_id(), &saga_id(), false).into_bytes(),
    )
    .await;

    let store = open(&prefix, "").await;
    let listed = store
        .list_snapshots(&saga, &SnapshotQuery::newest(10))
        .await
        .unwrap();
    assert!(listed.bad.is_empty(), "{:?}", listed.bad);
    let ids: Vec<_> = listed
        .items
        .iter()
        .map(|s| s.snapshot_id.as_str())
        .collect();
    let want: Vec<_> = snaps.iter().rev().map(|s| s.snapshot_id.as_str()).collect();
    assert_eq!(ids, want);
    assert_eq!(listed.items[0].context["note"], "café");
    assert_eq!(
        store
            .get_snapshot(&snaps[1].snapshot_id)
            .await
            .unwrap()
            .unwrap()
            .step_name,
        "charge_payment"
    );
    let at = Timestamp::parse("2026-11-22T01:37:29.9+00:00").unwrap();
    assert_eq!(
        store
            .snapshot_at(&saga, at)
            .await
            .unwrap()
            .unwrap()
            .snapshot_id,
        snaps[1].snapshot_id
    );
    let page = store
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.sagas.len(), 1);
    assert_eq!(page.sagas[0].snapshot_count, 3);
    assert_eq!(page.sagas[0].latest_status, SagaStatus::Completed);
    let replays = store.list_replays(&saga, None).await.unwrap();
    assert!(replays.bad.is_empty());
    let got: Vec<_> = replays.items.iter().map(|r| r.replay_id.as_str()).collect();
    assert_eq!(got, vec![replay_id.as_str()]);

    // sagascope writing into sagaz's saga keeps sagaz's entries in sagaz's
    // index and adds its own.
    let mine = snap(&saga, 3, 0);
    let mut mine = mine;
    mine.created_at = Timestamp::parse("2026-11-22T02:00:00+00:00").unwrap();
    store.save_snapshot(&mine).await.unwrap();
    let index: Value =
        serde_json::from_slice(&get(&client, &format!("{prefix}index/saga/{saga}.json")).await)
            .unwrap();
    let in_index: Vec<&str> = index["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["snapshot_id"].as_str().unwrap())
        .collect();
    assert_eq!(in_index[0], mine.snapshot_id);
    assert_eq!(in_index.len(), 4);
    assert_eq!(store.count_snapshots(&saga).await.unwrap(), 4);
    assert_eq!(common::summary_count(&*store, &saga).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_object_is_named_and_the_rest_lists() {
    let Some((client, prefix)) = setup().await else {
        return;
    };
    let store = open(&prefix, "").await;
    let saga = saga_id();
    let snaps: Vec<_> = (0..3).map(|i| snap(&saga, i, i * 10)).collect();
    store.save_snapshots(&snaps).await.unwrap();
    // A truncated zstd frame.
    let good = Codec::new(
        sagascope::store::codec::Compression::zstd(),
        JsonStyle::Python,
    )
    .encode(&snaps[1].to_json());
    put(
        &client,
        &format!("{prefix}snapshot/{}.json.zst", snaps[1].snapshot_id),
        good[..good.len() / 2].to_vec(),
    )
    .await;
    let listed = store
        .list_snapshots(&saga, &SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(listed.items, vec![snaps[0].clone(), snaps[2].clone()]);
    assert_eq!(listed.bad.len(), 1);
    assert!(
        listed.bad[0].key.contains(&snaps[1].snapshot_id),
        "{:?}",
        listed.bad
    );
    assert!(listed.bad[0].error.contains("zstd"), "{:?}", listed.bad);
    assert!(matches!(
        store.get_snapshot(&snaps[1].snapshot_id).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(store.count_sagas(&SagaFilter::default()).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_writers_each_with_its_own_client() {
    let Some((client, prefix)) = setup().await else {
        return;
    };
    let saga = saga_id();
    const WRITERS: i64 = 8;
    const PER_WRITER: i64 = 8;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|n| {
            let saga = saga.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move {
                // Its own store, so its own SDK client and connections.
                let store = open(&prefix, "").await;
                for i in 0..PER_WRITER {
                    let mut s = snap(&saga, i, n * 1_000 + i);
                    s.context.insert("writer".into(), n.into());
                    store.save_snapshot(&s).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let store = open(&prefix, "").await;
    let total = (WRITERS * PER_WRITER) as usize;
    let listed = store
        .list_snapshots(&saga, &SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(
        listed.items.len(),
        total,
        "sagascope's index has every snapshot"
    );
    assert_eq!(
        store
            .saga_summary(&saga)
            .await
            .unwrap()
            .unwrap()
            .snapshot_count,
        total as u64
    );
    let index: Value =
        serde_json::from_slice(&get(&client, &format!("{prefix}index/saga/{saga}.json")).await)
            .unwrap();
    let mut in_index: Vec<&str> = index["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["snapshot_id"].as_str().unwrap())
        .collect();
    in_index.sort();
    let mut want: Vec<&str> = listed
        .items
        .iter()
        .map(|s| s.snapshot_id.as_str())
        .collect();
    want.sort();
    assert_eq!(in_index, want, "sagaz's index has every snapshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_says_so() {
    if setup().await.is_none() {
        return;
    }
    let url = s3env::url(&format!("no-such-bucket-{}", unique_tag()), "p/", "");
    let err = store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
