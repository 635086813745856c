//! `modseal keys`: certificates out of a kernel image.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{usage_error, EXIT_FAIL, EXIT_OK};
use crate::image::authenticode::verify_image;
use crate::image::kernel_image::extract_certificates;
use crate::trust::cert::Certificate;
use crate::trust::TrustStore;

/// The subcommands of `modseal keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the X.509 certificates built into a kernel image (bzImage with a gzip, xz, zstd or lz4 payload, or vmlinux) as PEM.
    FromKernel {
        // A doc comment would become this argument's help text, which stays
        // as it is (the help output is part of the interface).
        // Optional: without it, the running kernel's image (running_kernel_image).
        #[allow(missing_docs)]
        #[arg(value_name = "VMLINUZ")]
        image: Option<PathBuf>,
        /// Print the certificates only if the image's Authenticode signature verifies against this Secure Boot CA (PEM or DER; may be repeated)
        #[arg(long, value_name = "CA.pem")]
        signer: Vec<PathBuf>,
    },
    /// Write the derived anchor of a kernel image: its built-in certificates, once its Authenticode signature verifies against the trust bundle's kernel-signer CAs (what the dracut module installs as /etc/modseal/derived-anchor).
    Derive(super::derive::DeriveArgs),
}

/// `modseal keys …`.
pub fn cmd_keys(cmd: KeysCommand) -> u8 {
    match cmd {
        KeysCommand::FromKernel { image, signer } => {
            let image = match image {
                Some(i) => i,
                None => match running_kernel_image(Path::new("/")) {
                    Ok(i) => {
                        eprintln!(
                            "modseal: no VMLINUZ given: using {}, the running kernel's image",
                            i.display()
                        );
                        i
                    }
                    Err(e) => return usage_error(format!("no VMLINUZ given and {e}")),
                },
            };
            from_kernel(&image, &signer)
        }
        KeysCommand::Derive(a) => super::derive::cmd_derive(a),
    }
}

/// Why the running kernel's image was not found.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NoRunningImage {
    /// `proc/sys/kernel/osrelease` (what `uname -r` prints) unreadable or unusable.
    #[error("the running kernel's release cannot be read from {path}: {reason}")]
    Release { path: PathBuf, reason: String },
    /// Neither place Debian keeps the image holds it.
    #[error("the running kernel's image is neither {boot} nor {usr}")]
    Missing { boot: PathBuf, usr: PathBuf },
}

/// The running kernel's image under `root`: `boot/vmlinuz-$(uname -r)`
/// (where 6.x packages and the `/usr/share/kernel/postinst.d/00-legacy-boot`
/// hook of Debian's 7.x packaging put it), else
/// `usr/lib/modules/$(uname -r)/vmlinuz` (where 7.x's `linux-binary-*`
/// package installs it). `root` is `/` except in tests.
pub(crate) fn running_kernel_image(root: &Path) -> Result<PathBuf, NoRunningImage> {
    let path = root.join("proc/sys/kernel/osrelease");
    let release = crate::util::read::read_capped_string(&path, 4096).map_err(|e| {
        NoRunningImage::Release {
            path: path.clone(),
            reason: e.to_string(),
        }
    })?;
    let release = release.trim();
    // The release becomes a path component: nothing that could leave the directory.
    if release.is_empty() || release.contains('/') || release.starts_with('.') {
        return Err(NoRunningImage::Release {
            path,
            reason: format!("{release:?} is not a kernel release"),
        });
    }
    let boot = root.join("boot").join(format!("vmlinuz-{release}"));
    let usr = root.join("usr/lib/modules").join(release).join("vmlinuz");
    if boot.is_file() {
        Ok(boot)
    } else if usr.is_file() {
        Ok(usr)
    } else {
        Err(NoRunningImage::Missing { boot, usr })
    }
}

