//! The overview page: sagas by status (real totals from the store's
//! counts), failures per hour over the last day as a sparkline, and the
//! newest failures grouped by step and error, one real error each.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use super::{block, clock, fit, load_line, pad};
use crate::tui::app::{App, Load, OverviewPage};
use crate::tui::theme::status_glyph;

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Columns of a per-hour bar: one glyph per hour.
fn sparkline(per_hour: &[u64]) -> String {
    let max = per_hour.iter().copied().max().unwrap_or(0);
    per_hour
        .iter()
        .map(|&n| match n {
            0 => '·',
            // 1..=8 eighths of the busiest hour, never an empty bar.
            _ => SPARKS[((n * 8).div_ceil(max.max(1)) as usize).clamp(1, 8) - 1],
        })
        .collect()
}

pub(super) fn overview(f: &mut Frame, app: &App, p: &OverviewPage, r: Rect) {
    let th = &app.cfg.theme;
    let title = match &p.data {
        Some(d) => format!(
            " Overview · {} saga(s) · counted {} ",
            d.total,
            clock(app, d.at, false)
        ),
        None => " Overview ".to_string(),
    };
    let b = block(th, title, true);
    let inner = b.inner(r);
    f.render_widget(Clear, r);
    f.render_widget(b, r);
    let w = inner.width as usize;
    let h = inner.height as usize;
    let mut lines: Vec<Line> = Vec::new();
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let Some(d) = &p.data else {
        lines.push(load_line(th, &p.load, ""));
        if p.load == Load::Loading {
            lines[0] = Line::styled(
                "counting sagas by status, reading the newest failures…",
                th.fg(th.dim),
            );
        }
        f.render_widget(Paragraph::new(lines), inner);
        return;
    };
    match &p.load {
        Load::Loading => lines.push(Line::styled("recounting…", th.fg(th.dim))),
        Load::Failed(e) => lines.push(Line::styled(
            fit(
                &format!("Error: {e} (showing the last count; C-r retries)"),
                w,
            ),
            th.fg(th.failed),
        )),
        Load::Idle => {}
    }
    // By status: a count and a bar scaled to the largest.
    lines.push(Line::styled("Sagas by status", bold));
    let max = d
        .by_status
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
        .max(1);
    let bar_w = w.saturating_sub(2 + 22 + 9 + 1).min(40);
    let mut counted = 0;
    for (s, n) in &d.by_status {
        counted += n;
        let bar = "█".repeat(((*n as usize) * bar_w).div_ceil(max as usize));
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", status_glyph(s)), th.status(s)),
            Span::raw(pad(s.as_str(), 22)),
            Span::raw(format!("{n:>9} ")),
            Span::styled(bar, th.status(s)),
        ]));
    }
    if d.total > counted {
        lines.push(Line::styled(
            format!("? {}{:>9}", pad("other status", 22), d.total - counted),
            th.fg(th.dim),
        ));
    }
    if d.by_status.is_empty() {
        lines.push(Line::styled("No sagas in this store.", th.fg(th.dim)));
    }
    lines.push(Line::raw(""));
    // Failures per hour, the last day.
    let last_day: u64 = d.per_hour.iter().sum();
    let peak = d.per_hour.iter().copied().max().unwrap_or(0);
    lines.push(Line::styled(
        fit(
            &format!("Failures per hour, last 24 h: {last_day} in all, at most {peak} in an hour"),
            w,
        ),
        bold,
    ));
    lines.push(Line::from(vec![
        Span::styled(sparkline(&d.per_hour), th.fg(th.failed)),
        Span::styled("  ← 24 h ago · now →", th.fg(th.dim)),
    ]));
    lines.push(Line::raw(""));
    // Failure groups.
    let scope = if (d.grouped as u64) < d.failures {
        format!("the newest {} of {} failures", d.grouped, d.failures)
    } else {
        format!("all {} failures", d.failures)
    };
    lines.push(Line::styled(
        fit(
            &format!("Failures by step and error ({scope}); Enter lists a group"),
            w,
        ),
        bold,
    ));
    if d.groups.is_empty() {
        lines.push(Line::styled("No failed sagas.", th.fg(th.dim)));
    } else {
        lines.push(Line::styled(
            fit(
                &format!(
                    "  {:>6}  {}  error (one of the group)",
                    "sagas",
                    pad("step", 20)
                ),
                w,
            ),
            th.fg(th.dim),
        ));
    }
    let room = h.saturating_sub(lines.len());
    // Keep the selected group in view.
    let start = p.selected.saturating_sub(room.saturating_sub(1));
    for (i, g) in d.groups.iter().enumerate().skip(start).take(room) {
        let here = i == p.selected;
        let example = if g.example.is_empty() {
            "(no error recorded)".to_string()
        } else {
            g.example.clone()
        };
        let text = format!(
            "{}{:>6}  {}  {}",
            if here { "▶ " } else { "  " },
            g.sagas.len(),
            pad(&g.step, 20),
            example
        );
        let mut line = Line::styled(fit(&text, w), th.fg(th.failed));
        if here {
            line = line.style(th.selected());
        }
        lines.push(line);
    }
    f.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn the_sparkline_scales_to_the_busiest_hour_and_dots_empty_ones() {
        assert_eq!(sparkline(&[0, 1, 7, 14]), "·▁▄█");
        assert_eq!(sparkline(&[0, 0]), "··");
    }
}
