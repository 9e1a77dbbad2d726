//! Keys typed faster than the store answers all land, in order; new sagas
//! and snapshots appear without a key.
//!
//! The keys here are dispatched back to back with no wait between them,
//! as a terminal delivers a burst: whatever they act on is still loading
//! when they arrive.

use super::*;
use sagascope::model::SagaSummary;

/// A harness on `store` whose App looks for news every second.
async fn live_harness(store: Arc<dyn SnapshotStore>, label: &str) -> Harness {
    let mut cfg = test_config(label, std::env::temp_dir());
    cfg.live = Some(std::time::Duration::from_secs(1));
    let mut h = Harness::new(store, cfg, now(), 160, 45);
    h.settle().await;
    h
}

/// The clock moves on by `secs`: a live poll is due.
async fn tick(h: &mut Harness, secs: i64) -> Timestamp {
    let at = h.app.now.plus_micros(secs * 1_000_000);
    h.dispatch(Action::Tick(at));
    h.settle().await;
    at
}

fn selected(h: &Harness) -> &SagaSummary {
    &h.app.list.sagas[h.app.list.selected]
}

fn line_with<'a>(frame: &'a str, what: &str) -> &'a str {
    frame
        .lines()
        .find(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no line with {what:?} in\n{frame}"))
}

