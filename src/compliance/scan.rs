//! Finding personal data in contexts, so the `[compliance.sensitive]`
//! config can be written from evidence (`sagascope scan-pii`), and so an
//! anonymised export can replace what looks personal even where nothing is
//! declared.
//!
//! Detectors, each chosen to stay quiet on ids, SKUs, amounts and dates:
//! - emails: `local@domain.tld`;
//! - phone numbers: 8 to 15 digits with only `+ - . ( ) /` and spaces
//!   around them, starting with `+` or `0` (international and national
//!   trunk prefixes) or written in groups (`(415) 555-2671`); dates and IP
//!   addresses are not phones;
//! - card numbers: 13 to 19 digits (spaces or dashes between), Luhn-valid;
//! - IBANs: a country code, two check digits and up to 30 letters and
//!   digits (spaces allowed), mod-97 valid;
//! - key names: `email`, `phone`, `ssn`, `name`, `first_name`, `address`,
//!   `street`, `iban`, `card`, `token`, `password`, `dob`, `birth`… (a key
//!   matches when one of its words does: `shipping_address`,
//!   `payment_token`, `dateOfBirth`).
//!
//! A report names paths, saga names, counts and which detector fired —
//! never a value.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::paths::{is_opaque, PathSeg, SensitivePaths};
use crate::model::{SagaSummary, Snapshot};
use crate::store::{SagaFilter, SagaPageRequest, SnapshotQuery, SnapshotStore, StoreError};

/// What a string value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A Luhn-valid card number.
    Card,
    /// A mod-97-valid IBAN.
    Iban,
}

impl ValueKind {
    /// Its name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Email => "email",
            ValueKind::Phone => "phone",
            ValueKind::Card => "card number",
            ValueKind::Iban => "iban",
        }
    }
}

/// What `s` looks like, if personal. Cards are tried before phones (a
/// 15-digit Luhn-valid number is a card).
pub fn classify(s: &str) -> Option<ValueKind> {
    let s = s.trim();
    if s.len() > 64 {
        return None;
    }
    if is_email(s) {
        Some(ValueKind::Email)
    } else if is_card_number(s) {
        Some(ValueKind::Card)
    } else if is_iban(s) {
        Some(ValueKind::Iban)
    } else if is_phone(s) {
        Some(ValueKind::Phone)
    } else {
        None
    }
}

/// `local@domain.tld`: one `@`, a dotted domain ending in 2+ letters, no
/// spaces.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// The Luhn checksum of a digit string.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The digits of `s` when it is only digits and the separators `seps`
/// allows (never two in a row, never at an end).
fn digits_with(s: &str, seps: &str) -> Option<Vec<u8>> {
    let mut digits = Vec::new();
    let mut last_sep = true;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            digits.push(d as u8);
            last_sep = false;
        } else if seps.contains(c) && !last_sep {
            last_sep = true;
        } else {
            return None;
        }
    }
    (!last_sep).then_some(digits)
}

/// 13 to 19 digits (spaces or dashes between), Luhn-valid, not all zeros.
pub fn is_card_number(s: &str) -> bool {
    match digits_with(s, " -") {
        Some(d) => (13..=19).contains(&d.len()) && d.iter().any(|&x| x != 0) && luhn_valid(&d),
        None => false,
    }
}

/// A country code, two check digits and 11 to 30 letters or digits (15 to
/// 34 in all; spaces allowed), mod-97 valid.
pub fn is_iban(s: &str) -> bool {
    let compact: Vec<char> = s.chars().filter(|c| *c != ' ').collect();
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(|c| c.is_ascii_uppercase())
        || !compact[2..4].iter().all(|c| c.is_ascii_digit())
        || !compact[4..].iter().all(|c| c.is_ascii_alphanumeric())
        || s.starts_with(' ')
        || s.contains("  ")
    {
        return false;
    }
    iban_mod97(&compact) == Some(1)
}

/// The IBAN's number (first four characters moved to the end, letters as
/// 10..35) modulo 97.
pub fn iban_mod97(compact: &[char]) -> Option<u32> {
    if compact.len() < 4 {
        return None;
    }
    let mut rem = 0u32;
    for c in compact[4..].iter().chain(&compact[..4]) {
        let v = c.to_digit(36)?;
        rem = if v < 10 {
            (rem * 10 + v) % 97
        } else {
            (rem * 100 + v) % 97
        };
    }
    Some(rem)
}

