//! Entries written out by hand exactly as sagaz 1.5.0 writes them
//! (FORMATS.md §1, §4, §5), so tests can lay out a store as sagaz would
//! without depending on sagascope's own writer.
#![allow(dead_code)]

pub struct SagazSnap {
    pub snapshot_id: String,
    pub saga_id: String,
    pub step_name_escaped: &'static str,
    pub step_index: i64,
    pub status: &'static str,
    pub created_at: &'static str,
}

/// `json.dumps(snapshot.to_dict(), default=str)` (`indent = None`) or with
/// `indent=2` (the folder store).
pub fn snapshot_json(s: &SagazSnap, indent2: bool) -> String {
    let completed = if s.step_index == 0 {
        ""
    } else {
        "reserve_inventory"
    };
    if indent2 {
        let completed = if completed.is_empty() {
            "[]".to_string()
        } else {
            format!("[\n    \"{completed}\"\n  ]")
        };
        format!(
            "{{\n  \"snapshot_id\": \"{}\",\n  \"saga_id\": \"{}\",\n  \"saga_name\": \"OrderSaga\",\n  \"step_name\": \"{}\",\n  \"step_index\": {},\n  \"status\": \"{}\",\n  \"context\": {{\n    \"order_id\": \"o-1\",\n    \"note\": \"caf\\u00e9\"\n  }},\n  \"completed_steps\": {completed},\n  \"external_refs\": {{}},\n  \"created_at\": \"{}\",\n  \"retention_until\": \"2099-01-01T00:00:00.000001+00:00\"\n}}",
            s.snapshot_id, s.saga_id, s.step_name_escaped, s.step_index, s.status, s.created_at
        )
    } else {
        let completed = if completed.is_empty() {
            "[]".to_string()
        } else {
            format!("[\"{completed}\"]")
        };
        format!(
            "{{\"snapshot_id\": \"{}\", \"saga_id\": \"{}\", \"saga_name\": \"OrderSaga\", \"step_name\": \"{}\", \"step_index\": {}, \"status\": \"{}\", \"context\": {{\"order_id\": \"o-1\", \"note\": \"caf\\u00e9\"}}, \"completed_steps\": {completed}, \"external_refs\": {{}}, \"created_at\": \"{}\", \"retention_until\": \"2099-01-01T00:00:00.000001+00:00\"}}",
            s.snapshot_id, s.saga_id, s.step_name_escaped, s.step_index, s.status, s.created_at
        )
    }
}

/// sagaz's index object, newest first.
pub fn index_json(saga_id: &str, newest_first: &[(&str, &str)], indent2: bool) -> String {
    if indent2 {
        let items: Vec<String> = newest_first
            .iter()
            .map(|(id, t)| format!("    {{\n      \"snapshot_id\": \"{id}\",\n      \"created_at\": \"{t}\"\n    }}"))
            .collect();
        format!(
            "{{\n  \"saga_id\": \"{saga_id}\",\n  \"snapshots\": [\n{}\n  ]\n}}",
            items.join(",\n")
        )
    } else {
        let items: Vec<String> = newest_first
            .iter()
            .map(|(id, t)| format!("{{\"snapshot_id\": \"{id}\", \"created_at\": \"{t}\"}}"))
            .collect();
        format!(
            "{{\"saga_id\": \"{saga_id}\", \"snapshots\": [{}]}}",
            items.join(", ")
        )
    }
}

/// A replay log as sagaz stores it (`context_override` always null).
pub fn replay_json(replay_id: &str, original: &str, new: &str, indent2: bool) -> String {
    let fields = [
        ("replay_id", format!("\"{replay_id}\"")),
        ("original_saga_id", format!("\"{original}\"")),
        ("new_saga_id", format!("\"{new}\"")),
        ("checkpoint_step", "\"charge_payment\"".to_string()),
        ("replay_status", "\"success\"".to_string()),
        ("initiated_by", "\"oncall\"".to_string()),
        ("context_override", "null".to_string()),
        ("error_message", "null".to_string()),
        (
            "created_at",
            "\"2026-11-22T01:40:00.000001+00:00\"".to_string(),
        ),
        (
            "completed_at",
            "\"2026-11-22T01:40:01.500000+00:00\"".to_string(),
        ),
    ];
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    if indent2 {
        format!("{{\n  {}\n}}", parts.join(",\n  "))
    } else {
        format!("{{{}}}", parts.join(", "))
    }
}

/// `gzip.compress(data)` (level 9).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(9));
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// `zstandard.ZstdCompressor(level=3).compress(data)`.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).unwrap()
}
