//! `sagascope batch`: one checkpoint step and override applied to many
//! sagas, dry run or real, with bounded concurrency; a progress bar on a
//! terminal, JSON lines when piped; a summary grouping failures by step
//! and error; `--report FILE`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::filter::FilterArgs;
use super::output::{emit, emit_jsonl, note};
use super::replay_run::OverrideArgs;
use super::run::load_definitions;
use super::{CliError, Context, Exit};
use crate::model::SagaStatus;
use crate::replay::batch::{
    dry_run_plan_set, run_batch, select, BatchRequest, BatchSummary, ItemResult, Selection,
};

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    pub o: OverrideArgs,
    /// Saga ids, one per line, from a file (`-` for stdin), instead of the
    /// filter flags. Without either: every failed or rolled_back saga.
    #[arg(long, value_name = "FILE", conflicts_with = "FilterArgs")]
    pub ids_from: Option<PathBuf>,
    /// At most this many sagas.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Replays in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Write the summary and every saga's result as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

fn read_ids(path: &PathBuf) -> Result<Vec<String>, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

pub async fn batch(ctx: &mut Context, a: BatchArgs) -> Result<Exit, CliError> {
    if a.concurrency == 0 {
        return Err(CliError::usage("--concurrency must be at least 1"));
    }
    if a.o.from_snapshot.is_some() {
        return Err(CliError::usage(
            "batch replays every saga from a step: use --from-step (--from-snapshot picks one saga's snapshot; use `replay run`)",
        ));
    }
    let spec = a.o.spec()?;
    let opts = a.o.options(ctx)?;
    let selection = match &a.ids_from {
        Some(p) => Selection::Ids(read_ids(p)?),
        None => {
            let mut filter = a.filter.to_filter()?;
            if filter.statuses.is_empty() {
                filter.statuses = vec![SagaStatus::Failed, SagaStatus::RolledBack];
            }
            Selection::Filter(filter)
        }
    };
    let defs = load_definitions(ctx, &a.o.definitions)?;
    let store = ctx.store().await?;
    let targets = select(store.as_ref(), &selection, a.limit).await?;
    let req = BatchRequest {
        selection,
        spec,
        opts,
        concurrency: a.concurrency,
        limit: a.limit,
    };
    // Piped output gets JSON lines; a person gets a bar and a table.
    let tty = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    let pb = if tty {
        let pb = ProgressBar::new(targets.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}")
        {
            pb.set_style(style);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let on_item = |item: &crate::replay::batch::BatchItem| {
        if tty {
            pb.inc(1);
            if item.result != ItemResult::Ok {
                pb.set_message(format!(
                    "{} not ok",
                    super::output::printable_line(&item.saga_id)
                ));
            }
        } else {
            emit_jsonl(item);
        }
    };
    let (summary, items) = match &a.o.plan_out {
        Some(path) => {
            let (summary, items, set) =
                dry_run_plan_set(&store, &defs, &req, targets, &on_item).await;
            pb.finish_and_clear();
            super::replay_run::write_plan_file(path, &set)?;
            (summary, items)
        }
        None => run_batch(&store, &defs, &req, targets, &on_item).await,
    };
    pb.finish_and_clear();
    if let Some(path) = &a.report {
        let doc = serde_json::json!({"summary": summary, "items": items});
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        crate::files::write_private_file(path, (text + "\n").as_bytes())
            .map_err(|e| CliError::usage(format!("cannot write report {}: {e}", path.display())))?;
    }
    if tty {
        emit(&render_summary(&summary));
    } else {
        emit_jsonl(&serde_json::json!({"summary": summary}));
    }
    if summary.total == 0 {
        note("no saga matched the selection");
    }
    Ok(if summary.has_problems() {
        Exit::Problems
    } else {
        Exit::Ok
    })
}

/// The summary for people.
pub fn render_summary(s: &BatchSummary) -> String {
    let mut out = format!(
        "{} {} saga{} from {} in {:.2}s ({:.0}/s): {} ok, {} failed, {} skipped{}, {} locked, {}{} errors\n",
        if s.dry_run { "Dry-ran" } else { "Replayed" },
        s.total,
        if s.total == 1 { "" } else { "s" },
        s.from_step,
        s.elapsed_secs,
        s.sagas_per_sec,
        s.ok,
        s.failed,
        s.skipped,
        if s.skipped > 0 {
            " (completed, already replayed or maybe running: --allow-completed, --again, --force)"
        } else {
            ""
        },
        s.locked,
        if s.abandoned > 0 {
            format!(
                "{} with an abandoned replay (see `sagascope replay recover`), ",
                s.abandoned
            )
        } else {
            String::new()
        },
        s.errors,
    );
    if !s.failure_groups.is_empty() {
        out.push_str("\nFailures by step and error:\n");
        for g in &s.failure_groups {
            out.push_str(&format!(
                "  {:>5}  {:<20} {}\n",
                g.count,
                g.step,
                g.error.lines().next().unwrap_or("")
            ));
        }
    }
    out
}
