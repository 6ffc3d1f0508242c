//! OTLP/HTTP metrics (`ExportMetricsServiceRequest`, protobuf or JSON) →
//! metrics, following Prometheus' OTLP translation where it has a rule.
//!
//! - **Names**: the metric's name, mapped by [`names`](super::names); no
//!   unit or type suffix is added.
//! - **Dimensions**: the data point's attributes; then, for keys the point
//!   does not set, the resource's `service.name`, `service.namespace` and
//!   `service.instance.id` and the scope's name and version as
//!   `otel_scope_name` and `otel_scope_version`. Other resource
//!   attributes (SDK versions, process ids, host details) are not
//!   dimensions: they would multiply every series. Attribute values become
//!   text (numbers and booleans as written, arrays and maps as JSON, bytes
//!   as base64); an empty value is no dimension, as in Prometheus.
//! - **Gauge** and **sum** points: one metric each. Cumulative sums are
//!   stored as sent, so `rate` queries work on monotonic ones; delta sums
//!   too, each point being the change over its own interval (query them
//!   with `sum`, not `rate`).
//! - **Histogram** points: `<name>_bucket` with `le` (cumulative counts,
//!   the last `le="+Inf"`), `<name>_sum` (when sent) and `<name>_count`.
//! - **Summary** points: `<name>` with `quantile`, `<name>_sum`, `<name>_count`.
//! - **Exponential histograms**, and metric types this decoder does not
//!   know, are rejected item by item (`unsupported_metric_type`); the
//!   rest of the request is stored.
//! - Points flagged "no recorded value" are skipped, as Prometheus turns
//!   them into staleness markers. Exemplars are ignored.
//!
//! Each item's origin is the index of its data point in the request
//! (counting every metric's points in order), so a partial success can
//! say how many points were rejected.

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    HistogramDataPoint, NumberDataPoint, SummaryDataPoint, metric::Data, number_data_point,
};
use prost::Message;

use super::decoded_size::{self, DecodedSizeError};
use super::dimension_set::DimensionSet;
use super::{Decoded, ItemError, names};
use crate::model::{Dimensions, Metric};

/// How the body is encoded (the request's `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

/// What one body may hold.
#[derive(Clone, Copy, Debug)]
pub struct OtlpLimits {
    /// Items per request (`api.max_metrics_per_request`); a histogram
    /// point is one item per bucket plus its sum and count.
    pub max_points: usize,
    /// Dimensions per item (`validation.max_dimensions`).
    pub max_dimensions: usize,
    /// The memory the decoded request may take, measured on the body
    /// before it is decoded ([`decoded_size`]).
    pub max_decoded_memory: usize,
}

/// Why a whole body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpError {
    #[error("the body is not a protobuf ExportMetricsServiceRequest: {0}")]
    Protobuf(String),
    #[error("the body is not an OTLP/JSON ExportMetricsServiceRequest: {0}")]
    Json(String),
    #[error(
        "the request holds up to {count} metrics (a histogram point is one per bucket, plus its sum and count); the limit is {max} per request (api.max_metrics_per_request)"
    )]
    TooManyPoints { count: usize, max: usize },
    #[error("{0}")]
    DecodedTooLarge(DecodedSizeError),
}

/// The resource attributes that become dimensions.
const PROMOTED_RESOURCE_ATTRIBUTES: [&str; 3] =
    ["service.name", "service.namespace", "service.instance.id"];

