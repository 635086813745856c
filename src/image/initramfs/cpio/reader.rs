//! Reading a member's data (the image itself, or a decoder's output)
//! forwards, counting the offset that messages give.

use std::io::{self, BufRead, BufReader, Read};

use crate::image::initramfs::input::Input;
use crate::image::initramfs::stream::{Budget, Decoder};

/// Where the walk is in the image file, for progress.
pub(crate) trait FilePos {
    /// How far into the image file reading has got.
    fn file_pos(&self) -> u64;
}

impl<R: Read> FilePos for &mut Input<R> {
    fn file_pos(&self) -> u64 {
        self.pos()
    }
}

impl<R: Read> FilePos for &mut BufReader<Budget<Decoder<'_, R>>> {
    fn file_pos(&self) -> u64 {
        self.get_ref().get_ref().file_pos()
    }
}

/// A buffered reader that counts what it consumed.
pub(super) struct Tracked<B> {
    /// The member's data.
    pub inner: B,
    /// Bytes consumed, from where the member's data started counting.
    pub pos: u64,
}

impl<B: BufRead> Tracked<B> {
    /// Counts from `pos`.
    pub(super) fn new(inner: B, pos: u64) -> Self {
        Tracked { inner, pos }
    }

    /// Passes over `n` buffered bytes.
    pub(super) fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        self.pos = self.pos.saturating_add(n as u64);
    }

    /// Passes over zero bytes.
    pub(super) fn skip_zeros(&mut self) -> io::Result<()> {
        loop {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                return Ok(());
            }
            let zeros = avail.iter().take_while(|&&b| b == 0).count();
            let all = zeros == avail.len();
            self.consume(zeros);
            if !all {
                return Ok(());
            }
        }
    }

    /// The next byte, not consumed; `None` at the end of the data.
    pub(super) fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        Ok(self.inner.fill_buf()?.first().copied())
    }

    /// Fills `out` unless the data ends first; returns how much it got.
    pub(super) fn read_full(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut got = 0usize;
        while got < out.len() {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let dst = out.get_mut(got..).unwrap_or_default();
            let n = dst.len().min(avail.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..n), avail.get(..n)) {
                d.copy_from_slice(s);
            }
            self.consume(n);
            got = got.saturating_add(n);
        }
        Ok(got)
    }

    /// Passes over `n` bytes (appending them to `keep` if given, adding
    /// them to `sum` if given); returns how many there were.
    pub(super) fn take(
        &mut self,
        n: u64,
        keep: Option<&mut Vec<u8>>,
        sum: Option<&mut u32>,
    ) -> io::Result<u64> {
        match keep {
            Some(buf) => self.take_each(n, &mut |c| buf.extend_from_slice(c), sum),
            None => self.take_each(n, &mut |_| {}, sum),
        }
    }

    /// [`Tracked::take`], handing each chunk to `each` (a digest) instead
    /// of keeping it.
    pub(super) fn take_each(
        &mut self,
        n: u64,
        each: &mut dyn FnMut(&[u8]),
        mut sum: Option<&mut u32>,
    ) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let k = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let chunk = avail.get(..k).unwrap_or_default();
            each(chunk);
            if let Some(s) = sum.as_deref_mut() {
                *s = chunk
                    .iter()
                    .fold(*s, |acc, &b| acc.wrapping_add(u32::from(b)));
            }
            self.consume(k);
            left = left.saturating_sub(k as u64);
        }
        Ok(n.saturating_sub(left))
    }
}
