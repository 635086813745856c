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

/// The SHA-256 of the DER of the certificate in a PEM file, by openssl.
fn pem_der_sha256(pem: &Path) -> Vec<String> {
    let out = sh(&format!(
        "openssl x509 -in {} -outform DER | sha256sum | cut -d' ' -f1",
        pem.display()
    ));
    vec![String::from_utf8_lossy(&out.stdout).trim().to_owned()]
}

#[test]
fn a_policy_lists_the_certificates_built_into_each_kernel() {
    // Whatever the bundle: an anchor bundle here.
    let fx = fx();
    let k = vmlinuz("bookworm");
    let out = make_policy(&[
        &"--trust",
        &fx.bundle,
        &"--initrd",
        &fx.good,
        &"--kernel",
        &k,
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let p = stdout(&out);
    let (signed, _) = osslsigncode_digests(&k);
    // keys from-kernel printed the kernel's one certificate (kernel.pem).
    let want: Vec<String> = pem_der_sha256(&fx.dir.join("kernel.pem"))
        .into_iter()
        .map(|c| format!("{signed} {c}"))
        .collect();
    assert_eq!(values(&p, "kernel-module-cert"), want, "{p}");
}

/// Where Debian's `shim-unsigned` installs the Secure Boot CA.
const DEBIAN_CA: &str = "/usr/share/shim/debian-uefi-ca.der";

/// A bundle of the Debian Secure Boot CA as its only (kernel-signer) trust.
fn signer_bundle() -> PathBuf {
    let bundle = fx().dir.join("signer.bundle");
    let b = modseal([
        OsString::from("bundle"),
        "--kernel-signer".into(),
        DEBIAN_CA.into(),
        "--out".into(),
        bundle.clone().into(),
    ]);
    assert_eq!(code(&b), 0, "{}", describe(&b));
    bundle
}

/// The bookworm kernel's derived anchor against the Debian CA.
fn bookworm_anchor() -> modseal::trust::derived::DerivedAnchor {
    let ca = std::fs::read(DEBIAN_CA)
        .unwrap_or_else(|e| panic!("{DEBIAN_CA}: {e}: install shim-unsigned (scripts/setup.sh)"));
    let ca = modseal::trust::cert::Certificate::from_der(&ca).unwrap();
    let image = std::fs::read(vmlinuz("bookworm")).unwrap();
    modseal::image::derive::derive_anchor(&image, &[ca], &fx().kver).unwrap()
}

/// The good image's modules with `anchor` at etc/modseal/derived-anchor,
/// and `extra` (a module file) at `kernel/extra.ko`.
fn derived_image(
    name: &str,
    anchor: &modseal::trust::derived::DerivedAnchor,
    extra: Option<&Path>,
) -> PathBuf {
    let fx = fx();
    let stage = fx.dir.join(format!("{name}.stage"));
    let _ = std::fs::remove_dir_all(&stage);
    let moddir = stage.join(format!("usr/lib/modules/{}", fx.kver));
    for m in MODULES
        .iter()
        .map(PathBuf::from)
        .chain(extra.map(|_| "kernel/extra.ko".into()))
    {
        let to = moddir.join(&m);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let from = match extra {
            Some(e) if m == Path::new("kernel/extra.ko") => e.to_owned(),
            _ => fx.tree.join(&m),
        };
        std::fs::copy(&from, &to).unwrap();
    }
    std::fs::create_dir_all(stage.join("etc/modseal")).unwrap();
    std::fs::write(
        stage.join("etc/modseal/derived-anchor"),
        modseal::trust::derived::render_derived(anchor),
    )
    .unwrap();
    let out = fx.dir.join(format!("{name}.img"));
    sh(&format!(
        "cd {s} && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | zstd -q > {o}",
        s = stage.display(),
        o = out.display()
    ));
    out
}

#[test]
fn a_kernel_signer_bundle_s_policy_predicts_the_derived_anchor_and_refuses_a_swapped_one() {
    let fx = fx();
    let k = vmlinuz("bookworm");
    let bundle = signer_bundle();
    let anchor = bookworm_anchor();
    let good = derived_image("derived", &anchor, None);
    let out = make_policy(&[
        &"--trust",
        &bundle,
        &"--initrd",
        &good,
        &"--kernel",
        &k,
        &"--expect-modules",
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let p = stdout(&out);
    assert_eq!(
        values(&p, "anchor-sha256"),
        vec![sha256_file(&bundle)],
        "{p}"
    );
    assert_eq!(values(&p, "module").len(), MODULES.len(), "{p}");
    let kernel = modseal::util::hex::lower(&anchor.kernel_sha256);
    assert_eq!(values(&p, "kernel-sha256"), vec![kernel.clone()], "{p}");
    let certs: Vec<String> = anchor
        .certs
        .iter()
        .map(|c| {
            format!(
                "{kernel} {}",
                modseal::util::hex::lower(&modseal::verify::algorithm::sha256(&c.der))
            )
        })
        .collect();
    assert_eq!(values(&p, "kernel-module-cert"), certs, "{p}");

    // The attacker's certificate in the image's anchor, and a module it signed.
    let keys = fixtures().join("keys");
    let attacker = modseal::trust::cert::Certificate::from_der(
        &std::fs::read(keys.join("rsa2048.der")).unwrap(),
    )
    .unwrap();
    let mut forged = anchor.clone();
    forged.certs = vec![attacker.clone()];
    let swapped = derived_image(
        "swapped",
        &forged,
        Some(&fixtures().join("modules/rsa2048-sha256.ko")),
    );
    let out = make_policy(&[&"--trust", &bundle, &"--initrd", &swapped, &"--kernel", &k]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    let sha = modseal::util::hex::lower(&modseal::verify::algorithm::sha256(&attacker.der));
    assert_eq!(
        stderr(&out),
        format!(
            "modseal: refusing to make a policy: {}: /etc/modseal/derived-anchor is not the anchor kernel {} yields: certificate {}… ({}) is not built into it\n",
            swapped.display(),
            k.display(),
            &sha[..16],
            attacker.name
        )
    );
    // The anchor of another release than the image's modules: a boot
    // would not trust it for them.
    let mut other = anchor.clone();
    other.release = "6.1.0-99-amd64".into();
    let img = derived_image("release", &other, None);
    let out = make_policy(&[&"--trust", &bundle, &"--initrd", &img, &"--kernel", &k]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "modseal: refusing to make a policy: {}: the derived anchor is for release 6.1.0-99-amd64, the image's modules are in usr/lib/modules/{}\n",
            img.display(),
            fx.kver
        )
    );
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
