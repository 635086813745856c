//! `modseal enroll` and `modseal unseal`: the trust bundle's digest sealed in
//! the TPM, and checked against it.
//!
//! An enrollment is a directory of three files:
//! - `sealed.pub`, `sealed.priv`: the sealed data object, in tpm2-tools'
//!   TPM2B file format (`tpm2_load -u sealed.pub -r sealed.priv` loads it);
//! - `sealed.json`: what it was sealed to,
//!   `{"version":1,"bank":"sha256","pcrs":[12],"pcr_values":{"12":"…"},
//!   "policy_digest":"…","bundle_sha256":"…","srk":"primary","srk_template":"ecc-p256",
//!   "srk_name":"000b…"}`
//!   (`srk` is `primary` or `persistent:0x81000001`; a primary's
//!   `srk_template` is `ecc-p256` or `rsa-2048`, and RSA-2048 when absent, as
//!   in enrollments made before it was recorded; `srk_name` is that key's
//!   name at enrollment, `nameAlg || H(TPMT_PUBLIC)` in hex, and is required:
//!   the unseal salts its session only with a key of that name).
//!
//! Re-enrolling replaces the directory as a whole: the new files are written
//! and synced in a fresh directory beside it, which is then exchanged with the
//! old one in one `renameat2(RENAME_EXCHANGE)`; readers see the old set or the
//! new set, never a mix, and the old set stays usable until the new one is
//! complete.
//!
//! [`unseal_and_check`] is the check the boot flow runs: the policy digest is
//! recomputed from the current PCRs and compared with the enrolled one before
//! the TPM is asked, so a changed PCR is named without a failed authorization.

mod enroll;
mod error;
mod info;
mod layout;
mod unseal;

pub use enroll::{enroll, parse_pcr_values, prepare_enrollment_dir, read_bundle, write_enrollment};
pub use error::SealError;
pub use info::SealedInfo;
pub use layout::{MAX_BUNDLE, SEALED_JSON, SEALED_PRIV, SEALED_PUB};
pub use unseal::{load_enrollment, unseal_and_check, unseal_enrollment, Enrollment, UnsealFailure};
