//! Verdicts, the reports that carry them, and which verdict each
//! [`Error`] gives.

use serde::{Deserialize, Serialize};

use crate::verify::error::Error;

/// The outcome for one module, as reports and the event log name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Signed by a trusted key, on no denylist.
    Ok,
    /// No signature.
    Unsigned,
    /// No known certificate matches the signer.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// The trailer, the PKCS#7 message or the compression is broken.
    Malformed,
    /// An algorithm or key modseal refuses.
    UnsupportedAlgorithm,
    /// On the denylist.
    Denied,
    /// The signer has no valid path to a trust anchor.
    UntrustedChain,
    /// The file could not be read.
    IoError,
}

impl Verdict {
    /// The verdict's name in reports (`unknown-key`).
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unsigned => "unsigned",
            Verdict::UnknownKey => "unknown-key",
            Verdict::BadSignature => "bad-signature",
            Verdict::Malformed => "malformed",
            Verdict::UnsupportedAlgorithm => "unsupported-algorithm",
            Verdict::Denied => "denied",
            Verdict::UntrustedChain => "untrusted-chain",
            Verdict::IoError => "io-error",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is known about one module after checking it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// The module's path as the user named it.
    pub path: String,
    /// The outcome.
    pub verdict: Verdict,
    /// Why, in words.
    pub reason: String,
    /// The signer's name: the certificate's common name when the certificate
    /// is known, else what the signature names.
    pub signer: Option<String>,
    /// The key identifier the signature names, as `modinfo` prints `sig_key`.
    pub key_id: Option<String>,
    /// The signature's digest algorithm (`sha256`).
    pub hash_algo: Option<String>,
    /// SHA-256 of the file as stored (compressed, if it is).
    pub sha256: Option<String>,
    /// The raw `.note.gnu.build-id` section of the signed module, which a
    /// loaded module's sysfs note is compared with. Not in any output.
    #[serde(skip)]
    pub build_id_note: Option<Vec<u8>>,
}

/// How modules are checked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Unix time to check certificate validity against; `None` ignores dates
    /// as the kernel does.
    pub now: Option<i64>,
    /// Whether ML-DSA signatures may carry signed attributes (the bundle's
    /// `mldsa-authattrs`).
    pub mldsa_authattrs: crate::verify::mldsa::Authattrs,
}

impl Report {
    /// A report with only a verdict and a reason.
    pub fn new(path: &str, verdict: Verdict, reason: impl Into<String>) -> Self {
        Report {
            path: path.to_owned(),
            verdict,
            reason: reason.into(),
            signer: None,
            key_id: None,
            hash_algo: None,
            sha256: None,
            build_id_note: None,
        }
    }

    /// A report of a module refused for `error`.
    pub fn failed(path: &str, error: &Error) -> Self {
        Report::new(path, error.verdict(), error.to_string())
    }

    /// Sets the verdict and reason that `error` gives.
    pub fn fail(&mut self, error: &Error) {
        self.verdict = error.verdict();
        self.reason = error.to_string();
    }
}

/// The one place where failures become verdicts.
impl From<&Error> for Verdict {
    fn from(error: &Error) -> Self {
        match error {
            Error::Empty | Error::Unsigned => Verdict::Unsigned,
            Error::Trailer(_)
            | Error::Pkcs7 { .. }
            | Error::HashMismatch { .. }
            | Error::MessageCertificate { .. }
            | Error::Decompress(_) => Verdict::Malformed,
            Error::DeniedFile { .. }
            | Error::DeniedDecompressed { .. }
            | Error::DeniedPayload { .. }
            | Error::DeniedKeyId { .. } => Verdict::Denied,
            Error::RefusedHash { .. }
            | Error::UnknownHash { .. }
            | Error::RsaSignatureOid { .. }
            | Error::RefusedSignatureAlgorithm { .. }
            | Error::UnknownSignatureAlgorithm { .. }
            | Error::MldsaAttributeDigest { .. } => Verdict::UnsupportedAlgorithm,
            Error::SignerKey(e) if e.is_unsupported() => Verdict::UnsupportedAlgorithm,
            Error::SignerKey(_) => Verdict::Malformed,
            Error::UnknownSigner { .. } => Verdict::UnknownKey,
            // The kernel's -EKEYREJECTED: a signature it will not accept.
            Error::KeyMismatch { .. }
            | Error::SignedAttributes { .. }
            | Error::MldsaSignedAttributes { .. }
            | Error::MldsaLevelMismatch { .. }
            | Error::MessageDigestMismatch
            | Error::Signature { .. } => Verdict::BadSignature,
            Error::Trust(e) if e.is_denial() => Verdict::Denied,
            Error::Trust(_) => Verdict::UntrustedChain,
            Error::Read(_) => Verdict::IoError,
        }
    }
}

