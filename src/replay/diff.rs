//! Context diffs: structural (one change per JSON path) and line-based
//! (unified diff of pretty-printed JSON, via `similar`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Snapshot;

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The path exists only in the new value ([`PathChange::old`] is `None`).
    Added,
    /// The path exists only in the old value ([`PathChange::new`] is `None`).
    Removed,
    /// The path holds a different value in each.
    Changed,
}

/// One changed path, e.g. `$.customer.address.city` or `$.items[2].sku`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathChange {
    /// The JSON path from the root `$`: `.key` for plain keys, `["odd key"]`
    /// for others, `[n]` for array items.
    pub path: String,
    /// Whether the path was added, removed or changed.
    pub kind: ChangeKind,
    /// The value before; `None` when the path was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after; `None` when the path was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl PathChange {
    /// Whether either side is masked (`•••`, `🔒`): the change is shown as
    /// "changed (masked)", neither side.
    pub fn is_masked(&self) -> bool {
        use crate::compliance::mask::is_masked;
        self.old.as_ref().is_some_and(is_masked) || self.new.as_ref().is_some_and(is_masked)
    }

    /// Masks both sides when the path is sensitive for `saga_name` (every
    /// saga name's patterns when `None`); shows ciphertexts as `🔒` either
    /// way.
    pub fn mask(&mut self, sensitive: &crate::compliance::SensitivePaths, saga_name: Option<&str>) {
        use crate::compliance::{mask, PathSeg};
        let segs: Option<Vec<PathSeg>> =
            super::where_changed::parse_path(&self.path).ok().map(|p| {
                p.into_iter()
                    .map(|s| match s {
                        super::where_changed::Seg::Key(k) => PathSeg::Key(k),
                        super::where_changed::Seg::Index(i) => PathSeg::Index(i),
                    })
                    .collect()
            });
        // A path that does not parse is masked: better hidden than shown.
        let hide = match (&segs, saga_name) {
            (None, _) => true,
            (Some(p), Some(n)) => sensitive.is_sensitive(n, p),
            (Some(p), None) => sensitive.all().any(|pat| pat.covers(p)),
        };
        for v in [&mut self.old, &mut self.new].into_iter().flatten() {
            if hide {
                *v = mask::mask_value(v);
            } else {
                mask::lock_value(v);
            }
        }
    }

    /// One line for people: `~ $.a: 1 -> 2`, `+ $.b = 3`, `- $.c (was 4)`;
    /// a masked change says so and shows neither side.
    pub fn line(&self) -> String {
        let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        match (self.kind, self.is_masked()) {
            (ChangeKind::Added, true) => format!("+ {}: added (masked)", self.path),
            (ChangeKind::Removed, true) => format!("- {}: removed (masked)", self.path),
            (ChangeKind::Changed, true) => format!("~ {}: changed (masked)", self.path),
            (ChangeKind::Added, false) => format!("+ {} = {}", self.path, show(&self.new)),
            (ChangeKind::Removed, false) => format!("- {} (was {})", self.path, show(&self.old)),
            (ChangeKind::Changed, false) => {
                format!(
                    "~ {}: {} -> {}",
                    self.path,
                    show(&self.old),
                    show(&self.new)
                )
            }
        }
    }

    /// Whether a changed value also changed JSON type (number → string…).
    pub fn changes_type(&self) -> bool {
        match (&self.old, &self.new) {
            (Some(a), Some(b)) => std::mem::discriminant(a) != std::mem::discriminant(b),
            _ => false,
        }
    }
}

/// Every path where `new` differs from `old`, depth first, keys in the
/// order they appear. Objects are compared key by key; arrays index by
/// index (an insertion shows as changes plus an add at the end — exact,
/// if not minimal).
pub fn structural_diff(old: &Value, new: &Value) -> Vec<PathChange> {
    let mut out = Vec::new();
    walk("$".to_string(), old, new, &mut out);
    out
}

fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_string()))
    }
}

