//! `modseal attest --make-policy` from the files a machine will boot (no
//! log): the real Debian kernels' Authenticode digests (what UEFI firmware
//! measures into PCR 4), checked against osslsigncode (the boot tests check
//! them against what OVMF measured, tests/qemu_boot/attest.rs); initramfs images of real bookworm modules packed as
//! tests/check_initramfs.rs packs its module archives (GNU cpio, zstd).
//!
//! The kernels come from scripts/fetch-kernels.sh (`<kernels>/<suite>/env`,
//! see tests/real_kernels.rs); a missing kernel or tool is a failure, never a
//! skip. osslsigncode (Debian's `osslsigncode`) is the independent
//! Authenticode implementation.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;

/// Modules packed into the test images (all in the bookworm tree); the
/// tampered image has the first one with a flipped byte.
const MODULES: [&str; 3] = [
    "kernel/lib/crc16.ko",
    "kernel/fs/mbcache.ko",
    "kernel/crypto/crc32c_generic.ko",
];

fn sh(script: &str) -> Output {
    run(Command::new("bash").args(["-euo", "pipefail", "-c", script]))
}

/// The Authenticode SHA-256 osslsigncode computes for a signed image
/// ("Calculated message digest"), and the one its signature carries
/// ("Current message digest"), lower-case.
fn osslsigncode_digests(image: &Path) -> (String, String) {
    let out = Command::new("osslsigncode")
        .arg("verify")
        .arg("-in")
        .arg(image)
        .output()
        .expect("osslsigncode must be installed (Debian's osslsigncode: scripts/setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split(':').nth(1))
            .map(|h| h.trim().to_ascii_lowercase())
            .unwrap_or_else(|| panic!("osslsigncode printed no {name:?}:\n{text}"))
    };
    (
        field("Calculated message digest"),
        field("Current message digest"),
    )
}

/// The files every test uses, made once per test process.
struct Fx {
    dir: PathBuf,
    bundle: PathBuf,
    good: PathBuf,
    other: PathBuf,
    bad: PathBuf,
    kver: String,
    tree: PathBuf,
}

fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(build)
}

fn build() -> Fx {
    let dir = repo().join("target/make-policy");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (kernel, tree) = bookworm();
    let kver = kernel_var("bookworm", "KVER");
    let pem = dir.join("kernel.pem");
    let keys = modseal([
        OsString::from("keys"),
        "from-kernel".into(),
        kernel.into_os_string(),
    ]);
    assert_eq!(code(&keys), 0, "{}", describe(&keys));
    std::fs::write(&pem, &keys.stdout).unwrap();
    let bundle = dir.join("trust.bundle");
    let b = modseal([
        OsString::from("bundle"),
        "--anchor".into(),
        pem.into_os_string(),
        "--out".into(),
        bundle.clone().into_os_string(),
    ]);
    assert_eq!(code(&b), 0, "{}", describe(&b));
    // An image as dracut lays modules out (usr/lib/modules/<kver>), packed
    // by GNU cpio and compressed by zstd; `count` modules of MODULES.
    let image = |name: &str, count: usize, tamper: bool| -> PathBuf {
        let stage = dir.join(format!("{name}.stage"));
        let moddir = stage.join(format!("usr/lib/modules/{kver}"));
        for m in &MODULES[..count] {
            let to = moddir.join(m);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(tree.join(m), &to)
                .unwrap_or_else(|e| panic!("{}: {e}", tree.join(m).display()));
        }
        if tamper {
            let victim = moddir.join(MODULES[0]);
            let len = std::fs::metadata(&victim).unwrap().len() as usize;
            flip_byte(&victim, len / 3);
        }
        let out = dir.join(format!("{name}.img"));
        sh(&format!(
            "cd {s} && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | zstd -q > {o}",
            s = stage.display(),
            o = out.display()
        ));
        out
    };
    Fx {
        good: image("good", MODULES.len(), false),
        other: image("other", 2, false),
        bad: image("bad", MODULES.len(), true),
        bundle,
        dir,
        kver,
        tree,
    }
}

