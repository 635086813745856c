//! The report of one attestation: what `modseal attest` prints, as text
//! ([`render_text`]) or JSON (the types serialized).

use serde::Serialize;

use super::boot_chain::BootChainReport;
use super::evidence::FIRMWARE_LOG;
use super::policy::{Policy, Violation};

/// The checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckName {
    /// quote.sig over quote.msg with the AK.
    Signature,
    /// quote.msg is a TPM-made quote.
    Quote,
    /// Its qualifying data is the verifier's nonce.
    Nonce,
    /// quote.pcrs holds the values the quote's digest covers.
    PcrDigest,
    /// The log replays to the quoted values.
    Replay,
    /// The firmware's event log replays to the quoted values.
    FirmwareReplay,
    /// The kernel, initrd and command line measured are the policy's.
    BootChain,
    /// The records are what the policy expects.
    Policy,
}

impl CheckName {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            CheckName::Signature => "signature",
            CheckName::Quote => "quote",
            CheckName::Nonce => "nonce",
            CheckName::PcrDigest => "pcr-digest",
            CheckName::Replay => "replay",
            CheckName::FirmwareReplay => "firmware-replay",
            CheckName::BootChain => "boot-chain",
            CheckName::Policy => "policy",
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It passed.
    Pass,
    /// It failed: not trusted.
    Fail,
    /// It could not run (what it checks did not parse).
    Skipped,
}

/// One check and its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Which check.
    pub name: CheckName,
    /// How it ended.
    pub status: Status,
    /// What was checked, or why it failed or did not run.
    pub detail: String,
}

/// The failure that decides the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The check that failed first.
    pub check: CheckName,
    /// Its message.
    pub message: String,
}

/// The quote's fields, as far as they parsed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct QuoteReport {
    /// The AK's algorithm (`rsa-2048`, `ecdsa-p256`).
    pub ak: String,
    /// The signature's scheme and hash (`rsassa/sha256`).
    pub signature: Option<String>,
    /// `magic`, hex.
    pub magic: Option<String>,
    /// `type`, hex.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `qualifiedSigner`, hex.
    pub qualified_signer: Option<String>,
    /// `extraData` (the nonce), hex.
    pub extra_data: Option<String>,
    /// `clockInfo.clock`.
    pub clock: Option<u64>,
    /// `clockInfo.resetCount`.
    pub reset_count: Option<u32>,
    /// `clockInfo.restartCount`.
    pub restart_count: Option<u32>,
    /// `clockInfo.safe`.
    pub safe: Option<bool>,
    /// `firmwareVersion`, hex.
    pub firmware_version: Option<String>,
    /// The quote's selection (`sha256:0,12`).
    pub pcr_select: Option<String>,
    /// `pcrDigest`, hex.
    pub pcr_digest: Option<String>,
    /// quote.pcrs's selection.
    pub pcrs_file_select: String,
    /// quote.pcrs's values.
    pub pcrs: Vec<PcrValueReport>,
}

/// One value of quote.pcrs.
#[derive(Debug, Clone, Serialize)]
pub struct PcrValueReport {
    /// The bank.
    pub bank: String,
    /// The PCR.
    pub pcr: u8,
    /// The value, hex.
    pub value: String,
}

/// How one PCR/bank replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayResult {
    /// The log replays to the quoted value.
    Match,
    /// It does not.
    Mismatch,
    /// The quote does not cover it: not checked.
    NotQuoted,
}

/// The replay of one PCR in one bank.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The PCR.
    pub pcr: u8,
    /// The bank.
    pub bank: String,
    /// The quoted value, hex, if quoted.
    pub quoted: Option<String>,
    /// The value the log replays to, hex.
    pub replayed: String,
    /// How it compares.
    pub result: ReplayResult,
    /// The log indexes of its records.
    pub records: Vec<usize>,
    /// Why it does not match, when quoted and it does not.
    pub detail: Option<String>,
}

