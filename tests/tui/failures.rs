//! Failures explained where a user looks: the error on the timeline row
//! and in the detail header, status/error/compensated steps in the Diff
//! tab, long values wrapped in Raw, compensated and failed steps coloured;
//! `x` writing what the focused tab shows; the overview page.

use super::*;
use ratatui::style::Color;

const ORDER_A: &str = "00000000-0000-4000-8000-0000000000a1";
const ORDER_B: &str = "00000000-0000-4000-8000-0000000000a2";
const ORDER_C: &str = "00000000-0000-4000-8000-0000000000a3";
const TRIP: &str = "00000000-0000-4000-8000-0000000000b1";

fn declined(order: &str) -> String {
    format!("payment declined: card token for order {order} has expired (ask for a new token)")
}

/// The id of a saga's `i`th snapshot (a UUID naming both).
fn snap_id(saga_id: &str, i: usize) -> String {
    format!("{}{}00000000{i:02}", &saga_id[..24], &saga_id[34..])
}

/// One saga's snapshots: `steps` (name, status) one second apart from
/// `start`, the last with the error and compensated steps given.
fn saga(
    id: &str,
    name: &str,
    start: Timestamp,
    steps: &[(&str, SagaStatus)],
    error: Option<(String, &[&str])>,
) -> Vec<Snapshot> {
    let n = steps.len();
    steps
        .iter()
        .enumerate()
        .map(|(i, (step, status))| {
            let mut s = Snapshot::new(
                id,
                name,
                *step,
                i as i64,
                status.clone(),
                // The failing snapshot keeps the context of the one before.
                ctx(json!({"order_id": "ord-1002", "n": i.min(n.saturating_sub(2))})),
                steps[..i].iter().map(|(s, _)| s.to_string()).collect(),
            );
            s.snapshot_id = snap_id(id, i);
            s.created_at = start.plus_micros(i as i64 * 1_000_000);
            s.retention_until = None;
            if let (true, Some((e, comp))) = (i + 1 == n, &error) {
                s.extra.insert("error".into(), json!(e));
                s.extra.insert("compensated_steps".into(), json!(comp));
            }
            s
        })
        .collect()
}

/// Three orders that failed at charge_payment (ids differ: one group), one
/// of them more than a day ago; a trip that failed at rent_car; two
/// completed orders.
async fn failures_store() -> Arc<dyn SnapshotStore> {
    use SagaStatus::*;
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let order = |id: &str, ago_us: i64, ord: &str| {
        saga(
            id,
            "OrderSaga",
            now().plus_micros(-ago_us),
            &[
                ("reserve_inventory", Executing),
                ("charge_payment", Executing),
                ("charge_payment", RolledBack),
            ],
            Some((declined(ord), &["reserve_inventory"][..])),
        )
    };
    let hour = 3_600_000_000;
    let mut all = order(ORDER_A, hour / 2, "ord-1002");
    all.extend(order(ORDER_B, 3 * hour, "ord-1006"));
    all.extend(order(ORDER_C, 30 * hour, "ord-1010"));
    all.extend(saga(
        TRIP,
        "TripBookingSaga",
        now().plus_micros(-2 * hour),
        &[
            ("validate_request", Executing),
            ("hold_flights", Executing),
            ("hold_hotel", Executing),
            ("rent_car", Executing),
            ("rent_car", RolledBack),
        ],
        Some((
            "no convertible cars available in Oslo (available: compact, estate)".into(),
            &["hold_hotel", "hold_flights"][..],
        )),
    ));
    for (k, ago) in [(1, hour), (2, 5 * hour)] {
        all.extend(saga(
            &format!("00000000-0000-4000-8000-0000000000c{k}"),
            "OrderSaga",
            now().plus_micros(-ago),
            &[
                ("reserve_inventory", Executing),
                ("__completed__", Completed),
            ],
            None,
        ));
    }
    store.save_snapshots(&all).await.unwrap();
    store
}

