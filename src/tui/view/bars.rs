//! The header (store, connection, read-only, pin) and the footer (input
//! line, message or key hints).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::app::{App, Conn, InputKind, Mode, Pane};
use crate::tui::keymap::{Cmd, Scope, COMMANDS};

pub(super) fn header(f: &mut Frame, app: &App, r: Rect) {
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

pub(super) fn footer(f: &mut Frame, app: &App, r: Rect) {
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
                let c = crate::tui::keymap::palette_candidates(text);
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
pub(super) fn hints(app: &App) -> Line<'static> {
    let th = &app.cfg.theme;
    if app.overview.is_some() {
        // The page's own keys: the list's, read by the page.
        let km = &app.cfg.keymap;
        let mut spans = vec![Span::raw(" ")];
        for (cmd, what) in [
            (Cmd::ListDown, "next group"),
            (Cmd::ListUp, "previous group"),
            (Cmd::ListOpen, "list the group's sagas"),
            (Cmd::Refresh, "recount"),
            (Cmd::Back, "close"),
        ] {
            spans.push(Span::styled(
                km.label(cmd),
                th.fg(th.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        return Line::from(spans);
    }
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
