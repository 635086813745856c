//! The derived anchor: the certificates built into one kernel image, taken
//! from it at image build time after its Authenticode signature chained to a
//! sealed `kernel-signer` (see `image::derive`), and installed into that
//! kernel's initramfs:
//!
//! ```text
//! modseal-derived-anchor v1
//! release 6.1.0-41-amd64
//! kernel-sha256 61e79c…        # the image's Authenticode SHA-256 (PCR 4)
//! image-signer Debian Secure Boot Signer 2022 - linux
//! -----BEGIN CERTIFICATE-----  # every certificate built into the kernel
//! …
//! -----END CERTIFICATE-----
//! ```
//!
//! The file is not sealed: its integrity is the initramfs's. The boot stage
//! trusts it only for the running kernel's release and only for keys the
//! running kernel holds itself; a verifier checks the recorded certificates
//! against the kernel the firmware measured.

use std::path::Path;

use crate::trust::cert::Certificate;
pub use crate::trust::error::DerivedProblem;
use crate::trust::error::Error;

/// The first line of a derived-anchor file.
pub const DERIVED_HEADER: &str = "modseal-derived-anchor v1";
/// Most certificates one file may hold (a kernel has a handful).
pub const MAX_DERIVED_CERTS: usize = 64;
// DerivedProblem's messages (trust::error) spell out the header and bound.
static_assertions::const_assert_eq!(MAX_DERIVED_CERTS, 64);

/// The certificates of one verified kernel image.
#[derive(Debug, Clone)]
pub struct DerivedAnchor {
    /// The kernel release the image is (`uname -r`).
    pub release: String,
    /// The image's Authenticode SHA-256: what firmware measures into PCR 4.
    pub kernel_sha256: [u8; 32],
    /// The subject of the image's Authenticode signer (informational).
    pub image_signer: String,
    /// Every certificate built into the image.
    pub certs: Vec<Certificate>,
}

/// Parses a derived-anchor file's exact bytes.
pub fn parse_derived(path: &Path, bytes: &[u8]) -> Result<DerivedAnchor, Error> {
    parse(bytes).map_err(|problem| Error::Derived {
        path: path.to_owned(),
        problem,
    })
}

fn parse(bytes: &[u8]) -> Result<DerivedAnchor, DerivedProblem> {
    let text = std::str::from_utf8(bytes).map_err(|_| DerivedProblem::NotText)?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, l)) if l.trim_end() == DERIVED_HEADER => {}
        _ => return Err(DerivedProblem::Header),
    }
    let mut release = None;
    let mut kernel = None;
    let mut signer = None;
    let mut in_pem = false;
    for (n, raw) in lines {
        let line = raw.trim();
        if in_pem {
            in_pem = !line.starts_with("-----END ");
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("-----BEGIN ") {
            in_pem = true;
            continue;
        }
        field(n + 1, line, &mut release, &mut kernel, &mut signer)?;
    }
    let certs = certificates(bytes)?;
    let kernel_sha256 = kernel.ok_or(DerivedProblem::Missing("kernel-sha256"))?;
    Ok(DerivedAnchor {
        release: release.ok_or(DerivedProblem::Missing("release"))?,
        kernel_sha256,
        image_signer: signer.ok_or(DerivedProblem::Missing("image-signer"))?,
        certs,
    })
}

/// One `name value` line into its slot; each name at most once.
fn field(
    line: usize,
    text: &str,
    release: &mut Option<String>,
    kernel: &mut Option<[u8; 32]>,
    signer: &mut Option<String>,
) -> Result<(), DerivedProblem> {
    let bad = |what: String| DerivedProblem::Line { line, what };
    let (name, value) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let value = value.trim();
    let repeated = || bad(format!("'{name}' given twice"));
    match name {
        "release" => {
            // A release names a directory under /lib/modules: one path
            // component of printable characters.
            let ok = !value.is_empty()
                && value.len() <= 128
                && value != "."
                && value != ".."
                && value.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
            if !ok {
                return Err(bad(format!("'{value}' is not a kernel release")));
            }
            if release.replace(value.to_owned()).is_some() {
                return Err(repeated());
            }
        }
        "kernel-sha256" => {
            let d = crate::util::hex::parse(value)
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| bad("kernel-sha256 needs 64 hex digits".into()))?;
            if kernel.replace(d).is_some() {
                return Err(repeated());
            }
        }
        "image-signer" => {
            if signer.replace(value.to_owned()).is_some() {
                return Err(repeated());
            }
        }
        other => return Err(bad(format!("unknown field '{other}'"))),
    }
    Ok(())
}

