//! What is at a path is not always a file: a FIFO, a directory, a broken
//! symbolic link or a huge file where a snapshot should be, and
//! `/dev/zero` or a FIFO given as an override. Every command finishes,
//! names what it could not read, and never holds more than the documented
//! caps in memory. Each command runs under a timeout (a hang fails the
//! test instead of blocking it) and, where the old behaviour was to read
//! without end, under an address-space limit (so it fails instead of
//! exhausting the machine).

#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_sagascope");
/// Far above what any of these commands needs; a hang ends here.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Address space for the child, in KiB: plenty for sagascope, far below
/// what reading `/dev/zero` or a 3 GiB file whole would take.
const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;

/// One test's private world: a store URL and isolated config/data dirs.
struct World {
    dir: tempfile::TempDir,
    store: String,
}

impl World {
    fn folder() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("file://{}/store", dir.path().display());
        World { dir, store }
    }

    fn sqlite() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}/store.db", dir.path().display());
        World { dir, store }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Runs sagascope under the address-space limit, killed at the timeout.
    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" \"$@\""
            ))
            .arg(BIN)
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("SAGASCOPE_LOG", "off")
            .env_remove("SAGASCOPE_STORE")
            .env_remove("SAGASCOPE_CONFIG")
            .env_remove("SAGASCOPE_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        let pid = child.id();
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!(
                    "sagascope {args:?} did not finish in {:?}: it hangs",
                    started.elapsed()
                );
            }
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "{args:?}: {}", describe(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Seeds one saga of `n` snapshots and returns its id and snapshot
    /// ids, oldest first.
    fn one_saga(&self, n: usize) -> (String, Vec<String>) {
        self.ok(&[
            "dev",
            "seed",
            "--sagas",
            "1",
            "--snapshots",
            &n.to_string(),
            "--failed-ratio",
            "0",
        ]);
        let list: Value =
            serde_json::from_str(&self.ok(&["sagas", "list", "--format", "json"])).unwrap();
        let saga = list["sagas"][0]["saga_id"].as_str().unwrap().to_string();
        let snaps: Value =
            serde_json::from_str(&self.ok(&["snapshots", &saga, "--format", "json"])).unwrap();
        let ids = snaps["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["snapshot_id"].as_str().unwrap().to_string())
            .collect();
        (saga, ids)
    }

    fn snapshot_file(&self, saga: &str, id: &str) -> PathBuf {
        self.root().join(format!("snapshots/{saga}/{id}.json"))
    }
}

fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

/// Replaces four snapshot files with a FIFO, a directory, a dangling
/// symbolic link and a symbolic link loop; returns their ids.
fn plant_non_files(w: &World, saga: &str, ids: &[String]) -> Vec<String> {
    let victims: Vec<String> = [1, 2, 4, 5].iter().map(|&i| ids[i].clone()).collect();
    let paths: Vec<PathBuf> = victims.iter().map(|id| w.snapshot_file(saga, id)).collect();
    for p in &paths {
        std::fs::remove_file(p).unwrap();
    }
    mkfifo(&paths[0]);
    std::fs::create_dir(&paths[1]).unwrap();
    symlink(w.dir.path().join("nowhere.json"), &paths[2]).unwrap();
    symlink(&paths[3], &paths[3]).unwrap();
    victims
}

fn assert_names_each(o: &Output, victims: &[String], why: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    for (id, what) in victims.iter().zip(why) {
        let line = err
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} ({what}) is not named:\n{}", describe(o)));
        assert!(
            line.contains("not a regular file") && line.contains(what),
            "{id} should be named as {what}: {line}"
        );
    }
}

