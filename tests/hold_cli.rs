//! End-to-end: legal holds, gc and the audit log through the built binary
//! on SQLite, PostgreSQL and Redis. A held saga whose retention has passed
//! survives `gc` while an unheld one beside it is deleted; releasing the
//! hold restores each snapshot's retention; both changes are in
//! `audit log`; read-only mode refuses to place a hold.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use cli_world::{namespaced_stores, stderr, store_usable, World};

use std::sync::Arc;

use serde_json::{json, Value};

use sagascope::model::{SagaStatus, Snapshot, Timestamp};
use sagascope::store::{OpenOptions, SnapshotStore, StoreUrl};

/// The worlds to run in: a SQLite file, and a private namespace on each
/// server that answers.
fn worlds() -> Vec<(&'static str, World)> {
    namespaced_stores()
        .into_iter()
        .filter_map(|(backend, url)| {
            if backend == "sqlite" {
                return Some((backend, World::sqlite()));
            }
            store_usable(backend, &url).then(|| (backend, World::with_store(&url)))
        })
        .collect()
}

fn open(rt: &tokio::runtime::Runtime, url: &str) -> Arc<dyn SnapshotStore> {
    rt.block_on(sagascope::store::open(
        &StoreUrl::new(url),
        &OpenOptions::default(),
    ))
    .unwrap()
}

/// A saga of three snapshots from two days ago whose retention ended a
/// day ago (each a minute apart, so each retention differs).
fn expired_saga(
    rt: &tokio::runtime::Runtime,
    store: &dyn SnapshotStore,
    name: &str,
) -> Vec<Snapshot> {
    let id = common::saga_id();
    let day = 86_400_000_000i64;
    let start = Timestamp::now().plus_micros(-2 * day);
    let snaps: Vec<Snapshot> = (0..3)
        .map(|i| {
            let mut s = Snapshot::new(
                &id,
                name,
                format!("step{i}"),
                i,
                SagaStatus::Executing,
                common::ctx(json!({"order": i})),
                vec![],
            );
            s.created_at = start.plus_micros(i * 60_000_000);
            s.retention_until = Some(s.created_at.plus_micros(day));
            s
        })
        .collect();
    rt.block_on(store.save_snapshots(&snaps)).unwrap();
    snaps
}

fn retentions(
    rt: &tokio::runtime::Runtime,
    store: &dyn SnapshotStore,
    snaps: &[Snapshot],
) -> Vec<Option<Timestamp>> {
    snaps
        .iter()
        .map(|s| {
            rt.block_on(store.get_snapshot(&s.snapshot_id))
                .unwrap()
                .unwrap_or_else(|| panic!("snapshot {} is gone", s.snapshot_id))
                .retention_until
        })
        .collect()
}