fn certificates(bytes: &[u8]) -> Result<Vec<Certificate>, DerivedProblem> {
    let mut out = Vec::new();
    for (i, pem) in x509_parser::pem::Pem::iter_from_buffer(bytes).enumerate() {
        let number = i + 1;
        let pem = pem.map_err(|e| DerivedProblem::Certificate {
            number,
            reason: e.to_string(),
        })?;
        if pem.label != "CERTIFICATE" {
            continue;
        }
        if out.len() == MAX_DERIVED_CERTS {
            return Err(DerivedProblem::CertificateCount(out.len() + 1));
        }
        let cert =
            Certificate::from_der(&pem.contents).map_err(|e| DerivedProblem::Certificate {
                number,
                reason: e.to_string(),
            })?;
        out.push(cert);
    }
    if out.is_empty() {
        return Err(DerivedProblem::CertificateCount(0));
    }
    Ok(out)
}

/// The file's text for `d`; [`parse_derived`] reads it back.
pub fn render_derived(d: &DerivedAnchor) -> String {
    // The signer's name goes on one line whatever the certificate says.
    let signer: String = d
        .image_signer
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = format!(
        "{DERIVED_HEADER}\nrelease {}\nkernel-sha256 {}\nimage-signer {}\n",
        d.release,
        crate::util::hex::lower(&d.kernel_sha256),
        signer.trim()
    );
    for c in &d.certs {
        out.push_str(&format!("# {}\n", c.name.replace(['\n', '\r'], " ")));
        out.push_str(&crate::util::pem::encode("CERTIFICATE", &c.der));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Certificate {
        Certificate::from_der(include_bytes!("testdata/test-kernel-key.der")).expect("test cert")
    }

    fn sample() -> DerivedAnchor {
        DerivedAnchor {
            release: "6.1.0-41-amd64".into(),
            kernel_sha256: [0xab; 32],
            image_signer: "Debian Secure Boot Signer 2022 - linux".into(),
            certs: vec![cert()],
        }
    }

    #[test]
    fn render_then_parse_is_the_same_anchor() {
        let d = sample();
        let text = render_derived(&d);
        let back = parse(text.as_bytes()).expect("parses");
        assert_eq!(back.release, d.release);
        assert_eq!(back.kernel_sha256, d.kernel_sha256);
        assert_eq!(back.image_signer, d.image_signer);
        assert_eq!(back.certs.len(), 1);
        assert_eq!(back.certs[0].der, d.certs[0].der);
    }

    #[test]
    fn malformed_files_are_named_failures() {
        let good = render_derived(&sample());
        let cases: Vec<(String, &str)> = vec![
            (
                good.replacen(DERIVED_HEADER, "modseal-derived-anchor v2", 1),
                "first line",
            ),
            (
                good.replacen("release ", "release ../", 1),
                "not a kernel release",
            ),
            (
                good.replacen("release 6.1.0-41-amd64\n", "", 1),
                "no 'release'",
            ),
            (
                good.replacen("kernel-sha256 ab", "kernel-sha256 zz", 1),
                "64 hex",
            ),
            (
                good.replacen("image-signer", "image-signer x\nimage-signer", 1),
                "given twice",
            ),
            (
                good.replacen("image-signer", "mode warn\nimage-signer", 1),
                "unknown field",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text.as_bytes()).expect_err(want).to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
        let no_cert = good.split("# ").next().unwrap_or_default().to_owned();
        assert_eq!(
            parse(no_cert.as_bytes()).map(|_| ()),
            Err(DerivedProblem::CertificateCount(0))
        );
        assert_eq!(parse(b"\xff\xfe").map(|_| ()), Err(DerivedProblem::NotText));
    }
}
