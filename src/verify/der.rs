//! A bounded DER reader over byte slices, built on `asn1-rs`, that keeps the
//! absolute byte offset of every element so errors can say where input broke.

use asn1_rs::{Any, Class, FromDer};

/// Nesting deeper than this is refused: PKCS#7 and X.509 need far less, and a
/// bound keeps hostile input from costing stack or time.
const MAX_DEPTH: u8 = 16;

/// A DER element that could not be read: what was expected, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at offset {offset}: {kind}")]
pub struct DerError {
    /// The element the caller was reading (`"SignerInfo.version"`).
    pub what: &'static str,
    /// Offset of the element (or of the missing one) in the outermost input.
    pub offset: usize,
    /// What was wrong with it.
    pub kind: DerErrorKind,
}

/// Why a DER element was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerErrorKind {
    /// A reader was asked for the content of a primitive element.
    #[error("expected a constructed element")]
    NotConstructed,
    /// Nesting reached the limit (16 levels).
    #[error("nesting too deep")]
    TooDeep,
    /// The input ended where an element was required.
    #[error("missing (end of input)")]
    Missing,
    /// The element's length runs past the end of the input.
    #[error("truncated")]
    Truncated,
    /// The header or encoding is not valid DER.
    #[error("invalid DER ({0})")]
    Invalid(asn1_rs::Error),
    /// The element has another tag than the one required.
    #[error("expected {}, found {}", tag_name(Class::Universal, *.expected), tag_name(*.found_class, *.found_tag))]
    UnexpectedTag {
        /// The universal tag required.
        expected: u32,
        /// The class found.
        found_class: Class,
        /// The tag number found.
        found_tag: u32,
    },
    /// Bytes follow the last element of a SEQUENCE or of the input.
    #[error("{len} unexpected trailing bytes")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// A version INTEGER that is not a small non-negative number.
    #[error("not a small non-negative integer")]
    NotSmallUint,
}

/// One parsed element: tag, where it starts, its whole encoding and content.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    /// The tag class.
    pub class: Class,
    /// Whether the element is constructed (holds elements).
    pub constructed: bool,
    /// The tag number.
    pub tag: u32,
    /// Offset of the first header byte in the outermost input.
    pub offset: usize,
    /// Offset of the first content byte in the outermost input.
    pub content_offset: usize,
    /// Header and content, as encoded.
    pub raw: &'a [u8],
    /// Content only, without the header.
    pub content: &'a [u8],
    depth: u8,
}

/// Universal tag INTEGER.
pub const TAG_INTEGER: u32 = 2;
/// Universal tag BIT STRING.
pub const TAG_BIT_STRING: u32 = 3;
/// Universal tag OCTET STRING.
pub const TAG_OCTET_STRING: u32 = 4;
/// Universal tag NULL.
pub const TAG_NULL: u32 = 5;
/// Universal tag OBJECT IDENTIFIER.
pub const TAG_OID: u32 = 6;
/// Universal tag SEQUENCE.
pub const TAG_SEQUENCE: u32 = 16;
/// Universal tag SET.
pub const TAG_SET: u32 = 17;

/// Reads consecutive elements from a slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
    depth: u8,
}

