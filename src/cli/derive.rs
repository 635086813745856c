//! `modseal keys derive`: the derived anchor of one kernel image, for the
//! dracut module to install into that kernel's initramfs.

use std::path::PathBuf;

use clap::Args;

use super::{usage_error, EXIT_FAIL};
use crate::image::derive::{derive_anchor, MAX_KERNEL_FILE};
use crate::trust::derived::{parse_derived, render_derived};

/// The arguments of `modseal keys derive`.
#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// The trust bundle: its kernel-signer certificates must have signed the image.
    #[arg(long, value_name = "BUNDLE")]
    pub trust: PathBuf,
    /// The kernel image (/boot/vmlinuz-KVER or /usr/lib/modules/KVER/vmlinuz).
    #[arg(long, value_name = "VMLINUZ")]
    pub kernel: PathBuf,
    /// The kernel release the image is (its modules directory's name).
    #[arg(long, value_name = "KVER")]
    pub release: String,
    /// Where to write the derived anchor (atomically); standard output if absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Verifies the image against the bundle's kernel signers, then writes its
/// built-in certificates; nothing is written when any step fails.
pub fn cmd_derive(a: DeriveArgs) -> u8 {
    let bundle = match std::fs::read(&a.trust)
        .map_err(|e| format!("{}: cannot read: {e}", a.trust.display()))
        .and_then(|b| crate::trust::read_bundle(&a.trust, &b).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => return usage_error(e),
    };
    if bundle.kernel_signers.is_empty() {
        return usage_error(format!(
            "{}: no kernel-signer certificate (modseal bundle --kernel-signer CA.pem)",
            a.trust.display()
        ));
    }
    let image = match crate::util::read::read_capped(&a.kernel, MAX_KERNEL_FILE) {
        Ok(i) => i,
        Err(e) => return usage_error(format!("{}: {e}", a.kernel.display())),
    };
    let derived = match derive_anchor(&image, &bundle.kernel_signers, &a.release) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "modseal: error: {}: {e}: its built-in keys are not trusted",
                a.kernel.display()
            );
            return EXIT_FAIL;
        }
    };
    let text = render_derived(&derived);
    // What the boot will read back must be what was verified here.
    if let Err(e) = parse_derived(&a.kernel, text.as_bytes()) {
        return usage_error(e);
    }
    eprintln!(
        "modseal: {}: signed by '{}' (Authenticode sha256 {}); {} built-in certificate(s): {}",
        a.kernel.display(),
        derived.image_signer,
        crate::util::hex::lower(&derived.kernel_sha256),
        derived.certs.len(),
        derived
            .certs
            .iter()
            .map(|c| format!("'{}'", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    super::output::emit_text(a.out.as_deref(), &text)
}
