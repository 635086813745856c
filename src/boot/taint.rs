//! The kernel's own view of the loaded modules: `/proc/modules`,
//! `/sys/module/<name>/taint` and `/proc/sys/kernel/tainted`.
//!
//! A file that verified proves little if the kernel loaded something else:
//! a module it found unsigned (taint `E`) or that was force-loaded (`F`), or
//! one whose name no verified file has. [`findings`] names each. The
//! parsers are strict (the kernel's exact format): a line they cannot read
//! is an error, so a module name crafted to break the format fails closed.

use std::fmt;
use std::path::Path;

pub use super::findings::{findings, Finding, VerifiedBuilds};
use crate::util::read::{read_capped, ReadError};
use crate::verify::build_id;

/// Largest `/proc/modules` read, in bytes.
pub const MAX_PROC_MODULES: usize = 4 << 20;
/// Most modules in `/proc/modules`.
pub const MAX_MODULES: usize = 65_536;
/// Longest module name accepted (the kernel's `MODULE_NAME_LEN`, NUL
/// included, is 56 on 64-bit and 60 on 32-bit).
pub const MAX_NAME: usize = 63;

/// Declares [`Taint`] and its table from one list, so that the two cannot
/// drift apart.
macro_rules! taints {
    ($($variant:ident = $bit:literal, $letter:literal, $name:literal, $what:literal;)*) => {
        /// A kernel taint flag: bit numbers and letters of
        /// Documentation/admin-guide/tainted-kernels.rst (`taint_flags` in
        /// kernel/panic.c).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Taint {
            $(#[doc = $what] $variant = $bit,)*
        }

        /// Letter, kernel name and description of each flag, in bit order.
        const TABLE: [(Taint, char, &str, &str); 20] =
            [$((Taint::$variant, $letter, $name, $what),)*];

        impl Taint {
            /// Every flag, in bit order.
            pub const ALL: [Taint; 20] = [$(Taint::$variant,)*];
        }
    };
}

#[rustfmt::skip]
taints! {
    ProprietaryModule = 0, 'P', "TAINT_PROPRIETARY_MODULE", "a proprietary module was loaded";
    ForcedModule = 1, 'F', "TAINT_FORCED_MODULE", "a module was force-loaded";
    CpuOutOfSpec = 2, 'S', "TAINT_CPU_OUT_OF_SPEC", "running on an out-of-specification system";
    ForcedRmmod = 3, 'R', "TAINT_FORCED_RMMOD", "a module was force-unloaded";
    MachineCheck = 4, 'M', "TAINT_MACHINE_CHECK", "the processor reported a machine check exception";
    BadPage = 5, 'B', "TAINT_BAD_PAGE", "a bad page was referenced";
    User = 6, 'U', "TAINT_USER", "user space requested the taint";
    Die = 7, 'D', "TAINT_DIE", "the kernel died recently (OOPS or BUG)";
    OverriddenAcpiTable = 8, 'A', "TAINT_OVERRIDDEN_ACPI_TABLE", "an ACPI table was overridden";
    Warn = 9, 'W', "TAINT_WARN", "the kernel issued a warning";
    Crap = 10, 'C', "TAINT_CRAP", "a staging driver was loaded";
    FirmwareWorkaround = 11, 'I', "TAINT_FIRMWARE_WORKAROUND", "a firmware bug workaround was applied";
    OotModule = 12, 'O', "TAINT_OOT_MODULE", "an out-of-tree module was loaded";
    UnsignedModule = 13, 'E', "TAINT_UNSIGNED_MODULE", "a module without a valid signature was loaded";
    Softlockup = 14, 'L', "TAINT_SOFTLOCKUP", "a soft lockup occurred";
    Livepatch = 15, 'K', "TAINT_LIVEPATCH", "the kernel was live-patched";
    Aux = 16, 'X', "TAINT_AUX", "an auxiliary (distribution) taint";
    Randstruct = 17, 'T', "TAINT_RANDSTRUCT", "built with the struct randomization plugin";
    Test = 18, 'N', "TAINT_TEST", "an in-kernel test was run";
    Fwctl = 19, 'J', "TAINT_FWCTL", "user space used a mutating fwctl debug operation";
}

impl Taint {
    /// The bit in `/proc/sys/kernel/tainted`.
    pub fn bit(self) -> u32 {
        self as u32
    }

