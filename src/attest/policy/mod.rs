//! The attestation policy: what a verifier expects a good boot to have
//! measured. A small text file (format in docs/attestation.md, "Attestation policy"):
//!
//! ```text
//! modseal-attest-policy v2
//! pcr 12                      # the measurement PCR (default 12)
//! bank sha256                 # the bank replayed and compared (default sha256)
//! anchor-sha256 <64 hex>      # repeatable; at least one required
//! mode enforce                # enforce | warn | any (default enforce)
//! stages early pre-pivot      # the exact records, in order (default early pre-pivot)
//! allow-verdict ok            # repeatable; `ok` is always allowed (default: only ok)
//! allow-content-type <type>   # repeatable: foreign records allowed on the PCR (default none)
//! module <sha256> <path>      # repeatable: the exact expected module set (default: any set)
//! kernel-sha256 <64 hex>      # repeatable; at least one: the kernel the firmware measured (PCR 4)
//! initrd-sha256 <64 hex>      # repeatable; at least one: the initrd the EFI stub measured (PCR 9)
//! cmdline <text>              # repeatable: the exact command line (PCR 9); default: any
//! boot-app-sha256 <64 hex>    # repeatable: EFI applications allowed before the kernel (PCR 4)
//! kernel-module-cert <kernel sha256> <cert sha256>  # repeatable: a certificate built into that kernel
//! ```
//!
//! A v1 file (`modseal-attest-policy v1`) is refused: it cannot pin the
//! kernel and the initrd, so a root user could replay a good log's records
//! into PCR 12 after any boot.

mod check;
mod derived;
mod from_host;
mod from_log;
mod parse;

pub use check::evaluate;
pub use derived::{any_derived, check_derived, DERIVED_NOT_CHECKED};
pub use from_host::{boot_chain, from_host, ChainFiles, HostInput, HostPolicyError};
pub use from_log::{from_log, MakePolicyError};
pub use parse::{LineError, PolicyError};

use crate::measure::{Mode, Stage};
use crate::tpm::PcrBank;
use crate::verify::Verdict;

/// The first line of every policy file.
pub const HEADER: &str = "modseal-attest-policy v2";
/// The first line of a version 1 file, refused ([`PolicyError::Version1`]).
pub const HEADER_V1: &str = "modseal-attest-policy v1";
/// A policy file larger than this is refused.
pub const MAX_POLICY_SIZE: usize = 4 * 1024 * 1024;
/// Bound on `module` lines (a kernel has a few thousand modules).
pub const MAX_MODULES: usize = 100_000;
/// Bound on `kernel-module-cert` lines (a kernel has a handful).
pub const MAX_KERNEL_CERTS: usize = 10_000;

/// Which measured modes are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeRule {
    /// Only `enforce` boots.
    Enforce,
    /// Only `warn` boots.
    Warn,
    /// Either.
    Any,
}

impl ModeRule {
    /// The name policy files use.
    pub fn name(self) -> &'static str {
        match self {
            ModeRule::Enforce => "enforce",
            ModeRule::Warn => "warn",
            ModeRule::Any => "any",
        }
    }

    /// Whether a boot measured in mode `m` is acceptable.
    pub fn allows(self, m: Mode) -> bool {
        matches!(
            (self, m),
            (ModeRule::Any, _) | (ModeRule::Enforce, Mode::Enforce) | (ModeRule::Warn, Mode::Warn)
        )
    }
}

/// One expected module: its file SHA-256 (lower-case hex) and path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct ExpectedModule {
    /// The module file's SHA-256, lower-case hex.
    pub sha256: String,
    /// Its path, relative to the module tree as records write it.
    pub path: String,
}

/// What the firmware and the kernel's EFI stub must have measured (policy v2).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BootChain {
    /// `kernel-sha256`: the digests the firmware may have measured into
    /// PCR 4 for the kernel (a PE image's Authenticode SHA-256), lower-case hex.
    pub kernels: Vec<String>,
    /// `initrd-sha256`: the SHA-256 of the initrd files allowed (PCR 9, the
    /// EFI stub's initrd event).
    pub initrds: Vec<String>,
    /// `cmdline`: the exact command lines allowed; empty: any.
    pub cmdlines: Vec<String>,
    /// `boot-app-sha256`: other EFI applications allowed in PCR 4 before
    /// the kernel (shim, a boot loader).
    pub boot_apps: Vec<String>,
    /// `kernel-module-cert`: the certificates built into the allowed
    /// kernels, which a record's derived anchor may name; sorted.
    pub module_certs: Vec<KernelCert>,
}

