//! `POST /api/v2/write` and `/write` bodies (Influx line protocol). The
//! first byte chooses the precision.
//!
//! Beyond "never panics": every item keeps the decoders' promises
//! (`support/decoded.rs`), and every item's line number lies within the
//! body's lines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::ingest::influx::{InfluxError, InfluxLimits, Precision, decode_lines};

#[path = "../support/decoded.rs"]
mod decoded;

const LIMITS: InfluxLimits = InfluxLimits {
    max_points: decoded::MAX_ITEMS,
    max_dimensions: decoded::MAX_DIMENSIONS,
};
const PRECISIONS: [&str; 6] = ["ns", "us", "ms", "s", "m", "h"];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
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
