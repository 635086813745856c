//! `modseal log show --firmware`: the firmware's TCG event log, readably.

use std::path::Path;

use crate::cli::{EXIT_OK, EXIT_USAGE};
use crate::measure::tcg::{self, FirmwareLog};
use crate::tpm::PcrBank;
use crate::util::hex;

/// Hex digits kept of a digest that is not SHA-256.
const SHORT_HEX: usize = 16;

/// Prints the header, each event and the replayed PCRs; exit 2 when the log
/// cannot be read (the error names the byte offset and the event).
pub fn show(path: &Path) -> u8 {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("modseal: error: {}: cannot read: {e}", path.display());
            return EXIT_USAGE;
        }
    };
    let log = match tcg::parse(&bytes) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", path.display());
            return EXIT_USAGE;
        }
    };
    header(&log);
    for e in &log.events {
        let digests: Vec<String> = e
            .digests
            .iter()
            .map(|(alg, d)| format!("{}:{}", alg_name(*alg), digest_hex(*alg, d)))
            .collect();
        println!(
            "event {}: PCR {}, {}, {}, {}",
            e.index,
            e.pcr,
            tcg::event_type_name(e.event_type),
            digests.join(" "),
            e.summary()
        );
    }
    let locality = match tcg::startup_locality(&log) {
        Some(l) => format!("PCR 0 from startup locality {l}"),
        None => "all from zero".to_owned(),
    };
    println!("replayed PCRs ({locality}; EV_NO_ACTION not extended):");
    for ((pcr, bank), v) in tcg::replay(&log) {
        println!("pcr {pcr} {bank} {}", hex::lower(&v));
    }
    EXIT_OK
}

fn header(log: &FirmwareLog) {
    let s = &log.spec;
    println!(
        "firmware event log: spec {}.{} errata {}, platform class {}, uintn size {}, {} events",
        s.version_major,
        s.version_minor,
        s.errata,
        s.platform_class,
        s.uintn_size,
        log.events.len()
    );
    let algs: Vec<String> = s
        .algorithms
        .iter()
        .map(|(a, n)| format!("{} ({n} bytes)", alg_name(*a)))
        .collect();
    println!("algorithms: {}", algs.join(", "));
    println!("(digests other than sha256 shortened to their first {SHORT_HEX} hex digits)");
}

fn bank(alg: u16) -> Option<PcrBank> {
    PcrBank::ALL.into_iter().find(|b| b.alg_id() == alg)
}

fn alg_name(alg: u16) -> String {
    bank(alg).map_or_else(|| format!("alg {alg:#06x}"), |b| b.name().to_owned())
}

fn digest_hex(alg: u16, d: &[u8]) -> String {
    let h = hex::lower(d);
    if bank(alg) == Some(PcrBank::Sha256) || h.len() <= SHORT_HEX {
        h
    } else {
        format!("{}…", &h[..SHORT_HEX])
    }
}
