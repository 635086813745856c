//! modseal: verify Linux kernel module signatures the way the kernel does,
//! with trust anchors whose digest is sealed in the TPM.
#![forbid(unsafe_code)]
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
