//! The PKCS#7 / CMS SignedData of a module signature: detached content, one
//! signer named by issuer+serial or by subject key identifier, optional signed
//! attributes, optional certificates (used as untrusted intermediates, as the
//! kernel does).
//!
//! The same reader takes an Authenticode signature ([`parse_embedded`]): the
//! content is then embedded and of another type (`SpcIndirectDataContent`),
//! as the kernel's `pkcs7_parser.c` takes both under one grammar.

use asn1_rs::Class;

use crate::verify::algorithm::{
    OID_CONTENT_TYPE, OID_MESSAGE_DIGEST, OID_PKCS7_DATA, OID_PKCS7_SIGNED_DATA,
};
use crate::verify::der::{DerError, Element, Reader, TAG_NULL, TAG_OCTET_STRING, TAG_OID, TAG_SET};

/// Certificates carried in a message beyond this are refused: sign-file adds
/// none, and each one costs parsing and chain-building work.
const MAX_CERTIFICATES: usize = 16;
const MAX_ATTRIBUTES: usize = 32;

/// A signature that is not a PKCS#7 message the kernel would take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs7Error {
    /// A DER element could not be read.
    #[error("PKCS#7: {0}")]
    Der(#[from] DerError),
    /// The DER is sound but the message breaks a rule of module signatures.
    #[error("PKCS#7: {kind} (at offset {offset})")]
    Invalid {
        /// Which rule.
        kind: Pkcs7ErrorKind,
        /// Offset of the offending element in the PKCS#7 blob.
        offset: usize,
    },
}

/// The rule of module signatures a PKCS#7 message breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs7ErrorKind {
    /// The ContentInfo holds something else than SignedData.
    #[error("content type {oid} is not signedData")]
    NotSignedData {
        /// The content type, dotted.
        oid: String,
    },
    /// The ContentInfo has no `[0]` content.
    #[error("ContentInfo has no content")]
    NoContent,
    /// SignedData version other than 1 or 3.
    #[error("SignedData version {version} (expected 1 or 3)")]
    SignedDataVersion {
        /// The version found.
        version: u32,
    },
    /// The encapsulated content type is not id-data.
    #[error("encapsulated content type is not data (the kernel refuses it)")]
    NotData,
    /// The encapsulated content type is not the one the caller expects.
    #[error("encapsulated content type {oid} is not {expected}")]
    ContentType {
        /// The content type found, dotted.
        oid: String,
        /// The one expected, dotted.
        expected: String,
    },
    /// Embedded content was expected and is absent.
    #[error("content is detached; it must be embedded")]
    DetachedContent,
    /// The content is embedded rather than detached.
    #[error("content is embedded; a module signature is detached")]
    EmbeddedContent,
    /// More certificates than the limit (16).
    #[error("more than {max} certificates")]
    TooManyCertificates {
        /// The limit.
        max: usize,
    },
    /// More than one SignerInfo.
    #[error("more than one SignerInfo; a module signature has exactly one")]
    MultipleSigners,
    /// An issuer+serial signer outside version 1 messages.
    #[error("SignerInfo version {signer_version} with issuer+serial in SignedData version {signed_data_version} (both must be 1)")]
    IssuerSerialVersion {
        /// SignerInfo version.
        signer_version: u32,
        /// SignedData version.
        signed_data_version: u32,
    },
    /// A key-identifier signer outside version 3 messages.
    #[error("subject key identifier signer needs SignedData and SignerInfo version 3")]
    KeyIdVersion {
        /// SignerInfo version.
        signer_version: u32,
        /// SignedData version.
        signed_data_version: u32,
    },
    /// A key-identifier signer with an empty identifier.
    #[error("empty subject key identifier")]
    EmptyKeyId,
    /// The signer identifier has another form.
    #[error("signer identifier is neither issuer+serial nor key id")]
    BadSignerId,
    /// The signature value is empty.
    #[error("empty signature value")]
    EmptySignature,
    /// More signed attributes than the limit.
    #[error("too many signed attributes")]
    TooManyAttributes {
        /// The limit.
        max: usize,
    },
    /// A messageDigest or contentType attribute with several values.
    #[error("signed attribute has more than one value")]
    MultiValuedAttribute,
    /// messageDigest twice, or not an OCTET STRING.
    #[error("messageDigest attribute repeated or not an OCTET STRING")]
    BadMessageDigest,
    /// contentType twice, or not the encapsulated content's type.
    #[error("contentType attribute repeated or not the encapsulated content's type")]
    BadContentType,
    /// Signed attributes without messageDigest.
    #[error("signed attributes lack messageDigest")]
    NoMessageDigest,
    /// Signed attributes without contentType.
    #[error("signed attributes lack contentType")]
    NoContentType,
    /// An AlgorithmIdentifier with parameters other than absent or NULL.
    #[error("{what} has unexpected parameters")]
    AlgorithmParameters {
        /// Which AlgorithmIdentifier.
        what: &'static str,
    },
}

