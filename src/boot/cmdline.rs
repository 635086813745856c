//! The kernel command line: `rd.modseal=` and `rd.modseal.pcr=` over the
//! config file, split the way the kernel splits it.

use crate::measure::Mode;
use crate::util::kmsg::Level;

use std::path::Path;

use super::config::Config;
use super::error::BootError;

/// The kernel command-line parameter of the mode (`modseal boot --cmdline`).
pub const CMDLINE_MODE: &str = "rd.modseal";
/// The kernel command-line parameter of the PCR (`modseal boot --cmdline`).
pub const CMDLINE_PCR: &str = "rd.modseal.pcr";

/// Reads a kernel command line file (the dracut hooks pass /proc/cmdline).
/// Like an unreadable config, an unreadable one is an error: the stage must
/// not run with settings other than those asked for (a dropped
/// `rd.modseal=enforce`).
pub fn read_cmdline(path: &Path) -> Result<String, BootError> {
    crate::util::read::read_capped(path, 1 << 16)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| BootError::CmdlineRead {
            path: path.to_owned(),
            source: e.into(),
        })
}

/// The kernel's `isspace()` (ASCII whitespace, vertical tab included).
fn kernel_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Splits a kernel command line into `(name, value)` parameters the way the
/// kernel does (`next_arg()` in lib/cmdline.c): words are separated by
/// whitespace outside double quotes; a value may be quoted (`foo="a b"`
/// gives `a b`) and so may a whole word (`"foo=a b"`). `value` is `None` for
/// a word without `=` (a leading `=` does not count: `=a` has no value,
/// `=a=b` is `=a` with `b`, as in the kernel).
/// Nothing is dropped, `--` and what follows included: dracut's `getarg`
/// reads the whole of /proc/cmdline too.
pub fn cmdline_params(text: &str) -> Vec<(String, Option<String>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && kernel_space(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            return out;
        }
        let quoted = chars[i] == '"';
        if quoted {
            i += 1;
        }
        let start = i;
        let mut in_quote = quoted;
        let mut equals = None;
        while i < chars.len() && (in_quote || !kernel_space(chars[i])) {
            // As in the kernel, a `=` first in the word does not count
            // (its `equals == 0` means "none yet"), a later one does.
            if equals.is_none() && chars[i] == '=' && i > start {
                equals = Some(i - start);
            }
            if chars[i] == '"' {
                in_quote = !in_quote;
            }
            i += 1;
        }
        let word = &chars[start..i];
        // The kernel cuts the word's last character when it is a quote
        // closing a quoted value or a quoted word.
        let last_quote = word.last() == Some(&'"');
        let text = |s: &[char]| s.iter().collect::<String>();
        match equals {
            None => {
                let end = if quoted && last_quote {
                    word.len() - 1
                } else {
                    word.len()
                };
                out.push((text(&word[..end]), None));
            }
            Some(eq) => {
                let mut from = eq + 1;
                let mut end = word.len();
                if word.get(from) == Some(&'"') {
                    from += 1;
                    if last_quote {
                        end -= 1;
                    }
                } else if quoted && last_quote {
                    end -= 1;
                }
                out.push((text(&word[..eq]), Some(text(&word[from..end.max(from)]))));
            }
        }
    }
}

/// The last occurrence of parameter `name`, as dracut's `getarg` takes it:
/// `None` if absent, `Some(None)` if the last one has no `=value`.
pub fn cmdline_last<'a>(
    params: &'a [(String, Option<String>)],
    name: &str,
) -> Option<Option<&'a str>> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref())
}

/// The mode a boot runs in, weakest first. `Off` exists only here, never in
/// the measured [`Mode`]: an `off` boot measures and logs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BootMode {
    /// Nothing verified, measured or logged.
    Off,
    /// [`Mode::Warn`].
    Warn,
    /// [`Mode::Enforce`].
    Enforce,
}

