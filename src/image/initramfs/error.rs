//! What stops the reading of an initramfs image, and what is wrong with one
//! without stopping it. Each variant carries its place (UKI section, member,
//! entry, byte offset); the messages are the ones `check-initramfs` reports.

use std::fmt;
use std::io;

use super::member::MemberKind;
use super::pe::PeError;
use crate::image::compression::Compression;

/// Printable form of untrusted bytes for a message.
pub(crate) fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// The UKI section an image is read from, and where it starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionAt {
    /// The section's name (`.initrd`, `.ucode`).
    pub name: String,
    /// Byte offset of its data in the file.
    pub file_offset: u64,
}

/// `section NAME (file offset N): ` for a UKI section, else nothing: the
/// prefix of every message about a place in the image.
fn within(section: &Option<SectionAt>) -> String {
    match section {
        Some(s) => format!("section {} (file offset {}): ", s.name, s.file_offset),
        None => String::new(),
    }
}

/// One member of an image, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAt {
    /// The UKI section it is in.
    pub section: Option<SectionAt>,
    /// Counted from 1 over the whole image.
    pub index: usize,
    /// What the member is.
    pub kind: MemberKind,
    /// Byte offset where it starts, within its section (or the file).
    pub offset: u64,
}

impl MemberAt {
    /// The member's position in the image's list of members.
    pub(crate) fn slot(&self) -> usize {
        self.index.saturating_sub(1)
    }
}

impl fmt::Display for MemberAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}member {} ({}, at byte {})",
            within(&self.section),
            self.index,
            self.kind,
            self.offset
        )
    }
}

/// One cpio entry, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryAt {
    /// Counted from 1 over the whole image.
    pub number: u64,
    /// Its name, where the message gives it.
    pub name: Option<String>,
    /// Byte offset of its header within the member's data.
    pub offset: u64,
    /// Whether that offset counts decompressed bytes.
    pub unpacked: bool,
}

impl EntryAt {
    /// The same entry, named.
    pub(crate) fn named(&self, name: &str) -> EntryAt {
        EntryAt {
            name: Some(name.to_owned()),
            ..self.clone()
        }
    }
}

/// How an offset into decompressed data is marked in messages.
fn of_unpacked(unpacked: &bool) -> &'static str {
    if *unpacked {
        " of the unpacked data"
    } else {
        ""
    }
}

impl fmt::Display for EntryAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}", self.number)?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        write!(f, " at byte {}{}", self.offset, of_unpacked(&self.unpacked))
    }
}

/// Why a newc header does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The old portable format, which the kernel does not read.
    #[error(
        "an old portable (odc, 070707) cpio header: the kernel reads only newc (`cpio -H newc`)"
    )]
    Odc,
    /// Neither `070701` nor `070702`.
    #[error("no cpio magic (found \"{}\")", escape(.found))]
    NoMagic {
        /// The six bytes that were there.
        found: Vec<u8>,
    },
    /// A field that is not eight hex digits.
    #[error("non-hex {field} field \"{}\"", escape(.digits))]
    NonHex {
        /// The field's name (`c_mode`, …).
        field: &'static str,
        /// Its eight bytes.
        digits: Vec<u8>,
    },
}

