//! Reading a policy file: every error names its line.

use super::{
    cmdline_is_writable, path_is_writable, sha256_hex, stage_from_name, BootChain, ExpectedModule,
    KernelCert, ModeRule, Policy, HEADER, HEADER_V1, MAX_CMDLINE, MAX_KERNEL_CERTS, MAX_MODULES,
    MAX_POLICY_SIZE, VERDICTS,
};
use crate::tpm::PcrBank;
use crate::util::text::clip;
use crate::verify::Verdict;

/// Why a policy file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Larger than [`MAX_POLICY_SIZE`].
    #[error("{0} bytes, more than the {MAX_POLICY_SIZE}-byte limit")]
    TooLarge(usize),
    /// Not text.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A line that does not parse.
    #[error("line {line}: {problem}")]
    Line {
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        problem: LineError,
    },
    /// Nothing but comments and blank lines.
    #[error("empty: no '{HEADER}' header")]
    NoHeader,
    /// No expected trust-bundle digest.
    #[error("no 'anchor-sha256' line: at least one expected trust-bundle digest is required")]
    NoAnchor,
    /// More than [`MAX_MODULES`] `module` lines.
    #[error("more than {MAX_MODULES} modules")]
    TooManyModules,
    /// A module path given twice.
    #[error("module '{0}' listed twice")]
    ModuleTwice(String),
    /// A version 1 file: it cannot pin PCRs 4 and 9.
    #[error("policy v1 cannot pin the kernel and the initrd (PCRs 4 and 9): make a v2 policy with `modseal attest --make-policy --trust BUNDLE --initrd IMAGE --kernel VMLINUZ`")]
    Version1,
    /// No expected kernel digest.
    #[error("no 'kernel-sha256' line: at least one kernel digest (what the firmware measures into PCR 4) is required")]
    NoKernel,
    /// No expected initrd digest.
    #[error("no 'initrd-sha256' line: at least one initrd digest (what the EFI stub measures into PCR 9) is required")]
    NoInitrd,
    /// More than [`MAX_KERNEL_CERTS`] `kernel-module-cert` lines.
    #[error("more than {MAX_KERNEL_CERTS} kernel-module-cert lines")]
    TooManyKernelCerts,
}

/// What is wrong with one line of a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Something before the header.
    #[error("expected the header '{HEADER}' before anything else")]
    Header,
    /// A directive that may appear once, twice.
    #[error("'{0}' given twice")]
    Twice(&'static str),
    /// Not exactly one argument.
    #[error("'{key}' takes one {what}")]
    Arity {
        /// The directive.
        key: String,
        /// What it takes.
        what: &'static str,
    },
    /// `pcr` out of range.
    #[error("'{0}' is not a PCR index (0-23)")]
    Pcr(String),
    /// `bank` unknown.
    #[error("unknown bank '{0}' (sha1, sha256, sha384, sha512)")]
    Bank(String),
    /// Not 64 hex digits.
    #[error("'{0}' is not a SHA-256 (64 hex digits)")]
    Sha256(String),
    /// `mode` unknown.
    #[error("unknown mode '{0}' (enforce, warn, any)")]
    Mode(String),
    /// `stages` with no name or too many.
    #[error("'stages' takes 1 to 16 stage names")]
    StageCount,
    /// A stage name unknown.
    #[error("unknown stage '{0}' (early, pre-pivot)")]
    Stage(String),
    /// A verdict name unknown.
    #[error("unknown verdict '{0}'")]
    Verdict(String),
    /// `allow-content-type` of modseal's own records.
    #[error("'{0}' records are always checked, they cannot be allowed as foreign")]
    AlwaysChecked(String),
    /// A content type with control characters, or too long.
    #[error("content type is not printable")]
    ContentType,
    /// `module` without exactly a digest and a path.
    #[error("'module' takes a SHA-256 and a path (no spaces)")]
    ModuleArity,
    /// A module path a policy cannot hold.
    #[error("module path is not printable")]
    ModulePath,
    /// `cmdline` without a command line, or one a policy cannot hold.
    #[error("'cmdline' takes the command line after one space: 1 to {MAX_CMDLINE} bytes, no control characters")]
    Cmdline,
    /// `kernel-module-cert` without exactly two digests.
    #[error("'kernel-module-cert' takes a kernel SHA-256 and a certificate SHA-256 (64 hex digits each)")]
    KernelCertArity,
    /// `kernel-module-cert` of a kernel no `kernel-sha256` line allows.
    #[error("'kernel-module-cert' names kernel {0}, which no 'kernel-sha256' line allows")]
    KernelCertKernel(String),
    /// A directive modseal does not know (clipped for the message).
    #[error("unknown directive '{0}'")]
    Directive(String),
}

