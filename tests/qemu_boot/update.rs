//! Kernel updates without a new enrollment: one trust bundle whose only
//! trust is the Debian Secure Boot CA as a kernel signer, sealed once, then
//! the kernels of bookworm (6.1), trixie (6.12) and trixie-backports (7.3)
//! in turn. For each, dracut builds the image as a kernel package's hook
//! does (the build check passes through the derived anchor), the machine
//! boots it with the same TPM, every module verifies, and a policy made
//! from the new kernel and image before the reboot trusts the quote.
//! A kernel image that is unsigned, or signed by another key, fails the
//! build.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use super::{provision_ak, Boot};
use crate::common::{code, describe, modseal, static_bin, work_root};
use crate::qemu::{self, kernel, script, tree, Kind};

/// Where `shim-unsigned` installs the CA shim trusts for Debian's images.
const DEBIAN_CA: &str = "/usr/share/shim/debian-uefi-ca.der";

/// The machine: its /etc/modseal, TPM state and verifier's AK.
struct Machine {
    dir: PathBuf,
    etc: PathBuf,
    state: PathBuf,
    ak: PathBuf,
}

impl Machine {
    /// Bundle, enrollment (PCRs 7 and 8) and AK: done once.
    fn enroll(name: &str) -> Machine {
        assert!(
            Path::new(DEBIAN_CA).is_file(),
            "{DEBIAN_CA} missing: install Debian's shim-unsigned (scripts/setup.sh)"
        );
        let dir = work_root().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let etc = dir.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let bundle = etc.join("trust.bundle");
        let out = modseal([
            "bundle".as_ref(),
            "--kernel-signer".as_ref(),
            DEBIAN_CA.as_ref(),
            "--mode".as_ref(),
            "enforce".as_ref(),
            "--out".as_ref(),
            bundle.as_os_str(),
        ]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let state = dir.join("tpm");
        qemu::enroll_uefi(&bundle, &state, &etc.join("sealed"));
        let ak = provision_ak(&state, &dir);
        std::fs::write(
            etc.join("modseal.conf"),
            format!(
                "trust = {}\nsealed = {}\n",
                bundle.display(),
                etc.join("sealed").display()
            ),
        )
        .unwrap();
        Machine {
            dir,
            etc,
            state,
            ak,
        }
    }

    fn bundle(&self) -> PathBuf {
        self.etc.join("trust.bundle")
    }

    /// dracut for `suite`'s kernel with `vmlinuz` as its image, as the
    /// kernel package's postinst hook runs it.
    fn build(&self, suite: &str, vmlinuz: &Path, out: &Path) -> Output {
        let k = kernel(suite);
        let moddir = tree(&k, "good", &[]);
        script("build-initramfs.sh")
            .arg("--kind")
            .arg(Kind::Systemd.name())
            .arg("--kver")
            .arg(&k.kver)
            .arg("--kmoddir")
            .arg(&moddir)
            .arg("--confdir")
            .arg(&self.etc)
            .arg("--out")
            .arg(out)
            .arg("--binary")
            .arg(static_bin())
            .arg("--kernel-image")
            .arg(vmlinuz)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run qemu/build-initramfs.sh")
    }

    /// Builds and boots `suite`'s kernel; the guest quotes with a fresh nonce.
    fn update_to(&self, suite: &str) -> Boot {
        let k = kernel(suite);
        let dir = self.dir.join(suite);
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("initrd.img");
        let out = self.build(suite, &k.vmlinuz, &image);
        assert!(
            out.status.success(),
            "dracut for {suite}: {}",
            describe(&out)
        );
        let build_log = String::from_utf8_lossy(&out.stderr);
        assert!(
            build_log.contains("signed by 'Debian Secure Boot Signer 2022 - linux'"),
            "{build_log}"
        );
        let image_modules = qemu::unpack_image(&image, &dir.join("unpacked"), &k.kver);
        let nonce = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .unwrap()
            .trim()
            .replace('-', "");
        let vm = qemu::VmBoot {
            kernel: &k,
            image: &image,
            tpm_state: Some(&self.state),
            append: format!("loglevel=7 modseal.test.nonce={nonce}"),
            dir: &dir,
            timeout: 600,
            bios: false,
            root: None,
        }
        .run();
        Boot {
            ak: Some(self.ak.clone()),
            nonce,
            quote: vm.quote,
            suite: suite.to_owned(),
            dir,
            result: vm.result,
            serial: vm.serial,
            pcrs: vm.pcrs,
            log: vm.log,
            loaded: vm.loaded,
            bundle: self.bundle(),
            image_modules,
            certs: Vec::new(),
            image,
            firmware_log: vm.firmware_log,
            derived_from: Some((k.vmlinuz.clone(), k.kver.clone())),
        }
    }
}

/// One step of the update path: every module verified through the kernel's
/// own key, the record names it and the kernel image it came from, PCR 12
/// is what predict says, and the verifier trusts the quote.
fn assert_good(b: &Boot) {
    b.assert_result("root");
    for stage in ["early", "pre-pivot"] {
        let s = b.summary(stage);
        assert!(s.ends_with("pass"), "{s}\n{}", b.context());
    }
    let files = b.image_module_files();
    assert!(
        !files.is_empty(),
        "no modules in the image\n{}",
        b.context()
    );
    assert!(
        b.summary("early")
            .contains(&format!(": {} verified, 0 failed", files.len())),
        "{}",
        b.context()
    );
    let derived = std::fs::read_to_string(b.dir.join("unpacked/etc/modseal/derived-anchor"))
        .unwrap_or_else(|e| panic!("no derived anchor in the image: {e}\n{}", b.context()));
    let kernel_sha = derived
        .lines()
        .find_map(|l| l.strip_prefix("kernel-sha256 "))
        .expect("kernel-sha256 line");
    let log = std::fs::read_to_string(b.log_path()).unwrap();
    assert_eq!(
        log.matches(&format!("\"kernel_sha256\":\"{kernel_sha}\""))
            .count(),
        2,
        "both records name the derived anchor of this kernel:\n{log}"
    );
    let predicted = b.predict("enforce");
    assert_eq!(b.pcr(12), predicted, "PCR 12 vs predict\n{}", b.context());
    let k = kernel(&b.suite);
    let policy = b.host_policy("policy", &[&b.image], &[&k.vmlinuz]);
    let (rc, out) = b.attest(&policy);
    assert_eq!(rc, 0, "attest did not trust the {} boot:\n{out}", b.suite);
}

#[test]
fn kernel_updates_need_no_new_enrollment() {
    let m = Machine::enroll("update-path");
    let sealed = std::fs::read(m.etc.join("sealed/sealed.json")).unwrap();
    for suite in ["bookworm", "trixie", "trixie-backports"] {
        let b = m.update_to(suite);
        assert_good(&b);
        assert_eq!(
            std::fs::read(m.etc.join("sealed/sealed.json")).unwrap(),
            sealed,
            "the enrollment changed"
        );
    }
}

/// Build-time refusals (no boot): an image without its signature, and one
/// signed by a key that is not the Debian CA's.
#[test]
fn an_unsigned_or_foreign_signed_kernel_fails_the_build() {
    let m = Machine::enroll("update-refused");
    let k = kernel("bookworm");
    let stripped = m.dir.join("vmlinuz-stripped");
    std::fs::copy(&k.vmlinuz, &stripped).unwrap();
    crate::common::run(
        std::process::Command::new("sbattach")
            .arg("--remove")
            .arg(&stripped),
    );
    let key = m.dir.join("other.key");
    let crt = m.dir.join("other.pem");
    crate::common::run(std::process::Command::new("openssl").args([
        "req".as_ref(),
        "-new".as_ref(),
        "-x509".as_ref(),
        "-newkey".as_ref(),
        "rsa:2048".as_ref(),
        "-nodes".as_ref(),
        "-subj".as_ref(),
        "/CN=Not Debian".as_ref(),
        "-days".as_ref(),
        "2".as_ref(),
        "-keyout".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        crt.as_os_str(),
    ]));
    let foreign = m.dir.join("vmlinuz-foreign");
    crate::common::run(std::process::Command::new("sbsign").args([
        "--key".as_ref(),
        key.as_os_str(),
        "--cert".as_ref(),
        crt.as_os_str(),
        "--output".as_ref(),
        foreign.as_os_str(),
        stripped.as_os_str(),
    ]));
    for (what, image) in [("unsigned", &stripped), ("foreign-signed", &foreign)] {
        let out_img = m.dir.join(format!("{what}.img"));
        let out = m.build("bookworm", image, &out_img);
        assert!(!out.status.success(), "{what}: dracut succeeded");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            text.contains("is not signed by a kernel signer")
                && text.contains("Authenticode signature"),
            "{what}: {text}"
        );
        assert!(!out_img.exists(), "{what}: an image was written");
    }
}
