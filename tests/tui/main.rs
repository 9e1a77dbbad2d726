//! The terminal UI, driven through the real App: scripted keys go through
//! `App::update`, background jobs run against a real (in-memory or
//! SQLite) store, and frames are drawn on ratatui's TestBackend. Frames
//! are insta snapshots at fixed sizes with a fixed clock.

#[path = "../common/mod.rs"]
mod common;
mod demo_flow;
mod demo_keys;
mod failures;
mod guards;
mod in_hand;
mod live_input;
mod masking;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use sagascope::model::{ReplayLog, SagaStatus, Snapshot, Timestamp};
use sagascope::seed::{self, SeedSpec};
use sagascope::store::memory::MemoryStore;
use sagascope::store::SnapshotStore;
use sagascope::tui::app::{Action, Conn, Load, Pane, Tab};
use sagascope::tui::jobs::{JobError, Response, Slot};
use sagascope::tui::keymap::Cmd;
use sagascope::tui::testing::{test_config, Harness};

const HAND: &str = "00000000-0000-4000-8000-00000000aaaa";

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn now() -> Timestamp {
    t("2026-01-15T12:30:00Z")
}

fn t0() -> Timestamp {
    t("2026-01-15T09:30:00Z")
}

fn ctx(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A saga written by hand, so its history is known: `attempts` changes at
/// #1 and #3, `token` at #2, a two-hour gap before the failure, then
/// compensation and rollback.
fn hand_saga() -> Vec<Snapshot> {
    let rows: [(&str, SagaStatus, i64, Value); 6] = [
        (
            "reserve_inventory",
            SagaStatus::Executing,
            0,
            json!({"order_id": "o-1", "attempts": 0, "token": "a"}),
        ),
        (
            "charge_payment",
            SagaStatus::Executing,
            1_000_000,
            json!({"order_id": "o-1", "attempts": 1, "token": "a"}),
        ),
        (
            "charge_payment",
            SagaStatus::Executing,
            2_000_000,
            json!({"order_id": "o-1", "attempts": 1, "token": "b"}),
        ),
        (
            "ship_order",
            SagaStatus::Failed,
            7_202_000_000,
            json!({"order_id": "o-1", "attempts": 2, "token": "b", "error": {"step": "ship_order", "message": "carrier down"}}),
        ),
        (
            "ship_order",
            SagaStatus::Compensating,
            7_203_000_000,
            json!({"order_id": "o-1", "attempts": 2, "token": "b"}),
        ),
        (
            "reserve_inventory",
            SagaStatus::RolledBack,
            7_204_000_000,
            json!({"order_id": "o-1", "attempts": 2, "token": "b"}),
        ),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (step, status, off, c))| {
            let mut s = Snapshot::new(HAND, "HandSaga", step, i as i64, status, ctx(c), vec![]);
            s.snapshot_id = format!("00000000-0000-4000-8000-0000000000{i:02}");
            s.created_at = t0().plus_micros(off);
            s.retention_until = None;
            s
        })
        .collect()
}

async fn fixture() -> Arc<dyn SnapshotStore> {
    let (store, report) = seeded(&SeedSpec {
        sagas: 12,
        snapshots_per_saga: 5,
        context_bytes: 300,
        seed: 7,
        saga_spacing_us: 60_000_000,
        step_spacing_us: 250_000,
        ..seed_spec()
    })
    .await;
    store.save_snapshots(&hand_saga()).await.unwrap();
    let replay = ReplayLog::from_json(json!({
        "replay_id": "00000000-0000-4000-8000-0000000000ff",
        "original_saga_id": HAND,
        "new_saga_id": report.first_saga_id.unwrap(),
        "checkpoint_step": "charge_payment",
        "replay_status": "success",
        "initiated_by": "alice",
        "context_override": {"token": "c"},
        "error_message": null,
        "created_at": "2026-01-15T12:00:00+00:00",
        "completed_at": "2026-01-15T12:00:05+00:00"
    }))
    .unwrap();
    store.save_replay(&replay).await.unwrap();
    store
}

