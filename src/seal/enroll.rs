//! Enrolling: sealing the trust bundle's digest and writing the enrollment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::tpm::{PcrBank, SealedBlob, SrkTemplate, Tpm};

use super::error::SealError;
use super::info::{check_pcr_list, hex_exact, pcr_read_shape, SealedInfo};
use super::layout::{MAX_BUNDLE, SEALED_FILES, SEALED_JSON, SEALED_PRIV, SEALED_PUB};

/// Seals the SHA-256 of `bundle` to `pcrs` in `bank`: to the values in
/// `given` where given (a predicted state), to the current ones elsewhere,
/// under the persistent SRK when the TPM has one, else under a primary made
/// from `template`. TPM commands: one PCR read (none when every value is
/// given), one seal.
pub fn enroll(
    tpm: &mut dyn Tpm,
    bundle: &[u8],
    pcrs: &[u8],
    bank: PcrBank,
    given: &BTreeMap<u8, Vec<u8>>,
    template: SrkTemplate,
) -> Result<(SealedInfo, SealedBlob), SealError> {
    check_pcr_list(pcrs)?;
    check_given(pcrs, bank, given)?;
    let missing: Vec<u8> = pcrs
        .iter()
        .copied()
        .filter(|p| !given.contains_key(p))
        .collect();
    let read = if missing.is_empty() {
        Vec::new()
    } else {
        let read = tpm.pcr_read(bank, &missing).map_err(SealError::PcrRead)?;
        if let Some(shape) = pcr_read_shape(bank, missing.len(), &read) {
            return Err(SealError::PcrReadShape(shape));
        }
        read
    };
    let current: BTreeMap<u8, Vec<u8>> = missing.into_iter().zip(read).collect();
    let values = pcrs
        .iter()
        .map(|p| {
            given
                .get(p)
                .or_else(|| current.get(p))
                .cloned()
                .ok_or(SealError::MissingValue(*p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy = bank.policy_pcr_digest(pcrs, &values);
    let digest = crate::verify::algorithm::sha256(bundle);
    let blob = tpm
        .seal(&digest, bank, pcrs, &values, &policy, template)
        .map_err(SealError::Seal)?;
    let info = SealedInfo {
        bank,
        pcrs: pcrs.to_vec(),
        pcr_values: values,
        policy_digest: policy,
        bundle_sha256: digest,
        srk: blob.srk,
        srk_name: blob.srk_name.clone(),
    };
    Ok((info, blob))
}

/// Given values are for listed PCRs and of the bank's size.
fn check_given(pcrs: &[u8], bank: PcrBank, given: &BTreeMap<u8, Vec<u8>>) -> Result<(), SealError> {
    for (p, v) in given {
        let option = || format!("{p}={}", crate::util::hex::lower(v));
        if !pcrs.contains(p) {
            return Err(SealError::PcrValueNotListed {
                option: option(),
                pcr: *p,
            });
        }
        if v.len() != bank.digest_len() {
            return Err(SealError::PcrValueHex {
                option: option(),
                bank,
            });
        }
    }
    Ok(())
}

/// Parses `--pcr-value IDX=HEX` options against the PCR list and bank.
pub fn parse_pcr_values(
    opts: &[String],
    pcrs: &[u8],
    bank: PcrBank,
) -> Result<BTreeMap<u8, Vec<u8>>, SealError> {
    let mut out = BTreeMap::new();
    for o in opts {
        let (idx, hex) = o
            .split_once('=')
            .ok_or_else(|| SealError::PcrValueSyntax(o.clone()))?;
        let idx: u8 = match idx.trim().parse() {
            Ok(p) if p <= 23 => p,
            _ => {
                return Err(SealError::PcrValueIndex {
                    option: o.clone(),
                    index: idx.to_owned(),
                })
            }
        };
        if !pcrs.contains(&idx) {
            return Err(SealError::PcrValueNotListed {
                option: o.clone(),
                pcr: idx,
            });
        }
        let v = hex_exact(hex.trim(), bank.digest_len()).ok_or_else(|| SealError::PcrValueHex {
            option: o.clone(),
            bank,
        })?;
        if out.insert(idx, v).is_some() {
            return Err(SealError::PcrValueTwice(idx));
        }
    }
    Ok(out)
}

/// Reads the bundle, checks it is a trust bundle or certificate file, and
/// returns its exact bytes.
pub fn read_bundle(path: &Path) -> Result<Vec<u8>, SealError> {
    let bytes = crate::util::read::read_capped(path, MAX_BUNDLE)?;
    crate::trust::TrustStore::default().add_trust_file(path)?;
    // add_trust_file read the file again: make sure what was checked is what is sealed.
    if crate::util::read::read_capped(path, MAX_BUNDLE)? != bytes {
        return Err(SealError::BundleChanged(path.to_owned()));
    }
    Ok(bytes)
}

/// Checks that `dir` can be (re)placed by an enrollment: absent, or a
/// directory holding nothing but an earlier enrollment's files. Returns the
/// path to replace (a symlink is followed to its target).
pub fn prepare_enrollment_dir(dir: &Path) -> Result<PathBuf, SealError> {
    crate::util::fs::prepare_replaceable_dir(dir, &SEALED_FILES, "an enrollment's", " on enroll")
        .map_err(SealError::OutDir)
}

/// Writes an enrollment into `dir`, replacing an earlier one atomically (see
/// the module documentation). `dir` should come from
/// [`prepare_enrollment_dir`].
pub fn write_enrollment(dir: &Path, info: &SealedInfo, blob: &SealedBlob) -> std::io::Result<()> {
    let json = info.to_json();
    crate::util::fs::write_dir_replacing(
        dir,
        &[
            (SEALED_PUB, &blob.public[..]),
            (SEALED_PRIV, &blob.private[..]),
            (SEALED_JSON, json.as_bytes()),
        ],
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tpm::memory::MemoryTpm;

    /// Enrolls `bundle` in `dir` with the in-memory TPM, sealed to the
    /// current values of `pcrs` (sha256).
    pub(crate) fn enroll_memory(tpm: &mut MemoryTpm, dir: &Path, bundle: &[u8], pcrs: &[u8]) {
        enroll_memory_with(tpm, dir, bundle, pcrs, SrkTemplate::DEFAULT);
    }

    /// [`enroll_memory`] with a primary SRK made from `template`.
    pub(crate) fn enroll_memory_with(
        tpm: &mut MemoryTpm,
        dir: &Path,
        bundle: &[u8],
        pcrs: &[u8],
        template: SrkTemplate,
    ) {
        let none = BTreeMap::new();
        let (info, blob) = enroll(tpm, bundle, pcrs, PcrBank::Sha256, &none, template).unwrap();
        let target = prepare_enrollment_dir(dir).unwrap();
        write_enrollment(&target, &info, &blob).unwrap();
    }

    #[test]
    fn pcr_value_options() {
        let b = PcrBank::Sha256;
        let h = crate::util::hex::lower(&[0xab; 32]);
        let m = parse_pcr_values(&[format!("12={h}")], &[7, 12], b).unwrap();
        assert_eq!(m[&12], vec![0xab; 32]);
        assert!(parse_pcr_values(&[format!("9={h}")], &[7, 12], b).is_err());
        assert!(parse_pcr_values(&["12=abcd".into()], &[12], b).is_err());
        assert!(parse_pcr_values(&[format!("12={h}"), format!("12={h}")], &[12], b).is_err());
        assert!(parse_pcr_values(std::slice::from_ref(&h), &[12], b).is_err());
        assert!(parse_pcr_values(&[format!("x={h}")], &[12], b).is_err());
    }

    #[test]
    fn pcr_value_messages() {
        let b = PcrBank::Sha256;
        let h = crate::util::hex::lower(&[0xab; 32]);
        let e = |o: &[String], p: &[u8]| parse_pcr_values(o, p, b).unwrap_err().to_string();
        assert_eq!(e(&["12".into()], &[12]), "--pcr-value 12: expected IDX=HEX");
        assert_eq!(
            e(&[format!("x={h}")], &[12]),
            format!("--pcr-value x={h}: 'x' is not a PCR index (0-23)")
        );
        assert_eq!(
            e(&[format!("9={h}")], &[12]),
            format!("--pcr-value 9={h}: PCR 9 is not in --pcrs")
        );
        assert_eq!(
            e(&["12=abcd".into()], &[12]),
            "--pcr-value 12=abcd: expected 64 hex digits (a sha256 PCR value)"
        );
        assert_eq!(
            e(&[format!("12={h}"), format!("12={h}")], &[12]),
            "--pcr-value: PCR 12 given twice"
        );
    }

    #[test]
    fn enroll_seals_given_and_current_values() {
        let mut tpm = MemoryTpm::sha256();
        let bank = PcrBank::Sha256;
        tpm.pcr_extend(7, &[(bank, vec![1; 32])]).unwrap();
        let given = BTreeMap::from([(12, vec![0xab; 32])]);
        let before = tpm.commands();
        let (info, _) = enroll(
            &mut tpm,
            b"bundle",
            &[7, 12],
            bank,
            &given,
            SrkTemplate::DEFAULT,
        )
        .unwrap();
        assert_eq!(tpm.commands() - before, 2, "one PCR read, one seal");
        assert_eq!(info.pcr_values[0], tpm.pcr_read(bank, &[7]).unwrap()[0]);
        assert_eq!(info.pcr_values[1], vec![0xab; 32]);
        assert_eq!(
            info.bundle_sha256,
            crate::verify::algorithm::sha256(b"bundle")
        );
        assert_eq!(
            SealedInfo::from_json(info.to_json().as_bytes()).unwrap(),
            info
        );
        let bad = BTreeMap::from([(9, vec![0xab; 32])]);
        assert!(enroll(&mut tpm, b"b", &[7, 12], bank, &bad, SrkTemplate::DEFAULT).is_err());
        let short = BTreeMap::from([(12, vec![0xab; 20])]);
        assert!(enroll(&mut tpm, b"b", &[7, 12], bank, &short, SrkTemplate::DEFAULT).is_err());
        assert!(enroll(
            &mut tpm,
            b"b",
            &[],
            bank,
            &BTreeMap::new(),
            SrkTemplate::DEFAULT
        )
        .is_err());
    }
}
