//! What modseal measures: one event-log record per boot stage, and the PCR
//! arithmetic that ties the log to the TPM.
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
use serde_json::value::RawValue;

use crate::tpm::PcrBank;
use crate::verify::{Report, Verdict};

/// RFC 7464 record separator.
pub const RS: u8 = 0x1e;
pub const CONTENT_TYPE: &str = "modseal";
pub const CONTENT_VERSION: u32 = 1;
/// A log larger than this is refused: a boot writes two records.
pub const MAX_LOG_SIZE: usize = 64 * 1024 * 1024;
pub const MAX_RECORDS: usize = 4096;

/// The boot stage a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before udev: every module file in the initramfs.
    Early,
    /// Before the switch to the real root: files again, plus loaded modules.
    PrePivot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    pub sha256: Option<String>,
    pub key_id: Option<String>,
    pub hash_algo: Option<String>,
    pub verdict: Verdict,
    /// Present only for failures, so a good boot's content is predictable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The measured content of one stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    pub version: u32,
    pub stage: Stage,
    pub mode: Mode,
    /// `pass` or `fail`.
    pub result: StageResult,
    /// SHA-256 of the trust bundle as read (confirmed only when `unseal` is `ok`).
    pub anchor_sha256: Option<String>,
    /// `ok`, or the named unseal failure.
    pub unseal: UnsealOutcome,
    pub modules: Vec<ModuleEntry>,
    /// At pre-pivot: loaded modules without a verified file (empty when all are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_loaded: Option<Vec<String>>,
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
            modules,
            unverified_loaded,
        }
    }

    pub fn passed(&self) -> bool {
        self.result == StageResult::Pass
    }

    /// The exact bytes that are hashed and written.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
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

/// Serializes one record, separator and newline included.
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

/// A record as read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based position in the log.
    pub index: usize,
    pub pcr: u8,
    pub digests: Vec<(PcrBank, Vec<u8>)>,
    pub content_type: String,
    /// The exact content bytes.
    pub content: Vec<u8>,
}

impl Record {
    /// The modseal content, when this is a modseal record.
    pub fn modseal_content(&self) -> Option<Result<Content, String>> {
        (self.content_type == CONTENT_TYPE).then(|| {
            serde_json::from_slice(&self.content)
                .map_err(|e| format!("record {}: content: {e}", self.index))
        })
    }