#[test]
fn gc_keeps_a_held_expired_saga_deletes_an_unheld_one_and_release_restores_retention() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (backend, w) in worlds() {
        let store = open(&rt, &w.store);
        let name = format!("Payments-{}", common::unique_tag());
        let held = expired_saga(&rt, store.as_ref(), &name);
        let unheld = expired_saga(&rt, store.as_ref(), &name);
        let held_id = held[0].saga_id.clone();
        let unheld_id = unheld[0].saga_id.clone();
        let before = retentions(&rt, store.as_ref(), &held);

        // A hold, by a unique prefix of the id.
        let o = w.run(&[
            "hold",
            "place",
            &held_id[..13],
            "--reason",
            "litigation L-7",
        ]);
        assert!(o.status.success(), "{backend}: hold place: {}", stderr(&o));
        assert!(stderr(&o).contains(&held_id), "{backend}: {}", stderr(&o));
        assert_eq!(
            retentions(&rt, store.as_ref(), &held),
            vec![None, None, None],
            "{backend}: a held saga's snapshots have no expiry"
        );

        // A second hold on the same saga is a conflict naming the first.
        let o = w.run(&["hold", "place", &held_id, "--reason", "again"]);
        assert_eq!(o.status.code(), Some(6), "{backend}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("litigation L-7"),
            "{backend}: {}",
            stderr(&o)
        );

        let list = w.json(&["hold", "list", "--json"]);
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1, "{backend}: {list:?}");
        assert_eq!(list[0]["saga_id"], json!(held_id));
        assert_eq!(list[0]["placed_by"], json!("test-oncall"));
        assert_eq!(list[0]["reason"], json!("litigation L-7"));
        let table = w.ok(&["hold", "list"]);
        assert!(
            table.contains(&held_id) && table.contains("litigation L-7"),
            "{table}"
        );

        let o = w.run(&["gc", "--yes"]);
        assert!(o.status.success(), "{backend}: gc: {}", stderr(&o));
        let said = stderr(&o);
        assert!(
            said.contains("deleted 3 expired snapshot(s)"),
            "{backend}: {said}"
        );
        assert!(
            said.contains("kept 1 saga(s) on legal hold"),
            "{backend}: {said}"
        );
        assert_eq!(
            retentions(&rt, store.as_ref(), &held).len(),
            3,
            "{backend}: the held saga is whole"
        );
        for s in &unheld {
            assert!(
                rt.block_on(store.get_snapshot(&s.snapshot_id))
                    .unwrap()
                    .is_none(),
                "{backend}: the unheld expired saga {unheld_id} is gone"
            );
        }

        let o = w.run(&["hold", "release", &held_id, "--reason", "case closed"]);
        assert!(
            o.status.success(),
            "{backend}: hold release: {}",
            stderr(&o)
        );
        assert_eq!(
            retentions(&rt, store.as_ref(), &held),
            before,
            "{backend}: release restores each snapshot's retention"
        );
        assert!(w
            .json(&["hold", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty());
        let o = w.run(&["hold", "release", &held_id, "--reason", "twice"]);
        assert_eq!(o.status.code(), Some(5), "{backend}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("not on legal hold"),
            "{backend}: {}",
            stderr(&o)
        );

        // Released, the saga is collected like any other.
        let o = w.run(&["gc", "--yes"]);
        assert!(
            stderr(&o).contains("deleted 3 expired snapshot(s)"),
            "{backend}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("kept 0 saga(s)"),
            "{backend}: {}",
            stderr(&o)
        );

        // Both changes are in the audit log, oldest first.
        let events = w.json(&["audit", "log", "--json"]);
        let events: Vec<&Value> = events.as_array().unwrap().iter().collect();
        let actions: Vec<&str> = events
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            vec!["hold.place", "hold.release"],
            "{backend}: {events:?}"
        );
        assert_eq!(events[0]["saga_id"], json!(held_id));
        assert_eq!(events[0]["actor"], json!("test-oncall"));
        assert_eq!(events[0]["reason"], json!("litigation L-7"));
        assert_eq!(events[1]["reason"], json!("case closed"));
        assert_eq!(events[0]["details"]["snapshots"], json!(3));
        let table = w.ok(&["audit", "log"]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("TIME") && lines[0].contains("REASON"),
            "{table}"
        );
        assert!(
            lines[1].contains("hold.place") && lines[1].contains("litigation L-7"),
            "{table}"
        );
        assert!(
            lines[2].contains("hold.release") && lines[2].contains(&held_id),
            "{table}"
        );
        let last = w.json(&["audit", "log", "--json", "--limit", "1"]);
        assert_eq!(last.as_array().unwrap().len(), 1);
        assert_eq!(
            last[0]["action"],
            json!("hold.release"),
            "--limit keeps the newest"
        );
    }
}

#[test]
fn readonly_refuses_hold_place_and_release_but_lists() {
    let w = World::sqlite();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = open(&rt, &w.store);
    let saga = expired_saga(&rt, store.as_ref(), "Payments");
    let id = saga[0].saga_id.clone();
    for args in [
        vec!["--readonly", "hold", "place", id.as_str(), "--reason", "x"],
        vec![
            "--readonly",
            "hold",
            "release",
            id.as_str(),
            "--reason",
            "x",
        ],
    ] {
        let o = w.run(&args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("hold"), "{}", stderr(&o));
    }
    assert!(rt
        .block_on(sagascope::compliance::hold::get(store.as_ref(), &id))
        .unwrap()
        .is_none());
    assert_eq!(
        retentions(&rt, store.as_ref(), &saga),
        saga.iter().map(|s| s.retention_until).collect::<Vec<_>>()
    );
    assert!(w
        .json(&["--readonly", "hold", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(w
        .json(&["--readonly", "audit", "log", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    // A saga that does not exist is named.
    let o = w.run(&["hold", "place", "0000dead", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
}
