//! A write batch laid out as the ABI's `metric-batch`: every name, key and
//! value of the batch in one `text`, metrics and dimensions as records of
//! `(offset, len)` spans into it. Lowering it into a plugin costs one copy
//! per list (three in all) instead of one guest allocation per string.
//!
//! Built once per request batch and shared (`Arc`) by the calls of a chain
//! for as long as the batch's metrics stay as they are (see
//! `stage::PluginWriteStage`).

use crate::model::{Metric, RESERVED_PREFIX};

use super::wit::{MetricBatch, PackedDimension, PackedMetric, Span};

/// Owned and `'static`, so it can move to the blocking pool.
pub struct WireBatch {
    batch: MetricBatch,
}

/// Offsets are `u32` in the ABI. A batch's text is bounded far below 4 GiB
/// by the request size limits; if one ever were not, the spans saturate and
/// the SDK reports a malformed batch (a plugin error, under the binding's
/// failure policy) instead of the host panicking.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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
        let mut span = |s: &str| {
            let offset = to_u32(text.len());
            text.push_str(s);
            Span {
                offset,
                len: to_u32(s.len()),
            }
        };
        let mut dimensions = Vec::with_capacity(dims_len);
        let mut packed = Vec::with_capacity(metrics.len());
        for m in metrics {
            let name = span(&m.name);
            let first = dimensions.len();
            for (k, v) in m.dimensions.iter() {
                if !k.starts_with(RESERVED_PREFIX) {
                    dimensions.push(PackedDimension {
                        key: span(k),
                        value: span(v),
                    });
                }
            }
            packed.push(PackedMetric {
                name,
                value: m.value,
                timestamp_ms: m.timestamp_ms,
                first_dimension: to_u32(first),
                dimension_count: to_u32(dimensions.len() - first),
            });
        }
        Self {
            batch: MetricBatch {
                text,
                metrics: packed,
                dimensions,
            },
        }
    }

    pub fn len(&self) -> usize {
        self.batch.metrics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.metrics.is_empty()
    }

    /// The batch as the plugin call lowers it.
    pub fn as_wit(&self) -> &MetricBatch {
        &self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dimensions;

    fn text(batch: &MetricBatch, span: Span) -> &str {
        &batch.text[span.offset as usize..(span.offset + span.len) as usize]
    }

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
                    ("zone".to_owned(), "é".to_owned()),
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
        let batch = wire.as_wit();
        assert!(
            !batch.text.contains("acme") && !batch.text.contains("_tenant_id"),
            "{:?}",
            batch.text
        );
        let [a, bb] = &batch.metrics[..] else {
            panic!("two metrics")
        };
        assert_eq!(text(batch, a.name), "a");
        assert_eq!((a.value, a.timestamp_ms), (1.5, 7));
        let dims: Vec<(&str, &str)> = batch.dimensions
            [a.first_dimension as usize..(a.first_dimension + a.dimension_count) as usize]
            .iter()
            .map(|d| (text(batch, d.key), text(batch, d.value)))
            .collect();
        assert_eq!(dims, vec![("host", "h1"), ("zone", "é")]);
        assert_eq!(text(batch, bb.name), "bb");
        assert_eq!((bb.value, bb.timestamp_ms), (2.0, 8));
        assert_eq!((bb.first_dimension, bb.dimension_count), (2, 0));
    }
}
