//! `quote.sig` (`tpm2_quote -s`, its default "tss" format): a marshalled
//! `TPMT_SIGNATURE`, and the check of it over `quote.msg` with the AK. The
//! one parser and the one check: `modseal quote` checks its TPM's signature
//! with them, `modseal attest` a machine's.

use p256::ecdsa::signature::hazmat::PrehashVerifier;

use super::evidence::MAX_QUOTE_FILE;
use super::selection::{bank_of, hash_alg_name};
use crate::tpm::marshal::{
    MarshalError, Reader, MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES, TPM_ALG_ECDAA, TPM_ALG_ECDSA,
    TPM_ALG_ECSCHNORR, TPM_ALG_HMAC, TPM_ALG_NULL, TPM_ALG_RSAPSS, TPM_ALG_RSASSA, TPM_ALG_SHA1,
    TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512, TPM_ALG_SM2,
};
use crate::tpm::PcrBank;
use crate::verify::algorithm::HashAlgo;
use crate::verify::pubkey::{PublicKey, SigError};

/// Why bytes are not a `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigParseError {
    /// Larger than any signature.
    #[error("{0} bytes, more than the {MAX_QUOTE_FILE}-byte limit")]
    TooLarge(usize),
    /// Truncated, a size over its bound, or trailing bytes.
    #[error(transparent)]
    Marshal(#[from] MarshalError),
    /// An HMAC whose hash has no known digest length.
    #[error("HMAC with unknown hash 0x{0:04x}")]
    HmacHash(u16),
    /// Not a signature scheme at all.
    #[error("sigAlg 0x{0:04x} is not a TPM signature scheme")]
    Scheme(u16),
}

/// Why a signature does not show that the AK signed the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigCheckError {
    /// `TPM_ALG_NULL`.
    #[error("quote.sig holds no signature (TPM_ALG_NULL)")]
    Null,
    /// A TPM HMAC, which any holder of the key could make.
    #[error("quote.sig is an HMAC, not a signature by an attestation key")]
    Hmac,
    /// SHA-1, refused.
    #[error("the signature uses SHA-1, which is refused")]
    Sha1,
    /// A hash modseal does not check with.
    #[error("the signature uses hash 0x{0:04x} (sha256, sha384 and sha512 are supported)")]
    Hash(u16),
    /// A scheme modseal does not check (RSA-PSS, ECDAA, SM2, Schnorr).
    #[error("signature scheme {} is not supported (rsassa and ecdsa are)", sig_alg_name(*.0))]
    Scheme(u16),
    /// A scheme of another key type than the AK's.
    #[error("an {} signature cannot come from this AK ({ak}): the quote was signed by another key", sig_alg_name(*.scheme))]
    KeyType {
        /// The signature's scheme.
        scheme: u16,
        /// The AK, as [`PublicKey::describe`] names it.
        ak: String,
    },
    /// An ECDSA scalar longer than the curve's order.
    #[error("ECDSA {which} is {len} bytes, longer than the curve's {width}")]
    ScalarLength {
        /// `r` or `s`.
        which: &'static str,
        /// Its length as sent.
        len: usize,
        /// The curve's scalar length.
        width: usize,
    },
    /// An ECDSA scalar of zero, or not below the order.
    #[error("ECDSA r or s is zero or not below the group order")]
    ScalarRange,
    /// The ECDSA equation does not hold.
    #[error("ECDSA signature does not match")]
    EcdsaMismatch,
    /// The RSA check failed ([`PublicKey::verify`] says why).
    #[error(transparent)]
    Rsa(#[from] SigError),
}

/// The name of a signature scheme, or its number.
pub fn sig_alg_name(alg: u16) -> String {
    match alg {
        TPM_ALG_RSASSA => "rsassa".into(),
        TPM_ALG_RSAPSS => "rsapss".into(),
        TPM_ALG_ECDSA => "ecdsa".into(),
        TPM_ALG_ECDAA => "ecdaa".into(),
        TPM_ALG_SM2 => "sm2".into(),
        TPM_ALG_ECSCHNORR => "ecschnorr".into(),
        TPM_ALG_HMAC => "hmac".into(),
        TPM_ALG_NULL => "null".into(),
        other => format!("0x{other:04x}"),
    }
}

