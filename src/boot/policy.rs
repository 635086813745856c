//! What a stage runs with: the sealed policy, and what the config file, the
//! kernel command line and flags may change within it.
//!
//! The trust bundle seals the mode, the measurement PCR and `allow-weaken`
//! (see `trust::Settings`); its digest is the one sealed value. So:
//! - `mode`, `pcr`, `allow-weaken` in `modseal.conf` are always ignored;
//! - `rd.modseal=` may strengthen the mode always, weaken it (to warn or
//!   off) only with `allow-weaken yes` sealed; `rd.modseal.pcr=` may move the
//!   measurement only with `allow-weaken yes` sealed;
//! - inside an initramfs, `modules =` / `--modules` are ignored (the stages
//!   verify the running kernel's own module directory), `--mode` / `--pcr`
//!   follow the command line's rules, and the TCTI must be a `/dev` device;
//! - outside one (a host run, a test), flags are the operator's choice.
//!
//! Everything ignored is said in the kernel log and named in the record.

use crate::measure::Mode;
use crate::trust::{SealedMode, Settings};
use crate::util::kmsg::Level;

use super::cmdline::{
    cmdline_last, cmdline_params, parse_cmdline_pcr, shell_options, BootMode, CMDLINE_MODE,
    CMDLINE_PCR,
};
use super::config::Config;

/// The message line of an off boot.
pub const OFF_NOTICE: &str = "disabled by rd.modseal=off on the kernel command line (allow-weaken yes is sealed): nothing verified or measured";

/// What asks for a mode, PCR or module tree besides the sealed policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Requests<'a> {
    /// The kernel command line.
    pub cmdline: Option<&'a str>,
    /// `--mode`.
    pub flag_mode: Option<Mode>,
    /// `--pcr`.
    pub flag_pcr: Option<u8>,
    /// Whether `--modules` was given.
    pub flag_modules: bool,
    /// Whether the stage runs in an initramfs.
    pub in_initramfs: bool,
}

/// The mode and PCR a stage runs with, what was ignored, and what to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The mode to run in.
    pub mode: BootMode,
    /// The PCR to measure into.
    pub pcr: u8,
    /// Whether a module tree named by the config or `--modules` may be used.
    pub modules_override_allowed: bool,
    /// Each request ignored, for the record.
    pub ignored: Vec<String>,
    /// Kernel command-line options that cannot be ignored (the init system
    /// obeys them, not modseal) and that the sealed policy does not allow:
    /// each fails the stage.
    pub refused: Vec<String>,
    /// Messages for the kernel log, in order (the ignored ones included).
    pub notes: Vec<(Level, String)>,
}

impl Policy {
    fn ignore(&mut self, text: String) {
        self.notes
            .push((Level::Warning, format!("ignored: {text}")));
        self.ignored.push(text);
    }
}

/// The mode a bundle seals, as a boot mode.
pub fn sealed_mode(s: &Settings) -> Mode {
    match s.mode {
        SealedMode::Enforce => Mode::Enforce,
        SealedMode::Warn => Mode::Warn,
    }
}

/// Applies `cfg`'s settings and `req` within `sealed` (the bundle's settings
/// when the unseal confirmed them, else the built-in policy).
pub fn resolve(sealed: &Settings, cfg: &Config, req: &Requests<'_>) -> Policy {
    let mut p = Policy {
        mode: BootMode::from(sealed_mode(sealed)),
        pcr: sealed.pcr,
        modules_override_allowed: !req.in_initramfs,
        ignored: Vec::new(),
        refused: Vec::new(),
        notes: Vec::new(),
    };
    let source = cfg
        .source
        .as_ref()
        .map_or_else(|| "modseal.conf".to_owned(), |s| s.display().to_string());
    for u in &cfg.unsealed {
        p.ignore(format!(
            "{source} line {}: {} = {}: only the sealed trust bundle sets {}",
            u.line, u.key, u.value, u.key
        ));
    }
    if req.in_initramfs {
        if let Some(m) = &cfg.modules {
            p.ignore(format!(
                "{source} line {}: modules = {}: an initramfs verifies the running kernel's module directory",
                cfg.modules_line,
                m.display()
            ));
        }
        if req.flag_modules {
            p.ignore(
                "--modules: an initramfs verifies the running kernel's module directory".into(),
            );
        }
    }
    let params = req.cmdline.map(cmdline_params).unwrap_or_default();
    apply_cmdline_mode(&mut p, sealed, &params);
    apply_cmdline_pcr(&mut p, sealed, &params);
    apply_flags(&mut p, sealed, req);
    if p.mode == BootMode::Enforce && !sealed.allow_weaken {
        p.refused = shell_options(&params)
            .into_iter()
            .map(|o| {
                format!("kernel command line: {o} can give a shell or stop a unit in the initramfs; the sealed policy does not allow it (allow-weaken no)")
            })
            .collect();
    }
    if p.mode == BootMode::Off {
        // Nothing runs, so nothing is recorded: one line says it all.
        p.notes = vec![(Level::Notice, OFF_NOTICE.to_owned())];
    }
    p
}

