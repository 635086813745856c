//! The boot layer's one error type.

use crate::measure::MeasureError;
use crate::trust::TrustError;

/// Why a boot's settings were refused or its record could not be predicted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// A config line that is not `key = value` (`line` is 1-based).
    #[error("line {line}: expected 'key = value'")]
    ConfigSyntax {
        /// The line.
        line: usize,
    },
    /// A config key this version does not know.
    #[error("line {line}: unknown setting '{key}'")]
    ConfigUnknown {
        /// The line.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// A known config key with a value it does not take.
    #[error("line {line}: {key}: {expected}")]
    ConfigValue {
        /// The line.
        line: usize,
        /// The key.
        key: String,
        /// What the value must be.
        expected: &'static str,
    },
    /// The trust bundle does not parse.
    #[error("{0}")]
    Bundle(#[source] TrustError),
    /// An untrusted certificate file or directory does not load.
    #[error("{0}")]
    Certs(#[source] TrustError),
    /// The record cannot be made.
    #[error(transparent)]
    Record(#[from] MeasureError),
}
