//! Keys are data: every command has a name and a one-line doc in
//! [`COMMANDS`]; `assets/keymap.toml` binds keys to names; the config's
//! `[tui.keys]` overrides single commands. The footer hints, the `?` help
//! and the `:` palette's completion all read this one table.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A command a key (or the palette) can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cmd {
    Quit,
    Back,
    Help,
    Palette,
    FocusNext,
    FocusPrev,
    TabContext,
    TabDiff,
    TabRaw,
    TabReplays,
    TimeTravel,
    Pin,
    Unpin,
    LinkedSaga,
    Export,
    Overview,
    Refresh,
    ListDown,
    ListUp,
    ListPageDown,
    ListPageUp,
    ListTop,
    ListBottom,
    ListOpen,
    ListFilter,
    ListSort,
    TimelineNext,
    TimelinePrev,
    TimelineFirst,
    TimelineLast,
    TimelineNextEvent,
    TimelinePrevEvent,
    TimelinePageDown,
    TimelinePageUp,
    TimelineBack,
    TimelineFollow,
    DetailDown,
    DetailUp,
    DetailPageDown,
    DetailPageUp,
    DetailTop,
    DetailBottom,
    DetailFold,
    DetailFoldAll,
    DetailSearch,
    DetailSearchNext,
    DetailSearchPrev,
    DetailWhereChanged,
    DetailNextChange,
    DetailOpen,
    Edit,
    EditorMerge,
    EditorFull,
    EditorDiscard,
    EditorExternal,
    DryRun,
    Replay,
    ListMark,
    ListMarkAll,
    ListBatchDryRun,
    ListBatchReplay,
    GuardAllowCompleted,
    GuardAgain,
    GuardForce,
    Reveal,
}

/// Where a command applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    List,
    Timeline,
    Detail,
}

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct CommandDef {
    pub cmd: Cmd,
    pub name: &'static str,
    pub doc: &'static str,
    pub scope: Scope,
    /// Shown in the footer when its scope is focused.
    pub hint: bool,
}

macro_rules! commands {
    ($( $cmd:ident, $name:literal, $scope:ident, $hint:literal, $doc:literal; )*) => {
        /// Every command, in help order.
        pub const COMMANDS: &[CommandDef] = &[
            $( CommandDef { cmd: Cmd::$cmd, name: $name, doc: $doc, scope: Scope::$scope, hint: $hint }, )*
        ];
    };
}

