//! `modseal enroll` / `unseal` and the esapi backend against swtpm: each test
//! starts its own swtpm (tests/common/swtpm.rs). tpm2-tools cross-checks PCR
//! values and the sealed object's file format. swtpm and tpm2-tools missing
//! is a failure, not a skip (scripts/setup.sh installs both).

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{code, describe, hex, modseal, stderr, tpm2_tool};
use modseal::seal::{unseal_and_check, SealedInfo, UnsealFailure};
use modseal::tpm::esapi::EsapiTpm;
use modseal::tpm::{PcrBank, Tpm, TpmError};
use sha2::{Digest, Sha256};
use swtpm::Swtpm;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A test's TPM, scratch directory and a valid trust bundle in it.
struct Env {
    tpm: Swtpm,
    dir: tempfile::TempDir,
    bundle: PathBuf,
}

/// A trust bundle made by `modseal bundle` from a fresh self-signed P-256
/// certificate.
fn make_bundle(dir: &Path) -> PathBuf {
    let key = dir.join("anchor.key");
    let cert = dir.join("anchor.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "3650",
        ])
        .args([
            "-subj",
            "/CN=modseal TPM test anchor",
            "-addext",
            "keyUsage=digitalSignature",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed for the TPM tests");
    assert!(out.status.success(), "openssl req: {}", describe(&out));
    let bundle = dir.join("trust.bundle");
    let out = modseal([
        "bundle".as_ref(),
        "--anchor".as_ref(),
        cert.as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    bundle
}

impl Env {
    fn new() -> Env {
        let tpm = Swtpm::start();
        let dir = tempfile::tempdir().unwrap();
        let bundle = make_bundle(dir.path());
        Env { tpm, dir, bundle }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn enroll(&self, out: &Path, pcrs: &str, extra: &[&str]) -> Output {
        let mut args: Vec<std::ffi::OsString> = vec![
            "enroll".into(),
            "--tcti".into(),
            self.tpm.tcti().into(),
            "--trust".into(),
            self.bundle.clone().into(),
            "--pcrs".into(),
            pcrs.into(),
            "--out".into(),
            out.into(),
        ];
        args.extend(extra.iter().map(|a| a.into()));
        modseal(args)
    }

    fn enroll_ok(&self, out: &Path, pcrs: &str, extra: &[&str]) {
        let o = self.enroll(out, pcrs, extra);
        assert_eq!(
            code(&o),
            0,
            "enroll failed:\n{}\n{}",
            describe(&o),
            self.tpm.log()
        );
    }

    fn unseal_with(&self, tcti: &str, bundle: &Path, sealed: &Path) -> Output {
        modseal([
            "unseal".as_ref(),
            "--tcti".as_ref(),
            tcti.as_ref(),
            "--trust".as_ref(),
            bundle.as_os_str(),
            "--sealed".as_ref(),
            sealed.as_os_str(),
        ])
    }

    fn unseal(&self, sealed: &Path) -> Output {
        self.unseal_with(&self.tpm.tcti(), &self.bundle, sealed)
    }

    fn extend(&self, pcr: u8, data: &[u8]) {
        let d = hex(&Sha256::digest(data));
        tpm2_tool(
            "tpm2_pcrextend",
            &[&format!("{pcr}:sha256={d}")],
            &self.tpm.tools_tcti(),
        );
    }

    /// A PCR value as tpm2-tools reads it.
    fn tools_pcr(&self, bank: &str, pcr: u8) -> Vec<u8> {
        let out = self.path(&format!("pcr-{bank}-{pcr}.bin"));
        tpm2_tool(
            "tpm2_pcrread",
            &["-Q", "-o", out.to_str().unwrap(), &format!("{bank}:{pcr}")],
            &self.tpm.tools_tcti(),
        );
        std::fs::read(out).unwrap()
    }

    /// The name tpm2-tools reads for an object (`tpm2_readpublic -n`): a
    /// context file or a persistent handle.
    fn tools_name(&self, object: &str) -> String {
        let out = self.path("name.bin");
        tpm2_tool(
            "tpm2_readpublic",
            &["-Q", "-c", object, "-n", out.to_str().unwrap()],
            &self.tpm.tools_tcti(),
        );
        hex(&std::fs::read(out).unwrap())
    }

    fn esapi(&self) -> EsapiTpm {
        EsapiTpm::open(&self.tpm.tcti()).unwrap()
    }
}

fn assert_failure(o: &Output, name: &str) {
    assert_eq!(code(o), 1, "expected exit 1 ({name}):\n{}", describe(o));
    assert!(
        stderr(o).contains(&format!("unseal failed: {name}:")),
        "expected '{name}':\n{}",
        describe(o)
    );
}

fn sealed_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("sealed.json")).unwrap()).unwrap()
}

#[test]
fn seal_then_unseal() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "7,12", &[]);
    let o = env.unseal(&sealed);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "bundle matches sealed digest"
    );

    let j = sealed_json(&sealed);
    assert_eq!(j["version"], 1);
    assert_eq!(j["bank"], "sha256");
    assert_eq!(j["pcrs"], serde_json::json!([7, 12]));
    assert_eq!(j["srk"], "primary");
    assert_eq!(j["srk_template"], "ecc-p256");
    assert_eq!(
        j["bundle_sha256"],
        hex(&Sha256::digest(std::fs::read(&env.bundle).unwrap()))
    );
    // The values modseal read are the ones tpm2-tools reads.
    assert_eq!(j["pcr_values"]["7"], hex(&env.tools_pcr("sha256", 7)));
    assert_eq!(j["pcr_values"]["12"], hex(&env.tools_pcr("sha256", 12)));
    // Exactly the three files, nothing left beside the directory.
    let mut names: Vec<String> = std::fs::read_dir(&sealed)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["sealed.json", "sealed.priv", "sealed.pub"]);
    assert!(!std::fs::read_dir(env.dir.path()).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".sealed")));
}

