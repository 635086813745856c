//! `modseal attest --make-policy`: a policy from a known-good boot's log, or
//! from the files a machine will boot (bundle, initrds, kernels).

use std::path::Path;

use super::attest::{bad_input, AttestArgs};
use super::{EXIT_FAIL, EXIT_OK};
use crate::attest::policy::{self, BootChain, ChainFiles, HostInput, Policy};
use crate::attest::{evaluate, load_ak, parse_nonce, read_evidence, Evidence};
use crate::util::read::read_capped;
use crate::verify::pubkey::PublicKey;

/// The nonce, the AK and the quote directory (with `log`, else its own):
/// `Err` is the message of bad input.
fn inputs(
    dir: &Path,
    ak_path: &Path,
    nonce: &str,
    log: Option<&Path>,
) -> Result<(Vec<u8>, PublicKey, Evidence), String> {
    let nonce = parse_nonce(nonce).map_err(|e| format!("--nonce {e}"))?;
    let ak = load_ak(ak_path).map_err(|e| e.to_string())?;
    let ev = read_evidence(dir, log).map_err(|e| e.to_string())?;
    Ok((nonce, ak, ev))
}

/// `modseal attest --make-policy`.
pub(super) fn make_policy(a: &AttestArgs) -> u8 {
    if a.expect_modules && a.initrd.len() > 1 {
        return bad_input(
            false,
            "--expect-modules pins one module set: give one --initrd with it",
        );
    }
    match &a.log {
        Some(log) => from_log(a, log),
        None => from_host(a),
    }
}

/// --initrd, --kernel, --boot-app and --cmdline.
fn chain_files(a: &AttestArgs) -> ChainFiles<'_> {
    ChainFiles {
        initrds: &a.initrd,
        kernels: &a.kernel,
        boot_apps: &a.boot_app,
        cmdlines: &a.cmdline,
    }
}

/// The boot-chain lines from --initrd, --kernel, --boot-app and --cmdline
/// (none when none of them is given): `Err` is the exit status, the
/// message printed.
fn chain_from_args(a: &AttestArgs) -> Result<Option<BootChain>, u8> {
    if a.initrd.is_empty() && a.kernel.is_empty() && a.cmdline.is_empty() && a.boot_app.is_empty() {
        return Ok(None);
    }
    if a.initrd.is_empty() || a.kernel.is_empty() {
        return Err(bad_input(
            false,
            "--make-policy pins the boot chain with both --kernel VMLINUZ and --initrd IMAGE",
        ));
    }
    policy::boot_chain(&chain_files(a))
        .map(Some)
        .map_err(|e| bad_input(false, &e.to_string()))
}

/// The policy file. One without a boot chain (`--log` alone) is not yet
/// one `attest` takes: say so.
fn print_policy(p: &Policy) -> u8 {
    if p.boot.is_none() {
        eprintln!(
            "modseal: warning: this policy pins no kernel and no initrd, so attest refuses it: \
             add kernel-sha256 and initrd-sha256 lines, or give --kernel and --initrd"
        );
    }
    print!("{}", p.render());
    EXIT_OK
}

/// `--make-policy` without `--log`: from the trust bundle, the initrds and
/// the kernels.
fn from_host(a: &AttestArgs) -> u8 {
    let (Some(trust), false, false) = (&a.trust, a.initrd.is_empty(), a.kernel.is_empty()) else {
        return bad_input(
            false,
            "--make-policy needs --log LOG (a known-good boot), or --trust BUNDLE, \
             --initrd IMAGE and --kernel VMLINUZ (the files the machine will boot)",
        );
    };
    if a.quote.is_some() || a.ak.is_some() || a.nonce.is_some() {
        return bad_input(
            false,
            "--make-policy checks a quote only against a log: give --log with --quote, --ak and --nonce",
        );
    }
    let bundle = match read_capped(trust, crate::trust::MAX_TRUST_FILE) {
        Ok(b) => b,
        Err(e) => return bad_input(false, &e.to_string()),
    };
    let input = HostInput {
        trust_path: trust,
        bundle: &bundle,
        chain: chain_files(a),
        expect_modules: a.expect_modules,
        jobs: super::jobs(None),
    };
    match policy::from_host(&input) {
        Ok(p) => print_policy(&p),
        Err(e) if e.boot_would_fail() => {
            eprintln!("modseal: refusing to make a policy: {e}");
            EXIT_FAIL
        }
        Err(e) => bad_input(false, &e.to_string()),
    }
}

