//! The built binary in tmux: keys sent faster than the store answers all
//! land, in order; what another process writes appears without a key.
//! Every wait polls the screen; nothing asserts on timing.

mod common;

#[path = "common/tmux.rs"]
mod tmux;

use std::path::Path;

use tmux::{dev_seed, home_env, list_json, saga_ids, tmux_available, tui_in_tmux};

/// A store of `sagas` seeded sagas in a private home, and that home's
/// environment for the binary.
fn seeded_home(
    bin: &str,
    dir: &Path,
    sagas: u32,
    snapshots: u32,
) -> (String, Vec<(&'static str, String)>) {
    let db = dir.join("burst.db");
    let store = format!("sqlite://{}", db.display());
    let env = home_env(dir);
    dev_seed(
        bin,
        &env,
        &store,
        sagas,
        snapshots,
        &["--context-bytes", "200", "--start", "2026-01-15T09:00:00Z"],
    );
    (store, env)
}

/// The saga ids as the list shows them, newest first.
fn listed_ids(bin: &str, env: &[(&str, String)], store: &str) -> Vec<String> {
    saga_ids(&list_json(bin, env, store, &["--all"]))
}

/// Keys sent back to back through the terminal, faster than the store
/// answers, all take effect in order: 30 `End`s walk the 26 pages of a
/// 2,600-saga list to its real end; `g j j j k l e` and the text typed
/// after it land in the override editor of the third saga. (Keys once
/// waited for the 500 ms clock, and the `e` after an `l` was dropped.)
#[test]
fn tui_in_tmux_a_burst_of_keys_lands_every_key_in_order() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let dir = tempfile::tempdir().unwrap();
    let (store, env) = seeded_home(bin, dir.path(), 2_600, 2);
    let ids = listed_ids(bin, &env, &store);
    assert_eq!(ids.len(), 2_600);

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the first page of the list", |s| {
        s.contains(" Sagas 100 of ")
    });

    // One send-keys: the keys reach the terminal in one go.
    let ends = vec!["End"; 30];
    tmux.send(&ends);
    let oldest = &ids[ids.len() - 1][..8];
    let screen = tmux.wait_for("the real end of the list", |s| {
        s.contains(" Sagas 2600 · ") && s.contains(&format!("{oldest} · 1/2 "))
    });
    assert!(!screen.contains(" of 2600"), "{screen}");

    // Moves, open, edit and the override typed at once: one tmux command
    // line, so nothing waits between them.
    let third = &ids[2][..8];
    let out = tmux.cmd(&[
        "send-keys",
        "-t",
        "main",
        "g",
        "j",
        "j",
        "j",
        "k",
        "l",
        "e",
        ";",
        "send-keys",
        "-t",
        "main",
        "-l",
        "\"burst\": 7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let screen = tmux.wait_for("the override typed into the editor", |s| {
        s.contains("✓ valid override, 1 key(s)")
    });
    assert!(
        screen
            .lines()
            .any(|l| l.contains("Override · ") && l.contains(third)),
        "the editor is on the third saga {third}:\n{screen}"
    );
    assert!(screen.contains("\"burst\": 7"), "{screen}");
    assert!(screen.contains("+ $.burst: 7"), "{screen}");

    // (Esc and a key at once would read as Alt and the key.)
    tmux.send(&["Escape"]);
    tmux.wait_for("the editor closed", |s| !s.contains("Override · "));
    tmux.quit();
}

/// Another process writes while the TUI is open: without a key, the new
/// saga shows behind the list's "1 new" marker (the selection stays), and
/// the snapshot joins the timeline being followed (`f`).
#[test]
fn tui_in_tmux_shows_what_another_process_writes_without_a_key() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let dir = tempfile::tempdir().unwrap();
    let (store, env) = seeded_home(bin, dir.path(), 5, 6);
    let ids = listed_ids(bin, &env, &store);

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    let newest = &ids[0];
    tmux.wait_for("the list and the newest saga's timeline", |s| {
        s.contains(" Sagas 5 · ") && s.contains(&format!("{} · 1/6 ", &newest[..8]))
    });
    tmux.send(&["Enter", "f"]);
    tmux.wait_for("following the newest snapshot", |s| {
        s.contains(" · 6/6 · following ")
    });

    let rt = tokio::runtime::Runtime::new().unwrap();
    let fresh = uuid::Uuid::new_v4().to_string();
    rt.block_on(async {
        use sagascope::model::{SagaStatus, Snapshot};
        use sagascope::store::{OpenOptions, StoreUrl};
        let s = sagascope::store::open(&StoreUrl::new(&store), &OpenOptions::default())
            .await
            .unwrap();
        let ctx = serde_json::json!({"written_by": "another process"});
        let ctx = ctx.as_object().unwrap().clone();
        let next = Snapshot::new(
            newest.as_str(),
            "OrderSaga",
            "late_step",
            6,
            SagaStatus::Completed,
            ctx.clone(),
            vec![],
        );
        s.save_snapshot(&next).await.unwrap();
        let other = Snapshot::new(
            fresh.as_str(),
            "FreshSaga",
            "first_step",
            0,
            SagaStatus::Executing,
            ctx,
            vec![],
        );
        s.save_snapshot(&other).await.unwrap();
    });

    let screen = tmux.wait_for("the new snapshot followed and the new saga marked", |s| {
        s.contains(" · 7/7 · following ") && s.contains("↑ 1 new (g)")
    });
    assert!(screen.contains("late_step"), "{screen}");
    assert!(
        !screen.contains(&fresh[..8]),
        "the new saga waits above the list:\n{screen}"
    );
    // Back in the list, going to the top takes it in.
    tmux.send(&["BSpace", "g"]);
    let screen = tmux.wait_for("the new saga listed at the top", |s| {
        s.contains(" Sagas 6 · ") && s.contains(&format!("{} · 1/1 ", &fresh[..8]))
    });
    assert!(!screen.contains(" new (g)"), "{screen}");
    tmux.quit();
}
