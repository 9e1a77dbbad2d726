//! `s3://bucket/prefix`: sagaz's `S3SnapshotStorage` object layout in any
//! S3-compatible bucket (AWS, MinIO, Ceph, moto).
//!
//! ```text
//! {prefix}snapshot/{snapshot_id}.json.zst   snapshot, one zstd frame (.json with compression=none)
//! {prefix}index/saga/{saga_id}.json         sagaz's index, plain JSON, newest first, 1,000 at most
//! {prefix}replay/{replay_id}.json           replay log, zstd inside despite the name
//! {prefix}sagascope/...                     sagascope's own index (see `objects`)
//! ```
//!
//! Objects are written as sagaz writes them: `json.dumps` text, zstd level
//! 3 when compressed, `StorageClass` and `ServerSideEncryption=AES256`, an
//! `Expires` header from `retention_until`, user metadata `saga_id`,
//! `saga_name`, `step_name`, `created_at`. S3 metadata must be ASCII, and
//! sagaz silently drops snapshots whose step name is not; sagascope
//! percent-encodes non-ASCII metadata instead (the object body holds the
//! real text). Reads sniff zstd, so compressed and plain objects, and
//! compressed replay objects named `.json`, all read.
//!
//! Shared objects (sagaz's index, saga summaries, locks) are updated with
//! conditional writes (`If-Match` on the ETag, `If-None-Match: *` to
//! create), retried on `412 Precondition Failed`; AWS S3 and moto 5 honour
//! them. The bucket must exist: sagascope, like sagaz, never creates it.
//!
//! URL: `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&path_style=true
//! &region=us-east-1&sse=AES256&storage_class=STANDARD&compression=zstd
//! &profile=name`. Without a path the prefix is sagaz's default
//! `snapshots/`; `s3://bucket/` means the bucket root. Anything not in the
//! URL comes from the standard AWS chain (`AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profiles, SSO, instance
//! roles). With a custom endpoint, path-style addressing is the default.
//! Credentials are never taken from the URL, so none can leak through it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ServerSideEncryption, StorageClass};
use aws_sdk_s3::Client;

use crate::store::codec::Compression;
use crate::store::objects::{Driver, Layout, Listed, Obj, ObjectStore, PutMeta};
use crate::store::*;

pub use crate::store::objects::url::S3Settings;

const BACKEND: &str = "s3";

/// Opens the bucket an `s3://` URL names.
pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<ObjectStore> {
    let mut settings = S3Settings::from_url(url)?;
    if settings.compression.is_none() {
        settings.compression = opts.compression;
    }
    connect(&settings, opts.readonly).await
}

/// Connects with explicit settings and checks that the bucket exists.
pub async fn connect(settings: &S3Settings, readonly: bool) -> StoreResult<ObjectStore> {
    let compression = match settings.compression {
        None | Some(Compression::Zstd { .. }) => {
            settings.compression.unwrap_or_else(Compression::zstd)
        }
        Some(Compression::None) => Compression::None,
        Some(Compression::Gzip { .. }) => {
            return Err(StoreError::InvalidUrl {
                url: settings.location(),
                reason: "sagaz's S3 store compresses with zstd only; use compression=zstd or none"
                    .into(),
            })
        }
    };
    let client = client(settings).await;
    let driver = S3Driver {
        client,
        bucket: settings.bucket.clone(),
        prefix: settings.prefix.clone(),
        sse: settings.sse.as_deref().map(ServerSideEncryption::from),
        storage_class: settings.storage_class.as_deref().map(StorageClass::from),
        location: settings.location(),
    };
    driver.check_bucket().await?;
    Ok(ObjectStore::new(
        Arc::new(driver),
        Layout::s3(compression),
        readonly,
    ))
}

/// An SDK client from the AWS chain, overridden by the settings.
pub async fn client(settings: &S3Settings) -> Client {
    // More attempts than the SDK's 3: throttling (503 SlowDown) and 500s
    // are common under load, and every request here is safe to repeat.
    let sdk = crate::store::aws::sdk_config(
        settings.region.as_deref(),
        settings.profile.as_deref(),
        settings.endpoint.as_deref(),
        crate::store::aws::Patience {
            attempts: 6,
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(120),
        },
    )
    .await;
    let mut b = aws_sdk_s3::config::Builder::from(&sdk);
    if sdk.region().is_none() {
        // S3-compatible servers rarely care; AWS needs one to sign.
        b = b.region(aws_config::Region::new("us-east-1"));
    }
    let path_style = settings
        .path_style
        .unwrap_or(settings.endpoint.is_some() || sdk.endpoint_url().is_some());
    b = b.force_path_style(path_style);
    Client::from_conf(b.build())
}

/// Objects in a bucket under a prefix.
#[derive(Clone)]
struct S3Driver {
    client: Client,
    bucket: String,
    prefix: String,
    sse: Option<ServerSideEncryption>,
    storage_class: Option<StorageClass>,
    location: String,
}

impl std::fmt::Debug for S3Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Driver")
            .field("location", &self.location)
            .finish()
    }
}

fn status<E, R: HttpStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(HttpStatus::code)
}

