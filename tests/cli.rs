//! The command-line contract (README "Using it", DESIGN.md "Command-line
//! contract") tested from the outside: `--check-time`, `bundle`, directory
//! walking, the text and JSON report formats, `--jobs`, `inspect`, `keys
//! from-kernel`, `--help`, and paths with control characters.
//!
//! Everything is made inside the test in a temporary directory, with `openssl`
//! and the kernel's `sign-file` (`SIGN_FILE`, default
//! /usr/lib/linux-kbuild-6.1/scripts/sign-file); the fixture corpus is not
//! needed. Binary: `MODSEAL_BIN` or Cargo's `modseal`.

mod common;

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use common::*;

// ---------------------------------------------------------------------------
// Helpers: certificates with openssl, modules with sign-file
// ---------------------------------------------------------------------------

fn sign_file_tool() -> PathBuf {
    std::env::var_os("SIGN_FILE")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/linux-kbuild-6.1/scripts/sign-file"))
}

/// Runs a tool in `cwd`; panics with its output unless it succeeds.
fn run_ok(program: impl AsRef<OsStr>, args: &[&OsStr], cwd: &Path) -> Output {
    run(Command::new(program).args(args).current_dir(cwd))
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

#[derive(Clone, Copy, Debug)]
enum KeyKind {
    Rsa2048,
    EcP256,
    EcP384,
}

/// A certificate and its private key (both PEM).
#[derive(Clone, Debug)]
struct Cert {
    cert: PathBuf,
    key: PathBuf,
}

/// Validity windows for `openssl ca -startdate/-enddate`.
const EXPIRED: (&str, &str) = ("20000101000000Z", "20010101000000Z");
const NOT_YET_VALID: (&str, &str) = ("20900101000000Z", "20910101000000Z");
const VALID_NOW: (&str, &str) = ("20000101000000Z", "20890101000000Z");

/// Makes a certificate with `openssl ca`, which (unlike `openssl req -x509` in
/// OpenSSL 3.0) takes an arbitrary validity window. `ca` picks the CA
/// extensions (basicConstraints cA, keyCertSign); a leaf gets the kernel's
/// (certs/default_x509.genkey: digitalSignature, SKID, AKID). Self-signed
/// unless `issuer` is given. `serial` is hex.
#[allow(clippy::too_many_arguments)]
fn make_cert(
    base: &Path,
    name: &str,
    kind: KeyKind,
    cn: &str,
    serial: &str,
    window: (&str, &str),
    ca: bool,
    issuer: Option<&Cert>,
) -> Cert {
    let dir = base.join(format!("{name}.pki"));
    std::fs::create_dir_all(&dir).expect("mkdir pki");
    std::fs::write(
        dir.join("ca.cnf"),
        "[ ca ]\n\
         default_ca = myca\n\
         [ myca ]\n\
         database = index.txt\n\
         new_certs_dir = .\n\
         serial = serial\n\
         default_md = sha256\n\
         policy = pol\n\
         unique_subject = no\n\
         email_in_dn = no\n\
         copy_extensions = none\n\
         [ pol ]\n\
         commonName = supplied\n\
         [ leaf ]\n\
         basicConstraints = critical,CA:FALSE\n\
         keyUsage = digitalSignature\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         [ cax ]\n\
         basicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign,digitalSignature\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n\
         [ req ]\n\
         distinguished_name = dn\n\
         [ dn ]\n",
    )
    .expect("write ca.cnf");
    std::fs::write(dir.join("index.txt"), "").expect("index.txt");
    std::fs::write(dir.join("serial"), format!("{serial}\n")).expect("serial");
    let key = dir.join("key.pem");
    let keyopts: &[&str] = match kind {
        KeyKind::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        KeyKind::EcP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        KeyKind::EcP384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    };
    let mut a: Vec<&OsStr> = vec![os("genpkey")];
    a.extend(keyopts.iter().map(os));
    a.extend([os("-out"), key.as_os_str()]);
    run_ok("openssl", &a, &dir);
    let subj = format!("/CN={cn}");
    run_ok(
        "openssl",
        &[
            os("req"),
            os("-new"),
            os("-config"),
            os("ca.cnf"),
            os("-key"),
            key.as_os_str(),
            os("-subj"),
            os(&subj),
            os("-out"),
            os("req.csr"),
        ],
        &dir,
    );
    let cert = dir.join("cert.pem");
    let mut a: Vec<&OsStr> = [
        "ca", "-batch", "-config", "ca.cnf", "-notext", "-in", "req.csr", "-out",
    ]
    .iter()
    .map(os)
    .collect();
    a.push(cert.as_os_str());
    a.extend([
        os("-extensions"),
        os(if ca { "cax" } else { "leaf" }),
        os("-startdate"),
        os(window.0),
        os("-enddate"),
        os(window.1),
    ]);
    match issuer {
        None => a.extend([os("-selfsign"), os("-keyfile"), key.as_os_str()]),
        Some(i) => a.extend([
            os("-cert"),
            i.cert.as_os_str(),
            os("-keyfile"),
            i.key.as_os_str(),
        ]),
    }
    run_ok("openssl", &a, &dir);
    Cert { cert, key }
}

/// A self-signed leaf, valid now, with the kernel's extensions.
fn leaf(base: &Path, name: &str, kind: KeyKind, serial: &str) -> Cert {
    make_cert(
        base,
        name,
        kind,
        &format!("modseal cli {name}"),
        serial,
        VALID_NOW,
        false,
        None,
    )
}

/// Deterministic bytes that start like an ELF object (sign-file does not care).
fn payload(seed: u8, len: usize) -> Vec<u8> {
    let mut v = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x >> 8) as u8);
    }
    v
}

/// Writes `bytes` to `path` and signs it in place with sign-file.
fn signed_module(path: &Path, bytes: &[u8], signer: &Cert, hash: &str, skid: bool) -> PathBuf {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).expect("mkdir module dir");
    }
    std::fs::write(path, bytes).expect("write module");
    let mut a: Vec<&OsStr> = Vec::new();
    if skid {
        a.push(os("-k"));
    }
    a.extend([
        os(hash),
        signer.key.as_os_str(),
        signer.cert.as_os_str(),
        path.as_os_str(),
    ]);
    run_ok(sign_file_tool(), &a, Path::new("/"));
    let data = std::fs::read(path).expect("read signed module");
    assert!(
        data.ends_with(MAGIC),
        "sign-file did not sign {}",
        path.display()
    );
    path.to_path_buf()
}

/// `xz` the way the kernel compresses modules: `src` → `dst`.
fn xz_compress(src: &Path, dst: &Path) {
    let out = tool(
        "xz",
        &[
            os("--check=crc32"),
            os("--lzma2=dict=1MiB"),
            os("-c"),
            src.as_os_str(),
        ],
    );
    assert!(out.status.success(), "xz: {}", describe(&out));
    std::fs::write(dst, &out.stdout).expect("write .ko.xz");
}

fn gzip_compress(src: &Path, dst: &Path) {
    let out = tool("gzip", &[os("-9"), os("-n"), os("-c"), src.as_os_str()]);
    assert!(out.status.success(), "gzip: {}", describe(&out));
    std::fs::write(dst, &out.stdout).expect("write .ko.gz");
}

