use super::*;
use crate::tpm::PcrBank;

const SHA1: u16 = 0x0004;
const SHA256: u16 = 0x000B;

fn le32(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

/// The header event: SHA-1 format, `Spec ID Event03` with `algs`.
fn header(algs: &[(u16, u16)]) -> Vec<u8> {
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(le32(0)); // platformClass
    spec.extend([0, 2, 0, 2]); // minor, major, errata, uintnSize
    spec.extend(le32(algs.len() as u32));
    for (a, s) in algs {
        spec.extend(a.to_le_bytes());
        spec.extend(s.to_le_bytes());
    }
    spec.push(0); // vendorInfoSize
    let mut out = Vec::new();
    out.extend(le32(0));
    out.extend(le32(EV_NO_ACTION));
    out.extend([0u8; 20]);
    out.extend(le32(spec.len() as u32));
    out.extend(spec);
    out
}

/// A `TCG_PCR_EVENT2` with the given digests.
fn event(pcr: u32, ty: u32, digests: &[(u16, Vec<u8>)], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(le32(pcr));
    out.extend(le32(ty));
    out.extend(le32(digests.len() as u32));
    for (a, d) in digests {
        out.extend(a.to_le_bytes());
        out.extend(d);
    }
    out.extend(le32(data.len() as u32));
    out.extend(data);
    out
}

/// An event measured as the firmware does: each bank's hash of `data`.
fn measured(pcr: u32, ty: u32, data: &[u8]) -> Vec<u8> {
    event(
        pcr,
        ty,
        &[
            (SHA1, PcrBank::Sha1.hash(data)),
            (SHA256, PcrBank::Sha256.hash(data)),
        ],
        data,
    )
}

/// The synthetic log: locality 3, a tag and separators in PCRs 0, 7 and 9.
pub(super) fn synthetic() -> Vec<u8> {
    let mut log = header(&[(SHA1, 20), (SHA256, 32)]);
    let mut loc = b"StartupLocality\0".to_vec();
    loc.push(3);
    log.extend(event(
        0,
        EV_NO_ACTION,
        &[(SHA1, vec![0; 20]), (SHA256, vec![0; 32])],
        &loc,
    ));
    log.extend(measured(0, 0x8, &utf16("OVMF 1.0")));
    log.extend(measured(9, 0x6, b"initrd\0"));
    for pcr in [0, 7, 9] {
        log.extend(measured(pcr, 0x4, &[0, 0, 0, 0]));
    }
    log
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn parses_header_and_events() {
    let log = parse(&synthetic()).unwrap();
    assert_eq!(log.spec.algorithms, vec![(SHA1, 20), (SHA256, 32)]);
    assert_eq!((log.spec.version_major, log.spec.version_minor), (2, 0));
    assert_eq!(log.events.len(), 6);
    assert_eq!(log.events[0].index, 1);
    assert_eq!(log.events[1].summary(), "\"OVMF 1.0\"");
    assert_eq!(log.events[2].summary(), "\"initrd\"");
    assert_eq!(log.events[3].summary(), "4 bytes");
    assert_eq!(event_type_name(0x4), "EV_SEPARATOR");
    assert_eq!(event_type_name(0x8000_00e0), "EV_EFI_VARIABLE_AUTHORITY");
    assert_eq!(event_type_name(0x1234), "0x1234");
}

#[test]
fn replays_by_hand() {
    let log = parse(&synthetic()).unwrap();
    assert_eq!(startup_locality(&log), Some(3));
    let pcrs = replay(&log);
    for bank in [PcrBank::Sha1, PcrBank::Sha256] {
        let sep = bank.hash(&[0, 0, 0, 0]);
        let zero = vec![0u8; bank.digest_len()];
        let mut pcr0 = zero.clone();
        *pcr0.last_mut().unwrap() = 3;
        pcr0 = bank.extend(&pcr0, &bank.hash(&utf16("OVMF 1.0")));
        pcr0 = bank.extend(&pcr0, &sep);
        let pcr7 = bank.extend(&zero, &sep);
        let pcr9 = bank.extend(&bank.extend(&zero, &bank.hash(b"initrd\0")), &sep);
        assert_eq!(pcrs[&(0, bank)], pcr0);
        assert_eq!(pcrs[&(7, bank)], pcr7);
        assert_eq!(pcrs[&(9, bank)], pcr9);
    }
    assert_eq!(pcrs.len(), 6);
}

/// A prefix parses only where it ends on an event boundary, and then to the
/// events before it; anywhere else it is an error, never a panic.
#[test]
fn every_truncation_is_an_error() {
    let log = synthetic();
    let full = parse(&log).unwrap();
    let mut whole = 0;
    for n in 0..log.len() {
        if let Ok(l) = parse(&log[..n]) {
            assert_eq!(l.events[..], full.events[..l.events.len()], "prefix of {n}");
            whole += 1;
        }
    }
    // The header alone, then each event but the last.
    assert_eq!(whole, full.events.len());
}

#[test]
fn truncation_names_offset_and_event() {
    let log = synthetic();
    let err = parse(&log[..log.len() - 1]).unwrap_err();
    assert!(
        matches!(err, TcgError::EventTooLarge { index: 6, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("byte offset"), "{err}");
}

#[test]
fn algorithm_not_in_header_is_an_error() {
    let mut log = header(&[(SHA256, 32)]);
    let at = log.len() + 12;
    log.extend(event(0, 0x4, &[(SHA1, vec![0; 20])], &[0; 4]));
    assert_eq!(
        parse(&log),
        Err(TcgError::UnknownAlgorithm {
            offset: at,
            index: 1,
            alg: SHA1
        })
    );
}

#[test]
fn a_second_digest_of_one_algorithm_is_an_error() {
    // Replay would extend both and a reader see the first: the attacker's
    // way to hide a measured initrd behind a good one.
    let mut log = header(&[(SHA1, 20), (SHA256, 32)]);
    let at = log.len() + 12 + 2 + 32;
    log.extend(event(
        9,
        0x6,
        &[(SHA256, vec![1; 32]), (SHA256, vec![2; 32])],
        &[0; 4],
    ));
    assert_eq!(
        parse(&log),
        Err(TcgError::DuplicateAlgorithm {
            offset: at,
            index: 1,
            alg: SHA256
        })
    );
}

#[test]
fn huge_sizes_are_errors() {
    // An event size past the end.
    let mut log = header(&[(SHA256, 32)]);
    let mut e = event(0, 0x4, &[(SHA256, vec![0; 32])], &[]);
    let n = e.len();
    e[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    log.extend(e);
    assert!(matches!(
        parse(&log),
        Err(TcgError::EventTooLarge { index: 1, .. })
    ));
    // A digest count past the header's algorithms.
    let mut log = header(&[(SHA256, 32)]);
    let mut e = event(0, 0x4, &[], &[]);
    e[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    log.extend(e);
    assert!(matches!(
        parse(&log),
        Err(TcgError::TooManyDigests { index: 1, .. })
    ));
    // A header with too many algorithms, or a wrong digest size.
    let mut h = header(&[(SHA256, 32)]);
    h[32 + 24..32 + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse(&h), Err(TcgError::BadHeader { .. })));
    assert!(matches!(
        parse(&header(&[(SHA256, 20)])),
        Err(TcgError::BadHeader { .. })
    ));
    assert!(matches!(
        parse(&vec![0u8; MAX_LOG_SIZE + 1]),
        Err(TcgError::TooLarge { .. })
    ));
}

#[test]
fn garbage_is_an_error() {
    assert!(parse(b"").is_err());
    assert!(parse(&[0xff; 200]).is_err());
    let mut h = header(&[(SHA256, 32)]);
    h[32] = b'X';
    assert!(matches!(
        parse(&h),
        Err(TcgError::BadHeader { offset: 32, .. })
    ));
}

/// tpm2-tools reads the same log to the same PCR values. tpm2_eventlog 5.4
/// extends `EV_NO_ACTION` events' (zero) digests and ignores the startup
/// locality, unlike the TCG spec, so PCR 0 of the log with a
/// `StartupLocality` event is left out and a log without one checks PCR 0.
#[test]
fn tpm2_eventlog_agrees() {
    let mut plain = header(&[(SHA1, 20), (SHA256, 32)]);
    plain.extend(measured(0, 0x8, &utf16("OVMF 1.0")));
    plain.extend(measured(0, 0x4, &[0; 4]));
    plain.extend(measured(4, 0xd, b"kernel\0"));
    assert_eq!(tpm2_eventlog_check(&plain, false), 2);
    assert_eq!(tpm2_eventlog_check(&synthetic(), true), 2);
}

/// Compares tpm2_eventlog's sha256 `pcrs:` with [`replay`]; the number of
/// PCRs compared.
fn tpm2_eventlog_check(log: &[u8], skip_pcr0: bool) -> usize {
    let tool = std::path::Path::new("/usr/bin/tpm2_eventlog");
    assert!(
        tool.exists(),
        "tpm2_eventlog (tpm2-tools) is missing: install it, this cross-check must run"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary_bios_measurements");
    std::fs::write(&path, log).unwrap();
    let out = std::process::Command::new(tool)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tpm2_eventlog failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = tpm2_eventlog_pcrs(&stdout, "sha256");
    let ours = replay(&parse(log).unwrap());
    let mut checked = 0;
    for ((pcr, bank), v) in &ours {
        if *bank != PcrBank::Sha256 || (skip_pcr0 && *pcr == 0) {
            continue;
        }
        let t = theirs
            .get(pcr)
            .unwrap_or_else(|| panic!("tpm2_eventlog shows no sha256 PCR {pcr}:\n{stdout}"));
        assert_eq!(t, &crate::util::hex::lower(v), "PCR {pcr}:\n{stdout}");
        checked += 1;
    }
    checked
}

/// The `pcrs:` section's values of `bank`, lowercase hex by PCR.
fn tpm2_eventlog_pcrs(out: &str, bank: &str) -> std::collections::BTreeMap<u32, String> {
    let mut map = std::collections::BTreeMap::new();
    let Some((_, pcrs)) = out.split_once("\npcrs:") else {
        panic!("no pcrs: section in tpm2_eventlog's output:\n{out}");
    };
    let mut in_bank = false;
    for line in pcrs.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_suffix(':') {
            in_bank = name == bank;
            continue;
        }
        if !in_bank {
            continue;
        }
        if let Some((k, v)) = t.split_once(':') {
            if let Ok(pcr) = k.trim().parse::<u32>() {
                let hex = v.trim().trim_start_matches("0x").to_ascii_lowercase();
                map.insert(pcr, hex);
            }
        }
    }
    map
}
