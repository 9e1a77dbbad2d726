//! Master keys held by AWS KMS (`kms://<key id, ARN or alias>`).
//!
//! A data key is wrapped with KMS `Encrypt` and unwrapped with `Decrypt`,
//! both under the encryption context `{"sagascope-dek": "<data key id>"}`:
//! KMS binds the wrapped blob to that id, so a wrapped key copied under
//! another id does not open, and CloudTrail shows which data key each call
//! was for. `Decrypt` names the key too, so a blob another key wrapped is
//! refused rather than opened with whatever key made it.
//!
//! Endpoint, region and credentials come the way the S3 store finds them:
//! the standard AWS chain (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_KMS`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, SSO,
//! instance roles), overridden by the URL's query: `kms://alias/orders?
//! region=eu-west-1&endpoint=http://127.0.0.1:9000&profile=name`.
//! Credentials are never taken from the URL, so none can leak through it.
//!
//! [`connect`] makes no request: a reader that holds several keys opens the
//! store even when one of them (an old one it may not need) is out of
//! reach; the first wrap or unwrap says what failed.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;

use super::crypto::MasterKey;
use super::ComplianceError;

/// The encryption context key a wrapped data key is bound to.
pub const CONTEXT_KEY: &str = "sagascope-dek";

/// Where a `kms://` URL points and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KmsSettings {
    /// The key: id, ARN or `alias/name` (or an alias ARN).
    pub key: String,
    /// `?region=`; else the AWS chain, else `us-east-1`.
    pub region: Option<String>,
    /// `?endpoint=` (a KMS-compatible server); else the AWS chain.
    pub endpoint: Option<String>,
    /// `?profile=`: a named AWS profile.
    pub profile: Option<String>,
}

impl KmsSettings {
    /// Parses `kms://<key>[?region=…&endpoint=…&profile=…]`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("kms://").ok_or_else(|| {
            format!("{url:?} is not a kms:// URL (kms://<key id, ARN or alias/name>)")
        })?;
        let (key, query) = rest.split_once('?').unwrap_or((rest, ""));
        if key.is_empty() {
            return Err("kms:// names no key (kms://<key id, ARN or alias/name>)".into());
        }
        let mut s = KmsSettings {
            key: key.to_string(),
            ..KmsSettings::default()
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "region" => s.region = Some(v.into_owned()),
                "endpoint" | "endpoint_url" => s.endpoint = Some(v.into_owned()),
                "profile" => s.profile = Some(v.into_owned()),
                other => {
                    return Err(format!(
                        "kms:// URL: unknown parameter {other:?} (region, endpoint, profile)"
                    ))
                }
            }
        }
        Ok(s)
    }
}

/// A master key held by AWS KMS; the key material never leaves KMS.
#[derive(Clone)]
pub struct KmsKey {
    id: String,
    settings: KmsSettings,
    client: Client,
}

impl std::fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKey")
            .field("id", &self.id)
            .field("key", &self.settings.key)
            .finish()
    }
}

/// The KMS key `url` names, known in the config as `id`. No request is
/// made yet (see the module doc).
pub async fn connect(id: &str, url: &str) -> Result<KmsKey, ComplianceError> {
    let settings = KmsSettings::parse(url).map_err(|message| ComplianceError::Key {
        key_id: id.to_string(),
        message,
    })?;
    let client = client(&settings).await;
    Ok(KmsKey {
        id: id.to_string(),
        settings,
        client,
    })
}

/// An SDK client from the AWS chain, overridden by the settings.
pub async fn client(settings: &KmsSettings) -> Client {
    // The S3 store's retries and timeouts: a wrap is one small request,
    // safe to repeat; an unreachable endpoint says so within seconds.
    let sdk = crate::store::aws::sdk_config(
        settings.region.as_deref(),
        settings.profile.as_deref(),
        settings.endpoint.as_deref(),
        crate::store::aws::Patience {
            attempts: 4,
            attempt: Duration::from_secs(20),
            operation: Duration::from_secs(60),
        },
    )
    .await;
    let mut b = aws_sdk_kms::config::Builder::from(&sdk);
    if sdk.region().is_none() {
        b = b.region(aws_config::Region::new("us-east-1"));
    }
    Client::from_conf(b.build())
}

impl KmsKey {
    /// See [`connect`].
    pub async fn connect(id: &str, url: &str) -> Result<KmsKey, ComplianceError> {
        connect(id, url).await
    }

