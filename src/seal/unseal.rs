//! Unsealing: the boot's check that the trust bundle is the one enrolled.

use std::path::Path;

use crate::tpm::{tpm2b, SealedBlob, Tpm, TpmError};
use crate::util::read::read_capped;

use super::info::{pcr_read_shape, SealedInfo};
use super::layout::{MAX_SEALED_JSON, SEALED_JSON, SEALED_PRIV, SEALED_PUB};

/// Why the unseal-and-compare step failed. Each variant has a stable short
/// name ([`UnsealFailure::name`]) that the boot flow measures; `Display`
/// gives `name: details`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsealFailure {
    /// No TPM at the TCTI (no device node, connection refused, link lost).
    NoTpm(String),
    /// The PCRs differ from the enrolled state; `pcrs` lists those that
    /// differ (empty if they changed back before they could be named).
    PcrChanged {
        /// The PCRs that differ.
        pcrs: Vec<u8>,
        /// What differs, for the operator.
        detail: String,
    },
    /// The sealed object does not load or is not what modseal makes: made by
    /// another TPM, or corrupt.
    BadObject(String),
    /// The unsealed digest is not the bundle's SHA-256.
    DigestMismatch {
        /// The sealed digest (hex).
        sealed: String,
        /// The bundle's SHA-256 (hex).
        bundle: String,
    },
    /// The storage root key's name is not the one `sealed.json` pins; its
    /// name is `bad-object` (the object is not one of this key's).
    SrkMismatch {
        /// The SRK (`primary`, `persistent:0x…`).
        srk: String,
        /// The name `sealed.json` pins (hex).
        pinned: String,
        /// The name of the public area the TPM returned (hex).
        found: String,
    },
    /// The TPM is in dictionary-attack lockout.
    Lockout(String),
    /// Any other TPM failure (named operation and decoded return code).
    Tpm(String),
    /// The enrollment files cannot be read.
    Io(String),
    /// `sealed.json` is malformed or inconsistent.
    Invalid(String),
}

impl UnsealFailure {
    /// The stable short name: `no-tpm`, `pcr-changed`, `bad-object`,
    /// `digest-mismatch`, `lockout`, `tpm-error`, `io`, `invalid`.
    pub fn name(&self) -> &'static str {
        match self {
            UnsealFailure::NoTpm(_) => "no-tpm",
            UnsealFailure::PcrChanged { .. } => "pcr-changed",
            UnsealFailure::BadObject(_) | UnsealFailure::SrkMismatch { .. } => "bad-object",
            UnsealFailure::DigestMismatch { .. } => "digest-mismatch",
            UnsealFailure::Lockout(_) => "lockout",
            UnsealFailure::Tpm(_) => "tpm-error",
            UnsealFailure::Io(_) => "io",
            UnsealFailure::Invalid(_) => "invalid",
        }
    }

    /// The outcome a stage record carries for this failure.
    pub fn outcome(&self) -> crate::measure::UnsealOutcome {
        use crate::measure::UnsealOutcome as O;
        match self {
            UnsealFailure::NoTpm(_) => O::NoTpm,
            UnsealFailure::PcrChanged { .. } => O::PcrChanged,
            UnsealFailure::BadObject(_) | UnsealFailure::SrkMismatch { .. } => O::BadObject,
            UnsealFailure::DigestMismatch { .. } => O::DigestMismatch,
            UnsealFailure::Lockout(_) => O::Lockout,
            UnsealFailure::Tpm(_) => O::TpmError,
            UnsealFailure::Io(_) => O::Io,
            UnsealFailure::Invalid(_) => O::Invalid,
        }
    }

    /// Whether this is the caller's input being wrong (exit 2 for the
    /// `unseal` command) rather than the check failing (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(self, UnsealFailure::Io(_) | UnsealFailure::Invalid(_))
    }

    fn detail(&self) -> String {
        match self {
            UnsealFailure::NoTpm(d)
            | UnsealFailure::BadObject(d)
            | UnsealFailure::Lockout(d)
            | UnsealFailure::Tpm(d)
            | UnsealFailure::Io(d)
            | UnsealFailure::Invalid(d) => d.clone(),
            UnsealFailure::PcrChanged { detail, .. } => detail.clone(),
            UnsealFailure::SrkMismatch { srk, pinned, found } => format!(
                "the storage root key ({srk}) has name {found}, but sealed.json pins {pinned}: not the key the object was sealed under (another TPM, a cleared owner hierarchy, another key at the handle, or something between modseal and the TPM answering for it); no session was salted with it"
            ),
            UnsealFailure::DigestMismatch { sealed, bundle } => format!(
                "the trust bundle's SHA-256 {bundle} is not the sealed digest {sealed}: the bundle was changed since enrollment"
            ),
        }
    }
}

