//! `modseal check-initramfs`: every kernel module inside an initramfs image,
//! read the way the kernel unpacks it (`init/initramfs.c`), checked with the
//! same verdicts as `verify`.
//!
//! An image is one or more members: uncompressed cpio `newc` archives (the
//! early-microcode one first) and compressed streams (gzip, xz, zstd, lzma,
//! legacy lz4), with zero padding between them; or a unified kernel image
//! (PE) whose `.initrd` section is such an image. It is read forwards once,
//! decompressing as it goes: only module bodies are kept, one per verifier
//! thread plus the one being read, and everything else streams past.
//! Nothing is written anywhere.
//!
//! The files: `file` (an image file, plain or UKI), `pe` (the UKI's
//! sections), `input` and `stream` (the bytes and the decoders), `cpio`
//! (members, entries, hard links), `pool` (the verifier threads), `report`
//! (rows to reports), `member` and `outcome` (what is handed back), `error`
//! (what goes wrong, and where). Which compressed members the kernel
//! unpacks is `image::compression`'s initramfs rule.

mod cpio;
mod derived;
mod error;
mod file;
mod input;
mod member;
mod outcome;
mod pe;
mod pool;
mod report;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cpio::header::PATH_MAX;
pub use cpio::{Digested, Limits, Wanted};
pub use derived::{derive_kernels, image_anchor, ImageAnchorError, KernelAnchor, DERIVED_PATH};
pub use error::{
    CpioError, EntryAt, HeaderError, InitramfsError, LinkProblem, MemberAt, MemberError, SectionAt,
    StreamError,
};
pub use member::{Member, MemberKind};
pub use outcome::{ImageSummary, Outcome, Progress};
pub use pe::{sections, PeError, Section};

use crate::image::compression::Compression;
use crate::trust::TrustStore;
use crate::verify::Options;
use cpio::{RowKind, Sink};

/// Checks every image; `jobs` verifier threads take module bodies from the
/// reading thread (this one), which blocks while all of them are busy.
pub fn check_images(
    images: &[PathBuf],
    trust: &TrustStore,
    opts: &Options,
    jobs: usize,
    limits: &Limits,
    progress: &(dyn Fn(Progress) + Sync),
) -> Outcome {
    let (walked, results) = pool::run(images, trust, opts, jobs.max(1), limits, progress);
    let several = images.len() > 1;
    let mut outcome = Outcome {
        reports: Vec::new(),
        images: Vec::new(),
    };
    for (image, w) in images.iter().zip(walked) {
        let shown = image.display().to_string();
        let prefix = if several {
            format!("{shown}:")
        } else {
            String::new()
        };
        let (reports, summary) = report::resolve(&shown, &prefix, w, &results);
        outcome.reports.extend(reports);
        outcome.images.push(summary);
    }
    outcome
}

/// [`check_images`] with a trust store per image (each image's own
/// derived anchor), reported as one run.
pub fn check_images_each(
    images: &[(PathBuf, &TrustStore)],
    opts: &Options,
    jobs: usize,
    limits: &Limits,
    progress: &(dyn Fn(Progress) + Sync),
) -> Outcome {
    let mut outcome = Outcome {
        reports: Vec::new(),
        images: Vec::new(),
    };
    for (i, (image, trust)) in images.iter().enumerate() {
        let one = std::slice::from_ref(image);
        let renumber = |p: Progress| {
            progress(Progress {
                image: i,
                images: images.len(),
                ..p
            })
        };
        let (walked, results) = pool::run(one, trust, opts, jobs.max(1), limits, &renumber);
        let shown = image.display().to_string();
        let prefix = if images.len() > 1 {
            format!("{shown}:")
        } else {
            String::new()
        };
        for w in walked {
            let (reports, summary) = report::resolve(&shown, &prefix, w, &results);
            outcome.reports.extend(reports);
            outcome.images.push(summary);
        }
    }
    outcome
}

/// A sink that keeps nothing: for reading one file out of an image.
struct NoSink;

impl Sink for NoSink {
    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn submit(&mut self, _bytes: Vec<u8>, _formats: Vec<Compression>, _path: &str) -> usize {
        0
    }
    fn progress(&mut self, _file_pos: u64) {}
}

