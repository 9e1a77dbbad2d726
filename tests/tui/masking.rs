//! Sensitive fields in the TUI: with `[compliance] sensitive` configured,
//! every surface (list, timeline, Context, Diff, Raw, the plan popup,
//! exports) shows them masked; a replay still merges onto the real values;
//! an override holding a masked placeholder is refused; `V` reveals the
//! open saga only after its audit event is written.

use super::*;
use sagascope::compliance::{audit, Compliance, ComplianceConfig, ComplianceStore, SensitivePaths};
use sagascope::engine::demo;
use sagascope::tui::app::{InputKind, Mode};
use sagascope::tui::jobs::ReplayEnv;

/// The failed order (its card token expired): `ord-1002`.
const FAILED: &str = "b1000000-0000-4000-8000-000000000000";
/// A completed order (`ord-1001`).
const COMPLETED: &str = "b0000000-0000-4000-8000-000000000000";
const REASON: &str = "OPS-42 customer disputes the charge";

/// What must never be on screen or in a masked export: the demo orders'
/// emails, card tokens and addresses.
const SECRETS: [&str; 5] = [
    "@example.com",
    "tok_0",
    "\"expired\"",
    "Canal St",
    "Amsterdam",
];

fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows {s:?}:\n{text}");
    }
}

fn config() -> ComplianceConfig {
    let mut cfg = ComplianceConfig::default();
    cfg.sensitive.insert(
        "OrderSaga".into(),
        vec![
            "customer.email".into(),
            "payment_token".into(),
            "shipping_address".into(),
        ],
    );
    cfg
}

/// The demo's four orders written by hand with fixed ids and times (so
/// frames are stable): order 1's token has expired, so it fails at
/// charge_payment and its reservation is released; the others complete.
fn orders() -> Vec<Snapshot> {
    let mut out = Vec::new();
    for (i, (name, ctx)) in demo::demo_sagas(4, 0).into_iter().enumerate() {
        let saga = format!("b{i}000000-0000-4000-8000-000000000000");
        let order = ctx["order_id"].as_str().unwrap().to_string();
        let mut reserved = ctx.clone();
        reserved.insert("reservation_id".into(), json!(format!("res-{order}")));
        let failed = ctx["payment_token"] == "expired";
        let mut rows = vec![
            ("reserve_inventory", 0, SagaStatus::Executing, ctx, vec![]),
            (
                "charge_payment",
                1,
                SagaStatus::Executing,
                reserved.clone(),
                vec!["reserve_inventory"],
            ),
        ];
        if failed {
            rows.push((
                "charge_payment",
                1,
                SagaStatus::RolledBack,
                reserved,
                vec!["reserve_inventory"],
            ));
        } else {
            rows.push((
                "ship_order",
                2,
                SagaStatus::Completed,
                reserved,
                vec!["reserve_inventory", "charge_payment", "ship_order"],
            ));
        }
        for (k, (step, idx, status, c, done)) in rows.into_iter().enumerate() {
            let mut s = Snapshot::new(
                &saga,
                &name,
                step,
                idx,
                status.clone(),
                c,
                done.into_iter().map(str::to_string).collect(),
            );
            s.snapshot_id = format!("00000000-0000-4000-8000-0000000b{i:02}{k:02}");
            s.created_at = t0().plus_micros(i as i64 * 60_000_000 + k as i64 * 1_000_000);
            s.retention_until = None;
            if status == SagaStatus::RolledBack {
                s.extra.insert(
                    "error".into(),
                    json!({"step": "charge_payment", "message": format!("payment declined: card token for order {order} has expired (ask for a new token)")}),
                );
                s.extra
                    .insert("compensated_steps".into(), json!(["reserve_inventory"]));
            }
            out.push(s);
        }
    }
    out
}

