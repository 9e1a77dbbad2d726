//! Master keys held by AWS KMS, against the local KMS API of the S3 test
//! server (moto, started by `.ci/services/s3.sh`): a key made through the
//! SDK wraps the data keys of a store's encrypted fields; the stored rows
//! hold no plaintext; a store configured with that key reads the values
//! back; a store configured with another KMS key under the same id is told
//! clearly that its key did not wrap them.
#![cfg(feature = "kms")]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use sagascope::compliance::crypto::MasterKey;
use sagascope::compliance::kms::{self, KmsSettings};
use sagascope::compliance::{
    Compliance, ComplianceConfig, ComplianceStore, EncryptionConfig, MasterKeyConfig,
};
use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

use common::*;

fn endpoint() -> String {
    std::env::var("SAGASCOPE_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

/// The KMS client tests use, or `None` (after a SKIP line; a panic in CI)
/// when the server is not answering.
async fn kms_client() -> Option<aws_sdk_kms::Client> {
    let ep = endpoint();
    let host = ep.split_once("://").map_or(ep.as_str(), |(_, r)| r);
    if !backend_available("kms", &ep, tcp_open(host.trim_end_matches('/'))) {
        return None;
    }
    // moto takes any credentials; keep the environment's own if it has them.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    Some(
        kms::client(&KmsSettings {
            key: String::new(),
            region: Some("us-east-1".into()),
            endpoint: Some(ep),
            profile: None,
        })
        .await,
    )
}

async fn create_key(c: &aws_sdk_kms::Client) -> String {
    let out = c
        .create_key()
        .description("sagascope test master key")
        .send()
        .await
        .expect("create a KMS key in the test server");
    out.key_metadata()
        .expect("key metadata")
        .key_id()
        .to_string()
}

fn kms_url(key: &str) -> String {
    format!(
        "kms://{key}?region=us-east-1&endpoint={}",
        url_escape(&endpoint())
    )
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn config(id: &str, url: &str) -> ComplianceConfig {
    let mut keys = BTreeMap::new();
    keys.insert(
        id.to_string(),
        MasterKeyConfig {
            kms: Some(url.to_string()),
            ..MasterKeyConfig::default()
        },
    );
    let mut sensitive = BTreeMap::new();
    sensitive.insert(
        "*".to_string(),
        vec!["customer.email".to_string(), "card.number".to_string()],
    );
    ComplianceConfig {
        sensitive,
        mask: Some(false),
        encryption: EncryptionConfig {
            key: Some(id.to_string()),
            keys,
        },
        ..ComplianceConfig::default()
    }
}

async fn protected(raw: Arc<dyn SnapshotStore>, cfg: &ComplianceConfig) -> ComplianceStore {
    let policy = Compliance::from_config(cfg).await.expect("policy");
    ComplianceStore::new(raw, Arc::new(policy))
}

const EMAIL: &str = "ada.lovelace@example.org";
const CARD: &str = "4111111111111111";

#[tokio::test]
async fn kms_wrapped_fields_are_opaque_at_rest_read_back_with_the_key_and_refuse_another_key() {
    let Some(client) = kms_client().await else {
        return;
    };
    let k1 = create_key(&client).await;
    let k2 = create_key(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kms.db");
    let url = format!("sqlite://{}", db.display());
    let raw = store::open(&StoreUrl::new(&url), &OpenOptions::default())
        .await
        .unwrap();

    let store = protected(raw.clone(), &config("orders", &kms_url(&k1))).await;
    let id = saga_id();
    let mut s = snap(&id, 1, 0);
    s.context
        .insert("customer".into(), json!({"email": EMAIL, "tier": "pro"}));
    s.context
        .insert("card".into(), json!({"number": CARD, "brand": "visa"}));
    let expected = s.context.clone();
    store.save_snapshot(&s).await.unwrap();

    // The row as SQLite holds it: no plaintext, the shape still readable.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (ctx_text, extra_text): (String, Option<String>) = conn
        .query_row(
            "SELECT context, extra FROM saga_snapshots WHERE snapshot_id = ?1",
            [&s.snapshot_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(conn);
    for secret in [EMAIL, CARD, "ada.lovelace"] {
        assert!(
            !ctx_text.contains(secret) && !extra_text.as_deref().unwrap_or("").contains(secret),
            "{secret} stored in clear: {ctx_text}"
        );
    }
    let stored: Value = serde_json::from_str(&ctx_text).unwrap();
    assert_eq!(
        stored["customer"]["tier"], "pro",
        "other fields stay readable"
    );
    assert_eq!(stored["customer"]["email"]["$enc"], "aes-256-gcm");
    let extra: Value = serde_json::from_str(extra_text.as_deref().unwrap()).unwrap();
    let keys = extra["sagascope_keys"]
        .as_object()
        .expect("data keys listed");
    assert!(keys.values().all(|k| k["master"] == "orders"), "{extra}");

    // A new process (no cached data key) with the same KMS key reads it.
    let again = protected(raw.clone(), &config("orders", &kms_url(&k1))).await;
    let back = again.get_snapshot(&s.snapshot_id).await.unwrap().unwrap();
    assert_eq!(back.context, expected);

    // The same id configured with another KMS key: a clear error naming
    // the configured key id and the KMS key, no value, no credentials.
    let wrong = protected(raw.clone(), &config("orders", &kms_url(&k2))).await;
    let err = wrong
        .get_snapshot(&s.snapshot_id)
        .await
        .expect_err("another KMS key must not open the data key")
        .to_string();
    assert!(err.contains("orders"), "{err}");
    assert!(err.contains(&k2), "names the KMS key it tried: {err}");
    assert!(
        err.contains("denied") || err.contains("did not wrap"),
        "says what failed: {err}"
    );
    assert!(
        !err.contains(EMAIL) && !err.contains(CARD) && !err.contains("secret"),
        "no value, no credentials: {err}"
    );
}

#[tokio::test]
async fn a_kms_key_wraps_and_unwraps_a_data_key_bound_to_its_id() {
    let Some(client) = kms_client().await else {
        return;
    };
    let k = create_key(&client).await;
    let key = kms::connect("main", &kms_url(&k)).await.unwrap();
    assert_eq!(key.id(), "main");
    let dek = [7u8; 32];
    let wrapped = key.wrap(&dek, "dk-0011223344556677").await.unwrap();
    assert!(
        !wrapped.windows(32).any(|w| w == dek),
        "the data key is not in the blob"
    );
    assert_eq!(
        key.unwrap(&wrapped, "dk-0011223344556677").await.unwrap(),
        dek
    );
    // Bound to the data key id (the encryption context): another id fails.
    let err = key
        .unwrap(&wrapped, "dk-ffffffffffffffff")
        .await
        .expect_err("another data key id must not open it")
        .to_string();
    assert!(
        err.contains("main") && err.contains("dk-ffffffffffffffff"),
        "{err}"
    );
    // Debug shows where the key is, never more.
    let dbg = format!("{key:?}");
    assert!(dbg.contains(&k) && !dbg.contains("Client"), "{dbg}");
}

#[tokio::test]
async fn a_kms_key_that_does_not_exist_or_cannot_be_reached_says_so_naming_it() {
    let Some(client) = kms_client().await else {
        return;
    };
    drop(client);
    let missing = "11111111-2222-3333-4444-555555555555";
    let key = kms::connect("gone", &kms_url(missing)).await.unwrap();
    let err = key
        .wrap(&[1u8; 32], "dk-0000000000000001")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("gone") && err.contains(missing), "{err}");
    assert!(err.contains("not found"), "{err}");

    let port = free_port();
    let url = format!(
        "kms://{missing}?region=us-east-1&endpoint={}",
        url_escape(&format!("http://127.0.0.1:{port}"))
    );
    let key = kms::connect("offline", &url).await.unwrap();
    let err = key
        .wrap(&[1u8; 32], "dk-0000000000000001")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("offline") && err.contains("unreachable"),
        "{err}"
    );
}