    /// The KMS key as the URL names it (id, ARN or alias).
    pub fn key(&self) -> &str {
        &self.settings.key
    }

    /// One error for a failed KMS call: which key, which call, what KMS
    /// said, and what to do. The SDK's text carries the service's message
    /// and the transport's, never the credentials or the payload.
    fn error<E>(
        &self,
        op: &str,
        dek_id: &str,
        e: SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
    ) -> ComplianceError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let key = &self.settings.key;
        let code = e.code().unwrap_or_default().to_string();
        let what = match (&e, code.as_str()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _) => format!(
                "KMS is unreachable ({op} of data key {dek_id} with KMS key {key}): {}; check \
                 the endpoint (AWS_ENDPOINT_URL, ?endpoint=) and the network",
                DisplayErrorContext(&e)
            ),
            (_, "NotFoundException") => format!(
                "KMS key {key} not found ({op} of data key {dek_id}); check the key id, alias \
                 and region"
            ),
            (_, "AccessDeniedException") => format!(
                "KMS denied {op} of data key {dek_id} with KMS key {key}: access denied (the \
                 credentials may not use this key{})",
                if op == "Decrypt" {
                    ", or another key wrapped this data key"
                } else {
                    ""
                }
            ),
            (_, "IncorrectKeyException") => format!(
                "KMS key {key} did not wrap data key {dek_id} (another key did); configure \
                 the master key that wrapped it"
            ),
            (_, "InvalidCiphertextException") => format!(
                "KMS key {key} does not open data key {dek_id}: the wrapped key is damaged or \
                 was made for another data key id"
            ),
            (_, "DisabledException" | "KMSInvalidStateException" | "KeyUnavailableException") => {
                format!("KMS key {key} cannot be used now ({code}): enable it or wait, then retry")
            }
            _ => format!(
                "KMS {op} of data key {dek_id} with KMS key {key} failed: {}",
                DisplayErrorContext(&e)
            ),
        };
        ComplianceError::Key {
            key_id: self.id.clone(),
            message: what,
        }
    }
}

#[async_trait]
impl MasterKey for KmsKey {
    fn id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, dek: &[u8; 32], dek_id: &str) -> Result<Vec<u8>, ComplianceError> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.settings.key)
            .plaintext(Blob::new(dek.to_vec()))
            .encryption_context(CONTEXT_KEY, dek_id)
            .send()
            .await
            .map_err(|e| self.error("Encrypt", dek_id, e))?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| ComplianceError::Key {
                key_id: self.id.clone(),
                message: format!(
                    "KMS Encrypt of data key {dek_id} with KMS key {} returned no ciphertext",
                    self.settings.key
                ),
            })
    }

    async fn unwrap(&self, wrapped: &[u8], dek_id: &str) -> Result<[u8; 32], ComplianceError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.settings.key)
            .ciphertext_blob(Blob::new(wrapped.to_vec()))
            .encryption_context(CONTEXT_KEY, dek_id)
            .send()
            .await
            .map_err(|e| self.error("Decrypt", dek_id, e))?;
        let plain = out.plaintext.map(Blob::into_inner).unwrap_or_default();
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| ComplianceError::Key {
            key_id: self.id.clone(),
            message: format!(
                "KMS key {} opened data key {dek_id} to {} bytes, not 32: not a key sagascope \
                 wrapped",
                self.settings.key,
                plain.len()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kms_url_names_the_key_by_id_arn_or_alias_with_optional_overrides() {
        let s = KmsSettings::parse("kms://1234abcd-12ab-34cd-56ef-1234567890ab").unwrap();
        assert_eq!(s.key, "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(s.region, None);
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd";
        assert_eq!(
            KmsSettings::parse(&format!("kms://{arn}")).unwrap().key,
            arn
        );
        let s = KmsSettings::parse(
            "kms://alias/orders?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A9000",
        )
        .unwrap();
        assert_eq!(s.key, "alias/orders");
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn a_kms_url_without_a_key_or_with_an_unknown_parameter_is_refused() {
        assert!(KmsSettings::parse("kms://").is_err());
        assert!(KmsSettings::parse("kms://k?secret=x")
            .unwrap_err()
            .contains("secret"));
        assert!(KmsSettings::parse("file:///k").is_err());
    }
}
