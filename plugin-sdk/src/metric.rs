use std::borrow::Cow;

/// One dimension (`key=value`) of a metric.
///
/// The strings are borrowed from the batch the server sent when the SDK
/// hands a metric to a plugin (no copy per string), and usually owned when
/// a plugin builds one, e.g. as an enricher's output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension<'a> {
    pub key: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

impl<'a> Dimension<'a> {
    pub fn new(key: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
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

    /// The same dimension, owning its strings.
    pub fn into_owned(self) -> Dimension<'static> {
        Dimension {
            key: Cow::Owned(self.key.into_owned()),
            value: Cow::Owned(self.value.into_owned()),
        }
    }
}

pub(crate) fn is_reserved_key(key: &str) -> bool {
    key.starts_with('_')
}

/// A metric as the server validated it. Reserved (`_`) dimensions, and so
/// the tenant, are not shown to plugins.
///
/// Inside a plugin every field borrows from the batch the server sent, so
/// reading a batch allocates nothing per string; read it through `Deref`
/// (`m.name.starts_with(..)`, `m.dimensions.len()`) or [`dimension`](Self::dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    pub name: Cow<'a, str>,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Sorted by key, one entry per key, as the server stores them.
    pub dimensions: Cow<'a, [Dimension<'a>]>,
}

impl<'a> Metric<'a> {
    /// A metric with no dimensions at timestamp 0; add the rest with
    /// [`with_dimension`](Self::with_dimension) and [`at`](Self::at).
    /// Mostly for tests: the server builds the metrics a plugin sees.
    pub fn new(name: impl Into<Cow<'a, str>>, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
            timestamp_ms: 0,
            dimensions: Cow::Borrowed(&[]),
        }
    }

    /// Sets a dimension, replacing any value the key had, keeping the
    /// dimensions sorted by key like the server does.
    pub fn with_dimension(
        mut self,
        key: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, str>>,
    ) -> Self {
        let dimension = Dimension::new(key, value);
        let dimensions = self.dimensions.to_mut();
        match dimensions.binary_search_by(|d| d.key.as_ref().cmp(dimension.key.as_ref())) {
            Ok(i) => dimensions[i] = dimension,
            Err(i) => dimensions.insert(i, dimension),
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
            .map(|d| d.value.as_ref())
    }

    /// All dimensions as `(key, value)`, sorted by key.
    pub fn dimensions(&self) -> impl Iterator<Item = (&str, &str)> {
        self.dimensions
            .iter()
            .map(|d| (d.key.as_ref(), d.value.as_ref()))
    }

    /// The same metric, owning its strings (to keep it past the call).
    pub fn into_owned(self) -> Metric<'static> {
        Metric {
            name: Cow::Owned(self.name.into_owned()),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            dimensions: Cow::Owned(
                self.dimensions
                    .iter()
                    .cloned()
                    .map(Dimension::into_owned)
                    .collect(),
            ),
        }
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
