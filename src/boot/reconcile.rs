//! Pre-pivot reconciliation: every loaded module must have a verified file.

use std::path::Path;

use crate::verify::{Report, Verdict};

/// `/proc/modules` (or the file standing for it). Unreadable means unknown:
/// the stage fails closed, with a name that cannot match a module file.
pub fn read_proc_modules(path: &Path) -> String {
    crate::util::read::read_capped_string(path, 16 << 20)
        .unwrap_or_else(|e| format!("<unreadable:{}:{e}> 0 0 - Live 0x0\n", path.display()))
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
        let unreadable = read_proc_modules(Path::new("/nonexistent/modules"));
        assert_eq!(reconcile(&unreadable, &reports).len(), 1, "{unreadable}");
    }
}
