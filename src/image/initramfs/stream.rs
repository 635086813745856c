//! Streaming decoders for the compressed members of an initramfs, one
//! member each, which stop exactly at the end of their stream so that the
//! next member is found where the kernel finds it, and the budget that caps
//! what one image may decompress to.
//!
//! Nothing here holds more than a decoder's window and a read buffer: the
//! decompressed data is pulled through by the cpio reader as it goes.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::fmt;
use std::io::{self, BufRead, Read};

use super::error::StreamError;
use super::input::Input;
use crate::image::compression::Compression;
use crate::image::decompress::{
    xz_io_error, LzmaReader, ZstdReader, LZ4_LEGACY_BLOCK, LZ4_LEGACY_MAX_COMPRESSED,
    ZSTD_DESCRIPTOR_RESERVED,
};
use liblzma::stream::Error as LzmaError;

/// Per-image cap on decompressed bytes, enforced by [`Budget`].
#[derive(Debug)]
pub(crate) struct OverBudget {
    /// The image's cap, in bytes.
    pub(crate) limit: u64,
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {} bytes unpacked from the image", self.limit)
    }
}

impl std::error::Error for OverBudget {}

/// Counts a decoder's output and fails once it passes the allowance.
pub(crate) struct Budget<R> {
    inner: R,
    produced: u64,
    allowance: u64,
    limit: u64,
}

impl<R: Read> Budget<R> {
    /// `allowance`: bytes this member may still produce; `limit`: the
    /// image's cap, for the message.
    pub(crate) fn new(inner: R, allowance: u64, limit: u64) -> Self {
        Budget {
            inner,
            produced: 0,
            allowance,
            limit,
        }
    }

    /// Bytes the decoder produced so far.
    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }

    /// The decoder.
    pub(crate) fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for at most one byte past the allowance: a bomb costs no more
        // decoding than the cap.
        let room = self
            .allowance
            .saturating_sub(self.produced)
            .saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..want).unwrap_or_default())?;
        self.produced = self.produced.saturating_add(n as u64);
        if self.produced > self.allowance {
            return Err(io::Error::other(OverBudget { limit: self.limit }));
        }
        Ok(n)
    }
}

/// Decoder memory allowed for an xz or lzma stream: a 128 MiB dictionary
/// and the decoder's own tables. dracut uses 1 MiB dictionaries
/// (`--lzma2=dict=1MiB`); `lzma -9` uses 64 MiB.
const LZMA_MEM_LIMIT: u64 = (128 + 16) << 20;

/// One compressed member being read. xz, lzma and zstd go through liblzma
/// and libzstd, which take from the input's buffer exactly the bytes of
/// their stream, so the next member starts where the kernel finds it.
pub(crate) enum Decoder<'a, R: Read> {
    Gzip(flate2::bufread::GzDecoder<&'a mut Input<R>>),
    /// An xz or a legacy lzma stream.
    Lzma(Box<LzmaReader<&'a mut Input<R>>>),
    Zstd(Box<ZstdReader<&'a mut Input<R>>>),
    Lz4(Lz4Legacy<'a, R>),
}

impl<'a, R: Read> Decoder<'a, R> {
    /// Starts decoding the member at the input's position.
    pub(crate) fn new(kind: Compression, input: &'a mut Input<R>) -> Result<Self, StreamError> {
        Ok(match kind {
            Compression::Gzip => Decoder::Gzip(flate2::bufread::GzDecoder::new(input)),
            Compression::Xz => Decoder::Lzma(Box::new(
                LzmaReader::xz(input, LZMA_MEM_LIMIT)
                    .map_err(|e| StreamError::Xz(xz_io_error(e)))?,
            )),
            Compression::Zstd => zstd(input)?,
            Compression::Lzma => lzma(input)?,
            Compression::Lz4Legacy => Decoder::Lz4(Lz4Legacy::new(input)?),
            other => return Err(StreamError::NotUnpacked(other)),
        })
    }

    /// How far into the image reading has got.
    pub(crate) fn file_pos(&self) -> u64 {
        match self {
            Decoder::Gzip(d) => d.get_ref().pos(),
            Decoder::Lzma(d) => d.get_ref().pos(),
            Decoder::Zstd(d) => d.get_ref().pos(),
            Decoder::Lz4(d) => d.pos(),
        }
    }
}

/// A zstd decoder, after the checks on the frame header that come before
/// libzstd's (the same as for module files), with the header read so that
/// a window or a dictionary it refuses is a header error.
fn zstd<R: Read>(input: &mut Input<R>) -> Result<Decoder<'_, R>, StreamError> {
    let descriptor = input
        .peek(5)
        .map_err(StreamError::Read)?
        .get(4)
        .copied()
        .ok_or(StreamError::ZstdNoFrameHeader)?;
    if descriptor & ZSTD_DESCRIPTOR_RESERVED != 0 {
        return Err(StreamError::ZstdReservedBit);
    }
    let header_len = zstd_header_len(descriptor);
    input.peek(header_len).map_err(StreamError::Read)?;
    let mut decoder = ZstdReader::new(input).map_err(StreamError::Zstd)?;
    decoder.read_header(header_len).map_err(StreamError::Zstd)?;
    Ok(Decoder::Zstd(Box::new(decoder)))
}

/// Length of a zstd frame header from its descriptor (RFC 8878 section
/// 3.1.1.1): magic, descriptor, window descriptor unless single segment,
/// dictionary ID, content size.
fn zstd_header_len(descriptor: u8) -> usize {
    let single_segment = descriptor & 0x20 != 0;
    let window = usize::from(!single_segment);
    let dictionary_id = match descriptor & 3 {
        0 => 0,
        1 => 1,
        2 => 2,
        _ => 4,
    };
    let content_size = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    [5, window, dictionary_id, content_size].into_iter().sum()
}

/// A legacy lzma decoder (`lzma_alone`), after reading the 13-byte header:
/// properties, dictionary size, and the output size, all ones for a stream
/// ended by its end marker.
fn lzma<R: Read>(input: &mut Input<R>) -> Result<Decoder<'_, R>, StreamError> {
    let header = input.peek(13).map_err(StreamError::Read)?;
    let Ok(header) = <[u8; 13]>::try_from(header) else {
        return Err(StreamError::LzmaHeaderCutShort { got: header.len() });
    };
    let [props, d0, d1, d2, d3, s @ ..] = header;
    let dictionary = u32::from_le_bytes([d0, d1, d2, d3]);
    let size = u64::from_le_bytes(s);
    // A size no image can reach is taken as unknown, as before (the
    // budget stops the stream long before it).
    let size = (size <= u64::MAX / 2).then_some(size);
    let decoder = LzmaReader::lzma(input, LZMA_MEM_LIMIT, size).map_err(|e| match e {
        LzmaError::Format | LzmaError::Options => StreamError::LzmaProperties(props),
        LzmaError::MemLimit => StreamError::LzmaDictionary(dictionary),
        other => StreamError::Lzma(xz_io_error(other)),
    })?;
    Ok(Decoder::Lzma(Box::new(decoder)))
}

impl<R: Read> Read for Decoder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Lzma(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Lz4(d) => d.read(buf),
        }
    }
}

