//! Reading the crypto-agile log: the SHA-1-format header event carrying
//! `Spec ID Event03`, then `TCG_PCR_EVENT2` records, all little-endian.

use super::{Event, FirmwareLog, SpecId, EV_NO_ACTION};
use crate::tpm::PcrBank;

/// The largest log read (real ones are tens of KiB).
pub const MAX_LOG_SIZE: usize = 16 << 20;
/// The most events a log may hold.
pub const MAX_EVENTS: usize = 65_536;
/// The most banks a header may declare.
pub const MAX_ALGORITHMS: usize = 32;
/// The largest digest a header may declare (SHA-512 is 64).
const MAX_DIGEST_SIZE: u16 = 512;
/// The largest single event's data; a bound besides the remaining bytes.
pub const MAX_EVENT_SIZE: usize = MAX_LOG_SIZE;

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";

/// Why a firmware log could not be read. Every variant about the log names
/// the byte `offset` where reading failed and the event `index` (the header
/// is event 0): a log that cannot be read completely is not read partly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TcgError {
    /// The log is larger than [`MAX_LOG_SIZE`].
    #[error("firmware log is {size} bytes, more than the {limit}-byte limit")]
    TooLarge {
        /// The log's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The log ends inside a field.
    #[error(
        "event {index}: truncated at byte offset {offset}: {field} needs {need} bytes, {left} left"
    )]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// The event being read.
        index: usize,
        /// The field.
        field: &'static str,
        /// Its size.
        need: usize,
        /// Bytes left in the log.
        left: usize,
    },
    /// The first event is not a crypto-agile `Spec ID Event03` header.
    #[error("event 0 at byte offset {offset}: not a crypto-agile log header: {reason}")]
    BadHeader {
        /// Where the offending field starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// More events than [`MAX_EVENTS`].
    #[error("event {index} at byte offset {offset}: more than {limit} events")]
    TooManyEvents {
        /// Where the event starts.
        offset: usize,
        /// Its index.
        index: usize,
        /// The limit.
        limit: usize,
    },
    /// An event carries more digests than the header has banks.
    #[error("event {index} at byte offset {offset}: {count} digests, the header declares {limit} algorithms")]
    TooManyDigests {
        /// Where the count is.
        offset: usize,
        /// The event.
        index: usize,
        /// The count read.
        count: u32,
        /// The header's number of algorithms.
        limit: usize,
    },
    /// A digest's algorithm is not one the header declares.
    #[error("event {index} at byte offset {offset}: digest algorithm {alg:#06x} is not in the log header")]
    UnknownAlgorithm {
        /// Where the `hashAlg` is.
        offset: usize,
        /// The event.
        index: usize,
        /// The algorithm id.
        alg: u16,
    },
    /// An event carries two digests of one algorithm: one would be
    /// extended and the other read, so the log could say two things.
    #[error("event {index} at byte offset {offset}: a second digest of algorithm {alg:#06x}")]
    DuplicateAlgorithm {
        /// Where the second `hashAlg` is.
        offset: usize,
        /// The event.
        index: usize,
        /// The algorithm id.
        alg: u16,
    },
    /// An event's data is larger than what is left of the log.
    #[error("event {index} at byte offset {offset}: event size {size} is more than the {left} bytes left")]
    EventTooLarge {
        /// Where the `eventSize` is.
        offset: usize,
        /// The event.
        index: usize,
        /// The size read.
        size: u32,
        /// Bytes left after it.
        left: usize,
    },
}

