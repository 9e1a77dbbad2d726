//! `sagascope bench store`: the store operations sagaz has — save, get,
//! list-100, latest-for-step, state-at-time — timed one at a time against a
//! real store, reported as ops/s and p50/p99. `benches/sagaz_store_bench.py`
//! measures sagaz's own storage classes the same way, so the two can be
//! compared on the same server in one run (`benches/compare_stores.sh`).
//!
//! It writes its own sagas (named `bench-<tag>`), and deletes them after
//! unless `--keep`.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::output::{emit, emit_json, note};
use super::{CliError, Context, Exit};
use crate::model::{SagaStatus, Snapshot, Timestamp};
use crate::replay;
use crate::store::SnapshotQuery;

#[derive(Debug, Args)]
pub struct BenchStoreArgs {
    /// Sagas to write before measuring.
    #[arg(long, default_value_t = 10)]
    pub sagas: usize,
    /// Snapshots per saga (at least 100, so list-100 lists 100).
    #[arg(long, default_value_t = 120)]
    pub snapshots: usize,
    /// Timed repetitions per operation.
    #[arg(long, default_value_t = 300)]
    pub ops: usize,
    /// Context size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub context_bytes: usize,
    /// Leave the benchmark's sagas in the store.
    #[arg(long)]
    pub keep: bool,
    /// Print JSON (the shape sagaz_store_bench.py prints).
    #[arg(long)]
    pub json: bool,
}

const STEPS: [&str; 4] = [
    "reserve_inventory",
    "charge_payment",
    "ship_order",
    "notify_customer",
];

