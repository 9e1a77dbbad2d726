//! The built binary in tmux: the filter as it is typed, the saga in hand,
//! read-only mode and the small defects users saw, each read off the
//! screen as a user sees it.

mod common;

#[path = "common/tmux.rs"]
mod tmux;

use tmux::{
    demo, dev_seed, failed_order, footer, home_with_store, run_ok, tmux_available, tui_in_tmux,
    user_env, Tmux,
};

/// The demo store (4 orders) and the id of the order that failed.
fn demo_store(bin: &str, env: &[(&str, String)], store: &str) -> String {
    demo(bin, env, store, 4, 0);
    failed_order(bin, env, store)
}

#[test]
fn tmux_filter_applies_as_typed_says_why_not_edits_like_readline_and_counts() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = home_with_store("f.db", user_env);
    dev_seed(
        bin,
        &env,
        &store,
        150,
        2,
        &["--start", "2026-01-15T09:00:00Z"],
    );
    // One saga last active five minutes ahead of this machine's clock.
    dev_seed(bin, &env, &store, 1, 1, &["--start", "+5m", "--seed", "99"]);
    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    // The real count, not "100+"; the future saga is "in 5m" (or 4m by
    // the time it is drawn), not "0s".
    let screen = tmux.wait_for("the list with its count", |s| {
        s.contains("Sagas 100 of 151")
    });
    assert!(!screen.contains("100+"), "{screen}");
    let first = screen.lines().nth(2).unwrap_or("");
    assert!(
        first.contains(" in 5m ") || first.contains(" in 4m "),
        "{screen}"
    );

    // Applied as typed (no Enter), any case, part of the name.
    tmux.send(&["/"]);
    tmux.send_text("PAYMENT");
    let screen = tmux.wait_for("only payment sagas listed", |s| {
        s.contains("/PAYMENT") && s.contains("PaymentSaga") && !s.contains("OrderSaga")
    });
    assert!(footer(&screen).starts_with("/PAYMENT"), "{screen}");

    // An unknown status, typed in front: said beside the line, and the
    // last good filter stays.
    tmux.send(&["Home"]);
    tmux.send_text(" ");
    tmux.send(&["Left"]);
    tmux.send_text("status:bogus");
    let screen = tmux.wait_for("the filter error", |s| {
        footer(s).contains("✗ status:bogus: unknown status \"bogus\"")
    });
    assert!(screen.contains("PaymentSaga"), "{screen}");

    // Readline: C-w drops the bad word, End goes to the end, Enter keeps it.
    tmux.send(&["C-w"]);
    tmux.wait_for("the error gone", |s| !s.contains("✗"));
    tmux.send_text("status:failed");
    tmux.send(&["End"]);
    tmux.send_text(" ");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("failed payment sagas", |s| {
        s.contains("/status:failed PAYMENT") && s.contains("✖ PaymentSaga")
    });
    assert!(!screen.contains("✔ PaymentSaga"), "{screen}");
    tmux.send(&["/"]);
    tmux.send(&["C-u"]);
    tmux.wait_for("every saga back", |s| s.contains("Sagas 100 of 151"));
    tmux.send(&["Enter"]);
    tmux.wait_for("the filter line closed", |s| !footer(s).starts_with('/'));

    // `:sa` Tab completes the command and a space.
    tmux.send(&[":"]);
    tmux.send_text("sa");
    tmux.send(&["Tab"]);
    tmux.wait_for(":saga and a space", |s| footer(s).starts_with(":saga █"));
    tmux.send(&["Escape"]);
    // (Esc and the next key apart, or the terminal reads them as Alt-q.)
    tmux.wait_for("the palette closed", |s| !footer(s).starts_with(':'));
    tmux.quit();
}

