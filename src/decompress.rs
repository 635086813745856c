//! Bounded, pure-Rust decompression of module files and kernel payloads.
//!
//! Everything here runs on untrusted bytes: a decoder error, a truncated
//! stream or a decompression bomb is a [`DecompressError`], never a panic, and
//! the output never grows past the caller's `limit` (the decoders are driven
//! through [`read_bounded`], which asks for at most `limit + 1` bytes and
//! reserves memory for at most `limit`).
//!
//! Strictness of [`decompress`] (whole files, e.g. `.ko.xz`): exactly one
//! stream, fully consumed, integrity checks verified. The only bytes allowed
//! after the stream are xz stream padding (zero bytes, a multiple of four),
//! because the xz format defines it and it changes nothing in the content.
//! Concatenated gzip members, zstd frames, xz streams or lz4 frames are
//! rejected as trailing bytes: Kbuild never makes them, and loaders disagree
//! on them (the in-kernel module decompressor stops after the first stream,
//! kmod's userspace decoders go on), so accepting them would let the verified
//! content differ from the loaded one. Rejecting can only fail closed.
//!
//! [`decompress_prefix`] decodes the first stream and ignores what follows;
//! bzImage payloads need it (Kbuild's `size_append` puts four bytes after the
//! stream).
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

/// A compression format, as named in error messages and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// gzip (RFC 1952), `.ko.gz`.
    Gzip,
    /// xz (the .xz container with LZMA2, optionally behind a BCJ filter), `.ko.xz`.
    Xz,
    /// Zstandard (RFC 8878), `.ko.zst`.
    Zstd,
    /// The legacy lz4 format (`lz4 -l`) that Kbuild uses for kernel payloads.
    Lz4Legacy,
    /// The lz4 frame format (`lz4` without `-l`).
    Lz4Frame,
    /// Not compressed.
    None,
}

impl Format {
    /// The lowercase name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Lz4Legacy => "lz4-legacy",
            Format::Lz4Frame => "lz4",
            Format::None => "none",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a stream could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The output would be larger than the caller's limit. Decoding stopped as
    /// soon as the limit was passed, so the bomb cost at most `limit` bytes.
    #[error("{format}: decompressed data is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The format being decoded.
        format: Format,
        /// The caller's limit, in bytes.
        limit: usize,
    },
    /// The input is not a valid stream of this format: wrong magic, corrupt or
    /// truncated data, a failed integrity check (CRC, xxHash, size) or bytes
    /// after the stream. `reason` is the decoder's own message.
    #[error("{format}: corrupt stream: {reason}")]
    Corrupt {
        /// The format being decoded.
        format: Format,
        /// What was wrong, in the decoder's words.
        reason: String,
    },
    /// The stream may be valid but needs something this decoder refuses: an
    /// external dictionary, an unknown check type, or more decoder memory
    /// (dictionary, window, output buffer) than the bounds allow.
    #[error("{format}: unsupported stream: {reason}")]
    Unsupported {
        /// The format being decoded.
        format: Format,
        /// What was asked for.
        reason: String,
    },
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const LZ4_LEGACY_MAGIC: &[u8] = &[0x02, 0x21, 0x4c, 0x18];
const LZ4_FRAME_MAGIC: &[u8] = &[0x04, 0x22, 0x4d, 0x18];

/// Recognises a compressed stream by its magic bytes.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    [
        (XZ_MAGIC, Format::Xz),
        (ZSTD_MAGIC, Format::Zstd),
        (LZ4_LEGACY_MAGIC, Format::Lz4Legacy),
        (LZ4_FRAME_MAGIC, Format::Lz4Frame),
        (GZIP_MAGIC, Format::Gzip),
    ]
    .into_iter()
    .find(|(magic, _)| bytes.starts_with(magic))
    .map(|(_, format)| format)
}

