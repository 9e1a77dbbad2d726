//! PostgreSQL, Redis and Redis Cluster stores against real servers on
//! loopback: what is specific to each backend — sagaz's raw layout,
//! stale-index warning and `reindex`, clear errors for values sagaz's table
//! cannot hold, and that browsing walks indexes (EXPLAIN). What every store
//! must do alike is the conformance suite's (`tests/conformance/`).
#![cfg(all(feature = "postgres", feature = "redis"))]

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use common::*;
use sagascope::model::{ReplayLog, ReplayStatus, SagaStatus, Snapshot, Timestamp};
use sagascope::store::postgres::PostgresStore;
use sagascope::store::redis::RedisStore;
use sagascope::store::{
    codec, open, OpenOptions, ReindexReport, SagaFilter, SagaPageRequest, SnapshotQuery,
    SnapshotStore, StoreError, StoreResult, StoreUrl,
};

/// What `sagascope reindex` does: open the store by URL, then rebuild its index.
async fn reindex(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Option<ReindexReport>> {
    open(url, opts).await?.reindex().await
}

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379";
const CLUSTER: &str = "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002";

async fn pg_store(extra: &str) -> Option<PostgresStore> {
    if !backend_available("postgres", PG, tcp_open("127.0.0.1:5432")) {
        return None;
    }
    let url = StoreUrl::new(format!("{PG}?schema=t_{}{extra}", unique_tag()));
    Some(
        PostgresStore::open(&url, &OpenOptions::default())
            .await
            .expect("open postgres"),
    )
}

async fn redis_store(cluster: bool, extra: &str) -> Option<RedisStore> {
    let (base, addr, name) = if cluster {
        (CLUSTER, "127.0.0.1:7000", "redis-cluster")
    } else {
        (REDIS, "127.0.0.1:6379", "redis")
    };
    if !backend_available(name, base, tcp_open(addr)) {
        return None;
    }
    let url = StoreUrl::new(format!("{base}/?prefix=t:{}:{extra}", unique_tag()));
    Some(
        RedisStore::open(&url, &OpenOptions::default())
            .await
            .expect("open redis"),
    )
}

fn with_status(mut s: Snapshot, status: SagaStatus) -> Snapshot {
    s.status = status;
    s
}

fn page(limit: usize) -> SagaPageRequest {
    SagaPageRequest { limit, after: None }
}

// ---- PostgreSQL ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_nul_and_non_uuid_ids_with_a_clear_error() {
    let Some(store) = pg_store("").await else {
        return;
    };
    let id = saga_id();
    let mut s = snap(&id, 0, 0);
    s.context.insert("note".into(), json!({"inner": "a\u{0}b"}));
    let err = store.save_snapshot(&s).await.unwrap_err();
    match &err {
        StoreError::Unstorable { what, reason, .. } => {
            assert!(what.contains("context.note.inner"), "{what}");
            assert!(reason.contains("NUL"), "{reason}");
        }
        other => panic!("expected Unstorable, got {other:?}"),
    }
    let bad_id = snap("order-42", 0, 0);
    let err = store.save_snapshot(&bad_id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unstorable { what, .. } if what.contains("order-42")),
        "{err}"
    );
    let mut long = snap(&id, 0, 0);
    long.step_name = "x".repeat(256);
    assert!(matches!(
        store.save_snapshot(&long).await,
        Err(StoreError::Unstorable { .. })
    ));
    // Nothing was written by the refused saves.
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 0);
    assert!(store.get_snapshot("not-a-uuid").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_uses_sagaz_tables_as_they_are() {
    let Some(store) = pg_store("").await else {
        return;
    };
    let pool = store.pool();
    let cols: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'saga_snapshots' ORDER BY ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(cols, common::SAGAZ_COLUMNS);
    // A row as sagaz inserts it (context as json.dumps text) reads back.
    let id = saga_id();
    let snap_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO saga_snapshots (snapshot_id, saga_id, saga_name, step_name, step_index, status, context, \
         completed_steps, created_at, retention_until) VALUES ($1, $2::uuid, 'OrderSaga', 'charge_payment', 1, \
         'executing', $3::jsonb, $4::jsonb, '2026-11-22T01:37:29.601111+00:00', '2026-12-22T01:37:29.601105+00:00')",
    )
    .bind(snap_id)
    .bind(&id)
    .bind(r#"{"order_id": "o-1", "amount": 9007199254740993, "caf\u00e9": 1}"#)
    .bind(r#"["reserve_inventory"]"#)
    .execute(pool)
    .await
    .unwrap();
    let url = StoreUrl::new(format!("{PG}?schema={}", store.schema().unwrap()));
    assert!(
        reindex(&url, &OpenOptions::default())
            .await
            .unwrap()
            .is_none(),
        "postgres needs no reindex"
    );
    let got = store
        .get_snapshot(&snap_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.context["amount"], json!(9007199254740993u64));
    assert_eq!(got.context["caf\u{e9}"], json!(1));
    assert_eq!(
        got.created_at.to_isoformat(),
        "2026-11-22T01:37:29.601111+00:00"
    );
    assert!(got.external_refs.is_empty());
    // sagaz's upsert key: the same (saga, step, time) replaces the row.
    let mut again = got.clone();
    again.snapshot_id = uuid::Uuid::new_v4().to_string();
    store.save_snapshot(&again).await.unwrap();
    assert_eq!(store.count_snapshots(&id).await.unwrap(), 1);
    assert!(store
        .get_snapshot(&snap_id.to_string())
        .await
        .unwrap()
        .is_none());
    // Reopening does not alter anything.
    let url = StoreUrl::new(format!("{PG}?schema={}", store.schema().unwrap()));
    let reopened = PostgresStore::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(reopened.count_snapshots(&id).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_saga_list_walks_indexes() {
    let Some(store) = pg_store("").await else {
        return;
    };
    // Enough rows that the planner would rather scan than probe if it could.
    sqlx::query(
        "INSERT INTO saga_snapshots (saga_id, saga_name, step_name, step_index, status, context, completed_steps, created_at) \
         SELECT md5(g::text)::uuid, 'OrderSaga', 'step_' || (g % 5), g % 5, \
                CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'executing' END, '{}'::jsonb, '[]'::jsonb, \
                timestamptz '2026-01-01' + (g || ' seconds')::interval \
         FROM generate_series(1, 30000) AS g",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE saga_snapshots")
        .execute(store.pool())
        .await
        .unwrap();
    for (filter, n) in [
        (SagaFilter::default(), 50),
        (
            SagaFilter {
                statuses: vec![SagaStatus::Failed],
                ..SagaFilter::default()
            },
            50,
        ),
        // The TUI's live poll: what changed since the newest saga it knows.
        (
            SagaFilter {
                since: Some(Timestamp::parse("2026-01-01T08:19:50Z").unwrap()),
                ..SagaFilter::default()
            },
            11,
        ),
    ] {
        let plan = store.explain_list_sagas(&filter, 50).await.unwrap();
        assert!(!plan.contains("Seq Scan"), "{plan}");
        assert!(plan.contains("Index"), "{plan}");
        let p = store.list_sagas(&filter, &page(50)).await.unwrap();
        assert_eq!(p.sagas.len(), n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_honours_sslmode_and_reports_unreachable_servers() {
    if !backend_available("postgres", PG, tcp_open("127.0.0.1:5432")) {
        return;
    }
    let ok = StoreUrl::new(format!("{PG}?sslmode=disable&schema=t_{}", unique_tag()));
    PostgresStore::open(&ok, &OpenOptions::default())
        .await
        .unwrap();
    // verify-full needs a trusted certificate for 127.0.0.1, which a test
    // server does not have: the mode must reach the driver to fail.
    let strict = StoreUrl::new(format!(
        "{PG}?sslmode=verify-full&sslrootcert=/nonexistent/root.crt"
    ));
    assert!(PostgresStore::open(&strict, &OpenOptions::default())
        .await
        .is_err());
    let down = StoreUrl::new("postgres://postgres:s3cret@127.0.0.1:1/test?connect_timeout=2");
    let err = open(&down, &OpenOptions::default()).await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

// ---- Redis ---------------------------------------------------------------

/// A raw connection to the same server or cluster, for what sagaz does.
#[derive(Clone)]
enum Raw {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Raw {
    async fn connect(cluster: bool) -> Raw {
        if cluster {
            let nodes = [
                "redis://127.0.0.1:7000",
                "redis://127.0.0.1:7001",
                "redis://127.0.0.1:7002",
            ];
            let c = redis::cluster::ClusterClient::new(nodes.to_vec()).unwrap();
            Raw::Cluster(c.get_async_connection().await.unwrap())
        } else {
            let c = redis::Client::open(REDIS).unwrap();
            Raw::Single(c.get_multiplexed_async_connection().await.unwrap())
        }
    }

    async fn q<T: redis::FromRedisValue>(&self, c: &redis::Cmd) -> T {
        match self.clone() {
            Raw::Single(mut x) => c.query_async(&mut x).await.unwrap(),
            Raw::Cluster(mut x) => c.query_async(&mut x).await.unwrap(),
        }
    }
}

/// Writes a snapshot the way sagaz does: SET (JSON, zstd or not), EXPIRE,
/// ZADD with float epoch seconds.
async fn sagaz_write(raw: &Raw, prefix: &str, s: &Snapshot, zstd: bool) {
    let c = codec::Codec::new(
        if zstd {
            codec::Compression::zstd()
        } else {
            codec::Compression::None
        },
        codec::JsonStyle::Python,
    );
    let key = format!("{prefix}{}", s.snapshot_id);
    raw.q::<()>(redis::cmd("SET").arg(&key).arg(c.encode(&s.to_json())))
        .await;
    raw.q::<()>(redis::cmd("EXPIRE").arg(&key).arg(30 * 86_400))
        .await;
    raw.q::<()>(
        redis::cmd("ZADD")
            .arg(format!("{prefix}saga:{}:index", s.saga_id))
            .arg(s.created_at.as_epoch_seconds())
            .arg(&s.snapshot_id),
    )
    .await;
}

async fn writes_sagaz_layout(cluster: bool) {
    let Some(store) = redis_store(cluster, "").await else {
        return;
    };
    let raw = Raw::connect(cluster).await;
    let id = saga_id();
    let mut s = snap(&id, 1, 601_111);
    s.retention_until = Some(Timestamp::now().plus_micros(30 * 86_400_000_000));
    s.context
        .insert("city".into(), json!("S\u{e3}o Paulo \u{1F680}"));
    store.save_snapshot(&s).await.unwrap();
    let value: Vec<u8> = raw
        .q(redis::cmd("GET").arg(store.snapshot_key(&s.snapshot_id)))
        .await;
    assert_eq!(&value[..4], &[0x28, 0xb5, 0x2f, 0xfd], "one zstd frame");
    let json = zstd::bulk::decompress(&value, 1 << 20).unwrap();
    let text = String::from_utf8(json).unwrap();
    assert!(
        text.starts_with(&format!(
            "{{\"snapshot_id\": \"{}\", \"saga_id\": ",
            s.snapshot_id
        )),
        "{text}"
    );
    assert!(
        text.contains(r#""city": "S\u00e3o Paulo \ud83d\ude80""#),
        "{text}"
    );
    let ttl: i64 = raw
        .q(redis::cmd("TTL").arg(store.snapshot_key(&s.snapshot_id)))
        .await;
    assert!(ttl > 29 * 86_400 && ttl <= 30 * 86_400, "ttl {ttl}");
    let scored: Vec<(String, f64)> = raw
        .q(redis::cmd("ZRANGE")
            .arg(store.saga_index_key(&id))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES"))
        .await;
    assert_eq!(
        scored,
        vec![(s.snapshot_id.clone(), s.created_at.as_epoch_seconds())]
    );
    assert_eq!(scored[0].1, 1772366400.601111);
    // Replay keys as sagaz's.
    let log = ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: id.clone(),
        new_saga_id: saga_id(),
        checkpoint_step: "charge_payment".into(),
        replay_status: ReplayStatus::Success,
        initiated_by: "alice".into(),
        context_override: None,
        error_message: None,
        created_at: t0(),
        completed_at: Some(t0()),
        extra: Default::default(),
    };
    store.save_replay(&log).await.unwrap();
    let v: Vec<u8> = raw
        .q(redis::cmd("GET").arg(store.replay_key(&log.replay_id)))
        .await;
    assert_eq!(codec::sniff(&v), codec::Compression::zstd());
    let members: Vec<String> = raw
        .q(redis::cmd("ZRANGE")
            .arg(store.replay_index_key(&id))
            .arg(0)
            .arg(-1))
        .await;
    assert_eq!(members, vec![log.replay_id.clone()]);

    // Values sagaz wrote with compression off read the same.
    let plain = snap(&id, 2, 900_000);
    sagaz_write(&raw, store.prefix(), &plain, false).await;
    assert_eq!(
        store
            .get_snapshot(&plain.snapshot_id)
            .await
            .unwrap()
            .unwrap(),
        plain
    );
    // A corrupt value is reported as that entry's error; listing goes on.
    let broken = snap(&id, 0, 100);
    sagaz_write(&raw, store.prefix(), &broken, true).await;
    raw.q::<()>(
        redis::cmd("SET")
            .arg(store.snapshot_key(&broken.snapshot_id))
            .arg(&[0x28u8, 0xb5, 0x2f, 0xfd, 1, 2][..]),
    )
    .await;
    let all = store
        .list_snapshots(&id, &SnapshotQuery::all())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    assert_eq!(all.bad.len(), 1);
    assert!(all.bad[0].key.ends_with(&broken.snapshot_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_writes_sagaz_layout() {
    writes_sagaz_layout(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_writes_sagaz_layout() {
    writes_sagaz_layout(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_compression_none_writes_plain_json() {
    if !backend_available("redis", REDIS, tcp_open("127.0.0.1:6379")) {
        return;
    }
    let url = StoreUrl::new(format!(
        "{REDIS}/?prefix=t:{}:&compression=none",
        unique_tag()
    ));
    let store = RedisStore::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    let s = snap(&saga_id(), 0, 0);
    store.save_snapshot(&s).await.unwrap();
    let raw = Raw::connect(false).await;
    let v: Vec<u8> = raw
        .q(redis::cmd("GET").arg(store.snapshot_key(&s.snapshot_id)))
        .await;
    assert!(v.starts_with(b"{\"snapshot_id\": "));
    assert_eq!(
        store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap(),
        s
    );
}

async fn stale_index_is_reported_and_reindex_fixes_it(cluster: bool) {
    let Some(store) = redis_store(cluster, "").await else {
        return;
    };
    let raw = Raw::connect(cluster).await;
    // sagaz wrote three sagas before sagascope ever looked.
    let ids: Vec<String> = (0..3).map(|_| saga_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        for step in 0..2 {
            let s = with_status(
                snap(id, step, i as i64 * 10_000 + step * 1_000),
                SagaStatus::Executing,
            );
            sagaz_write(&raw, store.prefix(), &s, i % 2 == 0).await;
        }
    }
    assert!(!store.index_is_built().await.unwrap());
    let p = store
        .list_sagas(&SagaFilter::default(), &page(10))
        .await
        .unwrap();
    assert!(p.sagas.is_empty());
    let warning = p.index_warning.expect("stale index is reported");
    assert!(warning.contains("sagascope reindex"), "{warning}");
    // A write by sagascope does not hide the problem.
    let own = saga_id();
    store.save_snapshot(&snap(&own, 0, 50_000)).await.unwrap();
    assert!(store
        .list_sagas(&SagaFilter::default(), &page(10))
        .await
        .unwrap()
        .index_warning
        .is_some());

    // What `sagascope reindex` calls: by URL, refused when read-only.
    let url = StoreUrl::new(store.location());
    let ro = OpenOptions {
        readonly: true,
        ..OpenOptions::default()
    };
    assert!(matches!(
        reindex(&url, &ro).await,
        Err(StoreError::PermissionDenied { .. })
    ));
    let report = reindex(&url, &OpenOptions::default())
        .await
        .unwrap()
        .expect("redis needs a reindex");
    assert_eq!(report.sagas_indexed, 4);
    assert!(report.bad.is_empty());
    let p = store
        .list_sagas(&SagaFilter::default(), &page(10))
        .await
        .unwrap();
    assert!(p.index_warning.is_none(), "{:?}", p.index_warning);
    let got: Vec<&str> = p.sagas.iter().map(|s| s.saga_id.as_str()).collect();
    assert_eq!(
        got,
        vec![
            own.as_str(),
            ids[2].as_str(),
            ids[1].as_str(),
            ids[0].as_str()
        ]
    );
    assert_eq!(p.sagas[1].snapshot_count, 2);
    assert_eq!(p.sagas[1].first_at, t0().plus_micros(20_000));

    // sagaz moves an indexed saga on: the page notices and re-indexes it.
    let newer = with_status(snap(&ids[0], 2, 90_000), SagaStatus::Failed);
    sagaz_write(&raw, store.prefix(), &newer, true).await;
    let p = store
        .list_sagas(&SagaFilter::default(), &page(10))
        .await
        .unwrap();
    assert!(p.index_warning.is_some_and(|w| w.contains("re-indexed")));
    let p = store
        .list_sagas(&SagaFilter::default(), &page(10))
        .await
        .unwrap();
    assert!(p.index_warning.is_none());
    assert_eq!(p.sagas[0].saga_id, ids[0]);
    assert_eq!(p.sagas[0].latest_status, SagaStatus::Failed);
    let failed = SagaFilter {
        statuses: vec![SagaStatus::Failed],
        ..SagaFilter::default()
    };
    assert_eq!(
        store
            .list_sagas(&failed, &page(10))
            .await
            .unwrap()
            .sagas
            .len(),
        1
    );
    // A fresh prefix with no sagaz data is complete from the first write.
    let Some(fresh) = redis_store(cluster, "fresh:").await else {
        return;
    };
    fresh.save_snapshot(&snap(&saga_id(), 0, 0)).await.unwrap();
    assert!(fresh.index_is_built().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stale_index_is_reported_and_reindex_fixes_it() {
    stale_index_is_reported_and_reindex_fixes_it(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_stale_index_is_reported_and_reindex_fixes_it() {
    stale_index_is_reported_and_reindex_fixes_it(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_writers_of_one_saga_converge_on_the_newest() {
    let Some(store) = redis_store(true, "").await else {
        return;
    };
    let store = Arc::new(store);
    let id = saga_id();
    let snaps: Vec<Snapshot> = (0..40).map(|i| snap(&id, i % 3, i * 10)).collect();
    let mut tasks = Vec::new();
    for s in snaps.iter().rev() {
        let s = s.clone();
        let st = store.clone();
        tasks.push(tokio::spawn(async move { st.save_snapshot(&s).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let p = store
        .list_sagas(&SagaFilter::default(), &page(10))
        .await
        .unwrap();
    assert_eq!(p.sagas.len(), 1);
    assert_eq!(p.sagas[0].last_at, snaps[39].created_at);
    assert_eq!(p.sagas[0].snapshot_count, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_server_is_reported_without_secrets() {
    let down = StoreUrl::new("redis://:s3cret@127.0.0.1:1/0?connect_timeout=2");
    let err = open(&down, &OpenOptions::default()).await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// Whether a TLS Redis answers at `addr`: a TLS handshake and a PING
/// through the store itself. When not, says what answers instead (an open
/// port alone proved nothing: a plaintext Redis on 6390 failed the test).
async fn redis_tls_probe(addr: &str) -> Result<(), String> {
    if !tcp_open(addr) {
        return Err("nothing listens there".into());
    }
    let url = StoreUrl::new(format!(
        "rediss://{addr}/?prefix=probe:{}:&connect_timeout=2#insecure",
        unique_tag()
    ));
    let tls = tokio::time::timeout(Duration::from_secs(5), async {
        let store = open(&url, &OpenOptions::default()).await?;
        store.health().await
    })
    .await;
    let why = match tls {
        Ok(Ok(h)) if h.reachable => return Ok(()),
        Ok(Ok(_)) => "the TLS connection opened but PING failed".to_string(),
        Ok(Err(e)) => format!("no TLS Redis ({e})"),
        Err(_) => "no TLS answer within 5 s".to_string(),
    };
    Err(format!("{why}; {}", what_answers_plaintext(addr)))
}

/// Sends a plaintext PING and describes the reply.
fn what_answers_plaintext(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return "the port closed meanwhile".into();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if let Err(e) = s.write_all(b"PING\r\n") {
        return format!("a plaintext PING could not be sent: {e}");
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if buf[..n].starts_with(b"+PONG") => {
            "a plaintext (non-TLS) Redis answers there".into()
        }
        Ok(0) => "something that closes plaintext connections answers there".into(),
        Ok(n) => format!(
            "something else answers there: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => format!("something that does not answer a plaintext PING listens there ({e})"),
    }
}

/// Decides whether the rediss test runs against `addr`: a SKIP line naming
/// what answers instead, or a failure when `required` (CI).
async fn redis_tls_available(addr: &str, required: bool) -> bool {
    match redis_tls_probe(addr).await {
        Ok(()) => true,
        Err(what) if required => {
            panic!("redis-tls is required in CI but no TLS Redis answers at {addr}: {what}")
        }
        Err(what) => {
            // libtest shows writes to the stderr handle, not `eprintln!`.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{}", redis_tls_skip_line(addr, &what));
            false
        }
    }
}

/// The SKIP line for a missing TLS Redis, naming what answers instead.
fn redis_tls_skip_line(addr: &str, what: &str) -> String {
    format!("SKIP redis-tls: no TLS Redis at {addr}: {what} (set CI=true to make this a failure)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_talks_tls() {
    // `.ci/services/redis-tls.sh`: a TLS-only server with a self-signed
    // certificate, hence `#insecure`.
    if !redis_tls_available("127.0.0.1:6390", backends_required()).await {
        return;
    }
    let url = StoreUrl::new(format!(
        "rediss://127.0.0.1:6390/?prefix=t:{}:#insecure",
        unique_tag()
    ));
    let store = open(&url, &OpenOptions::default())
        .await
        .expect("open rediss");
    let s = snap(&saga_id(), 0, 0);
    store.save_snapshot(&s).await.unwrap();
    assert_eq!(
        store.get_snapshot(&s.snapshot_id).await.unwrap().unwrap(),
        s
    );
    // Without `#insecure` the self-signed certificate is refused.
    let strict = StoreUrl::new("rediss://127.0.0.1:6390/?connect_timeout=2");
    assert!(open(&strict, &OpenOptions::default()).await.is_err());
}

/// A plaintext Redis on the port the TLS test expects is not a TLS Redis:
/// the test skips, saying what answers, instead of failing on its first
/// TLS call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_test_skips_naming_what_answers_when_a_plain_redis_holds_the_port() {
    let Some(plain) = PrivateRedis::start() else {
        return;
    };
    let addr = format!("127.0.0.1:{}", plain.port);
    let what = redis_tls_probe(&addr).await.unwrap_err();
    assert!(
        what.contains("a plaintext (non-TLS) Redis answers there"),
        "{what}"
    );
    // What the skip says (not printed here: CI counts SKIP lines as
    // failures, and this one is expected).
    assert!(redis_tls_skip_line(&addr, &what).contains("a plaintext (non-TLS) Redis answers there"));
    let nothing = format!("127.0.0.1:{}", free_port());
    assert_eq!(
        redis_tls_probe(&nothing).await.unwrap_err(),
        "nothing listens there"
    );
}

/// Saves and snapshot pages run as server-side scripts on one Redis; a
/// server that lost its script cache (restart, `SCRIPT FLUSH`) must not
/// lose a save or a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_saves_and_reads_after_the_server_forgets_its_scripts() {
    let Some(store) = redis_store(false, "").await else {
        return;
    };
    let saga = saga_id();
    let first = snap(&saga, 0, 0);
    store.save_snapshot(&first).await.unwrap();
    assert_eq!(
        store
            .list_snapshots(&saga, &SnapshotQuery::newest(10))
            .await
            .unwrap()
            .items,
        vec![first.clone()]
    );

    let raw = Raw::connect(false).await;
    let _: String = raw.q(redis::cmd("SCRIPT").arg("FLUSH")).await;

    let second = with_status(snap(&saga, 1, 1_000), SagaStatus::Failed);
    store.save_snapshot(&second).await.unwrap();
    let _: String = raw.q(redis::cmd("SCRIPT").arg("FLUSH")).await;
    let listed = store
        .list_snapshots(&saga, &SnapshotQuery::newest(10))
        .await
        .unwrap();
    assert_eq!(listed.items, vec![second.clone(), first.clone()]);
    assert_eq!(
        store
            .latest_snapshot(&saga, Some(&first.step_name))
            .await
            .unwrap(),
        Some(first.clone())
    );
    // The saga index followed the second save.
    let summary = store.saga_summary(&saga).await.unwrap().unwrap();
    assert_eq!(summary.latest_status, SagaStatus::Failed);
    assert_eq!(summary.snapshot_count, 2);
}
