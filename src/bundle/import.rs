//! Importing a validated bundle into a store without losing anything: what
//! the store already holds identically is skipped (a re-import is
//! idempotent), and a record whose id exists with different content is a
//! conflict, refused before anything is written unless the caller says to
//! skip or replace it.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::{all_snapshots, comparable_replay, comparable_snapshot, BundleError, Kept, Record};
use crate::store::{SnapshotStore, StoreError};

/// What to do with a record whose id exists with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Refuse the whole import before writing anything.
    #[default]
    Fail,
    /// Keep what the store has.
    Skip,
    /// Overwrite it with the bundle's record.
    Replace,
}

/// One record that differs from what the store holds under its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// `snapshot` or `replay`.
    pub kind: &'static str,
    /// The record's id: `snapshot_id` or `replay_id`.
    pub id: String,
    /// The saga it belongs to (for a replay, the original saga).
    pub saga_id: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} (saga {})", self.kind, self.id, self.saga_id)
    }
}

/// What an import will do, worked out before anything is written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportPlan {
    /// Snapshots the store does not hold yet: they will be written.
    pub new_snapshots: u64,
    /// Snapshots the store already holds with the same content: skipped.
    pub identical_snapshots: u64,
    /// Replay-log entries the store does not hold yet.
    pub new_replays: u64,
    /// Replay-log entries the store already holds identically.
    pub identical_replays: u64,
    /// Records whose id the store holds with different content; the import
    /// refuses them unless told to skip or replace.
    pub conflicts: Vec<Conflict>,
    #[serde(skip)]
    identical: HashSet<(&'static str, String)>,
    #[serde(skip)]
    conflicting: HashSet<(&'static str, String)>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Snapshots written (new ones plus replaced conflicts).
    pub snapshots_written: u64,
    /// Replay-log entries written (new ones plus replaced conflicts).
    pub replays_written: u64,
    /// Already in the store, identical.
    pub snapshots_already_there: u64,
    /// Replay-log entries already in the store, identical.
    pub replays_already_there: u64,
    /// Conflicts left as the store had them (`OnConflict::Skip`).
    pub conflicts_skipped: u64,
    /// Conflicts overwritten (`OnConflict::Replace`).
    pub conflicts_replaced: u64,
}

/// Why an import stopped. For [`ImportError::Bundle`] and
/// [`ImportError::Conflicts`] nothing has been written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bundle is invalid (see [`BundleError`]).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The store failed. When it failed while writing, the records before
    /// the failure stay written (importing again skips them as identical).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Records conflict and the policy is [`OnConflict::Fail`]; lists every one.
    #[error("{} record(s) exist in the store with different content: {}{}; nothing was imported (--on-conflict skip keeps the store's, --on-conflict replace overwrites them)",
        .0.len(),
        .0.iter().take(3).map(ToString::to_string).collect::<Vec<_>>().join(", "),
        if .0.len() > 3 { ", …" } else { "" })]
    Conflicts(Vec<Conflict>),
    /// A record holds masked values (`•••`, `🔒`): the bundle was exported
    /// masked and is not the data; nothing was imported.
    #[error("{0}: the bundle was exported masked, so it holds masks, not the data; nothing was imported (export it with --reveal --reason TEXT to move the values)")]
    Masked(String),
}

