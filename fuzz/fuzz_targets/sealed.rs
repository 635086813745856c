//! The enrollment files read at boot from disk an attacker may rewrite:
//! `sealed.json` and the TPM2B files / sealed object's public area.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = modseal::seal::SealedInfo::from_json(data) {
        // Whatever parses must write back to something that parses the same.
        let again = modseal::seal::SealedInfo::from_json(info.to_json().as_bytes());
        assert_eq!(again.as_ref().ok(), Some(&info));
    }
    if let Ok(body) = modseal::tpm::tpm2b::decode_file("fuzz", data) {
        assert_eq!(
            modseal::tpm::tpm2b::encode_file(body).ok().as_deref(),
            Some(data)
        );
        if let Ok(p) = modseal::tpm::tpm2b::SealedPublic::parse(body) {
            let _ = p.verify(&[0u8; 32]);
        }
    }
    let _ = modseal::tpm::tpm2b::SealedPublic::parse(data);
});
