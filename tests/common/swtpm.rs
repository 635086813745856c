//! A private swtpm per test: started in its own state directory on free TCP
//! ports, waited for until it answers a TPM command, stopped on drop.
//!
//! Include it with `#[path = "common/swtpm.rs"] mod swtpm;`. A missing
//! `swtpm` binary fails the test (it never skips): the TPM tests are part of
//! the suite, and `scripts/setup.sh` installs swtpm.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Port choice and start-up are serialised so that parallel tests do not
/// pick the same free ports.
static START: Mutex<()> = Mutex::new(());

pub struct Swtpm {
    child: Option<Child>,
    /// Owns the state directory unless the caller gave one.
    _tmp: Option<tempfile::TempDir>,
    pub state: PathBuf,
    pub port: u16,
    pub ctrl_port: u16,
    log: PathBuf,
}

fn free_port_pair() -> Option<(u16, u16)> {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = a.local_addr().ok()?.port();
        if port == u16::MAX {
            continue;
        }
        if let Ok(b) = TcpListener::bind(("127.0.0.1", port + 1)) {
            drop(b);
            drop(a);
            return Some((port, port + 1));
        }
    }
    None
}

/// TPM2_GetRandom(8): a command any started TPM answers.
const GET_RANDOM: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x08];

fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(&GET_RANDOM).is_err() {
        return false;
    }
    let mut hdr = [0u8; 10];
    s.read_exact(&mut hdr).is_ok() && hdr[0] == 0x80 && hdr[6..10] == [0, 0, 0, 0]
}

impl Swtpm {
    /// A fresh TPM (new seeds) in a temporary state directory.
    pub fn start() -> Swtpm {
        let tmp = tempfile::tempdir().expect("temp dir for swtpm state");
        let state = tmp.path().to_path_buf();
        Swtpm::launch(state, Some(tmp))
    }

    /// A TPM using (or creating) the state in `state`: same seeds as the
    /// last one that used it, PCRs reset (a reboot).
    pub fn start_with_state(state: &Path) -> Swtpm {
        std::fs::create_dir_all(state).expect("swtpm state dir");
        Swtpm::launch(state.to_path_buf(), None)
    }

    fn launch(state: PathBuf, tmp: Option<tempfile::TempDir>) -> Swtpm {
        let _guard = START.lock().unwrap_or_else(|e| e.into_inner());
        let log = state.join("swtpm.log");
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let (port, ctrl_port) = free_port_pair().expect("no free TCP port pair on 127.0.0.1");
            let child = Command::new("swtpm")
                .arg("socket")
                .arg("--tpm2")
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={ctrl_port},bindaddr=127.0.0.1"))
                .arg("--tpmstate")
                .arg(format!("dir={}", state.display()))
                .arg("--flags")
                .arg("not-need-init,startup-clear")
                .arg("--log")
                .arg(format!("file={},level=1", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "swtpm is not installed (the TPM tests need it; scripts/setup.sh installs the swtpm package)"
                ),
                Err(e) => panic!("cannot start swtpm: {e}"),
            };
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    last_err = format!("swtpm exited at start ({status}): {err}");
                    break;
                }
                if answers(port) {
                    return Swtpm {
                        child: Some(child),
                        _tmp: tmp,
                        state,
                        port,
                        ctrl_port,
                        log,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = format!("swtpm on port {port} did not answer within 15 s");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start swtpm: {last_err}");
    }

    /// modseal's TCTI string for this TPM.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// tpm2-tools' TCTI string for this TPM (`-T`).
    pub fn tools_tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Stops swtpm (CMD_SHUTDOWN on the control channel, so it saves its
    /// state; killed if it does not exit).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.ctrl_port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(&3u32.to_be_bytes()); // CMD_SHUTDOWN
            let mut resp = [0u8; 4];
            let _ = s.read_exact(&mut resp);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// swtpm's own log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.stop();
    }
}
