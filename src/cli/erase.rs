//! `sagascope erase --subject PATH=VALUE`: erasure of a data subject, with
//! a receipt that never names them.

use clap::Args;

use super::output::{self, emit, emit_json, note};
use super::{CliError, Context, Exit};
use crate::compliance::erase::{self, EraseError, EraseMode, EraseOptions, Receipt, Subject};
use crate::compliance::hold::HoldError;

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The data subject: a configured subject path and its value
    /// (`customer.id=C-123`; `[compliance] subjects` lists the paths).
    #[arg(long, value_name = "PATH=VALUE")]
    pub subject: String,
    /// Show what would be erased; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `tombstone` (replace the personal fields) or `delete` (the sagas);
    /// default: `[compliance] erase`, else tombstone.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the receipt as JSON.
    #[arg(long)]
    pub json: bool,
}

impl From<EraseError> for CliError {
    fn from(e: EraseError) -> Self {
        match e {
            EraseError::Store(e) | EraseError::Hold(HoldError::Store(e)) => e.into(),
            EraseError::Subject(m) => CliError::usage(m),
            e @ (EraseError::Hold(_) | EraseError::Unrecorded { .. }) => {
                CliError::new(Exit::Problems, e.to_string())
            }
        }
    }
}

pub async fn erase(ctx: &mut Context, a: EraseArgs) -> Result<Exit, CliError> {
    let policy = ctx
        .settings
        .compliance()
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    let subject = Subject::parse(&a.subject, &policy)?;
    let mode = match &a.mode {
        Some(m) => EraseMode::parse(m)?,
        None => EraseMode::from_policy(&policy)?,
    };
    if !a.dry_run && !a.yes && !confirm_possible() {
        return Err(CliError::usage(
            "erase asks for confirmation on a terminal; pass --yes to erase without one \
             (or --dry-run to see what would be erased)",
        ));
    }
    let store = ctx.store().await?;
    let mut opts = EraseOptions::new(ctx.settings.identity.clone());
    if !a.dry_run && !a.yes {
        let found = erase::find_subject(&store, &policy, &subject).await?;
        if found.sagas.is_empty() && found.replays.is_empty() {
            note(&format!(
                "no saga or replay log in {} has that value at {} ({} saga(s) read); nothing to erase",
                store.location(),
                subject.path,
                found.sagas_scanned
            ));
            return Ok(Exit::Ok);
        }
        let snapshots: u64 = found.sagas.iter().map(|s| s.snapshots).sum();
        let what = match mode {
            EraseMode::Tombstone => "Replace the personal fields (tombstones) of",
            EraseMode::Delete => "Delete",
        };
        if !output::confirm(&format!(
            "{what} {} saga(s) ({snapshots} snapshot(s)) and {} replay log(s) of the subject at {} in {}?",
            found.sagas.len(),
            found.replays.len(),
            subject.path,
            store.location()
        )) {
            return Err(CliError::usage(
                "not confirmed; nothing erased (pass --yes to confirm without a terminal)",
            ));
        }
    }
    opts.dry_run = a.dry_run;
    let (receipt, unrecorded) = match erase::erase(&store, &policy, &subject, mode, &opts).await {
        Ok(r) => (r, None),
        // Done but not audited: the receipt is still printed, then the error.
        Err(EraseError::Unrecorded { receipt, error }) => {
            let e = EraseError::Unrecorded {
                receipt: receipt.clone(),
                error,
            };
            (*receipt, Some(e))
        }
        Err(e) => return Err(e.into()),
    };
    if a.json {
        emit_json(&receipt);
    } else {
        emit(&render(&receipt, unrecorded.is_none()));
    }
    for h in &receipt.held {
        note(&format!("kept: {}", h.message));
    }
    output::warn_bad(&receipt.unreadable);
    for w in &receipt.warnings {
        note(&format!("warning: {w}"));
    }
    if let Some(e) = unrecorded {
        return Err(e.into());
    }
    Ok(
        if receipt.held.is_empty() && receipt.unreadable.is_empty() {
            Exit::Ok
        } else {
            Exit::Problems
        },
    )
}

/// Whether [`output::confirm`] can ask (a terminal on stdin and stderr).
fn confirm_possible() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && output::stderr_is_tty()
}

fn render(r: &Receipt, recorded: bool) -> String {
    let list = |ids: &[String]| {
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.join("\n             ")
        }
    };
    let title = if r.dry_run {
        format!("erasure (dry run: nothing written; would {})", r.mode)
    } else {
        format!("erasure receipt ({})", r.mode)
    };
    let mut s = format!(
        "{title}\n\
         at:          {}\n\
         actor:       {}\n\
         subject:     {} = sha256:{}\n\
         salt:        {}\n\
         sagas:       {} (of {} read)\n\
         snapshots:   {}\n\
         replay logs: {}\n\
         saga ids:    {}\n\
         replay ids:  {}\n",
        r.at,
        r.actor,
        r.subject_path,
        r.subject_hash,
        r.salt,
        r.sagas,
        r.sagas_scanned,
        r.snapshots,
        r.replay_logs,
        list(&r.saga_ids),
        list(&r.replay_ids),
    );
    let held: Vec<String> = r.held.iter().map(|h| h.saga_id.clone()).collect();
    s.push_str(&format!("held:        {}\n", list(&held)));
    if !r.dry_run && recorded {
        s.push_str("recorded in the audit log (action \"erase\")\n");
    }
    s
}
