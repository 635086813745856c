//! `modseal verify`: module files and directory trees.

use std::path::PathBuf;

use clap::Args;

use super::output::print_reports;
use super::progress::{Bar, Position};
use super::{jobs, load_trust, options, usage_error, TrustArgs, EXIT_FAIL};

/// Below this many modules a run is over before a bar is worth drawing.
const BAR_MIN_MODULES: usize = 100;

/// The arguments of `modseal verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) jobs: Option<u16>,
    /// Module files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

/// `modseal verify`.
pub fn cmd_verify(args: VerifyArgs) -> u8 {
    let trust = match load_trust(&args.trust) {
        Ok(t) => t,
        Err(e) => return usage_error(e),
    };
    let opts = options(&args.trust);
    let items = crate::image::walk::collect(&args.paths);
    let total = items.len();
    let bar = Bar::new(!args.json && total >= BAR_MIN_MODULES);
    let reports = crate::image::walk::verify_all(&items, &trust, &opts, jobs(args.jobs), &|done| {
        bar.tick(Position::Modules { done, total })
    });
    bar.clear();
    let tally = match print_reports(&reports, args.json) {
        Ok(t) => t,
        Err(status) => return status,
    };
    if reports.is_empty() {
        eprintln!("modseal: no module files found under the given paths");
        return EXIT_FAIL;
    }
    tally.status()
}
