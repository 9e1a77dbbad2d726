//! The command line: clap arguments, one module per group of headless
//! commands, stable exit codes. Every command calls the same library
//! functions the TUI does; no logic lives here that the library lacks.

mod admin;
mod audit;
mod batch;
mod bench;
mod browse;
mod bundle;
mod convert;
mod demo;
mod erase;
pub mod exit;
pub mod filter;
mod hold;
mod junit;
pub mod output;
mod replay_run;
mod reveal;
pub(crate) mod run;
mod scan_pii;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::config::{Overrides, Settings, StoreAccess};
use crate::store::SnapshotStore;

pub use exit::{CliError, Exit};
pub use output::Format;

const AFTER_HELP: &str = "\
Stores are named by URL: sqlite:///path.db (the default is a SQLite file in
your data directory), memory://, postgres://…, redis://…, s3://bucket/prefix,
file:///dir. `sagascope config show` prints what is in force.

Times accept ISO 8601 (2026-01-15T10:30:00Z, +01:00 offsets, no offset =
UTC) and offsets from now (-2h, -1d12h, now).";

/// sagascope: a terminal debugger and headless CLI for saga snapshots.
#[derive(Debug, Parser)]
#[command(name = "sagascope", version, about, after_long_help = format!("{AFTER_HELP}\n\n{}", exit::EXIT_CODES_HELP))]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Store URL (overrides profile and config; env SAGASCOPE_STORE).
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,
    /// Named profile from the config file (env SAGASCOPE_PROFILE).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Config file (env SAGASCOPE_CONFIG; default: the XDG config dir).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Refuse every write (auditors); also `readonly = true` in the config.
    #[arg(long, global = true)]
    pub readonly: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the full-screen terminal UI (the default with no command).
    Tui(TuiArgs),
    /// Browse sagas.
    #[command(subcommand)]
    Sagas(SagasCommand),
    /// List a saga's snapshots in order.
    Snapshots(browse::SnapshotsArgs),
    /// Diff two snapshots' contexts (index, snapshot id, step name or time).
    Diff(browse::DiffArgs),
    /// The snapshots where one value of a saga's context changed, oldest
    /// first (PATH as `customer.email` or `$.items[2].sku`).
    WhereChanged(browse::WhereChangedArgs),
    /// Time travel and replay (named like sagaz's `replay` commands).
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Write sagas (snapshots and replay log) as a portable JSON-lines bundle.
    Export(bundle::ExportArgs),
    /// Read a bundle written by `export` into the store.
    Import(bundle::ImportArgs),
    /// Copy every saga from one store to another (lossless, idempotent).
    Migrate(bundle::MigrateArgs),
    /// Delete snapshots whose retention has expired.
    Gc(admin::GcArgs),
    /// Find context paths that look personal (emails, phones, cards, IBANs,
    /// key names), with counts and a `[compliance.sensitive]` snippet;
    /// never prints a value.
    ScanPii(scan_pii::ScanPiiArgs),
    /// Erase a data subject: delete or tombstone every snapshot and replay
    /// log naming them (`--subject customer.id=C-123`), with a receipt.
    Erase(erase::EraseArgs),
    /// Encrypt the sensitive values still in clear, in place, under the
    /// current key (resumable; --dry-run counts).
    Encrypt(convert::EncryptArgs),
    /// Field encryption keys: rotate.
    #[command(subcommand)]
    Keys(convert::KeysCommand),
    /// Reachability, latency and counts of the store.
    Health(admin::HealthArgs),
    /// Rebuild sagascope's saga index from what sagaz wrote (Redis).
    Reindex(admin::ReindexArgs),
    /// Show the configuration in force.
    #[command(subcommand)]
    Config(admin::ConfigCommand),
    /// Tools for developers: test data.
    #[command(subcommand)]
    Dev(admin::DevCommand),
    /// Measure the store (ops/s, p50/p99), comparable with sagaz.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a saga from its definition (TOML or registered), capturing snapshots.
    Run(run::RunArgs),
    /// Replay (or dry-run) many sagas from one step with one override.
    Batch(Box<batch::BatchArgs>),
    /// Seed the store by running realistic demo sagas, then open the UI.
    Demo(demo::DemoArgs),
    /// The audit log kept in the store.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Legal holds: sagas that gc and erase must keep.
    #[command(subcommand)]
    Hold(hold::HoldCommand),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// save, get, list-100, latest-for-step and state-at-time against --store.
    Store(bench::BenchStoreArgs),
    /// The engine's per-step snapshot capture on SQLite: plain and with
    /// two fields encrypted through the protection layer.
    Capture(bench::BenchCaptureArgs),
}

