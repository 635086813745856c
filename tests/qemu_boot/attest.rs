//! Attestation bound to the boot that happened (UEFI measured boot): the
//! firmware measured the kernel into PCR 4 and the kernel's EFI stub the
//! initrd and the command line into PCR 9 before the initramfs ran, and
//! `modseal attest` checks them against a policy made from the host's files.
//! The negatives reuse the good boots' evidence; only the forged log boots.

use std::path::{Path, PathBuf};

use super::{good, Boot};
use crate::common::{code, describe, modseal, run, sha256_file, work_root};
use crate::qemu::{self, kernel, script, tree, Kind};

/// PCRs 4 and 9 as the guest read them, as modseal replays the firmware
/// log, and as tpm2_eventlog replays it: all the same.
pub fn assert_firmware_replay(b: &Boot) {
    let log = fw_log(b);
    let out = modseal([
        "log".as_ref(),
        "show".as_ref(),
        "--firmware".as_ref(),
        log.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = run(std::process::Command::new("tpm2_eventlog").arg(log));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    for pcr in [4u8, 9] {
        let ours = shown
            .lines()
            .find_map(|l| l.strip_prefix(&format!("pcr {pcr} sha256 ")))
            .unwrap_or_else(|| panic!("modseal did not replay PCR {pcr}:\n{shown}"));
        assert_eq!(ours, b.pcr(pcr), "PCR {pcr}: modseal's replay vs the guest");
        assert_eq!(
            eventlog_pcr(&yaml, pcr).as_deref(),
            Some(ours),
            "PCR {pcr}: tpm2_eventlog vs modseal"
        );
    }
}

/// PCR `pcr`'s sha256 value in tpm2_eventlog's `pcrs:` summary.
fn eventlog_pcr(yaml: &str, pcr: u8) -> Option<String> {
    let mut in_sha256 = false;
    let summary = yaml.lines().skip_while(|l| l.trim_end() != "pcrs:");
    for line in summary {
        let t = line.trim();
        if t.ends_with(':') && !t.contains(' ') {
            in_sha256 = t == "sha256:";
            continue;
        }
        if !in_sha256 {
            continue;
        }
        if let Some((idx, v)) = t.split_once(':') {
            if idx.trim() == pcr.to_string() {
                return Some(v.trim().trim_start_matches("0x").to_ascii_lowercase());
            }
        }
    }
    None
}

fn fw_log(b: &Boot) -> &Path {
    b.firmware_log
        .as_deref()
        .unwrap_or_else(|| panic!("the guest printed no firmware log\n{}", b.context()))
}

/// The policy a good boot of `suite` passes, as text: the digests the
/// firmware measures for its kernel and boot loader are in it.
fn good_policy(suite: &'static str) -> String {
    std::fs::read_to_string(good(suite, Kind::Classic).own_policy()).unwrap()
}

fn directive(policy: &str, key: &str) -> String {
    policy
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key} in the policy:\n{policy}"))
        .trim()
        .to_owned()
}

/// A verifier's policy for `b` written by hand, accepting boots in `mode`:
/// `b`'s bundle, kernel and initrd. For boots whose image does not pass,
/// which `--make-policy` refuses.
pub fn hand_policy(b: &Boot, mode: &str) -> PathBuf {
    let good = good_policy(leak(&b.suite));
    let text = format!(
        "modseal-attest-policy v2\npcr 12\nbank sha256\nanchor-sha256 {}\nmode {mode}\n\
         stages early pre-pivot\nkernel-sha256 {}\ninitrd-sha256 {}\nboot-app-sha256 {}\n",
        sha256_file(&b.bundle),
        directive(&good, "kernel-sha256"),
        sha256_file(&b.image),
        directive(&good, "boot-app-sha256")
    );
    let path = b.dir.join("hand-policy");
    std::fs::write(&path, text).unwrap();
    path
}

fn leak(s: &str) -> &'static str {
    match s {
        "bookworm" => "bookworm",
        "trixie" => "trixie",
        "trixie-backports" => "trixie-backports",
        _ => panic!("unknown suite {s}"),
    }
}

