//! PE/COFF images (an EFI-stub `vmlinuz`, a unified kernel image, shim):
//! the headers, read bounded, and the Authenticode image digest.
//!
//! The digest is the one the Authenticode specification ("Windows
//! Authenticode Portable Executable Signature Format", "Calculating the PE
//! Image Hash") defines, which is also what UEFI firmware measures into
//! PCR 4 for an application it loads (EDK2's `DxeTpm2MeasureBootLib`) and
//! what a signature's `SpcIndirectDataContent` carries:
//!
//! 1. the headers up to `SizeOfHeaders`, less the optional header's
//!    `CheckSum` and the Certificate Table data-directory entry;
//! 2. each section's raw data (`SizeOfRawData` bytes at
//!    `PointerToRawData`, sections without raw data skipped), in order of
//!    `PointerToRawData`;
//! 3. the bytes after those, less the attribute certificate table: from
//!    offset `SizeOfHeaders + Σ SizeOfRawData` to the file's end minus the
//!    table's size.
//!
//! Step 3 assumes what every signing tool writes: the certificate table
//! last in the file, after all section data. An image that breaks it, or
//! whose sections overlap, or whose headers do not cover the section table
//! (section headers a signature would not cover), is refused rather than
//! given a digest some verifier would compute otherwise. Work is bounded:
//! at most [`MAX_SECTIONS`] sections, non-overlapping, so every byte of the
//! file is hashed at most twice.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::ops::Range;

use sha2::Digest;

/// The Windows loader's section limit, which the PE/COFF specification repeats.
pub const MAX_SECTIONS: u16 = 96;

/// `e_lfanew` further into the file than this is not a PE header anyone makes.
const MAX_PE_OFFSET: u32 = 1 << 20;

/// The data directories the PE format defines.
const MAX_DATA_DIRECTORIES: u32 = 16;

/// The Certificate Table's index among the data directories.
const CERTIFICATE_TABLE: usize = 4;

/// The Certificate Table entry's offset among the directories (8 bytes each).
const CERTIFICATE_ENTRY_OFFSET: u64 = 32;

/// Length of the `PE\0\0` signature and the COFF file header.
const PE_HEADER_LEN: usize = 24;

/// Length of one section header.
const SECTION_HEADER_LEN: usize = 40;

