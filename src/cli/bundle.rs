//! Moving sagas between stores: `export`, `import` (a portable JSON-lines
//! bundle) and `migrate` (store to store).
//!
//! Bundle format, one JSON object per line:
//! `{"sagascope_bundle": 1}` first, then per saga its snapshots oldest first
//! (`{"snapshot": {…sagaz dict…}}`) and its replay log oldest first
//! (`{"replay": {…}}`). The same data always gives the same bytes, so
//! export → import → export is byte-identical.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::output::{note, stderr_is_tty, warn_bad};
use super::{open_url, CliError, Context, Exit};
use crate::model::{ReplayLog, SagaStatus, Snapshot};
use crate::replay;
use crate::store::{BadEntry, SagaFilter, SagaPageRequest, SnapshotQuery, SnapshotStore};

pub const BUNDLE_VERSION: u64 = 1;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Saga ids (or unique prefixes). None with --all or a filter.
    pub sagas: Vec<String>,
    /// Every saga in the store.
    #[arg(long)]
    pub all: bool,
    /// Every saga whose newest snapshot has this status.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// Every saga with this name.
    #[arg(long)]
    pub name: Option<String>,
    /// Write here instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Bundle file; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source store URL.
    #[arg(long)]
    pub from: String,
    /// Destination store URL.
    #[arg(long)]
    pub to: String,
    /// Read every saga back from the destination and compare.
    #[arg(long)]
    pub verify: bool,
}

fn progress(total: u64, what: &str) -> ProgressBar {
    if !stderr_is_tty() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} sagas ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Every snapshot of a saga, oldest first, paging so memory stays bounded
