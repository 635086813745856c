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

mod cpio;
mod pe;
mod stream;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::sync::Mutex;

pub use cpio::{Limits, Member, MemberKind, PATH_MAX};
pub use pe::{sections, Section};
pub use stream::Compression;

use crate::image::decompress::Format;
use crate::trust::TrustStore;
use crate::verify::{self, Options, Report, Verdict};
use cpio::{GroupContent, RowKind, Sink, Walked, Walker};
use stream::Input;

/// What was found in one image.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub path: String,
    pub members: Vec<Member>,
    pub entries: u64,
    pub unpacked: u64,
    /// Module entries reported (not counting failure rows for the image).
    pub modules: usize,
    /// The image itself failed (corrupt, truncated, a bomb, unreadable…).
    pub failed: bool,
    /// Things said on standard error that are not failures.
    pub notes: Vec<String>,
}

/// The reports of all images, in order, and a summary per image.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub reports: Vec<Report>,
    pub images: Vec<ImageSummary>,
}

/// How far the reading has got, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Image number (from 0) and how many there are.
    pub image: usize,
    pub images: usize,
    /// Bytes of the image file read so far, and its size.
    pub pos: u64,
    pub len: u64,
    /// Module bodies handed to the verifiers so far (all images).
    pub modules: usize,
}

/// One module body to check.
struct Job {
    id: usize,
    bytes: Vec<u8>,
    formats: Vec<Format>,
    path: String,
}

/// Buffers kept for reuse are at most this large.
const POOL_BUFFER_MAX: usize = 32 << 20;

/// The reading thread's end of the verifier pool.
struct PoolSink<'a> {
    jobs: &'a SyncSender<Job>,
    free: &'a Receiver<Vec<u8>>,
    next: &'a AtomicUsize,
    progress: &'a (dyn Fn(Progress) + Sync),
    at: Progress,
}

impl Sink for PoolSink<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        self.free.try_recv().unwrap_or_default()
    }

    fn submit(&mut self, bytes: Vec<u8>, formats: Vec<Format>, path: &str) -> usize {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.at.modules = self.at.modules.saturating_add(1);
        let job = Job {
            id,
            bytes,
            formats,
            path: path.to_owned(),
        };
        // The workers only stop when this sender is dropped, so this cannot
        // fail while the reader runs; a lost job would be reported unchecked.
        let _ = self.jobs.send(job);
        id
    }

    fn progress(&mut self, file_pos: u64) {
        self.at.pos = file_pos;
        (self.progress)(self.at);
    }
}

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
    let jobs = jobs.max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<Report>>>> = Mutex::new(Vec::new());
    let mut walked = Vec::with_capacity(images.len());
    // A rendezvous channel: a body is handed over only when a worker is
    // ready for it, so at most `jobs + 1` bodies exist at once.
    let (job_tx, job_rx) = sync_channel::<Job>(0);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let job_rx = Mutex::new(job_rx);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let free_tx: Sender<Vec<u8>> = free_tx.clone();
            let job_rx = &job_rx;
            let results = &results;
            s.spawn(move || loop {
                let job = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(job) = job else { break };
                let reports: Vec<Report> = job
                    .formats
                    .iter()
                    .map(|&f| {
                        crate::image::module::verify_bytes(&job.bytes, f, &job.path, trust, opts)
                    })
                    .collect();
                if let Ok(mut r) = results.lock() {
                    if r.len() <= job.id {
                        r.resize(job.id.saturating_add(1), None);
                    }
                    if let Some(slot) = r.get_mut(job.id) {
                        *slot = Some(reports);
                    }
                }
                let mut bytes = job.bytes;
                if bytes.capacity() <= POOL_BUFFER_MAX {
                    bytes.clear();
                    let _ = free_tx.send(bytes);
                }
            });
        }
        drop(free_tx);
        let mut at = Progress {
            image: 0,
            images: images.len(),
            pos: 0,
            len: 0,
            modules: 0,
        };
        for (i, image) in images.iter().enumerate() {
            at.image = i;
            at.pos = 0;
            at.len = std::fs::metadata(image).map(|m| m.len()).unwrap_or(0);
            let mut sink = PoolSink {
                jobs: &job_tx,
                free: &free_rx,
                next: &next,
                progress,
                at,
            };
            walked.push(walk_file(image, &mut sink, limits));
            at = sink.at;
        }
        drop(job_tx);
    });
    let results = results.into_inner().unwrap_or_default();
    let prefix = images.len() > 1;
    let mut outcome = Outcome {
        reports: Vec::new(),
        images: Vec::new(),
    };
    for (image, w) in images.iter().zip(walked) {
        let shown = image.display().to_string();
        let prefix = if prefix {
            format!("{shown}:")
        } else {
            String::new()
        };
        let (reports, summary) = resolve(&shown, &prefix, w, &results);
        outcome.reports.extend(reports);
        outcome.images.push(summary);
    }
    outcome
}

