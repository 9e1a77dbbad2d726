//! Erasure of a data subject: every snapshot and replay-log entry that
//! names them, found through the configured subject paths
//! (`[compliance] subjects`), deleted or tombstoned per policy, with a
//! receipt that proves what was done without naming the subject.
//!
//! Finding reads the whole store, keyset page by keyset page (a store of
//! any size is covered, never a first page only), through the unmasked
//! handle, so encrypted subject fields are compared decrypted.
//!
//! A tombstone (`{"$erased": "<time>"}`) replaces a value in place: the
//! context keeps its shape and keys, sagaz still reads the snapshot as
//! ordinary JSON, and the protection layer treats it as opaque (it is
//! neither encrypted nor masked again).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::audit::{self, AuditEvent};
use super::hold::{self, HoldError};
use super::paths::{self, PathPattern, PathSeg};
use super::Compliance;
use crate::model::{ReplayLog, Snapshot, Timestamp};
use crate::store::{
    self, BadEntry, SagaFilter, SagaPageRequest, SnapshotQuery, SnapshotStore, StoreError,
};

/// The audit action an erasure is recorded under.
pub const ACTION: &str = "erase";

/// Sagas read per page while looking for a subject: one `list_sagas` page
/// and one `snapshots_of_sagas` call each.
pub const DEFAULT_PAGE: usize = 500;

/// A data subject as `--subject PATH=VALUE` names it: a configured subject
/// path and the value that identifies the person there.
#[derive(Clone, PartialEq)]
pub struct Subject {
    /// The configured pattern the path matched.
    pub path: PathPattern,
    /// The value, as typed (compared with JSON strings as is, and with
    /// JSON numbers when it reads as one).
    value: String,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path, never the person.
        f.debug_struct("Subject")
            .field("path", &self.path.to_string())
            .field("value", &"<redacted>")
            .finish()
    }
}

