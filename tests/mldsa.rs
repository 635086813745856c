//! ML-DSA module signatures made by Linux 7.x's `sign-file` (Debian
//! linux-kbuild-7.*) with trixie's OpenSSL 3.5, checked as the kernel checks
//! them, and against `openssl cms -verify`.
//!
//! Fixtures: `MODSEAL_MLDSA_FIXTURES` if set, else `target/mldsa-fixtures`;
//! when the folder is missing, `scripts/make-mldsa-fixtures.sh` makes it
//! (as root, with a trixie root at `MODSEAL_MLDSA_ROOT`, default
//! `<repo>/.cache/mldsa-root`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use modseal::trust::cert::Certificate;
use modseal::trust::TrustStore;
use modseal::verify::algorithm::OID_PKCS7_DATA;
use modseal::verify::mldsa::{Authattrs, Level};
use modseal::verify::{modsig, pkcs7, verify_module, Options, Report, Verdict};

const LEVELS: [(u32, Level); 3] = [(44, Level::L44), (65, Level::L65), (87, Level::L87)];

fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::var_os("MODSEAL_MLDSA_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/mldsa-fixtures"));
        if !dir.join("sign-file-attributes.txt").is_file() {
            let root = std::env::var_os("MODSEAL_MLDSA_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo.join(".cache/mldsa-root"));
            let status = Command::new(repo.join("scripts/make-mldsa-fixtures.sh"))
                .arg(&root)
                .arg(&dir)
                .status()
                .expect("run scripts/make-mldsa-fixtures.sh");
            assert!(
                status.success(),
                "scripts/make-mldsa-fixtures.sh {} {} failed (needs root and the Debian archive)",
                root.display(),
                dir.display()
            );
        }
        dir
    })
}

fn read(name: &str) -> Vec<u8> {
    let p = fixtures().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_der(&read(name)).expect(name)
}

fn trusting(name: &str) -> TrustStore {
    TrustStore {
        anchors: vec![cert(name)],
        ..TrustStore::default()
    }
}

fn check(module: &[u8], trust: &TrustStore, waiver: Authattrs) -> Report {
    let opts = Options {
        mldsa_authattrs: waiver,
        ..Options::default()
    };
    verify_module(module, None, "m.ko", trust, &opts)
}

#[test]
fn certificates_with_mldsa_keys_parse() {
    for (l, level) in LEVELS {
        let c = cert(&format!("cert-{l}.der"));
        let key = c.key.as_ref().expect("ML-DSA key");
        assert_eq!(key.describe(), level.name());
        assert!(c.skid.is_some());
    }
}

/// Recorded finding: with OpenSSL 3.x, 7.x `sign-file` drops CMS_NOATTR for
/// ML-DSA keys (OpenSSL < 4 cannot sign ML-DSA CMS without attributes), so
/// its ML-DSA signatures carry signed attributes (contentType,
/// messageDigest), and the SignerInfo names the digest algorithm given.
#[test]
fn sign_file_makes_mldsa_signatures_with_signed_attributes() {
    let recorded = String::from_utf8(read("sign-file-attributes.txt")).unwrap();
    assert_eq!(
        recorded,
        "mldsa44 signed-attributes\nmldsa65 signed-attributes\nmldsa87 signed-attributes\n"
    );
    let version = String::from_utf8(read("openssl-version")).unwrap();
    assert!(version.starts_with("OpenSSL 3."), "{version}");
    for (l, level) in LEVELS {
        for h in ["sha512", "sha256"] {
            let m = read(&format!("mldsa{l}-{h}.ko"));
            let modsig::Trailer::Signed(s) = modsig::split(&m).unwrap() else {
                panic!("unsigned")
            };
            let msg = pkcs7::parse(s.pkcs7).unwrap();
            assert!(msg.signer.signed_attrs.is_some(), "mldsa{l}-{h}");
            assert_eq!(Level::from_oid(msg.signer.signature_oid), Some(level));
            assert!(msg.certificates.is_empty());
        }
    }
}

#[test]
fn sign_file_signatures_are_refused_without_the_waiver() {
    for (l, level) in LEVELS {
        let r = check(
            &read(&format!("mldsa{l}-sha512.ko")),
            &trusting(&format!("cert-{l}.der")),
            Authattrs::default(),
        );
        assert_eq!(r.verdict, Verdict::BadSignature, "{}", r.reason);
        assert!(
            r.reason.starts_with(&format!(
                "signed attributes (authenticatedAttributes) present with {level}"
            )),
            "{}",
            r.reason
        );
    }
}

