//! ML-DSA (FIPS 204) module signatures as Linux 7.x verifies them: pure
//! ML-DSA with an empty context over the module payload, or over the signed
//! attributes when the kernel's waiver lets them through. The rules and the
//! kernel functions they follow are in `docs/module-signatures-mldsa.md`.

use ml_dsa::signature::MultipartVerifier as _;
use ml_dsa::{EncodedSignature, EncodedVerifyingKey, MlDsa44, MlDsa65, MlDsa87, MlDsaParams};

/// Content bytes of the id-ml-dsa-* OIDs' common prefix, 2.16.840.1.101.3.4.3.
const NIST_SIG: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];

/// An ML-DSA parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// ML-DSA-44 (id-ml-dsa-44, 2.16.840.1.101.3.4.3.17).
    L44,
    /// ML-DSA-65 (id-ml-dsa-65, 2.16.840.1.101.3.4.3.18).
    L65,
    /// ML-DSA-87 (id-ml-dsa-87, 2.16.840.1.101.3.4.3.19).
    L87,
}

impl Level {
    /// The level an OID (content bytes) names, the same OID in a
    /// SubjectPublicKeyInfo and in a SignerInfo's signatureAlgorithm.
    pub fn from_oid(oid: &[u8]) -> Option<Level> {
        match oid.strip_prefix(NIST_SIG) {
            Some([17]) => Some(Level::L44),
            Some([18]) => Some(Level::L65),
            Some([19]) => Some(Level::L87),
            _ => None,
        }
    }

    /// `ml-dsa-65`: the key as reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Level::L44 => "ml-dsa-44",
            Level::L65 => "ml-dsa-65",
            Level::L87 => "ml-dsa-87",
        }
    }

    /// The encoded public key's length (FIPS 204 table 2).
    pub fn key_len(self) -> usize {
        match self {
            Level::L44 => 1312,
            Level::L65 => 1952,
            Level::L87 => 2592,
        }
    }

    /// The encoded signature's length (FIPS 204 table 2).
    pub fn signature_len(self) -> usize {
        match self {
            Level::L44 => 2420,
            Level::L65 => 3309,
            Level::L87 => 4627,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an ML-DSA module signature may carry signed attributes: the
/// kernel's `CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA`, chosen in a
/// trust bundle by `mldsa-authattrs waive|reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authattrs {
    /// Refused, as for RSA and ECDSA. The default: Debian's 7.x kernels
    /// (linux-config-7.3, amd64) leave the option unset (it depends on
    /// `CONFIG_CRYPTO_MLDSA`, which they also leave unset).
    #[default]
    Reject,
    /// Accepted for ML-DSA only, as a kernel built with the option does.
    Waive,
}

impl Authattrs {
    /// The bundle directive's value.
    pub fn name(self) -> &'static str {
        match self {
            Authattrs::Reject => "reject",
            Authattrs::Waive => "waive",
        }
    }
}

/// An ML-DSA public key.
#[derive(Clone)]
pub enum Key {
    /// ML-DSA-44.
    L44(Box<ml_dsa::VerifyingKey<MlDsa44>>),
    /// ML-DSA-65.
    L65(Box<ml_dsa::VerifyingKey<MlDsa65>>),
    /// ML-DSA-87.
    L87(Box<ml_dsa::VerifyingKey<MlDsa87>>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.level())
    }
}

/// An ML-DSA key whose encoding has the wrong length for its level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{level} public key is {len} bytes (expected {})", .level.key_len())]
pub struct KeyLengthError {
    /// The level the key's algorithm names.
    pub level: Level,
    /// The length found.
    pub len: usize,
}

/// An ML-DSA signature that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MldsaSigError {
    /// The signature's length is not its level's.
    #[error("{level} signature is {len} bytes (expected {})", .level.signature_len())]
    Length {
        /// The key's level.
        level: Level,
        /// The length found.
        len: usize,
    },
    /// The signature is not a valid encoding (hint or norm bounds).
    #[error("{level} signature is not a valid encoding")]
    Encoding {
        /// The key's level.
        level: Level,
    },
    /// The signature does not match the message.
    #[error("{level} signature does not match")]
    Mismatch {
        /// The key's level.
        level: Level,
    },
}

fn decode_key<P: MlDsaParams>(
    level: Level,
    raw: &[u8],
) -> Result<Box<ml_dsa::VerifyingKey<P>>, KeyLengthError> {
    let enc = EncodedVerifyingKey::<P>::try_from(raw).map_err(|_| KeyLengthError {
        level,
        len: raw.len(),
    })?;
    Ok(Box::new(ml_dsa::VerifyingKey::<P>::decode(&enc)))
}