/// The format of a module file, from its name as Kbuild makes it
/// (`CONFIG_MODULE_COMPRESS_*`): `.ko.gz`, `.ko.xz`, `.ko.zst`; anything else
/// is [`Format::None`].
pub fn format_for_module_path(path: &Path) -> Format {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Format::None;
    };
    if name.ends_with(".ko.gz") {
        Format::Gzip
    } else if name.ends_with(".ko.xz") {
        Format::Xz
    } else if name.ends_with(".ko.zst") {
        Format::Zstd
    } else {
        Format::None
    }
}

/// Decompresses a whole file: one stream, nothing after it but what the
/// format itself allows (xz stream padding). Output larger than `limit` bytes
/// is [`DecompressError::TooLarge`]. [`Format::None`] copies the input.
pub fn decompress(format: Format, input: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let (out, rest) = decode_first_stream(format, input, limit)?;
    check_trailing(format, rest)?;
    Ok(out)
}

/// Decompresses the first stream (gzip member, xz stream, zstd frame, lz4
/// frame or legacy lz4 stream) and ignores whatever follows it.
pub fn decompress_prefix(
    format: Format,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    decode_first_stream(format, input, limit).map(|(out, _rest)| out)
}

/// Decodes one stream; returns the output and the input left after it.
fn decode_first_stream(
    format: Format,
    input: &[u8],
    limit: usize,
) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    if format != Format::None && detect(input) != Some(format) {
        return Err(corrupt(format, format!("no {format} magic at the start")));
    }
    match format {
        Format::Gzip => gunzip(input, limit),
        Format::Xz => unxz(input, limit),
        Format::Zstd => unzstd(input, limit),
        Format::Lz4Legacy => unlz4_legacy(input, limit),
        Format::Lz4Frame => unlz4_frame(input, limit),
        Format::None => {
            let mut out = Vec::new();
            push_bounded(&mut out, input, format, limit)?;
            Ok((out, &[]))
        }
    }
}

/// Rejects bytes after the stream, except xz stream padding.
fn check_trailing(format: Format, rest: &[u8]) -> Result<(), DecompressError> {
    let is_xz_padding =
        format == Format::Xz && rest.len() % 4 == 0 && rest.iter().all(|&b| b == 0);
    if rest.is_empty() || is_xz_padding {
        Ok(())
    } else {
        Err(corrupt(
            format,
            format!("{} trailing bytes after the stream", rest.len()),
        ))
    }
}

fn corrupt(format: Format, reason: impl Into<String>) -> DecompressError {
    DecompressError::Corrupt {
        format,
        reason: reason.into(),
    }
}

fn unsupported(format: Format, reason: impl Into<String>) -> DecompressError {
    DecompressError::Unsupported {
        format,
        reason: reason.into(),
    }
}

/// Sorts a decoder's I/O error into our error kinds. The decoders report
/// "needs too much memory" and "feature not implemented" with these kinds.
fn from_io(format: Format, e: io::Error) -> DecompressError {
    match e.kind() {
        io::ErrorKind::Unsupported | io::ErrorKind::OutOfMemory => unsupported(format, e.to_string()),
        io::ErrorKind::UnexpectedEof => corrupt(format, format!("truncated input: {e}")),
        _ => corrupt(format, e.to_string()),
    }
}

/// Size of one read from a decoder; also the smallest output allocation.
const CHUNK: usize = 64 * 1024;

/// Reads `reader` until it reports the end, keeping at most `limit` bytes.
///
/// Each read asks for at most `limit + 1 - len` bytes (the `Read::take`
/// idea), so a bomb is caught one byte past the limit, and the decoder is
/// never asked to produce more than that.
fn read_bounded(
    mut reader: impl Read,
    format: Format,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let room = limit.saturating_sub(out.len()).saturating_add(1);
        let want = room.min(CHUNK);
        let buf = chunk.get_mut(..want).unwrap_or_default();
        let n = match reader.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(from_io(format, e)),
        };
        if n == 0 {
            return Ok(out);
        }
        let Some(data) = buf.get(..n) else {
            return Err(corrupt(format, "decoder reported more bytes than asked for"));
        };
        push_bounded(&mut out, data, format, limit)?;
    }
}

