//! Object identifiers modseal knows, and the hash functions behind them.
//!
//! OIDs are compared as their DER content bytes, so no string formatting
//! happens on the verification path.

use std::borrow::Cow;

use sha2::Digest as _;

/// A digest algorithm a module signature may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

impl HashAlgo {
    /// The name `modinfo` and `sign-file` use.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha384 => "sha384",
            HashAlgo::Sha512 => "sha512",
            HashAlgo::Sha3_256 => "sha3-256",
            HashAlgo::Sha3_384 => "sha3-384",
            HashAlgo::Sha3_512 => "sha3-512",
        }
    }

    /// A running hash of this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlgo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlgo::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlgo::Sha3_256 => Hasher::Sha3_256(sha3::Sha3_256::new()),
            HashAlgo::Sha3_384 => Hasher::Sha3_384(sha3::Sha3_384::new()),
            HashAlgo::Sha3_512 => Hasher::Sha3_512(sha3::Sha3_512::new()),
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }
}

impl std::fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A running hash of any supported algorithm.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
    /// SHA3-256.
    Sha3_256(sha3::Sha3_256),
    /// SHA3-384.
    Sha3_384(sha3::Sha3_384),
    /// SHA3-512.
    Sha3_512(sha3::Sha3_512),
}

impl Hasher {
    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha3_256(h) => h.update(data),
            Hasher::Sha3_384(h) => h.update(data),
            Hasher::Sha3_512(h) => h.update(data),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
            Hasher::Sha3_256(h) => h.finalize().to_vec(),
            Hasher::Sha3_384(h) => h.finalize().to_vec(),
            Hasher::Sha3_512(h) => h.finalize().to_vec(),
        }
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// What a hash OID turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashLookup {
    /// A hash modseal accepts.
    Supported(HashAlgo),
    /// Known but refused (SHA-1, MD5, SHA-224): the name says which.
    Refused(&'static str),
    /// Not known; the OID, dotted.
    Unknown(String),
}

// DER content bytes of the OIDs.
const NIST_HASH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
const NIST_SIG: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
const X962_SIG: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04];
/// SHA-1 (1.3.14.3.2.26).
pub const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// MD5 (1.2.840.113549.2.5).
pub const OID_MD5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
/// rsaEncryption (1.2.840.113549.1.1.1).
pub const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey (1.2.840.10045.2.1).
pub const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// The P-256 curve, prime256v1 (1.2.840.10045.3.1.7).
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The P-384 curve, secp384r1 (1.3.132.0.34).
pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// PKCS#7 signedData (1.2.840.113549.1.7.2).
pub const OID_PKCS7_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// PKCS#7 data (1.2.840.113549.1.7.1).
pub const OID_PKCS7_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// The contentType attribute (1.2.840.113549.1.9.3).
pub const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
/// The messageDigest attribute (1.2.840.113549.1.9.4).
pub const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];

/// Dotted form of DER OID content, for messages.
pub fn oid_string(content: &[u8]) -> String {
    asn1_rs::Oid::new(Cow::Borrowed(content)).to_id_string()
}

fn last_arc(oid: &[u8], prefix: &[u8]) -> Option<u8> {
    match oid.strip_prefix(prefix) {
        Some([arc]) => Some(*arc),
        _ => None,
    }
}

/// What a digest algorithm OID (content bytes) names.
pub fn hash_from_oid(oid: &[u8]) -> HashLookup {
    if oid == OID_SHA1 {
        return HashLookup::Refused("sha1");
    }
    if oid == OID_MD5 {
        return HashLookup::Refused("md5");
    }
    match last_arc(oid, NIST_HASH) {
        Some(1) => HashLookup::Supported(HashAlgo::Sha256),
        Some(2) => HashLookup::Supported(HashAlgo::Sha384),
        Some(3) => HashLookup::Supported(HashAlgo::Sha512),
        Some(4) => HashLookup::Refused("sha224"),
        Some(8) => HashLookup::Supported(HashAlgo::Sha3_256),
        Some(9) => HashLookup::Supported(HashAlgo::Sha3_384),
        Some(10) => HashLookup::Supported(HashAlgo::Sha3_512),
        _ => HashLookup::Unknown(oid_string(oid)),
    }
}

