//! TUI responsiveness: drives the real App (keys through `App::update`,
//! real background jobs, frames drawn on a TestBackend) over a SQLite store
//! of 100,000 sagas × 20 snapshots (1 KB contexts) plus sagas with 100 KB
//! and 1 MB contexts, and reports:
//!
//! - key press → finished frame (update + draw), p50/p99/max, while
//!   scrubbing timelines (the 1 MB sagas included), switching tabs and
//!   paging the saga list;
//! - background result → finished frame;
//! - time to the first frame and to the first frame with the list shown;
//! - resident memory (VmRSS, and VmHWM peak) from /proc/self/status.
//!
//! The store is generated once into `target/bench-data/` and reused.
//! `cargo bench --bench tui` (release). For a quick debug check with a
//! small store: `SAGASCOPE_BENCH_SAGAS=2000 cargo test --bench tui`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use sagascope::model::Timestamp;
use sagascope::seed::{self, SeedSpec};
use sagascope::store::sqlite::SqliteStore;
use sagascope::store::SnapshotStore;
use sagascope::tui::app::{Action, Load, Pane};
use sagascope::tui::keymap::Key;
use sagascope::tui::testing::{test_config, Harness};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn proc_status(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// CPU time this thread has used: the frame path's own cost, without the
/// time the OS gave other processes (the machine may be shared).
#[allow(unsafe_code)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Spec {
    sagas: usize,
    snapshots: usize,
    big_100k: usize,
    big_1m: usize,
}

impl Spec {
    fn tag(&self) -> String {
        format!(
            "{}x{}-1k+{}x100k+{}x1m-v1",
            self.sagas, self.snapshots, self.big_100k, self.big_1m
        )
    }
}

async fn ensure_data(spec: &Spec) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("tui-{}.db", spec.tag()));
    let done = path.with_extension("done");
    if done.exists() {
        return path;
    }
    let _ = std::fs::remove_file(&path);
    eprintln!("generating {} (once; reused afterwards)…", path.display());
    let started = Instant::now();
    let store = SqliteStore::open_path(path.clone(), false)
        .await
        .expect("open bench db");
    let main = SeedSpec {
        sagas: spec.sagas,
        snapshots_per_saga: spec.snapshots,
        context_bytes: 1024,
        failed_ratio: 0.2,
        seed: 1,
        start: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        saga_spacing_us: 5_000_000,
        step_spacing_us: 400_000,
    };
    let mut last = Instant::now();
    seed::seed(&store, &main, |done, total| {
        if last.elapsed() > Duration::from_secs(10) {
            eprintln!("  {done}/{total} sagas");
            last = Instant::now();
        }
    })
    .await
    .expect("seed");
    // The big ones are the newest, so they top the list.
    for (i, (n, bytes)) in [(spec.big_100k, 100_000usize), (spec.big_1m, 1_000_000usize)]
        .into_iter()
        .enumerate()
    {
        let big = SeedSpec {
            sagas: n,
            snapshots_per_saga: spec.snapshots,
            context_bytes: bytes,
            failed_ratio: 0.5,
            seed: 100 + i as u64,
            start: Timestamp::parse("2026-03-01T00:00:00Z")
                .unwrap()
                .plus_micros(i as i64 * 3_600_000_000),
            saga_spacing_us: 60_000_000,
            step_spacing_us: 1_000_000,
        };
        seed::seed(&store, &big, |_, _| {}).await.expect("seed big");
    }
    drop(store);
    std::fs::write(&done, spec.tag()).expect("mark bench data done");
    eprintln!("generated in {:.0}s", started.elapsed().as_secs_f64());
    path
}

struct Bench {
    h: Harness,
    key_frames: Vec<Duration>,
    key_cpu: Vec<Duration>,
    data_frames: Vec<Duration>,
    scrub_big: Vec<Duration>,
}

impl Bench {
    /// One key press: update, start its jobs, draw. Timed.
    fn press(&mut self, k: &str, big: bool) {
        let key = Key::parse(k).expect("key");
        let cpu = thread_cpu();
        let started = Instant::now();
        self.h
            .dispatch(Action::Key(KeyEvent::new(key.code, key.mods)));
        self.h.draw();
        let d = started.elapsed();
        self.key_cpu.push(thread_cpu().saturating_sub(cpu));
        if std::env::var_os("SAGASCOPE_BENCH_VERBOSE").is_some() && d > Duration::from_millis(8) {
            let t = self.h.app.timeline.as_ref();
            eprintln!(
                "slow key {k:?}: {:.1} ms (tab {:?}, cursor {:?}, list {})",
                ms(d),
                self.h.app.detail.tab,
                t.map(|t| t.cursor),
                self.h.app.list.sagas.len()
            );
        }
        self.key_frames.push(d);
        if big {
            self.scrub_big.push(d);
        }
    }

    /// Lets background work land for a while, drawing as the loop would.
    async fn idle(&mut self, for_: Duration) {
        let until = Instant::now() + for_;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if let Ok(Some(a)) = tokio::time::timeout(left, self.h.rx.recv()).await {
                let started = Instant::now();
                self.h.app.update(a);
                self.h.flush();
                self.h.draw();
                self.data_frames.push(started.elapsed());
            }
        }
    }

    async fn until(&mut self, what: &str, pred: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !pred(&self.h) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.idle(Duration::from_millis(5)).await;
        }
    }
}

