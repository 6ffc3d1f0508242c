//! `POST /api/v1/push` bodies (Prometheus remote write 1.0): the snappy
//! block and the protobuf `WriteRequest` inside it.
//!
//! The first byte chooses the input: odd, the rest is the body as sent
//! (snappy framing fuzzed too); even, the rest is the protobuf, which the
//! target compresses, so the fuzzer works on the protobuf itself.
//! Beyond "never panics": a body over the size cap is refused before it
//! is decompressed, and every item keeps the decoders' promises
//! (`support/decoded.rs`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::ingest::remote_write::{
    RemoteWriteError, RemoteWriteLimits, decode_remote_write,
};

#[path = "../support/decoded.rs"]
mod decoded;

const LIMITS: RemoteWriteLimits = RemoteWriteLimits {
    max_samples: decoded::MAX_ITEMS,
    max_dimensions: decoded::MAX_DIMENSIONS,
    max_decoded_bytes: 32 * 1024,
    max_decoded_memory: decoded::MAX_DECODED_MEMORY,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode % 2 == 1 {
        rest.to_vec()
    } else {
        match snap::raw::Encoder::new().compress_vec(rest) {
            Ok(body) => body,
            Err(_) => return,
        }
    };
    match decode_remote_write(&body, LIMITS) {
        Ok(items) => decoded::check(&items),
        Err(RemoteWriteError::TooLarge { len, max }) => assert!(len > max),
        Err(
            RemoteWriteError::Snappy(_)
            | RemoteWriteError::Protobuf(_)
            | RemoteWriteError::TooManySamples { .. }
            | RemoteWriteError::DecodedTooLarge(_),
        ) => {}
    }
});
