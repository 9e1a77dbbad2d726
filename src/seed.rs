//! A generator of realistic saga snapshots for tests, benchmarks and demos
//! of the browser, written through the store trait (so it exercises the
//! same path real data takes). Deterministic for a given seed.

use serde_json::{json, Map, Value};

use crate::model::{SagaStatus, Snapshot, Timestamp, COMPLETED_STEP, DEFAULT_RETENTION_DAYS};
use crate::store::{SnapshotStore, StoreResult};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedSpec {
    /// How many sagas to generate.
    pub sagas: usize,
    /// Snapshots per saga (at least 1). The last one is the outcome.
    pub snapshots_per_saga: usize,
    /// Approximate size of each context in bytes.
    pub context_bytes: usize,
    /// Fraction of sagas that end failed (0.0–1.0).
    pub failed_ratio: f64,
    /// RNG seed: the same seed gives the same ids and data.
    pub seed: u64,
    /// Time of the first saga's first snapshot.
    pub start: Timestamp,
    /// Gap between two sagas' starts, in microseconds.
    pub saga_spacing_us: i64,
    /// Gap between two snapshots of a saga, in microseconds.
    pub step_spacing_us: i64,
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec {
            sagas: 100,
            snapshots_per_saga: 5,
            context_bytes: 512,
            failed_ratio: 0.2,
            seed: 42,
            start: Timestamp::now().plus_micros(-86_400_000_000),
            saga_spacing_us: 7_000_000,
            step_spacing_us: 250_000,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeedReport {
    /// Sagas written.
    pub sagas: usize,
    /// Snapshots written, over all sagas.
    pub snapshots: usize,
    /// Sagas that ended failed (about [`SeedSpec::failed_ratio`] of them).
    pub failed: usize,
    /// The first saga's id (handy for trying commands).
    pub first_saga_id: Option<String>,
}

/// splitmix64: tiny, fast, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uuid(&mut self) -> String {
        let hi = self.next().to_be_bytes();
        let lo = self.next().to_be_bytes();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi);
        b[8..].copy_from_slice(&lo);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }
}

const SAGAS: [(&str, &[&str]); 4] = [
    (
        "OrderSaga",
        &[
            "reserve_inventory",
            "charge_payment",
            "ship_order",
            "notify_customer",
        ],
    ),
    ("PaymentSaga", &["authorize", "capture", "record_ledger"]),
    (
        "OnboardingSaga",
        &[
            "create_account",
            "verify_email",
            "provision_workspace",
            "send_welcome",
            "schedule_followup",
        ],
    ),
    (
        "RefundSaga",
        &[
            "validate_refund",
            "reverse_charge",
            "restock",
            "notify_customer",
        ],
    ),
];

const WORDS: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima",
];

fn filler(rng: &mut Rng, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 8);
    while s.len() < bytes {
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        s.push(' ');
    }
    s.truncate(bytes);
    s
}

/// Sagas longer than their step list loop over it (a polling or retrying
/// saga), so step names repeat and contexts stay bounded: a 10,000-snapshot
/// saga is ~10,000 × the context size, not quadratic.
fn step_name(steps: &[&str], k: usize) -> String {
    steps[k % steps.len()].to_string()
}

