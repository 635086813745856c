//! What an image is made of: its members, in the order the kernel reads
//! them.

use crate::image::compression::Compression;

/// What a member of the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// An uncompressed run of cpio archives (the early-microcode one, say).
    Cpio,
    /// A compressed stream of cpio archives.
    Compressed(Compression),
}

impl std::fmt::Display for MemberKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberKind::Cpio => f.write_str("cpio"),
            MemberKind::Compressed(c) => f.write_str(c.kernel_name()),
        }
    }
}

/// One member of the image, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Counted from 1 over the whole image (all sections of a UKI).
    pub index: usize,
    /// What it is.
    pub kind: MemberKind,
    /// The UKI section it is in (`None` for a plain initramfs file).
    pub section: Option<String>,
    /// Byte offset in the file where it starts.
    pub file_offset: u64,
    /// Decompressed size (for a compressed member).
    pub unpacked: u64,
}