/// Why a file is not a PE image this module can read or digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeError {
    /// The file ends inside a header.
    #[error("the file ends inside the {what} ({len} bytes, the {what} needs {need})")]
    Truncated {
        /// The header.
        what: &'static str,
        /// Where the header would end.
        need: u64,
        /// The file's size.
        len: u64,
    },
    /// No `MZ` at the start.
    #[error("not a PE image: no MZ signature")]
    NoMz,
    /// A PE header offset past what any linker writes.
    #[error("PE header offset {offset:#x} is implausibly large")]
    FarPeHeader {
        /// `e_lfanew`.
        offset: u32,
    },
    /// No `PE\0\0` where `e_lfanew` points.
    #[error(
        "not a PE image: no PE signature at offset {offset:#x} (an MZ file that is not PE/COFF)"
    )]
    NoPeSignature {
        /// `e_lfanew`.
        offset: u32,
    },
    /// An optional header that is neither PE32 nor PE32+.
    #[error("optional header magic {magic:#06x} is neither PE32 (0x10b) nor PE32+ (0x20b)")]
    BadMagic {
        /// The magic found.
        magic: u16,
    },
    /// `SizeOfOptionalHeader` too small for the fields it must hold.
    #[error("SizeOfOptionalHeader {size} is too small: the {kind} header with {directories} data directories needs {need}")]
    ShortOptionalHeader {
        /// `SizeOfOptionalHeader`.
        size: u16,
        /// PE32 or PE32+.
        kind: PeKind,
        /// `NumberOfRvaAndSizes`.
        directories: u32,
        /// The bytes those fields take.
        need: usize,
    },
    /// More data directories than the format defines.
    #[error(
        "NumberOfRvaAndSizes {count}: more than the {MAX_DATA_DIRECTORIES} the PE format defines"
    )]
    TooManyDirectories {
        /// `NumberOfRvaAndSizes`.
        count: u32,
    },
    /// More sections than the format allows.
    #[error("{count} sections: more than the {MAX_SECTIONS} the PE format allows")]
    TooManySections {
        /// The COFF header's section count.
        count: u16,
    },
    /// Headers that do not reach the end of the section table.
    #[error(
        "SizeOfHeaders {size:#x} does not cover the section table, which ends at {table_end:#x}"
    )]
    HeadersShort {
        /// `SizeOfHeaders`.
        size: u32,
        /// Where the section table ends.
        table_end: u64,
    },
    /// `SizeOfHeaders` past the end of the file.
    #[error("SizeOfHeaders {size:#x} is past the end of the file ({len} bytes)")]
    HeadersPastEnd {
        /// `SizeOfHeaders`.
        size: u32,
        /// The file's size.
        len: u64,
    },
    /// A section whose raw data does not fit in the file.
    #[error("section {name} runs past the end of the file (bytes {start}..{end} of {len})")]
    SectionPastEnd {
        /// The section.
        name: String,
        /// `PointerToRawData`.
        start: u64,
        /// Where its raw data would end.
        end: u64,
        /// The file's size.
        len: u64,
    },
    /// Two sections whose raw data overlap.
    #[error("sections {first} and {second} overlap in the file (at byte {at})")]
    SectionsOverlap {
        /// The section that starts first.
        first: String,
        /// The one that starts inside it.
        second: String,
        /// Where the second starts.
        at: u64,
    },
    /// An attribute certificate table that is not where signing tools put it.
    #[error(
        "the attribute certificate table (bytes {start}..{end}, file of {len} bytes) {problem}"
    )]
    CertificateTable {
        /// Its start (the data-directory entry's "RVA", a file offset).
        start: u64,
        /// Its end.
        end: u64,
        /// The file's size.
        len: u64,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// The optional header's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeKind {
    /// PE32 (magic 0x10b): 32-bit fields.
    Pe32,
    /// PE32+ (magic 0x20b): 64-bit image base and stack/heap sizes.
    Pe32Plus,
}

impl std::fmt::Display for PeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PeKind::Pe32 => "PE32",
            PeKind::Pe32Plus => "PE32+",
        })
    }
}

impl PeKind {
    /// Offset of `NumberOfRvaAndSizes` in the optional header.
    fn directory_count_at(self) -> usize {
        match self {
            PeKind::Pe32 => 92,
            PeKind::Pe32Plus => 108,
        }
    }

    /// Offset of the data directories in the optional header, right after
    /// their count.
    fn directories_at(self) -> usize {
        match self {
            PeKind::Pe32 => 96,
            PeKind::Pe32Plus => 112,
        }
    }
}

/// One data directory: an RVA and a size (for the Certificate Table, the
/// "RVA" is a file offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataDirectory {
    /// `VirtualAddress`.
    pub rva: u32,
    /// `Size`.
    pub size: u32,
}

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The 8-byte name without trailing NULs (`/N` long names stay as they are).
    pub name: String,
    /// `VirtualSize`: the section's size in memory.
    pub virtual_size: u32,
    /// `VirtualAddress`: its RVA.
    pub virtual_address: u32,
    /// `SizeOfRawData`: its size in the file.
    pub raw_size: u32,
    /// `PointerToRawData`: where its data starts in the file.
    pub raw_offset: u32,
    /// `Characteristics`.
    pub characteristics: u32,
}

impl Section {
    /// The file range of its raw data.
    pub fn raw_range(&self) -> Range<u64> {
        let start = u64::from(self.raw_offset);
        start..start.saturating_add(u64::from(self.raw_size))
    }
}

