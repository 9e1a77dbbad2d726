//! `redis://`, `rediss://` and Redis Cluster: sagaz's keys, plus a saga
//! index of sagascope's own so browsing never SCANs.
//!
//! # sagaz's layout (FORMATS.md §2), kept exactly
//!
//! With prefix `P` (default `snapshot:`, URL parameter `prefix=`):
//! `P{snapshot_id}` holds the snapshot JSON (Python `json.dumps` layout), in
//! one zstd frame unless compression is off; `P saga:{saga_id}:index` is a
//! sorted set of snapshot ids scored by `created_at` in float epoch seconds;
//! `P replay:{replay_id}` and `P saga:{saga_id}:replays` are the same for
//! replay logs. Values are read by sniffing the zstd magic, so data written
//! with compression on or off both read. A snapshot key gets a TTL at its
//! `retention_until` (sagaz's `EXPIRE`); one whose retention has already
//! passed is written without a TTL and left to [`SnapshotStore::delete_expired`],
//! so a write is never lost the moment it is made.
//!
//! # sagascope's saga index
//!
//! Keys under the same prefix, which sagaz never reads:
//!
//! - `P sagascope:saga:{saga_id}`: a hash with the saga's newest snapshot
//!   (`last_us`, `snapshot_id`, `saga_name`, `status`, `step`,
//!   `step_index`). It is the authority: it is only replaced by a newer
//!   snapshot (a compare-and-set script on that one key), so concurrent
//!   writers of one saga converge on the newest;
//! - `P sagascope:sagas` and `P sagascope:status:{status}`: sorted sets of
//!   saga ids scored by the newest snapshot's time in integer microseconds
//!   (exact in a double), the orders the saga list walks;
//! - `P sagascope:retention`: `"{snapshot_id} {saga_id}"` scored by
//!   `retention_until`, so `delete_expired` finds expired snapshots without
//!   a scan; `P sagascope:replay-of:{new_saga_id}` for
//!   [`SnapshotStore::replay_producing`];
//! - `P sagascope:index-state`: present once the index covers everything
//!   under the prefix (set by [`RedisStore::reindex`], or by the first write
//!   into a prefix that holds no sagaz data yet).
//!
//! In a Cluster these keys live in different slots, so no script spans them.
//! Every write updates them in steps that are each idempotent (write the
//! snapshot, add it to the saga's set, set the hash if newer, then move the
//! saga in the sorted sets), and every read checks a sorted-set entry
//! against the hash before using it. The limits: a writer that dies between
//! steps, or a delete racing a save of the same saga, can leave a saga
//! listed under an old time or status until its next write or a `reindex`;
//! such entries are skipped (never shown wrong) and repaired when met.
//! Data that sagaz writes after the index was built is not in it: a saga
//! already listed is refreshed when its page is read (its own set shows a
//! newer snapshot), a saga sagaz started since is missing until `reindex`.
//! The list says so (`index_warning`) when the index was never built.
//!
//! As in sagaz, a saga's set keeps the ids of snapshots Redis has expired;
//! reads skip them, and `count_snapshots` (`ZCARD`) still counts them.
//!
//! The first write of a process into a prefix whose index-state marker is
//! missing SCANs once for sagaz keys (to tell a fresh prefix from one that
//! needs `reindex`); after the marker exists, writes check one key.
//!
//! # Round trips
//!
//! Reads are batched: `MGET` for values (the Cluster client splits it by
//! slot), a pipeline (one node) or concurrent commands on the multiplexed
//! connection (Cluster) for the rest, so a page of 50 sagas costs a handful
//! of round trips, not one per snapshot as sagaz's reader does.
//!
//! # URLs
//!
//! `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS), and for a
//! Cluster `redis+cluster://host:port,host:port,…` (or `rediss+cluster://`,
//! or any of the single-node forms with `cluster=true`). Parameters:
//! `prefix=` (default `snapshot:`), `compression=zstd|none` (used when
//! [`OpenOptions::compression`] is unset; default zstd like sagaz),
//! `connect_timeout=SECONDS` (default 5). Other parameters go to the driver.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{Cmd, FromRedisValue, Value as RValue};
use async_trait::async_trait;
use futures::future::join_all;

use crate::model::{ReplayLog, SagaStatus, SagaSummary, Snapshot, Timestamp};

use super::codec::{Codec, Compression, JsonStyle};
use super::*;

const BACKEND: &str = "redis";

/// sagaz's default key prefix.
pub const DEFAULT_PREFIX: &str = "snapshot:";

/// Commands per pipeline / keys per MGET.
const BATCH: usize = 500;

/// Sets the saga's summary hash unless it already holds a newer snapshot.
/// KEYS[1] = hash; ARGV = last_us, snapshot_id, saga_name, status, step,
/// step_index, force ("1" = set even if older: after a delete).
/// Returns {applied (0/1), previous status or ""}.
const SUMMARY_CAS: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'last_us', 'snapshot_id', 'status')
local old_status = cur[3] or ''
if ARGV[7] ~= '1' and cur[1] then
  local c = tonumber(cur[1])
  local n = tonumber(ARGV[1])
  if c > n or (c == n and cur[2] > ARGV[2]) then
    return {0, old_status}
  end
end
redis.call('HSET', KEYS[1], 'last_us', ARGV[1], 'snapshot_id', ARGV[2], 'saga_name', ARGV[3],
  'status', ARGV[4], 'step', ARGV[5], 'step_index', ARGV[6])
return {1, old_status}
"#;

/// A whole snapshot save on one server, in one round trip (the Cluster
/// path can't: these keys live in different slots). Writes sagaz's value
/// and sorted set, the retention entry, and moves sagascope's saga summary
/// forward when this snapshot is the saga's newest (the compare-and-set of
/// `SUMMARY_CAS`, with the sorted sets that follow from it).
/// KEYS: 1 value, 2 saga's snapshot set, 3 retention set, 4 summary hash,
/// 5 sagas set, 6 the new status's set.
/// ARGV: 1 encoded value, 2 PXAT ms or "", 3 set score (epoch seconds),
/// 4 snapshot_id, 5 retention member, 6 retention score or "", 7 last_us,
/// 8 saga_name, 9 status, 10 step, 11 step_index, 12 saga_id, 13 prefix of
/// status set keys.
/// Returns {previous value or nil, 1 when the summary needs a recompute
/// (no summary yet and an older writer's snapshot is newer)}.
const SAVE_SINGLE: &str = r#"
local old
if ARGV[2] ~= '' then
  old = redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'GET')
else
  old = redis.call('SET', KEYS[1], ARGV[1], 'GET')
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[5])
else
  redis.call('ZREM', KEYS[3], ARGV[5])
end
local cur = redis.call('HMGET', KEYS[4], 'last_us', 'snapshot_id', 'status')
if cur[1] then
  local c = tonumber(cur[1])
  local n = tonumber(ARGV[7])
  if c > n or (c == n and cur[2] > ARGV[4]) then
    return {old, 0}
  end
else
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0)
  if top[1] ~= ARGV[4] then
    return {old, 1}
  end
end
redis.call('HSET', KEYS[4], 'last_us', ARGV[7], 'snapshot_id', ARGV[4], 'saga_name', ARGV[8],
  'status', ARGV[9], 'step', ARGV[10], 'step_index', ARGV[11])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[12])
redis.call('ZADD', KEYS[6], ARGV[7], ARGV[12])
if cur[3] and cur[3] ~= ARGV[9] then
  redis.call('ZREM', ARGV[13] .. cur[3], ARGV[12])
end
return {old, 0}
"#;

/// A page of a saga's snapshots in one round trip on one server: the ids
/// from its sorted set and their values. KEYS[1] = the set; ARGV = command
/// (ZRANGEBYSCORE or ZREVRANGEBYSCORE), the two bounds in its order,
/// offset, count, key prefix. Returns {ids, values}.
const RANGE_VALUES: &str = r#"
local ids = redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3], 'LIMIT', ARGV[4], ARGV[5])
if #ids == 0 then return {ids, {}} end
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[6] .. id end
return {ids, redis.call('MGET', unpack(keys))}
"#;

/// Takes or renews a lock. KEYS[1] = lock; ARGV = owner, ttl ms.
/// Returns {1} when taken, {0, holder, pttl} when held by another.
const LOCK_TAKE: &str = r#"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, cur, redis.call('PTTL', KEYS[1])}
"#;

/// Deletes a lock only if `owner` holds it.
const LOCK_RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// One connection, to a single server or a Cluster. Both are multiplexed
/// and cheap to clone.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ::redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> ::redis::RedisFuture<'a, RValue> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> ::redis::RedisFuture<'a, Vec<RValue>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// What a `redis://` URL says, split from the driver's part.
#[derive(Debug, Clone, PartialEq)]
struct ParsedUrl {
    /// Driver URLs: one for a single server, the seed nodes for a Cluster.
    nodes: Vec<String>,
    cluster: bool,
    prefix: String,
    compression: Option<Compression>,
    connect_timeout: Duration,
}

/// The URL checked as [`open`](super::open) would, without connecting.
pub(crate) fn check_url(url: &StoreUrl) -> StoreResult<()> {
    parse_url(url).map(drop)
}

fn parse_url(url: &StoreUrl) -> StoreResult<ParsedUrl> {
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
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| *n > 0.0 && n.is_finite())
                    .ok_or_else(|| invalid(format!("connect_timeout {v:?}: expected seconds")))?;
                connect_timeout = Duration::from_secs_f64(secs);
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