/// A bounded reader that knows where it is and which event it reads.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    index: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], TcgError> {
        if n > self.left() {
            return Err(TcgError::Truncated {
                offset: self.pos,
                index: self.index,
                field,
                need: n,
                left: self.left(),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, TcgError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, TcgError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, TcgError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `eventSize` then the data, the size checked against what is left.
    fn sized_data(&mut self) -> Result<Vec<u8>, TcgError> {
        let offset = self.pos;
        let size = self.u32("eventSize")?;
        let n = usize::try_from(size).unwrap_or(usize::MAX);
        if n > self.left() || n > MAX_EVENT_SIZE {
            return Err(TcgError::EventTooLarge {
                offset,
                index: self.index,
                size,
                left: self.left(),
            });
        }
        Ok(self.take(n, "event data")?.to_vec())
    }
}

/// Parses a crypto-agile firmware event log.
pub fn parse(data: &[u8]) -> Result<FirmwareLog, TcgError> {
    if data.len() > MAX_LOG_SIZE {
        return Err(TcgError::TooLarge {
            size: data.len(),
            limit: MAX_LOG_SIZE,
        });
    }
    let mut c = Cursor {
        data,
        pos: 0,
        index: 0,
    };
    let spec = header(&mut c)?;
    let mut events = Vec::new();
    while c.left() > 0 {
        c.index += 1;
        if events.len() >= MAX_EVENTS {
            return Err(TcgError::TooManyEvents {
                offset: c.pos,
                index: c.index,
                limit: MAX_EVENTS,
            });
        }
        events.push(event2(&mut c, &spec)?);
    }
    Ok(FirmwareLog { spec, events })
}

/// The SHA-1-format first event and its `Spec ID Event03` data.
fn header(c: &mut Cursor<'_>) -> Result<SpecId, TcgError> {
    let _pcr = c.u32("pcrIndex")?;
    let type_at = c.pos;
    let event_type = c.u32("eventType")?;
    if event_type != EV_NO_ACTION {
        return Err(bad(
            type_at,
            format!("event type {event_type:#x}, expected EV_NO_ACTION"),
        ));
    }
    c.take(20, "SHA-1 digest")?;
    let data_at = c.pos + 4;
    let data = c.sized_data()?;
    let mut d = Cursor {
        data: &data,
        pos: 0,
        index: 0,
    };
    spec_id(&mut d).map_err(|e| shift(e, data_at))
}

/// `TCG_EfiSpecIDEventStruct`, offsets relative to the event data.
fn spec_id(d: &mut Cursor<'_>) -> Result<SpecId, TcgError> {
    if d.take(16, "signature")? != SPEC_ID_SIGNATURE {
        return Err(bad(0, "signature is not \"Spec ID Event03\"".into()));
    }
    let platform_class = d.u32("platformClass")?;
    let version_minor = d.u8("specVersionMinor")?;
    let version_major = d.u8("specVersionMajor")?;
    let errata = d.u8("specErrata")?;
    let uintn_size = d.u8("uintnSize")?;
    let count_at = d.pos;
    let count = d.u32("numberOfAlgorithms")?;
    if count == 0 || count as usize > MAX_ALGORITHMS {
        return Err(bad(
            count_at,
            format!("{count} algorithms, expected 1 to {MAX_ALGORITHMS}"),
        ));
    }
    let mut algorithms: Vec<(u16, u16)> = Vec::new();
    for _ in 0..count {
        let at = d.pos;
        let alg = d.u16("algorithmId")?;
        let size = d.u16("digestSize")?;
        let known = PcrBank::ALL.into_iter().find(|b| b.alg_id() == alg);
        if let Some(b) = known.filter(|b| b.digest_len() != usize::from(size)) {
            return Err(bad(at, format!("{b} declared with {size}-byte digests")));
        }
        if size == 0 || size > MAX_DIGEST_SIZE {
            return Err(bad(
                at,
                format!("algorithm {alg:#06x} with {size}-byte digests"),
            ));
        }
        if algorithms.iter().any(|(a, _)| *a == alg) {
            return Err(bad(at, format!("algorithm {alg:#06x} declared twice")));
        }
        algorithms.push((alg, size));
    }
    let vendor_size = d.u8("vendorInfoSize")?;
    let vendor_info = d.take(usize::from(vendor_size), "vendorInfo")?.to_vec();
    Ok(SpecId {
        platform_class,
        version_major,
        version_minor,
        errata,
        uintn_size,
        algorithms,
        vendor_info,
    })
}

/// One `TCG_PCR_EVENT2`.
fn event2(c: &mut Cursor<'_>, spec: &SpecId) -> Result<Event, TcgError> {
    let pcr = c.u32("pcrIndex")?;
    let event_type = c.u32("eventType")?;
    let count_at = c.pos;
    let count = c.u32("digest count")?;
    if count as usize > spec.algorithms.len() {
        return Err(TcgError::TooManyDigests {
            offset: count_at,
            index: c.index,
            count,
            limit: spec.algorithms.len(),
        });
    }
    let mut digests = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = c.pos;
        let alg = c.u16("hashAlg")?;
        let size = spec.digest_size(alg).ok_or(TcgError::UnknownAlgorithm {
            offset: at,
            index: c.index,
            alg,
        })?;
        if digests.iter().any(|(a, _)| *a == alg) {
            return Err(TcgError::DuplicateAlgorithm {
                offset: at,
                index: c.index,
                alg,
            });
        }
        digests.push((alg, c.take(size, "digest")?.to_vec()));
    }
    let data = c.sized_data()?;
    Ok(Event {
        index: c.index,
        pcr,
        event_type,
        digests,
        data,
    })
}

fn bad(offset: usize, reason: String) -> TcgError {
    TcgError::BadHeader { offset, reason }
}

/// An error inside the header's data, its offset made absolute.
fn shift(e: TcgError, base: usize) -> TcgError {
    match e {
        TcgError::BadHeader { offset, reason } => bad(base + offset, reason),
        TcgError::Truncated {
            offset,
            field,
            need,
            left,
            ..
        } => bad(
            base + offset,
            format!("{field} needs {need} bytes, {left} left in the header event"),
        ),
        other => other,
    }
}