/// A phone number; see the module documentation.
pub fn is_phone(s: &str) -> bool {
    let (plus, rest) = match s.strip_prefix('+') {
        Some(r) => (true, r.trim_start()),
        None => (false, s),
    };
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_digit() || " -.()/".contains(c))
    {
        return false;
    }
    let digits: Vec<char> = rest.chars().filter(char::is_ascii_digit).collect();
    if !(8..=15).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let groups: Vec<&str> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if looks_like_date_or_ip(rest, &groups) {
        return false;
    }
    if plus {
        return true;
    }
    // A bare run of digits is as likely an id or an amount as a phone; a
    // national number starts with its trunk prefix 0, or is written in
    // groups.
    digits[0] == '0' || (groups.len() >= 2 && groups.iter().all(|g| g.len() >= 2))
}

fn looks_like_date_or_ip(s: &str, groups: &[&str]) -> bool {
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let date = matches!(lens.as_slice(), [4, 2, 2] | [2, 2, 4] | [4, 2, 2, 2, 2, ..]);
    let ip = groups.len() == 4 && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    date || ip
}

/// The words of a key, lowercase: `shipping_address` → shipping, address;
/// `dateOfBirth` → date, of, birth.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Words that make a key personal wherever they appear in it.
const KEY_WORDS: &[&str] = &[
    "email",
    "phone",
    "mobile",
    "telephone",
    "msisdn",
    "ssn",
    "address",
    "street",
    "postcode",
    "zip",
    "iban",
    "bic",
    "card",
    "pan",
    "cvv",
    "cvc",
    "token",
    "password",
    "passwd",
    "secret",
    "dob",
    "birth",
    "birthday",
    "birthdate",
    "passport",
    "surname",
];

/// Whole keys (their words joined) that are personal: `name` alone is too
/// common a word (`step_name`, `file_name`) to count anywhere in a key.
const WHOLE_KEYS: &[&str] = &[
    "name",
    "firstname",
    "lastname",
    "fullname",
    "givenname",
    "familyname",
    "middlename",
    "customername",
    "cardholder",
    "cardnumber",
    "taxid",
    "nationalid",
    "socialsecuritynumber",
    "ipaddress",
    "ip",
];

/// Why `key` names a personal field (`key name: address`), if it does.
pub fn key_hint(key: &str) -> Option<String> {
    let words = key_words(key);
    if let Some(w) = words.iter().find(|w| KEY_WORDS.contains(&w.as_str())) {
        return Some(w.clone());
    }
    let whole: String = words.concat();
    WHOLE_KEYS
        .contains(&whole.as_str())
        .then(|| key.to_lowercase())
}

/// A concrete path with array positions generalised to `*`: the pattern a
/// report and the config use.
pub fn generalise(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match seg {
            PathSeg::Index(_) => out.push('*'),
            PathSeg::Key(k) => out.push_str(k),
        }
    }
    out
}

/// One place where personal data was found: a path pattern of one saga
/// name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The saga name the contexts belong to.
    pub saga_name: String,
    /// The path pattern (`customer.email`, `items.*.card`,
    /// `shipping_address.*` for an object whose key is personal).
    pub path: String,
    /// How many values (or, for a personal key holding an object or array,
    /// how many such objects) were found.
    pub count: u64,
    /// In how many sagas.
    pub sagas: u64,
    /// What matched: `email`, `phone`, `card number`, `iban`, `key name:
    /// address`.
    pub matched: BTreeSet<String>,
    /// Whether every value found is already covered by
    /// `[compliance.sensitive]`.
    pub declared: bool,
}

/// What `scan` read and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanReport {
    /// Sagas in the store.
    pub sagas_in_store: u64,
    /// Sagas whose snapshots were read.
    pub sagas_read: u64,
    /// Snapshots read.
    pub snapshots_read: u64,
    /// Entries that could not be read (left out).
    pub unreadable: u64,
    /// Findings, by saga name then path.
    pub findings: Vec<Finding>,
    /// A `[compliance.sensitive]` table declaring what is not declared yet
    /// (each saga name's line keeps its patterns already declared), or
    /// empty when everything found is declared.
    pub suggested_config: String,
}