/// The kernel's `unlz4` on an initramfs (`lib/decompress_unlz4.c`, input
/// given in one buffer): after the magic, blocks of `[u32 LE size][LZ4
/// block]`; a repeated magic is skipped and the stream goes on; a zero size
/// word or fewer than four bytes left ends it (the zero word stays, as
/// padding for the next member).
pub(crate) struct Lz4Legacy<'a, R> {
    input: &'a mut Input<R>,
    block: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    done: bool,
}

impl<'a, R: Read> Lz4Legacy<'a, R> {
    fn new(input: &'a mut Input<R>) -> Result<Self, StreamError> {
        let magic = input.peek(4).map_err(StreamError::Read)?;
        if magic != Compression::Lz4Legacy.magic() {
            return Err(StreamError::NoLz4Magic);
        }
        input.consume(4);
        Ok(Lz4Legacy {
            input,
            block: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            out_len: 0,
            done: false,
        })
    }

    /// The input's position (for progress).
    pub(crate) fn pos(&self) -> u64 {
        self.input.pos()
    }

    fn next_block(&mut self) -> io::Result<bool> {
        loop {
            let word = self.input.peek(4)?;
            let Ok(word) = <[u8; 4]>::try_from(word) else {
                return Ok(false);
            };
            if word == Compression::Lz4Legacy.magic() {
                self.input.consume(4);
                continue;
            }
            let size = u32::from_le_bytes(word);
            if size == 0 {
                return Ok(false);
            }
            self.input.consume(4);
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > LZ4_LEGACY_MAX_COMPRESSED {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("block of {size} bytes is larger than any legacy lz4 block"),
                ));
            }
            self.block.resize(size, 0);
            self.input.read_exact(&mut self.block).map_err(|e| {
                io::Error::new(e.kind(), format!("block of {size} bytes cut short: {e}"))
            })?;
            if self.out.len() < LZ4_LEGACY_BLOCK {
                self.out.resize(LZ4_LEGACY_BLOCK, 0);
            }
            let n = lz4_flex::block::decompress_into(&self.block, &mut self.out).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad lz4 block: {e}"))
            })?;
            self.out_pos = 0;
            self.out_len = n;
            if n > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for Lz4Legacy<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.out_pos >= self.out_len {
            if self.done || !self.next_block()? {
                self.done = true;
                return Ok(0);
            }
        }
        let avail = self.out.get(self.out_pos..self.out_len).unwrap_or_default();
        let n = avail.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.out_pos = self.out_pos.saturating_add(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_stops_one_byte_past() {
        let data = vec![7u8; 1000];
        let mut b = Budget::new(&data[..], 100, 100);
        let mut out = Vec::new();
        let err = b.read_to_end(&mut out).unwrap_err();
        assert!(err
            .get_ref()
            .unwrap()
            .downcast_ref::<OverBudget>()
            .is_some());
        assert_eq!(b.produced(), 101);
    }
}
