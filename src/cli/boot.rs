//! Commands of the measured flow: `boot`, `predict`, `log show|replay`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::boot::{Config, StageInput};
use crate::cli::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::measure::{Content, Mode, Stage};
use crate::tpm::PcrBank;

#[derive(Debug, Args)]
#[command(after_help = BOOT_HELP)]
pub struct BootArgs {
    /// Config file (`key = value`: trust, sealed, certs, pcr, mode, log, modules, tcti, allow-weaken).
    /// Missing default file = built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Trust bundle (default /etc/modseal/trust.bundle).
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: Option<PathBuf>,
    /// Directory written by `modseal enroll` (default /etc/modseal/sealed).
    #[arg(long, value_name = "DIR")]
    pub sealed: Option<PathBuf>,
    /// PCR to extend (default 12; overrides the config and rd.modseal.pcr=).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=23))]
    pub pcr: Option<u8>,
    /// Modules directory (default /lib/modules/$(uname -r)).
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "early")]
    pub stage: Stage,
    /// enforce: exit 1 on any failure (the caller stops the boot); warn: exit 0, failure measured and logged.
    /// Overrides the config and rd.modseal= (no allow-weaken check: the operator's choice).
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Kernel command line to apply (the dracut hooks pass /proc/cmdline): rd.modseal=, rd.modseal.pcr=.
    #[arg(long, value_name = "FILE")]
    pub cmdline: Option<PathBuf>,
    /// TPM connection (default $MODSEAL_TCTI, else device:/dev/tpmrm0).
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
    /// Event log to append to (default /run/log/modseal/tpm2-measure.log).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Send messages to /dev/kmsg (automatic when run by PID 1 in an initramfs).
    #[arg(long)]
    pub kmsg: bool,
    /// Read loaded modules from this file instead of /proc/modules (pre-pivot).
    #[arg(long, value_name = "FILE", hide = true)]
    pub proc_modules: Option<PathBuf>,
}

/// The part of `modseal boot --help` after the options.
const BOOT_HELP: &str = "\
Precedence, lowest first: built-in defaults, config file, kernel command line (--cmdline), --mode/--pcr.

Kernel command line (the last occurrence of each wins; an unknown value is ignored with a message):
  rd.modseal=enforce|warn|off  mode; off: nothing verified, measured or logged, exit 0
  rd.modseal.pcr=N             PCR to extend, 0-23 (always honoured)
A mode weaker than the configured one (enforce -> warn|off, warn -> off) is honoured only with
`allow-weaken = yes` in the config; otherwise it is ignored with a message and the configured mode
applies. A stronger mode is always honoured.";

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The trust bundle the boot will use.
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: PathBuf,
    /// The module tree the boot will verify.
    #[arg(long, value_name = "DIR")]
    pub modules: PathBuf,
    #[arg(long, value_enum, default_value = "enforce")]
    pub mode: Mode,
    /// The PCR (for the output line; the value does not depend on it).
    #[arg(long, value_name = "N", default_value_t = crate::boot::DEFAULT_PCR)]
    pub pcr: u8,
    /// PCR value before the boot's records (default: all zero).
    #[arg(long, value_name = "HEX")]
    pub from: Option<String>,
    #[arg(long, default_value = "sha256", value_name = "BANK")]
    pub bank: String,
    /// Stages the boot runs, in order (repeatable; default: early).
    #[arg(long = "stage", value_enum)]
    pub stages: Vec<Stage>,
    /// Untrusted certificates the boot has (config `certs`): file or directory. Repeatable.
    #[arg(long = "cert", value_name = "PATH")]
    pub certs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// List the records of an event log.
    Show {
        #[arg(value_name = "LOG")]
        log: PathBuf,
        /// List every module with its verdict (default: only the failed ones).
        #[arg(long)]
        modules: bool,
    },
    /// The PCR values the log implies; with --tcti, compare them with the TPM's (exit 1 on mismatch).
    Replay {
        #[arg(value_name = "LOG")]
        log: PathBuf,
        #[arg(long, value_name = "TCTI")]
        tcti: Option<String>,
        /// PCR value before the log's first record (default: all zero).
        #[arg(long, value_name = "HEX")]
        from: Option<String>,
    },
}

