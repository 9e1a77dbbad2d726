//! Master keys held by AWS KMS (`kms://<key id, ARN or alias>`).
//!
//! A placeholder until the KMS client lands: every `kms://` key is refused
//! with a message naming its id.

use async_trait::async_trait;

use super::crypto::MasterKey;
use super::ComplianceError;

/// An AWS KMS key.
#[derive(Debug)]
pub struct KmsKey {
    id: String,
}

fn unsupported(id: &str) -> ComplianceError {
    ComplianceError::Key {
        key_id: id.to_string(),
        message: "AWS KMS keys are not supported yet".into(),
    }
}

/// Connects to the KMS key `url` (`kms://…`) configured as `id`.
pub async fn connect(id: &str, _url: &str) -> Result<KmsKey, ComplianceError> {
    Err(unsupported(id))
}

impl KmsKey {
    /// See [`connect`].
    pub async fn connect(id: &str, url: &str) -> Result<KmsKey, ComplianceError> {
        connect(id, url).await
    }
}

#[async_trait]
impl MasterKey for KmsKey {
    fn id(&self) -> &str {
        &self.id
    }
    async fn wrap(&self, _dek: &[u8; 32], _dek_id: &str) -> Result<Vec<u8>, ComplianceError> {
        Err(unsupported(&self.id))
    }
    async fn unwrap(&self, _wrapped: &[u8], _dek_id: &str) -> Result<[u8; 32], ComplianceError> {
        Err(unsupported(&self.id))
    }
}
