//! A record's derived anchor against the kernel the firmware measured.
//!
//! The derived anchor (the certificates the dracut module took out of a
//! kernel image whose signature chained to a sealed `kernel-signer`) is not
//! sealed: whoever can write the initramfs can swap it for their own
//! certificate and sign modules with it. What the boot cannot prove, the
//! verifier checks: the record must name the kernel the firmware measured
//! into PCR 4, and every certificate it trusted must be one the policy lists
//! as built into that kernel (`kernel-module-cert`, taken from the kernel
//! image itself when the policy was made).

use super::{BootChain, Policy, Violation};
use crate::measure::{Content, DerivedRecord, Record};
use crate::util::text::clip;

/// What `attest` leaves unchecked when records carry a derived anchor and
/// the policy pins no kernel.
pub const DERIVED_NOT_CHECKED: &str =
    "the derived anchor's certificates (no kernel in the policy to check them against)";

/// The violations of every modseal record of the policy's PCR that carries
/// a derived anchor, against `boot` and the kernel the firmware measured
/// (`measured`: its PCR 4 digest, hex; `None`: none was measured). Records
/// that do not parse are the policy check's to name.
pub fn check_derived(
    policy: &Policy,
    boot: &BootChain,
    records: &[Record],
    measured: Option<&str>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for r in records.iter().filter(|r| r.pcr == policy.pcr) {
        if r.content_type != crate::measure::CONTENT_TYPE {
            continue;
        }
        let Ok(c) = serde_json::from_slice::<Content>(&r.content) else {
            continue;
        };
        if let Some(d) = &c.derived_anchor {
            out.extend(problems(boot, d, measured).into_iter().map(|p| Violation {
                record: Some(r.index),
                message: format!(
                    "record {}: ({}) derived anchor: {p}",
                    r.index,
                    c.stage.name()
                ),
            }));
        }
    }
    out
}

/// Whether a modseal record of the policy's PCR carries a derived anchor.
pub fn any_derived(policy: &Policy, records: &[Record]) -> bool {
    records
        .iter()
        .filter(|r| r.pcr == policy.pcr)
        .filter_map(|r| r.parse_content()?.ok())
        .any(|c| c.derived_anchor.is_some())
}

/// `0123456789abcdef…`: a digest short enough for a message.
fn short(hex: &str) -> String {
    match hex.get(..16) {
        Some(s) if hex.len() > 16 => format!("{}…", clip(s)),
        _ => clip(hex),
    }
}

