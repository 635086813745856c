//! A PE image's Authenticode signature, verified against Secure Boot CAs
//! the way Linux verifies a kexec image (`crypto/asymmetric_keys/
//! verify_pefile.c`, `mscode_parser.c`, `pkcs7_verify.c`), which is also
//! what shim and `sbverify` check:
//!
//! 1. the attribute certificate table holds one `WIN_CERTIFICATE`
//!    (revision 2.0, `WIN_CERT_TYPE_PKCS_SIGNED_DATA`) whose length,
//!    rounded up to 8, is the table's (`pefile_strip_sig_wrapper()`);
//! 2. its PKCS#7 SignedData embeds an `SpcIndirectDataContent`
//!    (1.3.6.1.4.1.311.2.1.4) of type `SpcPeImageData` whose DigestInfo is
//!    the image's Authenticode digest with the algorithm it names;
//! 3. the signed attributes' messageDigest is the digest of that content's
//!    bytes without its outer SEQUENCE header (the kernel's `pkcs7->data`),
//!    their contentType is `SpcIndirectDataContent`, and the signer's
//!    signature covers them (re-tagged as SET OF); without signed
//!    attributes the signature covers the content digest itself;
//! 4. the signer certificate, found among those the message carries by
//!    issuer and serial (or key id), has a path to one of the CAs, with
//!    digitalSignature and codeSigning where its extensions say, and the
//!    module signature's usage rules for each issuer (`trust::chain`).
//!
//! The module lives in `image` because it reads the PE layout (`pe`), and
//! takes the PKCS#7 reader, algorithms and chain building from `verify`
//! and `trust` below it. Validity dates are not checked: neither shim nor
//! the kernel checks them for an image, and Debian's kernels outlive their
//! signer's certificate.

use crate::image::pe::{self, PeError, PeImage};
use crate::trust::cert::Certificate;
use crate::trust::chain::{build_path, matches_signer, Source};
use crate::trust::TrustStore;
use crate::verify::algorithm::{hash_from_oid, HashAlgo};
use crate::verify::der::{DerError, Reader, TAG_NULL, TAG_OCTET_STRING, TAG_OID};
use crate::verify::pkcs7::{self, Pkcs7Error, SignedData};
use crate::verify::pubkey::SigError;

/// `SpcIndirectDataContent` (1.3.6.1.4.1.311.2.1.4).
pub const OID_SPC_INDIRECT_DATA: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04];
/// `SpcPeImageData` (1.3.6.1.4.1.311.2.1.15).
const OID_SPC_PE_IMAGE_DATA: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f];
/// `SPC_INDIVIDUAL_SP_KEY_PURPOSE` (1.3.6.1.4.1.311.2.1.21), which old
/// pesign wrote in its place; `mscode_note_content_type()` takes both.
const OID_SPC_INDIVIDUAL_SP_KEY_PURPOSE: &[u8] =
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x15];

/// `WIN_CERT_REVISION_2_0`.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `WIN_CERT_TYPE_PKCS_SIGNED_DATA`.
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
/// Length of a `WIN_CERTIFICATE` header.
const WIN_CERTIFICATE_HEADER: usize = 8;

