//! The screen's geometry: where each pane goes at each terminal size and
//! where each pane's body starts. Drawing ([`super::view`]) and mouse
//! hit-testing and scrolling (the App) both use it, so they agree.

use ratatui::layout::{Constraint, Layout, Rect};

/// The three panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    List,
    Timeline,
    Detail,
}

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub list: Option<Rect>,
    pub timeline: Option<Rect>,
    pub detail: Option<Rect>,
    pub footer: Rect,
}

/// Three panes when wide, two when medium, the focused one when narrow.
pub fn layout(area: Rect, focus: Pane) -> Areas {
    let header = Rect::new(area.x, area.y, area.width, area.height.min(1));
    let footer_y = area.y + area.height.saturating_sub(1);
    let footer = Rect::new(
        area.x,
        footer_y,
        area.width,
        if area.height >= 2 { 1 } else { 0 },
    );
    let body = Rect::new(
        area.x,
        area.y + 1,
        area.width,
        area.height.saturating_sub(2),
    );
    let (mut list, mut timeline, mut detail) = (None, None, None);
    if area.width >= 120 {
        let c = Layout::horizontal([
            Constraint::Percentage(28),
            Constraint::Percentage(32),
            Constraint::Min(10),
        ])
        .split(body);
        list = Some(c[0]);
        timeline = Some(c[1]);
        detail = Some(c[2]);
    } else if area.width >= 80 {
        let c = Layout::horizontal([Constraint::Percentage(42), Constraint::Min(10)]).split(body);
        match focus {
            Pane::List => list = Some(c[0]),
            _ => timeline = Some(c[0]),
        }
        detail = Some(c[1]);
    } else {
        match focus {
            Pane::List => list = Some(body),
            Pane::Timeline => timeline = Some(body),
            Pane::Detail => detail = Some(body),
        }
    }
    Areas {
        header,
        list,
        timeline,
        detail,
        footer,
    }
}

/// The first row of the saga list's body (below its border).
pub fn list_body_top(r: Rect) -> u16 {
    r.y + 1
}
/// Rows in the saga list's body.
pub fn list_body_height(r: Rect) -> u16 {
    r.height.saturating_sub(2)
}
/// The first row of the timeline's body (below its border and the strip).
pub fn timeline_body_top(r: Rect) -> u16 {
    r.y + 2
}
/// Rows in the timeline's body.
pub fn timeline_body_height(r: Rect) -> u16 {
    r.height.saturating_sub(3)
}
/// Rows in the detail pane's body (below its tabs and meta line).
pub fn detail_body_height(r: Rect) -> u16 {
    r.height.saturating_sub(4)
}

/// The first mark the strip shows and how many, centred on the cursor
/// (`n` marks, the strip `width` columns wide).
pub fn strip_window(cursor: usize, n: usize, width: usize) -> (usize, usize) {
    if n <= width || width == 0 {
        return (0, n.min(width));
    }
    let start = cursor.saturating_sub(width / 2).min(n - width);
    (start, width)
}
