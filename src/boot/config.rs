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
/// The derived anchor (see `trust::derived`) when the config names none.
pub const DEFAULT_DERIVED: &str = "/etc/modseal/derived-anchor";
/// The PCR when the config names none.
pub const DEFAULT_PCR: u8 = 12;

/// Settings of a boot run: config file, then command-line flags on top.
///
/// The config file is `key = value` lines (`#` comments) naming paths and
/// the TPM: `trust`, `sealed`, `log`, `modules` (host use only), `tcti`,
/// `certs` (untrusted certificates, file or directory), `derived` (the
/// certificates taken from the kernel image, read only when the bundle has
/// `kernel-signer` CAs). `mode`, `pcr` and
/// `allow-weaken` are sealed with the trust bundle: given here they are
/// kept only to be named as ignored ([`Config::unsealed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file read, if any (for messages).
    pub source: Option<PathBuf>,
    /// The trust bundle.
    pub trust: PathBuf,
    /// The enrollment directory written by `modseal enroll`.
    pub sealed: PathBuf,
    /// The PCR a stage is measured into: set from the sealed policy when a
    /// stage runs, never from the file.
    pub pcr: u8,
    /// What a failure does: set from the sealed policy, never from the file.
    pub mode: Mode,
    /// The event log records are appended to.
    pub log: PathBuf,
    /// The modules directory (default: that of the running kernel), with
    /// its line in the file.
    pub modules: Option<PathBuf>,
    /// The line `modules =` was read from (0: not from the file).
    pub modules_line: usize,
    /// The TPM connection (below `--tcti` and `$MODSEAL_TCTI`).
    pub tcti: Option<String>,
    /// Untrusted signer/intermediate certificates (a file or directory):
    /// modules signed by a key an anchor issued verify without re-sealing.
    pub certs: Option<PathBuf>,
    /// The derived anchor, read when the trust bundle has kernel signers.
    pub derived: PathBuf,
    /// `mode`, `pcr`, `allow-weaken` lines found in the file: each is
    /// ignored, and named in the stage's record.
    pub unsealed: Vec<UnsealedSetting>,
}

/// A setting the config file may not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsealedSetting {
    /// Its line.
    pub line: usize,
    /// `mode`, `pcr` or `allow-weaken`.
    pub key: &'static str,
    /// The value given (clipped).
    pub value: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            trust: DEFAULT_TRUST.into(),
            sealed: DEFAULT_SEALED.into(),
            pcr: DEFAULT_PCR,
            mode: Mode::Enforce,
            log: DEFAULT_LOG.into(),
            modules: None,
            modules_line: 0,
            tcti: None,
            certs: None,
            derived: DEFAULT_DERIVED.into(),
            unsealed: Vec::new(),
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
            Ok(t) => Config::parse(&t)
                .map(|c| Config {
                    source: Some(path.to_owned()),
                    ..c
                })
                .map_err(|source| BootError::Config {
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
        match k {
            "trust" => self.trust = v.into(),
            "sealed" => self.sealed = v.into(),
            "log" => self.log = v.into(),
            "modules" => {
                self.modules = Some(v.into());
                self.modules_line = line;
            }
            "certs" => self.certs = Some(v.into()),
            "derived" => self.derived = v.into(),
            "tcti" => self.tcti = Some(v.into()),
            // Whatever the value: the file cannot set these, so a bad value
            // is as ignored as a good one.
            "pcr" | "mode" | "allow-weaken" => self.unsealed.push(UnsealedSetting {
                line,
                key: match k {
                    "pcr" => "pcr",
                    "mode" => "mode",
                    _ => "allow-weaken",
                },
                value: v.chars().take(64).collect(),
            }),
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
    fn config_parses_and_keeps_unsealed_settings_aside() {
        let c = Config::parse(
            "# x\ntrust = /a\nmode = warn\npcr = 13\nallow-weaken = yes\nmodules = /m\n",
        )
        .unwrap();
        assert_eq!(c.trust, PathBuf::from("/a"));
        // Never applied: the sealed policy decides.
        assert_eq!((c.mode, c.pcr), (Mode::Enforce, DEFAULT_PCR));
        let keys: Vec<(usize, &str, &str)> = c
            .unsealed
            .iter()
            .map(|u| (u.line, u.key, u.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (3, "mode", "warn"),
                (4, "pcr", "13"),
                (5, "allow-weaken", "yes")
            ]
        );
        assert_eq!(
            (c.modules.as_deref(), c.modules_line),
            (Some(Path::new("/m")), 6)
        );
        // A value the file could never set is ignored the same way.
        assert_eq!(Config::parse("pcr = 99").unwrap().unsealed[0].value, "99");
        assert!(Config::parse("bogus = 1").is_err());
        assert!(Config::parse("nonsense").is_err());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn errors_keep_their_messages() {
        let e = |t: &str| Config::parse(t).unwrap_err().to_string();
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
        std::fs::write(&bad, "bogus = 99\n").unwrap();
        assert_eq!(
            Config::load(Some(&bad)).unwrap_err().to_string(),
            format!("{}: line 1: unknown setting 'bogus'", bad.display())
        );
        std::fs::write(&bad, "mode = warn\n").unwrap();
        let c = Config::load(Some(&bad)).unwrap();
        assert_eq!(
            (c.mode, c.source.as_deref()),
            (Mode::Enforce, Some(bad.as_path()))
        );
    }
}
