//! `file:///dir`: sagaz's `FilesystemSnapshotStorage` layout in a folder.
//!
//! ```text
//! {dir}/snapshots/{saga_id}/{snapshot_id}.json   (.json.gz with compression=gzip)
//! {dir}/indexes/{saga_id}.json                   sagaz's index, newest first, 1,000 at most
//! {dir}/replays/{replay_id}.json
//! {dir}/sagascope/...                            sagascope's own index (see `objects`)
//! ```
//!
//! Files are written as sagaz writes them: `json.dumps(indent=2)`, ASCII
//! escaped, no trailing newline; with `?compression=gzip` every sagaz file
//! is gzip (level 9), and index and replay files keep the `.json` name as
//! sagaz names them. Reads sniff gzip, so either mode reads both trees.
//!
//! Every write goes to a temporary file in the same folder and is renamed
//! over the target, so a reader (sagascope or sagaz) sees the old file or the
//! new one, never half of one. Read-modify-write of shared files (sagaz's
//! index, saga summaries, locks) happens under an exclusive OS file lock on
//! `{dir}/sagascope/.lock`, which holds across processes on one machine and
//! is released by the OS if a holder dies; sagaz's own writers do not take
//! it, which is why sagascope also keeps per-snapshot marker files that no
//! writer ever rewrites.
//!
//! URL: `file:///absolute/dir` or `file://relative/dir`, optional
//! `?compression=gzip|none` (default none, as sagaz's default).

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::store::codec::Compression;
use crate::store::objects::{Driver, Layout, Listed, Obj, ObjectStore, PutMeta};
use crate::store::*;

pub use crate::store::objects::url::parse_url;

const BACKEND: &str = "file";

/// Opens the folder a `file://` URL names (creating it unless read-only).
pub async fn open(url: &StoreUrl, opts: &OpenOptions) -> StoreResult<ObjectStore> {
    let (path, from_url) = parse_url(url)?;
    let compression = match from_url.or(opts.compression) {
        None | Some(Compression::None) => Compression::None,
        Some(Compression::Gzip { level }) => Compression::Gzip { level },
        Some(Compression::Zstd { .. }) => {
            return Err(StoreError::InvalidUrl {
                url: url.redacted(),
                reason: "sagaz's folder store compresses with gzip only; use compression=gzip"
                    .into(),
            })
        }
    };
    if opts.must_exist && !opts.readonly && !path.exists() {
        return Err(StoreError::Unreachable {
            url: url.redacted(),
            reason: format!(
                "{} does not exist (a command that only reads does not create it; check the path)",
                path.display()
            ),
        });
    }
    open_path(path, compression, opts.readonly).await
}