#[test]
fn tmux_the_saga_in_hand_is_named_and_dry_runs_are_logged_and_offer_r() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = home_with_store("demo.db", user_env);
    let failed = demo_store(bin, &env, &store);
    let short = &failed[..8];

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    let first = tmux.wait_for("the saga list", |s| s.contains("Sagas 4"));
    // Rows drawn means connected: the header no longer says connecting.
    let header = first.lines().next().unwrap_or_default();
    assert!(header.contains("● connected"), "{first}");
    assert!(!header.contains("connecting"), "{first}");
    // A filter that leaves the failed order out, then the order by id.
    tmux.filter("status:completed");
    tmux.wait_for("completed orders", |s| s.contains("/status:completed"));
    tmux.open_saga(&failed);
    tmux.send(&["Escape"]);
    // Back in the list: it names the open saga instead of another.
    tmux.wait_for("the list naming the open saga", |s| {
        s.contains(&format!("open: OrderSaga {short} · not listed"))
    });

    // d plans a replay of that saga; the footer no longer says "planning".
    tmux.send(&["d"]);
    let plan = tmux.wait_for("the plan", |s| {
        s.contains("Dry run ·") && s.contains("plan")
    });
    assert!(plan.contains(&format!("Dry run · {short}")), "{plan}");
    assert!(!footer(&plan).contains("planning a replay"), "{plan}");
    assert!(plan.contains("R replays for real"), "{plan}");
    // R in the plan asks for the replay, naming the id to type.
    tmux.send(&["R"]);
    let prompt = tmux.wait_for("the replay prompt", |s| footer(s).contains("to confirm"));
    let f = footer(&prompt);
    assert!(
        f.contains(&format!("replay OrderSaga {short} from ")),
        "{prompt}"
    );
    assert!(
        f.contains(&format!(": type {short} to confirm")),
        "{prompt}"
    );
    tmux.send(&["Escape"]);
    tmux.wait_for("the cancel message", |s| s.contains("nothing has run"));

    // An override that is not JSON yet: the position is given once.
    tmux.send(&["e"]);
    tmux.wait_for("the editor", |s| s.contains("Override ·"));
    tmux.send_text("\"payment_token\": ");
    let screen = tmux.wait_for("the editor's error", |s| s.contains("✗ line"));
    let status = screen.lines().find(|l| l.contains("✗ line")).unwrap();
    assert!(status.contains("✗ line 3, column 1: "), "{screen}");
    assert!(!status.contains("at line"), "{screen}");
    tmux.send(&["Escape"]);
    // (Esc and the next key apart, or the terminal reads them as Alt-d.)
    tmux.wait_for("the editor closed", |s| !s.contains("Override ·"));
    tmux.send(&["d"]);
    let screen = tmux.wait_for("the refusal", |s| footer(s).contains("not valid"));
    assert_eq!(footer(&screen).matches("line 3").count(), 1, "{screen}");
    tmux.quit();

    // The dry run is in the replay log, as the CLI's are.
    let history = run_ok(
        bin,
        &env,
        &["--store", &store, "replay", "history", &failed],
    );
    assert!(history.contains("dry run"), "{history}");
    assert!(history.contains("tmux-user"), "{history}");
}

#[test]
fn tmux_read_only_offers_no_writing_key_and_refuses_each_alike() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let (_dir, env, store) = home_with_store("demo.db", user_env);
    let failed = demo_store(bin, &env, &store);

    let tmux: Tmux = tui_in_tmux(bin, &env, &["--readonly", "--store", &store]);
    let screen = tmux.wait_for("the list, read-only", |s| {
        s.contains("Sagas 4") && s.contains("READ-ONLY")
    });
    let f = footer(&screen);
    assert!(f.contains("q quit"), "{screen}");
    for hint in ["edit", "dry run", "replay"] {
        assert!(!f.contains(hint), "{hint} offered read-only: {f}");
    }
    tmux.open_saga(&failed);
    tmux.send(&["Escape"]);
    tmux.wait_for("the list focused", |s| footer(s).contains("Enter/l open"));
    for key in ["e", "d", "R"] {
        // Another message in between, so each refusal is seen afresh.
        tmux.send(&["s"]);
        tmux.wait_for("the sort message", |s| footer(s).contains("sorted by"));
        tmux.send(&[key]);
        let screen = tmux.wait_for("the refusal", |s| footer(s).contains("read-only mode"));
        assert!(
            footer(&screen).contains("read-only mode: replays, dry runs (they are written to the replay log) and the override editor are refused; nothing was done"),
            "{key}: {screen}"
        );
        assert!(
            !screen.contains("Override ·") && !screen.contains("Dry run ·"),
            "{screen}"
        );
    }
    tmux.quit();
    let history = run_ok(
        bin,
        &env,
        &["--store", &store, "replay", "history", &failed],
    );
    assert!(!history.contains("dry run"), "{history}");
}
