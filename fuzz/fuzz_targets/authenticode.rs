//! Authenticode verification on arbitrary bytes (a PE image whose
//! certificate table holds anything): errors are fine; panics and hangs are
//! not. The CA is the message's own first certificate when it has one, so
//! inputs can reach the chain check and the signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::image::authenticode;
use modseal::trust::cert::Certificate;
use modseal::verify::pkcs7;

fuzz_target!(|data: &[u8]| {
    let cas: Vec<Certificate> = modseal::image::pe::parse(data)
        .ok()
        .and_then(|pe| pe.certificate_table_bytes())
        .and_then(|t| t.get(8..))
        .and_then(|blob| pkcs7::parse_embedded(blob, authenticode::OID_SPC_INDIRECT_DATA).ok())
        .and_then(|msg| {
            msg.certificates
                .first()
                .and_then(|c| Certificate::from_der(c).ok())
        })
        .into_iter()
        .collect();
    match authenticode::verify_image(data, &cas) {
        Ok(signed) => assert_eq!(
            signed.sha256,
            modseal::image::pe::authenticode_sha256(data).expect("a verified image is a PE image")
        ),
        // Every refusal has a message.
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