    /// The letter the kernel prints.
    pub fn letter(self) -> char {
        TABLE[self as usize].1
    }

    /// The kernel's name (`TAINT_UNSIGNED_MODULE`).
    pub fn name(self) -> &'static str {
        TABLE[self as usize].2
    }

    /// What it means.
    pub fn description(self) -> &'static str {
        TABLE[self as usize].3
    }

    /// The flag a letter stands for.
    pub fn from_letter(letter: char) -> Option<Taint> {
        TABLE.iter().find(|t| t.1 == letter).map(|t| t.0)
    }
}

/// A set of taint flags (a module's, or the kernel's known ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TaintFlags(u32);

impl TaintFlags {
    /// No flag.
    pub const NONE: TaintFlags = TaintFlags(0);

    /// Whether `t` is set.
    pub fn contains(self, t: Taint) -> bool {
        self.0 & (1 << t.bit()) != 0
    }

    /// Sets `t`.
    pub fn insert(&mut self, t: Taint) {
        self.0 |= 1 << t.bit();
    }

    /// Both sets.
    pub fn union(self, other: TaintFlags) -> TaintFlags {
        TaintFlags(self.0 | other.0)
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Taint> {
        Taint::ALL.into_iter().filter(move |&t| self.contains(t))
    }
}

impl fmt::Display for TaintFlags {
    /// The letters in bit order, as the kernel prints them (`OE`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.iter().try_for_each(|t| write!(f, "{}", t.letter()))
    }
}

/// `/proc/sys/kernel/tainted`: the kernel's taint bitmask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KernelTaint(pub u64);

impl KernelTaint {
    /// Whether `t`'s bit is set.
    pub fn contains(self, t: Taint) -> bool {
        self.0 & (1 << t.bit()) != 0
    }

    /// The known flags set.
    pub fn flags(self) -> TaintFlags {
        let mut flags = TaintFlags::NONE;
        Taint::ALL
            .into_iter()
            .filter(|&t| self.contains(t))
            .for_each(|t| flags.insert(t));
        flags
    }

    /// Bits set that no known flag names (a newer kernel's).
    pub fn unknown_bits(self) -> u64 {
        self.0 & !((1u64 << Taint::ALL.len()) - 1)
    }
}

/// A module's state column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// `Live`.
    Live,
    /// `Loading`: its init function is running.
    Loading,
    /// `Unloading`.
    Unloading,
}

/// One line of `/proc/modules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The module's name (the kernel's spelling, `_` not `-`).
    pub name: String,
    /// Its size in memory, bytes.
    pub size: u64,
    /// Its reference count; `None` on a kernel without module unloading.
    pub refcount: Option<i64>,
    /// The modules that use it.
    pub users: Vec<String>,
    /// Whether it can never be unloaded (`[permanent]`).
    pub permanent: bool,
    /// Its state.
    pub state: State,
    /// Its taint flags (`/proc/modules` and `/sys/module/<name>/taint`).
    pub taint: TaintFlags,
    /// Its `.note.gnu.build-id` section, as
    /// `/sys/module/<name>/notes/.note.gnu.build-id` shows it.
    pub build_id_note: Option<Vec<u8>>,
}

/// A column of `/proc/modules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// The line as a whole (the column count).
    Line,
    /// The name.
    Name,
    /// The size.
    Size,
    /// The reference count.
    Refcount,
    /// The users.
    Users,
    /// The state.
    State,
    /// The address.
    Address,
    /// The parenthesised taint flags.
    Taint,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Column::Line => "line (6 or 7 columns expected)",
            Column::Name => "name",
            Column::Size => "size",
            Column::Refcount => "reference count",
            Column::Users => "users",
            Column::State => "state",
            Column::Address => "address",
            Column::Taint => "taint flags",
        })
    }
}

