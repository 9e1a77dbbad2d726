//! Masking by default, end to end: with sensitive paths configured, every
//! reading command in every output format shows masks instead of the
//! demo's emails, tokens and addresses (cards keep their last four); diffs
//! say "changed (masked)"; `--reveal --reason` shows the values and leaves
//! an audit event per saga; a real replay of a masked saga starts from the
//! values, not their masks.

#[path = "common/cli_world.rs"]
mod cli_world;
mod common;

use cli_world::{stderr, World};

use serde_json::Value;

const CONFIG: &str = r#"
[compliance.sensitive]
OrderSaga = ["customer.email", "payment_token", "shipping_address"]
TripBookingSaga = ["traveler.email", "traveler.name", "card.token", "itinerary_sent_to"]
CardSaga = ["card_number", "holder.*"]
"#;

/// A saga whose card number changes from step to step.
const CARD_SAGA: &str = r#"name = "CardSaga"
snapshots = ["before_each_step", "after_each_step"]

[[steps]]
name = "replace_card"
run = "cat >/dev/null; echo '{\"card_number\": \"4000-0566-5566-5556\"}'"

[[steps]]
name = "confirm"
run = "cat >/dev/null; echo '{\"confirmed\": true}'"
"#;

const CARD_CONTEXT: &str = r#"{"card_number": "5555 5555 5555 4444", "holder": {"name": "Ann Holder", "email": "ann.holder@example.org"}, "amount": 12}"#;

/// The values the demo (4 orders, 2 trips) and the card saga put in
/// sensitive paths, none of which may appear in masked output.
fn secrets() -> Vec<String> {
    let mut out = vec![
        "5555 5555 5555 4444".to_string(),
        "4000-0566-5566-5556".to_string(),
        "Ann Holder".to_string(),
        "ann.holder@example.org".to_string(),
        "tok_valid".to_string(),
        "Canal St".to_string(),
    ];
    for (_, ctx) in sagascope::engine::demo::demo_sagas(4, 2) {
        let s = |p: &[&str]| {
            let mut v = &Value::Object(ctx.clone());
            for k in p {
                v = &v[*k];
            }
            v.as_str().map(str::to_string)
        };
        for p in [
            &["customer", "email"][..],
            &["payment_token"],
            &["shipping_address", "street"],
            &["traveler", "email"],
            &["traveler", "name"],
            &["card", "token"],
        ] {
            // "expired" is also the word of the failing charge's error.
            if let Some(v) = s(p).filter(|v| v != "expired") {
                out.push(v);
            }
        }
    }
    out
}

fn assert_no_secret(what: &str, out: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !out.contains(s.as_str()),
            "{what} shows the sensitive value {s:?}:\n{out}"
        );
    }
}

/// A world with the config above, the demo run in it, and the card saga.
struct Masked {
    w: World,
    card_def: std::path::PathBuf,
    order: String,
    trip: String,
    card: String,
}

