//! Store URLs: parsing, the backend they name, and redaction so that no
//! password or secret query parameter reaches a log, an error or `Debug`.

use std::fmt;

/// Query parameters whose values are secrets.
const SECRET_PARAMS: [&str; 6] = [
    "password",
    "secret_access_key",
    "aws_secret_access_key",
    "session_token",
    "token",
    "sslpassword",
];

/// Whether a query parameter's value is a secret (redacted everywhere).
pub fn param_is_secret(name: &str) -> bool {
    SECRET_PARAMS.iter().any(|s| name.eq_ignore_ascii_case(s))
}

/// A store URL that prints redacted everywhere but [`StoreUrl::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// Wraps a URL as given; nothing is parsed or checked until it is opened.
    pub fn new(url: impl Into<String>) -> Self {
        StoreUrl(url.into())
    }

    /// The URL with its secrets, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme (`sqlite`, `postgres`, ...), lower-cased.
    pub fn scheme(&self) -> String {
        self.0
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// The URL with password and secret parameters replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({:?})", self.redacted())
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Redacts the userinfo password and secret query parameters of any URL-like
/// text. Text that is not a URL is returned unchanged.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query().is_some() {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = param_is_secret(&k);
                        (
                            k.into_owned(),
                            if secret { "***".into() } else { v.into_owned() },
                        )
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        // Not parseable: hide anything between "://" and "@" to be safe.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
            _ => url.to_string(),
        },
    }
}

/// A URL parameter that is a positive, finite number of seconds
/// (`connect_timeout=2.5`); the error names the parameter and the value.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn seconds_param(name: &str, value: &str) -> Result<std::time::Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|n| *n > 0.0 && n.is_finite())
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("{name} {value:?}: expected seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_and_secret_params() {
        let u = StoreUrl::new(
            "postgres://app:hunter2@db.internal:5432/sagas?sslmode=require&password=x",
        );
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("password=x"), "{shown}");
        assert!(shown.contains("sslmode=require"));
        assert!(shown.contains("app:***@db.internal"));
        let s3 = redact("s3://bucket/p?endpoint=http://127.0.0.1:9000&secret_access_key=abc");
        assert!(!s3.contains("abc"), "{s3}");
        assert!(s3.contains("endpoint="));
    }

    #[test]
    fn leaves_urls_without_secrets_alone() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(StoreUrl::new("memory://").scheme(), "memory");
    }
}
