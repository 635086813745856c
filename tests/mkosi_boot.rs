//! Boot tests of the mkosi image (mkosi/): a Debian bookworm image built by
//! mkosi 25 with the kernel, systemd and dracut, and modseal installed from
//! its Debian package with the image's own apt and enabled, whose initramfs
//! the image's own dracut made (with the modseal dracut module's build-time
//! check). Booted under QEMU (TCG) with the image's kernel and initramfs, an
//! ext4 root made from the image tree, and the swtpm state the enrollment
//! was made in (qemu/boot.sh).
//!
//! `mkosi/build.sh` builds once and leaves an up-to-date image alone, so the
//! tests share one build. It installs the package MODSEAL_DEB names
//! (scripts/test.sh's package stage builds and lints it; the variable
//! reaches build.sh through this process's environment), else one it builds
//! from MODSEAL_BIN. Needs root, the static musl binary (MODSEAL_BIN), swtpm,
//! qemu-system-x86, cpio, e2fsprogs, chroot and the package registry
//! (scripts/setup.sh); a missing tool fails the test, nothing is skipped.
//! Artefacts stay in target/mkosi-boot/.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use common::{base64_decode, code, describe, modseal, repo, run, static_bin, work_root};

/// What mkosi/build.sh made (its OUTDIR/env).
struct Image {
    /// The image's tree (mkosi's Format=directory output).
    tree: PathBuf,
    kver: String,
    vmlinuz: PathBuf,
    initrd: PathBuf,
    root: PathBuf,
    tpmstate: PathBuf,
    bundle: PathBuf,
    /// The image's initramfs unpacked (cpio), for predict and the tampering.
    unpacked: PathBuf,
    /// Bytes of an early (microcode) cpio in front of the main archive.
    early: Vec<u8>,
}

impl Image {
    /// The module directory inside the unpacked initramfs.
    fn modules(&self) -> PathBuf {
        let usr = self.unpacked.join("usr/lib/modules").join(&self.kver);
        if usr.is_dir() {
            usr
        } else {
            self.unpacked.join("lib/modules").join(&self.kver)
        }
    }
}

/// Builds the image once per test process (build.sh itself skips the build
/// when its stamp says the image is up to date).
fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = work_root().join("image");
        std::fs::create_dir_all(&out).unwrap();
        let t = Instant::now();
        let mut cmd = Command::new(repo().join("mkosi/build.sh"));
        cmd.arg(&out).env("MODSEAL_BIN", static_bin());
        let res = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run mkosi/build.sh: {e}"));
        let log = work_root().join("build.log");
        std::fs::write(
            &log,
            [res.stdout.as_slice(), res.stderr.as_slice()].concat(),
        )
        .unwrap();
        assert!(
            res.status.success(),
            "mkosi/build.sh failed (full log: {})\n{}",
            log.display(),
            tail(&String::from_utf8_lossy(&res.stderr), 60)
        );
        eprintln!(
            "mkosi/build.sh: {:.1} s ({})",
            t.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&res.stderr)
                .lines()
                .rev()
                .find(|l| l.starts_with("mkosi/build: "))
                .unwrap_or("")
        );

        let env = std::fs::read_to_string(out.join("env")).unwrap();
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{}/env has no {k}", out.display()))
                .to_owned()
        };
        let initrd = PathBuf::from(get("INITRD"));
        // Made by the image's dracut (mkosi.postinst.chroot), not by the
        // test harness's qemu/build-initramfs.sh.
        assert!(
            initrd.starts_with(out.join("image/boot")),
            "{}",
            initrd.display()
        );

        let (early, unpacked) = unpack(&initrd, &work_root().join("initrd"));
        let img = Image {
            tree: get("IMAGE").into(),
            kver: get("KVER"),
            vmlinuz: get("VMLINUZ").into(),
            initrd,
            root: get("ROOT").into(),
            tpmstate: get("TPMSTATE").into(),
            bundle: get("BUNDLE").into(),
            unpacked,
            early,
        };
        // The image's initramfs holds modseal, its configuration and
        // enrollment, and the systemd units of the dracut module.
        for f in [
            "usr/bin/modseal",
            "etc/modseal/modseal.conf",
            "etc/modseal/trust.bundle",
            "etc/modseal/sealed/sealed.json",
            "usr/lib/systemd/system/modseal-early.service",
            "usr/lib/systemd/system/modseal-pre-pivot.service",
        ] {
            assert!(
                img.unpacked.join(f).exists(),
                "the image's initramfs has no {f}"
            );
        }
        // dracut records how it was called: by the image's postinst script
        // with the image's own configuration, not with a module directory or
        // configuration from outside.
        let params =
            std::fs::read_to_string(img.unpacked.join("usr/lib/dracut/build-parameter.txt"))
                .unwrap_or_default();
        assert!(
            params.contains("--kver")
                && !params.contains("--kmoddir")
                && !params.contains("--conf"),
            "unexpected dracut parameters in the image's initramfs: {params:?}"
        );
        img
    })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Unpacks an initramfs (uncompressed newc, as the image's dracut.conf.d
/// asks for) into `dir`; returns the early cpio's bytes if it has one.
fn unpack(initrd: &Path, dir: &Path) -> (Vec<u8>, PathBuf) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let data = std::fs::read(initrd).unwrap();
    assert!(
        data.starts_with(b"070701"),
        "{} is not an uncompressed newc cpio archive (the image's dracut.conf.d sets compress=\"cat\")",
        initrd.display()
    );
    let early_len = early_cpio_len(&data);
    let early = data[..early_len].to_vec();
    let main = dir.with_extension("main.cpio");
    std::fs::write(&main, &data[early_len..]).unwrap();
    run(Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames", "-F"])
        .arg(&main)
        .current_dir(dir));
    std::fs::remove_file(&main).unwrap();
    (early, dir.to_path_buf())
}

