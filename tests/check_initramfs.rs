//! `modseal check-initramfs` on real initramfs images: built by the
//! machine's own dracut (dracut-core) from the real Debian bookworm kernel
//! (`.cache/kernels/bookworm`, a module tree from `qemu/kernel-tree.sh`),
//! with each compression dracut offers, an early-microcode prefix made with
//! the `cpio` tool, a concatenation like mkosi's separate modules archive,
//! and a UKI made with `objcopy` from systemd-boot's stub. The same images
//! built from a tree with one module flipped must fail naming it; truncated,
//! corrupted and bomb images must fail naming the image, the member and the
//! byte offset. Module counts and paths are compared with `lsinitrd`.
//!
//! Needs: dracut-core, cpio, zstd, xz-utils, gzip, lz4, binutils (objcopy),
//! systemd-boot-efi (the stub), the bookworm kernel (scripts/setup.sh).
//! Nothing missing is skipped: it fails the test with what to install.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

/// The module the tampered tree flips (kernel-tree.sh --flip); it is in
/// every image built here (ext4 needs it).
const FLIPPED: &str = "kernel/lib/crc16.ko";
const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// dracut's compressions, slowest first.
const DRACUT: [(&str, &str); 5] = [
    ("xz", "--xz"),
    ("gzip", "--gzip"),
    ("zstd", "--zstd"),
    ("lz4", "--lz4"),
    ("plain", "--no-compress"),
];

struct Kernel {
    kver: String,
    vmlinuz: PathBuf,
}

fn kernel() -> Kernel {
    Kernel {
        kver: bookworm_var("KVER"),
        vmlinuz: PathBuf::from(bookworm_var("VMLINUZ")),
    }
}

fn sh(script: &str) -> Output {
    run(Command::new("bash").args(["-euo", "pipefail", "-c", script]))
}

/// Every image of the tests, built once per test process.
struct Fx {
    dir: PathBuf,
    kver: String,
    trust: PathBuf,
    good_tree: PathBuf,
    bad_tree: PathBuf,
    /// name → image built from the good tree / the flipped tree.
    good: BTreeMap<&'static str, PathBuf>,
    bad: BTreeMap<&'static str, PathBuf>,
    /// For the concatenation: the parts lsinitrd can list one by one.
    concat_parts: Vec<PathBuf>,
}

fn dracut(
    kver: &str,
    moddir: Option<&Path>,
    compress: &str,
    modules: &str,
    out: &Path,
    confdir: &Path,
) {
    let mut cmd = Command::new("dracut");
    cmd.args(["--conf", "/dev/null", "--confdir"])
        .arg(confdir)
        .args([
            "--force",
            "--no-hostonly",
            "--no-early-microcode",
            "--kver",
            kver,
        ]);
    match moddir {
        Some(m) => {
            cmd.arg("--kmoddir").arg(m);
            cmd.args(["--add-drivers", "virtio_blk ext4"]);
        }
        None => {
            cmd.arg("--no-kernel");
        }
    }
    cmd.args(["-m", modules, compress]).arg(out);
    run(&mut cmd);
    assert!(out.is_file(), "dracut made no {}", out.display());
}

fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(build_fixtures)
}

fn build_fixtures() -> Fx {
    let k = kernel();
    let dir = repo().join("target/check-initramfs");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let confdir = dir.join("empty-confdir");
    std::fs::create_dir_all(&confdir).unwrap();
    assert!(
        Path::new(STUB).is_file(),
        "{STUB} missing: apt-get install systemd-boot-efi (scripts/setup.sh installs it)"
    );

    let trust = dir.join("kernel.pem");
    let keys = modseal([
        OsString::from("keys"),
        "from-kernel".into(),
        k.vmlinuz.clone().into(),
    ]);
    assert_eq!(code(&keys), 0, "{}", describe(&keys));
    std::fs::write(&trust, &keys.stdout).unwrap();

    let tree = |name: &str, flip: bool| -> PathBuf {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("qemu/kernel-tree.sh"))
            .arg("bookworm")
            .arg(dir.join(name));
        if flip {
            cmd.args(["--flip", FLIPPED]);
        }
        let out = run(&mut cmd);
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    };
    let good_tree = tree("tree-good", false);
    let bad_tree = tree("tree-bad", true);

    // The dracut images, two builds at a time (compression takes most of
    // the time: xz, gzip -9 and zstd -15 on ~26 MB each). Tampered variants
    // of the ones the tests below take apart; lz4 only good.
    let mut builds: Vec<(PathBuf, Option<PathBuf>, &str)> = Vec::new();
    for (name, flag) in DRACUT {
        builds.push((
            dir.join(format!("good-{name}.img")),
            Some(good_tree.clone()),
            flag,
        ));
        if name != "lz4" {
            builds.push((
                dir.join(format!("bad-{name}.img")),
                Some(bad_tree.clone()),
                flag,
            ));
        }
    }
    let base = dir.join("base-nokernel.img");
    builds.push((base.clone(), None, "--zstd"));
    let queue = std::sync::Mutex::new(builds.into_iter());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((out, moddir, flag)) = queue.lock().unwrap().next() else {
                    break;
                };
                dracut(
                    &k.kver,
                    moddir.as_deref(),
                    flag,
                    "base rootfs-block",
                    &out,
                    &confdir,
                );
            });
        }
    });
    // lzma (optional for the kernel, slow at dracut's -9): the uncompressed
    // dracut image in the .lzma format the kernel's unlzma reads.
    for tag in ["good", "bad"] {
        sh(&format!(
            "xz --format=lzma -1 -c {d}/{tag}-plain.img > {d}/{tag}-lzma.img",
            d = dir.display()
        ));
    }

    // Early microcode, as dracut --early-microcode lays it out: an
    // uncompressed newc archive with kernel/x86/microcode/*.bin first.
    let early = dir.join("early.cpio");
    sh(&format!(
        "cd {d} && rm -rf early && mkdir -p early/kernel/x86/microcode && \
         head -c 3000 /dev/urandom > early/kernel/x86/microcode/GenuineIntel.bin && \
         (cd early && find . | sort | cpio -o -H newc --quiet -R 0:0) > {e}",
        d = dir.display(),
        e = early.display()
    ));

    // mkosi's separate modules archive: the modules (and modules.dep) under
    // usr/lib/modules in a second zstd cpio after a dracut image without
    // any. The staging tree is hard-linked, so GNU cpio writes every module
    // as an nlink>1 entry carrying its data.
    let modules_archive = |tree: &Path, out: &Path| {
        sh(&format!(
            "s={s}; rm -rf $s && mkdir -p $s/usr/lib/modules && cp -al {t} $s/usr/lib/modules/{kver} && \
             cd $s && find usr/lib/modules/{kver}/kernel/fs usr/lib/modules/{kver}/kernel/lib \
             usr/lib/modules/{kver}/kernel/drivers/block usr/lib/modules/{kver}/modules.dep | sort | \
             cpio -o -H newc --quiet -R 0:0 | zstd -q > {o}",
            s = out.with_extension("stage").display(),
            t = tree.display(),
            kver = k.kver,
            o = out.display()
        ));
    };
    let good_mods = dir.join("good-modules.cpio.zst");
    let bad_mods = dir.join("bad-modules.cpio.zst");
    modules_archive(&good_tree, &good_mods);
    modules_archive(&bad_tree, &bad_mods);

    let cat = |parts: &[&Path], out: &Path| {
        let mut f = std::fs::File::create(out).unwrap();
        for p in parts {
            f.write_all(&std::fs::read(p).unwrap()).unwrap();
        }
        out.to_path_buf()
    };
    let uki = |initrd: &Path, out: &Path| {
        run(Command::new("objcopy")
            .arg("--add-section")
            .arg(format!(".initrd={}", initrd.display()))
            .args(["--change-section-vma", ".initrd=0x3000000", STUB])
            .arg(out));
        out.to_path_buf()
    };

    let mut good = BTreeMap::new();
    let mut bad = BTreeMap::new();
    for name in DRACUT.iter().map(|(n, _)| *n).chain(["lzma"]) {
        good.insert(name, dir.join(format!("good-{name}.img")));
        if name != "lz4" {
            bad.insert(name, dir.join(format!("bad-{name}.img")));
        }
    }
    good.insert(
        "early+xz",
        cat(&[&early, &good["xz"]], &dir.join("good-early-xz.img")),
    );
    bad.insert(
        "early+xz",
        cat(&[&early, &bad["xz"]], &dir.join("bad-early-xz.img")),
    );
    good.insert(
        "concat",
        cat(&[&base, &good_mods], &dir.join("good-concat.img")),
    );
    bad.insert(
        "concat",
        cat(&[&base, &bad_mods], &dir.join("bad-concat.img")),
    );
    good.insert("uki", uki(&good["zstd"], &dir.join("good-uki.efi")));
    bad.insert("uki", uki(&bad["zstd"], &dir.join("bad-uki.efi")));
    Fx {
        dir,
        kver: k.kver,
        trust,
        good_tree,
        bad_tree,
        good,
        bad,
        concat_parts: vec![base, good_mods],
    }
}

