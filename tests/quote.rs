//! `modseal quote` against swtpm, cross-checked with tpm2-tools: each test
//! starts its own swtpm (tests/common/swtpm.rs). `tpm2_checkquote` judges the
//! quotes, `tpm2_createprimary`/`tpm2_readpublic`/`tpm2_quote` check that the
//! AK and the files are tpm2-tools' own. swtpm and tpm2-tools missing is a
//! failure, not a skip (scripts/setup.sh installs both).

mod common;
#[path = "common/firmware.rs"]
mod firmware;
#[path = "common/swtpm.rs"]
mod swtpm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    code, describe, flip_byte, hex, modseal, output_of, run, stderr, stdout, tpm2_command,
};
use modseal::attest::evidence::QUOTE_FILES;
use modseal::attest::quote_msg::parse_attest;
use swtpm::Swtpm;

const AK_HANDLE: &str = "0x81010100";
const AK_ATTRS: &str = "restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth";

/// A test's TPM and scratch directory.
struct Env {
    tpm: Swtpm,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            tpm: Swtpm::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// A tpm2-tools program against this TPM, run in the scratch directory
    /// (relative file names are under it).
    fn tool_command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = tpm2_command(program, args, &self.tpm.tools_tcti());
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Its output, whatever its exit status.
    fn tool_output(&self, program: &str, args: &[&str]) -> Output {
        output_of(&mut self.tool_command(program, args))
    }

    /// Its output; panics unless it succeeds.
    fn tool(&self, program: &str, args: &[&str]) -> Output {
        run(&mut self.tool_command(program, args))
    }

    /// `modseal quote` with this TPM and `DIR/ak` as --ak-dir.
    fn quote(&self, nonce: &str, out: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "quote".to_owned(),
            "--tcti".into(),
            self.tpm.tcti(),
            "--nonce".into(),
            nonce.into(),
            "--ak-dir".into(),
            self.s("ak"),
            "--out".into(),
            self.s(out),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        modseal(args)
    }

    fn quote_ok(&self, nonce: &str, out: &str, extra: &[&str]) -> String {
        let o = self.quote(nonce, out, extra);
        assert_eq!(
            code(&o),
            0,
            "modseal quote failed:\n{}\n{}",
            describe(&o),
            self.tpm.log()
        );
        stdout(&o)
    }

    fn checkquote(&self, pem: &str, dir: &str, nonce: &str) -> Output {
        let d = |f: &str| format!("{}/{f}", self.s(dir));
        self.tool_output(
            "tpm2_checkquote",
            &[
                "-u",
                pem,
                "-m",
                &d("quote.msg"),
                "-s",
                &d("quote.sig"),
                "-f",
                &d("quote.pcrs"),
                "-g",
                "sha256",
                "-q",
                nonce,
            ],
        )
    }

