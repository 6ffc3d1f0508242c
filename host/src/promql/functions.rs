//! PromQL function calls: the range functions (over a range selector's
//! windows), the instant ones (per sample), and the few that build or
//! inspect vectors (`vector`, `scalar`, `absent`, `time`, the label
//! functions, `histogram_quantile`).

use promql_parser::parser::{Call, Expr, MatrixSelector};

use super::error::PromqlError;
use super::eval::{Evaluator, unique};
use super::histogram::histogram_quantile;
use super::labels::{Labels, METRIC_NAME};
use super::range_functions::{self as range, Bounds, OverTime};
use super::value::{StepSeries, Value};
use crate::model::{AnchoredRegex, RegexLimits};

pub fn call(ev: &Evaluator<'_>, call: &Call) -> Result<Value, PromqlError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(AsRef::as_ref).collect();
    let value = match name {
        "rate" => over(ev, &args, false, |w, s, e| {
            range::extrapolated_rate(
                w,
                Bounds {
                    start_ms: s,
                    end_ms: e,
                },
                true,
                true,
            )
        })?,
        "increase" => over(ev, &args, false, |w, s, e| {
            range::extrapolated_rate(
                w,
                Bounds {
                    start_ms: s,
                    end_ms: e,
                },
                true,
                false,
            )
        })?,
        "delta" => over(ev, &args, false, |w, s, e| {
            range::extrapolated_rate(
                w,
                Bounds {
                    start_ms: s,
                    end_ms: e,
                },
                false,
                false,
            )
        })?,
        "irate" => over(ev, &args, false, |w, _, _| range::instant_value(w, true))?,
        "idelta" => over(ev, &args, false, |w, _, _| range::instant_value(w, false))?,
        "deriv" => over(ev, &args, false, |w, _, _| range::deriv(w))?,
        "resets" => over(ev, &args, false, |w, _, _| range::resets(w))?,
        "changes" => over(ev, &args, false, |w, _, _| range::changes(w))?,
        "avg_over_time" => over_time(ev, &args, OverTime::Avg)?,
        "min_over_time" => over_time(ev, &args, OverTime::Min)?,
        "max_over_time" => over_time(ev, &args, OverTime::Max)?,
        "sum_over_time" => over_time(ev, &args, OverTime::Sum)?,
        "count_over_time" => over_time(ev, &args, OverTime::Count)?,
        "last_over_time" => {
            let ms = matrix_arg(&args, 0)?;
            Value::Vector(ev.over_windows(ms, true, |w, _, _| OverTime::Last.apply(w)))
        }
        "present_over_time" => over_time(ev, &args, OverTime::Present)?,
        "stddev_over_time" => over_time(ev, &args, OverTime::Stddev)?,
        "stdvar_over_time" => over_time(ev, &args, OverTime::Stdvar)?,
        "quantile_over_time" => {
            let q = constant_scalar(ev, &args, 0)?;
            let ms = matrix_arg(&args, 1)?;
            Value::Vector(ev.over_windows(ms, false, |w, _, _| OverTime::Quantile(q).apply(w)))
        }
        "predict_linear" => {
            let ms = matrix_arg(&args, 0)?;
            let seconds = constant_scalar(ev, &args, 1)?;
            Value::Vector(ev.over_windows(ms, false, |w, _, end| {
                range::predict_linear(w, end, seconds)
            }))
        }
        "absent_over_time" => {
            let ms = matrix_arg(&args, 0)?;
            let present = ev.over_windows(ms, false, |w, _, _| OverTime::Present.apply(w));
            absent(ev, &ms.vs.matchers.matchers, &present)
        }
        "abs" => map(ev, &args, f64::abs)?,
        "ceil" => map(ev, &args, f64::ceil)?,
        "floor" => map(ev, &args, f64::floor)?,
        "exp" => map(ev, &args, f64::exp)?,
        "ln" => map(ev, &args, f64::ln)?,
        "log2" => map(ev, &args, f64::log2)?,
        "log10" => map(ev, &args, f64::log10)?,
        "sqrt" => map(ev, &args, f64::sqrt)?,
        "sgn" => map(ev, &args, |v| {
            if v == 0.0 || v.is_nan() {
                v
            } else {
                v.signum()
            }
        })?,
        "round" => {
            let to_nearest = if args.len() > 1 {
                constant_scalar(ev, &args, 1)?
            } else {
                1.0
            };
            let inverse = 1.0 / to_nearest;
            // Go's math.Floor(v*inverse+0.5)/inverse: halves round up.
            map(ev, &args[..1], move |v| {
                (v * inverse + 0.5).floor() / inverse
            })?
        }
        "clamp" => {
            let (min, max) = (
                constant_scalar(ev, &args, 1)?,
                constant_scalar(ev, &args, 2)?,
            );
            if max < min {
                Value::Vector(Vec::new())
            } else {
                map(ev, &args[..1], move |v| v.max(min).min(max))?
            }
        }
        "clamp_min" => {
            let min = constant_scalar(ev, &args, 1)?;
            map(ev, &args[..1], move |v| v.max(min))?
        }
        "clamp_max" => {
            let max = constant_scalar(ev, &args, 1)?;
            map(ev, &args[..1], move |v| v.min(max))?
        }
        "time" => Value::Scalar(ev.steps.times().map(|t| t as f64 / 1e3).collect()),
        "vector" => {
            let values = ev.scalar(arg(&args, 0)?)?;
            Value::Vector(vec![StepSeries {
                labels: Labels::default(),
                values: values.into_iter().map(Some).collect(),
            }])
        }
        "scalar" => {
            let series = ev.vector(arg(&args, 0)?)?;
            let values = (0..ev.steps.len())
                .map(|i| {
                    let mut present = series.iter().filter_map(|s| s.values[i]);
                    match (present.next(), present.next()) {
                        (Some(v), None) => v,
                        _ => f64::NAN,
                    }
                })
                .collect();
            Value::Scalar(values)
        }
        "absent" => {
            let input = arg(&args, 0)?;
            let series = ev.vector(input)?;
            let matchers = match input {
                Expr::VectorSelector(vs) => vs.matchers.matchers.as_slice(),
                _ => &[],
            };
            absent(ev, matchers, &series)
        }
        "sort" | "sort_desc" => {
            let mut series = ev.vector(arg(&args, 0)?)?;
            let last = |s: &StepSeries| s.values.last().copied().flatten().unwrap_or(f64::NAN);
            series.sort_by(|a, b| last(a).total_cmp(&last(b)));
            if name == "sort_desc" {
                series.reverse();
            }
            Value::Vector(series)
        }
        "label_replace" => label_replace(ev, &args)?,
        "label_join" => label_join(ev, &args)?,
        "histogram_quantile" => {
            let q = ev.scalar(arg(&args, 0)?)?;
            let series = ev.vector(arg(&args, 1)?)?;
            Value::Vector(histogram_quantile(&q, series))
        }
        other => return Err(PromqlError::unsupported(format!("the function {other}()"))),
    };
    unique(value)
}

