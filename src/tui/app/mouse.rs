//! The mouse: clicks and wheel on the panes, hit-tested against the same
//! layout the view draws with; and keeping each pane's cursor in view.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use super::{App, Mode, Pane};
use crate::tui::layout;

impl App {
    /// Scrolls each pane so its cursor stays in view.
    pub(super) fn keep_visible(&mut self) {
        let areas = layout::layout(Rect::new(0, 0, self.size.0, self.size.1), self.focus);
        let fit = |cursor: usize, offset: &mut usize, height: usize, len: usize| {
            let h = height.max(1);
            if cursor < *offset {
                *offset = cursor;
            } else if cursor >= *offset + h {
                *offset = cursor + 1 - h;
            }
            // No empty space below the end after the pane grew.
            *offset = (*offset).min(len.saturating_sub(h));
        };
        let list_h = areas.list.map_or(10, layout::list_body_height) as usize;
        fit(
            self.list.selected,
            &mut self.list.offset,
            list_h,
            self.list.sagas.len(),
        );
        if let Some(t) = self.timeline.as_mut() {
            let h = areas.timeline.map_or(10, layout::timeline_body_height) as usize;
            fit(t.cursor, &mut t.offset, h, t.marks.len());
        }
        let dh = areas.detail.map_or(10, layout::detail_body_height) as usize;
        let dlen = self.detail_len();
        fit(self.detail.line, &mut self.detail.offset, dh, dlen);
    }

    pub(super) fn on_mouse(&mut self, m: MouseEvent) {
        // The overview page covers the panes: clicks must not reach them.
        if self.mode != Mode::Normal || self.overview.is_some() {
            return;
        }
        let areas = layout::layout(Rect::new(0, 0, self.size.0, self.size.1), self.focus);
        let inside = |r: Option<Rect>| {
            r.filter(|r| {
                m.column >= r.x
                    && m.column < r.x + r.width
                    && m.row >= r.y
                    && m.row < r.y + r.height
            })
        };
        if let Some(r) = inside(areas.timeline) {
            self.focus = Pane::Timeline;
            match m.kind {
                MouseEventKind::ScrollDown => self.scrub_by(1),
                MouseEventKind::ScrollUp => self.scrub_by(-1),
                MouseEventKind::Down(MouseButton::Left) => {
                    if let Some(t) = &self.timeline {
                        let body = layout::timeline_body_top(r);
                        if m.row >= body {
                            let i = t.offset + (m.row - body) as usize;
                            if i < t.marks.len() {
                                self.scrub_to(i);
                            }
                        } else if m.row == body.saturating_sub(1) {
                            // The strip: one column per snapshot around the cursor.
                            let (start, _) = layout::strip_window(
                                t.cursor,
                                t.marks.len(),
                                r.width.saturating_sub(2) as usize,
                            );
                            let i = start + (m.column.saturating_sub(r.x + 1)) as usize;
                            if i < t.marks.len() {
                                self.scrub_to(i);
                            }
                        }
                    }
                }
                _ => {}
            }
        } else if let Some(r) = inside(areas.list) {
            self.focus = Pane::List;
            match m.kind {
                MouseEventKind::ScrollDown => self.list_move(1),
                MouseEventKind::ScrollUp => self.list_move(-1),
                MouseEventKind::Down(MouseButton::Left) => {
                    let body = layout::list_body_top(r);
                    if m.row >= body {
                        let i = self.list.offset + (m.row - body) as usize;
                        if i < self.list.sagas.len() {
                            let by = i as i64 - self.list.selected as i64;
                            self.list_move(by);
                        }
                    }
                }
                _ => {}
            }
        } else if inside(areas.detail).is_some() {
            self.focus = Pane::Detail;
            match m.kind {
                MouseEventKind::ScrollDown => self.detail_move(3),
                MouseEventKind::ScrollUp => self.detail_move(-3),
                _ => {}
            }
        }
    }
}
