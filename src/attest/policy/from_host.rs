//! A policy made from the files a machine will boot (`modseal attest
//! --make-policy --trust BUNDLE --initrd IMAGE --kernel VMLINUZ`), before
//! the boot: after a kernel update, from the new files.
//!
//! What a boot's records will say is predicted by the code a boot builds
//! them with: each image's modules are verified as `check-initramfs` reads
//! them, against the bundle's anchors as a stage loads them
//! ([`crate::boot::bundle_trust`]), and the stage's content is built by
//! [`crate::boot::stage_content`]. The boot chain is taken from the files:
//! each initrd's SHA-256 (what the kernel's EFI stub measures into PCR 9)
//! and each kernel's Authenticode SHA-256 (what UEFI firmware measures into
//! PCR 4 for a PE image it loads, [`crate::image::pe`]).
//!
//! Not predicted: module configuration an image carries (`modprobe.d`
//! install commands a stage refuses) and untrusted certificates its
//! `modseal.conf` names; a boot that fails on those fails the policy's
//! checks, it is not accepted by them.

use std::path::{Path, PathBuf};

use super::{path_is_writable, BootChain, ExpectedModule, KernelCert, ModeRule, Policy};
use crate::boot::{bundle_trust, sealed_mode, stage_content, Findings};
use crate::image::initramfs::{
    check_images, derive_kernels, image_anchor, ImageAnchorError, Limits,
};
use crate::image::kernel_image::extract_certificates;
use crate::image::pe::{self, PeError};
use crate::measure::{Content, Mode, Stage, StageChecks, UnsealOutcome};
use crate::tpm::PcrBank;
use crate::trust::derived::DerivedAnchor;
use crate::trust::TrustError;
use crate::util::read::{read_capped, ReadError};
use crate::util::text::clip;
use crate::verify::{Report, Verdict};

/// A kernel image or an initrd larger than this is refused.
pub const MAX_BOOT_FILE: usize = 1 << 30;

/// Longest `--cmdline` accepted (the x86 kernel's COMMAND_LINE_SIZE is 2048;
/// the EFI stub takes what the firmware hands it).
pub const MAX_CMDLINE: usize = 4096;

/// Why no policy is made from the files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostPolicyError {
    /// A file could not be read.
    #[error("{0}")]
    Read(#[from] ReadError),
    /// The trust bundle does not parse.
    #[error("{0}")]
    Bundle(TrustError),
    /// A kernel that is not a PE image the firmware would measure.
    #[error("{}: not a kernel image the firmware measures (a PE image): {source}", path.display())]
    NotPe {
        /// The kernel given.
        path: PathBuf,
        /// Why.
        source: PeError,
    },
    /// A command line a policy file cannot hold.
    #[error("--cmdline {}: {problem}", clip(text))]
    Cmdline {
        /// The text given.
        text: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An image that cannot be read as an initramfs.
    #[error("{}: {reason}", image.display())]
    ImageUnreadable {
        /// The image.
        image: PathBuf,
        /// Why, as check-initramfs says it.
        reason: String,
    },
    /// An image with a module a boot would not accept.
    #[error("{}: module {}: {verdict}: {}", image.display(), clip(module), clip(reason))]
    ModuleFails {
        /// The image.
        image: PathBuf,
        /// The module's path in the image.
        module: String,
        /// Its verdict.
        verdict: Verdict,
        /// Why.
        reason: String,
    },
    /// An image without any kernel module.
    #[error("{}: no kernel module in the image", image.display())]
    NoModules {
        /// The image.
        image: PathBuf,
    },
    /// With the module set pinned: modules of more than one kernel release.
    #[error("{}: modules of several kernel releases ({}): the expected module set is ambiguous", image.display(), roots.join(", "))]
    ModuleTrees {
        /// The image.
        image: PathBuf,
        /// The module trees found.
        roots: Vec<String>,
    },
    /// The bundle has kernel signers and the image's derived anchor is not
    /// what one of the kernels yields.
    #[error("{0}")]
    DerivedAnchor(ImageAnchorError),
    /// The image's derived anchor is for another release than its modules:
    /// the boot stage would not trust it for them.
    #[error("{}: the derived anchor is for release {}, the image's modules are in {}", image.display(), clip(release), clip(root))]
    DerivedRelease {
        /// The image.
        image: PathBuf,
        /// The release the anchor names.
        release: String,
        /// The image's module tree.
        root: String,
    },
    /// With the module set pinned: a module path a policy file cannot hold.
    #[error(
        "{}: module path {} has spaces or control characters, or starts with '#'",
        image.display(),
        clip(module)
    )]
    ModulePath {
        /// The image.
        image: PathBuf,
        /// The module's path, relative to its tree.
        module: String,
    },
}

