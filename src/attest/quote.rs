//! `modseal quote`: a TPM quote over the PCRs modseal measures, signed by an
//! attestation key (AK), written in tpm2-tools' formats so that `modseal
//! attest` and `tpm2_checkquote` both check it.
//!
//! ## The attestation key
//! A primary key of the endorsement hierarchy made from modseal's template
//! ([`super::ak`]). It lives at a persistent handle ([`DEFAULT_AK_HANDLE`],
//! `--ak-handle`), made with TPM2_EvictControl on first use. A handle
//! holding anything else is refused, never overwritten: the object there
//! must be a restricted signing key whose public area is the template's in
//! every field but the key itself (`unique`), and a quote must name it a
//! primary of the endorsement hierarchy (its qualified name `0x000b ||
//! SHA-256(TPM_RH_ENDORSEMENT || name)`). `tpm2_quote -c <handle>` uses the
//! same key.
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
//! The files of [`super::evidence`], replaced as a whole (built beside it,
//! then exchanged in one `renameat2(RENAME_EXCHANGE)`), only after every
//! check passed. The event log is read before and after the quote and must
//! be the same both times.
//!
//! Before anything is written the quote is checked with what `modseal
//! attest` checks it with ([`super::quote_msg::parse_attest`],
//! [`super::signature::check_signature`], [`super::pcrs::parse_pcrs`] of
//! the file written, [`super::pcrs::check_pcr_digest`]): its magic and type,
//! its qualifying data (the nonce), its PCR selection (the one asked for),
//! its signer (the AK as a primary of the endorsement hierarchy), its
//! signature (with the AK), and its PCR digest, which must be that of the
//! values read with TPM2_PCR_Read after the quote. A PCR extended between
//! the quote and the read makes them differ: the quote is made again once,
//! then refused.

use super::ak::{ak_template, endorsement_primary_qualified_name, name_of, Ak, AkAlg, AkError};
use super::evidence::{AK_PEM, AK_PUB, NONCE, QUOTE_LOG, QUOTE_MSG, QUOTE_PCRS, QUOTE_SIG};
use super::nonce::MAX_NONCE;
use super::pcrs::{check_pcr_digest, parse_pcrs, PcrDigestError, PcrValues, PcrsError};
use super::quote_msg::{parse_attest, Attest, MsgError};
use super::selection::{selection_text, BankSelection, PcrRequest};
use super::signature::{check_signature, digest_hash, parse_signature};
use super::signature::{SigCheckError, SigParseError, Signature};
use crate::tpm::tpm2b::Tpm2bError;
use crate::tpm::{AttestTpm, Quoted, TpmError};
use crate::util::hex;
use crate::util::read::ReadError;

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
/// How many times the quote is made when the PCRs or the log change under it.
pub const QUOTE_ATTEMPTS: u32 = 2;

/// TPM_RC_BAD_AUTH and TPM_RC_AUTH_FAIL (format 1, without their location).
const RC_BAD_AUTH: u32 = 0x0A2;
const RC_AUTH_FAIL: u32 = 0x08E;
const AUTH_HINT: &str = "; modseal creates the AK with the empty endorsement and owner authorization: with passwords set, make it once with `tpm2_createprimary -C e -G rsa2048:rsassa-sha256:null -a 'restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth'` and persist it at this handle with `tpm2_evictcontrol -C o`; modseal then reuses it";

/// Why `--ak-handle` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Not a hex number.
    #[error("'{0}' is not a hex handle")]
    NotHex(String),
    /// Outside [`OWNER_PERSISTENT`].
    #[error("{0:#010x} is not a persistent handle the owner can write (0x81000000-0x817fffff)")]
    NotOwnerPersistent(u32),
}

