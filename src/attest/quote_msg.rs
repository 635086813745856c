//! `quote.msg` (`tpm2_quote -m`): the `TPMS_ATTEST` a TPM returned from
//! TPM2_Quote (TPM 2.0 Part 2 §10.12), parsed strictly. The one parser of
//! quotes: `modseal quote` checks what its TPM returned with it, `modseal
//! attest` what a machine sent.

use super::evidence::MAX_QUOTE_FILE;
use super::selection::{pcrs_of_bitmap, BankSelection};
use crate::tpm::marshal::{
    MarshalError, Reader, MAX_DIGEST, MAX_HA, NUM_PCR_BANKS, PCR_SELECT_MAX, TPM_GENERATED_VALUE,
    TPM_ST_ATTEST_QUOTE,
};

/// Why bytes are not a quote's `TPMS_ATTEST`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgError {
    /// Larger than any quote.
    #[error("{0} bytes, more than the {MAX_QUOTE_FILE}-byte limit")]
    TooLarge(usize),
    /// Truncated, a size over its bound, or trailing bytes.
    #[error(transparent)]
    Marshal(#[from] MarshalError),
    /// Not signed by a TPM about itself.
    #[error("magic is 0x{0:08x}, not TPM_GENERATED_VALUE (0x{TPM_GENERATED_VALUE:08x}): not made by a TPM")]
    Magic(u32),
    /// Another kind of attestation (certify, time, …).
    #[error(
        "type is 0x{0:04x}, not TPM_ST_ATTEST_QUOTE (0x{TPM_ST_ATTEST_QUOTE:04x}): not a quote"
    )]
    NotAQuote(u16),
    /// `clockInfo.safe` is not a `TPMI_YES_NO`.
    #[error("clockInfo.safe is {0}, not 0 or 1")]
    Safe(u8),
    /// More banks than tpm2-tss has room for.
    #[error("pcrSelect.count is {0}, more than {NUM_PCR_BANKS} banks")]
    Banks(u32),
    /// A `pcrSelect` bitmap longer than any TPM's.
    #[error("pcrSelections[{index}].sizeofSelect is {size}, more than {PCR_SELECT_MAX}")]
    SizeofSelect {
        /// The selection's position.
        index: u32,
        /// Its `sizeofSelect`.
        size: usize,
    },
}

/// A quote's `TPMS_ATTEST`, every field modseal reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    /// `magic`: [`TPM_GENERATED_VALUE`].
    pub magic: u32,
    /// `type` (`TPMI_ST_ATTEST`): [`TPM_ST_ATTEST_QUOTE`].
    pub kind: u16,
    /// The qualified name of the key that signed.
    pub qualified_signer: Vec<u8>,
    /// The nonce (qualifying data) the verifier chose.
    pub extra_data: Vec<u8>,
    /// `clockInfo.clock`: milliseconds the TPM has been powered.
    pub clock: u64,
    /// `clockInfo.resetCount`: TPM resets (boots) so far.
    pub reset_count: u32,
    /// `clockInfo.restartCount`: restarts (resumes) since the reset.
    pub restart_count: u32,
    /// `clockInfo.safe`: the clock has not gone back.
    pub safe: bool,
    /// `firmwareVersion`.
    pub firmware_version: u64,
    /// The PCRs quoted, bank by bank.
    pub pcr_select: Vec<BankSelection>,
    /// The digest of the quoted PCR values, in selection order.
    pub pcr_digest: Vec<u8>,
}

