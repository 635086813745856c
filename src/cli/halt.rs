//! `modseal halt`: how the dracut hooks and units stop an enforce-mode boot.

use clap::Args;

use crate::cli::EXIT_FAIL;
use crate::util::halt::halt;

/// `modseal halt`'s arguments.
#[derive(Debug, Args)]
pub struct HaltArgs {
    /// Appended to the kernel-log line, e.g. which stage failed.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: Option<String>,
}

/// Runs `modseal halt`: returns only if the machine did not halt.
pub fn cmd_halt(a: HaltArgs) -> u8 {
    match halt(a.reason.as_deref()) {
        Err(e) => {
            eprintln!("modseal: error: {e}");
            EXIT_FAIL
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{run_with, Cli, Command, EXIT_OK, EXIT_USAGE};

    // The halt itself is not called here: as root on a test machine it
    // would stop the machine.
    #[test]
    fn halt_parses_its_reason_and_has_help() {
        assert_eq!(run_with(["modseal", "halt", "--help"]), EXIT_OK);
        assert_eq!(run_with(["modseal", "halt", "extra"]), EXIT_USAGE);
        let cli = Cli::try_parse_from(["modseal", "halt", "--reason", "early stage"]);
        match cli.map(|c| c.command) {
            Ok(Command::Halt(a)) => assert_eq!(a.reason.as_deref(), Some("early stage")),
            other => panic!("unexpected parse: {other:?}"),
        }
    }
}
