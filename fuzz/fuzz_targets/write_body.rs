//! `POST /api/v1/write` bodies: the one-pass decoder, then the always-on
//! validation, on arbitrary bytes.
//!
//! Beyond "never panics": the decoder accepts only JSON that `serde_json`
//! itself accepts, keeps within its limits, yields canonical dimensions,
//! and nothing that carries a reserved (`_`) dimension passes validation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_host::http::write_body::{WriteBodyError, WriteBodyLimits, decode_write_body};
use luminate_host::model::{RESERVED_PREFIX, ValidationLimits, Validator};

const NOW_MS: i64 = 1_767_225_600_000;
const LIMITS: WriteBodyLimits = WriteBodyLimits {
    max_metrics: 64,
    max_dimensions: 8,
};

fuzz_target!(|data: &[u8]| {
    let items = match decode_write_body(data, NOW_MS, LIMITS) {
        Ok(items) => items,
        Err(WriteBodyError::Json(_) | WriteBodyError::TooManyMetrics { .. }) => return,
    };
    assert!(
        serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
        "the decoder accepted a body that is not JSON"
    );
    assert!(items.len() <= LIMITS.max_metrics);
    let validator = Validator::new(ValidationLimits {
        max_dimensions: LIMITS.max_dimensions,
        ..ValidationLimits::default()
    });
    for item in items {
        let metric = match item {
            Ok(metric) => metric,
            Err((code, message)) => {
                assert!(!code.is_empty() && !message.is_empty());
                continue;
            }
        };
        assert!(metric.dimensions.len() <= LIMITS.max_dimensions);
        let keys: Vec<&str> = metric.dimensions.iter().map(|(k, _)| k).collect();
        assert!(
            keys.windows(2).all(|pair| pair[0] < pair[1]),
            "dimensions not sorted and unique: {keys:?}"
        );
        if validator.validate(&metric, NOW_MS).is_ok() {
            assert!(metric.value.is_finite());
            assert!(!keys.iter().any(|k| k.starts_with(RESERVED_PREFIX)));
        }
    }
});
