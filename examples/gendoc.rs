//! Writes modseal's manual pages (section 8) and shell completions from the
//! one command-line definition ([`modseal::cli::Cli`]), so they cannot drift
//! from `--help`. An example, not a binary: clap_mangen and clap_complete are
//! dev-dependencies and never reach the static binary.
//!
//!   cargo run --example gendoc -- OUT
//!
//! OUT/man8/modseal.8, OUT/man8/modseal-COMMAND[-SUBCOMMAND].8 (one per
//! command), OUT/completions/{modseal.bash,_modseal,modseal.fish}. The pages'
//! date is $SOURCE_DATE_EPOCH's day (none when it is unset), so a package
//! build is reproducible. The section-5 pages are written by hand
//! (packaging/man/).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use modseal::cli::Cli;

/// The hand-written pages every generated one points to.
const SEE_ALSO_5: &[&str] = &[
    "modseal.conf",
    "modseal-trust-bundle",
    "modseal-attest-policy",
];

fn main() -> std::process::ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gendoc OUT");
        return std::process::ExitCode::from(2);
    };
    match generate(&out) {
        Ok(n) => {
            println!(
                "gendoc: {n} manual pages and 3 completions in {}",
                out.display()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gendoc: {}: {e}", out.display());
            std::process::ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path) -> std::io::Result<usize> {
    let man = out.join("man8");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&comp)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let date = source_date();
    let mut pages = Vec::new();
    collect(&cmd, None, &mut pages);
    for page in &pages {
        write_page(page, &date, &man)?;
    }
    for (shell, name) in [
        (Shell::Bash, "modseal.bash"),
        (Shell::Zsh, "_modseal"),
        (Shell::Fish, "modseal.fish"),
    ] {
        let mut f = std::fs::File::create(comp.join(name))?;
        clap_complete::generate(shell, &mut cmd.clone(), "modseal", &mut f);
        f.flush()?;
    }
    Ok(pages.len())
}

/// One manual page: the command and the pages its SEE ALSO names.
struct Page {
    cmd: clap::Command,
    see_also: Vec<String>,
}

/// The command and every visible subcommand, depth first (the order of
/// `--help`); each page names its parent, `modseal` and its subcommands.
fn collect(cmd: &clap::Command, parent: Option<&str>, pages: &mut Vec<Page>) {
    let name = page_name(cmd);
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let mut see_also: Vec<String> = Vec::new();
    if let Some(p) = parent {
        if p != "modseal" {
            see_also.push("modseal".to_owned());
        }
        see_also.push(p.to_owned());
    }
    see_also.extend(subs.iter().map(|s| page_name(s)));
    pages.push(Page {
        cmd: cmd.clone(),
        see_also,
    });
    for sub in subs {
        collect(sub, Some(&name), pages);
    }
}

fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned()
}

fn write_page(page: &Page, date: &str, dir: &Path) -> std::io::Result<()> {
    let name = page_name(&page.cmd);
    let version = page.cmd.get_version().unwrap_or(env!("CARGO_PKG_VERSION"));
    let m = Man::new(page.cmd.clone())
        .section("8")
        .date(date)
        .source(format!("modseal {version}"))
        .manual("System Administration");
    let mut buf = Vec::new();
    m.render(&mut buf)?;
    let refs: Vec<String> = page
        .see_also
        .iter()
        .map(|n| format!(".BR {} (8)", n.replace('-', "\\-")))
        .chain(
            SEE_ALSO_5
                .iter()
                .map(|n| format!(".BR {} (5)", n.replace('-', "\\-"))),
        )
        .collect();
    writeln!(buf, ".SH \"SEE ALSO\"")?;
    let last = refs.len().saturating_sub(1);
    for (i, r) in refs.iter().enumerate() {
        writeln!(buf, "{r}{}", if i < last { "," } else { "" })?;
    }
    std::fs::write(dir.join(format!("{name}.8")), buf)
}

/// $SOURCE_DATE_EPOCH as YYYY-MM-DD (UTC), or "" when unset or unreadable.
fn source_date() -> String {
    let Some(secs) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    else {
        return String::new();
    };
    // Howard Hinnant's days-to-civil algorithm.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
