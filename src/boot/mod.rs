//! `modseal boot`: the initramfs flow, runnable on a host.
//!
//! Unseal and check the trust bundle, verify every module file, at pre-pivot
//! reconcile the loaded modules, then measure the outcome (failures too) into
//! the PCR with a matching event-log record. The TPM commands per run are a
//! fixed handful whatever the module count: one unseal, one bank query, one
//! extend, one read-back of the extended PCR.
//!
//! The mode and PCR come from, lowest precedence first: built-in defaults,
//! the config file, the kernel command line (`rd.modseal=`,
//! `rd.modseal.pcr=`, see [`resolve`]), explicit `--mode` / `--pcr` flags.

pub mod modprobe;
pub mod taint;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::measure::{Content, Mode, Stage, StageResult, UnsealOutcome};
use crate::tpm::{PcrBank, Tpm, TpmError};
use crate::trust::TrustStore;
use crate::util::kmsg::{Level, Sink};
use crate::verify::{Options, Report, Verdict};

pub const DEFAULT_CONFIG: &str = "/etc/modseal/modseal.conf";
pub const DEFAULT_TRUST: &str = "/etc/modseal/trust.bundle";
pub const DEFAULT_SEALED: &str = "/etc/modseal/sealed";
pub const DEFAULT_LOG: &str = "/run/log/modseal/tpm2-measure.log";
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
    pub trust: PathBuf,
    pub sealed: PathBuf,
    pub pcr: u8,
    pub mode: Mode,
    pub log: PathBuf,
    pub modules: Option<PathBuf>,
    pub tcti: Option<String>,
    /// Untrusted signer/intermediate certificates (a file or directory):
    /// modules signed by a key an anchor issued verify without re-sealing.
    pub certs: Option<PathBuf>,
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
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut c = Config::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .ok_or_else(|| format!("line {}: expected 'key = value'", n + 1))?;
            let bad = |what: &str| format!("line {}: {k}: {what}", n + 1);
            match k {
                "trust" => c.trust = v.into(),
                "sealed" => c.sealed = v.into(),
                "log" => c.log = v.into(),
                "modules" => c.modules = Some(v.into()),
                "certs" => c.certs = Some(v.into()),
                "tcti" => c.tcti = Some(v.into()),
                "pcr" => {
                    c.pcr = v
                        .parse()
                        .ok()
                        .filter(|p| *p <= 23)
                        .ok_or_else(|| bad("not a PCR index 0-23"))?
                }
                "mode" => {
                    c.mode = match v {
                        "enforce" => Mode::Enforce,
                        "warn" => Mode::Warn,
                        _ => return Err(bad("must be enforce or warn")),
                    }
                }
                "allow-weaken" => {
                    c.allow_weaken = match v {
                        "yes" | "true" | "1" => true,
                        "no" | "false" | "0" => false,
                        _ => return Err(bad("must be yes or no")),
                    }
                }
                _ => return Err(format!("line {}: unknown setting '{k}'", n + 1)),
            }
        }
        Ok(c)
    }
}

