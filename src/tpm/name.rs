//! Object names (TPM 2.0 Part 1, "Names"): `nameAlg || H_nameAlg(TPMT_PUBLIC)`,
//! computed here from the public area rather than taken from a TPM response,
//! so that a name compared with a pinned one says which key modseal holds.

use super::PcrBank;

/// Why a public area has no name modseal can compute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Too short to hold a type and a name algorithm.
    #[error("a TPMT_PUBLIC of {0} bytes has no name algorithm")]
    Short(usize),
    /// A name algorithm that is not SHA-1/256/384/512 (TPM_ALG_NULL included:
    /// such an object has no name to pin).
    #[error("name algorithm {0:#06x} is not sha1, sha256, sha384 or sha512")]
    Algorithm(u16),
}

/// The bank whose hash is `TPM_ALG_ID` `alg`.
fn bank_of_alg(alg: u16) -> Option<PcrBank> {
    PcrBank::ALL.into_iter().find(|b| b.alg_id() == alg)
}

/// The name of the object whose marshalled `TPMT_PUBLIC` is `public` (no
/// TPM2B size prefix): the name algorithm is the public area's own (bytes
/// 2–3), as the TPM computes it.
pub fn object_name(public: &[u8]) -> Result<Vec<u8>, NameError> {
    let alg = match public.get(2..4) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => return Err(NameError::Short(public.len())),
    };
    let bank = bank_of_alg(alg).ok_or(NameError::Algorithm(alg))?;
    let mut name = alg.to_be_bytes().to_vec();
    name.extend_from_slice(&bank.hash(public));
    Ok(name)
}

/// Whether `name` has the shape of an object's name: a known name algorithm
/// followed by a digest of that algorithm's size.
pub fn is_object_name(name: &[u8]) -> bool {
    match name {
        [hi, lo, digest @ ..] => bank_of_alg(u16::from_be_bytes([*hi, *lo]))
            .is_some_and(|b| b.digest_len() == digest.len()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard RSA-2048 SRK (`tpm2_createprimary -C o -G
    /// rsa2048:null:aes128cfb -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda'`)
    /// of one swtpm, as `tpm2_readpublic -f tss` wrote it (without the TPM2B
    /// size), and the name `tpm2_readpublic -n` printed for it.
    const SWTPM_SRK_PUBLIC: &str = concat!(
        "0001000b00030472000000060080004300100800000000000100a8f31f3609afba66b7e97673ac13a9134865a4ded887",
        "87a8199b1ba0f092bfc6a76d228ab81efe1960360e5e189b0e82b38e4e69c9266ef1d6b8884679fc26980c0c0927d2e4",
        "06d50129a3f618197211a43bdec8dac81829fd512ebee700429f26bdd67b40c90954de91783c8ed9c804517f6abe5c3c",
        "4c594721e9d3f2db3a3ce8266e2d30dcf18ce9d452431bcd9035728606ce10bda1f3310dfce9e5937c5ad69c9e1398b1",
        "f5a8a9337216e80df9c34bbdea4a16699e4fca7de6670495c8e32a84113d911cf9cabcf943618fb36d22b2ce09859d72",
        "327a5ff61c7b2d9d492baae7267d512a1c2755aa59f87cacc98bc7905296dc52c81b65439a7d788c5115",
    );
    const SWTPM_SRK_NAME: &str =
        "000b255cd96773c1e61f84d1f1f75a19757f1fbda65c48897b32a387af639749f13d";

    #[test]
    fn name_matches_tpm2_readpublic() {
        let public = crate::util::hex::parse(SWTPM_SRK_PUBLIC).unwrap();
        let name = object_name(&public).unwrap();
        assert_eq!(crate::util::hex::lower(&name), SWTPM_SRK_NAME);
        assert!(is_object_name(&name));
        // Any change to the public area (here one bit of the modulus) is
        // another name.
        let mut other = public.clone();
        let n = other.len();
        other[n - 1] ^= 1;
        assert_ne!(object_name(&other).unwrap(), name);
    }

    #[test]
    fn name_algorithm_is_the_public_areas_own() {
        let mut public = crate::util::hex::parse(SWTPM_SRK_PUBLIC).unwrap();
        public[2..4].copy_from_slice(&0x000Cu16.to_be_bytes());
        let name = object_name(&public).unwrap();
        assert_eq!(name.len(), 2 + 48);
        assert_eq!(name[..2], [0x00, 0x0C]);
        assert!(is_object_name(&name));
        public[2..4].copy_from_slice(&0x0010u16.to_be_bytes());
        assert_eq!(object_name(&public), Err(NameError::Algorithm(0x0010)));
        assert_eq!(object_name(&[0, 1, 0]), Err(NameError::Short(3)));
        assert_eq!(
            NameError::Algorithm(0x10).to_string(),
            "name algorithm 0x0010 is not sha1, sha256, sha384 or sha512"
        );
    }

    #[test]
    fn name_shapes() {
        assert!(is_object_name(
            &[[0x00, 0x04].as_slice(), &[0; 20]].concat()
        ));
        assert!(!is_object_name(
            &[[0x00, 0x0b].as_slice(), &[0; 20]].concat()
        ));
        assert!(!is_object_name(&[0x00, 0x0b]));
        assert!(!is_object_name(&[]));
        assert!(!is_object_name(
            &[[0x00, 0x10].as_slice(), &[0; 32]].concat()
        ));
    }
}
