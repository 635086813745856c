//! The event log: reading its records back, and appending one.

use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::tpm::PcrBank;

use super::error::MeasureError;
use super::record::{Content, CONTENT_TYPE, RS};

/// A log larger than this is refused: a boot writes two records.
pub const MAX_LOG_SIZE: usize = 64 * 1024 * 1024;
/// A log with more records than this is refused.
pub const MAX_RECORDS: usize = 4096;

/// A record as read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based position in the log.
    pub index: usize,
    /// The PCR the record says it was measured into.
    pub pcr: u8,
    /// One digest per bank, in the record's order.
    pub digests: Vec<(PcrBank, Vec<u8>)>,
    /// The record's `content_type` (not covered by the digests).
    pub content_type: String,
    /// The exact content bytes.
    pub content: Vec<u8>,
}

impl Record {
    /// The modseal content, when this is a modseal record.
    pub fn parse_content(&self) -> Option<Result<Content, MeasureError>> {
        (self.content_type == CONTENT_TYPE).then(|| {
            serde_json::from_slice(&self.content).map_err(|source| MeasureError::Content {
                index: self.index,
                source,
            })
        })
    }

    /// Checks that every digest is the hash of the content bytes.
    pub fn verify_digests(&self) -> Result<(), MeasureError> {
        if self.digests.is_empty() {
            return Err(MeasureError::NoDigests { index: self.index });
        }
        for (bank, d) in &self.digests {
            if bank.hash(&self.content) != *d {
                return Err(MeasureError::DigestMismatch {
                    index: self.index,
                    bank: *bank,
                });
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord<'a> {
    pcr: u8,
    digests: Vec<RawDigest>,
    content_type: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDigest {
    hash_alg: String,
    digest: String,
}

/// Parses a JSON-SEQ log. Any malformed record is an error naming it: a
/// log that cannot be read completely cannot be trusted partly.
pub fn parse_records(bytes: &[u8]) -> Result<Vec<Record>, MeasureError> {
    if bytes.len() > MAX_LOG_SIZE {
        return Err(MeasureError::LogTooLarge {
            size: bytes.len(),
            limit: MAX_LOG_SIZE,
        });
    }
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    if bytes.first() != Some(&RS) {
        return Err(MeasureError::NoSeparator);
    }
    let mut records = Vec::new();
    for (i, chunk) in bytes.split(|&b| b == RS).skip(1).enumerate() {
        let index = i + 1;
        if index > MAX_RECORDS {
            return Err(MeasureError::TooManyRecords { limit: MAX_RECORDS });
        }
        records.push(parse_record(index, chunk)?);
    }
    Ok(records)
}

/// One record: the bytes between two separators.
fn parse_record(index: usize, chunk: &[u8]) -> Result<Record, MeasureError> {
    let text = std::str::from_utf8(chunk).map_err(|_| MeasureError::NotUtf8 { index })?;
    let text = text
        .strip_suffix('\n')
        .ok_or(MeasureError::Truncated { index })?;
    let raw: RawRecord<'_> =
        serde_json::from_str(text).map_err(|source| MeasureError::Json { index, source })?;
    if raw.pcr > 23 {
        return Err(MeasureError::PcrOutOfRange {
            index,
            pcr: raw.pcr,
        });
    }
    let mut digests: Vec<(PcrBank, Vec<u8>)> = Vec::new();
    for d in &raw.digests {
        let bank = PcrBank::from_name(&d.hash_alg).ok_or_else(|| MeasureError::UnknownHashAlg {
            index,
            name: d.hash_alg.clone(),
        })?;
        let value = crate::util::hex::parse(&d.digest)
            .filter(|v| v.len() == bank.digest_len())
            .ok_or(MeasureError::BadDigest { index, bank })?;
        if digests.iter().any(|(b, _)| *b == bank) {
            return Err(MeasureError::RepeatedDigest { index, bank });
        }
        digests.push((bank, value));
    }
    Ok(Record {
        index,
        pcr: raw.pcr,
        digests,
        content_type: raw.content_type,
        content: raw.content.get().as_bytes().to_vec(),
    })
}

/// Appends one record with a single write, then syncs, so a crash leaves
/// whole records only. Never through a symlink, never into a non-file: the
/// directory may have been prepared by whoever wrote the initramfs.
pub fn append(path: &Path, record: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = crate::util::fs::open_append_nofollow(path)?;
    f.write_all(record)?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record_bytes;

    #[test]
    fn hostile_logs_are_errors() {
        for bad in [&b"{}"[..], b"\x1e{", b"\x1e{}\n", b"\x1e{\"pcr\":99,\"digests\":[],\"content_type\":\"x\",\"content\":{}}\n",
            b"\x1e{\"pcr\":1,\"digests\":[{\"hashAlg\":\"md5\",\"digest\":\"00\"}],\"content_type\":\"x\",\"content\":{}}\n"] {
            assert!(parse_records(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse_records(b"").unwrap().is_empty());
    }

    #[test]
    fn errors_keep_their_messages() {
        let e = |b: &[u8]| parse_records(b).unwrap_err().to_string();
        assert_eq!(
            e(b"{}"),
            "log does not start with a record separator (0x1E)"
        );
        assert_eq!(e(b"\x1e{}"), "record 1: truncated (no final newline)");
        assert_eq!(
            e(b"\x1e{\"pcr\":99,\"digests\":[],\"content_type\":\"x\",\"content\":{}}\n"),
            "record 1: PCR 99 out of range"
        );
        assert_eq!(
            e(b"\x1e{\"pcr\":1,\"digests\":[{\"hashAlg\":\"md5\",\"digest\":\"00\"}],\"content_type\":\"x\",\"content\":{}}\n"),
            "record 1: unknown hashAlg 'md5'"
        );
        assert_eq!(
            e(b"\x1e{\"pcr\":1,\"digests\":[{\"hashAlg\":\"sha1\",\"digest\":\"00\"}],\"content_type\":\"x\",\"content\":{}}\n"),
            "record 1: bad sha1 digest"
        );
        let edited = String::from_utf8(record_bytes(12, b"{\"a\":1}", &[PcrBank::Sha256]))
            .unwrap()
            .replace("\"a\"", "\"b\"");
        let r = &parse_records(edited.as_bytes()).unwrap()[0];
        assert_eq!(
            r.verify_digests().unwrap_err().to_string(),
            "record 1: sha256 digest does not match the content"
        );
        let relabelled = record_bytes(12, b"{\"a\":1}", &[PcrBank::Sha256]);
        let r = &parse_records(&relabelled).unwrap()[0];
        assert!(r
            .parse_content()
            .unwrap()
            .unwrap_err()
            .to_string()
            .starts_with("record 1: content: "));
    }

    #[test]
    fn parsed_content_writes_back_to_itself() {
        // What the event_log fuzz target asserts, on a content with escapes,
        // a field this version ignores, and a failure's reason.
        let content = br#"{"version":1,"stage":"pre-pivot","mode":"warn","result":"fail","anchor_sha256":null,"unseal":"no-tpm","modules":[{"path":"a\u00e9\n.ko","sha256":null,"key_id":"AB","hash_algo":null,"verdict":"bad-signature","reason":"x\"y","extra":1}],"unverified_loaded":[]}"#;
        let rec = &parse_records(&record_bytes(12, content, &[PcrBank::Sha1])).unwrap()[0];
        let c = rec.parse_content().unwrap().unwrap();
        let again = record_bytes(12, &c.encode().unwrap(), &[PcrBank::Sha256]);
        let back = parse_records(&again).unwrap()[0]
            .parse_content()
            .unwrap()
            .unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn append_writes_whole_records() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/log/tpm2-measure.log");
        let a = record_bytes(12, b"{\"a\":1}", &[PcrBank::Sha256]);
        let b = record_bytes(12, b"{\"b\":2}", &[PcrBank::Sha256]);
        append(&path, &a).unwrap();
        append(&path, &b).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [a, b].concat());
    }

    #[test]
    fn append_never_follows_a_planted_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = tmp.path().join("tpm2-measure.log");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let a = record_bytes(12, b"{\"a\":1}", &[PcrBank::Sha256]);
        assert!(append(&path, &a).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
