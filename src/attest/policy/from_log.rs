//! A policy made from a known-good boot's log (`modseal attest
//! --make-policy`).

use super::check::{check_content, evaluate};
use super::{path_is_writable, sha256_hex, ExpectedModule, ModeRule, Policy};
use crate::measure::{Content, MeasureError, Mode, Record};
use crate::tpm::PcrBank;
use crate::util::text::clip;
use crate::verify::Verdict;

/// Why no policy is made from a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MakePolicyError {
    /// A record's digests or content do not check ([`Record::verify_digests`],
    /// [`Record::parse_content`]).
    #[error("{0}")]
    Record(MeasureError),
    /// A record that is not modseal's.
    #[error(
        "record {index}: a foreign '{}' record: make the policy by hand (allow-content-type)",
        clip(content_type)
    )]
    Foreign {
        /// The record.
        index: usize,
        /// Its content type.
        content_type: String,
    },
    /// No modseal record at all.
    #[error("the log has no modseal record")]
    Empty,
    /// Records on two PCRs.
    #[error(
        "record {index}: PCR {pcr}, record {first} PCR {first_pcr}: one policy covers one PCR"
    )]
    Pcrs {
        /// The record.
        index: usize,
        /// Its PCR.
        pcr: u8,
        /// The first record.
        first: usize,
        /// Its PCR.
        first_pcr: u8,
    },
    /// A record without a SHA-256 digest.
    #[error("record {0}: no sha256 digest")]
    NoSha256(usize),
    /// A stage that did not pass.
    #[error("not a passing boot: {0}")]
    NotPassing(String),
    /// Records of two modes.
    #[error("record {index}: mode {}, record {first} mode {}: the log mixes modes", mode.name(), first_mode.name())]
    Modes {
        /// The record.
        index: usize,
        /// Its mode.
        mode: Mode,
        /// The first record.
        first: usize,
        /// Its mode.
        first_mode: Mode,
    },
    /// An anchor that is not a SHA-256.
    #[error("record {0}: anchor_sha256 is not a SHA-256")]
    BadAnchor(usize),
    /// No anchor.
    #[error("record {0}: no anchor_sha256")]
    NoAnchor(usize),
    /// A module without a digest.
    #[error("record {index}: module {} has no SHA-256", clip(path))]
    ModuleDigest {
        /// The record.
        index: usize,
        /// The module.
        path: String,
    },
    /// A module path a policy file cannot hold.
    #[error(
        "record {index}: module path {} has spaces or control characters, or starts with '#'",
        clip(path)
    )]
    ModulePath {
        /// The record.
        index: usize,
        /// The module.
        path: String,
    },
    /// Two records with different module sets.
    #[error(
        "record {index}: its module set differs from record {first}'s: no single expected set"
    )]
    ModuleSets {
        /// The record.
        index: usize,
        /// The first record.
        first: usize,
    },
    /// The policy made refuses its own log.
    #[error("the policy made from the log rejects it: {0}")]
    Rejects(String),
}

/// A policy from a known-good log: its records' PCR, anchors, mode and
/// stages; the module set when `modules`. Refuses a log that is not a
/// passing boot, and checks that the policy accepts the log it came from.
pub fn from_log(records: &[Record], modules: bool) -> Result<Policy, MakePolicyError> {
    let contents = modseal_contents(records)?;
    let (first, c0) = contents.first().ok_or(MakePolicyError::Empty)?;
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
        boot: None,
    };
    for (r, c) in &contents {
        add_record(&mut p, (first, c0), r, c)?;
    }
    if modules {
        p.modules = Some(module_set(&contents, first.index)?);
    }
    if let Some(v) = evaluate(&p, records).into_iter().next() {
        return Err(MakePolicyError::Rejects(v.message));
    }
    Ok(p)
}

/// Every record, with its digests checked, as a modseal record.
fn modseal_contents(records: &[Record]) -> Result<Vec<(&Record, Content)>, MakePolicyError> {
    let mut contents = Vec::new();
    for r in records {
        r.verify_digests().map_err(MakePolicyError::Record)?;
        match r.parse_content() {
            Some(Ok(c)) => contents.push((r, c)),
            Some(Err(e)) => return Err(MakePolicyError::Record(e)),
            None => {
                return Err(MakePolicyError::Foreign {
                    index: r.index,
                    content_type: r.content_type.clone(),
                })
            }
        }
    }
    Ok(contents)
}

/// One record's PCR, stage and anchor into the policy, after checking that
/// it belongs to the same passing boot as the first.
fn add_record(
    p: &mut Policy,
    (first, c0): (&Record, &Content),
    r: &Record,
    c: &Content,
) -> Result<(), MakePolicyError> {
    if r.pcr != p.pcr {
        return Err(MakePolicyError::Pcrs {
            index: r.index,
            pcr: r.pcr,
            first: first.index,
            first_pcr: p.pcr,
        });
    }
    if !r.digests.iter().any(|(b, _)| *b == PcrBank::Sha256) {
        return Err(MakePolicyError::NoSha256(r.index));
    }
    if !c.passed() {
        let why = check_content(&Policy::default(), r, c)
            .into_iter()
            .next()
            .map(|v| v.message)
            .unwrap_or_else(|| format!("record {}: result {}", r.index, c.result));
        return Err(MakePolicyError::NotPassing(why));
    }
    if c.mode != c0.mode {
        return Err(MakePolicyError::Modes {
            index: r.index,
            mode: c.mode,
            first: first.index,
            first_mode: c0.mode,
        });
    }
    let a = c
        .anchor_sha256
        .as_deref()
        .ok_or(MakePolicyError::NoAnchor(r.index))?;
    let a = sha256_hex(a).ok_or(MakePolicyError::BadAnchor(r.index))?;
    if !p.anchors.contains(&a) {
        p.anchors.push(a);
    }
    p.stages.push(c.stage);
    Ok(())
}

/// The one module set every record has, sorted by path.
fn module_set(
    contents: &[(&Record, Content)],
    first: usize,
) -> Result<Vec<ExpectedModule>, MakePolicyError> {
    let mut set: Option<Vec<ExpectedModule>> = None;
    for (r, c) in contents {
        let mut mods = Vec::new();
        for m in &c.modules {
            let sha256 = m.sha256.as_deref().and_then(sha256_hex).ok_or_else(|| {
                MakePolicyError::ModuleDigest {
                    index: r.index,
                    path: m.path.clone(),
                }
            })?;
            if !path_is_writable(&m.path) {
                return Err(MakePolicyError::ModulePath {
                    index: r.index,
                    path: m.path.clone(),
                });
            }
            mods.push(ExpectedModule {
                sha256,
                path: m.path.clone(),
            });
        }
        mods.sort_by(|a, b| a.path.cmp(&b.path));
        match &set {
            None => set = Some(mods),
            Some(s) if *s != mods => {
                return Err(MakePolicyError::ModuleSets {
                    index: r.index,
                    first,
                })
            }
            Some(_) => {}
        }
    }
    Ok(set.unwrap_or_default())
}
