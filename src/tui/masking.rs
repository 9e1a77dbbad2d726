//! Masking what the TUI computes from unmasked data, and keeping masked
//! placeholders out of what it sends to a replay.
//!
//! Reads through the protection layer come back masked. A replay (and its
//! dry run) reads the checkpoint unmasked, so that it merges the user's
//! override onto the real values; its plan is masked here before it is
//! shown, unless the saga is revealed. An override that still holds a
//! masked placeholder (`•••`, from a masked context copied into the
//! editor) is refused before it reaches a replay.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::compliance::paths::{self, PathSeg};
use crate::compliance::{mask, SensitivePaths};
use crate::replay::where_changed::{parse_path, Seg};
use crate::replay::{ChangeKind, PathChange, ReplayPlan};

/// The sensitive-field patterns the views mask with; `None` when the
/// store masks nothing (no `[compliance] sensitive`, or `mask = false`).
pub type Sensitive = Option<Arc<SensitivePaths>>;

/// What a diff line says for a path whose values are masked.
pub const CHANGED_MASKED: &str = "changed (masked)";

/// Whether a change is between masked values: the diff says
/// [`CHANGED_MASKED`] and shows neither side.
pub fn is_masked_change(c: &PathChange) -> bool {
    c.kind == ChangeKind::Changed
        && (c.old.as_ref().is_some_and(mask::is_masked)
            || c.new.as_ref().is_some_and(mask::is_masked))
}

/// Masks `v`, found at `path` of a `saga_name` saga's context, wherever
/// the patterns cover it or something beneath it.
fn mask_at(sensitive: &SensitivePaths, saga_name: &str, path: &mut Vec<PathSeg>, v: &mut Value) {
    if sensitive.is_sensitive(saga_name, path) {
        *v = mask::mask_value(v);
        return;
    }
    if paths::is_opaque(v) {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, c) in m.iter_mut() {
                path.push(PathSeg::Key(k.clone()));
                mask_at(sensitive, saga_name, path, c);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter_mut().enumerate() {
                path.push(PathSeg::Index(i));
                mask_at(sensitive, saga_name, path, c);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Masks both sides of each change (paths as the diff writes them).
pub fn mask_changes(sensitive: &SensitivePaths, saga_name: &str, changes: &mut [PathChange]) {
    for c in changes {
        let Ok(segs) = parse_path(&c.path) else {
            // A path the diff wrote but cannot be read back: show nothing
            // of it rather than guess.
            c.old = c.old.as_ref().map(mask::mask_value);
            c.new = c.new.as_ref().map(mask::mask_value);
            continue;
        };
        let base: Vec<PathSeg> = segs
            .into_iter()
            .map(|s| match s {
                Seg::Key(k) => PathSeg::Key(k),
                Seg::Index(i) => PathSeg::Index(i),
            })
            .collect();
        for v in [c.old.as_mut(), c.new.as_mut()].into_iter().flatten() {
            let mut path = base.clone();
            mask_at(sensitive, saga_name, &mut path, v);
        }
    }
}

/// Masks a plan computed from unmasked data: the merged context, the
/// override as typed, and both sides of the context diff.
pub fn mask_plan(sensitive: &SensitivePaths, saga_name: &str, plan: &mut ReplayPlan) {
    mask::mask_context(sensitive, saga_name, &mut plan.merged_context);
    mask::mask_context(sensitive, saga_name, &mut plan.context_override);
    mask_changes(sensitive, saga_name, &mut plan.diff);
}

/// Why an override cannot be sent to a replay: it holds a masked
/// placeholder (the path of the first), which is not data. `reveal_key`
/// names the key that reveals the saga, for an override of one saga.
pub fn masked_override_refusal(
    over: &Map<String, Value>,
    reveal_key: Option<&str>,
) -> Option<String> {
    let path = mask::first_masked_in(over)?;
    let or_reveal = reveal_key
        .map(|k| format!(" (or reveal the saga with {k} and start from its values)"))
        .unwrap_or_default();
    Some(format!(
        "the override holds a masked placeholder at {path}, not data: type the real value there or remove it{or_reveal}; nothing was planned or replayed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sensitive() -> SensitivePaths {
        let mut t = std::collections::BTreeMap::new();
        t.insert(
            "OrderSaga".to_string(),
            vec!["customer.email".to_string(), "payment_token".to_string()],
        );
        SensitivePaths::parse(&t).unwrap()
    }

    #[test]
    fn a_plan_diff_is_masked_on_both_sides_and_beneath_added_objects() {
        let mut changes = vec![
            PathChange {
                path: "$.payment_token".into(),
                kind: ChangeKind::Changed,
                old: Some(json!("expired")),
                new: Some(json!("tok_valid")),
            },
            PathChange {
                path: "$.customer".into(),
                kind: ChangeKind::Added,
                old: None,
                new: Some(json!({"email": "a@b.example", "id": "C-1"})),
            },
            PathChange {
                path: "$.currency".into(),
                kind: ChangeKind::Changed,
                old: Some(json!("EUR")),
                new: Some(json!("USD")),
            },
        ];
        mask_changes(&sensitive(), "OrderSaga", &mut changes);
        let text = serde_json::to_string(&changes).unwrap();
        for secret in ["expired", "tok_valid", "a@b.example"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(is_masked_change(&changes[0]));
        assert_eq!(changes[1].new.as_ref().unwrap()["id"], "C-1");
        assert!(!is_masked_change(&changes[2]));
        assert_eq!(changes[2].new, Some(json!("USD")));
    }

    #[test]
    fn an_override_with_a_masked_placeholder_is_refused_naming_its_path() {
        let mut ctx = json!({"customer": {"email": "a@b.example"}, "payment_token": "x"})
            .as_object()
            .unwrap()
            .clone();
        assert!(masked_override_refusal(&ctx, Some("V")).is_none());
        mask::mask_context(&sensitive(), "OrderSaga", &mut ctx);
        let why = masked_override_refusal(&ctx, Some("V")).unwrap();
        assert!(why.contains("customer.email"), "{why}");
        assert!(why.contains("nothing was planned or replayed"), "{why}");
    }
}
