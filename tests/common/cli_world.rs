//! The binary-driving world the replay tests share: a private data and
//! config folder, a store URL, the built `sagascope` run against it, and
//! the stores a test can run on. Included with `#[path]` by the tests that
//! drive the binary (it names the binary, so it is not in `common`).

#![allow(dead_code)]

use std::process::{Command, Output};

use serde_json::Value;

/// Prints a SKIP line that `cargo test` shows even for a passing test
/// (libtest captures `eprintln!`, not writes to the stderr handle).
macro_rules! skip_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub const BIN: &str = env!("CARGO_BIN_EXE_sagascope");

/// One test's private world: data and config dirs, a store URL (empty:
/// no `--store`, the embedded default under the data dir), and the
/// identity the replay log records.
pub struct World {
    pub dir: tempfile::TempDir,
    pub store: String,
    pub identity: &'static str,
}

impl World {
    pub fn sqlite() -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}/store.db", dir.path().display());
        World {
            dir,
            store,
            identity: "test-oncall",
        }
    }

    pub fn with_store(store: &str) -> World {
        World {
            dir: tempfile::tempdir().unwrap(),
            store: store.to_string(),
            identity: "test-oncall",
        }
    }

    /// No `--store`: the embedded default under the world's data dir.
    pub fn default_store() -> World {
        World::with_store("")
    }

    /// The same world, recording `identity` in the replay log.
    pub fn with_identity(self, identity: &'static str) -> World {
        World { identity, ..self }
    }

    /// A path in the world's dir.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        if !self.store.is_empty() {
            c.arg("--store").arg(&self.store);
        }
        c.args(args);
        super::common::isolate(&mut c, self.dir.path(), self.identity);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "sagascope {args:?} failed ({:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
    }

    pub fn sagas(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["sagas", "list", "--all", "--format", "json"];
        args.extend_from_slice(extra);
        self.json(&args)["sagas"].as_array().unwrap().clone()
    }

    pub fn snapshots(&self, saga: &str) -> Vec<Value> {
        self.json(&["snapshots", saga, "--format", "json"])["snapshots"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn replays(&self, saga: &str) -> Vec<Value> {
        self.json(&["replay", "history", saga, "--format", "json"])["replays"]
            .as_array()
            .unwrap()
            .clone()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A private namespace on each server the killed-replay tests run on.
pub fn namespaced_stores() -> Vec<(&'static str, String)> {
    let tag = super::common::unique_tag();
    vec![
        ("sqlite", String::new()),
        (
            "postgres",
            format!("postgres://postgres@127.0.0.1:5432/test?schema=t_{tag}"),
        ),
        ("redis", format!("redis://127.0.0.1:6379/?prefix=t:{tag}:")),
    ]
}

pub fn store_usable(backend: &str, url: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(sagascope::store::open(
        &sagascope::store::StoreUrl::new(url),
        &sagascope::store::OpenOptions::default(),
    ));
    match r {
        Ok(_) => true,
        // Built without the feature: nothing to test (default builds have it).
        Err(sagascope::store::StoreError::BackendNotBuilt { .. }) => {
            assert!(
                !super::common::backends_required(),
                "{backend} must be built in CI"
            );
            skip_line!("SKIP {backend}: built without the `{backend}` feature");
            false
        }
        Err(e) => super::common::backend_available(backend, &sagascope::store::redact(url), {
            eprintln!("{backend}: {e}");
            false
        }),
    }
}
