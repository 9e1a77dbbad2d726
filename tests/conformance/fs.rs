//! The folder store (plain files): a fresh folder per test; corrupt entries
//! are files written as sagaz writes them (snapshot file plus an entry in
//! sagaz's index), damaged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use sagascope::model::Snapshot;
use sagascope::store::codec::{to_json_bytes, JsonStyle};
use sagascope::store::{self, OpenOptions, SnapshotStore, StoreUrl};

use crate::cases::{CorruptFixture, Corruption};

pub async fn open(query: &str) -> (Arc<dyn SnapshotStore>, PathBuf) {
    // Leaked on purpose: the folder must outlive the store, and each test
    // process is short-lived.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
    let url = format!("file://{}{query}", dir.path().display());
    let store = store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .expect("open folder store");
    (store, dir.path().to_path_buf())
}

pub async fn store() -> Option<Arc<dyn SnapshotStore>> {
    Some(open("").await.0)
}

/// sagaz's JSON for `s`, damaged as `kind` says, and the `created_at` text
/// sagaz would put in its index.
pub fn broken_json(s: &Snapshot, kind: Corruption, style: JsonStyle) -> (Vec<u8>, String) {
    let mut v = s.to_json();
    match kind {
        Corruption::InvalidJson => {
            let full = to_json_bytes(&v, style);
            return (full[..full.len() / 2].to_vec(), s.created_at.to_isoformat());
        }
        Corruption::ContextNotObject => v["context"] = json!([1, 2, 3]),
        Corruption::StepIndexNotInteger => v["step_index"] = json!("one"),
        Corruption::CreatedAtNotATime => v["created_at"] = json!("last tuesday"),
        Corruption::OtherSagasSnapshot => v["saga_id"] = json!(crate::common::saga_id()),
        // Not a body at all: the injectors that can hold it make their own.
        Corruption::NotAValue => {}
    }
    let at = v["created_at"].as_str().unwrap_or_default().to_string();
    (to_json_bytes(&v, style), at)
}

/// sagaz's read-modify-write of its index: add, sort by the time text,
/// newest first.
pub fn add_to_index(index: Option<Value>, saga_id: &str, snapshot_id: &str, at: &str) -> Value {
    let mut entries: Vec<Value> = index
        .and_then(|v| v["snapshots"].as_array().cloned())
        .unwrap_or_default();
    entries.push(json!({"snapshot_id": snapshot_id, "created_at": at}));
    entries.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    json!({"saga_id": saga_id, "snapshots": entries})
}

pub fn inject(dir: &Path, s: &Snapshot, kind: Corruption, gzip: bool) -> bool {
    if kind == Corruption::NotAValue {
        return false;
    }
    let enc = |b: Vec<u8>| if gzip { crate::gz(&b) } else { b };
    let (body, at) = broken_json(s, kind, JsonStyle::PythonIndent2);
    let ext = if gzip { "json.gz" } else { "json" };
    let saga_dir = dir.join("snapshots").join(&s.saga_id);
    std::fs::create_dir_all(&saga_dir).unwrap();
    std::fs::write(saga_dir.join(format!("{}.{ext}", s.snapshot_id)), enc(body)).unwrap();
    let index_path = dir.join("indexes").join(format!("{}.json", s.saga_id));
    let old = std::fs::read(&index_path).ok().map(|raw| {
        let raw = if gzip { crate::gunzip(&raw) } else { raw };
        serde_json::from_slice(&raw).unwrap()
    });
    let index = add_to_index(old, &s.saga_id, &s.snapshot_id, &at);
    std::fs::write(
        &index_path,
        enc(to_json_bytes(&index, JsonStyle::PythonIndent2)),
    )
    .unwrap();
    true
}

pub async fn corrupt_fixture() -> Option<CorruptFixture> {
    let (store, dir) = open("").await;
    Some(CorruptFixture::new(store, move |s, kind| {
        let dir = dir.clone();
        async move { inject(&dir, &s, kind, false) }
    }))
}

conformance_cases!(corrupt = corrupt_fixture);
