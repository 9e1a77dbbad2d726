//! The filter as it is typed, the one saga in hand, and the small things
//! a user saw wrong: each test names what broke.

use super::*;
use sagascope::tui::app::{InputKind, Mode};

fn listed(h: &Harness) -> Vec<String> {
    h.app
        .list
        .sagas
        .iter()
        .map(|s| s.saga_name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_applies_as_it_is_typed_and_matches_part_of_a_name_in_any_case() {
    let mut h = harness(160, 45).await;
    assert_eq!(h.app.list.sagas.len(), 13);
    h.keys("/");
    h.type_text("HAND");
    // No Enter: the list follows the typing.
    h.settle().await;
    assert_eq!(listed(&h), vec!["HandSaga"]);
    assert!(matches!(h.app.mode, Mode::Input { .. }), "still typing");
    insta::assert_snapshot!("filter_as_you_type", h.frame());
    // Each letter narrows; a part no name has empties the list.
    h.type_text("x");
    h.settle().await;
    assert!(h.app.list.sagas.is_empty());
    assert!(h.frame().contains("No sagas match the filter"));
    // Esc goes back to the filter there was before `/`.
    h.keys("Esc");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 13);
    assert_eq!(h.app.list.filter_text, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_or_value_is_an_error_and_the_last_good_filter_stays() {
    let mut h = harness(160, 45).await;
    h.keys("/");
    h.type_text("status:failed");
    h.settle().await;
    let failed = h.app.list.sagas.len();
    assert!(failed > 0 && failed < 13);
    // Every letter of "bogus" is an error: the failed sagas stay listed.
    h.type_text(",bogus");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), failed, "the last good filter stays");
    let f = h.frame();
    assert!(
        footer(&f).contains("✗ status:bogus: unknown status \"bogus\"; known: pending"),
        "{f}"
    );
    insta::assert_snapshot!("filter_error", f);
    // Enter on a query in error says so and applies nothing new.
    h.keys("Enter");
    let m = h.app.message.clone().unwrap();
    assert!(
        m.error && m.text.starts_with("filter not applied: "),
        "{m:?}"
    );
    h.keys("/ C-u");
    h.type_text("colour:red");
    let f = h.frame();
    assert!(
        footer(&f).contains("unknown filter key \"colour:\"; known: status:, step:"),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_line_edits_as_readline_does() {
    let mut h = harness(160, 45).await;
    h.keys("/");
    h.type_text("status:rolled_bak hand");
    h.settle().await;
    assert!(h.app.list.filter_error.is_some(), "rolled_bak is no status");
    // Back over " hand" and into "rolled_bak": insert the missing c.
    h.keys("C-w Backspace Left");
    h.type_text("c");
    h.settle().await;
    assert_eq!(h.app.list.filter_text, "status:rolled_back");
    assert!(h.app.list.filter_error.is_none());
    // End, then a word; Home, then a word in front.
    h.keys("End");
    h.type_text(" hand");
    h.keys("Home");
    h.type_text("step:reserve_inventory ");
    h.settle().await;
    assert_eq!(
        h.app.list.filter_text,
        "step:reserve_inventory status:rolled_back hand"
    );
    assert_eq!(listed(&h), vec!["HandSaga"]);
    let f = h.frame();
    assert!(
        footer(&f).starts_with("/step:reserve_inventory status:rolled_back hand"),
        "{f}"
    );
    // C-u clears what is before the cursor: here, everything.
    h.keys("End C-u");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_and_until_read_times_as_the_cli_does() {
    let mut h = harness(160, 45).await;
    // now is 12:30; the hand saga's last snapshot is at 11:30:04, the
    // seeded ones end before 09:15.
    h.keys("/");
    h.type_text("since:-2h");
    h.settle().await;
    assert_eq!(listed(&h), vec!["HandSaga"]);
    h.keys("C-u");
    h.type_text("until:2026-01-15T10:00:00Z");
    h.settle().await;
    assert_eq!(h.app.list.sagas.len(), 12);
    assert!(!listed(&h).contains(&"HandSaga".to_string()));
    h.keys("C-u");
    h.type_text("since:yesterday");
    let f = h.frame();
    assert!(
        footer(&f).contains("since:yesterday: not a time") && footer(&f).contains("-2h"),
        "{f}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_filter_the_preview_is_a_listed_saga() {
    let mut h = harness(160, 45).await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, HAND);
    h.keys("/");
    h.type_text("status:completed");
    h.settle().await;
    assert!(!h.app.list.sagas.is_empty());
    let first = h.app.list.sagas[0].saga_id.clone();
    assert_eq!(
        h.app.timeline.as_ref().unwrap().saga.saga_id,
        first,
        "the hand saga is rolled back: no longer listed, no longer previewed"
    );
    assert_eq!(h.app.open_row(), Some(h.app.list.selected));
    // Nothing matches: nothing is previewed.
    h.type_text(" hand");
    h.settle().await;
    assert!(h.app.timeline.is_none());
    let f = h.frame();
    assert!(!f.contains("HandSaga"), "{f}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_opened_by_id_is_the_one_the_list_highlights_or_names() {
    let mut h = harness(160, 45).await;
    let other = h.app.list.sagas[5].clone();
    h.keys(":");
    h.type_text(&format!(
        "saga {}",
        sagascope::model::short_id(&other.saga_id)
    ));
    h.keys("Enter");
    h.settle().await;
    h.keys("Esc");
    assert_eq!(h.app.focus, Pane::List);
    assert_eq!(
        h.app.list.selected, 5,
        "the list highlights the opened saga"
    );
    assert_eq!(h.app.open_row(), Some(5));
    // j moves on from the opened saga, not from where the list was.
    h.keys("j");
    h.settle().await;
    assert_eq!(
        h.app.timeline.as_ref().unwrap().saga.saga_id,
        h.app.list.sagas[6].saga_id
    );
    // A saga the filter leaves out: no row is highlighted, the title names it.
    h.keys("/");
    h.type_text("status:completed");
    h.keys("Enter");
    h.settle().await;
    h.keys(":");
    h.type_text(&format!("saga {HAND}"));
    h.keys("Enter");
    h.settle().await;
    h.keys("Esc");
    assert_eq!(h.app.open_row(), None);
    let f = h.frame();
    assert!(f.contains("open: HandSaga 00000000 · not listed"), "{f}");
    insta::assert_snapshot!("open_saga_not_listed", f);
    // Space marks a highlighted saga only: here there is none.
    h.keys("Space");
    assert!(h.app.marked.is_empty());
    assert!(message(&h).contains("no saga highlighted"));
    // j picks a row again: highlight, preview and target agree.
    h.keys("j");
    h.settle().await;
    assert_eq!(h.app.open_row(), Some(h.app.list.selected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_in_the_palette_completes_the_command_and_a_space() {
    let mut h = harness(160, 45).await;
    h.keys(":");
    h.type_text("sa");
    h.keys("Tab");
    let Mode::Input { kind, text, .. } = h.app.mode.clone() else {
        panic!("the palette closed")
    };
    assert_eq!((kind, text.as_str()), (InputKind::Palette, "saga "));
    // Typing the id goes on after the space.
    h.type_text(sagascope::model::short_id(HAND));
    h.keys("Enter");
    h.settle().await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, HAND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_last_active_in_the_future_says_so_instead_of_0s() {
    let store: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    let mut s = Snapshot::new(
        "00000000-0000-4000-8000-00000000f00d",
        "AheadSaga",
        "start",
        0,
        SagaStatus::Executing,
        ctx(json!({})),
        vec![],
    );
    s.created_at = now().plus_micros(5 * 60 * 1_000_000);
    s.retention_until = None;
    store.save_snapshots(&[s]).await.unwrap();
    let mut h = memory_harness(store, 160, 20);
    h.settle().await;
    let f = h.frame();
    let row = f
        .lines()
        .find(|l| l.starts_with('│') && l.contains("AheadSaga"))
        .unwrap();
    assert!(row.contains("in 5m"), "{row}");
    assert!(!row.contains(" 0s "), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_on_screen_mean_connected_even_before_the_health_check_answers() {
    let store = fixture().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut jobs = sagascope::tui::jobs::Jobs::with_store(store, tx);
    let mut app = sagascope::tui::app::App::new(
        test_config("memory://", std::env::temp_dir()),
        now(),
        (160, 45),
    );
    // The health check is slow (it counts rows on a big store): hold it back.
    for r in app.take_requests() {
        if !matches!(r, sagascope::tui::jobs::Request::Health { .. }) {
            jobs.spawn(r);
        }
    }
    while app.list.sagas.is_empty() {
        let a = rx.recv().await.unwrap();
        app.update(a);
    }
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 45)).unwrap();
    term.draw(|f| sagascope::tui::view::draw(f, &app)).unwrap();
    let header: String = (0..160)
        .map(|x| term.backend().buffer()[(x, 0)].symbol().to_string())
        .collect();
    assert!(header.contains("● connected"), "{header}");
    assert!(!header.contains("connecting"), "{header}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_title_gives_the_store_count_not_100_plus() {
    let (store, _) = seeded(&SeedSpec {
        sagas: 250,
        ..seed_spec()
    })
    .await;
    let mut h = memory_harness(store, 160, 45);
    h.settle().await;
    let f = h.frame();
    assert!(f.contains(" Sagas 100 of 250 · time "), "{f}");
    assert!(!f.contains("100+"), "{f}");
    // The count follows the filter.
    h.keys("/");
    h.type_text("status:failed");
    h.settle().await;
    let n = h.app.list.total.unwrap();
    assert!(n > 0 && n < 250);
    assert!(
        h.frame().contains(&format!("Sagas {n} · time"))
            || h.frame().contains(&format!(" of {n} · time"))
    );
}

/// The README's TUI tables, the footer and `?` help all come from the
/// command table: the README section between the markers is its
/// Markdown, word for word (`UPDATE_README=1` rewrites it).
#[test]
fn the_readme_key_tables_are_the_command_table() {
    let km = sagascope::tui::keymap::Keymap::defaults();
    let table = sagascope::tui::keymap::markdown(&km);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        "<!-- keys: generated from the command table (src/tui/keymap.rs) -->\n",
        "<!-- end of keys -->",
    );
    let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
        panic!("README.md has no generated key tables between {start:?} and {end:?}");
    };
    let current = &readme[a + start.len()..b];
    if current != table && std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{}{}", &readme[..a + start.len()], table, &readme[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        current, table,
        "README.md's key tables differ from the command table; run with UPDATE_README=1"
    );
    // Every command the help shows is in the README, with its keys.
    for d in sagascope::tui::keymap::COMMANDS {
        assert!(current.contains(&format!("`{}`", d.name)), "{}", d.name);
    }
}

/// Typing costs one store query at a time: letters typed while a page
/// loads ask nothing; when that page arrives (it is for an older filter
/// and is not shown), the newest text is asked for, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_while_a_page_loads_asks_the_store_once_for_the_newest_text() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use sagascope::tui::jobs::Request;
    let mut app = sagascope::tui::app::App::new(
        test_config("memory://", std::env::temp_dir()),
        now(),
        (160, 45),
    );
    let pages = |reqs: &[Request]| -> Vec<sagascope::store::SagaFilter> {
        reqs.iter()
            .filter_map(|r| match r {
                Request::SagaPage { filter, .. } => Some(filter.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(pages(&app.take_requests()).len(), 1, "the first page");
    let first = app.newest_request(Slot::List).unwrap();
    for c in "/hand".chars() {
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
    assert!(
        pages(&app.take_requests()).is_empty(),
        "nothing asked while a page loads"
    );
    app.update(Action::Data(Box::new(Response::SagaPage {
        id: first,
        append: false,
        result: Ok(sagascope::store::SagaPage {
            sagas: vec![],
            next: None,
            bad: vec![],
            index_warning: None,
        }),
    })));
    let asked = pages(&app.take_requests());
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].name_contains.as_deref(), Some("hand"));
}