/// A `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// RSASSA-PKCS1-v1_5 or RSA-PSS: the signature as a big-endian integer.
    Rsa {
        /// `TPM_ALG_RSASSA` or `TPM_ALG_RSAPSS`.
        scheme: u16,
        /// The hash signed.
        hash: u16,
        /// The signature.
        sig: Vec<u8>,
    },
    /// ECDSA and the other ECC schemes: `r` and `s`, big-endian.
    Ecc {
        /// The ECC scheme.
        scheme: u16,
        /// The hash signed.
        hash: u16,
        /// `signatureR`.
        r: Vec<u8>,
        /// `signatureS`.
        s: Vec<u8>,
    },
    /// An HMAC: no public-key signature at all.
    Hmac {
        /// The HMAC's hash.
        hash: u16,
    },
    /// `TPM_ALG_NULL`: no signature.
    Null,
}

impl Signature {
    /// `sigAlg`.
    pub fn scheme(&self) -> u16 {
        match self {
            Signature::Rsa { scheme, .. } | Signature::Ecc { scheme, .. } => *scheme,
            Signature::Hmac { .. } => TPM_ALG_HMAC,
            Signature::Null => TPM_ALG_NULL,
        }
    }

    /// The hash signed, if any.
    pub fn hash(&self) -> Option<u16> {
        match self {
            Signature::Rsa { hash, .. }
            | Signature::Ecc { hash, .. }
            | Signature::Hmac { hash } => Some(*hash),
            Signature::Null => None,
        }
    }

    /// `rsassa/sha256`.
    pub fn describe(&self) -> String {
        match self.hash() {
            Some(h) => format!("{}/{}", sig_alg_name(self.scheme()), hash_alg_name(h)),
            None => sig_alg_name(self.scheme()),
        }
    }
}

/// Parses a marshalled `TPMT_SIGNATURE` (tpm2-tools' "tss" signature format).
pub fn parse_signature(data: &[u8]) -> Result<Signature, SigParseError> {
    if data.len() > MAX_QUOTE_FILE {
        return Err(SigParseError::TooLarge(data.len()));
    }
    let mut c = Reader::new(data);
    let scheme = c.u16("sigAlg")?;
    let sig = match scheme {
        TPM_ALG_RSASSA | TPM_ALG_RSAPSS => {
            let hash = c.u16("hash")?;
            let sig = c.tpm2b("signature", MAX_RSA_KEY_BYTES)?.to_vec();
            Signature::Rsa { scheme, hash, sig }
        }
        TPM_ALG_ECDSA | TPM_ALG_ECDAA | TPM_ALG_SM2 | TPM_ALG_ECSCHNORR => {
            let hash = c.u16("hash")?;
            let r = c.tpm2b("signatureR", MAX_ECC_KEY_BYTES)?.to_vec();
            let s = c.tpm2b("signatureS", MAX_ECC_KEY_BYTES)?.to_vec();
            Signature::Ecc { scheme, hash, r, s }
        }
        TPM_ALG_HMAC => {
            let hash = c.u16("hash")?;
            let len = bank_of(hash)
                .map(PcrBank::digest_len)
                .ok_or(SigParseError::HmacHash(hash))?;
            c.bytes(len, "digest")?;
            Signature::Hmac { hash }
        }
        TPM_ALG_NULL => Signature::Null,
        other => return Err(SigParseError::Scheme(other)),
    };
    c.finish("TPMT_SIGNATURE")?;
    Ok(sig)
}

/// The hash a signature names, as a hash to check with and the PCR bank
/// the quote's `pcrDigest` is made with (the TPM uses the signing scheme's
/// hash for both).
pub fn digest_hash(sig: &Signature) -> Result<(HashAlgo, PcrBank), SigCheckError> {
    match sig.hash().unwrap_or(TPM_ALG_NULL) {
        TPM_ALG_SHA256 => Ok((HashAlgo::Sha256, PcrBank::Sha256)),
        TPM_ALG_SHA384 => Ok((HashAlgo::Sha384, PcrBank::Sha384)),
        TPM_ALG_SHA512 => Ok((HashAlgo::Sha512, PcrBank::Sha512)),
        TPM_ALG_SHA1 => Err(SigCheckError::Sha1),
        other => Err(SigCheckError::Hash(other)),
    }
}

