//! The override editor: a JSON object typed in place, validated on every
//! key (with the error's line and column), and the diff between the
//! snapshot's context and the merged result. Unsaved text is kept per saga
//! as a [`Draft`] until it is applied or discarded.

use std::sync::Arc;

use ratatui_textarea::TextArea;
use serde_json::{Map, Value};

use crate::replay::{apply_override, structural_diff, ChangeKind, MergeMode};

/// What is kept of an editor that was closed without applying.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub lines: Vec<String>,
    pub merge: MergeMode,
}

impl Default for Draft {
    fn default() -> Self {
        Draft {
            lines: vec!["{".into(), "".into(), "}".into()],
            merge: MergeMode::Shallow,
        }
    }
}

/// Why the text is not a usable override.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message: String,
    /// 1-based, as editors count; 0 when the problem has no position.
    pub line: usize,
    pub column: usize,
}

/// An open editor on one snapshot.
#[derive(Debug, Clone)]
pub struct Editor {
    pub saga_id: String,
    pub saga_name: String,
    pub snapshot_id: String,
    pub step_name: String,
    pub context: Arc<Map<String, Value>>,
    pub area: TextArea<'static>,
    pub merge: MergeMode,
    /// The override, or why the text is not one.
    pub parsed: Result<Map<String, Value>, Invalid>,
    /// How the merged context differs from the snapshot's, one line each.
    pub diff: Vec<(ChangeKind, String)>,
}

/// Parses the editor text as a JSON object.
pub fn validate(text: &str) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Invalid {
            message: format!(
                "the override must be a JSON object, not {}",
                crate::model::fields_type_name(&other)
            ),
            line: 1,
            column: 1,
        }),
        Err(e) => {
            // serde_json ends its message with the position, which the
            // editor states on its own: said once, not twice.
            let full = e.to_string();
            let at = format!(" at line {} column {}", e.line(), e.column());
            Err(Invalid {
                message: full.strip_suffix(&at).unwrap_or(&full).to_string(),
                line: e.line(),
                column: e.column(),
            })
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(59).collect::<String>())
    } else {
        s
    }
}

/// One line per changed path, `+ $.a: 1`, `- $.b: 2`, `~ $.c: 1 → 2`.
pub fn diff_lines(
    context: &Map<String, Value>,
    over: &Map<String, Value>,
    merge: MergeMode,
) -> Vec<(ChangeKind, String)> {
    let merged = apply_override(context, over, merge);
    structural_diff(&Value::Object(context.clone()), &Value::Object(merged))
        .into_iter()
        .map(|c| {
            let text = match (&c.old, &c.new) {
                _ if crate::tui::masking::is_masked_change(&c) => {
                    format!("~ {}: {}", c.path, crate::tui::masking::CHANGED_MASKED)
                }
                (Some(o), Some(n)) => format!("~ {}: {} → {}", c.path, short(o), short(n)),
                (None, Some(n)) => format!("+ {}: {}", c.path, short(n)),
                (Some(o), None) => format!("- {}: {}", c.path, short(o)),
                (None, None) => format!("  {}", c.path),
            };
            (c.kind, text)
        })
        .collect()
}

impl Editor {
    pub fn new(
        saga_id: String,
        saga_name: String,
        snapshot_id: String,
        step_name: String,
        context: Arc<Map<String, Value>>,
        draft: Draft,
    ) -> Editor {
        let mut area = TextArea::new(draft.lines);
        area.move_cursor(ratatui_textarea::CursorMove::Jump(1, 2));
        let mut e = Editor {
            saga_id,
            saga_name,
            snapshot_id,
            step_name,
            context,
            area,
            merge: draft.merge,
            parsed: Ok(Map::new()),
            diff: Vec::new(),
        };
        e.revalidate();
        e
    }

    pub fn text(&self) -> String {
        self.area.lines().join("\n")
    }

    pub fn draft(&self) -> Draft {
        Draft {
            lines: self.area.lines().to_vec(),
            merge: self.merge,
        }
    }

    /// Replaces the text (full context, `$EDITOR`), keeping the merge mode.
    pub fn set_text(&mut self, text: &str) {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        self.area = TextArea::new(if lines.is_empty() {
            vec![String::new()]
        } else {
            lines
        });
        self.revalidate();
    }

    pub fn revalidate(&mut self) {
        self.parsed = validate(&self.text());
        self.diff = match &self.parsed {
            Ok(over) => diff_lines(&self.context, over, self.merge),
            Err(_) => Vec::new(),
        };
    }

    pub fn toggle_merge(&mut self) {
        self.merge = match self.merge {
            MergeMode::Shallow => MergeMode::Patch,
            MergeMode::Patch => MergeMode::Shallow,
        };
        self.revalidate();
    }

    /// The whole context, pretty, to edit in place of an empty override.
    pub fn fill_full_context(&mut self) {
        let text = serde_json::to_string_pretty(&Value::Object((*self.context).clone()))
            .unwrap_or_else(|_| "{}".into());
        self.set_text(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_json_reports_line_and_column() {
        let e = validate("{\n  \"a\": 1,\n  \"b\" 2\n}").unwrap_err();
        assert_eq!((e.line, e.column), (3, 7));
        assert!(validate("[1]").unwrap_err().message.contains("JSON object"));
        assert_eq!(validate("{\"a\": 1}").unwrap().len(), 1);
    }

    #[test]
    fn diff_follows_the_merge_mode() {
        let ctx = json!({"a": {"x": 1, "y": 2}, "t": "expired"});
        let ctx = ctx.as_object().unwrap();
        let over = json!({"a": {"x": 5}, "t": "ok"});
        let over = over.as_object().unwrap();
        let shallow = diff_lines(ctx, over, MergeMode::Shallow);
        let patch = diff_lines(ctx, over, MergeMode::Patch);
        assert!(
            shallow.iter().any(|(_, l)| l.contains("$.a.y")),
            "{shallow:?}"
        );
        assert!(!patch.iter().any(|(_, l)| l.contains("$.a.y")), "{patch:?}");
        assert!(
            patch
                .iter()
                .any(|(_, l)| l == "~ $.t: \"expired\" → \"ok\""),
            "{patch:?}"
        );
    }
}
