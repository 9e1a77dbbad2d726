//! Key layout and naming (sagaz's keys for S3 and the folder, and
//! sagascope's beside them) and the encoding of what sagascope keeps.

use serde_json::{json, Value};

use crate::model::{SagaStatus, SagaSummary, Snapshot, Timestamp};

use super::super::codec::{Codec, Compression, JsonStyle};
use super::super::entry::{self, IdRule};
use super::super::*;
use super::{Obj, ObjectStore, PutMeta};

/// Which sagaz layout: the keys differ between S3 and the folder store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) enum Flavor {
    S3,
    Folder,
}

/// sagaz's key names and encodings for one backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub flavor: Flavor,
    /// Snapshot and replay objects.
    pub data: Codec,
    /// sagaz's index objects.
    pub index: Codec,
}

impl Layout {
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub fn s3(compression: Compression) -> Self {
        Layout {
            flavor: Flavor::S3,
            data: Codec::new(compression, JsonStyle::Python),
            // sagaz's S3 index is always plain JSON.
            index: Codec::new(Compression::None, JsonStyle::Python),
        }
    }

    pub fn folder(compression: Compression) -> Self {
        // sagaz's folder store gzips every file when compression is on.
        let c = Codec::new(compression, JsonStyle::PythonIndent2);
        Layout {
            flavor: Flavor::Folder,
            data: c,
            index: c,
        }
    }

    /// Snapshot file suffixes, the one this store writes first.
    pub(super) fn snapshot_exts(&self) -> [&'static str; 2] {
        match (self.flavor, self.data.compression) {
            (Flavor::S3, Compression::None) => [".json", ".json.zst"],
            (Flavor::S3, _) => [".json.zst", ".json"],
            (Flavor::Folder, Compression::None) => [".json", ".json.gz"],
            (Flavor::Folder, _) => [".json.gz", ".json"],
        }
    }

    pub(super) fn snapshot_key(&self, saga_id: &str, snapshot_id: &str, ext: &str) -> String {
        match self.flavor {
            Flavor::S3 => format!("snapshot/{snapshot_id}{ext}"),
            Flavor::Folder => format!("snapshots/{saga_id}/{snapshot_id}{ext}"),
        }
    }

    pub(super) fn snapshot_dir(&self) -> &'static str {
        match self.flavor {
            Flavor::S3 => "snapshot/",
            Flavor::Folder => "snapshots/",
        }
    }

    pub(super) fn index_dir(&self) -> &'static str {
        match self.flavor {
            Flavor::S3 => "index/saga/",
            Flavor::Folder => "indexes/",
        }
    }

    pub(super) fn index_key(&self, saga_id: &str) -> String {
        format!("{}{saga_id}.json", self.index_dir())
    }

    pub(super) fn replay_dir(&self) -> &'static str {
        match self.flavor {
            Flavor::S3 => "replay/",
            Flavor::Folder => "replays/",
        }
    }

    pub(super) fn replay_key(&self, replay_id: &str) -> String {
        format!("{}{replay_id}.json", self.replay_dir())
    }
}

pub(super) const MARKERS: &str = "sagascope/index/";
pub(super) const POINTERS: &str = "sagascope/ids/";
pub(super) const SUMMARIES: &str = "sagascope/sagas/";
/// Out of the range [`sortable`] produces, so it never means a time.
pub(super) const NO_RETENTION: &str = "99999999999999999999";
pub(super) const REPLAYS_BY_ORIGINAL: &str = "sagascope/replays/";
pub(super) const REPLAYS_BY_NEW: &str = "sagascope/replay-new/";
pub(super) const LOCKS: &str = "sagascope/locks/";

/// A timestamp as 20 digits that sort as the instants do (sign bit
/// flipped, so times before 1970 sort first too).
pub(crate) fn sortable(t: Timestamp) -> String {
    format!("{:020}", (t.as_micros() as u64) ^ (1u64 << 63))
}

pub(super) fn from_sortable(s: &str) -> Option<Timestamp> {
    let n: u64 = s.parse().ok()?;
    Timestamp::from_micros((n ^ (1u64 << 63)) as i64)
}