/// Escapes glob characters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The summary fields kept in a saga's hash.
#[derive(Debug, Clone, PartialEq)]
struct Head {
    last_us: i64,
    snapshot_id: String,
    saga_name: String,
    status: String,
    step: String,
    step_index: i64,
}

impl Head {
    fn of(s: &Snapshot) -> Self {
        Head {
            last_us: s.created_at.as_micros(),
            snapshot_id: s.snapshot_id.clone(),
            saga_name: s.saga_name.clone(),
            status: s.status.as_str().to_string(),
            step: s.step_name.clone(),
            step_index: s.step_index,
        }
    }

    fn from_hash(h: &HashMap<String, String>) -> Option<Self> {
        Some(Head {
            last_us: h.get("last_us")?.parse().ok()?,
            snapshot_id: h.get("snapshot_id")?.clone(),
            saga_name: h.get("saga_name")?.clone(),
            status: h.get("status")?.clone(),
            step: h.get("step")?.clone(),
            step_index: h.get("step_index")?.parse().ok()?,
        })
    }
}

/// The Redis store (one server or a Cluster).
pub struct RedisStore {
    conn: Conn,
    location: String,
    prefix: String,
    codec: Codec,
    readonly: bool,
    /// Set once this process has made sure the index-state marker is right.
    marker_checked: AtomicBool,
    /// `SAVE_SINGLE`'s and `RANGE_VALUES`'s hashes for `EVALSHA`, loaded on
    /// first use.
    save_sha: tokio::sync::OnceCell<String>,
    range_sha: tokio::sync::OnceCell<String>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.location)
            .field("prefix", &self.prefix)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .field("compression", &self.codec.compression)
            .finish()
    }
}

fn map_err(location: &str, e: ::redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        StoreError::Unreachable {
            url: location.to_string(),
            reason: e.to_string().lines().next().unwrap_or_default().to_string(),
        }
    } else {
        StoreError::backend(BACKEND, e)
    }
}

fn parse_value<T: FromRedisValue>(v: RValue) -> StoreResult<T> {
    ::redis::from_redis_value(v)
        .map_err(|e| StoreError::backend(BACKEND, format!("unexpected reply: {e}")))
}

fn micros_of_score(score: f64) -> i64 {
    (score * 1_000_000.0).round() as i64
}

