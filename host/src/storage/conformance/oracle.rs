//! Brute-force answers: the query semantics of `model::query`, written as
//! plainly as possible over the list of metrics a case wrote (to one
//! tenant). Independent of `storage::compute` on purpose, so a bug there
//! cannot hide by being on both sides.

use std::collections::BTreeMap;

use crate::model::{
    AggregateQuery, AggregateResult, AggregateRow, Aggregation, Dimensions, Metric, RangeQuery,
    RateQuery, Selector, Series, SeriesResult,
};

fn selected<'a>(metrics: &'a [Metric], s: &Selector) -> Vec<&'a Metric> {
    metrics
        .iter()
        .filter(|m| m.name == s.metric && s.range.contains(m.timestamp_ms))
        .filter(|m| {
            s.filters
                .iter()
                .all(|f| f.matches(m.dimensions.get(&f.key)))
        })
        .collect()
}

fn group(d: &Dimensions, keys: &[String]) -> Vec<Option<String>> {
    keys.iter().map(|k| d.get(k).map(String::from)).collect()
}

fn group_dims(keys: &[String], g: &[Option<String>]) -> Dimensions {
    let mut d = Dimensions::new();
    for (k, v) in keys.iter().zip(g) {
        if let Some(v) = v {
            d.insert(k.clone(), v.clone());
        }
    }
    d
}

/// The aggregation by definition: sort, then read off.
pub fn aggregate_values(aggregation: Aggregation, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(match aggregation {
        Aggregation::Count => n as f64,
        Aggregation::Sum => sorted.iter().sum(),
        Aggregation::Avg => sorted.iter().sum::<f64>() / n as f64,
        Aggregation::Min => sorted[0],
        Aggregation::Max => sorted[n - 1],
        Aggregation::Percentile(q) => sorted[((q * n as f64).floor() as usize).min(n - 1)],
    })
}

fn sorted_points(mut points: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    points
}

fn bucket(ts: i64, step: i64) -> i64 {
    ts.div_euclid(step) * step
}

fn limited<T>(mut items: Vec<T>, limit: Option<usize>) -> (Vec<T>, bool) {
    let truncated = limit.is_some_and(|l| items.len() > l);
    if let Some(l) = limit {
        items.truncate(l);
    }
    (items, truncated)
}

pub fn aggregate(metrics: &[Metric], q: &AggregateQuery) -> AggregateResult {
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<f64>> = BTreeMap::new();
    for m in selected(metrics, &q.selector) {
        groups
            .entry(group(&m.dimensions, &q.group_by))
            .or_default()
            .push(m.value);
    }
    let rows = groups
        .into_iter()
        .filter_map(|(g, values)| {
            aggregate_values(q.aggregation, &values).map(|value| AggregateRow { group: g, value })
        })
        .collect();
    let (rows, truncated) = limited(rows, q.limit);
    AggregateResult { rows, truncated }
}

/// Points per series (or per group when `group_by`), keyed by the
/// dimensions they are reported with.
fn series_points(
    metrics: &[Metric],
    s: &Selector,
    group_by: Option<&[String]>,
) -> BTreeMap<Dimensions, BTreeMap<Dimensions, Vec<(i64, f64)>>> {
    let mut out: BTreeMap<Dimensions, BTreeMap<Dimensions, Vec<(i64, f64)>>> = BTreeMap::new();
    for m in selected(metrics, s) {
        let reported = match group_by {
            Some(keys) => group_dims(keys, &group(&m.dimensions, keys)),
            None => m.dimensions.clone(),
        };
        out.entry(reported)
            .or_default()
            .entry(m.dimensions.clone())
            .or_default()
            .push((m.timestamp_ms, m.value));
    }
    out
}

pub fn range(metrics: &[Metric], q: &RangeQuery) -> SeriesResult {
    let mut series = Vec::new();
    for (dims, members) in series_points(metrics, &q.selector, q.group_by.as_deref()) {
        let points = sorted_points(members.into_values().flatten().collect());
        let points = match q.step {
            None => points,
            Some((step, agg)) => {
                let mut buckets: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for (ts, v) in points {
                    buckets.entry(bucket(ts, step)).or_default().push(v);
                }
                buckets
                    .into_iter()
                    .filter_map(|(b, vs)| aggregate_values(agg, &vs).map(|x| (b, x)))
                    .collect()
            }
        };
        if !points.is_empty() {
            series.push(Series {
                dimensions: dims,
                points,
            });
        }
    }
    let (series, truncated) = limited(series, q.limit);
    SeriesResult { series, truncated }
}

pub fn rate(metrics: &[Metric], q: &RateQuery) -> SeriesResult {
    let mut series = Vec::new();
    for (dims, members) in series_points(metrics, &q.selector, q.group_by.as_deref()) {
        let mut increases: BTreeMap<i64, f64> = BTreeMap::new();
        for points in members.into_values() {
            let points = sorted_points(points);
            for i in 1..points.len() {
                let (prev, (ts, v)) = (points[i - 1].1, points[i]);
                let inc = if v < prev { v } else { v - prev };
                *increases.entry(bucket(ts, q.step_ms)).or_default() += inc;
            }
        }
        let seconds = q.step_ms as f64 / 1000.0;
        let points: Vec<(i64, f64)> = increases
            .into_iter()
            .map(|(b, inc)| (b, inc / seconds))
            .collect();
        if !points.is_empty() {
            series.push(Series {
                dimensions: dims,
                points,
            });
        }
    }
    let (series, truncated) = limited(series, q.limit);
    SeriesResult { series, truncated }
}

/// Equal up to floating-point summation order: sums and averages may be
/// added up in any order, so they agree to ~1e-9 relative, not bit for bit.
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
pub fn assert_rows_match(actual: &AggregateResult, expected: &AggregateResult, context: &str) {
    assert_eq!(
        actual.truncated, expected.truncated,
        "truncated flag: {context}"
    );
    let groups = |r: &AggregateResult| r.rows.iter().map(|r| r.group.clone()).collect::<Vec<_>>();
    assert_eq!(groups(actual), groups(expected), "groups: {context}");
    for (a, e) in actual.rows.iter().zip(&expected.rows) {
        assert!(
            close(a.value, e.value),
            "{context}: group {:?}: got {}, expected {}",
            a.group,
            a.value,
            e.value
        );
    }
}

#[track_caller]
pub fn assert_series_match(actual: &SeriesResult, expected: &SeriesResult, context: &str) {
    assert_eq!(
        actual.truncated, expected.truncated,
        "truncated flag: {context}"
    );
    let dims = |r: &SeriesResult| {
        r.series
            .iter()
            .map(|s| s.dimensions.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(dims(actual), dims(expected), "series: {context}");
    for (a, e) in actual.series.iter().zip(&expected.series) {
        let times = |s: &Series| s.points.iter().map(|p| p.0).collect::<Vec<_>>();
        assert_eq!(
            times(a),
            times(e),
            "{context}: timestamps of {:?}",
            a.dimensions
        );
        for (pa, pe) in a.points.iter().zip(&e.points) {
            assert!(
                close(pa.1, pe.1),
                "{context}: {:?} at {}: got {}, expected {}",
                a.dimensions,
                pa.0,
                pa.1,
                pe.1
            );
        }
    }
}
