//! Moving sagas between stores: `export`, `import` (a portable JSON-lines
//! bundle, see `sagascope::bundle` for the format and the checks) and
//! `migrate` (store to store, with an independent `--verify`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::filter::FilterArgs;
use super::output::{note, stderr_is_tty, warn_bad};
use super::{open_url, CliError, Context, Exit};
use crate::bundle::import::{apply_import, plan_import, ImportError, OnConflict};
use crate::bundle::{self, all_snapshots, replays_oldest_first, BundleError, BundleWriter};
use crate::replay;
use crate::store::{BadEntry, SagaFilter, SagaPageRequest, SnapshotStore};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Saga ids (or unique prefixes). None with --all or a filter.
    pub sagas: Vec<String>,
    /// Every saga in the store.
    #[arg(long)]
    pub all: bool,
    /// Write here instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Sensitive values are exported masked unless revealed (`--reveal
    /// --reason TEXT`, audited per saga).
    #[command(flatten)]
    pub reveal: super::reveal::RevealArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Bundle file; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Import a version 1 bundle (written before bundles ended with a
    /// digest): whether it is complete cannot be checked.
    #[arg(long)]
    pub allow_unverified: bool,
    /// A snapshot or replay-log entry whose id is in the store with
    /// different content: `fail` refuses the import before writing anything
    /// (exit 6), `skip` keeps the store's, `replace` overwrites it.
    #[arg(long, value_enum, default_value_t = ConflictArg::Fail)]
    pub on_conflict: ConflictArg,
}

/// `--on-conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConflictArg {
    Fail,
    Skip,
    Replace,
}

impl From<ConflictArg> for OnConflict {
    fn from(c: ConflictArg) -> Self {
        match c {
            ConflictArg::Fail => OnConflict::Fail,
            ConflictArg::Skip => OnConflict::Skip,
            ConflictArg::Replace => OnConflict::Replace,
        }
    }
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source store URL.
    #[arg(long)]
    pub from: String,
    /// Destination store URL.
    #[arg(long)]
    pub to: String,
    /// After the copy, count and digest the source again, independently of
    /// the copy, and compare with the destination.
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

fn entries(n: u64) -> &'static str {
    if n == 1 {
        "entry"
    } else {
        "entries"
    }
}

pub async fn export(ctx: &mut Context, a: ExportArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    if !a.sagas.is_empty() && (a.all || a.filter.is_set()) {
        return Err(CliError::usage(
            "name sagas to export, or select them with --all or filter flags, not both",
        ));
    }
    let (ids, mut bad) = if a.all || a.filter.is_set() {
        let filter = a.filter.to_filter()?;
        saga_ids(store.as_ref(), &filter).await?
    } else if a.sagas.is_empty() {
        return Err(CliError::usage(
            "name sagas to export, or pass --all or a filter (--status, --name, --step, --since, --until, --id-prefix)",
        ));
    } else {
        let mut ids = Vec::new();
        for s in &a.sagas {
            ids.push(replay::find_saga(store.as_ref(), s).await?.saga_id);
        }
        (ids, Vec::new())
    };
    let out: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            crate::files::create_private_file(p)
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let pb = progress(ids.len() as u64, "exporting");
    // A failure part way leaves the bundle without its end line, so an
    // import refuses it rather than taking it for the whole export.
    let mut w = BundleWriter::new(out)?;
    for id in &ids {
        let (snaps, b1) = all_snapshots(store.as_ref(), id, 5000).await?;
        let (replays, b2) = replays_oldest_first(store.as_ref(), id).await?;
        for s in &snaps {
            w.write_snapshot(s)?;
        }
        for r in &replays {
            w.write_replay(r)?;
        }
        bad.extend(b1);
        bad.extend(b2);
        pb.inc(1);
    }
    let (_, t) = w.finish()?;
    pb.finish_and_clear();
    note(&format!(
        "exported {} saga(s): {} snapshot(s), {} replay log {}",
        ids.len(),
        t.snapshots,
        t.replays,
        entries(t.replays)
    ));
    warn_bad(&bad);
    Ok(if bad.is_empty() {
        Exit::Ok
    } else {
        Exit::Problems
    })
}

impl From<BundleError> for CliError {
    fn from(e: BundleError) -> Self {
        CliError::usage(e.to_string())
    }
}

impl From<ImportError> for CliError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Bundle(b) => b.into(),
            ImportError::Store(s) => s.into(),
            c @ ImportError::Conflicts(_) => CliError::new(Exit::Conflict, c.to_string()),
            m @ ImportError::Masked(_) => CliError::usage(m.to_string()),
        }
    }
}

/// Where the bundle is read from: its file, or stdin copied into a private
/// temporary file (mode 0600 in a 0700 directory, removed on drop) so it
/// can be read more than once — checked whole before anything is written.
struct Source {
    path: PathBuf,
    _spool: Option<crate::files::PrivateTempDir>,
}

