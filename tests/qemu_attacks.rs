//! Attacks on enforce mode as DESIGN.md's attacker makes them (issue 11):
//! someone who can write the initramfs on disk, but not the firmware or the
//! TPM. Each attack is an overlay: a second cpio archive appended to a good,
//! enrolled image (qemu/overlay.sh), whose files the kernel unpacks over the
//! image's own. One image per kind (bookworm 6.1, systemd and classic) is
//! built and enrolled once per test process; attacks that cannot mask each
//! other share one boot, and every boot also carries a module that must not
//! pass, so an attack that is only "ignored" still shows as a stopped boot.
//!
//! Needs what tests/qemu_boot.rs needs (scripts/setup.sh, the static musl
//! binary in MODSEAL_BIN). Artefacts stay in target/qemu-attacks/<boot>/.

mod common;
#[path = "common/qemu.rs"]
mod qemu;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::{code, describe, modseal, run, static_bin, work_root};
use qemu::{kernel, resign_module, script, signing_key, tree, unsigned_module, Kernel, Kind};

/// A boot that should stop does so within a minute under TCG; a shell
/// waiting on the console (the failure these tests guard against) would
/// otherwise hold the test for boot.sh's default.
const TIMEOUT: u32 = 300;

/// A module in both images that no boot loads (tests/qemu_boot.rs's spare
/// module): the foreign-key copy of it loads without a clash.
const FOREIGN_MODULE: &str = "kernel/crypto/crc32_generic.ko";
const FOREIGN_NAME: &str = "crc32_generic";

/// The command line of the combined "disk" attack: weakening and moving the
/// measurement without the sealed policy's leave, and asking for a shell on
/// failure (boot.sh's own rd.shell=0 comes first; dracut's getarg takes the
/// last occurrence).
const OVERRIDES: &str = "rd.modseal=warn rd.modseal.pcr=23 rd.shell=1";

/// One good image, enrolled: what the owner installed.
struct Image {
    kind: Kind,
    k: Kernel,
    image: PathBuf,
    /// The swtpm state it was enrolled into (each boot takes a copy).
    state: PathBuf,
    bundle: PathBuf,
    sealed: PathBuf,
    unpacked: PathBuf,
    /// Its module directory under `unpacked`, through real directories only.
    moddir: PathBuf,
    /// Its /etc/modseal/modseal.conf.
    conf: String,
}

impl Image {
    /// A path of the image (absolute in the guest) as a path under an
    /// overlay directory.
    fn in_overlay(&self, overlay: &Path, guest: &Path) -> PathBuf {
        overlay.join(guest.strip_prefix("/").unwrap_or(guest))
    }

    /// The module directory's path relative to the image root.
    fn moddir_rel(&self) -> &Path {
        self.moddir.strip_prefix(&self.unpacked).unwrap()
    }

    /// The disk driver as the guest's modseal names it.
    fn disk_module_guest(&self) -> String {
        format!("lib/modules/{}/{}", self.k.kver, self.k.disk_module)
    }
}

fn image(kind: Kind) -> &'static Image {
    static SYSTEMD: OnceLock<Image> = OnceLock::new();
    static CLASSIC: OnceLock<Image> = OnceLock::new();
    match kind {
        Kind::Systemd => SYSTEMD.get_or_init(|| build_image(kind)),
        Kind::Classic => CLASSIC.get_or_init(|| build_image(kind)),
    }
}

/// The bookworm kernel's image of `kind` with the default sealed policy
/// (enforce, PCR 12, no weakening): a bundle of the kernel's key and a
/// modseal.conf naming only the bundle and the enrollment.
fn build_image(kind: Kind) -> Image {
    let k = kernel("bookworm");
    let dir = work_root().join(format!("image-{}", kind.name()));
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
    let state = dir.join("tpm");
    let sealed = etc.join("sealed");
    qemu::enroll_uefi(&bundle, &state, &sealed);
    let conf = format!(
        "trust = {}\nsealed = {}\n",
        bundle.display(),
        sealed.display()
    );
    std::fs::write(etc.join("modseal.conf"), &conf).unwrap();
    let img = dir.join("initrd.img");
    run(script("build-initramfs.sh")
        .arg("--kind")
        .arg(kind.name())
        .arg("--kver")
        .arg(&k.kver)
        .arg("--kmoddir")
        .arg(tree(&k, "good", &[]))
        .arg("--confdir")
        .arg(&etc)
        .arg("--out")
        .arg(&img)
        .arg("--binary")
        .arg(static_bin())
        .stdin(Stdio::null()));
    let unpacked = dir.join("unpacked");
    let moddir = qemu::unpack_image(&img, &unpacked, &k.kver);
    let conf = std::fs::read_to_string(unpacked.join("etc/modseal/modseal.conf")).unwrap();
    let moddir_rel = moddir.strip_prefix(&unpacked).unwrap();
    let mut p = unpacked.clone();
    for c in moddir_rel.components() {
        p.push(c);
        assert!(
            !p.symlink_metadata().unwrap().file_type().is_symlink(),
            "{} is a symlink: an overlay directory there would replace it",
            p.display()
        );
    }
    Image {
        kind,
        k,
        image: img,
        state,
        bundle,
        sealed,
        unpacked,
        moddir,
        conf,
    }
}

