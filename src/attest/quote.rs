//! `modseal quote`: a TPM quote over the PCRs modseal measures, signed by an
//! attestation key (AK), written in tpm2-tools' formats so that `modseal
//! attest` and `tpm2_checkquote` both check it.
//!
//! ## The attestation key
//! A primary key of the endorsement hierarchy made from exactly the template
//! `tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -a
//! "restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth"`
//! sends (or `-G ecc256:ecdsa-sha256:null` with `--ak-alg ecc`): SHA-256 name,
//! attributes 0x00050072, no authPolicy, no symmetric algorithm, RSASSA-SHA256
//! with a 2048-bit key and the default exponent (or ECDSA-SHA256 on NIST P-256
//! with no KDF), empty unique. A primary key is a function of the template
//! and the endorsement seed, so both tools make the same key on one TPM.
//!
//! It lives at a persistent handle ([`DEFAULT_AK_HANDLE`], `--ak-handle`),
//! made with TPM2_EvictControl on first use. A handle holding anything else is
//! refused, never overwritten: the object there must be a restricted signing
//! key whose public area is the template's in every field but the key itself
//! (`unique`), and a quote must name it a primary of the endorsement hierarchy
//! (its qualified name `0x000b || SHA-256(TPM_RH_ENDORSEMENT || name)`).
//! `tpm2_quote -c <handle>` uses the same key.
//!
//! `--ak-dir` (default `/etc/modseal/ak`) keeps its public parts: `ak.pub`
//! (`TPM2B_PUBLIC`, what `tpm2_readpublic -o` writes), `ak.pem` (the
//! SubjectPublicKeyInfo as PEM, what `tpm2_readpublic -f pem -o` writes) and
//! `ak.name` (the binary name, what `tpm2_readpublic -n` writes). A file is
//! rewritten (atomically, one by one) only when it differs. When `ak.pub` is
//! there and its name is the one the TPM reports for the handle, the TPM is
//! not asked for the public area again.
//!
//! ## The quote directory (`--out`)
//! Replaced as a whole (built beside it, then exchanged in one
//! `renameat2(RENAME_EXCHANGE)`), only after every check passed:
//! - `quote.msg`: the `TPMS_ATTEST` as marshalled (`tpm2_quote -m`);
//! - `quote.sig`: the `TPMT_SIGNATURE` as marshalled (`tpm2_quote -s`, its
//!   default `tss` format);
//! - `quote.pcrs`: the quoted PCR values in tpm2-tools' serialized format
//!   (`tpm2_quote -o`, read by `tpm2_checkquote -f`): see [`pcrs_file`];
//! - `tpm2-measure.log`: a copy of the event log (`--log`), read before and
//!   after the quote and required to be the same both times; absent with
//!   `--no-log`;
//! - `ak.pem`, `ak.pub`: the AK, as in `--ak-dir`;
//! - `nonce`: the qualifying data, lowercase hex and a newline.
//!
//! Before anything is written: the quote's magic and type, its qualifying data
//! (the nonce), its PCR selection (the one asked for), its signer (the AK as a
//! primary of the endorsement hierarchy), its signature (checked with the AK),
//! and its PCR digest, which must be the SHA-256 of the values read with
//! TPM2_PCR_Read after the quote. A PCR extended between the quote and the
//! read makes them differ: the quote is made again once, then refused.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::tpm::{tpm2b, AttestTpm, PcrBank, TpmError};

/// Default persistent handle of the AK: in the range of endorsement-hierarchy
/// primary keys (0x81010000–0x8101FFFF), away from the low handles where
/// endorsement keys are persisted (0x81010001 for the RSA EK in TCG's
/// provisioning guidance; tpm2-tools' examples put an ECC EK, or an AK, at
/// 0x81010002).
pub const DEFAULT_AK_HANDLE: u32 = 0x8101_0100;
/// Default `--ak-dir`.
pub const DEFAULT_AK_DIR: &str = "/etc/modseal/ak";
/// Persistent handles the owner can write with TPM2_EvictControl.
pub const OWNER_PERSISTENT: std::ops::RangeInclusive<u32> = 0x8100_0000..=0x817F_FFFF;
/// Largest nonce: a `TPM2B_DATA` holds at most `sizeof(TPMU_HA)` = 64 bytes
/// (tpm2-tss, tpm2-tools). swtpm accepts 64 bytes with a SHA-256 AK; a TPM
/// refusing more than its signing digest's size would answer TPM_RC_SIZE.
pub const MAX_NONCE: usize = 64;
/// How many times the quote is made when the PCRs or the log change under it.
pub const QUOTE_ATTEMPTS: u32 = 2;

pub const QUOTE_MSG: &str = "quote.msg";
pub const QUOTE_SIG: &str = "quote.sig";
pub const QUOTE_PCRS: &str = "quote.pcrs";
pub const QUOTE_LOG: &str = "tpm2-measure.log";
pub const AK_PEM: &str = "ak.pem";
pub const AK_PUB: &str = "ak.pub";
pub const AK_NAME: &str = "ak.name";
pub const NONCE: &str = "nonce";
/// Every file a quote directory may hold.
pub const QUOTE_FILES: [&str; 7] = [
    QUOTE_MSG, QUOTE_SIG, QUOTE_PCRS, QUOTE_LOG, AK_PEM, AK_PUB, NONCE,
];

const TPM_ALG_RSA: u16 = 0x0001;
const TPM_ALG_SHA256: u16 = 0x000B;
const TPM_ALG_NULL: u16 = 0x0010;
const TPM_ALG_RSASSA: u16 = 0x0014;
const TPM_ALG_ECDSA: u16 = 0x0018;
const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ECC_NIST_P256: u16 = 0x0003;
const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;

/// The AK's object attributes: fixedTPM | fixedParent | sensitiveDataOrigin |
/// userWithAuth | restricted | sign.
pub const AK_ATTRIBUTES: u32 = tpm2b::ATTR_FIXED_TPM
    | tpm2b::ATTR_FIXED_PARENT
    | tpm2b::ATTR_SENSITIVE_DATA_ORIGIN
    | tpm2b::ATTR_USER_WITH_AUTH
    | tpm2b::ATTR_RESTRICTED
    | tpm2b::ATTR_SIGN_ENCRYPT;

/// The AK's key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AkAlg {
    /// RSA-2048, RSASSA-PKCS1-v1_5 with SHA-256.
    Rsa,
    /// ECC NIST P-256, ECDSA with SHA-256.
    Ecc,
}

impl AkAlg {
    pub fn name(self) -> &'static str {
        match self {
            AkAlg::Rsa => "rsa2048",
            AkAlg::Ecc => "ecc-p256",
        }
    }
}

/// Why a quote was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// Bad arguments or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A TPM command failed, in the named step (and what to do about it,
    /// when there is something to say).
    #[error("{step}: {err}{hint}")]
    Tpm {
        step: String,
        err: TpmError,
        hint: &'static str,
    },
    /// The persistent handle holds something modseal will not use or replace.
    #[error("{0}")]
    AkRefused(String),
    /// What the TPM returned does not check out.
    #[error("{0}")]
    BadQuote(String),
    /// The PCRs or the event log kept changing while quoting.
    #[error("{0}")]
    Changed(String),
    /// Reading the event log.
    #[error("{0}")]
    Io(String),
}

impl QuoteError {
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            QuoteError::Usage(_)
                | QuoteError::Tpm {
                    err: TpmError::Invalid(_),
                    ..
                }
        )
    }
}

fn tpm_step(step: impl Into<String>) -> impl FnOnce(TpmError) -> QuoteError {
    let step = step.into();
    move |err| QuoteError::Tpm {
        step,
        err,
        hint: "",
    }
}

// ---------------------------------------------------------------------------
// Arguments

