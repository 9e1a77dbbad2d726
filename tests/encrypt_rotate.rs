//! `sagascope encrypt` and `sagascope keys rotate` converting a seeded store
//! in place, each killed (SIGKILL) part way and run again: nothing is lost
//! (snapshot counts and every decrypted context equal to the ones before),
//! the stored rows hold no sensitive value in clear, every value ends up
//! under the new key, and after a re-wrap or a re-encryption the store
//! reads with only the new master key configured.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;

use serde_json::{Map, Value};

use sagascope::compliance::convert::JOB_KIND;
use sagascope::compliance::{Compliance, ComplianceConfig, ComplianceStore};
use sagascope::store::{self, OpenOptions, SagaFilter, SagaPageRequest, SnapshotStore, StoreUrl};

use cli_world::*;

/// Sagas seeded: enough that a run is well under way when it is killed.
const SAGAS: usize = 2_500;
const SNAPSHOTS_PER_SAGA: usize = 5;
const SENSITIVE: [&str; 2] = ["customer.id", "payment_token"];

/// A config with master keys k1, k2, k3 in files (`keys` of them
/// configured), new values under `current`.
fn write_config(w: &World, name: &str, current: &str, keys: &[&str]) -> std::path::PathBuf {
    let mut t = String::from("[compliance]\nmask = false\n\n[compliance.sensitive]\n");
    t.push_str(&format!(
        "\"*\" = [{}]\n\n[compliance.encryption]\nkey = \"{current}\"\n",
        SENSITIVE.map(|p| format!("\"{p}\"")).join(", ")
    ));
    for (i, k) in ["k1", "k2", "k3"].iter().enumerate() {
        let path = w.path(&format!("{k}.key"));
        if !path.exists() {
            // Three different keys, 64 hex digits each.
            std::fs::write(
                &path,
                format!("{:064x}\n", 0x5eed_0000_u64 + i as u64 * 7919),
            )
            .unwrap();
        }
        if keys.contains(k) {
            t.push_str(&format!(
                "\n[compliance.encryption.keys.{k}]\nfile = \"{}\"\n",
                path.display()
            ));
        }
    }
    let file = w.path(name);
    std::fs::write(&file, &t).unwrap();
    file
}

fn compliance_of(file: &std::path::Path) -> ComplianceConfig {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    t["compliance"].clone().try_into().unwrap()
}

async fn raw_store(url: &str) -> Arc<dyn SnapshotStore> {
    store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap()
}

/// Every snapshot's context by snapshot id, as `store` reads it.
async fn contexts(store: &dyn SnapshotStore) -> BTreeMap<String, Map<String, Value>> {
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .list_sagas(
                &SagaFilter::default(),
                &SagaPageRequest { limit: 500, after },
            )
            .await
            .unwrap();
        assert!(page.bad.is_empty(), "{:?}", page.bad);
        let ids: Vec<String> = page.sagas.iter().map(|s| s.saga_id.clone()).collect();
        let l = store.snapshots_of_sagas(&ids).await.unwrap();
        assert!(l.bad.is_empty(), "unreadable: {:?}", l.bad.first());
        for s in l.items {
            out.insert(s.snapshot_id.clone(), s.context);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out
}

/// The contexts as a reader configured by `config` sees them (unmasked).
async fn decrypted(url: &str, config: &std::path::Path) -> BTreeMap<String, Map<String, Value>> {
    let policy = Compliance::from_config(&compliance_of(config))
        .await
        .unwrap();
    let layer = ComplianceStore::new(raw_store(url).await, Arc::new(policy));
    let store = layer.unmasked().unwrap();
    contexts(store.as_ref()).await
}

/// The sensitive values of the seeded contexts, as JSON text.
fn sensitive_values(ctxs: &BTreeMap<String, Map<String, Value>>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in ctxs.values() {
        if let Some(v) = c.get("customer").and_then(|c| c.get("id")) {
            out.insert(v.to_string());
        }
        if let Some(v) = c.get("payment_token") {
            out.insert(v.to_string());
        }
    }
    out
}

/// Every stored row's text, read with the backend's own client.
async fn raw_rows(backend: &str, w: &World, url: &str) -> Vec<String> {
    match backend {
        "sqlite" => {
            let db = url.strip_prefix("sqlite://").unwrap().to_string();
            let _ = w;
            let conn = rusqlite::Connection::open(db).unwrap();
            let mut st = conn
                .prepare("SELECT context || ' ' || COALESCE(extra, '') FROM saga_snapshots")
                .unwrap();
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows
        }
        "postgres" => {
            let schema = url.rsplit_once("schema=").unwrap().1.to_string();
            let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
                .await
                .unwrap();
            let mut rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM {schema}.saga_snapshots t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            let extra: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM {schema}.sagascope_snapshot_extra t"
            )))
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            rows.extend(extra);
            rows
        }
        other => panic!("no raw reader for {other}"),
    }
}

