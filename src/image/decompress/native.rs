//! xz, lzma and zstd through the reference C libraries (liblzma, libzstd),
//! built from source and linked statically. Module trees are mostly `.ko.xz`
//! or `.ko.zst`, and the pure-Rust decoders took about twice the CPU time of
//! `xz -dc`, which made decompression the whole cost of a verify.
//!
//! Each decoder is a [`Read`] over a [`BufRead`] that stops at the end of
//! the first stream and consumes exactly the bytes the library took: over a
//! slice (a module file), [`read_bounded`](super::read_bounded) keeps the
//! output bound and the bomb check the same for every format, and the slice
//! left is what the caller checks for trailing bytes; over an initramfs
//! image, what is left is where the next member starts.

use std::io::{self, BufRead, Read};

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
    let mut reader = LzmaReader::xz(input, xz_mem_limit(limit))
        .map_err(|e| unsupported(format, format!("cannot start the decoder: {e:?}")))?;
    let out = read_bounded(&mut reader, format, limit)?;
    Ok((out, reader.input))
}

/// A liblzma decoder reading from a buffered input: one xz stream, or one
/// legacy `.lzma` stream.
pub(crate) struct LzmaReader<B> {
    stream: Stream,
    input: B,
    /// Output still to come from an `.lzma` stream of declared size.
    left: Option<u64>,
    /// Input taken after the declared size was reached.
    past_size: usize,
    done: bool,
}

impl<B: BufRead> LzmaReader<B> {
    /// One xz stream, within `mem_limit` bytes of decoder memory.
    pub(crate) fn xz(input: B, mem_limit: u64) -> Result<Self, LzmaError> {
        // Without LZMA_CONCATENATED the decoder ends after one stream footer
        // and leaves what follows (padding included) unread. It verifies the
        // block checks (CRC32, CRC64, SHA-256) and runs the BCJ filters (x86
        // for bzImage payloads); an unknown check type is an error, not
        // skipped.
        let stream = Stream::new_stream_decoder(mem_limit, TELL_UNSUPPORTED_CHECK)?;
        Ok(Self::over(stream, input, None))
    }

    /// One `.lzma` stream whose 13-byte header declares `size` bytes of
    /// output (`None`: unknown, ended by the end marker). The header is
    /// read here, so that what it asks for is refused before any data.
    pub(crate) fn lzma(input: B, mem_limit: u64, size: Option<u64>) -> Result<Self, LzmaError> {
        let stream = Stream::new_lzma_decoder(mem_limit)?;
        let mut reader = Self::over(stream, input, size);
        reader.read_header()?;
        reader.done = size == Some(0);
        Ok(reader)
    }

    fn over(stream: Stream, input: B, left: Option<u64>) -> Self {
        LzmaReader {
            stream,
            input,
            left,
            past_size: 0,
            done: false,
        }
    }

