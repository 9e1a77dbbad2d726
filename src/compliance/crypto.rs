//! Field encryption: AES-256-GCM per value, data keys wrapped by master
//! keys (file, environment variable, AWS KMS).
//!
//! Formats (stable; sagaz reads them as ordinary JSON):
//! - an encrypted value: `{"$enc": "aes-256-gcm", "kid": "<data key id>",
//!   "iv": "<base64, 12 bytes>", "ct": "<base64 ciphertext and tag>"}`,
//!   the plaintext being the value's JSON; associated data
//!   `sagascope-field/1\0<saga id>\0<path>\0<data key id>`;
//! - the data keys a snapshot's values use, in its extra field
//!   `sagascope_keys`: `{"<data key id>": {"master": "<master key id>",
//!   "wrapped": "<base64>"}}`; data key ids are `dk-` and 16 hex digits.

use async_trait::async_trait;

use super::{ComplianceError, EncryptionConfig, PathPattern};
use crate::model::Snapshot;

/// A key that wraps and unwraps data keys: a local 32-byte key (file or
/// environment variable) or an AWS KMS key.
#[async_trait]
pub trait MasterKey: Send + Sync + std::fmt::Debug {
    /// The id the config gives it (`[compliance.encryption.keys.<id>]`).
    fn id(&self) -> &str;
    /// Wraps a data key; `dek_id` is bound to the result.
    async fn wrap(&self, dek: &[u8; 32], dek_id: &str) -> Result<Vec<u8>, ComplianceError>;
    /// Unwraps what [`MasterKey::wrap`] made for `dek_id`; an error naming
    /// this key's id when it does not open it.
    async fn unwrap(&self, wrapped: &[u8], dek_id: &str) -> Result<[u8; 32], ComplianceError>;
}

/// Encrypts and decrypts sensitive values.
#[derive(Debug)]
pub struct Encryptor {}

impl Encryptor {
    /// `None` when no key is configured.
    pub async fn from_config(_cfg: &EncryptionConfig) -> Result<Option<Self>, ComplianceError> {
        Ok(None)
    }

    /// Encrypts every value `patterns` cover that is not encrypted yet.
    pub async fn encrypt_snapshot<'p>(
        &self,
        _s: &mut Snapshot,
        _patterns: impl Iterator<Item = &'p PathPattern> + Clone + Send,
    ) -> Result<(), ComplianceError> {
        Ok(())
    }

    /// Decrypts every ciphertext whose key is configured; leaves the others
    /// (shown as 🔒); a key that does not open a value is an error.
    pub async fn decrypt_snapshot(&self, _s: &mut Snapshot) -> Result<(), ComplianceError> {
        Ok(())
    }
}
