//! The firmware log as `modseal attest` reads it (untrusted: it comes with
//! the quote): `firmware-replay` against the PCR values the log itself
//! implies and against zeros, then `boot-chain` against a policy; neither
//! may panic, and a log always replays to its own values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::attest::selection::BankSelection;
use modseal::attest::{boot_chain, firmware, pcrs::PcrValues, policy::BootChain};
use modseal::measure::tcg;
use modseal::tpm::PcrBank;

/// The sha256 values of PCRs 0-23: `own` (from the log) or zero.
fn quote_of(values: &std::collections::BTreeMap<(u8, PcrBank), Vec<u8>>, own: bool) -> PcrValues {
    let pcrs: Vec<u8> = (0..24).collect();
    let v = pcrs
        .iter()
        .map(|p| match values.get(&(*p, PcrBank::Sha256)) {
            Some(v) if own => v.clone(),
            _ => vec![0u8; 32],
        })
        .collect();
    PcrValues::new(
        vec![BankSelection {
            hash: PcrBank::Sha256.alg_id(),
            pcrs,
        }],
        v,
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(log) = tcg::parse(data) else {
        return;
    };
    let values = firmware::values(&log);
    let own = firmware::check(&log, &quote_of(&values, true), 12, true);
    if let Err(e) = &own.result {
        // Only an event whose data does not hash to its digest may fail it.
        assert!(e.contains("is not the hash of its data"), "{e}");
    }
    let _ = firmware::check(&log, &quote_of(&values, false), 12, true);
    let chain = BootChain {
        kernels: vec!["00".repeat(32)],
        initrds: vec!["00".repeat(32)],
        cmdlines: vec!["quiet".into()],
        boot_apps: vec!["11".repeat(32)],
        ..BootChain::default()
    };
    let r = boot_chain::check(&log, &chain, None, 12);
    let _ = r.summary(&chain);
    // Unpinned: the event data doubles as an untrusted command-line copy.
    let open = BootChain {
        cmdlines: Vec::new(),
        ..chain
    };
    let copy = log.events.last().map(|e| e.data.as_slice());
    let _ = boot_chain::check(&log, &open, copy, 12).summary(&open);
});
