//! Shared by the agent-protocol targets (remote write, OTLP, Influx).

use luminate_host::ingest::Decoded;
use luminate_host::model::{ValidationError, ValidationLimits, Validator};

pub const NOW_MS: i64 = 1_767_225_600_000;
pub const MAX_ITEMS: usize = 256;
pub const MAX_DIMENSIONS: usize = 8;
/// Small enough that the fuzzer reaches it with its own inputs. The
/// protobuf and JSON targets use it; line protocol has no such budget.
#[allow(dead_code)]
pub const MAX_DECODED_MEMORY: usize = 256 * 1024;

/// What every protocol decoder promises of its items, beyond not
/// panicking: one origin per item, the item cap kept, dimensions within
/// their cap, sorted and unique, and names that the name mapping
/// (docs/api.md, "Names from other systems") made acceptable: validation
/// may refuse an item's value, timestamp or sizes, but never its name or
/// a dimension key (other than an empty one), and never as reserved.
pub fn check(decoded: &Decoded) {
    assert_eq!(decoded.items.len(), decoded.origins.len());
    assert!(decoded.len() <= MAX_ITEMS, "{} items", decoded.len());
    let validator = Validator::new(ValidationLimits {
        max_dimensions: MAX_DIMENSIONS,
        ..ValidationLimits::default()
    });
    for item in &decoded.items {
        let metric = match item {
            Ok(metric) => metric,
            Err((code, message)) => {
                assert!(!code.is_empty() && !message.is_empty());
                continue;
            }
        };
        assert!(metric.dimensions.len() <= MAX_DIMENSIONS);
        let keys: Vec<&str> = metric.dimensions.iter().map(|(k, _)| k).collect();
        assert!(
            keys.windows(2).all(|pair| pair[0] < pair[1]),
            "dimensions not sorted and unique: {keys:?}"
        );
        match validator.validate(metric, NOW_MS) {
            Err(ValidationError::InvalidName(name)) => {
                assert!(name.is_empty(), "the mapping left an invalid name {name:?}")
            }
            Err(ValidationError::InvalidDimensionKey(key)) => {
                assert!(key.is_empty(), "the mapping left an invalid key {key:?}")
            }
            Err(ValidationError::ReservedDimensionKey(key)) => {
                panic!("a protocol decoder let through the reserved key {key:?}")
            }
            Ok(()) => assert!(metric.value.is_finite()),
            Err(_) => {}
        }
    }
}
