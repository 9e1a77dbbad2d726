//! The engine as a library: Rust steps, snapshot strategies, compensation
//! in reverse order, retries, timeouts, the final snapshot of every outcome,
//! replays through the store trait, and the replay lock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Map, Value};

use sagascope::engine::{
    action, Definitions, Engine, Event, RetryPolicy, RunRequest, SagaDefinition,
    SnapshotStrategies, SnapshotStrategy, Step,
};
use sagascope::model::{ReplayStatus, SagaStatus, COMPLETED_STEP};
use sagascope::replay::{self, LockError, MergeMode, ReplayLock, ReplayOptions, ReplaySpec};
use sagascope::store::{self, OpenOptions, SnapshotQuery, SnapshotStore, StoreUrl};

async fn sqlite() -> (tempfile::TempDir, Arc<dyn SnapshotStore>) {
    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::new(format!("sqlite://{}/e.db", dir.path().display()));
    let s = store::open(&url, &OpenOptions::default()).await.unwrap();
    (dir, s)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// An order saga whose payment step fails when the token is "expired";
/// `log` records every action and compensation in the order they ran.
fn order_saga(log: Arc<Mutex<Vec<String>>>) -> SagaDefinition {
    let rec = |name: &'static str, out: Value, log: Arc<Mutex<Vec<String>>>| {
        action(move |_ctx| {
            let (log, out) = (log.clone(), out.clone());
            async move {
                log.lock().unwrap().push(name.to_string());
                Ok::<_, String>(obj(out))
            }
        })
    };
    let pay_log = log.clone();
    SagaDefinition::new("OrderSaga")
        .step(
            Step::new(
                "reserve_inventory",
                rec("reserve", json!({"reservation": "r-1"}), log.clone()),
            )
            .compensate(rec("release", json!({}), log.clone())),
        )
        .step(
            Step::new(
                "charge_payment",
                action(move |ctx| {
                    let log = pay_log.clone();
                    async move {
                        log.lock().unwrap().push("charge".into());
                        if ctx.get("payment_token") == Some(&json!("expired")) {
                            return Err("card token expired".to_string());
                        }
                        Ok(obj(json!({"charge": "ch-1"})))
                    }
                }),
            )
            .compensate(rec("refund", json!({}), log.clone())),
        )
        .step(Step::new(
            "ship_order",
            rec("ship", json!({"tracking": "T1"}), log.clone()),
        ))
}

