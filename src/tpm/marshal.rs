//! TPM 2.0 marshalling (TPM 2.0 Part 1, "Marshaling"; Part 2 for the
//! structures): big-endian integers, `TPM2B` = a 16-bit size and that many
//! bytes. One reader and one writer for every TPM structure modseal reads or
//! builds (the AK template and public area, `TPMS_ATTEST`, `TPMT_SIGNATURE`,
//! a sealed object's `TPMT_PUBLIC`), and the constants of Part 2 they use.
//!
//! The reader borrows its input, bounds every `TPM2B` by the structure's
//! maximum, names the field it failed in and the offset, and
//! [`Reader::finish`] refuses trailing bytes. It never panics.

/// `TPM_ALG_RSA`: an RSA key.
pub const TPM_ALG_RSA: u16 = 0x0001;
/// `TPM_ALG_SHA1`.
pub const TPM_ALG_SHA1: u16 = 0x0004;
/// `TPM_ALG_HMAC`: an HMAC (a keyed-hash scheme, or an HMAC "signature").
pub const TPM_ALG_HMAC: u16 = 0x0005;
/// `TPM_ALG_KEYEDHASH`: a keyed-hash object (what sealed data is).
pub const TPM_ALG_KEYEDHASH: u16 = 0x0008;
/// `TPM_ALG_XOR`: the XOR keyed-hash scheme.
pub const TPM_ALG_XOR: u16 = 0x000A;
/// `TPM_ALG_SHA256`.
pub const TPM_ALG_SHA256: u16 = 0x000B;
/// `TPM_ALG_SHA384`.
pub const TPM_ALG_SHA384: u16 = 0x000C;
/// `TPM_ALG_SHA512`.
pub const TPM_ALG_SHA512: u16 = 0x000D;
/// `TPM_ALG_NULL`: no algorithm.
pub const TPM_ALG_NULL: u16 = 0x0010;
/// `TPM_ALG_RSASSA`: RSASSA-PKCS1-v1_5.
pub const TPM_ALG_RSASSA: u16 = 0x0014;
/// `TPM_ALG_RSAPSS`: RSASSA-PSS.
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
/// `TPM_ALG_ECDSA`.
pub const TPM_ALG_ECDSA: u16 = 0x0018;
/// `TPM_ALG_ECDAA`.
pub const TPM_ALG_ECDAA: u16 = 0x001A;
/// `TPM_ALG_SM2`.
pub const TPM_ALG_SM2: u16 = 0x001B;
/// `TPM_ALG_ECSCHNORR`.
pub const TPM_ALG_ECSCHNORR: u16 = 0x001C;
/// `TPM_ALG_ECC`: an elliptic-curve key.
pub const TPM_ALG_ECC: u16 = 0x0023;
/// `TPM_ALG_SYMCIPHER`: a symmetric key object.
pub const TPM_ALG_SYMCIPHER: u16 = 0x0025;

/// `TPM_ECC_NIST_P256`.
pub const TPM_ECC_NIST_P256: u16 = 0x0003;

/// `TPM_GENERATED_VALUE`: the first four bytes of anything a TPM signs itself.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_CERTIFY`: a `TPMS_ATTEST` made by TPM2_Certify.
pub const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
/// `TPM_ST_ATTEST_QUOTE`: a `TPMS_ATTEST` made by TPM2_Quote.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// `TPM_RH_OWNER`: the owner (storage) hierarchy.
pub const TPM_RH_OWNER: u32 = 0x4000_0001;
/// `TPM_RH_ENDORSEMENT`: the endorsement hierarchy.
pub const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;

/// `sizeof(TPMU_HA)`: the largest digest (SHA-512), the bound of a
/// `TPM2B_DIGEST`.
pub const MAX_DIGEST: usize = 64;
/// `sizeof(TPMT_HA)`: the bound of a `TPM2B_DATA` and of a `TPM2B_NAME`
/// holding a digest name.
pub const MAX_HA: usize = 2 + MAX_DIGEST;
/// `TPM2_MAX_RSA_KEY_BYTES`.
pub const MAX_RSA_KEY_BYTES: usize = 512;
/// `TPM2_MAX_ECC_KEY_BYTES`.
pub const MAX_ECC_KEY_BYTES: usize = 128;
/// `TPM2_NUM_PCR_BANKS` in tpm2-tss: the most banks a `TPML_PCR_SELECTION` holds.
pub const NUM_PCR_BANKS: usize = 16;
/// `TPM2_PCR_SELECT_MAX` in tpm2-tss: the longest `pcrSelect` bitmap.
pub const PCR_SELECT_MAX: usize = 4;