/// What is wrong with one derived anchor.
fn problems(boot: &BootChain, d: &DerivedRecord, measured: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let claimed = d.kernel_sha256.to_ascii_lowercase();
    match measured {
        Some(m) if m == claimed => {}
        Some(m) => out.push(format!(
            "made from kernel {}, but the firmware measured kernel {m} (PCR 4)",
            clip(&claimed)
        )),
        None => out.push(format!(
            "made from kernel {}, but the firmware log measured no kernel (PCR 4)",
            clip(&claimed)
        )),
    }
    // The certificates must be the kernel's that ran; without a measured
    // kernel, the one the record names.
    let kernel = measured.unwrap_or(&claimed);
    let allowed = boot.certs_of(kernel);
    if d.certs.is_empty() {
        out.push("lists no certificate".into());
    }
    for cert in &d.certs {
        if allowed.contains(&cert.sha256.to_ascii_lowercase().as_str()) {
            continue;
        }
        let what = if allowed.is_empty() {
            "none: no kernel-module-cert line names that kernel".to_owned()
        } else {
            let v: Vec<String> = allowed.iter().map(|a| short(a)).collect();
            v.join(", ")
        };
        out.push(format!(
            "certificate {} ({}) is not built into kernel {} (the policy allows: {what})",
            short(&cert.sha256),
            clip(&cert.subject),
            clip(kernel)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::policy::tests::{content, log_of};
    use crate::attest::policy::KernelCert;
    use crate::measure::{DerivedCert, Mode, Stage};
    use crate::verify::Verdict;

    const KERNEL: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

    fn cert(sha: &str, subject: &str) -> DerivedCert {
        DerivedCert {
            sha256: sha.into(),
            subject: subject.into(),
            key_id: String::new(),
        }
    }

    fn boot() -> BootChain {
        BootChain {
            kernels: vec![KERNEL.into(), "d4".repeat(32)],
            initrds: vec!["af".repeat(32)],
            module_certs: vec![
                KernelCert {
                    kernel: KERNEL.into(),
                    cert: "11".repeat(32),
                },
                KernelCert {
                    kernel: "d4".repeat(32),
                    cert: "22".repeat(32),
                },
            ],
            ..BootChain::default()
        }
    }

    fn records(kernel: &str, certs: Vec<DerivedCert>) -> Vec<Record> {
        let mut early = content(Stage::Early, Mode::Enforce, Verdict::Ok);
        early.derived_anchor = Some(DerivedRecord {
            release: "6.1.0-57-amd64".into(),
            kernel_sha256: kernel.into(),
            certs,
        });
        log_of(&[early, content(Stage::PrePivot, Mode::Enforce, Verdict::Ok)])
    }

    fn messages(recs: &[Record], measured: Option<&str>) -> Vec<String> {
        check_derived(&Policy::default(), &boot(), recs, measured)
            .into_iter()
            .map(|v| v.message)
            .collect()
    }

    #[test]
    fn the_kernel_s_own_certificate_passes() {
        let recs = records(KERNEL, vec![cert(&"11".repeat(32), "Build key")]);
        assert!(messages(&recs, Some(KERNEL)).is_empty());
        // Records without a derived anchor are not this check's.
        let plain = log_of(&[content(Stage::Early, Mode::Enforce, Verdict::Ok)]);
        assert!(messages(&plain, None).is_empty());
    }

    #[test]
    fn a_swapped_certificate_is_named() {
        let recs = records(
            KERNEL,
            vec![
                cert(&"11".repeat(32), "Build key"),
                cert(&"5e".repeat(32), "Attacker\x1b"),
            ],
        );
        let v = check_derived(&Policy::default(), &boot(), &recs, Some(KERNEL));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].record, Some(1));
        assert_eq!(
            v[0].message,
            format!(
                "record 1: (early) derived anchor: certificate 5e5e5e5e5e5e5e5e… (Attacker?) is not built into kernel {KERNEL} (the policy allows: 1111111111111111…)"
            )
        );
    }

    #[test]
    fn another_kernel_s_anchor_is_named() {
        // The record names another allowed kernel, with that kernel's own
        // certificate: the kernel that ran holds another.
        let other = "d4".repeat(32);
        let recs = records(&other, vec![cert(&"22".repeat(32), "Other build key")]);
        assert_eq!(
            messages(&recs, Some(KERNEL)),
            [
                format!("record 1: (early) derived anchor: made from kernel {other}, but the firmware measured kernel {KERNEL} (PCR 4)"),
                format!("record 1: (early) derived anchor: certificate 2222222222222222… (Other build key) is not built into kernel {KERNEL} (the policy allows: 1111111111111111…)"),
            ]
        );
        // A kernel the policy lists no certificate of; none measured.
        let unknown = "e5".repeat(32);
        let recs = records(&unknown, vec![cert(&"11".repeat(32), "Build key")]);
        assert_eq!(
            messages(&recs, None),
            [
                format!("record 1: (early) derived anchor: made from kernel {unknown}, but the firmware log measured no kernel (PCR 4)"),
                format!("record 1: (early) derived anchor: certificate 1111111111111111… (Build key) is not built into kernel {unknown} (the policy allows: none: no kernel-module-cert line names that kernel)"),
            ]
        );
        let recs = records(KERNEL, Vec::new());
        assert_eq!(
            messages(&recs, Some(KERNEL)),
            ["record 1: (early) derived anchor: lists no certificate"]
        );
    }
}
