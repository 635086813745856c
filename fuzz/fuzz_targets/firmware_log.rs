//! The firmware's TCG event log, untrusted (it comes with a quote): the
//! parser must never panic, whatever parses must replay, and every prefix of
//! a parsed log must parse to a prefix of its events or fail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::measure::tcg;

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = tcg::parse(data) {
        let pcrs = tcg::replay(&log);
        for ((_, bank), v) in &pcrs {
            assert_eq!(v.len(), bank.digest_len());
        }
        for e in &log.events {
            let _ = e.summary();
            let _ = tcg::event_type_name(e.event_type);
        }
        if let Ok(shorter) = tcg::parse(&data[..data.len() / 2]) {
            assert_eq!(shorter.spec, log.spec);
            assert_eq!(shorter.events[..], log.events[..shorter.events.len()]);
        }
    }
});
