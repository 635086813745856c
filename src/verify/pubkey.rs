//! Public keys from X.509 SubjectPublicKeyInfo, and the signature check:
//! RSA PKCS#1 v1.5 (2048–4096 bits), ECDSA P-256 and P-384, ML-DSA-44/65/87
//! (whose check is over the message, not a digest: [`crate::verify::mldsa`]).

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs1v15::Pkcs1v15Sign;

use crate::verify::algorithm::{
    oid_string, HashAlgo, KeyFamily, OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA_ENCRYPTION,
};
use crate::verify::der::{DerError, Reader, TAG_BIT_STRING, TAG_INTEGER, TAG_OID};
use crate::verify::ecdsa;

/// The smallest RSA modulus accepted.
pub const RSA_MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted.
pub const RSA_MAX_BITS: usize = 4096;

/// A public key modseal can check signatures with.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// RSA, 2048–4096 bits.
    Rsa {
        /// The modulus, ready for the public operation.
        modulus: crate::verify::rsa_public::Modulus,
        /// The public exponent.
        e: u64,
        /// The modulus' size in bits.
        bits: usize,
    },
    /// ECDSA on P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// ECDSA on P-384.
    P384(p384::ecdsa::VerifyingKey),
    /// ML-DSA (FIPS 204).
    MlDsa(crate::verify::mldsa::Key),
}

/// A SubjectPublicKeyInfo modseal cannot use: refused by policy
/// ([`KeyError::is_unsupported`]) or broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The SubjectPublicKeyInfo's DER is broken.
    #[error("public key: {0}")]
    Spki(DerError),
    /// The key's BIT STRING has unused bits.
    #[error("public key bit string has unused bits")]
    UnusedBits,
    /// An EC key whose parameters are not a named curve.
    #[error("EC key without a named curve")]
    NoNamedCurve,
    /// An EC point that is not on its curve.
    #[error("EC public key is not a valid curve point")]
    BadPoint,
    /// A curve other than P-256 and P-384.
    #[error("EC curve {oid} (P-256 and P-384 are supported)")]
    UnsupportedCurve {
        /// The curve's OID, dotted.
        oid: String,
    },
    /// A key algorithm other than RSA and EC.
    #[error("public key algorithm {oid}")]
    UnsupportedAlgorithm {
        /// The algorithm's OID, dotted.
        oid: String,
    },
    /// The RSAPublicKey's DER is broken.
    #[error("RSA public key: {0}")]
    RsaDer(DerError),
    /// The modulus is zero or negative.
    #[error("RSA modulus is not positive")]
    RsaModulusNotPositive,
    /// The exponent is zero or negative.
    #[error("RSA exponent is not positive")]
    RsaExponentNotPositive,
    /// The modulus is outside [`RSA_MIN_BITS`]..=[`RSA_MAX_BITS`].
    #[error("RSA-{bits} key (supported: {RSA_MIN_BITS}-{RSA_MAX_BITS} bits)")]
    RsaSize {
        /// The modulus' size.
        bits: usize,
    },
    /// The `rsa` crate's key checks refused it.
    #[error("RSA public key rejected: {0}")]
    RsaRejected(rsa::Error),
    /// The exponent does not fit 64 bits.
    #[error("RSA public exponent wider than 64 bits")]
    RsaExponentTooWide,
    /// The modulus is even.
    #[error("RSA modulus is not odd")]
    RsaModulusEven,
    /// An ML-DSA key with parameters (RFC 9881: they must be absent).
    #[error("ML-DSA key algorithm has parameters")]
    MlDsaParameters,
    /// An ML-DSA key of the wrong length for its level.
    #[error("{0}")]
    MlDsaLength(crate::verify::mldsa::KeyLengthError),
}

impl KeyError {
    /// Whether the key is well-formed but of a kind or size modseal refuses
    /// (verdict `unsupported-algorithm`, not `malformed`).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            KeyError::NoNamedCurve
                | KeyError::UnsupportedCurve { .. }
                | KeyError::UnsupportedAlgorithm { .. }
                | KeyError::RsaSize { .. }
                | KeyError::RsaExponentTooWide
        )
    }
}

