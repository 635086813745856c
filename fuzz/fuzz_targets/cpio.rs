//! The initramfs reader on arbitrary bytes: member boundaries, the newc
//! entry walk, hard links, every decoder, the PE section table. Errors are
//! fine; panics, hangs and going past the limits are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modseal::image::initramfs::{scan_bytes, Limits};

fuzz_target!(|data: &[u8]| {
    // Small limits: the logic is the same, and a bomb costs little.
    let limits = Limits {
        max_unpacked: 32 << 20,
        max_entries: 50_000,
        max_modules: 5_000,
        max_name_bytes: 1 << 20,
        max_links: 5_000,
        max_module_size: 8 << 20,
    };
    let scan = scan_bytes(data, &limits);
    // The budget stops a decoder one byte past its allowance.
    assert!(scan.unpacked <= limits.max_unpacked + 1);
    assert!(scan.entries <= limits.max_entries + 1);
    assert!(scan.modules.len() <= limits.max_modules);
    for (path, len) in &scan.modules {
        assert!(!path.is_empty());
        assert!(path.len() < 4096);
        if let Some(len) = len {
            assert!(*len <= limits.max_module_size);
        }
    }
    let mut last = None;
    for (i, m) in scan.members.iter().enumerate() {
        assert_eq!(m.index, i + 1);
        assert!(m.file_offset < data.len() as u64);
        if m.section.is_none() {
            assert!(
                last.is_none_or(|l| m.file_offset > l),
                "members out of order"
            );
        }
        last = Some(m.file_offset);
    }
    let fatal = scan.fatal.as_ref().map(ToString::to_string);
    if let Some(f) = &fatal {
        assert!(!f.is_empty());
    }
    for p in &scan.problems {
        assert!(!p.to_string().is_empty());
    }
    // The same bytes give the same answer.
    let again = scan_bytes(data, &limits);
    assert_eq!(again.fatal.as_ref().map(ToString::to_string), fatal);
    assert_eq!(again.modules, scan.modules);
    // The kernel skips zero bytes after the last member: a clean image stays
    // clean, with the same modules, with zeros appended.
    if scan.fatal.is_none() && scan.problems.is_empty() && !data.starts_with(b"MZ") {
        let mut padded = data.to_vec();
        padded.extend_from_slice(&[0; 8]);
        let p = scan_bytes(&padded, &limits);
        assert!(p.fatal.is_none(), "{:?}", p.fatal);
        assert_eq!(p.modules, scan.modules);
    }
});
