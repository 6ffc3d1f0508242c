//! Before evaluation: which series each selector needs over which time
//! range, fetched from storage through the read pipeline (so tenant
//! scoping and `_tenant_id` are the JSON API's), within the query's own
//! series and samples limits.

use std::collections::BTreeMap;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, VectorSelector};

use super::PromqlLimits;
use super::error::{PromqlError, too_many_samples, too_many_series};
use super::eval::{Fetched, duration_ms, offset_ms, system_time_ms};
use super::labels::{Labels, METRIC_NAME};
use super::value::{RawSeries, Steps};
use crate::model::{
    BudgetExceeded, Filter, FilterOp, QueryBudget, RangeQuery, RegexLimits, Selector, TenantId,
    TimeRange,
};
use crate::pipeline::read::{ReadError, ReadPipeline};
use crate::storage::StorageError;

/// A selector and the time range its evaluation reads, both ends
/// included.
#[derive(Clone, Debug)]
pub struct Selection {
    pub selector: VectorSelector,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Every selector of `expr` (keyed by its text: the same selector twice
/// is fetched once) with the range its windows cover at `steps`.
pub fn selections(
    expr: &Expr,
    steps: &Steps,
    lookback_ms: i64,
) -> Result<BTreeMap<String, Selection>, PromqlError> {
    let mut out = BTreeMap::new();
    collect(expr, steps, lookback_ms, &mut out)?;
    Ok(out)
}

fn collect(
    expr: &Expr,
    steps: &Steps,
    lookback_ms: i64,
    out: &mut BTreeMap<String, Selection>,
) -> Result<(), PromqlError> {
    match expr {
        Expr::VectorSelector(vs) => add(vs, lookback_ms, steps, out),
        Expr::MatrixSelector(ms) => add(&ms.vs, duration_ms(ms.range), steps, out),
        Expr::Aggregate(a) => {
            if let Some(param) = &a.param {
                collect(param, steps, lookback_ms, out)?;
            }
            collect(&a.expr, steps, lookback_ms, out)
        }
        Expr::Unary(u) => collect(&u.expr, steps, lookback_ms, out),
        Expr::Binary(b) => {
            collect(&b.lhs, steps, lookback_ms, out)?;
            collect(&b.rhs, steps, lookback_ms, out)
        }
        Expr::Paren(p) => collect(&p.expr, steps, lookback_ms, out),
        Expr::Call(c) => {
            for arg in &c.args.args {
                collect(arg, steps, lookback_ms, out)?;
            }
            Ok(())
        }
        Expr::Subquery(_) => Err(PromqlError::unsupported("a subquery")),
        Expr::Extension(_) => Err(PromqlError::unsupported("an extension expression")),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
    }
}

fn add(
    vs: &VectorSelector,
    window_ms: i64,
    steps: &Steps,
    out: &mut BTreeMap<String, Selection>,
) -> Result<(), PromqlError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(PromqlError::unsupported("`or` inside a selector's braces"));
    }
    let time = |t: i64| {
        let base = match &vs.at {
            None => t,
            Some(promql_parser::parser::AtModifier::Start) => steps.start_ms,
            Some(promql_parser::parser::AtModifier::End) => steps.end_ms,
            Some(promql_parser::parser::AtModifier::At(at)) => system_time_ms(*at),
        };
        base.saturating_sub(offset_ms(vs.offset.as_ref()))
    };
    let (first, last) = (time(steps.start_ms), time(steps.end_ms));
    let (start_ms, end_ms) = (first.min(last).saturating_sub(window_ms), first.max(last));
    out.entry(vs.to_string())
        .and_modify(|s: &mut Selection| {
            s.start_ms = s.start_ms.min(start_ms);
            s.end_ms = s.end_ms.max(end_ms);
        })
        .or_insert_with(|| Selection {
            selector: vs.clone(),
            start_ms,
            end_ms,
        });
    Ok(())
}

