//! Hex encoding for reports and hex parsing for configuration.

pub fn lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `AB:CD:…`, the way `modinfo` prints `sig_key`.
pub fn colon(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
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
        assert!(super::parse("abc").is_none());
        assert!(super::parse("zz").is_none());
        assert!(super::parse("").is_none());
    }
}