/// Why a quote was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// The nonce is empty or longer than a TPM takes (a usage error).
    #[error("a nonce of {0} bytes (1-{MAX_NONCE})")]
    NonceLength(usize),
    /// A TPM command failed, in the named step (and what to do about it,
    /// when there is something to say).
    #[error("{step}: {err}{hint}")]
    Tpm {
        /// What modseal was doing.
        step: String,
        /// What the TPM (or the TSS) said.
        err: TpmError,
        /// What to do about it, or empty.
        hint: &'static str,
    },
    /// The persistent handle holds something modseal will not use or replace.
    #[error("persistent handle {handle:#010x} holds a different object: {why}; modseal does not overwrite it (choose another --ak-handle, or evict the object: tpm2_evictcontrol -C o -c {handle:#010x})")]
    AkRefused {
        /// The handle.
        handle: u32,
        /// What the object there is.
        why: Refusal,
    },
    /// The handle holds an AK of the other type than `--ak-alg` asks for.
    #[error("persistent handle {handle:#010x} holds an {} attestation key, not the {} one --ak-alg asks for", found.name(), wanted.name())]
    AkAlgMismatch {
        /// The handle.
        handle: u32,
        /// The AK there.
        found: AkAlg,
        /// The one asked for.
        wanted: AkAlg,
    },
    /// The key the TPM made from the template is not an AK of it.
    #[error("the key the TPM made from the AK template does not check out: {0}")]
    CreatedInvalid(AkError),
    /// The TPM made another key than asked for.
    #[error("the key the TPM made at {handle:#010x} is not the one asked for (name {} for public area {})", hex::lower(tpm_name), hex::lower(public_name))]
    CreatedOther {
        /// The handle.
        handle: u32,
        /// The name the TPM reported.
        tpm_name: Vec<u8>,
        /// The name of the public area it returned.
        public_name: Vec<u8>,
    },
    /// The TPM's name of the object is not that of its public area.
    #[error("the TPM's name for the object at {0:#010x} is not that of its public area")]
    NameMismatch(u32),
    /// What the TPM returned does not check out.
    #[error("the TPM's quote: {0}")]
    BadQuote(QuoteFault),
    /// The PCR values read are not the selection's, or do not fit the file.
    #[error("reading the quoted PCRs: {0}")]
    PcrValues(PcrsError),
    /// The PCRs or the event log kept changing while quoting.
    #[error("{what}, {attempts} times in a row; nothing written")]
    Changed {
        /// What changed the last time.
        what: Change,
        /// Quotes made.
        attempts: u32,
    },
    /// Reading the event log.
    #[error("reading the event log {0}")]
    LogRead(ReadError),
}

impl QuoteError {
    /// A usage error (exit 2) rather than a failure: bad input modseal or
    /// the TPM refused before doing anything.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            QuoteError::NonceLength(_)
                | QuoteError::Tpm {
                    err: TpmError::Invalid(_),
                    ..
                }
        )
    }
}

/// What the object at the AK's handle is, when it is not modseal's AK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a key made from the AK template.
    #[error(transparent)]
    NotAnAk(AkError),
    /// The template's key, but ReadPublic says it is not an endorsement primary.
    #[error("a key with the AK template that is not a primary key of the endorsement hierarchy")]
    NotEndorsementPrimary,
    /// The template's key, but the quote names another signer.
    #[error("a key that is not a primary key of the endorsement hierarchy (the quote's signer is not the AK's qualified name)")]
    SignerNotEndorsementPrimary,
}

/// What is wrong with the quote the TPM returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteFault {
    /// Not a quote's `TPMS_ATTEST`.
    #[error(transparent)]
    Format(MsgError),
    /// Its qualifying data is not the nonce.
    #[error("its qualifying data {} is not the nonce", hex::lower(.0))]
    Nonce(Vec<u8>),
    /// It quotes another selection than asked for.
    #[error("it covers {got} instead of {want} (is every bank allocated?)")]
    Selection {
        /// What it quotes.
        got: String,
        /// What was asked for.
        want: String,
    },
    /// Its signature does not parse.
    #[error("its signature does not verify with the AK: {0}")]
    SignatureFormat(SigParseError),
    /// Its signature does not verify.
    #[error("its signature does not verify with the AK: {0}")]
    Signature(SigCheckError),
    /// The PCR file does not select what the quote does.
    #[error(transparent)]
    PcrSelection(PcrDigestError),
}

