//! The folder store against real folders: the exact files sagaz would
//! write, reading a tree sagaz laid out, corrupt files, and eight separate
//! processes writing one saga.

mod common;
#[path = "common/replays.rs"]
mod replays;
#[path = "common/sagaz_text.rs"]
mod sagaz_text;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use sagascope::model::{SagaStatus, Timestamp};
use sagascope::store::codec::{to_json_bytes, JsonStyle};
use sagascope::store::{
    self, OpenOptions, SagaFilter, SagaPageRequest, SnapshotQuery, SnapshotStore, StoreUrl,
};

use common::*;
use sagaz_text::*;

async fn open(dir: &Path, query: &str) -> Arc<dyn SnapshotStore> {
    let url = format!("file://{}{query}", dir.display());
    store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap()
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
    let mut out = vec![];
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Files whose names start with '.' (temporary files of a write).
fn hidden_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(hidden_files(&p));
        } else if p.file_name().unwrap().to_str().unwrap().starts_with('.')
            && !p.ends_with("sagascope/.lock")
        {
            out.push(p);
        }
    }
    out
}

/// Every kind of write (batch and single saves, a replacement, replays and
/// their update, deletes, expiry, locks) leaves no temporary file behind,
/// plain or gzip.
#[tokio::test]
async fn writes_leave_no_temporary_file_behind() {
    for q in ["", "?compression=gzip"] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), q).await;
        let (a, b) = (saga_id(), saga_id());
        let snaps: Vec<_> = (0..4).map(|i| snap(&a, i, i * 1_000)).collect();
        store.save_snapshots(&snaps).await.unwrap();
        store.save_snapshot(&snap(&b, 0, 10_000)).await.unwrap();
        let mut moved = snaps[0].clone();
        moved.created_at = t0().plus_micros(5_000);
        store.save_snapshot(&moved).await.unwrap();
        let mut r = replays::replay(&a, 1);
        store.save_replay(&r).await.unwrap();
        r.error_message = Some("card declined".into());
        store
            .save_replays(&[r, replays::replay(&a, 2)])
            .await
            .unwrap();
        assert!(store.delete_snapshot(&snaps[1].snapshot_id).await.unwrap());
        let mut old = snap(&b, 1, 20_000);
        old.retention_until = Some(t0().plus_micros(86_400_000_000));
        store.save_snapshot(&old).await.unwrap();
        let two_days = t0().plus_micros(2 * 86_400_000_000);
        assert_eq!(store.delete_expired(two_days).await.unwrap(), 1);
        assert_eq!(store.delete_saga(&a).await.unwrap(), 3);
        let lock = format!("replay:{b}");
        let ttl = std::time::Duration::from_secs(60);
        store.try_lock(&lock, "alice", ttl).await.unwrap();
        store.unlock(&lock, "alice").await.unwrap();
        assert!(
            hidden_files(dir.path()).is_empty(),
            "{q:?}: no temporary file is left behind: {:?}",
            hidden_files(dir.path())
        );
    }
}

#[tokio::test]
async fn writes_sagaz_files_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "").await;
    let saga = saga_id();
    let mut a = snap(&saga, 0, 0);
    let mut b = snap(&saga, 1, 1_500);
    b.step_name = "transform_données".into();
    a.context.insert("emoji".into(), "🚀".into());
    store.save_snapshot(&a).await.unwrap();
    store.save_snapshot(&b).await.unwrap();

    let text = String::from_utf8(read(
        dir.path()
            .join(format!("snapshots/{saga}/{}.json", b.snapshot_id)),
    ))
    .unwrap();
    assert_eq!(
        text.as_bytes(),
        to_json_bytes(&b.to_json(), JsonStyle::PythonIndent2)
    );
    assert!(text.starts_with("{\n  \"snapshot_id\": \""), "{text}");
    assert!(
        text.contains("\"step_name\": \"transform_donn\\u00e9es\""),
        "ASCII-escaped: {text}"
    );
    assert!(!text.ends_with('\n'), "no trailing newline, as json.dumps");
    let a_text = String::from_utf8(read(
        dir.path()
            .join(format!("snapshots/{saga}/{}.json", a.snapshot_id)),
    ))
    .unwrap();
    assert!(
        a_text.contains("\\ud83d\\ude80"),
        "astral characters as surrogate pairs"
    );

    let index = String::from_utf8(read(dir.path().join(format!("indexes/{saga}.json")))).unwrap();
    let want = index_json(
        &saga,
        &[
            (&b.snapshot_id, &b.created_at.to_isoformat()),
            (&a.snapshot_id, &a.created_at.to_isoformat()),
        ],
        true,
    );
    assert_eq!(index, want, "sagaz's index: indent=2, newest first");

    let r = replays::replay(&saga, 5);
    store.save_replay(&r).await.unwrap();
    let replay = read(dir.path().join(format!("replays/{}.json", r.replay_id)));
    assert_eq!(
        replay,
        to_json_bytes(&r.to_json(), JsonStyle::PythonIndent2)
    );
}

