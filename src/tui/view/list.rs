//! The saga list panel.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{age, block, load_line, pad};
use crate::model::short_id;
use crate::tui::app::{App, Load, Pane};
use crate::tui::keymap::Cmd;
use crate::tui::theme::status_glyph;

pub(super) fn list(f: &mut Frame, app: &App, r: Rect) {
    let th = &app.cfg.theme;
    let l = &app.list;
    // The store's count once it has answered; until then, that more pages exist.
    let count = match (l.total, l.next.is_some()) {
        (Some(n), true) => format!("{} of {n}", l.sagas.len()),
        (Some(n), false) => n.max(l.sagas.len() as u64).to_string(),
        (None, true) => format!("{} of …", l.sagas.len()),
        (None, false) => l.sagas.len().to_string(),
    };
    let mut title = format!(" Sagas {count} · {} ", l.sort.label());
    if let Some(g) = &l.group {
        let room = (r.width as usize).saturating_sub(4);
        title = format!(
            "{} ",
            super::fit(&format!(" Sagas {} · {g}", l.sagas.len()), room)
        );
    } else if !l.filter_text.is_empty() {
        title.push_str(&format!("· /{} ", l.filter_text));
    }
    // Live: new sagas wait above the list; going to the top takes them in.
    if let Some(new) = app.incoming_label() {
        let top = app
            .cfg
            .keymap
            .keys(Cmd::ListTop)
            .first()
            .map_or_else(|| ":list.top".to_string(), |k| k.label());
        title.push_str(&format!("· ↑ {new} ({top}) "));
    }
    let open_row = app.open_row();
    let focused = app.focus == Pane::List;
    let mut b = block(th, title, focused);
    // The saga in hand is not a listed row: say which it is (under the
    // list, where the highlight would be) rather than highlight another.
    if let (None, Some(t), Load::Idle) = (open_row, &app.timeline, &l.load) {
        b = b.title_bottom(Line::styled(
            format!(
                " open: {} {} · not listed ",
                t.saga.saga_name,
                short_id(&t.saga.saga_id)
            ),
            th.fg(th.warning),
        ));
    }
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
        let selected = i == l.selected && (app.timeline.is_none() || open_row == Some(i));
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
