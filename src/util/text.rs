//! Untrusted text made fit for a one-line message.

/// Bound on the untrusted strings (paths, reasons, labels) quoted in messages.
pub const QUOTE_LIMIT: usize = 200;

/// Makes a string safe for a one-line report: control characters replaced,
/// length bounded.
pub fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(QUOTE_LIMIT)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > QUOTE_LIMIT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_bounds_and_cleans() {
        assert_eq!(clip("a\nb\x1b"), "a?b?");
        let long = "x".repeat(QUOTE_LIMIT + 5);
        let c = clip(&long);
        assert_eq!(c.chars().count(), QUOTE_LIMIT + 1);
        assert!(c.ends_with('…'));
        assert_eq!(clip(&"y".repeat(QUOTE_LIMIT)), "y".repeat(QUOTE_LIMIT));
    }
}
