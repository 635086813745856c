//! The seal layer's error type for enrolling and for reading `sealed.json`
//! (an unseal's failures are [`super::UnsealFailure`], whose names are
//! measured).

use std::path::PathBuf;

use crate::tpm::{PcrBank, TpmError};
use crate::trust::TrustError;
use crate::util::fs::ReplaceDirError;
use crate::util::read::ReadError;

/// Why an enrollment could not be made or `sealed.json` was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// `sealed.json` is not the JSON object modseal writes.
    #[error("not a modseal sealed.json: {0}")]
    Json(#[source] serde_json::Error),
    /// A `sealed.json` version this build does not read.
    #[error("version {0} is not supported (expected 1)")]
    Version(u32),
    /// A bank name that is not a PCR bank.
    #[error("unknown PCR bank '{0}'")]
    UnknownBank(String),
    /// No PCR to seal to.
    #[error("empty PCR list")]
    EmptyPcrList,
    /// A PCR index above 23.
    #[error("PCR {0} out of range (0-23)")]
    PcrOutOfRange(u8),
    /// The PCR list is not strictly ascending.
    #[error("PCR list must be ascending without repeats")]
    PcrOrder,
    /// A listed PCR without a value.
    #[error("no value for PCR {0}")]
    MissingValue(u8),
    /// Values for PCRs that are not listed.
    #[error("pcr_values has entries for PCRs not in the list: {}", .0.join(", "))]
    ExtraValues(Vec<String>),
    /// A field that must be hex of an exact length.
    #[error("{what}: expected {digits} hex digits")]
    Hex {
        /// The field.
        what: String,
        /// How many hex digits it takes.
        digits: usize,
    },
    /// The policy digest is not that of the PCR values.
    #[error("policy_digest {written} is not the PolicyPCR digest of pcr_values ({expected})")]
    PolicyMismatch {
        /// The digest as written.
        written: String,
        /// The digest of the values (hex).
        expected: String,
    },
    /// An `srk` field that is not a storage root key modseal uses.
    #[error("srk '{0}': expected 'primary' or 'persistent:0x81xxxxxx'")]
    Srk(String),
    /// An `srk_template` that is not a template modseal makes.
    #[error("srk_template '{0}': expected 'ecc-p256' or 'rsa-2048'")]
    SrkTemplate(String),
    /// An `srk_template` beside a persistent SRK.
    #[error("srk_template with srk '{0}': only a primary SRK is made from a template (a persistent one is known by its srk_name)")]
    SrkTemplateNotPrimary(String),
    /// No `srk_name`: an enrollment written before modseal pinned the SRK.
    #[error("no srk_name: this enrollment predates pinning the storage root key's name, without which something on the TPM bus could choose the key the unseal's session is salted with; re-run 'modseal enroll'")]
    NoSrkName,
    /// An `srk_name` that is not an object's name in hex.
    #[error("srk_name '{0}': expected a name in hex (name algorithm and digest, e.g. 000b and 64 hex digits for sha256)")]
    SrkName(String),
    /// A `--pcr-value` that is not `IDX=HEX`.
    #[error("--pcr-value {0}: expected IDX=HEX")]
    PcrValueSyntax(String),
    /// A `--pcr-value` whose index is not a PCR.
    #[error("--pcr-value {option}: '{index}' is not a PCR index (0-23)")]
    PcrValueIndex {
        /// The option's value.
        option: String,
        /// The index as written.
        index: String,
    },
    /// A `--pcr-value` for a PCR not sealed to.
    #[error("--pcr-value {option}: PCR {pcr} is not in --pcrs")]
    PcrValueNotListed {
        /// The option's value.
        option: String,
        /// The PCR.
        pcr: u8,
    },
    /// A `--pcr-value` whose value is not a digest of the bank.
    #[error("--pcr-value {option}: expected {} hex digits (a {bank} PCR value)", bank.digest_len() * 2)]
    PcrValueHex {
        /// The option's value.
        option: String,
        /// The policy's bank.
        bank: PcrBank,
    },
    /// Two `--pcr-value`s for one PCR.
    #[error("--pcr-value: PCR {0} given twice")]
    PcrValueTwice(u8),
    /// The trust bundle cannot be read.
    #[error(transparent)]
    BundleRead(#[from] ReadError),
    /// The trust bundle is not a bundle or certificate file.
    #[error(transparent)]
    Bundle(#[from] TrustError),
    /// The trust bundle changed between the check and the read sealed.
    #[error("{}: changed while being read", .0.display())]
    BundleChanged(PathBuf),
    /// The output directory cannot hold an enrollment.
    #[error(transparent)]
    OutDir(ReplaceDirError),
    /// The current PCR values could not be read.
    #[error("reading the current PCR values: {0}")]
    PcrRead(#[source] TpmError),
    /// The TPM answered a PCR read with values of the wrong number or size.
    #[error("reading the current PCR values: the TPM returned {0}")]
    PcrReadShape(String),
    /// The TPM refused to seal.
    #[error("sealing: {0}")]
    Seal(#[source] TpmError),
}
