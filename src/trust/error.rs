//! The trust layer's error type: a trust file that cannot be loaded, a signer
//! without a valid path to an anchor, or a certificate on the denylist; with
//! the kinds it carries (a certificate that does not parse, an issuer
//! signature that does not verify, a bad file or bundle line).
//!
//! The texts are what reports and error messages print; the verify layer
//! maps each variant to a verdict (see `verify::Error::verdict`).

use std::path::PathBuf;

use crate::verify::pubkey::{KeyError, SigError};

/// Why a trust file, a certificate or a chain was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A trust or certificate file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A trust or certificate file was read but cannot be used.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
    },
    /// A trust bundle line is wrong.
    #[error("{path}: line {line}: {problem}")]
    Bundle {
        /// The bundle.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        problem: BundleProblem,
    },
    /// A derived-anchor file cannot be used.
    #[error("{path}: derived anchor: {problem}")]
    Derived {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: DerivedProblem,
    },
    /// The signer's keyUsage lacks digitalSignature.
    #[error("'{name}' key usage does not allow digitalSignature")]
    SignerKeyUsage {
        /// The signer's name.
        name: String,
    },
    /// The signer's extendedKeyUsage lacks codeSigning.
    #[error("'{name}' extended key usage does not include codeSigning")]
    SignerExtendedKeyUsage {
        /// The signer's name.
        name: String,
    },
    /// An issuer without basicConstraints cA.
    #[error("'{name}' is not a CA (basicConstraints cA is not set)")]
    NotCa {
        /// The issuer's name.
        name: String,
    },
    /// An issuer whose keyUsage lacks keyCertSign.
    #[error("'{name}' key usage does not allow keyCertSign")]
    IssuerKeyUsage {
        /// The issuer's name.
        name: String,
    },
    /// A certificate used before its notBefore (only with a time to check).
    #[error("'{name}' is not valid yet")]
    NotYetValid {
        /// The certificate's name.
        name: String,
        /// Its notBefore, Unix time.
        not_before: i64,
        /// The time checked against.
        now: i64,
    },
    /// A certificate used after its notAfter (only with a time to check).
    #[error("'{name}' has expired")]
    Expired {
        /// The certificate's name.
        name: String,
        /// Its notAfter, Unix time.
        not_after: i64,
        /// The time checked against.
        now: i64,
    },
    /// No anchor or usable intermediate names the certificate's issuer.
    #[error("no anchor issued '{name}'")]
    NoIssuer {
        /// The certificate whose issuer was not found.
        name: String,
    },
    /// Chain building spent its budget of signature checks.
    #[error("chain building gave up: too many candidate issuers")]
    TooManyCandidates {
        /// The budget.
        checks: usize,
    },
    /// The path grew past the depth limit.
    #[error("chain longer than {max} certificates")]
    ChainTooLong {
        /// The limit.
        max: usize,
    },
    /// A candidate issuer's signature on a certificate does not verify.
    #[error("'{subject}' not validly signed by '{issuer}': {source}")]
    NotSignedBy {
        /// The certificate.
        subject: String,
        /// The candidate issuer.
        issuer: String,
        /// Why the signature does not verify (boxed: the rarest and largest
        /// variant need not size every `Result`).
        source: Box<CertSignatureError>,
    },
    /// A certificate's subject key identifier is on the denylist.
    #[error("key id {} of '{name}' is denied", crate::util::hex::colon(.key_id))]
    DeniedKeyId {
        /// The subject key identifier.
        key_id: Vec<u8>,
        /// The certificate's name.
        name: String,
    },
    /// A certificate's serial is on the denylist.
    #[error("certificate serial {} ('{name}') is denied", crate::util::hex::upper(.serial))]
    DeniedSerial {
        /// The serial's magnitude: its content bytes without a sign byte.
        serial: Vec<u8>,
        /// The certificate's name.
        name: String,
    },
}

impl Error {
    /// Whether the error is a denylist entry rather than a broken path.
    pub fn is_denial(&self) -> bool {
        matches!(self, Error::DeniedKeyId { .. } | Error::DeniedSerial { .. })
    }
}

/// Why a certificate's DER was refused. Its text is the reason alone;
/// callers say "not a valid X.509 certificate" where that helps.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// x509-parser refused it.
    #[error("{0}")]
    Parse(x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// Bytes follow the certificate.
    #[error("{len} trailing bytes after the certificate")]
    Trailing {
        /// How many.
        len: usize,
    },
    /// keyUsage, extendedKeyUsage or basicConstraints is malformed.
    #[error("extension: {0}")]
    Extension(x509_parser::error::X509Error),
}

/// Why an issuer's signature on a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertSignatureError {
    /// The issuer's own key is unusable.
    #[error("issuer '{issuer}' key: {source}")]
    IssuerKey {
        /// The issuer's name.
        issuer: String,
        /// Why its key is unusable.
        source: KeyError,
    },
    /// The signature algorithm is of another family than the issuer's key.
    #[error("certificate signature algorithm does not fit the issuer's key")]
    AlgorithmMismatch,
    /// The signature algorithm is refused (SHA-1, MD5, …).
    #[error("certificate signed with {name}")]
    RefusedAlgorithm {
        /// The algorithm.
        name: &'static str,
    },
    /// The signature algorithm is unknown.
    #[error("certificate signature algorithm {oid} unknown")]
    UnknownAlgorithm {
        /// Its OID, dotted.
        oid: String,
    },
    /// The signature does not verify.
    #[error("{0}")]
    Signature(SigError),
}

