//! Records beside the snapshots (audit events, holds, job progress): per
//! kind, a hash `P sagascope:meta:{kind}:records` (key → JSON) and a sorted
//! set `P sagascope:meta:{kind}:keys` (every score 0, so `ZRANGEBYLEX`
//! walks keys in byte order). Both names share everything up to the `}`
//! closing the kind, so they hash to one Cluster slot whatever the prefix
//! holds, and one script updates both at once. sagaz never reads them.

use ::redis::Value as RValue;
use serde_json::Value;

use super::conn::parse_value;
use super::*;

/// Adds the record unless the key exists (`ARGV[3]` = "1") or in any case;
/// returns 1 when it wrote.
const PUT: &str = r#"
if ARGV[3] == "1" then
  if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"#;

const DELETE: &str = r#"
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
"#;

fn unstorable(kind: &str, key: &str, reason: String) -> StoreError {
    StoreError::Unstorable {
        backend: BACKEND,
        what: format!("record {kind}/{key}"),
        reason,
    }
}

impl RedisStore {
    fn meta_keys(&self, kind: &str) -> (String, String) {
        let base = format!("{}sagascope:meta:{{{kind}}}", self.prefix);
        (format!("{base}:records"), format!("{base}:keys"))
    }

    async fn meta_write(
        &self,
        kind: &str,
        key: &str,
        value: &Value,
        only_new: bool,
    ) -> StoreResult<bool> {
        let text =
            serde_json::to_string(value).map_err(|e| unstorable(kind, key, e.to_string()))?;
        let (records, keys) = self.meta_keys(kind);
        let mut c = ::redis::cmd("EVAL");
        c.arg(PUT)
            .arg(2)
            .arg(records)
            .arg(keys)
            .arg(key)
            .arg(text)
            .arg(if only_new { "1" } else { "0" });
        let wrote: i64 = self.cmd(c).await?;
        Ok(wrote == 1)
    }

    pub(super) async fn meta_put(&self, kind: &str, key: &str, value: &Value) -> StoreResult<()> {
        self.meta_write(kind, key, value, false).await.map(drop)
    }

    pub(super) async fn meta_insert(
        &self,
        kind: &str,
        key: &str,
        value: &Value,
    ) -> StoreResult<bool> {
        self.meta_write(kind, key, value, true).await
    }

    fn meta_decode(kind: &str, key: &str, raw: &[u8]) -> StoreResult<Value> {
        serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
            entry: BadEntry {
                key: format!("sagascope:meta:{kind}/{key}"),
                saga_id: None,
                error: e.to_string(),
            },
        })
    }

    pub(super) async fn meta_get(&self, kind: &str, key: &str) -> StoreResult<Option<Value>> {
        let (records, _) = self.meta_keys(kind);
        let raw: Option<Vec<u8>> = self
            .cmd(::redis::cmd("HGET").arg(records).arg(key).clone())
            .await?;
        raw.map(|r| Self::meta_decode(kind, key, &r)).transpose()
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
        let (records, keys) = self.meta_keys(kind);
        let min = match after {
            Some(a) => format!("({a}"),
            None => "-".to_string(),
        };
        let names: Vec<String> = self
            .cmd(
                ::redis::cmd("ZRANGEBYLEX")
                    .arg(&keys)
                    .arg(min)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .clone(),
            )
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = ::redis::cmd("HMGET");
        c.arg(records);
        for n in &names {
            c.arg(n);
        }
        let reply: RValue = self.cmd(c).await?;
        let values: Vec<Option<Vec<u8>>> = parse_value(reply)?;
        names
            .into_iter()
            .zip(values)
            // A key whose record is gone (deleted between the two reads).
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .map(|(k, v)| Self::meta_decode(kind, &k, &v).map(|v| (k, v)))
            .collect()
    }

    pub(super) async fn meta_delete(&self, kind: &str, key: &str) -> StoreResult<bool> {
        let (records, keys) = self.meta_keys(kind);
        let mut c = ::redis::cmd("EVAL");
        c.arg(DELETE).arg(2).arg(records).arg(keys).arg(key);
        let n: i64 = self.cmd(c).await?;
        Ok(n > 0)
    }
}
