//! The settings a trust bundle seals with its anchors: what may weaken or
//! redirect enforcement is decided here, never by a file beside the bundle.
//!
//! ```text
//! mode enforce|warn        # default enforce
//! pcr 12                   # the measurement PCR, 0-23; default 12
//! allow-weaken no          # may rd.modseal= / rd.modseal.pcr= weaken or move it; default no
//! allow-install TEXT       # an allowed modprobe.d install/remove command, exact text
//! mldsa-authattrs reject    # ML-DSA module signatures with signed attributes: waive|reject;
//!                           # default reject (Debian 7.x's kernel config)
//! ```
//!
//! `allow-install` takes the rest of its line verbatim (after the one space
//! that follows the keyword): a command may contain `#`.

use super::error::BundleProblem;
use crate::verify::mldsa::Authattrs;

/// The PCR when the bundle names none.
pub const DEFAULT_SEALED_PCR: u8 = 12;

/// The mode a bundle seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SealedMode {
    /// A failure stops the boot.
    #[default]
    Enforce,
    /// A failure is measured and logged; the boot goes on.
    Warn,
}

/// What a bundle seals besides its anchors and denylist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `mode`.
    pub mode: SealedMode,
    /// `pcr`.
    pub pcr: u8,
    /// `allow-weaken`.
    pub allow_weaken: bool,
    /// `allow-install`: exact command texts, in file order.
    pub allow_install: Vec<String>,
    /// `mldsa-authattrs`: the kernel's
    /// `CONFIG_PKCS7_WAIVE_AUTHATTRS_REJECTION_FOR_MLDSA`. It widens what
    /// verifies, so it is sealed like the other settings.
    pub mldsa_authattrs: Authattrs,
}

impl Default for Settings {
    /// The built-in policy: also what a stage runs with when the bundle's
    /// settings cannot be confirmed by the unseal.
    fn default() -> Self {
        Settings {
            mode: SealedMode::Enforce,
            pcr: DEFAULT_SEALED_PCR,
            allow_weaken: false,
            allow_install: Vec::new(),
            mldsa_authattrs: Authattrs::default(),
        }
    }
}

/// Most `allow-install` lines: a bound on the work of a refusal check.
pub const MAX_ALLOW_INSTALL: usize = 1024;

/// Which settings were given, so each may be given only once.
#[derive(Debug, Default)]
pub(super) struct SettingsParser {
    settings: Settings,
    seen: Vec<&'static str>,
}

impl SettingsParser {
    /// Applies `raw` (a bundle line, untrimmed) if it is a setting:
    /// `Ok(false)` if it is not one.
    pub(super) fn line(&mut self, raw: &str) -> Result<bool, BundleProblem> {
        let trimmed = raw.trim_start();
        if let Some(text) = trimmed.strip_prefix("allow-install ") {
            if text.trim().is_empty() {
                return Err(bad("allow-install", text, "a command text"));
            }
            if self.settings.allow_install.len() == MAX_ALLOW_INSTALL {
                return Err(BundleProblem::TooManySettings {
                    directive: "allow-install",
                    max: MAX_ALLOW_INSTALL,
                });
            }
            // Verbatim but for a CR of a CRLF file, which `lines()` keeps.
            let text = text.strip_suffix('\r').unwrap_or(text);
            self.settings.allow_install.push(text.to_owned());
            return Ok(true);
        }
        let (key, value) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let value = value.split('#').next().unwrap_or("").trim();
        let key: &'static str = match key {
            "mode" => "mode",
            "pcr" => "pcr",
            "allow-weaken" => "allow-weaken",
            "mldsa-authattrs" => "mldsa-authattrs",
            _ => return Ok(false),
        };
        if self.seen.contains(&key) {
            return Err(BundleProblem::RepeatedSetting(key));
        }
        self.seen.push(key);
        let s = &mut self.settings;
        match key {
            "mode" => {
                s.mode = match value {
                    "enforce" => SealedMode::Enforce,
                    "warn" => SealedMode::Warn,
                    _ => return Err(bad(key, value, "enforce or warn")),
                }
            }
            "pcr" => s.pcr = parse_pcr(value).ok_or_else(|| bad(key, value, "a PCR index 0-23"))?,
            "mldsa-authattrs" => {
                s.mldsa_authattrs = match value {
                    "waive" => Authattrs::Waive,
                    "reject" => Authattrs::Reject,
                    _ => return Err(bad(key, value, "waive or reject")),
                }
            }
            _ => {
                s.allow_weaken = match value {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(bad(key, value, "yes or no")),
                }
            }
        }
        Ok(true)
    }

    /// The settings parsed.
    pub(super) fn finish(self) -> Settings {
        self.settings
    }
}

