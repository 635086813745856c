//! The records of the policy's PCR against the policy: every violation,
//! most fundamental first.

use super::{ExpectedModule, Policy, Violation};
use crate::measure::{Content, Record, UnsealOutcome};
use crate::util::text::clip;

/// A violation of record `r`.
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

/// The violations of one modseal record's content.
pub(super) fn check_content(policy: &Policy, r: &Record, c: &Content) -> Vec<Violation> {
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
        // Version 2 checks the loaded modules at both stages.
        (None, _) => out.push(v(
            "no unverified_loaded list: the loaded modules were not reconciled".into(),
        )),
        _ => {}
    }
    for l in &c.loaded {
        out.push(v(format!("loaded: {}", clip(l))));
    }
    for f in &c.config_refused {
        out.push(v(format!("module config refused: {}", clip(f))));
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

/// The record's modules against the expected set.
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