/// The entry at `path` (as `check-initramfs` names entries: no leading
/// `./`) of an image, the last of that name as in the kernel's rootfs;
/// a regular file's body up to `cap` bytes. Nothing is verified.
pub fn read_image_file(
    image: &std::path::Path,
    path: &str,
    cap: usize,
    limits: &Limits,
) -> Result<Option<Wanted>, InitramfsError> {
    let mut sink = NoSink;
    let asked = file::Asked {
        want: Some((path, cap)),
        ..file::Asked::default()
    };
    let w = file::walk_file_wanting(image, &mut sink, limits, &asked)?;
    match w.fatal {
        Some(e) => Err(e),
        None => Ok(w.wanted),
    }
}

/// The SHA-256 of the entries at `paths` (named as `check-initramfs` names
/// entries: no leading `./`) of an image, the last of each name as in the
/// kernel's rootfs; a path with no entry is not in the map. Bodies stream
/// through the digest: memory is a digest per path, whatever the sizes.
/// Nothing is verified.
pub fn digest_image_files(
    image: &std::path::Path,
    paths: &[String],
    limits: &Limits,
) -> Result<BTreeMap<String, Digested>, InitramfsError> {
    let mut sink = NoSink;
    let asked = file::Asked {
        want: None,
        digest: paths,
    };
    let w = file::walk_file_wanting(image, &mut sink, limits, &asked)?;
    match w.fatal {
        Some(e) => Err(e),
        None => Ok(w.digests),
    }
}

/// A listing of an image without checking anything: what `check-initramfs`
/// would verify. For tests and fuzzing; reads `data` as an image file.
#[derive(Debug)]
pub struct Scan {
    /// Module entries: path, and the body length read for it (`None` for a
    /// hard link, a symlink or an over-large file).
    pub modules: Vec<(String, Option<usize>)>,
    /// The failure that stopped the walk.
    pub fatal: Option<InitramfsError>,
    /// Failures that did not stop it.
    pub problems: Vec<LinkProblem>,
    /// The image's members, in order.
    pub members: Vec<Member>,
    /// cpio entries read.
    pub entries: u64,
    /// Bytes its compressed members decompressed to.
    pub unpacked: u64,
}

struct ListSink {
    lens: Vec<usize>,
}

impl Sink for ListSink {
    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn submit(&mut self, bytes: Vec<u8>, _formats: Vec<Compression>, _path: &str) -> usize {
        self.lens.push(bytes.len());
        self.lens.len().saturating_sub(1)
    }
    fn progress(&mut self, _file_pos: u64) {}
}

/// Lists the module entries of an image held in memory.
pub fn scan_bytes(data: &[u8], limits: &Limits) -> Scan {
    let mut sink = ListSink { lens: Vec::new() };
    let w = file::walk(
        std::io::Cursor::new(data),
        data.len() as u64,
        &mut sink,
        limits,
    );
    let modules = w
        .rows
        .iter()
        .map(|r| {
            let len = match r.kind {
                RowKind::Job { job } => sink.lens.get(job).copied(),
                _ => None,
            };
            (r.path.clone(), len)
        })
        .collect();
    Scan {
        modules,
        fatal: w.fatal,
        problems: w.problems,
        members: w.members,
        entries: w.entries,
        unpacked: w.unpacked,
    }
}

