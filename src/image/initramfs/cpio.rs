//! The initramfs unpacker of `init/initramfs.c`, minus the writing: the
//! sequence of members (uncompressed cpio archives and compressed streams,
//! with zero padding between them), the newc entries inside each, and what
//! each entry would become in the kernel's rootfs, as far as kernel modules
//! are concerned. Module bodies go to a [`Sink`] one at a time; everything
//! else streams past.
//!
//! Where the kernel is lenient and a well-formed image never needs it to be,
//! this is strict: a truncated archive, a missing `TRAILER!!!`, a name size
//! of 0 or over `PATH_MAX`, a non-hex header field are failures here (the
//! kernel skips or silently stops at some of them).
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest, Sha256};

use super::stream::{self, Budget, Compression, Decoder, Input, OverBudget, Sniff};
use crate::image::decompress::{format_for_module_path, Format};
use crate::verify::Verdict;

/// `PATH_MAX`, the kernel's bound on an entry's name size (with its NUL).
pub const PATH_MAX: u32 = 4096;

/// A newc header: magic and 13 eight-digit hex fields.
const HEADER_LEN: usize = 110;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFIFO: u32 = 0o010_000;
const S_IFSOCK: u32 = 0o140_000;

/// Bounds on what one image may make modseal do.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Total bytes all compressed members of one image may decompress to.
    pub max_unpacked: u64,
    /// cpio entries per image.
    pub max_entries: u64,
    /// Module entries per image (each keeps a report).
    pub max_modules: usize,
    /// Bytes of module names kept for the reports, per image.
    pub max_name_bytes: usize,
    /// Hard-link entries per image (each keeps a name digest).
    pub max_links: usize,
    /// Largest module body read (as `verify`'s limit).
    pub max_module_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked: 4 << 30,
            max_entries: 1 << 20,
            max_modules: 1 << 16,
            max_name_bytes: 32 << 20,
            max_links: 1 << 18,
            max_module_size: crate::verify::MAX_MODULE_SIZE,
        }
    }
}

/// Where a module body goes: the verifier (threads) or, for listing and
/// fuzzing, nowhere.
pub(crate) trait Sink {
    /// An empty buffer to read a module into (reused ones save allocations).
    fn buffer(&mut self) -> Vec<u8>;
    /// Hands over a module body to be checked as each of `formats`; returns
    /// the job's number.
    fn submit(&mut self, bytes: Vec<u8>, formats: Vec<Format>, path: &str) -> usize;
    /// How far into the image file reading has got.
    fn progress(&mut self, file_pos: u64);
}

/// What a member of the image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// An uncompressed run of cpio archives (the early-microcode one, say).
    Cpio,
    Compressed(Compression),
}

impl std::fmt::Display for MemberKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberKind::Cpio => f.write_str("cpio"),
            MemberKind::Compressed(c) => write!(f, "{c}"),
        }
    }
}

/// One member of the image, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Counted from 1 over the whole image (all sections of a UKI).
    pub index: usize,
    pub kind: MemberKind,
    /// The UKI section it is in (`None` for a plain initramfs file).
    pub section: Option<String>,
    /// Byte offset in the file where it starts.
    pub file_offset: u64,
    /// Decompressed size (for a compressed member).
    pub unpacked: u64,
}

/// One module-named entry of the image and how its report is made.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The path as stored in the archive (a leading `./` removed).
    pub path: String,
    /// Index into the image's members.
    pub member: usize,
    /// Absolute, or with a `..` component.
    pub unsafe_path: bool,
    pub kind: RowKind,
}

#[derive(Debug, Clone)]
pub(crate) enum RowKind {
    /// The entry's own body, checked by a job.
    Job { job: usize },
    /// A hard link: the content its group ends with.
    Link { group: usize, format: Format },
    /// Decided without checking a body.
    Fixed { verdict: Verdict, reason: String },
}

