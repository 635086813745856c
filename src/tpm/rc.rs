//! TSS2/TPM return codes: decoded for messages, and classified into the
//! failures modseal names (`TpmError`). Pure, so every mapping is unit-tested.
//!
//! Layout (TCG TSS 2.0 Overview, TPM 2.0 Part 2 §6.6): bits 16–23 name the
//! layer that produced the code (0 = the TPM itself, 7 = ESYS, 10 = TCTI, …).
//! A TPM code is format 1 when bit 7 is set (error number in bits 0–5, bit 6
//! "parameter", bits 8–11 the parameter, handle or session number) and format
//! 0 otherwise (bits 0–6 the number, bit 8 TPM 2.0, bit 11 a warning).

use super::TpmError;

/// The layer field of a TSS2 return code.
pub fn layer(rc: u32) -> u8 {
    ((rc >> 16) & 0xff) as u8
}

const LAYER_TPM: u8 = 0;
const LAYER_TCTI: u8 = 10;
const LAYER_RESMGR_TPM: u8 = 12;

/// TPM_RC_POLICY_FAIL (format 1).
pub const RC_POLICY_FAIL: u32 = 0x09D;
/// TPM_RC_INTEGRITY (format 1).
pub const RC_INTEGRITY: u32 = 0x09F;
/// TPM_RC_PCR_CHANGED (format 0, TPM_RC_VER1 + 0x028).
pub const RC_PCR_CHANGED: u32 = 0x128;
/// TPM_RC_LOCKOUT (warning, TPM_RC_WARN + 0x021).
pub const RC_LOCKOUT: u32 = 0x921;
/// TPM_RC_HANDLE (format 1).
pub const RC_HANDLE: u32 = 0x08B;

/// The TPM's error without its location (parameter, handle or session
/// number): what the codes above compare against. `None` for codes from the
/// software layers (TCTI, ESYS, …).
pub fn tpm_base(rc: u32) -> Option<u32> {
    match layer(rc) {
        LAYER_TPM | LAYER_RESMGR_TPM => {}
        _ => return None,
    }
    let rc = rc & 0xffff;
    if rc & 0x080 != 0 {
        Some((rc & 0x03f) | 0x080)
    } else {
        Some(rc & 0xfff)
    }
}

/// A one-line description: the code's name and, for format-1 codes, which
/// parameter, handle or session it is about.
pub fn describe(rc: u32) -> String {
    let l = layer(rc);
    match tpm_base(rc) {
        Some(base) => {
            let name = tpm_name(base).unwrap_or("unknown TPM error");
            let low = rc & 0xffff;
            let place = if low & 0x080 != 0 {
                let n = (low >> 8) & 0xf;
                if low & 0x040 != 0 {
                    format!(" (parameter {n})")
                } else if n & 0x8 != 0 {
                    format!(" (session {})", n & 0x7)
                } else if n != 0 {
                    format!(" (handle {n})")
                } else {
                    String::new()
                }
            } else {
                String::new()
            };
            let rm = if l == LAYER_RESMGR_TPM {
                " via the resource manager"
            } else {
                ""
            };
            format!("TPM_RC_{name}{place}{rm}")
        }
        None => {
            let base = rc & 0xffff;
            let who = layer_name(l);
            match tss_base_name(base) {
                Some(n) => format!("{who}: {n}"),
                None => format!("{who}: error {base:#x}"),
            }
        }
    }
}

fn layer_name(l: u8) -> &'static str {
    match l {
        6 => "TSS feature API",
        7 => "ESYS",
        8 => "SYS",
        9 => "marshalling",
        10 => "TCTI",
        11 => "resource manager",
        _ => "TSS",
    }
}

