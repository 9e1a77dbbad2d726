//! `sagascope hold place|release|list`: legal holds on sagas.

use clap::{Args, Subcommand};

use super::output::{emit, emit_json, note, time_cell, Table};
use super::{CliError, Context, Exit};
use crate::compliance::hold::{self, HoldError};
use crate::replay::find_saga;

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Put a saga on legal hold: gc and erase leave it alone, and its
    /// snapshots lose their expiry until the hold is released.
    Place(HoldChangeArgs),
    /// Release a saga's legal hold, restoring its snapshots' expiry.
    Release(HoldChangeArgs),
    /// The sagas on legal hold.
    List(HoldListArgs),
}

#[derive(Debug, Args)]
pub struct HoldChangeArgs {
    /// The saga (id or unique id prefix).
    pub saga_id: String,
    /// Why (kept in the hold and the audit log).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct HoldListArgs {
    /// Every hold as one JSON array (with each snapshot's retention
    /// before the hold).
    #[arg(long)]
    pub json: bool,
}

impl From<HoldError> for CliError {
    fn from(e: HoldError) -> Self {
        match e {
            HoldError::Store(s) => s.into(),
            HoldError::NoSuchSaga { .. } | HoldError::NotHeld { .. } => {
                CliError::new(Exit::NotFound, e.to_string())
            }
            HoldError::AlreadyHeld { .. } => CliError::new(Exit::Conflict, e.to_string()),
            HoldError::BadRecord { .. } => CliError::new(Exit::Problems, e.to_string()),
        }
    }
}

fn reason(a: &HoldChangeArgs) -> Result<String, CliError> {
    let r = a.reason.trim();
    if r.is_empty() {
        return Err(CliError::usage(
            "--reason must say why (it goes to the audit log)",
        ));
    }
    Ok(r.to_string())
}

pub async fn hold(ctx: &mut Context, c: HoldCommand) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    let actor = ctx.settings.identity.clone();
    match c {
        HoldCommand::Place(a) => {
            let reason = reason(&a)?;
            let saga = find_saga(store.as_ref(), &a.saga_id).await?;
            let h = hold::place(&store, &saga.saga_id, &actor, &reason).await?;
            note(&format!(
                "placed a legal hold on saga {} ({}, {} snapshot(s) kept until released)",
                h.saga_id,
                saga.saga_name,
                h.previous_retention.len()
            ));
        }
        HoldCommand::Release(a) => {
            let reason = reason(&a)?;
            // A held saga by its full id, else a prefix of a saga's id.
            let id = match hold::get(store.as_ref(), a.saga_id.trim()).await? {
                Some(h) => h.saga_id,
                None => find_saga(store.as_ref(), &a.saga_id).await?.saga_id,
            };
            let h = hold::release(&store, &id, &actor, &reason).await?;
            note(&format!(
                "released the legal hold on saga {} (placed {} by {}); its snapshots' retention is restored",
                h.saga_id, h.placed_at, h.placed_by
            ));
        }
        HoldCommand::List(a) => {
            let holds = hold::list(store.as_ref()).await?;
            if a.json {
                emit_json(&holds);
            } else if holds.is_empty() {
                note(&format!("no legal holds in {}", store.location()));
            } else {
                let mut t = Table::new(vec!["SAGA", "PLACED", "BY", "SNAPSHOTS", "REASON"]);
                for h in &holds {
                    t.row(vec![
                        h.saga_id.clone(),
                        time_cell(&h.placed_at),
                        h.placed_by.clone(),
                        h.previous_retention.len().to_string(),
                        h.reason.clone(),
                    ]);
                }
                emit(&t.render());
            }
        }
    }
    Ok(Exit::Ok)
}