    fn extend(&self, pcr: u8, byte: u8) {
        self.tool(
            "tpm2_pcrextend",
            &[&format!("{pcr}:sha256={}", hex(&[byte; 32]))],
        );
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The persistent handles in the TPM.
    fn persistent_handles(&self) -> String {
        stdout(&self.tool("tpm2_getcap", &["handles-persistent"]))
    }

    /// A sample event log (its bytes are copied, not interpreted, by quote).
    fn write_log(&self) -> PathBuf {
        let p = self.path("tpm2-measure.log");
        std::fs::write(
            &p,
            b"\x1e{\"pcr\":12,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"00\"}],\"content_type\":\"modseal\",\"content\":{}}\n",
        )
        .unwrap();
        p
    }
}

fn nonce(n: usize, seed: u8) -> String {
    hex(&(0..n)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect::<Vec<_>>())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn quote_is_accepted_by_tpm2_checkquote() {
    let env = Env::new();
    env.extend(12, 0xaa);
    let log = env.write_log();
    let n = nonce(20, 1);
    let fw = firmware::sample();
    let line = env.quote_ok(
        &n,
        "q",
        &[
            "--pcrs",
            "sha256:0,7,12",
            "--log",
            log.to_str().unwrap(),
            "--firmware-log",
            fw.to_str().unwrap(),
        ],
    );
    assert!(
        line.starts_with("quoted sha256:0,7,12 with AK 0x81010100 (rsa2048, created, name 000b"),
        "{line}"
    );
    assert!(line.contains(": 6 TPM commands, "), "{line}");
    let o = env.checkquote(&env.s("q/ak.pem"), "q", &n);
    assert!(
        o.status.success(),
        "tpm2_checkquote refused:\n{}",
        describe(&o)
    );
    // checkquote prints the PCR values it hashed: PCR 12 is the extended one.
    env.tool("tpm2_pcrread", &["-Q", "-o", "p12.bin", "sha256:12"]);
    let pcr12 = hex(&env.read("p12.bin")).to_uppercase();
    assert_ne!(pcr12, "00".repeat(32));
    assert!(
        stdout(&o).contains(&format!("12: 0x{pcr12}")),
        "{}",
        stdout(&o)
    );

    let mut expect: Vec<String> = QUOTE_FILES.iter().map(|s| s.to_string()).collect();
    expect.sort();
    assert_eq!(names_in(&env.path("q")), expect);
    assert_eq!(env.read("q/tpm2-measure.log"), std::fs::read(&log).unwrap());
    assert_eq!(env.read("q/binary_bios_measurements"), firmware::bytes());
    assert_eq!(env.read("q/nonce"), format!("{n}\n").into_bytes());
    assert_eq!(env.read("q/ak.pem"), env.read("ak/ak.pem"));
    assert_eq!(env.read("q/ak.pub"), env.read("ak/ak.pub"));
    let a = env.read("q/quote.msg");
    let attest = parse_attest(&a).unwrap();
    assert_eq!(hex(&attest.extra_data), n);
    // Nothing left beside the output directory.
    assert_eq!(
        names_in(env.dir.path())
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .count(),
        0
    );
}

#[test]
fn tampered_or_stale_quotes_are_refused_by_tpm2_checkquote() {
    let env = Env::new();
    env.extend(12, 0x01);
    let n = nonce(32, 2);
    env.quote_ok(
        &n,
        "q",
        &["--pcrs", "sha256:0,7,12", "--no-log", "--no-firmware-log"],
    );
    let pem = env.s("q/ak.pem");
    assert!(env.checkquote(&pem, "q", &n).status.success());
    // Another nonce: stale.
    let o = env.checkquote(&pem, "q", &nonce(32, 3));
    assert!(!o.status.success(), "a wrong nonce was accepted");
    assert!(stderr(&o).contains("nonce"), "{}", describe(&o));
    // Each file tampered with, one at a time.
    let copy = |name: &str| {
        let d = env.path(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in ["quote.msg", "quote.sig", "quote.pcrs"] {
            std::fs::copy(env.path("q").join(f), d.join(f)).unwrap();
        }
        d
    };
    // The last byte of pcrDigest, a byte of the signature, the first byte of
    // the first PCR value (after the 132-byte selection, the list count, the
    // digest count and the size).
    for (file, offset) in [
        ("quote.msg", None),
        ("quote.sig", Some(100)),
        ("quote.pcrs", Some(142)),
    ] {
        let d = copy(&format!("t-{file}"));
        let len = std::fs::metadata(d.join(file)).unwrap().len() as usize;
        flip_byte(&d.join(file), offset.unwrap_or(len - 1));
        let o = env.checkquote(&pem, &format!("t-{file}"), &n);
        assert!(!o.status.success(), "tampered {file} was accepted");
    }
    // And an untampered copy still passes (the copies are not broken as such).
    copy("t-none");
    assert!(env.checkquote(&pem, "t-none", &n).status.success());
}

#[test]
fn the_second_quote_reuses_the_ak() {
    let env = Env::new();
    let first = env.quote_ok(&nonce(16, 4), "q1", &["--no-log", "--no-firmware-log"]);
    assert!(first.contains("(rsa2048, created, "), "{first}");
    let pem = env.read("ak/ak.pem");
    let second = env.quote_ok(&nonce(16, 5), "q2", &["--no-log", "--no-firmware-log"]);
    assert!(second.contains("(rsa2048, reused, "), "{second}");
    // ReadPublic (its name matches ak/ak.pub), Quote, PCR_Read.
    assert!(second.contains(": 3 TPM commands, "), "{second}");
    assert_eq!(env.read("q2/ak.pem"), pem);
    assert_eq!(env.read("ak/ak.pem"), pem);
    assert!(env
        .checkquote(&env.s("q1/ak.pem"), "q2", &nonce(16, 5))
        .status
        .success());
    // One persistent object, at the default handle.
    let handles = env.persistent_handles();
    assert_eq!(handles.matches("0x81").count(), 1, "{handles}");
    assert!(handles.contains(AK_HANDLE), "{handles}");
    // Without the cached ak.pub the TPM is asked for the public area once
    // more, and --ak-dir is written again.
    std::fs::remove_dir_all(env.path("ak")).unwrap();
    let third = env.quote_ok(&nonce(16, 6), "q3", &["--no-log", "--no-firmware-log"]);
    assert!(
        third.contains("reused") && third.contains(": 4 TPM commands, "),
        "{third}"
    );
    assert_eq!(env.read("ak/ak.pem"), pem);
    // A stale ak.pub in --ak-dir (another key) is not believed.
    let mut stale = env.read("ak/ak.pub");
    let last = stale.len() - 1;
    stale[last] ^= 1;
    std::fs::write(env.path("ak/ak.pub"), &stale).unwrap();
    let fourth = env.quote_ok(&nonce(16, 7), "q4", &["--no-log", "--no-firmware-log"]);
    assert!(fourth.contains(": 4 TPM commands, "), "{fourth}");
    assert_eq!(env.read("q4/ak.pem"), pem);
    assert_ne!(env.read("ak/ak.pub"), stale, "--ak-dir repaired");
}

#[test]
fn the_ak_is_the_one_tpm2_createprimary_makes() {
    let env = Env::new();
    env.quote_ok(&nonce(8, 8), "q", &["--no-log", "--no-firmware-log"]);
    // The same template through tpm2-tools gives the same key.
    env.tool(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "e",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            AK_ATTRS,
            "-c",
            "t.ctx",
        ],
    );
    env.tool("tpm2_readpublic", &["-Q", "-c", "t.ctx", "-o", "tools.pub"]);
    env.tool("tpm2_flushcontext", &["-t"]);
    assert_eq!(env.read("tools.pub"), env.read("ak/ak.pub"));
    // And the files are what tpm2_readpublic writes for the persistent AK.
    env.tool(
        "tpm2_readpublic",
        &["-Q", "-c", AK_HANDLE, "-o", "h.pub", "-n", "h.name"],
    );
    env.tool(
        "tpm2_readpublic",
        &["-Q", "-c", AK_HANDLE, "-f", "pem", "-o", "h.pem"],
    );
    assert_eq!(env.read("h.pub"), env.read("ak/ak.pub"));
    assert_eq!(env.read("h.name"), env.read("ak/ak.name"));
    assert_eq!(env.read("h.pem"), env.read("ak/ak.pem"));
    assert_eq!(env.read("h.pem"), env.read("q/ak.pem"));
}

#[test]
fn an_ak_persisted_by_tpm2_tools_is_reused() {
    let env = Env::new();
    env.tool(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "e",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            AK_ATTRS,
            "-c",
            "t.ctx",
        ],
    );
    env.tool(
        "tpm2_evictcontrol",
        &["-Q", "-C", "o", "-c", "t.ctx", AK_HANDLE],
    );
    env.tool("tpm2_flushcontext", &["-t"]);
    env.tool(
        "tpm2_readpublic",
        &["-Q", "-c", AK_HANDLE, "-f", "pem", "-o", "h.pem"],
    );
    let line = env.quote_ok(&nonce(12, 9), "q", &["--no-log", "--no-firmware-log"]);
    assert!(line.contains("(rsa2048, reused, "), "{line}");
    assert_eq!(env.read("q/ak.pem"), env.read("h.pem"));
    assert!(env
        .checkquote(&env.s("h.pem"), "q", &nonce(12, 9))
        .status
        .success());
}

#[test]
fn tpm2_quote_with_modseal_s_ak_writes_the_same_formats() {
    let env = Env::new();
    env.extend(7, 0x07);
    let n = nonce(24, 10);
    env.quote_ok(
        &n,
        "q",
        &["--pcrs", "sha256:0,7,12", "--no-log", "--no-firmware-log"],
    );
    std::fs::create_dir(env.path("t")).unwrap();
    env.tool(
        "tpm2_quote",
        &[
            "-Q",
            "-c",
            AK_HANDLE,
            "-l",
            "sha256:0,7,12",
            "-q",
            &n,
            "-m",
            "t/quote.msg",
            "-s",
            "t/quote.sig",
            "-o",
            "t/quote.pcrs",
        ],
    );
    // tpm2_checkquote accepts tpm2_quote's quote with modseal's ak.pem.
    let o = env.checkquote(&env.s("q/ak.pem"), "t", &n);
    assert!(o.status.success(), "{}", describe(&o));
    // The PCRs did not move: the PCR files are byte for byte the same.
    assert_eq!(env.read("t/quote.pcrs"), env.read("q/quote.pcrs"));
    // Same structures; only the clock differs between the two quotes.
    let (tm, qm) = (env.read("t/quote.msg"), env.read("q/quote.msg"));
    assert_eq!(tm.len(), qm.len());
    let (ta, qa) = (parse_attest(&tm).unwrap(), parse_attest(&qm).unwrap());
    assert_eq!(ta.qualified_signer, qa.qualified_signer);
    assert_eq!(ta.extra_data, qa.extra_data);
    assert_eq!(ta.pcr_select, qa.pcr_select);
    assert_eq!(ta.pcr_digest, qa.pcr_digest);
    assert_eq!(ta.firmware_version, qa.firmware_version);
    assert!(ta.clock >= qa.clock);
    let (ts, qs) = (env.read("t/quote.sig"), env.read("q/quote.sig"));
    assert_eq!(ts.len(), qs.len());
    assert_eq!(&ts[..6], &qs[..6]); // RSASSA, SHA-256, 256 bytes
    assert_eq!(&qs[..6], &[0x00, 0x14, 0x00, 0x0b, 0x01, 0x00]);
}

#[test]
fn more_pcrs_than_one_pcr_read_returns_match_tpm2_quote() {
    // 17 PCRs in two banks: three PCR_Read responses, three TPML_DIGESTs.
    let env = Env::new();
    let n = nonce(4, 11);
    env.quote_ok(
        &n,
        "q",
        &[
            "--pcrs",
            "sha1:12+sha256:0-15",
            "--no-log",
            "--no-firmware-log",
        ],
    );
    assert_eq!(env.read("q/quote.pcrs").len(), 132 + 4 + 3 * 532);
    std::fs::create_dir(env.path("t")).unwrap();
    env.tool(
        "tpm2_quote",
        &[
            "-Q",
            "-c",
            AK_HANDLE,
            "-l",
            "sha1:12+sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "-q",
            &n,
            "-m",
            "t/quote.msg",
            "-s",
            "t/quote.sig",
            "-o",
            "t/quote.pcrs",
        ],
    );
    assert_eq!(env.read("t/quote.pcrs"), env.read("q/quote.pcrs"));
    assert!(env.checkquote(&env.s("q/ak.pem"), "q", &n).status.success());
}

#[test]
fn ecc_ak() {
    let env = Env::new();
    let n = nonce(32, 12);
    let line = env.quote_ok(
        &n,
        "q",
        &["--ak-alg", "ecc", "--no-log", "--no-firmware-log"],
    );
    assert!(line.contains("(ecc-p256, created, "), "{line}");
    let o = env.checkquote(&env.s("q/ak.pem"), "q", &n);
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(&env.read("q/quote.sig")[..4], &[0x00, 0x18, 0x00, 0x0b]); // ECDSA, SHA-256
    assert!(String::from_utf8(env.read("q/ak.pem"))
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"));
    env.tool(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "e",
            "-G",
            "ecc256:ecdsa-sha256:null",
            "-a",
            AK_ATTRS,
            "-c",
            "t.ctx",
        ],
    );
    env.tool("tpm2_readpublic", &["-Q", "-c", "t.ctx", "-o", "tools.pub"]);
    env.tool("tpm2_flushcontext", &["-t"]);
    assert_eq!(env.read("tools.pub"), env.read("ak/ak.pub"));
    env.tool(
        "tpm2_readpublic",
        &["-Q", "-c", AK_HANDLE, "-f", "pem", "-o", "h.pem"],
    );
    assert_eq!(env.read("h.pem"), env.read("ak/ak.pem"));
    // Reused without --ak-alg; refused when --ak-alg names the other type.
    let again = env.quote_ok(&n, "q2", &["--no-log", "--no-firmware-log"]);
    assert!(again.contains("(ecc-p256, reused, "), "{again}");
    let o = env.quote(
        &n,
        "q3",
        &["--ak-alg", "rsa", "--no-log", "--no-firmware-log"],
    );
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(
        stderr(&o).contains("holds an ecc-p256 attestation key, not the rsa2048 one"),
        "{}",
        describe(&o)
    );
    assert!(!env.path("q3").exists());
}

#[test]
fn a_handle_holding_another_object_is_refused_and_kept() {
    let env = Env::new();
    // A storage key (restricted|decrypt) at the AK handle.
    env.tool(
        "tpm2_createprimary",
        &["-Q", "-C", "o", "-G", "rsa2048", "-c", "srk.ctx"],
    );
    env.tool(
        "tpm2_evictcontrol",
        &["-Q", "-C", "o", "-c", "srk.ctx", AK_HANDLE],
    );
    env.tool("tpm2_flushcontext", &["-t"]);
    env.tool(
        "tpm2_readpublic",
        &["-Q", "-c", AK_HANDLE, "-o", "before.pub"],
    );
    let handles = env.persistent_handles();
    let o = env.quote(&nonce(8, 13), "q", &["--no-log", "--no-firmware-log"]);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    let e = stderr(&o);
    assert!(
        e.contains("persistent handle 0x81010100 holds a different object"),
        "{e}"
    );
    assert!(e.contains("restricted|decrypt"), "{e}");
    assert!(e.contains("tpm2_evictcontrol -C o -c 0x81010100"), "{e}");
    env.tool(
        "tpm2_readpublic",
        &["-Q", "-c", AK_HANDLE, "-o", "after.pub"],
    );
    assert_eq!(env.read("before.pub"), env.read("after.pub"));
    assert_eq!(env.persistent_handles(), handles);
    assert!(!env.path("q").exists());
    assert!(!env.path("ak").exists());

    // A key shaped like the AK but under the owner hierarchy: refused too.
    env.tool(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "o",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            AK_ATTRS,
            "-c",
            "o.ctx",
        ],
    );
    env.tool(
        "tpm2_evictcontrol",
        &["-Q", "-C", "o", "-c", "o.ctx", "0x81010101"],
    );
    env.tool("tpm2_flushcontext", &["-t"]);
    let o = env.quote(
        &nonce(8, 14),
        "q",
        &["--no-log", "--no-firmware-log", "--ak-handle", "0x81010101"],
    );
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(
        stderr(&o).contains("not a primary key of the endorsement hierarchy"),
        "{}",
        describe(&o)
    );
    assert!(!env.path("q").exists());

