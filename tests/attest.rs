//! `modseal attest` on real evidence: a private swtpm extended with a real
//! OVMF boot's firmware log (tests/data/fw-ovmf-bookworm: the kernel in
//! PCR 4, the EFI stub's command line and initrd in PCR 9), `modseal boot`
//! (both stages) on real Debian modules against it, then `tpm2_quote`
//! (tpm2-tools) with an attestation key made by `tpm2_createprimary`, then
//! `modseal attest`; every verdict is cross-checked with `tpm2_checkquote`
//! where tpm2-tools can judge it.
//!
//! Needs `scripts/fetch-kernels.sh` (bookworm) and swtpm + tpm2-tools
//! (`scripts/setup.sh`); a missing one fails the test, never skips it.

mod common;
#[path = "common/firmware.rs"]
mod firmware;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    code, describe, json, modseal, output_of, stderr, stdout, tpm2_command, tpm2_tool, MachineDir,
};
use serde_json::Value;
use swtpm::Swtpm;

const NONCE: &str = "5eed0fa7a7e57ed0000000000000000000000000000000000000000000000001";
const OTHER_NONCE: &str = "5eed0fa7a7e57ed0000000000000000000000000000000000000000000000002";
/// `attest`'s arguments for the checks without a policy.
const NP: &[&str] = &["--no-policy"];

/// A machine: a module set, its trust bundle and an enrollment in one
/// swtpm, booted under the firmware whose log it keeps.
struct Machine {
    files: MachineDir,
    tpm: Swtpm,
    firmware_log: Vec<u8>,
}

/// The machine's files: `m.path(…)`, `m.modules()`, `m.bundle()`, `m.log()`.
impl Deref for Machine {
    type Target = MachineDir;
    fn deref(&self) -> &MachineDir {
        &self.files
    }
}

/// An attestation key made in the machine's TPM by tpm2-tools.
struct Ak {
    ctx: PathBuf,
    pem: PathBuf,
    public: PathBuf,
}

impl Machine {
    /// `n` real bookworm modules, the kernel's certificate as the bundle, an
    /// enrollment sealed to PCR 7, a config in `mode`, after the real
    /// OVMF boot's firmware measurements.
    fn new(n: usize, mode: &str) -> Machine {
        Machine::with_firmware(n, mode, firmware::bytes())
    }

    /// [`Machine::new`] after the measurements of the firmware log `log`
    /// (its sha256 digests extended into the swtpm, as the firmware and the
    /// EFI stub would have: before the enrollment reads PCR 7).
    fn with_firmware(n: usize, mode: &str, log: Vec<u8>) -> Machine {
        let tpm = Swtpm::start();
        for spec in firmware::extend_args(&log, &[]) {
            tpm2_tool("tpm2_pcrextend", &[&spec], &tpm.tools_tcti());
        }
        let m = Machine {
            files: MachineDir::new(n, &tpm.tcti(), mode, ""),
            tpm,
            firmware_log: log,
        };
        std::fs::write(m.path("proc-modules"), "").expect("proc");
        m
    }

    /// Both boot stages, as the dracut module runs them; each must exit 0.
    fn boot(&self) {
        for stage in ["early", "pre-pivot"] {
            let out = modseal([
                "boot",
                "--config",
                &self.path("modseal.conf").display().to_string(),
                "--tcti",
                &self.tpm.tcti(),
                "--stage",
                stage,
                "--proc-modules",
                &self.path("proc-modules").display().to_string(),
                "--system-root",
                &self.system_root().display().to_string(),
            ]);
            assert_eq!(code(&out), 0, "boot {stage}: {}", describe(&out));
        }
    }

    /// Runs a tpm2-tools command against this TPM.
    fn tools(&self, program: &str, args: &[&str]) -> Output {
        output_of(&mut tpm2_command(program, args, &self.tpm.tools_tcti()))
    }

    fn tools_ok(&self, program: &str, args: &[&str]) -> Output {
        let tcti = self.tpm.tools_tcti();
        let out = tpm2_tool(program, args, &tcti);
        // No resource manager in front of swtpm: free the transient slots.
        tpm2_tool("tpm2_flushcontext", &["-t"], &tcti);
        out
    }

    /// A restricted signing key: `alg` is tpm2-tools' `-G` value. The
    /// endorsement hierarchy gives the AK; another hierarchy another key.
    fn ak(&self, name: &str, hierarchy: &str, alg: &str) -> Ak {
        let ak = Ak {
            ctx: self.path(&format!("{name}.ctx")),
            pem: self.path(&format!("{name}.pem")),
            public: self.path(&format!("{name}.pub")),
        };
        self.tools_ok(
            "tpm2_createprimary",
            &[
                "-Q",
                "-C",
                hierarchy,
                "-G",
                alg,
                "-a",
                "restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth",
                "-c",
                s(&ak.ctx),
            ],
        );
        self.tools_ok(
            "tpm2_readpublic",
            &["-Q", "-c", s(&ak.ctx), "-f", "pem", "-o", s(&ak.pem)],
        );
        self.tools_ok(
            "tpm2_readpublic",
            &["-Q", "-c", s(&ak.ctx), "-o", s(&ak.public)],
        );
        ak
    }

    /// `tpm2_quote` into a quote directory laid out as `modseal quote`
    /// writes it, with a copy of the log and the (untrusted) AK files.
    fn quote(&self, ak: &Ak, selection: &str, nonce: &str, name: &str) -> PathBuf {
        self.quote_hash(ak, selection, nonce, name, "sha256")
    }

