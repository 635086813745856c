//! The parsers: kmod's for `modprobe.d` (and the depmod files it reads the
//! same way), systemd-modules-load's for `modules-load.d`. Text in, commands
//! out; no file system.

/// Largest configuration file read, in bytes.
pub const MAX_FILE: usize = 256 * 1024;
/// Longest logical line (continuation lines joined), in bytes.
pub const MAX_LINE: usize = 16 * 1024;
/// Most commands taken from one file.
pub const MAX_COMMANDS: usize = 10_000;

/// kmod's configuration directories under the root, highest precedence first
/// (libkmod.c `default_config_paths`).
pub const MODPROBE_DIRS: [&str; 5] = [
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "usr/lib/modprobe.d",
    "lib/modprobe.d",
];

/// systemd-modules-load's directories under the root, highest precedence
/// first (`/lib` for split-usr systems).
pub const MODULES_LOAD_DIRS: [&str; 5] = [
    "etc/modules-load.d",
    "run/modules-load.d",
    "usr/local/lib/modules-load.d",
    "usr/lib/modules-load.d",
    "lib/modules-load.d",
];

/// Files of a module directory that kmod parses with its configuration
/// parser (`kmod_config_new`), so an `install` line in them runs too.
pub const DEPMOD_FILES: [&str; 2] = ["modules.softdep", "modules.weakdep"];

/// Which loader reads a file, and so how it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A `modprobe.d` file (kmod's parser).
    Modprobe,
    /// A `modules-load.d` file: module names, one a line.
    ModulesLoad,
    /// `modules.softdep`/`modules.weakdep` of a module directory (kmod's
    /// parser).
    Depmod,
}

/// One configuration file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Path relative to the scanned root, as listed (a symbolic link's own
    /// path, not its target's).
    pub path: String,
    /// Which loader reads it.
    pub kind: Kind,
    /// SHA-256 of the file's exact bytes.
    pub sha256: [u8; 32],
    /// What it says, in file order.
    pub commands: Vec<Command>,
}

/// One command of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based number of the command's first physical line.
    pub line: u32,
    /// The command.
    pub directive: Directive,
}

/// A command as kmod (or systemd-modules-load) stores it. Module names are
/// kmod's (`-` → `_`); texts are exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `alias <wildcard> <module>`.
    Alias {
        /// The alias (a shell wildcard).
        alias: String,
        /// The module it names.
        module: String,
    },
    /// `options <module> <options>`: parameters, no program.
    Options {
        /// The module.
        module: String,
        /// The options, tabs made spaces as kmod does.
        options: String,
    },
    /// `install <module> <command>`: a shell command run instead of loading.
    Install {
        /// The module (a wildcard for kmod's `fnmatch`).
        module: String,
        /// The exact command text.
        command: String,
    },
    /// `remove <module> <command>`: a shell command run instead of unloading.
    Remove {
        /// The module (a wildcard for kmod's `fnmatch`).
        module: String,
        /// The exact command text.
        command: String,
    },
    /// `blacklist <module>`.
    Blacklist {
        /// The module.
        module: String,
    },
    /// `softdep <module> pre: … post: …`.
    Softdep {
        /// The module.
        module: String,
        /// The rest of the line.
        deps: String,
    },
    /// `weakdep <module> <modules…>`.
    Weakdep {
        /// The module.
        module: String,
        /// The rest of the line.
        deps: String,
    },
    /// `include` or `config`: kmod says they are deprecated and does nothing.
    Deprecated {
        /// The command word.
        word: String,
    },
    /// An unknown command, or a known one with missing or malformed
    /// arguments: kmod logs "ignoring bad line" and does nothing.
    Ignored {
        /// The first word of the line.
        word: String,
    },
    /// A `modules-load.d` line: a module (or alias) to load at boot.
    Load {
        /// The name, as written.
        module: String,
    },
}

