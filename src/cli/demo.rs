//! `sagascope demo`: seed the store by really running the demo sagas, then
//! open the terminal UI, or print a summary and what to try.

use std::io::IsTerminal;

use clap::Args;
use indicatif::ProgressBar;

use super::output::{emit, emit_json, note, Format};
use super::run::{def_err, demo_dir};
use super::{CliError, Context, Exit};
use crate::engine::demo::{self, DemoReport};
use crate::engine::Engine;
use crate::model::SagaStatus;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the summary instead of opening the terminal UI.
    #[arg(long)]
    pub no_tui: bool,
    /// Number of OrderSaga runs (every fourth has an expired card token).
    #[arg(long, default_value_t = 32)]
    pub orders: usize,
    /// Number of TripBookingSaga runs.
    #[arg(long, default_value_t = 12)]
    pub trips: usize,
    /// Sagas run at once.
    #[arg(long, default_value_t = 6)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

pub async fn demo(ctx: &mut Context, a: DemoArgs) -> Result<Exit, CliError> {
    let dir = demo_dir();
    demo::materialize(&dir).map_err(|e| {
        CliError::new(
            Exit::Problems,
            format!("cannot write the demo files to {}: {e}", dir.display()),
        )
    })?;
    let defs = demo::demo_definitions(&dir).map_err(def_err)?;
    let store = ctx.store().await?;
    let sagas = demo::demo_sagas(a.orders, a.trips);
    let pb = if super::output::stderr_is_tty() {
        ProgressBar::new(sagas.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    let engine = Engine::new(store.clone());
    let report = demo::seed_demo(&engine, &defs, sagas, a.concurrency, &|_| pb.inc(1)).await;
    pb.finish_and_clear();
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if terminal && !a.no_tui && a.format == Format::Table {
        // The summary still prints after the UI closes: it says what to try.
        if let Err(e) = super::launch_tui(ctx).await {
            note(&format!("{} — printing the summary instead", e.message));
        }
    }
    match a.format {
        Format::Json | Format::Jsonl => emit_json(&serde_json::json!({
            "store": store.location(),
            "definitions": dir,
            "report": report,
        })),
        _ => emit(&summary(
            &report,
            &store.location(),
            &dir.display().to_string(),
        )),
    }
    Ok(if report.snapshot_errors > 0 {
        Exit::Problems
    } else {
        Exit::Ok
    })
}

fn summary(r: &DemoReport, store: &str, dir: &str) -> String {
    let mut s = format!(
        "Demo: ran {} sagas into {store} ({} snapshots): {} completed, {} rolled back, {} failed.\n",
        r.sagas.len(),
        r.snapshots,
        r.count(&SagaStatus::Completed),
        r.count(&SagaStatus::RolledBack),
        r.count(&SagaStatus::Failed),
    );
    s.push_str(&format!("Definitions and step scripts: {dir}\n\n"));
    let failed_order = r
        .sagas
        .iter()
        .find(|x| x.saga_name == "OrderSaga" && x.failed_step.as_deref() == Some("charge_payment"));
    let failed_trip = r
        .sagas
        .iter()
        .find(|x| x.saga_name == "TripBookingSaga" && x.failed_step.as_deref() == Some("rent_car"));
    s.push_str("Try:\n");
    s.push_str("  sagascope sagas list --status rolled_back\n");
    if let Some(o) = failed_order {
        s.push_str(&format!("  sagascope snapshots {}\n", o.saga_id));
        s.push_str(&format!(
            "  sagascope replay run {} --from-step charge_payment --override payment_token=tok_valid --dry-run\n",
            o.saga_id
        ));
        s.push_str(&format!(
            "  sagascope replay run {} --from-step charge_payment --override payment_token=tok_valid --reason \"customer sent a new card\"\n",
            o.saga_id
        ));
        s.push_str(&format!("  sagascope replay history {}\n", o.saga_id));
    }
    if let Some(t) = failed_trip {
        s.push_str(&format!(
            "  sagascope replay run {} --from-step rent_car --merge patch --override-json '{{\"car\": {{\"class\": \"compact\"}}}}'\n",
            t.saga_id
        ));
    }
    s.push_str("  sagascope batch --name OrderSaga --step charge_payment --from-step charge_payment --override payment_token=tok_valid --dry-run\n");
    s
}
