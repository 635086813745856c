//! The boot layer's one error type.

use std::path::PathBuf;

use crate::measure::MeasureError;
use crate::trust::TrustError;

/// Why a boot's settings could not be read or its records could not be
/// predicted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// The config file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The config file does not parse.
    #[error("{}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// The line at fault.
        source: ConfigError,
    },
    /// The kernel command line file cannot be read.
    #[error("{}: cannot read the kernel command line: {source}", path.display())]
    CmdlineRead {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
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
    /// The module-loading configuration cannot be read as kmod would.
    #[error("module configuration: {0}")]
    ModuleConfig(#[source] super::modprobe::ModprobeError),
}

/// Why a config file's text was refused; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A line that is not `key = value`.
    #[error("line {line}: expected 'key = value'")]
    Syntax {
        /// The line.
        line: usize,
    },
    /// A key this version does not know.
    #[error("line {line}: unknown setting '{key}'")]
    UnknownSetting {
        /// The line.
        line: usize,
        /// The key as written.
        key: String,
    },
    /// A path that must be absolute (the dracut module installs it at the
    /// same path in the image).
    #[error("line {line}: {key} = {value}: needs an absolute path")]
    RelativePath {
        /// The line.
        line: usize,
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
    },
}