#[test]
fn fifo_directory_and_broken_links_in_a_folder_store_are_named_bad_entries_and_nothing_hangs() {
    let w = World::folder();
    let (saga, ids) = w.one_saga(8);
    assert_eq!(ids.len(), 8);
    let victims = plant_non_files(&w, &saga, &ids);
    let why = [
        "a FIFO",
        "a directory",
        "a dangling symbolic link",
        "a symbolic link loop",
    ];

    let snaps = w.run(&["snapshots", &saga]);
    assert_eq!(snaps.status.code(), Some(1), "{}", describe(&snaps));
    let table = String::from_utf8_lossy(&snaps.stdout);
    // The readable ones, and each broken one in its place in the timeline.
    assert_eq!(
        table.lines().count(),
        1 + 4 + victims.len(),
        "header + the 4 readable snapshots + the broken ones:\n{table}"
    );
    assert_eq!(
        table.matches("(unreadable)").count(),
        victims.len(),
        "{table}"
    );
    assert_names_each(&snaps, &victims, &why);

    let json = w.run(&["snapshots", &saga, "--format", "json"]);
    assert_eq!(json.status.code(), Some(1), "{}", describe(&json));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["snapshots"].as_array().unwrap().len(), 4);
    assert_eq!(json["bad_entries"].as_array().unwrap().len(), 4);

    let diff = w.run(&["diff", &saga, "0", "-1"]);
    assert_eq!(diff.status.code(), Some(1), "{}", describe(&diff));
    assert_names_each(&diff, &victims, &why);

    let bundle = w.dir.path().join("bundle.jsonl");
    let export = w.run(&["export", &saga, "-o", bundle.to_str().unwrap()]);
    assert_eq!(export.status.code(), Some(1), "{}", describe(&export));
    assert_names_each(&export, &victims, &why);
    let lines = std::fs::read_to_string(&bundle).unwrap();
    assert_eq!(
        lines.lines().count(),
        1 + 4 + 1,
        "header + 4 snapshots + end line"
    );

    // The saga list still shows the saga.
    assert!(w.ok(&["sagas", "list"]).contains(&saga));
}

#[test]
fn a_snapshot_file_over_the_cap_is_refused_unread() {
    let w = World::folder();
    let (saga, ids) = w.one_saga(3);
    // Sparse: 3 GiB on paper, nothing on disk. Reading it whole would take
    // 3 GiB of memory (over the child's address-space limit).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(w.snapshot_file(&saga, &ids[1]))
        .unwrap();
    f.set_len(3 << 30).unwrap();
    drop(f);
    let o = w.run(&["snapshots", &saga]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains(&ids[1]))
        .unwrap_or_else(|| panic!("{} not named:\n{}", ids[1], describe(&o)));
    assert!(line.contains("64 MiB cap"), "{line}");
    // Header, the two readable snapshots, and the refused one in its place.
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(table.lines().count(), 1 + 3, "{table}");
    assert_eq!(table.matches("(unreadable)").count(), 1, "{table}");
}

#[test]
fn a_zstd_bomb_is_a_bad_entry_not_gigabytes_of_memory() {
    use std::io::Write;
    let w = World::folder();
    let (saga, ids) = w.one_saga(3);
    // 1 GiB of spaces, streamed (no size in the frame header): ~100 KB.
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    let chunk = vec![b' '; 1 << 20];
    enc.write_all(b"{\"snapshot_id\": \"").unwrap();
    for _ in 0..1024 {
        enc.write_all(&chunk).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    std::fs::write(w.snapshot_file(&saga, &ids[1]), &bomb).unwrap();
    let o = w.run(&["snapshots", &saga]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains(&ids[1]))
        .unwrap_or_else(|| panic!("{} not named:\n{}", ids[1], describe(&o)));
    assert!(line.contains("128 MiB cap once decompressed"), "{line}");
}

#[test]
fn override_file_dev_zero_stops_at_the_cap_with_exit_2() {
    let w = World::sqlite();
    let (saga, _) = w.one_saga(2);
    let o = w.run(&[
        "replay",
        "run",
        &saga,
        "--from-step",
        "step_1",
        "--override-file",
        "/dev/zero",
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("16 MiB cap"), "{err}");
    assert!(err.contains("/dev/zero"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn override_file_that_is_a_fifo_nobody_writes_is_an_error_not_a_hang() {
    let w = World::sqlite();
    let (saga, _) = w.one_saga(2);
    let fifo = w.dir.path().join("override.fifo");
    mkfifo(&fifo);
    let o = w.run(&[
        "replay",
        "run",
        &saga,
        "--from-step",
        "step_1",
        "--override-file",
        fifo.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("override.fifo"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn override_file_from_a_pipe_with_a_writer_still_works() {
    // `--override-file <(jq …)`: a pipe, read to its end.
    let w = World::sqlite();
    let (saga, _) = w.one_saga(2);
    let o = Command::new("sh")
        .arg("-c")
        .arg(
            "echo '{\"payment_token\": \"tok_pipe\"}' | \"$0\" --store \"$1\" replay run \"$2\" \
             --from-step step_1 --override-file /dev/stdin --dry-run --format json",
        )
        .arg(BIN)
        .arg(&w.store)
        .arg(&saga)
        .env("XDG_DATA_HOME", w.dir.path().join("data"))
        .env("XDG_CONFIG_HOME", w.dir.path().join("config"))
        .env("SAGASCOPE_LOG", "off")
        .output()
        .unwrap();
    // The override is read first (a bad one is exit 2 before anything
    // else); this store has no definition for the saga, which comes next.
    assert_eq!(o.status.code(), Some(8), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no definition"),
        "{}",
        describe(&o)
    );
}
