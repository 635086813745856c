//! The firmware's event log: the TCG PC Client Platform Firmware Profile's
//! crypto-agile format (`/sys/kernel/security/tpm0/binary_bios_measurements`).
//!
//! `parse.rs` reads the `Spec ID Event03` header and the `TCG_PCR_EVENT2`
//! records ([`parse`]), `replay.rs` computes the PCR values they imply
//! ([`replay()`]). The log is untrusted input: every size is bounded and every
//! failure is a [`TcgError`] naming the byte offset and the event.

mod parse;
mod replay;

pub use parse::{parse, TcgError, MAX_ALGORITHMS, MAX_EVENTS, MAX_EVENT_SIZE, MAX_LOG_SIZE};
pub use replay::{replay, startup_locality};

/// `EV_NO_ACTION`: informational, never extended into a PCR.
pub const EV_NO_ACTION: u32 = 0x3;
/// `EV_SEPARATOR`: the digest is the hash of its 4-byte data.
pub const EV_SEPARATOR: u32 = 0x4;
/// `EV_EVENT_TAG`: a tagged event (`TCG_PCClientTaggedEvent`).
pub const EV_EVENT_TAG: u32 = 0x6;
/// `EV_IPL`: what a boot loader measured (systemd-boot: the command line).
pub const EV_IPL: u32 = 0xD;
/// `EV_EFI_BOOT_SERVICES_APPLICATION`: a UEFI application the firmware
/// loaded (its digest is the PE image's Authenticode hash).
pub const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
/// `EV_EFI_ACTION`: the digest is the hash of its text.
pub const EV_EFI_ACTION: u32 = 0x8000_0007;

/// The `Spec ID Event03` header: the log's format and its banks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecId {
    /// `platformClass` (0 client, 1 server).
    pub platform_class: u32,
    /// `specVersionMajor`.
    pub version_major: u8,
    /// `specVersionMinor`.
    pub version_minor: u8,
    /// `specErrata`.
    pub errata: u8,
    /// `uintnSize` (1 for 32-bit UINTN, 2 for 64-bit).
    pub uintn_size: u8,
    /// `(algorithmId, digestSize)` of each bank the log carries.
    pub algorithms: Vec<(u16, u16)>,
    /// `vendorInfo`.
    pub vendor_info: Vec<u8>,
}

impl SpecId {
    /// The digest size the header declares for `alg`.
    pub fn digest_size(&self, alg: u16) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, s)| usize::from(*s))
    }
}

/// One `TCG_PCR_EVENT2` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the log; the header event is 0.
    pub index: usize,
    /// `pcrIndex`.
    pub pcr: u32,
    /// `eventType`.
    pub event_type: u32,
    /// `(hashAlg, digest)` in the log's order.
    pub digests: Vec<(u16, Vec<u8>)>,
    /// The event data.
    pub data: Vec<u8>,
}

/// A parsed firmware event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareLog {
    /// The header.
    pub spec: SpecId,
    /// The records after the header, in log order.
    pub events: Vec<Event>,
}

/// The spec's name of an event type, or its hex value.
pub fn event_type_name(t: u32) -> String {
    let name = match t {
        0x1 => "EV_POST_CODE",
        0x3 => "EV_NO_ACTION",
        0x4 => "EV_SEPARATOR",
        0x5 => "EV_ACTION",
        0x6 => "EV_EVENT_TAG",
        0x7 => "EV_S_CRTM_CONTENTS",
        0x8 => "EV_S_CRTM_VERSION",
        0xd => "EV_IPL",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_00e0 => "EV_EFI_VARIABLE_AUTHORITY",
        _ => return format!("{t:#x}"),
    };
    name.to_owned()
}

/// The longest summary [`Event::summary`] returns, in characters.
const SUMMARY_CHARS: usize = 120;

impl Event {
    /// Its digest in `bank`, if the event carries one.
    pub fn digest(&self, bank: crate::tpm::PcrBank) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|(alg, _)| *alg == bank.alg_id())
            .map(|(_, d)| d.as_slice())
    }

    /// A short readable account of the data: the text of the events that
    /// carry text (UTF-16LE decoded where it looks like it), else the size.
    pub fn summary(&self) -> String {
        const TEXT_TYPES: [u32; 4] = [0x6, 0xd, 0x8000_0007, 0x8];
        if !TEXT_TYPES.contains(&self.event_type) {
            return format!("{} bytes", self.data.len());
        }
        let text = decode_text(&self.data);
        // Control characters escaped: the text is the firmware's, untrusted.
        let escaped: String = text.escape_debug().collect();
        if escaped.chars().count() > SUMMARY_CHARS {
            let cut: String = escaped.chars().take(SUMMARY_CHARS).collect();
            format!("\"{cut}…\" ({} bytes)", self.data.len())
        } else {
            format!("\"{escaped}\"")
        }
    }
}

/// Text in `data`: UTF-16LE when every other byte is zero in the first
/// characters (firmware writes both), else bytes as Latin/UTF-8; trailing NULs
/// dropped.
fn decode_text(data: &[u8]) -> String {
    let probe = data.len().min(16);
    let utf16 = data.len() >= 2
        && data.len() % 2 == 0
        && data[..probe].chunks(2).all(|c| c.len() == 2 && c[1] == 0);
    let text = if utf16 {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(data).into_owned()
    };
    text.trim_end_matches('\0').to_owned()
}

#[cfg(test)]
mod tests;
