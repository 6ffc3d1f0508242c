use super::Dimensions;

/// One measurement. Validated before it reaches a plugin or a store.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub dimensions: Dimensions,
}
