//! tpm2-tools' file format for `TPM2B_PUBLIC` / `TPM2B_PRIVATE`
//! (`tpm2_create -u key.pub -r key.priv`, `tpm2_load -u/-r`): the marshalled
//! TPM2B itself, a big-endian 16-bit size followed by exactly that many bytes,
//! no header. And the public area of a sealed data object, parsed and checked
//! off the TPM. Pure functions on byte slices; hostile input gives an error.

use super::marshal::{
    MarshalError, Reader, Writer, MAX_DIGEST, TPM_ALG_HMAC, TPM_ALG_KEYEDHASH, TPM_ALG_NULL,
    TPM_ALG_SHA256, TPM_ALG_XOR,
};

/// Largest file accepted: a TPM2B's size field is 16 bits, and real sealed
/// objects are a few hundred bytes.
pub const MAX_FILE: usize = 4096;

/// Object attributes of modseal's sealed data object (TPMA_OBJECT):
/// fixedTPM | fixedParent | adminWithPolicy | noDA. userWithAuth is clear, so
/// the object can only be used through its policy; sensitiveDataOrigin is
/// clear because the data is supplied; noDA as systemd does without a PIN.
pub const SEALED_ATTRIBUTES: u32 =
    ATTR_FIXED_TPM | ATTR_FIXED_PARENT | ATTR_ADMIN_WITH_POLICY | ATTR_NO_DA;

/// TPMA_OBJECT fixedTPM: the object cannot leave this TPM.
pub const ATTR_FIXED_TPM: u32 = 0x0000_0002;
/// TPMA_OBJECT fixedParent: the object cannot be moved to another parent.
pub const ATTR_FIXED_PARENT: u32 = 0x0000_0010;
/// TPMA_OBJECT sensitiveDataOrigin: the TPM made the sensitive part.
pub const ATTR_SENSITIVE_DATA_ORIGIN: u32 = 0x0000_0020;
/// TPMA_OBJECT userWithAuth: usable with its authValue, not only its policy.
pub const ATTR_USER_WITH_AUTH: u32 = 0x0000_0040;
/// TPMA_OBJECT adminWithPolicy: administration needs the policy.
pub const ATTR_ADMIN_WITH_POLICY: u32 = 0x0000_0080;
/// TPMA_OBJECT noDA: exempt from dictionary-attack lockout.
pub const ATTR_NO_DA: u32 = 0x0000_0400;
/// TPMA_OBJECT restricted: signs or decrypts only TPM-made structures.
pub const ATTR_RESTRICTED: u32 = 0x0001_0000;
/// TPMA_OBJECT decrypt.
pub const ATTR_DECRYPT: u32 = 0x0002_0000;
/// TPMA_OBJECT sign (or encrypt).
pub const ATTR_SIGN_ENCRYPT: u32 = 0x0004_0000;

/// Why a TPM2B file or a sealed object's public area is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tpm2bError {
    /// The file is larger than [`MAX_FILE`].
    #[error("{what}: {len} bytes, larger than the {MAX_FILE}-byte limit")]
    FileTooLarge {
        /// The file's name.
        what: String,
        /// Its length.
        len: usize,
    },
    /// The file cannot even hold the size field.
    #[error("{what}: {len} bytes, too short for a TPM2B")]
    FileTooShort {
        /// The file's name.
        what: String,
        /// Its length.
        len: usize,
    },
    /// The size field is not the length of what follows it.
    #[error("{what}: TPM2B size field says {size} bytes but {follows} follow")]
    SizeMismatch {
        /// The file's name.
        what: String,
        /// The size field.
        size: usize,
        /// The bytes after it.
        follows: usize,
    },
    /// The TPM2B holds nothing.
    #[error("{what}: empty TPM2B")]
    Empty {
        /// The file's name.
        what: String,
    },
    /// A body to wrap is too long for a TPM2B.
    #[error(transparent)]
    Encode(MarshalError),
    /// The public area does not unmarshal.
    #[error("public area: {0}")]
    PublicArea(MarshalError),
    /// The public area is not a keyed-hash object's.
    #[error("object type {0:#06x} is not a keyed-hash (sealed data) object")]
    NotKeyedHash(u16),
    /// The keyed-hash scheme is none the TPM defines.
    #[error("unknown keyed-hash scheme {0:#06x}")]
    UnknownScheme(u16),
    /// The object's name algorithm is not SHA-256.
    #[error("name algorithm {0:#06x}, expected SHA-256")]
    NameAlg(u16),
    /// The object is usable otherwise than through its policy.
    #[error("object attributes {0:#010x} are not a policy-only sealed object's (fixedTPM, fixedParent, no userWithAuth)")]
    Attributes(u32),
    /// The object's policy is not the enrolled one.
    #[error(
        "the object's policy {} differs from sealed.json's policy_digest {}",
        crate::util::hex::lower(object),
        crate::util::hex::lower(expected)
    )]
    Policy {
        /// The object's `authPolicy`.
        object: Vec<u8>,
        /// `sealed.json`'s policy digest.
        expected: Vec<u8>,
    },
}

