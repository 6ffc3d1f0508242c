//! `POST /api/v1/query`: one endpoint, three query types.
//!
//! The body is deserialized into typed, bounded fields (`query_body.rs`),
//! then checked field by field so that each mistake gets its own code and a
//! message that says what to send instead. The result is a `model` query;
//! the read pipeline checks limits, scopes it to the tenant and runs it.
//! Decoding and parsing (regex compilation included) run on the blocking
//! pool, never on an async worker.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::Serializer;
use serde::ser::{SerializeMap, SerializeStruct};
use serde_json::Value;

use super::extract::{RawBody, json_error};
use super::query_body::{
    AggregationBody, Bounded, FilterBody, FilterValue, MAX_FILTERS, MAX_GROUP_BY, MAX_IN_VALUES,
    PluginSpec, QueryRequest, Scalar, TimeRangeBody,
};
use super::timestamp::{now_ms, parse_timestamp_json};
use super::{ApiError, AppState, Tenant};
use crate::model::{
    AggregateQuery, AggregateResult, Aggregation, Dimensions, Filter, FilterOp, QueryBudget,
    RangeQuery, RateQuery, RegexError, RegexLimits, Selector, SeriesResult, TimeRange,
    is_valid_key, is_valid_name, parse_duration_ms,
};
use crate::pipeline::PluginAggregateQuery;

/// A parsed query, ready for the read pipeline.
#[derive(Debug)]
pub enum ParsedQuery {
    Aggregate(AggregateQuery),
    PluginAggregate(PluginAggregateQuery),
    Range(RangeQuery),
    Rate(RateQuery),
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// Reads a query body: wrong shapes name the field (`filters[2].op: ...`).
pub fn decode_query_body(bytes: &[u8]) -> Result<QueryRequest, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let request = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut error = json_error(inner);
        if path != "." && error.code == "invalid_request" {
            error.message = format!("{path}: {}", error.message);
        }
        error
    })?;
    de.end().map_err(json_error)?;
    Ok(request)
}

