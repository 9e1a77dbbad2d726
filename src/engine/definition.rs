//! Saga definitions as a library API: ordered steps, each an async action
//! with an optional compensation, a retry policy and a timeout; the
//! snapshot strategies a saga runs with; or a delegate command that replays
//! the whole saga in its own runtime.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::command::CommandSpec;
use super::Context;

/// Why a step (or compensation) failed. The message is what the user sees:
/// for external commands, their stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// What went wrong, as shown to the user; for external commands, the tail
    /// of their stderr (or why they could not start).
    pub message: String,
    /// The attempt ran out of time (retried like any other failure).
    pub timed_out: bool,
}

impl StepError {
    /// A failure with this message (not a timeout).
    pub fn new(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            timed_out: false,
        }
    }
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::new(s)
    }
}

impl From<&str> for StepError {
    fn from(s: &str) -> Self {
        StepError::new(s)
    }
}

/// What a step's action sees.
#[derive(Debug, Clone, Copy)]
pub struct StepCall<'a> {
    /// The id of the saga being run (for a replay, the new saga's id).
    pub saga_id: &'a str,
    /// The saga's name, as [`SagaDefinition::name`].
    pub saga_name: &'a str,
    /// The name of the step this action belongs to.
    pub step: &'a str,
    /// The saga's context as it is now: the starting context plus the output
    /// of every step completed so far.
    pub context: &'a Context,
    /// True when this is the step's compensation.
    pub compensating: bool,
}

/// One step's action or compensation. Returns the keys to merge into the
/// context (an empty object for none).
#[async_trait]
pub trait StepAction: Send + Sync {
    /// Runs the action once (the engine handles retries and timeouts). Returns
    /// the keys to merge into the context; an `Err` fails this attempt.
    /// A compensation's output is not merged.
    async fn run(&self, call: StepCall<'_>) -> Result<Context, StepError>;

    /// How to name this action in plans and messages.
    fn describe(&self) -> String {
        "(rust)".into()
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Result<Context, StepError>> + Send>>;

struct FnAction(Box<dyn Fn(Context) -> BoxFut + Send + Sync>);

#[async_trait]
impl StepAction for FnAction {
    async fn run(&self, call: StepCall<'_>) -> Result<Context, StepError> {
        (self.0)(call.context.clone()).await
    }
}

/// A step action from an async closure taking the context (a copy) and
/// returning the keys to merge.
pub fn action<F, Fut, E>(f: F) -> Arc<dyn StepAction>
where
    F: Fn(Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Context, E>> + Send + 'static,
    E: Into<StepError> + 'static,
{
    let f = Arc::new(f);
    Arc::new(FnAction(Box::new(move |ctx| {
        let f = f.clone();
        Box::pin(async move { f(ctx).await.map_err(Into::into) })
    })))
}

/// How often a failing step is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each one after.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `n` (2-based: the first retry).
    pub fn delay_before(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(2).min(16);
        self.backoff.saturating_mul(1u32 << doublings)
    }
}

/// One step of a saga.
#[derive(Clone)]
pub struct Step {
    /// The step's name, unique within the saga; snapshots record it as `step_name`
    /// and replays start from a step by it.
    pub name: String,
    /// What the step does.
    pub action: Arc<dyn StepAction>,
    /// What undoes the step when a later step fails; `None` leaves it as it is.
    pub compensation: Option<Arc<dyn StepAction>>,
    /// How often a failing attempt is tried again (compensations use it too).
    pub retry: RetryPolicy,
    /// Per attempt; `None` waits for ever.
    pub timeout: Option<Duration>,
    /// Take a snapshot after this step whatever the strategy (how `manual`
    /// sagas place their checkpoints).
    pub snapshot_after: bool,
    /// Whether a replay may run the step again after its effect was undone
    /// (compensated) or while it is still in force. `false` for steps whose
    /// effect must happen once at most (a payout, an email to a customer):
    /// a replay plan that would run one again is an error, not a silent skip.
    pub repeatable: bool,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("action", &self.action.describe())
            .field(
                "compensation",
                &self.compensation.as_ref().map(|c| c.describe()),
            )
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("repeatable", &self.repeatable)
            .finish()
    }
}

impl Step {
    /// A step that runs `action` once, without compensation, timeout or forced
    /// snapshot.
    pub fn new(name: impl Into<String>, action: Arc<dyn StepAction>) -> Self {
        Step {
            name: name.into(),
            action,
            compensation: None,
            retry: RetryPolicy::default(),
            timeout: None,
            snapshot_after: false,
            repeatable: true,
        }
    }

    /// Marks the step as not to be run again by a replay (see
    /// [`repeatable`](Self::repeatable)).
    pub fn not_repeatable(mut self) -> Self {
        self.repeatable = false;
        self
    }

    /// Sets the compensation run when a later step fails.
    pub fn compensate(mut self, c: Arc<dyn StepAction>) -> Self {
        self.compensation = Some(c);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Limits each attempt to `t`; an attempt that runs longer fails with
    /// [`StepError::timed_out`] set.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
}

/// sagaz's snapshot strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotStrategy {
    /// `before_each_step`: a snapshot (status `executing`) before each step runs.
    BeforeEachStep,
    /// `after_each_step`: a snapshot (status `executing`) after each step completes.
    AfterEachStep,
    /// `on_failure`: in sagaz, a snapshot when the saga fails. This engine
    /// snapshots every outcome under any strategy but `manual` (see
    /// [`SnapshotStrategies::final_snapshot`]), so it adds no other snapshot.
    OnFailure,
    /// `on_completion`: in sagaz, a snapshot when the saga completes. This
    /// engine snapshots every outcome under any strategy but `manual` (see
    /// [`SnapshotStrategies::final_snapshot`]), so it adds no other snapshot.
    OnCompletion,
    /// `manual`: no automatic snapshots; only steps with `snapshot_after` capture.
    Manual,
}

impl SnapshotStrategy {
    /// Every strategy, in the order sagaz lists them.
    pub const ALL: [SnapshotStrategy; 5] = [
        SnapshotStrategy::BeforeEachStep,
        SnapshotStrategy::AfterEachStep,
        SnapshotStrategy::OnFailure,
        SnapshotStrategy::OnCompletion,
        SnapshotStrategy::Manual,
    ];

    /// The strategy as sagaz spells it, e.g. `"before_each_step"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotStrategy::BeforeEachStep => "before_each_step",
            SnapshotStrategy::AfterEachStep => "after_each_step",
            SnapshotStrategy::OnFailure => "on_failure",
            SnapshotStrategy::OnCompletion => "on_completion",
            SnapshotStrategy::Manual => "manual",
        }
    }
}

