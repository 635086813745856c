//! The event log and the attestation policy, both untrusted: parse_log,
//! the digest checks, the replay and its diagnosis, the policy checks and
//! the policy made from a log; and policy files, which must write back to
//! the same policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::attest::{policy, replay};
use modseal::measure;
use modseal::tpm::PcrBank;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = measure::parse_log(data) {
        for r in &records {
            let _ = r.check_digests();
            let _ = r.modseal_content();
        }
        let zero = [0u8; 32];
        let _ = measure::replay(&records, 12, PcrBank::Sha256, &zero);
        // A quoted value the log cannot reach (the tail of the input, or
        // zero): the diagnosis runs every branch, reordering included.
        let quoted: Vec<u8> = match data.len() {
            n if n >= 32 => data[n - 32..].to_vec(),
            _ => zero.to_vec(),
        };
        for bank in PcrBank::ALL {
            let q = if bank == PcrBank::Sha256 {
                quoted.clone()
            } else {
                vec![0u8; bank.digest_len()]
            };
            let r = replay::replay(&records, 12, bank, &q);
            if r.mismatch.is_none() {
                assert_eq!(r.value, q);
            }
        }
        let _ = policy::evaluate(&policy::Policy::default(), &records);
        if let Ok(p) = policy::from_log(&records, true) {
            assert!(policy::evaluate(&p, &records).is_empty());
            assert_eq!(policy::Policy::parse(p.render().as_bytes()), Ok(p));
        }
    }
    if let Ok(p) = policy::Policy::parse(data) {
        assert_eq!(policy::Policy::parse(p.render().as_bytes()), Ok(p));
    }
});