/// `sagascope tui`.
#[derive(Debug, Clone, Args, Default)]
pub struct TuiArgs {
    /// Seconds between looks for new sagas and snapshots (default: the
    /// config's `tui.live_interval_secs`, else 1, 10 on S3; 0 turns live
    /// updates off).
    #[arg(long, value_name = "SECS")]
    pub live_interval: Option<f64>,
}

#[derive(Debug, Subcommand)]
pub enum SagasCommand {
    /// List sagas, newest activity first.
    List(browse::SagasListArgs),
    /// One saga's summary (id or unique id prefix).
    Show(browse::SagaShowArgs),
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// The state of a saga at a time (or at a step).
    TimeTravel(browse::TimeTravelArgs),
    /// The snapshots in a time range, oldest first, with what changed.
    ListChanges(browse::ListChangesArgs),
    /// The replay log of a saga: dry runs and replays started from it.
    History(browse::HistoryArgs),
    /// Replay a saga from a checkpoint with an edited context (or --dry-run).
    Run(replay_run::ReplayRunArgs),
    /// Run a plan written by `--dry-run --plan-out FILE` (one saga's, or a
    /// batch's plan set) exactly; refused (exit 13) if the saga changed since.
    Apply(replay_run::ApplyArgs),
    /// List replays killed part way (lock expired, still `running`) and
    /// resume (--resume) or close them (--abandon --reason TEXT).
    Recover(replay_run::RecoverArgs),
}

/// Everything a command needs: settings and, opened lazily, the store.
pub struct Context {
    pub settings: Settings,
    /// What the command does to the store (a reading command does not
    /// create a missing store file or folder).
    pub access: StoreAccess,
    store: Option<Arc<dyn SnapshotStore>>,
}

impl Context {
    pub fn new(settings: Settings) -> Self {
        Context {
            settings,
            access: StoreAccess::Write,
            store: None,
        }
    }

    /// Opens the configured store (once).
    pub async fn store(&mut self) -> Result<Arc<dyn SnapshotStore>, CliError> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        let s = self.settings.open_store(self.access).await?;
        self.store = Some(s.clone());
        Ok(s)
    }
}

/// Opens a store by URL with the settings' compression.
pub async fn open_url(
    settings: &Settings,
    url: &str,
    readonly: bool,
) -> Result<Arc<dyn SnapshotStore>, CliError> {
    Ok(settings.open_store_url(url, readonly).await?)
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> Exit {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            output::note(&format!("error: {}", e.message));
            if let Some(h) = &e.hint {
                output::note(&format!("hint: {h}"));
            }
            e.exit
        }
    }
}