fn tcti_name(explicit: Option<&str>, cfg: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var(crate::tpm::TCTI_ENV).ok())
        .or_else(|| cfg.map(str::to_owned))
        .unwrap_or_else(|| crate::tpm::DEFAULT_TCTI.to_owned())
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

pub fn cmd_boot(a: BootArgs) -> u8 {
    let mut sink = crate::util::kmsg::Sink::choose(a.kmsg);
    let cfg_path = a
        .config
        .clone()
        .unwrap_or_else(|| crate::boot::DEFAULT_CONFIG.into());
    let mut cfg = match std::fs::read_to_string(&cfg_path) {
        Ok(t) => match Config::parse(&t) {
            Ok(c) => c,
            Err(e) => {
                sink.line(
                    crate::util::kmsg::Level::Err,
                    &format!("{}: {e}", cfg_path.display()),
                );
                return EXIT_USAGE;
            }
        },
        // Only a missing default file means defaults: an unreadable one must
        // not silently replace the configured paths, PCR or mode.
        Err(e) if a.config.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
            Config::default()
        }
        Err(e) => {
            sink.line(
                crate::util::kmsg::Level::Err,
                &format!("{}: cannot read: {e}", cfg_path.display()),
            );
            return EXIT_USAGE;
        }
    };
    if let Some(t) = a.trust {
        cfg.trust = t;
    }
    if let Some(s) = a.sealed {
        cfg.sealed = s;
    }
    let cmdline = match &a.cmdline {
        None => None,
        Some(p) => match std::fs::read(p) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            // Like an unreadable config: the stage must not run with settings
            // other than those asked for (a dropped rd.modseal=enforce).
            Err(e) => {
                sink.line(
                    crate::util::kmsg::Level::Err,
                    &format!("{}: cannot read the kernel command line: {e}", p.display()),
                );
                return EXIT_USAGE;
            }
        },
    };
    let resolved = crate::boot::resolve(&cfg, cmdline.as_deref(), a.mode, a.pcr);
    for (level, note) in &resolved.notes {
        sink.line(*level, note);
    }
    // Off (only through rd.modseal=off with allow-weaken = yes) is decided
    // here and never reaches the measured flow: no TPM, no log record.
    let Some(mode) = resolved.mode.measured() else {
        return EXIT_OK;
    };
    cfg.mode = mode;
    cfg.pcr = resolved.pcr;
    if let Some(l) = a.log {
        cfg.log = l;
    }
    let modules = a
        .modules
        .or_else(|| cfg.modules.clone())
        .unwrap_or_else(|| PathBuf::from(format!("/lib/modules/{}", kernel_release())));
    let proc_modules = match a.stage {
        Stage::Early => None,
        Stage::PrePivot => {
            let p = a.proc_modules.unwrap_or_else(|| "/proc/modules".into());
            Some(std::fs::read_to_string(&p).unwrap_or_else(|e| {
                // Unreadable means unknown: fail closed with a name that cannot match a file.
                format!("<unreadable:{}:{e}> 0 0 - Live 0x0\n", p.display())
            }))
        }
    };
    let tcti = tcti_name(a.tcti.as_deref(), cfg.tcti.as_deref());
    let mut opened = crate::tpm::esapi::EsapiTpm::open(&tcti);
    let tpm: Result<&mut dyn crate::tpm::Tpm, crate::tpm::TpmError> = match &mut opened {
        Ok(t) => Ok(t),
        Err(e) => Err(e.clone()),
    };
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let input = StageInput {
        stage: a.stage,
        modules_dir: &modules,
        proc_modules,
        jobs,
    };
    let outcome = crate::boot::run_stage(&cfg, &input, tpm, &mut sink);
    if outcome.passed || cfg.mode == Mode::Warn {
        EXIT_OK
    } else {
        EXIT_FAIL
    }
}

