//! The full-screen terminal UI: browse sagas, scrub timelines, diff
//! contexts, travel in time.
//!
//! The Elm shape: [`app::App`] holds the state, every input becomes an
//! [`Action`], `App::update` changes state, [`view::draw`] draws from
//! state only. Store access runs in [`jobs`] (background tasks that report
//! back as actions); one `tokio::select!` loop ([`run_loop`]) feeds input,
//! data and ticks to the App and draws once per pass. The loop takes any
//! stream of actions, so tests and benchmarks drive the real App.
//!
//! Modules depend downwards only: [`messages`] (what the App and the jobs
//! say to each other) and [`layout`] (the screen's geometry) at the bottom
//! with [`content`], [`keymap`], [`theme`], [`editor`] and [`masking`]; [`jobs`] and
//! [`app`] above them, neither importing the other; [`view`] draws the
//! App; this module runs them all.

pub mod app;
pub mod content;
pub mod editor;
pub mod jobs;
pub mod keymap;
pub mod layout;
pub mod masking;
pub mod messages;
#[doc(hidden)]
pub mod testing;
pub mod theme;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Settings;
use crate::model::Timestamp;

pub use app::{App, AppConfig};
pub use jobs::Jobs;
pub use keymap::Keymap;
pub use messages::Action;
pub use theme::Theme;

/// How often the clock ticks (ages, retry countdown, health checks; live
/// updates tick faster when asked to).
const TICK: Duration = Duration::from_millis(500);
/// How often new sagas and snapshots are looked for by default.
pub const LIVE_DEFAULT: Duration = Duration::from_secs(1);
/// The same on S3: each look at the saga list is a listing of the bucket's
/// summaries (two listings per 1,000 sagas), paid per request.
pub const LIVE_DEFAULT_S3: Duration = Duration::from_secs(10);

