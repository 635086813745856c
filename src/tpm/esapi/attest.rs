//! The `AttestTpm` operations of `modseal quote`: persistent handles, the AK, quotes, PCR reads in groups.

use super::*;

impl EsapiTpm {
    /// The ESYS handle of the persistent object at `handle`, opened if this
    /// handle has not opened it yet (one TPM2_ReadPublic).
    pub(super) fn persistent_handle(&mut self, handle: u32) -> Result<ObjectHandle, TpmError> {
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