/// Why a run of cpio archives (one member's data) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpioError {
    /// Past the image's entry cap.
    #[error("more than {limit} entries in the image (a bomb?)")]
    TooManyEntries {
        /// The cap.
        limit: u64,
    },
    /// The data ends inside a header.
    #[error("{entry}: header cut short ({got} of {len} bytes): truncated archive")]
    HeaderCutShort {
        /// The entry.
        entry: EntryAt,
        /// Header bytes there were.
        got: usize,
        /// The header's size.
        len: usize,
    },
    /// A header that does not parse.
    #[error("{entry}: {error}")]
    BadHeader {
        /// The entry.
        entry: EntryAt,
        /// What is wrong with it.
        error: HeaderError,
    },
    /// A name size of 0 or over `PATH_MAX`.
    #[error("{entry}: name size {size} outside 1..={max} (PATH_MAX)")]
    NameSize {
        /// The entry.
        entry: EntryAt,
        /// The header's `c_namesize`.
        size: u32,
        /// `PATH_MAX`.
        max: u32,
    },
    /// The data ends inside a name or its padding.
    #[error("{entry}: name cut short: truncated archive")]
    NameCutShort {
        /// The entry.
        entry: EntryAt,
    },
    /// A name whose last byte is not NUL.
    #[error("{entry}: malformed archive: name \"{}\" without a terminating NUL", escape(.name))]
    NameWithoutNul {
        /// The entry.
        entry: EntryAt,
        /// The name's first bytes (at most 64).
        name: Vec<u8>,
    },
    /// The data ends inside a module-named symlink's target.
    #[error("{entry}: symbolic link target of {size} bytes cut short: truncated archive")]
    LinkTargetCutShort {
        /// The entry.
        entry: EntryAt,
        /// The target's declared size.
        size: u64,
    },
    /// Past the image's caps on module entries or their name bytes.
    #[error("{entry}: more than {max_modules} module entries (or {max_name_bytes} bytes of their names) in the image")]
    TooManyModules {
        /// The entry.
        entry: EntryAt,
        /// The cap on module entries.
        max_modules: usize,
        /// The cap on their name bytes.
        max_name_bytes: usize,
    },
    /// Past the image's cap on hard links.
    #[error("{entry}: more than {limit} hard links in the image")]
    TooManyLinks {
        /// The entry.
        entry: EntryAt,
        /// The cap.
        limit: usize,
    },
    /// The data ends inside an entry's body.
    #[error("{entry}: file size {size} runs past the end of the data ({got} bytes there): truncated archive")]
    BodyCutShort {
        /// The entry.
        entry: EntryAt,
        /// The header's `c_filesize`.
        size: u64,
        /// Bytes there were.
        got: u64,
    },
    /// A `070702` body whose byte sum is not the header's `c_check`.
    #[error("{entry}: bad data checksum (070702 archive)")]
    BadChecksum {
        /// The entry.
        entry: EntryAt,
    },
    /// The data ends inside the padding after a body.
    #[error("{entry}: padding after the data cut short: truncated archive")]
    PaddingCutShort {
        /// The entry.
        entry: EntryAt,
    },
    /// The data ends, or something else starts, before a `TRAILER!!!`.
    #[error("the archive ends at byte {offset}{} without a TRAILER!!! entry (truncated?)", of_unpacked(.unpacked))]
    NoTrailer {
        /// Where.
        offset: u64,
        /// Whether that counts decompressed bytes.
        unpacked: bool,
    },
    /// A compressed member that decompresses to nothing but zeros.
    #[error("the compressed data holds no cpio archive")]
    NoArchive,
    /// Data after zero padding at an offset that is not a multiple of 4.
    #[error("broken padding: data resumes at byte {offset}{}, not a multiple of 4", of_unpacked(.unpacked))]
    BrokenPadding {
        /// Where.
        offset: u64,
        /// Whether that counts decompressed bytes.
        unpacked: bool,
    },
    /// Bytes after an archive inside a compressed member that start none.
    #[error(
        "junk within the compressed archive at byte {offset} of the unpacked data (0x{byte:02x})"
    )]
    Junk {
        /// Where, in the decompressed data.
        offset: u64,
        /// The byte there.
        byte: u8,
    },
    /// A compressed member whose data is not cpio.
    #[error("the unpacked data does not start with a cpio header at byte {offset} of the unpacked data (0x{byte:02x})")]
    NotCpio {
        /// Where, in the decompressed data.
        offset: u64,
        /// The byte there.
        byte: u8,
    },
}