/// What the seeded tests start from: one saga from 2026-01-15T09:00:00Z,
/// sagas a second apart, one 50-byte snapshot each, 30 % failed, seed 3.
fn seed_spec() -> SeedSpec {
    SeedSpec {
        sagas: 1,
        snapshots_per_saga: 1,
        context_bytes: 50,
        failed_ratio: 0.3,
        seed: 3,
        start: t("2026-01-15T09:00:00Z"),
        saga_spacing_us: 1_000_000,
        step_spacing_us: 1_000,
    }
}

/// A memory store seeded by `spec`, and what the seeding reports.
async fn seeded(spec: &SeedSpec) -> (Arc<dyn SnapshotStore>, seed::SeedReport) {
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let report = seed::seed(store.as_ref(), spec, |_, _| {}).await.unwrap();
    (store, report)
}

/// A `w` × `h` harness on `store`, configured as `memory://` with exports
/// in the temp dir; not settled yet.
fn memory_harness(store: Arc<dyn SnapshotStore>, w: u16, h: u16) -> Harness {
    Harness::new(
        store,
        test_config("memory://", std::env::temp_dir()),
        now(),
        w,
        h,
    )
}

async fn harness(w: u16, h: u16) -> Harness {
    let store = fixture().await;
    let mut hs = memory_harness(store, w, h);
    hs.settle().await;
    hs
}

/// The last line of a frame: the footer.
fn footer(frame: &str) -> String {
    frame.trim_end().lines().last().unwrap_or("").to_string()
}

/// The text of the footer's message (there must be one).
fn message(h: &Harness) -> String {
    h.app.message.clone().unwrap().text
}

/// The replay log of `saga`, newest first.
async fn replays(store: &Arc<dyn SnapshotStore>, saga: &str) -> Vec<ReplayLog> {
    store.list_replays(saga, None).await.unwrap().items
}

