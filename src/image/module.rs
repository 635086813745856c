//! A module as stored: read bounded from a file, decompressed when its
//! name or bytes say so, then given to the verdict engine.

use std::path::Path;

use crate::image::compression::Compression;
use crate::image::decompress;
use crate::trust::TrustStore;
use crate::util::read::{read_capped_into, ReadError};
use crate::verify::algorithm::sha256;
use crate::verify::inspect::{inspect_module, Inspection};
use crate::verify::{verify_module, Error, Options, Report, MAX_MODULE_SIZE};

/// Reads and checks one module file.
pub fn verify_file(path: &Path, display: &str, trust: &TrustStore, opts: &Options) -> Report {
    verify_file_with(path, display, trust, opts, &mut Vec::new())
}

/// Like [`verify_file`], reading into `buf`: a worker that reuses one buffer
/// for thousands of modules avoids an allocation (and, with musl's malloc, an
/// mmap/munmap pair and fresh page faults) per file.
pub fn verify_file_with(
    path: &Path,
    display: &str,
    trust: &TrustStore,
    opts: &Options,
    buf: &mut Vec<u8>,
) -> Report {
    match read_module_file(path, buf) {
        Ok(()) => verify_bytes(
            buf,
            Compression::for_module_path(path),
            display,
            trust,
            opts,
        ),
        Err(e) => Report::failed(display, &Error::Read(e)),
    }
}

/// Reads a regular file of at most [`MAX_MODULE_SIZE`] bytes into `buf`.
/// Anything else (a FIFO, a device such as /dev/zero behind a symlink, a
/// directory) is refused, so a planted file cannot hang or exhaust the run.
pub fn read_module_file(path: &Path, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    read_capped_into(path, MAX_MODULE_SIZE, buf)
}

/// Checks a module given as bytes; `format` says whether they are compressed.
pub fn verify_bytes(
    file: &[u8],
    format: Compression,
    path: &str,
    trust: &TrustStore,
    opts: &Options,
) -> Report {
    if format == Compression::None {
        return verify_module(file, None, path, trust, opts);
    }
    let file_sha = sha256(file);
    match decompress::decompress(format, file, MAX_MODULE_SIZE) {
        Ok(inner) => {
            let report = verify_module(&inner, Some(file_sha), path, trust, opts);
            decompress::recycle(inner);
            report
        }
        Err(e) => {
            let mut r = Report::failed(path, &Error::Decompress(Box::new(e)));
            r.sha256 = Some(crate::util::hex::lower(&file_sha));
            r
        }
    }
}

/// What a stored module's signature says (`modseal inspect`): decompressed
/// first when `format` says it is compressed.
pub fn inspect_bytes(file: &[u8], format: Compression, path: &str) -> Inspection {
    let out = Inspection::new(path, &format.to_string(), file.len());
    if format == Compression::None {
        return inspect_module(file, out);
    }
    match decompress::decompress(format, file, MAX_MODULE_SIZE) {
        Ok(m) => {
            let inspection = inspect_module(&m, out);
            decompress::recycle(m);
            inspection
        }
        Err(e) => Inspection {
            error: Some(e.to_string()),
            ..out
        },
    }
}