/// `openssl x509 -noout -serial` → "8A2B3C…" (upper-case hex, as printed).
fn openssl_serial(cert: &Path) -> String {
    let out = tool(
        "openssl",
        &[
            os("x509"),
            os("-noout"),
            os("-serial"),
            os("-in"),
            cert.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("serial=")
        .expect("serial= line")
        .to_string()
}

/// The subject key identifier as openssl prints it ("16:A8:…").
fn openssl_skid(cert: &Path) -> String {
    let out = tool(
        "openssl",
        &[
            os("x509"),
            os("-noout"),
            os("-ext"),
            os("subjectKeyIdentifier"),
            os("-in"),
            cert.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains("Subject Key Identifier") {
            return lines.next().expect("SKID value line").trim().to_string();
        }
    }
    panic!("no SKID in {text}")
}

/// The issuer's CN as `openssl x509 -issuer -nameopt RFC2253` prints it.
fn openssl_issuer_cn(cert: &Path) -> String {
    let out = tool(
        "openssl",
        &[
            os("x509"),
            os("-noout"),
            os("-issuer"),
            os("-nameopt"),
            os("RFC2253"),
            os("-in"),
            cert.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.strip_prefix("issuer=")
        .unwrap_or(&text)
        .split(',')
        .find_map(|rdn| rdn.trim().strip_prefix("CN="))
        .unwrap_or_else(|| panic!("no CN in {text}"))
        .to_string()
}

/// The signer's digest algorithm of a module's signature, as
/// `openssl cms -cmsout -print` reports it ("sha256", "sha384", …).
fn openssl_digest_algorithm(module_bytes: &[u8], work: &Path) -> String {
    let (_, sig) = split_appended(module_bytes).expect("appended signature");
    let p7 = work.join("sig-for-print.p7");
    std::fs::write(&p7, sig).expect("write p7");
    let out = tool(
        "openssl",
        &[
            os("cms"),
            os("-cmsout"),
            os("-print"),
            os("-inform"),
            os("DER"),
            os("-in"),
            p7.as_os_str(),
        ],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // signerInfos: … digestAlgorithm: \n algorithm: sha256 (2.16.840.1.101.3.4.2.1)
    let after = text
        .split("signerInfos:")
        .nth(1)
        .expect("signerInfos in cms -print");
    let after = after
        .split("digestAlgorithm:")
        .nth(1)
        .expect("digestAlgorithm in signerInfo");
    after
        .lines()
        .find_map(|l| l.trim().strip_prefix("algorithm:"))
        .expect("algorithm line")
        .split_whitespace()
        .next()
        .expect("algorithm name")
        .to_string()
}

/// `sha256sum FILE` (the tool, not our own hashing).
fn sha256sum(path: &Path) -> String {
    let out = tool("sha256sum", &[os("--"), path.as_os_str()]);
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .trim_start_matches('\\')
        .to_string()
}

/// `openssl dgst -<algo> -r` of bytes.
fn openssl_dgst(algo: &str, bytes: &[u8], work: &Path) -> String {
    let f = work.join(format!("dgst-input-{algo}"));
    std::fs::write(&f, bytes).expect("write dgst input");
    let flag = format!("-{algo}");
    let out = tool("openssl", &[os("dgst"), os(&flag), os("-r"), f.as_os_str()]);
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("digest")
        .to_lowercase()
}

/// `modseal verify --json [extra…] --trust T… PATH…`, parsed (exit status checked by the caller).
fn verify_args(trust: &[&Path], extra: &[&str], paths: &[&Path]) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["verify".into()];
    a.extend(extra.iter().map(OsString::from));
    for t in trust {
        a.push("--trust".into());
        a.push(t.as_os_str().to_owned());
    }
    a.extend(paths.iter().map(|p| p.as_os_str().to_owned()));
    a
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs modseal, killing it (the child this test started) after `limit`.
/// `None` on timeout.
fn modseal_with_timeout(args: &[OsString], limit: Duration) -> Option<Output> {
    let mut child = Command::new(modseal_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn modseal");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => return Some(child.wait_with_output().expect("collect output")),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `key: value` lines of `modseal inspect` text output.
fn inspect_fields(out: &Output) -> Vec<(String, String)> {
    stdout_lines(out)
        .iter()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], key: &str, out: &Output) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no `{key}:` line\n{}", describe(out)))
}

/// "1a2b3c" / "1A:2B:3C" → "1A:2B:3C" (modinfo's sig_key form).
fn colon_upper(hex: &str) -> String {
    let digits: String = hex
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let digits = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    digits
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Files in a directory (names), to spot temporary files left behind.
fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// 1. --check-time
// ---------------------------------------------------------------------------

/// One module signed by `signer` (self-signed, used as the anchor): verdicts
/// without and with `--check-time`.
fn verdicts_with_and_without_check_time(signer: &Cert, module: &Path) -> [(i32, ModuleReport); 2] {
    let mut res = Vec::new();
    for extra in [&[][..], &["--check-time"][..]] {
        let mut e = vec!["--json"];
        e.extend_from_slice(extra);
        let out = modseal(verify_args(&[&signer.cert], &e, &[module]));
        let r = verify_report(&out);
        assert_eq!(r.modules.len(), 1, "{}", describe(&out));
        res.push((code(&out), r.modules[0].clone()));
    }
    res.try_into().unwrap()
}

#[test]
fn check_time_expired_signer() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = make_cert(
        t,
        "expired",
        KeyKind::Rsa2048,
        "modseal cli expired",
        "1A2B3C",
        EXPIRED,
        false,
        None,
    );
    let module = signed_module(
        &t.join("m/expired.ko"),
        &payload(1, 6000),
        &signer,
        "sha256",
        false,
    );

    let [(c0, r0), (c1, r1)] = verdicts_with_and_without_check_time(&signer, &module);
    // Dates are ignored by default, as the kernel ignores them.
    assert_eq!(
        (c0, r0.verdict.as_str()),
        (0, "ok"),
        "without --check-time: {r0:?}"
    );
    assert_eq!(
        (c1, r1.verdict.as_str()),
        (1, "untrusted-chain"),
        "with --check-time: {r1:?}"
    );
    assert!(
        r1.reason.to_lowercase().contains("expired"),
        "reason does not say expired: {:?}",
        r1.reason
    );

    // Text mode: the same, as one `PATH: untrusted-chain: …expired…` line.
    let out = modseal(verify_args(&[&signer.cert], &["--check-time"], &[&module]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2, "{}", describe(&out));
    let prefix = format!("{}: untrusted-chain: ", module.display());
    assert!(
        lines[0].starts_with(&prefix) && lines[0].to_lowercase().contains("expired"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "0 verified, 1 failed");
}

#[test]
fn check_time_not_yet_valid_signer() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = make_cert(
        t,
        "future",
        KeyKind::EcP256,
        "modseal cli future",
        "2090",
        NOT_YET_VALID,
        false,
        None,
    );
    let module = signed_module(
        &t.join("future.ko"),
        &payload(2, 3000),
        &signer,
        "sha256",
        false,
    );
    let [(c0, r0), (c1, r1)] = verdicts_with_and_without_check_time(&signer, &module);
    assert_eq!(
        (c0, r0.verdict.as_str()),
        (0, "ok"),
        "without --check-time: {r0:?}"
    );
    assert_eq!(
        (c1, r1.verdict.as_str()),
        (1, "untrusted-chain"),
        "with --check-time: {r1:?}"
    );
    assert!(!r1.reason.trim().is_empty(), "no reason: {r1:?}");
    assert!(
        !r1.reason.to_lowercase().contains("expired"),
        "a certificate from 2090 is not expired: {:?}",
        r1.reason
    );
}

#[test]
fn check_time_accepts_a_currently_valid_signer() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "current", KeyKind::EcP384, "0C0FFEE0");
    let module = signed_module(
        &t.join("current.ko"),
        &payload(3, 3000),
        &signer,
        "sha384",
        false,
    );
    let [(c0, r0), (c1, r1)] = verdicts_with_and_without_check_time(&signer, &module);
    assert_eq!((c0, r0.verdict.as_str()), (0, "ok"), "{r0:?}");
    assert_eq!((c1, r1.verdict.as_str()), (0, "ok"), "{r1:?}");
}

/// An expired CA anchor with a valid leaf (`--cert`): the chain is checked
/// for dates too, and only with `--check-time`.
#[test]
fn check_time_expired_anchor_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ca = make_cert(
        t,
        "oldca",
        KeyKind::EcP384,
        "modseal cli old CA",
        "01",
        EXPIRED,
        true,
        None,
    );
    let signer = make_cert(
        t,
        "leaf-of-oldca",
        KeyKind::EcP256,
        "modseal cli leaf of old CA",
        "02",
        VALID_NOW,
        false,
        Some(&ca),
    );
    let module = signed_module(
        &t.join("leaf.ko"),
        &payload(4, 3000),
        &signer,
        "sha256",
        false,
    );
    let args = |check: bool| {
        let mut a: Vec<OsString> = vec!["verify".into(), "--json".into()];
        if check {
            a.push("--check-time".into());
        }
        a.extend([
            "--trust".into(),
            ca.cert.clone().into_os_string(),
            "--cert".into(),
            signer.cert.clone().into_os_string(),
            module.clone().into_os_string(),
        ]);
        a
    };
    let out = modseal(args(false));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = modseal(args(true));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = verify_report(&out);
    assert_eq!(
        r.modules[0].verdict, "untrusted-chain",
        "{:?}",
        r.modules[0]
    );
}

// ---------------------------------------------------------------------------
// 2. bundle
// ---------------------------------------------------------------------------

fn bundle_cmd(anchor: &Path, extra: &[&str], out: &Path) -> Output {
    let mut a: Vec<OsString> = vec!["bundle".into(), "--anchor".into(), anchor.into()];
    a.extend(extra.iter().map(OsString::from));
    a.push("--out".into());
    a.push(out.into());
    modseal(a)
}

#[test]
fn bundle_deny_serial_gives_denied_and_plain_bundle_gives_ok() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The serial's high bit is set, so its DER INTEGER carries a leading 00
    // that `openssl x509 -serial` does not print.
    let signer = leaf(t, "bundled", KeyKind::Rsa2048, "8A2B3C4D");
    let other = leaf(t, "bystander", KeyKind::EcP256, "77");
    let module = signed_module(
        &t.join("mods/bundled.ko"),
        &payload(5, 4000),
        &signer,
        "sha256",
        false,
    );
    let serial = openssl_serial(&signer.cert);
    assert_eq!(serial, "8A2B3C4D");
    let outdir = t.join("out");
    std::fs::create_dir(&outdir).unwrap();

    // As `openssl x509 -serial` prints it; and lower case with colons.
    let colon_lower = colon_upper(&serial).to_lowercase();
    for deny in [serial.as_str(), colon_lower.as_str()] {
        let bundle = outdir.join("deny.bundle");
        let out = bundle_cmd(&signer.cert, &["--deny-serial", deny], &bundle);
        assert_eq!(
            code(&out),
            0,
            "bundle --deny-serial {deny}: {}",
            describe(&out)
        );
        let text = std::fs::read_to_string(&bundle).expect("bundle written");
        assert!(
            text.starts_with("modseal-trust-bundle v1\n"),
            "bundle does not start with the header:\n{text}"
        );
        let out = modseal(verify_args(&[&bundle], &["--json"], &[&module]));
        assert_eq!(code(&out), 1, "deny {deny}: {}", describe(&out));
        let r = verify_report(&out);
        assert_eq!(
            r.modules[0].verdict, "denied",
            "deny {deny}: {:?}",
            r.modules[0]
        );
        assert_eq!((r.verified, r.failed), (0, 1));
        // A serial that is not the signer's denies nothing.
        let out = bundle_cmd(
            &other.cert,
            &["--deny-serial", deny],
            &outdir.join("other.bundle"),
        );
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }

    // The same anchor without a denylist: ok. Anchors may be PEM or DER.
    let der = t.join("bundled.der");
    run_ok(
        "openssl",
        &[
            os("x509"),
            os("-in"),
            signer.cert.as_os_str(),
            os("-outform"),
            os("DER"),
            os("-out"),
            der.as_os_str(),
        ],
        t,
    );
    for anchor in [&signer.cert, &der] {
        let bundle = outdir.join("plain.bundle");
        let out = bundle_cmd(anchor, &[], &bundle);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        assert!(std::fs::read_to_string(&bundle)
            .unwrap()
            .starts_with("modseal-trust-bundle v1\n"));
        let out = modseal(verify_args(&[&bundle], &["--json"], &[&module]));
        assert_eq!(
            code(&out),
            0,
            "plain bundle from {}: {}",
            anchor.display(),
            describe(&out)
        );
        assert_eq!(verify_report(&out).modules[0].verdict, "ok");
    }

    // A bundle denying another certificate's serial leaves this module ok.
    let out = bundle_cmd(
        &signer.cert,
        &["--deny-serial", "77"],
        &outdir.join("x.bundle"),
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = modseal(verify_args(&[&outdir.join("x.bundle")], &[], &[&module]));
    assert_eq!(code(&out), 0, "{}", describe(&out));

    // Key id and module hash denials, for a `sign-file -k` module.
    let kmod = signed_module(
        &t.join("mods/bundled-k.ko"),
        &payload(6, 4000),
        &signer,
        "sha256",
        true,
    );
    let skid = openssl_skid(&signer.cert);
    let sha = sha256sum(&kmod);
    for (flag, value) in [
        ("--deny-key-id", skid.as_str()),
        ("--deny-module-sha256", sha.as_str()),
    ] {
        let bundle = outdir.join("k.bundle");
        let out = bundle_cmd(&signer.cert, &[flag, value], &bundle);
        assert_eq!(code(&out), 0, "{flag}: {}", describe(&out));
        let out = modseal(verify_args(&[&bundle], &["--json"], &[&kmod]));
        assert_eq!(code(&out), 1, "{flag} {value}: {}", describe(&out));
        assert_eq!(verify_report(&out).modules[0].verdict, "denied", "{flag}");
    }
    // Only the bundles this test asked for, no temporary files.
    assert_eq!(
        dir_names(&outdir),
        [
            "deny.bundle",
            "k.bundle",
            "other.bundle",
            "plain.bundle",
            "x.bundle"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<BTreeSet<_>>()
    );
}

/// A `deny-key-id` equal to the `key_id` that `verify --json` prints denies
/// the module whichever way the signature names its signer: for sign-file
/// without `-k` (issuer and serial) that is the serial, which no certificate
/// SKID equals; the signer certificate's SKID still denies it too.
#[test]
fn deny_key_id_denies_an_issuer_and_serial_module_by_its_printed_key_id() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // High bit set: the DER INTEGER carries a sign byte that key_id omits.
    let signer = leaf(t, "byserial", KeyKind::Rsa2048, "9F01A2B3");
    let other = leaf(t, "bykeyid", KeyKind::EcP256, "9F01A2B3");
    let module = signed_module(
        &t.join("mods/byserial.ko"),
        &payload(7, 4000),
        &signer,
        "sha256",
        false,
    );
    let kmod = signed_module(
        &t.join("mods/bykeyid.ko"),
        &payload(8, 4000),
        &other,
        "sha256",
        true,
    );
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&module]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let key_id = verify_report(&out).modules[0]
        .key_id
        .clone()
        .expect("verify prints a key_id");
    assert_eq!(key_id, "9F:01:A2:B3");
    let outdir = t.join("out");
    std::fs::create_dir(&outdir).unwrap();

    let skid = openssl_skid(&signer.cert);
    let plain = key_id.to_lowercase().replace(':', "");
    for (deny, reason) in [
        (
            key_id.as_str(),
            "signature key id is on the denylist \
             (the signer's serial, as the signature names it by issuer and serial)",
        ),
        (plain.as_str(), ""),
        (skid.as_str(), ""),
    ] {
        let bundle = outdir.join("deny.bundle");
        let out = bundle_cmd(&signer.cert, &["--deny-key-id", deny], &bundle);
        assert_eq!(
            code(&out),
            0,
            "bundle --deny-key-id {deny}: {}",
            describe(&out)
        );
        let out = modseal(verify_args(&[&bundle], &["--json"], &[&module]));
        assert_eq!(code(&out), 1, "deny-key-id {deny}: {}", describe(&out));
        let m = &verify_report(&out).modules[0];
        assert_eq!(m.verdict, "denied", "deny-key-id {deny}: {}", m.reason);
        assert_eq!(m.key_id.as_deref(), Some(key_id.as_str()));
        if !reason.is_empty() {
            assert_eq!(m.reason, reason);
        }
    }

    // The same serial under another issuer, named by key id (-k): its
    // printed key_id is its SKID, so the serial's entry does not deny it.
    let both = outdir.join("both.bundle");
    let mut a: Vec<OsString> = vec!["bundle".into()];
    for c in [&signer.cert, &other.cert] {
        a.extend(["--anchor".into(), c.into()]);
    }
    a.extend(["--deny-key-id".into(), key_id.clone().into()]);
    a.extend(["--out".into(), both.clone().into()]);
    let out = modseal(a);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let out = modseal(verify_args(&[&both], &["--json"], &[&kmod, &module]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = verify_report(&out);
    let verdict = |name: &str| {
        r.modules
            .iter()
            .find(|m| m.path.ends_with(name))
            .map(|m| m.verdict.clone())
    };
    assert_eq!(
        verdict("bykeyid.ko").as_deref(),
        Some("ok"),
        "{}",
        describe(&out)
    );
    assert_eq!(verdict("byserial.ko").as_deref(), Some("denied"));
}

/// `bundle --out` over an existing file replaces it by rename: a reader
/// holding the old file still sees the old bytes, and no temporary file is
/// left in the directory.
#[test]
fn bundle_out_replaces_existing_file_atomically() {
    use std::io::{Read, Seek};
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "atomic", KeyKind::EcP256, "0A70");
    let outdir = t.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let bundle = outdir.join("trust.bundle");
    let old = b"old contents, not a bundle\n".repeat(100);
    std::fs::write(&bundle, &old).unwrap();
    let old_ino = std::fs::metadata(&bundle).unwrap().ino();
    let mut held = std::fs::File::open(&bundle).unwrap();

    let out = bundle_cmd(&signer.cert, &["--deny-serial", "0BAD"], &bundle);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let new = std::fs::read_to_string(&bundle).unwrap();
    assert!(new.starts_with("modseal-trust-bundle v1\n"), "{new}");
    assert!(
        new.to_uppercase().contains("0BAD"),
        "deny-serial missing:\n{new}"
    );
    assert!(!new.contains("old contents"), "{new}");
    // Replaced by a new file (rename), not rewritten in place.
    assert_ne!(std::fs::metadata(&bundle).unwrap().ino(), old_ino);
    let mut seen = Vec::new();
    held.rewind().unwrap();
    held.read_to_end(&mut seen).unwrap();
    assert_eq!(
        seen, old,
        "the old file changed under a reader: not an atomic replace"
    );
    assert_eq!(
        dir_names(&outdir),
        BTreeSet::from(["trust.bundle".to_string()]),
        "temporary files left behind"
    );

    // Again, over a real bundle, now without the denial.
    let out = bundle_cmd(&signer.cert, &[], &bundle);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let newer = std::fs::read_to_string(&bundle).unwrap();
    assert!(newer.starts_with("modseal-trust-bundle v1\n"));
    assert!(!newer.to_uppercase().contains("0BAD"), "{newer}");
    assert_eq!(
        dir_names(&outdir),
        BTreeSet::from(["trust.bundle".to_string()])
    );

    // --out naming an existing directory: a failure, nothing left behind,
    // the directory untouched.
    let sub = outdir.join("adir");
    std::fs::create_dir(&sub).unwrap();
    let out = bundle_cmd(&signer.cert, &[], &sub);
    assert_ne!(
        code(&out),
        0,
        "bundle --out DIR succeeded: {}",
        describe(&out)
    );
    assert!(sub.is_dir());
    assert_eq!(
        dir_names(&outdir),
        BTreeSet::from(["adir".to_string(), "trust.bundle".to_string()]),
        "temporary files left behind after a failed write"
    );
}

#[test]
fn bundle_bad_hex_is_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "badhex", KeyKind::EcP256, "0B");
    let outdir = t.join("out");
    std::fs::create_dir(&outdir).unwrap();
    let bundle = outdir.join("keep.bundle");
    std::fs::write(&bundle, "precious\n").unwrap();
    let mut problems = Vec::new();
    let sha63 = "a".repeat(63);
    let sha62 = "a".repeat(62);
    let sha66 = "a".repeat(66);
    let cases: Vec<(&str, &str)> = vec![
        ("--deny-serial", "xyz"),
        ("--deny-serial", "abc"), // odd number of digits
        ("--deny-serial", "0x12"),
        ("--deny-serial", "12 34"),
        ("--deny-serial", ""),
        ("--deny-serial", "g0"),
        ("--deny-key-id", "zz:zz"),
        ("--deny-key-id", "12:3"),
        ("--deny-module-sha256", "not-a-digest"),
        ("--deny-module-sha256", &sha63),
        ("--deny-module-sha256", &sha62),
        ("--deny-module-sha256", &sha66),
    ];
    for (flag, value) in cases {
        let out = bundle_cmd(&signer.cert, &[flag, value], &bundle);
        if code(&out) != 2 {
            problems.push(format!(
                "{flag} {value:?}: exit {}, want 2\n{}",
                code(&out),
                describe(&out)
            ));
        }
        if out.stderr.is_empty() {
            problems.push(format!("{flag} {value:?}: no message on stderr"));
        }
        if std::fs::read_to_string(&bundle).unwrap() != "precious\n" {
            problems.push(format!(
                "{flag} {value:?}: the existing --out file was changed"
            ));
            std::fs::write(&bundle, "precious\n").unwrap();
        }
    }
    assert_eq!(
        dir_names(&outdir),
        BTreeSet::from(["keep.bundle".to_string()])
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// Hex in bundles and flags is hex digits only (and ':'): no sign, no spaces.
#[test]
fn bundle_rejects_plus_signs_in_hex() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "plus", KeyKind::EcP256, "0C");
    let module = signed_module(
        &t.join("plus.ko"),
        &payload(7, 2000),
        &signer,
        "sha256",
        false,
    );
    let bundle = t.join("plus.bundle");
    let mut problems = Vec::new();
    for (flag, value) in [("--deny-serial", "+1+2"), ("--deny-key-id", "+a:+b")] {
        let out = bundle_cmd(&signer.cert, &[flag, value], &bundle);
        if code(&out) != 2 {
            problems.push(format!(
                "bundle {flag} {value}: exit {}, want 2; wrote:\n{}",
                code(&out),
                std::fs::read_to_string(&bundle).unwrap_or_default()
            ));
        }
    }
    let pem = std::fs::read_to_string(&signer.cert).unwrap();
    std::fs::write(
        &bundle,
        format!("modseal-trust-bundle v1\ndeny-serial +f\n{pem}"),
    )
    .unwrap();
    let out = modseal(verify_args(&[&bundle], &[], &[&module]));
    if code(&out) != 2 {
        problems.push(format!(
            "verify --trust (bundle with `deny-serial +f`): exit {}, want 2\n{}",
            code(&out),
            describe(&out)
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// 3. What `verify` visits
// ---------------------------------------------------------------------------

#[test]
fn verify_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "empty", KeyKind::EcP256, "0E");
    let empty = t.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = modseal(verify_args(&[&signer.cert], &[], &[&empty]));
    assert_eq!(
        code(&out),
        1,
        "nothing verified is a failure\n{}",
        describe(&out)
    );
    assert_eq!(
        stdout_lines(&out),
        vec!["0 verified, 0 failed".to_string()],
        "{}",
        describe(&out)
    );
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&empty]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = verify_report(&out);
    assert!(r.modules.is_empty());
    assert_eq!((r.verified, r.failed), (0, 0));
}

#[test]
fn verify_nonexistent_path_is_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "nx", KeyKind::EcP256, "0F");
    let good = signed_module(
        &t.join("good.ko"),
        &payload(8, 2000),
        &signer,
        "sha256",
        false,
    );
    let missing = t.join("no/such/dir");
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&missing]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = verify_report(&out);
    assert_eq!(r.modules.len(), 1, "{}", describe(&out));
    assert_eq!(r.modules[0].verdict, "io-error");
    assert_eq!(r.modules[0].path, missing.display().to_string());
    assert_eq!((r.verified, r.failed), (0, 1));

    // With a good module beside it: still exit 1, both reported, in argument order.
    let out = modseal(verify_args(&[&signer.cert], &[], &[&good, &missing]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 2, "{}", describe(&out));
    assert!(
        lines[0].starts_with(&format!("{}: io-error: ", missing.display())),
        "{lines:?}"
    );
    assert_eq!(lines[1], "1 verified, 1 failed");
}

#[test]
fn directory_walk_reports_only_modules_and_skips_directory_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "walk", KeyKind::EcP256, "10");
    let tree = t.join("tree");
    let elsewhere = t.join("elsewhere");
    signed_module(
        &tree.join("mod.ko"),
        &payload(9, 2000),
        &signer,
        "sha256",
        false,
    );
    // Modules outside the tree, reachable only through a directory symlink.
    signed_module(
        &elsewhere.join("outside.ko"),
        &payload(10, 2000),
        &signer,
        "sha256",
        false,
    );
    std::fs::write(elsewhere.join("unsigned.ko"), payload(11, 500)).unwrap();
    std::fs::write(tree.join("README"), "not a module\n").unwrap();
    std::fs::write(tree.join("mod.ko.bak"), payload(12, 500)).unwrap();
    std::fs::write(tree.join("notes.ko.txt"), payload(13, 500)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, tree.join("link")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, tree.join("linkdir.ko")).unwrap();
    // A loop through a directory symlink would never end if followed.
    std::os::unix::fs::symlink(&tree, tree.join("loop")).unwrap();

    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&tree]));
    let r = verify_report(&out);
    let paths: Vec<&str> = r.modules.iter().map(|m| m.path.as_str()).collect();
    // A symlink to a directory is not followed; `linkdir.ko` names a
    // directory, so it must not yield a verdict of its own other than a failure.
    let want = tree.join("mod.ko").display().to_string();
    assert!(
        paths.contains(&want.as_str()),
        "mod.ko not reported: {paths:?}\n{}",
        describe(&out)
    );
    for m in &r.modules {
        assert!(
            !m.path.contains("outside.ko") && !m.path.contains("unsigned.ko"),
            "followed a directory symlink: {}",
            m.path
        );
        assert!(
            !m.path.ends_with("README") && !m.path.ends_with(".bak") && !m.path.ends_with(".txt"),
            "reported a non-module file: {}",
            m.path
        );
        if m.path != want {
            assert!(
                m.path.ends_with("linkdir.ko") && m.verdict != "ok",
                "unexpected entry {m:?}"
            );
        }
    }
    assert_eq!(r.modules.iter().filter(|m| m.verdict == "ok").count(), 1);

    // The plain case: module + README + directory symlink → just the module.
    std::fs::remove_file(tree.join("linkdir.ko")).unwrap();
    let out = modseal(verify_args(&[&signer.cert], &[], &[&tree]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(stdout_lines(&out), vec!["1 verified, 0 failed".to_string()]);

    // A real directory is recursed whatever its name, even `*.ko`; the
    // directory itself is not a module.
    signed_module(
        &tree.join("dir.ko/inner.ko"),
        &payload(16, 2000),
        &signer,
        "sha256",
        false,
    );
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&tree]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let r = verify_report(&out);
    let paths: Vec<&str> = r.modules.iter().map(|m| m.path.as_str()).collect();
    let inner = tree.join("dir.ko/inner.ko").display().to_string();
    assert_eq!(paths, [inner.as_str(), want.as_str()], "{}", describe(&out));
}

