//! `keys from-kernel`: the X.509 certificates built into a kernel image.
//!
//! The kernel keeps its built-in keys in `system_certificate_list`
//! (`certs/system_certificates.S`), a plain concatenation of DER
//! certificates inside the image. A bzImage holds the kernel compressed, so
//! the payload is located through the x86 boot protocol setup header and
//! decompressed first; an uncompressed `vmlinux` ELF is scanned as it is.
//! The scan looks for DER certificate headers and keeps every candidate that
//! parses completely as X.509.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::collections::HashSet;

use crate::image::compression::{Compression, Recognized};
use crate::image::decompress::{self, DecompressError};

/// Why no certificates could be taken from an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelImageError {
    /// Neither a bzImage ("HdrS" at 0x202) nor an ELF `vmlinux`.
    #[error("not a kernel image (expected a bzImage or a vmlinux ELF): {found}")]
    NotAKernelImage {
        /// The magic bytes that were there instead.
        found: String,
    },
    /// A bzImage older than boot protocol 2.08, which has no payload fields.
    #[error("bzImage boot protocol {}.{:02} is too old (2.08 or later names the payload)", version >> 8, version & 0xff)]
    UnsupportedBootProtocol {
        /// The protocol version from the setup header (0x0208 is 2.08).
        version: u16,
    },
    /// The image ends before a structure that its header points to.
    #[error("image truncated: {what} needs the file to reach offset {offset:#x}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// The offset the file would need to reach (saturated on overflow).
        offset: u64,
    },
    /// The payload is compressed in a format this crate does not decode.
    #[error("unsupported kernel payload compression {name} (magic {magic})")]
    UnsupportedCompression {
        /// The format's name, when the magic is a known one ("bzip2", "lzma",
        /// "lzo"), else "unknown".
        name: &'static str,
        /// The payload's first bytes, in hex.
        magic: String,
    },
    /// The payload did not decompress.
    #[error("kernel payload: {0}")]
    Decompress(#[from] DecompressError),
    /// The image holds no X.509 certificate.
    #[error("no X.509 certificates found in the kernel image")]
    NoCertificates,
}

/// Largest decompressed kernel accepted by [`extract_certificates`].
pub const MAX_KERNEL_SIZE: usize = 1 << 30;

/// Candidates handed to the X.509 parser before the scan gives up.
const MAX_CANDIDATES: usize = 100_000;

/// Certificates returned at most.
const MAX_CERTIFICATES: usize = 1_000;

/// The DER certificates built into a kernel image (bzImage or vmlinux ELF),
/// in the order found, without duplicates.
pub fn extract_certificates(image: &[u8]) -> Result<Vec<Vec<u8>>, KernelImageError> {
    extract_certificates_with_limit(image, MAX_KERNEL_SIZE)
}

/// [`extract_certificates`] with another bound on the decompressed size (the
/// fuzz target uses a small one).
pub fn extract_certificates_with_limit(
    image: &[u8],
    limit: usize,
) -> Result<Vec<Vec<u8>>, KernelImageError> {
    let certificates = if image.starts_with(ELF_MAGIC) {
        scan_certificates(image)
    } else {
        let payload = bzimage_payload(image)?;
        scan_certificates(&decompress_payload(payload, limit)?)
    };
    if certificates.is_empty() {
        Err(KernelImageError::NoCertificates)
    } else {
        Ok(certificates)
    }
}

const ELF_MAGIC: &[u8] = b"\x7fELF";

// ---------------------------------------------------------------- bzImage

/// Offsets in the x86 boot protocol setup header
/// (Documentation/arch/x86/boot.rst).
const SETUP_SECTS: usize = 0x1f1;
const HEADER_MAGIC: usize = 0x202;
const VERSION: usize = 0x206;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// `payload_offset` and `payload_length` appeared in protocol 2.08.
const MIN_VERSION: u16 = 0x0208;

