//! The `firmware-replay` check: the firmware's event log
//! (`binary_bios_measurements`) replays, per PCR and quoted bank, to every
//! quoted PCR it has events for. Under a v2 policy PCRs 4 and 9 (sha256)
//! must be quoted: they hold the kernel and the initrd the `boot-chain`
//! check reads.
//!
//! The events whose digest is defined as the hash of their data
//! (`EV_SEPARATOR`, `EV_EFI_ACTION`) are recomputed: an edited one is named
//! even where the PCR still replays, and `boot-chain` relies on it (a
//! digest relabelled as one of them would have to be that hash).
//!
//! A PCR that both the firmware log and modseal's records extend (a stub
//! measuring into PCR 12 before the initramfs runs) is not compared here:
//! the firmware's value is where the `replay` check starts that PCR.

use std::collections::{BTreeMap, BTreeSet};

use super::boot_chain::{INITRD_PCR, KERNEL_PCR};
use super::pcrs::PcrValues;
use super::report::{ReplayReport, ReplayResult};
use super::selection::describe_selection;
use crate::measure::tcg::{
    event_type_name, replay, Event, FirmwareLog, EV_EFI_ACTION, EV_NO_ACTION, EV_SEPARATOR,
};
use crate::tpm::PcrBank;
use crate::util::hex;

/// Most events of one PCR for which reorderings are tried, to name them.
const MAX_REORDER_EVENTS: usize = 64;

/// The PCR values the firmware log leaves, by PCR (0-23) and bank.
pub fn values(log: &FirmwareLog) -> BTreeMap<(u8, PcrBank), Vec<u8>> {
    replay(log)
        .into_iter()
        .filter_map(|((p, b), v)| {
            u8::try_from(p)
                .ok()
                .filter(|p| *p < 24)
                .map(|p| ((p, b), v))
        })
        .collect()
}

/// Where the `replay` check starts the policy's measurement PCR when the
/// firmware log has events for it too (systemd-boot measures the command
/// line into PCR 12): the firmware's value. No other PCR is shared: a
/// record of modseal's on PCR 4 or 9 would hide a firmware event there.
pub fn shared_starts(
    values: &BTreeMap<(u8, PcrBank), Vec<u8>>,
    shared_pcr: u8,
) -> BTreeMap<(u8, PcrBank), Vec<u8>> {
    values
        .iter()
        .filter(|((p, _), _)| *p == shared_pcr)
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// The outcome of the check, and one report per PCR and bank compared.
pub struct FirmwareReplay {
    /// The detail, or why it fails.
    pub result: Result<String, String>,
    /// Every PCR and bank of the log (and PCRs 4 and 9 when required).
    pub reports: Vec<ReplayReport>,
}

/// The events of `pcr` the log extends in `bank`, in log order.
fn events_of(log: &FirmwareLog, pcr: u8, bank: PcrBank) -> Vec<&Event> {
    log.events
        .iter()
        .filter(|e| e.pcr == u32::from(pcr) && e.event_type != EV_NO_ACTION)
        .filter(|e| e.digest(bank).is_some())
        .collect()
}

fn list(events: &[&Event]) -> String {
    if events.is_empty() {
        return "none".into();
    }
    let v: Vec<String> = events
        .iter()
        .map(|e| format!("#{} {}", e.index, event_type_name(e.event_type)))
        .collect();
    v.join(", ")
}

/// Runs the check. `require_boot` (a v2 policy): PCRs 4 and 9 sha256 must
/// be quoted.
pub fn check(
    log: &FirmwareLog,
    pcrs: &PcrValues,
    shared_pcr: u8,
    require_boot: bool,
) -> FirmwareReplay {
    let values = values(log);
    let mut pairs: BTreeSet<(u8, PcrBank)> = values.keys().copied().collect();
    if require_boot {
        pairs.extend([(4, PcrBank::Sha256), (9, PcrBank::Sha256)]);
    }
    let shared: BTreeSet<u8> = pairs
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| *p == shared_pcr)
        .collect();
    let mut reports = Vec::new();
    let mut mismatch = None;
    for &(pcr, bank) in pairs.iter().filter(|(p, _)| !shared.contains(p)) {
        let quoted = pcrs.get(bank, pcr);
        let zero = vec![0u8; bank.digest_len()];
        let replayed = values.get(&(pcr, bank)).unwrap_or(&zero);
        let events = events_of(log, pcr, bank);
        let result = match quoted {
            None => ReplayResult::NotQuoted,
            Some(q) if q == replayed.as_slice() => ReplayResult::Match,
            Some(_) => ReplayResult::Mismatch,
        };
        // Only the mismatch reported is explained: trying reorderings of
        // every PCR and bank would let a crafted log cost minutes.
        let explain = mismatch.is_none();
        let detail = quoted.filter(|q| *q != replayed.as_slice()).map(|q| {
            format!(
                "PCR {pcr} {bank}: the firmware log's events of PCR {pcr} ({}) replay to {}, the quote has {}: {}",
                list(&events),
                hex::lower(replayed),
                hex::lower(q),
                explain
                    .then(|| reordered(&events, bank, q))
                    .flatten()
                    .unwrap_or_else(|| "an event was edited, dropped, added or moved".into())
            )
        });
        if mismatch.is_none() {
            mismatch.clone_from(&detail);
        }
        reports.push(ReplayReport {
            pcr,
            bank: bank.name().to_owned(),
            quoted: quoted.map(hex::lower),
            replayed: hex::lower(replayed),
            result,
            records: events.iter().map(|e| e.index).collect(),
            detail,
        });
    }
    let result = outcome(log, pcrs, &reports, require_boot, mismatch, &shared);
    FirmwareReplay { result, reports }
}

