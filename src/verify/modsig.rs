//! The appended module signature trailer, checked as `kernel/module_signature.c`
//! checks it:
//! `[payload][PKCS#7 DER][struct module_signature, 12 bytes]["~Module signature appended~\n"]`.

use static_assertions::const_assert_eq;

/// The magic string that ends a signed module.
pub const MAGIC: &[u8] = b"~Module signature appended~\n";
/// `struct module_signature`: algo, hash, id_type, signer_len, key_id_len,
/// 3 pad bytes, then the big-endian `sig_len`.
pub const INFO_LEN: usize = 12;
/// `enum pkey_id_type`: PGP = 0, X509 = 1, PKCS7 = 2.
pub const PKEY_ID_PKCS7: u8 = 2;

const_assert_eq!(MAGIC.len(), 28);

/// A module split at its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signed<'a> {
    /// The bytes the signature covers (the module as built).
    pub payload: &'a [u8],
    /// The PKCS#7 SignedData, DER.
    pub pkcs7: &'a [u8],
    /// Where the PKCS#7 starts in the file, for error messages.
    pub pkcs7_offset: usize,
}

/// What the end of a module file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trailer<'a> {
    /// No signature magic at the end: the kernel treats the module as unsigned.
    Unsigned,
    /// A trailer that passes the kernel's checks.
    Signed(Signed<'a>),
}

/// A signature trailer the kernel's `mod_check_sig()` would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrailerError {
    /// The magic is there but no room is left for the 12-byte info block.
    #[error(
        "signature magic present but file is {len} bytes, too short for the signature info block"
    )]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// `sig_len` does not leave at least one payload byte (the kernel's check).
    #[error("sig_len {sig_len} at offset {offset} does not fit in the {available} bytes before the trailer")]
    SigLenOutOfRange {
        /// The `sig_len` field.
        sig_len: u32,
        /// Bytes before the info block.
        available: usize,
        /// File offset of `sig_len`.
        offset: usize,
    },
    /// `id_type` is not PKCS#7 (PGP and bare X.509 signatures are refused).
    #[error("id_type {id_type} at offset {offset} is not PKCS#7 ({PKEY_ID_PKCS7})")]
    NotPkcs7 {
        /// The `id_type` field.
        id_type: u8,
        /// Its file offset.
        offset: usize,
    },
    /// A field a PKCS#7 signature leaves zero is not.
    #[error("signature info field {field} at offset {offset} is {value}, must be 0")]
    NonZeroField {
        /// The field's name in `struct module_signature`.
        field: &'static str,
        /// Its value.
        value: u8,
        /// Its file offset.
        offset: usize,
    },
    /// `sig_len` is zero.
    #[error("sig_len is 0: no PKCS#7 message")]
    EmptySignature,
}

/// Splits a module file at its appended signature.
pub fn split(file: &[u8]) -> Result<Trailer<'_>, TrailerError> {
    let Some(body) = file.strip_suffix(MAGIC) else {
        return Ok(Trailer::Unsigned);
    };
    // The kernel requires more than the info block before the magic.
    if body.len() <= INFO_LEN {
        return Err(TrailerError::TooShort { len: file.len() });
    }
    let info_at = body.len() - INFO_LEN;
    let (rest, info) = body.split_at(info_at);
    let info: &[u8; INFO_LEN] = info
        .try_into()
        .map_err(|_| TrailerError::TooShort { len: file.len() })?;
    let [algo, hash, id_type, signer_len, key_id_len, p0, p1, p2, l0, l1, l2, l3] = *info;
    let sig_len = u32::from_be_bytes([l0, l1, l2, l3]);
    // Same order as mod_check_sig(): length first, then id_type, then zeros.
    let sig_len_usize = usize::try_from(sig_len).unwrap_or(usize::MAX);
    if sig_len_usize >= rest.len() {
        return Err(TrailerError::SigLenOutOfRange {
            sig_len,
            available: rest.len(),
            offset: info_at + 8,
        });
    }
    if id_type != PKEY_ID_PKCS7 {
        return Err(TrailerError::NotPkcs7 {
            id_type,
            offset: info_at + 2,
        });
    }
    let fields = [
        ("algo", algo, 0),
        ("hash", hash, 1),
        ("signer_len", signer_len, 3),
        ("key_id_len", key_id_len, 4),
        ("__pad[0]", p0, 5),
        ("__pad[1]", p1, 6),
        ("__pad[2]", p2, 7),
    ];
    for (field, value, at) in fields {
        if value != 0 {
            return Err(TrailerError::NonZeroField {
                field,
                value,
                offset: info_at + at,
            });
        }
    }
    if sig_len == 0 {
        return Err(TrailerError::EmptySignature);
    }
    let payload_len = rest.len() - sig_len_usize;
    let (payload, pkcs7) = rest.split_at(payload_len);
    Ok(Trailer::Signed(Signed {
        payload,
        pkcs7,
        pkcs7_offset: payload_len,
    }))
}