fn parse_from(from: Option<&str>, bank: PcrBank) -> Result<Vec<u8>, String> {
    match from {
        None => Ok(vec![0; bank.digest_len()]),
        Some(h) => crate::util::hex::parse(h)
            .filter(|v| v.len() == bank.digest_len())
            .ok_or_else(|| {
                format!(
                    "--from: needs {} hex digits for {bank}",
                    bank.digest_len() * 2
                )
            }),
    }
}

/// The content a good boot of `stage` will measure for this module set.
pub fn predicted_content(
    bundle: &[u8],
    trust_path: &std::path::Path,
    modules: &std::path::Path,
    mode: Mode,
    stage: Stage,
    certs: &[PathBuf],
) -> Result<Content, String> {
    let (anchors, deny) =
        crate::trust::parse_bundle(trust_path, bundle).map_err(|e| e.to_string())?;
    let mut trust = crate::trust::TrustStore {
        anchors,
        intermediates: Vec::new(),
        deny,
    };
    for c in certs {
        trust.add_cert_path(c).map_err(|e| e.to_string())?;
    }
    let items = crate::image::walk::collect(&[modules.to_path_buf()]);
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let reports = crate::image::walk::verify_all(
        &items,
        &trust,
        &crate::verify::Options::default(),
        jobs,
        &|_| {},
    );
    let unverified = (stage == Stage::PrePivot).then(Vec::new);
    Ok(Content::new(
        stage,
        mode,
        Some(crate::verify::algorithm::sha256(bundle)),
        crate::measure::UnsealOutcome::Ok,
        &reports,
        &modules.display().to_string(),
        unverified,
    ))
}

pub fn cmd_predict(a: PredictArgs) -> u8 {
    let Some(bank) = PcrBank::from_name(&a.bank) else {
        eprintln!("modseal: error: --bank {}: unknown bank", a.bank);
        return EXIT_USAGE;
    };
    let mut value = match parse_from(a.from.as_deref(), bank) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("modseal: error: {e}");
            return EXIT_USAGE;
        }
    };
    let bundle = match std::fs::read(&a.trust) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("modseal: error: {}: cannot read: {e}", a.trust.display());
            return EXIT_USAGE;
        }
    };
    let stages = if a.stages.is_empty() {
        vec![Stage::Early]
    } else {
        a.stages.clone()
    };
    for stage in stages {
        let content =
            match predicted_content(&bundle, &a.trust, &a.modules, a.mode, stage, &a.certs) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("modseal: error: {e}");
                    return EXIT_USAGE;
                }
            };
        if !content.passed() {
            let bad = content
                .modules
                .iter()
                .filter(|m| m.verdict != crate::verify::Verdict::Ok)
                .count();
            eprintln!(
                "modseal: warning: {bad} module(s) would fail; the prediction is of a failing boot"
            );
        }
        value = bank.extend(&value, &bank.hash(&content.to_bytes()));
    }
    println!("{}", crate::util::hex::lower(&value));
    eprintln!(
        "modseal: predicted PCR {} ({bank}) after the boot's records",
        a.pcr
    );
    EXIT_OK
}

pub fn cmd_log(c: LogCommand) -> u8 {
    let path = match &c {
        LogCommand::Show { log, .. } | LogCommand::Replay { log, .. } => log.clone(),
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("modseal: error: {}: cannot read: {e}", path.display());
            return EXIT_USAGE;
        }
    };
    let records = match crate::measure::parse_log(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", path.display());
            return EXIT_FAIL;
        }
    };
    match c {
        LogCommand::Show { modules, .. } => show(&records, modules),
        LogCommand::Replay { tcti, from, .. } => replay(&records, tcti.as_deref(), from.as_deref()),
    }
}