/// A PE image's headers over the file's bytes: what the digest and a
/// signature check need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeImage<'a> {
    /// The whole file.
    data: &'a [u8],
    /// `e_lfanew`: where `PE\0\0` is.
    pub pe_offset: u32,
    /// The COFF header's `Machine`.
    pub machine: u16,
    /// PE32 or PE32+.
    pub kind: PeKind,
    /// `SizeOfHeaders`.
    pub size_of_headers: u32,
    /// The file offset of the optional header's `CheckSum`.
    pub checksum_at: u64,
    /// `CheckSum`.
    pub checksum: u32,
    /// The data directories (`NumberOfRvaAndSizes` of them).
    pub data_directories: Vec<DataDirectory>,
    /// The file offset of the Certificate Table's data-directory entry, if
    /// the image has that many directories.
    pub certificate_entry_at: Option<u64>,
    /// The attribute certificate table's file range (`WIN_CERTIFICATE`
    /// entries: the signatures); `None` for an unsigned image.
    pub certificate_table: Option<Range<u64>>,
    /// The section table, in file order.
    pub sections: Vec<Section>,
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

/// `len` bytes at `at`, or which header the file ends inside.
fn bytes_at<'a>(
    data: &'a [u8],
    at: u64,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], PeError> {
    let end = at.saturating_add(len as u64);
    let truncated = || PeError::Truncated {
        what,
        need: end,
        len: data.len() as u64,
    };
    let start = usize::try_from(at).map_err(|_| truncated())?;
    let end = usize::try_from(end).map_err(|_| truncated())?;
    data.get(start..end).ok_or_else(truncated)
}

/// Reads the headers of the PE image `data` (the whole file).
pub fn parse(data: &[u8]) -> Result<PeImage<'_>, PeError> {
    let file_len = data.len() as u64;
    let dos = bytes_at(data, 0, 64, "DOS header")?;
    if dos.get(..2) != Some(b"MZ") {
        return Err(PeError::NoMz);
    }
    let pe_offset = le32(dos, 0x3c).unwrap_or(0);
    if pe_offset > MAX_PE_OFFSET {
        return Err(PeError::FarPeHeader { offset: pe_offset });
    }
    let pe_at = u64::from(pe_offset);
    let coff = bytes_at(data, pe_at, PE_HEADER_LEN, "COFF header")?;
    if coff.get(..4) != Some(b"PE\0\0") {
        return Err(PeError::NoPeSignature { offset: pe_offset });
    }
    let machine = le16(coff, 4).unwrap_or(0);
    let count = le16(coff, 6).unwrap_or(0);
    let optional_size = le16(coff, 20).unwrap_or(0);
    if count > MAX_SECTIONS {
        return Err(PeError::TooManySections { count });
    }
    let opt_at = pe_at.saturating_add(PE_HEADER_LEN as u64);
    let opt = bytes_at(data, opt_at, usize::from(optional_size), "optional header")?;
    let (kind, directories) = optional_header(opt, optional_size)?;
    let table_at = opt_at.saturating_add(u64::from(optional_size));
    let table_len = usize::from(count).saturating_mul(SECTION_HEADER_LEN);
    let table = bytes_at(data, table_at, table_len, "section table")?;
    let table_end = table_at.saturating_add(table_len as u64);
    let size_of_headers = le32(opt, 60).unwrap_or(0);
    if u64::from(size_of_headers) < table_end {
        return Err(PeError::HeadersShort {
            size: size_of_headers,
            table_end,
        });
    }
    if u64::from(size_of_headers) > file_len {
        return Err(PeError::HeadersPastEnd {
            size: size_of_headers,
            len: file_len,
        });
    }
    let dirs_at = opt_at.saturating_add(kind.directories_at() as u64);
    let certificate_entry_at = (directories.len() > CERTIFICATE_TABLE)
        .then(|| dirs_at.saturating_add(CERTIFICATE_ENTRY_OFFSET));
    let sections = section_table(table, file_len)?;
    let hashed_end = hashed_end(size_of_headers, &sections);
    let certificate_table =
        certificate_table(directories.get(CERTIFICATE_TABLE), hashed_end, file_len)?;
    Ok(PeImage {
        data,
        pe_offset,
        machine,
        kind,
        size_of_headers,
        checksum_at: opt_at.saturating_add(64),
        checksum: le32(opt, 64).unwrap_or(0),
        data_directories: directories,
        certificate_entry_at,
        certificate_table,
        sections,
    })
}