impl HostPolicyError {
    /// Whether the files were read and a boot from them would not pass (as
    /// opposed to input that could not be used at all).
    pub fn boot_would_fail(&self) -> bool {
        matches!(
            self,
            HostPolicyError::ImageUnreadable { .. }
                | HostPolicyError::ModuleFails { .. }
                | HostPolicyError::NoModules { .. }
                | HostPolicyError::ModuleTrees { .. }
                | HostPolicyError::ModulePath { .. }
                | HostPolicyError::DerivedAnchor(_)
                | HostPolicyError::DerivedRelease { .. }
        )
    }
}

/// The files a policy is made from.
#[derive(Debug, Clone)]
pub struct HostInput<'a> {
    /// The trust bundle's path (for messages and the anchors' parser).
    pub trust_path: &'a Path,
    /// Its exact bytes: the anchor is their SHA-256.
    pub bundle: &'a [u8],
    /// The files the boot chain is pinned to.
    pub chain: ChainFiles<'a>,
    /// Pin the module set (of the one image).
    pub expect_modules: bool,
    /// Verification threads.
    pub jobs: usize,
}

/// The files a boot chain is pinned to.
#[derive(Debug, Clone, Copy)]
pub struct ChainFiles<'a> {
    /// The initramfs images the boot may use.
    pub initrds: &'a [PathBuf],
    /// The kernel images the boot may use.
    pub kernels: &'a [PathBuf],
    /// EFI applications (boot loaders) the firmware may start before the
    /// kernel.
    pub boot_apps: &'a [PathBuf],
    /// Command lines the boot may have (none: any).
    pub cmdlines: &'a [String],
}

/// The Authenticode SHA-256 of each PE image in `files`, as the firmware
/// measures it into PCR 4 when it loads the image.
fn pe_digests(files: &[PathBuf]) -> Result<Vec<String>, HostPolicyError> {
    let mut out = Vec::new();
    for k in files {
        let bytes = read_capped(k, MAX_BOOT_FILE)?;
        out.push(pe_digest(k, &bytes)?);
    }
    Ok(out)
}

fn pe_digest(path: &Path, bytes: &[u8]) -> Result<String, HostPolicyError> {
    let digest = pe::authenticode_sha256(bytes).map_err(|source| HostPolicyError::NotPe {
        path: path.to_owned(),
        source,
    })?;
    Ok(crate::util::hex::lower(&digest))
}

/// Each kernel's digest, and the SHA-256 of every certificate built into
/// it: what a boot's derived anchor may name, whatever the bundle. A kernel
/// whose certificates cannot be read gets none, so no derived anchor of it
/// passes.
fn kernels(files: &[PathBuf]) -> Result<(Vec<String>, Vec<KernelCert>), HostPolicyError> {
    let mut digests = Vec::new();
    let mut certs = Vec::new();
    for k in files {
        let bytes = read_capped(k, MAX_BOOT_FILE)?;
        let kernel = pe_digest(k, &bytes)?;
        for der in extract_certificates(&bytes).unwrap_or_default() {
            certs.push(KernelCert {
                kernel: kernel.clone(),
                cert: crate::util::hex::lower(&crate::verify::algorithm::sha256(&der)),
            });
        }
        digests.push(kernel);
    }
    certs.sort();
    certs.dedup();
    Ok((digests, certs))
}

