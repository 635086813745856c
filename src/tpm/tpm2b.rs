//! tpm2-tools' file format for `TPM2B_PUBLIC` / `TPM2B_PRIVATE`
//! (`tpm2_create -u key.pub -r key.priv`, `tpm2_load -u/-r`): the marshalled
//! TPM2B itself, a big-endian 16-bit size followed by exactly that many bytes,
//! no header. And the public area of a sealed data object, parsed and checked
//! off the TPM. Pure functions on byte slices; hostile input gives an error.

/// Largest file accepted: a TPM2B's size field is 16 bits, and real sealed
/// objects are a few hundred bytes.
pub const MAX_FILE: usize = 4096;

/// Object attributes of modseal's sealed data object (TPMA_OBJECT):
/// fixedTPM | fixedParent | adminWithPolicy | noDA. userWithAuth is clear, so
/// the object can only be used through its policy; sensitiveDataOrigin is
/// clear because the data is supplied; noDA as systemd does without a PIN.
pub const SEALED_ATTRIBUTES: u32 =
    ATTR_FIXED_TPM | ATTR_FIXED_PARENT | ATTR_ADMIN_WITH_POLICY | ATTR_NO_DA;

pub const ATTR_FIXED_TPM: u32 = 0x0000_0002;
pub const ATTR_FIXED_PARENT: u32 = 0x0000_0010;
pub const ATTR_SENSITIVE_DATA_ORIGIN: u32 = 0x0000_0020;
pub const ATTR_USER_WITH_AUTH: u32 = 0x0000_0040;
pub const ATTR_ADMIN_WITH_POLICY: u32 = 0x0000_0080;
pub const ATTR_NO_DA: u32 = 0x0000_0400;
pub const ATTR_RESTRICTED: u32 = 0x0001_0000;
pub const ATTR_DECRYPT: u32 = 0x0002_0000;
pub const ATTR_SIGN_ENCRYPT: u32 = 0x0004_0000;

pub const TPM_ALG_SHA256: u16 = 0x000B;
pub const TPM_ALG_KEYEDHASH: u16 = 0x0008;
pub const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ALG_HMAC: u16 = 0x0005;
const TPM_ALG_XOR: u16 = 0x000A;

/// Wraps `body` as a TPM2B file.
pub fn encode(body: &[u8]) -> Result<Vec<u8>, String> {
    let size = u16::try_from(body.len())
        .map_err(|_| format!("{} bytes do not fit a TPM2B", body.len()))?;
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// The body of a TPM2B file: the size field must match the file exactly
/// (no trailing bytes) and the body must not be empty.
pub fn decode<'a>(what: &str, file: &'a [u8]) -> Result<&'a [u8], String> {
    if file.len() > MAX_FILE {
        return Err(format!(
            "{what}: {} bytes, larger than the {MAX_FILE}-byte limit",
            file.len()
        ));
    }
    let (size, body) = match file {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => {
            return Err(format!(
                "{what}: {} bytes, too short for a TPM2B",
                file.len()
            ))
        }
    };
    if size != body.len() {
        return Err(format!(
            "{what}: TPM2B size field says {size} bytes but {} follow",
            body.len()
        ));
    }
    if size == 0 {
        return Err(format!("{what}: empty TPM2B"));
    }
    Ok(body)
}

/// The parts of a sealed data object's `TPMT_PUBLIC` modseal checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPublic<'a> {
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: &'a [u8],
    pub unique: &'a [u8],
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!(
                "public area truncated in {what} at byte {}",
                self.pos
            )),
        }
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn tpm2b(&mut self, what: &str, max: usize) -> Result<&'a [u8], String> {
        let n = usize::from(self.u16(what)?);
        if n > max {
            return Err(format!("{what}: {n} bytes, more than {max}"));
        }
        self.take(n, what)
    }
}

/// Parses a marshalled `TPMT_PUBLIC` of a keyed-hash object (what a sealed
/// data object is). Rejects other object types and trailing bytes.
pub fn parse_sealed_public(tpmt: &[u8]) -> Result<SealedPublic<'_>, String> {
    let mut r = Reader { data: tpmt, pos: 0 };
    let ty = r.u16("type")?;
    if ty != TPM_ALG_KEYEDHASH {
        return Err(format!(
            "object type {ty:#06x} is not a keyed-hash (sealed data) object"
        ));
    }
    let name_alg = r.u16("nameAlg")?;
    let attributes = r.u32("objectAttributes")?;
    let auth_policy = r.tpm2b("authPolicy", 64)?;
    match r.u16("keyedHash scheme")? {
        TPM_ALG_NULL => {}
        TPM_ALG_HMAC => {
            r.u16("HMAC hash")?;
        }
        TPM_ALG_XOR => {
            r.u16("XOR hash")?;
            r.u16("XOR KDF")?;
        }
        other => return Err(format!("unknown keyed-hash scheme {other:#06x}")),
    }
    let unique = r.tpm2b("unique", 64)?;
    if r.pos != tpmt.len() {
        return Err(format!(
            "{} trailing bytes after the public area",
            tpmt.len() - r.pos
        ));
    }
    Ok(SealedPublic {
        name_alg,
        attributes,
        auth_policy,
        unique,
    })
}