#[tokio::test]
async fn gzip_variant_gzips_every_sagaz_file_and_keeps_json_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "?compression=gzip").await;
    let saga = saga_id();
    let s = snap(&saga, 0, 0);
    store.save_snapshot(&s).await.unwrap();
    let r = replays::replay(&saga, 1);
    store.save_replay(&r).await.unwrap();

    let snap_file = read(
        dir.path()
            .join(format!("snapshots/{saga}/{}.json.gz", s.snapshot_id)),
    );
    assert_eq!(
        gunzip(&snap_file),
        to_json_bytes(&s.to_json(), JsonStyle::PythonIndent2)
    );
    assert!(!dir
        .path()
        .join(format!("snapshots/{saga}/{}.json", s.snapshot_id))
        .exists());
    let index = gunzip(&read(dir.path().join(format!("indexes/{saga}.json"))));
    let v: Value = serde_json::from_slice(&index).unwrap();
    assert_eq!(v["snapshots"][0]["snapshot_id"], s.snapshot_id.as_str());
    let replay = gunzip(&read(
        dir.path().join(format!("replays/{}.json", r.replay_id)),
    ));
    assert_eq!(
        replay,
        to_json_bytes(&r.to_json(), JsonStyle::PythonIndent2)
    );

    // A store opened without compression still reads the gzip tree.
    let plain = open(dir.path(), "").await;
    assert_eq!(
        plain.get_snapshot(&s.snapshot_id).await.unwrap().unwrap(),
        s
    );
    assert_eq!(plain.get_replay(&r.replay_id).await.unwrap().unwrap(), r);
}

/// Lays out a folder as sagaz 1.5.0 writes it, with no sagascope files.
fn sagaz_tree(dir: &Path, compressed: bool) -> (String, Vec<SagazSnap>, String) {
    let saga = saga_id();
    let snaps = vec![
        SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "reserve_inventory",
            step_index: 0,
            status: "executing",
            created_at: "2026-11-22T01:37:29+00:00",
        },
        SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "transform_donn\\u00e9es",
            step_index: 1,
            status: "executing",
            created_at: "2026-11-22T01:37:29.601111+00:00",
        },
        SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "__completed__",
            step_index: 2,
            status: "completed",
            created_at: "2026-11-22T01:37:30.000002+00:00",
        },
    ];
    let enc = |text: String| {
        if compressed {
            gzip(text.as_bytes())
        } else {
            text.into_bytes()
        }
    };
    std::fs::create_dir_all(dir.join(format!("snapshots/{saga}"))).unwrap();
    std::fs::create_dir_all(dir.join("indexes")).unwrap();
    std::fs::create_dir_all(dir.join("replays")).unwrap();
    let ext = if compressed { ".json.gz" } else { ".json" };
    for s in &snaps {
        std::fs::write(
            dir.join(format!("snapshots/{saga}/{}{ext}", s.snapshot_id)),
            enc(snapshot_json(s, true)),
        )
        .unwrap();
    }
    let newest_first: Vec<(&str, &str)> = snaps
        .iter()
        .rev()
        .map(|s| (s.snapshot_id.as_str(), s.created_at))
        .collect();
    std::fs::write(
        dir.join(format!("indexes/{saga}.json")),
        enc(index_json(&saga, &newest_first, true)),
    )
    .unwrap();
    let replay_id = uuid::Uuid::new_v4().to_string();
    std::fs::write(
        dir.join(format!("replays/{replay_id}.json")),
        enc(replay_json(&replay_id, &saga, &saga_id(), true)),
    )
    .unwrap();
    (saga, snaps, replay_id)
}