    fn read_header(&mut self) -> Result<(), LzmaError> {
        let mut scratch = [0u8; 1];
        while self.stream.total_in() < LZMA_HEADER_LEN {
            let Ok(input) = self.input.fill_buf() else {
                // The read fails again, and is reported, at the first read.
                return Ok(());
            };
            let want = LZMA_HEADER_LEN.saturating_sub(self.stream.total_in());
            let header = input
                .get(..usize::try_from(want).unwrap_or(usize::MAX))
                .unwrap_or(input);
            let before = self.stream.total_in();
            // No output can come before the range coder's first five bytes.
            self.stream.process(header, &mut scratch, Action::Run)?;
            let used = self.stream.total_in().saturating_sub(before);
            self.input.consume(usize::try_from(used).unwrap_or(0));
            if used == 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The input.
    pub(crate) fn get_ref(&self) -> &B {
        &self.input
    }

    /// How much output to ask for and input to give in the next call.
    ///
    /// A stream of declared size must end there, as the kernel's `unlzma`
    /// stops there; liblzma would instead read on for an end marker when the
    /// range coder is not finished. So the last byte of output is asked for
    /// with one byte of input at a time, and after it the decoder may take
    /// one more byte (the range coder's last, which must be zero) before it
    /// reports the end: those two bytes cannot hold an end marker, whose 26
    /// direct bits alone need three.
    fn next_call(&self, out: usize) -> (usize, usize) {
        match self.left {
            None => (out, usize::MAX),
            Some(left) if left > 1 => (
                out.min(usize::try_from(left.saturating_sub(1)).unwrap_or(usize::MAX)),
                usize::MAX,
            ),
            Some(_) => (out.min(1), 1),
        }
    }
}

/// Size of the `.lzma` header: properties, dictionary size, output size.
const LZMA_HEADER_LEN: u64 = 13;

impl<B: BufRead> Read for LzmaReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.done && !buf.is_empty() {
            let (room, feed) = self.next_call(buf.len());
            let out = buf.get_mut(..room).unwrap_or_default();
            let input = self.input.fill_buf()?;
            let starved = input.is_empty();
            let input = input.get(..feed).unwrap_or(input);
            let (in_before, out_before) = (self.stream.total_in(), self.stream.total_out());
            let status = self
                .stream
                .process(input, out, Action::Run)
                .map_err(xz_io_error)?;
            let used = progress(self.stream.total_in(), in_before)?;
            let produced = progress(self.stream.total_out(), out_before)?;
            self.input.consume(used);
            if let Some(left) = self.left.as_mut() {
                if *left == 0 {
                    self.past_size = self.past_size.saturating_add(used);
                    if self.past_size > 0 && status != Status::StreamEnd {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "the stream goes on past its declared size",
                        ));
                    }
                }
                *left = left.saturating_sub(produced as u64);
            }
            match status {
                Status::StreamEnd => self.done = true,
                Status::MemNeeded if used == 0 && produced == 0 => return Err(truncated()),
                Status::Ok | Status::GetCheck | Status::MemNeeded => {}
            }
            if produced > 0 || self.done {
                return Ok(produced);
            }
            if used == 0 && starved {
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
pub(crate) fn xz_io_error(e: LzmaError) -> io::Error {
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
    let mut reader = ZstdReader::new(input).map_err(|e| unsupported(format, e.to_string()))?;
    let out = read_bounded(&mut reader, format, limit)?;
    Ok((out, reader.input))
}

/// A libzstd decoder reading one frame from a buffered input. libzstd
/// verifies the content checksum and the declared content size itself, and
/// rejects dictionaries it was not given.
pub(crate) struct ZstdReader<B> {
    dctx: DCtx<'static>,
    input: B,
    done: bool,
}

impl<B: BufRead> ZstdReader<B> {
    /// A decoder that refuses windows over [`ZSTD_MAX_WINDOW`].
    pub(crate) fn new(input: B) -> io::Result<Self> {
        let mut dctx = DCtx::try_create().ok_or_else(|| {
            io::Error::new(io::ErrorKind::OutOfMemory, "cannot allocate the decoder")
        })?;
        // Window log 27 is ZSTD_MAX_WINDOW; a frame asking for more is
        // refused before its window is allocated.
        let window_log = ZSTD_MAX_WINDOW.trailing_zeros();
        dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(window_log))
            .map_err(zstd_io_error)?;
        Ok(ZstdReader {
            dctx,
            input,
            done: false,
        })
    }

    /// Feeds the frame header alone (`len` bytes, or what there is), so that
    /// what it asks for (window, dictionary) is refused before any data.
    pub(crate) fn read_header(&mut self, len: usize) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            let input = self.input.fill_buf()?;
            let mut inb = InBuffer::around(input.get(..left).unwrap_or(input));
            let mut none: [u8; 0] = [];
            let mut outb = OutBuffer::around(&mut none[..]);
            self.dctx
                .decompress_stream(&mut outb, &mut inb)
                .map_err(zstd_io_error)?;
            let used = inb.pos();
            self.input.consume(used);
            if used == 0 {
                break;
            }
            left = left.saturating_sub(used);
        }
        Ok(())
    }

    /// The input.
    pub(crate) fn get_ref(&self) -> &B {
        &self.input
    }
}

impl<B: BufRead> Read for ZstdReader<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.done && !buf.is_empty() {
            let input = self.input.fill_buf()?;
            let starved = input.is_empty();
            let mut inb = InBuffer::around(input);
            let mut outb = OutBuffer::around(&mut *buf);
            let hint = self
                .dctx
                .decompress_stream(&mut outb, &mut inb)
                .map_err(zstd_io_error)?;
            let (used, produced) = (inb.pos(), outb.pos());
            self.input.consume(used);
            // A hint of 0: the frame is decoded, checked and flushed.
            self.done = hint == 0;
            if produced > 0 || self.done {
                return Ok(produced);
            }
            if used == 0 {
                return Err(if starved {
                    truncated()
                } else {
                    io::Error::other("the decoder makes no progress")
                });
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
