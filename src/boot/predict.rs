//! `predict`: the records a good boot will measure, built by the code that
//! builds a boot's ([`stage_content`]), so prediction and measurement cannot
//! drift.

use std::path::{Path, PathBuf};

use crate::measure::{Content, MeasureError, Mode, Stage, StageChecks, UnsealOutcome};
use crate::tpm::PcrBank;
use crate::trust::derived::DerivedAnchor;

use super::error::BootError;
use super::loaded::{config_checks, module_config};
use super::policy::sealed_mode;
use super::stage::{bundle_trust, stage_content, verify_tree, Findings};

/// What a boot will have: its trust bundle, untrusted certificates, module
/// tree and mode.
#[derive(Debug, Clone)]
pub struct PredictInput<'a> {
    /// The trust bundle's exact bytes (what the boot will unseal and hash).
    pub bundle: &'a [u8],
    /// Where the bundle was read from (for messages).
    pub trust_path: &'a Path,
    /// The module tree the boot will verify.
    pub modules: &'a Path,
    /// Untrusted certificates (config `certs`): files or directories.
    pub certs: &'a [PathBuf],
    /// The image's derived anchor, already checked against its kernel (a
    /// bundle with kernel signers; see `trust::derived`).
    pub derived: Option<&'a DerivedAnchor>,
    /// The mode the boot will run in (`None`: the bundle's sealed mode).
    pub mode: Option<Mode>,
    /// The image root the boot reads module configuration under (`None`:
    /// an image whose only module configuration is in the module tree).
    pub root: Option<&'a Path>,
    /// Verification threads.
    pub jobs: usize,
}

/// The contents a good boot measures for `stages`, in order: the unseal
/// succeeds and, at pre-pivot, every loaded module has a verified file. The
/// tree is verified once for all stages.
pub fn predicted_contents(
    input: &PredictInput<'_>,
    stages: &[Stage],
) -> Result<Vec<Content>, BootError> {
    let bundle =
        crate::trust::read_bundle(input.trust_path, input.bundle).map_err(BootError::Bundle)?;
    let mut trust = bundle_trust(input.trust_path, input.bundle).map_err(BootError::Bundle)?;
    for c in input.certs {
        trust.add_cert_path(c).map_err(BootError::Certs)?;
    }
    // As a boot does: the derived anchor counts only with kernel signers.
    let derived = input.derived.filter(|_| !bundle.kernel_signers.is_empty());
    trust
        .anchors
        .extend(derived.iter().flat_map(|d| d.certs.clone()));
    let reports = verify_tree(input.modules, &trust, &bundle.settings, input.jobs);
    let anchor = crate::verify::algorithm::sha256(input.bundle);
    // The same scan as a boot's, under the image root; without one, only
    // the module tree's own files (what a host run of `boot` also reads
    // from an empty system root).
    let files = match input.root {
        // The boot reads its module directory where the kernel's release
        // names it (`lib/modules/<release>`, through a `lib` link if the
        // image has one): the same path here, whatever `--modules` spells.
        Some(root) => {
            let release = input
                .modules
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            module_config(root, &super::system::kernel_module_dir(root, &release))
        }
        None => module_config(Path::new("/nonexistent-root"), input.modules),
    }
    .map_err(BootError::ModuleConfig)?;
    let (module_config, config_refused) = config_checks(&files, &bundle.settings);
    let mode = input.mode.unwrap_or_else(|| sealed_mode(&bundle.settings));
    Ok(stages
        .iter()
        .map(|&stage| {
            stage_content(Findings {
                stage,
                mode,
                anchor_sha256: Some(anchor),
                unseal: UnsealOutcome::Ok,
                anchors_loaded: !trust.anchors.is_empty(),
                derived,
                reports: &reports,
                modules_root: input.modules,
                unverified_loaded: Some(Vec::new()),
                checks: StageChecks {
                    ignored: Vec::new(),
                    module_config: module_config.clone(),
                    config_refused: config_refused.clone(),
                    loaded: Vec::new(),
                },
            })
        })
        .collect())
}

/// The PCR value in `bank` after extending `from` with each content's
/// digest, in order.
pub fn predicted_pcr(
    contents: &[Content],
    bank: PcrBank,
    from: &[u8],
) -> Result<Vec<u8>, BootError> {
    if from.len() != bank.digest_len() {
        return Err(MeasureError::StartLength {
            bank,
            len: from.len(),
        }
        .into());
    }
    let mut value = from.to_vec();
    for c in contents {
        value = bank.extend(&value, &bank.hash(&c.encode()?));
    }
    Ok(value)
}
