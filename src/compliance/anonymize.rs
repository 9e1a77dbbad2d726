//! Anonymised copies of sagas (`sagascope export --anonymize`): every
//! sensitive value replaced by a pseudonym, consistently within one export
//! and differently across exports, so a shared bundle can be browsed,
//! diffed and dry-run replayed without exposing anyone.
//!
//! What is replaced, in contexts (and replay overrides):
//! - every value the `[compliance.sensitive]` patterns cover for the saga's
//!   name (replay overrides: any name's patterns);
//! - every value under a key [`scan`](super::scan) calls personal
//!   (`shipping_address`, `payment_token`, `name`, …);
//! - every string the scan's detectors flag (emails, phones, cards, IBANs),
//!   wherever it is;
//! - a replaced string quoted inside another text of the same saga (an
//!   error message, a replay's reason) is replaced there too, and so is a
//!   word of any text that looks personal on its own (an email; a card
//!   number, IBAN or phone written without spaces). A value the config
//!   does not declare, under no personal key, quoted in free text with
//!   spaces inside it, is not found: declare the field.
//!
//! A pseudonym is HMAC-SHA256 of the value under a secret drawn at random
//! for each export and never written anywhere: the same value gets the
//! same pseudonym throughout one export (sagas stay joinable, diffs keep
//! their meaning), and nothing links two exports or leads back to the
//! value. The shape is kept so the bundle still reads as the data did:
//! - emails become `anon-<12 hex>@example.invalid`;
//! - card numbers keep their length, separators and first digit (the
//!   card's network) and are Luhn-valid again; the last four are *not*
//!   kept (masking keeps them for people in-house; a shared bundle should
//!   not);
//! - IBANs keep their country and layout, with valid check digits;
//! - phone numbers keep `+`, separators and a leading `0`;
//! - other strings become `anon-<12 hex>`;
//! - numbers keep sign, digit count, decimal point and exponent;
//! - `true`, `false` and `null` stay (they identify no one), and erasure
//!   tombstones stay; a ciphertext no configured key opens becomes an
//!   `anon-` string, and the wrapped data keys (`sagascope_keys`) are
//!   dropped.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::paths::{is_opaque, visit_leaves_mut, PathSeg, SensitivePaths};
use super::scan::{classify, key_hint, ValueKind};
use crate::model::{ReplayLog, Snapshot};

/// The extra field holding a snapshot's wrapped data keys.
const KEYS_FIELD: &str = "sagascope_keys";

/// Shortest replaced string looked for inside other texts (shorter ones,
/// `NL` or `42`, would turn up everywhere).
const MIN_QUOTED: usize = 6;

/// Replaces sensitive values with pseudonyms under one export's secret.
pub struct Anonymizer {
    secret: [u8; 32],
    sensitive: SensitivePaths,
    /// The current saga's replaced strings and their pseudonyms, for
    /// texts that quote them.
    quoted: Vec<(String, String)>,
    replaced: u64,
}

impl std::fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, never a value.
        f.debug_struct("Anonymizer")
            .field("sensitive", &self.sensitive)
            .field("replaced", &self.replaced)
            .finish_non_exhaustive()
    }
}

impl Anonymizer {
    /// An anonymizer with a fresh random secret (from the OS).
    pub fn new(sensitive: SensitivePaths) -> Self {
        use aes_gcm::aead::rand_core::RngCore;
        let mut secret = [0u8; 32];
        aes_gcm::aead::OsRng.fill_bytes(&mut secret);
        Self::with_secret(secret, sensitive)
    }

    /// An anonymizer with a given secret: the same secret gives the same
    /// pseudonyms (for tests; an export always draws a new one).
    pub fn with_secret(secret: [u8; 32], sensitive: SensitivePaths) -> Self {
        Anonymizer {
            secret,
            sensitive,
            quoted: Vec::new(),
            replaced: 0,
        }
    }

    /// Values replaced so far.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }

    /// Starts a new saga: texts are searched for the values of the saga
    /// they belong to.
    pub fn begin_saga(&mut self) {
        self.quoted.clear();
    }