impl Subject {
    /// Parses `PATH=VALUE`; the path must be one of `policy`'s subject
    /// paths.
    pub fn parse(arg: &str, policy: &Compliance) -> Result<Subject, EraseError> {
        let configured = || {
            if policy.subjects.is_empty() {
                "none is configured: add `subjects = [\"customer.id\"]` under [compliance]"
                    .to_string()
            } else {
                format!(
                    "configured: {}",
                    policy
                        .subjects
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        let Some((path, value)) = arg.split_once('=') else {
            return Err(EraseError::Subject(format!(
                "--subject takes PATH=VALUE (e.g. customer.id=C-123), with PATH a subject path \
                 ({})",
                configured()
            )));
        };
        let (path, value) = (path.trim(), value.trim());
        if value.is_empty() {
            return Err(EraseError::Subject(format!(
                "--subject {path}=: the value is empty; give the value that identifies the \
                 person at {path}"
            )));
        }
        let wanted = path.trim_start_matches("$.");
        let Some(pattern) = policy
            .subjects
            .iter()
            .find(|p| p.to_string().trim_start_matches("$.") == wanted)
        else {
            return Err(EraseError::Subject(format!(
                "{path:?} is not a subject path ({})",
                configured()
            )));
        };
        Ok(Subject {
            path: pattern.clone(),
            value: value.to_string(),
        })
    }

    /// Whether a JSON value is the subject's value: the same string, or
    /// the same number.
    pub fn is_value(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => *s == self.value,
            Value::Number(n) => self
                .value
                .parse::<f64>()
                .is_ok_and(|x| n.as_f64() == Some(x)),
            _ => false,
        }
    }

    /// Whether `ctx` holds the subject's value at the subject path.
    pub fn named_in(&self, ctx: &Map<String, Value>) -> bool {
        let mut ctx = ctx.clone();
        let mut found = false;
        paths::visit_matching_mut(&mut ctx, std::iter::once(&self.path), &mut |_, v| {
            found |= self.is_value(v)
        });
        found
    }

    /// Whether the value appears anywhere in `v` (a leaf equal to it).
    fn anywhere_in(&self, v: &Value) -> bool {
        match v {
            Value::Object(m) => m.values().any(|c| self.anywhere_in(c)),
            Value::Array(a) => a.iter().any(|c| self.anywhere_in(c)),
            leaf => self.is_value(leaf),
        }
    }

    /// Whether a string holds the value (exactly, or within a longer
    /// text such as an error message).
    fn in_text(&self, s: &str) -> bool {
        s == self.value || (self.value.chars().count() >= 3 && s.contains(&self.value))
    }

    /// `sha256(salt ‖ path ‖ "=" ‖ value)` in hex: lets whoever knows the
    /// subject (and has the receipt) confirm it was this one, without the
    /// receipt naming them.
    pub fn salted_hash(&self, salt: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(self.path.to_string().as_bytes());
        h.update(b"=");
        h.update(self.value.as_bytes());
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What `erase` does to a subject's sagas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EraseMode {
    /// Replace the personal fields with tombstones; the sagas stay.
    #[default]
    Tombstone,
    /// Delete the sagas and their replay logs.
    Delete,
}

impl EraseMode {
    /// `tombstone` or `delete`.
    pub fn parse(s: &str) -> Result<Self, EraseError> {
        match s.trim() {
            "tombstone" => Ok(EraseMode::Tombstone),
            "delete" => Ok(EraseMode::Delete),
            other => Err(EraseError::Subject(format!(
                "erase mode {other:?}: expected \"tombstone\" or \"delete\""
            ))),
        }
    }

    /// The policy's mode (`[compliance] erase`), tombstone by default.
    pub fn from_policy(policy: &Compliance) -> Result<Self, EraseError> {
        policy
            .config
            .erase
            .as_deref()
            .map_or(Ok(EraseMode::Tombstone), Self::parse)
            .map_err(|e| EraseError::Subject(format!("[compliance] erase: {e}")))
    }

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            EraseMode::Tombstone => "tombstone",
            EraseMode::Delete => "delete",
        }
    }
}

impl fmt::Display for EraseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What erasure can fail with.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// The subject or the mode cannot be used.
    #[error("{0}")]
    Subject(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A legal hold could not be read.
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// The erasure was done but its receipt could not be written to the
    /// audit log: the receipt is here to print and keep.
    #[error(
        "the erasure was done, but its receipt could not be written to the audit log: {error}"
    )]
    Unrecorded {
        /// What was done.
        receipt: Box<Receipt>,
        /// Why the audit log refused it.
        error: StoreError,
    },
}

/// A saga that names the subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoundSaga {
    /// Its id.
    pub saga_id: String,
    /// Its name.
    pub saga_name: String,
    /// How many of its snapshots there are (all are erased, not only those
    /// naming the subject).
    pub snapshots: u64,
    /// How many of them name the subject.
    pub naming: u64,
}

/// A replay-log entry that concerns the subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoundReplay {
    /// Its id.
    pub replay_id: String,
    /// The saga it started from.
    pub original_saga_id: String,
    /// The saga it made.
    pub new_saga_id: String,
}

/// Everything of a subject in a store.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    /// Sagas with a snapshot naming the subject, by id.
    pub sagas: Vec<FoundSaga>,
    /// Replay-log entries from or to one of those sagas, or whose override
    /// holds the subject's value.
    pub replays: Vec<FoundReplay>,
    /// Sagas read.
    pub sagas_scanned: u64,
    /// Entries that could not be read, so could not be checked.
    pub bad: Vec<BadEntry>,
    /// The store's warnings met on the way (a saga index out of date).
    pub warnings: Vec<String>,
}

/// Options of [`find_subject`] and [`erase`].
#[derive(Debug, Clone)]
pub struct EraseOptions {
    /// Who erases (recorded in the receipt and the audit log).
    pub actor: String,
    /// Only find and count; write nothing (no audit event either).
    pub dry_run: bool,
    /// Sagas per page while scanning (see [`DEFAULT_PAGE`]).
    pub page: usize,
}

impl EraseOptions {
    /// A real erasure by `actor`, scanning [`DEFAULT_PAGE`] sagas at a time.
    pub fn new(actor: impl Into<String>) -> Self {
        EraseOptions {
            actor: actor.into(),
            dry_run: false,
            page: DEFAULT_PAGE,
        }
    }
}