/// The length of dracut's early cpio (microcode), 0 if the first archive
/// is not one: it is the first archive when it holds `early_cpio`, and ends
/// after its TRAILER!!! entry, padded to 512 bytes (dracut's cpio
/// --reproducible output is padded to blocks).
fn early_cpio_len(data: &[u8]) -> usize {
    let mut off = 0usize;
    let mut early = false;
    while off + 110 <= data.len() && &data[off..off + 6] == b"070701" {
        let field = |i: usize| {
            let s = std::str::from_utf8(&data[off + 6 + 8 * i..off + 14 + 8 * i]).unwrap();
            usize::from_str_radix(s, 16).unwrap()
        };
        let (filesize, namesize) = (field(6), field(11));
        let name = &data[off + 110..off + 110 + namesize - 1];
        if name == b"early_cpio" || name == b"./early_cpio" {
            early = true;
        }
        let pad4 = |n: usize| (n + 3) & !3;
        let next = pad4(off + 110 + namesize);
        let next = pad4(next + filesize);
        if name == b"TRAILER!!!" {
            if !early {
                return 0;
            }
            // Zero padding up to the next archive.
            let mut end = next;
            while end < data.len() && data[end] == 0 {
                end += 1;
            }
            return end;
        }
        off = next;
    }
    0
}

/// One boot's outcome.
struct Boot {
    dir: PathBuf,
    result: String,
    serial: String,
    pcrs: BTreeMap<u8, String>,
    init: Option<String>,
    log: Option<PathBuf>,
    /// The firmware's event log (what systemd-boot and the EFI stub
    /// measured before the initramfs).
    firmware_log: Option<PathBuf>,
}

impl Boot {
    fn context(&self) -> String {
        let lines: Vec<&str> = self
            .serial
            .lines()
            .filter(|l| {
                (l.contains("modseal") && !l.contains("MODSEAL-KMSG"))
                    || l.contains("MODSEAL-ROOT")
                    || l.contains("reboot:")
            })
            .collect();
        format!(
            "boot in {} ended '{}'; modseal lines:\n{}",
            self.dir.display(),
            self.result,
            lines.join("\n")
        )
    }

    /// modseal's stage summary line for `stage`, as the kernel logged it.
    fn summary(&self, stage: &str) -> &str {
        let tag = format!("modseal: {stage} stage: ");
        self.serial
            .lines()
            .find(|l| l.contains(&tag) && !l.contains("MODSEAL-"))
            .unwrap_or_else(|| panic!("no {stage} stage summary\n{}", self.context()))
    }

    fn pcr(&self, i: u8) -> &str {
        self.pcrs
            .get(&i)
            .unwrap_or_else(|| panic!("PCR {i} not reported\n{}", self.context()))
    }
}