/// Wraps `body` as a TPM2B file.
pub fn encode_file(body: &[u8]) -> Result<Vec<u8>, Tpm2bError> {
    let mut w = Writer::new();
    w.tpm2b(body).map_err(Tpm2bError::Encode)?;
    Ok(w.into_bytes())
}

/// The body of a TPM2B file: the size field must match the file exactly
/// (no trailing bytes) and the body must not be empty. `what` names the
/// file in errors.
pub fn decode_file<'a>(what: &str, file: &'a [u8]) -> Result<&'a [u8], Tpm2bError> {
    let what = || what.to_owned();
    if file.len() > MAX_FILE {
        return Err(Tpm2bError::FileTooLarge {
            what: what(),
            len: file.len(),
        });
    }
    let (size, body) = match file {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => {
            return Err(Tpm2bError::FileTooShort {
                what: what(),
                len: file.len(),
            })
        }
    };
    if size != body.len() {
        return Err(Tpm2bError::SizeMismatch {
            what: what(),
            size,
            follows: body.len(),
        });
    }
    if size == 0 {
        return Err(Tpm2bError::Empty { what: what() });
    }
    Ok(body)
}

/// The parts of a sealed data object's `TPMT_PUBLIC` modseal checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPublic<'a> {
    /// `nameAlg`.
    pub name_alg: u16,
    /// `objectAttributes` (TPMA_OBJECT).
    pub attributes: u32,
    /// `authPolicy`.
    pub auth_policy: &'a [u8],
    /// `unique`.
    pub unique: &'a [u8],
}

