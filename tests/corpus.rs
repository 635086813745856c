//! The fixture corpus of scripts/make-fixtures.sh, run through the modseal
//! binary, and compared with `openssl cms -verify`.
//!
//! Fixtures: `MODSEAL_FIXTURES` (a directory made by make-fixtures.sh) or, if
//! unset, made into `target/fixtures` on first use. Binary: `MODSEAL_BIN` or
//! Cargo's `modseal`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::*;

/// Cases where modseal and `openssl cms -verify` deliberately disagree: OpenSSL
/// accepts them, modseal does not. Each with its reason.
const OPENSSL_EXCEPTIONS: &[(&str, &str)] = &[
    // Algorithm policy (DESIGN.md: RSA 2048–4096, P-256/P-384, SHA-2 256/384/512, SHA-3).
    (
        "rsa2048-sha1",
        "SHA-1 is rejected by policy; OpenSSL still verifies SHA-1 signatures",
    ),
    (
        "ecp256-sha1",
        "SHA-1 is rejected by policy; OpenSSL still verifies SHA-1 signatures",
    ),
    (
        "rsa2048-sha224",
        "SHA-224 is not among DESIGN.md's hash algorithms; OpenSSL accepts it",
    ),
    (
        "rsa1024-sha256",
        "RSA keys below 2048 bits are rejected; OpenSSL's default level accepts RSA-1024",
    ),
    // Key usage and extended key usage (checked with -purpose any in OpenSSL).
    (
        "ku-keyenc",
        "keyUsage without digitalSignature: modseal refuses the signer",
    ),
    (
        "eku-server",
        "extendedKeyUsage without codeSigning: modseal refuses the signer",
    ),
    // Trailer rules of kernel/module_signature.c (mod_check_sig), unknown to OpenSSL,
    // which is given the PKCS#7 blob that sig_len delimits.
    ("trailer-id-type-0", "id_type must be 2 (PKEY_ID_PKCS7)"),
    ("trailer-id-type-1", "id_type must be 2 (PKEY_ID_PKCS7)"),
    ("trailer-algo", "algo must be zero for PKCS#7 signatures"),
    ("trailer-hash", "hash must be zero for PKCS#7 signatures"),
    (
        "trailer-signer-len",
        "signer_len must be zero for PKCS#7 signatures",
    ),
    (
        "trailer-key-id-len",
        "key_id_len must be zero for PKCS#7 signatures",
    ),
    ("trailer-pad0", "__pad must be zero"),
    ("trailer-pad2", "__pad must be zero"),
    // The trust bundle's policy, which OpenSSL does not know.
    (
        "bundle-deny-key-id",
        "the bundle denies the signer's subjectKeyIdentifier",
    ),
    (
        "bundle-deny-serial",
        "the bundle denies the signer certificate's serial",
    ),
    (
        "bundle-deny-module",
        "the bundle denies the module file's SHA-256",
    ),
    (
        "bundle-ca-deny-leaf",
        "the bundle denies the CA-issued signer's subjectKeyIdentifier",
    ),
    (
        "bundle-deny-module-recompressed",
        "the bundle denies the decompressed module's SHA-256",
    ),
    (
        "bundle-deny-payload-junk",
        "the bundle denies the signed content's SHA-256",
    ),
    (
        "bundle-deny-key-id-serial",
        "the bundle denies the serial an issuer+serial signature names (verify's key_id)",
    ),
    // The kernel's pkcs7_verify() refuses signed attributes in a module
    // signature ("has authattrs"); OpenSSL verifies them.
    (
        "attrs-rsa2048-sha256",
        "signed attributes: the kernel refuses them for module signatures",
    ),
    (
        "attrs-ecp384-sha384",
        "signed attributes: the kernel refuses them for module signatures",
    ),
    // PKCS#7 rules of the kernel's parser that OpenSSL does not apply.
    (
        "pkcs7-sd-v3-si-v1",
        "pkcs7_note_signerinfo_version(): a v1 SignerInfo needs a v1 SignedData",
    ),
    (
        "pkcs7-sha256withrsa-oid",
        "pkcs7_sig_note_pkey_algo(): only rsaEncryption names RSA in a SignerInfo",
    ),
];
// Chains need no exception: the OpenSSL side checks them with
// `openssl verify -partial_chain -untrusted CERTS`, which matches modseal's
// rules (an anchor may be a leaf or an intermediate; --cert certificates are
// trusted only through a chain to an anchor).

