//! `modseal quote`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::attest::ak::{read_cached_public, update_ak_dir, AkAlg};
use crate::attest::evidence::{prepare_out_dir, AK_NAME, AK_PEM, CMDLINE, FIRMWARE_LOG};
use crate::attest::nonce::parse_nonce;
use crate::attest::quote::{
    make_quote, parse_handle, QuoteError, QuoteOutput, QuoteRequest, DEFAULT_AK_DIR,
};
use crate::attest::selection::{parse_pcr_spec, selection_text, PcrRequest};
use crate::tpm::TpmError;

/// The AK's key type, as `--ak-alg` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AkAlgArg {
    /// RSA-2048, RSASSA-PKCS1-v1_5 with SHA-256.
    Rsa,
    /// ECC NIST P-256, ECDSA with SHA-256.
    Ecc,
}

impl From<AkAlgArg> for AkAlg {
    fn from(a: AkAlgArg) -> AkAlg {
        match a {
            AkAlgArg::Rsa => AkAlg::Rsa,
            AkAlgArg::Ecc => AkAlg::Ecc,
        }
    }
}

/// `modseal quote`'s arguments.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// Qualifying data chosen by the verifier: hex, 1 to 64 bytes.
    #[arg(long, value_name = "HEX")]
    pub nonce: String,
    /// PCRs to quote: `sha256:0,7,12`, or `0,7,12` for sha256; ranges (`0-7`);
    /// several banks joined with `+` (`sha256:12+sha1:12`). The default covers the kernel
    /// (PCR 4), the initrd and command line (PCR 9) and modseal's records (PCR 12).
    #[arg(long, value_name = "LIST", default_value = "4,9,12")]
    pub pcrs: String,
    /// Where the AK's public parts are kept (ak.pub, ak.pem, ak.name).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_AK_DIR)]
    pub ak_dir: PathBuf,
    /// Persistent handle of the AK (owner range 0x81000000-0x817FFFFF).
    #[arg(long, value_name = "HEX", default_value = "0x81010100")]
    pub ak_handle: String,
    /// Key type of a new AK; an existing AK must be of this type when given.
    #[arg(long, value_name = "ALG", value_enum)]
    pub ak_alg: Option<AkAlgArg>,
    /// Event log copied into the quote directory.
    #[arg(long, value_name = "FILE", default_value = crate::boot::DEFAULT_LOG)]
    pub log: PathBuf,
    /// Quote without an event log.
    #[arg(long, conflicts_with = "log")]
    pub no_log: bool,
    /// The firmware's TCG event log, copied into the quote directory as
    /// binary_bios_measurements (a verifier's policy needs it).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_FIRMWARE_LOG)]
    pub firmware_log: PathBuf,
    /// Quote without the firmware's event log (and without the command line).
    #[arg(long, conflicts_with = "firmware_log")]
    pub no_firmware_log: bool,
    /// The kernel command line the machine booted with, copied beside the
    /// firmware log as `cmdline`: the EFI stub measured only its digest,
    /// and a verifier whose policy does not pin it checks this copy.
    #[arg(long, value_name = "FILE", default_value = "/proc/cmdline")]
    pub cmdline: PathBuf,
    /// Output directory (replaced as a whole).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The TPM to quote with.
    #[command(flatten)]
    pub tcti: crate::cli::seal::TctiArgs,
}

/// A command line longer than this is not one (x86 takes 2 KiB, a
/// firmware's load options a little more).
const MAX_CMDLINE_FILE: usize = 64 * 1024;

/// Where the kernel shows the firmware's event log (securityfs).
pub const DEFAULT_FIRMWARE_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: error: {msg}");
    EXIT_USAGE
}

fn failed(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: quote failed: {msg}");
    EXIT_FAIL
}

/// The arguments, parsed and checked before the TPM is opened.
struct Plan {
    nonce: Vec<u8>,
    selection: Vec<PcrRequest>,
    handle: u32,
    out: PathBuf,
    log: Option<PathBuf>,
    firmware_log: Option<Vec<u8>>,
    cmdline: Option<Vec<u8>>,
}

/// Parses the arguments; `Err` is the exit status of a usage error, printed.
fn plan(args: &QuoteArgs) -> Result<Plan, u8> {
    let nonce = parse_nonce(&args.nonce).map_err(|e| usage(format!("--nonce {e}")))?;
    let selection =
        parse_pcr_spec(&args.pcrs).map_err(|e| usage(format!("--pcrs {}: {e}", args.pcrs)))?;
    let handle = parse_handle(&args.ak_handle).map_err(|e| usage(format!("--ak-handle: {e}")))?;
    let out = prepare_out_dir(&args.out).map_err(|e| usage(format!("--out: {e}")))?;
    let log = (!args.no_log).then(|| args.log.clone());
    if let Some(p) = &log {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(usage(format!("--log {}: not a regular file", p.display()))),
            Err(e) => {
                return Err(usage(format!(
                    "--log {}: {e} (the event log goes with the quote; pass --no-log to quote without one)",
                    p.display()
                )))
            }
        }
    }
    let (firmware_log, cmdline) = if args.no_firmware_log {
        (None, None)
    } else {
        let cmdline = crate::util::read::read_capped(&args.cmdline, MAX_CMDLINE_FILE)
            .map_err(|e| usage(format!("--cmdline {e}")))?;
        (Some(read_firmware_log(&args.firmware_log)?), Some(cmdline))
    };
    Ok(Plan {
        nonce,
        selection,
        handle,
        out,
        log,
        firmware_log,
        cmdline,
    })
}