/// Finds every saga and replay-log entry of `subject`, reading all sagas
/// [`DEFAULT_PAGE`] at a time.
pub async fn find_subject(
    store: &Arc<dyn SnapshotStore>,
    policy: &Compliance,
    subject: &Subject,
) -> Result<Findings, EraseError> {
    find_paged(store, policy, subject, DEFAULT_PAGE).await
}

/// [`find_subject`] with `page` sagas per page.
pub async fn find_paged(
    store: &Arc<dyn SnapshotStore>,
    _policy: &Compliance,
    subject: &Subject,
    page: usize,
) -> Result<Findings, EraseError> {
    let raw = store::unmasked(store);
    let mut out = Findings::default();
    let mut found: BTreeMap<String, FoundSaga> = BTreeMap::new();
    let mut replays: BTreeMap<String, FoundReplay> = BTreeMap::new();
    let mut req = SagaPageRequest {
        limit: page.max(1),
        after: None,
    };
    loop {
        let p = raw.list_sagas(&SagaFilter::default(), &req).await?;
        out.bad.extend(p.bad);
        if let Some(w) = p.index_warning {
            if !out.warnings.contains(&w) {
                out.warnings.push(w);
            }
        }
        let ids: Vec<String> = p.sagas.iter().map(|s| s.saga_id.clone()).collect();
        out.sagas_scanned += ids.len() as u64;
        if !ids.is_empty() {
            let snaps = raw.snapshots_of_sagas(&ids).await?;
            out.bad.extend(snaps.bad);
            let mut counts: BTreeMap<&str, (u64, u64, &str)> = BTreeMap::new();
            for s in &snaps.items {
                let e = counts
                    .entry(s.saga_id.as_str())
                    .or_insert((0, 0, s.saga_name.as_str()));
                e.0 += 1;
                if subject.named_in(&s.context) {
                    e.1 += 1;
                }
            }
            for (id, (n, naming, name)) in counts {
                if naming > 0 {
                    found.insert(
                        id.to_string(),
                        FoundSaga {
                            saga_id: id.to_string(),
                            saga_name: name.to_string(),
                            snapshots: n,
                            naming,
                        },
                    );
                }
            }
            let logs = raw.replays_of_sagas(&ids).await?;
            out.bad.extend(logs.bad);
            for r in logs.items {
                if r.context_override
                    .as_ref()
                    .is_some_and(|o| subject.anywhere_in(o))
                {
                    replays.insert(r.replay_id.clone(), found_replay(&r));
                }
            }
        }
        match p.next {
            Some(next) => req.after = Some(next),
            None => break,
        }
    }
    // The replay logs of the subject's sagas, both ways.
    let ids: Vec<String> = found.keys().cloned().collect();
    for chunk in ids.chunks(page.max(1)) {
        let logs = raw.replays_of_sagas(chunk).await?;
        out.bad.extend(logs.bad);
        for r in logs.items {
            replays.insert(r.replay_id.clone(), found_replay(&r));
        }
    }
    for id in &ids {
        if let Some(r) = raw.replay_producing(id).await? {
            replays.insert(r.replay_id.clone(), found_replay(&r));
        }
    }
    out.sagas = found.into_values().collect();
    out.replays = replays.into_values().collect();
    Ok(out)
}

fn found_replay(r: &ReplayLog) -> FoundReplay {
    FoundReplay {
        replay_id: r.replay_id.clone(),
        original_saga_id: r.original_saga_id.clone(),
        new_saga_id: r.new_saga_id.clone(),
    }
}

/// A saga a legal hold kept from erasure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldSaga {
    /// The saga.
    pub saga_id: String,
    /// Why it was kept (the hold's refusal message).
    pub message: String,
}

