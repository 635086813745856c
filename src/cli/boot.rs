//! `modseal boot`: the initramfs flow, and the `--stage` / `--mode` values
//! `boot` and `predict` take.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::boot::{Config, StageInput};
use crate::cli::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::measure::{Mode, Stage};
use crate::util::kmsg::{Level, Sink};

/// `--stage`: the boot stage a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StageArg {
    /// Before udev: every module file in the initramfs.
    Early,
    /// Before the switch to the real root: files again, plus loaded modules.
    PrePivot,
}

impl From<StageArg> for Stage {
    fn from(s: StageArg) -> Self {
        match s {
            StageArg::Early => Stage::Early,
            StageArg::PrePivot => Stage::PrePivot,
        }
    }
}

/// `--mode`: how a stage treats a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// A failure stops the boot.
    Enforce,
    /// A failure is measured and logged; the boot goes on.
    Warn,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Enforce => Mode::Enforce,
            ModeArg::Warn => Mode::Warn,
        }
    }
}

/// `modseal boot`'s arguments.
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
    // A doc comment here would become this argument's --help text, kept as it is.
    #[allow(missing_docs)]
    #[arg(long, value_enum, default_value = "early")]
    pub stage: StageArg,
    /// enforce: exit 1 on any failure (the caller stops the boot); warn: exit 0, failure measured and logged.
    /// Overrides the config and rd.modseal= (no allow-weaken check: the operator's choice).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
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

/// Verification threads: one per core.
pub(super) fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Runs `modseal boot`.
pub fn cmd_boot(a: BootArgs) -> u8 {
    let mut sink = Sink::choose(a.kmsg);
    let mut cfg = match Config::load(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            sink.line(Level::Err, &e.to_string());
            return EXIT_USAGE;
        }
    };
    if let Some(t) = a.trust {
        cfg.trust = t;
    }
    if let Some(s) = a.sealed {
        cfg.sealed = s;
    }
    let cmdline = match a
        .cmdline
        .as_deref()
        .map(crate::boot::read_cmdline)
        .transpose()
    {
        Ok(c) => c,
        Err(e) => {
            sink.line(Level::Err, &e.to_string());
            return EXIT_USAGE;
        }
    };
    let resolved = crate::boot::resolve(&cfg, cmdline.as_deref(), a.mode.map(Mode::from), a.pcr);
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
    let stage = Stage::from(a.stage);
    let proc_modules = match stage {
        Stage::Early => None,
        Stage::PrePivot => Some(crate::boot::read_proc_modules(
            &a.proc_modules.unwrap_or_else(|| "/proc/modules".into()),
        )),
    };
    let tcti = crate::tpm::resolve_tcti(a.tcti.as_deref(), cfg.tcti.as_deref());
    let mut opened = crate::tpm::esapi::EsapiTpm::open(&tcti);
    let tpm: Result<&mut dyn crate::tpm::Tpm, crate::tpm::TpmError> = match &mut opened {
        Ok(t) => Ok(t),
        Err(e) => Err(e.clone()),
    };
    let input = StageInput {
        stage,
        modules_dir: &modules,
        proc_modules,
        jobs: jobs(),
    };
    let outcome = crate::boot::run_stage(&cfg, &input, tpm, &mut sink);
    if outcome.passed || cfg.mode == Mode::Warn {
        EXIT_OK
    } else {
        EXIT_FAIL
    }
}