/// A signature that does not verify under a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigError {
    /// The ECDSA signature is not a DER `(r, s)` pair.
    #[error("ECDSA signature is not a valid DER (r, s) pair")]
    EcdsaEncoding,
    /// The ECDSA signature does not match the digest.
    #[error("ECDSA signature does not match")]
    EcdsaMismatch,
    /// The RSA signature's length is not the modulus'.
    #[error("RSA signature is {len} bytes, key is {key_len}")]
    RsaLength {
        /// The signature's length.
        len: usize,
        /// The modulus' length in bytes.
        key_len: usize,
    },
    /// The modulus cannot hold the DigestInfo.
    #[error("RSA key too short for the digest")]
    RsaKeyTooShort,
    /// The signature, as a number, is not below the modulus.
    #[error("RSA signature value out of range")]
    RsaOutOfRange,
    /// The recovered encoded message is not the expected one.
    #[error("RSA signature does not match")]
    RsaMismatch,
    /// An ML-DSA key asked to check a digest: ML-DSA signs the message.
    #[error("ML-DSA signs the message, not a digest")]
    MlDsaDigest,
    /// An RSA or ECDSA key asked to check a message: they check a digest.
    #[error("RSA and ECDSA check a digest, not a message")]
    DigestKey,
    /// The ML-DSA signature does not verify.
    #[error("{0}")]
    MlDsa(crate::verify::mldsa::MldsaSigError),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::Spki;
        let mut top = Reader::new(spki);
        let mut seq = top.sequence("SubjectPublicKeyInfo").map_err(bad)?;
        top.finish("SubjectPublicKeyInfo").map_err(bad)?;
        let mut alg = seq.sequence("AlgorithmIdentifier").map_err(bad)?;
        let oid = alg.expect(TAG_OID, "key algorithm").map_err(bad)?;
        let params = alg.peek("key parameters").map_err(bad)?;
        let bits = seq
            .expect(TAG_BIT_STRING, "subjectPublicKey")
            .map_err(bad)?;
        seq.finish("SubjectPublicKeyInfo").map_err(bad)?;
        let key = match bits.content.split_first() {
            Some((0, rest)) => rest,
            _ => return Err(KeyError::UnusedBits),
        };
        if oid.content == OID_RSA_ENCRYPTION {
            return Self::rsa(key);
        }
        if let Some(level) = crate::verify::mldsa::Level::from_oid(oid.content) {
            if params.is_some() {
                return Err(KeyError::MlDsaParameters);
            }
            return crate::verify::mldsa::Key::from_raw(level, key)
                .map(PublicKey::MlDsa)
                .map_err(KeyError::MlDsaLength);
        }
        if oid.content == OID_EC_PUBLIC_KEY {
            let curve = match params {
                Some(p) if p.tag == TAG_OID => p.content,
                _ => return Err(KeyError::NoNamedCurve),
            };
            let bad_point = |_| KeyError::BadPoint;
            return if curve == OID_P256 {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::P256)
                    .map_err(bad_point)
            } else if curve == OID_P384 {
                p384::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::P384)
                    .map_err(bad_point)
            } else {
                Err(KeyError::UnsupportedCurve {
                    oid: oid_string(curve),
                })
            };
        }
        Err(KeyError::UnsupportedAlgorithm {
            oid: oid_string(oid.content),
        })
    }

    fn rsa(der: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::RsaDer;
        let mut top = Reader::new(der);
        let mut seq = top.sequence("RSAPublicKey").map_err(bad)?;
        top.finish("RSAPublicKey").map_err(bad)?;
        let n = positive_integer(seq.expect(TAG_INTEGER, "modulus").map_err(bad)?.content)
            .ok_or(KeyError::RsaModulusNotPositive)?;
        let e = positive_integer(
            seq.expect(TAG_INTEGER, "publicExponent")
                .map_err(bad)?
                .content,
        )
        .ok_or(KeyError::RsaExponentNotPositive)?;
        seq.finish("RSAPublicKey").map_err(bad)?;
        let bits = bit_length(n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::RsaSize { bits });
        }
        // The rsa crate's checks decide which keys are acceptable (odd
        // modulus, exponent range); the arithmetic is rsa_public's.
        rsa::PublicKey::new_with_size_limits(
            rsa::BoxedUint::from_be_slice_vartime(n),
            rsa::BoxedUint::from_be_slice_vartime(e),
            RSA_MIN_BITS..=RSA_MAX_BITS,
        )
        .map_err(KeyError::RsaRejected)?;
        let e_trimmed = &e[e.iter().position(|&b| b != 0).unwrap_or(e.len())..];
        let e = match <[u8; 8]>::try_from(
            [
                vec![0u8; 8usize.saturating_sub(e_trimmed.len())],
                e_trimmed.to_vec(),
            ]
            .concat()
            .as_slice(),
        ) {
            Ok(b) => u64::from_be_bytes(b),
            Err(_) => return Err(KeyError::RsaExponentTooWide),
        };
        let modulus = crate::verify::rsa_public::Modulus::new(n).ok_or(KeyError::RsaModulusEven)?;
        Ok(PublicKey::Rsa { modulus, e, bits })
    }

    /// RSA or ECDSA.
    pub fn family(&self) -> KeyFamily {
        match self {
            PublicKey::Rsa { .. } => KeyFamily::Rsa,
            PublicKey::P256(_) | PublicKey::P384(_) => KeyFamily::Ecdsa,
            PublicKey::MlDsa(k) => KeyFamily::MlDsa(k.level()),
        }
    }

    /// `rsa-4096`, `ecdsa-p256`, …: the algorithm as reports name it.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("rsa-{bits}"),
            PublicKey::P256(_) => "ecdsa-p256".into(),
            PublicKey::P384(_) => "ecdsa-p384".into(),
            PublicKey::MlDsa(k) => k.level().name().into(),
        }
    }

    /// Checks `signature` over a message whose `hash` digest is `digest`
    /// (RSA, ECDSA; an ML-DSA key refuses: see [`PublicKey::verify_message`]).
    pub fn verify(&self, hash: HashAlgo, digest: &[u8], signature: &[u8]) -> Result<(), SigError> {
        match self {
            PublicKey::Rsa { modulus, e, .. } => {
                let scheme = match hash {
                    HashAlgo::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
                    HashAlgo::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
                    HashAlgo::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
                    HashAlgo::Sha3_256 => Pkcs1v15Sign::new::<sha3::Sha3_256>(),
                    HashAlgo::Sha3_384 => Pkcs1v15Sign::new::<sha3::Sha3_384>(),
                    HashAlgo::Sha3_512 => Pkcs1v15Sign::new::<sha3::Sha3_512>(),
                };
                verify_pkcs1v15(modulus, *e, &scheme.prefix, digest, signature)
            }
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SigError::EcdsaEncoding)?;
                key.verify_prehash(digest, &sig)
                    .map_err(|_| SigError::EcdsaMismatch)
            }
            PublicKey::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SigError::EcdsaEncoding)?;
                let (r, s) = sig.split_scalars();
                if ecdsa::verify_prehash(key.as_affine(), digest, &r, &s) {
                    Ok(())
                } else {
                    Err(SigError::EcdsaMismatch)
                }
            }
            PublicKey::MlDsa(_) => Err(SigError::MlDsaDigest),
        }
    }

    /// Checks an ML-DSA `signature` over the concatenation of `message`'s
    /// parts. Only ML-DSA keys take a message; others refuse.
    pub fn verify_message(&self, message: &[&[u8]], signature: &[u8]) -> Result<(), SigError> {
        match self {
            PublicKey::MlDsa(k) => k.verify(message, signature).map_err(SigError::MlDsa),
            _ => Err(SigError::DigestKey),
        }
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §8.2.2): recover the encoded message and compare
/// it with the one the digest implies.
fn verify_pkcs1v15(
    modulus: &crate::verify::rsa_public::Modulus,
    e: u64,
    prefix: &[u8],
    digest: &[u8],
    signature: &[u8],
) -> Result<(), SigError> {
    let k = modulus.byte_len();
    if signature.len() != k {
        return Err(SigError::RsaLength {
            len: signature.len(),
            key_len: k,
        });
    }
    let t_len = prefix.len() + digest.len();
    if k < t_len + 11 {
        return Err(SigError::RsaKeyTooShort);
    }
    let em = modulus.pow(signature, e).ok_or(SigError::RsaOutOfRange)?;
    let mut expected = Vec::with_capacity(k);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(k - t_len - 1, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(digest);
    if em == expected {
        Ok(())
    } else {
        Err(SigError::RsaMismatch)
    }
}

/// The magnitude of a DER INTEGER that must be positive, without its sign
/// padding byte.
fn positive_integer(content: &[u8]) -> Option<&[u8]> {
    match content {
        [first, ..] if *first & 0x80 != 0 => None,
        [0, rest @ ..] if !rest.is_empty() => Some(rest),
        [] | [0] => None,
        v => Some(v),
    }
}

fn bit_length(magnitude: &[u8]) -> usize {
    let trimmed = match magnitude.iter().position(|&b| b != 0) {
        Some(i) => &magnitude[i..],
        None => return 0,
    };
    match trimmed.first() {
        Some(b) => (trimmed.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0, 0, 0x7f]), 7);
    }

    #[test]
    fn integers() {
        assert_eq!(positive_integer(&[0x00, 0x80]), Some(&[0x80][..]));
        assert_eq!(positive_integer(&[0x80]), None);
        assert_eq!(positive_integer(&[0x00]), None);
    }

    #[test]
    fn garbage_spki_is_an_error() {
        assert!(matches!(
            PublicKey::from_spki(&[0x30, 0x03, 0x02, 0x01, 0x00]),
            Err(ref e) if !e.is_unsupported()
        ));
        assert!(PublicKey::from_spki(&[]).is_err());
    }
}
