//! The real TPM backend: tss-esapi over tpm2-tss (ESYS).
//!
//! - TCTI from the caller ([`super::tcti_name`]: option, `$MODSEAL_TCTI`,
//!   `device:/dev/tpmrm0`); `TSS2_LOG=all+none` is set before ESYS starts
//!   (unless the user set `TSS2_LOG`), so ESYS does not print its own warnings
//!   for failures modseal reports itself.
//! - Storage root key: the persistent SRK at 0x81000001 when present, else a
//!   primary key recreated in the owner hierarchy from a standard SRK
//!   template, ECC P-256 for new enrollments, RSA-2048 for older ones and
//!   `enroll --srk rsa-2048` (TCG TPM v2.0 Provisioning Guidance §7.5.1, the
//!   same as systemd's `tpm2_get_srk_template()` and `tpm2_createprimary -C o
//!   -G ecc256:null:aes128cfb` or `rsa2048:null:aes128cfb` with `-a
//!   'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda'`).
//!   ESYS salts a session with an ECC key by ECDH (a fresh ephemeral key on
//!   the host, the shared point through KDFe), an RSA one by RSA-OAEP.
//! - Sealing: the PolicyPCR digest is computed off the TPM and must equal what
//!   a trial session computes; the sealed data object is a keyed-hash object
//!   with no userWithAuth (policy only), created through a session salted
//!   with the SRK so the sensitive data travels encrypted.
//! - The SRK's name: computed from the public area ESYS holds for it (see
//!   `load_srk`), recorded at sealing, and compared with the pinned one
//!   before an unseal loads anything under the SRK or salts a session with it
//!   ([`TpmError::SrkMismatch`]); no extra TPM command.
//! - Unsealing: a policy session salted with the SRK (tpmKey) with the
//!   `encrypt` attribute: the response is encrypted with, and HMAC-ed under, a
//!   session key an interposer on the bus cannot know (ESYS checks the response
//!   HMAC); PolicyPCR with an empty digest (the TPM uses the current values);
//!   Unseal. TPM_RC_PCR_CHANGED restarts the session, at most 3 attempts.
//! - Attestation ([`AttestTpm`], for `modseal quote`): the attestation key
//!   is a primary key of the endorsement hierarchy made from a template the
//!   caller gives, persisted with EvictControl (owner authorization) and then
//!   used through its persistent handle; quotes use the key's own scheme;
//!   PCR values are read the way tpm2-tools reads them (repeated PCR_Read
//!   until every selected PCR was returned, one group per command).
//! - Every command is counted ([`EsapiTpm::commands`]); every failure names
//!   the operation and the decoded return code ([`super::rc`]).

use std::str::FromStr;

use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::{CapabilityType, SessionType, Tss2ResponseCode};
use tss_esapi::handles::{KeyHandle, ObjectHandle, PcrHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Digest, DigestValues, EccPoint, KeyedHashScheme, PcrSelectionList,
    PcrSelectionListBuilder, PcrSlot, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyRsa, PublicKeyedHashParameters, PublicRsaParametersBuilder, RsaExponent,
    SensitiveData, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, TctiNameConf};
use zeroize::Zeroizing;

use super::rc::{self, OpKind};
use super::{
    tpm2b, AttestTpm, PcrBank, PublicArea, Quoted, SealedBlob, Srk, SrkTemplate, Tpm, TpmError,
    SRK_PERSISTENT_HANDLE,
};

/// How many times a policy session and Unseal are tried when the PCRs change
/// between PolicyPCR and Unseal (TPM_RC_PCR_CHANGED).
const UNSEAL_ATTEMPTS: u32 = 3;

/// A TPM reached through tss-esapi.
pub struct EsapiTpm {
    ctx: Context,
    tcti: String,
    commands: u64,
    /// The ESYS handle of the persistent attestation key last opened or
    /// made, with its TPM handle (so a quote needs no second ReadPublic).
    persistent: Option<(u32, ObjectHandle)>,
}

impl std::fmt::Debug for EsapiTpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsapiTpm")
            .field("tcti", &self.tcti)
            .field("commands", &self.commands)
            .finish()
    }
}

/// Keeps ESYS quiet unless the user asked for its log.
fn quiet_esys_log() {
    if std::env::var_os("TSS2_LOG").is_none() {
        std::env::set_var("TSS2_LOG", "all+none");
    }
}

