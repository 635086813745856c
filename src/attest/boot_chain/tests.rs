//! The boot-chain check on a real OVMF log (tests/data/fw-ovmf-bookworm);
//! inside `evaluate`, with the firmware-replay check: [`evaluate`].

use super::*;
use crate::attest::fixtures::{
    encode_firmware_log, firmware_cmdline, firmware_log, firmware_pcrs, FIRMWARE_INITRD,
    FIRMWARE_KERNEL, FIRMWARE_LOG,
};
use crate::measure::tcg::Event;
use crate::tpm::marshal::TPM_ALG_SHA256;

mod derived;
mod evaluate;

pub(super) fn chain() -> BootChain {
    BootChain {
        kernels: vec![FIRMWARE_KERNEL.into()],
        initrds: vec![FIRMWARE_INITRD.into()],
        // The probe boot's command line has rdinit=: pinned, it is allowed.
        cmdlines: vec![firmware_cmdline().into()],
        boot_apps: Vec::new(),
        module_certs: Vec::new(),
    }
}

fn other() -> String {
    "5e".repeat(32)
}

#[test]
fn the_stub_measures_the_command_line_as_utf16_with_its_nul() {
    // The real log's load-options event (#21) is the hash of what the
    // guest's kernel printed as its command line.
    let log = firmware_log();
    let e = &log.events[20];
    assert_eq!((e.index, e.pcr, e.event_type), (21, 9, EV_EVENT_TAG));
    assert_eq!(stub_tag(e), Some(StubEvent::LoadOptions));
    assert_eq!(
        e.digest(PcrBank::Sha256).unwrap(),
        cmdline_digest(firmware_cmdline()).as_slice()
    );
    assert_eq!(
        hex::lower(&cmdline_digest(firmware_cmdline())),
        "7efe6968551bb0d0ae5550e46c5bb933c52bd8c0c02f59a00c2ff3afc86037c0"
    );
    let e = &log.events[21];
    assert_eq!(stub_tag(e), Some(StubEvent::Initrd));
    assert_eq!(
        hex::lower(e.digest(PcrBank::Sha256).unwrap()),
        FIRMWARE_INITRD
    );
    // The tags are the kernel's, read as u32 little-endian.
    assert_eq!(&e.data[..4], &[0xec, 0x22, 0x3b, 0x8f]);
}

#[test]
fn the_real_boot_is_the_policy_s() {
    let log = firmware_log();
    let r = check(&log, &chain(), None, 12);
    assert!(r.problems.is_empty(), "{r:?}");
    assert_eq!(
        r.kernel,
        Some(MeasuredEvent {
            event: 10,
            sha256: FIRMWARE_KERNEL.into()
        })
    );
    assert_eq!(r.initrd.as_ref().map(|m| m.event), Some(22));
    assert_eq!(r.cmdline.as_ref().map(|m| m.event), Some(21));
    assert!(r.boot_apps.is_empty());
    let mut b = chain();
    b.cmdlines = vec!["quiet".into(), firmware_cmdline().into()];
    let r = check(&log, &b, None, 12);
    assert!(r.problems.is_empty(), "{r:?}");
    assert_eq!(
        r.summary(&b),
        format!("PCR 4: kernel {FIRMWARE_KERNEL} (event #10); PCR 9: initrd {FIRMWARE_INITRD} (event #22), command line 7efe6968551bb0d0ae5550e46c5bb933c52bd8c0c02f59a00c2ff3afc86037c0 (event #21) (one of the 2 allowed)")
    );
}

#[test]
fn each_link_of_the_chain_is_named() {
    let log = firmware_log();
    let problems = |b: &BootChain| check(&log, b, None, 12).problems;
    let mut b = chain();
    b.kernels = vec![other()];
    assert_eq!(
        problems(&b),
        [format!("PCR 4 event #10 (EV_EFI_BOOT_SERVICES_APPLICATION): sha256 {FIRMWARE_KERNEL} is not a kernel the policy allows (allowed: {})", other())]
    );
    // Allowed as a boot application only: still not the kernel.
    b.boot_apps = vec![FIRMWARE_KERNEL.into()];
    assert!(problems(&b)[0]
        .ends_with("; it is a boot application, and the last EFI application must be the kernel"));
    let mut b = chain();
    b.initrds = vec![other()];
    assert_eq!(
        problems(&b),
        [format!("PCR 9 event #22 (EFI stub: initrd): sha256 {FIRMWARE_INITRD} is not an initrd the policy allows (allowed: {})", other())]
    );
    // A fleet roll: either initrd.
    b.initrds.push(FIRMWARE_INITRD.into());
    assert!(problems(&b).is_empty());
    let mut b = chain();
    b.cmdlines = vec![format!("{} quiet", firmware_cmdline())];
    assert_eq!(
        problems(&b),
        ["PCR 9 event #21 (EFI stub: command line): sha256 7efe6968551bb0d0ae5550e46c5bb933c52bd8c0c02f59a00c2ff3afc86037c0 is not the digest of a command line the policy allows (1 allowed; the log does not carry the text)"]
    );
}