#[derive(Default)]
struct Acc {
    count: u64,
    sagas: BTreeSet<String>,
    matched: BTreeSet<String>,
    declared: bool,
    seen: bool,
}

/// Collects the findings of many contexts.
pub struct Scanner<'a> {
    sensitive: &'a SensitivePaths,
    found: BTreeMap<(String, String), Acc>,
}

impl<'a> Scanner<'a> {
    /// A scanner that marks findings `sensitive` already covers.
    pub fn new(sensitive: &'a SensitivePaths) -> Self {
        Scanner {
            sensitive,
            found: BTreeMap::new(),
        }
    }

    /// Looks at one snapshot's context.
    pub fn scan_snapshot(&mut self, s: &Snapshot) {
        let mut path = Vec::new();
        for (k, v) in &s.context {
            path.push(PathSeg::Key(k.clone()));
            self.walk(s, v, &mut path);
            path.pop();
        }
    }

    fn walk(&mut self, s: &Snapshot, v: &Value, path: &mut Vec<PathSeg>) {
        if let Some(PathSeg::Key(k)) = path.last() {
            if let Some(word) = key_hint(k) {
                let container = matches!(v, Value::Object(m) if !m.is_empty() && !is_opaque(v))
                    || matches!(v, Value::Array(a) if !a.is_empty());
                let mut pattern = generalise(path);
                if container {
                    pattern.push_str(".*");
                }
                let mut kinds = BTreeSet::new();
                let mut declared = true;
                let sensitive = self.sensitive;
                leaves(v, path, &mut |p, leaf| {
                    if let Value::String(text) = leaf {
                        if let Some(kind) = classify(text) {
                            kinds.insert(kind.as_str().to_string());
                        }
                    }
                    declared &= sensitive.is_sensitive(&s.saga_name, p);
                });
                kinds.insert(format!("key name: {word}"));
                self.record(s, pattern, kinds, declared);
                return;
            }
        }
        if is_opaque(v) {
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    path.push(PathSeg::Key(k.clone()));
                    self.walk(s, c, path);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    self.walk(s, c, path);
                    path.pop();
                }
            }
            Value::String(text) => {
                if let Some(kind) = classify(text) {
                    let declared = self.sensitive.is_sensitive(&s.saga_name, path);
                    self.record(
                        s,
                        generalise(path),
                        BTreeSet::from([kind.as_str().to_string()]),
                        declared,
                    );
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, s: &Snapshot, pattern: String, kinds: BTreeSet<String>, declared: bool) {
        let acc = self
            .found
            .entry((s.saga_name.clone(), pattern))
            .or_default();
        acc.count += 1;
        if !acc.sagas.contains(&s.saga_id) {
            acc.sagas.insert(s.saga_id.clone());
        }
        acc.matched.extend(kinds);
        acc.declared = if acc.seen {
            acc.declared && declared
        } else {
            declared
        };
        acc.seen = true;
    }

    /// The findings so far, by saga name then path.
    pub fn findings(&self) -> Vec<Finding> {
        self.found
            .iter()
            .map(|((name, path), a)| Finding {
                saga_name: name.clone(),
                path: path.clone(),
                count: a.count,
                sagas: a.sagas.len() as u64,
                matched: a.matched.clone(),
                declared: a.declared,
            })
            .collect()
    }
}

/// Calls `f` on every leaf under `v` (itself when it is one) with its path.
fn leaves(v: &Value, path: &mut Vec<PathSeg>, f: &mut dyn FnMut(&[PathSeg], &Value)) {
    if is_opaque(v) {
        return f(path, v);
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(PathSeg::Key(k.clone()));
                leaves(c, path, f);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, c) in a.iter().enumerate() {
                path.push(PathSeg::Index(i));
                leaves(c, path, f);
                path.pop();
            }
        }
        _ => f(path, v),
    }
}

/// A TOML key: bare when it can be, else a quoted string.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

fn toml_string(s: &str) -> String {
    // JSON string syntax is valid TOML basic-string syntax for what paths hold.
    serde_json::to_string(s).unwrap_or_default()
}

