//! Portable bundles of sagas (what `sagascope export` writes and `import`
//! reads), and the checks that make copying sagas between stores
//! trustworthy: a bundle cut short is detected before anything is written,
//! an import never silently replaces different data, and a migration is
//! verified by a pass of its own (see [`verify`]).
//!
//! Format, one JSON object per line:
//!
//! ```text
//! {"sagascope_bundle":2}                 or {"sagascope_bundle":2,"anonymized":true}
//! {"snapshot":{…sagaz dict…}}          per saga, oldest first
//! {"replay":{…}}                       per saga, oldest first
//! {"end":{"sagas":N,"snapshots":M,"replays":K,"sha256":"<hex>"}}
//! ```
//!
//! The trailer's digest covers every byte before it (header included), so a
//! bundle cut anywhere — even exactly between two lines — is told apart from
//! a complete one. Version 1 bundles have no trailer: they can only be read
//! with `allow_unverified`, since their completeness cannot be checked.
//! `"anonymized": true` in the header says every sensitive value was
//! replaced by a pseudonym (`export --anonymize`, see
//! [`crate::compliance::anonymize`]); readers that predate it ignore it.
//!
//! No clap or terminal code here: [`validate`] takes any reader, so it can
//! be fuzzed.

pub mod import;
pub mod json_export;
pub mod verify;

use std::collections::HashSet;
use std::io::{BufRead, Write};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::model::{ReplayLog, Snapshot};
use crate::store::{BadEntry, SnapshotQuery, SnapshotStore, StoreError};

/// The version this sagascope writes.
pub const BUNDLE_VERSION: u64 = 2;
/// Bundles written before trailers existed.
pub const LEGACY_BUNDLE_VERSION: u64 = 1;

/// Why a bundle cannot be read. Nothing has been written when one of these
/// comes back from [`validate`].
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle could not be read (file or stream error).
    #[error("reading the bundle: {0}")]
    Io(#[from] std::io::Error),
    /// The first line is not a bundle header, or the input is empty; holds
    /// the explanation.
    #[error("not a sagascope bundle: {0}")]
    NotABundle(String),
    /// The header names a version above [`BUNDLE_VERSION`]; holds that version.
    #[error("bundle version {0} is newer than this sagascope reads ({BUNDLE_VERSION}); upgrade sagascope")]
    NewerVersion(u64),
    /// A line after the header is not a valid record or trailer.
    #[error("line {line}: {reason}; nothing was imported")]
    BadLine {
        /// The line's number, from 1 (the header).
        line: usize,
        /// What is wrong with it: invalid JSON, an unknown key, a record
        /// that does not read (naming the field), ...
        reason: String,
    },
    /// A version 2 bundle ends without its trailer: cut short.
    #[error("the bundle is cut short: no end line after {lines} line(s) (an export that was killed or a partial copy); nothing was imported")]
    Truncated {
        /// Lines read, header included.
        lines: usize,
    },
    /// The trailer's counts or digest differ from what the bundle holds (it
    /// was edited or damaged); holds each difference, `; `-separated.
    #[error("the bundle does not match its end line: {0}; nothing was imported")]
    Mismatch(String),
    /// A version 1 bundle (no trailer) read without `allow_unverified`.
    #[error("this is a version 1 bundle (no end line): whether it is complete cannot be checked; pass --allow-unverified to import it anyway")]
    Unverified,
}

/// The trailer: what the bundle holds and a digest of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trailer {
    /// Distinct `saga_id`s among the snapshots.
    pub sagas: u64,
    /// Snapshot lines in the bundle.
    pub snapshots: u64,
    /// Replay-log lines in the bundle.
    pub replays: u64,
    /// SHA-256 (lowercase hex) of every byte before the end line.
    pub sha256: String,
}

/// What a valid bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BundleCheck {
    /// The header's version: [`BUNDLE_VERSION`] or [`LEGACY_BUNDLE_VERSION`].
    pub version: u64,
    /// Distinct `saga_id`s among the snapshots.
    pub sagas: u64,
    /// Snapshot lines read.
    pub snapshots: u64,
    /// Replay-log lines read.
    pub replays: u64,
    /// The end line was present and its counts and digest matched (false
    /// only for version 1 bundles read with `allow_unverified`).
    pub verified: bool,
    /// The header says the bundle is anonymised (`export --anonymize`):
    /// its sensitive values are pseudonyms.
    pub anonymized: bool,
}

/// One record of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A `{"snapshot": …}` line: one snapshot in sagaz's dict form.
    Snapshot(Box<Snapshot>),
    /// A `{"replay": …}` line: one replay-log entry.
    Replay(Box<ReplayLog>),
}

