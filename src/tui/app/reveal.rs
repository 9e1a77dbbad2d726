//! Revealing the open saga's masked values (`V`): a reason is asked for,
//! the audit event (who, which saga and paths, why) is written in the
//! background, and only then is the saga read again unmasked. It stays
//! revealed until it is closed or `V` is pressed again; the header and the
//! detail pane's title say so the whole time.

use super::{App, InputKind, Tab};
use crate::model::short_id;
use crate::tui::keymap::Cmd;
use crate::tui::messages::{JobResult, Request, RevealGrant};

impl App {
    /// Whether `saga_id` is the saga revealed.
    pub fn is_revealed(&self, saga_id: &str) -> bool {
        self.revealed.as_ref().is_some_and(|r| r.saga_id == saga_id)
    }

    /// The reveal in force for the open saga, if any.
    pub fn open_reveal(&self) -> Option<&RevealGrant> {
        let t = self.timeline.as_ref()?;
        self.revealed
            .as_ref()
            .filter(|r| r.saga_id == t.saga.saga_id)
    }

    /// `V`: asks for the reason to reveal the open saga, or masks it again.
    pub(super) fn toggle_reveal(&mut self) {
        let Some(t) = &self.timeline else {
            self.error("open a saga first: a reveal shows one saga's masked values");
            return;
        };
        let (saga_id, saga_name) = (t.saga.saga_id.clone(), t.saga.saga_name.clone());
        if self.is_revealed(&saga_id) {
            self.revealed = None;
            self.info(format!("saga {} is masked again", short_id(&saga_id)));
            self.follow_cursor();
            return;
        }
        if self.cfg.sensitive.is_none() {
            self.error("nothing is masked here (no [compliance] sensitive fields are configured): there is nothing to reveal");
            return;
        }
        if self.reveal_asked.is_some() {
            self.error("a reveal is already being recorded; wait for it");
            return;
        }
        self.reveal_asked = Some(RevealGrant {
            saga_id: saga_id.clone(),
            saga_name,
            reason: String::new(),
        });
        self.info(format!(
            "reveal saga {}: the reason is recorded in the audit log with your name; Enter reveals, Esc cancels",
            short_id(&saga_id)
        ));
        self.open_input(InputKind::RevealReason, "");
    }

    /// Esc on the reason prompt.
    pub(super) fn cancel_reveal(&mut self) {
        self.reveal_asked = None;
        self.info("reveal cancelled: nothing was revealed and nothing was written");
    }

    /// Enter on the reason prompt: the audit event is written, then the
    /// saga is shown unmasked.
    pub(super) fn reveal_with_reason(&mut self, text: &str) {
        let Some(mut grant) = self.reveal_asked.take() else {
            return;
        };
        let reason = text.trim();
        if reason.is_empty() {
            self.error("a reveal needs a reason (it goes to the audit log): nothing was revealed");
            return;
        }
        grant.reason = reason.to_string();
        self.info(format!(
            "revealing saga {}: writing the audit event…",
            short_id(&grant.saga_id)
        ));
        self.reveal_asked = Some(grant.clone());
        self.ask(|id| Request::Reveal { id, grant });
    }

    /// The audit event is written (or not): only then is the saga revealed.
    pub(super) fn on_revealed(&mut self, grant: RevealGrant, result: JobResult<Vec<String>>) {
        self.reveal_asked = None;
        match result {
            Err(e) => self.error(format!(
                "not revealed: {}; the values stay masked",
                e.message
            )),
            // The user moved on to another saga meanwhile: the event is
            // written, but nothing is shown unmasked unasked.
            Ok(_)
                if self.timeline.as_ref().map(|t| t.saga.saga_id.as_str())
                    != Some(grant.saga_id.as_str()) =>
            {
                self.info(format!(
                    "saga {} was closed before its reveal was recorded: it stays masked",
                    short_id(&grant.saga_id)
                ));
            }
            Ok(paths) => {
                let key = self.cfg.keymap.label(Cmd::Reveal);
                self.info(format!(
                    "saga {} revealed ({} sensitive path(s)); recorded in the audit log · {key} masks it again",
                    short_id(&grant.saga_id),
                    paths.len()
                ));
                self.revealed = Some(grant);
                if self.detail.tab == Tab::Replays {
                    self.set_tab(Tab::Context);
                }
                self.follow_cursor();
            }
        }
    }

    /// The open saga changed: a reveal of another saga ends.
    pub(super) fn end_reveal_unless(&mut self, saga_id: Option<&str>) {
        if self
            .revealed
            .as_ref()
            .is_some_and(|r| Some(r.saga_id.as_str()) != saga_id)
        {
            self.revealed = None;
        }
    }
}
