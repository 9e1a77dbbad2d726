//! `sagascope replay run`: replay a saga from a checkpoint with an edited
//! context, for real or as a dry run (a plan, as a table or JSON).

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use super::output::{emit, emit_json, Format};
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

/// The override and merge flags `replay run` and `batch` share.
#[derive(Debug, Clone, Args)]
pub struct OverrideArgs {
    /// Checkpoint: replay from this step (its newest snapshot).
    #[arg(long, value_name = "STEP")]
    pub from_step: String,
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
            from_step: self.from_step.clone(),
            context_override: replay::build_override(
                self.override_file.as_deref(),
                self.override_json.as_deref(),
                &self.overrides,
            )?,
            merge: self.merge.into(),
            force_failure: self.force_failure,
        })
    }

    pub fn options(&self, ctx: &Context) -> Result<ReplayOptions, CliError> {
        Ok(ReplayOptions {
            initiated_by: ctx.settings.identity.clone(),
            reason: self.reason.clone(),
            dry_run: self.dry_run,
            lock_ttl: lock_ttl(ctx, self.lock_ttl)?,
            lock_owner: replay::lock_owner(&ctx.settings.identity),
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
    let report = replay::replay(&store, &defs, &a.saga_id, &spec, &opts, &events).await?;
    if opts.dry_run {
        match a.format {
            Format::Json | Format::Jsonl => {
                emit_json(&json!({"plan": report.plan, "replay_log": report.log}))
            }
            _ => emit(&render_plan(&report.plan, &report.log.replay_id)),
        }
        return match report.plan.first_error() {
            None => Ok(Exit::Ok),
            Some(e) => Err(CliError::new(plan_exit(e.kind), e.message.clone())),
        };
    }
    let outcome = report.outcome.as_ref();
    match a.format {
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
    Ok(if report.succeeded() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

fn v(s: &Option<Value>) -> String {
    s.as_ref().map(compact).unwrap_or_else(|| "∅".into())
}

/// The dry-run plan for people.
pub fn render_plan(p: &ReplayPlan, replay_id: &str) -> String {
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
                "snapshot {} — {} #{} ({}, {})",
                short_id(&c.snapshot_id),
                c.step_name,
                c.step_index,
                c.status,
                super::output::time_cell(&c.created_at)
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
    row(&mut s, "steps skipped", dash(&p.steps_skipped, ", "));
    row(&mut s, "steps that would run", dash(&p.steps_to_run, " → "));
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
    s.push_str(&format!(
        "\nNothing was executed. Logged as dry run {replay_id} (see `sagascope replay history {}`).\n",
        short_id(&p.original_saga_id)
    ));
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
    /// Why: recorded in the replay log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// A definition file or folder (repeatable), besides the config's.
    #[arg(long, value_name = "PATH")]
    pub definitions: Vec<PathBuf>,
    /// Seconds the replay lock lasts without renewal while resuming.
    #[arg(long, value_name = "SECS")]
    pub lock_ttl: Option<f64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `sagascope replay recover`: list abandoned replays (their lock expired,
/// their log entry still `running`) and resume or close them.
pub async fn replay_recover(ctx: &mut Context, a: RecoverArgs) -> Result<Exit, CliError> {
    let action = match (a.resume, a.abandon) {
        (true, _) => replay::RecoverAction::Resume,
        (_, true) => replay::RecoverAction::Abandon {
            reason: a.reason.clone().unwrap_or_default(),
        },
        _ => replay::RecoverAction::List,
    };
    let opts = replay::RecoverOptions {
        action: action.clone(),
        by: ctx.settings.identity.clone(),
        lock_owner: replay::lock_owner(&ctx.settings.identity),
        lock_ttl: lock_ttl(ctx, a.lock_ttl)?,
    };
    let defs = load_definitions(ctx, &a.definitions)?;
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
        Format::Json | Format::Jsonl => emit_json(&report),
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
