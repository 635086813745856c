//! `modseal keys from-kernel --signer CA VMLINUZ`: the real Debian kernels'
//! Authenticode signatures against the Debian Secure Boot CA, cross-checked
//! with `sbverify` (Debian's `sbsigntool`) both ways: a good image verifies
//! in both; a modified, stripped or re-signed copy fails in both; a copy
//! re-signed with a throwaway key verifies against that key's certificate
//! in both.
//!
//! Needs the kernels of scripts/fetch-kernels.sh (`<kernels>/<suite>/env`,
//! see tests/real_kernels.rs), the CA from Debian's `shim-unsigned`
//! (`/usr/share/shim/debian-uefi-ca.der`), `sbsigntool` and `openssl`. A
//! missing kernel, CA or tool is a failure, never a skip.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::*;

const SUITES: [&str; 3] = ["bookworm", "trixie", "trixie-backports"];

/// Where `shim-unsigned` installs the CA shim trusts for Debian's images.
const DEBIAN_CA: &str = "/usr/share/shim/debian-uefi-ca.der";

const SIGNER: &str = "Debian Secure Boot Signer 2022 - linux";

/// A work directory shared by the tests: the CA as PEM, a throwaway signing
/// key and certificate.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn ca(&self) -> PathBuf {
        self.path("debian-ca.pem")
    }
    fn other_key(&self) -> PathBuf {
        self.path("other.key")
    }
    fn other_cert(&self) -> PathBuf {
        self.path("other.pem")
    }
}

fn work() -> &'static Work {
    static WORK: OnceLock<Work> = OnceLock::new();
    WORK.get_or_init(|| {
        assert!(
            Path::new(DEBIAN_CA).is_file(),
            "{DEBIAN_CA} missing: install Debian's shim-unsigned (scripts/setup.sh)"
        );
        let w = Work {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let p = |p: PathBuf| p.into_os_string();
        let (ca, key, cert) = (p(w.ca()), p(w.other_key()), p(w.other_cert()));
        run(std::process::Command::new("openssl").args([
            OsStr::new("x509"),
            "-inform".as_ref(),
            "der".as_ref(),
            "-in".as_ref(),
            DEBIAN_CA.as_ref(),
            "-out".as_ref(),
            &ca,
        ]));
        run(std::process::Command::new("openssl").args([
            OsStr::new("req"),
            "-new".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "rsa:2048".as_ref(),
            "-nodes".as_ref(),
            "-subj".as_ref(),
            "/CN=Throwaway Secure Boot Signer".as_ref(),
            "-days".as_ref(),
            "2".as_ref(),
            "-addext".as_ref(),
            "extendedKeyUsage=codeSigning".as_ref(),
            "-keyout".as_ref(),
            &key,
            "-out".as_ref(),
            &cert,
        ]));
        w
    })
}

/// `sbverify --cert CA IMAGE` succeeds.
fn sbverify(ca: &Path, image: &Path) -> bool {
    tool(
        "sbverify",
        &["--cert".as_ref(), ca.as_os_str(), image.as_os_str()],
    )
    .status
    .success()
}

fn from_kernel(ca: &Path, image: &Path) -> Output {
    modseal([
        "keys".as_ref(),
        "from-kernel".as_ref(),
        "--signer".as_ref(),
        ca.as_os_str(),
        image.as_os_str(),
    ])
}

