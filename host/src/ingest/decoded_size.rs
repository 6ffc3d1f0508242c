//! What a body will take in memory once decoded, read off its bytes before
//! anything is decoded.
//!
//! The body's size limit (`api.max_body_bytes`) does not bound what
//! decoding it allocates. An empty protobuf message is two bytes on the
//! wire and a whole struct in memory (a remote-write `TimeSeries` is 96
//! bytes); a packed varint is one byte on the wire and eight in memory;
//! an empty JSON object is three bytes of text and, through serde's
//! buffering of flattened fields, a few hundred bytes. A 16 MiB body of
//! such elements would decode into more than a gigabyte. So each protocol
//! describes which fields of its messages allocate (a [`Shape`]), and
//! [`protobuf`] walks the wire format adding up what decoding would
//! allocate; [`json`] counts a JSON body's values. Both stop and refuse
//! as soon as the sum passes the budget, so refusing costs a scan of the
//! body, no allocation.
//!
//! The estimate counts each decoded struct and each owned string once;
//! growing a `Vec` can briefly hold up to three times its elements, which
//! the budget allows for (the tests measure decoding's real peak against
//! the estimate).

use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};

/// The fields of one message type that allocate when decoded, by field
/// number. Fields not listed (scalars, `bytes` decoded as slices of the
/// body, unknown fields) allocate nothing.
pub struct Shape {
    /// The decoded struct's size, charged per occurrence of the message.
    pub size: usize,
    pub fields: &'static [(u32, Field)],
}

/// How one field is held once decoded.
pub enum Field {
    /// A nested message: an element of a `Vec`, or an `Option`.
    Message(&'static Shape),
    /// A `string` or owned `bytes`: its own heap allocation. `element`
    /// is the `String`'s size when the field is repeated (it is then a
    /// `Vec` element), 0 when the struct holds it inline.
    Text { element: usize },
    /// A repeated scalar (packed or not), `element` bytes each in memory.
    Scalars { element: usize, wire: ScalarWire },
}

/// How a packed repeated scalar's elements are laid out on the wire.
#[derive(Clone, Copy)]
pub enum ScalarWire {
    Varint,
    Fixed64,
}

/// Why a body's decoded size was refused or could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodedSizeError {
    #[error(
        "the body would take more than {max} bytes of memory once decoded ({per} × api.max_body_bytes); send fewer or smaller items per request",
        per = BUDGET_PER_BODY_BYTE
    )]
    OverBudget { max: usize },
    #[error("{0}")]
    Malformed(String),
}

/// The memory a decoded body may take, per byte of `api.max_body_bytes`.
/// The largest valid request (`api.max_metrics_per_request` items of
/// `validation.max_dimensions` dimensions) takes less than a default
/// body's worth.
pub const BUDGET_PER_BODY_BYTE: usize = 2;

/// The decoded-memory budget of a body, from `api.max_body_bytes`.
pub fn budget(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_mul(BUDGET_PER_BODY_BYTE)
}

/// Recursion limit for nested messages: prost's own, so any body it would
/// decode can be measured.
const MAX_DEPTH: u32 = 100;

/// What allocating `len` bytes on the heap costs, allocator overhead and
/// rounding included.
fn heap(len: usize) -> usize {
    if len == 0 { 0 } else { len + 16 }
}

/// The memory a protobuf message of `shape` takes once decoded by prost,
/// or `OverBudget` as soon as it passes `budget` bytes.
pub fn protobuf(body: &[u8], shape: &Shape, budget: usize) -> Result<usize, DecodedSizeError> {
    let mut total = Total { bytes: 0, budget };
    total.add(shape.size)?;
    walk(body, shape, MAX_DEPTH, &mut total)?;
    Ok(total.bytes)
}

struct Total {
    bytes: usize,
    budget: usize,
}

impl Total {
    fn add(&mut self, bytes: usize) -> Result<(), DecodedSizeError> {
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.budget {
            Err(DecodedSizeError::OverBudget { max: self.budget })
        } else {
            Ok(())
        }
    }
}

