//! What the detail pane shows, computed off the draw path: the context as
//! foldable JSON rows, the raw record, and the diff against another
//! snapshot. Built in a blocking task, cached per (snapshot, against), and
//! bounded: long lines are cut here, so a 1 MB string costs a few KB.

use std::sync::Arc;

use serde_json::Value;

use crate::model::{SagaStatus, Snapshot, Timestamp};
use crate::replay::diff::pretty;
use crate::replay::{
    snapshot_field_changes, structural_diff, unified_diff, ChangeKind, PathChange,
};

/// Longest line kept (in bytes); the rest is summarised.
pub const MAX_LINE: usize = 2048;

pub use crate::replay::where_changed::{path_label, value_at_path, Seg};

/// How a context row is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Open,
    Close,
    Scalar,
}

/// One line of the context view.
#[derive(Debug, Clone)]
pub struct Row {
    pub depth: u16,
    pub kind: RowKind,
    /// Index of the matching close row, for containers (folding skips to it).
    pub end: Option<usize>,
    /// Where the value on this line lives (shared by open and close rows).
    pub path: Arc<[Seg]>,
    pub key: Option<String>,
    /// The value (or bracket) text, already cut to [`MAX_LINE`].
    pub text: String,
    /// Items inside, for a folded summary.
    pub children: usize,
}

/// How a diff line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffLine {
    Title,
    Added,
    Removed,
    Changed,
    Context,
    Hunk,
}

/// Everything the detail pane needs for one snapshot.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub snapshot_id: String,
    pub saga_id: String,
    pub step_name: String,
    pub status: SagaStatus,
    pub created_at: Timestamp,
    pub completed_steps: Vec<String>,
    pub context_bytes: usize,
    pub rows: Vec<Row>,
    pub raw: Vec<String>,
    /// What the diff compares against (`None`: the first snapshot, nothing before it).
    pub against: Option<String>,
    pub diff: Vec<(DiffLine, String)>,
    pub changed_paths: usize,
    /// Snapshot fields outside the context that changed (status, error,
    /// compensated steps).
    pub changed_fields: usize,
    /// The context itself: the override editor merges into it.
    pub context: Arc<serde_json::Map<String, Value>>,
}

impl Rendered {
    /// Rough heap size, for the cache bound.
    pub fn weight(&self) -> usize {
        let rows: usize = self
            .rows
            .iter()
            .map(|r| r.text.len() + r.key.as_ref().map_or(0, String::len) + 64)
            .sum();
        let raw: usize = self.raw.iter().map(|l| l.len() + 24).sum();
        let diff: usize = self.diff.iter().map(|(_, l)| l.len() + 32).sum();
        rows + raw + diff + self.context_bytes * 2 + 256
    }
}

/// Cuts a line to [`MAX_LINE`] bytes on a char boundary.
pub fn cut(s: &str) -> String {
    if s.len() <= MAX_LINE {
        return s.to_string();
    }
    let mut end = MAX_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() > MAX_LINE => {
            let mut end = MAX_LINE;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!(
                "{}… ({} more bytes)\"",
                Value::String(s[..end].to_string())
                    .to_string()
                    .trim_end_matches('"'),
                s.len() - end
            )
        }
        other => cut(&other.to_string()),
    }
}

fn push_rows(out: &mut Vec<Row>, depth: u16, path: Vec<Seg>, key: Option<String>, v: &Value) {
    let path: Arc<[Seg]> = path.into();
    match v {
        Value::Object(m) if !m.is_empty() => {
            let open = out.len();
            out.push(Row {
                depth,
                kind: RowKind::Open,
                end: None,
                path: path.clone(),
                key,
                text: "{".into(),
                children: m.len(),
            });
            for (k, child) in m {
                let mut p = path.to_vec();
                p.push(Seg::Key(k.clone()));
                push_rows(out, depth + 1, p, Some(k.clone()), child);
            }
            let close = out.len();
            out.push(Row {
                depth,
                kind: RowKind::Close,
                end: None,
                path,
                key: None,
                text: "}".into(),
                children: 0,
            });
            out[open].end = Some(close);
        }
        Value::Array(a) if !a.is_empty() => {
            let open = out.len();
            out.push(Row {
                depth,
                kind: RowKind::Open,
                end: None,
                path: path.clone(),
                key,
                text: "[".into(),
                children: a.len(),
            });
            for (i, child) in a.iter().enumerate() {
                let mut p = path.to_vec();
                p.push(Seg::Index(i));
                push_rows(out, depth + 1, p, None, child);
            }
            let close = out.len();
            out.push(Row {
                depth,
                kind: RowKind::Close,
                end: None,
                path,
                key: None,
                text: "]".into(),
                children: 0,
            });
            out[open].end = Some(close);
        }
        scalar => out.push(Row {
            depth,
            kind: RowKind::Scalar,
            end: None,
            path,
            key,
            text: scalar_text(scalar),
            children: 0,
        }),
    }
}

/// The context as rows.
pub fn context_rows(context: &serde_json::Map<String, Value>) -> Vec<Row> {
    let mut out = Vec::new();
    push_rows(
        &mut out,
        0,
        Vec::new(),
        None,
        &Value::Object(context.clone()),
    );
    out
}

