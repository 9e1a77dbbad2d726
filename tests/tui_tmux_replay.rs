//! The built binary in tmux, replaying the demo's orders as a user would:
//! the rolled-back order fixed and replayed with a fresh reservation, a
//! second replay refused until its guard is overridden, and a completed
//! saga refused by `d` and by a batch until `a` overrides the guard.

mod common;

#[path = "common/tmux.rs"]
mod tmux;

use tmux::{
    demo, footer, home_with_store, list_json, new_saga_of, run_json, saga_ids, tmux_available,
    tui_in_tmux, user_env, Tmux,
};

/// The demo store (4 orders); the ids of its orders with this status.
fn demo_store(bin: &str, env: &[(&str, String)], store: &str, status: &str) -> Vec<String> {
    demo(bin, env, store, 4, 0);
    saga_ids(&list_json(bin, env, store, &["--all", "--status", status]))
}

/// The reservation in a saga's newest snapshot.
fn reservation(bin: &str, env: &[(&str, String)], store: &str, saga: &str) -> String {
    let snaps = run_json(
        bin,
        env,
        &["--store", store, "snapshots", saga, "--format", "json"],
    );
    let last = snaps["snapshots"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    last["context"]["reservation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no reservation in {saga}: {last}"))
        .to_string()
}

/// Opens a saga and moves the cursor to its charge_payment snapshot.
fn open_at_charge(tmux: &Tmux, saga: &str) {
    tmux.open_saga(saga);
    tmux.scrub_to("charge_payment");
}

#[test]
fn tmux_a_rolled_back_order_reserves_again_and_a_second_replay_waits_for_g() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = home_with_store("demo.db", user_env);
    let failed = demo_store(bin, &env, &store, "rolled_back")
        .into_iter()
        .next()
        .expect("the demo rolls back an order");
    let short = &failed[..8];
    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 4"));
    open_at_charge(&tmux, &failed);

    tmux.send(&["e"]);
    tmux.wait_for("the editor", |s| s.contains("Override ·"));
    tmux.send_text("\"payment_token\": \"tok_valid\"");
    tmux.wait_for("the diff", |s| {
        s.contains("~ $.payment_token: \"expired\" → \"tok_valid\"")
    });
    tmux.send(&["Escape"]);
    tmux.wait_for("the draft kept", |s| s.contains("override draft kept"));
    tmux.send(&["d"]);
    let plan = tmux.wait_for("the plan", |s| s.contains("plan OK"));
    assert!(
        plan.contains("re-run  reserve_inventory (compensated in the original run)"),
        "{plan}"
    );
    tmux.send(&["Escape"]);
    tmux.wait_for("the plan closed", |s| !s.contains("plan OK"));

    tmux.send(&["R"]);
    tmux.wait_for("the confirmation", |s| {
        footer(s).contains(&format!("type {short} to confirm"))
    });
    tmux.send_text(short);
    tmux.send(&["Enter"]);
    tmux.wait_for("the reason prompt", |s| {
        footer(s).contains("reason for replaying")
    });
    tmux.send_text("new card token");
    tmux.send(&["Enter"]);
    let done = tmux.wait_for("the replay to finish", |s| s.contains(" is completed"));
    let new_saga = new_saga_of(&done);
    // The prompt's footer does not outlive the replay.
    assert!(!footer(&done).contains("reason for replaying"), "{done}");
    tmux.send(&["Escape"]);
    let closed = tmux.wait_for("the panel closed", |s| !s.contains(" is completed"));
    assert!(
        !footer(&closed).contains("reason for replaying"),
        "{closed}"
    );

    // A second R: refused, with the guard's key; no confirmation asked.
    tmux.send(&["R"]);
    let refused = tmux.wait_for("the refusal", |s| {
        s.contains("plan refused by a guard") && s.contains("g overrides this guard (--again)")
    });
    assert!(!footer(&refused).contains("to confirm"), "{refused}");
    assert!(!refused.contains("R replays for real"), "{refused}");
    // R in the refused plan does not replay either.
    tmux.send(&["R"]);
    tmux.wait_for("R refused", |s| s.contains("cannot be replayed"));
    // g: planned again with --again; then R asks for the confirmation.
    tmux.send(&["g"]);
    tmux.wait_for("the plan with the guard overridden", |s| {
        s.contains("plan OK") && s.contains("guards overridden: --again")
    });
    tmux.send(&["R"]);
    let prompt = tmux.wait_for("the confirmation", |s| footer(s).contains("to confirm"));
    assert!(footer(&prompt).contains("(--again)"), "{prompt}");
    tmux.send(&["Escape"]);
    tmux.wait_for("the cancel", |s| s.contains("nothing has run"));
    tmux.quit();

    // The replay made its own reservation: the original's was released.
    let before = reservation(bin, &env, &store, &failed);
    let after = reservation(bin, &env, &store, &new_saga);
    assert_ne!(before, after);
}

