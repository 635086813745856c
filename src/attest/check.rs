//! The verifier's checks, in order (the first failure decides; every check
//! runs, for the full report):
//! 1. `signature`: quote.sig over quote.msg with the AK (RSASSA-PKCS1-v1_5
//!    or ECDSA, SHA-256/384/512);
//! 2. `quote`: quote.msg is a `TPMS_ATTEST` of type quote made by a TPM;
//! 3. `nonce`: its extraData is the verifier's nonce;
//! 4. `pcr-digest`: quote.pcrs selects what the quote selects, and the hash
//!    of its values is the quote's pcrDigest;
//! 5. `replay`: every record's digests match its content, and the log
//!    replays to the quoted value of every PCR/bank it uses that is quoted
//!    (the policy's PCR and bank must be);
//! 6. `firmware-replay`: the firmware's event log replays to every quoted
//!    PCR it extends; a v2 policy needs PCRs 4 and 9 quoted
//!    ([`super::firmware`]);
//! 7. `boot-chain`: the kernel (PCR 4), the initrd and the command line
//!    (PCR 9) it records are the policy's ([`super::boot_chain`]);
//! 8. `policy`: the records of the policy's PCR are what the policy expects;
//!    a record's derived anchor names the kernel PCR 4 measured and only
//!    certificates built into it ([`policy::check_derived`]).
//!
//! Without a boot chain in the policy (`--no-policy`) the firmware log is
//! optional and check 7 does not run: the report's `not_checked` says so.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;

mod quote_checks;

use quote_checks::{check_digest, check_nonce, check_quote, quote_report};

use super::boot_chain::BootChainReport;
use super::evidence::{Evidence, FIRMWARE_LOG};
use super::pcrs::{parse_pcrs, PcrValues, PcrsError};
use super::policy::{self, Policy, Violation};
use super::quote_msg::MsgError;
use super::report::{
    Check, CheckName, Failure, PolicyReport, PolicySource, RecordReport, ReplayReport,
    ReplayResult, Report, Status,
};
use super::selection::describe_selection;
use super::signature::{check_signature, parse_signature, SigParseError};
use crate::measure::tcg::{FirmwareLog, TcgError};
use crate::measure::{MeasureError, Record};
use crate::tpm::PcrBank;
use crate::util::hex;
use crate::util::text::clip;
use crate::verify::pubkey::PublicKey;

/// Malformed input: no verdict, exit status 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadInput {
    /// quote.sig does not parse.
    #[error("quote.sig: {0}")]
    Signature(SigParseError),
    /// quote.pcrs does not parse.
    #[error("quote.pcrs: {0}")]
    Pcrs(PcrsError),
    /// The event log does not parse.
    #[error("event log: {0}")]
    Log(MeasureError),
    /// quote.msg does not parse and the AK did not sign it: garbage, not a
    /// forged quote.
    #[error("quote.msg: not a TPMS_ATTEST quote: {0}")]
    Quote(MsgError),
    /// The policy checks the boot chain and there is no firmware log.
    #[error("no firmware event log: the quote directory has no {FIRMWARE_LOG} and no --firmware-log was given (the policy checks the kernel and the initrd the firmware measured: ship the log with the quote)")]
    NoFirmwareLog,
    /// The firmware log does not parse.
    #[error("{}: firmware event log: {source}", path.display())]
    FirmwareLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: TcgError,
    },
}

/// The checks as they run, and the first failure.
#[derive(Default)]
struct Checks {
    list: Vec<Check>,
    first: Option<Failure>,
}

impl Checks {
    /// A check's outcome: its detail, or its failure after `prefix`.
    fn push<E: Display>(&mut self, name: CheckName, r: Result<String, E>, prefix: &str) {
        match r {
            Ok(detail) => self.record(name, Status::Pass, detail),
            Err(e) => self.fail(name, format!("{prefix}: {e}")),
        }
    }

    fn fail(&mut self, name: CheckName, message: String) {
        if self.first.is_none() {
            self.first = Some(Failure {
                check: name,
                message: message.clone(),
            });
        }
        self.record(name, Status::Fail, message);
    }

    fn record(&mut self, name: CheckName, status: Status, detail: String) {
        self.list.push(Check {
            name,
            status,
            detail,
        });
    }

