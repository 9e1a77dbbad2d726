//! Masking: what a sensitive value looks like in every view, output,
//! export and log unless it is revealed.
//!
//! - A sensitive value becomes `"••• #1a2b3c"`; a card number (12 to 19
//!   digits, spaces or dashes allowed, Luhn-valid) keeps its last four:
//!   `"•••• 4242 #1a2b3c"`. The `#…` fingerprint is an HMAC of the value
//!   under a key drawn at random when the process starts: equal values mask
//!   equally within one process (so a diff can say "changed" without showing
//!   either side), and nothing links them across processes or back to the
//!   value.
//! - A ciphertext whose key is not configured (`{"$enc": …}`, left as it is
//!   by decryption) shows as `"🔒"`, wherever it is and even in revealed
//!   output ([`lock_ciphertexts`]): there is nothing to reveal without its
//!   key. The unmasked store handle keeps the ciphertext object itself, so a
//!   replay writes it back untouched. `🔒` values cannot be compared (each
//!   encryption has its own nonce): a diff shows them as unchanged.
//! - An erasure tombstone (`{"$erased": …}`) stays as it is.
//! - `null` and empty objects or arrays carry no data and stay as they are;
//!   a sensitive object or array is masked leaf by leaf, so its shape and
//!   keys stay readable.
//!
//! A masked value is never written back: [`first_masked`] finds one, and the
//! protection layer refuses the write.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::paths::{self, PathPattern};
use super::SensitivePaths;
use crate::model::{ReplayLog, Snapshot};

/// What a value without its key shows as.
pub const LOCKED: &str = "🔒";
/// What a masked value starts with; a card's mask starts with four.
const DOTS: &str = "•••";
/// Hex digits of the fingerprint: 24 bits, so two different values of one
/// diff look equal about once in 16 million.
const FP_HEX: usize = 6;

fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        // Two v4 UUIDs: 244 random bits from the OS generator, per process.
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        k[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        k
    })
}

fn fingerprint(v: &Value) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(process_key())
        .expect("HMAC takes a key of any length");
    // serde_json writes a value the same way every time (keys in stored
    // order), which is all equality within one process needs.
    mac.update(v.to_string().as_bytes());
    let tag = mac.finalize().into_bytes();
    tag.iter()
        .take(FP_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digits of a card number (12 to 19 digits, spaces or dashes between,
/// Luhn-valid), or `None`.
fn card_digits(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return None,
    };
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        || !text.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    if !(12..=19).contains(&digits.len()) || !luhn(&digits) {
        return None;
    }
    Some(digits)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

fn is_ciphertext(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("$enc"))
}

fn is_tombstone(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("$erased"))
}

/// Whether `v` is a masked value (or `🔒`), not data.
pub fn is_masked(v: &Value) -> bool {
    let Value::String(s) = v else {
        return false;
    };
    if s == LOCKED {
        return true;
    }
    let Some(rest) = s.strip_prefix(DOTS) else {
        return false;
    };
    // A card's mask: `•••• 1234 #…`; any other: `••• #…`.
    let rest = match rest.strip_prefix("• ") {
        Some(card) => match card.get(..4) {
            Some(last4) if last4.bytes().all(|b| b.is_ascii_digit()) => &card[4..],
            _ => return false,
        },
        None => rest,
    };
    match rest.strip_prefix(" #") {
        Some(fp) => fp.len() == FP_HEX && fp.bytes().all(|b| b.is_ascii_hexdigit()),
        None => false,
    }
}

/// `v` masked: see the module documentation. Already masked values,
/// tombstones, `null` and empty containers stay as they are; a ciphertext
/// becomes `🔒`; objects and arrays are masked leaf by leaf.
pub fn mask_value(v: &Value) -> Value {
    if is_masked(v) || is_tombstone(v) {
        return v.clone();
    }
    if is_ciphertext(v) {
        return Value::String(LOCKED.into());
    }
    match v {
        Value::Null => Value::Null,
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, c)| (k.clone(), mask_value(c))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(mask_value).collect()),
        _ => {
            let fp = fingerprint(v);
            Value::String(match card_digits(v) {
                Some(d) => format!("{DOTS}• {} #{fp}", &d[d.len() - 4..]),
                None => format!("{DOTS} #{fp}"),
            })
        }
    }
}

