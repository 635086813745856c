//! `modseal boot`: the initramfs flow, and the `--stage` / `--mode` values
//! `boot` and `predict` take.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::boot::{Config, Requests, StageEnd, StageInput};
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
    /// Config file (`key = value`: trust, sealed, certs, log, modules, tcti).
    /// Missing default file = built-in defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Trust bundle (default /etc/modseal/trust.bundle): anchors, denylist and the sealed settings.
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: Option<PathBuf>,
    /// Directory written by `modseal enroll` (default /etc/modseal/sealed).
    #[arg(long, value_name = "DIR")]
    pub sealed: Option<PathBuf>,
    /// PCR to extend instead of the sealed one (host runs; in an initramfs only with allow-weaken sealed).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=23))]
    pub pcr: Option<u8>,
    /// Modules directory (host runs only; default and always in an initramfs: /lib/modules/$(uname -r)).
    #[arg(long, value_name = "DIR")]
    pub modules: Option<PathBuf>,
    // A doc comment here would become this argument's --help text, kept as it is.
    #[allow(missing_docs)]
    #[arg(long, value_enum, default_value = "early")]
    pub stage: StageArg,
    /// Mode instead of the sealed one (host runs; in an initramfs a weaker one only with allow-weaken sealed).
    /// enforce: exit 1 on any failure; warn: exit 0, failure measured and logged.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Kernel command line to apply (the dracut hooks pass /proc/cmdline): rd.modseal=, rd.modseal.pcr=.
    #[arg(long, value_name = "FILE")]
    pub cmdline: Option<PathBuf>,
    /// TPM connection (default $MODSEAL_TCTI, else device:/dev/tpmrm0; in an initramfs a /dev device only).
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
    /// Event log to append to (default /run/log/modseal/tpm2-measure.log).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Send messages to /dev/kmsg (automatic when run by PID 1 in an initramfs).
    #[arg(long)]
    pub kmsg: bool,
    /// Read loaded modules from this file instead of /proc/modules.
    #[arg(long, value_name = "FILE", hide = true)]
    pub proc_modules: Option<PathBuf>,
    /// Read proc/, sys/ and the module configuration under DIR instead of / (host runs only).
    #[arg(long, value_name = "DIR", hide = true)]
    pub system_root: Option<PathBuf>,
    /// Apply the initramfs rules even where / is not a ramfs/tmpfs (the dracut module always passes it).
    #[arg(long, hide = true)]
    pub initramfs: bool,
}

/// The part of `modseal boot --help` after the options.
const BOOT_HELP: &str = "\
The mode, the measurement PCR and allow-weaken are sealed with the trust bundle (its lines `mode`,
`pcr`, `allow-weaken`, `allow-install`); the config file cannot set them (such lines are ignored and
named in the record). When the unseal does not confirm the bundle, the built-in policy applies:
enforce mode, PCR 12.

Kernel command line (the last occurrence of each wins; an unknown value is ignored with a message):
  rd.modseal=enforce|warn|off  mode; off: nothing verified, measured or logged, exit 0
  rd.modseal.pcr=N             PCR to extend, 0-23
A stronger mode is always honoured; a weaker mode or another PCR only with `allow-weaken yes` in
the sealed bundle. In an initramfs the module directory is always the running kernel's, and
--mode/--pcr/--modules follow the same rules.

Each stage also checks the module-loading configuration (modprobe.d install/remove commands must be
allowed by the bundle's allow-install lines) and every loaded module (taint E or F, or no verified
file of its name, fails the stage).";

/// Verification threads: one per core.
pub(super) fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Where a stage looks: the system, the module tree, the TPM, and what
/// the initramfs rules ignored or refused on the way.
struct Where {
    in_initramfs: bool,
    system_root: PathBuf,
    modules: PathBuf,
    tcti: String,
    underneath: Option<crate::boot::RootUnderneath>,
    ignored: Vec<String>,
    refused: Vec<String>,
}

impl Where {
    fn of(a: &BootArgs, cfg: &Config, real_initramfs: bool, sink: &mut Sink) -> Where {
        let in_initramfs = real_initramfs || a.initramfs;
        // In a real initramfs the system is `/`: nothing may point the
        // checks at another tree.
        let system_root = match (&a.system_root, real_initramfs) {
            (Some(r), false) => r.clone(),
            _ => PathBuf::from("/"),
        };
        let release = crate::boot::kernel_release(&system_root);
        let modules = match (
            in_initramfs,
            a.modules.clone().or_else(|| cfg.modules.clone()),
        ) {
            (false, Some(m)) => m,
            _ => crate::boot::kernel_module_dir(&system_root, &release),
        };
        let refused = if in_initramfs {
            crate::boot::module_dir_conflict(&system_root, &release)
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let mut ignored = Vec::new();
        let mut tcti = crate::tpm::resolve_tcti(a.tcti.as_deref(), cfg.tcti.as_deref());
        if let Some(why) = crate::boot::refuse_tcti(&tcti, in_initramfs) {
            ignored.push(why);
            tcti = crate::tpm::DEFAULT_TCTI.to_owned();
        }
        // Only in a real initramfs: on a host `/` is not what a boot unpacked.
        let underneath = real_initramfs
            .then(|| match crate::boot::RootUnderneath::open() {
                Ok(u) => Some(u),
                Err(e) => {
                    sink.line(
                        Level::Warning,
                        &format!("cannot see the initramfs underneath later mounts (open_tree: {e}): module configuration is read from the live / only"),
                    );
                    None
                }
            })
            .flatten();
        Where {
            in_initramfs,
            system_root,
            modules,
            tcti,
            underneath,
            ignored,
            refused,
        }
    }
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
    if let Some(t) = &a.trust {
        cfg.trust = t.clone();
    }
    if let Some(s) = &a.sealed {
        cfg.sealed = s.clone();
    }
    if let Some(l) = &a.log {
        cfg.log = l.clone();
    }
    let real_initramfs = crate::boot::in_initramfs();
    // In a real initramfs the command line is the kernel's own.
    let cmdline_path = match (&a.cmdline, real_initramfs) {
        (_, true) => Some(PathBuf::from("/proc/cmdline")),
        (c, false) => c.clone(),
    };
    let cmdline = match cmdline_path
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
    let w = Where::of(&a, &cfg, real_initramfs, &mut sink);
    let underneath_path = w.underneath.as_ref().map(crate::boot::RootUnderneath::path);
    let tcti = w.tcti.clone();
    let mut opened = crate::tpm::esapi::EsapiTpm::open(&tcti);
    let tpm: Result<&mut dyn crate::tpm::Tpm, crate::tpm::TpmError> = match &mut opened {
        Ok(t) => Ok(t),
        Err(e) => Err(e.clone()),
    };
    let input = StageInput {
        stage: Stage::from(a.stage),
        modules_dir: &w.modules,
        system_root: &w.system_root,
        proc_modules: a.proc_modules.as_deref().filter(|_| !real_initramfs),
        underneath: underneath_path.as_deref(),
        requests: Requests {
            cmdline: cmdline.as_deref(),
            flag_mode: a.mode.map(Mode::from),
            flag_pcr: a.pcr,
            flag_modules: a.modules.is_some(),
            in_initramfs: w.in_initramfs,
        },
        ignored: w.ignored,
        refused: w.refused,
        jobs: jobs(),
    };
    match crate::boot::run_stage(&cfg, &input, tpm, &mut sink) {
        StageEnd::Off => EXIT_OK,
        StageEnd::Ran(o) if o.passed || o.content.mode == Mode::Warn => EXIT_OK,
        StageEnd::Ran(_) => EXIT_FAIL,
    }
}
