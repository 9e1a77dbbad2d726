//! The bodies of the fuzz targets in `fuzz/`, here so that `cargo test`
//! (on stable, `tests/fuzz_corpus.rs`) feeds every file of the kept corpus
//! through exactly what the fuzzer runs. Each takes arbitrary bytes, must
//! never panic, and asserts the properties that are cheap to check; a
//! failed assertion is a bug, like a crash.
//!
//! Not part of the library's API.

use serde_json::Map;

use crate::model::{ReplayLog, SagaStatus, SagaSummary, Snapshot, Timestamp};
use crate::replay::{self, MergeMode};
use crate::store::codec::{self, Codec, Compression, JsonStyle, Limits};
use crate::store::rows::{snapshot_from_columns, SnapshotColumns, TimeColumn};
use crate::store::{self, StoreUrl};

/// A target: arbitrary bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// The targets, by the name of their corpus folder.
pub const TARGETS: [(&str, Target); 7] = [
    ("decode_entry", decode_entry),
    ("decode_row", decode_row),
    ("override_input", override_input),
    ("time_input", time_input),
    ("store_url", store_url),
    ("tui_filter", tui_filter),
    ("bundle_input", bundle_input),
];

/// Small caps so the fuzzer spends its time on parsing, not on filling
/// 128 MiB buffers; the code that enforces them is the same.
fn fuzz_codec() -> Codec {
    Codec {
        limits: Limits {
            max_stored_bytes: 1 << 20,
            max_decoded_bytes: 1 << 20,
            max_depth: 128,
        },
        ..Codec::default()
    }
}

/// A stored entry (a Redis or S3 value, a file in a folder store) in any
/// codec becomes a snapshot or a replay log, or an error. The first byte
/// picks how the rest is framed: as is (the decoder sniffs zstd and gzip
/// magic itself), or compressed here first so the JSON inside is fuzzed
/// through each decompressor. A snapshot that decodes re-encodes, in every
/// codec and style, to bytes that decode to the same snapshot.
pub fn decode_entry(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let framed = match mode % 4 {
        1 => codec::compress(rest, Compression::zstd()),
        2 => codec::compress(rest, Compression::gzip()),
        _ => rest.to_vec(),
    };
    let codec = fuzz_codec();
    let Ok(value) = codec.decode(&framed) else {
        return;
    };
    if let Ok(log) = ReplayLog::from_json(value.clone()) {
        let again = ReplayLog::from_json(log.to_json()).expect("a replay log re-reads");
        assert_eq!(again.to_json(), log.to_json());
    }
    let Ok(snap) = Snapshot::from_json(value) else {
        return;
    };
    for compression in [Compression::None, Compression::zstd(), Compression::gzip()] {
        for style in [
            JsonStyle::Python,
            JsonStyle::PythonIndent2,
            JsonStyle::Compact,
        ] {
            let bytes = Codec::new(compression, style).encode(&snap.to_json());
            let back = Codec::default()
                .decode(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|v| Snapshot::from_json(v).map_err(|e| e.to_string()));
            match back {
                Ok(back) => assert_eq!(back, snap, "{compression:?} {style:?}"),
                // Deeper than the limit only once written (an indented
                // style does not nest deeper), so this is a real mismatch.
                Err(e) => {
                    panic!("a decoded snapshot does not re-read ({compression:?} {style:?}): {e}")
                }
            }
        }
    }
}