/// Compares every record with the store: per saga the destination's
/// snapshots are listed once (not one round trip per snapshot), and its
/// replay log once per original saga.
pub async fn plan_import(
    store: &dyn SnapshotStore,
    records: impl Iterator<Item = Result<Record, BundleError>>,
) -> Result<ImportPlan, ImportError> {
    let kept = Kept::by(&[store]);
    let mut plan = ImportPlan::default();
    // The destination's records of the saga being read. Bundles keep a
    // saga's records together, so one saga is cached at a time.
    let mut snaps_of: Option<(String, HashMap<String, Value>)> = None;
    let mut replays_of: Option<(String, HashMap<String, Value>)> = None;
    for rec in records {
        let rec = rec?;
        refuse_masked(&rec)?;
        match rec {
            Record::Snapshot(s) => {
                if snaps_of.as_ref().is_none_or(|(id, _)| id != &s.saga_id) {
                    let (have, _) = all_snapshots(store, &s.saga_id, 5000).await?;
                    let map = have
                        .into_iter()
                        .map(|h| (h.snapshot_id.clone(), comparable_snapshot(&h, kept)))
                        .collect();
                    snaps_of = Some((s.saga_id.clone(), map));
                }
                let have = snaps_of.as_ref().and_then(|(_, m)| m.get(&s.snapshot_id));
                match have {
                    None => plan.new_snapshots += 1,
                    Some(h) if *h == comparable_snapshot(&s, kept) => {
                        plan.identical_snapshots += 1;
                        plan.identical.insert(("snapshot", s.snapshot_id.clone()));
                    }
                    Some(_) => {
                        plan.conflicting.insert(("snapshot", s.snapshot_id.clone()));
                        plan.conflicts.push(Conflict {
                            kind: "snapshot",
                            id: s.snapshot_id.clone(),
                            saga_id: s.saga_id.clone(),
                        });
                    }
                }
            }
            Record::Replay(r) => {
                if replays_of
                    .as_ref()
                    .is_none_or(|(id, _)| id != &r.original_saga_id)
                {
                    let have = store.list_replays(&r.original_saga_id, None).await?;
                    let map = have
                        .items
                        .iter()
                        .map(|h| (h.replay_id.clone(), comparable_replay(h)))
                        .collect();
                    replays_of = Some((r.original_saga_id.clone(), map));
                }
                let have = replays_of.as_ref().and_then(|(_, m)| m.get(&r.replay_id));
                match have {
                    None => plan.new_replays += 1,
                    Some(h) if *h == comparable_replay(&r) => {
                        plan.identical_replays += 1;
                        plan.identical.insert(("replay", r.replay_id.clone()));
                    }
                    Some(_) => {
                        plan.conflicting.insert(("replay", r.replay_id.clone()));
                        plan.conflicts.push(Conflict {
                            kind: "replay",
                            id: r.replay_id.clone(),
                            saga_id: r.original_saga_id.clone(),
                        });
                    }
                }
            }
        }
    }
    Ok(plan)
}

fn refuse_masked(rec: &Record) -> Result<(), ImportError> {
    use crate::compliance::mask;
    let found = match rec {
        Record::Snapshot(s) => mask::first_masked(s).map(|p| {
            format!(
                "snapshot {} of saga {} is masked at {p}",
                s.snapshot_id, s.saga_id
            )
        }),
        Record::Replay(r) => match &r.context_override {
            Some(Value::Object(m)) => mask::first_masked_in(m).map(|p| {
                format!(
                    "replay {} of saga {} has a masked override at {p}",
                    r.replay_id, r.original_saga_id
                )
            }),
            _ => None,
        },
    };
    found.map_or(Ok(()), |m| Err(ImportError::Masked(m)))
}

/// Writes what the plan says is new (and conflicts as `on_conflict` says),
/// snapshots in batches of 1,000. Refuses with [`ImportError::Conflicts`]
/// before writing anything when there are conflicts and `on_conflict` is
/// `Fail`.
pub async fn apply_import(
    store: &dyn SnapshotStore,
    plan: &ImportPlan,
    records: impl Iterator<Item = Result<Record, BundleError>>,
    on_conflict: OnConflict,
) -> Result<ImportReport, ImportError> {
    if !plan.conflicts.is_empty() && on_conflict == OnConflict::Fail {
        return Err(ImportError::Conflicts(plan.conflicts.clone()));
    }
    let mut report = ImportReport {
        snapshots_already_there: plan.identical_snapshots,
        replays_already_there: plan.identical_replays,
        ..ImportReport::default()
    };
    let mut batch = Vec::new();
    for rec in records {
        let rec = rec?;
        let key = match &rec {
            Record::Snapshot(s) => ("snapshot", s.snapshot_id.clone()),
            Record::Replay(r) => ("replay", r.replay_id.clone()),
        };
        if plan.identical.contains(&key) {
            continue;
        }
        if plan.conflicting.contains(&key) {
            match on_conflict {
                OnConflict::Replace => report.conflicts_replaced += 1,
                OnConflict::Skip | OnConflict::Fail => {
                    report.conflicts_skipped += 1;
                    continue;
                }
            }
        }
        match rec {
            Record::Snapshot(s) => {
                batch.push(*s);
                report.snapshots_written += 1;
                if batch.len() >= 1000 {
                    store.save_snapshots(&batch).await?;
                    batch.clear();
                }
            }
            Record::Replay(r) => {
                store.save_replay(&r).await?;
                report.replays_written += 1;
            }
        }
    }
    if !batch.is_empty() {
        store.save_snapshots(&batch).await?;
    }
    Ok(report)
}