/// Module names that cannot be read as files: each is one io-error.
#[test]
fn unreadable_module_entries_are_io_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "unread", KeyKind::EcP256, "11");
    let tree = t.join("tree");
    signed_module(
        &tree.join("a-good.ko"),
        &payload(14, 2000),
        &signer,
        "sha256",
        false,
    );
    // Tests run as root, so chmod 000 does not stop reads; use names whose
    // reads fail for every user.
    std::os::unix::fs::symlink(t.join("nowhere"), tree.join("dangling.ko")).unwrap();
    std::os::unix::fs::symlink("selfloop.ko", tree.join("selfloop.ko")).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", tree.join("eio.ko")).unwrap(); // read() → EIO
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&tree]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = verify_report(&out);
    let names: Vec<(String, String)> = r
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
    assert_eq!(
        names,
        [
            ("a-good.ko", "ok"),
            ("dangling.ko", "io-error"),
            ("eio.ko", "io-error"),
            ("selfloop.ko", "io-error"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect::<Vec<_>>(),
        "{}",
        describe(&out)
    );
    for m in r.modules.iter().filter(|m| m.verdict == "io-error") {
        assert!(
            !m.reason.trim().is_empty(),
            "io-error without a reason: {m:?}"
        );
        assert!(m.sha256.is_none(), "io-error with a digest: {m:?}");
    }
    assert_eq!((r.verified, r.failed), (1, 3));

    // Given directly as arguments, too.
    let out = modseal(verify_args(
        &[&signer.cert],
        &[],
        &[&tree.join("dangling.ko")],
    ));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let lines = stdout_lines(&out);
    assert!(lines[0].starts_with(&format!(
        "{}: io-error: ",
        tree.join("dangling.ko").display()
    )));
    assert_eq!(lines.last().unwrap(), "0 verified, 1 failed");
}

// The attacker may plant files: a FIFO or a device named like a module must
// give a named io-error, never hang the verifier or exhaust memory.
#[test]
fn fifo_named_like_a_module_does_not_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "fifo", KeyKind::EcP256, "12");
    let tree = t.join("tree");
    signed_module(
        &tree.join("a.ko"),
        &payload(15, 2000),
        &signer,
        "sha256",
        false,
    );
    let fifo = tree.join("f.ko");
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    let args = verify_args(&[&signer.cert], &["--json"], &[&tree]);
    let out = modseal_with_timeout(&args, Duration::from_secs(10)).unwrap_or_else(|| {
        panic!("`modseal verify` on a directory holding a FIFO named f.ko did not finish in 10 s")
    });
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = verify_report(&out);
    let f = r
        .modules
        .iter()
        .find(|m| m.path.ends_with("f.ko"))
        .unwrap_or_else(|| panic!("f.ko not reported\n{}", describe(&out)));
    assert_ne!(f.verdict, "ok");
}

