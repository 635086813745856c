//! Module names as the kernel compares them.

/// `.../foo-bar.ko.xz` → `foo_bar` (the kernel treats `-` and `_` alike).
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
    fn module_names_map_dashes() {
        assert_eq!(
            module_name("x/y/foo-bar.ko.zst").as_deref(),
            Some("foo_bar")
        );
        assert_eq!(module_name("a-b.ko").as_deref(), Some("a_b"));
        assert_eq!(module_name("x/README"), None);
    }
}