/// Splits fuzz input into `n` text fields at 0xFF bytes (never in UTF-8).
fn fields(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |&b| b == 0xff)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// A SQLite or PostgreSQL snapshot row becomes a snapshot or a named bad
/// entry; one that becomes a snapshot keeps its id and saga.
pub fn decode_row(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest, 11);
    let time = |s: &str, typed: bool| -> Option<TimeColumn> {
        match (s.is_empty(), typed) {
            (true, _) => None,
            // PostgreSQL hands over a typed instant.
            (false, true) => Timestamp::parse(s).ok().map(TimeColumn::Time),
            (false, false) => Some(TimeColumn::Text(s.to_string())),
        }
    };
    let postgres = shape & 1 == 1;
    let cols = SnapshotColumns {
        snapshot_id: f[0].clone(),
        saga_id: (shape & 2 == 0).then(|| f[1].clone()),
        saga_name: f[2].clone(),
        step_name: f[3].clone(),
        step_index: i64::from(shape >> 2) - 8,
        status: f[4].clone(),
        context: f[5].clone(),
        completed_steps: f[6].clone(),
        created_at: time(&f[7], postgres),
        retention_until: time(&f[8], postgres),
        external_refs: (!postgres).then(|| f[9].clone()).filter(|s| !s.is_empty()),
        extra: (!postgres).then(|| f[10].clone()).filter(|s| !s.is_empty()),
    };
    let id = cols.snapshot_id.clone();
    let saga = cols.saga_id.clone();
    match snapshot_from_columns(cols) {
        Ok(s) => {
            assert_eq!(s.snapshot_id, id);
            assert_eq!(Some(s.saga_id.clone()), saga);
            // What a SQL store holds also goes into a key-value store.
            let v = Codec::default().decode(&Codec::default().encode(&s.to_json()));
            assert_eq!(Snapshot::from_json(v.expect("re-reads")).ok(), Some(s));
        }
        Err(b) => {
            assert_eq!(b.key, format!("saga_snapshots/{id}"));
            assert!(!b.error.is_empty());
        }
    }
}

/// Override input as people give it: `key=value` lines and JSON objects,
/// merged both ways. A shallow merge keeps every override key with its
/// value; a merge patch applied twice changes nothing more.
pub fn override_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (pairs, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let (json, context) = rest.split_once('\n').unwrap_or((rest, ""));
    let mut over = Map::new();
    for p in pairs.split('\t') {
        if let Ok((k, v)) = replay::merge::parse_key_value(p) {
            assert!(!k.is_empty() && k.trim() == k);
            over.insert(k, v);
        }
    }
    if let Ok(m) = replay::merge::parse_object(json, "--override-json") {
        over.extend(m);
    }
    let context = replay::merge::parse_object(context, "context").unwrap_or_default();
    let shallow = replay::apply_override(&context, &over, MergeMode::Shallow);
    for (k, v) in &over {
        assert_eq!(shallow.get(k), Some(v), "shallow keeps {k:?}");
    }
    let once = replay::apply_override(&context, &over, MergeMode::Patch);
    let twice = replay::apply_override(&once, &over, MergeMode::Patch);
    assert_eq!(once, twice, "a merge patch is idempotent");
    for (k, v) in &over {
        if v.is_null() {
            assert!(!once.contains_key(k), "null deletes {k:?}");
        }
    }
}

/// Times as people type them (`--at`, `--since`, `:at`): an absolute time
/// formats and reads back as the same instant; a relative one is in the
/// calendar sagaz can hold; a snapshot reference never panics.
pub fn time_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = Timestamp::from_micros(1_768_478_400_000_000).expect("a fixed now");
    if let Ok(t) = Timestamp::parse(&text) {
        assert_eq!(Timestamp::parse(&t.to_isoformat()), Ok(t), "{text:?}");
        assert_eq!(Timestamp::parse(&t.to_rfc3339_z()), Ok(t), "{text:?}");
        let json = serde_json::to_string(&t).expect("serializes");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).ok(), Some(t));
    }
    if let Ok(t) = Timestamp::parse_relative(&text, now) {
        assert!(t.is_in_python_range(), "{text:?} -> {t:?}");
        assert_eq!(Timestamp::parse(&t.to_isoformat()), Ok(t), "{text:?}");
    }
    let _ = text.parse::<replay::SnapshotRef>();
}