    /// [`Machine::quote`] with the signing scheme's hash `hash`.
    fn quote_hash(&self, ak: &Ak, selection: &str, nonce: &str, name: &str, hash: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).expect("quote dir");
        self.tools_ok(
            "tpm2_quote",
            &[
                "-Q",
                "-c",
                s(&ak.ctx),
                "-l",
                selection,
                "-q",
                nonce,
                "-g",
                hash,
                "-m",
                s(&dir.join("quote.msg")),
                "-s",
                s(&dir.join("quote.sig")),
                "-o",
                s(&dir.join("quote.pcrs")),
            ],
        );
        if self.log().exists() {
            std::fs::copy(self.log(), dir.join("tpm2-measure.log")).expect("log copy");
        }
        std::fs::write(dir.join("binary_bios_measurements"), &self.firmware_log)
            .expect("firmware log");
        std::fs::copy(&ak.pem, dir.join("ak.pem")).expect("ak.pem");
        std::fs::copy(&ak.public, dir.join("ak.pub")).expect("ak.pub");
        dir
    }

    /// PCR 12 (sha256) as tpm2_pcrread reads it, lower-case hex.
    fn pcr12(&self) -> String {
        let out = self.tools("tpm2_pcrread", &["sha256:12"]);
        assert!(out.status.success(), "{}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split("0x")
            .nth(1)
            .map(|h| h.trim().to_lowercase())
            .unwrap_or_else(|| panic!("no PCR value in {text}"))
    }

    /// The path of a module relative to the modules directory, as logged.
    fn rel(&self, module: &Path) -> String {
        module
            .strip_prefix(self.modules())
            .expect("under modules")
            .display()
            .to_string()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// `modseal attest --ak AK --quote DIR --nonce N` plus `extra`.
fn attest(ak: &Path, dir: &Path, nonce: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "attest".to_string(),
        "--ak".into(),
        ak.display().to_string(),
        "--quote".into(),
        dir.display().to_string(),
        "--nonce".into(),
        nonce.into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    modseal(&args)
}

fn verdict(o: &Output) -> String {
    stdout(o).lines().next().unwrap_or_default().to_owned()
}

/// Asserts exit 1 and a verdict line starting with `NOT TRUSTED: {prefix}`.
fn assert_not_trusted(o: &Output, prefix: &str) -> String {
    assert_eq!(code(o), 1, "{}", describe(o));
    let v = verdict(o);
    assert!(
        v.starts_with(&format!("NOT TRUSTED: {prefix}")),
        "expected 'NOT TRUSTED: {prefix}…', got:\n{}",
        describe(o)
    );
    v
}

/// Asserts exit 2 (bad input) and an error naming `what`.
fn assert_bad_input(o: &Output, what: &str) {
    assert_eq!(code(o), 2, "{}", describe(o));
    assert!(
        stderr(o).contains(what),
        "expected an error naming '{what}':\n{}",
        describe(o)
    );
    assert!(
        !stdout(o).contains("trusted:"),
        "bad input printed a verdict:\n{}",
        describe(o)
    );
}

/// `tpm2_checkquote` on the same files: whether it accepts them.
fn checkquote(ak_pem: &Path, dir: &Path, nonce: &str) -> bool {
    let out = Command::new("tpm2_checkquote")
        .args([
            "-u",
            s(ak_pem),
            "-m",
            s(&dir.join("quote.msg")),
            "-s",
            s(&dir.join("quote.sig")),
            "-f",
            s(&dir.join("quote.pcrs")),
            "-g",
            "sha256",
            "-q",
            nonce,
        ])
        .output()
        .expect("tpm2_checkquote (tpm2-tools) must be installed: scripts/setup.sh");
    out.status.success()
}

/// The boot-chain lines of a policy for the real OVMF boot. Its command
/// line (a probe's, with rdinit=) is allowed only pinned.
fn boot_lines() -> String {
    format!(
        "kernel-sha256 {}\ninitrd-sha256 {}\ncmdline {}\n",
        firmware::KERNEL,
        firmware::INITRD,
        firmware::cmdline()
    )
}

/// A policy made by `attest --make-policy` from the machine's log, checked
/// against the quote in `dir`, with the real boot's kernel and initrd.
fn make_policy(m: &Machine, ak: &Ak, dir: &Path, modules: bool) -> PathBuf {
    let mut args = vec![
        "attest".to_string(),
        "--make-policy".into(),
        "--log".into(),
        m.log().display().to_string(),
        "--quote".into(),
        dir.display().to_string(),
        "--ak".into(),
        ak.pem.display().to_string(),
        "--nonce".into(),
        NONCE.into(),
    ];
    if modules {
        args.push("--expect-modules".into());
    }
    let out = modseal(&args);
    assert_eq!(code(&out), 0, "make-policy: {}", describe(&out));
    let path = m.path(if modules { "policy-modules" } else { "policy" });
    let text = format!("{}{}", stdout(&out), boot_lines());
    std::fs::write(&path, text).expect("policy");
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// The log's records (without separators) and a log made of `records`.
fn split_log(log: &[u8]) -> Vec<Vec<u8>> {
    log.split(|&b| b == 0x1e)
        .skip(1)
        .map(|r| r.to_vec())
        .collect()
}

fn join_log(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.push(0x1e);
        out.extend_from_slice(r);
    }
    out
}

#[test]
fn rsa_ak_good_boot_is_trusted_and_tpm2_checkquote_agrees() {
    let m = Machine::new(10, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "rsa2048:rsassa-sha256:null");
    let q = m.quote(&ak, "sha256:0,4,9,12", NONCE, "quote");
    assert!(
        checkquote(&ak.pem, &q, NONCE),
        "tpm2_checkquote rejects a good quote"
    );

    let policy = make_policy(&m, &ak, &q, true);
    let text = std::fs::read_to_string(&policy).expect("policy");
    let anchor = common::sha256_file(&m.bundle());
    assert!(text.starts_with("modseal-attest-policy v2\n"), "{text}");
    assert!(
        text.contains(&format!("\nanchor-sha256 {anchor}\n")),
        "{text}"
    );
    assert!(text.contains("\nmode enforce\n"), "{text}");
    assert!(text.contains("\nstages early pre-pivot\n"), "{text}");
    assert_eq!(text.matches("\nmodule ").count(), 10, "{text}");
    for f in common::module_files(&m.modules()) {
        let line = format!("\nmodule {} {}\n", common::sha256_file(&f), m.rel(&f));
        assert!(text.contains(&line), "{line} not in:\n{text}");
    }

    let out = attest(&ak.pem, &q, NONCE, &["--policy", s(&policy)]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let v = verdict(&out);
    assert!(
        v.starts_with(&format!("trusted: PCR 12 sha256 {} ", m.pcr12())),
        "{v}"
    );
    assert!(
        v.contains("2 record(s) (early, pre-pivot), mode enforce"),
        "{v}"
    );
    assert!(
        v.contains(&format!("trust bundle {anchor} (expected)")),
        "{v}"
    );
    for check in [
        "signature",
        "quote",
        "nonce",
        "pcr-digest",
        "replay",
        "firmware-replay",
        "boot-chain",
        "policy",
    ] {
        assert!(
            stdout(&out).contains(&format!("\n  {check}: ok: ")),
            "{check}: {}",
            describe(&out)
        );
    }
    assert!(stdout(&out).contains("rsassa/sha256 by the AK (rsa-2048)"));

    // The full report: every check and every record with every module.
    let out = attest(&ak.pem, &q, NONCE, &["--policy", s(&policy), "--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let j = json(&out);
    assert_eq!(j["trusted"], true);
    assert_eq!(j["first_failure"], Value::Null);
    let checks = j["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 8);
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{j}");
    assert_eq!(j["quote"]["extra_data"], NONCE);
    assert_eq!(j["quote"]["pcr_select"], "sha256:0,4,9,12");
    assert_eq!(j["boot_chain"]["kernel"]["sha256"], firmware::KERNEL);
    assert_eq!(j["boot_chain"]["initrd"]["event"], 22);
    // The policy pins the command line: nothing is left unchecked.
    assert_eq!(j["not_checked"], serde_json::json!([]));
    let records = j["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["pcr_after"], m.pcr12());
    for (r, stage) in records.iter().zip(["early", "pre-pivot"]) {
        assert_eq!(r["content"]["stage"], stage);
        let mods = r["content"]["modules"].as_array().expect("modules");
        assert_eq!(mods.len(), 10);
        assert!(mods.iter().all(|x| x["verdict"] == "ok"));
        assert_eq!(r["digest_error"], Value::Null);
    }
    assert_eq!(j["replay"][0]["result"], "match");
    assert_eq!(j["replay"][0]["quoted"], m.pcr12());

    // --no-policy: trusted, but the verdict, the report and stderr say
    // loudly what was not checked.
    let out = attest(&ak.pem, &q, NONCE, NP);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        verdict(&out).ends_with(" (--no-policy: NOT CHECKED: the trust-bundle digest, the kernel, the initrd and the command line)"),
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains("\n  NOT CHECKED: the trust-bundle digest (any bundle is accepted); the kernel (PCR 4); the initrd (PCR 9); the command line (PCR 9)\n"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("modseal: warning: --no-policy: NOT CHECKED: the trust-bundle digest, the kernel (PCR 4), the initrd (PCR 9) and the command line (PCR 9)"),
        "{}",
        describe(&out)
    );
    // Neither --policy nor --no-policy: not trusted.
    let out = attest(&ak.pem, &q, NONCE, &[]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        verdict(&out).starts_with("NOT TRUSTED: no policy given: ")
            && verdict(&out).ends_with("(--policy FILE, or --no-policy to check the signature, the nonce and the records only)"),
        "{}",
        describe(&out)
    );
    let j = json(&attest(&ak.pem, &q, NONCE, &["--json"]));
    assert_eq!(j["trusted"], false);
}

#[test]
fn ecc_ak_multi_bank_quote_is_trusted_and_tpm2_checkquote_agrees() {
    let m = Machine::new(6, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = m.quote(&ak, "sha256:0,12+sha1:12", NONCE, "quote");
    assert!(checkquote(&ak.pem, &q, NONCE));
    let out = attest(&ak.pem, &q, NONCE, &["--no-policy", "--json"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let j = json(&out);
    assert_eq!(j["quote"]["signature"], "ecdsa/sha256");
    assert_eq!(j["quote"]["ak"], "ecdsa-p256");
    // The log's sha1 digests are quoted too: both banks are replayed.
    let replay = j["replay"].as_array().expect("replay");
    let result = |bank: &str| {
        replay
            .iter()
            .find(|r| r["pcr"] == 12 && r["bank"] == bank)
            .map(|r| r["result"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(result("sha256"), "match", "{j}");
    assert_eq!(result("sha1"), "match", "{j}");
    assert_eq!(result("sha384"), "not-quoted", "{j}");
    // Text mode names the two checked banks.
    let out = attest(&ak.pem, &q, NONCE, NP);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains(
            "(12/sha256, 12/sha1 checked; not quoted, not checked: 12/sha384, 12/sha512)"
        ),
        "{}",
        describe(&out)
    );
    // P-384 with SHA-384: the quote's PCR digest is SHA-384 over sha256 values.
    let ak384 = m.ak("ak384", "e", "ecc384:ecdsa-sha384:null");
    let q384 = m.quote_hash(&ak384, "sha256:12", NONCE, "quote384", "sha384");
    assert!(checkquote(&ak384.pem, &q384, NONCE));
    let out = attest(&ak384.pem, &q384, NONCE, NP);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains("  signature: ok: ecdsa/sha384 by the AK (ecdsa-p384)"),
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains("  pcr-digest: ok: sha384 of 1 quoted value(s) (sha256:12)"),
        "{}",
        describe(&out)
    );
    // A P-384 quote checked with the P-256 AK: a bad signature.
    assert_not_trusted(&attest(&ak.pem, &q384, NONCE, NP), "bad signature: ");
    // An ECDSA quote checked with an RSA AK: refused by both.
    let rsa = m.ak("rsa", "e", "rsa2048:rsassa-sha256:null");
    let out = attest(&rsa.pem, &q, NONCE, NP);
    let v = assert_not_trusted(&out, "bad signature: ");
    assert!(
        v.contains("an ecdsa signature cannot come from this AK (rsa-2048)"),
        "{v}"
    );
    assert!(!checkquote(&rsa.pem, &q, NONCE));
}

#[test]
fn stale_nonce_is_not_trusted() {
    let m = Machine::new(3, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = m.quote(&ak, "sha256:12", OTHER_NONCE, "quote");
    let out = attest(&ak.pem, &q, NONCE, NP);
    let v = assert_not_trusted(&out, "stale nonce: ");
    assert!(
        v.contains(&format!(
            "the quote's extraData is '{OTHER_NONCE}', the verifier's nonce is {NONCE}"
        )),
        "{v}"
    );
    assert!(!checkquote(&ak.pem, &q, NONCE));
    assert!(checkquote(&ak.pem, &q, OTHER_NONCE));
    // The other checks still ran, for the report.
    let out = attest(&ak.pem, &q, NONCE, &["--no-policy", "--json"]);
    let j = json(&out);
    assert_eq!(j["first_failure"]["check"], "nonce");
    let status: Vec<&str> = j["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        status,
        ["pass", "pass", "fail", "pass", "pass", "pass", "skipped", "pass"]
    );
}

#[test]
fn quote_signed_by_another_ak_is_a_bad_signature() {
    let m = Machine::new(3, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "rsa2048:rsassa-sha256:null");
    // Another key (owner hierarchy): its quote directory even carries its
    // own ak.pem, which attest must not use.
    let other = m.ak("other", "o", "rsa2048:rsassa-sha256:null");
    let q = m.quote(&other, "sha256:0,12", NONCE, "quote");
    let v = assert_not_trusted(&attest(&ak.pem, &q, NONCE, NP), "bad signature: ");
    // A signature made with another 2048-bit modulus is, as an integer,
    // sometimes not below this AK's modulus: the check then stops at the
    // range test. Either way it is this key's bad signature.
    assert!(
        v.contains("RSA signature does not match")
            || v.contains("RSA signature value out of range"),
        "{v}"
    );
    assert!(!checkquote(&ak.pem, &q, NONCE));
    // The same files with the key that signed them: accepted by both.
    assert!(checkquote(&other.pem, &q, NONCE));
    assert_eq!(code(&attest(&other.pem, &q, NONCE, NP)), 0);
}

#[test]
fn tampered_message_signature_and_pcr_values_are_rejected_by_both() {
    let m = Machine::new(3, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "rsa2048:rsassa-sha256:null");
    let q = m.quote(&ak, "sha256:0,12", NONCE, "quote");
    let variant = |name: &str, file: &str, edit: &dyn Fn(&mut Vec<u8>)| -> PathBuf {
        let d = m.path(name);
        copy_dir(&q, &d);
        let mut b = std::fs::read(d.join(file)).expect("read");
        edit(&mut b);
        std::fs::write(d.join(file), b).expect("write");
        d
    };
    // The message: the last byte of pcrDigest.
    let d = variant("msg", "quote.msg", &|b| {
        let n = b.len();
        b[n - 1] ^= 1;
    });
    assert_not_trusted(&attest(&ak.pem, &d, NONCE, NP), "bad signature: ");
    assert!(!checkquote(&ak.pem, &d, NONCE));
    // The signature.
    let d = variant("sig", "quote.sig", &|b| b[100] ^= 1);
    assert_not_trusted(&attest(&ak.pem, &d, NONCE, NP), "bad signature: ");
    assert!(!checkquote(&ak.pem, &d, NONCE));
    // The PCR 12 value in quote.pcrs (second digest of the first list:
    // 136 + 4 + 66 + 2 = 208).
    let d = variant("pcrs", "quote.pcrs", &|b| b[208] ^= 1);
    let v = assert_not_trusted(&attest(&ak.pem, &d, NONCE, NP), "PCR digest mismatch: ");
    assert!(v.contains("the quote's pcrDigest is"), "{v}");
    assert!(!checkquote(&ak.pem, &d, NONCE));
    // The selection in quote.pcrs: PCR 1 instead of PCR 0, values unchanged,
    // so the values still hash to pcrDigest. tpm2_checkquote
    // (5.4) does not compare the selections and accepts it; modseal does.
    let d = variant("selection", "quote.pcrs", &|b| b[7] = 0x02);
    let v = assert_not_trusted(&attest(&ak.pem, &d, NONCE, NP), "PCR digest mismatch: ");
    assert!(
        v.contains("quote.pcrs holds sha256:1,12, but the quote is over sha256:0,12"),
        "{v}"
    );
    assert!(
        checkquote(&ak.pem, &d, NONCE),
        "tpm2_checkquote changed: it now compares selections"
    );
    // The untouched files: both accept.
    assert!(checkquote(&ak.pem, &q, NONCE));
    assert_eq!(code(&attest(&ak.pem, &q, NONCE, NP)), 0);
}

#[test]
fn edited_extra_missing_swapped_and_relabelled_records_are_named() {
    let m = Machine::new(4, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = m.quote(&ak, "sha256:4,9,12", NONCE, "quote");
    let policy = make_policy(&m, &ak, &q, false);
    assert_eq!(
        code(&attest(&ak.pem, &q, NONCE, &["--policy", s(&policy)])),
        0
    );
    let log = std::fs::read(m.log()).expect("log");
    let recs = split_log(&log);
    assert_eq!(recs.len(), 2);
    let with_log = |name: &str, bytes: &[u8]| -> Output {
        let path = m.path(name);
        std::fs::write(&path, bytes).expect("log");
        attest(
            &ak.pem,
            &q,
            NONCE,
            &["--policy", s(&policy), "--log", s(&path)],
        )
    };

    // Edited content (a module's hash), digests untouched.
    let text = String::from_utf8(log.clone()).expect("UTF-8 log");
    let sha = common::sha256_file(&m.first_module());
    let edited = text.replacen(&sha, &"0".repeat(64), 1);
    assert_ne!(edited, text);
    let v = assert_not_trusted(
        &with_log("edited", edited.as_bytes()),
        "log replay mismatch: ",
    );
    assert!(
        v.contains("record 1: sha1 digest does not match the content (the record was edited after it was measured)"),
        "{v}"
    );

    // An extra record (a copy of the second) appended.
    let extra = join_log(&[recs[0].clone(), recs[1].clone(), recs[1].clone()]);
    let v = assert_not_trusted(&with_log("extra", &extra), "log replay mismatch: ");
    assert!(
        v.contains("the first 2 record(s) (1, 2) replay to the quoted value; record(s) 3 after them were not measured"),
        "{v}"
    );

    // The first record removed.
    let v = assert_not_trusted(
        &with_log("missing-first", &join_log(&[recs[1].clone()])),
        "log replay mismatch: ",
    );
    assert!(v.contains("log records: 1 pre-pivot"), "{v}");
    assert!(v.contains("a record is missing"), "{v}");
    // The last record removed.
    let v = assert_not_trusted(
        &with_log("missing-last", &join_log(&[recs[0].clone()])),
        "log replay mismatch: ",
    );
    assert!(v.contains("log records: 1 early"), "{v}");

    // The two records swapped.
    let v = assert_not_trusted(
        &with_log("swapped", &join_log(&[recs[1].clone(), recs[0].clone()])),
        "log replay mismatch: ",
    );
    assert!(
        v.contains("the log is reordered: the TPM measured the records in the order 2, 1, the log has 1, 2"),
        "{v}"
    );

    // The second record's PCR label changed (not covered by the digests).
    let relabel = join_log(&[
        recs[0].clone(),
        String::from_utf8_lossy(&recs[1])
            .replacen("{\"pcr\":12,", "{\"pcr\":13,", 1)
            .into_bytes(),
    ]);
    let v = assert_not_trusted(&with_log("pcr-label", &relabel), "log replay mismatch: ");
    assert!(
        v.contains("record(s) 2 claim another PCR but were measured into PCR 12"),
        "{v}"
    );

    // The second record's content type changed to hide it from the policy.
    let hidden = join_log(&[
        recs[0].clone(),
        String::from_utf8_lossy(&recs[1])
            .replacen(
                "\"content_type\":\"modseal\"",
                "\"content_type\":\"systemd\"",
                1,
            )
            .into_bytes(),
    ]);
    let v = assert_not_trusted(&with_log("content-type", &hidden), "policy: ");
    assert!(
        v.contains("record 2: labelled 'systemd' but its content is a modseal record"),
        "{v}"
    );

    // Never trusted whatever was done, with or without the policy.
    for name in [
        "edited",
        "extra",
        "missing-first",
        "swapped",
        "pcr-label",
        "content-type",
    ] {
        let out = attest(
            &ak.pem,
            &q,
            NONCE,
            &["--no-policy", "--log", s(&m.path(name))],
        );
        assert_eq!(code(&out), 1, "{name}: {}", describe(&out));
    }
}

#[test]
fn warn_boot_with_tampered_module_names_module_and_verdict() {
    let m = Machine::new(5, "warn");
    let victim = m.first_module();
    let mut b = std::fs::read(&victim).expect("module");
    b[100] ^= 1;
    std::fs::write(&victim, b).expect("write");
    m.boot(); // warn mode: both stages boot on
    let ak = m.ak("ak", "e", "rsa2048:rsassa-sha256:null");
    let q = m.quote(&ak, "sha256:4,9,12", NONCE, "quote");
    let rel = m.rel(&victim);
    let out = attest(&ak.pem, &q, NONCE, NP);
    let v = assert_not_trusted(&out, "policy: ");
    assert!(
        v.starts_with(&format!(
            "NOT TRUSTED: policy: record 1: (early) module {rel}: bad-signature: "
        )),
        "{v}"
    );
    // The signature, nonce, digest and replay checks all passed: the log
    // is what the TPM measured; it is the boot that was bad.
    for check in [
        "signature",
        "quote",
        "nonce",
        "pcr-digest",
        "replay",
        "firmware-replay",
    ] {
        assert!(
            stdout(&out).contains(&format!("\n  {check}: ok: ")),
            "{check}: {}",
            describe(&out)
        );
    }
    // Every violation is listed: both stages and the mode.
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "    record 2: (pre-pivot) module {rel}: bad-signature: "
        )),
        "{text}"
    );
    assert!(
        text.contains("    record 1: (early) mode warn, the policy requires enforce"),
        "{text}"
    );

    // A policy that accepts warn mode still names the module.
    let anchor = common::sha256_file(&m.bundle());
    let p = m.path("warn-policy");
    std::fs::write(
        &p,
        format!(
            "modseal-attest-policy v2\nanchor-sha256 {anchor}\nmode warn\n{}",
            boot_lines()
        ),
    )
    .expect("policy");
    let v = assert_not_trusted(
        &attest(&ak.pem, &q, NONCE, &["--policy", s(&p)]),
        "policy: ",
    );
    assert!(v.contains(&format!("module {rel}: bad-signature")), "{v}");
    // ...unless it allows that verdict too.
    std::fs::write(
        &p,
        format!("modseal-attest-policy v2\nanchor-sha256 {anchor}\nmode warn\nallow-verdict bad-signature\n{}", boot_lines()),
    )
    .expect("policy");
    assert_eq!(code(&attest(&ak.pem, &q, NONCE, &["--policy", s(&p)])), 0);

    // The JSON report carries the module's verdict and reason.
    let j = json(&attest(&ak.pem, &q, NONCE, &["--no-policy", "--json"]));
    let m0 = j["records"][0]["content"]["modules"]
        .as_array()
        .expect("modules")
        .iter()
        .find(|x| x["path"] == rel.as_str())
        .cloned()
        .expect("victim in the report");
    assert_eq!(m0["verdict"], "bad-signature");
    assert!(m0["reason"].as_str().is_some_and(|r| !r.is_empty()));

    // No policy is made from a failing boot.
    let out = modseal(["attest", "--make-policy", "--log", s(&m.log())]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains("not a passing boot"),
        "{}",
        describe(&out)
    );
    assert!(stderr(&out).contains(&rel), "{}", describe(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn policy_pins_anchor_modules_and_the_quoted_pcr() {
    let m = Machine::new(4, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = m.quote(&ak, "sha256:4,9,12", NONCE, "quote");
    let policy = make_policy(&m, &ak, &q, true);
    let text = std::fs::read_to_string(&policy).expect("policy");
    assert_eq!(
        code(&attest(&ak.pem, &q, NONCE, &["--policy", s(&policy)])),
        0
    );
    let edited = |name: &str, from: &str, to: &str| -> Output {
        assert!(text.contains(from), "{from} not in {text}");
        let p = m.path(name);
        std::fs::write(&p, text.replacen(from, to, 1)).expect("policy");
        attest(&ak.pem, &q, NONCE, &["--policy", s(&p)])
    };
    // Another expected trust bundle: the boot's anchor is unexpected.
    let anchor = common::sha256_file(&m.bundle());
    let v = assert_not_trusted(
        &edited("p-anchor", &anchor, &"ab".repeat(32)),
        "policy: record 1: (early) unexpected trust anchor: ",
    );
    assert!(v.contains(&format!("the boot used bundle {anchor}")), "{v}");
    // A module left out of the expected set.
    let first = m.first_module();
    let line = format!("module {} {}\n", common::sha256_file(&first), m.rel(&first));
    let v = assert_not_trusted(&edited("p-module", &line, ""), "policy: ");
    assert!(
        v.contains(&format!(
            "unexpected module {} (not in the policy's module set)",
            m.rel(&first)
        )),
        "{v}"
    );
    // One stage only.
    assert_not_trusted(
        &edited("p-stages", "stages early pre-pivot", "stages early"),
        "policy: stages: the policy requires the records early on PCR 12, the log has early, pre-pivot",
    );
    // A policy about PCR 13: not in this quote.
    let v = assert_not_trusted(
        &edited("p-pcr", "pcr 12", "pcr 13"),
        "log replay mismatch: ",
    );
    assert!(
        v.contains("PCR 13 sha256 is not in the quote (it covers sha256:4,9,12)"),
        "{v}"
    );

    // No policy from a log the quote does not attest (another nonce).
    let out = modseal([
        "attest",
        "--make-policy",
        "--log",
        s(&m.log()),
        "--quote",
        s(&q),
        "--ak",
        s(&ak.pem),
        "--nonce",
        OTHER_NONCE,
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        stderr(&out).contains("the quote does not attest the log: NOT TRUSTED: stale nonce"),
        "{}",
        describe(&out)
    );
}

#[test]
fn malformed_truncated_oversized_and_garbage_input_is_exit_2() {
    let m = Machine::new(3, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "rsa2048:rsassa-sha256:null");
    let q = m.quote(&ak, "sha256:0,12", NONCE, "quote");
    assert_eq!(code(&attest(&ak.pem, &q, NONCE, NP)), 0);
    let variant = |name: &str, file: &str, bytes: &[u8]| -> Output {
        let d = m.path(name);
        copy_dir(&q, &d);
        std::fs::write(d.join(file), bytes).expect("write");
        attest(&ak.pem, &d, NONCE, NP)
    };
    let msg = std::fs::read(q.join("quote.msg")).expect("msg");
    let sig = std::fs::read(q.join("quote.sig")).expect("sig");
    let pcrs = std::fs::read(q.join("quote.pcrs")).expect("pcrs");

    assert_bad_input(
        &variant("t-msg", "quote.msg", &msg[..msg.len() - 5]),
        "quote.msg: not a TPMS_ATTEST quote: truncated in pcrDigest",
    );
    assert_bad_input(
        &variant("g-msg", "quote.msg", b"garbage garbage garbage"),
        "quote.msg: not a TPMS_ATTEST quote: magic is 0x67617262",
    );
    assert_bad_input(
        &variant("e-msg", "quote.msg", b""),
        "quote.msg: not a TPMS_ATTEST quote: truncated in magic",
    );
    assert_bad_input(
        &variant("o-msg", "quote.msg", &vec![0u8; (1 << 20) + 1]),
        "quote.msg: 1048577 bytes, more than the 1048576-byte limit",
    );
    assert_bad_input(
        &variant("t-sig", "quote.sig", &sig[..sig.len() - 1]),
        "quote.sig: truncated in signature",
    );
    assert_bad_input(
        &variant("g-sig", "quote.sig", b"\xde\xad\xbe\xef"),
        "quote.sig: sigAlg 0xdead is not a TPM signature scheme",
    );
    assert_bad_input(
        &variant("t-pcrs", "quote.pcrs", &pcrs[..pcrs.len() - 1]),
        "quote.pcrs: 667 bytes, but a file with 1 digest list(s) has exactly 668",
    );
    assert_bad_input(
        &variant("g-pcrs", "quote.pcrs", &[0xff; 700]),
        "quote.pcrs: selection count is 4294967295",
    );
    assert_bad_input(
        &variant(
            "g-log",
            "tpm2-measure.log",
            b"\x1e{\"pcr\":12,\"digests\":[\n",
        ),
        "event log: record 1",
    );
    assert_bad_input(
        &variant("n-log", "tpm2-measure.log", b"not a log"),
        "event log: log does not start with a record separator",
    );
    // A log over the size limit is refused before it is read.
    let d = m.path("o-log");
    copy_dir(&q, &d);
    let f = std::fs::File::create(d.join("tpm2-measure.log")).expect("create");
    f.set_len(64 * 1024 * 1024 + 1).expect("sparse file");
    assert_bad_input(
        &attest(&ak.pem, &d, NONCE, NP),
        "more than the 67108864-byte limit",
    );
    // A FIFO where a file should be: refused, never waited on.
    let d = m.path("fifo");
    copy_dir(&q, &d);
    std::fs::remove_file(d.join("quote.sig")).expect("rm");
    let mk = Command::new("mkfifo")
        .arg(d.join("quote.sig"))
        .status()
        .expect("mkfifo");
    assert!(mk.success());
    assert_bad_input(
        &attest(&ak.pem, &d, NONCE, NP),
        "quote.sig: not a regular file",
    );
    // A missing file, a missing directory.
    let d = m.path("no-pcrs");
    copy_dir(&q, &d);
    std::fs::remove_file(d.join("quote.pcrs")).expect("rm");
    assert_bad_input(&attest(&ak.pem, &d, NONCE, NP), "quote.pcrs: cannot open");
    assert_bad_input(&attest(&ak.pem, &m.path("nowhere"), NONCE, NP), "nowhere");

    // The AK: garbage, a certificate instead of a key, an RSA-1024 key.
    let garbage = m.path("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .expect("write");
    assert_bad_input(&attest(&garbage, &q, NONCE, NP), "unusable AK: ");
    assert_bad_input(
        &attest(&m.path("kernel.pem"), &q, NONCE, NP),
        "no 'BEGIN PUBLIC KEY' block",
    );
    let small = m.path("rsa1024.pem");
    let gen = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl genrsa 1024 2>/dev/null | openssl rsa -pubout -out {} 2>/dev/null",
            s(&small)
        ))
        .status()
        .expect("openssl");
    assert!(gen.success());
    assert_bad_input(&attest(&small, &q, NONCE, NP), "unusable AK: RSA-1024 key");

    // The nonce and the policy.
    assert_bad_input(
        &attest(&ak.pem, &q, "not-hex", NP),
        "--nonce 'not-hex': not hex",
    );
    let p = m.path("bad-policy");
    std::fs::write(&p, "modseal-attest-policy v2\nanchor-sha256 1234\n").expect("policy");
    assert_bad_input(
        &attest(&ak.pem, &q, NONCE, &["--policy", s(&p)]),
        "malformed policy: line 2: '1234' is not a SHA-256",
    );
    std::fs::write(&p, "modseal-attest-policy v3\n").expect("policy");
    assert_bad_input(
        &attest(&ak.pem, &q, NONCE, &["--policy", s(&p)]),
        "line 1: expected the header 'modseal-attest-policy v2'",
    );
    // --json reports bad input as JSON too.
    let out = attest(&ak.pem, &q, "zz", &["--no-policy", "--json"]);
    assert_eq!(code(&out), 2);
    let j = json(&out);
    assert_eq!(j["trusted"], false);
    assert!(
        j["bad_input"]
            .as_str()
            .is_some_and(|e| e.contains("not hex")),
        "{j}"
    );
}

/// A copy of the quote directory `q` with its firmware log replaced by
/// `log` (or removed), named `name`.
fn with_firmware_log(m: &Machine, q: &Path, name: &str, log: Option<&[u8]>) -> PathBuf {
    let d = m.path(name);
    copy_dir(q, &d);
    let f = d.join("binary_bios_measurements");
    match log {
        Some(b) => std::fs::write(&f, b).expect("firmware log"),
        None => std::fs::remove_file(&f).expect("rm"),
    }
    d
}

/// The real log with `edit` applied to its events.
fn edited_firmware_log(edit: impl FnOnce(&mut Vec<modseal::measure::tcg::Event>)) -> Vec<u8> {
    let (header, mut events) = firmware::split(&firmware::bytes());
    edit(&mut events);
    firmware::join(&header, &events)
}

#[test]
fn the_boot_chain_is_the_policy_s_and_each_link_is_named() {
    let m = Machine::new(3, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = m.quote(&ak, "sha256:0,4,7,9,12", NONCE, "quote");
    assert!(checkquote(&ak.pem, &q, NONCE));
    let policy = make_policy(&m, &ak, &q, false);
    let text = std::fs::read_to_string(&policy).expect("policy");
    let out = attest(&ak.pem, &q, NONCE, &["--policy", s(&policy)]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        verdict(&out).ends_with("; the kernel and the initrd are the policy's (PCRs 4 and 9)"),
        "{}",
        describe(&out)
    );
    let cmdline_sha = "7efe6968551bb0d0ae5550e46c5bb933c52bd8c0c02f59a00c2ff3afc86037c0";
    assert!(
        stdout(&out).contains(&format!(
            "\n  boot-chain: ok: PCR 4: kernel {} (event #10); PCR 9: initrd {} (event #22), command line {cmdline_sha} (event #21) (one of the 1 allowed)\n",
            firmware::KERNEL,
            firmware::INITRD
        )),
        "{}",
        describe(&out)
    );
    assert!(
        stdout(&out).contains("\n  firmware-replay: ok: 24 firmware event(s) replay to the quoted PCR value(s) 0/sha256, 4/sha256, 7/sha256, 9/sha256; "),
        "{}",
        describe(&out)
    );
    let edited = |name: &str, from: &str, to: &str| -> Output {
        assert!(text.contains(from), "{from} not in {text}");
        let p = m.path(name);
        std::fs::write(&p, text.replacen(from, to, 1)).expect("policy");
        attest(&ak.pem, &q, NONCE, &["--policy", s(&p)])
    };
    let other = "5e".repeat(32);
    // An initrd the policy does not allow: PCR 9's initrd digest named.
    let v = assert_not_trusted(
        &edited("p-initrd", firmware::INITRD, &other),
        "boot chain: ",
    );
    assert_eq!(
        v,
        format!("NOT TRUSTED: boot chain: PCR 9 event #22 (EFI stub: initrd): sha256 {} is not an initrd the policy allows (allowed: {other})", firmware::INITRD)
    );
    // Another kernel: PCR 4 named.
    let v = assert_not_trusted(
        &edited("p-kernel", firmware::KERNEL, &other),
        "boot chain: PCR 4 event #10 (EV_EFI_BOOT_SERVICES_APPLICATION): ",
    );
    assert!(
        v.contains(&format!(
            "sha256 {} is not a kernel the policy allows",
            firmware::KERNEL
        )),
        "{v}"
    );
    // Another command line.
    let v = assert_not_trusted(
        &edited("p-cmdline", "panic=-1", "panic=0"),
        "boot chain: PCR 9 event #21 (EFI stub: command line): ",
    );
    assert!(
        v.contains(&format!(
            "sha256 {cmdline_sha} is not the digest of a command line the policy allows"
        )),
        "{v}"
    );
    // A fleet rolling to the next initrd: either is trusted.
    let rolled = format!(
        "initrd-sha256 {}\ninitrd-sha256 {other}\n",
        firmware::INITRD
    );
    let out = edited(
        "p-roll",
        &format!("initrd-sha256 {}\n", firmware::INITRD),
        &rolled,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // A v1 policy: refused, saying how to make a v2 one.
    let out = edited(
        "p-v1",
        "modseal-attest-policy v2",
        "modseal-attest-policy v1",
    );
    assert_bad_input(
        &out,
        "policy v1 cannot pin the kernel and the initrd (PCRs 4 and 9): make a v2 policy with `modseal attest --make-policy --trust BUNDLE --initrd IMAGE --kernel VMLINUZ`",
    );
    // PCRs 4 and 9 must be quoted.
    let q12 = m.quote(&ak, "sha256:9,12", NONCE, "quote12");
    assert_not_trusted(
        &attest(&ak.pem, &q12, NONCE, &["--policy", s(&policy)]),
        "firmware log replay mismatch: PCR 4 is not quoted (sha256): the policy checks the kernel the firmware measured there, and the quote covers sha256:9,12",
    );
}

#[test]
fn an_edited_dropped_reordered_truncated_or_missing_firmware_log_is_named() {
    let m = Machine::new(3, "enforce");
    m.boot();
    let ak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = m.quote(&ak, "sha256:4,9,12", NONCE, "quote");
    let policy = make_policy(&m, &ak, &q, false);
    let run = |name: &str, log: Option<&[u8]>| {
        let d = with_firmware_log(&m, &q, name, log);
        attest(&ak.pem, &d, NONCE, &["--policy", s(&policy)])
    };
    assert_eq!(code(&run("good", Some(&firmware::bytes()))), 0);
    // The kernel's digest edited into another (allowed) one.
    let log = edited_firmware_log(|ev| {
        if let Some(d) = ev[9]
            .digests
            .iter_mut()
            .find(|(a, _)| *a == firmware::SHA256)
        {
            d.1 = vec![0x5e; 32];
        }
    });
    let v = assert_not_trusted(
        &run("edited", Some(&log)),
        "firmware log replay mismatch: PCR 4 sha256: ",
    );
    assert!(
        v.contains("(#10 EV_EFI_BOOT_SERVICES_APPLICATION, #13 EV_EFI_ACTION, #18 EV_SEPARATOR)"),
        "{v}"
    );
    // An action's text edited: the event named.
    let log = edited_firmware_log(|ev| ev[12].data[0] = b'c');
    assert_not_trusted(
        &run("edited-text", Some(&log)),
        "firmware log replay mismatch: event #13 (EV_EFI_ACTION, PCR 4): its sha256 digest ",
    );
    // The stub's command-line event dropped; its two events swapped.
    let log = edited_firmware_log(|ev| {
        ev.remove(20);
    });
    assert_not_trusted(
        &run("dropped", Some(&log)),
        "firmware log replay mismatch: PCR 9 sha256: the firmware log's events of PCR 9 (#21 EV_EVENT_TAG) ",
    );
    let log = edited_firmware_log(|ev| ev.swap(20, 21));
    let v = assert_not_trusted(
        &run("swapped", Some(&log)),
        "firmware log replay mismatch: PCR 9 sha256: ",
    );
    assert!(
        v.ends_with("events #21 and #22 are out of order (the log is reordered)"),
        "{v}"
    );
    // Truncated, garbage, empty, missing: bad input, no panic.
    let bytes = firmware::bytes();
    for (name, log, says) in [
        (
            "truncated",
            &bytes[..bytes.len() - 9],
            "binary_bios_measurements: firmware event log: event 24 at byte offset",
        ),
        (
            "garbage",
            &b"garbage garbage garbage garbage"[..],
            "binary_bios_measurements: firmware event log: event 0",
        ),
        (
            "empty",
            &b""[..],
            "binary_bios_measurements: firmware event log: event 0",
        ),
    ] {
        let out = run(name, Some(log));
        assert_bad_input(&out, says);
        assert!(!stderr(&out).contains("panicked"), "{}", describe(&out));
    }
    assert_bad_input(
        &run("missing", None),
        "no firmware event log: the quote directory has no binary_bios_measurements and no --firmware-log was given",
    );
    // --firmware-log overrides the directory's.
    let d = m.path("missing");
    let out = attest(
        &ak.pem,
        &d,
        NONCE,
        &[
            "--policy",
            s(&policy),
            "--firmware-log",
            s(&firmware::sample()),
        ],
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_bad_input(
        &attest(
            &ak.pem,
            &d,
            NONCE,
            &[
                "--policy",
                s(&policy),
                "--firmware-log",
                s(&m.path("nowhere")),
            ],
        ),
        "nowhere: cannot open",
    );
}

/// The sha256 digests of a modseal log's records, in order.
fn record_digests(log: &[u8]) -> Vec<String> {
    split_log(log)
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(r).expect("record");
            v["digests"]
                .as_array()
                .expect("digests")
                .iter()
                .find(|d| d["hashAlg"] == "sha256")
                .and_then(|d| d["digest"].as_str())
                .expect("sha256")
                .to_owned()
        })
        .collect()
}

#[test]
fn the_forged_log_attack_is_not_trusted_and_a_fleet_roll_is() {
    // A good boot, its policy, and its saved log.
    let good = Machine::new(3, "enforce");
    good.boot();
    let ak = good.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = good.quote(&ak, "sha256:4,9,12", NONCE, "quote");
    let policy = make_policy(&good, &ak, &q, false);
    assert_eq!(
        code(&attest(&ak.pem, &q, NONCE, &["--policy", s(&policy)])),
        0
    );
    let saved = std::fs::read(good.log()).expect("log");

    // Another boot: the EFI stub measured another initrd (one that skips
    // modseal), so modseal never ran. From the booted root, PCR 12 is
    // extended with the saved log's digests and the saved logs are shipped.
    let other_initrd = "ba".repeat(32);
    let bad_firmware = edited_firmware_log(|ev| {
        for (alg, d) in ev[21].digests.iter_mut() {
            if *alg == firmware::SHA256 {
                *d = firmware::unhex(&other_initrd);
            }
        }
    });
    let bad = Machine::with_firmware(3, "enforce", bad_firmware.clone());
    for d in record_digests(&saved) {
        bad.tools_ok("tpm2_pcrextend", &[&format!("12:sha256={d}")]);
    }
    let bak = bad.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    std::fs::create_dir_all(bad.log().parent().expect("run")).expect("mkdir");
    std::fs::write(bad.log(), &saved).expect("saved log");
    let forged = bad.quote(&bak, "sha256:4,9,12", NONCE, "forged");
    // Both logs shipped are the good boot's: PCR 12 replays, PCR 9 does not.
    let with_good_fw = with_firmware_log(&bad, &forged, "forged-good-fw", Some(&firmware::bytes()));
    let v = assert_not_trusted(
        &attest(&bak.pem, &with_good_fw, NONCE, &["--policy", s(&policy)]),
        "firmware log replay mismatch: PCR 9 sha256: ",
    );
    assert!(v.contains("(#21 EV_EVENT_TAG, #22 EV_EVENT_TAG)"), "{v}");
    // The machine's own firmware log: PCR 9's initrd digest is not allowed.
    let v = assert_not_trusted(
        &attest(&bak.pem, &forged, NONCE, &["--policy", s(&policy)]),
        "boot chain: PCR 9 event #22 (EFI stub: initrd): ",
    );
    assert!(
        v.contains(&format!(
            "sha256 {other_initrd} is not an initrd the policy allows"
        )),
        "{v}"
    );
    // The checks before the boot chain all pass: PCR 12 alone proves nothing.
    let out = attest(&bak.pem, &forged, NONCE, &["--policy", s(&policy)]);
    for check in [
        "signature",
        "quote",
        "nonce",
        "pcr-digest",
        "replay",
        "firmware-replay",
    ] {
        assert!(
            stdout(&out).contains(&format!("\n  {check}: ok: ")),
            "{check}: {}",
            describe(&out)
        );
    }

    // A fleet rolling to the new initrd: a policy allowing both digests
    // trusts a boot of each (the new one booted with modseal this time).
    let rolled_machine = Machine::with_firmware(3, "enforce", bad_firmware);
    rolled_machine.boot();
    let rak = rolled_machine.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let rq = rolled_machine.quote(&rak, "sha256:4,9,12", NONCE, "quote");
    let mut text = std::fs::read_to_string(&policy).expect("policy");
    text.push_str(&format!(
        "initrd-sha256 {other_initrd}\nanchor-sha256 {}\n",
        common::sha256_file(&rolled_machine.bundle())
    ));
    let both = good.path("policy-both");
    std::fs::write(&both, &text).expect("policy");
    assert_eq!(
        code(&attest(&ak.pem, &q, NONCE, &["--policy", s(&both)])),
        0
    );
    let out = attest(&rak.pem, &rq, NONCE, &["--policy", s(&both)]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // ...and the old policy does not trust the new initrd.
    assert_not_trusted(
        &attest(&rak.pem, &rq, NONCE, &["--policy", s(&policy)]),
        "boot chain: PCR 9 event #22 (EFI stub: initrd): ",
    );
}

/// The machine's log with a derived anchor of `kernel` holding `certs`
/// (sha256, subject) in every record, sha256 bank only.
fn with_derived(log: &[u8], kernel: &str, certs: &[(&str, &str)]) -> Vec<Vec<u8>> {
    let records = modseal::measure::parse_records(log).expect("log");
    records
        .iter()
        .map(|r| {
            let mut c = r.parse_content().expect("modseal").expect("content");
            c.derived_anchor = Some(modseal::measure::DerivedRecord {
                release: "6.1.0-57-amd64".into(),
                kernel_sha256: kernel.into(),
                certs: certs
                    .iter()
                    .map(|(sha256, subject)| modseal::measure::DerivedCert {
                        sha256: (*sha256).into(),
                        subject: (*subject).into(),
                        key_id: String::new(),
                    })
                    .collect(),
            });
            c.encode().expect("encode")
        })
        .collect()
}

#[test]
fn a_derived_anchor_must_be_the_measured_kernel_s_own_certificate() {
    // A good boot's records, given the derived anchor a kernel-signer
    // bundle's boot records; the policy lists the measured kernel's
    // certificate (as make-policy takes it from the kernel image).
    let good = Machine::new(2, "enforce");
    good.boot();
    let ak = good.ak("ak", "e", "ecc256:ecdsa-sha256:null");
    let q = good.quote(&ak, "sha256:4,9,12", NONCE, "quote");
    let base = make_policy(&good, &ak, &q, false);
    let saved = std::fs::read(good.log()).expect("log");
    let build_key = "6b".repeat(32);
    let attacker = "5a".repeat(32);
    let other_kernel = "d4".repeat(32);
    let mut text = std::fs::read_to_string(&base).expect("policy");
    text.push_str(&format!(
        "kernel-sha256 {other_kernel}\nkernel-module-cert {} {build_key}\nkernel-module-cert {other_kernel} {attacker}\n",
        firmware::KERNEL
    ));
    let policy = good.path("policy-derived");
    std::fs::write(&policy, text).expect("policy");

    // Each case on a machine that booted the real kernel and measured
    // these records into PCR 12.
    let attest_records = |name: &str, contents: Vec<Vec<u8>>, args: &[&str]| -> Output {
        let m = Machine::new(1, "enforce");
        let mut log = Vec::new();
        for c in &contents {
            let sha = common::hex(&modseal::tpm::PcrBank::Sha256.hash(c));
            m.tools_ok("tpm2_pcrextend", &[&format!("12:sha256={sha}")]);
            log.extend(modseal::measure::record_bytes(
                12,
                c,
                &[modseal::tpm::PcrBank::Sha256],
            ));
        }
        std::fs::create_dir_all(m.log().parent().expect("run")).expect("mkdir");
        std::fs::write(m.log(), &log).expect("log");
        let mak = m.ak("ak", "e", "ecc256:ecdsa-sha256:null");
        let dir = m.quote(&mak, "sha256:4,9,12", NONCE, name);
        attest(&mak.pem, &dir, NONCE, args)
    };
    let with_policy = ["--policy", s(&policy)];

    let out = attest_records(
        "right",
        with_derived(
            &saved,
            firmware::KERNEL,
            &[(&build_key, "Debian build key")],
        ),
        &with_policy,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // The swap: the attacker's certificate in the image's anchor.
    let out = attest_records(
        "swapped",
        with_derived(&saved, firmware::KERNEL, &[(&attacker, "CN=attacker")]),
        &with_policy,
    );
    let v = assert_not_trusted(&out, "policy: record 1: (early) derived anchor: ");
    assert_eq!(
        v,
        format!(
            "NOT TRUSTED: policy: record 1: (early) derived anchor: certificate 5a5a5a5a5a5a5a5a… (CN=attacker) is not built into kernel {} (the policy allows: 6b6b6b6b6b6b6b6b…) (2 violation(s) in all)",
            firmware::KERNEL
        )
    );

    // Another allowed kernel's anchor, with that kernel's own certificate:
    // the firmware measured the real kernel.
    let out = attest_records(
        "other-kernel",
        with_derived(&saved, &other_kernel, &[(&attacker, "Other build key")]),
        &with_policy,
    );
    let v = assert_not_trusted(&out, "policy: record 1: (early) derived anchor: ");
    assert!(
        v.contains(&format!(
            "made from kernel {other_kernel}, but the firmware measured kernel {} (PCR 4)",
            firmware::KERNEL
        )),
        "{v}"
    );

    // --no-policy: trusted, and the report says what it did not check.
    let out = attest_records(
        "np",
        with_derived(&saved, firmware::KERNEL, &[(&attacker, "CN=attacker")]),
        NP,
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains(
            "the derived anchor's certificates (no kernel in the policy to check them against)"
        ),
        "{}",
        describe(&out)
    );
}
