//! The checks for one module, in the order the kernel meets them: trailer,
//! PKCS#7, denylist, algorithms, signed attributes, signer and chain,
//! signature. Each step returns an [`Error`]; the report takes its verdict
//! from it.

use sha2::Digest as _;

use crate::trust::cert::{common_name, strip_sign_byte, Certificate};
use crate::trust::chain::{build_path, denied_signer_id, find_signer};
use crate::trust::{Denylist, TrustStore};
use crate::util::hex;
use crate::verify::algorithm::{
    hash_from_oid, oid_string, sha256, sig_alg_from_oid, HashAlgo, HashLookup, KeyFamily,
    SigAlgLookup,
};
use crate::verify::build_id;
use crate::verify::error::Error;
use crate::verify::mldsa::{Authattrs, Level};
use crate::verify::modsig::{self, Signed, Trailer};
use crate::verify::pkcs7::{self, SignedData, SignerId, SignerInfo};
use crate::verify::pubkey::PublicKey;
use crate::verify::verdict::{Options, Report, Verdict};

/// Decompressed modules larger than this are refused as bombs: the largest
/// Debian module is ~20 MiB.
pub const MAX_MODULE_SIZE: usize = 256 * 1024 * 1024;

/// Checks an uncompressed module. `file_sha` is the stored file's digest when
/// that differs from the module's (compressed files).
pub fn verify_module(
    module: &[u8],
    file_sha: Option<[u8; 32]>,
    path: &str,
    trust: &TrustStore,
    opts: &Options,
) -> Report {
    let mut report = Report::new(path, Verdict::Malformed, "");
    match check(module, file_sha, trust, opts, &mut report) {
        Ok(reason) => {
            report.verdict = Verdict::Ok;
            report.reason = reason;
        }
        Err(e) => report.fail(&e),
    }
    report
}

/// The steps of [`verify_module`]; each fills in what it learns in `report`,
/// so a failed module's report says as much as is known. Returns the reason
/// of an `ok` verdict.
fn check(
    module: &[u8],
    file_sha: Option<[u8; 32]>,
    trust: &TrustStore,
    opts: &Options,
    report: &mut Report,
) -> Result<String, Error> {
    let (signed, msg) = parse_signature(module).inspect_err(|_| {
        report.sha256 = Some(hex::lower(&file_sha.unwrap_or_else(|| sha256(module))));
    })?;
    // The payload is what the kernel loads: its note is what sysfs shows.
    report.build_id_note = build_id::note(signed.payload).map(<[u8]>::to_vec);
    let info = &msg.signer;
    report.key_id = Some(key_id_text(&info.id));
    if let SignerId::IssuerSerial { issuer, .. } = info.id {
        report.signer = common_name(issuer);
    }

    let hash_lookup = hash_from_oid(info.digest_oid);
    // Pure ML-DSA (no signed attributes) signs the payload itself, so the
    // kernel digests nothing (pkcs7_digest(): algo_takes_data).
    let pure_mldsa = info.signed_attrs.is_none() && Level::from_oid(info.signature_oid).is_some();
    let digests = Digests::of(module, signed.payload.len(), &hash_lookup, !pure_mldsa);
    let stored_sha = file_sha.unwrap_or(digests.module_sha256);
    report.sha256 = Some(hex::lower(&stored_sha));
    check_module_denied(&trust.deny, stored_sha, file_sha.is_some(), &digests)?;

    let hash = supported_hash(hash_lookup)?;
    report.hash_algo = Some(hash.name().into());
    let family = signature_family(info.signature_oid, hash)?;

    let message_certs = message_certificates(&msg.certificates)?;
    refuse_signed_attributes(info, family, hash, opts.mldsa_authattrs)?;
    let Some(found) = find_signer(&info.id, trust, &message_certs) else {
        return Err(Error::UnknownSigner {
            by: info.id.kind(),
            key_id: report.key_id.clone().unwrap_or_default(),
        });
    };
    let signer = found.0;
    report.signer = Some(signer.name.clone());
    let key = signer_key(signer, family)?;
    let path = build_path(found, trust, &message_certs, opts.now);
    check_signer_denied(&trust.deny, &path, signer, &info.id)?;

    let payload = Payload {
        bytes: signed.payload,
        digest: digests.payload,
    };
    check_signature(key, signer, hash, info, payload)?;
    path.map_err(Error::Trust)?;
    Ok(format!(
        "signed by '{}' ({}, {hash})",
        signer.name,
        key.describe()
    ))
}