fn check(args: &[&std::ffi::OsStr]) -> Output {
    let mut a: Vec<OsString> = vec![
        "check-initramfs".into(),
        "--trust".into(),
        fx().trust.clone().into(),
    ];
    a.extend(args.iter().map(|s| s.to_os_string()));
    modseal(a)
}

fn check_json(image: &Path) -> (Output, VerifyReport) {
    let out = check(&["--json".as_ref(), image.as_os_str()]);
    let rep = verify_report(&out);
    (out, rep)
}

/// The `.ko` paths `lsinitrd` lists (as `lsinitrd IMAGE | grep '\.ko'`).
fn lsinitrd_modules(image: &Path) -> Vec<String> {
    let out = run(Command::new("lsinitrd").arg(image));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(".ko"))
        .map(|l| l.split_whitespace().nth(8).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn good_images_verify_every_module_lsinitrd_lists() {
    let fx = fx();
    for (name, image) in &fx.good {
        let (out, rep) = check_json(image);
        assert_eq!(code(&out), 0, "{name}: {}", describe(&out));
        assert_eq!(rep.failed, 0, "{name}");
        let listed: Vec<String> = match *name {
            // lsinitrd stops at the first TRAILER!!! of the decompressed
            // data, so the concatenation is listed part by part.
            "concat" => fx
                .concat_parts
                .iter()
                .flat_map(|p| lsinitrd_modules(p))
                .collect(),
            // lsinitrd does not read PE files: the UKI holds the zstd image.
            "uki" => lsinitrd_modules(&fx.good["zstd"]),
            _ => lsinitrd_modules(image),
        };
        assert!(listed.len() >= 10, "{name}: lsinitrd lists only {listed:?}");
        assert_eq!(rep.modules.len(), listed.len(), "{name}: module count");
        assert_eq!(rep.verified as usize, listed.len(), "{name}");
        let ours: BTreeSet<&str> = rep.modules.iter().map(|m| m.path.as_str()).collect();
        let theirs: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
        assert_eq!(ours, theirs, "{name}: module paths");
        for m in &rep.modules {
            assert_eq!(m.verdict, "ok", "{name}: {m:?}");
            assert!(
                m.path
                    .starts_with(&format!("usr/lib/modules/{}/kernel/", fx.kver)),
                "{m:?}"
            );
            assert_eq!(m.hash_algo.as_deref(), Some("sha256"));
        }
        // The text form: the summary line only.
        let text = check(&[image.as_os_str()]);
        assert_eq!(code(&text), 0);
        assert_eq!(
            stdout(&text),
            format!("{} verified, 0 failed\n", listed.len()),
            "{name}"
        );
    }
}

#[test]
fn module_bytes_match_the_tree_and_verify_agrees() {
    // The SHA-256 of each module as read from the image equals the file in
    // the tree dracut took it from, and `verify` on those files says the same.
    let fx = fx();
    for name in ["plain", "xz", "lz4", "concat", "uki"] {
        let (out, rep) = check_json(&fx.good[name]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let prefix = format!("usr/lib/modules/{}/", fx.kver);
        let files: Vec<PathBuf> = rep
            .modules
            .iter()
            .map(|m| fx.good_tree.join(m.path.strip_prefix(&prefix).unwrap()))
            .collect();
        let mut args: Vec<OsString> = vec![
            "verify".into(),
            "--json".into(),
            "--trust".into(),
            fx.trust.clone().into(),
        ];
        args.extend(files.iter().map(|f| f.clone().into_os_string()));
        let v = modseal(args);
        assert_eq!(code(&v), 0, "{}", describe(&v));
        let vrep = verify_report(&v);
        for ((m, vm), f) in rep.modules.iter().zip(&vrep.modules).zip(&files) {
            assert_eq!(
                m.sha256.as_deref(),
                Some(sha256_file(f).as_str()),
                "{name}: {}",
                m.path
            );
            assert_eq!(
                (
                    &m.verdict,
                    &m.reason,
                    &m.signer,
                    &m.key_id,
                    &m.hash_algo,
                    &m.sha256
                ),
                (
                    &vm.verdict,
                    &vm.reason,
                    &vm.signer,
                    &vm.key_id,
                    &vm.hash_algo,
                    &vm.sha256
                ),
                "{name}: {}",
                m.path
            );
        }
    }
}

#[test]
fn jobs_do_not_change_the_report() {
    let fx = fx();
    let image = fx.good["gzip"].as_os_str();
    let one = check(&["--json".as_ref(), "--jobs".as_ref(), "1".as_ref(), image]);
    let many = check(&["--json".as_ref(), "--jobs".as_ref(), "7".as_ref(), image]);
    assert_eq!(code(&one), 0);
    assert_eq!(one.stdout, many.stdout);
}

#[test]
fn a_tampered_module_fails_and_is_named() {
    let fx = fx();
    let want = format!("usr/lib/modules/{}/{FLIPPED}", fx.kver);
    for (name, image) in &fx.bad {
        let (out, rep) = check_json(image);
        assert_eq!(code(&out), 1, "{name}: {}", describe(&out));
        assert_eq!(rep.failed, 1, "{name}: {}", describe(&out));
        let bad: Vec<_> = rep.modules.iter().filter(|m| m.verdict != "ok").collect();
        assert_eq!(bad.len(), 1, "{name}");
        assert_eq!(bad[0].path, want, "{name}");
        assert_eq!(bad[0].verdict, "bad-signature", "{name}: {:?}", bad[0]);
        assert!(rep.verified >= 10, "{name}: the other modules still verify");
        let text = check(&[image.as_os_str()]);
        assert_eq!(code(&text), 1);
        let lines: Vec<String> = stdout(&text).lines().map(str::to_string).collect();
        assert!(
            lines[0].starts_with(&format!("{want}: bad-signature: ")),
            "{name}: {lines:?}"
        );
        assert_eq!(
            lines.last().unwrap(),
            &format!("{} verified, 1 failed", rep.verified)
        );
    }
}

#[test]
fn several_images_name_the_image_of_each_module() {
    let fx = fx();
    let (good, bad) = (&fx.good["gzip"], &fx.bad["early+xz"]);
    let out = check(&["--json".as_ref(), good.as_os_str(), bad.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let rep = verify_report(&out);
    let bad_paths: Vec<&str> = rep
        .modules
        .iter()
        .filter(|m| m.verdict != "ok")
        .map(|m| m.path.as_str())
        .collect();
    assert_eq!(
        bad_paths,
        [format!(
            "{}:usr/lib/modules/{}/{FLIPPED}",
            bad.display(),
            fx.kver
        )]
    );
    let from_good = rep
        .modules
        .iter()
        .filter(|m| m.path.starts_with(&format!("{}:", good.display())))
        .count();
    assert_eq!(from_good, lsinitrd_modules(good).len());
    // The failure names its member in a multi-member image.
    let text = check(&[bad.as_os_str()]);
    assert!(
        stdout(&text).contains("(in member 2, xz)"),
        "{}",
        describe(&text)
    );
    let early = std::fs::metadata(fx.dir.join("early.cpio")).unwrap().len();
    assert!(
        stderr(&text).contains(&format!("2 members (cpio at byte 0, xz at byte {early})")),
        "{}",
        describe(&text)
    );
}

/// The failure reports naming the image (not a module).
fn image_failures<'a>(rep: &'a VerifyReport, image: &Path) -> Vec<&'a ModuleReport> {
    rep.modules
        .iter()
        .filter(|m| m.path == image.display().to_string())
        .collect()
}

fn expect_image_failure(image: &Path, needles: &[&str]) -> VerifyReport {
    let (out, rep) = check_json(image);
    assert_eq!(code(&out), 1, "{}: {}", image.display(), describe(&out));
    let fails = image_failures(&rep, image);
    assert_eq!(fails.len(), 1, "{}: {}", image.display(), describe(&out));
    for n in needles {
        assert!(
            fails[0].reason.contains(n),
            "{}: {:?} lacks {n:?}",
            image.display(),
            fails[0].reason
        );
    }
    assert!(rep.failed >= 1);
    rep
}

#[test]
fn truncated_images_are_named_failures() {
    let fx = fx();
    for name in ["plain", "gzip", "xz", "zstd", "lz4", "lzma", "early+xz"] {
        let data = std::fs::read(&fx.good[name]).unwrap();
        // Cut inside the data, not the zero padding at the end (which the
        // kernel skips, so cutting it changes nothing).
        let end = data.iter().rposition(|&b| b != 0).unwrap() + 1;
        for cut in [end / 2, end - 1000, end - 1] {
            let path = fx.dir.join(format!("cut-{name}-{cut}.img"));
            std::fs::write(&path, &data[..cut]).unwrap();
            let member = if name == "early+xz" {
                "member 2"
            } else {
                "member 1"
            };
            let rep = expect_image_failure(&path, &[member, "byte"]);
            let reason = &image_failures(&rep, &path)[0].reason;
            assert!(
                reason.contains("truncated") || reason.contains("corrupt"),
                "{name} cut at {cut}: {reason}"
            );
            // Modules read before the cut still get their verdicts.
            assert!(rep
                .modules
                .iter()
                .all(|m| m.path == path.display().to_string() || m.verdict == "ok"));
        }
    }
    // The uncompressed image cut inside a module's data says so.
    let data = std::fs::read(&fx.good["plain"]).unwrap();
    let at = find(&data, b"kernel/fs/ext4/ext4.ko\0").unwrap() + 100_000;
    let path = fx.dir.join("cut-in-ext4.img");
    std::fs::write(&path, &data[..at]).unwrap();
    expect_image_failure(
        &path,
        &[
            "ext4.ko' at byte",
            "runs past the end of the data",
            "truncated archive",
        ],
    );
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Offset of the newc header whose name is `name`.
fn header_of(data: &[u8], name: &[u8]) -> usize {
    let at = find(data, name).unwrap();
    let hdr = at - 110;
    assert_eq!(&data[hdr..hdr + 6], b"070701");
    hdr
}

#[test]
fn corrupted_images_are_named_failures() {
    let fx = fx();
    let dir = &fx.dir;
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // A flipped byte in the middle of each compressed stream: each of these
    // formats has a checksum, so the member fails.
    for name in ["gzip", "xz", "zstd", "lzma"] {
        let mut data = std::fs::read(&fx.good[name]).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0x55;
        let p = write(&format!("flip-{name}.img"), &data);
        // A checksum, or a header the garbled data breaks first.
        expect_image_failure(&p, &["member 1 ("]);
    }
    // Legacy lz4 has none; a block size no legacy block can have is named.
    let mut data = std::fs::read(&fx.good["lz4"]).unwrap();
    data[4..8].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let p = write("lz4-block.img", &data);
    expect_image_failure(
        &p,
        &[
            "member 1 (lz4, at byte 0)",
            "larger than any legacy lz4 block",
        ],
    );

    let plain = std::fs::read(&fx.good["plain"]).unwrap();
    let ext4 = header_of(&plain, b"usr/lib/modules/");
    // A non-hex header field.
    let mut d = plain.clone();
    d[ext4 + 6 + 6 * 8] = b'z';
    let p = write("nonhex.img", &d);
    expect_image_failure(
        &p,
        &[
            "member 1 (cpio, at byte 0)",
            &format!("at byte {ext4}"),
            "non-hex c_filesize field",
        ],
    );
    // Name size 0 and over PATH_MAX.
    for (size, tag) in [("00000000", "0"), ("00001001", "4097")] {
        let mut d = plain.clone();
        d[ext4 + 6 + 11 * 8..ext4 + 6 + 12 * 8].copy_from_slice(size.as_bytes());
        let p = write(&format!("namesize-{tag}.img"), &d);
        expect_image_failure(&p, &[&format!("name size {tag} outside 1..=4096")]);
    }
    // A file size beyond the end of the image.
    let mut d = plain.clone();
    d[ext4 + 6 + 6 * 8..ext4 + 6 + 7 * 8].copy_from_slice(b"7FFFFFFF");
    let p = write("filesize.img", &d);
    expect_image_failure(
        &p,
        &[
            "file size 2147483647 runs past the end",
            "truncated archive",
        ],
    );
    // Bad magic, and the old odc format.
    let mut d = plain.clone();
    d[ext4..ext4 + 6].copy_from_slice(b"070707");
    let p = write("odc.img", &d);
    expect_image_failure(&p, &["070707", "newc"]);
    // Trailing garbage after the last archive.
    let mut d = std::fs::read(&fx.good["gzip"]).unwrap();
    let end = d.len();
    d.extend_from_slice(b"garbage!");
    let p = write("garbage.img", &d);
    expect_image_failure(&p, &["trailing garbage", &format!("at byte {end}")]);
    // Junk within a compressed archive (after its TRAILER!!!).
    let raw = run(Command::new("zstd").args(["-dc"]).arg(&fx.good["zstd"])).stdout;
    let mut junk = raw.clone();
    junk.extend_from_slice(b"JUNK");
    let p = write("junk.cpio", &junk);
    let z = dir.join("junk.img");
    run(Command::new("zstd")
        .args(["-q", "-f", "-o"])
        .arg(&z)
        .arg(&p));
    expect_image_failure(
        &z,
        &["junk within the compressed archive", "of the unpacked data"],
    );
    // No TRAILER!!!: the archive cut exactly after an entry.
    let t = find(&raw, b"TRAILER!!!").unwrap() - 110;
    let p = write("notrailer.img", &raw[..t]);
    expect_image_failure(&p, &["without a TRAILER!!! entry"]);
    // A cpio header at an offset that is not a multiple of 4.
    let mut d = vec![0u8; 2];
    d.extend_from_slice(&plain);
    let p = write("unaligned.img", &d);
    expect_image_failure(&p, &["at byte 2", "not a multiple of 4"]);
    // Not an initramfs at all.
    let p = write("text.img", b"hello world\n");
    expect_image_failure(&p, &["not an initramfs"]);
    let p = write("empty.img", b"");
    expect_image_failure(&p, &["no cpio archive"]);
}

#[test]
fn unsupported_compressions_are_named() {
    let fx = fx();
    let raw = run(Command::new("zstd").args(["-dc"]).arg(&fx.good["zstd"])).stdout;
    let raw_path = fx.dir.join("raw.cpio");
    std::fs::write(&raw_path, &raw).unwrap();
    for (tool, args, needle) in [
        (
            "bzip2",
            &["-c"][..],
            "bzip2-compressed, which modseal does not unpack",
        ),
        (
            "lz4",
            &["-c"][..],
            "an lz4 frame: the kernel unpacks only legacy lz4",
        ),
    ] {
        let out = run(Command::new(tool).args(args).arg(&raw_path));
        let p = fx.dir.join(format!("raw.{tool}.img"));
        std::fs::write(&p, &out.stdout).unwrap();
        expect_image_failure(&p, &[needle]);
    }
}

#[test]
fn bombs_are_named_failures_and_stay_small() {
    let fx = fx();
    // 4.6 GB of zeros in a 150 kB zstd stream: stopped at the 4 GiB cap,
    // without holding it.
    let bomb = fx.dir.join("bomb.zst");
    sh(&format!(
        "head -c 4600000000 /dev/zero | zstd -1 -q -T0 > {}",
        bomb.display()
    ));
    let out = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kb=%M"])
        .arg(modseal_bin())
        .args(["check-initramfs", "--json", "--trust"])
        .arg(&fx.trust)
        .arg(&bomb)
        .output()
        .expect("/usr/bin/time (apt-get install time)");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let rep = verify_report(&out);
    let f = image_failures(&rep, &bomb);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].reason
            .contains("member 1 (zstd, at byte 0): decompression bomb: more than 4294967296 bytes"),
        "{}",
        f[0].reason
    );
    let rss: u64 = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {}", stderr(&out)));
    assert!(rss < 64 * 1024, "peak RSS {rss} kB for a 4 GiB bomb");

    // The cap is per image and adjustable: a real gzip image over a small cap.
    let out = check(&[
        "--json".as_ref(),
        "--max-unpacked".as_ref(),
        "1000000".as_ref(),
        fx.good["gzip"].as_os_str(),
    ]);
    assert_eq!(code(&out), 1);
    let rep = verify_report(&out);
    let f = image_failures(&rep, &fx.good["gzip"]);
    assert!(
        f[0].reason
            .contains("decompression bomb: more than 1000000 bytes"),
        "{}",
        f[0].reason
    );

    // Too many entries: 2^20 + 1 empty files in a gzip stream.
    let mut raw = Vec::new();
    for i in 0..(1u32 << 20) + 1 {
        newc(&mut raw, i, 0o100644, 1, &format!("f{i:x}"), b"");
    }
    trailer(&mut raw);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let p = fx.dir.join("many.img");
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    expect_image_failure(&p, &["more than 1048576 entries"]);
}

#[test]
fn a_uki_is_read_through_its_initrd_section() {
    let fx = fx();
    // Covered with the good and bad images above; here the PE edge cases.
    let (out, _) = check_json(Path::new(STUB));
    assert_eq!(code(&out), 1);
    let rep = expect_image_failure(
        Path::new(STUB),
        &["a PE file without an .initrd section", ".sdmagic"],
    );
    assert!(rep.modules.len() == 1);
    let k = kernel();
    expect_image_failure(&k.vmlinuz, &["without an .initrd section"]);
    // A file cut inside the .initrd section: the section table says more.
    let uki = std::fs::read(&fx.good["uki"]).unwrap();
    let zstd_at = find(&uki, &[0x28, 0xb5, 0x2f, 0xfd]).unwrap();
    let initrd_len = std::fs::metadata(&fx.good["zstd"]).unwrap().len() as usize;
    let p = fx.dir.join("short-uki.efi");
    std::fs::write(&p, &uki[..zstd_at + initrd_len - 1000]).unwrap();
    expect_image_failure(&p, &["section .initrd runs past the end of the file"]);
    // A member failure inside the section names the section.
    let mut uki = uki;
    uki[zstd_at + 100_000] ^= 0xff;
    let p = fx.dir.join("corrupt-uki.efi");
    std::fs::write(&p, &uki).unwrap();
    expect_image_failure(
        &p,
        &[&format!(
            "section .initrd (file offset {zstd_at}): member 1 (zstd, at byte 0)"
        )],
    );
}

// ------------------------------------------------------------------ newc by hand

fn newc(out: &mut Vec<u8>, ino: u32, mode: u32, nlink: u32, name: &str, data: &[u8]) {
    let hdr = format!(
        "070701{ino:08X}{mode:08X}{:08X}{:08X}{nlink:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        0,
        0,
        0,
        data.len(),
        3,
        1,
        0,
        0,
        name.len() + 1,
        0
    );
    out.extend_from_slice(hdr.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn trailer(out: &mut Vec<u8>) {
    newc(out, 0, 0, 1, "TRAILER!!!", b"");
}

fn good_module() -> Vec<u8> {
    std::fs::read(fx().good_tree.join(FLIPPED)).unwrap()
}

fn bad_module() -> Vec<u8> {
    std::fs::read(fx().bad_tree.join(FLIPPED)).unwrap()
}

fn write_image(name: &str, data: &[u8]) -> PathBuf {
    let p = fx().dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn verdicts(image: &Path) -> (i32, Vec<(String, String, String)>) {
    let (out, rep) = check_json(image);
    (
        code(&out),
        rep.modules
            .into_iter()
            .map(|m| (m.path, m.verdict, m.reason))
            .collect(),
    )
}

/// A host enrollment for `--expect-modseal`: modseal.conf naming a trust
/// bundle and a sealed directory under `dir`.
struct Host {
    conf: PathBuf,
    bundle: PathBuf,
    sealed: PathBuf,
}

fn host_enrollment() -> Host {
    let dir = fx().dir.join("expect-modseal");
    let sealed = dir.join("sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    let bundle = dir.join("trust.bundle");
    std::fs::copy(&fx().trust, &bundle).unwrap();
    for f in ["sealed.json", "sealed.pub", "sealed.priv"] {
        std::fs::write(sealed.join(f), f).unwrap();
    }
    let conf = dir.join("modseal.conf");
    let text = format!(
        "trust = {}\nsealed = \"{}\"  # as enrolled\n",
        bundle.display(),
        sealed.display()
    );
    std::fs::write(&conf, text).unwrap();
    Host {
        conf,
        bundle,
        sealed,
    }
}

/// An image with a good module and, as the dracut module installs them,
/// modseal's files (the bundle's bytes given; `None`: none of them).
fn modseal_image(name: &str, host: &Host, bundle: Option<&[u8]>) -> PathBuf {
    let mut img = Vec::new();
    let module = format!("usr/lib/modules/{}/{FLIPPED}", fx().kver);
    newc(&mut img, 1, 0o100644, 1, &module, &good_module());
    if let Some(b) = bundle {
        let rel = |p: &Path| p.to_str().unwrap().trim_start_matches('/').to_owned();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("usr/bin/modseal".into(), b"\x7fELF static".to_vec()),
            ("etc/modseal/modseal.conf".into(), b"trust = x".to_vec()),
            (rel(&host.bundle), b.to_vec()),
        ];
        for f in ["sealed.json", "sealed.pub", "sealed.priv"] {
            files.push((rel(&host.sealed.join(f)), f.as_bytes().to_vec()));
        }
        for (i, (path, data)) in files.iter().enumerate() {
            newc(&mut img, i as u32 + 2, 0o100644, 1, path, data);
        }
    }
    trailer(&mut img);
    write_image(name, &img)
}

#[test]
fn expect_modseal_fails_an_image_without_modseal_or_with_another_bundle() {
    let host = host_enrollment();
    let bundle = std::fs::read(&host.bundle).unwrap();
    let expect = |image: &Path| {
        check(&[
            "--expect-modseal".as_ref(),
            host.conf.as_os_str(),
            image.as_os_str(),
        ])
    };
    let with = modseal_image("with-modseal.cpio", &host, Some(&bundle));
    let out = expect(&with);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // Without the option the same modules pass whatever else is there.
    let without = modseal_image("without-modseal.cpio", &host, None);
    assert_eq!(code(&check(&[without.as_os_str()])), 0);
    let out = expect(&without);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = stderr(&out);
    let shown = without.display().to_string();
    for needle in [
        format!("{shown}: /usr/bin/modseal is not in the image"),
        format!("{shown}: /etc/modseal/modseal.conf is not in the image"),
        format!("{shown}: {} is not in the image", host.bundle.display()),
        format!(
            "{shown}: {} is not in the image",
            host.sealed.join("sealed.priv").display()
        ),
        format!("{shown}: does not carry modseal as enrolled on this machine"),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in {err}");
    }
    let mut other = bundle.clone();
    other.extend_from_slice(b"\n# another bundle\n");
    let another = modseal_image("another-bundle.cpio", &host, Some(&other));
    let out = expect(&another);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let sha = |b: &[u8]| modseal::util::hex::lower(&modseal::verify::algorithm::sha256(b));
    let needle = format!(
        "{}: {} differs from the host's {} (SHA-256 {} in the image, {} on the host)",
        another.display(),
        host.bundle.display(),
        host.bundle.display(),
        sha(&other),
        sha(&bundle)
    );
    assert!(stderr(&out).contains(&needle), "{}", describe(&out));
    assert!(!stderr(&out).contains("is not in the image"));
    // A host configuration that cannot be read is a usage error.
    let missing = fx().dir.join("no-such.conf");
    let out = check(&[
        "--expect-modseal".as_ref(),
        missing.as_os_str(),
        with.as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
}

#[test]
fn hard_links_get_the_data_of_their_last_link() {
    let fx = fx();
    let kver = &fx.kver;
    // GNU cpio's own layout: two names of one inode, data with the last.
    let stage = fx.dir.join("hl-stage");
    let _ = std::fs::remove_dir_all(&stage);
    let moddir = stage.join(format!("usr/lib/modules/{kver}/kernel/lib"));
    std::fs::create_dir_all(&moddir).unwrap();
    for (tree, name) in [(&fx.good_tree, "hl-good.img"), (&fx.bad_tree, "hl-bad.img")] {
        let _ = std::fs::remove_file(moddir.join("crc16.ko"));
        let _ = std::fs::remove_file(moddir.join("crc16-alias.ko"));
        std::fs::copy(tree.join(FLIPPED), moddir.join("crc16.ko")).unwrap();
        std::fs::hard_link(moddir.join("crc16.ko"), moddir.join("crc16-alias.ko")).unwrap();
        let img = fx.dir.join(name);
        sh(&format!(
            "cd {} && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -n > {}",
            stage.display(),
            img.display()
        ));
        let listing = run(Command::new("bash")
            .arg("-c")
            .arg(format!("zcat {} | cpio -tv 2>/dev/null", img.display())));
        let listing = stdout(&listing);
        assert!(
            listing.lines().any(|l| l.contains(" 2 root")
                && l.contains(" 0 ")
                && l.ends_with("crc16-alias.ko")),
            "cpio did not store the first link empty:\n{listing}"
        );
        let (rc, v) = verdicts(&img);
        let want = if name == "hl-good.img" {
            "ok"
        } else {
            "bad-signature"
        };
        assert_eq!(rc, if want == "ok" { 0 } else { 1 });
        assert_eq!(v.len(), 2, "{v:?}");
        for (path, verdict, _) in &v {
            assert_eq!(verdict, want, "{name}: {path}: {v:?}");
        }
        let alias = v
            .iter()
            .find(|(p, _, _)| p.ends_with("crc16-alias.ko"))
            .unwrap();
        assert!(alias.2.contains("its data is stored with"), "{alias:?}");
    }

    let (good, bad) = (good_module(), bad_module());
    // Data first (as some writers do), then a link without data: the kernel
    // keeps the data (no O_TRUNC for a link).
    let mut a = Vec::new();
    newc(&mut a, 7, 0o100644, 2, "m/a.ko", &good);
    newc(&mut a, 7, 0o100644, 2, "m/b.ko", b"");
    trailer(&mut a);
    let (rc, v) = verdicts(&write_image("hl-first.img", &a));
    assert_eq!(rc, 0, "{v:?}");
    assert!(v.iter().all(|(_, verdict, _)| verdict == "ok"), "{v:?}");

    // A second body for the inode replaces the first: the good one first,
    // the tampered one last. Both names get the last (and the image is
    // flagged: newc writers store the data once).
    let mut a = Vec::new();
    newc(&mut a, 7, 0o100644, 2, "m/a.ko", &good);
    newc(&mut a, 7, 0o100644, 2, "m/b.ko", &bad);
    trailer(&mut a);
    let p = write_image("hl-two-bodies.img", &a);
    let (rc, v) = verdicts(&p);
    assert_eq!(rc, 1);
    let a_row = v.iter().find(|(p, _, _)| p == "m/a.ko").unwrap();
    assert_eq!(
        a_row.1, "bad-signature",
        "a.ko is the tampered inode: {v:?}"
    );
    assert!(v
        .iter()
        .any(|(path, verdict, r)| path == &p.display().to_string()
            && verdict == "malformed"
            && r.contains("second body")));

    // The data with a name that is not a module, the module name after it:
    // it went past unread, so the module is not taken as checked.
    let mut a = Vec::new();
    newc(&mut a, 9, 0o100644, 2, "m/blob", &good);
    newc(&mut a, 9, 0o100644, 2, "m/c.ko", b"");
    trailer(&mut a);
    let (rc, v) = verdicts(&write_image("hl-late.img", &a));
    assert_eq!(rc, 1);
    assert_eq!(v[0].0, "m/c.ko");
    assert_eq!(v[0].1, "malformed");
    assert!(v[0].2.contains("not checked"), "{v:?}");

    // Writing through a hard link's name: a plain file named like a link
    // of a group changes the group's inode; flagged.
    let mut a = Vec::new();
    newc(&mut a, 7, 0o100644, 2, "m/x", b"");
    newc(&mut a, 7, 0o100644, 2, "m/y.ko", &good);
    trailer(&mut a);
    newc(&mut a, 8, 0o100644, 1, "m/x", &bad);
    trailer(&mut a);
    let p = write_image("hl-write-through.img", &a);
    let (rc, v) = verdicts(&p);
    assert_eq!(rc, 1);
    assert!(
        v.iter().any(|(path, _, r)| path == &p.display().to_string()
            && r.contains("reuses the name of a hard link")),
        "{v:?}"
    );

    // TRAILER!!! ends the link scope: the same inode number after it is a
    // new file, not a link to the one before.
    let mut a = Vec::new();
    newc(&mut a, 7, 0o100644, 2, "m/p.ko", &bad);
    trailer(&mut a);
    newc(&mut a, 7, 0o100644, 2, "m/q.ko", &good);
    trailer(&mut a);
    let (_, v) = verdicts(&write_image("hl-scope.img", &a));
    let q = v.iter().find(|(p, _, _)| p == "m/q.ko").unwrap();
    let p_ = v.iter().find(|(p, _, _)| p == "m/p.ko").unwrap();
    assert_eq!(
        (p_.1.as_str(), q.1.as_str()),
        ("bad-signature", "ok"),
        "{v:?}"
    );
}

#[test]
fn entries_the_kernel_would_not_create_as_modules() {
    let good = good_module();
    let mut a = Vec::new();
    // Unsafe paths: reported, never followed; the module inside still checked.
    newc(&mut a, 1, 0o100644, 1, "../../escape.ko", &good);
    newc(&mut a, 2, 0o100644, 1, "/abs/mod.ko", &good);
    newc(&mut a, 3, 0o100644, 1, "../etc/passwd", b"x");
    // A symlink and a fifo named like modules.
    newc(&mut a, 4, 0o120777, 1, "m/link.ko", b"elsewhere");
    newc(&mut a, 5, 0o010644, 1, "m/fifo.ko", b"");
    // A directory named like one is a directory (as `verify` recurses it).
    newc(&mut a, 6, 0o040755, 2, "m/dir.ko", b"");
    newc(&mut a, 7, 0o100644, 1, "./m/fine.ko", &good);
    trailer(&mut a);
    let cwd = tempfile::tempdir().unwrap();
    let p = write_image("odd-entries.img", &a);
    let out = Command::new(modseal_bin())
        .current_dir(cwd.path())
        .args(["check-initramfs", "--json", "--trust"])
        .arg(&fx().trust)
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let rep = verify_report(&out);
    let v: BTreeMap<&str, (&str, &str)> = rep
        .modules
        .iter()
        .map(|m| (m.path.as_str(), (m.verdict.as_str(), m.reason.as_str())))
        .collect();
    assert_eq!(v.len(), 5, "{v:?}");
    for unsafe_path in ["../../escape.ko", "/abs/mod.ko"] {
        let (verdict, reason) = v[unsafe_path];
        assert_eq!(verdict, "malformed");
        assert!(
            reason.contains("'..' (reported, not followed); the module itself verifies"),
            "{reason}"
        );
    }
    assert_eq!(v["m/link.ko"].0, "io-error");
    assert!(v["m/link.ko"].1.contains("a symbolic link to 'elsewhere'"));
    assert_eq!(v["m/fifo.ko"], ("io-error", "not a regular file (a fifo)"));
    assert_eq!(v["m/fine.ko"].0, "ok");
    assert!(
        stderr(&out).contains("'../etc/passwd'") && stderr(&out).contains("reported, not followed"),
        "{}",
        describe(&out)
    );
    // Nothing was written anywhere.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
    assert!(!Path::new("/escape.ko").exists() && !Path::new("/abs/mod.ko").exists());
}

#[test]
fn crc_newc_is_read_and_its_sums_checked() {
    let fx = fx();
    let stage = fx.dir.join("crc-stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("m")).unwrap();
    std::fs::copy(fx.good_tree.join(FLIPPED), stage.join("m/crc16.ko")).unwrap();
    std::fs::write(
        stage.join("m/notes.txt"),
        b"some text that is not a module\n",
    )
    .unwrap();
    let img = fx.dir.join("crc.img");
    sh(&format!(
        "cd {} && find . | sort | cpio -o -H crc --quiet -R 0:0 > {}",
        stage.display(),
        img.display()
    ));
    let data = std::fs::read(&img).unwrap();
    assert!(data.starts_with(b"070702"));
    let (rc, v) = verdicts(&img);
    assert_eq!(rc, 0, "{v:?}");
    assert_eq!(v.len(), 1);
    // One byte of the text file changed: its sum no longer matches.
    let mut d = data.clone();
    let at = find(&d, b"some text").unwrap();
    d[at] = b'S';
    let p = write_image("crc-bad.img", &d);
    expect_image_failure(&p, &["notes.txt", "bad data checksum (070702 archive)"]);
}

#[test]
fn an_image_without_modules_says_so() {
    let fx = fx();
    let base = &fx.concat_parts[0];
    let (out, rep) = check_json(base);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert_eq!((rep.verified, rep.failed), (0, 0));
    assert!(
        stderr(&out).contains("no kernel module in the image"),
        "{}",
        describe(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let fx = fx();
    let missing = modseal([
        "check-initramfs",
        "--trust",
        "/nonexistent/kernel.pem",
        fx.good["gzip"].to_str().unwrap(),
    ]);
    assert_eq!(code(&missing), 2, "{}", describe(&missing));
    let no_trust = modseal(["check-initramfs", fx.good["gzip"].to_str().unwrap()]);
    assert_eq!(code(&no_trust), 2);
    let no_image = modseal(["check-initramfs", "--trust", fx.trust.to_str().unwrap()]);
    assert_eq!(code(&no_image), 2);
    let bad_jobs = modseal([
        "check-initramfs",
        "--jobs",
        "0",
        "--trust",
        fx.trust.to_str().unwrap(),
        "x",
    ]);
    assert_eq!(code(&bad_jobs), 2);
    // A missing image is an I/O failure of that image, as `verify` treats a
    // missing path.
    let (out, rep) = check_json(Path::new("/nonexistent/initrd.img"));
    assert_eq!(code(&out), 1);
    assert_eq!(rep.modules[0].verdict, "io-error");
    assert_eq!(rep.modules[0].path, "/nonexistent/initrd.img");
    // Neither a directory nor a FIFO is read (the FIFO must not block).
    let fifo = fx.dir.join("fifo.img");
    let _ = std::fs::remove_file(&fifo);
    run(Command::new("mkfifo").arg(&fifo));
    for p in [fx.dir.as_path(), fifo.as_path()] {
        let (out, rep) = check_json(p);
        assert_eq!(code(&out), 1);
        assert_eq!(
            (
                rep.modules[0].verdict.as_str(),
                rep.modules[0].reason.as_str()
            ),
            ("io-error", "not a regular file")
        );
    }
}

// ------------------------------------------- kernel-signer bundles: derived anchors

/// Where Debian's `shim-unsigned` installs the Secure Boot CA.
const DEBIAN_CA: &str = "/usr/share/shim/debian-uefi-ca.der";
/// Real bookworm modules, signed by the key built into the bookworm kernel.
const SIGNED: [&str; 2] = ["kernel/lib/crc16.ko", "kernel/fs/mbcache.ko"];

/// A bundle whose only trust is the Debian Secure Boot CA as a kernel
/// signer, and the derived anchors of the real kernels.
struct Signer {
    dir: PathBuf,
    bundle: PathBuf,
    kver: String,
    tree: PathBuf,
    bookworm: modseal::trust::derived::DerivedAnchor,
    trixie: modseal::trust::derived::DerivedAnchor,
}

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| {
        let dir = repo().join("target/check-initramfs-derived");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca = std::fs::read(DEBIAN_CA).unwrap_or_else(|e| {
            panic!("{DEBIAN_CA}: {e}: install Debian's shim-unsigned (scripts/setup.sh)")
        });
        let ca = modseal::trust::cert::Certificate::from_der(&ca).unwrap();
        let bundle = dir.join("signer.bundle");
        let b = modseal([
            OsString::from("bundle"),
            "--kernel-signer".into(),
            DEBIAN_CA.into(),
            "--out".into(),
            bundle.clone().into(),
        ]);
        assert_eq!(code(&b), 0, "{}", describe(&b));
        let derive = |suite: &str| {
            let image = std::fs::read(vmlinuz(suite)).unwrap();
            let kver = kernel_var(suite, "KVER");
            modseal::image::derive::derive_anchor(&image, std::slice::from_ref(&ca), &kver)
                .unwrap_or_else(|e| panic!("{suite}: {e}"))
        };
        let (_, tree) = bookworm();
        Signer {
            dir,
            bundle,
            kver: bookworm_var("KVER"),
            tree,
            bookworm: derive("bookworm"),
            trixie: derive("trixie"),
        }
    })
}

/// An uncompressed image of the bookworm modules of [`SIGNED`] and
/// `extra` (path in the tree, bytes) in `usr/lib/modules/<kver>`, with
/// `derived` at etc/modseal/derived-anchor (none: no file).
fn derived_image(
    name: &str,
    derived: Option<&modseal::trust::derived::DerivedAnchor>,
    extra: &[(&str, Vec<u8>)],
) -> PathBuf {
    let s = signer();
    let mut img = Vec::new();
    let mut ino = 1;
    let mut add = |img: &mut Vec<u8>, path: &str, data: &[u8]| {
        newc(img, ino, 0o100644, 1, path, data);
        ino += 1;
    };
    for m in SIGNED {
        let data = std::fs::read(s.tree.join(m)).unwrap();
        add(&mut img, &format!("usr/lib/modules/{}/{m}", s.kver), &data);
    }
    for (m, data) in extra {
        add(&mut img, &format!("usr/lib/modules/{}/{m}", s.kver), data);
    }
    if let Some(d) = derived {
        let text = modseal::trust::derived::render_derived(d);
        add(&mut img, "etc/modseal/derived-anchor", text.as_bytes());
    }
    trailer(&mut img);
    let p = s.dir.join(name);
    std::fs::write(&p, img).unwrap();
    p
}

fn check_signed(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut a: Vec<OsString> = vec![
        "check-initramfs".into(),
        "--trust".into(),
        signer().bundle.clone().into(),
    ];
    a.extend(args.iter().map(|s| s.as_ref().to_os_string()));
    modseal(a)
}

/// `0123456789abcdef…` of a certificate's DER SHA-256, and its name.
fn cert_named(c: &modseal::trust::cert::Certificate) -> String {
    let sha = modseal::util::hex::lower(&modseal::verify::algorithm::sha256(&c.der));
    format!("certificate {}… ({})", &sha[..16], c.name)
}

#[test]
fn a_kernel_signer_bundle_trusts_the_kernel_s_own_derived_anchor() {
    let s = signer();
    let good = derived_image("good-derived.img", Some(&s.bookworm), &[]);
    let (b, t) = (vmlinuz("bookworm"), vmlinuz("trixie"));
    let out = check_signed(&[&"--kernel", &b, &"--json", &good]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let rep = verify_report(&out);
    assert_eq!(
        (rep.verified, rep.failed),
        (SIGNED.len() as u64, 0),
        "{}",
        describe(&out)
    );
    // Several kernels: the one of the anchor's digest is used.
    let out = check_signed(&[&"--kernel", &t, &"--kernel", &b, &good]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // Two images, each against its own anchor, named as before.
    let out = check_signed(&[&"--kernel", &b, &"--json", &good, &good]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let rep = verify_report(&out);
    assert!(
        rep.modules[0]
            .path
            .starts_with(&format!("{}:usr/lib/modules/", good.display())),
        "{}",
        describe(&out)
    );
    // The bundle alone holds no module anchor: without the derived anchor
    // nothing verifies, and without --kernel the command says what to add.
    let out = check_signed(&[&good]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "modseal: error: the trust bundle has kernel-signer certificates: give --kernel VMLINUZ \
         (the kernel the images are for; repeatable), so that each image's derived anchor \
         (/etc/modseal/derived-anchor) is checked against it before it is trusted\n"
    );
    // --kernel with a bundle that has no kernel signer.
    let cert = fixtures().join("keys/rsa2048.crt");
    let out = modseal([
        OsString::from("check-initramfs"),
        "--trust".into(),
        cert.into(),
        "--kernel".into(),
        b.into(),
        good.into(),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stderr(&out).contains("no --trust file has one"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_swapped_derived_certificate_is_refused_naming_it() {
    // The attack: the image's derived anchor replaced by the attacker's
    // certificate (the kernel digest left as it was), and a module signed
    // with the attacker's key.
    let s = signer();
    let keys = fixtures().join("keys");
    let attacker = modseal::trust::cert::Certificate::from_der(
        &std::fs::read(keys.join("rsa2048.der")).unwrap(),
    )
    .unwrap();
    let mut forged = s.bookworm.clone();
    forged.certs = vec![attacker.clone()];
    let evil = std::fs::read(fixtures().join("modules/rsa2048-sha256.ko")).unwrap();
    let img = derived_image(
        "swapped.img",
        Some(&forged),
        &[("kernel/evil.ko", evil.clone())],
    );
    let out = check_signed(&[&"--kernel", &vmlinuz("bookworm"), &img]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "modseal: {}: /etc/modseal/derived-anchor is not the anchor kernel {} yields: {} is not built into it\n",
            img.display(),
            vmlinuz("bookworm").display(),
            cert_named(&attacker)
        )),
        "{}",
        describe(&out)
    );
    // The attacker's certificate added to the kernel's: still refused.
    forged.certs = [s.bookworm.certs.clone(), vec![attacker.clone()]].concat();
    let img = derived_image("added.img", Some(&forged), &[("kernel/evil.ko", evil)]);
    let out = check_signed(&[&"--kernel", &vmlinuz("bookworm"), &img]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains(&cert_named(&attacker)),
        "{}",
        describe(&out)
    );
}

#[test]
fn another_kernel_s_anchor_or_none_is_refused() {
    let s = signer();
    let b = vmlinuz("bookworm");
    let bookworm_sha = modseal::util::hex::lower(&s.bookworm.kernel_sha256);
    // The trixie kernel's own anchor, in an image checked for bookworm.
    let img = derived_image("trixie-anchor.img", Some(&s.trixie), &[]);
    let out = check_signed(&[&"--kernel", &b, &img]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains(&format!(
            "modseal: {}: /etc/modseal/derived-anchor is the anchor of kernel {} (release {}), which is none of the --kernel images ({}: kernel {bookworm_sha})\n",
            img.display(),
            modseal::util::hex::lower(&s.trixie.kernel_sha256),
            s.trixie.release,
            b.display()
        )),
        "{}",
        describe(&out)
    );
    // With trixie among the kernels, the anchor is trixie's: the bookworm
    // modules do not verify against it.
    let out = check_signed(&[&"--kernel", &b, &"--kernel", &vmlinuz("trixie"), &img]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(stdout(&out).contains("unknown-key"), "{}", describe(&out));
    // No anchor at all.
    let none = derived_image("no-anchor.img", None, &[]);
    let out = check_signed(&[&"--kernel", &b, &none]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains(&format!(
            "modseal: {}: no /etc/modseal/derived-anchor: the trust bundle has kernel-signer certificates",
            none.display()
        )),
        "{}",
        describe(&out)
    );
    // An image that is not a kernel-signed one, given as the kernel.
    let out = check_signed(&[&"--kernel", &none, &img]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(stderr(&out).contains("Authenticode"), "{}", describe(&out));
}
