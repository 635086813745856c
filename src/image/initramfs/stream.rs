//! The bytes of an initramfs, read forwards once: the image input (a
//! counted, buffered reader that can take back bytes a decoder read ahead),
//! the kernel's compression magic table, and streaming decoders for one
//! compressed member each, which stop exactly at the end of their stream so
//! that the next member is found where the kernel finds it.
//!
//! Nothing here holds more than a decoder's window and a read buffer: the
//! decompressed data is pulled through by the cpio reader as it goes.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::fmt;
use std::io::{self, BufRead, Read};

/// Size of the image read buffer.
const INPUT_BUFFER: usize = 256 * 1024;

/// The image (or one section of a UKI) as a byte stream: at most `remaining`
/// bytes of `inner`, with the offset of the next byte in `pos` (counted from
/// the start of the initramfs data, which is what the kernel aligns to).
pub(crate) struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    remaining: u64,
    pos: u64,
}

impl<R: Read> Input<R> {
    pub(crate) fn new(inner: R, len: u64) -> Self {
        Input {
            inner,
            buf: vec![0; INPUT_BUFFER],
            start: 0,
            end: 0,
            remaining: len,
            pos: 0,
        }
    }

    /// Offset of the next byte, from the start of the initramfs data.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Up to `n` (at most the buffer size) bytes without consuming them;
    /// fewer only at the end of the data.
    pub(crate) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let n = n.min(self.buf.len());
        if self.end.saturating_sub(self.start) < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end = self.end.saturating_sub(self.start);
            self.start = 0;
            while self.end < n && self.remaining > 0 {
                let room = self.buf.get_mut(self.end..).unwrap_or_default();
                let want = room
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                let got = match self.inner.read(room.get_mut(..want).unwrap_or_default()) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the file is shorter than its size said",
                        ))
                    }
                    Ok(got) => got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                self.end = self.end.saturating_add(got);
                self.remaining = self.remaining.saturating_sub(got as u64);
            }
        }
        let avail = self.buf.get(self.start..self.end).unwrap_or_default();
        Ok(avail.get(..n.min(avail.len())).unwrap_or_default())
    }

    /// Skips zero bytes; returns how many.
    pub(crate) fn skip_zeros(&mut self) -> io::Result<u64> {
        let mut skipped = 0u64;
        loop {
            let avail = self.fill_buf()?;
            if avail.is_empty() {
                return Ok(skipped);
            }
            let zeros = avail.iter().take_while(|&&b| b == 0).count();
            let all = zeros == avail.len();
            self.consume(zeros);
            skipped = skipped.saturating_add(zeros as u64);
            if !all {
                return Ok(skipped);
            }
        }
    }

    /// Puts back bytes a decoder read past the end of its stream.
    pub(crate) fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let rest = self.buf.get(self.start..self.end).unwrap_or_default();
        let mut joined = Vec::with_capacity(bytes.len().saturating_add(rest.len()));
        joined.extend_from_slice(bytes);
        joined.extend_from_slice(rest);
        self.end = joined.len();
        self.start = 0;
        if joined.len() < INPUT_BUFFER {
            joined.resize(INPUT_BUFFER, 0);
        }
        self.buf = joined;
        self.pos = self.pos.saturating_sub(bytes.len() as u64);
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.remaining > 0 {
                self.peek(1)?;
            }
        }
        Ok(self.buf.get(self.start..self.end).unwrap_or_default())
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end.saturating_sub(self.start));
        self.start = self.start.saturating_add(n);
        self.pos = self.pos.saturating_add(n as u64);
    }
}

