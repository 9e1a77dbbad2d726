//! Plans as artifacts: a dry run's plan written to a file with a
//! fingerprint of what it was built from, reviewed (or attached to a
//! change ticket), then applied exactly — or refused when the saga changed
//! since.
//!
//! The fingerprint names the checkpoint, the saga's newest snapshot, how
//! many snapshots it has, and its real (not dry-run) replays. Applying
//! reads the saga again, refuses on any difference, and rebuilds the plan
//! to check it still does the same (a changed definition shows there).
//! Dry runs are left out of the fingerprint: they change nothing, and
//! writing the plan itself logs one.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::effects::History;
use super::plan::ReplayPlan;
use super::run::ReplaySpec;
use crate::model::Timestamp;

/// What a single plan file says it is.
pub const PLAN_FORMAT: &str = "sagascope/replay-plan/1";
/// What a plan-set file (a batch's plans) says it is.
pub const PLAN_SET_FORMAT: &str = "sagascope/replay-plan-set/1";

/// What a plan was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The checkpoint snapshot's id.
    pub checkpoint_snapshot_id: String,
    /// The saga's newest snapshot's id.
    pub latest_snapshot_id: Option<String>,
    /// Entries in the saga's timeline (unreadable ones counted).
    pub snapshots: usize,
    /// Real replays in the saga's replay log.
    pub replays: usize,
    /// The newest real replay's id.
    pub latest_replay_id: Option<String>,
    /// SHA-256 over the fields above, hex: one value to compare or quote.
    pub digest: String,
}

impl Fingerprint {
    /// The fingerprint of a saga's history for a plan from `checkpoint`.
    pub fn of(history: &History, checkpoint_snapshot_id: &str) -> Self {
        let real: Vec<_> = history.replays.iter().filter(|r| !r.is_dry_run()).collect();
        let latest_replay_id = real
            .iter()
            .max_by_key(|r| r.created_at)
            .map(|r| r.replay_id.clone());
        let mut f = Fingerprint {
            checkpoint_snapshot_id: checkpoint_snapshot_id.to_string(),
            latest_snapshot_id: history.latest().map(|s| s.snapshot_id.clone()),
            snapshots: history.timeline_len(),
            replays: real.len(),
            latest_replay_id,
            digest: String::new(),
        };
        let mut h = Sha256::new();
        for part in [
            f.checkpoint_snapshot_id.as_str(),
            f.latest_snapshot_id.as_deref().unwrap_or("-"),
            &f.snapshots.to_string(),
            &f.replays.to_string(),
            f.latest_replay_id.as_deref().unwrap_or("-"),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        f.digest = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        f
    }

    /// What changed from `self` (the plan's) to `now`, for people; `None`
    /// when nothing did.
    pub fn changes_to(&self, now: &Fingerprint) -> Option<String> {
        let mut what = Vec::new();
        if now.snapshots != self.snapshots || now.latest_snapshot_id != self.latest_snapshot_id {
            what.push(format!(
                "its timeline has {} snapshot(s), the plan was made with {}",
                now.snapshots, self.snapshots
            ));
        }
        if now.replays != self.replays || now.latest_replay_id != self.latest_replay_id {
            what.push(format!(
                "{} replay(s) of it are logged, the plan was made with {}{}",
                now.replays,
                self.replays,
                now.latest_replay_id
                    .as_deref()
                    .map(|r| format!(" (newest: {r})"))
                    .unwrap_or_default()
            ));
        }
        if now.checkpoint_snapshot_id != self.checkpoint_snapshot_id {
            what.push(format!(
                "the checkpoint is now snapshot {}, the plan's is {}",
                now.checkpoint_snapshot_id, self.checkpoint_snapshot_id
            ));
        }
        (!what.is_empty()).then(|| what.join("; "))
    }
}

/// A plan as written to a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`PLAN_FORMAT`].
    pub format: String,
    /// When it was written.
    pub created_at: Timestamp,
    /// Who wrote it (the identity the dry run was logged under).
    pub created_by: String,
    /// The dry run's replay-log id.
    pub dry_run_replay_id: Option<String>,
    /// What was asked: checkpoint, override, choices, guards overridden.
    pub spec: ReplaySpec,
    /// The plan shown.
    pub plan: ReplayPlan,
    /// What it was built from.
    pub fingerprint: Fingerprint,
}

/// A batch's plans as written to a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanSet {
    /// [`PLAN_SET_FORMAT`].
    pub format: String,
    /// When it was written.
    pub created_at: Timestamp,
    /// Who wrote it.
    pub created_by: String,
    /// One plan per saga the batch dry run found nothing against.
    pub plans: Vec<PlanFile>,
    /// Sagas the dry run skipped or could not plan, with why (they are not
    /// applied).
    pub left_out: Vec<LeftOut>,
}