/// Writes a bundle: the header now, records as they come, the trailer on
/// [`BundleWriter::finish`]. The same records always give the same bytes.
pub struct BundleWriter<W: Write> {
    out: W,
    hasher: Sha256,
    sagas: HashSet<String>,
    snapshots: u64,
    replays: u64,
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle on `out` by writing the header line. Fails only when
    /// `out` does.
    pub fn new(out: W) -> std::io::Result<Self> {
        Self::start(out, json!({ "sagascope_bundle": BUNDLE_VERSION }))
    }

    /// Starts a bundle whose header says it is anonymised: write only
    /// records that went through an
    /// [`Anonymizer`](crate::compliance::anonymize::Anonymizer).
    pub fn anonymized(out: W) -> std::io::Result<Self> {
        Self::start(
            out,
            json!({ "sagascope_bundle": BUNDLE_VERSION, "anonymized": true }),
        )
    }

    fn start(out: W, header: Value) -> std::io::Result<Self> {
        let mut w = BundleWriter {
            out,
            hasher: Sha256::new(),
            sagas: HashSet::new(),
            snapshots: 0,
            replays: 0,
        };
        w.line(&header)?;
        Ok(w)
    }

    fn line(&mut self, v: &Value) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(v)?;
        bytes.push(b'\n');
        self.hasher.update(&bytes);
        self.out.write_all(&bytes)
    }

    /// Appends a snapshot line. Write each saga's snapshots oldest first, as
    /// `export` does.
    pub fn write_snapshot(&mut self, s: &Snapshot) -> std::io::Result<()> {
        if !self.sagas.contains(&s.saga_id) {
            self.sagas.insert(s.saga_id.clone());
        }
        self.snapshots += 1;
        self.line(&json!({ "snapshot": s.to_json() }))
    }

    /// Appends a replay-log line.
    pub fn write_replay(&mut self, r: &ReplayLog) -> std::io::Result<()> {
        self.replays += 1;
        self.line(&json!({ "replay": r.to_json() }))
    }

    /// Writes the trailer and flushes; returns the writer and the trailer.
    pub fn finish(mut self) -> std::io::Result<(W, Trailer)> {
        let trailer = Trailer {
            sagas: self.sagas.len() as u64,
            snapshots: self.snapshots,
            replays: self.replays,
            sha256: hex(&self.hasher.finalize_reset()),
        };
        let mut bytes = serde_json::to_vec(&json!({ "end": trailer }))?;
        bytes.push(b'\n');
        self.out.write_all(&bytes)?;
        self.out.flush()?;
        Ok((self.out, trailer))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One parsed line.
enum Line {
    /// The version, and whether the bundle says it is anonymised.
    Header(u64, bool),
    Record(Record),
    End(Trailer),
}

fn bad(line: usize, reason: impl Into<String>) -> BundleError {
    BundleError::BadLine {
        line,
        reason: reason.into(),
    }
}

/// Parses line `n` (1-based). The header is only looked for on line 1.
fn parse_line(n: usize, bytes: &[u8]) -> Result<Line, BundleError> {
    let text = std::str::from_utf8(bytes);
    let v: Result<Value, String> = match text {
        Ok(t) => serde_json::from_str(t.trim_end_matches(['\n', '\r'])).map_err(|e| e.to_string()),
        Err(_) => Err("not UTF-8 text".into()),
    };
    if n == 1 {
        let v = v.ok();
        let anonymized = v
            .as_ref()
            .and_then(|v| v.get("anonymized"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let header = v.and_then(|v| v.get("sagascope_bundle").and_then(Value::as_u64));
        return match header {
            Some(v) if v == BUNDLE_VERSION || v == LEGACY_BUNDLE_VERSION => {
                Ok(Line::Header(v, anonymized))
            }
            Some(v) if v > BUNDLE_VERSION => Err(BundleError::NewerVersion(v)),
            _ => Err(BundleError::NotABundle(
                "the first line must be {\"sagascope_bundle\": 2} (files written by `sagascope export` are)".into(),
            )),
        };
    }
    let v = v.map_err(|e| bad(n, format!("invalid JSON: {e}")))?;
    let Value::Object(mut m) = v else {
        return Err(bad(n, "not a JSON object"));
    };
    if m.len() != 1 {
        return Err(bad(n, "expected one key: snapshot, replay or end"));
    }
    if let Some(s) = m.remove("snapshot") {
        return Snapshot::from_json(s)
            .map(|s| Line::Record(Record::Snapshot(Box::new(s))))
            .map_err(|e| bad(n, format!("snapshot: {e}")));
    }
    if let Some(r) = m.remove("replay") {
        return ReplayLog::from_json(r)
            .map(|r| Line::Record(Record::Replay(Box::new(r))))
            .map_err(|e| bad(n, format!("replay: {e}")));
    }
    if let Some(e) = m.remove("end") {
        let count = |k: &str| e.get(k).and_then(Value::as_u64);
        let sha = e.get("sha256").and_then(Value::as_str);
        return match (count("sagas"), count("snapshots"), count("replays"), sha) {
            (Some(sagas), Some(snapshots), Some(replays), Some(sha)) => Ok(Line::End(Trailer {
                sagas,
                snapshots,
                replays,
                sha256: sha.to_string(),
            })),
            _ => Err(bad(
                n,
                "end line without sagas, snapshots, replays and sha256",
            )),
        };
    }
    Err(bad(n, "neither a snapshot, a replay nor the end line"))
}

/// Checks a whole bundle without writing anything: the header, that every
/// line parses, and (version 2) that the end line is there, last, and its
/// counts and digest match what precedes it. A version 1 bundle is refused
/// with [`BundleError::Unverified`] unless `allow_unverified`.
pub fn validate<R: BufRead>(mut r: R, allow_unverified: bool) -> Result<BundleCheck, BundleError> {
    let mut hasher = Sha256::new();
    let mut buf = Vec::new();
    let mut n = 0usize;
    let mut version = None;
    let mut anonymized = false;
    let mut trailer: Option<(usize, Trailer)> = None;
    let mut sagas: HashSet<String> = HashSet::new();
    let (mut snapshots, mut replays) = (0u64, 0u64);
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        n += 1;
        if let Some((end_line, _)) = &trailer {
            return Err(bad(n, format!("data after the end line (line {end_line})")));
        }
        if version == Some(LEGACY_BUNDLE_VERSION) && buf.iter().all(u8::is_ascii_whitespace) {
            // Version 1 readers skipped blank lines.
            continue;
        }
        match parse_line(n, &buf)? {
            Line::Header(v, anon) => {
                version = Some(v);
                anonymized = anon;
            }
            Line::End(t) => {
                if version == Some(LEGACY_BUNDLE_VERSION) {
                    return Err(bad(n, "an end line in a version 1 bundle"));
                }
                trailer = Some((n, t));
                continue;
            }
            Line::Record(Record::Snapshot(s)) => {
                snapshots += 1;
                if !sagas.contains(&s.saga_id) {
                    sagas.insert(s.saga_id);
                }
            }
            Line::Record(Record::Replay(_)) => replays += 1,
        }
        hasher.update(&buf);
    }
    let Some(version) = version else {
        return Err(BundleError::NotABundle(
            "the file is empty (no header line)".into(),
        ));
    };
    let found = BundleCheck {
        version,
        sagas: sagas.len() as u64,
        snapshots,
        replays,
        verified: false,
        anonymized,
    };
    if version == LEGACY_BUNDLE_VERSION {
        return if allow_unverified {
            Ok(found)
        } else {
            Err(BundleError::Unverified)
        };
    }
    let Some((_, t)) = trailer else {
        return Err(BundleError::Truncated { lines: n });
    };
    let mut wrong = Vec::new();
    for (what, said, got) in [
        ("sagas", t.sagas, found.sagas),
        ("snapshots", t.snapshots, found.snapshots),
        ("replays", t.replays, found.replays),
    ] {
        if said != got {
            wrong.push(format!("it says {said} {what}, holds {got}"));
        }
    }
    if hex(&hasher.finalize()) != t.sha256 {
        wrong.push("the sha256 digest differs (the content was changed)".into());
    }
    if !wrong.is_empty() {
        return Err(BundleError::Mismatch(wrong.join("; ")));
    }
    Ok(BundleCheck {
        verified: true,
        ..found
    })
}

/// The records of a bundle, in order (header and end line left out). Meant
/// for a bundle [`validate`] accepted; errors are reported all the same.
pub struct Records<R> {
    r: R,
    n: usize,
    buf: Vec<u8>,
}

/// Reads a bundle's records (see [`Records`]).
pub fn records<R: BufRead>(r: R) -> Records<R> {
    Records {
        r,
        n: 0,
        buf: Vec::new(),
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Result<Record, BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.r.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
            self.n += 1;
            if self.n > 1 && self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_line(self.n, &self.buf) {
                Ok(Line::Record(rec)) => return Some(Ok(rec)),
                Ok(Line::Header(..)) => {}
                Ok(Line::End(_)) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Every snapshot of a saga, oldest first, `page` readable snapshots per
/// round trip (the store's paging contract: each page says where the next
/// starts). The page size is a parameter so `verify` can read with another
/// size than the copy did.
pub async fn all_snapshots(
    store: &dyn SnapshotStore,
    saga_id: &str,
    page: usize,
) -> Result<(Vec<Snapshot>, Vec<BadEntry>), StoreError> {
    use futures::TryStreamExt;
    let mut items = Vec::new();
    let mut bad = Vec::new();
    let mut pages = std::pin::pin!(crate::store::snapshot_pages(
        store,
        saga_id,
        SnapshotQuery::all(),
        page
    ));
    while let Some(p) = pages.try_next().await? {
        items.extend(p.items);
        bad.extend(p.bad);
    }
    Ok((items, bad))
}

/// A saga's replay log, oldest first (a stable order for bundles).
pub async fn replays_oldest_first(
    store: &dyn SnapshotStore,
    saga_id: &str,
) -> Result<(Vec<ReplayLog>, Vec<BadEntry>), StoreError> {
    let listing = store.list_replays(saga_id, None).await?;
    let mut items = listing.items;
    items.sort_by(|a, b| (a.created_at, &a.replay_id).cmp(&(b.created_at, &b.replay_id)));
    Ok((items, listing.bad))
}

/// A JSON value with every object's keys sorted, so two stores' copies of
/// the same data compare equal whatever key order they keep (JSONB sorts by
/// length, the others keep insertion order).
pub(crate) fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// What of a snapshot both sides of a comparison can keep: PostgreSQL
/// drops `external_refs`, some backends drop unknown fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept {
    pub external_refs: bool,
    pub extra: bool,
}

impl Kept {
    pub fn by(stores: &[&dyn SnapshotStore]) -> Kept {
        Kept {
            external_refs: stores.iter().all(|s| s.capabilities().stores_external_refs),
            extra: stores
                .iter()
                .all(|s| s.capabilities().preserves_extra_fields),
        }
    }
}

/// A snapshot as compared across stores: canonical JSON of what both keep.
pub(crate) fn comparable_snapshot(s: &Snapshot, kept: Kept) -> Value {
    let mut v = s.to_json();
    if let Value::Object(m) = &mut v {
        if !kept.external_refs {
            m.shift_remove("external_refs");
        }
        if !kept.extra {
            let known = [
                "snapshot_id",
                "saga_id",
                "saga_name",
                "step_name",
                "step_index",
                "status",
                "context",
                "completed_steps",
                "external_refs",
                "created_at",
                "retention_until",
            ];
            m.retain(|k, _| known.contains(&k.as_str()));
        }
    }
    canonical(&v)
}

/// A replay-log entry as compared across stores.
pub(crate) fn comparable_replay(r: &ReplayLog) -> Value {
    canonical(&r.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SagaStatus;

    fn sample(n: usize) -> Vec<u8> {
        let mut w = BundleWriter::new(Vec::new()).unwrap();
        for i in 0..n {
            let s = Snapshot::new(
                format!("saga-{}", i % 2),
                "OrderSaga",
                "step",
                i as i64,
                SagaStatus::Executing,
                serde_json::Map::new(),
                vec![],
            );
            w.write_snapshot(&s).unwrap();
        }
        w.finish().unwrap().0
    }

    #[test]
    fn a_complete_bundle_validates_with_its_counts() {
        let b = sample(5);
        let c = validate(&b[..], false).unwrap();
        assert_eq!((c.sagas, c.snapshots, c.replays), (2, 5, 0));
        assert!(c.verified);
        assert_eq!(records(&b[..]).count(), 5);
    }

    #[test]
    fn an_anonymised_bundle_says_so_and_a_plain_one_does_not() {
        let mut w = BundleWriter::anonymized(Vec::new()).unwrap();
        w.write_snapshot(&Snapshot::new(
            "saga-1",
            "OrderSaga",
            "step",
            0,
            SagaStatus::Executing,
            serde_json::Map::new(),
            vec![],
        ))
        .unwrap();
        let b = w.finish().unwrap().0;
        assert!(b.starts_with(b"{\"sagascope_bundle\":2,\"anonymized\":true}\n"));
        let c = validate(&b[..], false).unwrap();
        assert!(c.anonymized && c.verified);
        assert_eq!(records(&b[..]).count(), 1);
        assert!(!validate(&sample(1)[..], false).unwrap().anonymized);
    }

    #[test]
    fn a_bundle_cut_at_any_byte_is_refused() {
        let b = sample(3);
        for cut in 0..b.len() - 1 {
            let r = validate(&b[..cut], true);
            assert!(r.is_err(), "cut at {cut} of {} accepted", b.len());
        }
    }

    #[test]
    fn other_files_are_not_bundles() {
        for text in ["root:x:0:0:root:/root:/bin/bash\n", "", "{}\n", "[1]\n"] {
            match validate(text.as_bytes(), true) {
                Err(BundleError::NotABundle(_)) => {}
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_changed_line_breaks_the_digest() {
        let b = String::from_utf8(sample(2)).unwrap();
        let changed = b.replacen("\"step_index\":1", "\"step_index\":7", 1);
        assert_ne!(b, changed);
        assert!(matches!(
            validate(changed.as_bytes(), false),
            Err(BundleError::Mismatch(_))
        ));
    }
}
