//! What opens over the panes: the plan or replay panel, the override
//! editor, the batch form, help.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{block, fit};
use crate::model::short_id;
use crate::tui::app::App;
use crate::tui::keymap::{Scope, COMMANDS};

/// The area of a large popup over the panes (centred, at most 110 columns,
/// two rows free above and below), cleared.
fn overlay(f: &mut Frame, area: Rect) -> Rect {
    let w = area.width.saturating_sub(4).min(110);
    let h = area.height.saturating_sub(4);
    let r = Rect::new(area.x + (area.width - w) / 2, area.y + 2, w, h);
    f.render_widget(Clear, r);
    r
}

/// The dry-run plan or a replay's progress, over the panes.
pub(super) fn panel(f: &mut Frame, app: &App, p: &crate::tui::app::Panel, area: Rect) {
    use crate::tui::app::Tone;
    let th = &app.cfg.theme;
    if area.height < 5 || area.width < 10 {
        return;
    }
    let r = overlay(f, area);
    let title = if p.running {
        format!("{}· running ", p.title)
    } else {
        p.title.clone()
    };
    let b = block(th, title, true);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let lines: Vec<Line> = p
        .lines
        .iter()
        .skip(p.scroll)
        .map(|(tone, text)| {
            let style = match tone {
                Tone::Text => th.fg(th.text),
                Tone::Dim => th.fg(th.dim),
                Tone::Ok => th.fg(th.ok),
                Tone::Bad => th.fg(th.failed).add_modifier(Modifier::BOLD),
                Tone::Warn => th.fg(th.compensating),
                Tone::Run => th.fg(th.running),
            };
            Line::styled(text.clone(), style)
        })
        .collect();
    // Wrapped, not cut: a guard's message ends with what overrides it.
    f.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: false }),
        inner,
    );
}

/// The override editor over the panes: the text on the left, the merged
/// diff on the right, the validation on the last line.
pub(super) fn editor(f: &mut Frame, app: &App, e: &crate::tui::editor::Editor, area: Rect) {
    use crate::replay::ChangeKind;
    let th = &app.cfg.theme;
    if area.height < 6 {
        return;
    }
    let r = Rect::new(area.x, area.y + 1, area.width, area.height - 2);
    f.render_widget(Clear, r);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(r);
    let km = &app.cfg.keymap;
    let title = format!(
        " Override · {} {} · from {} · merge: {} ({}) ",
        e.saga_name,
        short_id(&e.saga_id),
        e.step_name,
        e.merge.as_str(),
        km.label(crate::tui::keymap::Cmd::EditorMerge),
    );
    let b = block(th, title, true);
    let inner = b.inner(left);
    f.render_widget(b, left);
    if inner.height < 2 {
        return;
    }
    let text_area = Rect::new(inner.x, inner.y, inner.width, inner.height - 1);
    f.render_widget(&e.area, text_area);
    let status_area = Rect::new(inner.x, inner.y + inner.height - 1, inner.width, 1);
    let masked = match &e.parsed {
        Ok(m) => crate::compliance::mask::first_masked_in(m),
        Err(_) => None,
    };
    let status = match &e.parsed {
        Ok(_) if masked.is_some() => Line::styled(
            fit(
                &format!(
                    "✗ masked placeholder at {}: not data; type the real value or remove it",
                    masked.as_deref().unwrap_or_default()
                ),
                inner.width as usize,
            ),
            th.fg(th.failed).add_modifier(Modifier::BOLD),
        ),
        Ok(m) => Line::styled(
            fit(
                &format!("✓ valid override, {} key(s)", m.len()),
                inner.width as usize,
            ),
            th.fg(th.ok),
        ),
        Err(i) => Line::styled(
            fit(
                &format!("✗ line {}, column {}: {}", i.line, i.column, i.message),
                inner.width as usize,
            ),
            th.fg(th.failed).add_modifier(Modifier::BOLD),
        ),
    };
    f.render_widget(Paragraph::new(status), status_area);
    let b = block(
        th,
        format!(
            " Context diff · Esc keeps draft · {} full context · {} discard ",
            km.label(crate::tui::keymap::Cmd::EditorFull),
            km.label(crate::tui::keymap::Cmd::EditorDiscard)
        ),
        false,
    );
    let inner = b.inner(right);
    f.render_widget(b, right);
    let w = inner.width as usize;
    let lines: Vec<Line> = match &e.parsed {
        Err(_) => vec![Line::styled(
            "(no diff while the JSON is invalid)",
            th.fg(th.dim),
        )],
        Ok(_) if e.diff.is_empty() => {
            vec![Line::styled("(no change to the context)", th.fg(th.dim))]
        }
        Ok(_) => e
            .diff
            .iter()
            .map(|(k, l)| {
                let c = match k {
                    ChangeKind::Added => th.added,
                    ChangeKind::Removed => th.removed,
                    _ => th.changed,
                };
                Line::styled(fit(l, w), th.fg(c))
            })
            .collect(),
    };
    f.render_widget(Paragraph::new(lines), inner);
}

