//! One boot stage: unseal, verify, reconcile, measure, log, summarize.
//!
//! The TPM commands per run are a fixed handful whatever the module count:
//! one unseal (with its PCR read), one bank query, one extend, one read-back
//! of the extended PCR.

use std::path::Path;
use std::time::Instant;

use crate::measure::{Content, DerivedRecord, Mode, Stage, StageResult, UnsealOutcome};
use crate::tpm::{PcrBank, Tpm, TpmError};
use crate::trust::derived::DerivedAnchor;
use crate::trust::{TrustError, TrustStore};
use crate::util::kmsg::{Level, Sink};
use crate::verify::{Options, Report, Verdict};

use super::config::Config;
use super::loaded::{config_step, loaded_step, System};
use super::policy::{resolve, Requests};
use crate::measure::StageChecks;
use crate::trust::Settings;

/// What one stage found and did.
#[derive(Debug)]
pub struct Outcome {
    /// The measured content.
    pub content: Content,
    /// The record appended to the log (empty: the content did not
    /// serialize, so nothing was measured or logged).
    pub record: Vec<u8>,
    /// Banks the PCR was extended in (empty: not measured).
    pub measured: Vec<PcrBank>,
    /// The PCR read back after the extend: sha256 if measured there, else
    /// the first measured bank (`None`: not measured or the read failed).
    pub pcr_value: Option<(PcrBank, Vec<u8>)>,
    /// Every failure, in the order found; each was logged.
    pub problems: Vec<String>,
    /// Whether the stage passed, was measured, and had no problem.
    pub passed: bool,
}

/// Inputs of a stage besides the config.
pub struct StageInput<'a> {
    /// The stage to run.
    pub stage: Stage,
    /// The module tree to verify (the caller has already applied the
    /// initramfs rule: the running kernel's own directory there).
    pub modules_dir: &'a Path,
    /// The root the running system is read under: `proc/modules`,
    /// `proc/sys/kernel/tainted`, `sys/module/*/taint` and the module
    /// configuration (`/` at boot).
    pub system_root: &'a Path,
    /// Another file read as `/proc/modules` (host tests).
    pub proc_modules: Option<&'a Path>,
    /// The initramfs's root underneath later mounts (see
    /// [`super::system::RootUnderneath`]), whose module configuration is
    /// read as well.
    pub underneath: Option<&'a Path>,
    /// What asks for another mode, PCR or module tree.
    pub requests: Requests<'a>,
    /// Requests the caller already ignored (a refused TCTI).
    pub ignored: Vec<String>,
    /// What the caller found that fails the stage (two module trees).
    pub refused: Vec<String>,
    /// Verification threads.
    pub jobs: usize,
}

/// What a stage's record is built from. A boot and a prediction both fill
/// this in and call [`stage_content`], so they cannot build different
/// records from the same findings.
#[derive(Debug, Clone)]
pub struct Findings<'a> {
    /// The stage.
    pub stage: Stage,
    /// The mode it runs in.
    pub mode: Mode,
    /// SHA-256 of the trust bundle as read.
    pub anchor_sha256: Option<[u8; 32]>,
    /// What the unseal came to.
    pub unseal: UnsealOutcome,
    /// Whether the trust store holds at least one anchor.
    pub anchors_loaded: bool,
    /// The derived anchor trusted (a bundle with kernel signers).
    pub derived: Option<&'a DerivedAnchor>,
    /// One verification report per module file.
    pub reports: &'a [Report],
    /// The module tree the reports' paths are under.
    pub modules_root: &'a Path,
    /// Loaded modules without a verified file.
    pub unverified_loaded: Option<Vec<String>>,
    /// The other checks: ignored requests, module configuration, loaded
    /// modules.
    pub checks: StageChecks,
}

