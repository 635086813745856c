//! Finding the signer's certificate and a path from it to a trust anchor.
//!
//! Chain building spends a budget of signature checks, so a hostile set of
//! intermediates cannot make it slow.

use crate::trust::cert::{strip_sign_byte, Certificate};
use crate::trust::error::Error;
use crate::trust::{Denylist, TrustStore};
use crate::verify::pkcs7::SignerId;

const MAX_DEPTH: usize = 8;
const MAX_SIGNATURE_CHECKS: usize = 32;

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A trust anchor (`--trust`, the bundle).
    Anchor,
    /// An untrusted certificate given to modseal (`--cert`).
    Extra,
    /// A certificate the signature carries.
    Message,
}

/// Whether `cert` is the one the signer identifier names.
pub fn matches_signer(cert: &Certificate, id: &SignerId<'_>) -> bool {
    match id {
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer == *issuer && cert.serial == *serial
        }
        SignerId::KeyId(kid) => cert.skid.as_deref() == Some(*kid),
    }
}

/// The `deny-key-id` entry that denies the signer as the signature names
/// it: its subject key identifier, or the serial of its issuer and serial,
/// which is what `modinfo` prints as `sig_key` and `verify` as `key_id`.
/// A serial's leading sign byte is ignored on both sides, as for
/// `deny-serial`, so the entry may be copied from either tool.
pub fn denied_signer_id<'d>(deny: &'d Denylist, id: &SignerId<'_>) -> Option<&'d [u8]> {
    let named = |d: &&Vec<u8>| match id {
        SignerId::KeyId(k) => d.as_slice() == *k,
        SignerId::IssuerSerial { serial, .. } => strip_sign_byte(d) == strip_sign_byte(serial),
    };
    deny.key_ids.iter().find(named).map(Vec::as_slice)
}

/// All candidate certificates in lookup order: anchors first.
fn candidates<'a>(
    trust: &'a TrustStore,
    message: &'a [Certificate],
) -> impl Iterator<Item = (&'a Certificate, Source)> {
    trust
        .anchors
        .iter()
        .map(|c| (c, Source::Anchor))
        .chain(trust.intermediates.iter().map(|c| (c, Source::Extra)))
        .chain(message.iter().map(|c| (c, Source::Message)))
}

/// The signer certificate: an anchor if one matches, else any other.
pub fn find_signer<'a>(
    id: &SignerId<'_>,
    trust: &'a TrustStore,
    message: &'a [Certificate],
) -> Option<(&'a Certificate, Source)> {
    candidates(trust, message).find(|(c, _)| matches_signer(c, id))
}

/// Checks what the signer's certificate allows: keyUsage digitalSignature and
/// extendedKeyUsage codeSigning (1.3.6.1.5.5.7.3.3, through x509-parser's
/// decoded flags), where those extensions are present.
pub fn check_signer_usage(cert: &Certificate) -> Result<(), Error> {
    let name = || cert.name.clone();
    if let Some((digital_signature, _)) = cert.key_usage {
        if !digital_signature {
            return Err(Error::SignerKeyUsage { name: name() });
        }
    }
    if cert.eku_code_signing == Some(false) {
        return Err(Error::SignerExtendedKeyUsage { name: name() });
    }
    Ok(())
}

fn check_issuer_usage(cert: &Certificate) -> Result<(), Error> {
    let name = || cert.name.clone();
    if cert.is_ca != Some(true) {
        return Err(Error::NotCa { name: name() });
    }
    if let Some((_, key_cert_sign)) = cert.key_usage {
        if !key_cert_sign {
            return Err(Error::IssuerKeyUsage { name: name() });
        }
    }
    Ok(())
}

fn check_time(cert: &Certificate, now: Option<i64>) -> Result<(), Error> {
    let name = || cert.name.clone();
    match now {
        Some(now) if now < cert.not_before => Err(Error::NotYetValid {
            name: name(),
            not_before: cert.not_before,
            now,
        }),
        Some(now) if now > cert.not_after => Err(Error::Expired {
            name: name(),
            not_after: cert.not_after,
            now,
        }),
        _ => Ok(()),
    }
}

