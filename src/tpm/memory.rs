//! **TEST DOUBLE — not a TPM.** An in-memory model of the few TPM behaviours
//! modseal relies on, for testing the logic above the [`Tpm`] trait (boot
//! flow, enroll/unseal bookkeeping) without swtpm. It protects nothing: the
//! "sealed" secret sits in this process's memory. Never use it outside tests.
//! Every behaviour modelled here is also tested against swtpm through the
//! real backend (`tests/tpm.rs`).
//!
//! What it models:
//! - PCRs 0–23 per active bank, all zero at start (and after [`MemoryTpm::reset`],
//!   a reboot), extended as the TPM does;
//! - `seal` stores the secret with its policy digest under an object id and
//!   returns a blob whose public area is a real keyed-hash `TPMT_PUBLIC`
//!   (so the off-TPM checks of `sealed.pub` work on it) and whose private
//!   area names the object and this instance;
//! - `unseal` recomputes the PolicyPCR digest from the current PCRs and
//!   refuses with `PolicyMismatch` (rc 0x99D) if it differs from the stored
//!   one; a blob from another instance or an unknown/altered object id is
//!   `BadObject` (rc 0x1DF, TPM_RC_INTEGRITY), as a TPM refuses to load it;
//! - a counter of "TPM commands": each trait call counts what the real backend
//!   would send at the least, one per call;
//! - a storage root key name per instance ([`MemoryTpm::srk_name`]): `seal`
//!   records it in the blob, `unseal` refuses a blob pinning another one
//!   (`SrkMismatch`) before anything else, as the real backend refuses to
//!   salt a session with an SRK of another name;
//! - failure injection: [`MemoryTpm::fail_next`] (e.g. lockout, no device).

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{PcrBank, SealedBlob, Srk, SrkTemplate, Tpm, TpmError};

const PRIVATE_MAGIC: &[u8; 8] = b"MEMTPM01";

struct Object {
    secret: Zeroizing<Vec<u8>>,
    policy: Vec<u8>,
    public: Vec<u8>,
}

/// In-memory TPM model for tests. See the module documentation.
pub struct MemoryTpm {
    banks: Vec<PcrBank>,
    pcrs: BTreeMap<PcrBank, Vec<Vec<u8>>>,
    objects: BTreeMap<u64, Object>,
    instance: u64,
    next_id: u64,
    commands: u64,
    fail_next: Option<TpmError>,
}

impl MemoryTpm {
    /// A model with the given active banks (in that order) and PCRs at zero.
    pub fn new(banks: &[PcrBank]) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let instance = nanos ^ (u64::from(std::process::id()) << 32) ^ (banks.len() as u64);
        let mut t = MemoryTpm {
            banks: banks.to_vec(),
            pcrs: BTreeMap::new(),
            objects: BTreeMap::new(),
            instance,
            next_id: 1,
            commands: 0,
            fail_next: None,
        };
        t.reset();
        t
    }

    /// A model with the SHA-256 bank only.
    pub fn sha256() -> Self {
        MemoryTpm::new(&[PcrBank::Sha256])
    }

    /// A reboot: every PCR back to zero. Sealed objects stay loadable (the
    /// seeds survive), the command counter is kept.
    pub fn reset(&mut self) {
        self.pcrs = self
            .banks
            .iter()
            .map(|&b| (b, vec![vec![0u8; b.digest_len()]; 24]))
            .collect();
    }

    /// The current value of `pcr` in `bank`, if that bank is active.
    pub fn pcr(&self, bank: PcrBank, pcr: u8) -> Option<Vec<u8>> {
        self.pcrs.get(&bank)?.get(usize::from(pcr)).cloned()
    }

    /// Sets `pcr` in `bank` directly (a test shortcut, not a TPM operation).
    pub fn set_pcr(&mut self, bank: PcrBank, pcr: u8, value: Vec<u8>) {
        if let Some(slot) = self
            .pcrs
            .get_mut(&bank)
            .and_then(|v| v.get_mut(usize::from(pcr)))
        {
            *slot = value;
        }
    }

    /// The name of this instance's storage root key made from the default
    /// template ([`MemoryTpm::srk_name_for`]).
    pub fn srk_name(&self) -> Vec<u8> {
        self.srk_name_for(SrkTemplate::DEFAULT)
    }

    /// The name of this instance's storage root key made from `template` (a
    /// SHA-256 name derived from the instance and the template, as a TPM's
    /// derives from its owner seed and the template).
    pub fn srk_name_for(&self, template: SrkTemplate) -> Vec<u8> {
        let mut name = PcrBank::Sha256.alg_id().to_be_bytes().to_vec();
        name.extend_from_slice(&PcrBank::Sha256.hash_parts(&[
            b"MemoryTpm SRK",
            &self.instance.to_be_bytes(),
            template.name().as_bytes(),
        ]));
        name
    }

    /// Makes the next trait call fail with `error` (counted as a command).
    pub fn fail_next(&mut self, error: TpmError) {
        self.fail_next = Some(error);
    }

    /// TPM commands modelled so far (one per trait call).
    pub fn commands(&self) -> u64 {
        self.commands
    }

    fn begin(&mut self) -> Result<(), TpmError> {
        self.commands += 1;
        match self.fail_next.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn values(&self, bank: PcrBank, pcrs: &[u8]) -> Result<Vec<Vec<u8>>, TpmError> {
        let bankv = self.pcrs.get(&bank).ok_or_else(|| TpmError::Tpm {
            op: "PCR_Read",
            rc: 0x2C3,
            text: format!("bank {bank} is not active"),
        })?;
        pcrs.iter()
            .map(|&p| {
                bankv.get(usize::from(p)).cloned().ok_or(TpmError::Tpm {
                    op: "PCR_Read",
                    rc: 0x2C4,
                    text: format!("PCR {p} out of range"),
                })
            })
            .collect()
    }

    fn bad_object(text: &str) -> TpmError {
        TpmError::BadObject {
            op: "Load",
            rc: 0x1DF,
            text: format!("TPM_RC_INTEGRITY (parameter 1): {text}"),
        }
    }
}