/// Step 1: the trailer, then the PKCS#7 message it delimits.
fn parse_signature(module: &[u8]) -> Result<(Signed<'_>, SignedData<'_>), Error> {
    let signed = match modsig::split(module).map_err(Error::Trailer)? {
        Trailer::Signed(s) => s,
        Trailer::Unsigned if module.is_empty() => return Err(Error::Empty),
        Trailer::Unsigned => return Err(Error::Unsigned),
    };
    let msg = pkcs7::parse(signed.pkcs7).map_err(|source| Error::Pkcs7 {
        source,
        pkcs7_offset: signed.pkcs7_offset,
    })?;
    Ok((signed, msg))
}

/// The key identifier as `modinfo` prints `sig_key`.
fn key_id_text(id: &SignerId<'_>) -> String {
    match id {
        SignerId::IssuerSerial { serial, .. } => hex::colon(strip_sign_byte(serial)),
        SignerId::KeyId(k) => hex::colon(k),
    }
}

/// Step 2: the denylist's module digests. The file's hash changes with
/// recompression or bytes outside what is signed; the signed content's hash
/// does not. Any of them on the list denies.
fn check_module_denied(
    deny: &Denylist,
    stored: [u8; 32],
    compressed: bool,
    digests: &Digests,
) -> Result<(), Error> {
    let denied = |sha: &[u8; 32]| deny.module_sha256.contains(sha);
    if denied(&stored) {
        return Err(Error::DeniedFile { sha256: stored });
    }
    if compressed && denied(&digests.module_sha256) {
        return Err(Error::DeniedDecompressed {
            sha256: digests.module_sha256,
        });
    }
    if denied(&digests.payload_sha256) {
        return Err(Error::DeniedPayload {
            sha256: digests.payload_sha256,
        });
    }
    Ok(())
}

/// Step 3a: the digest algorithm.
pub fn supported_hash(lookup: HashLookup) -> Result<HashAlgo, Error> {
    match lookup {
        HashLookup::Supported(h) => Ok(h),
        HashLookup::Refused(name) => Err(Error::RefusedHash { name }),
        HashLookup::Unknown(oid) => Err(Error::UnknownHash { oid }),
    }
}

/// Step 3b: the signature algorithm, which must agree with the digest
/// algorithm when it names a hash.
pub fn signature_family(oid: &[u8], hash: HashAlgo) -> Result<KeyFamily, Error> {
    match sig_alg_from_oid(oid) {
        // The kernel's pkcs7_sig_note_pkey_algo() takes only rsaEncryption
        // for RSA in a SignerInfo and refuses the combined OIDs (-ENOPKG).
        SigAlgLookup::Supported(KeyFamily::Rsa, Some(_)) => Err(Error::RsaSignatureOid {
            oid: oid_string(oid),
        }),
        SigAlgLookup::Supported(_, Some(named)) if named != hash => Err(Error::HashMismatch {
            digest: hash,
            signature: named,
        }),
        SigAlgLookup::Supported(family, _) => Ok(family),
        SigAlgLookup::Refused(name) => Err(Error::RefusedSignatureAlgorithm { name }),
        SigAlgLookup::Unknown(oid) => Err(Error::UnknownSignatureAlgorithm { oid }),
    }
}

/// Step 4a: the certificates the message carries, all of which must parse.
pub fn message_certificates(ders: &[&[u8]]) -> Result<Vec<Certificate>, Error> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der).map_err(|source| Error::MessageCertificate {
                number: i + 1,
                source,
            })
        })
        .collect()
}

