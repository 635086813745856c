//! The real TPM backend: tss-esapi over tpm2-tss (ESYS).
//!
//! - TCTI from the caller ([`super::tcti_name`]: option, `$MODSEAL_TCTI`,
//!   `device:/dev/tpmrm0`); `TSS2_LOG=all+none` is set before ESYS starts
//!   (unless the user set `TSS2_LOG`), so ESYS does not print its own warnings
//!   for failures modseal reports itself.
//! - Storage root key: the persistent SRK at 0x81000001 when present, else a
//!   primary key recreated in the owner hierarchy from the standard RSA-2048
//!   SRK template (TCG TPM v2.0 Provisioning Guidance §7.5.1, the same as
//!   systemd's `tpm2_get_srk_template(TPM2_ALG_RSA)` and `tpm2_createprimary
//!   -C o -G rsa2048:null:aes128cfb -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda'`).
//! - Sealing: the PolicyPCR digest is computed off the TPM and must equal what
//!   a trial session computes; the sealed data object is a keyed-hash object
//!   with no userWithAuth (policy only), created through a session salted
//!   with the SRK so the sensitive data travels encrypted.
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
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Digest, DigestValues, KeyedHashScheme, PcrSelectionList,
    PcrSelectionListBuilder, PcrSlot, Private, Public, PublicBuilder, PublicKeyRsa,
    PublicKeyedHashParameters, PublicRsaParametersBuilder, RsaExponent, SensitiveData,
    SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, TctiNameConf};
use zeroize::Zeroizing;

use super::rc::{self, OpKind};
use super::{
    tpm2b, AttestTpm, PcrBank, PublicArea, Quoted, SealedBlob, Srk, Tpm, TpmError,
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

/// The standard RSA-2048 storage root key template: attributes 0x00030472
/// (fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, noDA,
/// restricted, decrypt), AES-128-CFB, no scheme, default exponent, empty
/// unique and authPolicy.
pub fn srk_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Rsa)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_rsa_parameters(
            PublicRsaParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                RsaKeyBits::Rsa2048,
                RsaExponent::default(),
            )
            .build()?,
        )
        .with_rsa_unique_identifier(PublicKeyRsa::default())
        .build()
}