#[test]
fn sign_file_signatures_verify_with_the_waiver() {
    for (l, level) in LEVELS {
        let trust = trusting(&format!("cert-{l}.der"));
        for name in [format!("mldsa{l}-sha512.ko"), format!("mldsa{l}-keyid.ko")] {
            let r = check(&read(&name), &trust, Authattrs::Waive);
            assert_eq!(r.verdict, Verdict::Ok, "{name}: {}", r.reason);
            assert_eq!(
                r.reason,
                format!("signed by 'modseal ML-DSA-{l} test key' ({level}, sha512)")
            );
        }
        // The kernel takes ML-DSA with signed attributes only over SHA-512.
        let r = check(
            &read(&format!("mldsa{l}-sha256.ko")),
            &trust,
            Authattrs::Waive,
        );
        assert_eq!(r.verdict, Verdict::UnsupportedAlgorithm, "{}", r.reason);
        assert!(r.reason.contains("takes only sha512"), "{}", r.reason);
    }
}

#[test]
fn a_tampered_module_is_refused() {
    let r = check(
        &read("mldsa65-tampered.ko"),
        &trusting("cert-65.der"),
        Authattrs::Waive,
    );
    assert_eq!(
        (r.verdict, r.reason.as_str()),
        (
            Verdict::BadSignature,
            "messageDigest attribute does not match the module's digest"
        )
    );
}

#[test]
fn a_level_mismatch_is_a_named_failure() {
    // The ML-DSA-44 certificate has the ML-DSA-65 one's issuer and serial.
    let trust = trusting("cert-65-as-44.der");
    let m = read("mldsa65-sha512.ko");
    let r = check(&m, &trust, Authattrs::Waive);
    assert_eq!(
        (r.verdict, r.reason.as_str()),
        (
            Verdict::BadSignature,
            "ML-DSA level mismatch: the signature is ml-dsa-65, the signer's key is ml-dsa-44"
        )
    );
    // Without the waiver the attributes are refused first, as
    // pkcs7_verify() refuses them before any key is looked up.
    let r = check(&m, &trust, Authattrs::Reject);
    assert!(r.reason.starts_with("signed attributes"), "{}", r.reason);
    // A signature made with ML-DSA-44 but labelled ML-DSA-65, trusted
    // certificate ML-DSA-44 (same issuer and serial as the 65 one).
    let r = check(
        &pure_module_as(44, 65, "cert-65-as-44.der"),
        &trust,
        Authattrs::Reject,
    );
    assert_eq!(r.verdict, Verdict::BadSignature, "{}", r.reason);
    assert!(
        r.reason.starts_with("ML-DSA level mismatch"),
        "{}",
        r.reason
    );
}

// --- Signatures without signed attributes (what sign-file makes with
// OpenSSL >= 4): the fixture's pure ML-DSA signature of the payload, in a
// CMS built here the way sign-file lays it out.

fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let content = parts.concat();
    let len = content.len();
    let mut v = vec![tag];
    if len < 0x80 {
        v.push(len as u8);
    } else if len <= 0xff {
        v.extend([0x81, len as u8]);
    } else {
        v.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    v.extend(content);
    v
}

const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

fn mldsa_oid(level: u32) -> Vec<u8> {
    let arc = match level {
        44 => 17,
        65 => 18,
        _ => 19,
    };
    [
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03][..],
        &[arc],
    ]
    .concat()
}

/// The payload signed with the level-`sig_level` key, in a CMS whose
/// signatureAlgorithm says `claimed` and whose signer is that key's cert.
fn pure_module(sig_level: u32, claimed: u32) -> Vec<u8> {
    pure_module_as(sig_level, claimed, &format!("cert-{sig_level}.der"))
}

/// As [`pure_module`], naming the signer by `signer_cert`'s issuer and serial.
fn pure_module_as(sig_level: u32, claimed: u32, signer_cert: &str) -> Vec<u8> {
    let payload = read("payload.ko");
    let signature = read(&format!("payload-{sig_level}.sig"));
    let c = cert(signer_cert);
    let alg = |oid: &[u8]| tlv(0x30, &[&tlv(0x06, &[oid])]);
    let version = tlv(0x02, &[&[1]]);
    let sid = tlv(0x30, &[&c.issuer, &tlv(0x02, &[&c.serial])]);
    let signer_info = tlv(
        0x30,
        &[
            &version,
            &sid,
            &alg(OID_SHA512),
            &alg(&mldsa_oid(claimed)),
            &tlv(0x04, &[&signature]),
        ],
    );
    let signed_data = tlv(
        0x30,
        &[
            &version,
            &tlv(0x31, &[&alg(OID_SHA512)]),
            &tlv(0x30, &[&tlv(0x06, &[OID_PKCS7_DATA])]),
            &tlv(0x31, &[&signer_info]),
        ],
    );
    let p7 = tlv(
        0x30,
        &[&tlv(0x06, &[OID_SIGNED_DATA]), &tlv(0xa0, &[&signed_data])],
    );
    let len = u32::try_from(p7.len()).unwrap();
    [&payload[..], &p7, &modsig::trailer_for(len)].concat()
}

