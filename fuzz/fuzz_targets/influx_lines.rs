//! `POST /api/v2/write` and `/write` bodies (Influx line protocol). The
//! first byte chooses the precision.
//!
//! Beyond "never panics": every item keeps the decoders' promises
//! (`support/decoded.rs`), and every item's line number lies within the
//! body's lines. And every line the plain-line reader accepts reads
//! exactly as `influxdb-line-protocol` reads it (the reader is a fast path
//! in front of the crate).

#![no_main]

use influxdb_line_protocol::{FieldValue, parse_lines};
use libfuzzer_sys::fuzz_target;
use luminate_host::ingest::influx::plain::{self, PlainLine, PlainValue};
use luminate_host::ingest::influx::{InfluxError, InfluxLimits, Precision, decode_lines};

#[path = "../support/decoded.rs"]
mod decoded;

const LIMITS: InfluxLimits = InfluxLimits {
    max_points: decoded::MAX_ITEMS,
    max_dimensions: decoded::MAX_DIMENSIONS,
};
const PRECISIONS: [&str; 6] = ["ns", "us", "ms", "s", "m", "h"];

/// The plain reader and the crate agree on every line the reader takes.
fn check_plain_lines(body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    for line in text.split('\n') {
        let mut out = PlainLine::default();
        if plain::parse(line, &mut out).is_none() {
            continue;
        }
        let parsed = parse_lines(line)
            .next()
            .unwrap_or_else(|| panic!("the crate skips {line:?}"))
            .unwrap_or_else(|e| panic!("the crate refuses {line:?}: {e}"));
        assert_eq!(
            parsed.series.measurement.as_str(),
            out.measurement,
            "{line:?}"
        );
        let tags: Vec<(&str, &str)> = parsed
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(tags, out.tags, "{line:?}");
        assert_eq!(parsed.field_set.len(), out.fields.len(), "{line:?}");
        for ((key, value), (plain_key, plain_value)) in parsed.field_set.iter().zip(&out.fields) {
            assert_eq!(key.as_str(), *plain_key, "{line:?}");
            let same = match (value, plain_value) {
                (FieldValue::F64(a), PlainValue::F64(b)) => a.to_bits() == b.to_bits(),
                (FieldValue::I64(a), PlainValue::I64(b)) => a == b,
                (FieldValue::U64(a), PlainValue::U64(b)) => a == b,
                (FieldValue::Boolean(a), PlainValue::Bool(b)) => a == b,
                _ => false,
            };
            assert!(same, "{line:?}: {value:?} vs {plain_value:?}");
        }
        assert_eq!(parsed.timestamp, out.timestamp, "{line:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    check_plain_lines(body);
    let precision = Precision::parse(PRECISIONS[usize::from(mode) % PRECISIONS.len()])
        .expect("a documented precision");
    match decode_lines(body, precision, decoded::NOW_MS, LIMITS) {
        Ok(items) => {
            decoded::check(&items);
            let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
            for &line in &items.origins {
                assert!(
                    line >= 1 && line as usize <= lines,
                    "line {line} of a body of {lines} lines"
                );
            }
        }
        Err(InfluxError::TooManyPoints { .. }) => {}
    }
});
