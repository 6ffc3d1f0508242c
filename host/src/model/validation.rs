//! The always-on rules a metric must pass before anything else sees it.

use serde::Deserialize;

use super::{Metric, RESERVED_PREFIX};

/// Configurable limits; defaults are the documented ones.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationLimits {
    pub max_name_bytes: usize,
    pub max_dimensions: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// How far in the past a timestamp may be, in ms.
    pub max_past_ms: i64,
    /// How far in the future a timestamp may be, in ms.
    pub max_future_ms: i64,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_name_bytes: 200,
            max_dimensions: 20,
            max_key_bytes: 100,
            max_value_bytes: 1024,
            max_past_ms: 7 * 24 * 3_600_000,
            max_future_ms: 3_600_000,
        }
    }
}

/// Why one metric was refused. `code()` is the stable machine-readable code.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ValidationError {
    #[error("metric name {0:?} must match ^[a-zA-Z_][a-zA-Z0-9_.:]*$")]
    InvalidName(String),
    #[error("metric name is {len} bytes; the limit is {max}")]
    NameTooLong { len: usize, max: usize },
    #[error("value must be a finite number")]
    NonFiniteValue,
    #[error("{count} dimensions; the limit is {max}")]
    TooManyDimensions { count: usize, max: usize },
    #[error("dimension key {0:?} must match ^[a-zA-Z_][a-zA-Z0-9_.]*$")]
    InvalidDimensionKey(String),
    #[error("dimension key {key:?} is {len} bytes; the limit is {max}")]
    DimensionKeyTooLong { key: String, len: usize, max: usize },
    #[error("dimension key {0:?} starts with '_', which is reserved for the server")]
    ReservedDimensionKey(String),
    #[error("dimension {0:?} has an empty value")]
    EmptyDimensionValue(String),
    #[error("dimension {key:?} value is {len} bytes; the limit is {max}")]
    DimensionValueTooLong { key: String, len: usize, max: usize },
    #[error("timestamp {ts} is outside the accepted window [{min}, {max}] (ms since epoch)")]
    TimestampOutOfRange { ts: i64, min: i64, max: i64 },
}

impl ValidationError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidName(_) => "invalid_name",
            Self::NameTooLong { .. } => "name_too_long",
            Self::NonFiniteValue => "invalid_value",
            Self::TooManyDimensions { .. } => "too_many_dimensions",
            Self::InvalidDimensionKey(_) => "invalid_dimension_key",
            Self::DimensionKeyTooLong { .. } => "dimension_key_too_long",
            Self::ReservedDimensionKey(_) => "reserved_dimension_key",
            Self::EmptyDimensionValue(_) => "empty_dimension_value",
            Self::DimensionValueTooLong { .. } => "dimension_value_too_long",
            Self::TimestampOutOfRange { .. } => "timestamp_out_of_range",
        }
    }
}

/// Checks metrics against the limits. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Validator {
    limits: ValidationLimits,
}

fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':'))
}

pub(crate) fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
}

impl Validator {
    pub fn new(limits: ValidationLimits) -> Self {
        Self { limits }
    }

    pub fn limits(&self) -> &ValidationLimits {
        &self.limits
    }

    /// Validates a metric as a client sent it: reserved keys are refused.
    pub fn validate(&self, metric: &Metric, now_ms: i64) -> Result<(), ValidationError> {
        let l = &self.limits;
        if metric.name.len() > l.max_name_bytes {
            return Err(ValidationError::NameTooLong {
                len: metric.name.len(),
                max: l.max_name_bytes,
            });
        }
        if !is_valid_name(&metric.name) {
            return Err(ValidationError::InvalidName(truncated(&metric.name)));
        }
        if !metric.value.is_finite() {
            return Err(ValidationError::NonFiniteValue);
        }
        let (min, max) = (
            now_ms.saturating_sub(l.max_past_ms),
            now_ms.saturating_add(l.max_future_ms),
        );
        if metric.timestamp_ms < min || metric.timestamp_ms > max {
            return Err(ValidationError::TimestampOutOfRange {
                ts: metric.timestamp_ms,
                min,
                max,
            });
        }
        if metric.dimensions.len() > l.max_dimensions {
            return Err(ValidationError::TooManyDimensions {
                count: metric.dimensions.len(),
                max: l.max_dimensions,
            });
        }
        for (key, value) in metric.dimensions.iter() {
            self.validate_dimension(key, value)?;
            if key.starts_with(RESERVED_PREFIX) {
                return Err(ValidationError::ReservedDimensionKey(truncated(key)));
            }
        }
        Ok(())
    }