pub(super) fn help(f: &mut Frame, app: &App, area: Rect, scroll: usize) {
    let th = &app.cfg.theme;
    let w = area.width.saturating_sub(4).min(100);
    let h = area.height.saturating_sub(2);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    let b = block(
        th,
        " Help: commands and keys (j/k scroll, Esc closes) ".into(),
        true,
    );
    let inner = b.inner(r);
    f.render_widget(b, r);
    let mut lines: Vec<Line> = Vec::new();
    for (scope, title) in [
        (Scope::Global, "Everywhere"),
        (Scope::List, "Saga list"),
        (Scope::Timeline, "Timeline (and the detail pane)"),
        (Scope::Detail, "Detail"),
    ] {
        lines.push(Line::styled(
            title,
            Style::default().add_modifier(Modifier::BOLD),
        ));
        for d in COMMANDS.iter().filter(|d| d.scope == scope) {
            let refused = app.cfg.readonly && d.cmd.writes();
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<14}", app.cfg.keymap.label(d.cmd)),
                    th.fg(if refused { th.dim } else { th.accent }),
                ),
                Span::styled(format!("{:<22}", d.name), th.fg(th.dim)),
                if refused {
                    Span::styled(format!("(read-only: refused) {}", d.doc), th.fg(th.dim))
                } else {
                    Span::raw(d.doc)
                },
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw("Palette (:): at <time|-2h>, saga <id>, sort time|name|status, filter <text>, export [file], or any command name."));
    lines.push(Line::raw(
        "Remap in the config file: [tui.keys] \"timeline.next\" = \"n\".",
    ));
    let skip = scroll.min(lines.len().saturating_sub(1));
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>()),
        inner,
    );
}

/// A text field's spans with the cursor drawn (a block at the end, the
/// character under it reversed elsewhere), cut into lines of `w` chars so
/// all of it is seen.
fn field_lines(text: &str, cursor: Option<usize>, w: usize) -> Vec<Vec<Span<'static>>> {
    let w = w.max(1);
    let mut cells: Vec<(String, bool)> = text.chars().map(|c| (c.to_string(), false)).collect();
    if let Some(at) = cursor {
        let i = text[..at.min(text.len())].chars().count();
        match cells.get_mut(i) {
            Some(c) => c.1 = true,
            None => cells.push(("█".into(), false)),
        }
    }
    if cells.is_empty() {
        return vec![vec![]];
    }
    cells
        .chunks(w)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(c, rev)| {
                    if *rev {
                        Span::styled(c.clone(), Style::default().add_modifier(Modifier::REVERSED))
                    } else {
                        Span::raw(c.clone())
                    }
                })
                .collect()
        })
        .collect()
}