/// Builds a path `[signer, …, anchor]`. `now` turns on validity-date checks.
pub fn build_path<'a>(
    signer: (&'a Certificate, Source),
    trust: &'a TrustStore,
    message: &'a [Certificate],
    now: Option<i64>,
) -> Result<Vec<&'a Certificate>, Error> {
    let (leaf, source) = signer;
    check_signer_usage(leaf)?;
    check_time(leaf, now)?;
    let mut path = vec![leaf];
    if source == Source::Anchor {
        return Ok(path);
    }
    let mut budget = MAX_SIGNATURE_CHECKS;
    let mut last_problem = Error::NoIssuer {
        name: leaf.name.clone(),
    };
    let mut current = leaf;
    'walk: while path.len() <= MAX_DEPTH {
        for (issuer, src) in candidates(trust, message) {
            if issuer.subject != current.issuer || path.iter().any(|p| std::ptr::eq(*p, issuer)) {
                continue;
            }
            if let (Some(akid), Some(skid)) = (&current.akid, &issuer.skid) {
                if akid != skid {
                    continue;
                }
            }
            if budget == 0 {
                return Err(Error::TooManyCandidates {
                    checks: MAX_SIGNATURE_CHECKS,
                });
            }
            budget -= 1;
            if let Err(e) = current.verify_signed_by(issuer) {
                last_problem = Error::NotSignedBy {
                    subject: current.name.clone(),
                    issuer: issuer.name.clone(),
                    source: Box::new(e),
                };
                continue;
            }
            if let Err(e) = check_issuer_usage(issuer).and_then(|()| check_time(issuer, now)) {
                last_problem = e;
                continue;
            }
            path.push(issuer);
            if src == Source::Anchor {
                return Ok(path);
            }
            current = issuer;
            continue 'walk;
        }
        return Err(last_problem);
    }
    Err(Error::ChainTooLong { max: MAX_DEPTH })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_key_ids(ids: &[&[u8]]) -> Denylist {
        Denylist {
            key_ids: ids.iter().map(|k| k.to_vec()).collect(),
            ..Denylist::default()
        }
    }

    const ISSUER: &[u8] = &[0x30, 0x00];

    #[test]
    fn a_key_id_denies_the_signer_named_by_it() {
        let deny = deny_key_ids(&[&[0xaa], &[0x4d, 0x3a]]);
        let id = SignerId::KeyId(&[0x4d, 0x3a]);
        assert_eq!(denied_signer_id(&deny, &id), Some(&[0x4d, 0x3a][..]));
        assert_eq!(denied_signer_id(&deny, &SignerId::KeyId(&[0x4d])), None);
        // A key identifier's leading zero byte is part of it.
        assert_eq!(denied_signer_id(&deny, &SignerId::KeyId(&[0, 0xaa])), None);
    }

    #[test]
    fn a_key_id_denies_the_serial_of_an_issuer_and_serial() {
        // The serial 0x00 0x9f 0x01 is printed as key_id 9f:01.
        let id = SignerId::IssuerSerial {
            issuer: ISSUER,
            serial: &[0x00, 0x9f, 0x01],
        };
        let printed = deny_key_ids(&[&[0x9f, 0x01]]);
        assert_eq!(denied_signer_id(&printed, &id), Some(&[0x9f, 0x01][..]));
        let with_sign_byte = deny_key_ids(&[&[0x00, 0x9f, 0x01]]);
        assert!(denied_signer_id(&with_sign_byte, &id).is_some());
        let other = deny_key_ids(&[&[0x9f], &[0x9f, 0x01, 0x00]]);
        assert_eq!(denied_signer_id(&other, &id), None);
        assert_eq!(denied_signer_id(&Denylist::default(), &id), None);
    }

    #[test]
    fn a_serial_without_sign_byte_is_denied_as_printed() {
        let id = SignerId::IssuerSerial {
            issuer: ISSUER,
            serial: &[0x1f, 0x2e],
        };
        assert!(denied_signer_id(&deny_key_ids(&[&[0x1f, 0x2e]]), &id).is_some());
        assert!(denied_signer_id(&deny_key_ids(&[&[0x00, 0x1f, 0x2e]]), &id).is_some());
    }
}
