//! The derived anchor of a kernel image: its built-in certificates, trusted
//! because the image's Authenticode signature chains to a sealed
//! `kernel-signer` CA (the chain shim follows under Secure Boot; the
//! kernel then trusts those same certificates for its modules).

use crate::image::authenticode::{verify_image, AuthenticodeError};
use crate::image::kernel_image::{extract_certificates, KernelImageError};
use crate::trust::cert::Certificate;
use crate::trust::derived::{DerivedAnchor, MAX_DERIVED_CERTS};
use crate::trust::CertError;

/// A kernel image file larger than this is refused before reading.
pub const MAX_KERNEL_FILE: usize = 256 << 20;

/// Why a kernel image yields no derived anchor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeriveError {
    /// The bundle has no kernel signer to check the image against.
    #[error("the trust bundle has no kernel-signer certificate")]
    NoKernelSigner,
    /// The image's signature is missing, broken or by another CA.
    #[error("Authenticode signature: {0}")]
    Signature(#[from] AuthenticodeError),
    /// The verified image yields no certificate.
    #[error("built-in certificates: {0}")]
    Certificates(#[from] KernelImageError),
    /// A built-in certificate that the scan found does not parse as ours.
    #[error("built-in certificate {number}: {source}")]
    Certificate {
        /// Its position, from 1.
        number: usize,
        /// Why.
        source: CertError,
    },
    /// More built-in certificates than a derived anchor holds.
    #[error("{0} built-in certificates (at most {MAX_DERIVED_CERTS})")]
    TooMany(usize),
}

/// Verifies `image` (the whole vmlinuz) against `signers`, then takes its
/// built-in certificates: the derived anchor for kernel `release`.
pub fn derive_anchor(
    image: &[u8],
    signers: &[Certificate],
    release: &str,
) -> Result<DerivedAnchor, DeriveError> {
    if signers.is_empty() {
        return Err(DeriveError::NoKernelSigner);
    }
    // The signature first: nothing is read out of an image it does not cover.
    let signed = verify_image(image, signers)?;
    let ders = extract_certificates(image)?;
    if ders.len() > MAX_DERIVED_CERTS {
        return Err(DeriveError::TooMany(ders.len()));
    }
    let certs = ders
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|source| DeriveError::Certificate {
                number: i + 1,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DerivedAnchor {
        release: release.to_owned(),
        kernel_sha256: signed.sha256,
        image_signer: signed.signer.name,
        certs,
    })
}
