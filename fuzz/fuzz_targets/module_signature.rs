//! Trailer + PKCS#7 + the whole verdict path on arbitrary module bytes, and
//! the ELF build-id note reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::image::compression::Compression;
use modseal::image::module::verify_bytes;
use modseal::trust::TrustStore;
use modseal::verify::{build_id, Options};

fuzz_target!(|data: &[u8]| {
    if let Ok(modseal::verify::modsig::Trailer::Signed(s)) = modseal::verify::modsig::split(data) {
        let _ = modseal::verify::pkcs7::parse(s.pkcs7);
    }
    // A bare PKCS#7 blob as well, so the fuzzer need not find the trailer.
    let _ = modseal::verify::pkcs7::parse(data);
    let report = verify_bytes(
        data,
        Compression::None,
        "fuzz.ko",
        &TrustStore::default(),
        &Options::default(),
    );
    assert_ne!(report.verdict, modseal::verify::Verdict::Ok);
    let _ = modseal::image::module::inspect_bytes(data, Compression::None, "fuzz.ko");
    if let Some(note) = build_id::note(data) {
        assert!(!note.is_empty() && note.len() <= build_id::MAX_NOTE);
        let _ = build_id::describe(note);
    }
    // A bare note as well, as sysfs shows a loaded module's.
    let _ = build_id::describe(data);
});