/// What an erasure did (or, in a dry run, would do): never the subject,
/// only a salted hash of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// Tombstone or delete.
    pub mode: EraseMode,
    /// Nothing was written.
    pub dry_run: bool,
    /// The subject path (a field name from the config, not a value).
    pub subject_path: String,
    /// `sha256(salt ‖ path ‖ "=" ‖ value)`, hex.
    pub subject_hash: String,
    /// The random salt of the hash, hex.
    pub salt: String,
    /// Sagas erased.
    pub sagas: u64,
    /// Snapshots erased (tombstoned or deleted).
    pub snapshots: u64,
    /// Replay-log entries erased.
    pub replay_logs: u64,
    /// The sagas erased.
    pub saga_ids: Vec<String>,
    /// The replay-log entries erased.
    pub replay_ids: Vec<String>,
    /// Sagas kept by a legal hold (with their replay logs).
    pub held: Vec<HeldSaga>,
    /// Sagas read to find the subject.
    pub sagas_scanned: u64,
    /// Entries that could not be read, so could not be checked.
    pub unreadable: Vec<BadEntry>,
    /// The store's warnings met on the way.
    pub warnings: Vec<String>,
}

/// Finds and erases `subject`: per `mode`, deletes their sagas and replay
/// logs or tombstones the personal fields in place. Held sagas are kept and
/// named in the receipt. Unless `opts.dry_run`, the receipt is appended to
/// the audit log.
pub async fn erase(
    store: &Arc<dyn SnapshotStore>,
    policy: &Compliance,
    subject: &Subject,
    mode: EraseMode,
    opts: &EraseOptions,
) -> Result<Receipt, EraseError> {
    let findings = find_paged(store, policy, subject, opts.page).await?;
    let raw = store::unmasked(store);
    let mut salt = [0u8; 16];
    salt.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut receipt = Receipt {
        at: Timestamp::now(),
        actor: opts.actor.clone(),
        mode,
        dry_run: opts.dry_run,
        subject_path: subject.path.to_string(),
        subject_hash: subject.salted_hash(&salt),
        salt: hex(&salt),
        sagas: 0,
        snapshots: 0,
        replay_logs: 0,
        saga_ids: Vec::new(),
        replay_ids: Vec::new(),
        held: Vec::new(),
        sagas_scanned: findings.sagas_scanned,
        unreadable: findings.bad.clone(),
        warnings: findings.warnings.clone(),
    };
    let stamp = json!({ "$erased": receipt.at.to_isoformat() });

    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for s in &findings.sagas {
        names.insert(s.saga_id.clone(), s.saga_name.clone());
        if let Some(h) = hold::get(store.as_ref(), &s.saga_id).await? {
            receipt.held.push(HeldSaga {
                saga_id: s.saga_id.clone(),
                message: hold::refusal(&s.saga_id, &h),
            });
            held.insert(s.saga_id.clone());
            continue;
        }
        let n = if opts.dry_run {
            s.snapshots
        } else {
            match mode {
                EraseMode::Delete => raw.delete_saga(&s.saga_id).await?,
                EraseMode::Tombstone => {
                    tombstone_saga(raw.as_ref(), policy, subject, &s.saga_id, &stamp).await?
                }
            }
        };
        receipt.sagas += 1;
        receipt.snapshots += n;
        receipt.saga_ids.push(s.saga_id.clone());
    }

    for f in &findings.replays {
        // A replay log is part of the record of the sagas it links: a hold
        // on either keeps it.
        if let Some(id) = [&f.original_saga_id, &f.new_saga_id]
            .into_iter()
            .find(|id| held.contains(*id))
        {
            if !receipt.held.iter().any(|h| &h.saga_id == id) {
                // Held, but not itself naming the subject: say so once.
                if let Some(h) = hold::get(store.as_ref(), id).await? {
                    receipt.held.push(HeldSaga {
                        saga_id: id.clone(),
                        message: hold::refusal(id, &h),
                    });
                }
            }
            continue;
        }
        // Linked to a held saga that does not itself name the subject?
        let mut kept = false;
        for id in [&f.original_saga_id, &f.new_saga_id] {
            if names.contains_key(id) {
                continue;
            }
            if let Some(h) = hold::get(store.as_ref(), id).await? {
                if !receipt.held.iter().any(|x| &x.saga_id == id) {
                    receipt.held.push(HeldSaga {
                        saga_id: id.clone(),
                        message: hold::refusal(id, &h),
                    });
                }
                kept = true;
            }
        }
        if kept {
            continue;
        }
        let done = if opts.dry_run {
            true
        } else {
            match mode {
                EraseMode::Delete => raw.delete_replay(&f.replay_id).await?,
                EraseMode::Tombstone => {
                    let name = names.get(&f.original_saga_id).map(String::as_str);
                    tombstone_replay(raw.as_ref(), policy, subject, &f.replay_id, name, &stamp)
                        .await?
                }
            }
        };
        if done {
            receipt.replay_logs += 1;
            receipt.replay_ids.push(f.replay_id.clone());
        }
    }

    if !opts.dry_run {
        let mut ev = AuditEvent::new(&opts.actor, ACTION);
        ev.paths = vec![receipt.subject_path.clone()];
        ev.details = serde_json::to_value(&receipt).unwrap_or(Value::Null);
        if let Err(error) = audit::append(store.as_ref(), &ev).await {
            return Err(EraseError::Unrecorded {
                receipt: Box::new(receipt),
                error,
            });
        }
    }
    Ok(receipt)
}

