//! Browsing speed of the embedded SQLite store: the first page of the saga
//! list (all, and `--status failed`) and time-travel answers, over 1,000
//! sagas × 20 snapshots — through the library and through the binary.
//!
//! Run: `cargo bench --bench sqlite_browse` (results also written to
//! target/bench-results/sqlite_browse.json). Set SAGASCOPE_BENCH_SAGAS /
//! SAGASCOPE_BENCH_SNAPSHOTS to change the size.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sagascope::model::{SagaStatus, Timestamp};
use sagascope::replay;
use sagascope::seed::{self, SeedSpec};
use sagascope::store::{sqlite::SqliteStore, SagaFilter, SagaPageRequest, SnapshotStore};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self
            .samples
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i]
    }
    fn line(&self) -> String {
        format!(
            "{:<44} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
            self.name,
            self.samples.len(),
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0)
        )
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "n": self.samples.len(), "p50_ms": self.pct(0.5), "p99_ms": self.pct(0.99), "max_ms": self.pct(1.0)})
    }
}

fn main() {
    let sagas = env_usize("SAGASCOPE_BENCH_SAGAS", 1000);
    let snaps = env_usize("SAGASCOPE_BENCH_SNAPSHOTS", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let spec = SeedSpec {
        sagas,
        snapshots_per_saga: snaps,
        context_bytes: 1024,
        failed_ratio: 0.2,
        start: Timestamp::parse("2026-01-01T00:00:00Z").expect("time"),
        ..SeedSpec::default()
    };
    let mut results = Vec::new();
    let (store, first_times) = rt.block_on(async {
        let store: Arc<dyn SnapshotStore> = Arc::new(
            SqliteStore::open_path(path.clone(), false)
                .await
                .expect("open"),
        );
        let t = Instant::now();
        seed::seed(store.as_ref(), &spec, |_, _| {})
            .await
            .expect("seed");
        println!(
            "seeded {sagas} sagas x {snaps} snapshots (1 KB contexts) in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        // (saga id, first snapshot time) pairs to time-travel into.
        let mut pairs = Vec::new();
        for i in (0..sagas).step_by((sagas / 200).max(1)) {
            let (s, _) = seed::saga_snapshots(&spec, spec.seed, i);
            pairs.push((
                s[0].saga_id.clone(),
                s[0].created_at,
                s[s.len() - 1].created_at,
            ));
        }
        (store, pairs)
    });

    let mut bench = |name: &str, n: usize, f: &mut dyn FnMut(usize)| {
        for i in 0..n.min(20) {
            f(i); // warm-up
        }
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            f(i);
            samples.push(t.elapsed());
        }
        let s = Stats {
            name: name.into(),
            samples,
        };
        println!("{}", s.line());
        results.push(s.json());
    };

    let page = SagaPageRequest {
        limit: 50,
        after: None,
    };
    bench("library: list_sagas first page (50)", 500, &mut |_| {
        let p = rt
            .block_on(store.list_sagas(&SagaFilter::default(), &page))
            .expect("list");
        assert_eq!(p.sagas.len(), 50.min(sagas));
    });
    let failed = SagaFilter {
        statuses: vec![SagaStatus::Failed],
        ..SagaFilter::default()
    };
    bench("library: list_sagas --status failed (50)", 500, &mut |_| {
        let p = rt.block_on(store.list_sagas(&failed, &page)).expect("list");
        assert!(!p.sagas.is_empty());
    });
    bench("library: time travel state_at (mid-saga)", 1000, &mut |i| {
        let (id, first, last) = &first_times[i % first_times.len()];
        let mid = Timestamp::from_micros((first.as_micros() + last.as_micros()) / 2).expect("time");
        let s = rt
            .block_on(replay::state_at(store.as_ref(), id, mid))
            .expect("state");
        assert!(s.step_index > 0);
    });
    bench("library: time travel at first snapshot", 1000, &mut |i| {
        let (id, first, _) = &first_times[i % first_times.len()];
        let s = rt
            .block_on(replay::state_at(store.as_ref(), id, *first))
            .expect("state");
        assert_eq!(s.step_index, 0);
    });

    // The whole command, as a person runs it: process start, config, open,
    // query, print.
    let exe = env!("CARGO_BIN_EXE_sagascope");
    let url = format!("sqlite://{}", path.display());
    let run = |args: &[&str]| {
        let out = Command::new(exe)
            .arg("--store")
            .arg(&url)
            .args(args)
            .env("SAGASCOPE_LOG", "off")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    bench("binary: sagas list (first page)", 50, &mut |_| {
        run(&["sagas", "list"])
    });
    bench("binary: sagas list --status failed", 50, &mut |_| {
        run(&["sagas", "list", "--status", "failed"])
    });
    bench("binary: replay time-travel --at", 50, &mut |i| {
        let (id, first, _) = &first_times[i % first_times.len()];
        run(&[
            "replay",
            "time-travel",
            id,
            "--at",
            &first.to_isoformat(),
            "--format",
            "json",
        ])
    });

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(
        out.join("sqlite_browse.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({"sagas": sagas, "snapshots_per_saga": snaps, "results": results}),
        )
        .unwrap_or_default(),
    );
}
