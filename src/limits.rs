//! Caps on what sagascope reads, one constant per kind, and the one way it
//! opens a file someone else may have put in its path: regular files only,
//! opened without blocking, never read past the cap.
//!
//! The caps are far above anything a real saga produces (sagaz contexts of
//! 10 MB exist; a snapshot holding one is ~10 MB stored and decoded) and far
//! below what hurts a machine: a hostile or broken entry — a 4 GB file, a
//! zstd bomb, `/dev/zero` — becomes a named error instead of gigabytes of
//! memory or a hang.

use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::path::Path;

const MIB: usize = 1024 * 1024;

/// Largest snapshot (or replay, index, summary) entry as stored: a file in a
/// folder store, an S3 object, a Redis value — compressed or not.
pub const MAX_STORED_ENTRY_BYTES: usize = 64 * MIB;

/// Largest entry once decompressed (the JSON text). Twice the stored cap:
/// sagaz's folder store indents its JSON, which grows nested contexts.
pub const MAX_DECODED_ENTRY_BYTES: usize = 128 * MIB;

/// Largest `--override-file` (or override on stdin).
pub const MAX_OVERRIDE_BYTES: usize = 16 * MIB;

/// A byte count as people read caps: `64 MiB`, `1000 bytes`.
pub fn human_bytes(n: usize) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileReadError {
    /// Nothing at the path.
    #[error("not found")]
    NotFound,
    /// Something other than a regular file: reading it could block forever
    /// (a FIFO), never end (a device) or mean nothing (a directory).
    #[error("not a regular file: {what}")]
    NotRegular {
        /// What it is instead, e.g. `"a directory"`, `"a FIFO"`,
        /// `"a dangling symbolic link"`.
        what: &'static str,
    },
    /// Larger than the cap for its kind.
    #[error("larger than the {} cap", human_bytes(*cap))]
    TooLarge {
        /// The cap, in bytes.
        cap: usize,
    },
    /// Any other I/O error (permission denied, ...); see [`FileReadError::io_kind`].
    #[error("{0}")]
    Io(io::Error),
}

impl FileReadError {
    /// The I/O error kind, for callers that map permissions.
    pub fn io_kind(&self) -> Option<ErrorKind> {
        match self {
            FileReadError::Io(e) => Some(e.kind()),
            _ => None,
        }
    }
}

/// What a non-regular file is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    "not a file"
}

/// Opens `path` for reading without blocking (a FIFO with no writer would
/// block a plain open forever). Absent is `NotFound`; a dangling symbolic
/// link or a loop of them is `NotRegular`, named, since something is there.
fn open_nonblocking(path: &Path) -> Result<File, FileReadError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    match opts.open(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // A link whose target is missing is there, just broken.
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => Err(FileReadError::NotRegular {
                    what: "a dangling symbolic link",
                }),
                _ => Err(FileReadError::NotFound),
            }
        }
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(FileReadError::NotRegular {
            what: "a symbolic link loop",
        }),
        Err(e) => Err(FileReadError::Io(e)),
    }
}

/// Reads at most `cap` bytes from `r`; more is `TooLarge`.
pub fn read_capped(r: impl Read, cap: usize, size_hint: u64) -> Result<Vec<u8>, FileReadError> {
    let mut out = Vec::with_capacity(size_hint.min(cap as u64) as usize);
    r.take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(FileReadError::Io)?;
    if out.len() > cap {
        return Err(FileReadError::TooLarge { cap });
    }
    Ok(out)
}

/// Reads a regular file whole, `cap` bytes at most, with the metadata of
/// the handle read (not a second lookup of the path, which could name a
/// different file by then).
pub fn read_regular_file(
    path: &Path,
    cap: usize,
) -> Result<(Vec<u8>, std::fs::Metadata), FileReadError> {
    let f = open_nonblocking(path)?;
    let meta = f.metadata().map_err(FileReadError::Io)?;
    if !meta.is_file() {
        return Err(FileReadError::NotRegular {
            what: kind_of(&meta),
        });
    }
    if meta.len() > cap as u64 {
        return Err(FileReadError::TooLarge { cap });
    }
    // O_NONBLOCK means nothing for a regular file; the cap still holds if
    // it grows while being read.
    let bytes = read_capped(f, cap, meta.len())?;
    Ok((bytes, meta))
}

/// Reads an input file a person named (an override): a regular file, or a
/// pipe or device (`<(jq …)`, `/dev/stdin`), `cap` bytes at most. A FIFO
/// with no writer reads as empty instead of blocking; a directory or socket
/// is refused.
pub fn read_input_file(path: &Path, cap: usize) -> Result<Vec<u8>, FileReadError> {
    let f = open_nonblocking(path)?;
    let meta = f.metadata().map_err(FileReadError::Io)?;
    if meta.is_dir() {
        return Err(FileReadError::NotRegular {
            what: "a directory",
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_socket() {
            return Err(FileReadError::NotRegular { what: "a socket" });
        }
        if !meta.is_file() {
            // Blocking reads from here on: a pipe with a writer delivers its
            // data; one with no writer (a FIFO nobody opened) is at its end.
            set_blocking(&f).map_err(FileReadError::Io)?;
        }
    }
    if meta.is_file() && meta.len() > cap as u64 {
        return Err(FileReadError::TooLarge { cap });
    }
    read_capped(f, cap, meta.len())
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn set_blocking(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows, open for the
    // duration of the call; F_GETFL/F_SETFL touch no memory.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_named_in_mib() {
        assert_eq!(human_bytes(MAX_OVERRIDE_BYTES), "16 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(
            FileReadError::TooLarge {
                cap: MAX_STORED_ENTRY_BYTES
            }
            .to_string(),
            "larger than the 64 MiB cap"
        );
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_nothing_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("ok.json"), b"{}").unwrap();
        std::fs::create_dir(p.join("dir.json")).unwrap();
        std::os::unix::fs::symlink(p.join("missing"), p.join("dangling.json")).unwrap();
        std::os::unix::fs::symlink(p.join("loop.json"), p.join("loop.json")).unwrap();
        let fifo = std::ffi::CString::new(p.join("fifo.json").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        #[allow(unsafe_code)]
        let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
        assert_eq!(made, 0);
        assert_eq!(read_regular_file(&p.join("ok.json"), 10).unwrap().0, b"{}");
        for (name, what) in [
            ("dir.json", "a directory"),
            ("dangling.json", "a dangling symbolic link"),
            ("loop.json", "a symbolic link loop"),
            ("fifo.json", "a FIFO"),
        ] {
            match read_regular_file(&p.join(name), 10) {
                Err(FileReadError::NotRegular { what: w }) => assert_eq!(w, what, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(
            read_regular_file(&p.join("absent.json"), 10),
            Err(FileReadError::NotFound)
        ));
        assert!(matches!(
            read_regular_file(&p.join("ok.json"), 1),
            Err(FileReadError::TooLarge { cap: 1 })
        ));
        // An input file may be a FIFO; with no writer it is empty.
        assert_eq!(read_input_file(&p.join("fifo.json"), 10).unwrap(), b"");
        assert!(matches!(
            read_input_file(Path::new("/dev/zero"), 1000),
            Err(FileReadError::TooLarge { cap: 1000 })
        ));
    }
}