/// `{t}_{id}` back into its parts.
pub(super) fn parse_marker_name(name: &str) -> Option<(Timestamp, String)> {
    let (t, id) = name.split_once('_')?;
    Some((from_sortable(t)?, id.to_string()))
}

/// Ids become key segments, so they must not be able to climb out of their
/// folder or split into two segments.
pub(super) fn check_id(what: &str, id: &str, backend: &'static str) -> StoreResult<()> {
    IdRule::PathSegment.check(backend, what, id)
}

pub(super) fn id_ok(id: &str) -> bool {
    IdRule::PathSegment.admits(id)
}

/// One entry of a saga's merged index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Entry {
    pub(super) created_at: Timestamp,
    pub(super) snapshot_id: String,
    /// sagascope's marker for it (none for entries only sagaz indexed).
    pub(super) marker: Option<String>,
    pub(super) retention_until: Option<Timestamp>,
}

/// Where a snapshot lives (`sagascope/ids/{id}.json`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pointer {
    pub(super) saga_id: String,
    pub(super) created_at: Timestamp,
    pub(super) retention_until: Option<Timestamp>,
}

impl Pointer {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "saga_id": self.saga_id,
            "created_at": self.created_at.to_isoformat(),
            "retention_until": self.retention_until.map(|t| t.to_isoformat()),
        })
    }

    pub(super) fn from_json(v: &Value) -> Option<Self> {
        Some(Pointer {
            saga_id: v.get("saga_id")?.as_str()?.to_string(),
            created_at: Timestamp::parse(v.get("created_at")?.as_str()?).ok()?,
            retention_until: v
                .get("retention_until")
                .and_then(Value::as_str)
                .and_then(|s| Timestamp::parse(s).ok()),
        })
    }
}

/// The saga summary object, with what it was built from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StoredSummary {
    pub(super) summary: SagaSummary,
    pub(super) latest_snapshot_id: String,
    /// ETag of sagaz's index when the summary was computed (`None`: there
    /// was none).
    pub(super) sagaz_etag: Option<String>,
}

impl StoredSummary {
    pub(super) fn to_json(&self) -> Value {
        let s = &self.summary;
        json!({
            "saga_id": s.saga_id,
            "saga_name": s.saga_name,
            "latest_status": s.latest_status.as_str(),
            "latest_step": s.latest_step,
            "latest_step_index": s.latest_step_index,
            "latest_snapshot_id": self.latest_snapshot_id,
            "snapshot_count": s.snapshot_count,
            "first_at": s.first_at.to_isoformat(),
            "last_at": s.last_at.to_isoformat(),
            "sagaz_index_etag": self.sagaz_etag,
        })
    }

    pub(super) fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let t = |k: &str| s(k).and_then(|x| Timestamp::parse(&x).ok());
        Some(StoredSummary {
            summary: SagaSummary {
                saga_id: s("saga_id")?,
                saga_name: s("saga_name")?,
                latest_status: SagaStatus::parse(&s("latest_status")?),
                latest_step: s("latest_step")?,
                latest_step_index: v.get("latest_step_index")?.as_i64()?,
                snapshot_count: v.get("snapshot_count")?.as_u64()?,
                first_at: t("first_at")?,
                last_at: t("last_at")?,
            },
            latest_snapshot_id: s("latest_snapshot_id")?,
            sagaz_etag: s("sagaz_index_etag"),
        })
    }
}

/// sagaz's index object, as read.
#[derive(Debug, Default)]
pub(super) struct SagazIndex {
    pub(super) etag: Option<String>,
    /// In the object's order (newest first when sagaz wrote it).
    pub(super) entries: Vec<(String, String)>,
    pub(super) bad: Vec<BadEntry>,
}

pub(super) fn compact(v: &Value) -> Vec<u8> {
    crate::store::codec::to_json_bytes(v, JsonStyle::Compact)
}

pub(super) fn parse_small(bytes: &[u8]) -> Option<Value> {
    Codec::default().decode(bytes).ok()
}