/// A hard-link group (entries with `nlink >= 2` and the same major, minor,
/// inode and type, between two `TRAILER!!!`s): one inode in the kernel's
/// rootfs, whose content is the body of the last of its entries that had
/// one (`do_name` truncates and rewrites it; size-0 links leave it).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub content: GroupContent,
    /// The entry whose body that is.
    pub data_from: Option<String>,
    /// Formats the group's module names ask for.
    pub formats: Vec<Format>,
    pub bodies: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum GroupContent {
    /// No body yet: an empty file.
    Empty,
    /// Read and checked as these formats.
    Checked { job: usize, formats: Vec<Format> },
    /// Skipped: no module name had joined the group when it went past.
    Unchecked,
    /// Larger than the module limit.
    TooLarge(u64),
}

/// Everything one image's walk produced.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub rows: Vec<Row>,
    pub groups: Vec<Group>,
    /// Failures that did not stop the walk (hard-link misuse).
    pub problems: Vec<String>,
    /// The failure that stopped it, if any.
    pub fatal: Option<String>,
    /// Things worth saying that are not failures (unsafe paths of files
    /// that are not modules).
    pub notes: Vec<String>,
    pub members: Vec<Member>,
    pub entries: u64,
    pub unpacked: u64,
}

/// Stops the walk: a read error (the decoder's, the file's, or the bomb
/// cap) or a format violation.
enum Stop {
    Io(io::Error),
    Bad(String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// How a run of cpio archives ended.
enum End {
    /// The data ended (after a `TRAILER!!!` and padding).
    Eof,
    /// A byte that starts no cpio header came (the next member).
    Other,
}

/// Where the walk is in the image file, for progress.
pub(crate) trait FilePos {
    fn file_pos(&self) -> u64;
}

impl<R: Read> FilePos for &mut Input<R> {
    fn file_pos(&self) -> u64 {
        self.pos()
    }
}

impl<R: Read> FilePos for &mut BufReader<Budget<Decoder<'_, R>>> {
    fn file_pos(&self) -> u64 {
        match self.get_ref().get_ref() {
            Decoder::Gzip(d) => d.get_ref().pos(),
            Decoder::Xz(d) => d.inner().pos(),
            Decoder::Zstd { decoder, .. } => decoder.get_ref().pos(),
            Decoder::Lzma(d) => d.inner().pos(),
            Decoder::Lz4(d) => d.pos(),
        }
    }
}

/// A buffered reader that counts what it consumed.
struct Tracked<B> {
    inner: B,
    pos: u64,
}

impl<B: BufRead> Tracked<B> {
    fn new(inner: B, pos: u64) -> Self {
        Tracked { inner, pos }
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.pos = self.pos.saturating_add(n as u64);
    }

    fn skip_zeros(&mut self) -> io::Result<()> {
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Ok(());
            }
            let zeros = avail.iter().take_while(|&&b| b == 0).count();
            let all = zeros == avail.len();
            self.consume(zeros);
            if !all {
                return Ok(());
            }
        }
    }

    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        Ok(self.inner.fill_buf()?.first().copied())
    }

    /// Fills `out` unless the data ends first; returns how much it got.
    fn read_full(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut got = 0usize;
        while got < out.len() {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let dst = out.get_mut(got..).unwrap_or_default();
            let n = dst.len().min(avail.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..n), avail.get(..n)) {
                d.copy_from_slice(s);
            }
            self.consume(n);
            got = got.saturating_add(n);
        }
        Ok(got)
    }

    /// Passes over `n` bytes (appending them to `keep` if given, adding
    /// them to `sum` if given); returns how many there were.
    fn take(
        &mut self,
        n: u64,
        mut keep: Option<&mut Vec<u8>>,
        mut sum: Option<&mut u32>,
    ) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let k = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let chunk = avail.get(..k).unwrap_or_default();
            if let Some(buf) = keep.as_deref_mut() {
                buf.extend_from_slice(chunk);
            }
            if let Some(s) = sum.as_deref_mut() {
                *s = chunk
                    .iter()
                    .fold(*s, |acc, &b| acc.wrapping_add(u32::from(b)));
            }
            self.consume(k);
            left = left.saturating_sub(k as u64);
        }
        Ok(n.saturating_sub(left))
    }
}

