//! Replaying a log: the PCR value its records imply ([`replay()`]), and why
//! it does not reach a quoted or live one ([`explain`]). `modseal attest`
//! and `modseal log replay` share the explanation.

use crate::tpm::PcrBank;
use crate::util::hex;
use crate::util::text::clip;

use super::error::MeasureError;
use super::log::Record;

/// The PCR values a log implies for `pcr` in `bank`, starting from `from`.
/// Every record's digests must match its content.
pub fn replay(
    records: &[Record],
    pcr: u8,
    bank: PcrBank,
    from: &[u8],
) -> Result<Vec<u8>, MeasureError> {
    if from.len() != bank.digest_len() {
        return Err(MeasureError::StartLength {
            bank,
            len: from.len(),
        });
    }
    let mut value = from.to_vec();
    for r in records.iter().filter(|r| r.pcr == pcr) {
        r.verify_digests()?;
        let d = r
            .digests
            .iter()
            .find(|(b, _)| *b == bank)
            .map(|(_, d)| d)
            .ok_or(MeasureError::MissingBank {
                index: r.index,
                bank,
            })?;
        value = bank.extend(&value, d);
    }
    Ok(value)
}

/// Reordering is looked for only in logs this short (6! = 720 orders).
pub const MAX_PERMUTED: usize = 6;

/// The outcome of replaying one PCR in one bank, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The PCR.
    pub pcr: u8,
    /// The bank.
    pub bank: PcrBank,
    /// Log indexes of the records for this PCR, in log order.
    pub records: Vec<usize>,
    /// The PCR value after each of those records.
    pub running: Vec<Vec<u8>>,
    /// The value the whole log implies (the start when it has no record).
    pub value: Vec<u8>,
    /// `None` when the value is the expected one, else why not.
    pub mismatch: Option<String>,
}

fn index_list(idx: &[usize]) -> String {
    let v: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    v.join(", ")
}

fn replay_values(from: &[u8], digests: &[&[u8]], bank: PcrBank) -> Vec<u8> {
    let mut v = from.to_vec();
    for d in digests {
        v = bank.extend(&v, d);
    }
    v
}

/// Heap's algorithm, iterative: calls `f` with every order of `0..n` until
/// it returns true; the order found, if any.
fn find_order(n: usize, mut f: impl FnMut(&[usize]) -> bool) -> Option<Vec<usize>> {
    let mut a: Vec<usize> = (0..n).collect();
    if f(&a) {
        return Some(a);
    }
    let mut c = vec![0usize; n];
    let mut i = 1;
    while i < n {
        if c[i] < i {
            if i % 2 == 0 {
                a.swap(0, i);
            } else {
                a.swap(c[i], i);
            }
            if f(&a) {
                return Some(a);
            }
            c[i] += 1;
            i = 1;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    None
}

fn stage_of(r: &Record) -> String {
    match r.parse_content() {
        Some(Ok(c)) => c.stage.name().to_owned(),
        Some(Err(_)) => "unreadable".to_owned(),
        None => format!("'{}'", clip(&r.content_type)),
    }
}

/// Replays the records of `pcr` in `bank` from `from` (zero for a quote,
/// the value before the log for `modseal log replay --from`) and compares
/// the result with `expected`. The records' digests must already have been
/// checked against their content. On a mismatch the explanation names the
/// records: which extra records follow a prefix that reaches the expected
/// value, the order the TPM measured them in when the log reorders them, a
/// record whose PCR label was changed, or, failing those, the record count
/// and stages (a record is missing or something else extended the PCR).
pub fn explain(records: &[Record], pcr: u8, bank: PcrBank, from: &[u8], expected: &[u8]) -> Replay {
    let mine: Vec<&Record> = records.iter().filter(|r| r.pcr == pcr).collect();
    let idx: Vec<usize> = mine.iter().map(|r| r.index).collect();
    let mut digests: Vec<&[u8]> = Vec::with_capacity(mine.len());
    let mut missing = None;
    for r in &mine {
        match r.digests.iter().find(|(b, _)| *b == bank) {
            Some((_, d)) => digests.push(d),
            None => {
                missing = Some(r.index);
                break;
            }
        }
    }
    let mut running = Vec::with_capacity(digests.len());
    let mut value = from.to_vec();
    for d in &digests {
        value = bank.extend(&value, d);
        running.push(value.clone());
    }
    let mismatch = if from.len() != bank.digest_len() {
        Some(
            MeasureError::StartLength {
                bank,
                len: from.len(),
            }
            .to_string(),
        )
    } else if let Some(i) = missing {
        Some(format!(
            "record {i} (PCR {pcr}) has no {bank} digest, so the log cannot be replayed in the {bank} bank"
        ))
    } else if value == expected {
        None
    } else {
        Some(
            Mismatch {
                records,
                mine: &mine,
                idx: &idx,
                digests: &digests,
                running: &running,
                pcr,
                bank,
                from,
                quoted: expected,
                value: &value,
            }
            .explain(),
        )
    };
    Replay {
        pcr,
        bank,
        records: idx,
        running,
        value,
        mismatch,
    }
}

/// A replay that does not reach the expected value, to be explained.
struct Mismatch<'a> {
    records: &'a [Record],
    /// The records of the PCR, and their log indexes.
    mine: &'a [&'a Record],
    idx: &'a [usize],
    /// Their digests in the bank, and the value after each.
    digests: &'a [&'a [u8]],
    running: &'a [Vec<u8>],
    pcr: u8,
    bank: PcrBank,
    /// The value before the first record.
    from: &'a [u8],
    quoted: &'a [u8],
    value: &'a [u8],
}