impl<'a> SealedPublic<'a> {
    /// Parses a marshalled `TPMT_PUBLIC` of a keyed-hash object (what a
    /// sealed data object is). Rejects other object types and trailing bytes.
    pub fn parse(tpmt: &'a [u8]) -> Result<SealedPublic<'a>, Tpm2bError> {
        let mut r = Reader::new(tpmt);
        let m = Tpm2bError::PublicArea;
        let ty = r.u16("type").map_err(m)?;
        if ty != TPM_ALG_KEYEDHASH {
            return Err(Tpm2bError::NotKeyedHash(ty));
        }
        let name_alg = r.u16("nameAlg").map_err(m)?;
        let attributes = r.u32("objectAttributes").map_err(m)?;
        let auth_policy = r.tpm2b("authPolicy", MAX_DIGEST).map_err(m)?;
        match r.u16("keyedHash scheme").map_err(m)? {
            TPM_ALG_NULL => {}
            TPM_ALG_HMAC => {
                r.u16("HMAC hash").map_err(m)?;
            }
            TPM_ALG_XOR => {
                r.u16("XOR hash").map_err(m)?;
                r.u16("XOR KDF").map_err(m)?;
            }
            other => return Err(Tpm2bError::UnknownScheme(other)),
        }
        let unique = r.tpm2b("unique", MAX_DIGEST).map_err(m)?;
        r.finish("TPMT_PUBLIC").map_err(m)?;
        Ok(SealedPublic {
            name_alg,
            attributes,
            auth_policy,
            unique,
        })
    }

    /// Checks that this is a sealed data object of the kind modseal makes:
    /// SHA-256 name, no scheme, usable only through its policy, bound to this
    /// TPM and parent, and with `expected_policy` as its policy.
    pub fn verify(&self, expected_policy: &[u8]) -> Result<(), Tpm2bError> {
        if self.name_alg != TPM_ALG_SHA256 {
            return Err(Tpm2bError::NameAlg(self.name_alg));
        }
        let must = ATTR_FIXED_TPM | ATTR_FIXED_PARENT;
        let must_not = ATTR_USER_WITH_AUTH
            | ATTR_SENSITIVE_DATA_ORIGIN
            | ATTR_RESTRICTED
            | ATTR_DECRYPT
            | ATTR_SIGN_ENCRYPT;
        if self.attributes & must != must || self.attributes & must_not != 0 {
            return Err(Tpm2bError::Attributes(self.attributes));
        }
        if self.auth_policy != expected_policy {
            return Err(Tpm2bError::Policy {
                object: self.auth_policy.to_vec(),
                expected: expected_policy.to_vec(),
            });
        }
        Ok(())
    }
}

/// A marshalled `TPMT_PUBLIC` for a sealed data object with modseal's
/// attributes (used by the in-memory TPM and the tests). The policy and
/// `unique` are digests.
pub fn build_sealed_public(auth_policy: &[u8], unique: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(TPM_ALG_KEYEDHASH)
        .u16(TPM_ALG_SHA256)
        .u32(SEALED_ATTRIBUTES)
        .u16(auth_policy.len() as u16)
        .bytes(auth_policy)
        .u16(TPM_ALG_NULL)
        .u16(unique.len() as u16)
        .bytes(unique);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm2b_round_trip() {
        let body = b"\x00\x08\x00\x0bhello".to_vec();
        let file = encode_file(&body).unwrap();
        assert_eq!(&file[..2], &[0, 9]);
        assert_eq!(decode_file("x", &file).unwrap(), &body[..]);
        assert!(encode_file(&vec![0u8; 70_000]).is_err());
        assert_eq!(
            decode_file("x", b"\x00\x03ab").unwrap_err().to_string(),
            "x: TPM2B size field says 3 bytes but 2 follow"
        );
    }

    #[test]
    fn tpm2b_rejects_bad_framing() {
        assert!(decode_file("x", b"").is_err());
        assert!(decode_file("x", b"\x00").is_err());
        assert!(decode_file("x", b"\x00\x00").is_err()); // empty body
        assert!(decode_file("x", b"\x00\x03ab").is_err()); // short
        assert!(decode_file("x", b"\x00\x01ab").is_err()); // trailing
        assert!(decode_file("x", &vec![0u8; MAX_FILE + 1]).is_err());
    }

    #[test]
    fn sealed_public_round_trip() {
        let policy = [7u8; 32];
        let tpmt = build_sealed_public(&policy, &[1u8; 32]);
        let p = SealedPublic::parse(&tpmt).unwrap();
        assert_eq!(p.auth_policy, &policy);
        assert_eq!(p.attributes, SEALED_ATTRIBUTES);
        p.verify(&policy).unwrap();
        assert!(p
            .verify(&[8u8; 32])
            .unwrap_err()
            .to_string()
            .contains("differs"));
    }

    #[test]
    fn sealed_public_rejects_hostile_input() {
        let tpmt = build_sealed_public(&[7u8; 32], &[1u8; 32]);
        for cut in 0..tpmt.len() {
            assert!(SealedPublic::parse(&tpmt[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = tpmt.clone();
        trailing.push(0);
        assert_eq!(
            SealedPublic::parse(&trailing).unwrap_err().to_string(),
            "public area: 1 trailing byte(s) after the TPMT_PUBLIC"
        );
        let mut rsa = tpmt.clone();
        rsa[1] = 0x01; // TPM_ALG_RSA
        assert!(SealedPublic::parse(&rsa).is_err());
        let mut huge = tpmt.clone();
        huge[8] = 0xff; // authPolicy size 0xff20
        assert!(SealedPublic::parse(&huge).is_err());
        let mut user = tpmt;
        user[7] |= ATTR_USER_WITH_AUTH as u8;
        assert!(SealedPublic::parse(&user)
            .unwrap()
            .verify(&[7u8; 32])
            .is_err());
    }

    #[test]
    fn sealed_public_never_panics_on_noise() {
        // A small deterministic generator: every prefix of varied byte strings.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200usize {
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            if len >= 2 {
                v[0] = 0;
                v[1] = 8;
            }
            let _ = SealedPublic::parse(&v);
            let _ = decode_file("x", &v);
        }
    }
}
