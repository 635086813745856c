//! The one compression enum and magic table for everything modseal
//! decompresses: module files, bzImage payloads and initramfs members.
//!
//! Each of the three reads the same table under its own rule, because each
//! follows a different reader in the kernel or in Kbuild:
//! - a module file is compressed as its name says ([`Compression::for_module_path`],
//!   Kbuild's `CONFIG_MODULE_COMPRESS_*` suffixes), and its bytes must then
//!   start with that format's magic;
//! - a bzImage payload is recognised by its whole magic
//!   ([`Compression::for_kernel_payload`]), naming the x86 `CONFIG_KERNEL_*`
//!   compressors modseal does not decode;
//! - an initramfs member is recognised as `lib/decompress.c` does, by the
//!   first two magic bytes of the kernel's table
//!   ([`Compression::for_initramfs_member`]): legacy lz4 yes, lz4 frames no.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::fmt;
use std::path::Path;

/// A compression format (or none), as named in messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip (RFC 1952), `.ko.gz`.
    Gzip,
    /// xz (the .xz container with LZMA2, optionally behind a BCJ filter), `.ko.xz`.
    Xz,
    /// Zstandard (RFC 8878), `.ko.zst`.
    Zstd,
    /// The legacy lzma "alone" format (`lzma`, `xz --format=lzma`).
    Lzma,
    /// The legacy lz4 format (`lz4 -l`) that Kbuild uses for kernel payloads
    /// and the only lz4 the kernel's initramfs unpacker reads.
    Lz4Legacy,
    /// The lz4 frame format (`lz4` without `-l`).
    Lz4Frame,
    /// bzip2 (recognised, not decoded).
    Bzip2,
    /// lzo as `lzop` writes it (recognised, not decoded).
    Lzo,
    /// gzip's old `1f 9e` magic, still in the kernel's table (recognised,
    /// not decoded).
    OldGzip,
    /// Not compressed.
    None,
}