/// Parses `--nonce`: hex (either case, an optional `0x`), 1 to 64 bytes.
pub fn parse_nonce(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() {
        return Err("empty nonce".into());
    }
    if t.len() % 2 != 0 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{text}' is not hex (an even number of hex digits)"
        ));
    }
    if t.len() / 2 > MAX_NONCE {
        return Err(format!(
            "{} bytes, more than the {MAX_NONCE} a TPM2B_DATA holds",
            t.len() / 2
        ));
    }
    crate::util::hex::parse(t).ok_or_else(|| format!("'{text}' is not hex"))
}

/// Parses `--pcrs`: `BANK:LIST` parts joined with `+`, or a bare `LIST`
/// (sha256). PCR lists as in [`crate::tpm::bank::parse_pcr_list`].
pub fn parse_pcr_spec(text: &str) -> Result<Vec<(PcrBank, Vec<u8>)>, String> {
    let mut out: Vec<(PcrBank, Vec<u8>)> = Vec::new();
    for part in text.split('+') {
        let (bank, list) = match part.split_once(':') {
            Some((b, l)) => {
                let bank = PcrBank::from_name(b.trim()).ok_or_else(|| {
                    format!("unknown bank '{b}' (sha1, sha256, sha384 or sha512)")
                })?;
                (bank, l)
            }
            None => (PcrBank::Sha256, part),
        };
        if out.iter().any(|(b, _)| *b == bank) {
            return Err(format!("bank {bank} given twice"));
        }
        out.push((bank, crate::tpm::bank::parse_pcr_list(list)?));
    }
    Ok(out)
}

/// `sha256:0,7,12+sha1:12`: a selection as `--pcrs` and tpm2-tools write it.
pub fn selection_text(selection: &[(PcrBank, Vec<u8>)]) -> String {
    selection
        .iter()
        .map(|(b, p)| {
            let list: Vec<String> = p.iter().map(u8::to_string).collect();
            format!("{b}:{}", list.join(","))
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// Parses `--ak-handle`: hex with or without `0x`, in the owner's
/// persistent range.
pub fn parse_handle(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let h = u32::from_str_radix(hex, 16).map_err(|_| format!("'{text}' is not a hex handle"))?;
    if !OWNER_PERSISTENT.contains(&h) {
        return Err(format!(
            "{h:#010x} is not a persistent handle the owner can write (0x81000000-0x817fffff)"
        ));
    }
    Ok(h)
}

// ---------------------------------------------------------------------------
// The AK template and public area

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// The AK template as a marshalled `TPMT_PUBLIC` (see the module
/// documentation), with an empty `unique`.
pub fn ak_template(alg: AkAlg) -> Vec<u8> {
    let mut t = ak_template_prefix(alg);
    match alg {
        AkAlg::Rsa => put16(&mut t, 0), // unique: empty TPM2B_PUBLIC_KEY_RSA
        AkAlg::Ecc => {
            put16(&mut t, 0); // unique.x
            put16(&mut t, 0); // unique.y
        }
    }
    t
}

/// Everything of the template before `unique`: what an AK's public area
/// must start with.
fn ak_template_prefix(alg: AkAlg) -> Vec<u8> {
    let mut t = Vec::with_capacity(32);
    put16(
        &mut t,
        if alg == AkAlg::Rsa {
            TPM_ALG_RSA
        } else {
            TPM_ALG_ECC
        },
    );
    put16(&mut t, TPM_ALG_SHA256); // nameAlg
    put32(&mut t, AK_ATTRIBUTES);
    put16(&mut t, 0); // authPolicy: empty
    put16(&mut t, TPM_ALG_NULL); // symmetric
    match alg {
        AkAlg::Rsa => {
            put16(&mut t, TPM_ALG_RSASSA);
            put16(&mut t, TPM_ALG_SHA256);
            put16(&mut t, 2048); // keyBits
            put32(&mut t, 0); // exponent: the default, 65537
        }
        AkAlg::Ecc => {
            put16(&mut t, TPM_ALG_ECDSA);
            put16(&mut t, TPM_ALG_SHA256);
            put16(&mut t, TPM_ECC_NIST_P256);
            put16(&mut t, TPM_ALG_NULL); // kdf
        }
    }
    t
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
        0x0001 => "an RSA key".into(),
        0x0023 => "an ECC key".into(),
        0x0008 => "a keyed-hash object".into(),
        0x0025 => "a symmetric key".into(),
        other => format!("an object of type {other:#06x}"),
    }
}

/// Says why a public area is not an AK made from the template.
fn describe_mismatch(public: &[u8]) -> String {
    let (Some(ty), Some(attrs)) = (
        public.get(0..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
        public
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
    ) else {
        return format!("a public area of {} bytes", public.len());
    };
    let what = type_name(ty);
    if attrs != AK_ATTRIBUTES {
        return format!(
            "{what} with attributes {}, not an attestation key's {}",
            attribute_names(attrs),
            attribute_names(AK_ATTRIBUTES)
        );
    }
    format!("{what} with the attestation key's attributes but not made from modseal's AK template (name algorithm, policy, scheme or key size differ)")
}

/// An attestation key: its public area, checked to be the template's.
#[derive(Debug, Clone)]
pub struct Ak {
    pub handle: u32,
    pub alg: AkAlg,
    /// Marshalled `TPMT_PUBLIC`.
    pub public: Vec<u8>,
    /// `nameAlg || SHA-256(public)`.
    pub name: Vec<u8>,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    pub key: crate::verify::pubkey::PublicKey,
    /// Made by this run (else found at the handle).
    pub created: bool,
}

impl Ak {
    /// Checks that `public` is the template's public area with a key in
    /// `unique`, and parses that key.
    pub fn from_public(handle: u32, public: &[u8], created: bool) -> Result<Ak, String> {
        let alg = [AkAlg::Rsa, AkAlg::Ecc]
            .into_iter()
            .find(|&a| public.starts_with(&ak_template_prefix(a)))
            .ok_or_else(|| describe_mismatch(public))?;
        let mut r = Reader {
            data: public,
            pos: ak_template_prefix(alg).len(),
        };
        let spki = match alg {
            AkAlg::Rsa => {
                let n = r.tpm2b("unique (RSA modulus)", 256)?;
                if n.len() != 256 || n[0] & 0x80 == 0 {
                    return Err(format!(
                        "the RSA modulus is not 2048 bits ({} bytes)",
                        n.len()
                    ));
                }
                rsa_spki(n, &[0x01, 0x00, 0x01])
            }
            AkAlg::Ecc => {
                let x = r.tpm2b("unique (x)", 32)?;
                let y = r.tpm2b("unique (y)", 32)?;
                let mut point = vec![0x04];
                point.extend_from_slice(&left_pad(x, 32));
                point.extend_from_slice(&left_pad(y, 32));
                ec_spki(&point)
            }
        };
        r.finish("public area")?;
        let key = crate::verify::pubkey::PublicKey::from_spki(&spki)
            .map_err(|e| format!("the key in the public area: {e}"))?;
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
    pub fn tpm2b_public(&self) -> Result<Vec<u8>, String> {
        tpm2b::encode(&self.public)
    }
}

fn left_pad(b: &[u8], len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len.saturating_sub(b.len())];
    v.extend_from_slice(b);
    v
}

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

fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    use crate::verify::algorithm::OID_RSA_ENCRYPTION;
    let alg = [der(0x06, OID_RSA_ENCRYPTION), vec![0x05, 0x00]].concat();
    let key = der(0x30, &[der_uint(n), der_uint(e)].concat());
    let bits = [vec![0u8], key].concat();
    der(0x30, &[der(0x30, &alg), der(0x03, &bits)].concat())
}

fn ec_spki(point: &[u8]) -> Vec<u8> {
    use crate::verify::algorithm::{OID_EC_PUBLIC_KEY, OID_P256};
    let alg = [der(0x06, OID_EC_PUBLIC_KEY), der(0x06, OID_P256)].concat();
    let bits = [&[0u8][..], point].concat();
    der(0x30, &[der(0x30, &alg), der(0x03, &bits)].concat())
}

// ---------------------------------------------------------------------------
// TPMS_ATTEST and TPMT_SIGNATURE

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        match self.pos.checked_add(n).filter(|&e| e <= self.data.len()) {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(format!("truncated in {what} at byte {}", self.pos)),
        }
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn tpm2b(&mut self, what: &str, max: usize) -> Result<&'a [u8], String> {
        let n = usize::from(self.u16(what)?);
        if n > max {
            return Err(format!("{what}: {n} bytes, more than {max}"));
        }
        self.take(n, what)
    }
    fn finish(&self, what: &str) -> Result<(), String> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(format!(
                "{} trailing bytes after the {what}",
                self.data.len() - self.pos
            ))
        }
    }
}