impl std::fmt::Display for UnsealFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name(), self.detail())
    }
}

impl std::error::Error for UnsealFailure {}

impl From<TpmError> for UnsealFailure {
    fn from(e: TpmError) -> Self {
        let text = e.to_string();
        match e {
            TpmError::NoDevice { .. } => UnsealFailure::NoTpm(text),
            TpmError::Lockout { .. } => UnsealFailure::Lockout(text),
            TpmError::BadObject { .. } => UnsealFailure::BadObject(text),
            TpmError::SrkMismatch { srk, pinned, found } => {
                UnsealFailure::SrkMismatch { srk, pinned, found }
            }
            TpmError::PolicyMismatch { .. } | TpmError::PcrChanged { .. } => {
                UnsealFailure::PcrChanged {
                    pcrs: Vec::new(),
                    detail: text,
                }
            }
            TpmError::Invalid(_) => UnsealFailure::Invalid(text),
            _ => UnsealFailure::Tpm(text),
        }
    }
}

/// An enrollment read from its directory and checked off the TPM.
#[derive(Debug, Clone)]
pub struct Enrollment {
    /// `sealed.json`.
    pub info: SealedInfo,
    /// `sealed.pub` and `sealed.priv`.
    pub blob: SealedBlob,
}

/// Reads an enrollment directory: `sealed.json` parsed and validated, the
/// sealed object's public area checked to be a policy-only sealed object whose
/// policy is `sealed.json`'s.
pub fn load_enrollment(dir: &Path) -> Result<Enrollment, UnsealFailure> {
    let json = read_capped(&dir.join(SEALED_JSON), MAX_SEALED_JSON)
        .map_err(|e| UnsealFailure::Io(e.to_string()))?;
    let info = SealedInfo::from_json(&json)
        .map_err(|e| UnsealFailure::Invalid(format!("{}: {e}", dir.join(SEALED_JSON).display())))?;
    let read = |name: &str| -> Result<Vec<u8>, UnsealFailure> {
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Err(e) => Err(UnsealFailure::Io(format!("{}: {e}", path.display()))),
            Ok(m) if m.len() > tpm2b::MAX_FILE as u64 => Err(UnsealFailure::BadObject(format!(
                "{}: {} bytes, not a sealed object file",
                path.display(),
                m.len()
            ))),
            Ok(_) => {
                read_capped(&path, tpm2b::MAX_FILE).map_err(|e| UnsealFailure::Io(e.to_string()))
            }
        }
    };
    let public = read(SEALED_PUB)?;
    let private = read(SEALED_PRIV)?;
    let bad = |e: tpm2b::Tpm2bError| {
        UnsealFailure::BadObject(format!("{}: {e}", dir.join(SEALED_PUB).display()))
    };
    let tpmt = tpm2b::decode_file(SEALED_PUB, &public).map_err(bad)?;
    tpm2b::SealedPublic::parse(tpmt)
        .map_err(bad)?
        .verify(&info.policy_digest)
        .map_err(bad)?;
    tpm2b::decode_file(SEALED_PRIV, &private).map_err(|e| {
        UnsealFailure::BadObject(format!("{}: {e}", dir.join(SEALED_PRIV).display()))
    })?;
    let blob = SealedBlob {
        public,
        private,
        srk: info.srk,
        srk_name: info.srk_name.clone(),
    };
    Ok(Enrollment { info, blob })
}

/// The PCRs whose current value differs from the enrolled one, and a message
/// naming them.
fn changed_pcrs(info: &SealedInfo, current: &[Vec<u8>]) -> (Vec<u8>, String) {
    let mut pcrs = Vec::new();
    let mut parts = Vec::new();
    for ((p, enrolled), now) in info.pcrs.iter().zip(&info.pcr_values).zip(current) {
        if enrolled != now {
            pcrs.push(*p);
            parts.push(format!(
                "PCR {p} ({}) is {}, enrolled {}",
                info.bank,
                crate::util::hex::lower(now),
                crate::util::hex::lower(enrolled)
            ));
        }
    }
    let list: Vec<String> = pcrs.iter().map(u8::to_string).collect();
    let msg = if pcrs.is_empty() {
        "the TPM refused the PCR policy, but the PCRs read now match the enrollment (they changed during the unseal)"
            .to_owned()
    } else {
        format!(
            "PCRs changed since enrollment: {} ({})",
            list.join(","),
            parts.join("; ")
        )
    };
    (pcrs, msg)
}

