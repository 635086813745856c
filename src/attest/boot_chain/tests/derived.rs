//! A record's derived anchor inside `evaluate`: on the real OVMF log, the
//! kernel PCR 4 measured ([`FIRMWARE_KERNEL`]) must be the one the record
//! names, and each certificate one the policy lists as built into it.

use super::evaluate::{content, content_of, policy, uefi_with, NONCE};
use super::*;
use crate::attest::check::evaluate;
use crate::attest::policy::{KernelCert, Policy, DERIVED_NOT_CHECKED};
use crate::attest::report::{render_text, CheckName, Report};
use crate::measure::{DerivedCert, DerivedRecord, Stage};

const BUILD_KEY: &str = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b";
const ATTACKER: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Both records with a derived anchor of `kernel` holding `certs`
/// (sha256, subject).
fn records(kernel: &str, certs: &[(&str, &str)]) -> Vec<Vec<u8>> {
    [Stage::Early, Stage::PrePivot]
        .into_iter()
        .map(|stage| {
            let mut c = content_of(stage);
            c.derived_anchor = Some(DerivedRecord {
                release: "6.1.0-57-amd64".into(),
                kernel_sha256: kernel.into(),
                certs: certs
                    .iter()
                    .map(|(sha256, subject)| DerivedCert {
                        sha256: (*sha256).into(),
                        subject: (*subject).into(),
                        key_id: String::new(),
                    })
                    .collect(),
            });
            serde_json::to_vec(&c).unwrap()
        })
        .collect()
}

/// The real boot's chain, with the build key as the measured kernel's
/// only certificate.
fn pinned() -> BootChain {
    let mut b = chain();
    b.module_certs = vec![KernelCert {
        kernel: FIRMWARE_KERNEL.into(),
        cert: BUILD_KEY.into(),
    }];
    b
}

fn attest(records: &[Vec<u8>], b: BootChain) -> Report {
    let u = uefi_with(
        &firmware_log(),
        Some(FIRMWARE_LOG.to_vec()),
        &[0, 4, 7, 9, 12],
        records,
    );
    evaluate(&u.ak, &u.ev, NONCE, &policy(b), true).unwrap()
}

#[test]
fn the_measured_kernel_s_own_certificate_is_trusted() {
    let r = attest(
        &records(FIRMWARE_KERNEL, &[(BUILD_KEY, "Debian build key")]),
        pinned(),
    );
    assert!(r.trusted, "{}", render_text(&r));
    assert!(r.not_checked.is_empty(), "{:?}", r.not_checked);
}

#[test]
fn a_swapped_certificate_is_not_trusted_and_named() {
    let r = attest(
        &records(FIRMWARE_KERNEL, &[(ATTACKER, "CN=Attacker module key")]),
        pinned(),
    );
    assert!(!r.trusted);
    let f = r.first_failure.clone().unwrap();
    assert_eq!(f.check, CheckName::Policy);
    assert_eq!(
        r.verdict,
        format!(
            "NOT TRUSTED: policy: record 1: (early) derived anchor: certificate 5a5a5a5a5a5a5a5a… (CN=Attacker module key) is not built into kernel {FIRMWARE_KERNEL} (the policy allows: 6b6b6b6b6b6b6b6b…) (2 violation(s) in all)"
        )
    );
    assert_eq!(r.records[1].violations.len(), 1, "the pre-pivot record too");
}

#[test]
fn another_kernel_s_anchor_is_not_trusted() {
    // The record names another kernel the policy allows, with its own key;
    // the firmware measured the real boot's kernel.
    let other = "d4".repeat(32);
    let mut b = pinned();
    b.kernels.push(other.clone());
    b.module_certs.push(KernelCert {
        kernel: other.clone(),
        cert: ATTACKER.into(),
    });
    let r = attest(&records(&other, &[(ATTACKER, "Other build key")]), b);
    assert!(!r.trusted);
    assert!(
        r.verdict.starts_with(&format!(
            "NOT TRUSTED: policy: record 1: (early) derived anchor: made from kernel {other}, but the firmware measured kernel {FIRMWARE_KERNEL} (PCR 4) ("
        )),
        "{}",
        r.verdict
    );
    let text = render_text(&r);
    assert!(
        text.contains(&format!("    record 1: (early) derived anchor: certificate 5a5a5a5a5a5a5a5a… (Other build key) is not built into kernel {FIRMWARE_KERNEL} (the policy allows: 6b6b6b6b6b6b6b6b…)\n")),
        "{text}"
    );
}

#[test]
fn without_a_boot_chain_the_derived_anchor_is_not_checked_and_says_so() {
    let recs = records(FIRMWARE_KERNEL, &[(ATTACKER, "CN=Attacker module key")]);
    let u = uefi_with(&firmware_log(), None, &[0, 4, 7, 9, 12], &recs);
    let r = evaluate(&u.ak, &u.ev, NONCE, &Policy::default(), false).unwrap();
    assert!(r.trusted, "{}", render_text(&r));
    assert_eq!(
        r.not_checked.last().map(String::as_str),
        Some(DERIVED_NOT_CHECKED)
    );
    assert!(
        render_text(&r).contains(
            "; the derived anchor's certificates (no kernel in the policy to check them against)\n"
        ),
        "{}",
        render_text(&r)
    );
    // Records without one: the list is as before.
    let plain = [content(Stage::Early), content(Stage::PrePivot)];
    let u = uefi_with(&firmware_log(), None, &[0, 4, 7, 9, 12], &plain);
    let r = evaluate(&u.ak, &u.ev, NONCE, &Policy::default(), false).unwrap();
    assert!(!r.not_checked.iter().any(|n| n == DERIVED_NOT_CHECKED));
}
