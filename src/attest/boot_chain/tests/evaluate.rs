//! The boot-chain and firmware-replay checks inside `evaluate`: a quote
//! over PCRs 0, 4, 9 (the firmware's values) and 12 (modseal's records),
//! signed by a software AK.

use super::*;
use crate::attest::check::{evaluate, BadInput};
use crate::attest::evidence::{Evidence, FirmwareLogFile};
use crate::attest::pcrs::PcrValues;
use crate::attest::policy::Policy;
use crate::attest::quote_msg::tests::attest_bytes;
use crate::attest::report::{render_text, CheckName, ReplayResult, Report, Status};
use crate::attest::selection::BankSelection;
use crate::attest::signature::tests::{p256_ak, sign};
use crate::measure::{record_bytes, Content, Mode, Stage, StageResult, UnsealOutcome};

pub(super) const NONCE: &[u8] = b"uefi nonce";

pub(super) struct Uefi {
    pub(super) ak: crate::verify::pubkey::PublicKey,
    pub(super) ev: Evidence,
}

pub(super) fn content(stage: Stage) -> Vec<u8> {
    serde_json::to_vec(&content_of(stage)).unwrap()
}

/// A passing record of `stage`.
pub(super) fn content_of(stage: Stage) -> Content {
    Content {
        version: crate::measure::CONTENT_VERSION,
        stage,
        mode: Mode::Enforce,
        result: StageResult::Pass,
        anchor_sha256: Some("ab".repeat(32)),
        unseal: UnsealOutcome::Ok,
        derived_anchor: None,
        modules: Vec::new(),
        unverified_loaded: Some(Vec::new()),
        ignored: Vec::new(),
        module_config: Vec::new(),
        config_refused: Vec::new(),
        loaded: Vec::new(),
    }
}

/// The TPM's PCRs after the real boot (`measured`: its firmware log's
/// events, in order) and modseal's two records; `shipped` is the firmware
/// log in the evidence.
fn uefi(measured: &FirmwareLog, shipped: Option<Vec<u8>>, pcrs: &[u8]) -> Uefi {
    let records = [content(Stage::Early), content(Stage::PrePivot)];
    uefi_with(measured, shipped, pcrs, &records)
}

/// [`uefi`] with these records in PCR 12.
pub(super) fn uefi_with(
    measured: &FirmwareLog,
    shipped: Option<Vec<u8>>,
    pcrs: &[u8],
    records: &[Vec<u8>],
) -> Uefi {
    let key = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
    let ak = p256_ak(&key);
    let fw = crate::attest::firmware::values(measured);
    let mut log = Vec::new();
    let mut pcr12 = vec![0u8; 32];
    for c in records {
        log.extend(record_bytes(12, c, &[PcrBank::Sha256]));
        pcr12 = PcrBank::Sha256.extend(&pcr12, &PcrBank::Sha256.hash(c));
    }
    let values: Vec<Vec<u8>> = pcrs
        .iter()
        .map(|&p| match p {
            12 => pcr12.clone(),
            p => fw
                .get(&(p, PcrBank::Sha256))
                .cloned()
                .unwrap_or_else(|| vec![0; 32]),
        })
        .collect();
    let digest = PcrBank::Sha256.hash(&values.concat());
    let file = PcrValues::new(
        vec![BankSelection {
            hash: TPM_ALG_SHA256,
            pcrs: pcrs.to_vec(),
        }],
        values,
    )
    .to_serialized()
    .unwrap();
    let msg = attest_bytes(NONCE, &[(TPM_ALG_SHA256, pcrs)], &digest);
    let sig = sign(&key, &msg);
    Uefi {
        ak,
        ev: Evidence {
            msg,
            sig,
            pcrs: file,
            log,
            firmware_log: shipped.map(|bytes| FirmwareLogFile {
                path: "q/binary_bios_measurements".into(),
                bytes,
            }),
            cmdline: None,
        },
    }
}

pub(super) fn policy(b: BootChain) -> Policy {
    Policy {
        anchors: vec!["ab".repeat(32)],
        boot: Some(b),
        ..Policy::default()
    }
}

