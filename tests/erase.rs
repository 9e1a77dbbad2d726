//! Erasure of a data subject on every backend: a subject planted in
//! several sagas (and in a replay log's override) among other sagas is
//! erased, then the RAW stored bytes, read with the backend's own client
//! (decompressed as stored), hold no trace of the subject's value or their
//! other personal fields, while every entry of the other sagas is byte for
//! byte what it was. A dry run changes nothing; a held saga stays and is
//! named; delete mode removes the sagas and their replay logs.
//!
//! This file is one cohesive thing, long because it is whole: one scenario on six
//! backends (plain and encrypted), each with the reader of its raw bytes,
//! then the command line and sagaz reading the erased store.
//!
//! Servers as the conformance suite finds them: PostgreSQL and Redis on
//! loopback, S3 through the local moto server; missing servers skip, and
//! fail under `CI=true`.

#[path = "common/mod.rs"]
mod common;
#[cfg(feature = "s3")]
#[path = "common/s3env.rs"]
mod s3env;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};

use sagascope::compliance::erase::{self, EraseMode, EraseOptions, Subject};
use sagascope::compliance::{
    audit, hold, Compliance, ComplianceConfig, ComplianceStore, EncryptionConfig, MasterKeyConfig,
};
use sagascope::model::{ReplayLog, ReplayStatus, SagaStatus, Snapshot};
use sagascope::store::codec::{sniff, Codec, JsonStyle};
use sagascope::store::{self, OpenOptions, SnapshotQuery, SnapshotStore, StoreUrl};

use common::{backend_available, ctx, t0, tcp_open, unique_tag};

/// Every stored entry as (where, decompressed bytes): rows, keys, objects
/// or files, as the backend's own client sees them.
type Dump = Vec<(String, Vec<u8>)>;

/// How to read a backend's raw bytes.
enum Raw {
    /// No bytes of its own: everything the store API lists, as JSON.
    Memory,
    Sqlite(PathBuf),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool, String),
    #[cfg(feature = "redis")]
    Redis(redis::aio::MultiplexedConnection, String),
    #[cfg(feature = "s3")]
    S3(aws_sdk_s3::Client, String),
    Folder(PathBuf),
}

struct Backend {
    name: &'static str,
    store: Arc<dyn SnapshotStore>,
    raw: Raw,
}

fn decompress(raw: &[u8]) -> Vec<u8> {
    Codec::new(sniff(raw), JsonStyle::Python)
        .decompress(raw)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| raw.to_vec())
}

async fn memory() -> Option<Backend> {
    Some(Backend {
        name: "memory",
        store: Arc::new(store::memory::MemoryStore::new()),
        raw: Raw::Memory,
    })
}

async fn sqlite() -> Option<Backend> {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let path = dir.path().join("erase.db");
    let url = StoreUrl::new(format!("sqlite://{}", path.display()));
    Some(Backend {
        name: "sqlite",
        store: store::open(&url, &OpenOptions::default()).await.unwrap(),
        raw: Raw::Sqlite(path),
    })
}

#[cfg(feature = "postgres")]
async fn postgres() -> Option<Backend> {
    let base = std::env::var("SAGASCOPE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if !backend_available("postgres", &base, tcp_open("127.0.0.1:5432")) {
        return None;
    }
    let schema = format!("erase_{}", unique_tag());
    let url = StoreUrl::new(format!("{base}?schema={schema}&pool_max=4"));
    let store = store::open(&url, &OpenOptions::default()).await.unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&base)
        .await
        .unwrap();
    Some(Backend {
        name: "postgres",
        store,
        raw: Raw::Postgres(pool, schema),
    })
}

#[cfg(feature = "redis")]
async fn redis_store() -> Option<Backend> {
    let base =
        std::env::var("SAGASCOPE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if !backend_available("redis", &base, tcp_open("127.0.0.1:6379")) {
        return None;
    }
    let prefix = format!("erase:{}:", unique_tag());
    let url = StoreUrl::new(format!("{base}/?prefix={prefix}"));
    let store = store::open(&url, &OpenOptions::default()).await.unwrap();
    let con = redis::Client::open(base)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Some(Backend {
        name: "redis",
        store,
        raw: Raw::Redis(con, prefix),
    })
}

#[cfg(feature = "s3")]
async fn s3() -> Option<Backend> {
    let bucket = format!("sagascope-erase-{}", unique_tag());
    let client = s3env::client_with_bucket(&bucket).await?;
    let url = s3env::url(&bucket, "snapshots/", "");
    let store = store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap();
    Some(Backend {
        name: "s3",
        store,
        raw: Raw::S3(client, bucket),
    })
}

