//! The saga filter flags `sagas list`, `batch` and `export` share: one
//! declaration, flattened into each command, parsed into the library's
//! [`SagaFilter`] (the TUI's filter line parses into the same type).

use clap::Args;

use crate::model::SagaStatus;
use crate::store::SagaFilter;

use super::{parse_time, CliError};

/// Which sagas: by the newest snapshot's status, step and time, by name and
/// by id prefix. Every flag narrows the selection; none selects every saga.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Which sagas")]
pub struct FilterArgs {
    /// Status of the saga's newest snapshot (repeat or comma-separate for any of).
    #[arg(long, value_delimiter = ',', value_name = "STATUS")]
    pub status: Vec<String>,
    /// Exact saga name.
    #[arg(long)]
    pub name: Option<String>,
    /// Step of the newest snapshot (where the saga stopped).
    #[arg(long)]
    pub step: Option<String>,
    /// Newest activity at or after this time.
    #[arg(long, allow_hyphen_values = true, value_name = "TIME")]
    pub since: Option<String>,
    /// Newest activity at or before this time.
    #[arg(long, allow_hyphen_values = true, value_name = "TIME")]
    pub until: Option<String>,
    /// Saga id starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub id_prefix: Option<String>,
}

impl FilterArgs {
    /// Whether any flag was given.
    pub fn is_set(&self) -> bool {
        !self.status.is_empty()
            || self.name.is_some()
            || self.step.is_some()
            || self.since.is_some()
            || self.until.is_some()
            || self.id_prefix.is_some()
    }

    /// The filter (statuses any-of; times absolute or relative to now).
    pub fn to_filter(&self) -> Result<SagaFilter, CliError> {
        Ok(SagaFilter {
            statuses: self
                .status
                .iter()
                .map(|s| {
                    SagaStatus::parse_known(s)
                        .map_err(|e| CliError::usage(format!("--status: {e}")))
                })
                .collect::<Result<_, _>>()?,
            name: self.name.clone(),
            name_contains: None,
            latest_step: self.step.clone(),
            since: self
                .since
                .as_deref()
                .map(|v| parse_time("--since", v))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|v| parse_time("--until", v))
                .transpose()?,
            id_prefix: self.id_prefix.clone(),
        })
    }
}