/// Boots the image's kernel with `initrd`, the image's root and a copy of
/// the enrolled TPM state.
fn boot(name: &str, initrd: &Path) -> Boot {
    let img = image();
    let dir = work_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("tpm");
    run(Command::new("cp").arg("-a").arg(&img.tpmstate).arg(&state));
    let serial = dir.join("serial.log");
    let t = Instant::now();
    let out = Command::new(repo().join("qemu/boot.sh"))
        .arg("--kernel")
        .arg(&img.vmlinuz)
        .arg("--initrd")
        .arg(initrd)
        .arg("--root")
        .arg(&img.root)
        .arg("--serial")
        .arg(&serial)
        .arg("--tpmstate")
        .arg(&state)
        // boot.sh's own init= (the busybox test root's) comes first on the
        // command line; the last init= is the one dracut and systemd use.
        .arg("--append")
        .arg("loglevel=7 init=/lib/systemd/systemd")
        .arg("--timeout")
        .arg("480")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run qemu/boot.sh: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let result = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("boot: result="))
        .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("qemu/boot.sh gave no result\n{}", describe(&out)));
    eprintln!(
        "{name}: {} (wall {:.1} s)",
        text.trim(),
        t.elapsed().as_secs_f64()
    );
    let serial = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();

    let mut pcrs = BTreeMap::new();
    let mut init = None;
    let mut b64 = String::new();
    let (mut in_log, mut have_log) = (false, false);
    let mut fw_b64 = String::new();
    let (mut in_fw, mut have_fw) = (false, false);
    for line in serial.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = after(line, "MODSEAL-PCR: ") {
            if let Some((i, v)) = rest.split_once(' ') {
                if let Ok(i) = i.parse() {
                    pcrs.insert(i, v.trim().to_owned());
                }
            }
        } else if let Some(rest) = after(line, "MODSEAL-INIT: ") {
            init = Some(rest.trim().to_owned());
        } else if line.ends_with("MODSEAL-FWLOG-BEGIN") {
            in_fw = true;
        } else if line.ends_with("MODSEAL-FWLOG-END") {
            in_fw = false;
            have_fw = true;
        } else if in_fw && !line.is_empty() && is_base64(line) {
            fw_b64.push_str(line);
        } else if line.ends_with("MODSEAL-LOG-BEGIN") {
            in_log = true;
        } else if line.ends_with("MODSEAL-LOG-END") {
            in_log = false;
            have_log = true;
        } else if in_log && !line.is_empty() && is_base64(line) {
            b64.push_str(line);
        }
    }
    let firmware_log = have_fw.then(|| {
        let path = dir.join("binary_bios_measurements");
        base64_decode(&fw_b64, &path);
        path
    });
    let log = have_log.then(|| {
        let path = dir.join("tpm2-measure.log");
        base64_decode(&b64, &path);
        path
    });
    Boot {
        dir,
        result,
        serial,
        pcrs,
        init,
        log,
        firmware_log,
    }
}

fn is_base64(line: &str) -> bool {
    line.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
}

/// The rest of `line` after `tag` (console lines may carry a prefix).
fn after<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    line.find(tag).map(|i| &line[i + tag.len()..])
}