/// Why a kernel image's signature is not one the CAs vouch for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthenticodeError {
    /// The file is not a PE image (or one whose digest is not defined).
    #[error("{}", not_pe(.0))]
    NotPe(PeError),
    /// No attribute certificate table: never signed, or stripped.
    #[error("no Authenticode signature (the image is unsigned, or its signature was stripped)")]
    Unsigned,
    /// The `WIN_CERTIFICATE` wrapper breaks the kernel's rules.
    #[error("signature wrapper (WIN_CERTIFICATE): {problem}")]
    Wrapper {
        /// What is wrong with it.
        problem: String,
    },
    /// The signature is not a PKCS#7 SignedData of `SpcIndirectDataContent`.
    #[error("signature: {0}")]
    Pkcs7(Pkcs7Error),
    /// The `SpcIndirectDataContent` does not parse.
    #[error("signature: SpcIndirectDataContent: {0}")]
    IndirectData(DerError),
    /// The `SpcIndirectDataContent` is not about a PE image.
    #[error("signature: SpcIndirectDataContent data type {oid} is not SpcPeImageData")]
    NotPeImageData {
        /// The type found, dotted.
        oid: String,
    },
    /// A digest or signature algorithm modseal does not take.
    #[error("signature: {0}")]
    Algorithm(crate::verify::Error),
    /// The image's digest is not the one signed.
    #[error("digest mismatch: the signature is for {algo} {signed}, the image's is {actual} (the image was modified after signing)")]
    DigestMismatch {
        /// The algorithm.
        algo: HashAlgo,
        /// The digest the signature carries, hex.
        signed: String,
        /// The image's, hex.
        actual: String,
    },
    /// The messageDigest attribute is not the content's digest.
    #[error("signature does not verify: the messageDigest attribute does not match the SpcIndirectDataContent")]
    MessageDigestMismatch,
    /// No certificate in the message is the signer.
    #[error("signature does not verify: no certificate in the signature is its signer")]
    UnknownSigner,
    /// The signer's key is unusable, or of another family.
    #[error("signature does not verify: {0}")]
    SignerKey(crate::verify::Error),
    /// The signature does not verify under the signer's key.
    #[error("signature does not verify: {source} (signer '{signer}')")]
    Signature {
        /// Why.
        source: SigError,
        /// The signer's name.
        signer: String,
    },
    /// The signer has no path to any of the CAs.
    #[error("signer '{signer}' is not issued by {}: {source}", ca_names(.cas))]
    NotIssued {
        /// The signer's name.
        signer: String,
        /// The CAs' names.
        cas: Vec<String>,
        /// Why the path fails.
        source: Box<crate::trust::Error>,
    },
}

fn not_pe(e: &PeError) -> String {
    let text = e.to_string();
    if text.starts_with("not a PE image") {
        text
    } else {
        format!("not a PE image: {text}")
    }
}

fn ca_names(cas: &[String]) -> String {
    let quoted: Vec<String> = cas.iter().map(|c| format!("'{c}'")).collect();
    match quoted.len() {
        0 => "any CA (none given)".into(),
        1 => format!("the CA {}", quoted.join("")),
        _ => format!("any of the CAs {}", quoted.join(", ")),
    }
}

/// A verified image: who signed it and what was signed.
#[derive(Debug, Clone)]
pub struct SignedImage {
    /// The signer's certificate.
    pub signer: Certificate,
    /// The CA its path ends at.
    pub anchor: Certificate,
    /// The digest algorithm the signature names for the image.
    pub digest_algo: HashAlgo,
    /// The image's Authenticode digest with that algorithm (the signed one).
    pub digest: Vec<u8>,
    /// The image's Authenticode SHA-256, what firmware measures into PCR 4.
    pub sha256: [u8; 32],
}

/// Verifies the Authenticode signature of the PE image `image` (the whole
/// file) against the Secure Boot CAs `cas`.
pub fn verify_image(image: &[u8], cas: &[Certificate]) -> Result<SignedImage, AuthenticodeError> {
    let pe = pe::parse(image).map_err(AuthenticodeError::NotPe)?;
    let table = pe
        .certificate_table_bytes()
        .ok_or(AuthenticodeError::Unsigned)?;
    let blob = strip_wrapper(table)?;
    let msg =
        pkcs7::parse_embedded(blob, OID_SPC_INDIRECT_DATA).map_err(AuthenticodeError::Pkcs7)?;
    let Some(content) = msg.embedded else {
        // parse_embedded refuses detached content.
        return Err(AuthenticodeError::Pkcs7(Pkcs7Error::Invalid {
            kind: pkcs7::Pkcs7ErrorKind::DetachedContent,
            offset: 0,
        }));
    };
    let (digest_algo, signed_digest) = indirect_data(content.raw)?;
    let digest = image_digest(&pe, digest_algo);
    if digest != signed_digest {
        return Err(AuthenticodeError::DigestMismatch {
            algo: digest_algo,
            signed: crate::util::hex::lower(signed_digest),
            actual: crate::util::hex::lower(&digest),
        });
    }
    let (signer, anchor) = check_signer(&msg, content.content, cas)?;
    let sha256 = match digest_algo {
        HashAlgo::Sha256 => <[u8; 32]>::try_from(digest.as_slice()).unwrap_or_default(),
        _ => pe.authenticode_sha256(),
    };
    Ok(SignedImage {
        signer,
        anchor,
        digest_algo,
        digest,
        sha256,
    })
}

