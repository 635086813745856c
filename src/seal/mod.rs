//! `modseal enroll` and `modseal unseal`: the trust bundle's digest sealed in
//! the TPM, and checked against it.
//!
//! An enrollment is a directory of three files:
//! - `sealed.pub`, `sealed.priv`: the sealed data object, in tpm2-tools'
//!   TPM2B file format (`tpm2_load -u sealed.pub -r sealed.priv` loads it);
//! - `sealed.json`: what it was sealed to,
//!   `{"version":1,"bank":"sha256","pcrs":[12],"pcr_values":{"12":"…"},
//!   "policy_digest":"…","bundle_sha256":"…","srk":"primary"}` (`srk` is
//!   `primary` or `persistent:0x81000001`).
//!
//! Re-enrolling replaces the directory as a whole: the new files are written
//! and synced in a fresh directory beside it, which is then exchanged with the
//! old one in one `renameat2(RENAME_EXCHANGE)`; readers see the old set or the
//! new set, never a mix, and the old set stays usable until the new one is
//! complete.
//!
//! [`unseal_and_check`] is the check the boot flow runs: the policy digest is
//! recomputed from the current PCRs and compared with the enrolled one before
//! the TPM is asked, so a changed PCR is named without a failed authorization.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::tpm::{tpm2b, PcrBank, SealedBlob, Srk, Tpm, TpmError};

/// File names inside an enrollment directory.
pub const SEALED_PUB: &str = "sealed.pub";
pub const SEALED_PRIV: &str = "sealed.priv";
pub const SEALED_JSON: &str = "sealed.json";
const SEALED_FILES: [&str; 3] = [SEALED_PUB, SEALED_PRIV, SEALED_JSON];
/// Largest `sealed.json` read.
const MAX_SEALED_JSON: u64 = 64 * 1024;
/// Largest trust bundle hashed (the trust store applies its own limit too).
pub const MAX_BUNDLE: u64 = 16 * 1024 * 1024;
// ---------------------------------------------------------------------------
// sealed.json

/// The contents of `sealed.json`, validated: the PCR list is ascending, every
/// listed PCR has a value of the bank's size, and the policy digest is the
/// PolicyPCR digest of those values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    pub bank: PcrBank,
    pub pcrs: Vec<u8>,
    /// One value per PCR, in `pcrs` order.
    pub pcr_values: Vec<Vec<u8>>,
    pub policy_digest: Vec<u8>,
    pub bundle_sha256: [u8; 32],
    pub srk: Srk,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedJson {
    version: u32,
    bank: String,
    pcrs: Vec<u8>,
    pcr_values: BTreeMap<String, String>,
    policy_digest: String,
    bundle_sha256: String,
    srk: String,
}

/// Strict hex: digits only, an exact length.
fn hex_exact(what: &str, text: &str, len: usize) -> Result<Vec<u8>, String> {
    if text.len() != len * 2 || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{what}: expected {} hex digits", len * 2));
    }
    crate::util::hex::parse(text).ok_or_else(|| format!("{what}: not hex"))
}