/// Kernel command-line parameters read by `modseal boot --cmdline`.
pub const CMDLINE_MODE: &str = "rd.modseal";
pub const CMDLINE_PCR: &str = "rd.modseal.pcr";

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
    Off,
    Warn,
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
    pub mode: BootMode,
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
    let shown = |name: &str, v: Option<&str>| match v {
        Some(v) => format!("{name}={v}"),
        None => name.to_owned(),
    };
    let mut notes = Vec::new();
    let configured = cfg.mode;
    let mut mode = BootMode::from(configured);
    if let Some(v) = cmdline_last(&params, CMDLINE_MODE) {
        let arg = shown(CMDLINE_MODE, v);
        match v.and_then(BootMode::parse) {
            None => notes.push((
                Level::Warning,
                format!(
                    "{arg} ignored: not enforce, warn or off; mode stays {} (configuration)",
                    configured.name()
                ),
            )),
            Some(_) if flag_mode.is_some() => notes.push((
                Level::Info,
                format!(
                    "{arg} overridden by --mode {}",
                    flag_mode.map(Mode::name).unwrap_or_default()
                ),
            )),
            Some(req) if !cmdline_mode_allowed(configured, req, cfg.allow_weaken) => notes.push((
                Level::Warning,
                format!(
                    "{arg} ignored: the configuration forbids weakening {} mode (allow-weaken = no)",
                    configured.name()
                ),
            )),
            Some(BootMode::Off) => {
                mode = BootMode::Off;
                notes.push((Level::Notice, OFF_NOTICE.to_owned()));
            }
            Some(req) => {
                mode = req;
                let weaker = req < BootMode::from(configured);
                notes.push((
                    if weaker { Level::Notice } else { Level::Info },
                    format!(
                        "{arg}: {} mode from the kernel command line{}",
                        req.name(),
                        if weaker {
                            format!(
                                ", weaker than the configured {} (allow-weaken = yes)",
                                configured.name()
                            )
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
        }
    }
    let mut pcr = cfg.pcr;
    if let Some(v) = cmdline_last(&params, CMDLINE_PCR) {
        let arg = shown(CMDLINE_PCR, v);
        match v.and_then(parse_cmdline_pcr) {
            None => notes.push((
                Level::Warning,
                format!("{arg} ignored: not a PCR index 0-23; PCR stays {}", cfg.pcr),
            )),
            Some(_) if flag_pcr.is_some() => notes.push((
                Level::Info,
                format!("{arg} overridden by --pcr {}", flag_pcr.unwrap_or_default()),
            )),
            Some(p) => {
                pcr = p;
                notes.push((
                    Level::Info,
                    format!("{arg}: measuring into PCR {p} (kernel command line)"),
                ));
            }
        }
    }
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

/// What one stage found and did.
#[derive(Debug)]
pub struct Outcome {
    pub content: Content,
    /// The record appended to the log.
    pub record: Vec<u8>,
    /// Banks the PCR was extended in (empty: not measured).
    pub measured: Vec<PcrBank>,
    /// The PCR read back after the extend: sha256 if measured there, else
    /// the first measured bank (`None`: not measured or the read failed).
    pub pcr_value: Option<(PcrBank, Vec<u8>)>,
    pub problems: Vec<String>,
    pub passed: bool,
}

/// Inputs of a stage besides the config.
pub struct StageInput<'a> {
    pub stage: Stage,
    pub modules_dir: &'a Path,
    /// `/proc/modules` contents, at pre-pivot.
    pub proc_modules: Option<String>,
    pub jobs: usize,
}

/// Runs one stage against `tpm` (an error if no TPM could be opened).
pub fn run_stage(
    cfg: &Config,
    input: &StageInput<'_>,
    tpm: Result<&mut dyn Tpm, TpmError>,
    sink: &mut Sink,
) -> Outcome {
    let started = Instant::now();
    let mut problems = Vec::new();
    let bundle = std::fs::read(&cfg.trust);
    let anchor = bundle
        .as_ref()
        .ok()
        .map(|b| crate::verify::algorithm::sha256(b));
    let mut tpm = tpm;
    let unseal = match (&bundle, &mut tpm) {
        (Err(e), _) => {
            problems.push(format!(
                "{}: cannot read trust bundle: {e}",
                cfg.trust.display()
            ));
            UnsealOutcome::BundleUnreadable
        }
        (Ok(_), Err(e)) => {
            problems.push(format!("no TPM: {e}"));
            UnsealOutcome::NoTpm
        }
        (Ok(b), Ok(t)) => match crate::seal::unseal_and_check(&mut **t, b, &cfg.sealed) {
            Ok(_) => UnsealOutcome::Ok,
            Err(f) => {
                problems.push(format!("unseal: {f}"));
                f.outcome()
            }
        },
    };
    let mut trust = TrustStore::default();
    if let Ok(b) = &bundle {
        match crate::trust::parse_bundle(&cfg.trust, b) {
            Ok((anchors, deny)) => {
                trust.anchors = anchors;
                trust.deny = deny;
            }
            Err(e) => problems.push(format!("trust bundle: {e}")),
        }
    }
    if let Some(c) = &cfg.certs {
        if let Err(e) = trust.add_cert_path(c) {
            problems.push(format!("certs: {e}"));
        }
    }
    let items = crate::image::walk::collect(&[input.modules_dir.to_path_buf()]);
    let reports =
        crate::image::walk::verify_all(&items, &trust, &Options::default(), input.jobs, &|_| {});
    for r in reports.iter().filter(|r| r.verdict != Verdict::Ok) {
        problems.push(format!("{}: {}: {}", r.path, r.verdict, r.reason));
    }
    let unverified = input
        .proc_modules
        .as_deref()
        .map(|pm| reconcile(pm, &reports));
    if let Some(u) = &unverified {
        for name in u {
            problems.push(format!("loaded module '{name}' has no verified file"));
        }
    }
    let root = input.modules_dir.display().to_string();
    let mut content = Content::new(
        input.stage,
        cfg.mode,
        anchor,
        unseal,
        &reports,
        &root,
        unverified,
    );
    if trust.anchors.is_empty() && content.passed() {
        content.result = StageResult::Fail;
    }
    let bytes = content.to_bytes();

    let mut measured = Vec::new();
    let mut pcr_value = None;
    match &mut tpm {
        Ok(t) => match measure(&mut **t, cfg.pcr, &bytes) {
            Ok(banks) => {
                // Read the PCR back, so the operator (and a boot test that
                // halts here) sees the value measured. One command, whatever
                // the module count. A read that fails right after a
                // successful extend means the TPM is misbehaving: it is a
                // problem and fails the stage (the record is still written,
                // the extend having happened).
                if let Some(bank) = read_back_bank(&banks) {
                    match t.pcr_read(bank, &[cfg.pcr]) {
                        Ok(v) if v.len() == 1 && v[0].len() == bank.digest_len() => {
                            pcr_value = v.into_iter().next().map(|d| (bank, d));
                        }
                        Ok(v) => problems.push(format!(
                            "reading PCR {} ({bank}) back after the extend: {} value(s) of {} bytes, expected one of {}",
                            cfg.pcr,
                            v.len(),
                            v.first().map_or(0, Vec::len),
                            bank.digest_len()
                        )),
                        Err(e) => problems.push(format!(
                            "reading PCR {} ({bank}) back after the extend: {e}",
                            cfg.pcr
                        )),
                    }
                }
                measured = banks;
            }
            Err(e) => problems.push(format!("measuring into PCR {}: {e}", cfg.pcr)),
        },
        Err(_) => problems.push(format!("not measured: no TPM, PCR {} unchanged", cfg.pcr)),
    }
    let banks_for_log = if measured.is_empty() {
        vec![PcrBank::Sha256]
    } else {
        measured.clone()
    };
    let record = crate::measure::record_bytes(cfg.pcr, &bytes, &banks_for_log);
    if let Err(e) = append_log(&cfg.log, &record) {
        problems.push(format!(
            "{}: cannot append the event log: {e}",
            cfg.log.display()
        ));
    }
    let passed = content.passed() && !measured.is_empty() && problems.is_empty();
    let level = if passed {
        Level::Info
    } else if cfg.mode == Mode::Enforce {
        Level::Err
    } else {
        Level::Warning
    };
    for p in &problems {
        sink.line(level, p);
    }
    let ok = reports.iter().filter(|r| r.verdict == Verdict::Ok).count();
    let commands = match &tpm {
        Ok(t) => t.commands(),
        Err(_) => 0,
    };
    let elapsed_ms = started.elapsed().as_millis();
    sink.line(
        if passed { Level::Notice } else { level },
        &format!(
            "{} stage: {ok} verified, {} failed; unseal {unseal}; {}; {commands} TPM commands; {elapsed_ms} ms; {}",
            input.stage.name(),
            reports.len() - ok,
            if measured.is_empty() {
                "NOT measured".to_owned()
            } else {
                format!(
                    "measured into PCR {}, banks {} ({})",
                    cfg.pcr,
                    measured
                        .iter()
                        .map(|b| b.name())
                        .collect::<Vec<_>>()
                        .join(","),
                    match &pcr_value {
                        Some((bank, v)) => format!("{bank} now {}", crate::util::hex::lower(v)),
                        None => "read-back failed".to_owned(),
                    }
                )
            },
            if passed {
                "pass".to_owned()
            } else {
                format!("FAIL ({} mode)", cfg.mode.name())
            }
        ),
    );
    Outcome {
        content,
        record,
        measured,
        pcr_value,
        problems,
        passed,
    }
}

/// The bank read back after an extend: sha256 if measured there, else the
/// first measured bank.
fn read_back_bank(measured: &[PcrBank]) -> Option<PcrBank> {
    measured
        .iter()
        .copied()
        .find(|b| *b == PcrBank::Sha256)
        .or_else(|| measured.first().copied())
}

/// Extends `pcr` in every active bank with the content's digest.
fn measure(tpm: &mut dyn Tpm, pcr: u8, content: &[u8]) -> Result<Vec<PcrBank>, TpmError> {
    let banks = tpm.active_banks()?;
    let digests = crate::measure::digests(content, &banks);
    tpm.pcr_extend(pcr, &digests)?;
    Ok(banks)
}

/// Appends one record with a single write, then syncs, so a crash leaves
/// whole records only.
pub fn append_log(path: &Path, record: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(record)?;
    f.sync_data()
}

/// Loaded modules (from `/proc/modules`) with no verified file. Names are
/// compared the kernel's way: `-` and `_` are the same.
pub fn reconcile(proc_modules: &str, reports: &[Report]) -> Vec<String> {
    let verified: std::collections::HashSet<String> = reports
        .iter()
        .filter(|r| r.verdict == Verdict::Ok)
        .filter_map(|r| module_name(&r.path))
        .collect();
    let mut missing: Vec<String> = proc_modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.replace('-', "_"))
        .filter(|n| !verified.contains(n))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

/// `.../foo-bar.ko.xz` → `foo_bar`.
pub fn module_name(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    let stem = [".ko.gz", ".ko.xz", ".ko.zst", ".ko"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))?;
    Some(stem.replace('-', "_"))
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

    #[test]
    fn read_back_prefers_sha256() {
        assert_eq!(read_back_bank(&[]), None);
        assert_eq!(
            read_back_bank(&[PcrBank::Sha1, PcrBank::Sha256, PcrBank::Sha384]),
            Some(PcrBank::Sha256)
        );
        assert_eq!(
            read_back_bank(&[PcrBank::Sha384, PcrBank::Sha512]),
            Some(PcrBank::Sha384)
        );
    }

    #[test]
    fn reconcile_maps_names() {
        let r = |p: &str, v| Report {
            path: p.into(),
            verdict: v,
            reason: String::new(),
            signer: None,
            key_id: None,
            hash_algo: None,
            sha256: None,
        };
        let reports = [
            r("/m/kernel/a-b.ko.xz", Verdict::Ok),
            r("/m/c.ko", Verdict::BadSignature),
        ];
        let pm = "a_b 16384 0 - Live 0x0\nc 100 0 - Live 0x0\nd 1 0 - Live 0x0\n";
        assert_eq!(
            reconcile(pm, &reports),
            vec!["c".to_owned(), "d".to_owned()]
        );
        assert_eq!(
            module_name("x/y/foo-bar.ko.zst").as_deref(),
            Some("foo_bar")
        );
        assert_eq!(module_name("x/README"), None);
    }
}