#[test]
fn extended_pcr_is_refused_and_named() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "7,12", &[]);
    env.extend(12, b"something changed");
    let o = env.unseal(&sealed);
    assert_failure(&o, "pcr-changed");
    let e = stderr(&o);
    assert!(e.contains("PCRs changed since enrollment: 12 ("), "{e}");
    assert!(!e.contains("PCR 7 ("), "only PCR 12 differs: {e}");
}

#[test]
fn the_tpm_itself_refuses_a_moved_pcr() {
    // Bypasses modseal's off-TPM policy check: the TPM's PolicyPCR must refuse
    // (TPM_RC_POLICY_FAIL), and the library names the PCR afterwards.
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let e = modseal::seal::load_enrollment(&sealed).unwrap();
    env.extend(12, b"moved");
    let mut tpm = env.esapi();
    match tpm.unseal(&e.blob, PcrBank::Sha256, &[12]) {
        Err(TpmError::PolicyMismatch { rc }) => assert_eq!(rc & 0xbf, 0x9d, "rc {rc:#x}"),
        other => panic!("expected PolicyMismatch, got {other:?}"),
    }
}

#[test]
fn edited_bundle_is_a_digest_mismatch() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let edited = env.path("edited.bundle");
    let mut b = std::fs::read(&env.bundle).unwrap();
    b.extend_from_slice(b"# one more line\n");
    std::fs::write(&edited, b).unwrap();
    let o = env.unseal_with(&env.tpm.tcti(), &edited, &sealed);
    assert_failure(&o, "digest-mismatch");
}

#[test]
fn corrupt_private_part_is_a_bad_object() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let p = sealed.join("sealed.priv");
    let mut b = std::fs::read(&p).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x01;
    std::fs::write(&p, b).unwrap();
    let o = env.unseal(&sealed);
    assert_failure(&o, "bad-object");
    assert!(
        stderr(&o).contains("Load(sealed object)"),
        "{}",
        describe(&o)
    );
    assert!(stderr(&o).contains("TPM_RC_INTEGRITY"), "{}", describe(&o));
}

