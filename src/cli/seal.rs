//! `modseal enroll` and `modseal unseal`.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::seal::{
    enroll, load_enrollment, parse_pcr_values, prepare_enrollment_dir, read_bundle,
    unseal_enrollment, write_enrollment, UnsealFailure, MAX_BUNDLE,
};
use crate::tpm::{PcrBank, SrkTemplate, TpmError};

/// `--tcti`, shared by the commands that talk to a TPM.
#[derive(Debug, Args)]
pub struct TctiArgs {
    /// TPM connection (TCTI), e.g. `device:/dev/tpmrm0` or `swtpm:host=127.0.0.1,port=2321`.
    /// Default: $MODSEAL_TCTI, else device:/dev/tpmrm0.
    #[arg(long, value_name = "TCTI")]
    pub tcti: Option<String>,
}

/// `modseal enroll`'s arguments.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The trust bundle whose SHA-256 is sealed.
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: PathBuf,
    /// PCRs of the sealing policy, e.g. `7,12` or `0-7`.
    #[arg(long, value_name = "LIST")]
    pub pcrs: String,
    /// PCR bank of the policy.
    #[arg(long, value_name = "BANK", default_value = "sha256")]
    pub bank: String,
    /// Seal to this value of a PCR instead of its current one (predicted state). Repeatable.
    #[arg(long = "pcr-value", value_name = "IDX=HEX")]
    pub pcr_values: Vec<String>,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Template of the primary storage root key recreated at each unseal when the TPM has no
    /// persistent SRK at 0x81000001: ecc-p256 (fast to create) or rsa-2048 (what earlier
    /// enrollments used).
    #[arg(long, value_name = "TEMPLATE", default_value = "ecc-p256", value_parser = ["ecc-p256", "rsa-2048"])]
    pub srk: String,
    // A doc comment here would become this argument's --help text, kept as it is.
    #[allow(missing_docs)]
    #[command(flatten)]
    pub tcti: TctiArgs,
}

/// `modseal unseal`'s arguments.
#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// The trust bundle to check.
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: PathBuf,
    /// Directory written by `modseal enroll`.
    #[arg(long, value_name = "DIR")]
    pub sealed: PathBuf,
    // A doc comment here would become this argument's --help text, kept as it is.
    #[allow(missing_docs)]
    #[command(flatten)]
    pub tcti: TctiArgs,
}

// ---------------------------------------------------------------------------
// Commands

fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("modseal: error: {msg}");
    EXIT_USAGE
}

fn open_tpm(arg: Option<&str>) -> Result<crate::tpm::esapi::EsapiTpm, TpmError> {
    crate::tpm::esapi::EsapiTpm::open(&crate::tpm::tcti_name(arg))
}

/// Runs `modseal enroll`.
pub fn cmd_enroll(args: EnrollArgs) -> u8 {
    let pcrs = match crate::tpm::bank::parse_pcr_list(&args.pcrs) {
        Ok(p) => p,
        Err(e) => return usage(format!("--pcrs {}: {e}", args.pcrs)),
    };
    let Some(bank) = PcrBank::from_name(&args.bank) else {
        return usage(format!(
            "--bank {}: expected sha1, sha256, sha384 or sha512",
            args.bank
        ));
    };
    let Some(template) = SrkTemplate::from_name(&args.srk) else {
        return usage(format!("--srk {}: expected ecc-p256 or rsa-2048", args.srk));
    };
    let given = match parse_pcr_values(&args.pcr_values, &pcrs, bank) {
        Ok(g) => g,
        Err(e) => return usage(e),
    };
    let bundle = match read_bundle(&args.trust) {
        Ok(b) => b,
        Err(e) => return usage(format!("--trust: {e}")),
    };
    let out = match prepare_enrollment_dir(&args.out) {
        Ok(o) => o,
        Err(e) => return usage(format!("--out: {e}")),
    };
    let mut tpm = match open_tpm(args.tcti.tcti.as_deref()) {
        Ok(t) => t,
        Err(e @ TpmError::Invalid(_)) => return usage(e),
        Err(e) => {
            eprintln!("modseal: enroll failed: no-tpm: {e}");
            return EXIT_FAIL;
        }
    };
    let (info, blob) = match enroll(&mut tpm, &bundle, &pcrs, bank, &given, template) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("modseal: enroll failed: {e}");
            return EXIT_FAIL;
        }
    };
    if let Err(e) = write_enrollment(&out, &info, &blob) {
        eprintln!("modseal: enroll failed: writing {}: {e}", out.display());
        return EXIT_FAIL;
    }
    let list: Vec<String> = info.pcrs.iter().map(u8::to_string).collect();
    println!(
        "enrolled {}: bundle sha256 {} sealed to PCRs {} ({}), policy {}, SRK {}{}",
        out.display(),
        crate::util::hex::lower(&info.bundle_sha256),
        list.join(","),
        bank,
        crate::util::hex::lower(&info.policy_digest),
        info.srk.to_config(),
        info.srk
            .template()
            .map(|t| format!(" ({})", t.name()))
            .unwrap_or_default()
    );
    log::debug!("enroll: {} TPM commands", tpm.commands());
    EXIT_OK
}

/// Runs `modseal unseal`.
pub fn cmd_unseal(args: UnsealArgs) -> u8 {
    let bundle = match crate::util::read::read_capped(&args.trust, MAX_BUNDLE) {
        Ok(b) => b,
        Err(e) => return usage(format!("--trust: {e}")),
    };
    let enrollment = match load_enrollment(&args.sealed) {
        Ok(e) => e,
        Err(f) if f.is_usage() => return usage(format!("--sealed: {f}")),
        Err(f) => {
            eprintln!("modseal: unseal failed: {f}");
            return EXIT_FAIL;
        }
    };
    let mut tpm = match open_tpm(args.tcti.tcti.as_deref()) {
        Ok(t) => t,
        Err(e @ TpmError::Invalid(_)) => return usage(e),
        Err(e) => {
            eprintln!("modseal: unseal failed: {}", UnsealFailure::from(e));
            return EXIT_FAIL;
        }
    };
    let r = unseal_enrollment(&mut tpm, &enrollment, &bundle);
    log::debug!("unseal: {} TPM commands", tpm.commands());
    match r {
        Ok(_) => {
            println!("bundle matches sealed digest");
            EXIT_OK
        }
        Err(f) => {
            eprintln!("modseal: unseal failed: {f}");
            if f.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAIL
            }
        }
    }
}
