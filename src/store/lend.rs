//! Lending sqlx connections for calls made one at a time.
//!
//! sqlx hands a used connection back to its pool from a spawned task, so a
//! call made right after another often finds no idle connection and opens a
//! new one, until the pool is full; each later call then waits for that
//! hand-back. Measured on `bench store`: PostgreSQL with TLS opened all 8
//! connections (~90 ms each, see `postgres::nodelay`) and gets stalled; the
//! SQLite pool rotated through its 4 connections, each with its own
//! statement cache.
//!
//! [`Lender`] keeps one connection aside. A call takes it when it is free
//! (the CLI, a replay's steps, the TUI's jobs one after another) and gives
//! it back on drop, synchronously; only calls that overlap with it go to
//! the pool.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tokio::sync::{Mutex, MutexGuard};

/// A connection kept aside longer than this idle is pinged before use.
pub(crate) const IDLE_BEFORE_PING: Duration = Duration::from_secs(5);

pub(crate) struct Kept<DB: Database> {
    conn: Option<PoolConnection<DB>>,
    last_used: Instant,
}

/// A pool with one connection kept aside.
pub(crate) struct Lender<DB: Database> {
    pool: Pool<DB>,
    kept: Mutex<Kept<DB>>,
    /// Set when a query failed because its connection broke: the kept
    /// connection is replaced before its next use.
    broken: AtomicBool,
}

impl<DB: Database> Lender<DB> {
    pub fn new(pool: Pool<DB>) -> Self {
        Lender {
            pool,
            kept: Mutex::new(Kept {
                conn: None,
                last_used: Instant::now(),
            }),
            broken: AtomicBool::new(false),
        }
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection for one query (or a few in a row).
    pub async fn conn(&self) -> Result<Lent<'_, DB>, sqlx::Error> {
        let Ok(mut kept) = self.kept.try_lock() else {
            return Ok(Lent::Pooled(self.pool.acquire().await?));
        };
        if self.broken.swap(false, Ordering::Relaxed) {
            kept.conn = None;
        }
        if kept.last_used.elapsed() > IDLE_BEFORE_PING {
            if let Some(c) = kept.conn.as_mut() {
                if c.ping().await.is_err() {
                    kept.conn = None;
                }
            }
        }
        if kept.conn.is_none() {
            kept.conn = Some(self.pool.acquire().await?);
        }
        Ok(Lent::Kept(kept))
    }

    /// Notes an error: one that means the connection broke (the server
    /// restarted or dropped it) retires the kept connection.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub fn note(&self, e: &sqlx::Error) {
        let broken = matches!(e, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
            || e.as_database_error()
                .and_then(|d| d.code())
                // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now
                .is_some_and(|c| c == "57P01" || c == "57P02" || c == "57P03");
        if broken {
            self.broken.store(true, Ordering::Relaxed);
        }
    }
}

/// A lent connection: the one kept aside, or one from the pool.
pub(crate) enum Lent<'a, DB: Database> {
    Kept(MutexGuard<'a, Kept<DB>>),
    Pooled(PoolConnection<DB>),
}

impl<DB: Database> Deref for Lent<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &Self::Target {
        match self {
            // `conn` fills it before lending it.
            Lent::Kept(k) => k.conn.as_deref().expect("kept connection present"),
            Lent::Pooled(c) => c,
        }
    }
}

impl<DB: Database> DerefMut for Lent<'_, DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Lent::Kept(k) => k.conn.as_deref_mut().expect("kept connection present"),
            Lent::Pooled(c) => c,
        }
    }
}

impl<DB: Database> Drop for Lent<'_, DB> {
    fn drop(&mut self) {
        if let Lent::Kept(k) = self {
            k.last_used = Instant::now();
        }
    }
}

impl<DB: Database> Drop for Lender<DB> {
    fn drop(&mut self) {
        // A pooled connection goes back to its pool from a spawned task, which
        // panics outside a Tokio runtime (a library user dropping the store
        // after its runtime). `detach` and `leak` don't avoid it: with
        // `min_connections` set (SQLite's pool) they still spawn a task to
        // open a replacement. So drop it inside a throwaway runtime: the
        // task is dropped unrun with the runtime, closing the connection.
        if tokio::runtime::Handle::try_current().is_err() {
            if let Some(c) = self.kept.get_mut().conn.take() {
                match tokio::runtime::Builder::new_current_thread().build() {
                    Ok(rt) => {
                        let _in = rt.enter();
                        drop(c);
                    }
                    // No runtime to be had: leaving the connection open
                    // until exit beats a panic in a destructor.
                    Err(_) => std::mem::forget(c),
                }
            }
        }
    }
}
