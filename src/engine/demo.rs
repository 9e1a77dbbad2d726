//! The demo: realistic sagas (an OrderSaga and a longer TripBookingSaga)
//! whose definitions and small step scripts ship inside the binary, and a
//! seeder that really runs dozens of them, some failing and compensated.
//!
//! The files are embedded with `include_str!` and written to a folder
//! (normally `<data dir>/demo`) so the binary works from any directory; the
//! definitions' commands run in that folder.

use std::path::Path;

use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use super::execute::{Engine, RunRequest};
use super::registry::Definitions;
use super::Context;
use crate::model::SagaStatus;

/// The demo's files, relative to its folder.
pub const DEMO_FILES: &[(&str, &str)] = &[
    (
        "order_saga.toml",
        include_str!("../../assets/demo/order_saga.toml"),
    ),
    (
        "trip_saga.toml",
        include_str!("../../assets/demo/trip_saga.toml"),
    ),
    (
        "steps/order.py",
        include_str!("../../assets/demo/steps/order.py"),
    ),
    (
        "steps/trip.py",
        include_str!("../../assets/demo/steps/trip.py"),
    ),
];

/// Writes the demo's files into `dir` (only those that differ, each through
/// a temporary file and a rename, so a concurrent reader never sees half a
/// file).
pub fn materialize(dir: &Path) -> std::io::Result<()> {
    for (name, text) in DEMO_FILES {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == *text) {
            continue;
        }
        if let Some(parent) = path.parent() {
            crate::files::create_private_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// The contexts the demo runs: `orders` orders (every fourth with an
/// expired card token) and `trips` trips (some asking for a car the city
/// lacks, some over the card limit). Deterministic.
pub fn demo_sagas(orders: usize, trips: usize) -> Vec<(String, Context)> {
    let mut out = Vec::with_capacity(orders + trips);
    let skus = [
        ("SKU-MUG", 12.5),
        ("SKU-TEE", 19.0),
        ("SKU-CAP", 15.0),
        ("SKU-BAG", 42.0),
    ];
    let countries = ["NL", "DE", "PT", "NO"];
    for i in 0..orders {
        let (sku, price) = skus[i % skus.len()];
        let qty = 1 + (i % 3) as i64;
        let ctx = json!({
            "order_id": format!("ord-{:04}", 1001 + i),
            "customer": {"id": format!("cus-{:03}", 200 + i % 17), "email": format!("customer{}@example.com", 200 + i % 17)},
            "items": [{"sku": sku, "qty": qty, "unit_price": price}],
            "currency": "EUR",
            "payment_token": if i % 4 == 1 { "expired".to_string() } else { format!("tok_{:06}", 31337 + i) },
            "shipping_address": {"street": format!("{} Canal St", 10 + i), "city": "Amsterdam", "country": countries[i % countries.len()]},
        });
        out.push(("OrderSaga".to_string(), obj(ctx)));
    }
    let cities = ["Oslo", "Lisbon", "Berlin"];
    for i in 0..trips {
        let city = cities[i % cities.len()];
        // Oslo has no convertibles; every third trip is to Oslo and every
        // second of those asks for one.
        let class = if city == "Oslo" && i % 2 == 0 {
            "convertible"
        } else {
            "compact"
        };
        let limit = if i % 5 == 4 { 900 } else { 5000 };
        let ctx = json!({
            "trip_id": format!("trip-{:03}", 501 + i),
            "traveler": {"name": format!("Traveler {}", i + 1), "email": format!("traveler{}@example.com", i + 1), "loyalty": {"tier": if i % 2 == 0 { "gold" } else { "silver" }, "number": format!("LY{:06}", 424242 + i)}},
            "segments": [
                {"flight": format!("KL{}", 1200 + i), "from": "AMS", "to": city, "fare": 180 + 10 * i as i64},
                {"flight": format!("KL{}", 1300 + i), "from": city, "to": "AMS", "fare": 170 + 10 * i as i64}
            ],
            "hotel": {"city": city, "nights": 2 + (i % 3) as i64, "room": "double"},
            "car": {"city": city, "class": class},
            "card": {"token": format!("tok_trip_{i}"), "limit": limit},
            "currency": "EUR",
            "purpose": "customer visit",
        });
        out.push(("TripBookingSaga".to_string(), obj(ctx)));
    }
    out
}

fn obj(v: Value) -> Context {
    match v {
        Value::Object(m) => m,
        _ => Context::new(),
    }
}

/// One saga the demo ran.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSaga {
    /// The id the demo gave the saga (a fresh UUID).
    pub saga_id: String,
    /// The saga's definition name, e.g. `OrderSaga`.
    pub saga_name: String,
    /// How it ended: `completed`, `rolled_back`, or `failed` (also when its
    /// definition was missing).
    pub status: SagaStatus,
    /// The step that failed; `None` when the saga completed.
    pub failed_step: Option<String>,
    /// Why it failed; `None` when the saga completed.
    pub error: Option<String>,
}

/// What the demo wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoReport {
    /// Every saga run, in the order they finished.
    pub sagas: Vec<DemoSaga>,
    /// Snapshots written to the store, over all sagas.
    pub snapshots: usize,
    /// Snapshots that could not be saved, over all sagas.
    pub snapshot_errors: usize,
}

impl DemoReport {
    /// How many sagas ended with `status`.
    pub fn count(&self, status: &SagaStatus) -> usize {
        self.sagas.iter().filter(|s| &s.status == status).count()
    }
}

/// Runs the demo sagas (a few at a time) against the engine's store.
pub async fn seed_demo(
    engine: &Engine,
    defs: &Definitions,
    sagas: Vec<(String, Context)>,
    concurrency: usize,
    on_done: &(dyn Fn(&DemoSaga) + Send + Sync),
) -> DemoReport {
    let results: Vec<(DemoSaga, usize, usize)> = futures::stream::iter(sagas)
        .map(|(name, ctx)| {
            let def = defs.get(&name);
            async move {
                let saga_id = uuid::Uuid::new_v4().to_string();
                let Some(def) = def else {
                    return (
                        DemoSaga {
                            saga_id,
                            saga_name: name.clone(),
                            status: SagaStatus::Failed,
                            failed_step: None,
                            error: Some(format!("no definition for {name}")),
                        },
                        0,
                        0,
                    );
                };
                let o = engine
                    .run(
                        &def,
                        RunRequest {
                            saga_id,
                            context: ctx,
                            ..RunRequest::default()
                        },
                        &|_| {},
                    )
                    .await;
                let s = DemoSaga {
                    saga_id: o.saga_id.clone(),
                    saga_name: o.saga_name.clone(),
                    status: o.status.clone(),
                    failed_step: o.failed_step.clone(),
                    error: o.error.clone(),
                };
                on_done(&s);
                (s, o.snapshots_written, o.snapshot_errors.len())
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut report = DemoReport::default();
    for (s, n, e) in results {
        report.snapshots += n;
        report.snapshot_errors += e;
        report.sagas.push(s);
    }
    report
}

/// Loads the demo's definitions from the folder they were written to.
pub fn demo_definitions(dir: &Path) -> Result<Definitions, super::DefinitionError> {
    Definitions::load(&[], &[dir.to_path_buf()])
}