fn tss_base_name(base: u32) -> Option<&'static str> {
    Some(match base {
        1 => "general failure",
        2 => "not implemented",
        3 => "bad context",
        4 => "ABI mismatch",
        5 => "bad reference",
        6 => "insufficient buffer",
        7 => "bad sequence",
        8 => "no connection",
        9 => "try again",
        10 => "I/O error",
        11 => "bad value",
        12 => "not permitted",
        13 => "invalid sessions",
        14 => "no decrypt parameter",
        15 => "no encrypt parameter",
        16 => "bad size",
        17 => "malformed response",
        18 => "insufficient context",
        19 => "insufficient response",
        20 => "incompatible TCTI",
        21 => "not supported",
        22 => "bad TCTI structure",
        23 => "out of memory",
        24 => "bad ESYS_TR handle",
        25 => "multiple decrypt sessions",
        26 => "multiple encrypt sessions",
        27 => "response authorization (HMAC) check failed",
        _ => return None,
    })
}

fn tpm_name(base: u32) -> Option<&'static str> {
    Some(match base {
        0x081 => "ASYMMETRIC",
        0x082 => "ATTRIBUTES",
        0x083 => "HASH",
        0x084 => "VALUE",
        0x085 => "HIERARCHY",
        0x087 => "KEY_SIZE",
        0x088 => "MGF",
        0x089 => "MODE",
        0x08A => "TYPE",
        0x08B => "HANDLE",
        0x08C => "KDF",
        0x08D => "RANGE",
        0x08E => "AUTH_FAIL",
        0x08F => "NONCE",
        0x090 => "PP",
        0x092 => "SCHEME",
        0x095 => "SIZE",
        0x096 => "SYMMETRIC",
        0x097 => "TAG",
        0x098 => "SELECTOR",
        0x09A => "INSUFFICIENT",
        0x09B => "SIGNATURE",
        0x09C => "KEY",
        0x09D => "POLICY_FAIL",
        0x09F => "INTEGRITY",
        0x0A0 => "TICKET",
        0x0A1 => "RESERVED_BITS",
        0x0A2 => "BAD_AUTH",
        0x0A3 => "EXPIRED",
        0x0A4 => "POLICY_CC",
        0x0A5 => "BINDING",
        0x0A6 => "CURVE",
        0x0A7 => "ECC_POINT",
        0x100 => "INITIALIZE",
        0x101 => "FAILURE",
        0x103 => "SEQUENCE",
        0x120 => "DISABLED",
        0x121 => "EXCLUSIVE",
        0x124 => "AUTH_TYPE",
        0x125 => "AUTH_MISSING",
        0x126 => "POLICY",
        0x127 => "PCR",
        0x128 => "PCR_CHANGED",
        0x12D => "UPGRADE",
        0x12E => "TOO_MANY_CONTEXTS",
        0x12F => "AUTH_UNAVAILABLE",
        0x130 => "REBOOT",
        0x131 => "UNBALANCED",
        0x142 => "COMMAND_SIZE",
        0x143 => "COMMAND_CODE",
        0x144 => "AUTHSIZE",
        0x145 => "AUTH_CONTEXT",
        0x146 => "NV_RANGE",
        0x147 => "NV_SIZE",
        0x148 => "NV_LOCKED",
        0x149 => "NV_AUTHORIZATION",
        0x14A => "NV_UNINITIALIZED",
        0x14B => "NV_SPACE",
        0x14C => "NV_DEFINED",
        0x150 => "BAD_CONTEXT",
        0x151 => "CPHASH",
        0x152 => "PARENT",
        0x153 => "NEEDS_TEST",
        0x154 => "NO_RESULT",
        0x155 => "SENSITIVE",
        0x901 => "CONTEXT_GAP",
        0x902 => "OBJECT_MEMORY",
        0x903 => "SESSION_MEMORY",
        0x904 => "MEMORY",
        0x905 => "SESSION_HANDLES",
        0x906 => "OBJECT_HANDLES",
        0x907 => "LOCALITY",
        0x908 => "YIELDED",
        0x909 => "CANCELED",
        0x90A => "TESTING",
        0x920 => "NV_RATE",
        0x921 => "LOCKOUT",
        0x922 => "RETRY",
        0x923 => "NV_UNAVAILABLE",
        _ => return None,
    })
}

