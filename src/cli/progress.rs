//! The one progress bar: a line on standard error, redrawn at most ten times a
//! second, shown only on a terminal so that reports and logs stay clean.
//!
//! It fills by whichever measure a command knows in advance: the count of
//! modules (`verify`, which lists its files first) or the bytes of the images
//! read (`check-initramfs`, which finds modules only while streaming).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Cells of the bar between its brackets.
const WIDTH: u64 = 40;
/// Redraws closer together than this are skipped: a terminal cannot show them
/// and writing them would slow thousands of small checks.
const INTERVAL: Duration = Duration::from_millis(100);
/// Spaces that blank the line: the widest line the bar draws, for an
/// 80-column terminal.
const CLEAR: usize = 79;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// `done` of `total` modules checked.
    Modules {
        /// Modules checked so far.
        done: usize,
        /// Modules to check.
        total: usize,
    },
    /// `pos` of `len` bytes read from image `image` (from 0) of `images`;
    /// `modules` found so far over all images.
    Bytes {
        /// Bytes of the current image read so far.
        pos: u64,
        /// Size of the current image.
        len: u64,
        /// Which image is being read, from 0.
        image: usize,
        /// How many images there are.
        images: usize,
        /// Modules handed to the verifiers so far.
        modules: usize,
    },
}

impl Position {
    /// The last module checked is the end of the run, so it is always drawn;
    /// the last byte read is not (its modules are still being verified).
    fn is_last(self) -> bool {
        matches!(self, Position::Modules { done, total } if done == total)
    }

    /// Filled cells, `done / total` of the width, never past it.
    fn filled(self) -> usize {
        let (done, total) = match self {
            Position::Modules { done, total } => (done as u64, total as u64),
            Position::Bytes { pos, len, .. } => (pos, len),
        };
        // At most WIDTH (40): the cast cannot truncate.
        (done.saturating_mul(WIDTH) / total.max(1)).min(WIDTH) as usize
    }

    /// The words after the bar.
    fn counts(self) -> String {
        match self {
            Position::Modules { done, total } => format!("{done}/{total} modules"),
            Position::Bytes {
                pos,
                len,
                image,
                images,
                modules,
            } => {
                let which = if images > 1 {
                    format!("image {}/{images}, ", image + 1)
                } else {
                    String::new()
                };
                format!("{which}{}/{} MiB, {modules} modules", pos >> 20, len >> 20)
            }
        }
    }
}

impl From<crate::image::initramfs::Progress> for Position {
    fn from(p: crate::image::initramfs::Progress) -> Self {
        Position::Bytes {
            pos: p.pos,
            len: p.len,
            image: p.image,
            images: p.images,
            modules: p.modules,
        }
    }
}

/// The bar line for `at`, `secs` seconds into the run, without the leading
/// carriage return.
fn render(at: Position, secs: f64) -> String {
    let filled = at.filled();
    format!(
        "[{}{}] {}, {secs:.1}s",
        "#".repeat(filled),
        " ".repeat(WIDTH as usize - filled),
        at.counts()
    )
}

/// A progress bar on standard error; silent unless wanted and on a terminal.
///
/// Shared by the worker threads: [`Bar::tick`] takes `&self` and a busy bar
/// skips a tick rather than wait for it.
#[derive(Debug)]
pub struct Bar {
    enabled: bool,
    start: Instant,
    last: Mutex<Instant>,
}

impl Bar {
    /// A bar that draws only if `wanted` and standard error is a terminal.
    pub fn new(wanted: bool) -> Self {
        let now = Instant::now();
        Bar {
            enabled: wanted && std::io::stderr().is_terminal(),
            start: now,
            last: Mutex::new(now),
        }
    }

    /// Redraws the bar at `at`, unless it was drawn less than 100 ms ago.
    pub fn tick(&self, at: Position) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.elapsed() < INTERVAL && !at.is_last() {
            return;
        }
        *last = Instant::now();
        eprint!("\r{}", render(at, self.start.elapsed().as_secs_f64()));
    }

    /// Blanks the bar's line, so that what follows starts on a clean line.
    pub fn clear(&self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(CLEAR));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(pos: u64, len: u64, image: usize, images: usize) -> Position {
        Position::Bytes {
            pos,
            len,
            image,
            images,
            modules: 7,
        }
    }

    #[test]
    fn modules_line_is_verify_s() {
        let at = Position::Modules {
            done: 50,
            total: 200,
        };
        assert_eq!(
            render(at, 1.26),
            format!(
                "[{}{}] 50/200 modules, 1.3s",
                "#".repeat(10),
                " ".repeat(30)
            )
        );
        let done = Position::Modules {
            done: 200,
            total: 200,
        };
        assert_eq!(
            render(done, 0.0),
            format!("[{}] 200/200 modules, 0.0s", "#".repeat(40))
        );
    }

    #[test]
    fn bytes_line_is_check_initramfs_s() {
        assert_eq!(
            render(bytes(16 << 20, 64 << 20, 0, 1), 2.0),
            format!(
                "[{}{}] 16/64 MiB, 7 modules, 2.0s",
                "#".repeat(10),
                " ".repeat(30)
            )
        );
        assert_eq!(
            render(bytes(0, 64 << 20, 1, 3), 0.04),
            format!("[{}] image 2/3, 0/64 MiB, 7 modules, 0.0s", " ".repeat(40))
        );
    }

    #[test]
    fn bar_never_overflows() {
        assert_eq!(bytes(u64::MAX, 1, 0, 1).filled(), 40);
        assert_eq!(bytes(5, 0, 0, 1).filled(), 40);
        let none = Position::Modules { done: 0, total: 0 };
        assert_eq!(none.filled(), 0);
        assert!(none.is_last());
    }

    #[test]
    fn only_the_last_module_forces_a_redraw() {
        assert!(Position::Modules { done: 3, total: 3 }.is_last());
        assert!(!Position::Modules { done: 2, total: 3 }.is_last());
        assert!(!bytes(10, 10, 0, 1).is_last());
    }

    #[test]
    fn from_initramfs_progress() {
        let p = crate::image::initramfs::Progress {
            image: 1,
            images: 2,
            pos: 3,
            len: 4,
            modules: 5,
        };
        assert_eq!(
            Position::from(p),
            Position::Bytes {
                pos: 3,
                len: 4,
                image: 1,
                images: 2,
                modules: 5
            }
        );
    }
}