    /// Validates one dimension's shape (not reservation): used for client
    /// input and for what enrichment plugins add.
    pub fn validate_dimension(&self, key: &str, value: &str) -> Result<(), ValidationError> {
        let l = &self.limits;
        if key.len() > l.max_key_bytes {
            return Err(ValidationError::DimensionKeyTooLong {
                key: truncated(key),
                len: key.len(),
                max: l.max_key_bytes,
            });
        }
        if !is_valid_key(key) {
            return Err(ValidationError::InvalidDimensionKey(truncated(key)));
        }
        if value.is_empty() {
            return Err(ValidationError::EmptyDimensionValue(truncated(key)));
        }
        if value.len() > l.max_value_bytes {
            return Err(ValidationError::DimensionValueTooLong {
                key: truncated(key),
                len: value.len(),
                max: l.max_value_bytes,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dimensions;

    const NOW: i64 = 1_800_000_000_000;

    fn metric(name: &str, dims: &[(&str, &str)]) -> Metric {
        Metric {
            name: name.into(),
            value: 1.0,
            timestamp_ms: NOW,
            dimensions: Dimensions::from_pairs(
                dims.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            ),
        }
    }

    fn code(m: &Metric) -> Option<&'static str> {
        Validator::default()
            .validate(m, NOW)
            .err()
            .map(|e| e.code())
    }

    #[test]
    fn accepts_a_typical_metric() {
        assert_eq!(
            code(&metric("api.latency:p_1", &[("endpoint", "/a")])),
            None
        );
    }

    #[test]
    fn each_rule_has_its_own_code() {
        assert_eq!(code(&metric("1abc", &[])), Some("invalid_name"));
        assert_eq!(code(&metric("a-b", &[])), Some("invalid_name"));
        assert_eq!(code(&metric("", &[])), Some("invalid_name"));
        assert_eq!(code(&metric(&"a".repeat(201), &[])), Some("name_too_long"));
        let mut nan = metric("a", &[]);
        nan.value = f64::NAN;
        assert_eq!(code(&nan), Some("invalid_value"));
        let many: Vec<(String, String)> = (0..21).map(|i| (format!("k{i}"), "v".into())).collect();
        let mut m = metric("a", &[]);
        m.dimensions = Dimensions::from_pairs(many);
        assert_eq!(code(&m), Some("too_many_dimensions"));
        assert_eq!(
            code(&metric("a", &[("9k", "v")])),
            Some("invalid_dimension_key")
        );
        assert_eq!(
            code(&metric("a", &[("k:x", "v")])),
            Some("invalid_dimension_key")
        );
        assert_eq!(
            code(&metric("a", &[(&"k".repeat(101), "v")])),
            Some("dimension_key_too_long")
        );
        assert_eq!(
            code(&metric("a", &[("_tenant_id", "b")])),
            Some("reserved_dimension_key")
        );
        assert_eq!(
            code(&metric("a", &[("k", "")])),
            Some("empty_dimension_value")
        );
        let long = "v".repeat(1025);
        assert_eq!(
            code(&metric("a", &[("k", &long)])),
            Some("dimension_value_too_long")
        );
        let mut old = metric("a", &[]);
        old.timestamp_ms = NOW - 8 * 86_400_000;
        assert_eq!(code(&old), Some("timestamp_out_of_range"));
        let mut future = metric("a", &[]);
        future.timestamp_ms = NOW + 2 * 3_600_000;
        assert_eq!(code(&future), Some("timestamp_out_of_range"));
    }

    #[test]
    fn limits_are_configurable() {
        let v = Validator::new(ValidationLimits {
            max_dimensions: 1,
            ..Default::default()
        });
        let m = metric("a", &[("a", "1"), ("b", "2")]);
        assert_eq!(
            v.validate(&m, NOW).unwrap_err().code(),
            "too_many_dimensions"
        );
    }
}