/// Builds the trailer that follows a PKCS#7 blob (for tests and tools).
pub fn trailer_for(sig_len: u32) -> Vec<u8> {
    let mut t = vec![0, 0, PKEY_ID_PKCS7, 0, 0, 0, 0, 0];
    t.extend_from_slice(&sig_len.to_be_bytes());
    t.extend_from_slice(MAGIC);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(payload: &[u8], sig: &[u8]) -> Vec<u8> {
        let mut v = payload.to_vec();
        v.extend_from_slice(sig);
        v.extend_from_slice(&trailer_for(sig.len() as u32));
        v
    }

    #[test]
    fn splits_a_signed_module() {
        let m = module(b"ELF....", b"SIG");
        let Trailer::Signed(s) = split(&m).unwrap() else {
            panic!("unsigned")
        };
        assert_eq!(s.payload, b"ELF....");
        assert_eq!(s.pkcs7, b"SIG");
        assert_eq!(s.pkcs7_offset, 7);
    }

    #[test]
    fn unsigned_and_short() {
        assert_eq!(split(b"").unwrap(), Trailer::Unsigned);
        assert_eq!(split(b"plain ELF").unwrap(), Trailer::Unsigned);
        assert_eq!(split(&MAGIC[1..]).unwrap(), Trailer::Unsigned);
        assert_eq!(
            split(MAGIC).unwrap_err(),
            TrailerError::TooShort { len: 28 }
        );
        let mut just_info = vec![0u8; INFO_LEN];
        just_info.extend_from_slice(MAGIC);
        assert!(matches!(
            split(&just_info),
            Err(TrailerError::TooShort { .. })
        ));
    }

    #[test]
    fn sig_len_must_leave_a_payload() {
        let mut m = module(b"", b"SIG");
        assert!(matches!(
            split(&m),
            Err(TrailerError::SigLenOutOfRange {
                sig_len: 3,
                available: 3,
                ..
            })
        ));
        m = module(b"P", b"SIG");
        assert!(split(&m).is_ok());
        let mut huge = module(b"PPPP", b"SIG");
        let at = huge.len() - MAGIC.len() - 4;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            split(&huge),
            Err(TrailerError::SigLenOutOfRange { .. })
        ));
    }

    #[test]
    fn every_other_field_must_be_zero() {
        for i in [0usize, 1, 3, 4, 5, 6, 7] {
            let mut m = module(b"PAYLOAD", b"SIG");
            let at = m.len() - MAGIC.len() - INFO_LEN + i;
            m[at] = 1;
            let err = split(&m).unwrap_err();
            assert!(
                matches!(err, TrailerError::NonZeroField { offset, .. } if offset == at),
                "{i}: {err}"
            );
        }
        for id in [0u8, 1, 3] {
            let mut m = module(b"PAYLOAD", b"SIG");
            let at = m.len() - MAGIC.len() - INFO_LEN + 2;
            m[at] = id;
            assert_eq!(
                split(&m).unwrap_err(),
                TrailerError::NotPkcs7 {
                    id_type: id,
                    offset: at
                }
            );
        }
        let m = module(b"PAYLOAD", b"");
        assert_eq!(split(&m).unwrap_err(), TrailerError::EmptySignature);
    }
}
