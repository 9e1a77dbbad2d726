//! Seeds N sagas × 5 snapshots into PostgreSQL and/or Redis through the
//! library, then times the first page of the saga list (all sagas, and
//! `--status failed`) through `SnapshotStore::list_sagas`.
//!
//! ```text
//! cargo run --example list_sagas_100k --all-features -- [postgres|redis|redis-cluster|all] [--sagas N] [--reseed]
//! ```
//!
//! Data goes to its own namespace and is kept between runs (seeding is
//! skipped when it is already there): PostgreSQL schema `bench_<N>` in db
//! `test`, Redis db 1 prefix `bench<N>:`, Cluster prefix `bench<N>:`.
//! `--reseed` drops and rewrites it. One saga in ten ends `failed`.
//! `BENCH_PG_PARAMS=&sslmode=disable` appends URL parameters (a pool
//! connection opened mid-run costs a TLS handshake, ~100 ms in a debug
//! build); `BENCH_VERBOSE=1` prints every run.

use std::time::{Duration, Instant};

use serde_json::json;

use sagascope::model::{SagaStatus, Snapshot, Timestamp};
use sagascope::store::{open, OpenOptions, SagaFilter, SagaPageRequest, SnapshotStore, StoreUrl};

const STEPS: [&str; 5] = [
    "reserve_inventory",
    "charge_payment",
    "ship_order",
    "notify",
    "__completed__",
];

fn saga_snapshots(i: usize, base: Timestamp) -> Vec<Snapshot> {
    let saga_id =
        uuid::Uuid::from_u128(0x5a6a_0000_0000_4000_8000_0000_0000_0000 | i as u128).to_string();
    let end = match i % 10 {
        0 => SagaStatus::Failed,
        1 | 2 => SagaStatus::Executing,
        _ => SagaStatus::Completed,
    };
    (0..5)
        .map(|step| {
            let status = if step == 4 {
                end.clone()
            } else {
                SagaStatus::Executing
            };
            let mut context = serde_json::Map::new();
            context.insert("order_id".into(), json!(format!("o-{i}")));
            context.insert("amount".into(), json!(100 + i % 50));
            context.insert("step".into(), json!(step));
            let mut s = Snapshot::new(
                saga_id.clone(),
                if i.is_multiple_of(3) {
                    "RefundSaga"
                } else {
                    "OrderSaga"
                },
                STEPS[step],
                step as i64,
                status,
                context,
                STEPS[..step].iter().map(|s| s.to_string()).collect(),
            );
            // Sagas start one second apart; steps 100 ms apart.
            s.created_at = base.plus_micros(i as i64 * 1_000_000 + step as i64 * 100_000);
            s.retention_until = Some(Timestamp::now().plus_micros(30 * 86_400_000_000));
            s
        })
        .collect()
}

async fn seed(store: &dyn SnapshotStore, sagas: usize) {
    let base = Timestamp::parse("2026-01-01T00:00:00+00:00").unwrap_or_else(|_| Timestamp::now());
    let start = Instant::now();
    let chunk = 1000;
    for from in (0..sagas).step_by(chunk) {
        let batch: Vec<Snapshot> = (from..(from + chunk).min(sagas))
            .flat_map(|i| saga_snapshots(i, base))
            .collect();
        if let Err(e) = store.save_snapshots(&batch).await {
            eprintln!("seeding failed: {e}");
            std::process::exit(1);
        }
        if (from / chunk) % 10 == 9 {
            eprintln!("  {} sagas written ({:.0?})", from + chunk, start.elapsed());
        }
    }
    eprintln!(
        "  seeded {sagas} sagas × 5 snapshots in {:.1?}",
        start.elapsed()
    );
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "min {:.2} ms, median {:.2} ms, p95 {:.2} ms, max {:.2} ms ({} runs)",
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 95 / 100).min(v.len() - 1)]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

async fn measure(name: &str, store: &dyn SnapshotStore) {
    let filters = [
        ("sagas list", SagaFilter::default()),
        (
            "sagas list --status failed",
            SagaFilter {
                statuses: vec![SagaStatus::Failed],
                ..SagaFilter::default()
            },
        ),
    ];
    for (label, filter) in filters {
        let req = SagaPageRequest::default();
        let mut times = Vec::new();
        let mut page = None;
        for run in 0..21 {
            let t = Instant::now();
            let p = match store.list_sagas(&filter, &req).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{name}: {label}: {e}");
                    std::process::exit(1);
                }
            };
            if run > 0 {
                times.push(t.elapsed());
            }
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                eprintln!("    run {run}: {:.2?}", t.elapsed());
            }
            page = Some(p);
        }
        let p = page.unwrap_or_default();
        println!(
            "{name:14} {label:28} first page of {} sagas: {}{}",
            p.sagas.len(),
            stats(times),
            p.index_warning
                .map(|w| format!(" [warning: {w}]"))
                .unwrap_or_default()
        );
        // The next page, through the cursor, costs the same.
        if let Some(next) = p.next {
            let req = SagaPageRequest {
                limit: 50,
                after: Some(next),
            };
            let mut times = Vec::new();
            for _ in 0..10 {
                let t = Instant::now();
                let _ = store.list_sagas(&filter, &req).await;
                times.push(t.elapsed());
            }
            println!(
                "{name:14} {label:28} second page:              {}",
                stats(times)
            );
        }
    }
}

async fn run(backend: &str, sagas: usize, reseed: bool) {
    let url = match backend {
        "postgres" => format!(
            "postgres://postgres@127.0.0.1:5432/test?schema=bench_{sagas}{}",
            std::env::var("BENCH_PG_PARAMS").unwrap_or_default()
        ),
        "redis" => format!("redis://127.0.0.1:6379/1?prefix=bench{sagas}:"),
        "redis-cluster" => format!(
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002/?prefix=bench{sagas}:"
        ),
        other => {
            eprintln!("unknown backend {other}; use postgres, redis, redis-cluster or all");
            std::process::exit(2);
        }
    };
    let store = match open(&StoreUrl::new(url.clone()), &OpenOptions::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{backend}: {e}");
            std::process::exit(3);
        }
    };
    let have = store.count_sagas(&SagaFilter::default()).await.unwrap_or(0);
    if reseed && have > 0 {
        eprintln!("{backend}: deleting {have} sagas");
        let mut req = SagaPageRequest {
            limit: 1000,
            after: None,
        };
        loop {
            let Ok(p) = store.list_sagas(&SagaFilter::default(), &req).await else {
                break;
            };
            for s in &p.sagas {
                let _ = store.delete_saga(&s.saga_id).await;
            }
            if p.sagas.is_empty() {
                break;
            }
            req.after = None;
        }
    }
    if reseed || have < sagas as u64 {
        eprintln!("{backend}: seeding {url}");
        seed(store.as_ref(), sagas).await;
    } else {
        eprintln!("{backend}: {have} sagas already at {url}");
    }
    measure(backend, store.as_ref()).await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut backends = Vec::new();
    let mut sagas = 100_000usize;
    let mut reseed = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sagas" => sagas = it.next().and_then(|n| n.parse().ok()).unwrap_or(sagas),
            "--reseed" => reseed = true,
            "all" => backends.extend(["postgres", "redis", "redis-cluster"].map(String::from)),
            other => backends.push(other.to_string()),
        }
    }
    if backends.is_empty() {
        backends.extend(["postgres", "redis"].map(String::from));
    }
    for b in backends {
        run(&b, sagas, reseed).await;
    }
}