/// Appends `data` to `out`, or fails with `TooLarge` if that passes `limit`.
fn push_bounded(
    out: &mut Vec<u8>,
    data: &[u8],
    format: Format,
    limit: usize,
) -> Result<(), DecompressError> {
    let new_len = out
        .len()
        .checked_add(data.len())
        .filter(|&len| len <= limit)
        .ok_or(DecompressError::TooLarge { format, limit })?;
    reserve_bounded(out, new_len, format, limit)?;
    out.extend_from_slice(data);
    Ok(())
}

/// Makes room for `needed` bytes (`needed <= limit`). Grows geometrically so
/// appends stay cheap, but never reserves past `limit`, and reports a failed
/// allocation instead of aborting.
fn reserve_bounded(
    out: &mut Vec<u8>,
    needed: usize,
    format: Format,
    limit: usize,
) -> Result<(), DecompressError> {
    if needed <= out.capacity() {
        return Ok(());
    }
    let target = out
        .capacity()
        .saturating_mul(2)
        .max(CHUNK)
        .min(limit)
        .max(needed);
    let additional = target.saturating_sub(out.len());
    out.try_reserve_exact(additional)
        .map_err(|_| unsupported(format, format!("cannot allocate {target} bytes of output")))
}

// ---------------------------------------------------------------- gzip

fn gunzip(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    // The `bufread` decoder consumes exactly the member (header, deflate data,
    // CRC32 and ISIZE trailer, both checked by flate2), so what is left in the
    // slice afterwards is what followed the member.
    let mut decoder = flate2::bufread::GzDecoder::new(input);
    let out = read_bounded(&mut decoder, Format::Gzip, limit)?;
    Ok((out, decoder.into_inner()))
}

// ---------------------------------------------------------------- xz

/// Decoder memory allowed for an xz block, in KiB: the dictionary may be as
/// large as the output limit, and at least 64 MiB (Kbuild uses 1 MiB for
/// modules and up to the kernel's size for bzImage payloads). lzma-rust2
/// grows the window with the output anyway; this refuses absurd headers early.
fn xz_mem_limit_kib(limit: usize) -> u32 {
    let bytes = limit.max(64 << 20).saturating_add(16 << 20);
    u32::try_from(bytes / 1024).unwrap_or(u32::MAX).min(u32::MAX - 1)
}

fn unxz(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    // One stream only (`allow_multiple_streams = false`): the reader stops
    // after the stream footer and leaves the rest of the slice untouched.
    // It verifies the block checks (CRC32, CRC64, SHA-256) and runs the BCJ
    // filters (x86 for bzImage payloads) itself.
    let mut rest = input;
    let out = {
        let reader =
            lzma_rust2::XzReader::new_mem_limit(&mut rest, false, xz_mem_limit_kib(limit));
        read_bounded(reader, Format::Xz, limit)?
    };
    Ok((out, rest))
}

// ---------------------------------------------------------------- zstd

/// Largest zstd window accepted: 128 MiB covers `zstd -22 --ultra`
/// (window log 27), which Kbuild uses for kernel payloads. The window fills
/// only with output, which the limit bounds anyway.
const ZSTD_MAX_WINDOW: u64 = 128 << 20;