async fn dispatch(cli: Cli) -> Result<Exit, CliError> {
    let overrides = Overrides {
        config_file: cli.global.config.clone(),
        profile: cli.global.profile.clone(),
        store: cli.global.store.clone(),
        readonly: cli.global.readonly,
    };
    let mut settings = Settings::load(&overrides)?;
    let command = cli.command.unwrap_or(Command::Tui(TuiArgs::default()));
    if let Some(r) = reveal_args(&command) {
        settings.reveal = r.audit(&settings.identity)?;
    }
    // Read-only mode refuses a writing command before anything runs (no
    // step command, no store opened for writing).
    let (access, action) = store_access(&command);
    settings.permit(access, action)?;
    let mut ctx = Context::new(settings);
    ctx.access = access;
    match command {
        Command::Tui(a) => {
            if let Some(secs) = a.live_interval {
                ctx.settings.file.tui.live_interval_secs = Some(secs);
            }
            launch_tui(&mut ctx).await
        }
        Command::Sagas(SagasCommand::List(a)) => browse::sagas_list(&mut ctx, a).await,
        Command::Sagas(SagasCommand::Show(a)) => browse::saga_show(&mut ctx, a).await,
        Command::Snapshots(a) => browse::snapshots(&mut ctx, a).await,
        Command::Diff(a) => browse::diff(&mut ctx, a).await,
        Command::WhereChanged(a) => browse::where_changed(&mut ctx, a).await,
        Command::Replay(ReplayCommand::TimeTravel(a)) => browse::time_travel(&mut ctx, a).await,
        Command::Replay(ReplayCommand::ListChanges(a)) => browse::list_changes(&mut ctx, a).await,
        Command::Replay(ReplayCommand::History(a)) => browse::history(&mut ctx, a).await,
        Command::Export(a) => bundle::export(&mut ctx, a).await,
        Command::Import(a) => bundle::import(&mut ctx, a).await,
        Command::Migrate(a) => bundle::migrate(&mut ctx, a).await,
        Command::Gc(a) => admin::gc(&mut ctx, a).await,
        Command::ScanPii(a) => scan_pii::scan_pii(&mut ctx, a).await,
        Command::Erase(a) => erase::erase(&mut ctx, a).await,
        Command::Encrypt(a) => convert::encrypt(&mut ctx, a).await,
        Command::Keys(c) => convert::keys(&mut ctx, c).await,
        Command::Health(a) => admin::health(&mut ctx, a).await,
        Command::Reindex(a) => admin::reindex(&mut ctx, a).await,
        Command::Config(c) => admin::config(&mut ctx, c).await,
        Command::Dev(c) => admin::dev(&mut ctx, c).await,
        Command::Bench(BenchCommand::Store(a)) => bench::bench_store(&mut ctx, a).await,
        Command::Bench(BenchCommand::Capture(a)) => bench::bench_capture(&mut ctx, a).await,
        Command::Replay(ReplayCommand::Run(a)) => replay_run::replay_run(&mut ctx, a).await,
        Command::Replay(ReplayCommand::Recover(a)) => replay_run::replay_recover(&mut ctx, a).await,
        Command::Replay(ReplayCommand::Apply(a)) => replay_run::replay_apply(&mut ctx, a).await,
        Command::Run(a) => run::run(&mut ctx, a).await,
        Command::Batch(a) => batch::batch(&mut ctx, *a).await,
        Command::Demo(a) => demo::demo(&mut ctx, a).await,
        Command::Audit(c) => audit::audit(&mut ctx, c).await,
        Command::Hold(c) => hold::hold(&mut ctx, c).await,
    }
}

/// The `--reveal` flags of a reading command that has them.
fn reveal_args(cmd: &Command) -> Option<&reveal::RevealArgs> {
    Some(match cmd {
        Command::Sagas(SagasCommand::List(a)) => &a.reveal,
        Command::Sagas(SagasCommand::Show(a)) => &a.reveal,
        Command::Snapshots(a) => &a.reveal,
        Command::Diff(a) => &a.reveal,
        Command::WhereChanged(a) => &a.reveal,
        Command::Replay(ReplayCommand::TimeTravel(a)) => &a.reveal,
        Command::Replay(ReplayCommand::ListChanges(a)) => &a.reveal,
        Command::Replay(ReplayCommand::History(a)) => &a.reveal,
        Command::Export(a) => &a.reveal,
        _ => return None,
    })
}

/// What a command does to the store, and its name for messages.
fn store_access(cmd: &Command) -> (StoreAccess, &'static str) {
    use StoreAccess::{DryRun, Read, Write};
    match cmd {
        Command::Replay(ReplayCommand::Run(a)) if a.o.dry_run => (DryRun, "`replay run --dry-run`"),
        Command::Replay(ReplayCommand::Run(_)) => (Write, "`replay run`"),
        Command::Replay(ReplayCommand::Apply(_)) => (Write, "`replay apply`"),
        // Even listing takes each candidate saga's replay lock (that is how
        // an abandoned replay is told from a running one).
        Command::Replay(ReplayCommand::Recover(_)) => (Write, "`replay recover`"),
        Command::Batch(a) if a.o.dry_run => (DryRun, "`batch --dry-run`"),
        Command::Batch(_) => (Write, "`batch`"),
        Command::Run(_) => (Write, "`run`"),
        Command::Demo(_) => (Write, "`demo`"),
        Command::Import(_) => (Write, "`import`"),
        Command::Migrate(_) => (Write, "`migrate`"),
        Command::Gc(_) => (Write, "`gc`"),
        // A dry run of an erasure only reads.
        Command::Erase(a) if a.dry_run => (Read, ""),
        Command::Erase(_) => (Write, "`erase`"),
        Command::Encrypt(a) => (convert::access(a.dry_run), "`encrypt`"),
        Command::Keys(convert::KeysCommand::Rotate(a)) => {
            (convert::access(a.dry_run), "`keys rotate`")
        }
        Command::Reindex(_) => (Write, "`reindex`"),
        Command::Dev(admin::DevCommand::Seed(_)) => (Write, "`dev seed`"),
        Command::Bench(BenchCommand::Capture(_)) => (Write, "`bench capture`"),
        Command::Bench(_) => (Write, "`bench store`"),
        Command::Hold(hold::HoldCommand::Place(_)) => (Write, "`hold place`"),
        Command::Hold(hold::HoldCommand::Release(_)) => (Write, "`hold release`"),
        Command::Hold(hold::HoldCommand::List(_)) | Command::Audit(_) => (Read, ""),
        Command::Tui(_)
        | Command::Sagas(_)
        | Command::Snapshots(_)
        | Command::Diff(_)
        | Command::WhereChanged(_)
        | Command::Replay(_)
        | Command::Export(_)
        | Command::ScanPii(_)
        | Command::Health(_)
        | Command::Config(_) => (Read, ""),
    }
}