/// Bytes to the next multiple of four.
fn pad4(n: u64) -> u64 {
    n.wrapping_neg() & 3
}

/// A parsed newc header.
#[derive(Debug, Clone, Copy)]
struct Header {
    crc: bool,
    ino: u32,
    mode: u32,
    nlink: u32,
    filesize: u32,
    major: u32,
    minor: u32,
    namesize: u32,
    check: u32,
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

/// Printable form of untrusted bytes for a message.
fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

impl Header {
    fn parse(h: &[u8; HEADER_LEN]) -> Result<Header, String> {
        let (magic, rest) = h.split_at(6);
        let crc = match magic {
            b"070701" => false,
            b"070702" => true,
            b"070707" => {
                return Err(
                    "an old portable (odc, 070707) cpio header: the kernel reads only newc (`cpio -H newc`)"
                        .into(),
                )
            }
            _ => return Err(format!("no cpio magic (found \"{}\")", escape(magic))),
        };
        let mut v = [0u32; 13];
        for ((slot, digits), name) in v.iter_mut().zip(rest.chunks_exact(8)).zip(FIELDS) {
            let text = std::str::from_utf8(digits)
                .ok()
                .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()));
            *slot = text
                .and_then(|t| u32::from_str_radix(t, 16).ok())
                .ok_or_else(|| format!("non-hex {name} field \"{}\"", escape(digits)))?;
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
}

/// What the kernel would call the entry's type, for messages.
fn type_name(mode: u32) -> &'static str {
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
fn is_unsafe(name: &str) -> bool {
    name.starts_with('/') || name.split('/').any(|c| c == "..")
}

/// The name as shown: leading `./` removed (as `lsinitrd` shows it).
fn display_name(raw: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(raw).into_owned();
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_owned();
    }
    s
}

fn name_digest(raw: &[u8]) -> [u8; 32] {
    Sha256::digest(raw).into()
}

/// Notes kept per image; more are counted, not kept.
const MAX_NOTES: usize = 20;

pub(crate) struct Walker<'s, S: Sink> {
    sink: &'s mut S,
    limits: Limits,
    out: Walked,
    /// The UKI section being read, and its file offset.
    section: Option<String>,
    section_base: u64,
    /// Hard-link groups since the last `TRAILER!!!` (the kernel's link hash).
    scope: HashMap<(u32, u32, u32), usize>,
    /// Digests of every hard-link name so far (they stay in the rootfs after
    /// the hash is freed).
    link_names: HashMap<[u8; 32], usize>,
    name_bytes: usize,
    modules: usize,
    notes_dropped: usize,
}

impl<'s, S: Sink> Walker<'s, S> {
    pub(crate) fn new(sink: &'s mut S, limits: Limits) -> Self {
        Walker {
            sink,
            limits,
            out: Walked::default(),
            section: None,
            section_base: 0,
            scope: HashMap::new(),
            link_names: HashMap::new(),
            name_bytes: 0,
            modules: 0,
            notes_dropped: 0,
        }
    }

    /// Members found so far.
    pub(crate) fn members_len(&self) -> usize {
        self.out.members.len()
    }

    pub(crate) fn finish(mut self, fatal: Option<String>) -> Walked {
        if self.notes_dropped > 0 {
            self.out
                .notes
                .push(format!("… and {} more like these", self.notes_dropped));
        }
        self.out.fatal = fatal;
        self.out
    }

    fn note(&mut self, s: String) {
        if self.out.notes.len() < MAX_NOTES {
            self.out.notes.push(s);
        } else {
            self.notes_dropped = self.notes_dropped.saturating_add(1);
        }
    }