impl Error {
    /// The verdict a module refused for this reason gets.
    pub fn verdict(&self) -> Verdict {
        Verdict::from(self)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::trust;
    use crate::util::read::ReadError;
    use crate::verify::pubkey::KeyError;

    #[test]
    fn read_errors_are_io_errors_without_the_path() {
        let e = Error::Read(ReadError::NotRegular {
            path: PathBuf::from("/m/fifo.ko"),
        });
        assert_eq!(e.verdict(), Verdict::IoError);
        assert_eq!(e.to_string(), "not a regular file");
        let e = Error::Read(ReadError::TooLarge {
            path: PathBuf::from("/m/big.ko"),
            size: 7,
            cap: 5,
        });
        assert_eq!(
            e.to_string(),
            "file is 7 bytes, larger than the 5-byte limit"
        );
    }

    #[test]
    fn key_errors_split_by_kind() {
        let unsupported = Error::SignerKey(KeyError::RsaSize { bits: 1024 });
        assert_eq!(unsupported.verdict(), Verdict::UnsupportedAlgorithm);
        assert_eq!(
            unsupported.to_string(),
            "signer key: RSA-1024 key (supported: 2048-4096 bits)"
        );
        let broken = Error::SignerKey(KeyError::RsaModulusEven);
        assert_eq!(Verdict::from(&broken), Verdict::Malformed);
    }

    #[test]
    fn signed_attributes_are_a_rejected_signature() {
        use crate::verify::algorithm::KeyFamily;
        for family in [KeyFamily::Rsa, KeyFamily::Ecdsa] {
            let e = Error::SignedAttributes { family };
            assert_eq!(e.verdict(), Verdict::BadSignature);
            assert_eq!(
                e.to_string(),
                "signed attributes (authenticatedAttributes) present: the kernel refuses them \
                 for module signatures (pkcs7_verify: has authattrs)"
            );
        }
    }

    #[test]
    fn a_denied_key_id_says_which_form_the_signature_named() {
        use crate::verify::pkcs7::SignerIdKind;
        let skid = Error::DeniedKeyId {
            key_id: vec![0x4d],
            by: SignerIdKind::KeyId,
        };
        assert_eq!(skid.verdict(), Verdict::Denied);
        assert_eq!(skid.to_string(), "signature key id is on the denylist");
        let serial = Error::DeniedKeyId {
            key_id: vec![0x9f, 0x01],
            by: SignerIdKind::IssuerSerial,
        };
        assert_eq!(serial.verdict(), Verdict::Denied);
        assert_eq!(
            serial.to_string(),
            "signature key id is on the denylist (the signer's serial, as the signature names it by issuer and serial)"
        );
    }

    #[test]
    fn trust_denials_deny_and_other_trust_errors_break_the_chain() {
        let denied = Error::Trust(trust::Error::DeniedSerial {
            serial: vec![0x9f, 0x01],
            name: "Build key".into(),
        });
        assert_eq!(denied.verdict(), Verdict::Denied);
        assert_eq!(
            denied.to_string(),
            "certificate serial 9F01 ('Build key') is denied"
        );
        let chain = Error::Trust(trust::Error::NoIssuer {
            name: "leaf".into(),
        });
        assert_eq!(chain.verdict(), Verdict::UntrustedChain);
        assert_eq!(chain.to_string(), "no anchor issued 'leaf'");
    }
}
