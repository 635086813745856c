//! `modseal verify`: module files and directory trees.

use std::path::PathBuf;

use clap::Args;

use super::output::print_reports;
use super::progress::{Bar, Position};
use super::{jobs, load_trust, options, usage_error, TrustArgs, EXIT_FAIL};

/// Below this many modules a run is over before a bar is worth drawing.
const BAR_MIN_MODULES: usize = 100;

/// The arguments of `modseal verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) jobs: Option<u16>,
    /// The kernel image the modules belong to: its built-in certificates become anchors once
    /// its Authenticode signature verifies against a kernel signer (a bundle's kernel-signer
    /// certificates, and every --trust certificate file), as the dracut module derives them.
    #[arg(long, value_name = "VMLINUZ")]
    pub(crate) kernel: Option<PathBuf>,
    /// Module files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

/// The certificates built into `kernel`, once its signature verifies
/// against the kernel signers among the `--trust` files.
fn kernel_anchors(
    trust: &[PathBuf],
    kernel: &std::path::Path,
) -> Result<Vec<crate::trust::cert::Certificate>, String> {
    let mut signers = Vec::new();
    for t in trust {
        let bytes = std::fs::read(t).map_err(|e| format!("{}: cannot read: {e}", t.display()))?;
        match crate::trust::read_bundle(t, &bytes) {
            Ok(b) => signers.extend(b.kernel_signers),
            Err(_) => {
                signers.extend(crate::trust::parse_cert_file(t, &bytes).map_err(|e| e.to_string())?)
            }
        }
    }
    let image = crate::util::read::read_capped(kernel, crate::image::derive::MAX_KERNEL_FILE)
        .map_err(|e| format!("{}: {e}", kernel.display()))?;
    let d = crate::image::derive::derive_anchor(&image, &signers, "")
        .map_err(|e| format!("{}: {e}", kernel.display()))?;
    eprintln!(
        "modseal: {}: signed by '{}'; trusting its {} built-in certificate(s): {}",
        kernel.display(),
        d.image_signer,
        d.certs.len(),
        d.certs
            .iter()
            .map(|c| format!("'{}'", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(d.certs)
}

/// `modseal verify`.
pub fn cmd_verify(args: VerifyArgs) -> u8 {
    let mut trust = match load_trust(&args.trust) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    if let Some(k) = &args.kernel {
        match kernel_anchors(&args.trust.trust, k) {
            Ok(certs) => trust.anchors.extend(certs),
            Err(e) => {
                eprintln!("modseal: error: {e}: its built-in keys are not trusted");
                return EXIT_FAIL;
            }
        }
    }
    let opts = options(&args.trust);
    let items = crate::image::walk::collect(&args.paths);
    let total = items.len();
    let bar = Bar::new(!args.json && total >= BAR_MIN_MODULES);
    let reports = crate::image::walk::verify_all(&items, &trust, &opts, jobs(args.jobs), &|done| {
        bar.tick(Position::Modules { done, total })
    });
    bar.clear();
    let tally = match print_reports(&reports, args.json) {
        Ok(t) => t,
        Err(status) => return status,
    };
    if reports.is_empty() {
        eprintln!("modseal: no module files found under the given paths");
        return EXIT_FAIL;
    }
    tally.status()
}
