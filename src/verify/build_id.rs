//! A module's GNU build-id: the raw bytes of its `.note.gnu.build-id`
//! section, as the kernel shows a loaded module's in
//! `/sys/module/<name>/notes/.note.gnu.build-id`.
//!
//! A loaded module is matched to a verified file by name; two builds of one
//! module share the name, not the build-id. Comparing the notes binds what
//! the kernel loaded to the bytes that verified.
//!
//! The parser reads ELF64 little-endian (every architecture modseal runs
//! on) and checks every offset and size against the buffer: anything it
//! cannot read is `None`, never a panic.

/// The section's name.
pub const SECTION: &str = ".note.gnu.build-id";
/// Largest note accepted, in bytes (a SHA-1 build-id's note is 36).
pub const MAX_NOTE: usize = 4096;
/// Most section headers read.
pub const MAX_SECTIONS: usize = 4096;

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SHT_NOTE: u32 = 7;
/// `e_shstrndx` saying the real index is elsewhere (extended numbering,
/// which no module uses).
const SHN_XINDEX: u16 = 0xffff;
/// `NT_GNU_BUILD_ID`.
const NT_GNU_BUILD_ID: u32 = 3;

/// One section header's fields that matter here.
struct Section {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
}

/// The `.note.gnu.build-id` section of an ELF64 little-endian object, as
/// stored: `None` if the bytes are no such object, if the section is
/// missing, named twice, not a note, empty or larger than [`MAX_NOTE`].
pub fn note(elf: &[u8]) -> Option<&[u8]> {
    if elf.len() < EHDR_SIZE || elf.get(..4)? != b"\x7fELF" {
        return None;
    }
    // EI_CLASS 2 (64-bit), EI_DATA 1 (little-endian).
    if elf.get(4..6)? != [2, 1] {
        return None;
    }
    if usize::from(u16_at(elf, 0x3a)?) != SHDR_SIZE {
        return None;
    }
    let count = usize::from(u16_at(elf, 0x3c)?);
    let strndx = u16_at(elf, 0x3e)?;
    if count == 0 || count > MAX_SECTIONS || strndx == SHN_XINDEX {
        return None;
    }
    let table_at = usize::try_from(u64_at(elf, 0x28)?).ok()?;
    let table = slice(elf, table_at, count.checked_mul(SHDR_SIZE)?)?;
    let section = |i: usize| section_at(table, i);
    let strtab = section(usize::from(strndx))?;
    let names = slice(elf, usize_of(strtab.offset)?, usize_of(strtab.size)?)?;
    let mut found = None;
    for i in 0..count {
        let s = section(i)?;
        if name_at(names, s.name)? != SECTION.as_bytes() {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(s);
    }
    let s = found?;
    let size = usize_of(s.size)?;
    if s.kind != SHT_NOTE || size == 0 || size > MAX_NOTE {
        return None;
    }
    slice(elf, usize_of(s.offset)?, size)
}

/// The build-id itself: the descriptor of the note's first entry, if that
/// is a `GNU` `NT_GNU_BUILD_ID` note that fits.
pub fn descriptor(note: &[u8]) -> Option<&[u8]> {
    let namesz = u32_at(note, 0)?;
    let descsz = usize::try_from(u32_at(note, 4)?).ok()?;
    let kind = u32_at(note, 8)?;
    if namesz != 4 || note.get(12..16)? != b"GNU\0" || kind != NT_GNU_BUILD_ID {
        return None;
    }
    slice(note, 16, descsz)
}

/// `build-id <hex>` for a log line, or what is wrong with the note.
pub fn describe(note: &[u8]) -> String {
    match descriptor(note) {
        Some(id) => format!("build-id {}", crate::util::hex::lower(id)),
        None => format!(
            "a build-id note of {} bytes that does not parse",
            note.len()
        ),
    }
}

/// Header `i` of the section header table `table`.
fn section_at(table: &[u8], i: usize) -> Option<Section> {
    let h = slice(table, i.checked_mul(SHDR_SIZE)?, SHDR_SIZE)?;
    Some(Section {
        name: u32_at(h, 0)?,
        kind: u32_at(h, 4)?,
        offset: u64_at(h, 24)?,
        size: u64_at(h, 32)?,
    })
}

/// The NUL-terminated name at `at` in the string table.
fn name_at(names: &[u8], at: u32) -> Option<&[u8]> {
    let rest = names.get(usize::try_from(at).ok()?..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    rest.get(..end)
}

fn slice(bytes: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    bytes.get(at..at.checked_add(len)?)
}

fn usize_of(v: u64) -> Option<usize> {
    usize::try_from(v).ok()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(slice(b, at, 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice(b, at, 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice(b, at, 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 20] = [
        0xe3, 0x8e, 0x03, 0x01, 0xda, 0x3f, 0xc8, 0xef, 0x7a, 0xc4, 0x28, 0x33, 0x6b, 0xd7, 0x9b,
        0x44, 0x90, 0xde, 0x8b, 0xa5,
    ];

    /// A GNU build-id note for `id`.
    fn gnu_note(id: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&4u32.to_le_bytes());
        n.extend_from_slice(&u32::try_from(id.len()).unwrap().to_le_bytes());
        n.extend_from_slice(&NT_GNU_BUILD_ID.to_le_bytes());
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(id);
        n
    }

    /// An ELF64 LE object laid out as `ld -r` lays out a module: header,
    /// sections, then the section header table; sections are
    /// `(name, type, bytes)` after the null section, the string table last.
    fn elf(sections: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut body = Vec::new();
        let mut headers = vec![[0u64; 4]]; // name, type, offset, size
        let mut add = |name: &str, kind: u32, bytes: &[u8], names: &mut Vec<u8>| {
            let at = (EHDR_SIZE + body.len()) as u64;
            headers.push([names.len() as u64, u64::from(kind), at, bytes.len() as u64]);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            body.extend_from_slice(bytes);
        };
        for (name, kind, bytes) in sections {
            add(name, *kind, bytes, &mut names);
        }
        let strtab_name = names.len() as u64;
        names.extend_from_slice(b".shstrtab\0");
        let at = (EHDR_SIZE + body.len()) as u64;
        headers.push([strtab_name, 3, at, names.len() as u64]);
        body.extend_from_slice(&names);
        let shoff = EHDR_SIZE + body.len();
        let mut out = vec![0u8; EHDR_SIZE];
        out[..6].copy_from_slice(b"\x7fELF\x02\x01");
        out[6] = 1;
        out[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&((headers.len() - 1) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        for [name, kind, offset, size] in headers {
            let mut h = [0u8; SHDR_SIZE];
            h[..4].copy_from_slice(&(name as u32).to_le_bytes());
            h[4..8].copy_from_slice(&(kind as u32).to_le_bytes());
            h[24..32].copy_from_slice(&offset.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&h);
        }
        out
    }

    #[test]
    fn finds_the_note_among_other_sections() {
        let n = gnu_note(&ID);
        let e = elf(&[
            (".note.gnu.property", SHT_NOTE, &[1; 32]),
            (SECTION, SHT_NOTE, &n),
            (".note.Linux", SHT_NOTE, &[2; 60]),
            (".text", 1, &[0x90; 16]),
        ]);
        assert_eq!(note(&e), Some(n.as_slice()));
        assert_eq!(descriptor(&n), Some(ID.as_slice()));
        assert_eq!(
            describe(&n),
            "build-id e38e0301da3fc8ef7ac428336bd79b4490de8ba5"
        );
    }

    #[test]
    fn no_note_for_a_missing_twice_named_wrong_type_empty_or_large_section() {
        let n = gnu_note(&ID);
        assert_eq!(note(&elf(&[(".text", 1, &[0; 8])])), None);
        assert_eq!(
            note(&elf(&[(SECTION, SHT_NOTE, &n), (SECTION, SHT_NOTE, &n)])),
            None
        );
        assert_eq!(note(&elf(&[(SECTION, 1, &n)])), None);
        assert_eq!(note(&elf(&[(SECTION, SHT_NOTE, &[])])), None);
        let big = vec![0u8; MAX_NOTE + 1];
        assert_eq!(note(&elf(&[(SECTION, SHT_NOTE, &big)])), None);
        let max = vec![0u8; MAX_NOTE];
        assert_eq!(
            note(&elf(&[(SECTION, SHT_NOTE, &max)])),
            Some(max.as_slice())
        );
        // A prefix of the name is another section.
        assert_eq!(note(&elf(&[(".note.gnu.build", SHT_NOTE, &n)])), None);
    }

    #[test]
    fn every_truncation_and_header_change_is_none_or_the_note() {
        let n = gnu_note(&ID);
        let e = elf(&[(SECTION, SHT_NOTE, &n), (".text", 1, &[0x90; 16])]);
        for len in 0..e.len() {
            // The table is at the end: any cut loses it.
            assert_eq!(note(&e[..len]), None, "cut at {len}");
        }
        for at in 0..e.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = e.clone();
                bad[at] = b;
                if let Some(found) = note(&bad) {
                    assert!(found.len() <= MAX_NOTE);
                }
            }
        }
        let mut wrong = e.clone();
        wrong[4] = 1; // ELFCLASS32
        assert_eq!(note(&wrong), None);
        let mut wrong = e.clone();
        wrong[5] = 2; // big-endian
        assert_eq!(note(&wrong), None);
        let mut wrong = e.clone();
        wrong[0x3e..0x40].copy_from_slice(&SHN_XINDEX.to_le_bytes());
        assert_eq!(note(&wrong), None);
        let mut wrong = e.clone();
        wrong[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(note(&wrong), None);
        let mut wrong = e;
        wrong[0x3c..0x3e].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(note(&wrong), None);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(note(b""), None);
        assert_eq!(note(b"\x7fELF"), None);
        assert_eq!(note(&[0xff; 200]), None);
        let mut header_only = vec![0u8; 64];
        header_only[..6].copy_from_slice(b"\x7fELF\x02\x01");
        assert_eq!(note(&header_only), None);
    }

    #[test]
    fn descriptors_parse_strictly() {
        let n = gnu_note(&ID);
        for len in 0..n.len() {
            assert_eq!(descriptor(&n[..len]), None);
        }
        let mut other = n.clone();
        other[8] = 1; // NT_GNU_ABI_TAG
        assert_eq!(descriptor(&other), None);
        assert_eq!(
            describe(&other),
            "a build-id note of 36 bytes that does not parse"
        );
        let mut linux = n.clone();
        linux[12..16].copy_from_slice(b"Lin\0");
        assert_eq!(descriptor(&linux), None);
        let mut huge = n;
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(descriptor(&huge), None);
    }
}