// ---------------------------------------------------------------------------
// 4. Report formats, --jobs
// ---------------------------------------------------------------------------

/// A tree with one module of each kind of verdict; returns (tree, trust cert).
fn mixed_tree(t: &Path) -> (PathBuf, Cert) {
    let signer = leaf(t, "mixed", KeyKind::EcP256, "20");
    let stranger = leaf(t, "stranger", KeyKind::EcP256, "21");
    let tree = t.join("tree");
    signed_module(
        &tree.join("ok1.ko"),
        &payload(20, 3000),
        &signer,
        "sha256",
        false,
    );
    signed_module(
        &tree.join("sub/ok2.ko"),
        &payload(21, 3000),
        &signer,
        "sha384",
        true,
    );
    let work = t.join("work");
    std::fs::create_dir_all(&work).unwrap();
    signed_module(
        &work.join("ok3.ko"),
        &payload(22, 3000),
        &signer,
        "sha256",
        false,
    );
    xz_compress(&work.join("ok3.ko"), &tree.join("sub/ok3.ko.xz"));
    std::fs::write(tree.join("unsigned.ko"), payload(23, 1500)).unwrap();
    let bad = signed_module(
        &tree.join("badsig.ko"),
        &payload(24, 3000),
        &signer,
        "sha256",
        false,
    );
    xor_byte(&bad, 100, 0xff);
    signed_module(
        &tree.join("sub/unknown.ko"),
        &payload(25, 3000),
        &stranger,
        "sha256",
        false,
    );
    std::os::unix::fs::symlink(t.join("nowhere"), tree.join("sub/dangling.ko")).unwrap();
    (tree, signer)
}

