//! The replay guards as keys: which key overrides which guard, and how
//! the overridden ones are shown (as the CLI's flags).

use crate::replay::{Allow, PlanErrorKind};
use crate::tui::keymap::Cmd;

/// The guard a key overrides.
pub(super) fn guard_of(cmd: Cmd) -> Option<PlanErrorKind> {
    match cmd {
        Cmd::GuardAllowCompleted => Some(PlanErrorKind::Completed),
        Cmd::GuardAgain => Some(PlanErrorKind::AlreadyReplayed),
        Cmd::GuardForce => Some(PlanErrorKind::InProgress),
        _ => None,
    }
}

/// The key that overrides a guard.
pub(super) fn guard_cmd(kind: PlanErrorKind) -> Option<Cmd> {
    match kind {
        PlanErrorKind::Completed => Some(Cmd::GuardAllowCompleted),
        PlanErrorKind::AlreadyReplayed => Some(Cmd::GuardAgain),
        PlanErrorKind::InProgress => Some(Cmd::GuardForce),
        _ => None,
    }
}

pub(super) fn allowed(allow: &Allow, kind: PlanErrorKind) -> bool {
    match kind {
        PlanErrorKind::Completed => allow.completed,
        PlanErrorKind::AlreadyReplayed => allow.again,
        PlanErrorKind::InProgress => allow.in_progress,
        _ => false,
    }
}

pub(super) fn toggle(allow: &mut Allow, kind: PlanErrorKind) -> bool {
    let flag = match kind {
        PlanErrorKind::Completed => &mut allow.completed,
        PlanErrorKind::AlreadyReplayed => &mut allow.again,
        PlanErrorKind::InProgress => &mut allow.in_progress,
        _ => return false,
    };
    *flag = !*flag;
    *flag
}

pub(super) const GUARDS: [PlanErrorKind; 3] = [
    PlanErrorKind::Completed,
    PlanErrorKind::AlreadyReplayed,
    PlanErrorKind::InProgress,
];

/// The guards overridden, as their flags (`--again --force`); empty for
/// none.
pub fn overridden_flags(allow: &Allow) -> String {
    GUARDS
        .iter()
        .filter(|k| allowed(allow, **k))
        .filter_map(|k| k.override_flag())
        .collect::<Vec<_>>()
        .join(" ")
}