/// The check's verdict: a required PCR not quoted, then an event whose
/// digest is not its data's hash, then the first mismatch.
fn outcome(
    log: &FirmwareLog,
    pcrs: &PcrValues,
    reports: &[ReplayReport],
    require_boot: bool,
    mismatch: Option<String>,
    shared: &BTreeSet<u8>,
) -> Result<String, String> {
    if require_boot {
        for (pcr, what) in [(KERNEL_PCR, "the kernel"), (INITRD_PCR, "the initrd")] {
            let pcr = u8::try_from(pcr).unwrap_or(u8::MAX);
            if pcrs.get(PcrBank::Sha256, pcr).is_none() {
                return Err(format!(
                    "PCR {pcr} is not quoted (sha256): the policy checks {what} the firmware measured there, and the quote covers {} (modseal quote --pcrs 4,9,12)",
                    describe_selection(&pcrs.selection)
                ));
            }
        }
    }
    let quoted: BTreeSet<(u8, PcrBank)> = reports
        .iter()
        .filter(|r| r.result != ReplayResult::NotQuoted)
        .filter_map(|r| PcrBank::from_name(&r.bank).map(|b| (r.pcr, b)))
        .collect();
    if let Some(e) = edited_event(log, &quoted) {
        return Err(e);
    }
    if let Some(m) = mismatch {
        return Err(m);
    }
    let names = |want: ReplayResult| -> Vec<String> {
        reports
            .iter()
            .filter(|r| r.result == want)
            .map(|r| format!("{}/{}", r.pcr, r.bank))
            .collect()
    };
    let (matched, skipped) = (names(ReplayResult::Match), names(ReplayResult::NotQuoted));
    let mut s = format!(
        "{} firmware event(s) replay to the quoted PCR value(s) {}",
        log.events.len(),
        if matched.is_empty() {
            "(none quoted)".to_owned()
        } else {
            matched.join(", ")
        }
    );
    if !skipped.is_empty() {
        s.push_str(&format!(
            "; not quoted, not checked: {}",
            skipped.join(", ")
        ));
    }
    if !shared.is_empty() {
        let v: Vec<String> = shared.iter().map(u8::to_string).collect();
        s.push_str(&format!(
            "; PCR(s) {} continue with modseal's records: checked by replay",
            v.join(", ")
        ));
    }
    Ok(s)
}

/// The first `EV_SEPARATOR` or `EV_EFI_ACTION` event of a quoted PCR whose
/// digest in a quoted bank is not the hash of its data.
fn edited_event(log: &FirmwareLog, quoted: &BTreeSet<(u8, PcrBank)>) -> Option<String> {
    for e in &log.events {
        if e.event_type != EV_SEPARATOR && e.event_type != EV_EFI_ACTION {
            continue;
        }
        for &(pcr, bank) in quoted {
            if u32::from(pcr) != e.pcr {
                continue;
            }
            if let Some(d) = e.digest(bank) {
                if d != bank.hash(&e.data).as_slice() {
                    return Some(format!(
                        "event #{} ({}, PCR {pcr}): its {bank} digest {} is not the hash of its data (the event was edited)",
                        e.index,
                        event_type_name(e.event_type),
                        hex::lower(d)
                    ));
                }
            }
        }
    }
    None
}

/// Whether swapping two events of the PCR makes it replay to `quoted`:
/// the log then names them as out of order.
fn reordered(events: &[&Event], bank: PcrBank, quoted: &[u8]) -> Option<String> {
    if events.len() > MAX_REORDER_EVENTS {
        return None;
    }
    let digests: Vec<&[u8]> = events.iter().filter_map(|e| e.digest(bank)).collect();
    let replay_of = |d: &[&[u8]]| {
        d.iter()
            .fold(vec![0u8; bank.digest_len()], |v, x| bank.extend(&v, x))
    };
    for i in 0..digests.len() {
        for j in i + 1..digests.len() {
            let mut d = digests.clone();
            d.swap(i, j);
            if replay_of(&d) == quoted {
                return Some(format!(
                    "events #{} and #{} are out of order (the log is reordered)",
                    events[i].index, events[j].index
                ));
            }
        }
    }
    None
}