fn attest(u: &Uefi, b: BootChain) -> Report {
    evaluate(&u.ak, &u.ev, NONCE, &policy(b), true).unwrap()
}

fn good() -> Uefi {
    uefi(
        &firmware_log(),
        Some(FIRMWARE_LOG.to_vec()),
        &[0, 4, 7, 9, 12],
    )
}

#[test]
fn a_real_uefi_boot_is_trusted_and_its_pcrs_are_the_guest_s() {
    let u = good();
    // The firmware's replay is what the guest read from its TPM.
    let real = firmware_pcrs();
    for p in [0u8, 4, 7, 9] {
        assert_eq!(
            crate::attest::firmware::values(&firmware_log())[&(p, PcrBank::Sha256)],
            real[usize::from(p)],
            "PCR {p}"
        );
    }
    let mut b = chain();
    b.cmdlines.push(firmware_cmdline().into());
    let r = attest(&u, b);
    assert!(r.trusted, "{}", render_text(&r));
    assert!(
        r.checks.iter().all(|c| c.status == Status::Pass),
        "{}",
        render_text(&r)
    );
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.name()).collect();
    assert_eq!(
        names,
        [
            "signature",
            "quote",
            "nonce",
            "pcr-digest",
            "replay",
            "firmware-replay",
            "boot-chain",
            "policy"
        ]
    );
    assert!(
        r.verdict
            .ends_with("; the kernel and the initrd are the policy's (PCRs 4 and 9)"),
        "{}",
        r.verdict
    );
    let text = render_text(&r);
    assert!(text.contains("  firmware-replay: ok: 24 firmware event(s) replay to the quoted PCR value(s) 0/sha256, 4/sha256, 7/sha256, 9/sha256; not quoted, not checked: 0/sha1, "), "{text}");
    assert!(r.not_checked.is_empty(), "{:?}", r.not_checked);
    let fw9 = r
        .firmware_replay
        .iter()
        .find(|x| x.pcr == 9 && x.bank == "sha256")
        .unwrap();
    assert_eq!(
        (fw9.result, fw9.records.clone()),
        (ReplayResult::Match, vec![21, 22])
    );
    // Without a cmdline line the quote must carry the command line, and
    // this one ran its own /init (rdinit=).
    let mut open = chain();
    open.cmdlines.clear();
    let r = attest(&u, open);
    assert!(!r.trusted);
    assert!(
        failure(&r)
            .1
            .contains("the quote carries no copy of it (cmdline)"),
        "{}",
        r.verdict
    );
    assert_eq!(
        r.not_checked,
        ["the command line as a whole (the policy pins none; only the options that bypass modseal are refused)"]
    );
}

fn failure(r: &Report) -> (CheckName, String) {
    let f = r.first_failure.clone().expect("not trusted");
    (f.check, f.message)
}

#[test]
fn the_boot_chain_decides_once_the_firmware_log_replays() {
    let u = good();
    let mut b = chain();
    b.initrds = vec![other()];
    let (check, msg) = failure(&attest(&u, b));
    assert_eq!(check, CheckName::BootChain);
    assert!(
        msg.starts_with("boot chain: PCR 9 event #22 (EFI stub: initrd): sha256 af28"),
        "{msg}"
    );
    let mut b = chain();
    b.kernels = vec![other()];
    b.initrds = vec![other()];
    let r = attest(&u, b);
    let (_, msg) = failure(&r);
    assert!(msg.starts_with("boot chain: PCR 4 event #10 "), "{msg}");
    assert!(msg.ends_with(" (2 problem(s) in all)"), "{msg}");
    assert!(render_text(&r).contains("\n    PCR 9 event #22 (EFI stub: initrd)"));
}

