//! Every decoder on arbitrary bytes: errors are fine, panics, hangs and
//! allocations past the limit are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::image::compression::Compression;
use modseal::image::decompress::{decompress, decompress_prefix};

/// Small enough that a bomb costs little, large enough for real modules.
const LIMIT: usize = 16 << 20;

/// Every format, the ones modseal only recognises included (their decoding
/// must fail cleanly).
const FORMATS: [Compression; 10] = [
    Compression::Gzip,
    Compression::Xz,
    Compression::Zstd,
    Compression::Lzma,
    Compression::Lz4Legacy,
    Compression::Lz4Frame,
    Compression::Bzip2,
    Compression::Lzo,
    Compression::OldGzip,
    Compression::None,
];

fuzz_target!(|data: &[u8]| {
    let detected = Compression::from_magic(data);
    // The magic checks happen before decoding, so only the detected format
    // (and None) gets past them; feed that one its whole pipeline, and the
    // others too, to cover the rejection paths.
    for format in FORMATS {
        let whole = decompress(format, data, LIMIT);
        let prefix = decompress_prefix(format, data, LIMIT);
        if let Ok(out) = &whole {
            assert!(out.len() <= LIMIT);
            // A whole stream is also its own prefix.
            assert_eq!(prefix.as_ref().ok(), Some(out), "{format}: prefix differs");
        }
        if let Ok(out) = &prefix {
            assert!(out.len() <= LIMIT);
        }
        if format != Compression::None && detected != Some(format) {
            assert!(
                whole.is_err() && prefix.is_err(),
                "{format} decoded without its magic"
            );
        }
    }
});