/// A TUI over the orders behind the protection layer (the way
/// `Settings::open_store` wraps a store), with the demo's definitions;
/// the raw store underneath, and the folder exports go to.
async fn masked_harness(
    w: u16,
    h: u16,
    readonly: bool,
) -> (Harness, Arc<dyn SnapshotStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    demo::materialize(dir.path()).unwrap();
    let defs = demo::demo_definitions(dir.path()).unwrap();
    let raw: Arc<dyn SnapshotStore> = Arc::new(MemoryStore::new());
    raw.save_snapshots(&orders()).await.unwrap();
    let policy = Compliance::from_config(&config()).await.unwrap();
    let store: Arc<dyn SnapshotStore> =
        Arc::new(ComplianceStore::new(raw.clone(), Arc::new(policy)));
    let mut cfg = test_config("memory://", dir.path().to_path_buf());
    cfg.definitions = defs.names();
    cfg.readonly = readonly;
    cfg.sensitive = Some(Arc::new(
        SensitivePaths::parse(&config().sensitive).unwrap(),
    ));
    let mut hs = Harness::new(store, cfg, now(), w, h);
    hs.jobs.set_replay_env(ReplayEnv {
        definitions: Arc::new(defs),
        identity: "tui-test".into(),
        lock_ttl: sagascope::replay::DEFAULT_LOCK_TTL,
    });
    hs.settle().await;
    (hs, raw, dir)
}

/// Opens the failed order on its charge_payment checkpoint (#1).
async fn open_failed(h: &mut Harness) {
    h.keys(":");
    h.type_text(&format!("saga {FAILED}"));
    h.keys("Enter");
    h.settle().await;
    h.keys("g l");
    h.settle().await;
    assert_eq!(cursor(h), 1);
}

async fn events(raw: &Arc<dyn SnapshotStore>) -> Vec<audit::AuditEvent> {
    audit::list(raw.as_ref(), None, 100).await.unwrap()
}

