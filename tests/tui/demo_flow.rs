//! The demo's failed order fixed from the TUI: dry run, replay, batch,
//! and what read-only mode and a missing definition refuse.

use super::*;
use sagascope::engine::demo;
use sagascope::engine::{Definitions, Engine};
use sagascope::tui::jobs::ReplayEnv;

/// A memory store seeded by the demo's engine run, the App wired with
/// the demo's definitions, and one order that failed at charge_payment.
pub(super) async fn demo_harness() -> (Harness, String, tempfile::TempDir) {
    let (h, failed, dir, _) = demo_harness_and_store().await;
    (h, failed, dir)
}

/// [`demo_harness`], and the store it reads.
pub(super) async fn demo_harness_and_store(
) -> (Harness, String, tempfile::TempDir, Arc<dyn SnapshotStore>) {
    let dir = tempfile::tempdir().unwrap();
    demo::materialize(dir.path()).unwrap();
    let defs: Definitions = demo::demo_definitions(dir.path()).unwrap();
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let engine = Engine::new(store.clone());
    let report = demo::seed_demo(&engine, &defs, demo::demo_sagas(4, 0), 2, &|_| {}).await;
    let failed = report
        .sagas
        .iter()
        .find(|s| s.failed_step.as_deref() == Some("charge_payment"))
        .expect("the demo leaves an order failed at charge_payment")
        .saga_id
        .clone();
    let mut cfg = test_config("memory://", dir.path().to_path_buf());
    cfg.definitions = defs.names();
    let mut h = Harness::new(store.clone(), cfg, now(), 160, 45);
    h.jobs.set_replay_env(ReplayEnv {
        definitions: Arc::new(defs),
        identity: "tui-test".into(),
        lock_ttl: sagascope::replay::DEFAULT_LOCK_TTL,
    });
    h.settle().await;
    (h, failed, dir, store)
}

