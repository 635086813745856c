//! The attestation key (AK): the template `modseal quote` makes it from, its
//! name, its public area checked against the template, its
//! SubjectPublicKeyInfo; `--ak-dir`'s files; and the AK file a verifier
//! trusts (`modseal attest --ak`).
//!
//! The template is exactly what `tpm2_createprimary -C e -G
//! rsa2048:rsassa-sha256:null -a
//! "restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth"`
//! sends (or `-G ecc256:ecdsa-sha256:null`): SHA-256 name, attributes
//! 0x00050072, no authPolicy, no symmetric algorithm, RSASSA-SHA256 with a
//! 2048-bit key and the default exponent (or ECDSA-SHA256 on NIST P-256 with
//! no KDF), empty unique. A primary key is a function of the template and
//! the endorsement seed, so both tools make the same key on one TPM.

use std::path::{Path, PathBuf};

use super::evidence::{AK_NAME, AK_PEM, AK_PUB};
use crate::tpm::marshal::{
    MarshalError, Reader, Writer, TPM_ALG_ECC, TPM_ALG_ECDSA, TPM_ALG_KEYEDHASH, TPM_ALG_NULL,
    TPM_ALG_RSA, TPM_ALG_RSASSA, TPM_ALG_SHA256, TPM_ALG_SYMCIPHER, TPM_ECC_NIST_P256,
    TPM_RH_ENDORSEMENT,
};
use crate::tpm::tpm2b::{self, Tpm2bError};
use crate::tpm::PcrBank;
use crate::util::read::{read_capped, ReadError};
use crate::verify::pubkey::{KeyError, PublicKey};

/// The AK's object attributes: fixedTPM | fixedParent | sensitiveDataOrigin |
/// userWithAuth | restricted | sign.
pub const AK_ATTRIBUTES: u32 = tpm2b::ATTR_FIXED_TPM
    | tpm2b::ATTR_FIXED_PARENT
    | tpm2b::ATTR_SENSITIVE_DATA_ORIGIN
    | tpm2b::ATTR_USER_WITH_AUTH
    | tpm2b::ATTR_RESTRICTED
    | tpm2b::ATTR_SIGN_ENCRYPT;

/// An AK file (`--ak`, `ak.pem`, `ak.pub`) larger than this is refused.
pub const MAX_AK_FILE: usize = 64 * 1024;

/// The AK's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AkAlg {
    /// RSA-2048, RSASSA-PKCS1-v1_5 with SHA-256.
    Rsa,
    /// ECC NIST P-256, ECDSA with SHA-256.
    Ecc,
}

impl AkAlg {
    /// `rsa2048` or `ecc-p256`, as reports name it.
    pub fn name(self) -> &'static str {
        match self {
            AkAlg::Rsa => "rsa2048",
            AkAlg::Ecc => "ecc-p256",
        }
    }
}

/// Why a public area is not an AK made from the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AkError {
    /// Too short to say what it is.
    #[error("a public area of {0} bytes")]
    Short(usize),
    /// Another kind of object (a storage key, sealed data, …).
    #[error("{} with attributes {}, not an attestation key's {}", type_name(*ty), attribute_names(*attributes), attribute_names(AK_ATTRIBUTES))]
    Attributes {
        /// Its `type`.
        ty: u16,
        /// Its `objectAttributes`.
        attributes: u32,
    },
    /// An attestation key, but not from modseal's template.
    #[error("{} with the attestation key's attributes but not made from modseal's AK template (name algorithm, policy, scheme or key size differ)", type_name(*.0))]
    NotTemplate(u16),
    /// The key in `unique` does not unmarshal, or bytes follow it.
    #[error(transparent)]
    Marshal(#[from] MarshalError),
    /// An RSA key of another size.
    #[error("the RSA modulus is not 2048 bits ({0} bytes)")]
    RsaModulus(usize),
    /// The key does not parse as a public key.
    #[error("the key in the public area: {0}")]
    Key(KeyError),
}

