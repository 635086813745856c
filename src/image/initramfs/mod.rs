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

use std::path::PathBuf;

pub use cpio::header::PATH_MAX;
pub use cpio::{Limits, Wanted};
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
    let w = file::walk_file_wanting(image, &mut sink, limits, Some((path, cap)))?;
    match w.fatal {
        Some(e) => Err(e),
        None => Ok(w.wanted),
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
}