    /// Checks that every digest is the hash of the content bytes.
    pub fn check_digests(&self) -> Result<(), String> {
        if self.digests.is_empty() {
            return Err(format!("record {}: no digests", self.index));
        }
        for (bank, d) in &self.digests {
            if bank.hash(&self.content) != *d {
                return Err(format!(
                    "record {}: {bank} digest does not match the content",
                    self.index
                ));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    pcr: u8,
    digests: Vec<RawDigest>,
    content_type: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDigest {
    hash_alg: String,
    digest: String,
}

/// Parses a JSON-SEQ log. Any malformed record is an error naming it: a
/// log that cannot be read completely cannot be trusted partly.
pub fn parse_log(bytes: &[u8]) -> Result<Vec<Record>, String> {
    if bytes.len() > MAX_LOG_SIZE {
        return Err(format!(
            "log is {} bytes, more than the {MAX_LOG_SIZE}-byte limit",
            bytes.len()
        ));
    }
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.first() != Some(&RS) {
        return Err("log does not start with a record separator (0x1E)".into());
    }
    let mut records = Vec::new();
    for (i, chunk) in bytes.split(|&b| b == RS).skip(1).enumerate() {
        let index = i + 1;
        if index > MAX_RECORDS {
            return Err(format!("more than {MAX_RECORDS} records"));
        }
        let text = std::str::from_utf8(chunk).map_err(|_| format!("record {index}: not UTF-8"))?;
        let text = text
            .strip_suffix('\n')
            .ok_or_else(|| format!("record {index}: truncated (no final newline)"))?;
        let raw: RawRecord<'_> =
            serde_json::from_str(text).map_err(|e| format!("record {index}: {e}"))?;
        if raw.pcr > 23 {
            return Err(format!("record {index}: PCR {} out of range", raw.pcr));
        }
        let mut digests = Vec::new();
        for d in &raw.digests {
            let bank = PcrBank::from_name(&d.hash_alg)
                .ok_or_else(|| format!("record {index}: unknown hashAlg '{}'", d.hash_alg))?;
            let value = crate::util::hex::parse(&d.digest)
                .filter(|v| v.len() == bank.digest_len())
                .ok_or_else(|| format!("record {index}: bad {bank} digest"))?;
            if digests.iter().any(|(b, _)| *b == bank) {
                return Err(format!("record {index}: {bank} digest repeated"));
            }
            digests.push((bank, value));
        }
        records.push(Record {
            index,
            pcr: raw.pcr,
            digests,
            content_type: raw.content_type,
            content: raw.content.get().as_bytes().to_vec(),
        });
    }
    Ok(records)
}

/// The PCR values a log implies for `pcr` in `bank`, starting from `from`.
/// Every record's digests must match its content.
pub fn replay(records: &[Record], pcr: u8, bank: PcrBank, from: &[u8]) -> Result<Vec<u8>, String> {
    let mut value = from.to_vec();
    for r in records.iter().filter(|r| r.pcr == pcr) {
        r.check_digests()?;
        let d = r
            .digests
            .iter()
            .find(|(b, _)| *b == bank)
            .map(|(_, d)| d)
            .ok_or_else(|| format!("record {}: no {bank} digest", r.index))?;
        value = bank.extend(&value, d);
    }
    Ok(value)
}

/// Why the log does not explain the live PCR value, naming the first record
/// that does not fit; `None` when it does.
pub fn first_mismatch(
    records: &[Record],
    pcr: u8,
    bank: PcrBank,
    from: &[u8],
    live: &[u8],
) -> Option<String> {
    let mine: Vec<&Record> = records.iter().filter(|r| r.pcr == pcr).collect();
    let mut value = from.to_vec();
    let mut prefixes = vec![value.clone()];
    for r in &mine {
        if let Err(e) = r.check_digests() {
            return Some(format!("{e} (the record was edited)"));
        }
        match r.digests.iter().find(|(b, _)| *b == bank) {
            Some((_, d)) => value = bank.extend(&value, d),
            None => return Some(format!("record {}: no {bank} digest", r.index)),
        }
        prefixes.push(value.clone());
    }
    if value == live {
        return None;
    }
    // The TPM may have stopped partway: records after that point were not measured.
    if let Some(k) = prefixes.iter().position(|p| p == live) {
        if let Some(r) = mine.get(k) {
            return Some(format!(
                "record {} and later were not measured into PCR {pcr} (or were added to the log)",
                r.index
            ));
        }
    }
    Some(match mine.first() {
        Some(r) => format!(
            "no prefix of the log's {} record(s) reaches the TPM's PCR {pcr} {} value {}; the first record that does not fit is record {} (records missing, reordered or edited, or another party extended the PCR)",
            mine.len(),
            bank,
            crate::util::hex::lower(live),
            r.index
        ),
        None => format!("no record for PCR {pcr}, but the TPM has {}", crate::util::hex::lower(live)),
    })
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

    #[test]
    fn records_round_trip_and_replay() {
        let c = Content::new(
            Stage::Early,
            Mode::Enforce,
            Some([2; 32]),
            UnsealOutcome::Ok,
            &[report("/m/a.ko", Verdict::Ok)],
            "/m",
            None,
        )
        .to_bytes();
        let banks = [PcrBank::Sha1, PcrBank::Sha256];
        let mut log = record_bytes(12, &c, &banks);
        log.extend(record_bytes(12, b"{\"x\":1}", &banks));
        let recs = parse_log(&log).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].content, c);
        let v = replay(&recs, 12, PcrBank::Sha256, &[0; 32]).unwrap();
        let d1 = PcrBank::Sha256.hash(&c);
        let d2 = PcrBank::Sha256.hash(b"{\"x\":1}");
        let want = PcrBank::Sha256.extend(&PcrBank::Sha256.extend(&[0; 32], &d1), &d2);
        assert_eq!(v, want);
        assert!(first_mismatch(&recs, 12, PcrBank::Sha256, &[0; 32], &want).is_none());
        assert!(first_mismatch(&recs, 12, PcrBank::Sha256, &[0; 32], &[1; 32]).is_some());
    }

    #[test]
    fn edited_content_breaks_the_digest() {
        let c = b"{\"verdict\":\"bad-signature\"}";
        let log = record_bytes(12, c, &[PcrBank::Sha256]);
        let edited = String::from_utf8(log)
            .unwrap()
            .replace("bad-signature", "ok")
            .into_bytes();
        let recs = parse_log(&edited).unwrap();
        assert!(replay(&recs, 12, PcrBank::Sha256, &[0; 32]).is_err());
    }

    #[test]
    fn hostile_logs_are_errors() {
        for bad in [&b"{}"[..], b"\x1e{", b"\x1e{}\n", b"\x1e{\"pcr\":99,\"digests\":[],\"content_type\":\"x\",\"content\":{}}\n",
            b"\x1e{\"pcr\":1,\"digests\":[{\"hashAlg\":\"md5\",\"digest\":\"00\"}],\"content_type\":\"x\",\"content\":{}}\n"] {
            assert!(parse_log(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse_log(b"").unwrap().is_empty());
    }
}