/// What changed while quoting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Change {
    /// The event log read after the quote differs from the one before.
    #[error("the event log changed while quoting")]
    Log,
    /// A PCR was extended between the quote and the read.
    #[error("the PCRs changed between TPM2_Quote and TPM2_PCR_Read (quoted digest {}, digest of the values read {})", hex::lower(quoted), hex::lower(read))]
    Pcrs {
        /// The quote's `pcrDigest`.
        quoted: Vec<u8>,
        /// The digest of the values read.
        read: Vec<u8>,
    },
}

fn tpm_step(step: impl Into<String>) -> impl FnOnce(TpmError) -> QuoteError {
    let step = step.into();
    move |err| QuoteError::Tpm {
        step,
        err,
        hint: "",
    }
}

/// Parses `--ak-handle`: hex with or without `0x`, in the owner's
/// persistent range.
pub fn parse_handle(text: &str) -> Result<u32, HandleError> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let h = u32::from_str_radix(digits, 16).map_err(|_| HandleError::NotHex(text.to_owned()))?;
    if !OWNER_PERSISTENT.contains(&h) {
        return Err(HandleError::NotOwnerPersistent(h));
    }
    Ok(h)
}

/// What to quote and with which key.
#[derive(Debug, Clone)]
pub struct QuoteRequest<'a> {
    /// The AK's persistent handle.
    pub handle: u32,
    /// The AK type asked for (`--ak-alg`): a new AK's type (RSA when
    /// absent), and, when given, the type an existing one must have.
    pub alg: Option<AkAlg>,
    /// The qualifying data.
    pub nonce: &'a [u8],
    /// The PCRs to quote.
    pub selection: &'a [PcrRequest],
    /// The `TPMT_PUBLIC` in `--ak-dir`'s `ak.pub`, when there is one: used
    /// instead of a ReadPublic when its name is the TPM's.
    pub cached_public: Option<Vec<u8>>,
}

