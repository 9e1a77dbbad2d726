//! Finding, keeping and sharing personal data the way a user would: the
//! built binary on the demo's store. `scan-pii` finds the demo's personal
//! fields (and card numbers planted in a saga of its own) without printing
//! a value, and its snippet, pasted into the config, declares them;
//! `[compliance.retention]` rules per saga name are written at capture on
//! SQLite and PostgreSQL; `export --anonymize` leaves no original value in
//! the bundle, keeps the same pseudonym for the same value, draws new ones
//! for each export, and the bundle imports, lists, diffs and dry-runs.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use std::collections::BTreeSet;
use std::process::{Command, Output};

use cli_world::{namespaced_stores, stderr, store_usable, World, BIN};
use serde_json::{json, Value};

use sagascope::model::{SagaStatus, Snapshot, Timestamp};
use sagascope::store::{self, OpenOptions, SagaFilter, SagaPageRequest, SnapshotStore, StoreUrl};

/// A planted card number, and a second one written with dashes.
const CARD: &str = "4111 1111 1111 1111";
const CARD_DASHED: &str = "5500-0055-5555-5559";
const IBAN: &str = "NL91 ABNA 0417 1643 00";
const SHARED_EMAIL: &str = "jane.doe@example.org";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// The store underneath, with no protection layer: what is really stored.
async fn raw_store(url: &str) -> std::sync::Arc<dyn SnapshotStore> {
    store::open(&StoreUrl::new(url), &OpenOptions::default())
        .await
        .unwrap()
}

fn all_snapshots(url: &str) -> Vec<Snapshot> {
    rt().block_on(async {
        let s = raw_store(url).await;
        let page = s
            .list_sagas(
                &SagaFilter::default(),
                &SagaPageRequest {
                    limit: 10_000,
                    after: None,
                },
            )
            .await
            .unwrap();
        let ids: Vec<String> = page.sagas.into_iter().map(|s| s.saga_id).collect();
        s.snapshots_of_sagas(&ids).await.unwrap().items
    })
}

/// Two PaymentSaga runs holding card numbers, an IBAN and an email they
/// share, beside ids and SKUs that must not be reported.
fn plant_payments(url: &str) -> Vec<String> {
    let rt = rt();
    let s = rt.block_on(raw_store(url));
    let mut ids = Vec::new();
    for i in 0..2 {
        let id = uuid::Uuid::new_v4().to_string();
        let snap = Snapshot::new(
            id.clone(),
            "PaymentSaga",
            "capture",
            0,
            SagaStatus::Executing,
            common::ctx(json!({
                "payment_id": format!("pay-{:08}", 4_000_000 + i),
                "sku": "SKU-MUG-0001",
                "amount_cents": 1_234_567_890_123i64,
                "lines": [{"sku": "SKU-TEE", "note": CARD}, {"sku": "SKU-CAP", "note": CARD_DASHED}],
                "payout": {"account": IBAN},
                "contact": SHARED_EMAIL,
                "placed": "2026-11-30",
            })),
            vec![],
        );
        rt.block_on(s.save_snapshot(&snap)).unwrap();
        ids.push(id);
    }
    ids
}

