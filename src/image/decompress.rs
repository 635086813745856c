//! Bounded decompression of module files and kernel payloads: gzip and lz4
//! in pure Rust, xz and zstd through liblzma and libzstd (see `native`).
//!
//! Everything here runs on untrusted bytes: a decoder error, a truncated
//! stream or a decompression bomb is a [`DecompressError`], never a panic, and
//! the output never grows past the caller's `limit` (the decoders are driven
//! through `read_bounded`, which asks for at most `limit + 1` bytes and
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

use std::cell::Cell;
use std::io::{self, Read};

use crate::image::compression::Compression;

mod native;

pub(crate) use native::{xz_io_error, LzmaReader, ZstdReader};

/// Why a stream could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// The output would be larger than the caller's limit. Decoding stopped as
    /// soon as the limit was passed, so the bomb cost at most `limit` bytes.
    #[error("{format}: decompressed data is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The format being decoded.
        format: Compression,
        /// The caller's limit, in bytes.
        limit: usize,
    },
    /// The input is not a valid stream of this format: wrong magic, corrupt or
    /// truncated data, a failed integrity check (CRC, xxHash, size) or bytes
    /// after the stream. `reason` is the decoder's own message.
    #[error("{format}: corrupt stream: {reason}")]
    Corrupt {
        /// The format being decoded.
        format: Compression,
        /// What was wrong, in the decoder's words.
        reason: String,
    },
    /// The stream may be valid but needs something this decoder refuses: an
    /// external dictionary, an unknown check type, or more decoder memory
    /// (dictionary, window, output buffer) than the bounds allow.
    #[error("{format}: unsupported stream: {reason}")]
    Unsupported {
        /// The format being decoded.
        format: Compression,
        /// What was asked for.
        reason: String,
    },
}

/// Decompresses a whole file: one stream, nothing after it but what the
/// format itself allows (xz stream padding). Output larger than `limit` bytes
/// is [`DecompressError::TooLarge`]. [`Compression::None`] copies the input;
/// the formats modseal only recognises (lzma, bzip2, lzo, old gzip) are
/// [`DecompressError::Unsupported`].
pub fn decompress(
    format: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let (out, rest) = decode_first_stream(format, input, limit)?;
    check_trailing(format, rest)?;
    Ok(out)
}

/// Decompresses the first stream (gzip member, xz stream, zstd frame, lz4
/// frame or legacy lz4 stream) and ignores whatever follows it.
pub fn decompress_prefix(
    format: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    decode_first_stream(format, input, limit).map(|(out, _rest)| out)
}

/// Decodes one stream; returns the output and the input left after it.
fn decode_first_stream(
    format: Compression,
    input: &[u8],
    limit: usize,
) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    if format != Compression::None && !input.starts_with(format.magic()) {
        return Err(corrupt(format, format!("no {format} magic at the start")));
    }
    match format {
        Compression::Gzip => gunzip(input, limit),
        Compression::Xz => native::unxz(input, limit),
        Compression::Zstd => native::unzstd(input, limit),
        Compression::Lz4Legacy => unlz4_legacy(input, limit),
        Compression::Lz4Frame => unlz4_frame(input, limit),
        Compression::Lzma | Compression::Bzip2 | Compression::Lzo | Compression::OldGzip => Err(
            unsupported(format, format!("modseal does not decode {format} streams")),
        ),
        Compression::None => {
            let mut out = Vec::new();
            push_bounded(&mut out, input, format, limit)?;
            Ok((out, &[]))
        }
    }
}

/// Rejects bytes after the stream, except xz stream padding.
fn check_trailing(format: Compression, rest: &[u8]) -> Result<(), DecompressError> {
    let is_xz_padding =
        format == Compression::Xz && rest.len() % 4 == 0 && rest.iter().all(|&b| b == 0);
    if rest.is_empty() || is_xz_padding {
        Ok(())
    } else {
        Err(corrupt(
            format,
            format!("{} trailing bytes after the stream", rest.len()),
        ))
    }
}