/// Opens a folder store at `path`.
pub async fn open_path(
    path: PathBuf,
    compression: Compression,
    readonly: bool,
) -> StoreResult<ObjectStore> {
    let root = path.clone();
    let prepared = tokio::task::spawn_blocking(move || -> StoreResult<PathBuf> {
        if !readonly {
            // sagaz creates these three on start; its reader expects them.
            for d in ["snapshots", "indexes", "replays", "sagascope"] {
                let p = root.join(d);
                fs::create_dir_all(&p).map_err(|e| io_err(&p, e))?;
            }
        }
        let meta = fs::metadata(&root).map_err(|e| StoreError::Unreachable {
            url: format!("file://{}", root.display()),
            reason: format!("{e}; check the path (read-only mode does not create it)"),
        })?;
        if !meta.is_dir() {
            return Err(StoreError::Unreachable {
                url: format!("file://{}", root.display()),
                reason: "not a folder".into(),
            });
        }
        Ok(root)
    })
    .await
    .map_err(join_err)??;
    let driver = FolderDriver {
        root: prepared,
        gzip: compression != Compression::None,
    };
    Ok(ObjectStore::new(
        Arc::new(driver),
        Layout::folder(compression),
        readonly,
    ))
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == ErrorKind::PermissionDenied {
        return StoreError::PermissionDenied {
            url: format!("file://{}", path.display()),
            reason: e.to_string(),
        };
    }
    StoreError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

fn join_err(e: tokio::task::JoinError) -> StoreError {
    StoreError::backend(BACKEND, format!("file task failed: {e}"))
}

/// Files in a folder.
#[derive(Debug)]
struct FolderDriver {
    root: PathBuf,
    gzip: bool,
}

/// Changes on every rewrite: a rename brings a new inode, and in-place
/// writers (sagaz) change the size or modification time.
fn etag_of(meta: &fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let ino = 0u64;
    format!("{ino:x}-{:x}-{mtime:x}", meta.len())
}

fn read_obj(path: &Path) -> StoreResult<Option<Obj>> {
    use crate::limits::{read_regular_file, FileReadError, MAX_STORED_ENTRY_BYTES};
    match read_regular_file(path, MAX_STORED_ENTRY_BYTES) {
        Ok((bytes, meta)) => Ok(Some(Obj {
            bytes,
            etag: etag_of(&meta),
            meta: vec![],
        })),
        Err(FileReadError::NotFound) => Ok(None),
        Err(FileReadError::Io(e)) => Err(io_err(path, e)),
        // A FIFO, directory, broken link or oversized file where an entry
        // should be: the caller names it as a bad entry and goes on.
        Err(e) => Err(StoreError::corrupt(path.display().to_string(), None, e)),
    }
}

fn current_etag(path: &Path) -> StoreResult<Option<String>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(etag_of(&m))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

/// Writes to a temporary file beside the target, then renames it over.
fn write_atomic(path: &Path, body: &[u8]) -> StoreResult<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("entry");
    // Starts with '.' and ends in '.tmp', so neither sagaz's `*.json`
    // readers nor sagascope's listings ever pick it up.
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

impl FolderDriver {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Runs `f` holding the store-wide exclusive lock.
    fn locked<T>(&self, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
        let path = self.root.join("sagascope").join(".lock");
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.lock().map_err(|e| io_err(&path, e))?;
        let out = f();
        // Closing the file releases the lock too; unlocking first makes
        // the release explicit and immediate.
        let _ = file.unlock();
        out
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FolderDriver) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let me = FolderDriver {
            root: self.root.clone(),
            gzip: self.gzip,
        };
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(join_err)?
    }

    fn remove(&self, key: &str) -> StoreResult<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
        // Empty per-saga folders go too; the top-level ones sagaz made stay.
        if key.matches('/').count() >= 2 {
            if let Some(parent) = path.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        Ok(())
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Listed>) -> StoreResult<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| io_err(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = ent.path();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => match fs::symlink_metadata(&path) {
                // A broken link (dangling, or a loop) is listed as what it
                // is, so the read that follows names it as a bad entry.
                Ok(link) => link,
                // Deleted between listing and stat.
                Err(_) if e.kind() == ErrorKind::NotFound => continue,
                Err(_) => return Err(io_err(&path, e)),
            },
        };
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            out.push(Listed {
                key: key.join("/"),
                etag: etag_of(&meta),
                size: meta.len(),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl Driver for FolderDriver {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self) -> String {
        let q = if self.gzip { "?compression=gzip" } else { "" };
        format!("file://{}{q}", self.root.display())
    }

    fn distributed(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Obj>> {
        let key = key.to_string();
        self.blocking(move |d| read_obj(&d.path(&key))).await
    }

    async fn put(&self, key: &str, body: Vec<u8>, _meta: &PutMeta) -> StoreResult<()> {
        let key = key.to_string();
        self.blocking(move |d| write_atomic(&d.path(&key), &body))
            .await
    }

    async fn put_if(
        &self,
        key: &str,
        body: Vec<u8>,
        expect: Option<&str>,
        _meta: &PutMeta,
    ) -> StoreResult<Option<String>> {
        let key = key.to_string();
        let expect = expect.map(str::to_string);
        self.blocking(move |d| {
            let path = d.path(&key);
            d.locked(|| {
                if current_etag(&path)? != expect {
                    return Ok(None);
                }
                write_atomic(&path, &body)?;
                current_etag(&path)
            })
        })
        .await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.blocking(move |d| d.remove(&key)).await
    }

    async fn delete_if(&self, key: &str, etag: &str) -> StoreResult<bool> {
        let key = key.to_string();
        let etag = etag.to_string();
        self.blocking(move |d| {
            d.locked(|| {
                if current_etag(&d.path(&key))?.as_deref() != Some(etag.as_str()) {
                    return Ok(false);
                }
                d.remove(&key)?;
                Ok(true)
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<Listed>> {
        let prefix = prefix.to_string();
        self.blocking(move |d| {
            let mut out = vec![];
            walk(&d.root, &d.path(&prefix), &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn list_dirs(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let prefix = prefix.to_string();
        self.blocking(move |d| {
            let dir = d.path(&prefix);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
                Err(e) => return Err(io_err(&dir, e)),
            };
            let mut out = vec![];
            for ent in rd {
                let ent = ent.map_err(|e| io_err(&dir, e))?;
                if ent.file_type().is_ok_and(|t| t.is_dir()) {
                    if let Some(n) = ent.file_name().to_str().filter(|n| !n.starts_with('.')) {
                        out.push(n.to_string());
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|d| {
            fs::metadata(&d.root)
                .map(|_| ())
                .map_err(|e| StoreError::Unreachable {
                    url: d.location(),
                    reason: e.to_string(),
                })
        })
        .await
    }
}
