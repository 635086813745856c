//! Helpers of the tests that boot a VM under QEMU (tests/qemu_boot.rs,
//! tests/mkosi_boot.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{modseal_bin, repo, run};

/// Where a boot test keeps its artefacts between runs: `target/<test name,
/// `-` for `_`>`, i.e. `target/qemu-boot` for tests/qemu_boot.rs and
/// `target/mkosi-boot` for tests/mkosi_boot.rs. (Cargo names each test
/// binary's crate after its file: `CARGO_CRATE_NAME`.)
pub fn work_root() -> PathBuf {
    repo()
        .join("target")
        .join(env!("CARGO_CRATE_NAME").replace('_', "-"))
}

/// The binary that goes into the initramfs: it must be the static build.
pub fn static_bin() -> PathBuf {
    let bin = modseal_bin();
    let out = run(Command::new("file").arg("-b").arg(&bin));
    let what = String::from_utf8_lossy(&out.stdout);
    assert!(
        what.contains("statically linked") || what.contains("static-pie"),
        "{} is not static ({what}); the boot tests need the static musl binary: \
         set MODSEAL_BIN=target/x86_64-unknown-linux-musl/release/modseal (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// Decodes base64 (as a guest printed a file on its serial console) into
/// the file `to`, with the `base64` tool.
pub fn base64_decode(b64: &str, to: &Path) {
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(to).unwrap())
        .spawn()
        .expect("base64");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b64.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "base64 -d for {} failed",
        to.display()
    );
}

/// PCR `pcr` (sha256) as the firmware's event log `log` leaves it before
/// the initramfs runs: systemd-boot measures the kernel command line into
/// PCR 12, the PCR modseal measures into, so modseal's records extend that
/// value rather than zero (`predict --from`, `log replay --from`). Zero when
/// the log has no event for it, or there is no log.
pub fn firmware_pcr(log: Option<&Path>, pcr: u8) -> String {
    let zero = "0".repeat(64);
    let Some(log) = log else { return zero };
    let out = super::modseal([
        "log".as_ref(),
        "show".as_ref(),
        "--firmware".as_ref(),
        log.as_os_str(),
    ]);
    assert!(out.status.success(), "{}", super::describe(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("pcr {pcr} sha256 ")))
        .map(str::to_owned)
        .unwrap_or(zero)
}
