//! The members of one initramfs, read as `unpack_to_rootfs` reads them:
//! zero padding, uncompressed runs of cpio archives, compressed streams.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};

use super::reader::{FilePos, Tracked};
use super::{Limits, Sink, Stop, Walked};
use crate::image::compression::{Compression, Recognized};
use crate::image::initramfs::error::{CpioError, InitramfsError, MemberAt, MemberError, SectionAt};
use crate::image::initramfs::input::Input;
use crate::image::initramfs::member::{Member, MemberKind};
use crate::image::initramfs::stream::{Budget, Decoder, OverBudget};

/// Notes kept per image; more are counted, not kept.
const MAX_NOTES: usize = 20;

/// Reads the members of an image (all sections of a UKI in turn) and
/// collects what [`Walked`] holds.
pub(crate) struct Walker<'s, S: Sink> {
    /// Where module bodies go.
    pub(super) sink: &'s mut S,
    /// The caps on this image.
    pub(super) limits: Limits,
    /// What the walk has found so far.
    pub(super) out: Walked,
    /// The UKI section being read.
    section: Option<SectionAt>,
    /// Its file offset (0 for a plain image).
    base: u64,
    /// Hard-link groups since the last `TRAILER!!!` (the kernel's link hash).
    pub(super) scope: HashMap<(u32, u32, u32), usize>,
    /// Digests of every hard-link name so far (they stay in the rootfs after
    /// the hash is freed).
    pub(super) link_names: HashMap<[u8; 32], usize>,
    /// Bytes of module names so far (capped).
    pub(super) name_bytes: usize,
    /// Module entries so far (capped).
    pub(super) modules: usize,
    notes_dropped: usize,
    /// A path to read (as names are shown) and the largest body taken.
    pub(super) want: Option<(String, usize)>,
    /// Paths whose SHA-256 to record (as names are shown).
    pub(super) digest: Vec<String>,
}

/// How a run of cpio archives ended.
enum End {
    /// The data ended (after a `TRAILER!!!` and padding).
    Eof,
    /// A byte that starts no cpio header came (the next member).
    Other,
}

impl<'s, S: Sink> Walker<'s, S> {
    /// A walker that hands module bodies to `sink`.
    pub(crate) fn new(sink: &'s mut S, limits: Limits) -> Self {
        Walker {
            sink,
            limits,
            out: Walked::default(),
            section: None,
            base: 0,
            scope: HashMap::new(),
            link_names: HashMap::new(),
            name_bytes: 0,
            modules: 0,
            notes_dropped: 0,
            want: None,
            digest: Vec::new(),
        }
    }

    /// A walker that also reads the file at `path` (at most `cap` bytes)
    /// into [`Walked::wanted`].
    pub(crate) fn wanting(mut self, path: &str, cap: usize) -> Self {
        self.want = Some((path.to_owned(), cap));
        self
    }

    /// A walker that also records the SHA-256 of the files at `paths`
    /// into [`Walked::digests`](super::Walked::digests).
    pub(crate) fn digesting(mut self, paths: &[String]) -> Self {
        self.digest = paths.to_vec();
        self
    }

    /// Members found so far.
    pub(crate) fn members_len(&self) -> usize {
        self.out.members.len()
    }

    /// What the walk found; `fatal` is the failure that stopped it.
    pub(crate) fn finish(mut self, fatal: Option<InitramfsError>) -> Walked {
        if self.notes_dropped > 0 {
            self.out
                .notes
                .push(format!("… and {} more like these", self.notes_dropped));
        }
        self.out.fatal = fatal;
        self.out
    }

    /// Keeps a note, or counts it once there are enough.
    pub(super) fn note(&mut self, s: String) {
        if self.out.notes.len() < MAX_NOTES {
            self.out.notes.push(s);
        } else {
            self.notes_dropped = self.notes_dropped.saturating_add(1);
        }
    }

    /// Reads one initramfs (a whole file, or a UKI section) as
    /// `unpack_to_rootfs` does. `Err` is the failure that stopped it.
    pub(crate) fn walk<R: Read>(
        &mut self,
        input: &mut Input<R>,
        section: Option<&str>,
        file_offset: u64,
    ) -> Result<(), InitramfsError> {
        self.section = section.map(|name| SectionAt {
            name: name.to_owned(),
            file_offset,
        });
        self.base = file_offset;
        loop {
            // Zero bytes between members are skipped one by one, with no
            // alignment rule (`if (!*buf) { buf++; len--; this_header++; }`).
            input
                .skip_zeros()
                .map_err(|e| self.read_error(input.pos(), e))?;
            let at = input.pos();
            let head = input.peek(8).map_err(|e| self.read_error(at, e))?.to_vec();
            let Some(&first) = head.first() else {
                break;
            };
            self.sink.progress(file_offset.saturating_add(at));
            // A '0' at a 4-byte boundary starts a cpio archive; anything else
            // must be a compressed stream.
            if first == b'0' && at % 4 == 0 {
                self.cpio_member(input, at)?;
            } else {
                self.compressed_member(input, at, head)?;
            }
        }
        Ok(())
    }

    fn read_error(&self, offset: u64, source: io::Error) -> InitramfsError {
        InitramfsError::Read {
            section: self.section.clone(),
            offset,
            source,
        }
    }

    fn push_member(&mut self, kind: MemberKind, at: u64) -> MemberAt {
        let index = self.out.members.len().saturating_add(1);
        let file_offset = self.base.saturating_add(at);
        self.out.members.push(Member {
            index,
            kind,
            section: self.section.as_ref().map(|s| s.name.clone()),
            file_offset,
            unpacked: 0,
        });
        MemberAt {
            section: self.section.clone(),
            index,
            kind,
            offset: file_offset.saturating_sub(self.base),
        }
    }

