//! The quote directory: what `modseal quote` writes (`--out`) and `modseal
//! attest --quote` reads. The first three files are what `tpm2_quote -m -s
//! -o` write, so either tool's directory serves the other:
//! - `quote.msg`: the `TPMS_ATTEST` as marshalled ([`super::quote_msg`]);
//! - `quote.sig`: the `TPMT_SIGNATURE` as marshalled ([`super::signature`]);
//! - `quote.pcrs`: the quoted PCR values in tpm2-tools' serialized format
//!   ([`super::pcrs`]);
//! - `tpm2-measure.log`: the event log, as read around the quote;
//! - `ak.pem`, `ak.pub`: the AK that signed (never trusted by `attest`,
//!   which takes the AK from the verifier);
//! - `nonce`: the qualifying data, lowercase hex and a newline;
//! - `binary_bios_measurements`: the firmware's TCG event log, as securityfs
//!   shows it (its name there), which binds the verdict to the kernel and the
//!   initrd the firmware and the EFI stub measured into PCRs 4 and 9.

use std::path::{Path, PathBuf};

use crate::util::fs::ReplaceDirError;
use crate::util::read::{read_capped, ReadError};

/// `quote.msg`: the `TPMS_ATTEST` (`tpm2_quote -m`).
pub const QUOTE_MSG: &str = "quote.msg";
/// `quote.sig`: the `TPMT_SIGNATURE` (`tpm2_quote -s`).
pub const QUOTE_SIG: &str = "quote.sig";
/// `quote.pcrs`: the PCR values (`tpm2_quote -o`).
pub const QUOTE_PCRS: &str = "quote.pcrs";
/// The copy of the event log.
pub const QUOTE_LOG: &str = "tpm2-measure.log";
/// The AK's SubjectPublicKeyInfo as PEM (`tpm2_readpublic -f pem -o`).
pub const AK_PEM: &str = "ak.pem";
/// The AK's `TPM2B_PUBLIC` (`tpm2_readpublic -o`).
pub const AK_PUB: &str = "ak.pub";
/// The AK's binary name (`tpm2_readpublic -n`); in `--ak-dir` only.
pub const AK_NAME: &str = "ak.name";
/// The nonce the quote was made with.
pub const NONCE: &str = "nonce";
/// The firmware's event log, named as securityfs names it.
pub const FIRMWARE_LOG: &str = "binary_bios_measurements";
/// The kernel command line the machine booted with (`/proc/cmdline`): the
/// EFI stub measured only its digest, which this copy must match.
pub const CMDLINE: &str = "cmdline";
/// Every file a quote directory may hold.
pub const QUOTE_FILES: [&str; 9] = [
    QUOTE_MSG,
    QUOTE_SIG,
    QUOTE_PCRS,
    QUOTE_LOG,
    AK_PEM,
    AK_PUB,
    NONCE,
    FIRMWARE_LOG,
    CMDLINE,
];

/// A quote file larger than this is refused (a real one is under 1 KiB).
pub const MAX_QUOTE_FILE: usize = 1024 * 1024;

/// Why a quote directory cannot be read or replaced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// `--quote` names something that is not a directory.
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// `--quote` cannot be looked at.
    #[error("{}: {source}", path.display())]
    Stat {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file of the directory, or the log, cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// `--out` cannot be replaced.
    #[error(transparent)]
    OutDir(ReplaceDirError),
}

/// The evidence as read from files, unparsed.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// `quote.msg`.
    pub msg: Vec<u8>,
    /// `quote.sig`.
    pub sig: Vec<u8>,
    /// `quote.pcrs`.
    pub pcrs: Vec<u8>,
    /// The event log.
    pub log: Vec<u8>,
    /// The firmware's event log, if there is one.
    pub firmware_log: Option<FirmwareLogFile>,
    /// The copy of the kernel command line, if there is one.
    pub cmdline: Option<Vec<u8>>,
}

/// The firmware's event log as read, and where from (for messages).
#[derive(Debug, Clone)]
pub struct FirmwareLogFile {
    /// The file read.
    pub path: PathBuf,
    /// Its bytes, unparsed.
    pub bytes: Vec<u8>,
}

/// Reads a firmware event log, bounded by [`crate::measure::tcg::MAX_LOG_SIZE`].
pub fn read_firmware_log(path: &Path) -> Result<FirmwareLogFile, EvidenceError> {
    Ok(FirmwareLogFile {
        path: path.to_path_buf(),
        bytes: read_capped(path, crate::measure::tcg::MAX_LOG_SIZE)?,
    })
}

