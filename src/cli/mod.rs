//! The command line: the only place that knows clap, exit statuses and
//! printing. Each command is a small file that parses its arguments, calls the
//! library and renders what it returns; this file holds the command list, the
//! exit statuses, the dispatch and what several commands share.
//!
//! The exit statuses are part of modseal's interface: dracut, the kernel
//! postinst hook and remote verifiers branch on them.

pub mod attest;
pub mod boot;
pub mod bundle;
pub mod check_config;
pub mod check_initramfs;
mod derive;
mod firmware_log;
pub mod halt;
pub mod inspect;
pub mod keys;
pub mod log;
mod make_policy;
pub mod output;
pub mod predict;
pub mod progress;
pub mod quote;
pub mod seal;
pub mod verify;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::trust::{TrustError, TrustStore};
use crate::verify::Options;

/// Exit status: every module verified / trusted.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one module failed.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// The `modseal` command line.
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
    pub(crate) command: Command,
}

/// The subcommands; each variant's doc comment is its `--help` text.
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
    Verify(verify::VerifyArgs),
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
    /// Check an image root's module-loading configuration as the boot stages will: every
    /// modprobe.d `install`/`remove` command must be allowed by the bundle's `allow-install` lines.
    ///
    /// Prints one line per refused command (file, line, module, command). Exit status: 0 none;
    /// 1 at least one (or a file kmod would read that cannot be read); 2 usage error.
    CheckConfig(crate::cli::check_config::CheckConfigArgs),
    /// Show what a module's signature says (signer, key id, hash and signature algorithm, sizes, payload digest).
    Inspect(inspect::InspectArgs),
    /// Extract or package keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Write a trust bundle: anchors plus denylist, in modseal's text format.
    Bundle(bundle::BundleArgs),
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
    /// Halt the machine: how the initramfs stops a boot that failed in enforce mode.
    ///
    /// Writes `modseal: enforce mode: the boot stops here: halting[: REASON]` to the kernel
    /// log (/dev/kmsg, level crit), syncs the filesystems and calls reboot(RB_HALT_SYSTEM).
    /// Unlike dracut's `die` or systemd's emergency target, no rd.shell or unit can turn
    /// this into a shell. Needs CAP_SYS_BOOT: on a host, as root, it really halts.
    ///
    /// Exit status: none on success (the machine stops); 1 if the halt call failed.
    Halt(crate::cli::halt::HaltArgs),
}

/// The trust flags of `verify` and `check-initramfs`.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Trust anchors: PEM or DER certificates, or a modseal trust bundle. Repeatable.
    #[arg(long = "trust", value_name = "FILE", required = true)]
    pub(crate) trust: Vec<PathBuf>,
    /// Signer or intermediate certificates (PEM or DER), trusted only through a chain to an anchor. Repeatable.
    #[arg(long = "cert", value_name = "FILE")]
    pub(crate) cert: Vec<PathBuf>,
    /// Check certificate validity dates against the current time (ignored by default, as by the kernel).
    #[arg(long)]
    pub(crate) check_time: bool,
}

/// Parses the process's arguments and runs the command; returns the exit status.
pub fn run() -> u8 {
    run_with(std::env::args_os())
}

/// [`run`] on given arguments (the first is the program name). `--help` and
/// `--version` print and succeed; a usage error is [`EXIT_USAGE`].
pub fn run_with(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    match Cli::try_parse_from(args) {
        Ok(cli) => dispatch(cli),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            }
        }
    }
}

fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Verify(a) => verify::cmd_verify(a),
        Command::CheckInitramfs(a) => check_initramfs::cmd_check_initramfs(a),
        Command::CheckConfig(a) => check_config::cmd_check_config(a),
        Command::Inspect(a) => inspect::cmd_inspect(a),
        Command::Keys(c) => keys::cmd_keys(c),
        Command::Bundle(a) => bundle::cmd_bundle(a),
        Command::Enroll(a) => seal::cmd_enroll(a),
        Command::Unseal(a) => seal::cmd_unseal(a),
        Command::Boot(a) => boot::cmd_boot(a),
        Command::Predict(a) => predict::cmd_predict(a),
        Command::Log(c) => log::cmd_log(c),
        Command::Quote(a) => quote::cmd_quote(a),
        Command::Attest(a) if a.make_policy => make_policy::make_policy(&a),
        Command::Attest(a) => attest::cmd_attest(a),
        Command::Halt(a) => halt::cmd_halt(a),
    }
}

/// Says `msg` as an error and returns [`EXIT_USAGE`].
pub(crate) fn usage_error(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: error: {msg}");
    EXIT_USAGE
}

/// The trust store the `--trust` and `--cert` files make.
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

/// The verification options `--check-time` asks for.
pub(crate) fn options(args: &TrustArgs) -> Options {
    let now = args.check_time.then(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    });
    // A bundle's sealed waiver applies as it will at boot.
    let waive = args.trust.iter().any(|t| {
        std::fs::read(t)
            .ok()
            .and_then(|b| crate::trust::read_bundle(t, &b).ok())
            .is_some_and(|b| b.settings.mldsa_authattrs == crate::verify::mldsa::Authattrs::Waive)
    });
    Options {
        now,
        mldsa_authattrs: if waive {
            crate::verify::mldsa::Authattrs::Waive
        } else {
            crate::verify::mldsa::Authattrs::Reject
        },
    }
}

/// Worker threads: `--jobs`, else one per core.
pub(crate) fn jobs(arg: Option<u16>) -> usize {
    arg.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_exit_2_and_help_is_exit_0() {
        assert_eq!(
            run_with(["modseal", "verify", "--jobs", "0", "x"]),
            EXIT_USAGE
        );
        assert_eq!(run_with(["modseal", "no-such-command"]), EXIT_USAGE);
        assert_eq!(run_with(["modseal", "--version"]), EXIT_OK);
    }

    #[test]
    fn jobs_defaults_to_at_least_one() {
        assert_eq!(jobs(Some(3)), 3);
        assert!(jobs(None) >= 1);
    }
}
