//! The built binary in a real terminal: a tmux server of the test's own,
//! keys sent as a user types them, the screen read back. Every wait polls
//! the screen until the expected text appears (or fails after a generous
//! deadline); nothing asserts on timing.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    pub fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "main"]).stdout)
            .into_owned()
    }

    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(
            out.status.success(),
            "send-keys: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn send_text(&self, text: &str) {
        let out = self.cmd(&["send-keys", "-t", "main", "-l", text]);
        assert!(out.status.success());
    }

    /// Polls until the screen satisfies `pred`; panics with the screen after 15 s.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.capture();
            // A capture can land while a frame is being written (tmux 3.3
            // ignores synchronized updates): the screen counts once a
            // second capture, a moment later, shows the same frame.
            if pred(&screen) {
                std::thread::sleep(Duration::from_millis(60));
                let again = self.capture();
                if again == screen {
                    return screen;
                }
                continue;
            }
            if Instant::now() > deadline {
                panic!("waited 15 s for {what}; the screen shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `:saga <id>` and waits for the saga to open.
    pub fn open_saga(&self, saga_id: &str) {
        self.send(&[":"]);
        self.send_text(&format!("saga {saga_id}"));
        self.send(&["Enter"]);
        self.wait_for("the saga opened", |s| s.contains("opened saga"));
    }

    /// Moves right along the open saga's timeline (8 snapshots at the
    /// most) until the cursor is on `step`'s snapshot.
    pub fn scrub_to(&self, step: &str) {
        for k in 0..8 {
            let screen = self.wait_for("the next snapshot", |s| s.contains(&format!("#{k} ")));
            if screen.contains(&format!("#{k} {step}")) {
                return;
            }
            self.send(&["l"]);
        }
        panic!("no {step} snapshot:\n{}", self.capture());
    }

    /// Types `/<text>` and Enter: the list filtered by `text`.
    pub fn filter(&self, text: &str) {
        self.send(&["/"]);
        self.send_text(text);
        self.send(&["Enter"]);
    }

    /// Quits with `q` and waits for the alternate screen to close.
    pub fn quit(&self) {
        self.send(&["q"]);
        self.wait_for("the alternate screen to close", |_| {
            let alt = self.cmd(&["display-message", "-p", "-t", "main", "#{alternate_on}"]);
            String::from_utf8_lossy(&alt.stdout).trim() == "0"
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

pub fn tmux_works() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether tmux runs here (said once when it does not; see
/// `common::backend_available`).
pub fn tmux_available() -> bool {
    crate::common::backend_available("tmux", "tmux -V", tmux_works())
}

/// The last line of the screen: the footer.
pub fn footer(screen: &str) -> String {
    screen.trim_end().lines().last().unwrap_or("").to_string()
}

/// The environment of a private home under `dir`: the user's config and
/// data dir stay out of it (logs and exports land in `dir`).
pub fn home_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("HOME", dir.display().to_string()),
        ("XDG_CONFIG_HOME", dir.join("config").display().to_string()),
        ("XDG_DATA_HOME", dir.join("data").display().to_string()),
    ]
}

/// A temp dir that is a private home (`env_of` gives its environment)
/// with the SQLite store `db` in it: the dir, the environment, the store.
pub fn home_with_store(
    db: &str,
    env_of: fn(&Path) -> Vec<(&'static str, String)>,
) -> (tempfile::TempDir, Vec<(&'static str, String)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let env = env_of(dir.path());
    let store = format!("sqlite://{}", dir.path().join(db).display());
    (dir, env, store)
}

/// The id of the saga a finished replay made, as its panel names it.
pub fn new_saga_of(screen: &str) -> String {
    screen
        .split("new saga ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the new saga id")
        .to_string()
}

/// `home_env` with the replay log's identity set to `tmux-user`.
pub fn user_env(dir: &Path) -> Vec<(&'static str, String)> {
    let mut env = home_env(dir);
    env.push(("SAGASCOPE_IDENTITY", "tmux-user".into()));
    env
}

/// `sagascope <args>` with `env` (no store or read-only mode inherited
/// from the caller's environment); fails the test unless it succeeds, and
/// gives its stdout.
pub fn run_ok(bin: &str, env: &[(&str, String)], args: &[&str]) -> String {
    let out = Command::new(bin)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("SAGASCOPE_STORE")
        .env_remove("SAGASCOPE_READONLY")
        .args(args)
        .output()
        .expect("run sagascope");
    assert!(
        out.status.success(),
        "sagascope {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `run_ok` read as JSON (null where stdout is not JSON).
pub fn run_json(bin: &str, env: &[(&str, String)], args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&run_ok(bin, env, args)).unwrap_or(serde_json::Value::Null)
}

/// The demo (`orders` orders, `trips` trips; some fail and are
/// compensated) written into `store`, its definitions into the data dir
/// where the TUI finds them.
pub fn demo(bin: &str, env: &[(&str, String)], store: &str, orders: u32, trips: u32) {
    let (orders, trips) = (orders.to_string(), trips.to_string());
    run_ok(
        bin,
        env,
        &[
            "--store", store, "demo", "--no-tui", "--orders", &orders, "--trips", &trips,
        ],
    );
}

/// `dev seed` of `sagas` sagas of `snapshots` snapshots each into
/// `store`, with `more` arguments after those.
pub fn dev_seed(
    bin: &str,
    env: &[(&str, String)],
    store: &str,
    sagas: u32,
    snapshots: u32,
    more: &[&str],
) {
    let (sagas, snapshots) = (sagas.to_string(), snapshots.to_string());
    let mut args = vec![
        "--store",
        store,
        "dev",
        "seed",
        "--sagas",
        &sagas,
        "--snapshots",
        &snapshots,
    ];
    args.extend_from_slice(more);
    run_ok(bin, env, &args);
}

/// `sagas list --format json` with `args`, parsed.
pub fn list_json(
    bin: &str,
    env: &[(&str, String)],
    store: &str,
    args: &[&str],
) -> serde_json::Value {
    let mut all = vec!["--store", store, "sagas", "list", "--format", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&run_ok(bin, env, &all)).unwrap()
}

/// The saga ids of a `sagas list --format json` answer, in its order.
pub fn saga_ids(listed: &serde_json::Value) -> Vec<String> {
    listed["sagas"]
        .as_array()
        .expect("sagas")
        .iter()
        .map(|s| s["saga_id"].as_str().unwrap().to_string())
        .collect()
}

/// The id of the demo's rolled-back order.
pub fn failed_order(bin: &str, env: &[(&str, String)], store: &str) -> String {
    let listed = list_json(
        bin,
        env,
        store,
        &["--all", "--status", "rolled_back", "--name", "OrderSaga"],
    );
    listed["sagas"][0]["saga_id"]
        .as_str()
        .expect("the demo leaves a failed order")
        .to_string()
}

/// A tmux server of the test's own with `sagascope <args> tui` started in
/// it (160 × 45), `env` set for the binary only.
pub fn tui_in_tmux(bin: &str, env: &[(&str, String)], args: &[&str]) -> Tmux {
    let tmux = Tmux {
        socket: format!("sagascope-e2e-{}", crate::common::unique_tag()),
    };
    let out = tmux.cmd(&[
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "main",
        "-x",
        "160",
        "-y",
        "45",
        "sh",
    ]);
    assert!(
        out.status.success(),
        "tmux new-session: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let envs: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    let args: String = args.iter().map(|a| format!("'{a}' ")).collect();
    tmux.send_text(&format!("env {envs} '{bin}' {args}tui"));
    tmux.send(&["Enter"]);
    tmux
}