/// The compressed payload of a bzImage, located through its setup header.
fn bzimage_payload(image: &[u8]) -> Result<&[u8], KernelImageError> {
    if image.get(HEADER_MAGIC..VERSION) != Some(b"HdrS".as_slice()) {
        return Err(KernelImageError::NotAKernelImage {
            found: describe_magic(image),
        });
    }
    let version = u16::from_le_bytes(read_array(image, VERSION, "setup header")?);
    if version < MIN_VERSION {
        return Err(KernelImageError::UnsupportedBootProtocol { version });
    }
    // The protected-mode code follows the boot sector and the setup sectors;
    // a setup_sects of 0 means 4 (boot.rst, "setup_sects").
    let setup_sects = match read_array::<1>(image, SETUP_SECTS, "setup header")? {
        [0] => 4,
        [n] => u64::from(n),
    };
    let protected_mode_start = setup_sects.saturating_add(1).saturating_mul(512);
    let payload_offset = u32::from_le_bytes(read_array(image, PAYLOAD_OFFSET, "setup header")?);
    let payload_length = u32::from_le_bytes(read_array(image, PAYLOAD_LENGTH, "setup header")?);
    let start = protected_mode_start.saturating_add(u64::from(payload_offset));
    let end = start.saturating_add(u64::from(payload_length));
    let payload = usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(start, end)| image.get(start..end));
    payload.ok_or(KernelImageError::Truncated {
        what: "compressed payload",
        offset: end,
    })
}

/// `N` bytes at `offset`, or `Truncated` naming `what`.
fn read_array<const N: usize>(
    image: &[u8],
    offset: usize,
    what: &'static str,
) -> Result<[u8; N], KernelImageError> {
    offset
        .checked_add(N)
        .and_then(|end| image.get(offset..end))
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(KernelImageError::Truncated {
            what,
            offset: u64::try_from(offset)
                .unwrap_or(u64::MAX)
                .saturating_add(N as u64),
        })
}

/// What is where a kernel's magic should be, for the error message.
fn describe_magic(image: &[u8]) -> String {
    let start = crate::util::hex::lower(image.get(..4).unwrap_or(image));
    match image.get(HEADER_MAGIC..VERSION) {
        Some(at_202) => format!(
            "first bytes {start}, bytes {} at 0x202 instead of \"HdrS\"",
            crate::util::hex::lower(at_202)
        ),
        None => format!("first bytes {start}, {} bytes in all", image.len()),
    }
}

/// Decompresses a bzImage payload. Kbuild appends the uncompressed size
/// after the stream (`size_append`), so only the first stream is decoded.
fn decompress_payload(payload: &[u8], limit: usize) -> Result<Vec<u8>, KernelImageError> {
    // CONFIG_KERNEL_UNCOMPRESSED: the payload is the ELF itself.
    if payload.starts_with(ELF_MAGIC) {
        return Ok(payload.to_vec());
    }
    let format = payload_format(payload)?;
    log::debug!("kernel payload: {} bytes of {format}", payload.len());
    Ok(decompress::decompress_prefix(format, payload, limit)?)
}

/// The payload's compression, or a named `UnsupportedCompression`.
fn payload_format(payload: &[u8]) -> Result<Compression, KernelImageError> {
    let name = match Compression::for_kernel_payload(payload) {
        Recognized::Supported(format) => return Ok(format),
        Recognized::Unsupported(format) => format.name(),
        Recognized::Unknown => "unknown",
    };
    Err(KernelImageError::UnsupportedCompression {
        name,
        magic: crate::util::hex::lower(payload.get(..6).unwrap_or(payload)),
    })
}

// ---------------------------------------------------------------- scan

/// Finds the DER certificates in `image`: every `30 82 LL LL 30 82`
/// (a SEQUENCE with a two-byte length, starting with another such SEQUENCE,
/// the TBSCertificate) whose length fits and which parses completely as
/// X.509. The scan resumes after each certificate found, so nothing inside
/// one is taken for another.
fn scan_certificates(image: &[u8]) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut candidates = 0usize;
    let mut pos = 0usize;
    while let Some(start) = next_header(image, pos) {
        pos = start.saturating_add(1);
        let Some(der) = candidate(image, start) else {
            continue;
        };
        candidates = candidates.saturating_add(1);
        if candidates > MAX_CANDIDATES {
            log::warn!("kernel image: stopped after {MAX_CANDIDATES} certificate candidates");
            break;
        }
        if !is_certificate(der) {
            continue;
        }
        pos = start.saturating_add(der.len());
        if seen.insert(der) {
            found.push(der.to_vec());
            if found.len() >= MAX_CERTIFICATES {
                log::warn!("kernel image: stopped after {MAX_CERTIFICATES} certificates");
                break;
            }
        }
    }
    found
}