#[test]
fn an_edited_dropped_or_reordered_event_is_named() {
    let shipped = |edit: &dyn Fn(&mut Vec<Event>)| {
        let mut ev = firmware_log().events;
        edit(&mut ev);
        encode_firmware_log(&ev)
    };
    let fail = |bytes: Vec<u8>| {
        let u = uefi(&firmware_log(), Some(bytes), &[0, 4, 7, 9, 12]);
        failure(&attest(&u, chain()))
    };
    // The kernel's digest replaced by an allowed one: PCR 4 no longer replays.
    let (check, msg) = fail(shipped(&|ev| {
        ev[9].digests[1].1 = vec![0x5e; 32];
    }));
    assert_eq!(check, CheckName::FirmwareReplay);
    assert!(msg.starts_with("firmware log replay mismatch: PCR 4 sha256: the firmware log's events of PCR 4 (#10 EV_EFI_BOOT_SERVICES_APPLICATION, #13 EV_EFI_ACTION, #18 EV_SEPARATOR) replay to "), "{msg}");
    assert!(msg.contains(", the quote has aae55a9bb4a7cdd6844c1151ef3d32ad7538b0ae4e9a17a7c777d5b833ec69a0: an event was edited, dropped, added or moved"), "{msg}");
    // An action's text edited: named although PCR 4 still replays.
    let (_, msg) = fail(shipped(&|ev| ev[12].data[0] = b'c'));
    assert_eq!(msg, "firmware log replay mismatch: event #13 (EV_EFI_ACTION, PCR 4): its sha256 digest 3d6772b4f84ed47595d72a2c4c5ffd15f5bb72c7507fe26f2aaee2c69d5633ba is not the hash of its data (the event was edited)");
    // The command line's event dropped.
    let (_, msg) = fail(shipped(&|ev| {
        ev.remove(20);
    }));
    assert!(msg.starts_with("firmware log replay mismatch: PCR 9 sha256: the firmware log's events of PCR 9 (#21 EV_EVENT_TAG) replay to"), "{msg}");
    // The stub's two events swapped.
    let (_, msg) = fail(shipped(&|ev| ev.swap(20, 21)));
    assert!(
        msg.ends_with(": events #21 and #22 are out of order (the log is reordered)"),
        "{msg}"
    );
}

#[test]
fn the_forged_log_attack_is_not_trusted() {
    // A boot whose initrd skipped modseal: the stub measured another initrd.
    let bad_boot = edited(|ev| ev[21].digests = vec![(PcrBank::Sha256.alg_id(), vec![0xba; 32])]);
    // Root replays a good boot's records into PCR 12 (the TPM's PCR 12 is
    // then a good one: `uefi` computes it so) and ships the good firmware log.
    let u = uefi(&bad_boot, Some(FIRMWARE_LOG.to_vec()), &[4, 9, 12]);
    let (check, msg) = failure(&attest(&u, chain()));
    assert_eq!(check, CheckName::FirmwareReplay);
    assert!(
        msg.starts_with("firmware log replay mismatch: PCR 9 sha256: "),
        "{msg}"
    );
    // Shipping the bad boot's own log: the initrd is named.
    let bytes = encode_firmware_log(&bad_boot.events);
    let u = uefi(&bad_boot, Some(bytes), &[4, 9, 12]);
    let (check, msg) = failure(&attest(&u, chain()));
    assert_eq!(check, CheckName::BootChain);
    assert!(msg.starts_with(&format!("boot chain: PCR 9 event #22 (EFI stub: initrd): sha256 {} is not an initrd the policy allows", "ba".repeat(32))), "{msg}");
}