/// A compression the kernel's initramfs unpacker knows (`lib/decompress.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    Lzma,
    /// The legacy lz4 format (`lz4 -l`), the only lz4 the kernel unpacks.
    Lz4Legacy,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lzma => "lzma",
            Compression::Lz4Legacy => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the bytes at the start of a member are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniff {
    Known(Compression),
    /// A format the kernel can be built to unpack but modseal does not.
    Unsupported(&'static str),
    Unknown,
}

/// The kernel's `compressed_formats` table matches two magic bytes; so does
/// this (the decoders then check the rest of their header).
pub(crate) fn sniff(bytes: &[u8]) -> Sniff {
    match bytes {
        [0x1f, 0x8b, ..] => Sniff::Known(Compression::Gzip),
        [0xfd, 0x37, ..] => Sniff::Known(Compression::Xz),
        [0x28, 0xb5, ..] => Sniff::Known(Compression::Zstd),
        [0x5d, 0x00, ..] => Sniff::Known(Compression::Lzma),
        [0x02, 0x21, ..] => Sniff::Known(Compression::Lz4Legacy),
        [0x1f, 0x9e, ..] => Sniff::Unsupported("gzip with the old 1f 9e magic"),
        [0x42, 0x5a, ..] => Sniff::Unsupported("bzip2"),
        [0x89, 0x4c, ..] => Sniff::Unsupported("lzo"),
        _ => Sniff::Unknown,
    }
}

/// A hint for bytes no initramfs unpacker takes.
pub(crate) fn unknown_hint(bytes: &[u8]) -> &'static str {
    match bytes {
        [0x04, 0x22, 0x4d, 0x18, ..] => {
            " (an lz4 frame: the kernel unpacks only legacy lz4, `lz4 -l`)"
        }
        [b'0', b'7', b'0', b'7', ..] => " (a cpio header at an offset that is not a multiple of 4)",
        [b'M', b'Z', ..] => " (a PE image inside the initramfs)",
        _ => "",
    }
}