/// The firmware log's bytes (read once: it does not change after boot);
/// `Err` is the exit status of the usage error, printed.
fn read_firmware_log(path: &Path) -> Result<Vec<u8>, u8> {
    crate::util::read::read_capped(path, crate::measure::tcg::MAX_LOG_SIZE).map_err(|e| {
        let hint = if path == Path::new(DEFAULT_FIRMWARE_LOG) {
            " (the firmware's event log goes with the quote: mount securityfs with \
             `mount -t securityfs securityfs /sys/kernel/security`, pass --firmware-log FILE, \
             or --no-firmware-log to quote without it)"
        } else {
            " (pass --no-firmware-log to quote without the firmware's event log)"
        };
        usage(format!("--firmware-log {e}{hint}"))
    })
}

/// Opens the TPM and makes the checked quote; `Err` is the exit status,
/// printed.
fn quote(args: &QuoteArgs, plan: &Plan) -> Result<QuoteOutput, u8> {
    let cached_public = read_cached_public(&args.ak_dir);
    let tcti = crate::tpm::tcti_name(args.tcti.tcti.as_deref());
    let mut tpm = match crate::tpm::esapi::EsapiTpm::open(&tcti) {
        Ok(t) => t,
        Err(e @ TpmError::Invalid(_)) => return Err(usage(e)),
        Err(e) => return Err(failed(format!("opening the TPM: {e}"))),
    };
    let req = QuoteRequest {
        handle: plan.handle,
        alg: args.ak_alg.map(AkAlg::from),
        nonce: &plan.nonce,
        selection: &plan.selection,
        cached_public,
    };
    let mut read_log = || -> Result<Option<Vec<u8>>, QuoteError> {
        match &plan.log {
            None => Ok(None),
            Some(p) => crate::util::read::read_capped(p, crate::measure::MAX_LOG_SIZE)
                .map(Some)
                .map_err(QuoteError::LogRead),
        }
    };
    make_quote(&mut tpm, &req, &mut read_log).map_err(|e| {
        if e.is_usage() {
            usage(e)
        } else {
            failed(e)
        }
    })
}

/// Brings `--ak-dir` up to date, then replaces `--out`; `Err` is the exit
/// status, printed.
fn write(ak_dir: &Path, plan: &Plan, q: &QuoteOutput) -> Result<(), u8> {
    let old_name = std::fs::read(ak_dir.join(AK_NAME)).ok();
    let written =
        update_ak_dir(ak_dir, &q.ak).map_err(|e| failed(format!("writing --ak-dir: {e}")))?;
    if !written.is_empty() {
        if let Some(old) = old_name.filter(|o| *o != q.ak.name) {
            log::warn!(
                "the AK changed (name {} was {}): a verifier needs the new {}",
                crate::util::hex::lower(&q.ak.name),
                crate::util::hex::lower(&old),
                ak_dir.join(AK_PEM).display()
            );
        }
        log::info!("wrote {} in {}", written.join(", "), ak_dir.display());
    }
    let mut files = q.files(&plan.nonce).map_err(failed)?;
    if let Some(fw) = &plan.firmware_log {
        files.push((FIRMWARE_LOG, fw.clone()));
    }
    if let Some(c) = &plan.cmdline {
        files.push((CMDLINE, c.clone()));
    }
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    crate::util::fs::write_dir_replacing(&plan.out, &refs)
        .map_err(|e| failed(format!("writing {}: {e}", plan.out.display())))
}

/// `modseal quote`.
pub fn cmd_quote(args: QuoteArgs) -> u8 {
    let start = Instant::now();
    let result = plan(&args).and_then(|plan| {
        let q = quote(&args, &plan)?;
        write(&args.ak_dir, &plan, &q)?;
        Ok((plan, q))
    });
    let (plan, q) = match result {
        Ok(r) => r,
        Err(code) => return code,
    };
    println!(
        "quoted {} with AK {:#010x} ({}, {}, name {}) into {}: {} TPM commands, {:.1} ms{}",
        selection_text(&plan.selection),
        plan.handle,
        q.ak.alg.name(),
        if q.ak.created { "created" } else { "reused" },
        crate::util::hex::lower(&q.ak.name),
        plan.out.display(),
        q.commands,
        start.elapsed().as_secs_f64() * 1000.0,
        if q.attempts > 1 {
            " (quoted twice: the PCRs or log changed)"
        } else {
            ""
        }
    );
    EXIT_OK
}
