//! Retention per saga name: `retention_until` set at write time.

use std::collections::BTreeMap;

use super::ComplianceError;
use crate::model::Snapshot;

/// How long snapshots of each saga name are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionPolicy {
    // Filled in by the retention work.
    rules: BTreeMap<String, String>,
}

impl RetentionPolicy {
    /// Parses `[compliance.retention]`.
    pub fn from_config(table: &BTreeMap<String, String>) -> Result<Self, ComplianceError> {
        Ok(RetentionPolicy {
            rules: table.clone(),
        })
    }

    /// No rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Sets `s.retention_until` from the rule for its saga name.
    pub fn apply(&self, _s: &mut Snapshot) {}
}
