//! The three files of a quote, as tpm2-tools writes them, parsed strictly.
//!
//! - `quote.msg` (`tpm2_quote -m`): the `TPMS_ATTEST` the TPM returned, in
//!   TPM marshalling (big-endian, TPM2B = 2-byte size + bytes).
//! - `quote.sig` (`tpm2_quote -s`, default "tss" format): a marshalled
//!   `TPMT_SIGNATURE`.
//! - `quote.pcrs` (`tpm2_quote -o`, default "serialized" format, read by
//!   `tpm2_checkquote -f`): *not* TPM marshalling but raw C structures of
//!   tpm2-tss in little-endian byte order (tpm2-tools 5.4 `lib/pcr.c`
//!   `pcr_fwrite_serialized`, `tools/misc/tpm2_checkquote.c`
//!   `parse_selection_data_from_file`):
//!
//!   ```text
//!   TPML_PCR_SELECTION   132 bytes  u32 count (≤ 16), then 16 × TPMS_PCR_SELECTION of 8 bytes:
//!                                   u16 hash, u8 sizeofSelect (≤ 4), u8 pcrSelect[4], u8 padding
//!   u32 n                  4 bytes  number of TPML_DIGEST that follow (≤ 32)
//!   n × TPML_DIGEST      532 bytes  u32 count (1..=8), then 8 × TPM2B_DIGEST of 66 bytes:
//!                                   u16 size, u8 buffer[64]
//!   ```
//!
//!   The PCR values are the digests of all lists in order, one per selected
//!   PCR, bank by bank in selection order, PCRs ascending within a bank (a
//!   list holds at most 8, `TPM2_PCR_Read`'s limit). Padding, unused
//!   selection slots and the unused tail of each buffer are ignored, as
//!   tpm2-tools ignores them.
//!
//! Every parser bounds what it reads and names what is wrong; none panics.

use crate::tpm::PcrBank;

/// A quote file larger than this is refused (a real one is under 1 KiB).
pub const MAX_QUOTE_FILE: usize = 1024 * 1024;

/// `TPM_GENERATED_VALUE`: the first four bytes of anything a TPM signs itself.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

pub const TPM_ALG_SHA1: u16 = 0x0004;
pub const TPM_ALG_SHA256: u16 = 0x000B;
pub const TPM_ALG_SHA384: u16 = 0x000C;
pub const TPM_ALG_SHA512: u16 = 0x000D;
pub const TPM_ALG_HMAC: u16 = 0x0005;
pub const TPM_ALG_NULL: u16 = 0x0010;
pub const TPM_ALG_RSASSA: u16 = 0x0014;
pub const TPM_ALG_RSAPSS: u16 = 0x0016;
pub const TPM_ALG_ECDSA: u16 = 0x0018;
pub const TPM_ALG_ECDAA: u16 = 0x001A;
pub const TPM_ALG_SM2: u16 = 0x001B;
pub const TPM_ALG_ECSCHNORR: u16 = 0x001C;

/// `sizeof(TPMU_NAME)`: a `TPMT_HA` with a SHA-512 digest.
const MAX_NAME: usize = 2 + 64;
/// `sizeof(TPMT_HA)`, the bound of a `TPM2B_DATA`.
const MAX_DATA: usize = 2 + 64;
/// `sizeof(TPMU_HA)`, the bound of a `TPM2B_DIGEST`.
const MAX_DIGEST: usize = 64;
/// `TPM2_MAX_RSA_KEY_BYTES`.
const MAX_RSA_BYTES: usize = 512;
/// `TPM2_MAX_ECC_KEY_BYTES`.
const MAX_ECC_BYTES: usize = 128;
/// `TPM2_NUM_PCR_BANKS` in tpm2-tss: the length of `pcrSelections`.
pub const NUM_PCR_BANKS: usize = 16;
/// `TPM2_PCR_SELECT_MAX` in tpm2-tss: the length of `pcrSelect`.
pub const PCR_SELECT_MAX: usize = 4;
/// `TPM2_MAX_PCRS` in tpm2-tss: the length of `tpm2_pcrs.pcr_values`.
pub const MAX_DIGEST_LISTS: usize = 32;
/// Digests in one `TPML_DIGEST`.
pub const DIGESTS_PER_LIST: usize = 8;

