//! Files and folders that hold personal data: the embedded SQLite store
//! (and its WAL), logs, exports, batch reports, the `$EDITOR` scratch
//! file. They are made owner-only when they are created — `0600` files,
//! `0700` folders — whatever the umask, because a context holds customer
//! data and a `0644` file in a shared `/tmp` or home is readable by every
//! account on the machine. A file that already exists keeps its mode: the
//! user may have shared it on purpose.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Mode of the files sagascope creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the folders sagascope creates.
pub const DIR_MODE: u32 = 0o700;

fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Creates (or truncates) a file for writing; a new file is `0600`.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Opens a file for appending (a log), creating it `0600`.
pub fn append_private_file(path: &Path) -> io::Result<File> {
    private_options().append(true).create(true).open(path)
}

/// Creates a file that must not exist yet, `0600` (refuses to follow a
/// planted symlink).
pub fn create_new_private_file(path: &Path) -> io::Result<File> {
    private_options().write(true).create_new(true).open(path)
}

/// Writes a whole file, creating it `0600`.
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = create_private_file(path)?;
    f.write_all(contents)?;
    f.flush()
}

/// Creates a folder and any missing parents, each new one `0700`.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(path)
}

/// A fresh `0700` folder under the system temp dir, for a scratch file
/// others must not read or replace; removed (with its contents) on drop.
#[derive(Debug)]
pub struct PrivateTempDir {
    path: PathBuf,
}

impl PrivateTempDir {
    /// Creates `<tmp>/<prefix>-<pid>-<n>`; the folder must be new, so a
    /// folder planted by another account is never used.
    pub fn new(prefix: &str) -> io::Result<Self> {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        for attempt in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!("{prefix}-{pid}-{nanos:x}{attempt}"));
            let mut b = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(DIR_MODE);
            }
            match b.create(&path) {
                Ok(()) => return Ok(PrivateTempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name for a private temp folder",
        ))
    }

    /// The folder's path; it exists until `self` is dropped.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateTempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_files_and_folders_are_owner_only() {
        let root = PrivateTempDir::new("sagascope-files-test").unwrap();
        let dir = root.path().join("a/b");
        create_private_dir_all(&dir).unwrap();
        write_private_file(&dir.join("f"), b"x").unwrap();
        append_private_file(&dir.join("log")).unwrap();
        assert_eq!(mode(root.path()), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("f")), 0o600);
        assert_eq!(mode(&dir.join("log")), 0o600);
        let kept = root.path().to_path_buf();
        drop(root);
        assert!(!kept.exists());
    }
}
