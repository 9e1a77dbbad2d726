//! `sagascope audit log`: the audit events kept in the store.

use std::collections::VecDeque;

use clap::{Args, Subcommand};

use super::output::{emit, emit_json, note, time_cell, Table};
use super::{CliError, Context, Exit};
use crate::compliance::audit;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest audit events (reveals, erasures, holds, key work),
    /// oldest of them first.
    Log(AuditLogArgs),
}

#[derive(Debug, Args)]
pub struct AuditLogArgs {
    /// Every field of each event, details included, as one JSON array.
    #[arg(long)]
    pub json: bool,
    /// Show at most the newest N events.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
}

pub async fn audit(ctx: &mut Context, c: AuditCommand) -> Result<Exit, CliError> {
    match c {
        AuditCommand::Log(a) => log(ctx, a).await,
    }
}

async fn log(ctx: &mut Context, a: AuditLogArgs) -> Result<Exit, CliError> {
    let store = ctx.store().await?;
    // Events are keyed by time, oldest first; keep the newest `limit`.
    const PAGE: usize = 500;
    let mut newest = VecDeque::with_capacity(a.limit.min(PAGE));
    let mut after: Option<String> = None;
    loop {
        let raw = store.list_meta(audit::KIND, after.as_deref(), PAGE).await?;
        let n = raw.len();
        after = raw.last().map(|(k, _)| k.clone());
        // A record that is not an event is skipped, as `audit::list` does.
        let page = raw
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value::<audit::AuditEvent>(v).ok());
        for e in page {
            if newest.len() == a.limit {
                newest.pop_front();
            }
            if a.limit > 0 {
                newest.push_back(e);
            }
        }
        if n < PAGE {
            break;
        }
    }
    let events: Vec<_> = newest.into_iter().collect();
    if a.json {
        emit_json(&events);
        return Ok(Exit::Ok);
    }
    if events.is_empty() {
        note(&format!("no audit events in {}", store.location()));
        return Ok(Exit::Ok);
    }
    let mut t = Table::new(vec!["TIME", "ACTOR", "ACTION", "SAGA", "PATHS", "REASON"]);
    for e in &events {
        t.row(vec![
            time_cell(&e.at),
            e.actor.clone(),
            e.action.clone(),
            e.saga_id.clone().unwrap_or_else(|| "-".into()),
            if e.paths.is_empty() {
                "-".into()
            } else {
                e.paths.join(",")
            },
            e.reason.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    emit(&t.render());
    Ok(Exit::Ok)
}