/// The content a stage measures for `f`.
pub fn stage_content(f: Findings<'_>) -> Content {
    let mut content = Content::new(
        f.stage,
        f.mode,
        f.anchor_sha256,
        f.unseal,
        f.reports,
        &f.modules_root.display().to_string(),
        f.unverified_loaded,
    )
    .with_checks(f.checks);
    content.derived_anchor = f.derived.map(DerivedRecord::of);
    // Without an anchor nothing was verified, even when no module failed.
    if !f.anchors_loaded && content.passed() {
        content.result = StageResult::Fail;
    }
    content
}

/// The trust store of a bundle's exact bytes: its anchors and denylist.
pub fn bundle_trust(path: &Path, bundle: &[u8]) -> Result<TrustStore, TrustError> {
    let (anchors, deny) = crate::trust::parse_bundle(path, bundle)?;
    Ok(TrustStore {
        anchors,
        intermediates: Vec::new(),
        deny,
    })
}

/// Verifies every module file under `dir`: the one walk a boot and a
/// prediction share.
pub fn verify_tree(dir: &Path, trust: &TrustStore, sealed: &Settings, jobs: usize) -> Vec<Report> {
    let items = crate::image::walk::collect(&[dir.to_path_buf()]);
    crate::image::walk::verify_all(&items, trust, &sealed_options(sealed), jobs, &|_| {})
}

/// The verification options a bundle's sealed settings choose (the ML-DSA
/// signed-attributes waiver).
pub fn sealed_options(sealed: &Settings) -> Options {
    Options {
        mldsa_authattrs: sealed.mldsa_authattrs,
        ..Options::default()
    }
}

/// How a stage ended.
#[derive(Debug)]
pub enum StageEnd {
    /// It ran: verified, measured, logged.
    Ran(Box<Outcome>),
    /// `rd.modseal=off`, allowed by the sealed policy: nothing was verified,
    /// measured or logged after the unseal.
    Off,
}

/// Runs one stage against `tpm` (an error if no TPM could be opened).
pub fn run_stage(
    cfg: &Config,
    input: &StageInput<'_>,
    tpm: Result<&mut dyn Tpm, TpmError>,
    sink: &mut Sink,
) -> StageEnd {
    let started = Instant::now();
    let mut tpm = tpm;
    let mut problems = Vec::new();
    if tpm.is_ok() {
        entropy_step(input.stage, sink);
    }
    // Capped and regular files only: a FIFO or /dev/zero planted at the
    // bundle's path must not hang or exhaust the boot.
    let bundle = crate::util::read::read_capped(&cfg.trust, crate::trust::MAX_TRUST_FILE);
    let unseal = unseal_step(cfg, &bundle, &mut tpm, &mut problems);
    let parsed = bundle
        .as_deref()
        .ok()
        .map(|b| crate::trust::read_bundle(&cfg.trust, b));
    let sealed = sealed_settings(unseal, parsed.as_ref(), sink);
    let bundle_ok = parsed.as_ref().and_then(|p| p.as_ref().ok());
    let derived = super::derived::derived_step(cfg, bundle_ok, input.system_root, &mut problems);
    let policy = resolve(&sealed, cfg, &input.requests);
    for (level, note) in &policy.notes {
        sink.line(*level, note);
    }
    let Some(mode) = policy.mode.measured() else {
        return StageEnd::Off;
    };
    let cfg = &Config {
        mode,
        pcr: policy.pcr,
        ..cfg.clone()
    };
    let trust = trust_step(cfg, parsed, derived.as_ref(), &mut problems);
    let reports = verify_step(input, &trust, &sealed, &mut problems);
    let (checks, unverified_loaded) =
        checks_step(input, &policy, &sealed, &reports, sink, &mut problems);
    let content = stage_content(Findings {
        stage: input.stage,
        mode: cfg.mode,
        anchor_sha256: bundle.as_deref().ok().map(crate::verify::algorithm::sha256),
        unseal,
        anchors_loaded: !trust.anchors.is_empty(),
        derived: derived.as_ref(),
        reports: &reports,
        modules_root: input.modules_dir,
        unverified_loaded,
        checks,
    });
    let (record, measured) = match content.encode() {
        Ok(bytes) => {
            let measured = measure_step(cfg, &mut tpm, &bytes, &mut problems);
            (
                log_step(cfg, &bytes, &measured.banks, &mut problems),
                measured,
            )
        }
        Err(e) => {
            problems.push(e.to_string());
            (Vec::new(), Measured::default())
        }
    };
    let passed = content.passed() && !measured.banks.is_empty() && problems.is_empty();
    let summary = Summary {
        stage: input.stage,
        reports: &reports,
        unseal,
        measured: &measured,
        commands: tpm.as_ref().map_or(0, |t| t.commands()),
        elapsed_ms: started.elapsed().as_millis(),
        passed,
    };
    report(cfg, sink, &problems, &summary);
    StageEnd::Ran(Box::new(Outcome {
        content,
        record,
        measured: measured.banks,
        pcr_value: measured.pcr_value,
        problems,
        passed,
    }))
}

