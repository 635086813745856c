//! `sealed.json`: what an enrollment was sealed to.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::tpm::{PcrBank, Srk, SrkTemplate};

use super::error::SealError;

/// The contents of `sealed.json`, validated: the PCR list is ascending, every
/// listed PCR has a value of the bank's size, and the policy digest is the
/// PolicyPCR digest of those values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    /// The bank of the PolicyPCR policy.
    pub bank: PcrBank,
    /// The PCRs sealed to, ascending.
    pub pcrs: Vec<u8>,
    /// One value per PCR, in `pcrs` order.
    pub pcr_values: Vec<Vec<u8>>,
    /// The PolicyPCR digest of `pcr_values` (the sealed object's authPolicy).
    pub policy_digest: Vec<u8>,
    /// SHA-256 of the trust bundle sealed.
    pub bundle_sha256: [u8; 32],
    /// The storage root key the object is a child of (for a primary, with
    /// the template it is recreated from: `srk_template`, RSA-2048 when the
    /// field is absent).
    pub srk: Srk,
    /// That key's name at enrollment (`nameAlg || H(TPMT_PUBLIC)`): the
    /// unseal salts its session only with an SRK of this name.
    pub srk_name: Vec<u8>,
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
    // Absent in enrollments from before ECC primaries: those are RSA-2048.
    srk_template: Option<String>,
    // Optional here only to name its absence (an enrollment from before the
    // pin) rather than fail as malformed JSON.
    srk_name: Option<String>,
}

/// Strict hex: digits only, an exact length (no `:` separators).
pub(crate) fn hex_exact(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != len * 2 || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    crate::util::hex::parse(text).filter(|v| v.len() == len)
}

/// [`hex_exact`] of a `sealed.json` field.
fn hex_field(what: &str, text: &str, len: usize) -> Result<Vec<u8>, SealError> {
    hex_exact(text, len).ok_or_else(|| SealError::Hex {
        what: what.to_owned(),
        digits: len * 2,
    })
}

impl SealedInfo {
    /// Parses and validates `sealed.json`.
    pub fn from_json(bytes: &[u8]) -> Result<SealedInfo, SealError> {
        let j: SealedJson = serde_json::from_slice(bytes).map_err(SealError::Json)?;
        if j.version != 1 {
            return Err(SealError::Version(j.version));
        }
        let bank =
            PcrBank::from_name(&j.bank).ok_or_else(|| SealError::UnknownBank(j.bank.clone()))?;
        check_pcr_list(&j.pcrs)?;
        let values = pcr_values(&j, bank)?;
        let policy = hex_field("policy_digest", &j.policy_digest, 32)?;
        let expected = bank.policy_pcr_digest(&j.pcrs, &values);
        if policy != expected {
            return Err(SealError::PolicyMismatch {
                written: j.policy_digest,
                expected: crate::util::hex::lower(&expected),
            });
        }
        let bundle = hex_field("bundle_sha256", &j.bundle_sha256, 32)?;
        let bundle_sha256: [u8; 32] = bundle.try_into().map_err(|_| SealError::Hex {
            what: "bundle_sha256".into(),
            digits: 64,
        })?;
        let srk = srk(&j.srk, j.srk_template.as_deref())?;
        let srk_name = srk_name(j.srk_name.as_deref())?;
        Ok(SealedInfo {
            bank,
            pcrs: j.pcrs,
            pcr_values: values,
            policy_digest: policy,
            bundle_sha256,
            srk,
            srk_name,
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
            "{{\n  \"version\": 1,\n  \"bank\": \"{}\",\n  \"pcrs\": [{}],\n  \"pcr_values\": {{\n{}\n  }},\n  \"policy_digest\": \"{}\",\n  \"bundle_sha256\": \"{}\",\n  \"srk\": \"{}\",{}\n  \"srk_name\": \"{}\"\n}}\n",
            self.bank.name(),
            pcrs.join(", "),
            values.join(",\n"),
            crate::util::hex::lower(&self.policy_digest),
            crate::util::hex::lower(&self.bundle_sha256),
            self.srk.to_config(),
            self.srk
                .template()
                .map(|t| format!("\n  \"srk_template\": \"{}\",", t.name()))
                .unwrap_or_default(),
            crate::util::hex::lower(&self.srk_name)
        )
    }
}

/// `srk` and `srk_template`: a primary's template is RSA-2048 when not
/// written (modseal's only template before ECC P-256); a persistent key has
/// none (its pinned name says which key it is).
fn srk(text: &str, template: Option<&str>) -> Result<Srk, SealError> {
    let template = template
        .map(|t| SrkTemplate::from_name(t).ok_or_else(|| SealError::SrkTemplate(t.to_owned())))
        .transpose()?;
    match Srk::from_config(text, template) {
        Some(srk) => Ok(srk),
        None if template.is_some() && Srk::from_config(text, None).is_some() => {
            Err(SealError::SrkTemplateNotPrimary(text.to_owned()))
        }
        None => Err(SealError::Srk(text.to_owned())),
    }
}

/// `srk_name`: required (an enrollment without it could be unsealed through
/// a session salted with any key the bus offers), lowercase or uppercase hex
/// of a name with a known name algorithm.
fn srk_name(text: Option<&str>) -> Result<Vec<u8>, SealError> {
    let text = text.ok_or(SealError::NoSrkName)?;
    text.bytes()
        .all(|c| c.is_ascii_hexdigit())
        .then(|| crate::util::hex::parse(text))
        .flatten()
        .filter(|n| crate::tpm::name::is_object_name(n))
        .ok_or_else(|| SealError::SrkName(text.to_owned()))
}

/// A PCR list is non-empty, in range, strictly ascending.
pub(crate) fn check_pcr_list(pcrs: &[u8]) -> Result<(), SealError> {
    if pcrs.is_empty() {
        return Err(SealError::EmptyPcrList);
    }
    if let Some(p) = pcrs.iter().find(|&&p| p > 23) {
        return Err(SealError::PcrOutOfRange(*p));
    }
    if pcrs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(SealError::PcrOrder);
    }
    Ok(())
}