/// `v` as a big-endian scalar of exactly `width` bytes: TPMs may drop
/// leading zero bytes of `r` and `s`.
fn fixed_width(v: &[u8], width: usize, which: &'static str) -> Result<Vec<u8>, SigCheckError> {
    let trimmed = &v[v.iter().position(|&b| b != 0).unwrap_or(v.len())..];
    if trimmed.len() > width {
        return Err(SigCheckError::ScalarLength {
            which,
            len: v.len(),
            width,
        });
    }
    let mut out = vec![0u8; width - trimmed.len()];
    out.extend_from_slice(trimmed);
    Ok(out)
}

/// `r || s`, each of the curve's `width`.
fn ecdsa_rs(r: &[u8], s: &[u8], width: usize) -> Result<Vec<u8>, SigCheckError> {
    Ok([fixed_width(r, width, "r")?, fixed_width(s, width, "s")?].concat())
}

/// Checks `sig` over `msg` with the AK: RSASSA-PKCS1-v1_5 or ECDSA (P-256,
/// P-384), SHA-256/384/512. Returns what was checked (`rsassa/sha256 by the
/// AK (rsa-2048)`).
pub fn check_signature(
    ak: &PublicKey,
    sig: &Signature,
    msg: &[u8],
) -> Result<String, SigCheckError> {
    let what = format!("{} by the AK ({})", sig.describe(), ak.describe());
    match sig {
        Signature::Null => return Err(SigCheckError::Null),
        Signature::Hmac { .. } => return Err(SigCheckError::Hmac),
        _ => {}
    }
    let (hash, _) = digest_hash(sig)?;
    let digest = hash.digest(msg);
    match (sig, ak) {
        (
            Signature::Rsa {
                scheme: TPM_ALG_RSASSA,
                sig,
                ..
            },
            PublicKey::Rsa { .. },
        ) => ak.verify(hash, &digest, sig).map_err(SigCheckError::Rsa),
        (
            Signature::Ecc {
                scheme: TPM_ALG_ECDSA,
                r,
                s,
                ..
            },
            PublicKey::P256(key),
        ) => {
            let sig = p256::ecdsa::Signature::from_slice(&ecdsa_rs(r, s, 32)?)
                .map_err(|_| SigCheckError::ScalarRange)?;
            key.verify_prehash(&digest, &sig)
                .map_err(|_| SigCheckError::EcdsaMismatch)
        }
        (
            Signature::Ecc {
                scheme: TPM_ALG_ECDSA,
                r,
                s,
                ..
            },
            PublicKey::P384(key),
        ) => {
            let sig = p384::ecdsa::Signature::from_slice(&ecdsa_rs(r, s, 48)?)
                .map_err(|_| SigCheckError::ScalarRange)?;
            key.verify_prehash(&digest, &sig)
                .map_err(|_| SigCheckError::EcdsaMismatch)
        }
        (Signature::Rsa { scheme, .. } | Signature::Ecc { scheme, .. }, _)
            if *scheme != TPM_ALG_RSASSA && *scheme != TPM_ALG_ECDSA =>
        {
            Err(SigCheckError::Scheme(*scheme))
        }
        _ => Err(SigCheckError::KeyType {
            scheme: sig.scheme(),
            ak: ak.describe(),
        }),
    }
    .map(|()| what)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::marshal::Writer;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    /// A P-256 key as a SubjectPublicKeyInfo.
    pub(crate) fn p256_ak(key: &p256::ecdsa::SigningKey) -> PublicKey {
        let point = key.verifying_key().to_sec1_point(false);
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(point.as_bytes());
        PublicKey::from_spki(&spki).unwrap()
    }

    /// An ECDSA-SHA256 `TPMT_SIGNATURE` of `msg`, as a TPM makes it.
    pub(crate) fn sign(key: &p256::ecdsa::SigningKey, msg: &[u8]) -> Vec<u8> {
        let s: p256::ecdsa::Signature = key.sign_prehash(&PcrBank::Sha256.hash(msg)).unwrap();
        let (r, s) = s.split_bytes();
        let mut w = Writer::new();
        w.u16(TPM_ALG_ECDSA).u16(TPM_ALG_SHA256);
        w.tpm2b(&r).unwrap().tpm2b(&s).unwrap();
        w.into_bytes()
    }

    fn rsassa(sig: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(TPM_ALG_RSASSA)
            .u16(TPM_ALG_SHA256)
            .tpm2b(sig)
            .unwrap();
        w.into_bytes()
    }

    #[test]
    fn signatures() {
        let rsa = rsassa(&[5; 256]);
        assert_eq!(
            parse_signature(&rsa).unwrap(),
            Signature::Rsa {
                scheme: TPM_ALG_RSASSA,
                hash: TPM_ALG_SHA256,
                sig: vec![5; 256]
            }
        );
        for n in 0..rsa.len() {
            assert!(parse_signature(&rsa[..n]).is_err(), "{n}");
        }
        let err = |b: &[u8]| parse_signature(b).unwrap_err().to_string();
        let mut trailing = rsa.clone();
        trailing.push(1);
        assert!(err(&trailing).contains("trailing"));
        assert!(err(&rsassa(&[1; 513])).contains("maximum"));
        let ecdsa = [
            &TPM_ALG_ECDSA.to_be_bytes()[..],
            &TPM_ALG_SHA256.to_be_bytes(),
            &[0, 2, 1, 2],
            &[0, 1, 3],
        ]
        .concat();
        assert_eq!(
            parse_signature(&ecdsa).unwrap(),
            Signature::Ecc {
                scheme: TPM_ALG_ECDSA,
                hash: TPM_ALG_SHA256,
                r: vec![1, 2],
                s: vec![3]
            }
        );
        assert_eq!(parse_signature(&[0, 0x10]).unwrap(), Signature::Null);
        assert!(err(&[0x12, 0x34]).contains("not a TPM signature scheme"));
        let hmac = [&TPM_ALG_HMAC.to_be_bytes()[..], &[0, 0x0b], &[9; 32]].concat();
        assert_eq!(
            parse_signature(&hmac).unwrap(),
            Signature::Hmac {
                hash: TPM_ALG_SHA256
            }
        );
        assert!(parse_signature(&[]).is_err());
    }

    #[test]
    fn signature_scheme_and_key_must_agree() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let ak = p256_ak(&key);
        let msg = b"a quote".to_vec();
        let good = sign(&key, &msg);
        assert_eq!(
            check_signature(&ak, &parse_signature(&good).unwrap(), &msg).unwrap(),
            "ecdsa/sha256 by the AK (ecdsa-p256)"
        );
        let check = |bytes: &[u8]| {
            let s = parse_signature(bytes).unwrap();
            check_signature(&ak, &s, &msg).unwrap_err().to_string()
        };
        let rsa_sig = [&TPM_ALG_RSASSA.to_be_bytes()[..], &[0, 0x0b, 0, 2, 1, 2]].concat();
        assert!(check(&rsa_sig).contains("cannot come from this AK (ecdsa-p256)"));
        let pss = [&TPM_ALG_RSAPSS.to_be_bytes()[..], &[0, 0x0b, 0, 2, 1, 2]].concat();
        assert!(check(&pss).contains("rsapss is not supported"));
        let mut sha1 = good.clone();
        sha1[3] = 0x04;
        assert!(check(&sha1).contains("SHA-1"));
        // r longer than the curve, r zero.
        let long = [
            &TPM_ALG_ECDSA.to_be_bytes()[..],
            &[0, 0x0b, 0, 33, 1],
            &[0; 32],
            &[0, 1, 1],
        ]
        .concat();
        assert!(check(&long).contains("longer"));
        let zero = [
            &TPM_ALG_ECDSA.to_be_bytes()[..],
            &[0, 0x0b, 0, 1, 0, 0, 1, 1],
        ]
        .concat();
        assert!(check(&zero).contains("zero"));
        assert!(check_signature(&ak, &Signature::Null, &msg).is_err());
        let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        assert_eq!(check(&sign(&other, &msg)), "ECDSA signature does not match");
    }

    #[test]
    fn short_ecdsa_scalars_are_padded() {
        // TPMs may drop leading zero bytes of r or s; try keys until one signs
        // a message whose r starts with a zero byte.
        let msg = b"message";
        for seed in 1u8..=255 {
            let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
            let s: p256::ecdsa::Signature = key.sign_prehash(&PcrBank::Sha256.hash(msg)).unwrap();
            let (r, s) = s.split_bytes();
            if r[0] != 0 {
                continue;
            }
            let sig = Signature::Ecc {
                scheme: TPM_ALG_ECDSA,
                hash: TPM_ALG_SHA256,
                r: r[1..].to_vec(),
                s: s.to_vec(),
            };
            assert!(check_signature(&p256_ak(&key), &sig, msg).is_ok());
            return;
        }
        panic!("no key among 255 gave an r with a leading zero byte");
    }
}
