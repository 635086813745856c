//! Stopping the machine when enforce mode fails. A halt, not a shell and not
//! a panic of PID 1: nothing on the console can then mount the root by hand,
//! and the reason stays on the screen.

use std::convert::Infallible;

use crate::util::kmsg::{Level, Sink};
use crate::util::text::clip;

/// What the kernel log says before the halt (after the `modseal: ` prefix).
pub const HALT_MESSAGE: &str = "enforce mode: the boot stops here: halting";

/// The halt failed: the process lacks `CAP_SYS_BOOT`, or a seccomp filter
/// refused the call. The caller must still stop the boot some other way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HaltError {
    /// `reboot(LINUX_REBOOT_CMD_HALT)` returned.
    #[error("reboot(RB_HALT_SYSTEM) failed: {0}")]
    Reboot(#[source] std::io::Error),
}

/// The kernel-log line, with the reason (clipped to one line) if given.
pub fn message(reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("{HALT_MESSAGE}: {}", clip(r)),
        None => HALT_MESSAGE.to_string(),
    }
}

/// Says [`message`] in the kernel log at level crit (stderr if /dev/kmsg will
/// not open), flushes the filesystems and halts. Returns only on failure.
pub fn halt(reason: Option<&str>) -> Result<Infallible, HaltError> {
    Sink::choose(true).line(Level::Crit, &message(reason));
    // Whatever the stage wrote (the event log, the journal's files) reaches
    // the disk, as far as the initramfs has one mounted.
    rustix::fs::sync();
    match rustix::system::reboot(rustix::system::RebootCommand::Halt) {
        Ok(()) => Err(HaltError::Reboot(std::io::Error::other(
            "the call returned without halting",
        ))),
        Err(e) => Err(HaltError::Reboot(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_reason_on_one_line() {
        assert_eq!(message(None), "enforce mode: the boot stops here: halting");
        assert_eq!(message(Some("  ")), HALT_MESSAGE);
        assert_eq!(
            message(Some("early stage failed")),
            "enforce mode: the boot stops here: halting: early stage failed"
        );
        assert_eq!(
            message(Some("a\nb")),
            "enforce mode: the boot stops here: halting: a?b"
        );
        let long = "x".repeat(1000);
        assert!(message(Some(&long)).len() < 300);
    }
}
