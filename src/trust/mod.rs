//! Trust: certificates, chains to an anchor, the trust bundle and its denylist.

pub mod cert;
pub mod chain;
mod store;

pub use store::*;
