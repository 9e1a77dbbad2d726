//! What a saga has done to the world at a checkpoint: which completed
//! steps' effects are still in force, which were undone afterwards (by the
//! original run's compensation, or by a failed replay that inherited them),
//! and which checkpoint a person means by "replay from step S".
//!
//! Everything here is derived from snapshots alone — the saga's own
//! timeline and the timelines of its earlier replays — so the CLI, the TUI
//! and batches agree, and a dry run sees exactly what the real run will.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::SagaDefinition;
use crate::model::{ReplayLog, ReplayStatus, SagaStatus, Snapshot};
use crate::store::{SnapshotStore, StoreResult};

/// What a replay plan is built from: a saga's timeline and its replay log,
/// and what its failed replays undid.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The readable snapshots, oldest first.
    pub timeline: Vec<Snapshot>,
    /// For each of `timeline`, its position in the timeline's numbering
    /// (`#N` in `sagascope snapshots` and the TUI: unreadable entries
    /// counted). Empty means "same as the index".
    pub positions: Vec<usize>,
    /// How many entries could not be read.
    pub unreadable: usize,
    /// The saga's replay log, as listed.
    pub replays: Vec<ReplayLog>,
    /// Steps that failed replays of this saga inherited and compensated.
    pub undone: Vec<UndoneByReplay>,
}

impl History {
    /// A history of readable snapshots only, without replays (tests, and
    /// callers that have the timeline in hand).
    pub fn of(timeline: Vec<Snapshot>) -> Self {
        History {
            timeline,
            ..History::default()
        }
    }

    /// Entries in the timeline, unreadable ones included.
    pub fn timeline_len(&self) -> usize {
        self.timeline.len() + self.unreadable
    }

    /// The timeline position (`#N`) of `timeline[i]`.
    pub fn position_of(&self, i: usize) -> usize {
        self.positions.get(i).copied().unwrap_or(i)
    }

    /// The index in `timeline` of the snapshot at position `pos`; `None`
    /// when that entry is unreadable.
    pub fn index_at(&self, pos: usize) -> Option<usize> {
        (0..self.timeline.len()).find(|&i| self.position_of(i) == pos)
    }

    /// The newest snapshot, if any is readable.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.timeline.last()
    }
}

/// Reads what a plan for `saga_id` needs: its whole timeline, its replay
/// log, and for each real replay of it that did not succeed, the replay's
/// own timeline (what it undid).
pub async fn load_history(store: &dyn SnapshotStore, saga_id: &str) -> StoreResult<History> {
    let mut all = load_histories(store, &[saga_id.to_string()]).await?;
    Ok(all.remove(saga_id).unwrap_or_default())
}

/// [`load_history`] for many sagas at once: three reads in all on the
/// SQL stores (their timelines, their replay logs, the timelines of their
/// failed replays), whatever the number of sagas.
pub async fn load_histories(
    store: &dyn SnapshotStore,
    saga_ids: &[String],
) -> StoreResult<HashMap<String, History>> {
    let mut out: HashMap<String, History> = saga_ids
        .iter()
        .map(|id| (id.clone(), History::default()))
        .collect();
    let mut next_pos: HashMap<String, usize> = HashMap::new();
    let listing = store.snapshots_of_sagas(saga_ids).await?;
    for e in listing.in_order() {
        let id = match &e {
            Ok(s) => s.saga_id.as_str(),
            Err(b) => match b.saga_id.as_deref() {
                Some(id) => id,
                None => continue,
            },
        };
        let Some(h) = out.get_mut(id) else { continue };
        let pos = next_pos.entry(id.to_string()).or_default();
        match e {
            Ok(s) => {
                h.positions.push(*pos);
                h.timeline.push(s.clone());
            }
            Err(_) => h.unreadable += 1,
        }
        *pos += 1;
    }
    let replays = store.replays_of_sagas(saga_ids).await?;
    let mut failed: Vec<(String, String, String)> = Vec::new();
    for r in replays.items {
        if !r.is_dry_run() && r.replay_status != ReplayStatus::Success {
            failed.push((
                r.original_saga_id.clone(),
                r.replay_id.clone(),
                r.new_saga_id.clone(),
            ));
        }
        if let Some(h) = out.get_mut(&r.original_saga_id) {
            h.replays.push(r);
        }
    }
    if !failed.is_empty() {
        let new_ids: Vec<String> = failed.iter().map(|f| f.2.clone()).collect();
        let mut timelines: HashMap<String, Vec<Snapshot>> = HashMap::new();
        for s in store.snapshots_of_sagas(&new_ids).await?.items {
            timelines.entry(s.saga_id.clone()).or_default().push(s);
        }
        for (original, replay_id, new_id) in failed {
            let t = timelines.get(&new_id).map(Vec::as_slice).unwrap_or(&[]);
            if let (Some(u), Some(h)) = (undone_by_replay(&replay_id, t), out.get_mut(&original)) {
                h.undone.push(u);
            }
        }
    }
    Ok(out)
}

