//! The PKCS#7 / CMS SignedData of a module signature: detached content, one
//! signer named by issuer+serial or by subject key identifier, optional signed
//! attributes, optional certificates (used as untrusted intermediates, as the
//! kernel does).

use asn1_rs::Class;

use crate::verify::algorithm::{
    OID_CONTENT_TYPE, OID_MESSAGE_DIGEST, OID_PKCS7_DATA, OID_PKCS7_SIGNED_DATA,
};
use crate::verify::der::{DerError, Element, Reader, TAG_NULL, TAG_OCTET_STRING, TAG_OID, TAG_SET};

/// Certificates carried in a message beyond this are refused: sign-file adds
/// none, and each one costs parsing and chain-building work.
const MAX_CERTIFICATES: usize = 16;
const MAX_ATTRIBUTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs7Error {
    #[error("PKCS#7: {0}")]
    Der(#[from] DerError),
    #[error("PKCS#7: {reason} (at offset {offset})")]
    Invalid { reason: String, offset: usize },
}

fn invalid(reason: impl Into<String>, offset: usize) -> Pkcs7Error {
    Pkcs7Error::Invalid {
        reason: reason.into(),
        offset,
    }
}

/// How the signer's certificate is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// DER of the issuer Name and the serial number's content bytes.
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    /// Subject key identifier (`sign-file -k`).
    KeyId(&'a [u8]),
}

/// Signed attributes: what the signature covers instead of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedAttrs<'a> {
    /// The `[0] IMPLICIT` element as encoded; signed as a `SET OF` (tag 0x31).
    pub raw: &'a [u8],
    pub message_digest: &'a [u8],
}

impl SignedAttrs<'_> {
    /// Feeds the DER that the signature covers into `update`: the attributes
    /// re-tagged as SET OF, as RFC 5652 §5.4 requires.
    pub fn signed_bytes(&self, mut update: impl FnMut(&[u8])) {
        if let Some((_, rest)) = self.raw.split_first() {
            update(&[0x31]);
            update(rest);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo<'a> {
    pub id: SignerId<'a>,
    pub digest_oid: &'a [u8],
    pub signature_oid: &'a [u8],
    pub signed_attrs: Option<SignedAttrs<'a>>,
    pub signature: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedData<'a> {
    pub certificates: Vec<&'a [u8]>,
    pub signer: SignerInfo<'a>,
    /// Bytes between the end of the ContentInfo and the trailer.
    pub trailing: usize,
}

/// Parses a DER ContentInfo holding a detached SignedData.
pub fn parse(input: &[u8]) -> Result<SignedData<'_>, Pkcs7Error> {
    let mut top = Reader::new(input);
    let mut content_info = top.sequence("ContentInfo")?;
    // Bytes after the ContentInfo (still inside sig_len) are not refused:
    // the kernel's ASN.1 decoder stops at the end of the top-level element
    // and loads such a module, and they are outside what is signed.
    let ct = content_info.expect(TAG_OID, "ContentInfo.contentType")?;
    if ct.content != OID_PKCS7_SIGNED_DATA {
        return Err(invalid(
            format!(
                "content type {} is not signedData",
                crate::verify::algorithm::oid_string(ct.content)
            ),
            ct.offset,
        ));
    }
    let explicit = content_info
        .optional_context(0, "ContentInfo.content")?
        .ok_or_else(|| invalid("ContentInfo has no content", content_info.offset()))?;
    content_info.finish("ContentInfo")?;
    let mut wrapper = Reader::inside(&explicit, "ContentInfo.content")?;
    let mut sd = wrapper.sequence("SignedData")?;
    wrapper.finish("ContentInfo.content")?;

    let version = sd.small_uint("SignedData.version")?;
    if !matches!(version, 1 | 3) {
        return Err(invalid(
            format!("SignedData version {version} (expected 1 or 3)"),
            sd.offset(),
        ));
    }
    let digest_algs = sd.expect(TAG_SET, "SignedData.digestAlgorithms")?;
    let mut algs = Reader::inside(&digest_algs, "digestAlgorithms")?;
    while !algs.is_empty() {
        algorithm_identifier(&mut algs, "digestAlgorithms")?;
    }

    let mut encap = sd.sequence("SignedData.encapContentInfo")?;
    let ect = encap.expect(TAG_OID, "encapContentInfo.eContentType")?;
    if ect.content != OID_PKCS7_DATA {
        return Err(invalid(
            "encapsulated content type is not data (the kernel refuses it)",
            ect.offset,
        ));
    }
    if !encap.is_empty() {
        return Err(invalid(
            "content is embedded; a module signature is detached",
            encap.offset(),
        ));
    }

    let mut certificates = Vec::new();
    if let Some(certs) = sd.optional_context(0, "SignedData.certificates")? {
        let mut r = Reader::inside(&certs, "certificates")?;
        while !r.is_empty() {
            let c = r.any("certificate")?;
            if certificates.len() == MAX_CERTIFICATES {
                return Err(invalid(
                    format!("more than {MAX_CERTIFICATES} certificates"),
                    c.offset,
                ));
            }
            certificates.push(c.raw);
        }
    }
    // CRLs are ignored by the kernel; skip them when present.
    sd.optional_context(1, "SignedData.crls")?;

    let infos = sd.expect(TAG_SET, "SignedData.signerInfos")?;
    sd.finish("SignedData")?;
    let mut infos_r = Reader::inside(&infos, "signerInfos")?;
    let first = infos_r.sequence("SignerInfo")?;
    if !infos_r.is_empty() {
        return Err(invalid(
            "more than one SignerInfo; a module signature has exactly one",
            infos_r.offset(),
        ));
    }
    let signer = signer_info(first, version)?;
    let trailing = input.len() - top.offset();
    Ok(SignedData {
        certificates,
        signer,
        trailing,
    })
}