fn verify_parts<P: MlDsaParams>(
    key: &ml_dsa::VerifyingKey<P>,
    level: Level,
    message: &[&[u8]],
    signature: &[u8],
) -> Result<(), MldsaSigError> {
    let enc = EncodedSignature::<P>::try_from(signature).map_err(|_| MldsaSigError::Length {
        level,
        len: signature.len(),
    })?;
    let sig = ml_dsa::Signature::<P>::decode(&enc).ok_or(MldsaSigError::Encoding { level })?;
    key.multipart_verify(message, &sig)
        .map_err(|_| MldsaSigError::Mismatch { level })
}

impl Key {
    /// The key from a SubjectPublicKeyInfo's BIT STRING content (RFC 9881:
    /// the raw FIPS 204 encoding).
    pub fn from_raw(level: Level, raw: &[u8]) -> Result<Key, KeyLengthError> {
        Ok(match level {
            Level::L44 => Key::L44(decode_key(level, raw)?),
            Level::L65 => Key::L65(decode_key(level, raw)?),
            Level::L87 => Key::L87(decode_key(level, raw)?),
        })
    }

    /// The key's level.
    pub fn level(&self) -> Level {
        match self {
            Key::L44(_) => Level::L44,
            Key::L65(_) => Level::L65,
            Key::L87(_) => Level::L87,
        }
    }

    /// Checks a pure ML-DSA signature (empty context, as the kernel's
    /// `mldsa_verify()`) over the concatenation of `message`'s parts.
    pub fn verify(&self, message: &[&[u8]], signature: &[u8]) -> Result<(), MldsaSigError> {
        let level = self.level();
        match self {
            Key::L44(k) => verify_parts(k, level, message, signature),
            Key::L65(k) => verify_parts(k, level, message, signature),
            Key::L87(k) => verify_parts(k, level, message, signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml_dsa::signature::Keypair as _;

    fn keypair<P: MlDsaParams>() -> ml_dsa::SigningKey<P> {
        ml_dsa::SigningKey::<P>::from_seed(&[7u8; 32].into())
    }

    #[test]
    fn levels_from_oids() {
        let oid = |arc: u8| [NIST_SIG, &[arc]].concat();
        assert_eq!(Level::from_oid(&oid(17)), Some(Level::L44));
        assert_eq!(Level::from_oid(&oid(18)), Some(Level::L65));
        assert_eq!(Level::from_oid(&oid(19)), Some(Level::L87));
        assert_eq!(Level::from_oid(&oid(20)), None);
        assert_eq!(Level::from_oid(&oid(12)), None);
        assert_eq!(
            crate::verify::algorithm::oid_string(&oid(18)),
            "2.16.840.1.101.3.4.3.18"
        );
    }

    #[test]
    fn pure_signatures_verify_in_parts_and_refuse_changes() {
        let sk = keypair::<MlDsa65>();
        let vk = sk.verifying_key().encode();
        let key = Key::from_raw(Level::L65, &vk).unwrap();
        let sig = sk
            .expanded_key()
            .sign_deterministic(b"module payload", &[])
            .unwrap()
            .encode();
        assert_eq!(sig.len(), Level::L65.signature_len());
        key.verify(&[b"module ", b"payload"], &sig).unwrap();
        assert_eq!(
            key.verify(&[b"module payloaD"], &sig),
            Err(MldsaSigError::Mismatch { level: Level::L65 })
        );
        assert_eq!(
            key.verify(&[b"module payload"], &sig[1..]),
            Err(MldsaSigError::Length {
                level: Level::L65,
                len: 3308
            })
        );
        // A context makes another signature: the kernel signs with none.
        let with_ctx = sk
            .expanded_key()
            .sign_deterministic(b"module payload", b"ctx")
            .unwrap();
        assert!(key
            .verify(&[b"module payload"], &with_ctx.encode())
            .is_err());
    }

    #[test]
    fn key_lengths_are_checked_per_level() {
        let vk44 = keypair::<MlDsa44>().verifying_key().encode();
        assert_eq!(vk44.len(), Level::L44.key_len());
        assert!(Key::from_raw(Level::L44, &vk44).is_ok());
        assert_eq!(
            Key::from_raw(Level::L65, &vk44).unwrap_err().to_string(),
            "ml-dsa-65 public key is 1312 bytes (expected 1952)"
        );
        let vk87 = keypair::<MlDsa87>().verifying_key().encode();
        assert_eq!(vk87.len(), Level::L87.key_len());
        assert_eq!(
            Key::from_raw(Level::L87, &vk87).unwrap().level(),
            Level::L87
        );
    }
}
