//! Drawing: a pure function of the App state. Only visible lines are
//! built, and long lines are cut to the pane width first, so a frame costs
//! the same for a 1 KB context as for a 1 MB one. One module per panel;
//! the helpers they share are here.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};
use ratatui::Frame;

mod bars;
mod detail;
mod list;
mod overview;
mod popups;
mod timeline;

use super::app::{App, Load, Mode};
pub use super::layout::{
    detail_body_height, layout, list_body_height, list_body_top, strip_window,
    timeline_body_height, timeline_body_top, Areas,
};
use super::theme::Theme;
use crate::model::Timestamp;

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width == 0 || area.height == 0 {
        return;
    }
    let a = layout(area, app.focus);
    bars::header(f, app, a.header);
    if let Some(p) = &app.overview {
        // The page takes the body; the header and footer stay.
        let body = ratatui::layout::Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(2),
        );
        overview::overview(f, app, p, body);
    } else if let Some(r) = a.list {
        list::list(f, app, r);
    }
    if let (Some(r), None) = (a.timeline, &app.overview) {
        timeline::timeline(f, app, r);
    }
    if let (Some(r), None) = (a.detail, &app.overview) {
        detail::detail(f, app, r);
    }
    bars::footer(f, app, a.footer);
    if let Some(e) = &app.editor {
        popups::editor(f, app, e, area);
    }
    if let Some(p) = &app.panel {
        popups::panel(f, app, p, area);
    }
    if let Mode::Help { scroll } = app.mode {
        popups::help(f, app, area, scroll);
    }
}

/// Cuts text to `w` columns (by chars: the content is mostly ASCII).
pub(super) fn fit(s: &str, w: usize) -> String {
    match s.char_indices().nth(w) {
        Some((i, _)) if w > 0 => format!(
            "{}…",
            &s[..s.char_indices().nth(w - 1).map_or(i, |(j, _)| j)]
        ),
        Some(_) => String::new(),
        None => s.to_string(),
    }
}

/// Wraps text to `w` columns (by chars), breaking after a space when one
/// is in the second half of the line; continuation lines are indented two
/// past the line's own indent, so wrapped JSON still reads as JSON.
pub(super) fn wrap(s: &str, w: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if w == 0 || chars.len() <= w {
        return vec![s.to_string()];
    }
    let own = chars.iter().take_while(|c| **c == ' ').count() + 2;
    let indent = if own * 2 > w { 0 } else { own };
    let mut out = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let room = if out.is_empty() { w } else { w - indent };
        let mut end = (at + room).min(chars.len());
        if end < chars.len() {
            if let Some(sp) = chars[at + room / 2..end].iter().rposition(|c| *c == ' ') {
                end = at + room / 2 + sp + 1;
            }
        }
        let piece: String = chars[at..end].iter().collect();
        out.push(if out.is_empty() {
            piece
        } else {
            format!("{}{piece}", " ".repeat(indent))
        });
        at = end;
    }
    out
}

/// The screen lines for a list of text lines wrapped to `w` columns, `h`
/// of them, each with the index of the line it belongs to. Starts at line
/// `offset`, or later when the lines before `selected` wrap so much that
/// it would not be shown whole.
pub(super) fn wrapped_window(
    texts: &[&str],
    offset: usize,
    selected: usize,
    w: usize,
    h: usize,
) -> Vec<(usize, String)> {
    if texts.is_empty() || h == 0 {
        return Vec::new();
    }
    let rows = |i: usize| wrap(texts[i], w).len();
    let selected = selected.min(texts.len() - 1);
    let mut start = offset.min(texts.len() - 1);
    if start < selected {
        let mut used: usize = (start..=selected).map(rows).sum();
        while start < selected && used > h {
            used -= rows(start);
            start += 1;
        }
    }
    let mut out = Vec::with_capacity(h);
    for (i, text) in texts.iter().enumerate().skip(start) {
        for piece in wrap(text, w) {
            if out.len() == h {
                return out;
            }
            out.push((i, piece));
        }
    }
    out
}

pub(super) fn pad(s: &str, w: usize) -> String {
    let s = fit(s, w);
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

/// "3s", "5m", "2h", "4d"; "in 5m" for a time ahead of the clock.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    then.age_at(now)
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

pub(super) fn clock(app: &App, t: Timestamp, with_date: bool) -> String {
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

pub(super) fn block<'a>(theme: &Theme, title: String, focused: bool) -> Block<'a> {
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

pub(super) fn load_line<'a>(th: &Theme, load: &Load, empty: &str) -> Line<'a> {
    match load {
        Load::Loading => Line::styled("Loading…", th.fg(th.dim)),
        Load::Failed(e) => Line::styled(format!("Error: {e}"), th.fg(th.failed)),
        Load::Idle => Line::styled(empty.to_string(), th.fg(th.dim)),
    }
}

#[cfg(test)]
mod tests {
    use super::{wrap, wrapped_window};

    #[test]
    fn long_lines_wrap_at_spaces_and_keep_their_indent() {
        let line = "  \"error\": \"payment declined: card token for order ord-1002 has expired\"";
        let got = wrap(line, 30);
        assert!(got.iter().all(|l| l.chars().count() <= 30), "{got:?}");
        assert_eq!(got[0], "  \"error\": \"payment declined: ");
        assert!(got[1].starts_with("    "), "{got:?}");
        let joined: String = got
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 0 { l.as_str() } else { &l[4..] })
            .collect();
        assert_eq!(joined, line);
        assert_eq!(wrap("short", 30), vec!["short"]);
        assert_eq!(wrap(&"x".repeat(25), 10).len(), 3);
    }

    #[test]
    fn the_window_moves_down_until_the_selected_line_is_whole() {
        let long = "y".repeat(50);
        let texts = ["a", long.as_str(), "b", "c"];
        // 10 columns: "a" 1 row, the long line 6 rows, then b, c.
        let w = wrapped_window(&texts, 0, 2, 10, 4);
        assert_eq!(w, vec![(2, "b".to_string()), (3, "c".to_string())]);
        let w = wrapped_window(&texts, 0, 0, 10, 4);
        assert_eq!(w.len(), 4);
        assert_eq!(w[0], (0, "a".to_string()));
    }
}