commands! {
    Quit, "quit", Global, true, "Leave sagascope (the terminal is restored)";
    Back, "back", Global, false, "Close the popup, cancel the input, or clear the filter";
    Help, "help", Global, true, "Show every command and its keys";
    Palette, "palette", Global, true, "Command palette (:at, :saga, :sort, :export …)";
    FocusNext, "focus.next", Global, true, "Focus the next pane";
    FocusPrev, "focus.prev", Global, false, "Focus the previous pane";
    TabContext, "tab.context", Global, false, "Detail: the context as pretty JSON";
    TabDiff, "tab.diff", Global, false, "Detail: diff against the previous (or pinned) snapshot";
    TabRaw, "tab.raw", Global, false, "Detail: the whole snapshot record";
    TabReplays, "tab.replays", Global, false, "Detail: the saga's replay log";
    TimeTravel, "time_travel", Global, true, "Travel to a time (:at 2026-01-15T10:30:00Z or -2h)";
    Pin, "pin", Global, true, "Pin this snapshot: diffs compare against it, across sagas too";
    Unpin, "unpin", Global, false, "Unpin: diffs compare against the previous snapshot again";
    LinkedSaga, "linked_saga", Global, false, "Jump between a replayed saga and its original";
    Export, "export", Global, false, "Export what the focused pane shows (the diff on Diff, the snapshot on Raw) as JSON under the data dir";
    Overview, "overview", Global, false, "Overview: sagas by status, failures by step and error, failures per hour (Enter lists a group)";
    Refresh, "refresh", Global, false, "Reload the list, timeline and detail from the store";
    ListDown, "list.down", List, false, "Select the next saga";
    ListUp, "list.up", List, false, "Select the previous saga";
    ListPageDown, "list.page_down", List, false, "Select a page further down";
    ListPageUp, "list.page_up", List, false, "Select a page further up";
    ListTop, "list.top", List, false, "Select the first saga";
    ListBottom, "list.bottom", List, false, "Select the last loaded saga";
    ListOpen, "list.open", List, true, "Open the selected saga's timeline";
    ListFilter, "list.filter", List, true, "Filter as you type: part of the name, id prefix, status:failed, step:NAME (the last step reached), since:-2h, until:TIME";
    ListSort, "list.sort", List, true, "Sort by time, name or status";
    TimelineNext, "timeline.next", Timeline, true, "Next snapshot";
    TimelinePrev, "timeline.prev", Timeline, true, "Previous snapshot";
    TimelineFirst, "timeline.first", Timeline, true, "First snapshot";
    TimelineLast, "timeline.last", Timeline, true, "Last snapshot";
    TimelineNextEvent, "timeline.next_event", Timeline, true, "Next failure or status change";
    TimelinePrevEvent, "timeline.prev_event", Timeline, true, "Previous failure or status change";
    TimelinePageDown, "timeline.page_down", Timeline, false, "A page of snapshots later";
    TimelinePageUp, "timeline.page_up", Timeline, false, "A page of snapshots earlier";
    TimelineBack, "timeline.back", Timeline, false, "Back to the saga list";
    TimelineFollow, "timeline.follow", Timeline, false, "Follow: keep the cursor on the newest snapshot as new ones arrive (again: stop)";
    DetailDown, "detail.down", Detail, false, "Move down a line";
    DetailUp, "detail.up", Detail, false, "Move up a line";
    DetailPageDown, "detail.page_down", Detail, false, "Move down a page";
    DetailPageUp, "detail.page_up", Detail, false, "Move up a page";
    DetailTop, "detail.top", Detail, false, "Go to the first line";
    DetailBottom, "detail.bottom", Detail, false, "Go to the last line";
    DetailFold, "detail.fold", Detail, true, "Fold or unfold the object or array on this line";
    DetailFoldAll, "detail.fold_all", Detail, false, "Fold everything below the top level, or unfold all";
    DetailSearch, "detail.search", Detail, true, "Search the detail text";
    DetailSearchNext, "detail.search_next", Detail, false, "Next search match";
    DetailSearchPrev, "detail.search_prev", Detail, false, "Previous search match";
    DetailWhereChanged, "detail.where_changed", Detail, true, "Where did this change: the snapshot where this path's value last changed";
    DetailNextChange, "detail.next_change", Detail, true, "The next snapshot where this path's value changes";
    DetailOpen, "detail.open", Detail, false, "Replays tab: open the selected replay's saga";
    Edit, "edit", Global, true, "Edit the replay override from this snapshot (kept per saga)";
    EditorMerge, "editor.merge", Global, false, "Editor: switch the merge mode (shallow / RFC 7396 patch)";
    EditorFull, "editor.full_context", Global, false, "Editor: start from the snapshot's full context";
    EditorDiscard, "editor.discard", Global, false, "Editor: discard the draft and close";
    EditorExternal, "editor.external", Global, false, "Editor: edit the override in $EDITOR (the TUI pauses meanwhile)";
    DryRun, "dry_run", Global, true, "Dry-run from this snapshot's step with the override: the plan, nothing runs";
    ListMark, "list.mark", List, false, "Mark or unmark the selected saga for a batch";
    ListMarkAll, "list.mark_all", List, false, "Mark every loaded saga that matches the filter (again: unmark all)";
    ListBatchDryRun, "list.batch_dry_run", List, false, "Batch dry run of the marked sagas: a form (from-step, override, compensated steps, reason), then the plan summary";
    ListBatchReplay, "list.batch_replay", List, false, "Batch replay of the marked sagas: the same form (a reason is required), the dry run's summary, then confirm by typing their number";
    Replay, "replay", Global, true, "Replay for real from this step (confirm by typing the saga's short id)";
    GuardAllowCompleted, "guard.allow_completed", Global, false, "Plan popup: replay although the saga completed (--allow-completed), and plan again";
    GuardAgain, "guard.again", Global, false, "Plan popup: replay although a replay already succeeded (--again), and plan again";
    GuardForce, "guard.force", Global, false, "Plan popup: replay although the saga may still be running (--force), and plan again";
    Reveal, "reveal", Global, false, "Reveal the open saga's masked values: asks for a reason, writes it to the audit log, then shows the saga unmasked until it is closed (again: mask)";
}

impl Cmd {
    pub fn def(self) -> &'static CommandDef {
        // Every Cmd has a row: the table is built from the same list.
        COMMANDS
            .iter()
            .find(|d| d.cmd == self)
            .unwrap_or(&COMMANDS[0])
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn by_name(name: &str) -> Option<Cmd> {
        COMMANDS.iter().find(|d| d.name == name).map(|d| d.cmd)
    }

    /// Commands that write to the store or exist only to: replays, batch
    /// replays, dry runs (each is written to the replay log, as the CLI's
    /// are) and the override editor. Read-only mode refuses every one with
    /// [`READONLY_REFUSAL`] and leaves them out of the footer.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Cmd::Edit
                | Cmd::DryRun
                | Cmd::Replay
                | Cmd::ListBatchDryRun
                | Cmd::ListBatchReplay
                | Cmd::Reveal
        )
    }
}