/// Waits for the export job and returns the one file in `dir`'s exports.
async fn exported(h: &mut Harness, dir: &std::path::Path) -> Vec<String> {
    h.settle().await;
    while h.jobs.busy() {
        h.settle().await;
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_timeline_context_diff_and_raw_show_no_sensitive_value() {
    let (mut h, _raw, _dir) = masked_harness(160, 45, false).await;
    let f = h.frame();
    assert_no_secret("the list", &f);
    assert!(f.contains("\"email\": \"••• #"), "{f}");
    insta::assert_snapshot!("masked_list", stable(&f));

    open_failed(&mut h).await;
    h.keys("G");
    h.settle().await;
    let f = h.frame();
    assert_no_secret("the timeline", &f);
    assert!(f.contains("has expired (ask for a new token)"), "{f}");
    insta::assert_snapshot!("masked_timeline", stable(&f));

    h.keys("g l Tab");
    h.settle().await;
    let f = h.frame();
    assert_no_secret("the Context tab", &f);
    // The shape and the keys stay readable; the values do not.
    assert!(f.contains("\"street\": \"••• #"), "{f}");
    assert!(f.contains("\"id\": \"cus-201\""), "{f}");
    insta::assert_snapshot!("masked_context", stable(&f));

    // Diff against another order: the masked paths changed, and say
    // only that.
    h.keys(":");
    h.type_text(&format!("saga {COMPLETED}"));
    h.keys("Enter");
    h.settle().await;
    h.keys("g l p");
    open_failed(&mut h).await;
    h.keys("2");
    h.settle().await;
    let f = h.frame();
    assert_no_secret("the Diff tab", &f);
    assert!(f.contains("~ $.customer.email: changed (masked)"), "{f}");
    assert!(f.contains("~ $.payment_token: changed (masked)"), "{f}");
    assert!(
        f.contains("~ $.shipping_address.street: changed (masked)"),
        "{f}"
    );
    assert!(
        f.contains("~ $.customer.id: \"cus-200\" → \"cus-201\""),
        "{f}"
    );
    insta::assert_snapshot!("masked_diff", stable(&f));

    h.keys("3");
    h.settle().await;
    let f = h.frame();
    assert_no_secret("the Raw tab", &f);
    insta::assert_snapshot!("masked_raw", stable(&f));
}

/// The frame with each masked value's fingerprint (random per process)
/// replaced by `######`; ids and the clock are fixed already.
fn stable(f: &str) -> String {
    let mut out = String::with_capacity(f.len());
    let mut rest = f;
    while let Some(i) = rest.find("• #") {
        let (head, tail) = rest.split_at(i + "• #".len());
        out.push_str(head);
        let hex = tail.chars().take_while(char::is_ascii_hexdigit).count();
        if hex == 6 {
            out.push_str("######");
            rest = &tail[6..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_is_masked_and_the_replay_merges_the_override_onto_the_real_values() {
    let (mut h, raw, _dir) = masked_harness(160, 45, false).await;
    open_failed(&mut h).await;
    h.keys("e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    let f = h.frame();
    assert_no_secret("the override editor", &f);
    h.keys("Esc d");
    h.settle().await;
    let f = h.frame();
    let plan = h.app.panel.as_ref().expect("the plan is shown");
    let text: String = plan.lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert_no_secret("the plan popup", &text);
    assert_no_secret("the plan frame", &f);
    assert!(
        !text.contains("tok_valid"),
        "the override is masked too:\n{text}"
    );
    assert!(
        text.contains("~ $.payment_token: changed (masked)"),
        "{text}"
    );
    assert!(f.contains("plan OK: nothing has run"), "{f}");
    insta::assert_snapshot!("masked_plan", stable(&f));
    h.keys("Esc");

    // For real: the new saga holds the override and, where the override
    // said nothing, the real values the checkpoint had (never `•••`).
    h.keys("R");
    h.settle().await;
    h.type_text(sagascope::model::short_id(FAILED));
    h.keys("Enter");
    h.type_text("new card token");
    h.keys("Enter");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while h.app.panel.as_ref().is_some_and(|p| p.running) {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay did not finish"
        );
        h.settle().await;
    }
    let f = h.frame();
    assert_no_secret("the replay panel", &f);
    let new_saga = h
        .app
        .panel
        .as_ref()
        .and_then(|p| p.new_saga.clone())
        .unwrap_or_else(|| panic!("the replay made no saga:\n{f}"));
    assert!(
        f.contains(&format!("new saga {new_saga} is completed")),
        "{f}"
    );
    let last = raw.latest_snapshot(&new_saga, None).await.unwrap().unwrap();
    assert_eq!(last.context["payment_token"], "tok_valid");
    assert_eq!(last.context["customer"]["email"], "customer201@example.com");
    assert_eq!(last.context["shipping_address"]["street"], "11 Canal St");
    // And on screen the new saga is masked like the rest.
    h.keys("Enter");
    h.settle().await;
    assert_eq!(h.app.timeline.as_ref().unwrap().saga.saga_id, new_saga);
    assert_no_secret("the new saga", &h.frame());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_holding_a_masked_placeholder_is_refused_with_its_path() {
    let (mut h, raw, _dir) = masked_harness(160, 45, false).await;
    open_failed(&mut h).await;
    // The full context, masked, as the starting point.
    h.keys("e C-f");
    let f = h.frame();
    assert_no_secret("the editor's full context", &f);
    assert!(f.contains("✗ masked placeholder at customer.email"), "{f}");
    h.keys("Esc d");
    assert!(h.app.panel.is_none(), "nothing was planned");
    let m = message(&h);
    assert!(
        m.contains("the override holds a masked placeholder at customer.email, not data"),
        "{m}"
    );
    assert!(m.contains("nothing was planned or replayed"), "{m}");
    h.keys("R");
    assert!(
        message(&h).contains("masked placeholder"),
        "{}",
        message(&h)
    );
    h.settle().await;
    assert!(replays(&raw, FAILED).await.is_empty(), "nothing was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masked_export_holds_no_sensitive_value() {
    let (mut h, raw, dir) = masked_harness(160, 45, false).await;
    open_failed(&mut h).await;
    h.keys("Tab x");
    let files = exported(&mut h, dir.path()).await;
    assert_eq!(files.len(), 1);
    assert_no_secret("the export", &files[0]);
    assert!(files[0].contains("\"•••"), "{}", files[0]);
    assert!(events(&raw).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reveal_asks_a_reason_writes_an_audit_event_then_shows_the_values_until_v_again() {
    let (mut h, raw, dir) = masked_harness(160, 45, false).await;
    open_failed(&mut h).await;
    h.keys("Tab V");
    assert!(matches!(
        h.app.mode,
        Mode::Input {
            kind: InputKind::RevealReason,
            ..
        }
    ));
    let f = h.frame();
    assert!(
        footer(&f).contains("reason for revealing b1000000 (audit log; Esc cancels)"),
        "{f}"
    );
    // No reason, no reveal.
    h.keys("Enter");
    assert!(message(&h).contains("needs a reason"), "{}", message(&h));
    h.keys("V");
    h.type_text(REASON);
    h.keys("Enter");
    h.settle().await;
    let f = h.frame();
    assert!(f.contains(&format!("revealed: {REASON}")), "{f}");
    assert!(f.contains("\"email\": \"customer201@example.com\""), "{f}");
    assert!(f.contains("\"payment_token\": \"expired\""), "{f}");
    insta::assert_snapshot!("revealed_context", stable(&f));

    let ev = events(&raw).await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].action, "reveal");
    assert_eq!(ev[0].actor, "tui-test");
    assert_eq!(ev[0].saga_id.as_deref(), Some(FAILED));
    assert_eq!(ev[0].reason.as_deref(), Some(REASON));
    for p in ["customer.email", "payment_token", "shipping_address.street"] {
        assert!(ev[0].paths.iter().any(|x| x == p), "{:?}", ev[0].paths);
    }
    let event_text = serde_json::to_string(&ev[0]).unwrap();
    assert_no_secret("the audit event", &event_text);

    // An export while revealed is unmasked, with an audit event of its own.
    h.keys("x");
    let files = exported(&mut h, dir.path()).await;
    assert_eq!(files.len(), 1);
    assert!(files[0].contains("customer201@example.com"), "{}", files[0]);
    let ev = events(&raw).await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev[1].details["export"].as_str().unwrap().ends_with(".json"));

    // V again: masked again, and nothing more is written.
    h.keys("V");
    h.settle().await;
    let f = h.frame();
    assert!(!f.contains("revealed:"), "{f}");
    assert_no_secret("the saga masked again", &f);
    assert_eq!(events(&raw).await.len(), 2);

    // Revealed, then another saga opened: the reveal ends with it.
    h.keys("V");
    h.type_text("second look");
    h.keys("Enter");
    h.settle().await;
    assert!(h.frame().contains("revealed: second look"));
    h.keys(":");
    h.type_text(&format!("saga {COMPLETED}"));
    h.keys("Enter");
    h.settle().await;
    let f = h.frame();
    assert!(!f.contains("revealed:"), "{f}");
    assert_no_secret("another saga after a reveal", &f);
    assert!(h.app.revealed.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esc_cancels_a_reveal_and_read_only_mode_refuses_it_without_an_event() {
    let (mut h, raw, _dir) = masked_harness(160, 45, false).await;
    open_failed(&mut h).await;
    h.keys("V");
    h.type_text("just curious");
    h.keys("Esc");
    h.settle().await;
    assert!(
        message(&h).contains("reveal cancelled: nothing was revealed and nothing was written"),
        "{}",
        message(&h)
    );
    assert!(h.app.revealed.is_none());
    assert_no_secret("after Esc", &h.frame());
    assert!(events(&raw).await.is_empty());

    let (mut h, raw, _dir) = masked_harness(160, 45, true).await;
    open_failed(&mut h).await;
    h.keys("V");
    assert_eq!(h.app.mode, Mode::Normal, "no reason is asked for");
    let m = message(&h);
    assert!(
        m.contains("read-only mode: revealing writes an audit event"),
        "{m}"
    );
    assert_no_secret("read-only", &h.frame());
    assert!(events(&raw).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_summary_shows_the_override_masked_and_runs_it_unmasked() {
    let (mut h, _raw, _dir) = masked_harness(160, 45, false).await;
    assert!(footer(&h.frame()).contains("V reveal"), "{}", h.frame());
    open_failed(&mut h).await;
    h.keys("e");
    h.type_text("\"payment_token\": \"tok_valid\"");
    h.keys("Esc Backspace M b");
    let form = h.app.batch_form.as_ref().expect("the batch form");
    assert_eq!(form.over, r#"{"payment_token":"tok_valid"}"#);
    h.keys("Enter");
    h.settle().await;
    let f = h.frame();
    assert!(
        f.contains("Batch dry run · 4 saga(s) from charge_payment"),
        "{f}"
    );
    assert!(f.contains(r#"override: {"payment_token":"••• #"#), "{f}");
    assert!(!f.contains("tok_valid"), "{f}");
    assert_no_secret("the batch summary", &f);
    assert!(f.contains("4 saga(s): ok 1 · failed 0 · skipped 3"), "{f}");
    // B goes on with the real override, not the masked line.
    h.keys("B");
    let form = h.app.batch_form.as_ref().expect("the batch form");
    assert_eq!(form.over, r#"{"payment_token":"tok_valid"}"#);
}