fn masked_world() -> Masked {
    let w = World::sqlite();
    let cfg_dir = w.path("config").join("sagascope");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("config.toml"), CONFIG).unwrap();
    w.ok(&["demo", "--no-tui", "--orders", "4", "--trips", "2"]);
    let card_def = w.path("card_saga.toml");
    std::fs::write(&card_def, CARD_SAGA).unwrap();
    let run: Value = serde_json::from_str(&w.ok(&[
        "run",
        "CardSaga",
        "--context",
        CARD_CONTEXT,
        "--definitions",
        card_def.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_no_secret("run's output", &run.to_string(), &secrets());
    let card = run["saga_id"].as_str().unwrap().to_string();
    let failed = w.sagas(&["--status", "rolled_back", "--name", "OrderSaga"]);
    let order = failed[0]["saga_id"].as_str().unwrap().to_string();
    let trip = w.sagas(&["--name", "TripBookingSaga"])[0]["saga_id"]
        .as_str()
        .unwrap()
        .to_string();
    Masked {
        w,
        card_def,
        order,
        trip,
        card,
    }
}

fn raw_store(w: &World) -> std::sync::Arc<dyn sagascope::store::SnapshotStore> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(sagascope::store::open(
        &sagascope::store::StoreUrl::new(&w.store),
        &sagascope::store::OpenOptions::default(),
    ))
    .unwrap()
}

fn audit_events(w: &World) -> Vec<sagascope::compliance::audit::AuditEvent> {
    let store = raw_store(w);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(sagascope::compliance::audit::list(
        store.as_ref(),
        None,
        1000,
    ))
    .unwrap()
}

#[test]
fn every_reading_command_in_every_format_shows_masks_not_emails_tokens_or_addresses() {
    let m = masked_world();
    let w = &m.w;
    let secrets = secrets();
    // A dry run with a token typed in: its override is sensitive too.
    for f in ["table", "json"] {
        let out = w.ok(&[
            "replay",
            "run",
            &m.order,
            "--from-step",
            "charge_payment",
            "--override",
            "payment_token=tok_valid",
            "--dry-run",
            "--format",
            f,
        ]);
        assert_no_secret(&format!("replay run --dry-run -f {f}"), &out, &secrets);
        assert!(out.contains("•••"), "dry run -f {f} shows no mask:\n{out}");
    }
    let plan_file = w.path("plan.json");
    w.ok(&[
        "replay",
        "run",
        &m.order,
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
        "--dry-run",
        "--plan-out",
        plan_file.to_str().unwrap(),
    ]);
    let plan_text = std::fs::read_to_string(&plan_file).unwrap();
    let plan: Value = serde_json::from_str(&plan_text).unwrap();
    assert_no_secret("the plan file's plan", &plan["plan"].to_string(), &secrets);

    let formats = ["table", "text", "json", "jsonl"];
    let mut runs: Vec<Vec<String>> = Vec::new();
    for saga in [&m.order, &m.trip, &m.card] {
        for f in formats {
            for cmd in [
                vec!["sagas", "show", saga],
                vec!["snapshots", saga],
                vec!["replay", "time-travel", saga, "--step", "-1"],
                vec!["replay", "time-travel", saga, "--at", "now"],
                vec!["replay", "list-changes", saga],
                vec!["replay", "history", saga],
                vec!["where-changed", saga, "payment_token"],
                vec!["where-changed", saga, "card_number"],
                vec!["where-changed", saga, "customer.email"],
            ] {
                let mut c: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
                c.extend(["--format".into(), f.into()]);
                runs.push(c);
            }
        }
        for f in ["text", "paths", "json"] {
            runs.push(
                ["diff", saga.as_str(), "0", "-1", "--format", f]
                    .map(String::from)
                    .to_vec(),
            );
        }
    }
    runs.push(
        [
            "replay",
            "time-travel",
            m.order.as_str(),
            "--step",
            "-1",
            "--key",
            "customer",
        ]
        .map(String::from)
        .to_vec(),
    );
    for f in formats {
        runs.push(
            ["sagas", "list", "--all", "--format", f]
                .map(String::from)
                .to_vec(),
        );
    }
    runs.push(["export", "--all"].map(String::from).to_vec());
    let mut masks_seen = 0;
    for args in &runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = w.run(&args);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "{args:?}: {}",
            stderr(&o)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert_no_secret(&format!("{args:?}"), &out, &secrets);
        assert_no_secret(&format!("{args:?} (stderr)"), &stderr(&o), &secrets);
        if out.contains("•••") {
            masks_seen += 1;
        }
    }
    assert!(masks_seen > 40, "masks shown by only {masks_seen} runs");

    // The shape and the other fields stay readable; cards keep their last
    // four; the replay log's override is masked.
    let snaps = w.snapshots(&m.card);
    let first = &snaps[0]["context"];
    assert_eq!(first["amount"], 12);
    let card = first["card_number"].as_str().unwrap();
    assert!(card.starts_with("•••• 4444 #"), "{card}");
    assert!(first["holder"]["name"]
        .as_str()
        .unwrap()
        .starts_with("••• #"));
    let last = &snaps[snaps.len() - 1]["context"];
    assert!(
        last["card_number"]
            .as_str()
            .unwrap()
            .starts_with("•••• 5556 #"),
        "{last}"
    );
    let order = w.snapshots(&m.order);
    let ctx = &order[0]["context"];
    assert!(ctx["customer"]["id"].as_str().unwrap().starts_with("cus-"));
    assert!(ctx["shipping_address"]["city"]
        .as_str()
        .unwrap()
        .starts_with("••• #"));
    let log = w.replays(&m.order);
    assert!(!log.is_empty());
    assert!(log.iter().all(|r| r["context_override"]["payment_token"]
        .as_str()
        .unwrap()
        .starts_with("••• #")));
    let _ = &m.card_def;
}