/// Tombstones every snapshot of a saga; returns how many were rewritten.
async fn tombstone_saga(
    raw: &dyn SnapshotStore,
    policy: &Compliance,
    subject: &Subject,
    saga_id: &str,
    stamp: &Value,
) -> Result<u64, EraseError> {
    let all = store::all_snapshots(raw, saga_id, SnapshotQuery::all()).await?;
    let mut out: Vec<Snapshot> = Vec::with_capacity(all.items.len());
    for mut s in all.items {
        let patterns: Vec<PathPattern> = policy
            .sensitive
            .for_saga(&s.saga_name)
            .cloned()
            .chain(std::iter::once(subject.path.clone()))
            .collect();
        tombstone_map(&mut s.context, &patterns, subject, stamp);
        tombstone_map(&mut s.external_refs, &[], subject, stamp);
        let keys = s.extra.remove(KEYS_FIELD);
        tombstone_map(&mut s.extra, &[], subject, stamp);
        if let Some(k) = keys {
            s.extra.insert(KEYS_FIELD.into(), k);
        }
        out.push(s);
    }
    let n = out.len() as u64;
    raw.save_snapshots(&out).await?;
    Ok(n)
}

/// Where a snapshot keeps its wrapped data keys (see `crypto`): not
/// personal, and needed to read what stays encrypted.
const KEYS_FIELD: &str = "sagascope_keys";

/// Tombstones a replay log's override (and any text of it holding the
/// value); `false` when the entry is gone.
async fn tombstone_replay(
    raw: &dyn SnapshotStore,
    policy: &Compliance,
    subject: &Subject,
    replay_id: &str,
    saga_name: Option<&str>,
    stamp: &Value,
) -> Result<bool, EraseError> {
    let Some(mut log) = raw.get_replay(replay_id).await? else {
        return Ok(false);
    };
    // A log does not say its saga's name: the name's patterns when the
    // saga was found, else every pattern.
    let mut patterns: Vec<PathPattern> = match saga_name {
        Some(n) => policy.sensitive.for_saga(n).cloned().collect(),
        None => policy.sensitive.all().cloned().collect(),
    };
    patterns.push(subject.path.clone());
    if let Some(Value::Object(o)) = &mut log.context_override {
        tombstone_map(o, &patterns, subject, stamp);
    } else if log
        .context_override
        .as_ref()
        .is_some_and(|v| subject.anywhere_in(v))
    {
        log.context_override = Some(stamp.clone());
    }
    if log
        .error_message
        .as_deref()
        .is_some_and(|m| subject.in_text(m))
    {
        log.error_message = Some(format!("[erased {}]", stamp["$erased"]));
    }
    let keys = log.extra.remove(KEYS_FIELD);
    tombstone_map(&mut log.extra, &[], subject, stamp);
    if let Some(k) = keys {
        log.extra.insert(KEYS_FIELD.into(), k);
    }
    raw.save_replay(&log).await?;
    Ok(true)
}

