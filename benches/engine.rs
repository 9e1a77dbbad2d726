//! Engine and replay benchmarks against any store URL.
//!
//! ```text
//! cargo bench --bench engine -- --store sqlite:///tmp/bench.db [capture] [batch]
//!     [--sagas 10000] [--concurrency 32] [--steps 20] [--runs 200]
//! ```
//!
//! `capture`: the engine's per-step snapshot-capture overhead, no-op Rust
//! steps, capture on (before_each_step) vs off. `batch`: a batch dry run
//! over N failed OrderSagas (seeded first, under fresh ids). Both write
//! under fresh saga ids, so runs can share a store.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use sagascope::engine::{
    action, Definitions, Engine, RunRequest, SagaDefinition, SnapshotStrategies, SnapshotStrategy,
    Step,
};
use sagascope::model::{SagaStatus, Snapshot};
use sagascope::replay::batch::{run_batch, BatchRequest, Selection};
use sagascope::replay::{lock_owner, MergeMode, ReplayOptions, ReplaySpec, DEFAULT_LOCK_TTL};
use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

struct Opts {
    store: String,
    sagas: usize,
    concurrency: usize,
    steps: usize,
    runs: usize,
    which: Vec<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        store: std::env::var("SAGASCOPE_BENCH_STORE").unwrap_or_else(|_| "memory://".into()),
        sagas: 10_000,
        concurrency: 32,
        steps: 20,
        runs: 200,
        which: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |i: usize, name: &str| -> String {
        args.get(i + 1)
            .cloned()
            .unwrap_or_else(|| panic!("{name} needs a value"))
    };
    let num = |i: usize, name: &str| -> usize {
        value(i, name)
            .parse()
            .unwrap_or_else(|_| panic!("{name} needs a number"))
    };
    for (i, a) in args.iter().enumerate() {
        match a.as_str() {
            "--store" => o.store = value(i, a),
            "--sagas" => o.sagas = num(i, a),
            "--concurrency" => o.concurrency = num(i, a),
            "--steps" => o.steps = num(i, a),
            "--runs" => o.runs = num(i, a),
            "capture" | "batch" => o.which.push(a.clone()),
            _ => {}
        }
    }
    if o.which.is_empty() {
        o.which = vec!["capture".into(), "batch".into()];
    }
    o
}

fn context() -> Map<String, Value> {
    // About the size of a real order context (~600 bytes).
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

async fn capture(store: Arc<dyn SnapshotStore>, o: &Opts) {
    let mut def = SagaDefinition::new("BenchSaga")
        .strategies(SnapshotStrategies::of(&[SnapshotStrategy::BeforeEachStep]));
    for i in 0..o.steps {
        def = def.step(Step::new(
            format!("step_{i}"),
            action(|_c| async { Ok::<_, String>(Map::new()) }),
        ));
    }
    let ctx = context();
    let time = |engine: Engine| {
        let def = def.clone();
        let ctx = ctx.clone();
        let runs = o.runs;
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
                assert!(out.snapshot_errors.is_empty(), "{:?}", out.snapshot_errors);
            }
            t.elapsed()
        }
    };
    // Warm up the connection pool and caches.
    let _ = time(Engine::new(store.clone())).await;
    let off = time(Engine::new(store.clone()).without_capture()).await;
    let on = time(Engine::new(store.clone())).await;
    let steps = (o.runs * o.steps) as f64;
    // Each run also writes the __completed__ snapshot: count it as a step's.
    let snapshots = (o.runs * (o.steps + 1)) as f64;
    println!(
        "capture  store={}  runs={} steps/run={}  off={:.3} ms/step  on={:.3} ms/step  overhead={:.3} ms/step ({:.3} ms/snapshot)",
        store.location(),
        o.runs,
        o.steps,
        off.as_secs_f64() * 1e3 / steps,
        on.as_secs_f64() * 1e3 / steps,
        (on.as_secs_f64() - off.as_secs_f64()) * 1e3 / steps,
        (on.as_secs_f64() - off.as_secs_f64()) * 1e3 / snapshots,
    );
}