/// The raw TSS2_RC inside a tss-esapi error (tss-esapi 7 keeps it private
/// but prints it as "Response code value: 0x…").
fn raw_rc(e: &tss_esapi::Error) -> Option<u32> {
    let text = match e {
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::Success) => return Some(0),
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatZero(c)) => c.to_string(),
        tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(c)) => c.to_string(),
        tss_esapi::Error::WrapperError(_) => return None,
    };
    let hex = text.rsplit("0x").next()?;
    u32::from_str_radix(hex.trim(), 16).ok()
}

fn hash_alg(bank: PcrBank) -> HashingAlgorithm {
    match bank {
        PcrBank::Sha1 => HashingAlgorithm::Sha1,
        PcrBank::Sha256 => HashingAlgorithm::Sha256,
        PcrBank::Sha384 => HashingAlgorithm::Sha384,
        PcrBank::Sha512 => HashingAlgorithm::Sha512,
    }
}

fn bank_of(alg: HashingAlgorithm) -> Option<PcrBank> {
    match alg {
        HashingAlgorithm::Sha1 => Some(PcrBank::Sha1),
        HashingAlgorithm::Sha256 => Some(PcrBank::Sha256),
        HashingAlgorithm::Sha384 => Some(PcrBank::Sha384),
        HashingAlgorithm::Sha512 => Some(PcrBank::Sha512),
        _ => None,
    }
}

fn invalid(what: impl std::fmt::Display) -> TpmError {
    TpmError::Invalid(what.to_string())
}

fn check_pcrs(pcrs: &[u8]) -> Result<(), TpmError> {
    if pcrs.is_empty() {
        return Err(invalid("empty PCR list"));
    }
    if let Some(p) = pcrs.iter().find(|&&p| p > 23) {
        return Err(invalid(format!("PCR {p} out of range (0-23)")));
    }
    if pcrs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid("PCR list must be ascending without repeats"));
    }
    Ok(())
}

fn slot(p: u8) -> Result<PcrSlot, TpmError> {
    PcrSlot::try_from(1u32 << p).map_err(|e| invalid(format!("PCR {p}: {e}")))
}

fn selection(bank: PcrBank, pcrs: &[u8]) -> Result<PcrSelectionList, TpmError> {
    let slots = pcrs
        .iter()
        .map(|&p| slot(p))
        .collect::<Result<Vec<_>, _>>()?;
    PcrSelectionListBuilder::new()
        .with_selection(hash_alg(bank), &slots)
        .build()
        .map_err(|e| invalid(format!("PCR selection: {e}")))
}

impl EsapiTpm {
    /// Connects to the TPM at `tcti` (e.g. `device:/dev/tpmrm0`,
    /// `swtpm:host=127.0.0.1,port=2321`). Sends no command.
    pub fn open(tcti: &str) -> Result<Self, TpmError> {
        quiet_esys_log();
        let conf = TctiNameConf::from_str(tcti).map_err(|_| {
            invalid(format!(
                "'{tcti}' is not a TCTI (expected device:PATH, swtpm:host=H,port=P, mssim:host=H,port=P)"
            ))
        })?;
        let ctx = Context::new(conf).map_err(|e| {
            let reason = match raw_rc(&e) {
                Some(rc) => format!("{} (rc {rc:#x})", rc::describe(rc)),
                None => e.to_string(),
            };
            TpmError::NoDevice {
                tcti: tcti.to_owned(),
                reason: format!("TCTI initialisation: {reason}"),
            }
        })?;
        Ok(EsapiTpm {
            ctx,
            tcti: tcti.to_owned(),
            commands: 0,
            persistent: None,
        })
    }

    /// The TCTI this handle talks to.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// TPM commands sent so far.
    pub fn commands(&self) -> u64 {
        self.commands
    }

    fn fail(&self, op: &'static str, kind: OpKind, e: tss_esapi::Error) -> TpmError {
        match raw_rc(&e) {
            Some(rc) => rc::classify(op, kind, rc, &self.tcti),
            None => match kind {
                OpKind::LoadObject => TpmError::BadObject {
                    op,
                    rc: 0,
                    text: format!("tss-esapi: {e}"),
                },
                OpKind::Other => TpmError::Tpm {
                    op,
                    rc: 0,
                    text: format!("tss-esapi: {e}"),
                },
            },
        }
    }

    /// Runs one TPM command, counting it and naming it in the error.
    fn cmd<T>(
        &mut self,
        op: &'static str,
        kind: OpKind,
        f: impl FnOnce(&mut Context) -> tss_esapi::Result<T>,
    ) -> Result<T, TpmError> {
        self.commands += 1;
        let r = f(&mut self.ctx);
        r.map_err(|e| self.fail(op, kind, e))
    }