/// Why the verifier's AK file is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AkFileError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// It is read but holds no usable key.
    #[error("{}: unusable AK: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: AkKeyError,
    },
}

/// Why bytes are not an AK public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AkKeyError {
    /// A PEM block that does not decode.
    #[error("PEM block {block}: {reason}")]
    Pem {
        /// The block, from 1.
        block: usize,
        /// What the PEM decoder said.
        reason: String,
    },
    /// PEM without a `PUBLIC KEY` block.
    #[error("no 'BEGIN PUBLIC KEY' block in the PEM file")]
    NoPublicKey,
    /// Not a SubjectPublicKeyInfo modseal accepts.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Why `--ak-dir` was not brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AkDirError {
    /// `ak.pub` cannot be made.
    #[error(transparent)]
    Encode(#[from] Tpm2bError),
    /// Creating the directory or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The AK template as a marshalled `TPMT_PUBLIC`, with an empty `unique`.
pub fn ak_template(alg: AkAlg) -> Vec<u8> {
    let mut t = Writer::new();
    t.bytes(&ak_template_prefix(alg));
    match alg {
        AkAlg::Rsa => t.u16(0),        // unique: empty TPM2B_PUBLIC_KEY_RSA
        AkAlg::Ecc => t.u16(0).u16(0), // unique.x, unique.y
    };
    t.into_bytes()
}

/// Everything of the template before `unique`: what an AK's public area
/// must start with.
pub(crate) fn ak_template_prefix(alg: AkAlg) -> Vec<u8> {
    let mut t = Writer::new();
    t.u16(match alg {
        AkAlg::Rsa => TPM_ALG_RSA,
        AkAlg::Ecc => TPM_ALG_ECC,
    });
    t.u16(TPM_ALG_SHA256) // nameAlg
        .u32(AK_ATTRIBUTES)
        .u16(0) // authPolicy: empty
        .u16(TPM_ALG_NULL); // symmetric
    match alg {
        AkAlg::Rsa => t
            .u16(TPM_ALG_RSASSA)
            .u16(TPM_ALG_SHA256)
            .u16(2048) // keyBits
            .u32(0), // exponent: the default, 65537
        AkAlg::Ecc => t
            .u16(TPM_ALG_ECDSA)
            .u16(TPM_ALG_SHA256)
            .u16(TPM_ECC_NIST_P256)
            .u16(TPM_ALG_NULL), // kdf
    };
    t.into_bytes()
}

/// `nameAlg || SHA-256(TPMT_PUBLIC)`: the name of an object with a SHA-256
/// name algorithm.
pub fn name_of(public: &[u8]) -> Vec<u8> {
    let mut n = TPM_ALG_SHA256.to_be_bytes().to_vec();
    n.extend_from_slice(&crate::verify::algorithm::sha256(public));
    n
}

/// The qualified name of a primary key of the endorsement hierarchy with
/// this name (TPM 2.0 Part 1, "Qualified Name": `H(QN(parent) || name)`,
/// where a hierarchy's qualified name is its handle).
pub fn endorsement_primary_qualified_name(name: &[u8]) -> Vec<u8> {
    let mut q = TPM_ALG_SHA256.to_be_bytes().to_vec();
    q.extend_from_slice(&PcrBank::Sha256.hash_parts(&[&TPM_RH_ENDORSEMENT.to_be_bytes(), name]));
    q
}

/// `0x00030472 (fixedtpm|…)`: attributes as tpm2-tools names them.
fn attribute_names(a: u32) -> String {
    const NAMES: [(u32, &str); 12] = [
        (0x0000_0002, "fixedtpm"),
        (0x0000_0004, "stclear"),
        (0x0000_0010, "fixedparent"),
        (0x0000_0020, "sensitivedataorigin"),
        (0x0000_0040, "userwithauth"),
        (0x0000_0080, "adminwithpolicy"),
        (0x0000_0400, "noda"),
        (0x0000_0800, "encryptedduplication"),
        (0x0001_0000, "restricted"),
        (0x0002_0000, "decrypt"),
        (0x0004_0000, "sign"),
        (0x0008_0000, "x509sign"),
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| a & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    format!("{a:#010x} ({})", names.join("|"))
}

fn type_name(t: u16) -> String {
    match t {
        TPM_ALG_RSA => "an RSA key".into(),
        TPM_ALG_ECC => "an ECC key".into(),
        TPM_ALG_KEYEDHASH => "a keyed-hash object".into(),
        TPM_ALG_SYMCIPHER => "a symmetric key".into(),
        other => format!("an object of type {other:#06x}"),
    }
}

/// Says why a public area is not an AK made from the template.
fn describe_mismatch(public: &[u8]) -> AkError {
    let mut r = Reader::new(public);
    let (Ok(ty), Ok(_), Ok(attributes)) = (r.u16("type"), r.u16("nameAlg"), r.u32("attributes"))
    else {
        return AkError::Short(public.len());
    };
    if attributes != AK_ATTRIBUTES {
        return AkError::Attributes { ty, attributes };
    }
    AkError::NotTemplate(ty)
}

/// An attestation key: its public area, checked to be the template's.
#[derive(Debug, Clone)]
pub struct Ak {
    /// Its persistent handle.
    pub handle: u32,
    /// Its type.
    pub alg: AkAlg,
    /// Marshalled `TPMT_PUBLIC`.
    pub public: Vec<u8>,
    /// `nameAlg || SHA-256(public)`.
    pub name: Vec<u8>,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The key, for checking its signatures.
    pub key: PublicKey,
    /// Made by this run (else found at the handle).
    pub created: bool,
}

impl Ak {
    /// Checks that `public` is the template's public area with a key in
    /// `unique`, and parses that key.
    pub fn from_public(handle: u32, public: &[u8], created: bool) -> Result<Ak, AkError> {
        let alg = [AkAlg::Rsa, AkAlg::Ecc]
            .into_iter()
            .find(|&a| public.starts_with(&ak_template_prefix(a)))
            .ok_or_else(|| describe_mismatch(public))?;
        let mut r = Reader::new(public);
        r.bytes(ak_template_prefix(alg).len(), "template")?;
        let spki = match alg {
            AkAlg::Rsa => {
                let n = r.tpm2b("unique (RSA modulus)", 256)?;
                if n.len() != 256 || n[0] & 0x80 == 0 {
                    return Err(AkError::RsaModulus(n.len()));
                }
                spki::rsa(n, &[0x01, 0x00, 0x01])
            }
            AkAlg::Ecc => {
                let x = r.tpm2b("unique (x)", 32)?;
                let y = r.tpm2b("unique (y)", 32)?;
                spki::p256(x, y)
            }
        };
        r.finish("public area")?;
        let key = PublicKey::from_spki(&spki).map_err(AkError::Key)?;
        Ok(Ak {
            handle,
            alg,
            public: public.to_vec(),
            name: name_of(public),
            spki,
            key,
            created,
        })
    }

    /// `ak.pem`: the SubjectPublicKeyInfo as a PEM `PUBLIC KEY`.
    pub fn pem(&self) -> String {
        crate::util::pem::encode("PUBLIC KEY", &self.spki)
    }

    /// `ak.pub`: the `TPM2B_PUBLIC` file.
    pub fn tpm2b_public(&self) -> Result<Vec<u8>, Tpm2bError> {
        tpm2b::encode_file(&self.public)
    }
}

/// DER SubjectPublicKeyInfo of the AK's key, as `tpm2_readpublic -f pem`
/// writes it.
mod spki {
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0x81, n as u8]);
        } else {
            // Public keys are far below 64 KiB.
            out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn der_uint(be: &[u8]) -> Vec<u8> {
        let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        let mut v = Vec::with_capacity(be.len() + 1);
        if be.get(start).is_none_or(|&b| b & 0x80 != 0) {
            v.push(0);
        }
        v.extend_from_slice(&be[start..]);
        der(0x02, &v)
    }

    fn left_pad(b: &[u8], len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len.saturating_sub(b.len())];
        v.extend_from_slice(b);
        v
    }

    /// An RSA key: modulus and exponent, big-endian.
    pub(super) fn rsa(n: &[u8], e: &[u8]) -> Vec<u8> {
        use crate::verify::algorithm::OID_RSA_ENCRYPTION;
        let alg = [der(0x06, OID_RSA_ENCRYPTION), vec![0x05, 0x00]].concat();
        let key = der(0x30, &[der_uint(n), der_uint(e)].concat());
        let bits = [vec![0u8], key].concat();
        der(0x30, &[der(0x30, &alg), der(0x03, &bits)].concat())
    }

    /// A P-256 point, its coordinates big-endian (the TPM may drop leading
    /// zero bytes).
    pub(super) fn p256(x: &[u8], y: &[u8]) -> Vec<u8> {
        use crate::verify::algorithm::{OID_EC_PUBLIC_KEY, OID_P256};
        let alg = [der(0x06, OID_EC_PUBLIC_KEY), der(0x06, OID_P256)].concat();
        let bits = [&[0u8, 0x04][..], &left_pad(x, 32), &left_pad(y, 32)].concat();
        der(0x30, &[der(0x30, &alg), der(0x03, &bits)].concat())
    }
}

