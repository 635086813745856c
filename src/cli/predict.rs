//! `modseal predict`: the PCR value a good boot will produce.

use std::path::PathBuf;

use clap::Args;

use super::boot::{jobs, ModeArg, StageArg};
use crate::boot::PredictInput;
use crate::cli::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::measure::{Mode, Stage};
use crate::tpm::PcrBank;
use crate::verify::Verdict;

/// `modseal predict`'s arguments.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The trust bundle the boot will use.
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: PathBuf,
    /// The module tree the boot will verify.
    #[arg(long, value_name = "DIR")]
    pub modules: PathBuf,
    /// The mode the boot runs in (default: the one the bundle seals).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// The unpacked image root: its modprobe.d/modules-load.d files are read as the boot reads
    /// them (without it: an image whose only module configuration is in the module tree).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The PCR (for the output line; the value does not depend on it).
    #[arg(long, value_name = "N", default_value_t = crate::boot::DEFAULT_PCR)]
    pub pcr: u8,
    /// PCR value before the boot's records (default: all zero).
    #[arg(long, value_name = "HEX")]
    pub from: Option<String>,
    // A doc comment here would become this argument's --help text, kept as it is.
    #[allow(missing_docs)]
    #[arg(long, default_value = "sha256", value_name = "BANK")]
    pub bank: String,
    /// Stages the boot runs, in order (repeatable; default: early).
    #[arg(long = "stage", value_enum)]
    pub stages: Vec<StageArg>,
    /// Untrusted certificates the boot has (config `certs`): file or directory. Repeatable.
    #[arg(long = "cert", value_name = "PATH")]
    pub certs: Vec<PathBuf>,
    /// The kernel image the boot runs, for a bundle with kernel signers: its Authenticode
    /// signature is checked against them and its built-in certificates are the derived
    /// anchor the boot records.
    #[arg(long, value_name = "VMLINUZ")]
    pub kernel: Option<PathBuf>,
    /// The kernel release the boot runs, as the derived anchor names it (default: the
    /// --modules directory's name).
    #[arg(long, value_name = "KVER", requires = "kernel")]
    pub release: Option<String>,
}

/// `--from HEX`, or all zero: a PCR value of `bank`.
pub(super) fn parse_from(from: Option<&str>, bank: PcrBank) -> Result<Vec<u8>, String> {
    match from {
        None => Ok(vec![0; bank.digest_len()]),
        Some(h) => crate::util::hex::parse(h)
            .filter(|v| v.len() == bank.digest_len())
            .ok_or_else(|| {
                format!(
                    "--from: needs {} hex digits for {bank}",
                    bank.digest_len() * 2
                )
            }),
    }
}

/// The derived anchor of `kernel` under the bundle's kernel signers.
fn derive_for(
    a: &PredictArgs,
    bundle: &[u8],
    kernel: &std::path::Path,
) -> Result<crate::trust::derived::DerivedAnchor, String> {
    let b = crate::trust::read_bundle(&a.trust, bundle).map_err(|e| e.to_string())?;
    if b.kernel_signers.is_empty() {
        return Err(format!(
            "--kernel: {} has no kernel-signer certificate",
            a.trust.display()
        ));
    }
    let image = crate::util::read::read_capped(kernel, crate::image::derive::MAX_KERNEL_FILE)
        .map_err(|e| format!("{}: {e}", kernel.display()))?;
    let release = a.release.clone().unwrap_or_else(|| {
        a.modules
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    crate::image::derive::derive_anchor(&image, &b.kernel_signers, &release)
        .map_err(|e| format!("{}: {e}", kernel.display()))
}

/// Runs `modseal predict`.
pub fn cmd_predict(a: PredictArgs) -> u8 {
    let Some(bank) = PcrBank::from_name(&a.bank) else {
        eprintln!("modseal: error: --bank {}: unknown bank", a.bank);
        return EXIT_USAGE;
    };
    let from = match parse_from(a.from.as_deref(), bank) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("modseal: error: {e}");
            return EXIT_USAGE;
        }
    };
    let bundle = match std::fs::read(&a.trust) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("modseal: error: {}: cannot read: {e}", a.trust.display());
            return EXIT_USAGE;
        }
    };
    let stages: Vec<Stage> = if a.stages.is_empty() {
        vec![Stage::Early]
    } else {
        a.stages.iter().map(|&s| s.into()).collect()
    };
    let derived = match a.kernel.as_deref().map(|k| derive_for(&a, &bundle, k)) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            eprintln!("modseal: error: {e}");
            return EXIT_FAIL;
        }
    };
    let input = PredictInput {
        bundle: &bundle,
        trust_path: &a.trust,
        modules: &a.modules,
        certs: &a.certs,
        derived: derived.as_ref(),
        mode: a.mode.map(Mode::from),
        root: a.root.as_deref(),
        jobs: jobs(),
    };
    let contents = match crate::boot::predicted_contents(&input, &stages) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("modseal: error: {e}");
            return EXIT_USAGE;
        }
    };
    for content in contents.iter().filter(|c| !c.passed()) {
        let bad = content
            .modules
            .iter()
            .filter(|m| m.verdict != Verdict::Ok)
            .count();
        eprintln!(
            "modseal: warning: {bad} module(s) and {} configuration command(s) would fail; the prediction is of a failing boot",
            content.config_refused.len()
        );
    }
    let value = match crate::boot::predicted_pcr(&contents, bank, &from) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("modseal: error: {e}");
            return EXIT_FAIL;
        }
    };
    println!("{}", crate::util::hex::lower(&value));
    eprintln!(
        "modseal: predicted PCR {} ({bank}) after the boot's records",
        a.pcr
    );
    EXIT_OK
}
