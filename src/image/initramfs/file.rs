//! An image file: a plain initramfs, or a unified kernel image (PE) whose
//! `.ucode` and `.initrd` sections are one.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::cpio::walker::Walker;
use super::cpio::{Limits, Sink, Walked};
use super::error::InitramfsError;
use super::input::Input;
use super::pe;

/// Opens and walks one image file.
pub(super) fn walk_file(
    path: &Path,
    sink: &mut impl Sink,
    limits: &Limits,
) -> Result<Walked, InitramfsError> {
    walk_file_wanting(path, sink, limits, &Asked::default())
}

/// Files a walk reads besides the modules.
#[derive(Default)]
pub(super) struct Asked<'a> {
    /// One file's body: its path and the largest body kept.
    pub want: Option<(&'a str, usize)>,
    /// Files whose SHA-256 is recorded.
    pub digest: &'a [String],
}

/// [`walk_file`], also reading the files `asked` names.
pub(super) fn walk_file_wanting(
    path: &Path,
    sink: &mut impl Sink,
    limits: &Limits,
    asked: &Asked<'_>,
) -> Result<Walked, InitramfsError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO given as an image must not wait for a writer (it is
    // refused below); no effect on regular files.
    const O_NONBLOCK: i32 = 0o4000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(InitramfsError::Open)?;
    let meta = file.metadata().map_err(InitramfsError::Stat)?;
    if !meta.is_file() {
        return Err(InitramfsError::NotRegular);
    }
    Ok(walk_wanting(file, meta.len(), sink, limits, asked))
}

/// Walks an image (a plain initramfs or a UKI) given as a seekable reader.
pub(super) fn walk<R: Read + Seek>(
    r: R,
    len: u64,
    sink: &mut impl Sink,
    limits: &Limits,
) -> Walked {
    walk_wanting(r, len, sink, limits, &Asked::default())
}

fn walk_wanting<R: Read + Seek>(
    mut r: R,
    len: u64,
    sink: &mut impl Sink,
    limits: &Limits,
    asked: &Asked<'_>,
) -> Walked {
    let mut walker = Walker::new(sink, limits.clone()).digesting(asked.digest);
    if let Some((path, cap)) = asked.want {
        walker = walker.wanting(path, cap);
    }
    let mut magic = [0u8; 2];
    let is_pe = len >= 2 && r.read_exact(&mut magic).is_ok() && &magic == b"MZ";
    let fatal = if is_pe {
        walk_pe(&mut r, len, &mut walker).err()
    } else {
        match r.seek(SeekFrom::Start(0)) {
            Ok(_) => walker.walk(&mut Input::new(&mut r, len), None, 0).err(),
            Err(e) => Some(InitramfsError::Seek(e)),
        }
    };
    let empty = fatal.is_none() && walker.members_len() == 0;
    let mut w = walker.finish(fatal);
    if empty {
        w.fatal = Some(InitramfsError::Empty);
    }
    w
}

/// The sections a UKI's initramfs is made of, in the order systemd-stub
/// hands them on: `.ucode` (early microcode), then `.initrd`.
fn walk_pe<R: Read + Seek, S: Sink>(
    r: &mut R,
    len: u64,
    walker: &mut Walker<'_, S>,
) -> Result<(), InitramfsError> {
    let secs = pe::sections(r, len).map_err(InitramfsError::Pe)?;
    if !secs.iter().any(|s| s.name == ".initrd") {
        return Err(InitramfsError::NoInitrd {
            sections: secs.iter().map(|s| s.name.clone()).collect(),
        });
    }
    for s in secs
        .iter()
        .filter(|s| s.name == ".ucode")
        .chain(secs.iter().filter(|s| s.name == ".initrd"))
    {
        let (start, size) = s.data_range(len).map_err(InitramfsError::Section)?;
        if size == 0 {
            return Err(InitramfsError::EmptySection {
                name: s.name.clone(),
            });
        }
        r.seek(SeekFrom::Start(start))
            .map_err(|source| InitramfsError::SeekSection {
                name: s.name.clone(),
                source,
            })?;
        walker.walk(&mut Input::new(&mut *r, size), Some(&s.name), start)?;
    }
    Ok(())
}