impl RedisStore {
    /// Connects to the server or Cluster a URL names.
    pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Self> {
        let parsed = parse_url(url)?;
        let location = url.redacted();
        let compression = match opts.compression.or(parsed.compression) {
            None => Compression::zstd(),
            Some(Compression::Gzip { .. }) => {
                return Err(StoreError::Unsupported {
                    backend: BACKEND,
                    operation:
                        "gzip compression (sagaz's Redis store reads zstd or plain JSON only)",
                })
            }
            Some(c) => c,
        };
        let unreachable = |reason: String| StoreError::Unreachable {
            url: location.clone(),
            reason,
        };
        if parsed.nodes.iter().any(|n| n.starts_with("rediss:")) {
            // rustls needs one process-wide crypto provider; with several
            // compiled in (other backends bring their own) it cannot pick.
            // An application that installed one keeps it.
            if rustls::crypto::CryptoProvider::get_default().is_none() {
                let _ = rustls::crypto::ring::default_provider().install_default();
            }
        }
        let timeout = parsed.connect_timeout;
        let connect = async {
            if parsed.cluster {
                let client = ::redis::cluster::ClusterClientBuilder::new(parsed.nodes.clone())
                    .connection_timeout(timeout)
                    .response_timeout(Duration::from_secs(30))
                    .retries(2)
                    .build()
                    .map_err(|e| StoreError::InvalidUrl {
                        url: location.clone(),
                        reason: e.to_string(),
                    })?;
                let c = client
                    .get_async_connection()
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                Ok(Conn::Cluster(c))
            } else {
                let node = parsed.nodes.first().cloned().unwrap_or_default();
                let client =
                    ::redis::Client::open(node.as_str()).map_err(|e| StoreError::InvalidUrl {
                        url: location.clone(),
                        reason: e.to_string(),
                    })?;
                let config = ::redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(Duration::from_secs(30)))
                    .set_number_of_retries(1);
                let c = ConnectionManager::new_with_config(client, config)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                Ok(Conn::Single(c))
            }
        };
        let conn = tokio::time::timeout(timeout + Duration::from_secs(1), connect)
            .await
            .map_err(|_| unreachable(format!("no answer within {:.0?}", timeout)))??;
        let store = RedisStore {
            conn,
            location,
            prefix: parsed.prefix,
            codec: Codec::new(compression, JsonStyle::Python),
            readonly: opts.readonly,
            marker_checked: AtomicBool::new(false),
            save_sha: tokio::sync::OnceCell::new(),
            range_sha: tokio::sync::OnceCell::new(),
        };
        // Fail now, with a clear message, rather than on first use.
        store.cmd::<String>(::redis::cmd("PING")).await?;
        Ok(store)
    }

    /// The key prefix (sagaz's `key_prefix`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this store talks to a Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// The compression used for writes.
    pub fn compression(&self) -> Compression {
        self.codec.compression
    }

    // ---- key names -------------------------------------------------------

    /// `P{snapshot_id}`: a snapshot's value (sagaz).
    pub fn snapshot_key(&self, snapshot_id: &str) -> String {
        format!("{}{snapshot_id}", self.prefix)
    }
    /// `P saga:{saga_id}:index`: a saga's snapshots by time (sagaz).
    pub fn saga_index_key(&self, saga_id: &str) -> String {
        format!("{}saga:{saga_id}:index", self.prefix)
    }
    /// `P replay:{replay_id}` (sagaz).
    pub fn replay_key(&self, replay_id: &str) -> String {
        format!("{}replay:{replay_id}", self.prefix)
    }
    /// `P saga:{saga_id}:replays` (sagaz).
    pub fn replay_index_key(&self, saga_id: &str) -> String {
        format!("{}saga:{saga_id}:replays", self.prefix)
    }
    /// sagascope's list of sagas by newest activity.
    pub fn sagas_key(&self) -> String {
        format!("{}sagascope:sagas", self.prefix)
    }
    fn status_key(&self, status: &str) -> String {
        format!("{}sagascope:status:{status}", self.prefix)
    }
    fn head_key(&self, saga_id: &str) -> String {
        format!("{}sagascope:saga:{saga_id}", self.prefix)
    }
    fn retention_key(&self) -> String {
        format!("{}sagascope:retention", self.prefix)
    }
    fn replay_of_key(&self, new_saga_id: &str) -> String {
        format!("{}sagascope:replay-of:{new_saga_id}", self.prefix)
    }
    /// Present once the saga index covers everything under the prefix.
    pub fn index_state_key(&self) -> String {
        format!("{}sagascope:index-state", self.prefix)
    }
    fn lock_key(&self, name: &str) -> String {
        format!("{}sagascope:lock:{name}", self.prefix)
    }

    // ---- transport -------------------------------------------------------

    async fn cmd<T: FromRedisValue>(&self, c: Cmd) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        c.query_async(&mut conn)
            .await
            .map_err(|e| map_err(&self.location, e))
    }

    /// Runs independent commands in as few round trips as the topology
    /// allows: pipelines on one server, concurrent requests on a Cluster
    /// (each routed to its slot's node over the multiplexed connections).
    async fn many(&self, cmds: Vec<Cmd>) -> StoreResult<Vec<RValue>> {
        let mut out = Vec::with_capacity(cmds.len());
        match &self.conn {
            Conn::Single(_) => {
                for chunk in cmds.chunks(BATCH) {
                    let mut p = ::redis::pipe();
                    for c in chunk {
                        p.add_command(c.clone());
                    }
                    let mut conn = self.conn.clone();
                    let vals: Vec<RValue> = p
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| map_err(&self.location, e))?;
                    out.extend(vals);
                }
            }
            Conn::Cluster(_) => {
                for chunk in cmds.chunks(BATCH) {
                    let futs = chunk.iter().map(|c| {
                        let mut conn = self.conn.clone();
                        async move { c.query_async::<RValue>(&mut conn).await }
                    });
                    for r in join_all(futs).await {
                        out.push(r.map_err(|e| map_err(&self.location, e))?);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Values of many keys, `None` where missing. MGET per batch; the
    /// Cluster client splits it by slot.
    async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let mut c = ::redis::cmd("MGET");
            for k in chunk {
                c.arg(k);
            }
            let vals: Vec<Option<Vec<u8>>> = self.cmd(c).await?;
            out.extend(vals);
        }
        Ok(out)
    }

    /// The addresses of every master (one entry for a single server).
    async fn masters(&self) -> StoreResult<Vec<(String, u16)>> {
        let Conn::Cluster(_) = &self.conn else {
            return Ok(Vec::new());
        };
        let slots: RValue = self
            .cmd(::redis::cmd("CLUSTER").arg("SLOTS").clone())
            .await?;
        let mut masters: Vec<(String, u16)> = Vec::new();
        let ranges: Vec<RValue> = parse_value(slots)?;
        for r in ranges {
            let parts: Vec<RValue> = parse_value(r)?;
            if let Some(master) = parts.into_iter().nth(2) {
                let node: Vec<RValue> = parse_value(master)?;
                let mut it = node.into_iter();
                let host: String = it.next().map(parse_value).transpose()?.unwrap_or_default();
                let port: i64 = it.next().map(parse_value).transpose()?.unwrap_or_default();
                let addr = (host, port as u16);
                if !masters.contains(&addr) {
                    masters.push(addr);
                }
            }
        }
        Ok(masters)
    }

    /// All keys matching a pattern, on every master. Used only by
    /// `reindex` and the one-time check of a new prefix, never by browsing.
    /// With `stop_at_first`, returns as soon as one key is found.
    async fn scan_keys(&self, pattern: &str, stop_at_first: bool) -> StoreResult<Vec<String>> {
        let mut found = Vec::new();
        let targets: Vec<Option<(String, u16)>> = match &self.conn {
            Conn::Single(_) => vec![None],
            Conn::Cluster(_) => self.masters().await?.into_iter().map(Some).collect(),
        };
        for target in targets {
            let mut cursor: u64 = 0;
            loop {
                let mut c = ::redis::cmd("SCAN");
                c.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let reply: RValue = match (&self.conn, &target) {
                    (Conn::Cluster(cc), Some((host, port))) => {
                        let mut cc = cc.clone();
                        cc.route_command(
                            c,
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                                host: host.clone(),
                                port: *port,
                            }),
                        )
                        .await
                        .map_err(|e| map_err(&self.location, e))?
                    }
                    _ => self.cmd(c).await?,
                };
                let (next, keys): (u64, Vec<String>) = parse_value(reply)?;
                found.extend(keys);
                if stop_at_first && !found.is_empty() {
                    return Ok(found);
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(found)
    }

    // ---- decoding --------------------------------------------------------

    fn decode_snapshot(
        &self,
        key: &str,
        saga_hint: Option<&str>,
        raw: &[u8],
    ) -> Result<Snapshot, BadEntry> {
        let bad = |e: String| BadEntry {
            key: key.to_string(),
            saga_id: saga_hint.map(str::to_string),
            error: e,
        };
        let v = self.codec.decode(raw).map_err(|e| bad(e.to_string()))?;
        Snapshot::from_json(v).map_err(|e| bad(e.to_string()))
    }

    fn decode_replay(
        &self,
        key: &str,
        saga_hint: Option<&str>,
        raw: &[u8],
    ) -> Result<ReplayLog, BadEntry> {
        let bad = |e: String| BadEntry {
            key: key.to_string(),
            saga_id: saga_hint.map(str::to_string),
            error: e,
        };
        let v = self.codec.decode(raw).map_err(|e| bad(e.to_string()))?;
        ReplayLog::from_json(v).map_err(|e| bad(e.to_string()))
    }

    /// A page of a saga's sorted set by score (`LIMIT offset count`, newest
    /// first for `Desc`) and the values of its ids: one script on one
    /// server, two round trips on a Cluster (the values live in other slots).
    async fn range_values(
        &self,
        key: &str,
        order: Order,
        lo: &str,
        hi: &str,
        offset: usize,
        count: usize,
    ) -> StoreResult<(Vec<String>, Vec<Option<Vec<u8>>>)> {
        let (cmd, a, b) = match order {
            Order::Asc => ("ZRANGEBYSCORE", lo, hi),
            Order::Desc => ("ZREVRANGEBYSCORE", hi, lo),
        };
        if matches!(self.conn, Conn::Single(_)) {
            let sha = self.script_sha(&self.range_sha, RANGE_VALUES).await?;
            let mut e = ::redis::cmd("EVALSHA");
            e.arg(sha)
                .arg(1)
                .arg(key)
                .arg(cmd)
                .arg(a)
                .arg(b)
                .arg(offset)
                .arg(count)
                .arg(&self.prefix);
            return self.eval_sha(e, RANGE_VALUES).await;
        }
        let mut c = ::redis::cmd(cmd);
        c.arg(key).arg(a).arg(b).arg("LIMIT").arg(offset).arg(count);
        let ids: Vec<String> = self.cmd(c).await?;
        let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
        let vals = self.mget(&keys).await?;
        Ok((ids, vals))
    }

    /// The `step_name` of an encoded snapshot, read without building the
    /// rest of it (None when it can't be read: the full decode reports why).
    fn peek_step(&self, raw: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Peek {
            step_name: String,
        }
        let bytes = self.codec.decompress(raw).ok()?;
        serde_json::from_slice::<Peek>(&bytes)
            .ok()
            .map(|p| p.step_name)
    }

    /// The newest snapshot of one step: walks the saga's set newest first in
    /// growing pages, peeking at each value's step and decoding only the
    /// answer. Unreadable entries are passed over (another step's, maybe).
    async fn latest_for_step(
        &self,
        index_key: &str,
        saga_id: &str,
        step: &str,
    ) -> StoreResult<Option<Snapshot>> {
        let mut start = 0usize;
        let mut batch = 16usize;
        loop {
            let (ids, vals) = self
                .range_values(index_key, Order::Desc, "-inf", "+inf", start, batch)
                .await?;
            let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
            for (key, v) in keys.iter().zip(vals) {
                let Some(raw) = v else { continue };
                if self.peek_step(&raw).is_some_and(|s| s != step) {
                    continue;
                }
                match self.decode_snapshot(key, Some(saga_id), &raw) {
                    Ok(s) if s.step_name == step => return Ok(Some(s)),
                    _ => {}
                }
            }
            if ids.len() < batch {
                return Ok(None);
            }
            start += batch;
            batch = (batch * 4).min(BATCH);
        }
    }

    /// Reads snapshots by id, in the given order, skipping ids whose value is
    /// gone (expired: sagaz leaves them in its sets).
    async fn fetch_snapshots(
        &self,
        saga_id: Option<&str>,
        ids: &[String],
    ) -> StoreResult<Listing<Snapshot>> {
        let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
        let vals = self.mget(&keys).await?;
        Ok(self.decode_values(saga_id, &keys, vals))
    }

    /// Decodes fetched values (on every core when there are many), skipping
    /// missing ones.
    fn decode_values(
        &self,
        saga_id: Option<&str>,
        keys: &[String],
        vals: Vec<Option<Vec<u8>>>,
    ) -> Listing<Snapshot> {
        let found: Vec<(&String, Vec<u8>)> = keys
            .iter()
            .zip(vals)
            .filter_map(|(k, v)| v.map(|raw| (k, raw)))
            .collect();
        let mut out = Listing::default();
        for r in par_map(&found, |(key, raw)| self.decode_snapshot(key, saga_id, raw)) {
            match r {
                Ok(s) => out.items.push(s),
                Err(b) => out.bad.push(b),
            }
        }
        out
    }

    /// A saga's snapshot values in index order, each decoded or named as
    /// bad; `None` for an id whose value is gone (sagaz leaves expired ids
    /// in its sets). A key of the wrong type reads as nothing through MGET:
    /// those are told apart from gone ones with TYPE, and a value holding
    /// another saga's snapshot is bad here, not skipped.
    async fn entries_in_order(
        &self,
        saga_id: &str,
        ids: &[String],
        vals: Vec<Option<Vec<u8>>>,
    ) -> StoreResult<Vec<Option<Result<Snapshot, BadEntry>>>> {
        let keys: Vec<String> = ids.iter().map(|id| self.snapshot_key(id)).collect();
        let found: Vec<(usize, Vec<u8>)> = vals
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|raw| (i, raw)))
            .collect();
        let mut out: Vec<Option<Result<Snapshot, BadEntry>>> = vec![None; keys.len()];
        let decoded = par_map(&found, |(i, raw)| {
            let key = &keys[*i];
            self.decode_snapshot(key, Some(saga_id), raw).and_then(|s| {
                if s.saga_id == saga_id {
                    Ok(s)
                } else {
                    Err(BadEntry {
                        key: key.clone(),
                        saga_id: Some(saga_id.to_string()),
                        error: format!(
                            "listed under saga {saga_id} but holds a snapshot of saga {}",
                            s.saga_id
                        ),
                    })
                }
            })
        });
        for ((i, _), r) in found.iter().zip(decoded) {
            out[*i] = Some(r);
        }
        let missing: Vec<usize> = (0..keys.len()).filter(|i| out[*i].is_none()).collect();
        if !missing.is_empty() {
            let types = self
                .many(
                    missing
                        .iter()
                        .map(|i| ::redis::cmd("TYPE").arg(&keys[*i]).clone())
                        .collect(),
                )
                .await?;
            for (i, t) in missing.into_iter().zip(types) {
                let t: String = parse_value(t).unwrap_or_default();
                if t != "none" && !t.is_empty() {
                    out[i] = Some(Err(BadEntry {
                        key: keys[i].clone(),
                        saga_id: Some(saga_id.to_string()),
                        error: format!("not a snapshot value: the key holds a Redis {t}"),
                    }));
                }
            }
        }
        Ok(out)
    }

    // ---- the saga index --------------------------------------------------

    /// Makes sure the index-state marker tells the truth before the first
    /// write of this process: a prefix with no sagaz data yet is fully
    /// indexed by sagascope's own writes; one with data needs `reindex`.
    async fn check_marker_before_write(&self) -> StoreResult<()> {
        if self.marker_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let exists: bool = self
            .cmd(::redis::cmd("EXISTS").arg(self.index_state_key()).clone())
            .await?;
        if !exists {
            let pattern = format!("{}saga:*:index", glob_escape(&self.prefix));
            let foreign = self.scan_keys(&pattern, true).await?;
            if foreign.is_empty() {
                self.mark_index_complete("first write").await?;
            }
        }
        self.marker_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn mark_index_complete(&self, by: &str) -> StoreResult<()> {
        let mut c = ::redis::cmd("HSET");
        c.arg(self.index_state_key())
            .arg("state")
            .arg("complete")
            .arg("built_at")
            .arg(Timestamp::now().to_isoformat())
            .arg("by")
            .arg(by)
            .arg("version")
            .arg(1);
        self.cmd::<i64>(c).await?;
        Ok(())
    }

    fn cas_cmd(&self, saga_id: &str, h: &Head, force: bool) -> Cmd {
        let mut c = ::redis::cmd("EVAL");
        c.arg(SUMMARY_CAS)
            .arg(1)
            .arg(self.head_key(saga_id))
            .arg(h.last_us)
            .arg(&h.snapshot_id)
            .arg(&h.saga_name)
            .arg(&h.status)
            .arg(&h.step)
            .arg(h.step_index)
            .arg(if force { "1" } else { "0" });
        c
    }

    /// Recomputes the index entries of some sagas from their sagaz sets.
    /// `known` holds snapshots just written (saves a GET). `force` replaces
    /// the hash even with an older snapshot (after deletes).
    async fn refresh_sagas(
        &self,
        sagas: &[String],
        known: &HashMap<String, Snapshot>,
        force: bool,
    ) -> StoreResult<Vec<BadEntry>> {
        let mut bad = Vec::new();
        for chunk in sagas.chunks(BATCH) {
            // The newest few ids of each saga: the newest may have expired.
            let tops = self
                .many(
                    chunk
                        .iter()
                        .map(|s| {
                            ::redis::cmd("ZREVRANGE")
                                .arg(self.saga_index_key(s))
                                .arg(0)
                                .arg(4)
                                .clone()
                        })
                        .collect(),
                )
                .await?;
            let tops: Vec<Vec<String>> = tops
                .into_iter()
                .map(parse_value)
                .collect::<StoreResult<_>>()?;
            let need: Vec<String> = tops
                .iter()
                .flatten()
                .filter(|id| !known.contains_key(*id))
                .cloned()
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let fetched = self.fetch_snapshots(None, &need).await?;
            bad.extend(fetched.bad);
            let by_id: HashMap<&str, &Snapshot> = fetched
                .items
                .iter()
                .map(|s| (s.snapshot_id.as_str(), s))
                .chain(known.iter().map(|(k, v)| (k.as_str(), v)))
                .collect();
            let mut heads: Vec<(String, Option<Head>)> = Vec::with_capacity(chunk.len());
            for (saga, ids) in chunk.iter().zip(&tops) {
                let head = ids
                    .iter()
                    .filter_map(|id| by_id.get(id.as_str()))
                    .find(|s| &s.saga_id == saga)
                    .map(|s| Head::of(s));
                heads.push((saga.clone(), head));
            }
            self.apply_heads(&heads, force).await?;
        }
        Ok(bad)
    }

    /// Writes summary hashes (compare-and-set) and moves sagas in the
    /// sorted sets to match. `None` removes a saga from the index.
    async fn apply_heads(&self, heads: &[(String, Option<Head>)], force: bool) -> StoreResult<()> {
        let mut cas = Vec::new();
        let mut gone = Vec::new();
        for (saga, head) in heads {
            match head {
                Some(h) => cas.push((saga, h, self.cas_cmd(saga, h, force))),
                None => gone.push(saga.clone()),
            }
        }
        let replies = self
            .many(cas.iter().map(|(_, _, c)| c.clone()).collect())
            .await?;
        let mut follow = Vec::new();
        for ((saga, h, _), r) in cas.iter().zip(replies) {
            let (applied, old_status): (i64, String) = parse_value(r)?;
            if applied == 0 {
                continue;
            }
            follow.push(
                ::redis::cmd("ZADD")
                    .arg(self.sagas_key())
                    .arg(h.last_us)
                    .arg(saga.as_str())
                    .clone(),
            );
            follow.push(
                ::redis::cmd("ZADD")
                    .arg(self.status_key(&h.status))
                    .arg(h.last_us)
                    .arg(saga.as_str())
                    .clone(),
            );
            if !old_status.is_empty() && old_status != h.status {
                follow.push(
                    ::redis::cmd("ZREM")
                        .arg(self.status_key(&old_status))
                        .arg(saga.as_str())
                        .clone(),
                );
            }
        }
        if !gone.is_empty() {
            let statuses = self
                .many(
                    gone.iter()
                        .map(|s| {
                            ::redis::cmd("HGET")
                                .arg(self.head_key(s))
                                .arg("status")
                                .clone()
                        })
                        .collect(),
                )
                .await?;
            for (saga, st) in gone.iter().zip(statuses) {
                let st: Option<String> = parse_value(st)?;
                if let Some(st) = st {
                    follow.push(
                        ::redis::cmd("ZREM")
                            .arg(self.status_key(&st))
                            .arg(saga)
                            .clone(),
                    );
                }
                follow.push(::redis::cmd("ZREM").arg(self.sagas_key()).arg(saga).clone());
                follow.push(::redis::cmd("DEL").arg(self.head_key(saga)).clone());
            }
        }
        self.many(follow).await?;
        Ok(())
    }

    /// Builds sagascope's saga index from what is under the prefix (data
    /// sagaz wrote, or an index left stale): SCANs `P saga:*:index` on
    /// every master, reads each saga's newest snapshot in batches, rewrites
    /// the summaries and sorted sets, drops entries of sagas that are gone,
    /// indexes replays by the saga they produced, and marks the index
    /// complete. Safe to run while others write; run it again after sagaz
    /// has written more.
    pub async fn reindex(&self) -> StoreResult<ReindexReport> {
        if self.readonly {
            return Err(StoreError::PermissionDenied {
                url: self.location.clone(),
                reason: "reindex writes sagascope's index; open the store without --readonly"
                    .into(),
            });
        }
        let start = Instant::now();
        let mut report = ReindexReport::default();
        let p = glob_escape(&self.prefix);
        let keys = self.scan_keys(&format!("{p}saga:*:index"), false).await?;
        let head = format!("{}saga:", self.prefix);
        let sagas: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(&head)?.strip_suffix(":index"))
            .map(str::to_string)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let found: HashSet<&str> = sagas.iter().map(String::as_str).collect();
        for chunk in sagas.chunks(BATCH) {
            report
                .bad
                .extend(self.refresh_sagas(chunk, &HashMap::new(), true).await?);
        }
        // Count what is indexed now, and drop sagas no longer under the prefix.
        let listed: Vec<String> = self
            .cmd(
                ::redis::cmd("ZRANGE")
                    .arg(self.sagas_key())
                    .arg(0)
                    .arg(-1)
                    .clone(),
            )
            .await?;
        let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
        report.sagas_indexed = sagas
            .iter()
            .filter(|s| listed_set.contains(s.as_str()))
            .count() as u64;
        report.sagas_empty = sagas.len() as u64 - report.sagas_indexed;
        let stale: Vec<(String, Option<Head>)> = listed
            .iter()
            .filter(|s| !found.contains(s.as_str()))
            .map(|s| (s.clone(), None))
            .collect();
        report.sagas_removed = stale.len() as u64;
        self.apply_heads(&stale, true).await?;
        // Replays sagaz wrote: index them by the saga they produced.
        let rkeys = self.scan_keys(&format!("{p}saga:*:replays"), false).await?;
        for chunk in rkeys.chunks(BATCH) {
            let ids = self
                .many(
                    chunk
                        .iter()
                        .map(|k| ::redis::cmd("ZRANGE").arg(k).arg(0).arg(-1).clone())
                        .collect(),
                )
                .await?;
            let ids: Vec<String> = ids
                .into_iter()
                .map(parse_value::<Vec<String>>)
                .collect::<StoreResult<Vec<_>>>()?
                .into_iter()
                .flatten()
                .collect();
            for ids in ids.chunks(BATCH) {
                let keys: Vec<String> = ids.iter().map(|id| self.replay_key(id)).collect();
                let vals = self.mget(&keys).await?;
                let mut sets = Vec::new();
                for (key, v) in keys.iter().zip(vals) {
                    let Some(raw) = v else { continue };
                    match self.decode_replay(key, None, &raw) {
                        Ok(l) => {
                            sets.push(
                                ::redis::cmd("SET")
                                    .arg(self.replay_of_key(&l.new_saga_id))
                                    .arg(&l.replay_id)
                                    .clone(),
                            );
                            report.replays_indexed += 1;
                        }
                        Err(b) => report.bad.push(b),
                    }
                }
                self.many(sets).await?;
            }
        }
        self.mark_index_complete("reindex").await?;
        self.marker_checked.store(true, Ordering::Relaxed);
        report.elapsed = start.elapsed();
        Ok(report)
    }

    /// Whether the index-state marker is present (false = `reindex` needed
    /// for sagaz-written data to show in the saga list).
    pub async fn index_is_built(&self) -> StoreResult<bool> {
        self.cmd(::redis::cmd("EXISTS").arg(self.index_state_key()).clone())
            .await
    }

    fn stale_index_warning(&self) -> String {
        format!(
            "sagascope's saga index for prefix {:?} has never been built, so sagas written by sagaz are missing \
             from this list; run `sagascope reindex` to build it",
            self.prefix
        )
    }

    // ---- writes ----------------------------------------------------------

    fn check_id(what: &str, id: &str) -> StoreResult<()> {
        let reserved = ["saga:", "replay:", "sagascope:"];
        if id.is_empty() || reserved.iter().any(|r| id.starts_with(r)) {
            return Err(StoreError::Unstorable {
                backend: BACKEND,
                what: format!("{what} {id:?}"),
                reason: "it would collide with sagaz's or sagascope's own keys under the prefix"
                    .into(),
            });
        }
        Ok(())
    }

    fn set_snapshot_cmd(&self, s: &Snapshot, now_ms: i64) -> Cmd {
        let mut c = ::redis::cmd("SET");
        c.arg(self.snapshot_key(&s.snapshot_id))
            .arg(self.codec.encode(&s.to_json()));
        // sagaz's EXPIRE from retention_until, as an absolute time. A time
        // already past would delete the value at once; delete_expired
        // handles those instead.
        if let Some(r) = s.retention_until {
            let ms = r.as_micros() / 1000;
            if ms > now_ms {
                c.arg("PXAT").arg(ms);
            }
        }
        c
    }

    fn retention_member(s: &Snapshot) -> String {
        format!("{} {}", s.snapshot_id, s.saga_id)
    }

    async fn write_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        for s in snapshots {
            Self::check_id("snapshot_id", &s.snapshot_id)?;
            Self::check_id("saga_id", &s.saga_id)?;
        }
        self.check_marker_before_write().await?;
        for chunk in snapshots.chunks(BATCH) {
            // Later entries win, as they would one by one.
            let mut latest: HashMap<&str, &Snapshot> = HashMap::new();
            for s in chunk {
                latest.insert(s.snapshot_id.as_str(), s);
            }
            let chunk: Vec<&Snapshot> = {
                let mut seen = HashSet::new();
                chunk
                    .iter()
                    .rev()
                    .filter(|s| seen.insert(s.snapshot_id.as_str()))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect()
            };
            if matches!(self.conn, Conn::Single(_)) {
                self.write_chunk_single(&chunk).await?;
                continue;
            }
            // A replaced snapshot may have moved to another saga.
            let keys: Vec<String> = chunk
                .iter()
                .map(|s| self.snapshot_key(&s.snapshot_id))
                .collect();
            let old = self.mget(&keys).await?;
            let mut touched: Vec<String> = Vec::new();
            let mut cmds = Vec::new();
            let now_ms = Timestamp::now().as_micros() / 1000;
            for (s, old) in chunk.iter().zip(old) {
                if let Some(raw) = old {
                    self.note_replaced(s, &raw, &mut cmds, &mut touched);
                }
                cmds.push(self.set_snapshot_cmd(s, now_ms));
                cmds.push(
                    ::redis::cmd("ZADD")
                        .arg(self.saga_index_key(&s.saga_id))
                        .arg(s.created_at.as_epoch_seconds())
                        .arg(&s.snapshot_id)
                        .clone(),
                );
                match s.retention_until {
                    Some(r) => cmds.push(
                        ::redis::cmd("ZADD")
                            .arg(self.retention_key())
                            .arg(r.as_micros())
                            .arg(Self::retention_member(s))
                            .clone(),
                    ),
                    None => cmds.push(
                        ::redis::cmd("ZREM")
                            .arg(self.retention_key())
                            .arg(Self::retention_member(s))
                            .clone(),
                    ),
                }
            }
            self.many(cmds).await?;
            // Sagas whose head did not move (an older snapshot arrived) are
            // settled by the compare-and-set; those that lost one are forced.
            let known: HashMap<String, Snapshot> = chunk
                .iter()
                .map(|s| (s.snapshot_id.clone(), (*s).clone()))
                .collect();
            let mut sagas: Vec<String> = chunk
                .iter()
                .map(|s| s.saga_id.clone())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            sagas.sort();
            self.refresh_sagas(&sagas, &known, false).await?;
            self.refresh_touched(touched).await?;
        }
        Ok(())
    }

    /// Recomputes the summaries of the sagas a save took snapshots away
    /// from (`note_replaced`'s list), each once.
    async fn refresh_touched(&self, mut touched: Vec<String>) -> StoreResult<()> {
        if !touched.is_empty() {
            touched.sort();
            touched.dedup();
            self.refresh_sagas(&touched, &HashMap::new(), true).await?;
        }
        Ok(())
    }

    /// A script's hash for `EVALSHA`, loading it on first use.
    async fn script_sha<'a>(
        &self,
        cell: &'a tokio::sync::OnceCell<String>,
        script: &str,
    ) -> StoreResult<&'a String> {
        cell.get_or_try_init(|| async {
            self.cmd::<String>(::redis::cmd("SCRIPT").arg("LOAD").arg(script).clone())
                .await
        })
        .await
    }

    /// Runs `EVALSHA` calls of one script as one pipeline (one server),
    /// loading the script again if the server lost it (restart, SCRIPT
    /// FLUSH): then every call failed the same way and nothing ran.
    async fn eval_sha_many(&self, cmds: &[Cmd], script: &str) -> StoreResult<Vec<RValue>> {
        let run = || {
            let mut p = ::redis::pipe();
            for c in cmds {
                p.add_command(c.clone());
            }
            let mut conn = self.conn.clone();
            async move { p.query_async::<Vec<RValue>>(&mut conn).await }
        };
        match run().await {
            Err(e)
                if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
            {
                self.cmd::<String>(::redis::cmd("SCRIPT").arg("LOAD").arg(script).clone())
                    .await?;
                run().await
            }
            other => other,
        }
        .map_err(|e| map_err(&self.location, e))
    }

    /// One `EVALSHA` (see `eval_sha_many`).
    async fn eval_sha<T: FromRedisValue>(&self, c: Cmd, script: &str) -> StoreResult<T> {
        let reply = self.eval_sha_many(std::slice::from_ref(&c), script).await?;
        parse_value(reply.into_iter().next().unwrap_or(RValue::Nil))
    }

    /// A save replaced `raw` (the previous value under the same id): if the
    /// snapshot moved to another saga, queue the removal of its old index
    /// entries; either way both sagas' summaries are recomputed afterwards
    /// (the replaced snapshot may have been its saga's newest).
    fn note_replaced(
        &self,
        new: &Snapshot,
        raw: &[u8],
        cmds: &mut Vec<Cmd>,
        touched: &mut Vec<String>,
    ) {
        let Ok(prev) = self.decode_snapshot("", None, raw) else {
            return;
        };
        if prev.saga_id != new.saga_id {
            cmds.push(
                ::redis::cmd("ZREM")
                    .arg(self.saga_index_key(&prev.saga_id))
                    .arg(&prev.snapshot_id)
                    .clone(),
            );
            cmds.push(
                ::redis::cmd("ZREM")
                    .arg(self.retention_key())
                    .arg(Self::retention_member(&prev))
                    .clone(),
            );
        }
        touched.push(prev.saga_id);
        touched.push(new.saga_id.clone());
    }

    /// One server: each snapshot is one `SAVE_SINGLE` call, the chunk one
    /// pipeline, so a save is one round trip. What the script can't do (it
    /// can't decode a replaced value) follows only when needed.
    async fn write_chunk_single(&self, chunk: &[&Snapshot]) -> StoreResult<()> {
        let now_ms = Timestamp::now().as_micros() / 1000;
        let status_prefix = self.status_key("");
        let sha = self.script_sha(&self.save_sha, SAVE_SINGLE).await?;
        let cmds: Vec<Cmd> = chunk
            .iter()
            .map(|s| {
                let mut c = ::redis::cmd("EVALSHA");
                c.arg(sha)
                    .arg(6)
                    .arg(self.snapshot_key(&s.snapshot_id))
                    .arg(self.saga_index_key(&s.saga_id))
                    .arg(self.retention_key())
                    .arg(self.head_key(&s.saga_id))
                    .arg(self.sagas_key())
                    .arg(self.status_key(s.status.as_str()))
                    .arg(self.codec.encode(&s.to_json()));
                // sagaz's EXPIRE from retention_until, as an absolute time;
                // one already past is left to delete_expired.
                match s.retention_until.map(|r| r.as_micros() / 1000) {
                    Some(ms) if ms > now_ms => c.arg(ms),
                    _ => c.arg(""),
                };
                c.arg(s.created_at.as_epoch_seconds())
                    .arg(&s.snapshot_id)
                    .arg(Self::retention_member(s));
                match s.retention_until {
                    Some(r) => c.arg(r.as_micros()),
                    None => c.arg(""),
                };
                c.arg(s.created_at.as_micros())
                    .arg(&s.saga_name)
                    .arg(s.status.as_str())
                    .arg(&s.step_name)
                    .arg(s.step_index)
                    .arg(&s.saga_id)
                    .arg(&status_prefix);
                c
            })
            .collect();
        let replies = self.eval_sha_many(&cmds, SAVE_SINGLE).await?;
        let mut fix = Vec::new();
        let mut touched = Vec::new();
        let mut recompute = Vec::new();
        for (s, r) in chunk.iter().zip(replies) {
            let (old, needs): (Option<Vec<u8>>, i64) = parse_value(r)?;
            if needs == 1 {
                recompute.push(s.saga_id.clone());
            }
            if let Some(raw) = old {
                self.note_replaced(s, &raw, &mut fix, &mut touched);
            }
        }
        if !fix.is_empty() {
            self.many(fix).await?;
        }
        if !recompute.is_empty() {
            recompute.sort();
            recompute.dedup();
            let known: HashMap<String, Snapshot> = chunk
                .iter()
                .map(|s| (s.snapshot_id.clone(), (*s).clone()))
                .collect();
            self.refresh_sagas(&recompute, &known, false).await?;
        }
        self.refresh_touched(touched).await
    }

    /// Removes snapshots (known by id and saga) from sagaz's keys and
    /// sagascope's index; returns how many were in their saga's set.
    async fn remove_snapshots(&self, items: &[(String, String)]) -> StoreResult<u64> {
        let mut removed = 0u64;
        for chunk in items.chunks(BATCH) {
            let mut cmds = Vec::new();
            for (snap, saga) in chunk {
                cmds.push(
                    ::redis::cmd("ZREM")
                        .arg(self.saga_index_key(saga))
                        .arg(snap)
                        .clone(),
                );
                cmds.push(::redis::cmd("DEL").arg(self.snapshot_key(snap)).clone());
                cmds.push(
                    ::redis::cmd("ZREM")
                        .arg(self.retention_key())
                        .arg(format!("{snap} {saga}"))
                        .clone(),
                );
            }
            let replies = self.many(cmds).await?;
            for r in replies.chunks(3) {
                let in_set: i64 = parse_value(r[0].clone())?;
                let existed: i64 = parse_value(r[1].clone())?;
                if in_set > 0 || existed > 0 {
                    removed += 1;
                }
            }
            let mut sagas: Vec<String> = chunk.iter().map(|(_, s)| s.clone()).collect();
            sagas.sort();
            sagas.dedup();
            self.refresh_sagas(&sagas, &HashMap::new(), true).await?;
        }
        Ok(removed)
    }

    // ---- reads of the index ----------------------------------------------

    /// Up to `count` entries of a sorted set, newest first, strictly before
    /// `after` (score, member) and with score in [min, max]; and whether the
    /// set may hold more past them.
    ///
    /// "More" is judged on what the server returned, not on what is left
    /// after dropping entries at or above the cursor: a page that starts at
    /// the cursor's own score always loses the cursor entry, and taking the
    /// shorter page for the end once made every listing stop at 999 sagas.
    async fn zset_page(
        &self,
        key: &str,
        max: Option<i64>,
        min: Option<i64>,
        after: Option<&(i64, String)>,
        count: usize,
    ) -> StoreResult<(Vec<(String, i64)>, bool)> {
        let max_arg = match (after, max) {
            (Some((s, _)), Some(m)) => (*s).min(m).to_string(),
            (Some((s, _)), None) => s.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => "+inf".into(),
        };
        let min_arg = min.map_or("-inf".to_string(), |m| m.to_string());
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let got: Vec<(String, f64)> = self
                .cmd(
                    ::redis::cmd("ZREVRANGEBYSCORE")
                        .arg(key)
                        .arg(&max_arg)
                        .arg(&min_arg)
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(count)
                        .clone(),
                )
                .await?;
            let n = got.len();
            for (m, s) in got {
                let s = s as i64;
                if let Some((as_, am)) = after {
                    if (s, &m) >= (*as_, am) {
                        continue;
                    }
                }
                out.push((m, s));
            }
            let more = n == count;
            if !out.is_empty() || !more {
                return Ok((out, more));
            }
            // A whole batch of ties at the cursor's score: look further.
            offset += n;
        }
    }

    /// Summaries of candidate sagas in one batch, checked against their
    /// sagaz sets: `Ok(None)` for a stale entry.
    async fn load_heads(
        &self,
        sagas: &[String],
    ) -> StoreResult<Vec<(Option<Head>, u64, Option<i64>, Option<String>)>> {
        let mut cmds = Vec::with_capacity(sagas.len() * 4);
        for s in sagas {
            let idx = self.saga_index_key(s);
            cmds.push(::redis::cmd("HGETALL").arg(self.head_key(s)).clone());
            cmds.push(::redis::cmd("ZCARD").arg(&idx).clone());
            cmds.push(
                ::redis::cmd("ZRANGE")
                    .arg(&idx)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .clone(),
            );
            cmds.push(::redis::cmd("ZREVRANGE").arg(&idx).arg(0).arg(0).clone());
        }
        let replies = self.many(cmds).await?;
        let mut out = Vec::with_capacity(sagas.len());
        let mut it = replies.into_iter();
        while let (Some(h), Some(n), Some(first), Some(top)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            let h: HashMap<String, String> = parse_value(h)?;
            let n: u64 = parse_value(n)?;
            let first: Vec<(String, f64)> = parse_value(first)?;
            let top: Vec<String> = parse_value(top)?;
            out.push((
                Head::from_hash(&h),
                n,
                first.first().map(|(_, s)| micros_of_score(*s)),
                top.into_iter().next(),
            ));
        }
        Ok(out)
    }

    fn summary_of(
        saga_id: &str,
        h: &Head,
        count: u64,
        first_us: Option<i64>,
    ) -> Option<SagaSummary> {
        let last_at = Timestamp::from_micros(h.last_us)?;
        let first_at = first_us
            .and_then(Timestamp::from_micros)
            .filter(|f| *f <= last_at)
            .unwrap_or(last_at);
        Some(SagaSummary {
            saga_id: saga_id.to_string(),
            saga_name: h.saga_name.clone(),
            latest_status: SagaStatus::parse(&h.status),
            latest_step: h.step.clone(),
            latest_step_index: h.step_index,
            snapshot_count: count.max(1),
            first_at,
            last_at,
        })
    }
}