async fn steps_of(store: &dyn SnapshotStore, saga: &str) -> Vec<(String, String)> {
    store
        .list_snapshots(saga, &SnapshotQuery::all())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| (s.step_name, s.status.to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn completed_saga_gets_before_step_snapshots_and_a_completed_one() {
    let (_d, store) = sqlite().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let def = order_saga(log.clone());
    let id = uuid::Uuid::new_v4().to_string();
    let o = Engine::new(store.clone())
        .run(
            &def,
            RunRequest {
                saga_id: id.clone(),
                context: obj(json!({"payment_token": "tok_1"})),
                ..RunRequest::default()
            },
            &|_| {},
        )
        .await;
    assert_eq!(o.status, SagaStatus::Completed);
    assert_eq!(o.context["tracking"], "T1");
    assert_eq!(
        steps_of(store.as_ref(), &id).await,
        pairs(&[
            ("reserve_inventory", "executing"),
            ("charge_payment", "executing"),
            ("ship_order", "executing"),
            (COMPLETED_STEP, "completed"),
        ])
    );
    let done = store.latest_snapshot(&id, None).await.unwrap().unwrap();
    assert_eq!(done.step_index, 3);
    assert_eq!(done.completed_steps.len(), 3);
}

#[tokio::test]
async fn failure_compensates_in_reverse_and_leaves_a_final_rolled_back_snapshot() {
    let (_d, store) = sqlite().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let def = order_saga(log.clone())
        .strategies(SnapshotStrategies::of(&[SnapshotStrategy::AfterEachStep]));
    let id = uuid::Uuid::new_v4().to_string();
    let events = Mutex::new(Vec::new());
    let o = Engine::new(store.clone())
        .run(
            &def,
            RunRequest {
                saga_id: id.clone(),
                context: obj(json!({"payment_token": "expired"})),
                ..RunRequest::default()
            },
            &|e| events.lock().unwrap().push(e.clone()),
        )
        .await;
    assert_eq!(o.status, SagaStatus::RolledBack);
    assert_eq!(o.failed_step.as_deref(), Some("charge_payment"));
    assert_eq!(o.error.as_deref(), Some("card token expired"));
    assert_eq!(*log.lock().unwrap(), ["reserve", "charge", "release"]);
    assert_eq!(
        steps_of(store.as_ref(), &id).await,
        pairs(&[
            ("reserve_inventory", "executing"),
            ("charge_payment", "rolled_back")
        ])
    );
    let last = store.latest_snapshot(&id, None).await.unwrap().unwrap();
    assert_eq!(last.extra["error"], "card token expired");
    assert_eq!(last.completed_steps, ["reserve_inventory"]);
    assert!(events.lock().unwrap().contains(&Event::Compensated {
        step: "reserve_inventory".into()
    }));
}

#[tokio::test]
async fn strategies_decide_which_snapshots_are_taken() {
    let (_d, store) = sqlite().await;
    let cases: [(&[SnapshotStrategy], &str, usize); 4] = [
        (&[SnapshotStrategy::Manual], "tok", 0),
        (&[SnapshotStrategy::OnCompletion], "tok", 1),
        (&[SnapshotStrategy::OnFailure], "expired", 1),
        (
            &[
                SnapshotStrategy::BeforeEachStep,
                SnapshotStrategy::AfterEachStep,
            ],
            "tok",
            7,
        ),
    ];
    for (strategies, token, want) in cases {
        let def = order_saga(Arc::new(Mutex::new(Vec::new())))
            .strategies(SnapshotStrategies::of(strategies));
        let id = uuid::Uuid::new_v4().to_string();
        let o = Engine::new(store.clone())
            .run(
                &def,
                RunRequest {
                    saga_id: id.clone(),
                    context: obj(json!({"payment_token": token})),
                    ..RunRequest::default()
                },
                &|_| {},
            )
            .await;
        assert_eq!(o.snapshots_written, want, "{strategies:?}");
        assert_eq!(
            store.count_snapshots(&id).await.unwrap(),
            want as u64,
            "{strategies:?}"
        );
    }
}

#[tokio::test]
async fn retries_then_succeeds_and_a_timeout_is_a_failure() {
    let (_d, store) = sqlite().await;
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    let def = SagaDefinition::new("Flaky")
        .step(
            Step::new(
                "flaky",
                action(move |_c| {
                    let t = t.clone();
                    async move {
                        if t.fetch_add(1, Ordering::SeqCst) < 2 {
                            Err("try again".to_string())
                        } else {
                            Ok(Map::new())
                        }
                    }
                }),
            )
            .retry(RetryPolicy {
                attempts: 3,
                backoff: Duration::from_millis(1),
            }),
        )
        .step(
            Step::new(
                "slow",
                action(|_c| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok::<_, String>(Map::new())
                }),
            )
            .timeout(Duration::from_millis(50)),
        );
    let o = Engine::new(store)
        .run(
            &def,
            RunRequest {
                saga_id: uuid::Uuid::new_v4().to_string(),
                ..RunRequest::default()
            },
            &|_| {},
        )
        .await;
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert_eq!(o.completed_steps, ["flaky"]);
    assert_eq!(o.failed_step.as_deref(), Some("slow"));
    assert!(o.error.unwrap().contains("timed out"));
}

#[tokio::test]
async fn failing_compensation_leaves_the_saga_failed() {
    let (_d, store) = sqlite().await;
    let def = SagaDefinition::new("Broken")
        .step(
            Step::new("a", action(|_c| async { Ok::<_, String>(Map::new()) })).compensate(action(
                |_c| async { Err::<Map<String, Value>, _>("undo failed") },
            )),
        )
        .step(Step::new(
            "b",
            action(|_c| async { Err::<Map<String, Value>, _>("b failed") }),
        ));
    let id = uuid::Uuid::new_v4().to_string();
    let o = Engine::new(store.clone())
        .run(
            &def,
            RunRequest {
                saga_id: id.clone(),
                ..RunRequest::default()
            },
            &|_| {},
        )
        .await;
    assert_eq!(o.status, SagaStatus::Failed);
    assert_eq!(
        o.compensation_errors,
        [("a".to_string(), "undo failed".to_string())]
    );
    let last = store.latest_snapshot(&id, None).await.unwrap().unwrap();
    assert_eq!(last.status, SagaStatus::Failed);
}

#[tokio::test]
async fn replay_with_force_failure_compensates_and_logs_failed() {
    let (_d, store) = sqlite().await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut defs = Definitions::new();
    defs.insert(order_saga(log.clone()));
    let id = uuid::Uuid::new_v4().to_string();
    Engine::new(store.clone())
        .run(
            &order_saga(log.clone()),
            RunRequest {
                saga_id: id.clone(),
                context: obj(json!({"payment_token": "expired"})),
                ..RunRequest::default()
            },
            &|_| {},
        )
        .await;
    log.lock().unwrap().clear();
    let spec = ReplaySpec {
        from_step: "charge_payment".into(),
        context_override: obj(json!({"payment_token": "tok_valid"})),
        merge: MergeMode::Shallow,
        force_failure: true,
        ..ReplaySpec::default()
    };
    let opts = ReplayOptions {
        initiated_by: "alice".into(),
        reason: Some("test the compensation path".into()),
        dry_run: false,
        lock_ttl: Duration::from_secs(5),
        lock_owner: replay::lock_owner("alice"),
    };
    let r = replay::replay(&store, &defs, &id, &spec, &opts, &|_| {})
        .await
        .unwrap();
    assert_eq!(r.log.replay_status, ReplayStatus::Failed);
    // The original run released the reservation, so the replay reserves
    // again before charging; ship_order is forced to fail without running,
    // and what the replay did is undone in reverse.
    assert_eq!(
        *log.lock().unwrap(),
        ["reserve", "charge", "refund", "release"]
    );
    let logged = store.get_replay(&r.log.replay_id).await.unwrap().unwrap();
    assert_eq!(logged.reason(), Some("test the compensation path"));
    assert_eq!(
        logged.context_override,
        Some(json!({"payment_token": "tok_valid"}))
    );
    assert_eq!(logged.extra["force_failure"], true);
    assert!(logged.completed_at.is_some());
    let new_last = store
        .latest_snapshot(&r.log.new_saga_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new_last.status, SagaStatus::RolledBack);
    assert_eq!(new_last.extra["replay_of"], json!(id));
}

#[tokio::test]
async fn replay_lock_refuses_a_second_owner_until_released_or_expired() {
    let (_d, store) = sqlite().await;
    let saga = uuid::Uuid::new_v4().to_string();
    let a = ReplayLock::acquire(store.clone(), &saga, "a", Duration::from_millis(1500))
        .await
        .unwrap();
    match ReplayLock::acquire(store.clone(), &saga, "b", Duration::from_millis(300)).await {
        Err(LockError::Held { owner, .. }) => assert_eq!(owner, "a"),
        other => panic!("expected Held, got {other:?}"),
    }
    // The heartbeat (every TTL/3) keeps it past its TTL while held.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(
        ReplayLock::acquire(store.clone(), &saga, "b", Duration::from_millis(300))
            .await
            .is_err()
    );
    a.release().await.unwrap();
    let b = ReplayLock::acquire(store.clone(), &saga, "b", Duration::from_millis(200))
        .await
        .unwrap();
    // Dropped without release = a crashed owner: it expires on its own.
    drop(b);
    let c = loop {
        match ReplayLock::acquire(store.clone(), &saga, "c", Duration::from_secs(5)).await {
            Ok(l) => break l,
            Err(LockError::Held { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    };
    c.release().await.unwrap();
}

#[tokio::test]
async fn toml_definitions_load_from_a_folder_and_run_commands_in_it() {
    let (_d, store) = sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("double.sh"),
        "read x; echo \"{\\\"doubled\\\": true, \\\"seen\\\": $x}\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("d.toml"),
        "name = \"Doubler\"\nsnapshots = [\"after_each_step\"]\n[[steps]]\nname = \"double\"\nrun = \"sh double.sh\"\n",
    )
    .unwrap();
    let defs = Definitions::load(&[], &[dir.path().to_path_buf()]).unwrap();
    let def = defs.get("Doubler").unwrap();
    // Run from another directory: the command still finds its script.
    let o = Engine::new(store)
        .run(
            &def,
            RunRequest {
                saga_id: uuid::Uuid::new_v4().to_string(),
                context: obj(json!({"n": 2})),
                ..RunRequest::default()
            },
            &|_| {},
        )
        .await;
    assert_eq!(o.status, SagaStatus::Completed, "{:?}", o.error);
    assert_eq!(o.context["seen"], json!({"n": 2}));
    assert_eq!(o.snapshots_written, 2);
}

#[tokio::test]
async fn a_delegate_gets_the_request_on_stdin_and_its_exit_status_is_the_outcome() {
    let (_d, store) = sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("delegate.toml"),
        r#"name = "OrderSaga"
[delegate]
run = '''
cat > request.json
echo "replaying in the service's own runtime"
if grep -q '"payment_token":"tok_bad"' request.json; then echo "card still declined" >&2; exit 3; fi
echo '{"status": "completed"}'
'''
"#,
    )
    .unwrap();
    let defs = Definitions::load(&[], &[dir.path().to_path_buf()]).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    Engine::new(store.clone())
        .run(
            &order_saga(Arc::new(Mutex::new(Vec::new()))),
            RunRequest {
                saga_id: id.clone(),
                context: obj(json!({"payment_token": "expired"})),
                ..RunRequest::default()
            },
            &|_| {},
        )
        .await;
    let opts = ReplayOptions {
        initiated_by: "bob".into(),
        reason: None,
        dry_run: false,
        lock_ttl: Duration::from_secs(5),
        lock_owner: replay::lock_owner("bob"),
    };
    let spec = |token: &str| ReplaySpec {
        from_step: "charge_payment".into(),
        context_override: obj(json!({ "payment_token": token })),
        merge: MergeMode::Shallow,
        force_failure: false,
        ..ReplaySpec::default()
    };
    let lines = Mutex::new(Vec::new());
    let r = replay::replay(&store, &defs, &id, &spec("tok_valid"), &opts, &|e| {
        if let Event::Progress { line } = e {
            lines.lock().unwrap().push(line.clone());
        }
    })
    .await
    .unwrap();
    assert_eq!(r.log.replay_status, ReplayStatus::Success);
    assert_eq!(
        *lines.lock().unwrap(),
        [
            "replaying in the service's own runtime",
            r#"{"status": "completed"}"#
        ]
    );
    let req: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("request.json")).unwrap())
            .unwrap();
    assert_eq!(req["original_saga_id"], json!(id));
    assert_eq!(req["checkpoint_step"], "charge_payment");
    assert_eq!(req["new_saga_id"], json!(r.log.new_saga_id));
    assert_eq!(req["context"]["payment_token"], "tok_valid");

    // A second replay of a saga already replayed successfully is refused
    // unless asked for (--again), naming the earlier replay.
    let again = replay::replay(&store, &defs, &id, &spec("tok_bad"), &opts, &|_| {}).await;
    match again {
        Err(replay::ReplayError::Plan(p)) => {
            assert_eq!(p.errors[0].kind, replay::PlanErrorKind::AlreadyReplayed);
            assert!(
                p.errors[0].message.contains(&r.log.replay_id),
                "{:?}",
                p.errors
            );
        }
        other => panic!("a second replay was not refused: {other:?}"),
    }
    let mut spec_again = spec("tok_bad");
    spec_again.allow.again = true;
    let r = replay::replay(&store, &defs, &id, &spec_again, &opts, &|_| {})
        .await
        .unwrap();
    assert_eq!(r.log.replay_status, ReplayStatus::Failed);
    assert_eq!(r.log.error_message.as_deref(), Some("card still declined"));
}
