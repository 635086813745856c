//! Shared helpers for the integration tests that run the `modseal` binary.
//!
//! - The binary: `MODSEAL_BIN` if set (CI points it at the static musl release
//!   binary), else the one Cargo built for this test run.
//! - The fixture corpus: `MODSEAL_FIXTURES` if set, else
//!   `scripts/make-fixtures.sh target/fixtures`, made once per test process.
//!
//! Each test binary includes this module on its own (`mod common;`) and uses
//! part of it, hence `allow(dead_code)`. By topic, re-exported here so that
//! every helper is `common::name`:
//! - [`output`]: exit code, stdout/stderr as text, JSON, `describe`;
//! - [`commands`]: running other programs (`run`) and tpm2-tools;
//! - [`machine`]: the real Debian kernels and a machine enrolled from one;
//! - [`vm`]: the QEMU boot tests' work directory, binary and serial decoding.
//!
//! `swtpm.rs` is not one of them: the TPM tests include it themselves
//! (`#[path = "common/swtpm.rs"] mod swtpm;`).
#![allow(dead_code)]

mod commands;
mod machine;
mod output;
mod vm;

// Unused in a test binary that needs none of a module, like dead code.
#[allow(unused_imports)]
pub use {commands::*, machine::*, output::*, vm::*};

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The modseal binary under test.
pub fn modseal_bin() -> PathBuf {
    match std::env::var_os("MODSEAL_BIN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "MODSEAL_BIN={} is not a file", p.display());
            p
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_modseal")),
    }
}

/// Runs modseal with the given arguments.
pub fn modseal<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    Command::new(modseal_bin())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {:?}: {e}", modseal_bin().display(), args))
}

/// One module entry of `verify --json`.
#[derive(Debug, Clone)]
pub struct ModuleReport {
    pub path: String,
    pub verdict: String,
    pub reason: String,
    pub signer: Option<String>,
    pub key_id: Option<String>,
    pub hash_algo: Option<String>,
    pub sha256: Option<String>,
}

/// `verify --json` output: the modules and the two counts.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub modules: Vec<ModuleReport>,
    pub verified: u64,
    pub failed: u64,
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Parses `{"modules":[{"path","verdict","reason","signer","key_id","hash_algo","sha256"}],"verified":N,"failed":M}`.
pub fn verify_report(out: &Output) -> VerifyReport {
    let v = json(out);
    let ctx = || describe(out);
    let modules = v
        .get("modules")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no \"modules\" array\n{}", ctx()));
    let modules = modules
        .iter()
        .map(|m| {
            for key in [
                "path",
                "verdict",
                "reason",
                "signer",
                "key_id",
                "hash_algo",
                "sha256",
            ] {
                assert!(
                    m.get(key).is_some(),
                    "module entry lacks \"{key}\": {m}\n{}",
                    ctx()
                );
            }
            ModuleReport {
                path: opt_str(m, "path").unwrap_or_else(|| panic!("module without a path: {m}")),
                verdict: opt_str(m, "verdict")
                    .unwrap_or_else(|| panic!("module without a verdict: {m}")),
                reason: opt_str(m, "reason").unwrap_or_default(),
                signer: opt_str(m, "signer"),
                key_id: opt_str(m, "key_id"),
                hash_algo: opt_str(m, "hash_algo"),
                sha256: opt_str(m, "sha256"),
            }
        })
        .collect();
    let count = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("no numeric \"{k}\"\n{}", ctx()))
    };
    VerifyReport {
        modules,
        verified: count("verified"),
        failed: count("failed"),
    }
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex(&Sha256::digest(&bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// XORs the byte at `at` of a file with `mask` (tampering with a file).
pub fn xor_byte(path: &Path, at: usize, mask: u8) {
    let mut b = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    b[at] ^= mask;
    std::fs::write(path, b).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Flips the lowest bit of the byte at `at` of a file.
pub fn flip_byte(path: &Path, at: usize) {
    xor_byte(path, at, 0x01)
}

/// Hex with separators and case removed, for comparing key ids and serials.
pub fn norm_hex(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// A hash algorithm name without case or punctuation ("SHA3-256" → "sha3256").
pub fn norm_algo(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

// ---------------------------------------------------------------------------
// The fixture corpus
// ---------------------------------------------------------------------------

/// One row of `cases.tsv`.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub module: String,
    pub trust: Vec<String>,
    pub certs: Vec<String>,
    pub verdict: String,
    pub note: String,
}

impl Case {
    pub fn module_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.module)
    }
    pub fn trust_paths(&self, dir: &Path) -> Vec<PathBuf> {
        self.trust.iter().map(|t| dir.join(t)).collect()
    }
    pub fn cert_paths(&self, dir: &Path) -> Vec<PathBuf> {
        self.certs.iter().map(|c| dir.join(c)).collect()
    }
    /// `--trust T… --cert C…`
    pub fn trust_args(&self, dir: &Path) -> Vec<std::ffi::OsString> {
        let mut a = Vec::new();
        for t in self.trust_paths(dir) {
            a.push("--trust".into());
            a.push(t.into_os_string());
        }
        for c in self.cert_paths(dir) {
            a.push("--cert".into());
            a.push(c.into_os_string());
        }
        a
    }
    pub fn expect_ok(&self) -> bool {
        self.verdict == "ok"
    }
}

pub const VERDICTS: &[&str] = &[
    "ok",
    "unsigned",
    "unknown-key",
    "bad-signature",
    "malformed",
    "unsupported-algorithm",
    "denied",
    "untrusted-chain",
    "io-error",
];

fn list(field: &str) -> Vec<String> {
    if field == "-" || field.is_empty() {
        Vec::new()
    } else {
        field.split(',').map(str::to_string).collect()
    }
}

/// Reads `DIR/cases.tsv`.
pub fn read_cases(dir: &Path) -> Vec<Case> {
    let path = dir.join("cases.tsv");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("cases.tsv is empty");
    assert_eq!(
        header, "name\tmodule-file\ttrust-files\tcert-files\texpected-verdict\tnote",
        "unexpected cases.tsv header"
    );
    let cases: Vec<Case> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 6, "cases.tsv row does not have 6 fields: {l:?}");
            let c = Case {
                name: f[0].to_string(),
                module: f[1].to_string(),
                trust: list(f[2]),
                certs: list(f[3]),
                verdict: f[4].to_string(),
                note: f[5].to_string(),
            };
            assert!(
                VERDICTS.contains(&c.verdict.as_str()),
                "unknown verdict in {l:?}"
            );
            c
        })
        .collect();
    assert!(
        cases.len() > 50,
        "only {} cases in {}",
        cases.len(),
        path.display()
    );
    cases
}

