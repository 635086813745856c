//! One newc entry as `do_header`, `do_name` and `do_copy` see it: its
//! header, its name, and its body, which becomes a module row, a hard link,
//! or streams past.

use std::io::BufRead;

use super::header::{
    display_name, is_unsafe, name_digest, pad4, type_name, Header, HEADER_LEN, PATH_MAX, S_IFBLK,
    S_IFCHR, S_IFIFO, S_IFLNK, S_IFREG, S_IFSOCK,
};
use super::reader::Tracked;
use super::walker::Walker;
use super::{too_large, Digested, Row, RowKind, Sink, Stop, Wanted};
use crate::image::compression::Compression;
use crate::image::initramfs::error::{CpioError, EntryAt, MemberAt};
use crate::verify::Verdict;
use sha2::{Digest, Sha256};

/// An entry that got as far as its name, and what its name says.
pub(super) struct Named {
    /// The name as shown (a leading `./` removed).
    pub name: String,
    /// SHA-256 of the name as stored, for the hard-link name set.
    pub digest: [u8; 32],
    /// A module file name (`.ko`, `.ko.xz`, …).
    pub is_module: bool,
    /// Absolute, or with a `..` component.
    pub unsafe_path: bool,
}

impl<S: Sink> Walker<'_, S> {
    /// One entry; `Ok(true)` for a `TRAILER!!!`.
    pub(super) fn entry<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        member: &MemberAt,
        unpacked: bool,
    ) -> Result<bool, Stop> {
        let at = self.next_entry(src.pos, unpacked)?;
        let h = read_header(src, &at)?;
        let name_buf = read_name(src, &h, &at)?;
        let size = u64::from(h.filesize);
        if !reaches_name(&h) {
            return self.skip_body(src, size, None, &at, "").map(|()| false);
        }
        let raw_name = terminated_name(&name_buf, &at)?;
        if h.file_type() != S_IFLNK && raw_name == b"TRAILER!!!" {
            self.skip_body(src, size, None, &at, "TRAILER!!!")?;
            // free_hash(): hard links do not reach past a trailer.
            self.scope.clear();
            return Ok(true);
        }
        let name = display_name(raw_name);
        let entry = Named {
            digest: name_digest(raw_name),
            is_module: Compression::is_module_name(&name),
            unsafe_path: is_unsafe(&name),
            name,
        };
        self.check_link_name(&h, &entry.digest, member, &at.named(&entry.name));
        if entry.unsafe_path && !entry.is_module {
            let note = format!(
                "{member}: {}: absolute or '..' path (reported, not followed)",
                at.named(&entry.name)
            );
            self.note(note);
        }
        match &self.want {
            Some((want, cap)) if *want == entry.name && !entry.is_module => {
                let cap = *cap;
                self.wanted_entry(src, &h, member, &at, entry, cap)?;
            }
            _ if !entry.is_module && self.digest.contains(&entry.name) => {
                self.digested_entry(src, &h, member, &at, entry)?;
            }
            _ => self.by_type(src, &h, member, &at, entry)?,
        }
        Ok(false)
    }

    /// An entry at a path the walk was asked to digest: a plain regular
    /// file's body streams through SHA-256, anything else is named.
    fn digested_entry<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        entry: Named,
    ) -> Result<(), Stop> {
        let found = match h.file_type() {
            S_IFREG if h.nlink < 2 => {
                let size = u64::from(h.filesize);
                let mut hash = Sha256::new();
                let mut sum = 0u32;
                let got =
                    src.take_each(size, &mut |c| hash.update(c), h.crc.then_some(&mut sum))?;
                if got < size {
                    return Err(cut_short(at, &entry.name, size, got));
                }
                if h.crc && sum != h.check {
                    return Err(bad_sum(at, &entry.name));
                }
                self.skip_pad(src, size, at, &entry.name)?;
                Digested::File(hash.finalize().into())
            }
            S_IFREG => Digested::NotRegular("hard link"),
            _ => Digested::NotRegular(type_name(h.mode)),
        };
        let name = entry.name.clone();
        if !matches!(found, Digested::File(_)) {
            self.by_type(src, h, member, at, entry)?;
        }
        self.out.digests.insert(name, found);
        Ok(())
    }

    /// The entry at the path the walk was asked for: its body kept when it
    /// is a plain regular file, else what it is.
    fn wanted_entry<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        entry: Named,
        cap: usize,
    ) -> Result<(), Stop> {
        let size = u64::from(h.filesize);
        let found = match h.file_type() {
            S_IFREG if h.nlink < 2 && size <= cap as u64 => {
                Wanted::File(self.read_body(src, h, at, &entry.name)?)
            }
            S_IFREG if h.nlink < 2 => {
                self.skip_body(src, size, Some(h), at, &entry.name)?;
                Wanted::TooLarge(size)
            }
            S_IFREG => {
                self.by_type(src, h, member, at, entry)?;
                Wanted::NotRegular("hard link")
            }
            _ => {
                let what = type_name(h.mode);
                self.by_type(src, h, member, at, entry)?;
                Wanted::NotRegular(what)
            }
        };
        self.out.wanted = Some(found);
        Ok(())
    }

    /// Counts an entry against the image's cap and names its place.
    fn next_entry(&mut self, offset: u64, unpacked: bool) -> Result<EntryAt, Stop> {
        self.out.entries = self.out.entries.saturating_add(1);
        if self.out.entries > self.limits.max_entries {
            return Err(CpioError::TooManyEntries {
                limit: self.limits.max_entries,
            }
            .into());
        }
        Ok(EntryAt {
            number: self.out.entries,
            name: None,
            offset,
            unpacked,
        })
    }

    /// What a named entry becomes, by its type and whether it is a module.
    fn by_type<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        entry: Named,
    ) -> Result<(), Stop> {
        let size = u64::from(h.filesize);
        match h.file_type() {
            S_IFREG if h.nlink >= 2 => self.link_entry(src, h, member, at, &entry),
            S_IFREG if entry.is_module => self.module_file(src, h, member, at, entry),
            S_IFREG => self.skip_body(src, size, Some(h), at, &entry.name),
            S_IFLNK if entry.is_module => self.module_symlink(src, h, member, at, entry),
            S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK if entry.is_module => {
                self.count_module(&entry.name, at)?;
                self.skip_body(src, size, None, at, &entry.name)?;
                let reason = format!("not a regular file (a {})", type_name(h.mode));
                self.push_fixed(member, entry, Verdict::IoError, reason);
                Ok(())
            }
            _ => self.skip_body(src, size, None, at, &entry.name),
        }
    }

    /// A module-named regular file with one link: its body goes to a job.
    fn module_file<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        entry: Named,
    ) -> Result<(), Stop> {
        self.count_module(&entry.name, at)?;
        let size = u64::from(h.filesize);
        let kind = if size > self.limits.max_module_size as u64 {
            self.skip_body(src, size, Some(h), at, &entry.name)?;
            RowKind::Fixed {
                verdict: Verdict::IoError,
                reason: too_large(size, self.limits.max_module_size),
            }
        } else {
            let buf = self.read_body(src, h, at, &entry.name)?;
            let format = Compression::for_module_path(std::path::Path::new(&entry.name));
            RowKind::Job {
                job: self.sink.submit(buf, vec![format], &entry.name),
            }
        };
        self.out.rows.push(Row {
            path: entry.name,
            member: member.slot(),
            unsafe_path: entry.unsafe_path,
            kind,
        });
        Ok(())
    }

    /// A module-named symlink: reported, not followed.
    fn module_symlink<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        entry: Named,
    ) -> Result<(), Stop> {
        self.count_module(&entry.name, at)?;
        let size = u64::from(h.filesize);
        let mut target = Vec::new();
        if src.take(size, Some(&mut target), None)? < size {
            return Err(CpioError::LinkTargetCutShort {
                entry: at.clone(),
                size,
            }
            .into());
        }
        self.skip_pad(src, size, at, &entry.name)?;
        let reason = format!(
            "a symbolic link to '{}', not a regular file: links inside an image are not followed",
            String::from_utf8_lossy(&target)
        );
        self.push_fixed(member, entry, Verdict::IoError, reason);
        Ok(())
    }

    fn push_fixed(&mut self, member: &MemberAt, entry: Named, verdict: Verdict, reason: String) {
        self.out.rows.push(Row {
            path: entry.name,
            member: member.slot(),
            unsafe_path: entry.unsafe_path,
            kind: RowKind::Fixed { verdict, reason },
        });
    }

    /// Counts a module entry against the image's caps.
    pub(super) fn count_module(&mut self, name: &str, at: &EntryAt) -> Result<(), Stop> {
        self.modules = self.modules.saturating_add(1);
        self.name_bytes = self.name_bytes.saturating_add(name.len());
        if self.modules > self.limits.max_modules || self.name_bytes > self.limits.max_name_bytes {
            return Err(CpioError::TooManyModules {
                entry: at.clone(),
                max_modules: self.limits.max_modules,
                max_name_bytes: self.limits.max_name_bytes,
            }
            .into());
        }
        Ok(())
    }

    /// Reads a body of at most the module limit, checking the newc sum.
    pub(super) fn read_body<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        at: &EntryAt,
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
            return Err(cut_short(at, name, size, got));
        }
        if h.crc && sum != h.check {
            return Err(bad_sum(at, name));
        }
        self.skip_pad(src, size, at, name)?;
        Ok(buf)
    }

    /// Passes over a body (and its padding), checking the newc sum of a
    /// regular file's.
    pub(super) fn skip_body<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        size: u64,
        regular: Option<&Header>,
        at: &EntryAt,
        name: &str,
    ) -> Result<(), Stop> {
        let check = regular.filter(|h| h.crc);
        let mut sum = 0u32;
        let got = src.take(size, None, check.is_some().then_some(&mut sum))?;
        if got < size {
            return Err(cut_short(at, name, size, got));
        }
        if let Some(h) = check {
            if sum != h.check {
                return Err(bad_sum(at, name));
            }
        }
        self.skip_pad(src, size, at, name)
    }

    fn skip_pad<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        size: u64,
        at: &EntryAt,
        name: &str,
    ) -> Result<(), Stop> {
        let pad = pad4(size);
        if src.take(pad, None, None)? < pad {
            return Err(CpioError::PaddingCutShort {
                entry: at.named(name),
            }
            .into());
        }
        Ok(())
    }
}