/// Copies a directory tree of plain files.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dest);
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dest).unwrap();
        } else {
            panic!("{}: not a file or directory", e.path().display());
        }
    }
}

fn write(path: &Path, text: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The module whose load a modprobe.d `install` line hijacks: under systemd
/// the one PID 1 loads itself before any unit (autofs4); in a classic image
/// one the boot's udev modprobes (the disk driver).
fn hijacked_module(kind: Kind) -> &'static str {
    match kind {
        Kind::Systemd => "autofs4",
        Kind::Classic => "virtio_blk",
    }
}

/// The combined "disk" attack, all of it written into the image:
/// - `modules =` pointing at a pristine copy of the module tree, while the
///   disk driver in the kernel's own module directory lost its signature;
/// - `mode = warn`, `pcr = 16`, `allow-weaken = yes` in modseal.conf;
/// - a modprobe.d `install` command for a module loaded during the boot.
fn disk_overlay(img: &Image, o: &Path) {
    let kver = &img.k.kver;
    copy_tree(&img.moddir, &o.join("pristine").join(kver));
    let disk = img.moddir.join(img.k.disk_module);
    write(
        &o.join(img.moddir_rel()).join(img.k.disk_module),
        unsigned_module(&disk),
    );
    write(
        &o.join("etc/modseal/modseal.conf"),
        format!(
            "{}modules = /pristine/{kver}\nmode = warn\npcr = 16\nallow-weaken = yes\n",
            img.conf
        ),
    );
    let m = hijacked_module(img.kind);
    if img.kind == Kind::Systemd {
        assert!(
            img.moddir.join("kernel/fs/autofs/autofs4.ko").is_file(),
            "autofs4 is not a module in the image: PID 1 would load nothing"
        );
    }
    write(
        &o.join("etc/modprobe.d/evil.conf"),
        format!(
            "install {m} /bin/sh -c 'echo MODSEAL-ATTACK-INSTALL-RAN > /dev/kmsg; \
             /sbin/modprobe --ignore-install {m}'\n"
        ),
    );
}

/// A copy of [`FOREIGN_MODULE`] signed by a key nobody trusts, outside the
/// module tree, and something that loads it after the early stage: a unit
/// under systemd, a pre-mount hook in a classic image. The kernel does not
/// enforce signatures, so it loads the module and taints itself `E`.
fn foreign_overlay(img: &Image, o: &Path, keys: &Path) {
    std::fs::create_dir_all(keys).unwrap();
    let (key, crt) = signing_key(keys, "attacker", None);
    let foreign = o.join("foreign").join(format!("{FOREIGN_NAME}.ko"));
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    resign_module(&img.moddir.join(FOREIGN_MODULE), &key, &crt, &foreign);
    // Also says whether the kernel shows the module's build-id note in
    // sysfs: the loaded-module check compares it with the verified file's.
    write(
        &o.join("foreign/load.sh"),
        format!(
            "insmod /foreign/{FOREIGN_NAME}.ko\nrc=$?\nnote=absent\n\
             [ -r /sys/module/{FOREIGN_NAME}/notes/.note.gnu.build-id ] && note=present\n\
             echo \"MODSEAL-ATTACK-INSMOD rc=$rc note=$note\" > /dev/kmsg\n"
        ),
    );
    let load = "/bin/sh /foreign/load.sh";
    match img.kind {
        Kind::Systemd => {
            let unit = "modseal-attack-insmod.service";
            // `$$` is systemd's escape for a literal `$`.
            write(
                &o.join("etc/systemd/system").join(unit),
                format!(
                    "[Unit]\nDescription=attack: load a foreign-signed module\n\
                     DefaultDependencies=no\nAfter=modseal-early.service\n\
                     Before=modseal-pre-pivot.service initrd.target\n\n\
                     [Service]\nType=oneshot\nRemainAfterExit=yes\n\
                     ExecStart={load}\n\n\
                     [Install]\nWantedBy=initrd.target\n"
                ),
            );
            let wants = o.join("etc/systemd/system/initrd.target.wants");
            std::fs::create_dir_all(&wants).unwrap();
            std::os::unix::fs::symlink(format!("../{unit}"), wants.join(unit)).unwrap();
        }
        Kind::Classic => {
            let hooks = img.unpacked.join("usr/lib/dracut/hooks/pre-mount");
            assert!(hooks.is_dir(), "{}: no such directory", hooks.display());
            write(
                &o.join("usr/lib/dracut/hooks/pre-mount/50-evil.sh"),
                format!("{load}\n"),
            );
            // dracut's classic image has kmod but no insmod link.
            if img
                .unpacked
                .join("usr/sbin/insmod")
                .symlink_metadata()
                .is_err()
            {
                std::fs::create_dir_all(o.join("usr/sbin")).unwrap();
                std::os::unix::fs::symlink("../bin/kmod", o.join("usr/sbin/insmod")).unwrap();
            }
        }
    }
}