#[test]
fn pcrs_4_and_9_must_be_quoted_and_the_log_must_parse() {
    let u = uefi(&firmware_log(), Some(FIRMWARE_LOG.to_vec()), &[0, 9, 12]);
    let (check, msg) = failure(&attest(&u, chain()));
    assert_eq!(check, CheckName::FirmwareReplay);
    assert_eq!(msg, "firmware log replay mismatch: PCR 4 is not quoted (sha256): the policy checks the kernel the firmware measured there, and the quote covers sha256:0,9,12 (modseal quote --pcrs 4,9,12)");
    let bad = |shipped: Option<Vec<u8>>| {
        let u = uefi(&firmware_log(), shipped, &[4, 9, 12]);
        evaluate(&u.ak, &u.ev, NONCE, &policy(chain()), true).unwrap_err()
    };
    let e = bad(None);
    assert!(matches!(e, BadInput::NoFirmwareLog), "{e}");
    assert!(e.to_string().contains("binary_bios_measurements"), "{e}");
    let e = bad(Some(FIRMWARE_LOG[..FIRMWARE_LOG.len() - 7].to_vec()));
    assert!(
        e.to_string().starts_with(
            "q/binary_bios_measurements: firmware event log: event 24 at byte offset 5212: "
        ),
        "{e}"
    );
    let e = bad(Some(b"garbage".to_vec()));
    assert!(matches!(e, BadInput::FirmwareLog { .. }), "{e}");
    // Without a boot chain (--no-policy) no log is needed; one given is replayed.
    let u = uefi(&firmware_log(), None, &[4, 9, 12]);
    let r = evaluate(&u.ak, &u.ev, NONCE, &Policy::default(), false).unwrap();
    assert!(r.trusted, "{}", render_text(&r));
    let u = uefi(
        &edited(|ev| ev[9].digests[1].1[0] ^= 1),
        Some(FIRMWARE_LOG.to_vec()),
        &[4, 9, 12],
    );
    let r = evaluate(&u.ak, &u.ev, NONCE, &Policy::default(), false).unwrap();
    assert_eq!(failure(&r).0, CheckName::FirmwareReplay);
    assert_eq!(r.checks[6].status, Status::Skipped);
}

/// The real log with `event` appended in PCR 12, quoted after modseal's
/// two records extended it: what `evaluate` makes of it.
fn shared_pcr12(event: impl FnOnce(&[Event]) -> Event) -> Report {
    let log = edited(|ev| {
        let e = event(ev);
        ev.push(e);
    });
    let bytes = encode_firmware_log(&log.events);
    let key = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
    let u = uefi(&log, Some(bytes), &[4, 9, 12]);
    // `uefi` started PCR 12 at zero: the TPM's value is the firmware's then the records'.
    let start = crate::attest::firmware::values(&log)[&(12, PcrBank::Sha256)].clone();
    let mut pcr12 = start;
    for stage in [Stage::Early, Stage::PrePivot] {
        pcr12 = PcrBank::Sha256.extend(&pcr12, &PcrBank::Sha256.hash(&content(stage)));
    }
    let mut values = crate::attest::pcrs::parse_pcrs(&u.ev.pcrs).unwrap();
    values.values[2] = pcr12;
    let digest = PcrBank::Sha256.hash(&values.values.concat());
    let msg = attest_bytes(NONCE, &[(TPM_ALG_SHA256, &[4, 9, 12])], &digest);
    let ev = Evidence {
        sig: sign(&key, &msg),
        msg,
        pcrs: values.to_serialized().unwrap(),
        ..u.ev.clone()
    };
    evaluate(&u.ak, &ev, NONCE, &policy(chain()), true).unwrap()
}

#[test]
fn a_pcr_shared_with_modseal_s_records_starts_at_the_firmware_s_value() {
    // systemd-boot measured the command line into PCR 12 (EV_IPL, the same
    // digest as the stub's load options) before the initramfs ran.
    let r = shared_pcr12(|ev| Event {
        pcr: 12,
        event_type: EV_IPL,
        data: cmdline_bytes(),
        ..ev[20].clone()
    });
    assert!(r.trusted, "{}", render_text(&r));
    assert!(
        render_text(&r).contains("; PCR(s) 12 continue with modseal's records: checked by replay")
    );
    // Anything else there could absorb modseal's real records: refused.
    let r = shared_pcr12(|ev| Event {
        pcr: 12,
        ..ev[12].clone()
    });
    assert!(!r.trusted);
    assert!(
        failure(&r).1.contains("PCR 12 event #25 (EV_EFI_ACTION): modseal's PCR may hold, before modseal's records, only a boot loader's EV_IPL of the command line"),
        "{}",
        render_text(&r)
    );
    let r = shared_pcr12(|ev| Event {
        pcr: 12,
        event_type: EV_IPL,
        digests: ev[21].digests.clone(),
        ..ev[20].clone()
    });
    assert!(!r.trusted, "{}", render_text(&r));
}

fn cmdline_bytes() -> Vec<u8> {
    let mut b: Vec<u8> = firmware_cmdline()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    b.extend([0, 0]);
    b
}
