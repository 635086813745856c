//! Running programs other than modseal: any command, and tpm2-tools aimed at
//! a test's swtpm.

use std::process::{Command, Output, Stdio};

use super::output::cut;

/// Runs a command (stdin closed) and returns its output whatever its exit
/// status; panics only if it cannot be started.
pub fn output_of(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (run scripts/setup.sh)"))
}

/// Runs a command (stdin closed); panics with its output unless it succeeds.
///
/// The message has stdout cut as in [`super::describe`] (it may be a
/// decompressed image) but all of stderr: a failing dracut, for one, says
/// why at the end of a long stderr.
pub fn run(cmd: &mut Command) -> Output {
    let out = output_of(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        cut(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A tpm2-tools command aimed at the TPM at `tcti` (tpm2-tools' form,
/// `Swtpm::tools_tcti()`), with the TSS library's log quiet.
pub fn tpm2_command(program: &str, args: &[&str], tcti: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("TPM2TOOLS_TCTI", tcti)
        .env("TSS2_LOG", "all+none");
    cmd
}

/// Runs a tpm2-tools program against the TPM at `tcti`; panics with its
/// output unless it succeeds.
pub fn tpm2_tool(program: &str, args: &[&str], tcti: &str) -> Output {
    run(&mut tpm2_command(program, args, tcti))
}
