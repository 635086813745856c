//! An enrollment directory's files, and the sizes read.

/// File name of the sealed object's public area in an enrollment directory.
pub const SEALED_PUB: &str = "sealed.pub";
/// File name of the sealed object's private area in an enrollment directory.
pub const SEALED_PRIV: &str = "sealed.priv";
/// File name of what the enrollment was sealed to.
pub const SEALED_JSON: &str = "sealed.json";
pub(crate) const SEALED_FILES: [&str; 3] = [SEALED_PUB, SEALED_PRIV, SEALED_JSON];
/// Largest `sealed.json` read.
pub(crate) const MAX_SEALED_JSON: usize = 64 * 1024;
/// Largest trust bundle hashed (the trust store applies its own limit too).
pub const MAX_BUNDLE: usize = 16 * 1024 * 1024;