trait HttpStatus {
    fn code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3Driver {
    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn err<E>(
        &self,
        op: &str,
        key: &str,
        e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = e.code().map(str::to_string);
        let http = status(&e);
        let detail = DisplayErrorContext(&e).to_string();
        match (&e, http, code.as_deref()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => StoreError::Unreachable {
                url: self.location.clone(),
                reason: format!("{op} {key}: {detail}"),
            },
            (_, _, Some("NoSuchBucket")) => StoreError::Unreachable {
                url: self.location.clone(),
                reason: format!("bucket {:?} does not exist; create it first (sagaz does not create buckets either)", self.bucket),
            },
            (_, Some(403), _) | (_, _, Some("AccessDenied")) => StoreError::PermissionDenied {
                url: self.location.clone(),
                reason: format!("{op} {key}: {}", code.unwrap_or_else(|| "403".into())),
            },
            _ => StoreError::backend(BACKEND, format!("{op} {key}: {detail}")),
        }
    }

    async fn check_bucket(&self) -> StoreResult<()> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Err(StoreError::Unreachable {
                url: self.location.clone(),
                reason: format!("bucket {:?} does not exist; create it first (sagaz does not create buckets either)", self.bucket),
            }),
            Err(e) => Err(self.err("HeadBucket", &self.bucket, e)),
        }
    }

    fn put_request(
        &self,
        key: &str,
        body: Vec<u8>,
        meta: &PutMeta,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .body(ByteStream::from(body))
            .set_server_side_encryption(self.sse.clone())
            .set_storage_class(self.storage_class.clone());
        for (k, v) in &meta.metadata {
            req = req.metadata(*k, v);
        }
        if let Some(t) = meta.expires {
            req = req.expires(aws_smithy_types::DateTime::from_secs(
                t.as_micros().div_euclid(1_000_000),
            ));
        }
        if let Some(ct) = meta.content_type {
            req = req.content_type(ct);
        }
        req
    }

    async fn list_with(
        &self,
        prefix: &str,
        delimiter: bool,
    ) -> StoreResult<(Vec<Listed>, Vec<String>)> {
        let full = self.full(prefix);
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full);
        if delimiter {
            req = req.delimiter("/");
        }
        let mut pages = req.into_paginator().send();
        let mut keys = vec![];
        let mut dirs = vec![];
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err("ListObjectsV2", &full, e))?;
            for o in page.contents() {
                if let Some(k) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(Listed {
                        key: k.to_string(),
                        etag: o.e_tag().unwrap_or_default().to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                    });
                }
            }
            for p in page.common_prefixes() {
                if let Some(d) = p.prefix().and_then(|d| d.strip_prefix(&full)) {
                    dirs.push(d.trim_end_matches('/').to_string());
                }
            }
        }
        keys.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((keys, dirs))
    }
}

#[async_trait]
impl Driver for S3Driver {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    fn distributed(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Obj>> {
        let full = self.full(key);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let meta = out
                    .metadata()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                // Refused before the body is read: an object over the cap
                // would otherwise be held whole.
                let cap = crate::limits::MAX_STORED_ENTRY_BYTES;
                if out
                    .content_length()
                    .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > cap))
                {
                    return Err(StoreError::corrupt(
                        full,
                        None,
                        crate::limits::FileReadError::TooLarge { cap },
                    ));
                }
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| {
                        StoreError::backend(
                            BACKEND,
                            format!("GetObject {full}: reading the body: {e}"),
                        )
                    })?
                    .into_bytes()
                    .to_vec();
                Ok(Some(Obj { bytes, etag, meta }))
            }
            Err(e)
                if e.code() == Some("NoSuchKey")
                    || (status(&e) == Some(404) && e.code() != Some("NoSuchBucket")) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.err("GetObject", &full, e)),
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>, meta: &PutMeta) -> StoreResult<()> {
        self.put_request(key, body, meta)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("PutObject", &self.full(key), e))
    }

    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        expect: Option<&str>,
        meta: &PutMeta,
    ) -> StoreResult<Option<String>> {
        let req = self.put_request(key, body, meta);
        let req = match expect {
            None => req.if_none_match("*"),
            Some(etag) => req.if_match(etag),
        };
        match req.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_string())),
            // 412: the precondition failed; 409: a concurrent conditional
            // write won (AWS); 404: the object we expected is gone.
            Err(e) if matches!(status(&e), Some(412 | 409)) || e.code() == Some("NoSuchKey") => {
                Ok(None)
            }
            Err(e) => Err(self.err("PutObject", &self.full(key), e)),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let full = self.full(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) && e.code() != Some("NoSuchBucket") => Ok(()),
            Err(e) => Err(self.err("DeleteObject", &full, e)),
        }
    }

    async fn delete_if(&self, key: &str, etag: &str) -> StoreResult<bool> {
        let full = self.full(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(status(&e), Some(412 | 409 | 404))
                    && e.code() != Some("NoSuchBucket") =>
            {
                Ok(false)
            }
            Err(e) => Err(self.err("DeleteObject", &full, e)),
        }
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<Listed>> {
        Ok(self.list_with(prefix, false).await?.0)
    }

    async fn list_dirs(&self, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(self.list_with(prefix, true).await?.1)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.check_bucket().await
    }
}