/// A checked quote, ready to be written.
#[derive(Debug, Clone)]
pub struct QuoteOutput {
    /// The AK that signed.
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

impl QuoteOutput {
    /// The files of the quote directory ([`super::evidence`]).
    pub fn files(&self, nonce: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>, Tpm2bError> {
        let mut files = vec![
            (QUOTE_MSG, self.attest.clone()),
            (QUOTE_SIG, self.signature.clone()),
            (QUOTE_PCRS, self.pcrs.clone()),
            (AK_PEM, self.ak.pem().into_bytes()),
            (AK_PUB, self.ak.tpm2b_public()?),
            (NONCE, format!("{}\n", hex::lower(nonce)).into_bytes()),
        ];
        if let Some(log) = &self.log {
            files.push((QUOTE_LOG, log.clone()));
        }
        Ok(files)
    }
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
    match found {
        None => create_ak(tpm, h, req.alg.unwrap_or(AkAlg::Rsa)),
        Some(name) => existing_ak(tpm, req, &name),
    }
}

/// Makes the AK at the free handle `h`.
fn create_ak<T: AttestTpm + ?Sized>(tpm: &mut T, h: u32, alg: AkAlg) -> Result<Ak, QuoteError> {
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
    let ak = Ak::from_public(h, &area.public, true).map_err(QuoteError::CreatedInvalid)?;
    if ak.alg != alg || ak.name != area.name {
        return Err(QuoteError::CreatedOther {
            handle: h,
            tpm_name: area.name,
            public_name: ak.name,
        });
    }
    Ok(ak)
}

/// The AK already at the handle (named `name` by the TPM), checked.
fn existing_ak<T: AttestTpm + ?Sized>(
    tpm: &mut T,
    req: &QuoteRequest<'_>,
    name: &[u8],
) -> Result<Ak, QuoteError> {
    let h = req.handle;
    let (public, qualified_name) = match &req.cached_public {
        Some(c) if name_of(c) == name => (c.clone(), None),
        _ => {
            let area = tpm
                .read_persistent_public(h)
                .map_err(tpm_step(format!("reading the public area at {h:#010x}")))?;
            if name_of(&area.public) != area.name || area.name != name {
                return Err(QuoteError::NameMismatch(h));
            }
            (area.public, area.qualified_name)
        }
    };
    let refused = |why| QuoteError::AkRefused { handle: h, why };
    // What the object is first, then where it lives (the quote checks the
    // hierarchy again through its signer's qualified name).
    let ak = Ak::from_public(h, &public, false).map_err(|e| refused(Refusal::NotAnAk(e)))?;
    if let Some(qn) = qualified_name {
        if qn != endorsement_primary_qualified_name(&ak.name) {
            return Err(refused(Refusal::NotEndorsementPrimary));
        }
    }
    match req.alg {
        Some(wanted) if wanted != ak.alg => Err(QuoteError::AkAlgMismatch {
            handle: h,
            found: ak.alg,
            wanted,
        }),
        _ => Ok(ak),
    }
}

/// One quote, checked: done, or what changed under it.
enum Attempt {
    Done(Box<QuoteOutput>),
    Changed(Change),
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
        return Err(QuoteError::NonceLength(req.nonce.len()));
    }
    let start = tpm.attest_commands();
    let ak = resolve_ak(tpm, req)?;
    let mut attempts = 1;
    loop {
        match quote_once(tpm, req, &ak, read_log)? {
            Attempt::Done(mut q) => {
                q.attempts = attempts;
                q.commands = tpm.attest_commands().saturating_sub(start);
                return Ok(*q);
            }
            Attempt::Changed(what) if attempts >= QUOTE_ATTEMPTS => {
                return Err(QuoteError::Changed { what, attempts });
            }
            Attempt::Changed(what) => {
                log::info!("{what}: quoting again");
                attempts += 1;
            }
        }
    }
}

/// TPM2_Quote, TPM2_PCR_Read and the log around them, checked in the order
/// that sends no command after a quote that is not the one asked for.
fn quote_once<T: AttestTpm + ?Sized>(
    tpm: &mut T,
    req: &QuoteRequest<'_>,
    ak: &Ak,
    read_log: &mut dyn FnMut() -> Result<Option<Vec<u8>>, QuoteError>,
) -> Result<Attempt, QuoteError> {
    let log_before = read_log()?;
    let quoted = tpm
        .quote(req.handle, req.nonce, req.selection)
        .map_err(tpm_step(format!(
            "quoting with the AK at {:#010x}",
            req.handle
        )))?;
    let bad = QuoteError::BadQuote;
    let attest = parse_attest(&quoted.attest).map_err(|e| bad(QuoteFault::Format(e)))?;
    if attest.extra_data != req.nonce {
        return Err(bad(QuoteFault::Nonce(attest.extra_data)));
    }
    let want: Vec<BankSelection> = req
        .selection
        .iter()
        .map(BankSelection::of_request)
        .collect();
    if attest.pcr_select != want {
        return Err(bad(QuoteFault::Selection {
            got: super::selection::describe_selection(&attest.pcr_select),
            want: selection_text(req.selection),
        }));
    }
    let groups = tpm
        .pcr_read_groups(req.selection)
        .map_err(tpm_step("reading the quoted PCRs"))?;
    let log_after = read_log()?;
    if attest.qualified_signer != endorsement_primary_qualified_name(&ak.name) {
        return Err(QuoteError::AkRefused {
            handle: req.handle,
            why: Refusal::SignerNotEndorsementPrimary,
        });
    }
    let sig = check_quote_signature(ak, &quoted)?;
    let pcrs = PcrValues::from_reads(req.selection, &groups)
        .and_then(|v| v.to_serialized())
        .map_err(QuoteError::PcrValues)?;
    let pcrs_changed = pcrs_changed(&attest, &sig, &pcrs)?;
    Ok(match (pcrs_changed, log_before == log_after) {
        (Some(change), _) => Attempt::Changed(change),
        (None, false) => Attempt::Changed(Change::Log),
        (None, true) => Attempt::Done(Box::new(QuoteOutput {
            ak: ak.clone(),
            attest: quoted.attest,
            signature: quoted.signature,
            pcrs,
            log: log_after,
            attempts: 0,
            commands: 0,
        })),
    })
}

/// The quote's signature, checked as `modseal attest` checks it.
fn check_quote_signature(ak: &Ak, quoted: &Quoted) -> Result<Signature, QuoteError> {
    let fault = QuoteError::BadQuote;
    let sig =
        parse_signature(&quoted.signature).map_err(|e| fault(QuoteFault::SignatureFormat(e)))?;
    check_signature(&ak.key, &sig, &quoted.attest).map_err(|e| fault(QuoteFault::Signature(e)))?;
    Ok(sig)
}

/// The PCR file as written, read back and checked against the quote as
/// `modseal attest` does: `None` when its values are the quoted ones, else
/// the change (a PCR extended between the quote and the read).
fn pcrs_changed(
    attest: &Attest,
    sig: &Signature,
    file: &[u8],
) -> Result<Option<Change>, QuoteError> {
    let values = parse_pcrs(file).map_err(QuoteError::PcrValues)?;
    let fault = QuoteError::BadQuote;
    let (_, bank) = digest_hash(sig).map_err(|e| fault(QuoteFault::Signature(e)))?;
    match check_pcr_digest(attest, &values, bank) {
        Ok(_) => Ok(None),
        Err(PcrDigestError::Digest {
            computed, quoted, ..
        }) => Ok(Some(Change::Pcrs {
            quoted,
            read: computed,
        })),
        Err(e) => Err(fault(QuoteFault::PcrSelection(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::ak::ak_template_prefix;
    use crate::tpm::marshal::{
        Writer, TPM_ALG_ECDSA, TPM_ALG_SHA256, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE,
    };
    use crate::tpm::{PcrBank, PublicArea};
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    #[test]
    fn handles() {
        assert_eq!(parse_handle("0x81010100").unwrap(), 0x8101_0100);
        assert_eq!(parse_handle("81000001").unwrap(), 0x8100_0001);
        for bad in ["0x81800000", "0x80000000", "0x1", "xyz", ""] {
            assert!(parse_handle(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_handle("0x80000001").unwrap_err().to_string(),
            "0x80000001 is not a persistent handle the owner can write (0x81000000-0x817fffff)"
        );
    }

    // -----------------------------------------------------------------------
    // The logic above the TPM, with a software model: an ECC AK it signs
    // with, PCRs it can extend between a quote and the read that follows.

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

    /// The 3-byte bitmap tpm2-tools and modseal select PCRs 0–23 with.
    fn bitmap(pcrs: &[u8]) -> [u8; 3] {
        let mut m = [0u8; 3];
        for &p in pcrs {
            m[usize::from(p / 8)] |= 1 << (p % 8);
        }
        m
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
            let mut p = Writer::new();
            p.bytes(&ak_template_prefix(AkAlg::Ecc));
            p.tpm2b(&bytes[1..33])
                .unwrap()
                .tpm2b(&bytes[33..65])
                .unwrap();
            p.into_bytes()
        }

        /// A quote's TPMS_ATTEST over `sel`, and the values it covers.
        fn attest(&self, nonce: &[u8], sel: &[PcrRequest]) -> Vec<u8> {
            let name = name_of(self.at_handle.as_ref().unwrap());
            let signer = self
                .signer
                .clone()
                .unwrap_or_else(|| endorsement_primary_qualified_name(&name));
            let mut a = Writer::new();
            a.u32(TPM_GENERATED_VALUE).u16(TPM_ST_ATTEST_QUOTE);
            a.tpm2b(&signer).unwrap().tpm2b(nonce).unwrap();
            a.bytes(&[0u8; 17]); // clockInfo
            a.bytes(&[0u8; 8]); // firmwareVersion
            a.u32(sel.len() as u32);
            let mut values = Vec::new();
            for (bank, pcrs) in sel {
                let pcrs: &[u8] = if self.unallocated { &[] } else { pcrs };
                a.u16(bank.alg_id()).u8(3).bytes(&bitmap(pcrs));
                values.extend(pcrs.iter().map(|&p| self.pcrs[usize::from(p)].clone()));
            }
            a.tpm2b(&crate::verify::algorithm::sha256(&values.concat()))
                .unwrap();
            a.into_bytes()
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
        fn quote(&mut self, _h: u32, nonce: &[u8], sel: &[PcrRequest]) -> Result<Quoted, TpmError> {
            self.commands += 1;
            let a = self.attest(nonce, sel);
            let sig: p256::ecdsa::Signature = self
                .key
                .sign_prehash(&crate::verify::algorithm::sha256(&a))
                .unwrap();
            let rs = sig.to_bytes();
            let mut s = Writer::new();
            s.u16(TPM_ALG_ECDSA).u16(TPM_ALG_SHA256);
            s.tpm2b(&rs[..32]).unwrap().tpm2b(&rs[32..]).unwrap();
            if self.races > 0 {
                self.races -= 1;
                self.pcrs[12] = PcrBank::Sha256.extend(&self.pcrs[12], &[1u8; 32]);
            }
            Ok(Quoted {
                attest: a,
                signature: s.into_bytes(),
            })
        }
        fn pcr_read_groups(&mut self, sel: &[PcrRequest]) -> Result<Vec<Vec<Vec<u8>>>, TpmError> {
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

    fn request<'a>(sel: &'a [PcrRequest], cached: Option<Vec<u8>>) -> QuoteRequest<'a> {
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
        let files = r.files(b"fresh nonce").unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [QUOTE_MSG, QUOTE_SIG, QUOTE_PCRS, AK_PEM, AK_PUB, NONCE]
        );
        assert_eq!(files[5].1, b"6672657368206e6f6e6365\n");
    }

    #[test]
    fn a_pcr_change_during_the_quote_is_retried_once_then_refused() {
        let sel = vec![(PcrBank::Sha256, vec![12])];
        let mut tpm = FakeTpm::new();
        tpm.races = 1;
        let q = make_quote(&mut tpm, &request(&sel, None), &mut no_log()).unwrap();
        assert_eq!(q.attempts, 2);
        let digest = parse_attest(&q.attest).unwrap().pcr_digest;
        assert_eq!(
            digest,
            crate::verify::algorithm::sha256(&tpm.pcrs[12]).to_vec()
        );
        tpm.races = 2;
        match make_quote(&mut tpm, &request(&sel, None), &mut no_log()) {
            Err(e @ QuoteError::Changed { .. }) => {
                let m = e.to_string();
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
            Err(e @ QuoteError::Changed { .. }) => {
                assert!(e.to_string().contains("event log changed"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        let mut broken = || {
            Err(QuoteError::LogRead(ReadError::NotRegular {
                path: "x".into(),
            }))
        };
        assert!(matches!(
            make_quote(&mut tpm, &request(&sel, None), &mut broken),
            Err(QuoteError::LogRead(_))
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
        assert!(matches!(e, QuoteError::AkRefused { .. }), "{e}");
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
}
