//! `modseal attest`.

use std::path::{Path, PathBuf};

use super::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::attest::evidence::read_firmware_log;
use crate::attest::policy::{self, Policy};
use crate::attest::{evaluate, load_ak, parse_nonce, read_evidence, render_text};
use crate::util::read::read_capped;

/// `modseal attest`'s arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 trusted; 1 not trusted (or no --policy and no --no-policy; or, with \
--make-policy, the log or an image is not a passing boot); 2 bad input (unreadable or malformed files, \
a missing firmware log under a policy, unusable AK, malformed or v1 policy, usage)."
)]
pub struct AttestArgs {
    /// The trusted attestation key: PEM (`BEGIN PUBLIC KEY`) or DER SubjectPublicKeyInfo,
    /// RSA 2048-4096 or ECC P-256/P-384. The AK files in the quote directory are never used.
    #[arg(long, value_name = "AK.pem", required_unless_present = "make_policy")]
    pub ak: Option<PathBuf>,
    /// The quote directory: quote.msg, quote.sig, quote.pcrs (as tpm2_quote -m -s -o write
    /// them) and tpm2-measure.log.
    #[arg(long, value_name = "DIR", required_unless_present = "make_policy")]
    pub quote: Option<PathBuf>,
    /// The nonce the verifier chose for this quote (hex, 1-64 bytes).
    #[arg(long, value_name = "HEX", required_unless_present = "make_policy")]
    pub nonce: Option<String>,
    /// The event log (default: DIR/tpm2-measure.log).
    #[arg(long, value_name = "LOG")]
    pub log: Option<PathBuf>,
    /// The attestation policy (v2, see `--make-policy`): the trust bundle, the kernel, the
    /// initrd and the command line the machine must have booted with. Required unless
    /// --no-policy is given.
    #[arg(long, value_name = "FILE", conflicts_with = "make_policy")]
    pub policy: Option<PathBuf>,
    /// Check the signature, the nonce and modseal's records only (PCR 12, sha256, enforce,
    /// stages early then pre-pivot, every module ok): the trust-bundle digest, the kernel,
    /// the initrd and the command line are NOT checked, and the report says so.
    #[arg(long, conflicts_with_all = ["policy", "make_policy"])]
    pub no_policy: bool,
    /// The firmware's TCG event log (default: DIR/binary_bios_measurements); required by a
    /// policy, which checks the kernel and the initrd it records.
    #[arg(long, value_name = "FILE")]
    pub firmware_log: Option<PathBuf>,
    /// Print the full report as JSON.
    #[arg(long, conflicts_with = "make_policy")]
    pub json: bool,
    /// Print a policy made from the known-good boot in --log (checked against --quote, --ak
    /// and --nonce when given), or from the files the machine will boot (--trust, --initrd,
    /// --kernel); refuses a log or an image that is not a passing boot.
    #[arg(long)]
    pub make_policy: bool,
    /// With --make-policy: also pin the exact module set (path and SHA-256).
    #[arg(long, requires = "make_policy")]
    pub expect_modules: bool,
    /// With --make-policy and no --log: the trust bundle the boot will use (its SHA-256 is the
    /// anchor; its sealed PCR and mode are the policy's).
    #[arg(
        long,
        value_name = "BUNDLE",
        requires = "make_policy",
        conflicts_with = "log"
    )]
    pub trust: Option<PathBuf>,
    /// With --make-policy: an initramfs image the boot may use (initrd-sha256: its SHA-256;
    /// without --log its modules are verified against --trust). Repeatable.
    #[arg(long, value_name = "IMAGE", requires = "make_policy")]
    pub initrd: Vec<PathBuf>,
    /// With --make-policy: a kernel image (PE, EFI stub) the boot may use (kernel-sha256: its
    /// Authenticode SHA-256, what UEFI firmware measures into PCR 4; kernel-module-cert: each
    /// certificate built into it, which a record's derived anchor may name). With a bundle of
    /// kernel-signer CAs, an image's derived anchor must be what one of these yields. Repeatable.
    #[arg(long, value_name = "VMLINUZ", requires = "make_policy")]
    pub kernel: Vec<PathBuf>,
    /// With --make-policy: an EFI application the firmware may start before the kernel, such
    /// as a boot loader (systemd-boot, shim, GRUB): boot-app-sha256, its Authenticode SHA-256
    /// as measured into PCR 4. Repeatable.
    #[arg(long, value_name = "EFI", requires = "make_policy")]
    pub boot_app: Vec<PathBuf>,
    /// With --make-policy: a kernel command line the boot may have, exactly (default: any).
    /// Repeatable.
    #[arg(long, value_name = "TEXT", requires = "make_policy")]
    pub cmdline: Vec<String>,
}

