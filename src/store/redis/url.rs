//! What a `redis://` URL says: the driver's node URLs, Cluster or not,
//! and sagascope's own parameters.

use std::time::Duration;

use super::super::codec::Compression;
use super::super::{StoreError, StoreResult, StoreUrl};
use super::DEFAULT_PREFIX;

/// What a `redis://` URL says, split from the driver's part.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ParsedUrl {
    /// Driver URLs: one for a single server, the seed nodes for a Cluster.
    pub nodes: Vec<String>,
    pub cluster: bool,
    pub prefix: String,
    pub compression: Option<Compression>,
    pub connect_timeout: Duration,
}

/// The URL checked as [`open`](super::open) would, without connecting.
pub(crate) fn check_url(url: &StoreUrl) -> StoreResult<()> {
    parse_url(url).map(drop)
}

pub(super) fn parse_url(url: &StoreUrl) -> StoreResult<ParsedUrl> {
    let invalid = |reason: String| StoreError::InvalidUrl {
        url: url.redacted(),
        reason,
    };
    let raw = url.expose();
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| invalid("expected redis://host:port".into()))?;
    let scheme = scheme.to_ascii_lowercase();
    // `#insecure` (skip TLS certificate checks) is the driver's; keep it for every node.
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, format!("#{f}")),
        None => (rest, String::new()),
    };
    let (mut cluster, tls) = match scheme.as_str() {
        "redis" => (false, false),
        "rediss" => (false, true),
        "redis+cluster" => (true, false),
        "rediss+cluster" => (true, true),
        other => return Err(invalid(format!("unknown scheme {other:?}"))),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, p),
        None => (before_query, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut prefix = DEFAULT_PREFIX.to_string();
    let mut compression = None;
    let mut connect_timeout = Duration::from_secs(5);
    let mut driver_params: Vec<(String, String)> = Vec::new();
    for (k, v) in ::url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "prefix" => prefix = v.into_owned(),
            "compression" => {
                compression = Some(match v.as_ref() {
                    "zstd" => Compression::zstd(),
                    "none" | "off" => Compression::None,
                    other => {
                        return Err(invalid(format!("compression {other:?}: use zstd or none")))
                    }
                })
            }
            "cluster" => cluster = matches!(v.as_ref(), "true" | "1" | "yes"),
            "connect_timeout" => {
                connect_timeout =
                    super::super::url::seconds_param("connect_timeout", &v).map_err(invalid)?
            }
            _ => driver_params.push((k.into_owned(), v.into_owned())),
        }
    }
    let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
    if hosts.is_empty() {
        return Err(invalid("no host; expected redis://host:port".into()));
    }
    if hosts.len() > 1 && !cluster {
        return Err(invalid(
            "several hosts are only allowed for a Cluster (redis+cluster://)".into(),
        ));
    }
    if cluster && !path.trim_matches('/').is_empty() && path.trim_matches('/') != "0" {
        return Err(invalid("a Redis Cluster has only database 0".into()));
    }
    let driver_scheme = if tls { "rediss" } else { "redis" };
    let query = if driver_params.is_empty() {
        String::new()
    } else {
        let mut s = ::url::form_urlencoded::Serializer::new(String::new());
        s.extend_pairs(driver_params);
        format!("?{}", s.finish())
    };
    let nodes = hosts
        .iter()
        .map(|h| {
            let auth = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
            let db = if cluster || path.is_empty() {
                String::new()
            } else {
                format!("/{path}")
            };
            format!("{driver_scheme}://{auth}{h}{db}{query}{fragment}")
        })
        .collect();
    Ok(ParsedUrl {
        nodes,
        cluster,
        prefix,
        compression,
        connect_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_cluster_urls() {
        let p = parse_url(&StoreUrl::new(
            "redis://:pw@127.0.0.1:6379/2?prefix=app:&compression=none&protocol=resp3",
        ))
        .unwrap();
        assert_eq!(
            p.nodes,
            vec!["redis://:pw@127.0.0.1:6379/2?protocol=resp3".to_string()]
        );
        assert!(!p.cluster);
        assert_eq!(p.prefix, "app:");
        assert_eq!(p.compression, Some(Compression::None));
        let c = parse_url(&StoreUrl::new(
            "redis+cluster://127.0.0.1:7000,127.0.0.1:7001/?prefix=x:",
        ))
        .unwrap();
        assert!(c.cluster);
        assert_eq!(
            c.nodes,
            vec![
                "redis://127.0.0.1:7000".to_string(),
                "redis://127.0.0.1:7001".to_string()
            ]
        );
        let c = parse_url(&StoreUrl::new("rediss://h:7000?cluster=true")).unwrap();
        assert!(c.cluster);
        assert_eq!(c.nodes, vec!["rediss://h:7000".to_string()]);
        assert_eq!(c.prefix, DEFAULT_PREFIX);
        let t = parse_url(&StoreUrl::new(
            "rediss://127.0.0.1:6390/?prefix=p:#insecure",
        ))
        .unwrap();
        assert_eq!(
            t.nodes,
            vec!["rediss://127.0.0.1:6390#insecure".to_string()]
        );
        assert_eq!(t.prefix, "p:");
        assert!(parse_url(&StoreUrl::new("redis://a:1,b:2")).is_err());
        assert!(parse_url(&StoreUrl::new("redis://a:1?compression=lz4")).is_err());
    }
}