/// Everything checked besides the module files: the requests ignored, the
/// module configuration, the refused command line, the loaded modules.
fn checks_step(
    input: &StageInput<'_>,
    policy: &super::policy::Policy,
    sealed: &Settings,
    reports: &[Report],
    sink: &mut Sink,
    problems: &mut Vec<String>,
) -> (StageChecks, Option<Vec<String>>) {
    let mut checks = StageChecks {
        ignored: input
            .ignored
            .iter()
            .chain(&policy.ignored)
            .cloned()
            .collect(),
        ..StageChecks::default()
    };
    for i in &input.ignored {
        sink.line(Level::Warning, &format!("ignored: {i}"));
    }
    let system = System {
        root: input.system_root,
        modules_dir: input.modules_dir,
        proc_modules: input.proc_modules,
        underneath: input.underneath,
    };
    config_step(system, sealed, &mut checks, problems);
    for r in policy.refused.iter().chain(&input.refused) {
        problems.push(r.clone());
        checks.config_refused.push(r.clone());
    }
    let unverified_loaded = loaded_step(system, reports, &mut checks, problems);
    (checks, unverified_loaded)
}

/// The settings the stage runs under: the bundle's when the unseal
/// confirmed its digest, else the built-in policy (enforce, PCR 12, no
/// weakening): an unconfirmed bundle is the attacker's to write.
fn sealed_settings(
    unseal: UnsealOutcome,
    parsed: Option<&Result<crate::trust::Bundle, TrustError>>,
    sink: &mut Sink,
) -> Settings {
    match parsed {
        Some(Ok(b)) if unseal == UnsealOutcome::Ok => b.settings.clone(),
        Some(Ok(b)) if b.settings != Settings::default() => {
            sink.line(
                Level::Warning,
                &format!(
                    "the trust bundle's settings are not applied: the unseal ({unseal}) did not confirm them; built-in policy: enforce mode, PCR {}",
                    crate::trust::DEFAULT_SEALED_PCR
                ),
            );
            Settings::default()
        }
        Some(Err(_)) if unseal == UnsealOutcome::Ok => {
            sink.line(
                Level::Warning,
                &format!(
                    "the trust bundle does not parse: built-in policy: enforce mode, PCR {}",
                    crate::trust::DEFAULT_SEALED_PCR
                ),
            );
            Settings::default()
        }
        _ => Settings::default(),
    }
}

/// Unseals the bundle's digest and compares it with the bundle read.
fn unseal_step(
    cfg: &Config,
    bundle: &Result<Vec<u8>, crate::util::read::ReadError>,
    tpm: &mut Result<&mut dyn Tpm, TpmError>,
    problems: &mut Vec<String>,
) -> UnsealOutcome {
    match (bundle, tpm) {
        (Err(e), _) => {
            problems.push(format!("cannot read trust bundle: {e}"));
            UnsealOutcome::BundleUnreadable
        }
        (Ok(_), Err(e)) => {
            problems.push(format!("no TPM: {e}"));
            UnsealOutcome::NoTpm
        }
        (Ok(b), Ok(t)) => match crate::seal::unseal_and_check(&mut **t, b, &cfg.sealed) {
            Ok(_) => UnsealOutcome::Ok,
            Err(f) => {
                problems.push(format!("unseal: {f}"));
                f.outcome()
            }
        },
    }
}

