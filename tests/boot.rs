//! `modseal boot`, `predict` and `log` against a private swtpm, on real
//! Debian modules checked against the certificate of their own kernel.
//!
//! Needs `scripts/fetch-kernels.sh` (bookworm) and swtpm + tpm2-tools
//! (`scripts/setup.sh`); a missing one fails the test, never skips it.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::ops::Deref;
use std::path::Path;
use std::process::Command;

use common::{code, describe, first_module, flip_byte, modseal, MachineDir};
use swtpm::Swtpm;

/// A module set, its trust bundle and an enrollment in one swtpm.
struct Setup {
    files: MachineDir,
    tpm: Swtpm,
}

/// The setup's files: `s.path(…)`, `s.modules()`, `s.bundle()`, `s.log()`.
impl Deref for Setup {
    type Target = MachineDir;
    fn deref(&self) -> &MachineDir {
        &self.files
    }
}

impl Setup {
    /// `modseal boot` with this setup's files; extra args appended.
    fn boot(&self, extra: &[&str]) -> std::process::Output {
        let mut args: Vec<String> = vec![
            "boot".into(),
            "--config".into(),
            self.path("modseal.conf").display().to_string(),
            "--tcti".into(),
            self.tpm.tcti(),
            "--system-root".into(),
            self.system_root().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        modseal(&args)
    }

    fn predict(&self, extra: &[&str]) -> String {
        let mut args = vec![
            "predict".to_string(),
            "--trust".into(),
            self.bundle().display().to_string(),
            "--modules".into(),
            self.modules().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let out = modseal(&args);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// PCR 12 (sha256) as tpm2-tools reads it.
    fn pcr12(&self) -> String {
        self.pcr(12)
    }

    /// PCR `n` (sha256) as tpm2-tools reads it.
    fn pcr(&self, n: u8) -> String {
        let out = Command::new("tpm2_pcrread")
            .args(["-T", &self.tpm.tools_tcti(), &format!("sha256:{n}")])
            .output()
            .expect("tpm2_pcrread (tpm2-tools) must be installed: scripts/setup.sh");
        assert!(
            out.status.success(),
            "tpm2_pcrread: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text
            .lines()
            .find_map(|l| {
                let (idx, rest) = l.trim().split_once(':')?;
                (idx.trim() == n.to_string())
                    .then(|| rest.split("0x").nth(1))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no PCR {n} in tpm2_pcrread output: {text}"));
        hex.trim().to_lowercase()
    }

    /// Appends `lines` to this setup's config file.
    fn add_config(&self, lines: &str) {
        let path = self.path("modseal.conf");
        let mut text = std::fs::read_to_string(&path).expect("config");
        text.push_str(lines);
        std::fs::write(&path, text).expect("config");
    }

    /// Writes a kernel command line (as /proc/cmdline has it) and returns
    /// its path for `--cmdline`.
    fn cmdline(&self, params: &str) -> String {
        let path = self.path("cmdline");
        std::fs::write(
            &path,
            format!("BOOT_IMAGE=/boot/vmlinuz root=/dev/vda1 ro quiet {params}\n"),
        )
        .expect("cmdline");
        path.display().to_string()
    }

    /// `modseal log replay` of this setup's log (no TPM): its stdout.
    fn replay(&self) -> String {
        let out = modseal(["log".as_ref(), "replay".as_ref(), self.log().as_os_str()]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log_show(&self) -> String {
        let out = modseal(["log".as_ref(), "show".as_ref(), self.log().as_os_str()]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `n` real bookworm modules (a stable choice), the kernel's certificate as
/// a bundle, an enrollment sealed to PCR 7, and a config pointing at them.
fn setup(n: usize) -> Setup {
    let tpm = Swtpm::start();
    // The config opens with a comment line: every boot test also reads one.
    let files = MachineDir::new(n, &tpm.tcti(), "enforce", "# test config\n");
    Setup { files, tpm }
}

#[test]
fn good_boot_matches_predict_replay_and_tpm2_tools() {
    let s = setup(12);
    let out = s.boot(&[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let predicted = s.predict(&[]);
    assert_eq!(s.pcr12(), predicted, "PCR 12 after boot vs predict");
    let replay = modseal([
        "log".as_ref(),
        "replay".as_ref(),
        s.log().as_os_str(),
        "--tcti".as_ref(),
        s.tpm.tcti().as_ref(),
    ]);
    assert_eq!(code(&replay), 0, "{}", describe(&replay));
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(
        text.contains(&format!("pcr 12 sha256 {predicted}")),
        "{text}"
    );
    assert!(text.contains("pcr 12 sha256 matches the TPM"), "{text}");
    let show = s.log_show();
    assert!(show.contains("modules: 12 ok, 0 failed"), "{show}");
    assert!(show.contains("result pass, unseal ok"), "{show}");
    // The record lists every module with its verdict.
    let log = std::fs::read(s.log()).expect("log");
    let text = String::from_utf8_lossy(&log);
    for f in common::module_files(&s.modules()) {
        let rel = f
            .strip_prefix(s.modules())
            .expect("rel")
            .display()
            .to_string();
        assert!(
            text.contains(&format!("\"path\":\"{rel}\"")),
            "{rel} not in the log"
        );
    }
    assert_eq!(text.matches("\"verdict\":\"ok\"").count(), 12);
}

#[test]
fn pre_pivot_reconciles_loaded_modules() {
    let s = setup(6);
    let name = |p: &Path| {
        let f = p
            .file_name()
            .expect("name")
            .to_string_lossy()
            .replace(".ko", "")
            .replace('-', "_");
        format!("{f} 16384 0 - Live 0x0000000000000000\n")
    };
    let m = first_module(&s.modules());
    std::fs::write(s.path("proc-good"), name(&m)).expect("write");
    let early = s.boot(&[]);
    assert_eq!(code(&early), 0, "{}", describe(&early));
    let pp = s.boot(&[
        "--stage",
        "pre-pivot",
        "--proc-modules",
        &s.path("proc-good").display().to_string(),
    ]);
    assert_eq!(code(&pp), 0, "{}", describe(&pp));
    assert_eq!(
        s.pcr12(),
        s.predict(&["--stage", "early", "--stage", "pre-pivot"])
    );

    // A loaded module without a verified file fails the stage.
    std::fs::write(
        s.path("proc-bad"),
        format!("{}rootkit 4096 0 - Live 0x0\n", name(&m)),
    )
    .expect("write");
    let bad = s.boot(&[
        "--stage",
        "pre-pivot",
        "--proc-modules",
        &s.path("proc-bad").display().to_string(),
    ]);
    assert_eq!(code(&bad), 1, "{}", describe(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("loaded: module rootkit: loaded, but no file of that name verified"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn tampered_module_warn_boots_on_and_is_measured() {
    let s = setup(8);
    let good = s.predict(&["--mode", "warn"]);
    let victim = first_module(&s.modules());
    flip_byte(&victim, 100);
    let out = s.boot(&["--mode", "warn"]);
    assert_eq!(code(&out), 0, "warn mode boots on: {}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad-signature"), "{stderr}");
    assert_ne!(
        s.pcr12(),
        good,
        "a bad boot must not reach the good PCR value"
    );
    let show = s.log_show();
    let rel = victim
        .strip_prefix(s.modules())
        .expect("rel")
        .display()
        .to_string();
    assert!(show.contains(&format!("{rel}: bad-signature")), "{show}");
    assert!(show.contains("result fail"), "{show}");
}

#[test]
fn tampered_module_enforce_fails() {
    let s = setup(4);
    flip_byte(&first_module(&s.modules()), 64);
    let out = s.boot(&[]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(s.log_show().contains("result fail"));
}

#[test]
fn swapped_bundle_is_a_digest_mismatch_and_measured() {
    let s = setup(4);
    let mut b = std::fs::read(s.bundle()).expect("bundle");
    b.extend_from_slice(b"# attacker was here\n");
    std::fs::write(s.bundle(), b).expect("write");
    let out = s.boot(&["--mode", "warn"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let show = s.log_show();
    assert!(show.contains("unseal digest-mismatch"), "{show}");
    assert_ne!(s.pcr12(), "0".repeat(64), "the failure is measured");
    let enforce = s.boot(&[]);
    assert_eq!(code(&enforce), 1, "{}", describe(&enforce));
}

#[test]
fn no_tpm_enforce_fails_warn_boots_and_logs() {
    let s = setup(3);
    let closed = "swtpm:host=127.0.0.1,port=1";
    let base = [
        "boot",
        "--config",
        &s.path("modseal.conf").display().to_string(),
        "--tcti",
        closed,
        "--system-root",
        &s.system_root().display().to_string(),
    ]
    .map(String::from);
    let mut enforce: Vec<String> = base.to_vec();
    enforce.extend(["--mode".into(), "enforce".into()]);
    let out = modseal(&enforce);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no TPM"),
        "{}",
        describe(&out)
    );
    let mut warn = base.to_vec();
    warn.extend(["--mode".into(), "warn".into()]);
    let out = modseal(&warn);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOT measured"),
        "{}",
        describe(&out)
    );
    assert!(s.log_show().contains("unseal no-tpm"));
}

/// The TPM commands per run do not grow with the module count.
#[test]
fn tpm_commands_do_not_grow_with_modules() {
    let count = |n: usize| {
        let s = setup(n);
        let out = s.boot(&[]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.split("; ")
            .find_map(|p| {
                p.strip_suffix(" TPM commands")
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .unwrap_or_else(|| panic!("no TPM command count in: {err}"))
    };
    let small = count(2);
    let large = count(50);
    assert_eq!(
        small, large,
        "2 modules: {small} commands, 50 modules: {large}"
    );
    // The unseal's commands, the bank query, the extend and the read-back.
    assert_eq!(small, TPM_COMMANDS_PER_BOOT, "commands per boot");
}

/// TPM commands of one `modseal boot` stage that passes.
const TPM_COMMANDS_PER_BOOT: u64 = 12;

/// The summary line of a boot (the last line of its stderr).
fn summary(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .rev()
        .find(|l| l.contains(" stage: "))
        .unwrap_or_else(|| panic!("no summary line in: {err}"))
        .to_owned()
}

/// The value after `sha256 now ` in a summary line.
fn read_back(summary: &str) -> String {
    let hex = summary
        .split("sha256 now ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no read-back in: {summary}"));
    assert_eq!(hex.len(), 64, "{summary}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{summary}");
    hex.to_owned()
}

/// The summary states the stage's own wall time and the PCR value read back
/// after the extend, which is the value `log replay` computes, and what
/// tpm2-tools reads, boot after boot.
#[test]
fn summary_has_time_and_the_pcr_read_back() {
    let s = setup(6);
    for stage in ["early", "pre-pivot"] {
        let mut args = vec!["--stage", stage];
        let proc_modules = s.path("proc-empty").display().to_string();
        std::fs::write(&proc_modules, "").expect("write");
        if stage == "pre-pivot" {
            args.extend(["--proc-modules", &proc_modules]);
        }
        let out = s.boot(&args);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let line = summary(&out);
        let ms = line
            .split("; ")
            .find_map(|p| p.strip_suffix(" ms"))
            .unwrap_or_else(|| panic!("no time in: {line}"));
        assert!(ms.parse::<u64>().is_ok(), "{line}");
        assert!(line.ends_with(" ms; pass"), "{line}");
        // swtpm has sha1, sha256, sha384 and sha512 active: sha256 is read.
        assert!(
            line.contains("measured into PCR 12, banks sha1,sha256,sha384,sha512 (sha256 now "),
            "{line}"
        );
        let now = read_back(&line);
        // After the second stage the log has two records: replay covers both.
        let replay = s.replay();
        assert!(
            replay.contains(&format!("pcr 12 sha256 {now}\n")),
            "read back {now}, replay says:\n{replay}"
        );
        assert_eq!(s.pcr12(), now, "tpm2-tools vs read-back after {stage}");
    }
    assert_eq!(
        read_back(&summary(&s.boot(&["--stage", "early"]))),
        s.pcr12()
    );
}

impl Setup {
    /// Re-writes the bundle with `settings` (flags of `modseal bundle`) and
    /// re-enrolls it.
    fn reseal(&self, settings: &[&str]) {
        self.files.seal(settings, &self.tpm.tcti());
    }

    /// The record contents of the log, as text.
    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

/// The sealed policy is enforce, PCR 12, no weakening (the bundle's
/// defaults). Nothing in modseal.conf and nothing on the command line may
/// change it: each request is ignored, said, and named in the record.
#[test]
fn config_and_cmdline_cannot_weaken_or_move_the_sealed_policy() {
    let s = setup(4);
    flip_byte(&first_module(&s.modules()), 64);
    s.add_config("mode = warn\npcr = 16\nallow-weaken = yes\n");
    for v in ["warn", "off"] {
        let out = s.boot(&[
            "--cmdline",
            &s.cmdline(&format!("rd.modseal={v} rd.modseal.pcr=23")),
        ]);
        assert_eq!(code(&out), 1, "rd.modseal={v}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let conf = s.path("modseal.conf").display().to_string();
        for want in [
            format!("modseal: ignored: rd.modseal={v}: the sealed policy does not allow weakening enforce mode"),
            "modseal: ignored: rd.modseal.pcr=23: the sealed policy does not allow moving the measurement (PCR stays 12)".to_owned(),
            format!("modseal: ignored: {conf} line 6: mode = warn: only the sealed trust bundle sets mode"),
            format!("modseal: ignored: {conf} line 7: pcr = 16: only the sealed trust bundle sets pcr"),
            format!("modseal: ignored: {conf} line 8: allow-weaken = yes: only the sealed trust bundle sets allow-weaken"),
        ] {
            assert!(err.contains(&want), "no {want:?} in\n{err}");
        }
        let line = summary(&out);
        assert!(line.ends_with("FAIL (enforce mode)"), "{err}");
        assert!(line.contains("measured into PCR 12,"), "{err}");
    }
    assert_eq!(s.pcr(16), "0".repeat(64));
    assert_eq!(s.pcr(23), "0".repeat(64));
    // Measured as enforce, with what was ignored named.
    let show = s.log_show();
    assert_eq!(
        show.matches("mode enforce, result fail").count(),
        2,
        "{show}"
    );
    let log = s.log_text();
    assert!(log.contains(r#""ignored":["#), "{log}");
    assert!(
        log.contains("rd.modseal.pcr=23: the sealed policy"),
        "{log}"
    );
}

#[test]
fn cmdline_warn_and_pcr_are_honoured_when_the_bundle_seals_allow_weaken() {
    let s = setup(4);
    s.reseal(&["--allow-weaken"]);
    let predicted = s.predict(&[]);
    let out = s.boot(&[
        "--cmdline",
        &s.cmdline("rd.modseal.pcr=7 rd.modseal.pcr=13"),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let line = summary(&out);
    assert!(line.contains("measured into PCR 13, banks"), "{line}");
    assert_eq!(s.pcr(13), predicted);
    assert_eq!(s.pcr12(), "0".repeat(64), "PCR 12 untouched");
    flip_byte(&first_module(&s.modules()), 64);
    let out = s.boot(&["--cmdline", &s.cmdline("rd.modseal=warn")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        summary(&out).ends_with("FAIL (warn mode)"),
        "{}",
        describe(&out)
    );
    assert!(s.log_show().contains("mode warn, result fail"));
    // On a host an explicit --mode is the operator's.
    let out = s.boot(&[
        "--cmdline",
        &s.cmdline("rd.modseal=warn"),
        "--mode",
        "enforce",
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
}

/// The bundle may seal warn mode and another PCR; the command line may
/// strengthen the mode, and its last occurrence counts even when unknown.
#[test]
fn sealed_warn_and_pcr_apply_and_the_cmdline_may_strengthen() {
    let s = setup(3);
    s.reseal(&["--mode", "warn", "--pcr", "14"]);
    flip_byte(&first_module(&s.modules()), 64);
    let out = s.boot(&[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let line = summary(&out);
    assert!(
        line.contains("measured into PCR 14,") && line.ends_with("FAIL (warn mode)"),
        "{line}"
    );
    let out = s.boot(&[
        "--cmdline",
        &s.cmdline("rd.modseal=off rd.modseal=\"enforce\""),
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        summary(&out).ends_with("FAIL (enforce mode)"),
        "{}",
        describe(&out)
    );
    let out = s.boot(&[
        "--cmdline",
        &s.cmdline("rd.modseal=enforce rd.modseal=bogus"),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("ignored: rd.modseal=bogus: not enforce, warn or off"));
}

/// A bundle the unseal does not confirm is the attacker's: its settings
/// are not applied, the built-in policy is (enforce, PCR 12).
#[test]
fn an_unconfirmed_bundle_cannot_seal_warn_mode() {
    let s = setup(3);
    s.reseal(&["--mode", "warn", "--pcr", "14"]);
    let mut text = std::fs::read_to_string(s.bundle()).unwrap();
    text.push_str("# edited\n");
    std::fs::write(s.bundle(), text).unwrap();
    let out = s.boot(&[]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the trust bundle's settings are not applied: the unseal (digest-mismatch) did not confirm them"), "{err}");
    let line = summary(&out);
    assert!(
        line.contains("measured into PCR 12,") && line.ends_with("FAIL (enforce mode)"),
        "{line}"
    );
}

/// `rd.modseal=off` with `allow-weaken` sealed: after the unseal confirms
/// it, nothing is verified, measured or logged. Without a TPM nothing can
/// confirm it: fail closed.
#[test]
fn cmdline_off_needs_a_confirmed_allow_weaken() {
    let s = setup(3);
    s.reseal(&["--allow-weaken"]);
    flip_byte(&first_module(&s.modules()), 64);
    let before = s.pcr12();
    let out = s.boot(&["--cmdline", &s.cmdline("rd.modseal=off")]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "modseal: disabled by rd.modseal=off on the kernel command line (allow-weaken yes is sealed): nothing verified or measured\n"
    );
    assert!(!s.log().exists(), "off wrote {}", s.log().display());
    assert_eq!(s.pcr12(), before, "off changed PCR 12");
    let out = modseal([
        "boot",
        "--config",
        &s.path("modseal.conf").display().to_string(),
        "--tcti",
        "swtpm:host=127.0.0.1,port=1",
        "--system-root",
        &s.system_root().display().to_string(),
        "--cmdline",
        &s.cmdline("rd.modseal=off"),
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TPM"));
}

/// In an initramfs the stages verify the running kernel's module directory
/// whatever `modules =` says, and flags obey the sealed policy.
#[test]
fn initramfs_rules_ignore_a_redirected_module_tree_and_weakening_flags() {
    let s = setup(4);
    let root = s.system_root();
    std::fs::write(root.join("proc/sys/kernel/osrelease"), "6.1.0-test\n").unwrap();
    let real = root.join("lib/modules/6.1.0-test");
    std::fs::create_dir_all(root.join("lib/modules")).unwrap();
    assert!(Command::new("cp")
        .arg("-a")
        .arg(s.modules())
        .arg(&real)
        .status()
        .unwrap()
        .success());
    let bad = first_module(&real);
    flip_byte(&bad, 64);
    // Host rules: the config's pristine tree passes.
    let out = s.boot(&[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // Initramfs rules: the kernel's own tree is verified and fails.
    let out = s.boot(&[
        "--initramfs",
        "--mode",
        "warn",
        "--modules",
        &s.modules().display().to_string(),
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(err.contains("line 4: modules = "), "{err}");
    assert!(
        err.contains(
            "ignored: --modules: an initramfs verifies the running kernel's module directory"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "ignored: --mode warn: the sealed policy does not allow weakening enforce mode"
        ),
        "{err}"
    );
}

/// The name /proc/modules shows for the module file `m`.
fn loaded_name(m: &Path) -> String {
    m.file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".ko", "")
        .replace('-', "_")
}

/// A loaded module the kernel tainted E (no valid signature) fails the
/// stage even when a verified file of its name exists, at both stages.
#[test]
fn a_loaded_module_tainted_unsigned_fails_both_stages() {
    let s = setup(4);
    let name = loaded_name(&first_module(&s.modules()));
    let root = s.system_root();
    std::fs::write(
        root.join("proc/modules"),
        format!("{name} 16384 0 - Live 0x0 (E)\n"),
    )
    .unwrap();
    std::fs::write(root.join("proc/sys/kernel/tainted"), "8192\n").unwrap();
    for stage in ["early", "pre-pivot"] {
        let out = s.boot(&["--stage", stage]);
        assert_eq!(code(&out), 1, "{stage}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("loaded: module {name}: loaded although the kernel found no valid signature (taint E)")), "{err}");
        assert!(err.contains("loaded: the kernel: tainted E"), "{err}");
    }
}

/// A loaded module is bound to a verified file by its build-id, not only
/// its name: sysfs's note of another build (say an old, denied version
/// signed by a key the kernel trusts) fails both stages, naming it.
#[test]
fn a_loaded_module_of_another_build_fails_both_stages() {
    let s = setup(4);
    let m = first_module(&s.modules());
    let name = loaded_name(&m);
    let root = s.system_root();
    std::fs::write(
        root.join("proc/modules"),
        format!("{name} 16384 0 - Live 0x0\n"),
    )
    .unwrap();
    let notes = root.join("sys/module").join(&name).join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    let file = std::fs::read(&m).unwrap();
    let mut note = modseal::verify::build_id::note(&file)
        .expect("a build-id note")
        .to_vec();
    std::fs::write(notes.join(".note.gnu.build-id"), &note).unwrap();
    let out = s.boot(&[]);
    assert_eq!(code(&out), 0, "the verified build: {}", describe(&out));
    *note.last_mut().unwrap() ^= 1;
    std::fs::write(notes.join(".note.gnu.build-id"), &note).unwrap();
    let id = modseal::util::hex::lower(&note[16..]);
    for stage in ["early", "pre-pivot"] {
        let out = s.boot(&["--stage", stage]);
        assert_eq!(code(&out), 1, "{stage}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("loaded: module {name}: loaded, but its build (build-id {id}) is not that of any verified file of that name")), "{err}");
    }
}

/// A modprobe.d install command fails the stage unless the bundle allows
/// its exact text; every configuration file is measured.
#[test]
fn modprobe_install_commands_need_the_sealed_policy() {
    let s = setup(3);
    let d = s.system_root().join("etc/modprobe.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("evil.conf"),
        "install autofs4 /bin/sh -c 'echo pwned'\n",
    )
    .unwrap();
    let out = s.boot(&[]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("module config: etc/modprobe.d/evil.conf line 1: \"install autofs4\" would run \"/bin/sh -c 'echo pwned'\", which the sealed policy does not allow"), "{err}");
    let check = modseal([
        "check-config".as_ref(),
        "--trust".as_ref(),
        s.bundle().as_os_str(),
        s.system_root().as_os_str(),
    ]);
    assert_eq!(code(&check), 1, "{}", describe(&check));
    assert!(String::from_utf8_lossy(&check.stdout).contains("etc/modprobe.d/evil.conf line 1"));
    s.reseal(&["--allow-install", "/bin/sh -c 'echo pwned'"]);
    let out = s.boot(&[]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        s.log_text().contains("etc/modprobe.d/evil.conf"),
        "measured"
    );
    let check = modseal([
        "check-config".as_ref(),
        "--trust".as_ref(),
        s.bundle().as_os_str(),
        s.system_root().as_os_str(),
    ]);
    assert_eq!(code(&check), 0, "{}", describe(&check));
}
