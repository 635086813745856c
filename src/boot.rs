//! `modseal boot`: the initramfs flow, runnable on a host.
//!
//! Unseal and check the trust bundle, verify every module file, at pre-pivot
//! reconcile the loaded modules, then measure the outcome (failures too) into
//! the PCR with a matching event-log record. The TPM commands per run are a
//! fixed handful whatever the module count: one unseal, one bank query, one
//! extend.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::kmsg::{Level, Sink};
use crate::measure::{Content, Mode, Stage};
use crate::tpm::{PcrBank, Tpm, TpmError};
use crate::trust::TrustStore;
use crate::verify::{Options, Report, Verdict};

pub const DEFAULT_CONFIG: &str = "/etc/modseal/modseal.conf";
pub const DEFAULT_TRUST: &str = "/etc/modseal/trust.bundle";
pub const DEFAULT_SEALED: &str = "/etc/modseal/sealed";
pub const DEFAULT_LOG: &str = "/run/log/modseal/tpm2-measure.log";
pub const DEFAULT_PCR: u8 = 12;

/// Settings of a boot run: config file, then command-line flags on top.
///
/// The config file is `key = value` lines (`#` comments):
/// `trust`, `sealed`, `pcr`, `mode` (enforce|warn), `log`, `modules`, `tcti`,
/// `allow-weaken` (yes|no: whether `rd.modseal=warn|off` on the kernel
/// command line may weaken an enforce config; default no).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub trust: PathBuf,
    pub sealed: PathBuf,
    pub pcr: u8,
    pub mode: Mode,
    pub log: PathBuf,
    pub modules: Option<PathBuf>,
    pub tcti: Option<String>,
    pub allow_weaken: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trust: DEFAULT_TRUST.into(),
            sealed: DEFAULT_SEALED.into(),
            pcr: DEFAULT_PCR,
            mode: Mode::Enforce,
            log: DEFAULT_LOG.into(),
            modules: None,
            tcti: None,
            allow_weaken: false,
        }
    }
}

impl Config {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut c = Config::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .ok_or_else(|| format!("line {}: expected 'key = value'", n + 1))?;
            let bad = |what: &str| format!("line {}: {k}: {what}", n + 1);
            match k {
                "trust" => c.trust = v.into(),
                "sealed" => c.sealed = v.into(),
                "log" => c.log = v.into(),
                "modules" => c.modules = Some(v.into()),
                "tcti" => c.tcti = Some(v.into()),
                "pcr" => {
                    c.pcr = v
                        .parse()
                        .ok()
                        .filter(|p| *p <= 23)
                        .ok_or_else(|| bad("not a PCR index 0-23"))?
                }
                "mode" => {
                    c.mode = match v {
                        "enforce" => Mode::Enforce,
                        "warn" => Mode::Warn,
                        _ => return Err(bad("must be enforce or warn")),
                    }
                }
                "allow-weaken" => {
                    c.allow_weaken = match v {
                        "yes" | "true" | "1" => true,
                        "no" | "false" | "0" => false,
                        _ => return Err(bad("must be yes or no")),
                    }
                }
                _ => return Err(format!("line {}: unknown setting '{k}'", n + 1)),
            }
        }
        Ok(c)
    }
}

/// What one stage found and did.
#[derive(Debug)]
pub struct Outcome {
    pub content: Content,
    /// The record appended to the log.
    pub record: Vec<u8>,
    /// Banks the PCR was extended in (empty: not measured).
    pub measured: Vec<PcrBank>,
    pub problems: Vec<String>,
    pub passed: bool,
}

/// Inputs of a stage besides the config.
pub struct StageInput<'a> {
    pub stage: Stage,
    pub modules_dir: &'a Path,
    /// `/proc/modules` contents, at pre-pivot.
    pub proc_modules: Option<String>,
    pub jobs: usize,
}