fn invalid(kind: Pkcs7ErrorKind, offset: usize) -> Pkcs7Error {
    Pkcs7Error::Invalid { kind, offset }
}

/// How the signer's certificate is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// DER of the issuer Name and the serial number's content bytes.
    IssuerSerial {
        /// DER of the issuer's Name.
        issuer: &'a [u8],
        /// Content bytes of the serial INTEGER.
        serial: &'a [u8],
    },
    /// Subject key identifier (`sign-file -k`).
    KeyId(&'a [u8]),
}

/// Which form a [`SignerId`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerIdKind {
    /// [`SignerId::IssuerSerial`].
    IssuerSerial,
    /// [`SignerId::KeyId`].
    KeyId,
}

impl SignerId<'_> {
    /// The identifier's form.
    pub fn kind(&self) -> SignerIdKind {
        match self {
            SignerId::IssuerSerial { .. } => SignerIdKind::IssuerSerial,
            SignerId::KeyId(_) => SignerIdKind::KeyId,
        }
    }
}

/// Signed attributes: what the signature covers instead of the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedAttrs<'a> {
    /// The `[0] IMPLICIT` element as encoded; signed as a `SET OF` (tag 0x31).
    pub raw: &'a [u8],
    /// The messageDigest attribute's value: the content's digest.
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

/// The one signer of a module signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo<'a> {
    /// How the signer's certificate is named.
    pub id: SignerId<'a>,
    /// The digest algorithm's OID content.
    pub digest_oid: &'a [u8],
    /// The signature algorithm's OID content.
    pub signature_oid: &'a [u8],
    /// Signed attributes, when the signature covers them.
    pub signed_attrs: Option<SignedAttrs<'a>>,
    /// The signature value.
    pub signature: &'a [u8],
}

/// Embedded content (`encapContentInfo.eContent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded<'a> {
    /// The content's element as encoded, header included.
    pub raw: &'a [u8],
    /// Its content bytes, without the header: what the messageDigest
    /// attribute covers (the kernel's `pkcs7->data`, RFC 2315 §9.3).
    pub content: &'a [u8],
    /// Where the element starts in the PKCS#7 blob.
    pub offset: usize,
}

/// What the encapsulated content must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// id-data, detached: a module signature.
    DetachedData,
    /// This type (OID content), embedded.
    Embedded(&'static [u8]),
}

impl Expected {
    fn content_type(self) -> &'static [u8] {
        match self {
            Expected::DetachedData => OID_PKCS7_DATA,
            Expected::Embedded(oid) => oid,
        }
    }
}

/// A parsed module signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedData<'a> {
    /// The embedded content; `None` for a module signature (detached).
    pub embedded: Option<Embedded<'a>>,
    /// DER of the certificates the message carries (untrusted).
    pub certificates: Vec<&'a [u8]>,
    /// The signer.
    pub signer: SignerInfo<'a>,
    /// Bytes between the end of the ContentInfo and the trailer.
    pub trailing: usize,
}

/// Parses a DER ContentInfo holding a detached SignedData.
pub fn parse(input: &[u8]) -> Result<SignedData<'_>, Pkcs7Error> {
    parse_as(input, Expected::DetachedData)
}

/// Parses a DER ContentInfo holding a SignedData whose content, of type
/// `content_type` (OID content bytes), is embedded, and whose contentType
/// attribute, if it has signed attributes, names that type.
pub fn parse_embedded<'a>(
    input: &'a [u8],
    content_type: &'static [u8],
) -> Result<SignedData<'a>, Pkcs7Error> {
    parse_as(input, Expected::Embedded(content_type))
}