impl Mismatch<'_> {
    /// The first explanation that fits, after what the log and the quote say.
    fn explain(&self) -> String {
        let says = format!(
            "the log's {} record(s) for PCR {} replay to {} {}, the quote says {}",
            self.mine.len(),
            self.pcr,
            self.bank,
            hex::lower(self.value),
            hex::lower(self.quoted)
        );
        let why = self
            .extra_after_prefix()
            .or_else(|| self.reordered())
            .or_else(|| self.relabelled())
            .unwrap_or_else(|| self.unexplained());
        format!("{says}: {why}")
    }

    /// A prefix reaches the quoted value: what follows it was never measured.
    fn extra_after_prefix(&self) -> Option<String> {
        let pcr = self.pcr;
        let k = if self.quoted == self.from {
            0
        } else {
            self.running.iter().position(|v| v == self.quoted)? + 1
        };
        let extra = index_list(self.idx.get(k..).unwrap_or_default());
        Some(if k == 0 {
            let never = if self.from.iter().all(|&b| b == 0) {
                "was never extended"
            } else {
                "still holds the starting value"
            };
            format!("PCR {pcr} {never}, so record(s) {extra} were not measured (added to the log)")
        } else {
            format!(
                "the first {k} record(s) ({}) replay to the quoted value; record(s) {extra} after them were not measured (added to the log)",
                index_list(self.idx.get(..k).unwrap_or_default()),
            )
        })
    }

    /// Another order of the same records reaches the quoted value.
    fn reordered(&self) -> Option<String> {
        let n = self.digests.len();
        if !(2..=MAX_PERMUTED).contains(&n) {
            return None;
        }
        let order = find_order(n, |o| {
            let d: Vec<&[u8]> = o.iter().map(|&i| self.digests[i]).collect();
            replay_values(self.from, &d, self.bank) == self.quoted
        })?;
        let measured: Vec<usize> = order.iter().map(|&i| self.idx[i]).collect();
        // The first log position holding another record than the TPM measured there.
        let wrong = order
            .iter()
            .enumerate()
            .find(|(pos, &i)| *pos != i)
            .map(|(pos, _)| self.idx[pos])
            .unwrap_or(self.idx[0]);
        Some(format!(
            "the log is reordered: the TPM measured the records in the order {}, the log has {} (record {wrong} is out of place)",
            index_list(&measured),
            index_list(self.idx)
        ))
    }

    /// Every record of the log, whatever PCR it claims, reaches the quoted
    /// value: some were relabelled (the label is not covered by the digests).
    fn relabelled(&self) -> Option<String> {
        if self.records.len() == self.mine.len() {
            return None;
        }
        let mut v = self.from.to_vec();
        for r in self.records {
            let (_, d) = r.digests.iter().find(|(b, _)| *b == self.bank)?;
            v = self.bank.extend(&v, d);
        }
        if v != self.quoted {
            return None;
        }
        let moved: Vec<usize> = self
            .records
            .iter()
            .filter(|r| r.pcr != self.pcr)
            .map(|r| r.index)
            .collect();
        Some(format!(
            "record(s) {} claim another PCR but were measured into PCR {} (their pcr field was changed)",
            index_list(&moved),
            self.pcr
        ))
    }

    /// None of the above: name the records and stages there are.
    fn unexplained(&self) -> String {
        let pcr = self.pcr;
        if self.mine.is_empty() {
            return format!("the log has no record for PCR {pcr}, but it was extended");
        }
        let stages: Vec<String> = self
            .mine
            .iter()
            .map(|r| format!("{} {}", r.index, stage_of(r)))
            .collect();
        format!(
            "no prefix{} of the records (log records: {}) reaches the quoted value: a record is missing, a record was replaced by one with recomputed digests, or something else extended PCR {pcr}",
            if self.digests.len() <= MAX_PERMUTED { " and no reordering" } else { "" },
            stages.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{parse_records, record_bytes, Content, Mode, Stage, UnsealOutcome};
    use crate::verify::{Report, Verdict};

    fn report(path: &str, verdict: Verdict) -> Report {
        Report {
            path: path.into(),
            verdict,
            reason: "why".into(),
            signer: None,
            key_id: Some("AA".into()),
            hash_algo: Some("sha256".into()),
            sha256: Some("00".into()),
            build_id_note: None,
        }
    }

    #[test]
    fn records_round_trip_and_replay() {
        let c = Content::new(
            Stage::Early,
            Mode::Enforce,
            Some([2; 32]),
            UnsealOutcome::Ok,
            &[report("/m/a.ko", Verdict::Ok)],
            "/m",
            None,
        )
        .to_bytes();
        let banks = [PcrBank::Sha1, PcrBank::Sha256];
        let mut log = record_bytes(12, &c, &banks);
        log.extend(record_bytes(12, b"{\"x\":1}", &banks));
        let recs = parse_records(&log).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].content, c);
        let v = replay(&recs, 12, PcrBank::Sha256, &[0; 32]).unwrap();
        let d1 = PcrBank::Sha256.hash(&c);
        let d2 = PcrBank::Sha256.hash(b"{\"x\":1}");
        let want = PcrBank::Sha256.extend(&PcrBank::Sha256.extend(&[0; 32], &d1), &d2);
        assert_eq!(v, want);
        assert!(explain(&recs, 12, PcrBank::Sha256, &[0; 32], &want)
            .mismatch
            .is_none());
        assert!(explain(&recs, 12, PcrBank::Sha256, &[0; 32], &[1; 32])
            .mismatch
            .is_some());
    }

    #[test]
    fn edited_content_breaks_the_digest() {
        let c = b"{\"verdict\":\"bad-signature\"}";
        let log = record_bytes(12, c, &[PcrBank::Sha256]);
        let edited = String::from_utf8(log)
            .unwrap()
            .replace("bad-signature", "ok")
            .into_bytes();
        let recs = parse_records(&edited).unwrap();
        assert!(replay(&recs, 12, PcrBank::Sha256, &[0; 32]).is_err());
    }

    #[test]
    fn a_start_of_the_wrong_length_is_refused() {
        let recs = parse_records(&record_bytes(12, b"{}", &[PcrBank::Sha256])).unwrap();
        assert!(matches!(
            replay(&recs, 12, PcrBank::Sha256, &[0; 20]),
            Err(MeasureError::StartLength { len: 20, .. })
        ));
        assert!(replay(&recs, 12, PcrBank::Sha256, &[]).is_err());
    }

    fn log(contents: &[&[u8]]) -> Vec<Record> {
        let mut l = Vec::new();
        for c in contents {
            l.extend(record_bytes(12, c, &[PcrBank::Sha1, PcrBank::Sha256]));
        }
        parse_records(&l).unwrap()
    }

    fn value(contents: &[&[u8]]) -> Vec<u8> {
        let d: Vec<Vec<u8>> = contents.iter().map(|c| PcrBank::Sha256.hash(c)).collect();
        let r: Vec<&[u8]> = d.iter().map(Vec::as_slice).collect();
        replay_values(&[0; 32], &r, PcrBank::Sha256)
    }

    const A: &[u8] = b"{\"a\":1}";
    const B: &[u8] = b"{\"b\":2}";
    const C: &[u8] = b"{\"c\":3}";

    #[test]
    fn matching_log() {
        let r = explain(
            &log(&[A, B]),
            12,
            PcrBank::Sha256,
            &[0; 32],
            &value(&[A, B]),
        );
        assert!(r.mismatch.is_none());
        assert_eq!(r.running.len(), 2);
        assert_eq!(r.running[1], value(&[A, B]));
        assert_eq!(r.running[0], value(&[A]));
        // No record and a zero PCR: consistent.
        let r = explain(&[], 12, PcrBank::Sha256, &[0; 32], &[0; 32]);
        assert!(r.mismatch.is_none());
    }

    #[test]
    fn extra_records_after_a_prefix() {
        let r = explain(
            &log(&[A, B, C]),
            12,
            PcrBank::Sha256,
            &[0; 32],
            &value(&[A, B]),
        );
        let m = r.mismatch.unwrap();
        assert!(m.contains("the first 2 record(s) (1, 2) replay to the quoted value; record(s) 3 after them were not measured"), "{m}");
        let r = explain(&log(&[A]), 12, PcrBank::Sha256, &[0; 32], &[0; 32]);
        assert!(r
            .mismatch
            .unwrap()
            .contains("never extended, so record(s) 1"));
    }

    #[test]
    fn reordered_records() {
        let r = explain(
            &log(&[B, A, C]),
            12,
            PcrBank::Sha256,
            &[0; 32],
            &value(&[A, B, C]),
        );
        let m = r.mismatch.unwrap();
        assert!(
            m.contains("reordered: the TPM measured the records in the order 2, 1, 3"),
            "{m}"
        );
        assert!(m.contains("record 1 is out of place"), "{m}");
    }

    #[test]
    fn missing_record_and_pcr_relabel() {
        let r = explain(
            &log(&[A, C]),
            12,
            PcrBank::Sha256,
            &[0; 32],
            &value(&[A, B, C]),
        );
        let m = r.mismatch.unwrap();
        assert!(m.contains("no prefix and no reordering"), "{m}");
        assert!(m.contains("a record is missing"), "{m}");
        let mut recs = log(&[A, B]);
        recs[1].pcr = 13;
        let r = explain(&recs, 12, PcrBank::Sha256, &[0; 32], &value(&[A, B]));
        assert!(r
            .mismatch
            .unwrap()
            .contains("record(s) 2 claim another PCR"));
        let r = explain(&[], 12, PcrBank::Sha256, &[0; 32], &value(&[A]));
        assert!(r.mismatch.unwrap().contains("no record for PCR 12"));
    }

    #[test]
    fn missing_bank() {
        let l = record_bytes(12, A, &[PcrBank::Sha1]);
        let r = explain(
            &parse_records(&l).unwrap(),
            12,
            PcrBank::Sha256,
            &[0; 32],
            &[0; 32],
        );
        assert!(r.mismatch.unwrap().contains("no sha256 digest"));
    }

    #[test]
    fn a_start_other_than_zero() {
        let from = [7u8; 32];
        let d: Vec<Vec<u8>> = [A, B].iter().map(|c| PcrBank::Sha256.hash(c)).collect();
        let r: Vec<&[u8]> = d.iter().map(Vec::as_slice).collect();
        let want = replay_values(&from, &r, PcrBank::Sha256);
        let l = log(&[B, A]);
        assert!(explain(&l, 12, PcrBank::Sha256, &from, &want)
            .mismatch
            .unwrap()
            .contains("the order 2, 1"));
        let m = explain(&l, 12, PcrBank::Sha256, &from, &from)
            .mismatch
            .unwrap();
        assert!(
            m.contains("PCR 12 still holds the starting value, so record(s) 1, 2"),
            "{m}"
        );
        let m = explain(&l, 12, PcrBank::Sha256, &[0; 20], &from)
            .mismatch
            .unwrap();
        assert!(m.contains("20 bytes"), "{m}");
    }

    #[test]
    fn every_order_is_visited() {
        let mut seen = std::collections::BTreeSet::new();
        assert!(find_order(4, |o| {
            seen.insert(o.to_vec());
            false
        })
        .is_none());
        assert_eq!(seen.len(), 24);
        assert_eq!(find_order(0, |_| true), Some(vec![]));
    }
}