impl<'a> Reader<'a> {
    /// A reader over a whole top-level input.
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            rest: input,
            offset: 0,
            depth: 0,
        }
    }

    /// A reader over an element's content.
    pub fn inside(el: &Element<'a>, what: &'static str) -> Result<Self, DerError> {
        if !el.constructed {
            return Err(DerError {
                what,
                offset: el.offset,
                kind: DerErrorKind::NotConstructed,
            });
        }
        if el.depth >= MAX_DEPTH {
            return Err(DerError {
                what,
                offset: el.offset,
                kind: DerErrorKind::TooDeep,
            });
        }
        Ok(Reader {
            rest: el.content,
            offset: el.content_offset,
            depth: el.depth + 1,
        })
    }

    /// Where the next element starts in the outermost input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether every element has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Peeks at the next element without consuming it.
    pub fn peek(&self, what: &'static str) -> Result<Option<Element<'a>>, DerError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        self.clone().any(what).map(Some)
    }

    /// Reads the next element, whatever its tag.
    pub fn any(&mut self, what: &'static str) -> Result<Element<'a>, DerError> {
        if self.rest.is_empty() {
            return Err(DerError {
                what,
                offset: self.offset,
                kind: DerErrorKind::Missing,
            });
        }
        let (rem, any) = Any::from_der(self.rest).map_err(|e| DerError {
            what,
            offset: self.offset,
            kind: describe(e),
        })?;
        let consumed = self.rest.len() - rem.len();
        let header_len = consumed - any.data.len();
        let el = Element {
            class: any.header.class(),
            constructed: any.header.is_constructed(),
            tag: any.header.tag().0,
            offset: self.offset,
            content_offset: self.offset + header_len,
            raw: &self.rest[..consumed],
            content: any.data,
            depth: self.depth,
        };
        self.rest = rem;
        self.offset += consumed;
        Ok(el)
    }

    /// Reads the next element and requires a universal tag.
    pub fn expect(&mut self, tag: u32, what: &'static str) -> Result<Element<'a>, DerError> {
        let el = self.any(what)?;
        if el.class != Class::Universal || el.tag != tag {
            return Err(DerError {
                what,
                offset: el.offset,
                kind: DerErrorKind::UnexpectedTag {
                    expected: tag,
                    found_class: el.class,
                    found_tag: el.tag,
                },
            });
        }
        Ok(el)
    }

    /// Reads a SEQUENCE and returns a reader over its content.
    pub fn sequence(&mut self, what: &'static str) -> Result<Reader<'a>, DerError> {
        let el = self.expect(TAG_SEQUENCE, what)?;
        Reader::inside(&el, what)
    }

    /// Reads a SEQUENCE and returns the element itself (for raw comparisons).
    pub fn sequence_raw(&mut self, what: &'static str) -> Result<Element<'a>, DerError> {
        self.expect(TAG_SEQUENCE, what)
    }

    /// Reads the next element if it is context-specific `[n]`.
    pub fn optional_context(
        &mut self,
        n: u32,
        what: &'static str,
    ) -> Result<Option<Element<'a>>, DerError> {
        match self.peek(what)? {
            Some(el) if el.class == Class::ContextSpecific && el.tag == n => {
                self.any(what).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Requires that nothing follows: trailing bytes are refused everywhere.
    pub fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError {
                what,
                offset: self.offset,
                kind: DerErrorKind::TrailingBytes {
                    len: self.rest.len(),
                },
            })
        }
    }

    /// A small non-negative INTEGER (versions).
    pub fn small_uint(&mut self, what: &'static str) -> Result<u32, DerError> {
        let el = self.expect(TAG_INTEGER, what)?;
        match el.content {
            [v] if *v < 0x80 => Ok(u32::from(*v)),
            _ => Err(DerError {
                what,
                offset: el.offset,
                kind: DerErrorKind::NotSmallUint,
            }),
        }
    }
}

fn describe(e: asn1_rs::Err<asn1_rs::Error>) -> DerErrorKind {
    match e {
        asn1_rs::Err::Incomplete(_) => DerErrorKind::Truncated,
        asn1_rs::Err::Error(e) | asn1_rs::Err::Failure(e) => DerErrorKind::Invalid(e),
    }
}

/// A tag as messages name it (`SEQUENCE`, `[0]`).
pub fn tag_name(class: Class, tag: u32) -> String {
    match (class, tag) {
        (Class::Universal, TAG_INTEGER) => "INTEGER".into(),
        (Class::Universal, TAG_BIT_STRING) => "BIT STRING".into(),
        (Class::Universal, TAG_OCTET_STRING) => "OCTET STRING".into(),
        (Class::Universal, TAG_NULL) => "NULL".into(),
        (Class::Universal, TAG_OID) => "OBJECT IDENTIFIER".into(),
        (Class::Universal, TAG_SEQUENCE) => "SEQUENCE".into(),
        (Class::Universal, TAG_SET) => "SET".into(),
        (Class::ContextSpecific, n) => format!("[{n}]"),
        (c, n) => format!("{c:?} tag {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_absolute() {
        // SEQUENCE { INTEGER 1, OCTET STRING "ab" }
        let bytes = [0x30, 0x07, 0x02, 0x01, 0x01, 0x04, 0x02, b'a', b'b'];
        let mut top = Reader::new(&bytes);
        let mut seq = top.sequence("outer").unwrap();
        top.finish("outer").unwrap();
        assert_eq!(seq.small_uint("v").unwrap(), 1);
        let os = seq.expect(TAG_OCTET_STRING, "os").unwrap();
        assert_eq!(os.offset, 5);
        assert_eq!(os.content_offset, 7);
        assert_eq!(os.content, b"ab");
        seq.finish("outer").unwrap();
    }

    #[test]
    fn trailing_and_truncated_are_errors() {
        let bytes = [0x02, 0x01, 0x01, 0x00];
        let mut r = Reader::new(&bytes);
        r.any("x").unwrap();
        assert_eq!(r.finish("x").unwrap_err().offset, 3);
        let trunc = [0x30, 0x05, 0x02, 0x01];
        let e = Reader::new(&trunc).any("seq").unwrap_err();
        assert_eq!(e.offset, 0);
    }

    #[test]
    fn depth_is_bounded() {
        let mut bytes = Vec::new();
        for _ in 0..40 {
            let mut n = vec![0x30, bytes.len() as u8];
            n.extend_from_slice(&bytes);
            bytes = n;
            if bytes.len() > 120 {
                break;
            }
        }
        let mut r = Reader::new(&bytes);
        let mut el = r.any("x").unwrap();
        let mut depth = 0;
        loop {
            match Reader::inside(&el, "x") {
                Ok(mut inner) => match inner.any("x") {
                    Ok(next) => {
                        el = next;
                        depth += 1;
                    }
                    Err(_) => break,
                },
                Err(e) => {
                    assert_eq!(e.kind, DerErrorKind::TooDeep);
                    assert!(e.to_string().contains("deep"));
                    break;
                }
            }
        }
        assert!(depth <= usize::from(MAX_DEPTH));
    }
}
