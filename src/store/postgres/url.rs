//! The `postgres://` URL: what sqlx understands, and sagascope's own
//! parameters (`schema=`, `pool_max=`, `connect_timeout=`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::*;

/// Splits a `postgres://` URL into what sqlx understands and sagascope's own
/// parameters.
pub(super) struct ParsedUrl {
    pub(super) options: PgConnectOptions,
    pub(super) schema: Option<String>,
    pub(super) pool_max: u32,
    pub(super) connect_timeout: Duration,
}

/// The URL checked as [`open`](crate::store::open) would, without connecting.
pub(crate) fn check_url(url: &StoreUrl) -> StoreResult<()> {
    parse_url(url).map(drop)
}

pub(super) fn parse_url(url: &StoreUrl) -> StoreResult<ParsedUrl> {
    let invalid = |reason: String| StoreError::InvalidUrl {
        url: url.redacted(),
        reason,
    };
    let mut u = ::url::Url::parse(url.expose()).map_err(|e| invalid(e.to_string()))?;
    let mut schema = None;
    let mut pool_max = 8u32;
    let mut connect_timeout = Duration::from_secs(5);
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "schema" => {
                let ok = !v.is_empty()
                    && v.len() <= 63
                    && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !v.starts_with(|c: char| c.is_ascii_digit());
                if !ok {
                    return Err(invalid(format!(
                        "schema {v:?}: use letters, digits and _ (at most 63, not starting with a digit)"
                    )));
                }
                schema = Some(v.to_ascii_lowercase());
            }
            "pool_max" => {
                pool_max = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid(format!("pool_max {v:?}: expected a positive integer"))
                })?
            }
            "connect_timeout" => {
                connect_timeout =
                    super::super::url::seconds_param("connect_timeout", &v).map_err(invalid)?
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if kept.is_empty() {
        u.set_query(None);
    } else {
        u.query_pairs_mut().clear().extend_pairs(kept);
    }
    // sqlx only knows the `postgres`/`postgresql` schemes.
    let mut options = PgConnectOptions::from_str(u.as_str()).map_err(|e| invalid(e.to_string()))?;
    if let Some(s) = &schema {
        options = options.options([("search_path", s.as_str())]);
    }
    // The saga-list queries' best plan depends on their values (a status
    // that is rare or common, a cursor near the start or the end): they run
    // as unnamed statements, planned afresh each time. Lookups by id keep
    // PostgreSQL's cached plans (forcing custom plans on every query cost
    // ~0.1 ms of planning per call).
    options = options.options([("jit", "off")]);
    options = options.application_name("sagascope");
    Ok(ParsedUrl {
        options,
        schema,
        pool_max,
        connect_timeout,
    })
}
