//! X.509 certificates reduced to what module verification needs, owned so a
//! trust store outlives the files it was read from.

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::trust::error::{CertError, CertSignatureError};
use crate::verify::algorithm::{sig_alg_from_oid, SigAlgLookup};
use crate::verify::pubkey::{KeyError, PublicKey};

/// A parsed certificate, owning its bytes.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The whole certificate, DER.
    pub der: Vec<u8>,
    /// DER of the subject Name.
    pub subject: Vec<u8>,
    /// DER of the issuer Name.
    pub issuer: Vec<u8>,
    /// Serial number content bytes, as an IssuerAndSerialNumber carries them.
    pub serial: Vec<u8>,
    /// The subject key identifier, if any.
    pub skid: Option<Vec<u8>>,
    /// The authority key identifier's keyIdentifier, if any.
    pub akid: Option<Vec<u8>>,
    /// A readable name (the subject's common name or the whole subject).
    pub name: String,
    /// The subject public key, or why modseal cannot use it.
    pub key: Result<PublicKey, KeyError>,
    /// keyUsage bits when the extension is present: (digitalSignature, keyCertSign).
    pub key_usage: Option<(bool, bool)>,
    /// Whether extendedKeyUsage, when present, includes codeSigning.
    pub eku_code_signing: Option<bool>,
    /// basicConstraints cA, when present.
    pub is_ca: Option<bool>,
    /// notBefore, Unix time.
    pub not_before: i64,
    /// notAfter, Unix time.
    pub not_after: i64,
    /// DER of the TBSCertificate, what the issuer signed.
    pub tbs: Vec<u8>,
    /// The issuer's signature algorithm, OID content.
    pub sig_alg: Vec<u8>,
    /// The issuer's signature.
    pub sig_value: Vec<u8>,
}

impl Certificate {
    /// Parses one DER certificate; trailing bytes are refused.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(CertError::Parse)?;
        if !rest.is_empty() {
            return Err(CertError::Trailing { len: rest.len() });
        }
        Self::from_parsed(&cert, &der[..der.len() - rest.len()])
    }

    fn from_parsed(cert: &X509Certificate<'_>, der: &[u8]) -> Result<Self, CertError> {
        let ext_err = CertError::Extension;
        let mut skid = None;
        let mut akid = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => skid = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    akid = a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => {}
            }
        }
        let key_usage = cert
            .key_usage()
            .map_err(ext_err)?
            .map(|ku| (ku.value.digital_signature(), ku.value.key_cert_sign()));
        let eku_code_signing = cert
            .extended_key_usage()
            .map_err(ext_err)?
            .map(|e| e.value.code_signing);
        let is_ca = cert
            .basic_constraints()
            .map_err(ext_err)?
            .map(|bc| bc.value.ca);
        let name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| cert.subject().to_string());
        Ok(Certificate {
            der: der.to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            serial: cert.raw_serial().to_vec(),
            skid,
            akid,
            name,
            key: PublicKey::from_spki(cert.public_key().raw),
            key_usage,
            eku_code_signing,
            is_ca,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            sig_alg: cert.signature_algorithm.algorithm.as_bytes().to_vec(),
            sig_value: cert.signature_value.data.to_vec(),
        })
    }

    /// The serial as `openssl x509 -serial` prints it (upper-case hex).
    pub fn serial_hex(&self) -> String {
        crate::util::hex::upper(strip_sign_byte(&self.serial))
    }

    /// Checks that `issuer` signed this certificate.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), CertSignatureError> {
        let key = issuer
            .key
            .as_ref()
            .map_err(|e| CertSignatureError::IssuerKey {
                issuer: issuer.name.clone(),
                source: e.clone(),
            })?;
        let hash = match sig_alg_from_oid(&self.sig_alg) {
            SigAlgLookup::Supported(family, Some(hash)) if family == key.family() => hash,
            SigAlgLookup::Supported(..) => return Err(CertSignatureError::AlgorithmMismatch),
            SigAlgLookup::Refused(name) => {
                return Err(CertSignatureError::RefusedAlgorithm { name })
            }
            SigAlgLookup::Unknown(oid) => return Err(CertSignatureError::UnknownAlgorithm { oid }),
        };
        let digest = hash.digest(&self.tbs);
        key.verify(hash, &digest, &self.sig_value)
            .map_err(CertSignatureError::Signature)
    }
}

/// Removes an INTEGER's leading 0x00 sign byte, as serials are shown.
pub fn strip_sign_byte(v: &[u8]) -> &[u8] {
    match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    }
}

/// The common name in a DER Name, for naming a signer whose certificate is
/// not at hand (the issuer an IssuerAndSerialNumber names).
pub fn common_name(name_der: &[u8]) -> Option<String> {
    let (_, name) = x509_parser::x509::X509Name::from_der(name_der).ok()?;
    let cn = name.iter_common_name().next()?.as_str().ok()?.to_owned();
    Some(cn)
}
