//! Real Debian kernels (scripts/fetch-kernels.sh) and a test machine made
//! from one: real modules, the kernel's certificate as the trust bundle, an
//! enrollment in a TPM, a `modseal.conf` (tests/boot.rs, tests/attest.rs).

use std::path::{Path, PathBuf};

use super::{code, describe, modseal, module_files, repo};

/// The directory scripts/fetch-kernels.sh fills: `MODSEAL_KERNELS` if set
/// and not empty (as the scripts' `${MODSEAL_KERNELS:-…}`), else
/// `<repo>/.cache/kernels`.
pub fn kernels_dir() -> PathBuf {
    match std::env::var_os("MODSEAL_KERNELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo().join(".cache").join("kernels"),
    }
}

/// One `KEY=` of `<kernels>/<suite>/env` (scripts/fetch-kernels.sh).
pub fn kernel_var(suite: &str, key: &str) -> String {
    let env = kernels_dir().join(suite).join("env");
    let text = std::fs::read_to_string(&env).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nThese tests need Debian's kernels: run scripts/fetch-kernels.sh \
             (or scripts/setup.sh), or point MODSEAL_KERNELS at a directory it made.",
            env.display()
        )
    });
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{key}= missing in {}", env.display()))
}

/// `suite`'s kernel image (`VMLINUZ=`), which must exist.
pub fn vmlinuz(suite: &str) -> PathBuf {
    let p = PathBuf::from(kernel_var(suite, "VMLINUZ"));
    assert!(
        p.is_file(),
        "{suite}: VMLINUZ {} missing; re-run scripts/fetch-kernels.sh",
        p.display()
    );
    p
}

/// One `KEY=` value of `<repo>/.cache/kernels/bookworm/env`. (Always under
/// the repository, not [`kernels_dir`]: the tests that use it have always
/// read it there.)
pub fn bookworm_var(key: &str) -> String {
    let env = repo().join(".cache/kernels/bookworm/env");
    let text = std::fs::read_to_string(&env).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/fetch-kernels.sh bookworm (or scripts/setup.sh) first",
            env.display()
        )
    });
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{key}= missing in {}", env.display()))
}

/// The bookworm kernel image and its module tree.
pub fn bookworm() -> (PathBuf, PathBuf) {
    (
        PathBuf::from(bookworm_var("VMLINUZ")),
        PathBuf::from(bookworm_var("MODULES")),
    )
}

/// The first module (in path order) under a directory.
pub fn first_module(dir: &Path) -> PathBuf {
    module_files(dir).into_iter().next().expect("a module")
}

/// A machine's files in one temporary directory: `modules/` (real bookworm
/// modules), `kernel.pem` (the kernel's certificate), `trust.bundle` (with
/// that as the anchor), `sealed` (the enrollment, PCR 7) and `modseal.conf`
/// (measuring into PCR 12, logging to `run/tpm2-measure.log`). The tests
/// hold it with their TPM.
pub struct MachineDir {
    dir: tempfile::TempDir,
}

impl MachineDir {
    /// `n` real bookworm modules (a stable choice: every `len/n`-th in path
    /// order), bundled and enrolled into the TPM at `tcti` (modseal's form);
    /// the bundle seals `mode`; `modseal.conf` is `conf_head` (tests/boot.rs
    /// opens it with a comment line, tests/attest.rs with nothing) and the
    /// paths.
    pub fn new(n: usize, tcti: &str, mode: &str, conf_head: &str) -> MachineDir {
        let (vmlinuz, tree) = bookworm();
        let m = MachineDir {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let files = module_files(&tree);
        assert!(
            files.len() >= n,
            "only {} modules in {}",
            files.len(),
            tree.display()
        );
        for f in files.iter().step_by(files.len() / n).take(n) {
            let dest = m.modules().join(f.strip_prefix(&tree).expect("under tree"));
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::copy(f, &dest).expect("copy module");
        }
        let keys = modseal(["keys".as_ref(), "from-kernel".as_ref(), vmlinuz.as_os_str()]);
        assert_eq!(code(&keys), 0, "{}", describe(&keys));
        std::fs::write(m.path("kernel.pem"), &keys.stdout).expect("write pem");
        m.seal(&["--mode", mode], tcti);
        let root = m.system_root();
        std::fs::create_dir_all(root.join("proc/sys/kernel")).expect("mkdir");
        std::fs::create_dir_all(root.join("sys/module")).expect("mkdir");
        std::fs::write(root.join("proc/modules"), "").expect("proc");
        std::fs::write(root.join("proc/sys/kernel/tainted"), "0\n").expect("proc");
        std::fs::write(
            m.path("modseal.conf"),
            format!(
                "{conf_head}trust = {}\nsealed = {}\nmodules = {}\nlog = {}\n",
                m.bundle().display(),
                m.path("sealed").display(),
                m.modules().display(),
                m.log().display()
            ),
        )
        .expect("config");
        m
    }

    /// Writes the bundle (the kernel's certificate plus `settings`, flags of
    /// `modseal bundle`) and enrolls it, sealed to PCR 7.
    pub fn seal(&self, settings: &[&str], tcti: &str) {
        let m = self;
        let mut args = vec![
            "bundle".to_owned(),
            "--anchor".into(),
            m.path("kernel.pem").display().to_string(),
            "--out".into(),
            m.bundle().display().to_string(),
        ];
        args.extend(settings.iter().map(|s| s.to_string()));
        let b = modseal(&args);
        assert_eq!(code(&b), 0, "{}", describe(&b));
        let e = modseal([
            "enroll",
            "--trust",
            &m.bundle().display().to_string(),
            "--pcrs",
            "7",
            "--out",
            &m.path("sealed").display().to_string(),
            "--tcti",
            tcti,
        ]);
        assert_eq!(code(&e), 0, "enroll: {}", describe(&e));
    }

    /// What `boot --system-root` reads as the running system: an empty
    /// /proc/modules, an untainted kernel.
    pub fn system_root(&self) -> PathBuf {
        self.path("system-root")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn modules(&self) -> PathBuf {
        self.path("modules")
    }
    pub fn bundle(&self) -> PathBuf {
        self.path("trust.bundle")
    }
    pub fn log(&self) -> PathBuf {
        self.path("run/tpm2-measure.log")
    }
    pub fn first_module(&self) -> PathBuf {
        first_module(&self.modules())
    }
}
