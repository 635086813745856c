//! The modseal binary: the log sink, the panic hook, then the command line
//! ([`modseal::cli`]).

use std::process::ExitCode;

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        // tss-esapi logs every TPM error it returns at error level; modseal
        // reports those itself, named, so tss-esapi is heard only in debug.
        if m.target().starts_with("tss_esapi") && log::max_level() < log::LevelFilter::Debug {
            return false;
        }
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "modseal: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn main() -> ExitCode {
    // A panic must never look like success: one line, then a failing exit.
    // The process then aborts (panic = "abort"): a non-zero status that
    // callers treat as failure. In an initramfs the line goes to the kernel log.
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("internal error (failing closed): {info}");
        match modseal::util::kmsg::Sink::choose(false) {
            mut k @ modseal::util::kmsg::Sink::Kmsg(_) => {
                k.line(modseal::util::kmsg::Level::Err, &msg)
            }
            modseal::util::kmsg::Sink::Stderr => eprintln!("modseal: {msg}"),
        }
    }));
    let level = match std::env::var("MODSEAL_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
    ExitCode::from(modseal::cli::run())
}
