//! Checks 2 to 4 of `attest`: the quote structure, its nonce and its PCR
//! digest against the PCR values sent with it.

use super::{BadInput, Checks};
use crate::attest::evidence::QUOTE_MSG;
use crate::attest::pcrs::{check_pcr_digest, PcrValues};
use crate::attest::quote_msg::{parse_attest, Attest};
use crate::attest::report::{CheckName, PcrValueReport, QuoteReport, Status};
use crate::attest::selection::{describe_selection, hash_alg_name};
use crate::attest::signature::{digest_hash, Signature};
use crate::util::hex;
use crate::verify::pubkey::PublicKey;

/// What is known of the quote before quote.msg is parsed.
pub(super) fn quote_report(ak: &PublicKey, sig: &Signature, pcrs: &PcrValues) -> QuoteReport {
    QuoteReport {
        ak: ak.describe(),
        signature: Some(sig.describe()),
        pcrs_file_select: describe_selection(&pcrs.selection),
        pcrs: pcrs
            .entries()
            .into_iter()
            .map(|(h, p, v)| PcrValueReport {
                bank: hash_alg_name(h),
                pcr: p,
                value: hex::lower(v),
            })
            .collect(),
        ..QuoteReport::default()
    }
}

/// Check 2: quote.msg, parsed into the report.
pub(super) fn check_quote(
    msg: &[u8],
    signed: bool,
    checks: &mut Checks,
    quote: &mut QuoteReport,
) -> Result<Option<Attest>, BadInput> {
    let a = match parse_attest(msg) {
        Ok(a) => a,
        // Unsigned bytes that do not even parse: garbage, not a forged quote.
        Err(e) if !signed => return Err(BadInput::Quote(e)),
        Err(e) => {
            checks.fail(
                CheckName::Quote,
                format!("not a TPM quote: {QUOTE_MSG}: {e}"),
            );
            return Ok(None);
        }
    };
    let detail = format!(
        "TPM-generated quote (magic 0x{:08x}, type 0x{:04x}) over {}, clock {}, resets {}, restarts {}",
        a.magic,
        a.kind,
        describe_selection(&a.pcr_select),
        a.clock,
        a.reset_count,
        a.restart_count
    );
    checks.record(CheckName::Quote, Status::Pass, detail);
    quote.magic = Some(format!("0x{:08x}", a.magic));
    quote.kind = Some(format!("0x{:04x}", a.kind));
    quote.qualified_signer = Some(hex::lower(&a.qualified_signer));
    quote.extra_data = Some(hex::lower(&a.extra_data));
    quote.clock = Some(a.clock);
    quote.reset_count = Some(a.reset_count);
    quote.restart_count = Some(a.restart_count);
    quote.safe = Some(a.safe);
    quote.firmware_version = Some(format!("0x{:016x}", a.firmware_version));
    quote.pcr_select = Some(describe_selection(&a.pcr_select));
    quote.pcr_digest = Some(hex::lower(&a.pcr_digest));
    Ok(Some(a))
}

/// Check 3: the quote's extraData is the verifier's nonce.
pub(super) fn check_nonce(att: Option<&Attest>, nonce: &[u8], checks: &mut Checks) {
    let Some(a) = att else {
        checks.skip(CheckName::Nonce, "no quote structure");
        return;
    };
    let r = if a.extra_data == nonce {
        Ok(format!("extraData is the nonce {}", hex::lower(nonce)))
    } else {
        Err(format!(
            "the quote's extraData is '{}', the verifier's nonce is {}",
            hex::lower(&a.extra_data),
            hex::lower(nonce)
        ))
    };
    checks.push(CheckName::Nonce, r, "stale nonce");
}

/// Check 4: quote.pcrs against the quote's digest, in the signature's hash.
pub(super) fn check_digest(
    att: Option<&Attest>,
    sig: &Signature,
    pcrs: &PcrValues,
    checks: &mut Checks,
) {
    match (att, digest_hash(sig)) {
        (Some(a), Ok((_, bank))) => checks.push(
            CheckName::PcrDigest,
            check_pcr_digest(a, pcrs, bank),
            "PCR digest mismatch",
        ),
        (Some(_), Err(_)) => {
            checks.skip(CheckName::PcrDigest, "the signature names no usable hash")
        }
        (None, _) => checks.skip(CheckName::PcrDigest, "no quote structure"),
    }
}