fn snapshot(saga_id: &str, name: &str, i: usize, at: Timestamp, ctx_bytes: usize) -> Snapshot {
    let mut ctx = serde_json::Map::new();
    ctx.insert("order_id".into(), json!(format!("ord-{i}")));
    ctx.insert("i".into(), json!(i));
    ctx.insert(
        "payload".into(),
        json!("x".repeat(ctx_bytes.saturating_sub(40))),
    );
    let mut s = Snapshot::new(
        saga_id,
        name,
        STEPS[i % STEPS.len()],
        i as i64,
        SagaStatus::Executing,
        ctx,
        STEPS[..(i % STEPS.len())]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    s.created_at = at;
    s
}

struct Op {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Op {
    fn ms(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self.samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return 0.0;
        }
        v[((v.len() - 1) as f64 * p).round() as usize]
    }
    fn ops_per_sec(&self) -> f64 {
        let total: f64 = self.samples.iter().map(Duration::as_secs_f64).sum();
        if total == 0.0 {
            0.0
        } else {
            self.samples.len() as f64 / total
        }
    }
}

/// A tiny deterministic RNG for picking ids (no timing dependence).
struct Pick(u64);
impl Pick {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

pub async fn bench_store(ctx: &mut Context, a: BenchStoreArgs) -> Result<Exit, CliError> {
    if a.snapshots < 100 {
        return Err(CliError::usage(
            "--snapshots must be at least 100 (list-100 lists 100)",
        ));
    }
    let store = ctx.store().await?;
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let name = format!("bench-{tag}");
    let start = Timestamp::now().plus_micros(-3_600_000_000);
    let saga_ids: Vec<String> = (0..a.sagas)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    note(&format!(
        "bench: writing {} sagas × {} snapshots to {} …",
        a.sagas,
        a.snapshots,
        store.location()
    ));
    let mut all: Vec<Snapshot> = Vec::new();
    for (s, id) in saga_ids.iter().enumerate() {
        let batch: Vec<Snapshot> = (0..a.snapshots)
            .map(|i| {
                snapshot(
                    id,
                    &name,
                    i,
                    start.plus_micros((s * a.snapshots + i) as i64 * 1000),
                    a.context_bytes,
                )
            })
            .collect();
        store.save_snapshots(&batch).await?;
        all.extend(batch);
    }
    let mut pick = Pick(0x9E37_79B9_7F4A_7C15);
    let mut ops: Vec<Op> = Vec::new();

    // save: new snapshots appended to the benchmark's sagas, one at a time.
    let mut samples = Vec::with_capacity(a.ops);
    for i in 0..a.ops {
        let id = &saga_ids[i % saga_ids.len()];
        let s = snapshot(
            id,
            &name,
            a.snapshots + i,
            Timestamp::now(),
            a.context_bytes,
        );
        let t = Instant::now();
        store.save_snapshot(&s).await?;
        samples.push(t.elapsed());
    }
    ops.push(Op {
        name: "save",
        samples,
    });

    let mut samples = Vec::with_capacity(a.ops);
    for _ in 0..a.ops {
        let s = &all[pick.next(all.len())];
        let t = Instant::now();
        let got = store.get_snapshot(&s.snapshot_id).await?;
        samples.push(t.elapsed());
        if got.is_none() {
            return Err(CliError::new(
                Exit::Problems,
                format!("bench: snapshot {} vanished", s.snapshot_id),
            ));
        }
    }
    ops.push(Op {
        name: "get",
        samples,
    });

    let mut samples = Vec::with_capacity(a.ops);
    for _ in 0..a.ops {
        let id = &saga_ids[pick.next(saga_ids.len())];
        let t = Instant::now();
        let l = store
            .list_snapshots(id, &SnapshotQuery::newest(100))
            .await?;
        samples.push(t.elapsed());
        if l.items.len() != 100 {
            return Err(CliError::new(
                Exit::Problems,
                format!("bench: list-100 returned {}", l.items.len()),
            ));
        }
    }
    ops.push(Op {
        name: "list-100",
        samples,
    });

    let mut samples = Vec::with_capacity(a.ops);
    for _ in 0..a.ops {
        let id = &saga_ids[pick.next(saga_ids.len())];
        let step = STEPS[pick.next(STEPS.len())];
        let t = Instant::now();
        let got = store.latest_snapshot(id, Some(step)).await?;
        samples.push(t.elapsed());
        if got.is_none() {
            return Err(CliError::new(
                Exit::Problems,
                "bench: latest-for-step found nothing",
            ));
        }
    }
    ops.push(Op {
        name: "latest-for-step",
        samples,
    });

    // state-at-time over the whole range, early times included (where
    // sagaz's 100-snapshot window answers wrongly).
    let mut samples = Vec::with_capacity(a.ops);
    for _ in 0..a.ops {
        let s = &all[pick.next(all.len())];
        let t = Instant::now();
        let state = replay::state_at(store.as_ref(), &s.saga_id, s.created_at).await?;
        samples.push(t.elapsed());
        if state.snapshot_id != s.snapshot_id {
            return Err(CliError::new(
                Exit::Problems,
                "bench: state-at-time returned the wrong snapshot",
            ));
        }
    }
    ops.push(Op {
        name: "state-at-time",
        samples,
    });

    if !a.keep {
        for id in &saga_ids {
            store.delete_saga(id).await?;
        }
    }
    let result = json!({
        "tool": "sagascope",
        "store": store.location(),
        "backend": store.capabilities().backend,
        "sagas": a.sagas, "snapshots_per_saga": a.snapshots, "context_bytes": a.context_bytes,
        "operations": ops.iter().map(|o| json!({
            "name": o.name, "n": o.samples.len(), "ops_per_sec": o.ops_per_sec(),
            "p50_ms": o.ms(0.5), "p99_ms": o.ms(0.99),
        })).collect::<Vec<_>>(),
    });
    if a.json {
        emit_json(&result);
    } else {
        let mut out = format!(
            "{:<16} {:>6} {:>12} {:>10} {:>10}\n",
            "OPERATION", "N", "OPS/S", "P50 MS", "P99 MS"
        );
        for o in &ops {
            out.push_str(&format!(
                "{:<16} {:>6} {:>12.0} {:>10.3} {:>10.3}\n",
                o.name,
                o.samples.len(),
                o.ops_per_sec(),
                o.ms(0.5),
                o.ms(0.99)
            ));
        }
        emit(&out);
    }
    Ok(Exit::Ok)
}

#[derive(Debug, Args)]
pub struct BenchCaptureArgs {
    /// Saga runs per variant.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Steps per run (each captured before it runs).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// The SQLite file to write to (default: a temporary one, removed
    /// after).
    #[arg(long, value_name = "FILE")]
    pub db: Option<std::path::PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// An order context of about 600 bytes, two fields of it sensitive
/// (`customer.email`, `payment_token`).
fn capture_context() -> serde_json::Map<String, serde_json::Value> {
    json!({
        "order_id": "ord-1001", "customer": {"id": "cus-200", "email": "customer200@example.com"},
        "items": [{"sku": "SKU-MUG", "qty": 2, "unit_price": 12.5}, {"sku": "SKU-TEE", "qty": 1, "unit_price": 19.0}],
        "currency": "EUR", "payment_token": "tok_031337",
        "shipping_address": {"street": "10 Canal St", "city": "Amsterdam", "country": "NL"},
        "notes": "leave at the door; ring twice; the dog is friendly but loud, please do not mind him at all",
        "reservation_id": "res_ee55336feddc", "reserved_skus": ["SKU-MUG", "SKU-TEE"]
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// `sagascope bench capture`: the engine's per-step capture cost on SQLite
/// (no-op steps, a snapshot before each), writing plain and through the
/// protection layer with two fields encrypted, next to no capture at all.
/// Variants alternate in rounds, so a machine's drift hits all of them.
pub async fn bench_capture(_ctx: &mut Context, a: BenchCaptureArgs) -> Result<Exit, CliError> {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::compliance::crypto::{Encryptor, LocalKey, MasterKey};
    use crate::compliance::{Compliance, ComplianceStore, SensitivePaths};
    use crate::engine::{
        action, Engine, RunRequest, SagaDefinition, SnapshotStrategies, SnapshotStrategy, Step,
    };
    use crate::store::{OpenOptions, SnapshotStore, StoreUrl};

    if a.runs == 0 || a.steps == 0 {
        return Err(CliError::usage("--runs and --steps must be at least 1"));
    }
    let tmp = match &a.db {
        Some(_) => None,
        None => Some(crate::files::PrivateTempDir::new("sagascope-bench")?),
    };
    let db = match (&a.db, &tmp) {
        (Some(p), _) => p.clone(),
        (None, Some(t)) => t.path().join("capture.db"),
        (None, None) => unreachable!("a temp dir when no --db"),
    };
    let url = format!("sqlite://{}", db.display());
    let plain: Arc<dyn SnapshotStore> =
        crate::store::open(&StoreUrl::new(&url), &OpenOptions::default()).await?;

    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let master: Arc<dyn MasterKey> = Arc::new(LocalKey::from_bytes(
        "bench",
        &key,
        "a random key of this run".into(),
    ));
    let enc = Encryptor::new(vec![master], Some("bench".into()))
        .map_err(|e| CliError::usage(e.to_string()))?;
    let mut sensitive = BTreeMap::new();
    sensitive.insert(
        "*".to_string(),
        vec!["customer.email".to_string(), "payment_token".to_string()],
    );
    let policy = Compliance {
        sensitive: SensitivePaths::parse(&sensitive).map_err(|e| CliError::usage(e.to_string()))?,
        mask: true,
        encryption: Some(Arc::new(enc)),
        ..Compliance::default()
    };
    let encrypted: Arc<dyn SnapshotStore> =
        Arc::new(ComplianceStore::new(plain.clone(), Arc::new(policy)));

    let mut def = SagaDefinition::new("BenchCaptureSaga")
        .strategies(SnapshotStrategies::of(&[SnapshotStrategy::BeforeEachStep]));
    for i in 0..a.steps {
        def = def.step(Step::new(
            format!("step_{i}"),
            action(|_c| async { Ok::<_, String>(serde_json::Map::new()) }),
        ));
    }
    let ctx = capture_context();
    let run = |engine: Engine, runs: usize| {
        let def = def.clone();
        let ctx = ctx.clone();
        async move {
            let t = Instant::now();
            for _ in 0..runs {
                let out = engine
                    .run(
                        &def,
                        RunRequest {
                            saga_id: uuid::Uuid::new_v4().to_string(),
                            context: ctx.clone(),
                            ..RunRequest::default()
                        },
                        &|_| {},
                    )
                    .await;
                if let Some(e) = out.snapshot_errors.first() {
                    return Err(CliError::new(
                        Exit::Problems,
                        format!("bench: a snapshot was not saved: {e}"),
                    ));
                }
            }
            Ok(t.elapsed())
        }
    };
    note(&format!(
        "bench capture: {} runs × {} steps per variant into {} …",
        a.runs,
        a.steps,
        plain.location()
    ));
    // Warm up: the file, its pages, the data key.
    run(Engine::new(plain.clone()), 5).await?;
    run(Engine::new(encrypted.clone()), 5).await?;
    const ROUNDS: usize = 5;
    let per_round = a.runs.div_ceil(ROUNDS);
    let (mut off, mut on_plain, mut on_enc) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        off += run(Engine::new(plain.clone()).without_capture(), per_round).await?;
        on_plain += run(Engine::new(plain.clone()), per_round).await?;
        on_enc += run(Engine::new(encrypted.clone()), per_round).await?;
    }
    let steps = (per_round * ROUNDS * a.steps) as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / steps;
    let (off_us, plain_us, enc_us) = (us(off), us(on_plain), us(on_enc));
    let result = json!({
        "tool": "sagascope",
        "bench": "capture",
        "store": plain.location(),
        "runs": per_round * ROUNDS, "steps_per_run": a.steps,
        "encrypted_fields": 2,
        "us_per_step": {"no_capture": off_us, "plain": plain_us, "encrypted": enc_us},
        "capture_us_per_step": {"plain": plain_us - off_us, "encrypted": enc_us - off_us},
        "encryption_overhead_us_per_step": enc_us - plain_us,
    });
    if a.json {
        emit_json(&result);
    } else {
        emit(&format!(
            "{:<28} {:>12} {:>16}\n{:<28} {:>12.1} {:>16}\n{:<28} {:>12.1} {:>16.1}\n{:<28} {:>12.1} {:>16.1}\nencryption overhead: {:.1} µs per step ({:+.0}% on plain capture)\n",
            "VARIANT (SQLITE)", "µs/STEP", "CAPTURE µs/STEP",
            "no capture", off_us, "-",
            "capture, plain", plain_us, plain_us - off_us,
            "capture, 2 fields encrypted", enc_us, enc_us - off_us,
            enc_us - plain_us,
            if plain_us - off_us > 0.0 { (enc_us - plain_us) / (plain_us - off_us) * 100.0 } else { 0.0 },
        ));
    }
    drop(tmp);
    Ok(Exit::Ok)
}