/// The log with `edit` applied to its events.
#[test]
fn a_command_line_the_policy_does_not_pin_is_checked_in_the_quote_s_copy() {
    let mut b = chain();
    b.cmdlines.clear();
    let log = firmware_log();
    let problems = |log: &FirmwareLog, copy: Option<&[u8]>| check(log, &b, copy, 12).problems;
    // No copy: nothing says what the kernel was told.
    let p = problems(&log, None);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("PCR 9 event #21 (EFI stub: command line): the policy pins no command line and the quote carries no copy"), "{p:?}");
    // A copy that is not what was measured.
    let p = problems(&log, Some(b"console=ttyS0 quiet\n"));
    assert!(
        p[0].contains("is not the digest of the quote's cmdline (\"console=ttyS0 quiet\")"),
        "{p:?}"
    );
    // The measured one (with /proc/cmdline's newline): the probe boot ran
    // its own /init (rdinit=), which modseal's checks never see.
    let copy = format!("{}\n", firmware_cmdline());
    let p = problems(&log, Some(copy.as_bytes()));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("rdinit=/init on the command line can give a shell"),
        "{p:?}"
    );
    // A command line without such options, measured: allowed.
    let clean = "console=ttyS0 root=/dev/vda rw quiet";
    let measured = edited(|ev| {
        for (alg, d) in &mut ev[20].digests {
            if *alg == TPM_ALG_SHA256 {
                *d = cmdline_digest(clean);
            }
        }
    });
    assert_eq!(
        problems(&measured, Some(clean.as_bytes())),
        Vec::<String>::new()
    );
    let shell = "console=ttyS0 rd.break=pre-mount";
    let measured = edited(|ev| {
        for (alg, d) in &mut ev[20].digests {
            if *alg == TPM_ALG_SHA256 {
                *d = cmdline_digest(shell);
            }
        }
    });
    let p = problems(&measured, Some(shell.as_bytes()));
    assert!(
        p[0].contains("rd.break=pre-mount on the command line"),
        "{p:?}"
    );
}

fn edited(edit: impl FnOnce(&mut Vec<Event>)) -> FirmwareLog {
    let mut log = firmware_log();
    edit(&mut log.events);
    log
}

fn tag(id: u32, text: &[u8]) -> Vec<u8> {
    let mut d = id.to_le_bytes().to_vec();
    d.extend((text.len() as u32).to_le_bytes());
    d.extend(text);
    d
}

#[test]
fn relabelled_or_extra_events_in_pcrs_4_and_9_are_refused() {
    // What root does after a bad boot: extend PCR 9 with a good initrd's
    // digest and log it as the stub's initrd, relabelling the real one.
    let good_after_bad = |relabel: &dyn Fn(&mut Event)| {
        edited(|ev| {
            let mut good = ev[21].clone();
            relabel(&mut ev[21]);
            good.index = 99;
            ev.insert(22, good);
        })
    };
    let p = |log: &FirmwareLog| check(log, &chain(), None, 12).problems;
    let as_options = good_after_bad(&|e| e.data = tag(LOAD_OPTIONS_EVENT_TAG_ID, b"x\0"));
    assert_eq!(
        p(&as_options),
        ["PCR 9 holds 2 command lines measured by the EFI stub (events #21, #22): one is expected"]
    );
    let as_other_tag = good_after_bad(&|e| e.data = tag(0x1234, b"x\0"));
    assert_eq!(
        p(&as_other_tag),
        ["PCR 9 event #22 (EV_EVENT_TAG): not measured by the kernel's EFI stub (the policy allows only its command line and initrd in PCR 9)"]
    );
    let as_ipl = good_after_bad(&|e| e.event_type = 0xd);
    assert!(p(&as_ipl)[0].starts_with("PCR 9 event #22 (EV_IPL): not measured"));
    // Two initrds, a malformed tag (size not the data's), none at all.
    let two = good_after_bad(&|_| {});
    assert!(
        p(&two)[0].starts_with("PCR 9 holds 2 initrds measured by the EFI stub (events #22, #99)")
    );
    let bad_size = edited(|ev| ev[21].data.push(0));
    assert_eq!(p(&bad_size)[0], "PCR 9 event #22 (EV_EVENT_TAG): not measured by the kernel's EFI stub (the policy allows only its command line and initrd in PCR 9)");
    let none = edited(|ev| {
        ev.remove(21);
    });
    assert_eq!(p(&none), ["PCR 9 holds no initrd measured by the EFI stub"]);
    // PCR 4: a kernel hidden as another event type; no application at all.
    let hidden = edited(|ev| ev[9].event_type = 0xd);
    let v = p(&hidden);
    assert_eq!(v[0], "PCR 4 event #10 (EV_IPL): not an event the policy allows in PCR 4 (EFI applications, EV_EFI_ACTION, EV_SEPARATOR)");
    assert_eq!(
        v[1],
        "PCR 4 holds no EFI application: no kernel was measured"
    );
    // A boot loader before the kernel, allowed or not.
    let shim = edited(|ev| {
        let mut s = ev[9].clone();
        s.digests = vec![(PcrBank::Sha256.alg_id(), vec![0x5e; 32])];
        s.index = 100;
        ev.insert(9, s);
    });
    assert_eq!(
        p(&shim),
        [format!("PCR 4 event #100 (EV_EFI_BOOT_SERVICES_APPLICATION): sha256 {} is not a boot application the policy allows (allowed: none)", other())]
    );
    let mut b = chain();
    b.boot_apps.push(other());
    let r = check(&shim, &b, None, 12);
    assert!(r.problems.is_empty(), "{r:?}");
    assert_eq!(r.boot_apps.len(), 1);
    // The command line pinned but not measured.
    let mut b = chain();
    b.cmdlines.push("quiet".into());
    let no_options = edited(|ev| {
        ev.remove(20);
    });
    assert_eq!(
        check(&no_options, &b, None, 12).problems,
        ["PCR 9 holds no command line measured by the EFI stub: what the kernel was told to run cannot be checked"]
    );
}