fn exception(name: &str) -> Option<&'static str> {
    OPENSSL_EXCEPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
}

fn verify_args(case: &Case, dir: &Path, json: bool, target: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["verify".into()];
    if json {
        a.push("--json".into());
    }
    a.extend(case.trust_args(dir));
    a.push(target.as_os_str().to_owned());
    a
}

/// Runs every case with `verify --json` and checks exit code, verdict and fields.
#[test]
fn every_case_json() {
    let dir = fixtures();
    let mut problems = Vec::new();
    for case in cases() {
        let module = case.module_path(dir);
        let out = modseal(verify_args(case, dir, true, &module));
        let want_code = if case.expect_ok() { 0 } else { 1 };
        let got_code = code(&out);
        if got_code != want_code {
            problems.push(format!(
                "{}: exit {got_code}, want {want_code}\n{}",
                case.name,
                describe(&out)
            ));
            if got_code == 2 {
                continue;
            }
        }
        let r = match std::panic::catch_unwind(|| verify_report(&out)) {
            Ok(r) => r,
            Err(_) => {
                problems.push(format!("{}: bad JSON\n{}", case.name, describe(&out)));
                continue;
            }
        };
        if r.modules.len() != 1 {
            problems.push(format!(
                "{}: {} module entries, want 1\n{}",
                case.name,
                r.modules.len(),
                describe(&out)
            ));
            continue;
        }
        let m = &r.modules[0];
        if m.verdict != case.verdict {
            problems.push(format!(
                "{}: verdict {} ({}), want {} [{}]",
                case.name, m.verdict, m.reason, case.verdict, case.note
            ));
        }
        let (want_v, want_f) = if case.expect_ok() { (1, 0) } else { (0, 1) };
        if (r.verified, r.failed) != (want_v, want_f) {
            problems.push(format!(
                "{}: verified {} failed {}, want {want_v} {want_f}",
                case.name, r.verified, r.failed
            ));
        }
        if !Path::new(&m.path).ends_with(Path::new(&case.module).file_name().expect("file name")) {
            problems.push(format!(
                "{}: path {:?} does not name {}",
                case.name, m.path, case.module
            ));
        }
        if m.verdict != "ok" && m.reason.trim().is_empty() {
            problems.push(format!(
                "{}: verdict {} without a reason",
                case.name, m.verdict
            ));
        }
        if case.expect_ok() && m.verdict == "ok" {
            let want_sha = sha256_file(&module);
            if m.sha256.as_deref() != Some(want_sha.as_str()) {
                problems.push(format!(
                    "{}: sha256 {:?}, want {want_sha} (the file as stored)",
                    case.name, m.sha256
                ));
            }
            if m.signer.is_none() || m.key_id.is_none() || m.hash_algo.is_none() {
                problems.push(format!(
                    "{}: ok without signer/key_id/hash_algo: {m:?}",
                    case.name
                ));
            }
            if let Some(h) = expected_hash(&case.name) {
                if m.hash_algo.as_deref().map(norm_algo) != Some(norm_algo(h)) {
                    problems.push(format!(
                        "{}: hash_algo {:?}, want {h}",
                        case.name, m.hash_algo
                    ));
                }
            }
            // Self-signed single-anchor cases: the key id names that certificate.
            if case.certs.is_empty() && case.trust.len() == 1 && case.trust[0].starts_with("keys/")
            {
                let (skid, serial) = skid_and_serial(&dir.join(&case.trust[0]));
                let got = m.key_id.as_deref().map(norm_hex).unwrap_or_default();
                if Some(&got) != skid.as_ref() && got != serial {
                    problems.push(format!(
                        "{}: key_id {:?} is neither the signer's SKID {skid:?} nor its serial {serial}",
                        case.name, m.key_id
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The hash algorithm a case name promises (rsa2048-sha3-256 → sha3-256).
fn expected_hash(name: &str) -> Option<&'static str> {
    [
        "sha3-256", "sha3-384", "sha3-512", "sha256", "sha384", "sha512",
    ]
    .into_iter()
    .find(|h| name.ends_with(h))
}

/// Runs every case in text mode: `PATH: VERDICT: reason` for failures, then
/// `N verified, M failed`.
#[test]
fn every_case_text() {
    let dir = fixtures();
    let mut problems = Vec::new();
    for case in cases() {
        let module = case.module_path(dir);
        let out = modseal(verify_args(case, dir, false, &module));
        let want_code = if case.expect_ok() { 0 } else { 1 };
        let got_code = code(&out);
        if got_code != want_code {
            problems.push(format!(
                "{}: exit {got_code}, want {want_code}\n{}",
                case.name,
                describe(&out)
            ));
            continue;
        }
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        let summary = if case.expect_ok() {
            "1 verified, 0 failed"
        } else {
            "0 verified, 1 failed"
        };
        if lines.last().copied() != Some(summary) {
            problems.push(format!(
                "{}: last line {:?}, want {summary:?}\n{}",
                case.name,
                lines.last(),
                describe(&out)
            ));
        }
        let prefix = format!("{}: {}: ", module.display(), case.verdict);
        let failure_lines: Vec<&&str> = lines.iter().filter(|l| **l != summary).collect();
        if case.expect_ok() {
            if !failure_lines.is_empty() {
                problems.push(format!("{}: ok but printed {failure_lines:?}", case.name));
            }
        } else if failure_lines.len() != 1 || !failure_lines[0].starts_with(&prefix) {
            problems.push(format!(
                "{}: want one line starting {prefix:?}, got {failure_lines:?}",
                case.name
            ));
        } else if failure_lines[0].len() == prefix.len() {
            problems.push(format!(
                "{}: empty reason in {:?}",
                case.name, failure_lines[0]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// For each trust set of the table: its modules copied into one directory,
/// verified in one directory run; counts and per-module verdicts must match.
#[test]
fn directory_run_per_trust_set() {
    let dir = fixtures();
    let mut problems = Vec::new();
    for ((trust, certs), group) in by_trust_set(cases()) {
        let tmp = tempfile::tempdir().expect("temp dir");
        let sub = tmp.path().join("tree").join("sub");
        std::fs::create_dir_all(&sub).expect("mkdir");
        // file name → expected verdict; every other module in the tree lands in sub/.
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for (i, c) in group.iter().enumerate() {
            let name = Path::new(&c.module)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            if let Some(v) = expected.get(&name) {
                assert_eq!(
                    v, &c.verdict,
                    "{name} listed twice with different verdicts for one trust set"
                );
                continue;
            }
            let target = if i % 2 == 0 {
                tmp.path().join("tree").join(&name)
            } else {
                sub.join(&name)
            };
            std::fs::copy(c.module_path(dir), &target).expect("copy module");
            expected.insert(name, c.verdict.clone());
        }
        let ok = expected.values().filter(|v| *v == "ok").count() as u64;
        let bad = expected.len() as u64 - ok;
        let mut args: Vec<OsString> = vec!["verify".into(), "--json".into()];
        args.extend(group[0].trust_args(dir));
        args.push(tmp.path().join("tree").into_os_string());
        let out = modseal(&args);
        let label = format!("trust {trust:?} certs {certs:?}");
        let want_code = if bad == 0 { 0 } else { 1 };
        if code(&out) != want_code {
            problems.push(format!(
                "{label}: exit {}, want {want_code}\n{}",
                code(&out),
                describe(&out)
            ));
            continue;
        }
        let r = verify_report(&out);
        if (r.verified, r.failed) != (ok, bad) {
            problems.push(format!(
                "{label}: verified {} failed {}, want {ok} {bad}",
                r.verified, r.failed
            ));
        }
        if r.modules.len() != expected.len() {
            problems.push(format!(
                "{label}: {} entries, want {}",
                r.modules.len(),
                expected.len()
            ));
        }
        for m in &r.modules {
            let name = Path::new(&m.path)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            match expected.get(&name) {
                Some(v) if *v == m.verdict => {}
                Some(v) => problems.push(format!(
                    "{label}: {name}: {} ({}), want {v}",
                    m.verdict, m.reason
                )),
                None => problems.push(format!("{label}: unexpected entry {}", m.path)),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The whole corpus directory with one anchor (rsa2048): every module file is
/// reported, and the modules whose row names exactly that trust set get their
/// verdicts. JSON and text agree on the counts.
#[test]
fn whole_corpus_directory() {
    let dir = fixtures();
    let anchor = "keys/rsa2048.crt";
    let modules_dir = dir.join("modules");
    let files = module_files(&modules_dir);
    let out = modseal([
        OsString::from("verify"),
        "--json".into(),
        "--trust".into(),
        dir.join(anchor).into_os_string(),
        modules_dir.clone().into_os_string(),
    ]);
    assert_eq!(
        code(&out),
        1,
        "the corpus has failing modules\n{}",
        describe(&out)
    );
    let r = verify_report(&out);
    assert_eq!(
        r.modules.len(),
        files.len(),
        "one entry per *.ko* file under {}",
        modules_dir.display()
    );
    assert_eq!(r.verified + r.failed, files.len() as u64);
    let got: BTreeMap<String, String> = r
        .modules
        .iter()
        .map(|m| {
            (
                Path::new(&m.path)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .to_string(),
                m.verdict.clone(),
            )
        })
        .collect();
    let mut known_ok = BTreeSet::new();
    for c in cases()
        .iter()
        .filter(|c| c.trust == [anchor] && c.certs.is_empty())
    {
        let name = Path::new(&c.module)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert_eq!(
            got.get(&name),
            Some(&c.verdict),
            "{} in the whole-directory run",
            c.name
        );
        if c.expect_ok() {
            known_ok.insert(name);
        }
    }
    assert!(known_ok.len() >= 10, "few rsa2048 ok cases: {known_ok:?}");
    assert!(
        r.verified >= known_ok.len() as u64,
        "verified {} < {}",
        r.verified,
        known_ok.len()
    );
    // Modules signed by other keys never pass under this anchor alone.
    for c in cases()
        .iter()
        .filter(|c| c.expect_ok() && c.trust.iter().all(|t| t.contains("ecp")))
    {
        let name = Path::new(&c.module)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert_ne!(
            got.get(&name).map(String::as_str),
            Some("ok"),
            "{} passed under rsa2048 alone",
            c.name
        );
    }
    // Text mode: the same counts on the last line, one line per failure.
    let text = modseal([
        OsString::from("verify"),
        "--trust".into(),
        dir.join(anchor).into_os_string(),
        modules_dir.into_os_string(),
    ]);
    assert_eq!(code(&text), 1, "{}", describe(&text));
    let stdout = String::from_utf8_lossy(&text.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.last().copied(),
        Some(format!("{} verified, {} failed", r.verified, r.failed).as_str())
    );
    assert_eq!(
        lines.len() as u64,
        r.failed + 1,
        "one line per failed module plus the summary"
    );
}

/// A trust file that does not exist: configuration error.
#[test]
fn missing_trust_file_is_exit_2() {
    let dir = fixtures();
    let out = modseal([
        OsString::from("verify"),
        "--trust".into(),
        dir.join("keys/does-not-exist.crt").into_os_string(),
        dir.join("modules/rsa2048-sha256.ko").into_os_string(),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(!out.stderr.is_empty(), "exit 2 without a message on stderr");
}

/// No --trust at all: usage error.
#[test]
fn no_trust_is_exit_2() {
    let dir = fixtures();
    let out = modseal([
        OsString::from("verify"),
        dir.join("modules/rsa2048-sha256.ko").into_os_string(),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
}

/// Trust files that cannot be parsed: configuration error, never "0 verified".
#[test]
fn unparsable_trust_files_are_exit_2() {
    let dir = fixtures();
    let tmp = tempfile::tempdir().expect("temp dir");
    let good_pem = std::fs::read_to_string(dir.join("keys/rsa2048.crt")).expect("read cert");
    let broken_b64 = {
        let mut lines: Vec<String> = good_pem.lines().map(str::to_string).collect();
        lines[3] = "!!!! this is not base64 !!!!".to_string();
        lines.join("\n") + "\n"
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage.bin",
            (0u8..=255)
                .cycle()
                .take(3000)
                .map(|b| b.wrapping_mul(37))
                .collect(),
        ),
        (
            "text.txt",
            b"just some text, no certificate here\n".to_vec(),
        ),
        ("empty.pem", Vec::new()),
        ("broken-base64.pem", broken_b64.into_bytes()),
        ("truncated.der", {
            let der = std::fs::read(dir.join("keys/rsa2048.der")).expect("read der");
            der[..der.len() / 2].to_vec()
        }),
        (
            "wrong-version.bundle",
            format!("modseal-trust-bundle v9\n{good_pem}").into_bytes(),
        ),
        (
            "bad-hex.bundle",
            format!("modseal-trust-bundle v1\ndeny-key-id xyz\n{good_pem}").into_bytes(),
        ),
        (
            "unknown-directive.bundle",
            format!("modseal-trust-bundle v1\nallow-everything yes\n{good_pem}").into_bytes(),
        ),
        (
            "no-anchor.bundle",
            b"modseal-trust-bundle v1\ndeny-serial 01\n".to_vec(),
        ),
    ];
    let mut problems = Vec::new();
    for (name, bytes) in cases {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).expect("write trust file");
        let out = modseal([
            OsString::from("verify"),
            "--trust".into(),
            p.into_os_string(),
            dir.join("modules/rsa2048-sha256.ko").into_os_string(),
        ]);
        if code(&out) != 2 {
            problems.push(format!(
                "{name}: exit {}, want 2\n{}",
                code(&out),
                describe(&out)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A well-formed bundle is accepted as --trust (the same anchor as a bare PEM).
#[test]
fn bundle_and_pem_agree() {
    let dir = fixtures();
    let module = dir.join("modules/bundle.ko");
    for trust in ["keys/rsa2048.crt", "trust/plain.bundle", "keys/rsa2048.der"] {
        let out = modseal([
            OsString::from("verify"),
            "--trust".into(),
            dir.join(trust).into_os_string(),
            module.clone().into_os_string(),
        ]);
        assert_eq!(code(&out), 0, "{trust}: {}", describe(&out));
    }
}

/// `inspect` shows the signer, the key id and the hash algorithm.
#[test]
fn inspect_shows_signer_key_id_and_hash() {
    let dir = fixtures();
    for (module, cert, cn, hash) in [
        (
            "modules/rsa4096-sha512.ko",
            "keys/rsa4096.crt",
            Some("modseal fixture rsa4096"),
            "sha512",
        ),
        (
            "modules/ecp384-sha384.ko",
            "keys/ecp384.crt",
            Some("modseal fixture ecp384"),
            "sha384",
        ),
        (
            "modules/rsa3072-sha3-256.ko",
            "keys/rsa3072.crt",
            Some("modseal fixture rsa3072"),
            "sha3-256",
        ),
        (
            "modules/comp-rsa2048-sha256.ko.xz",
            "keys/rsa2048.crt",
            Some("modseal fixture rsa2048"),
            "sha256",
        ),
        (
            "modules/ca-leaf.ko",
            "keys/ca-leaf.crt",
            Some("modseal fixture ca"),
            "sha256",
        ),
        // Signed by subjectKeyIdentifier: the signature names no issuer, so
        // without certificates there is no signer name to show, only the key id.
        (
            "modules/skid-rsa2048-sha256.ko",
            "keys/rsa2048.crt",
            None,
            "sha256",
        ),
    ] {
        let out = modseal([OsString::from("inspect"), dir.join(module).into_os_string()]);
        assert_eq!(code(&out), 0, "inspect {module}: {}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        // As modinfo: the signer is the issuer's name from issuerAndSerialNumber.
        if let Some(cn) = cn {
            assert!(
                text.contains(cn),
                "inspect {module}: signer {cn:?} not shown\n{text}"
            );
        }
        let (skid, serial) = skid_and_serial(&dir.join(cert));
        let hexes: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '=')
            .map(norm_hex)
            .collect();
        let shows_id = hexes
            .iter()
            .any(|h| Some(h) == skid.as_ref() || *h == serial);
        assert!(
            shows_id,
            "inspect {module}: neither SKID {skid:?} nor serial {serial} shown\n{text}"
        );
        let words: Vec<String> = text.split_whitespace().map(norm_algo).collect();
        assert!(
            words
                .iter()
                .any(|w| *w == norm_algo(hash) || w.ends_with(&norm_algo(hash))),
            "inspect {module}: hash {hash} not shown\n{text}"
        );
    }
}

/// The corpus itself agrees with OpenSSL, except where it is meant to differ
/// (this needs no modseal binary: it checks the fixtures).
#[test]
fn corpus_expectations_match_openssl() {
    let dir = fixtures();
    let work = tempfile::tempdir().expect("temp dir");
    let mut problems = Vec::new();
    for (name, _) in OPENSSL_EXCEPTIONS {
        if !cases().iter().any(|c| c.name == *name) {
            problems.push(format!("exception {name} names no case"));
        }
    }
    for case in cases() {
        let o = openssl_verdict(
            &case.module_path(dir),
            &case.trust_paths(dir),
            &case.cert_paths(dir),
            work.path(),
        );
        match (exception(&case.name), case.expect_ok(), &o) {
            (Some(why), _, Ok(())) => {
                assert!(
                    !case.expect_ok(),
                    "{}: exception ({why}) for an ok case",
                    case.name
                );
            }
            (Some(why), _, Err(e)) => problems.push(format!(
                "{}: listed as exception ({why}) but OpenSSL fails too: {e}",
                case.name
            )),
            (None, true, Ok(())) | (None, false, Err(_)) => {}
            (None, true, Err(e)) => {
                problems.push(format!("{}: expected ok, OpenSSL says {e}", case.name))
            }
            (None, false, Ok(())) => problems.push(format!(
                "{}: expected {}, OpenSSL verifies it",
                case.name, case.verdict
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Differential: modseal's ok/not-ok equals OpenSSL's for every case, except
/// the named exceptions (where OpenSSL accepts and modseal must refuse).
#[test]
fn modseal_matches_openssl() {
    let dir = fixtures();
    let work = tempfile::tempdir().expect("temp dir");
    let mut problems = Vec::new();
    for case in cases() {
        let module = case.module_path(dir);
        let openssl_ok = openssl_verdict(
            &module,
            &case.trust_paths(dir),
            &case.cert_paths(dir),
            work.path(),
        )
        .is_ok();
        let out = modseal(verify_args(case, dir, true, &module));
        let c = code(&out);
        if c == 2 {
            problems.push(format!("{}: exit 2\n{}", case.name, describe(&out)));
            continue;
        }
        let modseal_ok = c == 0;
        match exception(&case.name) {
            None if modseal_ok != openssl_ok => problems.push(format!(
                "{}: modseal {} (exit {c}), openssl {} [{}]\n{}",
                case.name,
                if modseal_ok { "ok" } else { "fails" },
                if openssl_ok { "ok" } else { "fails" },
                case.note,
                String::from_utf8_lossy(&out.stdout).trim()
            )),
            Some(why) if modseal_ok => problems.push(format!(
                "{}: modseal accepts it, but it must not: {why}",
                case.name
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The reason reports give for a signature with signed attributes.
const SIGNED_ATTRS_REASON: &str = "signed attributes (authenticatedAttributes) present: \
    the kernel refuses them for module signatures (pkcs7_verify: has authattrs)";

/// Every attrs-* case is refused for its signed attributes, before its
/// messageDigest is compared (attrs-payload-flip), as `pkcs7_verify()` does.
#[test]
fn signed_attributes_are_refused_before_the_digest() {
    let dir = fixtures();
    let attrs: Vec<&Case> = cases()
        .iter()
        .filter(|c| c.name.starts_with("attrs-"))
        .collect();
    assert!(attrs.len() >= 3, "attrs-* cases: {}", attrs.len());
    for case in attrs {
        let out = modseal(verify_args(case, dir, true, &case.module_path(dir)));
        assert_eq!(code(&out), 1, "{}\n{}", case.name, describe(&out));
        let m = &verify_report(&out).modules[0];
        assert_eq!(
            (m.verdict.as_str(), m.reason.as_str()),
            ("bad-signature", SIGNED_ATTRS_REASON),
            "{}",
            case.name
        );
        assert!(m.key_id.is_some() && m.hash_algo.is_some(), "{m:?}");
    }
}

/// Every module file in the corpus is named by some case (no stray files that
/// would make the directory counts drift).
#[test]
fn corpus_files_are_all_in_the_table() {
    let dir = fixtures();
    let named: BTreeSet<PathBuf> = cases().iter().map(|c| c.module_path(dir)).collect();
    for f in module_files(&dir.join("modules")) {
        assert!(
            named.contains(&f),
            "{} is in no row of cases.tsv",
            f.display()
        );
    }
}
