//! Replaying a log: the PCR value its records imply, and why it does not
//! reach a live one.

use crate::tpm::PcrBank;

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

/// Why the log does not explain the live PCR value, naming the first record
/// that does not fit; `None` when it does.
pub fn first_mismatch(
    records: &[Record],
    pcr: u8,
    bank: PcrBank,
    from: &[u8],
    live: &[u8],
) -> Option<String> {
    let mine: Vec<&Record> = records.iter().filter(|r| r.pcr == pcr).collect();
    let mut value = from.to_vec();
    let mut prefixes = vec![value.clone()];
    for r in &mine {
        if let Err(e) = r.verify_digests() {
            return Some(format!("{e} (the record was edited)"));
        }
        match r.digests.iter().find(|(b, _)| *b == bank) {
            Some((_, d)) => value = bank.extend(&value, d),
            None => return Some(format!("record {}: no {bank} digest", r.index)),
        }
        prefixes.push(value.clone());
    }
    if value == live {
        return None;
    }
    // The TPM may have stopped partway: records after that point were not measured.
    if let Some(k) = prefixes.iter().position(|p| p == live) {
        if let Some(r) = mine.get(k) {
            return Some(format!(
                "record {} and later were not measured into PCR {pcr} (or were added to the log)",
                r.index
            ));
        }
    }
    Some(match mine.first() {
        Some(r) => format!(
            "no prefix of the log's {} record(s) reaches the TPM's PCR {pcr} {} value {}; the first record that does not fit is record {} (records missing, reordered or edited, or another party extended the PCR)",
            mine.len(),
            bank,
            crate::util::hex::lower(live),
            r.index
        ),
        None => format!("no record for PCR {pcr}, but the TPM has {}", crate::util::hex::lower(live)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{parse_log, record_bytes, Content, Mode, Stage, UnsealOutcome};
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
        let recs = parse_log(&log).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].content, c);
        let v = replay(&recs, 12, PcrBank::Sha256, &[0; 32]).unwrap();
        let d1 = PcrBank::Sha256.hash(&c);
        let d2 = PcrBank::Sha256.hash(b"{\"x\":1}");
        let want = PcrBank::Sha256.extend(&PcrBank::Sha256.extend(&[0; 32], &d1), &d2);
        assert_eq!(v, want);
        assert!(first_mismatch(&recs, 12, PcrBank::Sha256, &[0; 32], &want).is_none());
        assert!(first_mismatch(&recs, 12, PcrBank::Sha256, &[0; 32], &[1; 32]).is_some());
    }

    #[test]
    fn edited_content_breaks_the_digest() {
        let c = b"{\"verdict\":\"bad-signature\"}";
        let log = record_bytes(12, c, &[PcrBank::Sha256]);
        let edited = String::from_utf8(log)
            .unwrap()
            .replace("bad-signature", "ok")
            .into_bytes();
        let recs = parse_log(&edited).unwrap();
        assert!(replay(&recs, 12, PcrBank::Sha256, &[0; 32]).is_err());
    }

    #[test]
    fn a_start_of_the_wrong_length_is_refused() {
        let recs = parse_log(&record_bytes(12, b"{}", &[PcrBank::Sha256])).unwrap();
        assert!(matches!(
            replay(&recs, 12, PcrBank::Sha256, &[0; 20]),
            Err(MeasureError::StartLength { len: 20, .. })
        ));
        assert!(replay(&recs, 12, PcrBank::Sha256, &[]).is_err());
    }
}