    fn skip(&mut self, name: CheckName, why: &str) {
        self.record(name, Status::Skipped, why.to_owned());
    }
}

/// Runs every check on the evidence. `Err` is bad input (exit status 2):
/// a signature, PCR or log file that cannot be parsed, or a quote.msg that
/// cannot be parsed and is not signed by the AK either.
pub fn evaluate(
    ak: &PublicKey,
    ev: &Evidence,
    nonce: &[u8],
    policy: &Policy,
    policy_from_file: bool,
) -> Result<Report, BadInput> {
    let sig = parse_signature(&ev.sig).map_err(BadInput::Signature)?;
    let pcrs = parse_pcrs(&ev.pcrs).map_err(BadInput::Pcrs)?;
    let records = crate::measure::parse_records(&ev.log).map_err(BadInput::Log)?;
    let firmware = parse_firmware_log(ev, policy)?;
    let mut checks = Checks::default();
    let mut quote = quote_report(ak, &sig, &pcrs);

    let sig_result = check_signature(ak, &sig, &ev.msg);
    let signed = sig_result.is_ok();
    checks.push(CheckName::Signature, sig_result, "bad signature");
    let att = check_quote(&ev.msg, signed, &mut checks, &mut quote)?;
    check_nonce(att.as_ref(), nonce, &mut checks);
    check_digest(att.as_ref(), &sig, &pcrs, &mut checks);

    // Each record's digests against its content, once (the log may be large).
    let digest_errors: Vec<Option<String>> = records
        .iter()
        .map(|r| r.verify_digests().err().map(|e| e.to_string()))
        .collect();
    let starts = firmware
        .as_ref()
        .map(|f| super::firmware::shared_starts(&super::firmware::values(f), policy.pcr))
        .unwrap_or_default();
    let (replay_result, replays) = replay_all(&records, &digest_errors, &pcrs, policy, &starts);
    checks.push(CheckName::Replay, replay_result, "log replay mismatch");
    let (firmware_replay, boot_chain) = check_firmware(
        firmware.as_ref(),
        ev.cmdline.as_deref(),
        &pcrs,
        policy,
        &mut checks,
    );

    let violations = violations(policy, &records, boot_chain.as_ref());
    let policy_result = match violations.first() {
        Some(v) if violations.len() > 1 => Err(format!(
            "{} ({} violation(s) in all)",
            v.message,
            violations.len()
        )),
        Some(v) => Err(v.message.clone()),
        None => Ok(policy_summary(policy, &records, policy_from_file)),
    };
    checks.push(CheckName::Policy, policy_result, "policy");

    let derived = policy::any_derived(policy, &records);
    let not_checked = super::report::not_checked(policy, firmware.is_some(), derived);
    let verdict = verdict(&checks, &replays, policy, &records, policy_from_file);
    Ok(Report {
        trusted: checks.first.is_none(),
        verdict,
        first_failure: checks.first,
        checks: checks.list,
        quote,
        replay: replays,
        firmware_replay,
        boot_chain,
        not_checked,
        records: record_reports(&records, &digest_errors, policy, &violations, &starts),
        policy: PolicyReport {
            source: if policy_from_file {
                PolicySource::File
            } else {
                PolicySource::Default
            },
            policy: policy.clone(),
            violations,
        },
    })
}

/// Check 8's violations: the policy's, then the derived anchors' against
/// the kernel the boot chain measured.
fn violations(
    policy: &Policy,
    records: &[Record],
    chain: Option<&BootChainReport>,
) -> Vec<Violation> {
    let mut out = policy::evaluate(policy, records);
    if let (Some(boot), Some(chain)) = (&policy.boot, chain) {
        let kernel = chain.kernel.as_ref().map(|k| k.sha256.as_str());
        out.extend(policy::check_derived(policy, boot, records, kernel));
    }
    out
}

/// The firmware log, parsed: required when the policy checks the boot chain.
fn parse_firmware_log(ev: &Evidence, policy: &Policy) -> Result<Option<FirmwareLog>, BadInput> {
    match &ev.firmware_log {
        None if policy.boot.is_some() => Err(BadInput::NoFirmwareLog),
        None => Ok(None),
        Some(f) => crate::measure::tcg::parse(&f.bytes)
            .map(Some)
            .map_err(|source| BadInput::FirmwareLog {
                path: f.path.clone(),
                source,
            }),
    }
}