/// The `[compliance.sensitive]` table that declares every undeclared
/// finding, keeping each saga name's patterns already in `declared`.
/// A pattern another suggested pattern covers is left out.
pub fn suggest_config(findings: &[Finding], declared: &BTreeMap<String, Vec<String>>) -> String {
    let mut new: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in findings.iter().filter(|f| !f.declared) {
        new.entry(f.saga_name.as_str()).or_default().push(&f.path);
    }
    if new.is_empty() {
        return String::new();
    }
    let mut out = String::from("[compliance.sensitive]\n");
    for (name, paths) in new {
        let containers: Vec<&str> = paths.iter().filter_map(|p| p.strip_suffix(".*")).collect();
        let mut list: Vec<String> = declared.get(name).cloned().unwrap_or_default();
        for p in paths {
            let covered = containers
                .iter()
                .any(|c| p != format!("{c}.*") && p.starts_with(&format!("{c}.")));
            if !covered && !list.iter().any(|x| x == p) {
                list.push(p.to_string());
            }
        }
        let items: Vec<String> = list.iter().map(|p| toml_string(p)).collect();
        out.push_str(&format!("{} = [{}]\n", toml_key(name), items.join(", ")));
    }
    out
}

/// Reads up to `sample` snapshots, spread over saga names and sagas (each
/// chosen saga's newest first), and reports where personal data is. Read
/// through a store that does not mask (`store::unmasked`), or masked values
/// hide what they are.
pub async fn scan(
    store: &dyn SnapshotStore,
    sensitive: &SensitivePaths,
    declared: &BTreeMap<String, Vec<String>>,
    sample: usize,
) -> Result<ScanReport, StoreError> {
    let sample = sample.max(1);
    let mut sagas: Vec<SagaSummary> = Vec::new();
    let mut unreadable = 0u64;
    let mut req = SagaPageRequest {
        limit: 1000,
        after: None,
    };
    loop {
        let page = store.list_sagas(&SagaFilter::default(), &req).await?;
        sagas.extend(page.sagas);
        unreadable += page.bad.len() as u64;
        match page.next {
            Some(n) => req.after = Some(n),
            None => break,
        }
    }
    let chosen = spread(&sagas, sample);
    let per_saga = (sample / chosen.len().max(1)).max(1);
    let mut scanner = Scanner::new(sensitive);
    let mut read = 0u64;
    for saga in &chosen {
        let left = sample.saturating_sub(read as usize);
        if left == 0 {
            break;
        }
        let l = store
            .list_snapshots(&saga.saga_id, &SnapshotQuery::newest(per_saga.min(left)))
            .await?;
        unreadable += l.bad.len() as u64;
        for s in &l.items {
            scanner.scan_snapshot(s);
            read += 1;
        }
    }
    let findings = scanner.findings();
    Ok(ScanReport {
        sagas_in_store: sagas.len() as u64,
        sagas_read: chosen.len() as u64,
        snapshots_read: read,
        unreadable,
        suggested_config: suggest_config(&findings, declared),
        findings,
    })
}