/// Step 4b: signed attributes. The kernel's `pkcs7_verify()` refuses a
/// module signature that has them (-EKEYREJECTED, "has authattrs") once the
/// message has parsed (algorithms and certificates included) and before it
/// digests anything or looks for the signer, so neither an unknown signer
/// nor a wrong messageDigest is what such a module is refused for.
///
/// Linux 7.x waives the refusal for ML-DSA when built with
/// `CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA` (`pkcs7_check_authattrs()`
/// marks the message waivable when its signer is ML-DSA); the bundle's
/// `mldsa-authattrs` stands for that option. Waived, the digest algorithm
/// must then be SHA-512: `software_key_determine_akcipher()` takes ML-DSA
/// with hash "none" (no attributes) or "sha512" only.
fn refuse_signed_attributes(
    info: &SignerInfo<'_>,
    family: KeyFamily,
    hash: HashAlgo,
    waiver: Authattrs,
) -> Result<(), Error> {
    match (&info.signed_attrs, family, waiver) {
        (None, _, _) => Ok(()),
        (Some(_), KeyFamily::Rsa | KeyFamily::Ecdsa, _) => Err(Error::SignedAttributes { family }),
        (Some(_), KeyFamily::MlDsa(level), Authattrs::Reject) => {
            Err(Error::MldsaSignedAttributes { level })
        }
        (Some(_), KeyFamily::MlDsa(level), Authattrs::Waive) if hash != HashAlgo::Sha512 => {
            Err(Error::MldsaAttributeDigest {
                level,
                digest: hash,
            })
        }
        (Some(_), KeyFamily::MlDsa(_), Authattrs::Waive) => Ok(()),
    }
}

/// Step 4c: the signer's key, of the family the signature algorithm names.
pub fn signer_key(signer: &Certificate, family: KeyFamily) -> Result<&PublicKey, Error> {
    let key = signer
        .key
        .as_ref()
        .map_err(|e| Error::SignerKey(e.clone()))?;
    if let (KeyFamily::MlDsa(key_level), KeyFamily::MlDsa(sig_level)) = (key.family(), family) {
        if key_level != sig_level {
            return Err(Error::MldsaLevelMismatch {
                key: key_level,
                signature: sig_level,
            });
        }
    }
    if key.family() != family {
        return Err(Error::KeyMismatch {
            key: key.describe(),
            signature: family,
        });
    }
    Ok(key)
}

/// Step 5: the denylist's certificates (on the path, or the signer alone
/// when there is none) and the key identifier the signature names, in
/// either form (the report's `key_id`).
fn check_signer_denied(
    deny: &Denylist,
    path: &Result<Vec<&Certificate>, crate::trust::Error>,
    signer: &Certificate,
    id: &SignerId<'_>,
) -> Result<(), Error> {
    match path {
        Ok(p) => p.iter().try_for_each(|c| deny.check_cert(c)),
        Err(_) => deny.check_cert(signer),
    }
    .map_err(Error::Trust)?;
    match denied_signer_id(deny, id) {
        Some(key_id) => Err(Error::DeniedKeyId {
            key_id: key_id.to_vec(),
            by: id.kind(),
        }),
        None => Ok(()),
    }
}

/// The signed module content and, unless pure ML-DSA skipped it, its digest
/// with the signature's hash.
struct Payload<'a> {
    bytes: &'a [u8],
    digest: Option<Vec<u8>>,
}

