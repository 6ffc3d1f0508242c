//! The ABI's columnar layouts (see `plugin-sdk/wit/plugin.wit`): every
//! string in one `text`, everything else in lists of numbers, which the
//! canonical ABI copies in one go where a list of records or strings costs
//! work per element.
//!
//! - [`WireBatch`]: a write batch as the host sends it (`metric-batch`).
//!   Built once per request batch and shared by the calls of a chain for as
//!   long as the batch's metrics stay as they are (see
//!   `stage::PluginWriteStage`).
//! - [`Enrichment`]: an enricher's answer, checked before the host reads it.

use crate::model::{Metric, RESERVED_PREFIX};

use super::wit;

pub struct WireBatch {
    batch: wit::MetricBatch,
}

/// How a plugin sees a batch's points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    AsIs,
    /// Value NaN, timestamp 0: a series-only plugin promised not to read
    /// them, and is always shown them so, cache or no cache, dry run or
    /// not, so that it answers the same everywhere.
    SeriesOnly,
}

impl Shown {
    pub fn to(plugin: &super::registry::LoadedPlugin) -> Self {
        if plugin.series_only {
            Shown::SeriesOnly
        } else {
            Shown::AsIs
        }
    }
}

/// Offsets are `u32` in the ABI. A batch's text is bounded far below 4 GiB
/// by the request size limits; if one ever were not, the pairs saturate and
/// the SDK reports a malformed batch (a plugin error, under the binding's
/// failure policy) instead of the host panicking.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl WireBatch {
    /// Every metric, as a plugin is `shown` them. Reserved (`_`)
    /// dimensions are left out: plugins never see the tenant.
    pub fn shown(metrics: &[Metric], shown: Shown) -> Self {
        Self::pack(metrics.iter(), shown)
    }

    /// The metrics at `indices` as a series-only plugin sees them (see
    /// [`Shown::SeriesOnly`]): a plugin that broke its promise to read only
    /// names and dimensions misbehaves visibly and consistently rather than
    /// answering for one point and being remembered for the series.
    pub fn series_of(metrics: &[Metric], indices: &[usize]) -> Self {
        Self::pack(indices.iter().map(|&i| &metrics[i]), Shown::SeriesOnly)
    }

    fn pack<'m>(metrics: impl Iterator<Item = &'m Metric> + Clone, shown: Shown) -> Self {
        let mut text_len = 0;
        let mut dimension_count = 0;
        let mut metric_count = 0;
        for m in metrics.clone() {
            metric_count += 1;
            text_len += m.name.len();
            for (k, v) in m.dimensions.iter() {
                text_len += k.len() + v.len();
                dimension_count += 1;
            }
        }
        let mut batch = wit::MetricBatch {
            text: String::with_capacity(text_len),
            names: Vec::with_capacity(2 * metric_count),
            values: Vec::with_capacity(metric_count),
            timestamps_ms: Vec::with_capacity(metric_count),
            dimension_ends: Vec::with_capacity(metric_count),
            dimensions: Vec::with_capacity(4 * dimension_count),
        };
        let text = &mut batch.text;
        let mut pair = |s: &str, into: &mut Vec<u32>| {
            into.push(to_u32(text.len()));
            into.push(to_u32(s.len()));
            text.push_str(s);
        };
        for m in metrics {
            pair(&m.name, &mut batch.names);
            match shown {
                Shown::AsIs => {
                    batch.values.push(m.value);
                    batch.timestamps_ms.push(m.timestamp_ms);
                }
                Shown::SeriesOnly => {
                    batch.values.push(f64::NAN);
                    batch.timestamps_ms.push(0);
                }
            }
            for (k, v) in m.dimensions.iter() {
                if !k.starts_with(RESERVED_PREFIX) {
                    pair(k, &mut batch.dimensions);
                    pair(v, &mut batch.dimensions);
                }
            }
            batch
                .dimension_ends
                .push(to_u32(batch.dimensions.len() / 4));
        }
        Self { batch }
    }

    pub fn len(&self) -> usize {
        self.batch.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.values.is_empty()
    }

    /// The batch as the plugin call lowers it.
    pub fn as_wit(&self) -> &wit::MetricBatch {
        &self.batch
    }
}

/// An enricher's answer whose layout has been checked: one range per
/// metric, ranges in order and covering `dimensions`, and every pair of a
/// metric that can take its additions inside `text` and on character
/// boundaries. A metric given more than `max_per_metric` dimensions is
/// refused whole (the runtime rejects it), so its pairs are never read: the
/// host's work on an answer stays bounded by the batch, however much the
/// plugin returns. Whether the dimensions themselves are acceptable
/// (reserved keys, lengths) is the runtime's rule to apply.
#[derive(Debug)]
pub struct Enrichment {
    raw: wit::Enrichment,
    max_per_metric: usize,
}