/// Why a compressed member's decoder refused its stream before the data.
/// What goes wrong in the data (checksums, declared sizes: liblzma and
/// libzstd check them as they go) is a [`MemberError::Stream`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The image could not be read.
    #[error("{0}")]
    Read(io::Error),
    /// A format the kernel does not unpack as an initramfs member (the
    /// member's magic said otherwise).
    #[error("the kernel does not unpack {0} initramfs members")]
    NotUnpacked(Compression),
    /// A zstd stream without a frame header.
    #[error("truncated: no frame header")]
    ZstdNoFrameHeader,
    /// A zstd frame header with its reserved bit set.
    #[error("reserved bit set in the frame header")]
    ZstdReservedBit,
    /// libzstd refused the frame header (a window over 128 MiB, a
    /// dictionary).
    #[error("{0}")]
    Zstd(io::Error),
    /// liblzma could not start an xz decoder.
    #[error("{0}")]
    Xz(io::Error),
    /// A legacy lzma header shorter than its 13 bytes.
    #[error("header cut short ({got} of 13 bytes)")]
    LzmaHeaderCutShort {
        /// Bytes there were.
        got: usize,
    },
    /// A legacy lzma properties byte over 224, or with lc + lp over 4
    /// (which no lzma tool writes, and liblzma does not decode).
    #[error("unsupported properties byte 0x{0:02x}")]
    LzmaProperties(u8),
    /// A legacy lzma dictionary that needs more memory than allowed.
    #[error("a dictionary of {0} bytes needs more decoder memory than allowed")]
    LzmaDictionary(u32),
    /// liblzma refused the legacy lzma header otherwise.
    #[error("{0}")]
    Lzma(io::Error),
    /// Not the legacy lz4 magic.
    #[error("no legacy lz4 magic")]
    NoLz4Magic,
}

/// Why one member of an image is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemberError {
    /// An uncompressed member could not be read.
    #[error("cannot read the image: {0}")]
    Read(io::Error),
    /// Its cpio data is refused.
    #[error(transparent)]
    Cpio(#[from] CpioError),
    /// A compressed member's decoder refused its header.
    #[error("bad {} header: {error}", .compression.kernel_name())]
    BadHeader {
        /// The member's compression.
        compression: Compression,
        /// What the decoder said.
        error: StreamError,
    },
    /// The image's members decompress to more than the cap.
    #[error("decompression bomb: more than {limit} bytes unpacked from the image (--max-unpacked raises the cap)")]
    Bomb {
        /// The cap, in bytes.
        limit: u64,
    },
    /// A compressed stream that is truncated or corrupt.
    #[error("{} {} stream (after {produced} bytes unpacked): {source}", truncated_or_corrupt(.source), .compression.kernel_name())]
    Stream {
        /// The member's compression.
        compression: Compression,
        /// Bytes decoded before the failure.
        produced: u64,
        /// What the decoder (or the file) said.
        source: io::Error,
    },
}

fn truncated_or_corrupt(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "truncated"
    } else {
        "corrupt"
    }
}

/// Why an image could not be read to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitramfsError {
    /// `open(2)` failed.
    #[error("cannot open: {0}")]
    Open(io::Error),
    /// `fstat(2)` failed.
    #[error("cannot stat: {0}")]
    Stat(io::Error),
    /// A FIFO, a device, a directory.
    #[error("not a regular file")]
    NotRegular,
    /// The file could not be rewound after its first bytes.
    #[error("cannot seek: {0}")]
    Seek(io::Error),
    /// An `MZ` file whose PE headers do not read.
    #[error("a PE (MZ) file: {0}")]
    Pe(PeError),
    /// A PE file (a kernel or a UKI) without an initramfs.
    #[error("a PE file without an .initrd section (sections: {}): a kernel image or a UKI without an initramfs", section_list(.sections))]
    NoInitrd {
        /// The sections it has.
        sections: Vec<String>,
    },
    /// A UKI section whose data is not in the file.
    #[error(transparent)]
    Section(PeError),
    /// A UKI section of size 0.
    #[error("section {name} is empty")]
    EmptySection {
        /// The section.
        name: String,
    },
    /// Seeking to a UKI section failed.
    #[error("cannot seek to section {name}: {source}")]
    SeekSection {
        /// The section.
        name: String,
        /// What the system said.
        source: io::Error,
    },
    /// Reading between members failed.
    #[error("{}cannot read the image at byte {offset}: {source}", within(.section))]
    Read {
        /// The UKI section.
        section: Option<SectionAt>,
        /// Where, within the section (or the file).
        offset: u64,
        /// What the system said.
        source: io::Error,
    },
    /// A member is refused.
    #[error("{member}: {error}")]
    Member {
        /// The member.
        member: MemberAt,
        /// Why (boxed: the largest variant by far).
        error: Box<MemberError>,
    },
    /// A member compressed in a format the kernel knows and modseal does not decode.
    #[error("{}member {index} at byte {offset}: {}-compressed, which modseal does not unpack \
             (it reads gzip, xz, zstd, lzma and legacy lz4)", within(.section), unsupported_name(.compression))]
    UnsupportedCompression {
        /// The UKI section.
        section: Option<SectionAt>,
        /// The member's number, from 1.
        index: usize,
        /// Where it starts, within the section (or the file).
        offset: u64,
        /// Its format.
        compression: Compression,
    },
    /// Bytes that start neither a cpio archive nor a compressed stream.
    #[error("{}at byte {offset}: {}: neither a cpio archive nor a compressed stream \
             the kernel knows (starts \"{}\"){}", within(.section), after_members(.members),
             head4(.head), unknown_hint(.head))]
    Unrecognized {
        /// The UKI section.
        section: Option<SectionAt>,
        /// Where, within the section (or the file).
        offset: u64,
        /// Members read before it.
        members: usize,
        /// Its first bytes (up to 8).
        head: Vec<u8>,
    },
    /// Nothing but zero bytes.
    #[error("no cpio archive in the image (empty or all zero bytes)")]
    Empty,
}