/// A parameter as the messages show it: `name=value`, or `name` alone.
fn shown(name: &str, v: Option<&str>) -> String {
    match v {
        Some(v) => format!("{name}={v}"),
        None => name.to_owned(),
    }
}

/// `rd.modseal=`: stronger always, weaker only with `allow-weaken` sealed.
fn apply_cmdline_mode(p: &mut Policy, sealed: &Settings, params: &[(String, Option<String>)]) {
    let Some(v) = cmdline_last(params, CMDLINE_MODE) else {
        return;
    };
    let arg = shown(CMDLINE_MODE, v);
    let Some(requested) = v.and_then(BootMode::parse) else {
        p.ignore(format!("{arg}: not enforce, warn or off"));
        return;
    };
    request_mode(p, sealed, &arg, requested);
}

/// A requested mode, from the command line or (in an initramfs) `--mode`.
fn request_mode(p: &mut Policy, sealed: &Settings, arg: &str, requested: BootMode) {
    let current = p.mode;
    if requested < current && !sealed.allow_weaken {
        p.ignore(format!(
            "{arg}: the sealed policy does not allow weakening {} mode",
            current.name()
        ));
        return;
    }
    if requested != current {
        let level = if requested < current {
            Level::Notice
        } else {
            Level::Info
        };
        p.notes.push((
            level,
            format!(
                "{arg}: {} mode (sealed policy: {})",
                requested.name(),
                current.name()
            ),
        ));
    }
    p.mode = requested;
}

/// `rd.modseal.pcr=`: another PCR only with `allow-weaken` sealed.
fn apply_cmdline_pcr(p: &mut Policy, sealed: &Settings, params: &[(String, Option<String>)]) {
    let Some(v) = cmdline_last(params, CMDLINE_PCR) else {
        return;
    };
    let arg = shown(CMDLINE_PCR, v);
    match v.and_then(parse_cmdline_pcr) {
        None => p.ignore(format!("{arg}: not a PCR index 0-23 (PCR stays {})", p.pcr)),
        Some(n) => request_pcr(p, sealed, &arg, n),
    }
}

/// A requested PCR, from the command line or (in an initramfs) `--pcr`.
fn request_pcr(p: &mut Policy, sealed: &Settings, arg: &str, n: u8) {
    if n == p.pcr {
        return;
    }
    if !sealed.allow_weaken {
        p.ignore(format!(
            "{arg}: the sealed policy does not allow moving the measurement (PCR stays {})",
            p.pcr
        ));
        return;
    }
    p.notes.push((
        Level::Notice,
        format!(
            "{arg}: measuring into PCR {n} (sealed policy: {}, allow-weaken yes)",
            p.pcr
        ),
    ));
    p.pcr = n;
}

/// `--mode` / `--pcr`: the operator's choice on a host; in an initramfs,
/// under the command line's rules.
fn apply_flags(p: &mut Policy, sealed: &Settings, req: &Requests<'_>) {
    if req.in_initramfs {
        if let Some(m) = req.flag_mode {
            request_mode(p, sealed, &format!("--mode {}", m.name()), m.into());
        }
        if let Some(n) = req.flag_pcr {
            request_pcr(p, sealed, &format!("--pcr {n}"), n);
        }
        return;
    }
    if let Some(m) = req.flag_mode {
        p.mode = m.into();
    }
    if let Some(n) = req.flag_pcr {
        p.pcr = n;
    }
}