    // A free handle still works.
    let line = env.quote_ok(
        &nonce(8, 15),
        "q",
        &["--no-log", "--no-firmware-log", "--ak-handle", "0x81010102"],
    );
    assert!(
        line.contains("with AK 0x81010102 (rsa2048, created"),
        "{line}"
    );
}

#[test]
fn out_is_not_half_written_when_the_tpm_is_gone() {
    let mut env = Env::new();
    let n = nonce(16, 16);
    env.quote_ok(&n, "q", &["--no-log", "--no-firmware-log"]);
    let before: Vec<(String, Vec<u8>)> = names_in(&env.path("q"))
        .into_iter()
        .map(|f| {
            let b = env.read(&format!("q/{f}"));
            (f, b)
        })
        .collect();
    env.tpm.stop();
    let o = env.quote(&nonce(16, 17), "q", &["--no-log", "--no-firmware-log"]);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(stderr(&o).contains("no TPM at 'swtpm:"), "{}", describe(&o));
    let after: Vec<(String, Vec<u8>)> = names_in(&env.path("q"))
        .into_iter()
        .map(|f| {
            let b = env.read(&format!("q/{f}"));
            (f, b)
        })
        .collect();
    assert_eq!(before, after, "the earlier quote is intact");
    let o = env.quote(&nonce(16, 18), "fresh", &["--no-log", "--no-firmware-log"]);
    assert_eq!(code(&o), 1);
    assert!(!env.path("fresh").exists());
    assert!(names_in(env.dir.path()).iter().all(|n| !n.starts_with('.')));
}

