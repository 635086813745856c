//! `modseal log show|replay`: reading an event log.

use std::path::PathBuf;

use clap::Subcommand;

use super::predict::parse_from;
use crate::cli::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::measure::{Content, Record};
use crate::tpm::{PcrBank, Tpm};
use crate::verify::Verdict;

/// `modseal log`'s subcommands.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// List the records of an event log.
    Show {
        // A doc comment here would become this argument's --help text, kept as it is.
        #[allow(missing_docs)]
        #[arg(value_name = "LOG")]
        log: PathBuf,
        /// List every module with its verdict (default: only the failed ones).
        #[arg(long)]
        modules: bool,
        /// Read LOG as the firmware's TCG event log (binary_bios_measurements).
        #[arg(long, conflicts_with = "modules")]
        firmware: bool,
    },
    /// The PCR values the log implies; with --tcti, compare them with the TPM's (exit 1 on mismatch).
    Replay {
        // A doc comment here would become this argument's --help text, kept as it is.
        #[allow(missing_docs)]
        #[arg(value_name = "LOG")]
        log: PathBuf,
        // A doc comment here would become this argument's --help text, kept as it is.
        #[allow(missing_docs)]
        #[arg(long, value_name = "TCTI")]
        tcti: Option<String>,
        /// PCR value before the log's first record (default: all zero).
        #[arg(long, value_name = "HEX")]
        from: Option<String>,
    },
}

/// Runs `modseal log show|replay`.
pub fn cmd_log(c: LogCommand) -> u8 {
    let path = match &c {
        LogCommand::Show { log, .. } | LogCommand::Replay { log, .. } => log.clone(),
    };
    if let LogCommand::Show { firmware: true, .. } = c {
        return super::firmware_log::show(&path);
    }
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("modseal: error: {}: cannot read: {e}", path.display());
            return EXIT_USAGE;
        }
    };
    let records = match crate::measure::parse_records(&bytes) {
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

fn show(records: &[Record], all_modules: bool) -> u8 {
    let mut status = EXIT_OK;
    for r in records {
        let integrity = match r.verify_digests() {
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
        for (b, d) in &r.digests {
            println!("  {b}:{}", crate::util::hex::lower(d));
        }
        match r.parse_content() {
            Some(Ok(c)) => show_content(&c, all_modules),
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

/// A modseal record's stage, result and modules (the failed ones, or all).
fn show_content(c: &Content, all_modules: bool) {
    let ok = c
        .modules
        .iter()
        .filter(|m| m.verdict == Verdict::Ok)
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
        .filter(|m| all_modules || m.verdict != Verdict::Ok)
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
    // Control characters escaped: these texts come from the boot's files.
    for (label, items) in [
        ("ignored", &c.ignored),
        ("module config refused", &c.config_refused),
        ("loaded", &c.loaded),
    ] {
        for i in items {
            println!("  {label}: {}", i.escape_debug());
        }
    }
    if all_modules {
        for f in &c.module_config {
            println!(
                "  module config: {} sha256 {}",
                f.path.escape_debug(),
                f.sha256
            );
        }
    } else if !c.module_config.is_empty() {
        println!(
            "  module config: {} file(s) measured",
            c.module_config.len()
        );
    }
}

fn replay(records: &[Record], tcti: Option<&str>, from: Option<&str>) -> u8 {
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
        Some(t) => match crate::tpm::esapi::EsapiTpm::open(&crate::tpm::tcti_name(Some(t))) {
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
                if !matches_tpm(t, records, pcr, bank, &start) {
                    status = EXIT_FAIL;
                }
            }
        }
    }
    status
}

/// Compares the replay of `pcr` in `bank` with the TPM's value, saying why
/// they differ.
fn matches_tpm(t: &mut dyn Tpm, records: &[Record], pcr: u8, bank: PcrBank, start: &[u8]) -> bool {
    let live = match t.pcr_read(bank, &[pcr]) {
        Ok(v) if v.len() == 1 && v[0].len() == bank.digest_len() => v.concat(),
        Ok(v) => {
            eprintln!(
                "modseal: error: reading PCR {pcr} {bank}: {} value(s) of {} bytes, expected one of {}",
                v.len(),
                v.first().map_or(0, Vec::len),
                bank.digest_len()
            );
            return false;
        }
        Err(e) => {
            eprintln!("modseal: error: reading PCR {pcr} {bank}: {e}");
            return false;
        }
    };
    // The explanation takes the digests as checked; an edited record is
    // named as such first.
    for r in records.iter().filter(|r| r.pcr == pcr) {
        if let Err(e) = r.verify_digests() {
            println!("pcr {pcr} {bank} MISMATCH: {e} (the record was edited)");
            return false;
        }
    }
    match crate::measure::explain(records, pcr, bank, start, &live).mismatch {
        None => {
            println!("pcr {pcr} {bank} matches the TPM");
            true
        }
        Some(why) => {
            println!("pcr {pcr} {bank} MISMATCH: {why}");
            false
        }
    }
}