fn make_policy(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut all: Vec<OsString> = vec!["attest".into(), "--make-policy".into()];
    all.extend(args.iter().map(|a| a.as_ref().to_owned()));
    modseal(all)
}

/// The values of one directive in a policy, in order.
fn values(policy: &str, directive: &str) -> Vec<String> {
    policy
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{directive} ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn kernel_digests_are_authenticode_as_osslsigncode_computes_and_the_signature_carries() {
    for suite in ["bookworm", "trixie"] {
        let k = vmlinuz(suite);
        let fx = fx();
        let out = make_policy(&[
            &"--trust",
            &fx.bundle,
            &"--initrd",
            &fx.good,
            &"--kernel",
            &k,
        ]);
        assert_eq!(code(&out), 0, "{suite}: {}", describe(&out));
        let policy = stdout(&out);
        let (calculated, signed) = osslsigncode_digests(&k);
        assert_eq!(
            calculated, signed,
            "{suite}: osslsigncode disagrees with the signature"
        );
        assert_eq!(
            values(&policy, "kernel-sha256"),
            vec![calculated],
            "{suite}"
        );
        // The Authenticode digest is not the file's.
        assert_ne!(values(&policy, "kernel-sha256")[0], sha256_file(&k));
    }
}

#[test]
fn a_policy_from_the_files_pins_anchor_initrd_kernel_and_modules() {
    let fx = fx();
    let k = vmlinuz("bookworm");
    let out = make_policy(&[
        &"--trust",
        &fx.bundle,
        &"--initrd",
        &fx.good,
        &"--kernel",
        &k,
        &"--cmdline",
        &"console=ttyS0 root=/dev/vda  rw # not a comment",
        &"--expect-modules",
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let p = stdout(&out);
    assert!(p.starts_with("modseal-attest-policy v"), "{p}");
    assert_eq!(
        values(&p, "anchor-sha256"),
        vec![sha256_file(&fx.bundle)],
        "{p}"
    );
    assert_eq!(values(&p, "pcr"), vec!["12"], "{p}");
    assert_eq!(values(&p, "mode"), vec!["enforce"], "{p}");
    assert_eq!(values(&p, "stages"), vec!["early pre-pivot"], "{p}");
    assert_eq!(
        values(&p, "initrd-sha256"),
        vec![sha256_file(&fx.good)],
        "{p}"
    );
    let (signed, _) = osslsigncode_digests(&k);
    assert_eq!(values(&p, "kernel-sha256"), vec![signed], "{p}");
    assert_eq!(
        values(&p, "cmdline"),
        vec!["console=ttyS0 root=/dev/vda  rw # not a comment"],
        "{p}"
    );
    // The module set, as a boot's records name them: relative to the tree.
    let mut want: Vec<String> = MODULES
        .iter()
        .map(|m| format!("{} {m}", sha256_file(&fx.tree.join(m))))
        .collect();
    want.sort_by(|a, b| a.split(' ').nth(1).cmp(&b.split(' ').nth(1)));
    assert_eq!(values(&p, "module"), want, "{p}");
    assert!(
        !p.contains(&fx.kver),
        "paths are relative to the module tree: {p}"
    );

    // Without --expect-modules: any set. The bundle's sealed settings decide
    // the PCR and the mode.
    let warn = fx.dir.join("warn.bundle");
    let b = modseal([
        OsString::from("bundle"),
        "--anchor".into(),
        fx.dir.join("kernel.pem").into(),
        "--mode".into(),
        "warn".into(),
        "--pcr".into(),
        "15".into(),
        "--out".into(),
        warn.clone().into(),
    ]);
    assert_eq!(code(&b), 0, "{}", describe(&b));
    let out = make_policy(&[&"--trust", &warn, &"--initrd", &fx.good, &"--kernel", &k]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let p = stdout(&out);
    assert_eq!(values(&p, "pcr"), vec!["15"], "{p}");
    assert_eq!(values(&p, "mode"), vec!["warn"], "{p}");
    assert_eq!(values(&p, "anchor-sha256"), vec![sha256_file(&warn)], "{p}");
    assert!(values(&p, "module").is_empty(), "{p}");
    assert!(values(&p, "cmdline").is_empty(), "{p}");
}

#[test]
fn a_fleet_allows_two_initrds_and_two_kernels() {
    let fx = fx();
    let (b, t) = (vmlinuz("bookworm"), vmlinuz("trixie"));
    let out = make_policy(&[
        &"--trust",
        &fx.bundle,
        &"--initrd",
        &fx.good,
        &"--initrd",
        &fx.other,
        &"--kernel",
        &b,
        &"--kernel",
        &t,
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let p = stdout(&out);
    let mut initrds = vec![sha256_file(&fx.good), sha256_file(&fx.other)];
    initrds.sort();
    assert_eq!(values(&p, "initrd-sha256"), initrds, "{p}");
    assert_eq!(values(&p, "kernel-sha256").len(), 2, "{p}");
}

#[test]
fn an_image_a_boot_would_fail_on_is_refused_naming_image_and_module() {
    let fx = fx();
    let k = vmlinuz("bookworm");
    let out = make_policy(&[
        &"--trust",
        &fx.bundle,
        &"--initrd",
        &fx.good,
        &"--initrd",
        &fx.bad,
        &"--kernel",
        &k,
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let want = format!(
        "modseal: refusing to make a policy: {}: module usr/lib/modules/{}/{}: bad-signature: ",
        fx.bad.display(),
        fx.kver,
        MODULES[0]
    );
    assert!(stderr(&out).starts_with(&want), "{}", describe(&out));
}

#[test]
fn bad_input_is_exit_2_and_named() {
    let fx = fx();
    let k = vmlinuz("bookworm");
    let expect = |out: Output, needle: &str| {
        assert_eq!(code(&out), 2, "{}", describe(&out));
        assert!(out.stdout.is_empty(), "{}", describe(&out));
        assert!(
            stderr(&out).contains(needle),
            "{needle}: {}",
            describe(&out)
        );
    };
    // Not a PE image: the initrd given as the kernel.
    expect(
        make_policy(&[&"--trust", &fx.bundle, &"--initrd", &fx.good, &"--kernel", &fx.good]),
        &format!(
            "modseal: error: {}: not a kernel image the firmware measures (a PE image): not a PE image: no MZ signature",
            fx.good.display()
        ),
    );
    // A PE image cut short.
    let cut = fx.dir.join("vmlinuz-cut");
    std::fs::write(&cut, &std::fs::read(&k).unwrap()[..0x300]).unwrap();
    expect(
        make_policy(&[
            &"--trust",
            &fx.bundle,
            &"--initrd",
            &fx.good,
            &"--kernel",
            &cut,
        ]),
        "SizeOfHeaders 0x1000 is past the end of the file (768 bytes)",
    );
    expect(
        make_policy(&[
            &"--trust",
            &fx.bundle,
            &"--initrd",
            &fx.good,
            &"--initrd",
            &fx.other,
            &"--kernel",
            &k,
            &"--expect-modules",
        ]),
        "--expect-modules pins one module set: give one --initrd with it",
    );
    expect(
        make_policy(&[&"--trust", &fx.bundle, &"--initrd", &fx.good]),
        "--make-policy needs --log LOG (a known-good boot), or --trust BUNDLE, --initrd IMAGE and --kernel VMLINUZ",
    );
    expect(
        make_policy(&[
            &"--trust",
            &fx.bundle,
            &"--initrd",
            &fx.good,
            &"--kernel",
            &k,
            &"--cmdline",
            &"a\nb",
        ]),
        "--cmdline a?b: holds a control character",
    );
    expect(
        make_policy(&[&"--trust", &fx.good, &"--initrd", &fx.good, &"--kernel", &k]),
        &fx.good.display().to_string(),
    );
    expect(
        make_policy(&[
            &"--trust",
            &fx.bundle,
            &"--initrd",
            &"/nonexistent/initrd.img",
            &"--kernel",
            &k,
        ]),
        "/nonexistent/initrd.img: cannot open",
    );
    // --trust reads no log.
    let out = make_policy(&[&"--trust", &fx.bundle, &"--log", &fx.good]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
}