fn main() {
    let spec = Spec {
        sagas: env_usize("SAGASCOPE_BENCH_SAGAS", 100_000),
        snapshots: env_usize("SAGASCOPE_BENCH_SNAPSHOTS", 20),
        big_100k: 3,
        big_1m: 2,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = rt.block_on(ensure_data(&spec));
    if std::env::var_os("SAGASCOPE_BENCH_CHILD").is_none() {
        // Measure in a fresh process, so seeding does not count towards memory.
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(std::env::args().skip(1))
            .env("SAGASCOPE_BENCH_CHILD", "1")
            .status()
            .expect("run the measuring process");
        std::process::exit(status.code().unwrap_or(1));
    }
    rt.block_on(measure(&spec, path));
}

async fn measure(spec: &Spec, path: PathBuf) {
    let rss_before = proc_status("VmRSS:").unwrap_or(0);
    let start = Instant::now();
    let store: Arc<dyn SnapshotStore> = Arc::new(
        SqliteStore::open_path(path.clone(), true)
            .await
            .expect("open"),
    );
    let h = Harness::new(
        store,
        test_config("sqlite bench", std::env::temp_dir()),
        Timestamp::now(),
        160,
        45,
    );
    let mut b = Bench {
        h,
        key_frames: Vec::new(),
        key_cpu: Vec::new(),
        data_frames: Vec::new(),
        scrub_big: Vec::new(),
    };
    b.h.flush();
    b.h.draw();
    let first_frame = start.elapsed();
    b.until("the list", |h| !h.app.list.sagas.is_empty()).await;
    let list_frame = start.elapsed();
    b.until("the first detail", |h| h.app.detail.rendered.is_some())
        .await;
    let detail_frame = start.elapsed();

    // Scrub the big sagas (top of the list) and a spread of ordinary ones.
    let sagas_to_visit = 25;
    for s in 0..sagas_to_visit {
        let big = s < spec.big_100k + spec.big_1m;
        if s > 0 {
            b.press("j", false);
        }
        b.until("the timeline", |h| {
            h.app
                .timeline
                .as_ref()
                .is_some_and(|t| t.complete && t.load == Load::Idle)
        })
        .await;
        b.press("Enter", false);
        assert_eq!(b.h.app.focus, Pane::Timeline);
        for _ in 0..spec.snapshots.saturating_sub(1) {
            b.press("l", big);
            b.idle(Duration::from_millis(8)).await;
        }
        for k in ["2", "h", "h", "h", "3", "1", "g", "]", "[", "G", "2"] {
            b.press(k, big);
            b.idle(Duration::from_millis(8)).await;
        }
        // Fast scrubbing: no pause between keys (key repeat).
        for _ in 0..spec.snapshots.saturating_sub(1) {
            b.press("h", big);
        }
        b.idle(Duration::from_millis(20)).await;
        b.press("1", false);
        b.press("Esc", false);
        assert_eq!(b.h.app.focus, Pane::List);
    }
    // Page through the list lazily: 3,000 sagas with PageDown.
    let mut pages = 0;
    while b.h.app.list.selected < 3_000.min(spec.sagas) && pages < 400 {
        b.press("PageDown", false);
        b.idle(Duration::from_millis(2)).await;
        pages += 1;
    }
    b.until("the last page", |h| h.app.list.load != Load::Loading)
        .await;
    let loaded = b.h.app.list.sagas.len();

    let rss = proc_status("VmRSS:").unwrap_or(0);
    let hwm = proc_status("VmHWM:").unwrap_or(0);
    let mut keys = b.key_frames.clone();
    keys.sort();
    let mut cpu = b.key_cpu.clone();
    cpu.sort();
    let mut big = b.scrub_big.clone();
    big.sort();
    let mut data = b.data_frames.clone();
    data.sort();
    println!("sagascope TUI benchmark");
    println!("  store: {} ({})", path.display(), spec.tag());
    println!(
        "  first frame: {:.1} ms; list shown: {:.1} ms; first detail: {:.1} ms",
        ms(first_frame),
        ms(list_frame),
        ms(detail_frame)
    );
    println!(
        "  key → frame: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        keys.len(),
        ms(pct(&keys, 0.5)),
        ms(pct(&keys, 0.99)),
        ms(pct(&keys, 1.0))
    );
    println!(
        "  key → frame, CPU time of the UI thread: p50={:.2} ms p99={:.2} ms max={:.2} ms",
        ms(pct(&cpu, 0.5)),
        ms(pct(&cpu, 0.99)),
        ms(pct(&cpu, 1.0))
    );
    println!(
        "  key → frame on 100 KB / 1 MB sagas: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        big.len(),
        ms(pct(&big, 0.5)),
        ms(pct(&big, 0.99)),
        ms(pct(&big, 1.0))
    );
    println!(
        "  result → frame: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        data.len(),
        ms(pct(&data, 0.5)),
        ms(pct(&data, 0.99)),
        ms(pct(&data, 1.0))
    );
    println!("  list paged lazily: {loaded} sagas loaded after {pages} PageDown");
    println!(
        "  memory: VmRSS {} MB now, VmHWM {} MB peak (before opening: {} MB)",
        rss / 1024,
        hwm / 1024,
        rss_before / 1024
    );
}
