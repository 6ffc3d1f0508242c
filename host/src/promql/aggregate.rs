//! Aggregation operators (`sum by (job) (…)`), per step, as Prometheus
//! 2.x computes them.

use std::collections::BTreeMap;

use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::error::PromqlError;
use super::eval::Evaluator;
use super::labels::Labels;
use super::range_functions::quantile;
use super::value::{StepSeries, Value};

pub fn aggregate(ev: &Evaluator<'_>, a: &AggregateExpr) -> Result<Value, PromqlError> {
    let op = a.op.to_string();
    let series = ev.vector(&a.expr)?;
    let grouping = |labels: &Labels| match &a.modifier {
        None => Labels::default(),
        Some(LabelModifier::Include(names)) => labels.keep(&names.labels),
        Some(LabelModifier::Exclude(names)) => labels.drop(&names.labels),
    };
    let steps = ev.steps.len();
    match op.as_str() {
        "topk" | "bottomk" => {
            let k = param_scalar(ev, a.param.as_deref())?;
            Ok(Value::Vector(top(
                &series,
                &grouping,
                &k,
                op == "topk",
                steps,
            )))
        }
        "count_values" => {
            let label = match a.param.as_deref() {
                Some(Expr::StringLiteral(s)) => s.val.clone(),
                _ => {
                    return Err(PromqlError::bad_data(
                        "count_values needs a label name as its first argument",
                    ));
                }
            };
            Ok(Value::Vector(count_values(
                &series, &grouping, &label, steps,
            )))
        }
        "quantile" => {
            let q = param_scalar(ev, a.param.as_deref())?;
            Ok(Value::Vector(reduce(
                &series,
                &grouping,
                steps,
                |i, values| quantile(q[i], values.to_vec()),
            )))
        }
        "sum" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            v.iter().sum()
        }))),
        "avg" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            mean(v)
        }))),
        "count" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            v.len() as f64
        }))),
        "group" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, _| 1.0))),
        "min" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            v.iter().copied().fold(
                f64::NAN,
                |min, x| if min.is_nan() || x < min { x } else { min },
            )
        }))),
        "max" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            v.iter().copied().fold(
                f64::NAN,
                |max, x| if max.is_nan() || x > max { x } else { max },
            )
        }))),
        "stdvar" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            variance(v)
        }))),
        "stddev" => Ok(Value::Vector(reduce(&series, &grouping, steps, |_, v| {
            variance(v).sqrt()
        }))),
        other => Err(PromqlError::unsupported(format!("the aggregation {other}"))),
    }
}

fn param_scalar(ev: &Evaluator<'_>, param: Option<&Expr>) -> Result<Vec<f64>, PromqlError> {
    let param = param.ok_or_else(|| PromqlError::bad_data("the aggregation needs a parameter"))?;
    ev.scalar(param)
}

/// Groups `series` and reduces each group's values at each step.
fn reduce(
    series: &[StepSeries],
    grouping: &impl Fn(&Labels) -> Labels,
    steps: usize,
    f: impl Fn(usize, &[f64]) -> f64,
) -> Vec<StepSeries> {
    let mut groups: BTreeMap<Labels, Vec<&StepSeries>> = BTreeMap::new();
    for s in series {
        groups.entry(grouping(&s.labels)).or_default().push(s);
    }
    let mut values = Vec::new();
    groups
        .into_iter()
        .map(|(labels, members)| StepSeries {
            labels,
            values: (0..steps)
                .map(|i| {
                    values.clear();
                    values.extend(members.iter().filter_map(|s| s.values[i]));
                    (!values.is_empty()).then(|| f(i, &values))
                })
                .collect(),
        })
        .collect()
}

/// The incremental mean Prometheus 2.x's `avg` keeps.
fn mean(values: &[f64]) -> f64 {
    let mut mean = 0.0f64;
    let mut count = 0.0f64;
    for &v in values {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// Population variance, as `stdvar` (Welford's method).
fn variance(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut sum) = (0.0f64, 0.0f64, 0.0f64);
    for &v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        sum += delta * (v - mean);
    }
    sum / count
}

/// `topk`/`bottomk`: per group and step, the `k` largest (smallest)
/// samples, each keeping its own labels.
fn top(
    series: &[StepSeries],
    grouping: &impl Fn(&Labels) -> Labels,
    k: &[f64],
    largest: bool,
    steps: usize,
) -> Vec<StepSeries> {
    let mut out: Vec<StepSeries> = series
        .iter()
        .map(|s| StepSeries {
            labels: s.labels.clone(),
            values: vec![None; steps],
        })
        .collect();
    let mut groups: BTreeMap<Labels, Vec<usize>> = BTreeMap::new();
    for (i, s) in series.iter().enumerate() {
        groups.entry(grouping(&s.labels)).or_default().push(i);
    }
    for members in groups.values() {
        for step in 0..steps {
            let k = k[step];
            // k below 1 (or NaN) selects nothing.
            if k.partial_cmp(&1.0).is_none_or(|o| o.is_lt()) {
                continue;
            }
            let mut present: Vec<(usize, f64)> = members
                .iter()
                .filter_map(|&i| series[i].values[step].map(|v| (i, v)))
                .collect();
            // NaN sorts last either way, as in Prometheus.
            present.sort_by(|a, b| {
                let order = if largest {
                    b.1.total_cmp(&a.1)
                } else {
                    a.1.total_cmp(&b.1)
                };
                // Ties go to the series first by labels, as they did when
                // storage answered in that order; Prometheus agrees.
                match (a.1.is_nan(), b.1.is_nan()) {
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => order.then_with(|| series[a.0].labels.cmp(&series[b.0].labels)),
                }
            });
            let keep = if k >= present.len() as f64 {
                present.len()
            } else {
                k as usize
            };
            for &(i, v) in &present[..keep] {
                out[i].values[step] = Some(v);
            }
        }
    }
    out.retain(|s| s.values.iter().any(Option::is_some));
    out
}

/// `count_values("label", v)`: per group and step, how many samples have
/// each value, the value written into `label`.
fn count_values(
    series: &[StepSeries],
    grouping: &impl Fn(&Labels) -> Labels,
    label: &str,
    steps: usize,
) -> Vec<StepSeries> {
    let mut out: BTreeMap<Labels, Vec<Option<f64>>> = BTreeMap::new();
    for s in series {
        let group = grouping(&s.labels);
        for (step, value) in s.values.iter().enumerate() {
            if let Some(v) = value {
                let mut labels = group.clone();
                labels.set(label, &format_value(*v));
                let counts = out.entry(labels).or_insert_with(|| vec![None; steps]);
                counts[step] = Some(counts[step].unwrap_or(0.0) + 1.0);
            }
        }
    }
    out.into_iter()
        .map(|(labels, values)| StepSeries { labels, values })
        .collect()
}

/// A sample value as Prometheus writes it into text: Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)` (shortest, never an exponent).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        format!("{v}")
    }
}
