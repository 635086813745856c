//! The event log and the attestation policy, both untrusted: parse_records,
//! the digest checks, contents (which must write back to themselves), the
//! replay and its diagnosis, the policy checks and the policy made from a
//! log; and policy files, which must write back to the same policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::attest::policy;
use modseal::measure;
use modseal::tpm::PcrBank;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = measure::parse_records(data) {
        for r in &records {
            let _ = r.verify_digests();
            if let Some(Ok(c)) = r.parse_content() {
                // Whatever content parses must write back to content that
                // parses the same.
                let bytes = c.encode().expect("a parsed content serializes");
                let record = measure::record_bytes(r.pcr, &bytes, &[PcrBank::Sha256]);
                let again = measure::parse_records(&record)
                    .ok()
                    .and_then(|rs| rs.into_iter().next())
                    .and_then(|r| r.parse_content())
                    .and_then(Result::ok);
                assert_eq!(again, Some(c));
            }
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
            let from = vec![0u8; bank.digest_len()];
            let r = measure::explain(&records, 12, bank, &from, &q);
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
