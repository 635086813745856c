//! Remote attestation, both halves, sharing one parser per format.
//!
//! `modseal quote` ([`quote`]) runs on the attested machine: a TPM quote
//! over the PCRs modseal measures, signed by an attestation key
//! ([`ak`]), written as tpm2-tools writes it ([`evidence`]).
//!
//! `modseal attest` ([`check`]) is the verifier's half. No TPM is needed:
//! from a quote, the trusted attestation key, the verifier's nonce, the
//! event log and a policy ([`policy`]) it decides whether the machine booted
//! with every initramfs module verified against the expected trust anchors,
//! from the kernel and the initrd the policy allows (the firmware's event
//! log: [`firmware`], [`boot_chain`]), and names the first thing that says
//! otherwise ([`report`]).
//!
//! The quote's files are read by one parser each, which the producer also
//! runs on what it writes: [`quote_msg`] (`TPMS_ATTEST`), [`signature`]
//! (`TPMT_SIGNATURE` and its check), [`pcrs`] (`quote.pcrs`), over the TPM
//! marshalling of [`crate::tpm::marshal`]; one [`nonce`] parser serves
//! both commands. Why a log does not replay to a quoted value is
//! [`crate::measure::explain`]'s to say.
//!
//! Exit status of `modseal attest`: 0 trusted, 1 not trusted, 2 bad input.

pub mod ak;
pub mod boot_chain;
pub mod check;
pub mod evidence;
pub mod firmware;
pub mod nonce;
pub mod pcrs;
pub mod policy;
pub mod quote;
pub mod quote_msg;
pub mod report;
pub mod selection;
pub mod signature;

#[cfg(test)]
mod fixtures;

pub use ak::{load_ak, parse_ak, Ak, AkAlg};
pub use check::{evaluate, BadInput};
pub use evidence::{read_evidence, Evidence};
pub use nonce::{parse_nonce, NonceError, MAX_NONCE};
pub use pcrs::{check_pcr_digest, parse_pcrs, PcrValues};
pub use quote::{make_quote, QuoteError, QuoteOutput, QuoteRequest};
pub use quote_msg::{parse_attest, Attest};
pub use report::{render_text, Report};
pub use signature::{check_signature, parse_signature, Signature};