/// At most `n` sagas, taking each saga name in turn, so a name with few
/// sagas is read as well as a busy one.
fn spread(sagas: &[SagaSummary], n: usize) -> Vec<&SagaSummary> {
    let mut by_name: BTreeMap<&str, Vec<&SagaSummary>> = BTreeMap::new();
    for s in sagas {
        by_name.entry(&s.saga_name).or_default().push(s);
    }
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < n.min(sagas.len()) {
        for list in by_name.values() {
            if let Some(s) = list.get(round) {
                out.push(*s);
                if out.len() == n {
                    break;
                }
            }
        }
        round += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SagaStatus;
    use serde_json::json;

    #[test]
    fn detectors_find_personal_values() {
        for (v, kind) in [
            ("customer200@example.com", ValueKind::Email),
            ("first.last+tag@mail.example.co.uk", ValueKind::Email),
            ("+31 6 1234 5678", ValueKind::Phone),
            ("+14155552671", ValueKind::Phone),
            ("(415) 555-2671", ValueKind::Phone),
            ("020 7946 0958", ValueKind::Phone),
            ("0612345678", ValueKind::Phone),
            ("4111 1111 1111 1111", ValueKind::Card),
            ("4111-1111-1111-1111", ValueKind::Card),
            ("5500005555555559", ValueKind::Card),
            ("378282246310005", ValueKind::Card),
            ("NL91ABNA0417164300", ValueKind::Iban),
            ("DE89 3704 0044 0532 0130 00", ValueKind::Iban),
            ("GB82WEST12345698765432", ValueKind::Iban),
        ] {
            assert_eq!(classify(v), Some(kind), "{v}");
        }
    }

    #[test]
    fn ids_skus_amounts_and_dates_are_not_personal() {
        for v in [
            "ord-1001",
            "SKU-MUG",
            "cus-203",
            "tok_031337",
            "LY424242",
            "KL1203",
            "TRK_3A5F09C1D2E4",
            "12345678",
            "4111111111111112",
            "0000000000000",
            "NL91ABNA0417164301",
            "2026-11-30",
            "30.11.2026",
            "2026-11-30 10:30:00",
            "192.168.100.200",
            "1234567890123",
            "12.50",
            "user@localhost",
            "@example.com",
            "Traveler 1",
            "customer visit",
            "e1b4c8a2-3f5d-4e6f-8a9b-0c1d2e3f4a5b",
        ] {
            assert_eq!(classify(v), None, "{v}");
        }
    }

    #[test]
    fn key_names_match_by_word() {
        for k in [
            "email",
            "shipping_address",
            "payment_token",
            "card",
            "card_number",
            "cardNumber",
            "dateOfBirth",
            "dob",
            "ssn",
            "name",
            "first_name",
            "lastName",
            "street",
            "iban",
            "password",
        ] {
            assert!(key_hint(k).is_some(), "{k}");
        }
        for k in [
            "order_id",
            "sku",
            "step_name",
            "saga_name",
            "city",
            "country",
            "tokens",
            "items",
            "currency",
            "limit",
            "cardinality",
        ] {
            assert_eq!(key_hint(k), None, "{k}");
        }
    }

    fn snap(name: &str, saga: &str, ctx: Value) -> Snapshot {
        Snapshot::new(
            saga,
            name,
            "step",
            0,
            SagaStatus::Executing,
            ctx.as_object().unwrap().clone(),
            vec![],
        )
    }

    #[test]
    fn findings_generalise_indices_fold_personal_objects_and_know_what_is_declared() {
        let declared: BTreeMap<String, Vec<String>> =
            [("OrderSaga".to_string(), vec!["customer.email".to_string()])].into();
        let sensitive = SensitivePaths::parse(&declared).unwrap();
        let mut sc = Scanner::new(&sensitive);
        for (i, saga) in ["s1", "s2"].iter().enumerate() {
            sc.scan_snapshot(&snap(
                "OrderSaga",
                saga,
                json!({
                    "order_id": format!("ord-100{i}"),
                    "customer": {"id": "cus-1", "email": "a@example.com"},
                    "payments": [{"pan": "x"}, {"note": "4111 1111 1111 1111"}],
                    "shipping_address": {"street": "1 Canal St", "city": "Amsterdam"},
                    "payment_token": "tok_1",
                }),
            ));
        }
        let f = sc.findings();
        let by: BTreeMap<&str, &Finding> = f.iter().map(|f| (f.path.as_str(), f)).collect();
        assert_eq!(
            by.keys().copied().collect::<Vec<_>>(),
            [
                "customer.email",
                "payment_token",
                "payments.*.note",
                "payments.*.pan",
                "shipping_address.*"
            ]
        );
        assert!(by["customer.email"].declared);
        assert!(!by["shipping_address.*"].declared);
        assert_eq!(
            by["payments.*.note"].matched,
            BTreeSet::from(["card number".into()])
        );
        assert_eq!(by["payment_token"].count, 2);
        assert_eq!(by["payment_token"].sagas, 2);
        let toml = suggest_config(&f, &declared);
        assert_eq!(
            toml,
            "[compliance.sensitive]\nOrderSaga = [\"customer.email\", \"payment_token\", \"payments.*.note\", \"payments.*.pan\", \"shipping_address.*\"]\n"
        );
        let parsed: toml::Value = toml::from_str(&toml).unwrap();
        assert!(parsed["compliance"]["sensitive"]["OrderSaga"].is_array());
    }
}