fn unzstd(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    let format = Format::Zstd;
    let descriptor = zstd_frame_descriptor(input)?;
    let mut rest = input;
    let (out, frame) = {
        let mut decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(
            &mut rest,
            ZSTD_MAX_WINDOW,
        )
        .map_err(|e| zstd_init_error(&e))?;
        let out = read_bounded(&mut decoder, format, limit)?;
        (out, decoder.into_frame_decoder())
    };
    // ruzstd reads the content checksum but leaves comparing it to us.
    if let Some(expected) = frame.get_checksum_from_data() {
        if frame.get_calculated_checksum() != Some(expected) {
            return Err(corrupt(format, "content checksum mismatch"));
        }
    }
    // Nor does it compare the declared content size with the output.
    let has_content_size = descriptor >> 6 != 0 || descriptor & 0x20 != 0;
    if has_content_size && u64::try_from(out.len()).ok() != Some(frame.content_size()) {
        return Err(corrupt(
            format,
            format!(
                "frame declares {} bytes of content, decoded {}",
                frame.content_size(),
                out.len()
            ),
        ));
    }
    Ok((out, rest))
}

/// The frame header descriptor byte, after checking the reserved bit that
/// ruzstd ignores (RFC 8878 section 3.1.1.1.1.4: a decoder must reject it).
fn zstd_frame_descriptor(input: &[u8]) -> Result<u8, DecompressError> {
    let descriptor = *input
        .get(ZSTD_MAGIC.len())
        .ok_or_else(|| corrupt(Format::Zstd, "truncated input: no frame header"))?;
    if descriptor & 0x08 != 0 {
        return Err(corrupt(Format::Zstd, "reserved bit set in the frame header"));
    }
    Ok(descriptor)
}

fn zstd_init_error(e: &ruzstd::decoding::errors::FrameDecoderError) -> DecompressError {
    use ruzstd::decoding::errors::FrameDecoderError as E;
    match e {
        E::WindowSizeTooBig { .. } | E::DictNotProvided { .. } => {
            unsupported(Format::Zstd, e.to_string())
        }
        _ => corrupt(Format::Zstd, e.to_string()),
    }
}

// ---------------------------------------------------------------- lz4 legacy

/// Uncompressed size of one legacy block (lz4's `LEGACY_BLOCKSIZE`).
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// `LZ4_COMPRESSBOUND(LEGACY_BLOCKSIZE)`: no legacy block is larger.
const LZ4_LEGACY_MAX_COMPRESSED: usize = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;

/// The legacy format (`lz4 -l`): the magic, then blocks of
/// `[u32 LE compressed size][LZ4 block]`, each decoding to at most 8 MiB, and
/// no end marker. Like the lz4 tool and the kernel's `unlz4`, the stream ends
/// at the end of input or at a size word that cannot start a block: the magic
/// (a concatenated stream), zero, or more than a block can be. A size that
/// could be a block but runs past the input is truncation for a whole file,
/// and the end of the stream for a prefix (Kbuild's appended size word).
fn unlz4_legacy(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    let format = Format::Lz4Legacy;
    let mut rest = input.get(LZ4_LEGACY_MAGIC.len()..).unwrap_or_default();
    let mut out = Vec::new();
    while let Some((size_word, after_word)) = split_u32_le(rest) {
        let size = usize::try_from(size_word).unwrap_or(usize::MAX);
        let ends_stream = size_word.to_le_bytes() == LZ4_LEGACY_MAGIC
            || size == 0
            || size > LZ4_LEGACY_MAX_COMPRESSED;
        if ends_stream {
            break;
        }
        let Some(block) = after_word.get(..size) else {
            if after_word.len() >= 4 {
                // More than a size word is left: this is a cut block, not an
                // appended size.
                return Err(corrupt(
                    format,
                    format!(
                        "truncated input: block of {size} bytes, {} left",
                        after_word.len()
                    ),
                ));
            }
            break;
        };
        decode_legacy_block(block, &mut out, limit)?;
        rest = after_word.get(size..).unwrap_or_default();
    }
    Ok((out, rest))
}

