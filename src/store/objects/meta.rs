//! Records beside the snapshots (audit events, holds, job progress): one
//! object per record, `sagascope/meta/{kind}/{key}.json`, kind and key
//! each one percent-encoded segment. Inserting is a create-only write
//! (S3 `If-None-Match: *`; the folder's create under its lock), so racing
//! inserters see exactly one winner. sagaz never lists `sagascope/`.

use futures::StreamExt;
use serde_json::Value;

use super::conn::PutMeta;
use super::schema::{compact, encode_segment};
use super::*;

const META: &str = "sagascope/meta/";
const EXT: &str = ".json";

/// The name [`encode_segment`] made, decoded; `None` when it is not one.
fn decode_segment(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl ObjectStore {
    fn meta_dir(kind: &str) -> String {
        format!("{META}{}/", encode_segment(kind))
    }

    fn meta_key(kind: &str, key: &str) -> String {
        format!("{}{}{EXT}", Self::meta_dir(kind), encode_segment(key))
    }

    fn meta_body(&self, kind: &str, key: &str, value: &Value) -> StoreResult<Vec<u8>> {
        if key.is_empty() || kind.is_empty() {
            return Err(StoreError::Unstorable {
                backend: self.backend(),
                what: format!("record {kind:?}/{key:?}"),
                reason: "kinds and keys must not be empty".into(),
            });
        }
        Ok(compact(value))
    }

    fn meta_value(&self, name: &str, bytes: &[u8]) -> StoreResult<Value> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            entry: self.bad(name, None, e),
        })
    }

    pub(super) async fn meta_put(&self, kind: &str, key: &str, value: &Value) -> StoreResult<()> {
        let body = self.meta_body(kind, key, value)?;
        let meta = PutMeta {
            content_type: Some("application/json"),
            ..PutMeta::default()
        };
        self.driver
            .put(&Self::meta_key(kind, key), body, &meta)
            .await
    }

    pub(super) async fn meta_insert(
        &self,
        kind: &str,
        key: &str,
        value: &Value,
    ) -> StoreResult<bool> {
        let body = self.meta_body(kind, key, value)?;
        let meta = PutMeta {
            content_type: Some("application/json"),
            ..PutMeta::default()
        };
        Ok(self
            .driver
            .put_if(&Self::meta_key(kind, key), body, None, &meta)
            .await?
            .is_some())
    }

    pub(super) async fn meta_get(&self, kind: &str, key: &str) -> StoreResult<Option<Value>> {
        let name = Self::meta_key(kind, key);
        match self.driver.get(&name).await? {
            Some(obj) => self.meta_value(&name, &obj.bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(super) async fn meta_list(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Value)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let dir = Self::meta_dir(kind);
        // Encoded names do not sort as the keys do (`%3A` before `0`), so
        // the keys are decoded and sorted here.
        let mut keys: Vec<(String, String)> = self
            .driver
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|l| {
                let seg = l.key.strip_prefix(&dir)?.strip_suffix(EXT)?;
                if seg.contains('/') {
                    return None;
                }
                Some((decode_segment(seg)?, l.key))
            })
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .collect();
        keys.sort();
        keys.truncate(limit);
        let reads = keys.into_iter().map(|(k, name)| async move {
            let got = self.driver.get(&name).await?;
            Ok::<_, StoreError>(match got {
                Some(obj) => Some((k, self.meta_value(&name, &obj.bytes)?)),
                // Deleted between the listing and the read.
                None => None,
            })
        });
        let got = futures::stream::iter(reads)
            .buffered(PARALLEL)
            .collect::<Vec<_>>()
            .await;
        let mut out = Vec::with_capacity(got.len());
        for r in got {
            if let Some(kv) = r? {
                out.push(kv);
            }
        }
        Ok(out)
    }

    pub(super) async fn meta_delete(&self, kind: &str, key: &str) -> StoreResult<bool> {
        let name = Self::meta_key(kind, key);
        if self.driver.get(&name).await?.is_none() {
            return Ok(false);
        }
        self.driver.delete(&name).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_decode_to_the_keys_they_came_from() {
        for k in ["00000000000000000001-abc", "a:b c/é", ".hidden", "%25"] {
            assert_eq!(decode_segment(&encode_segment(k)).as_deref(), Some(k));
        }
    }
}