/// Parses the verifier's AK: a PEM `PUBLIC KEY` block or DER
/// SubjectPublicKeyInfo.
pub fn parse_ak(bytes: &[u8]) -> Result<PublicKey, AkKeyError> {
    let der = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let mut found = None;
        for (i, pem) in x509_parser::pem::Pem::iter_from_buffer(bytes).enumerate() {
            let pem = pem.map_err(|e| AkKeyError::Pem {
                block: i + 1,
                reason: e.to_string(),
            })?;
            if pem.label == "PUBLIC KEY" {
                found = Some(pem.contents);
                break;
            }
            if i > 16 {
                break;
            }
        }
        found.ok_or(AkKeyError::NoPublicKey)?
    } else {
        bytes.to_vec()
    };
    Ok(PublicKey::from_spki(&der)?)
}

/// Reads and parses the verifier's AK file ([`parse_ak`]).
pub fn load_ak(path: &Path) -> Result<PublicKey, AkFileError> {
    let bytes = read_capped(path, MAX_AK_FILE)?;
    parse_ak(&bytes).map_err(|reason| AkFileError::Unusable {
        path: path.to_path_buf(),
        reason,
    })
}

/// The `TPMT_PUBLIC` in `DIR/ak.pub`, if it is a readable TPM2B file.
pub fn read_cached_public(ak_dir: &Path) -> Option<Vec<u8>> {
    let path = ak_dir.join(AK_PUB);
    match read_capped(&path, tpm2b::MAX_FILE) {
        Ok(file) => match tpm2b::decode_file(AK_PUB, &file) {
            Ok(body) => Some(body.to_vec()),
            Err(e) => {
                log::warn!("{}: {e}; asking the TPM instead", path.display());
                None
            }
        },
        Err(ReadError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => {
            log::warn!("{e}; asking the TPM instead");
            None
        }
    }
}

/// Brings `--ak-dir` up to date: `ak.pub`, `ak.pem` and `ak.name`, each
/// rewritten atomically when it differs. Returns the names written.
pub fn update_ak_dir(dir: &Path, ak: &Ak) -> Result<Vec<&'static str>, AkDirError> {
    let files: [(&'static str, Vec<u8>); 3] = [
        (AK_PUB, ak.tpm2b_public()?),
        (AK_PEM, ak.pem().into_bytes()),
        (AK_NAME, ak.name.clone()),
    ];
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AkDirError::Io { path, source }
    };
    let mut written = Vec::new();
    for (name, data) in &files {
        let path = dir.join(name);
        if read_capped(&path, MAX_AK_FILE).ok().as_ref() == Some(data) {
            continue;
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        crate::util::fs::write_atomic(&path, data).map_err(io(&path))?;
        written.push(*name);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::fixtures::*;
    use crate::attest::quote_msg::parse_attest;
    use crate::attest::selection::BankSelection;
    use crate::attest::signature::{check_signature, parse_signature};

    #[test]
    fn template_is_what_tpm2_createprimary_sends() {
        // The public areas tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null
        // (and ecc256:ecdsa-sha256:null) -a "restricted|sign|fixedtpm|
        // fixedparent|sensitivedataorigin|userwithauth" made on swtpm 0.7.1
        // (tpm2-tools 5.4), read back with tpm2_readpublic -o: everything
        // before `unique` is the template.
        assert_eq!(
            ak_template(AkAlg::Rsa),
            unhex("0001000b00050072000000100014000b0800000000000000")
        );
        assert_eq!(
            ak_template(AkAlg::Ecc),
            unhex("0023000b00050072000000100018000b0003001000000000")
        );
        assert_eq!(AK_ATTRIBUTES, 0x0005_0072);
    }

    /// The parser and the signature check both commands use, on quotes
    /// tpm2_quote made.
    #[test]
    fn tpm2_quote_fixtures_parse_and_verify() {
        for (pub_hex, msg_hex, sig_hex, alg) in [
            (RSA_PUB, RSA_MSG, RSA_SIG, AkAlg::Rsa),
            (ECC_PUB, ECC_MSG, ECC_SIG, AkAlg::Ecc),
        ] {
            let ak = fixture_ak(pub_hex);
            assert_eq!(ak.alg, alg);
            let msg = unhex(msg_hex);
            let sig = unhex(sig_hex);
            let a = parse_attest(&msg).unwrap();
            assert_eq!(a.extra_data, unhex(NONCE_HEX));
            assert_eq!(
                a.pcr_select,
                vec![BankSelection {
                    hash: 0x000b,
                    pcrs: vec![7, 12]
                }]
            );
            assert_eq!(a.pcr_digest.len(), 32);
            // The TPM's qualified name of an endorsement-hierarchy primary.
            assert_eq!(
                a.qualified_signer,
                endorsement_primary_qualified_name(&ak.name)
            );
            let verify = |ak: &Ak, m: &[u8], s: &[u8]| {
                parse_signature(s)
                    .map_err(|e| e.to_string())
                    .and_then(|s| check_signature(&ak.key, &s, m).map_err(|e| e.to_string()))
            };
            verify(&ak, &msg, &sig).unwrap();
            // Any flipped bit in the message or the signature is refused.
            for i in [0, 40, msg.len() - 1] {
                let mut m = msg.clone();
                m[i] ^= 0x01;
                assert!(verify(&ak, &m, &sig).is_err(), "msg byte {i}");
            }
            for i in [10, sig.len() - 1] {
                let mut s = sig.clone();
                s[i] ^= 0x01;
                assert!(verify(&ak, &msg, &s).is_err(), "sig byte {i}");
            }
            // Another AK's key does not verify it.
            let other = if alg == AkAlg::Rsa { ECC_PUB } else { RSA_PUB };
            assert!(verify(&fixture_ak(other), &msg, &sig).is_err());
        }
    }

    #[test]
    fn attest_parser_rejects_hostile_input() {
        let msg = unhex(RSA_MSG);
        for cut in 0..msg.len() {
            assert!(parse_attest(&msg[..cut]).is_err(), "cut at {cut}");
        }
        let err = |b: &[u8]| parse_attest(b).unwrap_err().to_string();
        let mut trailing = msg.clone();
        trailing.push(0);
        assert!(err(&trailing).contains("trailing"));
        let mut magic = msg.clone();
        magic[0] = 0;
        assert!(err(&magic).contains("magic"));
        let mut ty = msg.clone();
        ty[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        assert!(err(&ty).contains("type"));
        let mut huge = msg;
        huge[6] = 0xff; // qualifiedSigner size 0xff22
        assert!(parse_attest(&huge).is_err());
        // Noise never panics.
        let mut x: u32 = 0x9e37_79b9;
        for len in 0..300usize {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_attest(&v);
            let _ = Ak::from_public(0x8101_0100, &v, false);
        }
    }

    #[test]
    fn ak_public_must_be_the_template_s() {
        let rsa = unhex(RSA_PUB)[2..].to_vec();
        let ak = Ak::from_public(1, &rsa, false).unwrap();
        assert_eq!(ak.name, name_of(&rsa));
        assert!(ak.pem().starts_with(
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
        ));
        assert_eq!(ak.tpm2b_public().unwrap(), unhex(RSA_PUB));
        // A storage key (restricted|decrypt), a sealed object, and an AK with
        // another scheme, policy or extra bytes are refused.
        let err = |b: &[u8]| Ak::from_public(1, b, false).unwrap_err().to_string();
        let mut srk = rsa.clone();
        srk[4..8].copy_from_slice(&0x0003_0472u32.to_be_bytes());
        let e = err(&srk);
        assert!(e.contains("restricted|decrypt"), "{e}");
        assert!(e.contains("not an attestation key's"), "{e}");
        let sealed = tpm2b::build_sealed_public(&[0u8; 32], &[]);
        assert!(err(&sealed).contains("keyed-hash"));
        let mut scheme = rsa.clone();
        scheme[12] = 0x00;
        scheme[13] = 0x16; // RSAPSS
        assert!(err(&scheme).contains("not made from modseal's AK template"));
        let mut trailing = rsa.clone();
        trailing.push(0);
        assert!(Ak::from_public(1, &trailing, false).is_err());
        assert!(Ak::from_public(1, &rsa[..rsa.len() - 1], false).is_err());
        assert_eq!(err(&rsa[..5]), "a public area of 5 bytes");
        let ecc = unhex(ECC_PUB)[2..].to_vec();
        let mut off_curve = ecc.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        assert!(Ak::from_public(1, &off_curve, false).is_err());
    }

    #[test]
    fn ak_files() {
        let pem = "-----BEGIN PUBLIC KEY-----\n\
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEAi8Fo7kgJxxMKFBlZHAJOtlLEpN\n\
            Cf8qVNwTdMGbo5Fl5IO+L0L5/G/waoVqWXH3iR54da/V06HJ/8ImeyXU0g==\n\
            -----END PUBLIC KEY-----\n";
        assert_eq!(parse_ak(pem.as_bytes()).unwrap().describe(), "ecdsa-p256");
        assert!(
            parse_ak(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err()
                .to_string()
                .contains("PUBLIC KEY")
        );
        assert!(parse_ak(b"garbage").is_err());
        // --ak-dir: written once, then left alone while it is the same.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ak");
        let ak = fixture_ak(ECC_PUB);
        assert_eq!(read_cached_public(&dir), None);
        assert_eq!(update_ak_dir(&dir, &ak).unwrap(), [AK_PUB, AK_PEM, AK_NAME]);
        assert!(update_ak_dir(&dir, &ak).unwrap().is_empty());
        assert_eq!(read_cached_public(&dir), Some(ak.public.clone()));
        let loaded = load_ak(&dir.join(AK_PEM)).unwrap();
        assert_eq!(loaded.describe(), "ecdsa-p256");
        std::fs::write(dir.join(AK_PUB), b"\x00\x05ab").unwrap();
        assert_eq!(read_cached_public(&dir), None);
        assert_eq!(update_ak_dir(&dir, &ak).unwrap(), [AK_PUB]);
        let e = load_ak(&dir.join(AK_NAME)).unwrap_err().to_string();
        assert!(e.contains("ak.name: unusable AK: "), "{e}");
    }
}
