//! The one PEM writer: base64 in 64-column lines between the label's
//! markers, ending with a newline, as OpenSSL writes it.

use base64::Engine as _;

/// `der` as PEM under `label` (`CERTIFICATE`, `PUBLIC KEY`).
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so every 64-byte chunk is valid UTF-8.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