/// per page.
pub async fn all_snapshots(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<(Vec<Snapshot>, Vec<BadEntry>), CliError> {
    let listing = crate::store::all_snapshots(store, saga_id, SnapshotQuery::all()).await?;
    Ok((listing.items, listing.bad))
}

/// A saga's replay log, oldest first (a stable order for bundles).
async fn replays_oldest_first(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<(Vec<ReplayLog>, Vec<BadEntry>), CliError> {
    let listing = store.list_replays(saga_id, None).await?;
    let mut items = listing.items;
    items.sort_by(|a, b| (a.created_at, &a.replay_id).cmp(&(b.created_at, &b.replay_id)));
    Ok((items, listing.bad))
}

/// Every saga id matching a filter, in list order.
async fn saga_ids(
    store: &dyn SnapshotStore,
    filter: &SagaFilter,
) -> Result<(Vec<String>, Vec<BadEntry>), CliError> {
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    let mut req = SagaPageRequest {
        limit: 1000,
        after: None,
    };
    loop {
        let page = store.list_sagas(filter, &req).await?;
        ids.extend(page.sagas.into_iter().map(|s| s.saga_id));
        bad.extend(page.bad);
        match page.next {
            Some(n) => req.after = Some(n),
            None => break,
        }
    }
    Ok((ids, bad))
}

pub async fn export(ctx: &mut Context, a: ExportArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let filtered = !a.status.is_empty() || a.name.is_some();
    let (ids, mut bad) = if a.all || filtered {
        let filter = SagaFilter {
            statuses: a
                .status
                .iter()
                .map(|s| {
                    SagaStatus::parse_known(s)
                        .map_err(|e| CliError::usage(format!("--status: {e}")))
                })
                .collect::<Result<_, _>>()?,
            name: a.name.clone(),
            ..SagaFilter::default()
        };
        saga_ids(store.as_ref(), &filter).await?
    } else if a.sagas.is_empty() {
        return Err(CliError::usage(
            "name sagas to export, or pass --all, --status or --name",
        ));
    } else {
        let mut ids = Vec::new();
        for s in &a.sagas {
            ids.push(replay::find_saga(store.as_ref(), s).await?.saga_id);
        }
        (ids, Vec::new())
    };
    let mut out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            crate::files::create_private_file(p)
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let pb = progress(ids.len() as u64, "exporting");
    let write = |out: &mut Box<dyn Write>, v: &Value| -> Result<(), CliError> {
        serde_json::to_writer(&mut *out, v).map_err(|e| CliError::usage(e.to_string()))?;
        out.write_all(b"\n")?;
        Ok(())
    };
    write(&mut out, &json!({"sagascope_bundle": BUNDLE_VERSION}))?;
    let (mut n_snap, mut n_replay) = (0usize, 0usize);
    for id in &ids {
        let (snaps, b1) = all_snapshots(store.as_ref(), id).await?;
        let (replays, b2) = replays_oldest_first(store.as_ref(), id).await?;
        for s in &snaps {
            write(&mut out, &json!({"snapshot": s.to_json()}))?;
        }
        for r in &replays {
            write(&mut out, &json!({"replay": r.to_json()}))?;
        }
        n_snap += snaps.len();
        n_replay += replays.len();
        bad.extend(b1);
        bad.extend(b2);
        pb.inc(1);
    }
    out.flush()?;
    pb.finish_and_clear();
    note(&format!(
        "exported {} saga(s): {n_snap} snapshot(s), {n_replay} replay log entr{}",
        ids.len(),
        if n_replay == 1 { "y" } else { "ies" }
    ));
    warn_bad(&bad);
    Ok(if bad.is_empty() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

pub async fn import(ctx: &mut Context, a: ImportArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let reader: Box<dyn BufRead> = match &a.file {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
            std::fs::File::open(p)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?,
        )),
        _ => Box::new(std::io::BufReader::new(std::io::stdin().lock())),
    };
    let mut batch: Vec<Snapshot> = Vec::new();
    let (mut n_snap, mut n_replay) = (0usize, 0usize);
    let mut problems: Vec<String> = Vec::new();
    let mut header_seen = false;
    for (i, line) in reader.lines().enumerate() {
        let lineno = i + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("line {lineno}: invalid JSON: {e}"));
                continue;
            }
        };
        if !header_seen {
            match v.get("sagascope_bundle").and_then(Value::as_u64) {
                Some(BUNDLE_VERSION) => {
                    header_seen = true;
                    continue;
                }
                Some(other) => {
                    return Err(CliError::usage(format!(
                        "bundle version {other} is newer than this sagascope reads ({BUNDLE_VERSION}); upgrade sagascope"
                    )))
                }
                None => return Err(CliError::usage("not a sagascope bundle: the first line must be {\"sagascope_bundle\": 1}")),
            }
        }
        if let Some(s) = v.get("snapshot") {
            match Snapshot::from_json(s.clone()) {
                Ok(s) => {
                    batch.push(s);
                    n_snap += 1;
                    if batch.len() >= 1000 {
                        store.save_snapshots(&batch).await?;
                        batch.clear();
                    }
                }
                Err(e) => problems.push(format!("line {lineno}: snapshot: {e}")),
            }
        } else if let Some(r) = v.get("replay") {
            match ReplayLog::from_json(r.clone()) {
                Ok(r) => {
                    store.save_replay(&r).await?;
                    n_replay += 1;
                }
                Err(e) => problems.push(format!("line {lineno}: replay: {e}")),
            }
        } else {
            problems.push(format!("line {lineno}: neither a snapshot nor a replay"));
        }
    }
    if !batch.is_empty() {
        store.save_snapshots(&batch).await?;
    }
    if !header_seen {
        return Err(CliError::usage("empty bundle"));
    }
    note(&format!(
        "imported {n_snap} snapshot(s) and {n_replay} replay log entr{}",
        if n_replay == 1 { "y" } else { "ies" }
    ));
    for p in &problems {
        note(&format!("skipped {p}"));
    }
    Ok(if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

/// Copies one saga; returns (snapshots, replays, bad entries).
async fn copy_saga(
    from: &Arc<dyn SnapshotStore>,
    to: &Arc<dyn SnapshotStore>,
    saga_id: &str,
    verify: bool,
) -> Result<(usize, usize, Vec<BadEntry>, Option<String>), CliError> {
    let (snaps, mut bad) = all_snapshots(from.as_ref(), saga_id).await?;
    for chunk in snaps.chunks(1000) {
        to.save_snapshots(chunk).await?;
    }
    let (replays, b2) = replays_oldest_first(from.as_ref(), saga_id).await?;
    bad.extend(b2);
    for r in &replays {
        to.save_replay(r).await?;
    }
    let mut mismatch = None;
    if verify {
        let (back, _) = all_snapshots(to.as_ref(), saga_id).await?;
        let caps = to.capabilities();
        let same = back.len() == snaps.len()
            && back.iter().zip(&snaps).all(|(x, y)| {
                x.snapshot_id == y.snapshot_id
                    && x.context == y.context
                    && x.completed_steps == y.completed_steps
                    && x.status == y.status
                    && x.created_at == y.created_at
                    && (!caps.stores_external_refs || x.external_refs == y.external_refs)
            });
        if !same {
            mismatch = Some(format!(
                "saga {saga_id}: destination has {} snapshot(s), source {} (or contents differ)",
                back.len(),
                snaps.len()
            ));
        }
    }
    Ok((snaps.len(), replays.len(), bad, mismatch))
}

pub async fn migrate(ctx: &mut Context, a: MigrateArgs) -> Result<Exit, CliError> {
    let from = open_url(&ctx.settings, &a.from, true).await?;
    let to = open_url(&ctx.settings, &a.to, ctx.settings.readonly).await?;
    let all = SagaFilter::default();
    let total = from.count_sagas(&all).await?;
    let pb = progress(total, "migrating");
    let (ids, mut bad) = saga_ids(from.as_ref(), &all).await?;
    let (mut n_snap, mut n_replay) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for id in &ids {
        let (s, r, b, m) = copy_saga(&from, &to, id, a.verify).await?;
        n_snap += s;
        n_replay += r;
        bad.extend(b);
        mismatches.extend(m);
        pb.inc(1);
    }
    pb.finish_and_clear();
    note(&format!(
        "migrated {} saga(s): {n_snap} snapshot(s), {n_replay} replay log entr{} from {} to {}",
        ids.len(),
        if n_replay == 1 { "y" } else { "ies" },
        from.location(),
        to.location()
    ));
    if a.verify {
        if mismatches.is_empty() {
            note("verified: the destination holds every snapshot, equal to the source");
        } else {
            for m in &mismatches {
                note(&format!("verify failed: {m}"));
            }
        }
    }
    warn_bad(&bad);
    Ok(if bad.is_empty() && mismatches.is_empty() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}
