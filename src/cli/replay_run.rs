//! `sagascope replay run`: replay a saga from a checkpoint with an edited
//! context, for real or as a dry run (a plan, as a table or JSON).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};

use super::output::{emit, emit_json, Format};
use super::reveal::{shown_log, shown_outcome, shown_plan};
use super::run::{compact, load_definitions, lock_ttl, plan_exit, print_event};
use super::{CliError, Context, Exit};
use crate::model::short_id;
use crate::replay::{self, diff::ChangeKind, MergeMode, ReplayOptions, ReplayPlan, ReplaySpec};

/// `--merge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MergeArg {
    /// Top-level keys replaced whole (sagaz's behaviour).
    Shallow,
    /// RFC 7396 JSON merge patch: nested objects merged, null deletes.
    Patch,
}

impl From<MergeArg> for MergeMode {
    fn from(m: MergeArg) -> Self {
        match m {
            MergeArg::Shallow => MergeMode::Shallow,
            MergeArg::Patch => MergeMode::Patch,
        }
    }
}

/// `--compensated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompensatedArg {
    /// Run again the steps the original run compensated (their effects
    /// were undone): the default.
    Rerun,
    /// Leave them undone: neither run nor compensated again.
    Skip,
}

/// The override and merge flags `replay run` and `batch` share.
#[derive(Debug, Clone, Args)]
pub struct OverrideArgs {
    /// Checkpoint: the snapshot taken before this step ran (never one taken
    /// after it, such as the rolled-back one).
    #[arg(long, value_name = "STEP", required_unless_present = "from_snapshot")]
    pub from_step: Option<String>,
    /// Checkpoint, exactly: a timeline position as `sagascope snapshots`
    /// numbers it (`2`, `#2`, `-1` = newest) or a snapshot id (prefix).
    #[arg(
        long,
        value_name = "ID|INDEX",
        conflicts_with = "from_step",
        allow_hyphen_values = true
    )]
    pub from_snapshot: Option<String>,
    /// Steps the original run compensated: run them again (default) or
    /// leave them undone.
    #[arg(long, value_enum, default_value_t = CompensatedArg::Rerun, value_name = "WHAT")]
    pub compensated: CompensatedArg,
    /// Replay a saga that completed (refused otherwise: exit 9).
    #[arg(long)]
    pub allow_completed: bool,
    /// Replay a saga that was already replayed successfully (refused
    /// otherwise: exit 10).
    #[arg(long)]
    pub again: bool,
    /// Replay a saga that may still be running: its newest snapshot is not
    /// terminal and younger than the lock TTL (refused otherwise: exit 11).
    #[arg(long)]
    pub force: bool,
    /// Set a context key: `key=value`, value parsed as JSON when it is valid
    /// JSON, else taken as a string (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Override keys as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub override_json: Option<String>,
    /// Override keys from a JSON file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub override_file: Option<PathBuf>,
    /// How the override is merged into the checkpoint's context.
    #[arg(long, value_enum, default_value_t = MergeArg::Shallow)]
    pub merge: MergeArg,
    /// Make the last step fail (without running it) to exercise compensation.
    #[arg(long)]
    pub force_failure: bool,
    /// Why: recorded in the replay log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Show the plan and change nothing but the replay log.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: write the plan (or a batch's plan set) to FILE, with a
    /// fingerprint of the saga, for `sagascope replay apply FILE`.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub plan_out: Option<PathBuf>,
    /// A definition file or folder (repeatable), besides the config's.
    #[arg(long, value_name = "PATH")]
    pub definitions: Vec<PathBuf>,
    /// Seconds the replay lock lasts without renewal (default:
    /// engine.lock_ttl_secs, else 30).
    #[arg(long, value_name = "SECS")]
    pub lock_ttl: Option<f64>,
}

impl OverrideArgs {
    pub fn spec(&self) -> Result<ReplaySpec, CliError> {
        Ok(ReplaySpec {
            from_step: self.from_step.clone().unwrap_or_default(),
            from_snapshot: self.from_snapshot.clone(),
            context_override: replay::build_override(
                self.override_file.as_deref(),
                self.override_json.as_deref(),
                &self.overrides,
            )?,
            merge: self.merge.into(),
            force_failure: self.force_failure,
            compensated: match self.compensated {
                CompensatedArg::Rerun => replay::Compensated::Rerun,
                CompensatedArg::Skip => replay::Compensated::Skip,
            },
            allow: replay::Allow {
                completed: self.allow_completed,
                again: self.again,
                in_progress: self.force,
            },
        })
    }

