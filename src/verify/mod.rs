//! The engine: the module signature trailer, DER, PKCS#7, algorithms, public
//! keys, the RSA operation and the verdict for one module.

pub mod algorithm;
pub mod build_id;
mod check;
pub mod der;
mod ecdsa;
mod error;
pub mod inspect;
pub mod mldsa;
pub mod modsig;
pub mod pkcs7;
pub mod pubkey;
pub mod rsa_public;
mod verdict;

pub use check::{
    message_certificates, signature_family, signer_key, supported_hash, verify_module,
    MAX_MODULE_SIZE,
};
pub use error::Error;
pub use verdict::{Options, Report, Verdict};
