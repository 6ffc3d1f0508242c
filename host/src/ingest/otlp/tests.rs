use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    Metric as OtlpMetric, ResourceMetrics, ScopeMetrics, Sum, Summary,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::*;

const LIMITS: OtlpLimits = OtlpLimits {
    max_points: 100,
    max_dimensions: 6,
    max_decoded_memory: 4 << 20,
};
const T: u64 = 1_700_000_000_123_456_789;
const T_MS: i64 = 1_700_000_000_123;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

fn number(value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        time_unix_nano: T,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn metric(name: &str, data: Data) -> OtlpMetric {
    OtlpMetric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn request(metrics: Vec<OtlpMetric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("telemetry.sdk.version", "1.2.3"),
                    kv("host.name", "a"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "shop".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn decode(request: &ExportMetricsServiceRequest) -> Decoded {
    decode_otlp(&request.encode_to_vec(), OtlpEncoding::Protobuf, LIMITS).unwrap()
}

/// `(point, Ok("name{dims} value @ts") | Err(code))` per item.
fn summary(d: &Decoded) -> Vec<(u32, Result<String, &'static str>)> {
    crate::ingest::summary::summary(d)
        .into_iter()
        .map(|(origin, item)| {
            let item =
                item.map(|(name, value, ts, dims)| format!("{name}{{{dims}}} {value} @{ts}"));
            (origin, item)
        })
        .collect()
}

fn ok(text: &str) -> Result<String, &'static str> {
    Ok(text.replace("@T", &format!("@{T_MS}")))
}

#[test]
fn gauges_and_sums_are_one_metric_per_point_with_resource_and_scope_dimensions() {
    let d = decode(&request(vec![
        metric(
            "queue.depth",
            Data::Gauge(Gauge {
                data_points: vec![number(3.0, vec![kv("queue", "high")])],
            }),
        ),
        metric(
            "requests",
            Data::Sum(Sum {
                data_points: vec![
                    NumberDataPoint {
                        value: Some(number_data_point::Value::AsInt(42)),
                        ..number(0.0, vec![kv("service.name", "override")])
                    },
                    NumberDataPoint {
                        flags: NO_RECORDED_VALUE,
                        ..number(1.0, vec![])
                    },
                ],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }),
        ),
    ]));
    assert_eq!(
        summary(&d),
        vec![
            (
                0,
                ok("queue.depth{otel_scope_name=shop,queue=high,service.name=checkout} 3 @T")
            ),
            (
                1,
                ok("requests{otel_scope_name=shop,service.name=override} 42 @T")
            ),
        ]
    );
}

#[test]
fn histograms_become_cumulative_buckets_sum_and_count() {
    let d = decode(&request(vec![metric(
        "http.server.duration",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T,
                count: 6,
                sum: Some(7.5),
                bucket_counts: vec![1, 2, 3],
                explicit_bounds: vec![0.5, 10.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )]));
    let dims = "otel_scope_name=shop,service.name=checkout";
    assert_eq!(
        summary(&d),
        vec![
            (
                0,
                ok(&format!(
                    "http.server.duration_bucket{{le=0.5,{dims}}} 1 @T"
                ))
            ),
            (
                0,
                ok(&format!("http.server.duration_bucket{{le=10,{dims}}} 3 @T"))
            ),
            (
                0,
                ok(&format!(
                    "http.server.duration_bucket{{le=+Inf,{dims}}} 6 @T"
                ))
            ),
            (0, ok(&format!("http.server.duration_sum{{{dims}}} 7.5 @T"))),
            (0, ok(&format!("http.server.duration_count{{{dims}}} 6 @T"))),
        ]
    );
}

#[test]
fn summaries_become_quantiles_sum_and_count() {
    let d = decode(&request(vec![metric(
        "rpc",
        Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: T,
                count: 4,
                sum: 2.0,
                quantile_values: vec![ValueAtQuantile {
                    quantile: 0.99,
                    value: 0.75,
                }],
                ..Default::default()
            }],
        }),
    )]));
    let dims = "otel_scope_name=shop,service.name=checkout";
    assert_eq!(
        summary(&d),
        vec![
            (
                0,
                ok("rpc{otel_scope_name=shop,quantile=0.99,service.name=checkout} 0.75 @T")
            ),
            (0, ok(&format!("rpc_sum{{{dims}}} 2 @T"))),
            (0, ok(&format!("rpc_count{{{dims}}} 4 @T"))),
        ]
    );
}