#[test]
fn corrupt_public_part_is_a_bad_object() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let p = sealed.join("sealed.pub");
    let mut b = std::fs::read(&p).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x01; // the unique field: parses, but the TPM's integrity check fails
    std::fs::write(&p, &b).unwrap();
    assert_failure(&env.unseal(&sealed), "bad-object");
    b.truncate(b.len() - 3); // no longer a TPM2B of its declared size
    std::fs::write(&p, &b).unwrap();
    assert_failure(&env.unseal(&sealed), "bad-object");
}

#[test]
fn enrollment_from_another_tpm_is_a_bad_object() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let other = Swtpm::start(); // fresh state: other seeds, other SRK
    let o = env.unseal_with(&other.tcti(), &env.bundle, &sealed);
    assert_failure(&o, "bad-object");
}

#[test]
fn same_tpm_state_after_a_restart_still_unseals() {
    // The state directory keeps the seeds: the recreated SRK is the same, the
    // PCRs are reset, so an enrollment to the reset values unseals again.
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = make_bundle(dir.path());
    let sealed = dir.path().join("sealed");
    {
        let tpm = Swtpm::start_with_state(state.path());
        let o = modseal([
            "enroll".as_ref(),
            "--tcti".as_ref(),
            tpm.tcti().as_ref(),
            "--trust".as_ref(),
            bundle.as_os_str(),
            "--pcrs".as_ref(),
            "12".as_ref(),
            "--out".as_ref(),
            sealed.as_os_str(),
        ]);
        assert_eq!(code(&o), 0, "{}", describe(&o));
    }
    let tpm = Swtpm::start_with_state(state.path());
    let o = modseal([
        "unseal".as_ref(),
        "--tcti".as_ref(),
        tpm.tcti().as_ref(),
        "--trust".as_ref(),
        bundle.as_os_str(),
        "--sealed".as_ref(),
        sealed.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", describe(&o));
}

#[test]
fn sealing_to_a_predicted_value_then_reaching_it() {
    let env = Env::new();
    let sealed = env.path("sealed");
    let now = env.tools_pcr("sha256", 12);
    let event = Sha256::digest(b"the predicted event");
    let mut h = Sha256::new();
    h.update(&now);
    h.update(event);
    let predicted = hex(&h.finalize());
    env.enroll_ok(
        &sealed,
        "7,12",
        &["--pcr-value", &format!("12={predicted}")],
    );
    assert_eq!(sealed_json(&sealed)["pcr_values"]["12"], predicted);
    // Not there yet.
    let o = env.unseal(&sealed);
    assert_failure(&o, "pcr-changed");
    assert!(
        stderr(&o).contains("changed since enrollment: 12 ("),
        "{}",
        describe(&o)
    );
    // Reach it.
    env.extend(12, b"the predicted event");
    assert_eq!(hex(&env.tools_pcr("sha256", 12)), predicted);
    let o = env.unseal(&sealed);
    assert_eq!(code(&o), 0, "{}", describe(&o));
}

#[test]
fn pcr_value_options_are_checked() {
    let env = Env::new();
    let sealed = env.path("sealed");
    for bad in [
        "12=abcd".to_owned(),
        format!("9={}", "00".repeat(32)),
        "12".into(),
        format!("24={}", "00".repeat(32)),
    ] {
        let o = env.enroll(&sealed, "12", &["--pcr-value", &bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", describe(&o));
    }
    assert!(!sealed.exists());
}

#[test]
fn no_tpm_is_named() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = env.unseal_with(
        &format!("swtpm:host=127.0.0.1,port={port}"),
        &env.bundle,
        &sealed,
    );
    assert_failure(&o, "no-tpm");
    let o = env.unseal_with("device:/nonexistent/tpmrm0", &env.bundle, &sealed);
    assert_failure(&o, "no-tpm");
    // And enroll says so too.
    let o = modseal([
        "enroll".as_ref(),
        "--tcti".as_ref(),
        format!("swtpm:host=127.0.0.1,port={port}").as_ref(),
        "--trust".as_ref(),
        env.bundle.as_os_str(),
        "--pcrs".as_ref(),
        "12".as_ref(),
        "--out".as_ref(),
        env.path("other").as_os_str(),
    ]);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(stderr(&o).contains("no-tpm"), "{}", describe(&o));
    assert!(!env.path("other").exists());
}

#[test]
fn the_environment_variable_selects_the_tcti() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let o = Command::new(common::modseal_bin())
        .arg("unseal")
        .arg("--trust")
        .arg(&env.bundle)
        .arg("--sealed")
        .arg(&sealed)
        .env("MODSEAL_TCTI", env.tpm.tcti())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", describe(&o));
}

#[test]
fn re_enroll_replaces_the_enrollment() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let first = std::fs::read(sealed.join("sealed.priv")).unwrap();
    let old_bundle = env.path("old.bundle");
    std::fs::copy(&env.bundle, &old_bundle).unwrap();
    // A new bundle (another anchor), enrolled over the old directory.
    let new_dir = tempfile::tempdir().unwrap();
    let new_bundle = make_bundle(new_dir.path());
    std::fs::copy(&new_bundle, &env.bundle).unwrap();
    env.enroll_ok(&sealed, "7,12", &[]);
    assert_ne!(std::fs::read(sealed.join("sealed.priv")).unwrap(), first);
    assert_eq!(sealed_json(&sealed)["pcrs"], serde_json::json!([7, 12]));
    assert_eq!(code(&env.unseal(&sealed)), 0);
    assert_failure(
        &env.unseal_with(&env.tpm.tcti(), &old_bundle, &sealed),
        "digest-mismatch",
    );
    let leftovers: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn failed_re_enroll_keeps_the_old_enrollment() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let before: Vec<Vec<u8>> = ["sealed.pub", "sealed.priv", "sealed.json"]
        .iter()
        .map(|f| std::fs::read(sealed.join(f)).unwrap())
        .collect();
    // Garbage as the bundle: refused with exit 2 before anything is written.
    let junk = env.path("junk");
    std::fs::write(&junk, b"not a bundle\n").unwrap();
    let o = modseal([
        "enroll".as_ref(),
        "--tcti".as_ref(),
        env.tpm.tcti().as_ref(),
        "--trust".as_ref(),
        junk.as_os_str(),
        "--pcrs".as_ref(),
        "12".as_ref(),
        "--out".as_ref(),
        sealed.as_os_str(),
    ]);
    assert_eq!(code(&o), 2, "{}", describe(&o));
    let after: Vec<Vec<u8>> = ["sealed.pub", "sealed.priv", "sealed.json"]
        .iter()
        .map(|f| std::fs::read(sealed.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(code(&env.unseal(&sealed)), 0);
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    let sealed = env.path("sealed");
    // Missing enrollment.
    assert_eq!(code(&env.unseal(&sealed)), 2);
    env.enroll_ok(&sealed, "12", &[]);
    // Missing bundle.
    assert_eq!(
        code(&env.unseal_with(&env.tpm.tcti(), &env.path("nope"), &sealed)),
        2
    );
    // Broken sealed.json.
    std::fs::write(sealed.join("sealed.json"), b"{\"version\":1}").unwrap();
    let o = env.unseal(&sealed);
    assert_eq!(code(&o), 2, "{}", describe(&o));
    // Unknown TCTI kind.
    assert_eq!(
        code(&env.unseal_with("carrier-pigeon:x", &env.bundle, &sealed)),
        2
    );
    // Bad PCR list, bank.
    assert_eq!(code(&env.enroll(&env.path("s2"), "25", &[])), 2);
    assert_eq!(
        code(&env.enroll(&env.path("s2"), "12", &["--bank", "md5"])),
        2
    );
    // An SRK template modseal does not make.
    let o = env.enroll(&env.path("s2"), "12", &["--srk", "ecc384"]);
    assert_eq!(code(&o), 2, "{}", describe(&o));
    assert!(stderr(&o).contains("--srk"), "{}", describe(&o));
}

#[test]
fn pcr_reads_match_tpm2_pcrread() {
    let env = Env::new();
    env.extend(12, b"cross-check");
    env.extend(16, b"debug pcr");
    let mut tpm = env.esapi();
    for bank in [PcrBank::Sha1, PcrBank::Sha256, PcrBank::Sha384] {
        let pcrs: Vec<u8> = (0..24).collect();
        let ours = tpm.pcr_read(bank, &pcrs).unwrap();
        for &p in &[0u8, 12, 16, 23] {
            assert_eq!(
                ours[usize::from(p)],
                env.tools_pcr(bank.name(), p),
                "{bank} PCR {p}"
            );
        }
    }
    // Our extend, their read: the TPM's arithmetic is ours.
    let before = tpm.pcr_read(PcrBank::Sha256, &[12]).unwrap().remove(0);
    let d = PcrBank::Sha256.hash(b"modseal extend");
    let d1 = PcrBank::Sha1.hash(b"modseal extend");
    tpm.pcr_extend(12, &[(PcrBank::Sha256, d.clone()), (PcrBank::Sha1, d1)])
        .unwrap();
    assert_eq!(
        env.tools_pcr("sha256", 12),
        PcrBank::Sha256.extend(&before, &d)
    );
    let banks = tpm.active_banks().unwrap();
    assert_eq!(
        banks,
        vec![
            PcrBank::Sha1,
            PcrBank::Sha256,
            PcrBank::Sha384,
            PcrBank::Sha512
        ]
    );
}

#[test]
fn other_banks_seal_and_unseal() {
    // The policy hash is SHA-256 whatever the bank: sealing to the SHA-1 and
    // SHA-384 banks checks the off-TPM digest against the TPM's trial.
    let env = Env::new();
    env.extend(12, b"x");
    for bank in ["sha1", "sha384"] {
        let sealed = env.path(&format!("sealed-{bank}"));
        env.enroll_ok(&sealed, "0,12", &["--bank", bank]);
        assert_eq!(sealed_json(&sealed)["bank"], bank);
        let o = env.unseal(&sealed);
        assert_eq!(code(&o), 0, "{bank}: {}", describe(&o));
    }
    env.extend(12, b"y"); // the SHA-256 bank only
    assert_eq!(code(&env.unseal(&env.path("sealed-sha1"))), 0);
    let d = hex(&PcrBank::Sha1.hash(b"y"));
    tpm2_tool(
        "tpm2_pcrextend",
        &[&format!("12:sha1={d}")],
        &env.tpm.tools_tcti(),
    );
    let o = env.unseal(&env.path("sealed-sha1"));
    assert_failure(&o, "pcr-changed");
    assert!(stderr(&o).contains("PCR 12 (sha1)"), "{}", describe(&o));
}

/// The SRK templates modseal makes, as `sealed.json`'s `srk_template` and
/// `tpm2_createprimary -G` name them.
const TEMPLATES: [(&str, &str); 2] = [
    ("ecc-p256", "ecc256:null:aes128cfb"),
    ("rsa-2048", "rsa2048:null:aes128cfb"),
];

/// The standard SRK template's attributes, as tpm2-tools names them.
const SRK_ATTRIBUTES: &str =
    "restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda";

/// An enrollment as modseal wrote it before it recorded the SRK's template:
/// sealed with the RSA-2048 primary, no `srk_template` in `sealed.json`.
fn enroll_the_old_way(env: &Env, sealed: &Path, pcrs: &str) {
    env.enroll_ok(sealed, pcrs, &["--srk", "rsa-2048"]);
    let text = std::fs::read_to_string(sealed.join("sealed.json")).unwrap();
    let old = text.replace("\n  \"srk_template\": \"rsa-2048\",", "");
    assert!(!old.contains("srk_template"), "{old}");
    std::fs::write(sealed.join("sealed.json"), old).unwrap();
}

/// tpm2_createprimary with the standard SRK template `alg` (`-G`) into the
/// context file `ctx`.
fn tools_primary(env: &Env, alg: &str, ctx: &Path) {
    tpm2_tool(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "o",
            "-G",
            alg,
            "-a",
            SRK_ATTRIBUTES,
            "-c",
            ctx.to_str().unwrap(),
        ],
        &env.tpm.tools_tcti(),
    );
}

/// tpm2_createprimary (`alg`) + tpm2_load + tpm2_unseal of an enrollment:
/// the files are tpm2-tools' TPM2B format, the SRK pinned is the standard
/// primary tpm2-tools makes, and the sealed value is the bundle's digest.
fn tools_unseal(env: &Env, sealed: &Path, alg: &str, pcrs: &str) {
    let t = env.tpm.tools_tcti();
    let prim = env.path("prim.ctx");
    let obj = env.path("obj.ctx");
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    tools_primary(env, alg, &prim);
    assert_eq!(sealed_json(sealed)["srk_name"], env.tools_name(&p(&prim)));
    tpm2_tool("tpm2_flushcontext", &["-t"], &t);
    tpm2_tool(
        "tpm2_load",
        &[
            "-Q",
            "-C",
            &p(&prim),
            "-u",
            &p(&sealed.join("sealed.pub")),
            "-r",
            &p(&sealed.join("sealed.priv")),
            "-c",
            &p(&obj),
        ],
        &t,
    );
    tpm2_tool("tpm2_flushcontext", &["-t"], &t);
    let out = tpm2_tool(
        "tpm2_unseal",
        &["-c", &p(&obj), "-p", &format!("pcr:sha256:{pcrs}")],
        &t,
    );
    assert_eq!(
        out.stdout,
        Sha256::digest(std::fs::read(&env.bundle).unwrap()).to_vec()
    );
}

#[test]
fn tpm2_tools_unseals_what_modseal_sealed() {
    // A new enrollment: the ECC P-256 primary.
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "7,12", &[]);
    assert_eq!(sealed_json(&sealed)["srk_template"], "ecc-p256");
    tools_unseal(&env, &sealed, TEMPLATES[0].1, "7,12");
}

#[test]
fn tpm2_tools_unseals_an_rsa_enrollment() {
    // `enroll --srk rsa-2048`, with its template recorded and without (as
    // enrolled before templates were recorded): the RSA-2048 primary.
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "7,12", &["--srk", "rsa-2048"]);
    assert_eq!(sealed_json(&sealed)["srk_template"], "rsa-2048");
    tools_unseal(&env, &sealed, TEMPLATES[1].1, "7,12");
    let old = env.path("old");
    enroll_the_old_way(&env, &old, "7,12");
    tools_unseal(&env, &old, TEMPLATES[1].1, "7,12");
}

