//! The PCR values a firmware log implies, per PCR and bank.

use std::collections::BTreeMap;

use super::{FirmwareLog, EV_NO_ACTION};
use crate::tpm::PcrBank;

const STARTUP_LOCALITY: &[u8; 16] = b"StartupLocality\0";

/// The locality of the log's `StartupLocality` `EV_NO_ACTION` event, if any:
/// the TPM started PCR 0 at that value (in its last byte) instead of zero.
pub fn startup_locality(log: &FirmwareLog) -> Option<u8> {
    log.events
        .iter()
        .filter(|e| e.event_type == EV_NO_ACTION)
        .find(|e| e.data.len() > STARTUP_LOCALITY.len() && e.data.starts_with(STARTUP_LOCALITY))
        .and_then(|e| e.data.last().copied())
}

/// The value each PCR the log touches holds in each bank modseal knows
/// (SHA-1/256/384/512), after extending every event but `EV_NO_ACTION` from
/// zero (PCR 0 from the startup locality). Digests of other algorithms are
/// skipped.
pub fn replay(log: &FirmwareLog) -> BTreeMap<(u32, PcrBank), Vec<u8>> {
    let locality = startup_locality(log);
    let start = |pcr: u32, bank: PcrBank| {
        let mut v = vec![0u8; bank.digest_len()];
        if let (0, Some(l), Some(last)) = (pcr, locality, v.last_mut()) {
            *last = l;
        }
        v
    };
    let mut pcrs: BTreeMap<(u32, PcrBank), Vec<u8>> = BTreeMap::new();
    if locality.is_some() {
        for bank in known_banks(log) {
            pcrs.insert((0, bank), start(0, bank));
        }
    }
    for e in log.events.iter().filter(|e| e.event_type != EV_NO_ACTION) {
        for (alg, digest) in &e.digests {
            let Some(bank) = PcrBank::ALL.into_iter().find(|b| b.alg_id() == *alg) else {
                continue;
            };
            let v = pcrs
                .entry((e.pcr, bank))
                .or_insert_with(|| start(e.pcr, bank));
            *v = bank.extend(v, digest);
        }
    }
    pcrs
}

/// The banks of the header modseal can compute.
fn known_banks(log: &FirmwareLog) -> impl Iterator<Item = PcrBank> + '_ {
    PcrBank::ALL
        .into_iter()
        .filter(|b| log.spec.digest_size(b.alg_id()).is_some())
}
