//! Command-line interface: argument parsing and the commands' output.

pub mod attest;
pub mod boot;
pub mod check_initramfs;
pub mod log;
pub mod predict;
pub mod quote;
pub mod seal;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::trust::{Denylist, TrustError, TrustStore};
use crate::verify::{Options, Report, Verdict};

/// Exit status: every module verified / trusted.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one module failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "modseal",
    version,
    about = "Verify Linux kernel module signatures the way the kernel does",
    long_about = "modseal checks the appended PKCS#7 signature of kernel modules (.ko, .ko.gz, .ko.xz, .ko.zst) \
against trusted module-signing certificates, as kernel/module_signature.c does, and says why a module fails.\n\n\
Exit status: 0 all verified, 1 at least one module failed, 2 usage or configuration error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify module files or directory trees (recursed for *.ko, *.ko.gz, *.ko.xz, *.ko.zst).
    ///
    /// Prints one line per failed module, `PATH: VERDICT: reason`, then `N verified, M failed`.
    /// Verdicts: ok, unsigned, unknown-key, bad-signature, malformed, unsupported-algorithm,
    /// denied, untrusted-chain, io-error.
    ///
    /// Exit status: 0 every module verified; 1 at least one module failed (or none was found);
    /// 2 usage or configuration error (a missing or unparsable --trust or --cert file).
    Verify(VerifyArgs),
    /// Verify every kernel module inside initramfs images or unified kernel images (UKI).
    ///
    /// Reads an image as the kernel unpacks it: concatenated cpio newc archives, each
    /// uncompressed (the early-microcode one) or compressed (gzip, xz, zstd, lzma, legacy lz4),
    /// zero padding between them; or a PE file's .initrd section. Streams: nothing is written
    /// and only module bodies are kept, one per thread. Output, verdicts and --json as `verify`,
    /// each module named by its path in the image (IMAGE:PATH with several images); a corrupt,
    /// truncated or bomb image is a failure naming the image, the member and the byte offset.
    ///
    /// Exit status: 0 every module verified; 1 at least one module or image failed (or an
    /// image holds no module); 2 usage or configuration error.
    CheckInitramfs(crate::cli::check_initramfs::CheckInitramfsArgs),
    /// Show what a module's signature says (signer, key id, hash and signature algorithm, sizes, payload digest).
    Inspect(InspectArgs),
    /// Extract or package keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a trust bundle: anchors plus denylist, in modseal's text format.
    Bundle(BundleArgs),
    /// Seal the trust bundle's SHA-256 in the TPM under a PolicyPCR policy.
    ///
    /// Writes DIR/sealed.pub, DIR/sealed.priv (tpm2-tools TPM2B files) and DIR/sealed.json,
    /// replacing an earlier enrollment in DIR atomically.
    Enroll(crate::cli::seal::EnrollArgs),
    /// Unseal the sealed digest and compare it with the trust bundle's SHA-256.
    ///
    /// Exit status: 0 match; 1 named failure (no TPM, PCRs changed, sealed object from another
    /// TPM or corrupt, digest mismatch, lockout); 2 usage error.
    Unseal(crate::cli::seal::UnsealArgs),
    /// The initramfs flow: unseal and check the bundle, verify every module, (at pre-pivot)
    /// reconcile loaded modules, measure the outcome into the PCR and append the event log.
    ///
    /// Exit status: 0 pass (or any outcome in warn mode); 1 fail in enforce mode; 2 usage error.
    Boot(crate::cli::boot::BootArgs),
    /// The PCR value a good boot with this trust bundle and module set will produce.
    Predict(crate::cli::predict::PredictArgs),
    /// Read an event log: list it, or replay it (against the TPM with --tcti).
    #[command(subcommand)]
    Log(crate::cli::log::LogCommand),
    /// Quote PCRs with an attestation key (made on first use at a persistent handle) for a
    /// remote verifier.
    ///
    /// Writes DIR/quote.msg, quote.sig, quote.pcrs (tpm2_quote's formats), tpm2-measure.log,
    /// ak.pem, ak.pub and nonce, replacing an earlier quote in DIR atomically. The AK is a
    /// primary key of the endorsement hierarchy (tpm2_createprimary's
    /// rsa2048:rsassa-sha256:null or ecc256:ecdsa-sha256:null template), persistent at
    /// --ak-handle (default 0x81010100).
    ///
    /// Exit status: 0 written; 1 failure (no TPM, handle holds another object, PCRs kept
    /// changing); 2 usage error.
    Quote(crate::cli::quote::QuoteArgs),
    /// Verify a quote and the event log against the trusted AK, the nonce and a policy
    /// (no TPM needed); or, with --make-policy, write a policy from a known-good log.
    ///
    /// Exit status: 0 trusted; 1 not trusted (the first failure is named); 2 bad input.
    Attest(crate::cli::attest::AttestArgs),
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust anchors: PEM or DER certificates, or a modseal trust bundle. Repeatable.
    #[arg(long = "trust", value_name = "FILE", required = true)]
    pub trust: Vec<PathBuf>,
    /// Signer or intermediate certificates (PEM or DER), trusted only through a chain to an anchor. Repeatable.
    #[arg(long = "cert", value_name = "FILE")]
    pub cert: Vec<PathBuf>,
    /// Check certificate validity dates against the current time (ignored by default, as by the kernel).
    #[arg(long)]
    pub check_time: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Module files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print JSON instead of modinfo-style text.
    #[arg(long)]
    pub json: bool,
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the X.509 certificates built into a kernel image (bzImage with a gzip, xz, zstd or lz4 payload, or vmlinux) as PEM.
    FromKernel {
        #[arg(value_name = "VMLINUZ")]
        image: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Anchor certificates (PEM or DER). Repeatable.
    #[arg(long = "anchor", value_name = "FILE", required = true)]
    pub anchors: Vec<PathBuf>,
    /// Deny a subject key identifier (hex, `:` allowed).
    #[arg(long, value_name = "HEX")]
    pub deny_key_id: Vec<String>,
    /// Deny a certificate serial number (hex).
    #[arg(long, value_name = "HEX")]
    pub deny_serial: Vec<String>,
    /// Deny a module file by its SHA-256 (hex).
    #[arg(long, value_name = "HEX")]
    pub deny_module_sha256: Vec<String>,
    /// Output file (written atomically); standard output if absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs a parsed command and returns the exit status.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Verify(a) => verify(a),
        Command::CheckInitramfs(a) => crate::cli::check_initramfs::cmd_check_initramfs(a),
        Command::Inspect(a) => inspect(a),
        Command::Keys(KeysCommand::FromKernel { image }) => keys_from_kernel(&image),
        Command::Bundle(a) => bundle(a),
        Command::Enroll(a) => crate::cli::seal::cmd_enroll(a),
        Command::Unseal(a) => crate::cli::seal::cmd_unseal(a),
        Command::Boot(a) => crate::cli::boot::cmd_boot(a),
        Command::Predict(a) => crate::cli::predict::cmd_predict(a),
        Command::Log(c) => crate::cli::log::cmd_log(c),
        Command::Quote(a) => crate::cli::quote::cmd_quote(a),
        Command::Attest(a) => crate::cli::attest::cmd_attest(a),
    }
}

