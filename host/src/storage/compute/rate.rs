use std::collections::BTreeMap;

use super::bucket_start;

/// Counter increase per step bucket (bucket start -> increase).
pub type IncreaseBuckets = BTreeMap<i64, f64>;

/// Adds one series' counter increases to `buckets`. `points` are sorted by
/// time. Between consecutive points the increase is `v - prev`, or `v` when
/// `v < prev` (the counter reset and counted up from zero); it counts in the
/// bucket of the later point. Only points inside the queried range take
/// part, so the first point in range contributes no increase.
pub fn add_increases(points: &[(i64, f64)], step_ms: i64, buckets: &mut IncreaseBuckets) {
    debug_assert!(points.windows(2).all(|w| w[0].0 <= w[1].0));
    for pair in points.windows(2) {
        let (prev, (ts, v)) = (pair[0].1, pair[1]);
        let increase = if v < prev { v } else { v - prev };
        *buckets.entry(bucket_start(ts, step_ms)).or_insert(0.0) += increase;
    }
}

/// Per-second rates from bucket increases: increase / step in seconds.
pub fn rates(buckets: IncreaseBuckets, step_ms: i64) -> Vec<(i64, f64)> {
    let seconds = step_ms as f64 / 1000.0;
    buckets
        .into_iter()
        .map(|(b, inc)| (b, inc / seconds))
        .collect()
}

/// The rate points of one series (empty with fewer than two points).
pub fn series_rate(points: &[(i64, f64)], step_ms: i64) -> Vec<(i64, f64)> {
    let mut buckets = IncreaseBuckets::new();
    add_increases(points, step_ms, &mut buckets);
    rates(buckets, step_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_increases_in_the_later_points_bucket() {
        let pts = [(0, 10.0), (5_000, 20.0), (10_000, 50.0), (15_000, 80.0)];
        assert_eq!(series_rate(&pts, 10_000), vec![(0, 1.0), (10_000, 6.0)]);
    }

    #[test]
    fn a_reset_counts_the_new_value_from_zero() {
        let pts = [(0, 100.0), (1_000, 120.0), (2_000, 5.0), (3_000, 15.0)];
        // increases: 20, then 5 (reset), then 10
        assert_eq!(
            series_rate(&pts, 1_000),
            vec![(1_000, 20.0), (2_000, 5.0), (3_000, 10.0)]
        );
        // reset to exactly zero is an increase of zero, not a negative one
        assert_eq!(
            series_rate(&[(0, 7.0), (1_000, 0.0)], 1_000),
            vec![(1_000, 0.0)]
        );
    }

    #[test]
    fn a_single_point_has_no_rate() {
        assert!(series_rate(&[(0, 1.0)], 1_000).is_empty());
        assert!(series_rate(&[], 1_000).is_empty());
    }
}
