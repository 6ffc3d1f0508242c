//! Binary operators: arithmetic, comparisons (filtering, or `bool`) and
//! the set operators, between scalars and vectors, with Prometheus'
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`).

use std::collections::HashMap;

use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::error::PromqlError;
use super::eval::{Evaluator, unique};
use super::labels::Labels;
use super::value::{StepSeries, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Arithmetic,
    Comparison,
    Set,
}

fn kind(op: &str) -> Kind {
    match op {
        "==" | "!=" | ">" | "<" | ">=" | "<=" => Kind::Comparison,
        "and" | "or" | "unless" => Kind::Set,
        _ => Kind::Arithmetic,
    }
}

/// `lhs op rhs` on numbers: the value, and whether a comparison holds.
fn apply(op: &str, lhs: f64, rhs: f64) -> (f64, bool) {
    match op {
        "+" => (lhs + rhs, true),
        "-" => (lhs - rhs, true),
        "*" => (lhs * rhs, true),
        "/" => (lhs / rhs, true),
        // Go's math.Mod: the sign of the dividend, as Rust's `%`.
        "%" => (lhs % rhs, true),
        "^" => (lhs.powf(rhs), true),
        "atan2" => (lhs.atan2(rhs), true),
        "==" => (lhs, lhs == rhs),
        "!=" => (lhs, lhs != rhs),
        ">" => (lhs, lhs > rhs),
        "<" => (lhs, lhs < rhs),
        ">=" => (lhs, lhs >= rhs),
        "<=" => (lhs, lhs <= rhs),
        _ => (f64::NAN, false),
    }
}

pub fn binary(ev: &Evaluator<'_>, b: &BinaryExpr) -> Result<Value, PromqlError> {
    let op = b.op.to_string();
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    let value = match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => Value::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&l, &r)| {
                    let (value, holds) = apply(&op, l, r);
                    if kind(&op) == Kind::Comparison {
                        f64::from(u8::from(holds))
                    } else {
                        value
                    }
                })
                .collect(),
        ),
        (Value::Vector(v), Value::Scalar(s)) => {
            Value::Vector(vector_scalar(&op, v, &s, false, return_bool)?)
        }
        (Value::Scalar(s), Value::Vector(v)) => {
            Value::Vector(vector_scalar(&op, v, &s, true, return_bool)?)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            let modifier = b.modifier.as_ref();
            let result = match kind(&op) {
                Kind::Set => set_operation(&op, l, r, modifier),
                _ => vector_vector(&op, l, r, modifier, return_bool)?,
            };
            Value::Vector(result)
        }
        (l, r) => {
            return Err(PromqlError::bad_data(format!(
                "binary operator {op} between a {} and a {}",
                l.type_name(),
                r.type_name()
            )));
        }
    };
    unique(value)
}

fn vector_scalar(
    op: &str,
    vector: Vec<StepSeries>,
    scalar: &[f64],
    scalar_on_left: bool,
    return_bool: bool,
) -> Result<Vec<StepSeries>, PromqlError> {
    if kind(op) == Kind::Set {
        return Err(PromqlError::bad_data(format!(
            "set operator {op} needs vectors on both sides"
        )));
    }
    let drop_name = kind(op) == Kind::Arithmetic || return_bool;
    Ok(vector
        .into_iter()
        .filter_map(|s| {
            let values: Vec<Option<f64>> = s
                .values
                .iter()
                .zip(scalar)
                .map(|(value, &scalar)| {
                    let v = (*value)?;
                    let (l, r) = if scalar_on_left {
                        (scalar, v)
                    } else {
                        (v, scalar)
                    };
                    let (mut result, holds) = apply(op, l, r);
                    if kind(op) == Kind::Comparison {
                        // The vector's sample is the output, whichever side
                        // it is on.
                        result = v;
                        if return_bool {
                            return Some(f64::from(u8::from(holds)));
                        }
                        return holds.then_some(result);
                    }
                    Some(result)
                })
                .collect();
            values.iter().any(Option::is_some).then(|| StepSeries {
                labels: if drop_name {
                    s.labels.without_name()
                } else {
                    s.labels
                },
                values,
            })
        })
        .collect())
}

/// The labels two samples are matched on.
fn signature(labels: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(names)) => labels.keep(&names.labels),
        Some(LabelModifier::Exclude(names)) => labels.drop(&names.labels),
        None => labels.drop(&[]),
    }
}

fn set_operation(
    op: &str,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    modifier: Option<&BinModifier>,
) -> Vec<StepSeries> {
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let steps = lhs.first().or(rhs.first()).map_or(0, |s| s.values.len());
    let rhs_signatures: Vec<Labels> = rhs.iter().map(|s| signature(&s.labels, matching)).collect();
    let lhs_signatures: Vec<Labels> = lhs.iter().map(|s| signature(&s.labels, matching)).collect();
    let present_at = |series: &[StepSeries], signatures: &[Labels], sig: &Labels, step: usize| {
        series
            .iter()
            .zip(signatures)
            .any(|(s, other)| other == sig && s.values[step].is_some())
    };
    let mut out = Vec::new();
    match op {
        "and" | "unless" => {
            let keep_matched = op == "and";
            for (s, sig) in lhs.iter().zip(&lhs_signatures) {
                let values: Vec<Option<f64>> = (0..steps)
                    .map(|i| {
                        let matched = present_at(&rhs, &rhs_signatures, sig, i);
                        s.values[i].filter(|_| matched == keep_matched)
                    })
                    .collect();
                if values.iter().any(Option::is_some) {
                    out.push(StepSeries {
                        labels: s.labels.clone(),
                        values,
                    });
                }
            }
        }
        _ => {
            out.extend(lhs.iter().cloned());
            for (s, sig) in rhs.iter().zip(&rhs_signatures) {
                let values: Vec<Option<f64>> = (0..steps)
                    .map(|i| s.values[i].filter(|_| !present_at(&lhs, &lhs_signatures, sig, i)))
                    .collect();
                if values.iter().any(Option::is_some) {
                    out.push(StepSeries {
                        labels: s.labels.clone(),
                        values,
                    });
                }
            }
        }
    }
    out
}

fn vector_vector(
    op: &str,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    modifier: Option<&BinModifier>,
    return_bool: bool,
) -> Result<Vec<StepSeries>, PromqlError> {
    let card = modifier.map_or(&VectorMatchCardinality::OneToOne, |m| &m.card);
    let matching = modifier.and_then(|m| m.matching.as_ref());
    // group_right is group_left with the sides swapped; the operator
    // still sees them in their written order.
    let (many, one, swapped, include) = match card {
        VectorMatchCardinality::OneToMany(include) => (rhs, lhs, true, include.labels.clone()),
        VectorMatchCardinality::ManyToOne(include) => (lhs, rhs, false, include.labels.clone()),
        _ => (lhs, rhs, false, Vec::new()),
    };
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let steps = many.first().or(one.first()).map_or(0, |s| s.values.len());
    let one_signatures: Vec<Labels> = one.iter().map(|s| signature(&s.labels, matching)).collect();
    let drop_name = kind(op) == Kind::Arithmetic || return_bool;

    // One output series per (many-side series, one-side series) pair that
    // ever matches; their labels decide the output's.
    let mut out: HashMap<Labels, StepSeries> = HashMap::new();
    let mut order = Vec::new();
    for step in 0..steps {
        let mut by_signature: HashMap<&Labels, usize> = HashMap::new();
        for (j, s) in one.iter().enumerate() {
            if s.values[step].is_some() && by_signature.insert(&one_signatures[j], j).is_some() {
                let side = if swapped { "left" } else { "right" };
                return Err(PromqlError::execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: many-to-many matching not allowed: matching labels must be unique on one side",
                    one_signatures[j]
                )));
            }
        }
        let mut matched_one: HashMap<usize, usize> = HashMap::new();
        for (i, s) in many.iter().enumerate() {
            let Some(many_value) = s.values[step] else {
                continue;
            };
            let sig = signature(&s.labels, matching);
            let Some(&j) = by_signature.get(&sig) else {
                continue;
            };
            if one_to_one && matched_one.insert(j, i).is_some() {
                return Err(PromqlError::execution(format!(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right): {sig}"
                )));
            }
            let Some(one_value) = one[j].values[step] else {
                continue;
            };
            let (l, r) = if swapped {
                (one_value, many_value)
            } else {
                (many_value, one_value)
            };
            let (mut value, holds) = apply(op, l, r);
            if kind(op) == Kind::Comparison {
                if return_bool {
                    value = f64::from(u8::from(holds));
                } else if !holds {
                    continue;
                } else {
                    // The filtered sample is the many side's (lhs for
                    // one-to-one and group_left, rhs for group_right).
                    value = many_value;
                }
            }
            let labels = result_labels(
                &s.labels,
                &one[j].labels,
                matching,
                one_to_one,
                &include,
                drop_name,
            );
            let entry = out.entry(labels.clone()).or_insert_with(|| {
                order.push(labels.clone());
                StepSeries {
                    labels,
                    values: vec![None; steps],
                }
            });
            if entry.values[step].is_some() {
                return Err(PromqlError::execution(format!(
                    "multiple matches for labels: grouping labels must ensure unique matches: {}",
                    entry.labels
                )));
            }
            entry.values[step] = Some(value);
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|labels| out.remove(&labels))
        .collect())
}

/// The output labels of a matched pair, as Prometheus' `resultMetric`.
fn result_labels(
    many: &Labels,
    one: &Labels,
    matching: Option<&LabelModifier>,
    one_to_one: bool,
    include: &[String],
    drop_name: bool,
) -> Labels {
    let mut labels = many.clone();
    if drop_name {
        labels = labels.without_name();
    }
    if one_to_one {
        labels = match matching {
            Some(LabelModifier::Include(names)) => labels.keep(&names.labels),
            Some(LabelModifier::Exclude(names)) => {
                let mut kept = labels.clone();
                for name in &names.labels {
                    kept.remove(name);
                }
                kept
            }
            None => labels,
        };
    }
    for name in include {
        labels.set(name, one.value(name));
    }
    labels
}
