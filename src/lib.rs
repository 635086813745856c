//! modseal: verify Linux kernel module signatures the way the kernel does,
//! with trust anchors whose digest is sealed in the TPM.
//!
//! The crate is one library in layers, each a folder that imports only from
//! its own layer or the ones listed before it, never upward:
//!
//! [`util`] is the bottom: hex, the PEM writer, the capped file reader
//! ([`util::read`]), atomic writes and the kernel log sink; one of each.
//!
//! [`verify`] is the engine: the signature trailer the kernel appends
//! (`kernel/module_signature.c`), DER, PKCS#7, the hash and signature
//! algorithms, public keys and the [`Verdict`] for one uncompressed module
//! ([`verify_module`]). [`trust`] beside it holds certificates, chains to an
//! anchor and the [`TrustStore`]: anchors, intermediates and the denylist of a
//! trust bundle. Both are pure: they parse byte slices and do no I/O beyond
//! reading the trust files they are named.
//!
//! [`image`] reads files as they are stored: one decompression table for
//! modules, kernel payloads and initramfs members ([`Compression`]), the
//! certificates built into a kernel image, initramfs archives (cpio, PE) and
//! module trees; [`verify_bytes`] and [`verify_file`] check a stored module.
//!
//! [`tpm`] is the TPM behind narrow traits, with the tss-esapi backend.
//! [`measure`] is what modseal measures: the stage record, the event log and
//! its replay. [`seal`] seals the trust bundle's digest in the TPM and checks
//! it at boot. [`boot`] is the initramfs flow (unseal, verify, reconcile,
//! measure) and [`attest`] the remote verifier's half: a quote, its evidence
//! files and the policy it is judged by, read through [`measure`], never
//! [`boot`].
//!
//! [`cli`] is the top and the only place that knows the command line, exit
//! statuses and printing; the `modseal` binary is a thin wrapper around it.
//!
//! # Example
//!
//! Checking a module held in memory against a trust store (here an empty one,
//! and bytes with no signature appended):
//!
//! ```
//! use modseal::{verify_bytes, Compression, Options, TrustStore, Verdict};
//!
//! let trust = TrustStore::default();
//! // On a real system: trust.add_trust_file(Path::new("/etc/modseal/trust.bundle"))?
//! let report = verify_bytes(b"\x7fELF...", Compression::None, "m.ko", &trust, &Options::default());
//! assert_eq!(report.verdict, Verdict::Unsigned);
//! assert_eq!(report.verdict.to_string(), "unsigned");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod util;

pub mod trust;
pub mod verify;

pub mod image;

pub mod tpm;

pub mod measure;
pub mod seal;

pub mod boot;

pub mod attest;

pub mod cli;

pub use crate::image::compression::Compression;
pub use crate::image::kernel_image::extract_certificates;
pub use crate::image::module::{inspect_bytes, verify_bytes, verify_file};
pub use crate::tpm::PcrBank;
pub use crate::trust::cert::Certificate;
pub use crate::trust::{Denylist, TrustError, TrustStore};
pub use crate::verify::inspect::Inspection;
pub use crate::verify::{verify_module, Options, Report, Verdict};