    /// Anonymises a snapshot in place. Call [`begin_saga`](Self::begin_saga)
    /// before each saga's snapshots and replay-log entries.
    pub fn snapshot(&mut self, s: &mut Snapshot) {
        let name = s.saga_name.clone();
        self.anonymize_map(&mut s.context, Some(&name));
        self.anonymize_map(&mut s.external_refs, Some(&name));
        s.extra.shift_remove(KEYS_FIELD);
        self.anonymize_map(&mut s.extra, Some(&name));
        self.rewrite_quotes(&mut s.context);
        self.rewrite_quotes(&mut s.external_refs);
        self.rewrite_quotes(&mut s.extra);
    }

    /// Anonymises a replay-log entry in place: its override as a context
    /// (every saga name's patterns apply), and the values of its saga
    /// quoted in its texts (error, reason, who).
    pub fn replay(&mut self, r: &mut ReplayLog) {
        if let Some(Value::Object(m)) = &mut r.context_override {
            self.anonymize_map(m, None);
        }
        self.anonymize_map(&mut r.extra, None);
        if classify(&r.initiated_by).is_some() {
            r.initiated_by = self.string(&r.initiated_by);
        }
        if let Some(Value::Object(m)) = &mut r.context_override {
            self.rewrite_quotes(m);
        }
        self.rewrite_quotes(&mut r.extra);
        for text in [Some(&mut r.initiated_by), r.error_message.as_mut()]
            .into_iter()
            .flatten()
        {
            *text = self.requote(text);
        }
    }

    fn anonymize_map(&mut self, m: &mut Map<String, Value>, saga_name: Option<&str>) {
        let mut todo: Vec<(Vec<PathSeg>, Value)> = Vec::new();
        let sensitive = &self.sensitive;
        visit_leaves_mut(m, &mut |path, v| {
            let declared = match saga_name {
                Some(n) => sensitive.is_sensitive(n, path),
                None => sensitive.all().any(|p| p.covers(path)),
            };
            let by_key = path
                .iter()
                .any(|seg| matches!(seg, PathSeg::Key(k) if key_hint(k).is_some()));
            let by_value = matches!(v, Value::String(s) if classify(s).is_some());
            if declared || by_key || by_value {
                todo.push((path.to_vec(), v.clone()));
            }
        });
        for (path, old) in todo {
            let new = self.value(&old);
            if new != old {
                self.replaced += 1;
            }
            if let Some(slot) = leaf_at(m, &path) {
                *slot = new;
            }
        }
    }

    /// Replaces, in every string leaf, the current saga's replaced values
    /// quoted inside it and the personal-looking words (see
    /// [`requote`](Self::requote)).
    fn rewrite_quotes(&self, m: &mut Map<String, Value>) {
        visit_leaves_mut(m, &mut |_, v| {
            // A whole value that looks personal was replaced already.
            if let Value::String(s) = v {
                if is_pseudonym(s) || classify(s).is_some() {
                    return;
                }
                let new = self.requote(s);
                if new != *s {
                    *s = new;
                }
            }
        });
    }

    /// `s` with the current saga's replaced values, and any word that
    /// looks personal on its own (an email; a card, IBAN or phone written
    /// without spaces), replaced by their pseudonyms.
    fn requote(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (old, new) in &self.quoted {
            if out.contains(old.as_str()) {
                out = out.replace(old.as_str(), new);
            }
        }
        if !out.contains(|c: char| c == '@' || c.is_ascii_digit()) {
            return out;
        }
        let mut words = String::with_capacity(out.len());
        for (i, piece) in out.split(' ').enumerate() {
            if i > 0 {
                words.push(' ');
            }
            let edge = |c: char| ",;:!?()[]{}<>\"'`.".contains(c);
            let core = piece.trim_matches(edge);
            if core.is_empty() || is_pseudonym(core) || classify(core).is_none() {
                words.push_str(piece);
                continue;
            }
            let start = piece.find(core).unwrap_or(0);
            words.push_str(&piece[..start]);
            words.push_str(&self.pseudonym(core));
            words.push_str(&piece[start + core.len()..]);
        }
        words
    }

