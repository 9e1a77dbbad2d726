//! End to end: the built binary in a real terminal (tmux) against a seeded
//! SQLite store. The list shows, scrubbing changes the detail pane, `:at`
//! lands on the right snapshot, and `q` leaves a clean terminal.
//!
//! Every wait polls the screen until the expected text appears (or fails
//! after a generous deadline); nothing asserts on timing.

mod common;

#[path = "common/tmux.rs"]
mod tmux;

use tmux::{
    demo, dev_seed, failed_order, home_env, home_with_store, list_json, new_saga_of,
    tmux_available, tui_in_tmux, Tmux,
};

#[test]
fn tui_in_tmux_lists_scrubs_time_travels_and_quits_cleanly() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e2e.db");
    // Keep the user's config and data dir out of it; logs land in the temp dir.
    let env = home_env(dir.path());
    let store = format!("sqlite://{}", db.display());
    dev_seed(
        bin,
        &env,
        &store,
        30,
        6,
        &["--start", "2026-01-15T09:00:00Z"],
    );

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);

    // The list shows, and the newest saga's first snapshot is in the detail pane.
    let screen = tmux.wait_for("the saga list and the first snapshot", |s| {
        s.contains("Sagas 30") && s.contains("#0 ") && s.contains("\"order_id\"")
    });
    assert!(screen.contains("connected"), "{screen}");

    // Scrubbing changes the detail pane.
    tmux.send(&["Enter"]);
    tmux.send(&["l"]);
    tmux.wait_for("snapshot #1 in the detail pane", |s| {
        s.contains("#1 ") && s.contains("· 2/6")
    });
    tmux.send(&["l"]);
    tmux.wait_for("snapshot #2 in the detail pane", |s| {
        s.contains("#2 ") && s.contains("· 3/6")
    });

    // The newest saga is #29: its snapshots are 250 ms apart from
    // 09:00:00 + 29 × 7 s = 09:03:23, so 09:03:23.800 is the state at #3.
    tmux.send(&[":"]);
    tmux.send_text("at 2026-01-15T09:03:23.800Z");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for(":at landing on #3", |s| {
        s.contains("· 4/6") && s.contains("#3 ")
    });
    assert!(
        screen.contains("state at 2026-01-15T09:03:23.800"),
        "{screen}"
    );

    // q leaves: the shell is back, the alternate screen is gone.
    // Wait for the TUI to be gone before typing, or it could read the keys.
    tmux.quit();
    tmux.send_text("echo sagascope-exit-$?");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the shell after quitting", |s| {
        s.contains("sagascope-exit-0")
    });
    assert!(
        !screen.contains("Sagas 30"),
        "the TUI is still on screen:\n{screen}"
    );
    let alt = tmux.cmd(&["display-message", "-p", "-t", "main", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alt.stdout).trim(),
        "0",
        "alternate screen still on"
    );
}

