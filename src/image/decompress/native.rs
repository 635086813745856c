//! xz and zstd through the reference C libraries (liblzma, libzstd), built
//! from source and linked statically. Module trees are mostly `.ko.xz` or
//! `.ko.zst`, and the pure-Rust decoders took about twice the CPU time of
//! `xz -dc`, which made decompression the whole cost of a verify.
//!
//! Each decoder is wrapped in a [`Read`] that stops at the end of the first
//! stream, so [`read_bounded`](super::read_bounded) keeps the output bound
//! and the bomb check the same for every format, and the input left after
//! the stream is what the caller checks for trailing bytes.

use std::io::{self, Read};

use liblzma::stream::{Action, Error as LzmaError, Status, Stream, TELL_UNSUPPORTED_CHECK};
use zstd::zstd_safe::{self, DCtx, InBuffer, OutBuffer};

use super::{read_bounded, unsupported, DecompressError, ZSTD_MAX_WINDOW};
use crate::image::compression::Compression;

/// Decoder memory allowed for an xz stream: the dictionary may be as large as
/// the output limit, and at least 64 MiB (Kbuild uses 1 MiB for modules and
/// up to the kernel's size for bzImage payloads). It refuses absurd headers
/// before anything is allocated.
fn xz_mem_limit(limit: usize) -> u64 {
    let bytes = limit.max(64 << 20).saturating_add(16 << 20);
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

pub(super) fn unxz(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    let format = Compression::Xz;
    // Without LZMA_CONCATENATED the decoder ends after one stream footer and
    // leaves what follows (padding included) unread. It verifies the block
    // checks (CRC32, CRC64, SHA-256) and runs the BCJ filters (x86 for
    // bzImage payloads); an unknown check type is an error, not skipped.
    let stream = Stream::new_stream_decoder(xz_mem_limit(limit), TELL_UNSUPPORTED_CHECK)
        .map_err(|e| unsupported(format, format!("cannot start the decoder: {e:?}")))?;
    let mut reader = XzReader {
        stream,
        input,
        done: false,
    };
    let out = read_bounded(&mut reader, format, limit)?;
    Ok((out, reader.input))
}

struct XzReader<'a> {
    stream: Stream,
    input: &'a [u8],
    done: bool,
}

impl Read for XzReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.done && !buf.is_empty() {
            let (in_before, out_before) = (self.stream.total_in(), self.stream.total_out());
            let status = self
                .stream
                .process(self.input, buf, Action::Run)
                .map_err(xz_io_error)?;
            let used = progress(self.stream.total_in(), in_before)?;
            let produced = progress(self.stream.total_out(), out_before)?;
            self.input = self.input.get(used..).unwrap_or_default();
            match status {
                Status::StreamEnd => self.done = true,
                Status::MemNeeded if used == 0 && produced == 0 => return Err(truncated()),
                Status::Ok | Status::GetCheck | Status::MemNeeded => {}
            }
            if produced > 0 || self.done {
                return Ok(produced);
            }
            if used == 0 && self.input.is_empty() {
                return Err(truncated());
            }
        }
        Ok(0)
    }
}

/// How far a decoder's running total moved, as a `usize`.
fn progress(after: u64, before: u64) -> io::Result<usize> {
    after
        .checked_sub(before)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| io::Error::other("decoder counters went backwards"))
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the stream ends before its end mark",
    )
}

/// liblzma's errors in the kinds [`from_io`](super::from_io) sorts: what
/// needs more than the bounds allow or is not implemented is unsupported,
/// everything else corrupt.
fn xz_io_error(e: LzmaError) -> io::Error {
    let (kind, what) = match e {
        LzmaError::MemLimit | LzmaError::Mem => (
            io::ErrorKind::OutOfMemory,
            "the stream needs more decoder memory than allowed",
        ),
        LzmaError::UnsupportedCheck => (
            io::ErrorKind::Unsupported,
            "unsupported integrity check type",
        ),
        LzmaError::Options => (
            io::ErrorKind::Unsupported,
            "unsupported filter or options in a block header",
        ),
        LzmaError::Format => (io::ErrorKind::InvalidData, "not an xz stream"),
        LzmaError::Data => (
            io::ErrorKind::InvalidData,
            "corrupt data or a checksum mismatch",
        ),
        LzmaError::NoCheck | LzmaError::Program => {
            (io::ErrorKind::InvalidData, "the decoder stopped")
        }
    };
    io::Error::new(kind, what)
}

pub(super) fn unzstd(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    let format = Compression::Zstd;
    super::zstd_frame_descriptor(input)?;
    let mut dctx =
        DCtx::try_create().ok_or_else(|| unsupported(format, "cannot allocate the decoder"))?;
    // Window log 27 is ZSTD_MAX_WINDOW; a frame asking for more is refused
    // before its window is allocated.
    let window_log = ZSTD_MAX_WINDOW.trailing_zeros();
    dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(window_log))
        .map_err(zstd_error)?;
    // libzstd verifies the content checksum and the declared content size
    // itself, and rejects dictionaries it was not given.
    let mut reader = ZstdReader {
        dctx,
        input,
        done: false,
    };
    let out = read_bounded(&mut reader, format, limit)?;
    Ok((out, reader.input))
}

struct ZstdReader<'a> {
    dctx: DCtx<'static>,
    input: &'a [u8],
    done: bool,
}

impl Read for ZstdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.done && !buf.is_empty() {
            let mut inb = InBuffer::around(self.input);
            let mut outb = OutBuffer::around(&mut *buf);
            let hint = self
                .dctx
                .decompress_stream(&mut outb, &mut inb)
                .map_err(zstd_io_error)?;
            let (used, produced) = (inb.pos(), outb.pos());
            self.input = self.input.get(used..).unwrap_or_default();
            // A hint of 0: the frame is decoded, checked and flushed.
            self.done = hint == 0;
            if produced > 0 || self.done {
                return Ok(produced);
            }
            if used == 0 {
                return Err(truncated());
            }
        }
        Ok(0)
    }
}

/// libzstd's names for the errors that mean "valid, but more than we
/// allow" (`frameParameter_windowTooLarge`, `dictionary_wrong`); the crate
/// gives only the names, and the code enum would need `unsafe`.
const ZSTD_UNSUPPORTED: [&str; 2] = [
    "Frame requires too much memory for decoding",
    "Dictionary mismatch",
];

fn zstd_io_error(code: usize) -> io::Error {
    let name = zstd_safe::get_error_name(code);
    let kind = if ZSTD_UNSUPPORTED.contains(&name) {
        io::ErrorKind::Unsupported
    } else {
        io::ErrorKind::InvalidData
    };
    io::Error::new(kind, name)
}

fn zstd_error(code: usize) -> DecompressError {
    unsupported(Compression::Zstd, zstd_safe::get_error_name(code))
}
