//! `modseal keys`: certificates out of a kernel image.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{usage_error, EXIT_FAIL, EXIT_OK};
use crate::image::authenticode::verify_image;
use crate::image::kernel_image::extract_certificates;
use crate::trust::cert::Certificate;
use crate::trust::TrustStore;

/// The subcommands of `modseal keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the X.509 certificates built into a kernel image (bzImage with a gzip, xz, zstd or lz4 payload, or vmlinux) as PEM.
    FromKernel {
        // A doc comment would become this argument's help text, which stays
        // as it is (the help output is part of the interface).
        #[allow(missing_docs)]
        #[arg(value_name = "VMLINUZ")]
        image: PathBuf,
        /// Print the certificates only if the image's Authenticode signature verifies against this Secure Boot CA (PEM or DER; may be repeated)
        #[arg(long, value_name = "CA.pem")]
        signer: Vec<PathBuf>,
    },
    /// Write the derived anchor of a kernel image: its built-in certificates, once its Authenticode signature verifies against the trust bundle's kernel-signer CAs (what the dracut module installs as /etc/modseal/derived-anchor).
    Derive(super::derive::DeriveArgs),
}

/// `modseal keys …`.
pub fn cmd_keys(cmd: KeysCommand) -> u8 {
    match cmd {
        KeysCommand::FromKernel { image, signer } => from_kernel(&image, &signer),
        KeysCommand::Derive(a) => super::derive::cmd_derive(a),
    }
}

/// PEM on standard output, each certificate's name on standard error (the
/// PEM stays pipeable into a file of anchors).
fn from_kernel(image: &Path, signers: &[PathBuf]) -> u8 {
    let bytes = match std::fs::read(image) {
        Ok(b) => b,
        Err(e) => return usage_error(format!("{}: cannot read: {e}", image.display())),
    };
    if !signers.is_empty() {
        if let Err(code) = check_signature(image, &bytes, signers) {
            return code;
        }
    }
    let certs = match extract_certificates(&bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", image.display());
            return EXIT_FAIL;
        }
    };
    let mut out = std::io::stdout().lock();
    for der in &certs {
        let name = Certificate::from_der(der)
            .map(|c| c.name)
            .unwrap_or_default();
        eprintln!("modseal: {}: certificate '{name}'", image.display());
        if write!(out, "{}", crate::util::pem::encode("CERTIFICATE", der)).is_err() {
            return EXIT_FAIL;
        }
    }
    EXIT_OK
}

/// `--signer`: the image's Authenticode signature against the CAs, before
/// anything is printed. Err is the exit status.
fn check_signature(image: &Path, bytes: &[u8], signers: &[PathBuf]) -> Result<(), u8> {
    let mut cas = TrustStore::default();
    for path in signers {
        if let Err(e) = cas.add_trust_file(path) {
            return Err(usage_error(e));
        }
    }
    match verify_image(bytes, &cas.anchors) {
        Ok(signed) => {
            eprintln!(
                "modseal: {}: Authenticode signature verified: signer '{}', issued by '{}' ({} {})",
                image.display(),
                signed.signer.name,
                signed.anchor.name,
                signed.digest_algo,
                crate::util::hex::lower(&signed.digest)
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", image.display());
            Err(EXIT_FAIL)
        }
    }
}
