//! `sagascope run`: execute a saga from its definition, and the helpers the
//! engine commands share (loading definitions, progress lines, errors).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::output::{emit, emit_json, note, Format};
use super::{CliError, Context, Exit};
use crate::engine::{DefinitionError, Definitions, Engine, Event, RunRequest, SnapshotStrategies};
use crate::replay::{self, OverrideError, PlanErrorKind, ReplayError};

/// The folder `sagascope demo` writes its definitions to.
pub fn demo_dir() -> PathBuf {
    crate::config::demo_dir()
}

/// Definitions from the config, then `--definitions` (files or folders),
/// then the demo's folder ([`crate::config::Settings::load_definitions`]).
pub fn load_definitions(ctx: &Context, extra: &[PathBuf]) -> Result<Definitions, CliError> {
    ctx.settings.load_definitions(extra).map_err(def_err)
}

pub fn def_err(e: DefinitionError) -> CliError {
    CliError::usage(e.to_string())
}

/// The lock TTL: the flag, else `engine.lock_ttl_secs`, else 30 s.
pub fn lock_ttl(ctx: &Context, flag: Option<f64>) -> Result<Duration, CliError> {
    ctx.settings
        .lock_ttl(flag)
        .map_err(|e| CliError::usage(e.to_string()))
}

