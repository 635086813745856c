//! `modseal check-config`: the module-loading configuration of an image
//! root, as the boot stages will check it.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_FAIL, EXIT_OK, EXIT_USAGE};

/// `modseal check-config`'s arguments.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The trust bundle whose sealed `allow-install` lines apply.
    #[arg(long = "trust", value_name = "BUNDLE")]
    pub trust: PathBuf,
    /// Kernel release whose module directory's modules.softdep/weakdep are read too.
    #[arg(long, value_name = "KVER")]
    pub kver: Option<String>,
    /// The image root (an unpacked initramfs, or dracut's $initdir while it builds).
    #[arg(value_name = "ROOT")]
    pub root: PathBuf,
}

/// Runs `modseal check-config`.
pub fn cmd_check_config(a: CheckConfigArgs) -> u8 {
    let bundle = match crate::util::read::read_capped(&a.trust, crate::trust::MAX_TRUST_FILE)
        .map_err(|e| format!("{}: cannot read: {e}", a.trust.display()))
        .and_then(|b| crate::trust::read_bundle(&a.trust, &b).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("modseal: error: {e}");
            return EXIT_USAGE;
        }
    };
    if !a.root.is_dir() {
        eprintln!("modseal: error: {}: not a directory", a.root.display());
        return EXIT_USAGE;
    }
    let modules = crate::boot::kernel_module_dir(&a.root, a.kver.as_deref().unwrap_or(""));
    let files = match crate::boot::module_config(&a.root, &modules) {
        Ok(f) => f,
        Err(e) => {
            println!("module config: cannot be checked: {e}");
            return EXIT_FAIL;
        }
    };
    let (entries, refused) = crate::boot::config_checks(&files, &bundle.settings);
    for r in &refused {
        println!("{r}");
    }
    eprintln!(
        "modseal: {} module configuration file(s), {} command(s) the sealed policy does not allow",
        entries.len(),
        refused.len()
    );
    if refused.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAIL
    }
}
