//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// Prints a SKIP line that `cargo test` shows even for a passing test
/// (libtest captures `eprintln!`, not writes to the stderr handle).
macro_rules! skip_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sagascope::model::{SagaStatus, Snapshot, Timestamp};

/// Whether this run must have every backend (CI sets `CI=true`).
pub fn backends_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Decides what to do when a test's server is not answering: in CI, fail;
/// elsewhere, print a clear skip line and let the test return early.
///
/// Returns `true` when the test should go on.
pub fn backend_available(backend: &str, url_for_message: &str, reachable: bool) -> bool {
    if reachable {
        return true;
    }
    if backends_required() {
        panic!("{backend} is required in CI but is not answering at {url_for_message}; .ci/run should have started it");
    }
    skip_line!(
        "SKIP {backend}: not answering at {url_for_message} (set CI=true to make this a failure)"
    );
    false
}

/// Whether a TCP port on loopback accepts connections.
pub fn tcp_open(addr: &str) -> bool {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| {
            std::net::TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok()
        })
}

/// A short unique tag for namespacing test data (key prefixes, schemas).
pub fn unique_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

pub fn ctx(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("context must be an object"),
    }
}

/// A base instant tests count from (whole second, so `+00:00` with no
/// fraction appears too).
pub fn t0() -> Timestamp {
    Timestamp::parse("2026-03-01T12:00:00+00:00").unwrap()
}

/// A snapshot of `saga_id` at step `i` of a three-step OrderSaga, `us`
/// microseconds after [`t0`].
pub fn snap(saga_id: &str, i: i64, us: i64) -> Snapshot {
    let steps = ["reserve_inventory", "charge_payment", "ship_order"];
    let mut s = Snapshot::new(
        saga_id,
        "OrderSaga",
        steps[(i as usize) % steps.len()],
        i,
        SagaStatus::Executing,
        ctx(json!({"order_id": saga_id, "step": i, "amount": 100 + i})),
        steps[..(i as usize).min(steps.len())]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    );
    s.created_at = t0().plus_micros(us);
    s.retention_until = Some(s.created_at.plus_micros(30 * 86_400_000_000));
    s
}

/// A fresh saga id.
pub fn saga_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// How many snapshots the store's summary of `saga_id` counts (panics when
/// the saga has no summary).
pub async fn summary_count(store: &dyn sagascope::store::SnapshotStore, saga_id: &str) -> u64 {
    store
        .saga_summary(saga_id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no summary for saga {saga_id}"))
        .snapshot_count
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A private, throw-away `redis-server` (no persistence) on a port of its
/// own, for tests that stop and restart a server; killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts one on a free port; `None` (after a SKIP line, or a panic
    /// under CI) when `redis-server` is not installed.
    pub fn start() -> Option<PrivateRedis> {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
        };
        if !r.restart() {
            return None;
        }
        Some(r)
    }

    /// Starts (again) on the same port; `false` when it could not.
    pub fn restart(&mut self) -> bool {
        self.stop();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(child) = child else {
            return backend_available("redis-server (binary)", "$PATH", false);
        };
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        for _ in 0..100 {
            if tcp_open(&addr) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on {addr}");
    }

    /// Kills it and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("redis://127.0.0.1:{}/?prefix={prefix}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until something accepts connections on a loopback port.
pub fn wait_port(port: u16) {
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !tcp_open(&addr) {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing answers at {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PostgreSQL cluster of its own (`initdb` in a temp folder, run as the
/// `postgres` account when the tests run as root), stopped with
/// `pg_ctl -m immediate`: no shutdown checkpoint, as a crash.
pub struct PrivatePostgres {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl PrivatePostgres {
    pub fn new(dir: &Path) -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .find(|p| p.join("initdb").exists())
        });
        let Some(bin) = bin else {
            backend_available("postgres (initdb)", "/usr/lib/postgresql/*/bin", false);
            return None;
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let data = dir.join("pg");
        std::fs::create_dir_all(&data).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster folder to postgres");
        }
        let pg = PrivatePostgres {
            port: free_port(),
            data,
            bin,
            as_postgres,
        };
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = pg;
        pg.start();
        Some(pg)
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run a PostgreSQL tool")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn kill(&mut self) {
        let data = self.data.display().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    pub fn start(&mut self) {
        let data = self.data.display().to_string();
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port, data
        );
        let log = format!("{data}/server.log");
        let out = self.run(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_port(self.port);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes `cmd` (a sagascope process) independent of the shell that runs the
/// tests: its config and data folders are under `home`, no `SAGASCOPE_*`
/// store, config, profile or read-only setting leaks in, it acts as
/// `identity` and reads nothing from stdin (callers may set it again).
pub fn isolate<'a>(cmd: &'a mut Command, home: &Path, identity: &str) -> &'a mut Command {
    cmd.env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("SAGASCOPE_IDENTITY", identity)
        .env_remove("SAGASCOPE_STORE")
        .env_remove("SAGASCOPE_CONFIG")
        .env_remove("SAGASCOPE_PROFILE")
        .env_remove("SAGASCOPE_READONLY")
        .stdin(Stdio::null())
}

/// The columns of sagaz's `saga_snapshots` table, in its order.
pub const SAGAZ_COLUMNS: [&str; 10] = [
    "snapshot_id",
    "saga_id",
    "saga_name",
    "step_name",
    "step_index",
    "status",
    "context",
    "completed_steps",
    "created_at",
    "retention_until",
];