    fn mac(&self, tag: &str, data: &str) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes a key of any length");
        m.update(tag.as_bytes());
        m.update(&[0]);
        m.update(data.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// The pseudonym of one leaf.
    pub fn value(&mut self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.string(s)),
            Value::Number(n) => self.number(&n.to_string()),
            Value::Object(m) if m.contains_key("$erased") => v.clone(),
            Value::Object(_) if is_opaque(v) => {
                Value::String(self.generic(&serde_json::to_string(v).unwrap_or_default()))
            }
            // Empty containers, booleans and null say nothing of anyone.
            other => other.clone(),
        }
    }

    /// The pseudonym of a string, remembered for texts quoting it.
    fn string(&mut self, s: &str) -> String {
        if is_pseudonym(s) {
            // Already a pseudonym (an anonymised bundle exported again).
            return s.to_string();
        }
        let new = self.pseudonym(s);
        if s.chars().count() >= MIN_QUOTED && !self.quoted.iter().any(|(o, _)| o == s) {
            self.quoted.push((s.to_string(), new.clone()));
            // Longest first, so a value inside another is not replaced first.
            self.quoted.sort_by_key(|(o, _)| std::cmp::Reverse(o.len()));
        }
        new
    }

    /// The pseudonym of a string, by what it looks like.
    fn pseudonym(&self, s: &str) -> String {
        match classify(s) {
            Some(ValueKind::Email) => {
                let h = self.mac("email", &s.trim().to_lowercase());
                format!("anon-{}@example.invalid", hex12(&h))
            }
            Some(ValueKind::Card) => self.card(s),
            Some(ValueKind::Iban) => self.iban(s),
            Some(ValueKind::Phone) => self.phone(s),
            None => self.generic(s),
        }
    }

    fn generic(&self, s: &str) -> String {
        format!("anon-{}", hex12(&self.mac("string", s)))
    }

    /// Pseudo digits from a MAC, as many as needed.
    fn digits(&self, tag: &str, data: &str, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        let mut round = 0u32;
        while out.len() < n {
            let h = self.mac(tag, &format!("{data}\0{round}"));
            out.extend(h.iter().map(|b| b % 10));
            round += 1;
        }
        out.truncate(n);
        out
    }

    fn card(&self, s: &str) -> String {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let mut fresh = self.digits("card", &digits, digits.len());
        if let (Some(first), Some(orig)) = (fresh.first_mut(), digits.bytes().next()) {
            *first = orig - b'0';
        }
        // The check digit that makes it Luhn-valid.
        let n = fresh.len();
        fresh[n - 1] = 0;
        let sum: u32 = fresh
            .iter()
            .rev()
            .enumerate()
            .map(|(i, d)| {
                let mut v = u32::from(*d);
                if i % 2 == 1 {
                    v *= 2;
                    if v > 9 {
                        v -= 9;
                    }
                }
                v
            })
            .sum();
        fresh[n - 1] = ((10 - sum % 10) % 10) as u8;
        let mut it = fresh.into_iter();
        s.chars()
            .map(|c| {
                if c.is_ascii_digit() {
                    char::from(b'0' + it.next().unwrap_or(0))
                } else {
                    c
                }
            })
            .collect()
    }

    fn iban(&self, s: &str) -> String {
        let compact: String = s.chars().filter(|c| *c != ' ').collect();
        let digits = self.digits("iban", &compact, compact.len());
        let mut out: Vec<char> = compact
            .chars()
            .enumerate()
            .map(|(i, c)| match i {
                0..=1 => c,
                2..=3 => '0',
                _ if c.is_ascii_digit() => char::from(b'0' + digits[i]),
                _ => char::from(b'A' + (digits[i] * 2 + digits[i - 1] % 3) % 26),
            })
            .collect();
        let rem = super::scan::iban_mod97(&out).unwrap_or(0);
        let check = 98 - rem;
        out[2] = char::from(b'0' + (check / 10) as u8);
        out[3] = char::from(b'0' + (check % 10) as u8);
        // Back into the original's spacing.
        let mut it = out.into_iter();
        s.chars()
            .map(|c| {
                if c == ' ' {
                    ' '
                } else {
                    it.next().unwrap_or('0')
                }
            })
            .collect()
    }

    fn phone(&self, s: &str) -> String {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let fresh = self.digits("phone", &digits, digits.len());
        let mut it = fresh.into_iter();
        let mut first = true;
        s.chars()
            .map(|c| {
                if !c.is_ascii_digit() {
                    return c;
                }
                let d = it.next().unwrap_or(0);
                let keep_zero = first && c == '0';
                first = false;
                if keep_zero {
                    '0'
                } else {
                    // 1-9: a pseudonym never gains a trunk prefix.
                    char::from(b'1' + d % 9)
                }
            })
            .collect()
    }

    /// Digits replaced, sign, decimal point and exponent kept; a leading
    /// non-zero digit stays non-zero (the magnitude is kept).
    fn number(&self, text: &str) -> Value {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => text.split_at(i),
            None => (text, ""),
        };
        let n = mantissa.chars().filter(char::is_ascii_digit).count();
        let fresh = self.digits("number", text, n);
        let mut it = fresh.into_iter();
        let mut leading = true;
        let mut out: String = mantissa
            .chars()
            .map(|c| {
                if !c.is_ascii_digit() {
                    return c;
                }
                let d = it.next().unwrap_or(0);
                let was_leading = leading;
                leading = false;
                if was_leading && c != '0' {
                    char::from(b'1' + d % 9)
                } else if was_leading {
                    '0'
                } else {
                    char::from(b'0' + d)
                }
            })
            .collect();
        out.push_str(exponent);
        serde_json::from_str::<serde_json::Number>(&out)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::from(0))
    }
}