fn arg<'a>(args: &[&'a Expr], i: usize) -> Result<&'a Expr, PromqlError> {
    args.get(i)
        .copied()
        .ok_or_else(|| PromqlError::bad_data(format!("argument {} is missing", i + 1)))
}

fn matrix_arg<'a>(args: &[&'a Expr], i: usize) -> Result<&'a MatrixSelector, PromqlError> {
    match arg(args, i)? {
        Expr::MatrixSelector(ms) => Ok(ms),
        Expr::Subquery(_) => Err(PromqlError::unsupported("a subquery")),
        other => Err(PromqlError::bad_data(format!(
            "expected a range vector selector, got {other}"
        ))),
    }
}

/// A scalar argument that must be the same at every step (a quantile, a
/// bound): its first value.
fn constant_scalar(ev: &Evaluator<'_>, args: &[&Expr], i: usize) -> Result<f64, PromqlError> {
    Ok(ev
        .scalar(arg(args, i)?)?
        .first()
        .copied()
        .unwrap_or(f64::NAN))
}

fn over(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    keep_name: bool,
    f: impl FnMut(&[(i64, f64)], i64, i64) -> Option<f64>,
) -> Result<Value, PromqlError> {
    Ok(Value::Vector(ev.over_windows(
        matrix_arg(args, 0)?,
        keep_name,
        f,
    )))
}