/// The trust store: the bundle (when it was read and parses), the derived
/// anchor it allowed, and the untrusted certificates. What fails to load is
/// a problem and stays out.
fn trust_step(
    cfg: &Config,
    parsed: Option<Result<crate::trust::Bundle, TrustError>>,
    derived: Option<&DerivedAnchor>,
    problems: &mut Vec<String>,
) -> TrustStore {
    let mut trust = TrustStore::default();
    match parsed {
        Some(Ok(b)) => {
            trust.anchors = b.anchors;
            trust
                .anchors
                .extend(derived.iter().flat_map(|d| d.certs.clone()));
            trust.deny = b.deny;
        }
        Some(Err(e)) => problems.push(format!("trust bundle: {e}")),
        None => {}
    }
    if let Some(c) = &cfg.certs {
        if let Err(e) = trust.add_cert_path(c) {
            problems.push(format!("certs: {e}"));
        }
    }
    trust
}

/// Verifies the module tree; every failed module is a problem.
fn verify_step(
    input: &StageInput<'_>,
    trust: &TrustStore,
    sealed: &Settings,
    problems: &mut Vec<String>,
) -> Vec<Report> {
    let reports = verify_tree(input.modules_dir, trust, sealed, input.jobs);
    for r in reports.iter().filter(|r| r.verdict != Verdict::Ok) {
        problems.push(format!("{}: {}: {}", r.path, r.verdict, r.reason));
    }
    reports
}

/// Where a measurement got to.
#[derive(Debug, Default)]
struct Measured {
    /// Banks extended (empty: not measured).
    banks: Vec<PcrBank>,
    /// The PCR read back after the extend.
    pcr_value: Option<(PcrBank, Vec<u8>)>,
}

/// Extends the PCR with the content's digests and reads it back.
fn measure_step(
    cfg: &Config,
    tpm: &mut Result<&mut dyn Tpm, TpmError>,
    bytes: &[u8],
    problems: &mut Vec<String>,
) -> Measured {
    let t = match tpm {
        Ok(t) => t,
        Err(_) => {
            problems.push(format!("not measured: no TPM, PCR {} unchanged", cfg.pcr));
            return Measured::default();
        }
    };
    match measure(&mut **t, cfg.pcr, bytes) {
        Ok(banks) => Measured {
            pcr_value: read_back(&mut **t, cfg.pcr, &banks, problems),
            banks,
        },
        Err(e) => {
            problems.push(format!("measuring into PCR {}: {e}", cfg.pcr));
            Measured::default()
        }
    }
}

/// Reads the PCR back, so the operator (and a boot test that halts here)
/// sees the value measured. One command, whatever the module count. A read
/// that fails right after a successful extend means the TPM is
/// misbehaving: it is a problem and fails the stage (the record is still
/// written, the extend having happened).
fn read_back(
    t: &mut dyn Tpm,
    pcr: u8,
    banks: &[PcrBank],
    problems: &mut Vec<String>,
) -> Option<(PcrBank, Vec<u8>)> {
    let bank = read_back_bank(banks)?;
    match t.pcr_read(bank, &[pcr]) {
        Ok(v) if v.len() == 1 && v[0].len() == bank.digest_len() => {
            v.into_iter().next().map(|d| (bank, d))
        }
        Ok(v) => {
            problems.push(format!(
                "reading PCR {pcr} ({bank}) back after the extend: {} value(s) of {} bytes, expected one of {}",
                v.len(),
                v.first().map_or(0, Vec::len),
                bank.digest_len()
            ));
            None
        }
        Err(e) => {
            problems.push(format!(
                "reading PCR {pcr} ({bank}) back after the extend: {e}"
            ));
            None
        }
    }
}

/// The bank read back after an extend: sha256 if measured there, else the
/// first measured bank.
fn read_back_bank(measured: &[PcrBank]) -> Option<PcrBank> {
    measured
        .iter()
        .copied()
        .find(|b| *b == PcrBank::Sha256)
        .or_else(|| measured.first().copied())
}