/// Opens and walks one image file.
fn walk_file(path: &Path, sink: &mut impl Sink, limits: &Limits) -> Result<Walked, String> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO given as an image must not wait for a writer (it is
    // refused below); no effect on regular files.
    const O_NONBLOCK: i32 = 0o4000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot open: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok(walk(file, meta.len(), sink, limits))
}

/// Walks an image (a plain initramfs or a UKI) given as a seekable reader.
fn walk<R: Read + Seek>(mut r: R, len: u64, sink: &mut impl Sink, limits: &Limits) -> Walked {
    let mut walker = Walker::new(sink, limits.clone());
    let mut magic = [0u8; 2];
    let is_pe = len >= 2 && r.read_exact(&mut magic).is_ok() && &magic == b"MZ";
    let fatal = if is_pe {
        walk_pe(&mut r, len, &mut walker).err()
    } else {
        match r.seek(SeekFrom::Start(0)) {
            Ok(_) => walker.walk(&mut Input::new(&mut r, len), None, 0).err(),
            Err(e) => Some(format!("cannot seek: {e}")),
        }
    };
    let empty = fatal.is_none() && walker_is_empty(&walker);
    let mut w = walker.finish(fatal);
    if empty {
        w.fatal = Some("no cpio archive in the image (empty or all zero bytes)".into());
    }
    w
}

fn walker_is_empty<S: Sink>(w: &Walker<'_, S>) -> bool {
    w.members_len() == 0
}

/// The sections a UKI's initramfs is made of, in the order systemd-stub
/// hands them on: `.ucode` (early microcode), then `.initrd`.
fn walk_pe<R: Read + Seek, S: Sink>(
    r: &mut R,
    len: u64,
    walker: &mut Walker<'_, S>,
) -> Result<(), String> {
    let secs = pe::sections(r, len).map_err(|e| format!("a PE (MZ) file: {e}"))?;
    if !secs.iter().any(|s| s.name == ".initrd") {
        let names: Vec<&str> = secs.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "a PE file without an .initrd section (sections: {}): a kernel image or a UKI without an initramfs",
            if names.is_empty() { "none".to_string() } else { names.join(" ") }
        ));
    }
    for s in secs
        .iter()
        .filter(|s| s.name == ".ucode")
        .chain(secs.iter().filter(|s| s.name == ".initrd"))
    {
        let (start, size) = s.data_range(len)?;
        if size == 0 {
            return Err(format!("section {} is empty", s.name));
        }
        r.seek(SeekFrom::Start(start))
            .map_err(|e| format!("cannot seek to section {}: {e}", s.name))?;
        walker.walk(&mut Input::new(&mut *r, size), Some(&s.name), start)?;
    }
    Ok(())
}

fn failure(path: &str, verdict: Verdict, reason: String) -> Report {
    Report {
        path: path.to_owned(),
        verdict,
        reason,
        signer: None,
        key_id: None,
        hash_algo: None,
        sha256: None,
    }
}

/// Turns one image's rows into reports, with the verifiers' results.
fn resolve(
    image: &str,
    prefix: &str,
    walked: Result<Walked, String>,
    results: &[Option<Vec<Report>>],
) -> (Vec<Report>, ImageSummary) {
    let w = match walked {
        Ok(w) => w,
        Err(e) => {
            return (
                vec![failure(image, Verdict::IoError, e)],
                ImageSummary {
                    path: image.to_owned(),
                    members: Vec::new(),
                    entries: 0,
                    unpacked: 0,
                    modules: 0,
                    failed: true,
                    notes: Vec::new(),
                },
            )
        }
    };
    let job = |id: usize| results.get(id).and_then(Option::as_ref);
    let multi = w.members.len() > 1;
    let mut reports = Vec::with_capacity(w.rows.len().saturating_add(1));
    for row in &w.rows {
        let path = format!("{prefix}{}", row.path);
        let mut r = match &row.kind {
            RowKind::Fixed { verdict, reason } => failure(&path, *verdict, reason.clone()),
            RowKind::Job { job: id } => match job(*id).and_then(|v| v.first()) {
                Some(r) => Report {
                    path: path.clone(),
                    ..r.clone()
                },
                None => failure(
                    &path,
                    Verdict::IoError,
                    "not checked (worker failed)".into(),
                ),
            },
            RowKind::Link { group, format } => {
                link_report(&path, &row.path, w.groups.get(*group), *format, &job)
            }
        };
        if row.unsafe_path {
            let why = "an absolute path or one with '..' (reported, not followed)";
            if r.verdict == Verdict::Ok {
                r.verdict = Verdict::Malformed;
                r.reason = format!("{why}; the module itself verifies: {}", r.reason);
            } else {
                r.reason = format!("{why}; {}", r.reason);
            }
        }
        if multi && r.verdict != Verdict::Ok {
            if let Some(m) = w.members.get(row.member) {
                r.reason = format!("{} (in member {}, {})", r.reason, m.index, m.kind);
            }
        }
        reports.push(r);
    }
    let modules = reports.len();
    for p in &w.problems {
        reports.push(failure(image, Verdict::Malformed, p.clone()));
    }
    if let Some(f) = &w.fatal {
        reports.push(failure(image, Verdict::Malformed, f.clone()));
    }
    let summary = ImageSummary {
        path: image.to_owned(),
        members: w.members,
        entries: w.entries,
        unpacked: w.unpacked,
        modules,
        failed: w.fatal.is_some() || !w.problems.is_empty(),
        notes: w.notes,
    };
    (reports, summary)
}