/// `sizeof(TPMS_PCR_SELECTION)` with its padding byte.
const SEL_SIZE: usize = 2 + 1 + PCR_SELECT_MAX + 1;
/// `sizeof(TPML_PCR_SELECTION)`.
pub const SERIALIZED_SELECTION_SIZE: usize = 4 + NUM_PCR_BANKS * SEL_SIZE;
/// `sizeof(TPM2B_DIGEST)`.
const TPM2B_DIGEST_SIZE: usize = 2 + MAX_DIGEST;
/// `sizeof(TPML_DIGEST)`.
pub const SERIALIZED_DIGEST_LIST_SIZE: usize = 4 + DIGESTS_PER_LIST * TPM2B_DIGEST_SIZE;

/// The name of a TPM hash algorithm, or its number.
pub fn hash_alg_name(alg: u16) -> String {
    match bank_of(alg) {
        Some(b) => b.name().to_owned(),
        None => format!("0x{alg:04x}"),
    }
}

/// The PCR bank (hash) a `TPM_ALG_ID` names, if modseal knows it.
pub fn bank_of(alg: u16) -> Option<PcrBank> {
    PcrBank::ALL.into_iter().find(|b| b.alg_id() == alg)
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

/// Big-endian reader over TPM-marshalled bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Self {
        Cursor { data, pos: 0 }
    }

    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], String> {
        let left = self.data.len().saturating_sub(self.pos);
        if n > left {
            return Err(format!(
                "truncated in {field}: needs {n} byte(s) at offset {}, {left} left",
                self.pos
            ));
        }
        let out = self.data.get(self.pos..self.pos + n).unwrap_or_default();
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self, field: &str) -> Result<u8, String> {
        Ok(self.take(1, field)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self, field: &str) -> Result<u16, String> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &str) -> Result<u32, String> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &str) -> Result<u64, String> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A TPM2B: 2-byte size, then that many bytes, at most `max`.
    fn tpm2b(&mut self, max: usize, field: &str) -> Result<&'a [u8], String> {
        let size = usize::from(self.u16(field)?);
        if size > max {
            return Err(format!(
                "{field} claims {size} bytes, more than its {max}-byte maximum"
            ));
        }
        self.take(size, field)
    }

    fn finish(&self, what: &str) -> Result<(), String> {
        match self.data.len().saturating_sub(self.pos) {
            0 => Ok(()),
            n => Err(format!("{n} trailing byte(s) after the {what}")),
        }
    }
}

/// One bank of a PCR selection: its hash and the PCRs selected, ascending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BankSelection {
    /// `TPM_ALG_ID` of the bank.
    pub hash: u16,
    pub pcrs: Vec<u8>,
}

impl BankSelection {
    /// `sha256:0,12`, as tpm2-tools writes selections.
    pub fn describe(&self) -> String {
        let pcrs: Vec<String> = self.pcrs.iter().map(u8::to_string).collect();
        format!("{}:{}", hash_alg_name(self.hash), pcrs.join(","))
    }
}

/// `sha256:0,12+sha1:12`.
pub fn describe_selection(sel: &[BankSelection]) -> String {
    if sel.is_empty() {
        return "(nothing)".into();
    }
    sel.iter()
        .map(BankSelection::describe)
        .collect::<Vec<_>>()
        .join("+")
}

fn pcrs_of_bitmap(bitmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, byte) in bitmap.iter().take(PCR_SELECT_MAX).enumerate() {
        for bit in 0..8u8 {
            if byte & (1 << bit) != 0 {
                // i < PCR_SELECT_MAX, so the index fits a u8.
                out.push((i as u8) * 8 + bit);
            }
        }
    }
    out
}

/// A `TPMS_ATTEST`, as far as modseal reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    pub magic: u32,
    /// `TPMI_ST_ATTEST`.
    pub kind: u16,
    pub qualified_signer: Vec<u8>,
    /// The nonce (qualifying data) the verifier chose.
    pub extra_data: Vec<u8>,
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
    pub firmware_version: u64,
    pub pcr_select: Vec<BankSelection>,
    pub pcr_digest: Vec<u8>,
}