const MIXED_VERDICTS: &[(&str, &str)] = &[
    ("badsig.ko", "bad-signature"),
    ("ok1.ko", "ok"),
    ("sub/dangling.ko", "io-error"),
    ("sub/ok2.ko", "ok"),
    ("sub/ok3.ko.xz", "ok"),
    ("sub/unknown.ko", "unknown-key"),
    ("unsigned.ko", "unsigned"),
];

#[test]
fn text_output_is_failure_lines_then_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let (tree, signer) = mixed_tree(tmp.path());
    let json_out = modseal(verify_args(
        &[&signer.cert],
        &["--json", "--jobs", "1"],
        &[&tree],
    ));
    assert_eq!(code(&json_out), 1, "{}", describe(&json_out));
    let r = verify_report(&json_out);
    let got: Vec<(String, String)> = r
        .modules
        .iter()
        .map(|m| {
            (
                Path::new(&m.path)
                    .strip_prefix(&tree)
                    .unwrap()
                    .display()
                    .to_string(),
                m.verdict.clone(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = MIXED_VERDICTS
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want, "{}", describe(&json_out));

    let text_out = modseal(verify_args(&[&signer.cert], &["--jobs", "1"], &[&tree]));
    assert_eq!(code(&text_out), 1, "{}", describe(&text_out));
    let text = String::from_utf8(text_out.stdout.clone()).expect("UTF-8 text");
    assert!(text.ends_with('\n'), "no final newline: {text:?}");
    let expected: String = r
        .modules
        .iter()
        .filter(|m| m.verdict != "ok")
        .map(|m| format!("{}: {}: {}\n", m.path, m.verdict, m.reason))
        .chain(std::iter::once(format!("{} verified, {} failed\n", 3, 4)))
        .collect();
    assert_eq!(text, expected, "text report");
    assert_eq!((r.verified, r.failed), (3, 4));
    for m in &r.modules {
        if m.verdict != "ok" {
            assert!(!m.reason.trim().is_empty(), "{m:?}");
        }
    }
}

#[test]
fn json_output_has_exact_keys_and_file_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let (tree, signer) = mixed_tree(tmp.path());
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&tree]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let v: Value = json(&out);
    let top: BTreeSet<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        top,
        BTreeSet::from(["failed", "modules", "verified"]),
        "{v}"
    );
    let modules = v["modules"].as_array().expect("modules array");
    assert_eq!(modules.len(), MIXED_VERDICTS.len());
    let want_keys = BTreeSet::from([
        "hash_algo",
        "key_id",
        "path",
        "reason",
        "sha256",
        "signer",
        "verdict",
    ]);
    let (mut ok, mut bad) = (0u64, 0u64);
    for m in modules {
        let keys: BTreeSet<&str> = m
            .as_object()
            .expect("module object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, want_keys, "{m}");
        for k in ["path", "verdict", "reason"] {
            assert!(m[k].is_string(), "{k} is not a string: {m}");
        }
        for k in ["signer", "key_id", "hash_algo", "sha256"] {
            assert!(
                m[k].is_string() || m[k].is_null(),
                "{k} neither string nor null: {m}"
            );
        }
        let verdict = m["verdict"].as_str().unwrap();
        assert!(VERDICTS.contains(&verdict), "{m}");
        if verdict == "ok" {
            ok += 1;
        } else {
            bad += 1;
        }
        let path = PathBuf::from(m["path"].as_str().unwrap());
        if verdict == "io-error" {
            assert!(m["sha256"].is_null(), "io-error with a digest: {m}");
            continue;
        }
        // The file as stored: the .ko.xz, not its decompressed module.
        assert_eq!(
            m["sha256"].as_str(),
            Some(sha256sum(&path).as_str()),
            "sha256 of {}",
            path.display()
        );
        if verdict == "ok" {
            for k in ["signer", "key_id", "hash_algo"] {
                assert!(m[k].is_string(), "ok without {k}: {m}");
            }
        }
    }
    assert_eq!(v["verified"].as_u64(), Some(ok));
    assert_eq!(v["failed"].as_u64(), Some(bad));
    // ok2 is signed with sha384 by subject key identifier.
    let ok2 = modules
        .iter()
        .find(|m| m["path"].as_str().unwrap().ends_with("sub/ok2.ko"))
        .unwrap();
    assert_eq!(
        ok2["hash_algo"].as_str().map(norm_algo).as_deref(),
        Some("sha384")
    );
    assert_eq!(
        ok2["key_id"].as_str().map(norm_hex),
        Some(norm_hex(&openssl_skid(&signer.cert)))
    );
}

