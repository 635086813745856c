//! Reading the configuration under a root directory: which files the
//! loaders would open (links followed inside the root), their bytes, their
//! SHA-256. The parsing is [`super::parse`]'s.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use sha2::Digest as _;

use super::parse::{
    is_conf_name, parse_modprobe_conf, parse_modules_load, ConfigFile, Kind, ParseError,
    DEPMOD_FILES, MAX_FILE, MODPROBE_DIRS, MODULES_LOAD_DIRS,
};
use crate::util::read::{read_capped, ReadError};

/// Most configuration files in one scan.
pub const MAX_FILES: usize = 1_000;
/// Most symbolic links followed resolving one path (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Why a scan failed. Every variant names the file or directory (control
/// characters escaped: messages go to the kernel log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModprobeError {
    /// A file whose text was refused.
    #[error("{}: {source}", path.escape_debug())]
    Parse {
        /// The file, relative to the root.
        path: String,
        /// Why.
        source: ParseError,
    },
    /// A file that could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A path that could not be examined.
    #[error("{}: cannot stat: {source}", path.display())]
    Stat {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A directory that could not be listed.
    #[error("{}: cannot list: {source}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A `*.conf` entry that is not a regular file nor a link to one (a
    /// directory, a FIFO, a device, a dangling link): kmod skips it with an
    /// error; refused here.
    #[error("{}: not a regular file", path.escape_debug())]
    NotRegular {
        /// The entry, relative to the root.
        path: String,
    },
    /// A chain of more than 40 symbolic links.
    #[error("{}: too many levels of symbolic links", path.escape_debug())]
    Loop {
        /// The path being resolved, relative to the root.
        path: String,
    },
    /// A `*.conf` entry whose name is not UTF-8.
    #[error("{}: file name is not UTF-8", path.display())]
    NotUtf8Name {
        /// The entry, relative to the root.
        path: PathBuf,
    },
    /// More than [`MAX_FILES`] files.
    #[error("more than {cap} configuration files")]
    TooManyFiles {
        /// The cap.
        cap: usize,
    },
}

/// Hashes and parses one file's bytes. `path` is root-relative; this is the
/// entry point for a reader that holds the file already (an initramfs
/// image's member, for example).
pub fn parse_file(path: &str, kind: Kind, bytes: &[u8]) -> Result<ConfigFile, ModprobeError> {
    let parsed = match kind {
        Kind::Modprobe | Kind::Depmod => parse_modprobe_conf(bytes),
        Kind::ModulesLoad => parse_modules_load(bytes),
    };
    let commands = parsed.map_err(|source| ModprobeError::Parse {
        path: path.to_owned(),
        source,
    })?;
    Ok(ConfigFile {
        path: path.to_owned(),
        kind,
        sha256: sha2::Sha256::digest(bytes).into(),
        commands,
    })
}