/// `sagascope/index/{saga}/{created_at}_{retention_until}_{id}`: the
/// retention is in the name so `delete_expired` needs a listing only.
pub(super) fn marker_key(
    saga_id: &str,
    t: Timestamp,
    retention: Option<Timestamp>,
    snapshot_id: &str,
) -> String {
    let r = retention.map_or_else(|| NO_RETENTION.to_string(), sortable);
    format!("{MARKERS}{saga_id}/{}_{r}_{snapshot_id}", sortable(t))
}

pub(super) fn parse_snapshot_marker(name: &str) -> Option<(Timestamp, Option<Timestamp>, String)> {
    let (t, rest) = name.split_once('_')?;
    let (r, id) = rest.split_once('_')?;
    let retention = if r == NO_RETENTION {
        None
    } else {
        Some(from_sortable(r)?)
    };
    Some((from_sortable(t)?, retention, id.to_string()))
}

/// The saga of an object that does not decode: sagaz's `saga_id`
/// metadata, else the `"saga_id": "..."` text near the start of the body.
pub(super) fn salvage_saga_id(codec: &Codec, obj: &Obj) -> Option<String> {
    if let Some((_, v)) = obj.meta.iter().find(|(k, _)| k == "saga_id") {
        return Some(v.clone()).filter(|v| id_ok(v));
    }
    crate::store::codec::salvage_string_field(codec, &obj.bytes, "saga_id").filter(|v| id_ok(v))
}

/// S3 user metadata must be ASCII (sagaz fails on anything else): other
/// characters are percent-encoded as UTF-8. The object body has the truth.
pub(crate) fn ascii_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_control() && c != '%' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A lock name as one safe key segment.
pub(super) fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.starts_with('.') {
        out.replace_range(0..1, "%2E");
    }
    out
}

impl ObjectStore {
    pub(super) fn decode_snapshot(
        &self,
        key: &str,
        saga_id: Option<&str>,
        bytes: &[u8],
    ) -> Result<Snapshot, BadEntry> {
        entry::decode_snapshot(&self.layout.data, key, saga_id, bytes)
    }

    pub(super) fn snapshot_meta(&self, s: &Snapshot) -> PutMeta {
        PutMeta {
            metadata: vec![
                ("saga_id", ascii_meta(&s.saga_id)),
                ("saga_name", ascii_meta(&s.saga_name)),
                ("step_name", ascii_meta(&s.step_name)),
                ("created_at", s.created_at.to_isoformat()),
            ],
            expires: s.retention_until,
            content_type: None,
        }
    }

    pub(super) fn lock_key(&self, name: &str) -> String {
        format!("{LOCKS}{}.json", encode_segment(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_times_sort_like_instants() {
        let a = Timestamp::parse("1969-12-31T23:59:59+00:00").unwrap();
        let b = Timestamp::parse("2026-03-01T12:00:00+00:00").unwrap();
        let c = b.plus_micros(1);
        assert!(sortable(a) < sortable(b) && sortable(b) < sortable(c));
        assert_eq!(sortable(b).len(), 20);
        assert_eq!(from_sortable(&sortable(a)), Some(a));
        assert_eq!(
            parse_marker_name(&format!("{}_abc_d", sortable(c))),
            Some((c, "abc_d".into()))
        );
    }

    #[test]
    fn snapshot_markers_carry_time_retention_and_id() {
        let t = Timestamp::parse("2026-03-01T12:00:00+00:00").unwrap();
        let r = t.plus_micros(5);
        let key = marker_key("saga", t, Some(r), "a_b");
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(
            parse_snapshot_marker(name),
            Some((t, Some(r), "a_b".into()))
        );
        let key = marker_key("saga", t, None, "x");
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(parse_snapshot_marker(name), Some((t, None, "x".into())));
    }

    #[test]
    fn metadata_is_ascii_and_reversible_by_eye() {
        assert_eq!(ascii_meta("transform_données"), "transform_donn%C3%A9es");
        assert_eq!(ascii_meta("100%"), "100%25");
        assert!(ascii_meta("🚀 go").is_ascii());
    }

    #[test]
    fn lock_names_become_one_safe_segment() {
        assert_eq!(encode_segment("replay:saga/1"), "replay%3Asaga%2F1");
    }
}
