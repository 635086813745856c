//! `modseal attest`: the verifier's half of remote attestation. No TPM is
//! needed: from a quote (tpm2-tools files), the trusted attestation key, the
//! verifier's nonce, the event log and a policy it decides whether the
//! machine booted with every initramfs module verified against the expected
//! trust anchors, and names the first thing that says otherwise.
//!
//! Checks, in order (the first failure decides; every check runs, for the
//! full report):
//! 1. `signature`: quote.sig over quote.msg with the AK (RSASSA-PKCS1-v1_5
//!    or ECDSA, SHA-256/384/512);
//! 2. `quote`: quote.msg is a `TPMS_ATTEST` of type quote made by a TPM;
//! 3. `nonce`: its extraData is the verifier's nonce;
//! 4. `pcr-digest`: quote.pcrs selects what the quote selects, and the hash
//!    of its values is the quote's pcrDigest;
//! 5. `replay`: every record's digests match its content, and the log
//!    replays to the quoted value of every PCR/bank it uses that is quoted
//!    (the policy's PCR and bank must be);
//! 6. `policy`: the records of the policy's PCR are what the policy expects.
//!
//! Exit status: 0 trusted, 1 not trusted, 2 bad input.

pub mod policy;
pub mod quote;
pub mod quote_files;
pub mod replay;

use std::path::Path;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use serde::Serialize;

use crate::measure::Record;
use crate::tpm::PcrBank;
use crate::verify::algorithm::HashAlgo;
use crate::verify::pubkey::PublicKey;
use policy::{clip, Policy, Violation};
use quote_files::{Attest, PcrValues, Signature};

/// An AK file larger than this is refused.
pub const MAX_AK_FILE: usize = 64 * 1024;
/// The TPM takes at most a digest-sized nonce (`TPM2B_DATA`).
pub const MAX_NONCE: usize = 64;

/// File names in a quote directory (what `modseal quote` writes; the first
/// three are what `tpm2_quote -m -s -o` write).
pub const QUOTE_MSG: &str = "quote.msg";
pub const QUOTE_SIG: &str = "quote.sig";
pub const QUOTE_PCRS: &str = "quote.pcrs";
pub const QUOTE_LOG: &str = "tpm2-measure.log";

/// The evidence as read from files, unparsed.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub msg: Vec<u8>,
    pub sig: Vec<u8>,
    pub pcrs: Vec<u8>,
    pub log: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub check: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct QuoteReport {
    pub ak: String,
    pub signature: Option<String>,
    pub magic: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub qualified_signer: Option<String>,
    pub extra_data: Option<String>,
    pub clock: Option<u64>,
    pub reset_count: Option<u32>,
    pub restart_count: Option<u32>,
    pub safe: Option<bool>,
    pub firmware_version: Option<String>,
    pub pcr_select: Option<String>,
    pub pcr_digest: Option<String>,
    pub pcrs_file_select: String,
    pub pcrs: Vec<PcrValueReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PcrValueReport {
    pub bank: String,
    pub pcr: u8,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub pcr: u8,
    pub bank: String,
    pub quoted: Option<String>,
    pub replayed: String,
    /// `match`, `mismatch` or `not-quoted` (not checked).
    pub result: &'static str,
    pub records: Vec<usize>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordReport {
    pub index: usize,
    pub pcr: u8,
    pub content_type: String,
    pub digests: std::collections::BTreeMap<String, String>,
    /// `None` when every digest matches the content, else why not.
    pub digest_error: Option<String>,
    /// The policy bank's PCR value after this record, for records of the policy's PCR.
    pub pcr_after: Option<String>,
    /// The content exactly as logged (JSON: the log parser checked it).
    pub content: Option<Box<serde_json::value::RawValue>>,
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// `file` or `default` (no --policy: the anchor is not checked).
    pub source: &'static str,
    pub policy: Policy,
    pub violations: Vec<Violation>,
}

/// The full report of one attestation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub trusted: bool,
    /// The one-line verdict: `trusted: …` or `NOT TRUSTED: …`.
    pub verdict: String,
    pub first_failure: Option<Failure>,
    pub checks: Vec<Check>,
    pub quote: QuoteReport,
    pub replay: Vec<ReplayReport>,
    pub records: Vec<RecordReport>,
    pub policy: PolicyReport,
}

/// Malformed or unreadable input: exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses the AK: a PEM `PUBLIC KEY` block or DER SubjectPublicKeyInfo.
pub fn parse_ak(bytes: &[u8]) -> Result<PublicKey, String> {
    let der = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let mut found = None;
        for (i, pem) in x509_parser::pem::Pem::iter_from_buffer(bytes).enumerate() {
            let pem = pem.map_err(|e| format!("PEM block {}: {e}", i + 1))?;
            if pem.label == "PUBLIC KEY" {
                found = Some(pem.contents);
                break;
            }
            if i > 16 {
                break;
            }
        }
        found.ok_or_else(|| "no 'BEGIN PUBLIC KEY' block in the PEM file".to_owned())?
    } else {
        bytes.to_vec()
    };
    PublicKey::from_spki(&der).map_err(|e| e.to_string())
}

