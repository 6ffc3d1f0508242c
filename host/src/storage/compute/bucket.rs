use super::Fold;
use crate::model::Aggregation;

/// Start of the epoch-aligned step bucket holding `ts_ms`.
pub fn bucket_start(ts_ms: i64, step_ms: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(step_ms)
}

/// One aggregated point per non-empty bucket, ascending. `points` must be
/// sorted by time.
pub fn step_aggregate(
    points: &[(i64, f64)],
    step_ms: i64,
    aggregation: Aggregation,
) -> Vec<(i64, f64)> {
    debug_assert!(points.windows(2).all(|w| w[0].0 <= w[1].0));
    let mut out = Vec::new();
    let mut current: Option<(i64, Fold)> = None;
    for &(ts, v) in points {
        let bucket = bucket_start(ts, step_ms);
        match &mut current {
            Some((b, fold)) if *b == bucket => fold.push(v),
            _ => {
                if let Some((b, fold)) = current.take() {
                    out.extend(fold.finish().map(|x| (b, x)));
                }
                let mut fold = Fold::new(aggregation);
                fold.push(v);
                current = Some((bucket, fold));
            }
        }
    }
    if let Some((b, fold)) = current {
        out.extend(fold.finish().map(|x| (b, x)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_the_epoch_also_before_it() {
        assert_eq!(bucket_start(0, 60_000), 0);
        assert_eq!(bucket_start(59_999, 60_000), 0);
        assert_eq!(bucket_start(60_000, 60_000), 60_000);
        assert_eq!(bucket_start(-1, 60_000), -60_000);
        assert_eq!(bucket_start(1_700_000_012_345, 1_000), 1_700_000_012_000);
    }

    #[test]
    fn aggregates_each_non_empty_bucket() {
        let pts = [
            (0, 1.0),
            (500, 3.0),
            (1_000, 10.0),
            (3_500, 7.0),
            (3_999, 1.0),
        ];
        assert_eq!(
            step_aggregate(&pts, 1_000, Aggregation::Sum),
            vec![(0, 4.0), (1_000, 10.0), (3_000, 8.0)]
        );
        assert_eq!(
            step_aggregate(&pts, 1_000, Aggregation::Percentile(1.0)),
            vec![(0, 3.0), (1_000, 10.0), (3_000, 7.0)]
        );
        assert!(step_aggregate(&[], 1_000, Aggregation::Count).is_empty());
    }
}
