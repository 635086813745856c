//! The real firmware log of tests/data/fw-ovmf-bookworm (OVMF booting
//! bookworm's 6.1 kernel) and what a UEFI boot would have done with it to a
//! test's swtpm: every event's sha256 digest extended into its PCR, in log
//! order. The TPM tests that need it include it themselves
//! (`#[path = "common/firmware.rs"] mod firmware;`).
#![allow(dead_code)]

use std::path::PathBuf;

use modseal::measure::tcg::{self, Event, EV_NO_ACTION};

/// The kernel's digest in the log (event 10, PCR 4).
pub const KERNEL: &str = "c3061a8bbabf1f33121facd0196afcfd1bcacaa108f6925af3840d70e5b52478";
/// The initrd's digest in the log (event 22, PCR 9).
pub const INITRD: &str = "af28f10820a6ba46102f472f17fce9023d87fdde89936b67d755fc43fe2d7da2";
/// The sha256 algorithm id.
pub const SHA256: u16 = 0x000B;

/// The log file.
pub fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fw-ovmf-bookworm/firmware.log")
}

/// The command line that boot's kernel printed.
pub fn cmdline() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fw-ovmf-bookworm/cmdline");
    std::fs::read_to_string(p)
        .expect("cmdline")
        .trim_end_matches('\n')
        .to_owned()
}

/// The log's bytes.
pub fn bytes() -> Vec<u8> {
    std::fs::read(sample()).expect("tests/data/fw-ovmf-bookworm/firmware.log")
}

/// The header event's bytes and the events of a log.
pub fn split(log: &[u8]) -> (Vec<u8>, Vec<Event>) {
    let size = u32::from_le_bytes(log[28..32].try_into().expect("header")) as usize;
    let parsed = tcg::parse(log).expect("a firmware log");
    (log[..32 + size].to_vec(), parsed.events)
}

/// A log of `header` and `events`, encoded as `TCG_PCR_EVENT2`s.
pub fn join(header: &[u8], events: &[Event]) -> Vec<u8> {
    let mut out = header.to_vec();
    for e in events {
        out.extend(e.pcr.to_le_bytes());
        out.extend(e.event_type.to_le_bytes());
        out.extend((e.digests.len() as u32).to_le_bytes());
        for (alg, d) in &e.digests {
            out.extend(alg.to_le_bytes());
            out.extend(d);
        }
        out.extend((e.data.len() as u32).to_le_bytes());
        out.extend(&e.data);
    }
    out
}

/// The `tpm2_pcrextend` arguments that replay the log's sha256 digests of
/// `pcrs` (all PCRs when empty) into a TPM, in log order.
pub fn extend_args(log: &[u8], pcrs: &[u32]) -> Vec<String> {
    let (_, events) = split(log);
    events
        .iter()
        .filter(|e| e.event_type != EV_NO_ACTION && (pcrs.is_empty() || pcrs.contains(&e.pcr)))
        .filter_map(|e| {
            let d = e.digests.iter().find(|(a, _)| *a == SHA256)?;
            Some(format!("{}:sha256={}", e.pcr, hex(&d.1)))
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex to bytes (lower or upper case, even length).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
