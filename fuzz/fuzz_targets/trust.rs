//! Certificates, public keys, trust bundles and derived anchors from
//! arbitrary bytes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = modseal::trust::cert::Certificate::from_der(data) {
        let _ = cert.verify_signed_by(&cert);
    }
    let _ = modseal::verify::pubkey::PublicKey::from_spki(data);
    let _ = modseal::trust::parse_cert_file(Path::new("fuzz.pem"), data);
    let _ = modseal::trust::read_bundle(Path::new("fuzz.bundle"), data);
    let _ = modseal::trust::derived::parse_derived(Path::new("fuzz.derived"), data);
});
