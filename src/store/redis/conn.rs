//! Connecting (one server or a Cluster, TLS), carrying commands in as few
//! round trips as the topology allows, running scripts, and health.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{Cmd, FromRedisValue, Value as RValue};
use futures::future::join_all;

use super::super::codec::{Codec, Compression, JsonStyle};
use super::super::*;
use super::url::parse_url;
use super::{RedisStore, BACKEND, BATCH};

/// One connection, to a single server or a Cluster. Both are multiplexed
/// and cheap to clone.
#[derive(Clone)]
pub(super) enum Conn {
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

pub(super) fn map_err(location: &str, e: ::redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        StoreError::Unreachable {
            url: location.to_string(),
            reason: e.to_string().lines().next().unwrap_or_default().to_string(),
        }
    } else {
        StoreError::backend(BACKEND, e)
    }
}

pub(super) fn parse_value<T: FromRedisValue>(v: RValue) -> StoreResult<T> {
    ::redis::from_redis_value(v)
        .map_err(|e| StoreError::backend(BACKEND, format!("unexpected reply: {e}")))
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
                Ok::<Conn, StoreError>(Conn::Cluster(c))
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

    pub(super) async fn cmd<T: FromRedisValue>(&self, c: Cmd) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        c.query_async(&mut conn)
            .await
            .map_err(|e| map_err(&self.location, e))
    }

    /// The value under one key, `None` when there is none.
    pub(super) async fn get<T: FromRedisValue>(&self, key: &str) -> StoreResult<Option<T>> {
        self.cmd(::redis::cmd("GET").arg(key).clone()).await
    }

    /// Runs independent commands in as few round trips as the topology
    /// allows: pipelines on one server, concurrent requests on a Cluster
    /// (each routed to its slot's node over the multiplexed connections).
    pub(super) async fn many(&self, cmds: Vec<Cmd>) -> StoreResult<Vec<RValue>> {
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
    pub(super) async fn mget(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
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
    pub(super) async fn masters(&self) -> StoreResult<Vec<(String, u16)>> {
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
    pub(super) async fn scan_keys(
        &self,
        pattern: &str,
        stop_at_first: bool,
    ) -> StoreResult<Vec<String>> {
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

    /// A script's hash for `EVALSHA`, loading it on first use.
    pub(super) async fn script_sha<'a>(
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
    pub(super) async fn eval_sha_many(
        &self,
        cmds: &[Cmd],
        script: &str,
    ) -> StoreResult<Vec<RValue>> {
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
    pub(super) async fn eval_sha<T: FromRedisValue>(&self, c: Cmd, script: &str) -> StoreResult<T> {
        let reply = self.eval_sha_many(std::slice::from_ref(&c), script).await?;
        parse_value(reply.into_iter().next().unwrap_or(RValue::Nil))
    }
}

pub(super) async fn health(this: &RedisStore) -> StoreResult<Health> {
    let start = Instant::now();
    this.cmd::<String>(::redis::cmd("PING")).await?;
    let latency = start.elapsed();
    let sagas: Option<u64> = this
        .cmd(::redis::cmd("ZCARD").arg(this.sagas_key()).clone())
        .await
        .ok();
    let mut notes = vec![
        format!("prefix {:?}", this.prefix),
        format!(
            "writes {}",
            match this.codec.compression {
                Compression::None => "plain JSON",
                _ => "zstd",
            }
        ),
    ];
    if this.is_cluster() {
        notes.push("cluster".into());
    }
    if !this.index_is_built().await.unwrap_or(true) {
        notes.push("saga index never built: run `sagascope reindex`".into());
    }
    Ok(Health {
        backend: BACKEND,
        url: this.location.clone(),
        reachable: true,
        latency,
        sagas,
        snapshots: None,
        replays: None,
        size_bytes: None,
        notes,
    })
}
