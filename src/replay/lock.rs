//! The replay lock: one replay of a saga at a time. Taken through the
//! store (`SnapshotStore::try_lock`), so it holds across machines where the
//! store is shared (Redis, PostgreSQL) and across processes for SQLite and
//! folders. A heartbeat renews it while the replay runs; a killed process
//! stops renewing, and its lock expires after the TTL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::model::Timestamp;
use crate::store::{LockOutcome, SnapshotStore, StoreError};

/// Default lock lifetime without renewal.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30);

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another owner holds the saga's lock and it has not expired.
    #[error("saga {saga_id} is being replayed by {owner} (lock held until {until}); wait for it to finish or for the lock to expire")]
    Held {
        /// The saga whose lock is held.
        saga_id: String,
        /// The holder, as [`lock_owner`] spells it (`identity@host pid N (tag)`).
        owner: String,
        /// When the lock expires unless its holder renews it.
        until: Timestamp,
    },
    /// The store failed while taking the lock.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lock's name for a saga.
pub fn lock_name(saga_id: &str) -> String {
    format!("replay:{saga_id}")
}

/// Who holds a lock: the identity, the machine and the process, plus a
/// random tag so two replays in one process are told apart.
pub fn lock_owner(identity: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{identity}@{host} pid {} ({})",
        std::process::id(),
        &tag[..8]
    )
}

/// A held replay lock, renewed in the background until released.
#[derive(Debug)]
pub struct ReplayLock {
    store: Arc<dyn SnapshotStore>,
    name: String,
    owner: String,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl ReplayLock {
    /// Takes the lock for a saga or says who holds it.
    pub async fn acquire(
        store: Arc<dyn SnapshotStore>,
        saga_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Self, LockError> {
        let name = lock_name(saga_id);
        match store.try_lock(&name, owner, ttl).await? {
            LockOutcome::Acquired => {}
            LockOutcome::Held { owner, until } => {
                return Err(LockError::Held {
                    saga_id: saga_id.to_string(),
                    owner,
                    until,
                })
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (store, name, owner, lost) =
                (store.clone(), name.clone(), owner.to_string(), lost.clone());
            // Renew well before expiry so one slow round trip does not lose it.
            let every = (ttl / 3).max(Duration::from_millis(50));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.try_lock(&name, &owner, ttl).await {
                        Ok(LockOutcome::Acquired) => {}
                        Ok(LockOutcome::Held { owner: other, .. }) => {
                            tracing::warn!("replay lock {name} lost to {other}");
                            lost.store(true, Ordering::SeqCst);
                        }
                        Err(e) => tracing::warn!("renewing replay lock {name}: {e}"),
                    }
                }
            })
        };
        Ok(ReplayLock {
            store,
            name,
            owner: owner.to_string(),
            heartbeat,
            lost,
        })
    }

    /// Whether another owner took the lock while it was held (the renewal
    /// came too late).
    pub fn was_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The owner string this lock was taken with (see [`lock_owner`]).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Stops renewing and releases the lock.
    pub async fn release(self) -> Result<(), StoreError> {
        self.heartbeat.abort();
        self.store.unlock(&self.name, &self.owner).await
    }
}

impl Drop for ReplayLock {
    fn drop(&mut self) {
        // Dropped without release (an error path): stop renewing so the
        // lock expires on its own.
        self.heartbeat.abort();
    }
}
