//! The section table of a PE/COFF file, read bounded: enough to find a
//! unified kernel image's `.initrd` (and `.ucode`) sections.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::io::{self, Read, Seek, SeekFrom};

/// The Windows loader's limit, which the PE/COFF specification repeats.
const MAX_SECTIONS: u16 = 96;

/// `e_lfanew` further into the file than this is not a PE header anyone makes.
const MAX_PE_OFFSET: u32 = 1 << 20;

/// Why a PE file's section table, or a section's data, cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeError {
    /// Seeking to a header failed.
    #[error("cannot seek to the {what}: {source}")]
    Seek {
        /// The header.
        what: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// The file ends inside a header.
    #[error("the file ends inside the {what}: {source}")]
    Short {
        /// The header.
        what: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// No `MZ` at the start.
    #[error("no MZ signature")]
    NoMz,
    /// The DOS header has no PE header offset.
    #[error("no e_lfanew")]
    NoPeOffset,
    /// A PE header offset past what any linker writes.
    #[error("PE header offset {offset:#x} is implausibly large")]
    FarPeHeader {
        /// `e_lfanew`.
        offset: u32,
    },
    /// No `PE\0\0` where `e_lfanew` points.
    #[error("no PE signature at offset {offset:#x} (an MZ file that is not PE/COFF)")]
    NoPeSignature {
        /// `e_lfanew`.
        offset: u32,
    },
    /// The COFF header is cut short.
    #[error("short COFF header")]
    ShortCoffHeader,
    /// More sections than the format allows.
    #[error("{count} sections: more than the {MAX_SECTIONS} the PE format allows")]
    TooManySections {
        /// The COFF header's section count.
        count: u16,
    },
    /// A section table that does not fit in the file.
    #[error(
        "the section table ({count} sections at offset {offset:#x}) runs past the end of the file"
    )]
    TablePastEnd {
        /// Sections in the table.
        count: u16,
        /// Where the table starts.
        offset: u64,
    },
    /// A section whose data does not fit in the file.
    #[error("section {name} runs past the end of the file (bytes {start}..{end} of {file_len})")]
    SectionPastEnd {
        /// The section.
        name: String,
        /// Where its data starts.
        start: u64,
        /// Where it would end.
        end: u64,
        /// The file's size.
        file_len: u64,
    },
}

/// One section header, as far as a UKI needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The 8-byte name without trailing NULs (`/N` long names stay as they are).
    pub name: String,
    /// `VirtualSize`: the section's size in memory.
    pub virtual_size: u32,
    /// `SizeOfRawData`: its size in the file.
    pub raw_size: u32,
    /// `PointerToRawData`: where its data starts in the file.
    pub raw_offset: u32,
}

