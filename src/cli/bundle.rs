//! `modseal bundle`: anchors and a denylist in modseal's trust-bundle format.

use std::path::PathBuf;

use clap::Args;

use super::usage_error;
use crate::trust::cert::Certificate;
use crate::trust::{parse_cert_file, render_bundle, Denylist, SealedMode, Settings};

/// The arguments of `modseal bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Anchor certificates (PEM or DER): modules verify against these. Repeatable.
    #[arg(
        long = "anchor",
        value_name = "FILE",
        required_unless_present = "kernel_signers"
    )]
    pub(crate) anchors: Vec<PathBuf>,
    /// Kernel-signer CAs (PEM or DER), e.g. /usr/share/shim/debian-uefi-ca.der:
    /// the dracut module trusts the keys built into a kernel image whose
    /// Authenticode signature chains to one of these, so a kernel update
    /// needs no new enrollment. Repeatable.
    #[arg(long = "kernel-signer", value_name = "FILE")]
    pub(crate) kernel_signers: Vec<PathBuf>,
    /// Deny a subject key identifier (hex, `:` allowed).
    #[arg(long, value_name = "HEX")]
    pub(crate) deny_key_id: Vec<String>,
    /// Deny a certificate serial number (hex).
    #[arg(long, value_name = "HEX")]
    pub(crate) deny_serial: Vec<String>,
    /// Deny a module file by its SHA-256 (hex).
    #[arg(long, value_name = "HEX")]
    pub(crate) deny_module_sha256: Vec<String>,
    /// Sealed mode: what a failing boot does (default enforce).
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) mode: Option<super::boot::ModeArg>,
    /// Sealed measurement PCR (default 12).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=23))]
    pub(crate) pcr: Option<u8>,
    /// Let rd.modseal= weaken the mode and rd.modseal.pcr= move the measurement.
    #[arg(long)]
    pub(crate) allow_weaken: bool,
    /// Allow a modprobe.d install/remove command, by its exact text. Repeatable.
    #[arg(long, value_name = "TEXT")]
    pub(crate) allow_install: Vec<String>,
    /// Output file (written atomically); standard output if absent.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// `modseal bundle`: every input is checked before anything is written.
pub fn cmd_bundle(args: BundleArgs) -> u8 {
    let (anchors, kernel_signers) = match (
        read_anchors(&args.anchors),
        read_anchors(&args.kernel_signers),
    ) {
        (Ok(a), Ok(k)) => (a, k),
        (Err(status), _) | (_, Err(status)) => return status,
    };
    let deny = match denylist(&args) {
        Ok(d) => d,
        Err(e) => return usage_error(e),
    };
    let settings = Settings {
        mode: match args.mode {
            Some(super::boot::ModeArg::Warn) => SealedMode::Warn,
            _ => SealedMode::Enforce,
        },
        pcr: args.pcr.unwrap_or(crate::trust::DEFAULT_SEALED_PCR),
        allow_weaken: args.allow_weaken,
        allow_install: args.allow_install.clone(),
        ..Settings::default()
    };
    if let Some(bad) = settings
        .allow_install
        .iter()
        .find(|t| t.contains('\n') || t.trim().is_empty())
    {
        return usage_error(format!("--allow-install {bad:?}: one non-empty line"));
    }
    let text = render_bundle(&anchors, &kernel_signers, &deny, &settings);
    super::output::emit_text(args.out.as_deref(), &text)
}

/// The anchors of every `--anchor` file; the first unreadable or unparsable
/// one is a usage error.
fn read_anchors(paths: &[PathBuf]) -> Result<Vec<Certificate>, u8> {
    let mut anchors = Vec::new();
    for a in paths {
        let bytes = std::fs::read(a)
            .map_err(|e| usage_error(format!("{}: cannot read: {e}", a.display())))?;
        anchors.extend(parse_cert_file(a, &bytes).map_err(usage_error)?);
    }
    Ok(anchors)
}

/// The `--deny-*` flags; the error names the flag and the value.
fn denylist(args: &BundleArgs) -> Result<Denylist, String> {
    let hex = |flag: &str, v: &str| {
        crate::util::hex::parse(v).ok_or_else(|| format!("--{flag} {v}: not hex"))
    };
    let mut deny = Denylist::default();
    for v in &args.deny_key_id {
        deny.key_ids.push(hex("deny-key-id", v)?);
    }
    for v in &args.deny_serial {
        deny.serials.push(hex("deny-serial", v)?);
    }
    for v in &args.deny_module_sha256 {
        let d = hex("deny-module-sha256", v)?;
        deny.module_sha256.push(
            d.try_into()
                .map_err(|_| format!("--deny-module-sha256 {v}: needs 64 hex digits"))?,
        );
    }
    Ok(deny)
}