/// Why an enricher's answer is unusable.
#[derive(Debug, PartialEq, Eq)]
pub enum EnrichmentLayoutError {
    /// Not one range per metric.
    WrongLength {
        expected: usize,
        got: usize,
    },
    Malformed(String),
}

impl Enrichment {
    pub fn check(
        raw: wit::Enrichment,
        metrics: usize,
        max_per_metric: usize,
    ) -> Result<Self, EnrichmentLayoutError> {
        let malformed = |m: String| Err(EnrichmentLayoutError::Malformed(m));
        if raw.dimension_ends.len() != metrics {
            return Err(EnrichmentLayoutError::WrongLength {
                expected: metrics,
                got: raw.dimension_ends.len(),
            });
        }
        if !raw.dimensions.len().is_multiple_of(4) {
            return malformed(format!(
                "dimensions has {} entries, not four per dimension",
                raw.dimensions.len()
            ));
        }
        let count = raw.dimensions.len() / 4;
        let mut previous = 0;
        for (metric, &end) in raw.dimension_ends.iter().enumerate() {
            if end < previous {
                return malformed(format!(
                    "dimension-ends goes back from {previous} to {end} at metric {metric}"
                ));
            }
            previous = end;
        }
        if previous as usize != count {
            return malformed(format!(
                "dimension-ends ends at {previous}, but there are {count} dimensions"
            ));
        }
        let checked = Self {
            raw,
            max_per_metric,
        };
        for metric in 0..metrics {
            if checked.count(metric) > max_per_metric {
                continue;
            }
            let (start, end) = checked.range(metric);
            let pairs = checked.raw.dimensions[4 * start..4 * end].chunks_exact(2);
            for (index, pair) in (2 * start..).zip(pairs) {
                if text_at(&checked.raw.text, pair[0], pair[1]).is_none() {
                    return malformed(format!(
                        "string {index} ({}+{}) is outside the text ({} bytes) or splits a character",
                        pair[0],
                        pair[1],
                        checked.raw.text.len()
                    ));
                }
            }
        }
        Ok(checked)
    }

    pub fn len(&self) -> usize {
        self.raw.dimension_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.raw.dimension_ends.is_empty()
    }

    /// Dimension indexes `start..end` of `metric` (checked non-decreasing
    /// and within `dimensions` by `check`).
    fn range(&self, metric: usize) -> (usize, usize) {
        let end = self.raw.dimension_ends.get(metric).copied().unwrap_or(0) as usize;
        let start = match metric.checked_sub(1) {
            Some(previous) => self.raw.dimension_ends.get(previous).copied().unwrap_or(0),
            None => 0,
        } as usize;
        (start.min(end), end)
    }

    /// How many dimensions the plugin gave `metric`.
    pub fn count(&self, metric: usize) -> usize {
        let (start, end) = self.range(metric);
        end - start
    }

    /// The dimensions metric `metric` gets, as `(key, value)`; nothing for
    /// a metric given more than the limit (see [`Enrichment`]).
    pub fn of(&self, metric: usize) -> impl Iterator<Item = (&str, &str)> {
        let (start, end) = match self.count(metric) <= self.max_per_metric {
            true => self.range(metric),
            false => (0, 0),
        };
        let quads = self
            .raw
            .dimensions
            .get(4 * start..4 * end)
            .unwrap_or_default();
        quads.chunks_exact(4).map(|q| {
            // Checked in `check`; the fallbacks are unreachable.
            (
                text_at(&self.raw.text, q[0], q[1]).unwrap_or_default(),
                text_at(&self.raw.text, q[2], q[3]).unwrap_or_default(),
            )
        })
    }

    /// Every dimension the answer gives a metric within the limit.
    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.len()).flat_map(|metric| self.of(metric))
    }
}

