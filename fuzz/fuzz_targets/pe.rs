//! PE/COFF headers and the Authenticode digest on arbitrary bytes: errors
//! are fine; panics, hangs and ranges outside the file are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::image::pe;

fuzz_target!(|data: &[u8]| {
    let Ok(img) = pe::parse(data) else {
        return;
    };
    assert!(img.sections.len() <= usize::from(pe::MAX_SECTIONS));
    let len = data.len() as u64;
    let mut hashed = 0u64;
    for r in img.authenticode_ranges() {
        assert!(r.start <= r.end && r.end <= len, "{r:?} of {len}");
        hashed += r.end - r.start;
    }
    // Sections do not overlap: no byte is hashed more than twice (once as
    // a header, once as section data).
    assert!(hashed <= 2 * len);
    if let Some(t) = &img.certificate_table {
        assert_eq!(t.end, len);
        assert_eq!(
            img.certificate_table_bytes().map(<[u8]>::len),
            Some((t.end - t.start) as usize)
        );
    }
    assert_eq!(pe::authenticode_sha256(data), Ok(img.authenticode_sha256()));
});