/// The fields of a quote's `TPMS_ATTEST` (TPM 2.0 Part 2 §10.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteAttest<'a> {
    pub qualified_signer: &'a [u8],
    pub extra_data: &'a [u8],
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
    pub firmware_version: u64,
    /// `(hash algorithm, pcrSelect bitmap)` per bank, in order.
    pub selection: Vec<(u16, &'a [u8])>,
    pub pcr_digest: &'a [u8],
}

/// Parses a marshalled `TPMS_ATTEST` of type `TPM_ST_ATTEST_QUOTE`: magic,
/// type, sizes within the TPM's limits, no trailing bytes.
pub fn parse_quote_attest(b: &[u8]) -> Result<QuoteAttest<'_>, String> {
    let mut r = Reader { data: b, pos: 0 };
    let magic = r.u32("magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(format!(
            "magic {magic:#010x} is not TPM_GENERATED_VALUE (0xff544347)"
        ));
    }
    let ty = r.u16("type")?;
    if ty != TPM_ST_ATTEST_QUOTE {
        return Err(format!(
            "type {ty:#06x} is not TPM_ST_ATTEST_QUOTE (0x8018)"
        ));
    }
    let qualified_signer = r.tpm2b("qualifiedSigner", 2 + 64)?;
    let extra_data = r.tpm2b("extraData", 64)?;
    let clock = r.u64("clockInfo.clock")?;
    let reset_count = r.u32("clockInfo.resetCount")?;
    let restart_count = r.u32("clockInfo.restartCount")?;
    let safe = match r.u8("clockInfo.safe")? {
        0 => false,
        1 => true,
        v => return Err(format!("clockInfo.safe is {v}, not 0 or 1")),
    };
    let firmware_version = r.u64("firmwareVersion")?;
    let count = r.u32("pcrSelect.count")?;
    if count > 16 {
        return Err(format!("{count} PCR selections, more than 16"));
    }
    let mut selection = Vec::new();
    for _ in 0..count {
        let hash = r.u16("pcrSelections.hash")?;
        let size = r.u8("pcrSelections.sizeofSelect")?;
        if size > 4 {
            return Err(format!("sizeofSelect {size}, more than 4"));
        }
        selection.push((hash, r.take(usize::from(size), "pcrSelect")?));
    }
    let pcr_digest = r.tpm2b("pcrDigest", 64)?;
    r.finish("TPMS_ATTEST")?;
    Ok(QuoteAttest {
        qualified_signer,
        extra_data,
        clock,
        reset_count,
        restart_count,
        safe,
        firmware_version,
        selection,
        pcr_digest,
    })
}

/// The 3-byte bitmap tpm2-tools and modseal select PCRs 0–23 with.
fn bitmap(pcrs: &[u8]) -> [u8; 3] {
    let mut m = [0u8; 3];
    for &p in pcrs {
        if let Some(b) = m.get_mut(usize::from(p / 8)) {
            *b |= 1 << (p % 8);
        }
    }
    m
}

fn selection_matches(attest: &QuoteAttest<'_>, selection: &[(PcrBank, Vec<u8>)]) -> bool {
    attest.selection.len() == selection.len()
        && attest
            .selection
            .iter()
            .zip(selection)
            .all(|((alg, map), (bank, pcrs))| *alg == bank.alg_id() && *map == bitmap(pcrs))
}

fn describe_selection(sel: &[(u16, &[u8])]) -> String {
    let parts: Vec<String> = sel
        .iter()
        .map(|(alg, map)| {
            let bank = PcrBank::ALL
                .into_iter()
                .find(|b| b.alg_id() == *alg)
                .map(|b| b.name().to_owned())
                .unwrap_or_else(|| format!("{alg:#06x}"));
            let pcrs: Vec<String> = (0..map.len() * 8)
                .filter(|i| map[i / 8] & (1 << (i % 8)) != 0)
                .map(|i| i.to_string())
                .collect();
            if pcrs.is_empty() {
                format!("{bank}:none")
            } else {
                format!("{bank}:{}", pcrs.join(","))
            }
        })
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join("+")
    }
}

