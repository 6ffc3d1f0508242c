/// One dimension (`key=value`) of a metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension {
    pub key: String,
    pub value: String,
}

impl Dimension {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Keys starting with `_` (such as `_tenant_id`) belong to the server:
    /// plugins never see them and cannot set them.
    pub fn is_reserved(&self) -> bool {
        is_reserved_key(&self.key)
    }
}

pub(crate) fn is_reserved_key(key: &str) -> bool {
    key.starts_with('_')
}

/// A metric as the server validated it. Reserved (`_`) dimensions, and so
/// the tenant, are not shown to plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Sorted by key, one entry per key, as the server stores them.
    pub dimensions: Vec<Dimension>,
}

impl Metric {
    /// A metric with no dimensions at timestamp 0; add the rest with
    /// [`with_dimension`](Self::with_dimension) and [`at`](Self::at).
    /// Mostly for tests: the server builds the metrics a plugin sees.
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
            timestamp_ms: 0,
            dimensions: Vec::new(),
        }
    }

    /// Sets a dimension, replacing any value the key had, keeping the
    /// dimensions sorted by key like the server does.
    pub fn with_dimension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let dimension = Dimension::new(key, value);
        match self
            .dimensions
            .binary_search_by(|d| d.key.as_str().cmp(&dimension.key))
        {
            Ok(i) => self.dimensions[i] = dimension,
            Err(i) => self.dimensions.insert(i, dimension),
        }
        self
    }

    pub fn at(mut self, timestamp_ms: i64) -> Self {
        self.timestamp_ms = timestamp_ms;
        self
    }

    /// The value of dimension `key`, if the metric has it.
    pub fn dimension(&self, key: &str) -> Option<&str> {
        // Metrics carry a handful of dimensions: a scan beats a search.
        self.dimensions
            .iter()
            .find(|d| d.key == key)
            .map(|d| d.value.as_str())
    }

    /// All dimensions as `(key, value)`, sorted by key.
    pub fn dimensions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.dimensions
            .iter()
            .map(|d| (d.key.as_str(), d.value.as_str()))
    }
}

/// One point streamed to an aggregator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub value: f64,
}

impl Sample {
    pub fn new(timestamp_ms: i64, value: f64) -> Self {
        Self {
            timestamp_ms,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_dimension_keeps_keys_sorted_and_unique() {
        let m = Metric::new("m", 1.0)
            .with_dimension("zone", "a")
            .with_dimension("host", "h1")
            .with_dimension("zone", "b");
        let dims: Vec<_> = m.dimensions().collect();
        assert_eq!(dims, vec![("host", "h1"), ("zone", "b")]);
    }

    #[test]
    fn dimension_returns_none_for_a_missing_key() {
        let m = Metric::new("m", 1.0).with_dimension("host", "h1");
        assert_eq!(m.dimension("host"), Some("h1"));
        assert_eq!(m.dimension("zone"), None);
    }

    #[test]
    fn underscore_keys_are_reserved() {
        assert!(Dimension::new("_tenant_id", "t").is_reserved());
        assert!(!Dimension::new("team", "t").is_reserved());
    }
}