/// Why a file's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Larger than [`MAX_FILE`].
    #[error("{size} bytes, more than the {cap}-byte limit")]
    TooLarge {
        /// The text's size.
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// A NUL byte: kmod's C strings would end the line there and hide the
    /// rest of it, so no exact text can be stated.
    #[error("line {line}: a NUL byte")]
    Nul {
        /// The physical line.
        line: u32,
    },
    /// Bytes that are not UTF-8.
    #[error("line {line}: not UTF-8")]
    NotUtf8 {
        /// The physical line.
        line: u32,
    },
    /// A logical line longer than [`MAX_LINE`].
    #[error("line {line}: longer than {cap} bytes")]
    LineTooLong {
        /// Its first physical line.
        line: u32,
        /// The cap.
        cap: usize,
    },
    /// More than [`MAX_COMMANDS`] commands.
    #[error("more than {cap} commands")]
    TooManyCommands {
        /// The cap.
        cap: usize,
    },
}

/// Parses a `modprobe.d` file (or a depmod file kmod parses the same way).
pub fn parse_modprobe_conf(text: &[u8]) -> Result<Vec<Command>, ParseError> {
    let text = check_text(text)?;
    let mut out = Vec::new();
    for item in LogicalLines::new(text) {
        let (line, logical) = item?;
        if let Some(directive) = parse_directive(&logical) {
            if out.len() == MAX_COMMANDS {
                return Err(ParseError::TooManyCommands { cap: MAX_COMMANDS });
            }
            out.push(Command { line, directive });
        }
    }
    Ok(out)
}

/// Parses a `modules-load.d` file as systemd-modules-load does: one name a
/// line, blanks (and CR) trimmed, empty lines and lines starting with `#`
/// or `;` skipped, no continuation lines. A lone CR ends a line too.
pub fn parse_modules_load(text: &[u8]) -> Result<Vec<Command>, ParseError> {
    let text = check_text(text)?;
    let mut out = Vec::new();
    for (i, physical) in text.split('\n').enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if physical.len() > MAX_LINE {
            return Err(ParseError::LineTooLong {
                line,
                cap: MAX_LINE,
            });
        }
        for piece in physical.split('\r') {
            let name = piece.trim_matches([' ', '\t']);
            if name.is_empty() || name.starts_with(['#', ';']) {
                continue;
            }
            if out.len() == MAX_COMMANDS {
                return Err(ParseError::TooManyCommands { cap: MAX_COMMANDS });
            }
            let module = name.to_owned();
            let directive = Directive::Load { module };
            out.push(Command { line, directive });
        }
    }
    Ok(out)
}

/// Which loader reads the file at `path` (root-relative; a leading `/` or
/// `./` is ignored), judged by its name alone: `None` for a file none reads.
/// Directory links are not followed: a reader of an image must resolve them.
pub fn kind_of(path: &str) -> Option<Kind> {
    let path = path.trim_start_matches("./").trim_start_matches('/');
    let (dir, name) = path.rsplit_once('/')?;
    if DEPMOD_FILES.contains(&name) {
        let release = dir
            .strip_prefix("lib/modules/")
            .or_else(|| dir.strip_prefix("usr/lib/modules/"))?;
        return (!release.is_empty() && !release.contains('/')).then_some(Kind::Depmod);
    }
    if !is_conf_name(name.as_bytes()) {
        return None;
    }
    if MODPROBE_DIRS.contains(&dir) {
        Some(Kind::Modprobe)
    } else if MODULES_LOAD_DIRS.contains(&dir) {
        Some(Kind::ModulesLoad)
    } else {
        None
    }
}

/// Size, NUL and UTF-8 checks, errors naming the physical line.
fn check_text(bytes: &[u8]) -> Result<&str, ParseError> {
    if bytes.len() > MAX_FILE {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            cap: MAX_FILE,
        });
    }
    let line_at = |pos: usize| {
        let newlines = bytes[..pos].iter().filter(|&&b| b == b'\n').count();
        u32::try_from(newlines + 1).unwrap_or(u32::MAX)
    };
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(ParseError::Nul { line: line_at(pos) });
    }
    std::str::from_utf8(bytes).map_err(|e| ParseError::NotUtf8 {
        line: line_at(e.valid_up_to()),
    })
}

/// kmod's `freadline_wrapped`: logical lines with the number of their first
/// physical line.
struct LogicalLines<'a> {
    chars: std::str::Chars<'a>,
    next_line: u32,
}

impl<'a> LogicalLines<'a> {
    fn new(text: &'a str) -> Self {
        LogicalLines {
            chars: text.chars(),
            next_line: 1,
        }
    }
}