impl Section {
    /// The file range holding the section's data: `VirtualSize` bytes (what
    /// the loader maps and systemd-stub hands on), of which only those in
    /// the raw data exist in the file; the rest would be zeros in memory,
    /// which the kernel skips as padding anyway.
    pub fn data_range(&self, file_len: u64) -> Result<(u64, u64), PeError> {
        let len = if self.virtual_size == 0 {
            self.raw_size
        } else {
            self.virtual_size.min(self.raw_size)
        };
        let start = u64::from(self.raw_offset);
        let end = start.saturating_add(u64::from(len));
        if end > file_len {
            return Err(PeError::SectionPastEnd {
                name: self.name.clone(),
                start,
                end,
                file_len,
            });
        }
        Ok((start, u64::from(len)))
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Reads `len` bytes at `offset`, or says the file is too short.
fn read_at<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, PeError> {
    r.seek(SeekFrom::Start(offset))
        .map_err(|source| PeError::Seek { what, source })?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .map_err(|source| PeError::Short { what, source })?;
    Ok(buf)
}

/// The section table of the PE file `r` (of `file_len` bytes), which starts
/// with `MZ`.
pub fn sections<R: Read + Seek>(r: &mut R, file_len: u64) -> Result<Vec<Section>, PeError> {
    let dos = read_at(r, 0, 64, "DOS header")?;
    if dos.get(..2) != Some(b"MZ") {
        return Err(PeError::NoMz);
    }
    let pe_offset = le32(&dos, 0x3c).ok_or(PeError::NoPeOffset)?;
    if pe_offset > MAX_PE_OFFSET {
        return Err(PeError::FarPeHeader { offset: pe_offset });
    }
    // Signature (4) and COFF file header (20).
    let coff = read_at(r, u64::from(pe_offset), 24, "PE header")?;
    if coff.get(..4) != Some(b"PE\0\0") {
        return Err(PeError::NoPeSignature { offset: pe_offset });
    }
    let count = le16(&coff, 6).ok_or(PeError::ShortCoffHeader)?;
    let optional_size = le16(&coff, 20).ok_or(PeError::ShortCoffHeader)?;
    if count > MAX_SECTIONS {
        return Err(PeError::TooManySections { count });
    }
    let table = u64::from(pe_offset)
        .saturating_add(24)
        .saturating_add(u64::from(optional_size));
    let table_len = usize::from(count).saturating_mul(40);
    if table.saturating_add(table_len as u64) > file_len {
        return Err(PeError::TablePastEnd {
            count,
            offset: table,
        });
    }
    let raw = read_at(r, table, table_len, "section table")?;
    let mut out = Vec::with_capacity(usize::from(count));
    for header in raw.chunks_exact(40) {
        let name_bytes = header.get(..8).unwrap_or_default();
        let name_len = name_bytes.iter().position(|&b| b == 0).unwrap_or(8);
        let name =
            String::from_utf8_lossy(name_bytes.get(..name_len).unwrap_or_default()).into_owned();
        out.push(Section {
            name,
            virtual_size: le32(header, 8).unwrap_or(0),
            raw_size: le32(header, 16).unwrap_or(0),
            raw_offset: le32(header, 20).unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal PE: DOS header, PE signature, COFF header, no optional
    /// header, then the given sections' headers and data.
    pub(crate) fn make_pe(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        out[..2].copy_from_slice(b"MZ");
        out[0x3c..0x40].copy_from_slice(&64u32.to_le_bytes());
        out.extend_from_slice(b"PE\0\0");
        let mut coff = [0u8; 20];
        coff[..2].copy_from_slice(&0x8664u16.to_le_bytes());
        coff[2..4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        out.extend_from_slice(&coff);
        let mut data_at = out.len() + 40 * sections.len();
        let mut data = Vec::new();
        for (name, bytes) in sections {
            let mut h = [0u8; 40];
            h[..name.len()].copy_from_slice(name.as_bytes());
            h[8..12].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            let raw = bytes.len().div_ceil(512) * 512;
            h[16..20].copy_from_slice(&(raw as u32).to_le_bytes());
            h[20..24].copy_from_slice(&(data_at as u32).to_le_bytes());
            out.extend_from_slice(&h);
            let mut padded = bytes.to_vec();
            padded.resize(raw, 0);
            data.extend_from_slice(&padded);
            data_at += raw;
        }
        out.extend_from_slice(&data);
        out
    }

    #[test]
    fn finds_sections_and_their_data() {
        let pe = make_pe(&[(".linux", b"kernel"), (".initrd", b"0707010")]);
        let secs = sections(&mut Cursor::new(&pe), pe.len() as u64).unwrap();
        assert_eq!(secs.len(), 2);
        assert_eq!(secs[1].name, ".initrd");
        let (start, len) = secs[1].data_range(pe.len() as u64).unwrap();
        assert_eq!(&pe[start as usize..(start + len) as usize], b"0707010");
    }

    #[test]
    fn damaged_headers_are_named() {
        let pe = make_pe(&[(".initrd", b"x")]);
        let mut bad = pe.clone();
        bad[64] = b'X';
        let e = sections(&mut Cursor::new(&bad), bad.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PE signature"), "{e}");

        let mut bad = pe.clone();
        bad[64 + 6..64 + 8].copy_from_slice(&500u16.to_le_bytes());
        let e = sections(&mut Cursor::new(&bad), bad.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("500 sections"), "{e}");

        let mut bad = pe.clone();
        bad[64 + 6..64 + 8].copy_from_slice(&90u16.to_le_bytes());
        let e = sections(&mut Cursor::new(&bad), bad.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("runs past the end"), "{e}");

        let mut bad = pe.clone();
        bad[0x3c..0x40].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        let e = sections(&mut Cursor::new(&bad), bad.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("implausibly large"), "{e}");

        let e = sections(&mut Cursor::new(&pe[..40]), 40)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends inside the DOS header"), "{e}");

        // Section data beyond the end of the file.
        let secs = sections(&mut Cursor::new(&pe), pe.len() as u64).unwrap();
        let e = secs[0].data_range(100).unwrap_err().to_string();
        assert!(e.contains("runs past the end of the file"), "{e}");
    }
}
