//! The timeline panel: the strip (one glyph per snapshot) and the rows.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{block, clock, fit, gap, load_line, pad, strip_window};
use crate::model::short_id;
use crate::tui::app::{App, Pane};
use crate::tui::theme::status_glyph;

pub(super) fn timeline(f: &mut Frame, app: &App, r: Rect) {
    let th = &app.cfg.theme;
    let focused = app.focus == Pane::Timeline;
    let Some(t) = &app.timeline else {
        let b = block(th, " Timeline ".into(), focused);
        let inner = b.inner(r);
        f.render_widget(b, r);
        f.render_widget(
            Paragraph::new(Line::styled("Select a saga (Enter).", th.fg(th.dim))),
            inner,
        );
        return;
    };
    let count = if t.complete {
        format!("{}", t.marks.len())
    } else {
        format!("{}…", t.marks.len())
    };
    let title = format!(
        " {} {} · {}/{} {}",
        t.saga.saga_name,
        short_id(&t.saga.saga_id),
        if t.marks.is_empty() { 0 } else { t.cursor + 1 },
        count,
        if t.follow { "· following " } else { "" }
    );
    let b = block(th, title, focused);
    let inner = b.inner(r);
    f.render_widget(b, r);
    if inner.height == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if t.marks.is_empty() {
        lines.push(load_line(th, &t.load, "This saga has no snapshots."));
        f.render_widget(Paragraph::new(lines), inner);
        return;
    }
    // The strip: one glyph per snapshot, the cursor reversed.
    let (start, n) = strip_window(t.cursor, t.marks.len(), w);
    let strip: Vec<Span> = t.marks[start..start + n]
        .iter()
        .enumerate()
        .map(|(k, m)| {
            let st = th.status(&m.status);
            let glyph = status_glyph(&m.status);
            if start + k == t.cursor {
                Span::styled(glyph, st.add_modifier(Modifier::REVERSED | Modifier::BOLD))
            } else {
                Span::styled(glyph, st)
            }
        })
        .collect();
    lines.push(Line::from(strip));
    let body_h = inner.height.saturating_sub(1) as usize;
    let branches = app.branches();
    // How the saga ended, if it failed: the failing step's rows in the
    // failure colour, the rows of steps compensated since in the
    // compensation colour, marked "↺ compensated".
    let outcome = t.marks.iter().rev().find(|m| m.error.is_some());
    let failed_step = outcome.map(|m| m.step_name.as_str());
    let compensated: Vec<&str> = outcome
        .map(|m| m.compensated.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for i in t.offset..(t.offset + body_h).min(t.marks.len()) {
        let m = &t.marks[i];
        let here = i == t.cursor;
        let d = i
            .checked_sub(1)
            .map(|p| m.created_at.as_micros() - t.marks[p].created_at.as_micros())
            .unwrap_or(0);
        let gap_text = if i == 0 { "start".to_string() } else { gap(d) };
        let big = d >= 60_000_000;
        let st = th.status(&m.status);
        let distinct = if m.status.is_failure() {
            st.add_modifier(Modifier::BOLD)
        } else if m.status == crate::model::SagaStatus::Compensating {
            st.add_modifier(Modifier::ITALIC)
        } else {
            st
        };
        let status_text = m.status.to_string();
        let fixed = 1 + 5 + 9 + 9 + 2;
        let room = w.saturating_sub(fixed);
        let step_w = m.step_name.chars().count().min(room).min(22);
        let mut spans = vec![
            Span::raw(if here { "▶" } else { " " }),
            Span::styled(format!("{:>4} ", i), th.fg(th.dim)),
        ];
        // A row with an error gives its clock and gap columns to the
        // error (the detail header has its time): why it failed is what
        // the row is for.
        let room = if m.error.is_some() {
            room + 18
        } else {
            spans.push(Span::raw(format!("{} ", clock(app, m.created_at, false))));
            spans.push(Span::styled(
                format!("{:>8} ", gap_text),
                if big {
                    th.fg(th.warning).add_modifier(Modifier::BOLD)
                } else {
                    th.fg(th.dim)
                },
            ));
            room
        };
        spans.push(Span::styled(
            format!("{} ", status_glyph(&m.status)),
            distinct,
        ));
        let was_compensated = m.error.is_none() && compensated.contains(&m.step_name.as_str());
        let step_style = if failed_step == Some(m.step_name.as_str()) {
            th.fg(th.failed).add_modifier(Modifier::BOLD)
        } else if was_compensated {
            th.status(&crate::model::SagaStatus::Compensating)
        } else {
            Style::default()
        };
        let branch = branches.get(&i);
        // Room after the step name (less the branch marker's, kept last).
        let room = room.saturating_sub(if branch.is_some() { 4 } else { 0 });
        let mut left = room.saturating_sub(step_w.max(4));
        if let Some(error) = &m.error {
            // The error is what the row is for: it gets the room, the
            // status word only what is left (the glyph already says it).
            let name = fit(&m.step_name, step_w.max(4));
            left = room.saturating_sub(name.chars().count());
            spans.push(Span::styled(name, step_style));
            let with_status = format!(" {status_text}");
            if left >= with_status.len() + 2 + 24 {
                spans.push(Span::styled(with_status.clone(), distinct));
                left -= with_status.len();
            }
            if left > 3 {
                spans.push(Span::styled(
                    fit(&format!(": {error}"), left),
                    th.fg(th.failed),
                ));
            }
        } else {
            spans.push(Span::styled(pad(&m.step_name, step_w.max(4)), step_style));
            // "compensated" matters more than the status word here.
            let mark = match left {
                _ if !was_compensated => "",
                14.. => " ↺ compensated",
                2.. => " ↺",
                _ => "",
            };
            left = left.saturating_sub(mark.chars().count());
            if left > status_text.len() {
                spans.push(Span::styled(format!(" {status_text}"), distinct));
            }
            if !mark.is_empty() {
                spans.push(Span::styled(mark, step_style));
            }
        }
        if let Some(n) = branch {
            spans.push(Span::styled(format!(" ⑂{n}"), th.fg(th.accent)));
        }
        let mut line = Line::from(spans);
        if here {
            line = line.style(if focused {
                th.selected()
            } else {
                Style::default().add_modifier(Modifier::REVERSED)
            });
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
}