/// Why a trust or certificate file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// Larger than the cap.
    #[error("{size} bytes, larger than the {cap}-byte limit")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        cap: usize,
    },
    /// A FIFO, a device, a directory, a socket.
    #[error("not a regular file")]
    NotRegular,
    /// The file grew past the cap while it was read.
    #[error("grew past the {cap}-byte limit while being read")]
    Grew {
        /// The cap.
        cap: usize,
    },
    /// A certificate directory with too many files.
    #[error("more than {max} certificate files")]
    TooManyFiles {
        /// The limit.
        max: usize,
    },
    /// An empty certificate file.
    #[error("empty file, expected PEM or DER certificates")]
    Empty,
    /// PEM without a CERTIFICATE block.
    #[error("no CERTIFICATE block in PEM file")]
    NoPemCertificate,
    /// Not PEM, and not one DER certificate.
    #[error("neither PEM nor a DER certificate: {0}")]
    NotCertificate(CertError),
    /// A PEM block that does not decode.
    #[error("PEM block {number}: {source}")]
    Pem {
        /// The block, counted from 1.
        number: usize,
        /// What the PEM reader said.
        source: x509_parser::error::PEMError,
    },
    /// More certificates in one file than the limit.
    #[error("more than {max} certificates")]
    TooManyCertificates {
        /// The limit.
        max: usize,
    },
    /// A PEM CERTIFICATE block whose content is not a certificate.
    #[error("certificate {number}: not a valid X.509 certificate: {source}")]
    PemCertificate {
        /// The PEM block, counted from 1.
        number: usize,
        /// Why it was refused.
        source: CertError,
    },
    /// A trust bundle that is not UTF-8.
    #[error("trust bundle is not UTF-8 text: {0}")]
    NotUtf8(std::str::Utf8Error),
    /// A trust bundle without an anchor.
    #[error("trust bundle holds no certificate")]
    NoAnchor,
    /// The PEM reader found another number of certificates than the lines.
    #[error("{lines} BEGIN CERTIFICATE lines but {blocks} certificate blocks")]
    PemMismatch {
        /// Lines that are exactly `-----BEGIN CERTIFICATE-----`.
        lines: usize,
        /// Blocks the PEM reader returned.
        blocks: usize,
    },
}

/// What is wrong with a trust bundle line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleProblem {
    /// The first line is not the header.
    #[error("expected '{expected}', found '{found}'")]
    Header {
        /// The header required.
        expected: &'static str,
        /// The line found.
        found: String,
    },
    /// A directive whose value is not hex.
    #[error("'{directive}' needs a hex value, found '{value}'")]
    NotHex {
        /// The directive.
        directive: String,
        /// Its value.
        value: String,
    },
    /// A `deny-module-sha256` value of another length than 32 bytes.
    #[error("deny-module-sha256 needs 64 hex digits")]
    DigestLength,
    /// A directive modseal does not know.
    #[error("unknown directive '{0}'")]
    UnknownDirective(String),
    /// A PEM block runs to the end of the file.
    #[error("PEM block without END line")]
    UnterminatedPem,
    /// A PEM boundary other than the exact CERTIFICATE lines at column 0.
    #[error("a PEM boundary must be exactly '-----BEGIN CERTIFICATE-----' or '-----END CERTIFICATE-----' on a line of its own")]
    PemBoundary,
    /// A `kernel-signer` line not directly followed by a certificate.
    #[error("'kernel-signer' must be followed by a CERTIFICATE block")]
    KernelSignerWithoutCertificate,
    /// A setting with a value it cannot take.
    #[error("'{directive}' must be {expected}, found '{value}'")]
    BadSetting {
        /// The setting.
        directive: &'static str,
        /// Its value (clipped).
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// A setting given twice: which one wins must not be a guess.
    #[error("'{0}' given twice")]
    RepeatedSetting(&'static str),
    /// Too many lines of one setting.
    #[error("more than {max} '{directive}' lines")]
    TooManySettings {
        /// The setting.
        directive: &'static str,
        /// The bound.
        max: usize,
    },
}

/// Why a derived-anchor file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerivedProblem {
    /// The first line is not [`DERIVED_HEADER`].
    #[error("expected 'modseal-derived-anchor v1' as the first line")]
    Header,
    /// A field line is unknown, repeated or malformed.
    #[error("line {line}: {what}")]
    Line {
        /// The line, counted from 1.
        line: usize,
        /// What is wrong with it.
        what: String,
    },
    /// A required field is missing.
    #[error("no '{0}' line")]
    Missing(&'static str),
    /// No certificate, or too many.
    #[error("{0} certificates (1 to 64 required)")]
    CertificateCount(usize),
    /// A certificate block does not parse.
    #[error("certificate {number}: {reason}")]
    Certificate {
        /// Its position, from 1.
        number: usize,
        /// Why.
        reason: String,
    },
    /// Not UTF-8 text.
    #[error("not UTF-8 text")]
    NotText,
}
