//! The bytes of an initramfs, read forwards once: a counted, buffered
//! reader over the image file (or one section of a UKI). The decoders take
//! from its buffer only the bytes of their stream, so that the next member
//! is found where the kernel finds it.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

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
    /// At most `len` bytes of `inner`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_peek_and_positions() {
        let data: Vec<u8> = (0..=255u8).cycle().take(700_000).collect();
        let mut input = Input::new(&data[..], data.len() as u64);
        assert_eq!(input.peek(3).unwrap(), &[0, 1, 2]);
        let mut first = vec![0; 300_000];
        input.read_exact(&mut first).unwrap();
        assert_eq!(input.pos(), 300_000);
        // A peek across the buffer's end compacts and refills.
        let p = input.peek(6).unwrap().to_vec();
        assert_eq!(p, data[300_000..300_006]);
        assert_eq!(input.pos(), 300_000);
        let mut rest = Vec::new();
        input.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data[300_000..]);
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
}
