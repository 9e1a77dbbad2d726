//! The replay guards in the TUI: a saga replayed before, or completed, is
//! refused by `d`, `R` and `B` with the guard's message and its flag, and
//! replayed only after the key that overrides that guard; the override is
//! shown and written to the replay log.

use super::demo_flow::{demo_harness_and_store, open_at_charge, popup};
use super::*;
use sagascope::model::short_id;
use sagascope::tui::app::{Mode, ReplayFlow};

/// The short id and a reason typed at the confirmation: the replay runs.
async fn confirm(h: &mut Harness, saga: &str, reason: &str) {
    h.type_text(short_id(saga));
    h.keys("Enter");
    h.type_text(reason);
    h.keys("Enter");
    h.settle().await;
}

/// `R`, the short id, a reason: the replay runs; returns the new saga.
async fn replay_now(h: &mut Harness, saga: &str, reason: &str) -> String {
    h.keys("R");
    h.settle().await;
    assert!(
        h.app.replay.target().is_some(),
        "R asked for no confirmation: {}",
        h.frame()
    );
    confirm(h, saga, reason).await;
    let p = h.app.panel.as_ref().expect("the replay panel");
    assert!(!p.running);
    p.new_saga.clone().expect("a new saga")
}

/// The reservation a saga's newest snapshot carries.
async fn reservation(store: &Arc<dyn SnapshotStore>, saga: &str) -> String {
    let s = store.latest_snapshot(saga, None).await.unwrap().unwrap();
    s.context["reservation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no reservation in {saga}: {:?}", s.context))
        .to_string()
}

