//! Output formats shared by every headless command: aligned tables for
//! people, JSON and JSON lines for scripts.

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::model::{SagaStatus, Timestamp};
use crate::store::BadEntry;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Plain `key: value` text.
    Text,
}

/// A simple column-aligned table.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    /// Adds a row; control characters in cells are shown escaped (a cell
    /// is one line, and stored text must not drive the terminal).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| printable_line(&c).into_owned())
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |cells: Vec<&str>, out: &mut String| {
            let n = cells.len();
            for (i, c) in cells.into_iter().enumerate() {
                out.push_str(c);
                if i + 1 < n {
                    let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        };
        line(self.headers.clone(), &mut out);
        for r in &self.rows {
            line(r.iter().map(String::as_str).collect(), &mut out);
        }
        out
    }
}

/// Text stored by others (saga names, steps, statuses, context values,
/// reasons, identities) can hold terminal escape sequences: `ESC ] 0 ; …
/// BEL` retitles a terminal, CSI sequences move the cursor or rewrite
/// what was printed. Human output shows every C0 and C1 control character
/// and DEL escaped (`\u{1b}`), keeping newlines and tabs: what
/// [`emit`] and [`note`] print. JSON output needs none of this (serde
/// escapes controls).
pub fn printable(text: &str) -> Cow<'_, str> {
    escape_controls(text, true)
}

/// Like [`printable`], but newlines and tabs are escaped too: for one-line
/// cells and values.
pub fn printable_line(text: &str) -> Cow<'_, str> {
    escape_controls(text, false)
}

fn escape_controls(text: &str, keep_layout: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(keep_layout && (c == '\n' || c == '\t'));
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes human output to stdout, control characters escaped
/// ([`printable`]); a closed pipe (`| head`) ends quietly.
pub fn emit(text: &str) {
    write_stdout(&printable(text));
}

/// Writes machine output (JSON text built piece by piece) to stdout as it
/// is: JSON escapes what must be escaped, and [`emit`]'s visible escapes
/// (`\u{7f}`) would make it invalid.
pub fn emit_raw(text: &str) {
    write_stdout(text);
}

/// Writes machine output (JSON) to stdout as it is.
fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    if out
        .write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Pretty JSON to stdout.
pub fn emit_json<T: Serialize + ?Sized>(value: &T) {
    write_stdout(&(serde_json::to_string_pretty(value).unwrap_or_default() + "\n"));
}

/// One compact JSON line to stdout.
pub fn emit_jsonl<T: Serialize + ?Sized>(value: &T) {
    write_stdout(&(serde_json::to_string(value).unwrap_or_default() + "\n"));
}

/// A message for the person at the terminal (stderr), never mixed with
/// machine output on stdout. Control characters are escaped ([`printable`]).
pub fn note(text: &str) {
    let _ = writeln!(io::stderr(), "{}", printable(text));
}

/// Warns about entries that could not be read, naming each.
pub fn warn_bad(bad: &[BadEntry]) {
    if bad.is_empty() {
        return;
    }
    note(&format!(
        "warning: {} entr{} could not be read and {} skipped:",
        bad.len(),
        if bad.len() == 1 { "y" } else { "ies" },
        if bad.len() == 1 { "was" } else { "were" }
    ));
    for b in bad {
        note(&format!("  {b}"));
    }
}

/// Whether stderr is a terminal (progress bars, prompts).
pub fn stderr_is_tty() -> bool {
    io::stderr().is_terminal()
}

/// A status with a glyph, for tables.
pub fn status_cell(s: &SagaStatus) -> String {
    let glyph = match s {
        SagaStatus::Completed => "✓",
        SagaStatus::Failed | SagaStatus::RolledBack | SagaStatus::PartiallyCommitted => "✗",
        SagaStatus::Compensating => "↺",
        SagaStatus::Executing | SagaStatus::Pending | SagaStatus::ForwardRecovery => "…",
        SagaStatus::Other(_) => "?",
    };
    format!("{glyph} {s}")
}

/// A timestamp for tables: RFC 3339 UTC to the millisecond.
pub fn time_cell(t: &Timestamp) -> String {
    t.as_datetime().format("%Y-%m-%d %H:%M:%S%.3fZ").to_string()
}

/// How long ago, compactly (`3m`, `2h`, `5d`, `in 5m` for a time ahead).
pub fn age(t: &Timestamp, now: &Timestamp) -> String {
    t.age_at(*now)
}

/// Asks a yes/no question on the terminal. Without a terminal the answer
/// is no, so scripts must pass `--yes`.
pub fn confirm(question: &str) -> bool {
    if !io::stdin().is_terminal() || !stderr_is_tty() {
        return false;
    }
    let _ = write!(io::stderr(), "{question} [y/N] ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    if io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_in_stored_text_are_shown_not_obeyed() {
        let title = "Order\u{1b}]0;pwned\u{7}Saga\u{9b}2J\u{7f}";
        let shown = printable(title);
        assert_eq!(shown, "Order\\u{1b}]0;pwned\\u{7}Saga\\u{9b}2J\\u{7f}");
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert_eq!(printable("a\tb\nc\r"), "a\tb\nc\\u{d}");
        assert_eq!(printable_line("a\tb\nc"), "a\\u{9}b\\u{a}c");
        assert!(matches!(printable("plain ✓ text"), Cow::Borrowed(_)));
        let mut t = Table::new(vec!["NAME"]);
        t.row(vec!["x\u{1b}[31my\nz".into()]);
        assert_eq!(t.render(), "NAME\nx\\u{1b}[31my\\u{a}z\n");
    }
}