fn malformed(what: impl std::fmt::Display) -> DecodedSizeError {
    DecodedSizeError::Malformed(what.to_string())
}

fn walk(
    mut buf: &[u8],
    shape: &Shape,
    depth: u32,
    total: &mut Total,
) -> Result<(), DecodedSizeError> {
    while buf.has_remaining() {
        let (tag, wire) = decode_key(&mut buf).map_err(malformed)?;
        let field = shape
            .fields
            .iter()
            .find(|(number, _)| *number == tag)
            .map(|(_, field)| field);
        match wire {
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).map_err(malformed)?)
                    .map_err(malformed)?;
                if len > buf.len() {
                    return Err(malformed(format!("field {tag} is truncated")));
                }
                let (inner, rest) = buf.split_at(len);
                buf = rest;
                match field {
                    Some(Field::Message(child)) => {
                        total.add(child.size)?;
                        let depth = depth
                            .checked_sub(1)
                            .ok_or_else(|| malformed("messages are nested too deeply"))?;
                        walk(inner, child, depth, total)?;
                    }
                    Some(Field::Text { element }) => total.add(element + heap(len))?,
                    Some(Field::Scalars {
                        element,
                        wire: layout,
                    }) => {
                        let count = match layout {
                            ScalarWire::Varint => inner.iter().filter(|b| *b & 0x80 == 0).count(),
                            ScalarWire::Fixed64 => len / 8,
                        };
                        total.add(count.saturating_mul(*element))?;
                    }
                    None => {}
                }
            }
            WireType::Varint => {
                decode_varint(&mut buf).map_err(malformed)?;
                charge_unpacked(field, total)?;
            }
            WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                let width = if wire == WireType::SixtyFourBit { 8 } else { 4 };
                if buf.len() < width {
                    return Err(malformed(format!("field {tag} is truncated")));
                }
                buf.advance(width);
                charge_unpacked(field, total)?;
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(malformed(format!(
                    "field {tag} is a group, which these messages never hold"
                )));
            }
        }
    }
    Ok(())
}

/// One element of a repeated scalar sent unpacked.
fn charge_unpacked(field: Option<&Field>, total: &mut Total) -> Result<(), DecodedSizeError> {
    match field {
        Some(Field::Scalars { element, .. }) => total.add(*element),
        _ => Ok(()),
    }
}

/// What one JSON value (object, array, string, number, literal) costs
/// once deserialized into prost's types through serde, strings' contents
/// aside: serde buffers flattened fields (OTLP's `oneof`s) as generic
/// content before building the struct. Measured in the tests.
pub const JSON_VALUE_BYTES: usize = 160;

/// The memory a JSON body takes once deserialized, estimated from its
/// values ([`JSON_VALUE_BYTES`] each) and its strings' lengths, or
/// `OverBudget` as soon as it passes `budget` bytes. Malformed JSON is
/// left to the parser, which says where it is wrong.
pub fn json(body: &[u8], budget: usize) -> Result<usize, DecodedSizeError> {
    let mut total = Total { bytes: 0, budget };
    let mut bytes = body.iter().copied().enumerate().peekable();
    while let Some((start, byte)) = bytes.next() {
        match byte {
            b'"' => {
                let mut end = start;
                let mut escaped = false;
                for (i, b) in bytes.by_ref() {
                    end = i;
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => break,
                        _ => {}
                    }
                }
                total.add(JSON_VALUE_BYTES + heap(end - start))?;
            }
            b'{' | b'[' | b't' | b'f' | b'n' => total.add(JSON_VALUE_BYTES)?,
            b'-' | b'0'..=b'9' => {
                total.add(JSON_VALUE_BYTES)?;
                // The rest of the number is not another value.
                while matches!(
                    bytes.peek(),
                    Some((_, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
                ) {
                    bytes.next();
                }
            }
            _ => {}
        }
    }
    Ok(total.bytes)
}

#[cfg(test)]
mod tests;