#[test]
fn bad_arguments_are_usage_errors_before_the_tpm() {
    let env = Env::new();
    // A TCTI nobody answers on: a usage error must come first (exit 2, not 1).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("swtpm:host=127.0.0.1,port={port}");
    let run = |args: &[&str]| {
        let mut a = vec!["quote", "--tcti", &dead, "--ak-dir"];
        let ak = env.s("ak");
        let out = env.s("q");
        a.push(&ak);
        a.extend_from_slice(&["--out", &out]);
        a.extend_from_slice(args);
        modseal(a)
    };
    let too_long = nonce(65, 19);
    let log = env.s("absent.log");
    for (args, says) in [
        (
            vec!["--nonce", &too_long, "--no-log", "--no-firmware-log"],
            "65 bytes, more than the 64",
        ),
        (
            vec!["--nonce", "abc", "--no-log", "--no-firmware-log"],
            "not hex",
        ),
        (
            vec!["--nonce", "", "--no-log", "--no-firmware-log"],
            "empty nonce",
        ),
        (
            vec![
                "--nonce",
                "00",
                "--pcrs",
                "24",
                "--no-log",
                "--no-firmware-log",
            ],
            "not a PCR index",
        ),
        (
            vec![
                "--nonce",
                "00",
                "--pcrs",
                "md5:1",
                "--no-log",
                "--no-firmware-log",
            ],
            "unknown bank",
        ),
        (
            vec![
                "--nonce",
                "00",
                "--ak-handle",
                "0x80000001",
                "--no-log",
                "--no-firmware-log",
            ],
            "not a persistent handle",
        ),
        (
            vec![
                "--nonce",
                "00",
                "--ak-alg",
                "dsa",
                "--no-log",
                "--no-firmware-log",
            ],
            "invalid value",
        ),
        (vec!["--nonce", "00", "--log", &log], "--no-log"),
        // No securityfs on the host: the default firmware log is missing.
        (
            vec!["--nonce", "00", "--no-log"],
            "--firmware-log /sys/kernel/security/tpm0/binary_bios_measurements: cannot open: ",
        ),
        (
            vec!["--nonce", "00", "--no-log"],
            "mount -t securityfs securityfs /sys/kernel/security",
        ),
        (
            vec!["--nonce", "00", "--no-log", "--firmware-log", &log],
            "absent.log: cannot open",
        ),
        (
            vec![
                "--nonce",
                "00",
                "--no-log",
                "--firmware-log",
                &log,
                "--no-firmware-log",
            ],
            "cannot be used with",
        ),
    ] {
        let o = run(&args);
        assert_eq!(code(&o), 2, "{args:?}:\n{}", describe(&o));
        assert!(
            stderr(&o).contains(says),
            "{args:?}: expected '{says}':\n{}",
            describe(&o)
        );
    }
    std::fs::create_dir(env.path("q")).unwrap();
    std::fs::write(env.path("q/keep-me"), b"x").unwrap();
    let o = run(&["--nonce", "00", "--no-log", "--no-firmware-log"]);
    assert_eq!(code(&o), 2, "{}", describe(&o));
    assert!(stderr(&o).contains("keep-me"), "{}", describe(&o));
    assert_eq!(names_in(&env.path("q")), ["keep-me"]);
    assert!(!env.path("ak").exists());
    // The largest nonce (64 bytes) is accepted by the TPM and by checkquote.
    let max = nonce(64, 20);
    env.quote_ok(&max, "q64", &["--no-log", "--no-firmware-log"]);
    assert!(env
        .checkquote(&env.s("q64/ak.pem"), "q64", &max)
        .status
        .success());
}

