//! Connections: the pool, errors as the store reports them, health, and
//! `TCP_NODELAY` on sagascope's own sockets.

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::super::lend::IDLE_BEFORE_PING;
use super::super::sql::{reachable, sql, SqlStore};
use super::url::parse_url;
use super::*;

pub(super) fn db_err(e: sqlx::Error) -> StoreError {
    match server_message(&e) {
        // The server refused (GRANTs, row security): exit 4, not 3.
        Some((code, message)) if code == "42501" => StoreError::PermissionDenied {
            url: "the PostgreSQL server".into(),
            reason: message,
        },
        Some((_, message)) => StoreError::backend(BACKEND, message),
        None => StoreError::backend(BACKEND, e),
    }
}

/// An error the server sent: its SQLSTATE and a one-line message that ends
/// with the server's own words (sqlx's `Display` appends the line of the
/// *server's C source* that raised it — "at line 334" — which tells the
/// user nothing), with the server's detail and hint when it gave them.
fn server_message(e: &sqlx::Error) -> Option<(String, String)> {
    let sqlx::Error::Database(d) = e else {
        return None;
    };
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    let mut message = format!("server error {code}: {}", d.message());
    if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        for extra in [pg.detail(), pg.hint()].into_iter().flatten() {
            message.push_str("; ");
            message.push_str(extra);
        }
    }
    Some((code, message.replace('\n', " ")))
}

/// The first line of a connection error, without the driver's chain.
pub(super) fn short_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => {
            "timed out connecting (is the server running and the host/port right?)".into()
        }
        other => server_message(other)
            .map(|(_, m)| m)
            .unwrap_or_else(|| other.to_string())
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

impl PostgresStore {
    /// Connects, and creates sagaz's tables (and sagascope's) when missing.
    pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Self> {
        let parsed = parse_url(url)?;
        let location = url.redacted();
        let pool = PgPoolOptions::new()
            // sqlx pings a pooled connection before each use by default: a
            // second round trip on every call. Only connections idle for a
            // while (that a server restart or a firewall may have cut) are
            // pinged here; a hot one goes straight to its query.
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    nodelay::set_on_connection(conn).await;
                    Ok(())
                })
            })
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .max_connections(parsed.pool_max)
            .min_connections(0)
            .acquire_timeout(parsed.connect_timeout)
            .connect_with(parsed.options)
            .await
            .map_err(|e| StoreError::Unreachable {
                url: location.clone(),
                reason: short_reason(&e),
            })?;
        let mut store = PostgresStore {
            pool: Lender::new(pool),
            location,
            schema: parsed.schema,
            has_replay_extra: false,
            has_snapshot_extra: false,
        };
        store.prepare_schema(opts.readonly).await?;
        Ok(store)
    }

    /// A connection for one query (see `store::lend`).
    pub(super) async fn conn(&self) -> StoreResult<super::lend::Lent<'_, sqlx::Postgres>> {
        self.pool.conn().await.map_err(db_err)
    }

    /// `db_err`, noting a broken connection so that it is not used again.
    pub(super) fn lost(&self, e: sqlx::Error) -> StoreError {
        self.pool.note(&e);
        db_err(e)
    }

    /// The connection pool, for tools that need raw access (tests, benches).
    pub fn pool(&self) -> &PgPool {
        self.pool.pool()
    }

    /// The schema given with `schema=`, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    pub(super) async fn health(&self) -> StoreResult<Health> {
        let latency = self.ping().await?.map_err(|e| {
            // A restarted server leaves the kept connection dead: retire it,
            // or every later check (the TUI's reconnect, C-r) would fail on
            // it too.
            self.pool.note(&e);
            StoreError::Unreachable {
                url: self.location.clone(),
                reason: short_reason(&e),
            }
        })?;
        // Planner estimates: exact counts would scan the tables.
        let estimate = |table: &'static str| async move {
            sqlx::query_scalar::<_, f32>(sql(format!(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass('{table}')"
            )))
            .fetch_optional(&mut *self.conn().await.ok()?)
            .await
            .ok()
            .flatten()
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64)
        };
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT pg_total_relation_size('saga_snapshots') + pg_total_relation_size('saga_replay_log')",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
        .ok();
        let mut notes = vec!["snapshot and replay counts are planner estimates".to_string()];
        if let Some(s) = &self.schema {
            notes.push(format!("schema {s}"));
        }
        Ok(Health {
            snapshots: estimate("saga_snapshots").await,
            replays: estimate("saga_replay_log").await,
            size_bytes: size.map(|n| n.max(0) as u64),
            notes,
            ..reachable(BACKEND, self.location.clone(), latency)
        })
    }
}