/// One `kernel-module-cert` line: a certificate built into a kernel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct KernelCert {
    /// The kernel's Authenticode SHA-256 (its `kernel-sha256`), lower-case hex.
    pub kernel: String,
    /// The SHA-256 of the certificate's DER, lower-case hex.
    pub cert: String,
}

impl BootChain {
    /// The certificates the policy allows in `kernel` (lower-case hex).
    pub fn certs_of(&self, kernel: &str) -> Vec<&str> {
        self.module_certs
            .iter()
            .filter(|c| c.kernel == kernel)
            .map(|c| c.cert.as_str())
            .collect()
    }
}

/// What a verifier expects a good boot to have measured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    /// The measurement PCR.
    pub pcr: u8,
    /// The bank replayed and compared.
    pub bank: PcrBank,
    /// Expected trust-bundle digests (lower-case hex). Empty only for the
    /// built-in default policy, which does not check anchors.
    pub anchors: Vec<String>,
    /// The modes accepted.
    pub mode: ModeRule,
    /// The exact records expected on the PCR, in order.
    pub stages: Vec<Stage>,
    /// Module verdicts accepted; always contains `ok`.
    pub allow_verdicts: Vec<Verdict>,
    /// Foreign record types allowed on the PCR.
    pub allow_content_types: Vec<String>,
    /// The exact module set, sorted by path; `None`: any set.
    pub modules: Option<Vec<ExpectedModule>>,
    /// The boot chain; `None` only for the built-in policy of `--no-policy`.
    pub boot: Option<BootChain>,
}

impl Default for Policy {
    /// No policy file: PCR 12, sha256, enforce, early then pre-pivot, every
    /// module ok; the anchor is reported but not checked.
    fn default() -> Self {
        Policy {
            pcr: 12,
            bank: PcrBank::Sha256,
            anchors: Vec::new(),
            mode: ModeRule::Enforce,
            stages: vec![Stage::Early, Stage::PrePivot],
            allow_verdicts: vec![Verdict::Ok],
            allow_content_types: Vec::new(),
            modules: None,
            boot: None,
        }
    }
}

/// Every verdict, for `allow-verdict`.
pub const VERDICTS: [Verdict; 9] = [
    Verdict::Ok,
    Verdict::Unsigned,
    Verdict::UnknownKey,
    Verdict::BadSignature,
    Verdict::Malformed,
    Verdict::UnsupportedAlgorithm,
    Verdict::Denied,
    Verdict::UntrustedChain,
    Verdict::IoError,
];

/// The stage a policy names.
pub fn stage_from_name(s: &str) -> Option<Stage> {
    match s {
        "early" => Some(Stage::Early),
        "pre-pivot" => Some(Stage::PrePivot),
        _ => None,
    }
}