/// Why marshalled bytes do not read as the structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MarshalError {
    /// The input ends inside a field.
    #[error("truncated in {field}: needs {needed} byte(s) at offset {offset}, {left} left")]
    Truncated {
        /// The field being read.
        field: String,
        /// Bytes the field needs.
        needed: usize,
        /// Where the field starts.
        offset: usize,
        /// Bytes left in the input.
        left: usize,
    },
    /// A `TPM2B` claims more bytes than its structure allows.
    #[error("{field} claims {size} bytes, more than its {max}-byte maximum")]
    TooLarge {
        /// The `TPM2B` field.
        field: String,
        /// The size it claims.
        size: usize,
        /// The structure's maximum.
        max: usize,
    },
    /// Bytes follow the structure.
    #[error("{count} trailing byte(s) after the {what}")]
    Trailing {
        /// The structure read.
        what: String,
        /// How many bytes follow it.
        count: usize,
    },
    /// A body to write is longer than a `TPM2B`'s 16-bit size can say.
    #[error("{len} bytes do not fit a TPM2B")]
    Oversize {
        /// The body's length.
        len: usize,
    },
}

/// Reads TPM-marshalled bytes front to back, borrowing them.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// The offset of the next byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, as field `field`.
    pub fn bytes(&mut self, n: usize, field: &str) -> Result<&'a [u8], MarshalError> {
        let left = self.remaining();
        let out = self
            .pos
            .checked_add(n)
            .filter(|_| n <= left)
            .and_then(|end| self.data.get(self.pos..end))
            .ok_or_else(|| MarshalError::Truncated {
                field: field.to_owned(),
                needed: n,
                offset: self.pos,
                left,
            })?;
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], MarshalError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, field)?);
        Ok(a)
    }

    /// A `UINT8`.
    pub fn u8(&mut self, field: &str) -> Result<u8, MarshalError> {
        Ok(u8::from_be_bytes(self.array(field)?))
    }

    /// A `UINT16`.
    pub fn u16(&mut self, field: &str) -> Result<u16, MarshalError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// A `UINT32`.
    pub fn u32(&mut self, field: &str) -> Result<u32, MarshalError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A `UINT64`.
    pub fn u64(&mut self, field: &str) -> Result<u64, MarshalError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// A `TPM2B`: its 16-bit size, at most `max`, then that many bytes.
    pub fn tpm2b(&mut self, field: &str, max: usize) -> Result<&'a [u8], MarshalError> {
        let size = usize::from(self.u16(field)?);
        if size > max {
            return Err(MarshalError::TooLarge {
                field: field.to_owned(),
                size,
                max,
            });
        }
        self.bytes(size, field)
    }

    /// Succeeds when every byte was read: `what` is the structure, for the
    /// error.
    pub fn finish(&self, what: &str) -> Result<(), MarshalError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(MarshalError::Trailing {
                what: what.to_owned(),
                count,
            }),
        }
    }
}

/// Builds TPM-marshalled bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// Appends a `UINT8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a `UINT16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a `UINT32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a `UINT64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends `body` as a `TPM2B` (16-bit size, then the bytes).
    pub fn tpm2b(&mut self, body: &[u8]) -> Result<&mut Self, MarshalError> {
        let size =
            u16::try_from(body.len()).map_err(|_| MarshalError::Oversize { len: body.len() })?;
        Ok(self.u16(size).bytes(body))
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_fields_and_bounded_tpm2bs() {
        let mut w = Writer::new();
        w.u8(1)
            .u16(0x0203)
            .u32(0x0405_0607)
            .u64(0x0809_0a0b_0c0d_0e0f);
        w.tpm2b(b"abc").unwrap();
        let data = w.into_bytes();
        let mut r = Reader::new(&data);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x0203);
        assert_eq!(r.u32("c").unwrap(), 0x0405_0607);
        assert_eq!(r.u64("d").unwrap(), 0x0809_0a0b_0c0d_0e0f);
        assert_eq!(r.position(), 15);
        let mut again = r.clone();
        assert_eq!(r.tpm2b("e", 3).unwrap(), b"abc");
        r.finish("test").unwrap();
        assert_eq!(
            again.tpm2b("e", 2).unwrap_err().to_string(),
            "e claims 3 bytes, more than its 2-byte maximum"
        );
    }

    #[test]
    fn errors_name_the_field_and_never_panic() {
        let data = [0u8, 5, 1, 2];
        let mut r = Reader::new(&data);
        assert_eq!(
            r.tpm2b("body", 64).unwrap_err().to_string(),
            "truncated in body: needs 5 byte(s) at offset 2, 2 left"
        );
        let mut r = Reader::new(&data);
        r.u8("x").unwrap();
        assert_eq!(
            r.finish("thing").unwrap_err().to_string(),
            "3 trailing byte(s) after the thing"
        );
        assert!(r.bytes(usize::MAX, "huge").is_err());
        assert_eq!(r.u16("y").unwrap(), 0x0501);
        assert!(r.u32("z").is_err());
        assert_eq!(r.remaining(), 1);
        assert_eq!(
            Writer::new()
                .tpm2b(&vec![0u8; 70_000])
                .unwrap_err()
                .to_string(),
            "70000 bytes do not fit a TPM2B"
        );
    }
}