fn text_at(text: &str, offset: u32, len: u32) -> Option<&str> {
    let start = offset as usize;
    text.get(start..start.checked_add(len as usize)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dimensions;

    fn text(batch: &wit::MetricBatch, pairs: &[u32]) -> String {
        text_at(&batch.text, pairs[0], pairs[1]).unwrap().to_owned()
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
        let wire = WireBatch::shown(&metrics, Shown::AsIs);
        assert_eq!(wire.len(), 2);
        let batch = wire.as_wit();
        assert!(
            !batch.text.contains("acme") && !batch.text.contains("_tenant_id"),
            "{:?}",
            batch.text
        );
        assert_eq!(text(batch, &batch.names[0..2]), "a");
        assert_eq!(text(batch, &batch.names[2..4]), "bb");
        assert_eq!(batch.values, vec![1.5, 2.0]);
        assert_eq!(batch.timestamps_ms, vec![7, 8]);
        assert_eq!(batch.dimension_ends, vec![2, 2]);
        let dims: Vec<(String, String)> = batch
            .dimensions
            .chunks_exact(4)
            .map(|q| (text(batch, &q[0..2]), text(batch, &q[2..4])))
            .collect();
        assert_eq!(
            dims,
            vec![("host".into(), "h1".into()), ("zone".into(), "é".into())]
        );
    }

    #[test]
    fn series_of_sends_the_chosen_metrics_without_value_or_timestamp() {
        let metric = |name: &str, value: f64| Metric {
            name: name.into(),
            value,
            timestamp_ms: 9,
            dimensions: Dimensions::from_pairs([("host".to_owned(), name.to_owned())]),
        };
        let metrics = vec![metric("a", 1.0), metric("b", 2.0), metric("c", 3.0)];
        let wire = WireBatch::series_of(&metrics, &[2, 0]);
        let batch = wire.as_wit();
        assert_eq!(wire.len(), 2);
        assert_eq!(text(batch, &batch.names[0..2]), "c");
        assert_eq!(text(batch, &batch.names[2..4]), "a");
        assert!(
            batch.values.iter().all(|v| v.is_nan()),
            "{:?}",
            batch.values
        );
        assert_eq!(batch.timestamps_ms, vec![0, 0]);
        assert_eq!(batch.dimension_ends, vec![1, 2]);
        assert_eq!(text(batch, &batch.dimensions[6..8]), "a");
    }

    fn enrichment(text: &str, dimension_ends: &[u32], dimensions: &[u32]) -> wit::Enrichment {
        wit::Enrichment {
            text: text.into(),
            dimension_ends: dimension_ends.to_vec(),
            dimensions: dimensions.to_vec(),
        }
    }

    #[test]
    fn reads_each_metrics_additions() {
        // "teampayzoneé": team=pay for metric 0, nothing for 1, zone=é for 2.
        let raw = enrichment("teampayzoneé", &[1, 1, 2], &[0, 4, 4, 3, 7, 4, 11, 2]);
        let checked = Enrichment::check(raw, 3, 32).unwrap();
        assert_eq!(checked.of(0).collect::<Vec<_>>(), vec![("team", "pay")]);
        assert_eq!(checked.of(1).count(), 0);
        assert_eq!(checked.of(2).collect::<Vec<_>>(), vec![("zone", "é")]);
        assert_eq!(checked.all().count(), 2);
    }

    #[test]
    fn a_metric_over_the_limit_is_counted_but_never_read() {
        // Metric 0 gets two dimensions, one of them malformed; with a limit
        // of one it is refused whole, so the bad string is never read.
        let raw = enrichment("kv", &[2, 3], &[0, 1, 1, 1, 0, 99, 0, 0, 0, 1, 1, 1]);
        let checked = Enrichment::check(raw.clone(), 2, 1).unwrap();
        assert_eq!(checked.count(0), 2);
        assert_eq!(checked.of(0).count(), 0);
        assert_eq!(checked.of(1).collect::<Vec<_>>(), vec![("k", "v")]);
        assert_eq!(checked.all().count(), 1);
        // Within the limit, the same answer is malformed.
        assert!(Enrichment::check(raw, 2, 2).is_err());
    }

    #[test]
    fn refuses_every_malformed_layout() {
        let ok =
            |ends: &[u32], dims: &[u32]| Enrichment::check(enrichment("keyval", ends, dims), 2, 32);
        assert!(ok(&[1, 1], &[0, 3, 3, 3]).is_ok());
        assert_eq!(
            ok(&[1], &[0, 3, 3, 3]).unwrap_err(),
            EnrichmentLayoutError::WrongLength {
                expected: 2,
                got: 1
            }
        );
        let cases: [(&[u32], &[u32], &str); 6] = [
            (&[1, 1], &[0, 3, 3], "four per dimension"),
            (&[1, 0], &[0, 3, 3, 3], "goes back"),
            (&[1, 2], &[0, 3, 3, 3], "there are 1 dimensions"),
            (&[0, 0], &[0, 3, 3, 3], "there are 1 dimensions"),
            (&[1, 1], &[0, 3, 3, 4], "outside the text"),
            (&[1, 1], &[u32::MAX, u32::MAX, 0, 0], "outside the text"),
        ];
        for (ends, dims, expected) in cases {
            match ok(ends, dims) {
                Err(EnrichmentLayoutError::Malformed(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("{ends:?} {dims:?}: {other:?}"),
            }
        }
        let splits = Enrichment::check(enrichment("é", &[1], &[0, 1, 0, 0]), 1, 32);
        assert!(
            matches!(splits, Err(EnrichmentLayoutError::Malformed(m)) if m.contains("splits a character"))
        );
    }
}
