//! `quote.pcrs` (`tpm2_quote -o`, default "serialized" format, read by
//! `tpm2_checkquote -f`): the quoted PCR values. The one reader and writer:
//! `modseal quote` writes the file with it and reads it back, `modseal
//! attest` reads a machine's.
//!
//! *Not* TPM marshalling but the raw C structures of tpm2-tss in
//! little-endian byte order (tpm2-tools 5.4 `lib/pcr.c`
//! `pcr_fwrite_serialized` writes them with `htole16`/`htole32`;
//! `tools/misc/tpm2_checkquote.c` `parse_selection_data_from_file` reads
//! them back with `fread` and `le*toh`):
//!
//! ```text
//! TPML_PCR_SELECTION   132 bytes  u32 count (≤ 16), then 16 × TPMS_PCR_SELECTION of 8 bytes:
//!                                 u16 hash, u8 sizeofSelect (≤ 4), u8 pcrSelect[4], u8 padding
//! u32 n                  4 bytes  number of TPML_DIGEST that follow (≤ 32)
//! n × TPML_DIGEST      532 bytes  u32 count (1..=8), then 8 × TPM2B_DIGEST of 66 bytes:
//!                                 u16 size, u8 buffer[64]
//! ```
//!
//! The PCR values are the digests of all lists in order, one per selected
//! PCR, bank by bank in selection order, PCRs ascending within a bank. One
//! list per TPM2_PCR_Read response (`pcr_read_pcr_values`; a response holds
//! at most 8). tpm2-tools writes `sizeofSelect` 3 (`pcr_parse_selection`),
//! zero padding, unused entries and buffer tails; a reader ignores them, as
//! tpm2-tools does.

use super::evidence::MAX_QUOTE_FILE;
use super::quote_msg::Attest;
use super::selection::{bank_of, describe_selection, hash_alg_name, pcrs_of_bitmap};
use super::selection::{BankSelection, PcrRequest};
use crate::tpm::marshal::{MAX_DIGEST, NUM_PCR_BANKS, PCR_SELECT_MAX};
use crate::tpm::PcrBank;

/// `TPM2_MAX_PCRS` in tpm2-tss: the length of `tpm2_pcrs.pcr_values`, the
/// most digest lists a file holds.
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
/// The selection and the list count.
const HEADER: usize = SERIALIZED_SELECTION_SIZE + 4;

