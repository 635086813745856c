//! Boot tests: real Debian kernels (bookworm 6.1, trixie 6.12, and good boots
//! of trixie-backports 7.x in Debian's split packaging) booted under
//! QEMU (TCG) with an swtpm TPM, through initramfs images built by the real
//! dracut with `dracut-module/90modseal`, in both kinds of initramfs
//! (systemd and classic). Each test asserts on the serial console, the PCR
//! values read in the guest and the event log copied out of it.
//!
//! Needs `scripts/setup.sh` (dracut-core, qemu-system-x86, swtpm,
//! busybox-static, the kernels, the static musl binary). A missing tool fails
//! the test; nothing is skipped. Artefacts stay in target/qemu-boot/<test>/.

#[path = "qemu_boot/attest.rs"]
mod attest;
mod common;
#[path = "common/qemu.rs"]
mod qemu;
#[path = "common/swtpm.rs"]
mod swtpm;
#[path = "qemu_boot/update.rs"]
mod update;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::{code, describe, modseal, repo, run, static_bin, work_root};
use qemu::{kernel, script, signing_key, tree, Kernel, Kind};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tpm {
    Present,
    /// No TPM device in the VM.
    Absent,
    /// PCR 8 (sealed, with PCR 7) is extended in the initramfs before
    /// modseal runs.
    PcrMoved,
}

struct Scenario {
    name: &'static str,
    suite: &'static str,
    kind: Kind,
    /// modseal.conf's mode.
    mode: &'static str,
    allow_weaken: bool,
    /// Extra kernel command line.
    append: &'static str,
    /// The module tree's name and its kernel-tree.sh edits.
    tree: (&'static str, Vec<String>),
    /// Extra anchors in the sealed bundle (besides the kernel's own key).
    anchors: Vec<PathBuf>,
    /// Untrusted certificates for the boot (config `certs`).
    certs: Vec<PathBuf>,
    /// After enrolling, the bundle in the image is replaced by one that
    /// also holds these anchors (the sealed digest stays the old one).
    swap_bundle: Vec<PathBuf>,
    tpm: Tpm,
    build_check: bool,
    /// SeaBIOS instead of OVMF.
    bios: bool,
    /// Provision an AK before the boot and have the guest quote with a
    /// nonce the host chose.
    attest: bool,
}

impl Scenario {
    fn new(name: &'static str, suite: &'static str, kind: Kind, mode: &'static str) -> Self {
        Scenario {
            name,
            suite,
            kind,
            mode,
            allow_weaken: false,
            append: "",
            tree: ("good", Vec::new()),
            anchors: Vec::new(),
            certs: Vec::new(),
            swap_bundle: Vec::new(),
            tpm: Tpm::Present,
            build_check: true,
            bios: false,
            attest: false,
        }
    }
}

/// What came out of one boot.
struct Boot {
    ak: Option<PathBuf>,
    nonce: String,
    /// The quote directory the guest sent back (attest scenarios).
    quote: Option<PathBuf>,
    suite: String,
    dir: PathBuf,
    result: String,
    serial: String,
    pcrs: BTreeMap<u8, String>,
    log: Option<PathBuf>,
    loaded: Vec<String>,
    bundle: PathBuf,
    /// The module directory as unpacked from the initramfs image.
    image_modules: PathBuf,
    certs: Vec<PathBuf>,
    /// The initramfs image booted.
    image: PathBuf,
    /// The firmware's TCG event log the guest printed.
    firmware_log: Option<PathBuf>,
    /// A kernel-signer bundle: the kernel image and release the derived
    /// anchor came from (what `predict --kernel --release` needs).
    derived_from: Option<(PathBuf, String)>,
}

impl Boot {
    fn context(&self) -> String {
        let modseal: Vec<&str> = self
            .serial
            .lines()
            .filter(|l| {
                l.contains("modseal") || l.contains("MODSEAL-ROOT") || l.contains("reboot:")
            })
            .collect();
        format!(
            "boot in {} ended '{}'; modseal lines:\n{}",
            self.dir.display(),
            self.result,
            modseal.join("\n")
        )
    }

    fn assert_result(&self, want: &str) {
        assert_eq!(self.result, want, "{}", self.context());
    }

    fn assert_serial(&self, needle: &str) {
        assert!(
            self.serial.contains(needle),
            "serial console lacks {needle:?}\n{}",
            self.context()
        );
    }

    fn assert_no_serial(&self, needle: &str) {
        assert!(
            !self.serial.contains(needle),
            "serial console has {needle:?}\n{}",
            self.context()
        );
    }

    /// modseal's stage summary line for `stage`.
    fn summary(&self, stage: &str) -> &str {
        let tag = format!("modseal: {stage} stage: ");
        self.serial
            .lines()
            .find(|l| l.contains(&tag))
            .unwrap_or_else(|| panic!("no {stage} stage summary\n{}", self.context()))
    }

    /// PCR 12 before modseal's first record: what systemd-boot measured.
    fn pcr12_before(&self) -> String {
        common::firmware_pcr(self.firmware_log.as_deref(), 12)
    }

