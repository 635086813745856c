//! The kernel command line, split the way the kernel splits it, and the
//! values of `rd.modseal=` and `rd.modseal.pcr=` (applied by `policy`).

use crate::measure::Mode;

use std::path::Path;

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

/// Kernel command-line options that give a shell or stop units in the
/// initramfs, whatever the checks find: dracut's breakpoints and emergency
/// shell, systemd's emergency/rescue/debug shells, unit masking (which can
/// fail the switch to root into `emergency.target`) and confirm-spawn (which
/// pretends a unit ran), and systemd's extra mounts (which can mount a
/// filesystem of the attacker's over `/etc/modseal` or the module tree
/// before a stage reads it). `rd.shell` is not one: it only decides what a
/// failure does, and modseal's failures halt. Each one found, as written.
pub fn shell_options(params: &[(String, Option<String>)]) -> Vec<String> {
    let shell_target = |v: Option<&str>| {
        v.is_some_and(|t| {
            let t = t.trim_end_matches(".target");
            matches!(t, "emergency" | "rescue")
        })
    };
    let mut out = Vec::new();
    for (name, value) in params {
        let v = value.as_deref();
        let bare = name.strip_prefix("rd.").unwrap_or(name);
        let hit = match bare {
            "break" | "emergency" | "systemd.mount-extra" | "systemd.mount_extra" => true,
            "systemd.unit" => shell_target(v),
            "systemd.mask" | "systemd.confirm_spawn" => {
                !matches!(v, Some("0" | "no" | "false" | "off"))
            }
            "systemd.debug_shell" | "systemd.debug-shell" => {
                !matches!(v, Some("0" | "no" | "false" | "off"))
            }
            _ => name == "rdinit",
        };
        if hit {
            out.push(match v {
                Some(v) => format!("{name}={v}"),
                None => name.clone(),
            });
        }
    }
    out
}

/// An `rd.modseal.pcr=` value: a decimal PCR index 0-23 written without sign
/// or leading zero (the kernel would read `012` as octal, a shell as 12:
/// rather than guess, such a value is unknown).
pub fn parse_cmdline_pcr(v: &str) -> Option<u8> {
    let canonical =
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    v.parse::<u8>().ok().filter(|p| canonical && *p <= 23)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn shell_options_are_found_in_both_spellings() {
        let ps = cmdline_params(
            "ro rd.shell=1 rd.break=pre-mount rd.systemd.unit=emergency.target systemd.unit=multi-user.target \
             systemd.mask=modseal-pre-pivot.service rd.systemd.debug_shell systemd.confirm_spawn=0 rdinit=/bin/sh \
             rd.emergency=reboot rd.break rd.systemd.mount-extra=/dev/vdb:/etc/modseal:ext4 \
             systemd.mount-extra=/dev/vdb:/usr:ext4",
        );
        assert_eq!(
            shell_options(&ps),
            [
                "rd.break=pre-mount",
                "rd.systemd.unit=emergency.target",
                "systemd.mask=modseal-pre-pivot.service",
                "rd.systemd.debug_shell",
                "rdinit=/bin/sh",
                "rd.emergency=reboot",
                "rd.break",
                "rd.systemd.mount-extra=/dev/vdb:/etc/modseal:ext4",
                "systemd.mount-extra=/dev/vdb:/usr:ext4",
            ]
        );
        assert!(shell_options(&cmdline_params("ro quiet rd.shell=1 rd.modseal=warn")).is_empty());
    }
}