async fn folder() -> Option<Backend> {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let url = StoreUrl::new(format!("file://{}?compression=gzip", dir.path().display()));
    Some(Backend {
        name: "file",
        store: store::open(&url, &OpenOptions::default()).await.unwrap(),
        raw: Raw::Folder(dir.path().to_path_buf()),
    })
}

impl Backend {
    async fn dump(&self) -> Dump {
        let mut out = Dump::new();
        match &self.raw {
            Raw::Memory => {
                let s = &self.store;
                let page = s
                    .list_sagas(
                        &Default::default(),
                        &store::SagaPageRequest {
                            limit: 10_000,
                            after: None,
                        },
                    )
                    .await
                    .unwrap();
                for saga in page.sagas {
                    let snaps =
                        store::all_snapshots(s.as_ref(), &saga.saga_id, SnapshotQuery::all())
                            .await
                            .unwrap();
                    for sn in snaps.items {
                        out.push((
                            format!("snapshot {}", sn.snapshot_id),
                            serde_json::to_vec(&sn.to_json()).unwrap(),
                        ));
                    }
                    for r in s.list_replays(&saga.saga_id, None).await.unwrap().items {
                        out.push((
                            format!("replay {}", r.replay_id),
                            serde_json::to_vec(&r.to_json()).unwrap(),
                        ));
                    }
                }
                for kind in [audit::KIND, hold::KIND] {
                    for (k, v) in s.list_meta(kind, None, 10_000).await.unwrap() {
                        out.push((format!("{kind} {k}"), serde_json::to_vec(&v).unwrap()));
                    }
                }
            }
            Raw::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                let tables: Vec<String> = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                for t in tables {
                    let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                    let n = st.column_count();
                    let mut rows = st.query([]).unwrap();
                    while let Some(row) = rows.next().unwrap() {
                        let mut bytes = Vec::new();
                        for i in 0..n {
                            use rusqlite::types::ValueRef;
                            match row.get_ref(i).unwrap() {
                                ValueRef::Null => bytes.extend_from_slice(b"NULL"),
                                ValueRef::Integer(v) => bytes.extend(v.to_string().bytes()),
                                ValueRef::Real(v) => bytes.extend(v.to_string().bytes()),
                                ValueRef::Text(v) => bytes.extend(decompress(v)),
                                ValueRef::Blob(v) => bytes.extend(decompress(v)),
                            }
                            bytes.push(0x1f);
                        }
                        out.push((format!("table {t}"), bytes));
                    }
                }
            }
            #[cfg(feature = "postgres")]
            Raw::Postgres(pool, schema) => {
                let tables: Vec<(String,)> = sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                )
                .bind(schema)
                .fetch_all(pool)
                .await
                .unwrap();
                for (t,) in tables {
                    let sql = format!("SELECT t::text FROM \"{schema}\".\"{t}\" t");
                    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                    for (r,) in rows {
                        out.push((format!("table {t}"), r.into_bytes()));
                    }
                }
            }
            #[cfg(feature = "redis")]
            Raw::Redis(con, prefix) => {
                let mut con = con.clone();
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query_async(&mut con)
                    .await
                    .unwrap();
                for k in keys {
                    let ty: String = redis::cmd("TYPE")
                        .arg(&k)
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    let parts: Vec<Vec<u8>> = match ty.as_str() {
                        "string" => vec![redis::cmd("GET")
                            .arg(&k)
                            .query_async(&mut con)
                            .await
                            .unwrap()],
                        "hash" => redis::cmd("HGETALL")
                            .arg(&k)
                            .query_async(&mut con)
                            .await
                            .unwrap(),
                        "zset" => redis::cmd("ZRANGE")
                            .arg(&k)
                            .arg(0)
                            .arg(-1)
                            .arg("WITHSCORES")
                            .query_async(&mut con)
                            .await
                            .unwrap(),
                        "set" => redis::cmd("SMEMBERS")
                            .arg(&k)
                            .query_async(&mut con)
                            .await
                            .unwrap(),
                        "list" => redis::cmd("LRANGE")
                            .arg(&k)
                            .arg(0)
                            .arg(-1)
                            .query_async(&mut con)
                            .await
                            .unwrap(),
                        other => panic!("redis key {k} of type {other}"),
                    };
                    let mut bytes = Vec::new();
                    for p in parts {
                        bytes.extend(decompress(&p));
                        bytes.push(0x1f);
                    }
                    out.push((format!("key {k}"), bytes));
                }
            }
            #[cfg(feature = "s3")]
            Raw::S3(client, bucket) => {
                let mut token = None;
                loop {
                    let page = client
                        .list_objects_v2()
                        .bucket(bucket)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .unwrap();
                    for o in page.contents() {
                        let key = o.key().unwrap().to_string();
                        let got = client
                            .get_object()
                            .bucket(bucket)
                            .key(&key)
                            .send()
                            .await
                            .unwrap();
                        let mut meta: Vec<String> = got
                            .metadata()
                            .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                            .unwrap_or_default();
                        meta.sort();
                        let body = got.body.collect().await.unwrap().into_bytes();
                        let mut bytes = decompress(&body);
                        bytes.extend(meta.join("\n").into_bytes());
                        out.push((format!("object {key}"), bytes));
                    }
                    token = page.next_continuation_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
            }
            Raw::Folder(dir) => {
                let mut stack = vec![dir.clone()];
                while let Some(d) = stack.pop() {
                    for e in std::fs::read_dir(&d).unwrap().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            stack.push(p);
                        } else {
                            let bytes = decompress(&std::fs::read(&p).unwrap());
                            out.push((format!("file {}", p.display()), bytes));
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    memchr::memmem::find(hay, needle.as_bytes()).is_some()
}

/// Entries that mention one of `ids` and none of `except`.
fn entries_of(dump: &Dump, ids: &[String], except: &[String]) -> BTreeSet<(String, Vec<u8>)> {
    dump.iter()
        .filter(|(k, b)| {
            let mentions = |id: &String| k.contains(id.as_str()) || contains(b, id);
            ids.iter().any(mentions) && !except.iter().any(mentions)
        })
        .cloned()
        .collect()
}

/// Two sets of entries are equal; else the entries that differ, by name.
fn same(a: &BTreeSet<(String, Vec<u8>)>, b: &BTreeSet<(String, Vec<u8>)>, what: &str) {
    let only = |x: &BTreeSet<(String, Vec<u8>)>, y: &BTreeSet<(String, Vec<u8>)>| {
        x.difference(y)
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
    };
    assert!(
        a == b,
        "{what}\nonly before: {:#?}\nonly after: {:#?}",
        only(a, b),
        only(b, a)
    );
}

/// One person's data, unique to the test.
struct Person {
    id: String,
    email: String,
    name: String,
    card: String,
    street: String,
}

impl Person {
    fn new(tag: &str, who: &str) -> Person {
        Person {
            id: format!("C-{who}-{tag}"),
            email: format!("{who}.{tag}@example.com"),
            name: format!("{who} Person{tag}"),
            card: format!("tok_{who}_{tag}"),
            street: format!("{tag} {who} Street"),
        }
    }

    fn personal(&self) -> [&str; 5] {
        [&self.id, &self.email, &self.name, &self.card, &self.street]
    }

    fn context(&self, saga: &str, i: i64) -> serde_json::Map<String, Value> {
        ctx(json!({
            "order_id": format!("order-{saga}"),
            "customer": {"id": self.id, "email": self.email, "name": self.name},
            "card": {"token": self.card, "brand": "visa"},
            "shipping_address": {"street": self.street, "city": "Lyon"},
            "amount": 100 + i,
        }))
    }
}

fn snapshot(saga_id: &str, who: &Person, i: i64) -> Snapshot {
    let steps = ["reserve", "charge", "ship"];
    let mut s = Snapshot::new(
        saga_id,
        "OrderSaga",
        steps[i as usize % 3],
        i,
        SagaStatus::Executing,
        who.context(saga_id, i),
        steps[..i as usize % 3]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    s.created_at = t0().plus_micros(i * 1_000_000 + saga_id.len() as i64);
    s.retention_until = Some(s.created_at.plus_micros(30 * 86_400_000_000));
    s
}

fn replay(original: &str, over: Value) -> ReplayLog {
    ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: original.to_string(),
        new_saga_id: uuid::Uuid::new_v4().to_string(),
        checkpoint_step: "charge".into(),
        replay_status: ReplayStatus::Success,
        initiated_by: "oncall".into(),
        context_override: Some(over),
        error_message: None,
        created_at: t0().plus_micros(50_000_000),
        completed_at: Some(t0().plus_micros(51_000_000)),
        extra: serde_json::Map::new(),
    }
}

async fn policy() -> Arc<Compliance> {
    policy_with(false).await
}

/// The test policy; `encrypted` adds a file master key and makes the
/// subject path itself sensitive, so finding the subject needs decryption.
async fn policy_with(encrypted: bool) -> Arc<Compliance> {
    let mut cfg = ComplianceConfig {
        subjects: vec!["customer.id".into()],
        ..ComplianceConfig::default()
    };
    let mut sensitive = vec![
        "customer.email".to_string(),
        "customer.name".into(),
        "card.*".into(),
        "shipping_address".into(),
    ];
    if encrypted {
        sensitive.push("customer.id".into());
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let key = dir.path().join("k1.key");
        let hex: String = (0..2)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        std::fs::write(&key, format!("{hex}\n")).unwrap();
        cfg.encryption = EncryptionConfig {
            key: Some("k1".into()),
            keys: [(
                "k1".to_string(),
                MasterKeyConfig {
                    file: Some(key),
                    ..MasterKeyConfig::default()
                },
            )]
            .into_iter()
            .collect(),
        };
    }
    cfg.sensitive.insert("*".into(), sensitive);
    Arc::new(Compliance::from_config(&cfg).await.unwrap())
}

fn opts(dry_run: bool) -> EraseOptions {
    EraseOptions {
        dry_run,
        // Two sagas a page: every scan here crosses several pages.
        page: 2,
        ..EraseOptions::new("dpo@example.com")
    }
}

/// The whole acceptance scenario on one backend; `encrypted`: the personal
/// fields (the subject's id too) are encrypted at rest.
async fn scenario(b: Option<Backend>, encrypted: bool) {
    let Some(b) = b else { return };
    let name = b.name;
    let tag = unique_tag();
    let policy = policy_with(encrypted).await;
    let store: Arc<dyn SnapshotStore> =
        Arc::new(ComplianceStore::new(b.store.clone(), policy.clone()));

    let ann = Person::new(&tag, "ann");
    let others = [Person::new(&tag, "bob"), Person::new(&tag, "cy")];
    let ann_sagas: Vec<String> = (0..2).map(|_| common::saga_id()).collect();
    let other_sagas: Vec<String> = (0..4).map(|_| common::saga_id()).collect();
    let mut snaps = Vec::new();
    for (k, id) in ann_sagas.iter().enumerate() {
        for i in 0..(2 + k as i64) {
            snaps.push(snapshot(id, &ann, i));
        }
    }
    for (k, id) in other_sagas.iter().enumerate() {
        for i in 0..2 {
            snaps.push(snapshot(id, &others[k % 2], i));
        }
    }
    store.save_snapshots(&snaps).await.unwrap();
    // A replay of another saga whose override names Ann, and one of Ann's.
    let naming = replay(
        &other_sagas[0],
        json!({"customer": {"id": ann.id, "email": ann.email}}),
    );
    let of_ann = replay(&ann_sagas[0], json!({"amount": 5}));
    let untouched = replay(&other_sagas[1], json!({"amount": 7}));
    for r in [&naming, &of_ann, &untouched] {
        store.save_replay(r).await.unwrap();
    }
    let subject = Subject::parse(&format!("customer.id={}", ann.id), &policy).unwrap();
    let before = b.dump().await;
    if encrypted {
        assert!(
            before.iter().any(|(_, bytes)| contains(bytes, "\"$enc\"")),
            "{name}: the values are stored encrypted"
        );
        assert!(!before.iter().any(|(_, bytes)| contains(bytes, &ann.id)));
    } else {
        assert!(
            before.iter().any(|(_, bytes)| contains(bytes, &ann.email)),
            "{name}: the dump reads the stored values (else the scan proves nothing)"
        );
    }

    // A dry run finds everything and writes nothing.
    let dry = erase::erase(&store, &policy, &subject, EraseMode::Tombstone, &opts(true))
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.sagas, 2, "{name}: dry run counts Ann's sagas");
    assert_eq!(dry.snapshots, 5, "{name}");
    assert_eq!(dry.replay_logs, 2, "{name}");
    assert_eq!(b.dump().await, before, "{name}: a dry run changes no byte");
    assert!(audit::list(store.as_ref(), None, 100)
        .await
        .unwrap()
        .iter()
        .all(|e| e.action != erase::ACTION));

    // The erasure.
    let r = erase::erase(
        &store,
        &policy,
        &subject,
        EraseMode::Tombstone,
        &opts(false),
    )
    .await
    .unwrap();
    assert_eq!(r.sagas, 2, "{name}");
    assert_eq!(r.snapshots, 5, "{name}");
    assert_eq!(r.replay_logs, 2, "{name}");
    assert_eq!(
        r.saga_ids.iter().collect::<BTreeSet<_>>(),
        ann_sagas.iter().collect::<BTreeSet<_>>(),
        "{name}"
    );
    assert_eq!(
        r.replay_ids.iter().collect::<BTreeSet<_>>(),
        [&naming.replay_id, &of_ann.replay_id].into_iter().collect(),
        "{name}"
    );
    assert!(r.sagas_scanned >= 6, "{name}: every page read");
    assert_ne!(r.subject_hash, ann.id);
    assert_eq!(r.subject_hash.len(), 64);
    let receipt = serde_json::to_string(&r).unwrap();
    assert!(
        !receipt.contains(&ann.id),
        "{name}: the receipt never names the subject"
    );

    let after = b.dump().await;
    for (k, bytes) in &after {
        for v in ann.personal() {
            assert!(
                !contains(bytes, v),
                "{name}: {k} still holds {v:?} after the erasure:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    let mut mentioned = ann_sagas.clone();
    mentioned.push(naming.replay_id.clone());
    mentioned.push(of_ann.replay_id.clone());
    let mut other_ids = other_sagas.clone();
    other_ids.push(untouched.replay_id.clone());
    let kept_before = entries_of(&before, &other_ids, &mentioned);
    assert!(
        !kept_before.is_empty(),
        "{name}: the other sagas' entries are found"
    );
    same(
        &kept_before,
        &entries_of(&after, &other_ids, &mentioned),
        &format!("{name}: every entry of the other sagas is byte for byte what it was"),
    );
    for v in others.iter().flat_map(|p| p.personal()) {
        assert!(
            encrypted || after.iter().any(|(_, b)| contains(b, v)),
            "{name}: the others' {v:?} is still there"
        );
    }
    // Stored as tombstones, not encrypted again.
    let stored = b
        .store
        .latest_snapshot(&ann_sagas[0], None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.context["customer"]["id"]["$erased"].is_string(),
        "{name}: {}",
        stored.context["customer"]["id"]
    );
    // Tombstones in place: the shape stays, sagaz-readable JSON.
    let raw = store::unmasked(&store);
    let t = raw
        .latest_snapshot(&ann_sagas[0], None)
        .await
        .unwrap()
        .unwrap();
    assert!(t.context["customer"]["id"]["$erased"].is_string(), "{name}");
    assert!(t.context["card"]["token"]["$erased"].is_string(), "{name}");
    assert_eq!(
        t.context["order_id"],
        json!(format!("order-{}", ann_sagas[0])),
        "{name}: other fields stay"
    );
    assert_eq!(t.context["amount"], json!(101), "{name}");
    let o = raw.get_replay(&naming.replay_id).await.unwrap().unwrap();
    assert!(o.context_override.unwrap()["customer"]["id"]["$erased"].is_string());
    // The receipt is in the audit log.
    let events = audit::list(store.as_ref(), None, 100).await.unwrap();
    let ev = events
        .iter()
        .find(|e| e.action == erase::ACTION)
        .unwrap_or_else(|| panic!("{name}: an erase audit event"));
    assert_eq!(ev.details["subject_hash"], json!(r.subject_hash), "{name}");
    assert_eq!(ev.details["sagas"], json!(2), "{name}");
    assert_eq!(ev.actor, "dpo@example.com");
    // Nothing left to find.
    let again = erase::find_paged(&store, &policy, &subject, 2)
        .await
        .unwrap();
    assert!(again.sagas.is_empty() && again.replays.is_empty(), "{name}");

    // A held saga of another subject stays, named; the rest of theirs goes.
    let dee = Person::new(&tag, "dee");
    let held_saga = common::saga_id();
    let free_saga = common::saga_id();
    let dee_snaps: Vec<Snapshot> = [&held_saga, &free_saga]
        .iter()
        .flat_map(|id| (0..2).map(|i| snapshot(id, &dee, i)))
        .collect();
    store.save_snapshots(&dee_snaps).await.unwrap();
    hold::place(&store, &held_saga, "legal@example.com", "litigation 42")
        .await
        .unwrap();
    // (The new audit event names both sagas: left out by naming the free one.)
    let free = std::slice::from_ref(&free_saga);
    let held_before = entries_of(&b.dump().await, std::slice::from_ref(&held_saga), free);
    let dee_subject = Subject::parse(&format!("customer.id={}", dee.id), &policy).unwrap();
    let r = erase::erase(
        &store,
        &policy,
        &dee_subject,
        EraseMode::Tombstone,
        &opts(false),
    )
    .await
    .unwrap();
    assert_eq!(r.saga_ids, vec![free_saga.clone()], "{name}");
    assert_eq!(r.held.len(), 1, "{name}");
    assert_eq!(r.held[0].saga_id, held_saga, "{name}");
    assert!(
        r.held[0].message.contains("legal hold"),
        "{}",
        r.held[0].message
    );
    let held_after = entries_of(&b.dump().await, std::slice::from_ref(&held_saga), free);
    // The audit log grows (Redis keeps it in one hash): its entries aside.
    let not_audit = |set: BTreeSet<(String, Vec<u8>)>| -> BTreeSet<(String, Vec<u8>)> {
        set.into_iter()
            .filter(|(_, b)| !contains(b, "\"action\":"))
            .collect()
    };
    same(
        &not_audit(held_before),
        &not_audit(held_after),
        &format!("{name}: the held saga is untouched"),
    );

    // Delete mode: the sagas and their replay logs go.
    let eve = Person::new(&tag, "eve");
    let eve_saga = common::saga_id();
    store
        .save_snapshots(&[snapshot(&eve_saga, &eve, 0), snapshot(&eve_saga, &eve, 1)])
        .await
        .unwrap();
    let eve_replay = replay(&eve_saga, json!({"amount": 9}));
    store.save_replay(&eve_replay).await.unwrap();
    let eve_subject = Subject::parse(&format!("customer.id={}", eve.id), &policy).unwrap();
    let r = erase::erase(
        &store,
        &policy,
        &eve_subject,
        EraseMode::Delete,
        &opts(false),
    )
    .await
    .unwrap();
    assert_eq!((r.sagas, r.snapshots, r.replay_logs), (1, 2, 1), "{name}");
    assert_eq!(store.count_snapshots(&eve_saga).await.unwrap(), 0, "{name}");
    assert!(store
        .get_replay(&eve_replay.replay_id)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .list_replays(&eve_saga, None)
        .await
        .unwrap()
        .items
        .is_empty());
    for (k, bytes) in b.dump().await {
        for v in eve.personal() {
            assert!(!contains(&bytes, v), "{name}: {k} still holds {v:?}");
        }
    }
}

macro_rules! on_every_backend {
    ($($(#[$cfg:meta])? $open:ident => $plain:ident, $enc:ident;)*) => {$(
        $(#[$cfg])?
        #[tokio::test]
        async fn $plain() {
            scenario($open().await, false).await;
        }

        $(#[$cfg])?
        #[tokio::test]
        async fn $enc() {
            scenario($open().await, true).await;
        }
    )*};
}

on_every_backend! {
    memory => memory_erasure_leaves_no_trace_and_other_sagas_untouched,
        memory_encrypted_subject_is_found_and_erased;
    sqlite => sqlite_erasure_leaves_no_trace_and_other_sagas_untouched,
        sqlite_encrypted_subject_is_found_and_erased;
    #[cfg(feature = "postgres")]
    postgres => postgres_erasure_leaves_no_trace_and_other_sagas_untouched,
        postgres_encrypted_subject_is_found_and_erased;
    #[cfg(feature = "redis")]
    redis_store => redis_erasure_leaves_no_trace_and_other_sagas_untouched,
        redis_encrypted_subject_is_found_and_erased;
    #[cfg(feature = "s3")]
    s3 => s3_erasure_leaves_no_trace_and_other_sagas_untouched,
        s3_encrypted_subject_is_found_and_erased;
    folder => folder_erasure_leaves_no_trace_and_other_sagas_untouched,
        folder_encrypted_subject_is_found_and_erased;
}

/// More sagas than one default page (500) and than the 2,500 a store
/// might be assumed to hold: the subject in the last and the first saga
/// listed is found all the same.
#[tokio::test]
async fn a_store_of_more_than_2500_sagas_is_scanned_to_the_end() {
    let b = sqlite().await.unwrap();
    let policy = policy().await;
    let store: Arc<dyn SnapshotStore> =
        Arc::new(ComplianceStore::new(b.store.clone(), policy.clone()));
    let tag = unique_tag();
    let ann = Person::new(&tag, "ann");
    let bob = Person::new(&tag, "bob");
    let mut snaps = Vec::new();
    let mut ids = Vec::new();
    for k in 0..2_600i64 {
        let id = common::saga_id();
        let who = if k == 0 || k == 2_599 { &ann } else { &bob };
        let mut s = snapshot(&id, who, 0);
        s.created_at = t0().plus_micros(k * 1_000);
        snaps.push(s);
        ids.push(id);
    }
    b.store.save_snapshots(&snaps).await.unwrap();
    let subject = Subject::parse(&format!("customer.id={}", ann.id), &policy).unwrap();
    let found = erase::find_subject(&store, &policy, &subject)
        .await
        .unwrap();
    assert_eq!(found.sagas_scanned, 2_600);
    assert_eq!(
        found
            .sagas
            .iter()
            .map(|s| s.saga_id.clone())
            .collect::<BTreeSet<_>>(),
        [ids[0].clone(), ids[2_599].clone()].into_iter().collect()
    );
}

#[path = "common/cli_world.rs"]
mod cli_world;

/// A config naming the subject path and the personal fields.
fn write_config(dir: &std::path::Path, mode: Option<&str>) -> PathBuf {
    let path = dir.join("config.toml");
    let erase = mode
        .map(|m| format!("erase = \"{m}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "[compliance]\nsubjects = [\"customer.id\"]\n{erase}\n[compliance.sensitive]\n\
             \"*\" = [\"customer.email\", \"customer.name\", \"card.*\", \"shipping_address\"]\n"
        ),
    )
    .unwrap();
    path
}

/// Plants Ann in two sagas (one with a replay) beside Bob's, written the
/// way a runtime would (no protection layer in between).
async fn plant(
    store: &Arc<dyn SnapshotStore>,
    ann: &Person,
    bob: &Person,
) -> (Vec<String>, String) {
    let ids: Vec<String> = (0..3).map(|_| common::saga_id()).collect();
    let mut snaps = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let who = if k < 2 { ann } else { bob };
        snaps.extend((0..2).map(|i| snapshot(id, who, i)));
    }
    store.save_snapshots(&snaps).await.unwrap();
    let r = replay(&ids[0], json!({"customer": {"id": ann.id}}));
    store.save_replay(&r).await.unwrap();
    (ids, r.replay_id)
}

#[tokio::test]
async fn the_cli_confirms_refuses_read_only_dry_runs_and_prints_a_receipt_without_the_subject() {
    let w = cli_world::World::sqlite();
    let cfg = write_config(w.dir.path(), None);
    let cfg = cfg.to_str().unwrap();
    let store = store::open(&StoreUrl::new(w.store.clone()), &OpenOptions::default())
        .await
        .unwrap();
    let tag = unique_tag();
    let (ann, bob) = (Person::new(&tag, "ann"), Person::new(&tag, "bob"));
    let (ids, replay_id) = plant(&store, &ann, &bob).await;
    let subject = format!("customer.id={}", ann.id);
    let snapshot_of = |i: usize| w.snapshots(&ids[i]);
    let before: Vec<Vec<Value>> = (0..3).map(snapshot_of).collect();

    // Without a terminal, a real erase needs --yes; nothing is touched.
    let o = w.run(&["--config", cfg, "erase", "--subject", &subject]);
    assert_eq!(o.status.code(), Some(2), "{}", cli_world::stderr(&o));
    assert!(
        cli_world::stderr(&o).contains("--yes"),
        "{}",
        cli_world::stderr(&o)
    );
    // Read-only refuses it before anything runs.
    let o = w.run(&[
        "--config",
        cfg,
        "--readonly",
        "erase",
        "--subject",
        &subject,
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", cli_world::stderr(&o));
    // A path that is not a subject path: the configured ones are listed,
    // the value is not repeated.
    let o = w.run(&[
        "--config",
        cfg,
        "erase",
        "--subject",
        &format!("customer.email={}", ann.email),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = cli_world::stderr(&o);
    assert!(e.contains("customer.id") && !e.contains(&ann.email), "{e}");
    assert_eq!((0..3).map(snapshot_of).collect::<Vec<_>>(), before);

    // The dry run (allowed read-only: it writes nothing).
    let dry = w.ok(&[
        "--config",
        cfg,
        "--readonly",
        "erase",
        "--subject",
        &subject,
        "--dry-run",
        "--json",
    ]);
    assert!(!dry.contains(&ann.id), "{dry}");
    let dry: Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(dry["dry_run"], json!(true));
    assert_eq!(
        (
            dry["sagas"].as_u64(),
            dry["snapshots"].as_u64(),
            dry["replay_logs"].as_u64()
        ),
        (Some(2), Some(4), Some(1))
    );
    assert_eq!((0..3).map(snapshot_of).collect::<Vec<_>>(), before);

    // The erasure: a text receipt, never the subject.
    let out = w.ok(&["--config", cfg, "erase", "--subject", &subject, "--yes"]);
    assert!(out.contains("erasure receipt (tombstone)"), "{out}");
    assert!(out.contains("sagas:       2"), "{out}");
    assert!(out.contains("replay logs: 1"), "{out}");
    assert!(
        out.contains(&ids[0]) && out.contains(&ids[1]) && !out.contains(&ids[2]),
        "{out}"
    );
    assert!(out.contains(&replay_id), "{out}");
    for v in ann.personal() {
        assert!(!out.contains(v), "{out}");
    }
    let hash = out
        .lines()
        .find_map(|l| l.split("sha256:").nth(1))
        .expect("the hash line")
        .trim()
        .to_string();
    assert_eq!(hash.len(), 64);
    assert_eq!(snapshot_of(2), before[2], "Bob's saga unchanged");
    let erased = snapshot_of(0);
    assert!(erased[0]["context"]["customer"]["id"]["$erased"].is_string());
    // The audit log holds the receipt.
    let events = w.json(&["--config", cfg, "audit", "log", "--json"]);
    let ev = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "erase")
        .expect("an erase event");
    assert_eq!(ev["details"]["subject_hash"], json!(hash));
    assert!(!events.to_string().contains(&ann.id));
}

/// sagaz 1.5.0 still reads a store after a tombstone erasure: every saga
/// listed with all its snapshots, the tombstones as ordinary JSON objects.
fn sagaz_reads_after_erasure(backend: &str, py_cfg: Value, url: String, probe: &str) {
    if !backend_available(backend, probe, tcp_open(probe)) {
        return;
    }
    let py = [
        std::env::var("SAGAZ_PYTHON").ok().map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ci/sagaz-venv/bin/python")),
    ]
    .into_iter()
    .flatten()
    .find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import sagaz, redis, asyncpg, zstandard"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(py) = py else {
        assert!(
            !common::backends_required(),
            "sagaz is required in CI: .ci/services/sagaz.sh makes target/ci/sagaz-venv"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {backend} sagaz after erase: no Python with sagaz 1.5.0 (set SAGAZ_PYTHON)"
        );
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = cli_world::World::with_store(&url);
    let cfg = write_config(w.dir.path(), Some("tombstone"));
    let tag = unique_tag();
    let (ann, bob) = (Person::new(&tag, "ann"), Person::new(&tag, "bob"));
    let (ids, replay_id) = rt.block_on(async {
        let store = store::open(&StoreUrl::new(url.clone()), &OpenOptions::default())
            .await
            .unwrap();
        plant(&store, &ann, &bob).await
    });
    w.ok(&[
        "--config",
        cfg.to_str().unwrap(),
        "erase",
        "--subject",
        &format!("customer.id={}", ann.id),
        "--yes",
    ]);
    let ids_file = w.path("ids.json");
    std::fs::write(&ids_file, serde_json::to_string(&ids).unwrap()).unwrap();
    let out = w.path("read.json");
    let o = std::process::Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/sagaz_interop.py"))
        .args(["read", &py_cfg.to_string()])
        .arg(&ids_file)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sagaz read: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let back: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    for id in &ids {
        let snaps = back["sagas"][id]
            .as_array()
            .unwrap_or_else(|| panic!("{backend}: sagaz lists {id}"));
        assert_eq!(
            snaps.len(),
            2,
            "{backend}: sagaz reads every snapshot of {id}"
        );
    }
    let text = back.to_string();
    for v in ann.personal() {
        assert!(!text.contains(v), "{backend}: sagaz sees {v:?}");
    }
    assert!(
        text.contains(&bob.email),
        "{backend}: Bob's data is still there"
    );
    let erased = &back["sagas"][&ids[0]][0]["context"]["customer"]["id"];
    assert!(erased["$erased"].is_string(), "{backend}: {erased}");
    let replays = back["replays"][&ids[0]]
        .as_array()
        .expect("sagaz lists the replay");
    assert_eq!(replays.len(), 1);
    assert_eq!(replays[0]["replay_id"], json!(replay_id));
}

#[test]
fn sagaz_lists_a_postgres_store_after_a_tombstone_erasure() {
    let schema = format!("erase_interop_{}", unique_tag());
    sagaz_reads_after_erasure(
        "postgres",
        json!({"backend": "postgres", "dsn": "postgresql://postgres@127.0.0.1:5432/test", "schema": schema}),
        format!("postgres://postgres@127.0.0.1:5432/test?schema={schema}"),
        "127.0.0.1:5432",
    );
}

#[test]
fn sagaz_lists_a_redis_store_after_a_tombstone_erasure() {
    let prefix = format!("erase{}:snapshot:", unique_tag());
    sagaz_reads_after_erasure(
        "redis",
        json!({"backend": "redis", "url": "redis://127.0.0.1:6379", "prefix": prefix, "compress": true}),
        format!("redis://127.0.0.1:6379?prefix={prefix}&compression=zstd"),
        "127.0.0.1:6379",
    );
}
