//! The checks of a stage beyond the module files: the module-loading
//! configuration the loaders will obey, and what the kernel says is loaded.

use std::path::Path;

use crate::measure::{ConfigEntry, StageChecks};
use crate::trust::Settings;
use crate::verify::{Report, Verdict};

use super::modprobe::{self, ConfigFile, ModprobeError};
use super::names::module_name;
use super::taint::{self, Finding, VerifiedBuilds};

/// Every module-loading configuration file a boot with `modules_dir` reads
/// under `root`: `modprobe.d` and `modules-load.d` there, and the module
/// directory's `modules.softdep`/`weakdep`. A module directory outside
/// `root` (a host run) is scanned as its own root, named by its last
/// component.
pub fn module_config(root: &Path, modules_dir: &Path) -> Result<Vec<ConfigFile>, ModprobeError> {
    let mut files = modprobe::scan(root)?;
    let own = match modules_dir.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            modprobe::scan_module_dir(root, &rel.to_string_lossy())?
        }
        _ => match (modules_dir.parent(), modules_dir.file_name()) {
            (Some(parent), Some(name)) => {
                modprobe::scan_module_dir(parent, &name.to_string_lossy())?
            }
            _ => Vec::new(),
        },
    };
    files.extend(own);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// What `files` contribute to a record, and every command `allowed` does
/// not allow, each a refusal text.
pub fn config_checks(files: &[ConfigFile], sealed: &Settings) -> (Vec<ConfigEntry>, Vec<String>) {
    let entries = files
        .iter()
        .map(|f| ConfigEntry {
            path: f.path.clone(),
            sha256: crate::util::hex::lower(&f.sha256),
        })
        .collect();
    let refused = modprobe::refused(files, &sealed.allow_install)
        .iter()
        .map(ToString::to_string)
        .collect();
    (entries, refused)
}

/// Where a stage reads the running system.
#[derive(Debug, Clone, Copy)]
pub(super) struct System<'a> {
    /// `/` at boot.
    pub root: &'a Path,
    /// The module tree verified.
    pub modules_dir: &'a Path,
    /// Another file read as `/proc/modules` (host tests).
    pub proc_modules: Option<&'a Path>,
    /// The initramfs's root underneath later mounts, read as well.
    pub underneath: Option<&'a Path>,
}

/// Reads and checks the module configuration: each refusal (or a file that
/// cannot be read as kmod would) is a problem and goes into the record.
pub(super) fn config_step(
    input: System<'_>,
    sealed: &Settings,
    checks: &mut StageChecks,
    problems: &mut Vec<String>,
) {
    let files = module_config(input.root, input.modules_dir).and_then(|mut files| {
        if let Some(under) = input.underneath {
            let rel = input
                .modules_dir
                .strip_prefix(input.root)
                .unwrap_or(input.modules_dir);
            files.extend(module_config(under, &under.join(rel))?);
            // The same file seen twice is measured once; a file that
            // differs under a mount is kept in both versions.
            files.sort_by(|a, b| (&a.path, a.sha256).cmp(&(&b.path, b.sha256)));
            files.dedup_by(|a, b| a.path == b.path && a.sha256 == b.sha256);
        }
        Ok(files)
    });
    match files {
        Ok(files) => {
            let (entries, refused) = config_checks(&files, sealed);
            checks.module_config = entries;
            checks.config_refused = refused;
        }
        Err(e) => checks.config_refused = vec![format!("cannot be checked: {e}")],
    }
    for r in &checks.config_refused {
        problems.push(format!("module config: {r}"));
    }
}

/// Checks what the kernel says is loaded against the verified files (by
/// name and, where sysfs shows it, build-id) and the taint flags. Returns the loaded modules without a verified file;
/// every other finding goes into `checks.loaded`. Each is a problem.
pub(super) fn loaded_step(
    input: System<'_>,
    reports: &[Report],
    checks: &mut StageChecks,
    problems: &mut Vec<String>,
) -> Option<Vec<String>> {
    let root = input.root;
    let proc_modules = input
        .proc_modules
        .map_or_else(|| root.join("proc/modules"), Path::to_path_buf);
    let snapshot = match taint::read_loaded_from(
        &proc_modules,
        &root.join("sys"),
        &root.join("proc/sys/kernel/tainted"),
    ) {
        Ok(s) => s,
        Err(e) => {
            // Unknown is not clean: fail closed, named.
            let text = format!("cannot read the loaded modules: {e}");
            problems.push(format!("loaded: {text}"));
            checks.loaded.push(text);
            return Some(Vec::new());
        }
    };
    let mut verified = VerifiedBuilds::new();
    for r in reports.iter().filter(|r| r.verdict == Verdict::Ok) {
        if let Some(name) = module_name(&r.path) {
            let notes = verified.entry(name).or_default();
            notes.extend(r.build_id_note.clone());
        }
    }
    let mut unverified = Vec::new();
    for f in taint::findings(&snapshot.loaded, &verified, snapshot.kernel) {
        problems.push(format!("loaded: {f}"));
        match f {
            Finding::NotVerified { module } => unverified.push(module.replace('-', "_")),
            other => checks.loaded.push(other.to_string()),
        }
    }
    unverified.sort();
    unverified.dedup();
    Some(unverified)
}