/// The metric names a selector's `__name__` matchers allow, among the
/// tenant's metrics when they are not one exact name.
fn metric_names(vs: &VectorSelector, known: impl FnOnce() -> Vec<String>) -> Vec<String> {
    let name_matchers: Vec<&Matcher> = vs
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name == METRIC_NAME)
        .collect();
    let exact = vs.name.clone().or_else(|| {
        name_matchers
            .iter()
            .find(|m| matches!(m.op, MatchOp::Equal))
            .map(|m| m.value.clone())
    });
    let candidates = match exact {
        Some(name) => vec![name],
        None => known(),
    };
    candidates
        .into_iter()
        .filter(|name| name_matchers.iter().all(|m| m.is_match(name)))
        .collect()
}

/// The storage filters of a selector's label matchers (not `__name__`).
fn filters(vs: &VectorSelector, regex_limits: &RegexLimits) -> Result<Vec<Filter>, PromqlError> {
    vs.matchers
        .matchers
        .iter()
        .filter(|m| m.name != METRIC_NAME)
        .map(|m| {
            let (key, value) = (m.name.clone(), m.value.clone());
            Ok(match &m.op {
                MatchOp::Equal => Filter {
                    key,
                    op: FilterOp::Eq(value),
                },
                MatchOp::NotEqual => Filter {
                    key,
                    op: FilterOp::NotEq(value),
                },
                MatchOp::Re(_) | MatchOp::NotRe(_) => {
                    let negate = matches!(m.op, MatchOp::NotRe(_));
                    Filter::regex_within(key, value, negate, regex_limits).map_err(|e| {
                        PromqlError::bad_data(format!("invalid regular expression in {m}: {e}"))
                    })?
                }
            })
        })
        .collect()
}

/// Reads every selection's series for `tenant`, within `limits`' series
/// and samples.
pub async fn fetch(
    reads: &ReadPipeline,
    tenant: &TenantId,
    selections: BTreeMap<String, Selection>,
    limits: &PromqlLimits,
) -> Result<Fetched, PromqlError> {
    let max_series = limits.max_series;
    let mut known_metrics = None;
    let mut fetched = Fetched::new();
    let mut total_series = 0usize;
    let mut samples_left = limits.max_samples as u64;
    for (key, selection) in selections {
        let vs = &selection.selector;
        if vs.matchers.matchers.iter().all(|m| m.is_match("")) && vs.name.is_none() {
            return Err(PromqlError::bad_data(
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        let needs_all = vs.name.is_none()
            && !vs
                .matchers
                .matchers
                .iter()
                .any(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal));
        if needs_all && known_metrics.is_none() {
            known_metrics = Some(reads.list_metrics(tenant).await.map_err(read_error)?);
        }
        let names = metric_names(vs, || known_metrics.clone().unwrap_or_default());
        let filters = filters(vs, &reads.limits().regex())?;
        let mut series = Vec::new();
        for name in names {
            let query = RangeQuery {
                selector: Selector {
                    metric: name.clone(),
                    range: TimeRange {
                        start_ms: selection.start_ms,
                        end_ms: selection.end_ms.saturating_add(1),
                    },
                    filters: filters.clone(),
                    budget: QueryBudget::UNLIMITED,
                },
                step: None,
                group_by: None,
                limit: Some(max_series),
                sorted: false,
            };
            let result = reads
                .range_within(tenant, query, samples_left)
                .await
                .map_err(|e| match e {
                    ReadError::Storage(StorageError::TooLarge(
                        BudgetExceeded::PointsReturned { .. },
                    )) => too_many_samples(limits.max_samples),
                    other => read_error(other),
                })?;
            if result.truncated {
                return Err(too_many_series(max_series));
            }
            total_series += result.series.len();
            if total_series > max_series {
                return Err(too_many_series(max_series));
            }
            let points: usize = result.series.iter().map(|s| s.points.len()).sum();
            samples_left = samples_left
                .checked_sub(points as u64)
                .ok_or_else(|| too_many_samples(limits.max_samples))?;
            series.extend(result.series.into_iter().map(|s| RawSeries {
                labels: Labels::of_series(&name, &s.dimensions),
                points: s.points,
            }));
        }
        fetched.insert(key, series);
    }
    Ok(fetched)
}

fn read_error(e: ReadError) -> PromqlError {
    match e {
        ReadError::Storage(e) => PromqlError::Storage(e),
        other => PromqlError::execution(other.to_string()),
    }
}
