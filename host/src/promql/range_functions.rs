//! Functions of a range vector: each reads one series' samples in a
//! window and returns one value or none, as Prometheus 2.x computes them
//! (its `functions.go`): the window is closed, `[t - range, t]`, and
//! `rate`, `increase` and `delta` extrapolate to the window's edges.

/// One series' samples in a window, ascending by time: `(ms, value)`.
pub type Window<'a> = &'a [(i64, f64)];

/// Where the window lies, for the functions that extrapolate to its edges.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Bounds {
    fn seconds(self) -> f64 {
        self.end_ms.saturating_sub(self.start_ms) as f64 / 1e3
    }
}

/// `rate`, `increase` and `delta`: Prometheus' `extrapolatedRate`.
pub fn extrapolated_rate(
    window: Window<'_>,
    bounds: Bounds,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let (&(first_t, first_v), &(last_t, last_v)) = (window.first()?, window.last()?);
    if window.len() < 2 {
        return None;
    }
    let mut result = last_v - first_v;
    if is_counter {
        let mut previous = 0.0;
        for &(_, value) in window {
            if value < previous {
                result += previous;
            }
            previous = value;
        }
    }
    let mut to_start = first_t.saturating_sub(bounds.start_ms) as f64 / 1e3;
    let to_end = bounds.end_ms.saturating_sub(last_t) as f64 / 1e3;
    let sampled = (last_t - first_t) as f64 / 1e3;
    let average_gap = sampled / (window.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        // A counter does not go below zero: extrapolate at most to where
        // it would have been zero.
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    // One factor, in Prometheus' order of operations, so the floats agree
    // to the last bit.
    let mut factor = interval / sampled;
    if is_rate {
        factor /= bounds.seconds();
    }
    Some(result * factor)
}

/// `irate` (`is_rate`) and `idelta`: from the last two samples.
pub fn instant_value(window: Window<'_>, is_rate: bool) -> Option<f64> {
    let [.., (previous_t, previous_v), (last_t, last_v)] = window else {
        return None;
    };
    let mut result = last_v - previous_v;
    if is_rate && last_v < previous_v {
        // A counter reset.
        result = *last_v;
    }
    let interval = last_t - previous_t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1e3;
    }
    Some(result)
}

/// `deriv`: the slope of the least-squares line, per second.
pub fn deriv(window: Window<'_>) -> Option<f64> {
    let &(first_t, _) = window.first()?;
    if window.len() < 2 {
        return None;
    }
    Some(linear_regression(window, first_t).0)
}

/// `predict_linear(v, t)`: the line's value `seconds` after `at_ms`.
pub fn predict_linear(window: Window<'_>, at_ms: i64, seconds: f64) -> Option<f64> {
    if window.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(window, at_ms);
    Some(slope * seconds + intercept)
}

/// Slope and intercept at `intercept_ms` of the least-squares line
/// through the samples, x in seconds (Kahan-summed, as Prometheus does).
fn linear_regression(window: Window<'_>, intercept_ms: i64) -> (f64, f64) {
    let first_v = window[0].1;
    if window.iter().all(|&(_, v)| v == first_v) {
        if first_v.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first_v);
    }
    let (mut x, mut y, mut xy, mut x2) = (
        Kahan::default(),
        Kahan::default(),
        Kahan::default(),
        Kahan::default(),
    );
    for &(t, v) in window {
        let dx = (t - intercept_ms) as f64 / 1e3;
        x.add(dx);
        y.add(v);
        xy.add(dx * v);
        x2.add(dx * dx);
    }
    let n = window.len() as f64;
    let (x, y, xy, x2) = (x.sum(), y.sum(), xy.sum(), x2.sum());
    let covariance = xy - x * y / n;
    let variance = x2 - x * x / n;
    let slope = covariance / variance;
    (slope, y / n - slope * x / n)
}

/// `resets`: how often the value went down.
pub fn resets(window: Window<'_>) -> Option<f64> {
    window.first()?;
    Some(
        window
            .windows(2)
            .filter(|pair| pair[1].1 < pair[0].1)
            .count() as f64,
    )
}

/// `changes`: how often the value changed (NaN to NaN is no change).
pub fn changes(window: Window<'_>) -> Option<f64> {
    window.first()?;
    Some(
        window
            .windows(2)
            .filter(|pair| pair[1].1 != pair[0].1 && !(pair[1].1.is_nan() && pair[0].1.is_nan()))
            .count() as f64,
    )
}

/// The `<aggregation>_over_time` functions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OverTime {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    Present,
    Stddev,
    Stdvar,
    Quantile(f64),
}