/// Why the kernel's files could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaintError {
    /// A `/proc/modules` line not as the kernel prints it.
    #[error("/proc/modules line {line}: bad {column}: {text:?}")]
    ProcModules {
        /// 1-based line number.
        line: usize,
        /// The column.
        column: Column,
        /// The column's text (clipped).
        text: String,
    },
    /// More than [`MAX_MODULES`] lines.
    #[error("/proc/modules: more than {cap} modules")]
    TooMany {
        /// The cap.
        cap: usize,
    },
    /// A module taint string with a character that is no taint letter.
    #[error("module taint {text:?}: {letter:?} is not a taint letter")]
    Letter {
        /// The string (clipped).
        text: String,
        /// The first bad character.
        letter: char,
    },
    /// `/sys/module/<module>/taint` could not be parsed.
    #[error("module {module}: /sys/module/{module}/taint: {source}")]
    Module {
        /// The module.
        module: String,
        /// Why.
        source: Box<TaintError>,
    },
    /// `/proc/sys/kernel/tainted` is not a decimal number.
    #[error("/proc/sys/kernel/tainted: {text:?} is not a decimal number")]
    Kernel {
        /// Its text (clipped).
        text: String,
    },
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Parses `/proc/modules`: `name size refcount users state address [(flags)]`
/// lines, as kernel/module/procfs.c prints them.
pub fn parse_proc_modules(text: &str) -> Result<Vec<Loaded>, TaintError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        if out.len() == MAX_MODULES {
            return Err(TaintError::TooMany { cap: MAX_MODULES });
        }
        out.push(parse_line(i + 1, line)?);
    }
    Ok(out)
}

fn parse_line(line: usize, text: &str) -> Result<Loaded, TaintError> {
    let bad = |column, text: &str| TaintError::ProcModules {
        line,
        column,
        text: clip(text),
    };
    let cols: Vec<&str> = text.split(' ').collect();
    let &[name, size, refcount, users, state, address, ref taint @ ..] = cols.as_slice() else {
        return Err(bad(Column::Line, text));
    };
    if taint.len() > 1 {
        return Err(bad(Column::Line, text));
    }
    if !is_module_name(name) {
        return Err(bad(Column::Name, name));
    }
    let size = decimal(size).ok_or_else(|| bad(Column::Size, size))?;
    let refcount = match refcount {
        "-" => None,
        r => Some(r.parse::<i64>().map_err(|_| bad(Column::Refcount, r))?),
    };
    let (users, permanent) = parse_users(users).ok_or_else(|| bad(Column::Users, users))?;
    let state = match state {
        "Live" => State::Live,
        "Loading" => State::Loading,
        "Unloading" => State::Unloading,
        s => return Err(bad(Column::State, s)),
    };
    let hex = address.strip_prefix("0x").unwrap_or("");
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(Column::Address, address));
    }
    let taint = match taint.first() {
        None => TaintFlags::NONE,
        Some(t) => paren_flags(t).ok_or_else(|| bad(Column::Taint, t))?,
    };
    Ok(Loaded {
        name: name.to_owned(),
        size,
        refcount,
        users,
        permanent,
        state,
        taint,
        build_id_note: None,
    })
}

/// `-`, or `a,b,` with an optional `[permanent],`.
fn parse_users(text: &str) -> Option<(Vec<String>, bool)> {
    if text == "-" {
        return Some((Vec::new(), false));
    }
    let list = text.strip_suffix(',')?;
    let mut users = Vec::new();
    let mut permanent = false;
    for u in list.split(',') {
        match u {
            "[permanent]" => permanent = true,
            u if is_module_name(u) => users.push(u.to_owned()),
            _ => return None,
        }
    }
    Some((users, permanent))
}

/// `(OE)`, with a trailing `+` (loading) or `-` (unloading) allowed.
fn paren_flags(text: &str) -> Option<TaintFlags> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    let letters = inner.strip_suffix(['+', '-']).unwrap_or(inner);
    letters_to_flags(letters).ok()
}

/// Parses `/sys/module/<name>/taint`: the module's taint letters (`OE`),
/// possibly none, and a newline.
pub fn parse_module_taint(text: &str) -> Result<TaintFlags, TaintError> {
    let letters = text.strip_suffix('\n').unwrap_or(text);
    letters_to_flags(letters).map_err(|letter| TaintError::Letter {
        text: clip(text),
        letter,
    })
}

fn letters_to_flags(letters: &str) -> Result<TaintFlags, char> {
    let mut flags = TaintFlags::NONE;
    for c in letters.chars() {
        flags.insert(Taint::from_letter(c).ok_or(c)?);
    }
    Ok(flags)
}