#[test]
fn a_bank_that_is_not_allocated_is_named() {
    // A TPM with only the sha256 bank: swtpm_setup (swtpm-tools) activates it.
    let state = tempfile::tempdir().unwrap();
    let setup = Command::new("swtpm_setup")
        .args(["--tpm2", "--pcr-banks", "sha256", "--tpmstate"])
        .arg(state.path())
        .output()
        .expect("swtpm_setup (swtpm-tools) is needed; scripts/setup.sh installs it");
    assert!(setup.status.success(), "swtpm_setup: {}", describe(&setup));
    let tpm = Swtpm::start_with_state(state.path());
    let dir = tempfile::tempdir().unwrap();
    let run = |pcrs: &str, out: &str| {
        modseal([
            "quote",
            "--tcti",
            &tpm.tcti(),
            "--nonce",
            "0011",
            "--pcrs",
            pcrs,
            "--no-log",
            "--no-firmware-log",
            "--ak-dir",
            dir.path().join("ak").to_str().unwrap(),
            "--out",
            dir.path().join(out).to_str().unwrap(),
        ])
    };
    let o = run("sha256:12+sha1:12", "q");
    assert_eq!(code(&o), 1, "{}", describe(&o));
    assert!(
        stderr(&o).contains(
            "it covers sha256:12+sha1:none instead of sha256:12+sha1:12 (is every bank allocated?)"
        ),
        "{}",
        describe(&o)
    );
    assert!(!dir.path().join("q").exists());
    let o = run("sha256:12", "q");
    assert_eq!(code(&o), 0, "{}", describe(&o));
}

