//! `modseal inspect`: what a module's signature says.

use std::path::PathBuf;

use clap::Args;

use super::{usage_error, EXIT_FAIL, EXIT_OK};
use crate::image::compression::Compression;
use crate::image::module::inspect_bytes;

/// The arguments of `modseal inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print JSON instead of modinfo-style text.
    #[arg(long)]
    pub(crate) json: bool,
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

/// `modseal inspect`: one block per file (or, with `--json`, one array after
/// all of them); fails if a file is unreadable, unsigned or unparsable.
pub fn cmd_inspect(args: InspectArgs) -> u8 {
    let mut status = EXIT_OK;
    let mut all = Vec::new();
    for f in &args.files {
        let display = f.display().to_string();
        let ins = match std::fs::read(f) {
            Ok(bytes) => inspect_bytes(&bytes, Compression::for_module_path(f), &display),
            Err(e) => {
                eprintln!("modseal: {display}: cannot read: {e}");
                status = EXIT_FAIL;
                continue;
            }
        };
        if !ins.signed || ins.error.is_some() {
            status = EXIT_FAIL;
        }
        if args.json {
            all.push(ins);
        } else {
            println!("{}", ins.render());
        }
    }
    if args.json {
        match serde_json::to_string(&all) {
            Ok(s) => println!("{s}"),
            Err(e) => return usage_error(e),
        }
    }
    status
}