    fn where_(&self) -> String {
        match &self.section {
            Some(s) => format!("section {s} (file offset {}): ", self.section_base),
            None => String::new(),
        }
    }

    fn member_label(&self, idx: usize) -> String {
        match self.out.members.get(idx) {
            Some(m) => format!(
                "{}member {} ({}, at byte {})",
                self.where_(),
                m.index,
                m.kind,
                m.file_offset.saturating_sub(self.section_base)
            ),
            None => self.where_(),
        }
    }

    /// Reads one initramfs (a whole file, or a UKI section) as
    /// `unpack_to_rootfs` does. `Err` is the failure that stopped it.
    pub(crate) fn walk<R: Read>(
        &mut self,
        input: &mut Input<R>,
        section: Option<&str>,
        file_offset: u64,
    ) -> Result<(), String> {
        self.section = section.map(str::to_owned);
        self.section_base = file_offset;
        let read_error = |w: &Self, at: u64, e: io::Error| {
            format!("{}cannot read the image at byte {at}: {e}", w.where_())
        };
        loop {
            // Zero bytes between members are skipped one by one, with no
            // alignment rule (`if (!*buf) { buf++; len--; this_header++; }`).
            input
                .skip_zeros()
                .map_err(|e| read_error(self, input.pos(), e))?;
            let at = input.pos();
            let head = match input.peek(8) {
                Ok(h) => h.to_vec(),
                Err(e) => return Err(read_error(self, at, e)),
            };
            let Some(&first) = head.first() else {
                break;
            };
            self.sink.progress(file_offset.saturating_add(at));
            // A '0' at a 4-byte boundary starts a cpio archive; anything else
            // must be a compressed stream.
            if first == b'0' && at % 4 == 0 {
                let idx = self.push_member(MemberKind::Cpio, file_offset.saturating_add(at));
                let mut src = Tracked::new(&mut *input, at);
                match self.archives(&mut src, idx, false) {
                    Ok(_) => {}
                    Err(Stop::Bad(m)) => return Err(format!("{}: {m}", self.member_label(idx))),
                    Err(Stop::Io(e)) => {
                        return Err(format!(
                            "{}: cannot read the image: {e}",
                            self.member_label(idx)
                        ))
                    }
                }
                continue;
            }
            match stream::sniff(&head) {
                Sniff::Known(kind) => {
                    let idx = self
                        .push_member(MemberKind::Compressed(kind), file_offset.saturating_add(at));
                    self.compressed(input, kind, idx)
                        .map_err(|m| format!("{}: {m}", self.member_label(idx)))?;
                }
                Sniff::Unsupported(name) => {
                    return Err(format!(
                    "{}member {} at byte {at}: {name}-compressed, which modseal does not unpack \
                         (it reads gzip, xz, zstd, lzma and legacy lz4)",
                    self.where_(),
                    self.out.members.len().saturating_add(1)
                ))
                }
                Sniff::Unknown => {
                    let what = match self.out.members.len() {
                        0 => "not an initramfs".to_string(),
                        n => format!("trailing garbage after member {n}"),
                    };
                    return Err(format!(
                        "{}at byte {at}: {what}: neither a cpio archive nor a compressed stream \
                         the kernel knows (starts \"{}\"){}",
                        self.where_(),
                        escape(head.get(..4.min(head.len())).unwrap_or_default()),
                        stream::unknown_hint(&head)
                    ));
                }
            }
        }
        Ok(())
    }

    fn push_member(&mut self, kind: MemberKind, file_offset: u64) -> usize {
        let idx = self.out.members.len();
        self.out.members.push(Member {
            index: idx.saturating_add(1),
            kind,
            section: self.section.clone(),
            file_offset,
            unpacked: 0,
        });
        idx
    }

