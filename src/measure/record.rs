//! One record: a stage's content, its digests and its bytes in the log.
//!
//! The log is RFC 7464 JSON text sequences in the shape of systemd's
//! `tpm2-measure.log`: each record is `0x1E`, one JSON object, `\n`:
//!
//! ```text
//! {"pcr":12,"digests":[{"hashAlg":"sha256","digest":"<hex>"},…],"content_type":"modseal","content":{…}}
//! ```
//!
//! Each digest is the bank's hash of the exact bytes of the `content` value as
//! they appear in the record, and the PCR is extended with it, so a verifier
//! trusts nothing in a record that the digests do not cover.

use serde::{Deserialize, Serialize};

use crate::tpm::PcrBank;
use crate::verify::{Report, Verdict};

use super::error::MeasureError;

/// RFC 7464 record separator.
pub const RS: u8 = 0x1e;
/// The `content_type` of modseal's records.
pub const CONTENT_TYPE: &str = "modseal";
/// The `version` of the content this build writes and reads.
pub const CONTENT_VERSION: u32 = 2;

/// The boot stage a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before udev: every module file in the initramfs.
    Early,
    /// Before the switch to the real root: files again, plus loaded modules.
    PrePivot,
}

/// How a stage treats a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A failure stops the boot.
    Enforce,
    /// A failure is measured and logged; the boot goes on.
    Warn,
}

impl Stage {
    /// The name records and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Early => "early",
            Stage::PrePivot => "pre-pivot",
        }
    }
}

impl Mode {
    /// The name records and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
        }
    }
}

/// A stage's overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageResult {
    /// Every check passed.
    Pass,
    /// At least one check failed.
    Fail,
}

impl StageResult {
    /// The name records and reports use.
    pub fn name(self) -> &'static str {
        match self {
            StageResult::Pass => "pass",
            StageResult::Fail => "fail",
        }
    }
}

/// What the unseal of the trust bundle's digest came to: `ok`, or the named
/// failure (the names of `seal::UnsealFailure`, plus `bundle-unreadable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsealOutcome {
    /// The sealed digest is the bundle's SHA-256.
    Ok,
    /// The trust bundle could not be read, so nothing was unsealed.
    BundleUnreadable,
    /// No TPM at the TCTI.
    NoTpm,
    /// The PCRs differ from the enrolled state.
    PcrChanged,
    /// The sealed object does not load or is not what modseal makes.
    BadObject,
    /// The unsealed digest is not the bundle's SHA-256.
    DigestMismatch,
    /// The TPM is in dictionary-attack lockout.
    Lockout,
    /// Any other TPM failure.
    TpmError,
    /// The enrollment files cannot be read.
    Io,
    /// `sealed.json` is malformed or inconsistent.
    Invalid,
}