#[cfg(test)]
mod tests {
    //! The unpacker's rules on hand-made archives (no verification: the
    //! listing only). Compressed members are made by the real tools.
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn entry(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, name: &[u8], data: &[u8]) {
        let hdr = format!(
            "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            0,
            0,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(hdr.as_bytes());
        out.extend_from_slice(name);
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut a = Vec::new();
        for (i, (name, data)) in entries.iter().enumerate() {
            entry(&mut a, i as u32 + 1, 0o100644, 1, name.as_bytes(), data);
        }
        entry(&mut a, 0, 0, 1, b"TRAILER!!!", b"");
        a
    }

    #[test]
    fn one_file_is_read_out_of_an_image_the_last_of_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let read = |bytes: Vec<u8>, cap: usize| {
            let p = dir.path().join("img");
            std::fs::write(&p, bytes).unwrap();
            read_image_file(&p, DERIVED_PATH, cap, &Limits::default())
        };
        let gz = |a: Vec<u8>| tool("gzip", &["-c"], &a);
        // The early cpio, then a compressed one that replaces the file.
        let mut img = archive(&[("./etc/modseal/derived-anchor", b"first")]);
        img.extend(gz(archive(&[
            ("lib/x.ko", b"not a module"),
            ("./etc/modseal/derived-anchor", b"second"),
        ])));
        assert_eq!(
            read(img, 64).unwrap(),
            Some(Wanted::File(b"second".to_vec()))
        );
        assert_eq!(read(archive(&[("etc/other", b"x")]), 64).unwrap(), None);
        assert_eq!(
            read(archive(&[(DERIVED_PATH, b"0123456789")]), 4).unwrap(),
            Some(Wanted::TooLarge(10))
        );
        let mut dir_entry = Vec::new();
        entry(&mut dir_entry, 1, 0o040755, 2, DERIVED_PATH.as_bytes(), b"");
        entry(&mut dir_entry, 0, 0, 1, b"TRAILER!!!", b"");
        assert_eq!(
            read(dir_entry, 64).unwrap(),
            Some(Wanted::NotRegular("directory"))
        );
        let mut linked = Vec::new();
        entry(
            &mut linked,
            7,
            0o100644,
            2,
            DERIVED_PATH.as_bytes(),
            b"body",
        );
        entry(&mut linked, 0, 0, 1, b"TRAILER!!!", b"");
        assert_eq!(
            read(linked, 64).unwrap(),
            Some(Wanted::NotRegular("hard link"))
        );
        // A broken image is the image's failure.
        let mut cut = archive(&[(DERIVED_PATH, b"x")]);
        cut.truncate(cut.len() - 130);
        assert!(read(cut, 64).is_err());
    }

