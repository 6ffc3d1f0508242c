//! Reads the columnar `metric-batch` the server sends (one `text` string,
//! lists of numbers pointing into it) as borrowed [`Metric`] views: two
//! allocations per batch, none per string.
//!
//! The server always sends well-formed batches, but the SDK does not trust
//! that: a string outside `text` or off a UTF-8 character boundary, columns
//! of different lengths, or a dimension range outside `dimensions`, is a
//! [`PluginError::Failed`], never a panic.

use std::borrow::Cow;

use crate::export::bindings::validator::luminate::plugin::types::MetricBatch;
use crate::{Dimension, Metric, PluginError};

fn malformed(message: String) -> PluginError {
    PluginError::Failed(format!("malformed batch: {message}"))
}

#[inline(always)]
fn text_at<'t>(text: &'t str, offset: u32, len: u32, what: &str) -> Result<&'t str, PluginError> {
    let start = offset as usize;
    match start.checked_add(len as usize) {
        Some(end) => match text.get(start..end) {
            Some(s) => Ok(s),
            None => Err(outside(text, offset, len, what)),
        },
        None => Err(outside(text, offset, len, what)),
    }
}

#[cold]
fn outside(text: &str, offset: u32, len: u32, what: &str) -> PluginError {
    malformed(format!(
        "{what} {offset}+{len} is outside the text ({} bytes) or splits a character",
        text.len()
    ))
}

/// Every dimension of the batch, in the batch's order.
pub(crate) fn dimensions(batch: &MetricBatch) -> Result<Vec<Dimension<'_>>, PluginError> {
    let text = batch.text.as_str();
    let quads = batch.dimensions.chunks_exact(4);
    if !quads.remainder().is_empty() {
        return Err(malformed(format!(
            "dimensions has {} entries, not four per dimension",
            batch.dimensions.len()
        )));
    }
    // A plain loop over a presized Vec: this runs for every dimension of
    // every batch, and collecting `Result`s costs more per element.
    let mut out = Vec::with_capacity(quads.len());
    for q in quads {
        out.push(Dimension {
            key: Cow::Borrowed(text_at(text, q[0], q[1], "dimension key")?),
            value: Cow::Borrowed(text_at(text, q[2], q[3], "dimension value")?),
        });
    }
    Ok(out)
}

/// The metrics, each borrowing its name from the batch's text and its
/// dimensions from `dimensions` (decoded by [`dimensions`]).
pub(crate) fn metrics<'t>(
    batch: &'t MetricBatch,
    dimensions: &'t [Dimension<'t>],
) -> Result<Vec<Metric<'t>>, PluginError> {
    let count = batch.values.len();
    if batch.names.len() != 2 * count
        || batch.timestamps_ms.len() != count
        || batch.dimension_ends.len() != count
    {
        return Err(malformed(format!(
            "columns of different lengths: {} names, {} values, {} timestamps, {} dimension ends",
            batch.names.len() / 2,
            count,
            batch.timestamps_ms.len(),
            batch.dimension_ends.len()
        )));
    }
    let mut out = Vec::with_capacity(count);
    let mut start = 0;
    for index in 0..count {
        let end = batch.dimension_ends[index] as usize;
        let Some(own) = dimensions.get(start..end) else {
            return Err(malformed(format!(
                "metric {index} has dimensions {start}..{end} of {}",
                dimensions.len()
            )));
        };
        start = end;
        let name = text_at(
            &batch.text,
            batch.names[2 * index],
            batch.names[2 * index + 1],
            "metric name",
        )?;
        out.push(Metric {
            name: Cow::Borrowed(name),
            value: batch.values[index],
            timestamp_ms: batch.timestamps_ms[index],
            dimensions: Cow::Borrowed(own),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `names`: (offset, len) per metric; `ends`: dimension ends per metric.
    fn batch(text: &str, names: &[u32], ends: &[u32], dimensions: &[u32]) -> MetricBatch {
        let count = ends.len();
        MetricBatch {
            text: text.into(),
            names: names.to_vec(),
            values: vec![1.5; count],
            timestamps_ms: vec![7; count],
            dimension_ends: ends.to_vec(),
            dimensions: dimensions.to_vec(),
        }
    }

    fn decode(batch: &MetricBatch) -> Result<usize, PluginError> {
        let dims = dimensions(batch)?;
        Ok(metrics(batch, &dims)?.len())
    }

    #[test]
    fn decodes_names_and_dimension_ranges_without_copying() {
        let b = batch(
            "cpuhosth1memzonez",
            &[0, 3, 9, 3],
            &[1, 2],
            &[3, 4, 7, 2, 12, 4, 16, 1],
        );
        let dims = dimensions(&b).unwrap();
        let ms = metrics(&b, &dims).unwrap();
        assert_eq!(ms[0].name, "cpu");
        assert_eq!((ms[0].value, ms[0].timestamp_ms), (1.5, 7));
        assert_eq!(ms[0].dimension("host"), Some("h1"));
        assert_eq!(ms[1].name, "mem");
        assert_eq!(ms[1].dimensions().collect::<Vec<_>>(), vec![("zone", "z")]);
        assert!(matches!(ms[0].name, Cow::Borrowed(_)));
        assert!(matches!(ms[1].dimensions, Cow::Borrowed(_)));
    }

    fn refused(b: MetricBatch, expected: &str) {
        match decode(&b) {
            Err(PluginError::Failed(m)) => {
                assert!(m.contains("malformed batch") && m.contains(expected), "{m}")
            }
            other => panic!("expected a malformed batch, got {other:?}"),
        }
    }

    #[test]
    fn refuses_a_string_past_the_end_of_the_text() {
        refused(batch("abc", &[2, 2], &[0], &[]), "outside the text");
    }

    #[test]
    fn refuses_a_string_whose_end_overflows() {
        refused(
            batch("abc", &[u32::MAX, u32::MAX], &[0], &[]),
            "outside the text",
        );
    }

    #[test]
    fn refuses_a_string_that_splits_a_character() {
        // "é" is two bytes; a string ending between them is not a string.
        refused(
            batch("é", &[0, 0], &[1], &[0, 1, 0, 0]),
            "splits a character",
        );
    }

    #[test]
    fn refuses_columns_of_different_lengths() {
        let mut b = batch("m", &[0, 1], &[0], &[]);
        b.values.push(2.0);
        refused(b, "different lengths");
        refused(batch("m", &[0, 1, 0, 1], &[0], &[]), "different lengths");
    }

    #[test]
    fn refuses_a_dimension_range_outside_the_list() {
        let one = [0, 1, 0, 1];
        assert_eq!(decode(&batch("m", &[0, 1], &[1], &one)).unwrap(), 1);
        refused(batch("m", &[0, 1], &[2], &one), "has dimensions 0..2 of 1");
        refused(
            batch("m", &[0, 1, 0, 1], &[1, 0], &one),
            "has dimensions 1..0 of 1",
        );
        refused(batch("m", &[0, 1], &[0], &[0, 1, 0]), "four per dimension");
    }
}