/// Lower-case 64-digit hex of a SHA-256, or `None`.
pub fn sha256_hex(s: &str) -> Option<String> {
    (s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Whether a module path can be written as one policy token: no
/// whitespace or control characters, and no leading `#` (a comment).
pub fn path_is_writable(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 4096
        && !p.starts_with('#')
        && !p.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Policy {
    /// The policy as a file that [`Policy::parse`] reads back to the same policy.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        out.push_str(
            "# modseal attestation policy: see docs/attestation.md, \"Attestation policy\"\n",
        );
        out.push_str(&format!("pcr {}\nbank {}\n", self.pcr, self.bank));
        for a in &self.anchors {
            out.push_str(&format!("anchor-sha256 {a}\n"));
        }
        out.push_str(&format!("mode {}\n", self.mode.name()));
        let stages: Vec<&str> = self.stages.iter().map(|s| s.name()).collect();
        out.push_str(&format!("stages {}\n", stages.join(" ")));
        if let Some(b) = &self.boot {
            out.push_str(&b.render());
        }
        for v in &self.allow_verdicts {
            out.push_str(&format!("allow-verdict {v}\n"));
        }
        for t in &self.allow_content_types {
            out.push_str(&format!("allow-content-type {t}\n"));
        }
        if let Some(mods) = &self.modules {
            out.push_str(&format!(
                "# the exact module set: {} module(s)\n",
                mods.len()
            ));
            for m in mods {
                out.push_str(&format!("module {} {}\n", m.sha256, m.path));
            }
        }
        out
    }

    /// Whether the trust-bundle digest is checked (only the built-in
    /// default policy does not).
    pub fn checks_anchors(&self) -> bool {
        !self.anchors.is_empty()
    }
}

impl BootChain {
    /// The v2 lines, one per value, each directive's values sorted and deduplicated.
    fn render(&self) -> String {
        let mut out = String::new();
        for (key, values) in [
            ("kernel-sha256", &self.kernels),
            ("initrd-sha256", &self.initrds),
            ("cmdline", &self.cmdlines),
            ("boot-app-sha256", &self.boot_apps),
        ] {
            let mut v: Vec<&String> = values.iter().collect();
            v.sort();
            v.dedup();
            for x in v {
                out.push_str(&format!("{key} {x}\n"));
            }
        }
        let mut certs: Vec<&KernelCert> = self.module_certs.iter().collect();
        certs.sort();
        certs.dedup();
        for c in certs {
            out.push_str(&format!("kernel-module-cert {} {}\n", c.kernel, c.cert));
        }
        out
    }
}

/// Whether a command line can be written as a `cmdline` value: at least
/// one character, no control characters (line breaks included), at most
/// [`MAX_CMDLINE`] bytes.
pub fn cmdline_is_writable(c: &str) -> bool {
    !c.is_empty() && c.len() <= MAX_CMDLINE && !c.chars().any(char::is_control)
}

/// The longest `cmdline` value (x86's COMMAND_LINE_SIZE is 2048; others up to 4096).
pub const MAX_CMDLINE: usize = 4096;

/// One way the records break the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// The record (1-based log index), if one is to blame.
    pub record: Option<usize>,
    /// What is wrong, naming the record.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{parse_records, record_bytes, ModuleEntry};
    use crate::measure::{Content, Record, StageResult, UnsealOutcome};

    pub(crate) fn content(stage: Stage, mode: Mode, verdict: Verdict) -> Content {
        Content {
            version: crate::measure::CONTENT_VERSION,
            stage,
            mode,
            result: if verdict == Verdict::Ok {
                StageResult::Pass
            } else {
                StageResult::Fail
            },
            anchor_sha256: Some("ab".repeat(32)),
            unseal: UnsealOutcome::Ok,
            derived_anchor: None,
            modules: vec![
                ModuleEntry {
                    path: "kernel/a.ko".into(),
                    sha256: Some("01".repeat(32)),
                    key_id: Some("AA".into()),
                    hash_algo: Some("sha256".into()),
                    verdict: Verdict::Ok,
                    reason: None,
                },
                ModuleEntry {
                    path: "kernel/b.ko".into(),
                    sha256: Some("02".repeat(32)),
                    key_id: Some("AA".into()),
                    hash_algo: Some("sha256".into()),
                    verdict,
                    reason: (verdict != Verdict::Ok).then(|| "the\x1b[31m reason".into()),
                },
            ],
            unverified_loaded: Some(Vec::new()),
            ignored: Vec::new(),
            module_config: Vec::new(),
            config_refused: Vec::new(),
            loaded: Vec::new(),
        }
    }

    pub(crate) fn log_of(contents: &[Content]) -> Vec<Record> {
        let mut log = Vec::new();
        for c in contents {
            log.extend(record_bytes(
                12,
                &serde_json::to_vec(c).unwrap(),
                &[PcrBank::Sha1, PcrBank::Sha256],
            ));
        }
        parse_records(&log).unwrap()
    }

    /// The boot-chain lines every v2 policy needs.
    fn boot_lines() -> String {
        format!(
            "kernel-sha256 {}\ninitrd-sha256 {}\n",
            "c3".repeat(32),
            "af".repeat(32)
        )
    }

    fn good() -> Vec<Record> {
        log_of(&[
            content(Stage::Early, Mode::Enforce, Verdict::Ok),
            content(Stage::PrePivot, Mode::Enforce, Verdict::Ok),
        ])
    }

    #[test]
    fn parse_and_render_round_trip() {
        let text = format!(
            "# comment\n\n{HEADER}\npcr 13   # trailing comment\nbank sha384\nanchor-sha256 {}\nanchor-sha256 {}\n\
             mode any\nstages pre-pivot\nallow-verdict unsigned\nallow-content-type systemd\n\
             module {} kernel/x#y.ko\nmodule {} kernel/a.ko\n\
             initrd-sha256 {}\nkernel-sha256 {}\nkernel-sha256 {}\ninitrd-sha256 {}\n\
             cmdline  root=/dev/vda # not a comment \ncmdline quiet\nboot-app-sha256 {}\n",
            "AB".repeat(32),
            "cd".repeat(32),
            "01".repeat(32),
            "02".repeat(32),
            "BB".repeat(32),
            "cc".repeat(32),
            "aa".repeat(32),
            "bb".repeat(32),
            "0a".repeat(32),
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        let boot = p.boot.clone().unwrap();
        assert_eq!(boot.kernels, vec!["aa".repeat(32), "cc".repeat(32)]);
        assert_eq!(
            boot.initrds,
            vec!["bb".repeat(32)],
            "deduplicated, lower case"
        );
        // Verbatim after one space: the leading space and the `#` are kept.
        assert_eq!(
            boot.cmdlines,
            vec![
                " root=/dev/vda # not a comment ".to_owned(),
                "quiet".to_owned()
            ]
        );
        assert_eq!(boot.boot_apps, vec!["0a".repeat(32)]);
        assert_eq!(p.pcr, 13);
        assert_eq!(p.bank, PcrBank::Sha384);
        assert_eq!(p.anchors, vec!["ab".repeat(32), "cd".repeat(32)]);
        assert_eq!(p.mode, ModeRule::Any);
        assert_eq!(p.stages, vec![Stage::PrePivot]);
        assert_eq!(p.allow_verdicts, vec![Verdict::Ok, Verdict::Unsigned]);
        assert_eq!(p.allow_content_types, vec!["systemd".to_owned()]);
        let mods = p.modules.clone().unwrap();
        // `#` inside a token is not a comment; sorted by path.
        assert_eq!(mods[0].path, "kernel/a.ko");
        assert_eq!(mods[1].path, "kernel/x#y.ko");
        assert_eq!(Policy::parse(p.render().as_bytes()).unwrap(), p);
    }

    #[test]
    fn defaults_apply_to_a_minimal_file() {
        let p = Policy::parse(
            format!(
                "{HEADER}\nanchor-sha256 {}\n{}",
                "00".repeat(32),
                boot_lines()
            )
            .as_bytes(),
        )
        .unwrap();
        let d = Policy::default();
        assert_eq!((p.pcr, p.bank, p.mode), (d.pcr, d.bank, d.mode));
        assert_eq!(p.stages, d.stages);
        assert_eq!(p.allow_verdicts, vec![Verdict::Ok]);
        assert!(p.modules.is_none());
        let boot = p.boot.unwrap();
        assert!(boot.cmdlines.is_empty() && boot.boot_apps.is_empty());
    }

    #[test]
    fn malformed_policies_are_named() {
        let a = format!("anchor-sha256 {}\n", "00".repeat(32));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "header"),
            ("pcr 12\n".into(), "header"),
            (format!("{HEADER}\n"), "anchor-sha256"),
            (format!("{HEADER}\n{a}"), "no 'kernel-sha256' line"),
            (
                format!("{HEADER}\n{a}kernel-sha256 {}\n", "00".repeat(32)),
                "no 'initrd-sha256' line",
            ),
            (format!("{HEADER}\n{a}kernel-sha256 00\n"), "not a SHA-256"),
            (format!("{HEADER}\n{a}initrd-sha256\n"), "takes one SHA-256"),
            (
                format!("{HEADER}\n{a}boot-app-sha256 {0} {0}\n", "00".repeat(32)),
                "takes one SHA-256",
            ),
            (format!("{HEADER}\n{a}cmdline\n"), "line 3: 'cmdline' takes"),
            (
                format!("{HEADER}\n{a}cmdline \n"),
                "line 3: 'cmdline' takes",
            ),
            (
                format!("{HEADER}\n{a}cmdline\tx\n"),
                "line 3: 'cmdline' takes",
            ),
            (
                format!("{HEADER}\n{a}cmdlinex y\n"),
                "unknown directive 'cmdlinex'",
            ),
            (
                "modseal-attest-policy v3\n".into(),
                "line 1: expected the header",
            ),
            (format!("{HEADER}\n{a}pcr 24\n"), "not a PCR"),
            (format!("{HEADER}\n{a}pcr 1\npcr 2\n"), "twice"),
            (format!("{HEADER}\n{a}bank md5\n"), "unknown bank"),
            (format!("{HEADER}\nanchor-sha256 00\n"), "not a SHA-256"),
            (format!("{HEADER}\n{a}mode strict\n"), "unknown mode"),
            (format!("{HEADER}\n{a}stages early late\n"), "unknown stage"),
            (format!("{HEADER}\n{a}stages\n"), "1 to 16"),
            (
                format!("{HEADER}\n{a}allow-verdict fine\n"),
                "unknown verdict",
            ),
            (
                format!("{HEADER}\n{a}allow-content-type modseal\n"),
                "always checked",
            ),
            (format!("{HEADER}\n{a}module 00 x.ko\n"), "not a SHA-256"),
            (
                format!("{HEADER}\n{a}module {} a b.ko\n", "00".repeat(32)),
                "no spaces",
            ),
            (
                format!(
                    "{HEADER}\n{a}module {0} a.ko\nmodule {0} a.ko\n",
                    "00".repeat(32)
                ),
                "twice",
            ),
            (
                format!("{HEADER}\n{a}frobnicate yes\n"),
                "line 3: unknown directive",
            ),
        ];
        for (text, want) in cases {
            let e = Policy::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let err = |b: &[u8]| Policy::parse(b).unwrap_err().to_string();
        assert!(err(&[0xff, 0xfe]).contains("UTF-8"));
        let huge = vec![b'#'; MAX_POLICY_SIZE + 1];
        assert!(err(&huge).contains("limit"));
        assert_eq!(
            err(format!("{HEADER}\n{a}pcr 24\n").as_bytes()),
            "line 3: '24' is not a PCR index (0-23)"
        );
        assert_eq!(
            err(format!("{HEADER}\n{a}pcr 1 2\n").as_bytes()),
            "line 3: 'pcr' takes one PCR index (0-23)"
        );
        // A v1 file, whatever follows: refused, saying how to make a v2 one.
        let v1 = format!("# old\n{HEADER_V1}\n{a}");
        assert_eq!(Policy::parse(v1.as_bytes()), Err(PolicyError::Version1));
        assert_eq!(
            err(v1.as_bytes()),
            "policy v1 cannot pin the kernel and the initrd (PCRs 4 and 9): make a v2 policy with \
             `modseal attest --make-policy --trust BUNDLE --initrd IMAGE --kernel VMLINUZ`"
        );
    }

    #[test]
    fn kernel_module_certs_parse_render_and_name_their_line() {
        let (k, c1, c2) = ("c3".repeat(32), "11".repeat(32), "22".repeat(32));
        let text = format!(
            "{HEADER}\nanchor-sha256 {}\nkernel-module-cert {} {c2}\nkernel-module-cert {k} {}\n\
             kernel-module-cert {k} {c1}  # the build key\n{}",
            "00".repeat(32),
            k.to_ascii_uppercase(),
            c1.to_ascii_uppercase(),
            boot_lines()
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        let boot = p.boot.clone().unwrap();
        assert_eq!(
            boot.module_certs,
            vec![
                KernelCert {
                    kernel: k.clone(),
                    cert: c1.clone()
                },
                KernelCert {
                    kernel: k.clone(),
                    cert: c2.clone()
                }
            ],
            "lower case, sorted, deduplicated"
        );
        assert_eq!(boot.certs_of(&k), vec![c1.as_str(), c2.as_str()]);
        let rendered = p.render();
        assert!(
            rendered.contains(&format!(
                "initrd-sha256 {}\nkernel-module-cert {k} {c1}\nkernel-module-cert {k} {c2}\n",
                "af".repeat(32)
            )),
            "{rendered}"
        );
        assert_eq!(Policy::parse(rendered.as_bytes()).unwrap(), p);
        let err = |extra: &str| {
            let t = format!(
                "{HEADER}\nanchor-sha256 {}\n{}{extra}",
                "00".repeat(32),
                boot_lines()
            );
            Policy::parse(t.as_bytes()).unwrap_err().to_string()
        };
        assert_eq!(
            err(&format!("kernel-module-cert {k}\n")),
            "line 5: 'kernel-module-cert' takes a kernel SHA-256 and a certificate SHA-256 (64 hex digits each)"
        );
        assert_eq!(
            err(&format!("kernel-module-cert {k} {c1} {c2}\n")),
            "line 5: 'kernel-module-cert' takes a kernel SHA-256 and a certificate SHA-256 (64 hex digits each)"
        );
        assert_eq!(
            err(&format!("kernel-module-cert {k} 12\n")),
            "line 5: '12' is not a SHA-256 (64 hex digits)"
        );
        assert_eq!(
            err(&format!("\nkernel-module-cert {0} {c1}\n", "d4".repeat(32))),
            format!(
                "line 6: 'kernel-module-cert' names kernel {}, which no 'kernel-sha256' line allows",
                "d4".repeat(32)
            )
        );
        let many: String = (0..=MAX_KERNEL_CERTS)
            .map(|i| format!("kernel-module-cert {k} {i:064x}\n"))
            .collect();
        assert_eq!(err(&many), "more than 10000 kernel-module-cert lines");
    }

    #[test]
    fn good_log_passes_and_makes_a_policy_that_accepts_it() {
        let recs = good();
        let mut p = from_log(&recs, true).unwrap();
        p.boot = Some(BootChain {
            kernels: vec!["c3".repeat(32)],
            initrds: vec!["af".repeat(32), "0b".repeat(32)],
            cmdlines: vec!["quiet".into()],
            boot_apps: Vec::new(),
            module_certs: Vec::new(),
        });
        assert_eq!(p.anchors, vec!["ab".repeat(32)]);
        assert_eq!(p.stages, vec![Stage::Early, Stage::PrePivot]);
        assert_eq!(p.modules.as_ref().map(Vec::len), Some(2));
        assert!(evaluate(&p, &recs).is_empty());
        assert!(evaluate(&Policy::default(), &recs).is_empty());
        let text = p.render();
        assert!(text.starts_with("modseal-attest-policy v2\n"), "{text}");
        assert!(
            text.contains(&format!(
                "stages early pre-pivot\nkernel-sha256 {}\ninitrd-sha256 {}\ninitrd-sha256 {}\ncmdline quiet\n",
                "c3".repeat(32),
                "0b".repeat(32),
                "af".repeat(32)
            )),
            "{text}"
        );
        let mut sorted = p.clone();
        if let Some(b) = sorted.boot.as_mut() {
            b.initrds.sort();
        }
        assert_eq!(Policy::parse(text.as_bytes()).unwrap(), sorted);
    }

    #[test]
    fn violations_name_record_module_and_verdict() {
        let recs = log_of(&[
            content(Stage::Early, Mode::Warn, Verdict::BadSignature),
            content(Stage::PrePivot, Mode::Warn, Verdict::Ok),
        ]);
        let v = evaluate(&Policy::default(), &recs);
        assert_eq!(
            v[0].message,
            "record 1: (early) module kernel/b.ko: bad-signature: the?[31m reason"
        );
        assert_eq!(v[0].record, Some(1));
        assert!(v
            .iter()
            .any(|x| x.message.contains("mode warn, the policy requires enforce")));
        assert!(from_log(&recs, false)
            .unwrap_err()
            .to_string()
            .contains("not a passing boot"));
        // Allowed by the policy: only the mode is left, and `any` allows it.
        let mut p = Policy::default();
        p.allow_verdicts.push(Verdict::BadSignature);
        p.mode = ModeRule::Any;
        assert!(evaluate(&p, &recs).is_empty());
    }

    #[test]
    fn stages_anchor_modules_and_foreign_records() {
        let recs = good();
        let mut p = from_log(&recs, true).unwrap();
        // Only one record expected.
        p.stages = vec![Stage::Early];
        assert!(evaluate(&p, &recs)[0].message.starts_with("stages:"));
        p.stages = vec![Stage::Early, Stage::PrePivot];
        p.anchors = vec!["cd".repeat(32)];
        assert!(evaluate(&p, &recs)[0]
            .message
            .contains("unexpected trust anchor"));
        p.anchors = vec!["ab".repeat(32)];
        if let Some(m) = p.modules.as_mut() {
            m[0].sha256 = "ff".repeat(32);
            m.remove(1);
        }
        let v = evaluate(&p, &recs);
        assert!(
            v.iter()
                .any(|x| x.message.contains("module kernel/a.ko: sha256")),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|x| x.message.contains("unexpected module kernel/b.ko")),
            "{v:?}"
        );
        // A record relabelled to another content type is still seen.
        let mut relabelled = good();
        relabelled[1].content_type = "systemd".into();
        let v = evaluate(&Policy::default(), &relabelled);
        assert!(v[0].message.contains("relabelled"), "{v:?}");
        // A foreign record: refused unless allowed.
        let mut log = Vec::new();
        for r in good() {
            log.extend(record_bytes(12, &r.content, &[PcrBank::Sha256]));
        }
        let foreign = b"{\"x\":1}";
        let mut extra = record_bytes(12, foreign, &[PcrBank::Sha256]);
        let s = String::from_utf8(extra.clone())
            .unwrap()
            .replace("\"modseal\"", "\"other\"");
        extra = s.into_bytes();
        log.extend(extra);
        let recs = parse_records(&log).unwrap();
        assert!(evaluate(&Policy::default(), &recs)[0]
            .message
            .contains("foreign 'other'"));
        let mut p = Policy::default();
        p.allow_content_types.push("other".into());
        assert!(evaluate(&p, &recs).is_empty());
    }

    #[test]
    fn unseal_and_unverified_loaded() {
        let mut early = content(Stage::Early, Mode::Enforce, Verdict::Ok);
        early.unseal = UnsealOutcome::PcrChanged;
        let mut pp = content(Stage::PrePivot, Mode::Enforce, Verdict::Ok);
        pp.unverified_loaded = Some(vec!["rootkit".into()]);
        let v = evaluate(&Policy::default(), &log_of(&[early, pp.clone()]));
        assert!(v[0].message.contains("unseal pcr-changed"), "{v:?}");
        assert!(v[1].message.contains("rootkit"), "{v:?}");
        pp.unverified_loaded = None;
        let v = evaluate(
            &Policy::default(),
            &log_of(&[content(Stage::Early, Mode::Enforce, Verdict::Ok), pp]),
        );
        assert!(v[0].message.contains("not reconciled"), "{v:?}");
        // A module the kernel tainted E, a refused install command: each
        // named, whatever the mode and the module verdicts.
        let mut warn = content(Stage::PrePivot, Mode::Warn, Verdict::Ok);
        warn.loaded =
            vec!["module x: loaded although the kernel found no valid signature (taint E)".into()];
        warn.config_refused =
            vec!["etc/modprobe.d/e.conf line 1: \"install x\" would run \"y\"".into()];
        let policy = Policy {
            mode: ModeRule::Any,
            ..Policy::default()
        };
        let v = evaluate(
            &policy,
            &log_of(&[content(Stage::Early, Mode::Warn, Verdict::Ok), warn]),
        );
        let text: Vec<&str> = v.iter().map(|v| v.message.as_str()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].contains("loaded: module x: loaded although"),
            "{text:?}"
        );
        assert!(
            text[1].contains("module config refused: etc/modprobe.d/e.conf"),
            "{text:?}"
        );
    }

    #[test]
    fn logs_that_make_no_policy_say_why() {
        let err = |recs: &[Record]| from_log(recs, true).unwrap_err().to_string();
        assert_eq!(err(&[]), "the log has no modseal record");
        let mut foreign = good();
        foreign[1].content_type = "sys\x1btemd".into();
        assert_eq!(
            err(&foreign),
            "record 2: a foreign 'sys?temd' record: make the policy by hand (allow-content-type)"
        );
        let mut edited = good();
        edited[0].content.push(b' ');
        assert!(err(&edited).starts_with("record 1: "), "{}", err(&edited));
        let mut warn = content(Stage::PrePivot, Mode::Warn, Verdict::Ok);
        warn.unverified_loaded = Some(Vec::new());
        let mixed = log_of(&[content(Stage::Early, Mode::Enforce, Verdict::Ok), warn]);
        assert_eq!(
            err(&mixed),
            "record 2: mode warn, record 1 mode enforce: the log mixes modes"
        );
    }
}