/// Parses `/proc/sys/kernel/tainted`: a decimal bitmask and a newline.
pub fn parse_kernel_tainted(text: &str) -> Result<KernelTaint, TaintError> {
    let digits = text.strip_suffix('\n').unwrap_or(text);
    decimal(digits)
        .map(KernelTaint)
        .ok_or_else(|| TaintError::Kernel { text: clip(text) })
}

/// What the kernel says is loaded, and its taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `/proc/modules`, each module's flags joined with its sysfs `taint`.
    pub loaded: Vec<Loaded>,
    /// `/proc/sys/kernel/tainted`.
    pub kernel: KernelTaint,
}

/// Reads `<proc_root>/modules`, `<sys_root>/module/<name>/taint` and
/// `.../notes/.note.gnu.build-id` for each module (a missing one is no
/// error: `/proc/modules` shows the same flags, and a module without the
/// note has nothing to compare) and `<proc_root>/sys/kernel/tainted`.
pub fn read_loaded(proc_root: &Path, sys_root: &Path) -> Result<Snapshot, TaintError> {
    read_loaded_from(
        &proc_root.join("modules"),
        sys_root,
        &proc_root.join("sys/kernel/tainted"),
    )
}

/// [`read_loaded`] with each file named.
pub fn read_loaded_from(
    proc_modules: &Path,
    sys_root: &Path,
    tainted: &Path,
) -> Result<Snapshot, TaintError> {
    let text = read_capped(proc_modules, MAX_PROC_MODULES)?;
    // Non-UTF-8 becomes U+FFFD, which no module name allows: still refused.
    let mut loaded = parse_proc_modules(&String::from_utf8_lossy(&text))?;
    for m in &mut loaded {
        let dir = sys_root.join("module").join(&m.name);
        m.build_id_note = read_optional(
            &dir.join("notes").join(build_id::SECTION),
            build_id::MAX_NOTE,
        )?;
        let Some(bytes) = read_optional(&dir.join("taint"), 4096)? else {
            continue;
        };
        let flags = parse_module_taint(&String::from_utf8_lossy(&bytes)).map_err(|e| {
            TaintError::Module {
                module: m.name.clone(),
                source: Box::new(e),
            }
        })?;
        m.taint = m.taint.union(flags);
    }
    let tainted = read_capped(tainted, 64)?;
    let kernel = parse_kernel_tainted(&String::from_utf8_lossy(&tainted))?;
    Ok(Snapshot { loaded, kernel })
}