fn over_time(
    ev: &Evaluator<'_>,
    args: &[&Expr],
    aggregation: OverTime,
) -> Result<Value, PromqlError> {
    over(ev, args, false, |w, _, _| aggregation.apply(w))
}

/// An instant function applied to every sample; `__name__` is dropped.
fn map(ev: &Evaluator<'_>, args: &[&Expr], f: impl Fn(f64) -> f64) -> Result<Value, PromqlError> {
    let series = ev.vector(arg(args, 0)?)?;
    Ok(Value::Vector(
        series
            .into_iter()
            .map(|s| StepSeries {
                labels: s.labels.without_name(),
                values: s.values.into_iter().map(|v| v.map(&f)).collect(),
            })
            .collect(),
    ))
}

/// `absent(v)`: 1 at the steps where `v` has no sample, labelled with
/// the selector's equality matchers.
fn absent(
    ev: &Evaluator<'_>,
    matchers: &[promql_parser::label::Matcher],
    series: &[StepSeries],
) -> Value {
    let values: Vec<Option<f64>> = (0..ev.steps.len())
        .map(|i| (!series.iter().any(|s| s.values[i].is_some())).then_some(1.0))
        .collect();
    if values.iter().all(Option::is_none) {
        return Value::Vector(Vec::new());
    }
    let mut labels = Labels::default();
    let mut repeated = Vec::new();
    for m in matchers {
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && m.name != METRIC_NAME {
            if labels.get(&m.name).is_some() {
                repeated.push(m.name.clone());
            }
            labels.set(&m.name, &m.value);
        }
    }
    for name in repeated {
        labels.remove(&name);
    }
    Value::Vector(vec![StepSeries { labels, values }])
}

fn string_arg(args: &[&Expr], i: usize) -> Result<String, PromqlError> {
    match arg(args, i)? {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        Expr::Paren(p) => match p.expr.as_ref() {
            Expr::StringLiteral(s) => Ok(s.val.clone()),
            _ => Err(PromqlError::bad_data(format!(
                "argument {} must be a string",
                i + 1
            ))),
        },
        _ => Err(PromqlError::bad_data(format!(
            "argument {} must be a string",
            i + 1
        ))),
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `label_replace(v, dst, replacement, src, regex)`.
fn label_replace(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Value, PromqlError> {
    let series = ev.vector(arg(args, 0)?)?;
    let (dst, replacement, src, pattern) = (
        string_arg(args, 1)?,
        string_arg(args, 2)?,
        string_arg(args, 3)?,
        string_arg(args, 4)?,
    );
    if !valid_label_name(&dst) {
        return Err(PromqlError::execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    let regex = AnchoredRegex::new(pattern, &RegexLimits::default()).map_err(|e| {
        PromqlError::execution(format!(
            "invalid regular expression in label_replace(): {e}"
        ))
    })?;
    Ok(Value::Vector(
        series
            .into_iter()
            .map(|mut s| {
                let source = s.labels.value(&src).to_owned();
                if let Some(captures) = regex.captures(&source) {
                    let mut value = String::new();
                    // Go's `$1`, `${1}` and `$name` are the regex crate's.
                    captures.expand(&replacement, &mut value);
                    s.labels.set(&dst, &value);
                }
                s
            })
            .collect(),
    ))
}

/// `label_join(v, dst, separator, src...)`.
fn label_join(ev: &Evaluator<'_>, args: &[&Expr]) -> Result<Value, PromqlError> {
    let series = ev.vector(arg(args, 0)?)?;
    let dst = string_arg(args, 1)?;
    let separator = string_arg(args, 2)?;
    let sources = (3..args.len())
        .map(|i| string_arg(args, i))
        .collect::<Result<Vec<_>, _>>()?;
    if !valid_label_name(&dst) {
        return Err(PromqlError::execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    Ok(Value::Vector(
        series
            .into_iter()
            .map(|mut s| {
                let joined: Vec<&str> = sources.iter().map(|src| s.labels.value(src)).collect();
                let joined = joined.join(&separator);
                s.labels.set(&dst, &joined);
                s
            })
            .collect(),
    ))
}