/// Prints the message of bad input (and, as JSON, a report saying so).
pub(super) fn bad_input(json: bool, msg: &str) -> u8 {
    // Parser errors can quote the untrusted input: no control characters.
    let msg: String = msg
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    eprintln!("modseal: error: {msg}");
    if json {
        let doc = serde_json::json!({ "trusted": false, "bad_input": msg });
        println!("{doc}");
    }
    EXIT_USAGE
}

/// `--policy`, or the default one.
fn load_policy(path: Option<&Path>) -> Result<Policy, String> {
    let Some(p) = path else {
        return Ok(Policy::default());
    };
    let bytes = read_capped(p, policy::MAX_POLICY_SIZE).map_err(|e| e.to_string())?;
    Policy::parse(&bytes).map_err(|e| match e {
        policy::PolicyError::Version1 => format!("{}: {e}", p.display()),
        e => format!("{}: malformed policy: {e}", p.display()),
    })
}

/// What `--no-policy` leaves unchecked, said on stderr before the report.
const NO_POLICY_WARNING: &str = "modseal: warning: --no-policy: NOT CHECKED: the trust-bundle \
digest, the kernel (PCR 4), the initrd (PCR 9) and the command line (PCR 9); a trusted verdict \
says only that the quote is fresh and signed by the AK and that modseal's records replay and pass";

/// Neither --policy nor --no-policy: not trusted (exit 1), saying why.
fn no_policy_given(json: bool) -> u8 {
    let verdict = "NOT TRUSTED: no policy given: nothing says which trust bundle, kernel and \
initrd this machine must have booted (--policy FILE, or --no-policy to check the signature, the \
nonce and the records only)";
    if json {
        println!(
            "{}",
            serde_json::json!({ "trusted": false, "verdict": verdict })
        );
    } else {
        println!("{verdict}");
    }
    EXIT_FAIL
}

/// `modseal attest` (`--make-policy` is `cli::make_policy`'s).
pub fn cmd_attest(a: AttestArgs) -> u8 {
    let (Some(ak_path), Some(dir), Some(nonce)) = (&a.ak, &a.quote, &a.nonce) else {
        return bad_input(a.json, "--ak, --quote and --nonce are required");
    };
    if a.policy.is_none() && !a.no_policy {
        return no_policy_given(a.json);
    }
    let nonce = match parse_nonce(nonce) {
        Ok(n) => n,
        Err(e) => return bad_input(a.json, &format!("--nonce {e}")),
    };
    let ak = match load_ak(ak_path) {
        Ok(k) => k,
        Err(e) => return bad_input(a.json, &e.to_string()),
    };
    let policy = match load_policy(a.policy.as_deref()) {
        Ok(p) => p,
        Err(e) => return bad_input(a.json, &e),
    };
    let ev = match read_evidence(dir, a.log.as_deref()).and_then(|mut ev| {
        if let Some(p) = &a.firmware_log {
            ev.firmware_log = Some(read_firmware_log(p)?);
        }
        Ok(ev)
    }) {
        Ok(e) => e,
        Err(e) => return bad_input(a.json, &e.to_string()),
    };
    let report = match evaluate(&ak, &ev, &nonce, &policy, a.policy.is_some()) {
        Ok(r) => r,
        Err(e) => return bad_input(a.json, &e.to_string()),
    };
    if a.no_policy {
        eprintln!("{NO_POLICY_WARNING}");
    }
    let printed = if a.json {
        serde_json::to_string(&report)
            .map(|s| println!("{s}"))
            .map_err(|e| e.to_string())
    } else {
        print!("{}", render_text(&report));
        Ok(())
    };
    if let Err(e) = printed {
        eprintln!("modseal: error: writing the report: {e}");
        return EXIT_USAGE;
    }
    if report.trusted {
        EXIT_OK
    } else {
        EXIT_FAIL
    }
}
