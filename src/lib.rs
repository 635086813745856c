//! modseal: verify Linux kernel module signatures the way the kernel does,
//! with trust anchors whose digest is sealed in the TPM.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod algorithm;
pub mod attest;
pub mod boot;
pub mod boot_cli;
pub mod cert;
pub mod chain;
pub mod cli;
pub mod decompress;
pub mod der;
pub mod enroll;
pub mod fsutil;
pub mod hex;
pub mod initramfs;
pub mod inspect;
pub mod kernel_image;
pub mod kmsg;
pub mod measure;
pub mod modsig;
pub mod pkcs7;
pub mod pubkey;
pub mod quote;
pub mod rsa_public;
pub mod tpm;
pub mod trust;
pub mod verify;
pub mod walk;