const NO_BOOT_CHAIN: &str = "no boot chain in the policy (--no-policy): the kernel, the initrd and the command line are not checked";

/// Checks 6 and 7: the firmware log's replay and the boot chain in it.
fn check_firmware(
    firmware: Option<&FirmwareLog>,
    cmdline: Option<&[u8]>,
    pcrs: &PcrValues,
    policy: &Policy,
    checks: &mut Checks,
) -> (Vec<ReplayReport>, Option<BootChainReport>) {
    let Some(log) = firmware else {
        checks.skip(
            CheckName::FirmwareReplay,
            &format!("no firmware event log ({FIRMWARE_LOG}): the firmware's PCRs are not checked"),
        );
        checks.skip(CheckName::BootChain, NO_BOOT_CHAIN);
        return (Vec::new(), None);
    };
    let fw = super::firmware::check(log, pcrs, policy.pcr, policy.boot.is_some());
    checks.push(
        CheckName::FirmwareReplay,
        fw.result,
        "firmware log replay mismatch",
    );
    let Some(boot) = &policy.boot else {
        checks.skip(CheckName::BootChain, NO_BOOT_CHAIN);
        return (fw.reports, None);
    };
    let report = super::boot_chain::check(log, boot, cmdline, policy.pcr);
    let result = match report.problems.as_slice() {
        [] => Ok(report.summary(boot)),
        [one] => Err(one.clone()),
        [first, ..] => Err(format!(
            "{first} ({} problem(s) in all)",
            report.problems.len()
        )),
    };
    checks.push(CheckName::BootChain, result, "boot chain");
    (fw.reports, Some(report))
}

/// The one-line verdict.
fn verdict(
    checks: &Checks,
    replays: &[ReplayReport],
    policy: &Policy,
    records: &[Record],
    policy_from_file: bool,
) -> String {
    if let Some(f) = &checks.first {
        return format!("NOT TRUSTED: {}", f.message);
    }
    let pcr = replays
        .iter()
        .find(|r| r.pcr == policy.pcr && r.bank == policy.bank.name())
        .map(|r| r.replayed.clone())
        .unwrap_or_default();
    let mut v = format!(
        "trusted: PCR {} {} {pcr} is the log's {}",
        policy.pcr,
        policy.bank,
        policy_summary(policy, records, policy_from_file)
    );
    match &policy.boot {
        None if !policy_from_file => v.push_str(
            " (--no-policy: NOT CHECKED: the trust-bundle digest, the kernel, the initrd and the command line)",
        ),
        None => v.push_str(" (the policy pins no boot chain: the kernel and the initrd were not checked)"),
        Some(_) => v.push_str("; the kernel and the initrd are the policy's (PCRs 4 and 9)"),
    }
    v
}

/// What the records of the policy's PCR say, in one phrase.
fn policy_summary(policy: &Policy, records: &[Record], from_file: bool) -> String {
    let mut stages = Vec::new();
    let mut anchors: Vec<String> = Vec::new();
    let mut modules = 0usize;
    let mut modes: Vec<&str> = Vec::new();
    for r in records.iter().filter(|r| r.pcr == policy.pcr) {
        if let Some(Ok(c)) = r.parse_content() {
            stages.push(c.stage.name());
            modules = modules.max(c.modules.len());
            if let Some(a) = c.anchor_sha256 {
                if !anchors.contains(&a) {
                    anchors.push(clip(&a));
                }
            }
            let m = c.mode.name();
            if !modes.contains(&m) {
                modes.push(m);
            }
        }
    }
    let verdicts: Vec<&str> = policy.allow_verdicts.iter().map(|v| v.name()).collect();
    format!(
        "{} record(s) ({}), mode {}, trust bundle {}{}, {modules} module(s) each {}{}",
        stages.len(),
        stages.join(", "),
        modes.join("/"),
        anchors.join("/"),
        if from_file { " (expected)" } else { "" },
        verdicts.join("/"),
        if policy.modules.is_some() {
            ", the expected module set"
        } else {
            ""
        }
    )
}

