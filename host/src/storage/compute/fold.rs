use crate::model::Aggregation;

/// 0-based rank of the `q` quantile among `n` sorted values:
/// `min(floor(q * n), n - 1)`, ClickHouse's `quantileExact` rank.
pub fn percentile_rank(q: f64, n: usize) -> usize {
    debug_assert!(n > 0);
    let rank = (q.clamp(0.0, 1.0) * n as f64).floor() as usize;
    rank.min(n - 1)
}

/// Exact percentile: the value at [`percentile_rank`] of `values` in sorted
/// order. Reorders `values` (selection, O(n)); `None` when empty.
pub fn percentile_exact(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = percentile_rank(q, values.len());
    let (_, nth, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    Some(*nth)
}

/// Neumaier-compensated sum: sums of many values do not depend on the order
/// they arrive in beyond the last bits, so backends agree.
#[derive(Clone, Copy, Debug, Default)]
struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.compensation += (self.sum - t) + v;
        } else {
            self.compensation += (v - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        self.sum + self.compensation
    }
}

/// The running state of one aggregation over one group or bucket.
#[derive(Clone, Debug)]
pub enum Fold {
    Count(u64),
    Sum(CompensatedSumState),
    Avg(CompensatedSumState, u64),
    Min(Option<f64>),
    Max(Option<f64>),
    Percentile { q: f64, values: Vec<f64> },
}

/// Opaque sum state (public only because it sits inside [`Fold`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct CompensatedSumState(CompensatedSum, bool);

impl Fold {
    pub fn new(aggregation: Aggregation) -> Self {
        match aggregation {
            Aggregation::Count => Self::Count(0),
            Aggregation::Sum => Self::Sum(CompensatedSumState::default()),
            Aggregation::Avg => Self::Avg(CompensatedSumState::default(), 0),
            Aggregation::Min => Self::Min(None),
            Aggregation::Max => Self::Max(None),
            Aggregation::Percentile(q) => Self::Percentile {
                q,
                values: Vec::new(),
            },
        }
    }

    #[inline]
    pub fn push(&mut self, v: f64) {
        match self {
            Self::Count(n) => *n += 1,
            Self::Sum(s) => {
                s.0.add(v);
                s.1 = true;
            }
            Self::Avg(s, n) => {
                s.0.add(v);
                *n += 1;
            }
            Self::Min(m) => *m = Some(m.map_or(v, |m| m.min(v))),
            Self::Max(m) => *m = Some(m.map_or(v, |m| m.max(v))),
            Self::Percentile { values, .. } => values.push(v),
        }
    }

    /// The result, or `None` when no value was pushed (the group or bucket
    /// then does not appear in results).
    pub fn finish(self) -> Option<f64> {
        match self {
            Self::Count(0) => None,
            Self::Count(n) => Some(n as f64),
            Self::Sum(s) => s.1.then(|| s.0.value()),
            Self::Avg(_, 0) => None,
            Self::Avg(s, n) => Some(s.0.value() / n as f64),
            Self::Min(m) | Self::Max(m) => m,
            Self::Percentile { q, mut values } => percentile_exact(&mut values, q),
        }
    }

    /// Folds a slice in one go.
    pub fn over(aggregation: Aggregation, values: impl IntoIterator<Item = f64>) -> Option<f64> {
        let mut fold = Self::new(aggregation);
        for v in values {
            fold.push(v);
        }
        fold.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Aggregation::*;

    #[test]
    fn empty_input_has_no_result_for_every_aggregation() {
        for agg in [Count, Sum, Avg, Min, Max, Percentile(0.5)] {
            assert_eq!(Fold::over(agg, []), None, "{agg:?}");
        }
    }

    #[test]
    fn single_value_is_every_statistic() {
        for agg in [
            Sum,
            Avg,
            Min,
            Max,
            Percentile(0.0),
            Percentile(0.999),
            Percentile(1.0),
        ] {
            assert_eq!(Fold::over(agg, [-2.5]), Some(-2.5), "{agg:?}");
        }
        assert_eq!(Fold::over(Count, [-2.5]), Some(1.0));
    }

    #[test]
    fn percentiles_use_the_quantile_exact_rank() {
        let values: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let p = |q| Fold::over(Percentile(q), values.iter().copied()).unwrap();
        assert_eq!(p(0.0), 1.0);
        assert_eq!(p(0.5), 6.0); // rank floor(5) = 5 -> sixth smallest
        assert_eq!(p(0.95), 10.0); // rank floor(9.5) = 9
        assert_eq!(p(0.94), 10.0);
        assert_eq!(p(0.89), 9.0); // rank floor(8.9) = 8
        assert_eq!(p(1.0), 10.0); // clamped to n - 1
        assert_eq!(percentile_rank(0.999, 1000), 999);
        assert_eq!(percentile_rank(0.99, 100), 99);
        assert_eq!(percentile_rank(0.5, 1), 0);
    }

    #[test]
    fn sums_compensate_cancellation() {
        let sum = Fold::over(Sum, [1e16, 1.0, -1e16, 1.0]).unwrap();
        assert_eq!(sum, 2.0);
        assert_eq!(Fold::over(Avg, [1.0, 2.0, 4.0]), Some(7.0 / 3.0));
        assert_eq!(Fold::over(Min, [3.0, -1.0, 2.0]), Some(-1.0));
        assert_eq!(Fold::over(Max, [3.0, -1.0, 2.0]), Some(3.0));
        assert_eq!(Fold::over(Count, [0.0, 0.0]), Some(2.0));
    }
}