/// The public-key family a signature algorithm OID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// RSA (PKCS#1 v1.5).
    Rsa,
    /// ECDSA.
    Ecdsa,
    /// ML-DSA at one level: the signature algorithm names the level, and
    /// the signer's key must be of that level.
    MlDsa(crate::verify::mldsa::Level),
}

/// A signature algorithm OID: its key family and, when the OID names one,
/// its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigAlgLookup {
    /// An algorithm modseal accepts, and the hash it names, if any.
    Supported(KeyFamily, Option<HashAlgo>),
    /// Known but refused: the name says which.
    Refused(&'static str),
    /// Not known; the OID, dotted.
    Unknown(String),
}

/// What a signature algorithm OID (content bytes) names.
pub fn sig_alg_from_oid(oid: &[u8]) -> SigAlgLookup {
    use HashAlgo::*;
    use KeyFamily::*;
    use SigAlgLookup::*;
    if oid == OID_RSA_ENCRYPTION {
        return Supported(Rsa, None);
    }
    if let Some(arc) = last_arc(oid, PKCS1) {
        return match arc {
            11 => Supported(Rsa, Some(Sha256)),
            12 => Supported(Rsa, Some(Sha384)),
            13 => Supported(Rsa, Some(Sha512)),
            4 => Refused("md5WithRSAEncryption"),
            5 => Refused("sha1WithRSAEncryption"),
            14 => Refused("sha224WithRSAEncryption"),
            10 => Refused("RSASSA-PSS"),
            _ => Unknown(oid_string(oid)),
        };
    }
    if let Some(arc) = last_arc(oid, NIST_SIG) {
        return match arc {
            10 => Supported(Ecdsa, Some(Sha3_256)),
            11 => Supported(Ecdsa, Some(Sha3_384)),
            12 => Supported(Ecdsa, Some(Sha3_512)),
            14 => Supported(Rsa, Some(Sha3_256)),
            15 => Supported(Rsa, Some(Sha3_384)),
            16 => Supported(Rsa, Some(Sha3_512)),
            17..=19 => match crate::verify::mldsa::Level::from_oid(oid) {
                Some(level) => Supported(MlDsa(level), None),
                None => Unknown(oid_string(oid)),
            },
            _ => Unknown(oid_string(oid)),
        };
    }
    if oid == [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01] {
        return Refused("ecdsa-with-SHA1");
    }
    if let Some(rest) = oid.strip_prefix(X962_SIG) {
        return match rest {
            [0x03, 2] => Supported(Ecdsa, Some(Sha256)),
            [0x03, 3] => Supported(Ecdsa, Some(Sha384)),
            [0x03, 4] => Supported(Ecdsa, Some(Sha512)),
            [0x03, 1] => Refused("ecdsa-with-SHA224"),
            _ => Unknown(oid_string(oid)),
        };
    }
    Unknown(oid_string(oid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names() {
        assert_eq!(oid_string(OID_P384), "1.3.132.0.34");
        assert_eq!(oid_string(OID_MESSAGE_DIGEST), "1.2.840.113549.1.9.4");
        assert_eq!(
            oid_string(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x08]),
            "2.16.840.1.101.3.4.2.8"
        );
    }

    #[test]
    fn lookups() {
        assert_eq!(
            hash_from_oid(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]),
            HashLookup::Supported(HashAlgo::Sha256)
        );
        assert_eq!(hash_from_oid(OID_SHA1), HashLookup::Refused("sha1"));
        assert!(matches!(hash_from_oid(&[0x2a, 0x03]), HashLookup::Unknown(s) if s == "1.2.3"));
        assert_eq!(
            sig_alg_from_oid(OID_RSA_ENCRYPTION),
            SigAlgLookup::Supported(KeyFamily::Rsa, None)
        );
        assert_eq!(
            sig_alg_from_oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]),
            SigAlgLookup::Supported(KeyFamily::Ecdsa, Some(HashAlgo::Sha384))
        );
    }

    #[test]
    fn hashes_match_known_vectors() {
        let hex = |v: Vec<u8>| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(HashAlgo::Sha256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(HashAlgo::Sha3_256.digest(b"abc")),
            "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
        );
    }
}