/// Step 6: the signature, over the payload digest or over the signed
/// attributes that carry it (step 4b lets them through only for waived
/// ML-DSA). ML-DSA signs the message itself: the payload, or the attributes
/// re-tagged as a SET OF (`pkcs7_digest()` copies them for algorithms that
/// take data).
fn check_signature(
    key: &PublicKey,
    signer: &Certificate,
    hash: HashAlgo,
    info: &SignerInfo<'_>,
    payload: Payload<'_>,
) -> Result<(), Error> {
    let mldsa = matches!(key, PublicKey::MlDsa(_));
    let result = match &info.signed_attrs {
        None if mldsa => key.verify_message(&[payload.bytes], info.signature),
        None => {
            let digest = payload.digest.unwrap_or_else(|| hash.digest(payload.bytes));
            key.verify(hash, &digest, info.signature)
        }
        Some(attrs) => {
            let digest = payload.digest.unwrap_or_else(|| hash.digest(payload.bytes));
            if attrs.message_digest != digest.as_slice() {
                return Err(Error::MessageDigestMismatch);
            }
            if mldsa {
                let mut signed = Vec::with_capacity(attrs.raw.len());
                attrs.signed_bytes(|b| signed.extend_from_slice(b));
                key.verify_message(&[&signed], info.signature)
            } else {
                let mut h = hash.hasher();
                attrs.signed_bytes(|b| h.update(b));
                key.verify(hash, &h.finish(), info.signature)
            }
        }
    };
    result.map_err(|source| Error::Signature {
        source,
        signer: signer.name.clone(),
        key: key.describe(),
    })
}

/// Digests from one pass over the module: the payload with the signature's
/// hash (when it is supported), the payload's SHA-256 and the whole
/// module's SHA-256.
struct Digests {
    payload: Option<Vec<u8>>,
    payload_sha256: [u8; 32],
    module_sha256: [u8; 32],
}