/// One progress line on stderr per engine event.
pub fn print_event(e: &Event) {
    let line = match e {
        Event::StepSkipped { step } => format!("  - {step} (skipped: completed at the checkpoint)"),
        Event::StepStarted { step, attempt } if *attempt > 1 => {
            format!("  ▶ {step} (attempt {attempt})")
        }
        Event::StepStarted { step, .. } => format!("  ▶ {step}"),
        Event::StepCompleted { step } => format!("  ✓ {step}"),
        Event::StepFailed {
            step,
            attempt,
            error,
        } => format!("  ✗ {step} (attempt {attempt}): {}", first_line(error)),
        Event::Compensating { step } => format!("  ↺ compensating {step}"),
        Event::Compensated { step } => format!("  ↺ {step} compensated"),
        Event::CompensationFailed { step, error } => {
            format!("  ✗ compensation of {step} failed: {}", first_line(error))
        }
        Event::SnapshotFailed { step, error } => {
            format!("  ! snapshot at {step} not saved: {error}")
        }
        Event::Progress { line } => format!("  | {line}"),
    };
    note(&line);
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl From<OverrideError> for CliError {
    fn from(e: OverrideError) -> Self {
        CliError::usage(e.to_string())
    }
}

/// The exit code a plan error maps to.
pub fn plan_exit(kind: PlanErrorKind) -> Exit {
    match kind {
        PlanErrorKind::UnknownStep => Exit::UnknownStep,
        PlanErrorKind::NoDefinition => Exit::NoDefinition,
        PlanErrorKind::NoSnapshot => Exit::NotFound,
        PlanErrorKind::Completed => Exit::Completed,
        PlanErrorKind::AlreadyReplayed => Exit::AlreadyReplayed,
        PlanErrorKind::InProgress => Exit::InProgress,
        PlanErrorKind::NotRepeatable => Exit::NotRepeatable,
        PlanErrorKind::Sealed => Exit::Denied,
    }
}

impl From<ReplayError> for CliError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Find(f) => f.into(),
            ReplayError::Store(s) => s.into(),
            ReplayError::Plan(p) => {
                let exit = p
                    .first_error()
                    .map(|e| plan_exit(e.kind))
                    .unwrap_or(Exit::Problems);
                CliError::new(exit, ReplayError::Plan(p).to_string())
            }
            e @ ReplayError::Abandoned(_) => CliError::new(Exit::Conflict, e.to_string()),
            e @ ReplayError::CannotResume(_) => CliError::usage(e.to_string()),
            e @ ReplayError::StalePlan(_) => CliError::new(Exit::StalePlan, e.to_string()),
            ReplayError::Locked(l) => match l {
                replay::LockError::Held { .. } => CliError::new(Exit::Conflict, l.to_string()),
                replay::LockError::Store(s) => s.into(),
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The saga's name (as its definition names it).
    pub saga_name: String,
    /// The initial context, a JSON object.
    #[arg(long, value_name = "JSON", conflicts_with = "context_file")]
    pub context: Option<String>,
    /// Read the initial context from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub context_file: Option<PathBuf>,
    /// Use this saga id instead of a fresh UUID.
    #[arg(long)]
    pub saga_id: Option<String>,
    /// Snapshot strategies, overriding the definition's (comma-separated:
    /// before_each_step, after_each_step, on_failure, on_completion, manual).
    #[arg(long, value_delimiter = ',')]
    pub snapshots: Vec<String>,
    /// A definition file or folder (repeatable), besides the config's.
    #[arg(long, value_name = "PATH")]
    pub definitions: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn run(ctx: &mut Context, a: RunArgs) -> Result<Exit, CliError> {
    let context = match (&a.context, &a.context_file) {
        (Some(j), _) => replay::merge::parse_object(j, "--context")?,
        (None, Some(f)) => {
            let text = replay::merge::read_json_input(f, "--context-file")?;
            replay::merge::parse_object(&text, &format!("--context-file {}", f.display()))?
        }
        (None, None) => serde_json::Map::new(),
    };
    let defs = load_definitions(ctx, &a.definitions)?;
    let Some(def) = defs.get(&a.saga_name) else {
        let known = defs.names();
        return Err(CliError::new(
            Exit::NoDefinition,
            format!(
                "no definition for saga {:?}; known: {}",
                a.saga_name,
                if known.is_empty() {
                    "none (see engine.definitions in the config, or --definitions)".into()
                } else {
                    known.join(", ")
                }
            ),
        ));
    };
    let mut def = (*def).clone();
    if !a.snapshots.is_empty() {
        def.strategies = SnapshotStrategies::parse_list(&a.snapshots).map_err(CliError::usage)?;
    }
    if def.steps.is_empty() {
        return Err(CliError::usage(format!(
            "saga {:?} has only a delegate (it replays in its own runtime); `run` needs [[steps]]",
            def.name
        )));
    }
    let store = ctx.store().await?;
    let saga_id = a
        .saga_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // A given id must be unused: a second run under an existing saga's id
    // would append to its timeline and make two runs read as one. The
    // saga's lock is held from the check to the end of the run, so two
    // `run --saga-id X` at once cannot both pass it.
    let lock = match &a.saga_id {
        None => None,
        Some(_) => {
            let owner = replay::lock_owner(&ctx.settings.identity);
            let lock =
                replay::ReplayLock::acquire(store.clone(), &saga_id, &owner, lock_ttl(ctx, None)?)
                    .await
                    .map_err(|e| CliError::from(ReplayError::Locked(e)))?;
            let n = store.count_snapshots(&saga_id).await?;
            if n > 0 {
                let _ = lock.release().await;
                return Err(CliError::new(
                    Exit::Conflict,
                    format!(
                        "saga {saga_id} already exists ({n} snapshot{}); --saga-id needs an unused id (leave it out for a fresh one)",
                        if n == 1 { "" } else { "s" }
                    ),
                ));
            }
            Some(lock)
        }
    };
    let show = a.format == Format::Table || a.format == Format::Text;
    if show {
        note(&format!("running {} as {saga_id}", def.name));
    }
    let outcome = Engine::new(store)
        .run(
            &def,
            RunRequest {
                saga_id,
                context,
                ..RunRequest::default()
            },
            &|e| {
                if show {
                    print_event(e)
                }
            },
        )
        .await;
    if let Some(lock) = lock {
        if let Err(e) = lock.release().await {
            tracing::warn!("releasing the lock of saga {}: {e}", outcome.saga_id);
        }
    }
    match a.format {
        Format::Json | Format::Jsonl => {
            emit_json(&super::reveal::shown_outcome(&ctx.settings, &outcome))
        }
        _ => {
            let mut s = format!(
                "saga {} {}: {} ({} snapshot{})\n",
                outcome.saga_id,
                outcome.saga_name,
                outcome.status,
                outcome.snapshots_written,
                if outcome.snapshots_written == 1 {
                    ""
                } else {
                    "s"
                }
            );
            if let (Some(step), Some(err)) = (&outcome.failed_step, &outcome.error) {
                s.push_str(&format!("failed at {step}: {}\n", first_line(err)));
                if !outcome.compensated_steps.is_empty() {
                    s.push_str(&format!(
                        "compensated: {}\n",
                        outcome.compensated_steps.join(", ")
                    ));
                }
                s.push_str(&format!(
                    "replay it: sagascope replay run {} --from-step {step} --dry-run\n",
                    outcome.saga_id
                ));
            }
            emit(&s);
        }
    }
    for e in &outcome.snapshot_errors {
        note(&format!("warning: {e}"));
    }
    Ok(if outcome.succeeded() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

/// The override's JSON text, for tables.
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
