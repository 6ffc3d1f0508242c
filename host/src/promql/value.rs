//! What PromQL expressions evaluate to over a query's steps.

use super::labels::Labels;

/// The timestamps a query is evaluated at: `start, start + step, …, end`
/// (one for an instant query).
#[derive(Clone, Debug)]
pub struct Steps {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_ms: i64,
}

impl Steps {
    pub fn instant(at_ms: i64) -> Self {
        Self {
            start_ms: at_ms,
            end_ms: at_ms,
            step_ms: 1,
        }
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.end_ms.saturating_sub(self.start_ms) / self.step_ms.max(1) + 1)
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len() as i64).map(|i| self.start_ms + i * self.step_ms)
    }
}

/// One series of an instant-vector expression: its value at each step,
/// `None` where it has none.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSeries {
    pub labels: Labels,
    pub values: Vec<Option<f64>>,
}

/// A stored series' raw samples, ascending by time.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

impl RawSeries {
    /// The samples with `start_ms <= t <= end_ms`.
    pub fn window(&self, start_ms: i64, end_ms: i64) -> &[(i64, f64)] {
        let from = self.points.partition_point(|&(t, _)| t < start_ms);
        let to = self.points.partition_point(|&(t, _)| t <= end_ms);
        &self.points[from..to.max(from)]
    }
}

/// The windows of one series' points at successive steps, found by moving
/// two cursors forward rather than by searching at every step: the bounds
/// a selector reads at never decrease from one step to the next.
pub struct WindowCursor<'a> {
    points: &'a [(i64, f64)],
    from: usize,
    to: usize,
}

impl<'a> WindowCursor<'a> {
    pub fn new(points: &'a [(i64, f64)]) -> Self {
        Self {
            points,
            from: 0,
            to: 0,
        }
    }

    /// The points in `[start_ms, end_ms]`, as [`RawSeries::window`]; neither
    /// bound may be below the previous call's.
    pub fn window(&mut self, start_ms: i64, end_ms: i64) -> &'a [(i64, f64)] {
        let points = self.points;
        while self.from < points.len() && points[self.from].0 < start_ms {
            self.from += 1;
        }
        // Points skipped by `from` are before `start_ms`, so not after `end_ms`.
        self.to = self.to.max(self.from);
        while self.to < points.len() && points[self.to].0 <= end_ms {
            self.to += 1;
        }
        &points[self.from..self.to]
    }
}

/// An expression's value at every step.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// One number per step.
    Scalar(Vec<f64>),
    /// Instant vectors, one per step, as series.
    Vector(Vec<StepSeries>),
    /// A range selector's samples (an instant query's matrix result).
    Matrix(Vec<RawSeries>),
    String(String),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
            Value::String(_) => "string",
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn the_cursor_finds_the_windows_a_search_finds() {
        let points: Vec<(i64, f64)> = [3, 5, 5, 9, 14, 15, 30]
            .iter()
            .map(|&t| (t, t as f64))
            .collect();
        let raw = RawSeries {
            labels: Labels::default(),
            points: points.clone(),
        };
        for range in [0, 1, 4, 10, 40] {
            for step in [1, 2, 7] {
                let mut cursor = WindowCursor::new(&points);
                for end in (-5..40).step_by(step) {
                    let start = end - range;
                    assert_eq!(
                        cursor.window(start, end),
                        raw.window(start, end),
                        "[{start}, {end}]"
                    );
                }
            }
        }
    }
}
