//! Trust: certificates, chains to an anchor, the trust bundle and its denylist.

pub mod cert;
pub mod chain;
pub mod derived;
mod error;
mod settings;
mod store;

pub use error::*;
pub use settings::{render_settings, SealedMode, Settings, DEFAULT_SEALED_PCR, MAX_ALLOW_INSTALL};
pub use store::*;