impl Iterator for LogicalLines<'_> {
    type Item = Result<(u32, String), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.next_line;
        let mut buf = String::new();
        loop {
            let Some(c) = self.chars.next() else {
                // As kmod: at the end, an empty buffer is no line.
                return (!buf.is_empty()).then_some(Ok((first, buf)));
            };
            match c {
                '\n' => {
                    self.next_line = self.next_line.saturating_add(1);
                    return Some(Ok((first, buf)));
                }
                '\\' => match self.chars.next() {
                    Some('\n') => self.next_line = self.next_line.saturating_add(1),
                    Some(escaped) => buf.push(escaped),
                    None => {}
                },
                c => buf.push(c),
            }
            if buf.len() > MAX_LINE {
                // Nothing after an error is read: the caller stops here.
                self.chars = "".chars();
                let cap = MAX_LINE;
                return Some(Err(ParseError::LineTooLong { line: first, cap }));
            }
        }
    }
}

/// kmod's `strtok_r(…, "\t ")` walk over one logical line.
struct Tokens<'a> {
    rest: &'a str,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl<'a> Tokens<'a> {
    /// The next word; the one blank that ends it is consumed with it.
    fn word(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches(is_blank);
        let (word, rest) = match s.find(is_blank) {
            Some(end) => (&s[..end], &s[end + 1..]),
            None => (s, ""),
        };
        self.rest = rest;
        (!word.is_empty()).then_some(word)
    }

    /// `strtok_r(NULL, "")`: everything left, untrimmed, if anything is.
    fn rest(self) -> Option<&'a str> {
        (!self.rest.is_empty()).then_some(self.rest)
    }
}

