//! Reads the packed `metric-batch` the server sends (one `text` string,
//! records of spans into it) as borrowed [`Metric`] views: two allocations
//! per batch, none per string.
//!
//! The server always sends well-formed batches, but the SDK does not trust
//! that: a span outside `text` or off a UTF-8 character boundary, or a
//! dimension range outside `dimensions`, is a [`PluginError::Failed`],
//! never a panic.

use std::borrow::Cow;

use crate::export::bindings::validator::luminate::plugin::types::{
    PackedDimension, PackedMetric, Span,
};
use crate::{Dimension, Metric, PluginError};

fn span<'t>(text: &'t str, span: Span, what: &str) -> Result<&'t str, PluginError> {
    let start = span.offset as usize;
    start
        .checked_add(span.len as usize)
        .and_then(|end| text.get(start..end))
        .ok_or_else(|| {
            PluginError::Failed(format!(
                "malformed batch: {what} span {}+{} is outside the text ({} bytes) or splits a character",
                span.offset,
                span.len,
                text.len()
            ))
        })
}

/// Every dimension of the batch, in the batch's order.
pub(crate) fn dimensions<'t>(
    text: &'t str,
    dimensions: &[PackedDimension],
) -> Result<Vec<Dimension<'t>>, PluginError> {
    dimensions
        .iter()
        .map(|d| {
            Ok(Dimension {
                key: Cow::Borrowed(span(text, d.key, "dimension key")?),
                value: Cow::Borrowed(span(text, d.value, "dimension value")?),
            })
        })
        .collect()
}

/// The metrics, each borrowing its name from `text` and its dimensions
/// from `dimensions` (decoded by [`dimensions`]).
pub(crate) fn metrics<'t>(
    text: &'t str,
    metrics: &[PackedMetric],
    dimensions: &'t [Dimension<'t>],
) -> Result<Vec<Metric<'t>>, PluginError> {
    metrics
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let first = m.first_dimension as usize;
            let own = first
                .checked_add(m.dimension_count as usize)
                .and_then(|end| dimensions.get(first..end))
                .ok_or_else(|| {
                    PluginError::Failed(format!(
                        "malformed batch: metric {index} has dimensions {first}+{} of {}",
                        m.dimension_count,
                        dimensions.len()
                    ))
                })?;
            Ok(Metric {
                name: Cow::Borrowed(span(text, m.name, "metric name")?),
                value: m.value,
                timestamp_ms: m.timestamp_ms,
                dimensions: Cow::Borrowed(own),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(offset: u32, len: u32) -> Span {
        Span { offset, len }
    }

    fn packed(name: Span, first_dimension: u32, dimension_count: u32) -> PackedMetric {
        PackedMetric {
            name,
            value: 1.5,
            timestamp_ms: 7,
            first_dimension,
            dimension_count,
        }
    }

    #[test]
    fn decodes_names_and_dimension_ranges_without_copying() {
        let text = "cpuhosth1memzonez";
        let dims = dimensions(
            text,
            &[
                PackedDimension {
                    key: s(3, 4),
                    value: s(7, 2),
                },
                PackedDimension {
                    key: s(12, 4),
                    value: s(16, 1),
                },
            ],
        )
        .unwrap();
        let ms = metrics(text, &[packed(s(0, 3), 0, 1), packed(s(9, 3), 1, 1)], &dims).unwrap();
        assert_eq!(ms[0].name, "cpu");
        assert_eq!(ms[0].dimension("host"), Some("h1"));
        assert_eq!(ms[1].name, "mem");
        assert_eq!(ms[1].dimensions().collect::<Vec<_>>(), vec![("zone", "z")]);
        assert!(matches!(ms[0].name, Cow::Borrowed(_)));
        assert!(matches!(ms[1].dimensions, Cow::Borrowed(_)));
    }

    #[test]
    fn refuses_a_span_past_the_end_of_the_text() {
        let err = metrics("abc", &[packed(s(2, 2), 0, 0)], &[]).unwrap_err();
        assert!(matches!(err, PluginError::Failed(m) if m.contains("outside the text")));
    }

    #[test]
    fn refuses_a_span_whose_end_overflows() {
        assert!(metrics("abc", &[packed(s(u32::MAX, u32::MAX), 0, 0)], &[]).is_err());
    }

    #[test]
    fn refuses_a_span_that_splits_a_character() {
        // "é" is two bytes; a span ending between them is not a string.
        let err = dimensions(
            "é",
            &[PackedDimension {
                key: s(0, 1),
                value: s(0, 0),
            }],
        )
        .unwrap_err();
        assert!(matches!(err, PluginError::Failed(m) if m.contains("splits a character")));
    }

    #[test]
    fn refuses_a_dimension_range_outside_the_list() {
        let dims = [Dimension::new("k", "v")];
        assert!(metrics("m", &[packed(s(0, 1), 1, 1)], &dims).is_err());
        assert!(metrics("m", &[packed(s(0, 1), u32::MAX, 2)], &dims).is_err());
        assert!(metrics("m", &[packed(s(0, 1), 0, 1)], &dims).is_ok());
    }
}
