//! The derived anchor at boot: the certificates the dracut module took from
//! the kernel image after checking its Authenticode signature against a
//! sealed `kernel-signer` CA.
//!
//! The file is as writable as the rest of the initramfs, so the stage trusts
//! it only when the bundle has kernel signers, only for the running kernel's
//! release, and only when every certificate in it has a subject key
//! identifier that names a key the running kernel holds (`/proc/keys`, in
//! the kernel's own description: the subject, then that identifier in hex).
//! A file swapped for another certificate fails here. The check binds the
//! identifier, not the key (user space cannot read a built-in key), so what
//! binds the certificates to the kernel is the kernel's own signature check
//! at load time and the verifier, which checks the recorded certificates
//! against the kernel the firmware measured (docs/kernel-updates.md).

use std::path::Path;

use crate::trust::derived::{parse_derived, DerivedAnchor};
use crate::trust::Bundle;

use super::config::Config;
use super::system::kernel_release;

/// Bound on `/proc/keys` (a few hundred keys at most at boot).
const MAX_PROC_KEYS: usize = 1 << 20;

/// The derived anchor the stage trusts, or `None` (bundle without kernel
/// signers, or a refusal, which is a problem).
pub(super) fn derived_step(
    cfg: &Config,
    bundle: Option<&Bundle>,
    system_root: &Path,
    problems: &mut Vec<String>,
) -> Option<DerivedAnchor> {
    if bundle?.kernel_signers.is_empty() {
        return None;
    }
    match load(cfg, system_root) {
        Ok(d) => Some(d),
        Err(why) => {
            problems.push(format!(
                "derived anchor {}: {why}: not trusted",
                cfg.derived.display()
            ));
            None
        }
    }
}

fn load(cfg: &Config, system_root: &Path) -> Result<DerivedAnchor, String> {
    let bytes = crate::util::read::read_capped(&cfg.derived, crate::trust::MAX_TRUST_FILE)
        .map_err(|e| {
            format!("{e} (the trust bundle trusts kernel signers, so the image must carry the running kernel's certificates: the dracut module writes them)")
        })?;
    let d = parse_derived(&cfg.derived, &bytes).map_err(|e| e.to_string())?;
    let release = kernel_release(system_root);
    if d.release != release {
        return Err(format!(
            "made for kernel {}, the running kernel is {}",
            d.release,
            if release.is_empty() {
                "unknown"
            } else {
                &release
            }
        ));
    }
    let keys = crate::util::read::read_capped_string(&system_root.join("proc/keys"), MAX_PROC_KEYS)
        .map_err(|e| format!("cannot list the running kernel's keys: {e}"))?;
    for c in &d.certs {
        // Without one the kernel describes the key by its serial, which
        // any certificate can copy: kernel build keys always have one.
        let Some(skid) = c.skid.as_deref() else {
            return Err(format!(
                "certificate '{}' has no subject key identifier",
                c.name
            ));
        };
        if !kernel_holds(&keys, skid) {
            return Err(format!(
                "certificate '{}' (key id {}) is not a key of the running kernel",
                c.name,
                crate::util::hex::lower(skid)
            ));
        }
    }
    Ok(d)
}

/// Whether `/proc/keys` lists an asymmetric key described as `…: <skid>`
/// (`x509_key_preparse`: lower-case hex).
fn kernel_holds(proc_keys: &str, skid: &[u8]) -> bool {
    let needle = format!(": {}", crate::util::hex::lower(skid));
    proc_keys.lines().any(|line| {
        // serial flags usage expiry perm uid gid type description…
        let mut fields = line.split_whitespace();
        let is_asymmetric = fields.nth(7).is_some_and(|t| t.starts_with("asymmetri"));
        is_asymmetric
            && line.match_indices(&needle).any(|(at, _)| {
                // The id must end there: not a prefix of a longer one.
                line[at + needle.len()..]
                    .chars()
                    .next()
                    .is_none_or(|ch| ch == ':' || ch.is_whitespace())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> crate::trust::cert::Certificate {
        crate::trust::cert::Certificate::from_der(include_bytes!(
            "../trust/testdata/test-kernel-key.der"
        ))
        .expect("test cert")
    }

    #[test]
    fn only_an_asymmetric_key_with_the_whole_id_counts() {
        let c = cert();
        let skid = c.skid.clone().expect("a subject key identifier");
        let id = crate::util::hex::lower(&skid);
        let c = skid.as_slice();
        let line = |ty: &str, desc: &str| {
            format!("1b2c3d4e I------     1 perm 1f030000     0     0 {ty} {desc}\n")
        };
        let good = line(
            "asymmetri",
            &format!("modseal test kernel key: {id}: X509.ecdsa {} []", &id[32..]),
        );
        assert!(kernel_holds(&good, c));
        assert!(!kernel_holds(&line("user     ", &format!("x: {id}")), c));
        assert!(!kernel_holds(
            &line("asymmetri", &format!("x: {id}00: X509")),
            c
        ));
        assert!(!kernel_holds(
            &line("asymmetri", &format!("x: {}: X509", &id[2..])),
            c
        ));
        assert!(!kernel_holds("", c));
    }
}