#[test]
fn hierarchy_passwords_are_named_and_a_tools_made_ak_is_reused() {
    let env = Env::new();
    env.tool("tpm2_changeauth", &["-c", "e", "endpass"]);
    let o = env.quote(&nonce(8, 21), "q", &["--no-log", "--no-firmware-log"]);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    let e = stderr(&o);
    assert!(e.contains("creating the rsa2048 attestation key at 0x81010100: TPM CreatePrimary(endorsement hierarchy, AK template) failed: rc 0x9a2 TPM_RC_BAD_AUTH"), "{e}");
    assert!(e.contains("persist it at this handle"), "{e}");
    assert_eq!(
        stdout(&env.tool("tpm2_getcap", &["handles-transient"])).trim(),
        ""
    );
    assert!(!env.path("q").exists());
    // What the hint says: tpm2-tools makes it with the password, modseal reuses it.
    env.tool(
        "tpm2_createprimary",
        &[
            "-Q",
            "-C",
            "e",
            "-P",
            "endpass",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            AK_ATTRS,
            "-c",
            "t.ctx",
        ],
    );
    env.tool(
        "tpm2_evictcontrol",
        &["-Q", "-C", "o", "-c", "t.ctx", AK_HANDLE],
    );
    env.tool("tpm2_flushcontext", &["-t"]);
    let line = env.quote_ok(&nonce(8, 22), "q", &["--no-log", "--no-firmware-log"]);
    assert!(line.contains("(rsa2048, reused, "), "{line}");
    assert!(env
        .checkquote(&env.s("q/ak.pem"), "q", &nonce(8, 22))
        .status
        .success());
}