    fn pcr(&self, idx: u8) -> &str {
        self.pcrs
            .get(&idx)
            .unwrap_or_else(|| panic!("PCR {idx} not reported\n{}", self.context()))
    }

    /// `modseal predict` for this image's module set, bundle and mode.
    fn predict(&self, mode: &str) -> String {
        let mut args: Vec<String> = vec![
            "predict".into(),
            "--trust".into(),
            self.bundle.display().to_string(),
            "--modules".into(),
            self.image_modules.display().to_string(),
            "--root".into(),
            self.dir.join("unpacked").display().to_string(),
            "--mode".into(),
            mode.into(),
            "--stage".into(),
            "early".into(),
            "--stage".into(),
            "pre-pivot".into(),
            "--from".into(),
            self.pcr12_before(),
        ];
        for c in &self.certs {
            args.push("--cert".into());
            args.push(c.display().to_string());
        }
        if let Some((vmlinuz, release)) = &self.derived_from {
            args.extend(["--kernel".into(), vmlinuz.display().to_string()]);
            args.extend(["--release".into(), release.clone()]);
        }
        let out = modseal(&args);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `predict` for this image with `module` put back as the kernel shipped it.
    fn predict_untampered(&self, mode: &str, module: &str) -> String {
        let k = kernel(&self.suite);
        let good = self.dir.join("untampered");
        let _ = std::fs::remove_dir_all(&good);
        run(Command::new("cp")
            .arg("-a")
            .arg(&self.image_modules)
            .arg(&good));
        let shipped = tree(&k, "good", &[]).join(module);
        std::fs::copy(&shipped, good.join(module)).unwrap();
        let b = Boot {
            image_modules: good,
            ..self.clone_paths()
        };
        b.predict(mode)
    }

    fn clone_paths(&self) -> Boot {
        Boot {
            ak: self.ak.clone(),
            nonce: self.nonce.clone(),
            quote: self.quote.clone(),
            suite: self.suite.clone(),
            dir: self.dir.clone(),
            result: self.result.clone(),
            serial: String::new(),
            pcrs: BTreeMap::new(),
            log: self.log.clone(),
            loaded: Vec::new(),
            bundle: self.bundle.clone(),
            image_modules: self.image_modules.clone(),
            certs: self.certs.clone(),
            image: self.image.clone(),
            firmware_log: self.firmware_log.clone(),
            derived_from: self.derived_from.clone(),
        }
    }

    /// `modseal attest` on what the guest sent back, with the AK provisioned
    /// before the boot and the nonce chosen for it, under `policy`.
    fn attest(&self, policy: &Path) -> (i32, String) {
        self.attest_quote(self.quote_dir(), policy)
    }

    fn quote_dir(&self) -> &Path {
        self.quote
            .as_deref()
            .unwrap_or_else(|| panic!("the guest sent no quote\n{}", self.context()))
    }

    /// `modseal attest` of the quote directory `quote` (this boot's, or a
    /// copy with edits) with this boot's AK and nonce.
    fn attest_quote(&self, quote: &Path, policy: &Path) -> (i32, String) {
        let ak = self.ak.as_deref().expect("no AK was provisioned");
        let out = modseal([
            "attest".as_ref(),
            "--ak".as_ref(),
            ak.as_os_str(),
            "--quote".as_ref(),
            quote.as_os_str(),
            "--nonce".as_ref(),
            self.nonce.as_ref(),
            "--policy".as_ref(),
            policy.as_os_str(),
        ]);
        (code(&out), describe(&out))
    }

    /// The verifier's policy made from the host's files before the boot
    /// (`attest --make-policy --trust --initrd --kernel`), written to
    /// `dir/name`.
    fn host_policy(&self, name: &str, initrds: &[&Path], kernels: &[&Path]) -> PathBuf {
        self.host_policy_cmdline(name, initrds, kernels, &[])
    }

    /// [`Boot::host_policy`] that also pins the command line to one of
    /// `cmdlines`.
    fn host_policy_cmdline(
        &self,
        name: &str,
        initrds: &[&Path],
        kernels: &[&Path],
        cmdlines: &[&str],
    ) -> PathBuf {
        // qemu/boot.sh's UEFI boots go through systemd-boot.
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "attest".as_ref(),
            "--make-policy".as_ref(),
            "--trust".as_ref(),
            self.bundle.as_os_str(),
            "--boot-app".as_ref(),
            qemu::SYSTEMD_BOOT.as_ref(),
        ];
        for i in initrds {
            args.extend(["--initrd".as_ref(), i.as_os_str()]);
        }
        for k in kernels {
            args.extend(["--kernel".as_ref(), k.as_os_str()]);
        }
        for c in cmdlines {
            args.extend::<[&std::ffi::OsStr; 2]>(["--cmdline".as_ref(), c.as_ref()]);
        }
        let out = modseal(&args);
        assert_eq!(code(&out), 0, "make-policy: {}", describe(&out));
        let path = self.dir.join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        path
    }

    /// The policy for this very boot: its bundle, image and kernel.
    fn own_policy(&self) -> PathBuf {
        let k = kernel(&self.suite);
        self.host_policy("policy", &[&self.image], &[&k.vmlinuz])
    }