async fn failures_harness(w: u16, h: u16, export_dir: std::path::PathBuf) -> Harness {
    let mut hs = Harness::new(
        failures_store().await,
        test_config("memory://", export_dir),
        now(),
        w,
        h,
    );
    hs.settle().await;
    hs
}

async fn open(h: &mut Harness, saga_id: &str) {
    h.keys(":");
    h.type_text(&format!("saga {saga_id}"));
    h.keys("Enter");
    h.settle().await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, saga_id);
}

/// The foreground colour of the first cell of `text` on screen.
/// The ids of the listed sagas, in the list's order.
fn listed_ids(h: &Harness) -> Vec<&str> {
    h.app
        .list
        .sagas
        .iter()
        .map(|s| s.saga_id.as_str())
        .collect()
}

fn colour_of(h: &Harness, text: &str) -> Color {
    let buf = h.terminal.backend().buffer();
    for y in 0..buf.area.height {
        let row: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        if let Some(at) = row.find(text) {
            let x = row[..at].chars().count() as u16;
            return buf[(x, y)].fg;
        }
    }
    panic!("{text:?} is not on screen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_saga_says_why_on_its_row_in_the_header_and_in_the_diff() {
    let mut h = failures_harness(160, 45, std::env::temp_dir()).await;
    open(&mut h, ORDER_A).await;
    h.keys("G 2");
    h.settle().await;
    let f = h.frame();
    // The row of the failing snapshot: its step and its error.
    assert!(
        f.contains("▶   2 ⟲ charge_payment: payment declined: card t…"),
        "{f}"
    );
    // The header, whichever tab: the step, the whole error, what was undone.
    assert!(
        f.contains("✖ failed at #2 charge_payment: payment declined:"),
        "{f}"
    );
    assert!(f.contains("(ask for a new token)"), "{f}");
    assert!(f.contains("compensated: reserve_inventory"), "{f}");
    // The diff between executing and rolled back is not "no change".
    assert!(!f.contains("No change"), "{f}");
    assert!(
        f.contains("~ status: \"executing\" → \"rolled_back\""),
        "{f}"
    );
    assert!(f.contains("+ error: \"payment declined: card token"), "{f}");
    assert!(
        f.contains("+ compensated_steps: [\"reserve_inventory\"]"),
        "{f}"
    );
    assert!(f.contains("context: no change against previous #1"), "{f}");
    insta::assert_snapshot!("failure_diff", f);
    // Colours: the compensated step in the compensation colour, the
    // failing step in the failure colour.
    let th = sagascope::tui::theme::Theme::dark();
    assert_eq!(colour_of(&h, "reserve_inventory ↺"), th.compensating);
    assert_eq!(colour_of(&h, "charge_payment: payment"), th.failed);
    // An earlier snapshot still shows why the saga failed in the header.
    h.keys("g");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains("#0 reserve_inventory executing"), "{f}");
    assert!(f.contains("✖ failed at #2 charge_payment"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_values_wrap_in_the_raw_tab_instead_of_being_cut() {
    let mut h = failures_harness(100, 40, std::env::temp_dir()).await;
    open(&mut h, TRIP).await;
    h.keys("G Tab 3");
    h.settle().await;
    assert_eq!(h.app.focus, Pane::Detail);
    h.keys("G");
    let f = h.frame();
    // The error's line, wrapped whole, indented under its key.
    assert!(
        f.contains("\"error\": \"no convertible cars available in Oslo"),
        "{f}"
    );
    assert!(f.contains("    (available: compact, estate)\","), "{f}");
    assert!(!f.contains("Oslo (ava…"), "{f}");
    insta::assert_snapshot!("raw_wrapped", f);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_writes_what_the_focused_tab_shows_and_the_footer_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let mut h = failures_harness(160, 45, exports.clone()).await;
    open(&mut h, ORDER_A).await;
    h.keys("G Tab 2 x");
    h.settle().await;
    let said = h.app.message.clone().unwrap();
    assert!(!said.error, "{}", said.text);
    let path = said
        .text
        .strip_prefix("exported 1 record(s) to ")
        .expect("the footer names the file");
    assert!(path.starts_with(exports.to_str().unwrap()), "{path}");
    assert!(path.contains("sagascope-diff-00000000-2-"), "{path}");
    let diff: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(diff["fields"][0]["path"], "status");
    assert_eq!(diff["fields"][0]["new"], "rolled_back");
    assert_eq!(diff["fields"][2]["new"], json!(["reserve_inventory"]));
    assert_eq!(diff["b"]["snapshot_id"], snap_id(ORDER_A, 2));
    assert_eq!(diff["a"]["snapshot_id"], snap_id(ORDER_A, 1));
    // The Raw tab: the snapshot record as stored.
    h.keys("3 x");
    h.settle().await;
    let said = h.app.message.clone().unwrap();
    let path = said.text.strip_prefix("exported 1 record(s) to ").unwrap();
    assert!(path.contains("sagascope-snapshot-00000000-2-"), "{path}");
    let snap: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(snap["status"], "rolled_back");
    assert_eq!(snap["error"], declined("ord-1002"));
    // The first snapshot has no diff: said, nothing written.
    h.keys("h h 2 x");
    h.settle().await;
    let said = h.app.message.clone().unwrap();
    assert!(
        said.error && said.text.contains("no diff here"),
        "{}",
        said.text
    );
    assert_eq!(std::fs::read_dir(&exports).unwrap().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_counts_groups_failures_and_lists_a_group() {
    let mut h = failures_harness(160, 45, std::env::temp_dir()).await;
    h.keys("O");
    assert!(h.frame().contains("counting sagas by status"));
    h.settle().await;
    let f = h.frame();
    let d = h.app.overview.as_ref().unwrap().data.clone().unwrap();
    assert_eq!(d.total, 6);
    assert_eq!(
        d.by_status,
        vec![(SagaStatus::Completed, 2), (SagaStatus::RolledBack, 4)]
    );
    // The three orders are one group despite their different order ids,
    // with one real error as its example.
    assert_eq!(d.groups.len(), 2);
    assert_eq!(d.groups[0].step, "charge_payment");
    assert_eq!(d.groups[0].sagas.len(), 3);
    assert_eq!(d.groups[0].example, declined("ord-1002"));
    assert_eq!(d.groups[1].step, "rent_car");
    // The order failed 30 h ago is not in the last day.
    assert_eq!(d.per_hour.iter().sum::<u64>(), 3);
    assert_eq!(d.per_hour[23], 1);
    assert!(f.contains("Overview · 6 saga(s)"), "{f}");
    assert!(f.contains("⟲ rolled_back                   4"), "{f}");
    assert!(
        f.contains(
            "▶      3  charge_payment        payment declined: card token for order ord-1002"
        ),
        "{f}"
    );
    insta::assert_snapshot!("overview", f);
    // A click lands on the page, not on the list hidden under it.
    let selected = h.app.list.selected;
    h.dispatch(Action::Mouse(crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: 5,
        row: 6,
        modifiers: crossterm::event::KeyModifiers::NONE,
    }));
    assert_eq!(h.app.list.selected, selected);
    assert!(h.app.overview.is_some());
    // Enter lists the group's sagas; Esc shows every saga again.
    h.keys("Enter");
    h.settle().await;
    let ids = listed_ids(&h);
    assert_eq!(ids, vec![ORDER_A, ORDER_B, ORDER_C]);
    let f = h.frame();
    assert!(f.contains("Sagas 3 · failed at charge_payment"), "{f}");
    h.keys("Esc");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 6);
    // The second group from the palette's :overview.
    h.keys(":");
    h.type_text("overview");
    h.keys("Enter");
    h.settle().await;
    h.keys("j Enter");
    h.settle().await;
    let ids = listed_ids(&h);
    assert_eq!(ids, vec![TRIP]);
    assert!(h.app.overview.is_none());
}
