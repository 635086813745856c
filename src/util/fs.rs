//! File writing that never leaves a half-written file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A name no other process can predict: an attacker who can write the
/// directory must not be able to plant a symlink or file where modseal is
/// about to write (std's `RandomState` is seeded from the OS's randomness).
fn unpredictable_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{}.{:016x}", std::process::id(), h.finish())
}

/// Creates `path` for writing: never an existing file (`O_EXCL`) and never
/// through a symlink (`O_NOFOLLOW`).
fn create_exclusive(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o644)
        .open(path)
}

/// Writes `data` to a fresh temporary file beside `path` (unpredictable
/// name, `O_EXCL|O_NOFOLLOW`), syncs it, then renames it over `path`:
/// readers see the old file or the new one, never a mix, and a symlink
/// planted at `path` is replaced, not followed.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", unpredictable_suffix()));
    let mut f = create_exclusive(&tmp)?;
    let result = (|| {
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = create_exclusive(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Opens `path` for appending, creating it if absent, never through a
/// symlink (`O_NOFOLLOW`): the event log is written by root early in boot,
/// in a directory an attacker may have prepared.
pub fn open_append_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o644)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `files` into a fresh directory beside `dir`, syncs it, then puts
/// it in `dir`'s place: a rename when `dir` is absent, else one
/// `renameat2(RENAME_EXCHANGE)` (two renames where the filesystem lacks it)
/// and the old contents removed. Readers see the old set or the new one.
pub fn write_dir_replacing(dir: &Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    let name = dir
        .file_name()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the output directory has no name",
            )
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let stamp = unpredictable_suffix();
    let tmp = parent.join(format!(".{name}.new.{stamp}"));
    std::fs::create_dir(&tmp)?;
    let result = (|| {
        for (file, data) in files {
            write_synced(&tmp.join(file), data)?;
        }
        sync_dir(&tmp)?;
        if std::fs::symlink_metadata(dir).is_ok() {
            exchange_dir(&tmp, dir, &parent, &name, &stamp)?;
        } else {
            std::fs::rename(&tmp, dir)?;
        }
        sync_dir(&parent)
    })();
    if std::fs::symlink_metadata(&tmp).is_ok() {
        if let Err(e) = std::fs::remove_dir_all(&tmp) {
            log::warn!("{}: cannot remove: {e}", tmp.display());
        }
    }
    result
}

fn exchange_dir(
    new: &Path,
    dir: &Path,
    parent: &Path,
    name: &str,
    stamp: &str,
) -> std::io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, new, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(e)
            if e == rustix::io::Errno::INVAL
                || e == rustix::io::Errno::NOSYS
                || e == rustix::io::Errno::OPNOTSUPP =>
        {
            log::debug!("renameat2(RENAME_EXCHANGE) unsupported here ({e}); renaming in two steps");
            let old = parent.join(format!(".{name}.old.{stamp}"));
            std::fs::rename(dir, &old)?;
            if let Err(e) = std::fs::rename(new, dir) {
                let _ = std::fs::rename(&old, dir);
                return Err(e);
            }
            std::fs::rename(&old, new)
        }
        Err(e) => Err(e.into()),
    }
}

/// Why a directory may not be replaced as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplaceDirError {
    /// The directory (or its symlink's target) cannot be examined.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path examined.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// Something other than a directory is in the way.
    #[error("{} exists and is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The directory holds files modseal did not write there.
    #[error(
        "{} holds files that are not {what} ({}); it is replaced as a whole{when}, so use an empty or modseal-only directory",
        dir.display(),
        names.join(", ")
    )]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// Whose files it may hold ("a quote's").
        what: &'static str,
        /// When it is replaced (" on enroll"), or nothing.
        when: &'static str,
        /// The other files' names, sorted.
        names: Vec<String>,
    },
}

/// Checks that `dir` may be replaced as a whole by [`write_dir_replacing`]:
/// absent, or a directory (a symlink is followed; its target is returned)
/// holding only `allowed` names, so a mistyped path never wipes other files.
/// `what` and `when` word the refusal ([`ReplaceDirError::Foreign`]).
pub fn prepare_replaceable_dir(
    dir: &Path,
    allowed: &[&str],
    what: &'static str,
    when: &'static str,
) -> Result<PathBuf, ReplaceDirError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReplaceDirError::Io { path, source }
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(dir.to_path_buf()),
        Err(e) => return Err(io_at(dir)(e)),
        Ok(m) => m,
    };
    let target = if meta.file_type().is_symlink() {
        std::fs::canonicalize(dir).map_err(io_at(dir))?
    } else {
        dir.to_path_buf()
    };
    let io = |e: std::io::Error| io_at(&target)(e);
    if !std::fs::metadata(&target).map_err(io)?.is_dir() {
        return Err(ReplaceDirError::NotADirectory(target));
    }
    let mut foreign = Vec::new();
    for entry in std::fs::read_dir(&target).map_err(io)? {
        let name = entry
            .map_err(io)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !allowed.contains(&name.as_str()) {
            foreign.push(name);
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        return Err(ReplaceDirError::Foreign {
            dir: target,
            what,
            when,
            names: foreign,
        });
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_a_planted_symlink_instead_of_following_it() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let out = d.path().join("out");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomic(&out, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&out)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&out).unwrap(), b"new");
        // Nothing left behind.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn temporary_names_are_not_predictable() {
        assert_ne!(unpredictable_suffix(), unpredictable_suffix());
    }

    #[test]
    fn append_refuses_symlinks_and_non_files() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let log = d.path().join("log");
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        assert!(open_append_nofollow(&log).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(open_append_nofollow(d.path()).is_err());
        let real = d.path().join("real");
        {
            let mut f = open_append_nofollow(&real).unwrap();
            f.write_all(b"a").unwrap();
        }
        let mut f = open_append_nofollow(&real).unwrap();
        f.write_all(b"b").unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), b"ab");
    }
}
