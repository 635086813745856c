//! What modseal measures: one event-log record per boot stage, and the PCR
//! arithmetic that ties the log to the TPM.
//!
//! `record.rs` builds a stage's [`Content`] and its bytes in the log
//! ([`record_bytes`]), `log.rs` reads a log back ([`parse_records`]) and
//! appends to it ([`append`]), `replay.rs` computes the PCR value a log
//! implies ([`replay()`]) and says why it does not reach an expected one
//! ([`explain`]). Errors are [`MeasureError`].

mod error;
mod log;
mod record;
mod replay;
pub mod tcg;

pub use error::MeasureError;
pub use log::{append, parse_records, Record, MAX_LOG_SIZE, MAX_RECORDS};
pub use record::{
    digests, record_bytes, ConfigEntry, Content, DerivedCert, DerivedRecord, Mode, ModuleEntry,
    Stage, StageChecks, StageResult, UnsealOutcome, CONTENT_TYPE, CONTENT_VERSION, RS,
};
pub use replay::{explain, replay, Replay, MAX_PERMUTED};