#[test]
fn each_template_unseals_under_its_own_primary_only() {
    let env = Env::new();
    let ecc = env.path("ecc");
    let old = env.path("old");
    env.enroll_ok(&ecc, "12", &[]);
    enroll_the_old_way(&env, &old, "12");
    assert_eq!(code(&env.unseal(&ecc)), 0);
    let o = env.unseal(&old);
    assert_eq!(code(&o), 0, "{}", describe(&o));
    // The two primaries are two keys with two names.
    let (ecc_name, rsa_name) = (
        sealed_json(&ecc)["srk_name"].clone(),
        sealed_json(&old)["srk_name"].clone(),
    );
    assert_ne!(ecc_name, rsa_name);
    for (template, alg) in TEMPLATES {
        let ctx = env.path(&format!("{template}.ctx"));
        tools_primary(&env, alg, &ctx);
        let name = env.tools_name(ctx.to_str().unwrap());
        tpm2_tool("tpm2_flushcontext", &["-t"], &env.tpm.tools_tcti());
        let pinned = if template == "ecc-p256" {
            &ecc_name
        } else {
            &rsa_name
        };
        assert_eq!(*pinned, name, "{template}");
    }
    // An RSA enrollment claiming the ECC template recreates the ECC primary,
    // whose name is not the pinned one: refused before any session.
    let mut j = sealed_json(&old);
    j["srk_template"] = "ecc-p256".into();
    std::fs::write(old.join("sealed.json"), j.to_string()).unwrap();
    let o = env.unseal(&old);
    assert_failure(&o, "bad-object");
    assert!(
        stderr(&o).contains(&format!(
            "the storage root key (primary) has name {}, but sealed.json pins {}",
            ecc_name.as_str().unwrap(),
            rsa_name.as_str().unwrap()
        )),
        "{}",
        describe(&o)
    );
}

