//! A write batch in the shape the plugin ABI lowers, without copying each
//! string into its own allocation.
//!
//! The generated bindings take `&[Metric]` of owned `String`s, which costs
//! several allocations per metric before the call even starts. Instead the
//! batch's text goes into one buffer, and records that borrow from it are
//! lowered through the same WIT types (`luminate:plugin/types.metric`):
//! a handful of allocations per batch.

use std::ops::Range;

use wasmtime::component::{ComponentType, Lower};

use crate::model::{Metric, RESERVED_PREFIX};

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct DimensionRef<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(ComponentType, Lower)]
#[component(record)]
pub struct MetricRef<'a> {
    name: &'a str,
    value: f64,
    #[component(name = "timestamp-ms")]
    timestamp_ms: i64,
    dimensions: &'a [DimensionRef<'a>],
}

struct WireMetric {
    name: Range<usize>,
    value: f64,
    timestamp_ms: i64,
    dimensions: Range<usize>,
}

/// Owned and `'static`, so it can move to the blocking pool.
pub struct WireBatch {
    text: String,
    metrics: Vec<WireMetric>,
    dimensions: Vec<(Range<usize>, Range<usize>)>,
}

impl WireBatch {
    /// Reserved (`_`) dimensions are left out: plugins never see the tenant.
    pub fn new(metrics: &[Metric]) -> Self {
        let text_len: usize = metrics
            .iter()
            .map(|m| {
                m.name.len()
                    + m.dimensions
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        let dims_len: usize = metrics.iter().map(|m| m.dimensions.len()).sum();
        let mut text = String::with_capacity(text_len);
        let mut push = |s: &str| {
            let start = text.len();
            text.push_str(s);
            start..text.len()
        };
        let mut dimensions = Vec::with_capacity(dims_len);
        let mut wire = Vec::with_capacity(metrics.len());
        for m in metrics {
            let name = push(&m.name);
            let first = dimensions.len();
            for (k, v) in m.dimensions.iter() {
                if !k.starts_with(RESERVED_PREFIX) {
                    dimensions.push((push(k), push(v)));
                }
            }
            wire.push(WireMetric {
                name,
                value: m.value,
                timestamp_ms: m.timestamp_ms,
                dimensions: first..dimensions.len(),
            });
        }
        Self {
            text,
            metrics: wire,
            dimensions,
        }
    }

    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// Calls `f` with the batch as lowerable records.
    pub fn with_refs<R>(&self, f: impl FnOnce(&[MetricRef<'_>]) -> R) -> R {
        let text = self.text.as_str();
        let dimensions: Vec<DimensionRef<'_>> = self
            .dimensions
            .iter()
            .map(|(k, v)| DimensionRef {
                key: &text[k.clone()],
                value: &text[v.clone()],
            })
            .collect();
        let metrics: Vec<MetricRef<'_>> = self
            .metrics
            .iter()
            .map(|m| MetricRef {
                name: &text[m.name.clone()],
                value: m.value,
                timestamp_ms: m.timestamp_ms,
                dimensions: &dimensions[m.dimensions.clone()],
            })
            .collect();
        f(&metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dimensions;

    #[test]
    fn keeps_every_string_and_hides_reserved_dimensions() {
        let metrics = vec![
            Metric {
                name: "a".into(),
                value: 1.5,
                timestamp_ms: 7,
                dimensions: Dimensions::from_pairs([
                    ("_tenant_id".to_owned(), "acme".to_owned()),
                    ("host".to_owned(), "h1".to_owned()),
                ]),
            },
            Metric {
                name: "bb".into(),
                value: 2.0,
                timestamp_ms: 8,
                dimensions: Dimensions::new(),
            },
        ];
        let wire = WireBatch::new(&metrics);
        assert_eq!(wire.len(), 2);
        wire.with_refs(|refs| {
            assert_eq!(refs[0].name, "a");
            assert_eq!(refs[0].dimensions.len(), 1);
            assert_eq!(
                (refs[0].dimensions[0].key, refs[0].dimensions[0].value),
                ("host", "h1")
            );
            assert_eq!(
                (refs[1].name, refs[1].value, refs[1].timestamp_ms),
                ("bb", 2.0, 8)
            );
            assert!(refs[1].dimensions.is_empty());
        });
    }
}