/// `TCP_NODELAY` on sagascope's own connections.
///
/// sqlx 0.9.0 does not set it: its TCP connect (`sqlx_core::net::connect_tcp`)
/// is a bare `tokio::net::TcpStream::connect` (upstream issue
/// transact-rs/sqlx#4335, no release with the fix yet). With TLS, rustls
/// sends a query as several small records, and Nagle's algorithm holds each
/// after the first until the server's delayed ACK: ~40 ms stalls, seen here
/// on a third of the calls of some runs. sqlx gives no access to its socket,
/// so right after a connection is made ([`set_on_connection`], sqlx's
/// `after_connect`) this asks the server for the connection's two ends
/// (`inet_client_addr()`/`inet_client_port()`, `inet_server_addr()`/
/// `inet_server_port()`) and sets the option on the one socket of this
/// process with exactly that local and remote address — a TCP connection's
/// four-tuple is unique, so no other socket of the process (one a program
/// embedding the library opened, to the same server or not) is touched.
/// When the server sees other ends than the client (a proxy, NAT) no socket
/// matches and nothing is set; a Unix-socket connection has no ends and
/// needs nothing. The TLS handshake itself, before that, still pays one
/// stall per connection; the pool keeps connections, so that is once per
/// connection.
pub(super) mod nodelay {
    use std::net::{IpAddr, SocketAddr};

    /// Client address and port, server address and port, as the server
    /// sees them (all NULL over a Unix socket).
    type Ends = (Option<String>, Option<i32>, Option<String>, Option<i32>);

    /// Sets `TCP_NODELAY` on the socket of `conn`, a connection just made.
    /// Best effort: any failure leaves the socket as it is.
    pub async fn set_on_connection(conn: &mut sqlx::PgConnection) {
        let ends: Result<Ends, _> = sqlx::query_as(
            "SELECT host(inet_client_addr()), inet_client_port(), \
                 host(inet_server_addr()), inet_server_port()",
        )
        .fetch_one(conn)
        .await;
        let Ok((Some(ca), Some(cp), Some(sa), Some(sp))) = ends else {
            return;
        };
        let end = |addr: &str, port: i32| -> Option<SocketAddr> {
            let ip: IpAddr = addr.parse().ok()?;
            Some(SocketAddr::new(
                ip.to_canonical(),
                u16::try_from(port).ok()?,
            ))
        };
        if let (Some(local), Some(remote)) = (end(&ca, cp), end(&sa, sp)) {
            set_on_socket_between(local, remote);
        }
    }

    /// Finds this process's TCP socket from `local` to `remote` and sets
    /// `TCP_NODELAY` on it.
    #[cfg(unix)]
    #[allow(unsafe_code)]
    fn set_on_socket_between(local: SocketAddr, remote: SocketAddr) {
        use std::mem::size_of;
        let dir = std::fs::read_dir("/proc/self/fd").or_else(|_| std::fs::read_dir("/dev/fd"));
        let Ok(dir) = dir else { return };
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<libc::c_int>().ok())
            else {
                continue;
            };
            if address(fd, libc::getsockname) != Some(local)
                || address(fd, libc::getpeername) != Some(remote)
            {
                continue;
            }
            let one: libc::c_int = 1;
            // SAFETY: a plain socket call on a descriptor number this process
            // holds; `one` is owned here and its size is given.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const one).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            return;
        }
    }

    #[cfg(not(unix))]
    fn set_on_socket_between(_local: SocketAddr, _remote: SocketAddr) {}

    /// The IP address `get` (`getsockname` or `getpeername`) gives for `fd`;
    /// `None` for a descriptor that is not an IP socket (or was closed).
    #[cfg(unix)]
    #[allow(unsafe_code)]
    fn address(
        fd: libc::c_int,
        get: unsafe extern "C" fn(
            libc::c_int,
            *mut libc::sockaddr,
            *mut libc::socklen_t,
        ) -> libc::c_int,
    ) -> Option<SocketAddr> {
        use std::mem::{size_of, zeroed};
        use std::net::{Ipv4Addr, Ipv6Addr};
        // SAFETY: `addr` is a zeroed `sockaddr_storage` owned here, large
        // enough for any address, and `len` says its size; a descriptor
        // number that is not a socket (or closed meanwhile) just fails.
        unsafe {
            let mut addr: libc::sockaddr_storage = zeroed();
            let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if get(fd, (&raw mut addr).cast(), &mut len) != 0 {
                return None;
            }
            match libc::c_int::from(addr.ss_family) {
                libc::AF_INET => {
                    let a = &*(&raw const addr).cast::<libc::sockaddr_in>();
                    let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                    Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(a.sin_port)))
                }
                libc::AF_INET6 => {
                    let a = &*(&raw const addr).cast::<libc::sockaddr_in6>();
                    let ip = IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)).to_canonical();
                    Some(SocketAddr::new(ip, u16::from_be(a.sin6_port)))
                }
                _ => None,
            }
        }
    }
}