#[test]
fn persistent_srk_is_used_when_present() {
    // RSA (as tpm2-tools' examples persist it) and ECC (as systemd does).
    for (_, alg) in TEMPLATES {
        let env = Env::new();
        let t = env.tpm.tools_tcti();
        let prim = env.path("srk.ctx");
        tools_primary(&env, alg, &prim);
        tpm2_tool(
            "tpm2_evictcontrol",
            &["-Q", "-C", "o", "-c", prim.to_str().unwrap(), "0x81000001"],
            &t,
        );
        tpm2_tool("tpm2_flushcontext", &["-t"], &t);
        let sealed = env.path("sealed");
        // Whatever template is asked for: the persistent SRK is used.
        env.enroll_ok(&sealed, "12", &["--srk", "rsa-2048"]);
        let j = sealed_json(&sealed);
        assert_eq!(j["srk"], "persistent:0x81000001", "{alg}");
        assert!(j.get("srk_template").is_none(), "{alg}: {j}");
        assert_eq!(j["srk_name"], env.tools_name("0x81000001"), "{alg}");
        assert_eq!(code(&env.unseal(&sealed)), 0, "{alg}");
        // ReadPublic instead of CreatePrimary, no FlushContext of the SRK.
        let bundle = std::fs::read(&env.bundle).unwrap();
        let mut tpm = env.esapi();
        unseal_and_check(&mut tpm, &bundle, &sealed).unwrap();
        assert_eq!(tpm.commands(), 8, "{alg}");
        drop(tpm);
        // Without that SRK, the object cannot be loaded.
        tpm2_tool(
            "tpm2_evictcontrol",
            &["-Q", "-C", "o", "-c", "0x81000001"],
            &t,
        );
        assert_failure(&env.unseal(&sealed), "bad-object");
    }
}

