//! Evaluates a parsed expression over a query's steps, from series that
//! were fetched before ([`super::plan`]): CPU only, no I/O, so it runs on
//! the blocking pool. Semantics are Prometheus 2.x's: an instant selector
//! takes the last sample in `[t - lookback, t]`, a range selector the
//! samples in `[t - range, t]`, both after `offset` and `@`.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use promql_parser::parser::{AtModifier, Expr, MatrixSelector, Offset, VectorSelector};

use super::aggregate::aggregate;
use super::binary::binary;
use super::error::PromqlError;
use super::functions::call;
use super::labels::Labels;
use super::value::{RawSeries, StepSeries, Steps, Value, WindowCursor};

/// The series each selector (by its text) matched, with their samples.
pub type Fetched = HashMap<String, Vec<RawSeries>>;

/// What one evaluation may cost.
#[derive(Clone, Copy, Debug)]
pub struct EvalLimits {
    /// Series in any intermediate or final result.
    pub max_series: usize,
    /// Series × steps in any intermediate or final result.
    pub max_samples: usize,
    pub deadline: Instant,
}

pub struct Evaluator<'a> {
    pub steps: &'a Steps,
    pub lookback_ms: i64,
    pub fetched: &'a Fetched,
    pub limits: EvalLimits,
}