/// A decimal PCR index 0-23 without sign or leading zero.
fn parse_pcr(v: &str) -> Option<u8> {
    let canonical =
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    v.parse::<u8>().ok().filter(|p| canonical && *p <= 23)
}

fn bad(directive: &'static str, value: &str, expected: &'static str) -> BundleProblem {
    BundleProblem::BadSetting {
        directive,
        value: value.chars().take(64).collect(),
        expected,
    }
}

/// The bundle lines for `s`, omitting what is the built-in default.
pub fn render_settings(s: &Settings) -> String {
    let mut out = String::new();
    if s.mode == SealedMode::Warn {
        out.push_str("mode warn\n");
    }
    if s.pcr != DEFAULT_SEALED_PCR {
        out.push_str(&format!("pcr {}\n", s.pcr));
    }
    if s.allow_weaken {
        out.push_str("allow-weaken yes\n");
    }
    for t in &s.allow_install {
        out.push_str(&format!("allow-install {t}\n"));
    }
    if s.mldsa_authattrs != Authattrs::default() {
        out.push_str(&format!("mldsa-authattrs {}\n", s.mldsa_authattrs.name()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Settings, BundleProblem> {
        let mut p = SettingsParser::default();
        for l in lines {
            assert!(p.line(l)?, "{l} is a setting");
        }
        Ok(p.finish())
    }

    #[test]
    fn settings_parse_and_default() {
        assert_eq!(parse(&[]).unwrap(), Settings::default());
        let s = parse(&[
            "mode warn",
            "pcr 16  # debug",
            "allow-weaken yes",
            "allow-install /bin/sh -c 'a # b'",
            "allow-install  two  spaces ",
            "mldsa-authattrs waive",
        ])
        .unwrap();
        assert_eq!(s.mode, SealedMode::Warn);
        assert_eq!(s.pcr, 16);
        assert!(s.allow_weaken);
        assert_eq!(s.mldsa_authattrs, Authattrs::Waive);
        assert_eq!(
            s.allow_install,
            vec!["/bin/sh -c 'a # b'".to_owned(), " two  spaces ".to_owned()]
        );
        let again = format!("modseal-trust-bundle v1\n{}", render_settings(&s));
        let mut p = SettingsParser::default();
        for l in again.lines().skip(1) {
            assert!(p.line(l).unwrap());
        }
        assert_eq!(p.finish(), s);
    }

    #[test]
    fn bad_and_repeated_settings_are_refused() {
        let e = |l: &[&str]| parse(l).unwrap_err().to_string();
        assert_eq!(
            e(&["mode off"]),
            "'mode' must be enforce or warn, found 'off'"
        );
        assert_eq!(e(&["pcr 24"]), "'pcr' must be a PCR index 0-23, found '24'");
        assert_eq!(
            e(&["pcr 012"]),
            "'pcr' must be a PCR index 0-23, found '012'"
        );
        assert_eq!(
            e(&["allow-weaken 1"]),
            "'allow-weaken' must be yes or no, found '1'"
        );
        assert_eq!(e(&["mode warn", "mode enforce"]), "'mode' given twice");
        assert_eq!(
            e(&["mldsa-authattrs yes"]),
            "'mldsa-authattrs' must be waive or reject, found 'yes'"
        );
        assert_eq!(
            parse(&["mldsa-authattrs reject"]).unwrap(),
            Settings::default()
        );
        assert_eq!(
            e(&["allow-install  "]),
            "'allow-install' must be a command text, found ' '"
        );
        let mut p = SettingsParser::default();
        assert!(!p.line("deny-key-id 00").unwrap());
        assert!(!p.line("modex warn").unwrap());
    }
}