/// Extends `pcr` in every active bank with the content's digest.
fn measure(tpm: &mut dyn Tpm, pcr: u8, content: &[u8]) -> Result<Vec<PcrBank>, TpmError> {
    let banks = tpm.active_banks()?;
    let digests = crate::measure::digests(content, &banks);
    tpm.pcr_extend(pcr, &digests)?;
    Ok(banks)
}

/// Appends the record; its digests are those of the banks measured (sha256
/// when none was, so the log still says what the stage found).
fn log_step(
    cfg: &Config,
    bytes: &[u8],
    measured: &[PcrBank],
    problems: &mut Vec<String>,
) -> Vec<u8> {
    let banks = if measured.is_empty() {
        vec![PcrBank::Sha256]
    } else {
        measured.to_vec()
    };
    let record = crate::measure::record_bytes(cfg.pcr, bytes, &banks);
    if let Err(e) = crate::measure::append(&cfg.log, &record) {
        problems.push(format!(
            "{}: cannot append the event log: {e}",
            cfg.log.display()
        ));
    }
    record
}

/// Waits for the kernel's random pool before the salted session needs it,
/// so that a boot that waited says so (the wait counts in the stage's time).
fn entropy_step(stage: Stage, sink: &mut Sink) {
    use crate::util::entropy::{wait_for_pool, PoolWait};
    match wait_for_pool() {
        PoolWait::Ready => {}
        PoolWait::Waited(d) => sink.line(
            Level::Notice,
            &format!(
                "{} stage: waited {} ms for the kernel's random pool (the TPM session needs fresh randomness; this machine credits no hardware RNG this early)",
                stage.name(),
                d.as_millis()
            ),
        ),
        PoolWait::Unavailable(e) => sink.line(
            Level::Warning,
            &format!("{} stage: getrandom() failed: {e}", stage.name()),
        ),
    }
}

/// What the summary line says.
struct Summary<'a> {
    stage: Stage,
    reports: &'a [Report],
    unseal: UnsealOutcome,
    measured: &'a Measured,
    commands: u64,
    elapsed_ms: u128,
    passed: bool,
}

/// Logs every problem, then the summary line.
fn report(cfg: &Config, sink: &mut Sink, problems: &[String], s: &Summary<'_>) {
    let level = if s.passed {
        Level::Info
    } else if cfg.mode == Mode::Enforce {
        Level::Err
    } else {
        Level::Warning
    };
    for p in problems {
        sink.line(level, p);
    }
    sink.line(
        if s.passed { Level::Notice } else { level },
        &summary_line(cfg, s),
    );
}

