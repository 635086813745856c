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
//! mode enforce                 # sealed settings (see `settings`): mode, pcr,
//! pcr 12                       #   allow-weaken, allow-install
//! -----BEGIN CERTIFICATE-----  # one or more anchors
//! …
//! -----END CERTIFICATE-----
//! kernel-signer                # the next certificate is a kernel signer:
//! -----BEGIN CERTIFICATE-----  #   a Secure Boot CA whose signed kernel
//! …                            #   images vouch for their built-in keys
//! -----END CERTIFICATE-----
//! ```
//!
//! A kernel signer is never a module anchor: modules verify against the
//! certificates built into a kernel image only after that image's
//! Authenticode signature chains to it (see `trust::derived`).
//!
//! Its SHA-256 (of the exact file bytes) is what gets sealed in the TPM.

use std::path::Path;

use x509_parser::pem::Pem;

use crate::trust::cert::{strip_sign_byte, Certificate};
use crate::trust::error::{BundleProblem, Error, FileProblem};
use crate::trust::settings::{Settings, SettingsParser};

/// The only PEM boundary lines a bundle may have (CRLF line ends aside).
const PEM_BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const PEM_END: &str = "-----END CERTIFICATE-----";

/// The first line of a trust bundle.
pub const BUNDLE_HEADER: &str = "modseal-trust-bundle v1";
/// A trust file larger than this is refused before parsing.
pub const MAX_TRUST_FILE: usize = 16 * 1024 * 1024;
const MAX_CERTS_PER_FILE: usize = 4096;

/// The trust layer's error, under the name other layers have used.
pub type TrustError = Error;

/// What the trust bundle refuses even when a chain to an anchor exists.
#[derive(Debug, Clone, Default)]
pub struct Denylist {
    /// Subject key identifiers of certificates, and key identifiers that
    /// signatures name.
    pub key_ids: Vec<Vec<u8>>,
    /// Certificate serials (content bytes; a leading sign byte is ignored).
    pub serials: Vec<Vec<u8>>,
    /// SHA-256 of module files, decompressed modules or signed payloads.
    pub module_sha256: Vec<[u8; 32]>,
}

impl Denylist {
    /// Whether nothing is denied.
    pub fn is_empty(&self) -> bool {
        self.key_ids.is_empty() && self.serials.is_empty() && self.module_sha256.is_empty()
    }

    /// Refuses `cert` when its key id or serial is denied.
    pub fn check_cert(&self, cert: &Certificate) -> Result<(), Error> {
        if let Some(skid) = &cert.skid {
            if self.key_ids.iter().any(|k| k == skid) {
                return Err(Error::DeniedKeyId {
                    key_id: skid.clone(),
                    name: cert.name.clone(),
                });
            }
        }
        let serial = strip_sign_byte(&cert.serial);
        if self.serials.iter().any(|s| strip_sign_byte(s) == serial) {
            return Err(Error::DeniedSerial {
                serial: serial.to_vec(),
                name: cert.name.clone(),
            });
        }
        Ok(())
    }
}

/// Everything module verification trusts or refuses.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    /// Trust anchors: a path ends at one of these.
    pub anchors: Vec<Certificate>,
    /// Untrusted certificates that may complete a path.
    pub intermediates: Vec<Certificate>,
    /// What is refused regardless of paths.
    pub deny: Denylist,
}

