//! What `s3://` and `file://` URLs say.

use std::path::PathBuf;

use super::super::codec::Compression;
#[cfg(feature = "s3")]
use super::super::redact;
use super::super::{StoreError, StoreResult, StoreUrl};

/// Where and how to reach a bucket. Built from a URL ([`S3Settings::from_url`])
/// or by a config file; `None` fields fall back to the AWS chain or sagaz's
/// defaults.
#[cfg(feature = "s3")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket's name (the URL's host part: `s3://bucket/prefix`).
    pub bucket: String,
    /// Key prefix, empty or ending in `/` (sagaz's default `snapshots/`).
    pub prefix: String,
    /// A custom endpoint (MinIO, Ceph, moto): `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// The AWS region; `None` takes it from the environment or profile
    /// (and `us-east-1` with a custom endpoint).
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); defaults to on with a
    /// custom endpoint.
    pub path_style: Option<bool>,
    /// `AES256` (sagaz's default), `aws:kms`, or `None` for no header.
    pub sse: Option<String>,
    /// `STANDARD` (sagaz's) unless set.
    pub storage_class: Option<String>,
    /// Snapshot and replay compression; `None` = zstd, sagaz's default.
    pub compression: Option<Compression>,
    /// An AWS profile name.
    pub profile: Option<String>,
}

#[cfg(feature = "s3")]
impl S3Settings {
    /// A bucket with sagaz's defaults.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Settings {
            bucket: bucket.into(),
            prefix: "snapshots/".into(),
            endpoint: None,
            region: None,
            path_style: None,
            sse: Some("AES256".into()),
            storage_class: Some("STANDARD".into()),
            compression: None,
            profile: None,
        }
    }

    /// Reads `s3://bucket/prefix?param=...` (see the module docs).
    pub fn from_url(url: &StoreUrl) -> StoreResult<Self> {
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: url.redacted(),
            reason,
        };
        let parsed = ::url::Url::parse(url.expose()).map_err(|e| invalid(e.to_string()))?;
        let bucket = parsed
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| invalid("no bucket; use s3://bucket/prefix".into()))?;
        let mut s = S3Settings::new(bucket);
        let raw_path = parsed.path();
        if !raw_path.is_empty() {
            let decoded = percent_decode(raw_path)
                .ok_or_else(|| invalid("the prefix is not valid percent-encoded UTF-8".into()))?;
            s.prefix = normalize_prefix(&decoded);
        }
        for (k, v) in parsed.query_pairs() {
            let flag = |v: &str| match v {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                other => Err(invalid(format!("{k}={other:?}: expected true or false"))),
            };
            match k.as_ref() {
                "endpoint" | "endpoint_url" => s.endpoint = Some(v.into_owned()),
                "region" => s.region = Some(v.into_owned()),
                "path_style" | "force_path_style" => s.path_style = Some(flag(&v)?),
                "sse" => s.sse = (!v.eq_ignore_ascii_case("none") && !v.is_empty()).then(|| v.into_owned()),
                "storage_class" => s.storage_class = Some(v.into_owned()),
                "profile" => s.profile = Some(v.into_owned()),
                "prefix" => s.prefix = normalize_prefix(&v),
                "compression" => {
                    s.compression = Some(match v.as_ref() {
                        "zstd" => Compression::zstd(),
                        "none" => Compression::None,
                        other => return Err(invalid(format!("compression={other:?}: sagaz's S3 store uses zstd or none"))),
                    })
                }
                "access_key_id" | "secret_access_key" | "aws_secret_access_key" | "session_token" => {
                    return Err(invalid(
                        "credentials are not taken from the URL; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role".into(),
                    ))
                }
                other => {
                    return Err(invalid(format!(
                        "unknown parameter {other:?}; known: endpoint, region, path_style, sse, storage_class, compression, profile, prefix"
                    )))
                }
            }
        }
        Ok(s)
    }

    pub(crate) fn location(&self) -> String {
        let mut q = vec![];
        if let Some(e) = &self.endpoint {
            q.push(format!("endpoint={e}"));
        }
        if let Some(r) = &self.region {
            q.push(format!("region={r}"));
        }
        let q = if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        };
        redact(&format!("s3://{}/{}{q}", self.bucket, self.prefix))
    }
}