fn show(records: &[crate::measure::Record], all_modules: bool) -> u8 {
    let mut status = EXIT_OK;
    for r in records {
        let digests: Vec<String> = r
            .digests
            .iter()
            .map(|(b, d)| format!("{b}:{}", crate::util::hex::lower(d)))
            .collect();
        let integrity = match r.check_digests() {
            Ok(()) => "digests match content".to_owned(),
            Err(e) => {
                status = EXIT_FAIL;
                format!("DIGEST MISMATCH: {e}")
            }
        };
        println!(
            "record {}: PCR {}, {}, {integrity}",
            r.index, r.pcr, r.content_type
        );
        for d in digests {
            println!("  {d}");
        }
        match r.modseal_content() {
            Some(Ok(c)) => {
                let ok = c
                    .modules
                    .iter()
                    .filter(|m| m.verdict == crate::verify::Verdict::Ok)
                    .count();
                println!(
                    "  stage {}, mode {}, result {}, unseal {}, anchor {}",
                    c.stage.name(),
                    c.mode.name(),
                    c.result,
                    c.unseal,
                    c.anchor_sha256.as_deref().unwrap_or("-")
                );
                println!("  modules: {ok} ok, {} failed", c.modules.len() - ok);
                for m in c
                    .modules
                    .iter()
                    .filter(|m| all_modules || m.verdict != crate::verify::Verdict::Ok)
                {
                    match m.reason.as_deref().filter(|r| !r.is_empty()) {
                        Some(r) => println!("    {}: {}: {r}", m.path, m.verdict),
                        None => println!("    {}: {}", m.path, m.verdict),
                    }
                }
                if let Some(u) = &c.unverified_loaded {
                    println!(
                        "  loaded modules without a verified file: {}",
                        if u.is_empty() {
                            "none".into()
                        } else {
                            u.join(", ")
                        }
                    );
                }
            }
            Some(Err(e)) => {
                status = EXIT_FAIL;
                println!("  unreadable modseal content: {e}");
            }
            None => {
                // content_type is not covered by the digests: a modseal record
                // relabelled to hide it is still read as one.
                if serde_json::from_slice::<Content>(&r.content).is_ok() {
                    status = EXIT_FAIL;
                    println!(
                        "  WARNING: labelled '{}' but its content is a modseal record",
                        r.content_type
                    );
                }
            }
        }
    }
    status
}

fn replay(records: &[crate::measure::Record], tcti: Option<&str>, from: Option<&str>) -> u8 {
    let mut pcrs: Vec<u8> = records.iter().map(|r| r.pcr).collect();
    pcrs.sort_unstable();
    pcrs.dedup();
    let mut banks: Vec<PcrBank> = records
        .iter()
        .flat_map(|r| r.digests.iter().map(|(b, _)| *b))
        .collect();
    banks.sort();
    banks.dedup();
    let mut tpm = match tcti {
        Some(t) => match crate::tpm::esapi::EsapiTpm::open(t) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("modseal: error: {e}");
                return EXIT_FAIL;
            }
        },
        None => None,
    };
    let mut status = EXIT_OK;
    for &pcr in &pcrs {
        for &bank in &banks {
            let start = match parse_from(from, bank) {
                Ok(v) => v,
                Err(_) if from.is_some() => continue,
                Err(e) => {
                    eprintln!("modseal: error: {e}");
                    return EXIT_USAGE;
                }
            };
            match crate::measure::replay(records, pcr, bank, &start) {
                Ok(v) => println!("pcr {pcr} {bank} {}", crate::util::hex::lower(&v)),
                Err(e) => {
                    println!("pcr {pcr} {bank} REPLAY FAILED: {e}");
                    status = EXIT_FAIL;
                    continue;
                }
            }
            if let Some(t) = tpm.as_mut() {
                use crate::tpm::Tpm;
                match t.pcr_read(bank, &[pcr]) {
                    Ok(live) => {
                        let live = live.into_iter().next().unwrap_or_default();
                        match crate::measure::first_mismatch(records, pcr, bank, &start, &live) {
                            None => println!("pcr {pcr} {bank} matches the TPM"),
                            Some(why) => {
                                println!("pcr {pcr} {bank} MISMATCH: {why}");
                                status = EXIT_FAIL;
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("modseal: error: reading PCR {pcr} {bank}: {e}");
                        status = EXIT_FAIL;
                    }
                }
            }
        }
    }
    status
}