fn section_list(sections: &[String]) -> String {
    if sections.is_empty() {
        "none".to_string()
    } else {
        sections.join(" ")
    }
}

fn unsupported_name(compression: &Compression) -> &'static str {
    match compression {
        Compression::OldGzip => "gzip with the old 1f 9e magic",
        other => other.kernel_name(),
    }
}

fn after_members(members: &usize) -> String {
    match members {
        0 => "not an initramfs".to_string(),
        n => format!("trailing garbage after member {n}"),
    }
}

/// The first four bytes, escaped.
fn head4(head: &[u8]) -> String {
    escape(head.get(..4).unwrap_or(head))
}

/// A hint for bytes no initramfs unpacker takes.
fn unknown_hint(head: &[u8]) -> &'static str {
    if Compression::from_magic(head) == Some(Compression::Lz4Frame) {
        " (an lz4 frame: the kernel unpacks only legacy lz4, `lz4 -l`)"
    } else if head.starts_with(b"0707") {
        " (a cpio header at an offset that is not a multiple of 4)"
    } else if head.starts_with(b"MZ") {
        " (a PE image inside the initramfs)"
    } else {
        ""
    }
}

/// A hard link the kernel would resolve differently from what its names
/// suggest: a failure, but one that does not stop the walk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkProblem {
    /// Another entry takes a hard link's name.
    #[error(
        "{member}: {entry} ({kind}) reuses the name of a hard link: \
             the kernel would write through to, or unlink, the linked file"
    )]
    NameReused {
        /// The member.
        member: MemberAt,
        /// The entry that reuses the name.
        entry: EntryAt,
        /// Its type (`directory`, …).
        kind: &'static str,
    },
    /// A hard link's name, again, in its own group.
    #[error("{member}: {entry} repeats a hard link of its own group")]
    Repeated {
        /// The member.
        member: MemberAt,
        /// The entry.
        entry: EntryAt,
    },
    /// Two entries of one group carry a body.
    #[error(
        "{member}: {entry}: a second body for the same hard-linked file \
             (inode {inode}): the kernel keeps the last, newc writers store one"
    )]
    SecondBody {
        /// The member.
        member: MemberAt,
        /// The entry with the second body.
        entry: EntryAt,
        /// The group's inode number.
        inode: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_render_as_before() {
        let entry = EntryAt {
            number: 3,
            name: None,
            offset: 220,
            unpacked: true,
        };
        assert_eq!(
            entry.to_string(),
            "entry 3 at byte 220 of the unpacked data"
        );
        assert_eq!(
            entry.named("").to_string(),
            "entry 3 '' at byte 220 of the unpacked data"
        );
        let member = MemberAt {
            section: Some(SectionAt {
                name: ".initrd".into(),
                file_offset: 4096,
            }),
            index: 2,
            kind: MemberKind::Compressed(Compression::Lz4Legacy),
            offset: 512,
        };
        assert_eq!(
            member.to_string(),
            "section .initrd (file offset 4096): member 2 (lz4, at byte 512)"
        );
    }
}