/// Why PCR values do not read as, or cannot be written as, `quote.pcrs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcrsError {
    /// Shorter than the fixed header.
    #[error("{0} bytes, shorter than the {HEADER}-byte header (TPML_PCR_SELECTION + list count) of tpm2_quote's serialized PCR file")]
    TooShort(usize),
    /// Larger than any PCR file.
    #[error("{0} bytes, more than the {MAX_QUOTE_FILE}-byte limit")]
    TooLarge(usize),
    /// A selection count over [`NUM_PCR_BANKS`].
    #[error("selection count is {0}, more than {NUM_PCR_BANKS} banks")]
    SelectionCount(u32),
    /// A bank modseal does not know.
    #[error("selection {index}: hash algorithm 0x{hash:04x} is not a PCR bank modseal knows (sha1, sha256, sha384, sha512)")]
    UnknownBank {
        /// The selection entry.
        index: usize,
        /// Its hash.
        hash: u16,
    },
    /// A bank selected twice.
    #[error("selection {index}: bank {} listed twice", hash_alg_name(*hash))]
    BankTwice {
        /// The selection entry.
        index: usize,
        /// Its hash.
        hash: u16,
    },
    /// A `sizeofSelect` over [`PCR_SELECT_MAX`].
    #[error("selection {index}: sizeofSelect is {size}, more than {PCR_SELECT_MAX}")]
    SizeofSelect {
        /// The selection entry.
        index: usize,
        /// Its `sizeofSelect`.
        size: usize,
    },
    /// More digest lists than tpm2-tools has room for.
    #[error("{0} digest lists, more than {MAX_DIGEST_LISTS}")]
    Lists(usize),
    /// The file's length is not what its list count says.
    #[error("{len} bytes, but a file with {lists} digest list(s) has exactly {want}")]
    Length {
        /// The file's length.
        len: usize,
        /// Its list count.
        lists: usize,
        /// The length that count implies.
        want: usize,
    },
    /// An empty list, or one over [`DIGESTS_PER_LIST`].
    #[error("digest list {list} holds {count} digests (1 to {DIGESTS_PER_LIST} allowed)")]
    ListCount {
        /// The list.
        list: usize,
        /// Its count.
        count: usize,
    },
    /// A digest size over the buffer.
    #[error("digest list {list} entry {entry}: size {size}, more than {MAX_DIGEST}")]
    DigestSize {
        /// The list.
        list: usize,
        /// The entry in it.
        entry: usize,
        /// Its size.
        size: usize,
    },
    /// Not one value per selected PCR.
    #[error("{values} PCR value(s) for {selected} selected PCR(s) ({selection})")]
    ValueCount {
        /// Values in the lists.
        values: usize,
        /// PCRs selected.
        selected: usize,
        /// The selection, described.
        selection: String,
    },
    /// A value of another length than its bank's digest.
    #[error("PCR {pcr} {}: value is {len} bytes, the bank's digest is {want}", hash_alg_name(*bank))]
    ValueLength {
        /// The PCR.
        pcr: u8,
        /// Its bank.
        bank: u16,
        /// The value's length.
        len: usize,
        /// The bank's digest length.
        want: usize,
    },
    /// No bank, or more than [`NUM_PCR_BANKS`], to write.
    #[error("{0} PCR banks selected (1-{NUM_PCR_BANKS})")]
    Banks(usize),
    /// A value longer than a `TPM2B_DIGEST` holds.
    #[error("a PCR value of {0} bytes, more than {MAX_DIGEST}")]
    DigestTooLong(usize),
    /// A PCR a 4-byte bitmap cannot select.
    #[error("PCR {0} out of range")]
    PcrRange(u8),
    /// The digest lists do not hold the values.
    #[error("the digest lists hold {listed} value(s), not the {values} given")]
    ListsMismatch {
        /// Values the lists say they hold.
        listed: usize,
        /// Values there are.
        values: usize,
    },
    /// TPM2_PCR_Read returned another number of values than selected.
    #[error("{read} PCR values read for {selected} selected PCRs")]
    ReadCount {
        /// Values read.
        read: usize,
        /// PCRs selected.
        selected: usize,
    },
    /// TPM2_PCR_Read returned a value of the wrong length.
    #[error("a {bank} PCR value of {len} bytes")]
    ReadLength {
        /// The bank.
        bank: PcrBank,
        /// The value's length.
        len: usize,
    },
}

/// The PCR values file: the selection it claims and one value per selected PCR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrValues {
    /// The selection, bank by bank.
    pub selection: Vec<BankSelection>,
    /// In selection order: bank by bank, PCRs ascending.
    pub values: Vec<Vec<u8>>,
    /// How many of the values each `TPML_DIGEST` holds, in order.
    pub lists: Vec<usize>,
}

impl PcrValues {
    /// The values of `selection`, in lists of [`DIGESTS_PER_LIST`].
    pub fn new(selection: Vec<BankSelection>, values: Vec<Vec<u8>>) -> PcrValues {
        let lists = values.chunks(DIGESTS_PER_LIST).map(<[_]>::len).collect();
        PcrValues {
            selection,
            values,
            lists,
        }
    }

    /// The values TPM2_PCR_Read returned for `request` ([`crate::tpm::AttestTpm::pcr_read_groups`]):
    /// one list per response, one value of its bank's size per selected PCR.
    pub fn from_reads(
        request: &[PcrRequest],
        groups: &[Vec<Vec<u8>>],
    ) -> Result<PcrValues, PcrsError> {
        if request.is_empty() || request.len() > NUM_PCR_BANKS {
            return Err(PcrsError::Banks(request.len()));
        }
        let values: Vec<Vec<u8>> = groups.iter().flatten().cloned().collect();
        let banks: Vec<PcrBank> = request
            .iter()
            .flat_map(|(b, p)| std::iter::repeat_n(*b, p.len()))
            .collect();
        if values.len() != banks.len() {
            return Err(PcrsError::ReadCount {
                read: values.len(),
                selected: banks.len(),
            });
        }
        if let Some((v, &bank)) = values
            .iter()
            .zip(&banks)
            .find(|(v, b)| v.len() != b.digest_len())
        {
            return Err(PcrsError::ReadLength { bank, len: v.len() });
        }
        Ok(PcrValues {
            selection: request.iter().map(BankSelection::of_request).collect(),
            values,
            lists: groups.iter().map(Vec::len).collect(),
        })
    }

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
    pub fn to_serialized(&self) -> Result<Vec<u8>, PcrsError> {
        if self.selection.len() > NUM_PCR_BANKS {
            return Err(PcrsError::Banks(self.selection.len()));
        }
        let listed: usize = self.lists.iter().sum();
        if listed != self.values.len() {
            return Err(PcrsError::ListsMismatch {
                listed,
                values: self.values.len(),
            });
        }
        if self.lists.len() > MAX_DIGEST_LISTS {
            return Err(PcrsError::Lists(self.lists.len()));
        }
        let mut out = Vec::with_capacity(HEADER + self.lists.len() * SERIALIZED_DIGEST_LIST_SIZE);
        out.extend_from_slice(&(self.selection.len() as u32).to_le_bytes());
        for i in 0..NUM_PCR_BANKS {
            out.extend_from_slice(&selection_entry(self.selection.get(i))?);
        }
        out.extend_from_slice(&(self.lists.len() as u32).to_le_bytes());
        let mut values = self.values.iter();
        for (list, &count) in self.lists.iter().enumerate() {
            if count == 0 || count > DIGESTS_PER_LIST {
                return Err(PcrsError::ListCount { list, count });
            }
            out.extend_from_slice(&(count as u32).to_le_bytes());
            for entry in 0..DIGESTS_PER_LIST {
                let v = if entry < count { values.next() } else { None };
                out.extend_from_slice(&digest_entry(v.map(Vec::as_slice))?);
            }
        }
        Ok(out)
    }
}

