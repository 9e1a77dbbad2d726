//! Fault injection with real servers: a private Redis and a private
//! PostgreSQL, each on a port of its own with its data in a temp folder,
//! killed and started again while the built binary works against them.
//! What is asserted is what a user would rely on: a command that loses its
//! store fails loudly (no hang, no "success", no file that passes for
//! complete), and running it again after the server is back gets
//! everything, with nothing done twice.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::PrivatePostgres;
use sagascope::store::{self, OpenOptions, SagaFilter, StoreUrl};

const BIN: &str = env!("CARGO_BIN_EXE_sagascope");

/// A server the test owns: started, killed (as a crash would), started
/// again on the same port with the same data.
trait Server {
    fn url(&self) -> String;
    fn kill(&mut self);
    fn start(&mut self);
}

/// `redis-server` with an append-only file synced on every write, so a
/// kill loses nothing that was acknowledged.
struct DurableRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl DurableRedis {
    fn new(dir: &Path) -> Option<DurableRedis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            common::backend_available("redis-server (binary)", "$PATH", false);
            return None;
        }
        let mut r = DurableRedis {
            port: common::free_port(),
            dir: dir.join("redis"),
            child: None,
        };
        std::fs::create_dir_all(&r.dir).unwrap();
        r.start();
        Some(r)
    }
}

impl Server for DurableRedis {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/?prefix=fault:", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn start(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        common::wait_port(self.port);
        // It answers LOADING while it replays its append-only file.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG");
            if pong {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not finish loading"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server for PrivatePostgres {
    fn url(&self) -> String {
        PrivatePostgres::url(self)
    }

    fn kill(&mut self) {
        PrivatePostgres::kill(self)
    }

    fn start(&mut self) {
        PrivatePostgres::start(self)
    }
}

fn sagascope(dir: &Path, store: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args).env("HOME", dir);
    common::isolate(&mut c, dir, "fault-injection");
    c
}

fn ok(dir: &Path, store: &str, args: &[&str]) -> String {
    let out = sagascope(dir, store, args).output().unwrap();
    assert!(
        out.status.success(),
        "sagascope {args:?}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits for a child with a deadline: a hang is a failure, not a stuck run.
fn wait_with_deadline(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {secs} s (a hang):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn count_sagas(url: &str) -> u64 {
    let s = store::open(&StoreUrl::new(url.to_string()), &OpenOptions::default())
        .await
        .unwrap();
    s.count_sagas(&SagaFilter::default()).await.unwrap()
}

/// 2,600 sagas of 8 snapshots; the server dies while `export` writes them.
/// The export fails (exit 3, no hang) and what it wrote is refused by
/// `import` as cut short; after a restart the same export gets every saga,
/// and an import of it holds all 2,600.
async fn export_across_a_restart(server: &mut dyn Server, dir: &Path) {
    const SAGAS: u64 = 2600;
    let url = server.url();
    ok(
        dir,
        &url,
        &[
            "dev",
            "seed",
            "--sagas",
            &SAGAS.to_string(),
            "--snapshots",
            "8",
        ],
    );
    assert_eq!(count_sagas(&url).await, SAGAS);

    let bundle = dir.join("cut.jsonl");
    let child = sagascope(dir, &url, &["export", "--all", "-o"])
        .arg(&bundle)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once the export has written part of the bundle.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&bundle).map_or(0, |m| m.len()) < 64 * 1024 {
        assert!(Instant::now() < deadline, "the export wrote nothing");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill();
    let out = wait_with_deadline(child, 120);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an export that lost its store exits 3: {stderr}"
    );
    assert!(!stderr.contains("exported"), "no success line: {stderr}");

    let target = format!("sqlite://{}/imported.db", dir.display());
    let imp = sagascope(dir, &target, &["import"])
        .arg(&bundle)
        .output()
        .unwrap();
    assert_eq!(
        imp.status.code(),
        Some(2),
        "a cut-short bundle is refused: {}",
        String::from_utf8_lossy(&imp.stderr)
    );

    server.start();
    let full = dir.join("full.jsonl");
    let out = sagascope(dir, &url, &["export", "--all", "-o"])
        .arg(&full)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(dir, &target, &["import", &full.display().to_string()]);
    assert_eq!(count_sagas(&target).await, SAGAS, "every saga, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_export_fails_loudly_and_a_rerun_exports_every_saga() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut redis) = DurableRedis::new(dir.path()) else {
        return;
    };
    export_across_a_restart(&mut redis, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_export_fails_loudly_and_a_rerun_exports_every_saga() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut pg) = PrivatePostgres::new(dir.path()) else {
        return;
    };
    export_across_a_restart(&mut pg, dir.path()).await;
}

/// The demo's failed orders replayed by one batch while Redis is killed
/// under it. The batch fails loudly; after a restart, the same batch and
/// `replay recover --resume` leave every failed order with exactly one
/// successful replay: none skipped, none charged twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_batch_then_rerun_and_recover_replays_each_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut redis) = DurableRedis::new(dir.path()) else {
        return;
    };
    batch_across_a_restart(&mut redis, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_batch_then_rerun_and_recover_replays_each_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut pg) = PrivatePostgres::new(dir.path()) else {
        return;
    };
    batch_across_a_restart(&mut pg, dir.path()).await;
}

