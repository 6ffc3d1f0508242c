//! OTLP/HTTP metrics: the OpenTelemetry Python SDK with its
//! `opentelemetry-exporter-otlp-proto-http` exporter (PyPI), gzip on,
//! against `POST /v1/metrics`; JSON and hostile bodies by hand.

use std::io::Write;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use prost::Message;
use serde_json::{Value, json};

use crate::common::{Reply, TestServer, now_ms};
use crate::support::{api_for, run_python, stored, token_for};

/// A counter (5 then 2), a synchronous gauge (3 then 4.5) and a histogram
/// (0.5, 5, 50 over the bounds 1 and 10), exported once by a flush, gzip
/// compressed, with the token as a bearer token. Not shut down: shutting
/// down exports (the same cumulative values) once more.
const OTEL_SDK: &str = r#"
import json, os
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

exporter = OTLPMetricExporter(
    endpoint=os.environ["URL"] + "/v1/metrics",
    headers={"Authorization": "Bearer " + os.environ["TOKEN"]},
    compression=Compression.Gzip,
)
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
provider = MeterProvider(
    resource=Resource.create({
        "service.name": "checkout",
        "service.instance.id": "pod-1",
        "deployment.environment": "test",
    }),
    metric_readers=[reader],
    shutdown_on_exit=False,
    views=[View(instrument_name="http.server.duration",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=[1.0, 10.0]))],
)
meter = provider.get_meter("shop", "1.0")
orders = meter.create_counter("shop.orders")
orders.add(5, {"region": "eu"})
orders.add(2, {"region": "eu"})
temperature = meter.create_gauge("room.temperature")
temperature.set(3, {"room": "cellar"})
temperature.set(4.5, {"room": "cellar"})
duration = meter.create_histogram("http.server.duration", unit="s")
for value in (0.5, 5, 50):
    duration.record(value, {"route": "/pay"})
ok = provider.force_flush(timeout_millis=30_000)
print(json.dumps({"flushed": ok}))
"#;

/// Exactly one point per series, at a time within the run.
fn single_points(series: &Value, from_ms: i64, to_ms: i64) -> Vec<(Value, f64)> {
    series
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {series}"))
        .iter()
        .map(|s| {
            let points = s["points"].as_array().unwrap();
            assert_eq!(points.len(), 1, "{s}");
            let ts = points[0][0].as_i64().unwrap();
            assert!(
                (from_ms..=to_ms).contains(&ts),
                "{ts} not in {from_ms}..={to_ms}"
            );
            (s["dimensions"].clone(), points[0][1].as_f64().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn otel_sdk_exports_counter_gauge_and_histogram_for_its_own_tenant_only() {
    let server = TestServer::start().await;
    let from = now_ms() - 1_000;
    let outcome = run_python(
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry-exporter-otlp-proto-http",
        OTEL_SDK,
        &[
            ("URL", server.api.base.clone()),
            ("TOKEN", token_for("otel-a")),
        ],
    )
    .await;
    assert_eq!(outcome["flushed"], true, "{outcome}");
    let to = now_ms() + 1_000;

    // Resource: service.name and service.instance.id (the SDK's own
    // attributes and deployment.environment are not dimensions); scope:
    // name and version.
    let context = |extra: Value| {
        let mut dims = json!({
            "service.name": "checkout",
            "service.instance.id": "pod-1",
            "otel_scope_name": "shop",
            "otel_scope_version": "1.0",
        });
        dims.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        dims
    };
    let a = api_for(&server, "otel-a");
    assert_eq!(
        single_points(&stored(&a, "shop.orders").await, from, to),
        [(context(json!({"region": "eu"})), 7.0)]
    );
    assert_eq!(
        single_points(&stored(&a, "room.temperature").await, from, to),
        [(context(json!({"room": "cellar"})), 4.5)]
    );
    let route = || context(json!({"route": "/pay"}));
    let mut buckets = single_points(&stored(&a, "http.server.duration_bucket").await, from, to);
    buckets.sort_by(|x, y| x.1.total_cmp(&y.1));
    let le = |le: &str| {
        let mut dims = route();
        dims["le"] = json!(le);
        dims
    };
    assert_eq!(
        buckets,
        [(le("1"), 1.0), (le("10"), 2.0), (le("+Inf"), 3.0)]
    );
    assert_eq!(
        single_points(&stored(&a, "http.server.duration_sum").await, from, to),
        [(route(), 55.5)]
    );
    assert_eq!(
        single_points(&stored(&a, "http.server.duration_count").await, from, to),
        [(route(), 3.0)]
    );

    let b = api_for(&server, "otel-b");
    assert_eq!(b.get("/api/v1/metrics").await.ok()["metrics"], json!([]));
    assert_eq!(stored(&b, "shop.orders").await, json!([]));
    server.stop().await;
}

async fn post(
    api: &crate::common::Api,
    body: Vec<u8>,
    content_type: &str,
    encoding: Option<&str>,
) -> (Reply, Vec<u8>) {
    let mut request = api
        .http
        .post(api.url("/v1/metrics"))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (
        Reply {
            status,
            body,
            headers,
        },
        bytes,
    )
}

#[tokio::test]
async fn json_export_answers_a_partial_success_for_unknown_types_and_stores_the_rest() {
    let server = TestServer::start().await;
    let a = api_for(&server, "otel-json");
    let ns = (now_ms() - 5_000) * 1_000_000;
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
        "scopeMetrics": [{"metrics": [
            {"name": "jobs.queued", "gauge": {"dataPoints": [
                {"asInt": "12", "timeUnixNano": ns.to_string(),
                 "attributes": [{"key": "queue", "value": {"stringValue": "high"}}]}]}},
            {"name": "latency", "exponentialHistogram": {"aggregationTemporality": 2,
                "dataPoints": [{"timeUnixNano": ns.to_string(), "count": "1"}]}},
            {"name": "mystery", "somethingNew": {"dataPoints": []}},
            {"name": "old", "gauge": {"dataPoints": [{"asDouble": 1.0, "timeUnixNano": "1000000"}]}}
        ]}]
    }]});
    let (reply, _) = post(&a, body.to_string().into_bytes(), "application/json", None).await;
    let answer = reply.ok();
    assert_eq!(
        answer["partialSuccess"]["rejectedDataPoints"], "3",
        "{answer}"
    );
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(message.contains("unsupported_metric_type"), "{message}");
    assert!(message.contains("data point 3"), "{message}");
    assert_eq!(
        stored(&a, "jobs.queued").await,
        json!([{"dimensions": {"queue": "high", "service.name": "api"},
                "points": [[ns / 1_000_000, 12.0]]}])
    );
    server.stop().await;
}

