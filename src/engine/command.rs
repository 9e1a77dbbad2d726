//! External commands as step actions and delegates: the context (or a
//! request) as JSON on stdin, a JSON object on stdout, non-zero exit or
//! timeout = failure with stderr kept as the error.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::definition::{StepAction, StepCall, StepError};
use super::Context;

/// stderr kept in an error message, at most (the tail, where the reason
/// usually is).
const MAX_ERROR_CHARS: usize = 2000;

/// How to start a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run through `sh -c`, so pipes and quoting work as typed.
    Shell(String),
    /// Program and arguments, no shell.
    Argv(Vec<String>),
}

/// A command and the folder it runs in (the definition file's folder, so
/// relative script paths work from anywhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// What to start: a shell line or a program with its arguments.
    pub line: CommandLine,
    /// The folder the command runs in; `None` runs it in the current folder.
    /// Definition files set it to their own folder.
    pub cwd: Option<PathBuf>,
    /// Environment variables set for the command, on top of the inherited ones
    /// (and of the `SAGASCOPE_*` variables the engine adds).
    pub env: Vec<(String, String)>,
}

impl CommandSpec {
    /// A command run through `sh -c`, in the current folder, with no extra
    /// environment.
    pub fn shell(s: impl Into<String>) -> Self {
        CommandSpec {
            line: CommandLine::Shell(s.into()),
            cwd: None,
            env: Vec::new(),
        }
    }

    /// The command as a person would type it.
    pub fn display(&self) -> String {
        match &self.line {
            CommandLine::Shell(s) => s.clone(),
            CommandLine::Argv(a) => a.join(" "),
        }
    }

    fn command(&self) -> Result<tokio::process::Command, StepError> {
        let mut cmd = match &self.line {
            CommandLine::Shell(s) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c").arg(s);
                c
            }
            CommandLine::Argv(a) => {
                let (prog, args) = a
                    .split_first()
                    .ok_or_else(|| StepError::new("empty command"))?;
                let mut c = tokio::process::Command::new(prog);
                c.args(args);
                c
            }
        };
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A timed-out or abandoned step must not outlive its wait.
        cmd.kill_on_drop(true);
        Ok(cmd)
    }

    /// Runs the command with `input` on stdin and parses stdout as a JSON
    /// object (empty stdout = no keys). `on_line` sees each stdout line as it
    /// arrives (delegates print progress). With `last_line_only` (delegates)
    /// only the last non-empty line is parsed, and only if it is a JSON
    /// object: progress text before it, or instead of it, is fine.
    pub async fn run_json(
        &self,
        input: &Value,
        env: &[(&str, &str)],
        timeout: Option<Duration>,
        last_line_only: bool,
        on_line: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Context, StepError> {
        let mut cmd = self.command()?;
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| StepError::new(format!("cannot start `{}`: {e}", self.display())))?;
        let payload = serde_json::to_vec(input)
            .map_err(|e| StepError::new(format!("cannot encode input: {e}")))?;
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let work = async {
            // Writing and reading at once: a command that prints before it has
            // read all of its input must not deadlock.
            let write = async {
                if let Some(mut s) = stdin.take() {
                    // A command that exits without reading is its own business.
                    let _ = s.write_all(&payload).await;
                    let _ = s.shutdown().await;
                }
            };
            let read_out = async {
                let mut lines = Vec::new();
                if let Some(out) = stdout.take() {
                    let mut r = BufReader::new(out).lines();
                    while let Ok(Some(l)) = r.next_line().await {
                        on_line(&l);
                        lines.push(l);
                    }
                }
                lines
            };
            let read_err = async {
                let mut s = String::new();
                if let Some(mut e) = stderr.take() {
                    let _ = e.read_to_string(&mut s).await;
                }
                s
            };
            let ((), lines, err) = tokio::join!(write, read_out, read_err);
            let status = child.wait().await;
            (status, lines, err)
        };
        let (status, lines, err) = match timeout {
            Some(t) => match tokio::time::timeout(t, work).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(StepError {
                        message: format!(
                            "timed out after {}s: `{}`",
                            t.as_secs_f64(),
                            self.display()
                        ),
                        timed_out: true,
                    })
                }
            },
            None => work.await,
        };
        let status =
            status.map_err(|e| StepError::new(format!("waiting for `{}`: {e}", self.display())))?;
        if !status.success() {
            let tail = tail(err.trim(), MAX_ERROR_CHARS);
            let code = status
                .code()
                .map(|c| format!("exit code {c}"))
                .unwrap_or_else(|| "killed by a signal".into());
            return Err(StepError::new(if tail.is_empty() {
                format!("`{}` failed ({code})", self.display())
            } else {
                tail.to_string()
            }));
        }
        if last_line_only {
            let last = lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .cloned()
                .unwrap_or_default();
            return Ok(parse_object(&last).unwrap_or_default());
        }
        let text = lines.join("\n");
        parse_object(&text).map_err(|why| StepError::new(format!("`{}` {why}", self.display())))
    }
}

