//! The built binary in a real terminal: a tmux server of the test's own,
//! keys sent as a user types them, the screen read back. Every wait polls
//! the screen until the expected text appears (or fails after a generous
//! deadline); nothing asserts on timing.

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
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("waited 15 s for {what}; the screen shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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
