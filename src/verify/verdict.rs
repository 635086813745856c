//! The verdict for one module: trailer, PKCS#7, algorithms, signer, denylist,
//! signature and chain, in the order the kernel would meet them.

use serde::{Deserialize, Serialize};

use crate::trust::cert::Certificate;
use crate::trust::chain::{build_path, find_signer};
use crate::trust::TrustStore;
use crate::verify::algorithm::{
    hash_from_oid, sha256, sig_alg_from_oid, HashAlgo, HashLookup, SigAlgLookup,
};
use crate::verify::modsig::{self, Trailer};
use crate::verify::pkcs7::{self, SignerId};
use crate::verify::pubkey::{KeyError, SigError};

/// Decompressed modules larger than this are refused as bombs: the largest
/// Debian module is ~20 MiB.
pub const MAX_MODULE_SIZE: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Ok,
    Unsigned,
    UnknownKey,
    BadSignature,
    Malformed,
    UnsupportedAlgorithm,
    Denied,
    UntrustedChain,
    IoError,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Unsigned => "unsigned",
            Verdict::UnknownKey => "unknown-key",
            Verdict::BadSignature => "bad-signature",
            Verdict::Malformed => "malformed",
            Verdict::UnsupportedAlgorithm => "unsupported-algorithm",
            Verdict::Denied => "denied",
            Verdict::UntrustedChain => "untrusted-chain",
            Verdict::IoError => "io-error",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is known about one module after checking it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub path: String,
    pub verdict: Verdict,
    pub reason: String,
    /// The signer's name: the certificate's common name when the certificate
    /// is known, else what the signature names.
    pub signer: Option<String>,
    /// The key identifier the signature names, as `modinfo` prints `sig_key`.
    pub key_id: Option<String>,
    pub hash_algo: Option<String>,
    /// SHA-256 of the file as stored (compressed, if it is).
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Unix time to check certificate validity against; `None` ignores dates
    /// as the kernel does.
    pub now: Option<i64>,
}