/// Replaces the SRK name `sealed.json` pins.
fn pin_srk_name(sealed: &Path, name: &str) {
    let mut j = sealed_json(sealed);
    j["srk_name"] = name.into();
    std::fs::write(sealed.join("sealed.json"), j.to_string()).unwrap();
}

#[test]
fn another_srk_name_is_refused_before_any_session() {
    // What a TPM (or something on its bus) answering CreatePrimary with
    // another public key looks like from modseal's side: the name of the
    // public area returned is not the pinned one.
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "7,12", &[]);
    let pinned = sealed_json(&sealed)["srk_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = format!("000b{}", "5a".repeat(32));
    pin_srk_name(&sealed, &other);
    let o = env.unseal(&sealed);
    assert_failure(&o, "bad-object");
    assert!(
        stderr(&o).contains(&format!(
            "the storage root key (primary) has name {pinned}, but sealed.json pins {other}"
        )),
        "{}",
        describe(&o)
    );
    // Refused right after CreatePrimary: no Load, no session, nothing left.
    let bundle = std::fs::read(&env.bundle).unwrap();
    let mut tpm = env.esapi();
    let before = tpm.commands();
    let f = unseal_and_check(&mut tpm, &bundle, &sealed).unwrap_err();
    assert!(
        matches!(f, UnsealFailure::SrkMismatch { ref found, .. } if *found == pinned),
        "{f}"
    );
    // PCR_Read, CreatePrimary, FlushContext(SRK).
    assert_eq!(tpm.commands() - before, 3);
    drop(tpm);
    for cap in ["handles-transient", "handles-loaded-session"] {
        let out = tpm2_tool("tpm2_getcap", &[cap], &env.tpm.tools_tcti());
        assert!(
            String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{cap}"
        );
    }
    pin_srk_name(&sealed, &pinned);
    assert_eq!(code(&env.unseal(&sealed)), 0);
}