impl SealedInfo {
    /// Parses and validates `sealed.json`.
    pub fn from_json(bytes: &[u8]) -> Result<SealedInfo, String> {
        let j: SealedJson =
            serde_json::from_slice(bytes).map_err(|e| format!("not a modseal sealed.json: {e}"))?;
        if j.version != 1 {
            return Err(format!(
                "version {} is not supported (expected 1)",
                j.version
            ));
        }
        let bank =
            PcrBank::from_name(&j.bank).ok_or_else(|| format!("unknown PCR bank '{}'", j.bank))?;
        if j.pcrs.is_empty() {
            return Err("empty PCR list".into());
        }
        if let Some(p) = j.pcrs.iter().find(|&&p| p > 23) {
            return Err(format!("PCR {p} out of range (0-23)"));
        }
        if j.pcrs.windows(2).any(|w| w[0] >= w[1]) {
            return Err("PCR list must be ascending without repeats".into());
        }
        let mut values = Vec::with_capacity(j.pcrs.len());
        for p in &j.pcrs {
            let v = j
                .pcr_values
                .get(&p.to_string())
                .ok_or_else(|| format!("no value for PCR {p}"))?;
            values.push(hex_exact(
                &format!("pcr_values[{p}]"),
                v,
                bank.digest_len(),
            )?);
        }
        if j.pcr_values.len() != j.pcrs.len() {
            let extra: Vec<&str> = j
                .pcr_values
                .keys()
                .filter(|k| !j.pcrs.iter().any(|p| p.to_string() == **k))
                .map(String::as_str)
                .collect();
            return Err(format!(
                "pcr_values has entries for PCRs not in the list: {}",
                extra.join(", ")
            ));
        }
        let policy = hex_exact("policy_digest", &j.policy_digest, 32)?;
        let expected = bank.policy_pcr_digest(&j.pcrs, &values);
        if policy != expected {
            return Err(format!(
                "policy_digest {} is not the PolicyPCR digest of pcr_values ({})",
                j.policy_digest,
                crate::util::hex::lower(&expected)
            ));
        }
        let bundle = hex_exact("bundle_sha256", &j.bundle_sha256, 32)?;
        let mut bundle_sha256 = [0u8; 32];
        bundle_sha256.copy_from_slice(&bundle);
        let srk = Srk::from_config(&j.srk).ok_or_else(|| {
            format!(
                "srk '{}': expected 'primary' or 'persistent:0x81xxxxxx'",
                j.srk
            )
        })?;
        Ok(SealedInfo {
            bank,
            pcrs: j.pcrs,
            pcr_values: values,
            policy_digest: policy,
            bundle_sha256,
            srk,
        })
    }

    /// `sealed.json`'s text (PCR values in PCR order), ending in a newline.
    pub fn to_json(&self) -> String {
        let values: Vec<String> = self
            .pcrs
            .iter()
            .zip(&self.pcr_values)
            .map(|(p, v)| format!("    \"{p}\": \"{}\"", crate::util::hex::lower(v)))
            .collect();
        let pcrs: Vec<String> = self.pcrs.iter().map(u8::to_string).collect();
        format!(
            "{{\n  \"version\": 1,\n  \"bank\": \"{}\",\n  \"pcrs\": [{}],\n  \"pcr_values\": {{\n{}\n  }},\n  \"policy_digest\": \"{}\",\n  \"bundle_sha256\": \"{}\",\n  \"srk\": \"{}\"\n}}\n",
            self.bank.name(),
            pcrs.join(", "),
            values.join(",\n"),
            crate::util::hex::lower(&self.policy_digest),
            crate::util::hex::lower(&self.bundle_sha256),
            self.srk.to_config()
        )
    }
}

// ---------------------------------------------------------------------------
// Unseal and check

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
    PcrChanged { pcrs: Vec<u8>, detail: String },
    /// The sealed object does not load or is not what modseal makes: made by
    /// another TPM, or corrupt.
    BadObject(String),
    /// The unsealed digest is not the bundle's SHA-256.
    DigestMismatch { sealed: String, bundle: String },
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
            UnsealFailure::BadObject(_) => "bad-object",
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
            UnsealFailure::BadObject(_) => O::BadObject,
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
    pub info: SealedInfo,
    pub blob: SealedBlob,
}

pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    crate::util::read::read_capped(path, usize::try_from(limit).unwrap_or(usize::MAX))
        .map_err(|e| e.to_string())
}