#[async_trait]
impl SnapshotStore for RedisStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: BACKEND,
            preserves_key_order: true,
            preserves_extra_fields: true,
            stores_external_refs: true,
            stores_nul_in_strings: true,
            indexed_saga_list: true,
            distributed_locks: true,
        }
    }

    fn location(&self) -> String {
        self.location.clone()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> StoreResult<()> {
        self.write_snapshots(std::slice::from_ref(snapshot)).await
    }

    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> StoreResult<()> {
        self.write_snapshots(snapshots).await
    }

    async fn get_snapshot(&self, snapshot_id: &str) -> StoreResult<Option<Snapshot>> {
        if Self::check_id("snapshot_id", snapshot_id).is_err() {
            return Ok(None);
        }
        let key = self.snapshot_key(snapshot_id);
        let raw: Option<Vec<u8>> = self.cmd(::redis::cmd("GET").arg(&key).clone()).await?;
        raw.map(|r| {
            self.decode_snapshot(&key, None, &r)
                .map_err(|entry| StoreError::Corrupt { entry })
        })
        .transpose()
    }

    async fn latest_snapshot(
        &self,
        saga_id: &str,
        step: Option<&str>,
    ) -> StoreResult<Option<Snapshot>> {
        let key = self.saga_index_key(saga_id);
        if let Some(st) = step {
            return self.latest_for_step(&key, saga_id, st).await;
        }
        let mut start = 0usize;
        let batch = 5;
        loop {
            let ids: Vec<String> = self
                .cmd(
                    ::redis::cmd("ZREVRANGE")
                        .arg(&key)
                        .arg(start)
                        .arg(start + batch - 1)
                        .clone(),
                )
                .await?;
            if ids.is_empty() {
                return Ok(None);
            }
            let got = self.fetch_snapshots(Some(saga_id), &ids).await?;
            // Newest first: a bad entry newer than every good one is the answer's fault.
            let mut items: Vec<Result<Snapshot, BadEntry>> =
                got.items.into_iter().map(Ok).collect();
            items.extend(got.bad.into_iter().map(Err));
            let order: HashMap<&str, usize> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            let pos = |r: &Result<Snapshot, BadEntry>| match r {
                Ok(s) => order
                    .get(s.snapshot_id.as_str())
                    .copied()
                    .unwrap_or(usize::MAX),
                Err(b) => order
                    .get(b.key.strip_prefix(&self.prefix).unwrap_or(&b.key))
                    .copied()
                    .unwrap_or(usize::MAX),
            };
            items.sort_by_key(|r| pos(r));
            for r in items {
                match r {
                    Ok(s) if step.is_none_or(|st| s.step_name == st) => return Ok(Some(s)),
                    Ok(_) => {}
                    Err(b) if step.is_none() => return Err(StoreError::Corrupt { entry: b }),
                    Err(_) => {}
                }
            }
            if ids.len() < batch {
                return Ok(None);
            }
            start += batch;
        }
    }

    async fn snapshot_at(&self, saga_id: &str, at: Timestamp) -> StoreResult<Option<Snapshot>> {
        let key = self.saga_index_key(saga_id);
        // Scores are float seconds: take a few beyond the first in case
        // several times round to one score.
        let (ids, vals) = self
            .range_values(
                &key,
                Order::Desc,
                "-inf",
                &at.as_epoch_seconds().to_string(),
                0,
                20,
            )
            .await?;
        // Newest first: the answer is the newest readable one at or before
        // `at` (scores are rounded: compare exact times), unless an
        // unreadable entry comes before it — then the answer is that entry
        // and it is reported. Bad entries older than the answer don't
        // matter (they once failed every time travel after them).
        let mut best: Option<Snapshot> = None;
        for r in self
            .entries_in_order(saga_id, &ids, vals)
            .await?
            .into_iter()
            .flatten()
        {
            match r {
                Ok(s) if s.created_at <= at => {
                    if best.as_ref().is_none_or(|b| {
                        (s.created_at, &s.snapshot_id) > (b.created_at, &b.snapshot_id)
                    }) {
                        best = Some(s);
                    }
                }
                Ok(_) => {}
                Err(entry) if best.is_none() => return Err(StoreError::Corrupt { entry }),
                Err(_) => break,
            }
        }
        Ok(best)
    }

    async fn list_snapshots(
        &self,
        saga_id: &str,
        q: &SnapshotQuery,
    ) -> StoreResult<Listing<Snapshot>> {
        let key = self.saga_index_key(saga_id);
        let mut lo = q.since.map(|t| t.as_epoch_seconds());
        let mut hi = q.until.map(|t| t.as_epoch_seconds());
        if let Some(c) = &q.after {
            let s = c.created_at.as_epoch_seconds();
            match q.order {
                Order::Asc => lo = Some(lo.map_or(s, |l| l.max(s))),
                Order::Desc => hi = Some(hi.map_or(s, |h| h.min(s))),
            }
        }
        let lo_arg = lo.map_or("-inf".to_string(), |v| v.to_string());
        let hi_arg = hi.map_or("+inf".to_string(), |v| v.to_string());
        // The set's order is (score, member) with score = created_at in
        // float seconds: the snapshot order, but for ties that rounding
        // merges. Entries at the cursor's own score come back again and
        // `admits` drops them.
        super::page_in_order(
            q.limit.unwrap_or(usize::MAX),
            |s| q.admits(s),
            |rows, offset| {
                let (key, lo_arg, hi_arg) = (&key, &lo_arg, &hi_arg);
                async move {
                    let (ids, vals) = self
                        .range_values(key, q.order, lo_arg, hi_arg, offset, rows)
                        .await?;
                    self.entries_in_order(saga_id, &ids, vals).await
                }
            },
        )
        .await
    }

    async fn count_snapshots(&self, saga_id: &str) -> StoreResult<u64> {
        self.cmd(
            ::redis::cmd("ZCARD")
                .arg(self.saga_index_key(saga_id))
                .clone(),
        )
        .await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> StoreResult<bool> {
        if Self::check_id("snapshot_id", snapshot_id).is_err() {
            return Ok(false);
        }
        let key = self.snapshot_key(snapshot_id);
        let raw: Option<Vec<u8>> = self.cmd(::redis::cmd("GET").arg(&key).clone()).await?;
        let Some(raw) = raw else {
            return Ok(false);
        };
        match self.decode_snapshot(&key, None, &raw) {
            Ok(s) => Ok(self.remove_snapshots(&[(s.snapshot_id, s.saga_id)]).await? > 0),
            // Unreadable: find its saga by a text search of the value, so
            // the saga's index and summary lose it too (a user deleting a
            // broken entry expects the saga to be clean after).
            Err(_) => {
                let saga = super::codec::salvage_string_field(&self.codec, &raw, "saga_id")
                    .filter(|s| Self::check_id("saga_id", s).is_ok());
                if let Some(saga) = saga {
                    return Ok(self
                        .remove_snapshots(&[(snapshot_id.to_string(), saga)])
                        .await?
                        > 0);
                }
                let n: i64 = self.cmd(::redis::cmd("DEL").arg(&key).clone()).await?;
                Ok(n > 0)
            }
        }
    }

    async fn delete_saga(&self, saga_id: &str) -> StoreResult<u64> {
        let ids: Vec<String> = self
            .cmd(
                ::redis::cmd("ZRANGE")
                    .arg(self.saga_index_key(saga_id))
                    .arg(0)
                    .arg(-1)
                    .clone(),
            )
            .await?;
        // Count values that still exist, as the other backends count rows.
        let vals = self
            .mget(&ids.iter().map(|i| self.snapshot_key(i)).collect::<Vec<_>>())
            .await?;
        let present = vals.iter().filter(|v| v.is_some()).count() as u64;
        let items: Vec<(String, String)> =
            ids.into_iter().map(|i| (i, saga_id.to_string())).collect();
        self.remove_snapshots(&items).await?;
        self.cmd::<i64>(
            ::redis::cmd("DEL")
                .arg(self.saga_index_key(saga_id))
                .clone(),
        )
        .await?;
        self.apply_heads(&[(saga_id.to_string(), None)], true)
            .await?;
        Ok(present)
    }

    async fn delete_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let key = self.retention_key();
        let mut total = 0;
        loop {
            let members: Vec<String> = self
                .cmd(
                    ::redis::cmd("ZRANGEBYSCORE")
                        .arg(&key)
                        .arg("-inf")
                        .arg(format!("({}", now.as_micros()))
                        .arg("LIMIT")
                        .arg(0)
                        .arg(BATCH)
                        .clone(),
                )
                .await?;
            if members.is_empty() {
                return Ok(total);
            }
            let mut items = Vec::new();
            let mut odd = Vec::new();
            for m in &members {
                match m.split_once(' ') {
                    Some((snap, saga)) => items.push((snap.to_string(), saga.to_string())),
                    None => odd.push(m.clone()),
                }
            }
            total += self.remove_snapshots(&items).await?;
            if !odd.is_empty() {
                let mut c = ::redis::cmd("ZREM");
                c.arg(&key);
                for m in odd {
                    c.arg(m);
                }
                self.cmd::<i64>(c).await?;
            }
        }
    }

    async fn save_replay(&self, log: &ReplayLog) -> StoreResult<()> {
        Self::check_id("replay_id", &log.replay_id)?;
        let key = self.replay_key(&log.replay_id);
        let old: Option<Vec<u8>> = self.cmd(::redis::cmd("GET").arg(&key).clone()).await?;
        let mut cmds = Vec::new();
        if let Some(prev) = old.and_then(|r| self.decode_replay(&key, None, &r).ok()) {
            if prev.original_saga_id != log.original_saga_id {
                cmds.push(
                    ::redis::cmd("ZREM")
                        .arg(self.replay_index_key(&prev.original_saga_id))
                        .arg(&prev.replay_id)
                        .clone(),
                );
            }
            if prev.new_saga_id != log.new_saga_id {
                cmds.push(
                    ::redis::cmd("DEL")
                        .arg(self.replay_of_key(&prev.new_saga_id))
                        .clone(),
                );
            }
        }
        cmds.push(
            ::redis::cmd("SET")
                .arg(&key)
                .arg(self.codec.encode(&log.to_json()))
                .clone(),
        );
        cmds.push(
            ::redis::cmd("ZADD")
                .arg(self.replay_index_key(&log.original_saga_id))
                .arg(log.created_at.as_epoch_seconds())
                .arg(&log.replay_id)
                .clone(),
        );
        cmds.push(
            ::redis::cmd("SET")
                .arg(self.replay_of_key(&log.new_saga_id))
                .arg(&log.replay_id)
                .clone(),
        );
        self.many(cmds).await?;
        Ok(())
    }

    async fn get_replay(&self, replay_id: &str) -> StoreResult<Option<ReplayLog>> {
        let key = self.replay_key(replay_id);
        let raw: Option<Vec<u8>> = self.cmd(::redis::cmd("GET").arg(&key).clone()).await?;
        raw.map(|r| {
            self.decode_replay(&key, None, &r)
                .map_err(|entry| StoreError::Corrupt { entry })
        })
        .transpose()
    }

    async fn list_replays(
        &self,
        original_saga_id: &str,
        limit: Option<usize>,
    ) -> StoreResult<Listing<ReplayLog>> {
        let ids: Vec<String> = self
            .cmd(
                ::redis::cmd("ZREVRANGE")
                    .arg(self.replay_index_key(original_saga_id))
                    .arg(0)
                    .arg(-1)
                    .clone(),
            )
            .await?;
        let keys: Vec<String> = ids.iter().map(|id| self.replay_key(id)).collect();
        let mut out = Listing::default();
        let want = limit.unwrap_or(usize::MAX);
        for chunk in keys.chunks(BATCH) {
            if out.items.len() >= want {
                break;
            }
            let vals = self.mget(chunk).await?;
            for (key, v) in chunk.iter().zip(vals) {
                if let Some(raw) = v {
                    match self.decode_replay(key, Some(original_saga_id), &raw) {
                        Ok(l) => out.items.push(l),
                        Err(b) => out.bad.push(b),
                    }
                }
            }
        }
        out.items
            .sort_by(|a, b| (b.created_at, &b.replay_id).cmp(&(a.created_at, &a.replay_id)));
        out.items.truncate(want);
        Ok(out)
    }

    async fn replay_producing(&self, new_saga_id: &str) -> StoreResult<Option<ReplayLog>> {
        let id: Option<String> = self
            .cmd(
                ::redis::cmd("GET")
                    .arg(self.replay_of_key(new_saga_id))
                    .clone(),
            )
            .await?;
        match id {
            Some(id) => Ok(self
                .get_replay(&id)
                .await?
                .filter(|l| l.new_saga_id == new_saga_id)),
            None => Ok(None),
        }
    }

    async fn list_sagas(
        &self,
        filter: &SagaFilter,
        page: &SagaPageRequest,
    ) -> StoreResult<SagaPage> {
        let mut out = SagaPage::default();
        if !self.index_is_built().await? {
            out.index_warning = Some(self.stale_index_warning());
        }
        if page.limit == 0 {
            return Ok(out);
        }
        // The sorted sets to walk: one per wanted status, or all sagas.
        let sources: Vec<(String, Option<String>)> = if filter.statuses.is_empty() {
            vec![(self.sagas_key(), None)]
        } else {
            let mut v: Vec<(String, Option<String>)> = filter
                .statuses
                .iter()
                .map(|s| (self.status_key(s.as_str()), Some(s.as_str().to_string())))
                .collect();
            v.dedup();
            v
        };
        let max = filter.until.map(|t| t.as_micros());
        let min = filter.since.map(|t| t.as_micros());
        let mut cursor: Option<(i64, String)> = page
            .after
            .as_ref()
            .map(|c| (c.last_at.as_micros(), c.saga_id.clone()));
        let batch = page.limit.saturating_add(1).clamp(20, BATCH);
        let mut refreshed = 0usize;
        let mut repairs: Vec<Cmd> = Vec::new();
        let mut last_pos: Option<(i64, String)> = None;
        'walk: loop {
            // Next candidates from every source, merged newest first.
            let mut merged: BTreeMap<(i64, String), Option<String>> = BTreeMap::new();
            let cur = cursor.clone();
            let cur = &cur;
            let pages = join_all(sources.iter().map(|(key, st)| async move {
                (self.zset_page(key, max, min, cur.as_ref(), batch).await, st)
            }))
            .await;
            let mut exhausted = true;
            let mut horizon: Option<(i64, String)> = None;
            for (r, st) in pages {
                let (got, more) = r?;
                if more {
                    exhausted = false;
                    // Past the oldest entry of a full batch, this source may
                    // hold more that the others' entries would skip.
                    if let Some((m, s)) = got.last() {
                        let pos = (*s, m.clone());
                        if horizon.as_ref().is_none_or(|h| pos > *h) {
                            horizon = Some(pos);
                        }
                    }
                }
                for (m, s) in got {
                    merged.insert((s, m), st.clone());
                }
            }
            let mut cands: Vec<((i64, String), Option<String>)> = merged
                .into_iter()
                .rev()
                .filter(|(pos, _)| horizon.as_ref().is_none_or(|h| pos >= h))
                .collect();
            cands.dedup_by(|a, b| a.0 .1 == b.0 .1);
            if cands.is_empty() {
                break;
            }
            let ids: Vec<String> = cands.iter().map(|((_, m), _)| m.clone()).collect();
            let heads = self.load_heads(&ids).await?;
            let mut stale_sagas = Vec::new();
            for (((score, saga), src_status), (head, count, first_us, top)) in
                cands.iter().zip(heads)
            {
                cursor = Some((*score, saga.clone()));
                let Some(h) = head else {
                    // Listed but no summary: a writer stopped half-way.
                    if !self.readonly {
                        stale_sagas.push(saga.clone());
                    }
                    continue;
                };
                if h.last_us != *score || src_status.as_ref().is_some_and(|st| *st != h.status) {
                    // An old entry (the saga moved on); the right one is elsewhere.
                    if !self.readonly {
                        if let Some(st) = src_status {
                            if *st != h.status {
                                repairs.push(
                                    ::redis::cmd("ZREM")
                                        .arg(self.status_key(st))
                                        .arg(saga)
                                        .clone(),
                                );
                            }
                        }
                        let key = if src_status.is_some() {
                            self.status_key(&h.status)
                        } else {
                            self.sagas_key()
                        };
                        repairs.push(
                            ::redis::cmd("ZADD")
                                .arg(key)
                                .arg(h.last_us)
                                .arg(saga)
                                .clone(),
                        );
                    }
                    continue;
                }
                if top.as_deref().is_some_and(|t| t != h.snapshot_id) {
                    // The saga's own set has a newer (or fewer) snapshot than
                    // the summary: written by sagaz, or a half-done delete.
                    refreshed += 1;
                    if !self.readonly {
                        stale_sagas.push(saga.clone());
                    }
                    continue;
                }
                let Some(summary) = Self::summary_of(saga, &h, count, first_us) else {
                    out.bad.push(BadEntry {
                        key: self.head_key(saga),
                        saga_id: Some(saga.clone()),
                        error: format!("last_us {} is not a valid time", h.last_us),
                    });
                    continue;
                };
                if !filter.matches(&summary) {
                    continue;
                }
                if out.sagas.len() == page.limit {
                    out.next = last_pos.map(|(us, id)| SagaCursor {
                        last_at: Timestamp::from_micros(us).unwrap_or(summary.last_at),
                        saga_id: id,
                    });
                    break 'walk;
                }
                last_pos = Some((*score, saga.clone()));
                out.sagas.push(summary);
            }
            if !stale_sagas.is_empty() {
                self.refresh_sagas(&stale_sagas, &HashMap::new(), true)
                    .await?;
            }
            if exhausted && horizon.is_none() {
                break;
            }
        }
        if !repairs.is_empty() {
            self.many(repairs).await?;
        }
        if refreshed > 0 {
            let note = format!(
                "{refreshed} saga(s) had snapshots newer than sagascope's index (written by another program); \
                 they were re-indexed and may now sit elsewhere in the list: reload it"
            );
            out.index_warning = Some(match out.index_warning.take() {
                Some(w) => format!("{w}; {note}"),
                None => note,
            });
        }
        Ok(out)
    }

    async fn saga_summary(&self, saga_id: &str) -> StoreResult<Option<SagaSummary>> {
        let mut heads = self.load_heads(&[saga_id.to_string()]).await?;
        let Some((head, count, first_us, top)) = heads.pop() else {
            return Ok(None);
        };
        if top.is_none() {
            return Ok(None);
        }
        let head = match head {
            Some(h) if top.as_deref() == Some(h.snapshot_id.as_str()) => Some(h),
            // Not indexed yet (sagaz wrote it) or behind: read the saga's newest.
            _ => {
                let latest = self.latest_snapshot(saga_id, None).await?;
                if let (Some(s), false) = (&latest, self.readonly) {
                    self.apply_heads(&[(saga_id.to_string(), Some(Head::of(s)))], true)
                        .await?;
                }
                latest.as_ref().map(Head::of)
            }
        };
        Ok(head.and_then(|h| Self::summary_of(saga_id, &h, count, first_us)))
    }

    async fn count_sagas(&self, filter: &SagaFilter) -> StoreResult<u64> {
        let simple =
            filter.name.is_none() && filter.latest_step.is_none() && filter.id_prefix.is_none();
        if simple {
            let min = filter
                .since
                .map_or("-inf".to_string(), |t| t.as_micros().to_string());
            let max = filter
                .until
                .map_or("+inf".to_string(), |t| t.as_micros().to_string());
            let keys: Vec<String> = if filter.statuses.is_empty() {
                vec![self.sagas_key()]
            } else {
                filter
                    .statuses
                    .iter()
                    .map(|s| self.status_key(s.as_str()))
                    .collect()
            };
            let counts = self
                .many(
                    keys.iter()
                        .map(|k| ::redis::cmd("ZCOUNT").arg(k).arg(&min).arg(&max).clone())
                        .collect(),
                )
                .await?;
            let mut total = 0u64;
            for c in counts {
                total += parse_value::<u64>(c)?;
            }
            return Ok(total);
        }
        let mut n = 0u64;
        let mut page = SagaPageRequest {
            limit: 1000,
            after: None,
        };
        loop {
            let p = self.list_sagas(filter, &page).await?;
            n += p.sagas.len() as u64;
            match p.next {
                Some(c) => page.after = Some(c),
                None => return Ok(n),
            }
        }
    }

    async fn health(&self) -> StoreResult<Health> {
        let start = Instant::now();
        self.cmd::<String>(::redis::cmd("PING")).await?;
        let latency = start.elapsed();
        let sagas: Option<u64> = self
            .cmd(::redis::cmd("ZCARD").arg(self.sagas_key()).clone())
            .await
            .ok();
        let mut notes = vec![
            format!("prefix {:?}", self.prefix),
            format!(
                "writes {}",
                match self.codec.compression {
                    Compression::None => "plain JSON",
                    _ => "zstd",
                }
            ),
        ];
        if self.is_cluster() {
            notes.push("cluster".into());
        }
        if !self.index_is_built().await.unwrap_or(true) {
            notes.push("saga index never built: run `sagascope reindex`".into());
        }
        Ok(Health {
            backend: BACKEND,
            url: self.location.clone(),
            reachable: true,
            latency,
            sagas,
            snapshots: None,
            replays: None,
            size_bytes: None,
            notes,
        })
    }

    async fn try_lock(&self, name: &str, owner: &str, ttl: Duration) -> StoreResult<LockOutcome> {
        let ms = ttl.as_millis().clamp(1, i64::MAX as u128) as i64;
        let reply: Vec<RValue> = self
            .cmd(
                ::redis::cmd("EVAL")
                    .arg(LOCK_TAKE)
                    .arg(1)
                    .arg(self.lock_key(name))
                    .arg(owner)
                    .arg(ms)
                    .clone(),
            )
            .await?;
        let mut it = reply.into_iter();
        let taken: i64 = it.next().map(parse_value).transpose()?.unwrap_or(0);
        if taken == 1 {
            return Ok(LockOutcome::Acquired);
        }
        let holder: String = it.next().map(parse_value).transpose()?.unwrap_or_default();
        let pttl: i64 = it.next().map(parse_value).transpose()?.unwrap_or(0);
        Ok(LockOutcome::Held {
            owner: holder,
            until: Timestamp::now().plus_micros(pttl.max(0) * 1000),
        })
    }

    async fn unlock(&self, name: &str, owner: &str) -> StoreResult<()> {
        self.cmd::<i64>(
            ::redis::cmd("EVAL")
                .arg(LOCK_RELEASE)
                .arg(1)
                .arg(self.lock_key(name))
                .arg(owner)
                .clone(),
        )
        .await?;
        Ok(())
    }
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

    #[test]
    fn glob_escape_keeps_prefixes_literal() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
