use super::*;
use crate::model::SagaStatus;

fn key(id: &str, byte: u8) -> Arc<dyn MasterKey> {
    Arc::new(LocalKey::from_bytes(id, &[byte; 32], "test".into()))
}

fn pats(v: &[&str]) -> Vec<PathPattern> {
    v.iter().map(|p| p.parse().unwrap()).collect()
}

fn snapshot(saga: &str) -> Snapshot {
    let ctx = json!({
        "customer": {"email": "ann@example.com", "id": "C-1"},
        "card": {"number": "4111111111111111", "exp": "12/30"},
        "items": [{"sku": "X", "qty": 2}],
    });
    Snapshot::new(
        saga,
        "OrderSaga",
        "charge",
        1,
        SagaStatus::Executing,
        ctx.as_object().unwrap().clone(),
        vec![],
    )
}

#[tokio::test]
async fn values_are_encrypted_in_place_and_decrypt_back() {
    let e = Encryptor::new(vec![key("k1", 1)], Some("k1".into())).unwrap();
    let mut s = snapshot("s1");
    let orig = s.context.clone();
    let p = pats(&["customer.email", "card"]);
    e.encrypt_snapshot(&mut s, p.iter()).await.unwrap();
    let text = serde_json::to_string(&s.to_json()).unwrap();
    assert!(!text.contains("ann@example.com") && !text.contains("4111111111111111"));
    assert_eq!(s.context["customer"]["id"], "C-1");
    assert_eq!(s.context["card"]["exp"]["$enc"], ALGORITHM);
    let kid = s.context["customer"]["email"]["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(kid.starts_with("dk-") && kid.len() == 19, "{kid}");
    assert_eq!(s.extra[KEYS_FIELD][&kid]["master"], "k1");
    assert_eq!(masters_of(&s), BTreeSet::from(["k1".to_string()]));
    assert!(!needs_encryption(&s, p.iter()));
    // Encrypting twice changes nothing; one data key per process.
    let before = s.clone();
    e.encrypt_snapshot(&mut s, p.iter()).await.unwrap();
    assert_eq!(s, before);
    let mut s2 = snapshot("s2");
    e.encrypt_snapshot(&mut s2, p.iter()).await.unwrap();
    assert_eq!(s2.context["card"]["number"]["kid"], kid.as_str());
    assert_ne!(
        s2.context["card"]["number"]["iv"],
        s.context["card"]["number"]["iv"]
    );
    e.decrypt_snapshot(&mut s).await.unwrap();
    assert_eq!(s.context, orig);
    assert!(s.extra.contains_key(KEYS_FIELD), "reads keep extra");
}

#[tokio::test]
async fn a_wrong_key_names_its_id_and_a_moved_value_names_saga_and_path() {
    let e = Encryptor::new(vec![key("k1", 1)], Some("k1".into())).unwrap();
    let mut s = snapshot("s1");
    e.encrypt_snapshot(&mut s, pats(&["customer.email", "card.*"]).iter())
        .await
        .unwrap();

    let wrong = Encryptor::new(vec![key("k1", 2)], None).unwrap();
    let err = wrong.decrypt_snapshot(&mut s.clone()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("key k1") && msg.contains("wrong key?"),
        "{msg}"
    );

    let mut moved = s.clone();
    let v = moved.context["customer"]["email"].clone();
    moved.context["card"]["exp"] = v;
    let msg = e
        .decrypt_snapshot(&mut moved)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("saga s1") && msg.contains("card.exp") && msg.contains("moved"),
        "{msg}"
    );

    let mut other = s.clone();
    other.saga_id = "s2".into();
    let msg = e
        .decrypt_snapshot(&mut other)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("saga s2") && msg.contains("customer.email"),
        "{msg}"
    );
    assert!(!msg.contains("ann@example.com"));
}

