//! Data protection between the stores and everything above them: which
//! context fields are sensitive, field encryption at rest, masking in every
//! view, erasure, retention per saga name, anonymised bundles, and the audit
//! events these write.
//!
//! [`ComplianceStore`] wraps any [`SnapshotStore`](crate::store::SnapshotStore)
//! the way [`ReadOnlyStore`](crate::store::ReadOnlyStore) does: values are
//! encrypted on the way in and decrypted, then masked, on the way out. A
//! program that needs the values themselves (the engine, a replay, a
//! migration, `--reveal`) asks the store for its
//! [`unmasked`](crate::store::SnapshotStore::unmasked) handle; a masked
//! value is never written back (the layer refuses it).

pub mod anonymize;
pub mod audit;
pub mod convert;
pub mod crypto;
pub mod erase;
pub mod hold;
#[cfg(feature = "kms")]
pub mod kms;
pub mod layer;
pub mod mask;
pub mod paths;
pub mod retention;
pub mod reveal;
pub mod scan;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use layer::ComplianceStore;
pub use paths::{PathPattern, PathSeg, SensitivePaths};
pub use reveal::{can_reveal, RevealAudit};

use crate::store::StoreError;

/// The `[compliance]` table of the config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceConfig {
    /// Sensitive fields per saga name (`*` = every saga), as path patterns
    /// (`customer.email`, `card.*`, `*.ssn`): masked in every view and,
    /// with a key, encrypted at rest.
    #[serde(default)]
    pub sensitive: BTreeMap<String, Vec<String>>,
    /// Paths that identify a data subject (`customer.id`), for `erase
    /// --subject`.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// What `erase` does to a subject's sagas: `tombstone` (default:
    /// replace their personal fields) or `delete` (delete the sagas).
    pub erase: Option<String>,
    /// Mask sensitive fields in views, outputs, exports and logs (default
    /// true).
    pub mask: Option<bool>,
    /// Field encryption keys.
    #[serde(default)]
    pub encryption: EncryptionConfig,
    /// Retention per saga name (`*` = the rest): `30d`, `12h`, `7y`,
    /// `forever`.
    #[serde(default)]
    pub retention: BTreeMap<String, String>,
}

/// `[compliance.encryption]`: the master key new values are encrypted
/// under, and every master key a reader may need.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// The id of the master key that wraps new data keys; unset = values
    /// are written in clear (existing ciphertexts are still decrypted).
    pub key: Option<String>,
    /// Master keys by id.
    #[serde(default)]
    pub keys: BTreeMap<String, MasterKeyConfig>,
}

/// Where one master key lives: exactly one of a file, an environment
/// variable or AWS KMS.
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKeyConfig {
    /// A file holding 32 bytes as 64 hex digits or base64.
    pub file: Option<PathBuf>,
    /// An environment variable holding the same.
    pub env: Option<String>,
    /// An AWS KMS key: `kms://<key id, ARN or alias>`.
    pub kms: Option<String>,
}

impl std::fmt::Debug for MasterKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Where the key is, never the key.
        f.debug_struct("MasterKeyConfig")
            .field("file", &self.file)
            .field("env", &self.env)
            .field("kms", &self.kms)
            .finish()
    }
}

/// What the protection layer can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComplianceError {
    /// The `[compliance]` config cannot be used.
    #[error("[compliance] config: {0}")]
    Config(String),
    /// A master or data key cannot be had or does not open a value.
    #[error("key {key_id}: {message}")]
    Key {
        /// The master key id (as configured) or data key id involved.
        key_id: String,
        /// What happened and what to do.
        message: String,
    },
    /// A value was refused (a ciphertext moved to another field or saga, a
    /// masked value written back).
    #[error("{0}")]
    Refused(String),
}

impl From<ComplianceError> for StoreError {
    fn from(e: ComplianceError) -> Self {
        match e {
            ComplianceError::Config(_) => StoreError::Config {
                message: e.to_string(),
            },
            _ => StoreError::Protection {
                message: e.to_string(),
            },
        }
    }
}

impl From<paths::PatternError> for ComplianceError {
    fn from(e: paths::PatternError) -> Self {
        ComplianceError::Config(e.to_string())
    }
}

/// The protection policy in force, built from [`ComplianceConfig`].
#[derive(Debug, Default)]
pub struct Compliance {
    /// Sensitive fields per saga name.
    pub sensitive: SensitivePaths,
    /// Subject paths for erasure.
    pub subjects: Vec<PathPattern>,
    /// Mask sensitive fields on reads (unless revealed).
    pub mask: bool,
    /// Retention per saga name.
    pub retention: retention::RetentionPolicy,
    /// Field encryption, when keys are configured.
    pub encryption: Option<Arc<crypto::Encryptor>>,
    /// The config it was built from.
    pub config: ComplianceConfig,
}

impl Compliance {
    /// Builds the policy (opening key files, connecting to KMS as needed).
    pub async fn from_config(cfg: &ComplianceConfig) -> Result<Self, ComplianceError> {
        let sensitive = SensitivePaths::parse(&cfg.sensitive)?;
        let subjects = cfg
            .subjects
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<PathPattern>, _>>()?;
        let encryption = crypto::Encryptor::from_config(&cfg.encryption)
            .await?
            .map(Arc::new);
        Ok(Compliance {
            sensitive,
            subjects,
            mask: cfg.mask.unwrap_or(true),
            retention: retention::RetentionPolicy::from_config(&cfg.retention)?,
            encryption,
            config: cfg.clone(),
        })
    }

    /// Whether anything is configured (sensitive fields, keys, retention,
    /// subjects).
    pub fn is_active(&self) -> bool {
        !self.sensitive.is_empty()
            || self.encryption.is_some()
            || !self.retention.is_empty()
            || !self.subjects.is_empty()
    }
}
