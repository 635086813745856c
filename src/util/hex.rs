//! Hex encoding for reports and hex parsing for configuration.

const LOWER: &[u8; 16] = b"0123456789abcdef";
const UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Encodes without a per-byte allocation: reports hex-encode digests and key
/// ids for every module, and musl's allocator is slow.
fn encode(bytes: &[u8], digits: &[u8; 16], sep: Option<char>) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if let (Some(c), true) = (sep, i > 0) {
            out.push(c);
        }
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0x0f)]));
    }
    out
}

/// Lowercase hex, no separator: digests in reports, logs and JSON.
pub fn lower(bytes: &[u8]) -> String {
    encode(bytes, LOWER, None)
}

/// Uppercase hex, no separator: key identifiers.
pub fn upper(bytes: &[u8]) -> String {
    encode(bytes, UPPER, None)
}

/// `AB:CD:…`, the way `modinfo` prints `sig_key`.
pub fn colon(bytes: &[u8]) -> String {
    encode(bytes, UPPER, Some(':'))
}

/// Parses hex, accepting either case and `:` separators (as `openssl` and
/// `modinfo` print identifiers).
pub fn parse(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b':').collect();
    if digits.is_empty() || digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::parse("0a:FF").unwrap(), vec![0x0a, 0xff]);
        assert_eq!(super::colon(&[0x0a, 0xff]), "0A:FF");
        assert_eq!(super::lower(&[0x0a, 0xff]), "0aff");
        assert_eq!(super::upper(&[0x0a, 0xff]), "0AFF");
        assert_eq!(super::colon(&[]), "");
        assert!(super::parse("abc").is_none());
        assert!(super::parse("zz").is_none());
        assert!(super::parse("").is_none());
    }
}