impl Source {
    fn open(file: Option<&Path>) -> Result<Source, CliError> {
        if let Some(p) = file.filter(|p| p.as_os_str() != "-") {
            std::fs::File::open(p)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?;
            return Ok(Source {
                path: p.to_path_buf(),
                _spool: None,
            });
        }
        let dir = crate::files::PrivateTempDir::new("sagascope-import")
            .map_err(|e| CliError::usage(format!("cannot make a temporary directory: {e}")))?;
        let path = dir.path().join("bundle.jsonl");
        let mut f = crate::files::create_new_private_file(&path)?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f)?;
        Ok(Source {
            path,
            _spool: Some(dir),
        })
    }

    fn reader(&self) -> Result<impl BufRead, CliError> {
        Ok(std::io::BufReader::new(
            std::fs::File::open(&self.path).map_err(|e| {
                CliError::usage(format!("cannot read {}: {e}", self.path.display()))
            })?,
        ))
    }
}

pub async fn import(ctx: &mut Context, a: ImportArgs) -> Result<Exit, CliError> {
    let source = Source::open(a.file.as_deref())?;
    // 1. The whole bundle, before the store is even opened.
    let check = bundle::validate(source.reader()?, a.allow_unverified)?;
    if !check.verified {
        note("warning: version 1 bundle (no end line): whether it is complete cannot be checked");
    }
    // Compared with and written as the values themselves, never masks.
    let store = crate::store::unmasked(&ctx.store().await?);
    // 2. What the store already has, before anything is written.
    let plan = plan_import(store.as_ref(), bundle::records(source.reader()?)).await?;
    // 3. The writes.
    let r = apply_import(
        store.as_ref(),
        &plan,
        bundle::records(source.reader()?),
        a.on_conflict.into(),
    )
    .await?;
    note(&format!(
        "imported {} snapshot(s) and {} replay log {} ({} snapshot(s) and {} replay log {} were already there)",
        r.snapshots_written,
        r.replays_written,
        entries(r.replays_written),
        r.snapshots_already_there,
        r.replays_already_there,
        entries(r.replays_already_there),
    ));
    if r.conflicts_skipped > 0 {
        note(&format!(
            "kept the store's version of {} conflicting record(s) (--on-conflict skip)",
            r.conflicts_skipped
        ));
    }
    if r.conflicts_replaced > 0 {
        note(&format!(
            "replaced {} conflicting record(s) with the bundle's (--on-conflict replace)",
            r.conflicts_replaced
        ));
    }
    Ok(Exit::Ok)
}

/// Copies one saga; returns (snapshots, replays, bad entries).
async fn copy_saga(
    from: &Arc<dyn SnapshotStore>,
    to: &Arc<dyn SnapshotStore>,
    saga_id: &str,
) -> Result<(usize, usize, Vec<BadEntry>), CliError> {
    let (snaps, mut bad) = all_snapshots(from.as_ref(), saga_id, 5000).await?;
    for chunk in snaps.chunks(1000) {
        to.save_snapshots(chunk).await?;
    }
    let (replays, b2) = replays_oldest_first(from.as_ref(), saga_id).await?;
    bad.extend(b2);
    for r in &replays {
        to.save_replay(r).await?;
    }
    Ok((snaps.len(), replays.len(), bad))
}

pub async fn migrate(ctx: &mut Context, a: MigrateArgs) -> Result<Exit, CliError> {
    // A copy moves the values themselves, never their masks.
    let from = crate::store::unmasked(&open_url(&ctx.settings, &a.from, true).await?);
    let to = crate::store::unmasked(&open_url(&ctx.settings, &a.to, ctx.settings.readonly).await?);
    let all = SagaFilter::default();
    let total = from.count_sagas(&all).await?;
    let pb = progress(total, "migrating");
    let (ids, mut bad) = saga_ids(from.as_ref(), &all).await?;
    let (mut n_snap, mut n_replay) = (0usize, 0usize);
    for id in &ids {
        let (s, r, b) = copy_saga(&from, &to, id).await?;
        n_snap += s;
        n_replay += r;
        bad.extend(b);
        pb.inc(1);
    }
    pb.finish_and_clear();
    note(&format!(
        "migrated {} saga(s): {n_snap} snapshot(s), {n_replay} replay log {} from {} to {}",
        ids.len(),
        entries(n_replay as u64),
        from.location(),
        to.location()
    ));
    let mut verified = true;
    if a.verify {
        let r = bundle::verify::verify_copy(from.as_ref(), to.as_ref()).await?;
        verified = r.verified();
        if verified {
            note(&format!(
                "verified: {} sagas, {} snapshots, {} replays, digests equal",
                r.source_sagas_counted, r.snapshots, r.replays
            ));
        } else {
            for d in &r.differences {
                note(&format!("verify failed: {d}"));
            }
            let more = r.difference_count - r.differences.len() as u64;
            if more > 0 {
                note(&format!("verify failed: … and {more} more difference(s)"));
            }
        }
    }
    warn_bad(&bad);
    Ok(if bad.is_empty() && verified {
        Exit::Ok
    } else {
        Exit::Problems
    })
}