/// Reads and parses a newc header.
fn read_header<B: BufRead>(src: &mut Tracked<B>, at: &EntryAt) -> Result<Header, Stop> {
    let mut raw = [0u8; HEADER_LEN];
    let got = src.read_full(&mut raw)?;
    if got < HEADER_LEN {
        return Err(CpioError::HeaderCutShort {
            entry: at.clone(),
            got,
            len: HEADER_LEN,
        }
        .into());
    }
    let h = Header::parse(&raw).map_err(|error| CpioError::BadHeader {
        entry: at.clone(),
        error,
    })?;
    if h.namesize == 0 || h.namesize > PATH_MAX {
        return Err(CpioError::NameSize {
            entry: at.clone(),
            size: h.namesize,
            max: PATH_MAX,
        }
        .into());
    }
    Ok(h)
}

/// Reads the name (with its NUL) and the padding after it.
fn read_name<B: BufRead>(src: &mut Tracked<B>, h: &Header, at: &EntryAt) -> Result<Vec<u8>, Stop> {
    let name_len = usize::try_from(h.namesize).unwrap_or(usize::MAX);
    let mut name_buf = vec![0u8; name_len];
    let name_pad = pad4((HEADER_LEN as u64).saturating_add(u64::from(h.namesize)));
    if src.read_full(&mut name_buf)? < name_len || src.take(name_pad, None, None)? < name_pad {
        return Err(CpioError::NameCutShort { entry: at.clone() }.into());
    }
    Ok(name_buf)
}

