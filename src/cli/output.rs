//! The module report as `verify` and `check-initramfs` print it: one line per
//! failed module then a summary, or one JSON document.

use std::io::Write;

use super::{EXIT_FAIL, EXIT_OK};
use crate::verify::{Report, Verdict};

/// How a run's modules fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Modules whose verdict is `ok`.
    pub verified: usize,
    /// Every other module.
    pub failed: usize,
}

impl Tally {
    /// Counts the verdicts of `reports`.
    pub fn of(reports: &[Report]) -> Self {
        let failed = reports.iter().filter(|r| r.verdict != Verdict::Ok).count();
        Tally {
            verified: reports.len() - failed,
            failed,
        }
    }

    /// [`EXIT_OK`] when nothing failed, else [`EXIT_FAIL`].
    pub fn status(self) -> u8 {
        if self.failed == 0 {
            EXIT_OK
        } else {
            EXIT_FAIL
        }
    }
}

/// Prints `reports` to standard output, as text or (`json`) one JSON document,
/// and counts them. A report that cannot be written is said on standard error
/// and is [`EXIT_FAIL`]: a caller must not take a truncated report for a pass.
pub fn print_reports(reports: &[Report], json: bool) -> Result<Tally, u8> {
    let tally = Tally::of(reports);
    let mut out = std::io::stdout().lock();
    let written = if json {
        write_json(&mut out, reports, tally.verified, tally.failed)
    } else {
        write_text(&mut out, reports, tally.verified, tally.failed)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(tally),
        Err(e) => {
            eprintln!("modseal: error: writing the report: {e}");
            Err(EXIT_FAIL)
        }
    }
}

/// A generated file's text: to `out` (written atomically) or standard
/// output; the exit status.
pub fn emit_text(out: Option<&std::path::Path>, text: &str) -> u8 {
    match out {
        None => {
            print!("{text}");
            EXIT_OK
        }
        Some(path) => match crate::util::fs::write_atomic(path, text.as_bytes()) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("modseal: error: {}: {e}", path.display());
                EXIT_FAIL
            }
        },
    }
}

/// `PATH: VERDICT: reason` for each failed module, then `N verified, M failed`.
pub fn write_text(
    out: &mut impl Write,
    reports: &[Report],
    verified: usize,
    failed: usize,
) -> std::io::Result<()> {
    for r in reports.iter().filter(|r| r.verdict != Verdict::Ok) {
        writeln!(
            out,
            "{}: {}: {}",
            one_line(&r.path),
            r.verdict,
            one_line(&r.reason)
        )?;
    }
    writeln!(out, "{verified} verified, {failed} failed")
}

/// `{"modules": [...], "verified": N, "failed": M}` on one line.
pub fn write_json(
    out: &mut impl Write,
    reports: &[Report],
    verified: usize,
    failed: usize,
) -> std::io::Result<()> {
    let doc = serde_json::json!({ "modules": reports, "verified": verified, "failed": failed });
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

/// Reasons can quote untrusted bytes; keep each report to one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports() -> Vec<Report> {
        vec![
            Report::new("a.ko", Verdict::Ok, ""),
            Report::new("b\n.ko", Verdict::Unsigned, "no signature\r\x1b[2J"),
        ]
    }

    #[test]
    fn text_lists_failures_on_one_line_each_then_the_summary() {
        let mut out = Vec::new();
        let t = Tally::of(&reports());
        write_text(&mut out, &reports(), t.verified, t.failed).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "b .ko: unsigned: no signature  [2J\n1 verified, 1 failed\n"
        );
        assert_eq!(t.status(), EXIT_FAIL);
    }

    #[test]
    fn json_is_one_document_with_the_counts() {
        let mut out = Vec::new();
        write_json(&mut out, &reports()[..1], 1, 0).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["verified"], 1);
        assert_eq!(v["failed"], 0);
        assert_eq!(v["modules"][0]["verdict"], "ok");
        assert_eq!(Tally::of(&reports()[..1]).status(), EXIT_OK);
    }
}