impl Digests {
    /// When the signature hash is SHA-256, the payload digest is the
    /// module digest's intermediate state, so the payload is read once.
    /// `want_payload` false skips the signature hash's own pass (pure ML-DSA
    /// needs no digest).
    fn of(module: &[u8], payload_len: usize, hash: &HashLookup, want_payload: bool) -> Self {
        let (payload, tail) = module.split_at(payload_len.min(module.len()));
        let mut sha = sha2::Sha256::new();
        sha.update(payload);
        let payload_sha256: [u8; 32] = sha.clone().finalize().into();
        let payload_digest = match hash {
            HashLookup::Supported(HashAlgo::Sha256) => Some(payload_sha256.to_vec()),
            HashLookup::Supported(other) if want_payload => Some(other.digest(payload)),
            _ => None,
        };
        sha.update(tail);
        Digests {
            payload: payload_digest,
            payload_sha256,
            module_sha256: sha.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::algorithm::{
        OID_CONTENT_TYPE, OID_MESSAGE_DIGEST, OID_PKCS7_DATA, OID_PKCS7_SIGNED_DATA,
        OID_RSA_ENCRYPTION,
    };

    fn verify(module: &[u8]) -> Report {
        verify_module(
            module,
            None,
            "m.ko",
            &TrustStore::default(),
            &Options::default(),
        )
    }

    #[test]
    fn unsigned_and_empty_modules() {
        let r = verify(b"");
        assert_eq!(
            (r.verdict, r.reason.as_str()),
            (Verdict::Unsigned, "empty file")
        );
        assert_eq!(r.sha256.as_deref(), Some(hex::lower(&sha256(b"")).as_str()));
        let r = verify(b"\x7fELF plain");
        assert_eq!(r.verdict, Verdict::Unsigned);
        assert!(r.reason.starts_with("no signature"), "{}", r.reason);
    }

    #[test]
    fn broken_trailer_and_pkcs7_are_malformed() {
        let r = verify(modsig::MAGIC);
        assert_eq!(r.verdict, Verdict::Malformed);
        assert!(r.reason.starts_with("signature trailer: "), "{}", r.reason);
        let mut m = b"PAYLOAD".to_vec();
        m.extend_from_slice(b"SIG");
        m.extend_from_slice(&modsig::trailer_for(3));
        let r = verify(&m);
        assert_eq!(r.verdict, Verdict::Malformed);
        assert!(
            r.reason.ends_with("(signature starts at file offset 7)"),
            "{}",
            r.reason
        );
        assert!(r.key_id.is_none() && r.sha256.is_some());
    }

    const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const OID_UNKNOWN_HASH: &[u8] = &[0x2a, 0x03, 0x04];
    const SIGNED_ATTRS_REASON: &str = "signed attributes (authenticatedAttributes) present: \
        the kernel refuses them for module signatures (pkcs7_verify: has authattrs)";

    fn tlv(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        let content = parts.concat();
        let len = u16::try_from(content.len()).expect("short DER");
        let mut v = vec![tag];
        match len {
            0..=0x7f => v.push(len as u8),
            0x80..=0xff => v.extend([0x81, len as u8]),
            _ => v.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        v.extend(content);
        v
    }

    fn alg(oid: &[u8]) -> Vec<u8> {
        tlv(0x30, &[&tlv(0x06, &[oid])])
    }

    /// A module signed (with a dummy signature value) by the signer named by
    /// issuer "CN=Test signer" and serial 0x00 0x9f 0x01, as sign-file does,
    /// with signed attributes carrying `message_digest` when it is given.
    fn module_with(digest_oid: &[u8], sig_oid: &[u8], message_digest: Option<&[u8]>) -> Vec<u8> {
        let payload = b"\x7fELF module payload";
        let cn = tlv(
            0x30,
            &[
                &tlv(0x06, &[&[0x55, 0x04, 0x03]]),
                &tlv(0x0c, &[b"Test signer"]),
            ],
        );
        let issuer = tlv(0x30, &[&tlv(0x31, &[&cn])]);
        let sid = tlv(0x30, &[&issuer, &tlv(0x02, &[&[0x00, 0x9f, 0x01]])]);
        let attrs = message_digest.map(|md| {
            let ct = tlv(
                0x30,
                &[
                    &tlv(0x06, &[OID_CONTENT_TYPE]),
                    &tlv(0x31, &[&tlv(0x06, &[OID_PKCS7_DATA])]),
                ],
            );
            let md = tlv(
                0x30,
                &[
                    &tlv(0x06, &[OID_MESSAGE_DIGEST]),
                    &tlv(0x31, &[&tlv(0x04, &[md])]),
                ],
            );
            tlv(0xa0, &[&ct, &md])
        });
        let version = tlv(0x02, &[&[1]]);
        let signer_info = tlv(
            0x30,
            &[
                &version,
                &sid,
                &alg(digest_oid),
                attrs.as_deref().unwrap_or_default(),
                &alg(sig_oid),
                &tlv(0x04, &[&[0x5a; 64]]),
            ],
        );
        let signed_data = tlv(
            0x30,
            &[
                &version,
                &tlv(0x31, &[&alg(digest_oid)]),
                &tlv(0x30, &[&tlv(0x06, &[OID_PKCS7_DATA])]),
                &tlv(0x31, &[&signer_info]),
            ],
        );
        let p7 = tlv(
            0x30,
            &[
                &tlv(0x06, &[OID_PKCS7_SIGNED_DATA]),
                &tlv(0xa0, &[&signed_data]),
            ],
        );
        let sig_len = u32::try_from(p7.len()).expect("short");
        [&payload[..], &p7, &modsig::trailer_for(sig_len)].concat()
    }

    #[test]
    fn signed_attributes_are_refused_before_the_signer_is_looked_up() {
        let digest = sha256(b"\x7fELF module payload");
        // Without signed attributes the next step speaks: no such signer.
        let r = verify(&module_with(OID_SHA256, OID_RSA_ENCRYPTION, None));
        assert_eq!(r.verdict, Verdict::UnknownKey, "{}", r.reason);
        for sig_oid in [OID_RSA_ENCRYPTION, OID_ECDSA_SHA256] {
            let r = verify(&module_with(OID_SHA256, sig_oid, Some(&digest)));
            assert_eq!(
                (r.verdict, r.reason.as_str()),
                (Verdict::BadSignature, SIGNED_ATTRS_REASON)
            );
            // What the signature names is reported all the same.
            assert_eq!(r.key_id.as_deref(), Some("9F:01"));
            assert_eq!(r.signer.as_deref(), Some("Test signer"));
            assert_eq!(r.hash_algo.as_deref(), Some("sha256"));
        }
    }

    #[test]
    fn signed_attributes_are_refused_before_the_message_digest_is_compared() {
        let r = verify(&module_with(OID_SHA256, OID_RSA_ENCRYPTION, Some(&[0; 32])));
        assert_eq!(
            (r.verdict, r.reason.as_str()),
            (Verdict::BadSignature, SIGNED_ATTRS_REASON)
        );
    }

    #[test]
    fn the_message_is_parsed_whole_before_signed_attributes_are_refused() {
        // The kernel's parser refuses an unknown digest algorithm (-ENOPKG)
        // before pkcs7_verify() looks at the attributes.
        let r = verify(&module_with(
            OID_UNKNOWN_HASH,
            OID_RSA_ENCRYPTION,
            Some(&[0; 32]),
        ));
        assert_eq!(r.verdict, Verdict::UnsupportedAlgorithm, "{}", r.reason);
    }

    #[test]
    fn a_denied_module_with_signed_attributes_is_denied() {
        let sha = sha256(b"\x7fELF module payload");
        let m = module_with(OID_SHA256, OID_RSA_ENCRYPTION, Some(&sha));
        let trust = TrustStore {
            deny: Denylist {
                module_sha256: vec![sha256(&m)],
                ..Denylist::default()
            },
            ..TrustStore::default()
        };
        let r = verify_module(&m, None, "m.ko", &trust, &Options::default());
        assert_eq!(r.verdict, Verdict::Denied, "{}", r.reason);
    }

    const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    const OID_ML_DSA_65: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12];

    fn verify_waived(module: &[u8], waiver: Authattrs) -> Report {
        let opts = Options {
            mldsa_authattrs: waiver,
            ..Options::default()
        };
        verify_module(module, None, "m.ko", &TrustStore::default(), &opts)
    }

    #[test]
    fn mldsa_signed_attributes_follow_the_waiver() {
        let digest = HashAlgo::Sha512.digest(b"\x7fELF module payload");
        let m = module_with(OID_SHA512, OID_ML_DSA_65, Some(&digest));
        // Refused before the signer is looked up, as for RSA and ECDSA.
        let r = verify_waived(&m, Authattrs::Reject);
        assert_eq!(r.verdict, Verdict::BadSignature, "{}", r.reason);
        assert!(
            r.reason
                .starts_with("signed attributes (authenticatedAttributes) present with ml-dsa-65"),
            "{}",
            r.reason
        );
        // Waived, the next step speaks: no such signer.
        let r = verify_waived(&m, Authattrs::Waive);
        assert_eq!(r.verdict, Verdict::UnknownKey, "{}", r.reason);
        // Waived, only SHA-512 is taken with the attributes.
        let m = module_with(OID_SHA256, OID_ML_DSA_65, Some(&[0; 32]));
        let r = verify_waived(&m, Authattrs::Waive);
        assert_eq!(r.verdict, Verdict::UnsupportedAlgorithm, "{}", r.reason);
    }

    #[test]
    fn pure_mldsa_needs_no_waiver() {
        let m = module_with(OID_SHA256, OID_ML_DSA_65, None);
        let r = verify_waived(&m, Authattrs::Reject);
        assert_eq!(r.verdict, Verdict::UnknownKey, "{}", r.reason);
        assert_eq!(r.hash_algo.as_deref(), Some("sha256"));
    }

    #[test]
    fn the_file_digest_is_the_module_digest_in_one_pass() {
        let module = b"payload and tail";
        let d = Digests::of(module, 7, &HashLookup::Supported(HashAlgo::Sha256), true);
        assert_eq!(d.module_sha256, sha256(module));
        assert_eq!(d.payload_sha256, sha256(b"payload"));
        assert_eq!(d.payload, Some(sha256(b"payload").to_vec()));
        let d = Digests::of(module, 7, &HashLookup::Refused("sha1"), true);
        assert_eq!(d.payload, None);
    }
}