fn walk(path: String, old: &Value, new: &Value, out: &mut Vec<PathChange>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = key_path(&path, k);
                match b.get(k) {
                    Some(vb) => walk(p, va, vb, out),
                    None => out.push(PathChange {
                        path: p,
                        kind: ChangeKind::Removed,
                        old: Some(va.clone()),
                        new: None,
                    }),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(PathChange {
                        path: key_path(&path, k),
                        kind: ChangeKind::Added,
                        old: None,
                        new: Some(vb.clone()),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(va), Some(vb)) => walk(p, va, vb, out),
                    (Some(va), None) => out.push(PathChange {
                        path: p,
                        kind: ChangeKind::Removed,
                        old: Some(va.clone()),
                        new: None,
                    }),
                    (None, Some(vb)) => out.push(PathChange {
                        path: p,
                        kind: ChangeKind::Added,
                        old: None,
                        new: Some(vb.clone()),
                    }),
                    (None, None) => {}
                }
            }
        }
        _ => out.push(PathChange {
            path,
            kind: ChangeKind::Changed,
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

/// The snapshot's own fields that differ between `old` and `new`, outside
/// the context: `status`, then what the runtime wrote about the outcome
/// (`error`, `compensated_steps`, `compensation_errors`, and any other
/// field a newer runtime added), in the order the records hold them. Each
/// field is one change, named by its key without a `$` (context paths start
/// with `$`). The step, its index and the times differ from one snapshot to
/// the next by nature and are left out.
pub fn snapshot_field_changes(old: &Snapshot, new: &Snapshot) -> Vec<PathChange> {
    let mut out = Vec::new();
    if old.status != new.status {
        out.push(PathChange {
            path: "status".into(),
            kind: ChangeKind::Changed,
            old: Some(Value::from(old.status.as_str())),
            new: Some(Value::from(new.status.as_str())),
        });
    }
    let keys = old
        .extra
        .keys()
        .chain(new.extra.keys().filter(|k| !old.extra.contains_key(*k)));
    for k in keys {
        let (a, b) = (old.extra.get(k), new.extra.get(k));
        if a == b {
            continue;
        }
        let kind = match (a, b) {
            (None, _) => ChangeKind::Added,
            (_, None) => ChangeKind::Removed,
            _ => ChangeKind::Changed,
        };
        out.push(PathChange {
            path: k.clone(),
            kind,
            old: a.cloned(),
            new: b.cloned(),
        });
    }
    out
}

/// Two snapshots' diff as JSON: which snapshots (`a`, `b`), the context
/// paths that changed (`changes`, as [`structural_diff`]) and the snapshot
/// fields that changed (`fields`, as [`snapshot_field_changes`]). What
/// `sagascope diff --format json` prints and the TUI's `x` writes from the
/// Diff tab.
pub fn diff_json(a: &Snapshot, b: &Snapshot) -> Value {
    let which = |s: &Snapshot| {
        serde_json::json!({
            "saga_id": s.saga_id,
            "snapshot_id": s.snapshot_id,
            "step_name": s.step_name,
            "step_index": s.step_index,
            "created_at": s.created_at,
        })
    };
    let changes = structural_diff(
        &Value::Object(a.context.clone()),
        &Value::Object(b.context.clone()),
    );
    // A masked change says so: `"masked": true`, its sides being masks.
    let changes: Vec<Value> = changes
        .iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if let (true, Value::Object(m)) = (c.is_masked(), &mut v) {
                m.insert("masked".into(), Value::Bool(true));
            }
            v
        })
        .collect();
    serde_json::json!({
        "a": which(a),
        "b": which(b),
        "changes": changes,
        "fields": snapshot_field_changes(a, b),
    })
}

/// Pretty JSON (2-space indent, UTF-8) for display and line diffs.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A unified diff of the two values pretty-printed, with `labels` as the
/// `---`/`+++` names. Empty when equal. Large inputs are bounded by a
/// deadline, after which `similar` approximates (still a correct diff, just
/// not minimal).
pub fn unified_diff(old: &Value, new: &Value, labels: (&str, &str)) -> String {
    if old == new {
        return String::new();
    }
    let a = pretty(old) + "\n";
    let b = pretty(new) + "\n";
    let diff = similar::TextDiff::configure()
        .timeout(Duration::from_millis(500))
        .diff_lines(&a, &b);
    diff.unified_diff()
        .context_radius(3)
        .header(labels.0, labels.1)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_each_changed_path() {
        let a = json!({"a": 1, "b": {"c": [1, 2]}, "gone": true, "odd key": 1});
        let b = json!({"a": "1", "b": {"c": [1, 3, 4]}, "new": null, "odd key": 2});
        let d = structural_diff(&a, &b);
        let paths: Vec<(&str, ChangeKind)> = d.iter().map(|c| (c.path.as_str(), c.kind)).collect();
        assert_eq!(
            paths,
            vec![
                ("$.a", ChangeKind::Changed),
                ("$.b.c[1]", ChangeKind::Changed),
                ("$.b.c[2]", ChangeKind::Added),
                ("$.gone", ChangeKind::Removed),
                ("$[\"odd key\"]", ChangeKind::Changed),
                ("$.new", ChangeKind::Added),
            ]
        );
        assert!(d[0].changes_type());
        assert!(!d[1].changes_type());
        assert!(structural_diff(&a, &a).is_empty());
    }

    #[test]
    fn a_rollback_shows_its_status_error_and_compensated_steps() {
        let ctx = json!({"order_id": "ord-1002"});
        let ctx = ctx.as_object().unwrap().clone();
        let before = Snapshot::new(
            "s1",
            "OrderSaga",
            "charge_payment",
            1,
            crate::model::SagaStatus::Executing,
            ctx.clone(),
            vec!["reserve_inventory".into()],
        );
        let mut after = before.clone();
        after.status = crate::model::SagaStatus::RolledBack;
        after
            .extra
            .insert("error".into(), json!("card token expired"));
        after
            .extra
            .insert("compensated_steps".into(), json!(["reserve_inventory"]));
        let d = snapshot_field_changes(&before, &after);
        let got: Vec<(&str, ChangeKind, Option<&Value>)> = d
            .iter()
            .map(|c| (c.path.as_str(), c.kind, c.new.as_ref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("status", ChangeKind::Changed, Some(&json!("rolled_back"))),
                (
                    "error",
                    ChangeKind::Added,
                    Some(&json!("card token expired"))
                ),
                (
                    "compensated_steps",
                    ChangeKind::Added,
                    Some(&json!(["reserve_inventory"]))
                ),
            ]
        );
        assert_eq!(d[0].old, Some(json!("executing")));
        assert!(snapshot_field_changes(&after, &after).is_empty());
        // The other way round the fields are removed.
        let back = snapshot_field_changes(&after, &before);
        assert_eq!(back[1].kind, ChangeKind::Removed);
    }

    #[test]
    fn unified_diff_shows_the_changed_lines() {
        let a = json!({"token": "expired", "amount": 10});
        let b = json!({"token": "tok_valid", "amount": 10});
        let u = unified_diff(&a, &b, ("before", "after"));
        assert!(u.starts_with("--- before\n+++ after\n"), "{u}");
        assert!(u.contains("-  \"token\": \"expired\","), "{u}");
        assert!(u.contains("+  \"token\": \"tok_valid\","), "{u}");
        assert_eq!(unified_diff(&a, &a, ("x", "y")), "");
    }
}