impl TrustStore {
    /// Adds anchors from a PEM or DER certificate file or a trust bundle.
    pub fn add_trust_file(&mut self, path: &Path) -> Result<(), Error> {
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
    pub fn add_cert_file(&mut self, path: &Path) -> Result<(), Error> {
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
    pub fn add_cert_path(&mut self, path: &Path) -> Result<(), Error> {
        let io = |source| Error::Io {
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
                return Err(Error::Invalid {
                    path: path.to_owned(),
                    problem: FileProblem::TooManyFiles {
                        max: MAX_CERT_FILES,
                    },
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

fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    use crate::util::read::{read_capped, ReadError};
    read_capped(path, MAX_TRUST_FILE).map_err(|e| {
        let problem = match e {
            ReadError::Open { source, .. }
            | ReadError::Stat { source, .. }
            | ReadError::Read { source, .. } => {
                return Error::Io {
                    path: path.to_owned(),
                    source,
                }
            }
            ReadError::TooLarge { size, .. } => FileProblem::TooLarge {
                size,
                cap: MAX_TRUST_FILE,
            },
            ReadError::NotRegular { .. } => FileProblem::NotRegular,
            _ => FileProblem::Grew {
                cap: MAX_TRUST_FILE,
            },
        };
        Error::Invalid {
            path: path.to_owned(),
            problem,
        }
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
pub fn parse_cert_file(path: &Path, bytes: &[u8]) -> Result<Vec<Certificate>, Error> {
    let invalid = |problem| Error::Invalid {
        path: path.to_owned(),
        problem,
    };
    if bytes.is_empty() {
        return Err(invalid(FileProblem::Empty));
    }
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let certs = pem_certificates(bytes).map_err(invalid)?;
        if certs.is_empty() {
            return Err(invalid(FileProblem::NoPemCertificate));
        }
        return Ok(certs);
    }
    Certificate::from_der(bytes)
        .map(|c| vec![c])
        .map_err(|e| invalid(FileProblem::NotCertificate(e)))
}

fn pem_certificates(bytes: &[u8]) -> Result<Vec<Certificate>, FileProblem> {
    let mut out = Vec::new();
    for (i, pem) in Pem::iter_from_buffer(bytes).enumerate() {
        let number = i + 1;
        let pem: Pem = pem.map_err(|source| FileProblem::Pem { number, source })?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        if out.len() == MAX_CERTS_PER_FILE {
            return Err(FileProblem::TooManyCertificates {
                max: MAX_CERTS_PER_FILE,
            });
        }
        let cert = Certificate::from_der(&pem.contents)
            .map_err(|source| FileProblem::PemCertificate { number, source })?;
        out.push(cert);
    }
    Ok(out)
}

/// A trust bundle as parsed: what it trusts, refuses and seals.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The anchors.
    pub anchors: Vec<Certificate>,
    /// The kernel signers: CAs of kernel images, not of modules.
    pub kernel_signers: Vec<Certificate>,
    /// The denylist.
    pub deny: Denylist,
    /// The sealed settings (mode, PCR, allow-weaken, allowed install texts).
    pub settings: Settings,
}

/// Parses a trust bundle: header, directives, settings, PEM anchors.
pub fn read_bundle(path: &Path, bytes: &[u8]) -> Result<Bundle, Error> {
    let invalid = |problem| Error::Invalid {
        path: path.to_owned(),
        problem,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(FileProblem::NotUtf8(e)))?;
    let directives = parse_directives(text).map_err(|(line, problem)| Error::Bundle {
        path: path.to_owned(),
        line,
        problem,
    })?;
    let certs = pem_certificates(bytes).map_err(invalid)?;
    // The line scan and the PEM reader must see the same blocks, or a mark
    // could land on another certificate than the one under it.
    if certs.len() != directives.certificates {
        return Err(invalid(FileProblem::PemMismatch {
            lines: directives.certificates,
            blocks: certs.len(),
        }));
    }
    let mut anchors = Vec::new();
    let mut kernel_signers = Vec::new();
    for (i, cert) in certs.into_iter().enumerate() {
        if directives.kernel_signers.contains(&i) {
            kernel_signers.push(cert);
        } else {
            anchors.push(cert);
        }
    }
    if anchors.is_empty() && kernel_signers.is_empty() {
        return Err(invalid(FileProblem::NoAnchor));
    }
    Ok(Bundle {
        anchors,
        kernel_signers,
        deny: directives.deny,
        settings: directives.settings,
    })
}

/// Parses a trust bundle's anchors and denylist.
pub fn parse_bundle(path: &Path, bytes: &[u8]) -> Result<(Vec<Certificate>, Denylist), Error> {
    read_bundle(path, bytes).map(|b| (b.anchors, b.deny))
}

/// What a bundle's lines say besides its certificates.
struct Directives {
    deny: Denylist,
    settings: Settings,
    /// Which CERTIFICATE blocks (counted from 0) follow a `kernel-signer` line.
    kernel_signers: Vec<usize>,
    /// How many `-----BEGIN CERTIFICATE-----` lines there are.
    certificates: usize,
}

/// The header, the `deny-*` lines, the settings and the `kernel-signer`
/// marks of a bundle, skipping PEM blocks; an error carries its line number.
fn parse_directives(text: &str) -> Result<Directives, (usize, BundleProblem)> {
    let mut deny = Denylist::default();
    let mut settings = SettingsParser::default();
    let mut kernel_signers = Vec::new();
    let mut certificates = 0;
    // The line of a `kernel-signer` still waiting for its certificate.
    let mut signer_line = None;
    let mut seen_header = false;
    let mut in_pem = false;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        // One spelling of PEM boundaries only: x509-parser's PEM reader and
        // this scan must find the same blocks, or a `kernel-signer` mark
        // could land on another certificate than the one under it.
        if line.starts_with("-----") && !matches!(raw, PEM_BEGIN | PEM_END) {
            return Err((line_no, BundleProblem::PemBoundary));
        }
        if in_pem {
            in_pem = raw != PEM_END;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !seen_header {
            if line != BUNDLE_HEADER {
                let found = line.to_owned();
                let expected = BUNDLE_HEADER;
                return Err((line_no, BundleProblem::Header { expected, found }));
            }
            seen_header = true;
            continue;
        }
        if raw == PEM_BEGIN {
            in_pem = true;
            if signer_line.take().is_some() {
                kernel_signers.push(certificates);
            }
            certificates += 1;
            continue;
        }
        if raw == PEM_END {
            return Err((line_no, BundleProblem::PemBoundary));
        }
        if let Some(at) = signer_line {
            return Err((at, BundleProblem::KernelSignerWithoutCertificate));
        }
        // ASCII whitespace only, as the dracut module's grep reads it.
        if raw
            .split('#')
            .next()
            .map(|l| l.trim_matches(|c: char| c.is_ascii_whitespace()))
            == Some("kernel-signer")
        {
            signer_line = Some(line_no);
            continue;
        }
        if settings.line(raw).map_err(|p| (line_no, p))? {
            continue;
        }
        add_directive(&mut deny, line).map_err(|p| (line_no, p))?;
    }
    if in_pem {
        return Err((text.lines().count(), BundleProblem::UnterminatedPem));
    }
    if let Some(at) = signer_line {
        return Err((at, BundleProblem::KernelSignerWithoutCertificate));
    }
    Ok(Directives {
        deny,
        settings: settings.finish(),
        kernel_signers,
        certificates,
    })
}

/// One `deny-* HEX` line (a trailing `# comment` allowed).
fn add_directive(deny: &mut Denylist, line: &str) -> Result<(), BundleProblem> {
    let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let value = value.split('#').next().unwrap_or("").trim();
    let bytes = crate::util::hex::parse(value).ok_or_else(|| BundleProblem::NotHex {
        directive: key.to_owned(),
        value: value.to_owned(),
    })?;
    match key {
        "deny-key-id" => deny.key_ids.push(bytes),
        "deny-serial" => deny.serials.push(bytes),
        "deny-module-sha256" => {
            let d: [u8; 32] = bytes.try_into().map_err(|_| BundleProblem::DigestLength)?;
            deny.module_sha256.push(d);
        }
        other => return Err(BundleProblem::UnknownDirective(other.to_owned())),
    }
    Ok(())
}

/// Writes a bundle's text for the given anchors, kernel signers, denylist
/// and settings.
pub fn render_bundle(
    anchors: &[Certificate],
    kernel_signers: &[Certificate],
    deny: &Denylist,
    settings: &Settings,
) -> String {
    let mut out = format!("{BUNDLE_HEADER}\n");
    out.push_str(&crate::trust::settings::render_settings(settings));
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
    for k in kernel_signers {
        out.push_str(&format!("# {}\nkernel-signer\n", k.name));
        out.push_str(&crate::util::pem::encode("CERTIFICATE", &k.der));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Certificate {
        Certificate::from_der(include_bytes!("testdata/test-kernel-key.der")).expect("test cert")
    }

    fn parse(text: &str) -> Result<Bundle, Error> {
        read_bundle(Path::new("b"), text.as_bytes())
    }

    #[test]
    fn a_kernel_signer_is_not_a_module_anchor() {
        let c = cert();
        let both = render_bundle(
            std::slice::from_ref(&c),
            std::slice::from_ref(&c),
            &Denylist::default(),
            &Settings::default(),
        );
        let b = parse(&both).expect("parses");
        assert_eq!((b.anchors.len(), b.kernel_signers.len()), (1, 1));
        let only = render_bundle(&[], &[c], &Denylist::default(), &Settings::default());
        let b = parse(&only).expect("a bundle of kernel signers alone parses");
        assert!(b.anchors.is_empty());
        assert_eq!(b.kernel_signers.len(), 1);
        // bundle_trust (what modules verify against) never holds them.
        let (anchors, _) = parse_bundle(Path::new("b"), only.as_bytes()).expect("parses");
        assert!(anchors.is_empty());
    }

    /// Boundaries only one of the two PEM scanners would see shift the
    /// marks: refused, whatever the certificate counts.
    #[test]
    fn pem_boundaries_have_one_spelling() {
        let c = cert();
        let good = render_bundle(
            std::slice::from_ref(&c),
            std::slice::from_ref(&c),
            &Denylist::default(),
            &Settings::default(),
        );
        for bad in [
            good.replacen(
                "-----BEGIN CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----x",
                1,
            ),
            good.replacen(
                "-----BEGIN CERTIFICATE-----",
                " -----BEGIN CERTIFICATE-----",
                1,
            ),
            good.replacen("-----END CERTIFICATE-----", "-----END CERTIFICATE----- ", 1),
            good.replacen(
                "-----BEGIN CERTIFICATE-----",
                "-----BEGIN PRIVATE KEY-----",
                1,
            ),
            format!("{good}-----END CERTIFICATE-----\n"),
        ] {
            let e = parse(&bad).expect_err("refused").to_string();
            assert!(e.contains("a PEM boundary must be exactly"), "{e}");
        }
        // A kernel-signer mark is ASCII, as the dracut module's grep reads it.
        let nbsp = good.replace("kernel-signer\n", "kernel-signer\u{a0}\n");
        assert!(parse(&nbsp).is_err());
    }

    #[test]
    fn a_kernel_signer_line_needs_its_certificate_next() {
        let c = cert();
        let good = render_bundle(&[], &[c], &Denylist::default(), &Settings::default());
        for bad in [
            good.replace("kernel-signer\n", "kernel-signer\nmode warn\n"),
            format!("{good}kernel-signer\n"),
        ] {
            let e = parse(&bad).expect_err("refused").to_string();
            assert!(
                e.contains("'kernel-signer' must be followed by a CERTIFICATE block"),
                "{e}"
            );
        }
    }
}