/// The PKCS#7 blob inside the table's one `WIN_CERTIFICATE`, as
/// `pefile_strip_sig_wrapper()` finds it (padding after the DER allowed).
fn strip_wrapper(table: &[u8]) -> Result<&[u8], AuthenticodeError> {
    let wrapper = |problem: String| AuthenticodeError::Wrapper { problem };
    let header = table.get(..WIN_CERTIFICATE_HEADER).ok_or_else(|| {
        wrapper(format!(
            "the attribute certificate table ({} bytes) is shorter than its header",
            table.len()
        ))
    })?;
    let le16 = |at: usize| {
        header
            .get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u16::from_le_bytes)
    };
    let length = header
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes);
    if u64::from(length).div_ceil(8).saturating_mul(8) != table.len() as u64 {
        return Err(wrapper(format!(
            "dwLength {length} does not fill the attribute certificate table ({} bytes); \
             one signature, padded to 8 bytes, is what the kernel takes",
            table.len()
        )));
    }
    let revision = le16(4);
    if revision != WIN_CERT_REVISION_2_0 {
        return Err(wrapper(format!(
            "revision {revision:#06x}, not 2.0 (0x0200)"
        )));
    }
    let kind = le16(6);
    if kind != WIN_CERT_TYPE_PKCS_SIGNED_DATA {
        return Err(wrapper(format!(
            "certificate type {kind:#06x}, not PKCS_SIGNED_DATA (0x0002)"
        )));
    }
    let body = usize::try_from(length)
        .ok()
        .and_then(|end| table.get(WIN_CERTIFICATE_HEADER..end))
        .unwrap_or_default();
    if body.len() < 4 {
        return Err(wrapper("no signature data after the header".into()));
    }
    Ok(body)
}

/// The digest algorithm and digest an `SpcIndirectDataContent` carries
/// (`mscode.asn1`).
fn indirect_data(der: &[u8]) -> Result<(HashAlgo, &[u8]), AuthenticodeError> {
    let bad = AuthenticodeError::IndirectData;
    let mut top = Reader::new(der);
    let mut spc = top.sequence("SpcIndirectDataContent").map_err(bad)?;
    top.finish("SpcIndirectDataContent").map_err(bad)?;
    let mut data = spc.sequence("SpcIndirectDataContent.data").map_err(bad)?;
    let kind = data
        .expect(TAG_OID, "SpcAttributeTypeAndOptionalValue.type")
        .map_err(bad)?;
    if kind.content != OID_SPC_PE_IMAGE_DATA && kind.content != OID_SPC_INDIVIDUAL_SP_KEY_PURPOSE {
        return Err(AuthenticodeError::NotPeImageData {
            oid: crate::verify::algorithm::oid_string(kind.content),
        });
    }
    let mut info = spc
        .sequence("SpcIndirectDataContent.messageDigest")
        .map_err(bad)?;
    spc.finish("SpcIndirectDataContent").map_err(bad)?;
    let mut alg = info.sequence("DigestInfo.digestAlgorithm").map_err(bad)?;
    let oid = alg
        .expect(TAG_OID, "DigestInfo.digestAlgorithm")
        .map_err(bad)?;
    if alg
        .peek("DigestInfo.digestAlgorithm.parameters")
        .map_err(bad)?
        .is_some()
    {
        alg.expect(TAG_NULL, "DigestInfo.digestAlgorithm.parameters")
            .map_err(bad)?;
    }
    alg.finish("DigestInfo.digestAlgorithm").map_err(bad)?;
    let digest = info
        .expect(TAG_OCTET_STRING, "DigestInfo.digest")
        .map_err(bad)?;
    info.finish("DigestInfo").map_err(bad)?;
    let algo = crate::verify::supported_hash(hash_from_oid(oid.content))
        .map_err(AuthenticodeError::Algorithm)?;
    Ok((algo, digest.content))
}