#[tokio::test]
async fn reads_a_tree_sagaz_wrote_plain_and_gzip() {
    for compressed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (saga, snaps, replay_id) = sagaz_tree(dir.path(), compressed);
        // Whatever this store would write, it reads both kinds.
        let store = open(dir.path(), "").await;
        let listed = store
            .list_snapshots(&saga, &SnapshotQuery::all())
            .await
            .unwrap();
        assert!(listed.bad.is_empty(), "{:?}", listed.bad);
        let ids: Vec<_> = listed.items.iter().map(|s| s.snapshot_id.clone()).collect();
        let want: Vec<_> = snaps.iter().map(|s| s.snapshot_id.clone()).collect();
        assert_eq!(ids, want);
        assert_eq!(listed.items[1].step_name, "transform_données");
        assert_eq!(listed.items[1].context["note"], "café");
        // No pointer exists for sagaz's snapshots: found by walking.
        let got = store
            .get_snapshot(&snaps[2].snapshot_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.status, SagaStatus::Completed);
        assert_eq!(
            store
                .latest_snapshot(&saga, Some("transform_données"))
                .await
                .unwrap()
                .unwrap()
                .step_index,
            1
        );
        let at = Timestamp::parse("2026-11-22T01:37:29.9+00:00").unwrap();
        assert_eq!(
            store
                .snapshot_at(&saga, at)
                .await
                .unwrap()
                .unwrap()
                .snapshot_id,
            snaps[1].snapshot_id
        );
        let page = store
            .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.sagas.len(), 1);
        assert_eq!(page.sagas[0].snapshot_count, 3);
        assert_eq!(page.sagas[0].latest_status, SagaStatus::Completed);
        let replays = store.list_replays(&saga, None).await.unwrap();
        assert_eq!(replays.items.len(), 1);
        assert_eq!(replays.items[0].replay_id, replay_id);
        assert!(replays.items[0].context_override.is_none());

        // sagaz writes one more snapshot later (in place, no sagascope
        // files): the summary notices its index changed.
        let extra = SagazSnap {
            snapshot_id: uuid::Uuid::new_v4().to_string(),
            saga_id: saga.clone(),
            step_name_escaped: "refund",
            step_index: 3,
            status: "executing",
            created_at: "2026-11-22T02:00:00.000001+00:00",
        };
        let ext = if compressed { ".json.gz" } else { ".json" };
        let enc = |text: String| {
            if compressed {
                gzip(text.as_bytes())
            } else {
                text.into_bytes()
            }
        };
        std::fs::write(
            dir.path()
                .join(format!("snapshots/{saga}/{}{ext}", extra.snapshot_id)),
            enc(snapshot_json(&extra, true)),
        )
        .unwrap();
        let mut all: Vec<&SagazSnap> = snaps.iter().collect();
        all.push(&extra);
        let newest_first: Vec<(&str, &str)> = all
            .iter()
            .rev()
            .map(|s| (s.snapshot_id.as_str(), s.created_at))
            .collect();
        std::fs::write(
            dir.path().join(format!("indexes/{saga}.json")),
            enc(index_json(&saga, &newest_first, true)),
        )
        .unwrap();
        let summary = store.saga_summary(&saga).await.unwrap().unwrap();
        assert_eq!(summary.snapshot_count, 4);
        assert_eq!(summary.latest_step, "refund");
    }
}

#[tokio::test]
async fn a_corrupt_file_is_named_and_the_rest_lists() {
    for q in ["", "?compression=gzip"] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), q).await;
        let saga = saga_id();
        let snaps: Vec<_> = (0..3).map(|i| snap(&saga, i, i * 10)).collect();
        store.save_snapshots(&snaps).await.unwrap();
        let ext = if q.is_empty() { ".json" } else { ".json.gz" };
        let victim = dir
            .path()
            .join(format!("snapshots/{saga}/{}{ext}", snaps[1].snapshot_id));
        std::fs::write(&victim, b"{\"snapshot_id\": \"trunc").unwrap();
        let listed = store
            .list_snapshots(&saga, &SnapshotQuery::all())
            .await
            .unwrap();
        assert_eq!(listed.items, vec![snaps[0].clone(), snaps[2].clone()]);
        assert_eq!(listed.bad.len(), 1);
        assert!(
            listed.bad[0].key.contains(&snaps[1].snapshot_id),
            "{:?}",
            listed.bad
        );
        assert_eq!(listed.bad[0].saga_id.as_deref(), Some(saga.as_str()));
        let err = store.get_snapshot(&snaps[1].snapshot_id).await.unwrap_err();
        assert!(err.to_string().contains(&snaps[1].snapshot_id), "{err}");
        // The saga still lists, from its summary.
        assert_eq!(store.count_sagas(&SagaFilter::default()).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn more_than_a_thousand_snapshots_are_all_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), "").await;
    let saga = saga_id();
    let snaps: Vec<_> = (0..1005).map(|i| snap(&saga, i, i)).collect();
    store.save_snapshots(&snaps).await.unwrap();
    assert_eq!(store.count_snapshots(&saga).await.unwrap(), 1005);
    let oldest = store
        .list_snapshots(
            &saga,
            &SnapshotQuery {
                limit: Some(2),
                ..SnapshotQuery::all()
            },
        )
        .await
        .unwrap();
    assert_eq!(oldest.items, snaps[..2]);
    assert_eq!(common::summary_count(&*store, &saga).await, 1005);
    // sagaz's own index keeps its cap, newest first, so sagaz still reads it.
    let index: Value =
        serde_json::from_slice(&read(dir.path().join(format!("indexes/{saga}.json")))).unwrap();
    let entries = index["snapshots"].as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    assert_eq!(entries[0]["snapshot_id"], snaps[1004].snapshot_id.as_str());
}

