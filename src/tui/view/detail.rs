//! The detail panel: tabs, the meta line, the context (folded), the diff,
//! the raw record and the replay log; search matches highlighted.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{age, block, clock, fit, load_line, wrap, wrapped_window};
use crate::model::short_id;
use crate::tui::app::{App, Load, Pane, Tab, TimelinePane};
use crate::tui::content::{DiffLine, RowKind};
use crate::tui::theme::Theme;

pub(super) fn highlight<'a>(
    text: String,
    q: Option<&str>,
    base: Style,
    th: &Theme,
) -> Vec<Span<'a>> {
    let Some(q) = q.filter(|q| !q.is_empty()) else {
        return vec![Span::styled(text, base)];
    };
    let lower = text.to_lowercase();
    let ql = q.to_lowercase();
    if lower.len() != text.len() {
        return vec![Span::styled(text, base)];
    }
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = lower[at..].find(&ql) {
        let s = at + p;
        if s > at {
            out.push(Span::styled(text[at..s].to_string(), base));
        }
        out.push(Span::styled(
            text[s..s + ql.len()].to_string(),
            th.search_match(),
        ));
        at = s + ql.len();
    }
    if at < text.len() {
        out.push(Span::styled(text[at..].to_string(), base));
    }
    out
}

pub(super) fn detail(f: &mut Frame, app: &App, r: Rect) {
    let th = &app.cfg.theme;
    let focused = app.focus == Pane::Detail;
    let d = &app.detail;
    let title = match app.open_reveal() {
        Some(r) => format!(" Detail · revealed: {} ", r.reason),
        None => " Detail ".to_string(),
    };
    let b = block(th, title, focused);
    let inner = b.inner(r);
    f.render_widget(b, r);
    if inner.height == 0 {
        return;
    }
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let mut tabs: Vec<Span> = Vec::new();
    for (k, tab) in Tab::ALL.iter().enumerate() {
        if k > 0 {
            tabs.push(Span::styled(" │ ", th.fg(th.dim)));
        }
        let label = format!("{} {}", k + 1, tab.title());
        tabs.push(if *tab == d.tab {
            Span::styled(
                label,
                th.fg(th.accent)
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )
        } else {
            Span::styled(label, th.fg(th.dim))
        });
    }
    lines.push(Line::from(tabs));
    let body_h = inner.height.saturating_sub(2) as usize;
    let current = app
        .timeline
        .as_ref()
        .and_then(|t| t.current().map(|m| (t.cursor, m)));
    // The meta line: what is shown, or why nothing is.
    let ready = d.load == Load::Idle
        && d.rendered
            .as_ref()
            .zip(current)
            .is_some_and(|(rd, (_, m))| rd.snapshot_id == m.snapshot_id);
    match (current, &d.rendered) {
        (Some((i, m)), Some(rd)) if ready => {
            let against = match &rd.against {
                Some(a) => format!(" · vs {a}"),
                None => String::new(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("#{i} "), th.fg(th.dim)),
                Span::raw(format!("{} ", m.step_name)),
                Span::styled(format!("{} ", m.status), th.status(&m.status)),
                Span::styled(
                    format!(
                        "· {} · {} B{against}",
                        clock(app, rd.created_at, true),
                        rd.context_bytes
                    ),
                    th.fg(th.dim),
                ),
            ]));
        }
        (Some((i, m)), _) => lines.push(Line::from(vec![
            Span::styled(format!("#{i} "), th.fg(th.dim)),
            Span::raw(format!("{} ", m.step_name)),
            Span::styled(m.status.to_string(), th.status(&m.status)),
        ])),
        (None, _) => lines.push(Line::raw("")),
    }
    // Why the saga failed, whichever snapshot is shown: the failing step
    // and its error, up to three lines (all of it wraps in Raw and Diff).
    let mut body_h = body_h;
    if let Some(text) = app.timeline.as_ref().and_then(failure_summary) {
        let style = th.fg(th.failed).add_modifier(Modifier::BOLD);
        let mut wrapped = wrap(&text, w);
        if wrapped.len() > 3 {
            // The rest on the third line, cut with an ellipsis.
            let rest: String = wrapped[2..].iter().map(|l| l.trim_start()).collect();
            wrapped.truncate(2);
            wrapped.push(fit(&format!("  {rest}"), w));
        }
        body_h = body_h.saturating_sub(wrapped.len());
        for l in wrapped {
            lines.push(Line::styled(l, style));
        }
    }
    let q = d.search.as_deref();
    let sel_style = |line: Line<'static>, selected: bool| -> Line<'static> {
        if selected && focused {
            line.style(Style::default().add_modifier(Modifier::REVERSED))
        } else {
            line
        }
    };
    if d.tab == Tab::Replays {
        replays_body(app, &mut lines, w, body_h);
    } else if current.is_none() {
        lines.push(Line::styled("No snapshot selected.", th.fg(th.dim)));
    } else if !ready {
        match &d.load {
            Load::Failed(e) => lines.push(Line::styled(format!("Error: {e}"), th.fg(th.failed))),
            _ => lines.push(Line::styled("computing…", th.fg(th.dim))),
        }
    } else if let Some(rd) = &d.rendered {
        match d.tab {
            Tab::Context => {
                // The failure lines take rows the App's scrolling counts
                // as body: keep the selected line in view.
                let start = d.offset.max((d.line + 1).saturating_sub(body_h.max(1)));
                let vis: Vec<usize> = if d.folded.is_empty() {
                    (start..(start + body_h).min(rd.rows.len())).collect()
                } else {
                    crate::tui::content::visible_rows(&rd.rows, &d.folded)
                        .into_iter()
                        .skip(start)
                        .take(body_h)
                        .collect()
                };
                for (k, idx) in vis.into_iter().enumerate() {
                    let row = &rd.rows[idx];
                    let indent = "  ".repeat(row.depth as usize);
                    let mut spans = vec![Span::raw(indent.clone())];
                    let mut used = indent.len();
                    if let Some(key) = &row.key {
                        let kt = fit(&format!("\"{key}\": "), w.saturating_sub(used));
                        used += kt.chars().count();
                        spans.extend(highlight(kt, q, th.fg(th.key), th));
                    }
                    let folded = row.kind == RowKind::Open && d.folded.contains(&row.path);
                    let text = if folded {
                        let close = if row.text == "{" { "}" } else { "]" };
                        format!("{}…{close} {} item(s)", row.text, row.children)
                    } else {
                        row.text.clone()
                    };
                    let style = match row.kind {
                        RowKind::Scalar if text.starts_with('"') => th.fg(th.string),
                        RowKind::Scalar => th.fg(th.number),
                        _ if folded => th.fg(th.accent),
                        _ => Style::default(),
                    };
                    spans.extend(highlight(fit(&text, w.saturating_sub(used)), q, style, th));
                    lines.push(sel_style(Line::from(spans), start + k == d.line));
                }
            }
            Tab::Diff => {
                let head = lines.len();
                if rd.against.is_none() {
                    lines.push(Line::styled(
                        "The first snapshot: nothing before it to diff against (pin another with p).",
                        th.fg(th.dim),
                    ));
                } else if rd.changed_paths == 0 && rd.changed_fields == 0 {
                    lines.push(Line::styled(
                        format!("No change against {}.", rd.against.as_deref().unwrap_or("")),
                        th.fg(th.dim),
                    ));
                }
                let texts: Vec<&str> = rd.diff.iter().map(|(_, t)| t.as_str()).collect();
                let room = body_h.saturating_sub(lines.len() - head);
                for (k, text) in wrapped_window(&texts, d.offset, d.line, w, room) {
                    let style = match rd.diff[k].0 {
                        DiffLine::Title => Style::default().add_modifier(Modifier::BOLD),
                        DiffLine::Added => th.fg(th.added),
                        DiffLine::Removed => th.fg(th.removed),
                        DiffLine::Changed => th.fg(th.changed),
                        DiffLine::Hunk => th.fg(th.accent),
                        DiffLine::Context => Style::default(),
                    };
                    lines.push(sel_style(
                        Line::from(highlight(text, q, style, th)),
                        k == d.line,
                    ));
                }
            }
            Tab::Raw => {
                // Long values wrap: an error message is read whole, not cut
                // at the pane's edge.
                let texts: Vec<&str> = rd.raw.iter().map(String::as_str).collect();
                for (k, text) in wrapped_window(&texts, d.offset, d.line, w, body_h) {
                    lines.push(sel_style(
                        Line::from(highlight(text, q, Style::default(), th)),
                        k == d.line,
                    ));
                }
            }
            Tab::Replays => {}
        }
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// "✖ failed at #5 charge_payment: <error> · compensated: reserve_inventory"
/// for a saga whose timeline records an error (its last such snapshot).
pub(super) fn failure_summary(t: &TimelinePane) -> Option<String> {
    let (i, m) = t
        .marks
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.error.is_some())?;
    let mut text = format!(
        "✖ failed at #{i} {}: {}",
        m.step_name,
        m.error.as_deref().unwrap_or_default()
    );
    if !m.compensated.is_empty() {
        text.push_str(&format!(" · compensated: {}", m.compensated.join(", ")));
    }
    Some(text)
}

