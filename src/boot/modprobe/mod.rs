//! Module-loading configuration as the loaders read it: kmod's `modprobe.d`
//! (libkmod-config.c) and systemd's `modules-load.d`.
//!
//! An `install` or `remove` line makes libkmod run a shell command instead of
//! loading (or unloading) a module: any program in the image, run by PID 1
//! before any check. So every such command is listed with the exact text the
//! shell would get, and [`refused`] names those the sealed policy does not
//! allow. Every file read also gets its SHA-256 for the stage's record.
//!
//! The parser follows kmod byte for byte where it matters:
//! - lines are joined first: a `\` before a newline drops both; a `\` before
//!   any other character drops the `\` and keeps the character (`\\` is `\`);
//!   so a comment ending in `\` swallows the next line, as in kmod;
//! - a logical line starting with `#` is a comment, an empty one is skipped;
//!   a `#` after blanks is, for kmod, an unknown command (ignored with a
//!   warning): here it is a comment too, the effect being the same;
//! - words are split on space and tab only; the command of `install` and
//!   `remove` is everything after the one blank that ends the module name,
//!   untrimmed (kmod stores it so and hands it to `sh -c`), CR included: a
//!   CRLF file keeps its CR, as in kmod;
//! - module names get kmod's `-` → `_` (outside `[...]`); a name with an
//!   unbalanced `]` or `[`, or a command missing its arguments, is a line
//!   kmod ignores: recorded as [`Directive::Ignored`];
//! - `include` and `config` are deprecated and do nothing in kmod.
//!
//! Where kmod and this parser would differ, the file is refused instead
//! (fail closed): a NUL byte (kmod's C strings would end the line there) and
//! bytes that are not UTF-8.

mod parse;
mod scan;

use std::fmt;

pub use parse::{
    kind_of, parse_modprobe_conf, parse_modules_load, Command, ConfigFile, Directive, Kind,
    ParseError, DEPMOD_FILES, MAX_COMMANDS, MAX_FILE, MAX_LINE, MODPROBE_DIRS, MODULES_LOAD_DIRS,
};
pub use scan::{parse_file, scan, scan_module_dir, ModprobeError, MAX_FILES};

/// Which hook a refused command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// `install`.
    Install,
    /// `remove`.
    Remove,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Install => "install",
            Hook::Remove => "remove",
        })
    }
}

/// An `install`/`remove` command the sealed policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The file, relative to the root.
    pub path: String,
    /// Its first physical line.
    pub line: u32,
    /// `install` or `remove`.
    pub hook: Hook,
    /// The module it is for.
    pub module: String,
    /// The exact command text.
    pub command: String,
}

impl fmt::Display for Refusal {
    /// One line, control characters escaped: it goes to the kernel log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} line {}: \"{} {}\" would run {:?}, which the sealed policy does not allow",
            self.path.escape_debug(),
            self.line,
            self.hook,
            self.module.escape_debug(),
            self.command
        )
    }
}

/// Lists every `install`/`remove` command whose exact text is not in
/// `allowed`. In enforce mode each one stops the boot.
pub fn refused(files: &[ConfigFile], allowed: &[String]) -> Vec<Refusal> {
    let mut out = Vec::new();
    for file in files {
        for c in &file.commands {
            let (hook, module, command) = match &c.directive {
                Directive::Install { module, command } => (Hook::Install, module, command),
                Directive::Remove { module, command } => (Hook::Remove, module, command),
                _ => continue,
            };
            if allowed.iter().any(|a| a == command) {
                continue;
            }
            out.push(Refusal {
                path: file.path.clone(),
                line: c.line,
                hook,
                module: module.clone(),
                command: command.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_file_line_module_and_text() {
        let text = "options x y=1\ninstall foo /bin/true\nremove bar /sbin/evil\n\ninstall baz /bin/sh -c 'x\n'\n";
        let files =
            [parse_file("etc/modprobe.d/a\nb.conf", Kind::Modprobe, text.as_bytes()).unwrap()];
        let r = refused(&files, &["/bin/true".to_string()]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            r[0],
            Refusal {
                path: "etc/modprobe.d/a\nb.conf".into(),
                line: 3,
                hook: Hook::Remove,
                module: "bar".into(),
                command: "/sbin/evil".into(),
            }
        );
        assert_eq!(
            r[0].to_string(),
            "etc/modprobe.d/a\\nb.conf line 3: \"remove bar\" would run \"/sbin/evil\", which the sealed policy does not allow"
        );
        assert_eq!(r[1].line, 5);
        assert_eq!(r[1].command, "/bin/sh -c 'x");
        assert!(!r[1].to_string().contains('\n'));
        // Options, softdeps, aliases run nothing.
        let quiet = "options foo bar=1\nsoftdep foo pre: baz\nalias a foo\nblacklist b\n";
        let f = parse_file("etc/modprobe.d/x.conf", Kind::Modprobe, quiet.as_bytes()).unwrap();
        assert_eq!(refused(&[f], &[]), []);
        // Exact text: a blank more is another command.
        let r = refused(&files, &["/bin/true ".to_string()]);
        assert_eq!(r.len(), 3);
    }
}