/// What one attack boot showed.
struct Attacked {
    dir: PathBuf,
    vm: qemu::VmRun,
}

impl Attacked {
    fn context(&self) -> String {
        let lines: Vec<&str> = self
            .vm
            .serial
            .lines()
            .filter(|l| {
                l.contains("modseal")
                    || l.contains("MODSEAL-ROOT")
                    || l.contains("MODSEAL-ATTACK")
                    || l.contains("reboot:")
                    || l.contains("module verification failed")
                    || l.contains("emergency")
            })
            .collect();
        format!(
            "boot in {} ended '{}'; its lines:\n{}",
            self.dir.display(),
            self.vm.result,
            lines.join("\n")
        )
    }

    fn assert_result(&self, want: &str) {
        assert_eq!(self.vm.result, want, "{}", self.context());
    }

    /// Some line of the serial log holds every one of `parts`.
    fn assert_line(&self, parts: &[&str]) {
        assert!(
            self.vm
                .serial
                .lines()
                .any(|l| parts.iter().all(|p| l.contains(p))),
            "no serial line holds all of {parts:?}\n{}",
            self.context()
        );
    }

    /// No serial line holds `needle` except modseal's own (which may quote it).
    fn assert_no_line_but_modseal(&self, needle: &str) {
        let hit = self
            .vm
            .serial
            .lines()
            .find(|l| l.contains(needle) && !l.contains("modseal: "));
        assert!(
            hit.is_none(),
            "serial console has {hit:?}\n{}",
            self.context()
        );
    }

    fn assert_no_serial(&self, needle: &str) {
        assert!(
            !self.vm.serial.contains(needle),
            "serial console has {needle:?}\n{}",
            self.context()
        );
    }

    fn summary(&self, stage: &str) -> &str {
        let tag = format!("modseal: {stage} stage: ");
        self.vm
            .serial
            .lines()
            .find(|l| l.contains(&tag))
            .unwrap_or_else(|| panic!("no {stage} stage summary\n{}", self.context()))
    }

    fn pcr(&self, idx: u8) -> &str {
        self.vm
            .pcrs
            .get(&idx)
            .unwrap_or_else(|| panic!("PCR {idx} not reported\n{}", self.context()))
    }

    fn log(&self) -> &Path {
        self.vm
            .log
            .as_deref()
            .unwrap_or_else(|| panic!("no event log came out of the guest\n{}", self.context()))
    }

    /// Stopped by modseal's halt before the root: no panic, no shell.
    fn assert_halted_by_modseal(&self) {
        self.assert_result("halted");
        self.assert_no_serial("MODSEAL-ROOT: reached");
        self.assert_line(&["modseal: enforce mode: the boot stops here"]);
    }
}

/// A fresh directory for one boot.
fn boot_dir(name: &str) -> PathBuf {
    let dir = work_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("overlay")).unwrap();
    dir
}

/// Boots `img` with `dir/overlay` appended, on a copy of the TPM state
/// `state`, with `append` on the kernel command line.
fn boot(img: &Image, dir: &Path, state: &Path, append: &str) -> Attacked {
    let tpm = dir.join("tpm");
    run(Command::new("cp").arg("-a").arg(state).arg(&tpm));
    let attacked = dir.join("initrd.img");
    run(script("overlay.sh")
        .arg(&img.image)
        .arg(dir.join("overlay"))
        .arg(&attacked));
    let vm = qemu::VmBoot {
        kernel: &img.k,
        image: &attacked,
        tpm_state: Some(&tpm),
        append: format!("loglevel=7 {append}"),
        dir,
        timeout: TIMEOUT,
        bios: false,
        root: None,
    }
    .run();
    Attacked {
        dir: dir.to_owned(),
        vm,
    }
}