impl BootMode {
    /// An `rd.modseal=` value; anything else is unknown.
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "enforce" => Some(BootMode::Enforce),
            "warn" => Some(BootMode::Warn),
            "off" => Some(BootMode::Off),
            _ => None,
        }
    }

    /// The `rd.modseal=` value.
    pub fn name(self) -> &'static str {
        match self {
            BootMode::Off => "off",
            BootMode::Warn => "warn",
            BootMode::Enforce => "enforce",
        }
    }

    /// The measured mode, `None` for off.
    pub fn measured(self) -> Option<Mode> {
        match self {
            BootMode::Off => None,
            BootMode::Warn => Some(Mode::Warn),
            BootMode::Enforce => Some(Mode::Enforce),
        }
    }
}

impl From<Mode> for BootMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Enforce => BootMode::Enforce,
            Mode::Warn => BootMode::Warn,
        }
    }
}

/// Whether `rd.modseal=requested` is honoured over the configured mode: the
/// same or a stronger mode always is; a weaker one (enforce to warn or off,
/// and warn to off, which measures nothing) only with `allow-weaken = yes`.
pub fn cmdline_mode_allowed(configured: Mode, requested: BootMode, allow_weaken: bool) -> bool {
    requested >= BootMode::from(configured) || allow_weaken
}

/// An `rd.modseal.pcr=` value: a decimal PCR index 0-23 written without sign
/// or leading zero (the kernel would read `012` as octal, a shell as 12:
/// rather than guess, such a value is unknown).
pub fn parse_cmdline_pcr(v: &str) -> Option<u8> {
    let canonical =
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    v.parse::<u8>().ok().filter(|p| canonical && *p <= 23)
}

/// The mode and PCR a boot runs with, and what to say about how they were
/// chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The mode to run in.
    pub mode: BootMode,
    /// The PCR to measure into.
    pub pcr: u8,
    /// Messages for the kernel log, in order.
    pub notes: Vec<(Level, String)>,
}

/// The message line of an off boot.
pub const OFF_NOTICE: &str = "disabled by rd.modseal=off on the kernel command line (allow-weaken = yes): nothing verified or measured";

/// Applies the kernel command line `cmdline` (if any) over `cfg` (defaults
/// and config file), then the explicit `--mode` / `--pcr` flags over that.
///
/// The last occurrence of each parameter wins; an unknown value (the last
/// one) is ignored with a message naming it, so the configured value stays
/// (fail closed). `rd.modseal=` may weaken the configured mode only with
/// `allow-weaken = yes` ([`cmdline_mode_allowed`]); `rd.modseal.pcr=` is
/// always honoured. A flag is the operator's choice and is not checked.
pub fn resolve(
    cfg: &Config,
    cmdline: Option<&str>,
    flag_mode: Option<Mode>,
    flag_pcr: Option<u8>,
) -> Resolved {
    let params = cmdline.map(cmdline_params).unwrap_or_default();
    let mut notes = Vec::new();
    let mut mode = mode_from_cmdline(cfg, &params, flag_mode, &mut notes);
    let mut pcr = pcr_from_cmdline(cfg, &params, flag_pcr, &mut notes);
    if let Some(m) = flag_mode {
        mode = m.into();
    }
    if let Some(p) = flag_pcr {
        pcr = p;
    }
    if mode == BootMode::Off {
        // One line says it all: nothing runs, so the PCR is moot.
        notes.retain(|(_, n)| n == OFF_NOTICE);
    }
    Resolved { mode, pcr, notes }
}

/// A parameter as the messages show it: `name=value`, or `name` alone.
fn shown(name: &str, v: Option<&str>) -> String {
    match v {
        Some(v) => format!("{name}={v}"),
        None => name.to_owned(),
    }
}

