//! The `boot-chain` check: what the firmware measured into PCR 4 (the
//! kernel, and any boot application before it) and what the kernel's EFI
//! stub measured into PCR 9 (the command line and the initrd), against the
//! policy's `kernel-sha256`, `boot-app-sha256`, `initrd-sha256` and
//! `cmdline` lines.
//!
//! The events' data is not covered by their digests, only the digests are
//! (once `firmware-replay` has tied them to the quote). A log can therefore
//! be relabelled: an event's type or tag changed to hide a digest that was
//! measured, after root extended a good digest behind it. So PCRs 4 and 9
//! may hold nothing but events this check accounts for: in PCR 4 EFI
//! applications and the `EV_EFI_ACTION`/`EV_SEPARATOR` events whose digest
//! `firmware-replay` recomputes from their data; in PCR 9 the EFI stub's
//! two tagged events, at most one of each. A hidden digest then has
//! nowhere to hide.

use serde::Serialize;

use super::evidence::CMDLINE;
use super::policy::BootChain;
use crate::boot::{cmdline_params, shell_options};
use crate::measure::tcg::{
    event_type_name, Event, FirmwareLog, EV_EFI_ACTION, EV_EFI_BOOT_SERVICES_APPLICATION,
    EV_EVENT_TAG, EV_IPL, EV_NO_ACTION, EV_SEPARATOR,
};
use crate::tpm::PcrBank;
use crate::util::hex;
use crate::util::text::clip;

/// The EFI stub's tag for the initrd it measured into PCR 9
/// (`INITRD_EVENT_TAG_ID`, drivers/firmware/efi/libstub/efistub.h).
pub const INITRD_EVENT_TAG_ID: u32 = 0x8F3B_22EC;
/// The EFI stub's tag for the load options (the command line) it measured
/// into PCR 9 (`LOAD_OPTIONS_EVENT_TAG_ID`, same file, Linux 6.1 and later).
pub const LOAD_OPTIONS_EVENT_TAG_ID: u32 = 0x8F3B_22ED;
/// The PCR the firmware measures boot applications into.
pub const KERNEL_PCR: u32 = 4;
/// The PCR the EFI stub measures the command line and the initrd into.
pub const INITRD_PCR: u32 = 9;

/// The digest the EFI stub measures for a command line: SHA-256 of the
/// load options as the firmware hands them over, UTF-16LE with the
/// terminating NUL.
pub fn cmdline_digest(cmdline: &str) -> Vec<u8> {
    let mut bytes: Vec<u8> = cmdline.encode_utf16().flat_map(u16::to_le_bytes).collect();
    bytes.extend([0, 0]);
    PcrBank::Sha256.hash(&bytes)
}

/// One event the check read: its index in the log and its sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasuredEvent {
    /// The event's index in the firmware log (the header is 0).
    pub event: usize,
    /// Its sha256 digest, hex.
    pub sha256: String,
}

/// What the boot chain measured, and what is wrong with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BootChainReport {
    /// The last EFI application in PCR 4: the kernel.
    pub kernel: Option<MeasuredEvent>,
    /// The EFI applications before it.
    pub boot_apps: Vec<MeasuredEvent>,
    /// The EFI stub's initrd event.
    pub initrd: Option<MeasuredEvent>,
    /// The EFI stub's load-options event.
    pub cmdline: Option<MeasuredEvent>,
    /// Every violation, PCR 4 first; empty: the boot chain is the policy's.
    pub problems: Vec<String>,
}

/// What a PCR 9 event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StubEvent {
    Initrd,
    LoadOptions,
}

/// The tag of an `EV_EVENT_TAG` event of the EFI stub: `u32` id, `u32`
/// size, then exactly that many bytes (its description).
fn stub_tag(e: &Event) -> Option<StubEvent> {
    if e.event_type != EV_EVENT_TAG {
        return None;
    }
    let id = u32::from_le_bytes(e.data.get(0..4)?.try_into().ok()?);
    let size = u32::from_le_bytes(e.data.get(4..8)?.try_into().ok()?);
    if usize::try_from(size).ok()? != e.data.len() - 8 {
        return None;
    }
    match id {
        INITRD_EVENT_TAG_ID => Some(StubEvent::Initrd),
        LOAD_OPTIONS_EVENT_TAG_ID => Some(StubEvent::LoadOptions),
        _ => None,
    }
}

/// `#10 (EV_EFI_BOOT_SERVICES_APPLICATION)`.
fn name(e: &Event) -> String {
    format!("#{} ({})", e.index, event_type_name(e.event_type))
}

fn measured(e: &Event) -> Option<MeasuredEvent> {
    e.digest(PcrBank::Sha256).map(|d| MeasuredEvent {
        event: e.index,
        sha256: hex::lower(d),
    })
}