/// The master keys the stored rows' data keys are wrapped under, and the
/// data key ids, from the stored form.
async fn stored_keys(url: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let store = raw_store(url).await;
    let mut masters = BTreeSet::new();
    let mut dks = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store
            .list_sagas(
                &SagaFilter::default(),
                &SagaPageRequest { limit: 500, after },
            )
            .await
            .unwrap();
        let ids: Vec<String> = page.sagas.iter().map(|s| s.saga_id.clone()).collect();
        for s in store.snapshots_of_sagas(&ids).await.unwrap().items {
            let keys = s.extra["sagascope_keys"].as_object().unwrap_or_else(|| {
                panic!(
                    "snapshot {} lists no data keys: {:?}",
                    s.snapshot_id, s.extra
                )
            });
            for (kid, e) in keys {
                dks.insert(kid.clone());
                masters.insert(e["master"].as_str().unwrap().to_string());
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    (masters, dks)
}

async fn job_state(url: &str, key: &str) -> Option<String> {
    raw_store(url)
        .await
        .get_meta(JOB_KIND, key)
        .await
        .unwrap()
        .and_then(|v| v["state"].as_str().map(str::to_string))
}

/// Starts `args`, waits until its progress says snapshots changed, and
/// kills it (SIGKILL).
fn start_and_kill(w: &World, args: &[&str]) -> Vec<String> {
    let mut c = w.cmd(args);
    c.stderr(Stdio::piped()).stdout(Stdio::null());
    let mut child: Child = c.spawn().unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in err.lines() {
        let line = line.unwrap();
        let worked = line
            .split_once(" saga(s), ")
            .and_then(|(_, r)| r.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0);
        seen.push(line);
        if worked {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "{args:?} finished before it was killed: {status:?}\n{}",
        seen.join("\n")
    );
    seen
}

/// The sensitive values (JSON strings) a stored row holds in clear: every
/// string literal in it looked up (linear in the row, whatever the number
/// of values).
fn clear_values<'a>(row: &'a str, secrets: &BTreeSet<String>) -> Vec<&'a str> {
    row.split('"')
        .filter(|p| !p.is_empty() && secrets.contains(&format!("\"{p}\"")))
        .collect()
}

fn assert_no_plaintext(rows: &[String], secrets: &BTreeSet<String>) {
    assert!(!rows.is_empty());
    for r in rows {
        let found = clear_values(r, secrets);
        assert!(found.is_empty(), "{found:?} stored in clear: {r}");
    }
}

/// One store: seed, encrypt (killed, re-run), re-wrap to k2 (killed,
/// re-run), re-encrypt to k3 (killed, re-run).
async fn convert_killed_and_resumed(backend: &str, w: &World, n_sagas: usize) {
    let url = w.store.clone();
    let sagas = n_sagas.to_string();
    let per = SNAPSHOTS_PER_SAGA.to_string();
    w.ok(&[
        "dev",
        "seed",
        "--sagas",
        &sagas,
        "--snapshots",
        &per,
        "--context-bytes",
        "200",
    ]);
    let before = contexts(raw_store(&url).await.as_ref()).await;
    assert_eq!(
        before.len(),
        n_sagas * SNAPSHOTS_PER_SAGA,
        "{backend}: seeded"
    );
    let secrets = sensitive_values(&before);
    assert!(
        secrets.len() > 100,
        "{backend}: {} sensitive values",
        secrets.len()
    );
    assert!(
        raw_rows(backend, w, &url)
            .await
            .iter()
            .any(|r| !clear_values(r, &secrets).is_empty()),
        "{backend}: the seeded store holds them in clear"
    );
    let all = write_config(w, "all.toml", "k1", &["k1", "k2", "k3"]);
    let cfg = all.display().to_string();

    // encrypt: killed part way, then run again.
    let dry = w.ok(&["--config", &cfg, "encrypt", "--dry-run"]);
    assert!(
        dry.contains("dry run") && dry.contains(&format!("{} changed", before.len())),
        "{dry}"
    );
    start_and_kill(w, &["--config", &cfg, "encrypt", "--yes", "--batch", "25"]);
    assert_eq!(job_state(&url, "encrypt").await.as_deref(), Some("running"));
    let out = w.ok(&["--config", &cfg, "encrypt", "--yes", "--batch", "25"]);
    assert!(out.contains("continued an earlier run"), "{backend}: {out}");
    assert!(
        out.contains(&format!("sagas:      {n_sagas}")),
        "{backend}: {out}"
    );
    assert!(out.contains("0 unreadable"), "{backend}: {out}");
    assert_eq!(job_state(&url, "encrypt").await.as_deref(), Some("done"));
    assert_no_plaintext(&raw_rows(backend, w, &url).await, &secrets);
    assert_eq!(
        decrypted(&url, &all).await,
        before,
        "{backend}: after encrypt"
    );
    let (masters, _) = stored_keys(&url).await;
    assert_eq!(masters, BTreeSet::from(["k1".to_string()]));
    // Run again: nothing left to do.
    let again = w.ok(&["--config", &cfg, "encrypt", "--yes"]);
    assert!(again.contains("0 changed"), "{backend}: {again}");

    // keys rotate --to k2 (re-wrap): killed, run again; then k2 alone reads.
    start_and_kill(
        w,
        &[
            "--config", &cfg, "keys", "rotate", "--to", "k2", "--yes", "--batch", "25",
        ],
    );
    let out = w.ok(&[
        "--config", &cfg, "keys", "rotate", "--to", "k2", "--yes", "--batch", "25",
    ]);
    assert!(
        out.contains("continued an earlier run") && out.contains("0 unreadable"),
        "{out}"
    );
    let (masters, dks_k2) = stored_keys(&url).await;
    assert_eq!(masters, BTreeSet::from(["k2".to_string()]), "{backend}");
    let only_k2 = write_config(w, "k2.toml", "k2", &["k2"]);
    assert_eq!(
        decrypted(&url, &only_k2).await,
        before,
        "{backend}: k2 alone"
    );
    assert_no_plaintext(&raw_rows(backend, w, &url).await, &secrets);

    // keys rotate --to k3 --reencrypt: fresh data keys; k3 alone reads.
    let args = [
        "--config",
        &cfg,
        "keys",
        "rotate",
        "--to",
        "k3",
        "--reencrypt",
        "--yes",
        "--batch",
        "25",
    ];
    start_and_kill(w, &args);
    let out = w.ok(&args);
    assert!(out.contains("re-encrypted under key k3"), "{out}");
    assert!(
        out.contains("continued an earlier run") && out.contains("0 unreadable"),
        "{out}"
    );
    let (masters, dks_k3) = stored_keys(&url).await;
    assert_eq!(masters, BTreeSet::from(["k3".to_string()]), "{backend}");
    assert!(
        dks_k3.is_disjoint(&dks_k2),
        "{backend}: old data keys remain: {:?}",
        dks_k3.intersection(&dks_k2).collect::<Vec<_>>()
    );
    let only_k3 = write_config(w, "k3.toml", "k3", &["k3"]);
    let after = decrypted(&url, &only_k3).await;
    assert_eq!(after.len(), before.len(), "{backend}: snapshot count");
    assert_eq!(after, before, "{backend}: k3 alone");
    assert_no_plaintext(&raw_rows(backend, w, &url).await, &secrets);

    // Each run left an audit event with its counts.
    let events = sagascope::compliance::audit::list(raw_store(&url).await.as_ref(), None, 1000)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "encrypt").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "keys.rotate").count(),
        2,
        "{actions:?}"
    );
    let first = events.iter().find(|e| e.action == "encrypt").unwrap();
    assert_eq!(first.details["snapshots_changed"], before.len() as u64);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

