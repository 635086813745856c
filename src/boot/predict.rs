//! `predict`: the records a good boot will measure, built by the code that
//! builds a boot's ([`stage_content`]), so prediction and measurement cannot
//! drift.

use std::path::{Path, PathBuf};

use crate::measure::{Content, MeasureError, Mode, Stage, UnsealOutcome};
use crate::tpm::PcrBank;

use super::error::BootError;
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
    /// The mode the boot will run in.
    pub mode: Mode,
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
    let mut trust = bundle_trust(input.trust_path, input.bundle).map_err(BootError::Bundle)?;
    for c in input.certs {
        trust.add_cert_path(c).map_err(BootError::Certs)?;
    }
    let reports = verify_tree(input.modules, &trust, input.jobs);
    let anchor = crate::verify::algorithm::sha256(input.bundle);
    Ok(stages
        .iter()
        .map(|&stage| {
            stage_content(Findings {
                stage,
                mode: input.mode,
                anchor_sha256: Some(anchor),
                unseal: UnsealOutcome::Ok,
                anchors_loaded: !trust.anchors.is_empty(),
                reports: &reports,
                modules_root: input.modules,
                unverified_loaded: (stage == Stage::PrePivot).then(Vec::new),
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