fn usage_error(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: error: {msg}");
    EXIT_USAGE
}

pub fn load_trust(args: &TrustArgs) -> Result<TrustStore, TrustError> {
    let mut store = TrustStore::default();
    for t in &args.trust {
        store.add_trust_file(t)?;
    }
    for c in &args.cert {
        store.add_cert_file(c)?;
    }
    Ok(store)
}

pub(crate) fn options(args: &TrustArgs) -> Options {
    let now = args.check_time.then(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    });
    Options { now }
}

fn verify(args: VerifyArgs) -> u8 {
    let trust = match load_trust(&args.trust) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let opts = options(&args.trust);
    let items = crate::image::walk::collect(&args.paths);
    let jobs = args.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let progress = Progress::new(
        items.len(),
        !args.json && std::io::stderr().is_terminal() && items.len() >= 100,
    );
    let reports =
        crate::image::walk::verify_all(&items, &trust, &opts, jobs, &|n| progress.tick(n));
    progress.clear();
    let failed = reports.iter().filter(|r| r.verdict != Verdict::Ok).count();
    let verified = reports.len() - failed;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        write_json(&mut out, &reports, verified, failed)
    } else {
        write_text(&mut out, &reports, verified, failed)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("modseal: error: writing the report: {e}");
        return EXIT_FAIL;
    }
    if failed == 0 && !reports.is_empty() {
        EXIT_OK
    } else {
        if reports.is_empty() {
            eprintln!("modseal: no module files found under the given paths");
        }
        EXIT_FAIL
    }
}

pub(crate) fn write_text(
    out: &mut impl Write,
    reports: &[Report],
    verified: usize,
    failed: usize,
) -> std::io::Result<()> {
    for r in reports.iter().filter(|r| r.verdict != Verdict::Ok) {
        writeln!(
            out,
            "{}: {}: {}",
            one_line(&r.path),
            r.verdict,
            one_line(&r.reason)
        )?;
    }
    writeln!(out, "{verified} verified, {failed} failed")
}

