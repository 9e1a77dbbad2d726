//! Typed store errors. Each says what went wrong and, where there is one,
//! what to do; none carries a password (URLs are redacted before they get
//! here).

use crate::model::RecordError;

use super::codec::CodecError;

/// Why an entry read from a store could not be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A store entry that could not be read, named so a user can find it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadEntry {
    /// Where it lives: a key, object key, file path or row id.
    pub key: String,
    /// The saga it belongs to, when the store knows.
    pub saga_id: Option<String>,
    /// What is wrong with it.
    pub error: String,
}

impl std::fmt::Display for BadEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.error)
    }
}

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error(
        "the {backend} backend is not built into this binary; rebuild with `--features {backend}`"
    )]
    BackendNotBuilt { backend: &'static str },

    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },

    #[error("permission denied by {url}: {reason}")]
    PermissionDenied { url: String, reason: String },

    #[error("corrupt entry {entry}")]
    Corrupt { entry: BadEntry },

    #[error("{what} cannot be stored by the {backend} backend: {reason}")]
    Unstorable {
        backend: &'static str,
        what: String,
        reason: String,
    },

    #[error("the {backend} backend does not support {operation}")]
    Unsupported {
        backend: &'static str,
        operation: &'static str,
    },

    #[error("{backend} error: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },

    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn backend(backend: &'static str, message: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            backend,
            message: message.to_string(),
        }
    }

    pub fn corrupt(
        key: impl Into<String>,
        saga_id: Option<String>,
        error: impl std::fmt::Display,
    ) -> Self {
        StoreError::Corrupt {
            entry: BadEntry {
                key: key.into(),
                saga_id,
                error: error.to_string(),
            },
        }
    }

    /// The store could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }

    /// The store could not be reached or failed (an outage rather than bad
    /// input or a refusal): exit code 3, and the TUI's reconnect banner
    /// when opening the store fails so.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            StoreError::Unreachable { .. } | StoreError::Backend { .. } | StoreError::Io { .. }
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