/// The public template of the sealed data object (see
/// [`tpm2b::SEALED_ATTRIBUTES`]).
fn sealed_template(policy: Digest) -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_admin_with_policy(true)
        .with_no_da(true)
        .with_user_with_auth(false)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(policy)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
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

    fn start_session(
        &mut self,
        op: &'static str,
        salt: Option<KeyHandle>,
        kind: SessionType,
        symmetric: SymmetricDefinition,
    ) -> Result<AuthSession, TpmError> {
        let s = self
            .cmd(op, OpKind::Other, |c| {
                c.start_auth_session(salt, None, None, kind, symmetric, HashingAlgorithm::Sha256)
            })?
            .ok_or(TpmError::Tpm {
                op,
                rc: 0,
                text: "no session handle returned".into(),
            })?;
        Ok(s)
    }

    fn set_session_attributes(
        &mut self,
        s: AuthSession,
        decrypt: bool,
        encrypt: bool,
    ) -> Result<(), TpmError> {
        let (attrs, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(decrypt)
            .with_encrypt(encrypt)
            .build();
        // TR_SetAttributes is local to ESYS: no TPM command.
        self.ctx
            .tr_sess_set_attributes(s, attrs, mask)
            .map_err(|e| self.fail("TR_SetAttributes", OpKind::Other, e))
    }

    /// Whether the persistent SRK (0x81000001) exists.
    fn persistent_srk_present(&mut self) -> Result<bool, TpmError> {
        let (data, _) = self.cmd("GetCapability(handles)", OpKind::Other, |c| {
            c.get_capability(CapabilityType::Handles, SRK_PERSISTENT_HANDLE, 1)
        })?;
        Ok(match data {
            CapabilityData::Handles(list) => {
                list.iter().any(|h| u32::from(*h) == SRK_PERSISTENT_HANDLE)
            }
            _ => false,
        })
    }

    /// The SRK as an ESYS handle, and whether it must be flushed afterwards
    /// (a transient primary) or only closed (a persistent key).
    fn load_srk(&mut self, srk: Srk, kind: OpKind) -> Result<(KeyHandle, bool), TpmError> {
        match srk {
            Srk::Primary => {
                let template = srk_template().map_err(|e| TpmError::Tpm {
                    op: "SRK template",
                    rc: 0,
                    text: e.to_string(),
                })?;
                let created =
                    self.cmd("CreatePrimary(owner, SRK template)", OpKind::Other, |c| {
                        c.execute_with_nullauth_session(|c| {
                            c.create_primary(Hierarchy::Owner, template, None, None, None, None)
                        })
                    })?;
                Ok((created.key_handle, true))
            }
            Srk::Persistent(h) => {
                let handle =
                    TpmHandle::try_from(h).map_err(|e| invalid(format!("handle {h:#x}: {e}")))?;
                let obj = self.cmd("ReadPublic(persistent SRK)", kind, |c| {
                    c.tr_from_tpm_public(handle)
                })?;
                Ok((KeyHandle::from(obj), false))
            }
        }
    }

    fn release_srk(&mut self, srk: KeyHandle, flush: bool) {
        if flush {
            self.flush("FlushContext(SRK)", srk.into());
        } else {
            let mut h = ObjectHandle::from(srk);
            if let Err(e) = self.ctx.tr_close(&mut h) {
                log::debug!("closing the SRK handle: {e}");
            }
        }
    }

    fn trial_policy(
        &mut self,
        sel: &PcrSelectionList,
        pcr_digest: Digest,
    ) -> Result<Vec<u8>, TpmError> {
        let s = self.start_session(
            "StartAuthSession(trial)",
            None,
            SessionType::Trial,
            SymmetricDefinition::Null,
        )?;
        let r = self.trial_policy_in(s, sel, pcr_digest);
        self.flush_session(s);
        r
    }

    fn trial_policy_in(
        &mut self,
        s: AuthSession,
        sel: &PcrSelectionList,
        pcr_digest: Digest,
    ) -> Result<Vec<u8>, TpmError> {
        let ps =
            PolicySession::try_from(s).map_err(|e| self.fail("trial session", OpKind::Other, e))?;
        let sel = sel.clone();
        self.cmd("PolicyPCR(trial)", OpKind::Other, |c| {
            c.policy_pcr(ps, pcr_digest, sel)
        })?;
        let d = self.cmd("PolicyGetDigest(trial)", OpKind::Other, |c| {
            c.policy_get_digest(ps)
        })?;
        Ok(d.value().to_vec())
    }

    fn create_sealed(
        &mut self,
        srk: KeyHandle,
        secret: &[u8],
        policy: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), TpmError> {
        let policy = Digest::try_from(policy.to_vec())
            .map_err(|e| invalid(format!("policy digest: {e}")))?;
        let template = sealed_template(policy).map_err(|e| TpmError::Tpm {
            op: "sealed object template",
            rc: 0,
            text: e.to_string(),
        })?;
        let data = SensitiveData::try_from(secret.to_vec())
            .map_err(|e| invalid(format!("secret: {e}")))?;
        let s = self.start_session(
            "StartAuthSession(HMAC, salted)",
            Some(srk),
            SessionType::Hmac,
            SymmetricDefinition::AES_128_CFB,
        )?;
        let r = self.set_session_attributes(s, true, true).and_then(|()| {
            self.cmd("Create(sealed object)", OpKind::Other, |c| {
                c.execute_with_session(Some(s), |c| {
                    c.create(srk, template, None, Some(data), None, None)
                })
            })
        });
        self.flush_session(s);
        let created = r?;
        let public = created.out_public.marshall().map_err(|e| TpmError::Tpm {
            op: "marshal TPMT_PUBLIC",
            rc: 0,
            text: e.to_string(),
        })?;
        Ok((public, created.out_private.value().to_vec()))
    }

    fn unseal_loaded(
        &mut self,
        srk: KeyHandle,
        obj: KeyHandle,
        sel: &PcrSelectionList,
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        let mut attempt = 1;
        loop {
            let s = self.start_session(
                "StartAuthSession(policy, salted)",
                Some(srk),
                SessionType::Policy,
                SymmetricDefinition::AES_128_CFB,
            )?;
            let r = self.unseal_in(s, obj, sel);
            self.flush_session(s);
            match r {
                Err(TpmError::PcrChanged { rc }) if attempt < UNSEAL_ATTEMPTS => {
                    log::debug!(
                        "PCRs changed during the unseal (rc {rc:#x}), attempt {attempt}: retrying"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn unseal_in(
        &mut self,
        s: AuthSession,
        obj: KeyHandle,
        sel: &PcrSelectionList,
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        self.set_session_attributes(s, false, true)?;
        let ps = PolicySession::try_from(s)
            .map_err(|e| self.fail("policy session", OpKind::Other, e))?;
        let sel = sel.clone();
        self.cmd("PolicyPCR", OpKind::Other, |c| {
            c.policy_pcr(ps, Digest::default(), sel)
        })?;
        let data = self.cmd("Unseal", OpKind::Other, |c| {
            c.execute_with_session(Some(s), |c| c.unseal(obj.into()))
        })?;
        Ok(Zeroizing::new(data.value().to_vec()))
    }
}

impl Tpm for EsapiTpm {
    fn active_banks(&mut self) -> Result<Vec<PcrBank>, TpmError> {
        let (data, _) = self.cmd("GetCapability(PCRs)", OpKind::Other, |c| {
            c.get_capability(CapabilityType::AssignedPcr, 0, 1)
        })?;
        let CapabilityData::AssignedPcr(list) = data else {
            return Err(TpmError::Tpm {
                op: "GetCapability(PCRs)",
                rc: 0,
                text: "unexpected capability data".into(),
            });
        };
        let mut banks: Vec<PcrBank> = list
            .get_selections()
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| bank_of(s.hashing_algorithm()))
            .collect();
        banks.sort();
        banks.dedup();
        Ok(banks)
    }

    fn pcr_read(&mut self, bank: PcrBank, pcrs: &[u8]) -> Result<Vec<Vec<u8>>, TpmError> {
        let mut sorted = pcrs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        check_pcrs(&sorted)?;
        let alg = hash_alg(bank);
        let mut got: std::collections::BTreeMap<u8, Vec<u8>> = std::collections::BTreeMap::new();
        // A TPM returns at most 8 PCR values per PCR_Read.
        for chunk in sorted.chunks(8) {
            let sel = selection(bank, chunk)?;
            let (_counter, read, digests) =
                self.cmd("PCR_Read", OpKind::Other, |c| c.pcr_read(sel))?;
            let mut idx: Vec<u8> = read
                .get_selections()
                .iter()
                .filter(|s| s.hashing_algorithm() == alg)
                .flat_map(|s| s.selected())
                .map(|slot| u32::from(slot).trailing_zeros() as u8)
                .collect();
            idx.sort_unstable();
            if idx.len() != digests.len() {
                return Err(TpmError::Tpm {
                    op: "PCR_Read",
                    rc: 0,
                    text: format!(
                        "{} PCRs selected but {} values returned",
                        idx.len(),
                        digests.len()
                    ),
                });
            }
            for (p, d) in idx.into_iter().zip(digests.value()) {
                got.insert(p, d.value().to_vec());
            }
        }
        pcrs.iter()
            .map(|p| match got.get(p) {
                Some(v) if v.len() == bank.digest_len() => Ok(v.clone()),
                Some(v) => Err(TpmError::Tpm {
                    op: "PCR_Read",
                    rc: 0,
                    text: format!("PCR {p} ({bank}) returned {} bytes", v.len()),
                }),
                None => Err(TpmError::Tpm {
                    op: "PCR_Read",
                    rc: 0,
                    text: format!("the TPM returned no {bank} value for PCR {p} (is the {bank} bank allocated?)"),
                }),
            })
            .collect()
    }

    fn pcr_extend(&mut self, pcr: u8, digests: &[(PcrBank, Vec<u8>)]) -> Result<(), TpmError> {
        check_pcrs(&[pcr])?;
        let handle =
            PcrHandle::try_from(u32::from(pcr)).map_err(|e| invalid(format!("PCR {pcr}: {e}")))?;
        let mut values = DigestValues::new();
        for (bank, d) in digests {
            if d.len() != bank.digest_len() {
                return Err(invalid(format!("a {bank} digest of {} bytes", d.len())));
            }
            let d =
                Digest::try_from(d.clone()).map_err(|e| invalid(format!("{bank} digest: {e}")))?;
            values.set(hash_alg(*bank), d);
        }
        self.cmd("PCR_Extend", OpKind::Other, |c| {
            c.execute_with_nullauth_session(|c| c.pcr_extend(handle, values))
        })
    }

    fn seal(
        &mut self,
        secret: &[u8],
        bank: PcrBank,
        pcrs: &[u8],
        pcr_values: &[Vec<u8>],
        policy_digest: &[u8],
    ) -> Result<SealedBlob, TpmError> {
        check_pcrs(pcrs)?;
        if pcr_values.len() != pcrs.len() || pcr_values.iter().any(|v| v.len() != bank.digest_len())
        {
            return Err(invalid(format!(
                "need one {}-byte {bank} value per PCR",
                bank.digest_len()
            )));
        }
        let computed = bank.policy_pcr_digest(pcrs, pcr_values);
        if computed != policy_digest {
            return Err(invalid(format!(
                "policy digest {} differs from the PolicyPCR digest of the given values {}",
                crate::util::hex::lower(policy_digest),
                crate::util::hex::lower(&computed)
            )));
        }
        let sel = selection(bank, pcrs)?;
        let concat: Vec<u8> = pcr_values.concat();
        let pcr_digest = Digest::try_from(PcrBank::Sha256.hash(&concat)).map_err(invalid)?;
        let trial = self.trial_policy(&sel, pcr_digest)?;
        if trial != policy_digest {
            return Err(invalid(format!(
                "the TPM's trial PolicyPCR digest {} differs from modseal's {}",
                crate::util::hex::lower(&trial),
                crate::util::hex::lower(policy_digest)
            )));
        }
        let srk = if self.persistent_srk_present()? {
            Srk::Persistent(SRK_PERSISTENT_HANDLE)
        } else {
            Srk::Primary
        };
        let (srk_handle, flush) = self.load_srk(srk, OpKind::Other)?;
        let r = self.create_sealed(srk_handle, secret, policy_digest);
        self.release_srk(srk_handle, flush);
        let (public, private) = r?;
        let enc = |what: &str, b: &[u8]| {
            tpm2b::encode_file(b).map_err(|e| invalid(format!("{what}: {e}")))
        };
        Ok(SealedBlob {
            public: enc("TPM2B_PUBLIC", &public)?,
            private: enc("TPM2B_PRIVATE", &private)?,
            srk,
        })
    }

    fn unseal(
        &mut self,
        blob: &SealedBlob,
        bank: PcrBank,
        pcrs: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        check_pcrs(pcrs)?;
        let bad = |op: &'static str, text: String| TpmError::BadObject { op, rc: 0, text };
        let public = tpm2b::decode_file("sealed.pub", &blob.public)
            .map_err(|e| bad("read sealed.pub", e.to_string()))?;
        let public =
            Public::unmarshall(public).map_err(|e| bad("unmarshal TPMT_PUBLIC", e.to_string()))?;
        let private = tpm2b::decode_file("sealed.priv", &blob.private)
            .map_err(|e| bad("read sealed.priv", e.to_string()))?;
        let private =
            Private::try_from(private.to_vec()).map_err(|e| bad("TPM2B_PRIVATE", e.to_string()))?;
        let sel = selection(bank, pcrs)?;
        let (srk, flush) = self.load_srk(blob.srk, OpKind::LoadObject)?;
        let loaded = self.cmd("Load(sealed object)", OpKind::LoadObject, |c| {
            c.execute_with_nullauth_session(|c| c.load(srk, private, public))
        });
        let r = match loaded {
            Ok(obj) => {
                let r = self.unseal_loaded(srk, obj, &sel);
                self.flush("FlushContext(sealed object)", obj.into());
                r
            }
            Err(e) => Err(e),
        };
        self.release_srk(srk, flush);
        r
    }

    fn commands(&self) -> u64 {
        self.commands
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

impl EsapiTpm {
    /// The ESYS handle of the persistent object at `handle`, opened if this
    /// handle has not opened it yet (one TPM2_ReadPublic).
    fn persistent_handle(&mut self, handle: u32) -> Result<ObjectHandle, TpmError> {
        if let Some((h, obj)) = self.persistent {
            if h == handle {
                return Ok(obj);
            }
        }
        match self.open_persistent(handle)? {
            Some(_) => self
                .persistent
                .map(|(_, obj)| obj)
                .ok_or_else(|| tss_failure("ReadPublic(persistent handle)", "no ESYS handle")),
            None => Err(TpmError::Tpm {
                op: "ReadPublic(persistent handle)",
                rc: rc::RC_HANDLE,
                text: format!("no object at persistent handle {handle:#010x}"),
            }),
        }
    }
}

impl AttestTpm for EsapiTpm {
    fn open_persistent(&mut self, handle: u32) -> Result<Option<Vec<u8>>, TpmError> {
        let th = TpmHandle::try_from(handle)
            .map_err(|e| invalid(format!("handle {handle:#010x}: {e}")))?;
        let obj = match self.cmd("ReadPublic(persistent handle)", OpKind::Other, |c| {
            c.tr_from_tpm_public(th)
        }) {
            Ok(obj) => obj,
            Err(e) if e.rc().and_then(rc::tpm_base) == Some(rc::RC_HANDLE) => return Ok(None),
            Err(e) => return Err(e),
        };
        // TR_GetName is local to ESYS: no TPM command.
        let name = self
            .ctx
            .tr_get_name(obj)
            .map_err(|e| self.fail("TR_GetName", OpKind::Other, e))?;
        self.persistent = Some((handle, obj));
        Ok(Some(name.value().to_vec()))
    }

    fn read_persistent_public(&mut self, handle: u32) -> Result<PublicArea, TpmError> {
        let obj = self.persistent_handle(handle)?;
        let (public, name, qualified) = self.cmd("ReadPublic", OpKind::Other, |c| {
            c.read_public(KeyHandle::from(obj))
        })?;
        let public = public
            .marshall()
            .map_err(|e| tss_failure("marshal TPMT_PUBLIC", e))?;
        Ok(PublicArea {
            public,
            name: name.value().to_vec(),
            qualified_name: Some(qualified.value().to_vec()),
        })
    }

    fn create_persistent_primary(
        &mut self,
        template: &[u8],
        handle: u32,
    ) -> Result<PublicArea, TpmError> {
        use tss_esapi::interface_types::dynamic_handles::Persistent;
        use tss_esapi::interface_types::resource_handles::Provision;
        let template =
            Public::unmarshall(template).map_err(|e| invalid(format!("key template: {e}")))?;
        let persistent = tss_esapi::handles::PersistentTpmHandle::new(handle)
            .map_err(|e| invalid(format!("handle {handle:#010x}: {e}")))?;
        let created = self.cmd(
            "CreatePrimary(endorsement hierarchy, AK template)",
            OpKind::Other,
            |c| {
                c.execute_with_nullauth_session(|c| {
                    c.create_primary(Hierarchy::Endorsement, template, None, None, None, None)
                })
            },
        )?;
        let transient = created.key_handle;
        let evicted = self.cmd("EvictControl(owner, AK)", OpKind::Other, |c| {
            c.execute_with_nullauth_session(|c| {
                c.evict_control(
                    Provision::Owner,
                    transient.into(),
                    Persistent::Persistent(persistent),
                )
            })
        });
        self.flush("FlushContext(AK primary)", transient.into());
        let obj = evicted?;
        self.persistent = Some((handle, obj));
        let name = self
            .ctx
            .tr_get_name(obj)
            .map_err(|e| self.fail("TR_GetName", OpKind::Other, e))?;
        let public = created
            .out_public
            .marshall()
            .map_err(|e| tss_failure("marshal TPMT_PUBLIC", e))?;
        Ok(PublicArea {
            public,
            name: name.value().to_vec(),
            qualified_name: None,
        })
    }

    fn quote(
        &mut self,
        handle: u32,
        qualifying_data: &[u8],
        selection: &[(PcrBank, Vec<u8>)],
    ) -> Result<Quoted, TpmError> {
        use tss_esapi::structures::{Data, SignatureScheme};
        let data = Data::try_from(qualifying_data.to_vec()).map_err(|e| {
            invalid(format!(
                "qualifying data of {} bytes: {e}",
                qualifying_data.len()
            ))
        })?;
        let sel = ordered_selection(selection)?;
        let key = KeyHandle::from(self.persistent_handle(handle)?);
        let (attest, signature) = self.cmd("Quote", OpKind::Other, |c| {
            c.execute_with_nullauth_session(|c| c.quote(key, data, SignatureScheme::Null, sel))
        })?;
        Ok(Quoted {
            attest: attest
                .marshall()
                .map_err(|e| tss_failure("marshal TPMS_ATTEST", e))?,
            signature: signature
                .marshall()
                .map_err(|e| tss_failure("marshal TPMT_SIGNATURE", e))?,
        })
    }

    fn pcr_read_groups(
        &mut self,
        selection: &[(PcrBank, Vec<u8>)],
    ) -> Result<Vec<Vec<Vec<u8>>>, TpmError> {
        let mut remaining: Vec<(PcrBank, Vec<u8>)> = selection.to_vec();
        let total: usize = selection.iter().map(|(_, p)| p.len()).sum();
        let mut groups = Vec::new();
        // Each command returns at least one value, so `total` commands at most.
        for _ in 0..total {
            remaining.retain(|(_, p)| !p.is_empty());
            if remaining.is_empty() {
                break;
            }
            let sel = ordered_selection(&remaining)?;
            let (_counter, read, digests) =
                self.cmd("PCR_Read", OpKind::Other, |c| c.pcr_read(sel))?;
            let mut returned = 0usize;
            for s in read.get_selections() {
                let bank = bank_of(s.hashing_algorithm());
                let mut idx: Vec<u8> = s
                    .selected()
                    .into_iter()
                    .map(|slot| u32::from(slot).trailing_zeros() as u8)
                    .collect();
                idx.sort_unstable();
                for p in idx {
                    let pos = remaining
                        .iter_mut()
                        .find(|(b, _)| Some(*b) == bank)
                        .and_then(|(_, pcrs)| pcrs.iter().position(|&q| q == p).map(|i| (pcrs, i)));
                    match pos {
                        Some((pcrs, i)) => {
                            pcrs.remove(i);
                            returned += 1;
                        }
                        None => {
                            return Err(tss_failure(
                                "PCR_Read",
                                format!(
                                    "the TPM returned PCR {p} of a bank or index not asked for"
                                ),
                            ))
                        }
                    }
                }
            }
            let values: Vec<Vec<u8>> = digests.value().iter().map(|d| d.value().to_vec()).collect();
            if returned == 0 && values.is_empty() {
                // Nothing more comes back: named below.
                break;
            }
            if values.len() != returned {
                return Err(tss_failure(
                    "PCR_Read",
                    format!(
                        "{returned} PCRs selected in the response but {} values returned",
                        values.len()
                    ),
                ));
            }
            groups.push(values);
        }
        remaining.retain(|(_, p)| !p.is_empty());
        if let Some((bank, pcrs)) = remaining.first() {
            return Err(tss_failure(
                "PCR_Read",
                format!(
                    "the TPM returned no {bank} value for PCR {} (is the {bank} bank allocated?)",
                    pcrs.first().copied().unwrap_or_default()
                ),
            ));
        }
        Ok(groups)
    }

    fn attest_commands(&self) -> u64 {
        self.commands
    }
}

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