impl Tpm for MemoryTpm {
    fn active_banks(&mut self) -> Result<Vec<PcrBank>, TpmError> {
        self.begin()?;
        Ok(self.banks.clone())
    }

    fn pcr_read(&mut self, bank: PcrBank, pcrs: &[u8]) -> Result<Vec<Vec<u8>>, TpmError> {
        self.begin()?;
        self.values(bank, pcrs)
    }

    fn pcr_extend(&mut self, pcr: u8, digests: &[(PcrBank, Vec<u8>)]) -> Result<(), TpmError> {
        self.begin()?;
        if pcr > 23 {
            return Err(TpmError::Invalid(format!("PCR {pcr} out of range")));
        }
        for (bank, d) in digests {
            if d.len() != bank.digest_len() {
                return Err(TpmError::Invalid(format!(
                    "{bank} digest of {} bytes",
                    d.len()
                )));
            }
            if let Some(slot) = self
                .pcrs
                .get_mut(bank)
                .and_then(|v| v.get_mut(usize::from(pcr)))
            {
                *slot = bank.extend(slot, d);
            }
        }
        Ok(())
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
        self.begin()?;
        if pcr_values.len() != pcrs.len() || pcr_values.iter().any(|v| v.len() != bank.digest_len())
        {
            return Err(TpmError::Invalid(
                "PCR values do not match the PCR list and bank".into(),
            ));
        }
        let computed = bank.policy_pcr_digest(pcrs, pcr_values);
        if computed != policy_digest {
            return Err(TpmError::Invalid(format!(
                "policy digest {} differs from the model's {}",
                crate::util::hex::lower(policy_digest),
                crate::util::hex::lower(&computed)
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        let unique =
            PcrBank::Sha256.hash_parts(&[&self.instance.to_be_bytes(), &id.to_be_bytes(), secret]);
        let tpmt = super::tpm2b::build_sealed_public(policy_digest, &unique);
        let mut private = PRIVATE_MAGIC.to_vec();
        private.extend_from_slice(&self.instance.to_be_bytes());
        private.extend_from_slice(&id.to_be_bytes());
        let enc =
            |b: &[u8]| super::tpm2b::encode_file(b).map_err(|e| TpmError::Invalid(e.to_string()));
        let blob = SealedBlob {
            public: enc(&tpmt)?,
            private: enc(&private)?,
            srk: Srk::Primary(template),
            srk_name: self.srk_name_for(template),
        };
        self.objects.insert(
            id,
            Object {
                secret: Zeroizing::new(secret.to_vec()),
                policy: policy_digest.to_vec(),
                public: blob.public.clone(),
            },
        );
        Ok(blob)
    }

    fn unseal(
        &mut self,
        blob: &SealedBlob,
        bank: PcrBank,
        pcrs: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, TpmError> {
        self.begin()?;
        let found = self.srk_name_for(blob.srk.template().unwrap_or(SrkTemplate::DEFAULT));
        if blob.srk_name != found {
            return Err(TpmError::SrkMismatch {
                srk: blob.srk.to_config(),
                pinned: crate::util::hex::lower(&blob.srk_name),
                found: crate::util::hex::lower(&found),
            });
        }
        let private = super::tpm2b::decode_file("sealed.priv", &blob.private)
            .map_err(|e| Self::bad_object(&e.to_string()))?;
        let rest = private
            .strip_prefix(&PRIVATE_MAGIC[..])
            .filter(|r| r.len() == 16)
            .ok_or_else(|| Self::bad_object("not a private area of this TPM"))?;
        let (inst, id) = rest.split_at(8);
        let inst = u64::from_be_bytes(inst.try_into().map_err(|_| Self::bad_object("short"))?);
        let id = u64::from_be_bytes(id.try_into().map_err(|_| Self::bad_object("short"))?);
        if inst != self.instance {
            return Err(Self::bad_object("sealed by another TPM"));
        }
        let obj = self
            .objects
            .get(&id)
            .ok_or_else(|| Self::bad_object("unknown object"))?;
        if obj.public != blob.public {
            return Err(Self::bad_object(
                "public area does not match the private area",
            ));
        }
        let policy = obj.policy.clone();
        let current = bank.policy_pcr_digest(pcrs, &self.values(bank, pcrs)?);
        if current != policy {
            return Err(TpmError::PolicyMismatch { rc: 0x99D });
        }
        Ok(Zeroizing::new(obj.secret.to_vec()))
    }

    fn commands(&self) -> u64 {
        self.commands
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_unseal_and_refuse_after_extend() {
        let mut t = MemoryTpm::sha256();
        let b = PcrBank::Sha256;
        let vals = t.pcr_read(b, &[12]).unwrap();
        let pol = b.policy_pcr_digest(&[12], &vals);
        let blob = t
            .seal(b"secret", b, &[12], &vals, &pol, SrkTemplate::DEFAULT)
            .unwrap();
        assert_eq!(&**t.unseal(&blob, b, &[12]).unwrap(), b"secret");
        t.pcr_extend(12, &[(b, b.hash(b"x"))]).unwrap();
        assert_eq!(
            t.unseal(&blob, b, &[12]).unwrap_err(),
            TpmError::PolicyMismatch { rc: 0x99D }
        );
        t.reset();
        assert_eq!(&**t.unseal(&blob, b, &[12]).unwrap(), b"secret");
        assert_eq!(t.commands(), 6);
    }

    #[test]
    fn foreign_or_altered_blobs_are_bad_objects() {
        let b = PcrBank::Sha256;
        let mut t1 = MemoryTpm::sha256();
        let mut t2 = MemoryTpm::sha256();
        t2.instance ^= 1;
        let vals = vec![vec![0u8; 32]];
        let pol = b.policy_pcr_digest(&[12], &vals);
        let blob = t1
            .seal(b"s", b, &[12], &vals, &pol, SrkTemplate::DEFAULT)
            .unwrap();
        // Another TPM's SRK has another name: refused before the load.
        assert!(matches!(
            t2.unseal(&blob, b, &[12]),
            Err(TpmError::SrkMismatch { .. })
        ));
        // Past that check, the private area is still another TPM's.
        let foreign = SealedBlob {
            srk_name: t2.srk_name(),
            ..blob.clone()
        };
        assert!(matches!(
            t2.unseal(&foreign, b, &[12]),
            Err(TpmError::BadObject { .. })
        ));
        let mut bad = blob.clone();
        let n = bad.private.len();
        bad.private[n - 1] ^= 1;
        assert!(matches!(
            t1.unseal(&bad, b, &[12]),
            Err(TpmError::BadObject { .. })
        ));
        assert!(t1
            .seal(b"s", b, &[12], &vals, &[0u8; 32], SrkTemplate::DEFAULT)
            .is_err());
    }

    #[test]
    fn injected_failures() {
        let mut t = MemoryTpm::sha256();
        t.fail_next(TpmError::Lockout { rc: 0x921 });
        assert_eq!(
            t.active_banks().unwrap_err(),
            TpmError::Lockout { rc: 0x921 }
        );
        assert!(t.active_banks().is_ok());
    }
}