fn panel_text(h: &Harness) -> Vec<String> {
    h.app
        .panel
        .as_ref()
        .map(|p| p.lines.iter().map(|(_, l)| l.clone()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_order_reserves_again_and_a_second_r_is_refused_until_g() {
    let (mut h, failed, _dir, store) = demo_harness_and_store().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    h.keys("Esc d");
    h.settle().await;
    let text = panel_text(&h);
    assert!(
        text.contains(&"  re-run  reserve_inventory (compensated in the original run)".into()),
        "{text:?}"
    );
    h.keys("Esc");
    let new_saga = replay_now(&mut h, &failed, "new card token").await;
    // The replay made a reservation of its own: the original's was
    // released when the order was rolled back.
    let before = reservation(&store, &failed).await;
    let after = reservation(&store, &new_saga).await;
    assert_ne!(before, after, "the replay carried the released reservation");
    h.keys("Esc");
    assert!(h.app.panel.is_none());

    // A second R on the same saga: refused, saying why and which key
    // overrides it; no confirmation is asked for.
    h.keys("R");
    h.settle().await;
    assert_eq!(h.app.mode, Mode::Normal, "no prompt");
    assert!(h.app.replay.target().is_none());
    let m = h.app.message.clone().unwrap();
    assert!(
        m.error && m.text.contains("was already replayed successfully"),
        "{m:?}"
    );
    let f = h.frame();
    assert!(f.contains("plan refused by a guard"), "{f}");
    assert!(f.contains("g overrides this guard (--again)"), "{f}");
    assert!(!f.contains("R replays for real"), "{f}");
    let text = panel_text(&h);
    assert!(
        text.iter().any(|l| l.starts_with("error: ")
            && l.contains(&format!("made saga {new_saga}"))
            && l.ends_with("pass --again to replay it anyway")),
        "{text:?}"
    );
    // R in the refused plan does not run it either.
    h.keys("R");
    assert!(h.app.replay.target().is_none());
    assert!(h.app.take_requests().is_empty());
    assert!(message(&h).contains("cannot be replayed"));
    // g: planned again with --again, shown as overridden.
    h.keys("g");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("plan OK"), "{f}");
    assert!(f.contains("guards overridden: --again"), "{f}");
    assert!(f.contains("R replays for real"), "{f}");
    let text = panel_text(&h);
    assert!(
        text.iter()
            .any(|l| l.starts_with("warning: ") && l.ends_with("(replaying anyway: --again)")),
        "{text:?}"
    );
    h.keys("R");
    let t = h.app.replay.target().expect("the confirmation");
    assert!(t.spec.allow.again);
    assert!(message(&h).contains("(--again)"));
    confirm(&mut h, &failed, "charged twice on purpose").await;
    assert!(h.frame().contains("guards overridden: --again"));
    // The replay log says the guard was overridden, and why.
    let logs = replays(&store, &failed).await;
    let second = logs
        .iter()
        .find(|l| l.reason() == Some("charged twice on purpose"))
        .expect("the second replay is logged");
    assert_eq!(
        second.extra.get("guards_overridden"),
        Some(&serde_json::json!(["again"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_saga_is_refused_by_d_r_and_b_unless_overridden() {
    let (mut h, _failed, _dir, store) = demo_harness_and_store().await;
    let done = h
        .app
        .list
        .sagas
        .iter()
        .find(|s| s.latest_status == SagaStatus::Completed)
        .expect("the demo completes some orders")
        .saga_id
        .clone();
    open_at_charge(&mut h, &done).await;
    // d: refused, not "plan OK", naming the flag and the key.
    h.keys("d");
    h.settle().await;
    let f = h.frame();
    assert!(!f.contains("plan OK"), "{f}");
    assert!(f.contains("plan refused by a guard"), "{f}");
    assert!(f.contains("completed (its newest snapshot"), "{f}");
    assert!(
        f.contains("a overrides this guard (--allow-completed)"),
        "{f}"
    );
    insta::assert_snapshot!(
        "completed_saga_plan_refused",
        popup(&f, &[&done])
            .lines()
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A key for a guard that does not refuse it does nothing.
    h.keys("g");
    assert!(h.app.take_requests().is_empty());
    assert!(message(&h).contains("not refused by the --again guard"));
    h.keys("Esc");
    // R: refused the same way.
    h.keys("R");
    h.settle().await;
    assert!(h.app.replay.target().is_none());
    assert!(matches!(
        h.app.replay,
        ReplayFlow::Planned { ok: false, .. }
    ));
    assert!(h.frame().contains("plan refused by a guard"));
    h.keys("Esc");
    // B on it: the dry run skips it, and says why.
    h.keys("Backspace");
    let row = h
        .app
        .list
        .sagas
        .iter()
        .position(|s| s.saga_id == done)
        .unwrap();
    h.keys("g");
    for _ in 0..row {
        h.keys("j");
    }
    h.keys("Space");
    assert_eq!(h.app.marked.len(), 1);
    h.settle().await;
    h.keys("B");
    assert!(h.app.batch_form.is_some(), "the form");
    // The step is typed in the form (it opens on it).
    h.keys("C-u");
    h.type_text("charge_payment");
    assert_eq!(h.app.batch_form.as_ref().unwrap().step, "charge_payment");
    h.keys("Tab Tab Tab");
    h.type_text("rerun a completed order");
    h.keys("Enter");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("1 saga(s): ok 0 · failed 0 · skipped 1"), "{f}");
    assert!(f.contains("would skip"), "{f}");
    // a: the dry run again with --allow-completed; then B replays it.
    h.keys("a");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("guards overridden: --allow-completed"), "{f}");
    assert!(f.contains("1 saga(s): ok 1 · failed 0 · skipped 0"), "{f}");
    assert!(f.contains("a --allow-completed (on)"), "{f}");
    h.keys("B");
    h.type_text("1");
    h.keys("Enter");
    h.settle().await;
    let text = panel_text(&h);
    assert!(
        text.iter()
            .any(|l| l.starts_with("1 saga(s): ok 1 · failed 0 · skipped 0")),
        "{text:?}"
    );
    let logs = replays(&store, &done).await;
    let real = logs.iter().find(|l| !l.is_dry_run()).expect("logged");
    assert_eq!(real.reason(), Some("rerun a completed order"));
    assert_eq!(
        real.extra.get("guards_overridden"),
        Some(&serde_json::json!(["allow_completed"]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_may_still_be_running_is_refused_until_f() {
    let (mut h, failed, _dir, store) = demo_harness_and_store().await;
    // An order whose newest snapshot is seconds old and not terminal: its
    // run may still be going on.
    let base = store
        .latest_snapshot(&failed, Some("charge_payment"))
        .await
        .unwrap()
        .unwrap();
    let running = "00000000-0000-4000-8000-00000000beef";
    let snap = Snapshot::new(
        running,
        "OrderSaga",
        "charge_payment",
        1,
        SagaStatus::Executing,
        base.context.clone(),
        vec!["reserve_inventory".into()],
    );
    store.save_snapshots(&[snap]).await.unwrap();
    h.keys("C-r");
    h.settle().await;
    open_at_charge(&mut h, running).await;
    h.keys("d");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("plan refused by a guard"), "{f}");
    assert!(f.contains("f overrides this guard (--force)"), "{f}");
    assert!(
        panel_text(&h)
            .iter()
            .any(|l| l.contains("may still be running")),
        "{f}"
    );
    // Another guard's key does not plan it again.
    h.keys("a");
    assert!(h.app.take_requests().is_empty());
    h.keys("f");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("plan OK"), "{f}");
    assert!(f.contains("guards overridden: --force"), "{f}");
    // f again: no longer overridden, refused again.
    h.keys("f");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("plan refused by a guard"), "{f}");
    assert!(!f.contains("guards overridden"), "{f}");
}

/// The guard check before the confirmation takes a round trip: what is
/// typed meanwhile (the id, Enter) waits for it and lands in the prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_typed_right_after_r_waits_for_the_guard_check() {
    let (mut h, failed, _dir, _store) = demo_harness_and_store().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("R");
    h.type_text(short_id(&failed));
    h.keys("Enter");
    h.settle().await;
    assert!(
        matches!(h.app.replay, ReplayFlow::Reason(_)),
        "{:?}",
        h.app.replay
    );
    let f = h.frame();
    assert!(
        f.contains(&format!("reason for replaying {}", short_id(&failed))),
        "{f}"
    );
    h.keys("Esc");
    assert!(h.app.take_requests().is_empty(), "nothing replayed");
}
