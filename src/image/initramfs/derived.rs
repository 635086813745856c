//! The derived anchor an image carries, checked before anything trusts it.
//!
//! With a bundle of `kernel-signer` CAs, the dracut module puts into each
//! image the certificates built into its kernel (`modseal keys derive`), at
//! [`DERIVED_PATH`]; the boot stage trusts them as module anchors. The file
//! is not sealed, so a host check (`check-initramfs`, `attest
//! --make-policy`) trusts it only once it is exactly what
//! [`derive_anchor`] gives for one of the kernel images it was given: the
//! same kernel digest and the same certificates. An image whose file was
//! swapped, or made for another kernel, is a named failure.

use std::path::{Path, PathBuf};

use super::cpio::{Limits, Wanted};
use super::error::InitramfsError;
use crate::image::derive::{derive_anchor, DeriveError, MAX_KERNEL_FILE};
use crate::trust::cert::Certificate;
use crate::trust::derived::{parse_derived, DerivedAnchor};
use crate::trust::TrustError;
use crate::util::hex;
use crate::util::read::{read_capped, ReadError};
use crate::util::text::clip;

/// Where an image holds its derived anchor (the boot configuration's
/// `derived` default, `/etc/modseal/derived-anchor`), as entries are named.
pub const DERIVED_PATH: &str = "etc/modseal/derived-anchor";

/// Largest derived-anchor file read (a handful of certificates).
const MAX_DERIVED_FILE: usize = 1 << 20;

/// One kernel image given, and the anchor it yields (its release left
/// empty: the image's file says which release it is for).
#[derive(Debug)]
pub struct KernelAnchor {
    /// The kernel image's path.
    pub path: PathBuf,
    /// Its derived anchor, or why it has none.
    pub derived: Result<DerivedAnchor, DeriveError>,
}

/// Reads each kernel image and derives its anchor against `signers`, once
/// for all the images checked against them.
pub fn derive_kernels(
    kernels: &[PathBuf],
    signers: &[Certificate],
) -> Result<Vec<KernelAnchor>, ReadError> {
    kernels
        .iter()
        .map(|k| {
            let bytes = read_capped(k, MAX_KERNEL_FILE)?;
            Ok(KernelAnchor {
                path: k.clone(),
                derived: derive_anchor(&bytes, signers, ""),
            })
        })
        .collect()
}

/// Why an image's derived anchor is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageAnchorError {
    /// The image could not be read.
    #[error("{}: {source}", image.display())]
    Unreadable {
        /// The image.
        image: PathBuf,
        /// Why.
        source: InitramfsError,
    },
    /// The image holds no derived anchor.
    #[error("{}: no /{DERIVED_PATH}: the trust bundle has kernel-signer certificates, so the image needs the anchor its kernel yields (the dracut module installs it)", image.display())]
    Missing {
        /// The image.
        image: PathBuf,
    },
    /// The path holds something other than a plain file, or a large one.
    #[error("{}: /{DERIVED_PATH} is {what}", image.display())]
    NotAFile {
        /// The image.
        image: PathBuf,
        /// What it is.
        what: String,
    },
    /// The file does not parse.
    #[error("{0}")]
    Parse(TrustError),
    /// No kernel given yields the file's kernel digest.
    #[error("{}: /{DERIVED_PATH} is the anchor of kernel {kernel} (release {}), which is none of the --kernel images ({tried})", image.display(), clip(release))]
    NoKernel {
        /// The image.
        image: PathBuf,
        /// The kernel digest the file names, hex.
        kernel: String,
        /// The release it names.
        release: String,
        /// What each kernel image is, or why it yields no anchor.
        tried: String,
    },
    /// The kernel matches, its certificates do not.
    #[error("{}: /{DERIVED_PATH} is not the anchor kernel {} yields: {difference}", image.display(), kernel.display())]
    Certificates {
        /// The image.
        image: PathBuf,
        /// The kernel image of that digest.
        kernel: PathBuf,
        /// The first certificate that differs, named.
        difference: String,
    },
}