/// The mode `rd.modseal=` leaves (before `--mode`), noting why.
fn mode_from_cmdline(
    cfg: &Config,
    params: &[(String, Option<String>)],
    flag_mode: Option<Mode>,
    notes: &mut Vec<(Level, String)>,
) -> BootMode {
    let configured = cfg.mode;
    let Some(v) = cmdline_last(params, CMDLINE_MODE) else {
        return BootMode::from(configured);
    };
    let arg = shown(CMDLINE_MODE, v);
    let requested = match (v.and_then(BootMode::parse), flag_mode) {
        (None, _) => {
            notes.push((
                Level::Warning,
                format!(
                    "{arg} ignored: not enforce, warn or off; mode stays {} (configuration)",
                    configured.name()
                ),
            ));
            return BootMode::from(configured);
        }
        (Some(_), Some(flag)) => {
            notes.push((
                Level::Info,
                format!("{arg} overridden by --mode {}", flag.name()),
            ));
            return BootMode::from(configured);
        }
        (Some(req), None) => req,
    };
    if !cmdline_mode_allowed(configured, requested, cfg.allow_weaken) {
        notes.push((
            Level::Warning,
            format!(
                "{arg} ignored: the configuration forbids weakening {} mode (allow-weaken = no)",
                configured.name()
            ),
        ));
        return BootMode::from(configured);
    }
    notes.push(mode_note(&arg, configured, requested));
    requested
}

/// The message of an honoured `rd.modseal=`.
fn mode_note(arg: &str, configured: Mode, requested: BootMode) -> (Level, String) {
    if requested == BootMode::Off {
        return (Level::Notice, OFF_NOTICE.to_owned());
    }
    let weaker = requested < BootMode::from(configured);
    let text = format!(
        "{arg}: {} mode from the kernel command line",
        requested.name()
    );
    if weaker {
        (
            Level::Notice,
            format!(
                "{text}, weaker than the configured {} (allow-weaken = yes)",
                configured.name()
            ),
        )
    } else {
        (Level::Info, text)
    }
}