const CHILD_DIR: &str = "SAGASCOPE_TEST_FS_WRITER_DIR";
const WRITERS: i64 = 8;
const PER_WRITER: i64 = 10;

/// Run as the parent (normally) it spawns eight copies of this test binary,
/// each running this same test as a writer (told by environment variables),
/// then checks that nothing any of them wrote is missing.
#[tokio::test]
async fn eight_processes_write_one_saga() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        let saga = std::env::var("SAGASCOPE_TEST_FS_WRITER_SAGA").unwrap();
        let n: i64 = std::env::var("SAGASCOPE_TEST_FS_WRITER_N")
            .unwrap()
            .parse()
            .unwrap();
        let q = std::env::var("SAGASCOPE_TEST_FS_WRITER_QUERY").unwrap();
        let store = open(Path::new(&dir), &q).await;
        for i in 0..PER_WRITER {
            let mut s = snap(&saga, i, n * 1_000 + i);
            s.context.insert("writer".into(), n.into());
            store.save_snapshot(&s).await.unwrap();
        }
        return;
    }
    for q in ["", "?compression=gzip"] {
        let dir = tempfile::tempdir().unwrap();
        let saga = saga_id();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..WRITERS)
            .map(|n| {
                std::process::Command::new(&exe)
                    .args([
                        "eight_processes_write_one_saga",
                        "--exact",
                        "--test-threads=1",
                        "--nocapture",
                    ])
                    .env(CHILD_DIR, dir.path())
                    .env("SAGASCOPE_TEST_FS_WRITER_SAGA", &saga)
                    .env("SAGASCOPE_TEST_FS_WRITER_N", n.to_string())
                    .env("SAGASCOPE_TEST_FS_WRITER_QUERY", q)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "writer failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let store = open(dir.path(), q).await;
        let total = (WRITERS * PER_WRITER) as usize;
        let listed = store
            .list_snapshots(&saga, &SnapshotQuery::all())
            .await
            .unwrap();
        assert_eq!(
            listed.items.len(),
            total,
            "sagascope's index has every snapshot"
        );
        assert!(listed.bad.is_empty());
        assert_eq!(
            store
                .saga_summary(&saga)
                .await
                .unwrap()
                .unwrap()
                .snapshot_count,
            total as u64
        );
        // And so does sagaz's index, which sagaz itself would have lost
        // entries from.
        let raw = read(dir.path().join(format!("indexes/{saga}.json")));
        let raw = if q.is_empty() { raw } else { gunzip(&raw) };
        let index: Value = serde_json::from_slice(&raw).unwrap();
        let mut in_index: Vec<&str> = index["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["snapshot_id"].as_str().unwrap())
            .collect();
        in_index.sort();
        let mut want: Vec<&str> = listed
            .items
            .iter()
            .map(|s| s.snapshot_id.as_str())
            .collect();
        want.sort();
        assert_eq!(in_index, want, "sagaz's index has every snapshot");
        assert!(hidden_files(dir.path()).is_empty());
    }
}

#[tokio::test]
async fn read_only_browsing_of_a_sagaz_tree_warns_until_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let (saga, _, _) = sagaz_tree(dir.path(), false);
    let url = StoreUrl::new(format!("file://{}", dir.path().display()));
    let readonly = OpenOptions {
        readonly: true,
        ..OpenOptions::default()
    };
    let ro = store::open(&url, &readonly).await.unwrap();
    let page = ro
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.sagas[0].saga_id, saga);
    assert_eq!(page.sagas[0].snapshot_count, 3);
    let warning = page
        .index_warning
        .expect("read-only listing says the index is missing");
    assert!(warning.contains("without --readonly"), "{warning}");
    assert!(
        !dir.path().join("sagascope/sagas").exists(),
        "read-only wrote nothing"
    );

    // Opened once writable, the saga gets its summary, and the warning goes.
    open(dir.path(), "")
        .await
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    let page = ro
        .list_sagas(&SagaFilter::default(), &SagaPageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.sagas[0].snapshot_count, 3);
    assert!(page.index_warning.is_none(), "{:?}", page.index_warning);
}
