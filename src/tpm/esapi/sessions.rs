//! Sessions, the storage root key and the sealed object: salted policy sessions, trial policies, create and unseal.

use super::*;

/// The standard RSA-2048 storage root key template
/// ([`srk_template_for`]`(SrkTemplate::Rsa2048)`).
pub fn srk_template() -> tss_esapi::Result<Public> {
    srk_template_for(SrkTemplate::Rsa2048)
}

/// A standard storage root key template (see [`SrkTemplate`]): attributes
/// 0x00030472 (fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth,
/// noDA, restricted, decrypt), AES-128-CFB, no scheme (and for ECC no KDF),
/// default exponent, empty unique and authPolicy — what `tpm2_createprimary
/// -C o -G rsa2048:null:aes128cfb` or `-G ecc256:null:aes128cfb` with those
/// attributes makes.
pub fn srk_template_for(template: SrkTemplate) -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    let builder = PublicBuilder::new()
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes);
    match template {
        SrkTemplate::Rsa2048 => builder
            .with_public_algorithm(PublicAlgorithm::Rsa)
            .with_rsa_parameters(
                PublicRsaParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    RsaKeyBits::Rsa2048,
                    RsaExponent::default(),
                )
                .build()?,
            )
            .with_rsa_unique_identifier(PublicKeyRsa::default())
            .build(),
        SrkTemplate::EccP256 => builder
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    EccCurve::NistP256,
                )
                .build()?,
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build(),
    }
}

/// The public template of the sealed data object (see
/// [`tpm2b::SEALED_ATTRIBUTES`]).
pub(super) fn sealed_template(policy: Digest) -> tss_esapi::Result<Public> {
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

/// The storage root key as loaded for one seal or unseal.
pub(super) struct LoadedSrk {
    /// Its ESYS handle.
    pub(super) handle: KeyHandle,
    /// A transient primary (flushed afterwards) rather than a persistent key
    /// (only closed).
    pub(super) flush: bool,
    /// Its name (see [`EsapiTpm::load_srk`]).
    pub(super) name: Vec<u8>,
}

impl LoadedSrk {
    /// Refuses this key, `srk` in `sealed.json`, unless its name is `pinned`
    /// (see [`SealedBlob::srk_name`]).
    pub(super) fn check_pinned(&self, srk: Srk, pinned: &[u8]) -> Result<(), TpmError> {
        if self.name == pinned {
            return Ok(());
        }
        Err(TpmError::SrkMismatch {
            srk: srk.to_config(),
            pinned: crate::util::hex::lower(pinned),
            found: crate::util::hex::lower(&self.name),
        })
    }
}

impl EsapiTpm {
    pub(super) fn start_session(
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

    pub(super) fn set_session_attributes(
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
    pub(super) fn persistent_srk_present(&mut self) -> Result<bool, TpmError> {
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

    /// The SRK as an ESYS handle, whether it must be flushed afterwards (a
    /// transient primary) or only closed (a persistent key), and its name.
    /// The name is that of the public area ESYS will encrypt a salt to, not
    /// the one the TPM answered with: a primary's is computed here from
    /// CreatePrimary's outPublic (and must equal the one ESYS computes from
    /// its copy); a persistent key's is ESYS's own hash of the public area it
    /// read (Esys_TR_GetName hashes the stored TPMT_PUBLIC for keys; tss-esapi
    /// gives no other access to it without a second ReadPublic).
    pub(super) fn load_srk(&mut self, srk: Srk, kind: OpKind) -> Result<LoadedSrk, TpmError> {
        match srk {
            Srk::Primary(template) => {
                let template =
                    srk_template_for(template).map_err(|e| tss_failure("SRK template", e))?;
                let created =
                    self.cmd("CreatePrimary(owner, SRK template)", OpKind::Other, |c| {
                        c.execute_with_nullauth_session(|c| {
                            c.create_primary(Hierarchy::Owner, template, None, None, None, None)
                        })
                    })?;
                let loaded = LoadedSrk {
                    handle: created.key_handle,
                    flush: true,
                    name: Vec::new(),
                };
                let name = created
                    .out_public
                    .marshall()
                    .map_err(|e| tss_failure("marshal the SRK's TPMT_PUBLIC", e))
                    .and_then(|p| {
                        crate::tpm::name::object_name(&p)
                            .map_err(|e| tss_failure("the SRK's name", e))
                    })
                    .and_then(|ours| self.esys_name_agrees(created.key_handle, ours));
                match name {
                    Ok(name) => Ok(LoadedSrk { name, ..loaded }),
                    Err(e) => {
                        self.release_srk(&loaded);
                        Err(e)
                    }
                }
            }
            Srk::Persistent(h) => {
                let handle =
                    TpmHandle::try_from(h).map_err(|e| invalid(format!("handle {h:#x}: {e}")))?;
                let obj = self.cmd("ReadPublic(persistent SRK)", kind, |c| {
                    c.tr_from_tpm_public(handle)
                })?;
                let loaded = LoadedSrk {
                    handle: KeyHandle::from(obj),
                    flush: false,
                    name: Vec::new(),
                };
                match self.esys_name(loaded.handle) {
                    Ok(name) => Ok(LoadedSrk { name, ..loaded }),
                    Err(e) => {
                        self.release_srk(&loaded);
                        Err(e)
                    }
                }
            }
        }
    }

    /// The name ESYS holds for `key` (no TPM command).
    fn esys_name(&mut self, key: KeyHandle) -> Result<Vec<u8>, TpmError> {
        let name = self
            .ctx
            .tr_get_name(key.into())
            .map_err(|e| self.fail("TR_GetName(SRK)", OpKind::Other, e))?;
        Ok(name.value().to_vec())
    }

    /// `ours` if ESYS's name for `key` is the same: two computations of one
    /// public area that disagree are not a key to salt a session with.
    fn esys_name_agrees(&mut self, key: KeyHandle, ours: Vec<u8>) -> Result<Vec<u8>, TpmError> {
        let esys = self.esys_name(key)?;
        if esys != ours {
            return Err(tss_failure(
                "the SRK's name",
                format!(
                    "{} computed from outPublic, {} from ESYS's copy",
                    crate::util::hex::lower(&ours),
                    crate::util::hex::lower(&esys)
                ),
            ));
        }
        Ok(ours)
    }

    pub(super) fn release_srk(&mut self, srk: &LoadedSrk) {
        if srk.flush {
            self.flush("FlushContext(SRK)", srk.handle.into());
        } else {
            let mut h = ObjectHandle::from(srk.handle);
            if let Err(e) = self.ctx.tr_close(&mut h) {
                log::debug!("closing the SRK handle: {e}");
            }
        }
    }

    pub(super) fn trial_policy(
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

    pub(super) fn trial_policy_in(
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

    pub(super) fn create_sealed(
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

    pub(super) fn unseal_loaded(
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

    pub(super) fn unseal_in(
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