    fn flush(&mut self, what: &'static str, handle: ObjectHandle) {
        if let Err(e) = self.cmd(what, OpKind::Other, |c| c.flush_context(handle)) {
            log::debug!("{e}");
        }
    }

    fn flush_session(&mut self, session: AuthSession) {
        self.flush("FlushContext(session)", SessionHandle::from(session).into());
    }
}

/// A PCR selection in exactly the order given (tss-esapi's builder keeps
/// banks in a hash map, and the order of banks is part of what a quote
/// hashes).
fn ordered_selection(selection: &[(PcrBank, Vec<u8>)]) -> Result<PcrSelectionList, TpmError> {
    use tss_esapi::tss2_esys::{TPML_PCR_SELECTION, TPMS_PCR_SELECTION};
    let mut tpml = TPML_PCR_SELECTION::default();
    if selection.is_empty() || selection.len() > tpml.pcrSelections.len() {
        return Err(invalid(format!(
            "{} PCR banks selected (1-{})",
            selection.len(),
            tpml.pcrSelections.len()
        )));
    }
    for (slot, (bank, pcrs)) in tpml.pcrSelections.iter_mut().zip(selection) {
        check_pcrs(pcrs)?;
        let mut select = [0u8; 4];
        for &p in pcrs {
            select[usize::from(p / 8)] |= 1 << (p % 8);
        }
        *slot = TPMS_PCR_SELECTION {
            hash: bank.alg_id(),
            sizeofSelect: 3,
            pcrSelect: select,
        };
    }
    tpml.count = selection.len() as u32;
    PcrSelectionList::try_from(tpml).map_err(|e| invalid(format!("PCR selection: {e}")))
}

fn tss_failure(op: &'static str, e: impl std::fmt::Display) -> TpmError {
    TpmError::Tpm {
        op,
        rc: 0,
        text: e.to_string(),
    }
}
mod attest;
mod sessions;
mod storage;

#[cfg(test)]
use sessions::sealed_template;
pub use sessions::{srk_template, srk_template_for};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srk_template_is_the_standard_one() {
        let t = srk_template().unwrap().marshall().unwrap();
        let expected: &[u8] = &[
            0x00, 0x01, // TPM_ALG_RSA
            0x00, 0x0b, // nameAlg SHA-256
            0x00, 0x03, 0x04, 0x72, // attributes
            0x00, 0x00, // authPolicy: empty
            0x00, 0x06, 0x00, 0x80, 0x00, 0x43, // AES 128 CFB
            0x00, 0x10, // scheme NULL
            0x08, 0x00, // 2048 bits
            0x00, 0x00, 0x00, 0x00, // default exponent
            0x00, 0x00, // unique: empty
        ];
        assert_eq!(t, expected);
        let rsa = srk_template_for(SrkTemplate::Rsa2048).unwrap();
        assert_eq!(rsa.marshall().unwrap(), expected);
    }

    #[test]
    fn ecc_srk_template_is_the_standard_one() {
        let t = srk_template_for(SrkTemplate::EccP256)
            .unwrap()
            .marshall()
            .unwrap();
        let expected: &[u8] = &[
            0x00, 0x23, // TPM_ALG_ECC
            0x00, 0x0b, // nameAlg SHA-256
            0x00, 0x03, 0x04, 0x72, // attributes
            0x00, 0x00, // authPolicy: empty
            0x00, 0x06, 0x00, 0x80, 0x00, 0x43, // AES 128 CFB
            0x00, 0x10, // scheme NULL
            0x00, 0x03, // TPM_ECC_NIST_P256
            0x00, 0x10, // kdf NULL
            0x00, 0x00, 0x00, 0x00, // unique: empty x and y
        ];
        assert_eq!(t, expected);
    }

    #[test]
    fn sealed_template_matches_the_off_tpm_check() {
        let policy = vec![9u8; 32];
        let t = sealed_template(Digest::try_from(policy.clone()).unwrap())
            .unwrap()
            .marshall()
            .unwrap();
        let p = tpm2b::SealedPublic::parse(&t).unwrap();
        assert_eq!(p.attributes, tpm2b::SEALED_ATTRIBUTES);
        p.verify(&policy).unwrap();
        assert_eq!(t, tpm2b::build_sealed_public(&policy, &[]));
    }

    #[test]
    fn bad_tcti_strings_are_usage_errors() {
        assert!(matches!(
            EsapiTpm::open("nonsense:x"),
            Err(TpmError::Invalid(_))
        ));
    }
}