/// The optional header's format and data directories.
fn optional_header(opt: &[u8], size: u16) -> Result<(PeKind, Vec<DataDirectory>), PeError> {
    let kind = match le16(opt, 0) {
        Some(0x10b) => PeKind::Pe32,
        Some(0x20b) => PeKind::Pe32Plus,
        Some(magic) => return Err(PeError::BadMagic { magic }),
        None => {
            return Err(PeError::ShortOptionalHeader {
                size,
                kind: PeKind::Pe32,
                directories: 0,
                need: 2,
            })
        }
    };
    let count_at = kind.directory_count_at();
    let short = |directories: u32, need: usize| PeError::ShortOptionalHeader {
        size,
        kind,
        directories,
        need,
    };
    let dirs_at = kind.directories_at();
    let count = le32(opt, count_at).ok_or_else(|| short(0, dirs_at))?;
    if count > MAX_DATA_DIRECTORIES {
        return Err(PeError::TooManyDirectories { count });
    }
    let need = dirs_at.saturating_add((count as usize).saturating_mul(8));
    let raw = opt.get(dirs_at..need).ok_or_else(|| short(count, need))?;
    let dirs = raw
        .chunks_exact(8)
        .map(|d| DataDirectory {
            rva: le32(d, 0).unwrap_or(0),
            size: le32(d, 4).unwrap_or(0),
        })
        .collect();
    Ok((kind, dirs))
}

/// The section headers, each section's raw data inside the file and none
/// overlapping another.
fn section_table(table: &[u8], file_len: u64) -> Result<Vec<Section>, PeError> {
    let mut sections = Vec::with_capacity(table.len() / SECTION_HEADER_LEN);
    for h in table.chunks_exact(SECTION_HEADER_LEN) {
        let name_bytes = h.get(..8).unwrap_or_default();
        let name_len = name_bytes.iter().position(|&b| b == 0).unwrap_or(8);
        let s = Section {
            name: String::from_utf8_lossy(name_bytes.get(..name_len).unwrap_or_default())
                .into_owned(),
            virtual_size: le32(h, 8).unwrap_or(0),
            virtual_address: le32(h, 12).unwrap_or(0),
            raw_size: le32(h, 16).unwrap_or(0),
            raw_offset: le32(h, 20).unwrap_or(0),
            characteristics: le32(h, 36).unwrap_or(0),
        };
        let r = s.raw_range();
        if s.raw_size != 0 && r.end > file_len {
            return Err(PeError::SectionPastEnd {
                name: s.name,
                start: r.start,
                end: r.end,
                len: file_len,
            });
        }
        sections.push(s);
    }
    let mut by_offset: Vec<&Section> = sections.iter().filter(|s| s.raw_size != 0).collect();
    by_offset.sort_by_key(|s| s.raw_offset);
    for pair in by_offset.windows(2) {
        if let [a, b] = pair {
            if b.raw_range().start < a.raw_range().end {
                return Err(PeError::SectionsOverlap {
                    first: a.name.clone(),
                    second: b.name.clone(),
                    at: b.raw_range().start,
                });
            }
        }
    }
    Ok(sections)
}

/// The specification's SUM_OF_BYTES_HASHED: where the trailing data starts.
fn hashed_end(size_of_headers: u32, sections: &[Section]) -> u64 {
    sections.iter().fold(u64::from(size_of_headers), |sum, s| {
        sum.saturating_add(u64::from(s.raw_size))
    })
}

/// The attribute certificate table's range, if the image has one: after
/// everything hashed, and last in the file.
fn certificate_table(
    entry: Option<&DataDirectory>,
    hashed_end: u64,
    file_len: u64,
) -> Result<Option<Range<u64>>, PeError> {
    let Some(d) = entry.filter(|d| d.size != 0) else {
        return Ok(None);
    };
    let start = u64::from(d.rva);
    let end = start.saturating_add(u64::from(d.size));
    let problem = if end > file_len {
        Some("runs past the end of the file")
    } else if end != file_len {
        Some("is not at the end of the file")
    } else if start < hashed_end {
        Some("overlaps the headers or the sections")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(PeError::CertificateTable {
            start,
            end,
            len: file_len,
            problem,
        }),
        None => Ok(Some(start..end)),
    }
}