/// Checks a marshalled `TPMT_SIGNATURE` over `msg` with the AK: the
/// signature algorithm must be the AK's scheme with SHA-256, and the
/// signature must verify.
pub fn verify_quote_signature(ak: &Ak, msg: &[u8], sig: &[u8]) -> Result<(), String> {
    let mut r = Reader { data: sig, pos: 0 };
    let sig_alg = r.u16("sigAlg")?;
    let hash = r.u16("hash")?;
    let expected = match ak.alg {
        AkAlg::Rsa => TPM_ALG_RSASSA,
        AkAlg::Ecc => TPM_ALG_ECDSA,
    };
    if sig_alg != expected || hash != TPM_ALG_SHA256 {
        return Err(format!(
            "signature algorithm {sig_alg:#06x} with hash {hash:#06x}, expected {expected:#06x} with SHA-256 ({:#06x})",
            TPM_ALG_SHA256
        ));
    }
    let signature = match ak.alg {
        AkAlg::Rsa => r.tpm2b("RSA signature", 512)?.to_vec(),
        AkAlg::Ecc => {
            let rr = r.tpm2b("ECDSA r", 32)?;
            let ss = r.tpm2b("ECDSA s", 32)?;
            let mut rb = [0u8; 32];
            rb.copy_from_slice(&left_pad(rr, 32));
            let mut sb = [0u8; 32];
            sb.copy_from_slice(&left_pad(ss, 32));
            p256::ecdsa::Signature::from_scalars(rb, sb)
                .map_err(|_| "ECDSA r or s is out of range".to_string())?
                .to_der()
                .as_bytes()
                .to_vec()
        }
    };
    r.finish("TPMT_SIGNATURE")?;
    let digest = crate::verify::algorithm::sha256(msg);
    ak.key
        .verify(
            crate::verify::algorithm::HashAlgo::Sha256,
            &digest,
            &signature,
        )
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------
// quote.pcrs

/// `TPM2_NUM_PCR_BANKS`: entries in a `TPML_PCR_SELECTION`.
const NUM_PCR_BANKS: usize = 16;
/// Digests in a `TPML_DIGEST`.
const DIGESTS_PER_LIST: usize = 8;
/// `sizeof(TPMU_HA)`: the buffer of a `TPM2B_DIGEST`.
const DIGEST_BUFFER: usize = 64;
/// `TPM2_MAX_PCRS`: `TPML_DIGEST`s in tpm2-tools' `tpm2_pcrs`.
const MAX_DIGEST_LISTS: usize = 32;
/// `sizeof(TPML_PCR_SELECTION)` = 4 + 16 × 8 (a `TPMS_PCR_SELECTION` is
/// hash (2), sizeofSelect (1), `pcrSelect[4]`, one byte of padding).
pub const PCRS_SELECTION_SIZE: usize = 4 + NUM_PCR_BANKS * 8;
/// `sizeof(TPML_DIGEST)` = 4 + 8 × (2 + 64).
pub const PCRS_DIGEST_LIST_SIZE: usize = 4 + DIGESTS_PER_LIST * (2 + DIGEST_BUFFER);

/// `quote.pcrs` in the format of tpm2-tools 5.4 (`tpm2_quote -o`, read by
/// `tpm2_checkquote -f`): `lib/pcr.c` `pcr_fwrite_serialized` writes the C
/// structures themselves, with their integers converted to little-endian
/// (`htole16`/`htole32`); `tools/misc/tpm2_checkquote.c`
/// `parse_selection_data_from_file` reads them back with `fread` and
/// `le*toh`. The file is:
/// 1. `TPML_PCR_SELECTION` (132 bytes): `count` (u32 LE), then 16
///    `TPMS_PCR_SELECTION`s of 8 bytes: `hash` (u16 LE), `sizeofSelect` (3,
///    as `pcr_parse_selection` sets), `pcrSelect[4]`, one padding byte; the
///    unused entries zero;
/// 2. the number of `TPML_DIGEST`s that follow (u32 LE);
/// 3. that many `TPML_DIGEST`s (532 bytes each): `count` (u32 LE), then 8
///    `TPM2B_DIGEST`s of `size` (u16 LE) and a 64-byte buffer, zero past
///    `size`; one list per TPM2_PCR_Read response (`pcr_read_pcr_values`).
///
/// `groups` are those responses' values in order.
pub fn pcrs_file(
    selection: &[(PcrBank, Vec<u8>)],
    groups: &[Vec<Vec<u8>>],
) -> Result<Vec<u8>, String> {
    if selection.is_empty() || selection.len() > NUM_PCR_BANKS {
        return Err(format!(
            "{} PCR banks selected (1-{NUM_PCR_BANKS})",
            selection.len()
        ));
    }
    if groups.len() > MAX_DIGEST_LISTS {
        return Err(format!(
            "{} PCR_Read responses, more than tpm2-tools' {MAX_DIGEST_LISTS}",
            groups.len()
        ));
    }
    let mut out =
        Vec::with_capacity(PCRS_SELECTION_SIZE + 4 + groups.len() * PCRS_DIGEST_LIST_SIZE);
    out.extend_from_slice(&(selection.len() as u32).to_le_bytes());
    for i in 0..NUM_PCR_BANKS {
        match selection.get(i) {
            Some((bank, pcrs)) => {
                out.extend_from_slice(&bank.alg_id().to_le_bytes());
                out.push(3);
                out.extend_from_slice(&bitmap(pcrs));
                out.extend_from_slice(&[0, 0]); // pcrSelect[3], padding
            }
            None => out.extend_from_slice(&[0u8; 8]),
        }
    }
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    for g in groups {
        if g.is_empty() || g.len() > DIGESTS_PER_LIST {
            return Err(format!(
                "a PCR_Read response of {} values (1-{DIGESTS_PER_LIST})",
                g.len()
            ));
        }
        out.extend_from_slice(&(g.len() as u32).to_le_bytes());
        for k in 0..DIGESTS_PER_LIST {
            match g.get(k) {
                Some(d) if d.len() <= DIGEST_BUFFER => {
                    out.extend_from_slice(&(d.len() as u16).to_le_bytes());
                    out.extend_from_slice(d);
                    out.resize(out.len() + DIGEST_BUFFER - d.len(), 0);
                }
                Some(d) => return Err(format!("a PCR value of {} bytes", d.len())),
                None => out.resize(out.len() + 2 + DIGEST_BUFFER, 0),
            }
        }
    }
    Ok(out)
}

/// The values read, one per selected PCR in selection order (banks as
/// given, PCRs ascending), each of its bank's size.
fn flatten_values<'a>(
    selection: &[(PcrBank, Vec<u8>)],
    groups: &'a [Vec<Vec<u8>>],
) -> Result<Vec<&'a [u8]>, String> {
    let values: Vec<&[u8]> = groups.iter().flatten().map(Vec::as_slice).collect();
    let want: Vec<PcrBank> = selection
        .iter()
        .flat_map(|(b, p)| std::iter::repeat_n(*b, p.len()))
        .collect();
    if values.len() != want.len() {
        return Err(format!(
            "{} PCR values read for {} selected PCRs",
            values.len(),
            want.len()
        ));
    }
    if let Some((v, b)) = values
        .iter()
        .zip(&want)
        .find(|(v, b)| v.len() != b.digest_len())
    {
        return Err(format!("a {b} PCR value of {} bytes", v.len()));
    }
    Ok(values)
}

// ---------------------------------------------------------------------------
// Making the quote

/// What to quote and with which key.
#[derive(Debug, Clone)]
pub struct QuoteRequest<'a> {
    pub handle: u32,
    /// The AK type asked for (`--ak-alg`): a new AK's type (RSA when
    /// absent), and, when given, the type an existing one must have.
    pub alg: Option<AkAlg>,
    pub nonce: &'a [u8],
    pub selection: &'a [(PcrBank, Vec<u8>)],
    /// The `TPMT_PUBLIC` in `--ak-dir`'s `ak.pub`, when there is one: used
    /// instead of a ReadPublic when its name is the TPM's.
    pub cached_public: Option<Vec<u8>>,
}

/// A checked quote, ready to be written.
#[derive(Debug, Clone)]
pub struct QuoteOutput {
    pub ak: Ak,
    /// `quote.msg`.
    pub attest: Vec<u8>,
    /// `quote.sig`.
    pub signature: Vec<u8>,
    /// `quote.pcrs`.
    pub pcrs: Vec<u8>,
    /// The event log as read around the quote, if any.
    pub log: Option<Vec<u8>>,
    /// Quotes made (1, or 2 after a PCR or log change).
    pub attempts: u32,
    /// TPM commands sent.
    pub commands: u64,
}

/// TPM_RC_BAD_AUTH and TPM_RC_AUTH_FAIL (format 1, without their location).
const RC_BAD_AUTH: u32 = 0x0A2;
const RC_AUTH_FAIL: u32 = 0x08E;
const AUTH_HINT: &str = "; modseal creates the AK with the empty endorsement and owner authorization: with passwords set, make it once with `tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -a 'restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth'` and persist it at this handle with `tpm2_evictcontrol -C o`; modseal then reuses it";

fn refused(handle: u32, why: &str) -> QuoteError {
    QuoteError::AkRefused(format!(
        "persistent handle {handle:#010x} holds a different object: {why}; modseal does not overwrite it (choose another --ak-handle, or evict the object: tpm2_evictcontrol -C o -c {handle:#010x})"
    ))
}

/// Finds the AK at the handle, or makes it when the handle is free.
pub fn resolve_ak<T: AttestTpm + ?Sized>(
    tpm: &mut T,
    req: &QuoteRequest<'_>,
) -> Result<Ak, QuoteError> {
    let h = req.handle;
    let found = tpm
        .open_persistent(h)
        .map_err(tpm_step(format!("reading persistent handle {h:#010x}")))?;
    let Some(name) = found else {
        let alg = req.alg.unwrap_or(AkAlg::Rsa);
        let area = tpm
            .create_persistent_primary(&ak_template(alg), h)
            .map_err(|err| {
                let auth = matches!(
                    err.rc().and_then(crate::tpm::rc::tpm_base),
                    Some(RC_BAD_AUTH | RC_AUTH_FAIL)
                );
                QuoteError::Tpm {
                    step: format!("creating the {} attestation key at {h:#010x}", alg.name()),
                    err,
                    hint: if auth { AUTH_HINT } else { "" },
                }
            })?;
        let ak = Ak::from_public(h, &area.public, true).map_err(|e| {
            QuoteError::BadQuote(format!(
                "the key the TPM made from the AK template does not check out: {e}"
            ))
        })?;
        if ak.alg != alg || ak.name != area.name {
            return Err(QuoteError::BadQuote(format!(
                "the key the TPM made at {h:#010x} is not the one asked for (name {} for public area {})",
                crate::util::hex::lower(&area.name),
                crate::util::hex::lower(&ak.name)
            )));
        }
        return Ok(ak);
    };
    let (public, qualified_name) = match &req.cached_public {
        Some(c) if name_of(c) == name => (c.clone(), None),
        _ => {
            let area = tpm
                .read_persistent_public(h)
                .map_err(tpm_step(format!("reading the public area at {h:#010x}")))?;
            if name_of(&area.public) != area.name || area.name != name {
                return Err(QuoteError::BadQuote(format!(
                    "the TPM's name for the object at {h:#010x} is not that of its public area"
                )));
            }
            (area.public, area.qualified_name)
        }
    };
    // What the object is first, then where it lives (the quote checks the
    // hierarchy again through its signer's qualified name).
    let ak = Ak::from_public(h, &public, false).map_err(|e| refused(h, &e))?;
    if let Some(qn) = qualified_name {
        if qn != endorsement_primary_qualified_name(&ak.name) {
            return Err(refused(
                h,
                "a key with the AK template that is not a primary key of the endorsement hierarchy",
            ));
        }
    }
    if let Some(want) = req.alg {
        if want != ak.alg {
            return Err(QuoteError::AkRefused(format!(
                "persistent handle {h:#010x} holds an {} attestation key, not the {} one --ak-alg asks for",
                ak.alg.name(),
                want.name()
            )));
        }
    }
    Ok(ak)
}