/// Parses a `TPMS_ATTEST` that must be a quote (`TPM_GENERATED_VALUE`,
/// `TPM_ST_ATTEST_QUOTE`), with every size bounded and no byte left over.
pub fn parse_attest(data: &[u8]) -> Result<Attest, MsgError> {
    if data.len() > MAX_QUOTE_FILE {
        return Err(MsgError::TooLarge(data.len()));
    }
    let mut c = Reader::new(data);
    let magic = c.u32("magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(MsgError::Magic(magic));
    }
    let kind = c.u16("type")?;
    if kind != TPM_ST_ATTEST_QUOTE {
        return Err(MsgError::NotAQuote(kind));
    }
    let qualified_signer = c.tpm2b("qualifiedSigner", MAX_HA)?.to_vec();
    let extra_data = c.tpm2b("extraData", MAX_HA)?.to_vec();
    let clock = c.u64("clockInfo.clock")?;
    let reset_count = c.u32("clockInfo.resetCount")?;
    let restart_count = c.u32("clockInfo.restartCount")?;
    let safe = match c.u8("clockInfo.safe")? {
        0 => false,
        1 => true,
        v => return Err(MsgError::Safe(v)),
    };
    let firmware_version = c.u64("firmwareVersion")?;
    let pcr_select = read_selection(&mut c)?;
    let pcr_digest = c.tpm2b("pcrDigest", MAX_DIGEST)?.to_vec();
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

/// A `TPML_PCR_SELECTION`.
fn read_selection(c: &mut Reader<'_>) -> Result<Vec<BankSelection>, MsgError> {
    let count = c.u32("pcrSelect.count")?;
    if count as usize > NUM_PCR_BANKS {
        return Err(MsgError::Banks(count));
    }
    let mut out = Vec::new();
    for i in 0..count {
        let hash = c.u16(&format!("pcrSelections[{i}].hash"))?;
        let size = usize::from(c.u8(&format!("pcrSelections[{i}].sizeofSelect"))?);
        if size > PCR_SELECT_MAX {
            return Err(MsgError::SizeofSelect { index: i, size });
        }
        let bitmap = c.bytes(size, &format!("pcrSelections[{i}].pcrSelect"))?;
        out.push(BankSelection {
            hash,
            pcrs: pcrs_of_bitmap(bitmap),
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::marshal::{Writer, TPM_ALG_SHA256};
    use crate::tpm::PcrBank;

    /// A marshalled quote `TPMS_ATTEST`, as a TPM makes it.
    pub(crate) fn attest_bytes(nonce: &[u8], sel: &[(u16, &[u8])], digest: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(TPM_GENERATED_VALUE).u16(TPM_ST_ATTEST_QUOTE);
        w.u16(34).u16(TPM_ALG_SHA256).bytes(&[0xaa; 32]);
        w.tpm2b(nonce).unwrap();
        w.u64(0x0de8).u32(1).u32(0).u8(1);
        w.u64(0x2019_1023_0016_3636).u32(sel.len() as u32);
        for (hash, pcrs) in sel {
            let mut bitmap = [0u8; 3];
            for &p in *pcrs {
                bitmap[usize::from(p / 8)] |= 1 << (p % 8);
            }
            w.u16(*hash).u8(3).bytes(&bitmap);
        }
        w.tpm2b(digest).unwrap();
        w.into_bytes()
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
            let e = parse_attest(&good[..n]).unwrap_err().to_string();
            assert!(e.contains("truncated") || e.contains("magic"), "{n}: {e}");
        }
        let err = |b: &[u8]| parse_attest(b).unwrap_err().to_string();
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(err(&trailing).contains("trailing"));
        let mut magic = good.clone();
        magic[0] = 0;
        assert!(err(&magic).contains("TPM_GENERATED"));
        let mut kind = good.clone();
        kind[5] = 0x17; // TPM_ST_ATTEST_CERTIFY
        assert!(err(&kind).contains("not a quote"));
        // A TPM2B claiming more than its maximum.
        let mut big = good.clone();
        big[6..8].copy_from_slice(&0x0100u16.to_be_bytes());
        assert!(err(&big).contains("maximum"));
        let mut safe = good.clone();
        let at = 4 + 2 + 2 + 34 + 2 + 5 + 8 + 4 + 4;
        safe[at] = 2;
        assert!(err(&safe).contains("safe"));
        // More banks than a TPM has.
        let mut banks = good.clone();
        let at = at + 1 + 8;
        banks[at..at + 4].copy_from_slice(&17u32.to_be_bytes());
        assert!(err(&banks).contains("17"));
        assert!(err(&vec![0u8; MAX_QUOTE_FILE + 1]).contains("limit"));
    }
}