impl<'a> PeImage<'a> {
    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The file's size.
    pub fn file_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// The attribute certificate table's bytes (`WIN_CERTIFICATE` entries),
    /// if the image is signed.
    pub fn certificate_table_bytes(&self) -> Option<&'a [u8]> {
        let r = self.certificate_table.as_ref()?;
        self.data
            .get(usize::try_from(r.start).ok()?..usize::try_from(r.end).ok()?)
    }

    /// The file ranges the Authenticode digest covers, in hashing order
    /// (see the module documentation). Every range lies inside the file.
    pub fn authenticode_ranges(&self) -> Vec<Range<u64>> {
        let mut out = Vec::with_capacity(self.sections.len().saturating_add(4));
        let headers_end = u64::from(self.size_of_headers);
        let after_checksum = self.checksum_at.saturating_add(4);
        out.push(0..self.checksum_at);
        match self.certificate_entry_at {
            Some(entry) => {
                out.push(after_checksum..entry);
                out.push(entry.saturating_add(8)..headers_end);
            }
            None => out.push(after_checksum..headers_end),
        }
        let mut sections: Vec<&Section> =
            self.sections.iter().filter(|s| s.raw_size != 0).collect();
        // Stable: sections at one offset keep their table order, as EDK2's
        // insertion sort keeps them.
        sections.sort_by_key(|s| s.raw_offset);
        out.extend(sections.iter().map(|s| s.raw_range()));
        let hashed = hashed_end(self.size_of_headers, &self.sections);
        let cert_len = self
            .certificate_table
            .as_ref()
            .map_or(0, |r| r.end.saturating_sub(r.start));
        let trailing_end = self.file_len().saturating_sub(cert_len);
        if trailing_end > hashed {
            out.push(hashed..trailing_end);
        }
        out
    }

    /// The image's Authenticode SHA-256.
    pub fn authenticode_sha256(&self) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        for r in self.authenticode_ranges() {
            let bytes = usize::try_from(r.start)
                .ok()
                .zip(usize::try_from(r.end).ok())
                .and_then(|(s, e)| self.data.get(s..e));
            // `parse` checked every range against the file's length.
            if let Some(b) = bytes {
                h.update(b);
            }
        }
        h.finalize().into()
    }
}

