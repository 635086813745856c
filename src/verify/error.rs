//! Why a module is not verified. An error's text is the report's reason,
//! word for word; `verdict.rs` says which verdict each error gives.

use crate::trust::{self, CertError};
use crate::util::read::ReadError;
use crate::verify::algorithm::{HashAlgo, KeyFamily};
use crate::verify::modsig::TrailerError;
use crate::verify::pkcs7::{Pkcs7Error, SignerIdKind};
use crate::verify::pubkey::{KeyError, SigError};

/// Why a module failed verification, with what the report says about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file is empty.
    #[error("empty file")]
    Empty,
    /// The file does not end with the signature magic.
    #[error("no signature (module signature magic not found at end of file)")]
    Unsigned,
    /// The trailer breaks a rule of `kernel/module_signature.c`.
    #[error("signature trailer: {0}")]
    Trailer(TrailerError),
    /// The signature is not a PKCS#7 message the kernel would take.
    #[error("{source} (signature starts at file offset {pkcs7_offset})")]
    Pkcs7 {
        /// What is wrong with it.
        source: Pkcs7Error,
        /// Where the PKCS#7 blob starts in the module.
        pkcs7_offset: usize,
    },
    /// The SHA-256 of the file as stored is on the denylist.
    #[error("module file SHA-256 is on the denylist")]
    DeniedFile {
        /// The denied digest.
        sha256: [u8; 32],
    },
    /// The SHA-256 of the decompressed module is on the denylist.
    #[error("decompressed module SHA-256 is on the denylist")]
    DeniedDecompressed {
        /// The denied digest.
        sha256: [u8; 32],
    },
    /// The SHA-256 of the signed content is on the denylist.
    #[error("signed module content (payload) SHA-256 is on the denylist")]
    DeniedPayload {
        /// The denied digest.
        sha256: [u8; 32],
    },
    /// The digest algorithm is known and refused (SHA-1, MD5, SHA-224).
    #[error("hash algorithm {name} is refused")]
    RefusedHash {
        /// The algorithm.
        name: &'static str,
    },
    /// The digest algorithm is unknown.
    #[error("unknown hash algorithm OID {oid}")]
    UnknownHash {
        /// Its OID, dotted.
        oid: String,
    },
    /// An RSA signature named by a combined OID (sha256WithRSAEncryption, …),
    /// which the kernel's `pkcs7_sig_note_pkey_algo()` refuses.
    #[error(
        "SignerInfo signature algorithm {oid} (the kernel accepts only rsaEncryption for RSA)"
    )]
    RsaSignatureOid {
        /// The OID, dotted.
        oid: String,
    },
    /// The signature algorithm names another hash than the digest algorithm.
    #[error("signature algorithm names a different hash than digest algorithm {digest}")]
    HashMismatch {
        /// The digest algorithm.
        digest: HashAlgo,
        /// The hash the signature algorithm names.
        signature: HashAlgo,
    },
    /// The signature algorithm is known and refused.
    #[error("signature algorithm {name} is refused")]
    RefusedSignatureAlgorithm {
        /// The algorithm.
        name: &'static str,
    },
    /// The signature algorithm is unknown.
    #[error("unknown signature algorithm OID {oid}")]
    UnknownSignatureAlgorithm {
        /// Its OID, dotted.
        oid: String,
    },
    /// A certificate the message carries does not parse.
    #[error("PKCS#7 certificate {number}: not a valid X.509 certificate: {source}")]
    MessageCertificate {
        /// Its place in the message, counted from 1.
        number: usize,
        /// Why it was refused.
        source: CertError,
    },
    /// No anchor, `--cert` certificate or message certificate is the signer.
    #[error(
        "no trusted or supplied certificate matches the signer's {} {key_id}",
        signer_id_name(*.by)
    )]
    UnknownSigner {
        /// How the signature names its signer.
        by: SignerIdKind,
        /// The serial or key identifier, as the report's `key_id`.
        key_id: String,
    },
    /// The signer's certificate holds a key modseal cannot use.
    #[error("signer key: {0}")]
    SignerKey(KeyError),
    /// The signature algorithm is of another family than the signer's key.
    #[error("signature algorithm does not fit the signer's {key} key")]
    KeyMismatch {
        /// The signer's key, as reports name it (`rsa-4096`).
        key: String,
        /// The family the signature algorithm names.
        signature: KeyFamily,
    },
    /// The key identifier the signature names (its subject key identifier,
    /// or the serial of its issuer+serial, as the report's `key_id`) is on
    /// the denylist.
    #[error("signature key id is on the denylist{}", denied_by(*.by))]
    DeniedKeyId {
        /// The key identifier as denied.
        key_id: Vec<u8>,
        /// How the signature names its signer.
        by: SignerIdKind,
    },
    /// The SignerInfo carries signed attributes, which the kernel refuses in
    /// a module signature (`pkcs7_verify()`, -EKEYREJECTED) before it looks
    /// for the signer.
    #[error(
        "signed attributes (authenticatedAttributes) present: the kernel refuses them \
         for module signatures (pkcs7_verify: has authattrs)"
    )]
    SignedAttributes {
        /// The signature's key family.
        family: KeyFamily,
    },
    /// An ML-DSA SignerInfo with signed attributes while the waiver
    /// (`CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA`, bundle
    /// `mldsa-authattrs waive`) is off: `pkcs7_verify()` refuses it as it
    /// refuses them for RSA and ECDSA.
    #[error(
        "signed attributes (authenticatedAttributes) present with {level}: the kernel refuses \
         them for module signatures unless built with \
         CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA (pkcs7_verify: has authattrs; \
         trust bundle: mldsa-authattrs waive)"
    )]
    MldsaSignedAttributes {
        /// The level the signature algorithm names.
        level: crate::verify::mldsa::Level,
    },
    /// Waived ML-DSA signed attributes with a digest algorithm other than
    /// SHA-512: the kernel's `software_key_determine_akcipher()` takes
    /// ML-DSA with hash "none" (no attributes) or "sha512" only.
    #[error(
        "{level} signature with signed attributes uses digest algorithm {digest}; \
         the kernel takes only sha512 there (software_key_determine_akcipher)"
    )]
    MldsaAttributeDigest {
        /// The level the signature algorithm names.
        level: crate::verify::mldsa::Level,
        /// The SignerInfo's digest algorithm.
        digest: HashAlgo,
    },
    /// The signature algorithm names another ML-DSA level than the signer's
    /// key has (`public_key_verify_signature()`: -EKEYREJECTED).
    #[error("ML-DSA level mismatch: the signature is {signature}, the signer's key is {key}")]
    MldsaLevelMismatch {
        /// The signer's key's level.
        key: crate::verify::mldsa::Level,
        /// The level the signature algorithm names.
        signature: crate::verify::mldsa::Level,
    },
    /// The messageDigest attribute is not the module's digest.
    #[error("messageDigest attribute does not match the module's digest")]
    MessageDigestMismatch,
    /// The signature does not verify under the signer's key.
    #[error("{source} (signer '{signer}', {key})")]
    Signature {
        /// Why.
        source: SigError,
        /// The signer's name.
        signer: String,
        /// The signer's key, as reports name it.
        key: String,
    },
    /// The signer has no valid path to an anchor, or a certificate on its
    /// path is denied.
    #[error("{0}")]
    Trust(trust::Error),
    /// The module file could not be read (the image layer reads it).
    #[error("{}", read_reason(.0))]
    Read(ReadError),
    /// The stored module could not be decompressed (the image layer's error).
    #[error("{0}")]
    Decompress(Box<dyn std::error::Error + Send + Sync>),
}

fn signer_id_name(by: SignerIdKind) -> &'static str {
    match by {
        SignerIdKind::IssuerSerial => "issuer and serial",
        SignerIdKind::KeyId => "subject key identifier",
    }
}

/// Which form of the key id was denied; the subject key identifier's
/// reason is the one reports have always given.
fn denied_by(by: SignerIdKind) -> &'static str {
    match by {
        SignerIdKind::IssuerSerial => {
            " (the signer's serial, as the signature names it by issuer and serial)"
        }
        SignerIdKind::KeyId => "",
    }
}

/// A read error without its path: the report names the module already.
fn read_reason(e: &ReadError) -> String {
    match e {
        ReadError::Open { source, .. } => format!("cannot open: {source}"),
        ReadError::Stat { source, .. } => format!("cannot stat: {source}"),
        ReadError::NotRegular { .. } => "not a regular file".into(),
        ReadError::TooLarge { size, cap, .. } => {
            format!("file is {size} bytes, larger than the {cap}-byte limit")
        }
        ReadError::Read { source, .. } => format!("cannot read: {source}"),
        ReadError::Grew { cap, .. } => {
            format!("file grew past the {cap}-byte limit while being read")
        }
    }
}