async fn batch(store: Arc<dyn SnapshotStore>, o: &Opts) {
    let name = format!(
        "BenchOrderSaga_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let noop = || action(|_c| async { Ok::<_, String>(Map::new()) });
    let mut defs = Definitions::new();
    defs.insert(
        SagaDefinition::new(name.clone())
            .step(Step::new("reserve_inventory", noop()).compensate(noop()))
            .step(Step::new("charge_payment", noop()).compensate(noop()))
            .step(Step::new("ship_order", noop())),
    );
    let t = Instant::now();
    let ctx = context();
    let mut chunk = Vec::new();
    for _ in 0..o.sagas {
        let id = uuid::Uuid::new_v4().to_string();
        chunk.push(Snapshot::new(
            &id,
            &name,
            "reserve_inventory",
            0,
            SagaStatus::Executing,
            ctx.clone(),
            vec![],
        ));
        let done = vec!["reserve_inventory".to_string()];
        chunk.push(Snapshot::new(
            &id,
            &name,
            "charge_payment",
            1,
            SagaStatus::Executing,
            ctx.clone(),
            done.clone(),
        ));
        chunk.push(Snapshot::new(
            &id,
            &name,
            "charge_payment",
            1,
            SagaStatus::RolledBack,
            ctx.clone(),
            done,
        ));
        if chunk.len() >= 3000 {
            store.save_snapshots(&chunk).await.expect("seeding");
            chunk.clear();
        }
    }
    store.save_snapshots(&chunk).await.expect("seeding");
    let seeded = t.elapsed();
    let selection = Selection::Filter(sagascope::store::SagaFilter {
        statuses: vec![SagaStatus::RolledBack],
        name: Some(name.clone()),
        ..Default::default()
    });
    let t = Instant::now();
    let targets = sagascope::replay::batch::select(store.as_ref(), &selection, None)
        .await
        .expect("select");
    let selected = t.elapsed();
    assert_eq!(targets.len(), o.sagas);
    let mut over = Map::new();
    over.insert("payment_token".into(), json!("tok_valid"));
    let req = BatchRequest {
        selection,
        spec: ReplaySpec {
            from_step: "charge_payment".into(),
            context_override: over,
            merge: MergeMode::Shallow,
            force_failure: false,
            ..ReplaySpec::default()
        },
        opts: ReplayOptions {
            initiated_by: "bench".into(),
            reason: Some("benchmark".into()),
            dry_run: true,
            lock_ttl: DEFAULT_LOCK_TTL,
            lock_owner: lock_owner("bench"),
        },
        concurrency: o.concurrency,
        limit: None,
    };
    let (summary, _) = run_batch(&store, &defs, &req, targets, &|_| {}).await;
    assert_eq!(summary.ok, o.sagas, "{:?}", summary.failure_groups);
    let total = selected.as_secs_f64() + summary.elapsed_secs;
    println!(
        "batch    store={}  sagas={} concurrency={}  seed={:.1}s  select={:.3}s  dry-run={:.3}s = {:.0} sagas/s ({:.3} ms each); with selection {:.0} sagas/s",
        store.location(),
        o.sagas,
        o.concurrency,
        seeded.as_secs_f64(),
        selected.as_secs_f64(),
        summary.elapsed_secs,
        summary.sagas_per_sec,
        summary.elapsed_secs * 1e3 / o.sagas as f64,
        o.sagas as f64 / total,
    );
}

fn main() {
    let o = parse();
    // The runtime the CLI gives the command measured: `run` and `replay
    // run` execute one saga step after another on one thread; `batch` uses
    // the multi-threaded one.
    let mut b = if o.which.iter().any(|w| w == "batch") {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = b.enable_all().build().expect("runtime");
    rt.block_on(async {
        let store = store::open(&StoreUrl::new(o.store.clone()), &OpenOptions::default())
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", store::redact(&o.store)));
        for w in &o.which {
            match w.as_str() {
                "capture" => capture(store.clone(), &o).await,
                "batch" => batch(store.clone(), &o).await,
                _ => {}
            }
        }
    });
}
