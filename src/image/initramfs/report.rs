//! One image's rows, with the verifiers' results, turned into reports in
//! the shape of `verify`'s, and the image's summary.

use super::cpio::{self, GroupContent, Row, RowKind, Walked};
use super::error::InitramfsError;
use super::outcome::ImageSummary;
use super::pool::Results;
use crate::image::compression::Compression;
use crate::trust::TrustStore;
use crate::verify::{self, Options, Report, Verdict};

fn failure(path: &str, verdict: Verdict, reason: String) -> Report {
    Report {
        path: path.to_owned(),
        verdict,
        reason,
        signer: None,
        key_id: None,
        hash_algo: None,
        sha256: None,
        build_id_note: None,
    }
}

/// Turns one image's rows into reports, with the verifiers' results. Each
/// row's path is the entry's, after `prefix` (the image's name when there
/// are several).
pub(super) fn resolve(
    image: &str,
    prefix: &str,
    walked: Result<Walked, InitramfsError>,
    results: &Results,
) -> (Vec<Report>, ImageSummary) {
    let w = match walked {
        Ok(w) => w,
        Err(e) => return unreadable(image, &e),
    };
    let mut reports = Vec::with_capacity(w.rows.len().saturating_add(1));
    for row in &w.rows {
        reports.push(row_report(row, prefix, &w, results));
    }
    let modules = reports.len();
    for p in &w.problems {
        reports.push(failure(image, Verdict::Malformed, p.to_string()));
    }
    if let Some(f) = &w.fatal {
        reports.push(failure(image, Verdict::Malformed, f.to_string()));
    }
    let summary = ImageSummary {
        path: image.to_owned(),
        members: w.members,
        entries: w.entries,
        unpacked: w.unpacked,
        modules,
        failed: w.fatal.is_some() || !w.problems.is_empty(),
        notes: w.notes,
    };
    (reports, summary)
}

/// An image that could not be opened: one report, nothing read.
fn unreadable(image: &str, e: &InitramfsError) -> (Vec<Report>, ImageSummary) {
    (
        vec![failure(image, Verdict::IoError, e.to_string())],
        ImageSummary {
            path: image.to_owned(),
            members: Vec::new(),
            entries: 0,
            unpacked: 0,
            modules: 0,
            failed: true,
            notes: Vec::new(),
        },
    )
}

/// One module entry's report: its own verdict, then what its path and
/// member add.
fn row_report(row: &Row, prefix: &str, w: &Walked, results: &Results) -> Report {
    let job = |id: usize| results.get(id).and_then(Option::as_ref);
    let path = format!("{prefix}{}", row.path);
    let mut r = match &row.kind {
        RowKind::Fixed { verdict, reason } => failure(&path, *verdict, reason.clone()),
        RowKind::Job { job: id } => match job(*id).and_then(|v| v.first()) {
            Some(r) => Report {
                path: path.clone(),
                ..r.clone()
            },
            None => failure(
                &path,
                Verdict::IoError,
                "not checked (worker failed)".into(),
            ),
        },
        RowKind::Link { group, format } => {
            link_report(&path, &row.path, w.groups.get(*group), *format, &job)
        }
    };
    if row.unsafe_path {
        let why = "an absolute path or one with '..' (reported, not followed)";
        if r.verdict == Verdict::Ok {
            r.verdict = Verdict::Malformed;
            r.reason = format!("{why}; the module itself verifies: {}", r.reason);
        } else {
            r.reason = format!("{why}; {}", r.reason);
        }
    }
    if w.members.len() > 1 && r.verdict != Verdict::Ok {
        if let Some(m) = w.members.get(row.member) {
            r.reason = format!("{} (in member {}, {})", r.reason, m.index, m.kind);
        }
    }
    r
}

/// A hard link's report: the verdict on the content its group ends with,
/// as the compression its own name says.
fn link_report<'a>(
    path: &str,
    name: &str,
    group: Option<&cpio::Group>,
    format: Compression,
    job: &dyn Fn(usize) -> Option<&'a Vec<Report>>,
) -> Report {
    let Some(g) = group else {
        return failure(
            path,
            Verdict::IoError,
            "not checked (no hard-link group)".into(),
        );
    };
    let from = g.data_from.as_deref().unwrap_or("");
    let note = if from.is_empty() || from == name {
        String::new()
    } else {
        format!(" (a hard link; its data is stored with '{from}')")
    };
    let mut r = match &g.content {
        GroupContent::Empty => crate::image::module::verify_bytes(
            &[],
            format,
            path,
            &TrustStore::default(),
            &Options::default(),
        ),
        GroupContent::TooLarge(size) => failure(
            path,
            Verdict::IoError,
            cpio::too_large(*size, verify::MAX_MODULE_SIZE),
        ),
        GroupContent::Unchecked => failure(
            path,
            Verdict::Malformed,
            format!(
                "a hard link whose data is stored with the earlier link '{from}' (newc writers store it with the last), \
                 which went past before any module name joined it: not checked"
            ),
        ),
        GroupContent::Checked { job: id, formats } => {
            let checked = formats
                .iter()
                .position(|&f| f == format)
                .and_then(|i| job(*id).and_then(|v| v.get(i)));
            match checked {
                Some(r) => Report {
                    path: path.to_owned(),
                    ..r.clone()
                },
                None => failure(
                    path,
                    Verdict::Malformed,
                    format!("a hard link whose data was checked as another compression than its name ({format}) says"),
                ),
            }
        }
    };
    r.reason.push_str(&note);
    r
}