/// PEM on standard output, each certificate's name on standard error (the
/// PEM stays pipeable into a file of anchors).
fn from_kernel(image: &Path, signers: &[PathBuf]) -> u8 {
    let bytes = match std::fs::read(image) {
        Ok(b) => b,
        Err(e) => return usage_error(format!("{}: cannot read: {e}", image.display())),
    };
    if !signers.is_empty() {
        if let Err(code) = check_signature(image, &bytes, signers) {
            return code;
        }
    }
    let certs = match extract_certificates(&bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", image.display());
            return EXIT_FAIL;
        }
    };
    let mut out = std::io::stdout().lock();
    for der in &certs {
        let name = Certificate::from_der(der)
            .map(|c| c.name)
            .unwrap_or_default();
        eprintln!("modseal: {}: certificate '{name}'", image.display());
        if write!(out, "{}", crate::util::pem::encode("CERTIFICATE", der)).is_err() {
            return EXIT_FAIL;
        }
    }
    EXIT_OK
}

/// `--signer`: the image's Authenticode signature against the CAs, before
/// anything is printed. Err is the exit status.
fn check_signature(image: &Path, bytes: &[u8], signers: &[PathBuf]) -> Result<(), u8> {
    let mut cas = TrustStore::default();
    for path in signers {
        if let Err(e) = cas.add_trust_file(path) {
            return Err(usage_error(e));
        }
    }
    match verify_image(bytes, &cas.anchors) {
        Ok(signed) => {
            eprintln!(
                "modseal: {}: Authenticode signature verified: signer '{}', issued by '{}' ({} {})",
                image.display(),
                signed.signer.name,
                signed.anchor.name,
                signed.digest_algo,
                crate::util::hex::lower(&signed.digest)
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("modseal: error: {}: {e}", image.display());
            Err(EXIT_FAIL)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(release: &str, files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("proc/sys/kernel")).unwrap();
        std::fs::write(t.path().join("proc/sys/kernel/osrelease"), release).unwrap();
        for f in files {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"MZ").unwrap();
        }
        t
    }

    #[test]
    fn boot_image_first() {
        let r = root_with(
            "7.3.4+deb13-amd64\n",
            &[
                "boot/vmlinuz-7.3.4+deb13-amd64",
                "usr/lib/modules/7.3.4+deb13-amd64/vmlinuz",
            ],
        );
        assert_eq!(
            running_kernel_image(r.path()).unwrap(),
            r.path().join("boot/vmlinuz-7.3.4+deb13-amd64")
        );
    }

    #[test]
    fn usr_lib_modules_image_of_7x_packaging() {
        let r = root_with(
            "7.3.4+deb13-amd64\n",
            &["usr/lib/modules/7.3.4+deb13-amd64/vmlinuz"],
        );
        assert_eq!(
            running_kernel_image(r.path()).unwrap(),
            r.path().join("usr/lib/modules/7.3.4+deb13-amd64/vmlinuz")
        );
    }

    #[test]
    fn neither_names_both_paths() {
        // Another release's image does not count.
        let r = root_with("6.12.118+deb13-amd64\n", &["boot/vmlinuz-6.1.0-57-amd64"]);
        let e = running_kernel_image(r.path()).unwrap_err();
        let msg = e.to_string();
        let boot = r.path().join("boot/vmlinuz-6.12.118+deb13-amd64");
        let usr = r
            .path()
            .join("usr/lib/modules/6.12.118+deb13-amd64/vmlinuz");
        assert!(msg.contains(&boot.display().to_string()), "{msg}");
        assert!(msg.contains(&usr.display().to_string()), "{msg}");
        // A directory by the image's name is not an image.
        std::fs::create_dir_all(&usr).unwrap();
        assert!(matches!(
            running_kernel_image(r.path()),
            Err(NoRunningImage::Missing { .. })
        ));
    }

    #[test]
    fn unusable_release() {
        let r = root_with("../../etc\n", &[]);
        assert!(matches!(
            running_kernel_image(r.path()),
            Err(NoRunningImage::Release { .. })
        ));
        let none = tempfile::tempdir().unwrap();
        let e = running_kernel_image(none.path()).unwrap_err();
        assert!(e.to_string().contains("proc/sys/kernel/osrelease"), "{e}");
    }
}