fn link_report<'a>(
    path: &str,
    name: &str,
    group: Option<&cpio::Group>,
    format: Format,
    job: &dyn Fn(usize) -> Option<&'a Vec<Report>>,
) -> Report {
    let Some(g) = group else {
        return failure(
            path,
            Verdict::IoError,
            "not checked (no hard-link group)".into(),
        );
    };
    let from = g.data_from.as_deref().unwrap_or("");
    let note = if from.is_empty() || from == name {
        String::new()
    } else {
        format!(" (a hard link; its data is stored with '{from}')")
    };
    let mut r = match &g.content {
        GroupContent::Empty => crate::image::module::verify_bytes(&[], format, path, &TrustStore::default(), &Options::default()),
        GroupContent::TooLarge(size) => failure(path, Verdict::IoError, cpio::too_large(*size, verify::MAX_MODULE_SIZE)),
        GroupContent::Unchecked => failure(
            path,
            Verdict::Malformed,
            format!(
                "a hard link whose data is stored with the earlier link '{from}' (newc writers store it with the last), \
                 which went past before any module name joined it: not checked"
            ),
        ),
        GroupContent::Checked { job: id, formats } => {
            match formats.iter().position(|&f| f == format).and_then(|i| job(*id).and_then(|v| v.get(i))) {
                Some(r) => Report {
                    path: path.to_owned(),
                    ..r.clone()
                },
                None => failure(
                    path,
                    Verdict::Malformed,
                    format!("a hard link whose data was checked as another compression than its name ({format}) says"),
                ),
            }
        }
    };
    r.reason.push_str(&note);
    r
}

/// A listing of an image without checking anything: what `check-initramfs`
/// would verify. For tests and fuzzing; reads `data` as an image file.
#[derive(Debug, Clone)]
pub struct Scan {
    /// Module entries: path, and the body length read for it (`None` for a
    /// hard link, a symlink or an over-large file).
    pub modules: Vec<(String, Option<usize>)>,
    /// The failure that stopped the walk, and ones that did not.
    pub fatal: Option<String>,
    pub problems: Vec<String>,
    pub members: Vec<Member>,
    pub entries: u64,
    pub unpacked: u64,
}

struct ListSink {
    lens: Vec<usize>,
}

impl Sink for ListSink {
    fn buffer(&mut self) -> Vec<u8> {
        Vec::new()
    }
    fn submit(&mut self, bytes: Vec<u8>, _formats: Vec<Format>, _path: &str) -> usize {
        self.lens.push(bytes.len());
        self.lens.len().saturating_sub(1)
    }
    fn progress(&mut self, _file_pos: u64) {}
}

/// Lists the module entries of an image held in memory.
pub fn scan_bytes(data: &[u8], limits: &Limits) -> Scan {
    let mut sink = ListSink { lens: Vec::new() };
    let w = walk(
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
        assert_eq!(s.fatal, None);
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
        let f = s.fatal.unwrap();
        assert!(
            f.contains("at byte 2") && f.contains("not a multiple of 4"),
            "{f}"
        );
        // After an uncompressed archive, compressed data at an odd offset is
        // the kernel's "broken padding".
        let mut img = a.clone();
        img.extend_from_slice(&[0; 2]);
        img.extend_from_slice(&tool("gzip", &["-c"], &a));
        let f = scan(&img).fatal.unwrap();
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
        assert_eq!(s.fatal, None);
        assert_eq!(names(&s), ["x/one.ko", "x/two.ko"]);
        assert_eq!(s.members.len(), 1);
        // A zero word ends it; the next member follows the padding.
        let mut img = one;
        img.extend_from_slice(&[0; 4]);
        img.extend_from_slice(&tool("gzip", &["-c"], &archive(&[("x/three.ko", b"3")])));
        let s = scan(&img);
        assert_eq!(s.fatal, None);
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
        assert_eq!(s.fatal, None);
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
            let f = scan(&d).fatal.unwrap();
            assert!(
                f.contains("member 1 (cpio, at byte 0): entry 1 at byte 0: "),
                "{f}"
            );
            assert!(f.contains(want), "{f}");
        }
        // A name without its NUL.
        let mut d = good.clone();
        d[110 + 6] = b'x';
        let f = scan(&d).fatal.unwrap();
        assert!(f.contains("without a terminating NUL"), "{f}");
        // Every cut of the archive is a failure (or, inside the final zero
        // padding, no change).
        for cut in 1..good.len() {
            let s = scan(&good[..cut]);
            let f = s.fatal.unwrap_or_else(|| panic!("cut at {cut} passed"));
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
        let f = s.fatal.unwrap();
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
            .unwrap();
        assert!(f.contains("more than 1 entries"), "{f}");
    }
}