#[cfg(feature = "s3")]
fn normalize_prefix(p: &str) -> String {
    let p = p.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        p.to_string()
    } else {
        format!("{p}/")
    }
}

/// The folder under a `file://` URL and the compression it asks for.
pub fn parse_url(url: &StoreUrl) -> StoreResult<(PathBuf, Option<Compression>)> {
    let raw = url.expose();
    let invalid = |reason: String| StoreError::InvalidUrl {
        url: url.redacted(),
        reason,
    };
    let rest = raw.split_once("://").map(|(_, r)| r).unwrap_or(raw);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(invalid(
            "no folder; use file:///absolute/dir or file://relative/dir".into(),
        ));
    }
    let path = percent_decode(path)
        .ok_or_else(|| invalid("the path is not valid percent-encoded UTF-8".into()))?;
    let mut compression = None;
    let query_url =
        ::url::Url::parse(&format!("file:///?{query}")).map_err(|e| invalid(e.to_string()))?;
    for (k, v) in query_url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("compression", "gzip") => compression = Some(Compression::gzip()),
            ("compression", "none") => compression = Some(Compression::None),
            ("compression", other) => {
                return Err(invalid(format!(
                    "compression={other:?} is not supported by the folder store; use gzip or none (as sagaz's enable_compression)"
                )))
            }
            (other, _) => return Err(invalid(format!("unknown parameter {other:?}; the folder store takes compression=gzip|none"))),
        }
    }
    Ok((PathBuf::from(path), compression))
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folder_urls() {
        let (p, c) = parse_url(&StoreUrl::new("file:///var/lib/sagas?compression=gzip")).unwrap();
        assert_eq!(p, PathBuf::from("/var/lib/sagas"));
        assert_eq!(c, Some(Compression::gzip()));
        let (p, c) = parse_url(&StoreUrl::new("file://rel/dir%20x")).unwrap();
        assert_eq!(p, PathBuf::from("rel/dir x"));
        assert_eq!(c, None);
        assert!(parse_url(&StoreUrl::new("file:///x?compression=zstd")).is_err());
        assert!(parse_url(&StoreUrl::new("file://")).is_err());
    }

    #[cfg(feature = "s3")]
    #[test]
    fn reads_every_url_parameter() {
        let s = S3Settings::from_url(&StoreUrl::new(
            "s3://sagas/prod/snaps?endpoint=http://127.0.0.1:9000&path_style=true&region=eu-west-1&sse=none&storage_class=STANDARD_IA&compression=none",
        ))
        .unwrap();
        assert_eq!(s.bucket, "sagas");
        assert_eq!(s.prefix, "prod/snaps/");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.path_style, Some(true));
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.sse, None);
        assert_eq!(s.storage_class.as_deref(), Some("STANDARD_IA"));
        assert_eq!(s.compression, Some(Compression::None));
    }

    #[cfg(feature = "s3")]
    #[test]
    fn defaults_are_sagaz_defaults() {
        let s = S3Settings::from_url(&StoreUrl::new("s3://sagas")).unwrap();
        assert_eq!(s.prefix, "snapshots/");
        assert_eq!(s.sse.as_deref(), Some("AES256"));
        assert_eq!(s.compression, None);
        assert_eq!(
            S3Settings::from_url(&StoreUrl::new("s3://sagas/"))
                .unwrap()
                .prefix,
            ""
        );
    }

    #[cfg(feature = "s3")]
    #[test]
    fn refuses_credentials_and_unknown_parameters() {
        let e =
            S3Settings::from_url(&StoreUrl::new("s3://b/p?secret_access_key=hunter2")).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(S3Settings::from_url(&StoreUrl::new("s3://b/p?colour=blue")).is_err());
        assert!(S3Settings::from_url(&StoreUrl::new("s3://b/p?compression=gzip")).is_err());
    }
}