/// Opens the saga and puts the cursor on its charge_payment snapshot.
pub(super) async fn open_at_charge(h: &mut Harness, saga_id: &str) {
    h.keys(":");
    h.type_text(&format!("saga {saga_id}"));
    h.keys("Enter");
    h.settle().await;
    let t = h.app.timeline.as_ref().unwrap();
    assert_eq!(t.saga.saga_id, saga_id);
    let i = t
        .marks
        .iter()
        .position(|m| m.step_name == "charge_payment")
        .expect("a charge_payment snapshot");
    h.keys("g");
    for _ in 0..i {
        h.keys("l");
    }
    h.settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_the_token_dry_run_replay_and_land_on_the_completed_saga() {
    let (mut h, failed, _dir) = demo_harness().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    assert!(h
        .frame()
        .contains("~ $.payment_token: \"expired\" → \"tok_valid\""));
    h.keys("Esc");
    // Dry run: the plan, nothing runs.
    h.keys("d");
    h.settle().await;
    let f = h.frame();
    let p = h.app.panel.as_ref().expect("the plan is shown");
    let text: Vec<&str> = p.lines.iter().map(|(_, l)| l.as_str()).collect();
    // The checkpoint is the snapshot under the cursor (#1, before the
    // charge); the reservation the original run released is made again.
    assert!(
        text.iter()
            .any(|l| l.starts_with("checkpoint: snapshot #1 of 3")),
        "{f}"
    );
    assert!(
        text.contains(&"  re-run  reserve_inventory (compensated in the original run)"),
        "{f}"
    );
    assert!(text.contains(&"  run     charge_payment"), "{f}");
    assert!(text.contains(&"  run     ship_order"), "{f}");
    assert!(f.contains("plan OK: nothing has run"), "{f}");
    assert!(
        f.contains("~ $.payment_token: \"expired\" → \"tok_valid\""),
        "{f}"
    );
    h.keys("Esc");
    assert!(h.app.panel.is_none());
    // Real replay: the guards are checked, then confirm with the short
    // id, give a reason.
    h.keys("R");
    h.settle().await;
    h.type_text(sagascope::model::short_id(&failed));
    h.keys("Enter");
    h.type_text("new card token");
    h.keys("Enter");
    assert!(h.app.panel.as_ref().unwrap().running);
    // While it runs, frames are drawn and the timeline still scrubs.
    let mut frames_while_running = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while h.app.panel.as_ref().unwrap().running {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay did not finish"
        );
        h.flush();
        if let Ok(Some(a)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), h.rx.recv()).await
        {
            h.dispatch(a);
        }
        if h.app.panel.as_ref().unwrap().running {
            let before = cursor(&h);
            h.keys("h");
            assert_eq!(cursor(&h), before.saturating_sub(1));
            h.keys("l");
            let f = h.frame();
            assert!(f.contains("· running"), "{f}");
            frames_while_running += 1;
        }
    }
    assert!(frames_while_running > 0);
    let f = h.frame();
    assert!(f.contains("ok           charge_payment"), "{f}");
    assert!(f.contains("ok           ship_order"), "{f}");
    let new_saga = h.app.panel.as_ref().unwrap().new_saga.clone().unwrap();
    assert!(
        f.contains(&format!("new saga {new_saga} is completed")),
        "{f}"
    );
    h.keys("Enter");
    h.settle().await;
    let t = h.app.timeline.as_ref().unwrap();
    assert_eq!(t.saga.saga_id, new_saga);
    assert_eq!(t.saga.latest_status, SagaStatus::Completed);
    assert!(
        !h.app.drafts.contains_key(&failed),
        "applied: the draft is gone"
    );
    // Back on the original: the timeline marks the branch, and the
    // replay history lists the new run.
    h.keys("o");
    h.settle().await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, failed);
    let t = h.app.timeline.as_ref().unwrap();
    // The branch starts at the checkpoint: the snapshot before the charge,
    // where the cursor was, not the rolled-back one after it.
    let charge = t
        .marks
        .iter()
        .position(|m| m.step_name == "charge_payment")
        .unwrap();
    assert_eq!(t.marks[charge].status, SagaStatus::Executing);
    assert_eq!(h.app.branches().get(&charge), Some(&1));
    // The branch marker is on the checkpoint's row.
    let f = h.frame();
    assert!(f.lines().any(|l| l.contains("● charge_payment ⑂1")), "{f}");
    h.keys("4");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains(sagascope::model::short_id(&new_saga)), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_never_reaches_a_replay_and_a_wrong_id_does_nothing() {
    let (mut h, failed, _dir) = demo_harness().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("e");
    h.type_text("\"payment_token\": ");
    h.keys("Esc");
    for k in ["d", "R"] {
        h.keys(k);
        assert!(h.app.take_requests().is_empty());
        assert_eq!(
            h.app.mode,
            sagascope::tui::app::Mode::Normal,
            "{k}: no prompt"
        );
        assert!(h.app.panel.is_none());
        let m = h.app.message.clone().unwrap();
        assert!(m.error && m.text.contains("line 3, column 1"), "{m:?}");
    }
    // Esc at the prompt cancels and says nothing ran.
    h.keys("e C-x e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    h.keys("Esc R");
    h.settle().await;
    assert!(h.app.replay.target().is_some());
    h.keys("Esc");
    assert!(h.app.replay.target().is_none());
    assert!(h.app.take_requests().is_empty());
    let m = h.app.message.clone().unwrap();
    assert!(m.text.contains("nothing has run"), "{m:?}");
    // A valid override, then a wrong id: nothing is replayed.
    h.keys("e C-x e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    h.keys("Esc R");
    h.settle().await;
    assert!(h.app.replay.target().is_some());
    h.type_text("deadbeef");
    h.keys("Enter");
    assert!(h.app.replay.target().is_none());
    assert!(h.app.panel.is_none());
    assert!(h.app.take_requests().is_empty());
    let m = h.app.message.clone().unwrap();
    assert!(m.text.contains("nothing was replayed"), "{m:?}");
    h.settle().await;
    let sagas = h.app.list.sagas.len();
    assert_eq!(sagas, 4, "no new saga");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_not_offered_read_only_or_without_a_definition() {
    let (mut h, failed, _dir) = demo_harness().await;
    open_at_charge(&mut h, &failed).await;
    h.app.cfg.readonly = true;
    h.keys("R");
    assert!(h.app.replay.target().is_none());
    assert!(message(&h).contains("read-only"));
    h.app.cfg.readonly = false;
    h.app.cfg.definitions.clear();
    h.keys("R");
    assert!(h.app.replay.target().is_none());
    let m = message(&h);
    assert!(
        m.contains("no definition for OrderSaga") && m.contains("engine.definitions"),
        "{m}"
    );
}

/// The lines of the popup drawn at the middle of a 160-column frame, with
/// the demo's fresh ids masked (for snapshots).
pub(super) fn popup(frame: &str, ids: &[&str]) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in frame.lines() {
        let cols: Vec<char> = line.chars().collect();
        let part: String = cols.iter().skip(25).take(110).collect();
        if part.starts_with('┌') || part.starts_with('╭') {
            inside = true;
        }
        if inside {
            out.push_str(part.trim_end());
            out.push('\n');
        }
        if inside && (part.starts_with('└') || part.starts_with('╰')) {
            break;
        }
    }
    for id in ids {
        out = out.replace(sagascope::model::short_id(id), "<short id>");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_form_then_dry_run_then_replay_skip_the_same_sagas_and_log_the_reason() {
    let (mut h, failed, _dir, store) = demo_harness_and_store().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    h.keys("Esc Backspace");
    assert_eq!(h.app.focus, Pane::List);
    h.keys("b");
    assert!(message(&h).contains("mark sagas first"));
    h.keys("Space");
    assert_eq!(h.app.marked.len(), 1);
    h.keys("M");
    assert_eq!(h.app.marked.len(), 4);
    assert!(h.frame().contains("*OrderSaga"));
    // b opens the form: the step from the cursor, the override in full.
    h.keys("b");
    assert!(h.app.take_requests().is_empty(), "nothing planned yet");
    let form = h.app.batch_form.as_ref().expect("the batch form");
    assert_eq!(form.step, "charge_payment");
    assert_eq!(form.over, r#"{"payment_token":"tok_valid"}"#);
    let f = h.frame();
    assert!(f.contains(r#"{"payment_token":"tok_valid"}"#), "{f}");
    assert!(f.contains("✓ valid JSON object, 1 key(s)"), "{f}");
    // Enter: the batch's dry run, with the spec the form showed.
    h.keys("Enter");
    h.settle().await;
    let f = h.frame();
    assert!(
        f.contains("Batch dry run · 4 saga(s) from charge_payment"),
        "{f}"
    );
    assert!(
        f.contains(r#"override: {"payment_token":"tok_valid"}"#),
        "{f}"
    );
    // Three of the four completed: the dry run skips them, saying why, as
    // the real run will.
    assert!(f.contains("4 saga(s): ok 1 · failed 0 · skipped 3"), "{f}");
    assert!(f.contains("would skip"), "{f}");
    assert!(f.contains("completed (its newest snapshot"), "{f}");
    assert!(f.contains("dry run: nothing was executed"), "{f}");
    assert!(f.contains("a --allow-completed"), "{f}");
    assert!(f.contains("B opens this batch as a replay"), "{f}");
    // B from the dry run: the same form, as a replay; without a reason it
    // does not start.
    h.keys("B");
    assert!(h.app.panel.is_none());
    let form = h.app.batch_form.as_ref().expect("the batch form");
    assert!(form.real);
    assert_eq!(form.step, "charge_payment");
    assert_eq!(form.over, r#"{"payment_token":"tok_valid"}"#);
    assert_eq!(form.field, sagascope::tui::app::FormField::Reason);
    // Esc leaves it; B from the list opens it afresh, on the step.
    h.keys("Esc");
    assert!(h.app.batch_form.is_none());
    assert!(h.app.take_requests().is_empty());
    h.keys("B");
    let form = h.app.batch_form.as_ref().expect("the batch form");
    assert!(form.real);
    assert_eq!(form.step, "charge_payment");
    insta::assert_snapshot!(
        "batch_replay_form",
        popup(&h.frame(), &[])
            .lines()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    h.keys("Enter");
    assert!(h.app.take_requests().is_empty(), "no reason: nothing ran");
    let problem = h.app.batch_form.as_ref().unwrap().problem.clone().unwrap();
    assert!(problem.contains("needs a reason"), "{problem}");
    assert!(h.frame().contains("needs a reason"));
    // Tab to the reason, type it: Enter runs the dry run of this batch.
    h.keys("Tab Tab Tab");
    h.type_text("INC-42 card tokens");
    h.keys("Enter");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("reason: INC-42 card tokens"), "{f}");
    assert!(f.contains("4 saga(s): ok 1 · failed 0 · skipped 3"), "{f}");
    assert!(f.contains("B replays these 4 saga(s) for real"), "{f}");
    // A wrong count does nothing.
    h.keys("B");
    assert!(h.app.panel.is_none(), "the prompt replaces the summary");
    h.type_text("3");
    h.keys("Enter");
    assert!(h.app.take_requests().is_empty());
    assert!(message(&h).contains("nothing was replayed"));
    // Again, with the right count: the same ok/skip counts as the dry runs.
    h.keys("B Tab Tab Tab");
    h.type_text("INC-42 card tokens");
    h.keys("Enter");
    h.settle().await;
    h.keys("B");
    h.type_text("4");
    h.keys("Enter");
    h.settle().await;
    let p = h.app.panel.as_ref().unwrap();
    assert!(!p.running);
    let text: Vec<String> = p.lines.iter().map(|(_, l)| l.clone()).collect();
    assert!(
        text.iter()
            .any(|l| l.starts_with("4 saga(s): ok 1 · failed 0 · skipped 3")),
        "{text:?}"
    );
    assert_eq!(
        h.app.list.sagas.len(),
        5,
        "one new saga: the completed ones were not replayed"
    );
    // The reason is in the replay log of the saga that was replayed.
    let logs = replays(&store, &failed).await;
    let real = logs
        .iter()
        .find(|l| !l.is_dry_run())
        .expect("the real replay is logged");
    assert_eq!(real.reason(), Some("INC-42 card tokens"));
    assert_eq!(real.replay_status.as_str(), "success");
}