fn corrupt(format: Compression, reason: impl Into<String>) -> DecompressError {
    DecompressError::Corrupt {
        format,
        reason: reason.into(),
    }
}

fn unsupported(format: Compression, reason: impl Into<String>) -> DecompressError {
    DecompressError::Unsupported {
        format,
        reason: reason.into(),
    }
}

/// Sorts a decoder's I/O error into our error kinds. The decoders report
/// "needs too much memory" and "feature not implemented" with these kinds.
fn from_io(format: Compression, e: io::Error) -> DecompressError {
    match e.kind() {
        io::ErrorKind::Unsupported | io::ErrorKind::OutOfMemory => {
            unsupported(format, e.to_string())
        }
        io::ErrorKind::UnexpectedEof => corrupt(format, format!("truncated input: {e}")),
        _ => corrupt(format, e.to_string()),
    }
}

/// Size of one read from a decoder; also the smallest output allocation.
const CHUNK: usize = 64 * 1024;

/// The largest output buffer [`recycle`] keeps: bigger than any module a
/// distribution ships, far below the 256 MiB a bomb reaches.
const SPARE_MAX: usize = 64 << 20;

thread_local! {
    /// One output buffer per thread, handed from module to module. musl's
    /// allocator returns every large buffer to the kernel, so without it
    /// each module's output is fresh pages: page faults and TLB shootdowns
    /// were a sixth of the CPU time of a static build's verify over a `.ko.xz`
    /// tree.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Gives an output of [`decompress`] back for the next call on this thread
/// (dropped instead if it grew past [`SPARE_MAX`]).
pub fn recycle(buf: Vec<u8>) {
    if buf.capacity() <= SPARE_MAX {
        SPARE.with(|s| s.set(buf));
    }
}

/// Reads `reader` until it reports the end, keeping at most `limit` bytes.
///
/// Each read asks for at most `limit + 1 - len` bytes (the `Read::take`
/// idea), so a bomb is caught one byte past the limit, and the decoder is
/// never asked to produce more than that.
fn read_bounded(
    mut reader: impl Read,
    format: Compression,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = SPARE.with(Cell::take);
    out.clear();
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
            return Err(corrupt(
                format,
                "decoder reported more bytes than asked for",
            ));
        };
        push_bounded(&mut out, data, format, limit)?;
    }
}

/// Appends `data` to `out`, or fails with `TooLarge` if that passes `limit`.
fn push_bounded(
    out: &mut Vec<u8>,
    data: &[u8],
    format: Compression,
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
    format: Compression,
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
    let out = read_bounded(&mut decoder, Compression::Gzip, limit)?;
    Ok((out, decoder.into_inner()))
}

// ---------------------------------------------------------------- zstd

/// Largest zstd window accepted: 128 MiB covers `zstd -22 --ultra`
/// (window log 27), which Kbuild uses for kernel payloads. The window fills
/// only with output, which the limit bounds anyway.
pub(crate) const ZSTD_MAX_WINDOW: u64 = 128 << 20;

/// The reserved bit of a zstd frame header descriptor, which RFC 8878
/// section 3.1.1.1.1.4 says a decoder must reject.
pub(crate) const ZSTD_DESCRIPTOR_RESERVED: u8 = 0x08;

/// The frame header descriptor byte, after checking the reserved bit.
/// libzstd rejects it too; checking first keeps one message for it, the
/// same as the initramfs reader's.
fn zstd_frame_descriptor(input: &[u8]) -> Result<u8, DecompressError> {
    let descriptor = *input
        .get(Compression::Zstd.magic().len())
        .ok_or_else(|| corrupt(Compression::Zstd, "truncated input: no frame header"))?;
    if descriptor & ZSTD_DESCRIPTOR_RESERVED != 0 {
        return Err(corrupt(
            Compression::Zstd,
            "reserved bit set in the frame header",
        ));
    }
    Ok(descriptor)
}

// ---------------------------------------------------------------- lz4 legacy