impl FromStr for SnapshotStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown snapshot strategy {s:?}; expected before_each_step, after_each_step, on_failure, on_completion or manual"
                )
            })
    }
}

/// A combination of strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStrategies {
    /// Snapshot before each step ([`SnapshotStrategy::BeforeEachStep`]).
    pub before_each_step: bool,
    /// Snapshot after each completed step ([`SnapshotStrategy::AfterEachStep`]).
    pub after_each_step: bool,
    /// [`SnapshotStrategy::OnFailure`] is in effect: the outcome is snapshotted
    /// (whatever it is, see [`final_snapshot`](Self::final_snapshot)).
    pub on_failure: bool,
    /// [`SnapshotStrategy::OnCompletion`] is in effect: the outcome is
    /// snapshotted (whatever it is, see [`final_snapshot`](Self::final_snapshot)).
    pub on_completion: bool,
}

impl Default for SnapshotStrategies {
    /// sagaz's default, `before_each_step`.
    fn default() -> Self {
        SnapshotStrategies::of(&[SnapshotStrategy::BeforeEachStep])
    }
}

impl SnapshotStrategies {
    /// The combination of the listed strategies; [`SnapshotStrategy::Manual`]
    /// adds nothing, and an empty list means `manual`.
    pub fn of(list: &[SnapshotStrategy]) -> Self {
        let has = |k| list.contains(&k);
        SnapshotStrategies {
            before_each_step: has(SnapshotStrategy::BeforeEachStep),
            after_each_step: has(SnapshotStrategy::AfterEachStep),
            on_failure: has(SnapshotStrategy::OnFailure),
            on_completion: has(SnapshotStrategy::OnCompletion),
        }
    }

    /// No automatic capture at all (`manual` alone).
    pub fn none() -> Self {
        Self::of(&[])
    }

    /// Parses strategy names as sagaz spells them (case and `-`/`_` are
    /// forgiven). An unknown name is an error that lists the known ones.
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let list = names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<Vec<SnapshotStrategy>, _>>()?;
        Ok(Self::of(&list))
    }

    /// Whether the saga's outcome gets a final snapshot. Unlike sagaz, every
    /// automatic strategy leads to one, failed and compensated sagas
    /// included, so the outcome is visible in the store; only `manual`
    /// alone leaves it out.
    pub fn final_snapshot(&self) -> bool {
        self.before_each_step || self.after_each_step || self.on_failure || self.on_completion
    }

    /// The strategies in effect, as sagaz spells them; `["manual"]` when none is.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.before_each_step {
            v.push("before_each_step");
        }
        if self.after_each_step {
            v.push("after_each_step");
        }
        if self.on_failure {
            v.push("on_failure");
        }
        if self.on_completion {
            v.push("on_completion");
        }
        if v.is_empty() {
            v.push("manual");
        }
        v
    }
}

/// A command that performs a whole replay in the saga's own runtime.
#[derive(Debug, Clone)]
pub struct Delegate {
    /// The command. It gets the replay request as JSON on stdin (checkpoint,
    /// merged context, new saga and replay ids, ...) and `SAGASCOPE_SAGA_ID`,
    /// `SAGASCOPE_SAGA_NAME` and `SAGASCOPE_REPLAY_ID` in its environment; its
    /// stdout lines are progress, the last one may be a JSON object whose
    /// `context` becomes the outcome's. A non-zero exit fails the replay.
    pub command: CommandSpec,
    /// How long the whole replay may take; `None` waits for ever.
    pub timeout: Option<Duration>,
}

/// A saga: its name (as snapshots carry it), its steps in order and how it
/// is snapshotted; or a delegate that replays it.
#[derive(Debug, Clone)]
pub struct SagaDefinition {
    /// The saga's name as snapshots carry it in `saga_name`, e.g. `OrderSaga`;
    /// how stored sagas are matched to this definition.
    pub name: String,
    /// The steps, in execution order (may be empty when a delegate replays it).
    pub steps: Vec<Step>,
    /// When snapshots are taken while it runs.
    pub strategies: SnapshotStrategies,
    /// When set, replays hand the whole saga to this command instead of
    /// running [`steps`](Self::steps).
    pub delegate: Option<Delegate>,
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
}

impl SagaDefinition {
    /// A saga with no steps, sagaz's default strategy (`before_each_step`)
    /// and no delegate.
    pub fn new(name: impl Into<String>) -> Self {
        SagaDefinition {
            name: name.into(),
            steps: Vec::new(),
            strategies: SnapshotStrategies::default(),
            delegate: None,
            source: None,
        }
    }

    /// Appends a step (steps run in the order they are added).
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Sets the snapshot strategies.
    pub fn strategies(mut self, s: SnapshotStrategies) -> Self {
        self.strategies = s;
        self
    }

    /// Position of a step by name.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }

    /// The step names in execution order.
    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }
}