/// One of the series a histogram or summary point becomes (`_bucket`,
/// `_sum`, `_count`, or the quantiles under the bare name).
fn suffixed(
    name: &str,
    suffix: &str,
    value: f64,
    timestamp_ms: i64,
    dimensions: Result<Dimensions, ItemError>,
) -> crate::pipeline::write::DecodedMetric {
    dimensions.map(|dimensions| Metric {
        name: format!("{name}{suffix}"),
        value,
        timestamp_ms,
        dimensions,
    })
}

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// Decodes an export request.
pub fn decode_otlp(
    body: &[u8],
    encoding: OtlpEncoding,
    limits: OtlpLimits,
) -> Result<Decoded, OtlpError> {
    let size = match encoding {
        OtlpEncoding::Protobuf => {
            decoded_size::protobuf(body, &shape::EXPORT_REQUEST, limits.max_decoded_memory)
        }
        OtlpEncoding::Json => decoded_size::json(body, limits.max_decoded_memory),
    };
    size.map_err(|e| match (e, encoding) {
        (DecodedSizeError::Malformed(why), OtlpEncoding::Protobuf) => OtlpError::Protobuf(why),
        (DecodedSizeError::Malformed(why), OtlpEncoding::Json) => OtlpError::Json(why),
        (over, _) => OtlpError::DecodedTooLarge(over),
    })?;
    let request = match encoding {
        OtlpEncoding::Protobuf => ExportMetricsServiceRequest::decode(body)
            .map_err(|e| OtlpError::Protobuf(e.to_string()))?,
        OtlpEncoding::Json => serde_json::from_slice::<ExportMetricsServiceRequest>(body)
            .map_err(|e| OtlpError::Json(e.to_string()))?,
    };
    let count = upper_bound_of_items(&request);
    if count > limits.max_points {
        return Err(OtlpError::TooManyPoints {
            count,
            max: limits.max_points,
        });
    }
    let mut out = Items {
        decoded: Decoded::default(),
        next_point: 0,
        max_dimensions: limits.max_dimensions,
    };
    out.decoded.items.reserve(count);
    out.decoded.origins.reserve(count);
    for resource_metrics in &request.resource_metrics {
        let mut context = Vec::new();
        if let Some(resource) = &resource_metrics.resource {
            for attribute in &resource.attributes {
                if PROMOTED_RESOURCE_ATTRIBUTES.contains(&attribute.key.as_str()) {
                    context.push((
                        attribute.key.clone(),
                        text_of(attribute.value.as_ref()).into_owned(),
                    ));
                }
            }
        }
        let resource_context = context.len();
        for scope_metrics in &resource_metrics.scope_metrics {
            context.truncate(resource_context);
            if let Some(scope) = &scope_metrics.scope {
                for (key, value) in [
                    ("otel_scope_name", &scope.name),
                    ("otel_scope_version", &scope.version),
                ] {
                    context.push((key.to_owned(), value.clone()));
                }
            }
            for metric in &scope_metrics.metrics {
                out.metric(metric, &context);
            }
        }
    }
    Ok(out.decoded)
}

/// At least as many items as [`decode_otlp`] makes of `request`, counted
/// before any is made.
fn upper_bound_of_items(request: &ExportMetricsServiceRequest) -> usize {
    let metrics = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    let mut count = 0usize;
    for metric in metrics {
        count = count.saturating_add(match &metric.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter()
                .map(|p| p.explicit_bounds.len().saturating_add(3))
                .fold(0usize, usize::saturating_add),
            Some(Data::Summary(s)) => s
                .data_points
                .iter()
                .map(|p| p.quantile_values.len().saturating_add(2))
                .fold(0usize, usize::saturating_add),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            None => 1,
        });
    }
    count
}

struct Items {
    decoded: Decoded,
    /// The origin of the next data point.
    next_point: u32,
    max_dimensions: usize,
}

impl Items {
    fn point(&mut self) -> u32 {
        let origin = self.next_point;
        self.next_point = self.next_point.saturating_add(1);
        origin
    }

