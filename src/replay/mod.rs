//! Reading and changing a saga's history: time travel, context diffs and
//! resolving what a person means by "that snapshot".

pub mod diff;
pub mod time_travel;

pub use diff::{structural_diff, unified_diff, ChangeKind, PathChange};
pub use time_travel::{resolve_snapshot, state_at, state_at_step, changes, value_at, SnapshotRef, TimeTravelError};