/// What read-only mode answers to every command that [writes](Cmd::writes).
pub const READONLY_REFUSAL: &str = "read-only mode: replays, dry runs (they are written to the replay log) and the override editor are refused; nothing was done";

/// What read-only mode answers to a reveal: a reveal is audited, and the
/// audit event is a write the read-only store refuses. Revealing
/// unaudited is never an option, so auditors reveal from a session that
/// may write (the audit log is all it writes).
pub const READONLY_REVEAL_REFUSAL: &str = "read-only mode: revealing writes an audit event to the store, which read-only mode refuses; nothing was revealed (open the store without --readonly to reveal)";

/// The shipped bindings.
pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

/// A key as the keymap names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    /// Normalises a terminal key event: shift is part of the character.
    pub fn from_event(e: &KeyEvent) -> Key {
        let mut mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match e.code {
            KeyCode::Char(c) => KeyCode::Char(c),
            KeyCode::BackTab => KeyCode::BackTab,
            other => {
                if e.modifiers.contains(KeyModifiers::SHIFT) {
                    mods |= KeyModifiers::SHIFT;
                }
                other
            }
        };
        Key { code, mods }
    }

    /// Reads `q`, `G`, `C-r`, `Enter`, `PageDown`, `Space`, `F1`.
    pub fn parse(s: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            if rest.len() > 2 {
                if let Some(r) = rest.strip_prefix("C-") {
                    mods |= KeyModifiers::CONTROL;
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("A-") {
                    mods |= KeyModifiers::ALT;
                    rest = r;
                    continue;
                }
                if let Some(r) = rest.strip_prefix("S-") {
                    mods |= KeyModifiers::SHIFT;
                    rest = r;
                    continue;
                }
            }
            break;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => match rest {
                "Enter" => KeyCode::Enter,
                "Esc" => KeyCode::Esc,
                "Tab" => KeyCode::Tab,
                "BackTab" => KeyCode::BackTab,
                "Space" => KeyCode::Char(' '),
                "Backspace" => KeyCode::Backspace,
                "Up" => KeyCode::Up,
                "Down" => KeyCode::Down,
                "Left" => KeyCode::Left,
                "Right" => KeyCode::Right,
                "Home" => KeyCode::Home,
                "End" => KeyCode::End,
                "PageUp" => KeyCode::PageUp,
                "PageDown" => KeyCode::PageDown,
                "Delete" => KeyCode::Delete,
                f if f.starts_with('F') => match f[1..].parse::<u8>() {
                    Ok(n) if (1..=12).contains(&n) => KeyCode::F(n),
                    _ => return Err(format!("unknown key {s:?}")),
                },
                _ => return Err(format!("unknown key {s:?}")),
            },
        };
        Ok(Key { code, mods })
    }

    /// How the footer and help show the key.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::F(n) => format!("F{n}"),
            _ => "?".into(),
        };
        let mut out = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            out.push_str("C-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            out.push_str("A-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            out.push_str("S-");
        }
        out + &base
    }
}

/// Why a keymap could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeymapError {
    #[error("invalid keymap: {0}")]
    Parse(String),
    #[error("unknown command {0:?} in the keymap (press ? in the TUI for the list)")]
    UnknownCommand(String),
    #[error("command {command:?}: {message}")]
    BadKey { command: String, message: String },
}

/// The bindings in force.
#[derive(Debug, Clone, Default)]
pub struct Keymap {
    keys: BTreeMap<Cmd, Vec<Key>>,
}

#[derive(serde::Deserialize)]
struct KeymapFile {
    keys: BTreeMap<String, Vec<String>>,
}

