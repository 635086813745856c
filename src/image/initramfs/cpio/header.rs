//! One newc header (`cpio -H newc`, magic `070701`, or `070702` with a
//! data checksum), entry types, and how names are shown.

use sha2::{Digest, Sha256};

use crate::image::initramfs::error::HeaderError;

/// `PATH_MAX`, the kernel's bound on an entry's name size (with its NUL).
pub const PATH_MAX: u32 = 4096;

/// A newc header: magic and 13 eight-digit hex fields.
pub(crate) const HEADER_LEN: usize = 110;

/// The file type bits of `c_mode`, and the types (`<sys/stat.h>`).
pub(super) const S_IFMT: u32 = 0o170_000;
pub(super) const S_IFREG: u32 = 0o100_000;
pub(super) const S_IFDIR: u32 = 0o040_000;
pub(super) const S_IFLNK: u32 = 0o120_000;
pub(super) const S_IFCHR: u32 = 0o020_000;
pub(super) const S_IFBLK: u32 = 0o060_000;
pub(super) const S_IFIFO: u32 = 0o010_000;
pub(super) const S_IFSOCK: u32 = 0o140_000;

/// A parsed newc header.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    /// `070702`: the body's byte sum is in `check`.
    pub crc: bool,
    /// `c_ino`.
    pub ino: u32,
    /// `c_mode`: type and permissions.
    pub mode: u32,
    /// `c_nlink`.
    pub nlink: u32,
    /// `c_filesize`: body bytes.
    pub filesize: u32,
    /// `c_devmajor`.
    pub major: u32,
    /// `c_devminor`.
    pub minor: u32,
    /// `c_namesize`: name bytes with the NUL.
    pub namesize: u32,
    /// `c_check`: the body's byte sum in a `070702` archive.
    pub check: u32,
}

const FIELDS: [&str; 13] = [
    "c_ino",
    "c_mode",
    "c_uid",
    "c_gid",
    "c_nlink",
    "c_mtime",
    "c_filesize",
    "c_devmajor",
    "c_devminor",
    "c_rdevmajor",
    "c_rdevminor",
    "c_namesize",
    "c_check",
];

impl Header {
    /// Parses the 110 header bytes.
    pub(super) fn parse(h: &[u8; HEADER_LEN]) -> Result<Header, HeaderError> {
        let (magic, rest) = h.split_at(6);
        let crc = match magic {
            b"070701" => false,
            b"070702" => true,
            b"070707" => return Err(HeaderError::Odc),
            _ => {
                return Err(HeaderError::NoMagic {
                    found: magic.to_vec(),
                })
            }
        };
        let mut v = [0u32; 13];
        for ((slot, digits), field) in v.iter_mut().zip(rest.chunks_exact(8)).zip(FIELDS) {
            let text = std::str::from_utf8(digits)
                .ok()
                .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()));
            *slot = text
                .and_then(|t| u32::from_str_radix(t, 16).ok())
                .ok_or_else(|| HeaderError::NonHex {
                    field,
                    digits: digits.to_vec(),
                })?;
        }
        let [ino, mode, _uid, _gid, nlink, _mtime, filesize, major, minor, _rmaj, _rmin, namesize, check] =
            v;
        Ok(Header {
            crc,
            ino,
            mode,
            nlink,
            filesize,
            major,
            minor,
            namesize,
            check,
        })
    }

    /// The file type bits of the mode.
    pub(super) fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }
}

/// What the kernel would call the entry's type, for messages.
pub(super) fn type_name(mode: u32) -> &'static str {
    match mode & S_IFMT {
        S_IFREG => "regular file",
        S_IFDIR => "directory",
        S_IFLNK => "symbolic link",
        S_IFCHR => "character device",
        S_IFBLK => "block device",
        S_IFIFO => "fifo",
        S_IFSOCK => "socket",
        _ => "entry of unknown type",
    }
}

/// Absolute, or with a `..` component: the kernel would resolve it against
/// its rootfs root (where `..` is the root again); a well-made image never
/// has one.
pub(super) fn is_unsafe(name: &str) -> bool {
    name.starts_with('/') || name.split('/').any(|c| c == "..")
}

/// The name as shown: leading `./` removed (as `lsinitrd` shows it).
pub(super) fn display_name(raw: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(raw).into_owned();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_owned();
    }
    s
}

/// The key of the set of hard-link names.
pub(super) fn name_digest(raw: &[u8]) -> [u8; 32] {
    Sha256::digest(raw).into()
}

/// Bytes to the next multiple of four.
pub(super) fn pad4(n: u64) -> u64 {
    n.wrapping_neg() & 3
}
