//! Where boot-time messages go: stderr on a host, the kernel log in an
//! initramfs, so `dmesg` and the journal say which module failed and why.

use std::io::Write;

/// Where a message is written.
#[derive(Debug)]
pub enum Sink {
    /// The process's stderr.
    Stderr,
    /// `/dev/kmsg`, opened for writing.
    Kmsg(std::fs::File),
}

/// Kernel log levels used here (`<N>` prefixes of /dev/kmsg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `KERN_CRIT`: shown on the console even with `quiet`.
    Crit = 2,
    /// `KERN_ERR`.
    Err = 3,
    /// `KERN_WARNING`.
    Warning = 4,
    /// `KERN_NOTICE`.
    Notice = 5,
    /// `KERN_INFO`.
    Info = 6,
}

impl Sink {
    /// The kernel log when asked for, or when running as the child of PID 1
    /// inside an initramfs; stderr otherwise (and if /dev/kmsg won't open).
    pub fn choose(force_kmsg: bool) -> Self {
        let in_initrd = std::os::unix::process::parent_id() == 1
            && std::path::Path::new("/etc/initrd-release").exists();
        if force_kmsg || in_initrd {
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
                return Sink::Kmsg(f);
            }
        }
        Sink::Stderr
    }

    /// Writes one line; untrusted text is made single-line first.
    pub fn line(&mut self, level: Level, msg: &str) {
        let msg: String = msg
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        match self {
            // One write per record: /dev/kmsg takes one message per write().
            Sink::Kmsg(f) => {
                let _ = f.write_all(format!("<{}>modseal: {msg}\n", level as u8).as_bytes());
            }
            Sink::Stderr => eprintln!("modseal: {msg}"),
        }
    }
}
