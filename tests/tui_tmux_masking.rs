//! End to end: the built binary in a real terminal (tmux) with sensitive
//! fields configured. The demo's failed order shows its email, card token
//! and address masked; `V` with a reason shows them (the header says
//! "revealed: <reason>") and writes an audit event the library reads back;
//! `V` again masks them.
//!
//! Every wait polls the screen until the expected text appears (or fails
//! after a generous deadline); nothing asserts on timing.

mod common;

#[path = "common/tmux.rs"]
mod tmux;

use std::sync::Arc;

use sagascope::compliance::audit;
use sagascope::store::{OpenOptions, SnapshotStore, StoreUrl};
use tmux::{demo, failed_order, home_env, tmux_available, tui_in_tmux};

#[test]
fn tui_in_tmux_masks_sensitive_fields_and_reveals_them_with_an_audited_reason() {
    if !tmux_available() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_sagascope");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("masked.db");
    let store = format!("sqlite://{}", db.display());
    let config = dir.path().join("sagascope.toml");
    std::fs::write(
        &config,
        "[compliance.sensitive]\nOrderSaga = [\"customer.email\", \"payment_token\", \"shipping_address\"]\n",
    )
    .unwrap();
    let mut env = home_env(dir.path());
    env.push(("SAGASCOPE_CONFIG", config.display().to_string()));
    env.push(("SAGASCOPE_IDENTITY", "tmux-auditor".into()));
    demo(bin, &env, &store, 4, 0);
    let failed = failed_order(bin, &env, &store);

    let tmux = tui_in_tmux(bin, &env, &["--store", &store]);
    tmux.wait_for("the saga list", |s| s.contains("Sagas 4"));
    tmux.open_saga(&failed);
    tmux.scrub_to("charge_payment");
    let screen = tmux.wait_for("the masked context", |s| {
        s.contains("\"email\": \"••• #") && s.contains("\"payment_token\": \"••• #")
    });
    for secret in ["@example.com", "\"expired\"", "Canal St", "Amsterdam"] {
        assert!(!screen.contains(secret), "{secret} shown:\n{screen}");
    }

    tmux.send(&["V"]);
    tmux.wait_for("the reason prompt", |s| s.contains("reason for revealing"));
    tmux.send_text("INC-7 refund check");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the revealed context", |s| {
        s.contains("revealed: INC-7 refund check") && s.contains("@example.com")
    });
    assert!(
        screen.contains("\"payment_token\": \"expired\""),
        "{screen}"
    );

    // The audit event, read back by the library from the same store.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = rt.block_on(async {
        let s: Arc<dyn SnapshotStore> =
            sagascope::store::open(&StoreUrl::new(store.clone()), &OpenOptions::default())
                .await
                .unwrap();
        audit::list(s.as_ref(), None, 100).await.unwrap()
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].action, "reveal");
    assert_eq!(events[0].actor, "tmux-auditor");
    assert_eq!(events[0].saga_id.as_deref(), Some(failed.as_str()));
    assert_eq!(events[0].reason.as_deref(), Some("INC-7 refund check"));
    assert!(events[0].paths.iter().any(|p| p == "customer.email"));

    tmux.send(&["V"]);
    let screen = tmux.wait_for("the context masked again", |s| {
        !s.contains("revealed:") && s.contains("\"email\": \"••• #")
    });
    assert!(!screen.contains("@example.com"), "{screen}");
    tmux.quit();
}