async fn batch_across_a_restart(server: &mut dyn Server, dir: &Path) {
    use std::io::BufRead;
    let url = server.url();
    ok(
        dir,
        &url,
        &["demo", "--no-tui", "--orders", "40", "--trips", "0"],
    );
    let store = store::open(&StoreUrl::new(url.clone()), &OpenOptions::default())
        .await
        .unwrap();
    let failed_filter = SagaFilter {
        statuses: vec![sagascope::model::SagaStatus::RolledBack],
        name: Some("OrderSaga".into()),
        ..SagaFilter::default()
    };
    let failed: Vec<String> = store
        .list_sagas(
            &failed_filter,
            &sagascope::store::SagaPageRequest {
                limit: 1000,
                after: None,
            },
        )
        .await
        .unwrap()
        .sagas
        .into_iter()
        .map(|s| s.saga_id)
        .collect();
    assert!(failed.len() >= 5, "the demo leaves failed orders");
    let batch_args = [
        "batch",
        "--ids-from",
        "{ids}",
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
        "--concurrency",
        "1",
        "--lock-ttl",
        "2",
        "--reason",
        "fault injection",
    ];
    let ids_file = dir.join("ids.txt");
    std::fs::write(&ids_file, failed.join("\n")).unwrap();
    let args: Vec<String> = batch_args
        .iter()
        .map(|a| a.replace("{ids}", &ids_file.display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut child = sagascope(dir, &url, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server as soon as the first saga has been replayed.
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first batch item").unwrap();
    server.kill();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let out = wait_with_deadline(child, 120);
    assert!(
        !out.status.success(),
        "a batch that lost its store does not succeed; first item {first}, then {rest:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    server.start();
    // Past the lock TTL, so a replay the kill interrupted counts as abandoned.
    std::thread::sleep(Duration::from_secs(3));
    let again = sagascope(dir, &url, &args).output().unwrap();
    assert!(
        matches!(again.status.code(), Some(0 | 1 | 6)),
        "the re-run: {:?}\n{}",
        again.status.code(),
        String::from_utf8_lossy(&again.stderr)
    );
    let recover = sagascope(dir, &url, &["replay", "recover", "--resume"])
        .output()
        .unwrap();
    assert!(
        recover.status.success(),
        "replay recover --resume: {}",
        String::from_utf8_lossy(&recover.stderr)
    );
    // Once more: everything is done, so nothing runs.
    let third = sagascope(dir, &url, &args).output().unwrap();
    assert!(
        third.status.success(),
        "the third run: {}",
        String::from_utf8_lossy(&third.stderr)
    );

    let store = store::open(&StoreUrl::new(url.clone()), &OpenOptions::default())
        .await
        .unwrap();
    for id in &failed {
        let log = store.list_replays(id, None).await.unwrap().items;
        let done: Vec<_> = log
            .iter()
            .filter(|r| {
                r.replay_status == sagascope::model::ReplayStatus::Success && !r.is_dry_run()
            })
            .collect();
        assert_eq!(
            done.len(),
            1,
            "order {id}: exactly one successful replay, got {:?}",
            log.iter()
                .map(|r| (r.replay_status.as_str(), r.new_saga_id.as_str()))
                .collect::<Vec<_>>()
        );
        let new = store
            .saga_summary(&done[0].new_saga_id)
            .await
            .unwrap()
            .expect("the replay's new saga");
        assert_eq!(
            new.latest_status,
            sagascope::model::SagaStatus::Completed,
            "order {id}'s replay completed"
        );
    }
}