fn gauge_request(name: &str, ms: i64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: name.into(),
                        data: Some(Data::Gauge(Gauge {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: ms as u64 * 1_000_000,
                                value: Some(number_data_point::Value::AsDouble(2.5)),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "exp".into(),
                        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                            data_points: vec![ExponentialHistogramDataPoint::default()],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn hostile_otlp_bodies_are_clear_4xx_answers_and_store_nothing() {
    let server = TestServer::start().await;
    let a = api_for(&server, "otel-bad");
    let good = gauge_request("g", now_ms()).encode_to_vec();

    let (reply, _) = post(
        &a,
        good[..good.len() - 5].to_vec(),
        "application/x-protobuf",
        None,
    )
    .await;
    reply.assert_error(400, "invalid_protobuf");
    let (reply, _) = post(
        &a,
        b"{\"resourceMetrics\": [".to_vec(),
        "application/json",
        None,
    )
    .await;
    reply.assert_error(400, "malformed_json");
    let (reply, _) = post(&a, good.clone(), "text/plain", None).await;
    reply.assert_error(415, "unsupported_media_type");
    // 100 MB of zeros in a gzip stream of about 100 KB: cut off at
    // api.max_body_bytes while it is being decompressed.
    let bomb = gzip(&vec![0u8; 100 << 20]);
    assert!(bomb.len() < 1 << 20);
    let (reply, _) = post(&a, bomb, "application/x-protobuf", Some("gzip")).await;
    reply.assert_error(413, "body_too_large");
    assert_eq!(a.get("/api/v1/metrics").await.ok()["metrics"], json!([]));

    // Protobuf in, protobuf out: the partial success counts the
    // exponential histogram's point; the gauge is stored.
    let ms = now_ms() - 1_000;
    let (reply, bytes) = post(
        &a,
        gzip(&gauge_request("g", ms).encode_to_vec()),
        "application/x-protobuf",
        Some("gzip"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/x-protobuf");
    let answer = ExportMetricsServiceResponse::decode(bytes.as_slice()).unwrap();
    let partial = answer.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 1, "{}", partial.error_message);
    assert_eq!(
        stored(&a, "g").await,
        json!([{"dimensions": {}, "points": [[ms, 2.5]]}])
    );
    server.stop().await;
}