/// A snapshot of a new saga (or the next one of `saga_id`), `secs` after
/// the hand saga's last one.
fn later(saga_id: &str, name: &str, i: i64, status: SagaStatus, secs: i64) -> Snapshot {
    let mut s = Snapshot::new(
        saga_id,
        name,
        format!("step_{i}"),
        i,
        status,
        ctx(json!({"order_id": saga_id, "i": i})),
        vec![],
    );
    s.created_at = t0().plus_micros(7_204_000_000 + secs * 1_000_000);
    s.retention_until = None;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_keys_lands_in_order_while_sagas_and_the_snapshot_load() {
    let mut h = harness(160, 45).await;
    let third = h.app.list.sagas[2].saga_id.clone();
    // j j j k: the third saga (each move starts loading another one);
    // l opens it, e edits its snapshot (neither is loaded yet), and the
    // text typed next belongs in the editor, not to the command keys.
    h.keys("j j j k l e");
    h.type_text("\"burst\": 7");
    assert!(h.app.editor.is_none(), "the snapshot cannot be loaded yet");
    assert!(h.app.held_keys() > 0, "the keys wait for it");
    h.settle().await;
    assert_eq!(h.app.held_keys(), 0);
    let e = h.app.editor.as_ref().expect("e opened the editor");
    assert_eq!(e.saga_id, third);
    let f = h.frame();
    assert!(line_with(&f, "Override · ").contains(&third[..8]), "{f}");
    assert!(f.contains("\"burst\": 7"), "{f}");
    assert!(f.contains("+ $.burst: 7"), "{f}");
    assert!(f.contains("✓ valid override, 1 key(s)"), "{f}");
}

/// A store that stops answering does not freeze the keyboard: held keys
/// apply as things stand after a few seconds; `C-c` never waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_keys_give_up_waiting_on_a_silent_store_and_c_c_never_waits() {
    let mut h = harness(160, 45).await;
    // The answers are never read: to the App, the store is silent.
    h.keys("j l e ?");
    assert_eq!(h.app.held_keys(), 2);
    h.dispatch(Action::Tick(h.app.now.plus_micros(1_000_000)));
    assert_eq!(h.app.held_keys(), 2, "still waiting after a second");
    h.dispatch(Action::Tick(h.app.now.plus_micros(3_000_000)));
    assert_eq!(h.app.held_keys(), 0);
    // e found nothing to edit yet; ? after it opened the help.
    assert!(h.app.editor.is_none());
    let f = h.frame();
    assert!(f.contains(" Help: commands and keys "), "{f}");

    let mut h = harness(160, 45).await;
    h.keys("j l e");
    assert_eq!(h.app.held_keys(), 1);
    h.keys("C-c");
    assert!(h.app.quit);
    assert_eq!(h.app.held_keys(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_after_saga_wait_for_the_saga_to_open() {
    let mut h = harness(160, 45).await;
    // The list starts on the hand saga; open another one by id and step
    // through it before the store has answered.
    let other = h.app.list.sagas[4].saga_id.clone();
    h.keys(":");
    h.type_text(&format!("saga {other}"));
    h.keys("Enter l l");
    h.settle().await;
    let t = h.app.timeline.as_ref().unwrap();
    assert_eq!(t.saga.saga_id, other);
    assert_eq!(t.cursor, 2, "both l went to the opened saga's timeline");
    assert!(h.frame().contains(" · 3/5 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_pressed_quickly_walks_to_the_real_end_of_a_long_list() {
    let (store, report) = seeded(&SeedSpec {
        sagas: 2_650,
        failed_ratio: 0.1,
        seed: 5,
        step_spacing_us: 1,
        ..seed_spec()
    })
    .await;
    let mut h = memory_harness(store, 160, 45);
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 100, "one page at first");
    // 30 End presses at once: each waits for the page the one before asked for.
    h.keys(&["End"; 30].join(" "));
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 2_650);
    assert_eq!(h.app.list.selected, 2_649);
    assert!(h.app.list.next.is_none());
    let oldest = report.first_saga_id.unwrap();
    assert_eq!(selected(&h).saga_id, oldest, "the oldest saga is last");
    let f = h.frame();
    assert!(f.contains(" Sagas 2650 · "), "{f}");
    assert!(f.contains(&oldest[..8]), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sagas_wait_above_the_list_and_the_cursor_stays() {
    let store = fixture().await;
    let mut h = live_harness(store.clone(), "memory://").await;
    h.keys("j j");
    h.settle().await;
    let before = selected(&h).saga_id.clone();
    let n = h.app.list.sagas.len();

    let fresh = "00000000-0000-4000-8000-00000000bbbb";
    store
        .save_snapshot(&later(fresh, "FreshSaga", 0, SagaStatus::Executing, 5))
        .await
        .unwrap();
    tick(&mut h, 2).await;
    let f = h.frame();
    assert!(line_with(&f, " Sagas ").contains("↑ 1 new (g)"), "{f}");
    assert_eq!(h.app.list.sagas.len(), n, "not in the list yet");
    assert_eq!(selected(&h).saga_id, before, "the selection did not move");
    assert_eq!(h.app.list.selected, 2);
    assert_eq!(
        h.app.timeline.as_ref().unwrap().saga.saga_id,
        before,
        "the open saga did not change"
    );

    // A second poll with nothing new changes nothing.
    tick(&mut h, 2).await;
    assert_eq!(h.app.list.incoming.len(), 1);

    // Going to the top takes them in.
    h.keys("g");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), n + 1);
    assert_eq!(h.app.list.selected, 0);
    assert_eq!(selected(&h).saga_id, fresh);
    let f = h.frame();
    assert!(!f.contains(" new (g)"), "{f}");
    assert!(line_with(&f, "│● FreshSaga").contains("step_0"), "{f}");
}

/// A live read asked under the old filter is not added to the list
/// filtered since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_read_from_before_a_filter_adds_nothing() {
    let store = fixture().await;
    let mut h = live_harness(store.clone(), "memory://").await;
    let fresh = "00000000-0000-4000-8000-00000000cccc";
    store
        .save_snapshot(&later(fresh, "FreshSaga", 0, SagaStatus::Executing, 5))
        .await
        .unwrap();
    // The poll is asked (its answer waits, unread), then the filter changes.
    let at = h.app.now.plus_micros(2_000_000);
    h.dispatch(Action::Tick(at));
    assert!(h.app.newest_request(Slot::LiveList).is_some());
    h.app.set_filter("status:failed");
    h.flush();
    h.settle().await;
    assert!(!h.app.has_incoming(), "{:?}", h.app.list.incoming);
    assert!(!h.app.list.sagas.is_empty());
    assert!(h
        .app
        .list
        .sagas
        .iter()
        .all(|s| s.latest_status == SagaStatus::Failed));
    assert!(!h.frame().contains(" new ("));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_saga_that_moves_on_updates_in_place() {
    let store = fixture().await;
    let mut h = live_harness(store.clone(), "memory://").await;
    // The second saga in the list (the newest seeded one) fails.
    let second = h.app.list.sagas[1].clone();
    let mut s = later(&second.saga_id, &second.saga_name, 9, SagaStatus::Failed, 3);
    s.step_name = "carrier_down".into();
    store.save_snapshot(&s).await.unwrap();
    tick(&mut h, 2).await;
    assert_eq!(h.app.list.selected, 0, "the selection stays");
    assert_eq!(h.app.list.sagas[1].saga_id, second.saga_id, "no reordering");
    assert_eq!(h.app.list.sagas[1].latest_status, SagaStatus::Failed);
    assert!(!h.app.has_incoming());
    let f = h.frame();
    let row = line_with(&f, &second.saga_id[..8]);
    assert!(row.starts_with("│✖ ") && row.contains("carrie"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_snapshots_join_the_timeline_and_f_follows_them() {
    let store = fixture().await;
    let mut h = live_harness(store.clone(), "memory://").await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, HAND);
    h.keys("Enter l");
    h.settle().await;

    // Not following: the snapshot joins, the cursor stays.
    store
        .save_snapshot(&later(HAND, "HandSaga", 6, SagaStatus::Executing, 1))
        .await
        .unwrap();
    tick(&mut h, 2).await;
    let t = h.app.timeline.as_ref().unwrap();
    assert_eq!(t.marks.len(), 7);
    assert_eq!(t.cursor, 1);
    assert!(h.frame().contains(" · 2/7 "));

    // f: to the newest, and it stays there as more arrive.
    h.keys("f");
    assert_eq!(cursor(&h), 6);
    for i in 7..9 {
        store
            .save_snapshot(&later(HAND, "HandSaga", i, SagaStatus::Executing, i))
            .await
            .unwrap();
        tick(&mut h, 2).await;
        assert_eq!(cursor(&h), i as usize, "on the newest");
    }
    let f = h.frame();
    assert!(f.contains(" · 9/9 · following "), "{f}");
    assert!(f.contains("step_8"), "{f}");
    assert_eq!(
        h.app.timeline.as_ref().unwrap().saga.latest_step,
        "step_8",
        "the header follows the newest snapshot"
    );

    // Stepping back stops following.
    h.keys("h");
    store
        .save_snapshot(&later(HAND, "HandSaga", 9, SagaStatus::Completed, 20))
        .await
        .unwrap();
    tick(&mut h, 2).await;
    assert_eq!(cursor(&h), 7);
    let f = h.frame();
    assert!(f.contains(" · 8/10 "), "{f}");
    assert!(!f.contains("following"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_live_updates_nothing_is_asked() {
    let mut h = harness(160, 45).await;
    tick(&mut h, 5).await;
    assert_eq!(h.app.newest_request(Slot::LiveList), None);
    assert_eq!(h.app.newest_request(Slot::LiveTimeline), None);
}

/// The live reads on the server stores: a saga another process writes
/// shows behind the marker, a snapshot joins the open timeline.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn live_on(url: &str) {
    let (store, _) = connected_on(url).await;
    let mut h = live_harness(store.clone(), url).await;
    assert_eq!(h.app.list.sagas.len(), 1);
    let fresh = common::saga_id();
    store
        .save_snapshot(&later(&fresh, "FreshSaga", 0, SagaStatus::Executing, 5))
        .await
        .unwrap();
    store
        .save_snapshot(&later(HAND, "HandSaga", 6, SagaStatus::Completed, 6))
        .await
        .unwrap();
    tick(&mut h, 2).await;
    assert_eq!(h.app.list.incoming.len(), 1, "{:?}", h.app.list.incoming);
    assert_eq!(h.app.list.incoming[0].saga_id, fresh);
    assert_eq!(h.app.list.sagas[0].latest_status, SagaStatus::Completed);
    assert_eq!(h.app.timeline.as_ref().unwrap().marks.len(), 7);
    assert!(h.frame().contains("↑ 1 new (g)"));
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_on_postgres() {
    const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
    if !common::backend_available("postgres", PG, common::tcp_open("127.0.0.1:5432")) {
        return;
    }
    live_on(&format!("{PG}?schema=t_{}", common::unique_tag())).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_on_redis() {
    const REDIS: &str = "redis://127.0.0.1:6379";
    if !common::backend_available("redis", REDIS, common::tcp_open("127.0.0.1:6379")) {
        return;
    }
    live_on(&format!("{REDIS}/?prefix=t:{}:", common::unique_tag())).await;
}