fn short_value(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        let mut end = 117;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

/// Builds the detail content of `snap`, diffed against `against` (with
/// its label), if any.
pub fn render(snap: &Snapshot, against: Option<(&Snapshot, String)>) -> Rendered {
    let context_value = Value::Object(snap.context.clone());
    let context_bytes = serde_json::to_string(&context_value)
        .map(|s| s.len())
        .unwrap_or(0);
    let rows = context_rows(&snap.context);
    let raw = pretty(&snap.to_json()).lines().map(cut).collect();
    let mut diff = Vec::new();
    let mut changed_paths = 0;
    let mut changed_fields = 0;
    let against_label = against.as_ref().map(|(_, l)| l.clone());
    if let Some((old, label)) = &against {
        // The outcome first: a rollback changes the status, the error and
        // the compensated steps, often with the context untouched.
        let fields = snapshot_field_changes(old, snap);
        changed_fields = fields.len();
        if !fields.is_empty() {
            diff.push((
                DiffLine::Title,
                format!("{} snapshot field(s) changed against {label}", fields.len()),
            ));
            for c in &fields {
                diff.push(change_line(c, |v| cut(&v.to_string())));
            }
            diff.push((DiffLine::Title, String::new()));
        }
        let old_value = Value::Object(old.context.clone());
        let changes = structural_diff(&old_value, &context_value);
        changed_paths = changes.len();
        diff.push((
            DiffLine::Title,
            if changes.is_empty() && !fields.is_empty() {
                format!("context: no change against {label}")
            } else {
                format!("{} changed path(s) against {label}", changes.len())
            },
        ));
        for c in &changes {
            diff.push(change_line(c, short_value));
        }
        if !changes.is_empty() {
            diff.push((DiffLine::Title, String::new()));
            diff.push((DiffLine::Title, "line diff".into()));
            let u = unified_diff(
                &old_value,
                &context_value,
                (label.as_str(), "this snapshot"),
            );
            for line in u.lines() {
                let kind = if line.starts_with("+++") || line.starts_with("---") {
                    DiffLine::Title
                } else if line.starts_with('+') {
                    DiffLine::Added
                } else if line.starts_with('-') {
                    DiffLine::Removed
                } else if line.starts_with("@@") {
                    DiffLine::Hunk
                } else {
                    DiffLine::Context
                };
                diff.push((kind, cut(line)));
            }
        }
    }
    Rendered {
        snapshot_id: snap.snapshot_id.clone(),
        saga_id: snap.saga_id.clone(),
        step_name: snap.step_name.clone(),
        status: snap.status.clone(),
        created_at: snap.created_at,
        completed_steps: snap.completed_steps.clone(),
        context_bytes,
        context: Arc::new(snap.context.clone()),
        rows,
        raw,
        against: against_label,
        diff,
        changed_paths,
        changed_fields,
    }
}

/// One line of the Diff tab for a changed path or field.
fn change_line(c: &PathChange, show: impl Fn(&Value) -> String) -> (DiffLine, String) {
    let show = |v: &Option<Value>| v.as_ref().map(&show).unwrap_or_default();
    // Masked on either side: that it changed, never what from or to.
    if crate::tui::masking::is_masked_change(c) {
        return (
            DiffLine::Changed,
            format!("~ {}: {}", c.path, crate::tui::masking::CHANGED_MASKED),
        );
    }
    match c.kind {
        ChangeKind::Added => (DiffLine::Added, format!("+ {}: {}", c.path, show(&c.new))),
        ChangeKind::Removed => (DiffLine::Removed, format!("- {}: {}", c.path, show(&c.old))),
        ChangeKind::Changed => (
            DiffLine::Changed,
            format!(
                "~ {}: {} → {}{}",
                c.path,
                show(&c.old),
                show(&c.new),
                if c.changes_type() {
                    "  (type changed)"
                } else {
                    ""
                }
            ),
        ),
    }
}

/// Row indices shown with the given folded paths (a folded container
/// shows its open row only).
pub fn visible_rows(rows: &[Row], folded: &std::collections::HashSet<Arc<[Seg]>>) -> Vec<usize> {
    let mut out = Vec::with_capacity(rows.len());
    let mut i = 0;
    while i < rows.len() {
        out.push(i);
        let r = &rows[i];
        if r.kind == RowKind::Open && !folded.is_empty() && folded.contains(&r.path) {
            i = r.end.map(|e| e + 1).unwrap_or(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_fold_and_paths_resolve() {
        let ctx = json!({"a": 1, "b": {"c": [1, {"d": "x"}]}});
        let ctx = ctx.as_object().unwrap();
        let rows = context_rows(ctx);
        let labels: Vec<String> = rows.iter().map(|r| path_label(&r.path)).collect();
        assert_eq!(labels[1], "$.a");
        assert!(labels.contains(&"$.b.c[1].d".to_string()));
        let d = rows
            .iter()
            .find(|r| path_label(&r.path) == "$.b.c[1].d")
            .unwrap();
        assert_eq!(value_at_path(ctx, &d.path), Some(&json!("x")));
        let mut folded = std::collections::HashSet::new();
        assert_eq!(visible_rows(&rows, &folded).len(), rows.len());
        let b = rows
            .iter()
            .find(|r| path_label(&r.path) == "$.b")
            .unwrap()
            .path
            .clone();
        folded.insert(b);
        assert_eq!(visible_rows(&rows, &folded).len(), 4);
    }

    #[test]
    fn long_strings_are_cut() {
        let big = "x".repeat(1_000_000);
        let ctx = json!({"notes": big});
        let rows = context_rows(ctx.as_object().unwrap());
        assert!(rows[1].text.len() < MAX_LINE + 64);
        assert!(rows[1].text.contains("more bytes"));
    }
}