/// One event of a crypto-agile TCG log: where it is and where its sha256
/// digest is.
struct Event {
    pcr: u32,
    start: usize,
    end: usize,
    sha256: Option<usize>,
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The events after the Spec ID header, for editing a real log (the
/// parser under test is modseal's; this one only has to find offsets).
fn events(log: &[u8]) -> Vec<Event> {
    let spec = 32; // pcr, type, sha1[20], size
    let end = spec + u32_at(log, 28);
    let algs = u32_at(log, spec + 24);
    let mut sizes = std::collections::BTreeMap::new();
    for i in 0..algs {
        let at = spec + 28 + 4 * i;
        let id = u16::from_le_bytes([log[at], log[at + 1]]);
        sizes.insert(id, u16::from_le_bytes([log[at + 2], log[at + 3]]) as usize);
    }
    let mut out = Vec::new();
    let mut at = end;
    while at < log.len() {
        let start = at;
        let pcr = u32_at(log, at) as u32;
        let count = u32_at(log, at + 8);
        at += 12;
        let mut sha256 = None;
        for _ in 0..count {
            let id = u16::from_le_bytes([log[at], log[at + 1]]);
            if id == 0x000b {
                sha256 = Some(at + 2);
            }
            at += 2 + sizes[&id];
        }
        at += 4 + u32_at(log, at);
        out.push(Event {
            pcr,
            start,
            end: at,
            sha256,
        });
    }
    out
}

/// A copy of `b`'s quote directory with its firmware log replaced.
fn with_firmware_log(b: &Boot, name: &str, log: &[u8]) -> PathBuf {
    let dir = b.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(b.quote_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    std::fs::write(dir.join("binary_bios_measurements"), log).unwrap();
    dir
}

fn assert_untrusted(rc: i32, out: &str, what: &str, needles: &[&str]) {
    assert_eq!(rc, 1, "{what}: not refused:\n{out}");
    for n in needles {
        assert!(
            out.contains(n),
            "{what}: the verdict does not name {n:?}:\n{out}"
        );
    }
}

/// The negatives of the boot chain, on real evidence: the good bookworm
/// boots' quotes under policies that differ in one pin, and their firmware
/// logs edited.
#[test]
fn attestation_binds_the_boot_chain() {
    let sd = good("bookworm", Kind::Systemd);
    let cl = good("bookworm", Kind::Classic);
    let k = kernel("bookworm");

    // A fleet roll: one policy allowing both images trusts boots of both.
    let fleet = sd.host_policy("fleet-policy", &[&sd.image, &cl.image], &[&k.vmlinuz]);
    for b in [sd, cl] {
        let (rc, out) = b.attest(&fleet);
        assert_eq!(
            rc,
            0,
            "the fleet policy refused {}:\n{out}",
            b.dir.display()
        );
    }

    // The image rebuilt with one changed file that is not a module.
    let changed = sd.dir.join("changed-overlay");
    let _ = std::fs::remove_dir_all(&changed);
    std::fs::create_dir_all(changed.join("etc")).unwrap();
    std::fs::write(changed.join("etc/motd"), "changed\n").unwrap();
    let other = sd.dir.join("initrd-changed.img");
    run(script("overlay.sh")
        .arg(&sd.image)
        .arg(&changed)
        .arg(&other));
    let policy = sd.host_policy("changed-policy", &[&other], &[&k.vmlinuz]);
    let (rc, out) = sd.attest(&policy);
    assert_untrusted(
        rc,
        &out,
        "another initrd",
        &["PCR 9", &sha256_file(&sd.image)],
    );

    // The command line pinned: the one the guest booted with (as
    // /proc/cmdline shows it: OVMF appends `initrd=initrd` to QEMU's), or
    // one that differs by a single option.
    let booted = sd
        .serial
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("MODSEAL-CMDLINE: "))
        .expect("the guest printed no command line")
        .to_owned();
    let policy = sd.host_policy_cmdline("cmdline-policy", &[&sd.image], &[&k.vmlinuz], &[&booted]);
    let (rc, out) = sd.attest(&policy);
    assert_eq!(rc, 0, "the booted command line was refused:\n{out}");
    let other = format!("{booted} rd.break");
    let policy = sd.host_policy_cmdline(
        "other-cmdline-policy",
        &[&sd.image],
        &[&k.vmlinuz],
        &[&other],
    );
    let (rc, out) = sd.attest(&policy);
    assert_untrusted(rc, &out, "another command line", &["PCR 9", "command line"]);

    // Unpinned, the command line is checked in the quote's copy of
    // /proc/cmdline: one that is not what the stub measured, or none.
    let own = sd.own_policy();
    let copy = std::fs::read_to_string(sd.quote_dir().join("cmdline")).unwrap();
    assert_eq!(
        copy.trim_end(),
        booted,
        "the quote's cmdline is not /proc/cmdline"
    );
    let dir = with_firmware_log(sd, "cmdline-edited", &std::fs::read(fw_log(sd)).unwrap());
    std::fs::write(dir.join("cmdline"), format!("{booted} rdinit=/bin/sh\n")).unwrap();
    let (rc, out) = sd.attest_quote(&dir, &own);
    assert_untrusted(
        rc,
        &out,
        "an edited cmdline copy",
        &["PCR 9", "is not the digest of the quote's cmdline"],
    );
    std::fs::remove_file(dir.join("cmdline")).unwrap();
    let (rc, out) = sd.attest_quote(&dir, &own);
    assert_untrusted(rc, &out, "no cmdline copy", &["PCR 9", "carries no copy"]);

    // Another kernel than the policy's.
    let trixie = kernel("trixie");
    let policy = sd.host_policy("other-kernel-policy", &[&sd.image], &[&trixie.vmlinuz]);
    let (rc, out) = sd.attest(&policy);
    assert_untrusted(rc, &out, "another kernel", &["PCR 4"]);

    // The firmware log edited, with an event dropped, or two reordered.
    let policy = sd.own_policy();
    let log = std::fs::read(fw_log(sd)).unwrap();
    let evs = events(&log);
    let (initrd_idx, initrd) = evs
        .iter()
        .enumerate()
        .rfind(|(_, e)| e.pcr == 9)
        .expect("no PCR 9 event");
    let mut edited = log.clone();
    edited[initrd.sha256.expect("no sha256 digest")] ^= 1;
    let (rc, out) = sd.attest_quote(&with_firmware_log(sd, "fw-edited", &edited), &policy);
    assert_untrusted(
        rc,
        &out,
        "an edited event",
        &["PCR 9", &format!("#{}", initrd_idx + 1)],
    );

    let app = evs.iter().find(|e| e.pcr == 4).expect("no PCR 4 event");
    let mut dropped = log[..app.start].to_vec();
    dropped.extend_from_slice(&log[app.end..]);
    let (rc, out) = sd.attest_quote(&with_firmware_log(sd, "fw-dropped", &dropped), &policy);
    assert_untrusted(rc, &out, "a dropped event", &["PCR 4"]);

    let nine: Vec<&Event> = evs.iter().filter(|e| e.pcr == 9).collect();
    assert!(nine.len() >= 2, "PCR 9 has {} events", nine.len());
    let (a, z) = (nine[0], nine[nine.len() - 1]);
    let mut swapped = log[..a.start].to_vec();
    swapped.extend_from_slice(&log[z.start..z.end]);
    swapped.extend_from_slice(&log[a.end..z.start]);
    swapped.extend_from_slice(&log[a.start..a.end]);
    swapped.extend_from_slice(&log[z.end..]);
    let (rc, out) = sd.attest_quote(&with_firmware_log(sd, "fw-swapped", &swapped), &policy);
    assert_untrusted(rc, &out, "reordered events", &["PCR 9"]);

    // Truncated and garbage logs are bad input, not a verdict.
    let last = evs.last().unwrap();
    let truncated = &log[..last.start + (last.end - last.start) / 2];
    for (name, bytes) in [
        ("fw-truncated", truncated.to_vec()),
        ("fw-garbage", vec![0xa5; 4096]),
    ] {
        let (rc, out) = sd.attest_quote(&with_firmware_log(sd, name, &bytes), &policy);
        assert_eq!(rc, 2, "{name}: {out}");
        assert!(out.contains("binary_bios_measurements"), "{name}: {out}");
        assert!(!out.contains("panicked"), "{name}: {out}");
    }
}

/// The forged log: an image without modseal boots, and root on the booted
/// machine extends PCR 12 with a saved good log's digests, puts that log
/// where `modseal quote` takes it, and quotes. Checked as before this
/// issue (PCR 12 and the records alone: `--no-policy`), that is a good
/// boot; the boot chain names the initrd that really ran.
#[test]
fn forged_log_is_not_trusted() {
    let g = good("bookworm", Kind::Systemd);
    let k = kernel("bookworm");
    let dir = work_root().join("forged-log");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let image = dir.join("initrd.img");
    run(script("build-initramfs.sh")
        .args(["--kind", "systemd", "--kver", &k.kver, "--without-modseal"])
        .arg("--kmoddir")
        .arg(tree(&k, "good", &[]))
        .arg("--confdir")
        .arg(g.dir.join("etc"))
        .arg("--out")
        .arg(&image));

    // The attacker's tools on the root: tpm2_pcrextend and its libraries,
    // and the commands that replay the good log's digests into PCR 12.
    let extra = dir.join("root-extra");
    copy_with_libraries(Path::new("/usr/bin/tpm2_pcrextend"), &extra);
    std::fs::create_dir_all(extra.join("etc/modseal-test")).unwrap();
    let good_log = std::fs::read(g.log_path()).unwrap();
    std::fs::write(extra.join("etc/modseal-test/good.log"), &good_log).unwrap();
    std::fs::write(
        extra.join("etc/modseal-test/before-quote.sh"),
        forge_script(&good_log),
    )
    .unwrap();
    let root = qemu::build_root(&dir.join("root.img"), &extra);

    // The same TPM (its persistent AK), the verifier's fresh nonce.
    let state = dir.join("tpm");
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(g.dir.join("tpm"))
        .arg(&state));
    let nonce = "5a".repeat(16);
    let vm = qemu::VmBoot {
        kernel: &k,
        image: &image,
        tpm_state: Some(&state),
        append: format!("modseal.test.nonce={nonce}"),
        dir: &dir,
        timeout: 600,
        bios: false,
        root: Some(&root),
    }
    .run();
    assert_eq!(vm.result, "root", "{}", vm.serial);
    let extended = vm
        .serial
        .lines()
        .find_map(|l| {
            l.trim_end()
                .strip_prefix("MODSEAL-FORGED: extended PCR 12: ")
        })
        .unwrap_or_else(|| panic!("the forgery did not run:\n{}", vm.serial));
    // What a good boot with this command line leaves in PCR 12:
    // systemd-boot's measurement of it, then the good log's records.
    let from = crate::common::firmware_pcr(vm.firmware_log.as_deref(), 12);
    let out = modseal([
        "log".as_ref(),
        "replay".as_ref(),
        "--from".as_ref(),
        from.as_ref(),
        g.log_path().as_os_str(),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("pcr 12 sha256 {extended}")),
        "the forgery did not reproduce a good PCR 12: {}",
        describe(&out)
    );
    let forged = Boot {
        nonce,
        quote: vm.quote,
        dir: dir.clone(),
        ..g.clone_paths()
    };

    // As before this issue: the records and PCR 12 alone say good.
    let ak = g.ak.as_deref().unwrap();
    let out = modseal([
        "attest".as_ref(),
        "--ak".as_ref(),
        ak.as_os_str(),
        "--quote".as_ref(),
        forged.quote_dir().as_os_str(),
        "--nonce".as_ref(),
        forged.nonce.as_ref(),
        "--no-policy".as_ref(),
    ]);
    assert_eq!(
        code(&out),
        0,
        "the forgery is not even a good PCR 12: {}",
        describe(&out)
    );

    // The policy made from the host's files names the initrd that ran.
    let (rc, out) = forged.attest(&g.own_policy());
    assert_untrusted(
        rc,
        &out,
        "the forged log",
        &["PCR 9", &sha256_file(&image), "initrd"],
    );
}

/// `tpm2_pcrextend` lines that put each record of `log` (modseal's event
/// log, JSON-SEQ) into PCR 12 again, then the log where `modseal quote`
/// copies it from.
fn forge_script(log: &[u8]) -> String {
    let mut s = String::from(
        "export TPM2TOOLS_TCTI=device:/dev/tpmrm0 LD_LIBRARY_PATH=/lib/x86_64-linux-gnu\n",
    );
    for rec in log.split(|&c| c == 0x1e) {
        let rec = String::from_utf8_lossy(rec);
        if rec.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(rec.trim()).unwrap();
        let digests: Vec<String> = v["digests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                format!(
                    "{}={}",
                    d["hashAlg"].as_str().unwrap(),
                    d["digest"].as_str().unwrap()
                )
            })
            .collect();
        s.push_str(&format!(
            "tpm2_pcrextend {}:{} || exit 1\n",
            v["pcr"],
            digests.join(",")
        ));
    }
    s.push_str(
        "mkdir -p /run/log/modseal\ncp /etc/modseal-test/good.log /run/log/modseal/tpm2-measure.log\n\
         echo \"MODSEAL-FORGED: extended PCR 12: $(tr 'A-F' 'a-f' </sys/class/tpm/tpm0/pcr-sha256/12)\"\n",
    );
    s
}

/// `bin` and the shared libraries it needs (ldd), plus the TCTI that
/// tpm2-tss loads at run time, at their paths under `root`.
fn copy_with_libraries(bin: &Path, root: &Path) {
    let out = run(std::process::Command::new("ldd").arg(bin));
    let mut files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect();
    files.push(bin.to_path_buf());
    for tcti in std::fs::read_dir("/lib/x86_64-linux-gnu").unwrap() {
        let p = tcti.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("libtss2-tcti-device.so")
        {
            files.push(p);
        }
    }
    for f in files {
        let to = root.join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        // Copies of the targets: the root has no symlinks into the host.
        std::fs::copy(&f, &to).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}
