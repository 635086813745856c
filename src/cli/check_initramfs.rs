//! `modseal check-initramfs`.

use std::path::{Path, PathBuf};

use clap::Args;
use sha2::{Digest, Sha256};

use super::output::print_reports;
use super::progress::Bar;
use super::{usage_error, TrustArgs, EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use crate::boot::{Config, DEFAULT_CONFIG};
use crate::image::initramfs::{
    check_images, check_images_each, derive_kernels, digest_image_files, image_anchor, Digested,
    ImageSummary, Limits, Progress, DERIVED_PATH,
};
use crate::trust::cert::Certificate;
use crate::trust::TrustStore;
use crate::util::hex::lower;
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
    /// Also require, in each image, what modseal's dracut module installs
    /// for the enrollment this modseal.conf names: /usr/bin/modseal,
    /// /etc/modseal/modseal.conf, the trust bundle (byte for byte the
    /// host's) and the sealed objects. An image built without the dracut
    /// module (by initramfs-tools, say) fails, naming what is missing: it
    /// would boot without any check.
    #[arg(long, value_name = "CONF")]
    pub expect_modseal: Option<PathBuf>,
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
    let expected = match args
        .expect_modseal
        .as_deref()
        .map(expected_files)
        .transpose()
    {
        Ok(e) => e,
        Err(msg) => return usage_error(msg),
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
    if let Some(expected) = &expected {
        for image in &args.images {
            if !carries_modseal(image, expected, &limits) {
                status = EXIT_FAIL;
            }
        }
    }
    status
}

/// The sealed objects `modseal enroll` writes and the dracut module installs.
const SEALED_FILES: [&str; 3] = ["sealed.json", "sealed.pub", "sealed.priv"];

/// A file an image must hold: its path in the image, and the SHA-256 it
/// must have with the host file it was copied from (`None`: any content).
struct ExpectedFile {
    path: String,
    same_as: Option<(PathBuf, [u8; 32])>,
}

/// What `--expect-modseal CONF` requires of an image, read from the host.
fn expected_files(conf: &Path) -> Result<Vec<ExpectedFile>, String> {
    let cfg = Config::load(Some(conf)).map_err(|e| e.to_string())?;
    let bundle = read_capped(&cfg.trust, crate::trust::MAX_TRUST_FILE).map_err(|e| {
        format!(
            "{}: {e} (the trust bundle of {}, which --expect-modseal compares)",
            cfg.trust.display(),
            conf.display()
        )
    })?;
    let in_image = |p: &Path| p.to_string_lossy().trim_start_matches('/').to_owned();
    let any = |path: String| ExpectedFile {
        path,
        same_as: None,
    };
    let mut out = vec![
        any("usr/bin/modseal".to_owned()),
        any(DEFAULT_CONFIG.trim_start_matches('/').to_owned()),
        ExpectedFile {
            path: in_image(&cfg.trust),
            same_as: Some((cfg.trust.clone(), Sha256::digest(&bundle).into())),
        },
    ];
    out.extend(
        SEALED_FILES
            .iter()
            .map(|f| any(in_image(&cfg.sealed.join(f)))),
    );
    Ok(out)
}

/// Whether `image` holds every expected file (the bundle byte for byte);
/// what it lacks is named on standard error.
fn carries_modseal(image: &Path, expected: &[ExpectedFile], limits: &Limits) -> bool {
    let paths: Vec<String> = expected.iter().map(|e| e.path.clone()).collect();
    let found = match digest_image_files(image, &paths, limits) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("modseal: {}: {e}", image.display());
            return false;
        }
    };
    let mut ok = true;
    for e in expected {
        let problem = match (found.get(&e.path), &e.same_as) {
            (None, _) => "is not in the image".to_owned(),
            (Some(Digested::NotRegular(what)), _) => format!("is a {what}, not a file"),
            (Some(Digested::File(got)), Some((host, want))) if got != want => format!(
                "differs from the host's {} (SHA-256 {} in the image, {} on the host)",
                host.display(),
                lower(got),
                lower(want)
            ),
            (Some(Digested::File(_)), _) => continue,
        };
        eprintln!("modseal: {}: /{} {problem}", image.display(), e.path);
        ok = false;
    }
    if !ok {
        eprintln!(
            "modseal: {}: does not carry modseal as enrolled on this machine: \
             it boots without modseal's checks",
            image.display()
        );
    }
    ok
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
