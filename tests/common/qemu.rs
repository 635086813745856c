//! The QEMU boot harness shared by tests/qemu_boot.rs and
//! tests/qemu_attacks.rs: the Debian kernels, module trees and signing keys,
//! the root image, one boot through qemu/boot.sh and what its serial console
//! reported. Included with `#[path = "common/qemu.rs"] mod qemu;` next to
//! `mod common;` (like swtpm.rs), so a test binary without boots does not
//! carry it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::common::{
    base64_decode, code, describe, kernels_dir, modseal, repo, run, split_appended, static_bin,
    work_root,
};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Systemd,
    Classic,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Systemd => "systemd",
            Kind::Classic => "classic",
        }
    }
}

/// One unpacked Debian kernel (scripts/fetch-kernels.sh).
#[derive(Clone, Debug)]
pub struct Kernel {
    pub suite: String,
    pub kver: String,
    pub vmlinuz: PathBuf,
    pub cert: PathBuf,
    /// virtio_blk, relative to the module directory: a module every boot
    /// loads (the root disk), so tampering with it is seen.
    pub disk_module: &'static str,
}

pub fn kernel(suite: &str) -> Kernel {
    let dir = kernels_dir().join(suite);
    let env = std::fs::read_to_string(dir.join("env")).unwrap_or_else(|e| {
        panic!(
            "{}/env: {e}: run scripts/fetch-kernels.sh {suite}",
            dir.display()
        )
    });
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{}/env has no {k}", dir.display()))
            .to_owned()
    };
    Kernel {
        suite: suite.to_owned(),
        kver: get("KVER"),
        vmlinuz: get("VMLINUZ").into(),
        cert: signing_cert(suite, &PathBuf::from(get("VMLINUZ"))),
        disk_module: if suite == "bookworm" {
            "kernel/drivers/block/virtio_blk.ko"
        } else {
            "kernel/drivers/block/virtio_blk.ko.xz"
        },
    }
}

/// The kernel's module-signing certificate, taken out of its image the way
/// a user does (`modseal keys from-kernel`).
fn signing_cert(suite: &str, vmlinuz: &Path) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let pem = work_root().join(format!("{suite}-signing.pem"));
    if !pem.is_file() {
        std::fs::create_dir_all(work_root()).unwrap();
        let out = modseal(["keys".as_ref(), "from-kernel".as_ref(), vmlinuz.as_os_str()]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let tmp = pem.with_extension("tmp");
        std::fs::write(&tmp, &out.stdout).unwrap();
        std::fs::rename(&tmp, &pem).unwrap();
    }
    pem
}

/// One of the qemu/ scripts.
pub fn script(name: &str) -> Command {
    Command::new(repo().join("qemu").join(name))
}

/// The root filesystem image every boot uses (QEMU opens it snapshot=on).
pub fn root_image() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let extra = work_root().join("root-extra");
        let _ = std::fs::remove_dir_all(&extra);
        build_root(&work_root().join("root.img"), &extra)
    })
}

/// A root image like [`root_image`] with whatever `extra` already holds
/// added: the static binary and the guest side of an attestation request
/// (qemu/guest/quote.sh, sourced after `extra`'s
/// `etc/modseal-test/before-quote.sh` if there is one), run when the
/// kernel command line carries a nonce.
pub fn build_root(img: &Path, extra: &Path) -> PathBuf {
    std::fs::create_dir_all(extra.join("usr/bin")).unwrap();
    std::fs::create_dir_all(extra.join("etc/modseal-test")).unwrap();
    std::fs::copy(static_bin(), extra.join("usr/bin/modseal")).unwrap();
    let quote = std::fs::read_to_string(repo().join("qemu/guest/quote.sh")).unwrap();
    let before = extra.join("etc/modseal-test/before-quote.sh");
    let text = if before.is_file() {
        format!(". /etc/modseal-test/before-quote.sh\n{quote}")
    } else {
        quote
    };
    std::fs::write(extra.join("etc/modseal-test/extra.sh"), text).unwrap();
    run(script("build-root.sh").arg(img).arg(extra));
    img.to_path_buf()
}