#[test]
fn encrypt_and_both_rotations_killed_midway_finish_on_rerun_with_nothing_lost_on_sqlite() {
    let w = World::sqlite();
    block_on(convert_killed_and_resumed("sqlite", &w, SAGAS));
}

#[cfg(feature = "postgres")]
#[test]
fn encrypt_and_both_rotations_killed_midway_finish_on_rerun_with_nothing_lost_on_postgres() {
    let (_, url) = namespaced_stores()
        .into_iter()
        .find(|(b, _)| *b == "postgres")
        .unwrap();
    if !store_usable("postgres", &url) {
        return;
    }
    let w = World::with_store(&url);
    // Fewer sagas than SQLite (a debug build converts them over the network
    // three times): still 24 pages of 25, each killed run part way.
    block_on(convert_killed_and_resumed("postgres", &w, 600));
}

#[test]
fn encrypt_and_keys_rotate_refuse_readonly_and_ask_for_yes_without_a_terminal() {
    let w = World::sqlite();
    w.ok(&["dev", "seed", "--sagas", "3"]);
    let cfg = write_config(&w, "all.toml", "k1", &["k1", "k2", "k3"]);
    let cfg = cfg.display().to_string();
    let ro = w.run(&["--config", &cfg, "--readonly", "encrypt", "--yes"]);
    assert_eq!(ro.status.code(), Some(4), "{}", stderr(&ro));
    let ro = w.run(&[
        "--config",
        &cfg,
        "--readonly",
        "keys",
        "rotate",
        "--to",
        "k2",
        "--yes",
    ]);
    assert_eq!(ro.status.code(), Some(4), "{}", stderr(&ro));
    let no = w.run(&["--config", &cfg, "encrypt"]);
    assert_eq!(no.status.code(), Some(2), "{}", stderr(&no));
    assert!(stderr(&no).contains("--yes"), "{}", stderr(&no));
    let unknown = w.run(&["--config", &cfg, "keys", "rotate", "--to", "k9", "--yes"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("k9"), "{}", stderr(&unknown));
    // A dry run writes nothing, so read-only mode allows it.
    let dry = w.ok(&["--config", &cfg, "--readonly", "encrypt", "--dry-run"]);
    assert!(dry.contains("dry run"), "{dry}");
}

#[test]
fn bench_capture_reports_plain_and_encrypted_per_step_figures_and_encrypts_the_two_fields() {
    let w = World::sqlite();
    let db = w.path("capture.db");
    let out = w.json(&[
        "bench",
        "capture",
        "--runs",
        "5",
        "--steps",
        "3",
        "--json",
        "--db",
        db.to_str().unwrap(),
    ]);
    for v in ["no_capture", "plain", "encrypted"] {
        assert!(out["us_per_step"][v].as_f64().is_some(), "{v}: {out}");
    }
    assert!(
        out["encryption_overhead_us_per_step"].as_f64().is_some(),
        "{out}"
    );
    // The encrypted variant's snapshots hold neither field in clear; the
    // plain variant's hold both.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    let sealed = count(
        "SELECT COUNT(*) FROM saga_snapshots WHERE context LIKE '%$enc%' \
         AND context NOT LIKE '%customer200@example.com%' AND context NOT LIKE '%tok_031337%'",
    );
    let clear = count(
        "SELECT COUNT(*) FROM saga_snapshots WHERE context NOT LIKE '%$enc%' \
         AND context LIKE '%customer200@example.com%' AND context LIKE '%tok_031337%'",
    );
    let total = count("SELECT COUNT(*) FROM saga_snapshots");
    assert!(sealed > 0 && clear > 0, "sealed {sealed}, clear {clear}");
    assert_eq!(sealed + clear, total);
}