    fn metric(
        &mut self,
        metric: &opentelemetry_proto::tonic::metrics::v1::Metric,
        context: &[(String, String)],
    ) {
        let name = names::metric_name(&metric.name);
        match &metric.data {
            Some(Data::Gauge(gauge)) => {
                for point in &gauge.data_points {
                    self.number(&name, point, context);
                }
            }
            Some(Data::Sum(sum)) => {
                for point in &sum.data_points {
                    self.number(&name, point, context);
                }
            }
            Some(Data::Histogram(histogram)) => {
                for point in &histogram.data_points {
                    self.histogram(&name, point, context);
                }
            }
            Some(Data::Summary(summary)) => {
                for point in &summary.data_points {
                    self.summary(&name, point, context);
                }
            }
            Some(Data::ExponentialHistogram(histogram)) => {
                for _ in &histogram.data_points {
                    let origin = self.point();
                    self.decoded.push(
                        Err(unsupported(&metric.name, "an exponential histogram")),
                        origin,
                    );
                }
            }
            None => {
                let origin = self.point();
                self.decoded.push(
                    Err(unsupported(
                        &metric.name,
                        "of a type this server does not know",
                    )),
                    origin,
                );
            }
        }
    }

    fn number(&mut self, name: &str, point: &NumberDataPoint, context: &[(String, String)]) {
        let origin = self.point();
        if point.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let item = self
            .dimensions(&point.attributes, context)
            .and_then(|dimensions| {
                let value = match point.value {
                    Some(number_data_point::Value::AsDouble(v)) => v,
                    Some(number_data_point::Value::AsInt(v)) => v as f64,
                    None => {
                        return Err((
                            "missing_value",
                            "the data point has neither asDouble nor asInt".to_owned(),
                        ));
                    }
                };
                Ok(Metric {
                    name: name.to_owned(),
                    value,
                    timestamp_ms: millis(point.time_unix_nano),
                    dimensions,
                })
            });
        self.decoded.push(item, origin);
    }

    fn histogram(&mut self, name: &str, point: &HistogramDataPoint, context: &[(String, String)]) {
        let origin = self.point();
        if point.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let timestamp_ms = millis(point.time_unix_nano);
        let dimensions = self.dimensions(&point.attributes, context);
        let series = |suffix: &str, value: f64, dimensions: Result<Dimensions, ItemError>| {
            suffixed(name, suffix, value, timestamp_ms, dimensions)
        };
        let buckets = &point.bucket_counts;
        if !buckets.is_empty() && buckets.len() != point.explicit_bounds.len() + 1 {
            let message = format!(
                "the histogram point has {} bucket counts for {} explicit bounds; it needs one more count than bounds",
                buckets.len(),
                point.explicit_bounds.len()
            );
            self.decoded
                .push(Err(("invalid_histogram", message)), origin);
            return;
        }
        if !buckets.is_empty() {
            let mut cumulative = 0u64;
            let bounds = point.explicit_bounds.iter().copied().chain([f64::INFINITY]);
            for (&count, bound) in buckets.iter().zip(bounds) {
                cumulative = cumulative.saturating_add(count);
                let with_le = self.with_label(&dimensions, "le", float_label(bound));
                self.decoded
                    .push(series("_bucket", cumulative as f64, with_le), origin);
            }
        }
        if let Some(sum) = point.sum {
            self.decoded
                .push(series("_sum", sum, dimensions.clone()), origin);
        }
        self.decoded
            .push(series("_count", point.count as f64, dimensions), origin);
    }

    fn summary(&mut self, name: &str, point: &SummaryDataPoint, context: &[(String, String)]) {
        let origin = self.point();
        if point.flags & NO_RECORDED_VALUE != 0 {
            return;
        }
        let timestamp_ms = millis(point.time_unix_nano);
        let dimensions = self.dimensions(&point.attributes, context);
        let series = |suffix: &str, value: f64, dimensions: Result<Dimensions, ItemError>| {
            suffixed(name, suffix, value, timestamp_ms, dimensions)
        };
        for quantile in &point.quantile_values {
            let with_quantile =
                self.with_label(&dimensions, "quantile", float_label(quantile.quantile));
            self.decoded
                .push(series("", quantile.value, with_quantile), origin);
        }
        self.decoded
            .push(series("_sum", point.sum, dimensions.clone()), origin);
        self.decoded
            .push(series("_count", point.count as f64, dimensions), origin);
    }