/// What a TPM operation is, for the classification: a failure to load the
/// sealed object means "made by another TPM, or corrupt" whatever the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Loading the sealed object (TPM2_Load, or reading the persistent SRK
    /// it was sealed under).
    LoadObject,
    /// Anything else.
    Other,
}

/// Maps a failed operation's return code to the failure modseal names.
pub fn classify(op: &'static str, kind: OpKind, rc: u32, tcti: &str) -> TpmError {
    let text = describe(rc);
    if layer(rc) == LAYER_TCTI {
        return TpmError::NoDevice {
            tcti: tcti.to_owned(),
            reason: format!("{op}: {text} (rc {rc:#x})"),
        };
    }
    match tpm_base(rc) {
        Some(RC_LOCKOUT) => TpmError::Lockout { rc },
        Some(RC_PCR_CHANGED) => TpmError::PcrChanged { rc },
        Some(RC_POLICY_FAIL) if kind == OpKind::Other => TpmError::PolicyMismatch { rc },
        _ if kind == OpKind::LoadObject => TpmError::BadObject { op, rc, text },
        _ => TpmError::Tpm { op, rc, text },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_strip_the_location() {
        assert_eq!(tpm_base(0x99D), Some(RC_POLICY_FAIL)); // session 1
        assert_eq!(tpm_base(0x1DF), Some(RC_INTEGRITY)); // parameter 1
        assert_eq!(tpm_base(0x921), Some(RC_LOCKOUT));
        assert_eq!(tpm_base(0x128), Some(RC_PCR_CHANGED));
        assert_eq!(tpm_base(0x000A_000A), None); // TCTI I/O error
        assert_eq!(tpm_base(0x000C_0921), Some(RC_LOCKOUT)); // via the kernel RM layer
    }

    #[test]
    fn descriptions_name_code_and_place() {
        assert_eq!(describe(0x99D), "TPM_RC_POLICY_FAIL (session 1)");
        assert_eq!(describe(0x1DF), "TPM_RC_INTEGRITY (parameter 1)");
        assert_eq!(describe(0x18B), "TPM_RC_HANDLE (handle 1)");
        assert_eq!(describe(0x921), "TPM_RC_LOCKOUT");
        assert_eq!(describe(0x000A_000A), "TCTI: I/O error");
        assert_eq!(
            describe(0x0007_001B),
            "ESYS: response authorization (HMAC) check failed"
        );
        assert_eq!(describe(0x0007_0fff), "ESYS: error 0xfff");
    }

    #[test]
    fn classification() {
        let c = |kind, rc| classify("Unseal", kind, rc, "swtpm:port=1");
        assert_eq!(
            c(OpKind::Other, 0x99D),
            TpmError::PolicyMismatch { rc: 0x99D }
        );
        assert_eq!(c(OpKind::Other, 0x921), TpmError::Lockout { rc: 0x921 });
        assert_eq!(
            c(OpKind::LoadObject, 0x921),
            TpmError::Lockout { rc: 0x921 }
        );
        assert_eq!(c(OpKind::Other, 0x128), TpmError::PcrChanged { rc: 0x128 });
        assert!(matches!(
            c(OpKind::LoadObject, 0x1DF),
            TpmError::BadObject { rc: 0x1DF, .. }
        ));
        assert!(matches!(
            c(OpKind::LoadObject, 0x2D5),
            TpmError::BadObject { .. }
        )); // SIZE, parameter 2
        assert!(matches!(c(OpKind::Other, 0x1DF), TpmError::Tpm { .. }));
        assert!(matches!(
            c(OpKind::Other, 0x000A_000A),
            TpmError::NoDevice { .. }
        ));
        assert!(matches!(
            c(OpKind::LoadObject, 0x000A_0008),
            TpmError::NoDevice { .. }
        ));
    }
}
