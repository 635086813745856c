//! PCR selections: the `--pcrs` argument of `modseal quote`, and a quote's
//! `TPML_PCR_SELECTION` as read from `quote.msg` and `quote.pcrs`, named the
//! way tpm2-tools names them (`sha256:0,7,12+sha1:12`).

use crate::tpm::bank::PcrListError;
use crate::tpm::marshal::PCR_SELECT_MAX;
use crate::tpm::PcrBank;

/// PCRs selected in one bank, as `--pcrs` asks for them and the TPM is
/// asked: banks in order, PCRs ascending.
pub type PcrRequest = (PcrBank, Vec<u8>);

/// Why `--pcrs` does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectionError {
    /// A bank modseal does not know.
    #[error("unknown bank '{0}' (sha1, sha256, sha384 or sha512)")]
    UnknownBank(String),
    /// A bank named in two parts.
    #[error("bank {0} given twice")]
    BankTwice(PcrBank),
    /// A PCR list that does not parse.
    #[error("{0}")]
    PcrList(#[from] PcrListError),
}

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

/// One bank of a PCR selection: its hash and the PCRs selected, ascending.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BankSelection {
    /// `TPM_ALG_ID` of the bank.
    pub hash: u16,
    /// The PCRs selected, ascending.
    pub pcrs: Vec<u8>,
}

impl BankSelection {
    /// `sha256:0,12` as tpm2-tools writes selections; `sha1:none` for a
    /// bank with nothing selected (what a TPM quotes for a bank it has not
    /// allocated).
    pub fn describe(&self) -> String {
        if self.pcrs.is_empty() {
            return format!("{}:none", hash_alg_name(self.hash));
        }
        let pcrs: Vec<String> = self.pcrs.iter().map(u8::to_string).collect();
        format!("{}:{}", hash_alg_name(self.hash), pcrs.join(","))
    }

    /// The selection of a request part.
    pub fn of_request((bank, pcrs): &PcrRequest) -> BankSelection {
        BankSelection {
            hash: bank.alg_id(),
            pcrs: pcrs.clone(),
        }
    }
}

/// `sha256:0,12+sha1:12`, or `(nothing)`.
pub fn describe_selection(sel: &[BankSelection]) -> String {
    if sel.is_empty() {
        return "(nothing)".into();
    }
    sel.iter()
        .map(BankSelection::describe)
        .collect::<Vec<_>>()
        .join("+")
}

/// The PCRs a `pcrSelect` bitmap selects, ascending (PCR 8·i + b is bit b
/// of byte i); bytes past [`PCR_SELECT_MAX`] are ignored.
pub fn pcrs_of_bitmap(bitmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, byte) in (0u8..).zip(bitmap.iter().take(PCR_SELECT_MAX)) {
        for bit in 0..8u8 {
            if byte & (1 << bit) != 0 {
                out.push(i * 8 + bit);
            }
        }
    }
    out
}

/// Parses `--pcrs`: `BANK:LIST` parts joined with `+`, or a bare `LIST`
/// (sha256). PCR lists as in [`crate::tpm::bank::parse_pcr_list`].
pub fn parse_pcr_spec(text: &str) -> Result<Vec<PcrRequest>, SelectionError> {
    let mut out: Vec<PcrRequest> = Vec::new();
    for part in text.split('+') {
        let (bank, list) = match part.split_once(':') {
            Some((b, l)) => {
                let bank = PcrBank::from_name(b.trim())
                    .ok_or_else(|| SelectionError::UnknownBank(b.to_owned()))?;
                (bank, l)
            }
            None => (PcrBank::Sha256, part),
        };
        if out.iter().any(|(b, _)| *b == bank) {
            return Err(SelectionError::BankTwice(bank));
        }
        let pcrs = crate::tpm::bank::parse_pcr_list(list)?;
        out.push((bank, pcrs));
    }
    Ok(out)
}

/// `sha256:0,7,12+sha1:12`: a selection as `--pcrs` and tpm2-tools write it.
pub fn selection_text(selection: &[PcrRequest]) -> String {
    let banks: Vec<BankSelection> = selection.iter().map(BankSelection::of_request).collect();
    describe_selection(&banks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcr_spec() {
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
        assert_eq!(
            parse_pcr_spec("md5:1").unwrap_err().to_string(),
            "unknown bank 'md5' (sha1, sha256, sha384 or sha512)"
        );
    }

    #[test]
    fn bitmaps_and_names() {
        assert_eq!(pcrs_of_bitmap(&[0x81, 0x10, 0x00]), vec![0, 7, 12]);
        assert_eq!(pcrs_of_bitmap(&[0, 0, 0, 0x80, 0xff]), vec![31]);
        let sel = [
            BankSelection {
                hash: 0x000b,
                pcrs: vec![0, 12],
            },
            BankSelection {
                hash: 0x0004,
                pcrs: vec![],
            },
            BankSelection {
                hash: 0x0012,
                pcrs: vec![1],
            },
        ];
        assert_eq!(describe_selection(&sel), "sha256:0,12+sha1:none+0x0012:1");
        assert_eq!(describe_selection(&[]), "(nothing)");
    }
}
