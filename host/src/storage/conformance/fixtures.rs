//! Small builders that keep the cases readable.

use crate::model::{
    AggregateQuery, Aggregation, Dimensions, Filter, FilterOp, Metric, RangeQuery, RateQuery,
    Selector, TenantId, TimeRange,
};

/// An hour boundary (2023-11-14T22:00:00Z): cases place points relative to it.
pub const BASE_MS: i64 = 1_699_999_200_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).expect("valid test tenant")
}

pub fn dims(pairs: &[(&str, &str)]) -> Dimensions {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn metric(name: &str, timestamp_ms: i64, value: f64, pairs: &[(&str, &str)]) -> Metric {
    Metric {
        name: name.to_string(),
        value,
        timestamp_ms,
        dimensions: dims(pairs),
    }
}

/// A range that holds every point the cases write.
pub fn all_time() -> TimeRange {
    TimeRange {
        start_ms: BASE_MS - 30 * DAY,
        end_ms: BASE_MS + 30 * DAY,
    }
}

pub fn range(start_ms: i64, end_ms: i64) -> TimeRange {
    TimeRange { start_ms, end_ms }
}

pub fn select(metric: &str, range: TimeRange, filters: Vec<Filter>) -> Selector {
    Selector {
        metric: metric.to_string(),
        range,
        filters,
        budget: crate::model::QueryBudget::UNLIMITED,
    }
}

pub fn aggregate(
    selector: Selector,
    aggregation: Aggregation,
    group_by: &[&str],
) -> AggregateQuery {
    AggregateQuery {
        selector,
        aggregation,
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        limit: None,
    }
}

pub fn raw_range(selector: Selector) -> RangeQuery {
    RangeQuery {
        selector,
        step: None,
        group_by: None,
        limit: None,
        sorted: true,
    }
}

pub fn rate(selector: Selector, step_ms: i64) -> RateQuery {
    RateQuery {
        selector,
        step_ms,
        group_by: None,
        limit: None,
    }
}

pub fn group_keys(keys: &[&str]) -> Option<Vec<String>> {
    Some(keys.iter().map(|s| s.to_string()).collect())
}

pub fn eq(key: &str, value: &str) -> Filter {
    Filter {
        key: key.to_string(),
        op: FilterOp::Eq(value.to_string()),
    }
}

pub fn not_eq(key: &str, value: &str) -> Filter {
    Filter {
        key: key.to_string(),
        op: FilterOp::NotEq(value.to_string()),
    }
}

pub fn matches(key: &str, pattern: &str) -> Filter {
    Filter::regex(key.to_string(), pattern.to_string(), false).expect("valid test regex")
}

pub fn not_matches(key: &str, pattern: &str) -> Filter {
    Filter::regex(key.to_string(), pattern.to_string(), true).expect("valid test regex")
}

pub fn one_of(key: &str, values: &[&str]) -> Filter {
    Filter {
        key: key.to_string(),
        op: FilterOp::In(values.iter().map(|s| s.to_string()).collect()),
    }
}

/// Every built-in aggregation, with the percentiles the API documents.
pub fn every_aggregation() -> Vec<Aggregation> {
    use Aggregation::*;
    vec![
        Count,
        Sum,
        Avg,
        Min,
        Max,
        Percentile(0.0),
        Percentile(0.5),
        Percentile(0.9),
        Percentile(0.95),
        Percentile(0.99),
        Percentile(0.999),
        Percentile(1.0),
    ]
}

/// A reproducible mixed data set: `series` series of `metric` with `host`
/// (always), `endpoint` (missing on every 7th series) and `region` (on
/// every other), `points` points each spread over three hours, values
/// with duplicates, negatives and a wide spread.
pub fn random_metrics(metric_name: &str, series: usize, points: usize, seed: u64) -> Vec<Metric> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let endpoints = ["/api/query", "/api/write", "/healthz", "/a.b", "/a+b"];
    let mut out = Vec::with_capacity(series * points);
    for s in 0..series {
        let host = format!("host-{}", s % 6);
        let endpoint = endpoints[s % endpoints.len()];
        let region = if s % 3 == 0 { "eu" } else { "us" };
        let series_name = format!("s{s}");
        let mut pairs = vec![("host", host.as_str()), ("series", series_name.as_str())];
        if s % 7 != 0 {
            pairs.push(("endpoint", endpoint));
        }
        if s % 2 == 0 {
            pairs.push(("region", region));
        }
        for p in 0..points {
            let ts = BASE_MS + rng.random_range(0..3 * HOUR) + (p as i64 % 2);
            let value = match rng.random_range(0..10) {
                0 => -(rng.random_range(0..1000) as f64),
                1 => 42.0,
                _ => rng.random_range(0.0..1e6_f64).round() / 1000.0,
            };
            out.push(metric(metric_name, ts, value, &pairs));
        }
    }
    out
}
