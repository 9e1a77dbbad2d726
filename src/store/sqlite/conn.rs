//! Connections: sqlx's pool, the direct connection snapshot saves use
//! (below), errors and health.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use std::sync::OnceLock;

use super::super::lend::{Lender, Lent};
use super::super::sql::{driver_err, reachable, sql, SqlStore};
use super::url::path_from_url;
use super::*;

pub(super) fn db_err(e: sqlx::Error) -> StoreError {
    driver_err(BACKEND, e)
}

impl SqliteStore {
    /// Opens (creating if needed) the database a `sqlite://` URL names.
    pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<Self> {
        let path = path_from_url(url)?;
        if (opts.must_exist || opts.readonly) && !path.exists() {
            return Err(StoreError::Unreachable {
                url: url.redacted(),
                reason: format!(
                    "{} does not exist (a command that only reads does not create it; check the path)",
                    path.display()
                ),
            });
        }
        Self::open_path(path, opts.readonly).await
    }

    /// Opens (creating if needed) a database file.
    pub async fn open_path(path: PathBuf, readonly: bool) -> StoreResult<Self> {
        let unreachable = |reason: String| StoreError::Unreachable {
            url: format!("sqlite://{}", path.display()),
            reason,
        };
        if !readonly {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::files::create_private_dir_all(dir)
                    .map_err(|e| unreachable(format!("cannot create {}: {e}", dir.display())))?;
            }
            // Created here, owner-only, before SQLite opens it: SQLite makes
            // the -wal and -shm files with the database file's mode.
            match crate::files::create_new_private_file(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(unreachable(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db_err)?
            .filename(&path)
            .create_if_missing(!readonly)
            .read_only(readonly)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        // A local file needs no liveness ping before each use (sqlx's
        // default costs a trip to the worker thread per use).
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(4)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut store = SqliteStore {
            pool: Lender::new(pool),
            path,
            snap_cols: String::new(),
            has_external_refs: false,
            has_snapshot_extra: false,
            has_replay_extra: false,
            replay_from: String::new(),
            insert_sql: String::new(),
            readonly,
            direct: OnceLock::new(),
        };
        store.prepare_schema(readonly).await?;
        Ok(store)
    }

    /// The connection for saves made on the caller's thread, opened on
    /// first use; `None` when read-only or when it can't be opened (saves
    /// then go through the pool).
    pub(super) fn direct(&self) -> Option<&direct::DirectWriter> {
        if self.readonly {
            return None;
        }
        self.direct
            .get_or_init(|| match direct::DirectWriter::open(&self.path) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::debug!("sqlite direct connection not opened: {e}");
                    None
                }
            })
            .as_ref()
    }

    /// A connection for one query (see `store::lend`).
    pub(super) async fn conn(&self) -> StoreResult<Lent<'_, sqlx::Sqlite>> {
        self.pool.conn().await.map_err(db_err)
    }

    /// `db_err`: a local file's connection has no server that can go away.
    pub(super) fn lost(&self, e: sqlx::Error) -> StoreError {
        db_err(e)
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The connection pool, for tools that need raw access (tests, benches).
    pub fn pool(&self) -> &SqlitePool {
        self.pool.pool()
    }

    pub(super) async fn health(&self) -> StoreResult<Health> {
        let latency = self.ping().await?.map_err(db_err)?;
        let count = |table: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *self.pool.conn().await.ok()?)
                .await
                .ok()
                .map(|n| n.max(0) as u64)
        };
        let pages: Option<i64> = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&mut *self.conn().await?)
        .await
        .ok();
        Ok(Health {
            sagas: count("sagascope_sagas").await,
            snapshots: count("saga_snapshots").await,
            replays: count("saga_replay_log").await,
            size_bytes: pages.map(|n| n.max(0) as u64),
            ..reachable(BACKEND, self.location(), latency)
        })
    }
}

