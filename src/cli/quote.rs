//! `modseal quote`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::attest::quote::*;
use crate::tpm::TpmError;

#[derive(Debug, Args)]
pub struct QuoteArgs {
    /// Qualifying data chosen by the verifier: hex, 1 to 64 bytes.
    #[arg(long, value_name = "HEX")]
    pub nonce: String,
    /// PCRs to quote: `sha256:0,7,12`, or `0,7,12` for sha256; ranges (`0-7`);
    /// several banks joined with `+` (`sha256:12+sha1:12`).
    #[arg(long, value_name = "LIST", default_value = "12")]
    pub pcrs: String,
    /// Where the AK's public parts are kept (ak.pub, ak.pem, ak.name).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_AK_DIR)]
    pub ak_dir: PathBuf,
    /// Persistent handle of the AK (owner range 0x81000000-0x817FFFFF).
    #[arg(long, value_name = "HEX", default_value = "0x81010100")]
    pub ak_handle: String,
    /// Key type of a new AK; an existing AK must be of this type when given.
    #[arg(long, value_name = "ALG", value_enum)]
    pub ak_alg: Option<AkAlg>,
    /// Event log copied into the quote directory.
    #[arg(long, value_name = "FILE", default_value = crate::boot::DEFAULT_LOG)]
    pub log: PathBuf,
    /// Quote without an event log.
    #[arg(long, conflicts_with = "log")]
    pub no_log: bool,
    /// Output directory (replaced as a whole).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub tcti: crate::cli::seal::TctiArgs,
}

fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: error: {msg}");
    EXIT_USAGE
}

fn failed(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: quote failed: {msg}");
    EXIT_FAIL
}

pub fn cmd_quote(args: QuoteArgs) -> u8 {
    let start = Instant::now();
    let nonce = match parse_nonce(&args.nonce) {
        Ok(n) => n,
        Err(e) => return usage(format!("--nonce: {e}")),
    };
    let selection = match parse_pcr_spec(&args.pcrs) {
        Ok(s) => s,
        Err(e) => return usage(format!("--pcrs {}: {e}", args.pcrs)),
    };
    let handle = match parse_handle(&args.ak_handle) {
        Ok(h) => h,
        Err(e) => return usage(format!("--ak-handle: {e}")),
    };
    let out = match prepare_out_dir(&args.out) {
        Ok(o) => o,
        Err(e) => return usage(format!("--out: {e}")),
    };
    let log_path = (!args.no_log).then(|| args.log.clone());
    if let Some(p) = &log_path {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return usage(format!("--log {}: not a regular file", p.display())),
            Err(e) => {
                return usage(format!(
                    "--log {}: {e} (the event log goes with the quote; pass --no-log to quote without one)",
                    p.display()
                ))
            }
        }
    }
    let cached_public = read_cached_public(&args.ak_dir);
    let tcti = crate::tpm::tcti_name(args.tcti.tcti.as_deref());
    let mut tpm = match crate::tpm::esapi::EsapiTpm::open(&tcti) {
        Ok(t) => t,
        Err(e @ TpmError::Invalid(_)) => return usage(e),
        Err(e) => return failed(format!("opening the TPM: {e}")),
    };
    let req = QuoteRequest {
        handle,
        alg: args.ak_alg,
        nonce: &nonce,
        selection: &selection,
        cached_public,
    };
    let mut read_log = || -> Result<Option<Vec<u8>>, QuoteError> {
        match &log_path {
            None => Ok(None),
            Some(p) => read_limited(p, crate::measure::MAX_LOG_SIZE)
                .map(Some)
                .map_err(|e| QuoteError::Io(format!("reading the event log {e}"))),
        }
    };
    let q = match make_quote(&mut tpm, &req, &mut read_log) {
        Ok(q) => q,
        Err(e) if e.is_usage() => return usage(e),
        Err(e) => return failed(e),
    };
    let old_name = std::fs::read(args.ak_dir.join(AK_NAME)).ok();
    match update_ak_dir(&args.ak_dir, &q.ak) {
        Ok(written) if !written.is_empty() => {
            if let Some(old) = old_name.filter(|o| *o != q.ak.name) {
                log::warn!(
                    "the AK changed (name {} was {}): a verifier needs the new {}",
                    crate::util::hex::lower(&q.ak.name),
                    crate::util::hex::lower(&old),
                    args.ak_dir.join(AK_PEM).display()
                );
            }
            log::info!("wrote {} in {}", written.join(", "), args.ak_dir.display());
        }
        Ok(_) => {}
        Err(e) => return failed(format!("writing --ak-dir: {e}")),
    }
    let files = match quote_files(&q, &nonce) {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    if let Err(e) = crate::util::fs::write_dir_replacing(&out, &refs) {
        return failed(format!("writing {}: {e}", out.display()));
    }
    println!(
        "quoted {} with AK {:#010x} ({}, {}, name {}) into {}: {} TPM commands, {:.1} ms{}",
        selection_text(&selection),
        handle,
        q.ak.alg.name(),
        if q.ak.created { "created" } else { "reused" },
        crate::util::hex::lower(&q.ak.name),
        out.display(),
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