/// A saga a plan set does not include.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeftOut {
    /// The saga.
    pub saga_id: String,
    /// Why.
    pub reason: String,
}

/// A plan file or a plan set, as read back.
#[derive(Debug, Clone)]
pub enum PlanDocument {
    /// One saga's plan.
    One(Box<PlanFile>),
    /// A batch's plans.
    Set(PlanSet),
}

impl PlanFile {
    /// A plan file for a plan built from `history`. `None` when the plan
    /// has no checkpoint (it has errors: nothing to apply).
    pub fn new(
        spec: &ReplaySpec,
        plan: &ReplayPlan,
        history: &History,
        created_by: &str,
        dry_run_replay_id: Option<String>,
    ) -> Option<Self> {
        let cp = plan.checkpoint.as_ref()?;
        Some(PlanFile {
            format: PLAN_FORMAT.into(),
            created_at: Timestamp::now(),
            created_by: created_by.to_string(),
            dry_run_replay_id,
            // Applied from exactly this snapshot, whatever `--from-step`
            // would pick by then.
            spec: ReplaySpec {
                from_snapshot: Some(cp.snapshot_id.clone()),
                ..spec.clone()
            },
            plan: plan.clone(),
            fingerprint: Fingerprint::of(history, &cp.snapshot_id),
        })
    }
}

/// Why a plan document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanFileError(pub String);

/// Reads a plan file or plan set from its JSON text.
pub fn parse_plan_document(text: &str) -> Result<PlanDocument, PlanFileError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| PlanFileError(format!("not a plan file: invalid JSON ({e})")))?;
    let format = v
        .get("format")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    match format.as_str() {
        PLAN_FORMAT => serde_json::from_value(v)
            .map(|p| PlanDocument::One(Box::new(p)))
            .map_err(|e| PlanFileError(format!("not a valid plan file: {e}"))),
        PLAN_SET_FORMAT => serde_json::from_value(v)
            .map(PlanDocument::Set)
            .map_err(|e| PlanFileError(format!("not a valid plan set: {e}"))),
        "" => Err(PlanFileError(
            "not a plan file: no \"format\" (write one with `replay run --dry-run --plan-out FILE` or `batch --dry-run --plan-out FILE`)".into(),
        )),
        other => Err(PlanFileError(format!(
            "unknown plan format {other:?} (this sagascope reads {PLAN_FORMAT} and {PLAN_SET_FORMAT})"
        ))),
    }
}

/// Whether the context a plan was shown with agrees with the one rebuilt
/// now: equal, except that a value the plan showed masked (`•••`, `🔒`)
/// stands for whatever is there now (its fingerprint belongs to the process
/// that wrote the plan; a change to the saga since is caught by the
/// snapshot fingerprint).
fn contexts_agree(
    was: &serde_json::Map<String, serde_json::Value>,
    now: &serde_json::Map<String, serde_json::Value>,
) -> bool {
    use crate::compliance::mask::is_masked;
    use serde_json::Value;
    fn agree(a: &Value, b: &Value) -> bool {
        if is_masked(a) {
            return true;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| agree(v, w)))
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(v, w)| agree(v, w))
            }
            _ => a == b,
        }
    }
    was.len() == now.len()
        && was
            .iter()
            .all(|(k, v)| now.get(k).is_some_and(|w| agree(v, w)))
}

/// Whether a plan rebuilt now does what the file's plan said: same
/// checkpoint, same steps and decisions, same context, same compensations.
/// `Some(difference)` when not.
pub fn plan_differs(was: &ReplayPlan, now: &ReplayPlan) -> Option<String> {
    if was.checkpoint.as_ref().map(|c| &c.snapshot_id)
        != now.checkpoint.as_ref().map(|c| &c.snapshot_id)
    {
        return Some("the checkpoint differs".into());
    }
    if was.steps != now.steps {
        let show = |p: &ReplayPlan| {
            p.steps
                .iter()
                .map(|s| format!("{} {}", s.action.label(), s.step))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Some(format!(
            "the steps differ (the definition changed?): the plan says [{}], now [{}]",
            show(was),
            show(now)
        ));
    }
    if !contexts_agree(&was.merged_context, &now.merged_context) {
        return Some("the context the replay would start with differs".into());
    }
    if was.compensations != now.compensations {
        return Some("the compensations that could fire differ".into());
    }
    None
}
