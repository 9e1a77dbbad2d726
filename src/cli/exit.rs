//! Exit codes: stable, documented in the README and `--help`.

use crate::config::{ConfigError, ReadOnlyRefusal};
use crate::replay::{FindSagaError, TimeTravelError};
use crate::store::StoreError;

/// The process exit codes. Scripts may rely on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// The command ran but found problems: a dry run or replay that failed or
    /// would fail, corrupt entries in a strict command, a failed batch item.
    Problems = 1,
    /// Usage or input error: bad flags, invalid JSON (an override, a
    /// context) or time, invalid config.
    Usage = 2,
    /// The store could not be reached or failed.
    Unreachable = 3,
    /// Permission denied: read-only mode, or the store refused.
    Denied = 4,
    /// The saga, snapshot or replay asked for does not exist.
    NotFound = 5,
    /// Conflict: the saga is being replayed by someone else (lock held), an
    /// earlier replay of it was abandoned, the id is taken (`run
    /// --saga-id`), or an import would overwrite different data.
    Conflict = 6,
    /// The saga's definition has no step of that name (`--from-step`).
    UnknownStep = 7,
    /// No definition for the saga's name: nothing to execute it with.
    NoDefinition = 8,
    /// The saga completed: a replay is refused without `--allow-completed`.
    Completed = 9,
    /// The saga was already replayed successfully: refused without `--again`.
    AlreadyReplayed = 10,
    /// The saga may still be running: refused without `--force`.
    InProgress = 11,
    /// The replay would run again a step that must not run twice
    /// (`repeatable = false`, or no longer in the definition).
    NotRepeatable = 12,
    /// `replay apply`: the saga changed since the plan was written.
    StalePlan = 13,
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  ran, but found problems (a replay or dry run that failed or would fail,
     failed batch items, entries that could not be read where all were needed)
  2  usage or input error (flags, invalid JSON override or context, times)
  3  store unreachable or failing (also: a reading command given a
     sqlite:// file or file:// folder that does not exist)
  4  permission denied (read-only mode refuses writing commands and dry
     runs before anything runs, or the store refused)
  5  saga, snapshot or replay not found
  6  conflict: the saga is being replayed elsewhere (lock held) or has an
     abandoned replay (`replay recover`); `run --saga-id` names an existing
     saga; `import` would overwrite different data (--on-conflict)
  7  unknown step: the saga's definition has no step of that name
  8  no definition for the saga's name (nothing to execute it with)
  9  refused: the saga completed (replay anyway with --allow-completed)
 10  refused: the saga was already replayed successfully (--again)
 11  refused: the saga may still be running: its newest snapshot is not
     terminal and younger than the lock TTL (--force)
 12  refused: the replay would run again a step marked repeatable = false
     (or one no longer in the definition); see --compensated skip
 13  replay apply: the saga changed since the plan was written (a new
     snapshot or replay); make a new plan";

/// An error on its way to the user: one line, an exit code, maybe a hint.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let exit = match &e {
            StoreError::InvalidUrl { .. }
            | StoreError::BackendNotBuilt { .. }
            | StoreError::Config { .. } => Exit::Usage,
            StoreError::Unreachable { .. } | StoreError::Backend { .. } | StoreError::Io { .. } => {
                Exit::Unreachable
            }
            StoreError::PermissionDenied { .. } | StoreError::Protection { .. } => Exit::Denied,
            StoreError::Corrupt { .. } => Exit::Problems,
            StoreError::Unstorable { .. } | StoreError::Unsupported { .. } => Exit::Usage,
        };
        let hint = match &e {
            StoreError::Unreachable { .. } => Some(
                "check the URL (`sagascope config show`) and that the server is up".to_string(),
            ),
            _ => None,
        };
        CliError {
            exit,
            message: e.to_string(),
            hint,
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::usage(e.to_string())
    }
}

impl From<ReadOnlyRefusal> for CliError {
    fn from(e: ReadOnlyRefusal) -> Self {
        CliError::new(Exit::Denied, e.to_string())
    }
}

impl From<FindSagaError> for CliError {
    fn from(e: FindSagaError) -> Self {
        match e {
            FindSagaError::Store(s) => s.into(),
            FindSagaError::NotFound(_) => CliError::new(Exit::NotFound, e.to_string()),
            FindSagaError::Ambiguous { .. } => CliError::usage(e.to_string()),
        }
    }
}

impl From<TimeTravelError> for CliError {
    fn from(e: TimeTravelError) -> Self {
        match e {
            TimeTravelError::Store(s) => s.into(),
            other => CliError::new(Exit::NotFound, other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::usage(e.to_string())
    }
}