/// One record of the log.
#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    /// 1-based position in the log.
    pub index: usize,
    /// Its PCR.
    pub pcr: u8,
    /// Its content type.
    pub content_type: String,
    /// Its digests, hex, by bank.
    pub digests: std::collections::BTreeMap<String, String>,
    /// `None` when every digest matches the content, else why not.
    pub digest_error: Option<String>,
    /// The policy bank's PCR value after this record, for records of the policy's PCR.
    pub pcr_after: Option<String>,
    /// The content exactly as logged (JSON: the log parser checked it).
    pub content: Option<Box<serde_json::value::RawValue>>,
    /// The policy's complaints about it.
    pub violations: Vec<String>,
}

/// Where the policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicySource {
    /// `--policy`.
    File,
    /// No `--policy`: the built-in one, which does not check the anchor.
    Default,
}

/// The policy and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// `file` or `default` (no --policy: the anchor is not checked).
    pub source: PolicySource,
    /// The policy applied.
    pub policy: Policy,
    /// Every violation.
    pub violations: Vec<Violation>,
}

/// The full report of one attestation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every check passed.
    pub trusted: bool,
    /// The one-line verdict: `trusted: …` or `NOT TRUSTED: …`.
    pub verdict: String,
    /// The failure that decides, if any.
    pub first_failure: Option<Failure>,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The quote.
    pub quote: QuoteReport,
    /// The replay of every PCR/bank the log uses.
    pub replay: Vec<ReplayReport>,
    /// The replay of every PCR/bank of the firmware's log (`records`: its
    /// event indexes); empty without a firmware log.
    pub firmware_replay: Vec<ReplayReport>,
    /// What the firmware and the EFI stub measured, when the policy has a
    /// boot chain.
    pub boot_chain: Option<BootChainReport>,
    /// What this verdict did not check (`--no-policy`: the trust-bundle
    /// digest, the kernel, the initrd, the command line).
    pub not_checked: Vec<String>,
    /// Every record.
    pub records: Vec<RecordReport>,
    /// The policy.
    pub policy: PolicyReport,
}

/// What the verdict leaves unchecked, as the report lists it (`derived`:
/// a record carries a derived anchor).
pub fn not_checked(policy: &Policy, have_firmware_log: bool, derived: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !policy.checks_anchors() {
        out.push("the trust-bundle digest (any bundle is accepted)".to_owned());
    }
    match &policy.boot {
        None => out.extend([
            "the kernel (PCR 4)".to_owned(),
            "the initrd (PCR 9)".to_owned(),
            "the command line (PCR 9)".to_owned(),
        ]),
        Some(b) if b.cmdlines.is_empty() => {
            out.push("the command line as a whole (the policy pins none; only the options that bypass modseal are refused)".to_owned())
        }
        Some(_) => {}
    }
    if !have_firmware_log {
        out.push(format!("the firmware's PCRs (no {FIRMWARE_LOG})"));
    }
    if derived && policy.boot.is_none() {
        out.push(super::policy::DERIVED_NOT_CHECKED.to_owned());
    }
    out
}

/// The text report: the verdict line, then one line per check (policy
/// violations after it, indented).
pub fn render_text(r: &Report) -> String {
    let mut out = format!("{}\n", r.verdict);
    for c in &r.checks {
        let status = match c.status {
            Status::Pass => "ok",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        };
        out.push_str(&format!("  {}: {status}: {}\n", c.name.name(), c.detail));
        if c.name == CheckName::BootChain {
            let problems = r.boot_chain.as_ref().map(|b| b.problems.as_slice());
            if let Some(p) = problems.filter(|p| p.len() > 1) {
                for x in p {
                    out.push_str(&format!("    {x}\n"));
                }
            }
        }
    }
    const SHOWN: usize = 20;
    let v = &r.policy.violations;
    if v.len() > 1 {
        for x in v.iter().take(SHOWN) {
            out.push_str(&format!("    {}\n", x.message));
        }
        if v.len() > SHOWN {
            out.push_str(&format!(
                "    … and {} more (--json lists all)\n",
                v.len() - SHOWN
            ));
        }
    }
    if !r.not_checked.is_empty() {
        out.push_str(&format!("  NOT CHECKED: {}\n", r.not_checked.join("; ")));
    }
    out
}
