//! Trust anchors, untrusted intermediates and the denylist, loaded from
//! certificate files or from a modseal trust bundle.
//!
//! The trust bundle is one text file:
//!
//! ```text
//! modseal-trust-bundle v1
//! # comments and blank lines are ignored
//! deny-key-id 4d:3a:…          # a certificate's subject key id, or a signature's key id
//! deny-serial 1F2E…            # a certificate serial, as `openssl x509 -serial` prints it
//! deny-module-sha256 9f86d0…   # the SHA-256 of a module file as stored on disk
//! -----BEGIN CERTIFICATE-----  # one or more anchors
//! …
//! -----END CERTIFICATE-----
//! ```
//!
//! Its SHA-256 (of the exact file bytes) is what gets sealed in the TPM.

use std::path::{Path, PathBuf};

use x509_parser::pem::Pem;

use crate::trust::cert::{strip_sign_byte, CertError, Certificate};

pub const BUNDLE_HEADER: &str = "modseal-trust-bundle v1";
/// A trust file larger than this is refused before parsing.
pub const MAX_TRUST_FILE: usize = 16 * 1024 * 1024;
const MAX_CERTS_PER_FILE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: line {line}: {reason}")]
    Bundle {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Denylist {
    pub key_ids: Vec<Vec<u8>>,
    pub serials: Vec<Vec<u8>>,
    pub module_sha256: Vec<[u8; 32]>,
}

impl Denylist {
    pub fn is_empty(&self) -> bool {
        self.key_ids.is_empty() && self.serials.is_empty() && self.module_sha256.is_empty()
    }

    /// Why `cert` is denied, if it is.
    pub fn denies_cert(&self, cert: &Certificate) -> Option<String> {
        if let Some(skid) = &cert.skid {
            if self.key_ids.iter().any(|k| k == skid) {
                return Some(format!(
                    "key id {} of '{}' is denied",
                    crate::util::hex::colon(skid),
                    cert.name
                ));
            }
        }
        let serial = strip_sign_byte(&cert.serial);
        if self.serials.iter().any(|s| strip_sign_byte(s) == serial) {
            return Some(format!(
                "certificate serial {} ('{}') is denied",
                cert.serial_hex(),
                cert.name
            ));
        }
        None
    }
}

#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    pub anchors: Vec<Certificate>,
    pub intermediates: Vec<Certificate>,
    pub deny: Denylist,
}

impl TrustStore {
    /// Adds anchors from a PEM or DER certificate file or a trust bundle.
    pub fn add_trust_file(&mut self, path: &Path) -> Result<(), TrustError> {
        let bytes = read_limited(path)?;
        if looks_like_bundle(&bytes) {
            let (certs, deny) = parse_bundle(path, &bytes)?;
            self.anchors.extend(certs);
            self.deny.key_ids.extend(deny.key_ids);
            self.deny.serials.extend(deny.serials);
            self.deny.module_sha256.extend(deny.module_sha256);
        } else {
            self.anchors.extend(parse_cert_file(path, &bytes)?);
        }
        Ok(())
    }

    /// Adds certificates trusted only through a chain to an anchor.
    pub fn add_cert_file(&mut self, path: &Path) -> Result<(), TrustError> {
        let bytes = read_limited(path)?;
        self.intermediates.extend(parse_cert_file(path, &bytes)?);
        Ok(())
    }
}

/// Most certificate files taken from one `certs` directory: a bound on the
/// work an attacker who can add files to the initramfs can cause.
pub const MAX_CERT_FILES: usize = 256;