/// In an initramfs the TPM must be a device node: a TCTI naming a socket or
/// a command would let a program in the image answer for the TPM. The
/// ignored request's text when `tcti` is refused.
pub fn refuse_tcti(tcti: &str, in_initramfs: bool) -> Option<String> {
    // The kernel's TPM character devices only: /dev/tpm<N>, /dev/tpmrm<N>.
    let device = tcti.strip_prefix("device:/dev/").is_some_and(|n| {
        let digits = n.strip_prefix("tpmrm").or_else(|| n.strip_prefix("tpm"));
        digits
            .is_some_and(|d| !d.is_empty() && d.len() <= 3 && d.bytes().all(|b| b.is_ascii_digit()))
    });
    (in_initramfs && !device).then(|| {
        format!(
            "TCTI {tcti:?}: an initramfs talks to the TPM device only ({})",
            crate::tpm::DEFAULT_TCTI
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::config::UnsealedSetting;

    fn sealed(mode: SealedMode, pcr: u8, allow_weaken: bool) -> Settings {
        Settings {
            mode,
            pcr,
            allow_weaken,
            allow_install: Vec::new(),
            ..Settings::default()
        }
    }

    fn on(cmdline: &str) -> Requests<'_> {
        Requests {
            cmdline: Some(cmdline),
            in_initramfs: true,
            ..Requests::default()
        }
    }

    #[test]
    fn config_settings_are_always_ignored_and_named() {
        let cfg = Config {
            source: Some("/etc/modseal/modseal.conf".into()),
            unsealed: vec![
                UnsealedSetting {
                    line: 3,
                    key: "mode",
                    value: "warn".into(),
                },
                UnsealedSetting {
                    line: 4,
                    key: "pcr",
                    value: "16".into(),
                },
            ],
            modules: Some("/pristine/6.1".into()),
            modules_line: 5,
            ..Config::default()
        };
        let p = resolve(&Settings::default(), &cfg, &on(""));
        assert_eq!((p.mode, p.pcr), (BootMode::Enforce, 12));
        assert!(!p.modules_override_allowed);
        assert_eq!(
            p.ignored,
            [
                "/etc/modseal/modseal.conf line 3: mode = warn: only the sealed trust bundle sets mode",
                "/etc/modseal/modseal.conf line 4: pcr = 16: only the sealed trust bundle sets pcr",
                "/etc/modseal/modseal.conf line 5: modules = /pristine/6.1: an initramfs verifies the running kernel's module directory",
            ]
        );
        assert!(p
            .notes
            .iter()
            .all(|(l, n)| *l == Level::Warning && n.starts_with("ignored: ")));
        // On a host the module tree is the operator's.
        let host = Requests {
            in_initramfs: false,
            ..on("")
        };
        let p = resolve(&Settings::default(), &cfg, &host);
        assert!(p.modules_override_allowed);
        assert_eq!(p.ignored.len(), 2);
    }

    #[test]
    fn cmdline_weakening_and_moving_need_allow_weaken_sealed() {
        let cfg = Config::default();
        let strict = sealed(SealedMode::Enforce, 12, false);
        let p = resolve(&strict, &cfg, &on("rd.modseal=warn rd.modseal.pcr=23"));
        assert_eq!((p.mode, p.pcr), (BootMode::Enforce, 12));
        assert_eq!(
            p.ignored,
            [
                "rd.modseal=warn: the sealed policy does not allow weakening enforce mode",
                "rd.modseal.pcr=23: the sealed policy does not allow moving the measurement (PCR stays 12)",
            ]
        );
        let p = resolve(&strict, &cfg, &on("rd.modseal=off"));
        assert_eq!(p.mode, BootMode::Enforce);
        // The same PCR as sealed is no request at all.
        assert!(resolve(&strict, &cfg, &on("rd.modseal.pcr=12"))
            .ignored
            .is_empty());
        let loose = sealed(SealedMode::Enforce, 12, true);
        let p = resolve(&loose, &cfg, &on("rd.modseal=warn rd.modseal.pcr=23"));
        assert_eq!((p.mode, p.pcr), (BootMode::Warn, 23));
        assert!(p.ignored.is_empty());
        assert!(p.notes.iter().all(|(l, _)| *l == Level::Notice), "{p:?}");
        let p = resolve(&loose, &cfg, &on("rd.modseal=off rd.modseal.pcr=13"));
        assert_eq!(p.mode, BootMode::Off);
        assert_eq!(p.notes, vec![(Level::Notice, OFF_NOTICE.to_owned())]);
        // warn -> off is weakening too; strengthening always honoured.
        let warn = sealed(SealedMode::Warn, 14, false);
        assert_eq!(
            resolve(&warn, &cfg, &on("rd.modseal=off")).mode,
            BootMode::Warn
        );
        let p = resolve(&warn, &cfg, &on("rd.modseal=enforce"));
        assert_eq!((p.mode, p.pcr), (BootMode::Enforce, 14));
        assert!(p.ignored.is_empty());
    }

    #[test]
    fn unknown_cmdline_values_are_ignored_and_the_last_one_counts() {
        let loose = sealed(SealedMode::Enforce, 12, true);
        let p = resolve(
            &loose,
            &Config::default(),
            &on("rd.modseal=warn rd.modseal=bogus rd.modseal.pcr=13 rd.modseal.pcr=99 rd.modseal.pcr=012"),
        );
        assert_eq!((p.mode, p.pcr), (BootMode::Enforce, 12));
        assert_eq!(
            p.ignored,
            [
                "rd.modseal=bogus: not enforce, warn or off",
                "rd.modseal.pcr=012: not a PCR index 0-23 (PCR stays 12)"
            ]
        );
        let p = resolve(&loose, &Config::default(), &on("rd.modseal rd.modseal=Off"));
        assert_eq!(p.mode, BootMode::Enforce);
    }

    #[test]
    fn flags_are_the_operators_on_a_host_and_policed_in_an_initramfs() {
        let strict = Settings::default();
        let cfg = Config::default();
        let host = Requests {
            cmdline: Some("rd.modseal=enforce rd.modseal.pcr=16"),
            flag_mode: Some(Mode::Warn),
            flag_pcr: Some(9),
            flag_modules: true,
            in_initramfs: false,
        };
        let p = resolve(&strict, &cfg, &host);
        assert_eq!((p.mode, p.pcr), (BootMode::Warn, 9));
        assert!(p.modules_override_allowed);
        let initrd = Requests {
            in_initramfs: true,
            ..host
        };
        let p = resolve(&strict, &cfg, &initrd);
        assert_eq!((p.mode, p.pcr), (BootMode::Enforce, 12));
        assert!(!p.modules_override_allowed);
        assert_eq!(
            p.ignored,
            [
                "--modules: an initramfs verifies the running kernel's module directory",
                "rd.modseal.pcr=16: the sealed policy does not allow moving the measurement (PCR stays 12)",
                "--mode warn: the sealed policy does not allow weakening enforce mode",
                "--pcr 9: the sealed policy does not allow moving the measurement (PCR stays 12)",
            ]
        );
    }

    #[test]
    fn an_initramfs_talks_to_a_tpm_device_only() {
        assert_eq!(refuse_tcti("device:/dev/tpmrm0", true), None);
        assert_eq!(refuse_tcti("device:/dev/tpm0", true), None);
        assert_eq!(refuse_tcti("swtpm:port=2321", false), None);
        for bad in [
            "swtpm:port=2321",
            "mssim:host=x",
            "device:/tmp/sock",
            "device:/dev/../tmp/x",
            "cmd:x",
        ] {
            assert!(refuse_tcti(bad, true).is_some(), "{bad}");
        }
    }

    #[test]
    fn shell_options_fail_enforce_mode_unless_weakening_is_sealed() {
        let cfg = Config::default();
        let line = "ro rd.shell=1 rd.break=pre-mount";
        let p = resolve(&Settings::default(), &cfg, &on(line));
        assert_eq!(
            p.refused,
            ["kernel command line: rd.break=pre-mount can give a shell or stop a unit in the initramfs; the sealed policy does not allow it (allow-weaken no)"]
        );
        let loose = sealed(SealedMode::Enforce, 12, true);
        assert!(resolve(&loose, &cfg, &on(line)).refused.is_empty());
        let warn = sealed(SealedMode::Warn, 12, false);
        assert!(resolve(&warn, &cfg, &on(line)).refused.is_empty());
        assert!(resolve(&Settings::default(), &cfg, &on("ro rd.shell=1"))
            .refused
            .is_empty());
    }
}