#[tokio::test]
async fn without_the_master_key_values_stay_encrypted() {
    let e = Encryptor::new(vec![key("k1", 1)], Some("k1".into())).unwrap();
    let mut s = snapshot("s1");
    e.encrypt_snapshot(&mut s, pats(&["card"]).iter())
        .await
        .unwrap();
    let enc = s.clone();
    let other = Encryptor::new(vec![key("k2", 2)], Some("k2".into())).unwrap();
    other.decrypt_snapshot(&mut s).await.unwrap();
    assert_eq!(s, enc);
}

#[tokio::test]
async fn rewrap_keeps_values_and_reencrypt_moves_them_to_the_new_master() {
    let e = Encryptor::new(vec![key("k1", 1), key("k2", 2)], Some("k1".into())).unwrap();
    let mut s = snapshot("s1");
    let orig = s.context.clone();
    let p = pats(&["customer.email", "card"]);
    e.encrypt_snapshot(&mut s, p.iter()).await.unwrap();
    let ct = s.context.clone();

    let mut r = s.clone();
    e.rewrap_snapshot(&mut r, "k2").await.unwrap();
    assert_eq!(r.context, ct);
    assert_eq!(masters_of(&r), BTreeSet::from(["k2".to_string()]));
    let only_k2 = Encryptor::new(vec![key("k2", 2)], None).unwrap();
    let mut opened = r.clone();
    only_k2.decrypt_snapshot(&mut opened).await.unwrap();
    assert_eq!(opened.context, orig);

    let to_k2 = Encryptor::new(vec![key("k1", 1), key("k2", 2)], Some("k2".into())).unwrap();
    let mut n = s.clone();
    to_k2.reencrypt_snapshot(&mut n, p.iter()).await.unwrap();
    assert_eq!(masters_of(&n), BTreeSet::from(["k2".to_string()]));
    let keys = n.extra[KEYS_FIELD].as_object().unwrap();
    assert_eq!(keys.len(), 1, "the old data key left: {keys:?}");
    only_k2.decrypt_snapshot(&mut n).await.unwrap();
    assert_eq!(n.context, orig);
}

#[tokio::test]
async fn replay_overrides_are_encrypted_under_the_original_saga() {
    let e = Encryptor::new(vec![key("k1", 1)], Some("k1".into())).unwrap();
    let mut log = ReplayLog::from_json(json!({
        "replay_id": "r1", "original_saga_id": "s1", "new_saga_id": "s2",
        "checkpoint_step": "charge", "replay_status": "success",
        "initiated_by": "ann",
        "context_override": {"customer": {"email": "bob@example.com"}, "n": 1},
        "error_message": null, "created_at": "2026-03-01T12:00:00+00:00",
        "completed_at": null,
    }))
    .unwrap();
    let orig = log.clone();
    e.encrypt_replay(&mut log, pats(&["customer.email"]).iter())
        .await
        .unwrap();
    let text = log.to_json().to_string();
    assert!(!text.contains("bob@example.com") && text.contains(KEYS_FIELD));
    e.decrypt_replay(&mut log).await.unwrap();
    assert_eq!(log.context_override, orig.context_override);
}

#[test]
fn key_text_is_hex_or_base64_of_32_bytes_and_debug_hides_it() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    assert_eq!(parse_key_text(hex).unwrap()[1], 0x11);
    let b64 = STANDARD.encode([7u8; 32]);
    assert_eq!(parse_key_text(&b64).unwrap(), [7u8; 32]);
    let e = LocalKey::from_text("k9", "abcd", "file /x".into()).unwrap_err();
    assert!(e.to_string().contains("key k9") && e.to_string().contains("32 bytes"));
    let k = LocalKey::from_text("k1", hex, "file /x".into()).unwrap();
    let d = format!("{k:?}");
    assert!(
        d.contains("k1") && !d.contains("0011") && !d.contains("cipher"),
        "{d}"
    );
    let e = LocalKey::from_env("k2", "SAGASCOPE_TEST_UNSET_VARIABLE").unwrap_err();
    assert!(e.to_string().contains("key k2") && e.to_string().contains("not set"));
}