#[test]
fn jobs_do_not_change_the_report_and_order_is_sorted() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "order", KeyKind::EcP256, "30");
    let tree = t.join("t");
    // Created in an order unlike the sorted one.
    let names = [
        "zeta.ko",
        "mid/deep/c.ko",
        "alpha.ko",
        "mid/b.ko",
        "Upper.ko",
        "m.ko",
        "mid/a.ko",
        "mid/zz/y.ko",
        "beta.ko",
        "mid/deep/a.ko",
        "0num.ko",
        "mid/aa.ko",
    ];
    for (i, n) in names.iter().enumerate() {
        let p = tree.join(n);
        if i % 3 == 2 {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, payload(40 + i as u8, 800)).unwrap(); // unsigned
        } else {
            signed_module(&p, &payload(40 + i as u8, 1500), &signer, "sha256", false);
        }
    }
    let work = t.join("work");
    std::fs::create_dir_all(&work).unwrap();
    signed_module(
        &work.join("g.ko"),
        &payload(60, 1500),
        &signer,
        "sha256",
        false,
    );
    gzip_compress(&work.join("g.ko"), &tree.join("mid/g.ko.gz"));

    // Byte-wise sort within each directory, depth first.
    let want: Vec<&str> = vec![
        "0num.ko",
        "Upper.ko",
        "alpha.ko",
        "beta.ko",
        "m.ko",
        "mid/a.ko",
        "mid/aa.ko",
        "mid/b.ko",
        "mid/deep/a.ko",
        "mid/deep/c.ko",
        "mid/g.ko.gz",
        "mid/zz/y.ko",
        "zeta.ko",
    ];
    let mut outputs = Vec::new();
    for jobs in ["1", "2", "5"] {
        let out = modseal(verify_args(
            &[&signer.cert],
            &["--json", "--jobs", jobs],
            &[&tree],
        ));
        assert_eq!(code(&out), 1, "--jobs {jobs}: {}", describe(&out));
        let r = verify_report(&out);
        let got: Vec<String> = r
            .modules
            .iter()
            .map(|m| {
                Path::new(&m.path)
                    .strip_prefix(&tree)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(got, want, "--jobs {jobs} order");
        outputs.push((jobs, out.stdout));
    }
    for (jobs, o) in &outputs[1..] {
        assert!(
            *o == outputs[0].1,
            "--jobs {jobs} JSON differs from --jobs 1:\n{}\n{}",
            String::from_utf8_lossy(o),
            String::from_utf8_lossy(&outputs[0].1)
        );
    }
    let t1 = modseal(verify_args(&[&signer.cert], &["--jobs", "1"], &[&tree]));
    let t2 = modseal(verify_args(&[&signer.cert], &["--jobs", "2"], &[&tree]));
    assert_eq!(t1.stdout, t2.stdout, "text differs between --jobs 1 and 2");

    // Several arguments: reported in argument order.
    let out = modseal(verify_args(
        &[&signer.cert],
        &["--json", "--jobs", "2"],
        &[
            &tree.join("zeta.ko"),
            &tree.join("mid/deep"),
            &tree.join("alpha.ko"),
        ],
    ));
    let r = verify_report(&out);
    let got: Vec<String> = r
        .modules
        .iter()
        .map(|m| {
            Path::new(&m.path)
                .strip_prefix(&tree)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        got,
        ["zeta.ko", "mid/deep/a.ko", "mid/deep/c.ko", "alpha.ko"]
    );
}

#[test]
fn jobs_zero_and_garbage_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "jobs", KeyKind::EcP256, "31");
    let m = signed_module(
        &t.join("j.ko"),
        &payload(61, 1000),
        &signer,
        "sha256",
        false,
    );
    for jobs in ["0", "-1", "abc", ""] {
        let out = modseal(verify_args(&[&signer.cert], &["--jobs", jobs], &[&m]));
        assert_eq!(code(&out), 2, "--jobs {jobs:?}: {}", describe(&out));
        assert!(!out.stderr.is_empty(), "--jobs {jobs:?}: no message");
        assert!(out.stdout.is_empty(), "--jobs {jobs:?}: printed a report");
    }
    let out = modseal(verify_args(&[&signer.cert], &["--jobs", "1"], &[&m]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

// ---------------------------------------------------------------------------
// 5. inspect
// ---------------------------------------------------------------------------

/// Issuer+serial signature by a CA-issued leaf: signer is the issuer's CN
/// (as modinfo shows it), sig_key the serial in `AA:BB:…` form.
#[test]
fn inspect_issuer_and_serial_matches_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let ca = make_cert(
        t,
        "ca",
        KeyKind::EcP384,
        "modseal cli inspect CA",
        "01",
        VALID_NOW,
        true,
        None,
    );
    let signer = make_cert(
        t,
        "signer",
        KeyKind::Rsa2048,
        "modseal cli inspect leaf",
        "9F00AB",
        VALID_NOW,
        false,
        Some(&ca),
    );
    let module = signed_module(
        &t.join("i.ko"),
        &payload(70, 5000),
        &signer,
        "sha256",
        false,
    );
    let out = modseal([OsString::from("inspect"), module.clone().into()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let f = inspect_fields(&out);
    let bytes = std::fs::read(&module).unwrap();
    let want_signer = openssl_issuer_cn(&signer.cert);
    assert_eq!(want_signer, "modseal cli inspect CA");
    assert_eq!(field(&f, "signer", &out), want_signer);
    let serial = openssl_serial(&signer.cert);
    assert_eq!(
        field(&f, "sig_key", &out),
        colon_upper(&serial),
        "serial {serial}"
    );
    assert_eq!(field(&f, "sig_key", &out), "9F:00:AB");
    let digest = openssl_digest_algorithm(&bytes, t);
    assert_eq!(
        norm_algo(field(&f, "sig_hashalgo", &out)),
        norm_algo(&digest)
    );
    assert_eq!(norm_algo(&digest), "sha256");

    let out = modseal([
        OsString::from("inspect"),
        "--json".into(),
        module.clone().into(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let v = json(&out);
    let entry = v
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(v.clone());
    assert_eq!(entry["signer"].as_str(), Some(want_signer.as_str()), "{v}");
    assert_eq!(entry["sig_key"].as_str(), Some("9F:00:AB"), "{v}");
    assert_eq!(
        entry["sig_hashalgo"].as_str().map(norm_algo).as_deref(),
        Some("sha256")
    );
}

/// `sign-file -k`: sig_key is the subject key identifier, and the payload
/// digest is that of the module without its signature, with the signature's hash.
#[test]
fn inspect_subject_key_id_matches_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "skid", KeyKind::EcP384, "0ABC");
    let body = payload(71, 7000);
    let module = signed_module(&t.join("k.ko"), &body, &signer, "sha384", true);
    let out = modseal([OsString::from("inspect"), module.clone().into()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let f = inspect_fields(&out);
    assert_eq!(
        field(&f, "sig_key", &out),
        openssl_skid(&signer.cert).to_uppercase()
    );
    let bytes = std::fs::read(&module).unwrap();
    let digest = openssl_digest_algorithm(&bytes, t);
    assert_eq!(
        norm_algo(field(&f, "sig_hashalgo", &out)),
        norm_algo(&digest)
    );
    assert_eq!(norm_algo(&digest), "sha384");
    let want = openssl_dgst("sha384", &body, t);
    let pd = field(&f, "payload_digest", &out).to_lowercase();
    assert!(
        pd.ends_with(&want) && pd.contains("384"),
        "payload_digest {pd}, want sha384:{want}"
    );
}

#[test]
fn inspect_unsigned_and_missing_files_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let unsigned = t.join("u.ko");
    std::fs::write(&unsigned, payload(72, 3000)).unwrap();
    let out = modseal([OsString::from("inspect"), unsigned.clone().into()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        !stdout_lines(&out).iter().any(|l| l.starts_with("sig_key:")),
        "an unsigned file has no sig_key\n{}",
        describe(&out)
    );
    let out = modseal([OsString::from("inspect"), "--json".into(), unsigned.into()]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    json(&out); // still valid JSON
    let out = modseal([OsString::from("inspect"), t.join("missing.ko").into()]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.ko"),
        "{}",
        describe(&out)
    );
}

#[test]
fn inspect_ko_xz_payload_digest_is_of_the_decompressed_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "xz", KeyKind::Rsa2048, "5A");
    let body = payload(73, 200_000);
    let plain = signed_module(&t.join("work/x.ko"), &body, &signer, "sha256", false);
    let xz = t.join("x.ko.xz");
    xz_compress(&plain, &xz);
    // What the payload is, found independently: xz -dc, then the trailer off.
    let decompressed = decompress_with_tool(&xz, 64 << 20).expect("xz -dc");
    let (stripped, _) = split_appended(&decompressed).expect("signed");
    assert_eq!(stripped, &body[..]);
    let want = hex(&Sha256::digest(stripped));

    let out = modseal([OsString::from("inspect"), xz.clone().into()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let f = inspect_fields(&out);
    let pd = field(&f, "payload_digest", &out).to_lowercase();
    assert_eq!(pd.rsplit(':').next().unwrap(), want, "payload_digest {pd}");
    assert_eq!(field(&f, "sig_key", &out), "5A");

    let out = modseal([OsString::from("inspect"), "--json".into(), xz.into()]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let v = json(&out);
    let entry = v
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(v.clone());
    let pd = entry["payload_digest"]
        .as_str()
        .expect("payload_digest string")
        .to_lowercase();
    assert_eq!(pd.rsplit(':').next().unwrap(), want, "{v}");
}

// ---------------------------------------------------------------------------
// 6. keys from-kernel, --help
// ---------------------------------------------------------------------------

#[test]
fn keys_from_kernel_rejects_a_non_kernel_file() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let not_kernel = t.join("not-a-kernel.img");
    std::fs::write(&not_kernel, payload(80, 100_000)).unwrap();
    let empty = t.join("empty-image");
    std::fs::write(&empty, b"").unwrap();
    let missing = t.join("missing-vmlinuz");
    for f in [&not_kernel, &empty, &missing] {
        let out = modseal([
            OsString::from("keys"),
            "from-kernel".into(),
            f.clone().into_os_string(),
        ]);
        assert_ne!(code(&out), 0, "{}: {}", f.display(), describe(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("BEGIN CERTIFICATE"),
            "{}: printed a certificate",
            f.display()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&f.display().to_string()),
            "the message does not name {}:\n{stderr}",
            f.display()
        );
    }
}

/// Without VMLINUZ, `keys from-kernel` takes the running kernel's image:
/// /boot/vmlinuz-$(uname -r), else /usr/lib/modules/$(uname -r)/vmlinuz
/// (Debian's 7.x packaging), and says which; with neither, an error names
/// both. (The lookup itself is unit-tested under a temp root in src/cli/keys.rs.)
#[test]
fn keys_from_kernel_defaults_to_the_running_kernel() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let release = release.trim();
    let boot = format!("/boot/vmlinuz-{release}");
    let usr = format!("/usr/lib/modules/{release}/vmlinuz");
    let out = modseal(["keys", "from-kernel"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let used = [&boot, &usr].into_iter().find(|p| Path::new(p).is_file());
    match used {
        Some(p) => assert!(
            stderr.contains(&format!("using {p}, the running kernel's image")),
            "{}",
            describe(&out)
        ),
        None => {
            assert_eq!(code(&out), 2, "{}", describe(&out));
            assert!(out.stdout.is_empty(), "{}", describe(&out));
            assert!(
                stderr.contains(&boot) && stderr.contains(&usr),
                "the error does not name both paths:\n{stderr}"
            );
        }
    }
}

/// The subcommands listed by `modseal --help` (and nested ones, "keys from-kernel").
fn subcommands(prefix: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = prefix.to_vec();
    args.push("--help");
    let out = modseal(&args);
    assert_eq!(code(&out), 0, "{args:?}: {}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut found = Vec::new();
    let mut in_cmds = false;
    for l in text.lines() {
        if l.trim_end() == "Commands:" {
            in_cmds = true;
            continue;
        }
        if in_cmds {
            if !l.starts_with("  ") {
                break;
            }
            let name = l.split_whitespace().next().unwrap_or("");
            if name.is_empty() || name == "help" {
                continue;
            }
            let mut cmd: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
            cmd.push(name.to_string());
            found.push(cmd);
        }
    }
    found
}

#[test]
fn help_for_every_subcommand_exits_0() {
    let top = subcommands(&[]);
    for want in ["verify", "inspect", "keys", "bundle"] {
        assert!(
            top.iter().any(|c| c == &[want.to_string()]),
            "`modseal --help` does not list {want}: {top:?}"
        );
    }
    let mut all = top.clone();
    for c in &top {
        let refs: Vec<&str> = c.iter().map(String::as_str).collect();
        all.extend(subcommands(&refs));
    }
    assert!(all.iter().any(|c| c == &["keys", "from-kernel"]), "{all:?}");
    for c in &all {
        for flag in ["--help", "-h"] {
            let mut a: Vec<&str> = c.iter().map(String::as_str).collect();
            a.push(flag);
            let out = modseal(&a);
            assert_eq!(code(&out), 0, "modseal {}: {}", a.join(" "), describe(&out));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains(&format!("Usage: modseal {}", c.join(" "))),
                "modseal {}: no usage line\n{text}",
                a.join(" ")
            );
        }
    }
    // `modseal help verify` as well.
    let out = modseal(["help", "verify"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

fn mentions_exit_statuses(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("exit") && ["0", "1", "2"].iter().all(|d| lower.contains(d))
}

#[test]
fn top_level_help_states_verify_exit_statuses() {
    let out = modseal(["--help"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(mentions_exit_statuses(&text), "{text}");
    assert!(text.contains("0 all verified"), "{text}");
    assert!(
        text.to_lowercase()
            .contains("2 usage or configuration error"),
        "{text}"
    );
}

// `verify --help` documents its exit statuses.
#[test]
fn verify_help_states_exit_statuses() {
    let out = modseal(["verify", "--help"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(mentions_exit_statuses(&text), "{text}");
}

// `boot --help` documents --cmdline, the rd.modseal parameters, the
// precedence and the allow-weaken rule.
#[test]
fn boot_help_documents_cmdline_and_allow_weaken() {
    for flag in ["--help", "-h"] {
        let out = modseal(["boot", flag]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        for want in [
            "--cmdline <FILE>",
            "/proc/cmdline",
            "rd.modseal=enforce|warn|off",
            "rd.modseal.pcr=N",
            "`allow-weaken yes` in",
            "sealed with the trust bundle",
            "last occurrence",
            "the config file cannot set them",
        ] {
            assert!(text.contains(want), "boot {flag}: no {want:?}\n{text}");
        }
    }
}

// An unreadable --cmdline file is a usage error before anything runs (no
// TPM is needed to see it), like an unreadable config file.
#[test]
fn boot_unreadable_cmdline_is_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("modseal.conf");
    let log = tmp.path().join("run/tpm2-measure.log");
    std::fs::write(&conf, format!("log = {}\n", log.display())).unwrap();
    let missing = tmp.path().join("no-such-cmdline");
    let out = modseal([
        "boot".as_ref(),
        "--config".as_ref(),
        conf.as_os_str(),
        "--tcti".as_ref(),
        "swtpm:host=127.0.0.1,port=1".as_ref(),
        "--cmdline".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: cannot read the kernel command line",
            missing.display()
        )),
        "{err}"
    );
    assert!(!log.exists(), "nothing may run");
}

// `rd.modseal=off` needs `allow-weaken yes` sealed in the bundle, which only
// the unseal can confirm: a config saying `allow-weaken = yes` and no TPM
// fail closed (enforce, failure logged), the config line named as ignored.
#[test]
fn boot_off_needs_a_sealed_allow_weaken() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("modseal.conf");
    let log = tmp.path().join("run/tpm2-measure.log");
    let cmdline = tmp.path().join("cmdline");
    std::fs::write(&cmdline, "ro quiet \"rd.modseal=off\"\n").unwrap();
    std::fs::write(
        &conf,
        format!("log = {}\nallow-weaken = yes\n", log.display()),
    )
    .unwrap();
    let out = modseal([
        "boot".as_ref(),
        "--config".as_ref(),
        conf.as_os_str(),
        "--modules".as_ref(),
        tmp.path().as_os_str(),
        "--system-root".as_ref(),
        tmp.path().as_os_str(),
        "--tcti".as_ref(),
        "swtpm:host=127.0.0.1,port=1".as_ref(),
        "--cmdline".as_ref(),
        cmdline.as_os_str(),
    ]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "ignored: rd.modseal=off: the sealed policy does not allow weakening enforce mode"
        ),
        "{err}"
    );
    assert!(
        err.contains("line 2: allow-weaken = yes: only the sealed trust bundle sets allow-weaken"),
        "{err}"
    );
    assert!(err.contains("no TPM"), "{err}");
    assert!(log.exists());
}

// ---------------------------------------------------------------------------
// 7. Control characters: one failure, one line
// ---------------------------------------------------------------------------

#[test]
fn control_characters_in_paths_stay_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let signer = leaf(t, "ctl", KeyKind::EcP256, "40");
    let tree = t.join("tree");
    let odd_dir = tree.join("dir\nwith\tctl");
    std::fs::create_dir_all(&odd_dir).unwrap();
    signed_module(
        &tree.join("good.ko"),
        &payload(90, 1000),
        &signer,
        "sha256",
        false,
    );
    let names: Vec<OsString> = vec![
        "bad\nname.ko".into(),
        "esc\x1b[2J\x1b[31m.ko".into(),
        "cr\rname.ko".into(),
        "del\x7fname.ko".into(),
        "nel\u{85}name.ko".into(),
        "bell\x07\x08back.ko".into(),
        OsStr::from_bytes(b"raw\xff\xfe.ko").to_owned(),
    ];
    let mut files = Vec::new();
    for n in &names {
        let p = tree.join(n);
        std::fs::write(&p, payload(91, 600)).unwrap(); // unsigned
        files.push(p);
    }
    let nested = odd_dir.join("in\nside.ko");
    std::fs::write(&nested, payload(92, 600)).unwrap();
    files.push(nested);
    let failures = files.len();

    let out = modseal(verify_args(&[&signer.cert], &[], &[&tree]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.last(), Some(&""), "no final newline: {text:?}");
    let lines = &lines[..lines.len() - 1];
    assert_eq!(
        lines.len(),
        failures + 1,
        "want one line per failure plus the summary:\n{text:?}"
    );
    assert_eq!(lines[failures], format!("1 verified, {failures} failed"));
    let tree_prefix = format!("{}/", tree.display());
    for l in &lines[..failures] {
        assert!(
            !l.chars().any(char::is_control),
            "control character left in {l:?}"
        );
        assert!(l.starts_with(&tree_prefix), "{l:?}");
        assert!(l.contains(".ko: unsigned: "), "{l:?}");
    }

    // JSON keeps the real (UTF-8) path, escaped by JSON itself.
    let out = modseal(verify_args(&[&signer.cert], &["--json"], &[&tree]));
    let r = verify_report(&out);
    let reported: BTreeSet<&str> = r.modules.iter().map(|m| m.path.as_str()).collect();
    for f in &files {
        if let Some(s) = f.to_str() {
            assert!(
                reported.contains(s),
                "JSON lost the path {s:?}: {reported:?}"
            );
        }
    }
    assert_eq!(r.modules.len(), failures + 1);
}

/// Reasons quote certificate names, which may hold control characters: a
/// signer whose CN has a newline and an escape sequence, and a module whose
/// signature no longer matches.
#[test]
fn control_characters_in_reasons_stay_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let evil_cn = "evil\nsigner\x1b[31m\rX";
    let signer = make_cert(
        t,
        "evil",
        KeyKind::EcP256,
        evil_cn,
        "66",
        EXPIRED,
        false,
        None,
    );
    let text = String::from_utf8_lossy(
        &tool(
            "openssl",
            &[
                os("x509"),
                os("-noout"),
                os("-subject"),
                os("-in"),
                signer.cert.as_os_str(),
            ],
        )
        .stdout,
    )
    .to_string();
    assert!(
        text.contains("\\0A") || text.contains('\n'),
        "CN lost its newline: {text:?}"
    );
    let tree = t.join("tree");
    let bad = signed_module(
        &tree.join("bad.ko"),
        &payload(93, 1000),
        &signer,
        "sha256",
        false,
    );
    xor_byte(&bad, 50, 0xff);
    signed_module(
        &tree.join("old.ko"),
        &payload(94, 1000),
        &signer,
        "sha256",
        false,
    );

    let out = modseal(verify_args(
        &[&signer.cert],
        &["--check-time", "--jobs", "1"],
        &[&tree],
    ));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        3,
        "two failures, one line each, plus the summary:\n{stdout:?}"
    );
    assert!(
        lines[0].starts_with(&format!("{}: ", bad.display())),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}: untrusted-chain: ",
            tree.join("old.ko").display()
        )),
        "{lines:?}"
    );
    for l in &lines[..2] {
        assert!(
            !l.chars().any(char::is_control),
            "control character in {l:?}"
        );
    }
    assert_eq!(lines[2], "0 verified, 2 failed");
}

/// A crypto-agile firmware log (sha256 only): the header, then a PCR 9
/// `EV_EVENT_TAG` and a PCR 9 separator, each measured as the firmware does.
fn firmware_log_bytes() -> Vec<u8> {
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(0u32.to_le_bytes());
    spec.extend([0, 2, 0, 2]);
    spec.extend(1u32.to_le_bytes());
    spec.extend(0x000Bu16.to_le_bytes());
    spec.extend(32u16.to_le_bytes());
    spec.push(0);
    let mut log = Vec::new();
    log.extend(0u32.to_le_bytes());
    log.extend(3u32.to_le_bytes());
    log.extend([0u8; 20]);
    log.extend((spec.len() as u32).to_le_bytes());
    log.extend(spec);
    for (ty, data) in [(6u32, &b"initrd\0"[..]), (4, &[0u8; 4][..])] {
        log.extend(9u32.to_le_bytes());
        log.extend(ty.to_le_bytes());
        log.extend(1u32.to_le_bytes());
        log.extend(0x000Bu16.to_le_bytes());
        log.extend(Sha256::digest(data));
        log.extend((data.len() as u32).to_le_bytes());
        log.extend(data);
    }
    log
}

#[test]
fn log_show_firmware() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("binary_bios_measurements");
    let bytes = firmware_log_bytes();
    std::fs::write(&path, &bytes).unwrap();
    let out = modseal([
        "log".as_ref(),
        "show".as_ref(),
        "--firmware".as_ref(),
        path.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = hex(&Sha256::digest(b"initrd\0"));
    let sep = Sha256::digest([0u8; 4]);
    let pcr9 = Sha256::digest(
        [
            Sha256::digest([[0u8; 32], Sha256::digest(b"initrd\0").into()].concat()).as_slice(),
            sep.as_slice(),
        ]
        .concat(),
    );
    assert!(stdout.contains("firmware event log: spec 2.0"), "{stdout}");
    assert!(stdout.contains("algorithms: sha256 (32 bytes)"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "event 1: PCR 9, EV_EVENT_TAG, sha256:{tag}, \"initrd\""
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("event 2: PCR 9, EV_SEPARATOR, sha256:"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("pcr 9 sha256 {}", hex(&pcr9))),
        "{stdout}"
    );

    // Truncated: exit 2, naming the file and the offset.
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let out = modseal([
        "log".as_ref(),
        "show".as_ref(),
        "--firmware".as_ref(),
        path.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("binary_bios_measurements") && stderr.contains("byte offset"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