/// Runs one stage against `tpm` (an error if no TPM could be opened).
pub fn run_stage(
    cfg: &Config,
    input: &StageInput<'_>,
    tpm: Result<&mut dyn Tpm, TpmError>,
    sink: &mut Sink,
) -> Outcome {
    let mut problems = Vec::new();
    let bundle = std::fs::read(&cfg.trust);
    let anchor = bundle.as_ref().ok().map(|b| crate::algorithm::sha256(b));
    let mut tpm = tpm;
    let unseal = match (&bundle, &mut tpm) {
        (Err(e), _) => {
            problems.push(format!(
                "{}: cannot read trust bundle: {e}",
                cfg.trust.display()
            ));
            "bundle-unreadable".to_owned()
        }
        (Ok(_), Err(e)) => {
            problems.push(format!("no TPM: {e}"));
            "no-tpm".to_owned()
        }
        (Ok(b), Ok(t)) => match crate::enroll::unseal_and_check(&mut **t, b, &cfg.sealed) {
            Ok(_) => "ok".to_owned(),
            Err(f) => {
                problems.push(format!("unseal: {f}"));
                f.name().to_owned()
            }
        },
    };
    let mut trust = TrustStore::default();
    if let Ok(b) = &bundle {
        match crate::trust::parse_bundle(&cfg.trust, b) {
            Ok((anchors, deny)) => {
                trust.anchors = anchors;
                trust.deny = deny;
            }
            Err(e) => problems.push(format!("trust bundle: {e}")),
        }
    }
    let items = crate::walk::collect(&[input.modules_dir.to_path_buf()]);
    let reports = crate::walk::verify_all(&items, &trust, &Options::default(), input.jobs, &|_| {});
    for r in reports.iter().filter(|r| r.verdict != Verdict::Ok) {
        problems.push(format!("{}: {}: {}", r.path, r.verdict, r.reason));
    }
    let unverified = input
        .proc_modules
        .as_deref()
        .map(|pm| reconcile(pm, &reports));
    if let Some(u) = &unverified {
        for name in u {
            problems.push(format!("loaded module '{name}' has no verified file"));
        }
    }
    let root = input.modules_dir.display().to_string();
    let mut content = Content::new(
        input.stage,
        cfg.mode,
        anchor,
        &unseal,
        &reports,
        &root,
        unverified,
    );
    if trust.anchors.is_empty() && content.passed() {
        content.result = "fail".into();
    }
    let bytes = content.to_bytes();

    let mut measured = Vec::new();
    match &mut tpm {
        Ok(t) => match measure(&mut **t, cfg.pcr, &bytes) {
            Ok(banks) => measured = banks,
            Err(e) => problems.push(format!("measuring into PCR {}: {e}", cfg.pcr)),
        },
        Err(_) => problems.push(format!("not measured: no TPM, PCR {} unchanged", cfg.pcr)),
    }
    let banks_for_log = if measured.is_empty() {
        vec![PcrBank::Sha256]
    } else {
        measured.clone()
    };
    let record = crate::measure::record_bytes(cfg.pcr, &bytes, &banks_for_log);
    if let Err(e) = append_log(&cfg.log, &record) {
        problems.push(format!(
            "{}: cannot append the event log: {e}",
            cfg.log.display()
        ));
    }
    let passed = content.passed() && !measured.is_empty() && problems.is_empty();
    let level = if passed {
        Level::Info
    } else if cfg.mode == Mode::Enforce {
        Level::Err
    } else {
        Level::Warning
    };
    for p in &problems {
        sink.line(level, p);
    }
    let ok = reports.iter().filter(|r| r.verdict == Verdict::Ok).count();
    let commands = match &tpm {
        Ok(t) => t.commands(),
        Err(_) => 0,
    };
    sink.line(
        if passed { Level::Notice } else { level },
        &format!(
            "{} stage: {ok} verified, {} failed; unseal {unseal}; {}; {commands} TPM commands; {}",
            stage_name(input.stage),
            reports.len() - ok,
            if measured.is_empty() {
                "NOT measured".to_owned()
            } else {
                format!(
                    "measured into PCR {}, banks {}",
                    cfg.pcr,
                    measured
                        .iter()
                        .map(|b| b.name())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            },
            if passed {
                "pass".to_owned()
            } else {
                format!("FAIL ({} mode)", mode_name(cfg.mode))
            }
        ),
    );
    Outcome {
        content,
        record,
        measured,
        problems,
        passed,
    }
}

/// Extends `pcr` in every active bank with the content's digest.
fn measure(tpm: &mut dyn Tpm, pcr: u8, content: &[u8]) -> Result<Vec<PcrBank>, TpmError> {
    let banks = tpm.active_banks()?;
    let digests = crate::measure::digests(content, &banks);
    tpm.pcr_extend(pcr, &digests)?;
    Ok(banks)
}

/// Appends one record with a single write, then syncs, so a crash leaves
/// whole records only.
pub fn append_log(path: &Path, record: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(record)?;
    f.sync_data()
}

/// Loaded modules (from `/proc/modules`) with no verified file. Names are
/// compared the kernel's way: `-` and `_` are the same.
pub fn reconcile(proc_modules: &str, reports: &[Report]) -> Vec<String> {
    let verified: std::collections::HashSet<String> = reports
        .iter()
        .filter(|r| r.verdict == Verdict::Ok)
        .filter_map(|r| module_name(&r.path))
        .collect();
    let mut missing: Vec<String> = proc_modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.replace('-', "_"))
        .filter(|n| !verified.contains(n))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// `.../foo-bar.ko.xz` → `foo_bar`.
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".ko.gz", ".ko.xz", ".ko.zst", ".ko"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
}

pub fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Early => "early",
        Stage::PrePivot => "pre-pivot",
    }
}

pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Enforce => "enforce",
        Mode::Warn => "warn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_refuses() {
        let c =
            Config::parse("# x\ntrust = /a\nmode = warn\npcr = 13\nallow-weaken = yes\n").unwrap();
        assert_eq!(c.trust, PathBuf::from("/a"));
        assert_eq!(c.mode, Mode::Warn);
        assert_eq!(c.pcr, 13);
        assert!(c.allow_weaken);
        assert!(Config::parse("pcr = 24").is_err());
        assert!(Config::parse("mode = off").is_err());
        assert!(Config::parse("bogus = 1").is_err());
        assert!(Config::parse("nonsense").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn reconcile_maps_names() {
        let r = |p: &str, v| Report {
            path: p.into(),
            verdict: v,
            reason: String::new(),
            signer: None,
            key_id: None,
            hash_algo: None,
            sha256: None,
        };
        let reports = [
            r("/m/kernel/a-b.ko.xz", Verdict::Ok),
            r("/m/c.ko", Verdict::BadSignature),
        ];
        let pm = "a_b 16384 0 - Live 0x0\nc 100 0 - Live 0x0\nd 1 0 - Live 0x0\n";
        assert_eq!(
            reconcile(pm, &reports),
            vec!["c".to_owned(), "d".to_owned()]
        );
        assert_eq!(
            module_name("x/y/foo-bar.ko.zst").as_deref(),
            Some("foo_bar")
        );
        assert_eq!(module_name("x/README"), None);
    }
}
