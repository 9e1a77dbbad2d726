//! Keys in order, none lost: a key that acts on something still on its
//! way (the saga just opened, the page an `End` walks into, the snapshot
//! `e` edits, the plan `d` pops up, the saga `:saga` opens) waits for it,
//! and every key and click after it waits behind it. They are applied the
//! moment what they wait for arrives; a store that does not answer holds
//! them at most [`HOLD_LIMIT_S`] seconds, after which they apply as things
//! stand. `C-c` never waits.

use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};

use super::{Action, App, Load, Mode, Pane, Tab};
use crate::tui::keymap::{Cmd, Key, Scope};
use crate::tui::messages::Slot;

/// Longest a key waits for the store, in seconds.
pub const HOLD_LIMIT_S: i64 = 3;

impl App {
    /// A key or a click from the terminal: applied now, or held behind
    /// what it (or a key before it) waits for.
    pub(super) fn on_input(&mut self, a: Action) {
        if let Action::Key(k) = &a {
            if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
                self.held.clear();
                self.held_since = None;
                return self.on_key(*k);
            }
        }
        if self.held.is_empty() && !self.must_wait(&a) {
            self.apply_input(a);
        } else {
            if self.held.is_empty() {
                self.held_since = Some(self.now);
            }
            self.held.push_back(a);
        }
    }

    /// How many keys and clicks are waiting.
    pub fn held_keys(&self) -> usize {
        self.held.len()
    }

    fn apply_input(&mut self, a: Action) {
        match a {
            Action::Key(k) => self.on_key(k),
            Action::Mouse(m) => self.on_mouse(m),
            other => self.update(other),
        }
    }

    /// Applies the held keys that no longer wait, in order, up to the
    /// first that still does.
    pub(super) fn release_held(&mut self) {
        let mut released = false;
        while let Some(a) = self.held.front() {
            if self.must_wait(a) {
                break;
            }
            if let Some(a) = self.held.pop_front() {
                self.apply_input(a);
                released = true;
            }
        }
        if self.held.is_empty() {
            self.held_since = None;
        } else if released {
            self.held_since = Some(self.now);
        }
    }

    /// Keys held past [`HOLD_LIMIT_S`] apply as things stand: a store
    /// that stopped answering must not freeze the keyboard.
    pub(super) fn release_stale(&mut self) {
        let Some(since) = self.held_since else { return };
        if self.now.as_micros() - since.as_micros() < HOLD_LIMIT_S * 1_000_000 {
            return;
        }
        self.held_since = None;
        while let Some(a) = self.held.pop_front() {
            if self.quit {
                break;
            }
            self.apply_input(a);
        }
    }

    /// Whether `a`, applied now, would act on something still loading.
    fn must_wait(&self, a: &Action) -> bool {
        let Action::Key(k) = a else {
            return false;
        };
        if k.kind == KeyEventKind::Release {
            return false;
        }
        // `$EDITOR` has the terminal: what was typed meanwhile comes after.
        if self.external_edit.is_some() {
            return true;
        }
        // Popups, the editor, the batch form, the overview and input lines
        // answer from what they hold.
        if self.mode != Mode::Normal
            || self.panel.is_some()
            || self.editor.is_some()
            || self.batch_form.is_some()
            || self.overview.is_some()
        {
            return false;
        }
        // A saga opening, a jump or a plan decides where the next key goes.
        if self.in_flight.contains(&Slot::Open)
            || self.in_flight.contains(&Slot::Jump)
            || self.tickets.running(Slot::Plan)
        {
            return true;
        }
        let Some(cmd) = self.cfg.keymap.lookup(Key::from_event(k), self.scopes()) else {
            return false;
        };
        // Refused whatever is loaded.
        if self.cfg.readonly && cmd.writes() {
            return false;
        }
        self.list_not_ready(cmd) || self.timeline_not_ready(cmd) || self.detail_not_ready(cmd)
    }

    /// The list is being replaced (a filter, a reload), or a move goes past
    /// its loaded end while the next page is on its way.
    fn list_not_ready(&self, cmd: Cmd) -> bool {
        if self.focus != Pane::List || !self.in_flight.contains(&Slot::List) {
            return false;
        }
        if !self.list_appending {
            // The filter and the sort do not need the rows; the rest act on them.
            return cmd.def().scope == Scope::List
                && !matches!(cmd, Cmd::ListFilter | Cmd::ListSort);
        }
        let step = match cmd {
            Cmd::ListDown => 1,
            Cmd::ListPageDown => self.page(),
            Cmd::ListBottom => usize::MAX,
            _ => return false,
        };
        self.list.selected.saturating_add(step) >= self.list.sagas.len()
    }

    /// The open saga's first page (or the snapshot a jump lands on) is not
    /// there yet; `G` waits for the real last snapshot.
    fn timeline_not_ready(&self, cmd: Cmd) -> bool {
        let Some(t) = &self.timeline else {
            return false;
        };
        let def = cmd.def();
        let acts_on_it = def.scope == Scope::Timeline
            || (def.scope == Scope::Detail && self.focus != Pane::List)
            || matches!(
                cmd,
                Cmd::Edit | Cmd::DryRun | Cmd::Replay | Cmd::Pin | Cmd::Export | Cmd::LinkedSaga
            );
        if !acts_on_it || t.load != Load::Loading {
            return false;
        }
        t.marks.is_empty() || self.pending_jump.is_some() || cmd == Cmd::TimelineLast
    }

    /// `e` edits the snapshot under the cursor, and the detail keys move in
    /// it: both wait for it to be rendered.
    fn detail_not_ready(&self, cmd: Cmd) -> bool {
        let detail_key = cmd.def().scope == Scope::Detail && self.focus == Pane::Detail;
        if self.detail.tab == Tab::Replays && detail_key {
            return self.in_flight.contains(&Slot::Replays);
        }
        (cmd == Cmd::Edit || detail_key) && self.in_flight.contains(&Slot::Detail)
    }
}