/// A `TPMS_PCR_SELECTION` with its padding; zero for an unused slot.
fn selection_entry(sel: Option<&BankSelection>) -> Result<[u8; SEL_SIZE], PcrsError> {
    let mut entry = [0u8; SEL_SIZE];
    if let Some(sel) = sel {
        entry[..2].copy_from_slice(&sel.hash.to_le_bytes());
        entry[2] = 3;
        for &p in &sel.pcrs {
            let byte = usize::from(p / 8);
            if byte >= PCR_SELECT_MAX {
                return Err(PcrsError::PcrRange(p));
            }
            entry[2] = entry[2].max(byte as u8 + 1);
            entry[3 + byte] |= 1 << (p % 8);
        }
    }
    Ok(entry)
}

/// A `TPM2B_DIGEST` with its whole buffer; zero for an unused slot.
fn digest_entry(v: Option<&[u8]>) -> Result<[u8; TPM2B_DIGEST_SIZE], PcrsError> {
    let mut d = [0u8; TPM2B_DIGEST_SIZE];
    if let Some(v) = v {
        if v.len() > MAX_DIGEST {
            return Err(PcrsError::DigestTooLong(v.len()));
        }
        d[..2].copy_from_slice(&(v.len() as u16).to_le_bytes());
        d[2..2 + v.len()].copy_from_slice(v);
    }
    Ok(d)
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
pub fn parse_pcrs(data: &[u8]) -> Result<PcrValues, PcrsError> {
    if data.len() < HEADER {
        return Err(PcrsError::TooShort(data.len()));
    }
    if data.len() > MAX_QUOTE_FILE {
        return Err(PcrsError::TooLarge(data.len()));
    }
    let selection = read_selection(data)?;
    let lists = le_u32(data, SERIALIZED_SELECTION_SIZE) as usize;
    if lists > MAX_DIGEST_LISTS {
        return Err(PcrsError::Lists(lists));
    }
    let want = HEADER + lists * SERIALIZED_DIGEST_LIST_SIZE;
    if data.len() != want {
        return Err(PcrsError::Length {
            len: data.len(),
            lists,
            want,
        });
    }
    let (flat, counts) = read_lists(data, lists)?;
    let values = order_values(&selection, flat)?;
    Ok(PcrValues {
        selection,
        values,
        lists: counts,
    })
}

/// The `TPML_PCR_SELECTION` at the start of the file.
fn read_selection(data: &[u8]) -> Result<Vec<BankSelection>, PcrsError> {
    let count = le_u32(data, 0);
    if count as usize > NUM_PCR_BANKS {
        return Err(PcrsError::SelectionCount(count));
    }
    let mut selection: Vec<BankSelection> = Vec::with_capacity(count as usize);
    for index in 0..count as usize {
        let at = 4 + index * SEL_SIZE;
        let hash = le_u16(data, at);
        if bank_of(hash).is_none() {
            return Err(PcrsError::UnknownBank { index, hash });
        }
        if selection.iter().any(|s| s.hash == hash) {
            return Err(PcrsError::BankTwice { index, hash });
        }
        let size = usize::from(data.get(at + 2).copied().unwrap_or_default());
        if size > PCR_SELECT_MAX {
            return Err(PcrsError::SizeofSelect { index, size });
        }
        let bitmap = data.get(at + 3..at + 3 + size).unwrap_or_default();
        selection.push(BankSelection {
            hash,
            pcrs: pcrs_of_bitmap(bitmap),
        });
    }
    Ok(selection)
}

/// Every digest of the `lists` digest lists, in order, and each list's count.
fn read_lists(data: &[u8], lists: usize) -> Result<(Vec<Vec<u8>>, Vec<usize>), PcrsError> {
    let mut flat = Vec::new();
    let mut counts = Vec::with_capacity(lists);
    for list in 0..lists {
        let at = HEADER + list * SERIALIZED_DIGEST_LIST_SIZE;
        let count = le_u32(data, at) as usize;
        if count == 0 || count > DIGESTS_PER_LIST {
            return Err(PcrsError::ListCount { list, count });
        }
        for entry in 0..count {
            let d = at + 4 + entry * TPM2B_DIGEST_SIZE;
            let size = usize::from(le_u16(data, d));
            if size > MAX_DIGEST {
                return Err(PcrsError::DigestSize { list, entry, size });
            }
            flat.push(data.get(d + 2..d + 2 + size).unwrap_or_default().to_vec());
        }
        counts.push(count);
    }
    Ok((flat, counts))
}

/// The values matched with the selected PCRs: as many, each of its bank's size.
fn order_values(
    selection: &[BankSelection],
    flat: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, PcrsError> {
    let selected: usize = selection.iter().map(|s| s.pcrs.len()).sum();
    if flat.len() != selected {
        return Err(PcrsError::ValueCount {
            values: flat.len(),
            selected,
            selection: describe_selection(selection),
        });
    }
    let mut values = flat.into_iter();
    let mut ordered = Vec::with_capacity(selected);
    for sel in selection {
        let want = bank_of(sel.hash).map(PcrBank::digest_len).unwrap_or(0);
        for &pcr in &sel.pcrs {
            let v = values.next().unwrap_or_default();
            if v.len() != want {
                return Err(PcrsError::ValueLength {
                    pcr,
                    bank: sel.hash,
                    len: v.len(),
                    want,
                });
            }
            ordered.push(v);
        }
    }
    Ok(ordered)
}

/// Why the PCR values are not the ones the quote signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcrDigestError {
    /// The file selects other PCRs than the quote.
    #[error("quote.pcrs holds {file}, but the quote is over {quote}")]
    Selection {
        /// The file's selection, described.
        file: String,
        /// The quote's selection, described.
        quote: String,
    },
    /// The values do not hash to the quote's digest.
    #[error(
        "{bank} of the {count} value(s) in quote.pcrs is {}, the quote's pcrDigest is {}",
        crate::util::hex::lower(computed),
        crate::util::hex::lower(quoted)
    )]
    Digest {
        /// The hash of `pcrDigest`.
        bank: PcrBank,
        /// Values hashed.
        count: usize,
        /// Their digest.
        computed: Vec<u8>,
        /// The quote's `pcrDigest`.
        quoted: Vec<u8>,
    },
}