/// Uncompressed size of one legacy block (lz4's `LEGACY_BLOCKSIZE`).
pub(crate) const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// `LZ4_COMPRESSBOUND(LEGACY_BLOCKSIZE)`: no legacy block is larger.
pub(crate) const LZ4_LEGACY_MAX_COMPRESSED: usize = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK / 255 + 16;

/// The legacy format (`lz4 -l`): the magic, then blocks of
/// `[u32 LE compressed size][LZ4 block]`, each decoding to at most 8 MiB, and
/// no end marker. Like the lz4 tool and the kernel's `unlz4`, the stream ends
/// at the end of input or at a size word that cannot start a block: the magic
/// (a concatenated stream), zero, or more than a block can be. A size that
/// could be a block but runs past the input is truncation for a whole file,
/// and the end of the stream for a prefix (Kbuild's appended size word).
fn unlz4_legacy(input: &[u8], limit: usize) -> Result<(Vec<u8>, &[u8]), DecompressError> {
    let format = Compression::Lz4Legacy;
    let mut rest = input
        .get(Compression::Lz4Legacy.magic().len()..)
        .unwrap_or_default();
    let mut out = Vec::new();
    while let Some((size_word, after_word)) = split_u32_le(rest) {
        let size = usize::try_from(size_word).unwrap_or(usize::MAX);
        let ends_stream = size_word.to_le_bytes() == Compression::Lz4Legacy.magic()
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
    let format = Compression::Lz4Legacy;
    let start = out.len();
    // An LZ4 block expands at most 255-fold (each extra match-length byte
    // adds 255 bytes), so small blocks need no 8 MiB window to be zeroed.
    let block_max = LZ4_LEGACY_BLOCK.min(block.len().saturating_mul(256).saturating_add(64));
    let room = limit.saturating_sub(start).min(block_max);
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
        // The block did not fit: past the caller's limit (when that made the
        // window smaller), else it is corrupt.
        Err(lz4_flex::block::DecompressError::OutputTooSmall { .. }) if room < block_max => {
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
    let format = Compression::Lz4Frame;
    // lz4_flex's FrameDecoder reads concatenated frames, takes input that
    // ends before the end mark as a clean end, and reports an empty block as
    // end of data. So the frame's extent is found first, from its headers,
    // and the decoder is fed exactly that and must consume all of it.
    let frame_len = lz4_frame_len(input)?;
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
fn lz4_frame_len(input: &[u8]) -> Result<usize, DecompressError> {
    const FLG_BLOCK_CHECKSUM: u8 = 0x10;
    const FLG_CONTENT_SIZE: u8 = 0x08;
    const FLG_CONTENT_CHECKSUM: u8 = 0x04;
    const FLG_DICT_ID: u8 = 0x01;
    let truncated = || {
        corrupt(
            Compression::Lz4Frame,
            "truncated input: the frame ends before its end mark",
        )
    };

    let flg = *input
        .get(Compression::Lz4Frame.magic().len())
        .ok_or_else(truncated)?;
    let optional = |flag: u8, len: usize| if flg & flag != 0 { len } else { 0 };
    let header_len: usize = [
        Compression::Lz4Frame.magic().len(),
        1, // FLG
        1, // BD
        optional(FLG_CONTENT_SIZE, 8),
        optional(FLG_DICT_ID, 4),
        1, // header checksum
    ]
    .into_iter()
    .sum();
    let block_checksum_len = optional(FLG_BLOCK_CHECKSUM, 4);

    let mut pos = header_len;
    loop {
        let word = input
            .get(pos..)
            .and_then(split_u32_le)
            .ok_or_else(truncated)?
            .0;
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

#[cfg(test)]
mod tests {
    //! The compressed inputs are made at test time by the real tools, run the
    //! way Kbuild runs them. They are test dependencies
    //! (`apt-get install -y xz-utils zstd lz4 gzip`): a missing tool fails
    //! the test, it does not skip it.
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const INSTALL_HINT: &str = "apt-get install -y xz-utils zstd lz4 gzip";

    /// Pipes `input` through `program args…` and returns its output.
    fn run_tool(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{program}`: {e} (install it: {INSTALL_HINT})"));
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Feed stdin from a thread: the tool may fill stdout before it has
        // read all of its input.
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let output = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(
            output.status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Runs a shell pipeline (for inputs too large to pass around).
    fn run_shell(script: &str) -> Vec<u8> {
        let output = Command::new("sh").args(["-ec", script]).output().unwrap();
        assert!(
            output.status.success(),
            "`{script}` failed (install the tools: {INSTALL_HINT}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// One way of compressing: the format and the tool's command line.
    struct Recipe {
        format: Compression,
        program: &'static str,
        args: &'static [&'static str],
    }

    /// The command lines: Kbuild's for modules (`scripts/Makefile.modinst`)
    /// and kernel payloads (`scripts/Makefile.lib`), plus the tools'
    /// defaults and options that change the framing.
    const RECIPES: &[Recipe] = &[
        Recipe {
            format: Compression::Gzip,
            program: "gzip",
            args: &["-9", "-n", "-c"],
        },
        Recipe {
            format: Compression::Xz,
            program: "xz",
            args: &["--check=crc32", "--lzma2=dict=1MiB", "-c"],
        },
        Recipe {
            format: Compression::Xz,
            program: "xz",
            args: &["--check=crc32", "--x86", "--lzma2=dict=1MiB", "-c"],
        },
        Recipe {
            format: Compression::Xz,
            program: "xz",
            args: &["-c"],
        },
        Recipe {
            format: Compression::Xz,
            program: "xz",
            args: &["--check=sha256", "-c"],
        },
        Recipe {
            format: Compression::Xz,
            program: "xz",
            args: &["--check=none", "-c"],
        },
        Recipe {
            format: Compression::Zstd,
            program: "zstd",
            args: &["-T0", "-q", "-c"],
        },
        Recipe {
            format: Compression::Zstd,
            program: "zstd",
            args: &["-19", "-q", "-c"],
        },
        Recipe {
            format: Compression::Zstd,
            program: "zstd",
            args: &["--no-check", "-q", "-c"],
        },
        Recipe {
            format: Compression::Lz4Legacy,
            program: "lz4",
            args: &["-l", "-9", "-c"],
        },
        Recipe {
            format: Compression::Lz4Frame,
            program: "lz4",
            args: &["-c"],
        },
        Recipe {
            format: Compression::Lz4Frame,
            program: "lz4",
            args: &["-BD", "-B4", "-c"],
        },
        Recipe {
            format: Compression::Lz4Frame,
            program: "lz4",
            args: &["-BX", "--content-size", "-c"],
        },
        Recipe {
            format: Compression::Lz4Frame,
            program: "lz4",
            args: &["--no-frame-crc", "-c"],
        },
    ];

    impl Recipe {
        fn compress(&self, data: &[u8]) -> Vec<u8> {
            run_tool(self.program, self.args, data)
        }
        fn label(&self) -> String {
            format!("{} {}", self.program, self.args.join(" "))
        }
    }

    /// Deterministic test data: text, xorshift noise, and x86 call/jump
    /// opcodes (E8/E9 + rel32) for the BCJ filter to rewrite.
    fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut state: u32 = 0x9e37_79b9;
        let mut line = 0u32;
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            match state % 4 {
                0 => out.extend_from_slice(
                    format!("line {line}: module signature appended\n").as_bytes(),
                ),
                1 => out.extend_from_slice(&state.to_le_bytes()),
                2 => {
                    out.push(0xe8);
                    out.extend_from_slice(&(line.wrapping_mul(16)).to_le_bytes());
                }
                _ => out.extend_from_slice(&[0x48, 0x89, 0xe5, 0xe9, 0x10, 0x00, 0x00, 0x00]),
            }
            line += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn detects_formats_by_magic() {
        assert_eq!(
            Compression::from_magic(&[0x1f, 0x8b, 0x08]),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_magic(b"\xfd7zXZ\x00\x00\x01"),
            Some(Compression::Xz)
        );
        assert_eq!(
            Compression::from_magic(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_magic(&[0x02, 0x21, 0x4c, 0x18]),
            Some(Compression::Lz4Legacy)
        );
        assert_eq!(
            Compression::from_magic(&[0x04, 0x22, 0x4d, 0x18, 0x64]),
            Some(Compression::Lz4Frame)
        );
        assert_eq!(Compression::from_magic(b"\x7fELF"), None);
        assert_eq!(
            Compression::from_magic(b"\xfd7zXZ"),
            None,
            "incomplete xz magic"
        );
        assert_eq!(Compression::from_magic(&[0x1f]), None);
        assert_eq!(Compression::from_magic(&[]), None);
        for recipe in RECIPES {
            let compressed = recipe.compress(b"x");
            assert_eq!(
                Compression::from_magic(&compressed),
                Some(recipe.format),
                "{}",
                recipe.label()
            );
        }
    }

    #[test]
    fn round_trips_every_tool_and_option() {
        // Over 8 MiB, so legacy lz4 needs two blocks and linked lz4 frames
        // need their dictionary carried over.
        let data = sample(9 << 20);
        for recipe in RECIPES {
            let compressed = recipe.compress(&data);
            let out = decompress(recipe.format, &compressed, 64 << 20)
                .unwrap_or_else(|e| panic!("{}: {e}", recipe.label()));
            assert!(out == data, "{}: output differs", recipe.label());
            let prefix = decompress_prefix(recipe.format, &compressed, 64 << 20).unwrap();
            assert!(prefix == data, "{}: prefix output differs", recipe.label());
        }
    }

    #[test]
    fn round_trips_empty_input() {
        for recipe in RECIPES {
            let compressed = recipe.compress(b"");
            let out = decompress(recipe.format, &compressed, 0)
                .unwrap_or_else(|e| panic!("{}: {e}", recipe.label()));
            assert!(out.is_empty(), "{}", recipe.label());
        }
    }

    #[test]
    fn none_copies_within_the_limit() {
        assert_eq!(decompress(Compression::None, b"abc", 3).unwrap(), b"abc");
        assert_eq!(
            decompress(Compression::None, b"abc", 2),
            Err(DecompressError::TooLarge {
                format: Compression::None,
                limit: 2
            })
        );
        assert_eq!(decompress_prefix(Compression::None, b"", 0).unwrap(), b"");
    }

    #[test]
    fn limit_is_exact() {
        let data = sample(100_000);
        for recipe in RECIPES {
            let compressed = recipe.compress(&data);
            assert!(
                decompress(recipe.format, &compressed, data.len()).is_ok(),
                "{}",
                recipe.label()
            );
            assert_eq!(
                decompress(recipe.format, &compressed, data.len() - 1),
                Err(DecompressError::TooLarge {
                    format: recipe.format,
                    limit: data.len() - 1
                }),
                "{}",
                recipe.label()
            );
        }
    }

    #[test]
    fn rejects_a_bomb_fast() {
        // 200 MiB of zeros against a 64 MiB limit; the pipelines make the
        // input without holding 200 MiB in the test.
        const LIMIT: usize = 64 << 20;
        let bombs = [
            (Compression::Gzip, "gzip -9 -n -c"),
            (Compression::Xz, "xz --check=crc32 --lzma2=dict=1MiB -c"),
            (Compression::Zstd, "zstd -T0 -q -c"),
            (Compression::Lz4Legacy, "lz4 -l -9 -c"),
            (Compression::Lz4Frame, "lz4 -c"),
        ];
        for (format, tool) in bombs {
            let compressed = run_shell(&format!("head -c 209715200 /dev/zero | {tool}"));
            let started = Instant::now();
            let result = decompress(format, &compressed, LIMIT);
            let elapsed = started.elapsed();
            assert_eq!(
                result,
                Err(DecompressError::TooLarge {
                    format,
                    limit: LIMIT
                }),
                "{tool}"
            );
            // Decoding all 200 MiB would take several times as long in a
            // debug build; stopping at the limit is what keeps this short.
            assert!(
                elapsed < Duration::from_secs(30),
                "{tool}: took {elapsed:?}"
            );
        }
    }

    #[test]
    fn output_memory_stays_within_the_limit() {
        let limit = 1_000_003;
        assert_eq!(
            read_bounded(io::repeat(0), Compression::None, limit),
            Err(DecompressError::TooLarge {
                format: Compression::None,
                limit
            })
        );
        let out = read_bounded(io::repeat(7).take(limit as u64), Compression::None, limit).unwrap();
        assert_eq!(out.len(), limit);
        assert!(
            out.capacity() <= limit,
            "capacity {} > limit",
            out.capacity()
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let data = sample(3000);
        for recipe in RECIPES
            .iter()
            .filter(|r| r.format != Compression::Lz4Legacy)
        {
            let compressed = recipe.compress(&data);
            for cut in 0..compressed.len() {
                let result = decompress(recipe.format, &compressed[..cut], 1 << 20);
                assert!(
                    matches!(result, Err(DecompressError::Corrupt { .. })),
                    "{}: cut at {cut} of {} gave {result:?}",
                    recipe.label(),
                    compressed.len()
                );
                let result = decompress_prefix(recipe.format, &compressed[..cut], 1 << 20);
                assert!(result.is_err(), "{}: prefix cut at {cut}", recipe.label());
            }
        }
    }

    #[test]
    fn legacy_lz4_truncated_inside_a_block_is_an_error() {
        // Legacy lz4 has no end marker: a cut between blocks is a shorter
        // valid stream, a cut inside a block is not.
        let data = sample(3000);
        let compressed = run_tool("lz4", &["-l", "-9", "-c"], &data);
        for cut in 9..compressed.len() - 4 {
            let result = decompress(Compression::Lz4Legacy, &compressed[..cut], 1 << 20);
            assert!(
                // Fewer than 4 bytes of a cut block look like Kbuild's
                // appended size word: those are reported as trailing bytes.
                matches!(&result, Err(DecompressError::Corrupt { reason, .. })
                    if reason.contains("truncated") || reason.contains("trailing bytes")),
                "cut at {cut}: {result:?}"
            );
        }
        assert!(
            decompress(Compression::Lz4Legacy, &compressed[..4], 1 << 20)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn flipped_bytes_never_give_other_data() {
        // Every format here carries a checksum over the content, so a flipped
        // byte is an error, or lands in a field that changes nothing (gzip's
        // mtime and OS bytes, for example).
        let data = sample(2000);
        for recipe in RECIPES.iter().filter(|r| {
            let unchecked = ["--no-check", "--check=none", "--no-frame-crc"];
            r.format != Compression::Lz4Legacy && !r.args.iter().any(|a| unchecked.contains(a))
        }) {
            let compressed = recipe.compress(&data);
            for pos in 0..compressed.len() {
                for mask in [0x01u8, 0x80] {
                    let mut damaged = compressed.clone();
                    damaged[pos] ^= mask;
                    if let Ok(out) = decompress(recipe.format, &damaged, 1 << 20) {
                        assert!(
                            out == data,
                            "{}: flip at {pos} gave other data",
                            recipe.label()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn flipped_bytes_in_unchecked_streams_do_not_panic() {
        let data = sample(2000);
        let unchecked = [
            (Compression::Lz4Legacy, "lz4", &["-l", "-9", "-c"][..]),
            (Compression::Zstd, "zstd", &["--no-check", "-q", "-c"][..]),
            (Compression::Xz, "xz", &["--check=none", "-c"][..]),
            (Compression::Lz4Frame, "lz4", &["--no-frame-crc", "-c"][..]),
        ];
        for (format, program, args) in unchecked {
            let compressed = run_tool(program, args, &data);
            for pos in 0..compressed.len() {
                let mut damaged = compressed.clone();
                damaged[pos] ^= 0x55;
                let _ = decompress(format, &damaged, 1 << 20);
            }
        }
    }

    #[test]
    fn corrupt_content_fails_the_integrity_check() {
        // Change one byte of the compressed data but keep it decodable: only
        // the check can notice. Stored (uncompressed) blocks make that easy.
        let data = sample(5000);
        let gz = run_tool("gzip", &["-1", "-n", "-c"], b"A");
        let mut damaged = gz.clone();
        let crc_pos = damaged.len() - 8;
        damaged[crc_pos] ^= 1;
        let err = decompress(Compression::Gzip, &damaged, 1 << 20).unwrap_err();
        assert!(matches!(err, DecompressError::Corrupt { .. }), "{err}");

        let xz = run_tool("xz", &["--check=crc32", "--lzma2=dict=1MiB", "-c"], &data);
        // The block's CRC32 sits right before the index; flip its first byte.
        let mut damaged = xz.clone();
        let index_start = find_xz_check_position(&xz, &data);
        damaged[index_start] ^= 1;
        let err = decompress(Compression::Xz, &damaged, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");

        let zst = run_tool("zstd", &["-q", "-c"], &data);
        let mut damaged = zst.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        let err = decompress(Compression::Zstd, &damaged, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    /// Where the CRC32 of the only block of a single-block xz stream starts:
    /// 4 check bytes, then the index (padded to 4), then the 12-byte footer.
    fn find_xz_check_position(xz: &[u8], data: &[u8]) -> usize {
        assert_eq!(decompress(Compression::Xz, xz, 1 << 20).unwrap(), data);
        let footer = xz.len() - 12;
        let backward_size = u32::from_le_bytes(xz[footer + 4..footer + 8].try_into().unwrap());
        let index_len = (backward_size as usize + 1) * 4;
        footer - index_len - 4
    }

    #[test]
    fn trailing_bytes_are_an_error_but_not_for_a_prefix() {
        let data = sample(5000);
        for recipe in RECIPES {
            let mut compressed = recipe.compress(&data);
            compressed.extend_from_slice(b"junk!");
            let err = decompress(recipe.format, &compressed, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                DecompressError::Corrupt {
                    format: recipe.format,
                    reason: "5 trailing bytes after the stream".into()
                },
                "{}",
                recipe.label()
            );
            let out = decompress_prefix(recipe.format, &compressed, 1 << 20).unwrap();
            assert!(out == data, "{}", recipe.label());
        }
    }

    #[test]
    fn kbuild_size_append_is_ignored_by_prefix() {
        // Kbuild's `size_append`: the uncompressed size, u32 little-endian,
        // after the stream. Small and large sizes both (a small one is a
        // plausible legacy lz4 block size).
        let data = sample(70_000);
        for size_word in [data.len() as u32, 0x0400_0000] {
            for recipe in RECIPES {
                let mut payload = recipe.compress(&data);
                payload.extend_from_slice(&size_word.to_le_bytes());
                let out = decompress_prefix(recipe.format, &payload, 1 << 20)
                    .unwrap_or_else(|e| panic!("{}: {e}", recipe.label()));
                assert!(out == data, "{}", recipe.label());
            }
        }
    }

    #[test]
    fn xz_stream_padding_is_allowed() {
        let data = sample(1000);
        let xz = run_tool("xz", &["-c"], &data);
        for padding in [4, 8, 64] {
            let mut padded = xz.clone();
            padded.resize(xz.len() + padding, 0);
            assert_eq!(decompress(Compression::Xz, &padded, 1 << 20).unwrap(), data);
        }
        let mut padded = xz.clone();
        padded.resize(xz.len() + 3, 0);
        assert!(decompress(Compression::Xz, &padded, 1 << 20).is_err());
    }

    #[test]
    fn concatenated_streams_are_rejected() {
        // The documented choice: one stream per file.
        for recipe in RECIPES {
            let one = recipe.compress(b"first");
            let mut two = one.clone();
            two.extend_from_slice(&recipe.compress(b"second"));
            let err = decompress(recipe.format, &two, 1 << 20).unwrap_err();
            assert!(
                err.to_string().contains("trailing bytes"),
                "{}: {err}",
                recipe.label()
            );
            assert_eq!(
                decompress_prefix(recipe.format, &two, 1 << 20).unwrap(),
                b"first"
            );
        }
    }

    #[test]
    fn wrong_or_missing_magic_is_corrupt() {
        let gz = run_tool("gzip", &["-c"], b"hello");
        for format in [
            Compression::Xz,
            Compression::Zstd,
            Compression::Lz4Legacy,
            Compression::Lz4Frame,
        ] {
            let err = decompress(format, &gz, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                DecompressError::Corrupt {
                    format,
                    reason: format!("no {format} magic at the start")
                }
            );
            assert!(decompress(format, &[], 1 << 20).is_err());
        }
        assert!(decompress(Compression::Gzip, &[], 1 << 20).is_err());
    }

    #[test]
    fn xz_dictionary_over_the_memory_bound_is_unsupported() {
        // Rewrite the block header's LZMA2 dictionary byte to 40 (4 GiB) and
        // fix the header's CRC32: a valid header asking for too much memory.
        let mut xz = run_tool(
            "xz",
            &["--check=crc32", "--lzma2=dict=1MiB", "-c"],
            b"hello",
        );
        let header_start = 12;
        let header_len = (usize::from(xz[header_start]) + 1) * 4;
        let header = header_start..header_start + header_len;
        assert_eq!(
            &xz[header_start + 2..header_start + 5],
            [0x21, 0x01, 16],
            "LZMA2, dict=1MiB"
        );
        xz[header_start + 4] = 40;
        let mut crc = flate2::Crc::new();
        crc.update(&xz[header.start..header.end - 4]);
        xz[header.end - 4..header.end].copy_from_slice(&crc.sum().to_le_bytes());
        let err = decompress(Compression::Xz, &xz, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::Unsupported {
                    format: Compression::Xz,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn zstd_window_over_the_bound_is_unsupported() {
        // Without a content size the header carries a window descriptor;
        // exponent 31 asks for a 2 TiB window.
        let mut zst = run_tool("zstd", &["--no-content-size", "-q", "-c"], b"hello");
        assert_eq!(
            zst[4] & 0x20,
            0,
            "no single-segment flag, so byte 5 is the window"
        );
        zst[5] = 31 << 3;
        let err = decompress(Compression::Zstd, &zst, 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                DecompressError::Unsupported {
                    format: Compression::Zstd,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn zstd_reserved_bit_is_rejected() {
        let mut zst = run_tool("zstd", &["-q", "-c"], b"hello");
        zst[4] |= 0x08;
        let err = decompress(Compression::Zstd, &zst, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("reserved bit"), "{err}");
    }

    #[test]
    fn lz4_frame_with_an_empty_block_is_read_to_its_end() {
        // A hand-made frame: independent blocks, no checksums; an empty
        // uncompressed block, then "hi" uncompressed, then the end mark.
        // lz4_flex alone would stop at the empty block.
        let mut frame = vec![0x04, 0x22, 0x4d, 0x18, 0x60, 0x40];
        frame.push(header_checksum(&frame[4..6]));
        frame.extend_from_slice(&0x8000_0000u32.to_le_bytes());
        frame.extend_from_slice(&0x8000_0002u32.to_le_bytes());
        frame.extend_from_slice(b"hi");
        frame.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decompress(Compression::Lz4Frame, &frame, 100).unwrap(),
            b"hi"
        );
        assert_eq!(
            decompress_prefix(Compression::Lz4Frame, &frame, 100).unwrap(),
            b"hi"
        );
    }

    /// The lz4 frame header checksum: second byte of xxh32(descriptor, 0),
    /// taken from the lz4 tool's output for the same descriptor.
    fn header_checksum(descriptor: &[u8]) -> u8 {
        assert_eq!(descriptor, [0x60, 0x40]);
        // `lz4 -BX --no-frame-crc` makes FLG 0x60 BD 0x40 … read its HC byte.
        let made = run_tool("lz4", &["--no-frame-crc", "-B4", "-c"], b"x");
        assert_eq!(&made[4..6], descriptor, "lz4 changed its defaults");
        made[6]
    }
}
