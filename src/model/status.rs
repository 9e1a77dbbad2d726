//! Saga and replay status values, spelled as sagaz spells them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `SagaStatus` from sagaz. Values this version does not know are kept as
/// they were written, so a newer runtime's data still reads and round-trips.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SagaStatus {
    /// `pending`: created, no step has run yet.
    Pending,
    /// `executing`: running its steps forward.
    Executing,
    /// `completed`: every step ran; the saga succeeded.
    Completed,
    /// `compensating`: a step failed and completed steps are being undone.
    Compensating,
    /// `failed`: a step failed and the saga could not be rolled back cleanly
    /// (in sagascope's engine: a compensation failed too).
    Failed,
    /// `rolled_back`: a step failed and every completed step was compensated.
    RolledBack,
    /// `partially_committed`: a step failed and some compensations failed too,
    /// leaving part of the work done.
    PartiallyCommitted,
    /// `forward_recovery`: retrying forward after a failure instead of compensating.
    ForwardRecovery,
    /// A status this version does not know, kept exactly as written.
    Other(String),
}

impl SagaStatus {
    /// Every status sagaz defines, in its order.
    pub const KNOWN: [SagaStatus; 8] = [
        SagaStatus::Pending,
        SagaStatus::Executing,
        SagaStatus::Completed,
        SagaStatus::Compensating,
        SagaStatus::Failed,
        SagaStatus::RolledBack,
        SagaStatus::PartiallyCommitted,
        SagaStatus::ForwardRecovery,
    ];

    /// The status as sagaz spells it (`"rolled_back"`, ...); [`Other`](Self::Other)
    /// returns its text unchanged.
    pub fn as_str(&self) -> &str {
        match self {
            SagaStatus::Pending => "pending",
            SagaStatus::Executing => "executing",
            SagaStatus::Completed => "completed",
            SagaStatus::Compensating => "compensating",
            SagaStatus::Failed => "failed",
            SagaStatus::RolledBack => "rolled_back",
            SagaStatus::PartiallyCommitted => "partially_committed",
            SagaStatus::ForwardRecovery => "forward_recovery",
            SagaStatus::Other(s) => s,
        }
    }

    /// Reads a status; unknown text becomes [`SagaStatus::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => SagaStatus::Pending,
            "executing" => SagaStatus::Executing,
            "completed" => SagaStatus::Completed,
            "compensating" => SagaStatus::Compensating,
            "failed" => SagaStatus::Failed,
            "rolled_back" => SagaStatus::RolledBack,
            "partially_committed" => SagaStatus::PartiallyCommitted,
            "forward_recovery" => SagaStatus::ForwardRecovery,
            other => SagaStatus::Other(other.to_string()),
        }
    }

    /// A status a person typed in a filter: one sagaz defines, or an error
    /// listing them (a typo would otherwise match nothing, silently).
    pub fn parse_known(s: &str) -> Result<Self, String> {
        match Self::parse(s.trim()) {
            SagaStatus::Other(o) => Err(format!(
                "unknown status {o:?}; known: {}",
                Self::KNOWN
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            known => Ok(known),
        }
    }

    /// A failure outcome: failed, rolled back or partially committed.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            SagaStatus::Failed | SagaStatus::RolledBack | SagaStatus::PartiallyCommitted
        )
    }

    /// The saga is done, one way or the other.
    pub fn is_terminal(&self) -> bool {
        matches!(self, SagaStatus::Completed) || self.is_failure()
    }
}

impl fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SagaStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SagaStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SagaStatus::parse(&String::deserialize(d)?))
    }
}

/// `ReplayStatus` from sagaz.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReplayStatus {
    /// `pending`: recorded, not started.
    Pending,
    /// `running`: the replay is executing steps.
    Running,
    /// `success`: the replay ran to the end (a dry run that found no problem
    /// is logged so too).
    Success,
    /// `failed`: a step failed; see [`ReplayLog::error_message`](crate::model::ReplayLog::error_message).
    Failed,
    /// `cancelled`: stopped before the end; sagascope closes an abandoned replay
    /// with it (see [`crate::replay`]).
    Cancelled,
    /// A status this version does not know, kept exactly as written.
    Other(String),
}

impl ReplayStatus {
    /// The status as sagaz spells it (`"success"`, ...); [`Other`](Self::Other)
    /// returns its text unchanged.
    pub fn as_str(&self) -> &str {
        match self {
            ReplayStatus::Pending => "pending",
            ReplayStatus::Running => "running",
            ReplayStatus::Success => "success",
            ReplayStatus::Failed => "failed",
            ReplayStatus::Cancelled => "cancelled",
            ReplayStatus::Other(s) => s,
        }
    }

    /// Reads a status; unknown text becomes [`ReplayStatus::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => ReplayStatus::Pending,
            "running" => ReplayStatus::Running,
            "success" => ReplayStatus::Success,
            "failed" => ReplayStatus::Failed,
            "cancelled" => ReplayStatus::Cancelled,
            other => ReplayStatus::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ReplayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReplayStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReplayStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ReplayStatus::parse(&String::deserialize(d)?))
    }
}