impl Keymap {
    /// The shipped defaults with the config's overrides applied (an
    /// override replaces that command's keys; several keys separated by
    /// spaces).
    pub fn load(overrides: &BTreeMap<String, String>) -> Result<Keymap, KeymapError> {
        let mut km = Keymap::parse(DEFAULT_KEYMAP)?;
        for (name, keys) in overrides {
            let cmd =
                Cmd::by_name(name).ok_or_else(|| KeymapError::UnknownCommand(name.clone()))?;
            let parsed = keys
                .split_whitespace()
                .map(|k| {
                    Key::parse(k).map_err(|message| KeymapError::BadKey {
                        command: name.clone(),
                        message,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            km.keys.insert(cmd, parsed);
        }
        Ok(km)
    }

    /// The built-in keymap alone.
    pub fn defaults() -> Keymap {
        Keymap::parse(DEFAULT_KEYMAP).unwrap_or_default()
    }

    /// Parses keymap TOML (`[keys]` name = [keys]).
    pub fn parse(text: &str) -> Result<Keymap, KeymapError> {
        let file: KeymapFile =
            toml::from_str(text).map_err(|e| KeymapError::Parse(e.to_string()))?;
        let mut keys = BTreeMap::new();
        for (name, list) in file.keys {
            let cmd =
                Cmd::by_name(&name).ok_or_else(|| KeymapError::UnknownCommand(name.clone()))?;
            let parsed = list
                .iter()
                .map(|k| {
                    Key::parse(k).map_err(|message| KeymapError::BadKey {
                        command: name.clone(),
                        message,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            keys.insert(cmd, parsed);
        }
        Ok(Keymap { keys })
    }

    pub fn keys(&self, cmd: Cmd) -> &[Key] {
        self.keys.get(&cmd).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The keys of a command as the footer shows them (`j/↓`).
    pub fn label(&self, cmd: Cmd) -> String {
        let ks = self.keys(cmd);
        if ks.is_empty() {
            return format!(":{}", cmd.name());
        }
        ks.iter()
            .take(2)
            .map(Key::label)
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The command a key runs, trying scopes in order.
    pub fn lookup(&self, key: Key, scopes: &[Scope]) -> Option<Cmd> {
        for scope in scopes {
            for d in COMMANDS.iter().filter(|d| d.scope == *scope) {
                if self.keys(d.cmd).contains(&key) {
                    return Some(d.cmd);
                }
            }
        }
        None
    }
}

/// The command table as Markdown, one table per scope with every key bound
/// (the README's TUI section is this text; a test keeps them equal).
pub fn markdown(km: &Keymap) -> String {
    let mut out = String::new();
    for (scope, title) in [
        (Scope::Global, "Everywhere"),
        (Scope::List, "Saga list"),
        (Scope::Timeline, "Timeline (and the detail pane)"),
        (Scope::Detail, "Detail"),
    ] {
        out.push_str(&format!(
            "{title}:\n\n| keys | command | what |\n|---|---|---|\n"
        ));
        for d in COMMANDS.iter().filter(|d| d.scope == scope) {
            let keys: Vec<String> = km
                .keys(d.cmd)
                .iter()
                .map(|k| format!("`{}`", k.label()))
                .collect();
            let what = if d.cmd.writes() {
                format!("{} (refused in read-only mode)", d.doc)
            } else {
                d.doc.to_string()
            };
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                keys.join(" "),
                d.name,
                what.replace('|', "\\|")
            ));
        }
        out.push('\n');
    }
    out
}

/// Palette completions for what has been typed so far.
pub fn palette_candidates(text: &str) -> Vec<&'static str> {
    const VERBS: [&str; 6] = ["at", "saga", "sort", "filter", "export", "help"];
    let head = text.split(' ').next().unwrap_or("");
    let mut out: Vec<&'static str> = VERBS
        .iter()
        .copied()
        .filter(|v| v.starts_with(head))
        .collect();
    let names: Vec<&'static str> = COMMANDS
        .iter()
        .map(|d| d.name)
        .filter(|n| n.starts_with(head) && !out.contains(n))
        .collect();
    out.extend(names);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_keymap_parses_and_binds_every_command() {
        let km = Keymap::parse(DEFAULT_KEYMAP).unwrap();
        for d in COMMANDS {
            assert!(!km.keys(d.cmd).is_empty(), "{} has no key", d.name);
        }
    }

    #[test]
    fn shipped_keymap_has_no_clash_within_a_scope() {
        let km = Keymap::defaults();
        for scope in [Scope::Global, Scope::List, Scope::Timeline, Scope::Detail] {
            let mut seen: std::collections::HashMap<Key, &str> = std::collections::HashMap::new();
            for d in COMMANDS.iter().filter(|d| d.scope == scope) {
                for k in km.keys(d.cmd) {
                    if let Some(other) = seen.insert(*k, d.name) {
                        panic!("{} bound to {} and {}", k.label(), other, d.name);
                    }
                }
            }
        }
    }

    #[test]
    fn overrides_replace_one_command() {
        let mut o = BTreeMap::new();
        o.insert("timeline.next".to_string(), "n C-n".to_string());
        let km = Keymap::load(&o).unwrap();
        assert_eq!(km.label(Cmd::TimelineNext), "n/C-n");
        assert_eq!(
            km.lookup(Key::parse("n").unwrap(), &[Scope::Timeline]),
            Some(Cmd::TimelineNext)
        );
        o.insert("no.such".into(), "x".into());
        assert_eq!(
            Keymap::load(&o).unwrap_err(),
            KeymapError::UnknownCommand("no.such".into())
        );
    }
}