pub(crate) fn write_json(
    out: &mut impl Write,
    reports: &[Report],
    verified: usize,
    failed: usize,
) -> std::io::Result<()> {
    let doc = serde_json::json!({ "modules": reports, "verified": verified, "failed": failed });
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

/// Reasons can quote untrusted bytes; keep each report to one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A one-line progress counter on a terminal.
struct Progress {
    total: usize,
    enabled: bool,
    start: Instant,
    last: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(total: usize, enabled: bool) -> Self {
        let now = Instant::now();
        Progress {
            total,
            enabled,
            start: now,
            last: std::sync::Mutex::new(now),
        }
    }

    fn tick(&self, done: usize) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.elapsed() < Duration::from_millis(100) && done != self.total {
            return;
        }
        *last = Instant::now();
        let width = 40;
        let filled = done * width / self.total.max(1);
        eprint!(
            "\r[{}{}] {done}/{} modules, {:.1}s",
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.total,
            self.start.elapsed().as_secs_f64()
        );
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(79));
        }
    }
}

fn inspect(args: InspectArgs) -> u8 {
    let mut status = EXIT_OK;
    let mut all = Vec::new();
    for f in &args.files {
        let display = f.display().to_string();
        let ins = match std::fs::read(f) {
            Ok(bytes) => crate::image::module::inspect_bytes(
                &bytes,
                crate::image::decompress::format_for_module_path(f),
                &display,
            ),
            Err(e) => {
                eprintln!("modseal: {display}: cannot read: {e}");
                status = EXIT_FAIL;
                continue;
            }
        };
        if !ins.signed || ins.error.is_some() {
            status = EXIT_FAIL;
        }
        if args.json {
            all.push(ins);
        } else {
            println!("{}", ins.render());
        }
    }
    if args.json {
        match serde_json::to_string(&all) {
            Ok(s) => println!("{s}"),
            Err(e) => return usage_error(e),
        }
    }
    status
}

fn keys_from_kernel(image: &std::path::Path) -> u8 {
    let bytes = match std::fs::read(image) {
        Ok(b) => b,
        Err(e) => return usage_error(format!("{}: cannot read: {e}", image.display())),
    };
    match crate::image::kernel_image::extract_certificates(&bytes) {
        Ok(certs) => {
            let mut out = std::io::stdout().lock();
            for der in &certs {
                let name = crate::trust::cert::Certificate::from_der(der)
                    .map(|c| c.name)
                    .unwrap_or_default();
                eprintln!("modseal: {}: certificate '{name}'", image.display());
                if write!(out, "{}", crate::util::pem::encode("CERTIFICATE", der)).is_err() {
                    return EXIT_FAIL;
                }
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", image.display());
            EXIT_FAIL
        }
    }
}

fn bundle(args: BundleArgs) -> u8 {
    let mut anchors = Vec::new();
    for a in &args.anchors {
        let bytes = match std::fs::read(a) {
            Ok(b) => b,
            Err(e) => return usage_error(format!("{}: cannot read: {e}", a.display())),
        };
        match crate::trust::parse_cert_file(a, &bytes) {
            Ok(c) => anchors.extend(c),
            Err(e) => return usage_error(e),
        }
    }
    let mut deny = Denylist::default();
    let hex = |flag: &str, v: &str| {
        crate::util::hex::parse(v).ok_or_else(|| format!("--{flag} {v}: not hex"))
    };
    let parsed = (|| -> Result<(), String> {
        for v in &args.deny_key_id {
            deny.key_ids.push(hex("deny-key-id", v)?);
        }
        for v in &args.deny_serial {
            deny.serials.push(hex("deny-serial", v)?);
        }
        for v in &args.deny_module_sha256 {
            let d = hex("deny-module-sha256", v)?;
            deny.module_sha256.push(
                d.try_into()
                    .map_err(|_| format!("--deny-module-sha256 {v}: needs 64 hex digits"))?,
            );
        }
        Ok(())
    })();
    if let Err(e) = parsed {
        return usage_error(e);
    }
    let text = crate::trust::render_bundle(&anchors, &deny);
    match &args.out {
        None => {
            print!("{text}");
            EXIT_OK
        }
        Some(path) => match crate::util::fs::write_atomic(path, text.as_bytes()) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("modseal: error: {}: {e}", path.display());
                EXIT_FAIL
            }
        },
    }
}