/// `--make-policy --log`: from a known-good boot's log, checked against a
/// quote when one is given; the boot chain from the files.
fn from_log(a: &AttestArgs, log_path: &Path) -> u8 {
    let log = match read_capped(log_path, crate::measure::MAX_LOG_SIZE) {
        Ok(b) => b,
        Err(e) => return bad_input(false, &e.to_string()),
    };
    let records = match crate::measure::parse_records(&log) {
        Ok(r) => r,
        Err(e) => return bad_input(false, &format!("{}: {e}", log_path.display())),
    };
    let chain = match chain_from_args(a) {
        Ok(c) => c,
        Err(status) => return status,
    };
    let policy = match policy::from_log(&records, a.expect_modules) {
        Ok(p) => Policy { boot: chain, ..p },
        Err(e) => {
            eprintln!(
                "modseal: refusing to make a policy from {}: {e}",
                log_path.display()
            );
            return EXIT_FAIL;
        }
    };
    match (&a.quote, &a.ak, &a.nonce) {
        (None, None, None) => {}
        (Some(dir), Some(ak_path), Some(nonce)) => {
            let (nonce, ak, ev) = match inputs(dir, ak_path, nonce, Some(log_path)) {
                Ok(i) => i,
                Err(e) => return bad_input(false, &e),
            };
            match evaluate(&ak, &ev, &nonce, &policy, true) {
                Ok(r) if r.trusted => {}
                Ok(r) => {
                    eprintln!(
                        "modseal: refusing to make a policy: the quote does not attest the log: {}",
                        r.verdict
                    );
                    return EXIT_FAIL;
                }
                Err(e) => return bad_input(false, &e.to_string()),
            }
        }
        _ => {
            return bad_input(
                false,
                "--make-policy checks a quote only with all of --quote, --ak and --nonce",
            )
        }
    }
    print_policy(&policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::EXIT_USAGE;
    use clap::Parser;
    use std::path::PathBuf;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        a: AttestArgs,
    }

    fn args(line: &[&str]) -> Result<AttestArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("attest").chain(line.iter().copied())).map(|c| c.a)
    }

    #[test]
    fn host_flags_parse_and_repeat() {
        let a = args(&[
            "--make-policy",
            "--trust",
            "b",
            "--initrd",
            "i1",
            "--initrd",
            "i2",
            "--kernel",
            "k",
            "--cmdline",
            "x y",
            "--cmdline",
            "z",
        ])
        .unwrap();
        assert_eq!(a.initrd.len(), 2);
        assert_eq!(a.kernel, vec![PathBuf::from("k")]);
        assert_eq!(a.cmdline, vec!["x y".to_owned(), "z".into()]);
        // The host flags belong to --make-policy; --trust reads no log.
        assert!(args(&["--trust", "b", "--ak", "a", "--quote", "q", "--nonce", "00"]).is_err());
        assert!(args(&["--make-policy", "--trust", "b", "--log", "l"]).is_err());
        assert!(args(&[
            "--make-policy",
            "--log",
            "l",
            "--kernel",
            "k",
            "--initrd",
            "i"
        ])
        .is_ok());
    }

    #[test]
    fn usage_errors_exit_2() {
        let run = |line: &[&str]| make_policy(&args(line).unwrap());
        assert_eq!(run(&["--make-policy"]), EXIT_USAGE);
        assert_eq!(
            run(&["--make-policy", "--trust", "b", "--kernel", "k"]),
            EXIT_USAGE
        );
        assert_eq!(
            run(&[
                "--make-policy",
                "--expect-modules",
                "--trust",
                "b",
                "--kernel",
                "k",
                "--initrd",
                "1",
                "--initrd",
                "2"
            ]),
            EXIT_USAGE
        );
        assert_eq!(
            run(&["--make-policy", "--log", "/nonexistent", "--kernel", "k"]),
            EXIT_USAGE
        );
    }
}