/// The image's Authenticode digest with `algo`.
fn image_digest(pe: &PeImage<'_>, algo: HashAlgo) -> Vec<u8> {
    let mut h = algo.hasher();
    let data = pe.bytes();
    for r in pe.authenticode_ranges() {
        let bytes = usize::try_from(r.start)
            .ok()
            .zip(usize::try_from(r.end).ok())
            .and_then(|(s, e)| data.get(s..e));
        // `pe::parse` checked every range against the file's length.
        if let Some(b) = bytes {
            h.update(b);
        }
    }
    h.finish()
}

/// The signer's signature over the content (through the signed
/// attributes), then its path to a CA: the signer and the CA.
fn check_signer(
    msg: &SignedData<'_>,
    content: &[u8],
    cas: &[Certificate],
) -> Result<(Certificate, Certificate), AuthenticodeError> {
    let info = &msg.signer;
    let hash = crate::verify::supported_hash(hash_from_oid(info.digest_oid))
        .map_err(AuthenticodeError::Algorithm)?;
    let family = crate::verify::signature_family(info.signature_oid, hash)
        .map_err(AuthenticodeError::Algorithm)?;
    let carried = crate::verify::message_certificates(&msg.certificates)
        .map_err(AuthenticodeError::Algorithm)?;
    // Only the message's certificates may be the signer (the kernel's
    // pkcs7_find_key()); the CAs complete the path.
    let signer = carried
        .iter()
        .find(|c| matches_signer(c, &info.id))
        .ok_or(AuthenticodeError::UnknownSigner)?;
    let key = crate::verify::signer_key(signer, family).map_err(AuthenticodeError::SignerKey)?;
    let content_digest = hash.digest(content);
    let signed_digest = match &info.signed_attrs {
        None => content_digest,
        Some(attrs) => {
            if attrs.message_digest != content_digest.as_slice() {
                return Err(AuthenticodeError::MessageDigestMismatch);
            }
            let mut h = hash.hasher();
            attrs.signed_bytes(|b| h.update(b));
            h.finish()
        }
    };
    key.verify(hash, &signed_digest, info.signature)
        .map_err(|source| AuthenticodeError::Signature {
            source,
            signer: signer.name.clone(),
        })?;
    let store = TrustStore {
        anchors: cas.to_vec(),
        ..TrustStore::default()
    };
    let path = build_path((signer, Source::Message), &store, &carried, None).map_err(|source| {
        AuthenticodeError::NotIssued {
            signer: signer.name.clone(),
            cas: cas.iter().map(|c| c.name.clone()).collect(),
            source: Box::new(source),
        }
    })?;
    let anchor = path.last().copied().unwrap_or(signer).clone();
    Ok((signer.clone(), anchor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(length: u32, revision: u16, kind: u16, body: &[u8], pad: usize) -> Vec<u8> {
        let mut t = length.to_le_bytes().to_vec();
        t.extend_from_slice(&revision.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(body);
        t.resize(t.len() + pad, 0);
        t
    }

    #[test]
    fn the_wrapper_follows_the_kernels_rules() {
        let body = [0x30, 0x03, 0x02, 0x01, 0x01];
        let good = table(13, 0x0200, 2, &body, 3);
        assert_eq!(strip_wrapper(&good).unwrap(), &body[..]);
        let err = |t: &[u8]| strip_wrapper(t).unwrap_err().to_string();
        assert!(err(&good[..4]).contains("shorter than its header"));
        assert!(err(&table(13, 0x0200, 2, &body, 11)).contains("does not fill"));
        assert!(err(&table(13, 0x0100, 2, &body, 3)).contains("revision 0x0100"));
        assert!(err(&table(13, 0x0200, 1, &body, 3)).contains("type 0x0001"));
        assert!(err(&table(10, 0x0200, 2, &body[..2], 6)).contains("no signature data"));
    }

    #[test]
    fn garbage_is_refused_without_panics() {
        assert!(matches!(
            verify_image(b"MZ", &[]),
            Err(AuthenticodeError::NotPe(_))
        ));
        let e = verify_image(&[0u8; 64], &[]).unwrap_err().to_string();
        assert_eq!(e, "not a PE image: no MZ signature");
        assert!(indirect_data(&[0x30, 0x00]).is_err());
    }
}
