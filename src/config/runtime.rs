//! What the settings open and load for the commands and the TUI: stores
//! by URL, saga definitions, the replay lock's TTL. Errors are the
//! library's; the command line maps them to its exit codes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{data_dir, Settings, StoreAccess};
use crate::compliance::{Compliance, ComplianceError, ComplianceStore};
use crate::engine::{DefinitionError, Definitions};
use crate::store::{self, OpenOptions, SnapshotStore, StoreResult, StoreUrl};

/// The folder `sagascope demo` writes its definitions to; found
/// automatically afterwards (delete it to forget them).
pub fn demo_dir() -> PathBuf {
    data_dir().join("demo")
}

/// A lock TTL that is not a positive number of seconds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--lock-ttl must be a positive number of seconds, not {0}")]
pub struct InvalidLockTtl(pub f64);

impl Settings {
    /// Opens the configured store for an operation of this kind (a
    /// reading one does not create a missing store file or folder).
    pub async fn open_store(&self, access: StoreAccess) -> StoreResult<Arc<dyn SnapshotStore>> {
        let opts = OpenOptions {
            readonly: self.readonly,
            compression: self.compression,
            must_exist: self.store_must_exist(access),
        };
        let store = store::open(&self.store, &opts).await?;
        self.protect(store).await
    }

    /// The `[compliance]` policy of the config.
    pub async fn compliance(&self) -> Result<Compliance, ComplianceError> {
        Compliance::from_config(&self.file.compliance).await
    }

    /// Wraps `store` in the protection layer of the `[compliance]` config
    /// (revealing, with its audit, under `--reveal`).
    pub async fn protect(
        &self,
        store: Arc<dyn SnapshotStore>,
    ) -> StoreResult<Arc<dyn SnapshotStore>> {
        let policy = self.compliance().await?;
        // Always wrapped, even with nothing configured: a value encrypted
        // by another writer still shows as 🔒 here, not as its ciphertext.
        Ok(match &self.reveal {
            Some(audit) => Arc::new(ComplianceStore::revealing(
                store,
                Arc::new(policy),
                audit.clone(),
            )),
            None => Arc::new(ComplianceStore::new(store, Arc::new(policy))),
        })
    }

    /// Opens a store by URL with the settings' compression.
    pub async fn open_store_url(
        &self,
        url: &str,
        readonly: bool,
    ) -> StoreResult<Arc<dyn SnapshotStore>> {
        let opts = OpenOptions {
            readonly,
            compression: self.compression,
            ..OpenOptions::default()
        };
        let store = store::open(&StoreUrl::new(url), &opts).await?;
        self.protect(store).await
    }

    /// Definitions from the config (`engine.definitions`,
    /// `engine.definitions_dirs`), then `extra` (files or folders), then the
    /// demo's folder if `sagascope demo` has written it.
    pub fn load_definitions(&self, extra: &[PathBuf]) -> Result<Definitions, DefinitionError> {
        let e = &self.file.engine;
        let mut files = e.definitions.clone();
        let mut dirs = e.definitions_dirs.clone();
        for p in extra {
            if p.is_dir() {
                dirs.push(p.clone());
            } else {
                files.push(p.clone());
            }
        }
        let mut defs = Definitions::load(&files, &dirs)?;
        let demo = demo_dir();
        if demo.is_dir() {
            defs.add_fallback_dir(&demo)?;
        }
        Ok(defs)
    }

    /// The replay lock's TTL: `flag` (seconds), else `engine.lock_ttl_secs`,
    /// else [`crate::replay::DEFAULT_LOCK_TTL`].
    pub fn lock_ttl(&self, flag: Option<f64>) -> Result<Duration, InvalidLockTtl> {
        match flag {
            Some(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
            Some(s) => Err(InvalidLockTtl(s)),
            None => Ok(self
                .file
                .engine
                .lock_ttl_secs
                .map(Duration::from_secs)
                .unwrap_or(crate::replay::DEFAULT_LOCK_TTL)),
        }
    }
}