/// `anon-<12 hex>`, optionally `@example.invalid`: what [`Anonymizer`]
/// writes for strings.
fn is_pseudonym(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("anon-") else {
        return false;
    };
    let hex = rest.strip_suffix("@example.invalid").unwrap_or(rest);
    hex.len() == 12 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

fn hex12(h: &[u8; 32]) -> String {
    h[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The value at `path` in `m`.
fn leaf_at<'m>(m: &'m mut Map<String, Value>, path: &[PathSeg]) -> Option<&'m mut Value> {
    let (first, rest) = path.split_first()?;
    let PathSeg::Key(k) = first else {
        return None;
    };
    let mut cur = m.get_mut(k)?;
    for seg in rest {
        cur = match (seg, cur) {
            (PathSeg::Key(k), Value::Object(o)) => o.get_mut(k)?,
            (PathSeg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::scan::{is_card_number, is_email, is_iban, is_phone};
    use crate::model::SagaStatus;
    use serde_json::json;

    fn sensitive(pats: &[&str]) -> SensitivePaths {
        SensitivePaths::parse(
            &[(
                "OrderSaga".to_string(),
                pats.iter().map(|p| p.to_string()).collect(),
            )]
            .into(),
        )
        .unwrap()
    }

    fn snap(ctx: Value) -> Snapshot {
        Snapshot::new(
            "saga-1",
            "OrderSaga",
            "step",
            0,
            SagaStatus::Executing,
            ctx.as_object().unwrap().clone(),
            vec![],
        )
    }

    #[test]
    fn pseudonyms_keep_the_shape_and_are_consistent_under_one_secret() {
        let mut a = Anonymizer::with_secret([7; 32], sensitive(&["loyalty", "customer.id"]));
        let mut s = snap(json!({
            "order_id": "ord-1001",
            "customer": {"id": "cus-200", "email": "Customer200@Example.com"},
            "card": "4111 1111 1111 1111",
            "iban": "DE89 3704 0044 0532 0130 00",
            "contact": "+31 6 1234 5678",
            "loyalty": {"points": 1234, "rate": -0.75, "gold": true, "note": null},
            "items": [{"sku": "SKU-MUG", "qty": 2}],
            "error": "card 4111 1111 1111 1111 declined for cus-200",
        }));
        a.begin_saga();
        a.snapshot(&mut s);
        let c = &s.context;
        assert_eq!(c["order_id"], "ord-1001");
        assert_eq!(c["items"], json!([{"sku": "SKU-MUG", "qty": 2}]));
        let email = c["customer"]["email"].as_str().unwrap();
        assert!(email.starts_with("anon-") && email.ends_with("@example.invalid"));
        assert!(is_email(email));
        let card = c["card"].as_str().unwrap();
        assert!(
            is_card_number(card) && card.len() == 19 && card.starts_with('4'),
            "{card}"
        );
        assert_ne!(card, "4111 1111 1111 1111");
        let iban = c["iban"].as_str().unwrap();
        assert!(
            is_iban(iban) && iban.starts_with("DE") && iban.len() == 27,
            "{iban}"
        );
        let phone = c["contact"].as_str().unwrap();
        assert!(
            is_phone(phone) && phone.starts_with("+") && phone.len() == 15,
            "{phone}"
        );
        let points = c["loyalty"]["points"].as_i64().unwrap();
        assert!((1000..10_000).contains(&points), "{points}");
        let rate = c["loyalty"]["rate"].as_f64().unwrap();
        assert!(rate < 0.0 && rate > -1.0, "{rate}");
        assert_eq!(c["loyalty"]["gold"], true);
        assert_eq!(c["loyalty"]["note"], Value::Null);
        let id = c["customer"]["id"].as_str().unwrap();
        assert!(id.starts_with("anon-"));
        // The quoted card and customer id inside the error text are replaced too.
        let err = c["error"].as_str().unwrap();
        assert_eq!(err, format!("card {card} declined for {id}"));

        // Same secret: same pseudonyms (case of an email does not matter);
        // another secret: others.
        let mut b = Anonymizer::with_secret([7; 32], sensitive(&["customer.id"]));
        let mut t =
            snap(json!({"customer": {"id": "cus-200", "email": "customer200@example.com"}}));
        b.begin_saga();
        b.snapshot(&mut t);
        assert_eq!(t.context["customer"]["email"], email);
        assert_eq!(t.context["customer"]["id"], id);
        let mut other = Anonymizer::with_secret([8; 32], sensitive(&["customer.id"]));
        let mut u =
            snap(json!({"customer": {"id": "cus-200", "email": "customer200@example.com"}}));
        other.snapshot(&mut u);
        assert_ne!(u.context["customer"]["email"], email);
        assert!(!format!("{a:?}").contains("7, 7"), "Debug shows no secret");
    }

    #[test]
    fn replay_overrides_and_texts_are_anonymised() {
        let mut a = Anonymizer::with_secret([1; 32], sensitive(&["payment_token"]));
        a.begin_saga();
        let mut s = snap(json!({"payment_token": "tok_000123"}));
        a.snapshot(&mut s);
        let mut r = ReplayLog {
            replay_id: "r".into(),
            original_saga_id: "saga-1".into(),
            new_saga_id: "n".into(),
            checkpoint_step: "charge".into(),
            replay_status: crate::model::ReplayStatus::Failed,
            initiated_by: "oncall@example.com".into(),
            context_override: Some(json!({"payment_token": "tok_999"})),
            error_message: Some("token tok_000123 expired".into()),
            created_at: crate::model::Timestamp::now(),
            completed_at: None,
            extra: Map::new(),
        };
        a.replay(&mut r);
        let text = serde_json::to_string(&r.to_json()).unwrap();
        for secret in ["tok_000123", "tok_999", "oncall@example.com"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(r.error_message.unwrap().starts_with("token anon-"));

        // A personal word in any text, even of another saga's value.
        a.begin_saga();
        let mut t = snap(json!({"note": "mail (jane@example.org), then call +31612345678."}));
        a.snapshot(&mut t);
        let note = t.context["note"].as_str().unwrap();
        assert!(note.starts_with("mail (anon-") && note.contains("@example.invalid), then call +"));
        assert!(
            !note.contains("jane") && !note.contains("31612345678"),
            "{note}"
        );
        assert!(note.ends_with('.'), "{note}");
    }
}
