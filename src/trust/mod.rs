//! Trust: certificates, chains to an anchor, the trust bundle and its denylist.

pub mod cert;
pub mod chain;
mod error;
mod store;

pub use error::*;
pub use store::*;
