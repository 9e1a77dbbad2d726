//! Drives the real App without a terminal: tests and the benchmark use
//! this. Keys go through `App::update`, background jobs run for real
//! against the given store, and frames are drawn on a `TestBackend`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use tokio::sync::mpsc::UnboundedReceiver;

use super::app::{Action, App, AppConfig};
use super::jobs::Jobs;
use super::keymap::{Key, Keymap};
use super::theme::Theme;
use super::view;
use crate::model::Timestamp;
use crate::store::SnapshotStore;

/// An App wired to a store and a fixed-size test terminal.
pub struct Harness {
    pub app: App,
    pub jobs: Jobs,
    pub rx: UnboundedReceiver<Action>,
    pub terminal: Terminal<TestBackend>,
}

/// A config for tests: default keys, dark theme, UTC.
pub fn test_config(store_label: &str, export_dir: std::path::PathBuf) -> AppConfig {
    AppConfig {
        store_label: store_label.to_string(),
        profile: None,
        readonly: false,
        local_time: false,
        keymap: Keymap::defaults(),
        theme: Theme::dark(),
        export_dir,
        definitions: Vec::new(),
        live: None,
        sensitive: None,
    }
}

impl Harness {
    /// Must be called inside a tokio runtime.
    pub fn new(
        store: Arc<dyn SnapshotStore>,
        cfg: AppConfig,
        now: Timestamp,
        width: u16,
        height: u16,
    ) -> Harness {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut jobs = Jobs::with_store(store, tx);
        jobs.set_sensitive(cfg.sensitive.clone());
        let app = App::new(cfg, now, (width, height));
        let terminal = match Terminal::new(TestBackend::new(width, height)) {
            Ok(t) => t,
            Err(never) => match never {},
        };
        Harness {
            app,
            jobs,
            rx,
            terminal,
        }
    }

    /// Sends queued requests to the background.
    pub fn flush(&mut self) {
        for r in self.app.take_requests() {
            self.jobs.spawn(r);
        }
    }

    /// Applies one action and starts the work it asks for.
    pub fn dispatch(&mut self, a: Action) {
        self.app.update(a);
        self.flush();
    }

    /// Runs background work until nothing is loading or waiting.
    /// Panics after 20 s (a hung job is a bug).
    pub async fn settle(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.flush();
            while let Ok(a) = self.rx.try_recv() {
                self.app.update(a);
                self.flush();
            }
            if !self.jobs.busy() && !self.app.loading() && self.rx.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the App did not settle within 20 s");
            if let Ok(Some(a)) =
                tokio::time::timeout(left.min(Duration::from_millis(50)), self.rx.recv()).await
            {
                self.app.update(a);
            }
        }
    }

    /// Presses keys named as in the keymap, separated by spaces
    /// (`"j j Enter"`, `"C-r"`, `"Space"`).
    pub fn keys(&mut self, keys: &str) {
        for k in keys.split_whitespace() {
            let key = Key::parse(k).unwrap_or_else(|e| panic!("{e}"));
            let ev = KeyEvent::new(key.code, key.mods);
            self.dispatch(Action::Key(ev));
        }
    }

    /// Types text into whatever input is open.
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.dispatch(Action::Key(KeyEvent::new(
                crossterm::event::KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
    }

    /// Draws a frame.
    pub fn draw(&mut self) {
        let app = &self.app;
        let _ = self.terminal.draw(|f| view::draw(f, app));
    }

    /// Draws and returns the frame as text, round-trip latency masked.
    pub fn frame(&mut self) -> String {
        self.draw();
        let buf = self.terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            for x in 0..buf.area.width {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        mask_latency(&out)
    }
}

/// Replaces `rtt 0.4ms` with a fixed text, so frames are deterministic.
pub fn mask_latency(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("rtt ") {
        out.push_str(&rest[..i + 4]);
        let after = &rest[i + 4..];
        match after.find("ms") {
            Some(j) if j <= 10 && after[..j].chars().all(|c| c.is_ascii_digit() || c == '.') => {
                out.push_str("#.#");
                out.push_str("ms");
                rest = &after[j + 2..];
            }
            _ => rest = after,
        }
    }
    out.push_str(rest);
    out
}