impl Report {
    pub fn new(path: &str, verdict: Verdict, reason: impl Into<String>) -> Self {
        Report {
            path: path.to_owned(),
            verdict,
            reason: reason.into(),
            signer: None,
            key_id: None,
            hash_algo: None,
            sha256: None,
        }
    }
}

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
    let fail = |mut r: Report, v: Verdict, reason: String| {
        r.verdict = v;
        r.reason = reason;
        r
    };
    let signed = match modsig::split(module) {
        Ok(Trailer::Signed(s)) => s,
        Ok(Trailer::Unsigned) => {
            report.sha256 = Some(crate::util::hex::lower(
                &file_sha.unwrap_or_else(|| sha256(module)),
            ));
            let reason = if module.is_empty() {
                "empty file"
            } else {
                "no signature (module signature magic not found at end of file)"
            };
            return fail(report, Verdict::Unsigned, reason.into());
        }
        Err(e) => {
            report.sha256 = Some(crate::util::hex::lower(
                &file_sha.unwrap_or_else(|| sha256(module)),
            ));
            return fail(
                report,
                Verdict::Malformed,
                format!("signature trailer: {e}"),
            );
        }
    };
    let msg = match pkcs7::parse(signed.pkcs7) {
        Ok(m) => m,
        Err(e) => {
            report.sha256 = Some(crate::util::hex::lower(
                &file_sha.unwrap_or_else(|| sha256(module)),
            ));
            return fail(
                report,
                Verdict::Malformed,
                format!(
                    "{e} (signature starts at file offset {})",
                    signed.pkcs7_offset
                ),
            );
        }
    };
    let signer_info = &msg.signer;
    report.key_id = Some(match signer_info.id {
        SignerId::IssuerSerial { serial, .. } => {
            crate::util::hex::colon(crate::trust::cert::strip_sign_byte(serial))
        }
        SignerId::KeyId(k) => crate::util::hex::colon(k),
    });
    if let SignerId::IssuerSerial { issuer, .. } = signer_info.id {
        report.signer = crate::trust::cert::common_name(issuer);
    }

    let hash_lookup = hash_from_oid(signer_info.digest_oid);
    // One pass over the payload: when the signature hash is SHA-256, the
    // file digest continues from the payload digest's state.
    let d = digests(module, signed.payload.len(), &hash_lookup);
    let payload_digest = d.payload;
    let stored_sha = file_sha.unwrap_or(d.module_sha256);
    report.sha256 = Some(crate::util::hex::lower(&stored_sha));

    // The file's hash changes with recompression or bytes outside what is
    // signed; the signed content's hash does not. Either on the list denies.
    if trust.deny.module_sha256.contains(&stored_sha) {
        return fail(
            report,
            Verdict::Denied,
            "module file SHA-256 is on the denylist".into(),
        );
    }
    if file_sha.is_some() && trust.deny.module_sha256.contains(&d.module_sha256) {
        return fail(
            report,
            Verdict::Denied,
            "decompressed module SHA-256 is on the denylist".into(),
        );
    }
    if trust.deny.module_sha256.contains(&d.payload_sha256) {
        return fail(
            report,
            Verdict::Denied,
            "signed module content (payload) SHA-256 is on the denylist".into(),
        );
    }
    let hash = match hash_lookup {
        HashLookup::Supported(h) => h,
        HashLookup::Refused(name) => {
            return fail(
                report,
                Verdict::UnsupportedAlgorithm,
                format!("hash algorithm {name} is refused"),
            )
        }
        HashLookup::Unknown(oid) => {
            return fail(
                report,
                Verdict::UnsupportedAlgorithm,
                format!("unknown hash algorithm OID {oid}"),
            )
        }
    };
    report.hash_algo = Some(hash.name().into());
    let family = match sig_alg_from_oid(signer_info.signature_oid) {
        // The kernel's pkcs7_sig_note_pkey_algo() takes only rsaEncryption
        // for RSA in a SignerInfo and refuses the combined OIDs (-ENOPKG).
        SigAlgLookup::Supported(crate::verify::algorithm::KeyFamily::Rsa, Some(_)) => {
            return fail(
                report,
                Verdict::UnsupportedAlgorithm,
                format!(
                "SignerInfo signature algorithm {} (the kernel accepts only rsaEncryption for RSA)",
                crate::verify::algorithm::oid_string(signer_info.signature_oid)
            ),
            )
        }
        SigAlgLookup::Supported(family, h) => {
            if h.is_some_and(|h| h != hash) {
                return fail(
                    report,
                    Verdict::Malformed,
                    format!(
                        "signature algorithm names a different hash than digest algorithm {hash}"
                    ),
                );
            }
            family
        }
        SigAlgLookup::Refused(name) => {
            return fail(
                report,
                Verdict::UnsupportedAlgorithm,
                format!("signature algorithm {name} is refused"),
            )
        }
        SigAlgLookup::Unknown(oid) => {
            return fail(
                report,
                Verdict::UnsupportedAlgorithm,
                format!("unknown signature algorithm OID {oid}"),
            )
        }
    };

    let mut message_certs = Vec::with_capacity(msg.certificates.len());
    for (i, der) in msg.certificates.iter().enumerate() {
        match Certificate::from_der(der) {
            Ok(c) => message_certs.push(c),
            Err(e) => {
                return fail(
                    report,
                    Verdict::Malformed,
                    format!("PKCS#7 certificate {}: {e}", i + 1),
                )
            }
        }
    }
    let Some(signer) = find_signer(&signer_info.id, trust, &message_certs) else {
        let what = match signer_info.id {
            SignerId::IssuerSerial { .. } => "issuer and serial",
            SignerId::KeyId(_) => "subject key identifier",
        };
        let kid = report.key_id.clone().unwrap_or_default();
        return fail(
            report,
            Verdict::UnknownKey,
            format!("no trusted or supplied certificate matches the signer's {what} {kid}"),
        );
    };
    report.signer = Some(signer.0.name.clone());
    let key = match &signer.0.key {
        Ok(k) => k,
        Err(KeyError::Unsupported(e)) => {
            return fail(
                report,
                Verdict::UnsupportedAlgorithm,
                format!("signer key: {e}"),
            )
        }
        Err(KeyError::Malformed(e)) => {
            return fail(report, Verdict::Malformed, format!("signer key: {e}"))
        }
    };
    if key.family() != family {
        return fail(
            report,
            Verdict::BadSignature,
            format!(
                "signature algorithm does not fit the signer's {} key",
                key.describe()
            ),
        );
    }
    let path_result = build_path(signer, trust, &message_certs, opts.now);
    let denied = match &path_result {
        Ok(p) => p.iter().find_map(|c| trust.deny.denies_cert(c)),
        Err(_) => trust.deny.denies_cert(signer.0),
    };
    if let Some(why) = denied {
        return fail(report, Verdict::Denied, why);
    }
    if let SignerId::KeyId(k) = signer_info.id {
        if trust.deny.key_ids.iter().any(|d| d == k) {
            return fail(
                report,
                Verdict::Denied,
                "signature key id is on the denylist".into(),
            );
        }
    }

    let signed_digest = match &signer_info.signed_attrs {
        None => payload_digest,
        Some(attrs) => {
            if attrs.message_digest != payload_digest.as_slice() {
                return fail(
                    report,
                    Verdict::BadSignature,
                    "messageDigest attribute does not match the module's digest".into(),
                );
            }
            let mut h = hash.hasher();
            attrs.signed_bytes(|b| h.update(b));
            h.finish()
        }
    };
    if let Err(e) = key.verify(hash, &signed_digest, signer_info.signature) {
        let v = match e {
            SigError::Unsupported(_) => Verdict::UnsupportedAlgorithm,
            SigError::Invalid(_) => Verdict::BadSignature,
        };
        return fail(
            report,
            v,
            format!("{e} (signer '{}', {})", signer.0.name, key.describe()),
        );
    }
    if let Err(why) = path_result {
        return fail(report, Verdict::UntrustedChain, why);
    }
    report.verdict = Verdict::Ok;
    report.reason = format!("signed by '{}' ({}, {hash})", signer.0.name, key.describe());
    report
}

/// Digests from one pass over the module: the payload with the signature's
/// hash, the payload's SHA-256 and the whole module's SHA-256.
struct Digests {
    payload: Vec<u8>,
    payload_sha256: [u8; 32],
    module_sha256: [u8; 32],
}

fn digests(module: &[u8], payload_len: usize, hash: &HashLookup) -> Digests {
    let (payload, tail) = module.split_at(payload_len.min(module.len()));
    let mut sha = HashAlgo::Sha256.hasher();
    sha.update(payload);
    let payload_sha = sha.clone().finish();
    let payload_digest = match hash {
        HashLookup::Supported(HashAlgo::Sha256) => payload_sha.clone(),
        HashLookup::Supported(other) => other.digest(payload),
        _ => Vec::new(),
    };
    sha.update(tail);
    Digests {
        payload: payload_digest,
        payload_sha256: to32(payload_sha),
        module_sha256: to32(sha.finish()),
    }
}

fn to32(v: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}
