//! What enforce mode refuses of what the kernel says is loaded: a module
//! tainted `E` or `F`, one without a verified file of its name, one of
//! another build than the files that verified, and the kernel's own taint.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::verify::build_id;

use super::taint::{KernelTaint, Loaded, Taint};

/// A loaded module (or the kernel) that enforce mode must not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Tainted `E`: loaded although the kernel found no valid signature.
    Unsigned {
        /// The module.
        module: String,
    },
    /// Tainted `F`: force-loaded.
    Forced {
        /// The module.
        module: String,
    },
    /// Loaded, but no file of its name verified.
    NotVerified {
        /// The module.
        module: String,
    },
    /// Loaded with a build-id note that no verified file of its name has:
    /// another build than the one that verified.
    OtherBuild {
        /// The module.
        module: String,
        /// The loaded module's note.
        note: Vec<u8>,
    },
    /// The kernel's own taint bit ([`Taint::UnsignedModule`] or
    /// [`Taint::ForcedModule`]): set even if the module is gone.
    Kernel {
        /// The flag.
        taint: Taint,
    },
}

impl Finding {
    /// The module named, or `the kernel`.
    pub fn subject(&self) -> &str {
        match self {
            Finding::Unsigned { module }
            | Finding::Forced { module }
            | Finding::NotVerified { module }
            | Finding::OtherBuild { module, .. } => module,
            Finding::Kernel { .. } => "the kernel",
        }
    }
}

impl fmt::Display for Finding {
    /// One line for the kernel log (module names are checked to be plain).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Unsigned { module } => write!(
                f,
                "module {module}: loaded although the kernel found no valid signature (taint E)"
            ),
            Finding::Forced { module } => {
                write!(f, "module {module}: force-loaded (taint F)")
            }
            Finding::NotVerified { module } => {
                write!(
                    f,
                    "module {module}: loaded, but no file of that name verified"
                )
            }
            Finding::OtherBuild { module, note } => write!(
                f,
                "module {module}: loaded, but its build ({}) is not that of any verified file of that name",
                build_id::describe(note)
            ),
            Finding::Kernel { taint } => write!(
                f,
                "the kernel: tainted {} ({}): {}",
                taint.letter(),
                taint.name(),
                taint.description()
            ),
        }
    }
}

/// The verified files by module name (either spelling, `-` or `_`): the
/// build-id notes they have.
pub type VerifiedBuilds = BTreeMap<String, BTreeSet<Vec<u8>>>;

/// Every loaded module tainted `E` or `F`, with no verified file of its
/// name, or with a build-id note none of those files has; then the kernel's
/// `E` and `F` bits. Empty: nothing to object to.
pub fn findings(loaded: &[Loaded], verified: &VerifiedBuilds, kernel: KernelTaint) -> Vec<Finding> {
    let mut builds = VerifiedBuilds::new();
    for (name, notes) in verified {
        builds
            .entry(name.replace('-', "_"))
            .or_default()
            .extend(notes.iter().cloned());
    }
    let mut out = Vec::new();
    for m in loaded {
        let module = || m.name.clone();
        if m.taint.contains(Taint::UnsignedModule) {
            out.push(Finding::Unsigned { module: module() });
        }
        if m.taint.contains(Taint::ForcedModule) {
            out.push(Finding::Forced { module: module() });
        }
        match (builds.get(&m.name.replace('-', "_")), &m.build_id_note) {
            (None, _) => out.push(Finding::NotVerified { module: module() }),
            (Some(notes), Some(note)) if !notes.contains(note) => out.push(Finding::OtherBuild {
                module: module(),
                note: note.clone(),
            }),
            _ => {}
        }
    }
    for taint in [Taint::UnsignedModule, Taint::ForcedModule] {
        if kernel.contains(taint) {
            out.push(Finding::Kernel { taint });
        }
    }
    out
}
