//! Replaying the event log against quoted PCR values, and saying why it
//! does not fit when it does not.

use crate::measure::Record;
use crate::tpm::PcrBank;

/// Reordering is looked for only in logs this short (6! = 720 orders).
pub const MAX_PERMUTED: usize = 6;

/// The outcome of replaying one PCR in one bank.
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
    /// The value the whole log implies (zero when it has no record).
    pub value: Vec<u8>,
    /// `None` when the value is the quoted one, else why not.
    pub mismatch: Option<String>,
}

fn index_list(idx: &[usize]) -> String {
    let v: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    v.join(", ")
}

fn replay_values(digests: &[&[u8]], bank: PcrBank) -> Vec<u8> {
    let mut v = vec![0u8; bank.digest_len()];
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
    match r.modseal_content() {
        Some(Ok(c)) => c.stage.name().to_owned(),
        Some(Err(_)) => "unreadable".to_owned(),
        None => format!("'{}'", super::policy::clip(&r.content_type)),
    }
}

/// Replays the records of `pcr` in `bank` from zero and compares the
/// result with `quoted`. The records' digests must already have been
/// checked against their content. On a mismatch the explanation names the
/// records: which extra records follow a prefix that reaches the quoted
/// value, the order the TPM measured them in when the log reorders them, a
/// record whose PCR label was changed, or, failing those, the record count
/// and stages (a record is missing or something else extended the PCR).
pub fn replay(records: &[Record], pcr: u8, bank: PcrBank, quoted: &[u8]) -> Replay {
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
    let mut value = vec![0u8; bank.digest_len()];
    for d in &digests {
        value = bank.extend(&value, d);
        running.push(value.clone());
    }
    let mismatch = match missing {
        Some(i) => Some(format!(
            "record {i} (PCR {pcr}) has no {bank} digest, so the log cannot be replayed in the {bank} bank"
        )),
        None if value == quoted => None,
        None => Some(
            Mismatch {
                records,
                mine: &mine,
                idx: &idx,
                digests: &digests,
                running: &running,
                pcr,
                bank,
                quoted,
                value: &value,
            }
            .explain(),
        ),
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

/// A replay that does not reach the quoted value, to be explained.
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
            crate::util::hex::lower(self.value),
            crate::util::hex::lower(self.quoted)
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
        let k = if self.quoted == vec![0u8; self.bank.digest_len()] {
            0
        } else {
            self.running.iter().position(|v| v == self.quoted)? + 1
        };
        let extra = index_list(self.idx.get(k..).unwrap_or_default());
        Some(if k == 0 {
            format!(
                "PCR {pcr} was never extended, so record(s) {extra} were not measured (added to the log)"
            )
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
            replay_values(&d, self.bank) == self.quoted
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
        let mut v = vec![0u8; self.bank.digest_len()];
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
    use crate::measure::{parse_log, record_bytes};

    fn log(contents: &[&[u8]]) -> Vec<Record> {
        let mut l = Vec::new();
        for c in contents {
            l.extend(record_bytes(12, c, &[PcrBank::Sha1, PcrBank::Sha256]));
        }
        parse_log(&l).unwrap()
    }

    fn value(contents: &[&[u8]]) -> Vec<u8> {
        let d: Vec<Vec<u8>> = contents.iter().map(|c| PcrBank::Sha256.hash(c)).collect();
        let r: Vec<&[u8]> = d.iter().map(Vec::as_slice).collect();
        replay_values(&r, PcrBank::Sha256)
    }

    const A: &[u8] = b"{\"a\":1}";
    const B: &[u8] = b"{\"b\":2}";
    const C: &[u8] = b"{\"c\":3}";

    #[test]
    fn matching_log() {
        let r = replay(&log(&[A, B]), 12, PcrBank::Sha256, &value(&[A, B]));
        assert!(r.mismatch.is_none());
        assert_eq!(r.running.len(), 2);
        assert_eq!(r.running[1], value(&[A, B]));
        assert_eq!(r.running[0], value(&[A]));
        // No record and a zero PCR: consistent.
        let r = replay(&[], 12, PcrBank::Sha256, &[0; 32]);
        assert!(r.mismatch.is_none());
    }

    #[test]
    fn extra_records_after_a_prefix() {
        let r = replay(&log(&[A, B, C]), 12, PcrBank::Sha256, &value(&[A, B]));
        let m = r.mismatch.unwrap();
        assert!(m.contains("the first 2 record(s) (1, 2) replay to the quoted value; record(s) 3 after them were not measured"), "{m}");
        let r = replay(&log(&[A]), 12, PcrBank::Sha256, &[0; 32]);
        assert!(r
            .mismatch
            .unwrap()
            .contains("never extended, so record(s) 1"));
    }

    #[test]
    fn reordered_records() {
        let r = replay(&log(&[B, A, C]), 12, PcrBank::Sha256, &value(&[A, B, C]));
        let m = r.mismatch.unwrap();
        assert!(
            m.contains("reordered: the TPM measured the records in the order 2, 1, 3"),
            "{m}"
        );
        assert!(m.contains("record 1 is out of place"), "{m}");
    }

    #[test]
    fn missing_record_and_pcr_relabel() {
        let r = replay(&log(&[A, C]), 12, PcrBank::Sha256, &value(&[A, B, C]));
        let m = r.mismatch.unwrap();
        assert!(m.contains("no prefix and no reordering"), "{m}");
        assert!(m.contains("a record is missing"), "{m}");
        let mut recs = log(&[A, B]);
        recs[1].pcr = 13;
        let r = replay(&recs, 12, PcrBank::Sha256, &value(&[A, B]));
        assert!(r
            .mismatch
            .unwrap()
            .contains("record(s) 2 claim another PCR"));
        let r = replay(&[], 12, PcrBank::Sha256, &value(&[A]));
        assert!(r.mismatch.unwrap().contains("no record for PCR 12"));
    }

    #[test]
    fn missing_bank() {
        let l = record_bytes(12, A, &[PcrBank::Sha1]);
        let r = replay(&parse_log(&l).unwrap(), 12, PcrBank::Sha256, &[0; 32]);
        assert!(r.mismatch.unwrap().contains("no sha256 digest"));
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