pub(super) mod direct {
    //! Snapshot saves made on the caller's thread.
    //!
    //! sqlx runs each SQLite connection on a worker thread of its own and hands
    //! every call to it and back: two cross-thread wake-ups per call. For one
    //! small insert the hand-off costs more than the insert. Measured on this
    //! project's 2-vCPU VM: `SELECT 1` through sqlx 0.047–0.053 ms, a 1 KB
    //! insert through sqlx 0.074–0.10 ms, the same insert made directly
    //! 0.015 ms. The engine saves a snapshot before each step and waits for it
    //! (a `kill -9` must not lose one), so that cost lands on every step.
    //!
    //! [`DirectWriter`] holds one plain SQLite connection (rusqlite, over the
    //! same libsqlite3 that sqlx links) and makes the insert on the calling
    //! thread. It never waits: its busy timeout is zero, so when another
    //! connection holds the write lock the insert returns at once, having
    //! written nothing, and the store falls back to its pool, which waits for
    //! the lock on sqlx's worker thread. An uncontended commit takes ~0.1 ms and
    //! no fsync (WAL with `synchronous=NORMAL`), shorter than a typical poll.
    //!
    //! Checkpoints: SQLite's automatic checkpoint runs inside the commit that
    //! crosses its threshold, copying up to 1000 pages back into the database
    //! and syncing twice, a stall of milliseconds every ~70 saves (measured:
    //! 0.06 ms a save on average). This connection turns it off and instead
    //! wakes a checkpointer thread with its own connection every
    //! [`CHECKPOINT_EVERY`] commits, which runs a passive checkpoint beside the
    //! writer (the arrangement SQLite's documentation suggests for writers that
    //! must not stall). That alone lets the WAL grow without end under
    //! back-to-back saves: SQLite rewinds the WAL only when a write starts with
    //! every frame already copied, and the checkpointer is always a few commits
    //! behind (measured: a 400 MB WAL after 8,400 saves). So once the
    //! checkpointer sees [`REWIND_AT`] frames in the WAL, it stops being woken
    //! and the writer finishes the checkpoint itself right after its next
    //! commit (little is left to copy); the write after that starts the WAL
    //! over. A commit count backs that up in case the thread is starved. If
    //! the thread can't be started, the writer keeps SQLite's automatic
    //! checkpoint.

    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::mpsc::{SyncSender, TrySendError};
    use std::sync::{Arc, Mutex};