/// The disk attack in enforce mode: every override is ignored and named,
/// the `install` line is refused and named, the stripped driver is found in
/// the kernel's own module directory, and modseal halts the machine (no
/// panic, no shell despite rd.shell=1) before the driver or the root.
fn disk_attack_stops_boot(kind: Kind) {
    let img = image(kind);
    let dir = boot_dir(&format!("disk-{}", kind.name()));
    disk_overlay(img, &dir.join("overlay"));
    // A dracut breakpoint on top: a shell the init system, not modseal,
    // would give; enforce mode refuses the boot instead.
    let b = boot(
        img,
        &dir,
        &img.state,
        &format!("{OVERRIDES} rd.break=pre-mount"),
    );
    b.assert_halted_by_modseal();
    let kver = &img.k.kver;
    for setting in [
        format!("modules = /pristine/{kver}"),
        "mode = warn".into(),
        "pcr = 16".into(),
        "allow-weaken = yes".into(),
    ] {
        b.assert_line(&["modseal: ignored: ", "modseal.conf line ", &setting]);
    }
    b.assert_line(&["modseal: ignored: rd.modseal=warn"]);
    b.assert_line(&["modseal: ignored: rd.modseal.pcr=23"]);
    b.assert_line(&["modseal: kernel command line: rd.break=pre-mount can give a shell"]);
    let m = hijacked_module(kind);
    b.assert_line(&[
        "modseal: module config: ",
        "modprobe.d/evil.conf line 1",
        &format!("\"install {m}\""),
    ]);
    b.assert_line(&["modseal: ", &img.disk_module_guest(), "unsigned"]);
    assert!(
        b.summary("early").contains("FAIL (enforce mode)"),
        "{}",
        b.context()
    );
    // The stripped driver never loaded, so the disk was never found.
    b.assert_no_serial("module verification failed");
    b.assert_no_serial("[vda]");
    // In a classic image the early stage runs before udev's first modprobe;
    // under systemd PID 1 runs the install command before any unit can (the
    // early stage names it).
    if kind == Kind::Classic {
        // modseal's refusal quotes the command; only the command itself
        // would print the marker on a line of its own.
        b.assert_no_line_but_modseal("MODSEAL-ATTACK-INSTALL-RAN");
    }
}

#[test]
fn disk_attack_stops_boot_systemd() {
    disk_attack_stops_boot(Kind::Systemd);
}

#[test]
fn disk_attack_stops_boot_classic() {
    disk_attack_stops_boot(Kind::Classic);
}

/// A module the kernel loaded although it found no valid signature, while
/// a valid file of the same name is in the tree: the early stage passes,
/// the pre-pivot stage names the module (taint E) and halts.
fn foreign_module_stops_boot(kind: Kind) {
    let img = image(kind);
    let dir = boot_dir(&format!("foreign-{}", kind.name()));
    foreign_overlay(img, &dir.join("overlay"), &dir.join("keys"));
    let b = boot(img, &dir, &img.state, "rd.shell=1");
    b.assert_halted_by_modseal();
    let early = b.summary("early");
    assert!(early.ends_with("pass"), "{early}\n{}", b.context());
    b.assert_line(&["MODSEAL-ATTACK-INSMOD rc=0 note=present"]);
    b.assert_line(&[&format!(
        "modseal: loaded: module {FOREIGN_NAME}: loaded although the kernel found no valid signature (taint E)"
    )]);
    assert!(
        b.summary("pre-pivot").contains("FAIL (enforce mode)"),
        "{}",
        b.context()
    );
}

#[test]
fn foreign_module_stops_boot_systemd() {
    foreign_module_stops_boot(Kind::Systemd);
}

#[test]
fn foreign_module_stops_boot_classic() {
    foreign_module_stops_boot(Kind::Classic);
}

/// The image's bundle with `mode warn` (the sealed policy's mode line),
/// enrolled into a TPM state of its own; returns the bundle, the state and
/// the enrollment directory.
fn warn_enrollment(img: &Image, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let text = std::fs::read_to_string(&img.bundle).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    let bundle = dir.join("warn/trust.bundle");
    write(&bundle, format!("{header}\nmode warn\n{rest}"));
    let state = dir.join("warn/tpm");
    let sealed = dir.join("warn/sealed");
    qemu::enroll_uefi(&bundle, &state, &sealed);
    (bundle, state, sealed)
}