impl SealedPublic<'_> {
    /// Checks that this is a sealed data object of the kind modseal makes:
    /// SHA-256 name, no scheme, usable only through its policy, bound to this
    /// TPM and parent, and with `expected_policy` as its policy.
    pub fn check(&self, expected_policy: &[u8]) -> Result<(), String> {
        if self.name_alg != TPM_ALG_SHA256 {
            return Err(format!(
                "name algorithm {:#06x}, expected SHA-256",
                self.name_alg
            ));
        }
        let must = ATTR_FIXED_TPM | ATTR_FIXED_PARENT;
        let must_not = ATTR_USER_WITH_AUTH
            | ATTR_SENSITIVE_DATA_ORIGIN
            | ATTR_RESTRICTED
            | ATTR_DECRYPT
            | ATTR_SIGN_ENCRYPT;
        if self.attributes & must != must || self.attributes & must_not != 0 {
            return Err(format!(
                "object attributes {:#010x} are not a policy-only sealed object's (fixedTPM, fixedParent, no userWithAuth)",
                self.attributes
            ));
        }
        if self.auth_policy != expected_policy {
            return Err(format!(
                "the object's policy {} differs from sealed.json's policy_digest {}",
                crate::util::hex::lower(self.auth_policy),
                crate::util::hex::lower(expected_policy)
            ));
        }
        Ok(())
    }
}

/// A marshalled `TPMT_PUBLIC` for a sealed data object with modseal's
/// attributes (used by the in-memory TPM and the tests).
pub fn build_sealed_public(auth_policy: &[u8], unique: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&TPM_ALG_KEYEDHASH.to_be_bytes());
    out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
    out.extend_from_slice(&SEALED_ATTRIBUTES.to_be_bytes());
    out.extend_from_slice(&(auth_policy.len() as u16).to_be_bytes());
    out.extend_from_slice(auth_policy);
    out.extend_from_slice(&TPM_ALG_NULL.to_be_bytes());
    out.extend_from_slice(&(unique.len() as u16).to_be_bytes());
    out.extend_from_slice(unique);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm2b_round_trip() {
        let body = b"\x00\x08\x00\x0bhello".to_vec();
        let file = encode(&body).unwrap();
        assert_eq!(&file[..2], &[0, 9]);
        assert_eq!(decode("x", &file).unwrap(), &body[..]);
        assert!(encode(&vec![0u8; 70_000]).is_err());
    }

    #[test]
    fn tpm2b_rejects_bad_framing() {
        assert!(decode("x", b"").is_err());
        assert!(decode("x", b"\x00").is_err());
        assert!(decode("x", b"\x00\x00").is_err()); // empty body
        assert!(decode("x", b"\x00\x03ab").is_err()); // short
        assert!(decode("x", b"\x00\x01ab").is_err()); // trailing
        assert!(decode("x", &vec![0u8; MAX_FILE + 1]).is_err());
    }

    #[test]
    fn sealed_public_round_trip() {
        let policy = [7u8; 32];
        let tpmt = build_sealed_public(&policy, &[1u8; 32]);
        let p = parse_sealed_public(&tpmt).unwrap();
        assert_eq!(p.auth_policy, &policy);
        assert_eq!(p.attributes, SEALED_ATTRIBUTES);
        p.check(&policy).unwrap();
        assert!(p.check(&[8u8; 32]).unwrap_err().contains("differs"));
    }

    #[test]
    fn sealed_public_rejects_hostile_input() {
        let tpmt = build_sealed_public(&[7u8; 32], &[1u8; 32]);
        for cut in 0..tpmt.len() {
            assert!(parse_sealed_public(&tpmt[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = tpmt.clone();
        trailing.push(0);
        assert!(parse_sealed_public(&trailing).is_err());
        let mut rsa = tpmt.clone();
        rsa[1] = 0x01; // TPM_ALG_RSA
        assert!(parse_sealed_public(&rsa).is_err());
        let mut huge = tpmt.clone();
        huge[8] = 0xff; // authPolicy size 0xff20
        assert!(parse_sealed_public(&huge).is_err());
        let mut user = tpmt;
        user[7] |= ATTR_USER_WITH_AUTH as u8;
        assert!(parse_sealed_public(&user)
            .unwrap()
            .check(&[7u8; 32])
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
            let _ = parse_sealed_public(&v);
            let _ = decode("x", &v);
        }
    }
}
