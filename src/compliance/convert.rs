//! Converting a store in place: [`encrypt_store`] encrypts the sensitive
//! values still in clear under the current master key (`sagascope
//! encrypt`); [`rotate_store`] re-wraps every data key under another master
//! key, or re-encrypts every value under a fresh data key of it (`sagascope
//! keys rotate`).
//!
//! Both work on the store underneath the protection layer (they read and
//! write the stored form), saga page by saga page in list order, and are
//! resumable after a kill:
//! - each snapshot and replay-log entry is checked first and left alone
//!   when already in the target state, and rewritten with one save;
//! - after each page, a progress record (`put_meta` kind [`JOB_KIND`], key
//!   `encrypt` or `rotate`) keeps where the run stands and its counts, so a
//!   run of the same job continues after the last page done, and its
//!   report covers the whole job.
//!
//! A master key that fails (unreachable, denied, the wrong key) stops the
//! run with that error, the progress record kept; a record that cannot be
//! read or converted (corrupt, a moved ciphertext, a data key missing from
//! it) is counted as unreadable, named in the report, and the run goes on.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::audit::{self, AuditEvent};
use super::crypto::{self, Encryptor, MasterKey, KEYS_FIELD};
use super::{Compliance, ComplianceError};
use crate::model::{ReplayLog, Snapshot, Timestamp};
use crate::store::{SagaCursor, SagaFilter, SagaPageRequest, SnapshotStore, StoreError};

/// The `put_meta` kind progress records are kept under.
pub const JOB_KIND: &str = "job";
/// At most this many problems are named in a report (the counts go on).
const MAX_PROBLEMS: usize = 100;

/// What a conversion does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Encrypt values in clear under the current master key.
    Encrypt,
    /// Re-wrap every data key under the target master key.
    Rewrap,
    /// Re-encrypt every value under a fresh data key of the target.
    Reencrypt,
}

impl JobKind {
    /// The progress record's key: one `encrypt` job and one `rotate` job
    /// at a time.
    pub fn record_key(self) -> &'static str {
        match self {
            JobKind::Encrypt => "encrypt",
            JobKind::Rewrap | JobKind::Reencrypt => "rotate",
        }
    }

    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            JobKind::Encrypt => "encrypt",
            JobKind::Rewrap | JobKind::Reencrypt => "keys.rotate",
        }
    }
}

/// How to run a conversion.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Count what would change; write nothing (no progress record, no
    /// audit event).
    pub dry_run: bool,
    /// Sagas per page (per progress record).
    pub batch: usize,
    /// Who runs it, for the audit event.
    pub actor: String,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            dry_run: false,
            batch: 100,
            actor: "sagascope".into(),
        }
    }
}

/// A record that could not be converted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// The saga it belongs to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saga_id: Option<String>,
    /// The snapshot, replay or index entry.
    pub key: String,
    /// Why (never a value).
    pub error: String,
}

/// What a conversion did, over every run of the job so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConvertReport {
    /// `encrypt`, `rewrap` or `reencrypt`.
    pub job: Option<JobKind>,
    /// The master key values end up under.
    pub target: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// This run continued one that stopped part way.
    pub resumed: bool,
    /// Sagas gone through.
    pub sagas: u64,
    /// Snapshots rewritten (or, in a dry run, that would be).
    pub snapshots_changed: u64,
    /// Snapshots already in the target state.
    pub snapshots_unchanged: u64,
    /// Snapshots (or index entries) that could not be read or converted.
    pub snapshots_unreadable: u64,
    /// Replay-log entries rewritten.
    pub replays_changed: u64,
    /// Replay-log entries already in the target state.
    pub replays_unchanged: u64,
    /// Replay-log entries that could not be read or converted.
    pub replays_unreadable: u64,
    /// The first problems met, by record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

impl ConvertReport {
    fn problem(&mut self, saga_id: Option<&str>, key: &str, error: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                saga_id: saga_id.map(str::to_string),
                key: key.to_string(),
                error,
            });
        }
    }

    /// Whether some record could not be converted.
    pub fn has_problems(&self) -> bool {
        self.snapshots_unreadable > 0 || self.replays_unreadable > 0
    }
}

/// Where a job stands, as kept in its progress record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JobRecord {
    job: Option<JobKind>,
    target: String,
    /// `running` until the last page is done, then `done`.
    state: String,
    /// The last saga done (list order).
    cursor: Option<SagaCursor>,
    /// The data keys a re-encryption made (one per run): a record whose
    /// values use only these is done.
    #[serde(default)]
    fresh_keys: BTreeSet<String>,
    started_at: Option<Timestamp>,
    updated_at: Option<Timestamp>,
    report: ConvertReport,
}