/// The next offset at or after `from` where `30 82 ?? ?? 30 82` starts.
fn next_header(image: &[u8], from: usize) -> Option<usize> {
    let rest = image.get(from..)?;
    rest.windows(6)
        .position(|w| matches!(w, [0x30, 0x82, _, _, 0x30, 0x82]))
        .and_then(|i| from.checked_add(i))
}

/// The bytes of the SEQUENCE at `start`, if its declared length fits in the
/// image and leaves room for the inner SEQUENCE it declares.
fn candidate(image: &[u8], start: usize) -> Option<&[u8]> {
    let header = image.get(start..start.checked_add(8)?)?;
    let [_, _, outer_hi, outer_lo, _, _, inner_hi, inner_lo] = *header else {
        return None;
    };
    let outer_len = usize::from(u16::from_be_bytes([outer_hi, outer_lo]));
    let inner_len = usize::from(u16::from_be_bytes([inner_hi, inner_lo]));
    // The TBSCertificate (4 header bytes + content) must leave room for the
    // signature algorithm and value.
    if inner_len.checked_add(4)? >= outer_len {
        return None;
    }
    image.get(start..start.checked_add(outer_len.checked_add(4)?)?)
}

/// Whether `der` is exactly one X.509 certificate.
fn is_certificate(der: &[u8]) -> bool {
    let parses =
        matches!(x509_parser::parse_x509_certificate(der), Ok((rest, _)) if rest.is_empty());
    parses && is_three_element_sequence(der)
}

/// Whether `der` is a SEQUENCE of exactly three elements (TBSCertificate,
/// signatureAlgorithm, signatureValue). x509-parser accepts bytes after the
/// signature inside the outer SEQUENCE; a certificate has none.
fn is_three_element_sequence(der: &[u8]) -> bool {
    use asn1_rs::FromDer as _;
    let Ok(([], outer)) = asn1_rs::Any::from_der(der) else {
        return false;
    };
    let mut content = outer.data;
    for _ in 0..3 {
        match asn1_rs::Any::from_der(content) {
            Ok((rest, _)) => content = rest,
            Err(_) => return false,
        }
    }
    content.is_empty()
}