    fn compressed<R: Read>(
        &mut self,
        input: &mut Input<R>,
        kind: Compression,
        idx: usize,
    ) -> Result<(), String> {
        let decoder = Decoder::new(kind, input).map_err(|e| format!("bad {kind} header: {e}"))?;
        let allowance = self.limits.max_unpacked.saturating_sub(self.out.unpacked);
        let budget = Budget::new(decoder, allowance, self.limits.max_unpacked);
        let mut reader = BufReader::with_capacity(64 * 1024, budget);
        let result = {
            let mut src = Tracked::new(&mut reader, 0);
            self.archives(&mut src, idx, true)
        };
        let produced = reader.get_ref().produced();
        self.out.unpacked = self.out.unpacked.saturating_add(produced);
        if let Some(m) = self.out.members.get_mut(idx) {
            m.unpacked = produced;
        }
        match result {
            Ok(_) => {}
            Err(Stop::Bad(m)) => return Err(m),
            Err(Stop::Io(e)) => {
                if let Some(b) = e.get_ref().and_then(|e| e.downcast_ref::<OverBudget>()) {
                    return Err(format!(
                        "decompression bomb: {b} (--max-unpacked raises the cap)"
                    ));
                }
                let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                    "truncated"
                } else {
                    "corrupt"
                };
                return Err(format!(
                    "{what} {kind} stream (after {produced} bytes unpacked): {e}"
                ));
            }
        }
        reader
            .into_inner()
            .into_inner()
            .finish(produced)
            .map_err(|e| format!("corrupt {kind} stream: {e}"))
    }

    /// One or more cpio archives, each ending with `TRAILER!!!`, with zero
    /// padding after entries (the kernel's `do_reset`).
    fn archives<B: BufRead + FilePos>(
        &mut self,
        src: &mut Tracked<B>,
        member: usize,
        compressed: bool,
    ) -> Result<End, Stop> {
        let mut any = false;
        let mut after_trailer = false;
        let unpacked = if compressed {
            " of the unpacked data"
        } else {
            ""
        };
        loop {
            src.skip_zeros()?;
            let next = src.peek_byte()?;
            let Some(b) = next else {
                if any && !after_trailer {
                    return Err(Stop::Bad(format!(
                        "the archive ends at byte {}{unpacked} without a TRAILER!!! entry (truncated?)",
                        src.pos
                    )));
                }
                if !any {
                    return Err(Stop::Bad(
                        "the compressed data holds no cpio archive".into(),
                    ));
                }
                return Ok(End::Eof);
            };
            if src.pos % 4 != 0 {
                return Err(Stop::Bad(format!(
                    "broken padding: data resumes at byte {}{unpacked}, not a multiple of 4",
                    src.pos
                )));
            }
            if b != b'0' {
                if any && !after_trailer {
                    return Err(Stop::Bad(format!(
                        "the archive ends at byte {}{unpacked} without a TRAILER!!! entry (truncated?)",
                        src.pos
                    )));
                }
                if compressed {
                    let what = if any {
                        "junk within the compressed archive"
                    } else {
                        "the unpacked data does not start with a cpio header"
                    };
                    return Err(Stop::Bad(format!(
                        "{what} at byte {}{unpacked} (0x{b:02x})",
                        src.pos
                    )));
                }
                return Ok(End::Other);
            }
            any = true;
            after_trailer = self.entry(src, member, unpacked)?;
            self.sink.progress(src.inner.file_pos());
        }
    }

    /// One entry; `Ok(true)` for a `TRAILER!!!`.
    fn entry<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        member: usize,
        unpacked: &str,
    ) -> Result<bool, Stop> {
        let at = src.pos;
        self.out.entries = self.out.entries.saturating_add(1);
        let n = self.out.entries;
        if n > self.limits.max_entries {
            return Err(Stop::Bad(format!(
                "more than {} entries in the image (a bomb?)",
                self.limits.max_entries
            )));
        }
        let here = |what: String| Stop::Bad(format!("entry {n} at byte {at}{unpacked}: {what}"));
        let mut raw = [0u8; HEADER_LEN];
        let got = src.read_full(&mut raw)?;
        if got < HEADER_LEN {
            return Err(here(format!(
                "header cut short ({got} of {HEADER_LEN} bytes): truncated archive"
            )));
        }
        let h = Header::parse(&raw).map_err(here)?;
        if h.namesize == 0 || h.namesize > PATH_MAX {
            return Err(here(format!(
                "name size {} outside 1..={PATH_MAX} (PATH_MAX)",
                h.namesize
            )));
        }
        let name_len = usize::try_from(h.namesize).unwrap_or(usize::MAX);
        let mut name_buf = vec![0u8; name_len];
        let name_pad = pad4((HEADER_LEN as u64).saturating_add(u64::from(h.namesize)));
        if src.read_full(&mut name_buf)? < name_len || src.take(name_pad, None, None)? < name_pad {
            return Err(here("name cut short: truncated archive".into()));
        }
        let ftype = h.mode & S_IFMT;
        let size = u64::from(h.filesize);
        // do_header: only symlinks (with a target within PATH_MAX), regular
        // files and entries without data get as far as their name.
        let named = if ftype == S_IFLNK {
            h.filesize <= PATH_MAX
        } else {
            ftype == S_IFREG || h.filesize == 0
        };
        if !named {
            return self
                .skip_body(src, size, None, n, at, unpacked, "")
                .map(|_| false);
        }
        if name_buf.last() != Some(&0) {
            return Err(here(format!(
                "malformed archive: name \"{}\" without a terminating NUL",
                escape(name_buf.get(..name_len.min(64)).unwrap_or_default())
            )));
        }
        let raw_name = name_buf.split(|&b| b == 0).next().unwrap_or_default();
        if ftype != S_IFLNK && raw_name == b"TRAILER!!!" {
            self.skip_body(src, size, None, n, at, unpacked, "TRAILER!!!")?;
            // free_hash(): hard links do not reach past a trailer.
            self.scope.clear();
            return Ok(true);
        }
        let name = display_name(raw_name);
        let digest = name_digest(raw_name);
        if let Some(&group) = self.link_names.get(&digest) {
            let same_group = ftype == S_IFREG
                && h.nlink >= 2
                && self.scope.get(&(h.major, h.minor, h.ino)) == Some(&group);
            if !same_group {
                self.out.problems.push(format!(
                    "{}: entry {n} '{name}' at byte {at}{unpacked} ({}) reuses the name of a hard link: \
                     the kernel would write through to, or unlink, the linked file",
                    self.member_label(member),
                    type_name(h.mode)
                ));
            } else {
                self.out.problems.push(format!(
                    "{}: entry {n} '{name}' at byte {at}{unpacked} repeats a hard link of its own group",
                    self.member_label(member)
                ));
            }
        }
        let is_module = crate::image::walk::is_module_name(&name);
        let unsafe_path = is_unsafe(&name);
        if unsafe_path && !is_module {
            let m = format!(
                "{}: entry {n} '{name}' at byte {at}{unpacked}: absolute or '..' path (reported, not followed)",
                self.member_label(member)
            );
            self.note(m);
        }
        match ftype {
            S_IFREG if h.nlink >= 2 => {
                self.link_entry(
                    src,
                    &h,
                    &name,
                    digest,
                    is_module,
                    unsafe_path,
                    member,
                    n,
                    at,
                    unpacked,
                )?;
            }
            S_IFREG if is_module => {
                self.count_module(&name, n, at, unpacked)?;
                let kind = if size > self.limits.max_module_size as u64 {
                    self.skip_body(src, size, Some(&h), n, at, unpacked, &name)?;
                    RowKind::Fixed {
                        verdict: Verdict::IoError,
                        reason: too_large(size, self.limits.max_module_size),
                    }
                } else {
                    let buf = self.read_body(src, &h, n, at, unpacked, &name)?;
                    let format = format_for_module_path(std::path::Path::new(&name));
                    RowKind::Job {
                        job: self.sink.submit(buf, vec![format], &name),
                    }
                };
                self.out.rows.push(Row {
                    path: name,
                    member,
                    unsafe_path,
                    kind,
                });
            }
            S_IFREG => {
                self.skip_body(src, size, Some(&h), n, at, unpacked, &name)?;
            }
            S_IFLNK if is_module => {
                self.count_module(&name, n, at, unpacked)?;
                let mut target = Vec::new();
                if src.take(size, Some(&mut target), None)? < size {
                    return Err(here(format!(
                        "symbolic link target of {size} bytes cut short: truncated archive"
                    )));
                }
                self.skip_pad(src, size, n, at, unpacked, &name)?;
                self.out.rows.push(Row {
                    path: name,
                    member,
                    unsafe_path,
                    kind: RowKind::Fixed {
                        verdict: Verdict::IoError,
                        reason: format!(
                            "a symbolic link to '{}', not a regular file: links inside an image are not followed",
                            String::from_utf8_lossy(&target)
                        ),
                    },
                });
            }
            S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK if is_module => {
                self.count_module(&name, n, at, unpacked)?;
                self.skip_body(src, size, None, n, at, unpacked, &name)?;
                self.out.rows.push(Row {
                    path: name,
                    member,
                    unsafe_path,
                    kind: RowKind::Fixed {
                        verdict: Verdict::IoError,
                        reason: format!("not a regular file (a {})", type_name(h.mode)),
                    },
                });
            }
            _ => {
                self.skip_body(src, size, None, n, at, unpacked, &name)?;
            }
        }
        Ok(false)
    }

    fn count_module(&mut self, name: &str, n: u64, at: u64, unpacked: &str) -> Result<(), Stop> {
        self.modules = self.modules.saturating_add(1);
        self.name_bytes = self.name_bytes.saturating_add(name.len());
        if self.modules > self.limits.max_modules || self.name_bytes > self.limits.max_name_bytes {
            return Err(Stop::Bad(format!(
                "entry {n} at byte {at}{unpacked}: more than {} module entries (or {} bytes of their names) in the image",
                self.limits.max_modules,
                self.limits.max_name_bytes
            )));
        }
        Ok(())
    }

    /// A regular file with `nlink >= 2` (`maybe_link`).
    #[allow(clippy::too_many_arguments)]
    fn link_entry<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        name: &str,
        digest: [u8; 32],
        is_module: bool,
        unsafe_path: bool,
        member: usize,
        n: u64,
        at: u64,
        unpacked: &str,
    ) -> Result<(), Stop> {
        let key = (h.major, h.minor, h.ino);
        let group = match self.scope.get(&key) {
            Some(&g) => g,
            None => {
                let g = self.out.groups.len();
                self.out.groups.push(Group {
                    content: GroupContent::Empty,
                    data_from: None,
                    formats: Vec::new(),
                    bodies: 0,
                });
                self.scope.insert(key, g);
                g
            }
        };
        if self.link_names.len() >= self.limits.max_links {
            return Err(Stop::Bad(format!(
                "entry {n} at byte {at}{unpacked}: more than {} hard links in the image",
                self.limits.max_links
            )));
        }
        self.link_names.insert(digest, group);
        let format = format_for_module_path(std::path::Path::new(name));
        if is_module {
            self.count_module(name, n, at, unpacked)?;
            if let Some(g) = self.out.groups.get_mut(group) {
                if !g.formats.contains(&format) {
                    g.formats.push(format);
                }
            }
            self.out.rows.push(Row {
                path: name.to_owned(),
                member,
                unsafe_path,
                kind: RowKind::Link { group, format },
            });
        }
        let size = u64::from(h.filesize);
        if size == 0 {
            // A link without data leaves the inode's content as it is.
            return self.skip_body(src, 0, Some(h), n, at, unpacked, name);
        }
        let (formats, bodies) = match self.out.groups.get_mut(group) {
            Some(g) => {
                g.bodies = g.bodies.saturating_add(1);
                (g.formats.clone(), g.bodies)
            }
            None => (Vec::new(), 1),
        };
        if bodies == 2 {
            self.out.problems.push(format!(
                "{}: entry {n} '{name}' at byte {at}{unpacked}: a second body for the same hard-linked file \
                 (inode {}): the kernel keeps the last, newc writers store one",
                self.member_label(member),
                h.ino
            ));
        }
        let content = if formats.is_empty() {
            self.skip_body(src, size, Some(h), n, at, unpacked, name)?;
            GroupContent::Unchecked
        } else if size > self.limits.max_module_size as u64 {
            self.skip_body(src, size, Some(h), n, at, unpacked, name)?;
            GroupContent::TooLarge(size)
        } else {
            let buf = self.read_body(src, h, n, at, unpacked, name)?;
            let job = self.sink.submit(buf, formats.clone(), name);
            GroupContent::Checked { job, formats }
        };
        if let Some(g) = self.out.groups.get_mut(group) {
            g.content = content;
            g.data_from = Some(name.to_owned());
        }
        Ok(())
    }

    /// Reads a body of at most the module limit, checking the newc sum.
    fn read_body<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        n: u64,
        at: u64,
        unpacked: &str,
        name: &str,
    ) -> Result<Vec<u8>, Stop> {
        let size = u64::from(h.filesize);
        let mut buf = self.sink.buffer();
        buf.clear();
        // Grow with the data, not with what the header claims.
        buf.reserve(usize::try_from(size.min(16 << 20)).unwrap_or(0));
        let mut sum = 0u32;
        let got = src.take(size, Some(&mut buf), h.crc.then_some(&mut sum))?;
        if got < size {
            return Err(cut_short(n, at, unpacked, name, size, got));
        }
        if h.crc && sum != h.check {
            return Err(bad_sum(n, at, unpacked, name));
        }
        self.skip_pad(src, size, n, at, unpacked, name)?;
        Ok(buf)
    }

    /// Passes over a body (and its padding), checking the newc sum of a
    /// regular file's.
    #[allow(clippy::too_many_arguments)]
    fn skip_body<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        size: u64,
        regular: Option<&Header>,
        n: u64,
        at: u64,
        unpacked: &str,
        name: &str,
    ) -> Result<(), Stop> {
        let check = regular.filter(|h| h.crc);
        let mut sum = 0u32;
        let got = src.take(size, None, check.is_some().then_some(&mut sum))?;
        if got < size {
            return Err(cut_short(n, at, unpacked, name, size, got));
        }
        if let Some(h) = check {
            if sum != h.check {
                return Err(bad_sum(n, at, unpacked, name));
            }
        }
        self.skip_pad(src, size, n, at, unpacked, name)
    }

    fn skip_pad<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        size: u64,
        n: u64,
        at: u64,
        unpacked: &str,
        name: &str,
    ) -> Result<(), Stop> {
        let pad = pad4(size);
        if src.take(pad, None, None)? < pad {
            return Err(Stop::Bad(format!(
                "entry {n} '{name}' at byte {at}{unpacked}: padding after the data cut short: truncated archive"
            )));
        }
        Ok(())
    }
}

fn cut_short(n: u64, at: u64, unpacked: &str, name: &str, size: u64, got: u64) -> Stop {
    let name = if name.is_empty() {
        String::new()
    } else {
        format!(" '{name}'")
    };
    Stop::Bad(format!(
        "entry {n}{name} at byte {at}{unpacked}: file size {size} runs past the end of the data \
         ({got} bytes there): truncated archive"
    ))
}

fn bad_sum(n: u64, at: u64, unpacked: &str, name: &str) -> Stop {
    Stop::Bad(format!(
        "entry {n} '{name}' at byte {at}{unpacked}: bad data checksum (070702 archive)"
    ))
}

pub(crate) fn too_large(size: u64, limit: usize) -> String {
    format!("file is {size} bytes, larger than the {limit}-byte limit")
}