/// What a conversion fails with as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The config does not allow it (no key to encrypt under, an unknown
    /// target key).
    #[error("{0}")]
    Config(ComplianceError),
    /// A master key failed (unreachable, denied, the wrong key); the run
    /// stopped and can be run again.
    #[error("{0}")]
    Key(ComplianceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a run stands, after each page.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// The job's counts so far.
    pub report: &'a ConvertReport,
    /// Sagas in the store when the run started.
    pub sagas_total: u64,
}

/// `sagascope encrypt`: encrypts every sensitive value still in clear
/// under the current master key (`[compliance.encryption] key`).
pub async fn encrypt_store(
    store: &dyn SnapshotStore,
    policy: &Compliance,
    opts: &ConvertOptions,
    progress: impl FnMut(Progress<'_>),
) -> Result<ConvertReport, ConvertError> {
    let enc = policy.encryption.as_ref().ok_or_else(|| {
        ConvertError::Config(ComplianceError::Config(
            "no encryption key is configured: set [compliance.encryption] key = \"<id>\" and \
             [compliance.encryption.keys.<id>]"
                .into(),
        ))
    })?;
    let target = enc.current_master().ok_or_else(|| {
        ConvertError::Config(ComplianceError::Config(
            "[compliance.encryption] names no current key (key = \"<id>\"): there is nothing \
             to encrypt under"
                .into(),
        ))
    })?;
    let target = target.to_string();
    run(
        store,
        policy,
        enc.clone(),
        JobKind::Encrypt,
        &target,
        opts,
        progress,
    )
    .await
}

/// `sagascope keys rotate --to <id> [--reencrypt]`: re-wraps every data key
/// under master key `to` (the values stay as they are; afterwards only `to`
/// is needed), or, with [`JobKind::Reencrypt`], re-encrypts every value
/// under a fresh data key of `to` (the old data keys are gone).
pub async fn rotate_store(
    store: &dyn SnapshotStore,
    policy: &Compliance,
    to: &str,
    reencrypt: bool,
    opts: &ConvertOptions,
    progress: impl FnMut(Progress<'_>),
) -> Result<ConvertReport, ConvertError> {
    let enc = policy.encryption.as_ref().ok_or_else(|| {
        ConvertError::Config(ComplianceError::Config(
            "no encryption keys are configured ([compliance.encryption.keys.<id>])".into(),
        ))
    })?;
    if enc.master(to).is_none() {
        return Err(ConvertError::Config(ComplianceError::Key {
            key_id: to.to_string(),
            message: format!(
                "--to names no configured master key (add [compliance.encryption.keys.{to}]; \
                 configured: {})",
                enc.master_ids().collect::<Vec<_>>().join(", ")
            ),
        }));
    }
    // Every master opens what it wrapped; new data keys go under `to`.
    let masters: Vec<Arc<dyn MasterKey>> = enc
        .master_ids()
        .filter_map(|id| enc.master(id).cloned())
        .collect();
    let job_enc =
        Arc::new(Encryptor::new(masters, Some(to.to_string())).map_err(ConvertError::Config)?);
    let kind = if reencrypt {
        JobKind::Reencrypt
    } else {
        JobKind::Rewrap
    };
    run(store, policy, job_enc, kind, to, opts, progress).await
}

async fn run(
    store: &dyn SnapshotStore,
    policy: &Compliance,
    enc: Arc<Encryptor>,
    kind: JobKind,
    target: &str,
    opts: &ConvertOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<ConvertReport, ConvertError> {
    let sagas_total = store.count_sagas(&SagaFilter::default()).await?;
    let now = Timestamp::now();
    let mut rec = if opts.dry_run {
        None
    } else {
        previous_run(store, kind, target).await?
    }
    .unwrap_or_else(|| JobRecord {
        job: Some(kind),
        target: target.to_string(),
        state: "running".into(),
        started_at: Some(now),
        report: ConvertReport {
            job: Some(kind),
            target: target.to_string(),
            dry_run: opts.dry_run,
            ..ConvertReport::default()
        },
        ..JobRecord::default()
    });
    let job = Job {
        enc,
        kind,
        target: target.to_string(),
        policy,
    };
    let mut after = rec.cursor.clone();
    loop {
        let page = store
            .list_sagas(
                &SagaFilter::default(),
                &SagaPageRequest {
                    limit: opts.batch.max(1),
                    after: after.clone(),
                },
            )
            .await?;
        for b in &page.bad {
            rec.report.snapshots_unreadable += 1;
            rec.report
                .problem(b.saga_id.as_deref(), &b.key, b.error.clone());
        }
        let ids: Vec<String> = page.sagas.iter().map(|s| s.saga_id.clone()).collect();
        if !ids.is_empty() {
            job.page(store, &ids, &mut rec, opts.dry_run).await?;
            rec.report.sagas += ids.len() as u64;
        }
        let next = page.sagas.last().map(SagaCursor::of).or(page.next.clone());
        rec.cursor = next.clone().or(rec.cursor.take());
        if !opts.dry_run {
            rec.updated_at = Some(Timestamp::now());
            save_record(store, kind, &rec).await?;
        }
        progress(Progress {
            report: &rec.report,
            sagas_total,
        });
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if !opts.dry_run {
        rec.state = "done".into();
        rec.updated_at = Some(Timestamp::now());
        save_record(store, kind, &rec).await?;
        let mut ev = AuditEvent::new(opts.actor.clone(), kind.action());
        ev.details = serde_json::json!({
            "job": kind,
            "target": target,
            "resumed": rec.report.resumed,
            "sagas": rec.report.sagas,
            "snapshots_changed": rec.report.snapshots_changed,
            "snapshots_unchanged": rec.report.snapshots_unchanged,
            "snapshots_unreadable": rec.report.snapshots_unreadable,
            "replays_changed": rec.report.replays_changed,
            "replays_unchanged": rec.report.replays_unchanged,
            "replays_unreadable": rec.report.replays_unreadable,
        });
        audit::append(store, &ev).await?;
    }
    Ok(rec.report)
}

/// The unfinished run of the same job (kind and target) to continue, if
/// any; a finished one, or one of another kind or target, starts afresh.
async fn previous_run(
    store: &dyn SnapshotStore,
    kind: JobKind,
    target: &str,
) -> Result<Option<JobRecord>, ConvertError> {
    let Some(v) = store.get_meta(JOB_KIND, kind.record_key()).await? else {
        return Ok(None);
    };
    let Ok(mut rec) = serde_json::from_value::<JobRecord>(v) else {
        return Ok(None);
    };
    if rec.state != "running" || rec.job != Some(kind) || rec.target != target {
        return Ok(None);
    }
    rec.report.resumed = true;
    Ok(Some(rec))
}

async fn save_record(
    store: &dyn SnapshotStore,
    kind: JobKind,
    rec: &JobRecord,
) -> Result<(), ConvertError> {
    let v = serde_json::to_value(rec).unwrap_or(Value::Null);
    store.put_meta(JOB_KIND, kind.record_key(), &v).await?;
    Ok(())
}

struct Job<'a> {
    enc: Arc<Encryptor>,
    kind: JobKind,
    target: String,
    policy: &'a Compliance,
}

/// What converting one record came to.
enum Outcome<T> {
    Unchanged,
    Changed(T),
}

impl Job<'_> {
    /// Converts the snapshots and replay logs of one page of sagas.
    async fn page(
        &self,
        store: &dyn SnapshotStore,
        ids: &[String],
        rec: &mut JobRecord,
        dry_run: bool,
    ) -> Result<(), ConvertError> {
        let listing = store.snapshots_of_sagas(ids).await?;
        let mut changed = Vec::new();
        for e in listing.in_order() {
            let s = match e {
                Ok(s) => s,
                Err(b) => {
                    rec.report.snapshots_unreadable += 1;
                    rec.report
                        .problem(b.saga_id.as_deref(), &b.key, b.error.clone());
                    continue;
                }
            };
            match self.snapshot(s, &rec.fresh_keys).await {
                Ok(Outcome::Unchanged) => rec.report.snapshots_unchanged += 1,
                Ok(Outcome::Changed(n)) => {
                    if self.kind == JobKind::Reencrypt {
                        rec.fresh_keys.extend(data_keys(&n.extra));
                    }
                    rec.report.snapshots_changed += 1;
                    changed.push(n);
                }
                Err(e) => {
                    self.fatal(&e)?;
                    rec.report.snapshots_unreadable += 1;
                    rec.report
                        .problem(Some(&s.saga_id), &s.snapshot_id, e.to_string());
                }
            }
        }
        if !dry_run {
            // One save per snapshot (each atomic on its backend).
            for s in &changed {
                store.save_snapshot(s).await?;
            }
        }
        let logs = store.replays_of_sagas(ids).await?;
        for e in logs.in_order() {
            let l = match e {
                Ok(l) => l,
                Err(b) => {
                    rec.report.replays_unreadable += 1;
                    rec.report
                        .problem(b.saga_id.as_deref(), &b.key, b.error.clone());
                    continue;
                }
            };
            match self.replay(l, &rec.fresh_keys).await {
                Ok(Outcome::Unchanged) => rec.report.replays_unchanged += 1,
                Ok(Outcome::Changed(n)) => {
                    if self.kind == JobKind::Reencrypt {
                        rec.fresh_keys.extend(data_keys(&n.extra));
                    }
                    rec.report.replays_changed += 1;
                    if !dry_run {
                        store.save_replay(&n).await?;
                    }
                }
                Err(e) => {
                    self.fatal(&e)?;
                    rec.report.replays_unreadable += 1;
                    rec.report
                        .problem(Some(&l.original_saga_id), &l.replay_id, e.to_string());
                }
            }
        }
        Ok(())
    }

    /// A failure of a master key itself (it would fail every record) stops
    /// the run; one about a record (a data key it does not list, a value
    /// that does not decrypt) is that record's problem.
    fn fatal(&self, e: &ComplianceError) -> Result<(), ConvertError> {
        match e {
            ComplianceError::Key { key_id, .. } if !key_id.starts_with("dk-") => {
                Err(ConvertError::Key(e.clone()))
            }
            ComplianceError::Config(_) => Err(ConvertError::Config(e.clone())),
            _ => Ok(()),
        }
    }

    async fn snapshot(
        &self,
        s: &Snapshot,
        fresh: &BTreeSet<String>,
    ) -> Result<Outcome<Snapshot>, ComplianceError> {
        let patterns: Vec<_> = self
            .policy
            .sensitive
            .for_saga(&s.saga_name)
            .cloned()
            .collect();
        let mut n = s.clone();
        match self.kind {
            JobKind::Encrypt => {
                if !crypto::needs_encryption(s, patterns.iter()) {
                    return Ok(Outcome::Unchanged);
                }
                self.enc.encrypt_snapshot(&mut n, patterns.iter()).await?;
            }
            JobKind::Rewrap => {
                let masters = crypto::masters_of(s);
                if masters.iter().all(|m| *m == self.target) && all_under(&s.extra, &self.target) {
                    return Ok(Outcome::Unchanged);
                }
                self.enc.rewrap_snapshot(&mut n, &self.target).await?;
            }
            JobKind::Reencrypt => {
                let keys = data_keys(&s.extra);
                let done = keys.iter().all(|k| fresh.contains(k))
                    && !crypto::needs_encryption(s, patterns.iter());
                if done {
                    return Ok(Outcome::Unchanged);
                }
                self.enc
                    .reencrypt_snapshot_under(&mut n, patterns.iter(), &self.target)
                    .await?;
            }
        }
        Ok(if n.context == s.context && n.extra == s.extra {
            Outcome::Unchanged
        } else {
            Outcome::Changed(n)
        })
    }

    async fn replay(
        &self,
        l: &ReplayLog,
        fresh: &BTreeSet<String>,
    ) -> Result<Outcome<ReplayLog>, ComplianceError> {
        if !matches!(l.context_override, Some(Value::Object(_))) {
            return Ok(Outcome::Unchanged);
        }
        // A replay log does not name its saga's definition; every pattern
        // of the config applies to its override.
        let patterns: Vec<_> = self.policy.sensitive.all().cloned().collect();
        let mut n = l.clone();
        match self.kind {
            JobKind::Encrypt => self.enc.encrypt_replay(&mut n, patterns.iter()).await?,
            JobKind::Rewrap => {
                if all_under(&l.extra, &self.target)
                    && crypto::replay_masters_of(l)
                        .iter()
                        .all(|m| *m == self.target)
                {
                    return Ok(Outcome::Unchanged);
                }
                self.enc.rewrap_replay(&mut n, &self.target).await?
            }
            JobKind::Reencrypt => {
                let keys = data_keys(&l.extra);
                if !keys.is_empty() && keys.iter().all(|k| fresh.contains(k)) {
                    return Ok(Outcome::Unchanged);
                }
                self.enc.reencrypt_replay(&mut n, patterns.iter()).await?
            }
        }
        Ok(
            if n.context_override == l.context_override && n.extra == l.extra {
                Outcome::Unchanged
            } else {
                Outcome::Changed(n)
            },
        )
    }
}

/// The data key ids a record's `sagascope_keys` lists.
fn data_keys(extra: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    match extra.get(KEYS_FIELD) {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// Whether every data key a record lists is wrapped under `master`.
fn all_under(extra: &serde_json::Map<String, Value>, master: &str) -> bool {
    match extra.get(KEYS_FIELD) {
        Some(Value::Object(m)) => m
            .values()
            .all(|e| e.get("master").and_then(Value::as_str) == Some(master)),
        _ => true,
    }
}
