//! `modseal check-initramfs`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;

use super::{TrustArgs, EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::image::initramfs::{check_images, Limits, Progress};
use crate::verify::Verdict;

#[derive(Debug, Args)]
pub struct CheckInitramfsArgs {
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print a JSON report instead of text (the shape of `verify --json`).
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Refuse an image whose compressed members unpack to more than this many
    /// bytes in total (a decompression bomb).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_unpacked)]
    pub max_unpacked: u64,
    /// Initramfs images (dracut, mkosi, kernel-install) or unified kernel images (PE with .initrd).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

/// A one-line progress bar on a terminal, as `verify` shows it, over the
/// bytes of the image files.
struct Bar {
    enabled: bool,
    start: Instant,
    last: Mutex<Instant>,
}

impl Bar {
    fn tick(&self, p: Progress) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.elapsed() < Duration::from_millis(100) {
            return;
        }
        *last = Instant::now();
        let width = 40u64;
        let filled = (p.pos.saturating_mul(width) / p.len.max(1)).min(width) as usize;
        let image = if p.images > 1 {
            format!("image {}/{}, ", p.image + 1, p.images)
        } else {
            String::new()
        };
        eprint!(
            "\r[{}{}] {image}{}/{} MiB, {} modules, {:.1}s",
            "#".repeat(filled),
            " ".repeat(40 - filled),
            p.pos >> 20,
            p.len >> 20,
            p.modules,
            self.start.elapsed().as_secs_f64()
        );
    }

    fn clear(&self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(79));
        }
    }
}

/// `modseal check-initramfs`.
pub fn cmd_check_initramfs(args: CheckInitramfsArgs) -> u8 {
    let trust = match crate::cli::load_trust(&args.trust) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("modseal: error: {e}");
            return EXIT_USAGE;
        }
    };
    let opts = crate::cli::options(&args.trust);
    let jobs = args.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let limits = Limits {
        max_unpacked: args.max_unpacked,
        ..Limits::default()
    };
    let total: u64 = args
        .images
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let now = Instant::now();
    let bar = Bar {
        enabled: !args.json && std::io::stderr().is_terminal() && total >= 8 << 20,
        start: now,
        last: Mutex::new(now),
    };
    let outcome = check_images(&args.images, &trust, &opts, jobs, &limits, &|p| bar.tick(p));
    bar.clear();
    for img in &outcome.images {
        for n in &img.notes {
            eprintln!("modseal: {}: note: {n}", img.path);
        }
        if !args.json {
            let members: Vec<String> = img
                .members
                .iter()
                .map(|m| format!("{} at byte {}", m.kind, m.file_offset))
                .collect();
            let members = match members.len() {
                0 => "no member read".to_string(),
                1 => format!("1 member ({})", members.join(", ")),
                n => format!("{n} members ({})", members.join(", ")),
            };
            eprintln!(
                "modseal: {}: {members}, {} entries, {} modules",
                img.path, img.entries, img.modules
            );
        }
    }
    let reports = &outcome.reports;
    let failed = reports.iter().filter(|r| r.verdict != Verdict::Ok).count();
    let verified = reports.len() - failed;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        crate::cli::write_json(&mut out, reports, verified, failed)
    } else {
        crate::cli::write_text(&mut out, reports, verified, failed)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("modseal: error: writing the report: {e}");
        return EXIT_FAIL;
    }
    let mut status = if failed == 0 { EXIT_OK } else { EXIT_FAIL };
    for img in &outcome.images {
        if img.modules == 0 && !img.failed {
            eprintln!("modseal: {}: no kernel module in the image", img.path);
            status = EXIT_FAIL;
        }
    }
    status
}