/// The PCR/bank pairs to replay: the policy's first, then every pair of a
/// PCR the log has records for and a bank the log or the policy uses.
fn replay_pairs(records: &[Record], policy: &Policy) -> Vec<(u8, PcrBank)> {
    let mut used_pcrs: Vec<u8> = records.iter().map(|r| r.pcr).collect();
    used_pcrs.push(policy.pcr);
    used_pcrs.sort_unstable();
    used_pcrs.dedup();
    let mut used_banks: Vec<PcrBank> = records
        .iter()
        .flat_map(|r| r.digests.iter().map(|(b, _)| *b))
        .collect();
    used_banks.push(policy.bank);
    used_banks.sort();
    used_banks.dedup();
    let mut pairs: Vec<(u8, PcrBank)> = vec![(policy.pcr, policy.bank)];
    for &p in &used_pcrs {
        for &b in &used_banks {
            if (p, b) != (policy.pcr, policy.bank) && records.iter().any(|r| r.pcr == p) {
                pairs.push((p, b));
            }
        }
    }
    pairs
}

/// Check 5 over every PCR/bank the log uses that is quoted (the policy's
/// must be): the result and one report per pair.
fn replay_all(
    records: &[Record],
    digest_errors: &[Option<String>],
    pcrs: &PcrValues,
    policy: &Policy,
    starts: &BTreeMap<(u8, PcrBank), Vec<u8>>,
) -> (Result<String, ReplayFailure>, Vec<ReplayReport>) {
    let mut reports = Vec::new();
    for (pcr, bank) in replay_pairs(records, policy) {
        let quoted = pcrs.get(bank, pcr);
        let zero = vec![0u8; bank.digest_len()];
        let start = starts.get(&(pcr, bank)).unwrap_or(&zero);
        let r = crate::measure::explain(records, pcr, bank, start, quoted.unwrap_or_default());
        let result = match (quoted, &r.mismatch) {
            (None, _) => ReplayResult::NotQuoted,
            (Some(_), None) => ReplayResult::Match,
            (Some(_), Some(_)) => ReplayResult::Mismatch,
        };
        reports.push(ReplayReport {
            pcr,
            bank: bank.name().to_owned(),
            quoted: quoted.map(hex::lower),
            replayed: hex::lower(&r.value),
            result,
            records: r.records,
            detail: if quoted.is_some() { r.mismatch } else { None },
        });
    }
    let result = replay_result(records, digest_errors, pcrs, policy, &reports);
    (result, reports)
}

/// Why check 5 fails.
#[derive(Debug, thiserror::Error)]
enum ReplayFailure {
    /// A record's digests do not match its content.
    #[error("{0} (the record was edited after it was measured)")]
    Edited(String),
    /// The policy's PCR is not in the quote.
    #[error("PCR {pcr} {bank} is not in the quote (it covers {covers})")]
    NotQuoted {
        pcr: u8,
        bank: PcrBank,
        covers: String,
    },
    /// A quoted PCR does not replay ([`crate::measure::explain`]'s words).
    #[error("{0}")]
    Mismatch(String),
}

/// Check 5's outcome: a digest error first, then the policy's PCR not
/// quoted, then the first mismatch.
fn replay_result(
    records: &[Record],
    digest_errors: &[Option<String>],
    pcrs: &PcrValues,
    policy: &Policy,
    reports: &[ReplayReport],
) -> Result<String, ReplayFailure> {
    if let Some(e) = digest_errors.iter().flatten().next() {
        return Err(ReplayFailure::Edited(e.clone()));
    }
    if pcrs.get(policy.bank, policy.pcr).is_none() {
        return Err(ReplayFailure::NotQuoted {
            pcr: policy.pcr,
            bank: policy.bank,
            covers: describe_selection(&pcrs.selection),
        });
    }
    if let Some(m) = reports
        .iter()
        .find(|r| r.result == ReplayResult::Mismatch)
        .and_then(|r| r.detail.clone())
    {
        return Err(ReplayFailure::Mismatch(m));
    }
    let pairs = |want: ReplayResult| -> Vec<String> {
        reports
            .iter()
            .filter(|r| r.result == want)
            .map(|r| format!("{}/{}", r.pcr, r.bank))
            .collect()
    };
    let (matched, skipped) = (pairs(ReplayResult::Match), pairs(ReplayResult::NotQuoted));
    let n = records.iter().filter(|r| r.pcr == policy.pcr).count();
    Ok(format!(
        "{n} record(s) for PCR {} replay to the quoted value{} ({} checked{})",
        policy.pcr,
        if matched.len() > 1 { "s" } else { "" },
        matched.join(", "),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; not quoted, not checked: {}", skipped.join(", "))
        }
    ))
}