/// Makes and checks the quote: the AK (found or made), then TPM2_Quote,
/// TPM2_PCR_Read and the event log (`read_log`, before and after), checked
/// as the module documentation says. A PCR or log change is retried once.
pub fn make_quote<T: AttestTpm + ?Sized>(
    tpm: &mut T,
    req: &QuoteRequest<'_>,
    read_log: &mut dyn FnMut() -> Result<Option<Vec<u8>>, QuoteError>,
) -> Result<QuoteOutput, QuoteError> {
    if req.nonce.is_empty() || req.nonce.len() > MAX_NONCE {
        return Err(QuoteError::Usage(format!(
            "a nonce of {} bytes (1-{MAX_NONCE})",
            req.nonce.len()
        )));
    }
    let start = tpm.attest_commands();
    let ak = resolve_ak(tpm, req)?;
    let expected_signer = endorsement_primary_qualified_name(&ak.name);
    let mut attempt = 1;
    loop {
        let log_before = read_log()?;
        let quoted = tpm
            .quote(req.handle, req.nonce, req.selection)
            .map_err(tpm_step(format!(
                "quoting with the AK at {:#010x}",
                req.handle
            )))?;
        let bad = |e: String| QuoteError::BadQuote(format!("the TPM's quote: {e}"));
        let attest = parse_quote_attest(&quoted.attest).map_err(bad)?;
        if attest.extra_data != req.nonce {
            return Err(bad(format!(
                "its qualifying data {} is not the nonce",
                crate::util::hex::lower(attest.extra_data)
            )));
        }
        if !selection_matches(&attest, req.selection) {
            return Err(bad(format!(
                "it covers {} instead of {} (is every bank allocated?)",
                describe_selection(&attest.selection),
                selection_text(req.selection)
            )));
        }
        let groups = tpm
            .pcr_read_groups(req.selection)
            .map_err(tpm_step("reading the quoted PCRs"))?;
        let log_after = read_log()?;
        if attest.qualified_signer != expected_signer {
            return Err(refused(
                req.handle,
                "a key that is not a primary key of the endorsement hierarchy (the quote's signer is not the AK's qualified name)",
            ));
        }
        verify_quote_signature(&ak, &quoted.attest, &quoted.signature)
            .map_err(|e| bad(format!("its signature does not verify with the AK: {e}")))?;
        let values = flatten_values(req.selection, &groups)
            .map_err(|e| QuoteError::BadQuote(format!("reading the quoted PCRs: {e}")))?;
        let digest = crate::verify::algorithm::sha256(&values.concat());
        let pcrs_same = attest.pcr_digest == digest;
        let log_same = log_before == log_after;
        if pcrs_same && log_same {
            let pcrs = pcrs_file(req.selection, &groups).map_err(QuoteError::BadQuote)?;
            return Ok(QuoteOutput {
                ak,
                attest: quoted.attest,
                signature: quoted.signature,
                pcrs,
                log: log_after,
                attempts: attempt,
                commands: tpm.attest_commands().saturating_sub(start),
            });
        }
        let what = if pcrs_same {
            "the event log changed while quoting".to_owned()
        } else {
            format!(
                "the PCRs changed between TPM2_Quote and TPM2_PCR_Read (quoted digest {}, digest of the values read {})",
                crate::util::hex::lower(attest.pcr_digest),
                crate::util::hex::lower(&digest)
            )
        };
        if attempt >= QUOTE_ATTEMPTS {
            return Err(QuoteError::Changed(format!(
                "{what}, {attempt} times in a row; nothing written"
            )));
        }
        log::info!("{what}: quoting again");
        attempt += 1;
    }
}

// ---------------------------------------------------------------------------
// Files

pub fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, crate::util::read::ReadError> {
    crate::util::read::read_capped(path, limit)
}

