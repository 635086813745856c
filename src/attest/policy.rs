//! The attestation policy: what a verifier expects a good boot to have
//! measured. A small text file (format in the README, "Attestation policy"):
//!
//! ```text
//! modseal-attest-policy v1
//! pcr 12                      # the measurement PCR (default 12)
//! bank sha256                 # the bank replayed and compared (default sha256)
//! anchor-sha256 <64 hex>      # repeatable; at least one required
//! mode enforce                # enforce | warn | any (default enforce)
//! stages early pre-pivot      # the exact records, in order (default early pre-pivot)
//! allow-verdict ok            # repeatable; `ok` is always allowed (default: only ok)
//! allow-content-type <type>   # repeatable: foreign records allowed on the PCR (default none)
//! module <sha256> <path>      # repeatable: the exact expected module set (default: any set)
//! ```

use crate::measure::{Content, Mode, Record, Stage, UnsealOutcome};
use crate::tpm::PcrBank;
use crate::verify::Verdict;

pub const HEADER: &str = "modseal-attest-policy v1";
/// A policy file larger than this is refused.
pub const MAX_POLICY_SIZE: usize = 4 * 1024 * 1024;
/// Bound on `module` lines (a kernel has a few thousand modules).
pub const MAX_MODULES: usize = 100_000;
/// Bound on the module reasons and paths quoted in messages.
const QUOTE_LIMIT: usize = 200;

/// Which measured modes are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeRule {
    Enforce,
    Warn,
    Any,
}

impl ModeRule {
    pub fn name(self) -> &'static str {
        match self {
            ModeRule::Enforce => "enforce",
            ModeRule::Warn => "warn",
            ModeRule::Any => "any",
        }
    }

    pub fn allows(self, m: Mode) -> bool {
        matches!(
            (self, m),
            (ModeRule::Any, _) | (ModeRule::Enforce, Mode::Enforce) | (ModeRule::Warn, Mode::Warn)
        )
    }
}

/// One expected module: its file SHA-256 (lower-case hex) and path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ExpectedModule {
    pub sha256: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    pub pcr: u8,
    pub bank: PcrBank,
    /// Expected trust-bundle digests (lower-case hex). Empty only for the
    /// built-in default policy, which does not check anchors.
    pub anchors: Vec<String>,
    pub mode: ModeRule,
    pub stages: Vec<Stage>,
    /// Always contains `ok`.
    pub allow_verdicts: Vec<Verdict>,
    pub allow_content_types: Vec<String>,
    /// The exact module set, sorted by path; `None`: any set.
    pub modules: Option<Vec<ExpectedModule>>,
}

impl Default for Policy {
    /// No policy file: PCR 12, sha256, enforce, early then pre-pivot, every
    /// module ok; the anchor is reported but not checked.
    fn default() -> Self {
        Policy {
            pcr: 12,
            bank: PcrBank::Sha256,
            anchors: Vec::new(),
            mode: ModeRule::Enforce,
            stages: vec![Stage::Early, Stage::PrePivot],
            allow_verdicts: vec![Verdict::Ok],
            allow_content_types: Vec::new(),
            modules: None,
        }
    }
}

pub const VERDICTS: [Verdict; 9] = [
    Verdict::Ok,
    Verdict::Unsigned,
    Verdict::UnknownKey,
    Verdict::BadSignature,
    Verdict::Malformed,
    Verdict::UnsupportedAlgorithm,
    Verdict::Denied,
    Verdict::UntrustedChain,
    Verdict::IoError,
];

pub fn stage_from_name(s: &str) -> Option<Stage> {
    match s {
        "early" => Some(Stage::Early),
        "pre-pivot" => Some(Stage::PrePivot),
        _ => None,
    }
}