/// Reads an enrollment directory: `sealed.json` parsed and validated, the
/// sealed object's public area checked to be a policy-only sealed object whose
/// policy is `sealed.json`'s.
pub fn load_enrollment(dir: &Path) -> Result<Enrollment, UnsealFailure> {
    let json = read_limited(&dir.join(SEALED_JSON), MAX_SEALED_JSON).map_err(UnsealFailure::Io)?;
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
            Ok(_) => read_limited(&path, tpm2b::MAX_FILE as u64).map_err(UnsealFailure::Io),
        }
    };
    let public = read(SEALED_PUB)?;
    let private = read(SEALED_PRIV)?;
    let bad =
        |e: String| UnsealFailure::BadObject(format!("{}: {e}", dir.join(SEALED_PUB).display()));
    let tpmt = tpm2b::decode(SEALED_PUB, &public).map_err(&bad)?;
    tpm2b::parse_sealed_public(tpmt)
        .map_err(&bad)?
        .check(&info.policy_digest)
        .map_err(&bad)?;
    tpm2b::decode(SEALED_PRIV, &private).map_err(|e| {
        UnsealFailure::BadObject(format!("{}: {e}", dir.join(SEALED_PRIV).display()))
    })?;
    let srk = info.srk;
    Ok(Enrollment {
        info,
        blob: SealedBlob {
            public,
            private,
            srk,
        },
    })
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

// ---------------------------------------------------------------------------
// Writing an enrollment

/// Checks that `dir` can be (re)placed by an enrollment: absent, or a
/// directory holding nothing but an earlier enrollment's files. Returns the
/// path to replace (a symlink is followed to its target).
pub fn prepare_enrollment_dir(dir: &Path) -> Result<PathBuf, String> {
    crate::util::fs::prepare_replaceable_dir(dir, &SEALED_FILES, "an enrollment's", " on enroll")
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
/// Parses `--pcr-value IDX=HEX` options against the PCR list and bank.
pub fn parse_pcr_values(
    opts: &[String],
    pcrs: &[u8],
    bank: PcrBank,
) -> Result<BTreeMap<u8, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    for o in opts {
        let (idx, hex) = o
            .split_once('=')
            .ok_or_else(|| format!("--pcr-value {o}: expected IDX=HEX"))?;
        let idx: u8 = match idx.trim().parse() {
            Ok(p) if p <= 23 => p,
            _ => {
                return Err(format!(
                    "--pcr-value {o}: '{idx}' is not a PCR index (0-23)"
                ))
            }
        };
        if !pcrs.contains(&idx) {
            return Err(format!("--pcr-value {o}: PCR {idx} is not in --pcrs"));
        }
        let v = hex_exact(&format!("--pcr-value {o}"), hex.trim(), bank.digest_len())
            .map_err(|e| format!("{e} (a {bank} PCR value)"))?;
        if out.insert(idx, v).is_some() {
            return Err(format!("--pcr-value: PCR {idx} given twice"));
        }
    }
    Ok(out)
}