/// Store URLs: every backend's parser accepts or refuses without a panic,
/// and no password — in the userinfo or a secret parameter — survives
/// redaction, `Debug`, `Display` or a parser's error.
pub fn store_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let url = StoreUrl::new(text.clone());
    let redacted = url.redacted();
    let (display, debug) = (format!("{url}"), format!("{url:?}"));
    let _ = url.scheme();
    let checked = store::check_url(&url);
    let err = checked.err().map(|e| e.to_string()).unwrap_or_default();
    let mut secrets: Vec<String> = Vec::new();
    if let Ok(u) = ::url::Url::parse(&text) {
        if let Some(p) = u.password() {
            secrets.push(p.to_string());
        }
        for (k, v) in u.query_pairs() {
            if crate::store::url_param_is_secret(&k) {
                secrets.push(v.into_owned());
            }
        }
        // What the redacted form says, read back the same way.
        let r = ::url::Url::parse(&redacted).expect("a redacted URL still parses");
        assert!(
            r.password().is_none_or(|p| p == "***"),
            "{text:?} -> {redacted:?}"
        );
        for (k, v) in r.query_pairs() {
            if crate::store::url_param_is_secret(&k) {
                assert_eq!(v, "***", "{text:?} -> {redacted:?}");
            }
        }
    } else if let (Some(s), Some(at)) = (text.find("://"), text.rfind('@')) {
        if at > s {
            // Not a URL, but it looks like it has credentials: all of
            // them are hidden.
            assert_eq!(
                redacted,
                format!("{}://***@{}", &text[..s], &text[at + 1..]),
                "{text:?}"
            );
        }
    }
    // Compared as people read them: percent-decoded, `+` as a space (the
    // query is re-encoded when secrets are replaced).
    let plain = |s: &str| percent_decode_lossy(s).replace('+', " ");
    // The URL parser drops tabs and newlines anywhere in the input, so
    // `pw\t\tpw` elsewhere reads as the password `pwpw` (a sixth report of
    // the check, not a leak): count in the text as the parser sees it.
    let input = plain(&text.replace(['\t', '\n', '\r'], ""));
    for secret in secrets
        .iter()
        .map(|s| plain(s))
        // A password that itself contains the mask cannot be told from it.
        .filter(|s| s.len() >= 4 && !s.contains("***"))
    {
        // Only a secret whose text is unique in the input can be looked
        // for: the same text elsewhere (host, path, a plain parameter,
        // overlapping repeats) is not a leak.
        if input.matches(secret.as_str()).count() != 1 {
            continue;
        }
        for out in [&redacted, &display, &debug, &err] {
            assert!(
                !plain(out).contains(secret.as_str()),
                "{secret:?} of {text:?} shows in {out:?}"
            );
        }
    }
}

/// `%XX` decoded wherever it is valid, everything else kept.
fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The saga list's filter syntax: never panics; a query it accepts has
/// one status per comma of its last `status:` word, and a saga that has
/// exactly the values a filter names matches it.
pub fn tui_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let t = Timestamp::from_micros(0).expect("the epoch");
    let Ok(f) = crate::store::SagaFilter::parse_query(&text, t) else {
        return;
    };
    let statuses: usize = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("status:"))
        .next_back()
        .map_or(0, |s| s.split(',').filter(|s| !s.is_empty()).count());
    assert_eq!(f.statuses.len(), statuses);
    let saga = SagaSummary {
        saga_id: format!("{}0", f.id_prefix.clone().unwrap_or_default()),
        saga_name: f
            .name
            .clone()
            .or_else(|| f.name_contains.clone())
            .unwrap_or_default(),
        latest_status: f.statuses.first().cloned().unwrap_or(SagaStatus::Completed),
        latest_step: f.latest_step.clone().unwrap_or_default(),
        latest_step_index: 0,
        snapshot_count: 1,
        first_at: f.since.or(f.until).unwrap_or(t),
        last_at: f.since.or(f.until).unwrap_or(t),
    };
    if f.name.is_some() && f.name_contains.is_some() {
        return;
    }
    if matches!((f.since, f.until), (Some(a), Some(b)) if a > b) {
        return;
    }
    assert!(f.matches(&saga), "{text:?}: {f:?} rejects {saga:?}");
}

/// A bundle as `import` reads it: checking it never panics; a bundle that
/// passes the strict check is refused once anything is cut from its end
/// (what a killed export leaves), and passes the lenient check too.
pub fn bundle_input(data: &[u8]) {
    use crate::bundle::validate;
    let strict = validate(data, false);
    let lenient = validate(data, true);
    if strict.is_ok() {
        assert!(lenient.is_ok(), "strict ok but lenient refused");
        let body = data.strip_suffix(b"\n").unwrap_or(data);
        for cut in [body.len() / 2, body.len().saturating_sub(1)] {
            if cut < body.len() {
                assert!(
                    validate(&body[..cut], false).is_err(),
                    "a bundle cut to {cut} of {} bytes passed",
                    data.len()
                );
            }
        }
    }
}