/// Why the terminal UI could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// Standard output is not a terminal.
    #[error(
        "the terminal UI needs a terminal; use the headless commands (`sagascope --help`) in scripts"
    )]
    NoTerminal,
    /// The `[tui]` configuration (keys, theme) is invalid.
    #[error("config {section}: {message}")]
    Config {
        section: &'static str,
        message: String,
    },
    #[error("cannot start the terminal UI: {0}")]
    Start(#[source] std::io::Error),
    #[error("cannot restart the terminal UI: {0}")]
    Restart(#[source] std::io::Error),
    #[error("terminal error: {0}")]
    Terminal(#[source] std::io::Error),
}

/// The App's settings from the configuration in force.
pub fn app_config(settings: &Settings) -> Result<AppConfig, TuiError> {
    let keymap = Keymap::load(&settings.file.tui.keys).map_err(|e| TuiError::Config {
        section: "[tui.keys]",
        message: e.to_string(),
    })?;
    let theme =
        Theme::load(settings.file.tui.theme.as_deref(), Theme::no_color_env()).map_err(|e| {
            TuiError::Config {
                section: "[tui] theme",
                message: e.to_string(),
            }
        })?;
    Ok(AppConfig {
        store_label: settings.store.redacted(),
        profile: settings.profile.clone(),
        readonly: settings.readonly,
        local_time: settings.file.tui.local_time.unwrap_or(false),
        keymap,
        theme,
        definitions: Vec::new(),
        live: live_interval(
            settings.file.tui.live_interval_secs,
            settings.store.expose(),
        )?,
        // Exports go under the data dir, never wherever the TUI happened
        // to be started; the footer names the file.
        export_dir: crate::config::data_dir().join("exports"),
        sensitive: sensitive_paths(&settings.file.compliance)?,
    })
}

/// The patterns the store masks with (what `open_store` wraps it in), or
/// `None` when it masks nothing.
fn sensitive_paths(
    cfg: &crate::compliance::ComplianceConfig,
) -> Result<masking::Sensitive, TuiError> {
    if !cfg.mask.unwrap_or(true) {
        return Ok(None);
    }
    let paths =
        crate::compliance::SensitivePaths::parse(&cfg.sensitive).map_err(|e| TuiError::Config {
            section: "[compliance] sensitive",
            message: e.to_string(),
        })?;
    Ok((!paths.is_empty()).then(|| Arc::new(paths)))
}

/// Live updates every second unless configured otherwise (every
/// [`LIVE_DEFAULT_S3`] on S3, where listing sagas lists the bucket); 0
/// turns them off.
fn live_interval(secs: Option<f64>, store_url: &str) -> Result<Option<Duration>, TuiError> {
    match secs {
        None if store_url.starts_with("s3://") => Ok(Some(LIVE_DEFAULT_S3)),
        None => Ok(Some(LIVE_DEFAULT)),
        Some(0.0) => Ok(None),
        Some(s) if (0.05..=86_400.0).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(TuiError::Config {
            section: "[tui] live_interval_secs",
            message: format!("{s} is not 0 (off) or between 0.05 and 86400 seconds"),
        }),
    }
}

/// Runs the terminal UI on the settings' store until the user quits. The
/// terminal is restored on quit, on error and on panic.
pub async fn run(settings: &Settings) -> Result<(), TuiError> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return Err(TuiError::NoTerminal);
    }
    let settings = settings.clone();
    let mut cfg = app_config(&settings)?;
    // Browsing never needs definitions: a broken definition folder only
    // disables replays (and says so when one is asked for).
    let definitions = match settings.load_definitions(&[]) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("definitions not loaded, replays disabled: {e}");
            crate::engine::Definitions::new()
        }
    };
    cfg.definitions = definitions.names();
    let replay_env = jobs::ReplayEnv {
        definitions: Arc::new(definitions),
        identity: settings.identity.clone(),
        lock_ttl: settings
            .lock_ttl(None)
            .unwrap_or(crate::replay::DEFAULT_LOCK_TTL),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opener: jobs::Opener = {
        let settings = settings.clone();
        Arc::new(move || {
            let settings = settings.clone();
            Box::pin(async move {
                let url = settings.store.expose().to_string();
                settings
                    .open_store_url(&url, settings.readonly)
                    .await
                    .map_err(jobs::JobError::opening)
            })
        })
    };
    let mut jobs = Jobs::new(opener, tx);
    jobs.set_replay_env(replay_env);
    jobs.set_sensitive(cfg.sensitive.clone());
    // ratatui::init installs a panic hook that restores the terminal first;
    // ours also releases the mouse.
    let mut terminal = ratatui::try_init().map_err(TuiError::Start)?;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
        hook(info);
    }));
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let size = terminal
        .size()
        .map(|s| (s.width, s.height))
        .unwrap_or((80, 24));
    let mut app = App::new(cfg, Timestamp::now(), size);
    tracing::info!(store = %app.cfg.store_label, "terminal UI started");
    let result = loop {
        let input = crossterm::event::EventStream::new().filter_map(|e| async move {
            match e {
                Ok(crossterm::event::Event::Key(k)) => Some(Action::Key(k)),
                Ok(crossterm::event::Event::Mouse(m)) => Some(Action::Mouse(m)),
                Ok(crossterm::event::Event::Resize(w, h)) => Some(Action::Resize(w, h)),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!("terminal input error: {e}");
                    None
                }
            }
        });
        SYNCHRONIZED_OUTPUT.store(true, std::sync::atomic::Ordering::Relaxed);
        let r = run_loop(
            &mut terminal,
            &mut app,
            &mut jobs,
            &mut rx,
            Box::pin(input),
            Timestamp::now,
        )
        .await;
        // The input stream is gone (dropped with run_loop), so $EDITOR
        // gets every key.
        match app.external_edit.take() {
            Some(text) if r.is_ok() && !app.quit => {
                let _ =
                    crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
                ratatui::restore();
                let edited = edit_externally(&text);
                terminal = ratatui::try_init().map_err(TuiError::Restart)?;
                let _ =
                    crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
                let _ = terminal.clear();
                app.update(Action::Edited(edited));
            }
            _ => break r,
        }
    };
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    tracing::info!("terminal UI stopped");
    result.map_err(TuiError::Terminal)
}

/// Runs `$EDITOR` (else `vi`) on a temporary file holding `text` and
/// reads it back.
fn edit_externally(text: &str) -> Result<String, String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    edit_with(&editor, text)
}

