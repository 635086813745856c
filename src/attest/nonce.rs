//! The nonce (qualifying data) a verifier chooses for a quote: one parser
//! for `modseal quote --nonce` and `modseal attest --nonce`.

use crate::util::text::clip;

/// Largest nonce: a `TPM2B_DATA` holds at most `sizeof(TPMU_HA)` = 64 bytes
/// (tpm2-tss, tpm2-tools). swtpm accepts 64 bytes with a SHA-256 AK; a TPM
/// refusing more than its signing digest's size would answer TPM_RC_SIZE.
pub const MAX_NONCE: usize = 64;

/// Why a nonce is refused. The messages follow the option's name
/// (`--nonce 'xyz': not hex …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Nothing but blanks or a bare `0x`: the text given.
    #[error("'{}': empty nonce", clip(.0))]
    Empty(String),
    /// Not an even number of hex digits: the text given.
    #[error("'{}': not hex (an even number of hex digits, after an optional 0x or with ':' between bytes)", clip(.0))]
    NotHex(String),
    /// More than a TPM takes: the length in bytes.
    #[error("is {0} bytes, more than the {MAX_NONCE} a TPM2B_DATA holds")]
    TooLong(usize),
}

/// Parses a nonce: hex digits of either case, after an optional `0x`, or
/// bytes separated by `:` (`ab:cd`, as `openssl` prints them); 1 to
/// [`MAX_NONCE`] bytes.
pub fn parse_nonce(text: &str) -> Result<Vec<u8>, NonceError> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() {
        return Err(NonceError::Empty(text.to_owned()));
    }
    let n = crate::util::hex::parse(t).ok_or_else(|| NonceError::NotHex(text.to_owned()))?;
    if n.len() > MAX_NONCE {
        return Err(NonceError::TooLong(n.len()));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_and_the_limits() {
        assert_eq!(parse_nonce("0xABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(parse_nonce("00ff").unwrap(), vec![0, 0xff]);
        assert_eq!(parse_nonce(" ab:CD:01\n").unwrap(), vec![0xab, 0xcd, 0x01]);
        assert_eq!(parse_nonce(&"00".repeat(64)).unwrap().len(), 64);
        assert_eq!(
            parse_nonce(&"00".repeat(65)).unwrap_err().to_string(),
            "is 65 bytes, more than the 64 a TPM2B_DATA holds"
        );
        assert_eq!(parse_nonce("").unwrap_err().to_string(), "'': empty nonce");
        assert!(matches!(parse_nonce(" 0x "), Err(NonceError::Empty(_))));
        for bad in ["abc", "zz", "xyz", "0xab:c", ":", "0x0xab"] {
            assert!(
                matches!(parse_nonce(bad), Err(NonceError::NotHex(_))),
                "{bad}"
            );
        }
        assert!(parse_nonce("not-hex")
            .unwrap_err()
            .to_string()
            .starts_with("'not-hex': not hex"));
    }
}