/// Replaces every ciphertext left in `v` (its key not configured) with
/// `🔒`, sensitive or not: for output, masked or revealed. Never for what
/// is written back.
pub fn lock_value(v: &mut Value) {
    if is_ciphertext(v) {
        *v = Value::String(LOCKED.into());
        return;
    }
    if is_tombstone(v) {
        return;
    }
    match v {
        Value::Object(m) => m.values_mut().for_each(lock_value),
        Value::Array(a) => a.iter_mut().for_each(lock_value),
        _ => {}
    }
}

/// [`lock_value`] over a context.
pub fn lock_ciphertexts(ctx: &mut Map<String, Value>) {
    for v in ctx.values_mut() {
        lock_value(v);
    }
}

fn mask_with<'p>(patterns: impl Iterator<Item = &'p PathPattern>, ctx: &mut Map<String, Value>) {
    let patterns: Vec<&PathPattern> = patterns.collect();
    if !patterns.is_empty() {
        paths::visit_matching_mut(ctx, patterns.iter().copied(), &mut |_, v| {
            *v = mask_value(v)
        });
    }
    lock_ciphertexts(ctx);
}

/// Masks the sensitive values of a `saga_name` saga's context in place,
/// and shows ciphertexts without their key as `🔒`.
pub fn mask_context(sensitive: &SensitivePaths, saga_name: &str, ctx: &mut Map<String, Value>) {
    mask_with(sensitive.for_saga(saga_name), ctx);
}

/// Masks the sensitive values of `s` in place.
pub fn mask_snapshot(sensitive: &SensitivePaths, s: &mut Snapshot) {
    mask_context(sensitive, &s.saga_name, &mut s.context);
}

/// Masks a context that belongs to no known saga name (a replay log's
/// override, a context typed for a replay) with the patterns of every saga
/// name.
pub fn mask_any_context(sensitive: &SensitivePaths, ctx: &mut Map<String, Value>) {
    mask_with(sensitive.all(), ctx);
}

/// Masks a replay log's context override (with every saga name's
/// patterns: the log does not say which saga name it replayed).
pub fn mask_replay_log(sensitive: &SensitivePaths, log: &mut ReplayLog) {
    if let Some(Value::Object(m)) = log.context_override.as_mut() {
        mask_any_context(sensitive, m);
    }
}

/// The path of the first masked value in `s`'s context, if any: such a
/// snapshot must never be written back.
pub fn first_masked(s: &Snapshot) -> Option<String> {
    first_masked_in(&s.context)
}

/// The path of the first masked value in a context, if any.
pub fn first_masked_in(ctx: &Map<String, Value>) -> Option<String> {
    let mut found = None;
    // The walk wants a mutable map; masking is rare on this path (writes),
    // and a clone keeps the signature honest.
    let mut ctx = ctx.clone();
    paths::visit_leaves_mut(&mut ctx, &mut |path, v| {
        if found.is_none() && is_masked(v) {
            found = Some(paths::render(path));
        }
    });
    found
}

