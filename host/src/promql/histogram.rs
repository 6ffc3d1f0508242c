//! `histogram_quantile` over classic histograms: `_bucket` series with an
//! `le` label, as remote write and OTLP store them. Prometheus 2.x's
//! `bucketQuantile`: linear interpolation inside the bucket that holds the
//! rank; the `+Inf` bucket is required; counts are made monotonic first.

use std::collections::BTreeMap;

use super::labels::Labels;
use super::value::StepSeries;

const LE: &str = "le";

/// One bucket series: its upper bound and its count at each step.
type Bucket = (f64, Vec<Option<f64>>);

/// The `q[step]` quantile of each histogram (series grouped by their
/// labels without `le` and `__name__`) at each step.
pub fn histogram_quantile(q: &[f64], series: Vec<StepSeries>) -> Vec<StepSeries> {
    let steps = q.len();
    let mut groups: BTreeMap<Labels, Vec<Bucket>> = BTreeMap::new();
    for s in series {
        // A series without a parsable `le` is not a bucket; Prometheus
        // skips it.
        let Some(upper) = s.labels.get(LE).and_then(parse_le) else {
            continue;
        };
        let mut labels = s.labels.without_name();
        labels.remove(LE);
        groups.entry(labels).or_default().push((upper, s.values));
    }
    groups
        .into_iter()
        .filter_map(|(labels, buckets)| {
            let values: Vec<Option<f64>> = (0..steps)
                .map(|i| {
                    let at_step: Vec<(f64, f64)> = buckets
                        .iter()
                        .filter_map(|(upper, values)| values[i].map(|count| (*upper, count)))
                        .collect();
                    (!at_step.is_empty()).then(|| bucket_quantile(q[i], at_step))
                })
                .collect();
            values
                .iter()
                .any(Option::is_some)
                .then_some(StepSeries { labels, values })
        })
        .collect()
}

/// `le` as Prometheus parses it (Go's ParseFloat: `+Inf`, `1e3`, …).
fn parse_le(text: &str) -> Option<f64> {
    match text.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// One histogram's quantile from `(upper bound, cumulative count)` pairs.
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with the same bound (sent twice) add up.
    buckets.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 += later.1;
            true
        } else {
            false
        }
    });
    // Counts are cumulative: one that went down was scraped mid-update.
    let mut max = f64::NEG_INFINITY;
    for bucket in &mut buckets {
        if bucket.1 > max {
            max = bucket.1;
        } else {
            bucket.1 = max;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|bucket| bucket.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let end = buckets[b].0;
    let mut count = buckets[b].1;
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_inside_the_bucket_that_holds_the_rank() {
        let buckets = vec![
            (0.1, 10.0),
            (0.5, 60.0),
            (1.0, 90.0),
            (f64::INFINITY, 100.0),
        ];
        // Rank 50 lies in (0.1, 0.5]: 40 of its 50 observations in.
        assert!((bucket_quantile(0.5, buckets.clone()) - 0.42).abs() < 1e-12);
        // Rank 95 lies in the +Inf bucket: the highest finite bound.
        assert_eq!(bucket_quantile(0.95, buckets.clone()), 1.0);
        assert!(bucket_quantile(0.5, vec![(1.0, 1.0)]).is_nan());
        assert_eq!(bucket_quantile(-1.0, buckets), f64::NEG_INFINITY);
    }

    #[test]
    fn groups_buckets_by_their_other_labels() {
        let bucket = |le: &str, job: &str, count: f64| StepSeries {
            labels: Labels::from_pairs([("__name__", "h_bucket"), ("le", le), ("job", job)]),
            values: vec![Some(count)],
        };
        let series = vec![
            bucket("1", "a", 5.0),
            bucket("+Inf", "a", 10.0),
            bucket("2", "b", 10.0),
            bucket("+Inf", "b", 10.0),
        ];
        let out = histogram_quantile(&[0.5], series);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, Labels::from_pairs([("job", "a")]));
        assert_eq!(out[0].values, vec![Some(1.0)]);
        assert_eq!(out[1].values, vec![Some(1.0)]);
    }
}