/// Drops banks with nothing selected, for comparing selections.
fn nonempty(sel: &[BankSelection]) -> Vec<&BankSelection> {
    sel.iter().filter(|s| !s.pcrs.is_empty()).collect()
}

/// The PCR values against the quote: the same selection, and their `hash`
/// (the signature's, [`super::signature::digest_hash`]) is the quote's
/// `pcrDigest`. Returns what was checked.
pub fn check_pcr_digest(
    att: &Attest,
    pcrs: &PcrValues,
    hash: PcrBank,
) -> Result<String, PcrDigestError> {
    if nonempty(&att.pcr_select) != nonempty(&pcrs.selection) {
        return Err(PcrDigestError::Selection {
            file: describe_selection(&pcrs.selection),
            quote: describe_selection(&att.pcr_select),
        });
    }
    let digest = hash.hash(&pcrs.concatenated());
    if digest != att.pcr_digest {
        return Err(PcrDigestError::Digest {
            bank: hash,
            count: pcrs.values.len(),
            computed: digest,
            quoted: att.pcr_digest.clone(),
        });
    }
    Ok(format!(
        "{hash} of {} quoted value(s) ({}) is the quote's pcrDigest",
        pcrs.values.len(),
        describe_selection(&pcrs.selection)
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::marshal::{TPM_ALG_SHA1, TPM_ALG_SHA256};

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
        let err = |b: &[u8]| parse_pcrs(b).unwrap_err().to_string();
        let mut longer = f.clone();
        longer.push(0);
        assert!(err(&longer).contains("exactly 668"));
        let mut bank = f.clone();
        bank[4] = 0x12; // sm3_256
        assert!(err(&bank).contains("0x0012"));
        let mut size = f.clone();
        size[206] = 20;
        assert!(err(&size).contains("20 bytes"));
        let mut huge = f.clone();
        huge[206] = 65;
        assert!(err(&huge).contains("65"));
        let mut count = f.clone();
        count[136] = 9;
        assert!(err(&count).contains("9 digests"));
        let mut fewer = f.clone();
        fewer[136] = 1;
        assert!(err(&fewer).contains("1 PCR value(s) for 2"));
        let mut banks = f.clone();
        banks[0] = 17;
        assert!(err(&banks).contains("17"));
        let mut lists = f.clone();
        lists[132] = 33;
        assert!(err(&lists).contains("33"));
        let mut twice = f.clone();
        twice[0] = 2;
        twice[12] = 0x0b;
        assert!(err(&twice).contains("twice"));
    }

    #[test]
    fn pcrs_values_split_over_lists() {
        // 12 sha256 PCRs and one sha1 PCR: lists of 8 and 5, as tpm2_quote writes.
        let sel = vec![
            BankSelection {
                hash: TPM_ALG_SHA256,
                pcrs: (0..12).collect(),
            },
            BankSelection {
                hash: TPM_ALG_SHA1,
                pcrs: vec![12],
            },
        ];
        let mut values: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 32]).collect();
        values.push(vec![0xee; 20]);
        let p = PcrValues::new(sel, values);
        assert_eq!(p.lists, vec![8, 5]);
        let f = p.to_serialized().unwrap();
        assert_eq!(f.len(), 136 + 2 * 532);
        assert_eq!(parse_pcrs(&f).unwrap(), p);
        assert_eq!(p.get(PcrBank::Sha1, 12), Some(&[0xee; 20][..]));
        assert_eq!(p.get(PcrBank::Sha256, 11), Some(&[11; 32][..]));
    }

    #[test]
    fn written_from_pcr_reads_as_tpm2_quote_writes_it() {
        let sel = vec![(PcrBank::Sha256, vec![0, 7, 12])];
        let vals = vec![vec![0x11u8; 32], vec![0x22; 32], vec![0x33; 32]];
        let written = |sel: &[PcrRequest], groups: &[Vec<Vec<u8>>]| {
            PcrValues::from_reads(sel, groups).and_then(|p| p.to_serialized())
        };
        let f = written(&sel, std::slice::from_ref(&vals)).unwrap();
        assert_eq!(
            f.len(),
            SERIALIZED_SELECTION_SIZE + 4 + SERIALIZED_DIGEST_LIST_SIZE
        );
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
        assert_eq!(parse_pcrs(&f).unwrap().values, vals);
        // Two banks, two responses: one list each.
        let sel2 = vec![(PcrBank::Sha256, vec![12]), (PcrBank::Sha1, vec![12])];
        let f2 = written(&sel2, &[vec![vec![1u8; 32]], vec![vec![2u8; 20]]]).unwrap();
        assert_eq!(f2.len(), 132 + 4 + 2 * 532);
        assert_eq!(&f2[0..4], &[2, 0, 0, 0]);
        assert_eq!(&f2[12..19], &[4, 0, 3, 0, 0x10, 0, 0]);
        // Limits of the C structures, and values that are not the selection's.
        assert!(written(&sel, &[vec![vec![0u8; 32]; 9]]).is_err());
        assert!(written(&sel, &[vec![vec![0u8; 65]]]).is_err());
        assert!(written(&[], &[]).is_err());
        let nine = vec![(PcrBank::Sha256, (0..9).collect())];
        assert_eq!(
            written(&nine, &[vec![vec![0u8; 32]; 9]])
                .unwrap_err()
                .to_string(),
            "digest list 0 holds 9 digests (1 to 8 allowed)"
        );
        assert_eq!(
            written(&sel, &[vals[..2].to_vec()])
                .unwrap_err()
                .to_string(),
            "2 PCR values read for 3 selected PCRs"
        );
        let short = vec![vec![0u8; 32], vec![0u8; 20], vec![0u8; 32]];
        assert_eq!(
            written(&sel, &[short]).unwrap_err().to_string(),
            "a sha256 PCR value of 20 bytes"
        );
    }
}
