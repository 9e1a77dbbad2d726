//! Saga definitions in TOML files. One saga per file:
//!
//! ```toml
//! name = "OrderSaga"
//! snapshots = ["before_each_step"]          # sagaz strategy names, combinable
//!
//! [[steps]]
//! name = "reserve_inventory"
//! run = "python3 order.py reserve"          # sh -c, in this file's folder
//! compensate = ["python3", "order.py", "release"]   # or argv, no shell
//! timeout_secs = 10
//! attempts = 3                              # in all, default 1
//! backoff_ms = 200
//! repeatable = true                         # false: a replay must never run it again
//!
//! [delegate]                                # instead of steps, or beside them
//! run = "python3 replay_with_sagaz.py"
//! timeout_secs = 600
//! ```
//!
//! Commands run in the folder of the file that names them, so a definition
//! and its scripts can live anywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::command::{CommandAction, CommandLine, CommandSpec};
use super::definition::{Delegate, RetryPolicy, SagaDefinition, SnapshotStrategies, Step};

/// Why definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// A definition file or folder could not be read.
    #[error("cannot read saga definition {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The underlying I/O error (not found, permission denied, ...).
        #[source]
        source: std::io::Error,
    },
    /// A definition is not valid TOML or breaks a rule (no steps nor
    /// delegate, a step named twice, `attempts = 0`, an unknown strategy...).
    #[error("invalid saga definition {path}: {message}")]
    Invalid {
        /// The definition file.
        path: PathBuf,
        /// What is wrong, naming the key or step at fault.
        message: String,
    },
    /// Two files define a saga of the same name.
    #[error("saga {name:?} is defined twice: in {first} and in {second}; keep one")]
    Duplicate {
        /// The `name` both files declare.
        name: String,
        /// The file read first, as displayed.
        first: String,
        /// The file that defined it again, as displayed.
        second: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: String,
    run: RawCommand,
    compensate: Option<RawCommand>,
    timeout_secs: Option<f64>,
    attempts: Option<u32>,
    backoff_ms: Option<u64>,
    #[serde(default)]
    snapshot_after: bool,
    #[serde(default = "yes")]
    repeatable: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelegate {
    run: RawCommand,
    timeout_secs: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSaga {
    name: String,
    #[allow(dead_code)]
    description: Option<String>,
    snapshots: Option<Vec<String>>,
    #[serde(default)]
    steps: Vec<RawStep>,
    delegate: Option<RawDelegate>,
}

fn spec(raw: RawCommand, dir: &Path) -> CommandSpec {
    CommandSpec {
        line: match raw {
            RawCommand::Shell(s) => CommandLine::Shell(s),
            RawCommand::Argv(a) => CommandLine::Argv(a),
        },
        cwd: Some(dir.to_path_buf()),
        env: Vec::new(),
    }
}

fn secs(v: Option<f64>, path: &Path, what: &str) -> Result<Option<Duration>, DefinitionError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(DefinitionError::Invalid {
            path: path.to_path_buf(),
            message: format!("{what}: timeout_secs must be a positive number, not {s}"),
        }),
    }
}

/// Parses definition text; `path` names it in errors and its folder is
/// where the commands run.
pub fn parse_definition(text: &str, path: &Path) -> Result<SagaDefinition, DefinitionError> {
    let invalid = |message: String| DefinitionError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let raw: RawSaga = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let dir = path
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if raw.name.trim().is_empty() {
        return Err(invalid("`name` is empty".into()));
    }
    if raw.steps.is_empty() && raw.delegate.is_none() {
        return Err(invalid("a saga needs `[[steps]]` or a `[delegate]`".into()));
    }
    let strategies = match &raw.snapshots {
        None => SnapshotStrategies::default(),
        Some(list) => SnapshotStrategies::parse_list(list).map_err(invalid)?,
    };
    let mut steps = Vec::with_capacity(raw.steps.len());
    for s in raw.steps {
        if steps.iter().any(|x: &Step| x.name == s.name) {
            return Err(invalid(format!("step {:?} appears twice", s.name)));
        }
        let timeout = secs(s.timeout_secs, path, &format!("step {:?}", s.name))?;
        let attempts = s.attempts.unwrap_or(1);
        if attempts == 0 {
            return Err(invalid(format!(
                "step {:?}: attempts must be at least 1",
                s.name
            )));
        }
        steps.push(Step {
            name: s.name,
            action: Arc::new(CommandAction {
                spec: spec(s.run, &dir),
            }),
            compensation: s.compensate.map(|c| {
                Arc::new(CommandAction {
                    spec: spec(c, &dir),
                }) as Arc<dyn super::StepAction>
            }),
            retry: RetryPolicy {
                attempts,
                backoff: Duration::from_millis(s.backoff_ms.unwrap_or(100)),
            },
            timeout,
            snapshot_after: s.snapshot_after,
            repeatable: s.repeatable,
        });
    }
    let delegate = match raw.delegate {
        None => None,
        Some(d) => Some(Delegate {
            timeout: secs(d.timeout_secs, path, "delegate")?,
            command: spec(d.run, &dir),
        }),
    };
    Ok(SagaDefinition {
        name: raw.name,
        steps,
        strategies,
        delegate,
        source: Some(path.to_path_buf()),
    })
}

/// Reads one definition file.
pub fn load_definition_file(path: &Path) -> Result<SagaDefinition, DefinitionError> {
    let text = std::fs::read_to_string(path).map_err(|source| DefinitionError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_definition(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_steps_strategies_and_delegate() {
        let d = parse_definition(
            r#"
            name = "OrderSaga"
            snapshots = ["before_each_step", "on_failure"]
            [[steps]]
            name = "a"
            run = "echo {}"
            compensate = ["true"]
            timeout_secs = 1.5
            attempts = 3
            [delegate]
            run = "python3 replay.py"
            "#,
            Path::new("/tmp/x.toml"),
        )
        .unwrap();
        assert_eq!(d.name, "OrderSaga");
        assert_eq!(d.steps[0].retry.attempts, 3);
        assert_eq!(d.steps[0].timeout, Some(Duration::from_millis(1500)));
        assert!(
            d.strategies.before_each_step
                && d.strategies.on_failure
                && !d.strategies.after_each_step
        );
        assert!(d.delegate.is_some());
    }

    #[test]
    fn rejects_unknown_strategy_and_empty_saga() {
        let e = parse_definition(
            "name = \"x\"\nsnapshots = [\"sometimes\"]\n[[steps]]\nname=\"a\"\nrun=\"true\"",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        let e = parse_definition("name = \"x\"", Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().contains("[[steps]]"), "{e}");
    }
}