/// The steps a snapshot records as compensated (the engine's final
/// snapshot of a rolled-back or failed run: `compensated_steps`). A
/// `rolled_back` snapshot that does not list them (a store that dropped
/// the field, another writer) means every completed step was compensated:
/// that is what rolled back says.
pub fn compensated_in(s: &Snapshot) -> Vec<String> {
    if s.extra.contains_key("compensated_steps") {
        s.compensated_steps()
    } else if s.status == SagaStatus::RolledBack {
        s.completed_steps.clone()
    } else {
        Vec::new()
    }
}

/// The steps whose compensation a snapshot records as failed
/// (`compensation_errors`, step → error).
pub fn compensation_failed_in(s: &Snapshot) -> Vec<String> {
    match s.extra.get("compensation_errors") {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// What became of one step that was completed at the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Completed and not undone since: its effect is in force.
    InForce,
    /// Completed, then compensated (by the original run, or by a failed
    /// replay that had inherited it): its effect was undone.
    Compensated,
    /// Completed; its compensation was tried and failed, so the effect may
    /// be partly in force. Treated as in force (never run twice silently).
    CompensationFailed,
}

/// One step completed at the checkpoint, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFact {
    /// The step's name.
    pub step: String,
    /// In force, compensated, or compensation failed.
    pub effect: Effect,
    /// Who recorded the compensation: `"snapshot #N"` of this saga's
    /// timeline, or `"replay <id>"`; `None` for steps in force.
    pub by: Option<String>,
}

/// The effects of a saga at one of its snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Effects {
    /// The steps completed at the checkpoint, in its order, each with what
    /// became of it.
    pub completed: Vec<StepFact>,
    /// Steps not completed at the checkpoint that the original run completed
    /// later and did not compensate: running them again repeats their effect.
    pub done_later: Vec<String>,
    /// Whether the timeline records how the original run ended (a terminal
    /// snapshot at or after the checkpoint). sagaz writes no snapshot when a
    /// saga fails, so its failed sagas end on an `executing` snapshot: then
    /// nothing says whether (or which) steps were compensated.
    pub outcome_recorded: bool,
}

impl Effects {
    /// The step's effect at the checkpoint, `None` if it was not completed.
    pub fn of(&self, step: &str) -> Option<Effect> {
        self.completed
            .iter()
            .find(|f| f.step == step)
            .map(|f| f.effect)
    }

    /// The fact for a step completed at the checkpoint.
    pub fn fact(&self, step: &str) -> Option<&StepFact> {
        self.completed.iter().find(|f| f.step == step)
    }
}

/// A compensation done by a failed replay of the saga: the replay had
/// inherited these steps (skipped them as in force) and compensated them,
/// so their effects, though the saga's own timeline says nothing of it,
/// are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoneByReplay {
    /// The replay that undid them.
    pub replay_id: String,
    /// The steps it undid that it had inherited.
    pub steps: Vec<String>,
}