impl QueryRequest {
    /// Checks every field and builds the model query. `now_ms` anchors
    /// relative time ranges.
    pub fn parse(self, now_ms: i64, regex: &RegexLimits) -> Result<ParsedQuery, ApiError> {
        let query_type = self.query_type.as_deref().ok_or_else(|| {
            invalid(
                "missing_field",
                "queryType is required: one of aggregate, range, rate",
            )
        })?;
        let selector = Selector {
            metric: parse_metric_name(self.metric_name.as_deref())?,
            range: parse_time_range(self.time_range.as_ref(), now_ms)?,
            filters: parse_filters(self.filters, regex)?,
            // The read pipeline sets the server's budget.
            budget: QueryBudget::UNLIMITED,
        };
        if self.limit == Some(0) {
            return Err(invalid("invalid_limit", "limit must be at least 1"));
        }
        let step_ms = self.step.as_deref().map(parse_step).transpose()?;
        let group_by = self.group_by.map(parse_group_by).transpose()?;
        match query_type {
            "aggregate" => {
                if step_ms.is_some() {
                    return Err(invalid(
                        "unexpected_field",
                        "step applies to range and rate queries, not aggregate",
                    ));
                }
                let group_by = group_by.unwrap_or_default();
                if group_by.iter().any(|k| k == "value") {
                    return Err(invalid(
                        "invalid_group_by",
                        "an aggregate cannot group by a dimension named \"value\": each result row already has a \"value\" field",
                    ));
                }
                match self.aggregation {
                    None => Err(invalid(
                        "missing_field",
                        "aggregation is required for an aggregate query: count, sum, avg, min, max or pNN (e.g. p95, p99.9)",
                    )),
                    Some(AggregationBody::Plugin(spec)) => Ok(ParsedQuery::PluginAggregate(
                        parse_plugin_aggregation(spec, selector, group_by, self.limit)?,
                    )),
                    Some(AggregationBody::Builtin(name)) => {
                        Ok(ParsedQuery::Aggregate(AggregateQuery {
                            selector,
                            aggregation: parse_aggregation(&name.to_value())?,
                            group_by,
                            limit: self.limit,
                        }))
                    }
                }
            }
            "range" => {
                let aggregation = match &self.aggregation {
                    None => None,
                    Some(AggregationBody::Builtin(name)) => {
                        Some(parse_aggregation(&name.to_value())?)
                    }
                    Some(AggregationBody::Plugin(_)) => {
                        return Err(invalid(
                            "invalid_aggregation",
                            "plugin aggregations apply to aggregate queries; a range query takes count, sum, avg, min, max or pNN per step",
                        ));
                    }
                };
                let step = match (step_ms, aggregation) {
                    (Some(step), Some(aggregation)) => Some((step, aggregation)),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(invalid(
                            "missing_field",
                            "a range query with a step needs an aggregation to apply per bucket (e.g. \"avg\")",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            "missing_field",
                            "a range query with an aggregation needs a step (e.g. \"1m\"); without both it returns raw points",
                        ));
                    }
                };
                Ok(ParsedQuery::Range(RangeQuery {
                    selector,
                    step,
                    group_by,
                    limit: self.limit,
                    sorted: true,
                }))
            }
            "rate" => {
                if self.aggregation.is_some() {
                    return Err(invalid(
                        "unexpected_field",
                        "a rate query takes no aggregation: it is the per-second increase of counters (summed per group)",
                    ));
                }
                let step_ms = step_ms.ok_or_else(|| {
                    invalid("missing_field", "a rate query needs a step (e.g. \"1m\")")
                })?;
                Ok(ParsedQuery::Rate(RateQuery {
                    selector,
                    step_ms,
                    group_by,
                    limit: self.limit,
                }))
            }
            other => Err(invalid(
                "invalid_query_type",
                format!(
                    "unknown queryType {:?}: use aggregate, range or rate",
                    clip(other)
                ),
            )),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

pub(crate) fn parse_metric_name(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| invalid("missing_field", "metricName is required"))?;
    if !is_valid_name(name) || name.len() > 1024 {
        return Err(invalid(
            "invalid_name",
            format!(
                "metric name {:?} must match ^[a-zA-Z_][a-zA-Z0-9_.:]*$",
                clip(name)
            ),
        ));
    }
    Ok(name.to_owned())
}

fn parse_time_range(body: Option<&TimeRangeBody>, now_ms: i64) -> Result<TimeRange, ApiError> {
    let body = body.ok_or_else(|| {
        invalid(
            "missing_field",
            "timeRange is required: {\"relative\":\"1h\"} or {\"start\":..,\"end\":..}",
        )
    })?;
    let bad_time =
        |e: super::timestamp::TimestampError| invalid("invalid_time_range", e.to_string());
    match (&body.relative, &body.start, &body.end) {
        (Some(relative), None, None) => {
            let span = parse_duration_ms(relative)
                .map_err(|e| invalid("invalid_duration", format!("timeRange.relative: {e}")))?;
            // "The last hour" includes the current millisecond.
            let end_ms = now_ms.saturating_add(1);
            Ok(TimeRange {
                start_ms: end_ms.saturating_sub(span),
                end_ms,
            })
        }
        (None, Some(start), end) => {
            let start_ms = parse_timestamp_json(&start.to_value()).map_err(bad_time)?;
            let end_ms = match end {
                Some(end) => parse_timestamp_json(&end.to_value()).map_err(bad_time)?,
                None => now_ms.saturating_add(1),
            };
            if start_ms >= end_ms {
                return Err(invalid(
                    "invalid_time_range",
                    format!("timeRange start ({start_ms}) must be before end ({end_ms})"),
                ));
            }
            Ok(TimeRange { start_ms, end_ms })
        }
        (None, None, _) => Err(invalid(
            "invalid_time_range",
            "timeRange needs either relative (e.g. \"1h\") or start (and optionally end)",
        )),
        (Some(_), _, _) => Err(invalid(
            "invalid_time_range",
            "timeRange takes either relative or start/end, not both",
        )),
    }
}

fn parse_step(text: &str) -> Result<i64, ApiError> {
    parse_duration_ms(text).map_err(|e| invalid("invalid_duration", format!("step: {e}")))
}

fn parse_key(key: &str, field: &str) -> Result<(), ApiError> {
    if key.len() > 100 || !is_valid_key(key) {
        return Err(invalid(
            "invalid_dimension_key",
            format!(
                "{field}: dimension key {:?} must match ^[a-zA-Z_][a-zA-Z0-9_.]*$",
                clip(key)
            ),
        ));
    }
    Ok(())
}

fn parse_group_by(keys: Bounded<String, MAX_GROUP_BY>) -> Result<Vec<String>, ApiError> {
    if keys.overflowed() {
        return Err(invalid(
            "invalid_group_by",
            format!(
                "groupBy has {} keys; the limit is {MAX_GROUP_BY}",
                keys.total
            ),
        ));
    }
    let keys = keys.items;
    for (i, key) in keys.iter().enumerate() {
        parse_key(key, "groupBy")?;
        if keys[..i].contains(key) {
            return Err(invalid(
                "invalid_group_by",
                format!("groupBy names {:?} twice", clip(key)),
            ));
        }
    }
    Ok(keys)
}

fn parse_filters(
    bodies: Bounded<FilterBody, MAX_FILTERS>,
    regex: &RegexLimits,
) -> Result<Vec<Filter>, ApiError> {
    if bodies.overflowed() {
        return Err(invalid(
            "invalid_filter",
            format!("{} filters; the limit is {MAX_FILTERS}", bodies.total),
        ));
    }
    bodies
        .items
        .into_iter()
        .map(|body| parse_filter(body, regex))
        .collect()
}

fn parse_filter(body: FilterBody, regex: &RegexLimits) -> Result<Filter, ApiError> {
    parse_key(&body.key, "filters")?;
    let string_value = |op: &str| match &body.value {
        FilterValue::Scalar(Scalar::Str(s)) => Ok(s.clone()),
        _ => Err(invalid(
            "invalid_filter",
            format!("filter {:?} {op}: value must be a string", clip(&body.key)),
        )),
    };
    let op = match body.op.as_str() {
        "=" => FilterOp::Eq(string_value("=")?),
        "!=" => FilterOp::NotEq(string_value("!=")?),
        "=~" | "!~" => {
            let pattern = string_value(&body.op)?;
            return Filter::regex_within(body.key, pattern, body.op == "!~", regex)
                .map_err(regex_error);
        }
        "in" => {
            let FilterValue::List(list) = &body.value else {
                return Err(invalid(
                    "invalid_filter",
                    format!(
                        "filter {:?} in: value must be a list of strings",
                        clip(&body.key)
                    ),
                ));
            };
            if list.total == 0 || list.total > MAX_IN_VALUES {
                return Err(invalid(
                    "invalid_filter",
                    format!(
                        "filter {:?} in: give 1 to {MAX_IN_VALUES} values, not {}",
                        clip(&body.key),
                        list.total
                    ),
                ));
            }
            if list.non_string {
                return Err(invalid(
                    "invalid_filter",
                    format!(
                        "filter {:?} in: every value must be a string",
                        clip(&body.key)
                    ),
                ));
            }
            FilterOp::In(list.values.clone())
        }
        other => {
            return Err(invalid(
                "invalid_filter",
                format!(
                    "unknown filter op {:?}: use =, !=, =~, !~ or in",
                    clip(other)
                ),
            ));
        }
    };
    Ok(Filter { key: body.key, op })
}

fn regex_error(e: RegexError) -> ApiError {
    let code = match e {
        RegexError::TooLong { .. } | RegexError::TooComplex => "regex_too_large",
        RegexError::Syntax { .. } | RegexError::Unsupported(_) => "invalid_regex",
    };
    invalid(code, e.to_string())
}

/// `count`, `sum`, `avg`, `min`, `max`, or a percentile `pNN` / `pNN.N`.
pub fn parse_aggregation(value: &Value) -> Result<Aggregation, ApiError> {
    let unknown = |shown: &str| {
        invalid(
            "invalid_aggregation",
            format!(
                "unknown aggregation {:?}: use count, sum, avg, min, max or a percentile pNN / pNN.N between p0 and p100 (e.g. p50, p95, p99.9)",
                clip(shown)
            ),
        )
    };
    let Value::String(text) = value else {
        return Err(unknown(&value.to_string()));
    };
    Ok(match text.as_str() {
        "count" => Aggregation::Count,
        "sum" => Aggregation::Sum,
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        _ => {
            let digits = text.strip_prefix('p').ok_or_else(|| unknown(text))?;
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            let well_formed = (1..=3).contains(&whole.len())
                && whole.bytes().all(|b| b.is_ascii_digit())
                && (!digits.contains('.')
                    || (!fraction.is_empty()
                        && fraction.len() <= 6
                        && fraction.bytes().all(|b| b.is_ascii_digit())));
            if !well_formed {
                return Err(unknown(text));
            }
            // Built as the decimal text of q ("p99.9" -> "0.999") so q is the
            // closest f64 to the decimal; 99.9 / 100.0 would not be.
            let q = match whole.parse::<u32>() {
                Ok(100) if fraction.bytes().all(|b| b == b'0') => 1.0,
                Ok(w) if w < 100 => format!("0.{w:02}{fraction}")
                    .parse()
                    .map_err(|_| unknown(text))?,
                _ => return Err(unknown(text)),
            };
            Aggregation::Percentile(q)
        }
    })
}

fn parse_plugin_aggregation(
    spec: PluginSpec,
    selector: Selector,
    group_by: Vec<String>,
    limit: Option<usize>,
) -> Result<PluginAggregateQuery, ApiError> {
    let shape = || {
        invalid(
            "invalid_aggregation",
            "a plugin aggregation is {\"plugin\":\"name\",\"params\":{...}}",
        )
    };
    if spec.malformed {
        return Err(shape());
    }
    let plugin = match spec.plugin {
        Some(Scalar::Str(name)) if !name.is_empty() && name.len() <= 128 => name,
        _ => return Err(shape()),
    };
    let params = spec
        .params
        .unwrap_or_else(|| Value::Object(Default::default()));
    Ok(PluginAggregateQuery {
        selector,
        plugin,
        params_json: params.to_string(),
        group_by,
        limit,
    })
}

pub async fn query(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let regex = state.reads.limits().regex();
    let now = now_ms();
    // Decoding and regex compilation are CPU work sized by the body: off
    // the async workers, so one tenant's big query cannot stall the others.
    let parsed = tokio::task::spawn_blocking(move || decode_query_body(&body)?.parse(now, &regex))
        .await
        .map_err(ApiError::internal)??;
    let response = match parsed {
        ParsedQuery::Aggregate(q) => {
            let keys = q.group_by.clone();
            let result = state.reads.aggregate(&tenant, q).await?;
            Json(AggregateBody { keys, result }).into_response()
        }
        ParsedQuery::PluginAggregate(q) => {
            let keys = q.group_by.clone();
            let result = state.reads.aggregate_with_plugin(&tenant, q).await?;
            Json(AggregateBody { keys, result }).into_response()
        }
        ParsedQuery::Range(q) => {
            Json(SeriesBody(state.reads.range(&tenant, q).await?)).into_response()
        }
        ParsedQuery::Rate(q) => {
            Json(SeriesBody(state.reads.rate(&tenant, q).await?)).into_response()
        }
    };
    Ok(response)
}

/// `{"results":[{"endpoint":"/api","value":0.1},...],"truncated":false}`;
/// a group without the key shows `null`.
struct AggregateBody {
    keys: Vec<String>,
    result: AggregateResult,
}

impl Serialize for AggregateBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a [String], &'a crate::model::AggregateRow);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len() + 1))?;
                for (key, value) in self.0.iter().zip(&self.1.group) {
                    map.serialize_entry(key, value)?;
                }
                map.serialize_entry("value", &self.1.value)?;
                map.end()
            }
        }
        let rows: Vec<Row> = self
            .result
            .rows
            .iter()
            .map(|r| Row(&self.keys, r))
            .collect();
        let mut body = s.serialize_struct("AggregateBody", 2)?;
        body.serialize_field("results", &rows)?;
        body.serialize_field("truncated", &self.result.truncated)?;
        body.end()
    }
}

