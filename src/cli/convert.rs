//! `sagascope encrypt` and `sagascope keys rotate`: thin over
//! [`crate::compliance::convert`] — flags, confirmation, progress on
//! stderr, the summary.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::output::{self, emit, emit_json, note, Format};
use super::{CliError, Context, Exit};
use crate::compliance::convert::{
    self, ConvertError, ConvertOptions, ConvertReport, JobKind, Progress,
};
use crate::config::StoreAccess;
use crate::store::{self, OpenOptions, SnapshotStore};

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Count what would be encrypted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Sagas per step (a progress record is written after each).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub batch: usize,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every data key under another master key (or, with
    /// --reencrypt, re-encrypt every value under a fresh data key of it).
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The master key id to rotate to (configured in
    /// [compliance.encryption.keys]).
    #[arg(long, value_name = "KEY_ID")]
    pub to: String,
    /// Re-encrypt every value under a fresh data key (default: re-wrap the
    /// data keys, leaving the values as they are).
    #[arg(long)]
    pub reencrypt: bool,
    /// Count what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Sagas per step (a progress record is written after each).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub batch: usize,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// What the commands do to the store.
pub fn access(dry_run: bool) -> StoreAccess {
    if dry_run {
        StoreAccess::Read
    } else {
        StoreAccess::Write
    }
}

/// The store as stored (below the protection layer) and the policy.
async fn open(
    ctx: &Context,
) -> Result<
    (
        std::sync::Arc<dyn SnapshotStore>,
        crate::compliance::Compliance,
    ),
    CliError,
> {
    let policy = ctx
        .settings
        .compliance()
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    let opts = OpenOptions {
        readonly: ctx.settings.readonly,
        compression: ctx.settings.compression,
        must_exist: ctx.settings.store_must_exist(ctx.access),
    };
    let store = store::open(&ctx.settings.store, &opts).await?;
    Ok((store, policy))
}

pub async fn encrypt(ctx: &mut Context, a: EncryptArgs) -> Result<Exit, CliError> {
    let (store, policy) = open(ctx).await?;
    let Some(target) = policy
        .encryption
        .as_ref()
        .and_then(|e| e.current_master())
        .map(str::to_string)
    else {
        return Err(CliError::usage(
            "no key to encrypt under: set [compliance.encryption] key = \"<id>\" and \
             [compliance.encryption.keys.<id>] in the config",
        ));
    };
    if !a.dry_run
        && !a.yes
        && !output::confirm(&format!(
            "Encrypt every sensitive value in clear in {} under key {target}? Afterwards it \
             reads only with that key",
            store.location()
        ))
    {
        return Err(CliError::usage(
            "not confirmed; nothing changed (pass --yes to confirm without a terminal)",
        ));
    }
    let opts = options(ctx, a.dry_run, a.batch)?;
    let bar = Bar::new("encrypt");
    let r = convert::encrypt_store(store.as_ref(), &policy, &opts, |p| bar.update(p)).await;
    bar.finish();
    finish(r?, a.format)
}

pub async fn keys(ctx: &mut Context, c: KeysCommand) -> Result<Exit, CliError> {
    match c {
        KeysCommand::Rotate(a) => rotate(ctx, a).await,
    }
}

async fn rotate(ctx: &mut Context, a: RotateArgs) -> Result<Exit, CliError> {
    let (store, policy) = open(ctx).await?;
    let what = if a.reencrypt {
        "Re-encrypt every encrypted value"
    } else {
        "Re-wrap every data key"
    };
    if !a.dry_run
        && !a.yes
        && !output::confirm(&format!(
            "{what} in {} under key {}?",
            store.location(),
            a.to
        ))
    {
        return Err(CliError::usage(
            "not confirmed; nothing changed (pass --yes to confirm without a terminal)",
        ));
    }
    let opts = options(ctx, a.dry_run, a.batch)?;
    let bar = Bar::new(if a.reencrypt { "re-encrypt" } else { "re-wrap" });
    let r = convert::rotate_store(store.as_ref(), &policy, &a.to, a.reencrypt, &opts, |p| {
        bar.update(p)
    })
    .await;
    bar.finish();
    finish(r?, a.format)
}

fn options(ctx: &Context, dry_run: bool, batch: usize) -> Result<ConvertOptions, CliError> {
    if batch == 0 {
        return Err(CliError::usage("--batch must be at least 1"));
    }
    Ok(ConvertOptions {
        dry_run,
        batch,
        actor: ctx.settings.identity.clone(),
    })
}

/// A bar on a terminal; a line per step otherwise (logs, CI, a script
/// that waits for the work to start).
struct Bar {
    what: &'static str,
    pb: Option<ProgressBar>,
}

impl Bar {
    fn new(what: &'static str) -> Self {
        let pb = output::stderr_is_tty().then(|| {
            let pb = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} {bar:40} {pos}/{len} sagas {per_sec} eta {eta} {msg}",
            ) {
                pb.set_style(style);
            }
            pb.set_prefix(what);
            pb
        });
        Bar { what, pb }
    }

    fn update(&self, p: Progress<'_>) {
        let r = p.report;
        match &self.pb {
            Some(pb) => {
                pb.set_length(p.sagas_total.max(r.sagas));
                pb.set_position(r.sagas);
                pb.set_message(format!("{} snapshot(s) changed", r.snapshots_changed));
            }
            None => note(&format!(
                "{}: {}/{} saga(s), {} snapshot(s) changed, {} unchanged, {} unreadable",
                self.what,
                r.sagas,
                p.sagas_total.max(r.sagas),
                r.snapshots_changed,
                r.snapshots_unchanged,
                r.snapshots_unreadable
            )),
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
    }
}

fn finish(r: ConvertReport, format: Format) -> Result<Exit, CliError> {
    match format {
        Format::Json | Format::Jsonl => emit_json(&json!(r)),
        _ => {
            let job = match r.job {
                Some(JobKind::Encrypt) => "encrypted",
                Some(JobKind::Rewrap) => "re-wrapped",
                Some(JobKind::Reencrypt) => "re-encrypted",
                None => "converted",
            };
            let mut s = format!(
                "{}{} under key {}{}\nsagas:      {}\nsnapshots:  {} changed, {} unchanged, {} unreadable\nreplays:    {} changed, {} unchanged, {} unreadable\n",
                if r.dry_run { "dry run: would have " } else { "" },
                job,
                r.target,
                if r.resumed { " (continued an earlier run)" } else { "" },
                r.sagas,
                r.snapshots_changed,
                r.snapshots_unchanged,
                r.snapshots_unreadable,
                r.replays_changed,
                r.replays_unchanged,
                r.replays_unreadable,
            );
            for p in &r.problems {
                s.push_str(&format!(
                    "problem:    {} {}: {}\n",
                    p.saga_id.as_deref().unwrap_or("-"),
                    output::printable_line(&p.key),
                    output::printable_line(&p.error)
                ));
            }
            emit(&s);
        }
    }
    Ok(if r.has_problems() {
        Exit::Problems
    } else {
        Exit::Ok
    })
}

impl From<ConvertError> for CliError {
    fn from(e: ConvertError) -> Self {
        match e {
            ConvertError::Config(c) => CliError::usage(c.to_string()),
            ConvertError::Key(k) => CliError::new(Exit::Denied, k.to_string()).with_hint(
                "the run stopped; fix the key and run the same command again: it continues \
                 where it stopped",
            ),
            ConvertError::Store(s) => {
                let mut c = CliError::from(s);
                c.hint =
                    Some("run the same command again: it continues where it stopped".to_string());
                c
            }
        }
    }
}
