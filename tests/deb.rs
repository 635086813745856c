//! The Debian package installs where a user would install it: a fresh Debian
//! bookworm root (debootstrap --variant=minbase, from the mirror of the
//! machine's apt configuration via scripts/apt-private.sh), with
//! `apt-get install ./modseal_*.deb`. Then, inside that root: the binary
//! runs, `man` finds the pages, the files and conffiles are in place,
//! `dracut` (which would replace initramfs-tools) was not pulled in, the
//! kernel hook does nothing before a trust bundle or an enrollment exists
//! and fails an initramfs without modseal once one does (what
//! initramfs-tools writes), the upgrade trigger is declared, and a purge
//! leaves nothing behind.
//!
//! The package: `MODSEAL_DEB` (scripts/test.sh builds and lints it), else
//! built here from the static binary (`MODSEAL_BIN`) with
//! scripts/build-deb.sh. Needs root, debootstrap, dpkg-deb, chroot and the
//! package registry; a missing tool fails the test, nothing is skipped. The
//! root stays in target/deb/root for a look after a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{describe, fixtures, output_of, repo, run, static_bin, work_root};

/// The package under test.
fn package() -> PathBuf {
    if let Some(p) = std::env::var_os("MODSEAL_DEB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "MODSEAL_DEB={} is not a file", p.display());
        return p;
    }
    let out = work_root().join("pkg");
    let _ = std::fs::remove_dir_all(&out);
    run(Command::new(repo().join("scripts/build-deb.sh"))
        .arg("--binary")
        .arg(static_bin())
        .arg("--out")
        .arg(&out));
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(
        debs.len(),
        1,
        "build-deb.sh made {debs:?} in {}",
        out.display()
    );
    debs[0].clone()
}

fn require_tools() {
    let uid = run(Command::new("id").arg("-u"));
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "tests/deb.rs needs root (debootstrap, chroot)"
    );
    for tool in ["debootstrap", "dpkg-deb", "chroot"] {
        let found = output_of(Command::new("sh").args(["-c", &format!("command -v {tool}")]));
        assert!(
            found.status.success(),
            "{tool} not found: apt-get install debootstrap (scripts/test.sh's package stage does)"
        );
    }
}