#[test]
fn another_key_at_the_persistent_srk_handle_is_refused() {
    let env = Env::new();
    let t = env.tpm.tools_tcti();
    let persist = |alg: &str| {
        let ctx = env.path("key.ctx");
        tpm2_tool(
            "tpm2_createprimary",
            &[
                "-Q",
                "-C",
                "o",
                "-G",
                alg,
                "-a",
                SRK_ATTRIBUTES,
                "-c",
                ctx.to_str().unwrap(),
            ],
            &t,
        );
        tpm2_tool(
            "tpm2_evictcontrol",
            &["-Q", "-C", "o", "-c", ctx.to_str().unwrap(), "0x81000001"],
            &t,
        );
        tpm2_tool("tpm2_flushcontext", &["-t"], &t);
    };
    persist("rsa2048:null:aes128cfb");
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    tpm2_tool(
        "tpm2_evictcontrol",
        &["-Q", "-C", "o", "-c", "0x81000001"],
        &t,
    );
    // Another storage key at the same handle: a salt key the enrollment
    // never saw, refused by name before the object is even loaded under it.
    persist("ecc256:null:aes128cfb");
    let o = env.unseal(&sealed);
    assert_failure(&o, "bad-object");
    assert!(
        stderr(&o).contains("the storage root key (persistent:0x81000001) has name 000b"),
        "{}",
        describe(&o)
    );
    assert!(
        stderr(&o).contains("but sealed.json pins"),
        "{}",
        describe(&o)
    );
}