    use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql};

    /// Commits between two wake-ups of the checkpointer.
    const CHECKPOINT_EVERY: u32 = 64;

    /// WAL frames (4 KiB pages) after which the writer checkpoints inline, so
    /// the WAL is started over: ~32 MiB, some 700 saves.
    const REWIND_AT: i64 = 8192;

    /// Commits after which the writer rewinds the WAL even if the checkpointer
    /// has not reported it long: a starved checkpointer thread (a busy machine)
    /// must not let the WAL grow. A bit more than [`REWIND_AT`] takes at the
    /// ~11 pages a typical save writes.
    const REWIND_AFTER_COMMITS: u32 = 1000;

    /// What happened to an insert tried on the direct connection.
    pub(in crate::store::sqlite) enum Attempt {
        /// Written and committed.
        Done,
        /// Not written: the caller must write through the pool. `why` says why,
        /// for the debug log.
        Fallback { why: String },
    }

    /// One SQLite connection used from the caller's thread for inserts.
    pub(in crate::store::sqlite) struct DirectWriter {
        /// `None` once the connection failed in a way that is not about a lock
        /// or one row; every later save then goes through the pool.
        conn: Mutex<Option<Connection>>,
        commits: AtomicU32,
        /// Wakes the checkpointer thread; dropping it ends that thread.
        checkpointer: Option<SyncSender<()>>,
        /// Set by the checkpointer when the WAL is long enough to start over.
        rewind_due: Arc<AtomicBool>,
    }

    /// Runs a passive checkpoint: the WAL's length in frames, and whether every
    /// frame was copied.
    fn checkpoint(conn: &Connection) -> rusqlite::Result<(i64, bool)> {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            let (busy, log, copied): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok((log, busy == 0 && copied == log))
        })
    }

    fn open_flags() -> OpenFlags {
        // No CREATE (the store made the file), no URI parsing of the path, and
        // no SQLite mutex: the connection is only used under `conn`'s lock.
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    }

    impl DirectWriter {
        /// Opens the direct connection and its checkpointer for a database
        /// file the store has already opened (and so created and set to WAL).
        pub(in crate::store::sqlite) fn open(path: &Path) -> rusqlite::Result<Self> {
            let conn = Connection::open_with_flags(path, open_flags())?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.busy_timeout(std::time::Duration::ZERO)?;
            let rewind_due = Arc::new(AtomicBool::new(false));
            let checkpointer = match Connection::open_with_flags(path, open_flags()) {
                Ok(ck) => {
                    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
                    let due = rewind_due.clone();
                    let spawned = std::thread::Builder::new()
                        .name("sagascope-sqlite-checkpoint".into())
                        .spawn(move || {
                            // Ends when the writer (and so the sender) is dropped.
                            while rx.recv().is_ok() {
                                // A passive checkpoint copies what it can
                                // without waiting for anyone; a failure here
                                // only leaves the WAL longer until next time.
                                match checkpoint(&ck) {
                                    Ok((frames, _)) if frames >= REWIND_AT => {
                                        due.store(true, Ordering::Relaxed);
                                    }
                                    Ok(_) => {}
                                    Err(e) => tracing::debug!("sqlite checkpoint: {e}"),
                                }
                            }
                        });
                    match spawned {
                        Ok(_) => Some(tx),
                        Err(e) => {
                            tracing::debug!("sqlite checkpointer thread not started: {e}");
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!("sqlite checkpointer connection not opened: {e}");
                    None
                }
            };
            if checkpointer.is_some() {
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            }
            Ok(DirectWriter {
                conn: Mutex::new(Some(conn)),
                commits: AtomicU32::new(0),
                checkpointer,
                rewind_due,
            })
        }

        /// Runs `sql` (one statement) with `params` and commits, unless the
        /// connection is busy elsewhere: see [`Attempt`].
        pub(in crate::store::sqlite) fn execute(
            &self,
            sql: &str,
            params: &[impl ToSql],
        ) -> Attempt {
            // Another task in this process is writing here: don't wait for it.
            let Ok(mut guard) = self.conn.try_lock() else {
                return Attempt::Fallback {
                    why: "direct connection in use".into(),
                };
            };
            let Some(conn) = guard.as_mut() else {
                return Attempt::Fallback {
                    why: "direct connection closed after an earlier error".into(),
                };
            };
            let result = conn
                .prepare_cached(sql)
                .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(params)));
            match result {
                Ok(_) => {
                    self.committed(conn);
                    Attempt::Done
                }
                Err(e) => {
                    // Either way nothing was written, and the pool meets the
                    // same error (if any) and reports it in the store's usual
                    // form. A lock held elsewhere or a row the table refuses
                    // says nothing about this connection; anything else (I/O,
                    // a replaced or read-only file, ...) and it is not trusted
                    // again.
                    let row_or_lock = matches!(
                        e.sqlite_error_code(),
                        Some(
                            ErrorCode::DatabaseBusy
                                | ErrorCode::DatabaseLocked
                                | ErrorCode::ConstraintViolation
                                | ErrorCode::TypeMismatch
                                | ErrorCode::TooBig
                        )
                    );
                    if !row_or_lock {
                        *guard = None;
                    }
                    Attempt::Fallback { why: e.to_string() }
                }
            }
        }

        fn committed(&self, conn: &Connection) {
            if self.checkpointer.is_none() {
                // SQLite's automatic checkpoint is on.
                return;
            }
            let n = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
            // The commit count is a backstop in case the checkpointer thread is
            // starved and never reports the WAL's length.
            if self.rewind_due.load(Ordering::Relaxed) || n >= REWIND_AFTER_COMMITS {
                // The checkpointer is no longer woken, so this one meets no
                // other checkpoint once that one's current run ends. The commit
                // is already durable: an error only delays the rewind.
                match checkpoint(conn) {
                    Ok((_, true)) => {
                        self.rewind_due.store(false, Ordering::Relaxed);
                        // The next write rewinds the WAL, unless another
                        // checkpoint holds it then: start the count over so
                        // the checkpointer is not woken before that write.
                        self.commits.store(0, Ordering::Relaxed);
                    }
                    Ok((_, false)) => {}
                    Err(e) => tracing::debug!("sqlite checkpoint before rewinding the WAL: {e}"),
                }
                return;
            }
            if n.is_multiple_of(CHECKPOINT_EVERY) {
                if let Some(tx) = &self.checkpointer {
                    match tx.try_send(()) {
                        // Full: a wake-up is already pending, which will cover
                        // these commits too.
                        Ok(()) | Err(TrySendError::Full(())) => {}
                        // The thread is gone; it never exits on its own.
                        Err(TrySendError::Disconnected(())) => {}
                    }
                }
            }
        }
    }
}