/// The PCR `rd.modseal.pcr=` leaves (before `--pcr`), noting why.
fn pcr_from_cmdline(
    cfg: &Config,
    params: &[(String, Option<String>)],
    flag_pcr: Option<u8>,
    notes: &mut Vec<(Level, String)>,
) -> u8 {
    let Some(v) = cmdline_last(params, CMDLINE_PCR) else {
        return cfg.pcr;
    };
    let arg = shown(CMDLINE_PCR, v);
    match (v.and_then(parse_cmdline_pcr), flag_pcr) {
        (None, _) => {
            notes.push((
                Level::Warning,
                format!("{arg} ignored: not a PCR index 0-23; PCR stays {}", cfg.pcr),
            ));
            cfg.pcr
        }
        (Some(_), Some(flag)) => {
            notes.push((Level::Info, format!("{arg} overridden by --pcr {flag}")));
            cfg.pcr
        }
        (Some(p), None) => {
            notes.push((
                Level::Info,
                format!("{arg}: measuring into PCR {p} (kernel command line)"),
            ));
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::DEFAULT_PCR;

    fn p(n: &str, v: Option<&str>) -> (String, Option<String>) {
        (n.to_owned(), v.map(str::to_owned))
    }

    #[test]
    fn cmdline_splits_like_the_kernel() {
        assert_eq!(cmdline_params(""), vec![]);
        assert_eq!(cmdline_params(" \t\n "), vec![]);
        assert_eq!(
            cmdline_params("BOOT_IMAGE=/vmlinuz ro  quiet\trd.modseal=warn\n"),
            vec![
                p("BOOT_IMAGE", Some("/vmlinuz")),
                p("ro", None),
                p("quiet", None),
                p("rd.modseal", Some("warn")),
            ]
        );
        // A quoted value keeps its spaces and loses its quotes.
        assert_eq!(
            cmdline_params(r#"foo="a b" rd.modseal="off""#),
            vec![p("foo", Some("a b")), p("rd.modseal", Some("off"))]
        );
        // A quoted word, with or without a value.
        assert_eq!(
            cmdline_params(r#""rd.modseal=warn x" "bare word" y"#),
            vec![
                p("rd.modseal", Some("warn x")),
                p("bare word", None),
                p("y", None)
            ]
        );
        // Only the first `=` splits; an empty value is a value.
        assert_eq!(
            cmdline_params("a=b=c d= =e"),
            vec![p("a", Some("b=c")), p("d", Some("")), p("=e", None)]
        );
        assert_eq!(cmdline_params("=e=f"), vec![p("=e", Some("f"))]);
        // A quote inside a word protects spaces up to the closing one.
        assert_eq!(
            cmdline_params(r#"x=a"b c"d y"#),
            vec![p("x", Some(r#"a"b c"d"#)), p("y", None)]
        );
        // An unterminated quote runs to the end; `--` is kept.
        assert_eq!(
            cmdline_params(r#"-- rd.modseal.pcr=13 z="q r"#),
            vec![
                p("--", None),
                p("rd.modseal.pcr", Some("13")),
                p("z", Some("q r"))
            ]
        );
        assert_eq!(cmdline_params(r#"e="""#), vec![p("e", Some(""))]);
        assert_eq!(cmdline_params(r#"e=""#), vec![p("e", Some(""))]);
    }

    #[test]
    fn cmdline_last_occurrence_wins() {
        let ps = cmdline_params("rd.modseal=warn rd.modseal.pcr=13 rd.modseal=enforce rd.modseal");
        assert_eq!(cmdline_last(&ps, CMDLINE_MODE), Some(None));
        assert_eq!(cmdline_last(&ps, CMDLINE_PCR), Some(Some("13")));
        assert_eq!(cmdline_last(&ps, "rd.modsea"), None);
        let ps = cmdline_params("rd.modseal=warn rd.modseal=enforce");
        assert_eq!(cmdline_last(&ps, CMDLINE_MODE), Some(Some("enforce")));
    }

    #[test]
    fn pcr_values() {
        assert_eq!(parse_cmdline_pcr("0"), Some(0));
        assert_eq!(parse_cmdline_pcr("12"), Some(12));
        assert_eq!(parse_cmdline_pcr("23"), Some(23));
        for bad in [
            "24", "99", "", "012", "+12", "-1", " 12", "1e1", "0x0c", "256",
        ] {
            assert_eq!(parse_cmdline_pcr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn weakening_needs_allow_weaken() {
        use BootMode::*;
        // (configured, requested, allow-weaken, honoured)
        let table = [
            (Mode::Enforce, Enforce, false, true),
            (Mode::Enforce, Warn, false, false),
            (Mode::Enforce, Off, false, false),
            (Mode::Enforce, Enforce, true, true),
            (Mode::Enforce, Warn, true, true),
            (Mode::Enforce, Off, true, true),
            (Mode::Warn, Enforce, false, true),
            (Mode::Warn, Warn, false, true),
            (Mode::Warn, Off, false, false),
            (Mode::Warn, Enforce, true, true),
            (Mode::Warn, Warn, true, true),
            (Mode::Warn, Off, true, true),
        ];
        for (configured, requested, allow, want) in table {
            assert_eq!(
                cmdline_mode_allowed(configured, requested, allow),
                want,
                "{configured:?} + rd.modseal={} with allow-weaken={allow}",
                requested.name()
            );
        }
    }

    fn cfg(mode: Mode, allow_weaken: bool) -> Config {
        Config {
            mode,
            allow_weaken,
            ..Config::default()
        }
    }

    fn notes_text(r: &Resolved) -> String {
        r.notes
            .iter()
            .map(|(_, n)| n.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn resolve_weaken_refused_and_allowed() {
        for v in ["warn", "off"] {
            let line = format!("ro rd.modseal={v}");
            let r = resolve(&cfg(Mode::Enforce, false), Some(&line), None, None);
            assert_eq!(r.mode, BootMode::Enforce, "{v}");
            assert_eq!(
                r.notes,
                vec![(
                    Level::Warning,
                    format!(
                        "rd.modseal={v} ignored: the configuration forbids weakening enforce mode (allow-weaken = no)"
                    )
                )]
            );
        }
        let r = resolve(
            &cfg(Mode::Enforce, true),
            Some("rd.modseal=warn"),
            None,
            None,
        );
        assert_eq!(r.mode, BootMode::Warn);
        assert_eq!(r.notes[0].0, Level::Notice);
        assert!(notes_text(&r).contains("allow-weaken = yes"), "{r:?}");
        let r = resolve(
            &cfg(Mode::Enforce, true),
            Some("rd.modseal=off rd.modseal.pcr=13"),
            None,
            None,
        );
        assert_eq!(r.mode, BootMode::Off);
        assert_eq!(r.mode.measured(), None);
        assert_eq!(r.notes, vec![(Level::Notice, OFF_NOTICE.to_owned())]);
        // warn -> off is weakening too.
        let r = resolve(&cfg(Mode::Warn, false), Some("rd.modseal=off"), None, None);
        assert_eq!(r.mode, BootMode::Warn);
        assert!(
            notes_text(&r).contains("forbids weakening warn mode"),
            "{r:?}"
        );
        // Strengthening is always honoured.
        let r = resolve(
            &cfg(Mode::Warn, false),
            Some("rd.modseal=enforce"),
            None,
            None,
        );
        assert_eq!(r.mode, BootMode::Enforce);
        assert_eq!(r.notes[0].0, Level::Info);
    }

    #[test]
    fn resolve_unknown_values_keep_the_config() {
        let r = resolve(
            &cfg(Mode::Enforce, true),
            Some("rd.modseal=warn rd.modseal=bogus rd.modseal.pcr=13 rd.modseal.pcr=99"),
            None,
            None,
        );
        // The last occurrence wins even when unknown: nothing from earlier.
        assert_eq!(r.mode, BootMode::Enforce);
        assert_eq!(r.pcr, DEFAULT_PCR);
        let t = notes_text(&r);
        assert!(t.contains("rd.modseal=bogus ignored"), "{t}");
        assert!(t.contains("rd.modseal.pcr=99 ignored"), "{t}");
        assert!(r.notes.iter().all(|(l, _)| *l == Level::Warning), "{r:?}");
        let r = resolve(&cfg(Mode::Warn, true), Some("rd.modseal"), None, None);
        assert_eq!(r.mode, BootMode::Warn);
        assert!(notes_text(&r).contains("rd.modseal ignored"), "{r:?}");
        let r = resolve(&cfg(Mode::Warn, true), Some("rd.modseal=Off"), None, None);
        assert_eq!(r.mode, BootMode::Warn);
    }

    #[test]
    fn resolve_precedence() {
        let c = Config {
            pcr: 14,
            ..cfg(Mode::Warn, false)
        };
        // Nothing on the command line, or no command line: the config.
        for line in [None, Some(""), Some("quiet")] {
            let r = resolve(&c, line, None, None);
            assert_eq!((r.mode, r.pcr), (BootMode::Warn, 14));
            assert!(r.notes.is_empty());
        }
        // The command line over the config; the PCR always honoured, at Info.
        let r = resolve(&c, Some("rd.modseal.pcr=7 rd.modseal.pcr=16"), None, None);
        assert_eq!((r.mode, r.pcr), (BootMode::Warn, 16));
        assert_eq!(
            r.notes,
            vec![(
                Level::Info,
                "rd.modseal.pcr=16: measuring into PCR 16 (kernel command line)".to_owned()
            )]
        );
        let r = resolve(
            &cfg(Mode::Enforce, false),
            Some("rd.modseal.pcr=0"),
            None,
            None,
        );
        assert_eq!((r.mode, r.pcr), (BootMode::Enforce, 0));
        // Flags over the command line, weakening included.
        let r = resolve(
            &cfg(Mode::Enforce, false),
            Some("rd.modseal=enforce rd.modseal.pcr=16"),
            Some(Mode::Warn),
            Some(9),
        );
        assert_eq!((r.mode, r.pcr), (BootMode::Warn, 9));
        let t = notes_text(&r);
        assert!(
            t.contains("rd.modseal=enforce overridden by --mode warn"),
            "{t}"
        );
        assert!(t.contains("rd.modseal.pcr=16 overridden by --pcr 9"), "{t}");
        // A flag cannot be turned into off.
        let r = resolve(
            &cfg(Mode::Enforce, true),
            Some("rd.modseal=off"),
            Some(Mode::Enforce),
            None,
        );
        assert_eq!(r.mode, BootMode::Enforce);
    }
}