/// The Authenticode SHA-256 of the PE image `data` (the whole file): what
/// UEFI firmware measures into PCR 4 when it loads the image.
pub fn authenticode_sha256(data: &[u8]) -> Result<[u8; 32], PeError> {
    Ok(parse(data)?.authenticode_sha256())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PE image: DOS header, PE signature, COFF header, an optional
    /// header of `kind` with `dirs` data directories, the sections' headers
    /// and data (each padded to 512 bytes), then `trailer` and, if
    /// `cert` is not empty, the certificate table.
    fn make_pe(
        kind: PeKind,
        dirs: u32,
        sections: &[(&str, &[u8])],
        trailer: &[u8],
        cert: &[u8],
    ) -> Vec<u8> {
        let mut out = vec![0u8; 0x80];
        out[..2].copy_from_slice(b"MZ");
        out[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        out.extend_from_slice(b"PE\0\0");
        let count_at = kind.directory_count_at();
        let opt_size = count_at + 4 + 8 * dirs as usize;
        let mut coff = [0u8; 20];
        coff[..2].copy_from_slice(&0x8664u16.to_le_bytes());
        coff[2..4].copy_from_slice(&(sections.len() as u16).to_le_bytes());
        coff[16..18].copy_from_slice(&(opt_size as u16).to_le_bytes());
        out.extend_from_slice(&coff);
        let opt_at = out.len();
        let mut opt = vec![0u8; opt_size];
        let magic: u16 = if kind == PeKind::Pe32 { 0x10b } else { 0x20b };
        opt[..2].copy_from_slice(&magic.to_le_bytes());
        opt[64..68].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        opt[count_at..count_at + 4].copy_from_slice(&dirs.to_le_bytes());
        // Directories other than the Certificate Table are hashed: fill them.
        for (i, b) in opt[count_at + 4..].iter_mut().enumerate() {
            if !(32..40).contains(&i) {
                *b = i as u8 | 0x80;
            }
        }
        out.extend_from_slice(&opt);
        let headers = (out.len() + 40 * sections.len()).div_ceil(512) * 512;
        let mut data_at = headers;
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
        out.resize(headers, 0);
        out[opt_at + 60..opt_at + 64].copy_from_slice(&(headers as u32).to_le_bytes());
        out.extend_from_slice(&data);
        out.extend_from_slice(trailer);
        if !cert.is_empty() && dirs > 4 {
            let e = opt_at + count_at + 4 + 32;
            let at = out.len() as u32;
            out[e..e + 4].copy_from_slice(&at.to_le_bytes());
            out[e + 4..e + 8].copy_from_slice(&(cert.len() as u32).to_le_bytes());
            out.extend_from_slice(cert);
        }
        out
    }

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    #[test]
    fn digest_skips_checksum_certificate_entry_and_table() {
        for kind in [PeKind::Pe32, PeKind::Pe32Plus] {
            let pe = make_pe(
                kind,
                16,
                &[(".text", b"code"), (".data", b"data")],
                b"trailing",
                b"SIGNATURE",
            );
            let img = parse(&pe).unwrap();
            assert_eq!(img.kind, kind);
            assert_eq!(img.checksum, 0xdead_beef);
            assert_eq!(img.sections.len(), 2);
            let ck = img.checksum_at as usize;
            let ce = img.certificate_entry_at.unwrap() as usize;
            let h = img.size_of_headers as usize;
            let cert = img.certificate_table.clone().unwrap();
            assert_eq!(img.certificate_table_bytes(), Some(&b"SIGNATURE"[..]));
            let want = sha256(&[
                &pe[..ck],
                &pe[ck + 4..ce],
                &pe[ce + 8..h],
                &pe[h..cert.start as usize],
            ]);
            assert_eq!(img.authenticode_sha256(), want, "{kind}");
            // The skipped fields and the table do not change the digest;
            // any other byte does.
            let mut other = pe.clone();
            other[ck] ^= 1;
            *other.last_mut().unwrap() ^= 1;
            assert_eq!(authenticode_sha256(&other).unwrap(), want);
            other[h + 1] ^= 1;
            assert_ne!(authenticode_sha256(&other).unwrap(), want);
            let mut other = pe.clone();
            let trailing = cert.start as usize - 1;
            other[trailing] ^= 1;
            assert_ne!(authenticode_sha256(&other).unwrap(), want);
        }
    }

    #[test]
    fn sections_are_hashed_in_file_order_and_empty_ones_skipped() {
        let pe = make_pe(
            PeKind::Pe32Plus,
            6,
            &[(".a", b"one"), (".empty", b""), (".b", b"two")],
            b"",
            b"",
        );
        // Swap the first and last section headers: same digest.
        let img = parse(&pe).unwrap();
        let table =
            img.checksum_at as usize - 64 + (PeKind::Pe32Plus.directory_count_at() + 4 + 48);
        let mut swapped = pe.clone();
        let (a, b) = (table, table + 80);
        let first: Vec<u8> = pe[a..a + 40].to_vec();
        swapped.copy_within(b..b + 40, a);
        swapped[b..b + 40].copy_from_slice(&first);
        let img2 = parse(&swapped).unwrap();
        assert_eq!(img2.sections[0].name, ".b");
        let ranges = img2.authenticode_ranges();
        assert_eq!(ranges.len(), 3 + 2);
        assert!(ranges[3].start < ranges[4].start);
        assert!(img.certificate_table.is_none());
        // Headers differ (the table order), so the digests do too; the
        // section part is the same.
        assert_eq!(
            ranges[3..],
            img.authenticode_ranges()[3..],
            "sections in PointerToRawData order"
        );
    }

    #[test]
    fn few_data_directories_have_no_certificate_entry() {
        let pe = make_pe(PeKind::Pe32, 2, &[(".text", b"x")], b"tail", b"");
        let img = parse(&pe).unwrap();
        assert_eq!(img.certificate_entry_at, None);
        let ck = img.checksum_at as usize;
        assert_eq!(
            img.authenticode_sha256(),
            sha256(&[&pe[..ck], &pe[ck + 4..]])
        );
    }

    #[test]
    fn damaged_images_are_named() {
        let pe = make_pe(
            PeKind::Pe32Plus,
            16,
            &[(".text", b"code"), (".data", b"data")],
            b"",
            b"SIG",
        );
        let img = parse(&pe).unwrap();
        let opt = img.pe_offset as usize + 24;
        let err = |d: &[u8]| parse(d).unwrap_err().to_string();
        assert_eq!(
            err(b"ELF"),
            "the file ends inside the DOS header (3 bytes, the DOS header needs 64)"
        );
        let mut bad = pe.clone();
        bad[0] = b'X';
        assert_eq!(err(&bad), "not a PE image: no MZ signature");
        let mut bad = pe.clone();
        bad[0x80] = b'X';
        assert!(err(&bad).contains("no PE signature at offset 0x80"));
        let mut bad = pe.clone();
        bad[0x3c..0x40].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        assert!(err(&bad).contains("implausibly large"));
        let mut bad = pe.clone();
        bad[opt..opt + 2].copy_from_slice(&0x107u16.to_le_bytes());
        assert!(err(&bad).contains("magic 0x0107"));
        let mut bad = pe.clone();
        bad[opt + 108..opt + 112].copy_from_slice(&17u32.to_le_bytes());
        assert!(err(&bad).contains("NumberOfRvaAndSizes 17"));
        let mut bad = pe.clone();
        bad[0x80 + 6..0x80 + 8].copy_from_slice(&97u16.to_le_bytes());
        assert!(err(&bad).contains("97 sections"));
        let mut bad = pe.clone();
        bad[0x80 + 20..0x80 + 22].copy_from_slice(&100u16.to_le_bytes());
        assert!(
            err(&bad).contains("SizeOfOptionalHeader 100 is too small"),
            "{}",
            err(&bad)
        );
        let mut bad = pe.clone();
        bad[opt + 60..opt + 64].copy_from_slice(&0x100u32.to_le_bytes());
        assert!(err(&bad).contains("does not cover the section table"));
        let mut bad = pe.clone();
        bad[opt + 60..opt + 64].copy_from_slice(&0x10_0000u32.to_le_bytes());
        assert!(err(&bad).contains("past the end of the file"));
        // The second section starts inside the first.
        let table = opt + 112 + 128;
        let mut bad = pe.clone();
        let first = u32::from_le_bytes(bad[table + 20..table + 24].try_into().unwrap());
        bad[table + 60..table + 64].copy_from_slice(&(first + 4).to_le_bytes());
        assert_eq!(
            err(&bad),
            format!(
                "sections .text and .data overlap in the file (at byte {})",
                first + 4
            )
        );
        let mut bad = pe.clone();
        bad[table + 16..table + 20].copy_from_slice(&0x10_0000u32.to_le_bytes());
        assert!(err(&bad).starts_with("section .text runs past the end of the file"));
        // A certificate table with bytes after it, past the end, inside a section.
        let mut bad = pe.clone();
        bad.push(0);
        assert!(err(&bad).contains("is not at the end of the file"));
        let cert_entry = opt + 112 + 32;
        let mut bad = pe.clone();
        bad[cert_entry + 4..cert_entry + 8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(err(&bad).contains("runs past the end of the file"));
        let mut bad = pe.clone();
        let len = bad.len() as u32;
        bad[cert_entry..cert_entry + 4].copy_from_slice(&(len - 600).to_le_bytes());
        bad[cert_entry + 4..cert_entry + 8].copy_from_slice(&600u32.to_le_bytes());
        assert!(err(&bad).contains("overlaps the headers or the sections"));
        // Every prefix fails with a named error, none panics.
        for n in 0..pe.len() {
            assert!(parse(&pe[..n]).is_err(), "prefix of {n} bytes");
        }
    }
}