/// Runs `editor` on a scratch file holding `text` (the full context may be
/// in it: the file is `0600` in a fresh `0700` folder, both removed
/// afterwards) and reads it back.
pub(crate) fn edit_with(editor: &str, text: &str) -> Result<String, String> {
    let dir = crate::files::PrivateTempDir::new("sagascope-edit")
        .map_err(|e| format!("cannot create a private temp folder: {e}"))?;
    let path = dir.path().join("override.json");
    crate::files::create_new_private_file(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut words = editor.split_whitespace();
    let prog = words.next().unwrap_or("vi");
    let status = std::process::Command::new(prog)
        .args(words)
        .arg(&path)
        .status();
    let out = match status {
        Ok(s) if s.success() => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Ok(s) => Err(format!(
            "{editor} exited with {s}; the override is unchanged"
        )),
        Err(e) => Err(format!("cannot run {editor:?}: {e} (set $EDITOR)")),
    };
    drop(dir);
    out
}

/// Set while the loop draws to the real terminal (stdout): each frame is
/// then wrapped in a synchronized update (DEC mode 2026), so terminals that
/// know it show whole frames only. Test backends leave it off.
static SYNCHRONIZED_OUTPUT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The event loop. Input comes first: a key is applied and drawn before
/// anything else happens (background results, the clock), and the keys
/// already typed are applied together and drawn once. Background results
/// and ticks are applied in bursts and drawn once, and give way to input.
///
/// Every poll of `input` happens inside `select!`, so the stream always
/// holds this task's waker. (Polling it with `now_or_never` once left
/// crossterm's `EventStream` with a dead waker: keys then waited for the
/// clock's tick, 300–500 ms.)
pub async fn run_loop<B, S>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    jobs: &mut Jobs,
    data: &mut UnboundedReceiver<Action>,
    mut input: S,
    clock: impl Fn() -> Timestamp,
) -> Result<(), B::Error>
where
    B: Backend,
    S: Stream<Item = Action> + Unpin,
{
    let period = app.cfg.live.map_or(TICK, |l| l.min(TICK));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut input_open = true;
    loop {
        if app.quit || app.external_edit.is_some() {
            for r in app.take_requests() {
                jobs.spawn(r);
            }
            return Ok(());
        }
        // Every pass applied something: draw it, as one synchronized
        // update where the terminal supports it (no half-drawn frames).
        let sync = SYNCHRONIZED_OUTPUT.load(std::sync::atomic::Ordering::Relaxed);
        if sync {
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::terminal::BeginSynchronizedUpdate
            );
        }
        let drawn = terminal.draw(|f| view::draw(f, app)).map(drop);
        if sync {
            let _ = crossterm::execute!(
                std::io::stdout(),
                crossterm::terminal::EndSynchronizedUpdate
            );
        }
        drawn?;
        for r in app.take_requests() {
            jobs.spawn(r);
        }
        let mut keys = false;
        tokio::select! {
            biased;
            a = input.next(), if input_open => match a {
                Some(a) => { app.update(a); keys = true; }
                None => input_open = false,
            },
            Some(a) = data.recv() => app.update(a),
            _ = tick.tick() => app.update(Action::Tick(clock())),
        }
        // What is already waiting joins this frame: keys always, results
        // only while no key came (a key's frame is drawn first).
        for _ in 0..256 {
            if app.quit || app.external_edit.is_some() {
                break;
            }
            let more = tokio::select! {
                biased;
                a = input.next(), if input_open => match a {
                    Some(a) => { app.update(a); keys = true; true }
                    None => { input_open = false; false }
                },
                Some(a) = data.recv(), if !keys => { app.update(a); true },
                () = std::future::ready(()) => false,
            };
            if !more {
                break;
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    /// The scratch file handed to `$EDITOR` holds the full context: other
    /// accounts must not read it, and it must not outlive the edit.
    #[test]
    fn the_editor_scratch_file_is_owner_only_in_a_private_folder_and_removed() {
        let work = tempfile::tempdir().unwrap();
        let seen = work.path().join("seen");
        let script = work.path().join("editor.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nstat -c '%a' \"$1\" \"$(dirname \"$1\")\" > {seen}\necho \"$1\" >> {seen}\nprintf '{{\"a\": 2}}' > \"$1\"\n",
                seen = seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let back = super::edit_with(script.to_str().unwrap(), "{\"secret\": 1}").unwrap();
        assert_eq!(back, "{\"a\": 2}");
        let seen = std::fs::read_to_string(&seen).unwrap();
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines[..2], ["600", "700"], "{seen}");
        let file = std::path::Path::new(lines[2]);
        assert!(!file.exists(), "{} left behind", file.display());
        assert!(!file.parent().unwrap().exists());
    }

    /// The live interval: a second by default, ten on S3, 0 turns it off,
    /// and nonsense is refused with the key's name.
    #[test]
    fn the_live_interval_defaults_per_backend_and_0_turns_it_off() {
        use std::time::Duration;
        let live = super::live_interval;
        assert_eq!(
            live(None, "sqlite:///x.db").unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            live(None, "s3://bucket/prefix").unwrap(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(live(Some(0.0), "redis://h").unwrap(), None);
        assert_eq!(
            live(Some(2.5), "s3://b").unwrap(),
            Some(Duration::from_millis(2500))
        );
        for bad in [-1.0, 0.001, f64::NAN, f64::INFINITY] {
            let e = live(Some(bad), "redis://h").unwrap_err().to_string();
            assert!(e.contains("live_interval_secs"), "{e}");
        }
    }
}
