//! `sagascope scan-pii`: where the contexts hold personal data, with
//! counts, so `[compliance.sensitive]` can be written from evidence. Reads
//! values unmasked (a masked value hides what it is) and prints only paths,
//! never a value.

use clap::Args;

use super::output::{emit, emit_json, note, printable_line, Table};
use super::{CliError, Context, Exit};
use crate::compliance::scan;
use crate::store;

#[derive(Debug, Args)]
pub struct ScanPiiArgs {
    /// Read at most this many snapshots, spread over saga names and sagas
    /// (each saga's newest first).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub sample: usize,
    /// One JSON document instead of the table and the config snippet.
    #[arg(long)]
    pub json: bool,
}

pub async fn scan_pii(ctx: &mut Context, a: ScanPiiArgs) -> Result<Exit, CliError> {
    if a.sample == 0 {
        return Err(CliError::usage("--sample must be at least 1"));
    }
    let policy = ctx
        .settings
        .compliance()
        .await
        .map_err(|e| CliError::usage(e.to_string()))?;
    let masked = ctx.store().await?;
    let store = store::unmasked(&masked);
    let report = scan::scan(
        store.as_ref(),
        &policy.sensitive,
        &policy.config.sensitive,
        a.sample,
    )
    .await?;
    if a.json {
        emit_json(&serde_json::json!({
            "store": masked.location(),
            "values_printed": false,
            "report": report,
        }));
    } else {
        emit(&render(&report, &masked.location()));
    }
    if report.unreadable > 0 {
        note(&format!(
            "warning: {} entr{} could not be read and were left out",
            report.unreadable,
            if report.unreadable == 1 { "y" } else { "ies" }
        ));
    }
    Ok(Exit::Ok)
}

fn render(r: &scan::ScanReport, location: &str) -> String {
    let mut out = format!(
        "Scanned {} snapshot(s) of {} saga(s) (of {}) in {location}, read unmasked; values are never printed, only where they are.\n\n",
        r.snapshots_read, r.sagas_read, r.sagas_in_store
    );
    if r.findings.is_empty() {
        out.push_str("Nothing that looks personal was found.\n");
        return out;
    }
    let mut t = Table::new(vec![
        "SAGA NAME",
        "PATH",
        "FOUND",
        "SAGAS",
        "DECLARED",
        "MATCHED",
    ]);
    for f in &r.findings {
        t.row(vec![
            f.saga_name.clone(),
            f.path.clone(),
            f.count.to_string(),
            f.sagas.to_string(),
            if f.declared { "yes" } else { "no" }.to_string(),
            f.matched.iter().cloned().collect::<Vec<_>>().join(", "),
        ]);
    }
    out.push_str(&t.render());
    if r.suggested_config.is_empty() {
        out.push_str("\nEvery path found is declared in [compliance.sensitive].\n");
    } else {
        out.push_str(
            "\nTo declare the undeclared paths, put this in the config (each saga name's line keeps what it already declares):\n\n",
        );
        for line in r.suggested_config.lines() {
            out.push_str(&printable_line(line));
            out.push('\n');
        }
    }
    out
}