#[test]
fn an_enrollment_without_an_srk_name_is_refused() {
    // sealed.json as modseal wrote it before the SRK's name was pinned.
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "12", &[]);
    let mut j = sealed_json(&sealed);
    j.as_object_mut().unwrap().remove("srk_name");
    std::fs::write(sealed.join("sealed.json"), j.to_string()).unwrap();
    let o = env.unseal(&sealed);
    assert_eq!(code(&o), 2, "{}", describe(&o));
    assert!(
        stderr(&o).contains("--sealed: invalid: ") && stderr(&o).contains("no srk_name: "),
        "{}",
        describe(&o)
    );
    assert!(
        stderr(&o).contains("re-run 'modseal enroll'"),
        "{}",
        describe(&o)
    );
}

#[test]
fn unseal_sends_a_fixed_number_of_commands_and_leaves_nothing_loaded() {
    let env = Env::new();
    let ecc = env.path("ecc");
    let old = env.path("old");
    env.enroll_ok(&ecc, "7,12", &[]);
    enroll_the_old_way(&env, &old, "7,12");
    let bundle = std::fs::read(&env.bundle).unwrap();
    let mut tpm = env.esapi();
    for sealed in [&ecc, &old] {
        let mut counts = Vec::new();
        for _ in 0..3 {
            let before = tpm.commands();
            unseal_and_check(&mut tpm, &bundle, sealed).unwrap();
            counts.push(tpm.commands() - before);
        }
        assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
        // PCR_Read, CreatePrimary, Load, StartAuthSession, PolicyPCR, Unseal, 3 × FlushContext,
        // whichever the template.
        assert_eq!(counts[0], 9, "{}", sealed.display());
    }
    // A refused unseal costs one PCR read and leaves nothing behind either.
    env.extend(7, b"z");
    for sealed in [&ecc, &old] {
        let before = tpm.commands();
        let f = unseal_and_check(&mut tpm, &bundle, sealed).unwrap_err();
        assert!(
            matches!(f, UnsealFailure::PcrChanged { ref pcrs, .. } if pcrs == &[7]),
            "{f}"
        );
        assert_eq!(tpm.commands() - before, 1);
    }
    drop(tpm);
    let t = env.tpm.tools_tcti();
    for cap in ["handles-transient", "handles-loaded-session"] {
        let out = tpm2_tool("tpm2_getcap", &[cap], &t);
        assert!(
            String::from_utf8_lossy(&out.stdout).trim().is_empty(),
            "{cap}: {}",
            describe(&out)
        );
    }
}

#[test]
fn sealed_json_written_by_enroll_parses_back() {
    let env = Env::new();
    let sealed = env.path("sealed");
    env.enroll_ok(&sealed, "0-3,12", &[]);
    let info = SealedInfo::from_json(&std::fs::read(sealed.join("sealed.json")).unwrap()).unwrap();
    assert_eq!(info.pcrs, vec![0, 1, 2, 3, 12]);
    assert_eq!(info.bank, PcrBank::Sha256);
    assert_eq!(
        info.policy_digest,
        info.bank.policy_pcr_digest(&info.pcrs, &info.pcr_values)
    );
    assert_eq!(
        info.pcr_values[4],
        unhex(sealed_json(&sealed)["pcr_values"]["12"].as_str().unwrap())
    );
}