/// The same disk attack against an owner whose sealed policy is warn mode:
/// the boot reaches the root, but the overrides were ignored (PCR 12 still,
/// nothing in PCRs 16 or 23), PCR 12 is not a good warn-mode boot's, and
/// the event log names every cause.
#[test]
fn disk_attack_warn_mode_measures_causes_systemd() {
    let img = image(Kind::Systemd);
    let dir = boot_dir("disk-warn-systemd");
    let o = dir.join("overlay");
    // The owner's warn-mode bundle and enrollment, at the image's paths.
    let (bundle, state, sealed) = warn_enrollment(img, &dir);
    std::fs::create_dir_all(img.in_overlay(&o, &img.bundle).parent().unwrap()).unwrap();
    std::fs::copy(&bundle, img.in_overlay(&o, &img.bundle)).unwrap();
    copy_tree(&sealed, &img.in_overlay(&o, &img.sealed));
    disk_overlay(img, &o);
    let b = boot(img, &dir, &state, OVERRIDES);
    b.assert_result("root");
    assert!(
        b.summary("early").contains("FAIL (warn mode)"),
        "{}",
        b.context()
    );
    let zero = "0".repeat(64);
    assert_eq!(b.pcr(16), zero, "measured into PCR 16\n{}", b.context());
    assert_eq!(b.pcr(23), zero, "measured into PCR 23\n{}", b.context());
    b.assert_line(&[
        "modseal: loaded: module virtio_blk: loaded although the kernel found no valid signature (taint E)",
    ]);

    // A good warn-mode boot of the image as built, after what systemd-boot
    // measured into PCR 12.
    let from = common::firmware_pcr(b.vm.firmware_log.as_deref(), 12);
    let out = modseal([
        "predict".as_ref(),
        "--trust".as_ref(),
        bundle.as_os_str(),
        "--modules".as_ref(),
        img.moddir.as_os_str(),
        "--root".as_ref(),
        img.unpacked.as_os_str(),
        "--mode".as_ref(),
        "warn".as_ref(),
        "--stage".as_ref(),
        "early".as_ref(),
        "--stage".as_ref(),
        "pre-pivot".as_ref(),
        "--from".as_ref(),
        from.as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let good = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_ne!(b.pcr(12), good, "PCR 12 equals a good warn-mode boot's");
    let out = modseal([
        "log".as_ref(),
        "replay".as_ref(),
        "--from".as_ref(),
        from.as_ref(),
        b.log().as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let replay = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        replay.contains(&format!("pcr 12 sha256 {}", b.pcr(12))),
        "log replay vs PCR 12: {replay}"
    );

    // The stage records name the causes: the ignored overrides, the refused
    // install command, the failing module.
    let out = modseal([
        "log".as_ref(),
        "show".as_ref(),
        "--modules".as_ref(),
        b.log().as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    for cause in [
        format!("modules = /pristine/{}", img.k.kver),
        "pcr = 16".into(),
        "allow-weaken = yes".into(),
        "rd.modseal.pcr=23".into(),
        "install autofs4".into(),
    ] {
        assert!(shown.contains(&cause), "log show lacks {cause:?}:\n{shown}");
    }
    assert!(
        shown
            .lines()
            .any(|l| l.contains(img.k.disk_module) && l.contains("unsigned")),
        "log show does not name the stripped module:\n{shown}"
    );
}

/// A modprobe.d file in the image's `/run`: systemd mounts a tmpfs over
/// `/run` after PID 1 has loaded autofs4 (running the `install` command),
/// so the live `/run` no longer shows it. The early stage reads the
/// initramfs's own root underneath the mounts as well, names the file and
/// halts.
#[test]
fn run_modprobe_d_under_systemds_tmpfs_stops_boot() {
    let img = image(Kind::Systemd);
    let dir = boot_dir("run-modprobe-d");
    let o = dir.join("overlay");
    write(
        &o.join("run/modprobe.d/evil.conf"),
        "install autofs4 /bin/sh -c 'echo MODSEAL-ATTACK-RUN-INSTALL-RAN > /dev/kmsg; \
         /sbin/modprobe --ignore-install autofs4'\n",
    );
    let b = boot(img, &dir, &img.state, "");
    b.assert_halted_by_modseal();
    b.assert_line(&[
        "modseal: module config: ",
        "run/modprobe.d/evil.conf line 1",
        "\"install autofs4\"",
    ]);
}
