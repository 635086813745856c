//! `modseal.conf`: the settings of a boot run.

use std::path::{Path, PathBuf};

use crate::measure::Mode;

use super::error::{BootError, ConfigError};

/// The config file read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/modseal/modseal.conf";
/// The trust bundle when the config names none.
pub const DEFAULT_TRUST: &str = "/etc/modseal/trust.bundle";
/// The enrollment directory when the config names none.
pub const DEFAULT_SEALED: &str = "/etc/modseal/sealed";
/// The event log when the config names none (systemd's place for it).
pub const DEFAULT_LOG: &str = "/run/log/modseal/tpm2-measure.log";
/// The PCR when the config names none.
pub const DEFAULT_PCR: u8 = 12;

/// Settings of a boot run: config file, then command-line flags on top.
///
/// The config file is `key = value` lines (`#` comments):
/// `trust`, `sealed`, `pcr`, `mode` (enforce|warn), `log`, `modules`, `tcti`,
/// `certs` (untrusted certificates, file or directory),
/// `allow-weaken` (yes|no: whether `rd.modseal=warn|off` on the kernel
/// command line may weaken an enforce config; default no).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The trust bundle.
    pub trust: PathBuf,
    /// The enrollment directory written by `modseal enroll`.
    pub sealed: PathBuf,
    /// The PCR a stage is measured into.
    pub pcr: u8,
    /// What a failure does.
    pub mode: Mode,
    /// The event log records are appended to.
    pub log: PathBuf,
    /// The modules directory (default: that of the running kernel).
    pub modules: Option<PathBuf>,
    /// The TPM connection (below `--tcti` and `$MODSEAL_TCTI`).
    pub tcti: Option<String>,
    /// Untrusted signer/intermediate certificates (a file or directory):
    /// modules signed by a key an anchor issued verify without re-sealing.
    pub certs: Option<PathBuf>,
    /// Whether `rd.modseal=` may weaken the configured mode.
    pub allow_weaken: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            trust: DEFAULT_TRUST.into(),
            sealed: DEFAULT_SEALED.into(),
            pcr: DEFAULT_PCR,
            mode: Mode::Enforce,
            log: DEFAULT_LOG.into(),
            modules: None,
            tcti: None,
            certs: None,
            allow_weaken: false,
        }
    }
}

impl Config {
    /// Reads the config file `explicit`, else [`DEFAULT_CONFIG`]. Only a
    /// missing default file means the built-in defaults: an unreadable one
    /// must not silently replace the configured paths, PCR or mode.
    pub fn load(explicit: Option<&Path>) -> Result<Self, BootError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_CONFIG));
        // Capped, regular files only: the initramfs is the attacker's to write.
        match crate::util::read::read_capped_string(path, 1 << 20) {
            Ok(t) => Config::parse(&t).map_err(|source| BootError::Config {
                path: path.to_owned(),
                source,
            }),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Config::default())
            }
            Err(source) => Err(BootError::ConfigRead {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses a config file's text over the built-in defaults.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut c = Config::default();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let body = raw.split('#').next().unwrap_or("").trim();
            if body.is_empty() {
                continue;
            }
            let (k, v) = body
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .ok_or(ConfigError::Syntax { line })?;
            c.set(line, k, v)?;
        }
        Ok(c)
    }

    /// Applies one `key = value` line.
    fn set(&mut self, line: usize, k: &str, v: &str) -> Result<(), ConfigError> {
        let bad = |expected| ConfigError::BadValue {
            line,
            key: k.to_owned(),
            expected,
        };
        match k {
            "trust" => self.trust = v.into(),
            "sealed" => self.sealed = v.into(),
            "log" => self.log = v.into(),
            "modules" => self.modules = Some(v.into()),
            "certs" => self.certs = Some(v.into()),
            "tcti" => self.tcti = Some(v.into()),
            "pcr" => {
                self.pcr = v
                    .parse()
                    .ok()
                    .filter(|p| *p <= 23)
                    .ok_or_else(|| bad("not a PCR index 0-23"))?
            }
            "mode" => {
                self.mode = match v {
                    "enforce" => Mode::Enforce,
                    "warn" => Mode::Warn,
                    _ => return Err(bad("must be enforce or warn")),
                }
            }
            "allow-weaken" => {
                self.allow_weaken = match v {
                    "yes" | "true" | "1" => true,
                    "no" | "false" | "0" => false,
                    _ => return Err(bad("must be yes or no")),
                }
            }
            _ => {
                return Err(ConfigError::UnknownSetting {
                    line,
                    key: k.to_owned(),
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_refuses() {
        let c =
            Config::parse("# x\ntrust = /a\nmode = warn\npcr = 13\nallow-weaken = yes\n").unwrap();
        assert_eq!(c.trust, PathBuf::from("/a"));
        assert_eq!(c.mode, Mode::Warn);
        assert_eq!(c.pcr, 13);
        assert!(c.allow_weaken);
        assert!(Config::parse("pcr = 24").is_err());
        assert!(Config::parse("mode = off").is_err());
        assert!(Config::parse("bogus = 1").is_err());
        assert!(Config::parse("nonsense").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn errors_keep_their_messages() {
        let e = |t: &str| Config::parse(t).unwrap_err().to_string();
        assert_eq!(e("\n\npcr = 24"), "line 3: pcr: not a PCR index 0-23");
        assert_eq!(e("mode = off"), "line 1: mode: must be enforce or warn");
        assert_eq!(
            e("allow-weaken = maybe"),
            "line 1: allow-weaken: must be yes or no"
        );
        assert_eq!(e("bogus = 1"), "line 1: unknown setting 'bogus'");
        assert_eq!(e("# c\nnonsense"), "line 2: expected 'key = value'");
    }

    #[test]
    fn load_defaults_only_for_a_missing_default_file() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("none.conf");
        assert_eq!(
            Config::load(Some(&missing)).unwrap_err().to_string(),
            format!(
                "{}: cannot read: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let bad = tmp.path().join("bad.conf");
        std::fs::write(&bad, "pcr = 99\n").unwrap();
        assert_eq!(
            Config::load(Some(&bad)).unwrap_err().to_string(),
            format!("{}: line 1: pcr: not a PCR index 0-23", bad.display())
        );
        std::fs::write(&bad, "mode = warn\n").unwrap();
        assert_eq!(Config::load(Some(&bad)).unwrap().mode, Mode::Warn);
    }
}
