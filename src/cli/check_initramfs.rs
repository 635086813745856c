//! `modseal check-initramfs`.

use std::path::PathBuf;

use clap::Args;

use super::output::print_reports;
use super::progress::Bar;
use super::{usage_error, TrustArgs, EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::image::initramfs::{
    check_images, check_images_each, derive_kernels, image_anchor, ImageSummary, Limits, Progress,
    DERIVED_PATH,
};
use crate::trust::cert::Certificate;
use crate::trust::TrustStore;
use crate::util::read::read_capped;

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
    /// The kernel images (vmlinuz) the images are for. Needed with a trust
    /// bundle of kernel-signer CAs: an image's derived anchor
    /// (/etc/modseal/derived-anchor) is trusted only if it is what one of
    /// these kernels yields. Repeatable.
    #[arg(long = "kernel", value_name = "VMLINUZ")]
    pub kernels: Vec<PathBuf>,
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
    let (per_image, mut status) = match per_image_trust(&args, &trust, &limits) {
        Ok(t) => t,
        Err(status) => return status,
    };
    let bar = Bar::new(!args.json && total >= 8 << 20);
    let tick = |p: Progress| bar.tick(p.into());
    let outcome = match &per_image {
        None => check_images(&args.images, &trust, &opts, jobs, &limits, &tick),
        Some(stores) => {
            let pairs: Vec<(PathBuf, &TrustStore)> =
                stores.iter().map(|(p, t)| (p.clone(), t)).collect();
            check_images_each(&pairs, &opts, jobs, &limits, &tick)
        }
    };
    bar.clear();
    for img in &outcome.images {
        describe_image(img, args.json);
    }
    status = status.max(match print_reports(&outcome.reports, args.json) {
        Ok(tally) => tally.status(),
        Err(s) => return s,
    });
    for img in &outcome.images {
        if img.modules == 0 && !img.failed {
            eprintln!("modseal: {}: no kernel module in the image", img.path);
            status = EXIT_FAIL;
        }
    }
    status
}

/// Each image and the trust store it is checked against.
type ImageTrust = Vec<(PathBuf, TrustStore)>;

/// With a trust bundle of kernel signers, each image and the trust it is
/// checked against ([`derived_trust`]), and [`EXIT_FAIL`] if an image was
/// left out; without, `None`. `Err`: the exit status of a usage error.
fn per_image_trust(
    args: &CheckInitramfsArgs,
    trust: &TrustStore,
    limits: &Limits,
) -> Result<(Option<ImageTrust>, u8), u8> {
    let signers = kernel_signers(&args.trust.trust).map_err(usage_error)?;
    match (signers.is_empty(), args.kernels.is_empty()) {
        (true, true) => Ok((None, EXIT_OK)),
        (true, false) => Err(usage_error(
            "--kernel checks the derived anchor of a trust bundle with kernel-signer \
             certificates, and no --trust file has one",
        )),
        (false, true) => Err(usage_error(format!(
            "the trust bundle has kernel-signer certificates: give --kernel VMLINUZ (the kernel \
             the images are for; repeatable), so that each image's derived anchor \
             (/{DERIVED_PATH}) is checked against it before it is trusted"
        ))),
        (false, false) => {
            let (stores, failed) =
                derived_trust(args, &signers, trust, limits).map_err(usage_error)?;
            Ok((Some(stores), if failed { EXIT_FAIL } else { EXIT_OK }))
        }
    }
}

/// The kernel signers of the `--trust` files that are bundles.
fn kernel_signers(files: &[PathBuf]) -> Result<Vec<Certificate>, String> {
    let mut out = Vec::new();
    for f in files {
        let bytes = read_capped(f, crate::trust::MAX_TRUST_FILE).map_err(|e| e.to_string())?;
        let is_bundle = std::str::from_utf8(&bytes).is_ok_and(|t| {
            t.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .is_some_and(|l| l.starts_with("modseal-trust-bundle"))
        });
        if is_bundle {
            let b = crate::trust::read_bundle(f, &bytes).map_err(|e| e.to_string())?;
            out.extend(b.kernel_signers);
        }
    }
    Ok(out)
}

/// Each image with the trust it is checked against: `trust` and the
/// image's derived anchor, once that is what one of the `--kernel` images
/// yields. An image whose anchor is not is named and left out (`true`:
/// one was). `Err`: a kernel image that cannot be read.
fn derived_trust(
    args: &CheckInitramfsArgs,
    signers: &[Certificate],
    trust: &TrustStore,
    limits: &Limits,
) -> Result<(ImageTrust, bool), String> {
    let kernels = derive_kernels(&args.kernels, signers).map_err(|e| e.to_string())?;
    let mut stores = Vec::new();
    let mut failed = false;
    for image in &args.images {
        match image_anchor(image, &kernels, limits) {
            Ok(d) => {
                let mut t = trust.clone();
                t.anchors.extend(d.certs);
                stores.push((image.clone(), t));
            }
            Err(e) => {
                eprintln!("modseal: {e}");
                failed = true;
            }
        }
    }
    Ok((stores, failed))
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
