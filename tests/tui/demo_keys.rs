//! Replay keys on the demo's failed order: what each prompt names, what
//! the dry-run popup offers, footers after the fact, the replay log, and
//! read-only mode refusing every writing key alike.

use super::demo_flow::{demo_harness, demo_harness_and_store, open_at_charge};
use super::{footer, message, replays};
use sagascope::model::short_id;
use sagascope::tui::app::Mode;
use sagascope::tui::keymap::READONLY_REFUSAL;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tui_dry_run_is_written_to_the_replay_log_as_the_clis_is() {
    let (mut h, failed, _dir, store) = demo_harness_and_store().await;
    open_at_charge(&mut h, &failed).await;
    assert!(replays(&store, &failed).await.is_empty());
    h.keys("d");
    h.settle().await;
    assert!(h.app.panel.is_some());
    let logged = replays(&store, &failed).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    let log = &logged[0];
    assert!(log.is_dry_run());
    assert_eq!(log.checkpoint_step, "charge_payment");
    assert_eq!(log.initiated_by, "tui-test");
    assert_eq!(log.replay_status.as_str(), "success");
    // A dry run is not a branch on the timeline.
    h.keys("Esc");
    h.settle().await;
    assert!(h.app.branches().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r_in_the_dry_run_popup_asks_for_the_replay_it_offers() {
    let (mut h, failed, _dir) = demo_harness().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("d");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("R replays for real"), "{f}");
    h.keys("R");
    assert!(h.app.panel.is_none(), "the popup gives way to the prompt");
    let t = h.app.replay.target().expect("R asked for the replay");
    assert_eq!(t.saga_id, failed);
    assert_eq!(t.spec.from_step, "charge_payment");
    // The prompt names the id it expects and whose it is.
    let f = h.frame();
    let short = short_id(&failed);
    assert!(
        footer(&f).contains(&format!(
            "replay OrderSaga {short} from charge_payment: type {short} to confirm:"
        )),
        "{f}"
    );
    // The demo's ids are fresh each run.
    insta::assert_snapshot!(
        "replay_prompt_names_the_id",
        footer(&f).replace(short, "<short id>")
    );
    h.keys("Esc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footers_do_not_outlive_what_they_announce() {
    let (mut h, failed, _dir) = demo_harness().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("d");
    assert!(footer(&h.frame()).contains("planning a replay of OrderSaga"));
    h.settle().await;
    let f = h.frame();
    assert!(!f.contains("planning a replay"), "{f}");
    h.keys("Esc");
    assert!(!h.frame().contains("planning a replay"));
    h.keys("R");
    h.settle().await;
    h.type_text(short_id(&failed));
    h.keys("Enter");
    let f = h.frame();
    assert!(
        footer(&f).contains(&format!("reason for replaying {}", short_id(&failed))),
        "{f}"
    );
    h.keys("Enter");
    h.settle().await;
    let p = h.app.panel.as_ref().unwrap();
    assert!(!p.running);
    let f = h.frame();
    assert!(!f.contains("reason for the replay log"), "{f}");
    assert!(!f.contains("reason for replaying"), "{f}");
    assert!(!f.contains("to confirm"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_errors_give_the_position_once() {
    let (mut h, failed, _dir) = demo_harness().await;
    open_at_charge(&mut h, &failed).await;
    h.keys("e");
    h.type_text("\"payment_token\": ");
    let f = h.frame();
    let status = f
        .lines()
        .find(|l| l.contains("✗ line"))
        .expect("the editor's status line");
    assert!(
        status.contains("✗ line 3, column 1: expected value"),
        "{status}"
    );
    assert!(!status.contains("at line"), "{status}");
    h.keys("Esc d");
    let m = message(&h);
    assert_eq!(m.matches("line 3").count(), 1, "{m}");
    assert!(!m.contains("at line"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_writing_key_alike_and_the_footer_offers_none() {
    let (mut h, failed, _dir, store) = demo_harness_and_store().await;
    // Not read-only: the footer offers them.
    let f = footer(&h.frame());
    assert!(
        f.contains("e edit") && f.contains("d dry run") && f.contains("R replay"),
        "{f}"
    );
    h.app.cfg.readonly = true;
    open_at_charge(&mut h, &failed).await;
    h.keys("Backspace Space");
    assert_eq!(h.app.marked.len(), 1);
    h.keys("Tab");
    for k in ["e", "d", "R", "b", "B"] {
        h.keys(if k == "b" || k == "B" { "BackTab" } else { "" });
        h.keys(k);
        assert!(h.app.take_requests().is_empty(), "{k}: nothing asked");
        assert!(h.app.editor.is_none(), "{k}");
        assert!(h.app.panel.is_none(), "{k}");
        assert_eq!(h.app.mode, Mode::Normal, "{k}: no prompt");
        let m = h.app.message.clone().unwrap();
        assert!(m.error, "{k}");
        assert_eq!(m.text, READONLY_REFUSAL, "{k}: the same message");
        h.keys(if k == "b" || k == "B" { "Tab" } else { "" });
    }
    h.settle().await;
    assert!(replays(&store, &failed).await.is_empty());
    // No writing key in any footer.
    for _ in 0..3 {
        h.app.message = None;
        let f = footer(&h.frame());
        for hint in ["dry run", "replay", " edit", "batch"] {
            assert!(!f.contains(hint), "{hint} offered: {f}");
        }
        h.keys("Tab");
    }
    // Help says they are refused.
    h.keys("?");
    let f = h.frame();
    assert!(f.contains("(read-only: refused) Replay for real"), "{f}");
}
