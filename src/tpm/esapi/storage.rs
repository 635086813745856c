//! The `Tpm` operations of the boot flow: banks, PCR read and extend, seal and unseal.

use super::*;

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
        template: SrkTemplate,
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
            Srk::Primary(template)
        };
        let loaded = self.load_srk(srk, OpKind::Other)?;
        let r = self.create_sealed(loaded.handle, secret, policy_digest);
        self.release_srk(&loaded);
        let (public, private) = r?;
        let enc = |what: &str, b: &[u8]| {
            tpm2b::encode_file(b).map_err(|e| invalid(format!("{what}: {e}")))
        };
        Ok(SealedBlob {
            public: enc("TPM2B_PUBLIC", &public)?,
            private: enc("TPM2B_PRIVATE", &private)?,
            srk,
            srk_name: loaded.name,
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
        let srk = self.load_srk(blob.srk, OpKind::LoadObject)?;
        let r = srk
            .check_pinned(blob.srk, &blob.srk_name)
            .and_then(|()| {
                self.cmd("Load(sealed object)", OpKind::LoadObject, |c| {
                    c.execute_with_nullauth_session(|c| c.load(srk.handle, private, public))
                })
            })
            .and_then(|obj| {
                let r = self.unseal_loaded(srk.handle, obj, &sel);
                self.flush("FlushContext(sealed object)", obj.into());
                r
            });
        self.release_srk(&srk);
        r
    }

    fn commands(&self) -> u64 {
        self.commands
    }
}