/// Parses a `TPMS_ATTEST` that must be a quote (`TPM_GENERATED_VALUE`,
/// `TPM_ST_ATTEST_QUOTE`), with every size bounded and no byte left over.
pub fn parse_attest(data: &[u8]) -> Result<Attest, String> {
    if data.len() > MAX_QUOTE_FILE {
        return Err(format!(
            "{} bytes, more than the {MAX_QUOTE_FILE}-byte limit",
            data.len()
        ));
    }
    let mut c = Cursor::new(data);
    let magic = c.u32("magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(format!(
            "magic is 0x{magic:08x}, not TPM_GENERATED_VALUE (0x{TPM_GENERATED_VALUE:08x}): not made by a TPM"
        ));
    }
    let kind = c.u16("type")?;
    if kind != TPM_ST_ATTEST_QUOTE {
        return Err(format!(
            "type is 0x{kind:04x}, not TPM_ST_ATTEST_QUOTE (0x{TPM_ST_ATTEST_QUOTE:04x}): not a quote"
        ));
    }
    let qualified_signer = c.tpm2b(MAX_NAME, "qualifiedSigner")?.to_vec();
    let extra_data = c.tpm2b(MAX_DATA, "extraData")?.to_vec();
    let clock = c.u64("clockInfo.clock")?;
    let reset_count = c.u32("clockInfo.resetCount")?;
    let restart_count = c.u32("clockInfo.restartCount")?;
    let safe = match c.u8("clockInfo.safe")? {
        0 => false,
        1 => true,
        v => return Err(format!("clockInfo.safe is {v}, not 0 or 1")),
    };
    let firmware_version = c.u64("firmwareVersion")?;
    let count = c.u32("pcrSelect.count")?;
    if count as usize > NUM_PCR_BANKS {
        return Err(format!(
            "pcrSelect.count is {count}, more than {NUM_PCR_BANKS} banks"
        ));
    }
    let mut pcr_select = Vec::new();
    for i in 0..count {
        let hash = c.u16(&format!("pcrSelections[{i}].hash"))?;
        let size = usize::from(c.u8(&format!("pcrSelections[{i}].sizeofSelect"))?);
        if size > PCR_SELECT_MAX {
            return Err(format!(
                "pcrSelections[{i}].sizeofSelect is {size}, more than {PCR_SELECT_MAX}"
            ));
        }
        let bitmap = c.take(size, &format!("pcrSelections[{i}].pcrSelect"))?;
        pcr_select.push(BankSelection {
            hash,
            pcrs: pcrs_of_bitmap(bitmap),
        });
    }
    let pcr_digest = c.tpm2b(MAX_DIGEST, "pcrDigest")?.to_vec();
    c.finish("TPMS_ATTEST")?;
    Ok(Attest {
        magic,
        kind,
        qualified_signer,
        extra_data,
        clock,
        reset_count,
        restart_count,
        safe,
        firmware_version,
        pcr_select,
        pcr_digest,
    })
}

/// A `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// RSASSA-PKCS1-v1_5 or RSA-PSS: the signature as a big-endian integer.
    Rsa {
        scheme: u16,
        hash: u16,
        sig: Vec<u8>,
    },
    /// ECDSA and the other ECC schemes: `r` and `s`, big-endian.
    Ecc {
        scheme: u16,
        hash: u16,
        r: Vec<u8>,
        s: Vec<u8>,
    },
    /// An HMAC: no public-key signature at all.
    Hmac { hash: u16 },
    /// `TPM_ALG_NULL`: no signature.
    Null,
}

impl Signature {
    pub fn scheme(&self) -> u16 {
        match self {
            Signature::Rsa { scheme, .. } | Signature::Ecc { scheme, .. } => *scheme,
            Signature::Hmac { .. } => TPM_ALG_HMAC,
            Signature::Null => TPM_ALG_NULL,
        }
    }

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
pub fn parse_signature(data: &[u8]) -> Result<Signature, String> {
    if data.len() > MAX_QUOTE_FILE {
        return Err(format!(
            "{} bytes, more than the {MAX_QUOTE_FILE}-byte limit",
            data.len()
        ));
    }
    let mut c = Cursor::new(data);
    let scheme = c.u16("sigAlg")?;
    let sig = match scheme {
        TPM_ALG_RSASSA | TPM_ALG_RSAPSS => {
            let hash = c.u16("hash")?;
            let sig = c.tpm2b(MAX_RSA_BYTES, "signature")?.to_vec();
            Signature::Rsa { scheme, hash, sig }
        }
        TPM_ALG_ECDSA | TPM_ALG_ECDAA | TPM_ALG_SM2 | TPM_ALG_ECSCHNORR => {
            let hash = c.u16("hash")?;
            let r = c.tpm2b(MAX_ECC_BYTES, "signatureR")?.to_vec();
            let s = c.tpm2b(MAX_ECC_BYTES, "signatureS")?.to_vec();
            Signature::Ecc { scheme, hash, r, s }
        }
        TPM_ALG_HMAC => {
            let hash = c.u16("hash")?;
            let len = bank_of(hash)
                .map(PcrBank::digest_len)
                .ok_or_else(|| format!("HMAC with unknown hash 0x{hash:04x}"))?;
            c.take(len, "digest")?;
            Signature::Hmac { hash }
        }
        TPM_ALG_NULL => Signature::Null,
        other => {
            return Err(format!(
                "sigAlg 0x{other:04x} is not a TPM signature scheme"
            ))
        }
    };
    c.finish("TPMT_SIGNATURE")?;
    Ok(sig)
}

/// The PCR values file: the selection it claims and one value per selected PCR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrValues {
    pub selection: Vec<BankSelection>,
    /// In selection order: bank by bank, PCRs ascending.
    pub values: Vec<Vec<u8>>,
}