fn parse_as(input: &[u8], expected: Expected) -> Result<SignedData<'_>, Pkcs7Error> {
    let mut top = Reader::new(input);
    let mut content_info = top.sequence("ContentInfo")?;
    // Bytes after the ContentInfo (still inside sig_len) are not refused:
    // the kernel's ASN.1 decoder stops at the end of the top-level element
    // and loads such a module, and they are outside what is signed.
    let ct = content_info.expect(TAG_OID, "ContentInfo.contentType")?;
    if ct.content != OID_PKCS7_SIGNED_DATA {
        return Err(invalid(
            Pkcs7ErrorKind::NotSignedData {
                oid: crate::verify::algorithm::oid_string(ct.content),
            },
            ct.offset,
        ));
    }
    let explicit = content_info
        .optional_context(0, "ContentInfo.content")?
        .ok_or_else(|| invalid(Pkcs7ErrorKind::NoContent, content_info.offset()))?;
    content_info.finish("ContentInfo")?;
    let mut wrapper = Reader::inside(&explicit, "ContentInfo.content")?;
    let sd = wrapper.sequence("SignedData")?;
    wrapper.finish("ContentInfo.content")?;
    let (embedded, certificates, signer) = signed_data(sd, expected)?;
    let trailing = input.len() - top.offset();
    Ok(SignedData {
        embedded,
        certificates,
        signer,
        trailing,
    })
}

/// What a SignedData holds: embedded content, certificates, the signer.
type SignedDataParts<'a> = (Option<Embedded<'a>>, Vec<&'a [u8]>, SignerInfo<'a>);

/// The SignedData's content: its certificates and its one SignerInfo.
fn signed_data(mut sd: Reader<'_>, expected: Expected) -> Result<SignedDataParts<'_>, Pkcs7Error> {
    let version = sd.small_uint("SignedData.version")?;
    if !matches!(version, 1 | 3) {
        return Err(invalid(
            Pkcs7ErrorKind::SignedDataVersion { version },
            sd.offset(),
        ));
    }
    let digest_algs = sd.expect(TAG_SET, "SignedData.digestAlgorithms")?;
    let mut algs = Reader::inside(&digest_algs, "digestAlgorithms")?;
    while !algs.is_empty() {
        algorithm_identifier(&mut algs, "digestAlgorithms")?;
    }
    let embedded = encap_content_info(&mut sd, expected)?;
    let certificates = certificates(&mut sd)?;
    // CRLs are ignored by the kernel; skip them when present.
    sd.optional_context(1, "SignedData.crls")?;

    let infos = sd.expect(TAG_SET, "SignedData.signerInfos")?;
    sd.finish("SignedData")?;
    let mut infos_r = Reader::inside(&infos, "signerInfos")?;
    let first = infos_r.sequence("SignerInfo")?;
    if !infos_r.is_empty() {
        return Err(invalid(Pkcs7ErrorKind::MultipleSigners, infos_r.offset()));
    }
    let signer = signer_info(first, version, expected.content_type())?;
    Ok((embedded, certificates, signer))
}

/// The encapsulated content: id-data, detached, or the expected type,
/// embedded as `[0] EXPLICIT` one element.
fn encap_content_info<'a>(
    sd: &mut Reader<'a>,
    expected: Expected,
) -> Result<Option<Embedded<'a>>, Pkcs7Error> {
    let mut encap = sd.sequence("SignedData.encapContentInfo")?;
    let ect = encap.expect(TAG_OID, "encapContentInfo.eContentType")?;
    let Expected::Embedded(want) = expected else {
        if ect.content != OID_PKCS7_DATA {
            return Err(invalid(Pkcs7ErrorKind::NotData, ect.offset));
        }
        if !encap.is_empty() {
            return Err(invalid(Pkcs7ErrorKind::EmbeddedContent, encap.offset()));
        }
        return Ok(None);
    };
    if ect.content != want {
        let kind = Pkcs7ErrorKind::ContentType {
            oid: crate::verify::algorithm::oid_string(ect.content),
            expected: crate::verify::algorithm::oid_string(want),
        };
        return Err(invalid(kind, ect.offset));
    }
    let explicit = encap
        .optional_context(0, "encapContentInfo.eContent")?
        .ok_or_else(|| invalid(Pkcs7ErrorKind::DetachedContent, encap.offset()))?;
    encap.finish("SignedData.encapContentInfo")?;
    let mut inner = Reader::inside(&explicit, "encapContentInfo.eContent")?;
    let el = inner.any("encapContentInfo.eContent")?;
    inner.finish("encapContentInfo.eContent")?;
    Ok(Some(Embedded {
        raw: el.raw,
        content: el.content,
        offset: el.offset,
    }))
}

