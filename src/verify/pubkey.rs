//! Public keys from X.509 SubjectPublicKeyInfo, and the signature check:
//! RSA PKCS#1 v1.5 (2048–4096 bits), ECDSA P-256 and P-384.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rsa::pkcs1v15::Pkcs1v15Sign;

use crate::verify::algorithm::{
    oid_string, HashAlgo, KeyFamily, OID_EC_PUBLIC_KEY, OID_P256, OID_P384, OID_RSA_ENCRYPTION,
};
use crate::verify::der::{Reader, TAG_BIT_STRING, TAG_INTEGER, TAG_OID};

pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 4096;

#[derive(Debug, Clone)]
pub enum PublicKey {
    Rsa {
        modulus: crate::verify::rsa_public::Modulus,
        e: u64,
        bits: usize,
    },
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is of a kind or size modseal refuses.
    #[error("{0}")]
    Unsupported(String),
    /// The key's encoding is broken.
    #[error("{0}")]
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let bad = |e: crate::verify::der::DerError| KeyError::Malformed(format!("public key: {e}"));
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
            _ => {
                return Err(KeyError::Malformed(
                    "public key bit string has unused bits".into(),
                ))
            }
        };
        if oid.content == OID_RSA_ENCRYPTION {
            return Self::rsa(key);
        }
        if oid.content == OID_EC_PUBLIC_KEY {
            let curve = match params {
                Some(p) if p.tag == TAG_OID => p.content,
                _ => return Err(KeyError::Unsupported("EC key without a named curve".into())),
            };
            let bad_point =
                |_| KeyError::Malformed("EC public key is not a valid curve point".into());
            return if curve == OID_P256 {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::P256)
                    .map_err(bad_point)
            } else if curve == OID_P384 {
                p384::ecdsa::VerifyingKey::from_sec1_bytes(key)
                    .map(PublicKey::P384)
                    .map_err(bad_point)
            } else {
                Err(KeyError::Unsupported(format!(
                    "EC curve {} (P-256 and P-384 are supported)",
                    oid_string(curve)
                )))
            };
        }
        Err(KeyError::Unsupported(format!(
            "public key algorithm {}",
            oid_string(oid.content)
        )))
    }

    fn rsa(der: &[u8]) -> Result<Self, KeyError> {
        let bad =
            |e: crate::verify::der::DerError| KeyError::Malformed(format!("RSA public key: {e}"));
        let mut top = Reader::new(der);
        let mut seq = top.sequence("RSAPublicKey").map_err(bad)?;
        top.finish("RSAPublicKey").map_err(bad)?;
        let n = positive_integer(seq.expect(TAG_INTEGER, "modulus").map_err(bad)?.content)
            .ok_or_else(|| KeyError::Malformed("RSA modulus is not positive".into()))?;
        let e = positive_integer(
            seq.expect(TAG_INTEGER, "publicExponent")
                .map_err(bad)?
                .content,
        )
        .ok_or_else(|| KeyError::Malformed("RSA exponent is not positive".into()))?;
        seq.finish("RSAPublicKey").map_err(bad)?;
        let bits = bit_length(n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::Unsupported(format!(
                "RSA-{bits} key (supported: {RSA_MIN_BITS}-{RSA_MAX_BITS} bits)"
            )));
        }
        // The rsa crate's checks decide which keys are acceptable (odd
        // modulus, exponent range); the arithmetic is rsa_public's.
        rsa::PublicKey::new_with_size_limits(
            rsa::BoxedUint::from_be_slice_vartime(n),
            rsa::BoxedUint::from_be_slice_vartime(e),
            RSA_MIN_BITS..=RSA_MAX_BITS,
        )
        .map_err(|err| KeyError::Malformed(format!("RSA public key rejected: {err}")))?;
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
            Err(_) => {
                return Err(KeyError::Unsupported(
                    "RSA public exponent wider than 64 bits".into(),
                ))
            }
        };
        let modulus = crate::verify::rsa_public::Modulus::new(n)
            .ok_or_else(|| KeyError::Malformed("RSA modulus is not odd".into()))?;
        Ok(PublicKey::Rsa { modulus, e, bits })
    }

    pub fn family(&self) -> KeyFamily {
        match self {
            PublicKey::Rsa { .. } => KeyFamily::Rsa,
            PublicKey::P256(_) | PublicKey::P384(_) => KeyFamily::Ecdsa,
        }
    }

    /// `rsa-4096`, `ecdsa-p256`, …: the algorithm as reports name it.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("rsa-{bits}"),
            PublicKey::P256(_) => "ecdsa-p256".into(),
            PublicKey::P384(_) => "ecdsa-p384".into(),
        }
    }

    /// Checks `signature` over a message whose `hash` digest is `digest`.
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
                let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| {
                    SigError::Invalid("ECDSA signature is not a valid DER (r, s) pair".into())
                })?;
                key.verify_prehash(digest, &sig)
                    .map_err(|_| SigError::Invalid("ECDSA signature does not match".into()))
            }
            PublicKey::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| {
                    SigError::Invalid("ECDSA signature is not a valid DER (r, s) pair".into())
                })?;
                key.verify_prehash(digest, &sig)
                    .map_err(|_| SigError::Invalid("ECDSA signature does not match".into()))
            }
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
        return Err(SigError::Invalid(format!(
            "RSA signature is {} bytes, key is {k}",
            signature.len()
        )));
    }
    let t_len = prefix.len() + digest.len();
    if k < t_len + 11 {
        return Err(SigError::Invalid("RSA key too short for the digest".into()));
    }
    let em = modulus
        .pow(signature, e)
        .ok_or_else(|| SigError::Invalid("RSA signature value out of range".into()))?;
    let mut expected = Vec::with_capacity(k);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(k - t_len - 1, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(prefix);
    expected.extend_from_slice(digest);
    if em == expected {
        Ok(())
    } else {
        Err(SigError::Invalid("RSA signature does not match".into()))
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
            Err(KeyError::Malformed(_))
        ));
        assert!(PublicKey::from_spki(&[]).is_err());
    }
}
