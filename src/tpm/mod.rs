//! The TPM behind a narrow trait: what modseal needs and nothing more.
//!
//! `esapi` is the real backend (tss-esapi over tpm2-tss); `memory` is an
//! in-memory model for testing the logic above it. Every behaviour of the real
//! backend is also tested against swtpm (`tests/tpm.rs`).

pub mod bank;
pub mod esapi;
pub mod marshal;
#[cfg(test)]
pub mod memory;
pub mod name;
pub mod rc;
pub mod tpm2b;

pub use bank::PcrBank;

/// Default TCTI: the kernel's resource manager, as in early boot there is no
/// resource-manager daemon.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// Environment variable that overrides the TCTI.
pub const TCTI_ENV: &str = "MODSEAL_TCTI";

/// The TCTI to use: the first non-empty of the explicit option
/// (`--tcti`), `$MODSEAL_TCTI`, the configured one (`tcti =` in
/// `modseal.conf`), else [`DEFAULT_TCTI`]. Every command resolves its TCTI
/// here.
pub fn resolve_tcti(explicit: Option<&str>, configured: Option<&str>) -> String {
    let env = std::env::var(TCTI_ENV).ok();
    pick_tcti(explicit, env.as_deref(), configured)
}

/// [`resolve_tcti`] without a configured TCTI.
pub fn tcti_name(explicit: Option<&str>) -> String {
    resolve_tcti(explicit, None)
}

/// [`resolve_tcti`]'s precedence, with the environment given.
fn pick_tcti(explicit: Option<&str>, env: Option<&str>, configured: Option<&str>) -> String {
    [explicit, env, configured]
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .unwrap_or(DEFAULT_TCTI)
        .to_owned()
}

/// The persistent handle of the shared storage root key (TCG provisioning
/// guidance; systemd's `TPM2_SRK_HANDLE`).
pub const SRK_PERSISTENT_HANDLE: u32 = 0x8100_0001;

/// The template a primary storage root key is recreated from (TCG TPM v2.0
/// Provisioning Guidance §7.5.1; systemd's `tpm2_get_srk_template`): both
/// have attributes 0x00030472, AES-128-CFB, no scheme, empty unique and
/// authPolicy. Creating the primary is most of an unseal's TPM time, and a
/// TPM derives an ECC P-256 key from its seed far faster than it finds the
/// primes of an RSA-2048 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrkTemplate {
    /// RSA-2048, default exponent: the only template before `sealed.json`
    /// recorded one, so an enrollment without `srk_template` is this one.
    Rsa2048,
    /// ECC NIST P-256, no KDF (systemd's first choice).
    EccP256,
}

impl SrkTemplate {
    /// What new enrollments use.
    pub const DEFAULT: SrkTemplate = SrkTemplate::EccP256;

    /// The form `sealed.json` and `enroll --srk` use.
    pub fn name(self) -> &'static str {
        match self {
            SrkTemplate::Rsa2048 => "rsa-2048",
            SrkTemplate::EccP256 => "ecc-p256",
        }
    }

    /// Parses [`SrkTemplate::name`]'s form.
    pub fn from_name(text: &str) -> Option<SrkTemplate> {
        [SrkTemplate::Rsa2048, SrkTemplate::EccP256]
            .into_iter()
            .find(|t| t.name() == text)
    }
}

/// The storage root key a sealed object was created under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Srk {
    /// A primary key recreated from the owner hierarchy with this template.
    Primary(SrkTemplate),
    /// A persistent key at this handle (0x81000001); its name, pinned, says
    /// which key it is.
    Persistent(u32),
}

impl Srk {
    /// The form `sealed.json` records: `primary` or `persistent:0x81000001`
    /// (a primary's template is a field of its own, `srk_template`).
    pub fn to_config(self) -> String {
        match self {
            Srk::Primary(_) => "primary".to_owned(),
            Srk::Persistent(h) => format!("persistent:{h:#010x}"),
        }
    }

    /// The template a primary is recreated from (`None` for a persistent key).
    pub fn template(self) -> Option<SrkTemplate> {
        match self {
            Srk::Primary(t) => Some(t),
            Srk::Persistent(_) => None,
        }
    }

    /// Parses [`Srk::to_config`]'s form with the recorded template, if any: a
    /// primary without one is RSA-2048 (enrolled before templates were
    /// recorded); a persistent key takes none. A persistent handle must be in
    /// the owner's persistent range (0x81000000–0x817FFFFF).
    pub fn from_config(text: &str, template: Option<SrkTemplate>) -> Option<Srk> {
        if text == "primary" {
            return Some(Srk::Primary(template.unwrap_or(SrkTemplate::Rsa2048)));
        }
        let hex = text.strip_prefix("persistent:0x")?;
        if template.is_some() || hex.len() != 8 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let h = u32::from_str_radix(hex, 16).ok()?;
        (0x8100_0000..=0x817F_FFFF)
            .contains(&h)
            .then_some(Srk::Persistent(h))
    }
}

