//! The saga engine: saga definitions (a Rust API and TOML files whose steps
//! are external commands), execution with snapshot capture as sagaz names
//! its strategies, retries, timeouts and compensation in reverse order.
//!
//! The engine writes snapshots through [`crate::store::SnapshotStore`] only,
//! so it runs unchanged against every backend.

pub mod command;
pub mod definition;
pub mod demo;
pub mod execute;
pub mod file;
pub mod registry;
mod wait;

pub use command::{CommandAction, CommandSpec};
pub use definition::{
    action, Delegate, RetryPolicy, SagaDefinition, SnapshotStrategies, SnapshotStrategy, Step,
    StepAction, StepCall, StepError,
};
pub use execute::{Engine, Event, RunOutcome, RunRequest};
pub use file::{load_definition_file, DefinitionError};
pub use registry::Definitions;

/// A saga's context: the JSON object steps read and extend.
pub type Context = serde_json::Map<String, serde_json::Value>;
