//! `TCP_NODELAY` on a PostgreSQL store's connections, and on nothing else:
//! a program embedding the library keeps its own sockets as it set them,
//! even those to the same server.
#![cfg(all(target_os = "linux", feature = "postgres"))]

#[path = "common/mod.rs"]
mod common;

use std::os::fd::{AsRawFd, RawFd};

use common::*;
use sagascope::store::postgres::PostgresStore;
use sagascope::store::{OpenOptions, SagaFilter, SnapshotStore, StoreUrl};

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_PORT: u16 = 5432;

/// The descriptors of this process's TCP sockets connected to `port`.
#[allow(unsafe_code)]
fn sockets_to(port: u16) -> Vec<RawFd> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // SAFETY: getpeername into a zeroed sockaddr_storage owned here,
        // with its size given; a descriptor that is not a socket just fails.
        let peer_port = unsafe {
            let mut addr: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if libc::getpeername(fd, (&raw mut addr).cast(), &mut len) != 0 {
                continue;
            }
            match libc::c_int::from(addr.ss_family) {
                libc::AF_INET => {
                    u16::from_be((*(&raw const addr).cast::<libc::sockaddr_in>()).sin_port)
                }
                libc::AF_INET6 => {
                    u16::from_be((*(&raw const addr).cast::<libc::sockaddr_in6>()).sin6_port)
                }
                _ => continue,
            }
        };
        if peer_port == port {
            out.push(fd);
        }
    }
    out
}

/// Whether `TCP_NODELAY` is set on a socket.
#[allow(unsafe_code)]
fn nodelay(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a c_int owned here, with its size given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt(TCP_NODELAY) on fd {fd}");
    value != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodelay_is_set_on_the_stores_connections_and_no_other_socket() {
    if !backend_available("postgres", PG, tcp_open("127.0.0.1:5432")) {
        return;
    }
    // A socket of the embedding program, to the same server, opened first.
    let foreign = std::net::TcpStream::connect(("127.0.0.1", PG_PORT)).unwrap();
    assert!(
        !foreign.nodelay().unwrap(),
        "a new socket starts without it"
    );

    let url = StoreUrl::new(format!("{PG}?schema=t_{}&pool_max=4", unique_tag()));
    let store = PostgresStore::open(&url, &OpenOptions::default())
        .await
        .expect("open postgres");
    // Calls at once, so the pool opens more than its first connection.
    let filter = SagaFilter::default();
    let calls = (0..6).map(|_| store.count_sagas(&filter));
    for n in futures::future::join_all(calls).await {
        n.expect("count_sagas");
    }

    let ours: Vec<RawFd> = sockets_to(PG_PORT)
        .into_iter()
        .filter(|fd| *fd != foreign.as_raw_fd())
        .collect();
    assert!(!ours.is_empty(), "the store holds a connection");
    for fd in &ours {
        assert!(
            nodelay(*fd),
            "the store's connection on fd {fd} has TCP_NODELAY"
        );
    }
    assert!(
        !nodelay(foreign.as_raw_fd()),
        "the embedding program's socket to the same server was left as it was"
    );
    assert!(!foreign.nodelay().unwrap());
    drop(store);
}