#[test]
fn tui_in_tmux_fixes_a_failed_order_dry_runs_and_replays_it() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let store = format!("sqlite://{}", db.display());
    // $EDITOR round trip: a script stands in for the user's editor.
    let editor = dir.path().join("fake-editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf '{\"payment_token\": \"tok_valid\"}' > \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut env = home_env(dir.path());
    env.push(("EDITOR", editor.display().to_string()));
    // The demo writes its definitions into the data dir, where the TUI finds them.
    demo(bin, &env, &store, 4, 0);
    let failed = failed_order(bin, &env, &store);
    let short = &failed[..8];

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 4"));

    tmux.open_saga(&failed);
    // Scrub to its charge_payment snapshot.
    tmux.scrub_to("charge_payment");

    tmux.send(&["e"]);
    tmux.wait_for("the editor", |s| s.contains("Override ·"));
    tmux.send(&["C-e"]);
    tmux.wait_for("the override back from $EDITOR, and its diff", |s| {
        s.contains("override read back from $EDITOR")
            && s.contains("~ $.payment_token: \"expired\" → \"tok_valid\"")
    });
    tmux.send(&["Escape"]);
    // Esc and a key read together are Alt and the key (Alt-d deletes a
    // word in the editor): let the Esc land first.
    tmux.wait_for("the editor closed", |s| !s.contains("Override ·"));
    tmux.send(&["d"]);
    let plan = tmux.wait_for("the dry-run plan", |s| s.contains("plan OK"));
    assert!(plan.contains("run     charge_payment"), "{plan}");
    assert!(plan.contains("run     ship_order"), "{plan}");
    tmux.send(&["Escape"]);
    tmux.wait_for("the plan closed", |s| !s.contains("plan OK"));

    tmux.send(&["R"]);
    tmux.wait_for("the confirmation prompt naming the id", |s| {
        s.contains(&format!("type {short} to confirm"))
    });
    tmux.send_text(short);
    tmux.send(&["Enter"]);
    tmux.wait_for("the reason prompt", |s| {
        s.contains(&format!("reason for replaying {short} (optional"))
    });
    tmux.send_text("tmux e2e");
    tmux.send(&["Enter"]);
    let done = tmux.wait_for("the replay to finish", |s| s.contains(" is completed"));
    assert!(done.contains("ok           ship_order"), "{done}");
    let new_saga = new_saga_of(&done);
    tmux.send(&["Enter"]);
    tmux.wait_for("the new saga opened", |s| {
        s.contains(&format!("opened saga {new_saga}"))
    });
    tmux.quit();
    let listed = list_json(bin, &env, &store, &["--all"]);
    let new = listed["sagas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["saga_id"] == new_saga.as_str())
        .expect("the new saga is in the store");
    assert_eq!(new["latest_status"], "completed");
}

/// One saga of 200 snapshots with #99 damaged behind the store's back: the
/// timeline loads all 200, shows the broken one in place as unreadable, and
/// the detail pane says why. (Pages of 64 once ended the timeline at
/// 127/127, with no mark for the broken row.)
#[test]
fn tui_in_tmux_timeline_goes_on_past_a_corrupt_snapshot_on_sqlite() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corrupt.db");
    let store = format!("sqlite://{}", db.display());
    let env = home_env(dir.path());
    dev_seed(bin, &env, &store, 1, 200, &[]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let broken: String = conn
        .query_row(
            "SELECT snapshot_id FROM saga_snapshots ORDER BY created_at, snapshot_id LIMIT 1 OFFSET 99",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let n = conn
        .execute(
            "UPDATE saga_snapshots SET context = '{\"order_id\": ' WHERE snapshot_id = ?1",
            [&broken],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 1"));
    tmux.send(&["Enter"]);
    // The whole timeline loads: 200 rows, the broken one among them.
    tmux.send(&["G"]);
    tmux.wait_for("all 200 snapshots on the timeline", |s| {
        s.contains("· 200/200 ")
    });
    tmux.send(&["-N", "100", "h"]);
    let screen = tmux.wait_for("the broken snapshot in place", |s| {
        s.contains("· 100/200 ") && s.contains("unreadable")
    });
    assert!(
        screen.contains("  99 "),
        "the broken row keeps its number:\n{screen}"
    );
    tmux.wait_for("the detail pane naming the damage", |s| {
        s.contains(&broken[..8]) && (s.contains("corrupt") || s.contains("JSON"))
    });
    tmux.quit();
}

/// The demo's store (8 orders, 3 trips; some fail and are compensated) in
/// a temp dir, with the environment that keeps the user's config and data
/// dir out of it.
fn demo_store(bin: &str) -> (tempfile::TempDir, Vec<(&'static str, String)>, String) {
    let (dir, env, store) = home_with_store("demo.db", home_env);
    demo(bin, &env, &store, 8, 3);
    (dir, env, store)
}

/// Opens a saga by id in the TUI and goes to its last snapshot.
fn open_last(tmux: &Tmux, saga_id: &str) {
    tmux.open_saga(saga_id);
    tmux.send(&["G"]);
}

#[test]
fn tui_in_tmux_says_why_a_saga_failed_on_its_row_in_the_header_diff_and_raw() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = demo_store(bin);
    let failed = failed_order(bin, &env, &store);
    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 11"));
    open_last(&tmux, &failed);
    // The failing row names its step and error; the header says it whole.
    let screen = tmux.wait_for("the error on the row and in the header", |s| {
        s.contains("▶   2 ⟲ charge_payment: payment declined: card t")
            && s.contains("✖ failed at #2 charge_payment: payment declined: card token")
    });
    assert!(
        screen.contains("has expired (ask for a new token)"),
        "{screen}"
    );
    assert!(
        screen.contains("compensated: reserve_inventory"),
        "{screen}"
    );
    // The diff against the executing snapshot is the outcome, not "no change".
    tmux.send(&["2"]);
    let screen = tmux.wait_for("the outcome in the Diff tab", |s| {
        s.contains("~ status: \"executing\" → \"rolled_back\"")
            && s.contains("+ compensated_steps: [\"reserve_inventory\"]")
    });
    assert!(!screen.contains("No change"), "{screen}");
    assert!(
        screen.contains("+ error: \"payment declined: card token"),
        "{screen}"
    );
    // Raw: the error's long line wraps; its end is on screen.
    tmux.send(&["3", "Tab", "G"]);
    let screen = tmux.wait_for("the wrapped error in the Raw tab", |s| {
        s.contains("\"error\": \"payment declined:") && s.contains("new token)\",")
    });
    assert!(screen.contains("\"compensated_steps\": ["), "{screen}");
    tmux.send(&["q"]);
}

#[test]
fn tui_in_tmux_x_on_the_diff_tab_writes_the_diff_under_the_data_dir_and_says_where() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (dir, env, store) = demo_store(bin);
    let failed = failed_order(bin, &env, &store);
    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 11"));
    open_last(&tmux, &failed);
    tmux.wait_for("the last snapshot", |s| s.contains("· 3/3"));
    tmux.send(&["Tab", "2"]);
    tmux.wait_for("the Diff tab", |s| s.contains("~ status: "));
    tmux.send(&["x"]);
    let screen = tmux.wait_for("the footer naming the file", |s| {
        s.contains("exported 1 record(s) to ")
    });
    // HOME is the temp dir, so the footer writes it as ~.
    let shown = screen
        .split("exported 1 record(s) to ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let expected_dir = "~/data/sagascope/exports/sagascope-diff-";
    assert!(shown.starts_with(expected_dir), "{shown}");
    let path = dir.path().join(shown.trim_start_matches("~/"));
    let diff: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(diff["b"]["saga_id"], failed.as_str());
    assert_eq!(diff["fields"][0]["new"], "rolled_back");
    assert_eq!(diff["fields"][2]["new"][0], "reserve_inventory");
    tmux.send(&["q"]);
}

#[test]
fn tui_in_tmux_overview_counts_groups_failures_and_enter_lists_a_group() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = demo_store(bin);
    let total = |args: &[&str]| {
        let mut a = vec!["--count"];
        a.extend_from_slice(args);
        list_json(bin, &env, &store, &a)["total"].as_u64().unwrap()
    };
    let rolled_back = total(&["--status", "rolled_back"]);
    let failures = total(&["--status", "failed,rolled_back,partially_committed"]);
    let completed = total(&["--status", "completed"]);
    let orders = total(&[
        "--status",
        "rolled_back",
        "--name",
        "OrderSaga",
        "--step",
        "charge_payment",
    ]);
    assert!(orders >= 2, "the demo fails two orders of 8");
    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 11"));
    tmux.send(&["O"]);
    let screen = tmux.wait_for("the overview's counts and groups", |s| {
        s.contains("Overview · 11 saga(s)") && s.contains("Failures by step and error")
    });
    assert!(
        screen.contains(&format!("⟲ rolled_back {rolled_back:>19}")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("✔ completed {completed:>21}")),
        "{screen}"
    );
    assert!(
        screen.contains(&format!(
            "▶ {orders:>6}  charge_payment        payment declined: card token for order ord-"
        )),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("Failures per hour, last 24 h: {failures} in all")),
        "{screen}"
    );
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the list showing the group", |s| {
        s.contains(&format!("Sagas {orders} · failed at charge_payment"))
    });
    assert!(!screen.contains("TripBookingSa"), "{screen}");
    tmux.send(&["Escape"]);
    tmux.wait_for("every saga again", |s| s.contains("Sagas 11 · time"));
    tmux.send(&["q"]);
}