/// Per-image cap on decompressed bytes, enforced by [`Budget`].
#[derive(Debug)]
pub(crate) struct OverBudget {
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

    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }

    pub(crate) fn get_ref(&self) -> &R {
        &self.inner
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
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

/// Largest zstd window accepted (as for module files and kernel payloads).
const ZSTD_MAX_WINDOW: u64 = 128 << 20;

/// Decoder memory allowed for an xz block or an lzma stream, in KiB: a
/// 128 MiB dictionary and the decoder's own tables. dracut uses 1 MiB
/// dictionaries (`--lzma2=dict=1MiB`); `lzma -9` uses 64 MiB.
const LZMA_MEM_LIMIT_KIB: u32 = (128 + 16) * 1024;

/// Uncompressed size of one legacy lz4 block (lz4's `LEGACY_BLOCKSIZE`, the
/// kernel's `LZ4_DEFAULT_UNCOMPRESSED_CHUNK_SIZE`).
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// `LZ4_compressBound(8 MiB)`: no legacy block is larger.
const LZ4_LEGACY_MAX_COMPRESSED: usize = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;

const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;

/// One compressed member being read.
pub(crate) enum Decoder<'a, R: Read> {
    Gzip(flate2::bufread::GzDecoder<&'a mut Input<R>>),
    Xz(Box<lzma_rust2::XzReader<&'a mut Input<R>>>),
    Zstd {
        decoder: Box<
            ruzstd::decoding::StreamingDecoder<&'a mut Input<R>, ruzstd::decoding::FrameDecoder>,
        >,
        has_content_size: bool,
    },
    Lzma(Box<lzma_rust2::LzmaReader<&'a mut Input<R>>>),
    Lz4(Lz4Legacy<'a, R>),
}

impl<'a, R: Read> Decoder<'a, R> {
    /// Starts decoding the member at the input's position.
    pub(crate) fn new(kind: Compression, input: &'a mut Input<R>) -> Result<Self, String> {
        Ok(match kind {
            Compression::Gzip => Decoder::Gzip(flate2::bufread::GzDecoder::new(input)),
            Compression::Xz => Decoder::Xz(Box::new(lzma_rust2::XzReader::new_mem_limit(
                input,
                false,
                LZMA_MEM_LIMIT_KIB,
            ))),
            Compression::Zstd => {
                let descriptor = input
                    .peek(5)
                    .map_err(|e| e.to_string())?
                    .get(4)
                    .copied()
                    .ok_or("truncated: no frame header")?;
                if descriptor & 0x08 != 0 {
                    return Err("reserved bit set in the frame header".into());
                }
                let has_content_size = descriptor >> 6 != 0 || descriptor & 0x20 != 0;
                let decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
                    input,
                    ZSTD_MAX_WINDOW,
                )
                .map_err(|e| e.to_string())?;
                Decoder::Zstd {
                    decoder: Box::new(decoder),
                    has_content_size,
                }
            }
            Compression::Lzma => Decoder::Lzma(Box::new(
                lzma_rust2::LzmaReader::new_mem_limit(input, LZMA_MEM_LIMIT_KIB, None)
                    .map_err(|e| e.to_string())?,
            )),
            Compression::Lz4Legacy => Decoder::Lz4(Lz4Legacy::new(input)?),
        })
    }

    /// After the decoder reported the end of its data: the checks that
    /// need the whole stream, and bytes read ahead go back to the input.
    pub(crate) fn finish(self, produced: u64) -> Result<(), String> {
        match self {
            Decoder::Gzip(_) | Decoder::Xz(_) | Decoder::Lz4(_) => Ok(()),
            Decoder::Zstd {
                decoder,
                has_content_size,
            } => {
                let frame = decoder.into_frame_decoder();
                if let Some(expected) = frame.get_checksum_from_data() {
                    if frame.get_calculated_checksum() != Some(expected) {
                        return Err("content checksum mismatch".into());
                    }
                }
                if has_content_size && frame.content_size() != produced {
                    return Err(format!(
                        "frame declares {} bytes of content, decoded {produced}",
                        frame.content_size()
                    ));
                }
                Ok(())
            }
            Decoder::Lzma(reader) => {
                let (input, unused) = reader.into_parts();
                input.unread(&unused);
                Ok(())
            }
        }
    }
}

impl<R: Read> Read for Decoder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Xz(d) => d.read(buf),
            Decoder::Zstd { decoder, .. } => decoder.read(buf),
            Decoder::Lzma(d) => d.read(buf),
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
    fn new(input: &'a mut Input<R>) -> Result<Self, String> {
        let magic = input.peek(4).map_err(|e| e.to_string())?;
        if magic != LZ4_LEGACY_MAGIC.to_le_bytes() {
            return Err("no legacy lz4 magic".into());
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
            let size = u32::from_le_bytes(word);
            if size == LZ4_LEGACY_MAGIC {
                self.input.consume(4);
                continue;
            }
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
    fn input_peek_unread_and_positions() {
        let data: Vec<u8> = (0..=255u8).cycle().take(700_000).collect();
        let mut input = Input::new(&data[..], data.len() as u64);
        assert_eq!(input.peek(3).unwrap(), &[0, 1, 2]);
        let mut first = vec![0; 300_000];
        input.read_exact(&mut first).unwrap();
        assert_eq!(input.pos(), 300_000);
        // A peek across the buffer's end compacts and refills.
        let p = input.peek(6).unwrap().to_vec();
        assert_eq!(p, data[300_000..300_006]);
        input.unread(&first[299_990..]);
        assert_eq!(input.pos(), 299_990);
        let mut rest = Vec::new();
        input.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data[299_990..]);
        assert_eq!(input.pos(), data.len() as u64);
    }

    #[test]
    fn input_stops_at_its_length() {
        let data = [1u8, 2, 3, 4, 5, 6];
        let mut input = Input::new(&data[..], 4);
        let mut out = Vec::new();
        input.read_to_end(&mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
    }

    #[test]
    fn short_file_is_an_error() {
        let data = [1u8, 2];
        let mut input = Input::new(&data[..], 4);
        let mut out = Vec::new();
        let err = input.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn zeros_are_skipped() {
        let data = [0u8, 0, 0, 7, 0];
        let mut input = Input::new(&data[..], 5);
        assert_eq!(input.skip_zeros().unwrap(), 3);
        assert_eq!(input.peek(1).unwrap(), &[7]);
        input.consume(1);
        assert_eq!(input.skip_zeros().unwrap(), 1);
        assert!(input.fill_buf().unwrap().is_empty());
    }

    #[test]
    fn the_kernel_magic_table() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Sniff::Known(Compression::Gzip));
        assert_eq!(sniff(b"\xfd7zXZ\0"), Sniff::Known(Compression::Xz));
        assert_eq!(
            sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Sniff::Known(Compression::Zstd)
        );
        assert_eq!(sniff(&[0x5d, 0, 0]), Sniff::Known(Compression::Lzma));
        assert_eq!(
            sniff(&[2, 0x21, 0x4c, 0x18]),
            Sniff::Known(Compression::Lz4Legacy)
        );
        assert_eq!(sniff(b"BZh9"), Sniff::Unsupported("bzip2"));
        assert_eq!(sniff(b"\x89LZO"), Sniff::Unsupported("lzo"));
        assert_eq!(sniff(&[4, 0x22, 0x4d, 0x18]), Sniff::Unknown);
        assert_eq!(sniff(b"x"), Sniff::Unknown);
    }

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