/// The refusal's message, after checking the exit status and that nothing
/// was printed.
fn refused(out: &Output) -> String {
    assert_eq!(code(out), 1, "{}", describe(out));
    assert!(out.stdout.is_empty(), "{}", describe(out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of the suite's image under `name`.
fn copy(suite: &str, name: &str) -> PathBuf {
    let dst = work().path(&format!("{suite}-{name}.efi"));
    std::fs::copy(vmlinuz(suite), &dst).expect("copy the kernel image");
    dst
}

/// A copy named `name` with its signature removed.
fn stripped(suite: &str, name: &str) -> PathBuf {
    let p = copy(suite, name);
    run(std::process::Command::new("sbattach").args([OsStr::new("--remove"), p.as_os_str()]));
    p
}

fn resigned(suite: &str) -> PathBuf {
    let unsigned = stripped(suite, "unsigned");
    let p = work().path(&format!("{suite}-resigned.efi"));
    let w = work();
    run(std::process::Command::new("sbsign").args([
        OsStr::new("--key"),
        w.other_key().as_os_str(),
        "--cert".as_ref(),
        w.other_cert().as_os_str(),
        "--output".as_ref(),
        p.as_os_str(),
        unsigned.as_os_str(),
    ]));
    p
}

#[test]
fn the_debian_kernels_verify_against_the_debian_ca_and_print_their_key() {
    for suite in SUITES {
        let image = vmlinuz(suite);
        let ca = work().ca();
        assert!(sbverify(&ca, &image), "{suite}: sbverify refuses the image");
        for anchor in [ca.as_path(), Path::new(DEBIAN_CA)] {
            let out = from_kernel(anchor, &image);
            assert_eq!(code(&out), 0, "{suite}: {}", describe(&out));
            let plain = modseal(["keys".as_ref(), "from-kernel".as_ref(), image.as_os_str()]);
            assert_eq!(out.stdout, plain.stdout, "{suite}: the same certificates");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!(
                    "Authenticode signature verified: signer '{SIGNER}', issued by 'Debian Secure Boot CA' (sha256 "
                )),
                "{suite}: {err}"
            );
            assert!(err.contains("certificate 'Build time autogenerated kernel key'"));
        }
    }
}

#[test]
fn a_modified_image_is_refused_by_both() {
    for suite in SUITES {
        let image = copy(suite, "modified");
        let bytes = std::fs::read(&image).expect("read");
        let pe = modseal::image::pe::parse(&bytes).expect("a PE image");
        let text = pe
            .sections
            .iter()
            .find(|s| s.raw_size > 64)
            .expect("a section with data");
        xor_byte(&image, text.raw_offset as usize + 32, 0x01);
        assert!(
            !sbverify(&work().ca(), &image),
            "{suite}: sbverify takes it"
        );
        let err = refused(&from_kernel(&work().ca(), &image));
        assert!(
            err.contains("digest mismatch: the signature is for sha256 ")
                && err.contains("(the image was modified after signing)"),
            "{suite}: {err}"
        );
    }
}

#[test]
fn a_stripped_image_is_refused_by_both() {
    for suite in SUITES {
        let image = stripped(suite, "stripped");
        assert!(
            !sbverify(&work().ca(), &image),
            "{suite}: sbverify takes it"
        );
        let err = refused(&from_kernel(&work().ca(), &image));
        assert!(
            err.ends_with(
                ": no Authenticode signature (the image is unsigned, or its signature was stripped)\n"
            ),
            "{suite}: {err}"
        );
    }
}

#[test]
fn a_re_signed_image_verifies_only_against_its_own_signer_in_both() {
    for suite in SUITES {
        let image = resigned(suite);
        let w = work();
        assert!(!sbverify(&w.ca(), &image), "{suite}: sbverify takes it");
        let err = refused(&from_kernel(&w.ca(), &image));
        assert!(
            err.contains(
                "signer 'Throwaway Secure Boot Signer' is not issued by the CA 'Debian Secure Boot CA': \
                 no anchor issued 'Throwaway Secure Boot Signer'"
            ),
            "{suite}: {err}"
        );
        assert!(
            sbverify(&w.other_cert(), &image),
            "{suite}: sbverify refuses its own signer"
        );
        let out = from_kernel(&w.other_cert(), &image);
        assert_eq!(code(&out), 0, "{suite}: {}", describe(&out));
        // The original image's signer does not chain to the throwaway one.
        let err = refused(&from_kernel(&w.other_cert(), &vmlinuz(suite)));
        assert!(
            err.contains(&format!(
                "signer '{SIGNER}' is not issued by the CA 'Throwaway Secure Boot Signer'"
            )),
            "{suite}: {err}"
        );
    }
}

/// `sbsign` on a signed image adds a second signature; shim and sbverify
/// take that, the kernel's `pefile_strip_sig_wrapper()` does not (one
/// `WIN_CERTIFICATE` filling the table), and modseal follows the kernel.
#[test]
fn a_second_signature_is_refused_as_the_kernel_refuses_it() {
    let w = work();
    let image = w.path("bookworm-double.efi");
    run(std::process::Command::new("sbsign").args([
        OsStr::new("--key"),
        w.other_key().as_os_str(),
        "--cert".as_ref(),
        w.other_cert().as_os_str(),
        "--output".as_ref(),
        image.as_os_str(),
        vmlinuz("bookworm").as_os_str(),
    ]));
    assert!(
        sbverify(&w.ca(), &image),
        "sbverify takes the first signature"
    );
    let err = refused(&from_kernel(&w.ca(), &image));
    assert!(
        err.contains("signature wrapper (WIN_CERTIFICATE): dwLength ")
            && err.contains("does not fill the attribute certificate table"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_pe_image_is_named() {
    let elf = work().path("not-pe");
    let mut bytes = b"\x7fELF\x02\x01\x01\0".to_vec();
    bytes.resize(4096, 0);
    std::fs::write(&elf, bytes).expect("write");
    let err = refused(&from_kernel(&work().ca(), &elf));
    assert!(err.contains(": not a PE image: no MZ signature"), "{err}");
    let missing = modseal([
        "keys".as_ref(),
        "from-kernel".as_ref(),
        "--signer".as_ref(),
        work().path("no-such-ca.pem").as_os_str(),
        vmlinuz("bookworm").as_os_str(),
    ]);
    assert_eq!(code(&missing), 2, "{}", describe(&missing));
}

/// The verification alone (the library call), timed for the docs.
#[test]
fn verification_time() {
    let ca = std::fs::read(DEBIAN_CA).expect("the CA");
    let ca = modseal::trust::cert::Certificate::from_der(&ca).expect("the CA parses");
    for suite in SUITES {
        let bytes = std::fs::read(vmlinuz(suite)).expect("read");
        let start = std::time::Instant::now();
        let signed = modseal::image::authenticode::verify_image(&bytes, std::slice::from_ref(&ca))
            .unwrap_or_else(|e| panic!("{suite}: {e}"));
        eprintln!(
            "{suite}: {} bytes verified in {:?} (signer '{}')",
            bytes.len(),
            start.elapsed(),
            signed.signer.name
        );
        assert_eq!(signed.signer.name, SIGNER);
        assert_eq!(signed.anchor.name, "Debian Secure Boot CA");
        assert_eq!(
            signed.sha256,
            modseal::image::pe::authenticode_sha256(&bytes).expect("digest")
        );
    }
}

/// A trust bundle whose only certificate is the Debian CA as a kernel signer.
fn signer_bundle() -> PathBuf {
    let b = work().path("kernel-signer.bundle");
    if !b.is_file() {
        let out = modseal([
            "bundle".as_ref(),
            "--kernel-signer".as_ref(),
            DEBIAN_CA.as_ref(),
            "--out".as_ref(),
            b.as_os_str(),
        ]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }
    b
}

fn derive(image: &Path, out: &Path) -> Output {
    modseal([
        "keys".as_ref(),
        "derive".as_ref(),
        "--trust".as_ref(),
        signer_bundle().as_os_str(),
        "--kernel".as_ref(),
        image.as_os_str(),
        "--release".as_ref(),
        "6.1.0-test".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

#[test]
fn derive_writes_the_kernels_own_keys_only_for_a_signed_image() {
    for suite in SUITES {
        let out = work().path(&format!("{suite}.derived"));
        let good = derive(&vmlinuz(suite), &out);
        assert_eq!(code(&good), 0, "{}", describe(&good));
        let text = std::fs::read_to_string(&out).expect("derived anchor written");
        assert!(
            text.starts_with("modseal-derived-anchor v1\nrelease 6.1.0-test\n"),
            "{text}"
        );
        assert!(text.contains(&format!("image-signer {SIGNER}\n")), "{text}");
        // The key is the one `keys from-kernel` prints, after the same check.
        let keys = from_kernel(&work().ca(), &vmlinuz(suite));
        let pem = String::from_utf8_lossy(&keys.stdout).into_owned();
        assert!(
            !pem.is_empty() && text.contains(pem.trim()),
            "{text}\n---\n{pem}"
        );
        // The kernel's Authenticode digest is recorded: osslsigncode's.
        let sha = osslsigncode_sha256(&vmlinuz(suite));
        assert!(text.contains(&format!("kernel-sha256 {sha}\n")), "{text}");
        for (name, image) in [
            ("stripped", stripped(suite, "derive-stripped")),
            ("re-signed", resigned(suite)),
        ] {
            let bad_out = work().path(&format!("{suite}-{name}.derived"));
            let bad = derive(&image, &bad_out);
            assert_eq!(code(&bad), 1, "{suite} {name}: {}", describe(&bad));
            let err = String::from_utf8_lossy(&bad.stderr);
            assert!(
                err.contains("Authenticode signature") && err.contains("not trusted"),
                "{err}"
            );
            assert!(!bad_out.exists(), "{suite} {name}: nothing may be written");
        }
    }
}

/// The image's Authenticode SHA-256 as osslsigncode computes it (an
/// implementation independent of modseal's).
fn osslsigncode_sha256(image: &Path) -> String {
    let out = tool(
        "osslsigncode",
        &["verify".as_ref(), "-in".as_ref(), image.as_os_str()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Calculated message digest :"))
        .map(|h| h.trim().replace(' ', "").to_lowercase())
        .unwrap_or_else(|| panic!("no calculated digest from osslsigncode: {text}"))
}

#[test]
fn verify_with_kernel_trusts_its_modules_through_the_debian_ca_alone() {
    for suite in SUITES {
        let tree = PathBuf::from(kernel_var(suite, "MODULES"));
        let mods: Vec<PathBuf> = module_files(&tree).into_iter().step_by(400).collect();
        let mut args: Vec<std::ffi::OsString> = vec![
            "verify".into(),
            "--trust".into(),
            DEBIAN_CA.into(),
            "--kernel".into(),
            vmlinuz(suite).into(),
        ];
        args.extend(mods.iter().map(|m| m.clone().into_os_string()));
        let ok = modseal(&args);
        assert_eq!(code(&ok), 0, "{suite}: {}", describe(&ok));
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert!(
            stdout.contains(&format!("{} verified, 0 failed", mods.len())),
            "{stdout}"
        );
        // The CA alone, without the kernel, vouches for no module.
        args.drain(3..5);
        let no_kernel = modseal(&args);
        assert_eq!(code(&no_kernel), 1, "{suite}: {}", describe(&no_kernel));
        // A stripped image gives no keys at all.
        args.splice(
            3..3,
            ["--kernel".into(), stripped(suite, "verify-stripped").into()],
        );
        let stripped_out = modseal(&args);
        assert_eq!(
            code(&stripped_out),
            1,
            "{suite}: {}",
            describe(&stripped_out)
        );
        assert!(String::from_utf8_lossy(&stripped_out.stderr)
            .contains("its built-in keys are not trusted"));
    }
}
