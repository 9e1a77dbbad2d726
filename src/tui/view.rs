//! Drawing: a pure function of the App state. Only visible lines are
//! built, and long lines are cut to the pane width first, so a frame costs
//! the same for a 1 KB context as for a 1 MB one.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::app::{App, Conn, InputKind, Load, Mode, Pane, Tab};
use super::content::{DiffLine, RowKind};
use super::keymap::{Scope, COMMANDS};
pub use super::layout::{
    detail_body_height, layout, list_body_height, list_body_top, strip_window,
    timeline_body_height, timeline_body_top, Areas,
};
use super::theme::{status_glyph, Theme};
use crate::model::{short_id, Timestamp};

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let a = layout(area, app.focus);
    header(f, app, a.header);
    if let Some(r) = a.list {
        list(f, app, r);
    }
    if let Some(r) = a.timeline {
        timeline(f, app, r);
    }
    if let Some(r) = a.detail {
        detail(f, app, r);
    }
    footer(f, app, a.footer);
    if let Some(e) = &app.editor {
        editor(f, app, e, area);
    }
    if let Some(p) = &app.panel {
        panel(f, app, p, area);
    }
    if let Mode::Help { scroll } = app.mode {
        help(f, app, area, scroll);
    }
}

/// The dry-run plan or a replay's progress, over the panes.
fn panel(f: &mut Frame, app: &App, p: &super::app::Panel, area: Rect) {
    use super::app::Tone;
    let th = &app.cfg.theme;
    if area.height < 5 || area.width < 10 {
        return;
    }
    let w = area.width.saturating_sub(4).min(110);
    let h = area.height.saturating_sub(4);
    let r = Rect::new(area.x + (area.width - w) / 2, area.y + 2, w, h);
    f.render_widget(Clear, r);
    let title = if p.running {
        format!("{}· running ", p.title)
    } else {
        p.title.clone()
    };
    let b = block(th, title, true);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let width = inner.width as usize;
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
            Line::styled(fit(text, width), style)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

/// The override editor over the panes: the text on the left, the merged
/// diff on the right, the validation on the last line.
fn editor(f: &mut Frame, app: &App, e: &super::editor::Editor, area: Rect) {
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
        km.label(super::keymap::Cmd::EditorMerge),
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
    let status = match &e.parsed {
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
            km.label(super::keymap::Cmd::EditorFull),
            km.label(super::keymap::Cmd::EditorDiscard)
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

/// Cuts text to `w` columns (by chars: the content is mostly ASCII).
fn fit(s: &str, w: usize) -> String {
    match s.char_indices().nth(w) {
        Some((i, _)) if w > 0 => format!(
            "{}…",
            &s[..s.char_indices().nth(w - 1).map_or(i, |(j, _)| j)]
        ),
        Some(_) => String::new(),
        None => s.to_string(),
    }
}

fn pad(s: &str, w: usize) -> String {
    let s = fit(s, w);
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

/// "3s", "5m", "2h", "4d".
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let s = (now.as_micros() - then.as_micros()).max(0) / 1_000_000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// "+250ms", "+1.2s", "+3m05s", "+2h10m".
pub fn gap(us: i64) -> String {
    let us = us.max(0);
    if us < 1_000_000 {
        format!("+{}ms", us / 1000)
    } else if us < 60_000_000 {
        format!("+{:.1}s", us as f64 / 1e6)
    } else if us < 3_600_000_000 {
        format!("+{}m{:02}s", us / 60_000_000, (us / 1_000_000) % 60)
    } else if us < 86_400_000_000 {
        format!("+{}h{:02}m", us / 3_600_000_000, (us / 60_000_000) % 60)
    } else {
        format!("+{}d{:02}h", us / 86_400_000_000, (us / 3_600_000_000) % 24)
    }
}

fn clock(app: &App, t: Timestamp, with_date: bool) -> String {
    let fmt = if with_date {
        "%Y-%m-%d %H:%M:%S%.3f"
    } else {
        "%H:%M:%S"
    };
    if app.cfg.local_time {
        t.as_datetime()
            .with_timezone(&chrono::Local)
            .format(fmt)
            .to_string()
    } else {
        let z = if with_date { " UTC" } else { "" };
        format!("{}{z}", t.as_datetime().format(fmt))
    }
}

fn block<'a>(theme: &Theme, title: String, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Span::styled(
            title,
            if focused {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            },
        ))
}

fn header(f: &mut Frame, app: &App, r: Rect) {
    let th = &app.cfg.theme;
    let sep = Span::raw(" │ ");
    let mut spans = vec![
        Span::styled(" sagascope", Style::default().add_modifier(Modifier::BOLD)),
        sep.clone(),
        Span::raw(app.cfg.store_label.clone()),
    ];
    if let Some(p) = &app.cfg.profile {
        spans.push(sep.clone());
        spans.push(Span::raw(format!("profile {p}")));
    }
    spans.push(sep.clone());
    match &app.conn {
        Conn::Connecting => spans.push(Span::styled("◌ connecting…", th.fg(th.warning))),
        Conn::Connected { latency } => {
            spans.push(Span::styled("● connected", th.fg(th.ok)));
            spans.push(sep.clone());
            spans.push(Span::raw(format!(
                "rtt {:.1}ms",
                latency.as_secs_f64() * 1000.0
            )));
        }
        Conn::Disconnected { retry_at, .. } => {
            let secs = ((retry_at.as_micros() - app.now.as_micros()).max(0) + 999_999) / 1_000_000;
            spans.push(Span::styled(
                format!("✖ disconnected, retrying in {secs}s"),
                th.fg(th.failed).add_modifier(Modifier::BOLD),
            ));
        }
    }
    if app.cfg.readonly {
        spans.push(sep.clone());
        spans.push(Span::styled(
            "READ-ONLY",
            th.fg(th.warning).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(p) = &app.pin {
        spans.push(sep.clone());
        spans.push(Span::styled(format!("pin {}", p.label), th.fg(th.accent)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(th.header()), r);
}

fn load_line<'a>(th: &Theme, load: &Load, empty: &str) -> Line<'a> {
    match load {
        Load::Loading => Line::styled("Loading…", th.fg(th.dim)),
        Load::Failed(e) => Line::styled(format!("Error: {e}"), th.fg(th.failed)),
        Load::Idle => Line::styled(empty.to_string(), th.fg(th.dim)),
    }
}

fn list(f: &mut Frame, app: &App, r: Rect) {
    let th = &app.cfg.theme;
    let l = &app.list;
    let more = if l.next.is_some() { "+" } else { "" };
    let mut title = format!(" Sagas {}{more} · {} ", l.sagas.len(), l.sort.label());
    if !l.filter_text.is_empty() {
        title.push_str(&format!("· /{} ", l.filter_text));
    }
    let focused = app.focus == Pane::List;
    let b = block(th, title, focused);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let w = inner.width as usize;
    let h = inner.height as usize;
    let mut lines: Vec<Line> = Vec::with_capacity(h);
    if l.sagas.is_empty() {
        let empty = if l.filter_text.is_empty() {
            "No sagas in this store. Try `sagascope dev seed`."
        } else {
            "No sagas match the filter (Esc clears it)."
        };
        lines.push(load_line(th, &l.load, empty));
    }
    let name_w = 14.min(w.saturating_sub(2));
    for (i, s) in l.sagas.iter().enumerate().skip(l.offset).take(h) {
        let selected = i == l.selected;
        let fixed = 2 + name_w + 1 + 9;
        let rest = w.saturating_sub(fixed);
        let tail = format!("{:>4} {:>4}", age(app.now, s.last_at), s.snapshot_count);
        let step_w = rest.saturating_sub(tail.len() + 1);
        let mut spans = vec![
            Span::styled(
                format!(
                    "{}{}",
                    status_glyph(&s.latest_status),
                    if app.marked.contains(&s.saga_id) {
                        "*"
                    } else {
                        " "
                    }
                ),
                th.status(&s.latest_status),
            ),
            Span::raw(pad(&s.saga_name, name_w)),
            Span::raw(" "),
            Span::styled(format!("{} ", short_id(&s.saga_id)), th.fg(th.dim)),
        ];
        if rest > tail.len() {
            spans.push(Span::raw(pad(&s.latest_step, step_w)));
            spans.push(Span::raw(" "));
            spans.push(Span::styled(tail, th.fg(th.dim)));
        }
        let mut line = Line::from(spans);
        if selected {
            line = line.style(if focused {
                th.selected()
            } else {
                Style::default().add_modifier(Modifier::REVERSED)
            });
        }
        lines.push(line);
    }
    if l.load == Load::Loading && !l.sagas.is_empty() && lines.len() < h {
        lines.push(Line::styled("loading more…", th.fg(th.dim)));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn timeline(f: &mut Frame, app: &App, r: Rect) {
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
        " {} {} · {}/{} ",
        t.saga.saga_name,
        short_id(&t.saga.saga_id),
        if t.marks.is_empty() { 0 } else { t.cursor + 1 },
        count
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
            Span::raw(format!("{} ", clock(app, m.created_at, false))),
            Span::styled(
                format!("{:>8} ", gap_text),
                if big {
                    th.fg(th.warning).add_modifier(Modifier::BOLD)
                } else {
                    th.fg(th.dim)
                },
            ),
            Span::styled(format!("{} ", status_glyph(&m.status)), distinct),
            Span::raw(pad(&m.step_name, step_w.max(4))),
        ];
        if room >= step_w + 1 + status_text.len() {
            spans.push(Span::styled(format!(" {status_text}"), distinct));
        }
        if let Some(n) = branches.get(&i) {
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

fn highlight<'a>(text: String, q: Option<&str>, base: Style, th: &Theme) -> Vec<Span<'a>> {
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

fn detail(f: &mut Frame, app: &App, r: Rect) {
    let th = &app.cfg.theme;
    let focused = app.focus == Pane::Detail;
    let d = &app.detail;
    let b = block(th, " Detail ".into(), focused);
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
                let vis: Vec<usize> = if d.folded.is_empty() {
                    (d.offset..(d.offset + body_h).min(rd.rows.len())).collect()
                } else {
                    super::content::visible_rows(&rd.rows, &d.folded)
                        .into_iter()
                        .skip(d.offset)
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
                    lines.push(sel_style(Line::from(spans), d.offset + k == d.line));
                }
            }
            Tab::Diff => {
                if rd.against.is_none() {
                    lines.push(Line::styled(
                        "The first snapshot: nothing before it to diff against (pin another with p).",
                        th.fg(th.dim),
                    ));
                } else if rd.changed_paths == 0 {
                    lines.push(Line::styled(
                        format!("No change against {}.", rd.against.as_deref().unwrap_or("")),
                        th.fg(th.dim),
                    ));
                }
                for (k, (kind, text)) in rd.diff.iter().enumerate().skip(d.offset).take(body_h) {
                    let style = match kind {
                        DiffLine::Title => Style::default().add_modifier(Modifier::BOLD),
                        DiffLine::Added => th.fg(th.added),
                        DiffLine::Removed => th.fg(th.removed),
                        DiffLine::Changed => th.fg(th.changed),
                        DiffLine::Hunk => th.fg(th.accent),
                        DiffLine::Context => Style::default(),
                    };
                    lines.push(sel_style(
                        Line::from(highlight(fit(text, w), q, style, th)),
                        k == d.line,
                    ));
                }
            }
            Tab::Raw => {
                for (k, text) in rd.raw.iter().enumerate().skip(d.offset).take(body_h) {
                    lines.push(sel_style(
                        Line::from(highlight(fit(text, w), q, Style::default(), th)),
                        k == d.line,
                    ));
                }
            }
            Tab::Replays => {}
        }
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn replays_body(app: &App, lines: &mut Vec<Line>, w: usize, h: usize) {
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

fn footer(f: &mut Frame, app: &App, r: Rect) {
    if r.height == 0 {
        return;
    }
    let th = &app.cfg.theme;
    let line = match &app.mode {
        Mode::Input { kind, text, .. } => {
            let prompt = match kind {
                InputKind::Filter => "/",
                InputKind::Palette => ":",
                InputKind::Search => "search: ",
                InputKind::ConfirmId => "type the saga's short id to replay: ",
                InputKind::Reason => "reason (optional): ",
                InputKind::ConfirmBatch => "type the number of marked sagas to replay them all: ",
            };
            let mut spans = vec![
                Span::styled(prompt, th.fg(th.accent).add_modifier(Modifier::BOLD)),
                Span::raw(text.clone()),
                Span::styled("█", th.fg(th.accent)),
            ];
            if *kind == InputKind::Palette {
                let c = super::keymap::palette_candidates(text);
                if !c.is_empty() && !text.contains(' ') {
                    spans.push(Span::styled(
                        format!(
                            "   Tab: {}",
                            c.iter().take(8).copied().collect::<Vec<_>>().join(" ")
                        ),
                        th.fg(th.dim),
                    ));
                }
            } else if *kind == InputKind::Filter {
                spans.push(Span::styled(
                    "   id prefix · name · status:failed · step:charge_payment",
                    th.fg(th.dim),
                ));
            }
            Line::from(spans)
        }
        _ => match &app.message {
            Some(m) => Line::styled(
                format!(" {}", m.text),
                if m.error {
                    th.fg(th.failed).add_modifier(Modifier::BOLD)
                } else {
                    th.fg(th.accent)
                },
            ),
            None => hints(app),
        },
    };
    f.render_widget(Paragraph::new(line), r);
}

/// Key hints for the focused pane, from the keymap.
fn hints(app: &App) -> Line<'static> {
    let th = &app.cfg.theme;
    let scope = match app.focus {
        Pane::List => Scope::List,
        Pane::Timeline => Scope::Timeline,
        Pane::Detail => Scope::Detail,
    };
    let mut spans = vec![Span::raw(" ")];
    let mut add = |scope: Scope| {
        for d in COMMANDS.iter().filter(|d| d.scope == scope && d.hint) {
            let short = d
                .name
                .rsplit('.')
                .next()
                .unwrap_or(d.name)
                .replace('_', " ");
            spans.push(Span::styled(
                app.cfg.keymap.label(d.cmd),
                th.fg(th.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {short}  ")));
        }
    };
    add(scope);
    if scope == Scope::Detail {
        add(Scope::Timeline);
    }
    add(Scope::Global);
    Line::from(spans)
}

fn help(f: &mut Frame, app: &App, area: Rect, scroll: usize) {
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
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {:<14}", app.cfg.keymap.label(d.cmd)),
                    th.fg(th.accent),
                ),
                Span::styled(format!("{:<22}", d.name), th.fg(th.dim)),
                Span::raw(d.doc),
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
