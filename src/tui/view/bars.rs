//! The header (store, connection, read-only, pin) and the footer (input
//! line, message or key hints).

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::model::short_id;
use crate::tui::app::{App, Conn, InputKind, Load, Mode, Pane};
use crate::tui::keymap::{Scope, COMMANDS};

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
        // The first list page came back before the health check (which
        // counts rows, slow on a big store): the store is answering.
        Conn::Connecting if app.list.load == Load::Idle => {
            spans.push(Span::styled("● connected", th.fg(th.ok)))
        }
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
    if let Some(r) = app.open_reveal() {
        spans.push(sep.clone());
        spans.push(Span::styled(
            format!("revealed: {}", r.reason),
            th.fg(th.failed)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(th.header()), r);
}

pub(super) fn footer(f: &mut Frame, app: &App, r: Rect) {
    if r.height == 0 {
        return;
    }
    let th = &app.cfg.theme;
    let line = match &app.mode {
        Mode::Input {
            kind, text, cursor, ..
        } => {
            let prompt = match (kind, app.replay.target()) {
                (InputKind::Filter, _) => "/".to_string(),
                (InputKind::Palette, _) => ":".to_string(),
                (InputKind::Search, _) => "search: ".to_string(),
                // The id the prompt expects, and whose it is.
                // The guards overridden are named where the replay is confirmed.
                (InputKind::ConfirmId, Some(t)) => format!(
                    "replay {} {} from {}{}: type {} to confirm: ",
                    t.saga_name,
                    short_id(&t.saga_id),
                    t.spec.from_step,
                    match crate::tui::app::overridden_flags(&t.spec.allow) {
                        f if f.is_empty() => f,
                        f => format!(" ({f})"),
                    },
                    short_id(&t.saga_id)
                ),
                (InputKind::ConfirmId, None) => "type the saga's short id to replay: ".into(),
                (InputKind::Reason, Some(t)) => format!(
                    "reason for replaying {} (optional, Enter starts it): ",
                    short_id(&t.saga_id)
                ),
                (InputKind::Reason, None) => "reason (optional): ".into(),
                (InputKind::ConfirmBatch, _) => {
                    "type the number of marked sagas to replay them all: ".into()
                }
                (InputKind::RevealReason, _) => match &app.timeline {
                    Some(t) => format!(
                        "reason for revealing {} (audit log; Esc cancels): ",
                        short_id(&t.saga.saga_id)
                    ),
                    None => "reason for revealing (audit log; Esc cancels): ".into(),
                },
            };
            let cursor = (*cursor).min(text.len());
            let (head, tail) = text.split_at(if text.is_char_boundary(cursor) {
                cursor
            } else {
                text.len()
            });
            // The cursor: a block at the end, the character under it
            // reversed elsewhere.
            let mut tail_chars = tail.chars();
            let under = match tail_chars.next() {
                Some(c) => Span::styled(
                    c.to_string(),
                    Style::default().add_modifier(Modifier::REVERSED),
                ),
                None => Span::styled("█", th.fg(th.accent)),
            };
            let mut spans = vec![
                Span::styled(prompt, th.fg(th.accent).add_modifier(Modifier::BOLD)),
                Span::raw(head.to_string()),
                under,
                Span::raw(tail_chars.as_str().to_string()),
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
                match &app.list.filter_error {
                    Some(e) => spans.push(Span::styled(
                        format!("   ✗ {e}"),
                        th.fg(th.failed).add_modifier(Modifier::BOLD),
                    )),
                    None => spans.push(Span::styled(
                        "   name part · id prefix · status:failed · step:charge_payment · since:-2h · until:TIME",
                        th.fg(th.dim),
                    )),
                }
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
            None => hints(app, r.width as usize),
        },
    };
    f.render_widget(Paragraph::new(line), r);
}

/// Key hints for the focused pane, from the keymap: as many whole hints
/// as fit in `width` columns (a hint is never cut mid-word), in order of
/// use: the pane's own, the replay keys (none in read-only mode), the rest.
pub(super) fn hints(app: &App, width: usize) -> Line<'static> {
    use crate::tui::keymap::{Cmd, CommandDef};
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
    let mut used = 1;
    // `V` is a hint only where there is something masked to reveal.
    let reveal_hint =
        |cmd: Cmd| cmd == Cmd::Reveal && app.cfg.sensitive.is_some() && app.timeline.is_some();
    let mut add = |pick: &dyn Fn(&CommandDef) -> bool| {
        for d in COMMANDS
            .iter()
            .filter(|d| (d.hint || reveal_hint(d.cmd)) && pick(d))
            .filter(|d| !(app.cfg.readonly && d.cmd.writes()))
        {
            let short = d
                .name
                .rsplit('.')
                .next()
                .unwrap_or(d.name)
                .replace('_', " ");
            let key = app.cfg.keymap.label(d.cmd);
            let text = format!(" {short}  ");
            let w = key.chars().count() + text.chars().count();
            // The trailing two spaces may fall off the edge.
            if used + w - 2 > width {
                continue;
            }
            used += w;
            spans.push(Span::styled(
                key,
                th.fg(th.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(text));
        }
    };
    add(&|d| d.scope == scope);
    if scope == Scope::Detail {
        add(&|d| d.scope == Scope::Timeline);
    }
    let first = |d: &CommandDef| matches!(d.cmd, Cmd::Quit | Cmd::Help);
    add(&|d| d.scope == Scope::Global && first(d));
    add(&|d| d.scope == Scope::Global && d.cmd.writes());
    add(&|d| d.scope == Scope::Global && !d.cmd.writes() && !first(d));
    Line::from(spans)
}
