//! The one bounded file reader: every file modseal reads from disk that an
//! attacker may have written goes through [`read_capped`], so a FIFO, a
//! device or a huge file can neither hang nor exhaust a run.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Linux `O_NONBLOCK`: opening a FIFO must not wait for a writer. It has no
/// effect on regular files.
const O_NONBLOCK: i32 = 0o4000;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// `open(2)` failed.
    #[error("{}: cannot open: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// `fstat(2)` failed.
    #[error("{}: cannot stat: {source}", path.display())]
    Stat {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A FIFO, a device, a directory, a socket.
    #[error("{}: not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// Larger than the caller's cap.
    #[error("{}: {size} bytes, more than the {cap}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size when opened.
        size: u64,
        /// The cap.
        cap: usize,
    },
    /// Reading failed part-way.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file grew past the cap while it was read.
    #[error("{}: grew past the {cap}-byte limit while being read", path.display())]
    Grew {
        /// The file.
        path: PathBuf,
        /// The cap.
        cap: usize,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Open { path, .. }
            | ReadError::Stat { path, .. }
            | ReadError::NotRegular { path }
            | ReadError::TooLarge { path, .. }
            | ReadError::Read { path, .. }
            | ReadError::Grew { path, .. } => path,
        }
    }
}

impl From<ReadError> for std::io::Error {
    /// For callers that report I/O errors with the path beside them: the
    /// system's error where there is one (its kind kept, so `NotFound` stays
    /// `NotFound`), else the reason without the path.
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Open { source, .. }
            | ReadError::Stat { source, .. }
            | ReadError::Read { source, .. } => source,
            ReadError::NotRegular { .. } => std::io::Error::other("not a regular file"),
            ReadError::TooLarge { size, cap, .. } => {
                std::io::Error::other(format!("{size} bytes, more than the {cap}-byte limit"))
            }
            ReadError::Grew { cap, .. } => {
                std::io::Error::other(format!("grew past the {cap}-byte limit while being read"))
            }
        }
    }
}

/// Reads a text file of at most `cap` bytes (see [`read_capped`]) as an
/// [`std::io::Result`], for callers that name the path themselves; bytes that
/// are not UTF-8 are `InvalidData`, as `std::fs::read_to_string` says.
pub fn read_capped_string(path: &Path, cap: usize) -> std::io::Result<String> {
    let bytes = read_capped(path, cap)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Reads a regular file of at most `cap` bytes into `buf` (cleared first;
/// its capacity is reused, so a worker checking thousands of files
/// allocates once).
pub fn read_capped_into(path: &Path, cap: usize, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    buf.clear();
    let p = || path.to_owned();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|source| ReadError::Open { path: p(), source })?;
    let meta = f
        .metadata()
        .map_err(|source| ReadError::Stat { path: p(), source })?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular { path: p() });
    }
    if meta.len() > cap as u64 {
        return Err(ReadError::TooLarge {
            path: p(),
            size: meta.len(),
            cap,
        });
    }
    let len = usize::try_from(meta.len()).unwrap_or(cap);
    buf.reserve(len.saturating_sub(buf.capacity()));
    f.take(cap as u64 + 1)
        .read_to_end(buf)
        .map_err(|source| ReadError::Read { path: p(), source })?;
    if buf.len() > cap {
        return Err(ReadError::Grew { path: p(), cap });
    }
    Ok(())
}

/// Reads a regular file of at most `cap` bytes.
pub fn read_capped(path: &Path, cap: usize) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_capped_into(path, cap, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_and_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, 5).unwrap(), b"12345");
        let e = read_capped(&f, 4).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::TooLarge {
                    size: 5,
                    cap: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e
            .to_string()
            .ends_with("f: 5 bytes, more than the 4-byte limit"));
        assert!(matches!(
            read_capped(dir.path(), 10),
            Err(ReadError::NotRegular { .. })
        ));
        assert!(matches!(
            read_capped(&dir.path().join("missing"), 10),
            Err(ReadError::Open { .. })
        ));
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(matches!(
            read_capped(&fifo, 10),
            Err(ReadError::NotRegular { .. })
        ));
    }
}