fn signer_info(mut r: Reader<'_>, sd_version: u32) -> Result<SignerInfo<'_>, Pkcs7Error> {
    let version = r.small_uint("SignerInfo.version")?;
    let sid = r.any("SignerInfo.sid")?;
    let id = match (sid.class, sid.tag, sid.constructed) {
        (Class::Universal, crate::verify::der::TAG_SEQUENCE, true) => {
            let mut ias = Reader::inside(&sid, "issuerAndSerialNumber")?;
            let issuer = ias.sequence_raw("issuer")?;
            let serial = ias.expect(crate::verify::der::TAG_INTEGER, "serialNumber")?;
            ias.finish("issuerAndSerialNumber")?;
            // As the kernel's pkcs7_note_signerinfo_version(): a v1
            // SignerInfo needs a v1 SignedData.
            if version != 1 || sd_version != 1 {
                return Err(invalid(
                    format!("SignerInfo version {version} with issuer+serial in SignedData version {sd_version} (both must be 1)"),
                    sid.offset,
                ));
            }
            SignerId::IssuerSerial {
                issuer: issuer.raw,
                serial: serial.content,
            }
        }
        (Class::ContextSpecific, 0, false) => {
            if version != 3 || sd_version != 3 {
                return Err(invalid(
                    "subject key identifier signer needs SignedData and SignerInfo version 3",
                    sid.offset,
                ));
            }
            if sid.content.is_empty() {
                return Err(invalid("empty subject key identifier", sid.offset));
            }
            SignerId::KeyId(sid.content)
        }
        _ => {
            return Err(invalid(
                "signer identifier is neither issuer+serial nor key id",
                sid.offset,
            ))
        }
    };
    let digest_oid = algorithm_identifier(&mut r, "SignerInfo.digestAlgorithm")?;
    let signed_attrs = match r.optional_context(0, "SignerInfo.signedAttrs")? {
        Some(el) => Some(signed_attrs(el)?),
        None => None,
    };
    let signature_oid = algorithm_identifier(&mut r, "SignerInfo.signatureAlgorithm")?;
    let sig = r.expect(TAG_OCTET_STRING, "SignerInfo.signature")?;
    if sig.content.is_empty() {
        return Err(invalid("empty signature value", sig.offset));
    }
    r.optional_context(1, "SignerInfo.unsignedAttrs")?;
    r.finish("SignerInfo")?;
    Ok(SignerInfo {
        id,
        digest_oid,
        signature_oid,
        signed_attrs,
        signature: sig.content,
    })
}

fn signed_attrs<'a>(el: Element<'a>) -> Result<SignedAttrs<'a>, Pkcs7Error> {
    let mut r = Reader::inside(&el, "signedAttrs")?;
    let mut message_digest = None;
    let mut content_type = false;
    let mut count = 0;
    while !r.is_empty() {
        count += 1;
        if count > MAX_ATTRIBUTES {
            return Err(invalid("too many signed attributes", r.offset()));
        }
        let mut attr = r.sequence("Attribute")?;
        let at = attr.offset();
        let oid = attr.expect(TAG_OID, "Attribute.type")?;
        let values = attr.expect(TAG_SET, "Attribute.values")?;
        attr.finish("Attribute")?;
        let is_md = oid.content == OID_MESSAGE_DIGEST;
        let is_ct = oid.content == OID_CONTENT_TYPE;
        if !is_md && !is_ct {
            continue;
        }
        let mut vr = Reader::inside(&values, "Attribute.values")?;
        let value = vr.any("attribute value")?;
        if !vr.is_empty() {
            return Err(invalid("signed attribute has more than one value", at));
        }
        if is_md {
            if message_digest.is_some()
                || value.tag != TAG_OCTET_STRING
                || value.class != Class::Universal
            {
                return Err(invalid(
                    "messageDigest attribute repeated or not an OCTET STRING",
                    at,
                ));
            }
            message_digest = Some(value.content);
        } else {
            if content_type || value.tag != TAG_OID || value.content != OID_PKCS7_DATA {
                return Err(invalid("contentType attribute repeated or not id-data", at));
            }
            content_type = true;
        }
    }
    let message_digest =
        message_digest.ok_or_else(|| invalid("signed attributes lack messageDigest", el.offset))?;
    if !content_type {
        return Err(invalid("signed attributes lack contentType", el.offset));
    }
    Ok(SignedAttrs {
        raw: el.raw,
        message_digest,
    })
}

/// Reads an AlgorithmIdentifier whose parameters are absent or NULL and
/// returns the OID content.
fn algorithm_identifier<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
) -> Result<&'a [u8], Pkcs7Error> {
    let mut seq = r.sequence(what)?;
    let oid = seq.expect(TAG_OID, what)?;
    if let Some(p) = seq.peek(what)? {
        if !(p.class == Class::Universal && p.tag == TAG_NULL && p.content.is_empty()) {
            return Err(invalid(
                format!("{what} has unexpected parameters"),
                p.offset,
            ));
        }
        seq.any(what)?;
    }
    seq.finish(what)?;
    Ok(oid.content)
}