/// Decodes one legacy block straight into the spare room of `out`.
fn decode_legacy_block(
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecompressError> {
    let format = Format::Lz4Legacy;
    let start = out.len();
    let room = limit.saturating_sub(start).min(LZ4_LEGACY_BLOCK);
    let end = start.saturating_add(room);
    reserve_bounded(out, end, format, limit)?;
    out.resize(end, 0);
    let target = out.get_mut(start..).unwrap_or_default();
    let result = lz4_flex::block::decompress_into(block, target);
    match result {
        Ok(n) => {
            out.truncate(start.saturating_add(n));
            Ok(())
        }
        // The block did not fit: past the caller's limit, or past the 8 MiB
        // that a legacy block may decode to.
        Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if room < LZ4_LEGACY_BLOCK => {
            Err(DecompressError::TooLarge { format, limit })
        }
        Err(e) => Err(corrupt(format, format!("bad block: {e}"))),
    }
}

/// Splits a little-endian u32 off the front of `bytes`.
fn split_u32_le(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (word, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*word), rest))
}

// ---------------------------------------------------------------- lz4 frame

fn unlz4_frame(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    let format = Format::Lz4Frame;
    // lz4_flex's FrameDecoder reads concatenated frames, takes input that
    // ends before the end mark as a clean end, and reports an empty block as
    // end of data. So the frame's extent is found first, from its headers,
    // and the decoder is fed exactly that and must consume all of it.
    let frame_len = lz4_frame_len(input).map_err(|reason| corrupt(format, reason))?;
    let (frame, rest) = input.split_at_checked(frame_len).unwrap_or((input, &[]));
    let out = read_bounded(
        Lz4FrameReader {
            decoder: lz4_flex::frame::FrameDecoder::new(frame),
        },
        format,
        limit,
    )?;
    Ok((out, rest))
}

/// Length of the lz4 frame at the start of `input`, from its block headers
/// alone (the decoder checks the contents).
fn lz4_frame_len(input: &[u8]) -> Result<usize, String> {
    const FLG_BLOCK_CHECKSUM: u8 = 0x10;
    const FLG_CONTENT_SIZE: u8 = 0x08;
    const FLG_CONTENT_CHECKSUM: u8 = 0x04;
    const FLG_DICT_ID: u8 = 0x01;
    let truncated = || "truncated input: the frame ends before its end mark".to_string();

    let flg = *input.get(LZ4_FRAME_MAGIC.len()).ok_or_else(truncated)?;
    let optional = |flag: u8, len: usize| if flg & flag != 0 { len } else { 0 };
    // magic, FLG, BD, [content size], [dictionary id], header checksum
    let header_len = 4 + 1 + 1 + optional(FLG_CONTENT_SIZE, 8) + optional(FLG_DICT_ID, 4) + 1;
    let block_checksum_len = optional(FLG_BLOCK_CHECKSUM, 4);

    let mut pos = header_len;
    loop {
        let word = input.get(pos..).and_then(split_u32_le).ok_or_else(truncated)?.0;
        pos = pos.checked_add(4).ok_or_else(truncated)?;
        if word == 0 {
            break; // end mark
        }
        let data_len = usize::try_from(word & 0x7fff_ffff).map_err(|_| truncated())?;
        pos = pos
            .checked_add(data_len)
            .and_then(|p| p.checked_add(block_checksum_len))
            .filter(|&p| p <= input.len())
            .ok_or_else(truncated)?;
    }
    pos = pos
        .checked_add(optional(FLG_CONTENT_CHECKSUM, 4))
        .filter(|&p| p <= input.len())
        .ok_or_else(truncated)?;
    Ok(pos)
}

/// Reads a single lz4 frame to its end, carrying on past the `Ok(0)` that
/// lz4_flex returns for an empty block, until its input is used up.
struct Lz4FrameReader<'a> {
    decoder: lz4_flex::frame::FrameDecoder<&'a [u8]>,
}

impl Read for Lz4FrameReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let before = self.decoder.get_ref().len();
            let n = self.decoder.read(buf)?;
            let after = self.decoder.get_ref().len();
            if n > 0 || buf.is_empty() || after == 0 {
                return Ok(n);
            }
            if after == before {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "decoder stopped inside the frame",
                ));
            }
        }
    }
}