pub(super) fn replays_body(app: &App, lines: &mut Vec<Line>, w: usize, h: usize) {
    let th = &app.cfg.theme;
    let d = &app.detail;
    let Some(v) = &d.replays else {
        lines.push(load_line(th, &d.replays_load, "No saga selected."));
        return;
    };
    if let Some(p) = &v.produced_by {
        lines.push(Line::styled(
            fit(
                &format!(
                    "This saga is a replay of {} from step {} (o jumps there)",
                    p.original_saga_id, p.checkpoint_step
                ),
                w,
            ),
            th.fg(th.accent),
        ));
    }
    if v.replays.is_empty() {
        lines.push(Line::styled(
            "No replays started from this saga.",
            th.fg(th.dim),
        ));
        return;
    }
    lines.push(Line::styled(
        fit(
            "status    replay saga  from step          by          started",
            w,
        ),
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for (i, r) in v.replays.iter().enumerate().take(h.saturating_sub(2)) {
        let dry = r
            .extra
            .get("dry_run")
            .and_then(|x| x.as_bool())
            .unwrap_or(false);
        let text = format!(
            "{:<9} {:<12} {:<18} {:<11} {}{}",
            r.replay_status.as_str(),
            short_id(&r.new_saga_id),
            fit(&r.checkpoint_step, 18),
            fit(&r.initiated_by, 11),
            age(app.now, r.created_at),
            if dry { " (dry run)" } else { "" }
        );
        let style = match r.replay_status {
            crate::model::ReplayStatus::Success => th.fg(th.ok),
            crate::model::ReplayStatus::Failed => th.fg(th.failed),
            _ => Style::default(),
        };
        let mut line = Line::styled(fit(&text, w), style);
        if i == d.replay_selected && app.focus == Pane::Detail {
            line = line.style(Style::default().add_modifier(Modifier::REVERSED));
        }
        lines.push(line);
    }
    lines.push(Line::styled(
        "Enter opens the replay's saga; o jumps between original and replay.",
        th.fg(th.dim),
    ));
}