/// The batch form `b` / `B` open: every field in full, the focused one
/// marked, what is wrong with it on its own line.
pub(super) fn batch_form(f: &mut Frame, app: &App, form: &crate::tui::app::BatchForm, area: Rect) {
    use crate::tui::app::FormField;
    use crate::tui::keymap::Cmd;
    let th = &app.cfg.theme;
    let km = &app.cfg.keymap;
    if area.height < 8 || area.width < 30 {
        return;
    }
    let r = overlay(f, area);
    let title = format!(
        " {} · {} marked saga(s) ",
        if form.real {
            "Batch replay"
        } else {
            "Batch dry run"
        },
        form.targets.len()
    );
    let b = block(th, title, true);
    let inner = b.inner(r);
    f.render_widget(b, r);
    const LABEL: usize = 16;
    let width = (inner.width as usize).saturating_sub(LABEL).max(1);
    let mut lines: Vec<Line> = Vec::new();
    let field =
        |lines: &mut Vec<Line>, which: FormField, label: &str, body: Vec<Vec<Span<'static>>>| {
            let focused = form.field == which;
            for (i, spans) in body.into_iter().enumerate() {
                let head = if i == 0 {
                    format!(
                        "{} {:<w$}",
                        if focused { "▸" } else { " " },
                        label,
                        w = LABEL - 2
                    )
                } else {
                    " ".repeat(LABEL)
                };
                let style = if focused {
                    th.fg(th.accent).add_modifier(Modifier::BOLD)
                } else {
                    th.fg(th.dim)
                };
                let mut all = vec![Span::styled(head, style)];
                all.extend(spans);
                lines.push(Line::from(all));
            }
        };
    let cur = |which: FormField| (form.field == which).then_some(form.cursor);
    field(
        &mut lines,
        FormField::Step,
        "from step",
        field_lines(&form.step, cur(FormField::Step), width),
    );
    field(
        &mut lines,
        FormField::Override,
        "override",
        field_lines(&form.over, cur(FormField::Override), width),
    );
    let check = match form.parsed_override() {
        Ok(m) => Span::styled(
            format!("✓ valid JSON object, {} key(s)", m.len()),
            th.fg(th.ok),
        ),
        Err(e) => Span::styled(
            format!("✗ {e}"),
            th.fg(th.failed).add_modifier(Modifier::BOLD),
        ),
    };
    lines.push(Line::from(vec![Span::raw(" ".repeat(LABEL)), check]));
    lines.push(Line::from(vec![
        Span::styled(format!("  {:<w$}", "merge", w = LABEL - 2), th.fg(th.dim)),
        Span::raw(format!(
            "{} ({} switches)",
            form.merge.as_str(),
            km.label(Cmd::EditorMerge)
        )),
    ]));
    let comp = match form.compensated {
        crate::replay::Compensated::Rerun => "rerun: steps the original run compensated run again",
        crate::replay::Compensated::Skip => "skip: steps the original run compensated stay undone",
    };
    field(
        &mut lines,
        FormField::Compensated,
        "compensated",
        vec![vec![Span::raw(format!("{comp} (Space switches)"))]],
    );
    let mut reason = field_lines(&form.reason, cur(FormField::Reason), width);
    if form.reason.is_empty() {
        if let Some(first) = reason.first_mut() {
            first.push(Span::styled(
                if form.real {
                    " (required: written to the replay log)"
                } else {
                    " (optional)"
                },
                th.fg(th.dim),
            ));
        }
    }
    field(&mut lines, FormField::Reason, "reason", reason);
    let flags = crate::tui::app::overridden_flags(&form.allow);
    if !flags.is_empty() {
        lines.push(Line::styled(
            format!("  guards overridden: {flags}"),
            th.fg(th.compensating),
        ));
    }
    lines.push(Line::raw(""));
    if let Some(p) = &form.problem {
        lines.push(Line::styled(
            fit(&format!("✗ {p}"), inner.width as usize),
            th.fg(th.failed).add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::styled(
        fit(
            &format!(
                "{} next field · Enter dry run{} · Esc cancels",
                km.label(Cmd::FocusNext),
                if form.real { " (then confirm)" } else { "" }
            ),
            inner.width as usize,
        ),
        th.fg(th.dim),
    ));
    f.render_widget(Paragraph::new(lines), inner);
}
