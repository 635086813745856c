//! `modseal check-initramfs`.

use std::path::PathBuf;

use clap::Args;

use super::output::print_reports;
use super::progress::Bar;
use super::{TrustArgs, EXIT_FAIL, EXIT_USAGE};
use crate::image::initramfs::{check_images, ImageSummary, Limits};

/// `modseal check-initramfs` arguments.
#[derive(Debug, Args)]
pub struct CheckInitramfsArgs {
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
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
    let jobs = super::jobs(args.jobs);
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
    let bar = Bar::new(!args.json && total >= 8 << 20);
    let outcome = check_images(&args.images, &trust, &opts, jobs, &limits, &|p| {
        bar.tick(p.into())
    });
    bar.clear();
    for img in &outcome.images {
        describe_image(img, args.json);
    }
    let mut status = match print_reports(&outcome.reports, args.json) {
        Ok(tally) => tally.status(),
        Err(s) => return s,
    };
    for img in &outcome.images {
        if img.modules == 0 && !img.failed {
            eprintln!("modseal: {}: no kernel module in the image", img.path);
            status = EXIT_FAIL;
        }
    }
    status
}

/// The image's notes, and (as text) what was read of it, on standard error.
fn describe_image(img: &ImageSummary, json: bool) {
    for n in &img.notes {
        eprintln!("modseal: {}: note: {n}", img.path);
    }
    if json {
        return;
    }
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