/// A sealed data object as stored on disk: tpm2-tools' `TPM2B_PUBLIC` and
/// `TPM2B_PRIVATE` files (big-endian size, then the structure), and the
/// storage root key it is a child of, with that key's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// The `TPM2B_PUBLIC` file (`sealed.pub`).
    pub public: Vec<u8>,
    /// The `TPM2B_PRIVATE` file (`sealed.priv`).
    pub private: Vec<u8>,
    /// The storage root key the object was created under.
    pub srk: Srk,
    /// The name of that storage root key when the object was sealed
    /// ([`name::object_name`] of its public area). The unseal refuses an SRK
    /// of another name before it salts a session with it: the salt key
    /// decides who can read the unsealed value and sign the TPM's answer.
    pub srk_name: Vec<u8>,
}

/// Why a TPM operation failed. Input the TPM rejected is separate from the
/// TPM being unreachable, and TPM return codes are kept and decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    /// No TPM at the TCTI (no device node, connection refused).
    #[error("no TPM at '{tcti}': {reason}")]
    NoDevice {
        /// The TCTI tried.
        tcti: String,
        /// Why it did not answer.
        reason: String,
    },
    /// The PolicyPCR check failed: the PCRs differ from the sealed state.
    #[error("TPM refused the unseal: PCR policy not satisfied (rc {rc:#x})")]
    PolicyMismatch {
        /// The TPM's return code.
        rc: u32,
    },
    /// The TPM is in dictionary-attack lockout.
    #[error("TPM is in dictionary-attack lockout (rc {rc:#x})")]
    Lockout {
        /// The TPM's return code.
        rc: u32,
    },
    /// The sealed object does not load: made by another TPM, or corrupt.
    #[error("sealed object rejected by the TPM (made by another TPM, or corrupt): {op}: rc {rc:#x} {text}")]
    BadObject {
        /// The operation that refused it.
        op: &'static str,
        /// The TPM's return code (0 when modseal refused it first).
        rc: u32,
        /// The decoded return code, or why the object is malformed.
        text: String,
    },
    /// The storage root key found is not the one the object was sealed
    /// under: another TPM or owner seed, another key at the persistent
    /// handle, or something on the bus answering for the TPM.
    #[error("the storage root key ({srk}) has name {found}, but the enrollment pins {pinned}: not the key it was sealed under (another TPM, a cleared owner hierarchy, another key at the handle, or something between modseal and the TPM answering for it); it is not used as a salt key")]
    SrkMismatch {
        /// The SRK, as `sealed.json` names it (`primary`, `persistent:0x…`).
        srk: String,
        /// The name pinned at enrollment (hex).
        pinned: String,
        /// The name of the public area the TPM returned (hex).
        found: String,
    },
    /// PCR values changed while a policy session was being built.
    #[error("PCR values changed during the operation (rc {rc:#x})")]
    PcrChanged {
        /// The TPM's return code.
        rc: u32,
    },
    /// Any other TPM failure, with the operation and decoded return code.
    #[error("TPM {op} failed: rc {rc:#x} {text}")]
    Tpm {
        /// The TPM command.
        op: &'static str,
        /// The TPM's (or the TSS's) return code.
        rc: u32,
        /// The decoded return code.
        text: String,
    },
    /// Input modseal refused before asking the TPM.
    #[error("{0}")]
    Invalid(
        /// What was refused, and why.
        String,
    ),
}

impl TpmError {
    /// The TPM/TSS return code, when the failure has one.
    pub fn rc(&self) -> Option<u32> {
        match self {
            TpmError::PolicyMismatch { rc }
            | TpmError::Lockout { rc }
            | TpmError::BadObject { rc, .. }
            | TpmError::PcrChanged { rc }
            | TpmError::Tpm { rc, .. } => Some(*rc),
            TpmError::NoDevice { .. } | TpmError::SrkMismatch { .. } | TpmError::Invalid(_) => None,
        }
    }
}