/// `{"series":[{"dimensions":{..},"points":[[ts,v],..]}],"truncated":false}`.
struct SeriesBody(SeriesResult);

struct DimensionsBody<'a>(&'a Dimensions);

impl Serialize for DimensionsBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for SeriesBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a crate::model::Series);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut series = s.serialize_struct("Series", 2)?;
                series.serialize_field("dimensions", &DimensionsBody(&self.0.dimensions))?;
                series.serialize_field("points", &self.0.points)?;
                series.end()
            }
        }
        let series: Vec<One> = self.0.series.iter().map(One).collect();
        let mut body = s.serialize_struct("SeriesBody", 2)?;
        body.serialize_field("series", &series)?;
        body.serialize_field("truncated", &self.0.truncated)?;
        body.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn parse(body: Value) -> Result<ParsedQuery, ApiError> {
        decode_query_body(body.to_string().as_bytes())?.parse(NOW, &RegexLimits::default())
    }

    fn code(body: Value) -> &'static str {
        parse(body).unwrap_err().code
    }

    #[test]
    fn parses_the_issue_example() {
        let q = parse(json!({"queryType":"aggregate","metricName":"api_latency","aggregation":"p95",
            "timeRange":{"relative":"1h"},"groupBy":["endpoint"],
            "filters":[{"key":"region","op":"in","value":["eu","us"]},{"key":"host","op":"=~","value":"web-.*"}]}))
        .unwrap();
        let ParsedQuery::Aggregate(q) = q else {
            panic!("{q:?}")
        };
        assert_eq!(q.aggregation, Aggregation::Percentile(0.95));
        assert_eq!(
            q.selector.range.end_ms - q.selector.range.start_ms,
            3_600_000
        );
        assert_eq!(q.selector.range.end_ms, NOW + 1);
        assert_eq!(q.group_by, vec!["endpoint".to_string()]);
        assert!(q.selector.filters[1].matches(Some("web-1")));
        assert!(!q.selector.filters[1].matches(Some("xweb-1")));
    }

    #[test]
    fn percentiles_parse_with_decimals() {
        for (text, q) in [
            ("p50", 0.5),
            ("p99.9", 0.999),
            ("p0", 0.0),
            ("p100", 1.0),
            ("p99.99", 0.9999),
        ] {
            assert_eq!(
                parse_aggregation(&json!(text)).unwrap(),
                Aggregation::Percentile(q),
                "{text}"
            );
        }
        for bad in [
            "p", "p101", "p-1", "p9x", "p99.", "p.5", "median", "P95", "p1e1", "p 5",
        ] {
            assert!(parse_aggregation(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn absolute_ranges_accept_rfc3339_and_ms() {
        let q = parse(json!({"queryType":"range","metricName":"m",
            "timeRange":{"start":"2026-01-01T00:00:00Z","end":1767225660000_i64},"step":"1m","aggregation":"max"}))
        .unwrap();
        let ParsedQuery::Range(q) = q else { panic!() };
        assert_eq!(q.selector.range.start_ms, 1_767_225_600_000);
        assert_eq!(q.step, Some((60_000, Aggregation::Max)));
    }

    #[test]
    fn each_mistake_has_its_code() {
        let base = |extra: Value| {
            let mut b = json!({"queryType":"aggregate","metricName":"m","aggregation":"avg","timeRange":{"relative":"1h"}});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        assert_eq!(
            code(base(json!({"aggregation":"median"}))),
            "invalid_aggregation"
        );
        assert_eq!(
            code(base(json!({"queryType":"histogram"}))),
            "invalid_query_type"
        );
        assert_eq!(code(base(json!({"metricName":"1bad"}))), "invalid_name");
        assert_eq!(
            code(base(json!({"timeRange":{"relative":"1y"}}))),
            "invalid_duration"
        );
        assert_eq!(
            code(base(json!({"timeRange":{"start":5,"end":5}}))),
            "invalid_time_range"
        );
        assert_eq!(
            code(base(json!({"timeRange":{"start":"yesterday"}}))),
            "invalid_time_range"
        );
        assert_eq!(
            code(base(json!({"timeRange":{"relative":"1h","start":1}}))),
            "invalid_time_range"
        );
        assert_eq!(
            code(base(json!({"filters":[{"key":"a","op":"=~","value":"("}]}))),
            "invalid_regex"
        );
        assert_eq!(
            code(base(json!({"filters":[{"key":"a","op":"<","value":"1"}]}))),
            "invalid_filter"
        );
        assert_eq!(
            code(base(json!({"filters":[{"key":"a","op":"in","value":"x"}]}))),
            "invalid_filter"
        );
        assert_eq!(
            code(base(json!({"filters":[{"key":"a","op":"=","value":1}]}))),
            "invalid_filter"
        );
        assert_eq!(
            code(base(
                json!({"filters":[{"key":"a b","op":"=","value":"1"}]})
            )),
            "invalid_dimension_key"
        );
        assert_eq!(code(base(json!({"groupBy":["a","a"]}))), "invalid_group_by");
        assert_eq!(code(base(json!({"groupBy":["value"]}))), "invalid_group_by");
        assert_eq!(code(base(json!({"limit":0}))), "invalid_limit");
        assert_eq!(code(base(json!({"step":"1m"}))), "unexpected_field");
        assert_eq!(
            code(json!({"queryType":"rate","metricName":"m","timeRange":{"relative":"1h"}})),
            "missing_field"
        );
        assert_eq!(
            code(
                json!({"queryType":"range","metricName":"m","step":"0s","aggregation":"avg","timeRange":{"relative":"1h"}})
            ),
            "invalid_duration"
        );
        assert_eq!(
            code(
                json!({"queryType":"range","metricName":"m","step":"1m","timeRange":{"relative":"1h"}})
            ),
            "missing_field"
        );
        assert_eq!(code(json!({"metricName":"m"})), "missing_field");
    }

    #[test]
    fn plugin_aggregations_carry_their_params() {
        let q = parse(
            json!({"queryType":"aggregate","metricName":"m","timeRange":{"relative":"1h"},
            "aggregation":{"plugin":"apdex","params":{"threshold":0.3}}}),
        )
        .unwrap();
        let ParsedQuery::PluginAggregate(q) = q else {
            panic!()
        };
        assert_eq!(
            (q.plugin.as_str(), q.params_json.as_str()),
            ("apdex", r#"{"threshold":0.3}"#)
        );
        assert_eq!(
            code(
                json!({"queryType":"aggregate","metricName":"m","timeRange":{"relative":"1h"},
            "aggregation":{"plugin":"apdex","extra":1}})
            ),
            "invalid_aggregation"
        );
    }
}
