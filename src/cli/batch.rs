//! `sagascope batch`: one checkpoint step and override applied to many
//! sagas, dry run or real, with bounded concurrency; a progress bar on a
//! terminal, JSON lines when piped; a summary grouping failures by step
//! and kind of error; `--report FILE` (JSON) and `--junit FILE` (JUnit XML).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::filter::FilterArgs;
use super::output::{emit, emit_jsonl, note};
use super::replay_run::OverrideArgs;
use super::run::load_definitions;
use super::{CliError, Context, Exit};
use crate::model::SagaStatus;
use crate::replay::batch::{
    dry_run_plan_set, run_batch, select, BatchItem, BatchRequest, BatchSummary, ItemResult,
    Selection,
};
use crate::store::SnapshotStore;

/// Shown after `batch --help`: what the reports hold and the exit codes.
const BATCH_AFTER_HELP: &str = "\
Output: a progress bar and a summary table on a terminal; JSON lines when
piped (one per saga, then {\"summary\": …}). Failures are grouped by step and
kind of error: ids, numbers, uuids and timestamps in error texts are replaced
by placeholders (<id>, <n>, <uuid>, <time>) to form the group's `error`; the
group's `example` keeps one real error.

Reports (either or both, after the batch ran):
  --report FILE  JSON: {\"summary\": …, \"items\": [one per saga]}
  --junit FILE   JUnit XML for CI: one testcase per saga (classname = saga
                 name, name = saga id, time in seconds); <failure type=RESULT
                 message=ERROR> for failed, locked, abandoned and error;
                 <skipped> for sagas a guard refused

Skipped: a saga the guards refuse is skipped, by the dry run exactly as by
the real run: it completed (--allow-completed), was already replayed
successfully (--again), or may still be running (--force). So a batch can
be run again: what succeeded is skipped.

Exit codes:
  0  every saga ok or skipped
  1  some saga failed, was locked, has an abandoned replay or could not be
     replayed (see the summary and the reports)
  2  usage or input error (flags, override, --ids-from file, a report file
     that cannot be written)
  3  store unreachable or failing
  4  read-only mode refuses batches and their dry runs
A saga that cannot be replayed (not found, no snapshot for the step, no
definition, unknown step, a step that must not run again) is an error item
of the batch (exit 1), in the dry run as in the real run.";

#[derive(Debug, Args)]
#[command(after_long_help = BATCH_AFTER_HELP)]
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
    /// Write every saga's result as JUnit XML to this file (one testcase per
    /// saga), for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
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
    let mut items = items;
    if a.report.is_some() || a.junit.is_some() {
        name_the_unnamed(store.as_ref(), &mut items).await;
    }
    if let Some(path) = &a.report {
        let doc = serde_json::json!({"summary": summary, "items": items});
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        crate::files::write_private_file(path, (text + "\n").as_bytes())
            .map_err(|e| CliError::usage(format!("cannot write report {}: {e}", path.display())))?;
    }
    if let Some(path) = &a.junit {
        let xml = super::junit::junit_xml(&summary, &items);
        crate::files::write_private_file(path, xml.as_bytes()).map_err(|e| {
            CliError::usage(format!("cannot write JUnit report {}: {e}", path.display()))
        })?;
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

/// Looks up the names of sagas a batch took by id and never planned (those
/// skipped as already replayed), so every report line says which saga kind
/// it is (JUnit's classname). A saga the store does not know keeps `None`.
async fn name_the_unnamed(store: &dyn SnapshotStore, items: &mut [BatchItem]) {
    let names: Vec<(usize, String)> = futures::stream::iter(
        items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.saga_name.is_none())
            .map(|(n, i)| (n, i.saga_id.clone())),
    )
    .map(|(n, id)| async move {
        let name = store
            .saga_summary(&id)
            .await
            .ok()
            .flatten()
            .map(|s| s.saga_name);
        name.map(|name| (n, name))
    })
    .buffer_unordered(16)
    .filter_map(std::future::ready)
    .collect()
    .await;
    for (n, name) in names {
        items[n].saga_name = Some(name);
    }
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
                super::output::printable_line(g.error.lines().next().unwrap_or(""))
            ));
            // The key has placeholders; one real error shows what they stand for.
            if g.example != g.error {
                out.push_str(&format!(
                    "  {:>5}  {:<20} e.g. {}\n",
                    "",
                    "",
                    super::output::printable_line(g.example.lines().next().unwrap_or(""))
                ));
            }
        }
    }
    out
}