/// Replaces with `stamp` every leaf of `m` that `patterns` cover, every
/// ciphertext (it may hold anything), and every leaf that holds the
/// subject's value wherever it is.
fn tombstone_map(
    m: &mut Map<String, Value>,
    patterns: &[PathPattern],
    subject: &Subject,
    stamp: &Value,
) {
    paths::visit_leaves_mut(m, &mut |path: &[PathSeg], v: &mut Value| {
        let erased = matches!(v, Value::Object(o) if o.contains_key("$erased"));
        if erased {
            return;
        }
        let encrypted = matches!(v, Value::Object(o) if o.contains_key("$enc"));
        let holds = match &*v {
            Value::String(s) => subject.in_text(s),
            other => subject.is_value(other),
        };
        if encrypted || holds || patterns.iter().any(|p| p.covers(path)) {
            *v = stamp.clone();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::ComplianceConfig;

    async fn policy(subjects: &[&str], sensitive: &[&str]) -> Compliance {
        let mut cfg = ComplianceConfig {
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            ..ComplianceConfig::default()
        };
        cfg.sensitive.insert(
            "*".into(),
            sensitive.iter().map(|s| s.to_string()).collect(),
        );
        Compliance::from_config(&cfg).await.unwrap()
    }

    #[tokio::test]
    async fn a_subject_names_a_configured_path_and_errors_list_them() {
        let p = policy(&["customer.id", "account"], &[]).await;
        let s = Subject::parse("customer.id=C-123", &p).unwrap();
        assert_eq!(s.path.to_string(), "customer.id");
        assert!(s.is_value(&json!("C-123")));
        assert!(!s.is_value(&json!("C-1234")));
        let n = Subject::parse("account=42", &p).unwrap();
        assert!(n.is_value(&json!(42)) && n.is_value(&json!("42")) && !n.is_value(&json!(43)));
        let e = Subject::parse("customer.email=a@b.c", &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("customer.id, account"), "{e}");
        assert!(
            !e.contains("a@b.c"),
            "the error never repeats the value: {e}"
        );
        let e = Subject::parse("customer.id", &p).unwrap_err().to_string();
        assert!(e.contains("PATH=VALUE"), "{e}");
        let none = policy(&[], &[]).await;
        let e = Subject::parse("customer.id=C-1", &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("subjects = "), "{e}");
        assert!(!format!("{s:?}").contains("C-123"));
    }

    #[tokio::test]
    async fn the_salted_hash_changes_with_the_salt_and_never_holds_the_value() {
        let p = policy(&["customer.id"], &[]).await;
        let s = Subject::parse("customer.id=C-123", &p).unwrap();
        let a = s.salted_hash(b"one");
        assert_eq!(a.len(), 64);
        assert_ne!(a, s.salted_hash(b"two"));
        assert_eq!(a, s.salted_hash(b"one"));
        assert!(!a.contains("C-123"));
    }

    #[tokio::test]
    async fn tombstones_replace_sensitive_subject_and_matching_leaves_only() {
        let p = policy(&["customer.id"], &["customer.email", "card.*"]).await;
        let s = Subject::parse("customer.id=C-123", &p).unwrap();
        let mut ctx = json!({
            "customer": {"id": "C-123", "email": "a@b.c", "tier": "gold"},
            "card": {"last4": "4242"},
            "note": "called by C-123 today",
            "ref": "C-123",
            "amount": 10,
            "secret": {"$enc": "aes-256-gcm", "kid": "dk-1", "iv": "x", "ct": "y"},
        })
        .as_object()
        .unwrap()
        .clone();
        let stamp = json!({"$erased": "2026-01-01T00:00:00+00:00"});
        let pats: Vec<PathPattern> = p
            .sensitive
            .for_saga("X")
            .cloned()
            .chain([s.path.clone()])
            .collect();
        tombstone_map(&mut ctx, &pats, &s, &stamp);
        for k in [
            &ctx["customer"]["id"],
            &ctx["customer"]["email"],
            &ctx["card"]["last4"],
            &ctx["note"],
            &ctx["ref"],
            &ctx["secret"],
        ] {
            assert_eq!(k, &stamp);
        }
        assert_eq!(ctx["customer"]["tier"], "gold");
        assert_eq!(ctx["amount"], 10);
        assert!(paths::is_opaque(&stamp));
    }
}
