//! The quote files an attested machine sends, all untrusted: `TPMS_ATTEST`
//! (quote.msg), `TPMT_SIGNATURE` (quote.sig) and tpm2_quote's serialized PCR
//! file (quote.pcrs), each alone, then together through every check of
//! `modseal attest`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use modseal::attest::{self, pcrs, policy::Policy, quote_msg, signature, Evidence};
use modseal::tpm::marshal::TPM_GENERATED_VALUE;
use modseal::verify::pubkey::PublicKey;

/// A P-256 AK made by `tpm2_createprimary -C e -G ecc256:ecdsa-sha256:null` (swtpm).
const AK_PEM: &[u8] = b"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEAi8Fo7kgJxxMKFBlZHAJOtlLEpN
Cf8qVNwTdMGbo5Fl5IO+L0L5/G/waoVqWXH3iR54da/V06HJ/8ImeyXU0g==
-----END PUBLIC KEY-----
";

fn ak() -> &'static PublicKey {
    static AK: OnceLock<PublicKey> = OnceLock::new();
    AK.get_or_init(|| attest::parse_ak(AK_PEM).expect("the fuzz AK parses"))
}

/// Splits `data` into up to three parts at offsets named by its first bytes.
fn split3(data: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let (a, b, rest) = match data {
        [a, b, rest @ ..] => (usize::from(*a), usize::from(*b), rest),
        _ => return (data, &[], &[]),
    };
    let i = a.min(rest.len());
    let j = (i + b * 8).min(rest.len());
    (&rest[..i], &rest[i..j], &rest[j..])
}

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = quote_msg::parse_attest(data) {
        assert_eq!(a.magic, TPM_GENERATED_VALUE);
        assert!(a.extra_data.len() <= 66 && a.pcr_digest.len() <= 64);
    }
    if let Ok(sig) = signature::parse_signature(data) {
        let _ = signature::check_signature(ak(), &sig, data);
    }
    if let Ok(p) = pcrs::parse_pcrs(data) {
        // What parses writes back to a file that parses the same.
        let again = p.to_serialized().map(|f| pcrs::parse_pcrs(&f));
        assert_eq!(again, Ok(Ok(p.clone())));
        if let Ok(a) = quote_msg::parse_attest(data) {
            let _ = pcrs::check_pcr_digest(&a, &p, modseal::tpm::PcrBank::Sha256);
        }
    }
    let (msg, sig, pcrs) = split3(data);
    let ev = Evidence {
        msg: msg.to_vec(),
        sig: sig.to_vec(),
        pcrs: pcrs.to_vec(),
        log: Vec::new(),
        firmware_log: None,
        cmdline: None,
    };
    if let Ok(r) = attest::evaluate(ak(), &ev, b"nonce", &Policy::default(), false) {
        // Nobody but the AK's TPM can sign: nothing the fuzzer makes is trusted.
        assert!(!r.trusted);
        let _ = attest::render_text(&r);
    }
});