impl Evaluator<'_> {
    pub fn eval(&self, expr: &Expr) -> Result<Value, PromqlError> {
        if Instant::now() > self.limits.deadline {
            return Err(PromqlError::Timeout("expression evaluation"));
        }
        let value = match expr {
            Expr::NumberLiteral(n) => Value::Scalar(vec![n.val; self.steps.len()]),
            Expr::StringLiteral(s) => Value::String(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr)?,
            Expr::Unary(u) => match self.eval(&u.expr)? {
                Value::Scalar(values) => Value::Scalar(values.into_iter().map(|v| -v).collect()),
                Value::Vector(series) => Value::Vector(
                    series
                        .into_iter()
                        .map(|s| StepSeries {
                            labels: s.labels.without_name(),
                            values: s.values.into_iter().map(|v| v.map(|v| -v)).collect(),
                        })
                        .collect(),
                ),
                other => {
                    return Err(PromqlError::bad_data(format!(
                        "unary minus of a {}",
                        other.type_name()
                    )));
                }
            },
            Expr::VectorSelector(vs) => Value::Vector(self.instant_selection(vs)?),
            Expr::MatrixSelector(ms) => Value::Matrix(self.matrix_at_end(ms)?),
            Expr::Call(c) => call(self, c)?,
            Expr::Aggregate(a) => aggregate(self, a)?,
            Expr::Binary(b) => binary(self, b)?,
            Expr::Subquery(_) => return Err(PromqlError::unsupported("a subquery")),
            Expr::Extension(_) => return Err(PromqlError::unsupported("an extension expression")),
        };
        self.check_size(&value)?;
        Ok(value)
    }

    fn check_size(&self, value: &Value) -> Result<(), PromqlError> {
        let series = match value {
            Value::Vector(s) => s.len(),
            Value::Matrix(s) => s.len(),
            _ => return Ok(()),
        };
        if series > self.limits.max_series {
            return Err(super::error::too_many_series(self.limits.max_series));
        }
        if series.saturating_mul(self.steps.len()) > self.limits.max_samples {
            return Err(super::error::too_many_samples(self.limits.max_samples));
        }
        Ok(())
    }

    /// Evaluates an argument that must be an instant vector.
    pub fn vector(&self, expr: &Expr) -> Result<Vec<StepSeries>, PromqlError> {
        match self.eval(expr)? {
            Value::Vector(series) => Ok(series),
            other => Err(PromqlError::bad_data(format!(
                "expected an instant vector, got a {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an argument that must be a scalar.
    pub fn scalar(&self, expr: &Expr) -> Result<Vec<f64>, PromqlError> {
        match self.eval(expr)? {
            Value::Scalar(values) => Ok(values),
            other => Err(PromqlError::bad_data(format!(
                "expected a scalar, got a {}",
                other.type_name()
            ))),
        }
    }

    /// The time a selector reads at for step time `t`.
    pub fn selector_time(&self, t: i64, at: Option<&AtModifier>, offset: Option<&Offset>) -> i64 {
        let base = match at {
            None => t,
            Some(AtModifier::Start) => self.steps.start_ms,
            Some(AtModifier::End) => self.steps.end_ms,
            Some(AtModifier::At(time)) => system_time_ms(*time),
        };
        base.saturating_sub(offset_ms(offset))
    }

    fn fetched(&self, vs: &VectorSelector) -> &[RawSeries] {
        self.fetched
            .get(&vs.to_string())
            .map_or(&[][..], Vec::as_slice)
    }

    fn instant_selection(&self, vs: &VectorSelector) -> Result<Vec<StepSeries>, PromqlError> {
        let series = self.fetched(vs);
        let mut out = Vec::with_capacity(series.len());
        for raw in series {
            let values: Vec<Option<f64>> = self
                .steps
                .times()
                .map(|t| {
                    let at = self.selector_time(t, vs.at.as_ref(), vs.offset.as_ref());
                    raw.window(at.saturating_sub(self.lookback_ms), at)
                        .last()
                        .map(|&(_, v)| v)
                })
                .collect();
            if values.iter().any(Option::is_some) {
                out.push(StepSeries {
                    labels: raw.labels.clone(),
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Applies `f` to each series' window at every step: the range
    /// functions. `keep_name` for the few that keep `__name__`.
    pub fn over_windows(
        &self,
        ms: &MatrixSelector,
        keep_name: bool,
        mut f: impl FnMut(&[(i64, f64)], i64, i64) -> Option<f64>,
    ) -> Vec<StepSeries> {
        let vs = &ms.vs;
        let range = duration_ms(ms.range);
        let mut out = Vec::new();
        for raw in self.fetched(vs) {
            let mut windows = WindowCursor::new(&raw.points);
            let values: Vec<Option<f64>> = self
                .steps
                .times()
                .map(|t| {
                    let end = self.selector_time(t, vs.at.as_ref(), vs.offset.as_ref());
                    let start = end.saturating_sub(range);
                    f(windows.window(start, end), start, end)
                })
                .collect();
            if values.iter().any(Option::is_some) {
                let labels = if keep_name {
                    raw.labels.clone()
                } else {
                    raw.labels.clone().without_name()
                };
                out.push(StepSeries { labels, values });
            }
        }
        out
    }

    /// A range selector as the result of an instant query.
    fn matrix_at_end(&self, ms: &MatrixSelector) -> Result<Vec<RawSeries>, PromqlError> {
        if self.steps.len() != 1 {
            return Err(PromqlError::bad_data(
                "a range vector cannot be the result of a range query; use it in a function such as rate()",
            ));
        }
        let vs = &ms.vs;
        let end = self.selector_time(self.steps.end_ms, vs.at.as_ref(), vs.offset.as_ref());
        let start = end.saturating_sub(duration_ms(ms.range));
        Ok(self
            .fetched(vs)
            .iter()
            .filter_map(|raw| {
                let points = raw.window(start, end).to_vec();
                (!points.is_empty()).then(|| RawSeries {
                    labels: raw.labels.clone(),
                    points,
                })
            })
            .collect())
    }
}

pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub fn offset_ms(offset: Option<&Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
    }
}

pub fn system_time_ms(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => duration_ms(after),
        Err(before) => -duration_ms(before.duration()),
    }
}

/// A function's or operator's output, with series that ended up with
/// the same labels (`rate(a[1m])` of `a` from two metrics) joined: an
/// error where both have a sample at one step, as in Prometheus.
pub fn unique(value: Value) -> Result<Value, PromqlError> {
    let Value::Vector(series) = value else {
        return Ok(value);
    };
    // Nearly always every label set differs (one metric's series stay
    // distinct without their name): checked on borrowed labels first.
    let mut seen: rustc_hash::FxHashSet<&Labels> = rustc_hash::FxHashSet::default();
    seen.reserve(series.len());
    if series.iter().all(|s| seen.insert(&s.labels)) {
        return Ok(Value::Vector(series));
    }
    drop(seen);
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    for s in series {
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                let kept = &mut out[i];
                for (into, from) in kept.values.iter_mut().zip(s.values) {
                    match (into.is_some(), from) {
                        (true, Some(_)) => {
                            return Err(PromqlError::execution(format!(
                                "vector cannot contain metrics with the same labelset {}",
                                s.labels
                            )));
                        }
                        (false, Some(v)) => *into = Some(v),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(Value::Vector(out))
}