fn allowed(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

/// Checks the firmware log's PCRs 4 and 9 against the policy's boot chain.
pub fn check(
    log: &FirmwareLog,
    boot: &BootChain,
    copy: Option<&[u8]>,
    shared_pcr: u8,
) -> BootChainReport {
    let mut r = BootChainReport::default();
    kernel(log, boot, &mut r);
    stub(log, boot, copy, &mut r);
    shared(log, shared_pcr, &mut r);
    r
}

/// modseal's measurement PCR as the firmware log has it: nothing, or one
/// boot loader's `EV_IPL` of the very command line the EFI stub measured
/// (systemd-boot's, into PCR 12). The `replay` check starts the PCR at the
/// firmware log's value, so anything else there would let root absorb
/// modseal's real records into "firmware" events and replay good ones.
fn shared(log: &FirmwareLog, pcr: u8, r: &mut BootChainReport) {
    let events: Vec<&Event> = log
        .events
        .iter()
        .filter(|e| e.pcr == u32::from(pcr) && e.event_type != EV_NO_ACTION)
        .collect();
    let cmdline = r.cmdline.as_ref().map(|m| m.sha256.as_str());
    for (i, e) in events.iter().enumerate() {
        let ok = i == 0
            && e.event_type == EV_IPL
            && measured(e).is_some_and(|m| Some(m.sha256.as_str()) == cmdline);
        if !ok {
            r.problems.push(format!(
                "PCR {pcr} event {}: modseal's PCR may hold, before modseal's records, only a boot loader's EV_IPL of the command line the EFI stub measured into PCR 9",
                name(e)
            ));
        }
    }
}

/// PCR 4: every EFI application allowed, the last one a kernel.
fn kernel(log: &FirmwareLog, boot: &BootChain, r: &mut BootChainReport) {
    let mut apps = Vec::new();
    for e in log.events.iter().filter(|e| e.pcr == KERNEL_PCR) {
        match e.event_type {
            EV_EFI_ACTION | EV_SEPARATOR => {}
            EV_EFI_BOOT_SERVICES_APPLICATION => match measured(e) {
                Some(m) => apps.push((e, m)),
                None => r.problems.push(format!(
                    "PCR 4 event {}: no sha256 digest",
                    name(e)
                )),
            },
            _ => r.problems.push(format!(
                "PCR 4 event {}: not an event the policy allows in PCR 4 (EFI applications, EV_EFI_ACTION, EV_SEPARATOR)",
                name(e)
            )),
        }
    }
    if apps.is_empty() {
        r.problems
            .push("PCR 4 holds no EFI application: no kernel was measured".into());
        return;
    }
    for (i, (e, m)) in apps.iter().enumerate() {
        let is_kernel = boot.kernels.contains(&m.sha256);
        if i + 1 == apps.len() && !is_kernel {
            r.problems.push(format!(
                "PCR 4 event {}: sha256 {} is not a kernel the policy allows (allowed: {}){}",
                name(e),
                m.sha256,
                allowed(&boot.kernels),
                if boot.boot_apps.contains(&m.sha256) {
                    "; it is a boot application, and the last EFI application must be the kernel"
                } else {
                    ""
                }
            ));
        } else if !is_kernel && !boot.boot_apps.contains(&m.sha256) {
            r.problems.push(format!(
                "PCR 4 event {}: sha256 {} is not a boot application the policy allows (allowed: {})",
                name(e),
                m.sha256,
                allowed(&boot.boot_apps)
            ));
        }
    }
    if let Some(((_, k), before)) = apps.split_last() {
        r.kernel = Some(k.clone());
        r.boot_apps = before.iter().map(|(_, m)| m.clone()).collect();
    }
}

/// PCR 9: the EFI stub's events only; one allowed initrd; the command
/// line one of the policy's, when it names any.
fn stub(log: &FirmwareLog, boot: &BootChain, copy: Option<&[u8]>, r: &mut BootChainReport) {
    let mut initrds = Vec::new();
    let mut options = Vec::new();
    for e in log.events.iter().filter(|e| e.pcr == INITRD_PCR) {
        match stub_tag(e) {
            Some(StubEvent::Initrd) => initrds.push(e),
            Some(StubEvent::LoadOptions) => options.push(e),
            None => r.problems.push(format!(
                "PCR 9 event {}: not measured by the kernel's EFI stub (the policy allows only its command line and initrd in PCR 9)",
                name(e)
            )),
        }
    }
    match initrds.as_slice() {
        [] => r
            .problems
            .push("PCR 9 holds no initrd measured by the EFI stub".into()),
        [e] => match measured(e) {
            Some(m) if boot.initrds.contains(&m.sha256) => r.initrd = Some(m),
            Some(m) => {
                r.problems.push(format!(
                    "PCR 9 event #{} (EFI stub: initrd): sha256 {} is not an initrd the policy allows (allowed: {})",
                    e.index,
                    m.sha256,
                    allowed(&boot.initrds)
                ));
                r.initrd = Some(m);
            }
            None => r.problems.push(format!(
                "PCR 9 event #{} (EFI stub: initrd): no sha256 digest",
                e.index
            )),
        },
        many => r.problems.push(format!(
            "PCR 9 holds {} initrds measured by the EFI stub (events {}): one is expected",
            many.len(),
            indexes(many)
        )),
    }
    cmdline(&options, boot, copy, r);
}

fn indexes(events: &[&Event]) -> String {
    let v: Vec<String> = events.iter().map(|e| format!("#{}", e.index)).collect();
    v.join(", ")
}

/// The load-options event: exactly one. When the policy names command
/// lines, it hashes to one of them. When it names none, the quote's copy
/// of the command line (`cmdline`) must hash to it and hold no option that
/// gives a shell before or instead of modseal's checks (`rdinit=`,
/// `rd.break`, …: with one of them modseal may never have run, and root
/// can replay a good log into PCR 12 afterwards).
fn cmdline(options: &[&Event], boot: &BootChain, copy: Option<&[u8]>, r: &mut BootChainReport) {
    let e = match options {
        [] => {
            r.problems.push(
                "PCR 9 holds no command line measured by the EFI stub: what the kernel was told to run cannot be checked"
                    .into(),
            );
            return;
        }
        [e] => *e,
        many => {
            r.problems.push(format!(
                "PCR 9 holds {} command lines measured by the EFI stub (events {}): one is expected",
                many.len(),
                indexes(many)
            ));
            return;
        }
    };
    let Some(m) = measured(e) else {
        r.problems.push(format!(
            "PCR 9 event #{} (EFI stub: command line): no sha256 digest",
            e.index
        ));
        return;
    };
    if boot.cmdlines.is_empty() {
        if let Err(problem) = unpinned_cmdline(copy, &m.sha256) {
            r.problems.push(format!(
                "PCR 9 event #{} (EFI stub: command line): {problem}",
                e.index
            ));
        }
    } else if !boot
        .cmdlines
        .iter()
        .any(|c| hex::lower(&cmdline_digest(c)) == m.sha256)
    {
        r.problems.push(format!(
            "PCR 9 event #{} (EFI stub: command line): sha256 {} is not the digest of a command line the policy allows ({} allowed; the log does not carry the text)",
            e.index,
            m.sha256,
            boot.cmdlines.len()
        ));
    }
    r.cmdline = Some(m);
}

/// A command line the policy does not pin: the quote's copy, if it is the
/// one measured (`measured`, hex) and gives no shell; else why not.
fn unpinned_cmdline(copy: Option<&[u8]>, measured: &str) -> Result<(), String> {
    let Some(copy) = copy else {
        return Err(format!(
            "the policy pins no command line and the quote carries no copy of it ({CMDLINE}) to check for options that bypass modseal"
        ));
    };
    let text = std::str::from_utf8(copy)
        .map_err(|_| format!("the quote's {CMDLINE} is not UTF-8 text"))?;
    // /proc/cmdline ends in a newline the firmware never passed.
    let text = text.strip_suffix('\n').unwrap_or(text);
    if hex::lower(&cmdline_digest(text)) != measured {
        return Err(format!(
            "sha256 {measured} is not the digest of the quote's {CMDLINE} (\"{}\")",
            clip(text)
        ));
    }
    let shells = shell_options(&cmdline_params(text));
    if !shells.is_empty() {
        return Err(format!(
            "{} on the command line can give a shell before or instead of modseal's checks; a policy that pins this exact command line (cmdline) allows it",
            shells.join(", ")
        ));
    }
    Ok(())
}

impl BootChainReport {
    /// The check's detail when it passes.
    pub fn summary(&self, boot: &BootChain) -> String {
        let short = |m: &Option<MeasuredEvent>| {
            m.as_ref()
                .map(|m| format!("{} (event #{})", m.sha256, m.event))
                .unwrap_or_else(|| "none".into())
        };
        let mut s = format!(
            "PCR 4: kernel {}{}; PCR 9: initrd {}",
            short(&self.kernel),
            if self.boot_apps.is_empty() {
                String::new()
            } else {
                format!(" after {} boot application(s)", self.boot_apps.len())
            },
            short(&self.initrd)
        );
        if boot.cmdlines.is_empty() {
            s.push_str(", command line not pinned by the policy");
        } else {
            s.push_str(&format!(
                ", command line {} (one of the {} allowed)",
                short(&self.cmdline),
                boot.cmdlines.len()
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests;
