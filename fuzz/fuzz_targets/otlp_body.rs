//! `POST /v1/metrics` bodies (OTLP/HTTP): an `ExportMetricsServiceRequest`
//! as protobuf (first byte even) or OTLP/JSON (first byte odd), then the
//! translation of gauges, sums, histograms and summaries into items.
//!
//! Beyond "never panics": every item keeps the decoders' promises
//! (`support/decoded.rs`): the item cap holds even for histograms, which
//! make several items per point.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::ingest::otlp::{OtlpEncoding, OtlpError, OtlpLimits, decode_otlp};

#[path = "../support/decoded.rs"]
mod decoded;

const LIMITS: OtlpLimits = OtlpLimits {
    max_points: decoded::MAX_ITEMS,
    max_dimensions: decoded::MAX_DIMENSIONS,
    max_decoded_memory: decoded::MAX_DECODED_MEMORY,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let encoding = if mode % 2 == 1 {
        OtlpEncoding::Json
    } else {
        OtlpEncoding::Protobuf
    };
    match decode_otlp(body, encoding, LIMITS) {
        Ok(items) => decoded::check(&items),
        Err(OtlpError::TooManyPoints { count, max }) => assert!(count > max),
        Err(OtlpError::Protobuf(_) | OtlpError::Json(_) | OtlpError::DecodedTooLarge(_)) => {}
    }
});