    pub fn options(&self, ctx: &Context) -> Result<ReplayOptions, CliError> {
        Ok(ReplayOptions {
            reason: self.reason.clone(),
            dry_run: self.dry_run,
            ..ReplayOptions::new(&ctx.settings.identity, lock_ttl(ctx, self.lock_ttl)?)
        })
    }
}

#[derive(Debug, Args)]
pub struct ReplayRunArgs {
    /// The saga to replay (id or unique id prefix).
    pub saga_id: String,
    #[command(flatten)]
    pub o: OverrideArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn replay_run(ctx: &mut Context, a: ReplayRunArgs) -> Result<Exit, CliError> {
    // Input first: a bad override stops everything before the store is touched.
    let spec = a.o.spec()?;
    let opts = a.o.options(ctx)?;
    let defs = load_definitions(ctx, &a.o.definitions)?;
    let store = ctx.store().await?;
    let show = matches!(a.format, Format::Table | Format::Text);
    let events = |e: &crate::engine::Event| {
        if show {
            print_event(e)
        }
    };
    let saga = replay::find_saga(store.as_ref(), &a.saga_id).await?;
    let (plan, history) = replay::plan_replay(
        store.as_ref(),
        &defs,
        &saga.saga_id,
        Some(&saga.saga_name),
        &spec,
        opts.lock_ttl,
    )
    .await?;
    let report = match replay::run_plan(&store, &defs, plan, &spec, &opts, &events).await {
        Ok(r) => r,
        // A refused dry run still shows its plan: what was found, and why
        // the real run would not start.
        Err(replay::ReplayError::Plan(p)) if opts.dry_run && p.checkpoint.is_some() => {
            let p = Box::new(shown_plan(&ctx.settings, &p));
            match a.format {
                Format::Json | Format::Jsonl => emit_json(&json!({"plan": p, "replay_log": null})),
                _ => emit(&render_plan(&p, None)),
            }
            return Err(replay::ReplayError::Plan(p).into());
        }
        Err(e) => return Err(e.into()),
    };
    // What is printed or written is masked (the plan a real run returns
    // was rebuilt from the values).
    let report = shown_report(&ctx.settings, report);
    if opts.dry_run {
        if let Some(path) = &a.o.plan_out {
            if let Some(file) = replay::artifact::PlanFile::new(
                &spec,
                &report.plan,
                &history,
                &opts.initiated_by,
                Some(report.log.replay_id.clone()),
            ) {
                write_plan_file(path, &file)?;
            }
        }
        match a.format {
            Format::Json | Format::Jsonl => {
                emit_json(&json!({"plan": report.plan, "replay_log": report.log}))
            }
            _ => emit(&render_plan(&report.plan, Some(&report.log.replay_id))),
        }
        return match report.plan.first_error() {
            None => Ok(Exit::Ok),
            Some(e) => Err(CliError::new(plan_exit(e.kind), e.message.clone())),
        };
    }
    emit_replay_report(&report, a.format);
    Ok(if report.succeeded() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

/// A replay's report as printed: plan, log and outcome masked unless
/// revealing.
fn shown_report(
    settings: &crate::config::Settings,
    r: replay::ReplayReport,
) -> replay::ReplayReport {
    replay::ReplayReport {
        plan: shown_plan(settings, &r.plan),
        log: shown_log(settings, &r.log),
        outcome: r.outcome.as_ref().map(|o| shown_outcome(settings, o)),
    }
}

/// A real replay's result: JSON, or lines for people.
fn emit_replay_report(report: &replay::ReplayReport, format: Format) {
    let outcome = report.outcome.as_ref();
    // The caller masked the plan and the log; the outcome's context is
    // masked with them (see `shown_report`).
    match format {
        Format::Json | Format::Jsonl => {
            emit_json(&json!({"replay_log": report.log, "outcome": outcome, "plan": report.plan}))
        }
        _ => {
            let mut s = format!(
                "replay {}: {} — new saga {} {}\n",
                report.log.replay_id,
                report.log.replay_status,
                report.log.new_saga_id,
                outcome.map(|o| o.status.to_string()).unwrap_or_default()
            );
            if let Some(e) = &report.log.error_message {
                s.push_str(&format!("error: {}\n", e.lines().next().unwrap_or("")));
            }
            if let Some(o) = outcome {
                if !o.compensated_steps.is_empty() {
                    s.push_str(&format!(
                        "compensated: {}\n",
                        o.compensated_steps.join(", ")
                    ));
                }
                s.push_str(&format!("snapshots written: {}\n", o.snapshots_written));
            }
            s.push_str(&format!(
                "original saga {} is unchanged\n",
                report.log.original_saga_id
            ));
            emit(&s);
        }
    }
}

/// Writes a plan file or plan set (owner-only: it holds contexts).
pub fn write_plan_file<T: serde::Serialize>(path: &Path, doc: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(doc).unwrap_or_default();
    crate::files::write_private_file(path, (text + "\n").as_bytes())
        .map_err(|e| CliError::usage(format!("cannot write plan {}: {e}", path.display())))?;
    super::output::note(&format!(
        "plan written to {} (apply it with `sagascope replay apply {}`)",
        path.display(),
        path.display()
    ));
    Ok(())
}

/// The flags of the commands that run a replay they did not plan
/// (`replay apply`, `replay recover`).
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Why: recorded in the replay log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// A definition file or folder (repeatable), besides the config's.
    #[arg(long, value_name = "PATH")]
    pub definitions: Vec<PathBuf>,
    /// Seconds the replay lock lasts without renewal while the replay runs.
    #[arg(long, value_name = "SECS")]
    pub lock_ttl: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file (`replay run --dry-run --plan-out FILE`) or plan set
    /// (`batch --dry-run --plan-out FILE`).
    pub plan: PathBuf,
    #[command(flatten)]
    pub run: RunFlags,
    /// Replays in flight at once (plan sets).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `sagascope replay apply FILE`: run a written plan exactly, or refuse
/// (exit 13) because the saga changed since.
pub async fn replay_apply(ctx: &mut Context, a: ApplyArgs) -> Result<Exit, CliError> {
    let text = std::fs::read_to_string(&a.plan)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", a.plan.display())))?;
    let doc = replay::artifact::parse_plan_document(&text)
        .map_err(|e| CliError::usage(format!("{}: {e}", a.plan.display())))?;
    if a.concurrency == 0 {
        return Err(CliError::usage("--concurrency must be at least 1"));
    }
    let opts = ReplayOptions {
        reason: a.run.reason.clone(),
        ..ReplayOptions::new(&ctx.settings.identity, lock_ttl(ctx, a.run.lock_ttl)?)
    };
    let defs = load_definitions(ctx, &a.run.definitions)?;
    let store = ctx.store().await?;
    let show = matches!(a.format, Format::Table | Format::Text);
    match doc {
        replay::artifact::PlanDocument::One(file) => {
            let events = |e: &crate::engine::Event| {
                if show {
                    print_event(e)
                }
            };
            let report = replay::apply_plan(&store, &defs, &file, &opts, &events).await?;
            let report = shown_report(&ctx.settings, report);
            emit_replay_report(&report, a.format);
            Ok(if report.succeeded() {
                Exit::Ok
            } else {
                Exit::Problems
            })
        }
        replay::artifact::PlanDocument::Set(set) => {
            // As `batch`: a table for a person, JSON lines when piped.
            use std::io::IsTerminal;
            let show = show && std::io::stdout().is_terminal();
            let started = std::time::Instant::now();
            let items =
                replay::batch::apply_plan_set(&store, &defs, &set, &opts, a.concurrency, &|item| {
                    if !show {
                        super::output::emit_jsonl(item)
                    }
                })
                .await;
            let summary = replay::batch::summarize(
                &items,
                false,
                set.plans
                    .first()
                    .map(|p| p.plan.from_step.as_str())
                    .unwrap_or("-"),
                started.elapsed().as_secs_f64(),
            );
            if show {
                emit(&super::batch::render_summary(&summary));
                if !set.left_out.is_empty() {
                    super::output::note(&format!(
                        "{} saga(s) of the dry run were left out of the plan set (skipped or not plannable then)",
                        set.left_out.len()
                    ));
                }
            } else {
                super::output::emit_jsonl(&json!({"summary": summary}));
            }
            Ok(if summary.has_problems() {
                Exit::Problems
            } else {
                Exit::Ok
            })
        }
    }
}

fn v(s: &Option<Value>) -> String {
    s.as_ref().map(compact).unwrap_or_else(|| "∅".into())
}

/// The dry-run plan for people; `replay_id` is the dry run's log entry
/// (`None` when the plan has errors and nothing was logged).
pub fn render_plan(p: &ReplayPlan, replay_id: Option<&str>) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Dry run: replay of saga {} ({}) from step {}\n\n",
        p.original_saga_id,
        p.saga_name.as_deref().unwrap_or("?"),
        p.from_step
    ));
    let row = |s: &mut String, k: &str, val: String| s.push_str(&format!("  {k:<32}{val}\n"));
    match &p.checkpoint {
        Some(c) => row(
            &mut s,
            "checkpoint",
            format!(
                "{} — {}{}",
                c.describe(),
                super::output::time_cell(&c.created_at),
                match c.pick {
                    replay::effects::CheckpointPick::BeforeStep => "",
                    replay::effects::CheckpointPick::LatestForStep =>
                        " (no snapshot before the step)",
                    replay::effects::CheckpointPick::Exact => " (--from-snapshot)",
                }
            ),
        ),
        None => row(&mut s, "checkpoint", "none".into()),
    }
    row(&mut s, "merge", p.merge.as_str().into());
    row(
        &mut s,
        "override",
        if p.context_override.is_empty() {
            "none".into()
        } else {
            compact(&Value::Object(p.context_override.clone()))
        },
    );
    row(
        &mut s,
        "compensated steps",
        match p.compensated {
            replay::Compensated::Rerun => "re-run (--compensated rerun)".into(),
            replay::Compensated::Skip => "left undone (--compensated skip)".into(),
        },
    );
    if p.steps.is_empty() {
        row(&mut s, "steps skipped", dash(&p.steps_skipped, ", "));
        row(&mut s, "steps that would run", dash(&p.steps_to_run, " → "));
    } else {
        s.push_str("\n  steps:\n");
        for st in &p.steps {
            let why = if st.why.is_empty() {
                String::new()
            } else {
                format!(" ({})", st.why)
            };
            s.push_str(&format!("    {:<7}{}{}\n", st.action.label(), st.step, why));
        }
        s.push('\n');
    }
    row(
        &mut s,
        "compensations that could fire",
        dash(&p.compensations, " → "),
    );
    if let Some(d) = &p.delegate {
        row(&mut s, "delegate", d.clone());
    }
    if p.force_failure {
        row(
            &mut s,
            "forced failure",
            "the last step fails without running".into(),
        );
    }
    if p.checkpoint.is_some() {
        s.push_str("\n  context diff (checkpoint → replay):\n");
        if p.diff.is_empty() {
            s.push_str("    no change\n");
        }
        for c in &p.diff {
            let line = match c.kind {
                _ if c.is_masked() => format!("  {}", c.line()),
                ChangeKind::Added => format!("    + {} = {}", c.path, v(&c.new)),
                ChangeKind::Removed => format!("    - {} (was {})", c.path, v(&c.old)),
                ChangeKind::Changed => format!("    ~ {}: {} → {}", c.path, v(&c.old), v(&c.new)),
            };
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str("\n  merged context:\n");
        let pretty = serde_json::to_string_pretty(&Value::Object(p.merged_context.clone()))
            .unwrap_or_default();
        for l in pretty.lines() {
            s.push_str(&format!("    {l}\n"));
        }
    }
    for w in &p.warnings {
        s.push_str(&format!("\n  warning: {w}"));
    }
    for e in &p.errors {
        s.push_str(&format!("\n  error: {}", e.message));
    }
    if !p.warnings.is_empty() || !p.errors.is_empty() {
        s.push('\n');
    }
    match replay_id {
        Some(id) => s.push_str(&format!(
            "\nNothing was executed. Logged as dry run {id} (see `sagascope replay history {}`).\n",
            short_id(&p.original_saga_id)
        )),
        None => s.push_str(
            "\nNothing was executed, nothing was logged: a real replay would be refused (see the error).\n",
        ),
    }
    s
}

fn dash(v: &[String], sep: &str) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(sep)
    }
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Sagas whose replays to look at (ids or unique prefixes); none = all.
    pub sagas: Vec<String>,
    /// Continue each abandoned replay from its new saga's newest snapshot
    /// (completed steps are not run again).
    #[arg(long, conflicts_with = "abandon")]
    pub resume: bool,
    /// Close each abandoned replay: log status `cancelled`, its new saga
    /// `failed`. Needs --reason.
    #[arg(long, requires = "reason")]
    pub abandon: bool,
    #[command(flatten)]
    pub run: RunFlags,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `sagascope replay recover`: list abandoned replays (their lock expired,
/// their log entry still `running`) and resume or close them.
pub async fn replay_recover(ctx: &mut Context, a: RecoverArgs) -> Result<Exit, CliError> {
    let action = match (a.resume, a.abandon) {
        (true, _) => replay::RecoverAction::Resume,
        (_, true) => replay::RecoverAction::Abandon {
            reason: a.run.reason.clone().unwrap_or_default(),
        },
        _ => replay::RecoverAction::List,
    };
    let opts = replay::RecoverOptions {
        action: action.clone(),
        by: ctx.settings.identity.clone(),
        lock_owner: replay::lock_owner(&ctx.settings.identity),
        lock_ttl: lock_ttl(ctx, a.run.lock_ttl)?,
    };
    let defs = load_definitions(ctx, &a.run.definitions)?;
    let store = ctx.store().await?;
    let sagas = if a.sagas.is_empty() {
        None
    } else {
        let mut ids = Vec::new();
        for s in &a.sagas {
            ids.push(replay::find_saga(store.as_ref(), s).await?.saga_id);
        }
        Some(ids)
    };
    let show = matches!(a.format, Format::Table | Format::Text);
    let events = |e: &crate::engine::Event| {
        if show {
            print_event(e)
        }
    };
    let report = replay::recover(&store, &defs, sagas, &opts, &events).await?;
    let problems = report.abandoned.iter().any(|r| {
        r.error.is_some()
            || r.closed
                .as_ref()
                .is_some_and(|l| l.replay_status == crate::model::ReplayStatus::Failed)
    });
    match a.format {
        Format::Json | Format::Jsonl => {
            let mut report = report.clone();
            for r in &mut report.abandoned {
                r.replay.log = shown_log(&ctx.settings, &r.replay.log);
                r.replay.progress = r
                    .replay
                    .progress
                    .as_ref()
                    .map(|p| super::reveal::shown_snapshot(&ctx.settings, p));
                r.closed = r.closed.as_ref().map(|l| shown_log(&ctx.settings, l));
                r.outcome = r.outcome.as_ref().map(|o| shown_outcome(&ctx.settings, o));
            }
            emit_json(&report)
        }
        _ => {
            let mut s = String::new();
            for r in &report.abandoned {
                s.push_str(&r.replay.describe());
                s.push('\n');
                if let Some(l) = &r.closed {
                    let what = match action {
                        replay::RecoverAction::Abandon { .. } => "closed as abandoned",
                        _ => "resumed",
                    };
                    s.push_str(&format!(
                        "  {what}: replay {} is now {}, new saga {}{}\n",
                        l.replay_id,
                        l.replay_status,
                        l.new_saga_id,
                        r.outcome
                            .as_ref()
                            .map(|o| format!(" {}", o.status))
                            .unwrap_or_default()
                    ));
                }
                if let Some(e) = &r.error {
                    s.push_str(&format!("  not recovered: {e}\n"));
                }
            }
            for r in &report.still_running {
                s.push_str(&format!(
                    "saga {}: replay {} is still running (lock held by {} until {}); left alone\n",
                    r.original_saga_id,
                    r.replay_ids.join(", "),
                    r.lock_owner,
                    r.lock_until.to_isoformat()
                ));
            }
            if report.abandoned.is_empty() && report.still_running.is_empty() {
                s.push_str("no abandoned replays\n");
            } else if action == replay::RecoverAction::List && !report.abandoned.is_empty() {
                s.push_str(
                    "close them with --resume, or --abandon --reason TEXT (add saga ids to pick)\n",
                );
            }
            emit(&s);
        }
    }
    Ok(if problems { Exit::Problems } else { Exit::Ok })
}