fn tail(s: &str, max: usize) -> &str {
    match s.char_indices().rev().nth(max) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

fn parse_object(text: &str) -> Result<Context, String> {
    if text.trim().is_empty() {
        return Ok(Context::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(format!(
            "printed {} on stdout; a step must print a JSON object (or nothing)",
            crate::model::fields_type_name(&other)
        )),
        Err(e) => Err(format!(
            "printed invalid JSON on stdout ({e}); a step must print a JSON object (or nothing)"
        )),
    }
}

/// A step action (or compensation) run as an external command.
#[derive(Debug, Clone)]
pub struct CommandAction {
    /// The command to run. It gets the context as JSON on stdin and
    /// `SAGASCOPE_SAGA_ID`, `SAGASCOPE_SAGA_NAME`, `SAGASCOPE_STEP` and
    /// `SAGASCOPE_COMPENSATING` (`1` or `0`) in its environment; it prints the keys
    /// to merge as a JSON object (or nothing) on stdout.
    pub spec: CommandSpec,
}

#[async_trait]
impl StepAction for CommandAction {
    async fn run(&self, call: StepCall<'_>) -> Result<Context, StepError> {
        let input = Value::Object(call.context.clone());
        let env = [
            ("SAGASCOPE_SAGA_ID", call.saga_id),
            ("SAGASCOPE_SAGA_NAME", call.saga_name),
            ("SAGASCOPE_STEP", call.step),
            (
                "SAGASCOPE_COMPENSATING",
                if call.compensating { "1" } else { "0" },
            ),
        ];
        self.spec.run_json(&input, &env, None, false, &|_| {}).await
    }

    fn describe(&self) -> String {
        self.spec.display()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn run(cmd: &str, timeout: Option<Duration>) -> Result<Context, StepError> {
        CommandSpec::shell(cmd)
            .run_json(&json!({"a": 1}), &[], timeout, false, &|_| {})
            .await
    }

    #[tokio::test]
    async fn stdout_object_is_returned_and_stdin_is_the_input() {
        let out = run(r#"read x; echo "{\"got\": $x}""#, None).await.unwrap();
        assert_eq!(Value::Object(out), json!({"got": {"a": 1}}));
    }

    #[tokio::test]
    async fn non_zero_exit_keeps_stderr_as_the_error() {
        let e = run("echo 'card declined' >&2; exit 3", None)
            .await
            .unwrap_err();
        assert_eq!(e.message, "card declined");
    }

    #[tokio::test]
    async fn timeout_is_a_failure() {
        let e = run("sleep 5", Some(Duration::from_millis(100)))
            .await
            .unwrap_err();
        assert!(e.timed_out, "{e}");
    }

    #[tokio::test]
    async fn non_object_stdout_is_an_error() {
        let e = run("echo '[1]'", None).await.unwrap_err();
        assert!(e.message.contains("JSON object"), "{e}");
        assert!(run("true", None).await.unwrap().is_empty());
    }
}