/// Reads the quote directory (and the log: `log`, else DIR/tpm2-measure.log),
/// each file bounded ([`MAX_QUOTE_FILE`], [`crate::measure::MAX_LOG_SIZE`]).
/// DIR/binary_bios_measurements is read when it exists (`--firmware-log`
/// replaces it: [`read_firmware_log`]); whether it is required is the
/// policy's to say.
pub fn read_evidence(dir: &Path, log: Option<&Path>) -> Result<Evidence, EvidenceError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(EvidenceError::NotADirectory(dir.to_path_buf())),
        Err(source) => {
            return Err(EvidenceError::Stat {
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let q = |name: &str| read_capped(&dir.join(name), MAX_QUOTE_FILE);
    let log_path = log
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join(QUOTE_LOG));
    let fw_path = dir.join(FIRMWARE_LOG);
    let firmware_log = match std::fs::symlink_metadata(&fw_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => Some(read_firmware_log(&fw_path)?),
    };
    let cmdline = match std::fs::symlink_metadata(dir.join(CMDLINE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => Some(q(CMDLINE)?),
    };
    Ok(Evidence {
        msg: q(QUOTE_MSG)?,
        sig: q(QUOTE_SIG)?,
        pcrs: q(QUOTE_PCRS)?,
        log: read_capped(&log_path, crate::measure::MAX_LOG_SIZE)?,
        firmware_log,
        cmdline,
    })
}

/// Checks that `dir` can be replaced by a quote directory: absent, or a
/// directory holding nothing but files a quote writes. Returns the path to
/// replace (a symlink is followed to its target).
pub fn prepare_out_dir(dir: &Path) -> Result<PathBuf, EvidenceError> {
    crate::util::fs::prepare_replaceable_dir(dir, &QUOTE_FILES, "a quote's", "")
        .map_err(EvidenceError::OutDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_dir_is_replaced_whole_and_foreign_files_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("q");
        let target = prepare_out_dir(&dir).unwrap();
        crate::util::fs::write_dir_replacing(&target, &[(QUOTE_MSG, b"one"), (NONCE, b"aa\n")])
            .unwrap();
        let target = prepare_out_dir(&dir).unwrap();
        crate::util::fs::write_dir_replacing(&target, &[(QUOTE_MSG, b"two")]).unwrap();
        assert_eq!(std::fs::read(dir.join(QUOTE_MSG)).unwrap(), b"two");
        assert!(!dir.join(NONCE).exists(), "the old set is gone as a whole");
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["q".to_owned()]);
        std::fs::write(dir.join("keep-me"), b"x").unwrap();
        assert!(prepare_out_dir(&dir)
            .unwrap_err()
            .to_string()
            .contains("keep-me"));
        assert!(prepare_out_dir(&dir.join("keep-me")).is_err());
    }

    #[test]
    fn reading_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read_evidence(&tmp.path().join("nowhere"), None).unwrap_err();
        assert!(e.to_string().contains("nowhere"), "{e}");
        std::fs::write(tmp.path().join(QUOTE_MSG), b"m").unwrap();
        let e = read_evidence(tmp.path(), None).unwrap_err();
        assert!(e.to_string().contains("quote.sig: cannot open"), "{e}");
        let e = read_evidence(&tmp.path().join(QUOTE_MSG), None).unwrap_err();
        assert!(e.to_string().ends_with("quote.msg: not a directory"), "{e}");
        // The firmware log: optional, but read whole when there.
        for f in [QUOTE_SIG, QUOTE_PCRS, QUOTE_LOG] {
            std::fs::write(tmp.path().join(f), b"x").unwrap();
        }
        assert!(read_evidence(tmp.path(), None)
            .unwrap()
            .firmware_log
            .is_none());
        std::fs::write(tmp.path().join(FIRMWARE_LOG), b"fw").unwrap();
        let fw = read_evidence(tmp.path(), None)
            .unwrap()
            .firmware_log
            .unwrap();
        assert_eq!(
            (fw.path, fw.bytes),
            (tmp.path().join(FIRMWARE_LOG), b"fw".to_vec())
        );
        std::fs::remove_file(tmp.path().join(FIRMWARE_LOG)).unwrap();
        std::os::unix::fs::symlink("nowhere", tmp.path().join(FIRMWARE_LOG)).unwrap();
        let e = read_evidence(tmp.path(), None).unwrap_err();
        assert!(e.to_string().contains(FIRMWARE_LOG), "{e}");
    }
}