#[test]
fn pure_mldsa_signatures_verify_under_the_default() {
    for (l, level) in LEVELS {
        let trust = trusting(&format!("cert-{l}.der"));
        let m = pure_module(l, l);
        for waiver in [Authattrs::Reject, Authattrs::Waive] {
            let r = check(&m, &trust, waiver);
            assert_eq!(r.verdict, Verdict::Ok, "{}", r.reason);
            assert_eq!(
                r.reason,
                format!("signed by 'modseal ML-DSA-{l} test key' ({level}, sha512)")
            );
        }
        // One payload byte changed: the signature no longer matches.
        let mut bad = m.clone();
        bad[4096] ^= 1;
        let r = check(&bad, &trust, Authattrs::Reject);
        assert_eq!(r.verdict, Verdict::BadSignature, "{}", r.reason);
        assert!(
            r.reason
                .starts_with(&format!("{level} signature does not match")),
            "{}",
            r.reason
        );
    }
}

/// `openssl cms -verify` (run in the trixie root by the fixture script) and
/// modseal, with the waiver, agree on each level's signature and on a
/// tampered payload.
#[test]
fn differential_against_openssl_cms_verify() {
    let recorded = String::from_utf8(read("openssl-cms-verify.txt")).unwrap();
    let payload = read("payload.ko");
    for (l, _) in LEVELS {
        let p7 = read(&format!("mldsa{l}-sha512.p7s"));
        let trust = trusting(&format!("cert-{l}.der"));
        let len = u32::try_from(p7.len()).unwrap();
        let good = [&payload[..], &p7, &modsig::trailer_for(len)].concat();
        let mut tampered = good.clone();
        tampered[4096] ^= 1;
        for (what, module) in [("sha512", good), ("tampered", tampered)] {
            let openssl_ok = recorded.contains(&format!("mldsa{l}-{what} ok\n"));
            assert!(
                openssl_ok || recorded.contains(&format!("mldsa{l}-{what} fail\n")),
                "{recorded}"
            );
            let r = check(&module, &trust, Authattrs::Waive);
            assert_eq!(
                r.verdict == Verdict::Ok,
                openssl_ok,
                "mldsa{l}-{what}: openssl {openssl_ok}, modseal {}",
                r.reason
            );
        }
        // sign-file's module is the same bytes as payload + .p7s + trailer.
        assert_eq!(
            read(&format!("mldsa{l}-sha512.ko")).len(),
            payload.len() + p7.len() + modsig::trailer_for(len).len()
        );
    }
}

#[test]
fn the_bundle_directive_chooses_the_waiver() {
    let pem = String::from_utf8(read("cert-65.pem")).unwrap();
    for (line, want) in [
        ("", Authattrs::Reject),
        ("mldsa-authattrs waive\n", Authattrs::Waive),
        ("mldsa-authattrs reject\n", Authattrs::Reject),
    ] {
        let text = format!("modseal-trust-bundle v1\n{line}{pem}");
        let b = modseal::trust::read_bundle(Path::new("b"), text.as_bytes()).unwrap();
        assert_eq!(b.settings.mldsa_authattrs, want);
    }
}

/// `modseal verify --trust BUNDLE` applies the bundle's sealed waiver, as
/// the boot stage does.
#[test]
fn verify_applies_the_bundles_waiver() {
    let pem = String::from_utf8(read("cert-65.pem")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let module = fixtures().join("mldsa65-sha512.ko");
    for (line, want) in [("mldsa-authattrs waive\n", 0), ("", 1)] {
        let bundle = dir.path().join("b");
        std::fs::write(&bundle, format!("modseal-trust-bundle v1\n{line}{pem}")).unwrap();
        let out = common::modseal([
            "verify".as_ref(),
            "--trust".as_ref(),
            bundle.as_os_str(),
            module.as_os_str(),
        ]);
        assert_eq!(
            common::code(&out),
            want,
            "{line:?}: {}",
            common::describe(&out)
        );
    }
}
