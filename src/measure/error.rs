//! The measure layer's one error type.

use crate::tpm::PcrBank;

/// Why a record could not be made, or a log could not be read or replayed.
///
/// Every variant about a log names the record (1-based `index`): a log that
/// cannot be read completely cannot be trusted partly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// A stage's content did not serialize: nothing may be hashed or
    /// measured in its place.
    #[error("cannot serialize the stage record: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The log is larger than the limit ([`super::MAX_LOG_SIZE`]).
    #[error("log is {size} bytes, more than the {limit}-byte limit")]
    LogTooLarge {
        /// The log's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A non-empty log must start with RFC 7464's record separator.
    #[error("log does not start with a record separator (0x1E)")]
    NoSeparator,
    /// The log holds more records than the limit ([`super::MAX_RECORDS`]).
    #[error("more than {limit} records")]
    TooManyRecords {
        /// The limit.
        limit: usize,
    },
    /// A record is not UTF-8 text.
    #[error("record {index}: not UTF-8")]
    NotUtf8 {
        /// The record.
        index: usize,
    },
    /// A record does not end in a newline: the write was cut short.
    #[error("record {index}: truncated (no final newline)")]
    Truncated {
        /// The record.
        index: usize,
    },
    /// A record is not the JSON object of the log's format.
    #[error("record {index}: {source}")]
    Json {
        /// The record.
        index: usize,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// A record names a PCR above 23.
    #[error("record {index}: PCR {pcr} out of range")]
    PcrOutOfRange {
        /// The record.
        index: usize,
        /// The PCR it names.
        pcr: u8,
    },
    /// A digest names a hash algorithm that is not a PCR bank.
    #[error("record {index}: unknown hashAlg '{name}'")]
    UnknownHashAlg {
        /// The record.
        index: usize,
        /// The `hashAlg` as written.
        name: String,
    },
    /// A digest is not hex of the bank's digest length.
    #[error("record {index}: bad {bank} digest")]
    BadDigest {
        /// The record.
        index: usize,
        /// The digest's bank.
        bank: PcrBank,
    },
    /// A bank's digest appears twice in one record.
    #[error("record {index}: {bank} digest repeated")]
    RepeatedDigest {
        /// The record.
        index: usize,
        /// The repeated bank.
        bank: PcrBank,
    },
    /// A record labelled modseal whose content is not a modseal content.
    #[error("record {index}: content: {source}")]
    Content {
        /// The record.
        index: usize,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
    /// A record without any digest.
    #[error("record {index}: no digests")]
    NoDigests {
        /// The record.
        index: usize,
    },
    /// A digest is not the hash of the record's content: the record was
    /// edited.
    #[error("record {index}: {bank} digest does not match the content")]
    DigestMismatch {
        /// The record.
        index: usize,
        /// The bank whose digest differs.
        bank: PcrBank,
    },
    /// A replay in `bank` met a record without a digest in that bank.
    #[error("record {index}: no {bank} digest")]
    MissingBank {
        /// The record.
        index: usize,
        /// The bank replayed.
        bank: PcrBank,
    },
    /// A replay was asked to start from a value that is not a `bank` digest.
    #[error("the starting {bank} PCR value is {len} bytes, not {}", bank.digest_len())]
    StartLength {
        /// The bank replayed.
        bank: PcrBank,
        /// The starting value's length.
        len: usize,
    },
}