/// Parses the verifier's nonce (hex, 1 to [`MAX_NONCE`] bytes).
pub fn parse_nonce(text: &str) -> Result<Vec<u8>, String> {
    let n = crate::util::hex::parse(text.trim())
        .ok_or_else(|| format!("--nonce '{}': not hex", clip(text)))?;
    if n.len() > MAX_NONCE {
        return Err(format!(
            "--nonce is {} bytes; a TPM takes at most {MAX_NONCE}",
            n.len()
        ));
    }
    Ok(n)
}

fn hash_of(alg: u16) -> Result<(HashAlgo, PcrBank), String> {
    match alg {
        quote_files::TPM_ALG_SHA256 => Ok((HashAlgo::Sha256, PcrBank::Sha256)),
        quote_files::TPM_ALG_SHA384 => Ok((HashAlgo::Sha384, PcrBank::Sha384)),
        quote_files::TPM_ALG_SHA512 => Ok((HashAlgo::Sha512, PcrBank::Sha512)),
        quote_files::TPM_ALG_SHA1 => Err("the signature uses SHA-1, which is refused".into()),
        other => Err(format!(
            "the signature uses hash 0x{other:04x} (sha256, sha384 and sha512 are supported)"
        )),
    }
}

fn fixed_width(v: &[u8], width: usize, what: &str) -> Result<Vec<u8>, String> {
    let trimmed = &v[v.iter().position(|&b| b != 0).unwrap_or(v.len())..];
    if trimmed.len() > width {
        return Err(format!(
            "ECDSA {what} is {} bytes, longer than the curve's {width}",
            v.len()
        ));
    }
    let mut out = vec![0u8; width - trimmed.len()];
    out.extend_from_slice(trimmed);
    Ok(out)
}

/// Check 1: the signature over `msg` with the AK. Returns what was checked.
pub fn check_signature(ak: &PublicKey, sig: &Signature, msg: &[u8]) -> Result<String, String> {
    let what = format!("{} by the AK ({})", sig.describe(), ak.describe());
    match sig {
        Signature::Null => return Err("quote.sig holds no signature (TPM_ALG_NULL)".into()),
        Signature::Hmac { .. } => {
            return Err("quote.sig is an HMAC, not a signature by an attestation key".into())
        }
        _ => {}
    }
    let (hash, _) = hash_of(sig.hash().unwrap_or(quote_files::TPM_ALG_NULL))?;
    let digest = hash.digest(msg);
    match (sig, ak) {
        (
            Signature::Rsa {
                scheme: quote_files::TPM_ALG_RSASSA,
                sig,
                ..
            },
            PublicKey::Rsa { .. },
        ) => ak
            .verify(hash, &digest, sig)
            .map(|()| what)
            .map_err(|e| e.to_string()),
        (
            Signature::Ecc {
                scheme: quote_files::TPM_ALG_ECDSA,
                r,
                s,
                ..
            },
            PublicKey::P256(key),
        ) => {
            let rs = [fixed_width(r, 32, "r")?, fixed_width(s, 32, "s")?].concat();
            let sig = p256::ecdsa::Signature::from_slice(&rs)
                .map_err(|_| "ECDSA r or s is zero or not below the group order".to_owned())?;
            key.verify_prehash(&digest, &sig)
                .map(|()| what)
                .map_err(|_| "ECDSA signature does not match".into())
        }
        (
            Signature::Ecc {
                scheme: quote_files::TPM_ALG_ECDSA,
                r,
                s,
                ..
            },
            PublicKey::P384(key),
        ) => {
            let rs = [fixed_width(r, 48, "r")?, fixed_width(s, 48, "s")?].concat();
            let sig = p384::ecdsa::Signature::from_slice(&rs)
                .map_err(|_| "ECDSA r or s is zero or not below the group order".to_owned())?;
            key.verify_prehash(&digest, &sig)
                .map(|()| what)
                .map_err(|_| "ECDSA signature does not match".into())
        }
        (Signature::Rsa { scheme, .. } | Signature::Ecc { scheme, .. }, _)
            if *scheme != quote_files::TPM_ALG_RSASSA && *scheme != quote_files::TPM_ALG_ECDSA =>
        {
            Err(format!(
                "signature scheme {} is not supported (rsassa and ecdsa are)",
                quote_files::sig_alg_name(*scheme)
            ))
        }
        _ => Err(format!(
            "an {} signature cannot come from this AK ({}): the quote was signed by another key",
            quote_files::sig_alg_name(sig.scheme()),
            ak.describe()
        )),
    }
}

