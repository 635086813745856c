//! Finding module files under the paths a user gave, and checking them on
//! several threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::image::compression::Compression;
use crate::trust::TrustStore;
use crate::verify::{Options, Report, Verdict};

/// A file to check, or a path that could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A file to check.
    File(PathBuf),
    /// A path that could not be walked, and why.
    Unreadable(PathBuf, String),
}

/// Expands the given paths: files as given, directories recursed for module
/// files (directory symlinks are not followed, so loops cannot happen).
/// Results are sorted within each directory so reports are stable.
pub fn collect(paths: &[PathBuf]) -> Vec<Item> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk_dir(p, &mut out),
            Ok(_) => out.push(Item::File(p.clone())),
            Err(e) => out.push(Item::Unreadable(p.clone(), e.to_string())),
        }
    }
    out
}

fn walk_dir(dir: &Path, out: &mut Vec<Item>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return out.push(Item::Unreadable(
                dir.to_owned(),
                format!("cannot read directory: {e}"),
            ))
        }
    };
    let mut children: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => children.push(e.path()),
            Err(e) => out.push(Item::Unreadable(
                dir.to_owned(),
                format!("cannot list directory: {e}"),
            )),
        }
    }
    children.sort();
    for child in children {
        let Ok(lmeta) = std::fs::symlink_metadata(&child) else {
            out.push(Item::Unreadable(child, "cannot stat".into()));
            continue;
        };
        let name = child
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if lmeta.is_dir() {
            walk_dir(&child, out);
        } else if Compression::is_module_name(&name) {
            // Module files that are symlinks are followed; directories are not.
            out.push(Item::File(child));
        }
    }
}

/// Checks every item on `jobs` threads; `progress` is called with the number
/// done so far (from worker threads).
pub fn verify_all(
    items: &[Item],
    trust: &TrustStore,
    opts: &Options,
    jobs: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Report>>> = Mutex::new(vec![None; items.len()]);
    let jobs = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut local = Vec::new();
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    local.push((i, check(item, trust, opts, &mut buf)));
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
                if let Ok(mut r) = results.lock() {
                    for (i, rep) in local {
                        if let Some(slot) = r.get_mut(i) {
                            *slot = Some(rep);
                        }
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    results
        .into_iter()
        .zip(items)
        .map(|(r, item)| r.unwrap_or_else(|| unchecked(item)))
        .collect()
}

fn check(item: &Item, trust: &TrustStore, opts: &Options, buf: &mut Vec<u8>) -> Report {
    match item {
        Item::File(p) => {
            crate::image::module::verify_file_with(p, &p.display().to_string(), trust, opts, buf)
        }
        Item::Unreadable(p, why) => io_report(p, why),
    }
}

fn io_report(p: &Path, why: &str) -> Report {
    Report {
        path: p.display().to_string(),
        verdict: Verdict::IoError,
        reason: why.to_owned(),
        signer: None,
        key_id: None,
        hash_algo: None,
        sha256: None,
        build_id_note: None,
    }
}

/// Fails closed if a worker died without reporting.
fn unchecked(item: &Item) -> Report {
    let p = match item {
        Item::File(p) | Item::Unreadable(p, _) => p,
    };
    io_report(p, "not checked (worker failed)")
}