/// Lower-case 64-digit hex of a SHA-256, or `None`.
pub fn sha256_hex(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Whether a module path can be written as one policy token: no
/// whitespace or control characters, and no leading `#` (a comment).
pub fn path_is_writable(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 4096
        && !p.starts_with('#')
        && !p.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The text before a comment: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

impl Policy {
    /// Parses a policy file. Every error names its line.
    pub fn parse(bytes: &[u8]) -> Result<Policy, String> {
        if bytes.len() > MAX_POLICY_SIZE {
            return Err(format!(
                "{} bytes, more than the {MAX_POLICY_SIZE}-byte limit",
                bytes.len()
            ));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
        let mut p = Policy::default();
        let mut seen_header = false;
        let mut seen: Vec<&'static str> = Vec::new();
        let mut verdicts = vec![Verdict::Ok];
        let mut modules: Vec<ExpectedModule> = Vec::new();
        let mut once = |key: &'static str, n: usize| -> Result<(), String> {
            if seen.contains(&key) {
                return Err(format!("line {n}: '{key}' given twice"));
            }
            seen.push(key);
            Ok(())
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if !seen_header {
                if line != HEADER {
                    return Err(format!(
                        "line {n}: expected the header '{HEADER}' before anything else"
                    ));
                }
                seen_header = true;
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let (key, args) = match words.split_first() {
                Some((k, a)) => (*k, a),
                None => continue,
            };
            let one = |what: &str| -> Result<&str, String> {
                match args {
                    [a] => Ok(*a),
                    _ => Err(format!("line {n}: '{key}' takes one {what}")),
                }
            };
            match key {
                "pcr" => {
                    once("pcr", n)?;
                    let v = one("PCR index (0-23)")?;
                    p.pcr = match v.parse::<u8>() {
                        Ok(x) if x <= 23 => x,
                        _ => return Err(format!("line {n}: '{v}' is not a PCR index (0-23)")),
                    };
                }
                "bank" => {
                    once("bank", n)?;
                    let v = one("bank (sha1, sha256, sha384, sha512)")?;
                    p.bank = PcrBank::from_name(v).ok_or_else(|| {
                        format!("line {n}: unknown bank '{v}' (sha1, sha256, sha384, sha512)")
                    })?;
                }
                "anchor-sha256" => {
                    let v = one("SHA-256 (64 hex digits)")?;
                    let h = sha256_hex(v).ok_or_else(|| {
                        format!("line {n}: '{v}' is not a SHA-256 (64 hex digits)")
                    })?;
                    if !p.anchors.contains(&h) {
                        p.anchors.push(h);
                    }
                }
                "mode" => {
                    once("mode", n)?;
                    p.mode = match one("mode (enforce, warn, any)")? {
                        "enforce" => ModeRule::Enforce,
                        "warn" => ModeRule::Warn,
                        "any" => ModeRule::Any,
                        v => {
                            return Err(format!(
                                "line {n}: unknown mode '{v}' (enforce, warn, any)"
                            ))
                        }
                    };
                }
                "stages" => {
                    once("stages", n)?;
                    if args.is_empty() || args.len() > 16 {
                        return Err(format!("line {n}: 'stages' takes 1 to 16 stage names"));
                    }
                    p.stages = args
                        .iter()
                        .map(|s| {
                            stage_from_name(s).ok_or_else(|| {
                                format!("line {n}: unknown stage '{s}' (early, pre-pivot)")
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "allow-verdict" => {
                    let v = one("verdict")?;
                    let verdict = VERDICTS
                        .into_iter()
                        .find(|x| x.name() == v)
                        .ok_or_else(|| format!("line {n}: unknown verdict '{v}'"))?;
                    if !verdicts.contains(&verdict) {
                        verdicts.push(verdict);
                    }
                }
                "allow-content-type" => {
                    let v = one("content type")?;
                    if v == crate::measure::CONTENT_TYPE {
                        return Err(format!(
                            "line {n}: '{v}' records are always checked, they cannot be allowed as foreign"
                        ));
                    }
                    if v.chars().any(char::is_control) || v.len() > 256 {
                        return Err(format!("line {n}: content type is not printable"));
                    }
                    if !p.allow_content_types.iter().any(|t| t == v) {
                        p.allow_content_types.push(v.to_owned());
                    }
                }
                "module" => {
                    let (h, path) = match args {
                        [h, path] => (*h, *path),
                        _ => {
                            return Err(format!(
                                "line {n}: 'module' takes a SHA-256 and a path (no spaces)"
                            ))
                        }
                    };
                    let sha256 = sha256_hex(h).ok_or_else(|| {
                        format!("line {n}: '{h}' is not a SHA-256 (64 hex digits)")
                    })?;
                    if !path_is_writable(path) {
                        return Err(format!("line {n}: module path is not printable"));
                    }
                    if modules.len() == MAX_MODULES {
                        return Err(format!("more than {MAX_MODULES} modules"));
                    }
                    modules.push(ExpectedModule {
                        sha256,
                        path: path.to_owned(),
                    });
                }
                other => return Err(format!("line {n}: unknown directive '{}'", clip(other))),
            }
        }
        if !seen_header {
            return Err(format!("empty: no '{HEADER}' header"));
        }
        if p.anchors.is_empty() {
            return Err(
                "no 'anchor-sha256' line: at least one expected trust-bundle digest is required"
                    .into(),
            );
        }
        verdicts.sort();
        p.allow_verdicts = verdicts;
        if !modules.is_empty() {
            modules.sort_by(|a, b| a.path.cmp(&b.path));
            if let Some(w) = modules.windows(2).find(|w| w[0].path == w[1].path) {
                return Err(format!("module '{}' listed twice", w[0].path));
            }
            p.modules = Some(modules);
        }
        Ok(p)
    }

    /// The policy as a file that [`Policy::parse`] reads back to the same policy.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        out.push_str("# modseal attestation policy: see the README, \"Attestation policy\"\n");
        out.push_str(&format!("pcr {}\nbank {}\n", self.pcr, self.bank));
        for a in &self.anchors {
            out.push_str(&format!("anchor-sha256 {a}\n"));
        }
        out.push_str(&format!("mode {}\n", self.mode.name()));
        let stages: Vec<&str> = self.stages.iter().map(|s| s.name()).collect();
        out.push_str(&format!("stages {}\n", stages.join(" ")));
        for v in &self.allow_verdicts {
            out.push_str(&format!("allow-verdict {v}\n"));
        }
        for t in &self.allow_content_types {
            out.push_str(&format!("allow-content-type {t}\n"));
        }
        if let Some(mods) = &self.modules {
            out.push_str(&format!(
                "# the exact module set: {} module(s)\n",
                mods.len()
            ));
            for m in mods {
                out.push_str(&format!("module {} {}\n", m.sha256, m.path));
            }
        }
        out
    }

    pub fn checks_anchors(&self) -> bool {
        !self.anchors.is_empty()
    }
}

/// Makes a string safe for a one-line report: control characters replaced,
/// length bounded.
pub fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(QUOTE_LIMIT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > QUOTE_LIMIT {
        out.push('…');
    }
    out
}

/// One way the records break the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The record (1-based log index), if one is to blame.
    pub record: Option<usize>,
    pub message: String,
}

fn at(r: &Record, msg: String) -> Violation {
    Violation {
        record: Some(r.index),
        message: format!("record {}: {msg}", r.index),
    }
}

/// Checks the records of the policy's PCR against the policy. Returns every
/// violation, most fundamental first: foreign or unreadable records, the
/// stage sequence, then per record (in log order) anchor, unseal, modules
/// (verdicts, unverified loaded modules, the module set) and mode.
pub fn evaluate(policy: &Policy, records: &[Record]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mine: Vec<&Record> = records.iter().filter(|r| r.pcr == policy.pcr).collect();
    let mut contents: Vec<(&Record, Content)> = Vec::new();
    for r in &mine {
        if r.content_type != crate::measure::CONTENT_TYPE {
            let relabelled = serde_json::from_slice::<Content>(&r.content).is_ok();
            if relabelled {
                // content_type is not covered by the digests.
                out.push(at(
                    r,
                    format!(
                        "labelled '{}' but its content is a modseal record (relabelled to hide it)",
                        clip(&r.content_type)
                    ),
                ));
            } else if !policy.allow_content_types.contains(&r.content_type) {
                out.push(at(
                    r,
                    format!(
                        "a foreign '{}' record on PCR {} (the policy allows none: allow-content-type)",
                        clip(&r.content_type),
                        policy.pcr
                    ),
                ));
            }
            continue;
        }
        match serde_json::from_slice::<Content>(&r.content) {
            Ok(c) if c.version != crate::measure::CONTENT_VERSION => out.push(at(
                r,
                format!(
                    "content version {} (this verifier reads version {})",
                    c.version,
                    crate::measure::CONTENT_VERSION
                ),
            )),
            Ok(c) => contents.push((r, c)),
            Err(e) => out.push(at(
                r,
                format!("content is not a modseal record: {}", clip(&e.to_string())),
            )),
        }
    }
    let got: Vec<&str> = contents.iter().map(|(_, c)| c.stage.name()).collect();
    let want: Vec<&str> = policy.stages.iter().map(|s| s.name()).collect();
    if got != want {
        let names = |v: &[&str]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        out.push(Violation {
            record: None,
            message: format!(
                "stages: the policy requires the records {} on PCR {}, the log has {}",
                names(&want),
                policy.pcr,
                names(&got)
            ),
        });
    }
    for (r, c) in &contents {
        out.extend(check_content(policy, r, c));
    }
    out
}

fn check_content(policy: &Policy, r: &Record, c: &Content) -> Vec<Violation> {
    let mut out = Vec::new();
    let stage = c.stage.name();
    let v = |msg: String| at(r, format!("({stage}) {msg}"));
    match &c.anchor_sha256 {
        None => out.push(v("no trust-bundle digest (anchor_sha256 is null)".into())),
        Some(a) if policy.checks_anchors() && !policy.anchors.contains(&a.to_ascii_lowercase()) => {
            out.push(v(format!(
                "unexpected trust anchor: the boot used bundle {}, the policy expects {}",
                clip(a),
                policy.anchors.join(" or ")
            )))
        }
        Some(_) => {}
    }
    if c.unseal != UnsealOutcome::Ok {
        out.push(v(format!(
            "unseal {}: the trust bundle's digest was not confirmed by the TPM",
            c.unseal
        )));
    }
    for m in &c.modules {
        if !policy.allow_verdicts.contains(&m.verdict) {
            let reason = m
                .reason
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| format!(": {}", clip(s)))
                .unwrap_or_default();
            out.push(v(format!(
                "module {}: {}{reason}",
                clip(&m.path),
                m.verdict
            )));
        }
    }
    match (&c.unverified_loaded, c.stage) {
        (Some(u), _) if !u.is_empty() => {
            let names: Vec<String> = u.iter().take(20).map(|s| clip(s)).collect();
            out.push(v(format!(
                "{} loaded module(s) without a verified file: {}{}",
                u.len(),
                names.join(", "),
                if u.len() > 20 { ", …" } else { "" }
            )));
        }
        (None, Stage::PrePivot) => out.push(v(
            "no unverified_loaded list: the loaded modules were not reconciled".into(),
        )),
        _ => {}
    }
    if let Some(expected) = &policy.modules {
        out.extend(module_set(r, stage, expected, c));
    }
    if !policy.mode.allows(c.mode) {
        out.push(v(format!(
            "mode {}, the policy requires {}",
            c.mode.name(),
            policy.mode.name()
        )));
    }
    out
}

fn module_set(r: &Record, stage: &str, expected: &[ExpectedModule], c: &Content) -> Vec<Violation> {
    use std::collections::BTreeMap;
    let mut out = Vec::new();
    let want: BTreeMap<&str, &str> = expected
        .iter()
        .map(|m| (m.path.as_str(), m.sha256.as_str()))
        .collect();
    let mut have: BTreeMap<&str, Option<&str>> = BTreeMap::new();
    for m in &c.modules {
        if have.insert(m.path.as_str(), m.sha256.as_deref()).is_some() {
            out.push(at(
                r,
                format!("({stage}) module {} listed twice", clip(&m.path)),
            ));
        }
    }
    for (path, sha) in &have {
        match want.get(path) {
            None => out.push(at(
                r,
                format!(
                    "({stage}) unexpected module {} (not in the policy's module set)",
                    clip(path)
                ),
            )),
            Some(w) if sha.map(str::to_ascii_lowercase).as_deref() != Some(*w) => out.push(at(
                r,
                format!(
                    "({stage}) module {}: sha256 {} , the policy expects {w}",
                    clip(path),
                    sha.map(clip).unwrap_or_else(|| "none".into())
                ),
            )),
            Some(_) => {}
        }
    }
    for path in want.keys() {
        if !have.contains_key(path) {
            out.push(at(
                r,
                format!(
                    "({stage}) module {} is missing (the policy expects it)",
                    clip(path)
                ),
            ));
        }
    }
    out
}

/// A policy from a known-good log: its records' PCR, anchors, mode and
/// stages; the module set when `modules`. Refuses a log that is not a
/// passing boot, and checks that the policy accepts the log it came from.
pub fn from_log(records: &[Record], modules: bool) -> Result<Policy, String> {
    let mut contents = Vec::new();
    for r in records {
        r.check_digests()?;
        match r.modseal_content() {
            Some(Ok(c)) => contents.push((r, c)),
            Some(Err(e)) => return Err(e),
            None => {
                return Err(format!(
                "record {}: a foreign '{}' record: make the policy by hand (allow-content-type)",
                r.index,
                clip(&r.content_type)
            ))
            }
        }
    }
    let (first, c0) = contents
        .first()
        .ok_or_else(|| "the log has no modseal record".to_owned())?;
    let mut p = Policy {
        pcr: first.pcr,
        bank: PcrBank::Sha256,
        anchors: Vec::new(),
        mode: match c0.mode {
            Mode::Enforce => ModeRule::Enforce,
            Mode::Warn => ModeRule::Warn,
        },
        stages: Vec::new(),
        allow_verdicts: vec![Verdict::Ok],
        allow_content_types: Vec::new(),
        modules: None,
    };
    for (r, c) in &contents {
        if r.pcr != p.pcr {
            return Err(format!(
                "record {}: PCR {}, record {} PCR {}: one policy covers one PCR",
                r.index, r.pcr, first.index, p.pcr
            ));
        }
        if !r.digests.iter().any(|(b, _)| *b == PcrBank::Sha256) {
            return Err(format!("record {}: no sha256 digest", r.index));
        }
        if !c.passed() {
            let why = check_content(&Policy::default(), r, c)
                .into_iter()
                .next()
                .map(|v| v.message)
                .unwrap_or_else(|| format!("record {}: result {}", r.index, c.result));
            return Err(format!("not a passing boot: {why}"));
        }
        if c.mode != c0.mode {
            return Err(format!(
                "record {}: mode {}, record {} mode {}: the log mixes modes",
                r.index,
                c.mode.name(),
                first.index,
                c0.mode.name()
            ));
        }
        match &c.anchor_sha256 {
            Some(a) => {
                let a = sha256_hex(a)
                    .ok_or_else(|| format!("record {}: anchor_sha256 is not a SHA-256", r.index))?;
                if !p.anchors.contains(&a) {
                    p.anchors.push(a);
                }
            }
            None => return Err(format!("record {}: no anchor_sha256", r.index)),
        }
        p.stages.push(c.stage);
    }
    if modules {
        let mut set: Option<Vec<ExpectedModule>> = None;
        for (r, c) in &contents {
            let mut mods = Vec::new();
            for m in &c.modules {
                let sha = m.sha256.as_deref().and_then(sha256_hex).ok_or_else(|| {
                    format!(
                        "record {}: module {} has no SHA-256",
                        r.index,
                        clip(&m.path)
                    )
                })?;
                if !path_is_writable(&m.path) {
                    return Err(format!(
                        "record {}: module path {} has spaces or control characters, or starts with '#'",
                        r.index,
                        clip(&m.path)
                    ));
                }
                mods.push(ExpectedModule {
                    sha256: sha,
                    path: m.path.clone(),
                });
            }
            mods.sort_by(|a, b| a.path.cmp(&b.path));
            match &set {
                None => set = Some(mods),
                Some(s) if *s != mods => {
                    return Err(format!(
                    "record {}: its module set differs from record {}'s: no single expected set",
                    r.index, first.index
                ))
                }
                Some(_) => {}
            }
        }
        p.modules = set;
    }
    if let Some(v) = evaluate(&p, records).into_iter().next() {
        return Err(format!(
            "the policy made from the log rejects it: {}",
            v.message
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::StageResult;
    use crate::measure::{parse_log, record_bytes, ModuleEntry};

    fn content(stage: Stage, mode: Mode, verdict: Verdict) -> Content {
        Content {
            version: 1,
            stage,
            mode,
            result: if verdict == Verdict::Ok {
                StageResult::Pass
            } else {
                StageResult::Fail
            },
            anchor_sha256: Some("ab".repeat(32)),
            unseal: UnsealOutcome::Ok,
            modules: vec![
                ModuleEntry {
                    path: "kernel/a.ko".into(),
                    sha256: Some("01".repeat(32)),
                    key_id: Some("AA".into()),
                    hash_algo: Some("sha256".into()),
                    verdict: Verdict::Ok,
                    reason: None,
                },
                ModuleEntry {
                    path: "kernel/b.ko".into(),
                    sha256: Some("02".repeat(32)),
                    key_id: Some("AA".into()),
                    hash_algo: Some("sha256".into()),
                    verdict,
                    reason: (verdict != Verdict::Ok).then(|| "the\x1b[31m reason".into()),
                },
            ],
            unverified_loaded: (stage == Stage::PrePivot).then(Vec::new),
        }
    }

    pub(crate) fn log_of(contents: &[Content]) -> Vec<Record> {
        let mut log = Vec::new();
        for c in contents {
            log.extend(record_bytes(
                12,
                &c.to_bytes(),
                &[PcrBank::Sha1, PcrBank::Sha256],
            ));
        }
        parse_log(&log).unwrap()
    }

    fn good() -> Vec<Record> {
        log_of(&[
            content(Stage::Early, Mode::Enforce, Verdict::Ok),
            content(Stage::PrePivot, Mode::Enforce, Verdict::Ok),
        ])
    }

    #[test]
    fn parse_and_render_round_trip() {
        let text = format!(
            "# comment\n\n{HEADER}\npcr 13   # trailing comment\nbank sha384\nanchor-sha256 {}\nanchor-sha256 {}\n\
             mode any\nstages pre-pivot\nallow-verdict unsigned\nallow-content-type systemd\n\
             module {} kernel/x#y.ko\nmodule {} kernel/a.ko\n",
            "AB".repeat(32),
            "cd".repeat(32),
            "01".repeat(32),
            "02".repeat(32)
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert_eq!(p.pcr, 13);
        assert_eq!(p.bank, PcrBank::Sha384);
        assert_eq!(p.anchors, vec!["ab".repeat(32), "cd".repeat(32)]);
        assert_eq!(p.mode, ModeRule::Any);
        assert_eq!(p.stages, vec![Stage::PrePivot]);
        assert_eq!(p.allow_verdicts, vec![Verdict::Ok, Verdict::Unsigned]);
        assert_eq!(p.allow_content_types, vec!["systemd".to_owned()]);
        let mods = p.modules.clone().unwrap();
        // `#` inside a token is not a comment; sorted by path.
        assert_eq!(mods[0].path, "kernel/a.ko");
        assert_eq!(mods[1].path, "kernel/x#y.ko");
        assert_eq!(Policy::parse(p.render().as_bytes()).unwrap(), p);
    }

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let p = Policy::parse(format!("{HEADER}\nanchor-sha256 {}\n", "00".repeat(32)).as_bytes())
            .unwrap();
        let d = Policy::default();
        assert_eq!((p.pcr, p.bank, p.mode), (d.pcr, d.bank, d.mode));
        assert_eq!(p.stages, d.stages);
        assert_eq!(p.allow_verdicts, vec![Verdict::Ok]);
        assert!(p.modules.is_none());
    }

    #[test]
    fn malformed_policies_are_named() {
        let a = format!("anchor-sha256 {}\n", "00".repeat(32));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "header"),
            ("pcr 12\n".into(), "header"),
            (format!("{HEADER}\n"), "anchor-sha256"),
            (format!("{HEADER}\n{a}pcr 24\n"), "not a PCR"),
            (format!("{HEADER}\n{a}pcr 1\npcr 2\n"), "twice"),
            (format!("{HEADER}\n{a}bank md5\n"), "unknown bank"),
            (format!("{HEADER}\nanchor-sha256 00\n"), "not a SHA-256"),
            (format!("{HEADER}\n{a}mode strict\n"), "unknown mode"),
            (format!("{HEADER}\n{a}stages early late\n"), "unknown stage"),
            (format!("{HEADER}\n{a}stages\n"), "1 to 16"),
            (
                format!("{HEADER}\n{a}allow-verdict fine\n"),
                "unknown verdict",
            ),
            (
                format!("{HEADER}\n{a}allow-content-type modseal\n"),
                "always checked",
            ),
            (format!("{HEADER}\n{a}module 00 x.ko\n"), "not a SHA-256"),
            (
                format!("{HEADER}\n{a}module {} a b.ko\n", "00".repeat(32)),
                "no spaces",
            ),
            (
                format!(
                    "{HEADER}\n{a}module {0} a.ko\nmodule {0} a.ko\n",
                    "00".repeat(32)
                ),
                "twice",
            ),
            (
                format!("{HEADER}\n{a}frobnicate yes\n"),
                "line 3: unknown directive",
            ),
        ];
        for (text, want) in cases {
            let e = Policy::parse(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(Policy::parse(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
        let huge = vec![b'#'; MAX_POLICY_SIZE + 1];
        assert!(Policy::parse(&huge).unwrap_err().contains("limit"));
    }

    #[test]
    fn good_log_passes_and_makes_a_policy_that_accepts_it() {
        let recs = good();
        let p = from_log(&recs, true).unwrap();
        assert_eq!(p.anchors, vec!["ab".repeat(32)]);
        assert_eq!(p.stages, vec![Stage::Early, Stage::PrePivot]);
        assert_eq!(p.modules.as_ref().map(Vec::len), Some(2));
        assert!(evaluate(&p, &recs).is_empty());
        assert!(evaluate(&Policy::default(), &recs).is_empty());
        let parsed = Policy::parse(p.render().as_bytes()).unwrap();
        assert_eq!(parsed, p);
    }

    #[test]
    fn violations_name_record_module_and_verdict() {
        let recs = log_of(&[
            content(Stage::Early, Mode::Warn, Verdict::BadSignature),
            content(Stage::PrePivot, Mode::Warn, Verdict::Ok),
        ]);
        let v = evaluate(&Policy::default(), &recs);
        assert_eq!(
            v[0].message,
            "record 1: (early) module kernel/b.ko: bad-signature: the?[31m reason"
        );
        assert_eq!(v[0].record, Some(1));
        assert!(v
            .iter()
            .any(|x| x.message.contains("mode warn, the policy requires enforce")));
        assert!(from_log(&recs, false)
            .unwrap_err()
            .contains("not a passing boot"));
        // Allowed by the policy: only the mode is left, and `any` allows it.
        let mut p = Policy::default();
        p.allow_verdicts.push(Verdict::BadSignature);
        p.mode = ModeRule::Any;
        assert!(evaluate(&p, &recs).is_empty());
    }

    #[test]
    fn stages_anchor_modules_and_foreign_records() {
        let recs = good();
        let mut p = from_log(&recs, true).unwrap();
        // Only one record expected.
        p.stages = vec![Stage::Early];
        assert!(evaluate(&p, &recs)[0].message.starts_with("stages:"));
        p.stages = vec![Stage::Early, Stage::PrePivot];
        p.anchors = vec!["cd".repeat(32)];
        assert!(evaluate(&p, &recs)[0]
            .message
            .contains("unexpected trust anchor"));
        p.anchors = vec!["ab".repeat(32)];
        if let Some(m) = p.modules.as_mut() {
            m[0].sha256 = "ff".repeat(32);
            m.remove(1);
        }
        let v = evaluate(&p, &recs);
        assert!(
            v.iter()
                .any(|x| x.message.contains("module kernel/a.ko: sha256")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|x| x.message.contains("unexpected module kernel/b.ko")),
            "{v:?}"
        );
        // A record relabelled to another content type is still seen.
        let mut relabelled = good();
        relabelled[1].content_type = "systemd".into();
        let v = evaluate(&Policy::default(), &relabelled);
        assert!(v[0].message.contains("relabelled"), "{v:?}");
        // A foreign record: refused unless allowed.
        let mut log = Vec::new();
        for r in good() {
            log.extend(record_bytes(12, &r.content, &[PcrBank::Sha256]));
        }
        let foreign = b"{\"x\":1}";
        let mut extra = record_bytes(12, foreign, &[PcrBank::Sha256]);
        let s = String::from_utf8(extra.clone())
            .unwrap()
            .replace("\"modseal\"", "\"other\"");
        extra = s.into_bytes();
        log.extend(extra);
        let recs = parse_log(&log).unwrap();
        assert!(evaluate(&Policy::default(), &recs)[0]
            .message
            .contains("foreign 'other'"));
        let mut p = Policy::default();
        p.allow_content_types.push("other".into());
        assert!(evaluate(&p, &recs).is_empty());
    }

    #[test]
    fn unseal_and_unverified_loaded() {
        let mut early = content(Stage::Early, Mode::Enforce, Verdict::Ok);
        early.unseal = UnsealOutcome::PcrChanged;
        let mut pp = content(Stage::PrePivot, Mode::Enforce, Verdict::Ok);
        pp.unverified_loaded = Some(vec!["rootkit".into()]);
        let v = evaluate(&Policy::default(), &log_of(&[early, pp.clone()]));
        assert!(v[0].message.contains("unseal pcr-changed"), "{v:?}");
        assert!(v[1].message.contains("rootkit"), "{v:?}");
        pp.unverified_loaded = None;
        let v = evaluate(
            &Policy::default(),
            &log_of(&[content(Stage::Early, Mode::Enforce, Verdict::Ok), pp]),
        );
        assert!(v[0].message.contains("not reconciled"), "{v:?}");
    }
}