/// Reads the bundle, checks it is a trust bundle or certificate file, and
/// returns its exact bytes.
pub fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = read_limited(path, MAX_BUNDLE)?;
    crate::trust::TrustStore::default()
        .add_trust_file(path)
        .map_err(|e| e.to_string())?;
    // add_trust_file read the file again: make sure what was checked is what is sealed.
    if read_limited(path, MAX_BUNDLE)? != bytes {
        return Err(format!("{}: changed while being read", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::memory::MemoryTpm;

    fn info() -> SealedInfo {
        let bank = PcrBank::Sha256;
        let pcrs = vec![7, 12];
        let vals = vec![vec![1u8; 32], vec![2u8; 32]];
        let policy = bank.policy_pcr_digest(&pcrs, &vals);
        SealedInfo {
            bank,
            pcrs,
            pcr_values: vals,
            policy_digest: policy,
            bundle_sha256: [3u8; 32],
            srk: Srk::Persistent(0x8100_0001),
        }
    }

    #[test]
    fn sealed_json_round_trip() {
        let i = info();
        let text = i.to_json();
        assert!(text.contains("\"srk\": \"persistent:0x81000001\""));
        assert_eq!(SealedInfo::from_json(text.as_bytes()).unwrap(), i);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["pcr_values"]["12"], crate::util::hex::lower(&[2u8; 32]));
        assert_eq!(v["version"], 1);
    }

    #[test]
    fn sealed_json_rejects_hostile_input() {
        let good: serde_json::Value = serde_json::from_str(&info().to_json()).unwrap();
        let bad = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            SealedInfo::from_json(v.to_string().as_bytes())
        };
        assert!(bad(&|v| v["version"] = 2.into()).is_err());
        assert!(bad(&|v| v["bank"] = "md5".into()).is_err());
        assert!(bad(&|v| v["pcrs"] = serde_json::json!([])).is_err());
        assert!(bad(&|v| v["pcrs"] = serde_json::json!([12, 7])).is_err());
        assert!(bad(&|v| v["pcrs"] = serde_json::json!([7, 7])).is_err());
        assert!(bad(&|v| v["pcrs"] = serde_json::json!([7, 24])).is_err());
        assert!(bad(&|v| v["pcrs"] = serde_json::json!([7, 300])).is_err());
        assert!(bad(&|v| v["pcrs"] = serde_json::json!([-1])).is_err());
        assert!(bad(&|v| v["pcr_values"]["12"] = "00".into()).is_err());
        assert!(
            bad(&|v| v["pcr_values"]["13"] = crate::util::hex::lower(&[0u8; 32]).into()).is_err()
        );
        assert!(
            bad(&|v| v["pcr_values"]["7"] = crate::util::hex::lower(&[9u8; 32]).into()).is_err()
        ); // policy no longer matches
        assert!(bad(&|v| v["pcr_values"]["7"] = format!("{}zz", "0".repeat(62)).into()).is_err());
        assert!(bad(&|v| v["policy_digest"] = crate::util::hex::lower(&[0u8; 32]).into()).is_err());
        assert!(bad(&|v| v["bundle_sha256"] = "ab:cd".into()).is_err());
        assert!(bad(&|v| v["srk"] = "persistent:0x80000001".into()).is_err());
        assert!(bad(&|v| v["srk"] = "persistent:0x810000011".into()).is_err());
        assert!(bad(&|v| v["extra"] = 1.into()).is_err());
        assert!(bad(&|v| {
            v.as_object_mut().unwrap().remove("srk");
        })
        .is_err());
        for junk in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            b"\xff\xfe",
            b"{\"version\":1e999}",
        ] {
            assert!(SealedInfo::from_json(junk).is_err());
        }
        // Every truncation of a good file fails cleanly.
        let text = info().to_json();
        for cut in 0..text.len() - 2 {
            assert!(
                SealedInfo::from_json(&text.as_bytes()[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn srk_config_forms() {
        assert_eq!(Srk::from_config("primary"), Some(Srk::Primary));
        assert_eq!(
            Srk::from_config("persistent:0x81000001"),
            Some(Srk::Persistent(0x8100_0001))
        );
        assert_eq!(
            Srk::Persistent(0x8100_0001).to_config(),
            "persistent:0x81000001"
        );
        assert_eq!(Srk::from_config("persistent:0x81800000"), None);
        assert_eq!(Srk::from_config("Primary"), None);
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

    fn enroll_memory(tpm: &mut MemoryTpm, dir: &Path, bundle: &[u8], pcrs: &[u8]) {
        let bank = PcrBank::Sha256;
        let vals = tpm.pcr_read(bank, pcrs).unwrap();
        let policy = bank.policy_pcr_digest(pcrs, &vals);
        let digest = crate::verify::algorithm::sha256(bundle);
        let blob = tpm.seal(&digest, bank, pcrs, &vals, &policy).unwrap();
        let info = SealedInfo {
            bank,
            pcrs: pcrs.to_vec(),
            pcr_values: vals,
            policy_digest: policy,
            bundle_sha256: digest,
            srk: blob.srk,
        };
        let target = prepare_enrollment_dir(dir).unwrap();
        write_enrollment(&target, &info, &blob).unwrap();
    }

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
            ) -> Result<SealedBlob, TpmError> {
                self.0.seal(s, b, p, v, d)
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
            .contains("keep-me"));
        // A file in the way is refused.
        assert!(prepare_enrollment_dir(&dir.join("keep-me")).is_err());
    }
}