/// The `TPMT_PUBLIC` in `DIR/ak.pub`, if it is a readable TPM2B file.
pub fn read_cached_public(ak_dir: &Path) -> Option<Vec<u8>> {
    let path = ak_dir.join(AK_PUB);
    match read_limited(&path, tpm2b::MAX_FILE) {
        Ok(file) => match tpm2b::decode(AK_PUB, &file) {
            Ok(body) => Some(body.to_vec()),
            Err(e) => {
                log::warn!("{}: {e}; asking the TPM instead", path.display());
                None
            }
        },
        Err(crate::util::read::ReadError::Open { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(e) => {
            log::warn!("{e}; asking the TPM instead");
            None
        }
    }
}

/// Brings `--ak-dir` up to date: each file rewritten atomically when it
/// differs. Returns the names written.
pub fn update_ak_dir(dir: &Path, ak: &Ak) -> Result<Vec<&'static str>, String> {
    let files: [(&'static str, Vec<u8>); 3] = [
        (AK_PUB, ak.tpm2b_public()?),
        (AK_PEM, ak.pem().into_bytes()),
        (AK_NAME, ak.name.clone()),
    ];
    let mut written = Vec::new();
    for (name, data) in &files {
        let path = dir.join(name);
        if read_limited(&path, 64 * 1024).ok().as_ref() == Some(data) {
            continue;
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        crate::util::fs::write_atomic(&path, data)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(*name);
    }
    Ok(written)
}

/// Checks that `dir` can be replaced by a quote directory: absent, or a
/// directory holding nothing but files a quote writes. Returns the path to
/// replace (a symlink is followed to its target).
pub fn prepare_out_dir(dir: &Path) -> Result<PathBuf, String> {
    crate::util::fs::prepare_replaceable_dir(dir, &QUOTE_FILES, "a quote's", "")
}

/// The files of a quote directory.
pub fn quote_files(q: &QuoteOutput, nonce: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let mut files = vec![
        (QUOTE_MSG, q.attest.clone()),
        (QUOTE_SIG, q.signature.clone()),
        (QUOTE_PCRS, q.pcrs.clone()),
        (AK_PEM, q.ak.pem().into_bytes()),
        (AK_PUB, q.ak.tpm2b_public()?),
        (
            NONCE,
            format!("{}\n", crate::util::hex::lower(nonce)).into_bytes(),
        ),
    ];
    if let Some(log) = &q.log {
        files.push((QUOTE_LOG, log.clone()));
    }
    Ok(files)
}

// ---------------------------------------------------------------------------
// The command

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::{PublicArea, Quoted};

    fn unhex(s: &str) -> Vec<u8> {
        crate::util::hex::parse(s).unwrap()
    }

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

    // Made on swtpm 0.7.1 with tpm2-tools 5.4, by tpm2_quote, not modseal:
    //   tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -a "restricted|sign|
    //     fixedtpm|fixedparent|sensitivedataorigin|userwithauth" -c ak.ctx
    //   tpm2_evictcontrol -C o -c ak.ctx 0x81010101
    //   tpm2_readpublic -c 0x81010101 -o RSA_PUB
    //   tpm2_quote -c 0x81010101 -l sha256:7,12 -q $(printf modseal-fixture-nonce | xxd -p)
    //     -m RSA_MSG -s RSA_SIG
    // and the same with -G ecc256:ecdsa-sha256:null at 0x81010102 (ECC_*).
    const NONCE_HEX: &str = "6d6f647365616c2d666978747572652d6e6f6e6365";
    const RSA_PUB: &str = "01180001000b00050072000000100014000b0800000000000100acb032e40e5ed36d6a6c76c108db1366a86bfc2d1b444c7f048dbf95097cbdc2c7cf12501586f28c90d649e9c474933d72c5696355c06c1ef3197f02c61de42789d12eb4ff0c166e7f99602343ebd123c6e31e9a0318cc7d1d97d5d9825bfc0c32cbdbb3ca0a37588046f8c4a48e8cf9100296e79722166382c52b71337137e5f916f696e615c9d1cc2c955b0648f7620d56398e9a5a3c83bcea9cac3bf8ea5c8c25e98baf82c053276562a638df7d18e42f36ae7c22355f87677e9ff8a2c130e83c35ad38811a2e4ecef9b60489b716dd2726c223add5d6b118c3df25ce5acab042e2370ad035317d10310be2488a229fbc8d41fb0f2b0de8c441e80a4af805";
    const RSA_MSG: &str = "ff54434780180022000b10173339fbc5e58be1a6353e2082274e23c7e41039a355fe495e9129010c793600156d6f647365616c2d666978747572652d6e6f6e6365000000000004b7c8000000010000000001201910230016363600000001000b038010000020f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b";
    const RSA_SIG: &str = "0014000b010039d809275363ad1a6a4cc75bcf1e96f64d5b7e3be67dddaad4b85facfcb8b1f2cf74de9dd24c66a6878d46da6d92191c0ea13e2e040003b0426e21fa45c86167c9463e08525578c9f2f79c426db6157f3529be617f1c96fe06894b6c6a833029d2b4cfb6283cd0b4c5f411a5f6e7cc9c37ccb2795cbf9ccf6011f013ef7a348ec610272369f20176761e130f0fa7e25bb0e6150f8244c4c5e4f2eee5ff0963eabf683f5fc74934a58418246768d2395bd7c6bfbf60f7f3cd549a969c0fd0b21116194f84583e103512414b46145105a1d47c54ab9db91488fc636d536da7a1ff4376c902c18af847407f0dbeb542069d3b13f4628e3f149ffc0806f0ce0ddb4f";
    const ECC_PUB: &str = "00580023000b00050072000000100018000b000300100020dca8a0884ac52b24099cc58f2851cb3c3c2dda69a11aed05fb51e5150f5ce5890020375a642bf0e76c3e96b767957c73ddc1de504d4751bb5cd08123c2083bfb8398";
    const ECC_MSG: &str = "ff54434780180022000b7e9d668641aea80ca5296de16f77f70c715d2d604a023462530249171bff14a500156d6f647365616c2d666978747572652d6e6f6e6365000000000004b7d8000000010000000001201910230016363600000001000b038010000020f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b";
    const ECC_SIG: &str = "0018000b002043a16ea647d398313ee8dd26131d1d8b882f0237ead929129ff8b54cb68007b80020a20084efb4b4d529255f543988e5ece33bd4f03ab9e36a2bff53d79cca732f7b";

    fn fixture_ak(pub_hex: &str) -> Ak {
        let file = unhex(pub_hex);
        Ak::from_public(0x8101_0101, tpm2b::decode("ak.pub", &file).unwrap(), false).unwrap()
    }

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
            let a = parse_quote_attest(&msg).unwrap();
            assert_eq!(a.extra_data, unhex(NONCE_HEX));
            assert_eq!(a.selection, vec![(0x000b, &[0x80u8, 0x10, 0x00][..])]);
            assert_eq!(a.pcr_digest.len(), 32);
            // The TPM's qualified name of an endorsement-hierarchy primary.
            assert_eq!(
                a.qualified_signer,
                endorsement_primary_qualified_name(&ak.name)
            );
            verify_quote_signature(&ak, &msg, &sig).unwrap();
            // Any flipped bit in the message or the signature is refused.
            for i in [0, 40, msg.len() - 1] {
                let mut m = msg.clone();
                m[i] ^= 0x01;
                assert!(
                    verify_quote_signature(&ak, &m, &sig).is_err(),
                    "msg byte {i}"
                );
            }
            for i in [10, sig.len() - 1] {
                let mut s = sig.clone();
                s[i] ^= 0x01;
                assert!(
                    verify_quote_signature(&ak, &msg, &s).is_err(),
                    "sig byte {i}"
                );
            }
            // Another AK's key does not verify it.
            let other = if alg == AkAlg::Rsa { ECC_PUB } else { RSA_PUB };
            assert!(verify_quote_signature(&fixture_ak(other), &msg, &sig).is_err());
        }
    }

    #[test]
    fn attest_parser_rejects_hostile_input() {
        let msg = unhex(RSA_MSG);
        for cut in 0..msg.len() {
            assert!(parse_quote_attest(&msg[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = msg.clone();
        trailing.push(0);
        assert!(parse_quote_attest(&trailing)
            .unwrap_err()
            .contains("trailing"));
        let mut magic = msg.clone();
        magic[0] = 0;
        assert!(parse_quote_attest(&magic).unwrap_err().contains("magic"));
        let mut ty = msg.clone();
        ty[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        assert!(parse_quote_attest(&ty).unwrap_err().contains("type"));
        let mut huge = msg;
        huge[6] = 0xff; // qualifiedSigner size 0xff22
        assert!(parse_quote_attest(&huge).is_err());
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
            let _ = parse_quote_attest(&v);
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
        // A storage key (restricted|decrypt), a sealed object, and an AK with
        // another scheme, policy or extra bytes are refused.
        let mut srk = rsa.clone();
        srk[4..8].copy_from_slice(&0x0003_0472u32.to_be_bytes());
        let e = Ak::from_public(1, &srk, false).unwrap_err();
        assert!(e.contains("restricted|decrypt"), "{e}");
        assert!(e.contains("not an attestation key's"), "{e}");
        let sealed = tpm2b::build_sealed_public(&[0u8; 32], &[]);
        assert!(Ak::from_public(1, &sealed, false)
            .unwrap_err()
            .contains("keyed-hash"));
        let mut scheme = rsa.clone();
        scheme[12] = 0x00;
        scheme[13] = 0x16; // RSAPSS
        assert!(Ak::from_public(1, &scheme, false)
            .unwrap_err()
            .contains("not made from modseal's AK template"));
        let mut trailing = rsa.clone();
        trailing.push(0);
        assert!(Ak::from_public(1, &trailing, false).is_err());
        assert!(Ak::from_public(1, &rsa[..rsa.len() - 1], false).is_err());
        let ecc = unhex(ECC_PUB)[2..].to_vec();
        let mut off_curve = ecc.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        assert!(Ak::from_public(1, &off_curve, false).is_err());
    }

    #[test]
    fn pcrs_file_layout() {
        let sel = vec![(PcrBank::Sha256, vec![0, 7, 12])];
        let vals = vec![vec![0x11u8; 32], vec![0x22; 32], vec![0x33; 32]];
        let f = pcrs_file(&sel, std::slice::from_ref(&vals)).unwrap();
        assert_eq!(f.len(), PCRS_SELECTION_SIZE + 4 + PCRS_DIGEST_LIST_SIZE);
        assert_eq!(f.len(), 668); // tpm2_quote -l sha256:0,7,12 -o writes 668 bytes
        assert_eq!(&f[0..12], &[1, 0, 0, 0, 0x0b, 0, 3, 0x81, 0x10, 0, 0, 0]);
        assert!(f[12..132].iter().all(|&b| b == 0));
        assert_eq!(&f[132..136], &[1, 0, 0, 0]); // one TPML_DIGEST
        assert_eq!(&f[136..140], &[3, 0, 0, 0]); // three digests in it
        assert_eq!(&f[140..142], &[32, 0]);
        assert_eq!(&f[142..174], &[0x11; 32]);
        assert!(f[174..206].iter().all(|&b| b == 0));
        assert_eq!(&f[206..208], &[32, 0]);
        assert_eq!(&f[208..240], &[0x22; 32]);
        // Two banks, two responses.
        let sel2 = vec![(PcrBank::Sha256, vec![12]), (PcrBank::Sha1, vec![12])];
        let f2 = pcrs_file(&sel2, &[vec![vec![1u8; 32]], vec![vec![2u8; 20]]]).unwrap();
        assert_eq!(f2.len(), 132 + 4 + 2 * 532);
        assert_eq!(&f2[0..4], &[2, 0, 0, 0]);
        assert_eq!(&f2[12..19], &[4, 0, 3, 0, 0x10, 0, 0]);
        // Limits of the C structures.
        assert!(pcrs_file(&sel, &[vec![vec![0u8; 32]; 9]]).is_err());
        assert!(pcrs_file(&sel, &[vec![vec![0u8; 65]]]).is_err());
        assert!(pcrs_file(&[], &[]).is_err());
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_nonce("0xABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(parse_nonce(&"00".repeat(64)).unwrap().len(), 64);
        assert!(parse_nonce(&"00".repeat(65))
            .unwrap_err()
            .contains("65 bytes"));
        for bad in ["", "0x", "abc", "zz", "ab:cd"] {
            assert!(parse_nonce(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_pcr_spec("12").unwrap(),
            vec![(PcrBank::Sha256, vec![12])]
        );
        assert_eq!(
            parse_pcr_spec("sha256:0,7,12").unwrap(),
            vec![(PcrBank::Sha256, vec![0, 7, 12])]
        );
        assert_eq!(
            parse_pcr_spec("sha1:12+sha256:0-2").unwrap(),
            vec![(PcrBank::Sha1, vec![12]), (PcrBank::Sha256, vec![0, 1, 2])]
        );
        assert_eq!(
            selection_text(&parse_pcr_spec("sha1:12+sha256:2,0-1").unwrap()),
            "sha1:12+sha256:0,1,2"
        );
        for bad in ["", "24", "md5:1", "sha256:1+sha256:2", "sha256:", "1+1"] {
            assert!(parse_pcr_spec(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_handle("0x81010100").unwrap(), 0x8101_0100);
        assert_eq!(parse_handle("81000001").unwrap(), 0x8100_0001);
        for bad in ["0x81800000", "0x80000000", "0x1", "xyz", ""] {
            assert!(parse_handle(bad).is_err(), "{bad}");
        }
    }

    // -----------------------------------------------------------------------
    // The logic above the TPM, with a software model: an ECC AK it signs
    // with, PCRs it can extend between a quote and the read that follows.

    use p256::ecdsa::signature::hazmat::PrehashSigner;

    struct FakeTpm {
        key: p256::ecdsa::SigningKey,
        /// The object at the handle (a TPMT_PUBLIC), if any.
        at_handle: Option<Vec<u8>>,
        pcrs: Vec<Vec<u8>>,
        /// Extend PCR 12 after this many of the next quotes.
        races: u32,
        /// The qualified name quotes carry (default: the right one).
        signer: Option<Vec<u8>>,
        /// Quote nothing, as a TPM does for a bank that is not allocated.
        unallocated: bool,
        commands: u64,
        created: u32,
    }

    impl FakeTpm {
        fn new() -> FakeTpm {
            FakeTpm {
                key: p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap(),
                at_handle: None,
                pcrs: vec![vec![0u8; 32]; 24],
                races: 0,
                signer: None,
                unallocated: false,
                commands: 0,
                created: 0,
            }
        }

        fn ak_public(&self) -> Vec<u8> {
            let point = self.key.verifying_key().to_sec1_point(false);
            let bytes = point.as_bytes();
            let mut p = ak_template_prefix(AkAlg::Ecc);
            put16(&mut p, 32);
            p.extend_from_slice(&bytes[1..33]);
            put16(&mut p, 32);
            p.extend_from_slice(&bytes[33..65]);
            p
        }
    }

    impl AttestTpm for FakeTpm {
        fn open_persistent(&mut self, _h: u32) -> Result<Option<Vec<u8>>, TpmError> {
            self.commands += 1;
            Ok(self.at_handle.as_deref().map(name_of))
        }
        fn read_persistent_public(&mut self, _h: u32) -> Result<PublicArea, TpmError> {
            self.commands += 1;
            let public = self.at_handle.clone().unwrap();
            let name = name_of(&public);
            Ok(PublicArea {
                qualified_name: Some(endorsement_primary_qualified_name(&name)),
                public,
                name,
            })
        }
        fn create_persistent_primary(
            &mut self,
            template: &[u8],
            _h: u32,
        ) -> Result<PublicArea, TpmError> {
            self.commands += 3; // CreatePrimary, EvictControl, FlushContext
            assert_eq!(template, ak_template(AkAlg::Ecc));
            assert!(self.at_handle.is_none(), "overwrote the handle");
            self.created += 1;
            let public = self.ak_public();
            self.at_handle = Some(public.clone());
            Ok(PublicArea {
                name: name_of(&public),
                public,
                qualified_name: None,
            })
        }
        fn quote(
            &mut self,
            _h: u32,
            nonce: &[u8],
            sel: &[(PcrBank, Vec<u8>)],
        ) -> Result<Quoted, TpmError> {
            self.commands += 1;
            let name = name_of(self.at_handle.as_ref().unwrap());
            let signer = self
                .signer
                .clone()
                .unwrap_or_else(|| endorsement_primary_qualified_name(&name));
            let mut a = Vec::new();
            put32(&mut a, TPM_GENERATED_VALUE);
            put16(&mut a, TPM_ST_ATTEST_QUOTE);
            put16(&mut a, signer.len() as u16);
            a.extend_from_slice(&signer);
            put16(&mut a, nonce.len() as u16);
            a.extend_from_slice(nonce);
            a.extend_from_slice(&[0u8; 17]); // clockInfo
            a.extend_from_slice(&[0u8; 8]); // firmwareVersion
            put32(&mut a, sel.len() as u32);
            let mut values = Vec::new();
            for (bank, pcrs) in sel {
                put16(&mut a, bank.alg_id());
                a.push(3);
                let pcrs: &[u8] = if self.unallocated { &[] } else { pcrs };
                a.extend_from_slice(&bitmap(pcrs));
                values.extend(pcrs.iter().map(|&p| self.pcrs[usize::from(p)].clone()));
            }
            put16(&mut a, 32);
            a.extend_from_slice(&crate::verify::algorithm::sha256(&values.concat()));
            let sig: p256::ecdsa::Signature = self
                .key
                .sign_prehash(&crate::verify::algorithm::sha256(&a))
                .unwrap();
            let rs = sig.to_bytes();
            let mut s = Vec::new();
            put16(&mut s, TPM_ALG_ECDSA);
            put16(&mut s, TPM_ALG_SHA256);
            put16(&mut s, 32);
            s.extend_from_slice(&rs[..32]);
            put16(&mut s, 32);
            s.extend_from_slice(&rs[32..]);
            if self.races > 0 {
                self.races -= 1;
                self.pcrs[12] = PcrBank::Sha256.extend(&self.pcrs[12], &[1u8; 32]);
            }
            Ok(Quoted {
                attest: a,
                signature: s,
            })
        }
        fn pcr_read_groups(
            &mut self,
            sel: &[(PcrBank, Vec<u8>)],
        ) -> Result<Vec<Vec<Vec<u8>>>, TpmError> {
            self.commands += 1;
            Ok(vec![sel
                .iter()
                .flat_map(|(_, p)| p.iter().map(|&i| self.pcrs[usize::from(i)].clone()))
                .collect()])
        }
        fn attest_commands(&self) -> u64 {
            self.commands
        }
    }

    fn request<'a>(sel: &'a [(PcrBank, Vec<u8>)], cached: Option<Vec<u8>>) -> QuoteRequest<'a> {
        QuoteRequest {
            handle: DEFAULT_AK_HANDLE,
            alg: Some(AkAlg::Ecc),
            nonce: b"fresh nonce",
            selection: sel,
            cached_public: cached,
        }
    }

    fn no_log() -> impl FnMut() -> Result<Option<Vec<u8>>, QuoteError> {
        || Ok(None)
    }

    #[test]
    fn creates_once_then_reuses_with_fewer_commands() {
        let sel = vec![(PcrBank::Sha256, vec![0, 7, 12])];
        let mut tpm = FakeTpm::new();
        let first = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap();
        assert!(first.ak.created);
        assert_eq!(first.commands, 6);
        assert_eq!(first.attempts, 1);
        let again = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap();
        assert!(!again.ak.created);
        assert_eq!(again.ak.public, first.ak.public);
        assert_eq!(again.commands, 4); // ReadPublic twice (open, public), Quote, PCR_Read
        let cached = make_quote(
            &mut tpm,
            &request(&sel, Some(first.ak.public.clone())),
            &mut no_log(),
        )
        .unwrap();
        assert_eq!(cached.commands, 3); // the cached ak.pub has the TPM's name
                                        // A stale cache (another key) is not trusted: the TPM is asked.
        let mut stale = first.ak.public.clone();
        let n = stale.len();
        stale[n - 1] ^= 1;
        let r = make_quote(&mut tpm, &request(&sel, Some(stale)), &mut no_log()).unwrap();
        assert_eq!(r.commands, 4);
        assert_eq!(r.ak.public, first.ak.public);
        assert_eq!(tpm.created, 1);
        // The files: quote.pcrs holds the values the digest was checked on.
        assert_eq!(r.pcrs.len(), 668);
    }

    #[test]
    fn a_pcr_change_during_the_quote_is_retried_once_then_refused() {
        let sel = vec![(PcrBank::Sha256, vec![12])];
        let mut tpm = FakeTpm::new();
        tpm.races = 1;
        let q = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap();
        assert_eq!(q.attempts, 2);
        let digest = parse_quote_attest(&q.attest).unwrap().pcr_digest.to_vec();
        assert_eq!(
            digest,
            crate::verify::algorithm::sha256(&tpm.pcrs[12]).to_vec()
        );
        tpm.races = 2;
        match make_quote(&mut tpm, &request(&sel, None), &mut no_log()) {
            Err(QuoteError::Changed(m)) => {
                assert!(m.contains("PCRs changed"), "{m}");
                assert!(m.contains("2 times"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_log_change_during_the_quote_is_retried_once_then_refused() {
        let sel = vec![(PcrBank::Sha256, vec![12])];
        let mut tpm = FakeTpm::new();
        let mut reads = 0u32;
        // The log grows between the first read and the second, then settles.
        let mut growing_once = || {
            reads += 1;
            Ok(Some(vec![0u8; if reads >= 2 { 2 } else { 1 }]))
        };
        let q = make_quote(&mut tpm, &request(&sel, None), &mut growing_once).unwrap();
        assert_eq!(q.attempts, 2);
        assert_eq!(q.log, Some(vec![0u8; 2]));
        let mut n = 0usize;
        let mut always = || {
            n += 1;
            Ok(Some(vec![0u8; n]))
        };
        match make_quote(&mut tpm, &request(&sel, None), &mut always) {
            Err(QuoteError::Changed(m)) => assert!(m.contains("event log changed"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut broken = || Err(QuoteError::Io("reading the event log x: gone".into()));
        assert!(matches!(
            make_quote(&mut tpm, &request(&sel, None), &mut broken),
            Err(QuoteError::Io(_))
        ));
    }

    #[test]
    fn another_object_at_the_handle_is_refused_not_replaced() {
        let sel = vec![(PcrBank::Sha256, vec![12])];
        let mut tpm = FakeTpm::new();
        let srk = crate::tpm::esapi::srk_template().unwrap();
        let srk = tss_esapi::traits::Marshall::marshall(&srk).unwrap();
        tpm.at_handle = Some(srk.clone());
        let e = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap_err();
        assert!(matches!(e, QuoteError::AkRefused(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("persistent handle 0x81010100 holds a different object"),
            "{m}"
        );
        assert!(m.contains("restricted|decrypt"), "{m}");
        assert_eq!(tpm.at_handle, Some(srk));
        assert_eq!(tpm.created, 0);
        assert_eq!(tpm.commands, 2, "open and ReadPublic only");

        // An AK of the other type, when --ak-alg names one.
        let mut tpm = FakeTpm::new();
        tpm.at_handle = Some(tpm.ak_public());
        let mut req = request(&sel, None);
        req.alg = Some(AkAlg::Rsa);
        let m = make_quote(&mut tpm, &req, &mut no_log())
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("holds an ecc-p256 attestation key, not the rsa2048 one"),
            "{m}"
        );
        req.alg = None; // any AK will do
        assert!(make_quote(&mut tpm, &req, &mut no_log()).is_ok());

        // A template-shaped key that the quote says is not an endorsement primary.
        let mut tpm = FakeTpm::new();
        tpm.at_handle = Some(tpm.ak_public());
        tpm.signer = Some(name_of(b"some other parent"));
        let cached = tpm.ak_public();
        let e = make_quote(&mut tpm, &request(&sel, Some(cached)), &mut no_log()).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a primary key of the endorsement hierarchy"),
            "{e}"
        );
    }

    #[test]
    fn an_unallocated_bank_is_named_before_reading_pcrs() {
        let sel = vec![(PcrBank::Sha1, vec![12])];
        let mut tpm = FakeTpm::new();
        tpm.unallocated = true;
        let e = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the TPM's quote: it covers sha1:none instead of sha1:12 (is every bank allocated?)"
        );
        assert_eq!(tpm.commands, 6 - 1, "no PCR_Read after the quote");
    }

    #[test]
    fn a_quote_that_does_not_check_out_is_refused() {
        let sel = vec![(PcrBank::Sha256, vec![12])];
        let mut tpm = FakeTpm::new();
        let mut req = request(&sel, None);
        req.nonce = &[];
        assert!(make_quote(&mut tpm, &req, &mut no_log())
            .unwrap_err()
            .is_usage());
        // Signed by a key that is not the one at the handle.
        let mut tpm = FakeTpm::new();
        tpm.at_handle = Some(tpm.ak_public());
        tpm.key = p256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap();
        let e = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap_err();
        assert!(matches!(e, QuoteError::BadQuote(_)), "{e}");
        assert!(e.to_string().contains("signature does not verify"), "{e}");
    }

    #[test]
    fn out_dir_is_replaced_whole_and_foreign_files_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("q");
        let target = prepare_out_dir(&dir).unwrap();
        crate::util::fs::write_dir_replacing(&target, &[(QUOTE_MSG, b"one"), (NONCE, b"aa\n")])
            .unwrap();
        let target = prepare_out_dir(&dir).unwrap();
        crate::util::fs::write_dir_replacing(&target, &[(QUOTE_MSG, b"two")]).unwrap();
        assert_eq!(std::fs::read(dir.join(QUOTE_MSG)).unwrap(), b"two");
        assert!(!dir.join(NONCE).exists(), "the old set is gone as a whole");
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["q".to_owned()]);
        std::fs::write(dir.join("keep-me"), b"x").unwrap();
        assert!(prepare_out_dir(&dir).unwrap_err().contains("keep-me"));
        assert!(prepare_out_dir(&dir.join("keep-me")).is_err());
    }
}