    #[test]
    fn files_are_digested_out_of_an_image_the_last_of_each_name() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let paths = |ps: &[&str]| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        let digest = |bytes: Vec<u8>, ps: &[&str]| {
            let p = dir.path().join("img");
            std::fs::write(&p, bytes).unwrap();
            digest_image_files(&p, &paths(ps), &Limits::default())
        };
        let sha = |b: &[u8]| -> [u8; 32] { Sha256::digest(b).into() };
        let big = vec![7u8; 300_000];
        let mut img = archive(&[("./etc/modseal/trust.bundle", b"old")]);
        img.extend(tool(
            "zstd",
            &["-c", "-q"],
            &archive(&[
                ("usr/bin/modseal", &big),
                ("lib/x.ko", b"not a module"),
                ("./etc/modseal/trust.bundle", b"new"),
            ]),
        ));
        let got = digest(
            img,
            &["usr/bin/modseal", "etc/modseal/trust.bundle", "etc/absent"],
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["usr/bin/modseal"], Digested::File(sha(&big)));
        assert_eq!(got["etc/modseal/trust.bundle"], Digested::File(sha(b"new")));
        // A module name is never a file to digest; a directory is named.
        let mut d = Vec::new();
        entry(&mut d, 1, 0o040755, 2, b"etc/modseal/sealed", b"");
        entry(&mut d, 2, 0o100644, 1, b"lib/x.ko", b"x");
        entry(&mut d, 0, 0, 1, b"TRAILER!!!", b"");
        let got = digest(d, &["etc/modseal/sealed", "lib/x.ko"]).unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![(
                "etc/modseal/sealed".to_string(),
                Digested::NotRegular("directory")
            )]
        );
        let mut cut = archive(&[("usr/bin/modseal", b"xyz")]);
        cut.truncate(cut.len() - 130);
        assert!(digest(cut, &["usr/bin/modseal"]).is_err());
    }

    fn tool(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program}: {e} (apt-get install -y xz-utils zstd lz4 gzip)")
            });
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    fn scan(data: &[u8]) -> Scan {
        scan_bytes(data, &Limits::default())
    }

    fn names(s: &Scan) -> Vec<&str> {
        s.modules.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn members_and_padding_as_the_kernel_reads_them() {
        let early = archive(&[("kernel/x86/microcode/GenuineIntel.bin", b"ucode")]);
        let main = archive(&[("lib/a.ko", b"module a"), ("lib/b.ko.xz", b"xz?")]);
        let more = archive(&[("lib/c.ko", b"module c")]);
        let mut img = early.clone();
        img.extend_from_slice(&[0; 508]);
        img.extend_from_slice(&tool("gzip", &["-c"], &main));
        // Odd zero padding before a compressed member is fine (no alignment
        // rule there), then zstd, then xz with its own stream padding.
        img.extend_from_slice(&[0; 3]);
        img.extend_from_slice(&tool("zstd", &["-q", "-c"], &more));
        img.extend_from_slice(&tool("xz", &["-c"], &archive(&[("lib/d.ko", b"d")])));
        img.extend_from_slice(&[0; 16]);
        let s = scan(&img);
        assert!(s.fatal.is_none(), "{:?}", s.fatal);
        assert_eq!(
            names(&s),
            ["lib/a.ko", "lib/b.ko.xz", "lib/c.ko", "lib/d.ko"]
        );
        assert_eq!(s.modules[0].1, Some(8));
        let kinds: Vec<String> = s.members.iter().map(|m| m.kind.to_string()).collect();
        assert_eq!(kinds, ["cpio", "gzip", "zstd", "xz"]);
        assert_eq!(s.members[1].file_offset, early.len() as u64 + 508);
    }

    #[test]
    fn cpio_headers_start_at_multiples_of_four() {
        let a = archive(&[("a.ko", b"x")]);
        let mut img = vec![0u8; 2];
        img.extend_from_slice(&a);
        let s = scan(&img);
        let f = s.fatal.unwrap().to_string();
        assert!(
            f.contains("at byte 2") && f.contains("not a multiple of 4"),
            "{f}"
        );
        // After an uncompressed archive, compressed data at an odd offset is
        // the kernel's "broken padding".
        let mut img = a.clone();
        img.extend_from_slice(&[0; 2]);
        img.extend_from_slice(&tool("gzip", &["-c"], &a));
        let f = scan(&img).fatal.unwrap().to_string();
        assert!(f.contains("broken padding"), "{f}");
    }

    #[test]
    fn legacy_lz4_runs_to_a_zero_word_and_skips_repeated_magic() {
        let one = tool("lz4", &["-l", "-c"], &archive(&[("x/one.ko", b"1")]));
        let two = tool("lz4", &["-l", "-c"], &archive(&[("x/two.ko", b"2")]));
        // Two legacy streams back to back are one member for unlz4.
        let mut img = one.clone();
        img.extend_from_slice(&two);
        let s = scan(&img);
        assert!(s.fatal.is_none(), "{:?}", s.fatal);
        assert_eq!(names(&s), ["x/one.ko", "x/two.ko"]);
        assert_eq!(s.members.len(), 1);
        // A zero word ends it; the next member follows the padding.
        let mut img = one;
        img.extend_from_slice(&[0; 4]);
        img.extend_from_slice(&tool("gzip", &["-c"], &archive(&[("x/three.ko", b"3")])));
        let s = scan(&img);
        assert!(s.fatal.is_none(), "{:?}", s.fatal);
        assert_eq!(names(&s), ["x/one.ko", "x/three.ko"]);
    }

    #[test]
    fn entries_the_kernel_never_names_are_skipped_whole() {
        let mut a = Vec::new();
        // A directory with data: do_header skips it without reading its
        // name, so a missing NUL or a trailer name there means nothing.
        entry(&mut a, 1, 0o040755, 2, b"TRAILER!!!", b"data");
        // A symlink named TRAILER!!! is a symlink.
        entry(&mut a, 2, 0o120777, 1, b"TRAILER!!!", b"target");
        entry(&mut a, 3, 0o100644, 1, b"m/after.ko", b"m");
        entry(&mut a, 0, 0, 1, b"TRAILER!!!", b"");
        let s = scan(&a);
        assert!(s.fatal.is_none(), "{:?}", s.fatal);
        assert_eq!(names(&s), ["m/after.ko"]);
    }

    #[test]
    fn bad_headers_are_named() {
        let good = archive(&[("m/a.ko", b"abc")]);
        let cases: [(usize, &[u8], &str); 4] = [
            (0, b"070707", "070707"),
            (0, b"070700", "no cpio magic (found \"070700\")"),
            (6 + 8, b"0000G1A4", "non-hex c_mode field"),
            (6 + 11 * 8, b"00000000", "name size 0"),
        ];
        for (at, bytes, want) in cases {
            let mut d = good.clone();
            d[at..at + bytes.len()].copy_from_slice(bytes);
            let f = scan(&d).fatal.unwrap().to_string();
            assert!(
                f.contains("member 1 (cpio, at byte 0): entry 1 at byte 0: "),
                "{f}"
            );
            assert!(f.contains(want), "{f}");
        }
        // A name without its NUL.
        let mut d = good.clone();
        d[110 + 6] = b'x';
        let f = scan(&d).fatal.unwrap().to_string();
        assert!(f.contains("without a terminating NUL"), "{f}");
        // Every cut of the archive is a failure (or, inside the final zero
        // padding, no change).
        for cut in 1..good.len() {
            let s = scan(&good[..cut]);
            let f = s
                .fatal
                .unwrap_or_else(|| panic!("cut at {cut} passed"))
                .to_string();
            assert!(
                f.contains("truncated") || f.contains("cut short") || f.contains("TRAILER"),
                "{cut}: {f}"
            );
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        let a = archive(&[("m/big", &vec![0u8; 3 << 20])]);
        let gz = tool("gzip", &["-c"], &a);
        let limits = Limits {
            max_unpacked: 1 << 20,
            ..Limits::default()
        };
        let s = scan_bytes(&gz, &limits);
        let f = s.fatal.unwrap().to_string();
        assert!(
            f.contains("decompression bomb: more than 1048576 bytes"),
            "{f}"
        );
        assert!(s.unpacked <= (1 << 20) + 1);
        let limits = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let f = scan_bytes(&archive(&[("a", b""), ("b", b"")]), &limits)
            .fatal
            .unwrap()
            .to_string();
        assert!(f.contains("more than 1 entries"), "{f}");
    }

    // ------------------------------------------------ xz, lzma and zstd members

    /// `archive(&[("lib/known.ko", b"declared size")])` in the `.lzma`
    /// format with its output size in the header and no end marker, as the
    /// LZMA SDK and 7-Zip write it (xz-utils always writes the marker).
    /// Made with lzma-rust2 0.25's `LzmaWriter` (dictionary 64 KiB); its last
    /// byte is the range coder's, a zero.
    const KNOWN_SIZE: [u8; 90] = [
        0x5d, 0x00, 0x00, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18,
        0x0d, 0xdd, 0x04, 0x63, 0x9c, 0x72, 0x1b, 0x76, 0xa1, 0xba, 0xc0, 0x1d, 0x75, 0x2e, 0xab,
        0xee, 0xc9, 0x5b, 0x8d, 0x91, 0x50, 0x14, 0x9b, 0x42, 0x28, 0xba, 0x5d, 0x03, 0x81, 0xd6,
        0xa8, 0x0c, 0x8f, 0x8e, 0x4f, 0xd3, 0x21, 0x07, 0xbd, 0xed, 0x8d, 0xdf, 0xdb, 0x61, 0x5e,
        0x20, 0x0c, 0x94, 0x2d, 0x7b, 0x4c, 0xf2, 0x69, 0x04, 0x5a, 0x0f, 0x70, 0xb6, 0x7b, 0x94,
        0xf4, 0x78, 0xdd, 0x73, 0x83, 0x17, 0x17, 0xbe, 0x0a, 0x80, 0x72, 0xc5, 0xe5, 0x5e, 0x00,
    ];

    /// The same with an end marker after the declared size (liblzma and
    /// xz-utils accept it; the kernel's unlzma stops before it and takes
    /// the marker for the next member).
    const KNOWN_SIZE_AND_MARKER: [u8; 96] = [
        0x5d, 0x00, 0x00, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18,
        0x0d, 0xdd, 0x04, 0x63, 0x9c, 0x72, 0x1b, 0x76, 0xa1, 0xba, 0xc0, 0x1d, 0x75, 0x2e, 0xab,
        0xee, 0xc9, 0x5b, 0x8d, 0x91, 0x50, 0x14, 0x9b, 0x42, 0x28, 0xba, 0x5d, 0x03, 0x81, 0xd6,
        0xa8, 0x0c, 0x8f, 0x8e, 0x4f, 0xd3, 0x21, 0x07, 0xbd, 0xed, 0x8d, 0xdf, 0xdb, 0x61, 0x5e,
        0x20, 0x0c, 0x94, 0x2d, 0x7b, 0x4c, 0xf2, 0x69, 0x04, 0x5a, 0x0f, 0x70, 0xb6, 0x7b, 0x94,
        0xf4, 0x78, 0xdd, 0x73, 0x83, 0x17, 0x17, 0xbe, 0x0a, 0x80, 0x72, 0xc7, 0x6b, 0x09, 0x1f,
        0xff, 0xff, 0x33, 0x19, 0x00, 0x00,
    ];

    /// Compresses with a real tool.
    type Maker = fn(&[u8]) -> Vec<u8>;

    fn xz(a: &[u8]) -> Vec<u8> {
        tool("xz", &["-c"], a)
    }

    fn lzma(a: &[u8]) -> Vec<u8> {
        tool("xz", &["--format=lzma", "-c"], a)
    }

    fn zstd(a: &[u8]) -> Vec<u8> {
        tool("zstd", &["-q", "-c"], a)
    }

    fn gzip(a: &[u8]) -> Vec<u8> {
        tool("gzip", &["-c"], a)
    }

    fn kinds(s: &Scan) -> Vec<String> {
        s.members.iter().map(|m| m.kind.to_string()).collect()
    }

    fn failure(data: &[u8]) -> String {
        scan(data)
            .fatal
            .unwrap_or_else(|| panic!("no failure"))
            .to_string()
    }

    #[test]
    fn each_member_ends_where_the_next_begins() {
        let one = |n: &str| archive(&[(n, b"m")]);
        // Every pair, back to back with no padding: each decoder stops at the
        // end of its own stream.
        let makers: [(&str, Maker); 4] =
            [("xz", xz), ("lzma", lzma), ("zstd", zstd), ("gzip", gzip)];
        for (first, make_first) in makers {
            for (second, make_second) in makers {
                let mut img = make_first(&one("m/first.ko"));
                img.extend(make_second(&one("m/second.ko")));
                let s = scan(&img);
                assert!(s.fatal.is_none(), "{first}+{second}: {:?}", s.fatal);
                assert_eq!(names(&s), ["m/first.ko", "m/second.ko"]);
                assert_eq!(kinds(&s), [first, second]);
                let first_len = make_first(&one("m/first.ko")).len() as u64;
                assert_eq!(s.members[1].file_offset, first_len, "{first}+{second}");
                assert_eq!(s.members[0].unpacked, one("m/first.ko").len() as u64);
            }
        }
    }

    #[test]
    fn concatenated_streams_are_members_as_unxz_and_unzstd_see_them() {
        // The kernel's unxz, unzstd and unlzma decode one stream and return
        // where it ended; what follows is the next member (after zero
        // padding, xz stream padding included).
        let a = archive(&[("m/a.ko", b"a")]);
        let b = archive(&[("m/b.ko", b"b")]);
        for (name, make) in [("xz", xz as Maker), ("zstd", zstd), ("lzma", lzma)] {
            let mut img = make(&a);
            img.extend_from_slice(&[0; 4]);
            img.extend(make(&b));
            img.extend(make(&b));
            let s = scan(&img);
            assert!(s.fatal.is_none(), "{name}: {:?}", s.fatal);
            assert_eq!(names(&s), ["m/a.ko", "m/b.ko", "m/b.ko"], "{name}");
            assert_eq!(kinds(&s), [name, name, name]);
        }
        // `xz` of two files at once writes two streams, each its own member;
        // a second archive inside one stream is still that one member.
        let mut ab = a.clone();
        ab.extend_from_slice(&b);
        let s = scan(&xz(&ab));
        assert_eq!(
            (names(&s), kinds(&s)),
            (vec!["m/a.ko", "m/b.ko"], vec!["xz".to_string()])
        );
    }

    #[test]
    fn cut_xz_lzma_and_zstd_members_are_truncated_streams() {
        let a = archive(&[("m/a.ko", &[7u8; 5000])]);
        for (name, make) in [("xz", xz as Maker), ("zstd", zstd), ("lzma", lzma)] {
            let whole = make(&a);
            for cut in [whole.len() / 2, whole.len() - 1] {
                let f = failure(&whole[..cut]);
                assert!(
                    f.starts_with(&format!("member 1 ({name}, at byte 0): ")),
                    "{name} cut at {cut}: {f}"
                );
                assert!(
                    f.contains(&format!("truncated {name} stream")) || f.contains("corrupt"),
                    "{name} cut at {cut}: {f}"
                );
            }
            // Cut inside the stream's last bytes (xz footer, zstd checksum):
            // the member is still truncated, never taken as complete.
            let f = failure(&whole[..whole.len() - 2]);
            assert!(f.contains(&format!("{name} stream")), "{name}: {f}");
        }
        // An xz stream cut after its header only.
        let f = failure(&xz(&a)[..12]);
        assert!(
            f.contains("truncated xz stream (after 0 bytes unpacked)"),
            "{f}"
        );
    }

    #[test]
    fn an_lzma_member_of_declared_size_stops_there() {
        let a = archive(&[("lib/known.ko", b"declared size")]);
        // The fixture is that archive.
        let mut input = input::Input::new(&KNOWN_SIZE[..], KNOWN_SIZE.len() as u64);
        let mut d = stream::Decoder::new(Compression::Lzma, &mut input).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut out).unwrap();
        assert_eq!(out, a);
        // Followed at once by another member, and after its zero byte.
        for pad in [0usize, 3] {
            let mut img = KNOWN_SIZE.to_vec();
            img.extend(vec![0; pad]);
            img.extend(gzip(&archive(&[("lib/next.ko", b"n")])));
            let s = scan(&img);
            assert!(s.fatal.is_none(), "{:?}", s.fatal);
            assert_eq!(names(&s), ["lib/known.ko", "lib/next.ko"]);
            assert_eq!(s.members[1].file_offset, (KNOWN_SIZE.len() + pad) as u64);
        }
        // An end marker after the declared size is where the kernel stops
        // and finds no member: refused, not read past.
        let f = failure(&KNOWN_SIZE_AND_MARKER);
        assert!(
            f.contains("corrupt lzma stream") && f.contains("past its declared size"),
            "{f}"
        );
        // A declared size one short: the stream goes on where unlzma stops.
        let mut short = KNOWN_SIZE;
        short[5] -= 1;
        let f = failure(&short);
        assert!(
            f.contains("member 1 (lzma, at byte 0): corrupt lzma stream"),
            "{f}"
        );
        // One long: the decoder runs into the end of the data.
        let mut long = KNOWN_SIZE;
        long[5] += 1;
        let f = failure(&long);
        assert!(f.contains("lzma stream"), "{f}");
        // The stream xz writes (size unknown, end marker) ends at the marker.
        let s = scan(&lzma(&a));
        assert!(s.fatal.is_none(), "{:?}", s.fatal);
    }

    #[test]
    fn lzma_and_zstd_headers_are_checked_first() {
        let f = failure(&[0x5d, 0, 0, 0x80, 0]);
        assert_eq!(
            f,
            "member 1 (lzma, at byte 0): bad lzma header: header cut short (5 of 13 bytes)"
        );
        let mut big = lzma(&archive(&[("m/a.ko", b"a")]));
        big[1..5].copy_from_slice(&(512u32 << 20).to_le_bytes());
        let f = failure(&big);
        assert!(
            f.ends_with("bad lzma header: a dictionary of 536870912 bytes needs more decoder memory than allowed"),
            "{f}"
        );
        let z = zstd(&archive(&[("m/a.ko", b"a")]));
        // Reserved bit.
        let mut r = z.clone();
        r[4] |= 0x08;
        let f = failure(&r);
        assert!(
            f.ends_with("bad zstd header: reserved bit set in the frame header"),
            "{f}"
        );
        // A window over 128 MiB (log 28), refused before any data.
        assert_eq!(z[4] & 0x20, 0, "zstd wrote a single-segment frame");
        let mut w = z.clone();
        w[5] = 18 << 3;
        let f = failure(&w);
        assert!(
            f.ends_with("bad zstd header: Frame requires too much memory for decoding"),
            "{f}"
        );
    }

    /// A zstd frame of `a` with a checksum and its content size declared,
    /// and where that size field is (after the window descriptor unless the
    /// frame is a single segment).
    fn zstd_declared(a: &[u8]) -> (Vec<u8>, std::ops::Range<usize>) {
        let size = format!("--stream-size={}", a.len());
        let z = tool("zstd", &["-q", "-c", "--check", &size], a);
        let descriptor = z[4];
        assert_eq!(descriptor & 0x04, 0x04, "no checksum flag");
        assert_eq!(descriptor & 0x03, 0, "a dictionary ID");
        let at = if descriptor & 0x20 != 0 { 5 } else { 6 };
        let len = match descriptor >> 6 {
            1 => 2,
            2 => 4,
            other => panic!("content size flag {other}"),
        };
        (z, at..at + len)
    }

    #[test]
    fn zstd_checksums_and_content_sizes_are_checked() {
        // libzstd checks both as it goes; the member fails with its name.
        // One block (decoded in one call) and many.
        let small = archive(&[("m/a.ko", &[1u8; 3000])]);
        let pattern: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let big = archive(&[("m/b.ko", &pattern)]);
        for a in [small, big] {
            let (z, field) = zstd_declared(&a);
            assert!(scan(&z).fatal.is_none());
            let mut c = z.clone();
            *c.last_mut().unwrap() ^= 1;
            let f = failure(&c);
            assert!(
                f.starts_with("member 1 (zstd, at byte 0): corrupt zstd stream")
                    && f.ends_with("Restored data doesn't match checksum"),
                "{f}"
            );
            // The field holds the size, minus 256 when it is 2 bytes long.
            let mut le = [0u8; 8];
            le[..field.len()].copy_from_slice(&z[field.clone()]);
            let bias = if field.len() == 2 { 256 } else { 0 };
            let declared = u64::from_le_bytes(le);
            assert_eq!(declared + bias, a.len() as u64);
            for other in [declared + 1, declared - 1] {
                let mut d = z.clone();
                d[field.clone()].copy_from_slice(&other.to_le_bytes()[..field.len()]);
                let f = failure(&d);
                assert!(
                    f.starts_with("member 1 (zstd, at byte 0): corrupt zstd stream"),
                    "{other}: {f}"
                );
            }
        }
    }

    #[test]
    fn xz_lzma_and_zstd_bombs_stop_at_the_cap() {
        let a = archive(&[("m/big", &vec![0u8; 3 << 20])]);
        let limits = Limits {
            max_unpacked: 1 << 20,
            ..Limits::default()
        };
        for (name, make) in [("xz", xz as Maker), ("zstd", zstd), ("lzma", lzma)] {
            let s = scan_bytes(&make(&a), &limits);
            let f = s.fatal.unwrap().to_string();
            assert!(
                f.contains(&format!("member 1 ({name}, at byte 0): decompression bomb")),
                "{f}"
            );
            assert!(s.unpacked <= (1 << 20) + 1, "{name}: {}", s.unpacked);
        }
    }

    /// CRC-32 (IEEE), for the xz block header patched below.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn an_xz_member_whose_dictionary_passes_the_memory_limit_is_refused() {
        // xz writes LZMA2 with a 1 MiB dictionary here (properties byte 16);
        // the block header says 1 GiB instead (byte 36: 2 << 29), with its
        // CRC-32 redone, as an attacker would write it. The data still fits
        // a 1 MiB window, so only the memory limit can refuse it.
        let img = tool(
            "xz",
            &["--lzma2=dict=1MiB", "-c"],
            &archive(&[("m/a.ko", b"x")]),
        );
        let mut patched = img.clone();
        let header = 12;
        let header_len = (usize::from(patched[header]) + 1) * 4;
        let filter = patched[header..header + header_len]
            .windows(3)
            .position(|w| w == [0x21, 0x01, 16])
            .expect("an LZMA2 filter with a 1 MiB dictionary");
        patched[header + filter + 2] = 36;
        let crc = crc32(&patched[header..header + header_len - 4]);
        patched[header + header_len - 4..header + header_len].copy_from_slice(&crc.to_le_bytes());
        assert!(scan(&img).fatal.is_none());
        let f = failure(&patched);
        assert!(
            f.starts_with("member 1 (xz, at byte 0): ")
                && f.contains("more decoder memory than allowed"),
            "{f}"
        );
    }
}
