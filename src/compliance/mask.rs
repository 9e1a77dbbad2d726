//! Masking: sensitive values shown as `•••` (cards keep their last four),
//! ciphertexts without their key as `🔒`.
//!
//! Provisional: the functions the TUI calls, with the signatures the
//! masking branch gives them; that branch's version replaces this file.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::paths::{self, PathPattern};
use super::SensitivePaths;
use crate::model::{ReplayLog, Snapshot};

/// What a value without its key shows as.
pub const LOCKED: &str = "🔒";
const DOTS: &str = "•••";

fn fingerprint(v: &Value) -> String {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = STATE.get_or_init(Default::default).build_hasher();
    v.to_string().hash(&mut h);
    format!("{:06x}", h.finish() & 0xff_ffff)
}

fn is_ciphertext(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("$enc"))
}

fn is_tombstone(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.contains_key("$erased"))
}

/// Whether `v` is a masked value (or `🔒`), not data.
pub fn is_masked(v: &Value) -> bool {
    matches!(v, Value::String(s) if s == LOCKED || s.starts_with(DOTS))
}

/// `v` masked, leaf by leaf.
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
        _ => Value::String(format!("{DOTS} #{}", fingerprint(v))),
    }
}

/// Replaces every ciphertext left in a context with `🔒`.
pub fn lock_ciphertexts(ctx: &mut Map<String, Value>) {
    fn lock(v: &mut Value) {
        if is_ciphertext(v) {
            *v = Value::String(LOCKED.into());
            return;
        }
        if is_tombstone(v) {
            return;
        }
        match v {
            Value::Object(m) => m.values_mut().for_each(lock),
            Value::Array(a) => a.iter_mut().for_each(lock),
            _ => {}
        }
    }
    ctx.values_mut().for_each(lock);
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

/// Masks the sensitive values of a `saga_name` saga's context in place.
pub fn mask_context(sensitive: &SensitivePaths, saga_name: &str, ctx: &mut Map<String, Value>) {
    mask_with(sensitive.for_saga(saga_name), ctx);
}

/// Masks the sensitive values of `s` in place.
pub fn mask_snapshot(sensitive: &SensitivePaths, s: &mut Snapshot) {
    mask_context(sensitive, &s.saga_name, &mut s.context);
}

/// Masks a context with the patterns of every saga name.
pub fn mask_any_context(sensitive: &SensitivePaths, ctx: &mut Map<String, Value>) {
    mask_with(sensitive.all(), ctx);
}

/// Masks a replay log's context override.
pub fn mask_replay_log(sensitive: &SensitivePaths, log: &mut ReplayLog) {
    if let Some(Value::Object(m)) = log.context_override.as_mut() {
        mask_any_context(sensitive, m);
    }
}

/// The path of the first masked value in `s`, if any: such a snapshot must
/// never be written back.
pub fn first_masked(s: &Snapshot) -> Option<String> {
    first_masked_in(&s.context)
}

/// The path of the first masked value in a context, if any.
pub fn first_masked_in(ctx: &Map<String, Value>) -> Option<String> {
    let mut found = None;
    let mut ctx = ctx.clone();
    paths::visit_leaves_mut(&mut ctx, &mut |path, v| {
        if found.is_none() && is_masked(v) {
            found = Some(paths::render(path));
        }
    });
    found
}

/// The paths of `ctx` that the `saga_name` patterns cover and that hold a
/// value.
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