    /// An uncompressed run of cpio archives at `at`.
    fn cpio_member<R: Read>(
        &mut self,
        input: &mut Input<R>,
        at: u64,
    ) -> Result<(), InitramfsError> {
        let member = self.push_member(MemberKind::Cpio, at);
        let mut src = Tracked::new(&mut *input, at);
        let error = match self.archives(&mut src, &member, false) {
            Ok(_) => return Ok(()),
            Err(Stop::Bad(e)) => MemberError::Cpio(e),
            Err(Stop::Io(e)) => MemberError::Read(e),
        };
        Err(InitramfsError::Member {
            member,
            error: Box::new(error),
        })
    }

    /// A member that does not start a cpio archive: a compressed stream the
    /// kernel's table knows, or the end of what the kernel would unpack.
    fn compressed_member<R: Read>(
        &mut self,
        input: &mut Input<R>,
        at: u64,
        head: Vec<u8>,
    ) -> Result<(), InitramfsError> {
        match Compression::for_initramfs_member(&head) {
            Recognized::Supported(kind) => {
                let member = self.push_member(MemberKind::Compressed(kind), at);
                self.compressed(input, kind, &member)
                    .map_err(|error| InitramfsError::Member {
                        member,
                        error: Box::new(error),
                    })
            }
            Recognized::Unsupported(compression) => Err(InitramfsError::UnsupportedCompression {
                section: self.section.clone(),
                index: self.out.members.len().saturating_add(1),
                offset: at,
                compression,
            }),
            Recognized::Unknown => Err(InitramfsError::Unrecognized {
                section: self.section.clone(),
                offset: at,
                members: self.out.members.len(),
                head,
            }),
        }
    }

    /// Decompresses one member, reading its cpio archives as they come out,
    /// within what is left of the image's budget.
    fn compressed<R: Read>(
        &mut self,
        input: &mut Input<R>,
        kind: Compression,
        member: &MemberAt,
    ) -> Result<(), MemberError> {
        let decoder = Decoder::new(kind, input).map_err(|error| MemberError::BadHeader {
            compression: kind,
            error,
        })?;
        let allowance = self.limits.max_unpacked.saturating_sub(self.out.unpacked);
        let budget = Budget::new(decoder, allowance, self.limits.max_unpacked);
        let mut reader = BufReader::with_capacity(64 * 1024, budget);
        let result = {
            let mut src = Tracked::new(&mut reader, 0);
            self.archives(&mut src, member, true)
        };
        let produced = reader.get_ref().produced();
        self.out.unpacked = self.out.unpacked.saturating_add(produced);
        if let Some(m) = self.out.members.get_mut(member.slot()) {
            m.unpacked = produced;
        }
        match result {
            Ok(_) => Ok(()),
            Err(Stop::Bad(e)) => Err(e.into()),
            Err(Stop::Io(e)) => Err(stream_failure(kind, produced, e)),
        }
    }

    /// One or more cpio archives, each ending with `TRAILER!!!`, with zero
    /// padding after entries (the kernel's `do_reset`).
    fn archives<B: BufRead + FilePos>(
        &mut self,
        src: &mut Tracked<B>,
        member: &MemberAt,
        compressed: bool,
    ) -> Result<End, Stop> {
        let mut any = false;
        let mut after_trailer = false;
        loop {
            src.skip_zeros()?;
            let next = src.peek_byte()?;
            let offset = src.pos;
            let Some(byte) = next else {
                return end_of_data(any, after_trailer, offset, compressed);
            };
            if offset % 4 != 0 {
                return Err(CpioError::BrokenPadding {
                    offset,
                    unpacked: compressed,
                }
                .into());
            }
            if byte != b'0' {
                return end_of_archives(any, after_trailer, offset, compressed, byte);
            }
            any = true;
            after_trailer = self.entry(src, member, compressed)?;
            self.sink.progress(src.inner.file_pos());
        }
    }
}

/// The member's data ended after `any` entries.
fn end_of_data(any: bool, after_trailer: bool, offset: u64, compressed: bool) -> Result<End, Stop> {
    if any && !after_trailer {
        return Err(CpioError::NoTrailer {
            offset,
            unpacked: compressed,
        }
        .into());
    }
    if !any {
        return Err(CpioError::NoArchive.into());
    }
    Ok(End::Eof)
}

/// A byte that starts no cpio header: the next member, unless the archive
/// was cut short or the member is compressed (whose data is cpio only).
fn end_of_archives(
    any: bool,
    after_trailer: bool,
    offset: u64,
    compressed: bool,
    byte: u8,
) -> Result<End, Stop> {
    if any && !after_trailer {
        return Err(CpioError::NoTrailer {
            offset,
            unpacked: compressed,
        }
        .into());
    }
    if compressed {
        let error = if any {
            CpioError::Junk { offset, byte }
        } else {
            CpioError::NotCpio { offset, byte }
        };
        return Err(error.into());
    }
    Ok(End::Other)
}

/// A read error inside a compressed member: the budget's bomb cap, or a
/// truncated or corrupt stream.
fn stream_failure(compression: Compression, produced: u64, e: io::Error) -> MemberError {
    if let Some(b) = e.get_ref().and_then(|e| e.downcast_ref::<OverBudget>()) {
        return MemberError::Bomb { limit: b.limit };
    }
    MemberError::Stream {
        compression,
        produced,
        source: e,
    }
}
