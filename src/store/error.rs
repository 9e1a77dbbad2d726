//! Typed store errors. Each says what went wrong and, where there is one,
//! what to do; none carries a password (URLs are redacted before they get
//! here).

use crate::model::RecordError;

use super::codec::CodecError;

/// Why an entry read from a store could not be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    /// The bytes did not decode: corrupt compression, too large, too deep, not
    /// JSON.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The JSON decoded but is not a valid record (a missing or mistyped field).
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
    /// The store URL cannot be used: unknown scheme, missing part, bad
    /// parameter, or an option the backend refuses.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The URL names a backend whose cargo feature was left out of this build.
    #[error(
        "the {backend} backend is not built into this binary; rebuild with `--features {backend}`"
    )]
    BackendNotBuilt {
        /// The backend, which is also the feature's name: `postgres`,
        /// `redis` or `s3`.
        backend: &'static str,
    },

    /// The store could not be reached at all (connection refused or dropped,
    /// timeout, ...), or a SQLite file or store folder that a read-only
    /// command needs does not exist. [`StoreError::is_unreachable`] tells it
    /// apart.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The store's URL, password redacted.
        url: String,
        /// Why.
        reason: String,
    },

    /// The store refused the operation: bad credentials, missing rights, or a
    /// write to a store opened read-only.
    #[error("permission denied by {url}: {reason}")]
    PermissionDenied {
        /// The store's URL, password redacted.
        url: String,
        /// What was refused, and how to get the access.
        reason: String,
    },

    /// An entry the operation needs cannot be read. Listings report such
    /// entries in their `bad` list instead of failing.
    #[error("corrupt entry {entry}")]
    Corrupt {
        /// Which entry, and what is wrong with it.
        entry: BadEntry,
    },

    /// The store's layout cannot hold this record, e.g. an id with `/` in a
    /// folder store, or a key under the prefix sagaz or sagascope reserve.
    #[error("{what} cannot be stored by the {backend} backend: {reason}")]
    Unstorable {
        /// The backend's name (`redis`, `s3`, `file`, `postgres`, ...).
        backend: &'static str,
        /// The record, e.g. `snapshot "a/b"`.
        what: String,
        /// Why it cannot be stored, and what to use instead.
        reason: String,
    },

    /// The backend cannot do this at all, e.g. gzip compression on Redis.
    #[error("the {backend} backend does not support {operation}")]
    Unsupported {
        /// The backend's name.
        backend: &'static str,
        /// What was asked, with why it is unsupported.
        operation: &'static str,
    },

    /// Any other error the backend's driver reported (a query failed, a
    /// connection dropped mid-operation, ...).
    #[error("{backend} error: {message}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// The driver's message.
        message: String,
    },

    /// Field protection refused a value: a key that does not open it, a
    /// ciphertext moved to another field or saga, a masked value written
    /// back. The message names the key id and the saga and path involved,
    /// never a value.
    #[error("{message}")]
    Protection {
        /// What was refused and what to do.
        message: String,
    },

    /// The configuration around the store cannot be used (a `[compliance]`
    /// pattern, key or rule that does not parse).
    #[error("{message}")]
    Config {
        /// What is wrong and where.
        message: String,
    },

    /// A file or folder of a local store (SQLite, `file://`) could not be read
    /// or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// A [`StoreError::Backend`] from any displayable driver error.
    pub fn backend(backend: &'static str, message: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            backend,
            message: message.to_string(),
        }
    }

    /// A [`StoreError::Corrupt`] naming the entry by its key (and its saga,
    /// when known).
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

/// What every store operation returns.
pub type StoreResult<T> = Result<T, StoreError>;
