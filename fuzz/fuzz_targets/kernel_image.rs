//! Certificate extraction on arbitrary bytes (bzImage headers, payloads,
//! vmlinux scans): errors are fine, panics and hangs are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::image::kernel_image::{extract_certificates, extract_certificates_with_limit};

fuzz_target!(|data: &[u8]| {
    // The real 1 GiB bound lets one input decode for seconds; the logic is
    // the same with a small bound.
    let result = extract_certificates_with_limit(data, 16 << 20);
    if let Ok(certs) = &result {
        assert!(!certs.is_empty());
        for (i, der) in certs.iter().enumerate() {
            // Deduplicated.
            assert!(!certs[..i].contains(der));
        }
    }
    // Inputs without a payload never reach the decoder: the public entry
    // point must agree with the bounded one on them.
    if data.len() < 0x250 {
        assert_eq!(extract_certificates(data), result);
    }
});