/// Every `modprobe.d` and `modules-load.d` file under `root` (an initramfs
/// root, `/` at boot), sorted by path. Links are followed inside `root`, as
/// if it were `/`. A directory reached twice (`lib` a link to `usr/lib`) is
/// read once; a file that kmod would skip because one of the same name comes
/// earlier is read all the same (refusing more is the safe side).
pub fn scan(root: &Path) -> Result<Vec<ConfigFile>, ModprobeError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let groups = [
        (Kind::Modprobe, MODPROBE_DIRS),
        (Kind::ModulesLoad, MODULES_LOAD_DIRS),
    ];
    for (kind, dirs) in groups {
        for dir in dirs {
            scan_dir(root, dir, kind, &mut seen, &mut out)?;
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The files of a module directory (`module_dir` root-relative, such as
/// `lib/modules/6.1.0-18-amd64`) that kmod parses as configuration: the
/// [`DEPMOD_FILES`] that exist.
pub fn scan_module_dir(root: &Path, module_dir: &str) -> Result<Vec<ConfigFile>, ModprobeError> {
    let mut out = Vec::new();
    for name in DEPMOD_FILES {
        let rel = format!("{}/{name}", module_dir.trim_end_matches('/'));
        if resolve_in_root(root, &rel)?.is_some() {
            out.push(read_config(root, &rel, Kind::Depmod)?);
        }
    }
    Ok(out)
}

/// One configuration directory: each `*.conf` entry in name order. A
/// "directory" that is a file is read as one file, as kmod does.
fn scan_dir(
    root: &Path,
    dir: &str,
    kind: Kind,
    seen: &mut BTreeSet<(Kind, PathBuf)>,
    out: &mut Vec<ConfigFile>,
) -> Result<(), ModprobeError> {
    let Some(resolved) = resolve_in_root(root, dir)? else {
        return Ok(());
    };
    if !seen.insert((kind, resolved.clone())) {
        return Ok(());
    }
    let abs = root.join(&resolved);
    let is_dir = resolved != Path::new("dev/null")
        && std::fs::metadata(&abs)
            .map_err(|source| ModprobeError::Stat {
                path: abs.clone(),
                source,
            })?
            .is_dir();
    if !is_dir {
        out.push(read_config(root, dir, kind)?);
        return Ok(());
    }
    let list_err = |source| ModprobeError::List {
        path: abs.clone(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&abs).map_err(list_err)? {
        let name = entry.map_err(list_err)?.file_name();
        if !is_conf_name(name.as_bytes()) {
            continue;
        }
        let name = name_utf8(dir, name)?;
        if out.len() + names.len() >= MAX_FILES {
            return Err(ModprobeError::TooManyFiles { cap: MAX_FILES });
        }
        names.push(name);
    }
    names.sort();
    for name in names {
        out.push(read_config(root, &format!("{dir}/{name}"), kind)?);
    }
    Ok(())
}

fn name_utf8(dir: &str, name: OsString) -> Result<String, ModprobeError> {
    name.into_string()
        .map_err(|name| ModprobeError::NotUtf8Name {
            path: Path::new(dir).join(name),
        })
}

/// Reads and parses the file at root-relative `rel`, links resolved inside
/// `root`. A link to `/dev/null` (the way to mask a file of the same name)
/// reads as empty.
fn read_config(root: &Path, rel: &str, kind: Kind) -> Result<ConfigFile, ModprobeError> {
    let not_regular = || ModprobeError::NotRegular {
        path: rel.to_owned(),
    };
    let target = resolve_in_root(root, rel)?.ok_or_else(not_regular)?;
    let bytes = if target == Path::new("dev/null") {
        Vec::new()
    } else {
        let abs = root.join(&target);
        let meta = std::fs::metadata(&abs).map_err(|source| ModprobeError::Stat {
            path: abs.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(not_regular());
        }
        read_capped(&abs, MAX_FILE)?
    };
    parse_file(rel, kind, &bytes)
}

/// A part of a path still to resolve.
enum Part {
    Up,
    Name(OsString),
}

/// Pushes `path`'s parts so that the first is popped first.
fn push_parts(todo: &mut Vec<Part>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::Normal(name) => todo.push(Part::Name(name.to_owned())),
            Component::ParentDir => todo.push(Part::Up),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

/// `done` with the parts still to resolve applied, links ignored.
fn rest_of(mut done: PathBuf, todo: &[Part]) -> PathBuf {
    for part in todo.iter().rev() {
        match part {
            Part::Up => {
                done.pop();
            }
            Part::Name(name) => done.push(name),
        }
    }
    done
}

/// Resolves root-relative `rel` as if `root` were `/`: an absolute link
/// restarts at `root`, `..` stops at it. Returns the root-relative path of
/// the final target (not a link), or `None` if some part does not exist.
fn resolve_in_root(root: &Path, rel: &str) -> Result<Option<PathBuf>, ModprobeError> {
    let mut done = PathBuf::new();
    let mut todo = Vec::new();
    push_parts(&mut todo, Path::new(rel));
    let mut links = 0;
    while let Some(part) = todo.pop() {
        let name = match part {
            Part::Up => {
                done.pop();
                continue;
            }
            Part::Name(name) => name,
        };
        let next = done.join(&name);
        let abs = root.join(&next);
        let stat_err = |source| ModprobeError::Stat {
            path: abs.clone(),
            source,
        };
        let meta = match std::fs::symlink_metadata(&abs) {
            Ok(meta) => meta,
            // What kmod cannot reach either: nothing to read there.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                // `/dev/null` masks a file, whether or not an image on a
                // host has it.
                let dev_null = Path::new("dev/null");
                return Ok((rest_of(next, &todo) == dev_null).then(|| dev_null.to_owned()));
            }
            Err(e) => return Err(stat_err(e)),
        };
        if !meta.file_type().is_symlink() {
            done = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            let path = rel.to_owned();
            return Err(ModprobeError::Loop { path });
        }
        let target = std::fs::read_link(&abs).map_err(stat_err)?;
        if target.has_root() {
            done = PathBuf::new();
        }
        push_parts(&mut todo, &target);
    }
    Ok(Some(done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::modprobe::parse::{Command, Directive};

    #[test]
    fn parse_file_hashes_the_exact_bytes() {
        let f = parse_file("etc/modules-load.d/e.conf", Kind::ModulesLoad, b"").unwrap();
        assert_eq!(
            crate::util::hex::lower(&f.sha256),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let f = parse_file("etc/modprobe.d/a.conf", Kind::Modprobe, b"abc").unwrap();
        assert_eq!(
            crate::util::hex::lower(&f.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let e = parse_file("etc/modprobe.d/a.conf", Kind::Modprobe, b"\0").unwrap_err();
        assert_eq!(e.to_string(), "etc/modprobe.d/a.conf: line 1: a NUL byte");
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn link(root: &Path, rel: &str, target: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    #[test]
    fn scan_reads_every_directory_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "etc/modprobe.d/a.conf", "install foo /bin/evil\n");
        write(root, "etc/modprobe.d/.hidden.conf", "install x /bin/x\n");
        write(root, "etc/modprobe.d/README", "install x /bin/x\n");
        std::fs::create_dir_all(root.join("etc/modprobe.d/sub")).unwrap();
        write(root, "usr/lib/modprobe.d/b.conf", "options b c=1\n");
        // Merged /usr: read once, under the first name.
        link(root, "lib", "usr/lib");
        // An absolute link resolves inside the root, not on the host.
        link(root, "etc/modprobe.d/c.conf", "/usr/lib/modprobe.d/b.conf");
        link(root, "etc/modprobe.d/masked.conf", "/dev/null");
        write(root, "usr/lib/modules-load.d/m.conf", "virtio_blk\n");
        let files = scan(root).unwrap();
        let paths: Vec<(&str, Kind)> = files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            paths,
            [
                ("etc/modprobe.d/a.conf", Kind::Modprobe),
                ("etc/modprobe.d/c.conf", Kind::Modprobe),
                ("etc/modprobe.d/masked.conf", Kind::Modprobe),
                ("usr/lib/modprobe.d/b.conf", Kind::Modprobe),
                ("usr/lib/modules-load.d/m.conf", Kind::ModulesLoad),
            ]
        );
        assert_eq!(files[1].sha256, files[3].sha256);
        assert_eq!(files[2].commands, []);
        assert_eq!(files[4].commands.len(), 1);
        assert_eq!(
            files[0].commands,
            [Command {
                line: 1,
                directive: Directive::Install {
                    module: "foo".into(),
                    command: "/bin/evil".into()
                }
            }]
        );
        assert_eq!(scan(tempfile::tempdir().unwrap().path()).unwrap(), []);
    }

    #[test]
    fn scan_refuses_entries_kmod_would_skip() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/modprobe.d/d.conf")).unwrap();
        let e = scan(root).unwrap_err();
        assert!(
            matches!(&e, ModprobeError::NotRegular { path } if path == "etc/modprobe.d/d.conf"),
            "{e}"
        );
        std::fs::remove_dir(root.join("etc/modprobe.d/d.conf")).unwrap();
        link(root, "etc/modprobe.d/gone.conf", "/nowhere.conf");
        let e = scan(root).unwrap_err();
        assert_eq!(
            e.to_string(),
            "etc/modprobe.d/gone.conf: not a regular file"
        );
        std::fs::remove_file(root.join("etc/modprobe.d/gone.conf")).unwrap();
        link(root, "etc/modprobe.d/loop.conf", "loop.conf");
        let e = scan(root).unwrap_err();
        assert!(
            matches!(&e, ModprobeError::Loop { path } if path == "etc/modprobe.d/loop.conf"),
            "{e}"
        );
        std::fs::remove_file(root.join("etc/modprobe.d/loop.conf")).unwrap();
        let fifo = root.join("etc/modprobe.d/f.conf");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = scan(root).unwrap_err();
        assert!(
            matches!(&e, ModprobeError::NotRegular { path } if path == "etc/modprobe.d/f.conf"),
            "{e}"
        );
        std::fs::remove_file(&fifo).unwrap();
        write(root, "etc/modprobe.d/bad.conf", "install a /bin/\u{0}\n");
        let e = scan(root).unwrap_err();
        assert_eq!(e.to_string(), "etc/modprobe.d/bad.conf: line 1: a NUL byte");
    }

    #[test]
    fn a_config_directory_that_is_a_file_is_read_as_kmod_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "run/modprobe.d", "install foo /bin/evil\n");
        let files = scan(root).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "run/modprobe.d");
        assert!(matches!(
            files[0].commands[0].directive,
            Directive::Install { .. }
        ));
        // A directory masked by /dev/null reads as one empty file.
        link(root, "etc/modprobe.d", "/dev/null");
        let files = scan(root).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            (files[0].path.as_str(), files[0].commands.len()),
            ("etc/modprobe.d", 0)
        );
    }

    #[test]
    fn scan_module_dir_reads_the_depmod_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "usr/lib/modules/6.1.0/modules.softdep",
            "# Soft dependencies extracted from modules themselves.\nsoftdep ext4 pre: crc32c\ninstall ext4 /bin/evil\n",
        );
        link(root, "lib", "usr/lib");
        let files = scan_module_dir(root, "lib/modules/6.1.0/").unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "lib/modules/6.1.0/modules.softdep");
        assert_eq!(files[0].kind, Kind::Depmod);
        assert_eq!(files[0].commands[1].line, 3);
        assert!(matches!(
            files[0].commands[1].directive,
            Directive::Install { .. }
        ));
        assert_eq!(scan_module_dir(root, "lib/modules/other").unwrap(), []);
    }
}