/// The boot-chain lines from the files: each initrd's SHA-256, each
/// kernel's and boot loader's Authenticode SHA-256, the command lines as
/// given.
pub fn boot_chain(files: &ChainFiles<'_>) -> Result<BootChain, HostPolicyError> {
    let (kernels, module_certs) = kernels(files.kernels)?;
    let mut chain = BootChain {
        kernels,
        boot_apps: pe_digests(files.boot_apps)?,
        module_certs,
        ..BootChain::default()
    };
    for i in files.initrds {
        let bytes = read_capped(i, MAX_BOOT_FILE)?;
        let digest = crate::verify::algorithm::sha256(&bytes);
        chain.initrds.push(crate::util::hex::lower(&digest));
    }
    for c in files.cmdlines {
        check_cmdline(c)?;
        chain.cmdlines.push(c.clone());
    }
    for v in [
        &mut chain.kernels,
        &mut chain.initrds,
        &mut chain.cmdlines,
        &mut chain.boot_apps,
    ] {
        v.sort();
        v.dedup();
    }
    Ok(chain)
}

/// A command line a policy line can hold verbatim: one line, some text.
fn check_cmdline(text: &str) -> Result<(), HostPolicyError> {
    let problem = if text.is_empty() {
        Some("empty: give the exact command line, or no --cmdline to allow any")
    } else if text.len() > MAX_CMDLINE {
        Some("longer than any kernel takes")
    } else if text.chars().any(char::is_control) {
        Some("holds a control character (a line break?): a policy line cannot")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(HostPolicyError::Cmdline {
            text: text.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// The policy a boot from these files passes: the bundle's digest as the
/// anchor, its sealed PCR and mode, the stages early then pre-pivot, every
/// module ok (and, if asked, the image's module set), and the boot chain.
/// Refuses an image a boot would fail on.
pub fn from_host(input: &HostInput<'_>) -> Result<Policy, HostPolicyError> {
    let bundle = crate::trust::read_bundle(input.trust_path, input.bundle)
        .map_err(HostPolicyError::Bundle)?;
    let trust = bundle_trust(input.trust_path, input.bundle).map_err(HostPolicyError::Bundle)?;
    let chain = boot_chain(&input.chain)?;
    let mode = sealed_mode(&bundle.settings);
    let anchor = crate::verify::algorithm::sha256(input.bundle);
    // With kernel signers, each image's derived anchor is trusted once it
    // is what one of the kernels yields: derived once for all images.
    let kernels = if bundle.kernel_signers.is_empty() {
        None
    } else {
        Some(derive_kernels(input.chain.kernels, &bundle.kernel_signers)?)
    };
    let mut modules = None;
    for image in input.chain.initrds {
        let derived = match &kernels {
            None => None,
            Some(k) => Some(
                image_anchor(image, k, &Limits::default())
                    .map_err(HostPolicyError::DerivedAnchor)?,
            ),
        };
        let mut trust = trust.clone();
        if let Some(d) = &derived {
            trust.anchors.extend(d.certs.iter().cloned());
        }
        let outcome = check_images(
            std::slice::from_ref(image),
            &trust,
            &crate::boot::sealed_options(&bundle.settings),
            input.jobs,
            &Limits::default(),
            &|_| {},
        );
        let content = predicted_content(
            image,
            &outcome.reports,
            Prediction {
                mode,
                anchor,
                anchors_loaded: !trust.anchors.is_empty(),
                derived: derived.as_ref(),
            },
        )?;
        if input.expect_modules {
            modules = Some(module_set(image, &content)?);
        }
    }
    let policy = Policy {
        pcr: bundle.settings.pcr,
        bank: PcrBank::Sha256,
        anchors: vec![crate::util::hex::lower(&anchor)],
        mode: match mode {
            Mode::Enforce => ModeRule::Enforce,
            Mode::Warn => ModeRule::Warn,
        },
        stages: vec![Stage::Early, Stage::PrePivot],
        allow_verdicts: vec![Verdict::Ok],
        allow_content_types: Vec::new(),
        modules,
        boot: Some(chain),
    };
    Ok(policy)
}

/// What a boot from an image starts from, besides its modules.
struct Prediction<'a> {
    /// The sealed mode.
    mode: Mode,
    /// The bundle's SHA-256.
    anchor: [u8; 32],
    /// Whether any anchor (the bundle's or the derived one) is loaded.
    anchors_loaded: bool,
    /// The image's derived anchor, checked against its kernel.
    derived: Option<&'a DerivedAnchor>,
}

/// The early stage's content for a boot from `image`, built as a boot
/// builds it; refuses an image it would fail on, naming the first module.
fn predicted_content(
    image: &Path,
    reports: &[Report],
    p: Prediction<'_>,
) -> Result<Content, HostPolicyError> {
    let shown = image.display().to_string();
    // The image's own failures are reported under its name.
    if let Some(r) = reports.iter().find(|r| r.path == shown) {
        return Err(HostPolicyError::ImageUnreadable {
            image: image.to_owned(),
            reason: r.reason.clone(),
        });
    }
    if let Some(r) = reports.iter().find(|r| r.verdict != Verdict::Ok) {
        return Err(HostPolicyError::ModuleFails {
            image: image.to_owned(),
            module: r.path.clone(),
            verdict: r.verdict,
            reason: r.reason.clone(),
        });
    }
    let roots = module_roots(reports);
    let [root] = roots.as_slice() else {
        return Err(if roots.is_empty() {
            HostPolicyError::NoModules {
                image: image.to_owned(),
            }
        } else {
            HostPolicyError::ModuleTrees {
                image: image.to_owned(),
                roots,
            }
        });
    };
    if let Some(d) = p.derived {
        // The stage trusts a derived anchor only for its own release.
        if !root.ends_with(&format!("/{}", d.release)) {
            return Err(HostPolicyError::DerivedRelease {
                image: image.to_owned(),
                release: d.release.clone(),
                root: root.clone(),
            });
        }
    }
    let in_tree: Vec<Report> = reports
        .iter()
        .filter(|r| r.path.starts_with(&format!("{root}/")))
        .cloned()
        .collect();
    let content = stage_content(Findings {
        stage: Stage::Early,
        mode: p.mode,
        anchor_sha256: Some(p.anchor),
        unseal: UnsealOutcome::Ok,
        anchors_loaded: p.anchors_loaded,
        derived: p.derived,
        reports: &in_tree,
        modules_root: Path::new(root.as_str()),
        unverified_loaded: Some(Vec::new()),
        checks: StageChecks::default(),
    });
    if !content.passed() {
        // Every module verified: only an empty trust store fails a stage here.
        return Err(HostPolicyError::ModuleFails {
            image: image.to_owned(),
            module: in_tree.first().map(|r| r.path.clone()).unwrap_or_default(),
            verdict: Verdict::UnknownKey,
            reason: "the trust bundle has no anchor".into(),
        });
    }
    Ok(content)
}

/// The module trees (`…lib/modules/<release>`) the reports' paths are in,
/// sorted.
fn module_roots(reports: &[Report]) -> Vec<String> {
    const DIR: &str = "lib/modules/";
    let mut roots: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let at = r.path.find(DIR)?.checked_add(DIR.len())?;
            let rest = r.path.get(at..)?;
            let release_len = rest.find('/')?;
            r.path
                .get(..at.checked_add(release_len)?)
                .map(str::to_owned)
        })
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// The module set a boot from the image records, sorted by path.
fn module_set(image: &Path, content: &Content) -> Result<Vec<ExpectedModule>, HostPolicyError> {
    let mut set = Vec::with_capacity(content.modules.len());
    for m in &content.modules {
        let sha256 = m.sha256.as_deref().and_then(super::sha256_hex);
        let (Some(sha256), true) = (sha256, path_is_writable(&m.path)) else {
            return Err(HostPolicyError::ModulePath {
                image: image.to_owned(),
                module: m.path.clone(),
            });
        };
        set.push(ExpectedModule {
            sha256,
            path: m.path.clone(),
        });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(path: &str, verdict: Verdict) -> Report {
        Report {
            path: path.into(),
            verdict,
            reason: if verdict == Verdict::Ok {
                String::new()
            } else {
                "bad\x1b[0m".into()
            },
            signer: None,
            key_id: None,
            hash_algo: None,
            sha256: Some("ab".repeat(32)),
            build_id_note: None,
        }
    }

    fn at(mode: Mode, anchors_loaded: bool) -> Prediction<'static> {
        Prediction {
            mode,
            anchor: [0; 32],
            anchors_loaded,
            derived: None,
        }
    }

    #[test]
    fn module_trees_are_found_by_release() {
        let reports = [
            report("usr/lib/modules/6.1.0/kernel/a.ko", Verdict::Ok),
            report("usr/lib/modules/6.1.0/kernel/b/c.ko.xz", Verdict::Ok),
            report("lib/modules/6.12.0/kernel/d.ko", Verdict::Ok),
            report("opt/e.ko", Verdict::Ok),
        ];
        assert_eq!(
            module_roots(&reports),
            vec!["lib/modules/6.12.0", "usr/lib/modules/6.1.0"]
        );
        let e = predicted_content(Path::new("img"), &reports, at(Mode::Enforce, true)).unwrap_err();
        assert!(matches!(e, HostPolicyError::ModuleTrees { .. }), "{e}");
        let c =
            predicted_content(Path::new("img"), &reports[..2], at(Mode::Enforce, true)).unwrap();
        let paths: Vec<&str> = c.modules.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["kernel/a.ko", "kernel/b/c.ko.xz"]);
        assert_eq!(module_set(Path::new("img"), &c).unwrap().len(), 2);
        assert!(c.derived_anchor.is_none());
        // A derived anchor: recorded as the stage records it, for its own
        // release only.
        let cert = crate::trust::cert::Certificate::from_der(include_bytes!(
            "../../trust/testdata/test-kernel-key.der"
        ))
        .unwrap();
        let mut d = DerivedAnchor {
            release: "6.1.0".into(),
            kernel_sha256: [0xc3; 32],
            image_signer: "Signer".into(),
            certs: vec![cert],
        };
        let with = |d: &DerivedAnchor| {
            predicted_content(
                Path::new("img"),
                &reports[..2],
                Prediction {
                    derived: Some(d),
                    ..at(Mode::Enforce, true)
                },
            )
        };
        let c = with(&d).unwrap();
        assert_eq!(
            c.derived_anchor,
            Some(crate::measure::DerivedRecord::of(&d))
        );
        d.release = "6.12.0".into();
        assert_eq!(
            with(&d).unwrap_err().to_string(),
            "img: the derived anchor is for release 6.12.0, the image's modules are in usr/lib/modules/6.1.0"
        );
    }

    #[test]
    fn failing_images_are_named_and_are_refusals() {
        let bad = [
            report("usr/lib/modules/6.1.0/kernel/a.ko", Verdict::Ok),
            report("usr/lib/modules/6.1.0/kernel/b.ko", Verdict::BadSignature),
        ];
        let e = predicted_content(Path::new("img"), &bad, at(Mode::Warn, true)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "img: module usr/lib/modules/6.1.0/kernel/b.ko: bad-signature: bad?[0m"
        );
        assert!(e.boot_would_fail());
        let e = predicted_content(Path::new("img"), &bad[..1], at(Mode::Warn, false)).unwrap_err();
        assert!(e.to_string().contains("no anchor"), "{e}");
        let e = predicted_content(Path::new("img"), &[], at(Mode::Warn, true)).unwrap_err();
        assert_eq!(e.to_string(), "img: no kernel module in the image");
        let broken = [report("img", Verdict::Malformed)];
        let e = predicted_content(Path::new("img"), &broken, at(Mode::Warn, true)).unwrap_err();
        assert!(matches!(e, HostPolicyError::ImageUnreadable { .. }), "{e}");
    }

    #[test]
    fn command_lines_must_fit_one_policy_line() {
        assert!(check_cmdline("console=ttyS0  root=/dev/vda # x").is_ok());
        for bad in ["", "a\nb", "a\rb", &"x".repeat(MAX_CMDLINE + 1)] {
            let e = check_cmdline(bad).unwrap_err();
            assert!(!e.boot_would_fail());
        }
        let cmdlines = ["b".to_owned(), "a".into(), "b".into()];
        let chain = boot_chain(&ChainFiles {
            initrds: &[],
            kernels: &[],
            boot_apps: &[],
            cmdlines: &cmdlines,
        })
        .unwrap();
        assert_eq!(chain.cmdlines, ["a", "b"]);
        assert_eq!(chain.cmdlines, vec!["a".to_owned(), "b".into()]);
    }
}
