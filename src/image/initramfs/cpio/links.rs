//! Hard links as `maybe_link` makes them: entries with `nlink >= 2` and the
//! same major, minor and inode, between two `TRAILER!!!`s, are one file in
//! the kernel's rootfs, whose content is the last body one of them carried.

use std::io::BufRead;

use super::entry::Named;
use super::header::{type_name, Header, S_IFREG};
use super::reader::Tracked;
use super::walker::Walker;
use super::{Group, GroupContent, Row, RowKind, Sink, Stop};
use crate::image::compression::Compression;
use crate::image::initramfs::error::{CpioError, EntryAt, LinkProblem, MemberAt};

impl<S: Sink> Walker<'_, S> {
    /// A name that an earlier hard link took: the kernel would write
    /// through to, or unlink, the linked file. `entry` is named.
    pub(super) fn check_link_name(
        &mut self,
        h: &Header,
        digest: &[u8; 32],
        member: &MemberAt,
        entry: &EntryAt,
    ) {
        let Some(&group) = self.link_names.get(digest) else {
            return;
        };
        let same_group = h.file_type() == S_IFREG
            && h.nlink >= 2
            && self.scope.get(&(h.major, h.minor, h.ino)) == Some(&group);
        let problem = if same_group {
            LinkProblem::Repeated {
                member: member.clone(),
                entry: entry.clone(),
            }
        } else {
            LinkProblem::NameReused {
                member: member.clone(),
                entry: entry.clone(),
                kind: type_name(h.mode),
            }
        };
        self.out.problems.push(problem);
    }

    /// A regular file with `nlink >= 2` (`maybe_link`).
    pub(super) fn link_entry<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        entry: &Named,
    ) -> Result<(), Stop> {
        let group = self.group_of(h);
        if self.link_names.len() >= self.limits.max_links {
            return Err(CpioError::TooManyLinks {
                entry: at.clone(),
                limit: self.limits.max_links,
            }
            .into());
        }
        self.link_names.insert(entry.digest, group);
        if entry.is_module {
            self.count_module(&entry.name, at)?;
            let format = Compression::for_module_path(std::path::Path::new(&entry.name));
            if let Some(g) = self.out.groups.get_mut(group) {
                if !g.formats.contains(&format) {
                    g.formats.push(format);
                }
            }
            self.out.rows.push(Row {
                path: entry.name.clone(),
                member: member.slot(),
                unsafe_path: entry.unsafe_path,
                kind: RowKind::Link { group, format },
            });
        }
        if h.filesize == 0 {
            // A link without data leaves the inode's content as it is.
            return self.skip_body(src, 0, Some(h), at, &entry.name);
        }
        let formats = self.count_body(group, h, member, at, &entry.name);
        let content = self.group_content(src, h, at, &entry.name, formats)?;
        if let Some(g) = self.out.groups.get_mut(group) {
            g.content = content;
            g.data_from = Some(entry.name.clone());
        }
        Ok(())
    }

    /// The group the entry joins, opened if it is the first of its inode
    /// since the last trailer.
    fn group_of(&mut self, h: &Header) -> usize {
        let key = (h.major, h.minor, h.ino);
        if let Some(&g) = self.scope.get(&key) {
            return g;
        }
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

    /// Counts a body for the group (a second one is a problem); returns the
    /// formats its module names ask for so far.
    fn count_body(
        &mut self,
        group: usize,
        h: &Header,
        member: &MemberAt,
        at: &EntryAt,
        name: &str,
    ) -> Vec<Compression> {
        let (formats, bodies) = match self.out.groups.get_mut(group) {
            Some(g) => {
                g.bodies = g.bodies.saturating_add(1);
                (g.formats.clone(), g.bodies)
            }
            None => (Vec::new(), 1),
        };
        if bodies == 2 {
            self.out.problems.push(LinkProblem::SecondBody {
                member: member.clone(),
                entry: at.named(name),
                inode: h.ino,
            });
        }
        formats
    }

    /// Reads (or skips) a group's body: checked as every format its module
    /// names so far ask for.
    fn group_content<B: BufRead>(
        &mut self,
        src: &mut Tracked<B>,
        h: &Header,
        at: &EntryAt,
        name: &str,
        formats: Vec<Compression>,
    ) -> Result<GroupContent, Stop> {
        let size = u64::from(h.filesize);
        if formats.is_empty() {
            self.skip_body(src, size, Some(h), at, name)?;
            Ok(GroupContent::Unchecked)
        } else if size > self.limits.max_module_size as u64 {
            self.skip_body(src, size, Some(h), at, name)?;
            Ok(GroupContent::TooLarge(size))
        } else {
            let buf = self.read_body(src, h, at, name)?;
            let job = self.sink.submit(buf, formats.clone(), name);
            Ok(GroupContent::Checked { job, formats })
        }
    }
}