#[test]
fn unsupported_and_broken_points_are_items_of_their_own() {
    let d = decode(&request(vec![
        metric(
            "exp",
            Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint::default()],
                aggregation_temporality: 2,
            }),
        ),
        OtlpMetric {
            name: "unknown".into(),
            data: None,
            ..Default::default()
        },
        metric(
            "h",
            Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        bucket_counts: vec![1],
                        explicit_bounds: vec![1.0],
                        ..Default::default()
                    },
                    HistogramDataPoint {
                        attributes: vec![kv("le", "x")],
                        time_unix_nano: T,
                        bucket_counts: vec![1],
                        count: 1,
                        ..Default::default()
                    },
                ],
                aggregation_temporality: 2,
            }),
        ),
        metric(
            "g",
            Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint {
                        value: None,
                        ..number(0.0, vec![])
                    },
                    number(1.0, vec![kv("a", "1"), kv("a", "2")]),
                    number(2.0, vec![kv("empty", "")]),
                ],
            }),
        ),
    ]));
    assert_eq!(
        summary(&d),
        vec![
            (0, Err("unsupported_metric_type")),
            (1, Err("unsupported_metric_type")),
            (2, Err("invalid_histogram")),
            (3, Err("duplicate_dimension")),
            (
                3,
                ok("h_count{le=x,otel_scope_name=shop,service.name=checkout} 1 @T")
            ),
            (4, Err("missing_value")),
            (5, Err("duplicate_dimension")),
            (6, ok("g{otel_scope_name=shop,service.name=checkout} 2 @T")),
        ]
    );
}

#[test]
fn json_bodies_use_otlp_json_conventions() {
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[
        {"key":"service.name","value":{"stringValue":"api"}}]},
      "scopeMetrics":[{"metrics":[
        {"name":"temp","unit":"C","gauge":{"dataPoints":[
          {"asInt":"7","timeUnixNano":"1700000000123456789",
           "attributes":[{"key":"n","value":{"intValue":"5"}},{"key":"ok","value":{"boolValue":true}}]}]}},
        {"name":"done","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
          {"asDouble":1.5,"timeUnixNano":1700000000123456789}]}}]}]}]}"#;
    let d = decode_otlp(body, OtlpEncoding::Json, LIMITS).unwrap();
    assert_eq!(
        summary(&d),
        vec![
            (0, ok("temp{n=5,ok=true,service.name=api} 7 @T")),
            (1, ok("done{service.name=api} 1.5 @T")),
        ]
    );
}

#[test]
fn broken_bodies_are_refused_whole() {
    let good = request(vec![metric(
        "g",
        Data::Gauge(Gauge {
            data_points: vec![number(1.0, vec![])],
        }),
    )])
    .encode_to_vec();
    assert!(matches!(
        decode_otlp(&good[..good.len() - 3], OtlpEncoding::Protobuf, LIMITS),
        Err(OtlpError::Protobuf(_))
    ));
    assert!(matches!(
        decode_otlp(b"{\"resourceMetrics\":", OtlpEncoding::Json, LIMITS),
        Err(OtlpError::Json(_))
    ));
    let wide = request(vec![metric(
        "h",
        Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                explicit_bounds: vec![1.0; 200],
                ..Default::default()
            }],
            aggregation_temporality: 2,
        }),
    )]);
    assert_eq!(
        decode_otlp(&wide.encode_to_vec(), OtlpEncoding::Protobuf, LIMITS).unwrap_err(),
        OtlpError::TooManyPoints {
            count: 203,
            max: 100
        }
    );
}
