//! The `sqlite://` URL: the file it names.

use std::path::PathBuf;

use super::*;

/// The file a `sqlite://` URL names.
pub fn path_from_url(url: &StoreUrl) -> StoreResult<PathBuf> {
    let raw = url.expose();
    let rest = raw
        .split_once("://")
        .map(|(_, r)| r)
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    let rest = rest.split('?').next().unwrap_or_default();
    if rest.is_empty() {
        return Err(StoreError::InvalidUrl {
            url: url.redacted(),
            reason: "no file path; use sqlite:///absolute/path.db or sqlite://relative.db".into(),
        });
    }
    Ok(PathBuf::from(rest))
}
