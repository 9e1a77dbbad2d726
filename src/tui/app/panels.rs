//! Panel lines: a dry run's plan (with the keys that override the guards
//! refusing it) and a replay's engine events.

use super::guards::guard_cmd;
use super::{Panel, Tone};
use crate::model::short_id;
use crate::tui::keymap::{Cmd, Keymap};

/// Cuts a long line into lines of at most `w` characters, so what must be
/// seen in full (an override) is.
pub(super) fn wrap(text: &str, w: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(w.max(1)).map(|c| c.iter().collect()).collect()
}

/// The dry-run plan as panel lines, with the default keys.
pub fn plan_panel(plan: &crate::replay::ReplayPlan) -> Panel {
    plan_panel_with_keys(plan, &Keymap::defaults())
}

/// The dry-run plan as panel lines: a guard that refuses it names its
/// flag and the key that overrides it.
pub fn plan_panel_with_keys(plan: &crate::replay::ReplayPlan, km: &Keymap) -> Panel {
    let mut lines = Vec::new();
    let guarded = !plan.is_ok() && plan.errors.iter().all(|e| e.kind.is_guard());
    let head = if plan.is_ok() {
        (Tone::Ok, "plan OK: nothing has run".to_string())
    } else if guarded {
        (
            Tone::Bad,
            "plan refused by a guard: a replay would not start unless you override it".to_string(),
        )
    } else {
        (
            Tone::Bad,
            "plan has errors: a replay would not start".to_string(),
        )
    };
    lines.push(head);
    lines.push((
        Tone::Text,
        format!(
            "merge: {} · override keys: {}",
            plan.merge.as_str(),
            plan.context_override.len()
        ),
    ));
    if let Some(cp) = &plan.checkpoint {
        lines.push((Tone::Dim, format!("checkpoint: {}", cp.describe())));
    }
    lines.push((Tone::Text, String::new()));
    lines.push((Tone::Text, "steps:".into()));
    if plan.steps.is_empty() {
        for s in &plan.steps_skipped {
            lines.push((Tone::Dim, format!("  skip    {s}")));
        }
        for s in &plan.steps_to_run {
            lines.push((Tone::Run, format!("  run     {s}")));
        }
    }
    for s in &plan.steps {
        let why = if s.why.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.why)
        };
        let tone = match s.action {
            crate::replay::StepAction::Skip => Tone::Dim,
            crate::replay::StepAction::SkipCompensated => Tone::Warn,
            crate::replay::StepAction::Rerun | crate::replay::StepAction::Run => Tone::Run,
        };
        lines.push((tone, format!("  {:<8}{}{why}", s.action.label(), s.step)));
    }
    if !plan.compensations.is_empty() {
        lines.push((Tone::Text, "compensations that could fire:".into()));
        for s in &plan.compensations {
            lines.push((Tone::Warn, format!("  undo    {s}")));
        }
    }
    lines.push((Tone::Text, "context diff:".into()));
    if plan.diff.is_empty() {
        lines.push((Tone::Dim, "  (no change)".into()));
    }
    for c in &plan.diff {
        let text = match (&c.old, &c.new) {
            _ if crate::tui::masking::is_masked_change(c) => {
                format!("  ~ {}: {}", c.path, crate::tui::masking::CHANGED_MASKED)
            }
            (Some(o), Some(n)) => format!("  ~ {}: {o} → {n}", c.path),
            (None, Some(n)) => format!("  + {}: {n}", c.path),
            (Some(o), None) => format!("  - {}: {o}", c.path),
            (None, None) => format!("    {}", c.path),
        };
        lines.push((Tone::Text, text));
    }
    for w in &plan.warnings {
        lines.push((Tone::Warn, format!("warning: {w}")));
    }
    for e in &plan.errors {
        lines.push((Tone::Bad, format!("error: {}", e.message)));
        if let (Some(cmd), Some(flag)) = (guard_cmd(e.kind), e.kind.override_flag()) {
            lines.push((
                Tone::Warn,
                format!(
                    "  {} overrides this guard ({flag}) and plans again",
                    km.label(cmd)
                ),
            ));
        }
    }
    let replay_offer = plan.is_ok();
    lines.push((
        Tone::Dim,
        if replay_offer {
            format!("Esc closes · {} replays for real", km.label(Cmd::Replay))
        } else {
            "Esc closes".to_string()
        },
    ));
    Panel {
        title: format!(
            " Dry run · {} from {} ",
            short_id(&plan.original_saga_id),
            plan.from_step
        ),
        lines,
        running: false,
        new_saga: None,
        scroll: 0,
        replay_offer,
    }
}

/// One engine event as a progress line.
pub fn event_line(e: &crate::engine::Event) -> (Tone, String) {
    use crate::engine::Event;
    match e {
        Event::StepSkipped { step } => (Tone::Dim, format!("  skipped      {step}")),
        Event::StepStarted { step, attempt } => (
            Tone::Run,
            format!("  running      {step} (attempt {attempt})"),
        ),
        Event::StepCompleted { step } => (Tone::Ok, format!("  ok           {step}")),
        Event::StepFailed {
            step,
            attempt,
            error,
        } => (
            Tone::Bad,
            format!("  failed       {step} (attempt {attempt}): {error}"),
        ),
        Event::Compensating { step } => (Tone::Warn, format!("  compensating {step}")),
        Event::Compensated { step } => (Tone::Warn, format!("  compensated  {step}")),
        Event::CompensationFailed { step, error } => (
            Tone::Bad,
            format!("  compensation of {step} failed: {error}"),
        ),
        Event::SnapshotFailed { step, error } => (
            Tone::Warn,
            format!("  snapshot after {step} not saved: {error}"),
        ),
        Event::Progress { line } => (Tone::Text, format!("  │ {line}")),
    }
}