/// The paths of `ctx` (concrete, rendered) that the `saga_name` patterns
/// cover and that hold a value: what a reveal of this context shows.
pub fn sensitive_paths_present(
    sensitive: &SensitivePaths,
    saga_name: &str,
    ctx: &Map<String, Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut ctx = ctx.clone();
    let patterns: Vec<&PathPattern> = sensitive.for_saga(saga_name).collect();
    paths::visit_matching_mut(&mut ctx, patterns.iter().copied(), &mut |path, v| {
        if !v.is_null() && !is_tombstone(v) {
            out.push(paths::render(path));
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sens(pairs: &[(&str, &[&str])]) -> SensitivePaths {
        let table = pairs
            .iter()
            .map(|(n, p)| (n.to_string(), p.iter().map(|s| s.to_string()).collect()))
            .collect();
        SensitivePaths::parse(&table).unwrap()
    }

    #[test]
    fn masked_values_carry_no_data_and_equal_values_mask_equally() {
        let a = mask_value(&json!("ann@example.com"));
        let b = mask_value(&json!("ann@example.com"));
        let c = mask_value(&json!("bob@example.com"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let s = a.as_str().unwrap();
        assert!(s.starts_with("••• #") && !s.contains("ann"), "{s}");
        assert!(is_masked(&a) && is_masked(&c));
        assert!(is_masked(&mask_value(&json!(42))));
        assert!(is_masked(&mask_value(&json!(true))));
        assert_eq!(mask_value(&a), a, "masking is idempotent");
    }

    #[test]
    fn card_numbers_keep_their_last_four_and_other_digits_do_not() {
        for card in [
            json!("4242 4242 4242 4242"),
            json!("4242-4242-4242-4242"),
            json!("4242424242424242"),
            json!(4242424242424242u64),
        ] {
            let m = mask_value(&card);
            let s = m.as_str().unwrap();
            assert!(s.starts_with("•••• 4242 #"), "{card} -> {s}");
            assert!(is_masked(&m), "{s}");
        }
        // Not Luhn-valid, too short, letters: plain mask.
        for not in [
            json!("4242424242424241"),
            json!("12345678901"),
            json!("tok_4242"),
        ] {
            let s = mask_value(&not);
            assert!(s.as_str().unwrap().starts_with("••• #"), "{not} -> {s}");
        }
    }

    #[test]
    fn ciphertexts_lock_tombstones_stay_and_shapes_stay_readable() {
        let sp = sens(&[("OrderSaga", &["customer.email", "shipping_address"])]);
        let mut ctx = json!({
            "customer": {"email": "ann@example.com", "id": "C-1"},
            "shipping_address": {"street": "1 Main St", "city": "Oslo", "lines": []},
            "token": {"$enc": "aes-256-gcm", "kid": "dk-1", "iv": "x", "ct": "y"},
            "old": {"$erased": "2026-01-01T00:00:00Z"},
            "note": null,
        })
        .as_object()
        .unwrap()
        .clone();
        let mut other = ctx.clone();
        mask_context(&sp, "OrderSaga", &mut ctx);
        assert!(is_masked(&ctx["customer"]["email"]));
        assert_eq!(ctx["customer"]["id"], "C-1");
        assert!(is_masked(&ctx["shipping_address"]["street"]));
        assert!(is_masked(&ctx["shipping_address"]["city"]));
        assert_eq!(ctx["shipping_address"]["lines"], json!([]));
        assert_eq!(
            ctx["token"], LOCKED,
            "a ciphertext locks outside sensitive paths too"
        );
        assert_eq!(ctx["old"], json!({"$erased": "2026-01-01T00:00:00Z"}));
        assert_eq!(ctx["note"], Value::Null);
        assert_eq!(first_masked_in(&ctx).as_deref(), Some("customer.email"));
        // Another saga name: only the lock.
        mask_context(&sp, "CartSaga", &mut other);
        assert_eq!(other["customer"]["email"], "ann@example.com");
        assert_eq!(other["token"], LOCKED);
        assert_eq!(first_masked_in(&other).as_deref(), Some("token"));
    }

    #[test]
    fn replay_overrides_are_masked_with_every_saga_names_patterns() {
        let sp = sens(&[("A", &["email"]), ("B", &["card.*"])]);
        let mut log = ReplayLog::from_json(json!({
            "replay_id": "r", "original_saga_id": "s", "new_saga_id": "n",
            "checkpoint_step": "pay", "replay_status": "success", "initiated_by": "me",
            "created_at": "2026-01-01T00:00:00+00:00",
            "context_override": {"email": "x@y.z", "card": {"n": "4242424242424242"}, "qty": 2},
        }))
        .unwrap();
        mask_replay_log(&sp, &mut log);
        let o = log.context_override.unwrap();
        assert!(is_masked(&o["email"]));
        assert!(o["card"]["n"].as_str().unwrap().starts_with("•••• 4242"));
        assert_eq!(o["qty"], 2);
    }

    #[test]
    fn data_that_merely_starts_with_dots_is_not_taken_for_a_mask() {
        for v in [
            json!("•••"),
            json!("••• secret"),
            json!("••• #zzzzzz"),
            json!("•••• 12 #abcdef"),
        ] {
            assert!(!is_masked(&v), "{v}");
        }
    }
}