/// `apt_private_mirror bookworm` and `apt_private_keyring`: the machine's
/// mirror and the keyring its bookworm entry is signed by (may be empty).
fn mirror_and_keyring() -> (String, String) {
    let script = format!(
        ". {}/scripts/apt-private.sh && apt_private_mirror bookworm && apt_private_keyring",
        repo().display()
    );
    let out = run(Command::new("bash").args(["-c", &script]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let mirror = lines.next().unwrap_or_default().to_owned();
    assert!(
        !mirror.is_empty(),
        "no bookworm mirror in the machine's apt configuration"
    );
    (mirror, lines.next().unwrap_or_default().to_owned())
}

/// A fresh minbase bookworm root whose apt reads the same mirror.
fn fresh_root(root: &Path) {
    if root.exists() {
        run(Command::new("rm").arg("-rf").arg(root));
    }
    let (mirror, keyring) = mirror_and_keyring();
    let mut cmd = Command::new("debootstrap");
    cmd.arg("--variant=minbase");
    if !keyring.is_empty() {
        cmd.arg(format!("--keyring={keyring}"));
    }
    run(cmd.arg("bookworm").arg(root).arg(&mirror));
    let mut opts = String::new();
    if !keyring.is_empty() {
        std::fs::copy(&keyring, root.join("etc/apt/modseal-keyring.gpg")).unwrap();
        opts = " [signed-by=/etc/apt/modseal-keyring.gpg]".to_owned();
    }
    std::fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb{opts} {mirror} bookworm main\n"),
    )
    .unwrap();
    chroot(root, &["apt-get", "update"]);
}

/// Runs a command in the root; panics with its output unless it succeeds.
fn chroot(root: &Path, args: &[&str]) -> Output {
    run(&mut chroot_cmd(root, args))
}

fn chroot_cmd(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("chroot");
    // Nothing of the test's environment (MODSEAL_BIN would redirect the
    // hook to a host path): what a root shell in that system would have.
    cmd.arg(root)
        .args(args)
        .env_clear()
        .env("HOME", "/root")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C.UTF-8");
    cmd
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn package_installs_in_a_fresh_bookworm_root() {
    require_tools();
    let deb = package();
    let root = work_root().join("root");
    fresh_root(&root);
    let name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(&deb, root.join("tmp").join(&name)).unwrap();
    chroot(
        &root,
        &[
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            &format!("/tmp/{name}"),
            "man-db",
        ],
    );

    let version = chroot(&root, &["modseal", "--version"]);
    assert_eq!(
        stdout(&version).trim(),
        format!("modseal {}", env!("CARGO_PKG_VERSION"))
    );
    for (args, want) in [
        (
            vec!["man", "-w", "modseal"],
            "/usr/share/man/man8/modseal.8.gz",
        ),
        (
            vec!["man", "-w", "modseal-verify"],
            "/usr/share/man/man8/modseal-verify.8.gz",
        ),
        (
            vec!["man", "-w", "5", "modseal.conf"],
            "/usr/share/man/man5/modseal.conf.5.gz",
        ),
        (
            vec!["man", "-w", "modseal-trust-bundle"],
            "/usr/share/man/man5/modseal-trust-bundle.5.gz",
        ),
    ] {
        assert_eq!(stdout(&chroot(&root, &args)).trim(), want, "{args:?}");
    }
    let page = chroot(&root, &["man", "-P", "cat", "modseal"]);
    assert!(
        stdout(&page).contains("check-initramfs"),
        "{}",
        describe(&page)
    );

    for f in [
        "usr/bin/modseal",
        "usr/lib/dracut/modules.d/90modseal/module-setup.sh",
        "etc/kernel/postinst.d/zz-modseal",
        "etc/modseal/modseal.conf",
        "etc/dracut.conf.d/modseal.conf",
        "usr/share/bash-completion/completions/modseal",
        "usr/share/zsh/vendor-completions/_modseal",
        "usr/share/fish/vendor_completions.d/modseal.fish",
        "usr/share/doc/modseal/copyright",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    let conffiles = stdout(&chroot(
        &root,
        &["dpkg-query", "-W", "-f=${Conffiles}", "modseal"],
    ));
    for f in [
        "/etc/modseal/modseal.conf",
        "/etc/dracut.conf.d/modseal.conf",
        "/etc/kernel/postinst.d/zz-modseal",
    ] {
        assert!(conffiles.contains(f), "{f} is not a conffile: {conffiles}");
    }
    // Not enabled before enrollment: no active add_dracutmodules line.
    let snippet = std::fs::read_to_string(root.join("etc/dracut.conf.d/modseal.conf")).unwrap();
    assert!(
        !snippet.lines().any(|l| l.starts_with("add_dracutmodules")),
        "{snippet}"
    );

    // dracut-core, never dracut (which replaces initramfs-tools).
    chroot(&root, &["dpkg", "-s", "dracut-core"]);
    let dracut = output_of(&mut chroot_cmd(&root, &["dpkg", "-s", "dracut"]));
    assert!(
        !dracut.status.success(),
        "dracut was installed: {}",
        describe(&dracut)
    );

    // A kernel update before any enrollment: the hook checks nothing, and
    // does not fail the kernel's configuration.
    std::fs::write(root.join("boot/initrd.img-6.1.0-0-amd64"), b"").unwrap();
    let hook = chroot(
        &root,
        &[
            "/etc/kernel/postinst.d/zz-modseal",
            "6.1.0-0-amd64",
            "/boot/vmlinuz-6.1.0-0-amd64",
        ],
    );
    assert!(
        String::from_utf8_lossy(&hook.stderr).contains("not set up yet"),
        "{}",
        describe(&hook)
    );
    hook_once_enrolled(&root);

    // Upgrades rebuild the initramfs, as Debian's initramfs hook packages do.
    let triggers = std::fs::read_to_string(root.join("var/lib/dpkg/info/modseal.triggers"));
    assert_eq!(
        triggers.unwrap_or_default().trim(),
        "activate-noawait update-initramfs"
    );
    // The copyright file names the crates' own licences (generated).
    let copyright = std::fs::read_to_string(root.join("usr/share/doc/modseal/copyright")).unwrap();
    for needle in [
        "License: BSD-3-Clause",
        "License: Unlicense",
        "\n subtle ",
        "\n memchr ",
    ] {
        assert!(
            copyright.contains(needle),
            "{needle:?} not in the copyright file"
        );
    }

    // Enabled, then removed but not purged: the conffile stays and dracut
    // still sources it; it must no longer ask for the module that is gone.
    let modules = |root: &Path| {
        let script = ". /etc/dracut.conf.d/modseal.conf; echo \"[$add_dracutmodules]\"";
        stdout(&chroot(root, &["bash", "-c", script]))
            .trim()
            .to_owned()
    };
    std::fs::copy(
        root.join("usr/share/doc/modseal/dracut.conf.d-modseal.conf"),
        root.join("etc/dracut.conf.d/modseal.conf"),
    )
    .unwrap();
    assert_eq!(modules(&root), "[ modseal ]");
    chroot(&root, &["apt-get", "remove", "-y", "modseal"]);
    assert!(root.join("etc/dracut.conf.d/modseal.conf").is_file());
    assert_eq!(modules(&root), "[]");

    chroot(&root, &["apt-get", "purge", "-y", "modseal"]);
    for f in [
        "usr/bin/modseal",
        "etc/modseal",
        "usr/lib/dracut/modules.d/90modseal",
    ] {
        assert!(!root.join(f).exists(), "{f} left after purge");
    }
}

/// One newc archive of regular files, as initramfs-tools would write one
/// (uncompressed: the reader takes either).
fn newc(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer: (&str, &[u8]) = ("TRAILER!!!", b"");
    for (i, (name, data)) in files.iter().chain([&trailer]).enumerate() {
        let mode = if *name == "TRAILER!!!" { 0 } else { 0o100644 };
        out.extend_from_slice(
            format!(
                "070701{:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                i + 1,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            )
            .as_bytes(),
        );
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

/// The kernel hook on an enrolled machine (the sealed directory exists):
/// without the bundle it fails naming both; with it, an initramfs without
/// modseal (initramfs-tools') fails, saying enforce mode needs dracut.
fn hook_once_enrolled(root: &Path) {
    let kver = "6.1.0-0-amd64";
    let hook = |root: &Path| {
        output_of(&mut chroot_cmd(
            root,
            &[
                "/etc/kernel/postinst.d/zz-modseal",
                kver,
                &format!("/boot/vmlinuz-{kver}"),
            ],
        ))
    };
    std::fs::create_dir_all(root.join("etc/modseal/sealed")).unwrap();
    let out = hook(root);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        err.contains("/etc/modseal/sealed exists") && err.contains("/etc/modseal/trust.bundle"),
        "{err}"
    );

    std::fs::copy(
        fixtures().join("keys/ca.crt"),
        root.join("etc/modseal/trust.bundle"),
    )
    .unwrap();
    let image = newc(&[("etc/hostname", b"debian\n"), ("usr/bin/sh", b"#!")]);
    std::fs::write(root.join(format!("boot/initrd.img-{kver}")), image).unwrap();
    let out = hook(root);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    for needle in [
        "/usr/bin/modseal is not in the image",
        "/etc/modseal/trust.bundle is not in the image",
        "/etc/modseal/sealed/sealed.json is not in the image",
        "was built WITHOUT modseal",
        "Enforce mode needs dracut as the",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    std::fs::remove_dir_all(root.join("etc/modseal/sealed")).unwrap();
    std::fs::remove_file(root.join("etc/modseal/trust.bundle")).unwrap();
}