#[cfg(test)]
mod tests {
    //! Certificates come from `openssl req -x509`, payloads from the
    //! compressors run with Kbuild's options, at test time (`apt-get install
    //! -y openssl xz-utils zstd lz4 gzip`; a missing tool fails the test).
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    fn run_tool(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `{program}`: {e} (apt-get install -y openssl xz-utils zstd lz4 gzip)")
            });
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(
            output.status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Three self-signed RSA-2048 certificates, CN=t0…t2, made once.
    fn certificates() -> &'static [Vec<u8>] {
        static CERTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        CERTS.get_or_init(|| {
            (0..3)
                .map(|i| {
                    let subject = format!("/CN=t{i}");
                    run_tool(
                        "openssl",
                        &[
                            "req",
                            "-x509",
                            "-newkey",
                            "rsa:2048",
                            "-nodes",
                            "-subj",
                            &subject,
                            "-keyout",
                            "/dev/null",
                            "-outform",
                            "DER",
                        ],
                        b"",
                    )
                })
                .collect()
        })
    }

    /// A stand-in for a decompressed kernel: an ELF magic, code-like bytes,
    /// decoy certificate headers, the certificate list, then a duplicate.
    fn vmlinux() -> Vec<u8> {
        let certs = certificates();
        let mut image = b"\x7fELF\x02\x01\x01\x00".to_vec();
        image.extend((0..5000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes()));
        // A header that looks like a certificate but is not one.
        image.extend_from_slice(&[0x30, 0x82, 0x01, 0x00, 0x30, 0x82, 0x00, 0x10]);
        image.extend_from_slice(&[0xaa; 300]);
        // One whose declared length spans the first real certificate.
        image.extend_from_slice(&[0x30, 0x82, 0x04, 0x00, 0x30, 0x82, 0x00, 0x04, 1, 2, 3, 4]);
        for cert in certs {
            image.extend_from_slice(cert);
        }
        image.extend_from_slice(&[0u8; 4096]);
        image.extend_from_slice(&certs[0]);
        image.extend_from_slice(&[0x30, 0x82, 0xff, 0xff, 0x30, 0x82]);
        image
    }

    /// A bzImage around `payload`: the setup header fields this module
    /// reads, a PE "MZ" like real images, and the payload at
    /// `payload_offset` into the protected-mode code.
    fn bzimage(payload: &[u8], setup_sects: u8, version: u16) -> Vec<u8> {
        let sects = if setup_sects == 0 {
            4
        } else {
            usize::from(setup_sects)
        };
        let protected_mode_start = (sects + 1) * 512;
        let payload_offset = 0x3a0usize;
        let mut image = vec![0u8; protected_mode_start + payload_offset];
        image[..2].copy_from_slice(b"MZ");
        image[SETUP_SECTS] = setup_sects;
        image[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        image[HEADER_MAGIC..VERSION].copy_from_slice(b"HdrS");
        image[VERSION..VERSION + 2].copy_from_slice(&version.to_le_bytes());
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4]
            .copy_from_slice(&(payload_offset as u32).to_le_bytes());
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(payload);
        image.extend_from_slice(&[0xcc; 512]); // code after the payload
        image
    }

    /// Kbuild's `*_with_size` payloads: the compressor's output, then the
    /// uncompressed size as u32 LE (`size_append`).
    fn kbuild_payload(program: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
        let mut payload = run_tool(program, args, data);
        payload.extend_from_slice(&(data.len() as u32).to_le_bytes());
        payload
    }

    #[test]
    fn scans_a_vmlinux_elf() {
        assert_eq!(extract_certificates(&vmlinux()).unwrap(), certificates());
    }

    #[test]
    fn finds_the_certificates_in_every_kind_of_bzimage() {
        let vmlinux = vmlinux();
        // scripts/Makefile.lib and scripts/xz_wrap.sh (x86).
        let compressors: [(&str, &[&str]); 5] = [
            ("gzip", &["-n", "-f", "-9"]),
            ("xz", &["--check=crc32", "--x86", "--lzma2=,dict=32MiB"]),
            ("zstd", &["-22", "--ultra", "-q"]),
            ("lz4", &["-l", "-9", "-c"]),
            ("lz4", &["-l", "-c1", "-c"]),
        ];
        for (program, args) in compressors {
            let image = bzimage(&kbuild_payload(program, args, &vmlinux), 27, 0x020f);
            let found =
                extract_certificates(&image).unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
            assert_eq!(found, certificates(), "{program} {args:?}");
        }
        // CONFIG_KERNEL_UNCOMPRESSED: the payload is the ELF itself.
        let image = bzimage(&vmlinux, 27, 0x020f);
        assert_eq!(extract_certificates(&image).unwrap(), certificates());
    }

    #[test]
    fn setup_sects_zero_means_four() {
        let payload = kbuild_payload("gzip", &["-n", "-9"], &vmlinux());
        let image = bzimage(&payload, 0, 0x0208);
        assert_eq!(extract_certificates(&image).unwrap(), certificates());
    }

    #[test]
    fn names_what_is_not_a_kernel() {
        let err = extract_certificates(&[0x41; 1000]).unwrap_err();
        assert_eq!(
            err,
            KernelImageError::NotAKernelImage {
                found: "first bytes 41414141, bytes 41414141 at 0x202 instead of \"HdrS\"".into()
            }
        );
        let err = extract_certificates(b"MZ").unwrap_err();
        assert_eq!(
            err,
            KernelImageError::NotAKernelImage {
                found: "first bytes 4d5a, 2 bytes in all".into()
            }
        );
    }

    #[test]
    fn rejects_old_boot_protocols() {
        let image = bzimage(b"", 4, 0x0207);
        assert_eq!(
            extract_certificates(&image),
            Err(KernelImageError::UnsupportedBootProtocol { version: 0x0207 })
        );
        assert!(extract_certificates(&image)
            .unwrap_err()
            .to_string()
            .contains("2.07"));
    }

    #[test]
    fn reports_truncated_headers_and_payloads() {
        let payload = kbuild_payload("gzip", &["-n", "-9"], &vmlinux());
        let image = bzimage(&payload, 27, 0x020f);

        assert_eq!(
            extract_certificates(&image[..0x207]),
            Err(KernelImageError::Truncated {
                what: "setup header",
                offset: 0x208
            })
        );
        assert_eq!(
            extract_certificates(&image[..0x24e]),
            Err(KernelImageError::Truncated {
                what: "setup header",
                offset: 0x250
            })
        );
        let payload_end = (28 * 512 + 0x3a0 + payload.len()) as u64;
        assert_eq!(
            extract_certificates(&image[..payload_end as usize - 1]),
            Err(KernelImageError::Truncated {
                what: "compressed payload",
                offset: payload_end
            })
        );

        // Offsets that overflow 32 bits are reported, not wrapped.
        let mut far = image.clone();
        far[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        far[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            extract_certificates(&far),
            Err(KernelImageError::Truncated {
                what: "compressed payload",
                offset: 28 * 512 + 2 * u64::from(u32::MAX),
            })
        );
    }

    #[test]
    fn names_unsupported_compression() {
        let cases: [(&[u8], &str, &str); 4] = [
            (b"BZh91AY&SY", "bzip2", "425a68393141"),
            (
                &[0x5d, 0x00, 0x00, 0x80, 0x00, 0xff],
                "lzma",
                "5d00008000ff",
            ),
            (&[0x89, b'L', b'Z', b'O', 0x00, 0x0d], "lzo", "894c5a4f000d"),
            (&[0x12, 0x34], "unknown", "1234"),
        ];
        for (payload, name, magic) in cases {
            let image = bzimage(payload, 27, 0x020f);
            assert_eq!(
                extract_certificates(&image),
                Err(KernelImageError::UnsupportedCompression {
                    name,
                    magic: magic.into()
                })
            );
        }
    }

    #[test]
    fn reports_a_corrupt_payload() {
        let mut payload = kbuild_payload("xz", &["--check=crc32", "--x86", "--lzma2"], &vmlinux());
        let middle = payload.len() / 2;
        payload[middle] ^= 0x40;
        let err = extract_certificates(&bzimage(&payload, 27, 0x020f)).unwrap_err();
        assert!(
            matches!(
                err,
                KernelImageError::Decompress(DecompressError::Corrupt {
                    format: Compression::Xz,
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn bounds_the_decompressed_size() {
        let payload = kbuild_payload("zstd", &["-q"], &vmlinux());
        let err =
            extract_certificates_with_limit(&bzimage(&payload, 27, 0x020f), 1000).unwrap_err();
        assert_eq!(
            err,
            KernelImageError::Decompress(DecompressError::TooLarge {
                format: Compression::Zstd,
                limit: 1000
            })
        );
    }

    #[test]
    fn says_when_there_are_no_certificates() {
        let payload = kbuild_payload("gzip", &["-n"], &[0x30; 5000]);
        assert_eq!(
            extract_certificates(&bzimage(&payload, 27, 0x020f)),
            Err(KernelImageError::NoCertificates)
        );
        assert_eq!(
            extract_certificates(b"\x7fELF"),
            Err(KernelImageError::NoCertificates)
        );
    }

    #[test]
    fn a_certificate_with_bytes_after_it_inside_its_length_is_rejected() {
        // Declared one byte longer than the certificate: the parser leaves a
        // byte, so it is not a certificate.
        let cert = &certificates()[0];
        let mut stretched = cert.clone();
        let len = u16::from_be_bytes([cert[2], cert[3]]) + 1;
        stretched[2..4].copy_from_slice(&len.to_be_bytes());
        stretched.push(0);
        let mut image = b"\x7fELF".to_vec();
        image.extend_from_slice(&stretched);
        assert_eq!(
            extract_certificates(&image),
            Err(KernelImageError::NoCertificates)
        );
    }

    #[test]
    fn pem_matches_openssl() {
        for cert in certificates() {
            let ours = crate::util::pem::encode("CERTIFICATE", cert);
            let openssl = run_tool(
                "openssl",
                &["x509", "-inform", "DER", "-outform", "PEM"],
                cert,
            );
            assert_eq!(ours, String::from_utf8(openssl).unwrap());
            let subject = run_tool("openssl", &["x509", "-noout", "-subject"], ours.as_bytes());
            assert!(String::from_utf8(subject)
                .unwrap()
                .starts_with("subject=CN"));
        }
        assert_eq!(
            crate::util::pem::encode("CERTIFICATE", b""),
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
        );
    }
}
