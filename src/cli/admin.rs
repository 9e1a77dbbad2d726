//! Housekeeping commands: gc, health, config, dev seed.

use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use serde_json::json;

use super::output::{self, emit, emit_json, note, Format};
use super::{CliError, Context, Exit};
use crate::compliance::hold;
use crate::model::Timestamp;
use crate::seed::{self, SeedSpec};

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub async fn gc(ctx: &mut Context, a: GcArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let now = Timestamp::now();
    let held = hold::list(store.as_ref()).await?.len();
    let kept = if held == 0 {
        String::new()
    } else {
        format!(" ({held} saga(s) on legal hold are kept)")
    };
    if !a.yes
        && !output::confirm(&format!(
            "Delete every snapshot in {} whose retention ended before {now}?{kept}",
            store.location()
        ))
    {
        return Err(CliError::usage(
            "not confirmed; nothing deleted (pass --yes to confirm without a terminal)",
        ));
    }
    // Held sagas' snapshots carry no expiry; clear any they got since the
    // hold (written later, or an interrupted placement) before deleting.
    let holds = hold::reassert(&store).await?;
    let n = store.delete_expired(now).await?;
    note(&format!(
        "deleted {n} expired snapshot(s) from {}; kept {} saga(s) on legal hold",
        store.location(),
        holds.len()
    ));
    Ok(Exit::Ok)
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn health(ctx: &mut Context, a: HealthArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let h = store.health().await?;
    let caps = store.capabilities();
    match a.format {
        Format::Json | Format::Jsonl => emit_json(&json!({"health": h, "capabilities": caps})),
        _ => {
            let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
            let mut s = format!(
                "store:      {}\nbackend:    {}\nreachable:  {}\nlatency:    {:.2} ms\nsagas:      {}\nsnapshots:  {}\nreplays:    {}\nsize:       {}\n",
                h.url,
                h.backend,
                if h.reachable { "yes" } else { "no" },
                h.latency.as_secs_f64() * 1000.0,
                opt(h.sagas),
                opt(h.snapshots),
                opt(h.replays),
                h.size_bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
            );
            for n in &h.notes {
                s.push_str(&format!("note:       {n}\n"));
            }
            emit(&s);
        }
    }
    Ok(if h.reachable {
        Exit::Ok
    } else {
        Exit::Unreachable
    })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn reindex(ctx: &mut Context, a: ReindexArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    match store.reindex().await? {
        None => {
            note(&format!(
                "{} keeps its saga index itself; nothing to rebuild",
                ctx.settings.store.redacted()
            ));
            Ok(Exit::Ok)
        }
        Some(r) => {
            match a.format {
                Format::Json | Format::Jsonl => emit_json(&r),
                _ => emit(&format!(
                    "indexed {} saga(s) and {} replay(s), removed {} stale entr{}, {} saga(s) with no readable snapshots, in {:.1} ms\n",
                    r.sagas_indexed,
                    r.replays_indexed,
                    r.sagas_removed,
                    if r.sagas_removed == 1 { "y" } else { "ies" },
                    r.sagas_empty,
                    r.elapsed.as_secs_f64() * 1000.0
                )),
            }
            output::warn_bad(&r.bad);
            Ok(if r.bad.is_empty() {
                Exit::Ok
            } else {
                Exit::Problems
            })
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
    /// Print where the config file, the default store and the log live.
    Path,
}

pub async fn config(ctx: &mut Context, c: ConfigCommand) -> Result<Exit, CliError> {
    match c {
        ConfigCommand::Show => emit(&ctx.settings.to_redacted_toml()),
        ConfigCommand::Path => emit(&format!(
            "config file:   {}\ndefault store: {}\ndata dir:      {}\n",
            crate::config::default_config_path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(no home directory)".into()),
            crate::store::default_store_url().redacted(),
            crate::config::data_dir().display()
        )),
    }
    Ok(Exit::Ok)
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write generated sagas into the store (tests, benchmarks, demos of the browser).
    Seed(SeedArgs),
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Number of sagas.
    #[arg(long, default_value_t = 100)]
    pub sagas: usize,
    /// Snapshots per saga.
    #[arg(long, default_value_t = 5)]
    pub snapshots: usize,
    /// Approximate context size in bytes.
    #[arg(long, default_value_t = 512)]
    pub context_bytes: usize,
    /// Fraction of sagas that end failed.
    #[arg(long, default_value_t = 0.2)]
    pub failed_ratio: f64,
    /// RNG seed (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Time of the first snapshot (default: a day ago).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
}

pub async fn dev(ctx: &mut Context, c: DevCommand) -> Result<Exit, CliError> {
    match c {
        DevCommand::Seed(a) => {
            if !(0.0..=1.0).contains(&a.failed_ratio) {
                return Err(CliError::usage("--failed-ratio must be between 0 and 1"));
            }
            let store = ctx.store().await?;
            let mut spec = SeedSpec {
                sagas: a.sagas,
                snapshots_per_saga: a.snapshots.max(1),
                context_bytes: a.context_bytes,
                failed_ratio: a.failed_ratio,
                seed: a.seed,
                ..SeedSpec::default()
            };
            if let Some(s) = &a.start {
                spec.start = super::parse_time("--start", s)?;
            }
            let pb = if output::stderr_is_tty() {
                ProgressBar::new(a.sagas as u64)
            } else {
                ProgressBar::hidden()
            };
            let started = std::time::Instant::now();
            let report = seed::seed(store.as_ref(), &spec, |done, _| {
                pb.set_position(done as u64)
            })
            .await?;
            pb.finish_and_clear();
            note(&format!(
                "seeded {} saga(s) ({} failed), {} snapshot(s) into {} in {:.1}s; e.g. saga {}",
                report.sagas,
                report.failed,
                report.snapshots,
                store.location(),
                started.elapsed().as_secs_f64(),
                report.first_saga_id.as_deref().unwrap_or("-")
            ));
            Ok(Exit::Ok)
        }
    }
}