/// Unseals an already loaded enrollment and compares the sealed digest with
/// `bundle_bytes`' SHA-256. TPM commands: one PCR read, then (if the policy
/// can be met) the unseal itself — a fixed number.
pub fn unseal_enrollment(
    tpm: &mut dyn Tpm,
    e: &Enrollment,
    bundle_bytes: &[u8],
) -> Result<[u8; 32], UnsealFailure> {
    let info = &e.info;
    let current = tpm.pcr_read(info.bank, &info.pcrs)?;
    if let Some(shape) = pcr_read_shape(info.bank, info.pcrs.len(), &current) {
        return Err(UnsealFailure::Tpm(format!("TPM PCR read returned {shape}")));
    }
    if info.bank.policy_pcr_digest(&info.pcrs, &current) != info.policy_digest {
        let (pcrs, detail) = changed_pcrs(info, &current);
        return Err(UnsealFailure::PcrChanged { pcrs, detail });
    }
    let sealed = match tpm.unseal(&e.blob, info.bank, &info.pcrs) {
        Ok(s) => s,
        Err(err @ (TpmError::PolicyMismatch { .. } | TpmError::PcrChanged { .. })) => {
            // The PCRs moved between the read and the unseal: name them if we can.
            let (pcrs, detail) = match tpm.pcr_read(info.bank, &info.pcrs) {
                Ok(now) => changed_pcrs(info, &now),
                Err(_) => (Vec::new(), String::new()),
            };
            let detail = if pcrs.is_empty() {
                format!("{err}")
            } else {
                format!("{detail} ({err})")
            };
            return Err(UnsealFailure::PcrChanged { pcrs, detail });
        }
        Err(err) => return Err(err.into()),
    };
    if sealed.len() != 32 {
        return Err(UnsealFailure::BadObject(format!(
            "the sealed value is {} bytes, not a SHA-256 digest",
            sealed.len()
        )));
    }
    let bundle = crate::verify::algorithm::sha256(bundle_bytes);
    if sealed[..] != bundle[..] {
        return Err(UnsealFailure::DigestMismatch {
            sealed: crate::util::hex::lower(&sealed),
            bundle: crate::util::hex::lower(&bundle),
        });
    }
    // `sealed` is wiped when dropped (Zeroizing).
    Ok(bundle)
}