/// The text before a comment: `#` at the start or after whitespace.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return &line[..i];
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// The policy as it is read, line by line.
struct Builder {
    policy: Policy,
    seen: Vec<&'static str>,
    verdicts: Vec<Verdict>,
    modules: Vec<ExpectedModule>,
    boot: BootChain,
    /// The line being read, and each `kernel-module-cert`'s line.
    line: usize,
    cert_lines: Vec<(usize, KernelCert)>,
}

/// A line's failure, before its number is known.
enum Fail {
    Line(LineError),
    File(PolicyError),
}

impl From<LineError> for Fail {
    fn from(e: LineError) -> Self {
        Fail::Line(e)
    }
}

fn one<'a>(key: &str, args: &[&'a str], what: &'static str) -> Result<&'a str, LineError> {
    match args {
        [a] => Ok(*a),
        _ => Err(LineError::Arity {
            key: key.to_owned(),
            what,
        }),
    }
}

impl Builder {
    fn once(&mut self, key: &'static str) -> Result<(), LineError> {
        if self.seen.contains(&key) {
            return Err(LineError::Twice(key));
        }
        self.seen.push(key);
        Ok(())
    }

    /// One directive and its arguments.
    fn directive(&mut self, key: &str, args: &[&str]) -> Result<(), Fail> {
        match key {
            "pcr" => {
                self.once("pcr")?;
                let v = one(key, args, "PCR index (0-23)")?;
                self.policy.pcr = match v.parse::<u8>() {
                    Ok(x) if x <= 23 => x,
                    _ => return Err(LineError::Pcr(v.to_owned()).into()),
                };
            }
            "bank" => {
                self.once("bank")?;
                let v = one(key, args, "bank (sha1, sha256, sha384, sha512)")?;
                self.policy.bank =
                    PcrBank::from_name(v).ok_or_else(|| LineError::Bank(v.to_owned()))?;
            }
            "anchor-sha256" => {
                let v = one(key, args, "SHA-256 (64 hex digits)")?;
                let h = sha256_hex(v).ok_or_else(|| LineError::Sha256(v.to_owned()))?;
                if !self.policy.anchors.contains(&h) {
                    self.policy.anchors.push(h);
                }
            }
            "mode" => {
                self.once("mode")?;
                self.policy.mode = match one(key, args, "mode (enforce, warn, any)")? {
                    "enforce" => ModeRule::Enforce,
                    "warn" => ModeRule::Warn,
                    "any" => ModeRule::Any,
                    v => return Err(LineError::Mode(v.to_owned()).into()),
                };
            }
            "stages" => {
                self.once("stages")?;
                if args.is_empty() || args.len() > 16 {
                    return Err(LineError::StageCount.into());
                }
                self.policy.stages = args
                    .iter()
                    .map(|s| stage_from_name(s).ok_or_else(|| LineError::Stage((*s).to_owned())))
                    .collect::<Result<_, _>>()?;
            }
            "allow-verdict" => self.verdict(one(key, args, "verdict")?)?,
            "allow-content-type" => self.content_type(one(key, args, "content type")?)?,
            "module" => self.module(args)?,
            "kernel-sha256" => push_digest(&mut self.boot.kernels, key, args)?,
            "initrd-sha256" => push_digest(&mut self.boot.initrds, key, args)?,
            "boot-app-sha256" => push_digest(&mut self.boot.boot_apps, key, args)?,
            "kernel-module-cert" => self.kernel_cert(args)?,
            other => return Err(LineError::Directive(clip(other)).into()),
        }
        Ok(())
    }

    fn verdict(&mut self, v: &str) -> Result<(), LineError> {
        let verdict = VERDICTS
            .into_iter()
            .find(|x| x.name() == v)
            .ok_or_else(|| LineError::Verdict(v.to_owned()))?;
        if !self.verdicts.contains(&verdict) {
            self.verdicts.push(verdict);
        }
        Ok(())
    }

    fn content_type(&mut self, v: &str) -> Result<(), LineError> {
        if v == crate::measure::CONTENT_TYPE {
            return Err(LineError::AlwaysChecked(v.to_owned()));
        }
        if v.chars().any(char::is_control) || v.len() > 256 {
            return Err(LineError::ContentType);
        }
        let types = &mut self.policy.allow_content_types;
        if !types.iter().any(|t| t == v) {
            types.push(v.to_owned());
        }
        Ok(())
    }

    fn module(&mut self, args: &[&str]) -> Result<(), Fail> {
        let [h, path] = args else {
            return Err(LineError::ModuleArity.into());
        };
        let sha256 = sha256_hex(h).ok_or_else(|| LineError::Sha256((*h).to_owned()))?;
        if !path_is_writable(path) {
            return Err(LineError::ModulePath.into());
        }
        if self.modules.len() == MAX_MODULES {
            return Err(Fail::File(PolicyError::TooManyModules));
        }
        self.modules.push(ExpectedModule {
            sha256,
            path: (*path).to_owned(),
        });
        Ok(())
    }

