//! `modseal inspect`: what a module's signature says, like `modinfo`'s
//! signature fields, without deciding whether to trust it.

use serde::Serialize;

use crate::trust::cert::strip_sign_byte;
use crate::verify::algorithm::{
    hash_from_oid, oid_string, sig_alg_from_oid, HashLookup, KeyFamily, SigAlgLookup,
};
use crate::verify::modsig::{self, Trailer};
use crate::verify::pkcs7::{self, SignerId};

/// What a module's signature says, field by field (`modseal inspect`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Inspection {
    /// The file as the user named it.
    pub path: String,
    /// The compression of the stored file (`none`, `xz`, …).
    pub compression: String,
    /// Size of the stored file.
    pub file_size: usize,
    /// Size of the (decompressed) module.
    pub module_size: usize,
    /// Whether a signature trailer is present and sound.
    pub signed: bool,
    /// The signature format, as `modinfo`'s `sig_id` (`PKCS#7`).
    pub sig_id: Option<String>,
    /// The signer's name, as `modinfo`'s `signer`.
    pub signer: Option<String>,
    /// The serial or key identifier, as `modinfo`'s `sig_key`.
    pub sig_key: Option<String>,
    /// Which of the two `sig_key` is.
    pub key_id_type: Option<String>,
    /// The digest algorithm, as `modinfo`'s `sig_hashalgo`.
    pub sig_hashalgo: Option<String>,
    /// The signature algorithm.
    pub sig_algo: Option<String>,
    /// Whether the signature covers signed attributes.
    pub signed_attributes: Option<bool>,
    /// How many certificates the message carries.
    pub certificates: Option<usize>,
    /// Size of the signature value.
    pub signature_size: Option<usize>,
    /// Size of the PKCS#7 blob (`sig_len`).
    pub pkcs7_size: Option<usize>,
    /// Size of the signed content.
    pub payload_size: Option<usize>,
    /// `ALGO:HEX` digest of the signed content with the signature's hash.
    pub payload_digest: Option<String>,
    /// SHA-256 of the signed content, what `deny-module-sha256` can name.
    pub payload_sha256: Option<String>,
    /// Bytes after the PKCS#7 message inside `sig_len` (the kernel ignores them).
    pub bytes_after_pkcs7: Option<usize>,
    /// Why the signature could not be read, if it could not.
    pub error: Option<String>,
}

impl Inspection {
    /// An inspection of a stored file of `file_size` bytes, before its
    /// (decompressed) module is looked at.
    pub fn new(path: &str, compression: &str, file_size: usize) -> Self {
        Inspection {
            path: path.to_owned(),
            compression: compression.to_owned(),
            file_size,
            module_size: file_size,
            signed: false,
            sig_id: None,
            signer: None,
            sig_key: None,
            key_id_type: None,
            sig_hashalgo: None,
            sig_algo: None,
            signed_attributes: None,
            certificates: None,
            signature_size: None,
            pkcs7_size: None,
            payload_size: None,
            payload_digest: None,
            payload_sha256: None,
            bytes_after_pkcs7: None,
            error: None,
        }
    }
}

/// Inspects an uncompressed module; `out` says where it came from.
pub fn inspect_module(module: &[u8], mut out: Inspection) -> Inspection {
    out.module_size = module.len();
    let signed = match modsig::split(module) {
        Ok(Trailer::Signed(s)) => s,
        Ok(Trailer::Unsigned) => return out,
        Err(e) => {
            out.error = Some(crate::verify::error::Error::Trailer(e).to_string());
            return out;
        }
    };
    out.signed = true;
    out.sig_id = Some("PKCS#7".into());
    out.pkcs7_size = Some(signed.pkcs7.len());
    out.payload_size = Some(signed.payload.len());
    out.payload_sha256 = Some(crate::util::hex::lower(&crate::verify::algorithm::sha256(
        signed.payload,
    )));
    let msg = match pkcs7::parse(signed.pkcs7) {
        Ok(m) => m,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    let si = &msg.signer;
    match si.id {
        SignerId::IssuerSerial { issuer, serial } => {
            out.sig_key = Some(crate::util::hex::colon(strip_sign_byte(serial)));
            out.key_id_type = Some("issuer and serial number".into());
            out.signer = crate::trust::cert::common_name(issuer);
        }
        SignerId::KeyId(k) => {
            out.sig_key = Some(crate::util::hex::colon(k));
            out.key_id_type = Some("subject key identifier".into());
        }
    }
    out.signed_attributes = Some(si.signed_attrs.is_some());
    out.certificates = Some(msg.certificates.len());
    out.bytes_after_pkcs7 = Some(msg.trailing);
    out.signature_size = Some(si.signature.len());
    out.sig_algo = Some(match sig_alg_from_oid(si.signature_oid) {
        SigAlgLookup::Supported(KeyFamily::Rsa, _) => "rsa (PKCS#1 v1.5)".into(),
        SigAlgLookup::Supported(KeyFamily::Ecdsa, _) => "ecdsa".into(),
        SigAlgLookup::Supported(KeyFamily::MlDsa(level), _) => level.name().into(),
        SigAlgLookup::Refused(n) => n.into(),
        SigAlgLookup::Unknown(o) => o,
    });
    match hash_from_oid(si.digest_oid) {
        HashLookup::Supported(h) => {
            out.sig_hashalgo = Some(h.name().into());
            out.payload_digest = Some(format!(
                "{}:{}",
                h.name(),
                crate::util::hex::lower(&h.digest(signed.payload))
            ));
        }
        HashLookup::Refused(n) => out.sig_hashalgo = Some(n.into()),
        HashLookup::Unknown(_) => out.sig_hashalgo = Some(oid_string(si.digest_oid)),
    }
    out
}

impl Inspection {
    /// `modinfo`-style `field: value` lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: &str| s.push_str(&format!("{k:<19}{v}\n"));
        line("filename:", &self.path);
        line("compression:", &self.compression);
        line("file_size:", &self.file_size.to_string());
        if self.compression != "none" {
            line("module_size:", &self.module_size.to_string());
        }
        if !self.signed {
            line(
                "signature:",
                self.error.as_deref().unwrap_or("none (unsigned)"),
            );
            return s;
        }
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        line("sig_id:", &opt(&self.sig_id));
        line("signer:", &opt(&self.signer));
        line("sig_key:", &opt(&self.sig_key));
        line("sig_key_type:", &opt(&self.key_id_type));
        line("sig_hashalgo:", &opt(&self.sig_hashalgo));
        line("sig_algo:", &opt(&self.sig_algo));
        if let Some(n) = self.signature_size {
            line("signature_size:", &n.to_string());
        }
        if let Some(n) = self.pkcs7_size {
            line("pkcs7_size:", &n.to_string());
        }
        if let Some(n) = self.payload_size {
            line("payload_size:", &n.to_string());
        }
        if let Some(b) = self.signed_attributes {
            line("signed_attributes:", if b { "yes" } else { "no" });
        }
        if let Some(n) = self.certificates {
            line("certificates:", &n.to_string());
        }
        line("payload_digest:", &opt(&self.payload_digest));
        line("payload_sha256:", &opt(&self.payload_sha256));
        if let Some(n) = self.bytes_after_pkcs7.filter(|&n| n > 0) {
            line(
                "bytes_after_pkcs7:",
                &format!("{n} (ignored, as by the kernel)"),
            );
        }
        if let Some(e) = &self.error {
            line("error:", e);
        }
        s
    }
}