#[test]
fn a_diff_says_a_masked_value_changed_without_showing_either_side() {
    let m = masked_world();
    let w = &m.w;
    let paths = w.ok(&["diff", &m.card, "0", "-1", "--format", "paths"]);
    assert!(
        paths.contains("~ $.card_number: changed (masked)"),
        "{paths}"
    );
    assert!(
        !paths.contains("4444") && !paths.contains("5556"),
        "{paths}"
    );
    let text = w.ok(&["diff", &m.card, "0", "-1"]);
    assert!(text.contains("~ $.card_number: changed (masked)"), "{text}");
    let json: Value =
        serde_json::from_str(&w.ok(&["diff", &m.card, "0", "-1", "--format", "json"])).unwrap();
    let change = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "$.card_number")
        .unwrap();
    assert_eq!(change["masked"], true);
    // Equal values mask equally: an unchanged sensitive value is no change.
    assert!(!paths.contains("holder"), "{paths}");
    let wc = w.ok(&["where-changed", &m.card, "card_number"]);
    assert!(wc.contains("changed (masked)"), "{wc}");
}

#[test]
fn reveal_with_a_reason_shows_the_values_and_records_who_which_saga_and_paths() {
    let m = masked_world();
    let w = &m.w;
    assert!(audit_events(w).is_empty());
    let out = w.ok(&[
        "snapshots",
        &m.order,
        "--format",
        "json",
        "--reveal",
        "--reason",
        "ticket OPS-7: customer asked what we hold",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let ctx = &v["snapshots"][0]["context"];
    assert!(ctx["customer"]["email"]
        .as_str()
        .unwrap()
        .ends_with("@example.com"));
    assert!(ctx["shipping_address"]["street"]
        .as_str()
        .unwrap()
        .ends_with("Canal St"));
    let events = audit_events(w);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.action, "reveal");
    assert_eq!(e.actor, "test-oncall");
    assert_eq!(e.saga_id.as_deref(), Some(m.order.as_str()));
    assert_eq!(
        e.reason.as_deref(),
        Some("ticket OPS-7: customer asked what we hold")
    );
    for p in [
        "customer.email",
        "payment_token",
        "shipping_address.street",
        "shipping_address.city",
    ] {
        assert!(e.paths.iter().any(|x| x == p), "{p} not in {:?}", e.paths);
    }
    assert!(!e.paths.iter().any(|x| x == "customer.id"), "{:?}", e.paths);
    // Cards in clear, and export --reveal too (one more event per saga).
    let card = w.ok(&[
        "snapshots",
        &m.card,
        "--format",
        "json",
        "--reveal",
        "--reason",
        "r",
    ]);
    assert!(card.contains("5555 5555 5555 4444"), "{card}");
    let bundle = w.ok(&["export", &m.trip, "--reveal", "--reason", "hand over"]);
    assert!(bundle.contains("traveler"), "{bundle}");
    assert!(!bundle.contains("•••"), "{bundle}");
    let events = audit_events(w);
    let mut sagas: Vec<_> = events.iter().filter_map(|e| e.saga_id.clone()).collect();
    sagas.dedup();
    assert_eq!(sagas, vec![m.order.clone(), m.card.clone(), m.trip.clone()]);
    // A later snapshot that shows one more sensitive path (the trip's
    // `itinerary_sent_to`) is recorded again, with it.
    let trip_last = events
        .iter()
        .rfind(|e| e.saga_id.as_deref() == Some(m.trip.as_str()))
        .unwrap();
    assert!(
        trip_last.paths.iter().any(|p| p == "itinerary_sent_to"),
        "{:?}",
        trip_last.paths
    );
    // The values themselves never reach the audit log.
    let raw = serde_json::to_string(&events).unwrap();
    assert_no_secret("the audit log", &raw, &secrets());
}

#[test]
fn reveal_without_a_reason_and_without_a_terminal_is_a_usage_error() {
    let m = masked_world();
    let w = &m.w;
    let o = w.run(&["snapshots", &m.order, "--reveal"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--reason"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    let o = w.run(&["snapshots", &m.order, "--reveal", "--reason", "  "]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(audit_events(w).is_empty());
}

#[test]
fn a_real_replay_of_a_masked_saga_starts_from_the_values_and_the_new_saga_holds_them() {
    let m = masked_world();
    let w = &m.w;
    let store = raw_store(w);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let original = rt
        .block_on(store.list_snapshots(&m.order, &Default::default()))
        .unwrap()
        .items;
    let email = original[0].context["customer"]["email"].clone();
    let street = original[0].context["shipping_address"]["street"].clone();
    assert!(email.as_str().unwrap().ends_with("@example.com"));
    // A plan written masked is applied from the values too.
    let plan_file = w.path("plan.json");
    w.ok(&[
        "replay",
        "run",
        &m.order,
        "--from-step",
        "charge_payment",
        "--override",
        "payment_token=tok_valid",
        "--dry-run",
        "--plan-out",
        plan_file.to_str().unwrap(),
    ]);
    let out: Value = serde_json::from_str(&w.ok(&[
        "replay",
        "apply",
        plan_file.to_str().unwrap(),
        "--reason",
        "customer sent a new card",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(out["replay_log"]["replay_status"], "success", "{out}");
    assert_no_secret("replay apply's output", &out.to_string(), &secrets());
    let new_saga = out["replay_log"]["new_saga_id"].as_str().unwrap();
    let snaps = rt
        .block_on(store.list_snapshots(new_saga, &Default::default()))
        .unwrap()
        .items;
    assert!(!snaps.is_empty());
    for s in &snaps {
        assert_eq!(s.context["customer"]["email"], email, "{:?}", s.context);
        assert_eq!(s.context["shipping_address"]["street"], street);
        assert_eq!(s.context["payment_token"], "tok_valid");
        assert_eq!(sagascope::compliance::mask::first_masked(s), None);
    }
    // The replay log keeps the override as typed.
    let log = rt
        .block_on(store.list_replays(&m.order, None))
        .unwrap()
        .items;
    assert!(log
        .iter()
        .any(|r| r.context_override.as_ref().unwrap()["payment_token"] == "tok_valid"));

    // A second failed order, replayed directly (`replay run`).
    let failed = w.sagas(&["--status", "rolled_back", "--name", "OrderSaga"]);
    if let Some(other) = failed
        .iter()
        .filter_map(|s| s["saga_id"].as_str())
        .find(|id| *id != m.order)
    {
        let out: Value = serde_json::from_str(&w.ok(&[
            "replay",
            "run",
            other,
            "--from-step",
            "charge_payment",
            "--override",
            "payment_token=tok_valid",
            "--reason",
            "r",
            "--format",
            "json",
        ]))
        .unwrap();
        assert_no_secret("replay run's output", &out.to_string(), &secrets());
        let new_saga = out["replay_log"]["new_saga_id"].as_str().unwrap();
        let snaps = rt
            .block_on(store.list_snapshots(new_saga, &Default::default()))
            .unwrap()
            .items;
        assert!(snaps.iter().all(|s| s.context["customer"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@example.com")));
    }
}

#[test]
fn reveal_is_refused_where_the_audit_event_cannot_be_written() {
    let m = masked_world();
    let w = &m.w;
    // Read-only mode refuses every write, the audit event included: the
    // values stay hidden.
    let o = w.run(&[
        "--readonly",
        "snapshots",
        &m.order,
        "--format",
        "json",
        "--reveal",
        "--reason",
        "audit",
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("not revealing saga"), "{}", stderr(&o));
    assert_no_secret(
        "a refused reveal",
        &String::from_utf8_lossy(&o.stdout),
        &secrets(),
    );
    assert!(audit_events(w).is_empty());
}

#[test]
fn a_masked_export_is_refused_by_import_and_a_revealed_one_moves_the_values() {
    let m = masked_world();
    let w = &m.w;
    let masked = w.path("masked.jsonl");
    w.ok(&["export", &m.order, "-o", masked.to_str().unwrap()]);
    assert_no_secret(
        "export",
        &std::fs::read_to_string(&masked).unwrap(),
        &secrets(),
    );
    let other = World::sqlite();
    let o = other.run(&["import", masked.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("exported masked"), "{}", stderr(&o));
    assert!(other.sagas(&[]).is_empty(), "nothing may be imported");

    let revealed = w.path("revealed.jsonl");
    w.ok(&[
        "export",
        &m.order,
        "-o",
        revealed.to_str().unwrap(),
        "--reveal",
        "--reason",
        "move to the audit store",
    ]);
    other.ok(&["import", revealed.to_str().unwrap()]);
    let snaps = other.snapshots(&m.order);
    assert!(snaps[0]["context"]["customer"]["email"]
        .as_str()
        .unwrap()
        .ends_with("@example.com"));
}