impl UnsealOutcome {
    /// The name records and reports use.
    pub fn name(self) -> &'static str {
        match self {
            UnsealOutcome::Ok => "ok",
            UnsealOutcome::BundleUnreadable => "bundle-unreadable",
            UnsealOutcome::NoTpm => "no-tpm",
            UnsealOutcome::PcrChanged => "pcr-changed",
            UnsealOutcome::BadObject => "bad-object",
            UnsealOutcome::DigestMismatch => "digest-mismatch",
            UnsealOutcome::Lockout => "lockout",
            UnsealOutcome::TpmError => "tpm-error",
            UnsealOutcome::Io => "io",
            UnsealOutcome::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for UnsealOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for StageResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One module as measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleEntry {
    /// Path relative to the modules directory.
    pub path: String,
    /// SHA-256 of the module file as read (hex), when it could be read.
    pub sha256: Option<String>,
    /// The signer's key identifier (hex), when the signature names one.
    pub key_id: Option<String>,
    /// The signature's hash algorithm, when known.
    pub hash_algo: Option<String>,
    /// What the verification concluded.
    pub verdict: Verdict,
    /// Present only for failures, so a good boot's content is predictable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A derived anchor as measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedRecord {
    /// The kernel release it was made for.
    pub release: String,
    /// The kernel image's Authenticode SHA-256 (hex): its PCR 4 digest.
    pub kernel_sha256: String,
    /// The certificates built into that image.
    pub certs: Vec<DerivedCert>,
}

/// One certificate of a derived anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedCert {
    /// SHA-256 of its DER (hex).
    pub sha256: String,
    /// Its readable name.
    pub subject: String,
    /// Its subject key identifier (hex; empty when it has none).
    pub key_id: String,
}

impl DerivedRecord {
    /// The record of `d`.
    pub fn of(d: &crate::trust::derived::DerivedAnchor) -> Self {
        use crate::util::hex::lower;
        DerivedRecord {
            release: d.release.clone(),
            kernel_sha256: lower(&d.kernel_sha256),
            certs: d
                .certs
                .iter()
                .map(|c| DerivedCert {
                    sha256: lower(&crate::verify::algorithm::sha256(&c.der)),
                    subject: c.name.clone(),
                    key_id: c.skid.as_deref().map(lower).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// The measured content of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// [`CONTENT_VERSION`] when written by this build.
    pub version: u32,
    /// The stage measured.
    pub stage: Stage,
    /// The mode the stage ran in.
    pub mode: Mode,
    /// `pass` or `fail`.
    pub result: StageResult,
    /// SHA-256 of the trust bundle as read (confirmed only when `unseal` is `ok`).
    pub anchor_sha256: Option<String>,
    /// `ok`, or the named unseal failure.
    pub unseal: UnsealOutcome,
    /// The certificates taken from the kernel image at build time (a bundle
    /// with `kernel-signer` CAs only): not sealed, so a verifier checks them
    /// against the kernel the firmware measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_anchor: Option<DerivedRecord>,
    /// Every module file verified, sorted by path.
    pub modules: Vec<ModuleEntry>,
    /// Loaded modules without a verified file (empty when all are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_loaded: Option<Vec<String>>,
    /// Overrides from the config file, the command line or flags that the
    /// sealed policy does not allow, each ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Every module-loading configuration file read (`modprobe.d`,
    /// `modules-load.d`, `modules.softdep`/`weakdep`), sorted by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub module_config: Vec<ConfigEntry>,
    /// `install`/`remove` commands the sealed policy does not allow, and
    /// configuration that could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_refused: Vec<String>,
    /// What the kernel says is loaded that enforce mode does not accept
    /// (taint `E`/`F`, no verified file, the kernel's own taint bits).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaded: Vec<String>,
}

/// One module-loading configuration file as measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEntry {
    /// Path relative to the root it was read under.
    pub path: String,
    /// SHA-256 of its exact bytes (hex).
    pub sha256: String,
}

/// What a stage checked besides the module files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageChecks {
    /// See [`Content::ignored`].
    pub ignored: Vec<String>,
    /// See [`Content::module_config`].
    pub module_config: Vec<ConfigEntry>,
    /// See [`Content::config_refused`].
    pub config_refused: Vec<String>,
    /// See [`Content::loaded`].
    pub loaded: Vec<String>,
}

impl Content {
    /// Builds the content from verification reports, with paths made relative
    /// to `root` and sorted, so the same module set always gives the same bytes.
    pub fn new(
        stage: Stage,
        mode: Mode,
        anchor_sha256: Option<[u8; 32]>,
        unseal: UnsealOutcome,
        reports: &[Report],
        root: &str,
        unverified_loaded: Option<Vec<String>>,
    ) -> Self {
        let mut modules: Vec<ModuleEntry> = reports
            .iter()
            .map(|r| ModuleEntry {
                path: relative(&r.path, root),
                sha256: r.sha256.clone(),
                key_id: r.key_id.clone(),
                hash_algo: r.hash_algo.clone(),
                verdict: r.verdict,
                reason: (r.verdict != Verdict::Ok).then(|| r.reason.clone()),
            })
            .collect();
        modules.sort_by(|a, b| a.path.cmp(&b.path));
        let pass = unseal == UnsealOutcome::Ok
            && modules.iter().all(|m| m.verdict == Verdict::Ok)
            && unverified_loaded.as_ref().is_none_or(|u| u.is_empty());
        Content {
            version: CONTENT_VERSION,
            stage,
            mode,
            result: if pass {
                StageResult::Pass
            } else {
                StageResult::Fail
            },
            anchor_sha256: anchor_sha256.map(|d| crate::util::hex::lower(&d)),
            unseal,
            derived_anchor: None,
            modules,
            unverified_loaded,
            ignored: Vec::new(),
            module_config: Vec::new(),
            config_refused: Vec::new(),
            loaded: Vec::new(),
        }
    }

    /// Adds what the stage checked besides the module files: a refused
    /// configuration or an unaccepted loaded module fails the stage; an
    /// ignored override does not (it was not applied).
    pub fn with_checks(mut self, c: StageChecks) -> Self {
        if !c.config_refused.is_empty() || !c.loaded.is_empty() {
            self.result = StageResult::Fail;
        }
        self.ignored = c.ignored;
        self.module_config = c.module_config;
        self.config_refused = c.config_refused;
        self.loaded = c.loaded;
        self
    }

    /// Whether the stage passed.
    pub fn passed(&self) -> bool {
        self.result == StageResult::Pass
    }

    /// The exact bytes that are hashed and written. A content that does not
    /// serialize is an error: hashing nothing in its place would measure a
    /// record nobody can show.
    pub fn encode(&self) -> Result<Vec<u8>, MeasureError> {
        serde_json::to_vec(self).map_err(MeasureError::Serialize)
    }

    /// [`Content::encode`] for tests, which build contents that serialize.
    #[cfg(test)]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode().expect("a test content serializes")
    }
}

fn relative(path: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    match path.strip_prefix(root) {
        Some(rest) if !root.is_empty() && rest.starts_with('/') => {
            rest.trim_start_matches('/').to_owned()
        }
        _ => path.to_owned(),
    }
}

/// The digests a record carries for `content`, one per bank.
pub fn digests(content: &[u8], banks: &[PcrBank]) -> Vec<(PcrBank, Vec<u8>)> {
    banks.iter().map(|&b| (b, b.hash(content))).collect()
}

/// Serializes one record, separator and newline included. `content` is
/// the output of [`Content::encode`] (or, for foreign records, any JSON
/// value): it is written as is, so formatting cannot fail.
pub fn record_bytes(pcr: u8, content: &[u8], banks: &[PcrBank]) -> Vec<u8> {
    let digests: Vec<String> = digests(content, banks)
        .iter()
        .map(|(b, d)| {
            format!(
                "{{\"hashAlg\":\"{}\",\"digest\":\"{}\"}}",
                b.name(),
                crate::util::hex::lower(d)
            )
        })
        .collect();
    let mut out = vec![RS];
    out.extend_from_slice(
        format!(
            "{{\"pcr\":{pcr},\"digests\":[{}],\"content_type\":\"{CONTENT_TYPE}\",\"content\":",
            digests.join(",")
        )
        .as_bytes(),
    );
    out.extend_from_slice(content);
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(path: &str, verdict: Verdict) -> Report {
        Report {
            path: path.into(),
            verdict,
            reason: "why".into(),
            signer: None,
            key_id: Some("AA".into()),
            hash_algo: Some("sha256".into()),
            sha256: Some("00".into()),
            build_id_note: None,
        }
    }

    #[test]
    fn content_is_sorted_relative_and_predictable() {
        let a = Content::new(
            Stage::Early,
            Mode::Enforce,
            Some([1; 32]),
            UnsealOutcome::Ok,
            &[
                report("/m/b.ko", Verdict::Ok),
                report("/m/a.ko", Verdict::Ok),
            ],
            "/m",
            None,
        );
        let b = Content::new(
            Stage::Early,
            Mode::Enforce,
            Some([1; 32]),
            UnsealOutcome::Ok,
            &[
                report("/m/a.ko", Verdict::Ok),
                report("/m/b.ko", Verdict::Ok),
            ],
            "/m/",
            None,
        );
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.modules[0].path, "a.ko");
        assert!(a.passed());
        let bad = Content::new(
            Stage::Early,
            Mode::Warn,
            None,
            UnsealOutcome::Ok,
            &[report("/m/a.ko", Verdict::BadSignature)],
            "/m",
            None,
        );
        assert!(!bad.passed());
        assert_eq!(bad.modules[0].reason.as_deref(), Some("why"));
        let unl = Content::new(
            Stage::PrePivot,
            Mode::Warn,
            None,
            UnsealOutcome::Ok,
            &[],
            "/m",
            Some(vec!["x".into()]),
        );
        assert!(!unl.passed());
    }
}