/// One value per listed PCR, in list order, and none for another PCR.
fn pcr_values(j: &SealedJson, bank: PcrBank) -> Result<Vec<Vec<u8>>, SealError> {
    let mut values = Vec::with_capacity(j.pcrs.len());
    for p in &j.pcrs {
        let v = j
            .pcr_values
            .get(&p.to_string())
            .ok_or(SealError::MissingValue(*p))?;
        values.push(hex_field(
            &format!("pcr_values[{p}]"),
            v,
            bank.digest_len(),
        )?);
    }
    if j.pcr_values.len() != j.pcrs.len() {
        let extra: Vec<String> = j
            .pcr_values
            .keys()
            .filter(|k| !j.pcrs.iter().any(|p| p.to_string() == **k))
            .cloned()
            .collect();
        return Err(SealError::ExtraValues(extra));
    }
    Ok(values)
}

/// What is wrong with a PCR read that should be `want` values of the bank's
/// size (`None`: nothing). A short or odd answer must not be sealed to or
/// compared as if it were the PCRs.
pub(crate) fn pcr_read_shape(bank: PcrBank, want: usize, values: &[Vec<u8>]) -> Option<String> {
    let len = bank.digest_len();
    if values.len() == want && values.iter().all(|v| v.len() == len) {
        return None;
    }
    let sizes: Vec<String> = values.iter().map(|v| v.len().to_string()).collect();
    Some(format!(
        "{} value(s) of {} bytes, expected {want} of {len}",
        values.len(),
        if sizes.is_empty() {
            "0".to_owned()
        } else {
            sizes.join("/")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            srk_name: [&[0x00, 0x0b][..], &[4u8; 32]].concat(),
        }
    }

    #[test]
    fn sealed_json_round_trip() {
        let i = info();
        let text = i.to_json();
        assert!(text.contains("\"srk\": \"persistent:0x81000001\""));
        assert!(text.contains(&format!(
            "\"srk_name\": \"000b{}\"",
            crate::util::hex::lower(&[4u8; 32])
        )));
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
    fn srk_name_is_required_and_checked() {
        let good: serde_json::Value = serde_json::from_str(&info().to_json()).unwrap();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            SealedInfo::from_json(v.to_string().as_bytes())
        };
        let msg = |f: &dyn Fn(&mut serde_json::Value)| with(f).unwrap_err().to_string();
        // An enrollment from before the pin: refused, saying what to do.
        assert_eq!(
            msg(&|v| {
                v.as_object_mut().unwrap().remove("srk_name");
            }),
            "no srk_name: this enrollment predates pinning the storage root key's name, without which something on the TPM bus could choose the key the unseal's session is salted with; re-run 'modseal enroll'"
        );
        let sha256 = crate::util::hex::lower(&[4u8; 32]);
        for bad in [
            String::new(),
            sha256.clone(),                   // no name algorithm
            format!("0010{sha256}"),          // TPM_ALG_NULL
            format!("0004{sha256}"),          // sha1 with a sha256 digest
            format!("000b{}", &sha256[..62]), // short
            format!("000b{sha256}00"),        // long
            format!("000b{}zz", &sha256[..62]),
            format!("00:0b{sha256}"),
            format!("+00b{sha256}"),
        ] {
            assert!(
                matches!(
                    with(&|v| v["srk_name"] = bad.clone().into()),
                    Err(SealError::SrkName(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            msg(&|v| v["srk_name"] = "00".into()),
            "srk_name '00': expected a name in hex (name algorithm and digest, e.g. 000b and 64 hex digits for sha256)"
        );
        assert!(with(&|v| v["srk_name"] = serde_json::Value::Null).is_err());
        // Uppercase hex is read (tpm2-tools prints lowercase; either is a name).
        let upper = with(&|v| v["srk_name"] = format!("000B{}", sha256.to_uppercase()).into());
        assert_eq!(upper.unwrap(), info());
        let sha384 = crate::util::hex::lower(&[5u8; 48]);
        let i = with(&|v| v["srk_name"] = format!("000c{sha384}").into()).unwrap();
        assert_eq!(i.srk_name.len(), 50);
    }

    #[test]
    fn srk_config_forms() {
        let ecc = Some(SrkTemplate::EccP256);
        assert_eq!(
            Srk::from_config("primary", None),
            Some(Srk::Primary(SrkTemplate::Rsa2048))
        );
        assert_eq!(
            Srk::from_config("primary", ecc),
            Some(Srk::Primary(SrkTemplate::EccP256))
        );
        assert_eq!(
            Srk::from_config("persistent:0x81000001", None),
            Some(Srk::Persistent(0x8100_0001))
        );
        assert_eq!(Srk::from_config("persistent:0x81000001", ecc), None);
        assert_eq!(Srk::Primary(SrkTemplate::EccP256).to_config(), "primary");
        assert_eq!(Srk::Primary(SrkTemplate::Rsa2048).to_config(), "primary");
        assert_eq!(
            Srk::Persistent(0x8100_0001).to_config(),
            "persistent:0x81000001"
        );
        assert_eq!(Srk::from_config("persistent:0x81800000", None), None);
        assert_eq!(Srk::from_config("Primary", None), None);
        for t in [SrkTemplate::Rsa2048, SrkTemplate::EccP256] {
            assert_eq!(SrkTemplate::from_name(t.name()), Some(t));
        }
        assert_eq!(SrkTemplate::from_name("ecc256"), None);
    }

    fn primary_info(template: SrkTemplate) -> SealedInfo {
        SealedInfo {
            srk: Srk::Primary(template),
            ..info()
        }
    }

    #[test]
    fn a_primary_records_its_template() {
        for t in [SrkTemplate::EccP256, SrkTemplate::Rsa2048] {
            let i = primary_info(t);
            let text = i.to_json();
            assert!(
                text.contains(&format!(
                    "  \"srk\": \"primary\",\n  \"srk_template\": \"{}\",\n  \"srk_name\": \"000b",
                    t.name()
                )),
                "{text}"
            );
            assert_eq!(SealedInfo::from_json(text.as_bytes()).unwrap(), i);
        }
        // A persistent SRK has none.
        assert!(!info().to_json().contains("srk_template"));
    }

    #[test]
    fn an_enrollment_without_a_template_is_rsa_2048() {
        // sealed.json as modseal wrote it before ECC primaries.
        let text = primary_info(SrkTemplate::Rsa2048).to_json();
        let old = text.replace("\n  \"srk_template\": \"rsa-2048\",", "");
        assert!(!old.contains("srk_template"), "{old}");
        let i = SealedInfo::from_json(old.as_bytes()).unwrap();
        assert_eq!(i.srk, Srk::Primary(SrkTemplate::Rsa2048));
    }

    #[test]
    fn bad_templates_are_refused() {
        let good: serde_json::Value =
            serde_json::from_str(&primary_info(SrkTemplate::EccP256).to_json()).unwrap();
        let msg = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            SealedInfo::from_json(v.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg(&|v| v["srk_template"] = "ecc256".into()),
            "srk_template 'ecc256': expected 'ecc-p256' or 'rsa-2048'"
        );
        assert_eq!(
            msg(&|v| v["srk_template"] = 1.into()).split(" at ").next(),
            Some("not a modseal sealed.json: invalid type: integer `1`, expected a string")
        );
        assert_eq!(
            msg(&|v| v["srk"] = "persistent:0x81000001".into()),
            "srk_template with srk 'persistent:0x81000001': only a primary SRK is made from a template (a persistent one is known by its srk_name)"
        );
        assert_eq!(
            msg(&|v| v["srk"] = "x".into()),
            "srk 'x': expected 'primary' or 'persistent:0x81xxxxxx'"
        );
    }

    #[test]
    fn errors_keep_their_messages() {
        let good: serde_json::Value = serde_json::from_str(&info().to_json()).unwrap();
        let msg = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = good.clone();
            f(&mut v);
            SealedInfo::from_json(v.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            msg(&|v| v["version"] = 2.into()),
            "version 2 is not supported (expected 1)"
        );
        assert_eq!(msg(&|v| v["bank"] = "md5".into()), "unknown PCR bank 'md5'");
        assert_eq!(
            msg(&|v| v["pcrs"] = serde_json::json!([])),
            "empty PCR list"
        );
        assert_eq!(
            msg(&|v| v["pcrs"] = serde_json::json!([7, 24])),
            "PCR 24 out of range (0-23)"
        );
        assert_eq!(
            msg(&|v| v["pcrs"] = serde_json::json!([12, 7])),
            "PCR list must be ascending without repeats"
        );
        assert_eq!(
            msg(&|v| v["pcrs"] = serde_json::json!([7, 12, 13])),
            "no value for PCR 13"
        );
        assert_eq!(
            msg(&|v| v["pcr_values"]["12"] = "00".into()),
            "pcr_values[12]: expected 64 hex digits"
        );
        assert_eq!(
            msg(&|v| v["pcr_values"]["13"] = "00".into()),
            "pcr_values has entries for PCRs not in the list: 13"
        );
        assert!(
            msg(&|v| v["policy_digest"] = "00".repeat(32).into()).starts_with("policy_digest 0000")
        );
        assert_eq!(
            msg(&|v| v["srk"] = "x".into()),
            "srk 'x': expected 'primary' or 'persistent:0x81xxxxxx'"
        );
        assert!(SealedInfo::from_json(b"{")
            .unwrap_err()
            .to_string()
            .starts_with("not a modseal sealed.json: "));
    }

    #[test]
    fn pcr_read_shapes() {
        let b = PcrBank::Sha256;
        assert_eq!(pcr_read_shape(b, 2, &[vec![0; 32], vec![0; 32]]), None);
        assert_eq!(
            pcr_read_shape(b, 2, &[vec![0; 32]]).unwrap(),
            "1 value(s) of 32 bytes, expected 2 of 32"
        );
        assert_eq!(
            pcr_read_shape(b, 1, &[vec![0; 20]]).unwrap(),
            "1 value(s) of 20 bytes, expected 1 of 32"
        );
        assert_eq!(
            pcr_read_shape(b, 1, &[]).unwrap(),
            "0 value(s) of 0 bytes, expected 1 of 32"
        );
        // The in-memory TPM answers in shape.
        let mut tpm = crate::tpm::memory::MemoryTpm::sha256();
        let v = crate::tpm::Tpm::pcr_read(&mut tpm, b, &[7, 12]).unwrap();
        assert_eq!(pcr_read_shape(b, 2, &v), None);
    }
}