    fn log_path(&self) -> &Path {
        self.log
            .as_deref()
            .unwrap_or_else(|| panic!("no event log came out of the guest\n{}", self.context()))
    }

    /// The PCR 12 value `modseal log replay` computes from the guest's log.
    fn replayed(&self) -> String {
        let from = self.pcr12_before();
        let out = modseal([
            "log".as_ref(),
            "replay".as_ref(),
            "--from".as_ref(),
            from.as_ref(),
            self.log_path().as_os_str(),
        ]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("pcr 12 sha256 "))
            .unwrap_or_else(|| panic!("no PCR 12 in replay output: {text}"))
            .to_owned()
    }

    fn log_show(&self) -> String {
        let out = modseal([
            "log".as_ref(),
            "show".as_ref(),
            "--modules".as_ref(),
            self.log_path().as_os_str(),
        ]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The module files in the image, relative to its module directory.
    fn image_module_files(&self) -> Vec<String> {
        common::module_files(&self.image_modules)
            .iter()
            .map(|p| {
                p.strip_prefix(&self.image_modules)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    }
}

/// A scenario's files before the boot: /etc/modseal, the swtpm state, the
/// initramfs image.
struct Prepared {
    /// The AK's public key as provisioned (what the verifier trusts).
    ak: Option<PathBuf>,
    dir: PathBuf,
    state: PathBuf,
    bundle: PathBuf,
    certs: Vec<PathBuf>,
    image: PathBuf,
}

/// The `modseal bundle` flags that seal a scenario's mode and allow-weaken.
fn sealed_settings(s: &Scenario) -> Vec<String> {
    let mut v = vec!["--mode".to_owned(), s.mode.to_owned()];
    if s.allow_weaken {
        v.push("--allow-weaken".into());
    }
    v
}

/// Provisioning: the AK is made and persisted in the TPM at `state`, its
/// public key handed to the verifier (returned), before the machine boots.
fn provision_ak(state: &Path, dir: &Path) -> PathBuf {
    let tpm = swtpm::Swtpm::start_with_state(state);
    let akdir = dir.join("verifier-ak");
    let out = modseal([
        "quote".as_ref(),
        "--tcti".as_ref(),
        tpm.tcti().as_ref(),
        "--nonce".as_ref(),
        "00".as_ref(),
        "--no-log".as_ref(),
        "--no-firmware-log".as_ref(),
        "--ak-dir".as_ref(),
        akdir.as_os_str(),
        "--out".as_ref(),
        dir.join("provision-quote").as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    akdir.join("ak.pem")
}

/// Writes the bundle and config, enrolls into the swtpm state the VM will
/// use, and runs dracut; returns dracut's output (the build may fail).
fn prepare(s: &Scenario) -> (Prepared, Output) {
    let k = kernel(s.suite);
    let dir = work_root().join(s.name);
    let _ = std::fs::remove_dir_all(&dir);
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let edits: Vec<&str> = s.tree.1.iter().map(String::as_str).collect();
    let moddir = tree(&k, s.tree.0, &edits);

    // The bundle the TPM seals: the kernel's key plus any extra anchors.
    let bundle = etc.join("trust.bundle");
    let mut args = vec!["bundle".to_string()];
    for a in std::iter::once(&k.cert).chain(&s.anchors) {
        args.push("--anchor".into());
        args.push(a.display().to_string());
    }
    // The mode and allow-weaken are sealed with the bundle.
    args.extend(sealed_settings(s));
    args.push("--out".into());
    args.push(bundle.display().to_string());
    let out = modseal(&args);
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // Enroll into the state directory the VM's swtpm will use.
    let state = dir.join("tpm");
    qemu::enroll_uefi(&bundle, &state, &etc.join("sealed"));
    let ak = s.attest.then(|| provision_ak(&state, &dir));
    if !s.swap_bundle.is_empty() {
        let mut args = vec!["bundle".to_string()];
        for a in std::iter::once(&k.cert).chain(&s.swap_bundle) {
            args.push("--anchor".into());
            args.push(a.display().to_string());
        }
        args.extend(sealed_settings(s));
        args.push("--out".into());
        args.push(bundle.display().to_string());
        let out = modseal(&args);
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }
    let mut conf = format!(
        "trust = {}\nsealed = {}\n",
        bundle.display(),
        etc.join("sealed").display(),
    );
    let mut certs = Vec::new();
    if !s.certs.is_empty() {
        let cdir = etc.join("certs");
        std::fs::create_dir_all(&cdir).unwrap();
        for c in &s.certs {
            let to = cdir.join(c.file_name().unwrap());
            std::fs::copy(c, &to).unwrap();
            certs.push(to);
        }
        conf.push_str(&format!("certs = {}\n", cdir.display()));
    }
    std::fs::write(etc.join("modseal.conf"), conf).unwrap();

    let image = dir.join("initrd.img");
    let mut cmd = script("build-initramfs.sh");
    cmd.arg("--kind")
        .arg(s.kind.name())
        .arg("--kver")
        .arg(&k.kver)
        .arg("--kmoddir")
        .arg(&moddir)
        .arg("--confdir")
        .arg(&etc)
        .arg("--out")
        .arg(&image)
        .arg("--binary")
        .arg(static_bin());
    if !s.build_check {
        cmd.arg("--no-build-check");
    }
    if s.tpm == Tpm::PcrMoved {
        cmd.arg("--dracut-module")
            .arg(repo().join("qemu/dracut/99modseal-test-move-pcr"));
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("cannot run qemu/build-initramfs.sh");
    let p = Prepared {
        ak,
        dir,
        state,
        bundle,
        certs,
        image,
    };
    (p, out)
}

/// Builds the scenario's image, enrolls its TPM and boots it.
fn boot(s: &Scenario) -> Boot {
    let k = kernel(s.suite);
    let (p, out) = prepare(s);
    assert!(out.status.success(), "dracut failed\n{}", describe(&out));
    let Prepared {
        ak,
        dir,
        state,
        bundle,
        certs,
        image,
    } = p;

    // The module set as the guest will see it, for predict.
    let image_modules = qemu::unpack_image(&image, &dir.join("unpacked"), &k.kver);

    // The verifier's fresh nonce, handed to the guest on its command line.
    let nonce = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .unwrap()
        .trim()
        .replace('-', "");
    let nonce_arg = if s.attest {
        format!("modseal.test.nonce={nonce}")
    } else {
        String::new()
    };
    let vm = qemu::VmBoot {
        kernel: &k,
        image: &image,
        tpm_state: (s.tpm != Tpm::Absent).then_some(state.as_path()),
        append: format!("loglevel=7 {} {}", s.append, nonce_arg),
        dir: &dir,
        timeout: 600,
        bios: s.bios,
        root: None,
    }
    .run();
    Boot {
        ak,
        nonce,
        quote: vm.quote,
        suite: s.suite.to_owned(),
        dir,
        result: vm.result,
        serial: vm.serial,
        pcrs: vm.pcrs,
        log: vm.log,
        loaded: vm.loaded,
        bundle,
        image_modules,
        certs,
        image,
        firmware_log: vm.firmware_log,
        derived_from: None,
    }
}

/// The good boots, each made once per test process: the attestation tests
/// in `attest` reuse their evidence instead of booting again.
fn good(suite: &'static str, kind: Kind) -> &'static Boot {
    static BOOTS: [OnceLock<Boot>; 6] = [const { OnceLock::new() }; 6];
    let (i, name) = match (suite, kind) {
        ("bookworm", Kind::Systemd) => (0, "good-bookworm-systemd"),
        ("bookworm", Kind::Classic) => (1, "good-bookworm-classic"),
        ("trixie", Kind::Systemd) => (2, "good-trixie-systemd"),
        ("trixie", Kind::Classic) => (3, "good-trixie-classic"),
        ("trixie-backports", Kind::Systemd) => (4, "good-trixie-backports-systemd"),
        ("trixie-backports", Kind::Classic) => (5, "good-trixie-backports-classic"),
        _ => panic!("no good boot of {suite} {kind:?}"),
    };
    BOOTS[i].get_or_init(|| {
        let mut s = Scenario::new(name, suite, kind, "enforce");
        s.attest = true;
        boot(&s)
    })
}

/// A good boot reaches the root; PCR 12 equals `modseal predict` and the
/// event log replays to it; every module in the image is listed as ok.
fn good_boot(suite: &'static str, kind: Kind) {
    let b = good(suite, kind);
    b.assert_result("root");
    let early = b.summary("early");
    assert!(early.ends_with("pass"), "{early}\n{}", b.context());
    let pre = b.summary("pre-pivot");
    assert!(pre.ends_with("pass"), "{pre}\n{}", b.context());
    let files = b.image_module_files();
    assert!(
        !files.is_empty(),
        "no modules in the image\n{}",
        b.context()
    );
    assert!(
        early.contains(&format!(": {} verified, 0 failed", files.len())),
        "early stage did not verify the image's {} modules: {early}",
        files.len()
    );
    let predicted = b.predict("enforce");
    assert_eq!(b.pcr(12), predicted, "PCR 12 vs predict\n{}", b.context());
    assert_eq!(b.replayed(), predicted, "log replay vs PCR 12");
    let shown = b.log_show();
    for f in &files {
        assert!(
            shown
                .lines()
                .any(|l| l.contains(f.as_str()) && l.contains("ok")),
            "log show does not list {f} as ok:\n{shown}"
        );
    }
    // The root disk's driver was loaded, and only after it was verified.
    assert!(
        b.loaded.iter().any(|m| m == "virtio_blk") || suite == "trixie",
        "virtio_blk not loaded: {:?}",
        b.loaded
    );
    // What the firmware measured before the initramfs, replayed by modseal
    // and by tpm2_eventlog, is what the guest read in PCRs 4 and 9.
    attest::assert_firmware_replay(b);
    // Remote attestation: the guest quoted PCRs 4, 9 and 12 with the
    // verifier's nonce; the host decides from the quote, the logs and a
    // policy it made from its own files before the boot.
    let policy = b.own_policy();
    let (rc, out) = b.attest(&policy);
    assert_eq!(rc, 0, "attest did not trust a good boot:\n{out}");
    assert!(out.contains("trusted"), "{out}");
    // The same quote under another nonce is stale.
    let mut stale = b.clone_paths();
    stale.nonce = "00".repeat(16);
    let (rc, out) = stale.attest(&policy);
    assert_eq!(rc, 1, "a stale nonce was trusted:\n{out}");
}

#[test]
fn good_boot_bookworm_systemd() {
    good_boot("bookworm", Kind::Systemd);
}

#[test]
fn good_boot_bookworm_classic() {
    good_boot("bookworm", Kind::Classic);
}

#[test]
fn good_boot_trixie_systemd() {
    good_boot("trixie", Kind::Systemd);
}

#[test]
fn good_boot_trixie_classic() {
    good_boot("trixie", Kind::Classic);
}

/// Linux 7.x as Debian packages it (linux-image-KVER a metapackage, the
/// image at usr/lib/modules/KVER/vmlinuz from linux-binary-KVER).
#[test]
fn good_boot_trixie_backports_systemd() {
    good_boot("trixie-backports", Kind::Systemd);
}

#[test]
fn good_boot_trixie_backports_classic() {
    good_boot("trixie-backports", Kind::Classic);
}

fn flipped(k: &Kernel) -> (&'static str, Vec<String>) {
    ("flip", vec!["--flip".into(), k.disk_module.into()])
}

/// A module in the image that the boot does not need. A module whose
/// signature does not match is refused by the kernel itself even without
/// signature enforcement (kernel/module/signing.c: only missing signatures
/// and unknown keys are non-fatal), so a warn-mode boot that should reach its
/// root cannot have its disk driver tampered with.
const SPARE_MODULE: &str = "kernel/crypto/crc32_generic.ko";

/// The image's copy of the disk module as the guest names it.
fn disk_module_path(k: &Kernel) -> String {
    format!("/lib/modules/{}/{}", k.kver, k.disk_module)
}

/// Enforce: the boot stops before the root, the kernel log names the
/// module and the verdict, and the module was never loaded.
fn assert_stopped_for_module(b: &Boot, k: &Kernel, verdict: &str, kind: Kind) {
    // Both kinds halt: no shell, no panic (rd.shell cannot turn it into one).
    let _ = kind;
    b.assert_result("halted");
    b.assert_no_serial("MODSEAL-ROOT: reached");
    let named = b.serial.lines().any(|l| {
        l.contains("modseal: ") && l.contains(&disk_module_path(k)) && l.contains(verdict)
    });
    assert!(
        named,
        "no modseal line names the module and {verdict}\n{}",
        b.context()
    );
    assert!(
        b.summary("early").contains("FAIL (enforce mode)"),
        "{}",
        b.context()
    );
    // A module with a bad signature would taint the kernel when loaded, and
    // a loaded virtio_blk would have found the disk.
    b.assert_no_serial("module verification failed");
    b.assert_no_serial("[vda]");
}

/// Warn: the root is reached, PCR 12 is not the good prediction, the log
/// names the module.
fn assert_warned_for_module(b: &Boot, module: &str, verdict: &str) {
    b.assert_result("root");
    assert!(
        b.summary("early").contains("FAIL (warn mode)"),
        "{}",
        b.context()
    );
    let good = b.predict_untampered("warn", module);
    assert_ne!(b.pcr(12), good, "PCR 12 equals a good warn-mode boot's");
    assert_eq!(b.replayed(), b.pcr(12), "log replay vs PCR 12");
    let shown = b.log_show();
    assert!(
        shown
            .lines()
            .any(|l| l.contains(module) && l.contains(verdict)),
        "log show does not name {module} as {verdict}:\n{shown}"
    );
}

#[test]
fn flipped_byte_enforce_stops_boot_systemd() {
    let k = kernel("bookworm");
    let mut s = Scenario::new("flip-enforce-systemd", "bookworm", Kind::Systemd, "enforce");
    s.tree = flipped(&k);
    s.build_check = false;
    let b = boot(&s);
    assert_stopped_for_module(&b, &k, "bad-signature", Kind::Systemd);
}

#[test]
fn flipped_byte_enforce_stops_boot_classic() {
    let k = kernel("trixie");
    let mut s = Scenario::new("flip-enforce-classic", "trixie", Kind::Classic, "enforce");
    s.tree = flipped(&k);
    s.build_check = false;
    let b = boot(&s);
    assert_stopped_for_module(&b, &k, "bad-signature", Kind::Classic);
}

#[test]
fn flipped_byte_warn_boots_and_measures() {
    let k = kernel("bookworm");
    let mut s = Scenario::new("flip-warn", "bookworm", Kind::Classic, "warn");
    s.tree = ("flip-spare", vec!["--flip".into(), SPARE_MODULE.into()]);
    s.build_check = false;
    s.attest = true;
    let b = boot(&s);
    // The verifier is told: not trusted, naming the module and its verdict
    // (the policy accepts warn mode, so the module is what fails).
    let (rc, out) = b.attest(&attest::hand_policy(&b, "any"));
    assert_eq!(
        rc, 1,
        "attest trusted a boot with a tampered module:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(SPARE_MODULE) && l.contains("bad-signature")),
        "attest does not name the module:\n{out}"
    );
    assert_warned_for_module(&b, SPARE_MODULE, "bad-signature");
    // Nothing unverified was loaded (the kernel refuses a bad signature
    // itself), so this is exactly the failing boot `predict` foresees.
    assert_eq!(
        b.pcr(12),
        b.predict("warn"),
        "PCR 12 vs predict of this image"
    );
    b.assert_serial(&format!(
        "modseal: /lib/modules/{}/{SPARE_MODULE}: bad-signature",
        k.kver
    ));
}

fn resigned(k: &Kernel, name: &'static str) -> ((&'static str, Vec<String>), PathBuf) {
    let keys = work_root().join("keys").join(name);
    std::fs::create_dir_all(&keys).unwrap();
    let (key, crt) = signing_key(&keys, "attacker", None);
    let tree = (
        name,
        vec![
            "--resign".into(),
            k.disk_module.into(),
            key.display().to_string(),
            crt.display().to_string(),
        ],
    );
    (tree, crt)
}

#[test]
fn unknown_key_enforce_stops_boot() {
    let k = kernel("trixie");
    let mut s = Scenario::new("unknown-key-enforce", "trixie", Kind::Systemd, "enforce");
    s.tree = resigned(&k, "resign-enforce").0;
    s.build_check = false;
    let b = boot(&s);
    assert_stopped_for_module(&b, &k, "unknown-key", Kind::Systemd);
}

#[test]
fn unknown_key_warn_boots_and_measures() {
    let k = kernel("bookworm");
    let mut s = Scenario::new("unknown-key-warn", "bookworm", Kind::Systemd, "warn");
    s.tree = resigned(&k, "resign-warn").0;
    s.build_check = false;
    let b = boot(&s);
    assert_warned_for_module(&b, k.disk_module, "unknown-key");
    // The kernel does not enforce signatures: it loaded the module modseal
    // could not verify (tainted). In enforce mode modseal stops this.
    assert!(b.loaded.iter().any(|m| m == "virtio_blk"), "{:?}", b.loaded);
    // Reconciled at pre-pivot: loaded, and no verified file for it.
    assert!(
        b.summary("pre-pivot").contains("FAIL (warn mode)"),
        "{}",
        b.context()
    );
    b.assert_serial(
        "modseal: loaded: module virtio_blk: loaded, but no file of that name verified",
    );
    b.assert_serial("modseal: loaded: module virtio_blk: loaded although the kernel found no valid signature (taint E)");
}

#[test]
fn pcr_moved_refuses_unseal_and_stops_boot() {
    let mut s = Scenario::new("pcr-moved", "bookworm", Kind::Systemd, "enforce");
    s.tpm = Tpm::PcrMoved;
    let b = boot(&s);
    b.assert_result("halted");
    b.assert_no_serial("MODSEAL-ROOT: reached");
    b.assert_serial("modseal-test: extending PCR 8");
    let early = b.summary("early");
    assert!(early.contains("unseal pcr-changed"), "{early}");
    assert!(
        early.contains("measured into PCR 12"),
        "failure not measured: {early}"
    );
    assert!(early.contains("FAIL (enforce mode)"), "{early}");
    assert!(
        b.serial
            .lines()
            .any(|l| l.contains("modseal: ") && l.contains("PCR 8")),
        "no message names the moved PCR\n{}",
        b.context()
    );
}

#[test]
fn swapped_bundle_digest_mismatch_stops_boot() {
    let keys = work_root().join("keys/swap");
    std::fs::create_dir_all(&keys).unwrap();
    let (_, attacker) = signing_key(&keys, "attacker", None);
    let mut s = Scenario::new("bundle-swapped", "bookworm", Kind::Classic, "enforce");
    s.swap_bundle = vec![attacker];
    let b = boot(&s);
    b.assert_result("halted");
    b.assert_no_serial("MODSEAL-ROOT: reached");
    let early = b.summary("early");
    assert!(early.contains("unseal digest-mismatch"), "{early}");
    assert!(early.contains("FAIL (enforce mode)"), "{early}");
}

#[test]
fn no_tpm_enforce_stops_boot() {
    let mut s = Scenario::new("no-tpm-enforce", "bookworm", Kind::Systemd, "enforce");
    s.tpm = Tpm::Absent;
    // The one SeaBIOS boot: the harness's other firmware still boots, and
    // without a TPM nothing is measured under either.
    s.bios = true;
    let b = boot(&s);
    b.assert_result("halted");
    b.assert_no_serial("MODSEAL-ROOT: reached");
    let early = b.summary("early");
    assert!(early.contains("unseal no-tpm"), "{early}");
    assert!(early.contains("NOT measured"), "{early}");
    assert!(b.serial.contains("modseal: no TPM"), "{}", b.context());
}

#[test]
fn no_tpm_cannot_confirm_a_sealed_warn_mode() {
    // Without a TPM nothing confirms the bundle's `mode warn`: an attacker
    // could have written it (and a TCTI leading nowhere). Fail closed.
    let mut s = Scenario::new("no-tpm-warn", "bookworm", Kind::Classic, "warn");
    s.tpm = Tpm::Absent;
    let b = boot(&s);
    b.assert_result("halted");
    let early = b.summary("early");
    assert!(early.contains("unseal no-tpm"), "{early}");
    assert!(early.contains("FAIL (enforce mode)"), "{early}");
    assert!(b.serial.contains("modseal: no TPM"), "{}", b.context());
    b.assert_serial("the trust bundle's settings are not applied");
    b.assert_no_serial("MODSEAL-ROOT: reached");
}

#[test]
fn cmdline_off_ignored_when_the_sealed_policy_forbids_weakening() {
    let k = kernel("bookworm");
    let mut s = Scenario::new("off-forbidden", "bookworm", Kind::Systemd, "enforce");
    s.tree = flipped(&k);
    s.build_check = false;
    s.append = "rd.modseal=off";
    let b = boot(&s);
    assert!(
        b.serial.lines().any(|l| l.contains(
            "modseal: ignored: rd.modseal=off: the sealed policy does not allow weakening"
        )),
        "no message about the ignored rd.modseal=off\n{}",
        b.context()
    );
    // Still enforcing: the tampered module stops the boot.
    assert_stopped_for_module(&b, &k, "bad-signature", Kind::Systemd);
}

#[test]
fn ca_issued_key_verifies_but_the_kernels_taint_stops_the_boot() {
    // modseal trusts a key its bundle's CA issued (no resealing), but the
    // kernel does not know it: it loads the module tainted E. The taint
    // check cannot tell this from a foreign module loaded beside a verified
    // file of its name, so enforce mode stops at pre-pivot: a rotated key
    // must also be in the kernel's keyrings (docs/trust-bundle.md).
    let k = kernel("bookworm");
    let keys = work_root().join("keys/ca");
    std::fs::create_dir_all(&keys).unwrap();
    let (_, ca) = signing_key(&keys, "module-ca", None);
    let (leaf_key, leaf) = signing_key(&keys, "rotated", Some("module-ca"));
    let mut s = Scenario::new("ca-issued", "bookworm", Kind::Systemd, "enforce");
    s.tree = (
        "ca-leaf",
        vec![
            "--resign".into(),
            k.disk_module.into(),
            leaf_key.display().to_string(),
            leaf.display().to_string(),
        ],
    );
    s.anchors = vec![ca];
    s.certs = vec![leaf];
    let b = boot(&s);
    b.assert_result("halted");
    assert!(b.summary("early").ends_with("pass"), "{}", b.context());
    assert!(
        b.summary("pre-pivot").ends_with("FAIL (enforce mode)"),
        "{}",
        b.context()
    );
    b.assert_serial(&format!(
        "modseal: loaded: module {}: loaded although the kernel found no valid signature (taint E)",
        k.disk_module
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".ko")
    ));
}

/// The dracut module's build-time check: a module that would not verify
/// fails the build, naming the module and the verdict, and leaves no image.
#[test]
fn dracut_build_fails_on_a_module_that_would_not_verify() {
    let k = kernel("bookworm");
    let mut s = Scenario::new("build-check", "bookworm", Kind::Classic, "enforce");
    s.tree = flipped(&k);
    let (p, out) = prepare(&s);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "dracut built the image:\n{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(&disk_module_path(&k)) && l.contains("bad-signature")),
        "dracut's output does not name the module:\n{text}"
    );
    assert!(text.contains("not building the initramfs"), "{text}");
    assert!(
        !p.image.exists(),
        "an image was written despite the failure"
    );

    // The same tree with the check turned off builds (the boot tests of
    // tampered images rely on this).
    s.name = "build-check-off";
    s.build_check = false;
    let (p, out) = prepare(&s);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(p.image.is_file());
}

/// The dracut module refuses to build without an enrollment: an initramfs
/// that cannot unseal would stop every boot in enforce mode.
#[test]
fn dracut_build_fails_without_enrollment() {
    let k = kernel("bookworm");
    let dir = work_root().join("no-enrollment");
    let _ = std::fs::remove_dir_all(&dir);
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let bundle = etc.join("trust.bundle");
    let out = modseal([
        "bundle".as_ref(),
        "--anchor".as_ref(),
        k.cert.as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    std::fs::write(
        etc.join("modseal.conf"),
        format!(
            "trust = {}\nsealed = {}/sealed\n",
            bundle.display(),
            etc.display()
        ),
    )
    .unwrap();
    let out = script("build-initramfs.sh")
        .arg("--kind")
        .arg("classic")
        .arg("--kver")
        .arg(&k.kver)
        .arg("--kmoddir")
        .arg(tree(&k, "good", &[]))
        .arg("--confdir")
        .arg(&etc)
        .arg("--out")
        .arg(dir.join("initrd.img"))
        .arg("--binary")
        .arg(static_bin())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "built without an enrollment");
    assert!(
        text.contains("sealed.json") && text.contains("modseal enroll"),
        "{text}"
    );
    assert!(!dir.join("initrd.img").exists());
}

/// scripts/install.sh puts the binary and the dracut module in their
/// standard places (staged with DESTDIR).
#[test]
fn install_script_stages_binary_and_dracut_module() {
    let dest = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg("--binary")
        .arg(common::modseal_bin())
        .env("DESTDIR", dest.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The host (glibc) test binary is refused: the initramfs needs the static one.
    let is_static = !String::from_utf8_lossy(
        &Command::new("file")
            .arg("-b")
            .arg(common::modseal_bin())
            .output()
            .unwrap()
            .stdout,
    )
    .contains("dynamically linked");
    if !is_static {
        assert!(!out.status.success(), "a dynamic binary was installed");
        return;
    }
    assert!(out.status.success(), "{}", describe(&out));
    let root = dest.path();
    for f in [
        "usr/bin/modseal",
        "usr/lib/dracut/modules.d/90modseal/module-setup.sh",
        "usr/lib/dracut/modules.d/90modseal/modseal-early.service",
        "usr/lib/dracut/modules.d/90modseal/modseal-pre-pivot.service",
        "usr/lib/dracut/modules.d/90modseal/modseal-early.sh",
        "usr/lib/dracut/modules.d/90modseal/modseal-pre-pivot.sh",
        "usr/share/doc/modseal/dracut.conf.d-modseal.conf",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    let conf =
        std::fs::read_to_string(root.join("usr/share/doc/modseal/dracut.conf.d-modseal.conf"))
            .unwrap();
    assert!(conf.contains("add_dracutmodules+=\" modseal \""), "{conf}");
    let v = Command::new(root.join("usr/bin/modseal"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(v.status.success());
}

/// The kernel postinst hook (dracut-module/kernel/zz-modseal) checks the new
/// kernel's initramfs with check-initramfs: quiet success for a good image,
/// a loud failure (exit 1, naming the module) for a tampered one, a warning
/// only when configured so.
#[test]
fn kernel_postinst_hook_checks_the_new_initramfs() {
    let k = kernel("bookworm");
    let hook = repo().join("dracut-module/kernel/zz-modseal");
    let run_hook = |p: &Prepared, boot: &Path, warn_only: bool| {
        std::fs::create_dir_all(boot).unwrap();
        std::fs::copy(&p.image, boot.join(format!("initrd.img-{}", k.kver))).unwrap();
        let mut cmd = Command::new(&hook);
        cmd.arg(&k.kver)
            .arg(&k.vmlinuz)
            .env("MODSEAL_BIN", static_bin())
            .env("MODSEAL_CONF", p.dir.join("etc/modseal.conf"))
            .env("MODSEAL_BOOT", boot)
            .stdin(Stdio::null());
        if warn_only {
            cmd.env("MODSEAL_POSTINST_WARN_ONLY", "1");
        }
        cmd.output().unwrap()
    };

    let good = Scenario::new("postinst-good", "bookworm", Kind::Classic, "enforce");
    let (p, out) = prepare(&good);
    assert!(out.status.success(), "{}", describe(&out));
    let out = run_hook(&p, &p.dir.join("boot"), false);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("every kernel module verifies"));

    let mut bad = Scenario::new("postinst-bad", "bookworm", Kind::Classic, "enforce");
    bad.tree = flipped(&k);
    bad.build_check = false;
    let (p, out) = prepare(&bad);
    assert!(out.status.success(), "{}", describe(&out));
    let out = run_hook(&p, &p.dir.join("boot"), false);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{}: bad-signature", k.disk_module))
            && err.contains("will NOT verify"),
        "{err}"
    );
    let out = run_hook(&p, &p.dir.join("boot"), true);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// Debian's 7.x packaging: the postinst hook is given `/boot/vmlinuz-KVER`
/// (a copy linux-base's `00-legacy-boot` hook makes of
/// `/usr/lib/modules/KVER/vmlinuz`, maybe not yet) and checks the initramfs
/// the dracut hook wrote next to that path, with no MODSEAL_BOOT to point it there.
#[test]
fn kernel_postinst_hook_finds_the_7x_initramfs_next_to_the_image() {
    let k = kernel("trixie-backports");
    let hook = repo().join("dracut-module/kernel/zz-modseal");
    let good = Scenario::new("postinst-7x", "trixie-backports", Kind::Classic, "enforce");
    let (p, out) = prepare(&good);
    assert!(out.status.success(), "{}", describe(&out));
    let boot = p.dir.join("boot");
    std::fs::create_dir_all(&boot).unwrap();
    let initrd = boot.join(format!("initrd.img-{}", k.kver));
    std::fs::copy(&p.image, &initrd).unwrap();
    let out = Command::new(&hook)
        .arg(&k.kver)
        .arg(boot.join(format!("vmlinuz-{}", k.kver)))
        .env("MODSEAL_BIN", static_bin())
        .env("MODSEAL_CONF", p.dir.join("etc/modseal.conf"))
        .env_remove("MODSEAL_BOOT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: every kernel module verifies",
            initrd.display()
        )),
        "{err}"
    );
}
