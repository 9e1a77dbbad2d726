//! `--reveal --reason TEXT` on the reading commands: show sensitive values
//! instead of their masks, each revealed saga recorded in the store's audit
//! log (who, when, which saga and paths, why). A reason is required: asked
//! for on a terminal, a usage error (exit 2) without one.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use clap::Args;

use super::CliError;
use crate::compliance::RevealAudit;

/// The flags of a reading command that can reveal.
#[derive(Debug, Clone, Default, Args)]
pub struct RevealArgs {
    /// Show sensitive values in clear instead of masked; each saga shown
    /// is recorded in the store's audit log (refused when the store cannot
    /// keep audit events).
    #[arg(long)]
    pub reveal: bool,
    /// Why the values are revealed (recorded with the audit event; asked
    /// for on a terminal when missing).
    #[arg(long, value_name = "TEXT", requires = "reveal")]
    pub reason: Option<String>,
}

impl RevealArgs {
    /// The reveal to attach to the settings, `None` without `--reveal`.
    pub fn audit(&self, actor: &str) -> Result<Option<Arc<RevealAudit>>, CliError> {
        if !self.reveal {
            return Ok(None);
        }
        let reason = match self.reason.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => r.to_string(),
            Some(_) => return Err(CliError::usage("--reason must not be empty")),
            None => ask_reason()?,
        };
        Ok(Some(Arc::new(RevealAudit::new(actor, reason))))
    }
}

/// Asks for the reason on the terminal; without one, a usage error.
fn ask_reason() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Err(CliError::usage(
            "--reveal needs --reason TEXT (it is recorded in the audit log; no terminal to ask on)",
        ));
    }
    eprint!("Reason for revealing sensitive values (recorded in the audit log): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("cannot read the reason: {e}")))?;
    let r = line.trim();
    if r.is_empty() {
        return Err(CliError::usage("--reveal needs a reason; none was given"));
    }
    Ok(r.to_string())
}

/// The sensitive paths output masks with: `None` when revealing or when
/// `[compliance] mask = false`. For what the commands print from reads
/// that were not masked by the store (a replay's plan is rebuilt from the
/// values under its lock).
pub fn output_mask(
    settings: &crate::config::Settings,
) -> Option<crate::compliance::SensitivePaths> {
    let c = &settings.file.compliance;
    if settings.reveal.is_some() || c.mask == Some(false) {
        return None;
    }
    // A bad pattern already stopped the store from opening.
    crate::compliance::SensitivePaths::parse(&c.sensitive).ok()
}

/// `plan` as printed: masked unless revealing.
pub fn shown_plan(
    settings: &crate::config::Settings,
    plan: &crate::replay::ReplayPlan,
) -> crate::replay::ReplayPlan {
    let mut p = plan.clone();
    if let Some(s) = output_mask(settings) {
        p.mask(&s);
    }
    p
}

/// A replay-log entry as printed: its override masked unless revealing.
pub fn shown_log(
    settings: &crate::config::Settings,
    log: &crate::model::ReplayLog,
) -> crate::model::ReplayLog {
    let mut l = log.clone();
    if let Some(s) = output_mask(settings) {
        crate::compliance::mask::mask_replay_log(&s, &mut l);
    }
    l
}

/// A run's outcome as printed: its final context masked unless revealing.
pub fn shown_outcome(
    settings: &crate::config::Settings,
    o: &crate::engine::RunOutcome,
) -> crate::engine::RunOutcome {
    let mut o = o.clone();
    if let Some(s) = output_mask(settings) {
        crate::compliance::mask::mask_context(&s, &o.saga_name, &mut o.context);
    }
    o
}

/// A snapshot read unmasked (for a write) as printed.
pub fn shown_snapshot(
    settings: &crate::config::Settings,
    s: &crate::model::Snapshot,
) -> crate::model::Snapshot {
    let mut s = s.clone();
    if let Some(p) = output_mask(settings) {
        crate::compliance::mask::mask_snapshot(&p, &mut s);
    }
    s
}