#[test]
fn tmux_completed_sagas_are_refused_by_d_and_by_a_batch_until_a() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = home_with_store("demo.db", user_env);
    let completed = demo_store(bin, &env, &store, "completed");
    let n = completed.len();
    assert!(n > 0, "the demo completes orders");
    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 4"));

    // d on a completed saga: refused, not "plan OK"; a plans it anyway.
    open_at_charge(&tmux, &completed[0]);
    tmux.send(&["d"]);
    // The whole frame: a capture can land while it is being written, with
    // the footer still saying "planning".
    let plan = tmux.wait_for("the plan", |s| {
        s.contains("Dry run ·") && s.contains("plan ") && !footer(s).contains("planning")
    });
    assert!(plan.contains("plan refused by a guard"), "{plan}");
    assert!(!plan.contains("plan OK"), "{plan}");
    assert!(
        plan.contains("a overrides this guard (--allow-completed)"),
        "{plan}"
    );
    tmux.send(&["a"]);
    tmux.wait_for("the plan with the guard overridden", |s| {
        s.contains("plan OK") && s.contains("guards overridden: --allow-completed")
    });
    tmux.send(&["Escape"]);
    tmux.wait_for("the plan closed", |s| !s.contains("plan OK"));

    // The completed ones, marked; B opens the form.
    tmux.send(&["Escape"]);
    tmux.wait_for("the list focused", |s| footer(s).contains("Enter/l open"));
    tmux.filter("status:completed");
    tmux.wait_for("the filtered list", |s| s.contains(&format!("Sagas {n}")));
    tmux.send(&["M"]);
    tmux.wait_for("marked", |s| s.contains(&format!("{n} saga(s) marked")));
    tmux.send(&["B"]);
    tmux.wait_for("the form", |s| {
        s.contains("Batch replay ·") && s.contains("from step")
    });
    tmux.send(&["C-u"]);
    tmux.send_text("charge_payment");
    tmux.send(&["Enter"]);
    tmux.wait_for("no reason refused", |s| s.contains("needs a reason"));
    tmux.send(&["Tab", "Tab", "Tab"]);
    tmux.send_text("tmux batch");
    tmux.send(&["Enter"]);
    let dry = tmux.wait_for("the dry run", |s| {
        s.contains(&format!("{n} saga(s): ok 0 · failed 0 · skipped {n}"))
    });
    assert!(dry.contains("would skip"), "{dry}");
    tmux.send(&["a"]);
    tmux.wait_for("the dry run with the guard overridden", |s| {
        s.contains(&format!("{n} saga(s): ok {n} · failed 0 · skipped 0"))
            && s.contains("guards overridden: --allow-completed")
    });
    tmux.send(&["B"]);
    tmux.wait_for("the count prompt", |s| {
        footer(s).contains("type the number")
    });
    tmux.send_text(&n.to_string());
    tmux.send(&["Enter"]);
    tmux.wait_for("the batch to finish", |s| {
        s.contains("Batch replay ·")
            && s.contains(&format!("{n} saga(s): ok {n} · failed 0 · skipped 0"))
    });
    tmux.send(&["Escape"]);
    tmux.wait_for("the summary closed", |s| !s.contains("Batch replay ·"));
    tmux.quit();
    let history = run_json(
        bin,
        &env,
        &[
            "--store",
            &store,
            "replay",
            "history",
            &completed[0],
            "--format",
            "json",
        ],
    );
    let real = history["replays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dry_run"] == false)
        .cloned()
        .unwrap_or_else(|| panic!("no real replay in {history}"));
    assert_eq!(real["reason"], "tmux batch", "{real}");
    assert_eq!(
        real["guards_overridden"],
        serde_json::json!(["allow_completed"]),
        "{real}"
    );
}