/// The fixture directory, made on first use (once per test process).
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("MODSEAL_FIXTURES").filter(|d| !d.is_empty()) {
            let d = PathBuf::from(d);
            assert!(
                d.join("cases.tsv").is_file(),
                "MODSEAL_FIXTURES={} has no cases.tsv (make it with scripts/make-fixtures.sh DIR)",
                d.display()
            );
            return d;
        }
        let dir = repo().join("target").join("fixtures");
        let script = repo().join("scripts").join("make-fixtures.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            status.success(),
            "{} {} failed ({status}); run scripts/setup.sh for its tools",
            script.display(),
            dir.display()
        );
        dir
    })
}

/// The cases of the fixture corpus.
pub fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| read_cases(fixtures()))
}

/// Groups cases by their trust and cert files, in table order.
pub fn by_trust_set(cases: &[Case]) -> BTreeMap<(Vec<String>, Vec<String>), Vec<Case>> {
    let mut m: BTreeMap<(Vec<String>, Vec<String>), Vec<Case>> = BTreeMap::new();
    for c in cases {
        m.entry((c.trust.clone(), c.certs.clone()))
            .or_default()
            .push(c.clone());
    }
    m
}

// ---------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------

/// Runs a tool and returns its output; panics if it cannot be started.
pub fn tool(program: &str, args: &[&std::ffi::OsStr]) -> Output {
    output_of(Command::new(program).args(args))
}

/// Decompresses with the system tool, reading at most `limit + 1` bytes.
/// `None` when the tool reports an error or the output exceeds `limit`.
pub fn decompress_with_tool(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let program = match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => "gzip",
        Some("xz") => "xz",
        Some("zst") => "zstd",
        _ => return std::fs::read(path).ok(),
    };
    let mut child = Command::new(program)
        .arg("-dc")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run scripts/setup.sh)"));
    let mut buf = Vec::new();
    let stdout = child.stdout.take().expect("piped stdout");
    let read = stdout.take(limit + 1).read_to_end(&mut buf);
    if buf.len() as u64 > limit || read.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let status = child.wait().ok()?;
    status.success().then_some(buf)
}

pub const MAGIC: &[u8] = b"~Module signature appended~\n";

/// Splits `payload ‖ PKCS#7 ‖ 12-byte struct ‖ magic` using only the magic and
/// `sig_len` (no other trailer rule). `None` if that is not possible.
pub fn split_appended(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if data.len() < MAGIC.len() + 12 || !data.ends_with(MAGIC) {
        return None;
    }
    let body = &data[..data.len() - MAGIC.len()];
    let st = &body[body.len() - 12..];
    let sig_len = u32::from_be_bytes([st[8], st[9], st[10], st[11]]) as usize;
    let rest = body.len() - 12;
    if sig_len == 0 || sig_len > rest {
        return None;
    }
    Some((&body[..rest - sig_len], &body[rest - sig_len..rest]))
}

