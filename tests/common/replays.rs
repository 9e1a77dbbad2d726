//! A replay log entry for tests that write one and check what lands where.
#![allow(dead_code)]

use sagascope::model::{ReplayLog, ReplayStatus};

use crate::common::t0;

/// A successful replay of saga `original` at checkpoint `charge_payment`,
/// `at_us` microseconds after [`t0`], that produced a fresh saga.
pub fn replay(original: &str, at_us: i64) -> ReplayLog {
    ReplayLog {
        replay_id: uuid::Uuid::new_v4().to_string(),
        original_saga_id: original.to_string(),
        new_saga_id: uuid::Uuid::new_v4().to_string(),
        checkpoint_step: "charge_payment".into(),
        replay_status: ReplayStatus::Success,
        initiated_by: "alice".into(),
        context_override: None,
        error_message: None,
        created_at: t0().plus_micros(at_us),
        completed_at: Some(t0().plus_micros(at_us + 10)),
        extra: Default::default(),
    }
}