/// What modseal asks of a TPM. Calls are few and fixed per run: the number of
/// TPM commands never depends on the number of modules.
pub trait Tpm {
    /// PCR banks that are allocated (active), in a stable order.
    fn active_banks(&mut self) -> Result<Vec<PcrBank>, TpmError>;
    /// Reads `pcrs` in `bank`, in the order given.
    fn pcr_read(&mut self, bank: PcrBank, pcrs: &[u8]) -> Result<Vec<Vec<u8>>, TpmError>;
    /// Extends `pcr` with one digest per bank.
    fn pcr_extend(&mut self, pcr: u8, digests: &[(PcrBank, Vec<u8>)]) -> Result<(), TpmError>;
    /// Seals `secret` under the storage root key (the persistent one at
    /// [`SRK_PERSISTENT_HANDLE`] when present, else a primary made from
    /// `template`) with a PolicyPCR policy over
    /// `pcrs` in `bank` having `pcr_values` (same order as `pcrs`, not
    /// necessarily the current values). `policy_digest` is that policy
    /// computed off the TPM ([`PcrBank::policy_pcr_digest`]); the backend
    /// checks it against the TPM's own computation and refuses a mismatch.
    fn seal(
        &mut self,
        secret: &[u8],
        bank: PcrBank,
        pcrs: &[u8],
        pcr_values: &[Vec<u8>],
        policy_digest: &[u8],
        template: SrkTemplate,
    ) -> Result<SealedBlob, TpmError>;
    /// Unseals through a salted policy session (response encryption and
    /// HMAC) with PolicyPCR over `pcrs` in `bank`, refusing
    /// ([`TpmError::SrkMismatch`]) a storage root key whose name is not
    /// `blob.srk_name` before it salts the session. The value is wiped when
    /// dropped.
    fn unseal(
        &mut self,
        blob: &SealedBlob,
        bank: PcrBank,
        pcrs: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, TpmError>;
    /// TPM commands sent so far through this handle (for showing that a boot
    /// sends a fixed number, whatever the module count).
    fn commands(&self) -> u64;
}

/// A public area as the TPM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicArea {
    /// The marshalled `TPMT_PUBLIC` (no TPM2B size prefix).
    pub public: Vec<u8>,
    /// The TPM's name of the object: `nameAlg || H(TPMT_PUBLIC)`.
    pub name: Vec<u8>,
    /// The qualified name, when the command returned one (TPM2_ReadPublic).
    pub qualified_name: Option<Vec<u8>>,
}

/// A quote as the TPM produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    /// The marshalled `TPMS_ATTEST` (what the signature covers).
    pub attest: Vec<u8>,
    /// The marshalled `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
}

/// What `modseal quote` asks of a TPM: an attestation key at a persistent
/// handle, a quote with it, and the quoted PCR values. Separate from [`Tpm`]
/// (the boot flow's needs), so the boot flow's doubles need not model it.
/// The logic above it (checks, retries, files) is in `crate::attest::quote`.
pub trait AttestTpm {
    /// Opens the persistent object at `handle` (TPM2_ReadPublic): its name,
    /// or `None` when the handle is free (TPM_RC_HANDLE).
    fn open_persistent(&mut self, handle: u32) -> Result<Option<Vec<u8>>, TpmError>;
    /// The public area, name and qualified name of the persistent object at
    /// `handle` (TPM2_ReadPublic).
    fn read_persistent_public(&mut self, handle: u32) -> Result<PublicArea, TpmError>;
    /// Creates a primary key in the endorsement hierarchy from `template` (a
    /// marshalled `TPMT_PUBLIC`), makes it persistent at `handle`
    /// (TPM2_EvictControl, owner authorization) and flushes the transient
    /// copy. The handle must be free.
    fn create_persistent_primary(
        &mut self,
        template: &[u8],
        handle: u32,
    ) -> Result<PublicArea, TpmError>;
    /// TPM2_Quote with the key at `handle` and its own scheme, over
    /// `selection` (banks in the order given, PCRs ascending).
    fn quote(
        &mut self,
        handle: u32,
        qualifying_data: &[u8],
        selection: &[(PcrBank, Vec<u8>)],
    ) -> Result<Quoted, TpmError>;
    /// TPM2_PCR_Read of `selection` the way tpm2-tools reads it: repeated
    /// until every PCR was returned, one group of values per command, in the
    /// order the TPM returned them (a TPM returns at most 8 per command).
    fn pcr_read_groups(
        &mut self,
        selection: &[(PcrBank, Vec<u8>)],
    ) -> Result<Vec<Vec<Vec<u8>>>, TpmError>;
    /// TPM commands sent so far through this handle.
    fn attest_commands(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcti_precedence_skips_empty_values() {
        let t = |e, v, c| pick_tcti(e, v, c);
        assert_eq!(t(Some("a"), Some("b"), Some("c")), "a");
        assert_eq!(t(None, Some("b"), Some("c")), "b");
        assert_eq!(t(Some(""), Some("b"), Some("c")), "b");
        assert_eq!(t(None, Some(""), Some("c")), "c");
        assert_eq!(t(None, None, Some("")), DEFAULT_TCTI);
        assert_eq!(t(None, None, None), DEFAULT_TCTI);
    }
}