/// Every certificate in the files as PEM (DER files converted by openssl).
pub fn pem_of(files: &[PathBuf]) -> String {
    let mut s = String::new();
    for f in files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        if bytes.windows(10).any(|w| w == b"-----BEGIN") {
            s.push_str(&String::from_utf8_lossy(&bytes));
            s.push('\n');
        } else {
            let out = tool(
                "openssl",
                &[
                    "x509".as_ref(),
                    "-inform".as_ref(),
                    "DER".as_ref(),
                    "-in".as_ref(),
                    f.as_os_str(),
                ],
            );
            assert!(
                out.status.success(),
                "openssl x509 -inform DER {}: {}",
                f.display(),
                describe(&out)
            );
            s.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    }
    s
}

/// OpenSSL's answer for one module: `Ok(())` if it verifies, else why not.
///
/// 1. `openssl cms -verify -binary -inform DER -in SIG -content PAYLOAD
///    -nointern -noverify -certfile TRUST+CERTS -signer SIGNER` checks the
///    signature with the signer looked up among the given certificates;
/// 2. `openssl verify -partial_chain -purpose any -CAfile TRUST -untrusted
///    CERTS SIGNER` checks the signer's chain to an anchor (any anchor may be a
///    leaf or an intermediate, as in modseal).
///
/// Two steps because `openssl cms -verify` builds chains only from
/// certificates inside the message, not from `-certfile`.
pub fn openssl_verdict(
    module: &Path,
    trust: &[PathBuf],
    certs: &[PathBuf],
    work: &Path,
) -> Result<(), String> {
    const LIMIT: u64 = 64 << 20;
    let data = decompress_with_tool(module, LIMIT).ok_or("decompression failed or too large")?;
    let (payload, sig) = split_appended(&data).ok_or("no appended signature")?;
    let p_payload = work.join("payload");
    let p_sig = work.join("sig.p7");
    let p_ca = work.join("ca.pem");
    let p_certs = work.join("certs.pem");
    let p_all = work.join("all.pem");
    let p_signer = work.join("signer.pem");
    std::fs::write(&p_payload, payload).expect("write payload");
    std::fs::write(&p_sig, sig).expect("write sig");
    let ca = pem_of(trust);
    let extra = pem_of(certs);
    std::fs::write(&p_ca, &ca).expect("write ca");
    std::fs::write(&p_certs, &extra).expect("write certs");
    std::fs::write(&p_all, format!("{ca}\n{extra}")).expect("write all");
    let _ = std::fs::remove_file(&p_signer);
    let o = |p: &Path| p.as_os_str().to_owned();
    let cms = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-nointern",
            "-noverify",
        ])
        .arg("-in")
        .arg(o(&p_sig))
        .arg("-content")
        .arg(o(&p_payload))
        .arg("-certfile")
        .arg(o(&p_all))
        .arg("-signer")
        .arg(o(&p_signer))
        .args(["-out", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl cms");
    if !cms.status.success() {
        return Err(format!(
            "cms: {}",
            String::from_utf8_lossy(&cms.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let mut v = Command::new("openssl");
    v.args(["verify", "-partial_chain", "-purpose", "any", "-CAfile"])
        .arg(o(&p_ca));
    if !extra.trim().is_empty() {
        v.arg("-untrusted").arg(o(&p_certs));
    }
    let ver = v
        .arg(o(&p_signer))
        .stdin(Stdio::null())
        .output()
        .expect("run openssl verify");
    if !ver.status.success() {
        return Err(format!(
            "chain: {}",
            String::from_utf8_lossy(&ver.stdout).trim()
        ));
    }
    Ok(())
}

/// Subject key identifier (normalised hex) and serial (normalised hex) of the
/// first certificate in a PEM or DER file, read with openssl.
pub fn skid_and_serial(cert: &Path) -> (Option<String>, String) {
    let pem = pem_of(&[cert.to_path_buf()]);
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(tmp.path(), pem).expect("write temp pem");
    let out = tool(
        "openssl",
        &[
            "x509".as_ref(),
            "-noout".as_ref(),
            "-serial".as_ref(),
            "-ext".as_ref(),
            "subjectKeyIdentifier".as_ref(),
            "-in".as_ref(),
            tmp.path().as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "openssl x509 {}: {}",
        cert.display(),
        describe(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let serial = text
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .map(norm_hex)
        .expect("openssl printed no serial");
    let mut skid = None;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains("Subject Key Identifier") {
            skid = lines.next().map(norm_hex);
        }
    }
    (skid, serial)
}

/// Every `*.ko*` file under a directory (what a directory walk should visit).
pub fn module_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let rd = std::fs::read_dir(d).unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display()));
        for e in rd {
            let e = e.expect("dir entry");
            let ft = e.file_type().expect("file type");
            let p = e.path();
            if ft.is_dir() {
                walk(&p, out);
            } else if ft.is_file() {
                let n = e.file_name().to_string_lossy().to_string();
                if [".ko", ".ko.gz", ".ko.xz", ".ko.zst"]
                    .iter()
                    .any(|x| n.ends_with(x))
                {
                    out.push(p);
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}