/// The good boot: modseal ran in the image's own dracut initramfs, passed
/// both stages, measured what `modseal predict` says for that initramfs's
/// module set, and the image's root (systemd) was reached.
#[test]
fn mkosi_image_boots_verified_and_measured() {
    let img = image();
    let b = boot("good", &img.initrd);
    assert_eq!(b.result, "root", "{}", b.context());
    let early = b.summary("early");
    assert!(early.ends_with("pass"), "{early}\n{}", b.context());
    let pre = b.summary("pre-pivot");
    assert!(pre.ends_with("pass"), "{pre}\n{}", b.context());
    // Every module file of the initramfs was verified.
    let n = common::module_files(&img.modules()).len();
    assert!(n > 0, "no modules in {}", img.modules().display());
    assert!(
        early.contains(&format!(": {n} verified, 0 failed")),
        "the early stage did not verify the initramfs's {n} modules: {early}"
    );
    // The root is the image's, with systemd as PID 1.
    let init = b.init.as_deref().unwrap_or("");
    assert!(
        init.starts_with("/usr/lib/systemd/systemd") || init.starts_with("/lib/systemd/systemd"),
        "PID 1 in the image root is {init:?}\n{}",
        b.context()
    );

    // Measured: PCR 12 is non-zero and what predict computes from the
    // bundle and the initramfs's modules.
    let pcr12 = b.pcr(12);
    assert_ne!(pcr12, "0".repeat(64), "PCR 12 was not extended");
    // After what systemd-boot measured there (the command line).
    let from = common::firmware_pcr(b.firmware_log.as_deref(), 12);
    let out = modseal([
        "predict".as_ref(),
        "--trust".as_ref(),
        img.bundle.as_os_str(),
        "--modules".as_ref(),
        img.modules().as_os_str(),
        "--root".as_ref(),
        img.unpacked.as_os_str(),
        "--mode".as_ref(),
        "enforce".as_ref(),
        "--stage".as_ref(),
        "early".as_ref(),
        "--stage".as_ref(),
        "pre-pivot".as_ref(),
        "--from".as_ref(),
        from.as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let predicted = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(pcr12, predicted, "PCR 12 vs predict\n{}", b.context());
    assert!(
        early.contains("unseal ok") && early.contains("measured into PCR 12"),
        "{early}"
    );

    // The event log left in /run replays to the same value.
    let log = b
        .log
        .as_deref()
        .unwrap_or_else(|| panic!("no event log came out of the guest\n{}", b.context()));
    let out = modseal([
        "log".as_ref(),
        "replay".as_ref(),
        "--from".as_ref(),
        from.as_ref(),
        log.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let replay = String::from_utf8_lossy(&out.stdout);
    assert!(
        replay
            .lines()
            .any(|l| l == format!("pcr 12 sha256 {predicted}")),
        "log replay does not give PCR 12:\n{replay}"
    );
    // The kernel log as the root's own journal/dmesg sees it names both stages.
    assert!(
        b.serial
            .lines()
            .any(|l| l.contains("MODSEAL-KMSG:") && l.contains("modseal: pre-pivot stage:")),
        "the root's dmesg lacks the modseal lines\n{}",
        b.context()
    );
}

/// A command run inside the image's tree, with what a root shell there
/// would have (none of the test's environment).
fn in_image(img: &Image, args: &[&str]) -> String {
    let out = run(Command::new("chroot")
        .arg(&img.tree)
        .args(args)
        .env_clear()
        .env("HOME", "/root")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C.UTF-8"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// modseal came into the image as a user installs it: from its Debian
/// package, with the image's own apt (mkosi.postinst.chroot), so dpkg owns
/// its files and conffiles, and man finds its page.
#[test]
fn mkosi_image_has_modseal_from_its_package() {
    let img = image();
    let status = in_image(img, &["dpkg", "-s", "modseal"]);
    assert!(
        status.lines().any(|l| l == "Status: install ok installed"),
        "dpkg -s modseal in the image:\n{status}"
    );
    assert_eq!(
        in_image(img, &["man", "-w", "modseal"]).trim(),
        "/usr/share/man/man8/modseal.8.gz"
    );
    for f in [
        "/usr/bin/modseal",
        "/usr/lib/dracut/modules.d/90modseal/module-setup.sh",
        "/usr/share/man/man8/modseal.8.gz",
    ] {
        assert_eq!(
            in_image(img, &["dpkg", "-S", f]).trim(),
            format!("modseal: {f}"),
            "dpkg -S {f} in the image"
        );
    }
    let conffiles = in_image(img, &["dpkg-query", "-W", "-f=${Conffiles}", "modseal"]);
    for f in [
        "/etc/modseal/modseal.conf",
        "/etc/dracut.conf.d/modseal.conf",
    ] {
        assert!(
            conffiles
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{f} "))),
            "{f} is not a conffile of the installed package:\n{conffiles}"
        );
    }
    // Depends: dracut-core was met by the image's own packages (dracut,
    // from mkosi.conf, pulls it in): apt added nothing beside modseal.
    let dracut = in_image(img, &["dpkg-query", "-W", "-f=${Status}", "dracut-core"]);
    assert_eq!(dracut, "install ok installed");
}

/// Flips the case of one letter of the module's description (.modinfo, inside
/// the signed bytes), like qemu/kernel-tree.sh's flip_byte.
fn flip_description_case(module: &Path) {
    let mut data = std::fs::read(module).unwrap();
    let pat = b"description=";
    let off = data
        .windows(pat.len() + 1)
        .position(|w| &w[..pat.len()] == pat && w[pat.len()].is_ascii_alphabetic())
        .unwrap_or_else(|| panic!("no description= in {}", module.display()))
        + pat.len();
    data[off] ^= 0x20;
    std::fs::write(module, data).unwrap();
}

/// The failing case: the image's initramfs with one byte of virtio_blk.ko
/// changed after dracut built it (so the build check could not see it):
/// enforce mode stops the boot before the root, naming the module.
#[test]
fn mkosi_image_tampered_module_stops_boot() {
    let img = image();
    let dir = work_root().join("tampered-initrd");
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new("cp").arg("-a").arg(&img.unpacked).arg(&dir));
    let rel = "kernel/drivers/block/virtio_blk.ko";
    let moddir = if dir.join("usr/lib/modules").join(&img.kver).is_dir() {
        dir.join("usr/lib/modules").join(&img.kver)
    } else {
        dir.join("lib/modules").join(&img.kver)
    };
    let module = moddir.join(rel);
    assert!(
        module.is_file(),
        "no {} in the image's initramfs",
        module.display()
    );
    flip_description_case(&module);

    // Repack: the early cpio (if any) as it was, then the changed tree.
    let initrd = work_root().join("tampered.img");
    let out = run(Command::new("sh")
        .arg("-c")
        .arg("find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet")
        .current_dir(&dir));
    assert!(!out.stdout.is_empty());
    std::fs::write(
        &initrd,
        [img.early.as_slice(), out.stdout.as_slice()].concat(),
    )
    .unwrap();

    let b = boot("tampered", &initrd);
    assert_eq!(b.result, "halted", "{}", b.context());
    assert!(
        !b.serial.contains("MODSEAL-ROOT: reached"),
        "the root was reached\n{}",
        b.context()
    );
    let guest_path = format!("/lib/modules/{}/{rel}", img.kver);
    assert!(
        b.serial.lines().any(|l| l.contains("modseal: ")
            && l.contains(&guest_path)
            && l.contains("bad-signature")),
        "no modseal line names {guest_path} with bad-signature\n{}",
        b.context()
    );
    let early = b.summary("early");
    assert!(early.contains("FAIL (enforce mode)"), "{early}");
    assert!(
        early.contains("measured into PCR 12"),
        "failure not measured: {early}"
    );
    // The tampered driver was never loaded: no disk appeared.
    assert!(
        !b.serial.contains("[vda]"),
        "virtio_blk was loaded\n{}",
        b.context()
    );
    assert!(
        !b.serial.contains("module verification failed"),
        "{}",
        b.context()
    );
}

/// The early-cpio split the tampering relies on (no image build needed): an
/// early archive made the way dracut makes it, then the main archive.
#[test]
fn early_cpio_split() {
    let dir = work_root().join("early-cpio-split");
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, files) in [
        (
            "early",
            &["early_cpio", "kernel/x86/microcode/GenuineIntel.bin"][..],
        ),
        ("main", &["init", "usr/lib/modules/x/kernel/a.ko"][..]),
    ] {
        for f in files {
            let p = dir.join(sub).join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("{sub} {f}\n")).unwrap();
        }
    }
    let pack = |sub: &str| {
        run(Command::new("sh")
            .arg("-c")
            .arg("find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet")
            .current_dir(dir.join(sub)))
        .stdout
    };
    let (early, main) = (pack("early"), pack("main"));
    assert_eq!(
        early.len() % 512,
        0,
        "cpio pads its output to 512-byte blocks"
    );
    let both = [early.as_slice(), main.as_slice()].concat();
    assert_eq!(early_cpio_len(&both), early.len());
    assert_eq!(early_cpio_len(&main), 0);
    let initrd = dir.join("initrd.img");
    std::fs::write(&initrd, &both).unwrap();
    let (got_early, unpacked) = unpack(&initrd, &dir.join("unpacked"));
    assert_eq!(got_early, early);
    assert!(unpacked.join("usr/lib/modules/x/kernel/a.ko").is_file());
    assert!(!unpacked.join("early_cpio").exists());
}