/// kmod's `underscores`: `-` → `_` outside `[...]`; `None` for an
/// unbalanced bracket (kmod ignores the line).
fn underscores(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    let c = chars.next()?;
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// One logical line → its directive; `None` for a comment or blank line.
fn parse_directive(line: &str) -> Option<Directive> {
    if line.starts_with('#') {
        return None;
    }
    let mut t = Tokens { rest: line };
    let word = t.word()?;
    if word.starts_with('#') {
        return None;
    }
    let module = |t: &mut Tokens<'_>| t.word().and_then(underscores);
    let parsed = match word {
        "alias" => {
            let alias = module(&mut t);
            let target = module(&mut t);
            alias
                .zip(target)
                .map(|(alias, module)| Directive::Alias { alias, module })
        }
        "blacklist" => module(&mut t).map(|module| Directive::Blacklist { module }),
        "options" | "install" | "remove" | "softdep" | "weakdep" => {
            let name = module(&mut t);
            name.zip(t.rest()).map(|(m, rest)| with_rest(word, m, rest))
        }
        "include" | "config" => Some(Directive::Deprecated {
            word: word.to_owned(),
        }),
        _ => None,
    };
    Some(parsed.unwrap_or_else(|| Directive::Ignored {
        word: word.to_owned(),
    }))
}

/// The commands of the form `<word> <module> <rest of line>`.
fn with_rest(word: &str, module: String, rest: &str) -> Directive {
    let rest = rest.to_owned();
    match word {
        "options" => Directive::Options {
            module,
            options: rest.replace('\t', " "),
        },
        "install" => Directive::Install {
            module,
            command: rest,
        },
        "remove" => Directive::Remove {
            module,
            command: rest,
        },
        "softdep" => Directive::Softdep { module, deps: rest },
        _ => Directive::Weakdep { module, deps: rest },
    }
}

/// kmod's file filter: not hidden, at least one character before `.conf`.
pub(super) fn is_conf_name(name: &[u8]) -> bool {
    !name.starts_with(b".") && name.len() > 5 && name.ends_with(b".conf")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Command> {
        parse_modprobe_conf(text.as_bytes()).unwrap()
    }

    fn cmd(line: u32, directive: Directive) -> Command {
        Command { line, directive }
    }

    fn install(module: &str, command: &str) -> Directive {
        Directive::Install {
            module: module.into(),
            command: command.into(),
        }
    }

    fn ignored(word: &str) -> Directive {
        Directive::Ignored { word: word.into() }
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text =
            "# a comment\n\n   \n\t# indented comment\n#install a /bin/x\nblacklist floppy\n";
        assert_eq!(
            parse(text),
            [cmd(
                6,
                Directive::Blacklist {
                    module: "floppy".into()
                }
            )]
        );
    }

    #[test]
    fn continuation_lines_join_as_kmod_joins_them() {
        let text = "install foo /bin/a \\\n  && /bin/b\nremove foo \\\n/bin/c\n";
        assert_eq!(
            parse(text),
            [
                cmd(1, install("foo", "/bin/a   && /bin/b")),
                cmd(
                    3,
                    Directive::Remove {
                        module: "foo".into(),
                        command: "/bin/c".into()
                    }
                ),
            ]
        );
        // A comment ending in `\` takes the next line with it, as in kmod:
        // the install below never runs.
        assert_eq!(parse("# note \\\ninstall foo /bin/evil\n"), []);
        // And an install ending in `\` takes the comment into its command.
        assert_eq!(
            parse("install foo /bin/true \\\n# more\n"),
            [cmd(1, install("foo", "/bin/true # more"))]
        );
    }

    #[test]
    fn backslash_escapes_are_resolved_as_kmod_does() {
        assert_eq!(
            parse("install foo /bin/echo a\\;b\\\\c\n"),
            [cmd(1, install("foo", "/bin/echo a;b\\c"))]
        );
    }

    #[test]
    fn install_text_is_exact_and_options_are_plain() {
        let text = "options snd-hda-intel\tmodel=auto  power_save=1\ninstall\tfoo\t\t/bin/true  \n";
        assert_eq!(
            parse(text),
            [
                cmd(
                    1,
                    Directive::Options {
                        module: "snd_hda_intel".into(),
                        options: "model=auto  power_save=1".into()
                    }
                ),
                // One blank ends the name; the rest is kept untrimmed.
                cmd(2, install("foo", "\t/bin/true  ")),
            ]
        );
    }

    #[test]
    fn install_with_a_shell_command() {
        let text = "install usb-storage /bin/sh -c 'echo hi; /sbin/modprobe --ignore-install usb-storage'\n";
        assert_eq!(
            parse(text),
            [cmd(
                1,
                install(
                    "usb_storage",
                    "/bin/sh -c 'echo hi; /sbin/modprobe --ignore-install usb-storage'"
                )
            )]
        );
    }

    #[test]
    fn crlf_keeps_its_cr() {
        // kmod does not strip CR: the shell would get "/bin/true\r".
        let text = "install foo /bin/true\r\n\r\n# c\r\nblacklist bar\r\n";
        assert_eq!(
            parse(text),
            [
                cmd(1, install("foo", "/bin/true\r")),
                cmd(2, ignored("\r")),
                cmd(
                    4,
                    Directive::Blacklist {
                        module: "bar\r".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn last_line_without_newline() {
        assert_eq!(
            parse("options a b=1\ninstall foo /bin/x"),
            [
                cmd(
                    1,
                    Directive::Options {
                        module: "a".into(),
                        options: "b=1".into()
                    }
                ),
                cmd(2, install("foo", "/bin/x")),
            ]
        );
        // A final `\` is dropped.
        assert_eq!(
            parse("install foo /bin/x\\"),
            [cmd(1, install("foo", "/bin/x"))]
        );
        assert_eq!(parse(""), []);
        assert_eq!(parse("\\\n"), []);
    }

    #[test]
    fn malformed_and_unknown_lines_are_ignored_as_kmod_ignores_them() {
        let text = "install foo\ninstall\nalias a\nblacklist\nfrobnicate x\nalias a]b c\nblacklist a[b\ninstall foo \ninclude /etc/other.conf\nconfig x\n";
        let got: Vec<Directive> = parse(text).into_iter().map(|c| c.directive).collect();
        assert_eq!(
            got,
            [
                ignored("install"),
                ignored("install"),
                ignored("alias"),
                ignored("blacklist"),
                ignored("frobnicate"),
                ignored("alias"),
                ignored("blacklist"),
                ignored("install"),
                Directive::Deprecated {
                    word: "include".into()
                },
                Directive::Deprecated {
                    word: "config".into()
                },
            ]
        );
        // Two blanks after the name: the command is the second blank.
        assert_eq!(parse("install foo  \n"), [cmd(1, install("foo", " "))]);
    }

    #[test]
    fn names_get_underscores_outside_brackets() {
        assert_eq!(
            parse("alias pci:v[0-9]*d-x* foo-bar\n"),
            [cmd(
                1,
                Directive::Alias {
                    alias: "pci:v[0-9]*d_x*".into(),
                    module: "foo_bar".into()
                }
            )]
        );
        assert_eq!(
            parse("weakdep a-b c-d\n"),
            [cmd(
                1,
                Directive::Weakdep {
                    module: "a_b".into(),
                    deps: "c-d".into()
                }
            )]
        );
    }

    #[test]
    fn bytes_kmod_would_read_differently_are_refused() {
        assert_eq!(
            parse_modprobe_conf(b"# ok\ninstall foo /bin/\xff\n"),
            Err(ParseError::NotUtf8 { line: 2 })
        );
        assert_eq!(
            parse_modprobe_conf(b"options a b\n\ninstall foo /bin/true\0; /bin/evil\n"),
            Err(ParseError::Nul { line: 3 })
        );
        assert_eq!(
            parse_modules_load(b"virtio\xc3\n"),
            Err(ParseError::NotUtf8 { line: 1 })
        );
    }

    #[test]
    fn limits() {
        let big = vec![b'#'; MAX_FILE + 1];
        assert_eq!(
            parse_modprobe_conf(&big),
            Err(ParseError::TooLarge {
                size: MAX_FILE + 1,
                cap: MAX_FILE
            })
        );
        // A logical line over the cap, made of short physical lines.
        let long = format!("options a b\ninstall foo {}\n", "x\\\n".repeat(MAX_LINE));
        assert_eq!(
            parse_modprobe_conf(long.as_bytes()),
            Err(ParseError::LineTooLong {
                line: 2,
                cap: MAX_LINE
            })
        );
        let many = "blacklist a\n".repeat(MAX_COMMANDS);
        assert_eq!(parse(&many).len(), MAX_COMMANDS);
        let more = format!("{many}blacklist b\n");
        assert_eq!(
            parse_modprobe_conf(more.as_bytes()),
            Err(ParseError::TooManyCommands { cap: MAX_COMMANDS })
        );
        let long_name = format!("{}\n", "a".repeat(MAX_LINE + 1));
        assert_eq!(
            parse_modules_load(long_name.as_bytes()),
            Err(ParseError::LineTooLong {
                line: 1,
                cap: MAX_LINE
            })
        );
    }

    #[test]
    fn modules_load_lists_names() {
        let text = b"# comment\n; comment\n\n  virtio_blk  \r\nfoo-bar\r\n\tdm_crypt\\\n";
        let got = parse_modules_load(text).unwrap();
        let load = |line, module: &str| {
            cmd(
                line,
                Directive::Load {
                    module: module.into(),
                },
            )
        };
        assert_eq!(
            got,
            [
                load(4, "virtio_blk"),
                load(5, "foo-bar"),
                // No continuation lines in modules-load.d.
                load(6, "dm_crypt\\"),
            ]
        );
    }

    #[test]
    fn kind_of_knows_the_loaders_paths() {
        assert_eq!(kind_of("etc/modprobe.d/a.conf"), Some(Kind::Modprobe));
        assert_eq!(kind_of("/usr/lib/modprobe.d/a.conf"), Some(Kind::Modprobe));
        assert_eq!(kind_of("./lib/modprobe.d/a.conf"), Some(Kind::Modprobe));
        assert_eq!(
            kind_of("run/modules-load.d/x.conf"),
            Some(Kind::ModulesLoad)
        );
        assert_eq!(
            kind_of("usr/lib/modules/6.1.0-18-amd64/modules.softdep"),
            Some(Kind::Depmod)
        );
        assert_eq!(
            kind_of("lib/modules/6.1.0/modules.weakdep"),
            Some(Kind::Depmod)
        );
        assert_eq!(kind_of("lib/modules/6.1.0/kernel/modules.softdep"), None);
        assert_eq!(kind_of("etc/modprobe.d/.a.conf"), None);
        assert_eq!(kind_of("etc/modprobe.d/.conf"), None);
        assert_eq!(kind_of("etc/modprobe.d/a.conf.bak"), None);
        assert_eq!(kind_of("etc/modprobe.d/sub/a.conf"), None);
        assert_eq!(kind_of("etc/modprobe.conf"), None);
    }
}
