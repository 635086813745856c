//! Where a stage runs: in an initramfs or not, and which kernel's module
//! directory it must verify there.

use std::path::{Path, PathBuf};

/// `f_type` of ramfs (the kernel's `RAMFS_MAGIC`).
const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// `f_type` of tmpfs (the kernel's `TMPFS_MAGIC`), which the kernel uses for
/// the initramfs rootfs when `CONFIG_TMPFS` is set and `root=` is given.
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Whether `/` is the initramfs: the kernel unpacks it into a ramfs or tmpfs
/// root. Asked of the kernel, not of a file: a file in the image (such as
/// `/etc/initrd-release`) is the attacker's to remove.
pub fn in_initramfs() -> bool {
    rustix::fs::statfs("/").is_ok_and(|s| {
        // f_type's integer type differs between targets.
        #[allow(clippy::unnecessary_cast)]
        let t = s.f_type as u64;
        t == RAMFS_MAGIC || t == TMPFS_MAGIC
    })
}

/// The running kernel's release under `root` (`proc/sys/kernel/osrelease`).
pub fn kernel_release(root: &Path) -> String {
    crate::util::read::read_capped_string(&root.join("proc/sys/kernel/osrelease"), 4096)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The module directory of `release` under `root`, as kmod looks for it:
/// `lib/modules/<release>`, else `usr/lib/modules/<release>` (Debian's 7.x
/// layout). An empty or path-like release names no directory.
pub fn kernel_module_dir(root: &Path, release: &str) -> PathBuf {
    let release = if release.is_empty() || release.contains('/') || release.starts_with('.') {
        "unknown-release"
    } else {
        release
    };
    let lib = root.join("lib/modules").join(release);
    let usr = root.join("usr/lib/modules").join(release);
    if !lib.exists() && usr.exists() {
        usr
    } else {
        lib
    }
}

/// The initramfs's own root as the kernel unpacked it, without what was
/// mounted over it since (systemd's tmpfs on `/run`, `/proc`, `/sys`, …):
/// a file the image put under such a mount point was visible to PID 1's
/// first module loads and is hidden from the live `/`.
#[derive(Debug)]
pub struct RootUnderneath {
    fd: rustix::fd::OwnedFd,
}

impl RootUnderneath {
    /// A detached, non-recursive clone of the `/` mount (`open_tree` with
    /// `OPEN_TREE_CLONE`, Linux 5.2+; needs CAP_SYS_ADMIN).
    pub fn open() -> std::io::Result<Self> {
        use rustix::mount::{open_tree, OpenTreeFlags};
        let fd = open_tree(
            rustix::fs::CWD,
            "/",
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )?;
        Ok(RootUnderneath { fd })
    }

    /// A path that reaches the clone (through `/proc/self/fd`).
    pub fn path(&self) -> PathBuf {
        use rustix::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// When `lib/modules/<release>` and `usr/lib/modules/<release>` are both
/// there and are not one directory (a `lib` link to `usr/lib`): kmod built
/// for one layout loads from a tree modseal did not verify. A refusal text.
pub fn module_dir_conflict(root: &Path, release: &str) -> Option<String> {
    let lib = root.join("lib/modules").join(release);
    let usr = root.join("usr/lib/modules").join(release);
    match (std::fs::canonicalize(&lib), std::fs::canonicalize(&usr)) {
        (Ok(a), Ok(b)) if a != b => Some(format!(
            "two module directories for {release}: {} and {} are different trees; kmod loads from one of them, so neither alone is what the kernel can load",
            lib.display(),
            usr.display()
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_dir_follows_kmod() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        assert_eq!(
            kernel_module_dir(r, "6.1.0-1"),
            r.join("lib/modules/6.1.0-1")
        );
        std::fs::create_dir_all(r.join("usr/lib/modules/7.3.4")).unwrap();
        assert_eq!(
            kernel_module_dir(r, "7.3.4"),
            r.join("usr/lib/modules/7.3.4")
        );
        assert_eq!(
            kernel_module_dir(r, "../x"),
            r.join("lib/modules/unknown-release")
        );
        assert_eq!(
            kernel_module_dir(r, ""),
            r.join("lib/modules/unknown-release")
        );
        std::fs::create_dir_all(r.join("proc/sys/kernel")).unwrap();
        std::fs::write(r.join("proc/sys/kernel/osrelease"), "7.3.4\n").unwrap();
        assert_eq!(kernel_release(r), "7.3.4");
        // The build machine's / is a disk, not an initramfs.
        assert!(!in_initramfs());
        assert_eq!(module_dir_conflict(r, "7.3.4"), None);
        std::fs::create_dir_all(r.join("lib/modules/7.3.4")).unwrap();
        assert!(module_dir_conflict(r, "7.3.4").is_some());
        std::fs::remove_dir(r.join("lib/modules/7.3.4")).unwrap();
        std::fs::remove_dir(r.join("lib/modules")).unwrap();
        std::fs::remove_dir(r.join("lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", r.join("lib")).unwrap();
        assert_eq!(module_dir_conflict(r, "7.3.4"), None);
    }
}