/// `early stage: N verified, M failed; unseal …; measured …; …; pass`.
fn summary_line(cfg: &Config, s: &Summary<'_>) -> String {
    let ok = s
        .reports
        .iter()
        .filter(|r| r.verdict == Verdict::Ok)
        .count();
    let measured = if s.measured.banks.is_empty() {
        "NOT measured".to_owned()
    } else {
        let banks: Vec<&str> = s.measured.banks.iter().map(|b| b.name()).collect();
        format!(
            "measured into PCR {}, banks {} ({})",
            cfg.pcr,
            banks.join(","),
            match &s.measured.pcr_value {
                Some((bank, v)) => format!("{bank} now {}", crate::util::hex::lower(v)),
                None => "read-back failed".to_owned(),
            }
        )
    };
    let verdict = if s.passed {
        "pass".to_owned()
    } else {
        format!("FAIL ({} mode)", cfg.mode.name())
    };
    format!(
        "{} stage: {ok} verified, {} failed; unseal {}; {measured}; {} TPM commands; {} ms; {verdict}",
        s.stage.name(),
        s.reports.len() - ok,
        s.unseal,
        s.commands,
        s.elapsed_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::memory::MemoryTpm;

    #[test]
    fn read_back_prefers_sha256() {
        assert_eq!(read_back_bank(&[]), None);
        assert_eq!(
            read_back_bank(&[PcrBank::Sha1, PcrBank::Sha256, PcrBank::Sha384]),
            Some(PcrBank::Sha256)
        );
        assert_eq!(
            read_back_bank(&[PcrBank::Sha384, PcrBank::Sha512]),
            Some(PcrBank::Sha384)
        );
    }

    #[test]
    fn no_anchor_fails_the_stage_even_with_no_module() {
        let f = Findings {
            stage: Stage::Early,
            mode: Mode::Enforce,
            anchor_sha256: Some([1; 32]),
            unseal: UnsealOutcome::Ok,
            anchors_loaded: true,
            derived: None,
            reports: &[],
            modules_root: Path::new("/m"),
            unverified_loaded: None,
            checks: StageChecks::default(),
        };
        assert!(stage_content(f.clone()).passed());
        let none = Findings {
            anchors_loaded: false,
            ..f
        };
        assert_eq!(stage_content(none).result, StageResult::Fail);
    }

    #[test]
    fn a_stage_without_a_bundle_is_measured_and_logged_as_failed() {
        let tmp = tempfile::tempdir().unwrap();
        let (cfg, out) = stage_with_bundle_at(tmp.path(), tmp.path().join("missing.bundle"));
        assert!(!out.passed);
        assert_eq!(out.content.unseal, UnsealOutcome::BundleUnreadable);
        assert_eq!(out.measured, vec![PcrBank::Sha256]);
        assert_eq!(std::fs::read(&cfg.log).unwrap(), out.record);
        let recs = crate::measure::parse_records(&out.record).unwrap();
        assert_eq!(recs[0].content, out.content.to_bytes());
        let want = PcrBank::Sha256.extend(&[0; 32], &PcrBank::Sha256.hash(&recs[0].content));
        assert_eq!(out.pcr_value, Some((PcrBank::Sha256, want)));
        assert!(
            out.problems[0].contains("cannot read trust bundle"),
            "{:?}",
            out.problems
        );
    }

    /// An early stage with `trust` as the bundle path, an empty module tree
    /// and a fresh in-memory TPM, in `tmp`.
    fn stage_with_bundle_at(tmp: &Path, trust: std::path::PathBuf) -> (Config, Outcome) {
        let cfg = Config {
            trust,
            sealed: tmp.join("sealed"),
            log: tmp.join("log/tpm2-measure.log"),
            ..Config::default()
        };
        let out = stage_in(tmp, &cfg, "");
        (cfg, out)
    }

    /// An early stage in `tmp` (an empty module tree, a system root whose
    /// /proc/modules is `proc_modules`), on a fresh in-memory TPM.
    fn stage_in(tmp: &Path, cfg: &Config, proc_modules: &str) -> Outcome {
        let root = tmp.join("root");
        std::fs::create_dir_all(tmp.join("modules")).unwrap();
        std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
        std::fs::write(root.join("proc/modules"), proc_modules).unwrap();
        std::fs::write(root.join("proc/sys/kernel/tainted"), "0\n").unwrap();
        run_in(tmp, cfg, Stage::Early, None)
    }

    /// `stage` over `tmp/modules` and the system root `tmp/root` as they
    /// are, with `underneath` as the root under later mounts.
    fn run_in(tmp: &Path, cfg: &Config, stage: Stage, underneath: Option<&Path>) -> Outcome {
        let (modules, root) = (tmp.join("modules"), tmp.join("root"));
        let input = StageInput {
            stage,
            modules_dir: &modules,
            system_root: &root,
            proc_modules: None,
            underneath,
            requests: Requests::default(),
            ignored: Vec::new(),
            refused: Vec::new(),
            jobs: 1,
        };
        let mut tpm = MemoryTpm::sha256();
        match run_stage(cfg, &input, Ok(&mut tpm), &mut Sink::Stderr) {
            StageEnd::Ran(o) => *o,
            StageEnd::Off => panic!("the stage did not run"),
        }
    }

    #[test]
    fn loaded_modules_and_module_config_are_checked_and_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = Config {
            trust: tmp.path().join("missing.bundle"),
            sealed: tmp.path().join("sealed"),
            log: tmp.path().join("log/tpm2-measure.log"),
            ..Config::default()
        };
        let conf = tmp.path().join("root/etc/modprobe.d");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("evil.conf"),
            "options a b=1\ninstall autofs4 /bin/sh -c x\n",
        )
        .unwrap();
        let out = stage_in(tmp.path(), &cfg, "evil_mod 16384 0 - Live 0x0 (OE)\n");
        assert!(!out.passed);
        let c = &out.content;
        assert_eq!(
            c.unverified_loaded.as_deref(),
            Some(&["evil_mod".to_owned()][..])
        );
        assert_eq!(
            c.loaded,
            ["module evil_mod: loaded although the kernel found no valid signature (taint E)"]
        );
        assert_eq!(c.module_config.len(), 1);
        assert_eq!(c.module_config[0].path, "etc/modprobe.d/evil.conf");
        assert_eq!(c.config_refused.len(), 1, "{:?}", c.config_refused);
        assert!(
            c.config_refused[0].starts_with("etc/modprobe.d/evil.conf line 2: \"install autofs4\"")
        );
        let p = out.problems.join("\n");
        assert!(
            p.contains("loaded: module evil_mod: loaded although"),
            "{p}"
        );
        assert!(
            p.contains("module config: etc/modprobe.d/evil.conf line 2"),
            "{p}"
        );
        // All of it is measured: the record is the content.
        let recs = crate::measure::parse_records(&out.record).unwrap();
        assert_eq!(recs[0].content, c.to_bytes());
    }

    #[test]
    fn an_unreadable_proc_modules_fails_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = Config {
            trust: tmp.path().join("missing.bundle"),
            log: tmp.path().join("log"),
            ..Config::default()
        };
        let _ = stage_in(tmp.path(), &cfg, "");
        std::fs::remove_file(tmp.path().join("root/proc/modules")).unwrap();
        std::fs::create_dir(tmp.path().join("root/proc/modules")).unwrap();
        let out = run_in(tmp.path(), &cfg, Stage::PrePivot, None);
        assert!(
            out.content.loaded[0].starts_with("cannot read the loaded modules"),
            "{:?}",
            out.content
        );
    }

    #[test]
    fn module_config_hidden_under_a_mount_is_read_from_underneath() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let cfg = Config {
            trust: t.join("missing.bundle"),
            log: t.join("log"),
            ..Config::default()
        };
        let _ = stage_in(t, &cfg, "");
        // The same file in both views is measured once.
        for root in [t.join("root"), t.join("under")] {
            std::fs::create_dir_all(root.join("etc/modprobe.d")).unwrap();
            std::fs::write(root.join("etc/modprobe.d/a.conf"), "options a b=1\n").unwrap();
        }
        std::fs::create_dir_all(t.join("under/run/modprobe.d")).unwrap();
        std::fs::write(
            t.join("under/run/modprobe.d/evil.conf"),
            "install autofs4 /bin/x\n",
        )
        .unwrap();
        let out = run_in(t, &cfg, Stage::Early, Some(&t.join("under")));
        let paths: Vec<&str> = out
            .content
            .module_config
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["etc/modprobe.d/a.conf", "run/modprobe.d/evil.conf"]);
        assert!(
            out.content.config_refused[0]
                .starts_with("run/modprobe.d/evil.conf line 1: \"install autofs4\""),
            "{:?}",
            out.content.config_refused
        );
    }

    #[test]
    fn a_fifo_at_the_bundle_path_fails_the_stage_instead_of_hanging_it() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("trust.bundle");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let (_, out) = stage_with_bundle_at(tmp.path(), fifo);
        assert!(!out.passed);
        assert_eq!(out.content.unseal, UnsealOutcome::BundleUnreadable);
        assert!(
            out.problems[0].contains("not a regular file"),
            "{:?}",
            out.problems
        );
    }
}