/// Opens the terminal UI on the context's store (`demo` uses it once it
/// has seeded the store).
/// Every way the terminal UI fails is a usage error (no terminal, bad
/// `[tui]` config, a terminal that cannot be driven).
#[cfg(feature = "tui")]
pub async fn launch_tui(ctx: &mut Context) -> Result<Exit, CliError> {
    crate::tui::run(&ctx.settings)
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(Exit::Ok)
}

/// Without the `tui` feature there is no terminal UI to open.
#[cfg(not(feature = "tui"))]
pub async fn launch_tui(_ctx: &mut Context) -> Result<Exit, CliError> {
    Err(CliError::usage(
        "this sagascope was built without the terminal UI (cargo feature `tui`); use the headless commands (`sagascope --help`)",
    ))
}

/// Parses a time flag (absolute or relative to now).
pub fn parse_time(flag: &str, value: &str) -> Result<crate::model::Timestamp, CliError> {
    crate::model::Timestamp::parse_relative(value, crate::model::Timestamp::now())
        .map_err(|e| CliError::usage(format!("{flag}: {e}; or an offset such as -2h")))
}

/// Logs to a file (never the terminal): `SAGASCOPE_LOG` or the config's
/// level, default `info` for sagascope and `warn` for the rest.
pub fn init_logging(settings_file: Option<&crate::config::LogConfig>) {
    use tracing_subscriber::EnvFilter;
    let level = std::env::var("SAGASCOPE_LOG")
        .ok()
        .or_else(|| settings_file.and_then(|l| l.level.clone()))
        .unwrap_or_else(|| "warn,sagascope=info".into());
    let path = settings_file
        .and_then(|l| l.file.clone())
        .unwrap_or_else(|| crate::config::data_dir().join("sagascope.log"));
    if let Some(dir) = path.parent() {
        let _ = crate::files::create_private_dir_all(dir);
    }
    let Ok(file) = crate::files::append_private_file(&path) else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
}

/// Commands that make one store call after another: a single-threaded
/// runtime serves them with less latency (no hand-offs between worker
/// threads: measured 10–25% per call on `bench store`, and a saga step's
/// snapshot capture on Redis 0.19–0.24 → 0.17–0.18 ms). The TUI, batches
/// and bulk copies keep the multi-threaded one.
fn one_thread_is_enough(cmd: Option<&Command>) -> bool {
    matches!(
        cmd,
        Some(
            Command::Sagas(_)
                | Command::Snapshots(_)
                | Command::Diff(_)
                | Command::WhereChanged(_)
                | Command::Replay(
                    ReplayCommand::TimeTravel(_)
                        | ReplayCommand::ListChanges(_)
                        | ReplayCommand::History(_)
                        | ReplayCommand::Run(_)
                )
                | Command::Run(_)
                | Command::Health(_)
                | Command::Config(_)
                | Command::Bench(BenchCommand::Store(_) | BenchCommand::Capture(_))
        )
    )
}

/// The binary's entry point.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut builder = if one_thread_is_enough(cli.command.as_ref()) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            output::note(&format!("error: cannot start the async runtime: {e}"));
            return std::process::ExitCode::from(Exit::Unreachable as u8);
        }
    };
    let log = Settings::load(&Overrides {
        config_file: cli.global.config.clone(),
        profile: cli.global.profile.clone(),
        store: cli.global.store.clone(),
        readonly: cli.global.readonly,
    })
    .ok()
    .map(|s| s.file.log.clone());
    init_logging(log.as_ref());
    let code = runtime.block_on(run(cli));
    std::process::ExitCode::from(code as u8)
}