/// A sysfs file that may be absent.
fn read_optional(path: &Path, cap: usize) -> Result<Option<Vec<u8>>, ReadError> {
    match read_capped(path, cap) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(ReadError::Open { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The kernel's module names: `[A-Za-z0-9_-]`, at most [`MAX_NAME`] bytes.
fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Unsigned decimal, digits only, no overflow.
fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// At most 64 characters of untrusted text, for an error message.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    // The format of a Debian bookworm guest (Linux 6.1), with the addresses
    // zeroed as kptr_restrict shows them to the unprivileged; the build
    // machine has no /proc/modules of its own. The tainted lines are as an
    // out-of-tree, unsigned module shows.
    const PROC_MODULES: &str = "\
virtio_net 61440 0 - Live 0x0000000000000000
net_failover 24576 1 virtio_net, Live 0x0000000000000000
failover 16384 1 net_failover, Live 0x0000000000000000
virtio_blk 24576 3 - Live 0x0000000000000000
ext4 1007616 1 - Live 0x0000000000000000
crc16 16384 1 ext4, Live 0x0000000000000000
mbcache 16384 1 ext4, Live 0x0000000000000000
jbd2 188416 1 ext4, Live 0x0000000000000000
x_tables 57344 0 [permanent], Live 0xffffffffc0a1e000
vboxdrv 696320 2 vboxnetadp,vboxnetflt, Live 0x0000000000000000 (OE)
rootkit 16384 0 - Loading 0x0000000000000000 (OE+)
";

    #[test]
    fn proc_modules_parses_as_the_kernel_prints_it() {
        let m = parse_proc_modules(PROC_MODULES).unwrap();
        assert_eq!(m.len(), 11);
        assert_eq!(
            m[1],
            Loaded {
                name: "net_failover".into(),
                size: 24576,
                refcount: Some(1),
                users: vec!["virtio_net".into()],
                permanent: false,
                state: State::Live,
                taint: TaintFlags::NONE,
                build_id_note: None,
            }
        );
        assert_eq!(m[3].name, "virtio_blk");
        assert_eq!(m[3].refcount, Some(3));
        assert!(m[8].permanent && m[8].users.is_empty());
        assert_eq!(m[9].users, ["vboxnetadp", "vboxnetflt"]);
        assert_eq!(m[9].taint.to_string(), "OE");
        assert!(m[9].taint.contains(Taint::UnsignedModule));
        assert!(!m[9].taint.contains(Taint::ForcedModule));
        assert_eq!(m[10].state, State::Loading);
        assert_eq!(parse_proc_modules("").unwrap(), []);
        // A kernel without CONFIG_MODULE_UNLOAD prints " - -".
        let m = parse_proc_modules("virtio_blk 20480 - - Live 0x0000000000000000 (E)\n").unwrap();
        assert_eq!(m[0].refcount, None);
        assert_eq!(m[0].taint.to_string(), "E");
        let m = parse_proc_modules("foo 16384 0 - Unloading 0x0 (F-)").unwrap();
        assert_eq!(m[0].state, State::Unloading);
        assert!(m[0].taint.contains(Taint::ForcedModule));
    }

    #[test]
    fn proc_modules_refuses_what_the_kernel_does_not_print() {
        let column = |text: &str| match parse_proc_modules(text) {
            Err(TaintError::ProcModules { line, column, .. }) => (line, column),
            other => panic!("{text:?}: {other:?}"),
        };
        let ok = "a 1 0 - Live 0x0\n";
        assert_eq!(column(&format!("{ok}\n{ok}")), (2, Column::Line));
        // An empty column (two blanks) is refused where it lands.
        assert_eq!(column("a  1 0 - Live 0x0"), (1, Column::Size));
        assert_eq!(column("a 1 0 - Live"), (1, Column::Line));
        assert_eq!(column("a 1 0 - Live 0x0 (E) x"), (1, Column::Line));
        assert_eq!(column("a/b 1 0 - Live 0x0"), (1, Column::Name));
        assert_eq!(
            column(&format!("{} 1 0 - Live 0x0", "a".repeat(64))),
            (1, Column::Name)
        );
        assert_eq!(column("a -1 0 - Live 0x0"), (1, Column::Size));
        assert_eq!(column("a 1 x - Live 0x0"), (1, Column::Refcount));
        assert_eq!(column("a 1 0 b Live 0x0"), (1, Column::Users));
        assert_eq!(column("a 1 0 b,,c, Live 0x0"), (1, Column::Users));
        assert_eq!(column("a 1 0 - live 0x0"), (1, Column::State));
        assert_eq!(column("a 1 0 - Live 0"), (1, Column::Address));
        assert_eq!(column("a 1 0 - Live 0x0 (Q)"), (1, Column::Taint));
        assert_eq!(column("a 1 0 - Live 0x0 E"), (1, Column::Taint));
        assert_eq!(
            column(&format!("{ok}{ok}a\u{fffd} 1 0 - Live 0x0\n")),
            (3, Column::Name)
        );
        let e = parse_proc_modules("a 1 0 - Live 0x0 (Q)").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/proc/modules line 1: bad taint flags: \"(Q)\""
        );
    }

    #[test]
    fn module_taint_letters() {
        let t = parse_module_taint("OE\n").unwrap();
        assert_eq!(
            t.iter().collect::<Vec<_>>(),
            [Taint::OotModule, Taint::UnsignedModule]
        );
        assert_eq!(parse_module_taint("\n").unwrap(), TaintFlags::NONE);
        assert_eq!(parse_module_taint("").unwrap(), TaintFlags::NONE);
        assert_eq!(parse_module_taint("POF\n").unwrap().to_string(), "PFO");
        let e = parse_module_taint("Oe\n").unwrap_err();
        assert!(matches!(e, TaintError::Letter { letter: 'e', .. }), "{e}");
    }

    #[test]
    fn kernel_tainted_bitmask() {
        assert_eq!(parse_kernel_tainted("0\n").unwrap(), KernelTaint(0));
        let k = parse_kernel_tainted("8192\n").unwrap();
        assert!(k.contains(Taint::UnsignedModule));
        assert!(!k.contains(Taint::ForcedModule));
        // P + O + E, as after loading an out-of-tree proprietary driver.
        let k = parse_kernel_tainted("12289\n").unwrap();
        assert_eq!(k.flags().to_string(), "POE");
        let k = parse_kernel_tainted(&format!("{}\n", (1u64 << 25) | 2)).unwrap();
        assert!(k.contains(Taint::ForcedModule));
        assert_eq!(k.unknown_bits(), 1 << 25);
        for bad in [
            "",
            "\n",
            "-1\n",
            "0x2000\n",
            "8192 \n",
            "99999999999999999999999\n",
        ] {
            assert!(
                matches!(parse_kernel_tainted(bad), Err(TaintError::Kernel { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_taint_table_is_in_bit_order() {
        for (i, t) in Taint::ALL.into_iter().enumerate() {
            assert_eq!(t.bit() as usize, i);
            assert_eq!(Taint::from_letter(t.letter()), Some(t));
        }
        assert_eq!(Taint::UnsignedModule.bit(), 13);
        assert_eq!(Taint::UnsignedModule.letter(), 'E');
        assert_eq!(Taint::ForcedModule.bit(), 1);
        assert_eq!(Taint::ForcedModule.name(), "TAINT_FORCED_MODULE");
        assert_eq!(Taint::from_letter('G'), None);
    }

    /// Verified names whose files have no build-id note.
    fn names(names: &[&str]) -> VerifiedBuilds {
        names
            .iter()
            .map(|&n| (n.to_owned(), BTreeSet::new()))
            .collect()
    }

    #[test]
    fn findings_name_the_module_and_why() {
        let loaded = parse_proc_modules(
            "virtio_blk 24576 3 - Live 0x0 (E)\nsnd_hda_intel 57344 0 - Live 0x0\nforced 16384 0 - Live 0x0 (F)\next4 1007616 1 - Live 0x0\n",
        )
        .unwrap();
        let verified = names(&["virtio_blk", "snd-hda-intel", "forced"]);
        let f = findings(&loaded, &verified, KernelTaint(1 << 13));
        assert_eq!(
            f,
            [
                Finding::Unsigned {
                    module: "virtio_blk".into()
                },
                Finding::Forced {
                    module: "forced".into()
                },
                Finding::NotVerified {
                    module: "ext4".into()
                },
                Finding::Kernel {
                    taint: Taint::UnsignedModule
                },
            ]
        );
        let lines: Vec<String> = f.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            lines,
            [
                "module virtio_blk: loaded although the kernel found no valid signature (taint E)",
                "module forced: force-loaded (taint F)",
                "module ext4: loaded, but no file of that name verified",
                "the kernel: tainted E (TAINT_UNSIGNED_MODULE): a module without a valid signature was loaded",
            ]
        );
        assert_eq!(f[3].subject(), "the kernel");
        assert_eq!(f[0].subject(), "virtio_blk");
        // The kernel's F bit alone; other bits are not findings.
        let f = findings(
            &[],
            &VerifiedBuilds::new(),
            KernelTaint(0b10 | 1 << 12 | 1 << 9),
        );
        assert_eq!(
            f,
            [Finding::Kernel {
                taint: Taint::ForcedModule
            }]
        );
        let verified = names(&["virtio_blk", "snd_hda_intel", "forced", "ext4"]);
        let clean = parse_proc_modules("snd_hda_intel 57344 0 - Live 0x0 (O)\n").unwrap();
        assert_eq!(findings(&clean, &verified, KernelTaint(1 << 12)), []);
    }

    /// A GNU build-id note for `id`, as `ld --build-id` writes it.
    fn note(id: &[u8]) -> Vec<u8> {
        let mut n = [4u32, id.len() as u32, 3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>();
        n.extend_from_slice(b"GNU\0");
        n.extend_from_slice(id);
        n
    }

    #[test]
    fn a_loaded_build_must_be_one_that_verified() {
        let mut loaded = parse_proc_modules(
            "virtio_blk 24576 3 - Live 0x0
",
        )
        .unwrap();
        let (good, old) = (note(&[0xe3, 0x8e, 0x03]), note(&[0x01, 0xab]));
        let verified: VerifiedBuilds =
            [("virtio-blk".to_owned(), [note(&[7]), good.clone()].into())].into();
        // No note in sysfs: nothing to compare, as before.
        assert_eq!(findings(&loaded, &verified, KernelTaint(0)), []);
        loaded[0].build_id_note = Some(good);
        assert_eq!(findings(&loaded, &verified, KernelTaint(0)), []);
        loaded[0].build_id_note = Some(old.clone());
        let f = findings(&loaded, &verified, KernelTaint(0));
        assert_eq!(
            f,
            [Finding::OtherBuild {
                module: "virtio_blk".into(),
                note: old
            }]
        );
        assert_eq!(f[0].subject(), "virtio_blk");
        assert_eq!(
            f[0].to_string(),
            "module virtio_blk: loaded, but its build (build-id 01ab) is not that of any verified file of that name"
        );
        // A verified file without a note matches no loaded note.
        let f = findings(&loaded, &names(&["virtio_blk"]), KernelTaint(0));
        assert!(matches!(f[..], [Finding::OtherBuild { .. }]), "{f:?}");
        loaded[0].build_id_note = Some(b"junk".to_vec());
        assert_eq!(
            findings(&loaded, &verified, KernelTaint(0))[0].to_string(),
            "module virtio_blk: loaded, but its build (a build-id note of 4 bytes that does not parse) is not that of any verified file of that name"
        );
        // Unverified by name stays that finding alone.
        let f = findings(&loaded, &names(&["ext4"]), KernelTaint(0));
        assert!(matches!(f[..], [Finding::NotVerified { .. }]), "{f:?}");
    }

    #[test]
    fn read_loaded_joins_proc_and_sys() {
        let dir = tempfile::tempdir().unwrap();
        let proc_root = dir.path().join("proc");
        let sys_root = dir.path().join("sys");
        std::fs::create_dir_all(proc_root.join("sys/kernel")).unwrap();
        std::fs::create_dir_all(sys_root.join("module/virtio_blk")).unwrap();
        std::fs::write(
            proc_root.join("modules"),
            "virtio_blk 24576 3 - Live 0x0000000000000000\nautofs4 53248 2 - Live 0x0000000000000000\n",
        )
        .unwrap();
        std::fs::write(proc_root.join("sys/kernel/tainted"), "8192\n").unwrap();
        std::fs::write(sys_root.join("module/virtio_blk/taint"), "E\n").unwrap();
        let s = read_loaded(&proc_root, &sys_root).unwrap();
        assert_eq!(s.kernel, KernelTaint(8192));
        assert_eq!(s.loaded.len(), 2);
        assert!(s.loaded[0].taint.contains(Taint::UnsignedModule));
        assert!(s.loaded[1].taint.is_empty());
        assert_eq!(s.loaded[0].build_id_note, None);
        let notes = sys_root.join("module/virtio_blk/notes");
        std::fs::create_dir_all(&notes).unwrap();
        std::fs::write(notes.join(".note.gnu.build-id"), note(&[1, 2])).unwrap();
        let s = read_loaded(&proc_root, &sys_root).unwrap();
        assert_eq!(s.loaded[0].build_id_note, Some(note(&[1, 2])));
        std::fs::write(notes.join(".note.gnu.build-id"), vec![0; 4097]).unwrap();
        let e = read_loaded(&proc_root, &sys_root).unwrap_err();
        assert!(
            matches!(e, TaintError::Read(ReadError::TooLarge { .. })),
            "{e}"
        );
        std::fs::remove_file(notes.join(".note.gnu.build-id")).unwrap();
        std::fs::write(sys_root.join("module/virtio_blk/taint"), "?\n").unwrap();
        let e = read_loaded(&proc_root, &sys_root).unwrap_err();
        assert_eq!(
            e.to_string(),
            "module virtio_blk: /sys/module/virtio_blk/taint: module taint \"?\\n\": '?' is not a taint letter"
        );
        std::fs::remove_file(proc_root.join("sys/kernel/tainted")).unwrap();
        std::fs::write(sys_root.join("module/virtio_blk/taint"), "\n").unwrap();
        let e = read_loaded(&proc_root, &sys_root).unwrap_err();
        assert!(matches!(e, TaintError::Read(ReadError::Open { .. })), "{e}");
    }
}
