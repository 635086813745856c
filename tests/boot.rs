//! `modseal boot`, `predict` and `log` against a private swtpm, on real
//! Debian modules checked against the certificate of their own kernel.
//!
//! Needs `scripts/fetch-kernels.sh` (bookworm) and swtpm + tpm2-tools
//! (`scripts/setup.sh`); a missing one fails the test, never skips it.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, describe, modseal};
use swtpm::Swtpm;

/// A module set, its trust bundle and an enrollment in one swtpm.
struct Setup {
    dir: tempfile::TempDir,
    tpm: Swtpm,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn modules(&self) -> PathBuf {
        self.path("modules")
    }
    fn bundle(&self) -> PathBuf {
        self.path("trust.bundle")
    }
    fn log(&self) -> PathBuf {
        self.path("run/tpm2-measure.log")
    }

    /// `modseal boot` with this setup's files; extra args appended.
    fn boot(&self, extra: &[&str]) -> std::process::Output {
        let mut args: Vec<String> = vec![
            "boot".into(),
            "--config".into(),
            self.path("modseal.conf").display().to_string(),
            "--tcti".into(),
            self.tpm.tcti(),
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
        let out = Command::new("tpm2_pcrread")
            .args(["-T", &self.tpm.tools_tcti(), "sha256:12"])
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
                l.trim()
                    .strip_prefix("12")
                    .and_then(|r| r.split("0x").nth(1))
            })
            .unwrap_or_else(|| panic!("no PCR 12 in tpm2_pcrread output: {text}"));
        hex.trim().to_lowercase()
    }

    fn log_show(&self) -> String {
        let out = modseal(["log".as_ref(), "show".as_ref(), self.log().as_os_str()]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn bookworm() -> (PathBuf, PathBuf) {
    let env = common::repo().join(".cache/kernels/bookworm/env");
    let text = std::fs::read_to_string(&env)
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/fetch-kernels.sh first", env.display()));
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("{k}= missing in {}", env.display()))
    };
    (get("VMLINUZ"), get("MODULES"))
}

/// `n` real bookworm modules (a stable choice), the kernel's certificate as
/// a bundle, an enrollment sealed to PCR 7, and a config pointing at them.
fn setup(n: usize) -> Setup {
    let (vmlinuz, tree) = bookworm();
    let dir = tempfile::tempdir().expect("tempdir");
    let tpm = Swtpm::start();
    let s = Setup { dir, tpm };
    let mut files = common::module_files(&tree);
    files.sort();
    assert!(
        files.len() >= n,
        "only {} modules in {}",
        files.len(),
        tree.display()
    );
    for f in files.iter().step_by(files.len() / n).take(n) {
        let rel = f.strip_prefix(&tree).expect("under tree");
        let dest = s.modules().join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(f, &dest).expect("copy module");
    }
    let keys = modseal(["keys".as_ref(), "from-kernel".as_ref(), vmlinuz.as_os_str()]);
    assert_eq!(code(&keys), 0, "{}", describe(&keys));
    std::fs::write(s.path("kernel.pem"), &keys.stdout).expect("write pem");
    let b = modseal([
        "bundle",
        "--anchor",
        &s.path("kernel.pem").display().to_string(),
        "--out",
        &s.bundle().display().to_string(),
    ]);
    assert_eq!(code(&b), 0, "{}", describe(&b));
    let e = modseal([
        "enroll",
        "--trust",
        &s.bundle().display().to_string(),
        "--pcrs",
        "7",
        "--out",
        &s.path("sealed").display().to_string(),
        "--tcti",
        &s.tpm.tcti(),
    ]);
    assert_eq!(code(&e), 0, "enroll: {}", describe(&e));
    std::fs::write(
        s.path("modseal.conf"),
        format!(
            "# test config\ntrust = {}\nsealed = {}\nmodules = {}\nlog = {}\npcr = 12\nmode = enforce\n",
            s.bundle().display(),
            s.path("sealed").display(),
            s.modules().display(),
            s.log().display()
        ),
    )
    .expect("config");
    s
}

fn flip_byte(path: &Path, at: usize) {
    let mut b = std::fs::read(path).expect("read");
    b[at] ^= 0x01;
    std::fs::write(path, b).expect("write");
}

fn first_module(dir: &Path) -> PathBuf {
    let mut files = common::module_files(dir);
    files.sort();
    files.into_iter().next().expect("a module")
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
            .contains("loaded module 'rootkit' has no verified file"),
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
}