fn cursor(h: &Harness) -> usize {
    h.app.timeline.as_ref().unwrap().cursor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_on_the_newest_saga_with_list_timeline_and_context() {
    let mut h = harness(160, 45).await;
    assert_eq!(h.app.list.sagas.len(), 13);
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, HAND);
    assert!(matches!(h.app.conn, Conn::Connected { .. }));
    insta::assert_snapshot!("main_context", h.frame());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrubbing_moves_the_cursor_and_the_detail_follows() {
    let mut h = harness(160, 45).await;
    h.keys("Enter l l");
    assert_eq!(cursor(&h), 2);
    // Before the background job answers, the pane says so.
    assert!(h.frame().contains("computing…"));
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("#2 charge_payment"), "{f}");
    assert!(f.contains("\"token\": \"b\""), "{f}");
    h.keys("G");
    assert_eq!(cursor(&h), 5);
    h.keys("g Right h");
    assert_eq!(cursor(&h), 0);
    // [ and ] jump between failures and status changes.
    h.keys("]");
    assert_eq!(cursor(&h), 3);
    h.keys("]");
    assert_eq!(cursor(&h), 4);
    h.keys("[ [");
    assert_eq!(cursor(&h), 3, "no earlier event: stays");
    h.settle().await;
    insta::assert_snapshot!("scrubbed_to_first", h.frame());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_by_status_step_and_id() {
    let mut h = harness(160, 45).await;
    h.keys("/");
    h.type_text("status:failed");
    h.keys("Enter");
    h.settle().await;
    assert!(!h.app.list.sagas.is_empty());
    assert!(h
        .app
        .list
        .sagas
        .iter()
        .all(|s| s.latest_status == SagaStatus::Failed));
    insta::assert_snapshot!("filtered_failed", h.frame());
    h.keys("/");
    for _ in 0.."status:failed".len() {
        h.keys("Backspace");
    }
    h.type_text("step:__completed__");
    h.keys("Enter");
    h.settle().await;
    assert!(!h.app.list.sagas.is_empty());
    assert!(h
        .app
        .list
        .sagas
        .iter()
        .all(|s| s.latest_step == "__completed__"));
    h.keys("Esc");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 13);
    h.keys("/");
    h.type_text("00000000-0000-4000");
    h.keys("Enter");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 1);
    h.keys("/");
    h.type_text(" nothing zzzz");
    h.keys("Enter");
    h.settle().await;
    insta::assert_snapshot!("filtered_empty", h.frame());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_absolute_and_relative() {
    let mut h = harness(160, 45).await;
    h.keys(":");
    h.type_text("at 2026-01-15T09:30:01.500Z");
    h.keys("Enter");
    h.settle().await;
    assert_eq!(cursor(&h), 1);
    // now = 12:30; -2h = 10:30, inside the two-hour gap: the state is #2.
    h.keys("t");
    h.type_text("-2h");
    h.keys("Enter");
    h.settle().await;
    assert_eq!(cursor(&h), 2);
    let f = h.frame();
    assert!(f.contains("state at 2026-01-15T10:30:00"), "{f}");
    h.keys("t");
    h.type_text("2026-01-15T08:00:00Z");
    h.keys("Enter");
    h.settle().await;
    assert_eq!(cursor(&h), 2, "before the first snapshot: cursor stays");
    assert!(h.app.message.as_ref().unwrap().error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_and_diff_also_across_sagas() {
    let mut h = harness(160, 45).await;
    h.keys("Enter l 2");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("~ $.attempts: 0 → 1"), "{f}");
    assert!(f.contains("against previous #0 reserve_inventory"), "{f}");
    h.keys("p G");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("against pinned 00000000#1"), "{f}");
    assert!(f.contains("~ $.token: \"a\" → \"b\""), "{f}");
    insta::assert_snapshot!("diff_against_pin", f);
    // Another saga against the pin.
    h.keys("Tab Tab j");
    h.settle().await;
    assert_ne!(h.app.timeline.as_ref().unwrap().saga.saga_id, HAND);
    let f = h.frame();
    assert!(f.contains("against pinned 00000000#1"), "{f}");
    h.keys("P");
    h.settle().await;
    assert!(h.app.pin.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_did_this_change() {
    let mut h = harness(160, 45).await;
    h.keys("Enter G Tab");
    h.settle().await;
    assert_eq!(h.app.focus, Pane::Detail);
    // Rows: {, order_id, attempts, token, }: put the cursor on attempts.
    h.keys("j j");
    assert_eq!(
        sagascope::tui::content::path_label(&h.app.current_row().unwrap().path),
        "$.attempts"
    );
    h.keys("w");
    h.settle().await;
    assert_eq!(cursor(&h), 3, "attempts became 2 at #3");
    h.keys("w");
    h.settle().await;
    assert_eq!(cursor(&h), 3, "already where it last changed");
    h.keys("W");
    h.settle().await;
    assert_eq!(cursor(&h), 3, "no later change");
    assert!(h
        .app
        .message
        .as_ref()
        .unwrap()
        .text
        .contains("does not change after"));
    h.keys("h h h");
    h.settle().await;
    assert_eq!(cursor(&h), 0);
    h.keys("W");
    h.settle().await;
    assert_eq!(cursor(&h), 1, "attempts 0 → 1 at #1");
    h.keys("j");
    h.keys("W");
    h.settle().await;
    assert_eq!(cursor(&h), 2, "token a → b at #2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_folding_and_search() {
    let mut h = harness(160, 45).await;
    h.keys("Enter l l l Tab");
    h.settle().await;
    let before = h.app.detail_len();
    h.keys("G k");
    // On the error object's close? go to its open row: search for it.
    h.keys("/");
    h.type_text("error");
    h.keys("Enter");
    assert!(h.app.current_row().unwrap().key.as_deref() == Some("error"));
    h.keys("Space");
    assert_eq!(h.app.detail_len(), before - 3);
    let f = h.frame();
    assert!(f.contains("{…} 2 item(s)"), "{f}");
    insta::assert_snapshot!("context_folded_search", f);
    h.keys("Space");
    assert_eq!(h.app.detail_len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_raw_and_replays_with_links() {
    let mut h = harness(160, 45).await;
    h.keys("3");
    h.settle().await;
    assert_eq!(h.app.detail.tab, Tab::Raw);
    insta::assert_snapshot!("raw_tab", h.frame());
    h.keys("4");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("success"), "{f}");
    insta::assert_snapshot!("replays_tab", f);
    let original = h.app.timeline.as_ref().unwrap().saga.saga_id.clone();
    h.keys("o");
    h.settle().await;
    let replay = h.app.timeline.as_ref().unwrap().saga.saga_id.clone();
    assert_ne!(replay, original);
    // The replayed saga points back to its original.
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("This saga is a replay of"), "{f}");
    h.keys("o");
    h.settle().await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_palette_and_saga_command() {
    let mut h = harness(160, 45).await;
    h.keys("?");
    let f = h.frame();
    assert!(f.contains("dry_run"), "{f}");
    insta::assert_snapshot!("help", f);
    h.keys("PageDown PageDown");
    let f = h.frame();
    assert!(f.contains("timeline.next_event"), "{f}");
    h.keys("Esc :");
    h.type_text("so");
    h.keys("Tab");
    let f = h.frame();
    // The command and a space: the argument comes next.
    assert!(f.contains(":sort █"), "{f}");
    h.type_text("name");
    h.keys("Enter");
    assert_eq!(h.app.list.sort, sagascope::tui::app::Sort::Name);
    let names: Vec<&str> = h
        .app
        .list
        .sagas
        .iter()
        .map(|s| s.saga_name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let target = h.app.list.sagas[3].saga_id.clone();
    h.keys(":");
    h.type_text(&format!("saga {}", &target[..8]));
    h.keys("Enter");
    h.settle().await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, target);
    h.keys(":");
    h.type_text("timeline.last");
    h.keys("Enter");
    assert_eq!(cursor(&h), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_loading_empty_error_disconnected() {
    let store = fixture().await;
    let mut h = memory_harness(store, 160, 45);
    insta::assert_snapshot!("loading", h.frame());
    h.settle().await;
    // A failed list page and a lost connection are states, not exits.
    let id = h.app.newest_request(Slot::List).unwrap();
    h.app.update(Action::Data(Box::new(Response::SagaPage {
        id,
        append: false,
        result: Err(JobError {
            message: "cannot reach sqlite:///x.db: disk I/O error".into(),
            unreachable: true,
        }),
    })));
    h.app.list.sagas.clear();
    assert!(matches!(h.app.list.load, Load::Failed(_)));
    assert!(matches!(h.app.conn, Conn::Disconnected { .. }));
    insta::assert_snapshot!("error_disconnected", h.frame());
    // The retry comes when the clock reaches it, and recovers by itself.
    h.app.update(Action::Tick(now().plus_micros(1_500_000)));
    h.flush();
    h.settle().await;
    assert!(matches!(h.app.conn, Conn::Connected { .. }));
    assert_eq!(h.app.list.sagas.len(), 13);

    let empty: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let mut h = memory_harness(empty, 100, 20);
    h.settle().await;
    insta::assert_snapshot!("empty_store", h.frame());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_is_capped() {
    let mut h = harness(80, 24).await;
    let mut t = now();
    for _ in 0..10 {
        let id = h.app.newest_request(Slot::List);
        let _ = id;
        h.app.update(Action::Data(Box::new(Response::Health {
            id: 0,
            result: Ok(std::time::Duration::ZERO),
        })));
        // Stale ids are dropped: still connected.
        assert!(matches!(h.app.conn, Conn::Connected { .. }));
        t = t.plus_micros(60_000_000);
        h.app.update(Action::Tick(t));
        let reqs = h.app.take_requests();
        let hid = reqs
            .iter()
            .find_map(|r| match r {
                sagascope::tui::jobs::Request::Health { id } => Some(*id),
                _ => None,
            })
            .unwrap();
        h.app.update(Action::Data(Box::new(Response::Health {
            id: hid,
            result: Err(JobError {
                message: "down".into(),
                unreachable: true,
            }),
        })));
        let Conn::Disconnected { retry_at, .. } = &h.app.conn else {
            panic!()
        };
        assert!(
            retry_at.as_micros() - t.as_micros() <= sagascope::tui::app::MAX_BACKOFF_S * 1_000_000
        );
        // Reconnect for the next round.
        h.app.update(Action::Tick(t.plus_micros(31_000_000)));
        let hid = h
            .app
            .take_requests()
            .iter()
            .find_map(|r| match r {
                sagascope::tui::jobs::Request::Health { id } => Some(*id),
                _ => None,
            })
            .unwrap();
        h.app.update(Action::Data(Box::new(Response::Health {
            id: hid,
            result: Ok(std::time::Duration::from_millis(1)),
        })));
        h.app.take_requests();
    }
}

/// A Redis that goes away and comes back (a restart, a failover): the
/// retries stay a few seconds apart however long it was down, and `C-r`
/// retries at once instead of waiting for the next one. (The wait used to
/// grow to 30 s: the UI showed a restarted Redis as down for 42 s.)
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_is_retried_every_few_seconds_and_c_r_reconnects_at_once() {
    let Some(mut redis) = common::PrivateRedis::start() else {
        return;
    };
    let url = redis.url(&format!("t:{}:", common::unique_tag()));
    let (store, mut h) = connected_on(&url).await;

    redis.stop();
    // The clock jumps to each retry; every retry fails while it is down.
    assert_retries_stay_a_few_seconds_apart(&mut h, 8).await;

    assert!(redis.restart());
    // The restarted server is empty (no persistence): write the saga again
    // (the store's own connection may need a try to notice the restart).
    let mut saved = false;
    for _ in 0..10 {
        if store.save_snapshots(&hand_saga()).await.is_ok() {
            saved = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(saved, "could not write to the restarted Redis");
    // Without the clock moving, C-r retries now; the first command after a
    // restart may still meet the old connection, so allow a second press.
    c_r_reconnects(&mut h, 3).await;
    assert_eq!(h.app.list.sagas.len(), 1);
}

/// A store at `url` holding the hand saga, and a TUI connected to it
/// listing that one saga.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn connected_on(url: &str) -> (Arc<dyn SnapshotStore>, Harness) {
    use sagascope::store::{OpenOptions, StoreUrl};
    let store = sagascope::store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap();
    store.save_snapshots(&hand_saga()).await.unwrap();
    let mut h = Harness::new(
        store.clone(),
        test_config(url, std::env::temp_dir()),
        now(),
        100,
        30,
    );
    h.settle().await;
    assert!(matches!(h.app.conn, Conn::Connected { .. }));
    assert_eq!(h.app.list.sagas.len(), 1);
    (store, h)
}

/// Presses `C-r` (at most `tries` times, 200 ms apart) until the TUI is
/// connected again; fails if it never is.
#[cfg(any(feature = "redis", feature = "postgres"))]
async fn c_r_reconnects(h: &mut Harness, tries: u32) {
    for _ in 0..tries {
        h.keys("C-r");
        h.settle().await;
        if matches!(h.app.conn, Conn::Connected { .. }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        matches!(h.app.conn, Conn::Connected { .. }),
        "C-r did not reconnect: {:?}",
        h.app.conn
    );
    h.settle().await;
}

/// With the store's server down: each tick past the retry time retries,
/// fails, and sets the next retry 1–5 s later (`rounds` times).
async fn assert_retries_stay_a_few_seconds_apart(h: &mut Harness, rounds: u32) {
    let mut clock = now().plus_micros(60_000_000);
    for round in 0..rounds {
        h.dispatch(Action::Tick(clock));
        h.settle().await;
        let Conn::Disconnected {
            retry_at, attempt, ..
        } = &h.app.conn
        else {
            panic!("round {round}: still {:?} with the server down", h.app.conn)
        };
        assert_eq!(*attempt, round);
        let wait_s = (retry_at.as_micros() - clock.as_micros()) / 1_000_000;
        assert!(
            (1..=5).contains(&wait_s),
            "round {round}: next retry in {wait_s} s"
        );
        clock = *retry_at;
    }
}

/// The same with PostgreSQL: a private cluster killed (as a crash) under a
/// TUI session and started again: retries stay a few seconds apart, `C-r`
/// reconnects, and the saga is still listed (nothing was lost).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_postgres_is_retried_every_few_seconds_and_c_r_reconnects_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut pg) = common::PrivatePostgres::new(dir.path()) else {
        return;
    };
    let (_store, mut h) = connected_on(&pg.url()).await;

    pg.kill();
    assert_retries_stay_a_few_seconds_apart(&mut h, 4).await;

    pg.start();
    c_r_reconnects(&mut h, 5).await;
    assert_eq!(h.app.list.sagas.len(), 1, "the saga survived the crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_and_resized_terminals_draw() {
    let mut h = harness(40, 10).await;
    insta::assert_snapshot!("tiny_40x10", h.frame());
    for (w, hh) in [
        (1, 1),
        (2, 3),
        (10, 4),
        (79, 24),
        (100, 30),
        (0, 0),
        (300, 100),
    ] {
        h.terminal.backend_mut().resize(w, hh);
        h.dispatch(Action::Resize(w, hh));
        h.keys("Tab l ? Esc");
        h.draw();
    }
    h.terminal.backend_mut().resize(100, 30);
    h.dispatch(Action::Resize(100, 30));
    h.keys("Tab Tab Tab");
    h.settle().await;
    insta::assert_snapshot!("medium_100x30", h.frame());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mouse_click_and_wheel_on_the_timeline() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let mut h = harness(160, 45).await;
    let areas =
        sagascope::tui::view::layout(ratatui::layout::Rect::new(0, 0, 160, 45), h.app.focus);
    let tl = areas.timeline.unwrap();
    let ev = |kind, row| {
        Action::Mouse(MouseEvent {
            kind,
            column: tl.x + 3,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    h.dispatch(ev(
        MouseEventKind::Down(MouseButton::Left),
        sagascope::tui::view::timeline_body_top(tl) + 4,
    ));
    assert_eq!(cursor(&h), 4);
    assert_eq!(h.app.focus, Pane::Timeline);
    h.dispatch(ev(MouseEventKind::ScrollUp, tl.y + 5));
    assert_eq!(cursor(&h), 3);
    h.dispatch(ev(MouseEventKind::ScrollDown, tl.y + 5));
    h.dispatch(ev(MouseEventKind::ScrollDown, tl.y + 5));
    assert_eq!(cursor(&h), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_the_saga_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = fixture().await;
    let mut h = Harness::new(
        store,
        test_config("memory://", dir.path().to_path_buf()),
        now(),
        160,
        45,
    );
    h.settle().await;
    h.keys("x");
    h.settle().await;
    while h.jobs.busy() {
        tokio::task::yield_now().await;
        h.settle().await;
    }
    h.keys("Enter l Tab x");
    h.settle().await;
    while h.jobs.busy() {
        h.settle().await;
    }
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let saga: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(saga.as_array().unwrap().len(), 6);
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    assert_eq!(state["current_step"], "charge_payment");
    assert_eq!(state["context"]["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_loop_runs_a_scripted_key_stream_and_quits() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let store = fixture().await;
    let mut h = memory_harness(store, 120, 30);
    let keys = ["l", "l", "q"].map(|c| {
        Action::Key(KeyEvent::new(
            KeyCode::Char(c.chars().next().unwrap()),
            KeyModifiers::NONE,
        ))
    });
    let stream = futures::stream::iter(keys);
    let Harness {
        app,
        jobs,
        rx,
        terminal,
    } = &mut h;
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sagascope::tui::run_loop(terminal, app, jobs, rx, stream, now),
    )
    .await
    .expect("the loop ends on q")
    .unwrap();
    assert!(h.app.quit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_overrides_from_the_config_apply() {
    let store = fixture().await;
    let mut cfg = test_config("memory://", std::env::temp_dir());
    let mut o = std::collections::BTreeMap::new();
    o.insert("timeline.next".to_string(), "n".to_string());
    cfg.keymap = sagascope::tui::Keymap::load(&o).unwrap();
    let mut h = Harness::new(store, cfg, now(), 160, 45);
    h.settle().await;
    h.keys("Enter n n l");
    assert_eq!(cursor(&h), 2, "l no longer scrubs; n does");
    h.app.update(Action::Run(Cmd::TimelineFirst));
    assert_eq!(cursor(&h), 0);
    assert!(h.frame().contains("n next"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_timelines_page_in_and_time_travel_reaches_late_pages() {
    let (store, _) = seeded(&SeedSpec {
        sagas: 1,
        snapshots_per_saga: 300,
        context_bytes: 200,
        failed_ratio: 0.0,
        saga_spacing_us: 1,
        step_spacing_us: 1_000_000,
        ..seed_spec()
    })
    .await;
    let mut h = memory_harness(store, 160, 45);
    // Scrubbable as soon as the first page is in.
    h.flush();
    while h.app.timeline.as_ref().is_none_or(|t| t.marks.is_empty()) {
        let a = tokio::time::timeout(std::time::Duration::from_secs(20), h.rx.recv())
            .await
            .expect("the first timeline page within 20 s")
            .unwrap();
        h.dispatch(a);
    }
    h.keys(":");
    h.type_text("at 2026-01-15T09:04:10.5Z");
    h.keys("Enter");
    h.settle().await;
    let tl = h.app.timeline.as_ref().unwrap();
    assert_eq!(tl.marks.len(), 300);
    assert!(tl.complete);
    assert_eq!(tl.cursor, 250);
    h.keys("Enter G");
    assert_eq!(cursor(&h), 299);
    h.settle().await;
    assert!(h.frame().contains("300/300"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_badge_and_no_colour_theme() {
    let store = fixture().await;
    let mut cfg = test_config("sqlite:///audit.db", std::env::temp_dir());
    cfg.readonly = true;
    cfg.theme = sagascope::tui::Theme::load(Some("high-contrast"), true).unwrap();
    let mut h = Harness::new(store, cfg, now(), 120, 30);
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("READ-ONLY"), "{f}");
    let buf = h.terminal.backend().buffer();
    assert!(buf
        .content
        .iter()
        .all(|c| c.fg == ratatui::style::Color::Reset && c.bg == ratatui::style::Color::Reset));
    insta::assert_snapshot!("readonly_no_colour_120x30", f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_editor_validates_live_shows_the_merged_diff_and_keeps_drafts() {
    let mut h = harness(160, 45).await;
    // The hand saga, snapshot #2 (token "b").
    h.keys("Enter l l");
    h.settle().await;
    h.keys("e");
    let ed = h.app.editor.as_ref().expect("e opens the editor");
    assert_eq!(ed.saga_id, HAND);
    assert_eq!(ed.step_name, "charge_payment");
    assert!(ed.parsed.as_ref().unwrap().is_empty(), "starts empty");
    h.type_text("\"token\": ");
    let f = h.frame();
    let e = h.app.editor.as_ref().unwrap().parsed.clone().unwrap_err();
    assert_eq!((e.line, e.column), (3, 1), "{e:?}");
    assert!(f.contains("✗ line 3, column 1"), "{f}");
    assert!(f.contains("(no diff while the JSON is invalid)"), "{f}");
    h.type_text("\"c\", \"extra\": {\"a\": 1}");
    let f = h.frame();
    assert!(f.contains("✓ valid override, 2 key(s)"), "{f}");
    assert!(f.contains("~ $.token: \"b\" → \"c\""), "{f}");
    assert!(f.contains("+ $.extra: {\"a\":1}"), "{f}");
    assert!(f.contains("merge: shallow"), "{f}");
    insta::assert_snapshot!("editor_valid", f);
    h.keys("C-t");
    assert!(h.frame().contains("merge: patch"));
    // Esc keeps the draft for this saga; e reopens it.
    h.keys("Esc");
    assert!(h.app.editor.is_none());
    assert!(h.app.drafts.contains_key(HAND));
    h.keys("e");
    let ed = h.app.editor.as_ref().unwrap();
    assert_eq!(ed.merge, sagascope::replay::MergeMode::Patch);
    assert_eq!(ed.parsed.as_ref().unwrap().len(), 2);
    // C-f: the whole context to edit; C-x discards the draft.
    h.keys("C-f");
    assert_eq!(
        h.app
            .editor
            .as_ref()
            .unwrap()
            .parsed
            .as_ref()
            .unwrap()
            .get("token"),
        Some(&json!("b"))
    );
    h.keys("C-x");
    assert!(h.app.editor.is_none());
    assert!(!h.app.drafts.contains_key(HAND));
}