/// The optional `[0]` certificates, as DER, at most [`MAX_CERTIFICATES`].
fn certificates<'a>(sd: &mut Reader<'a>) -> Result<Vec<&'a [u8]>, Pkcs7Error> {
    let mut certificates = Vec::new();
    if let Some(certs) = sd.optional_context(0, "SignedData.certificates")? {
        let mut r = Reader::inside(&certs, "certificates")?;
        while !r.is_empty() {
            let c = r.any("certificate")?;
            if certificates.len() == MAX_CERTIFICATES {
                return Err(invalid(
                    Pkcs7ErrorKind::TooManyCertificates {
                        max: MAX_CERTIFICATES,
                    },
                    c.offset,
                ));
            }
            certificates.push(c.raw);
        }
    }
    Ok(certificates)
}

fn signer_info<'a>(
    mut r: Reader<'a>,
    sd_version: u32,
    content_type: &'static [u8],
) -> Result<SignerInfo<'a>, Pkcs7Error> {
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
                    Pkcs7ErrorKind::IssuerSerialVersion {
                        signer_version: version,
                        signed_data_version: sd_version,
                    },
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
                    Pkcs7ErrorKind::KeyIdVersion {
                        signer_version: version,
                        signed_data_version: sd_version,
                    },
                    sid.offset,
                ));
            }
            if sid.content.is_empty() {
                return Err(invalid(Pkcs7ErrorKind::EmptyKeyId, sid.offset));
            }
            SignerId::KeyId(sid.content)
        }
        _ => return Err(invalid(Pkcs7ErrorKind::BadSignerId, sid.offset)),
    };
    let digest_oid = algorithm_identifier(&mut r, "SignerInfo.digestAlgorithm")?;
    let signed_attrs = match r.optional_context(0, "SignerInfo.signedAttrs")? {
        Some(el) => Some(signed_attrs(el, content_type)?),
        None => None,
    };
    let signature_oid = algorithm_identifier(&mut r, "SignerInfo.signatureAlgorithm")?;
    let sig = r.expect(TAG_OCTET_STRING, "SignerInfo.signature")?;
    if sig.content.is_empty() {
        return Err(invalid(Pkcs7ErrorKind::EmptySignature, sig.offset));
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

fn signed_attrs<'a>(
    el: Element<'a>,
    content_type_oid: &'static [u8],
) -> Result<SignedAttrs<'a>, Pkcs7Error> {
    let mut r = Reader::inside(&el, "signedAttrs")?;
    let mut message_digest = None;
    let mut content_type = false;
    let mut count = 0;
    while !r.is_empty() {
        count += 1;
        if count > MAX_ATTRIBUTES {
            return Err(invalid(
                Pkcs7ErrorKind::TooManyAttributes {
                    max: MAX_ATTRIBUTES,
                },
                r.offset(),
            ));
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
            return Err(invalid(Pkcs7ErrorKind::MultiValuedAttribute, at));
        }
        if is_md {
            if message_digest.is_some()
                || value.tag != TAG_OCTET_STRING
                || value.class != Class::Universal
            {
                return Err(invalid(Pkcs7ErrorKind::BadMessageDigest, at));
            }
            message_digest = Some(value.content);
        } else {
            if content_type || value.tag != TAG_OID || value.content != content_type_oid {
                return Err(invalid(Pkcs7ErrorKind::BadContentType, at));
            }
            content_type = true;
        }
    }
    let message_digest =
        message_digest.ok_or_else(|| invalid(Pkcs7ErrorKind::NoMessageDigest, el.offset))?;
    if !content_type {
        return Err(invalid(Pkcs7ErrorKind::NoContentType, el.offset));
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
                Pkcs7ErrorKind::AlgorithmParameters { what },
                p.offset,
            ));
        }
        seq.any(what)?;
    }
    seq.finish(what)?;
    Ok(oid.content)
}
