//! PCR banks and the PCR arithmetic modseal computes off the TPM.

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// A PCR bank (its hash algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcrBank {
    /// SHA-1 (`TPM_ALG_SHA1`).
    Sha1,
    /// SHA-256 (`TPM_ALG_SHA256`).
    Sha256,
    /// SHA-384 (`TPM_ALG_SHA384`).
    Sha384,
    /// SHA-512 (`TPM_ALG_SHA512`).
    Sha512,
}

impl PcrBank {
    /// Every bank modseal knows, weakest first.
    pub const ALL: [PcrBank; 4] = [
        PcrBank::Sha1,
        PcrBank::Sha256,
        PcrBank::Sha384,
        PcrBank::Sha512,
    ];

    /// The name TCG's event-log JSON and tpm2-tools use.
    pub fn name(self) -> &'static str {
        match self {
            PcrBank::Sha1 => "sha1",
            PcrBank::Sha256 => "sha256",
            PcrBank::Sha384 => "sha384",
            PcrBank::Sha512 => "sha512",
        }
    }

    /// The bank [`PcrBank::name`] names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        PcrBank::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The size of a PCR value (and of a digest) in this bank.
    pub fn digest_len(self) -> usize {
        match self {
            PcrBank::Sha1 => 20,
            PcrBank::Sha256 => 32,
            PcrBank::Sha384 => 48,
            PcrBank::Sha512 => 64,
        }
    }

    /// The bank's hash of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        self.hash_parts(&[data])
    }

    /// The bank's hash of `parts`, concatenated.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        macro_rules! h {
            ($t:ty) => {{
                let mut h = <$t>::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }};
        }
        match self {
            PcrBank::Sha1 => h!(sha1::Sha1),
            PcrBank::Sha256 => h!(sha2::Sha256),
            PcrBank::Sha384 => h!(sha2::Sha384),
            PcrBank::Sha512 => h!(sha2::Sha512),
        }
    }

    /// `PCR_new = H(PCR_old || digest)`, the TPM's extend.
    pub fn extend(self, old: &[u8], digest: &[u8]) -> Vec<u8> {
        self.hash_parts(&[old, digest])
    }

    /// The PolicyPCR policy digest of a SHA-256 policy session starting from
    /// zero. The session hash (the sealed object's name algorithm) is SHA-256
    /// whatever the bank; the bank only names the PCR values in the selection:
    /// `SHA256(0^32 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || SHA256(values))`.
    /// `pcrs` ascending, `values` in the same order (the TPM concatenates the
    /// selected PCRs in index order).
    pub fn policy_pcr_digest(self, pcrs: &[u8], values: &[Vec<u8>]) -> Vec<u8> {
        let session = PcrBank::Sha256;
        let mut concat = Vec::new();
        for v in values {
            concat.extend_from_slice(v);
        }
        let pcr_digest = session.hash(&concat);
        let selection = pcr_selection(self, pcrs);
        let zero = vec![0u8; session.digest_len()];
        const TPM_CC_POLICY_PCR: u32 = 0x0000_017F;
        session.hash_parts(&[
            &zero,
            &TPM_CC_POLICY_PCR.to_be_bytes(),
            &selection,
            &pcr_digest,
        ])
    }

    /// `TPM_ALG_ID` of the bank's hash.
    pub fn alg_id(self) -> u16 {
        match self {
            PcrBank::Sha1 => 0x0004,
            PcrBank::Sha256 => 0x000B,
            PcrBank::Sha384 => 0x000C,
            PcrBank::Sha512 => 0x000D,
        }
    }
}

impl std::fmt::Display for PcrBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A marshalled `TPML_PCR_SELECTION` with one selection (3-byte bitmap).
pub fn pcr_selection(bank: PcrBank, pcrs: &[u8]) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for &p in pcrs {
        if let Some(b) = bitmap.get_mut(usize::from(p / 8)) {
            *b |= 1 << (p % 8);
        }
    }
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&bank.alg_id().to_be_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out
}

/// Why a PCR list (`--pcrs`, a quote selection) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcrListError {
    /// An entry that is not a PCR index.
    #[error("'{0}' is not a PCR index (0-23)")]
    NotAPcr(String),
    /// A range whose start is after its end.
    #[error("PCR range '{0}' is backwards")]
    Backwards(String),
    /// No PCR at all.
    #[error("empty PCR list")]
    Empty,
}

/// Parses a PCR list like `7,12` or `0-7,12` (0–23), sorted and deduplicated.
pub fn parse_pcr_list(text: &str) -> Result<Vec<u8>, PcrListError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (parse_pcr(a)?, parse_pcr(b)?),
            None => {
                let p = parse_pcr(part)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(PcrListError::Backwards(part.to_owned()));
        }
        out.extend(lo..=hi);
    }
    if out.is_empty() {
        return Err(PcrListError::Empty);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn parse_pcr(s: &str) -> Result<u8, PcrListError> {
    match s.trim().parse::<u8>() {
        Ok(p) if p <= 23 => Ok(p),
        _ => Err(PcrListError::NotAPcr(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_lists() {
        assert_eq!(parse_pcr_list("7,12").unwrap(), vec![7, 12]);
        assert_eq!(parse_pcr_list("0-2, 1,23").unwrap(), vec![0, 1, 2, 23]);
        assert!(parse_pcr_list("24").is_err());
        assert!(parse_pcr_list("3-1").is_err());
        assert_eq!(
            parse_pcr_list("").unwrap_err().to_string(),
            "empty PCR list"
        );
        assert_eq!(
            parse_pcr_list("3-1").unwrap_err().to_string(),
            "PCR range '3-1' is backwards"
        );
        assert_eq!(
            parse_pcr_list("1, x").unwrap_err().to_string(),
            "'x' is not a PCR index (0-23)"
        );
    }

    #[test]
    fn selection_layout() {
        assert_eq!(
            pcr_selection(PcrBank::Sha256, &[0, 12, 23]),
            vec![0, 0, 0, 1, 0, 0x0b, 3, 0x01, 0x10, 0x80]
        );
    }

    #[test]
    fn extend_from_zero() {
        // sha256(32 zero bytes || sha256("")) is a fixed value.
        let d = PcrBank::Sha256.hash(b"");
        let v = PcrBank::Sha256.extend(&[0u8; 32], &d);
        assert_eq!(v.len(), 32);
        assert_ne!(v, d);
    }
}