/// The boot flow's check: reads the enrollment in `sealed_dir`, unseals it
/// and compares with the SHA-256 of `bundle_bytes`. Returns that digest.
pub fn unseal_and_check(
    tpm: &mut dyn Tpm,
    bundle_bytes: &[u8],
    sealed_dir: &Path,
) -> Result<[u8; 32], UnsealFailure> {
    let e = load_enrollment(sealed_dir)?;
    unseal_enrollment(tpm, &e, bundle_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::enroll::prepare_enrollment_dir;
    use crate::seal::enroll::tests::{enroll_memory, enroll_memory_with};
    use crate::tpm::memory::MemoryTpm;
    use crate::tpm::{PcrBank, Srk, SrkTemplate};

    #[test]
    fn unseal_and_check_with_the_memory_tpm() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sealed");
        let mut tpm = MemoryTpm::sha256();
        enroll_memory(&mut tpm, &dir, b"bundle", &[7, 12]);
        let before = tpm.commands();
        assert_eq!(
            unseal_and_check(&mut tpm, b"bundle", &dir).unwrap(),
            crate::verify::algorithm::sha256(b"bundle")
        );
        let per_unseal = tpm.commands() - before;
        assert_eq!(per_unseal, 2); // PCR read + unseal

        let f = unseal_and_check(&mut tpm, b"other", &dir).unwrap_err();
        assert_eq!(f.name(), "digest-mismatch");

        tpm.pcr_extend(12, &[(PcrBank::Sha256, vec![5u8; 32])])
            .unwrap();
        let before = tpm.commands();
        match unseal_and_check(&mut tpm, b"bundle", &dir).unwrap_err() {
            UnsealFailure::PcrChanged { pcrs, detail } => {
                assert_eq!(pcrs, vec![12]);
                assert!(detail.contains("PCR 12"), "{detail}");
            }
            other => panic!("{other}"),
        }
        assert_eq!(
            tpm.commands() - before,
            1,
            "refused before asking the TPM to unseal"
        );

        tpm.reset();
        tpm.fail_next(TpmError::Lockout { rc: 0x921 });
        assert_eq!(
            unseal_and_check(&mut tpm, b"bundle", &dir)
                .unwrap_err()
                .name(),
            "lockout"
        );
        tpm.fail_next(TpmError::NoDevice {
            tcti: "x".into(),
            reason: "gone".into(),
        });
        assert_eq!(
            unseal_and_check(&mut tpm, b"bundle", &dir)
                .unwrap_err()
                .name(),
            "no-tpm"
        );

        // Another TPM: bad object.
        let mut other = MemoryTpm::sha256();
        assert_eq!(
            unseal_and_check(&mut other, b"bundle", &dir)
                .unwrap_err()
                .name(),
            "bad-object"
        );

        // Missing directory: io; broken json: invalid.
        assert_eq!(
            unseal_and_check(&mut tpm, b"bundle", &tmp.path().join("nope"))
                .unwrap_err()
                .name(),
            "io"
        );
        std::fs::write(dir.join(SEALED_JSON), b"{}").unwrap();
        assert_eq!(
            unseal_and_check(&mut tpm, b"bundle", &dir)
                .unwrap_err()
                .name(),
            "invalid"
        );
    }

    #[test]
    fn policy_race_is_named_as_pcr_changed() {
        // The PCR read agrees with the enrollment but the unseal is refused.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sealed");
        let mut tpm = MemoryTpm::sha256();
        enroll_memory(&mut tpm, &dir, b"b", &[12]);
        let e = load_enrollment(&dir).unwrap();
        struct Racy<'a>(&'a mut MemoryTpm);
        impl Tpm for Racy<'_> {
            fn active_banks(&mut self) -> Result<Vec<PcrBank>, TpmError> {
                self.0.active_banks()
            }
            fn pcr_read(&mut self, b: PcrBank, p: &[u8]) -> Result<Vec<Vec<u8>>, TpmError> {
                self.0.pcr_read(b, p)
            }
            fn pcr_extend(&mut self, p: u8, d: &[(PcrBank, Vec<u8>)]) -> Result<(), TpmError> {
                self.0.pcr_extend(p, d)
            }
            fn seal(
                &mut self,
                s: &[u8],
                b: PcrBank,
                p: &[u8],
                v: &[Vec<u8>],
                d: &[u8],
                t: crate::tpm::SrkTemplate,
            ) -> Result<SealedBlob, TpmError> {
                self.0.seal(s, b, p, v, d, t)
            }
            fn unseal(
                &mut self,
                bl: &SealedBlob,
                b: PcrBank,
                p: &[u8],
            ) -> Result<zeroize::Zeroizing<Vec<u8>>, TpmError> {
                self.0.pcr_extend(12, &[(PcrBank::Sha256, vec![1u8; 32])])?;
                self.0.unseal(bl, b, p)
            }
            fn commands(&self) -> u64 {
                self.0.commands()
            }
        }
        match unseal_enrollment(&mut Racy(&mut tpm), &e, b"b").unwrap_err() {
            UnsealFailure::PcrChanged { pcrs, .. } => assert_eq!(pcrs, vec![12]),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn corrupt_public_is_a_bad_object_before_the_tpm() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sealed");
        let mut tpm = MemoryTpm::sha256();
        enroll_memory(&mut tpm, &dir, b"b", &[12]);
        let mut public = std::fs::read(dir.join(SEALED_PUB)).unwrap();
        public[12] ^= 0x55; // inside authPolicy
        std::fs::write(dir.join(SEALED_PUB), &public).unwrap();
        let f = load_enrollment(&dir).unwrap_err();
        assert_eq!(f.name(), "bad-object", "{f}");
        std::fs::write(dir.join(SEALED_PUB), b"\x00\x01").unwrap();
        assert_eq!(load_enrollment(&dir).unwrap_err().name(), "bad-object");
    }

    #[test]
    fn another_srk_name_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sealed");
        let mut tpm = MemoryTpm::sha256();
        enroll_memory(&mut tpm, &dir, b"b", &[12]);
        let json = std::fs::read_to_string(dir.join(SEALED_JSON)).unwrap();
        let pinned = crate::util::hex::lower(&tpm.srk_name());
        assert!(
            json.contains(&format!("\"srk_name\": \"{pinned}\"")),
            "{json}"
        );
        // sealed.json pins another key than the one the TPM has.
        let other = format!("000b{}", "5a".repeat(32));
        std::fs::write(dir.join(SEALED_JSON), json.replace(&pinned, &other)).unwrap();
        let f = unseal_and_check(&mut tpm, b"b", &dir).unwrap_err();
        assert_eq!(
            f,
            UnsealFailure::SrkMismatch {
                srk: "primary".into(),
                pinned: other.clone(),
                found: pinned.clone(),
            }
        );
        assert_eq!(f.name(), "bad-object");
        assert_eq!(f.outcome(), crate::measure::UnsealOutcome::BadObject);
        assert!(!f.is_usage());
        assert_eq!(
            f.to_string(),
            format!(
                "bad-object: the storage root key (primary) has name {pinned}, but sealed.json pins {other}: not the key the object was sealed under (another TPM, a cleared owner hierarchy, another key at the handle, or something between modseal and the TPM answering for it); no session was salted with it"
            )
        );
        // Without the field the enrollment is refused before the TPM is asked.
        let mut stripped: serde_json::Value = serde_json::from_str(&json).unwrap();
        stripped.as_object_mut().unwrap().remove("srk_name");
        std::fs::write(dir.join(SEALED_JSON), stripped.to_string()).unwrap();
        let before = tpm.commands();
        let f = unseal_and_check(&mut tpm, b"b", &dir).unwrap_err();
        assert_eq!(f.name(), "invalid", "{f}");
        assert!(f.to_string().contains("no srk_name"), "{f}");
        assert_eq!(tpm.commands(), before);
        // The file as enrolled still unseals.
        std::fs::write(dir.join(SEALED_JSON), &json).unwrap();
        assert!(unseal_and_check(&mut tpm, b"b", &dir).is_ok());
    }

    #[test]
    fn rsa_enrollments_with_and_without_a_template_unseal() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sealed");
        let mut tpm = MemoryTpm::sha256();
        enroll_memory_with(&mut tpm, &dir, b"b", &[12], SrkTemplate::Rsa2048);
        let json = std::fs::read_to_string(dir.join(SEALED_JSON)).unwrap();
        assert!(json.contains("\"srk_template\": \"rsa-2048\""), "{json}");
        let e = load_enrollment(&dir).unwrap();
        assert_eq!(e.blob.srk, Srk::Primary(SrkTemplate::Rsa2048));
        assert_eq!(e.info.srk_name, tpm.srk_name_for(SrkTemplate::Rsa2048));
        assert_ne!(e.info.srk_name, tpm.srk_name());
        let before = tpm.commands();
        assert!(unseal_and_check(&mut tpm, b"b", &dir).is_ok());
        let rsa = tpm.commands() - before;
        // As written before templates were recorded: still RSA-2048.
        std::fs::write(
            dir.join(SEALED_JSON),
            json.replace("\n  \"srk_template\": \"rsa-2048\",", ""),
        )
        .unwrap();
        assert_eq!(
            load_enrollment(&dir).unwrap().blob.srk,
            Srk::Primary(SrkTemplate::Rsa2048)
        );
        assert!(unseal_and_check(&mut tpm, b"b", &dir).is_ok());
        // Claiming the other template names another key: refused by its name.
        std::fs::write(
            dir.join(SEALED_JSON),
            json.replace("\"rsa-2048\"", "\"ecc-p256\""),
        )
        .unwrap();
        let f = unseal_and_check(&mut tpm, b"b", &dir).unwrap_err();
        assert!(matches!(f, UnsealFailure::SrkMismatch { .. }), "{f}");
        // An ECC enrollment sends as many commands.
        enroll_memory(&mut tpm, &dir, b"b", &[12]);
        let before = tpm.commands();
        assert!(unseal_and_check(&mut tpm, b"b", &dir).is_ok());
        assert_eq!(tpm.commands() - before, rsa);
    }

    #[test]
    fn re_enroll_replaces_the_directory_as_a_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sealed");
        let mut tpm = MemoryTpm::sha256();
        enroll_memory(&mut tpm, &dir, b"one", &[12]);
        let first = std::fs::read(dir.join(SEALED_JSON)).unwrap();
        enroll_memory(&mut tpm, &dir, b"two", &[7, 12]);
        let second = std::fs::read(dir.join(SEALED_JSON)).unwrap();
        assert_ne!(first, second);
        assert!(unseal_and_check(&mut tpm, b"two", &dir).is_ok());
        // Nothing left beside it.
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["sealed".to_owned()]);
        // A directory with other files is refused.
        std::fs::write(dir.join("keep-me"), b"x").unwrap();
        assert!(prepare_enrollment_dir(&dir)
            .unwrap_err()
            .to_string()
            .contains("keep-me"));
        // A file in the way is refused.
        assert!(prepare_enrollment_dir(&dir.join("keep-me")).is_err());
    }
}