    fn kernel_cert(&mut self, args: &[&str]) -> Result<(), Fail> {
        let [k, c] = args else {
            return Err(LineError::KernelCertArity.into());
        };
        let digest = |v: &str| sha256_hex(v).ok_or_else(|| LineError::Sha256(clip(v)));
        let cert = KernelCert {
            kernel: digest(k)?,
            cert: digest(c)?,
        };
        if self.cert_lines.len() == MAX_KERNEL_CERTS {
            return Err(Fail::File(PolicyError::TooManyKernelCerts));
        }
        self.cert_lines.push((self.line, cert));
        Ok(())
    }

    fn cmdline(&mut self, value: &str) -> Result<(), LineError> {
        if !cmdline_is_writable(value) {
            return Err(LineError::Cmdline);
        }
        if !self.boot.cmdlines.iter().any(|c| c == value) {
            self.boot.cmdlines.push(value.to_owned());
        }
        Ok(())
    }

    /// The policy, once every line was read.
    fn finish(mut self) -> Result<Policy, PolicyError> {
        let mut p = self.policy;
        if p.anchors.is_empty() {
            return Err(PolicyError::NoAnchor);
        }
        self.verdicts.sort();
        p.allow_verdicts = self.verdicts;
        if !self.modules.is_empty() {
            self.modules.sort_by(|a, b| a.path.cmp(&b.path));
            if let Some(w) = self.modules.windows(2).find(|w| w[0].path == w[1].path) {
                return Err(PolicyError::ModuleTwice(w[0].path.clone()));
            }
            p.modules = Some(self.modules);
        }
        let mut boot = self.boot;
        if boot.kernels.is_empty() {
            return Err(PolicyError::NoKernel);
        }
        if boot.initrds.is_empty() {
            return Err(PolicyError::NoInitrd);
        }
        for (line, c) in self.cert_lines {
            if !boot.kernels.contains(&c.kernel) {
                return Err(PolicyError::Line {
                    line,
                    problem: LineError::KernelCertKernel(c.kernel),
                });
            }
            boot.module_certs.push(c);
        }
        boot.module_certs.sort();
        boot.module_certs.dedup();
        for v in [
            &mut boot.kernels,
            &mut boot.initrds,
            &mut boot.cmdlines,
            &mut boot.boot_apps,
        ] {
            v.sort();
            v.dedup();
        }
        p.boot = Some(boot);
        Ok(p)
    }
}

/// A SHA-256 argument, added to `list` unless there already.
fn push_digest(list: &mut Vec<String>, key: &str, args: &[&str]) -> Result<(), LineError> {
    let v = one(key, args, "SHA-256 (64 hex digits)")?;
    let h = sha256_hex(v).ok_or_else(|| LineError::Sha256(v.to_owned()))?;
    if !list.contains(&h) {
        list.push(h);
    }
    Ok(())
}

/// The value of a `cmdline` line: the rest of the raw line after the
/// directive and one space, verbatim (a command line may hold `#`).
fn cmdline_value(raw: &str) -> Option<&str> {
    let rest = raw.trim_start().strip_prefix("cmdline")?;
    match rest.chars().next() {
        None => Some(""),
        Some(' ') => Some(&rest[1..]),
        Some(c) if c.is_whitespace() => Some(rest),
        Some(_) => None,
    }
}

impl Policy {
    /// Parses a policy file. Every error names its line.
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
        if bytes.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| PolicyError::NotUtf8)?;
        let mut b = Builder {
            policy: Policy::default(),
            seen: Vec::new(),
            verdicts: vec![Verdict::Ok],
            modules: Vec::new(),
            boot: BootChain::default(),
            line: 0,
            cert_lines: Vec::new(),
        };
        let mut seen_header = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let at = |problem| PolicyError::Line { line, problem };
            let words: Vec<&str> = strip_comment(raw).split_whitespace().collect();
            let Some((key, args)) = words.split_first() else {
                continue;
            };
            if !seen_header {
                match strip_comment(raw).trim() {
                    HEADER => {}
                    HEADER_V1 => return Err(PolicyError::Version1),
                    _ => return Err(at(LineError::Header)),
                }
                seen_header = true;
                continue;
            }
            b.line = line;
            if let Some(value) = cmdline_value(raw) {
                b.cmdline(value).map_err(at)?;
                continue;
            }
            match b.directive(key, args) {
                Ok(()) => {}
                Err(Fail::Line(problem)) => return Err(at(problem)),
                Err(Fail::File(e)) => return Err(e),
            }
        }
        if !seen_header {
            return Err(PolicyError::NoHeader);
        }
        b.finish()
    }
}