/// The magic table: the leading bytes of each format. The order does not
/// matter: no two rows share their first two bytes.
const MAGIC: [(Compression, &[u8]); 9] = [
    (Compression::Gzip, &[0x1f, 0x8b]),
    (Compression::OldGzip, &[0x1f, 0x9e]),
    (Compression::Xz, &[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
    (Compression::Zstd, &[0x28, 0xb5, 0x2f, 0xfd]),
    // Properties byte 0x5d (lc=3, lp=0, pb=2) and a dictionary size whose
    // low bytes are zero: what `lzma` writes, and what Kbuild's check uses.
    (Compression::Lzma, &[0x5d, 0x00, 0x00]),
    (Compression::Lz4Legacy, &[0x02, 0x21, 0x4c, 0x18]),
    (Compression::Lz4Frame, &[0x04, 0x22, 0x4d, 0x18]),
    (Compression::Bzip2, b"BZh"),
    (Compression::Lzo, &[0x89, b'L', b'Z', b'O']),
];

/// Module file suffixes Kbuild writes (`CONFIG_MODULE_COMPRESS_*`).
const MODULE_SUFFIXES: [(&str, Compression); 3] = [
    (".ko.gz", Compression::Gzip),
    (".ko.xz", Compression::Xz),
    (".ko.zst", Compression::Zstd),
];

/// What one context makes of the bytes at the start of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognized {
    /// A format this context decodes.
    Supported(Compression),
    /// A format known to the context's reader that modseal does not decode.
    Unsupported(Compression),
    /// Nothing this context knows.
    Unknown,
}

impl Compression {
    /// The lowercase name used in messages (`lz4-legacy` for [`Compression::Lz4Legacy`]).
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lzma => "lzma",
            Compression::Lz4Legacy => "lz4-legacy",
            Compression::Lz4Frame => "lz4",
            Compression::Bzip2 => "bzip2",
            Compression::Lzo => "lzo",
            Compression::OldGzip => "old-gzip",
            Compression::None => "none",
        }
    }

    /// The name the kernel's table (`lib/decompress.c`) gives the format:
    /// legacy lz4 is plain "lz4" there, as it is in initramfs messages.
    pub fn kernel_name(self) -> &'static str {
        match self {
            Compression::Lz4Legacy => "lz4",
            Compression::OldGzip => "gzip",
            other => other.name(),
        }
    }

    /// The format's magic bytes (empty for [`Compression::None`]).
    pub fn magic(self) -> &'static [u8] {
        MAGIC
            .iter()
            .find(|(c, _)| *c == self)
            .map_or(&[], |(_, magic)| magic)
    }

    /// The format whose whole magic starts `bytes`, if any.
    pub fn from_magic(bytes: &[u8]) -> Option<Compression> {
        MAGIC
            .iter()
            .find(|(_, magic)| bytes.starts_with(magic))
            .map(|(c, _)| *c)
    }

    /// The format of a module file, from its name as Kbuild makes it:
    /// `.ko.gz`, `.ko.xz`, `.ko.zst`; anything else is [`Compression::None`].
    pub fn for_module_path(path: &Path) -> Compression {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Compression::None;
        };
        MODULE_SUFFIXES
            .iter()
            .find(|(suffix, _)| name.ends_with(suffix))
            .map_or(Compression::None, |(_, c)| *c)
    }

    /// Whether a file name is one a module tree walk takes for a module:
    /// `.ko` or a compressed module suffix.
    pub fn is_module_name(name: &str) -> bool {
        name.ends_with(".ko") || MODULE_SUFFIXES.iter().any(|(s, _)| name.ends_with(s))
    }

    /// A bzImage payload's format, by its whole magic. The compressors Kbuild
    /// offers for x86 that modseal does not decode are named.
    pub fn for_kernel_payload(bytes: &[u8]) -> Recognized {
        match Compression::from_magic(bytes) {
            Some(
                c @ (Compression::Gzip
                | Compression::Xz
                | Compression::Zstd
                | Compression::Lz4Legacy
                | Compression::Lz4Frame),
            ) => Recognized::Supported(c),
            Some(c @ (Compression::Bzip2 | Compression::Lzma | Compression::Lzo)) => {
                Recognized::Unsupported(c)
            }
            _ => Recognized::Unknown,
        }
    }

    /// An initramfs member's format as the kernel's `compressed_formats`
    /// table sees it: two magic bytes (the decoders check the rest of their
    /// header). lz4 frames are not in the table.
    pub fn for_initramfs_member(bytes: &[u8]) -> Recognized {
        let Some(head) = bytes.get(..2) else {
            return Recognized::Unknown;
        };
        let row = MAGIC.iter().find(|(_, magic)| magic.get(..2) == Some(head));
        match row.map(|(c, _)| *c) {
            Some(
                c @ (Compression::Gzip
                | Compression::Xz
                | Compression::Zstd
                | Compression::Lzma
                | Compression::Lz4Legacy),
            ) => Recognized::Supported(c),
            Some(c @ (Compression::OldGzip | Compression::Bzip2 | Compression::Lzo)) => {
                Recognized::Unsupported(c)
            }
            _ => Recognized::Unknown,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_by_their_whole_magic() {
        assert_eq!(
            Compression::from_magic(&[0x1f, 0x8b, 0x08]),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_magic(b"\xfd7zXZ\x00\x00\x01"),
            Some(Compression::Xz)
        );
        assert_eq!(
            Compression::from_magic(b"\xfd7zXZ"),
            None,
            "incomplete xz magic"
        );
        assert_eq!(Compression::from_magic(b"BZh9"), Some(Compression::Bzip2));
        assert_eq!(Compression::from_magic(b"\x7fELF"), None);
        assert_eq!(Compression::from_magic(&[]), None);
        for (c, magic) in MAGIC {
            assert_eq!(c.magic(), magic);
            assert_eq!(Compression::from_magic(magic), Some(c));
        }
        assert!(Compression::None.magic().is_empty());
    }

    #[test]
    fn no_two_rows_share_their_first_two_bytes() {
        for (i, (_, a)) in MAGIC.iter().enumerate() {
            for (_, b) in &MAGIC[i + 1..] {
                assert_ne!(a[..2], b[..2]);
            }
        }
    }

    #[test]
    fn the_kernel_magic_table() {
        assert_eq!(
            Compression::for_initramfs_member(&[0x1f, 0x8b, 8]),
            Recognized::Supported(Compression::Gzip)
        );
        assert_eq!(
            Compression::for_initramfs_member(b"\xfd7zXZ\0"),
            Recognized::Supported(Compression::Xz)
        );
        assert_eq!(
            Compression::for_initramfs_member(&[0x28, 0xb5, 0x2f, 0xfd]),
            Recognized::Supported(Compression::Zstd)
        );
        assert_eq!(
            Compression::for_initramfs_member(&[0x5d, 0, 0]),
            Recognized::Supported(Compression::Lzma)
        );
        assert_eq!(
            Compression::for_initramfs_member(&[2, 0x21, 0x4c, 0x18]),
            Recognized::Supported(Compression::Lz4Legacy)
        );
        assert_eq!(
            Compression::for_initramfs_member(b"BZh9"),
            Recognized::Unsupported(Compression::Bzip2)
        );
        assert_eq!(
            Compression::for_initramfs_member(b"\x89LZO"),
            Recognized::Unsupported(Compression::Lzo)
        );
        assert_eq!(
            Compression::for_initramfs_member(&[4, 0x22, 0x4d, 0x18]),
            Recognized::Unknown
        );
        assert_eq!(Compression::for_initramfs_member(b"x"), Recognized::Unknown);
        // Two bytes are enough, as in the kernel.
        assert_eq!(
            Compression::for_initramfs_member(&[0x5d, 0, 1]),
            Recognized::Supported(Compression::Lzma)
        );
        assert_eq!(
            Compression::for_initramfs_member(&[0x1f, 0x9e]),
            Recognized::Unsupported(Compression::OldGzip)
        );
    }

    #[test]
    fn kernel_payload_rules() {
        use Recognized::*;
        assert_eq!(
            Compression::for_kernel_payload(&[4, 0x22, 0x4d, 0x18]),
            Supported(Compression::Lz4Frame)
        );
        assert_eq!(
            Compression::for_kernel_payload(&[0x5d, 0, 0, 0x80]),
            Unsupported(Compression::Lzma)
        );
        assert_eq!(Compression::for_kernel_payload(&[0x5d, 0, 1]), Unknown);
        assert_eq!(
            Compression::for_kernel_payload(b"\x89LZO"),
            Unsupported(Compression::Lzo)
        );
        assert_eq!(Compression::for_kernel_payload(&[0x1f, 0x9e]), Unknown);
        assert_eq!(Compression::for_kernel_payload(b"BZ"), Unknown);
    }

    #[test]
    fn module_names() {
        assert!(Compression::is_module_name("a.ko"));
        assert!(Compression::is_module_name("a.ko.zst"));
        assert!(!Compression::is_module_name("a.ko.bz2"));
        assert!(!Compression::is_module_name("a.kox"));
    }

    #[test]
    fn kernel_names() {
        assert_eq!(Compression::Lz4Legacy.kernel_name(), "lz4");
        assert_eq!(Compression::Lz4Legacy.to_string(), "lz4-legacy");
        assert_eq!(Compression::Lzma.kernel_name(), "lzma");
    }

    #[test]
    fn names_formats_in_lowercase() {
        let names: Vec<String> = [
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
            Compression::Lz4Legacy,
            Compression::Lz4Frame,
            Compression::None,
        ]
        .iter()
        .map(|f| f.to_string())
        .collect();
        assert_eq!(names, ["gzip", "xz", "zstd", "lz4-legacy", "lz4", "none"]);
    }

    #[test]
    fn maps_module_paths_to_formats() {
        let cases = [
            (
                "/lib/modules/6.1.0/kernel/fs/ext4/ext4.ko.xz",
                Compression::Xz,
            ),
            ("e1000e.ko.gz", Compression::Gzip),
            ("dir.ko.xz/nvme.ko.zst", Compression::Zstd),
            ("nvme.ko", Compression::None),
            ("nvme.ko.bz2", Compression::None),
            ("readme.xz", Compression::None),
            ("", Compression::None),
        ];
        for (path, want) in cases {
            assert_eq!(
                Compression::for_module_path(Path::new(path)),
                want,
                "{path}"
            );
        }
    }
}
