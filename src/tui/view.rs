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
    if let Some(r) = a.list {
        list::list(f, app, r);
    }
    if let Some(r) = a.timeline {
        timeline::timeline(f, app, r);
    }
    if let Some(r) = a.detail {
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