/// Drops banks with nothing selected, for comparing selections.
fn nonempty(sel: &[quote_files::BankSelection]) -> Vec<&quote_files::BankSelection> {
    sel.iter().filter(|s| !s.pcrs.is_empty()).collect()
}

/// Check 4: the PCR values file against the quote.
pub fn check_pcr_digest(att: &Attest, pcrs: &PcrValues, hash: PcrBank) -> Result<String, String> {
    if nonempty(&att.pcr_select) != nonempty(&pcrs.selection) {
        return Err(format!(
            "quote.pcrs holds {}, but the quote is over {}",
            quote_files::describe_selection(&pcrs.selection),
            quote_files::describe_selection(&att.pcr_select)
        ));
    }
    let digest = hash.hash(&pcrs.concatenated());
    if digest != att.pcr_digest {
        return Err(format!(
            "{hash} of the {} value(s) in quote.pcrs is {}, the quote's pcrDigest is {}",
            pcrs.values.len(),
            crate::util::hex::lower(&digest),
            crate::util::hex::lower(&att.pcr_digest)
        ));
    }
    Ok(format!(
        "{hash} of {} quoted value(s) ({}) is the quote's pcrDigest",
        pcrs.values.len(),
        quote_files::describe_selection(&pcrs.selection)
    ))
}

struct Checks {
    list: Vec<Check>,
    first: Option<Failure>,
}

impl Checks {
    fn push(&mut self, name: &'static str, r: Result<String, String>, prefix: &str) {
        let (status, detail) = match r {
            Ok(d) => (Status::Pass, d),
            Err(e) => {
                let message = format!("{prefix}: {e}");
                if self.first.is_none() {
                    self.first = Some(Failure {
                        check: name,
                        message: message.clone(),
                    });
                }
                (Status::Fail, message)
            }
        };
        self.list.push(Check {
            name,
            status,
            detail,
        });
    }