impl OverTime {
    pub fn apply(self, window: Window<'_>) -> Option<f64> {
        let &(_, last) = window.last()?;
        let values = window.iter().map(|&(_, v)| v);
        Some(match self {
            OverTime::Avg => average(values),
            OverTime::Min => values.fold(
                f64::NAN,
                |min, v| if min.is_nan() || v < min { v } else { min },
            ),
            OverTime::Max => values.fold(
                f64::NAN,
                |max, v| if max.is_nan() || v > max { v } else { max },
            ),
            OverTime::Sum => {
                let mut sum = Kahan::default();
                values.for_each(|v| sum.add(v));
                sum.sum()
            }
            OverTime::Count => window.len() as f64,
            OverTime::Last => last,
            OverTime::Present => 1.0,
            OverTime::Stddev => variance(values).sqrt(),
            OverTime::Stdvar => variance(values),
            OverTime::Quantile(q) => quantile(q, values.collect()),
        })
    }
}

/// The mean, kept incrementally (no overflow of a large sum), as
/// Prometheus does.
pub fn average(values: impl Iterator<Item = f64>) -> f64 {
    let (mut mean, mut correction, mut count) = (0.0f64, 0.0f64, 0.0f64);
    for v in values {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        let (m, c) = kahan_inc(v / count - mean / count, mean, correction);
        mean = m;
        correction = c;
    }
    if mean.is_infinite() {
        mean
    } else {
        mean + correction
    }
}

/// The population variance (Welford's method, Kahan-summed).
pub fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// The `q` quantile of `values`, interpolated between the closest ranks
/// (Prometheus' `quantile`): `-Inf` below 0, `+Inf` above 1.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Kahan–Babuška summation: a sum and its running correction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kahan {
    sum: f64,
    correction: f64,
}

impl Kahan {
    pub fn add(&mut self, value: f64) {
        (self.sum, self.correction) = kahan_inc(value, self.sum, self.correction);
    }

    pub fn sum(self) -> f64 {
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.correction
        }
    }
}

fn kahan_inc(inc: f64, sum: f64, correction: f64) -> (f64, f64) {
    let t = sum + inc;
    let correction = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        correction + ((sum - t) + inc)
    } else {
        correction + ((inc - t) + sum)
    };
    (t, correction)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn rate_of_a_steady_counter_is_its_slope_and_extrapolates_to_the_edges() {
        // 1 per second, sampled every 15 s over a 5 m window that the
        // samples fill: the rate is exactly 1.
        let window: Vec<(i64, f64)> = (0..=20)
            .map(|i| (i * 15_000, 100.0 + i as f64 * 15.0))
            .collect();
        let bounds = Bounds {
            start_ms: 0,
            end_ms: 5 * MINUTE,
        };
        assert_eq!(extrapolated_rate(&window, bounds, true, true), Some(1.0));
        assert_eq!(extrapolated_rate(&window, bounds, true, false), Some(300.0));
        // A reset adds the value before it: 5 - 10 + 20.
        let reset = [(0, 10.0), (15_000, 20.0), (30_000, 5.0)];
        let bounds = Bounds {
            start_ms: 0,
            end_ms: 30_000,
        };
        assert_eq!(extrapolated_rate(&reset, bounds, true, false), Some(15.0));
        assert_eq!(extrapolated_rate(&reset[..1], bounds, true, true), None);
    }

    #[test]
    fn irate_uses_the_last_two_samples() {
        assert_eq!(
            instant_value(&[(0, 1.0), (10_000, 5.0), (20_000, 25.0)], true),
            Some(2.0)
        );
        assert_eq!(instant_value(&[(0, 30.0), (10_000, 5.0)], true), Some(0.5));
        assert_eq!(
            instant_value(&[(0, 30.0), (10_000, 5.0)], false),
            Some(-25.0)
        );
    }

    #[test]
    fn deriv_is_the_least_squares_slope_per_second() {
        let window = [(0, 1.0), (1_000, 3.0), (2_000, 5.0)];
        assert!((deriv(&window).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(
            predict_linear(&window, 2_000, 10.0).map(f64::round),
            Some(25.0)
        );
    }

    #[test]
    fn over_time_aggregations() {
        let window = [(0, 1.0), (1, 4.0), (2, 2.0), (3, 4.0)];
        assert_eq!(OverTime::Avg.apply(&window), Some(2.75));
        assert_eq!(OverTime::Min.apply(&window), Some(1.0));
        assert_eq!(OverTime::Max.apply(&window), Some(4.0));
        assert_eq!(OverTime::Sum.apply(&window), Some(11.0));
        assert_eq!(OverTime::Count.apply(&window), Some(4.0));
        assert_eq!(OverTime::Last.apply(&window), Some(4.0));
        assert_eq!(OverTime::Stdvar.apply(&window), Some(1.6875));
        assert_eq!(OverTime::Quantile(0.5).apply(&window), Some(3.0));
        assert_eq!(OverTime::Quantile(2.0).apply(&window), Some(f64::INFINITY));
        assert_eq!(resets(&window), Some(1.0));
        assert_eq!(changes(&window), Some(3.0));
        assert_eq!(OverTime::Sum.apply(&[]), None);
    }
}
