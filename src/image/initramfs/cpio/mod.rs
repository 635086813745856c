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
//!
//! The files: `header` (one newc header), `reader` (counted reading of a
//! member's data), `walker` (the members of an image), `entry` (one entry
//! and its body), `links` (hard-link groups).
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

mod entry;
/// One newc header.
pub(crate) mod header;
mod links;
mod reader;
/// The members of one image.
pub(crate) mod walker;

use std::collections::BTreeMap;
use std::io;

use super::error::{CpioError, InitramfsError, LinkProblem};
use super::member::Member;
use crate::image::compression::Compression;
use crate::verify::Verdict;

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
    fn submit(&mut self, bytes: Vec<u8>, formats: Vec<Compression>, path: &str) -> usize;
    /// How far into the image file reading has got.
    fn progress(&mut self, file_pos: u64);
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
    /// How its report is made.
    pub kind: RowKind,
}

/// How a row's report is made.
#[derive(Debug, Clone)]
pub(crate) enum RowKind {
    /// The entry's own body, checked by a job.
    Job { job: usize },
    /// A hard link: the content its group ends with.
    Link { group: usize, format: Compression },
    /// Decided without checking a body.
    Fixed { verdict: Verdict, reason: String },
}

/// A hard-link group (entries with `nlink >= 2` and the same major, minor,
/// inode and type, between two `TRAILER!!!`s): one inode in the kernel's
/// rootfs, whose content is the body of the last of its entries that had
/// one (`do_name` truncates and rewrites it; size-0 links leave it).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The inode's content as the walk left it.
    pub content: GroupContent,
    /// The entry whose body that is.
    pub data_from: Option<String>,
    /// Formats the group's module names ask for.
    pub formats: Vec<Compression>,
    /// Entries of the group that carried a body.
    pub bodies: u32,
}

/// A hard-link group's content.
#[derive(Debug, Clone)]
pub(crate) enum GroupContent {
    /// No body yet: an empty file.
    Empty,
    /// Read and checked as these formats.
    Checked {
        job: usize,
        formats: Vec<Compression>,
    },
    /// Skipped: no module name had joined the group when it went past.
    Unchecked,
    /// Larger than the module limit.
    TooLarge(u64),
}

/// Everything one image's walk produced.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// Module entries, in order.
    pub rows: Vec<Row>,
    /// Hard-link groups, by number.
    pub groups: Vec<Group>,
    /// Failures that did not stop the walk (hard-link misuse).
    pub problems: Vec<LinkProblem>,
    /// The failure that stopped it, if any.
    pub fatal: Option<InitramfsError>,
    /// Things worth saying that are not failures (unsafe paths of files
    /// that are not modules).
    pub notes: Vec<String>,
    /// The image's members, in order.
    pub members: Vec<Member>,
    /// cpio entries read.
    pub entries: u64,
    /// Bytes decompressed.
    pub unpacked: u64,
    /// The last entry at the path the walk was asked for, if any.
    pub wanted: Option<Wanted>,
    /// The last entry at each path the walk was asked to digest (paths
    /// absent from the image are absent here).
    pub digests: BTreeMap<String, Digested>,
}

/// The entry at a path a walk was asked to digest: only its SHA-256 is
/// kept, so a large file (the modseal binary) costs no memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Digested {
    /// A regular file with one link: the SHA-256 of its bytes.
    File([u8; 32]),
    /// Anything else: what it is.
    NotRegular(&'static str),
}

/// The entry at a path a walk was asked to read (the last of that name,
/// as in the kernel's rootfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// A regular file with one link: its bytes.
    File(Vec<u8>),
    /// A regular file larger than the caller's cap: its size.
    TooLarge(u64),
    /// Anything else: what it is.
    NotRegular(&'static str),
}

/// Stops the walk: a read error (the decoder's, the file's, or the bomb
/// cap) or a format violation.
pub(crate) enum Stop {
    Io(io::Error),
    Bad(CpioError),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

impl From<CpioError> for Stop {
    fn from(e: CpioError) -> Self {
        Stop::Bad(e)
    }
}

/// The report reason for a module larger than the limit.
pub(crate) fn too_large(size: u64, limit: usize) -> String {
    format!("file is {size} bytes, larger than the {limit}-byte limit")
}