fn config(w: &World, text: &str) -> String {
    let p = w.path("config.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The string values of the demo's personal fields (and the planted ones).
fn personal_values(snaps: &[Snapshot]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in snaps {
        let c = &s.context;
        for v in [
            &c.get("customer").and_then(|c| c.get("email")),
            &c.get("customer").and_then(|c| c.get("id")),
            &c.get("payment_token"),
            &c.get("shipping_address").and_then(|a| a.get("street")),
            &c.get("traveler").and_then(|t| t.get("email")),
            &c.get("traveler").and_then(|t| t.get("name")),
            &c.get("card").and_then(|t| t.get("token")),
            &c.get("itinerary_sent_to"),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(s) = v.as_str() {
                out.insert(s.to_string());
            }
        }
    }
    for v in [CARD, CARD_DASHED, IBAN, SHARED_EMAIL] {
        out.insert(v.to_string());
    }
    out
}

#[test]
fn scan_pii_finds_the_demos_personal_fields_and_planted_cards_and_prints_no_value() {
    let w = World::sqlite();
    w.ok(&["demo", "--no-tui", "--orders", "4", "--trips", "2"]);
    plant_payments(&w.store);
    let cfg = config(
        &w,
        "[compliance.sensitive]\nOrderSaga = [\"customer.email\"]\n",
    );

    let o = w.run(&["--config", &cfg, "scan-pii", "--json"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["values_printed"], false);
    let report = &doc["report"];
    assert_eq!(report["sagas_in_store"], 8);
    let found: Vec<(String, String, bool, Vec<String>)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["saga_name"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
                f["declared"].as_bool().unwrap(),
                f["matched"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let get = |name: &str, path: &str| {
        found
            .iter()
            .find(|f| f.0 == name && f.1 == path)
            .unwrap_or_else(|| panic!("{name} {path} not found in {found:#?}"))
            .clone()
    };
    let email = get("OrderSaga", "customer.email");
    assert!(email.2, "customer.email is declared");
    assert!(email.3.contains(&"email".to_string()));
    let addr = get("OrderSaga", "shipping_address.*");
    assert!(!addr.2);
    assert!(
        addr.3.contains(&"key name: address".to_string()),
        "{addr:?}"
    );
    let token = get("OrderSaga", "payment_token");
    assert_eq!(token.3, ["key name: token"]);
    get("TripBookingSaga", "traveler.email");
    get("TripBookingSaga", "traveler.name");
    assert_eq!(get("PaymentSaga", "lines.*.note").3, ["card number"]);
    assert_eq!(get("PaymentSaga", "payout.account").3, ["iban"]);
    assert_eq!(get("PaymentSaga", "contact").3, ["email"]);
    // Ids, SKUs, amounts, dates, cities are not personal.
    for (name, path, ..) in &found {
        for quiet in [
            "order_id",
            "sku",
            "items",
            "payment_id",
            "amount",
            "placed",
            "city",
            "trip_id",
            "segments",
            "hotel",
        ] {
            assert!(
                !path.starts_with(quiet) && !path.contains(&format!(".{quiet}")),
                "false positive: {name} {path}"
            );
        }
    }

    // No value in either output, JSON or table.
    let table = w.run(&["--config", &cfg, "scan-pii"]);
    assert!(table.status.success());
    let table_text = output_text(&table);
    assert!(
        table_text.contains("values are never printed"),
        "{table_text}"
    );
    let values = personal_values(&all_snapshots(&w.store));
    for text in [output_text(&o), table_text.clone()] {
        for v in &values {
            assert!(!text.contains(v.as_str()), "the value {v:?} was printed");
        }
    }

    // The snippet, pasted into the config, declares everything found.
    let snippet = report["suggested_config"].as_str().unwrap();
    assert!(snippet.starts_with("[compliance.sensitive]\n"), "{snippet}");
    assert!(table_text.contains(snippet), "{table_text}");
    let cfg = config(&w, snippet);
    let again: Value =
        serde_json::from_slice(&w.run(&["--config", &cfg, "scan-pii", "--json"]).stdout).unwrap();
    let findings = again["report"]["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        assert_eq!(f["declared"], true, "{f}");
    }
    assert_eq!(again["report"]["suggested_config"], "");

    // A sample reads no more than asked, spread over the saga names; an
    // auditor's read-only session may scan.
    let small: Value = serde_json::from_slice(
        &w.run(&["--readonly", "scan-pii", "--sample", "3", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(small["report"]["snapshots_read"], 3);
    let names: BTreeSet<&str> = small["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["saga_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "one saga of each name: {names:?}");
}

#[test]
fn retention_rules_per_saga_name_are_written_at_capture_on_sqlite_and_postgres() {
    for (backend, url) in namespaced_stores() {
        if backend == "redis" {
            continue;
        }
        let w = if url.is_empty() {
            World::sqlite()
        } else {
            if !store_usable(backend, &url) {
                continue;
            }
            World::with_store(&url)
        };
        let cfg = config(
            &w,
            "[compliance.retention]\nOrderSaga = \"7y\"\n\"*\" = \"12h\"\n",
        );
        w.ok(&[
            "--config", &cfg, "demo", "--no-tui", "--orders", "2", "--trips", "1",
        ]);
        let url = if url.is_empty() { w.store.clone() } else { url };
        let snaps = all_snapshots(&url);
        let names: BTreeSet<&str> = snaps.iter().map(|s| s.saga_name.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["OrderSaga", "TripBookingSaga"]));
        for s in &snaps {
            let want = if s.saga_name == "OrderSaga" {
                let dt = s.created_at.as_datetime();
                Timestamp::from_datetime(dt.checked_add_months(chrono::Months::new(84)).unwrap())
            } else {
                s.created_at.plus_micros(12 * 3_600_000_000)
            };
            assert_eq!(
                s.retention_until,
                Some(want),
                "{backend}: {} {} created {}",
                s.saga_name,
                s.step_name,
                s.created_at
            );
        }
    }
}

#[test]
fn a_bad_retention_rule_is_one_clear_error_naming_it() {
    let w = World::sqlite();
    plant_payments(&w.store);
    let cfg = config(&w, "[compliance.retention]\nPaymentSaga = \"7 years\"\n");
    let o = w.run(&["--config", &cfg, "sagas", "list"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("[compliance.retention] \"PaymentSaga\" = \"7 years\"")
            && e.contains("such as 30d or 7y"),
        "{e}"
    );
    assert_eq!(
        e.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{e}"
    );
}

/// Runs the binary on another store in the same world (the demo's
/// definitions stay found).
fn run_on(w: &World, store: &str, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--store").arg(store).args(args);
    common::isolate(&mut c, w.dir.path(), w.identity);
    c.output().unwrap()
}

fn ok_on(w: &World, store: &str, args: &[&str]) -> String {
    let o = run_on(w, store, args);
    assert!(o.status.success(), "{args:?}: {}", output_text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The `contact` pseudonym of each planted PaymentSaga in a bundle.
fn planted_contacts(bundle: &str) -> Vec<String> {
    bundle
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("snapshot").cloned())
        .filter(|s| s["saga_name"] == "PaymentSaga")
        .map(|s| s["context"]["contact"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn export_anonymize_leaves_no_original_value_and_the_bundle_imports_lists_diffs_and_dry_runs() {
    let w = World::sqlite();
    w.ok(&["demo", "--no-tui", "--orders", "4", "--trips", "2"]);
    plant_payments(&w.store);
    // customer.id looks like nothing personal: only the config says it is.
    let cfg = config(
        &w,
        "[compliance.sensitive]\nOrderSaga = [\"customer.id\"]\n",
    );
    let originals = all_snapshots(&w.store);
    let mut values = personal_values(&originals);
    assert!(values.iter().any(|v| v.starts_with("cus-")));
    // A replay-log entry whose override and reason hold personal values.
    let failed = w.sagas(&["--status", "rolled_back", "--name", "OrderSaga"]);
    let original = failed[0]["saga_id"].as_str().unwrap().to_string();
    w.ok(&[
        "replay",
        "run",
        &original,
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_new_424242",
        "--reason",
        "the customer, jane.doe@example.org, sent a new card",
        "--dry-run",
    ]);
    values.insert("tok_new_424242".into());

    let b1 = w.path("one.jsonl");
    let b2 = w.path("two.jsonl");
    for b in [&b1, &b2] {
        let o = w.run(&[
            "--config",
            &cfg,
            "export",
            "--all",
            "--anonymize",
            "-o",
            b.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", output_text(&o));
        assert!(stderr(&o).contains("anonymised"), "{}", stderr(&o));
    }
    let one = std::fs::read_to_string(&b1).unwrap();
    let two = std::fs::read_to_string(&b2).unwrap();
    assert_eq!(
        one.lines().next().unwrap(),
        r#"{"sagascope_bundle":2,"anonymized":true}"#
    );
    for v in &values {
        assert!(
            !one.contains(v.as_str()),
            "{v:?} is in the anonymised bundle"
        );
    }
    // Each planted saga's card numbers are replaced by card numbers.
    assert!(
        one.matches("\"note\":\"4").count() >= 2,
        "cards keep their network"
    );

    // The same value in two sagas: the same pseudonym; another export:
    // another one.
    let c1 = planted_contacts(&one);
    let c2 = planted_contacts(&two);
    assert_eq!(c1.len(), 2);
    assert_eq!(c1[0], c1[1], "one value, one pseudonym within an export");
    assert!(c1[0].starts_with("anon-") && c1[0].ends_with("@example.invalid"));
    assert_ne!(c1[0], c2[0], "a new secret for each export");
    assert_ne!(one, two);

    // Into a fresh store: import says what it is, and the sagas list, diff
    // and dry-run.
    let fresh = format!("sqlite://{}", w.path("fresh.db").display());
    assert!(one.contains("\"replay\":"), "the replay log is exported");
    let o = run_on(&w, &fresh, &["import", b1.to_str().unwrap()]);
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        stderr(&o).contains("this bundle is anonymised"),
        "{}",
        stderr(&o)
    );
    let list: Value = serde_json::from_str(&ok_on(
        &w,
        &fresh,
        &["sagas", "list", "--all", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(list["sagas"].as_array().unwrap().len(), 8);
    let failed: Value = serde_json::from_str(&ok_on(
        &w,
        &fresh,
        &[
            "sagas",
            "list",
            "--all",
            "--status",
            "rolled_back",
            "--name",
            "OrderSaga",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let order = failed["sagas"][0]["saga_id"].as_str().unwrap().to_string();
    let diff = ok_on(
        &w,
        &fresh,
        &["diff", &order, "0", "-1", "--format", "paths"],
    );
    assert!(diff.contains("reservation_id"), "{diff}");
    for v in &values {
        assert!(!diff.contains(v.as_str()), "{v:?} in the diff");
    }
    let plan: Value = serde_json::from_str(&ok_on(
        &w,
        &fresh,
        &[
            "replay",
            "run",
            &order,
            "--from-step",
            "charge_payment",
            "--override",
            "payment_token=tok_valid",
            "--dry-run",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let p = &plan["plan"];
    assert_eq!(
        p["steps_to_run"],
        json!(["reserve_inventory", "charge_payment", "ship_order"])
    );
    assert_eq!(p["merged_context"]["payment_token"], "tok_valid");
    let email = p["merged_context"]["customer"]["email"].as_str().unwrap();
    assert!(email.ends_with("@example.invalid"), "{email}");
}