/// `modseal attest --no-policy` on a quote directory: its output.
fn attest_no_policy(env: &Env, dir: &str, nonce: &str) -> Output {
    modseal([
        "attest",
        "--ak",
        &env.s(&format!("{dir}/ak.pem")),
        "--quote",
        &env.s(dir),
        "--nonce",
        nonce,
        "--no-policy",
    ])
}

#[test]
fn the_firmware_log_goes_with_the_quote_of_pcrs_4_9_and_12() {
    let env = Env::new();
    // An empty event log: no modseal records, which `attest` holds against
    // the boot after the firmware's checks.
    let empty = env.path("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let fw = firmware::sample();
    let args = [
        "--log",
        empty.to_str().unwrap(),
        "--firmware-log",
        fw.to_str().unwrap(),
    ];
    let n = nonce(16, 30);
    let line = env.quote_ok(&n, "q", &args);
    assert!(line.starts_with("quoted sha256:4,9,12 with AK "), "{line}");
    assert_eq!(env.read("q/binary_bios_measurements"), firmware::bytes());
    let mut expect: Vec<String> = QUOTE_FILES.iter().map(|s| s.to_string()).collect();
    expect.sort();
    assert_eq!(names_in(&env.path("q")), expect);
    // This host booted no such firmware: PCRs 4 and 9 are zero, and the
    // log does not replay to them (a forged log looks just so).
    let o = attest_no_policy(&env, "q", &n);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    let v = stdout(&o);
    assert!(
        v.starts_with("NOT TRUSTED: firmware log replay mismatch: PCR 4 sha256: the firmware log's events of PCR 4 (#10 EV_EFI_BOOT_SERVICES_APPLICATION, #13 EV_EFI_ACTION, #18 EV_SEPARATOR) replay to aae55a9bb4a7cdd6844c1151ef3d32ad7538b0ae4e9a17a7c777d5b833ec69a0, the quote has 0000000000000000000000000000000000000000000000000000000000000000"),
        "{}",
        describe(&o)
    );
    assert!(
        stderr(&o).contains("--no-policy: NOT CHECKED: the trust-bundle digest, the kernel (PCR 4), the initrd (PCR 9) and the command line (PCR 9)"),
        "{}",
        describe(&o)
    );
    // The same TPM after a boot that measured what the log says.
    for spec in firmware::extend_args(&firmware::bytes(), &[]) {
        env.tool("tpm2_pcrextend", &[&spec]);
    }
    let n = nonce(16, 31);
    env.quote_ok(&n, "q", &args);
    let o = attest_no_policy(&env, "q", &n);
    assert_eq!(code(&o), 1, "{}", describe(&o));
    let out = stdout(&o);
    assert!(
        out.contains("\n  firmware-replay: ok: 24 firmware event(s) replay to the quoted PCR value(s) 4/sha256, 9/sha256; "),
        "{}",
        describe(&o)
    );
    assert!(out.contains("\n  boot-chain: skipped: "), "{out}");
    assert!(
        out.starts_with("NOT TRUSTED: policy: stages: "),
        "{}",
        describe(&o)
    );
    // Without the firmware log the directory has none, and attest skips it.
    env.quote_ok(
        &n,
        "q",
        &["--log", empty.to_str().unwrap(), "--no-firmware-log"],
    );
    assert!(!env.path("q/binary_bios_measurements").exists());
    let out = stdout(&attest_no_policy(&env, "q", &n));
    assert!(
        out.contains(
            "\n  firmware-replay: skipped: no firmware event log (binary_bios_measurements)"
        ),
        "{out}"
    );
}