    fn skip(&mut self, name: &'static str, why: &str) {
        self.list.push(Check {
            name,
            status: Status::Skipped,
            detail: why.to_owned(),
        });
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
    let bad = |file: &str, e: String| BadInput(format!("{file}: {e}"));
    let sig = quote_files::parse_signature(&ev.sig).map_err(|e| bad(QUOTE_SIG, e))?;
    let pcrs = quote_files::parse_pcrs(&ev.pcrs).map_err(|e| bad(QUOTE_PCRS, e))?;
    let records = crate::measure::parse_log(&ev.log).map_err(|e| bad("event log", e))?;
    let mut checks = Checks {
        list: Vec::new(),
        first: None,
    };
    let mut quote = QuoteReport {
        ak: ak.describe(),
        signature: Some(sig.describe()),
        pcrs_file_select: quote_files::describe_selection(&pcrs.selection),
        pcrs: pcrs
            .entries()
            .into_iter()
            .map(|(h, p, v)| PcrValueReport {
                bank: quote_files::hash_alg_name(h),
                pcr: p,
                value: crate::util::hex::lower(v),
            })
            .collect(),
        ..QuoteReport::default()
    };

    // 1. signature
    let sig_result = check_signature(ak, &sig, &ev.msg);
    let signed = sig_result.is_ok();
    checks.push("signature", sig_result, "bad signature");

    // 2. quote structure
    let att = match quote_files::parse_attest(&ev.msg) {
        Ok(a) => {
            checks.push(
                "quote",
                Ok(format!(
                    "TPM-generated quote (magic 0x{:08x}, type 0x{:04x}) over {}, clock {}, resets {}, restarts {}",
                    a.magic,
                    a.kind,
                    quote_files::describe_selection(&a.pcr_select),
                    a.clock,
                    a.reset_count,
                    a.restart_count
                )),
                "not a TPM quote",
            );
            quote.magic = Some(format!("0x{:08x}", a.magic));
            quote.kind = Some(format!("0x{:04x}", a.kind));
            quote.qualified_signer = Some(crate::util::hex::lower(&a.qualified_signer));
            quote.extra_data = Some(crate::util::hex::lower(&a.extra_data));
            quote.clock = Some(a.clock);
            quote.reset_count = Some(a.reset_count);
            quote.restart_count = Some(a.restart_count);
            quote.safe = Some(a.safe);
            quote.firmware_version = Some(format!("0x{:016x}", a.firmware_version));
            quote.pcr_select = Some(quote_files::describe_selection(&a.pcr_select));
            quote.pcr_digest = Some(crate::util::hex::lower(&a.pcr_digest));
            Some(a)
        }
        // Unsigned bytes that do not even parse: garbage, not a forged quote.
        Err(e) if !signed => return Err(bad(QUOTE_MSG, format!("not a TPMS_ATTEST quote: {e}"))),
        Err(e) => {
            checks.push("quote", Err(format!("{QUOTE_MSG}: {e}")), "not a TPM quote");
            None
        }
    };

    // 3. nonce
    match &att {
        Some(a) if a.extra_data == nonce => checks.push(
            "nonce",
            Ok(format!(
                "extraData is the nonce {}",
                crate::util::hex::lower(nonce)
            )),
            "stale nonce",
        ),
        Some(a) => checks.push(
            "nonce",
            Err(format!(
                "the quote's extraData is '{}', the verifier's nonce is {}",
                crate::util::hex::lower(&a.extra_data),
                crate::util::hex::lower(nonce)
            )),
            "stale nonce",
        ),
        None => checks.skip("nonce", "no quote structure"),
    }

    // 4. PCR digest
    match (&att, sig.hash().map(hash_of)) {
        (Some(a), Some(Ok((_, bank)))) => checks.push(
            "pcr-digest",
            check_pcr_digest(a, &pcrs, bank),
            "PCR digest mismatch",
        ),
        (Some(_), _) => checks.skip("pcr-digest", "the signature names no usable hash"),
        (None, _) => checks.skip("pcr-digest", "no quote structure"),
    }

    // 5. replay
    // Each record's digests against its content, once (the log may be large).
    let digest_errors: Vec<Option<String>> =
        records.iter().map(|r| r.check_digests().err()).collect();
    let (replay_result, replays) = replay_all(&records, &digest_errors, &pcrs, policy);
    checks.push("replay", replay_result, "log replay mismatch");

    // 6. policy
    let violations = policy::evaluate(policy, &records);
    let policy_result = match violations.first() {
        Some(v) => Err(if violations.len() > 1 {
            format!("{} ({} violation(s) in all)", v.message, violations.len())
        } else {
            v.message.clone()
        }),
        None => Ok(policy_summary(policy, &records, policy_from_file)),
    };
    checks.push("policy", policy_result, "policy");

    let records_report = record_reports(&records, &digest_errors, policy, &violations);
    let trusted = checks.first.is_none();
    let verdict = match &checks.first {
        Some(f) => format!("NOT TRUSTED: {}", f.message),
        None => {
            let pcr = replays
                .iter()
                .find(|r| r.pcr == policy.pcr && r.bank == policy.bank.name())
                .map(|r| r.replayed.clone())
                .unwrap_or_default();
            let mut v = format!(
                "trusted: PCR {} {} {pcr} is the log's {}",
                policy.pcr,
                policy.bank,
                policy_summary(policy, &records, policy_from_file)
            );
            if !policy_from_file {
                v.push_str(" (no --policy: the trust-bundle digest was not checked against an expected one)");
            }
            v
        }
    };
    Ok(Report {
        trusted,
        verdict,
        first_failure: checks.first,
        checks: checks.list,
        quote,
        replay: replays,
        records: records_report,
        policy: PolicyReport {
            source: if policy_from_file { "file" } else { "default" },
            policy: policy.clone(),
            violations,
        },
    })
}

fn policy_summary(policy: &Policy, records: &[Record], from_file: bool) -> String {
    let mut stages = Vec::new();
    let mut anchors: Vec<String> = Vec::new();
    let mut modules = 0usize;
    let mut modes: Vec<&str> = Vec::new();
    for r in records.iter().filter(|r| r.pcr == policy.pcr) {
        if let Some(Ok(c)) = r.modseal_content() {
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
    format!(
        "{} record(s) ({}), mode {}, trust bundle {}{}, {modules} module(s) each {}{}",
        stages.len(),
        stages.join(", "),
        modes.join("/"),
        anchors.join("/"),
        if from_file { " (expected)" } else { "" },
        policy
            .allow_verdicts
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join("/"),
        if policy.modules.is_some() {
            ", the expected module set"
        } else {
            ""
        }
    )
}

/// Check 5 over every PCR/bank the log uses that is quoted (the policy's
/// must be): the result and one report per pair.
fn replay_all(
    records: &[Record],
    digest_errors: &[Option<String>],
    pcrs: &PcrValues,
    policy: &Policy,
) -> (Result<String, String>, Vec<ReplayReport>) {
    let digest_error = digest_errors
        .iter()
        .flatten()
        .next()
        .map(|e| format!("{e} (the record was edited after it was measured)"));
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
    let mut reports = Vec::new();
    let mut first_mismatch = None;
    let mut matched = Vec::new();
    for (pcr, bank) in pairs {
        let quoted = pcrs.get(bank, pcr);
        let r = replay::replay(records, pcr, bank, quoted.unwrap_or_default());
        let result = match quoted {
            None => "not-quoted",
            Some(_) if r.mismatch.is_none() => {
                matched.push(format!("{pcr}/{bank}"));
                "match"
            }
            Some(_) => {
                if first_mismatch.is_none() {
                    first_mismatch = r.mismatch.clone();
                }
                "mismatch"
            }
        };
        reports.push(ReplayReport {
            pcr,
            bank: bank.name().to_owned(),
            quoted: quoted.map(crate::util::hex::lower),
            replayed: crate::util::hex::lower(&r.value),
            result,
            records: r.records.clone(),
            detail: if quoted.is_some() { r.mismatch } else { None },
        });
    }
    let policy_quoted = pcrs.get(policy.bank, policy.pcr).is_some();
    let result = if let Some(e) = digest_error {
        Err(e)
    } else if !policy_quoted {
        Err(format!(
            "PCR {} {} is not in the quote (it covers {})",
            policy.pcr,
            policy.bank,
            quote_files::describe_selection(&pcrs.selection)
        ))
    } else if let Some(m) = first_mismatch {
        Err(m)
    } else {
        let n = records.iter().filter(|r| r.pcr == policy.pcr).count();
        let skipped: Vec<String> = reports
            .iter()
            .filter(|r| r.result == "not-quoted")
            .map(|r| format!("{}/{}", r.pcr, r.bank))
            .collect();
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
    };
    (result, reports)
}

fn record_reports(
    records: &[Record],
    digest_errors: &[Option<String>],
    policy: &Policy,
    violations: &[Violation],
) -> Vec<RecordReport> {
    let mut running = std::collections::BTreeMap::new();
    // The running values of the policy's PCR/bank, recomputed (cheap).
    let mut v = vec![0u8; policy.bank.digest_len()];
    for r in records.iter().filter(|r| r.pcr == policy.pcr) {
        match r.digests.iter().find(|(b, _)| *b == policy.bank) {
            Some((_, d)) => {
                v = policy.bank.extend(&v, d);
                running.insert(r.index, crate::util::hex::lower(&v));
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
                .map(|(b, d)| (b.name().to_owned(), crate::util::hex::lower(d)))
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

/// Reads a regular file of at most `cap` bytes (see [`crate::util::read`]).
pub fn read_capped(path: &Path, cap: usize) -> Result<Vec<u8>, String> {
    crate::util::read::read_capped(path, cap).map_err(|e| e.to_string())
}

/// Reads the quote directory (and the log: `log`, else DIR/tpm2-measure.log).
pub fn read_evidence(dir: &Path, log: Option<&Path>) -> Result<Evidence, String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{}: not a directory", dir.display())),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let q = |name: &str| read_capped(&dir.join(name), quote_files::MAX_QUOTE_FILE);
    let log_path = log
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(QUOTE_LOG));
    Ok(Evidence {
        msg: q(QUOTE_MSG)?,
        sig: q(QUOTE_SIG)?,
        pcrs: q(QUOTE_PCRS)?,
        log: read_capped(&log_path, crate::measure::MAX_LOG_SIZE)?,
    })
}

pub fn load_ak(path: &Path) -> Result<PublicKey, String> {
    let bytes = read_capped(path, MAX_AK_FILE)?;
    parse_ak(&bytes).map_err(|e| format!("{}: unusable AK: {e}", path.display()))
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
        out.push_str(&format!("  {}: {status}: {}\n", c.name, c.detail));
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
    out
}

#[cfg(test)]
mod tests {
    use super::quote_files::tests::{attest_bytes, real_pcrs_file};
    use super::quote_files::*;
    use super::*;
    use crate::measure::{record_bytes, Content, Mode, ModuleEntry, Stage};
    use crate::measure::{StageResult, UnsealOutcome};
    use crate::verify::Verdict;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    fn content(stage: Stage, verdict: Verdict) -> Vec<u8> {
        Content {
            version: 1,
            stage,
            mode: Mode::Enforce,
            result: if verdict == Verdict::Ok {
                StageResult::Pass
            } else {
                StageResult::Fail
            },
            anchor_sha256: Some("ab".repeat(32)),
            unseal: UnsealOutcome::Ok,
            modules: vec![ModuleEntry {
                path: "kernel/a.ko".into(),
                sha256: Some("01".repeat(32)),
                key_id: None,
                hash_algo: Some("sha256".into()),
                verdict,
                reason: (verdict != Verdict::Ok).then(|| "why".into()),
            }],
            unverified_loaded: (stage == Stage::PrePivot).then(Vec::new),
        }
        .to_bytes()
    }

    struct Fixture {
        key: p256::ecdsa::SigningKey,
        ak: PublicKey,
        ev: Evidence,
    }

    /// A P-256 AK, a two-record log, and a quote over PCR 12 (sha256) of it.
    fn fixture(nonce: &[u8], contents: &[Vec<u8>]) -> Fixture {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = key.verifying_key().to_sec1_point(false);
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(point.as_bytes());
        let ak = PublicKey::from_spki(&spki).unwrap();
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
            },
        }
    }

    fn sign(key: &p256::ecdsa::SigningKey, msg: &[u8]) -> Vec<u8> {
        let s: p256::ecdsa::Signature = key.sign_prehash(&PcrBank::Sha256.hash(msg)).unwrap();
        let (r, s) = s.split_bytes();
        let mut out = Vec::new();
        out.extend_from_slice(&TPM_ALG_ECDSA.to_be_bytes());
        out.extend_from_slice(&TPM_ALG_SHA256.to_be_bytes());
        out.extend_from_slice(&32u16.to_be_bytes());
        out.extend_from_slice(&r);
        out.extend_from_slice(&32u16.to_be_bytes());
        out.extend_from_slice(&s);
        out
    }

    fn good_contents() -> Vec<Vec<u8>> {
        vec![
            content(Stage::Early, Verdict::Ok),
            content(Stage::PrePivot, Verdict::Ok),
        ]
    }

    fn run(f: &Fixture, nonce: &[u8]) -> Report {
        let p = Policy::parse(
            format!(
                "modseal-attest-policy v1\nanchor-sha256 {}\n",
                "ab".repeat(32)
            )
            .as_bytes(),
        )
        .unwrap();
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
        assert!(r.checks.iter().all(|c| c.status == Status::Pass));
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.replay[0].result, "match");
        // The sha1 bank is used by the log but not quoted.
        assert!(r
            .replay
            .iter()
            .any(|x| x.bank == "sha1" && x.result == "not-quoted"));
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
        let recs = crate::measure::parse_log(&f.ev.log).unwrap();
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
        assert!(r.verdict.contains("not checked"), "{}", r.verdict);
    }

    #[test]
    fn malformed_files_are_bad_input() {
        let f = fixture(b"n", &good_contents());
        let p = Policy::default();
        let mut t = f.ev.clone();
        t.msg.truncate(40);
        let e = evaluate(&f.ak, &t, b"n", &p, false).unwrap_err();
        assert!(
            e.0.starts_with("quote.msg: not a TPMS_ATTEST quote: truncated"),
            "{e}"
        );
        let mut t = f.ev.clone();
        t.sig.push(0);
        assert!(evaluate(&f.ak, &t, b"n", &p, false)
            .unwrap_err()
            .0
            .contains("quote.sig: 1 trailing"));
        let mut t = f.ev.clone();
        t.pcrs.pop();
        assert!(evaluate(&f.ak, &t, b"n", &p, false)
            .unwrap_err()
            .0
            .starts_with("quote.pcrs: "));
        let mut t = f.ev.clone();
        t.log = b"\x1e{garbage\n".to_vec();
        assert!(evaluate(&f.ak, &t, b"n", &p, false)
            .unwrap_err()
            .0
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

    #[test]
    fn signature_scheme_and_key_must_agree() {
        let f = fixture(b"n", &good_contents());
        let rsa_sig = [&TPM_ALG_RSASSA.to_be_bytes()[..], &[0, 0x0b, 0, 2, 1, 2]].concat();
        let s = parse_signature(&rsa_sig).unwrap();
        assert!(check_signature(&f.ak, &s, &f.ev.msg)
            .unwrap_err()
            .contains("cannot come from this AK (ecdsa-p256)"));
        let pss = [&TPM_ALG_RSAPSS.to_be_bytes()[..], &[0, 0x0b, 0, 2, 1, 2]].concat();
        let s = parse_signature(&pss).unwrap();
        assert!(check_signature(&f.ak, &s, &f.ev.msg)
            .unwrap_err()
            .contains("rsapss is not supported"));
        let mut sha1 = f.ev.sig.clone();
        sha1[3] = 0x04;
        let s = parse_signature(&sha1).unwrap();
        assert!(check_signature(&f.ak, &s, &f.ev.msg)
            .unwrap_err()
            .contains("SHA-1"));
        // r longer than the curve, r zero.
        let long = [
            &TPM_ALG_ECDSA.to_be_bytes()[..],
            &[0, 0x0b, 0, 33, 1],
            &[0; 32],
            &[0, 1, 1],
        ]
        .concat();
        let s = parse_signature(&long).unwrap();
        assert!(check_signature(&f.ak, &s, &f.ev.msg)
            .unwrap_err()
            .contains("longer"));
        let zero = [
            &TPM_ALG_ECDSA.to_be_bytes()[..],
            &[0, 0x0b, 0, 1, 0, 0, 1, 1],
        ]
        .concat();
        let s = parse_signature(&zero).unwrap();
        assert!(check_signature(&f.ak, &s, &f.ev.msg)
            .unwrap_err()
            .contains("zero"));
        assert!(check_signature(&f.ak, &Signature::Null, &f.ev.msg).is_err());
    }

    #[test]
    fn short_ecdsa_scalars_are_padded() {
        // TPMs may drop leading zero bytes of r or s; try keys until one signs
        // a message whose r starts with a zero byte.
        let msg = b"message";
        for seed in 1u8..=255 {
            let key = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
            let s: p256::ecdsa::Signature = key.sign_prehash(&PcrBank::Sha256.hash(msg)).unwrap();
            let (r, s) = s.split_bytes();
            if r[0] != 0 {
                continue;
            }
            let sig = Signature::Ecc {
                scheme: TPM_ALG_ECDSA,
                hash: TPM_ALG_SHA256,
                r: r[1..].to_vec(),
                s: s.to_vec(),
            };
            let point = key.verifying_key().to_sec1_point(false);
            let mut spki = vec![
                0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
                0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
            ];
            spki.extend_from_slice(point.as_bytes());
            let ak = PublicKey::from_spki(&spki).unwrap();
            assert!(check_signature(&ak, &sig, msg).is_ok());
            return;
        }
        panic!("no key among 255 gave an r with a leading zero byte");
    }

    #[test]
    fn nonce_and_ak_parsing() {
        assert_eq!(parse_nonce("00ff").unwrap(), vec![0, 0xff]);
        assert!(parse_nonce("xyz").is_err());
        assert!(parse_nonce("").is_err());
        assert!(parse_nonce(&"00".repeat(65))
            .unwrap_err()
            .contains("at most 64"));
        let pem = "-----BEGIN PUBLIC KEY-----\n\
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEAi8Fo7kgJxxMKFBlZHAJOtlLEpN\n\
            Cf8qVNwTdMGbo5Fl5IO+L0L5/G/waoVqWXH3iR54da/V06HJ/8ImeyXU0g==\n\
            -----END PUBLIC KEY-----\n";
        assert_eq!(parse_ak(pem.as_bytes()).unwrap().describe(), "ecdsa-p256");
        assert!(
            parse_ak(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err()
                .contains("PUBLIC KEY")
        );
        assert!(parse_ak(b"garbage").is_err());
    }
}