/// do_header: only symlinks (with a target within PATH_MAX), regular files
/// and entries without data get as far as their name.
fn reaches_name(h: &Header) -> bool {
    if h.file_type() == S_IFLNK {
        h.filesize <= PATH_MAX
    } else {
        h.file_type() == S_IFREG || h.filesize == 0
    }
}

/// The name up to its first NUL; the last byte must be one.
fn terminated_name<'n>(name_buf: &'n [u8], at: &EntryAt) -> Result<&'n [u8], Stop> {
    if name_buf.last() != Some(&0) {
        return Err(CpioError::NameWithoutNul {
            entry: at.clone(),
            name: name_buf
                .get(..name_buf.len().min(64))
                .unwrap_or_default()
                .to_vec(),
        }
        .into());
    }
    Ok(name_buf.split(|&b| b == 0).next().unwrap_or_default())
}

fn cut_short(at: &EntryAt, name: &str, size: u64, got: u64) -> Stop {
    let entry = if name.is_empty() {
        at.clone()
    } else {
        at.named(name)
    };
    Stop::Bad(CpioError::BodyCutShort { entry, size, got })
}

fn bad_sum(at: &EntryAt, name: &str) -> Stop {
    Stop::Bad(CpioError::BadChecksum {
        entry: at.named(name),
    })
}