impl PcrValues {
    /// `(bank, pcr, value)` for every value.
    pub fn entries(&self) -> Vec<(u16, u8, &[u8])> {
        let mut out = Vec::new();
        let mut values = self.values.iter();
        for sel in &self.selection {
            for &p in &sel.pcrs {
                if let Some(v) = values.next() {
                    out.push((sel.hash, p, v.as_slice()));
                }
            }
        }
        out
    }

    /// The value of `pcr` in `bank`, if quoted.
    pub fn get(&self, bank: PcrBank, pcr: u8) -> Option<&[u8]> {
        self.entries()
            .into_iter()
            .find(|(h, p, _)| *h == bank.alg_id() && *p == pcr)
            .map(|(_, _, v)| v)
    }

    /// The concatenation the TPM hashes into `pcrDigest`.
    pub fn concatenated(&self) -> Vec<u8> {
        self.values.concat()
    }

    /// The file as `tpm2_quote -o` writes it (little-endian C structures,
    /// padding zero).
    pub fn to_serialized(&self) -> Result<Vec<u8>, String> {
        if self.selection.len() > NUM_PCR_BANKS {
            return Err(format!("more than {NUM_PCR_BANKS} banks"));
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(self.selection.len() as u32).to_le_bytes());
        for i in 0..NUM_PCR_BANKS {
            let mut entry = [0u8; SEL_SIZE];
            if let Some(sel) = self.selection.get(i) {
                entry[..2].copy_from_slice(&sel.hash.to_le_bytes());
                entry[2] = 3;
                for &p in &sel.pcrs {
                    let byte = usize::from(p / 8);
                    if byte >= PCR_SELECT_MAX {
                        return Err(format!("PCR {p} out of range"));
                    }
                    entry[2] = entry[2].max(byte as u8 + 1);
                    entry[3 + byte] |= 1 << (p % 8);
                }
            }
            out.extend_from_slice(&entry);
        }
        let lists: Vec<&[Vec<u8>]> = self.values.chunks(DIGESTS_PER_LIST).collect();
        if lists.len() > MAX_DIGEST_LISTS {
            return Err(format!("more than {MAX_DIGEST_LISTS} digest lists"));
        }
        out.extend_from_slice(&(lists.len() as u32).to_le_bytes());
        for list in lists {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for i in 0..DIGESTS_PER_LIST {
                let mut d = [0u8; TPM2B_DIGEST_SIZE];
                if let Some(v) = list.get(i) {
                    if v.len() > MAX_DIGEST {
                        return Err("digest longer than 64 bytes".into());
                    }
                    d[..2].copy_from_slice(&(v.len() as u16).to_le_bytes());
                    d[2..2 + v.len()].copy_from_slice(v);
                }
                out.extend_from_slice(&d);
            }
        }
        Ok(out)
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// Parses the PCR values file `tpm2_quote -o` writes (serialized format).
/// The length must be exact, every bank known, every digest the bank's size,
/// and the number of values the number of PCRs selected.
pub fn parse_pcrs(data: &[u8]) -> Result<PcrValues, String> {
    let header = SERIALIZED_SELECTION_SIZE + 4;
    if data.len() < header {
        return Err(format!(
            "{} bytes, shorter than the {header}-byte header (TPML_PCR_SELECTION + list count) of tpm2_quote's serialized PCR file",
            data.len()
        ));
    }
    if data.len() > MAX_QUOTE_FILE {
        return Err(format!(
            "{} bytes, more than the {MAX_QUOTE_FILE}-byte limit",
            data.len()
        ));
    }
    let count = le_u32(data, 0) as usize;
    if count > NUM_PCR_BANKS {
        return Err(format!(
            "selection count is {count}, more than {NUM_PCR_BANKS} banks"
        ));
    }
    let mut selection = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4 + i * SEL_SIZE;
        let hash = le_u16(data, at);
        if bank_of(hash).is_none() {
            return Err(format!(
                "selection {i}: hash algorithm 0x{hash:04x} is not a PCR bank modseal knows (sha1, sha256, sha384, sha512)"
            ));
        }
        if selection.iter().any(|s: &BankSelection| s.hash == hash) {
            return Err(format!(
                "selection {i}: bank {} listed twice",
                hash_alg_name(hash)
            ));
        }
        let size = usize::from(data.get(at + 2).copied().unwrap_or_default());
        if size > PCR_SELECT_MAX {
            return Err(format!(
                "selection {i}: sizeofSelect is {size}, more than {PCR_SELECT_MAX}"
            ));
        }
        let bitmap = data.get(at + 3..at + 3 + size).unwrap_or_default();
        selection.push(BankSelection {
            hash,
            pcrs: pcrs_of_bitmap(bitmap),
        });
    }
    let lists = le_u32(data, SERIALIZED_SELECTION_SIZE) as usize;
    if lists > MAX_DIGEST_LISTS {
        return Err(format!(
            "{lists} digest lists, more than {MAX_DIGEST_LISTS}"
        ));
    }
    let want = header + lists * SERIALIZED_DIGEST_LIST_SIZE;
    if data.len() != want {
        return Err(format!(
            "{} bytes, but a file with {lists} digest list(s) has exactly {want}",
            data.len()
        ));
    }
    let mut flat = Vec::new();
    for l in 0..lists {
        let at = header + l * SERIALIZED_DIGEST_LIST_SIZE;
        let n = le_u32(data, at) as usize;
        if n == 0 || n > DIGESTS_PER_LIST {
            return Err(format!(
                "digest list {l} holds {n} digests (1 to {DIGESTS_PER_LIST} allowed)"
            ));
        }
        for k in 0..n {
            let d = at + 4 + k * TPM2B_DIGEST_SIZE;
            let size = usize::from(le_u16(data, d));
            if size > MAX_DIGEST {
                return Err(format!(
                    "digest list {l} entry {k}: size {size}, more than {MAX_DIGEST}"
                ));
            }
            flat.push(data.get(d + 2..d + 2 + size).unwrap_or_default().to_vec());
        }
    }
    let selected: usize = selection.iter().map(|s| s.pcrs.len()).sum();
    if flat.len() != selected {
        return Err(format!(
            "{} PCR value(s) for {selected} selected PCR(s) ({})",
            flat.len(),
            describe_selection(&selection)
        ));
    }
    let mut values = flat.into_iter();
    let mut ordered = Vec::with_capacity(selected);
    for sel in &selection {
        let len = bank_of(sel.hash).map(PcrBank::digest_len).unwrap_or(0);
        for &p in &sel.pcrs {
            let v = values.next().unwrap_or_default();
            if v.len() != len {
                return Err(format!(
                    "PCR {p} {}: value is {} bytes, the bank's digest is {len}",
                    hash_alg_name(sel.hash),
                    v.len()
                ));
            }
            ordered.push(v);
        }
    }
    Ok(PcrValues {
        selection,
        values: ordered,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A marshalled quote `TPMS_ATTEST`, as a TPM makes it.
    pub(crate) fn attest_bytes(nonce: &[u8], sel: &[(u16, &[u8])], digest: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&TPM_GENERATED_VALUE.to_be_bytes());
        m.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
        m.extend_from_slice(&34u16.to_be_bytes());
        m.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        m.extend_from_slice(&[0xaa; 32]);
        m.extend_from_slice(&(nonce.len() as u16).to_be_bytes());
        m.extend_from_slice(nonce);
        m.extend_from_slice(&0x0de8u64.to_be_bytes());
        m.extend_from_slice(&1u32.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.push(1);
        m.extend_from_slice(&0x2019_1023_0016_3636u64.to_be_bytes());
        m.extend_from_slice(&(sel.len() as u32).to_be_bytes());
        for (hash, pcrs) in sel {
            m.extend_from_slice(&hash.to_be_bytes());
            m.push(3);
            let mut bitmap = [0u8; 3];
            for &p in *pcrs {
                bitmap[usize::from(p / 8)] |= 1 << (p % 8);
            }
            m.extend_from_slice(&bitmap);
        }
        m.extend_from_slice(&(digest.len() as u16).to_be_bytes());
        m.extend_from_slice(digest);
        m
    }

    #[test]
    fn parses_a_real_swtpm_quote() {
        // tpm2_quote -l sha256:0,12 -q 0011223344556677 against swtpm.
        let msg = crate::util::hex::parse(
            "ff54434780180022000b749ed928e7ae1e7fe5b56efcbe6c5bb611e378c65791d954a26da58a32ec34250008\
             00112233445566770000000000000de8000000010000000001201910230016363600000001000b03011000\
             0020bb4b612dea02c44c766468fae97205697090cb6d50af6e73c00a5542f59acb7d",
        )
        .unwrap();
        let a = parse_attest(&msg).unwrap();
        assert_eq!(
            a.extra_data,
            crate::util::hex::parse("0011223344556677").unwrap()
        );
        assert_eq!(a.qualified_signer.len(), 34);
        assert_eq!((a.clock, a.reset_count, a.restart_count), (0xde8, 1, 0));
        assert!(a.safe);
        assert_eq!(a.firmware_version, 0x2019_1023_0016_3636);
        assert_eq!(
            a.pcr_select,
            vec![BankSelection {
                hash: TPM_ALG_SHA256,
                pcrs: vec![0, 12]
            }]
        );
        assert_eq!(a.pcr_digest.len(), 32);
        // The digest is sha256(PCR0 || PCR12) with the values swtpm had.
        let pcr12 = crate::util::hex::parse(
            "90F4B39548DF55AD6187A1D20D731ECEE78C545B94AFD16F42EF7592D99CD365",
        )
        .unwrap();
        assert_eq!(
            PcrBank::Sha256.hash_parts(&[&[0u8; 32], &pcr12]),
            a.pcr_digest
        );
    }

    #[test]
    fn attest_is_strict() {
        let good = attest_bytes(b"nonce", &[(TPM_ALG_SHA256, &[12])], &[7; 32]);
        assert!(parse_attest(&good).is_ok());
        // Every truncation is a named error, never a panic.
        for n in 0..good.len() {
            let e = parse_attest(&good[..n]).unwrap_err();
            assert!(e.contains("truncated") || e.contains("magic"), "{n}: {e}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_attest(&trailing).unwrap_err().contains("trailing"));
        let mut magic = good.clone();
        magic[0] = 0;
        assert!(parse_attest(&magic).unwrap_err().contains("TPM_GENERATED"));
        let mut kind = good.clone();
        kind[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        assert!(parse_attest(&kind).unwrap_err().contains("not a quote"));
        // A TPM2B claiming more than its maximum.
        let mut big = good.clone();
        big[6..8].copy_from_slice(&0x0100u16.to_be_bytes());
        assert!(parse_attest(&big).unwrap_err().contains("maximum"));
        let mut safe = good.clone();
        let at = 4 + 2 + 2 + 34 + 2 + 5 + 8 + 4 + 4;
        safe[at] = 2;
        assert!(parse_attest(&safe).unwrap_err().contains("safe"));
        // More banks than a TPM has.
        let mut banks = good.clone();
        let at = at + 1 + 8;
        banks[at..at + 4].copy_from_slice(&17u32.to_be_bytes());
        assert!(parse_attest(&banks).unwrap_err().contains("17"));
    }

    fn rsassa(sig: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&TPM_ALG_RSASSA.to_be_bytes());
        v.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        v.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        v.extend_from_slice(sig);
        v
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
        let mut trailing = rsa.clone();
        trailing.push(1);
        assert!(parse_signature(&trailing).unwrap_err().contains("trailing"));
        assert!(parse_signature(&rsassa(&[1; 513]))
            .unwrap_err()
            .contains("maximum"));
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
        assert!(parse_signature(&[0x12, 0x34])
            .unwrap_err()
            .contains("not a TPM signature scheme"));
        let hmac = [&TPM_ALG_HMAC.to_be_bytes()[..], &[0, 0x0b], &[9; 32]].concat();
        assert_eq!(
            parse_signature(&hmac).unwrap(),
            Signature::Hmac {
                hash: TPM_ALG_SHA256
            }
        );
        assert!(parse_signature(&[]).is_err());
    }

    /// The 668-byte file tpm2_quote -l sha256:0,12 -o wrote (tpm2-tools 5.4).
    pub(crate) fn real_pcrs_file(pcr12: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 668];
        f[0] = 1; // count
        f[4] = 0x0b; // sha256, little-endian
        f[6] = 3; // sizeofSelect
        f[7] = 0x01; // PCR 0
        f[8] = 0x10; // PCR 12
        f[132] = 1; // one TPML_DIGEST
        f[136] = 2; // two digests
        f[140] = 0x20; // size 32 (PCR 0: zero)
        f[206] = 0x20; // size 32
        f[208..240].copy_from_slice(pcr12);
        f
    }

    #[test]
    fn pcrs_file_layout() {
        assert_eq!(SERIALIZED_SELECTION_SIZE, 132);
        assert_eq!(SERIALIZED_DIGEST_LIST_SIZE, 532);
        let f = real_pcrs_file(&[0x90; 32]);
        let p = parse_pcrs(&f).unwrap();
        assert_eq!(p.selection.len(), 1);
        assert_eq!(p.selection[0].pcrs, vec![0, 12]);
        assert_eq!(p.values, vec![vec![0; 32], vec![0x90; 32]]);
        assert_eq!(p.get(PcrBank::Sha256, 12), Some(&[0x90; 32][..]));
        assert_eq!(p.get(PcrBank::Sha1, 12), None);
        assert_eq!(p.to_serialized().unwrap(), f);
        // Padding and unused slots are ignored, as tpm2-tools ignores them.
        let mut junk = f.clone();
        junk[11] = 0xee; // padding byte of selection 0
        junk[100] = 0xee; // unused selection slot
        junk[300] = 0xee; // unused digest slot
        assert_eq!(parse_pcrs(&junk).unwrap(), p);
    }

    #[test]
    fn pcrs_file_is_strict() {
        let f = real_pcrs_file(&[1; 32]);
        for n in [0, 1, 135, 136, 667] {
            assert!(parse_pcrs(&f[..n]).is_err(), "{n}");
        }
        let mut longer = f.clone();
        longer.push(0);
        assert!(parse_pcrs(&longer).unwrap_err().contains("exactly 668"));
        let mut bank = f.clone();
        bank[4] = 0x12; // sm3_256
        assert!(parse_pcrs(&bank).unwrap_err().contains("0x0012"));
        let mut size = f.clone();
        size[206] = 20;
        assert!(parse_pcrs(&size).unwrap_err().contains("20 bytes"));
        let mut huge = f.clone();
        huge[206] = 65;
        assert!(parse_pcrs(&huge).unwrap_err().contains("65"));
        let mut count = f.clone();
        count[136] = 9;
        assert!(parse_pcrs(&count).unwrap_err().contains("9 digests"));
        let mut fewer = f.clone();
        fewer[136] = 1;
        assert!(parse_pcrs(&fewer)
            .unwrap_err()
            .contains("1 PCR value(s) for 2"));
        let mut banks = f.clone();
        banks[0] = 17;
        assert!(parse_pcrs(&banks).unwrap_err().contains("17"));
        let mut lists = f.clone();
        lists[132] = 33;
        assert!(parse_pcrs(&lists).unwrap_err().contains("33"));
        let mut twice = f.clone();
        twice[0] = 2;
        twice[12] = 0x0b;
        assert!(parse_pcrs(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn pcrs_values_split_over_lists() {
        // 12 sha256 PCRs and one sha1 PCR: lists of 8 and 5, as tpm2_quote writes.
        let mut sel = vec![BankSelection {
            hash: TPM_ALG_SHA256,
            pcrs: (0..12).collect(),
        }];
        sel.push(BankSelection {
            hash: TPM_ALG_SHA1,
            pcrs: vec![12],
        });
        let mut values: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 32]).collect();
        values.push(vec![0xee; 20]);
        let p = PcrValues {
            selection: sel,
            values,
        };
        let f = p.to_serialized().unwrap();
        assert_eq!(f.len(), 136 + 2 * 532);
        assert_eq!(parse_pcrs(&f).unwrap(), p);
        assert_eq!(p.get(PcrBank::Sha1, 12), Some(&[0xee; 20][..]));
        assert_eq!(p.get(PcrBank::Sha256, 11), Some(&[11; 32][..]));
    }
}