/// The snapshots of one generated saga, oldest first.
pub fn saga_snapshots(spec: &SeedSpec, rng_seed: u64, index: usize) -> (Vec<Snapshot>, bool) {
    let mut rng = Rng(rng_seed ^ (index as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let (name, steps) = SAGAS[index % SAGAS.len()];
    let saga_id = rng.uuid();
    let n = spec.snapshots_per_saga.max(1);
    let failed = rng.unit() < spec.failed_ratio;
    let start = spec.start.plus_micros(index as i64 * spec.saga_spacing_us);
    let mut context: Map<String, Value> = Map::new();
    context.insert("order_id".into(), json!(format!("ord-{index:07}")));
    context.insert("customer".into(), {
        let tier = ["free", "pro", "enterprise"][rng.below(3) as usize];
        json!({"id": format!("cus-{}", rng.below(100_000)), "tier": tier})
    });
    context.insert("amount_cents".into(), json!(rng.below(100_000) as i64));
    context.insert(
        "payment_token".into(),
        json!(if failed { "expired" } else { "tok_valid" }),
    );
    // Each completed step adds a ~55-byte result: aim the average context
    // at the requested size.
    let base_len = serde_json::to_string(&context)
        .map(|s| s.len())
        .unwrap_or(0)
        + 30 * n.saturating_sub(1).min(steps.len());
    context.insert(
        "notes".into(),
        json!(filler(
            &mut rng,
            spec.context_bytes.saturating_sub(base_len)
        )),
    );
    let mut out = Vec::with_capacity(n);
    let mut completed: Vec<String> = Vec::new();
    for k in 0..n {
        let last = k + 1 == n;
        let created_at =
            start.plus_micros(k as i64 * spec.step_spacing_us + rng.below(1000) as i64);
        let (step, status) = if last && failed {
            context.insert(
                "error".into(),
                json!({"step": step_name(steps, k.saturating_sub(1)), "message": "payment token expired"}),
            );
            (step_name(steps, k.saturating_sub(1)), SagaStatus::Failed)
        } else if last && n > 1 {
            (COMPLETED_STEP.to_string(), SagaStatus::Completed)
        } else {
            (step_name(steps, k), SagaStatus::Executing)
        };
        let mut s = Snapshot::new(
            saga_id.clone(),
            name,
            step,
            k as i64,
            status,
            context.clone(),
            completed.clone(),
        );
        s.snapshot_id = rng.uuid();
        s.created_at = created_at;
        s.retention_until = Some(created_at.plus_micros(DEFAULT_RETENTION_DAYS * 86_400_000_000));
        out.push(s);
        if !last {
            // Keyed by the base step name, so a saga longer than its step list
            // overwrites results instead of growing its context per snapshot.
            let base = steps[k % steps.len()];
            context.insert(format!("{base}_result"), json!({"ok": true, "ref": format!("r-{}", rng.below(1 << 30)), "attempt": k / steps.len() + 1}));
            let done = step_name(steps, k);
            if !completed.contains(&done) {
                completed.push(done);
            }
        }
    }
    (out, failed)
}

/// Writes the spec's sagas to a store in batches, calling `progress(done,
/// total)` after each batch.
pub async fn seed(
    store: &dyn SnapshotStore,
    spec: &SeedSpec,
    mut progress: impl FnMut(usize, usize),
) -> StoreResult<SeedReport> {
    let mut report = SeedReport::default();
    let mut batch: Vec<Snapshot> = Vec::new();
    const BATCH: usize = 2000;
    for i in 0..spec.sagas {
        let (snaps, failed) = saga_snapshots(spec, spec.seed, i);
        if report.first_saga_id.is_none() {
            report.first_saga_id = snaps.first().map(|s| s.saga_id.clone());
        }
        report.sagas += 1;
        report.snapshots += snaps.len();
        report.failed += failed as usize;
        batch.extend(snaps);
        if batch.len() >= BATCH {
            store.save_snapshots(&batch).await?;
            batch.clear();
            progress(i + 1, spec.sagas);
        }
    }
    if !batch.is_empty() {
        store.save_snapshots(&batch).await?;
    }
    progress(spec.sagas, spec.sagas);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_data_and_sizes_roughly_right() {
        let spec = SeedSpec {
            context_bytes: 2000,
            ..SeedSpec::default()
        };
        let (a, _) = saga_snapshots(&spec, 7, 3);
        let (b, _) = saga_snapshots(&spec, 7, 3);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        let len = serde_json::to_string(&a[0].context).unwrap().len();
        assert!((1500..2600).contains(&len), "{len}");
        assert!(a.windows(2).all(|w| w[0].created_at < w[1].created_at));
    }
}