/// One report per record: digests, the policy PCR's running value, the
/// content as logged and the policy's violations.
fn record_reports(
    records: &[Record],
    digest_errors: &[Option<String>],
    policy: &Policy,
    violations: &[Violation],
    starts: &BTreeMap<(u8, PcrBank), Vec<u8>>,
) -> Vec<RecordReport> {
    let mut running = BTreeMap::new();
    // The running values of the policy's PCR/bank, recomputed (cheap).
    let mut v = starts
        .get(&(policy.pcr, policy.bank))
        .cloned()
        .unwrap_or_else(|| vec![0u8; policy.bank.digest_len()]);
    for r in records.iter().filter(|r| r.pcr == policy.pcr) {
        match r.digests.iter().find(|(b, _)| *b == policy.bank) {
            Some((_, d)) => {
                v = policy.bank.extend(&v, d);
                running.insert(r.index, hex::lower(&v));
            }
            None => break,
        }
    }
    records
        .iter()
        .zip(digest_errors)
        .map(|(r, digest_error)| RecordReport {
            index: r.index,
            pcr: r.pcr,
            content_type: r.content_type.clone(),
            digests: r
                .digests
                .iter()
                .map(|(b, d)| (b.name().to_owned(), hex::lower(d)))
                .collect(),
            digest_error: digest_error.clone(),
            pcr_after: running.get(&r.index).cloned(),
            // Kept as the raw bytes: a large hostile log is not expanded into a tree.
            content: String::from_utf8(r.content.clone())
                .ok()
                .and_then(|t| serde_json::value::RawValue::from_string(t).ok()),
            violations: violations
                .iter()
                .filter(|x| x.record == Some(r.index))
                .map(|x| x.message.clone())
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::pcrs::tests::real_pcrs_file;
    use crate::attest::quote_msg::tests::attest_bytes;
    use crate::attest::report::render_text;
    use crate::attest::signature::tests::{p256_ak, sign};
    use crate::measure::{record_bytes, Content, Mode, ModuleEntry, Stage};
    use crate::measure::{StageResult, UnsealOutcome};
    use crate::tpm::marshal::TPM_ALG_SHA256;
    use crate::verify::Verdict;

    fn content(stage: Stage, verdict: Verdict) -> Vec<u8> {
        let c = Content {
            version: crate::measure::CONTENT_VERSION,
            stage,
            mode: Mode::Enforce,
            result: if verdict == Verdict::Ok {
                StageResult::Pass
            } else {
                StageResult::Fail
            },
            anchor_sha256: Some("ab".repeat(32)),
            unseal: UnsealOutcome::Ok,
            derived_anchor: None,
            modules: vec![ModuleEntry {
                path: "kernel/a.ko".into(),
                sha256: Some("01".repeat(32)),
                key_id: None,
                hash_algo: Some("sha256".into()),
                verdict,
                reason: (verdict != Verdict::Ok).then(|| "why".into()),
            }],
            unverified_loaded: Some(Vec::new()),
            ignored: Vec::new(),
            module_config: Vec::new(),
            config_refused: Vec::new(),
            loaded: Vec::new(),
        };
        serde_json::to_vec(&c).unwrap()
    }

    struct Fixture {
        key: p256::ecdsa::SigningKey,
        ak: PublicKey,
        ev: Evidence,
    }

    /// A P-256 AK, a two-record log, and a quote over PCR 12 (sha256) of it.
    fn fixture(nonce: &[u8], contents: &[Vec<u8>]) -> Fixture {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let ak = p256_ak(&key);
        let mut log = Vec::new();
        let mut pcr = vec![0u8; 32];
        for c in contents {
            log.extend(record_bytes(12, c, &[PcrBank::Sha1, PcrBank::Sha256]));
            pcr = PcrBank::Sha256.extend(&pcr, &PcrBank::Sha256.hash(c));
        }
        let pcrs = real_pcrs_file(&pcr);
        let digest = PcrBank::Sha256.hash_parts(&[&[0u8; 32], &pcr]);
        let msg = attest_bytes(nonce, &[(TPM_ALG_SHA256, &[0, 12])], &digest);
        let sig = sign(&key, &msg);
        Fixture {
            key,
            ak,
            ev: Evidence {
                msg,
                sig,
                pcrs,
                log,
                firmware_log: None,
                cmdline: None,
            },
        }
    }

    fn good_contents() -> Vec<Vec<u8>> {
        vec![
            content(Stage::Early, Verdict::Ok),
            content(Stage::PrePivot, Verdict::Ok),
        ]
    }

    /// A policy with the anchor and no boot chain: the checks before it
    /// (the boot chain's are in boot_chain/tests.rs).
    fn run(f: &Fixture, nonce: &[u8]) -> Report {
        let p = Policy {
            anchors: vec!["ab".repeat(32)],
            ..Policy::default()
        };
        evaluate(&f.ak, &f.ev, nonce, &p, true).unwrap()
    }

    #[test]
    fn good_evidence_is_trusted() {
        let f = fixture(b"n0nce", &good_contents());
        let r = run(&f, b"n0nce");
        assert!(r.trusted, "{}", render_text(&r));
        assert!(
            r.verdict.starts_with("trusted: PCR 12 sha256 "),
            "{}",
            r.verdict
        );
        let status: Vec<Status> = r.checks.iter().map(|c| c.status).collect();
        use Status::{Pass, Skipped};
        assert_eq!(
            status,
            [Pass, Pass, Pass, Pass, Pass, Skipped, Skipped, Pass]
        );
        assert_eq!(
            r.not_checked,
            [
                "the kernel (PCR 4)",
                "the initrd (PCR 9)",
                "the command line (PCR 9)",
                "the firmware's PCRs (no binary_bios_measurements)"
            ]
        );
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.replay[0].result, ReplayResult::Match);
        // The sha1 bank is used by the log but not quoted.
        assert!(r
            .replay
            .iter()
            .any(|x| x.bank == "sha1" && x.result == ReplayResult::NotQuoted));
    }

    #[test]
    fn each_check_names_its_failure() {
        let f = fixture(b"n0nce", &good_contents());
        let r = run(&f, b"other");
        assert!(
            r.verdict.starts_with("NOT TRUSTED: stale nonce: "),
            "{}",
            r.verdict
        );

        let mut t = fixture(b"n0nce", &good_contents());
        let other = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        t.ev.sig = sign(&other, &t.ev.msg);
        let r = run(&t, b"n0nce");
        assert!(
            r.verdict
                .starts_with("NOT TRUSTED: bad signature: ECDSA signature does not match"),
            "{}",
            r.verdict
        );

        let mut t = fixture(b"n0nce", &good_contents());
        t.ev.pcrs[240] ^= 1; // the second value's last byte
        t.ev.pcrs[239] ^= 1;
        let r = run(&t, b"n0nce");
        assert!(
            r.verdict.starts_with("NOT TRUSTED: PCR digest mismatch: "),
            "{}",
            r.verdict
        );

        // A selection that differs although the values hash the same.
        let mut t = fixture(b"n0nce", &good_contents());
        t.ev.pcrs[7] = 0x02; // PCR 1 instead of PCR 0 (both zero)
        let r = run(&t, b"n0nce");
        assert!(
            r.verdict
                .contains("quote.pcrs holds sha256:1,12, but the quote is over sha256:0,12"),
            "{}",
            r.verdict
        );

        // A failing module, quoted correctly: the policy names it.
        let f = fixture(
            b"n",
            &[
                content(Stage::Early, Verdict::BadSignature),
                content(Stage::PrePivot, Verdict::Ok),
            ],
        );
        let r = run(&f, b"n");
        assert_eq!(
            r.verdict,
            "NOT TRUSTED: policy: record 1: (early) module kernel/a.ko: bad-signature: why"
        );
        assert_eq!(r.records[0].violations.len(), 1);
    }

    #[test]
    fn log_changes_are_named() {
        let f = fixture(b"n", &good_contents());
        // An extra record after the measured ones.
        let mut t = f.ev.clone();
        t.log.extend(record_bytes(
            12,
            &content(Stage::PrePivot, Verdict::Ok),
            &[PcrBank::Sha256],
        ));
        let r = evaluate(&f.ak, &t, b"n", &Policy::default(), false).unwrap();
        let v = &r.verdict;
        assert!(v.starts_with("NOT TRUSTED: log replay mismatch: "), "{v}");
        assert!(
            v.contains("record(s) 3 after them were not measured"),
            "{v}"
        );
        // Edited content, digests left alone.
        let mut t = f.ev.clone();
        let s = String::from_utf8(t.log.clone()).unwrap();
        t.log = s.replacen("kernel/a.ko", "kernel/b.ko", 1).into_bytes();
        let r = evaluate(&f.ak, &t, b"n", &Policy::default(), false).unwrap();
        assert!(
            r.verdict.starts_with("NOT TRUSTED: log replay mismatch: record 1: sha1 digest does not match the content"),
            "{}",
            r.verdict
        );
        // Two records swapped.
        let recs = crate::measure::parse_records(&f.ev.log).unwrap();
        let mut t = f.ev.clone();
        t.log = [
            record_bytes(12, &recs[1].content, &[PcrBank::Sha1, PcrBank::Sha256]),
            record_bytes(12, &recs[0].content, &[PcrBank::Sha1, PcrBank::Sha256]),
        ]
        .concat();
        let r = evaluate(&f.ak, &t, b"n", &Policy::default(), false).unwrap();
        assert!(r.verdict.contains("the log is reordered"), "{}", r.verdict);
        // Without a policy the anchor is not checked, and the verdict says so.
        let r = evaluate(&f.ak, &f.ev, b"n", &Policy::default(), false).unwrap();
        assert!(r.trusted);
        assert!(
            r.verdict.ends_with(" (--no-policy: NOT CHECKED: the trust-bundle digest, the kernel, the initrd and the command line)"),
            "{}",
            r.verdict
        );
        assert_eq!(
            r.not_checked[0],
            "the trust-bundle digest (any bundle is accepted)"
        );
        let text = render_text(&r);
        assert!(
            text.ends_with("  NOT CHECKED: the trust-bundle digest (any bundle is accepted); the kernel (PCR 4); the initrd (PCR 9); the command line (PCR 9); the firmware's PCRs (no binary_bios_measurements)\n"),
            "{text}"
        );
    }

    #[test]
    fn malformed_files_are_bad_input() {
        let f = fixture(b"n", &good_contents());
        let p = Policy::default();
        let mut t = f.ev.clone();
        t.msg.truncate(40);
        let e = evaluate(&f.ak, &t, b"n", &p, false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("quote.msg: not a TPMS_ATTEST quote: truncated"),
            "{e}"
        );
        let mut t = f.ev.clone();
        t.sig.push(0);
        assert!(evaluate(&f.ak, &t, b"n", &p, false)
            .unwrap_err()
            .to_string()
            .contains("quote.sig: 1 trailing"));
        let mut t = f.ev.clone();
        t.pcrs.pop();
        assert!(evaluate(&f.ak, &t, b"n", &p, false)
            .unwrap_err()
            .to_string()
            .starts_with("quote.pcrs: "));
        let mut t = f.ev.clone();
        t.log = b"\x1e{garbage\n".to_vec();
        assert!(evaluate(&f.ak, &t, b"n", &p, false)
            .unwrap_err()
            .to_string()
            .starts_with("event log: record 1"));
        // A structure the AK did sign but that is not a quote is not trusted (exit 1).
        let mut t = f.ev.clone();
        t.msg.push(0);
        t.sig = sign(&f.key, &t.msg);
        let r = evaluate(&f.ak, &t, b"n", &p, false).unwrap();
        assert!(
            r.verdict
                .starts_with("NOT TRUSTED: not a TPM quote: quote.msg: 1 trailing byte"),
            "{}",
            r.verdict
        );
    }
}