/// A module tree with modules.dep, shared between the tests that use it.
pub fn tree(k: &Kernel, name: &str, edits: &[&str]) -> PathBuf {
    static TREES: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let key = format!("{}-{name}", k.suite);
    let mut trees = TREES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = trees.get(&key) {
        return p.clone();
    }
    let out = run(script("kernel-tree.sh")
        .arg(&k.suite)
        .arg(work_root().join("trees").join(&key))
        .args(edits));
    let moddir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        moddir.is_dir(),
        "kernel-tree.sh printed {}",
        moddir.display()
    );
    trees.insert(key, moddir.clone());
    moddir
}

/// A self-signed module-signing key (as the kernel build makes one), or a
/// CA and a leaf it issued: `openssl` like scripts/make-fixtures.sh.
pub fn signing_key(dir: &Path, name: &str, issuer: Option<&str>) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let leaf_exts = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=digitalSignature",
        "extendedKeyUsage=codeSigning",
        "subjectKeyIdentifier=hash",
    ];
    let ca_exts = [
        "basicConstraints=critical,CA:TRUE",
        "keyUsage=critical,keyCertSign,digitalSignature",
        "subjectKeyIdentifier=hash",
    ];
    let exts: &[&str] = if name.ends_with("-ca") {
        &ca_exts
    } else {
        &leaf_exts
    };
    let mut cmd = Command::new("openssl");
    match issuer {
        None => {
            cmd.args([
                "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .arg("-subj")
            .arg(format!("/CN=modseal test {name}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt);
            for e in exts {
                cmd.arg("-addext").arg(e);
            }
            run(&mut cmd);
        }
        Some(ca) => {
            let csr = dir.join(format!("{name}.csr"));
            run(Command::new("openssl")
                .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
                .arg("-subj")
                .arg(format!("/CN=modseal test {name}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr));
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!("{}\nauthorityKeyIdentifier=keyid\n", exts.join("\n")),
            )
            .unwrap();
            run(Command::new("openssl")
                .args(["x509", "-req", "-days", "3650", "-set_serial", "0x4d53"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(dir.join(format!("{ca}.crt")))
                .arg("-CAkey")
                .arg(dir.join(format!("{ca}.key")))
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&crt));
        }
    }
    (key, crt)
}

/// An uncompressed module's bytes without its appended signature.
pub fn unsigned_module(module: &Path) -> Vec<u8> {
    let data = std::fs::read(module).unwrap_or_else(|e| panic!("{}: {e}", module.display()));
    let (payload, _) = split_appended(&data)
        .unwrap_or_else(|| panic!("{}: no appended signature", module.display()));
    payload.to_vec()
}

/// `module` (uncompressed) signed again by `key`/`crt` with the kernel's own
/// sign-file, written to `to`.
pub fn resign_module(module: &Path, key: &Path, crt: &Path, to: &Path) {
    let unsigned = to.with_extension("unsigned");
    std::fs::write(&unsigned, unsigned_module(module)).unwrap();
    run(Command::new("/usr/lib/linux-kbuild-6.1/scripts/sign-file")
        .arg("sha256")
        .arg(key)
        .arg(crt)
        .arg(&unsigned)
        .arg(to));
    std::fs::remove_file(&unsigned).unwrap();
}

/// Unpacks an (uncompressed) initramfs image into `to`; returns its module
/// directory for `kver` as the image really stores it (usr/lib/modules when
/// /lib is a symlink to usr/lib).
pub fn unpack_image(image: &Path, to: &Path, kver: &str) -> PathBuf {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    run(Command::new("cpio")
        .args(["-idm", "--quiet", "--no-absolute-filenames", "-F"])
        .arg(image)
        .current_dir(to));
    let usr = to.join("usr/lib/modules").join(kver);
    if usr.is_dir() {
        usr
    } else {
        to.join("lib/modules").join(kver)
    }
}

/// The boot loader qemu/boot.sh's UEFI boots start (systemd-boot-efi).
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/// PCR 7 (sha256) as OVMF measures it at every boot (Secure Boot state and
/// keys; the same for any kernel, initrd and swtpm), from one probe boot
/// (qemu/firmware-pcrs.sh) per test process.
pub fn firmware_pcr7() -> &'static str {
    static PCR7: OnceLock<String> = OnceLock::new();
    PCR7.get_or_init(|| {
        let out = work_root().join("firmware-probe");
        let _ = std::fs::remove_dir_all(&out);
        run(script("firmware-pcrs.sh")
            .arg("--kernel")
            .arg(&kernel("bookworm").vmlinuz)
            .arg("--out")
            .arg(&out));
        let pcrs = std::fs::read_to_string(out.join("pcrs")).unwrap();
        let v = pcrs
            .lines()
            .find_map(|l| l.strip_prefix("7 "))
            .unwrap_or_else(|| panic!("{}: no PCR 7", out.display()))
            .trim()
            .to_owned();
        assert!(
            v.len() == 64 && v != "0".repeat(64),
            "the probe's PCR 7 is {v:?}: not a UEFI boot?"
        );
        v
    })
}

/// `modseal enroll` of `bundle` into the swtpm state `state` (the VM's
/// swtpm then has the same seeds, so the same SRK), writing `sealed`.
/// Sealed to PCRs 7 and 8 as they are at a UEFI `-kernel` boot: 7 as the
/// probe boot read it, 8 zero (no boot loader measures a command line).
/// Never PCR 9: under UEFI it holds the initrd, which carries the sealed
/// object itself, and the command line.
pub fn enroll_uefi(bundle: &Path, state: &Path, sealed: &Path) {
    let pcr7 = format!("7={}", firmware_pcr7());
    let tpm = crate::swtpm::Swtpm::start_with_state(state);
    let out = modseal([
        "enroll".as_ref(),
        "--tcti".as_ref(),
        tpm.tcti().as_ref(),
        "--trust".as_ref(),
        bundle.as_os_str(),
        "--pcrs".as_ref(),
        "7,8".as_ref(),
        "--pcr-value".as_ref(),
        pcr7.as_ref(),
        "--out".as_ref(),
        sealed.as_os_str(),
    ]);
    assert_eq!(
        code(&out),
        0,
        "enroll {}: {}",
        bundle.display(),
        describe(&out)
    );
}

/// What one boot's serial console said.
pub struct VmRun {
    /// boot.sh's `result=`: root, halted, panic, poweroff, timeout, exited.
    pub result: String,
    /// boot.sh's whole last line (`boot: result=… seconds=…`).
    pub summary: String,
    pub serial: String,
    /// `MODSEAL-PCR:` lines of the root's init.
    pub pcrs: BTreeMap<u8, String>,
    /// `MODSEAL-LOADED:` lines.
    pub loaded: Vec<String>,
    /// The event log the root printed, decoded into `dir`.
    pub log: Option<PathBuf>,
    /// The firmware's TCG event log the root printed (UEFI boots), decoded
    /// into `dir/binary_bios_measurements`.
    pub firmware_log: Option<PathBuf>,
    /// The files the root printed (`MODSEAL-FILE-BEGIN name`), decoded into
    /// `dir/guest-quote`.
    pub quote: Option<PathBuf>,
}

/// One boot through qemu/boot.sh.
pub struct VmBoot<'a> {
    pub kernel: &'a Kernel,
    pub image: &'a Path,
    /// The swtpm state directory, or no TPM at all.
    pub tpm_state: Option<&'a Path>,
    /// Extra kernel command line (after boot.sh's own).
    pub append: String,
    /// Where the serial log and what the guest printed go.
    pub dir: &'a Path,
    pub timeout: u32,
    /// SeaBIOS instead of OVMF: no measured boot before the initramfs.
    pub bios: bool,
    /// Another root image than [`root_image`].
    pub root: Option<&'a Path>,
}

impl VmBoot<'_> {
    pub fn run(&self) -> VmRun {
        let serial = self.dir.join("serial.log");
        let mut cmd = script("boot.sh");
        cmd.arg("--kernel")
            .arg(&self.kernel.vmlinuz)
            .arg("--initrd")
            .arg(self.image)
            .arg("--root")
            .arg(self.root.unwrap_or_else(|| root_image()))
            .arg("--serial")
            .arg(&serial)
            .arg("--append")
            .arg(&self.append)
            .arg("--timeout")
            .arg(self.timeout.to_string())
            .arg("--firmware")
            .arg(if self.bios { "bios" } else { "uefi" });
        match self.tpm_state {
            None => cmd.arg("--no-tpm"),
            Some(state) => cmd.arg("--tpmstate").arg(state),
        };
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run qemu/boot.sh: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let summary = text
            .lines()
            .rev()
            .find(|l| l.starts_with("boot: result="))
            .unwrap_or_else(|| panic!("qemu/boot.sh gave no result\n{}", describe(&out)))
            .to_owned();
        let result = summary["boot: result=".len()..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned();
        let serial =
            String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        eprintln!("{}: {}", self.dir.display(), text.trim());
        parse_serial(self.dir, result, summary, serial)
    }
}

fn is_base64(line: &str) -> bool {
    line.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c))
}

/// The root's MODSEAL-* report in the serial log (qemu/build-root.sh).
fn parse_serial(dir: &Path, result: String, summary: String, serial: String) -> VmRun {
    let mut pcrs = BTreeMap::new();
    let mut loaded = Vec::new();
    let mut b64 = String::new();
    let mut in_log = false;
    let mut have_log = false;
    let mut fw_b64 = String::new();
    let mut in_fw = false;
    let mut have_fw = false;
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut in_file: Option<String> = None;
    for line in serial.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix("MODSEAL-FILE-BEGIN ") {
            in_file = Some(name.to_owned());
            files.insert(name.to_owned(), String::new());
            continue;
        }
        if line == "MODSEAL-FILE-END" {
            in_file = None;
            continue;
        }
        if let Some(name) = &in_file {
            if is_base64(line) {
                files.get_mut(name).unwrap().push_str(line);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("MODSEAL-PCR: ") {
            if let Some((i, v)) = rest.split_once(' ') {
                if let Ok(i) = i.parse() {
                    pcrs.insert(i, v.trim().to_owned());
                }
            }
        } else if let Some(m) = line.strip_prefix("MODSEAL-LOADED: ") {
            loaded.push(m.trim().to_owned());
        } else if line == "MODSEAL-LOG-BEGIN" {
            in_log = true;
        } else if line == "MODSEAL-LOG-END" {
            in_log = false;
            have_log = true;
        } else if in_log && !line.is_empty() && is_base64(line) {
            b64.push_str(line);
        } else if line == "MODSEAL-FWLOG-BEGIN" {
            in_fw = true;
        } else if line == "MODSEAL-FWLOG-END" {
            in_fw = false;
            have_fw = true;
        } else if in_fw && !line.is_empty() && is_base64(line) {
            fw_b64.push_str(line);
        }
    }
    let log = have_log.then(|| {
        let path = dir.join("tpm2-measure.log");
        base64_decode(&b64, &path);
        path
    });
    let firmware_log = have_fw.then(|| {
        let path = dir.join("binary_bios_measurements");
        base64_decode(&fw_b64, &path);
        path
    });
    let quote = (!files.is_empty()).then(|| {
        let qdir = dir.join("guest-quote");
        std::fs::create_dir_all(&qdir).unwrap();
        for (name, b64) in &files {
            assert!(
                !name.contains('/') && !name.starts_with('.'),
                "odd file name {name}"
            );
            base64_decode(b64, &qdir.join(name));
        }
        qdir
    });
    VmRun {
        result,
        summary,
        serial,
        pcrs,
        loaded,
        log,
        firmware_log,
        quote,
    }
}