    /// A point's attributes, then the context's dimensions it does not set.
    fn dimensions(
        &self,
        attributes: &[KeyValue],
        context: &[(String, String)],
    ) -> Result<Dimensions, ItemError> {
        let mut set = DimensionSet::new(self.max_dimensions);
        for attribute in attributes {
            let value = text_of(attribute.value.as_ref());
            if !value.is_empty() {
                set.push(&attribute.key, &value);
            }
        }
        for (key, value) in context {
            if !value.is_empty() {
                set.push_default(key, value);
            }
        }
        set.finish()
    }

    /// `dimensions` and `key=value`, which the translation adds (`le`,
    /// `quantile`): an attribute of that name would be overwritten, so it
    /// is refused instead.
    fn with_label(
        &self,
        dimensions: &Result<Dimensions, ItemError>,
        key: &str,
        value: String,
    ) -> Result<Dimensions, ItemError> {
        let mut dimensions = dimensions.clone()?;
        if dimensions.get(key).is_some() {
            return Err((
                "duplicate_dimension",
                format!("attribute {key:?} is set by the translation; the point cannot have one"),
            ));
        }
        if dimensions.len() + 1 > self.max_dimensions {
            let e = crate::model::ValidationError::TooManyDimensions {
                count: dimensions.len() + 1,
                max: self.max_dimensions,
            };
            return Err((e.code(), e.to_string()));
        }
        dimensions.insert(key, value);
        Ok(dimensions)
    }
}

fn unsupported(name: &str, what: &str) -> ItemError {
    (
        "unsupported_metric_type",
        format!(
            "metric {:?} is {what}; gauges, sums, histograms and summaries are stored",
            name.chars().take(64).collect::<String>()
        ),
    )
}

/// Nanoseconds since the epoch → milliseconds (a time past 2262, which
/// does not fit, is refused by the timestamp window like any other).
fn millis(time_unix_nano: u64) -> i64 {
    i64::try_from(time_unix_nano / 1_000_000).unwrap_or(i64::MAX)
}

/// `le` and `quantile` values as Prometheus writes them: the shortest
/// decimal that reads back as the same float, infinities as `±Inf`.
fn float_label(value: f64) -> String {
    if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// An attribute value as dimension text; a string value (nearly every
/// attribute) is borrowed, not copied, since the dimension set copies it.
fn text_of(value: Option<&AnyValue>) -> Cow<'_, str> {
    use any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        None => Cow::Borrowed(""),
        Some(Value::StringValue(s)) => Cow::Borrowed(s),
        Some(Value::BoolValue(b)) => Cow::Owned(b.to_string()),
        Some(Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(Value::DoubleValue(d)) => Cow::Owned(float_label(*d)),
        Some(Value::BytesValue(bytes)) => {
            use base64::Engine;
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Some(Value::StringValueStrindex(i)) => Cow::Owned(i.to_string()),
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            Cow::Owned(json_of(Some(other)).to_string())
        }
    }
}

fn json_of(value: Option<&any_value::Value>) -> serde_json::Value {
    use any_value::Value;
    use serde_json::Value as Json;
    match value {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::from(s.as_str()),
        Some(Value::BoolValue(b)) => Json::from(*b),
        Some(Value::IntValue(i)) => Json::from(*i),
        Some(Value::DoubleValue(d)) => Json::from(*d),
        Some(Value::ArrayValue(a)) => {
            Json::Array(a.values.iter().map(|v| json_of(v.value.as_ref())).collect())
        }
        Some(Value::KvlistValue(kv)) => Json::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        json_of(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
        Some(Value::BytesValue(_) | Value::StringValueStrindex(_)) => {
            Json::from(text_of(Some(&AnyValue {
                value: value.cloned(),
            })))
        }
    }
}

pub(crate) mod shape;

#[cfg(test)]
mod tests;