/// Works out the effects at `timeline[checkpoint]` from the saga's own
/// timeline (oldest first) and what failed replays of it undid.
///
/// A step completed at the checkpoint is compensated when a snapshot at or
/// after the checkpoint records it in `compensated_steps`, or a replay
/// undid it; a failed compensation recorded in the timeline wins over a
/// successful one there (the effect may still be there), and a replay that
/// undid the step later wins over both.
pub fn effects_at(timeline: &[Snapshot], checkpoint: usize, undone: &[UndoneByReplay]) -> Effects {
    let Some(cp) = timeline.get(checkpoint) else {
        return Effects::default();
    };
    let later = &timeline[checkpoint..];
    let mut out = Effects {
        outcome_recorded: later.iter().any(|s| s.status.is_terminal()),
        ..Effects::default()
    };
    // What each snapshot from the checkpoint on records, read once.
    let compensated: Vec<Vec<String>> = later.iter().map(compensated_in).collect();
    let comp_failed: Vec<Vec<String>> = later.iter().map(compensation_failed_in).collect();
    for step in &cp.completed_steps {
        let mut fact = StepFact {
            step: step.clone(),
            effect: Effect::InForce,
            by: None,
        };
        for (i, (done, failed)) in compensated.iter().zip(&comp_failed).enumerate() {
            if failed.contains(step) {
                fact.effect = Effect::CompensationFailed;
                fact.by = Some(format!("snapshot #{}", checkpoint + i));
                break;
            }
            if done.contains(step) {
                fact.effect = Effect::Compensated;
                fact.by = Some(format!("snapshot #{}", checkpoint + i));
            }
        }
        // A failed replay that inherited the step (in force, or with a
        // failed compensation) and then compensated it undid it.
        if fact.effect != Effect::Compensated {
            if let Some(u) = undone.iter().find(|u| u.steps.contains(step)) {
                fact.effect = Effect::Compensated;
                fact.by = Some(format!("replay {}", u.replay_id));
            }
        }
        out.completed.push(fact);
    }
    // Steps completed after the checkpoint and never undone.
    let mut seen: Vec<String> = Vec::new();
    for s in later {
        for step in &s.completed_steps {
            if !cp.completed_steps.contains(step) && !seen.contains(step) {
                seen.push(step.clone());
            }
        }
    }
    for step in seen {
        let undone_later = compensated.iter().any(|c| c.contains(&step));
        if !undone_later {
            out.done_later.push(step);
        }
    }
    out
}

/// What a failed replay undid of the steps it inherited: the steps its
/// first snapshot lists as completed (the checkpoint's, skipped) that a
/// later snapshot of it records as compensated. `timeline` is the replay's
/// new saga's, oldest first.
pub fn undone_by_replay(replay_id: &str, timeline: &[Snapshot]) -> Option<UndoneByReplay> {
    let inherited = &timeline.first()?.completed_steps;
    let mut steps = Vec::new();
    for s in timeline {
        for c in compensated_in(s) {
            if inherited.contains(&c) && !steps.contains(&c) {
                steps.push(c);
            }
        }
    }
    (!steps.is_empty()).then(|| UndoneByReplay {
        replay_id: replay_id.to_string(),
        steps,
    })
}

/// How the checkpoint for "replay from step S" was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointPick {
    /// The newest snapshot taken before the step ran (it does not list the
    /// step as completed, and the saga was still running).
    BeforeStep,
    /// No snapshot was taken before the step ran; the newest snapshot
    /// recorded for the step (e.g. the final snapshot of a failed run) is
    /// used instead.
    LatestForStep,
    /// Picked exactly, by id or timeline position (`--from-snapshot`).
    Exact,
}