impl TrustStore {
    /// Adds untrusted certificates from a file, or from every regular file
    /// of a directory (in name order, at most [`MAX_CERT_FILES`]).
    pub fn add_cert_path(&mut self, path: &Path) -> Result<(), TrustError> {
        let io = |source| TrustError::Io {
            path: path.to_owned(),
            source,
        };
        if !std::fs::metadata(path).map_err(io)?.is_dir() {
            return self.add_cert_file(path);
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_file() {
                files.push(entry.path());
            }
            if files.len() > MAX_CERT_FILES {
                return Err(TrustError::Invalid {
                    path: path.to_owned(),
                    reason: format!("more than {MAX_CERT_FILES} certificate files"),
                });
            }
        }
        files.sort();
        for f in files {
            self.add_cert_file(&f)?;
        }
        Ok(())
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, TrustError> {
    use crate::util::read::{read_capped, ReadError};
    read_capped(path, MAX_TRUST_FILE).map_err(|e| match e {
        ReadError::Open { source, .. }
        | ReadError::Stat { source, .. }
        | ReadError::Read { source, .. } => TrustError::Io {
            path: path.to_owned(),
            source,
        },
        other => TrustError::Invalid {
            path: path.to_owned(),
            reason: match other {
                ReadError::TooLarge { size, .. } => {
                    format!("{size} bytes, larger than the {MAX_TRUST_FILE}-byte limit")
                }
                ReadError::NotRegular { .. } => "not a regular file".into(),
                _ => format!("grew past the {MAX_TRUST_FILE}-byte limit while being read"),
            },
        },
    })
}

fn looks_like_bundle(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with("modseal-trust-bundle"))
}

/// Parses PEM (one or more CERTIFICATE blocks) or a single DER certificate.
pub fn parse_cert_file(path: &Path, bytes: &[u8]) -> Result<Vec<Certificate>, TrustError> {
    let invalid = |reason: String| TrustError::Invalid {
        path: path.to_owned(),
        reason,
    };
    if bytes.is_empty() {
        return Err(invalid(
            "empty file, expected PEM or DER certificates".into(),
        ));
    }
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = pem_certificates(bytes).map_err(invalid)?;
        if certs.is_empty() {
            return Err(invalid("no CERTIFICATE block in PEM file".into()));
        }
        return Ok(certs);
    }
    Certificate::from_der(bytes)
        .map(|c| vec![c])
        .map_err(|CertError(e)| invalid(format!("neither PEM nor a DER certificate: {e}")))
}

fn pem_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, String> {
    let mut out = Vec::new();
    for (i, pem) in Pem::iter_from_buffer(bytes).enumerate() {
        let pem: Pem = pem.map_err(|e| format!("PEM block {}: {e}", i + 1))?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        if out.len() == MAX_CERTS_PER_FILE {
            return Err(format!("more than {MAX_CERTS_PER_FILE} certificates"));
        }
        let cert = Certificate::from_der(&pem.contents)
            .map_err(|e| format!("certificate {}: {e}", i + 1))?;
        out.push(cert);
    }
    Ok(out)
}

/// Parses a trust bundle: header, directives, PEM anchors.
pub fn parse_bundle(path: &Path, bytes: &[u8]) -> Result<(Vec<Certificate>, Denylist), TrustError> {
    let text = std::str::from_utf8(bytes).map_err(|e| TrustError::Invalid {
        path: path.to_owned(),
        reason: format!("trust bundle is not UTF-8 text: {e}"),
    })?;
    let err = |line: usize, reason: String| TrustError::Bundle {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut deny = Denylist::default();
    let mut seen_header = false;
    let mut in_pem = false;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        if in_pem {
            in_pem = !line.starts_with("-----END ");
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !seen_header {
            if line != BUNDLE_HEADER {
                return Err(err(
                    line_no,
                    format!("expected '{BUNDLE_HEADER}', found '{line}'"),
                ));
            }
            seen_header = true;
            continue;
        }
        if line.starts_with("-----BEGIN ") {
            in_pem = true;
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = value.split('#').next().unwrap_or("").trim();
        let bytes = crate::util::hex::parse(value).ok_or_else(|| {
            err(
                line_no,
                format!("'{key}' needs a hex value, found '{value}'"),
            )
        })?;
        match key {
            "deny-key-id" => deny.key_ids.push(bytes),
            "deny-serial" => deny.serials.push(bytes),
            "deny-module-sha256" => {
                let d: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| err(line_no, "deny-module-sha256 needs 64 hex digits".into()))?;
                deny.module_sha256.push(d);
            }
            other => return Err(err(line_no, format!("unknown directive '{other}'"))),
        }
    }
    if in_pem {
        return Err(err(
            text.lines().count(),
            "PEM block without END line".into(),
        ));
    }
    let certs = pem_certificates(bytes).map_err(|reason| TrustError::Invalid {
        path: path.to_owned(),
        reason,
    })?;
    if certs.is_empty() {
        return Err(TrustError::Invalid {
            path: path.to_owned(),
            reason: "trust bundle holds no certificate".into(),
        });
    }
    Ok((certs, deny))
}

/// Writes a bundle's text for the given anchors and denylist.
pub fn render_bundle(anchors: &[Certificate], deny: &Denylist) -> String {
    let mut out = format!("{BUNDLE_HEADER}\n");
    for k in &deny.key_ids {
        out.push_str(&format!("deny-key-id {}\n", crate::util::hex::colon(k)));
    }
    for s in &deny.serials {
        out.push_str(&format!("deny-serial {}\n", crate::util::hex::upper(s)));
    }
    for d in &deny.module_sha256 {
        out.push_str(&format!(
            "deny-module-sha256 {}\n",
            crate::util::hex::lower(d)
        ));
    }
    for a in anchors {
        out.push_str(&format!("# {}\n", a.name));
        out.push_str(&crate::util::pem::encode("CERTIFICATE", &a.der));
    }
    out
}