/// The image's derived anchor, once it is exactly what one of `kernels`
/// yields (its release aside).
pub fn image_anchor(
    image: &Path,
    kernels: &[KernelAnchor],
    limits: &Limits,
) -> Result<DerivedAnchor, ImageAnchorError> {
    let found = super::read_image_file(image, DERIVED_PATH, MAX_DERIVED_FILE, limits).map_err(
        |source| ImageAnchorError::Unreadable {
            image: image.to_owned(),
            source,
        },
    )?;
    let not_a_file = |what: String| ImageAnchorError::NotAFile {
        image: image.to_owned(),
        what,
    };
    let bytes = match found {
        None => {
            return Err(ImageAnchorError::Missing {
                image: image.to_owned(),
            })
        }
        Some(Wanted::File(b)) => b,
        Some(Wanted::TooLarge(size)) => {
            return Err(not_a_file(format!(
                "{size} bytes, more than the {MAX_DERIVED_FILE}-byte limit"
            )))
        }
        Some(Wanted::NotRegular(what)) => return Err(not_a_file(format!("a {what}, not a file"))),
    };
    let shown = PathBuf::from(format!("{}:/{DERIVED_PATH}", image.display()));
    let file = parse_derived(&shown, &bytes).map_err(ImageAnchorError::Parse)?;
    let Some(kernel) = kernels.iter().find(|k| {
        k.derived
            .as_ref()
            .is_ok_and(|d| d.kernel_sha256 == file.kernel_sha256)
    }) else {
        return Err(ImageAnchorError::NoKernel {
            image: image.to_owned(),
            kernel: hex::lower(&file.kernel_sha256),
            release: file.release.clone(),
            tried: tried(kernels),
        });
    };
    if let Ok(d) = &kernel.derived {
        if let Some(difference) = difference(&file.certs, &d.certs) {
            return Err(ImageAnchorError::Certificates {
                image: image.to_owned(),
                kernel: kernel.path.clone(),
                difference,
            });
        }
    }
    Ok(file)
}

/// What each kernel given is: its digest, or why it yields no anchor.
fn tried(kernels: &[KernelAnchor]) -> String {
    if kernels.is_empty() {
        return "none given".into();
    }
    let v: Vec<String> = kernels
        .iter()
        .map(|k| match &k.derived {
            Ok(d) => format!(
                "{}: kernel {}",
                k.path.display(),
                hex::lower(&d.kernel_sha256)
            ),
            Err(e) => format!("{}: {e}", k.path.display()),
        })
        .collect();
    v.join("; ")
}

/// `sha256 16 hex… (subject)` of a certificate.
fn describe(c: &Certificate) -> String {
    let sha = hex::lower(&crate::verify::algorithm::sha256(&c.der));
    format!(
        "certificate {}… ({})",
        sha.get(..16).unwrap_or(&sha),
        clip(&c.name)
    )
}

/// The first certificate of the file that the kernel does not hold, else
/// the first the kernel holds that the file lacks.
fn difference(file: &[Certificate], kernel: &[Certificate]) -> Option<String> {
    let holds = |set: &[Certificate], c: &Certificate| set.iter().any(|x| x.der == c.der);
    if let Some(c) = file.iter().find(|c| !holds(kernel, c)) {
        return Some(format!("{} is not built into it", describe(c)));
    }
    kernel
        .iter()
        .find(|c| !holds(file, c))
        .map(|c| format!("it lacks {}, built into the kernel", describe(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_names_the_certificate() {
        let c = Certificate::from_der(include_bytes!("../../trust/testdata/test-kernel-key.der"))
            .unwrap();
        let one = std::slice::from_ref(&c);
        assert_eq!(difference(one, one), None);
        let named = describe(&c);
        assert!(
            named.starts_with("certificate ") && named.contains("… ("),
            "{named}"
        );
        assert_eq!(
            difference(one, &[]),
            Some(format!("{named} is not built into it"))
        );
        assert_eq!(
            difference(&[], one),
            Some(format!("it lacks {named}, built into the kernel"))
        );
        assert_eq!(tried(&[]), "none given");
    }
}