/// The position in `timeline` of the snapshot "before `step` ran": the
/// newest snapshot that does not list `step` as completed, taken while the
/// saga was still running, either for `step` itself (a before-step capture)
/// or after every step before it had completed. Failing that, the newest
/// snapshot recorded for `step` whatever its status.
pub fn checkpoint_for_step(
    timeline: &[Snapshot],
    step: &str,
    def: Option<&SagaDefinition>,
) -> Option<(usize, CheckpointPick)> {
    let before: Option<Vec<&str>> = def.and_then(|d| {
        d.step_index(step)
            .map(|i| d.steps[..i].iter().map(|s| s.name.as_str()).collect())
    });
    let running = |s: &Snapshot| !s.status.is_terminal() && s.status != SagaStatus::Compensating;
    let found = timeline.iter().rposition(|s| {
        running(s)
            && !s.completed_steps.iter().any(|c| c == step)
            && (s.step_name == step
                || before.as_ref().is_some_and(|b| {
                    !b.is_empty() && b.iter().all(|p| s.completed_steps.iter().any(|c| c == p))
                }))
    });
    if let Some(i) = found {
        return Some((i, CheckpointPick::BeforeStep));
    }
    timeline
        .iter()
        .rposition(|s| s.step_name == step)
        .map(|i| (i, CheckpointPick::LatestForStep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn snap(step: &str, status: SagaStatus, done: &[&str], extra: Value) -> Snapshot {
        let mut s = Snapshot::new(
            "s1",
            "OrderSaga",
            step,
            0,
            status,
            Map::new(),
            done.iter().map(|s| s.to_string()).collect(),
        );
        if let Value::Object(m) = extra {
            s.extra = m;
        }
        s
    }

    #[test]
    fn compensation_after_the_checkpoint_undoes_the_step() {
        let t = vec![
            snap("reserve", SagaStatus::Executing, &[], json!({})),
            snap("charge", SagaStatus::Executing, &["reserve"], json!({})),
            snap(
                "charge",
                SagaStatus::RolledBack,
                &["reserve"],
                json!({"error": "declined", "compensated_steps": ["reserve"]}),
            ),
        ];
        let e = effects_at(&t, 1, &[]);
        assert_eq!(e.of("reserve"), Some(Effect::Compensated));
        assert_eq!(
            e.fact("reserve").unwrap().by.as_deref(),
            Some("snapshot #2")
        );
        assert!(e.outcome_recorded);
        assert_eq!(
            checkpoint_for_step(&t, "charge", None),
            Some((1, CheckpointPick::BeforeStep))
        );
    }

    #[test]
    fn failed_compensation_counts_as_in_force() {
        let t = vec![snap(
            "charge",
            SagaStatus::Failed,
            &["reserve"],
            json!({"compensated_steps": [], "compensation_errors": {"reserve": "timeout"}}),
        )];
        assert_eq!(
            effects_at(&t, 0, &[]).of("reserve"),
            Some(Effect::CompensationFailed)
        );
        // Only the final snapshot exists: it is the checkpoint for its step.
        assert_eq!(
            checkpoint_for_step(&t, "charge", None),
            Some((0, CheckpointPick::LatestForStep))
        );
    }

    #[test]
    fn steps_done_later_and_not_undone_are_named() {
        let t = vec![
            snap("a", SagaStatus::Executing, &[], json!({})),
            snap("b", SagaStatus::Executing, &["a"], json!({})),
            snap("c", SagaStatus::Executing, &["a", "b"], json!({})),
        ];
        let e = effects_at(&t, 0, &[]);
        assert_eq!(e.done_later, vec!["a", "b"]);
        assert!(!e.outcome_recorded);
    }

    #[test]
    fn a_failed_replay_that_undid_inherited_steps_is_taken_into_account() {
        let replay = vec![
            snap("charge", SagaStatus::Executing, &["reserve"], json!({})),
            snap(
                "charge",
                SagaStatus::RolledBack,
                &["reserve"],
                json!({"compensated_steps": ["reserve"]}),
            ),
        ];
        let u = undone_by_replay("r1", &replay).unwrap();
        let t = vec![snap(
            "charge",
            SagaStatus::Executing,
            &["reserve"],
            json!({}),
        )];
        let e = effects_at(&t, 0, &[u]);
        assert_eq!(e.of("reserve"), Some(Effect::Compensated));
        assert_eq!(e.fact("reserve").unwrap().by.as_deref(), Some("replay r1"));
    }
}
